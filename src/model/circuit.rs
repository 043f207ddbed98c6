//! The nodal solve (MODEL.md section 3): node voltages for one boundary
//! configuration and one set of conductances, and the quantities read off
//! them (output currents, dissipated power, edge voltages).
//!
//! Not here: which nodes a protocol phase drives (`protocol::phase`) or how
//! the state moves (`model::device`).
//!
//! The solve exploits the structure of these networks instead of factorising
//! the whole free-node Laplacian. `prepare` (once per boundary) splits the
//! free nodes of the wiring as generated into
//! - isolated: no path to a driven or grounded node; with the `gmin` leak
//!   to ground they sit at exactly 0 V and leave the system (so do nodes
//!   that pruning later cuts off, marked after each pruning);
//! - eliminated: an independent set of the free-free graph (in a layered
//!   network, whole hidden layers); each is a weighted mean of its
//!   neighbours, so it is eliminated exactly by a Schur complement;
//! - dense: the rest, solved by a dense Cholesky factorisation of that
//!   Schur complement, which is symmetric positive definite.
//!
//! `solve` (once per substep) assembles and factorises the small dense
//! system. Both backends run these same steps (`shaders/train.wgsl`, which
//! redoes the split per pulse from the alive edges).

use crate::lanes::{self, LANES};
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
        for ((&u, &v), &g) in net.tail.iter().zip(&net.head).zip(g) {
            self.add_edge(u as usize, v as usize, g, boundary);
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
/// The split is made on the wiring as generated, so pruning leaves it
/// valid; only `cut_off` depends on which edges are alive.
#[derive(Clone, Debug, Default)]
struct Layout {
    role: Vec<NodeRole>,
    /// Free nodes that pruning has cut off from every fixed node: they sit
    /// at exactly 0 V, and their links are left out of the dense system,
    /// whose conditioning they would otherwise ruin (only `gmin` holds
    /// them).
    cut_off: Vec<bool>,
    any_cut_off: bool,
    /// `Solver::generation` when `cut_off` was computed.
    generation: u64,
    /// Index of each dense node in the dense system.
    pos: Vec<usize>,
    dense: Vec<usize>,
    eliminated: Vec<usize>,
    /// For the `j`-th eliminated node, entries from `link_start[j]` to
    /// `link_start[j + 1]` of `link_pos` and `link_edge` list its edges to
    /// dense nodes (dense index, edge).
    link_start: Vec<usize>,
    link_pos: Vec<usize>,
    link_edge: Vec<usize>,
    /// Edges between two dense nodes: (dense index a, dense index
    /// b < a, edge).
    dense_links: Vec<(usize, usize, usize)>,
}

impl Layout {
    fn new(n_nodes: usize) -> Self {
        Layout {
            role: vec![NodeRole::Fixed; n_nodes],
            cut_off: vec![false; n_nodes],
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
    /// Bumped whenever the caller prunes edges (`alive_changed`).
    generation: u64,
    /// The sums the next solve starts from.
    pub sums: NodeSums<F>,
    /// Per free node: total conductance to everything, `gmin` included.
    diag: Vec<F>,
    /// Dense Schur complement, row-major, lower triangle; factorised in place.
    schur: Vec<F>,
    rhs: Vec<F>,
    /// Scratch of `cholesky_factor`.
    column: Vec<F>,
    /// Eliminated-to-dense conductances, one padded row per eliminated node.
    coupling: Vec<F>,
    inv_diag: Vec<F>,
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
            generation: 0,
            sums: NodeSums::new(n_nodes),
            diag: vec![F::ZERO; n_nodes],
            schur: Vec::with_capacity(n_nodes * n_nodes),
            rhs: Vec::with_capacity(n_nodes),
            column: vec![F::ZERO; padded_stride(n_nodes)],
            coupling: Vec::new(),
            inv_diag: Vec::with_capacity(n_nodes),
            order: Vec::with_capacity(n_nodes),
            free_degree: vec![0; n_nodes],
            stack: Vec::with_capacity(n_nodes),
        }
    }

    /// Role of `node` in the current layout (`Isolated` for a node pruning
    /// has cut off).
    pub fn role(&self, node: usize) -> NodeRole {
        if self.layout.cut_off[node] {
            NodeRole::Isolated
        } else {
            self.layout.role[node]
        }
    }

    /// As `prepare`, for a boundary the caller numbers `slot`: a layout is
    /// computed once per slot and reused, with its cut-off nodes redone
    /// after `alive_changed`. The protocol has few distinct boundaries (a
    /// read per pattern, normalize, a punish per pattern and winner), each
    /// applied many times.
    pub fn prepare_cached(
        &mut self,
        slot: usize,
        adj: &Adjacency,
        alive: &[bool],
        boundary: &Boundary<F>,
    ) {
        if self.active_slot != Some(slot) {
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
                self.prepare(adj, alive, boundary);
                self.cached[slot] = true;
            }
            self.active_slot = Some(slot);
        }
        if self.layout.generation != self.generation {
            self.mark_cut_off(adj, alive);
        }
    }

    /// Tell the solver that edges were pruned since the last solve.
    pub fn alive_changed(&mut self) {
        self.generation += 1;
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
        }
        let n = boundary.fixed.len();
        if self.layout.role.len() != n {
            self.layout = Layout::new(n);
        }
        // Free nodes reachable from a fixed node through any edge.
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
                if self.layout.role[j] == NodeRole::Isolated {
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
                .filter(|&k| self.layout.role[adj.other[k] as usize] != NodeRole::Fixed)
                .count();
        }
        let degree = &self.free_degree;
        self.order.sort_unstable_by_key(|&i| (degree[i], i));
        self.layout.eliminated.clear();
        self.layout.dense.clear();
        for idx in 0..self.order.len() {
            let i = self.order[idx];
            let next_to_eliminated = adj
                .range(i)
                .any(|k| self.layout.role[adj.other[k] as usize] == NodeRole::Eliminated);
            if next_to_eliminated {
                self.layout.pos[i] = self.layout.dense.len();
                self.layout.dense.push(i);
            } else {
                self.layout.role[i] = NodeRole::Eliminated;
                self.layout.eliminated.push(i);
            }
        }
        // Each eliminated node's links to the dense system.
        self.layout.link_start.clear();
        self.layout.link_pos.clear();
        self.layout.link_edge.clear();
        for &i in &self.layout.eliminated {
            self.layout.link_start.push(self.layout.link_pos.len());
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if self.layout.role[j] == NodeRole::Dense {
                    self.layout.link_pos.push(self.layout.pos[j]);
                    self.layout.link_edge.push(adj.edge[k] as usize);
                }
            }
        }
        self.layout.link_start.push(self.layout.link_pos.len());
        self.layout.dense_links.clear();
        for (a, &i) in self.layout.dense.iter().enumerate() {
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if self.layout.role[j] == NodeRole::Dense && self.layout.pos[j] < a {
                    self.layout
                        .dense_links
                        .push((a, self.layout.pos[j], adj.edge[k] as usize));
                }
            }
        }
        self.mark_cut_off(adj, alive);
    }

    /// Mark the free nodes of the current layout that no alive path joins
    /// to a fixed node.
    fn mark_cut_off(&mut self, adj: &Adjacency, alive: &[bool]) {
        let layout = &mut self.layout;
        layout.generation = self.generation;
        if !alive.contains(&false) {
            // Nothing pruned: only nodes without any edge are cut off.
            for (cut, role) in layout.cut_off.iter_mut().zip(&layout.role) {
                *cut = *role == NodeRole::Isolated;
            }
            layout.any_cut_off = false;
            return;
        }
        self.stack.clear();
        for (i, role) in layout.role.iter().enumerate() {
            layout.cut_off[i] = *role != NodeRole::Fixed;
            if *role == NodeRole::Fixed {
                self.stack.push(i);
            }
        }
        while let Some(i) = self.stack.pop() {
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if alive[adj.edge[k] as usize] && layout.cut_off[j] {
                    layout.cut_off[j] = false;
                    self.stack.push(j);
                }
            }
        }
        layout.any_cut_off = layout
            .role
            .iter()
            .zip(&layout.cut_off)
            .any(|(&role, &cut)| cut && role != NodeRole::Isolated);
    }

    /// Node voltages `v` (volt) for conductances `g` (siemens, 0 for a pruned
    /// edge) under the boundary of the last `prepare`.
    ///
    /// Assumes `prepare` saw the same `alive` mask and boundary; `v` has one
    /// entry per node.
    pub fn solve(&mut self, net: &Network, g: &[F], gmin: F, boundary: &Boundary<F>, v: &mut [F]) {
        self.sums.fill(net, g, boundary);
        self.solve_from_sums(g, gmin, boundary, v);
    }

    /// As `solve`, with `self.sums` already filled for `g` and `boundary`.
    ///
    /// The dense system `S x = b` is stored as the lower triangle of the
    /// matrix `[S; b^T]`: `b` is one more row, so that eliminating a node
    /// updates it like any other row, and factorising `S` carries out the
    /// forward substitution on it. Rows are padded to whole blocks of
    /// `LANES` (see `crate::lanes`) so that every row update is vector
    /// code; the padding, right of the diagonal, holds values that are
    /// never read.
    #[inline(always)]
    pub fn solve_from_sums(&mut self, g: &[F], gmin: F, boundary: &Boundary<F>, v: &mut [F]) {
        let layout = &self.layout;
        for (i, role) in layout.role.iter().enumerate() {
            match role {
                NodeRole::Fixed => v[i] = boundary.volts[i],
                NodeRole::Isolated => v[i] = F::ZERO,
                NodeRole::Eliminated | NodeRole::Dense => {
                    self.diag[i] = gmin + self.sums.conductance[i]
                }
            }
        }
        let nd = layout.dense.len();
        let stride = padded_stride(nd + 1);
        let rows = (nd + 1).next_multiple_of(ROWS);
        self.schur.clear();
        self.schur.resize(rows * stride, F::ZERO);
        for (a, &i) in layout.dense.iter().enumerate() {
            self.schur[a * stride + a] = self.diag[i];
            self.schur[nd * stride + a] = self.sums.inject[i];
        }
        for &(a, b, e) in &layout.dense_links {
            // An alive link between two cut-off nodes is left out.
            if !(layout.any_cut_off && layout.cut_off[layout.dense[a]]) {
                self.schur[a * stride + b] -= g[e];
            }
        }
        // Eliminating node i couples every pair of its dense neighbours.
        // Row `c` of `coupling` holds the conductances from the `c`-th
        // eliminated node to the dense nodes (zero where there is no edge)
        // and, in column `nd`, minus the current it injects, which
        // eliminates it from the right-hand side.
        let ne = layout.eliminated.len();
        self.coupling.clear();
        self.coupling.resize(ne * stride, F::ZERO);
        self.inv_diag.clear();
        for (idx, &i) in layout.eliminated.iter().enumerate() {
            self.inv_diag.push(F::ONE / self.diag[i]);
            let row = &mut self.coupling[idx * stride..(idx + 1) * stride];
            for k in layout.link_start[idx]..layout.link_start[idx + 1] {
                row[layout.link_pos[k]] = g[layout.link_edge[k]];
            }
            if layout.any_cut_off && layout.cut_off[i] {
                // Its alive links all lead to cut-off nodes: leave them out.
                row.fill(F::ZERO);
            }
            row[nd] = -self.sums.inject[i];
        }
        if nd > 0 {
            schur_update(&mut self.schur, nd, stride, &self.coupling, &self.inv_diag);
        }
        cholesky_factor(&mut self.schur, nd, nd + 1, stride, &mut self.column);
        // Back substitution along rows of L, from the forward-substituted
        // right-hand side in row nd.
        let x = &mut self.rhs;
        x.clear();
        x.extend_from_slice(&self.schur[nd * stride..nd * stride + nd]);
        x.resize(stride, F::ZERO);
        for i in (0..nd).rev() {
            x[i] = x[i] / self.schur[i * stride + i];
            let x_i = x[i];
            for (k, &l_ik) in self.schur[i * stride..i * stride + i].iter().enumerate() {
                x[k] -= l_ik * x_i;
            }
        }
        for (a, &i) in layout.dense.iter().enumerate() {
            v[i] = if layout.cut_off[i] { F::ZERO } else { x[a] };
        }
        let width = lanes::round_up(nd);
        for (idx, &i) in layout.eliminated.iter().enumerate() {
            let linked = &self.coupling[idx * stride..idx * stride + width];
            let total = self.sums.inject[i] + lanes::dot(linked, &x[..width]);
            v[i] = if layout.cut_off[i] {
                F::ZERO
            } else {
                total / self.diag[i]
            };
        }
    }
}

