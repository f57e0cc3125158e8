//! Tidy checks for citations: every `<doc>.md §N` a source comment cites resolves to a numbered
//! heading of `docs/spec/<doc>.md`, and every `*.md` file a comment names exists in the repository.

/// A citation found in a source file: the file, its line, the cited document and its sections.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Citation {
    /// Source file, relative to the project root.
    file: String,
    /// 1-based line number.
    line: usize,
    /// The cited document's file name (`tokens.md`).
    document: String,
    /// Cited section numbers (`2`, `8.1`, `1a`), possibly none.
    sections: Vec<String>,
}

/// The citations on one line: each `<doc>.md` and the `§` numbers after it up to the next document
/// name or the end of the line.
fn citations_in_line(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(found) = text[search..].find(".md") {
        let end = search + found;
        let mut begin = end;
        while begin > 0 {
            let c = bytes[begin - 1];
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
                begin -= 1;
            } else {
                break;
            }
        }
        let after = end + 3;
        let word_ends = bytes.get(after).is_none_or(|c| !c.is_ascii_alphanumeric());
        if begin < end && word_ends {
            starts.push((begin, after));
        }
        search = after;
    }
    for (index, &(begin, after)) in starts.iter().enumerate() {
        let until = starts.get(index + 1).map_or(text.len(), |next| next.0);
        let cited = &text[after..until];
        let cited = cited.find("RFC").map_or(cited, |other| &cited[..other]);
        out.push((text[begin..after].to_owned(), sections_in(cited)));
    }
    out
}

/// Section numbers written as `§2`, `§ 8.1` or `§1a` in `text`.
fn sections_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in text.split('§').skip(1) {
        let number: String = piece
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if number.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(number.to_owned());
        }
    }
    out
}

/// Whether `document` has a heading numbered `section` (`## 8.`, `### 8.1 `, `## 1a.`).
fn has_section(document: &str, section: &str) -> bool {
    document.lines().any(|line| {
        let Some(heading) = line.strip_prefix('#') else {
            return false;
        };
        let heading = heading.trim_start_matches('#').trim_start();
        heading
            .strip_prefix(section)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', ' ']))
    })
}

/// Files ending in `.extension` under `crates/`, `xtask/`, `examples/` and `docs/` of `root`.
fn files_ending(root: &std::path::Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending: Vec<_> = ["crates", "xtask", "examples", "docs"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != "node_modules" {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every citation in the comments of the project's Rust sources.
fn citations(root: &std::path::Path) -> Vec<Citation> {
    let mut out = Vec::new();
    for path in files_ending(root, "rs") {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let file = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (index, line) in text.lines().enumerate() {
            let Some(comment) = line.find("//").map(|at| &line[at..]) else {
                continue;
            };
            for (document, sections) in citations_in_line(comment) {
                out.push(Citation {
                    file: file.clone(),
                    line: index + 1,
                    document,
                    sections,
                });
            }
        }
    }
    out
}

/// Problems with the citations under `root`, one line each (empty when all resolve).
fn unresolved(root: &std::path::Path) -> Vec<String> {
    let spec = root.join("docs/spec");
    let mut markdown: Vec<String> = files_ending(root, "md")
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    markdown.push("README.md".to_owned());
    let markdown_names: std::collections::HashSet<&str> =
        markdown.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    for citation in citations(root) {
        let Citation {
            file,
            line,
            document,
            sections,
        } = &citation;
        let in_spec = spec.join(document);
        if let Ok(text) = std::fs::read_to_string(&in_spec) {
            for section in sections {
                if !has_section(&text, section) {
                    problems.push(format!(
                        "{file}:{line}: docs/spec/{document} has no section {section}"
                    ));
                }
            }
            continue;
        }
        if !sections.is_empty() {
            problems.push(format!(
                "{file}:{line}: cites {document} §{} but docs/spec/{document} does not exist",
                sections.join(", §")
            ));
            continue;
        }
        if !markdown_names.contains(document.as_str()) {
            problems.push(format!(
                "{file}:{line}: names {document}, and no file of that name is in the repository"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_yields_each_document_with_its_own_sections() {
        let found =
            citations_in_line("// as PyJWT (`spec/tokens.md` §4.2, §8.2) and flows.md §2/§3.");
        assert_eq!(
            found,
            vec![
                (
                    "tokens.md".to_owned(),
                    vec!["4.2".to_owned(), "8.2".to_owned()]
                ),
                ("flows.md".to_owned(), vec!["2".to_owned(), "3".to_owned()]),
            ]
        );
        assert_eq!(
            citations_in_line("// (http-api.md §1a). RFC 9700 §4.2.4"),
            vec![("http-api.md".to_owned(), vec!["1a".to_owned()])]
        );
        assert!(citations_in_line("// a plain comment, §3 of nothing").is_empty());
    }

    #[test]
    fn headings_are_matched_by_their_number_only() {
        let doc = "# Title\n## 8. Signed paths\n### 8.1 Signing\n## 1a. Headers\n## 10. Link\n";
        assert!(has_section(doc, "8"));
        assert!(has_section(doc, "8.1"));
        assert!(has_section(doc, "1a"));
        assert!(has_section(doc, "10"));
        assert!(!has_section(doc, "1"));
        assert!(!has_section(doc, "8.2"));
    }

    #[test]
    fn every_spec_citation_in_the_sources_resolves_inside_the_repository() {
        let root = super::super::project_root();
        let found = citations(&root);
        assert!(
            found
                .iter()
                .any(|c| c.document == "tokens.md" && !c.sections.is_empty()),
            "the scan found no citation at all; is it reading the sources?"
        );
        let problems = unresolved(&root);
        assert!(
            problems.is_empty(),
            "citations that do not resolve (copy the note into docs/spec/ or fix the reference):\n{}",
            problems.join("\n")
        );
    }
}
