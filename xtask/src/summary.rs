//! Medians per workload and subject, and the table that shows them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bench::Collected;

/// The subject every ratio is taken against, when it ran.
pub(crate) const REFERENCE: &str = "brigade-thread";
/// The reference when brigade-thread did not run (filtered out, or not yet built).
const FALLBACK_REFERENCE: &str = "crossbeam-pool";
/// A timed row whose rounds lie further apart than this (slowest − fastest, over the
/// median) was timed on a busy machine (a shared VM's neighbours, say) or in too short a
/// batch: the report names such rows.
pub(crate) const NOISY_SPREAD: f64 = 0.25;

/// How a workload is shown: the metric ranked on, then the extra columns.
pub(crate) struct View {
    pub(crate) primary: &'static str,
    pub(crate) columns: &'static [(&'static str, &'static str)],
}

pub(crate) fn view(workload: &str) -> View {
    match workload {
        "sleep" => View {
            primary: "seconds",
            columns: &[("seconds", "time (s)"), ("ratio_to_ideal", "× ideal")],
        },
        "latency" => View {
            primary: "p99_us",
            columns: &[
                ("p50_us", "p50 (µs)"),
                ("p99_us", "p99 (µs)"),
                ("offered_per_s", "offered (jobs/s)"),
                ("achieved_per_s", "achieved (jobs/s)"),
            ],
        },
        "memory" => View {
            primary: "bytes_per_job",
            columns: &[
                ("bytes_per_job", "B / queued job"),
                ("overhead_per_job", "B overhead"),
                ("peak_rss_mib", "peak RSS (MiB)"),
            ],
        },
        "idle" => View {
            primary: "cpu_ms_per_s",
            columns: &[("cpu_ms_per_s", "CPU ms / idle s"), ("threads", "threads")],
        },
        _ => View {
            primary: "seconds",
            columns: &[("seconds", "time (s)"), ("jobs_per_s", "jobs/s")],
        },
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) subject: String,
    pub(crate) samples: usize,
    pub(crate) medians: BTreeMap<String, f64>,
    /// Primary metric over the reference's (lower is better for every primary metric).
    pub(crate) ratio: Option<f64>,
    /// How far the rounds of the primary metric lie apart: slowest − fastest, over the
    /// median. `None` with fewer than two rounds.
    pub(crate) spread: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Group {
    pub(crate) workload: String,
    pub(crate) primary: String,
    pub(crate) reference: Option<String>,
    pub(crate) rows: Vec<Row>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) groups: Vec<Group>,
}

