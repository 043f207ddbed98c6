//! Which figures a results directory gets, and what each one shows. Every
//! figure is chosen from what the sweep varied; each is named after the
//! question it answers (docs/report.md lists them).
//!
//! Not here: drawing (`report::chart`), statistics (`report::stats`).

use super::chart::{Axis, Figure, Layer, Panel, Pt, Style};
use super::load::{number, Results};
use super::stats::{mean_interval, DecayFit, Interval};
use super::summary::{era_curves, Grid, Point};

/// Fits of one line of the size figure (see `report::scaling`).
pub struct LineFits<'a> {
    pub label: String,
    pub points: Vec<&'a Point>,
    pub recalled_frac: Option<DecayFit>,
    pub learned_all: Option<DecayFit>,
}

/// Every figure that applies, with its file stem.
pub fn all(grid: &Grid, results: &Results, size_lines: &[LineFits]) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    if grid.varies_size() {
        out.push(("capacity_vs_size", capacity_vs_size(size_lines)));
    }
    if grid.varies_patterns() {
        out.push(("capacity_vs_patterns", capacity_vs_patterns(grid)));
    }
    out.push(("learning_curves", learning_curves(grid, results)));
    if let Some(f) = read_power(grid, results) {
        out.push(("read_power", f));
    }
    if let Some(f) = controllability(grid, results) {
        out.push(("controllability", f));
    }
    if let Some(f) = contrast(results) {
        out.push(("contrast", f));
    }
    out
}

fn pt(x: f64, i: Interval) -> Pt {
    Pt {
        x,
        y: i.estimate,
        lo: i.lo,
        hi: i.hi,
    }
}

/// Pixels between the error bars of neighbouring series at one x.
fn dodge(i: usize, n: usize) -> f64 {
    (i as f64 - (n as f64 - 1.0) / 2.0) * 4.0
}

fn distinct_sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

fn probability_axis(label: &str) -> Axis {
    Axis::new(label).range(0.0, 1.0)
}

/// The Pr[learned_all] panel, with Wilson intervals, over axis `x`.
fn learned_all_panel(x: Axis, layers: Vec<Layer>) -> Panel {
    Panel {
        title: "Pr[learned_all] (Wilson 95% CI)".into(),
        x,
        y: probability_axis("probability of learning every pattern"),
        layers,
    }
}

/// Capacity against size: mean recalled/P and Pr[learned_all] with 95%
/// intervals, one line per other varied setting, with the exponential fits.
fn capacity_vs_size(lines: &[LineFits]) -> Figure {
    let sizes = distinct_sorted(
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.n_nodes))
            .collect(),
    );
    let n = lines.len();
    let mut frac = Vec::new();
    let mut learned = Vec::new();
    let mut any_fit = false;
    for (i, line) in lines.iter().enumerate() {
        let style = Style::nth(i);
        let mut pts: Vec<&&Point> = line.points.iter().collect();
        pts.sort_by(|a, b| a.n_nodes.total_cmp(&b.n_nodes));
        frac.push(Layer::Bars {
            style,
            points: pts.iter().map(|p| pt(p.n_nodes, p.recalled_frac)).collect(),
            dodge: dodge(i, n),
        });
        learned.push(Layer::Bars {
            style,
            points: pts.iter().map(|p| pt(p.n_nodes, p.learned_all)).collect(),
            dodge: dodge(i, n),
        });
        for (fit, layers) in [
            (&line.recalled_frac, &mut frac),
            (&line.learned_all, &mut learned),
        ] {
            if let Some(fit) = fit {
                any_fit = true;
                layers.push(Layer::Curve {
                    style: style.dashed(),
                    points: curve(&sizes, |x| fit.curve.at(x)),
                });
            }
        }
    }
    let x = || Axis::new("network size (nodes)").ticks(sizes.clone());
    let mut legend: Vec<(String, Style)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.label.clone(), Style::nth(i)))
        .collect();
    if any_fit {
        legend.push(("fit a·exp(−nodes/ξ)".to_string(), Style::GRAY_DASHED));
    }
    Figure {
        title: "Capacity against network size".into(),
        panels: vec![
            Panel {
                title: "mean recalled / P (95% CI)".into(),
                x: x(),
                y: probability_axis("fraction of patterns recalled"),
                layers: frac,
            },
            learned_all_panel(x(), learned),
        ],
        legend_title: "line".into(),
        legend,
    }
}

/// 60 points of `f` across the range of `xs`.
fn curve(xs: &[f64], f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    (0..=60)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / 60.0;
            (x, f(x))
        })
        .collect()
}

