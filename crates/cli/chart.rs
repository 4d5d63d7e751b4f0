//! The two charts `bnn` writes, both through [`crate::svg`]: the training
//! curve beside every trained model and the bench throughput chart. The
//! libraries hand over numbers (epoch metrics, a bench report); drawing is
//! presentation, so it lives with the program.

use std::path::Path;

use bnn_bench::BenchReport;
use bnn_train::metrics::EpochMetrics;
use bnn_train::TrainOutcome;

use crate::svg::{Anchor, Svg};

/// Horizontal bars, one per (model, kernel, threads), log10 images/s.
pub fn bench_throughput(report: &BenchReport) -> String {
    let rows = &report.throughput;
    let (label_w, bar_w, row_h, top) = (360.0, 520.0, 22.0, 50.0);
    let height = top + row_h * rows.len() as f64 + 40.0;
    let width = label_w + bar_w + 140.0;
    let max = rows.iter().map(|r| r.images_per_s).fold(1.0, f64::max);
    let (lo, hi) = (3.0f64, max.log10().ceil().max(4.0));
    let x = |v: f64| label_w + bar_w * ((v.max(1.0).log10() - lo).max(0.0) / (hi - lo));
    let mut svg = Svg::new(width, height);
    svg.label(
        10.0,
        22.0,
        Anchor::Start,
        15,
        &format!(
            "Batch throughput on {} (images/s, log scale)",
            report.images_text()
        ),
    );
    let mut decade = lo;
    while decade <= hi {
        let px = x(10f64.powf(decade));
        svg.line((px, top - 8.0), (px, height - 30.0), GRID);
        svg.label(
            px,
            height - 14.0,
            Anchor::Middle,
            12,
            &format!("1e{decade}"),
        );
        decade += 1.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let color = match r.kernel.as_str() {
            "sgemm" => "#d62728",
            "avx512" => "#1f77b4",
            "avx2" => "#2ca02c",
            _ => "#7f7f7f",
        };
        let end = x(r.images_per_s);
        svg.label(
            label_w - 8.0,
            y + 15.0,
            Anchor::End,
            12,
            &format!("{} · {} · {}T", r.model, r.kernel, r.threads),
        );
        svg.rect(
            label_w,
            y + 3.0,
            (end - label_w).max(1.0),
            row_h - 6.0,
            color,
        );
        svg.label(
            end + 6.0,
            y + 15.0,
            Anchor::Start,
            12,
            &format!("{:.0}", r.images_per_s),
        );
    }
    svg.finish()
}

/// The training curve of a finished run, titled with the model's file
/// name, its recipe and its test accuracy.
pub fn training_curve_of(outcome: &TrainOutcome, model: &Path) -> String {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = format!(
        "{name} ({}): test {:.2}%",
        outcome.config.recipe,
        100.0 * outcome.test_accuracy
    );
    training_curve(&title, &outcome.history)
}

/// Loss per epoch above; training and validation accuracy below.
pub fn training_curve(title: &str, history: &[EpochMetrics]) -> String {
    let mut svg = Svg::new(800.0, 600.0);
    svg.label(400.0, 28.0, Anchor::Middle, 18, title);
    let last = history.iter().map(|m| m.epoch).max().unwrap_or(1).max(1) as f64;
    let x = (0.5, last + 0.5);
    let finite = |v: f64| v.is_finite().then_some(v);
    let max_loss = history
        .iter()
        .filter_map(|m| finite(m.loss))
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.05;
    let lowest = history
        .iter()
        .flat_map(|m| [m.train_accuracy, m.val_accuracy])
        .filter_map(finite)
        .fold(1.0f64, f64::min);
    // Start the accuracy axis on a tick, so its lowest line is labelled.
    let floor = (lowest * 100.0 - 1.0).floor().clamp(0.0, 99.0);
    let floor = ticks_step(100.0 - floor, 0.0).map_or(floor, |s| (floor / s).floor() * s);
    let series = |get: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|m| finite(get(m)).map(|v| (m.epoch as f64, v)))
            .collect()
    };
    Panel {
        left: 80.0,
        right: 780.0,
        top: 50.0,
        bottom: 270.0,
        x,
        y: (0.0, max_loss),
    }
    .draw(
        &mut svg,
        "training loss",
        &[Series {
            name: "loss",
            color: LOSS,
            points: series(|m| m.loss),
        }],
        Corner::TopRight,
    );
    Panel {
        left: 80.0,
        right: 780.0,
        top: 330.0,
        bottom: 550.0,
        x,
        y: (floor, 100.0),
    }
    .draw(
        &mut svg,
        "accuracy %",
        &[
            Series {
                name: "train",
                color: TRAIN,
                points: series(|m| 100.0 * m.train_accuracy),
            },
            Series {
                name: "validation",
                color: VALIDATION,
                points: series(|m| 100.0 * m.val_accuracy),
            },
        ],
        Corner::BottomRight,
    );
    svg.finish()
}

