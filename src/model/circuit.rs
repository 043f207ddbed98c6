//! The nodal solve (MODEL.md section 3): node voltages for one boundary
//! configuration and one set of conductances, and the quantities read off
//! them (output currents, dissipated power, edge voltages).
//!
//! Not here: which nodes a protocol phase drives (`protocol::phase`) or how
//! the state moves (`model::device`).
//!
//! The solve exploits the structure of these networks instead of factorising
//! the whole free-node Laplacian. `prepare` (once per boundary, i.e. per
//! pulse) splits the free nodes into
//! - isolated: no alive path to a driven or grounded node; with the `gmin`
//!   leak to ground they sit at exactly 0 V and leave the system;
//! - eliminated: an independent set of the free-free graph (in a layered
//!   network, whole hidden layers); each is a weighted mean of its
//!   neighbours, so it is eliminated exactly by a Schur complement;
//! - dense: the rest, solved by a dense Cholesky factorisation of that
//!   Schur complement, which is symmetric positive definite.
//! `solve` (once per substep) assembles and factorises the small dense
//! system. Both backends run these same steps (`shaders/train.wgsl`).

use crate::model::network::{Adjacency, Network};
use crate::real::Real;

/// Which nodes a phase fixes, and at what voltage (volt). A fixed node at 0 V
/// is grounded; a free node floats (it still leaks to ground through `gmin`).
#[derive(Clone, Debug, PartialEq)]
pub struct Boundary<F> {
    pub fixed: Vec<bool>,
    pub volts: Vec<F>,
}

impl<F: Real> Boundary<F> {
    pub fn floating(n_nodes: usize) -> Self {
        Boundary {
            fixed: vec![false; n_nodes],
            volts: vec![F::ZERO; n_nodes],
        }
    }

    pub fn drive(&mut self, node: usize, volts: F) {
        self.fixed[node] = true;
        self.volts[node] = volts;
    }

    pub fn ground(&mut self, node: usize) {
        self.drive(node, F::ZERO);
    }
}

/// Role of a node in one solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Fixed,
    Isolated,
    Eliminated,
    Dense,
}

/// Reusable buffers of the nodal solve for networks of up to `n_nodes`.
#[derive(Clone, Debug)]
pub struct Solver<F> {
    pub role: Vec<NodeRole>,
    /// Index of each dense node in the dense system.
    pos: Vec<usize>,
    dense: Vec<usize>,
    eliminated: Vec<usize>,
    /// Per node: total conductance to everything (`gmin` included), and the
    /// current injected by fixed neighbours.
    diag: Vec<F>,
    inject: Vec<F>,
    /// Dense Schur complement, row-major, factorised in place.
    schur: Vec<F>,
    rhs: Vec<F>,
    order: Vec<usize>,
    free_degree: Vec<usize>,
    stack: Vec<usize>,
}

impl<F: Real> Solver<F> {
    pub fn new(n_nodes: usize) -> Self {
        Solver {
            role: vec![NodeRole::Fixed; n_nodes],
            pos: vec![usize::MAX; n_nodes],
            dense: Vec::with_capacity(n_nodes),
            eliminated: Vec::with_capacity(n_nodes),
            diag: vec![F::ZERO; n_nodes],
            inject: vec![F::ZERO; n_nodes],
            schur: Vec::with_capacity(n_nodes * n_nodes),
            rhs: Vec::with_capacity(n_nodes),
            order: Vec::with_capacity(n_nodes),
            free_degree: vec![0; n_nodes],
            stack: Vec::with_capacity(n_nodes),
        }
    }

    /// Number of nodes in the dense system of the last `prepare`.
    pub fn dense_size(&self) -> usize {
        self.dense.len()
    }

