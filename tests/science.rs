//! The seed paper's qualitative findings, on enough instances that the
//! difference is not noise (each test states its statistic).

use std::sync::Arc;

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::backend::{Executor, Job};
use memsweep::instance::Instance;
use memsweep::params::Params;
use memsweep::sweep::instance_seed;

/// Pr[learned_all] over `n` instances of `params`.
fn p_learned_all(params: Params, n: usize, point: usize) -> f64 {
    let params = Arc::new(params);
    let batch: Vec<(Instance, Arc<Params>)> = (0..n)
        .map(|r| {
            let job = Job {
                params: params.clone(),
                point,
                replica: r,
                seed: instance_seed(11, point, r),
            };
            (
                Instance::build(&job.params, point, r, job.seed),
                params.clone(),
            )
        })
        .collect();
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    let outcomes = cpu.train(&batch);
    let p = params.n_patterns();
    outcomes.iter().filter(|o| o.recalled == p).count() as f64 / n as f64
}

/// Two-proportion z statistic for `b > a` on `n` instances each.
fn z_better(a: f64, b: f64, n: usize) -> f64 {
    let pooled = (a + b) / 2.0;
    (b - a) / (2.0 * pooled * (1.0 - pooled) / n as f64).sqrt()
}

const N: usize = 3000;

#[test]
fn symmetric_242_networks_learn_less_often_than_symmetry_broken_ones() {
    let mut symmetric = Params::default();
    symmetric.device.sigma_r0 = 0.0;
    let broken = Params::default(); // sigma_r0 = 0.3
    let (a, b) = (p_learned_all(symmetric, N, 0), p_learned_all(broken, N, 1));
    let z = z_better(a, b, N);
    println!("Pr[learned_all]: {a:.3} vs {b:.3} on {N} instances each, z = {z:.1}");
    // one-sided two-proportion z-test at z > 3 (p < 0.0014)
    assert!(z > 3.0, "symmetric {a:.3}, broken {b:.3}, z = {z:.1}");
}

#[test]
fn pruning_helps_242_networks_learn() {
    let mut no_pruning = Params::default();
    no_pruning.pruning.p_prune = 0.0;
    let pruning = Params::default(); // p_prune = 0.3
    let (a, b) = (
        p_learned_all(no_pruning, N, 0),
        p_learned_all(pruning, N, 1),
    );
    let z = z_better(a, b, N);
    println!("Pr[learned_all]: {a:.3} vs {b:.3} on {N} instances each, z = {z:.1}");
    assert!(
        z > 3.0,
        "without pruning {a:.3}, with pruning {b:.3}, z = {z:.1}"
    );
}
