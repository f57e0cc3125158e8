//! `<link rel="redirect_uri" href="…">` extraction from an HTML page.
//!
//! A small tolerant tokenizer with the rules of a browser's (and Python's `html.parser`) start
//! tags: case-insensitive tag and attribute names, quoted or bare attribute values with character
//! references decoded, comments, declarations and the content of `<script>`/`<style>` skipped.

use url::Url;

/// Every non-empty `href` of a `<link>` whose `rel` is exactly `redirect_uri`, in page order,
/// resolved against `base`. Hrefs that do not resolve to an `http`/`https` URL are dropped.
pub fn link_redirect_uris(html: &str, base: &Url) -> Vec<String> {
    let mut found = Vec::new();
    for tag in start_tags(html) {
        if tag.name != "link" {
            continue;
        }
        let rel = tag.attribute("rel");
        let href = tag.attribute("href");
        if rel != Some("redirect_uri") {
            continue;
        }
        let Some(href) = href.filter(|h| !h.is_empty()) else {
            continue;
        };
        if let Some(uri) = resolve(href, base) {
            found.push(uri);
        }
    }
    found
}

/// Resolves `href` against `base`; absolute hrefs are kept as written so they compare exactly.
fn resolve(href: &str, base: &Url) -> Option<String> {
    let (text, parsed) = match Url::parse(href) {
        Ok(absolute) => (href.to_owned(), absolute),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let joined = base.join(href).ok()?;
            (joined.to_string(), joined)
        }
        Err(_) => return None,
    };
    matches!(parsed.scheme(), "http" | "https").then_some(text)
}

/// One start tag: lowercased name and attributes with decoded values.
#[derive(Debug, PartialEq, Eq)]
struct StartTag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl StartTag {
    /// The value of the first attribute called `name`.
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of `html`, in order.
fn start_tags(html: &str) -> Vec<StartTag> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        i += offset;
        let rest = &html[i..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = match comment.find("-->") {
                Some(end) => i + 4 + end + 3,
                None => html.len(),
            };
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
            i = match rest.find('>') {
                Some(end) => i + end + 1,
                None => html.len(),
            };
            continue;
        }
        if !bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
            continue;
        }
        let (tag, consumed) = parse_start_tag(&rest[1..]);
        i += 1 + consumed;
        if matches!(tag.name.as_str(), "script" | "style") {
            i = skip_raw_text(html, i, &tag.name);
        }
        tags.push(tag);
    }
    tags
}

/// Index just past the end tag `</name` that closes raw-text content starting at `from`.
fn skip_raw_text(html: &str, from: usize, name: &str) -> usize {
    let closing = format!("</{name}");
    let lower = html[from..].to_ascii_lowercase();
    match lower.find(&closing) {
        Some(at) => from + at,
        None => html.len(),
    }
}

/// Parses a start tag after its `<`; returns the tag and how many bytes it used (incl. `>`).
fn parse_start_tag(text: &str) -> (StartTag, usize) {
    let bytes = text.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut i = 0;
    while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>') {
        i += 1;
    }
    let name = text[..i].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if bytes[i] == b'>' {
            i += 1;
            break;
        }
        let name_start = i;
        i += 1;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'=' | b'>') {
            i += 1;
        }
        let attribute = text[name_start..i].to_ascii_lowercase();
        let mut j = i;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        let mut value = String::new();
        if j < bytes.len() && bytes[j] == b'=' {
            j += 1;
            while j < bytes.len() && is_space(bytes[j]) {
                j += 1;
            }
            let raw = match bytes.get(j) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let start = j + 1;
                    let end = text[start..]
                        .find(quote as char)
                        .map_or(text.len(), |e| start + e);
                    j = (end + 1).min(text.len());
                    &text[start..end]
                }
                _ => {
                    let start = j;
                    while j < bytes.len() && !is_space(bytes[j]) && bytes[j] != b'>' {
                        j += 1;
                    }
                    &text[start..j]
                }
            };
            value = decode_references(raw);
            i = j;
        }
        attributes.push((attribute, value));
    }
    (StartTag { name, attributes }, i)
}

