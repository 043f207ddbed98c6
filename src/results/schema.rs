//! The `instances` and `eras` tables (the interface users load into DuckDB,
//! pandas or polars). Column names are MODEL.md's names.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema};

use crate::params::{DeviceModel, DeviceParams, Params, Topology};
use crate::protocol::training::EraRead;

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
    c.string("topology", rows, |r| r.params.network.topology.name());
    c.int("n_in", rows, |r| r.params.network.n_in as i64);
    let mut hidden = ListBuilder::new(Int64Builder::new());
    for r in rows {
        hidden.values().append_slice(
            &r.params
                .network
                .hidden
                .iter()
                .map(|&h| h as i64)
                .collect::<Vec<_>>(),
        );
        hidden.append(true);
    }
    let hidden = hidden.finish();
    c.push(
        "hidden",
        hidden.data_type().clone(),
        false,
        Arc::new(hidden),
    );
    c.int("n_out", rows, |r| r.params.network.n_out as i64);
    c.int("depth", rows, |r| r.params.depth() as i64);
    c.int("n_nodes", rows, |r| r.n_nodes as i64);
    c.int("n_edges", rows, |r| r.n_edges as i64);
    c.float("density", rows, |r| r.params.network.density);
    c.float("skip", rows, |r| r.params.network.skip);
    c.boolean("random_polarity", rows, |r| {
        r.params.network.random_polarity
    });
    c.int("n_bulk", rows, |r| r.params.network.n_bulk as i64);
    c.float("p_bulk", rows, |r| r.params.network.p_bulk);
    c.int("k_attach", rows, |r| r.params.network.k_attach as i64);
    let nanowire = |r: &InstanceRecord| r.params.network.topology == Topology::Nanowire;
    c.opt_int("n_wires", rows, |r| {
        nanowire(r).then_some(r.params.network.n_wires as i64)
    });
    c.opt_float("wire_density", rows, |r| {
        nanowire(r).then_some(r.params.network.wire_density)
    });
    c.opt_float("wire_length", rows, |r| {
        nanowire(r).then_some(r.params.network.wire_length)
    });
    c.opt_float("wire_length_std", rows, |r| {
        nanowire(r).then_some(r.params.network.wire_length_std)
    });
    c.opt_string("graph", rows, |r| {
        r.params
            .network
            .wiring
            .as_ref()
            .map(|g| g.edges_file.clone())
    });
    c.opt_string("graph_hash", rows, |r| {
        r.params.network.wiring.as_ref().map(|g| g.hash())
    });
    c.string("device_model", rows, |r| r.params.device.model.name());
    c.float("ron", rows, |r| r.params.device.ron);
    c.float("roff", rows, |r| r.params.device.roff);
    c.float("vt", rows, |r| r.params.device.vt);
    c.float("alpha", rows, |r| r.params.device.alpha);
    c.float("beta", rows, |r| r.params.device.beta);
    // VTEAM's fields, null for the Pershin–Di Ventra device.
    fn vteam(r: &InstanceRecord) -> Option<&DeviceParams> {
        Some(&r.params.device).filter(|d| d.model == DeviceModel::Vteam)
    }
    c.opt_float("k_on", rows, |r| vteam(r).map(|d| d.k_on));
    c.opt_float("k_off", rows, |r| vteam(r).map(|d| d.k_off));
    c.opt_float("v_on", rows, |r| vteam(r).map(|d| d.v_on));
    c.opt_float("v_off", rows, |r| vteam(r).map(|d| d.v_off));
    c.opt_float("alpha_on", rows, |r| vteam(r).map(|d| d.alpha_on));
    c.opt_float("alpha_off", rows, |r| vteam(r).map(|d| d.alpha_off));
    c.opt_string("window", rows, |r| {
        vteam(r).map(|d| d.window.name().to_string())
    });
    c.opt_float("p_window", rows, |r| vteam(r).map(|d| d.p_window));
    c.opt_string("r_of_x", rows, |r| {
        vteam(r).map(|d| d.r_of_x.name().to_string())
    });
    c.float("sigma_r0", rows, |r| r.params.device.sigma_r0);
    c.float("sigma_d2d", rows, |r| r.params.device.sigma_d2d);
    c.float("sigma_c2c", rows, |r| r.params.device.sigma_c2c);
    c.float("p_stuck_on", rows, |r| r.params.device.p_stuck_on);
    c.float("p_stuck_off", rows, |r| r.params.device.p_stuck_off);
    c.float("gmin", rows, |r| r.params.circuit.gmin);
    c.string("model", rows, |r| r.params.training.model.name());
    c.string("task", rows, |r| r.params.training.task.name());
    c.int("n_patterns", rows, |r| r.params.n_patterns() as i64);
    c.int("max_eras", rows, |r| r.params.training.max_eras as i64);
    c.float("v_read", rows, |r| r.params.training.v_read);
    c.float("sigma_read", rows, |r| r.params.training.sigma_read);
    c.float("v_punish", rows, |r| r.params.training.v_punish);
    c.float("v_norm", rows, |r| r.params.training.v_norm);
    c.float("tau", rows, |r| r.params.training.tau);
    c.int("n_sub", rows, |r| r.params.training.n_sub as i64);
    c.float("delta", rows, |r| r.params.training.delta);
    c.boolean("tagging", rows, |r| r.params.training.tagging);
    c.float("tag_factor", rows, |r| r.params.training.tag_factor);
    c.float("p_prune", rows, |r| r.params.pruning.p_prune);
    c.float("f_prune", rows, |r| r.params.pruning.f_prune);
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
