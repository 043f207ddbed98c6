//! `memsweep report DIR`: reads a results directory (any number of Parquet
//! files, from one run or many shards) and writes `DIR/report/`: a summary
//! table per grid point, scaling fits and capacities, figures as SVG and
//! PNG, `report.md` tying them together and `summary.csv` with every
//! number at full precision.
//!
//! `load` reads the tables, `summary` groups them into grid points,
//! `stats` holds the estimators and fits, `figures` chooses and builds the
//! figures, `chart` draws them. Not here: running sweeps (`run`).

pub mod chart;
pub mod figures;
pub mod load;
pub mod stats;
pub mod summary;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use figures::LineFits;
use load::Results;
use stats::{capacity_with_interval, decay_fit, Capacity, DecayFit, Interval, RESAMPLES};
use summary::{Grid, Point};

/// What `report` wrote.
pub struct Report {
    pub out_dir: PathBuf,
    /// The figure stems written, each as `.svg` and `.png`.
    pub figures: Vec<String>,
    /// The summary table, fits and capacities as plain text for a terminal.
    pub text: String,
}

/// A capacity per line of a sweep over `n_patterns`.
pub struct LineCapacity {
    pub label: String,
    pub capacity: Capacity,
}

/// Read `dir`, write `dir/report/`.
pub fn report(dir: &Path) -> Result<Report, String> {
    let results = load::load(dir)?;
    let grid = Grid::new(&results);
    let fits = size_fits(&grid, &results);
    let capacities = capacities(&grid, &results);
    let figures = figures::all(&grid, &results, &fits);

    let out_dir = dir.join("report");
    let io = |e: std::io::Error| format!("{}: {e}", out_dir.display());
    fs::create_dir_all(&out_dir).map_err(io)?;
    let raster = chart::Rasteriser::new();
    let mut names = Vec::new();
    for (stem, figure) in &figures {
        let svg = figure.to_svg();
        let png = raster.png(&svg).map_err(|e| format!("{stem}: {e}"))?;
        fs::write(out_dir.join(format!("{stem}.svg")), &svg).map_err(io)?;
        fs::write(out_dir.join(format!("{stem}.png")), &png).map_err(io)?;
        names.push(stem.to_string());
    }
    fs::write(out_dir.join("summary.csv"), summary_csv(&grid)).map_err(io)?;
    let name = sweep_name(dir);
    fs::write(
        out_dir.join("report.md"),
        markdown(&name, dir, &results, &grid, &fits, &capacities, &names),
    )
    .map_err(io)?;
    Ok(Report {
        out_dir,
        figures: names,
        text: terminal(&grid, &fits, &capacities),
    })
}

