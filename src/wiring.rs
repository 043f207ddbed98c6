//! Wiring files (MODEL.md section 1, `graph`): reading a network's edges
//! and node roles from CSV or Parquet for `topology = "graph"`, and writing
//! an instance's wiring for `memsweep export-graph` (CSV or Parquet, and
//! GraphML).
//!
//! Every problem with a file is one `WiringError` naming the file and the
//! line (CSV, header = line 1) or row (Parquet, first row = row 1). Not
//! here: where the files are found and when they are read (`sweep::spec`),
//! building the network (`model::network`).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch,
    RecordBatchReader, StringArray,
};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Schema,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::model::device::Devices;
use crate::model::network::Network;
use crate::sweep::limits::MAX_GRAPH_FILE_BYTES;

/// Optional per-edge columns that replace the drawn values.
const EDGE_VALUES: [&str; 5] = ["polarity", "ron", "roff", "vt", "r0"];
/// Columns `export-graph` writes that a graph file may hold and that are
/// ignored on reading (the state after training, not a set-up value).
const EDGE_IGNORED: [&str; 3] = ["r", "alive", "stuck"];

/// A problem with a wiring file: `{file}: {at}: {reason}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WiringError {
    pub file: String,
    /// `line 3`, `row 3`, `header` or `file`.
    pub at: String,
    pub reason: String,
}

impl fmt::Display for WiringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.at, self.reason)
    }
}

/// The network a pair of graph files describes, renumbered to the internal
/// convention (inputs, bulk, outputs, each ordered by file id), with the
/// per-edge values the file gives (`None` where the draw stands).
#[derive(Clone, Debug)]
pub struct FileGraph {
    /// The edges file, resolved.
    pub edges_file: String,
    /// The nodes file, resolved.
    pub nodes_file: String,
    /// FNV-1a 64 of each file's bytes, as `fnv1a64:` and 16 hex digits.
    pub edges_hash: String,
    pub nodes_hash: String,
    pub n_in: usize,
    pub n_hidden: usize,
    pub n_out: usize,
    /// The file's id of each node.
    pub id: Vec<i64>,
    pub layer: Vec<u32>,
    pub tail: Vec<u32>,
    pub head: Vec<u32>,
    pub polarity: Vec<Option<i8>>,
    /// Ohm.
    pub ron: Vec<Option<f64>>,
    /// Ohm.
    pub roff: Vec<Option<f64>>,
    /// Volt.
    pub vt: Vec<Option<f64>>,
    /// Ohm.
    pub r0: Vec<Option<f64>>,
    /// `Network::parity_class` of this wiring, counted.
    pub parity_class_size: usize,
}

impl PartialEq for FileGraph {
    /// Same files with the same content.
    fn eq(&self, o: &Self) -> bool {
        (
            &self.edges_file,
            &self.nodes_file,
            &self.edges_hash,
            &self.nodes_hash,
        ) == (&o.edges_file, &o.nodes_file, &o.edges_hash, &o.nodes_hash)
    }
}

impl FileGraph {
    /// The hash of both files together, for the `graph_hash` column.
    pub fn hash(&self) -> String {
        let both = format!("{}{}", self.edges_hash, self.nodes_hash);
        fnv1a64(both.as_bytes())
    }

    /// Reads and checks an edges file and its nodes file.
    pub fn load(edges_file: &str, nodes_file: &str) -> Result<Arc<FileGraph>, WiringError> {
        let nodes = Table::read(nodes_file)?;
        let edges = Table::read(edges_file)?;
        let mut g = nodes.into_nodes()?;
        edges.into_edges(&mut g)?;
        let net = g.network_shape();
        g.parity_class_size = net.parity_class().iter().filter(|&&c| c).count();
        Ok(Arc::new(g))
    }

    /// The wiring without polarity, for measures of the file's structure.
    fn network_shape(&self) -> Network {
        Network {
            n_in: self.n_in,
            n_hidden: self.n_hidden,
            n_out: self.n_out,
            tail: self.tail.clone(),
            head: self.head.clone(),
            polarity: vec![1; self.tail.len()],
            layer: self.layer.clone(),
        }
    }
}

