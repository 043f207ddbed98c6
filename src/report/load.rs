//! Reads a results directory: every `instances/*.parquet` and
//! `eras/*.parquet` file, from one run or many shards, into the rows the
//! report summarises. Only the columns the report uses are kept; the
//! `eras` table is folded per instance and era as it is read.
//!
//! Not here: grouping or statistics (`report::summary`, `report::stats`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::sweep::fields;

/// The parameter columns of the `instances` table (`results::schema`), in
/// schema order: a grid point is one combination of their values.
pub static PARAMETERS: LazyLock<Vec<&'static str>> = LazyLock::new(fields::parameter_columns);

/// The network fields of one row that the report labels and classifies by.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub topology: String,
    pub n_in: i64,
    pub hidden: Vec<i64>,
    pub n_out: i64,
    pub n_bulk: i64,
    /// Null except for nanowire networks.
    pub n_wires: Option<i64>,
}

impl Shape {
    /// `2-4-2` for layered networks (one number per layer), `4-bulk16-4`
    /// for random_bulk ones, `4-wires200-4` for nanowire ones (the wires
    /// dropped), `4-graph-4` for a graph file.
    pub fn label(&self) -> String {
        let middle: Vec<String> = match self.topology.as_str() {
            "random_bulk" => vec![format!("bulk{}", self.n_bulk)],
            "nanowire" => vec![format!("wires{}", self.n_wires.unwrap_or(0))],
            "graph" => vec!["graph".to_string()],
            _ => self.hidden.iter().map(i64::to_string).collect(),
        };
        std::iter::once(self.n_in.to_string())
            .chain(middle)
            .chain(std::iter::once(self.n_out.to_string()))
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The parameter values of a grid point, shared by its rows (a sweep has
/// few, so each is kept once).
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// Every `PARAMETERS` column's value as text, in that order.
    pub values: Vec<String>,
    pub shape: Shape,
    /// MODEL.md's symmetric network: layered, all-to-all, equal hidden
    /// widths, no random polarity, `sigma_r0 = sigma_d2d = 0`.
    pub symmetric: bool,
    pub model: String,
}

/// One row of the `instances` table.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceRow {
    pub point: i64,
    pub replica: i64,
    /// Index into `Results::settings`.
    pub setting: usize,
    pub n_nodes: i64,
    pub n_patterns: i64,
    pub p_prune: f64,
    pub recalled: i64,
    pub learned_all: bool,
    pub converged_era: Option<i64>,
    pub eras_run: i64,
    pub contrast: Option<f64>,
    /// `None` where the sweep's `[measures]` switched the measure off.
    pub cycle_space_dim: Option<i64>,
    pub controllability_initial: Option<f64>,
    pub controllability_final: Option<f64>,
}

/// The reads of one instance during training, per era (from `eras`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub reads: Vec<u32>,
    pub correct: Vec<u32>,
    /// Watt, summed over the era's reads.
    pub read_power: Vec<f64>,
}

impl Trace {
    fn add(&mut self, era: usize, correct: bool, read_power: f64) {
        if self.reads.len() <= era {
            self.reads.resize(era + 1, 0);
            self.correct.resize(era + 1, 0);
            self.read_power.resize(era + 1, 0.0);
        }
        self.reads[era] += 1;
        self.correct[era] += correct as u32;
        self.read_power[era] += read_power;
    }
}

/// A results directory in memory.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Sorted by (point, replica).
    pub instances: Vec<InstanceRow>,
    pub settings: Vec<Setting>,
    /// The distinct `backend` values.
    pub backends: Vec<String>,
    /// Keyed by (point, replica).
    pub traces: HashMap<(i64, i64), Trace>,
    /// Parquet files read, both tables.
    pub files: usize,
}

