//! Reads a sweep file into a `Spec`: the base `Params`, the axes that vary
//! them, and the sweep's name, seed and replica count.
//!
//! Every rejection happens here, before any work: a file too large or not a
//! regular file, TOML syntax, unknown keys, wrong types (`set_field`), a
//! grid or instance count over its limit (checked by multiplying the axis
//! lengths), out-of-range values and memory per instance (`validate`, run
//! on every grid point). Each one becomes a single `SpecError` naming the file, the
//! field and the offending value. This module does not run anything, derive
//! seeds or describe the work; see `sweep::plan`.
//!
//! Axes, and the keys within one `[[axes]]` table, keep their order in the
//! file (toml's `preserve_order`), which is the column order `plan` and the
//! summary print.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Value;

use super::fields::{self, as_str, as_u64, as_usize, number, FIELDS};
use super::limits::{self, MAX_INSTANCES, MAX_POINTS};
use crate::params::{Params, Topology};
use crate::wiring::{FileGraph, Format};

/// A rejected sweep file. Displays as one line: `{file}: {field}: {reason}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    /// The dotted field (`network.n_in`), the axis field
    /// (`axes[1]."device.sigma_r0"`), or `toml` for a syntax error.
    pub field: String,
    /// What is wrong, including the offending value.
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.field, self.reason)
    }
}

impl std::error::Error for SpecError {}

/// Fields varied together: `values[key][position]`, every list the same
/// length.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub keys: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

impl Axis {
    /// The number of positions along this axis.
    pub fn len(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A validated sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The file label used in errors (the path as given).
    pub file: String,
    /// The sweep as parsed, written back as TOML without comments or
    /// layout (`name`, `seed` and `replicas` always given): what results
    /// record in `DIR/sweep.toml` and in every Parquet file's metadata.
    pub source: String,
    /// Default output directory: `results/<name>`.
    pub name: String,
    pub seed: u64,
    /// Instances per grid point.
    pub replicas: usize,
    /// The parameters every grid point starts from.
    pub base: Params,
    /// The grid is the product of these; the first axis varies slowest.
    pub axes: Vec<Axis>,
    /// The graph files of `topology = "graph"` points, each read once.
    pub graphs: Vec<Arc<FileGraph>>,
    /// Every graph file and its content hash (`[graph_files]` of the
    /// recorded sweep): those of `graphs`, or as recorded where they were
    /// not read (`from_results`).
    pub graph_files: Vec<(String, String)>,
    /// The key of each of `graphs`.
    graph_keys: Vec<GraphKey>,
}

/// A graph as points name it: `(graph, graph_nodes)`, resolved.
type GraphKey = (String, Option<String>);

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct GridPoint {
    /// Row-major position in the grid, from 0.
    pub index: usize,
    pub params: Params,
    /// Each varied field and its value here, e.g. `("network.n_in", "4")`.
    pub varied: Vec<(String, String)>,
}

/// A failure before it is tied to a file: (field, reason).
pub type Fault = (String, String);

const SECTIONS: &[&str] = &[
    "network", "device", "circuit", "training", "pruning", "measures",
];
const TOP_LEVEL: &[&str] = &[
    "name",
    "seed",
    "replicas",
    "network",
    "device",
    "circuit",
    "training",
    "pruning",
    "measures",
    "axes",
    "graph_files",
];

impl Spec {
    /// Reads and validates a sweep file; errors are labelled with `path` as
    /// given.
    pub fn from_file(path: &Path) -> Result<Spec, SpecError> {
        Spec::read(path, limits::MAX_FILE_BYTES, true)
    }

    /// The sweep a results directory records in `dir/sweep.toml`, for
    /// `status` and `report`: its graph files are not read (they may have
    /// moved or changed since; the rows are what the directory holds), so
    /// graph points carry no wiring and their files' hashes are the
    /// recorded ones.
    pub fn from_results(dir: &Path) -> Result<Spec, SpecError> {
        Spec::read(&dir.join("sweep.toml"), limits::MAX_RECORDED_BYTES, false)
    }