/// Decodes numeric character references and the named ones that appear in URLs.
fn decode_references(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match decode_one(rest) {
            Some((decoded, used)) => {
                out.push(decoded);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the reference at the start of `text` (which starts with `&`): `(char, bytes used)`.
fn decode_one(text: &str) -> Option<(char, usize)> {
    if let Some(number) = text.strip_prefix("&#") {
        let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 3),
            None => (number, 10, 2),
        };
        let len = digits
            .bytes()
            .take_while(|b| (*b as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let value = u32::from_str_radix(&digits[..len], radix).unwrap_or(0xFFFD);
        let decoded = char::from_u32(value)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{FFFD}');
        let used = prefix + len + usize::from(digits[len..].starts_with(';'));
        return Some((decoded, used));
    }
    const NAMED: &[(&str, char)] = &[
        ("&amp", '&'),
        ("&lt", '<'),
        ("&gt", '>'),
        ("&quot", '"'),
        ("&apos", '\''),
        ("&nbsp", '\u{a0}'),
    ];
    NAMED.iter().find_map(|(name, decoded)| {
        let after = text.strip_prefix(name)?;
        if after.starts_with(';') {
            Some((*decoded, name.len() + 1))
        } else if *name != "&apos" {
            // Legacy references without `;`, as browsers accept them.
            Some((*decoded, name.len()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://app.example/client/").expect("valid base")
    }

    #[test]
    fn finds_link_tags_in_order_and_resolves_relative_hrefs() {
        let html = r#"<!doctype html><html><head>
            <link rel="stylesheet" href="/style.css">
            <link rel="redirect_uri" href="https://app.example/callback">
            <LINK REL="redirect_uri" HREF="cb2"/>
            <link href='/cb3' rel=redirect_uri>
        </head></html>"#;
        assert_eq!(
            link_redirect_uris(html, &base()),
            vec![
                "https://app.example/callback",
                "https://app.example/client/cb2",
                "https://app.example/cb3",
            ]
        );
    }

    #[test]
    fn rel_must_match_exactly_and_href_must_be_non_empty() {
        let html = r#"<link rel="redirect_uri other" href="/a"><link rel="Redirect_URI" href="/b">
            <link rel="redirect_uri" href=""><link rel="redirect_uri"><a rel="redirect_uri" href="/c">"#;
        assert!(link_redirect_uris(html, &base()).is_empty());
    }

    #[test]
    fn non_http_schemes_are_dropped() {
        let html = r#"<link rel="redirect_uri" href="javascript:alert(1)">
            <link rel="redirect_uri" href="JaVaScRiPt:alert(1)">
            <link rel="redirect_uri" href="data:text/html,hi">
            <link rel="redirect_uri" href="homeassistant://auth-callback">
            <link rel="redirect_uri" href="http://ok.example/cb">"#;
        assert_eq!(
            link_redirect_uris(html, &base()),
            vec!["http://ok.example/cb"]
        );
    }

    #[test]
    fn comments_scripts_and_styles_hide_tags() {
        let html = r#"<!-- <link rel="redirect_uri" href="/commented"> -->
            <script>var s = '<link rel="redirect_uri" href="/scripted">';</script>
            <style>/* <link rel="redirect_uri" href="/styled"> */</style>
            <link rel="redirect_uri" href="/real">"#;
        assert_eq!(
            link_redirect_uris(html, &base()),
            vec!["https://app.example/real"]
        );
    }

    #[test]
    fn character_references_in_values_are_decoded() {
        let html = r#"<link rel="redirect&#95;uri" href="/cb?a=1&amp;b=2&#x26;c=3&lt">"#;
        assert_eq!(
            link_redirect_uris(html, &base()),
            vec!["https://app.example/cb?a=1&b=2&c=3%3C"]
        );
    }

    #[test]
    fn truncated_and_garbage_markup_never_panics() {
        for html in [
            "<",
            "<link",
            "<link rel=",
            "<link rel=\"redirect_uri\" href=\"/x",
            "<!--",
            "<script>",
            "<<<>>>&#xFFFFFFFFF;&#0;&",
            "<link rel=redirect_uri href=/ok>ü<link rel=\"",
        ] {
            let _ = link_redirect_uris(html, &base());
        }
        assert_eq!(
            link_redirect_uris("<link rel=redirect_uri href=/ok>ü<link rel=\"", &base()),
            vec!["https://app.example/ok"]
        );
        assert_eq!(decode_references("&#xFFFFFFFFF;&#0;"), "\u{FFFD}\u{FFFD}");
    }
}
