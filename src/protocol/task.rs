//! The task (MODEL.md section 5): which inputs each pattern activates and
//! which output it must win.

use rand::Rng;

use crate::model::network::Network;
use crate::params::TaskKind;
use crate::rng::{self, Stream};

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `active[k][i]`: input `i` is active in pattern `k`.
    pub active: Vec<Vec<bool>>,
    /// Target output of each pattern.
    pub target: Vec<usize>,
}

impl Task {
    pub fn n_patterns(&self) -> usize {
        self.target.len()
    }

    pub fn draw(kind: TaskKind, n_patterns: usize, net: &Network, seed: u64) -> Task {
        let mut rng = rng::stream(seed, Stream::Task);
        let mut active = Vec::with_capacity(n_patterns);
        let mut target = Vec::with_capacity(n_patterns);
        for k in 0..n_patterns {
            let pattern = match kind {
                TaskKind::OneHot => (0..net.n_in).map(|i| i == k).collect(),
                TaskKind::RandomBinary => loop {
                    let p: Vec<bool> = (0..net.n_in).map(|_| rng.random::<bool>()).collect();
                    if p.iter().any(|&a| a) {
                        break p;
                    }
                },
            };
            active.push(pattern);
            target.push(rng.random_range(0..net.n_out));
        }
        Task { active, target }
    }
}
