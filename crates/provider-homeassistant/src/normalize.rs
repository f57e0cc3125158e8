//! Username normalisation exactly as Home Assistant does it: Python's `str.strip()` followed by
//! `str.casefold()`.

/// `casefold(strip(username))`: the form in which two usernames are compared.
///
/// * strip: removes leading and trailing characters that Python's `str.isspace()` accepts, i.e.
///   Unicode `White_Space` plus the four information separators U+001C..U+001F (Python counts
///   them as whitespace, Rust's [`char::is_whitespace`] does not). Inner whitespace stays.
/// * casefold: full Unicode case folding (`ß` → `ss`, final `ς` → `σ`, `İ` → `i̇`), via the
///   `caseless` crate, like Python's `str.casefold()`. No Unicode normalisation (NFC/NFD) is
///   applied, so a decomposed `o` + U+0308 does not equal a precomposed `ö` (as in HA).
///
/// Python 3.13 (HA 2026.x) folds with Unicode 15.1 data; `caseless` uses newer data, so the only
/// differences are letters first assigned after Unicode 15.1 (e.g. Garay, U+10D50..).
pub fn normalize_username(username: &str) -> String {
    caseless::default_case_fold_str(username.trim_matches(is_python_whitespace))
}

/// Whether `normalize_username(username) == username`, i.e. the name may be stored as is.
pub fn is_normalized(username: &str) -> bool {
    normalize_username(username) == username
}

/// Python's `str.isspace()` for one character.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed with CPython 3.11: `repr(s.strip().casefold())`.
    #[test]
    fn matches_python_strip_casefold() {
        let cases = [
            (" Jörg-Straße-ΣΑΣ ", "jörg-strasse-σασ"),
            ("JÖRG-STRASSE-ΣΑΣ", "jörg-strasse-σασ"),
            ("jörg-straße-σας", "jörg-strasse-σασ"),
            ("\u{1c}\u{1f}Owner\u{85}\u{3000}", "owner"),
            ("\t a b \n", "a b"),
            ("İstanbul", "i\u{307}stanbul"),
            ("ﬁ", "fi"),
            ("", ""),
            ("\u{200b}x\u{200b}", "\u{200b}x\u{200b}"),
            ("ǅ", "ǆ"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_username(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn nfd_is_not_nfc() {
        let nfd = "jo\u{308}rg-strasse-σασ";
        assert_ne!(
            normalize_username(nfd),
            normalize_username("jörg-strasse-σασ")
        );
    }

    #[test]
    fn python_whitespace_set() {
        for c in [
            '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', ' ', '\u{a0}', '\u{2028}', '\u{3000}',
        ] {
            assert!(is_python_whitespace(c), "{c:?}");
        }
        for c in ['\u{200b}', '\u{180e}', '\u{feff}', 'a', '\u{1b}'] {
            assert!(!is_python_whitespace(c), "{c:?}");
        }
    }

    #[test]
    fn is_normalized_detects_only_outer_whitespace_and_case() {
        assert!(is_normalized("jörg-strasse-σασ"));
        assert!(is_normalized("with inner space"));
        assert!(!is_normalized(" lead"));
        assert!(!is_normalized("Upper"));
        assert!(!is_normalized("straße"));
    }
}
