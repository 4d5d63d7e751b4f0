//! The one way `bnn` draws: SVG elements written as text. Both charts are
//! lines, bars and labels, which a plotting crate would serve only by
//! bringing in a font stack and the system libraries behind it.

use std::fmt::Write;

/// Where a label sits relative to its anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn attr(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// An SVG document under construction, on a white background, 12-pixel
/// sans-serif text unless a label asks for another size.
pub struct Svg {
    text: String,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Self {
        let mut text = String::new();
        let _ = writeln!(
            text,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        text.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        Svg { text }
    }

    /// A label; `size` in pixels.
    pub fn label(&mut self, x: f64, y: f64, anchor: Anchor, size: u32, label: &str) {
        let _ = writeln!(
            self.text,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{}"{}>{}</text>"#,
            anchor.attr(),
            font_size(size),
            escape(label)
        );
    }

    /// A label read bottom to top, centred on `(x, y)`: a y-axis title.
    pub fn vertical_label(&mut self, x: f64, y: f64, size: u32, label: &str) {
        let _ = writeln!(
            self.text,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {y:.1})"{}>{}</text>"#,
            font_size(size),
            escape(label)
        );
    }

    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), stroke: &str) {
        let _ = writeln!(
            self.text,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{stroke}"/>"#,
            from.0, from.1, to.0, to.1
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str) {
        let _ = writeln!(
            self.text,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" fill="{fill}"/>"#
        );
    }

    /// An unfilled rectangle: a plot's frame or a legend's box.
    pub fn frame(&mut self, x: f64, y: f64, width: f64, height: f64, stroke: &str) {
        let _ = writeln!(
            self.text,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" fill="none" stroke="{stroke}"/>"#
        );
    }

    /// A connected line through `points`; nothing for fewer than one point.
    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str) {
        if points.is_empty() {
            return;
        }
        let coords: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.text,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="2"/>"#,
            coords.join(" ")
        );
    }

    pub fn finish(mut self) -> String {
        self.text.push_str("</svg>\n");
        self.text
    }
}

fn font_size(size: u32) -> String {
    if size == 12 {
        String::new()
    } else {
        format!(r#" font-size="{size}""#)
    }
}

/// Text as SVG character data or attribute value.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_the_document_is_closed() {
        let mut svg = Svg::new(100.0, 50.0);
        svg.label(1.0, 2.0, Anchor::End, 15, "a<b & \"c\">");
        svg.vertical_label(5.0, 25.0, 12, "loss");
        let text = svg.finish();
        assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\""));
        assert!(text.ends_with("</svg>\n"), "{text}");
        assert!(
            text.contains(r#"<text x="1.0" y="2.0" text-anchor="end" font-size="15">a&lt;b &amp; &quot;c&quot;&gt;</text>"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rotate(-90 5.0 25.0)">loss</text>"#),
            "{text}"
        );
        assert_eq!(text.matches("<text").count(), 2);
    }

    #[test]
    fn polyline_lists_every_point_and_skips_when_empty() {
        let mut svg = Svg::new(10.0, 10.0);
        svg.polyline(&[], "red");
        svg.polyline(&[(1.0, 2.0), (3.5, 4.04)], "red");
        let text = svg.finish();
        assert_eq!(text.matches("<polyline").count(), 1, "{text}");
        assert!(
            text.contains(r#"points="1.0,2.0 3.5,4.0" fill="none" stroke="red""#),
            "{text}"
        );
    }
}
