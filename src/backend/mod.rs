//! Executors of the model. One description of a batch of instances (a
//! slice of `Job`s), one protocol (`protocol::training`), and several ways
//! to run it: `cpu` (rayon over instances) and `gpu` (wgpu compute shaders).
//!
//! `simulate` is the whole per-instance pipeline around an executor: set-up
//! from the seed, structural measures of the initial state, training (the
//! executor's part), measures of the final state, the result record.

pub mod cpu;
pub mod gpu;

use std::sync::Arc;

use rayon::prelude::*;

use crate::instance::Instance;
use crate::params::{ModelKind, Params};
use crate::protocol::training::Outcome;
use crate::protocol::{abstract_model, measures};
use crate::results::InstanceRecord;

/// One instance to train: its grid point's parameters and its identity.
#[derive(Clone, Debug)]
pub struct Job {
    pub params: Arc<Params>,
    pub point: usize,
    pub replica: usize,
    pub seed: u64,
}

/// Something that trains a batch of set-up instances.
pub trait Executor: Sync {
    /// The name of this executor (`--backend`), and the `backend` column
    /// of the rows it trains.
    fn name(&self) -> &'static str;
    /// Train every instance; outcomes in the order of `batch`. Instances
    /// of the circuit model; the CPU executor also takes the abstract
    /// model's (`simulate` routes those before any executor).
    fn train(&self, batch: &[(Instance, Arc<Params>)]) -> Vec<Outcome>;
    /// Whether this executor can train instances of `params`; the reason,
    /// with the limit, if not. Called up front, before any work.
    fn check(&self, _params: &Params) -> Result<(), String> {
        Ok(())
    }
    /// Build now what training `batch` would build on first use (the GPU's
    /// workgroup pipelines), so that `memsweep bench` can time it apart:
    /// a cost once per run, not per instance. Training builds whatever
    /// this did not.
    fn warm_up(&self, _batch: &[(Instance, Arc<Params>)]) {}
}

/// Set up, train and measure a batch of jobs.
pub fn simulate(executor: &dyn Executor, jobs: &[Job]) -> Vec<InstanceRecord> {
    // The abstract model (MODEL.md section 11) has no circuit to solve:
    // its walk runs here, on the CPU, whatever the executor, and its rows
    // say so.
    let (circuit, walks): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| jobs[i].params.training.model == ModelKind::Circuit);
    let build = |which: &[usize]| -> Vec<(Instance, Arc<Params>)> {
        which
            .par_iter()
            .map(|&i| {
                let j = &jobs[i];
                (
                    Instance::build(&j.params, j.point, j.replica, j.seed),
                    j.params.clone(),
                )
            })
            .collect()
    };
    let on_executor = build(&circuit);
    let trained = executor.train(&on_executor);
    let walking = build(&walks);
    let walked: Vec<Outcome> = walking
        .par_iter()
        .map(|(inst, params)| abstract_model::train(inst, params))
        .collect();
    let records = |batch: Vec<(Instance, Arc<Params>)>, outs: Vec<Outcome>, backend| {
        batch
            .into_par_iter()
            .zip(outs)
            .map(move |((inst, params), out)| record(backend, &inst, params, out))
            .collect::<Vec<_>>()
    };
    // Back in the order of `jobs`.
    let mut keyed: Vec<(usize, InstanceRecord)> = circuit
        .into_iter()
        .chain(walks)
        .zip(
            records(on_executor, trained, executor.name())
                .into_iter()
                .chain(records(walking, walked, WALK_BACKEND)),
        )
        .collect();
    keyed.sort_by_key(|&(i, _)| i);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// The `backend` column of abstract-model rows: their walk runs on the CPU.
pub const WALK_BACKEND: &str = "cpu";

/// The backends that wrote `records`, comma-separated in order of first
/// appearance (the `memsweep.backend` metadata of a results file).
pub fn backends_of(records: &[InstanceRecord]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for r in records {
        if !seen.contains(&r.backend) {
            seen.push(r.backend);
        }
    }
    seen.join(",")
}

fn record(
    backend: &'static str,
    inst: &Instance,
    params: Arc<Params>,
    out: Outcome,
) -> InstanceRecord {
    let net = &inst.network;
    let all_alive = vec![true; net.n_edges()];
    let floor = params.circuit.gmin * params.training.v_read;
    let wanted = &params.measures;
    let controllability = |r: &[f64], alive: &[bool]| {
        wanted
            .controllability
            .then(|| measures::controllability(net, &params, r, alive))
    };
    InstanceRecord {
        point: inst.point,
        replica: inst.replica,
        seed: inst.seed,
        n_nodes: net.n_nodes(),
        n_edges: net.n_edges(),
        recalled: out.recalled,
        converged_era: out.converged_era,
        eras_run: out.eras_run,
        energy_write: out.energy_write,
        pruned_edges: out.pruned_edges,
        contrast: measures::contrast(&out.final_currents, &inst.task.target, floor),
        cycle_space_dim: wanted
            .cycle_space
            .then(|| measures::cycle_space_dim(net, &all_alive)),
        controllability_initial: controllability(&inst.devices.r0, &all_alive),
        controllability_final: controllability(&out.r_final, &out.alive_final),
        backend,
        trace: out.trace,
        params,
    }
}