/// Rows of the dense system updated together by `schur_update`: their
/// independent chains of subtractions keep the floating-point units busy.
const ROWS: usize = 4;

/// Subtract from the lower triangle of the `(nd + 1)`-row system `s` every
/// eliminated node's rank-one term `c c^T / d`, where `c` is its row of
/// `coupling` and `1 / d` its entry of `inv_diag`. Row `nd` (the
/// right-hand side) takes columns `0..nd`. `s` has whole groups of `ROWS`
/// rows.
#[inline(always)]
fn schur_update<F: Real>(s: &mut [F], nd: usize, stride: usize, coupling: &[F], inv_diag: &[F]) {
    for a0 in (0..=nd).step_by(ROWS) {
        // Columns up to the diagonal of the group's last row.
        let last_column = (a0 + ROWS - 1).min(nd - 1);
        for b0 in (0..=last_column).step_by(LANES) {
            let mut blocks: [[F; LANES]; ROWS] =
                std::array::from_fn(|r| lanes::block(&s[(a0 + r) * stride + b0..]));
            for (c, &inv_d) in coupling.chunks_exact(stride).zip(inv_diag) {
                let linked = lanes::block(&c[b0..]);
                for (r, block) in blocks.iter_mut().enumerate() {
                    let coeff = c[a0 + r] * inv_d;
                    *block = std::array::from_fn(|l| block[l] - coeff * linked[l]);
                }
            }
            for (r, block) in blocks.iter().enumerate() {
                let at = (a0 + r) * stride + b0;
                s[at..at + LANES].copy_from_slice(block);
            }
        }
    }
}

