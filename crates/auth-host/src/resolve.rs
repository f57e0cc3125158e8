//! Tag resolution (`!secret`, `!env_var`, `!include`) and implicit typing of plain scalars.
//!
//! Resolution is lazy: only the sections hass-auth reads are resolved, so that `automation:
//! !include automations.yaml` or `!include_dir_merge_named packages` elsewhere in a Home
//! Assistant configuration neither needs the files nor fails. A tag in a section that *is* read
//! is always either resolved or an error, never dropped.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::error::ConfigError;
use crate::yaml::{MAX_DEPTH, Mark, Raw, RawNode, SourceFile, Tag, parse_document};

/// Longest chain of nested `!include`s.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Looks up environment variables (injectable for tests).
pub(crate) type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A resolved value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A boolean (YAML 1.1 forms: `true`, `yes`, `on`, ...).
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, duplicate keys kept in order (callers decide).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// What kind of value this is, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A mapping key.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    /// The key as text.
    pub name: String,
    /// Where it is.
    pub mark: Mark,
}

impl PartialEq for Mark {
    fn eq(&self, other: &Self) -> bool {
        self.file.path == other.file.path && self.line == other.line && self.column == other.column
    }
}

/// A resolved node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Where it is (for a `!secret` or `!env_var`: where the tag was used).
    pub mark: Mark,
    /// Whether it came from `!secret` or `!env_var` (kept out of messages).
    pub sensitive: bool,
}

/// Result of following tags at the top of a node.
pub(crate) struct Followed<'n> {
    /// The node reached (untagged, or with a core tag).
    pub node: Cow<'n, RawNode>,
    /// Whether a `!secret` or `!env_var` was followed.
    pub sensitive: bool,
    /// Where the first tag was used.
    pub site: Mark,
}

impl Followed<'_> {
    /// The mark to report: the tag's use site for secrets, else the node's own.
    pub fn mark(&self) -> Mark {
        if self.sensitive {
            self.site.clone()
        } else {
            self.node.mark.clone()
        }
    }
}

/// Resolves tags relative to the files they are written in.
pub(crate) struct Resolver<'a> {
    /// The configuration directory (`secrets.yaml` is looked up from a file's folder up to here).
    root_dir: PathBuf,
    env: &'a EnvLookup,
    /// `secrets.yaml` files read so far, by path (`None`: no such file).
    secrets: RefCell<HashMap<PathBuf, Option<Rc<RawNode>>>>,
}

/// `parent.child` / `child`.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(mark: &Mark, path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: mark.location(),
        key_path: if path.is_empty() {
            "(top level)".to_owned()
        } else {
            path.to_owned()
        },
        message: message.into(),
    }
}

impl<'a> Resolver<'a> {
    /// A resolver for a configuration whose top-level file is in `root_dir`.
    pub fn new(root_dir: PathBuf, env: &'a EnvLookup) -> Self {
        Self {
            root_dir,
            env,
            secrets: RefCell::new(HashMap::new()),
        }
    }

