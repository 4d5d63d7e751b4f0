//! Small formatting helpers shared by the reports.

pub use bnn_bench::thousands;

/// A percentage with two decimals: `90.19 %`.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.2} %", 100.0 * part as f64 / whole as f64)
}
