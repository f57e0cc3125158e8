//! User metadata printed by the program (`name = …`, `group = …`, `local_only = …`).

/// Metadata lines a program printed for one username (only the three keys Home Assistant reads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `name`: display name of a new user.
    pub name: Option<String>,
    /// `group`: group id of a new user (e.g. `system-users`); none means `system-admin`.
    pub group: Option<String>,
    /// `local_only`: a new user is local-only when this is exactly `true`.
    pub local_only: Option<String>,
}

impl Meta {
    /// Whether `local_only` is exactly the string `true` (no other spelling counts).
    pub fn is_local_only(&self) -> bool {
        self.local_only.as_deref() == Some("true")
    }
}

/// Whether Python's `str.isspace` is true for `c` (Unicode whitespace plus the separators
/// U+001C..U+001F).
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Parses a program's standard output like Home Assistant: split into lines (`\n`, `\r\n`,
/// `\r`); skip lines that are not UTF-8; left-strip; skip lines starting with `#` or without
/// `=`; split at the first `=`; strip key and value; keep `name`, `group`, `local_only` (a
/// later line overrides an earlier one).
pub fn parse_meta(stdout: &[u8]) -> Meta {
    let mut meta = Meta::default();
    for raw in split_lines(stdout) {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let line = line.trim_start_matches(is_python_whitespace);
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim_matches(is_python_whitespace).to_owned();
        match key.trim_matches(is_python_whitespace) {
            "name" => meta.name = Some(value),
            "group" => meta.group = Some(value),
            "local_only" => meta.local_only = Some(value),
            _ => {}
        }
    }
    meta
}

/// Python's `bytes.splitlines()`: line ends are `\n`, `\r\n` and `\r`; no trailing empty line.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&bytes[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&bytes[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    lines
}
