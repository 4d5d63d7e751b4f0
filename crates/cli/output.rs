//! Small formatting helpers shared by the reports, and the two ways of
//! printing what is not a result: [`note!`] for progress and diagnostics on
//! stderr, [`summary`] for the stdout summary of a command whose results
//! are the files it wrote.

use std::io::{self, Write};

pub use bnn_bench::thousands;

/// A percentage with two decimals: `90.19 %`.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.2} %", 100.0 * part as f64 / whole as f64)
}

/// Prints one line of progress or diagnostics on stderr, like `eprintln!`
/// but ignoring a failed write: `eprintln!` panics when stderr is full
/// (`2>/dev/full`) or its reader has left (`2>&1 | head`), which ended
/// hours of training with no model. Every line the program prints on
/// stderr, other than its final error, goes through here.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// The body of [`note!`].
pub fn note_line(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Prints the summary of a command whose results are the files it wrote
/// (`train`, `import-npz`) on stdout. The files are written by then, so a
/// stdout that cannot take the summary does not fail the run: a reader that
/// left (`| head -1`) is ignored, any other failure (`>/dev/full`) is noted
/// on stderr. (Commands whose results are what they print, such as `eval`
/// or `classify` without `-o`, fail instead: see docs/CLI.md "Output paths".)
pub fn summary(print: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
    let mut out = io::stdout().lock();
    let printed = print(&mut out).and_then(|()| out.flush());
    if let Err(e) = printed {
        if e.kind() != io::ErrorKind::BrokenPipe {
            note!("bnn: warning: standard output: {e}; the summary was not printed, but the results were written");
        }
    }
}

/// How many times larger or smaller `a` bytes are than `b`, in words that
/// match the direction: `2.5x larger`, `1.5x smaller`, `the same size`.
pub fn size_ratio(a: u64, b: u64) -> String {
    let (a, b) = (a.max(1) as f64, b.max(1) as f64);
    if a > b {
        format!("{:.1}x larger", a / b)
    } else if a < b {
        format!("{:.1}x smaller", b / a)
    } else {
        "the same size".into()
    }
}

#[cfg(test)]
mod tests {
    use super::size_ratio;

    #[test]
    fn size_ratio_names_the_direction() {
        assert_eq!(size_ratio(300, 100), "3.0x larger");
        assert_eq!(size_ratio(100, 200), "2.0x smaller");
        assert_eq!(size_ratio(7, 7), "the same size");
        assert_eq!(size_ratio(0, 10), "10.0x smaller");
    }
}