    fn read(path: &Path, max_bytes: u64, read_graphs: bool) -> Result<Spec, SpecError> {
        let file = path.display().to_string();
        let text = limits::read_small_file(path, max_bytes).map_err(|reason| SpecError {
            file: file.clone(),
            field: "file".into(),
            reason,
        })?;
        Spec::parse_with(&text, &file, read_graphs)
    }

    /// Parses and validates sweep-file text; `file` labels errors and gives
    /// the default name (its stem). Reads the graph files it names.
    pub fn parse(text: &str, file: &str) -> Result<Spec, SpecError> {
        Spec::parse_with(text, file, true)
    }

    fn parse_with(text: &str, file: &str, read_graphs: bool) -> Result<Spec, SpecError> {
        let fail = |(field, reason): Fault| SpecError {
            file: file.to_string(),
            field,
            reason,
        };
        let mut doc: toml::Table = text
            .parse()
            .map_err(|e| fail(("toml".into(), syntax_reason(text, &e))))?;
        resolve_graph_paths(&mut doc, file);
        let mut recorded: Vec<(String, String)> = Vec::new();

        let mut spec = Spec {
            file: file.to_string(),
            source: text.to_string(),
            name: default_name(file),
            seed: 0,
            replicas: 100,
            base: Params::default(),
            axes: Vec::new(),
            graphs: Vec::new(),
            graph_files: Vec::new(),
            graph_keys: Vec::new(),
        };
        for (key, value) in &doc {
            let at = |reason: String| fail((key.clone(), reason));
            match key.as_str() {
                "name" => spec.name = as_str(value).map_err(at)?.to_string(),
                "seed" => spec.seed = as_u64(value).map_err(at)?,
                "replicas" => spec.replicas = as_usize(value).map_err(at)?,
                "axes" => spec.axes = parse_axes(value).map_err(fail)?,
                "graph_files" => recorded = parse_graph_files(value).map_err(fail)?,
                section if SECTIONS.contains(&section) => {
                    let table = value
                        .as_table()
                        .ok_or_else(|| at(format!("expected a [{section}] table, got {value}")))?;
                    for (field, v) in table {
                        let dotted = format!("{section}.{field}");
                        set_field(&mut spec.base, &dotted, v)
                            .map_err(|reason| fail((dotted, reason)))?;
                    }
                }
                other => {
                    return Err(at(format!(
                        "unknown top-level key `{other}` (known: {})",
                        TOP_LEVEL.join(", ")
                    )))
                }
            }
        }

        check_name(&spec.name).map_err(|r| fail(("name".into(), r)))?;
        if spec.replicas < 1 {
            return Err(fail(("replicas".into(), "must be >= 1, got 0".into())));
        }
        check_counts(&spec).map_err(fail)?;
        if read_graphs {
            (spec.graph_keys, spec.graphs) = spec.read_graphs(&recorded)?.into_iter().unzip();
            spec.graph_files = spec
                .graphs
                .iter()
                .flat_map(|g| {
                    [
                        (g.edges_file.clone(), g.edges_hash.clone()),
                        (g.nodes_file.clone(), g.nodes_hash.clone()),
                    ]
                })
                .collect();
        } else {
            spec.graph_files = recorded;
        }
        spec.each_point(|index, params| {
            validate(params).map_err(|(field, reason)| {
                let point = spec
                    .point(index)
                    .expect("set_field accepted it a moment ago");
                spec.locate(&point, field, reason)
            })
        })
        .map_err(fail)?;
        spec.source = normalized(&doc, &spec);
        Ok(spec)
    }

    /// Calls `f` with every grid point's index and parameters, in
    /// row-major order, changing only the fields of the axes that moved
    /// since the last point (validation of a large grid costs a
    /// `validate` per point and no more). Stops at the first `Err`.
    pub fn each_point(
        &self,
        mut f: impl FnMut(usize, &Params) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let mut params = self.base.clone();
        let mut position = vec![0; self.axes.len()];
        for a in 0..self.axes.len() {
            self.apply(&mut params, a, 0)?;
        }
        let mut index = 0;
        loop {
            self.attach(&mut params);
            f(index, &params)?;
            index += 1;
            let mut a = self.axes.len();
            loop {
                if a == 0 {
                    return Ok(());
                }
                a -= 1;
                position[a] += 1;
                if position[a] < self.axes[a].len() {
                    self.apply(&mut params, a, position[a])?;
                    break;
                }
                position[a] = 0;
                self.apply(&mut params, a, 0)?;
            }
        }
    }