const GRID: &str = "#ccc";
const LOSS: &str = "#d62728";
const TRAIN: &str = "#1f77b4";
const VALIDATION: &str = "#2ca02c";

/// Where a panel's legend goes: away from where its curves usually run.
#[derive(Clone, Copy)]
enum Corner {
    TopRight,
    BottomRight,
}

/// One curve: its legend name, colour and `(epoch, value)` points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

/// One plot area: its pixel box and the data ranges it shows, x over
/// epochs.
struct Panel {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Panel {
    fn px(&self, v: f64) -> f64 {
        self.left + (self.right - self.left) * (v - self.x.0) / (self.x.1 - self.x.0)
    }

    fn py(&self, v: f64) -> f64 {
        self.bottom - (self.bottom - self.top) * (v - self.y.0) / (self.y.1 - self.y.0)
    }

    fn draw(&self, svg: &mut Svg, y_title: &str, series: &[Series], legend: Corner) {
        for t in ticks(self.x.0, self.x.1, 1.0) {
            let px = self.px(t);
            svg.line((px, self.top), (px, self.bottom), GRID);
            svg.label(px, self.bottom + 16.0, Anchor::Middle, 12, &format!("{t}"));
        }
        let y_ticks = ticks(self.y.0, self.y.1, 0.0);
        let step = y_ticks.get(1).map_or(1.0, |b| b - y_ticks[0]);
        for t in y_ticks {
            let py = self.py(t);
            svg.line((self.left, py), (self.right, py), GRID);
            svg.label(
                self.left - 6.0,
                py + 4.0,
                Anchor::End,
                12,
                &tick_label(t, step),
            );
        }
        svg.frame(
            self.left,
            self.top,
            self.right - self.left,
            self.bottom - self.top,
            "black",
        );
        svg.label(
            (self.left + self.right) / 2.0,
            self.bottom + 34.0,
            Anchor::Middle,
            12,
            "epoch",
        );
        svg.vertical_label(
            self.left - 52.0,
            (self.top + self.bottom) / 2.0,
            12,
            y_title,
        );
        for s in series {
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (self.px(x), self.py(y)))
                .collect();
            svg.polyline(&points, s.color);
        }
        let (w, h) = (110.0, 8.0 + 18.0 * series.len() as f64);
        let x0 = self.right - w - 10.0;
        let y0 = match legend {
            Corner::TopRight => self.top + 10.0,
            Corner::BottomRight => self.bottom - h - 10.0,
        };
        svg.rect(x0, y0, w, h, "white");
        svg.frame(x0, y0, w, h, "black");
        for (i, s) in series.iter().enumerate() {
            let y = y0 + 16.0 + 18.0 * i as f64;
            svg.line((x0 + 8.0, y - 4.0), (x0 + 28.0, y - 4.0), s.color);
            svg.label(x0 + 34.0, y, Anchor::Start, 12, s.name);
        }
    }
}

