//! The abstract Chialvo–Bak baseline (MODEL.md section 11): the same
//! network and task as the circuit model, but each edge is a bare weight and
//! a pattern is answered by a walk along the largest weights. It shows what
//! learning from mistakes achieves on ideal hardware.
//!
//! Not here: circuit physics, normalization, pruning. The instance's devices
//! are drawn (`Instance::build`) but never touched, so the `Outcome` carries
//! them unchanged: the record's controllability is that of the network as
//! built, before and after. Circuit-only measures are zero or absent: no
//! energy, no pruned edges, no read power, no currents (so no contrast).

use rand::Rng;
use rand_pcg::Pcg64;

use crate::instance::Instance;
use crate::params::{Params, Topology};
use crate::protocol::training::{EraRead, Outcome};
use crate::rng::{self, Stream};

/// Where a walk went: the edges it took, in order, and the output it
/// reached (`None` when it stopped at a node with nowhere to go).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    pub edges: Vec<usize>,
    pub winner: Option<usize>,
}

/// The weights of one instance in training, and its depression draws.
pub struct Abstract<'a> {
    inst: &'a Instance,
    params: &'a Params,
    /// `w_e` of every edge; uniform in `[0, 1)` at the start.
    pub weights: Vec<f64>,
    /// Edges that were on a walk that ended at its target (tagging).
    pub tagged: Vec<bool>,
    depression: Pcg64,
    visited: Vec<bool>,
}

impl<'a> Abstract<'a> {
    pub fn new(inst: &'a Instance, params: &'a Params) -> Self {
        let mut draw = rng::stream(inst.seed, Stream::AbstractWeights);
        let m = inst.network.n_edges();
        Abstract {
            inst,
            params,
            weights: (0..m).map(|_| draw.random::<f64>()).collect(),
            tagged: vec![false; m],
            depression: rng::stream(inst.seed, Stream::AbstractDepression),
            visited: vec![false; inst.network.n_nodes()],
        }
    }

    /// The walk of pattern `k`, from its active input (one_hot: exactly
    /// one) along the outgoing edge of largest weight, lowest edge index on
    /// exact ties, until it reaches an output. Changes no weight.
    ///
    /// Layered networks walk tail to head, layer by layer. In random_bulk
    /// networks a bulk edge can be walked either way, an input edge only
    /// into the bulk and an output edge only into the output; the walk never
    /// revisits a node and gives up after `n_nodes` steps.
    pub fn walk(&mut self, k: usize) -> Walk {
        let net = &self.inst.network;
        let adj = &self.inst.adjacency;
        let start = self.inst.task.active[k]
            .iter()
            .position(|&a| a)
            .expect("a pattern activates an input");
        let topology = self.params.network.topology;
        let bulk_undirected = topology == Topology::RandomBulk;
        // Physical wiring (nanowire, graph): every junction conducts both
        // ways, so the walk may take any edge not into an input.
        let undirected = matches!(topology, Topology::Nanowire | Topology::Graph);
        self.visited.fill(false);
        let mut node = start;
        let mut edges = Vec::new();
        let first_output = net.output_node(0);
        for _ in 0..net.n_nodes() {
            if node >= first_output {
                return Walk {
                    edges,
                    winner: Some(node - first_output),
                };
            }
            self.visited[node] = true;
            let mut best: Option<usize> = None;
            for j in adj.range(node) {
                let (e, other) = (adj.edge[j] as usize, adj.other[j] as usize);
                let outgoing = net.tail[e] as usize == node
                    || undirected
                    || (bulk_undirected && node >= net.n_in && other < first_output);
                if !outgoing || other < net.n_in || self.visited[other] {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        self.weights[e] > self.weights[b]
                            || (self.weights[e] == self.weights[b] && e < b)
                    }
                };
                if better {
                    best = Some(e);
                }
            }
            let Some(e) = best else { break };
            edges.push(e);
            node = if net.tail[e] as usize == node {
                net.head[e] as usize
            } else {
                net.tail[e] as usize
            };
        }
        Walk {
            edges,
            winner: None,
        }
    }

    /// After a mistake: lower every edge of the walk by an independent
    /// uniform draw from `[0, delta)`, times `tag_factor` for a tagged edge
    /// when tagging is on.
    pub fn depress(&mut self, walk: &Walk) {
        let t = &self.params.training;
        for &e in &walk.edges {
            let mut d = self.depression.random::<f64>() * t.delta;
            if t.tagging && self.tagged[e] {
                d *= t.tag_factor;
            }
            self.weights[e] -= d;
        }
    }

    /// Present pattern `k` in training: walk, tag a walk that reached its
    /// target, depress one that did not. Returns whether it was correct.
    pub fn present(&mut self, k: usize) -> bool {
        let walk = self.walk(k);
        let correct = walk.winner == Some(self.inst.task.target[k]);
        if correct {
            walk.edges.iter().for_each(|&e| self.tagged[e] = true);
        } else {
            self.depress(&walk);
        }
        correct
    }
}

/// Train one instance with the abstract rule (eras, convergence and the
/// final read as in MODEL.md section 6) and read it out.
pub fn train(inst: &Instance, params: &Params) -> Outcome {
    let p = inst.task.n_patterns();
    let mut a = Abstract::new(inst, params);
    let mut trace = Vec::with_capacity(p * params.training.max_eras);
    let mut converged_era = None;
    let mut eras_run = 0;
    for era in 0..params.training.max_eras as u32 {
        let mut mistakes = 0;
        for k in 0..p {
            let correct = a.present(k);
            trace.push(EraRead {
                era,
                pattern: k as u32,
                correct,
                read_power: 0.0,
            });
            mistakes += !correct as usize;
        }
        eras_run = era + 1;
        if mistakes == 0 {
            converged_era = Some(era);
            break;
        }
    }
    let recalled = (0..p)
        .filter(|&k| a.walk(k).winner == Some(inst.task.target[k]))
        .count();
    Outcome {
        recalled,
        converged_era,
        eras_run,
        energy_write: 0.0,
        pruned_edges: 0,
        final_currents: Vec::new(),
        r_final: inst.devices.r0.clone(),
        alive_final: vec![true; inst.network.n_edges()],
        updates: 0,
        trace,
    }
}
