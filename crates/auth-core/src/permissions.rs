//! Permission policies: format, merging and entity checks (HA's `auth/permissions`).

use serde_json::{Map, Value};

/// The only category the auth system evaluates.
pub const CAT_ENTITIES: &str = "entities";

/// Entity subcategories in lookup priority order.
const SUBCATEGORIES: [&str; 5] = ["entity_ids", "device_ids", "area_ids", "domains", "all"];

/// A permission policy: category -> category value (see `spec/permissions.md`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy(pub Map<String, Value>);

impl Policy {
    /// Policy of the admin group: `{"entities": true}`.
    pub fn admin() -> Self {
        Self::entities(Value::Bool(true))
    }

    /// Policy of the users group: `{"entities": true}` (same as admin).
    pub fn user() -> Self {
        Self::entities(Value::Bool(true))
    }

    /// Policy of the read-only group: `{"entities": {"all": {"read": true}}}`.
    pub fn read_only() -> Self {
        Self::entities(serde_json::json!({"all": {"read": true}}))
    }

    fn entities(value: Value) -> Self {
        let mut map = Map::new();
        map.insert(CAT_ENTITIES.to_owned(), value);
        Policy(map)
    }

    /// A policy from a JSON value; it must be an object (its contents are not validated).
    pub fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Policy(map)),
            _ => None,
        }
    }

    /// The policy as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// Checks the policy against HA's validation schema; the error says where it fails.
    pub fn validate(&self) -> Result<(), String> {
        for (category, value) in &self.0 {
            if category != CAT_ENTITIES {
                return Err(format!("unknown policy category '{category}'"));
            }
            validate_entity_policy(value).map_err(|e| format!("entities{e}"))?;
        }
        Ok(())
    }
}

fn validate_entity_policy(value: &Value) -> Result<(), String> {
    match value {
        Value::Bool(true) => Ok(()),
        Value::Object(map) => {
            for (key, sub) in map {
                match key.as_str() {
                    "all" => validate_single(sub).map_err(|e| format!(".all{e}"))?,
                    "entity_ids" | "device_ids" | "area_ids" | "domains" => match sub {
                        Value::Bool(true) => {}
                        Value::Object(values) => {
                            for (id, single) in values {
                                validate_single(single).map_err(|e| format!(".{key}.{id}{e}"))?;
                            }
                        }
                        _ => return Err(format!(".{key}: expected true or a mapping")),
                    },
                    other => return Err(format!(": unknown subcategory '{other}'")),
                }
            }
            Ok(())
        }
        _ => Err(": expected true or a mapping".to_owned()),
    }
}

fn validate_single(value: &Value) -> Result<(), String> {
    match value {
        Value::Bool(true) => Ok(()),
        Value::Object(map) => {
            for (key, flag) in map {
                if !matches!(key.as_str(), "read" | "control" | "edit") {
                    return Err(format!(": unknown permission key '{key}'"));
                }
                if flag != &Value::Bool(true) {
                    return Err(format!(".{key}: only true is allowed"));
                }
            }
            Ok(())
        }
        _ => Err(": expected true or a mapping".to_owned()),
    }
}

/// Merges policies, most permissive wins (`true` > object > absent).
pub fn merge_policies<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Policy {
    let values: Vec<Value> = policies.into_iter().map(Policy::to_value).collect();
    let refs: Vec<&Value> = values.iter().collect();
    match merge_values(&refs) {
        Some(Value::Object(map)) => Policy(map),
        _ => Policy::default(),
    }
}

fn merge_values(values: &[&Value]) -> Option<Value> {
    let mut objects: Vec<&Map<String, Value>> = Vec::new();
    let mut seen_other: Option<&Value> = None;
    for value in values.iter().copied() {
        match value {
            Value::Null => {}
            Value::Bool(true) => return Some(Value::Bool(true)),
            Value::Object(map) => objects.push(map),
            other => {
                seen_other.get_or_insert(other);
            }
        }
    }
    if objects.is_empty() {
        return seen_other.cloned();
    }
    let mut merged = Map::new();
    for map in &objects {
        for key in map.keys() {
            if merged.contains_key(key) {
                continue;
            }
            let subs: Vec<&Value> = objects.iter().filter_map(|m| m.get(key)).collect();
            let sub = merge_values(&subs);
            merged.insert(key.clone(), sub.unwrap_or(Value::Null));
        }
    }
    Some(Value::Object(merged))
}

