//! One instance: a network, its devices and its task, all drawn from the
//! instance's seed. This is what both backends train.

use crate::model::device::Devices;
use crate::model::network::{Adjacency, Network};
use crate::params::Params;
use crate::protocol::task::Task;
use crate::wiring::FileGraph;

#[derive(Clone, Debug)]
pub struct Instance {
    pub point: usize,
    pub replica: usize,
    pub seed: u64,
    pub network: Network,
    pub adjacency: Adjacency,
    pub devices: Devices,
    pub task: Task,
}

impl Instance {
    pub fn build(params: &Params, point: usize, replica: usize, seed: u64) -> Instance {
        let network = Network::generate(&params.network, seed);
        let adjacency = Adjacency::new(&network);
        let mut devices = Devices::draw(&params.device, network.n_edges(), seed);
        if let Some(g) = params.network.wiring.as_ref() {
            apply_file_values(&mut devices, g);
            // Stuck devices sit at the bounds the file gave them.
            devices.stick(&params.device, seed);
        }
        let task = Task::draw(params.training.task, params.n_patterns(), &network, seed);
        Instance {
            point,
            replica,
            seed,
            network,
            adjacency,
            devices,
            task,
        }
    }
}

/// The per-edge values a graph file gives (MODEL.md section 1, `graph`)
/// replace the drawn ones, after the draw so that no other draw moves. A
/// device whose `roff` ends up at or below its `ron` (one of them from the
/// file, the other drawn) has them swapped, as the draw does; the initial
/// resistance is clipped to the device's range, as drawn ones are.
fn apply_file_values(d: &mut Devices, g: &FileGraph) {
    for e in 0..d.r0.len() {
        let drawn_r0 = d.r0[e];
        d.ron[e] = g.ron[e].unwrap_or(d.ron[e]);
        d.roff[e] = g.roff[e].unwrap_or(d.roff[e]);
        if d.roff[e] <= d.ron[e] {
            std::mem::swap(&mut d.ron[e], &mut d.roff[e]);
        }
        d.vt[e] = g.vt[e].unwrap_or(d.vt[e]);
        d.r0[e] = g.r0[e].unwrap_or(drawn_r0).clamp(d.ron[e], d.roff[e]);
    }
}
