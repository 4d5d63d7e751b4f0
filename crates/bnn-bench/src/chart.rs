//! A dependency-free SVG bar chart of batch throughput per engine and
//! kernel, on a log scale: plotting crates pull in font stacks that need
//! system libraries, while this chart needs only rectangles and text.

use std::fmt::Write;

use crate::report::BenchReport;

/// Horizontal bars, one per (model, kernel, threads), log10 images/s.
pub fn svg_chart(report: &BenchReport) -> String {
    let rows = &report.throughput;
    let (label_w, bar_w, row_h, top) = (360.0, 520.0, 22.0, 50.0);
    let height = top + row_h * rows.len() as f64 + 40.0;
    let width = label_w + bar_w + 140.0;
    let max = rows.iter().map(|r| r.images_per_s).fold(1.0, f64::max);
    let (lo, hi) = (3.0f64, max.log10().ceil().max(4.0));
    let x = |v: f64| label_w + bar_w * ((v.max(1.0).log10() - lo).max(0.0) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15">Batch throughput on {} MNIST test images (images/s, log scale)</text>
"#,
        report.images
    );
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#ccc"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">1e{decade}</text>"##,
            top - 8.0,
            height - 30.0,
            height - 14.0
        );
        decade += 1.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let color = match (r.engine.as_str(), r.kernel.as_str()) {
            (_, "sgemm") => "#d62728",
            (_, "avx512") => "#1f77b4",
            (_, "avx2") => "#2ca02c",
            _ => "#7f7f7f",
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} · {} · {}T</text><rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}">{:.0}</text>"#,
            label_w - 8.0,
            y + 15.0,
            escape(&r.model),
            escape(&r.kernel),
            r.threads,
            y + 3.0,
            (x(r.images_per_s) - label_w).max(1.0),
            row_h - 6.0,
            x(r.images_per_s) + 6.0,
            y + 15.0,
            r.images_per_s
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
