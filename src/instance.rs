//! One instance: a network, its devices and its task, all drawn from the
//! instance's seed. This is what both backends train.

use crate::model::device::Devices;
use crate::model::network::{Adjacency, Network};
use crate::params::Params;
use crate::protocol::task::Task;

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
        let devices = Devices::draw(&params.device, network.n_edges(), seed);
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
