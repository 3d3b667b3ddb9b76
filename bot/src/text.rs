//! Telegram text limits. Telegram measures message length in UTF-16 code units (the unit
//! of its entity offsets), so a text of emoji hits the limit at half the `char` count.

/// The most a single message (or an edit) may carry.
pub const MESSAGE_LIMIT: usize = 4096;

/// Length as Telegram counts it.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits `text` into pieces of at most `limit` UTF-16 units, preferring to cut after a
/// newline, then after whitespace, and only then inside a word. Never splits a `char`
/// (and so never a surrogate pair). An empty text yields one empty piece so callers that
/// edit "the first piece into the message" always have one.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(2);
    let mut pieces = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > limit {
        // Byte index where `limit` units end.
        let mut units = 0;
        let mut hard_end = 0;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > limit {
                break;
            }
            units += c.len_utf16();
            hard_end = i + c.len_utf8();
        }
        let window = &rest[..hard_end];
        // Cut after the last newline or space in the second half of the window, so a
        // piece is never tiny just because a space sat near its start.
        let soft = window
            .rfind('\n')
            .filter(|&i| i >= hard_end / 2)
            .or_else(|| window.rfind(char::is_whitespace).filter(|&i| i >= hard_end / 2))
            .map(|i| i + rest[i..].chars().next().map_or(1, char::len_utf8));
        let end = soft.unwrap_or(hard_end);
        pieces.push(rest[..end].trim_end().to_string());
        rest = &rest[end..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// Shortens `text` to at most `max` chars with an ellipsis, for button labels and lists.
pub fn ellipsize(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split("hello", 4096), vec!["hello"]);
        assert_eq!(split("", 4096), vec![""]);
    }

    #[test]
    fn long_text_splits_at_newlines_within_the_limit() {
        let line = "x".repeat(100);
        let text = std::iter::repeat_n(line.as_str(), 100).collect::<Vec<_>>().join("\n");
        let pieces = split(&text, MESSAGE_LIMIT);
        assert!(pieces.len() >= 3);
        for p in &pieces {
            assert!(utf16_len(p) <= MESSAGE_LIMIT);
            assert!(p.split('\n').all(|l| l.len() == 100), "cut inside a line");
        }
        assert_eq!(pieces.join("\n"), text);
    }

    #[test]
    fn emoji_count_twice_and_are_never_cut() {
        let text = "😀".repeat(3000); // 6000 UTF-16 units
        let pieces = split(&text, MESSAGE_LIMIT);
        assert_eq!(pieces.len(), 2);
        assert_eq!(utf16_len(&pieces[0]), 4096);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn rtl_text_without_spaces_is_cut_hard() {
        let text = "שלום".repeat(2000);
        let pieces = split(&text, MESSAGE_LIMIT);
        assert!(pieces.iter().all(|p| utf16_len(p) <= MESSAGE_LIMIT));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn ellipsize_keeps_short_and_cuts_long() {
        assert_eq!(ellipsize("Ann  Lee\n", 10), "Ann Lee");
        assert_eq!(ellipsize("abcdefghijkl", 5), "abcd…");
    }
}