/// Read every Parquet file of `dir/instances` and `dir/eras`. Errors name
/// the file and the column.
pub fn load(dir: &Path) -> Result<Results, String> {
    let instance_files = parquet_files(&dir.join("instances"))?;
    if instance_files.is_empty() {
        return Err(format!(
            "{}: no instances/*.parquet (is this a memsweep results directory?)",
            dir.display()
        ));
    }
    // An eras file counts once the instances file of the same name exists:
    // a run writes that one last, so an eras file alone is a killed chunk.
    let era_files: Vec<PathBuf> = parquet_files(&dir.join("eras"))?
        .into_iter()
        .filter(|e| {
            e.file_name()
                .is_some_and(|n| dir.join("instances").join(n).is_file())
        })
        .collect();
    let mut results = Results {
        files: instance_files.len() + era_files.len(),
        ..Results::default()
    };
    let mut interned = HashMap::new();
    for path in &instance_files {
        for batch in read_batches(path)? {
            instance_rows(&batch, &mut results, &mut interned)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    results.instances.sort_by_key(|r| (r.point, r.replica));
    if let Some(w) = results
        .instances
        .windows(2)
        .find(|w| (w[0].point, w[0].replica) == (w[1].point, w[1].replica))
    {
        return Err(format!(
            "{}: instance (point {}, replica {}) appears twice: the directory mixes runs or holds a shard twice",
            dir.display(),
            w[0].point,
            w[0].replica
        ));
    }
    for path in &era_files {
        for batch in read_batches(path)? {
            fold_eras(&batch, &mut results.traces)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(results)
}

/// Complete Parquet files in `dir`, sorted; files still being written
/// (hidden, or `*.partial`) are left out. A missing directory has none.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|x| x == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = File::open(path).map_err(|e| fail(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| fail(&e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| fail(&e))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("column `{name}` is missing"))
}

fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, String> {
    let a = column(batch, name)?;
    let a = a
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| format!("column `{name}`: expected int64, got {}", a.data_type()))?;
    Ok(a.iter().collect())
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, String> {
    let a = column(batch, name)?;
    let a = a
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| format!("column `{name}`: expected float64, got {}", a.data_type()))?;
    Ok(a.iter().collect())
}

fn bools(batch: &RecordBatch, name: &str) -> Result<Vec<Option<bool>>, String> {
    let a = column(batch, name)?;
    let a = a
        .as_boolean_opt()
        .ok_or_else(|| format!("column `{name}`: expected bool, got {}", a.data_type()))?;
    Ok(a.iter().collect())
}

fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<String>, String> {
    let a = column(batch, name)?;
    let a = a
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("column `{name}`: expected string, got {}", a.data_type()))?;
    Ok(a.iter().map(|s| s.unwrap_or("null").to_string()).collect())
}

fn int_lists(batch: &RecordBatch, name: &str) -> Result<Vec<Vec<i64>>, String> {
    let a = column(batch, name)?;
    let a = a
        .as_list_opt::<i32>()
        .ok_or_else(|| format!("column `{name}`: expected a list, got {}", a.data_type()))?;
    (0..a.len())
        .map(|i| {
            let values = a.value(i);
            let values = values
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| format!("column `{name}`: expected a list of int64"))?;
            Ok(values.iter().map(|v| v.unwrap_or(0)).collect())
        })
        .collect()
}

/// A non-null column's values.
fn required<T>(name: &str, values: Vec<Option<T>>) -> Result<Vec<T>, String> {
    values
        .into_iter()
        .map(|v| v.ok_or_else(|| format!("column `{name}` has a null")))
        .collect()
}

/// Every parameter column as text, one `Vec` per column.
fn parameter_text(batch: &RecordBatch) -> Result<Vec<Vec<String>>, String> {
    let mut columns = Vec::with_capacity(PARAMETERS.len());
    for &name in PARAMETERS.iter() {
        let Some(array) = batch.column_by_name(name) else {
            // Results written before the column existed: their rows had
            // no such setting.
            columns.push(vec!["null".to_string(); batch.num_rows()]);
            continue;
        };
        let text: Vec<String> = match array.data_type() {
            DataType::Int64 => ints(batch, name)?
                .iter()
                .map(|v| text_of(v, |x| x.to_string()))
                .collect(),
            DataType::Float64 => floats(batch, name)?
                .iter()
                .map(|v| text_of(v, |&x| number(x)))
                .collect(),
            DataType::Boolean => bools(batch, name)?
                .iter()
                .map(|v| text_of(v, |x| x.to_string()))
                .collect(),
            DataType::Utf8 => strings(batch, name)?,
            DataType::List(_) => int_lists(batch, name)?
                .iter()
                .map(|l| list_text(l))
                .collect(),
            other => return Err(format!("column `{name}`: unexpected type {other}")),
        };
        columns.push(text);
    }
    Ok(columns)
}

fn text_of<T>(value: &Option<T>, show: impl Fn(&T) -> String) -> String {
    value.as_ref().map_or_else(|| "null".to_string(), show)
}

/// A list as DuckDB prints it: `[8, 8]`.
pub fn list_text(list: &[i64]) -> String {
    let items: Vec<String> = list.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A float as the report shows a setting: plain near 1, exponent far from
/// it (`0.3`, `1e-12`).
pub fn number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x:?}")
    }
}

