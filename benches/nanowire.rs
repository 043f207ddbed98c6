//! `cargo bench --bench nanowire`: how long a nanowire network takes to
//! build (wires dropped, junctions found on the grid, largest component,
//! numbering) from 1,000 to 100,000 wires at the default density and
//! lengths, and the brute-force junction search it replaces, up to 10,000
//! wires. Prints one line per size; the median of five builds.

use std::time::Instant;

use memsweep::model::nanowire;
use memsweep::model::network::Network;
use memsweep::params::{Params, Topology};

fn median_seconds(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    println!(
        "{:>7} {:>9} {:>8} {:>12} {:>14}",
        "wires", "junctions", "nodes", "build s", "brute-force s"
    );
    for n_wires in [1_000usize, 10_000, 100_000] {
        let mut p = Params::default().network;
        p.topology = Topology::Nanowire;
        p.n_wires = n_wires;
        let net = Network::generate(&p, 1);
        let build = median_seconds(|| {
            Network::generate(&p, 1);
        });
        let brute = if n_wires <= 10_000 {
            let wires = nanowire::drop_wires(&p, 1);
            format!(
                "{:.4}",
                median_seconds(|| {
                    nanowire::junctions_brute_force(&wires);
                })
            )
        } else {
            "-".to_string()
        };
        println!(
            "{n_wires:>7} {:>9} {:>8} {build:>12.4} {brute:>14}",
            net.n_edges(),
            net.n_nodes()
        );
    }
}
