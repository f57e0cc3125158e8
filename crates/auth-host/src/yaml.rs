//! YAML text to a tag-preserving tree with a source position on every node.
//!
//! Nothing is interpreted here: scalars keep their text and style, tags stay attached. Tags are
//! resolved later, and only in the sections hass-auth reads (see `resolve.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::{ConfigError, Location};

/// Deepest nesting accepted (protects the recursive passes from stack overflow).
pub(crate) const MAX_DEPTH: usize = 128;
/// Most nodes one file may expand to, aliases included (protects against "billion laughs").
pub(crate) const MAX_NODES: usize = 200_000;

/// A YAML file being read, and the file that included it.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The path as it is shown in messages.
    pub path: PathBuf,
    /// The file whose `!include` loaded this one.
    pub included_from: Option<Arc<SourceFile>>,
    /// Whether this is a `secrets.yaml` (where `!secret` is not allowed).
    pub is_secrets: bool,
}

impl SourceFile {
    /// The top-level file.
    pub fn root(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            included_from: None,
            is_secrets: false,
        })
    }

    /// The folder that relative `!include` paths and `secrets.yaml` are looked up in.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        }
    }
}

/// Where a node starts.
#[derive(Clone, Debug)]
pub(crate) struct Mark {
    /// The file.
    pub file: Arc<SourceFile>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Mark {
    /// The start of `file`.
    pub fn start_of(file: &Arc<SourceFile>) -> Self {
        Self {
            file: file.clone(),
            line: 1,
            column: 1,
        }
    }

    fn from_span(file: &Arc<SourceFile>, span: &Span) -> Self {
        Self {
            file: file.clone(),
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }

    /// The public form.
    pub fn location(&self) -> Location {
        Location {
            file: self.file.path.clone(),
            line: self.line,
            column: self.column,
        }
    }
}

/// A tag as written: `!secret` is `("!", "secret")`, `!!str` is `("tag:yaml.org,2002:", "str")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    /// The handle after `%TAG` expansion.
    pub handle: String,
    /// The rest.
    pub suffix: String,
}

/// Handle of the YAML core schema tags (`!!str`, `!!int`, ...).
pub(crate) const CORE_HANDLE: &str = "tag:yaml.org,2002:";

impl Tag {
    /// A local tag like `!secret` (by its name without `!`).
    pub fn local(&self) -> Option<&str> {
        (self.handle == "!").then_some(self.suffix.as_str())
    }

    /// A core schema tag like `!!str` (by its name without `!!`).
    pub fn core(&self) -> Option<&str> {
        (self.handle == CORE_HANDLE).then_some(self.suffix.as_str())
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.handle == "!" {
            write!(f, "!{}", self.suffix)
        } else if self.handle == CORE_HANDLE {
            write!(f, "!!{}", self.suffix)
        } else {
            write!(f, "{}{}", self.handle, self.suffix)
        }
    }
}

/// The shape of a node.
#[derive(Clone, Debug)]
pub(crate) enum Raw {
    /// A scalar's text; `plain` is false for quoted and block scalars (always strings).
    Scalar {
        /// The text.
        text: String,
        /// Unquoted (subject to implicit typing).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<RawNode>),
    /// A mapping, duplicate keys kept (in order).
    Map(Vec<(RawNode, RawNode)>),
}

/// One node of the tree.
#[derive(Clone, Debug)]
pub(crate) struct RawNode {
    /// The node.
    pub raw: Raw,
    /// Its tag, if any.
    pub tag: Option<Tag>,
    /// Where it starts.
    pub mark: Mark,
    /// Nodes in this subtree (itself included).
    pub size: usize,
}

impl RawNode {
    /// An untagged, empty mapping at `mark`.
    pub fn empty_map(mark: Mark) -> Self {
        Self {
            raw: Raw::Map(Vec::new()),
            tag: None,
            mark,
            size: 1,
        }
    }

    /// An untagged string at `mark`.
    pub fn string(text: String, mark: Mark) -> Self {
        Self {
            raw: Raw::Scalar { text, plain: false },
            tag: None,
            mark,
            size: 1,
        }
    }

