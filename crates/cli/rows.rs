//! What `bnn classify` writes: CSV rows, JSON objects or a `.npy` array,
//! one entry per image in input order, with or without the scores.
//!
//! Text is formatted in parallel blocks (formatting floats costs more than
//! classifying) with a shortest round-trip formatter: every score parses
//! back to the very f32 the engine computed, and the text is the same as
//! Rust's `Display` gives, only faster.

use std::io::{self, Write};

use anyhow::Context;
use bnn_core::Predictions;
use bnn_io::records::{npy_header, npy_row};
use rayon::prelude::*;

/// How the rows are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Csv,
    Json,
    /// `(N,)` int64 classes, or a structured array of `class` (int64) and
    /// `scores` (float32 × classes) per image.
    Npy,
}

/// Rows formatted per parallel task.
const FORMAT_BLOCK: usize = 2048;

/// The output of one run: a header once, rows per chunk, an ending.
pub struct Rows<W: Write> {
    out: W,
    layout: Layout,
    scores: bool,
    /// The images the run will write: a `.npy` header states it first.
    total: u64,
    written: u64,
    started: bool,
    /// What a write error is about: stdout or the `-o` file.
    failing: String,
    /// The model's class names: a `label` column after the others in CSV
    /// and JSON (a `.npy` keeps its layout; the names are in the model).
    names: Option<Vec<String>>,
}

impl<W: Write> Rows<W> {
    pub fn new(out: W, layout: Layout, scores: bool, total: u64, failing: String) -> Self {
        Rows {
            out,
            layout,
            scores,
            total,
            written: 0,
            started: false,
            failing,
            names: None,
        }
    }

    /// Adds a `label` column (CSV, JSON) naming each row's class.
    pub fn with_names(mut self, names: Option<&[String]>) -> Self {
        self.names = names.map(<[String]>::to_vec);
        self
    }

    /// Writes one row per prediction, in order; `source(i)` names row `i`'s
    /// input and its index in it. An error names the output (and keeps the
    /// `io::Error`, so that a closed pipe is still recognised).
    pub fn write_all<'a>(
        &mut self,
        p: &Predictions,
        source: impl Fn(usize) -> (&'a str, usize) + Sync,
    ) -> anyhow::Result<()> {
        self.write_rows(p, source)
            .with_context(|| self.failing.clone())
    }

    fn write_rows<'a>(
        &mut self,
        p: &Predictions,
        source: impl Fn(usize) -> (&'a str, usize) + Sync,
    ) -> io::Result<()> {
        let n = p.classes.len();
        if n == 0 {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            self.start(p.num_classes)?;
        } else if self.layout == Layout::Json {
            self.out.write_all(b",\n")?;
        }
        self.written += n as u64;
        if self.written > self.total {
            return Err(io::Error::other(format!(
                "{} rows for the {} images announced",
                self.written, self.total
            )));
        }
        let (layout, scores) = (self.layout, self.scores);
        let names = self.names.as_deref();
        let label = |class: usize| names.map(|n| n[class].as_str());
        let blocks: Vec<Vec<u8>> = (0..n.div_ceil(FORMAT_BLOCK))
            .into_par_iter()
            .map(|b| {
                let rows = b * FORMAT_BLOCK..((b + 1) * FORMAT_BLOCK).min(n);
                let mut text = Vec::with_capacity(rows.len() * 160);
                for i in rows.clone() {
                    let (name, index) = source(i);
                    let s = p.scores_of(i);
                    match layout {
                        Layout::Csv => {
                            let class = p.classes[i];
                            csv_row(&mut text, name, index, class, s, scores, label(class));
                        }
                        Layout::Json => {
                            if i > rows.start {
                                text.extend_from_slice(b",\n");
                            }
                            let class = p.classes[i];
                            json_row(&mut text, name, index, class, s, scores, label(class));
                        }
                        Layout::Npy => npy_row(&mut text, p.classes[i], s, scores),
                    }
                }
                text
            })
            .collect();
        for (b, text) in blocks.iter().enumerate() {
            if layout == Layout::Json && b > 0 {
                self.out.write_all(b",\n")?;
            }
            self.out.write_all(text)?;
        }
        Ok(())
    }

