//! Unit tests: network, user id and boolean parsing; config shapes.

use serde_json::{Value, json};

use crate::config::{
    Config, NetworkError, TrustedUser, parse_lenient_bool, parse_network, parse_user_id,
};

fn net(text: &str) -> ipnet::IpNet {
    text.parse().expect("valid test network")
}

fn config(value: Value) -> Result<Config, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

const ALICE: &str = "3e57f1b79298450995152b2063eac662";

#[test]
fn networks_parse_like_python_ip_network() {
    assert_eq!(parse_network("192.168.0.0/24"), Ok(net("192.168.0.0/24")));
    assert_eq!(parse_network("192.168.0.10"), Ok(net("192.168.0.10/32")));
    assert_eq!(parse_network("fd00::/8"), Ok(net("fd00::/8")));
    assert_eq!(parse_network("::1"), Ok(net("::1/128")));
    assert_eq!(parse_network("0.0.0.0/0"), Ok(net("0.0.0.0/0")));
    assert_eq!(parse_network("0.0.0.0/00"), Ok(net("0.0.0.0/0")));
    assert!(matches!(
        parse_network("10.0.0.0/00"),
        Err(NetworkError::HostBitsSet { .. })
    ));
    assert_eq!(parse_network("10.0.0.0/008"), Ok(net("10.0.0.0/8")));
    assert_eq!(
        parse_network("192.168.0.0/255.255.255.0"),
        Ok(net("192.168.0.0/24"))
    );
    assert_eq!(
        parse_network("192.168.0.0/0.0.0.255"),
        Ok(net("192.168.0.0/24"))
    );
    assert_eq!(
        parse_network("1.2.3.4/255.255.255.255"),
        Ok(net("1.2.3.4/32"))
    );
}