    /// Classify the nodes for `boundary` given which edges are `alive`.
    pub fn prepare(&mut self, adj: &Adjacency, alive: &[bool], boundary: &Boundary<F>) {
        let n = boundary.fixed.len();
        // Free nodes reachable from a fixed node through alive edges.
        self.stack.clear();
        for i in 0..n {
            if boundary.fixed[i] {
                self.role[i] = NodeRole::Fixed;
                self.stack.push(i);
            } else {
                self.role[i] = NodeRole::Isolated;
            }
        }
        while let Some(i) = self.stack.pop() {
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if alive[adj.edge[k] as usize] && self.role[j] == NodeRole::Isolated {
                    self.role[j] = NodeRole::Dense;
                    self.stack.push(j);
                }
            }
        }
        // Greedy independent set, fewest free neighbours first, so that the
        // dense remainder is small.
        self.order.clear();
        for i in 0..n {
            if self.role[i] == NodeRole::Dense {
                self.order.push(i);
            }
        }
        for &i in &self.order {
            self.free_degree[i] = adj
                .range(i)
                .filter(|&k| {
                    alive[adj.edge[k] as usize]
                        && self.role[adj.other[k] as usize] != NodeRole::Fixed
                })
                .count();
        }
        let degree = &self.free_degree;
        self.order.sort_unstable_by_key(|&i| (degree[i], i));
        self.eliminated.clear();
        self.dense.clear();
        for idx in 0..self.order.len() {
            let i = self.order[idx];
            let next_to_eliminated = adj.range(i).any(|k| {
                alive[adj.edge[k] as usize]
                    && self.role[adj.other[k] as usize] == NodeRole::Eliminated
            });
            if next_to_eliminated {
                self.pos[i] = self.dense.len();
                self.dense.push(i);
            } else {
                self.role[i] = NodeRole::Eliminated;
                self.eliminated.push(i);
            }
        }
    }

    /// Node voltages `v` (volt) for conductances `g` (siemens, 0 for a pruned
    /// edge) under the boundary of the last `prepare`.
    ///
    /// Assumes `prepare` saw the same `alive` mask and boundary; `v` has one
    /// entry per node.
    pub fn solve(
        &mut self,
        adj: &Adjacency,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
    ) {
        let n = boundary.fixed.len();
        for i in 0..n {
            match self.role[i] {
                NodeRole::Fixed => v[i] = boundary.volts[i],
                NodeRole::Isolated => v[i] = F::ZERO,
                NodeRole::Eliminated | NodeRole::Dense => {
                    let mut diag = gmin;
                    let mut inject = F::ZERO;
                    for k in adj.range(i) {
                        let ge = g[adj.edge[k] as usize];
                        diag += ge;
                        let j = adj.other[k] as usize;
                        if self.role[j] == NodeRole::Fixed {
                            inject += ge * boundary.volts[j];
                        }
                    }
                    self.diag[i] = diag;
                    self.inject[i] = inject;
                }
            }
        }
        let nd = self.dense.len();
        self.schur.clear();
        self.schur.resize(nd * nd, F::ZERO);
        self.rhs.clear();
        for (a, &i) in self.dense.iter().enumerate() {
            self.schur[a * nd + a] = self.diag[i];
            self.rhs.push(self.inject[i]);
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if self.role[j] == NodeRole::Dense {
                    self.schur[a * nd + self.pos[j]] -= g[adj.edge[k] as usize];
                }
            }
        }
        // Eliminating node i couples every pair of its (dense) neighbours.
        for &i in &self.eliminated {
            let inv_d = F::ONE / self.diag[i];
            let share = self.inject[i] * inv_d;
            for k1 in adj.range(i) {
                let j1 = adj.other[k1] as usize;
                if self.role[j1] != NodeRole::Dense {
                    continue;
                }
                let g1 = g[adj.edge[k1] as usize];
                let a = self.pos[j1];
                self.rhs[a] += g1 * share;
                let g1_over_d = g1 * inv_d;
                for k2 in adj.range(i) {
                    let j2 = adj.other[k2] as usize;
                    if self.role[j2] == NodeRole::Dense {
                        self.schur[a * nd + self.pos[j2]] -= g1_over_d * g[adj.edge[k2] as usize];
                    }
                }
            }
        }
        cholesky_solve(&mut self.schur, &mut self.rhs, nd);
        for (a, &i) in self.dense.iter().enumerate() {
            v[i] = self.rhs[a];
        }
        for &i in &self.eliminated {
            let mut total = self.inject[i];
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if self.role[j] == NodeRole::Dense {
                    total += g[adj.edge[k] as usize] * v[j];
                }
            }
            v[i] = total / self.diag[i];
        }
    }
}

/// Solve `A x = b` in place for a symmetric positive definite `A` (`n x n`,
/// row-major). `A` becomes its Cholesky factor, `b` becomes `x`.
pub fn cholesky_solve<F: Real>(a: &mut [F], b: &mut [F], n: usize) {
    cholesky_factor(a, n);
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
}

/// Overwrite the lower triangle of the symmetric positive definite `a`
/// (`n x n`, row-major) with `L`, where `A = L L^T`. The upper triangle is
/// neither read nor written.
pub fn cholesky_factor<F: Real>(a: &mut [F], n: usize) {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        let inv = F::ONE / d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s * inv;
        }
    }
}

/// Power dissipated in the network, `sum_e g_e (V_u - V_v)^2` (watt).
pub fn power<F: Real>(net: &Network, g: &[F], v: &[F]) -> F {
    let mut p = F::ZERO;
    for e in 0..net.n_edges() {
        let dv = v[net.tail[e] as usize] - v[net.head[e] as usize];
        p += g[e] * dv * dv;
    }
    p
}

/// Current (ampere) flowing from the network into the ammeter at `node`.
pub fn node_current<F: Real>(adj: &Adjacency, g: &[F], v: &[F], node: usize) -> F {
    let mut i_out = F::ZERO;
    for k in adj.range(node) {
        i_out += g[adj.edge[k] as usize] * (v[adj.other[k] as usize] - v[node]);
    }
    i_out
}

/// Voltage across edge `e` in the device's own orientation, `s_e (V_u - V_v)`.
#[inline(always)]
pub fn edge_voltage<F: Real>(net: &Network, v: &[F], e: usize) -> F {
    let dv = v[net.tail[e] as usize] - v[net.head[e] as usize];
    if net.polarity[e] < 0 {
        -dv
    } else {
        dv
    }
}
