//! Groups a results directory into grid points and summarises each: the
//! table of `report.md`, the learning and read-power curves, and the
//! organisation of points into lines for the figures (what varies with
//! size, what is another setting, what is a symmetry setting).
//!
//! A grid point is one combination of the parameter columns' values, not a
//! `point` index, so shards and any file order give the same points.

use std::collections::HashMap;

use super::load::{InstanceRow, Results, Setting, PARAMETERS};
use super::stats::{mean_interval, wilson, Interval};

/// Columns that describe the network's shape; the report shows them as one
/// setting, `network = 2-4-2`.
const SHAPE: &[&str] = &["topology", "n_in", "hidden", "n_out", "n_bulk", "n_wires"];

/// Columns whose values break MODEL.md's symmetry (section 1).
const SYMMETRY: &[&str] = &[
    "topology",
    "density",
    "skip",
    "random_polarity",
    "sigma_r0",
    "sigma_d2d",
];

/// What the sweep varied, as found in the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Varied {
    /// Parameter columns with more than one value, in schema order.
    pub columns: Vec<String>,
    /// The settings that name a grid point: `network` for the shape
    /// columns, then every other varied column that the earlier ones do not
    /// already determine (so `depth` and a `n_patterns = n_in` drop out).
    pub labels: Vec<String>,
}

/// One grid point and its summary.
#[derive(Clone, Debug)]
pub struct Point {
    /// Values of `Varied::columns`.
    pub key: Vec<String>,
    /// Values of `Varied::labels`.
    pub label_values: Vec<String>,
    /// Indices into `Results::instances`.
    pub rows: Vec<usize>,
    pub n_nodes: f64,
    pub n_patterns: i64,
    pub model: String,
    pub symmetric: bool,
    pub recalled: Interval,
    pub recalled_frac: Interval,
    pub learned_all: Interval,
    pub learned_all_count: usize,
    /// Over the instances that converged.
    pub converged_era: Interval,
    pub converged: usize,
    pub controllability_initial: Interval,
    pub controllability_final: Interval,
    pub cycle_space_dim: Interval,
}

impl Point {
    pub fn instances(&self) -> usize {
        self.rows.len()
    }
}

/// The grid points of a results directory.
#[derive(Clone, Debug)]
pub struct Grid {
    pub varied: Varied,
    /// In the order of their first instance (grid order for one sweep).
    pub points: Vec<Point>,
}

impl Grid {
    pub fn new(results: &Results) -> Grid {
        let rows = &results.instances;
        let settings = &results.settings;
        let varied_idx: Vec<usize> = (0..PARAMETERS.len())
            .filter(|&c| {
                settings
                    .iter()
                    .any(|s| s.values[c] != settings[0].values[c])
            })
            .collect();
        let mut index: HashMap<Vec<String>, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let values = &settings[r.setting].values;
            let key: Vec<String> = varied_idx.iter().map(|&c| values[c].clone()).collect();
            let g = *index.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[g].push(i);
        }
        let columns: Vec<String> = varied_idx
            .iter()
            .map(|&c| PARAMETERS[c].to_string())
            .collect();
        let firsts: Vec<&Setting> = members
            .iter()
            .map(|m| &settings[rows[m[0]].setting])
            .collect();
        let labels = label_columns(&firsts, &columns);
        let points = members
            .into_iter()
            .zip(&firsts)
            .map(|(m, setting)| summarise(rows, setting, m, &varied_idx, &labels))
            .collect();
        Grid {
            varied: Varied { columns, labels },
            points,
        }
    }

    /// A point's label: `network = 2-4-2, sigma_r0 = 0.3`, or `all` when
    /// nothing varied.
    pub fn label(&self, p: &Point) -> String {
        label_of(&self.varied.labels, &p.label_values)
    }

    /// Whether the network's size (node count) varies.
    pub fn varies_size(&self) -> bool {
        distinct(self.points.iter().map(|p| p.n_nodes.to_string())) > 1
    }

    /// The label settings that set a line in a plot against size: every
    /// label setting but `network` when the node count determines the
    /// shape, every one otherwise.
    pub fn line_settings_for_size(&self) -> Vec<String> {
        let shape_by_size = determines(
            &self.points,
            |p| p.n_nodes.to_string(),
            |p| self.value(p, "network"),
        );
        self.varied
            .labels
            .iter()
            .filter(|l| !(shape_by_size && l.as_str() == "network"))
            .cloned()
            .collect()
    }

    /// Whether `n_patterns` varies independently of the network, so that
    /// the capacity `C` (MODEL.md section 8) can be read off.
    pub fn varies_patterns(&self) -> bool {
        self.varied.labels.iter().any(|l| l == "n_patterns")
    }

    /// The varied label settings among MODEL.md's symmetry breakers (the
    /// shape counts when topology varies).
    pub fn symmetry_settings(&self) -> Vec<String> {
        let topology_varies = self.varied.columns.iter().any(|c| c == "topology");
        self.varied
            .labels
            .iter()
            .filter(|l| {
                SYMMETRY.contains(&l.as_str()) || (topology_varies && l.as_str() == "network")
            })
            .cloned()
            .collect()
    }

    /// The value of label setting `name` at `p` (empty if not a label).
    pub fn value(&self, p: &Point, name: &str) -> String {
        self.varied
            .labels
            .iter()
            .position(|l| l == name)
            .map(|i| p.label_values[i].clone())
            .unwrap_or_default()
    }

    /// The varied settings other than `label`: what tells the lines of a
    /// figure against `label` apart.
    pub fn labels_except(&self, label: &str) -> Vec<String> {
        self.varied
            .labels
            .iter()
            .filter(|l| l.as_str() != label)
            .cloned()
            .collect()
    }

    /// Points split into lines by the values of `settings`, in order of
    /// first appearance; each line with its label.
    pub fn lines(&self, settings: &[String]) -> Vec<(String, Vec<&Point>)> {
        let mut order: Vec<(Vec<String>, Vec<&Point>)> = Vec::new();
        for p in &self.points {
            let key: Vec<String> = settings.iter().map(|s| self.value(p, s)).collect();
            match order.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ps)) => ps.push(p),
                None => order.push((key, vec![p])),
            }
        }
        order
            .into_iter()
            .map(|(key, ps)| (label_of(settings, &key), ps))
            .collect()
    }
}