/// Round tick values in `[lo, hi]`: steps of 1, 2 or 5 times a power of
/// ten, about six of them, and no step below `min_step` (1 keeps epochs
/// whole).
fn ticks(lo: f64, hi: f64, min_step: f64) -> Vec<f64> {
    let Some(step) = ticks_step(hi - lo, min_step) else {
        return vec![lo];
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// The step of [`ticks`] over a range `span` wide; none for an empty or
/// unbounded range.
fn ticks_step(span: f64, min_step: f64) -> Option<f64> {
    let raw = (span / 6.0).max(min_step);
    if !(raw.is_finite() && raw > 0.0) {
        return None;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
}

/// A tick value with as many decimals as its step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_bench::Throughput;

    fn epoch(epoch: usize, loss: f64, train: f64, val: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            lr: 0.001,
            loss,
            train_accuracy: train,
            val_accuracy: val,
            clips: vec![],
            seconds: 1.0,
        }
    }

    /// The `points` of each polyline, in pixels.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline points=\"")
            .skip(1)
            .map(|rest| {
                rest[..rest.find('"').unwrap()]
                    .split(' ')
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(ticks(0.5, 10.5, 1.0), vec![2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(0.5, 3.5, 0.0),
            vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        );
        // Epochs stay whole, even for one or three of them.
        assert_eq!(ticks(0.5, 3.5, 1.0), vec![1.0, 2.0, 3.0]);
        assert_eq!(ticks(0.5, 1.5, 1.0), vec![1.0]);
        assert_eq!(
            ticks(0.5, 30.5, 1.0),
            vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(ticks(0.0, 2.1, 0.0), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(
            ticks(88.0, 100.0, 0.0),
            vec![88.0, 90.0, 92.0, 94.0, 96.0, 98.0, 100.0]
        );
        assert_eq!(ticks(1.0, 1.0, 0.0), vec![1.0]);
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(90.0, 2.0), "90");
    }

    /// Every epoch is a point; higher loss is drawn higher up, higher
    /// accuracy too, each in its own panel, with the legend naming each
    /// curve.
    #[test]
    fn training_curve_plots_every_epoch_in_its_panel() {
        let history = [
            epoch(1, 0.9, 0.80, 0.85),
            epoch(2, 0.5, 0.90, 0.91),
            epoch(3, 0.3, 0.95, 0.93),
        ];
        let svg = training_curve("m.bnn (bn): test 93.00%", &history);
        assert!(svg.contains(">m.bnn (bn): test 93.00%</text>"), "{svg}");
        for name in [
            ">loss<",
            ">train<",
            ">validation<",
            ">epoch<",
            ">accuracy %<",
        ] {
            assert!(svg.contains(name), "{name}: {svg}");
        }
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3, "{svg}");
        let (loss, train, val) = (&lines[0], &lines[1], &lines[2]);
        for line in &lines {
            assert_eq!(line.len(), 3);
            assert!(
                line.windows(2).all(|w| w[0].0 < w[1].0),
                "epochs left to right"
            );
            assert!(line.iter().all(|p| (80.0..=780.0).contains(&p.0)));
        }
        // Falling loss: y grows (down the page), inside the top panel.
        assert!(loss.windows(2).all(|w| w[0].1 < w[1].1), "{loss:?}");
        assert!(loss.iter().all(|p| (50.0..=270.0).contains(&p.1)));
        // Rising accuracy: y shrinks, inside the bottom panel.
        for acc in [train, val] {
            assert!(acc.windows(2).all(|w| w[0].1 > w[1].1), "{acc:?}");
            assert!(acc.iter().all(|p| (330.0..=550.0).contains(&p.1)));
        }
        // The accuracy axis starts on a labelled tick below the lowest
        // accuracy (80 %): 75 %, then every 5 %.
        for label in ["75", "80", "100"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}: {svg}");
        }
        assert!(!svg.contains(">79</text>") && !svg.contains(">70</text>"));
        // Equal accuracies sit at equal heights in both curves.
        let same = training_curve("t", &[epoch(1, 1.0, 0.9, 0.9), epoch(2, 1.0, 0.5, 0.5)]);
        let lines = polylines(&same);
        assert_eq!(lines[1], lines[2]);
    }

    #[test]
    fn training_curve_skips_values_it_cannot_place() {
        let history = [
            epoch(1, f64::NAN, 0.5, 0.6),
            epoch(2, 0.4, 0.7, f64::INFINITY),
        ];
        let svg = training_curve("t", &history);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let lines = polylines(&svg);
        assert_eq!(lines.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 1]);
        // No epochs at all: axes, no curves.
        let empty = training_curve("t", &[]);
        assert!(polylines(&empty).is_empty() && empty.ends_with("</svg>\n"));
    }

    #[test]
    fn bench_bars_grow_with_throughput_on_a_log_scale() {
        let row = |kernel: &str, images_per_s: f64| Throughput {
            model: "m<1>.bnn".into(),
            engine: "1-bit".into(),
            kernel: kernel.into(),
            threads: 2,
            images_per_s,
            accuracy: Some(90.0),
        };
        let report = BenchReport {
            images: 10_000,
            data: bnn_bench::MNIST_DATA.into(),
            repeat: 1,
            threads: vec![2],
            throughput: vec![row("avx512", 1e6), row("scalar", 1e5), row("sgemm", 1e4)],
            latency: vec![],
            models: vec![],
        };
        let svg = bench_throughput(&report);
        assert!(svg.contains("on 10000 MNIST test images"), "{svg}");
        assert!(
            svg.contains(">m&lt;1&gt;.bnn · avx512 · 2T</text>"),
            "{svg}"
        );
        let widths: Vec<f64> = svg
            .split("<rect x=\"360.0\"")
            .skip(1)
            .map(|r| {
                let w = &r[r.find("width=\"").unwrap() + 7..];
                w[..w.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        // Decades 1e3..1e6 span 520 px: each factor of ten is a third.
        assert_eq!(widths.len(), 3);
        assert!((widths[0] - 520.0).abs() < 0.1, "{widths:?}");
        assert!(
            (widths[0] - widths[1] - 520.0 / 3.0).abs() < 0.2,
            "{widths:?}"
        );
        assert!(
            (widths[1] - widths[2] - 520.0 / 3.0).abs() < 0.2,
            "{widths:?}"
        );
        for color in ["#1f77b4", "#7f7f7f", "#d62728"] {
            assert!(svg.contains(color), "{color}");
        }
        assert!(svg.contains(">1e6</text>") && svg.contains(">1e3</text>"));
    }
}