    /// Follows `!secret`, `!env_var` and `!include` at the top of `node` (not below it).
    pub fn follow<'n>(&self, node: &'n RawNode, path: &str) -> Result<Followed<'n>, ConfigError> {
        let site = node.mark.clone();
        let mut current: Cow<'n, RawNode> = Cow::Borrowed(node);
        let mut sensitive = false;
        for _ in 0..=MAX_INCLUDE_DEPTH + 2 {
            let Some(tag) = current.tag.clone() else {
                return Ok(Followed {
                    node: current,
                    sensitive,
                    site,
                });
            };
            if tag.core().is_some() || tag.local() == Some("") {
                return Ok(Followed {
                    node: current,
                    sensitive,
                    site,
                });
            }
            let next = match tag.local() {
                Some("secret") => {
                    let name = self.tag_argument(&current, &tag, path)?;
                    sensitive = true;
                    self.secret(name.trim(), &current.mark, path)?
                }
                Some("env_var") => {
                    let argument = self.tag_argument(&current, &tag, path)?;
                    let mut words = argument.split_whitespace();
                    let name = words.next().unwrap_or_default();
                    let default: Vec<&str> = words.collect();
                    sensitive = true;
                    let value = match (self.env)(name) {
                        Some(value) => value,
                        None if !default.is_empty() => default.join(" "),
                        None => {
                            return Err(invalid(
                                &current.mark,
                                path,
                                format!(
                                    "!env_var: environment variable {name} is not set and no default is given"
                                ),
                            ));
                        }
                    };
                    RawNode::string(value, current.mark.clone())
                }
                Some("include") => {
                    let file = self.tag_argument(&current, &tag, path)?;
                    self.include(file.trim(), &current.mark, path)?
                }
                _ => {
                    return Err(invalid(
                        &current.mark,
                        path,
                        format!(
                            "unsupported tag {tag} (hass-auth resolves !secret, !env_var and !include in the sections it reads)"
                        ),
                    ));
                }
            };
            current = Cow::Owned(next);
        }
        Err(invalid(&site, path, "too many nested tags"))
    }

    /// The scalar argument of a tag like `!secret name`.
    fn tag_argument<'n>(
        &self,
        node: &'n RawNode,
        tag: &Tag,
        path: &str,
    ) -> Result<&'n str, ConfigError> {
        match &node.raw {
            Raw::Scalar { text, .. } if !text.trim().is_empty() => Ok(text),
            _ => Err(invalid(
                &node.mark,
                path,
                format!("{tag} expects a name after it"),
            )),
        }
    }

    /// The value of secret `name` for a tag written at `site`.
    fn secret(&self, name: &str, site: &Mark, path: &str) -> Result<RawNode, ConfigError> {
        if site.file.is_secrets {
            return Err(invalid(
                site,
                path,
                "!secret cannot be used inside secrets.yaml",
            ));
        }
        let mut looked = Vec::new();
        for dir in self.secret_dirs(&site.file.dir()) {
            let file = dir.join("secrets.yaml");
            let secrets = self.load_secrets(&file)?;
            if let Some(secrets) = &secrets
                && let Raw::Map(entries) = &secrets.raw
                && let Some((_, value)) = entries
                    .iter()
                    .rev()
                    .find(|(k, _)| matches!(&k.raw, Raw::Scalar { text, .. } if text == name))
            {
                return Ok(value.clone());
            }
            looked.push((file, secrets.is_some()));
        }
        let used_in = site.file.path.display();
        let message = if looked.iter().any(|(_, exists)| *exists) {
            let files: Vec<String> = looked
                .iter()
                .filter(|(_, exists)| *exists)
                .map(|(f, _)| f.display().to_string())
                .collect();
            format!(
                "secret '{name}' (used in {used_in}) is not defined in {}",
                files.join(", ")
            )
        } else {
            let files: Vec<String> = looked
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect();
            format!(
                "secret '{name}' (used in {used_in}) cannot be looked up: secrets.yaml not found (looked for {})",
                files.join(", ")
            )
        };
        Err(invalid(site, path, message))
    }

    /// The folders searched for `secrets.yaml`: the file's own, then its parents up to the
    /// configuration directory.
    fn secret_dirs(&self, start: &Path) -> Vec<PathBuf> {
        let mut dirs = vec![start.to_owned()];
        let (Ok(mut dir), Ok(root)) = (start.canonicalize(), self.root_dir.canonicalize()) else {
            return dirs;
        };
        while dir != root && dir.starts_with(&root) {
            match dir.parent() {
                Some(parent) => {
                    dir = parent.to_owned();
                    dirs.push(dir.clone());
                }
                None => break,
            }
        }
        dirs
    }

    fn load_secrets(&self, file: &Path) -> Result<Option<Rc<RawNode>>, ConfigError> {
        if let Some(cached) = self.secrets.borrow().get(file) {
            return Ok(cached.clone());
        }
        let loaded = match std::fs::read_to_string(file) {
            Ok(text) => {
                let source = Arc::new(SourceFile {
                    path: file.to_owned(),
                    included_from: None,
                    is_secrets: true,
                });
                let root = parse_document(&text, &source)?
                    .unwrap_or_else(|| RawNode::empty_map(Mark::start_of(&source)));
                if !matches!(root.raw, Raw::Map(_)) || root.tag.is_some() {
                    return Err(invalid(
                        &root.mark,
                        "",
                        "secrets.yaml must be a mapping of secret names to values",
                    ));
                }
                Some(Rc::new(root))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: file.to_owned(),
                    source,
                });
            }
        };
        self.secrets
            .borrow_mut()
            .insert(file.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// The content of file `relative` (relative to the file containing `site`).
    fn include(&self, relative: &str, site: &Mark, path: &str) -> Result<RawNode, ConfigError> {
        let target = site.file.dir().join(relative);
        let text = std::fs::read_to_string(&target).map_err(|e| {
            invalid(
                site,
                path,
                format!("!include: cannot read {}: {e}", target.display()),
            )
        })?;
        let mut chain = Vec::new();
        let mut file = Some(site.file.clone());
        let canonical_target = target.canonicalize().ok();
        while let Some(f) = file {
            chain.push(f.path.display().to_string());
            if canonical_target.is_some() && f.path.canonicalize().ok() == canonical_target {
                chain.reverse();
                return Err(invalid(
                    site,
                    path,
                    format!(
                        "!include cycle: {} -> {}",
                        chain.join(" -> "),
                        target.display()
                    ),
                ));
            }
            file = f.included_from.clone();
        }
        if chain.len() > MAX_INCLUDE_DEPTH {
            return Err(invalid(
                site,
                path,
                format!("!include nested deeper than {MAX_INCLUDE_DEPTH} files"),
            ));
        }
        let source = Arc::new(SourceFile {
            path: target,
            included_from: Some(site.file.clone()),
            is_secrets: site.file.is_secrets,
        });
        // Like Home Assistant, an empty file is an empty mapping.
        Ok(parse_document(&text, &source)?
            .unwrap_or_else(|| RawNode::empty_map(Mark::start_of(&source))))
    }

    /// Resolves `node` and everything below it.
    pub fn resolve(&self, node: &RawNode, path: &str) -> Result<Node, ConfigError> {
        self.resolve_at(node, path, 0, false)
    }

    fn resolve_at(
        &self,
        node: &RawNode,
        path: &str,
        depth: usize,
        inherited_sensitive: bool,
    ) -> Result<Node, ConfigError> {
        if depth > 2 * MAX_DEPTH {
            return Err(invalid(
                &node.mark,
                path,
                format!("nested deeper than {} levels", 2 * MAX_DEPTH),
            ));
        }
        let followed = self.follow(node, path)?;
        let sensitive = inherited_sensitive || followed.sensitive;
        let mark = followed.mark();
        let n: &RawNode = &followed.node;
        let core = n.tag.as_ref().and_then(Tag::core);
        let value = match &n.raw {
            Raw::Scalar { text, plain } => match core {
                Some("str") => Value::Str(text.clone()),
                Some("int") => match plain_scalar(text) {
                    Value::Int(i) => Value::Int(i),
                    _ => return Err(invalid(&mark, path, "!!int: not an integer")),
                },
                Some("float") => match plain_scalar(text) {
                    Value::Int(i) => Value::Float(i as f64),
                    Value::Float(f) => Value::Float(f),
                    _ => return Err(invalid(&mark, path, "!!float: not a number")),
                },
                Some("bool") => match plain_scalar(text) {
                    Value::Bool(b) => Value::Bool(b),
                    _ => return Err(invalid(&mark, path, "!!bool: not a boolean")),
                },
                Some("null") => Value::Null,
                Some(other) => {
                    return Err(invalid(
                        &mark,
                        path,
                        format!("unsupported tag !!{other} on a scalar"),
                    ));
                }
                None if *plain && n.tag.is_none() => plain_scalar(text),
                None => Value::Str(text.clone()),
            },
            Raw::Seq(items) => {
                if !matches!(core, None | Some("seq")) {
                    return Err(invalid(
                        &mark,
                        path,
                        format!(
                            "unsupported tag {} on a list",
                            n.tag.as_ref().map(ToString::to_string).unwrap_or_default()
                        ),
                    ));
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.resolve_at(
                        item,
                        &format!("{path}[{i}]"),
                        depth + 1,
                        sensitive,
                    )?);
                }
                Value::Seq(out)
            }
            Raw::Map(entries) => {
                if !matches!(core, None | Some("map")) {
                    return Err(invalid(
                        &mark,
                        path,
                        format!(
                            "unsupported tag {} on a mapping",
                            n.tag.as_ref().map(ToString::to_string).unwrap_or_default()
                        ),
                    ));
                }
                Value::Map(self.resolve_map(entries, path, depth, sensitive)?)
            }
        };
        Ok(Node {
            value,
            mark,
            sensitive,
        })
    }

    fn resolve_map(
        &self,
        entries: &[(RawNode, RawNode)],
        path: &str,
        depth: usize,
        sensitive: bool,
    ) -> Result<Vec<(Key, Node)>, ConfigError> {
        let mut out: Vec<(Key, Node)> = Vec::with_capacity(entries.len());
        let mut merged: Vec<(Key, Node)> = Vec::new();
        for (key, value) in entries {
            if key.is_plain("<<") {
                let merge_path = join_key(path, "<<");
                let source = self.resolve_at(value, &merge_path, depth + 1, sensitive)?;
                let maps = match source.value {
                    Value::Map(entries) => vec![entries],
                    Value::Seq(items) => {
                        let mut maps = Vec::new();
                        for item in items {
                            match item.value {
                                Value::Map(entries) => maps.push(entries),
                                _ => {
                                    return Err(invalid(
                                        &item.mark,
                                        &merge_path,
                                        "a merge key (<<) takes a mapping or a list of mappings",
                                    ));
                                }
                            }
                        }
                        maps
                    }
                    _ => {
                        return Err(invalid(
                            &source.mark,
                            &merge_path,
                            "a merge key (<<) takes a mapping or a list of mappings",
                        ));
                    }
                };
                for (k, v) in maps.into_iter().flatten() {
                    if !merged.iter().any(|(m, _)| m.name == k.name) {
                        merged.push((k, v));
                    }
                }
                continue;
            }
            let name = self.key_name(key, path, depth)?;
            let child = self.resolve_at(value, &join_key(path, &name), depth + 1, sensitive)?;
            out.push((
                Key {
                    name,
                    mark: key.mark.clone(),
                },
                child,
            ));
        }
        for (k, v) in merged {
            if !out.iter().any(|(o, _)| o.name == k.name) {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// A mapping key as text. Untagged scalars keep their text as written (`on:` stays "on").
    pub fn key_name(&self, key: &RawNode, path: &str, depth: usize) -> Result<String, ConfigError> {
        if key.tag.is_none()
            && let Raw::Scalar { text, .. } = &key.raw
        {
            return Ok(text.clone());
        }
        let resolved = self.resolve_at(key, path, depth + 1, false)?;
        match resolved.value {
            Value::Str(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Ok("null".to_owned()),
            Value::Seq(_) | Value::Map(_) => {
                Err(invalid(&key.mark, path, "mapping keys must be scalars"))
            }
        }
    }
}

/// Implicit typing of a plain scalar, as Home Assistant's YAML loader (YAML 1.1) does it.
pub(crate) fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Value::Int(i);
    }
    if let Some(f) = parse_float(text) {
        return Value::Float(f);
    }
    Value::Str(text.to_owned())
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn digits_in_radix(digits: &str, radix: u32) -> Option<i128> {
    let mut value: i128 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(d))?;
        any = true;
    }
    any.then_some(value)
}

