//! The `instances` and `eras` tables (the interface users load into DuckDB,
//! pandas or polars). Column names are MODEL.md's names.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema};

use crate::params::Params;
use crate::protocol::training::EraRead;
use crate::sweep::fields::{self, Cell, Kind};

/// Everything the results hold about one trained instance.
#[derive(Clone, Debug)]
pub struct InstanceRecord {
    pub point: usize,
    pub replica: usize,
    pub seed: u64,
    pub params: Arc<Params>,
    pub n_nodes: usize,
    pub n_edges: usize,
    pub recalled: usize,
    pub converged_era: Option<u32>,
    pub eras_run: u32,
    pub energy_write: f64,
    pub pruned_edges: usize,
    pub contrast: Option<f64>,
    /// `None` where `[measures]` switched the measure off.
    pub cycle_space_dim: Option<usize>,
    pub controllability_initial: Option<f64>,
    pub controllability_final: Option<f64>,
    pub backend: &'static str,
    pub trace: Vec<EraRead>,
}

impl InstanceRecord {
    pub fn learned_all(&self) -> bool {
        self.recalled == self.params.n_patterns()
    }
}

/// Column builders in schema order; one line per column keeps the schema
/// and the values side by side.
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    fn new() -> Self {
        Columns {
            fields: Vec::new(),
            arrays: Vec::new(),
        }
    }

    fn int(&mut self, name: &str, rows: &[InstanceRecord], f: impl Fn(&InstanceRecord) -> i64) {
        let mut b = Int64Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_value(f(r)));
        self.push(name, DataType::Int64, false, Arc::new(b.finish()));
    }

    fn opt_int(
        &mut self,
        name: &str,
        rows: &[InstanceRecord],
        f: impl Fn(&InstanceRecord) -> Option<i64>,
    ) {
        let mut b = Int64Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(name, DataType::Int64, true, Arc::new(b.finish()));
    }

    fn float(&mut self, name: &str, rows: &[InstanceRecord], f: impl Fn(&InstanceRecord) -> f64) {
        let mut b = Float64Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_value(f(r)));
        self.push(name, DataType::Float64, false, Arc::new(b.finish()));
    }

    fn opt_float(
        &mut self,
        name: &str,
        rows: &[InstanceRecord],
        f: impl Fn(&InstanceRecord) -> Option<f64>,
    ) {
        let mut b = Float64Builder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(name, DataType::Float64, true, Arc::new(b.finish()));
    }

    fn boolean(
        &mut self,
        name: &str,
        rows: &[InstanceRecord],
        f: impl Fn(&InstanceRecord) -> bool,
    ) {
        let mut b = BooleanBuilder::with_capacity(rows.len());
        rows.iter().for_each(|r| b.append_value(f(r)));
        self.push(name, DataType::Boolean, false, Arc::new(b.finish()));
    }

    fn string(&mut self, name: &str, rows: &[InstanceRecord], f: impl Fn(&InstanceRecord) -> &str) {
        let mut b = StringBuilder::new();
        rows.iter().for_each(|r| b.append_value(f(r)));
        self.push(name, DataType::Utf8, false, Arc::new(b.finish()));
    }

    fn opt_string(
        &mut self,
        name: &str,
        rows: &[InstanceRecord],
        f: impl Fn(&InstanceRecord) -> Option<String>,
    ) {
        let mut b = StringBuilder::new();
        rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(name, DataType::Utf8, true, Arc::new(b.finish()));
    }

    /// A parameter column (`sweep::fields`).
    fn parameter(&mut self, column: &fields::Column, rows: &[InstanceRecord]) {
        let cells = rows.iter().map(|r| (column.value)(&r.params));
        let array: ArrayRef = match column.kind {
            Kind::Int => Arc::new(
                cells
                    .map(|c| match c {
                        Cell::Int(x) => Some(x),
                        _ => None,
                    })
                    .collect::<arrow::array::Int64Array>(),
            ),
            Kind::Float => Arc::new(
                cells
                    .map(|c| match c {
                        Cell::Float(x) => Some(x),
                        _ => None,
                    })
                    .collect::<arrow::array::Float64Array>(),
            ),
            Kind::Bool => Arc::new(
                cells
                    .map(|c| match c {
                        Cell::Bool(x) => Some(x),
                        _ => None,
                    })
                    .collect::<arrow::array::BooleanArray>(),
            ),
            Kind::Text => Arc::new(
                cells
                    .map(|c| match c {
                        Cell::Text(x) => Some(x),
                        _ => None,
                    })
                    .collect::<arrow::array::StringArray>(),
            ),
            Kind::IntList => {
                let mut b = ListBuilder::new(Int64Builder::new());
                for cell in cells {
                    match cell {
                        Cell::IntList(xs) => {
                            b.values().append_slice(&xs);
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
        };
        let dt = array.data_type().clone();
        self.push(column.name, dt, column.nullable, array);
    }

    fn push(&mut self, name: &str, dt: DataType, nullable: bool, array: ArrayRef) {
        self.fields.push(Field::new(name, dt, nullable));
        self.arrays.push(array);
    }

    fn finish(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .expect("columns match their schema")
    }
}

/// The `instances` table: one row per trained instance.
pub fn instances_batch(rows: &[InstanceRecord]) -> RecordBatch {
    let mut c = Columns::new();
    c.int("point", rows, |r| r.point as i64);
    c.int("replica", rows, |r| r.replica as i64);
    let mut seed = UInt64Builder::with_capacity(rows.len());
    rows.iter().for_each(|r| seed.append_value(r.seed));
    c.push("seed", DataType::UInt64, false, Arc::new(seed.finish()));
    // The parameters, as `sweep::fields` defines them, with the
    // instance's shape after `n_out` and the graph files' hash after
    // `graph`.
    for column in fields::FIELDS.iter().filter_map(|f| f.column.as_ref()) {
        c.parameter(column, rows);
        match column.name {
            "n_out" => {
                c.int("depth", rows, |r| r.params.depth() as i64);
                c.int("n_nodes", rows, |r| r.n_nodes as i64);
                c.int("n_edges", rows, |r| r.n_edges as i64);
            }
            "graph" => c.opt_string("graph_hash", rows, |r| {
                r.params.network.wiring.as_ref().map(|g| g.hash())
            }),
            _ => {}
        }
    }
    c.int("recalled", rows, |r| r.recalled as i64);
    c.boolean("learned_all", rows, |r| r.learned_all());
    c.opt_int("converged_era", rows, |r| r.converged_era.map(|e| e as i64));
    c.int("eras_run", rows, |r| r.eras_run as i64);
    c.float("energy_write", rows, |r| r.energy_write);
    c.int("pruned_edges", rows, |r| r.pruned_edges as i64);
    c.opt_float("contrast", rows, |r| r.contrast);
    c.opt_int("cycle_space_dim", rows, |r| {
        r.cycle_space_dim.map(|d| d as i64)
    });
    c.opt_float("controllability_initial", rows, |r| {
        r.controllability_initial
    });
    c.opt_float("controllability_final", rows, |r| r.controllability_final);
    c.string("backend", rows, |r| r.backend);
    c.finish()
}

/// The `eras` table: one row per (instance, era, pattern) read in training.
pub fn eras_batch(rows: &[InstanceRecord]) -> RecordBatch {
    let n: usize = rows.iter().map(|r| r.trace.len()).sum();
    let (mut point, mut replica, mut era, mut pattern) = (
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
        Int64Builder::with_capacity(n),
    );
    let mut correct = BooleanBuilder::with_capacity(n);
    let mut read_power = Float64Builder::with_capacity(n);
    for r in rows {
        for t in &r.trace {
            point.append_value(r.point as i64);
            replica.append_value(r.replica as i64);
            era.append_value(t.era as i64);
            pattern.append_value(t.pattern as i64);
            correct.append_value(t.correct);
            read_power.append_value(t.read_power);
        }
    }
    let schema = Schema::new(vec![
        Field::new("point", DataType::Int64, false),
        Field::new("replica", DataType::Int64, false),
        Field::new("era", DataType::Int64, false),
        Field::new("pattern", DataType::Int64, false),
        Field::new("correct", DataType::Boolean, false),
        Field::new("read_power", DataType::Float64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(point.finish()),
            Arc::new(replica.finish()),
            Arc::new(era.finish()),
            Arc::new(pattern.finish()),
            Arc::new(correct.finish()),
            Arc::new(read_power.finish()),
        ],
    )
    .expect("columns match their schema")
}