    /// Sets the fields of axis `a` to their values at `position`.
    fn apply(&self, params: &mut Params, a: usize, position: usize) -> Result<(), Fault> {
        let axis = &self.axes[a];
        for (key, values) in axis.keys.iter().zip(&axis.values) {
            set_field(params, key, &values[position])
                .map_err(|r| (axis_label(a, key), format!("value {position}: {r}")))?;
        }
        Ok(())
    }

    /// The parameters of grid point `index`.
    ///
    /// Cannot fail for a `Spec` from `parse`; panics if the public fields
    /// were since changed into an invalid grid.
    pub fn params_at(&self, index: usize) -> Params {
        self.point(index)
            .unwrap_or_else(|(field, reason)| panic!("{field}: {reason}"))
            .params
    }

    /// Every grid point, in row-major order (first axis slowest): at most
    /// `limits::MAX_POINTS`.
    ///
    /// Cannot fail for a `Spec` from `parse`, which built and validated every
    /// point; panics if the public fields were since changed into an
    /// invalid grid.
    pub fn points(&self) -> Vec<GridPoint> {
        (0..self.n_points())
            .map(|i| {
                self.point(i)
                    .unwrap_or_else(|(field, reason)| panic!("{field}: {reason}"))
            })
            .collect()
    }

    /// Gives a graph point the graph its files hold (read by `parse`),
    /// and every other point none.
    fn attach(&self, params: &mut Params) {
        let n = &mut params.network;
        n.wiring = match n.topology {
            Topology::Graph => self
                .graph_keys
                .iter()
                .position(|(edges, nodes)| {
                    Some(edges) == n.graph.as_ref() && *nodes == n.graph_nodes
                })
                .map(|k| self.graphs[k].clone()),
            _ => None,
        };
    }

    /// Reads every graph file the grid names, once each, and checks each
    /// against the hash `recorded` (`[graph_files]`, as `DIR/sweep.toml`
    /// holds it) where it names the file.
    fn read_graphs(
        &self,
        recorded: &[(String, String)],
    ) -> Result<Vec<(GraphKey, Arc<FileGraph>)>, SpecError> {
        let mut wanted: Vec<GraphKey> = Vec::new();
        self.each_point(|_, params| {
            let n = &params.network;
            if let (Topology::Graph, Some(edges)) = (n.topology, &n.graph) {
                let key = (edges.clone(), n.graph_nodes.clone());
                if !wanted.contains(&key) {
                    wanted.push(key);
                }
            }
            Ok(())
        })
        .map_err(|(field, reason)| self.error(field, reason))?;
        let mut graphs = Vec::new();
        for (edges, given) in wanted {
            let nodes = nodes_file(&edges, given.as_deref())
                .map_err(|reason| self.error("network.graph_nodes".into(), reason))?;
            let g = FileGraph::load(&edges, &nodes).map_err(|e| SpecError {
                file: e.file,
                field: e.at,
                reason: e.reason,
            })?;
            for (file, hash) in [
                (&g.edges_file, &g.edges_hash),
                (&g.nodes_file, &g.nodes_hash),
            ] {
                if let Some((_, was)) = recorded.iter().find(|(f, _)| f == file) {
                    if was != hash {
                        return Err(self.error(
                            format!("graph_files.\"{file}\""),
                            format!("the file changed since this sweep was recorded (hash {was} then, {hash} now)"),
                        ));
                    }
                }
            }
            graphs.push(((edges, given), g));
        }
        Ok(graphs)
    }

    fn error(&self, field: String, reason: String) -> SpecError {
        SpecError {
            file: self.file.clone(),
            field,
            reason,
        }
    }

    /// Whether `other` gives the same rows: same seed, replicas and grid
    /// points, however the files spell them (the name may differ).
    pub fn same_rows(&self, other: &Spec) -> bool {
        self.seed == other.seed
            && self.replicas == other.replicas
            && self.n_points() == other.n_points()
            && self
                .points()
                .iter()
                .zip(other.points())
                .all(|(p, q)| p.params == q.params)
    }

