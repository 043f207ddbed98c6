//! The CPU executor: each instance trained by `protocol::training::train`
//! (or, for `model = "abstract"`, `protocol::abstract_model::train`),
//! instances spread over rayon's threads.

use std::sync::Arc;

use rayon::prelude::*;

use crate::backend::Executor;
use crate::instance::Instance;
use crate::params::{ModelKind, Params};
use crate::protocol::abstract_model;
use crate::protocol::training::{train, Outcome};

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
}

impl Executor for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn train(&self, batch: &[(Instance, Arc<Params>)]) -> Vec<Outcome> {
        batch
            .par_iter()
            .map(
                |(inst, params)| match (params.training.model, self.precision) {
                    (ModelKind::Abstract, _) => abstract_model::train(inst, params),
                    (ModelKind::Circuit, Precision::F64) => train::<f64>(inst, params),
                    (ModelKind::Circuit, Precision::F32) => train::<f32>(inst, params),
                },
            )
            .collect()
    }
}