/// Recall and Pr[learned_all] against the number of patterns, one line per
/// other setting, with the one-half line that defines the capacity C.
fn capacity_vs_patterns(grid: &Grid) -> Figure {
    let others = grid.labels_except("n_patterns");
    let lines = grid.lines(&others);
    let n = lines.len();
    let ps = distinct_sorted(grid.points.iter().map(|p| p.n_patterns as f64).collect());
    let mut recalled = Vec::new();
    let mut learned = Vec::new();
    for (i, (_, points)) in lines.iter().enumerate() {
        let mut pts = points.clone();
        pts.sort_by_key(|p| p.n_patterns);
        let bars = |y: fn(&&Point) -> Interval| Layer::Bars {
            style: Style::nth(i),
            points: pts.iter().map(|p| pt(p.n_patterns as f64, y(p))).collect(),
            dodge: dodge(i, n),
        };
        recalled.push(bars(|p| p.recalled));
        learned.push(bars(|p| p.learned_all));
    }
    learned.push(Layer::Rule {
        y: 0.5,
        label: "C: last P above this line".into(),
    });
    let x = || Axis::new("patterns P").ticks(ps.clone());
    Figure {
        title: "Capacity against the number of patterns".into(),
        panels: vec![
            Panel {
                title: "mean recalled (95% CI)".into(),
                x: x(),
                y: Axis::new("patterns recalled").range(0.0, ps[ps.len() - 1] * 1.05),
                layers: recalled,
            },
            learned_all_panel(x(), learned),
        ],
        legend_title: "line".into(),
        legend: legend(lines.iter().map(|(l, _)| l.clone())),
    }
}

fn legend(labels: impl Iterator<Item = String>) -> Vec<(String, Style)> {
    labels
        .enumerate()
        .map(|(i, l)| (l, Style::nth(i)))
        .collect()
}

/// Fraction of patterns read correctly at each era, one band per grid
/// point.
fn learning_curves(grid: &Grid, results: &Results) -> Figure {
    let layers = grid
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| Layer::Band {
            style: Style::nth(i),
            points: era_points(&era_curves(results, p).0, 1.0),
        })
        .collect();
    Figure {
        title: "Learning curves".into(),
        panels: vec![Panel {
            title: "fraction correct per era (95% CI)".into(),
            x: Axis::new("era"),
            y: probability_axis("fraction of patterns read correctly"),
            layers,
        }],
        legend_title: "grid point".into(),
        legend: legend(grid.points.iter().map(|p| grid.label(p))),
    }
}

fn era_points(curve: &[Interval], scale: f64) -> Vec<Pt> {
    curve
        .iter()
        .enumerate()
        .map(|(e, i)| Pt {
            x: e as f64,
            y: i.estimate * scale,
            lo: i.lo * scale,
            hi: i.hi * scale,
        })
        .collect()
}

/// Mean read power per pattern at each era (circuit points only: the
/// abstract model dissipates nothing).
fn read_power(grid: &Grid, results: &Results) -> Option<Figure> {
    let circuit: Vec<(usize, &Point)> = grid
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.model == "circuit")
        .collect();
    let curves: Vec<Vec<Interval>> = circuit
        .iter()
        .map(|(_, p)| era_curves(results, p).1)
        .collect();
    let top = curves
        .iter()
        .flatten()
        .map(|i| i.estimate)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    if top <= 0.0 {
        return None;
    }
    let (scale, unit) = si_unit(top, "W");
    let layers = circuit
        .iter()
        .zip(&curves)
        .map(|((i, _), c)| Layer::Band {
            style: Style::nth(*i),
            points: era_points(c, scale),
        })
        .collect();
    Some(Figure {
        title: "Read power during training".into(),
        panels: vec![Panel {
            title: "mean read power per pattern (95% CI)".into(),
            x: Axis::new("era"),
            y: Axis::new(format!("read power per pattern ({unit})")),
            layers,
        }],
        legend_title: "grid point".into(),
        legend: circuit
            .iter()
            .map(|(i, p)| (grid.label(p), Style::nth(*i)))
            .collect(),
    })
}