/// The sweep's name from `DIR/sweep.toml`, else the directory's name.
fn sweep_name(dir: &Path) -> String {
    fs::read_to_string(dir.join("sweep.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(String::from))
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// Per line of the size figure, exponential fits of mean recalled/P and of
/// Pr[learned_all] against the node count, with bootstrap intervals.
fn size_fits<'a>(grid: &'a Grid, results: &Results) -> Vec<LineFits<'a>> {
    if !grid.varies_size() {
        return Vec::new();
    }
    grid.lines(&grid.line_settings_for_size())
        .into_iter()
        .enumerate()
        .map(|(i, (label, points))| {
            let series = |f: &dyn Fn(&load::InstanceRow) -> f64| -> Vec<(f64, Vec<f64>)> {
                points
                    .iter()
                    .map(|p| {
                        let v = p.rows.iter().map(|&r| f(&results.instances[r])).collect();
                        (p.n_nodes, v)
                    })
                    .collect()
            };
            let seed = 0x5ca1_e000 + i as u64;
            LineFits {
                recalled_frac: decay_fit(
                    &series(&|r| r.recalled as f64 / r.n_patterns as f64),
                    RESAMPLES,
                    seed,
                ),
                learned_all: decay_fit(
                    &series(&|r| r.learned_all as u8 as f64),
                    RESAMPLES,
                    seed + 1000,
                ),
                label,
                points,
            }
        })
        .collect()
}

/// Per line of other settings, `C = max P with Pr[learned_all] >= 0.5`.
fn capacities(grid: &Grid, results: &Results) -> Vec<LineCapacity> {
    if !grid.varies_patterns() {
        return Vec::new();
    }
    let others = grid.labels_except("n_patterns");
    grid.lines(&others)
        .into_iter()
        .enumerate()
        .map(|(i, (label, points))| {
            let per_p: Vec<(i64, Vec<bool>)> = points
                .iter()
                .map(|p| {
                    let l = p
                        .rows
                        .iter()
                        .map(|&r| results.instances[r].learned_all)
                        .collect();
                    (p.n_patterns, l)
                })
                .collect();
            LineCapacity {
                label,
                capacity: capacity_with_interval(&per_p, RESAMPLES, 0xc0ffee + i as u64),
            }
        })
        .collect()
}

/// `0.512 [0.47, 0.55]`, or the estimate alone without an interval.
fn with_interval(i: Interval, digits: usize) -> String {
    if !i.estimate.is_finite() {
        return "–".to_string();
    }
    if i.lo.is_finite() && i.hi.is_finite() {
        format!(
            "{:.d$} [{:.d$}, {:.d$}]",
            i.estimate,
            i.lo,
            i.hi,
            d = digits
        )
    } else {
        format!("{:.d$}", i.estimate, d = digits)
    }
}

fn decay_text(fit: &Option<DecayFit>) -> String {
    let Some(fit) = fit else {
        return "no fit (one size, or all zero)".to_string();
    };
    let show = |x: f64| {
        if x.is_finite() {
            format!("{x:.1}")
        } else {
            "∞".to_string()
        }
    };
    let (lo, hi) = fit.length_interval();
    if fit.curve.rate <= 0.0 {
        return format!("no decay (rate {:.4}/node)", fit.curve.rate);
    }
    format!(
        "ξ = {} nodes [{}, {}]",
        show(fit.length()),
        show(lo),
        show(hi)
    )
}

fn capacity_text(c: &Capacity, smallest: i64) -> String {
    let show = |v: Option<i64>| v.map_or(format!("<{smallest}"), |c| c.to_string());
    format!("C = {} [{}, {}]", show(c.c), show(c.lo), show(c.hi))
}

/// The summary table's header and rows, one cell per column.
fn table_rows(grid: &Grid) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = grid.varied.labels.clone();
    header.extend(
        [
            "instances",
            "recalled [95% CI]",
            "recalled/P",
            "Pr[learned_all] [Wilson 95%]",
            "converged era (converged)",
            "controllability initial → final",
            "cycle-space dim",
        ]
        .map(String::from),
    );
    let rows = grid
        .points
        .iter()
        .map(|p: &Point| {
            let mut row = p.label_values.clone();
            row.push(p.instances().to_string());
            row.push(with_interval(p.recalled, 2));
            row.push(format!("{:.3}", p.recalled_frac.estimate));
            row.push(with_interval(p.learned_all, 3));
            row.push(format!(
                "{} ({}/{})",
                with_interval(p.converged_era, 2),
                p.converged,
                p.instances()
            ));
            // NaN: `[measures]` switched the measure off.
            let shown = |x: f64, digits: usize| match x.is_nan() {
                true => "-".to_string(),
                false => format!("{x:.digits$}"),
            };
            row.push(format!(
                "{} → {}",
                shown(p.controllability_initial.estimate, 3),
                shown(p.controllability_final.estimate, 3)
            ));
            row.push(shown(p.cycle_space_dim.estimate, 1));
            row
        })
        .collect();
    (header, rows)
}

/// One line of text per size fit and per capacity.
fn fit_lines(fits: &[LineFits], caps: &[LineCapacity], grid: &Grid) -> Vec<String> {
    let mut out = Vec::new();
    for f in fits {
        out.push(format!(
            "{}: mean recalled/P {}; Pr[learned_all] {}",
            f.label,
            decay_text(&f.recalled_frac),
            decay_text(&f.learned_all)
        ));
    }
    let smallest = grid.points.iter().map(|p| p.n_patterns).min().unwrap_or(0);
    for c in caps {
        out.push(format!(
            "{}: {}",
            c.label,
            capacity_text(&c.capacity, smallest)
        ));
    }
    out
}

