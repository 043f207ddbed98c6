//! `memsweep bench`: fixed configurations with MODEL.md's defaults, timed on
//! an executor. Reports instances trained per second and memristor updates
//! per second (alive edges x substeps integrated, per second). Timings live
//! here and in `benches/`, never in tests.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Executor, Job};
use crate::instance::Instance;
use crate::params::{Params, Topology};
use crate::sweep::instance_seed;

/// One benchmark configuration: a layered or random_bulk one-hot network
/// with defaults.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub name: String,
    pub n_in: usize,
    pub hidden: Vec<usize>,
    pub n_out: usize,
    /// `(n_bulk, p_bulk, k_attach)` of a random_bulk network; `None` for a
    /// layered one.
    pub bulk: Option<(usize, f64, usize)>,
    pub instances: usize,
}

impl BenchConfig {
    pub fn new(n_in: usize, hidden: &[usize], n_out: usize, instances: usize) -> Self {
        let h: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
        let name = if hidden.len() == 1 {
            format!("{n_in}-{}-{n_out}", h[0])
        } else {
            format!("{n_in}-[{}]-{n_out}", h.join(","))
        };
        BenchConfig {
            name,
            n_in,
            hidden: hidden.to_vec(),
            n_out,
            bulk: None,
            instances,
        }
    }

    /// A random_bulk network, named `bulk-NODES` after its node count.
    pub fn random_bulk(
        n_in: usize,
        n_bulk: usize,
        p_bulk: f64,
        k_attach: usize,
        n_out: usize,
        instances: usize,
    ) -> Self {
        BenchConfig {
            name: format!("bulk-{}", n_in + n_bulk + n_out),
            n_in,
            hidden: Vec::new(),
            n_out,
            bulk: Some((n_bulk, p_bulk, k_attach)),
            instances,
        }
    }

    pub fn params(&self) -> Params {
        let mut p = Params::default();
        p.network.n_in = self.n_in;
        p.network.hidden = self.hidden.clone();
        p.network.n_out = self.n_out;
        if let Some((n_bulk, p_bulk, k_attach)) = self.bulk {
            p.network.topology = Topology::RandomBulk;
            p.network.n_bulk = n_bulk;
            p.network.p_bulk = p_bulk;
            p.network.k_attach = k_attach;
        }
        p
    }
}

/// The standard set; `scale` multiplies every instance count.
pub fn standard_configs(scale: f64) -> Vec<BenchConfig> {
    let n = |base: usize| ((base as f64 * scale).round() as usize).max(1);
    vec![
        BenchConfig::new(2, &[4], 2, n(2000)),
        BenchConfig::new(8, &[16], 8, n(400)),
        BenchConfig::new(16, &[64], 16, n(40)),
        BenchConfig::new(8, &[32, 32, 32], 8, n(60)),
        // A sparse physical-scale network: 1,040 nodes, mean degree 10.
        BenchConfig::random_bulk(8, 1024, 0.0098, 4, 8, n(4)),
        // Wide layered networks, beyond the GPU's dense path (its
        // iterative path takes them): 8,192 and 32,768 memristors.
        BenchConfig::new(32, &[128], 32, n(2)),
        BenchConfig::new(64, &[256], 64, n(1)),
    ]
}

#[derive(Clone, Debug)]
pub struct BenchResult {
    pub config: String,
    pub backend: String,
    pub instances: usize,
    pub seconds: f64,
    /// Of `seconds`, the time spent setting up the instances (networks,
    /// devices, tasks) before training.
    pub build_seconds: f64,
    /// Not in `seconds`: building what the executor builds once per run
    /// for these networks (the GPU's workgroup pipelines; 0 on the CPU).
    pub compile_seconds: f64,
    pub instances_per_s: f64,
    pub updates_per_s: f64,
    pub mean_recalled_frac: f64,
    pub p_learned_all: f64,
}