    fn start(&mut self, classes: usize) -> io::Result<()> {
        match self.layout {
            Layout::Json => self.out.write_all(b"[\n"),
            Layout::Csv => {
                self.out.write_all(b"source,index,class")?;
                if self.scores {
                    for i in 0..classes {
                        write!(self.out, ",score_{i}")?;
                    }
                }
                if self.names.is_some() {
                    self.out.write_all(b",label")?;
                }
                self.out.write_all(b"\n")
            }
            Layout::Npy => {
                let header = npy_header(self.total, classes, self.scores);
                self.out.write_all(&header)
            }
        }
    }

    /// Ends the output; a run that wrote fewer rows than announced (a
    /// `.npy` header states the count) is an error. With no rows at all,
    /// CSV is its header alone, JSON an empty array and `.npy` an empty
    /// array of `classes` scores per row: an empty result, still in its
    /// format.
    pub fn finish(mut self, classes: usize) -> anyhow::Result<()> {
        let mut end = || -> io::Result<()> {
            match (self.layout, self.started) {
                (Layout::Json, true) => self.out.write_all(b"\n]\n")?,
                (Layout::Json, false) => self.out.write_all(b"[]\n")?,
                (Layout::Npy | Layout::Csv, false) => self.start(classes)?,
                _ => {}
            }
            if self.written != self.total {
                return Err(io::Error::other(format!(
                    "{} rows for the {} images announced",
                    self.written, self.total
                )));
            }
            self.out.flush()
        };
        end().with_context(|| self.failing.clone())
    }
}

fn csv_row(
    out: &mut Vec<u8>,
    source: &str,
    index: usize,
    class: usize,
    s: &[f32],
    scores: bool,
    label: Option<&str>,
) {
    csv_field(out, source);
    out.push(b',');
    push_int(out, index);
    out.push(b',');
    push_int(out, class);
    if scores {
        for &v in s {
            out.push(b',');
            push_f32(out, v);
        }
    }
    if let Some(label) = label {
        out.push(b',');
        csv_field(out, label);
    }
    out.push(b'\n');
}

/// One JSON object, without a separator.
fn json_row(
    out: &mut Vec<u8>,
    source: &str,
    index: usize,
    class: usize,
    s: &[f32],
    scores: bool,
    label: Option<&str>,
) {
    out.extend_from_slice(b"  {\"source\": ");
    json_string(out, source);
    out.extend_from_slice(b", \"index\": ");
    push_int(out, index);
    out.extend_from_slice(b", \"class\": ");
    push_int(out, class);
    if scores {
        for (i, &v) in s.iter().enumerate() {
            out.extend_from_slice(b", \"score_");
            push_int(out, i);
            out.extend_from_slice(b"\": ");
            push_f32(out, v);
        }
    }
    if let Some(label) = label {
        out.extend_from_slice(b", \"label\": ");
        json_string(out, label);
    }
    out.push(b'}');
}

