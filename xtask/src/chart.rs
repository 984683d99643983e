//! The SVG chart: one panel per workload, a bar per subject (median of the primary metric),
//! brigade's bars in one colour and the peers' in another.

use std::path::Path;

use plotters::prelude::*;

use crate::summary::{Summary, format_value, view};

const PANEL_WIDTH: u32 = 560;
const PANEL_HEIGHT: u32 = 280;

fn unit(metric: &str) -> &'static str {
    match metric {
        "seconds" => "median time (s), lower is better",
        "p99_us" => "median p99 submit → start (µs), lower is better",
        "bytes_per_job" => "bytes per queued job, lower is better",
        "cpu_ms_per_s" => "CPU ms per idle second, lower is better",
        _ => "lower is better",
    }
}

pub(crate) fn draw(path: &Path, summary: &Summary, title: &str) -> Result<(), String> {
    let groups: Vec<_> = summary
        .groups
        .iter()
        .filter(|group| {
            group
                .rows
                .iter()
                .any(|row| row.medians.contains_key(&group.primary))
        })
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let columns = 2usize.min(groups.len());
    let rows = groups.len().div_ceil(columns);
    let size = (
        PANEL_WIDTH * columns as u32,
        PANEL_HEIGHT * rows as u32 + 40,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let panels = root.split_evenly((rows, columns));
    for (panel, group) in panels.iter().zip(&groups) {
        let bars: Vec<(String, f64)> = group
            .rows
            .iter()
            .filter_map(|row| {
                row.medians
                    .get(&group.primary)
                    .map(|value| (row.subject.clone(), value.max(0.0)))
            })
            .collect();
        let top = bars
            .iter()
            .map(|(_, v)| *v)
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.3;
        let names: Vec<String> = bars.iter().map(|(name, _)| name.clone()).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{} — {}",
                    group.workload,
                    unit(view(&group.workload).primary)
                ),
                ("sans-serif", 14),
            )
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..top, (0..bars.len()).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&|position| match position {
                SegmentValue::CenterOf(index) => names.get(*index).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|value| format_value(*value))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(index, (name, value))| {
                let colour = if name.starts_with("brigade") {
                    RGBColor(0x1f, 0x6f, 0xb4)
                } else {
                    RGBColor(0x9a, 0x9a, 0x9a)
                };
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(index)),
                        (*value, SegmentValue::Exact(index + 1)),
                    ],
                    colour.filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(index, (_, value))| {
                Text::new(
                    format!(" {}", format_value(*value)),
                    (*value, SegmentValue::CenterOf(index)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