    /// Whether this is an untagged plain scalar with exactly this text.
    pub fn is_plain(&self, text: &str) -> bool {
        self.tag.is_none() && matches!(&self.raw, Raw::Scalar { text: t, plain: true } if t == text)
    }
}

enum Frame {
    Seq {
        items: Vec<RawNode>,
        tag: Option<Tag>,
        mark: Mark,
        anchor: usize,
        size: usize,
    },
    Map {
        entries: Vec<(RawNode, RawNode)>,
        key: Option<RawNode>,
        tag: Option<Tag>,
        mark: Mark,
        anchor: usize,
        size: usize,
    },
}

fn syntax(mark: Mark, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        location: mark.location(),
        message: message.into(),
    }
}

fn convert_tag(tag: Option<std::borrow::Cow<'_, saphyr_parser::Tag>>) -> Option<Tag> {
    tag.map(|t| Tag {
        handle: t.handle.clone(),
        suffix: t.suffix.clone(),
    })
}

/// Parses one YAML document; `None` for a file with no content (empty or only comments).
pub(crate) fn parse_document(
    text: &str,
    file: &Arc<SourceFile>,
) -> Result<Option<RawNode>, ConfigError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, RawNode> = HashMap::new();
    let mut root: Option<RawNode> = None;
    let mut documents = 0usize;
    let mut total = 0usize;

    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            ConfigError::Syntax {
                location: Location {
                    file: file.path.clone(),
                    line: m.line(),
                    column: m.col() + 1,
                },
                message: e.info().to_owned(),
            }
        })?;
        let mark = Mark::from_span(file, &span);
        let finished = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(syntax(
                        mark,
                        "expected a single document, found a second one (`---`)",
                    ));
                }
                None
            }
            Event::Alias(id) => {
                let Some(node) = anchors.get(&id) else {
                    return Err(syntax(mark, "alias to an unknown anchor"));
                };
                let cost = node.size;
                Some((node.clone(), 0, cost))
            }
            Event::Scalar(text, style, anchor, tag) => Some((
                RawNode {
                    raw: Raw::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    tag: convert_tag(tag),
                    mark,
                    size: 1,
                },
                anchor,
                1,
            )),
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(
                        mark,
                        format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    tag: convert_tag(tag),
                    mark,
                    anchor,
                    size: 1,
                });
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(
                        mark,
                        format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    tag: convert_tag(tag),
                    mark,
                    anchor,
                    size: 1,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    tag,
                    mark,
                    anchor,
                    size,
                }) => Some((
                    RawNode {
                        raw: Raw::Seq(items),
                        tag,
                        mark,
                        size,
                    },
                    anchor,
                    1,
                )),
                _ => return Err(syntax(mark, "unbalanced sequence end")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries,
                    key,
                    tag,
                    mark,
                    anchor,
                    size,
                }) => {
                    if key.is_some() {
                        return Err(syntax(mark, "mapping key without a value"));
                    }
                    Some((
                        RawNode {
                            raw: Raw::Map(entries),
                            tag,
                            mark,
                            size,
                        },
                        anchor,
                        1,
                    ))
                }
                _ => return Err(syntax(mark, "unbalanced mapping end")),
            },
        };
        // Collections cost 1 (their children were counted as they arrived); an alias costs the
        // size of the copy it makes.
        let Some((node, anchor, cost)) = finished else {
            continue;
        };
        total = total.saturating_add(cost);
        if total > MAX_NODES {
            return Err(syntax(
                node.mark,
                format!("document expands to more than {MAX_NODES} nodes (aliases included)"),
            ));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                if root.is_some() {
                    return Err(syntax(node.mark, "more than one root node"));
                }
                root = Some(node);
            }
            Some(Frame::Seq { items, size, .. }) => {
                *size += node.size;
                items.push(node);
            }
            Some(Frame::Map {
                entries, key, size, ..
            }) => {
                *size += node.size;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }
    if !stack.is_empty() {
        return Err(syntax(
            Mark::start_of(file),
            "unexpected end of file inside a collection",
        ));
    }
    Ok(root)
}
