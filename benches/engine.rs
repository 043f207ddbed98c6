//! `cargo bench`: the standard `memsweep bench` configurations on the CPU
//! backend, printed as a table. The same figures, with JSON output and the
//! GPU backend, come from `memsweep bench`. `MEMSWEEP_BENCH_SCALE`
//! multiplies the instance counts; `MEMSWEEP_BENCH_ONLY` picks one
//! configuration by name.

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::bench::{run_config, standard_configs, table};

fn main() {
    let scale = std::env::var("MEMSWEEP_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    // MEMSWEEP_BENCH_ONLY=8-16-8 times one configuration (for profiling).
    let only = std::env::var("MEMSWEEP_BENCH_ONLY").ok();
    let results: Vec<_> = standard_configs(scale)
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| *o == c.name))
        .map(|c| run_config(c, &cpu, 1))
        .collect();
    print!("{}", table(&results));
}
