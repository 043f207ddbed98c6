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

/// Per-node sums a solve starts from: the total conductance of each node's
/// edges and the current its fixed neighbours inject. They are accumulated
/// edge by edge, so that the device update of a substep can refill them in
/// the same pass over the edges (`Trainer::pulse`).
#[derive(Clone, Debug)]
pub struct NodeSums<F> {
    pub conductance: Vec<F>,
    pub inject: Vec<F>,
}

impl<F: Real> NodeSums<F> {
    pub fn new(n_nodes: usize) -> Self {
        NodeSums {
            conductance: vec![F::ZERO; n_nodes],
            inject: vec![F::ZERO; n_nodes],
        }
    }

    pub fn clear(&mut self) {
        self.conductance.fill(F::ZERO);
        self.inject.fill(F::ZERO);
    }

    /// Add edge `(u, v)` of conductance `g`.
    #[inline(always)]
    pub fn add_edge(&mut self, u: usize, v: usize, g: F, boundary: &Boundary<F>) {
        self.conductance[u] += g;
        self.conductance[v] += g;
        if boundary.fixed[v] {
            self.inject[u] += g * boundary.volts[v];
        }
        if boundary.fixed[u] {
            self.inject[v] += g * boundary.volts[u];
        }
    }

    /// Recompute from every edge.
    pub fn fill(&mut self, net: &Network, g: &[F], boundary: &Boundary<F>) {
        self.clear();
        for e in 0..net.n_edges() {
            self.add_edge(net.tail[e] as usize, net.head[e] as usize, g[e], boundary);
        }
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

/// How the free nodes of one boundary are split (see the module comment).
#[derive(Clone, Debug, Default)]
struct Layout {
    role: Vec<NodeRole>,
    /// Index of each dense node in the dense system.
    pos: Vec<usize>,
    dense: Vec<usize>,
    eliminated: Vec<usize>,
    /// For the `j`-th eliminated node, entries `link_start[j]..link_start[j
    /// + 1]` of `link_pos` and `link_edge` list its alive edges to dense
    /// nodes (dense index, edge), in increasing dense index.
    link_start: Vec<usize>,
    link_pos: Vec<usize>,
    link_edge: Vec<usize>,
}

impl Layout {
    fn new(n_nodes: usize) -> Self {
        Layout {
            role: vec![NodeRole::Fixed; n_nodes],
            pos: vec![usize::MAX; n_nodes],
            ..Layout::default()
        }
    }
}

/// Reusable buffers of the nodal solve for networks of up to `n_nodes`.
#[derive(Clone, Debug)]
pub struct Solver<F> {
    /// The node split of the current boundary.
    layout: Layout,
    /// Layouts kept per boundary slot (see `prepare_cached`).
    cache: Vec<Layout>,
    cached: Vec<bool>,
    active_slot: Option<usize>,
    /// The sums the next solve starts from.
    pub sums: NodeSums<F>,
    /// Per free node: total conductance to everything, `gmin` included.
    diag: Vec<F>,
    /// Dense Schur complement, row-major, lower triangle; factorised in place.
    schur: Vec<F>,
    rhs: Vec<F>,
    link_g: Vec<F>,
    order: Vec<usize>,
    free_degree: Vec<usize>,
    stack: Vec<usize>,
}

impl<F: Real> Solver<F> {
    pub fn new(n_nodes: usize) -> Self {
        Solver {
            layout: Layout::new(n_nodes),
            cache: Vec::new(),
            cached: Vec::new(),
            active_slot: None,
            sums: NodeSums::new(n_nodes),
            diag: vec![F::ZERO; n_nodes],
            schur: Vec::with_capacity(n_nodes * n_nodes),
            rhs: Vec::with_capacity(n_nodes),
            link_g: Vec::with_capacity(n_nodes),
            order: Vec::with_capacity(n_nodes),
            free_degree: vec![0; n_nodes],
            stack: Vec::with_capacity(n_nodes),
        }
    }

    /// Role of `node` in the current layout.
    pub fn role(&self, node: usize) -> NodeRole {
        self.layout.role[node]
    }

    /// As `prepare`, for a boundary the caller numbers `slot`: a layout is
    /// computed once per slot and reused until `invalidate_cache` (which the
    /// caller must call when the alive edges change). The protocol has few
    /// distinct boundaries (a read per pattern, normalize, a punish per
    /// pattern and winner), each applied many times.
    pub fn prepare_cached(
        &mut self,
        slot: usize,
        adj: &Adjacency,
        alive: &[bool],
        boundary: &Boundary<F>,
    ) {
        if self.active_slot == Some(slot) {
            return;
        }
        if self.cache.len() <= slot {
            self.cache.resize_with(slot + 1, Layout::default);
            self.cached.resize(slot + 1, false);
        }
        if let Some(active) = self.active_slot.take() {
            std::mem::swap(&mut self.layout, &mut self.cache[active]);
        }
        if self.cached[slot] {
            std::mem::swap(&mut self.layout, &mut self.cache[slot]);
        } else {
            if self.layout.role.len() != boundary.fixed.len() {
                self.layout = Layout::new(boundary.fixed.len());
            }
            self.prepare(adj, alive, boundary);
            self.cached[slot] = true;
        }
        self.active_slot = Some(slot);
    }

    /// Forget every cached layout.
    pub fn invalidate_cache(&mut self) {
        self.cached.fill(false);
        self.active_slot = None;
    }

    /// Number of nodes in the dense system of the last `prepare`.
    pub fn dense_size(&self) -> usize {
        self.layout.dense.len()
    }

    /// Classify the nodes for `boundary` given which edges are `alive`.
    pub fn prepare(&mut self, adj: &Adjacency, alive: &[bool], boundary: &Boundary<F>) {
        if let Some(active) = self.active_slot.take() {
            // the active layout belongs to a slot: leave it there
            std::mem::swap(&mut self.layout, &mut self.cache[active]);
            self.layout = Layout::new(boundary.fixed.len());
        }
        let n = boundary.fixed.len();
        // Free nodes reachable from a fixed node through alive edges.
        self.stack.clear();
        for i in 0..n {
            if boundary.fixed[i] {
                self.layout.role[i] = NodeRole::Fixed;
                self.stack.push(i);
            } else {
                self.layout.role[i] = NodeRole::Isolated;
            }
        }
        while let Some(i) = self.stack.pop() {
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if alive[adj.edge[k] as usize] && self.layout.role[j] == NodeRole::Isolated {
                    self.layout.role[j] = NodeRole::Dense;
                    self.stack.push(j);
                }
            }
        }
        // Greedy independent set, fewest free neighbours first, so that the
        // dense remainder is small.
        self.order.clear();
        for i in 0..n {
            if self.layout.role[i] == NodeRole::Dense {
                self.order.push(i);
            }
        }
        for &i in &self.order {
            self.free_degree[i] = adj
                .range(i)
                .filter(|&k| {
                    alive[adj.edge[k] as usize]
                        && self.layout.role[adj.other[k] as usize] != NodeRole::Fixed
                })
                .count();
        }
        let degree = &self.free_degree;
        self.order.sort_unstable_by_key(|&i| (degree[i], i));
        self.layout.eliminated.clear();
        self.layout.dense.clear();
        for idx in 0..self.order.len() {
            let i = self.order[idx];
            let next_to_eliminated = adj.range(i).any(|k| {
                alive[adj.edge[k] as usize]
                    && self.layout.role[adj.other[k] as usize] == NodeRole::Eliminated
            });
            if next_to_eliminated {
                self.layout.pos[i] = self.layout.dense.len();
                self.layout.dense.push(i);
            } else {
                self.layout.role[i] = NodeRole::Eliminated;
                self.layout.eliminated.push(i);
            }
        }
        // Each eliminated node's links to the dense system. Adjacency lists
        // run in increasing node index, and dense indices were handed out
        // in `order`, so sort each node's links by dense index.
        self.layout.link_start.clear();
        self.layout.link_pos.clear();
        self.layout.link_edge.clear();
        for &i in &self.layout.eliminated {
            self.layout.link_start.push(self.layout.link_pos.len());
            let first = self.layout.link_pos.len();
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if alive[adj.edge[k] as usize] && self.layout.role[j] == NodeRole::Dense {
                    self.layout.link_pos.push(self.layout.pos[j]);
                    self.layout.link_edge.push(adj.edge[k] as usize);
                }
            }
            sort_links(
                &mut self.layout.link_pos[first..],
                &mut self.layout.link_edge[first..],
            );
        }
        self.layout.link_start.push(self.layout.link_pos.len());
    }

