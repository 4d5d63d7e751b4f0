//! Text from a file, made safe to print on a terminal.
//!
//! A model's description, an archive's array names or a file name come from
//! whoever made the file. Printed raw, an ESC starts a terminal control
//! sequence (recolour, retitle, move the cursor, on some terminals answer
//! back), a CR or a run of backspaces overwrites what was printed before
//! it, a BEL rings, a line break splits a one-line error, and a bidi
//! override reorders what the reader sees. Every place that prints such
//! text passes it through [`printable`] first.

use std::borrow::Cow;

/// Unicode's explicit direction marks, embeddings, overrides and isolates:
/// not control characters, but they make a terminal show text in another
/// order than it is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every control character (C0, DEL, C1) and bidi control
/// written as a Rust escape (`\u{1b}`, `\r`, `\n`, `\t`), everything else as
/// it is: letters of any script stay readable, and text with nothing to
/// escape is returned without a copy. Backslashes are not escaped, so the
/// result of an escaped string is the same string (printing it twice, in an
/// error and then in the error report, changes nothing).
pub fn printable(text: &str) -> Cow<'_, str> {
    let escape = |c: char| c.is_control() || is_bidi_control(c);
    if !text.contains(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` characters, so that a one-line error stays
/// one short line even when it quotes a path or a value of thousands of
/// characters: first each word (a run without spaces: a path, a quoted
/// value) longer than [`LONG_WORD`] loses its middle to `…`, which keeps
/// the words around it (`for '--threads <N>'`, the reason at the end) and
/// both ends of the path; then, if the text is still too long, its middle
/// goes the same way.
pub fn shortened(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    let words: Vec<String> = text
        .split(' ')
        .map(|w| elide(w, LONG_WORD).into_owned())
        .collect();
    let joined = words.join(" ");
    Cow::Owned(elide(&joined, max).into_owned())
}

/// Longest word [`shortened`] leaves whole.
pub const LONG_WORD: usize = 64;

/// `text` with its middle replaced by `…` to make it `max` characters long
/// (characters, not bytes: never a cut inside one).
fn elide(text: &str, max: usize) -> Cow<'_, str> {
    let len = text.chars().count();
    if len <= max {
        return Cow::Borrowed(text);
    }
    let keep = max.saturating_sub(1);
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(len - tail).collect();
    Cow::Owned(format!("{start}…{end}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_lose_their_middle_and_the_rest_stays() {
        assert!(matches!(shortened("short", 10), Cow::Borrowed("short")));
        // A long path keeps its start, its end and the reason after it.
        let long = format!("/tmp/{}: cannot write: File name too long", "x".repeat(300));
        let cut = shortened(&long, 100);
        let reason = " cannot write: File name too long";
        assert_eq!(cut.chars().count(), LONG_WORD + reason.len(), "{cut}");
        assert!(cut.starts_with("/tmp/xxx") && cut.contains("x…x"), "{cut}");
        assert!(
            cut.ends_with("xxx: cannot write: File name too long"),
            "{cut}"
        );
        // The words around a long value stay whole.
        let value = format!(
            "invalid value '{}' for '--threads <N>': no",
            "9".repeat(5000)
        );
        let cut = shortened(&value, 200);
        assert!(
            cut.contains("for '--threads <N>': no") && cut.contains('…'),
            "{cut}"
        );
        // Still too long after that: the middle of the whole goes.
        let many = "word ".repeat(100);
        assert_eq!(shortened(&many, 50).chars().count(), 50);
        // Characters, not bytes: never a cut inside one.
        assert_eq!(shortened(&"é".repeat(500), 11).chars().count(), 11);
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("a\x1b]0;pwned\x07b\rc\nd\te\x7f\u{9b}f"),
            "a\\u{1b}]0;pwned\\u{7}b\\rc\\nd\\te\\u{7f}\\u{9b}f"
        );
        assert_eq!(printable("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        // Nothing to escape: the same text, borrowed.
        let plain = "±1 weights, café, 'quoted' \\ \"and\" 日本";
        assert!(matches!(printable(plain), Cow::Borrowed(s) if s == plain));
        // Escaping twice changes nothing more.
        let once = printable("\x1b[2J").into_owned();
        assert_eq!(printable(&once), once);
    }
}
