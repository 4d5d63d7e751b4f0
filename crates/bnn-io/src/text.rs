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

#[cfg(test)]
mod tests {
    use super::*;

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