/// The three permission keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKey {
    /// See state.
    Read,
    /// Call services on it.
    Control,
    /// Change its registry entry.
    Edit,
}

impl PolicyKey {
    /// The key as written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKey::Read => "read",
            PolicyKey::Control => "control",
            PolicyKey::Edit => "edit",
        }
    }
}

/// Entity and device registry lookups needed by `device_ids` and `area_ids` policies.
pub trait EntityLookup {
    /// The device an entity belongs to, if registered.
    fn device_of(&self, entity_id: &str) -> Option<String>;
    /// The area of a device (a child device without an area inherits its parent's).
    fn area_of_device(&self, device_id: &str) -> Option<String>;
}

/// A registry that knows no entities: `device_ids`/`area_ids` lookups have no opinion.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRegistry;

impl EntityLookup for NoRegistry {
    fn device_of(&self, _entity_id: &str) -> Option<String> {
        None
    }
    fn area_of_device(&self, _device_id: &str) -> Option<String> {
        None
    }
}

/// A user's effective permissions.
#[derive(Clone, Debug, PartialEq)]
pub enum Permissions {
    /// The owner: everything is allowed.
    Owner,
    /// The merged policy of the user's groups.
    Policy(Policy),
}

impl Permissions {
    /// Whether the user may `key` the entity `entity_id`.
    pub fn check_entity(
        &self,
        entity_id: &str,
        key: PolicyKey,
        registry: &dyn EntityLookup,
    ) -> bool {
        let policy = match self {
            Permissions::Owner => return true,
            Permissions::Policy(policy) => policy,
        };
        let entities = match policy.0.get(CAT_ENTITIES) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => return false,
            Some(Value::Bool(true)) => return true,
            Some(Value::Object(map)) if map.is_empty() => return false,
            Some(Value::Object(map)) => map,
            Some(_) => return false,
        };
        let mut lookups: Vec<(&str, &Map<String, Value>)> = Vec::new();
        let mut all_value: Option<&Value> = None;
        for sub in SUBCATEGORIES {
            match entities.get(sub) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(_)) => return true,
                Some(Value::Object(map)) if sub != "all" => lookups.push((sub, map)),
                Some(value) if sub == "all" => all_value = Some(value),
                Some(_) => {}
            }
        }
        let mut opinions: Vec<Option<bool>> = Vec::new();
        for (sub, map) in &lookups {
            let found = match *sub {
                "entity_ids" => map.get(entity_id),
                "device_ids" => registry.device_of(entity_id).and_then(|d| map.get(&d)),
                "area_ids" => registry
                    .device_of(entity_id)
                    .and_then(|d| registry.area_of_device(&d))
                    .and_then(|a| map.get(&a)),
                _ => map.get(entity_id.split('.').next().unwrap_or(entity_id)),
            };
            opinions.push(found.and_then(|v| opinion(v, key)));
        }
        if let Some(all) = all_value {
            opinions.push(opinion(all, key));
        }
        match opinions.as_slice() {
            [] => false,
            [single] => *single == Some(true),
            many => many.iter().flatten().next().copied().unwrap_or(false),
        }
    }

    /// Whether the user may `key` every entity (HA's `access_all_entities`).
    pub fn access_all_entities(&self, key: PolicyKey) -> bool {
        let policy = match self {
            Permissions::Owner => return true,
            Permissions::Policy(policy) => policy,
        };
        match policy.0.get(CAT_ENTITIES) {
            Some(Value::Object(map)) => match map.get("all") {
                Some(Value::Object(all)) => all.get(key.as_str()).is_some_and(truthy),
                Some(other) => truthy(other),
                None => false,
            },
            Some(other) => truthy(other),
            None => false,
        }
    }

    /// The ids the user may `key`: all of them for admins or all-entity access, else those passing
    /// [`Permissions::check_entity`].
    pub fn filter_entity_ids<'a>(
        &self,
        is_admin: bool,
        ids: impl IntoIterator<Item = &'a str>,
        key: PolicyKey,
        registry: &dyn EntityLookup,
    ) -> Vec<&'a str> {
        if is_admin || self.access_all_entities(key) {
            return ids.into_iter().collect();
        }
        ids.into_iter()
            .filter(|id| self.check_entity(id, key, registry))
            .collect()
    }
}

fn opinion(value: &Value, key: PolicyKey) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Object(map) => map.get(key.as_str()).map(truthy),
        Value::Null => None,
        other => Some(truthy(other)),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
