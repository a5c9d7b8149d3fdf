//! Turning what a shopper typed into a full-text query, safely: the text is cut into
//! words of letters and digits, and only those words reach `to_tsquery`, each as a
//! prefix (`kett:*` finds "kettle"), all required (`&`). No operator, quote or
//! parenthesis the user typed can ever be read as tsquery syntax.

/// At most this many words are searched for; the rest are ignored.
pub const MAX_WORDS: usize = 8;
/// `q` longer than this is refused.
pub const MAX_QUERY_CHARS: usize = 200;

/// The `to_tsquery` expression for `q`, or `None` if it has no word to search for.
pub fn prefix_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_required_prefixes() {
        assert_eq!(prefix_query("kett").as_deref(), Some("kett:*"));
        assert_eq!(
            prefix_query("  Steel  KETTLE ").as_deref(),
            Some("steel:* & kettle:*")
        );
    }

    #[test]
    fn tsquery_syntax_in_the_input_is_only_a_word_separator() {
        assert_eq!(
            prefix_query("a|b & !c:* <-> (d)'e'").as_deref(),
            Some("a:* & b:* & c:* & d:* & e:*")
        );
        assert_eq!(prefix_query("!&|():*' "), None);
        assert_eq!(prefix_query(""), None);
    }

    #[test]
    fn only_the_first_words_are_searched() {
        let q = "a b c d e f g h i j";
        assert_eq!(prefix_query(q).unwrap().matches(":*").count(), MAX_WORDS);
    }
}
