//! The SVG chart: one panel per workload, a bar per subject (median of the primary metric),
//! brigade's bars in one colour and the peers' in another.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
        PANEL_WIDTH * columns.max(2) as u32,
        PANEL_HEIGHT * rows as u32 + 40,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let panels = root.split_evenly((rows, columns));
    for (panel, group) in panels.iter().zip(&groups) {
        // Reversed so the first subject (brigade-thread) is drawn at the top.
        let bars: Vec<(String, f64)> = group
            .rows
            .iter()
            .rev()
            .filter_map(|row| {
                row.medians
                    .get(&group.primary)
                    .map(|value| (row.subject.clone(), value.max(0.0)))
            })
            .collect();
        let largest = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
        // An all-zero panel (an idle pool) still gets a readable scale.
        let top = if largest > 1e-9 { largest * 1.3 } else { 1.0 };
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
            .light_line_style(WHITE)
            .x_labels(6)
            .y_labels(bars.len())
            .y_label_formatter(&|position| match position {
                SegmentValue::CenterOf(index) => names.get(*index).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|value| format_value(*value))
            .draw()
            .map_err(|e| e.to_string())?;
        let brigade = RGBColor(0x1f, 0x6f, 0xb4);
        let peer = RGBColor(0x9a, 0x9a, 0x9a);
        chart
            .draw_series(
                Histogram::horizontal(&chart)
                    .margin(6)
                    .style_func(|position, _| {
                        let index = match position {
                            SegmentValue::Exact(index) | SegmentValue::CenterOf(index) => *index,
                            SegmentValue::Last => 0,
                        };
                        if names
                            .get(index)
                            .is_some_and(|name| name.starts_with("brigade"))
                        {
                            brigade.filled()
                        } else {
                            peer.filled()
                        }
                    })
                    .data(
                        bars.iter()
                            .enumerate()
                            .map(|(index, (_, value))| (index, *value)),
                    ),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(index, (_, value))| {
                Text::new(
                    format!(" {}", format_value(*value)),
                    (*value, SegmentValue::CenterOf(index)),
                    TextStyle::from(("sans-serif", 12).into_font())
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