    /// The number of grid points (1 with no axes).
    pub fn n_points(&self) -> usize {
        self.axes.iter().map(Axis::len).product()
    }

    /// Grid points times replicas.
    pub fn n_instances(&self) -> usize {
        self.n_points() * self.replicas
    }

    /// Builds grid point `index`: the base with each axis's value at this
    /// point applied.
    fn point(&self, index: usize) -> Result<GridPoint, Fault> {
        let mut params = self.base.clone();
        let mut varied = Vec::new();
        let mut stride = self.n_points();
        for (a, axis) in self.axes.iter().enumerate() {
            stride /= axis.len();
            let position = (index / stride) % axis.len();
            for (key, values) in axis.keys.iter().zip(&axis.values) {
                let value = &values[position];
                set_field(&mut params, key, value)
                    .map_err(|r| (axis_label(a, key), format!("value {position}: {r}")))?;
                varied.push((key.clone(), display_value(value)));
            }
        }
        self.attach(&mut params);
        Ok(GridPoint {
            index,
            params,
            varied,
        })
    }

    /// Ties a validation failure at `point` to the axis that set the field,
    /// if any, and to the point's values.
    fn locate(&self, point: &GridPoint, field: String, reason: String) -> Fault {
        if self.axes.is_empty() {
            return (field, reason);
        }
        let values: Vec<String> = point
            .varied
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let reason = format!(
            "{reason} at grid point {} ({})",
            point.index,
            values.join(", ")
        );
        let axis = self.axes.iter().position(|a| a.keys.contains(&field));
        match axis {
            Some(a) => (axis_label(a, &field), reason),
            None => (field, reason),
        }
    }
}

/// Sets one dotted field (`"network.n_in"`) from a TOML value. Used for the
/// base sections and for every axis value alike. Checks only the type;
/// ranges are `validate`'s job. `Err` is the reason, naming the value.
pub fn set_field(params: &mut Params, key: &str, value: &Value) -> Result<(), String> {
    match fields::field(key) {
        Some(f) => (f.set)(params, value),
        None => Err(unknown_field(key)),
    }
}

/// Checks every range and cross-field constraint of one grid point.
/// `Err((field, reason))` names the first field that fails.
pub fn validate(params: &Params) -> Result<(), (String, String)> {
    for f in FIELDS {
        (f.check)(params).map_err(|reason| (f.key.to_string(), reason))?;
    }
    limits::check_memory(params)
}

fn unknown_field(key: &str) -> String {
    let (section, _) = key.split_once('.').unwrap_or((key, ""));
    if !SECTIONS.contains(&section) {
        return format!("unknown field `{key}` (sections: {})", SECTIONS.join(", "));
    }
    let prefix = format!("{section}.");
    let known: Vec<&str> = FIELDS
        .iter()
        .filter_map(|f| f.key.strip_prefix(&prefix))
        .collect();
    format!(
        "unknown field `{key}` (known [{section}] fields: {})",
        known.join(", ")
    )
}

/// The nodes file of a graph's `edges` file: `graph_nodes` if `given`, else `nodes.csv` or
/// `nodes.parquet` beside the edges file (the edges file's format first).
fn nodes_file(edges: &str, given: Option<&str>) -> Result<String, String> {
    if let Some(given) = given {
        return Ok(given.to_string());
    }
    let dir = Path::new(edges).parent().unwrap_or(Path::new(""));
    let mut formats = [Format::Csv, Format::Parquet];
    if Format::of(edges) == Some(Format::Parquet) {
        formats.reverse();
    }
    let candidates: Vec<PathBuf> = formats
        .iter()
        .map(|f| dir.join(format!("nodes.{}", f.extension())))
        .collect();
    candidates
        .iter()
        .find(|c| c.is_file())
        .map(|c| c.display().to_string())
        .ok_or_else(|| {
            format!(
                "no nodes file: neither {} nor {} exists; give network.graph_nodes",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// Rewrites every `network.graph` and `network.graph_nodes` of the base
/// and the axes as a path resolved against the sweep file's directory
/// (canonical where the file exists), so the recorded sweep names the same
/// files from anywhere.
fn resolve_graph_paths(doc: &mut toml::Table, file: &str) {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let resolve = |v: &mut Value| {
        if let Value::String(s) = v {
            let joined = dir.join(&*s);
            let path = joined
                .canonicalize()
                .or_else(|_| std::path::absolute(&joined))
                .unwrap_or(joined);
            *s = path.display().to_string();
        }
    };
    const KEYS: [&str; 2] = ["graph", "graph_nodes"];
    if let Some(Value::Table(net)) = doc.get_mut("network") {
        for key in KEYS {
            if let Some(v) = net.get_mut(key) {
                resolve(v);
            }
        }
    }
    let Some(Value::Array(axes)) = doc.get_mut("axes") else {
        return;
    };
    for axis in axes.iter_mut().filter_map(Value::as_table_mut) {
        for key in KEYS {
            // Quoted dotted keys, or bare ones that TOML nests.
            if let Some(Value::Array(list)) = axis.get_mut(&format!("network.{key}")) {
                list.iter_mut().for_each(resolve);
            }
            if let Some(Value::Array(list)) = axis
                .get_mut("network")
                .and_then(Value::as_table_mut)
                .and_then(|t| t.get_mut(key))
            {
                list.iter_mut().for_each(resolve);
            }
        }
    }
}

/// `[graph_files]`: file path = hash, as `normalized` writes it.
fn parse_graph_files(value: &Value) -> Result<Vec<(String, String)>, Fault> {
    let table = value.as_table().ok_or_else(|| {
        (
            "graph_files".to_string(),
            format!("expected a table of file = hash, got {value}"),
        )
    })?;
    table
        .iter()
        .map(|(file, hash)| {
            as_str(hash)
                .map(|h| (file.clone(), h.to_string()))
                .map_err(|r| (format!("graph_files.\"{file}\""), r))
        })
        .collect()
}

fn parse_axes(value: &Value) -> Result<Vec<Axis>, Fault> {
    let list = value.as_array().ok_or_else(|| {
        (
            "axes".to_string(),
            format!("expected [[axes]] tables, got {value}"),
        )
    })?;
    let mut axes: Vec<Axis> = Vec::new();
    for (a, item) in list.iter().enumerate() {
        let table = item.as_table().ok_or_else(|| {
            (
                format!("axes[{a}]"),
                format!("expected a table of lists, got {item}"),
            )
        })?;
        let axis = parse_axis(a, table)?;
        for key in &axis.keys {
            if let Some(earlier) = axes.iter().position(|x| x.keys.contains(key)) {
                return Err((
                    axis_label(a, key),
                    format!("`{key}` is already varied by axes[{earlier}]; a field varies along one axis only"),
                ));
            }
        }
        axes.push(axis);
    }
    Ok(axes)
}

/// One `[[axes]]` table. Accepts quoted dotted keys (`"network.n_in" = [..]`)
/// and bare ones, which TOML nests (`network.n_in = [..]`).
fn parse_axis(a: usize, table: &toml::Table) -> Result<Axis, Fault> {
    let mut entries: Vec<(String, &Value)> = Vec::new();
    for (key, value) in table {
        match value.as_table() {
            Some(inner) => entries.extend(inner.iter().map(|(f, v)| (format!("{key}.{f}"), v))),
            None => entries.push((key.clone(), value)),
        }
    }
    if entries.is_empty() {
        return Err((
            format!("axes[{a}]"),
            "empty axis: give at least one field with a list of values".into(),
        ));
    }

    let mut axis = Axis {
        keys: Vec::new(),
        values: Vec::new(),
    };
    for (key, value) in entries {
        let label = axis_label(a, &key);
        if ["name", "seed", "replicas"].contains(&key.as_str()) {
            return Err((label, format!("`{key}` cannot vary along an axis")));
        }
        if key.starts_with("measures.") {
            return Err((
                label,
                format!(
                    "`{key}` chooses what a whole sweep measures; it cannot vary along an axis"
                ),
            ));
        }
        if fields::field(key.as_str()).is_none() {
            return Err((label, unknown_field(&key)));
        }
        let values = value.as_array().ok_or_else(|| {
            (
                label.clone(),
                format!("expected a list of values, got {value}"),
            )
        })?;
        if values.is_empty() {
            return Err((label, "empty list: an axis needs at least one value".into()));
        }
        if let (Some(first_key), Some(first)) = (axis.keys.first(), axis.values.first()) {
            if values.len() != first.len() {
                return Err((
                    label,
                    format!(
                        "has {} values but \"{first_key}\" has {}; lists in one [[axes]] vary together and need equal lengths",
                        values.len(),
                        first.len()
                    ),
                ));
            }
        }
        let mut scratch = Params::default();
        for (position, v) in values.iter().enumerate() {
            set_field(&mut scratch, &key, v)
                .map_err(|r| (label.clone(), format!("value {position}: {r}")))?;
        }
        axis.keys.push(key);
        axis.values.push(values.clone());
    }
    Ok(axis)
}

/// Refuses a grid or an instance count over its limit (or past what a
/// count can hold), from the axis lengths alone: no grid point is built.
fn check_counts(spec: &Spec) -> Result<(), Fault> {
    let lengths: Vec<String> = spec.axes.iter().map(|a| a.len().to_string()).collect();
    let points = spec
        .axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.len()))
        .filter(|&n| n <= MAX_POINTS);
    let Some(points) = points else {
        let product: f64 = spec.axes.iter().map(|a| a.len() as f64).product();
        return Err((
            "axes".into(),
            format!(
                "the grid has {} = {product:.0} points; the limit is {MAX_POINTS}",
                lengths.join(" x ")
            ),
        ));
    };
    match points.checked_mul(spec.replicas) {
        Some(n) if n <= MAX_INSTANCES => Ok(()),
        _ => Err((
            "replicas".into(),
            format!(
                "{} replicas x {points} grid points = {:.3e} instances; the limit is {MAX_INSTANCES}",
                spec.replicas,
                spec.replicas as f64 * points as f64
            ),
        )),
    }
}

/// The sweep as TOML without comments: name, seed and replicas as
/// resolved, the sections as given, each axis with quoted dotted keys.
/// Parses back to the same sweep.
fn normalized(doc: &toml::Table, spec: &Spec) -> String {
    let mut out = toml::Table::new();
    out.insert("name".into(), Value::String(spec.name.clone()));
    out.insert("seed".into(), Value::Integer(spec.seed as i64));
    out.insert("replicas".into(), Value::Integer(spec.replicas as i64));
    for (key, value) in doc {
        if SECTIONS.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        }
    }
    if !spec.axes.is_empty() {
        let axes = spec
            .axes
            .iter()
            .map(|axis| {
                let table: toml::Table = axis
                    .keys
                    .iter()
                    .zip(&axis.values)
                    .map(|(k, v)| (k.clone(), Value::Array(v.clone())))
                    .collect();
                Value::Table(table)
            })
            .collect();
        out.insert("axes".into(), Value::Array(axes));
    }
    if !spec.graph_files.is_empty() {
        let files: toml::Table = spec
            .graph_files
            .iter()
            .map(|(f, h)| (f.clone(), Value::String(h.clone())))
            .collect();
        out.insert("graph_files".into(), Value::Table(files));
    }
    toml::to_string(&out).expect("a parsed TOML table serialises")
}

fn axis_label(a: usize, key: &str) -> String {
    format!("axes[{a}].\"{key}\"")
}

fn check_name(name: &str) -> Result<(), String> {
    let bad = name.trim().is_empty()
        || name == "."
        || name.contains("..")
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        Err(format!(
            "must be a non-empty directory name without '/', '\\' or '..', got \"{}\"",
            name.escape_debug()
        ))
    } else {
        Ok(())
    }
}

fn default_name(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// toml's message on one line, prefixed with `line:column` where known.
fn syntax_reason(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}:{column}: {message}")
        }
        None => message,
    }
}

/// An axis value as the plan table shows it: strings without quotes.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Float(f) => number(*f),
        other => other.to_string(),
    }
}