/// YAML 1.1 integers: decimal, `0b`, `0x`, leading-zero octal, `_` separators, base 60 (`1:30`).
fn parse_int(text: &str) -> Option<i128> {
    let (negative, body) = split_sign(text);
    let value = if let Some(bin) = body.strip_prefix("0b") {
        digits_in_radix(bin, 2)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits_in_radix(hex, 16)?
    } else if body == "0" {
        0
    } else if let Some(oct) = body.strip_prefix('0') {
        digits_in_radix(oct, 8)?
    } else if body.contains(':') {
        let mut value: i128 = 0;
        for (i, part) in body.split(':').enumerate() {
            let first = part.as_bytes().first()?;
            if i == 0 && !(b'1'..=b'9').contains(first) {
                return None;
            }
            if i > 0 && (part.is_empty() || part.len() > 2 || part.contains('_')) {
                return None;
            }
            let d = digits_in_radix(part, 10)?;
            if i > 0 && d > 59 {
                return None;
            }
            value = value.checked_mul(60)?.checked_add(d)?;
        }
        value
    } else {
        let first = body.as_bytes().first()?;
        if !(b'1'..=b'9').contains(first) {
            return None;
        }
        digits_in_radix(body, 10)?
    };
    Some(if negative { -value } else { value })
}