/// `(max − min) / median` of `values`; `None` for fewer than two values or a zero median.
pub(crate) fn spread(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let middle = median(&mut values.to_vec());
    (middle > 0.0).then(|| (max - min) / middle)
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Summary {
    pub(crate) fn new(collected: &Collected) -> Self {
        let groups = collected
            .order
            .iter()
            .map(|(workload, subjects)| {
                let view = view(workload);
                let mut rows: Vec<Row> = subjects
                    .iter()
                    .map(|subject| {
                        let samples: Vec<_> = collected
                            .samples
                            .iter()
                            .filter(|s| &s.workload == workload && &s.subject == subject)
                            .collect();
                        let mut by_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                        for sample in &samples {
                            for (name, value) in &sample.metrics {
                                by_metric.entry(name.clone()).or_default().push(*value);
                            }
                        }
                        Row {
                            subject: subject.clone(),
                            samples: samples.len(),
                            spread: by_metric
                                .get(view.primary)
                                .and_then(|values| spread(values)),
                            medians: by_metric
                                .into_iter()
                                .map(|(name, mut values)| (name, median(&mut values)))
                                .collect(),
                            ratio: None,
                        }
                    })
                    .collect();
                let reference = [REFERENCE, FALLBACK_REFERENCE]
                    .into_iter()
                    .find(|name| rows.iter().any(|row| row.subject == *name))
                    .map(str::to_owned);
                let base = reference.as_ref().and_then(|name| {
                    rows.iter()
                        .find(|row| &row.subject == name)
                        .and_then(|row| row.medians.get(view.primary).copied())
                });
                for row in &mut rows {
                    row.ratio = match (row.medians.get(view.primary), base) {
                        (Some(value), Some(base)) if base > 0.0 => Some(value / base),
                        _ => None,
                    };
                }
                Group {
                    workload: workload.clone(),
                    primary: view.primary.to_owned(),
                    reference,
                    rows,
                }
            })
            .collect();
        Summary { groups }
    }

    pub(crate) fn group(&self, workload: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.workload == workload)
    }

    /// The timed rows (`workload`, `subject`, spread) whose rounds spread wider than
    /// [`NOISY_SPREAD`]: a ratio drawn from one of them wants another run.
    pub(crate) fn noisy_rows(&self) -> Vec<(&str, &str, f64)> {
        self.groups
            .iter()
            .filter(|group| group.primary == "seconds")
            .flat_map(|group| {
                group.rows.iter().filter_map(|row| {
                    let spread = row.spread.filter(|spread| *spread > NOISY_SPREAD)?;
                    Some((group.workload.as_str(), row.subject.as_str(), spread))
                })
            })
            .collect()
    }

    /// What [`noisy_rows`](Self::noisy_rows) found, in a sentence.
    pub(crate) fn noise_note(&self) -> String {
        let noisy = self.noisy_rows();
        if noisy.is_empty() {
            return format!(
                "No timed row's rounds spread by more than {:.0}% (slowest − fastest, over \
                 the median).",
                NOISY_SPREAD * 100.0
            );
        }
        let rows: Vec<String> = noisy
            .iter()
            .map(|(workload, subject, spread)| {
                format!("{workload}/{subject} {:.0}%", spread * 100.0)
            })
            .collect();
        format!(
            "Noisy: {} of the timed rows spread by more than {:.0}% between rounds ({}): the \
             machine was busy with something else, or the batch too short to time steadily \
             (`--quick`). A ratio or verdict drawn from those rows wants another run; \
             `cargo xtask instructions` compares the noop and middleware subjects by what \
             the host's load does not move.",
            noisy.len(),
            NOISY_SPREAD * 100.0,
            rows.join(", ")
        )
    }

    /// The median of `metric` for `subject` on `workload`, if measured.
    pub(crate) fn value(&self, workload: &str, subject: &str, metric: &str) -> Option<f64> {
        self.group(workload)?
            .rows
            .iter()
            .find(|row| row.subject == subject)?
            .medians
            .get(metric)
            .copied()
    }

    /// One table per workload, as header + rows of cells.
    pub(crate) fn tables(&self) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
        self.groups
            .iter()
            .map(|group| {
                let view = view(&group.workload);
                let mut header = vec!["subject".to_owned()];
                header.extend(view.columns.iter().map(|(_, title)| (*title).to_owned()));
                header.push("spread".to_owned());
                header.push(format!(
                    "vs {}",
                    group.reference.as_deref().unwrap_or("reference")
                ));
                let rows = group
                    .rows
                    .iter()
                    .map(|row| {
                        let mut cells = vec![row.subject.clone()];
                        cells.extend(view.columns.iter().map(|(metric, _)| {
                            row.medians
                                .get(*metric)
                                .map_or_else(|| "–".to_owned(), |value| format_value(*value))
                        }));
                        cells.push(row.spread.map_or_else(
                            || "–".to_owned(),
                            |spread| format!("{:.0}%", spread * 100.0),
                        ));
                        cells.push(
                            row.ratio
                                .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×")),
                        );
                        cells
                    })
                    .collect();
                (group.workload.clone(), header, rows)
            })
            .collect()
    }

    /// Plain-text tables for the terminal.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        for (workload, header, rows) in self.tables() {
            out.push_str(&format!("\n{workload} (median)\n"));
            let widths: Vec<usize> = (0..header.len())
                .map(|column| {
                    std::iter::once(&header)
                        .chain(&rows)
                        .map(|row| row[column].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&header).chain(&rows) {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(column, (cell, width))| {
                        let pad = width - cell.chars().count();
                        if column == 0 {
                            format!("{cell}{}", " ".repeat(pad))
                        } else {
                            format!("{}{cell}", " ".repeat(pad))
                        }
                    })
                    .collect();
                out.push_str(&format!("  {}\n", line.join("  ")));
            }
        }
        out
    }
}

/// Three significant figures, without scientific notation for the usual ranges.
pub(crate) fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.1 || magnitude == 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn spread_is_the_range_over_the_median() {
        assert_eq!(spread(&[1.0]), None);
        assert_eq!(spread(&[0.0, 0.0]), None);
        let measured = spread(&[0.405, 0.163, 0.158, 0.431, 0.414]).unwrap();
        assert!((measured - (0.431 - 0.158) / 0.405).abs() < 1e-12);
    }

    fn row(subject: &str, spread: Option<f64>) -> Row {
        Row {
            subject: subject.to_owned(),
            samples: 5,
            medians: BTreeMap::new(),
            ratio: None,
            spread,
        }
    }

    #[test]
    fn only_timed_rows_spread_past_the_line_are_noisy() {
        let group = |workload: &str, primary: &str, rows| Group {
            workload: workload.to_owned(),
            primary: primary.to_owned(),
            reference: None,
            rows,
        };
        let summary = Summary {
            groups: vec![
                group(
                    "noop",
                    "seconds",
                    vec![
                        row("quiet", Some(0.05)),
                        row("busy", Some(0.68)),
                        row("one", None),
                    ],
                ),
                group("latency", "p99_us", vec![row("tail", Some(2.0))]),
            ],
        };
        assert_eq!(summary.noisy_rows(), vec![("noop", "busy", 0.68)]);
        assert!(summary.noise_note().contains("noop/busy 68%"));
        let quiet = Summary {
            groups: vec![group("noop", "seconds", vec![row("quiet", Some(0.05))])],
        };
        assert!(quiet.noise_note().starts_with("No timed row"));
    }

    #[test]
    fn formats_values_readably() {
        assert_eq!(format_value(2_500_000.0), "2.50M");
        assert_eq!(format_value(0.123), "0.12");
        assert_eq!(format_value(0.0123), "0.0123");
        assert_eq!(format_value(42.0), "42.0");
    }
}