/// `a = 1, b = 2`; `all` for no settings.
pub fn label_of(names: &[String], values: &[String]) -> String {
    if names.is_empty() {
        return "all".to_string();
    }
    names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn distinct(values: impl Iterator<Item = String>) -> usize {
    let mut v: Vec<String> = values.collect();
    v.sort();
    v.dedup();
    v.len()
}

/// Whether `f` determines `g` over the points: equal `f` means equal `g`.
fn determines<F, G>(points: &[Point], f: F, g: G) -> bool
where
    F: Fn(&Point) -> String,
    G: Fn(&Point) -> String,
{
    let mut seen: HashMap<String, String> = HashMap::new();
    points
        .iter()
        .all(|p| seen.entry(f(p)).or_insert_with(|| g(p)).clone() == g(p))
}

/// `network` for the shape columns (if any varies), then each other varied
/// column unless the settings before it already determine it.
fn label_columns(firsts: &[&Setting], columns: &[String]) -> Vec<String> {
    let value = |s: &Setting, name: &str| setting_value(s, name);
    let mut labels: Vec<String> = Vec::new();
    if columns.iter().any(|c| SHAPE.contains(&c.as_str())) {
        labels.push("network".to_string());
    }
    for c in columns.iter().filter(|c| !SHAPE.contains(&c.as_str())) {
        let mut seen: HashMap<Vec<String>, String> = HashMap::new();
        let determined = firsts.iter().all(|r| {
            let key: Vec<String> = labels.iter().map(|l| value(r, l)).collect();
            let v = value(r, c);
            seen.entry(key).or_insert_with(|| v.clone()).clone() == v
        });
        if !determined {
            labels.push(c.clone());
        }
    }
    labels
}

/// The value of a label setting: the shape for `network`, else the column's.
fn setting_value(s: &Setting, name: &str) -> String {
    if name == "network" {
        return s.shape.label();
    }
    let c = PARAMETERS
        .iter()
        .position(|&p| p == name)
        .expect("a column");
    s.values[c].clone()
}

fn summarise(
    rows: &[InstanceRow],
    setting: &Setting,
    members: Vec<usize>,
    varied: &[usize],
    labels: &[String],
) -> Point {
    let first = &rows[members[0]];
    let of = |f: &dyn Fn(&InstanceRow) -> f64| -> Vec<f64> {
        members.iter().map(|&i| f(&rows[i])).collect()
    };
    let learned = members.iter().filter(|&&i| rows[i].learned_all).count();
    let present = |f: &dyn Fn(&InstanceRow) -> Option<f64>| -> Vec<f64> {
        members.iter().filter_map(|&i| f(&rows[i])).collect()
    };
    let converged: Vec<f64> = members
        .iter()
        .filter_map(|&i| rows[i].converged_era.map(|e| e as f64))
        .collect();
    Point {
        key: varied.iter().map(|&c| setting.values[c].clone()).collect(),
        label_values: labels.iter().map(|l| setting_value(setting, l)).collect(),
        n_nodes: first.n_nodes as f64,
        n_patterns: first.n_patterns,
        model: setting.model.clone(),
        symmetric: setting.symmetric,
        recalled: mean_interval(&of(&|r| r.recalled as f64)),
        recalled_frac: mean_interval(&of(&|r| r.recalled as f64 / r.n_patterns as f64)),
        learned_all: wilson(learned, members.len()),
        learned_all_count: learned,
        converged_era: mean_interval(&converged),
        converged: converged.len(),
        controllability_initial: mean_interval(&present(&|r| r.controllability_initial)),
        controllability_final: mean_interval(&present(&|r| r.controllability_final)),
        cycle_space_dim: mean_interval(&present(&|r| r.cycle_space_dim.map(|d| d as f64))),
        rows: members,
    }
}

/// A per-era curve of one grid point: the mean over instances with its 95%
/// interval, one entry per era.
pub type Curve = Vec<Interval>;

/// Fraction of patterns read correctly and mean read power per pattern
/// (watt), per era. An instance that stopped early (converged) keeps its
/// last era's values for the later eras, so every era averages over every
/// instance of the point.
pub fn era_curves(results: &Results, point: &Point) -> (Curve, Curve) {
    let traces: Vec<&super::load::Trace> = point
        .rows
        .iter()
        .filter_map(|&i| {
            let r = &results.instances[i];
            results.traces.get(&(r.point, r.replica))
        })
        .filter(|t| !t.reads.is_empty())
        .collect();
    let eras = traces.iter().map(|t| t.reads.len()).max().unwrap_or(0);
    let mut correct = Vec::with_capacity(eras);
    let mut power = Vec::with_capacity(eras);
    for e in 0..eras {
        let at = |t: &super::load::Trace| e.min(t.reads.len() - 1);
        let c: Vec<f64> = traces
            .iter()
            .map(|t| t.correct[at(t)] as f64 / t.reads[at(t)].max(1) as f64)
            .collect();
        let w: Vec<f64> = traces
            .iter()
            .map(|t| t.read_power[at(t)] / t.reads[at(t)].max(1) as f64)
            .collect();
        correct.push(mean_interval(&c));
        power.push(mean_interval(&w));
    }
    (correct, power)
}
