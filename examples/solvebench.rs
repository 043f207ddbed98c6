use memsweep::model::circuit::{Boundary, Solver};
use memsweep::model::network::{Adjacency, Network};
use memsweep::params::Params;
use memsweep::protocol::phase;
use std::time::Instant;

fn main() {
    let mut p = Params::default().network;
    p.n_in = 8;
    p.hidden = vec![16];
    p.n_out = 8;
    let net0 = Network::generate(&p, 3);
    let (net, _) = net0.grouped();
    let adj = Adjacency::new(&net);
    let m = net.n_edges();
    let g: Vec<f64> = (0..m).map(|e| 1.0 / (1500.0 + 97.0 * e as f64)).collect();
    let alive = vec![true; m];
    let mut active = vec![false; 8];
    active[0] = true;
    let mut b = Boundary::floating(32);
    phase::punish(&net, &active, 0, 3.0, &mut b);
    let mut solver = Solver::<f64>::new(32);
    solver.prepare(&adj, &alive, &b);
    println!("dense {}", solver.dense_size());
    let mut v = vec![0.0; 32];
    solver.sums.fill(&net, &adj, &g, &b);
    solver.solve_from_sums(&g, 1e-12, &b, &mut v, false);
    for reuse in [true] {
        let n = 4_000_000;
        let t = Instant::now();
        for i in 0..n {
            solver.sums.conductance[8 + (i % 16)] *= 1.0000001;
            solver.solve_from_sums(&g, 1e-12, &b, &mut v, reuse);
        }
        let dt = t.elapsed().as_secs_f64() / n as f64;
        println!("reuse {reuse}: {:.1} ns per solve  (v[9] {})", dt * 1e9, v[9]);
    }
}
