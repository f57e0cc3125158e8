//! Unit tests of the YAML layer: positions, implicit typing, tags, aliases and merge keys.

// Dev-dependencies used only by the integration tests (the lib's test build sees them too).
use auth_testkit as _;
use criterion as _;
use proptest as _;
use provider_example_fork as _;
use tempfile as _;
use time as _;
use tokio as _;

use std::path::Path;

use crate::resolve::{Resolver, Value, plain_scalar};
use crate::yaml::{Raw, SourceFile, parse_document};

fn no_env(_: &str) -> Option<String> {
    None
}

fn resolve(text: &str) -> Result<crate::resolve::Node, crate::ConfigError> {
    let file = SourceFile::root(Path::new("t.yaml"));
    let root = parse_document(text, &file)?.expect("a document");
    Resolver::new(file.dir(), &no_env).resolve(&root, "")
}

#[test]
fn plain_scalars_are_typed_like_yaml_1_1() {
    assert_eq!(plain_scalar(""), Value::Null);
    assert_eq!(plain_scalar("~"), Value::Null);
    assert_eq!(plain_scalar("on"), Value::Bool(true));
    assert_eq!(plain_scalar("No"), Value::Bool(false));
    assert_eq!(plain_scalar("42"), Value::Int(42));
    assert_eq!(plain_scalar("-1"), Value::Int(-1));
    assert_eq!(plain_scalar("1_000"), Value::Int(1000));
    assert_eq!(plain_scalar("0x1F"), Value::Int(31));
    assert_eq!(plain_scalar("0b101"), Value::Int(5));
    assert_eq!(plain_scalar("0755"), Value::Int(493));
    assert_eq!(plain_scalar("000000"), Value::Int(0));
    assert_eq!(plain_scalar("1:30"), Value::Int(90));
    assert_eq!(plain_scalar("1.5"), Value::Float(1.5));
    assert_eq!(plain_scalar(".5"), Value::Float(0.5));
    assert_eq!(plain_scalar("1.5e+3"), Value::Float(1500.0));
    assert_eq!(plain_scalar("-.inf"), Value::Float(f64::NEG_INFINITY));
    assert!(matches!(plain_scalar(".nan"), Value::Float(f) if f.is_nan()));
    // Not numbers in YAML 1.1.
    for text in [
        "1e5",
        "09",
        "192.168.0.10",
        "fd00::/8",
        "1.2.3",
        "0x",
        "+",
        ".",
        "1:60",
        "abc",
        "3e57f1b79298450995152b2063eac662",
    ] {
        assert_eq!(plain_scalar(text), Value::Str(text.to_owned()), "{text}");
    }
}

#[test]
fn every_node_has_a_position() {
    let file = SourceFile::root(Path::new("dir/c.yaml"));
    let root = parse_document("a:\n  - x\n  - {b: 1}\n", &file)
        .unwrap()
        .unwrap();
    let Raw::Map(entries) = &root.raw else {
        panic!("map expected")
    };
    let (key, value) = &entries[0];
    assert_eq!((key.mark.line, key.mark.column), (1, 1));
    let Raw::Seq(items) = &value.raw else {
        panic!("seq expected")
    };
    assert_eq!((items[0].mark.line, items[0].mark.column), (2, 5));
    assert_eq!((items[1].mark.line, items[1].mark.column), (3, 5));
    assert_eq!(root.mark.location().to_string(), "dir/c.yaml:1:1");
}

#[test]
fn quoted_and_core_tagged_scalars_stay_strings() {
    let node = resolve("a: '1'\nb: !!str yes\nc: \"on\"\nd: |\n  7\ne: !!int '12'\n").unwrap();
    let Value::Map(entries) = node.value else {
        panic!()
    };
    let values: Vec<_> = entries.into_iter().map(|(_, v)| v.value).collect();
    assert_eq!(
        values,
        vec![
            Value::Str("1".into()),
            Value::Str("yes".into()),
            Value::Str("on".into()),
            Value::Str("7\n".into()),
            Value::Int(12),
        ]
    );
}

#[test]
fn aliases_and_merge_keys() {
    let node =
        resolve("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [&v 5, *v]\n").unwrap();
    let Value::Map(entries) = node.value else {
        panic!()
    };
    let other = &entries[1].1.value;
    let Value::Map(other) = other else { panic!() };
    let pairs: Vec<_> = other
        .iter()
        .map(|(k, v)| (k.name.as_str(), v.value.clone()))
        .collect();
    assert_eq!(pairs, vec![("y", Value::Int(3)), ("x", Value::Int(1))]);
    let Value::Seq(list) = &entries[2].1.value else {
        panic!()
    };
    assert_eq!(list[1].value, Value::Int(5));
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let file = SourceFile::root(Path::new("bomb.yaml"));
    let err = parse_document(&text, &file).unwrap_err();
    assert!(err.to_string().contains("more than 200000 nodes"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    // Block style reaches our own limit; flow style hits the parser's first.
    let mut text = String::new();
    for depth in 0..200 {
        text.push_str(&format!("{}k{depth}:\n", "  ".repeat(depth)));
    }
    let file = SourceFile::root(Path::new("deep.yaml"));
    let err = parse_document(&text, &file).unwrap_err();
    assert!(
        err.to_string().contains("nested deeper than 128 levels"),
        "{err}"
    );
    let text = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let err = parse_document(&text, &file).unwrap_err();
    assert!(err.to_string().starts_with("deep.yaml:1:"), "{err}");
}

#[test]
fn two_documents_are_refused() {
    let file = SourceFile::root(Path::new("two.yaml"));
    let err = parse_document("a: 1\n---\nb: 2\n", &file).unwrap_err();
    assert_eq!(
        err.to_string(),
        "two.yaml:2:1: invalid YAML: expected a single document, found a second one (`---`)"
    );
}

#[test]
fn unknown_tags_are_errors_with_position() {
    let err = resolve("a:\n  b: !input name\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.yaml:2:6: a.b: unsupported tag !input (hass-auth resolves !secret, !env_var and !include in the sections it reads)"
    );
    let err = resolve("a: !!binary aGk=\n").unwrap_err();
    assert!(
        err.to_string().contains("unsupported tag !!binary"),
        "{err}"
    );
}
