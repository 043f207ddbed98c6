//! `cargo bench --bench scaling`: how the cost of a substep grows with the
//! memristor count on the sparse path. Random networks (random_bulk, 8
//! inputs, 8 outputs, `k_attach = 4`) at mean degree 10, from about 1,000 to
//! 50,000 memristors, one instance each trained on one thread with the
//! default solver; prints the time per substep (training time over the
//! nodal solves, reads included) and the exponent of a least-squares fit
//! `time ~ M^k` on log-log axes. `MEMSWEEP_SCALING_MAX_ERAS` (default 3)
//! bounds each training.

use std::time::Instant;

use memsweep::instance::Instance;
use memsweep::params::{Params, Topology};
use memsweep::protocol::training::{run_eras, Trainer};

fn main() {
    let max_eras = std::env::var("MEMSWEEP_SCALING_MAX_ERAS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "{:>7} {:>7} {:>10} {:>9} {:>12} {:>14}",
        "nodes", "edges", "substeps", "seconds", "us/substep", "cg iter/solve"
    );
    let mut points = Vec::new();
    for n_bulk in [200usize, 500, 1000, 2000, 5000, 10000] {
        let mut p = Params::default();
        p.network.topology = Topology::RandomBulk;
        p.network.n_in = 8;
        p.network.n_out = 8;
        p.network.k_attach = 4;
        p.network.n_bulk = n_bulk;
        p.network.p_bulk = 10.0 / (n_bulk as f64 - 1.0);
        let inst = Instance::build(&p, 0, 0, 1);
        let m = inst.network.n_edges();
        let start = Instant::now();
        let mut t = Trainer::<f64>::new(&inst, &p);
        run_eras(&mut t, max_eras, |_, _| ());
        let seconds = start.elapsed().as_secs_f64();
        // Every substep solved, and every read, is one solve and one pass
        // over the edges.
        let stats = t.solve_stats();
        let solves = (stats.iterative_solves + stats.dense_solves).max(1);
        let substeps = solves as f64;
        let per = seconds / substeps;
        println!(
            "{:>7} {:>7} {:>10.0} {:>9.3} {:>12.1} {:>14.1}",
            inst.network.n_nodes(),
            m,
            substeps,
            seconds,
            per * 1e6,
            stats.cg_iterations as f64 / solves as f64
        );
        points.push(((m as f64).ln(), per.ln()));
    }
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    println!("fit: time per substep ~ M^{:.2}", sxy / sxx);
}