/// The factor and unit that put `top` between 1 and 1000: `(1e3, "mW")`.
fn si_unit(top: f64, unit: &str) -> (f64, String) {
    const PREFIXES: [(f64, &str); 5] = [(1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n"), (1e12, "p")];
    let (f, p) = PREFIXES
        .iter()
        .find(|(f, _)| top * f >= 1.0)
        .copied()
        .unwrap_or(PREFIXES[PREFIXES.len() - 1]);
    (f, format!("{p}{unit}"))
}

/// Controllability before and after training against size, one line per
/// symmetry setting; or, when the size does not vary, against the symmetry
/// setting. Other varied settings are pooled.
fn controllability(grid: &Grid, results: &Results) -> Option<Figure> {
    type Measure = fn(&super::load::InstanceRow) -> Option<f64>;
    let mut settings = grid.symmetry_settings();
    // Circuit and abstract side by side: the abstract model leaves the
    // devices as built, so its final controllability is its initial one.
    if grid.varied.labels.iter().any(|l| l == "model") {
        settings.push("model".to_string());
    }
    let by_size = grid.varies_size();
    // `[measures] controllability = false` leaves nothing to draw.
    let measured = results
        .instances
        .iter()
        .any(|r| r.controllability_initial.is_some());
    if !measured || (!by_size && settings.is_empty()) {
        return None;
    }
    let lines = grid.lines(&settings);
    let labels: Vec<String> = lines
        .iter()
        .map(|(label, points)| symmetry_label(label, points))
        .collect();
    let pooled = |points: &[&Point], f: Measure| -> Interval {
        let v: Vec<f64> = points
            .iter()
            .flat_map(|p| p.rows.iter().filter_map(|&i| f(&results.instances[i])))
            .collect();
        mean_interval(&v)
    };
    let initial = |r: &super::load::InstanceRow| r.controllability_initial;
    let last = |r: &super::load::InstanceRow| r.controllability_final;
    let y = || probability_axis("rank / alive edges");
    if by_size {
        let sizes = distinct_sorted(grid.points.iter().map(|p| p.n_nodes).collect());
        let n = lines.len();
        let panel = |title: &str, f: Measure| Panel {
            title: title.into(),
            x: Axis::new("network size (nodes)").ticks(sizes.clone()),
            y: y(),
            layers: lines
                .iter()
                .enumerate()
                .map(|(i, (_, points))| Layer::Bars {
                    style: Style::nth(i),
                    points: sizes
                        .iter()
                        .filter_map(|&s| {
                            let at: Vec<&Point> =
                                points.iter().copied().filter(|p| p.n_nodes == s).collect();
                            (!at.is_empty()).then(|| pt(s, pooled(&at, f)))
                        })
                        .collect(),
                    dodge: dodge(i, n),
                })
                .collect(),
        };
        Some(Figure {
            title: "Controllability against size and symmetry".into(),
            panels: vec![
                panel("before training (95% CI)", initial),
                panel("after training (95% CI)", last),
            ],
            legend_title: "symmetry setting".into(),
            legend: legend(labels.into_iter()),
        })
    } else {
        let series = |f: Measure, i: usize| Layer::Bars {
            style: Style::nth(i),
            points: lines
                .iter()
                .enumerate()
                .map(|(x, (_, points))| pt(x as f64, pooled(points, f)))
                .collect(),
            dodge: dodge(i, 2) * 2.0,
        };
        let values: Vec<String> = lines
            .iter()
            .map(|(_, points)| {
                let vals: Vec<String> = settings.iter().map(|s| grid.value(points[0], s)).collect();
                vals.join(", ")
            })
            .collect();
        Some(Figure {
            title: "Controllability against symmetry".into(),
            panels: vec![Panel {
                title: "before and after training (95% CI)".into(),
                x: Axis::new(settings.join(", ")).categories(values),
                y: y(),
                layers: vec![series(initial, 0), series(last, 1)],
            }],
            legend_title: "state".into(),
            legend: legend(
                ["before training", "after training"]
                    .map(String::from)
                    .into_iter(),
            ),
        })
    }
}

/// A symmetry line's label, saying whether its networks are symmetric.
fn symmetry_label(label: &str, points: &[&Point]) -> String {
    let kind = if points.iter().all(|p| p.symmetric) {
        "symmetric"
    } else if points.iter().all(|p| !p.symmetric) {
        "symmetry broken"
    } else {
        "mixed"
    };
    if label == "all" {
        kind.to_string()
    } else {
        format!("{label} ({kind})")
    }
}

/// The distribution of final contrast (log-spaced histogram), one outline
/// per `p_prune` value, every other setting pooled. Circuit rows only: the
/// abstract model has no currents.
fn contrast(results: &Results) -> Option<Figure> {
    let mut groups: Vec<(f64, Vec<f64>)> = Vec::new();
    for r in &results.instances {
        let Some(c) = r.contrast.filter(|c| c.is_finite() && *c > 0.0) else {
            continue;
        };
        match groups.iter_mut().find(|(p, _)| *p == r.p_prune) {
            Some((_, v)) => v.push(c.log10()),
            None => groups.push((r.p_prune, vec![c.log10()])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    groups.sort_by(|a, b| a.0.total_cmp(&b.0));
    let all = groups.iter().flat_map(|(_, v)| v.iter().copied());
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    const BINS: usize = 30;
    let width = (hi - lo) / BINS as f64;
    let edges: Vec<f64> = (0..=BINS)
        .map(|i| 10f64.powf(lo + width * i as f64))
        .collect();
    let layers: Vec<Layer> = groups
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let mut counts = vec![0usize; BINS];
            for &x in v {
                counts[(((x - lo) / width) as usize).min(BINS - 1)] += 1;
            }
            Layer::Steps {
                style: Style::nth(i),
                edges: edges.clone(),
                heights: counts.iter().map(|&c| c as f64 / v.len() as f64).collect(),
            }
        })
        .collect();
    let tallest = layers
        .iter()
        .flat_map(|l| match l {
            Layer::Steps { heights, .. } => heights.clone(),
            _ => Vec::new(),
        })
        .fold(0.0, f64::max);
    Some(Figure {
        title: "Final contrast with and without pruning".into(),
        panels: vec![Panel {
            title: "distribution over instances".into(),
            x: Axis::new("final contrast (target current / largest rival current)").log(),
            y: Axis::new("fraction of instances per bin").range(0.0, tallest * 1.08),
            layers,
        }],
        legend_title: "pruning".into(),
        legend: legend(groups.iter().map(|(p, v)| {
            let what = if *p == 0.0 { " (off)" } else { "" };
            format!("p_prune = {}{what}, {} instances", number(*p), v.len())
        })),
    })
}
