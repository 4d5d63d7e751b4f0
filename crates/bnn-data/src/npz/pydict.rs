//! A parser for the Python dict literal in a `.npy` header.
//!
//! NumPy writes the header with `repr()`, e.g.
//! `{'descr': '<i8', 'fortran_order': False, 'shape': (512, 784), }`.
//! Only the literal forms NumPy emits are accepted: strings, `True`/`False`,
//! non-negative integers and tuples or lists of these. Anything else is an
//! error rather than a guess.
//!
//! Nesting is bounded ([`MAX_DEPTH`]): the parser recurses once per level,
//! and a header of a few tens of kilobytes of `[` would otherwise exhaust
//! the stack and abort the process instead of failing with a message.

/// A value in the header dict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PyValue {
    Str(String),
    Bool(bool),
    Int(u64),
    Tuple(Vec<PyValue>),
}

/// Deepest nesting of tuples and lists accepted inside the dict. NumPy's
/// headers nest one level (the shape); this leaves room for any literal a
/// tool might write while keeping the recursion's stack use trivial.
pub(crate) const MAX_DEPTH: usize = 32;

/// At most this many characters of the header are quoted in an error, so a
/// hostile header of 60 KB never becomes a 60 KB message.
const MAX_QUOTED: usize = 40;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Tuples and lists open at `pos`.
    depth: usize,
}

/// Parses a dict literal into its (key, value) pairs, in order.
pub(crate) fn parse_dict(text: &str) -> Result<Vec<(String, PyValue)>, String> {
    let mut p = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    p.expect('{')?;
    let mut entries = Vec::new();
    loop {
        p.skip_ws();
        if p.eat('}') {
            break;
        }
        let at = p.pos;
        let key = match p.value()? {
            PyValue::Str(s) => s,
            other => return Err(format!("dict key {} is not a string", describe(&other))),
        };
        // Python keeps the last of two equal keys, and NumPy with it: taking
        // either would read an array other than the one some reader sees.
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(format!("key '{}' given twice, at byte {at}", quote(&key)));
        }
        p.skip_ws();
        p.expect(':')?;
        p.skip_ws();
        let value = p.value()?;
        entries.push((key, value));
        p.skip_ws();
        if !p.eat(',') {
            p.skip_ws();
            p.expect('}')?;
            break;
        }
    }
    p.skip_ws();
    if p.pos != text.len() {
        return Err(format!("unexpected text after the dict at byte {}", p.pos));
    }
    Ok(entries)
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(found) => format!("expected '{c}' at byte {}, found '{found}'", self.pos),
                None => format!("expected '{c}' at byte {}, found the end", self.pos),
            })
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn value(&mut self) -> Result<PyValue, String> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => self.string(q),
            Some('(') => self.sequence('(', ')'),
            Some('[') => self.sequence('[', ']'),
            Some(c) if c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                match &self.text[start..self.pos] {
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    word => Err(format!(
                        "unsupported value '{}' at byte {start}",
                        quote(word)
                    )),
                }
            }
            Some(c) => Err(format!("unexpected '{c}' at byte {}", self.pos)),
            None => Err("unexpected end of header".to_string()),
        }
    }

    fn string(&mut self, quote: char) -> Result<PyValue, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(format!("unterminated string starting at byte {start}"));
            };
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(PyValue::Str(out)),
                '\\' => {
                    let Some(next) = self.peek() else {
                        return Err(format!("unterminated string starting at byte {start}"));
                    };
                    self.pos += next.len_utf8();
                    out.push(next);
                }
                c => out.push(c),
            }
        }
    }

    fn int(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.text[start..self.pos];
        // Python 2 wrote long integers with an `L` suffix.
        self.eat('L');
        digits
            .parse()
            .map(PyValue::Int)
            .map_err(|_| format!("integer {} at byte {start} is too large", quote(digits)))
    }

    fn sequence(&mut self, open: char, close: char) -> Result<PyValue, String> {
        if self.depth == MAX_DEPTH {
            return Err(format!(
                "tuples and lists nested deeper than {MAX_DEPTH} levels at byte {}",
                self.pos
            ));
        }
        self.depth += 1;
        let items = self.items(open, close);
        self.depth -= 1;
        items
    }

    fn items(&mut self, open: char, close: char) -> Result<PyValue, String> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            items.push(self.value()?);
            self.skip_ws();
            if !self.eat(',') {
                self.skip_ws();
                self.expect(close)?;
                break;
            }
        }
        Ok(PyValue::Tuple(items))
    }
}

