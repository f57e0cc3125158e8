//! Policy merging and entity checks (spec/permissions.md).

use auth_core::permissions::{EntityLookup, NoRegistry, merge_policies};
use auth_core::{Permissions, Policy, PolicyKey};
use serde_json::json;

use crate::support::fresh;

fn policy(value: serde_json::Value) -> Policy {
    Policy::from_value(value).unwrap()
}

struct Registry;

impl EntityLookup for Registry {
    fn device_of(&self, entity_id: &str) -> Option<String> {
        match entity_id {
            "light.kitchen" | "light.own_area" => Some("dev-kitchen".into()),
            "sensor.orphan" => None,
            _ => Some("dev-other".into()),
        }
    }
    fn area_of_device(&self, device_id: &str) -> Option<String> {
        (device_id == "dev-kitchen").then(|| "kitchen".into())
    }
}

#[test]
fn merge_most_permissive_wins() {
    let merged = merge_policies([
        &policy(json!({"entities": {"all": {"read": true}}})),
        &policy(json!({"entities": {"domains": {"light": true}}})),
    ]);
    assert_eq!(
        merged.to_value(),
        json!({"entities": {"all": {"read": true}, "domains": {"light": true}}})
    );
    let merged = merge_policies([
        &policy(json!({"entities": {"all": {"read": true}}})),
        &Policy::admin(),
    ]);
    assert_eq!(merged.to_value(), json!({"entities": true}));
    let merged = merge_policies([
        &policy(json!({"entities": {"entity_ids": {"light.a": {"read": true}}}})),
        &policy(
            json!({"entities": {"entity_ids": {"light.a": {"control": true}, "light.b": true}}}),
        ),
    ]);
    assert_eq!(
        merged.to_value(),
        json!({"entities": {"entity_ids": {"light.a": {"read": true, "control": true}, "light.b": true}}})
    );
    assert_eq!(merge_policies([]).to_value(), json!({}));
}

#[test]
fn entity_checks_follow_lookup_priority() {
    let p = |v| Permissions::Policy(policy(v));
    let reg = &Registry;
    assert!(
        !p(json!({})).check_entity("light.a", PolicyKey::Read, reg),
        "no policy: deny"
    );
    assert!(!p(json!({"entities": {}})).check_entity("light.a", PolicyKey::Read, reg));
    assert!(p(json!({"entities": true})).check_entity("light.a", PolicyKey::Edit, reg));
    let read_only = Permissions::Policy(Policy::read_only());
    assert!(read_only.check_entity("light.a", PolicyKey::Read, reg));
    assert!(!read_only.check_entity("light.a", PolicyKey::Control, reg));
    // A boolean subcategory grants everything (HA quirk).
    assert!(p(json!({"entities": {"domains": true}})).check_entity(
        "switch.x",
        PolicyKey::Edit,
        reg
    ));
    // Domains.
    let domains = p(json!({"entities": {"domains": {"light": true, "switch": {"read": true}}}}));
    assert!(domains.check_entity("light.x", PolicyKey::Control, reg));
    assert!(domains.check_entity("switch.x", PolicyKey::Read, reg));
    assert!(!domains.check_entity("switch.x", PolicyKey::Control, reg));
    assert!(!domains.check_entity("cover.x", PolicyKey::Read, reg));
    // Areas use the device's area; entities without a device have no opinion.
    let area = p(json!({"entities": {"area_ids": {"kitchen": {"control": true}}}}));
    assert!(area.check_entity("light.kitchen", PolicyKey::Control, reg));
    assert!(!area.check_entity("light.hall", PolicyKey::Control, reg));
    assert!(!area.check_entity("light.kitchen", PolicyKey::Control, &NoRegistry));
    let device = p(json!({"entities": {"device_ids": {"dev-kitchen": true}}}));
    assert!(device.check_entity("light.kitchen", PolicyKey::Edit, reg));
    assert!(!device.check_entity("sensor.orphan", PolicyKey::Read, reg));
    // Several lookups: the first with an opinion wins, in priority order.
    let mixed = p(
        json!({"entities": {"entity_ids": {"light.kitchen": {"read": true}}, "all": {"control": true}}}),
    );
    assert!(mixed.check_entity("light.kitchen", PolicyKey::Read, reg));
    assert!(
        mixed.check_entity("light.kitchen", PolicyKey::Control, reg),
        "entity_ids has no control opinion: all decides"
    );
    assert!(mixed.check_entity("cover.x", PolicyKey::Control, reg));
    assert!(!mixed.check_entity("cover.x", PolicyKey::Edit, reg));
    assert!(Permissions::Owner.check_entity("anything.x", PolicyKey::Edit, reg));
}