    /// Node voltages `v` (volt) for conductances `g` (siemens, 0 for a pruned
    /// edge) under the boundary of the last `prepare`.
    ///
    /// Assumes `prepare` saw the same `alive` mask and boundary; `v` has one
    /// entry per node.
    pub fn solve(
        &mut self,
        net: &Network,
        adj: &Adjacency,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
    ) {
        self.sums.fill(net, g, boundary);
        self.solve_from_sums(adj, g, gmin, boundary, v);
    }

    /// As `solve`, with `self.sums` already filled for `g` and `boundary`.
    pub fn solve_from_sums(
        &mut self,
        adj: &Adjacency,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
    ) {
        let n = boundary.fixed.len();
        for i in 0..n {
            match self.layout.role[i] {
                NodeRole::Fixed => v[i] = boundary.volts[i],
                NodeRole::Isolated => v[i] = F::ZERO,
                NodeRole::Eliminated | NodeRole::Dense => {
                    self.diag[i] = gmin + self.sums.conductance[i]
                }
            }
        }
        let nd = self.layout.dense.len();
        self.schur.clear();
        self.schur.resize(nd * nd, F::ZERO);
        self.rhs.clear();
        for (a, &i) in self.layout.dense.iter().enumerate() {
            self.schur[a * nd + a] = self.diag[i];
            self.rhs.push(self.sums.inject[i]);
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if self.layout.role[j] == NodeRole::Dense && self.layout.pos[j] < a {
                    self.schur[a * nd + self.layout.pos[j]] -= g[adj.edge[k] as usize];
                }
            }
        }
        // Eliminating node i couples every pair of its dense neighbours: a
        // rank-one update of the lower triangle.
        for (idx, &i) in self.layout.eliminated.iter().enumerate() {
            let links = self.layout.link_start[idx]..self.layout.link_start[idx + 1];
            let inv_d = F::ONE / self.diag[i];
            let share = self.sums.inject[i] * inv_d;
            self.link_g.clear();
            self.link_g
                .extend(self.layout.link_edge[links.clone()].iter().map(|&e| g[e]));
            let pos = &self.layout.link_pos[links];
            let contiguous = pos
                .last()
                .is_some_and(|&last| last + 1 - pos[0] == pos.len());
            for (a, &pa) in pos.iter().enumerate() {
                let ga = self.link_g[a];
                self.rhs[pa] += ga * share;
                let ga_over_d = ga * inv_d;
                if contiguous {
                    // The common case (a node linked to a whole block of the
                    // dense system): one contiguous, vectorisable update.
                    let row = &mut self.schur[pa * nd + pos[0]..=pa * nd + pa];
                    for (x, &gb) in row.iter_mut().zip(&self.link_g[..=a]) {
                        *x -= ga_over_d * gb;
                    }
                } else {
                    let row = &mut self.schur[pa * nd..=pa * nd + pa];
                    for (&pb, &gb) in pos[..=a].iter().zip(&self.link_g[..=a]) {
                        row[pb] -= ga_over_d * gb;
                    }
                }
            }
        }
        cholesky_solve(&mut self.schur, &mut self.rhs, nd);
        for (a, &i) in self.layout.dense.iter().enumerate() {
            v[i] = self.rhs[a];
        }
        for (idx, &i) in self.layout.eliminated.iter().enumerate() {
            let links = self.layout.link_start[idx]..self.layout.link_start[idx + 1];
            let mut total = self.sums.inject[i];
            for k in links {
                total +=
                    g[self.layout.link_edge[k]] * v[self.layout.dense[self.layout.link_pos[k]]];
            }
            v[i] = total / self.diag[i];
        }
    }
}