/// YAML 1.1 floats: `1.5`, `.5`, `1.5e+3` (exponent sign required), `.inf`, `.nan`, base 60.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let (negative, body) = split_sign(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => {
            let exp = &body[at + 1..];
            let (sign, digits) = exp.split_at_checked(1)?;
            if !matches!(sign, "+" | "-")
                || digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (&body[..at], Some(exp))
        }
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    if whole.contains(':') {
        if exponent.is_some() {
            return None;
        }
        let mut value = 0f64;
        for (i, part) in whole.split(':').enumerate() {
            let d = digits_in_radix(part, 10)?;
            if i > 0 && (d > 59 || part.len() > 2) {
                return None;
            }
            value = value * 60.0 + d as f64;
        }
        let fraction_digits: String = fraction.chars().filter(|c| *c != '_').collect();
        if !fraction_digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let fraction_value: f64 = format!("0.{fraction_digits}0").parse().ok()?;
        let value = value + fraction_value;
        return Some(if negative { -value } else { value });
    }
    let clean = |s: &str| -> Option<String> {
        let out: String = s.chars().filter(|c| *c != '_').collect();
        out.bytes().all(|b| b.is_ascii_digit()).then_some(out)
    };
    let whole_digits = clean(whole)?;
    let fraction_digits = clean(fraction)?;
    if whole.is_empty() && fraction_digits.is_empty() {
        return None;
    }
    if !whole.is_empty() && !whole.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let literal = format!(
        "{}.{}0{}",
        if whole_digits.is_empty() {
            "0"
        } else {
            &whole_digits
        },
        fraction_digits,
        exponent.map(|e| format!("e{e}")).unwrap_or_default()
    );
    let value: f64 = literal.parse().ok()?;
    Some(if negative { -value } else { value })
}
