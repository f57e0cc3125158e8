//! Form schemas: the fields a form step asks for, their strict validation, and
//! their serialisation in Home Assistant's field-list (`data_schema`) format.

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// An ordered list of form fields (one voluptuous-style schema dictionary).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    fields: Vec<Field>,
}

/// One key of a form schema: its name, value type, marker and default.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The key of the field in the submitted input.
    pub name: String,
    /// What values the field accepts.
    pub kind: FieldKind,
    /// Whether the key must be present (a required marker).
    pub required: bool,
    /// Whether the key carries an explicit optional marker (serialised as `"optional": true`).
    pub optional_marker: bool,
    /// Value inserted when the key is missing from the input.
    pub default: Option<Value>,
    /// Marker description (serialised as `description`, e.g. `{"suggested_value": ...}`).
    pub description: Option<Value>,
}

/// The value type of a [`Field`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldKind {
    /// A JSON string.
    String,
    /// A JSON integer (no floats, no numeric strings, no booleans).
    Integer,
    /// A JSON number written with a fraction or exponent (like Python's `float` check).
    Float,
    /// A JSON boolean.
    Boolean,
    /// One of the listed `(value, label)` options; the input must be a string equal to a value.
    Select(Vec<(String, Option<String>)>),
    /// Exactly this value.
    Constant(Value),
}

/// Input that failed validation against a [`Schema`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_errors(&self.errors))]
pub struct InvalidInput {
    /// `(field name or "base", message)` pairs, in the order they were found.
    pub errors: Vec<(String, String)>,
}

fn display_errors(errors: &[(String, String)]) -> String {
    if errors.is_empty() {
        return "invalid input".to_owned();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|(field, message)| {
            if field == "base" {
                message.clone()
            } else {
                format!("{message} at '{field}'")
            }
        })
        .collect();
    parts.join("; ")
}

impl InvalidInput {
    /// One error about `field` (or `"base"`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errors: vec![(field.into(), message.into())],
        }
    }
}

impl Schema {
    /// A schema made of `fields`, in declaration order (names should be unique).
    pub fn new(fields: Vec<Field>) -> Self {
        Self { fields }
    }

    /// The fields in declaration order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Strictly validates `input`: no extra keys, exact value types, select values among
    /// the options, required keys present; inserts defaults; output is in schema order.
    pub fn validate(&self, input: &Map<String, Value>) -> Result<Map<String, Value>, InvalidInput> {
        let mut errors = Vec::new();
        for key in input.keys() {
            if self.field(key).is_none() {
                errors.push((key.clone(), "extra keys not allowed".to_owned()));
            }
        }
        let mut output = Map::new();
        for field in &self.fields {
            match input.get(&field.name) {
                Some(value) => match field.kind.check(value) {
                    Ok(()) => {
                        output.insert(field.name.clone(), value.clone());
                    }
                    Err(message) => errors.push((field.name.clone(), message)),
                },
                None => {
                    if let Some(default) = &field.default {
                        output.insert(field.name.clone(), default.clone());
                    } else if field.required {
                        errors.push((field.name.clone(), "required key not provided".to_owned()));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(output)
        } else {
            Err(InvalidInput { errors })
        }
    }
}

impl FromIterator<Field> for Schema {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

impl Field {
    fn plain(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
            required: false,
            optional_marker: false,
            default: None,
            description: None,
        }
    }

    /// An unmarked string field.
    pub fn string(name: impl Into<String>) -> Self {
        Self::plain(name, FieldKind::String)
    }

    /// An unmarked integer field.
    pub fn integer(name: impl Into<String>) -> Self {
        Self::plain(name, FieldKind::Integer)
    }

    /// An unmarked float field.
    pub fn float(name: impl Into<String>) -> Self {
        Self::plain(name, FieldKind::Float)
    }

    /// An unmarked boolean field.
    pub fn boolean(name: impl Into<String>) -> Self {
        Self::plain(name, FieldKind::Boolean)
    }

    /// An unmarked select field over `(value, label)` options.
    pub fn select(name: impl Into<String>, options: Vec<(String, Option<String>)>) -> Self {
        Self::plain(name, FieldKind::Select(options))
    }

    /// An unmarked field that only accepts `value`.
    pub fn constant(name: impl Into<String>, value: Value) -> Self {
        Self::plain(name, FieldKind::Constant(value))
    }

    /// Marks the field required (`"required": true`).
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self.optional_marker = false;
        self
    }

    /// Marks the field explicitly optional (`"required": false, "optional": true`).
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.optional_marker = true;
        self
    }

    /// Sets the value inserted when the key is missing.
    #[must_use]
    pub fn with_default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// Sets the marker description (e.g. `{"suggested_value": ...}`).
    #[must_use]
    pub fn with_description(mut self, description: Value) -> Self {
        self.description = Some(description);
        self
    }
}

impl FieldKind {
    /// The `type` string of the field-list format.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::String => "string",
            FieldKind::Integer => "integer",
            FieldKind::Float => "float",
            FieldKind::Boolean => "boolean",
            FieldKind::Select(_) => "select",
            FieldKind::Constant(_) => "constant",
        }
    }

    /// Checks one value; `Err` carries the message (without the field name).
    fn check(&self, value: &Value) -> Result<(), String> {
        let ok = match self {
            FieldKind::String => value.is_string(),
            FieldKind::Integer => value.is_i64() || value.is_u64(),
            FieldKind::Float => value.is_f64(),
            FieldKind::Boolean => value.is_boolean(),
            FieldKind::Select(options) => {
                let found = value
                    .as_str()
                    .is_some_and(|v| options.iter().any(|(option, _)| option == v));
                if !found {
                    return Err(format!("value must be one of [{}]", OptionList(options)));
                }
                true
            }
            FieldKind::Constant(expected) => {
                if value != expected {
                    return Err("not a valid value".to_owned());
                }
                true
            }
        };
        if ok {
            Ok(())
        } else {
            let expected = match self {
                FieldKind::Integer => "int",
                FieldKind::Float => "float",
                FieldKind::Boolean => "bool",
                _ => "str",
            };
            Err(format!("expected {expected}"))
        }
    }
}

struct OptionList<'a>(&'a [(String, Option<String>)]);

impl fmt::Display for OptionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (value, _)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "'{value}'")?;
        }
        Ok(())
    }
}

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.fields.len()))?;
        for field in &self.fields {
            seq.serialize_element(field)?;
        }
        seq.end()
    }
}

/// Serialises options as `[[value, label], ...]` with `null` labels.
struct Options<'a>(&'a [(String, Option<String>)]);

impl Serialize for Options<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (value, label) in self.0 {
            seq.serialize_element(&(value, label))?;
        }
        seq.end()
    }
}

impl Serialize for Field {
    /// Key order as Home Assistant emits it: `type`, `options`/`value`, `name`,
    /// `description`, `required`, `optional`, `default`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind.type_name())?;
        match &self.kind {
            FieldKind::Select(options) => map.serialize_entry("options", &Options(options))?,
            FieldKind::Constant(value) => map.serialize_entry("value", value)?,
            _ => {}
        }
        map.serialize_entry("name", &self.name)?;
        if let Some(description) = &self.description {
            map.serialize_entry("description", description)?;
        }
        map.serialize_entry("required", &self.required)?;
        if self.optional_marker {
            map.serialize_entry("optional", &true)?;
        }
        if let Some(default) = &self.default {
            map.serialize_entry("default", default)?;
        }
        map.end()
    }
}