/// The summary table, fits and capacities for a terminal.
fn terminal(grid: &Grid, fits: &[LineFits], caps: &[LineCapacity]) -> String {
    let (header, rows) = table_rows(grid);
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(&rows).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in all {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if !fits.is_empty() {
        out.push_str(
            "\nexponential decay with network size, a·exp(−nodes/ξ), 95% bootstrap intervals:\n",
        );
        for l in &fit_lines(fits, &[], grid) {
            let _ = writeln!(out, "  {l}");
        }
    }
    if !caps.is_empty() {
        out.push_str(
            "\ncapacity C = max P with Pr[learned_all] >= 0.5, 95% bootstrap intervals:\n",
        );
        for l in &fit_lines(&[], caps, grid) {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

/// `summary.csv`: the varied columns, the point's label and every
/// statistic at full precision (empty where undefined).
fn summary_csv(grid: &Grid) -> String {
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x}")
        } else {
            String::new()
        }
    };
    // `model` and `n_patterns` come once: as varied columns or after them.
    let fixed = |c: &str| !grid.varied.columns.iter().any(|v| v == c);
    let mut header: Vec<String> = grid.varied.columns.clone();
    header.push("label".into());
    header.extend(
        ["model", "n_patterns"]
            .into_iter()
            .filter(|c| fixed(c))
            .map(String::from),
    );
    header.extend(
        [
            "n_nodes",
            "instances",
            "recalled_mean",
            "recalled_lo",
            "recalled_hi",
            "recalled_frac_mean",
            "learned_all_p",
            "learned_all_lo",
            "learned_all_hi",
            "converged",
            "converged_era_mean",
            "controllability_initial_mean",
            "controllability_final_mean",
            "cycle_space_dim_mean",
        ]
        .map(String::from),
    );
    let mut out = csv_row(&header);
    for p in &grid.points {
        let mut row = p.key.clone();
        row.push(grid.label(p));
        if fixed("model") {
            row.push(p.model.clone());
        }
        if fixed("n_patterns") {
            row.push(p.n_patterns.to_string());
        }
        row.extend([
            num(p.n_nodes),
            p.instances().to_string(),
            num(p.recalled.estimate),
            num(p.recalled.lo),
            num(p.recalled.hi),
            num(p.recalled_frac.estimate),
            num(p.learned_all.estimate),
            num(p.learned_all.lo),
            num(p.learned_all.hi),
            p.converged.to_string(),
            num(p.converged_era.estimate),
            num(p.controllability_initial.estimate),
            num(p.controllability_final.estimate),
            num(p.cycle_space_dim.estimate),
        ]);
        out.push_str(&csv_row(&row));
    }
    out
}

fn csv_row(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

/// What each figure answers, for `report.md`.
fn figure_caption(stem: &str) -> (&'static str, &'static str) {
    match stem {
        "capacity_vs_size" => (
            "Capacity against network size",
            "How fast does learning fail as the network grows, and does a setting (symmetry breaking, pruning, the abstract rule) slow the fall? Points are means with 95% intervals; dashed curves are the exponential fits below.",
        ),
        "capacity_vs_patterns" => (
            "Capacity against the number of patterns",
            "How many patterns can one network learn? The capacity C is the largest P whose Pr[learned_all] stays at or above one half.",
        ),
        "learning_curves" => (
            "Learning curves",
            "How quickly does training fix mistakes? Fraction of patterns read correctly in each era; an instance that stopped early counts with its last era.",
        ),
        "read_power" => (
            "Read power during training",
            "Does the network read with less power as it learns (the seed paper reports it does)? Mean power dissipated by one read, per era; circuit points only.",
        ),
        "controllability" => (
            "Controllability",
            "Do the punish and normalize pulses reach every device independently? Rank of the control matrix over the alive edge count, before and after training, with edge voltages solved without the gmin leak: it follows the wiring (terminals joined, alive edges), not a spread of resistances; other settings pooled.",
        ),
        "contrast" => (
            "Final contrast",
            "Does pruning sharpen the winner's margin? Distribution of the final contrast (target current over the largest rival current, geometric mean over patterns); circuit instances, other settings pooled.",
        ),
        _ => ("", ""),
    }
}

fn markdown(
    name: &str,
    dir: &Path,
    results: &Results,
    grid: &Grid,
    fits: &[LineFits],
    caps: &[LineCapacity],
    figures: &[String],
) -> String {
    let mut md = String::new();
    let mut backends = results.backends.clone();
    backends.sort();
    let _ = writeln!(md, "# memsweep report: {name}\n");
    let _ = writeln!(
        md,
        "`{}`: {} instances in {} grid points, read from {} Parquet files (backend: {}).",
        dir.display(),
        results.instances.len(),
        grid.points.len(),
        results.files,
        backends.join(", ")
    );
    let varied = if grid.varied.columns.is_empty() {
        "nothing".to_string()
    } else {
        grid.varied.columns.join(", ")
    };
    let _ = writeln!(
        md,
        "Varied columns: {varied}. Intervals are 95%: Student t for means, Wilson for Pr[learned_all], bootstrap ({RESAMPLES} resamples of the instances within each point) for fits and capacities.\n"
    );
    let _ = writeln!(md, "## Summary per grid point\n");
    let (header, rows) = table_rows(grid);
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", " --- |".repeat(header.len()));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nMean converged era is over the instances that converged (0-based era). Every number at full precision is in `summary.csv`.\n"
    );
    if !fits.is_empty() {
        let _ = writeln!(md, "## Scaling with size\n");
        let _ = writeln!(
            md,
            "Each line's mean recalled/P and Pr[learned_all] fitted to a·exp(−nodes/ξ) by least squares (points weighted by their instance counts); ξ is the decay length in nodes.\n"
        );
        for l in fit_lines(fits, &[], grid) {
            let _ = writeln!(md, "- {l}");
        }
        md.push('\n');
    }
    if !caps.is_empty() {
        let _ = writeln!(md, "## Capacity\n");
        let _ = writeln!(
            md,
            "C = max P with Pr[learned_all] >= 0.5 (MODEL.md section 8), per line of the other settings.\n"
        );
        for l in fit_lines(&[], caps, grid) {
            let _ = writeln!(md, "- {l}");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Figures\n");
    for stem in figures {
        let (title, question) = figure_caption(stem);
        let _ = writeln!(
            md,
            "### {title}\n\n{question}\n\n![{title}]({stem}.svg)\n\n[PNG]({stem}.png)\n"
        );
    }
    md
}
