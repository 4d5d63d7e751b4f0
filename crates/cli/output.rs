//! Small formatting helpers shared by the reports.

pub use bnn_bench::thousands;

/// A percentage with two decimals: `90.19 %`.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.2} %", 100.0 * part as f64 / whole as f64)
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