/// Appends a batch's rows to `out`, each with its interned setting
/// (`interned` maps parameter values to their index in `out.settings`).
fn instance_rows(
    batch: &RecordBatch,
    out: &mut Results,
    interned: &mut HashMap<Vec<String>, usize>,
) -> Result<(), String> {
    let text = parameter_text(batch)?;
    let point = required("point", ints(batch, "point")?)?;
    let replica = required("replica", ints(batch, "replica")?)?;
    let topology = strings(batch, "topology")?;
    let n_in = required("n_in", ints(batch, "n_in")?)?;
    let hidden = int_lists(batch, "hidden")?;
    let n_out = required("n_out", ints(batch, "n_out")?)?;
    let n_bulk = required("n_bulk", ints(batch, "n_bulk")?)?;
    let n_wires = ints(batch, "n_wires")?;
    let density = required("density", floats(batch, "density")?)?;
    let skip = required("skip", floats(batch, "skip")?)?;
    let random_polarity = required("random_polarity", bools(batch, "random_polarity")?)?;
    let sigma_r0 = required("sigma_r0", floats(batch, "sigma_r0")?)?;
    let sigma_d2d = required("sigma_d2d", floats(batch, "sigma_d2d")?)?;
    let model = strings(batch, "model")?;
    let n_nodes = required("n_nodes", ints(batch, "n_nodes")?)?;
    let n_patterns = required("n_patterns", ints(batch, "n_patterns")?)?;
    let p_prune = required("p_prune", floats(batch, "p_prune")?)?;
    let recalled = required("recalled", ints(batch, "recalled")?)?;
    let learned_all = required("learned_all", bools(batch, "learned_all")?)?;
    let converged_era = ints(batch, "converged_era")?;
    let eras_run = required("eras_run", ints(batch, "eras_run")?)?;
    let contrast = floats(batch, "contrast")?;
    let cycle_space_dim = ints(batch, "cycle_space_dim")?;
    let ctrl_initial = floats(batch, "controllability_initial")?;
    let ctrl_final = floats(batch, "controllability_final")?;
    for b in strings(batch, "backend")? {
        if !out.backends.contains(&b) {
            out.backends.push(b);
        }
    }
    for i in 0..batch.num_rows() {
        let values: Vec<String> = text.iter().map(|c| c[i].clone()).collect();
        let setting = match interned.get(&values) {
            Some(&s) => s,
            None => {
                let shape = Shape {
                    topology: topology[i].clone(),
                    n_in: n_in[i],
                    hidden: hidden[i].clone(),
                    n_out: n_out[i],
                    n_bulk: n_bulk[i],
                    n_wires: n_wires[i],
                };
                let symmetric = shape.topology == "layered"
                    && density[i] == 1.0
                    && skip[i] == 0.0
                    && !random_polarity[i]
                    && sigma_r0[i] == 0.0
                    && sigma_d2d[i] == 0.0
                    && shape.hidden.windows(2).all(|w| w[0] == w[1]);
                out.settings.push(Setting {
                    values: values.clone(),
                    shape,
                    symmetric,
                    model: model[i].clone(),
                });
                interned.insert(values, out.settings.len() - 1);
                out.settings.len() - 1
            }
        };
        out.instances.push(InstanceRow {
            point: point[i],
            replica: replica[i],
            setting,
            n_nodes: n_nodes[i],
            n_patterns: n_patterns[i],
            p_prune: p_prune[i],
            recalled: recalled[i],
            learned_all: learned_all[i],
            converged_era: converged_era[i],
            eras_run: eras_run[i],
            contrast: contrast[i],
            cycle_space_dim: cycle_space_dim[i],
            controllability_initial: ctrl_initial[i],
            controllability_final: ctrl_final[i],
        });
    }
    Ok(())
}

fn fold_eras(batch: &RecordBatch, traces: &mut HashMap<(i64, i64), Trace>) -> Result<(), String> {
    let point = required("point", ints(batch, "point")?)?;
    let replica = required("replica", ints(batch, "replica")?)?;
    let era = required("era", ints(batch, "era")?)?;
    let correct = required("correct", bools(batch, "correct")?)?;
    // Null read power (a model without a circuit) counts as none.
    let read_power = floats(batch, "read_power")?;
    for i in 0..batch.num_rows() {
        let e = usize::try_from(era[i]).map_err(|_| format!("negative era {}", era[i]))?;
        traces.entry((point[i], replica[i])).or_default().add(
            e,
            correct[i],
            read_power[i].unwrap_or(0.0),
        );
    }
    Ok(())
}