#[test]
fn host_bits_and_garbage_are_refused_with_the_value_named() {
    let error = parse_network("192.168.0.1/24").expect_err("host bits");
    assert_eq!(
        error,
        NetworkError::HostBitsSet {
            given: "192.168.0.1/24".to_owned(),
            network: net("192.168.0.0/24"),
        }
    );
    assert_eq!(
        error.to_string(),
        "192.168.0.1/24 has host bits set (did you mean 192.168.0.0/24?)"
    );
    assert!(matches!(
        parse_network("fd00::1/8"),
        Err(NetworkError::HostBitsSet { .. })
    ));
    for bad in [
        "",
        "foo",
        "192.168.0.0/",
        "192.168.0.0/33",
        "fd00::/129",
        "192.168.0.0/24/1",
        "192.168.0.0/255.0.255.0",
        "fd00::/ffff::",
        " 10.0.0.0/8",
        "10.0.0.0/+8",
        "10.0.0.0/99999999999999999999",
    ] {
        assert_eq!(
            parse_network(bad),
            Err(NetworkError::Invalid(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert_eq!(
        NetworkError::Invalid("foo".into()).to_string(),
        "'foo' does not appear to be an IPv4 or IPv6 network"
    );
}

#[test]
fn user_ids_must_be_uuid4_hex() {
    assert_eq!(parse_user_id(ALICE), Ok(ALICE.to_owned()));
    assert_eq!(
        parse_user_id(&ALICE.to_uppercase()),
        Ok(ALICE.to_owned()),
        "any case, stored lowercase"
    );
    for bad in [
        "3e57f1b7-9298-4509-9515-2b2063eac662",
        "3e57f1b79298150995152b2063eac662", // version 1
        "3e57f1b79298450915152b2063eac662", // variant bits 0xxx
        "3e57f1b79298450995152b2063eac66",
        "3e57f1b79298450995152b2063eac662a",
        "3e57f1b79298450995152b2063eac66g",
        "",
    ] {
        assert_eq!(
            parse_user_id(bad),
            Err(format!("Invalid Version4 UUID: '{bad}'")),
            "{bad}"
        );
    }
}

#[test]
fn lenient_booleans() {
    for yes in [
        json!(true),
        json!("true"),
        json!(" Yes "),
        json!("ON"),
        json!("1"),
        json!("Enable"),
        json!(1),
        json!(2),
        json!(0.5),
    ] {
        assert_eq!(parse_lenient_bool(&yes), Ok(true), "{yes}");
    }
    for no in [
        json!(false),
        json!("FALSE"),
        json!("no"),
        json!("off"),
        json!("0"),
        json!("disable"),
        json!(0),
        json!(0.0),
    ] {
        assert_eq!(parse_lenient_bool(&no), Ok(false), "{no}");
    }
    for bad in [json!("maybe"), json!(null), json!([]), json!({}), json!("")] {
        assert_eq!(
            parse_lenient_bool(&bad),
            Err(format!("invalid boolean value {bad}")),
            "{bad}"
        );
    }
}

#[test]
fn full_config_parses_in_order() {
    let parsed = config(json!({
        "trusted_networks": ["192.168.0.0/24", "fd00::/8", "10.0.0.1"],
        "trusted_users": {
            "192.168.0.10": ALICE,
            "192.168.0.0/24": [ALICE.to_uppercase(), {"group": "system-users"}],
            "10.0.0.1/32": null,
        },
        "allow_bypass_login": "yes",
    }))
    .expect("valid");
    assert_eq!(
        parsed,
        Config {
            trusted_networks: vec![net("192.168.0.0/24"), net("fd00::/8"), net("10.0.0.1/32")],
            trusted_users: vec![
                (
                    net("192.168.0.10/32"),
                    vec![TrustedUser::User(ALICE.to_owned())]
                ),
                (
                    net("192.168.0.0/24"),
                    vec![
                        TrustedUser::User(ALICE.to_owned()),
                        TrustedUser::Group("system-users".to_owned())
                    ]
                ),
                (net("10.0.0.1/32"), vec![]),
            ],
            allow_bypass_login: true,
        }
    );
}

#[test]
fn defaults_and_single_values() {
    let parsed = config(json!({"trusted_networks": "127.0.0.1"})).expect("valid");
    assert_eq!(parsed.trusted_networks, vec![net("127.0.0.1/32")]);
    assert!(parsed.trusted_users.is_empty());
    assert!(!parsed.allow_bypass_login);
    let empty = config(json!({"trusted_networks": []})).expect("valid");
    assert!(empty.trusted_networks.is_empty());
    let grouped = config(json!({
        "trusted_networks": "10.0.0.0/8",
        "trusted_users": {"10.0.0.0/8": {"group": "g1"}},
    }))
    .expect("valid");
    assert_eq!(
        grouped.trusted_users,
        vec![(net("10.0.0.0/8"), vec![TrustedUser::Group("g1".to_owned())])]
    );
}

#[test]
fn two_spellings_of_one_network_keep_the_first_position_and_the_last_list() {
    let parsed = config(json!({
        "trusted_networks": "10.0.0.0/8",
        "trusted_users": {
            "10.0.0.1": ALICE,
            "10.0.0.0/8": [],
            "10.0.0.1/32": {"group": "g"},
        },
    }))
    .expect("valid");
    assert_eq!(
        parsed.trusted_users,
        vec![
            (net("10.0.0.1/32"), vec![TrustedUser::Group("g".to_owned())]),
            (net("10.0.0.0/8"), vec![]),
        ]
    );
}

#[test]
fn config_errors_name_the_value() {
    let cases = [
        (
            json!({"trusted_networks": ["192.168.0.1/24"]}),
            "trusted_networks: 192.168.0.1/24 has host bits set (did you mean 192.168.0.0/24?)",
        ),
        (
            json!({"trusted_networks": "nope"}),
            "trusted_networks: 'nope' does not appear to be an IPv4 or IPv6 network",
        ),
        (
            json!({"trusted_networks": [42]}),
            "trusted_networks: expected a network string, got 42",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "trusted_users": {"10.0.0.1/8": []}}),
            "trusted_users: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "trusted_users": {"10.0.0.0/8": ["alice"]}}),
            "trusted_users[10.0.0.0/8]: Invalid Version4 UUID: 'alice'",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "trusted_users": {"10.0.0.0/8": {"group": "g", "x": 1}}}),
            "trusted_users[10.0.0.0/8]: extra key 'x' not allowed (expected {group: <group id>})",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "trusted_users": {"10.0.0.0/8": {"group": ["g"]}}}),
            "trusted_users[10.0.0.0/8]: group must be a string (a group id), got [\"g\"]",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "trusted_users": ["10.0.0.0/8"]}),
            "trusted_users: expected a map of network -> users, got [\"10.0.0.0/8\"]",
        ),
        (
            json!({"trusted_networks": "10.0.0.0/8", "allow_bypass_login": "sure"}),
            "allow_bypass_login: invalid boolean value \"sure\"",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(config(value.clone()), Err(expected.to_owned()), "{value}");
    }
    let unknown = config(json!({"trusted_networks": "10.0.0.0/8", "trusted_user": {}}))
        .expect_err("unknown key");
    assert!(
        unknown.contains("unknown field `trusted_user`"),
        "{unknown}"
    );
    let missing = config(json!({})).expect_err("required");
    assert!(
        missing.contains("missing field `trusted_networks`"),
        "{missing}"
    );
}

#[test]
fn schema_describes_the_keys() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("json");
    let properties = &schema["properties"];
    assert!(
        properties["trusted_networks"]["anyOf"].is_array(),
        "{schema}"
    );
    assert_eq!(properties["trusted_users"]["default"], json!({}));
    assert_eq!(properties["allow_bypass_login"]["default"], json!(false));
    assert_eq!(schema["required"], json!(["trusted_networks"]));
    assert_eq!(schema["additionalProperties"], json!(false));
}
