//! Hand-built networks and instances shared by the integration tests.
#![allow(dead_code)]

use memsweep::instance::Instance;
use memsweep::model::device::Devices;
use memsweep::model::network::{Adjacency, Network};
use memsweep::params::Params;
use memsweep::protocol::task::Task;

/// A network from an explicit edge list (tail, head); polarity +1.
pub fn network(n_in: usize, n_hidden: usize, n_out: usize, edges: &[(u32, u32)]) -> Network {
    let n = n_in + n_hidden + n_out;
    let mut layer = vec![1u32; n];
    layer[..n_in].fill(0);
    layer[n_in + n_hidden..].fill(2);
    Network {
        n_in,
        n_hidden,
        n_out,
        tail: edges.iter().map(|e| e.0).collect(),
        head: edges.iter().map(|e| e.1).collect(),
        polarity: vec![1; edges.len()],
        layer,
    }
}

/// An instance of `net` whose devices all have the given resistances and
/// the MODEL.md default bounds and threshold.
pub fn instance(net: Network, r0: &[f64], task: Task) -> Instance {
    let m = net.n_edges();
    assert_eq!(r0.len(), m);
    let d = Params::default().device;
    Instance {
        point: 0,
        replica: 0,
        seed: 12345,
        adjacency: Adjacency::new(&net),
        devices: Devices {
            ron: vec![d.ron; m],
            roff: vec![d.roff; m],
            vt: vec![d.vt; m],
            r0: r0.to_vec(),
            stuck: vec![false; m],
        },
        network: net,
        task,
    }
}

/// An all-to-all layered network with one hidden layer, edges tail-major as
/// `Network::generate` makes them: inputs first, then hidden, then outputs.
pub fn one_layer(n_in: usize, n_hidden: usize, n_out: usize) -> Network {
    let (hidden, outputs) = (
        n_in..n_in + n_hidden,
        n_in + n_hidden..n_in + n_hidden + n_out,
    );
    let mut edges = Vec::new();
    for i in 0..n_in {
        for h in hidden.clone() {
            edges.push((i as u32, h as u32));
        }
    }
    for h in hidden {
        for o in outputs.clone() {
            edges.push((h as u32, o as u32));
        }
    }
    network(n_in, n_hidden, n_out, &edges)
}

/// The 2-4-2 layered network: inputs 0,1; hidden 2..6; outputs 6,7.
pub fn net_242() -> Network {
    one_layer(2, 4, 2)
}

pub fn one_hot_task(n_in: usize, targets: &[usize]) -> Task {
    Task {
        active: (0..targets.len())
            .map(|k| (0..n_in).map(|i| i == k).collect())
            .collect(),
        target: targets.to_vec(),
    }
}