#[test]
fn access_all_entities_and_filtering() {
    let p = |v| Permissions::Policy(policy(v));
    assert!(p(json!({"entities": true})).access_all_entities(PolicyKey::Control));
    assert!(p(json!({"entities": {"all": {"read": true}}})).access_all_entities(PolicyKey::Read));
    assert!(
        !p(json!({"entities": {"all": {"read": true}}})).access_all_entities(PolicyKey::Control)
    );
    assert!(
        !p(json!({"entities": {"domains": true}})).access_all_entities(PolicyKey::Read),
        "HA's inconsistency kept"
    );
    assert!(!p(json!({})).access_all_entities(PolicyKey::Read));
    let domains = p(json!({"entities": {"domains": {"light": true}}}));
    let ids = ["light.a", "switch.b", "light.c"];
    assert_eq!(
        domains.filter_entity_ids(false, ids, PolicyKey::Read, &NoRegistry),
        ["light.a", "light.c"]
    );
    assert_eq!(
        domains.filter_entity_ids(true, ids, PolicyKey::Read, &NoRegistry),
        ids
    );
}

#[test]
fn policy_validation_matches_the_schema() {
    assert!(
        policy(json!({"entities": {"all": {"read": true}}}))
            .validate()
            .is_ok()
    );
    assert!(
        policy(json!({"entities": {"domains": {"light": {"read": true, "edit": true}}}}))
            .validate()
            .is_ok()
    );
    let error = policy(json!({"entities": {"all": {"read": false}}}))
        .validate()
        .unwrap_err();
    assert!(error.contains("only true is allowed"), "{error}");
    assert!(
        policy(json!({"entities": {"colours": true}}))
            .validate()
            .is_err()
    );
    assert!(policy(json!({"lights": true})).validate().is_err());
}

#[tokio::test]
async fn user_permissions_come_from_groups() {
    let (_config, _clock, manager) = fresh().await;
    let owner = manager
        .create_user(Some("O".into()), vec![], false)
        .await
        .unwrap();
    assert_eq!(manager.permissions(&owner), Permissions::Owner);
    let group = manager
        .create_group(
            Some("Lights".into()),
            policy(json!({"entities": {"domains": {"light": true}}})),
        )
        .await
        .unwrap();
    let user = manager
        .create_user(
            Some("U".into()),
            vec![group.id.clone(), "system-read-only".into()],
            false,
        )
        .await
        .unwrap();
    let perms = manager.permissions(&user);
    assert!(perms.check_entity("light.x", PolicyKey::Control, &NoRegistry));
    assert!(perms.check_entity("switch.x", PolicyKey::Read, &NoRegistry));
    assert!(!perms.check_entity("switch.x", PolicyKey::Control, &NoRegistry));
    let nobody = manager
        .create_user(Some("N".into()), vec![], false)
        .await
        .unwrap();
    assert!(
        !manager
            .permissions(&nobody)
            .check_entity("light.x", PolicyKey::Read, &NoRegistry)
    );
    let error = manager
        .create_group(None, policy(json!({"entities": 5})))
        .await
        .expect_err("invalid policy");
    assert!(error.to_string().starts_with("Invalid policy"), "{error}");
}