/// Row stride of a padded dense system of `n` rows: room for a block of
/// `LANES` starting at any column of the lower triangle.
fn padded_stride(n: usize) -> usize {
    lanes::round_up(n) + LANES
}

/// Overwrite the lower triangle of the symmetric positive definite `a`
/// (`n x n`, row-major with row stride `stride >= n`) with `L`, where
/// `A = L L^T`, and carry rows `n..rows` (each a right-hand side `b^T`)
/// through the same elimination, which turns them into `(L^{-1} b)^T`.
/// Only the lower triangle is read; entries right of the diagonal are
/// overwritten with values of no meaning. `column` is scratch of at least
/// `stride` finite values.
///
/// Right-looking: after each pivot, the trailing rows are updated by runs
/// of whole blocks (which vectorise), using a copy of the pivot's column.
#[inline(always)]
pub fn cholesky_factor<F: Real>(
    a: &mut [F],
    n: usize,
    rows: usize,
    stride: usize,
    column: &mut [F],
) {
    for j in 0..n {
        let d = a[j * stride + j].sqrt();
        a[j * stride + j] = d;
        let inv = F::ONE / d;
        for i in j + 1..rows {
            a[i * stride + j] *= inv;
            column[i] = a[i * stride + j];
        }
        for i in j + 1..rows {
            let width = lanes::round_up(i.min(n - 1) + 1 - (j + 1)).min(stride - j - 1);
            let row = i * stride + j + 1;
            lanes::sub_scaled(
                &mut a[row..row + width],
                column[i],
                &column[j + 1..j + 1 + width],
            );
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