/// `text` cut to [`MAX_QUOTED`] characters, marked with `…` when cut.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A value as Python would write it, cut short: for messages that quote a
/// value of the wrong kind, which may be a tuple of thousands of items.
pub(crate) fn describe(value: &PyValue) -> String {
    fn write(value: &PyValue, out: &mut String) {
        match value {
            PyValue::Str(s) => out.push_str(&format!("'{}'", quote(s))),
            PyValue::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            PyValue::Int(n) => out.push_str(&n.to_string()),
            PyValue::Tuple(items) => {
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if out.len() > MAX_QUOTED {
                        out.push_str(", …");
                        break;
                    }
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(')');
            }
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    quote(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PyValue::*;

    #[test]
    fn numpy_header() {
        let d = parse_dict(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (512, 784), }          \n",
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                ("descr".into(), Str("<i8".into())),
                ("fortran_order".into(), Bool(false)),
                ("shape".into(), Tuple(vec![Int(512), Int(784)])),
            ]
        );
    }

    #[test]
    fn scalar_and_one_dim_shapes() {
        let d = parse_dict("{\"shape\": (), 'a': (5,), 'b': [3L, 4]}").unwrap();
        assert_eq!(d[0].1, Tuple(vec![]));
        assert_eq!(d[1].1, Tuple(vec![Int(5)]));
        assert_eq!(d[2].1, Tuple(vec![Int(3), Int(4)]));
    }

    #[test]
    fn rejects_malformed() {
        for (bad, says) in [
            ("", "expected '{' at byte 0, found the end"),
            ("{", "unexpected end of header"),
            ("{'a': }", "unexpected '}' at byte 6"),
            ("{'a' 1}", "expected ':' at byte 5, found '1'"),
            ("{'a': None}", "unsupported value 'None' at byte 6"),
            ("{'a': -1}", "unexpected '-' at byte 6"),
            ("{'a': 'x}", "unterminated string starting at byte 6"),
            ("{'a': (1, 2}", "expected ')' at byte 11, found '}'"),
            ("{'a': 1} junk", "unexpected text after the dict at byte 9"),
            ("{1: 2}", "dict key 1 is not a string"),
            (
                "{'a': 99999999999999999999999}",
                "integer 99999999999999999999999 at byte 6 is too large",
            ),
        ] {
            assert_eq!(parse_dict(bad), Err(says.to_string()), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // 32 levels parse; one more is refused at the byte that opens it.
        let ok = format!(
            "{{'a': {}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        let mut nested = PyValue::Tuple(vec![]);
        for _ in 1..MAX_DEPTH {
            nested = PyValue::Tuple(vec![nested]);
        }
        assert_eq!(parse_dict(&ok), Ok(vec![("a".to_string(), nested)]));
        let deeper = format!(
            "{{'a': {}{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let e = parse_dict(&deeper).unwrap_err();
        assert_eq!(
            e,
            format!(
                "tuples and lists nested deeper than {MAX_DEPTH} levels at byte {}",
                6 + MAX_DEPTH
            )
        );
        // Far deeper than any stack allows (a test thread has 2 MiB).
        let e = parse_dict(&format!("{{'shape': {}", "(".repeat(1_000_000))).unwrap_err();
        assert!(e.starts_with("tuples and lists nested deeper"), "{e}");
    }

    #[test]
    fn quoted_values_are_cut_short() {
        let long = format!("{{'a': {}}}", "x".repeat(100_000));
        let e = parse_dict(&long).unwrap_err();
        assert!(e.len() < 120, "{e}");
        assert!(e.contains("'xxxxxxxx") && e.contains('…'), "{e}");
        let key = format!("{{({}): 1}}", "7, ".repeat(10_000));
        let e = parse_dict(&key).unwrap_err();
        assert!(e.len() < 120 && e.contains("(7, 7, 7"), "{e}");
        // An integer of 5,000 digits is quoted cut short too.
        let huge = format!("{{'shape': ({}, 784)}}", "9".repeat(5_000));
        let e = parse_dict(&huge).unwrap_err();
        assert!(
            e.len() < 120 && e.contains("at byte 11 is too large"),
            "{e}"
        );
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        // NumPy would take the last shape, this parser used to take the first.
        let e = parse_dict("{'descr': '|u1', 'shape': (10, 784), 'shape': (5, 784)}").unwrap_err();
        assert_eq!(e, "key 'shape' given twice, at byte 37");
    }
}
