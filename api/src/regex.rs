//! The one place SMI regexes are compiled, so the validating webhook, the
//! compiler and the proxy agree on what a pattern means.

use regex::{Regex, RegexBuilder};

/// Largest compiled regex accepted; bounds the memory one rule can take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `re` so that it must match the whole input, as OSM (Envoy's
/// `safe_regex`) did: `/books` does not match `/books/1`; write `/books.*`.
///
/// The pattern is parsed on its own first: wrapped, a pattern such as
/// `x)|(?:.*` would close the anchoring group and match everything.
pub fn full_match_regex(re: &str) -> Result<Regex, String> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex {re:?}: {}", last_line(&e.to_string())))
    };
    build(re)?;
    build(&format!("^(?:{re})$"))
}

fn last_line(s: &str) -> String {
    // The regex crate's messages span several lines with a caret diagram; the
    // last line says what is wrong.
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Whether `m` is an HTTP method as SMI writes them: upper case, or `*`.
pub fn is_method(m: &str) -> bool {
    m == "*"
        || (!m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_values_and_cannot_escape_the_anchors() {
        let books = full_match_regex("/books.*").expect("valid");
        assert!(books.is_match("/books/1"));
        assert!(!books.is_match("/admin/books"));
        assert!(
            !full_match_regex("/books")
                .expect("valid")
                .is_match("/books/1")
        );
        // Closing the wrapper's group from inside the pattern would make it
        // `^(?:x)|(?:.*)$`, which matches every path.
        for escape in ["x)|(?:.*", "a)|(b", ")(", "x)|.*|(?:y"] {
            let refused = full_match_regex(escape).expect_err(escape);
            assert!(refused.starts_with("invalid regex"), "{refused}");
        }
        assert!(full_match_regex("(?:a|b)").is_ok());
    }
}