fn push_int(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `v` as Rust's `Display` writes it (shortest digits that read back as
/// `v`, no exponent), by the fast formatter wherever its text is the same.
pub fn push_f32(out: &mut Vec<u8>, v: f32) {
    let mut buffer = zmij::Buffer::new();
    let mut text = buffer.format(v).as_bytes();
    if let [head @ .., b'.', b'0'] = text {
        text = head;
    }
    // An exponent (very large or small magnitudes), which `Display` never
    // writes, or a tie between two shortest texts, which the two break
    // differently: rare, and left to `Display`.
    if !v.is_finite() || text.contains(&b'e') || is_tie(v, text) {
        use std::io::Write as _;
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(text);
    }
}

/// Whether `v` lies exactly halfway between `text` and the next decimal of
/// as many significant digits, i.e. whether `v`'s exact decimal expansion
/// is `text`'s digits and one more digit, 5.
///
/// With `v = m·2^e` (`m` odd) and `j` the decimal places of that extra
/// digit (negative for trailing zeros of an integer), this is: `v·10^j` is
/// an integer ending in 5, that is `e + j = 0` (an odd integer) and
/// `m·5^j`, or `m/5^-j`, a multiple of 5.
fn is_tie(v: f32, text: &[u8]) -> bool {
    if v == 0.0 {
        return false;
    }
    let j: i32 = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (text.len() - dot) as i32,
        None => 1 - text.iter().rev().take_while(|&&b| b == b'0').count() as i32,
    };
    let bits = v.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32;
    let (mut m, mut e) = if exponent == 0 {
        (bits & 0x7f_ffff, -149)
    } else {
        ((bits & 0x7f_ffff) | 0x80_0000, exponent - 150)
    };
    let zeros = m.trailing_zeros();
    m >>= zeros;
    e += zeros as i32;
    if e + j != 0 {
        return false;
    }
    if j >= 1 {
        return true;
    }
    // j <= 0: m / 5^-j must be a whole multiple of 5.
    let mut n = m;
    for _ in 0..-j {
        if n % 5 != 0 {
            return false;
        }
        n /= 5;
    }
    n % 5 == 0
}

fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    use std::io::Write as _;
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f32) -> String {
        let mut out = Vec::new();
        push_f32(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_read_the_same_as_display_and_round_trip() {
        let mut bits = 0x9E37_79B9u32;
        let mut specials = vec![
            0.0f32,
            -0.0,
            1.0,
            -153.0,
            0.1,
            1e-5,
            9.99e-6,
            1e-7,
            f32::MIN_POSITIVE,
            1e-45,
            1e15,
            1e16,
            1.5e17,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            8.874479,
            -60.016937,
            f32::from_bits(0xca00_d289),
            2.5,
            0.125,
            1.5e10,
            16777216.0,
            33554436.0,
        ];
        // Scores are integer dots plus an f32 bias: test those most.
        for dot in -1000..=1000 {
            specials.push(dot as f32 + 0.019314);
            specials.push(dot as f32 - 0.3);
        }
        // Exact ties: halves, quarters, ... at every magnitude.
        for k in 0..32 {
            for odd in (1..2000).step_by(2) {
                specials.push(odd as f32 * 2f32.powi(k - 24));
                specials.push(-(odd as f32) * 2f32.powi(k));
            }
        }
        for v in specials.into_iter().chain((0..1_000_000).map(|_| {
            // xorshift: every bit pattern class, NaNs included.
            bits ^= bits << 13;
            bits ^= bits >> 17;
            bits ^= bits << 5;
            f32::from_bits(bits)
        })) {
            let got = text(v);
            assert_eq!(got, v.to_string(), "{:#x}", v.to_bits());
            if v.is_finite() {
                assert_eq!(got.parse::<f32>().unwrap().to_bits(), v.to_bits());
            }
        }
    }

    #[test]
    fn ties_are_found_where_the_formatters_may_differ() {
        assert!(is_tie(f32::from_bits(0xca00_d289), b"-2110626.2"));
        assert!(is_tie(2.5, b"2"));
        assert!(is_tie(0.125, b"0.12"));
        assert!(!is_tie(1.5e10, b"15000000000"));
        assert!(!is_tie(8.874479, b"8.874479"));
        assert!(!is_tie(-153.0, b"-153"));
    }

    #[test]
    fn npy_headers_are_aligned_and_state_the_layout() {
        for (count, classes, scores) in [(0, 10, false), (1_000_000, 10, true), (7, 300, true)] {
            let h = npy_header(count, classes, scores);
            assert_eq!(h.len() % 64, 0);
            assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
            assert_eq!(*h.last().unwrap(), b'\n');
            let dict = std::str::from_utf8(&h[10..]).unwrap();
            assert!(dict.contains(&format!("'shape': ({count},)")), "{dict}");
            let descr = if scores {
                format!("[('class', '<i8'), ('scores', '<f4', ({classes},))]")
            } else {
                "'<i8'".into()
            };
            assert!(dict.contains(&format!("'descr': {descr},")), "{dict}");
        }
    }
}
