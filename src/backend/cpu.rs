//! The CPU executor: each instance trained by `protocol::training::train`
//! (or, for `model = "abstract"`, `protocol::abstract_model::train`),
//! instances spread over rayon's threads.

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::Executor;
use crate::instance::Instance;
use crate::model::circuit::SolverChoice;
use crate::params::{ModelKind, Params};
use crate::protocol::abstract_model;
use crate::protocol::training::{train_reusing, Layouts, Outcome};

/// Arithmetic precision of the CPU executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f64: the reference.
    F64,
    /// f32: the GPU shader's arithmetic, to compare the backends closely.
    F32,
}

pub struct Cpu {
    pub precision: Precision,
    /// How each instance's nodal solves are done (`--solver`).
    pub solver: SolverChoice,
}

impl Executor for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn train(&self, batch: &[(Instance, Arc<Params>)]) -> Vec<Outcome> {
        // Each worker keeps the solver layouts of its last instance.
        let layouts = || {
            (
                Layouts::<f64>::with_choice(self.solver),
                Layouts::<f32>::with_choice(self.solver),
            )
        };
        batch
            .par_iter()
            .map_init(layouts, |(l64, l32), (inst, params)| {
                match (params.training.model, self.precision) {
                    (ModelKind::Abstract, _) => abstract_model::train(inst, params),
                    (ModelKind::Circuit, Precision::F64) => train_reusing(inst, params, l64),
                    (ModelKind::Circuit, Precision::F32) => train_reusing(inst, params, l32),
                }
            })
            .collect()
    }
}
