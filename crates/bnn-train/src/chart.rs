//! The training curve as an SVG: loss per epoch above, training and
//! validation accuracy below.

use plotters::prelude::*;

use crate::metrics::EpochMetrics;

/// Renders the curves of `history` to an SVG document.
pub fn training_curve_svg(title: &str, history: &[EpochMetrics]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 18))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(280);
        let epochs = history.len().max(1) as f64;
        let max_loss = history
            .iter()
            .map(|m| m.loss)
            .fold(0.0f64, f64::max)
            .max(1e-6)
            * 1.05;
        let mut loss = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..epochs + 0.5, 0.0..max_loss)
            .map_err(|e| e.to_string())?;
        loss.configure_mesh()
            .x_desc("epoch")
            .y_desc("training loss")
            .draw()
            .map_err(|e| e.to_string())?;
        loss.draw_series(LineSeries::new(
            history.iter().map(|m| (m.epoch as f64, m.loss)),
            &RED,
        ))
        .map_err(|e| e.to_string())?
        .label("loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        loss.configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;

        let lowest = history
            .iter()
            .flat_map(|m| [m.train_accuracy, m.val_accuracy])
            .fold(1.0f64, f64::min);
        let floor = ((lowest * 100.0 - 1.0).floor()).clamp(0.0, 99.0);
        let mut acc = ChartBuilder::on(&bottom)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..epochs + 0.5, floor..100.0)
            .map_err(|e| e.to_string())?;
        acc.configure_mesh()
            .x_desc("epoch")
            .y_desc("accuracy %")
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, get) in [
            (
                "train",
                BLUE,
                (|m: &EpochMetrics| m.train_accuracy) as fn(&EpochMetrics) -> f64,
            ),
            ("validation", GREEN, |m: &EpochMetrics| m.val_accuracy),
        ] {
            acc.draw_series(LineSeries::new(
                history.iter().map(|m| (m.epoch as f64, 100.0 * get(m))),
                &color,
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        acc.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