/// FNV-1a, 64 bits, as `fnv1a64:` and 16 hex digits: a content hash that
/// tells a changed file from an unchanged one (not a cryptographic one).
pub fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Which format a path names, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn of(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

fn read_bytes(path: &str) -> Result<Vec<u8>, WiringError> {
    let fail = |reason: String| WiringError {
        file: path.to_string(),
        at: "file".into(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_GRAPH_FILE_BYTES {
        return Err(fail(format!(
            "{} bytes is more than a wiring file may hold ({MAX_GRAPH_FILE_BYTES} bytes)",
            meta.len()
        )));
    }
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_GRAPH_FILE_BYTES + 1).read_to_end(&mut raw))
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    Ok(raw)
}

/// A file's cells as text (`None` for an empty CSV cell or a Parquet
/// null), whatever its format; numbers print as Rust's shortest exact
/// decimal, so reading them back is exact.
struct Table {
    file: String,
    format: Format,
    hash: String,
    columns: Vec<String>,
    /// `[column][row]`.
    cells: Vec<Vec<Option<String>>>,
}

impl Table {
    fn read(path: &str) -> Result<Table, WiringError> {
        let format = Format::of(path).ok_or_else(|| WiringError {
            file: path.to_string(),
            at: "file".into(),
            reason: "expected a .csv or .parquet file".into(),
        })?;
        let raw = read_bytes(path)?;
        let hash = fnv1a64(&raw);
        let (columns, cells) = match format {
            Format::Csv => csv_cells(path, &raw)?,
            Format::Parquet => parquet_cells(path)?,
        };
        Ok(Table {
            file: path.to_string(),
            format,
            hash,
            columns,
            cells,
        })
    }

    fn rows(&self) -> usize {
        self.cells.first().map_or(0, Vec::len)
    }

    /// Where row `i` (from 0) is, in the file's own terms.
    fn at(&self, i: usize) -> String {
        match self.format {
            Format::Csv => format!("line {}", i + 2),
            Format::Parquet => format!("row {}", i + 1),
        }
    }

    fn fail(&self, at: String, reason: String) -> WiringError {
        WiringError {
            file: self.file.clone(),
            at,
            reason,
        }
    }

    /// Checks the header: every required column present, nothing unknown.
    fn check_columns(&self, required: &[&str], optional: &[&str]) -> Result<(), WiringError> {
        let at = match self.format {
            Format::Csv => "line 1".to_string(),
            Format::Parquet => "header".to_string(),
        };
        for (i, c) in self.columns.iter().enumerate() {
            if !required.contains(&c.as_str()) && !optional.contains(&c.as_str()) {
                return Err(self.fail(
                    at,
                    format!(
                        "unknown column `{c}` (known: {})",
                        required
                            .iter()
                            .chain(optional)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if self.columns[..i].contains(c) {
                return Err(self.fail(at, format!("column `{c}` appears twice")));
            }
        }
        if let Some(missing) = required
            .iter()
            .find(|r| !self.columns.iter().any(|c| c == *r))
        {
            return Err(self.fail(
                at,
                format!(
                    "no column `{missing}` (columns: {})",
                    self.columns.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn column(&self, name: &str) -> Option<&[Option<String>]> {
        let c = self.columns.iter().position(|c| c == name)?;
        Some(&self.cells[c])
    }

    /// The cell of column `name` at row `i`, parsed; `Ok(None)` when the
    /// column or the cell is absent.
    fn value<T>(
        &self,
        name: &str,
        i: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, WiringError> {
        let Some(cell) = self.column(name).and_then(|c| c[i].as_deref()) else {
            return Ok(None);
        };
        parse(cell)
            .map(Some)
            .map_err(|r| self.fail(self.at(i), format!("{name}: {r}")))
    }

    fn required<T>(
        &self,
        name: &str,
        i: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, WiringError> {
        self.value(name, i, parse)?
            .ok_or_else(|| self.fail(self.at(i), format!("{name}: empty")))
    }

    fn into_nodes(self) -> Result<FileGraph, WiringError> {
        self.check_columns(&["id", "role"], &["layer"])?;
        if self.rows() == 0 {
            return Err(self.fail("file".into(), "no nodes".into()));
        }
        // (role rank, id, layer, row)
        let mut nodes: Vec<(u8, i64, Option<u32>, usize)> = Vec::with_capacity(self.rows());
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for i in 0..self.rows() {
            let id = self.required("id", i, integer)?;
            let rank = self.required("role", i, |s| match s {
                "input" => Ok(0u8),
                "bulk" => Ok(1),
                "output" => Ok(2),
                other => Err(format!("expected input, bulk or output, got `{other}`")),
            })?;
            let layer = self.value("layer", i, |s| {
                integer(s).and_then(|l| {
                    u32::try_from(l)
                        .map_err(|_| format!("expected a non-negative integer, got {l}"))
                })
            })?;
            if let Some(first) = seen.insert(id, i) {
                return Err(self.fail(
                    self.at(i),
                    format!(
                        "id: node {id} is listed twice (first on {})",
                        self.at(first)
                    ),
                ));
            }
            nodes.push((rank, id, layer, i));
        }
        nodes.sort_unstable();
        let count = |rank: u8| nodes.iter().filter(|n| n.0 == rank).count();
        let (n_in, n_hidden, n_out) = (count(0), count(1), count(2));
        for (n, role) in [(n_in, "input"), (n_out, "output")] {
            if n == 0 {
                return Err(self.fail("file".into(), format!("no node has role {role}")));
            }
        }
        Ok(FileGraph {
            edges_file: String::new(),
            nodes_file: self.file.clone(),
            edges_hash: String::new(),
            nodes_hash: self.hash.clone(),
            n_in,
            n_hidden,
            n_out,
            id: nodes.iter().map(|n| n.1).collect(),
            layer: nodes.iter().map(|n| n.2.unwrap_or(n.0 as u32)).collect(),
            tail: Vec::new(),
            head: Vec::new(),
            polarity: Vec::new(),
            ron: Vec::new(),
            roff: Vec::new(),
            vt: Vec::new(),
            r0: Vec::new(),
            parity_class_size: 0,
        })
    }

    fn into_edges(self, g: &mut FileGraph) -> Result<(), WiringError> {
        let optional: Vec<&str> = EDGE_VALUES.iter().chain(&EDGE_IGNORED).copied().collect();
        self.check_columns(&["tail", "head"], &optional)?;
        if self.rows() == 0 {
            return Err(self.fail("file".into(), "no edges".into()));
        }
        let node_of: HashMap<i64, u32> =
            g.id.iter()
                .enumerate()
                .map(|(k, &id)| (id, k as u32))
                .collect();
        let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
        g.edges_file = self.file.clone();
        g.edges_hash = self.hash.clone();
        for i in 0..self.rows() {
            let end = |name: &str| -> Result<u32, WiringError> {
                let id = self.required(name, i, integer)?;
                node_of.get(&id).copied().ok_or_else(|| {
                    self.fail(
                        self.at(i),
                        format!("{name}: node {id} is not in {}", g.nodes_file),
                    )
                })
            };
            let (u, v) = (end("tail")?, end("head")?);
            if u == v {
                return Err(self.fail(
                    self.at(i),
                    format!("a self-loop: tail = head = {}", g.id[u as usize]),
                ));
            }
            if let Some(first) = seen.insert((u.min(v), u.max(v)), i) {
                return Err(self.fail(
                    self.at(i),
                    format!(
                        "duplicate edge: nodes {} and {} are already joined on {}",
                        g.id[u as usize],
                        g.id[v as usize],
                        self.at(first)
                    ),
                ));
            }
            let polarity = self.value("polarity", i, |s| match integer(s)? {
                1 => Ok(1i8),
                -1 => Ok(-1),
                other => Err(format!("must be 1 or -1, got {other}")),
            })?;
            let [ron, roff, vt, r0] =
                ["ron", "roff", "vt", "r0"].map(|c| self.value(c, i, positive));
            let (ron, roff, vt, r0) = (ron?, roff?, vt?, r0?);
            if let (Some(lo), Some(hi)) = (ron, roff) {
                if hi <= lo {
                    return Err(self.fail(
                        self.at(i),
                        format!("roff: must be > ron = {lo:?}, got {hi:?}"),
                    ));
                }
                if let Some(r) = r0.filter(|r| !(lo..=hi).contains(r)) {
                    return Err(self.fail(
                        self.at(i),
                        format!("r0: must lie in [ron, roff] = [{lo:?}, {hi:?}], got {r:?}"),
                    ));
                }
            }
            g.tail.push(u);
            g.head.push(v);
            g.polarity.push(polarity);
            g.ron.push(ron);
            g.roff.push(roff);
            g.vt.push(vt);
            g.r0.push(r0);
        }
        Ok(())
    }
}

fn integer(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("expected an integer, got `{s}`"))
}

fn positive(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("expected a number, got `{s}`"))?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("must be a finite number > 0, got {s}"))
    }
}

/// CSV without quoting: comma-separated, cells trimmed, blank lines
/// skipped only at the end.
type Cells = (Vec<String>, Vec<Vec<Option<String>>>);

fn csv_cells(path: &str, raw: &[u8]) -> Result<Cells, WiringError> {
    let fail = |at: String, reason: String| WiringError {
        file: path.to_string(),
        at,
        reason,
    };
    let text =
        std::str::from_utf8(raw).map_err(|_| fail("file".into(), "not UTF-8 text".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(fail("file".into(), "empty: expected a header line".into()));
    };
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    let mut cells = vec![Vec::new(); columns.len()];
    let body: Vec<(usize, &str)> = lines.collect();
    let last = body
        .iter()
        .rposition(|(_, l)| !l.trim().is_empty())
        .map_or(0, |p| p + 1);
    for &(n, line) in &body[..last] {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(fail(
                format!("line {}", n + 1),
                format!(
                    "{} fields, but the header has {} ({})",
                    fields.len(),
                    columns.len(),
                    columns.join(",")
                ),
            ));
        }
        for (c, f) in fields.into_iter().enumerate() {
            cells[c].push((!f.is_empty()).then(|| f.to_string()));
        }
    }
    Ok((columns, cells))
}

fn parquet_cells(path: &str) -> Result<Cells, WiringError> {
    let fail = |reason: String| WiringError {
        file: path.to_string(),
        at: "file".into(),
        reason,
    };
    let file = File::open(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?;
    let columns: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut cells = vec![Vec::new(); columns.len()];
    for batch in reader {
        let batch = batch.map_err(|e| fail(format!("not a readable Parquet file: {e}")))?;
        for (c, array) in batch.columns().iter().enumerate() {
            cells[c]
                .extend(texts(array).map_err(|r| fail(format!("column `{}`: {r}", columns[c])))?);
        }
    }
    Ok((columns, cells))
}

/// A Parquet column's values as text.
fn texts(array: &ArrayRef) -> Result<Vec<Option<String>>, String> {
    macro_rules! primitive {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .iter()
                .map(|x| x.map(|x| x.to_string()))
                .collect()
        };
    }
    Ok(match array.data_type() {
        DataType::Int8 => primitive!(Int8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|x| x.map(|x| x.to_string()))
            .collect(),
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|x| x.map(|s| s.trim().to_string()))
            .collect(),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|x| x.map(|s| s.trim().to_string()))
            .collect(),
        other => return Err(format!("unsupported type {other}")),
    })
}

/// One instance's wiring and per-edge values, as `export-graph` writes it.
pub struct Export<'a> {
    pub network: &'a Network,
    /// The drawn device values (file values where a graph file gave them).
    pub devices: &'a Devices,
    /// Resistance after the exported eras, ohm.
    pub r: &'a [f64],
    /// Whether each edge survived pruning in those eras.
    pub alive: &'a [bool],
}

impl Export<'_> {
    fn role(&self, node: usize) -> &'static str {
        let net = self.network;
        if node < net.n_in {
            "input"
        } else if node < net.n_in + net.n_hidden {
            "bulk"
        } else {
            "output"
        }
    }

    /// `edges.<ext>` and `nodes.<ext>` in `dir`; node ids are the
    /// instance's own node indices.
    pub fn write_tables(&self, dir: &Path, format: Format) -> std::io::Result<()> {
        let (edges, nodes) = (self.edges_batch(), self.nodes_batch());
        let ext = format.extension();
        for (name, batch) in [("edges", edges), ("nodes", nodes)] {
            let path = dir.join(format!("{name}.{ext}"));
            match format {
                Format::Parquet => crate::results::write_parquet(&path, &batch, &[])?,
                Format::Csv => std::fs::write(&path, csv_text(&batch))?,
            }
        }
        Ok(())
    }

    fn edges_batch(&self) -> RecordBatch {
        let net = self.network;
        let ints = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let floats = |v: &[f64]| -> ArrayRef { Arc::new(Float64Array::from(v.to_vec())) };
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("tail", ints(net.tail.iter().map(|&u| u as i64).collect())),
            ("head", ints(net.head.iter().map(|&v| v as i64).collect())),
            (
                "polarity",
                ints(net.polarity.iter().map(|&s| s as i64).collect()),
            ),
            ("ron", floats(&self.devices.ron)),
            ("roff", floats(&self.devices.roff)),
            ("vt", floats(&self.devices.vt)),
            ("r0", floats(&self.devices.r0)),
            ("r", floats(self.r)),
            ("alive", Arc::new(BooleanArray::from(self.alive.to_vec()))),
            (
                "stuck",
                Arc::new(BooleanArray::from(self.devices.stuck.clone())),
            ),
        ];
        batch(columns)
    }

    fn nodes_batch(&self) -> RecordBatch {
        let n = self.network.n_nodes();
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "id",
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            ),
            (
                "role",
                Arc::new(StringArray::from(
                    (0..n).map(|i| self.role(i)).collect::<Vec<_>>(),
                )),
            ),
            (
                "layer",
                Arc::new(Int64Array::from(
                    self.network
                        .layer
                        .iter()
                        .map(|&l| l as i64)
                        .collect::<Vec<_>>(),
                )),
            ),
        ];
        batch(columns)
    }

    /// GraphML (directed), nodes with `role` and `layer`, edges with every
    /// per-edge value: opens in networkx (`read_graphml`) and Gephi.
    pub fn graphml(&self) -> String {
        let net = self.network;
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n",
        );
        let keys = [
            ("role", "node", "string"),
            ("layer", "node", "int"),
            ("polarity", "edge", "int"),
            ("ron", "edge", "double"),
            ("roff", "edge", "double"),
            ("vt", "edge", "double"),
            ("r0", "edge", "double"),
            ("r", "edge", "double"),
            ("alive", "edge", "boolean"),
            ("stuck", "edge", "boolean"),
        ];
        for (name, domain, kind) in keys {
            let _ = writeln!(
                out,
                "  <key id=\"{name}\" for=\"{domain}\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
            );
        }
        out.push_str("  <graph id=\"G\" edgedefault=\"directed\">\n");
        for i in 0..net.n_nodes() {
            let _ = writeln!(
                out,
                "    <node id=\"n{i}\"><data key=\"role\">{}</data><data key=\"layer\">{}</data></node>",
                self.role(i),
                net.layer[i]
            );
        }
        for e in 0..net.n_edges() {
            let _ = writeln!(
                out,
                "    <edge id=\"e{e}\" source=\"n{}\" target=\"n{}\"><data key=\"polarity\">{}</data>\
                 <data key=\"ron\">{:?}</data><data key=\"roff\">{:?}</data><data key=\"vt\">{:?}</data>\
                 <data key=\"r0\">{:?}</data><data key=\"r\">{:?}</data><data key=\"alive\">{}</data>\
                 <data key=\"stuck\">{}</data></edge>",
                net.tail[e],
                net.head[e],
                net.polarity[e],
                self.devices.ron[e],
                self.devices.roff[e],
                self.devices.vt[e],
                self.devices.r0[e],
                self.r[e],
                self.alive[e],
                self.devices.stuck[e]
            );
        }
        out.push_str("  </graph>\n</graphml>\n");
        out
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|c| c.1).collect(),
    )
    .expect("columns match their schema")
}

/// A batch as CSV: floats in Rust's shortest exact form, so reading the
/// file back gives the very same numbers.
fn csv_text(batch: &RecordBatch) -> String {
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut out = names.join(",");
    out.push('\n');
    let columns: Vec<Vec<Option<String>>> = batch
        .columns()
        .iter()
        .map(|a| match a.data_type() {
            DataType::Float64 => a
                .as_primitive::<Float64Type>()
                .iter()
                .map(|x| x.map(|x| format!("{x:?}")))
                .collect(),
            _ => texts(a).expect("export columns have supported types"),
        })
        .collect();
    for row in 0..batch.num_rows() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| c[row].as_deref().unwrap_or(""))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