impl BenchResult {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"config\":\"{}\",\"backend\":\"{}\",\"instances\":{},\"seconds\":{:.6},\"build_seconds\":{:.6},\"compile_seconds\":{:.6},\"instances_per_s\":{:.3},\"updates_per_s\":{:.4e},\"mean_recalled_frac\":{:.4},\"p_learned_all\":{:.4}}}",
            self.config,
            self.backend,
            self.instances,
            self.seconds,
            self.build_seconds,
            self.compile_seconds,
            self.instances_per_s,
            self.updates_per_s,
            self.mean_recalled_frac,
            self.p_learned_all
        )
    }
}

/// Set up and train `config.instances` instances on `executor`, timing set-up
/// and training together (the structural measures are not timed: they are
/// not part of training and the baseline does not compute them). What the
/// executor builds once per run (`Executor::warm_up`) is timed apart.
pub fn run_config(config: &BenchConfig, executor: &dyn Executor, seed: u64) -> BenchResult {
    let params = Arc::new(config.params());
    let jobs: Vec<Job> = (0..config.instances)
        .map(|replica| Job {
            params: params.clone(),
            point: 0,
            replica,
            seed: instance_seed(seed, 0, replica),
        })
        .collect();
    let start = Instant::now();
    let batch: Vec<(Instance, Arc<Params>)> = {
        use rayon::prelude::*;
        jobs.par_iter()
            .map(|j| {
                (
                    Instance::build(&j.params, j.point, j.replica, j.seed),
                    j.params.clone(),
                )
            })
            .collect()
    };
    let build_seconds = start.elapsed().as_secs_f64();
    let compile = Instant::now();
    executor.warm_up(&batch);
    let compile_seconds = compile.elapsed().as_secs_f64();
    let train = Instant::now();
    let outcomes = executor.train(&batch);
    let seconds = build_seconds + train.elapsed().as_secs_f64();
    let updates: u64 = outcomes.iter().map(|o| o.updates).sum();
    let p = params.n_patterns() as f64;
    let n = outcomes.len() as f64;
    BenchResult {
        config: config.name.clone(),
        backend: executor.name().to_string(),
        instances: outcomes.len(),
        seconds,
        build_seconds,
        compile_seconds,
        instances_per_s: n / seconds,
        updates_per_s: updates as f64 / seconds,
        mean_recalled_frac: outcomes.iter().map(|o| o.recalled as f64 / p).sum::<f64>() / n,
        p_learned_all: outcomes.iter().filter(|o| o.recalled as f64 == p).count() as f64 / n,
    }
}

/// A table of results for the terminal. A row of another backend whose
/// configuration also ran on the CPU shows its speed-up over the CPU
/// (instances per second, ratio).
pub fn table(results: &[BenchResult]) -> String {
    let mut out = format!(
        "{:<18} {:>12} {:>9} {:>9} {:>14} {:>14} {:>10} {:>8} {:>8}\n",
        "config",
        "backend",
        "instances",
        "seconds",
        "instances/s",
        "updates/s",
        "recalled/P",
        "Pr[all]",
        "x cpu"
    );
    for r in results {
        let cpu = results
            .iter()
            .find(|c| c.backend == "cpu" && c.config == r.config);
        let speedup = match cpu {
            Some(c) if !std::ptr::eq(c, r) => {
                let ratio = r.instances_per_s / c.instances_per_s;
                if ratio < 0.1 {
                    format!("{ratio:.3}")
                } else {
                    format!("{ratio:.1}")
                }
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<18} {:>12} {:>9} {:>9.2} {:>14} {:>14.3e} {:>10.3} {:>8.3} {:>8}\n",
            r.config,
            r.backend,
            r.instances,
            r.seconds,
            per_second(r.instances_per_s),
            r.updates_per_s,
            r.mean_recalled_frac,
            r.p_learned_all,
            speedup
        ));
    }
    out
}

/// Instances per second to one decimal, or to three below one (the dense
/// path on large networks trains a few hundredths per second).
pub fn per_second(rate: f64) -> String {
    if rate < 1.0 {
        format!("{rate:.3}")
    } else {
        format!("{rate:.1}")
    }
}