/// Sort one eliminated node's links by dense index (insertion sort: the
/// lists are short and usually sorted already).
fn sort_links(pos: &mut [usize], edge: &mut [usize]) {
    for i in 1..pos.len() {
        let mut j = i;
        while j > 0 && pos[j - 1] > pos[j] {
            pos.swap(j - 1, j);
            edge.swap(j - 1, j);
            j -= 1;
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
///
/// Right-looking: after each pivot, the trailing rows are updated by
/// contiguous multiply-subtract runs (which vectorise), using a copy of the
/// pivot's column.
pub fn cholesky_factor<F: Real>(a: &mut [F], n: usize) {
    let mut column = [F::ZERO; 64];
    let mut heap = Vec::new();
    let column: &mut [F] = if n <= 64 {
        &mut column[..n]
    } else {
        heap.resize(n, F::ZERO);
        &mut heap
    };
    for j in 0..n {
        let d = a[j * n + j].sqrt();
        a[j * n + j] = d;
        let inv = F::ONE / d;
        for i in j + 1..n {
            a[i * n + j] *= inv;
            column[i] = a[i * n + j];
        }
        for i in j + 1..n {
            let l_ij = column[i];
            let row = &mut a[i * n + j + 1..=i * n + i];
            for (x, &l_kj) in row.iter_mut().zip(&column[j + 1..=i]) {
                *x -= l_ij * l_kj;
            }
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
