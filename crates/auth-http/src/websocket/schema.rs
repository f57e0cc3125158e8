//! Strict validation of command messages, with Home Assistant's (2026.10+) error wording:
//! `required key not provided at 'lifespan'. Got None`.

use serde_json::{Map, Value};

/// Longest `Got …` summary of an offending value (as HA's humaniser).
const MAX_SUMMARY: usize = 500;

/// The type a field must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string.
    Str,
    /// An integer (booleans and floats are refused).
    Int,
    /// A boolean.
    Bool,
    /// A list of strings.
    StrList,
    /// Any value.
    Any,
}

/// One key of a command schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// A required key.
pub(crate) const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

/// An optional key.
pub(crate) const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

/// Checks `msg` against `fields`; `always_allowed` keys (the envelope) are not checked. All
/// problems are reported, sorted, one per line (as HA's humaniser does).
pub(crate) fn validate(
    msg: &Map<String, Value>,
    always_allowed: &[&str],
    fields: &[Field],
) -> Result<(), String> {
    let mut errors = Vec::new();
    for (key, value) in msg {
        if !always_allowed.contains(&key.as_str()) && !fields.iter().any(|f| f.name == key) {
            errors.push(problem("not a valid option", key, Some(value)));
        }
    }
    for field in fields {
        match msg.get(field.name) {
            None if field.required => {
                errors.push(problem("required key not provided", field.name, None));
            }
            None => {}
            Some(value) => check_kind(field, value, &mut errors),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.sort();
        Err(errors.join("\n"))
    }
}

fn check_kind(field: &Field, value: &Value, errors: &mut Vec<String>) {
    let ok = match field.kind {
        Kind::Str => value.is_string(),
        Kind::Int => value.is_i64() || value.is_u64(),
        Kind::Bool => value.is_boolean(),
        Kind::Any => true,
        Kind::StrList => match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        let at = format!("{}[{index}]", field.name);
                        errors.push(problem("expected str", &at, Some(item)));
                    }
                }
                true
            }
            _ => false,
        },
    };
    if !ok {
        let expected = match field.kind {
            Kind::Str => "expected str",
            Kind::Int => "expected int",
            Kind::Bool => "expected bool",
            Kind::StrList | Kind::Any => "expected list",
        };
        errors.push(problem(expected, field.name, Some(value)));
    }
}

/// `<what> at '<key>'. Got <repr>`.
pub(crate) fn problem(what: &str, key: &str, value: Option<&Value>) -> String {
    format!("{what} at '{key}'. Got {}", summary(value))
}

/// Python's `repr` of the value (`None` when absent), cut at HA's summary length.
pub(crate) fn summary(value: Option<&Value>) -> String {
    let text = match value {
        Some(value) => py_repr(value),
        None => "None".to_owned(),
    };
    if text.chars().count() > MAX_SUMMARY {
        let cut: String = text.chars().take(MAX_SUMMARY - 3).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// A JSON value as Python prints the decoded object.
pub(crate) fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(key, out);
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

fn write_str_repr(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn python_repr() {
        assert_eq!(py_repr(&json!(null)), "None");
        assert_eq!(py_repr(&json!(true)), "True");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!("a'\"b")), "'a\\'\"b'");
        assert_eq!(
            py_repr(&json!({"a": [1, "x\n"], "b": {}})),
            "{'a': [1, 'x\\n'], 'b': {}}"
        );
    }

    #[test]
    fn messages_use_the_new_wording() {
        let fields = [req("lifespan", Kind::Int), opt("client_icon", Kind::Str)];
        let msg = map(json!({"id": 1, "type": "x", "client_icon": 5, "extra": true}));
        assert_eq!(
            validate(&msg, &["id", "type"], &fields).unwrap_err(),
            "expected str at 'client_icon'. Got 5\n\
             not a valid option at 'extra'. Got True\n\
             required key not provided at 'lifespan'. Got None"
        );
        let list = [opt("group_ids", Kind::StrList)];
        assert_eq!(
            validate(&map(json!({"group_ids": ["a", 1]})), &[], &list).unwrap_err(),
            "expected str at 'group_ids[1]'. Got 1"
        );
        assert_eq!(
            validate(&map(json!({"group_ids": "a"})), &[], &list).unwrap_err(),
            "expected list at 'group_ids'. Got 'a'"
        );
        assert!(validate(&map(json!({"lifespan": 3})), &[], &fields).is_ok());
        assert!(validate(&map(json!({"lifespan": 3.0})), &[], &fields).is_err());
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(2000);
        let text = summary(Some(&json!(long)));
        assert_eq!(text.chars().count(), MAX_SUMMARY);
        assert!(text.ends_with("..."));
    }
}
