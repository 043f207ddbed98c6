//! The nodal solve (MODEL.md section 3): node voltages for one boundary
//! configuration and one set of conductances, and the quantities read off
//! them (output currents, edge voltages).
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
//!   network, whole hidden layers, or the floating terminals); each is a
//!   weighted mean of its neighbours, so it is eliminated exactly by a
//!   Schur complement;
//! - dense: the rest, solved by a dense `L D L^T` factorisation of that
//!   Schur complement, which is symmetric positive definite.
//!
//! Of two candidate splits, `prepare` keeps the one with the cheaper
//! estimated solve: one may eliminate any free node, the other only quiet
//! ones, with no fixed neighbour. A quiet node's edges join free nodes,
//! which sit at similar voltages, so during a pulse they seldom cross the
//! threshold: the Schur term of eliminating quiet nodes is then computed
//! once and reused by later substeps until one of their edges moves. In a
//! punish pulse of an 8-16-8 network that means eliminating the 14
//! floating terminals once per pulse instead of the 16 hidden nodes every
//! substep.
//!
//! `solve` (once per substep) assembles and factorises the small dense
//! system. Both backends run these same steps (`shaders/train_group.wgsl`,
//! which redoes the split per pulse from the alive edges).
//!
//! Large sparse networks take another path. Where the dense remainder of
//! every split is large (random graphs have large separators, so any direct
//! factorisation fills in), `prepare` chooses the iterative path instead:
//! conjugate gradients on all free nodes, preconditioned by symmetric
//! Gauss-Seidel in a colour order of the nodes, and started from the
//! voltages extrapolated from the pulse's last solves, which move
//! smoothly. Each iteration is one backward and one forward sweep, together
//! one pass over the edges, stored in chunks of rows so that it is vector
//! arithmetic (`model::sliced`); a substep costs a small multiple of the
//! memristor count. The rows are the network's, built once and shared by
//! every boundary, which only masks the rows it fixes. The choice is made
//! per boundary by estimated cost (`SolverChoice::Auto`), or forced for
//! comparison (`Dense`, `Sparse`); it never changes the model, only how
//! its equations are solved, within the stopping rule of
//! `Real::CG_TOLERANCE`.

use std::collections::HashMap;

use crate::lanes::{self, Isa, LANES};
use crate::model::network::{Adjacency, Network};
use crate::model::sliced::{self, rows_of, set_rows, ColouredRows, RowStep, RowSteps};
use crate::real::Real;
use std::ops::Range;

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
/// edges and the current its fixed neighbours inject. They are sums over
/// edges, so the device update of a substep keeps them current by adding
/// each conductance change at both ends, in the same pass over the edges
/// (`Trainer::pulse`).
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

    /// Recompute both from every edge: the conductances edge by edge
    /// (while consecutive edges share their tail, the tail's share is
    /// summed in registers and added once), the injected currents as in
    /// `refill_inject`.
    pub fn fill(&mut self, net: &Network, adj: &Adjacency, g: &[F], boundary: &Boundary<F>) {
        self.conductance.fill(F::ZERO);
        let mut tail = None;
        let mut tail_conductance = F::ZERO;
        for ((&u, &v), &g) in net.tail.iter().zip(&net.head).zip(g) {
            let (u, v) = (u as usize, v as usize);
            if tail != Some(u) {
                if let Some(t) = tail {
                    self.conductance[t] += tail_conductance;
                }
                tail = Some(u);
                tail_conductance = F::ZERO;
            }
            tail_conductance += g;
            self.conductance[v] += g;
        }
        if let Some(t) = tail {
            self.conductance[t] += tail_conductance;
        }
        self.refill_inject(adj, g, boundary);
    }

    /// Recompute the injected currents for `boundary`, keeping the
    /// conductances: only nodes held at a nonzero voltage inject, so this
    /// visits their edges alone (one input's for a read, every input's for
    /// a normalize pulse).
    pub fn refill_inject(&mut self, adj: &Adjacency, g: &[F], boundary: &Boundary<F>) {
        self.inject.fill(F::ZERO);
        for (j, (&fixed, &volts)) in boundary.fixed.iter().zip(&boundary.volts).enumerate() {
            if fixed && volts != F::ZERO {
                for k in adj.range(j) {
                    self.inject[adj.other[k] as usize] += g[adj.edge[k] as usize] * volts;
                }
            }
        }
    }
}

/// Which path solves a boundary's free nodes (`memsweep run --solver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SolverChoice {
    /// Per boundary, the path with the smaller estimated cost.
    #[default]
    Auto,
    /// Always the split and the dense `L D L^T` of its remainder.
    Dense,
    /// Always conjugate gradients on every free node.
    Sparse,
}

impl SolverChoice {
    pub const NAMES: [&'static str; 3] = ["auto", "dense", "sparse"];

    pub fn name(self) -> &'static str {
        match self {
            SolverChoice::Auto => "auto",
            SolverChoice::Dense => "dense",
            SolverChoice::Sparse => "sparse",
        }
    }
}

impl std::str::FromStr for SolverChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SolverChoice::Auto),
            "dense" => Ok(SolverChoice::Dense),
            "sparse" => Ok(SolverChoice::Sparse),
            _ => Err(format!(
                "unknown solver '{s}' (expected one of: {})",
                SolverChoice::NAMES.join(", ")
            )),
        }
    }
}

/// A hash of the voltages `boundary` holds its `fixed` nodes at (FNV-1a
/// over each node and its voltage's bits): the drive of a pulse, which
/// with its boundary's slot keys `Solver::first_solves`.
fn drive_hash<F: Real>(fixed: &[usize], boundary: &Boundary<F>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &i in fixed {
        for word in [i as u64, boundary.volts[i].to_f64().to_bits()] {
            hash = (hash ^ word).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The rows a chunk's next row is chosen among (`sliced::Colouring::runs`):
/// past 64, chunks of random networks of a thousand nodes hardly narrow.
const DEGREE_WINDOW: usize = 64;

/// The order of the polynomial through the last solves of a pulse that
/// starts the next one (`Solver::solve_iterative`). Within a pulse the
/// voltages move smoothly, so each order takes off a few iterations; on
/// random networks of a thousand nodes a linear start takes 18, a cubic
/// one 13 (`docs/performance.md`).
const EXTRAPOLATION_ORDER: usize = 3;

/// The weights of the extrapolation of order `n` (row `n`) one step on
/// from the values at steps `0, -1, -2, ...`: `(-1)^m C(n + 1, m + 1)`.
const EXTRAPOLATION: [&[f64]; EXTRAPOLATION_ORDER + 1] = [
    &[1.0],
    &[2.0, -1.0],
    &[3.0, -3.0, 1.0],
    &[4.0, -6.0, 4.0, -1.0],
];

/// Iterations that the cost estimate of the iterative path assumes per
/// solve: a random network of a thousand nodes takes about this many, a
/// punish pulse of a layered one fewer.
const CG_ITERATIONS_ESTIMATE: usize = 25;

/// Cost of one operation of the iterative path, which gathers scalars,
/// relative to one of the split's dense kernels, which run whole vectors
/// (about three, timed on 64-256-64 and random networks of 64 to 1,024
/// bulk nodes).
const GATHER_COST: usize = 3;

/// Estimated cost of an iterative solve of `nodes` unknowns with
/// `edge_ends` edge ends among them, in the units of `Solver::split`
/// (multiply-subtract pairs of the dense kernels): per iteration, one
/// operation per edge end and a few per node, each a gather. Also the
/// memory limit's bound on the dense systems `auto` allows
/// (`sweep::limits`).
pub(crate) fn iterative_cost_estimate(edge_ends: f64, nodes: f64) -> f64 {
    (GATHER_COST * CG_ITERATIONS_ESTIMATE) as f64 * (edge_ends + 8.0 * nodes)
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
struct Layout<F> {
    role: Vec<NodeRole>,
    /// Free nodes that pruning has cut off from every fixed node: they sit
    /// at exactly 0 V, and their links are left out of the dense system,
    /// whose conditioning they would otherwise ruin (only `gmin` holds
    /// them).
    cut_off: Vec<bool>,
    any_cut_off: bool,
    /// `Solver::generation` when `cut_off` was computed.
    generation: u64,
    /// The fixed nodes, and the free nodes no edge links to a fixed one.
    fixed: Vec<usize>,
    isolated: Vec<usize>,
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
    /// Per edge: 1 if it touches an eliminated node, else 0. While none of
    /// these edges changes, the eliminated nodes' Schur term stays the same
    /// (see `Solver::solve_from_sums`). Empty on the iterative path.
    touches_eliminated: Vec<F>,
    /// Whether this boundary is solved by conjugate gradients over every
    /// free node with a path to a fixed one (role `Dense`) instead of the
    /// split.
    iterative: bool,
    /// On the iterative path, each row's region (`NetworkRows`): the
    /// free rows that alive edges join without passing a fixed node
    /// (`NO_REGION`: a fixed row); how many there are; whether a component
    /// holds more than one, the one case where a region may be undriven
    /// while another is driven (`Solver::free_regions`); and the build of
    /// the rows they number.
    region: Vec<u32>,
    regions: usize,
    split: bool,
    regions_build: u64,
}

/// An entry of `Layout::region`: a fixed row.
const NO_REGION: u32 = u32::MAX;

/// Every node some boundary of the iterative path fixed so far (the
/// protocol fixes only inputs and outputs), and the regions the rows of
/// the other nodes fall into without them: the rows that alive edges join
/// without passing a terminal. Any boundary's regions are unions of
/// these, joined through the terminals it leaves free (`Solver::free_regions`).
#[derive(Clone, Debug, Default)]
struct Terminals {
    /// The terminals, and each node's index among them (`NO_REGION`: not one).
    nodes: Vec<usize>,
    index: Vec<u32>,
    /// Each row's region (`NO_REGION` for a terminal's), how many there
    /// are, and for which generation, build of the rows and count of
    /// terminals.
    region: Vec<u32>,
    regions: usize,
    found_for: Option<(u64, u64, usize)>,
    /// Scratch: the union-find of `free_regions`, and a search stack.
    parent: Vec<u32>,
    stack: Vec<usize>,
}

impl Terminals {
    /// Add the nodes of `fixed` that are not terminals yet.
    fn grow(&mut self, fixed: &[usize]) {
        for &i in fixed {
            if self.index.len() <= i {
                self.index.resize(i + 1, NO_REGION);
            }
            if self.index[i] == NO_REGION {
                self.index[i] = self.nodes.len() as u32;
                self.nodes.push(i);
            }
        }
    }

    /// Find the regions of the other rows, unless they are known for this
    /// generation, build of `rows` and set of terminals.
    fn find_regions(
        &mut self,
        adj: &Adjacency,
        alive: &[bool],
        rows: &NetworkRows,
        generation: u64,
    ) {
        let key = (generation, rows.rows_build, self.nodes.len());
        if self.found_for == Some(key) {
            return;
        }
        self.found_for = Some(key);
        self.index.resize(adj.start.len() - 1, NO_REGION);
        let (index, region, stack) = (&self.index, &mut self.region, &mut self.stack);
        region.clear();
        region.resize(rows.unknown_node.len(), NO_REGION);
        let mut regions = 0;
        for (a, &i) in rows.unknown_node.iter().enumerate() {
            if index[i] != NO_REGION || region[a] != NO_REGION {
                continue;
            }
            region[a] = regions;
            stack.push(i);
            while let Some(i) = stack.pop() {
                for k in adj.range(i) {
                    let j = adj.other[k] as usize;
                    if alive[adj.edge[k] as usize] && index[j] == NO_REGION {
                        let b = rows.pos[j];
                        if region[b] == NO_REGION {
                            region[b] = regions;
                            stack.push(j);
                        }
                    }
                }
            }
            regions += 1;
        }
        self.regions = regions as usize;
    }
}

/// The rows of the iterative path, one set for every boundary: each node
/// with an alive edge is a row, numbered `0..nr` by connected component
/// of the alive edges (component `c` is rows
/// `component_start[c]..component_start[c + 1]`), colour by colour within
/// (`Solver::network_rows`). A boundary only says which rows are fixed:
/// the solve masks them (`Solver::solve_iterative`), so its first use
/// builds nothing. A component that nothing drives under a boundary sits
/// at exactly 0 V, as a direct solve gives; each component meets the
/// stopping rule relative to its own drive.
#[derive(Clone, Debug, Default)]
struct NetworkRows {
    component_start: Vec<usize>,
    unknown_node: Vec<usize>,
    /// Each node's row (`usize::MAX`: none).
    pos: Vec<usize>,
    /// The nodes without an alive edge: not rows.
    unlinked: Vec<usize>,
    /// The alive links between rows (and those pruned since the rows were
    /// built), row by row, split by colour for the preconditioner's sweeps,
    /// in chunks of rows; component `c` owns chunks
    /// `component_chunk[c]..component_chunk[c + 1]`.
    rows: ColouredRows,
    component_chunk: Vec<usize>,
    /// `Solver::epoch` when `rows` were built (`None`: not built).
    rows_epoch: Option<u64>,
    /// Which build of `rows` this is (`Solver::rows_builds` when built),
    /// and per edge its link in `rows.lower` and in `rows.upper`
    /// (`NO_LINK`: none), where a changed conductance goes
    /// (`Solver::solve_iterative`).
    rows_build: u64,
    edge_links: Vec<[u32; 2]>,
    /// How far into `Solver::deaths` (of the log `Solver::deaths_log`) the
    /// rows are known to hold the components.
    deaths_seen: (u64, usize),
}

/// An entry of `NetworkRows::edge_links`: the edge has no such link.
const NO_LINK: u32 = u32::MAX;

impl<F: Real> Layout<F> {
    fn new(n_nodes: usize) -> Self {
        Layout {
            role: vec![NodeRole::Fixed; n_nodes],
            cut_off: vec![false; n_nodes],
            pos: vec![usize::MAX; n_nodes],
            ..Layout::default()
        }
    }

    /// List the fixed and the isolated nodes of `role`.
    fn list_fixed_and_isolated(&mut self) {
        self.fixed.clear();
        self.isolated.clear();
        for (i, &role) in self.role.iter().enumerate() {
            match role {
                NodeRole::Fixed => self.fixed.push(i),
                NodeRole::Isolated => self.isolated.push(i),
                NodeRole::Eliminated | NodeRole::Dense => (),
            }
        }
    }
}

/// Reusable buffers of the nodal solve for networks of up to `n_nodes`.
#[derive(Clone, Debug)]
pub struct Solver<F> {
    /// The node split of the current boundary.
    layout: Layout<F>,
    /// Layouts kept per boundary (see `prepare_cached`), and the slot of
    /// each boundary's fixed-node set.
    cache: Vec<Layout<F>>,
    slots: HashMap<Box<[u64]>, usize>,
    /// Scratch: the fixed-node set of the boundary being prepared.
    key: Vec<u64>,
    active_slot: Option<usize>,
    /// Bumped whenever the caller prunes edges (`alive_changed`,
    /// `edges_pruned`).
    generation: u64,
    /// Bumped whenever edges may have come alive (`alive_changed`): until
    /// then, edges only die, and the iterative path's rows stay valid
    /// while they fall into the same components (`network_rows`).
    epoch: u64,
    /// The sums the next solve starts from.
    pub sums: NodeSums<F>,
    /// Per free node: total conductance to everything, `gmin` included.
    diag: Vec<F>,
    /// Dense Schur complement, row-major, upper triangle (see
    /// `schur_update`); factorised in place.
    schur: Vec<F>,
    /// Minus the eliminated nodes' Schur term, and their share of the
    /// right-hand side, kept for reuse.
    eliminated_term: Vec<F>,
    eliminated_rhs: Vec<F>,
    eliminated_inject: Vec<F>,
    /// Solution of the dense system.
    x: Vec<F>,
    /// Right-hand side of the dense system.
    b: Vec<F>,
    pivot: Vec<F>,
    /// Eliminated-to-dense conductances, one padded row per eliminated node.
    coupling: Vec<F>,
    inv_diag: Vec<F>,
    order: Vec<usize>,
    free_degree: Vec<usize>,
    stack: Vec<usize>,
    /// Connected component of each node in the alive graph, for
    /// `components_generation`.
    component: Vec<usize>,
    components_generation: Option<u64>,
    /// One entry per component: whether it holds a fixed node of the
    /// current layout.
    grounded_component: Vec<bool>,
    /// Which path solves each boundary.
    choice: SolverChoice,
    /// Per edge, 0: `touches_eliminated` of a layout that eliminates nothing.
    no_touches: Vec<F>,
    /// The rows of the iterative path, shared by every boundary.
    net_rows: NetworkRows,
    /// The nodes some boundary fixed, and the regions they leave
    /// (`free_regions`).
    terminals: Terminals,
    /// Scratch of `solve_iterative`: whether each region is driven.
    driven: Vec<bool>,
    /// The vectors of the conjugate-gradient iteration.
    cg: CgVectors<F>,
    /// How many iterative solves in a row were made under the layout
    /// still prepared (the substeps of the pulse so far), and the last
    /// `EXTRAPOLATION_ORDER + 1` of their solutions, latest first, in the
    /// layout's unknown order: the next solve starts from their
    /// extrapolation.
    pulse_solves: usize,
    history: Vec<Vec<F>>,
    /// Per kept boundary (its slot, and a hash of its fixed nodes'
    /// voltages): the solution of the first solve of its last pulse, and
    /// the build of the rows whose unknown order it follows. A pulse's
    /// first solve starts from it (`solve_iterative`).
    first_solves: HashMap<(usize, u64), (u64, Vec<F>)>,
    /// Scratch of `network_rows`: the rows' links, and each node's
    /// range of them; the components found; the colouring.
    links: Vec<(u32, u32)>,
    link_range: Vec<(u32, u32)>,
    new_unknowns: Vec<usize>,
    new_starts: Vec<usize>,
    colouring: sliced::Colouring,
    /// Builds of the iterative path's rows so far
    /// (`NetworkRows::rows_build`).
    rows_builds: u64,
    /// The edges that died since edges last came alive, with their ends,
    /// in order of death (`note_deaths`); which log this is (a new one
    /// starts whenever edges may have come alive), and which edges were
    /// alive when it was last brought up to date, in which generation.
    deaths: Vec<(u32, u32)>,
    deaths_log: u64,
    deaths_epoch: Option<u64>,
    deaths_alive: Vec<bool>,
    deaths_generation: Option<u64>,
    /// Scratch of `still_joined`: per node, the search that reached it
    /// (two stamps per search, one per end), and the two frontiers.
    search_mark: Vec<u64>,
    search_stamp: u64,
    frontiers: [Vec<usize>; 3],
    /// Work counters, for `memsweep bench` and the tests.
    pub stats: SolveStats,
}

/// What the solver did since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolveStats {
    pub dense_solves: u64,
    pub iterative_solves: u64,
    /// Summed over the connected components of each solve.
    pub cg_iterations: u64,
    /// Iterative solves that met the iteration cap before the stopping
    /// rule (none is expected: the cap is generous).
    pub cg_capped: u64,
    /// Times the iterative path built its rows, which every boundary
    /// shares (on first use, and after pruning split a component).
    pub rows_built: u64,
}

/// The system of the iterative path, one entry per unknown: the diagonal
/// `D` (total conductance, `gmin` included), its inverse, the injected
/// current `b`, the conductance of each link of the caller's
/// `ColouredRows` (`lower_g`, `upper_g`, in their link order); and the
/// iterates: voltages `x`, residual `r`, search direction `p`, and the two
/// sweeps' vectors `t` and `w`.
#[derive(Clone, Debug, Default)]
pub(crate) struct CgVectors<F> {
    diag: Vec<F>,
    inv_diag: Vec<F>,
    b: Vec<F>,
    lower_g: Vec<F>,
    upper_g: Vec<F>,
    /// The edge conductances `lower_g` and `upper_g` were last brought up
    /// to date with, and the build of the rows they follow
    /// (`NetworkRows::rows_build`; `None`: not gathered).
    g_seen: Vec<F>,
    gathered_for: Option<u64>,
    pub(crate) x: Vec<F>,
    r: Vec<F>,
    /// The deflation's vectors (`solve`): `L^T 1` and `L^-1 A 1`, `1` the
    /// component's free rows.
    deflate: Vec<F>,
    deflated: Vec<F>,
    p: Vec<F>,
    t: Vec<F>,
    w: Vec<F>,
}

/// `sum_a x_a d_a x_a` over `x` and `d`, accumulated per lane as
/// `lanes::dot` accumulates.
#[inline(always)]
fn weighted_square<F: Real>(x: &[F], d: &[F]) -> F {
    let (x_blocks, x_rest) = x.as_chunks::<LANES>();
    let (d_blocks, d_rest) = d.as_chunks::<LANES>();
    let mut acc = [F::ZERO; LANES];
    for (xb, db) in x_blocks.iter().zip(d_blocks) {
        acc = std::array::from_fn(|l| acc[l] + xb[l] * (db[l] * xb[l]));
    }
    for (l, (&x, &d)) in x_rest.iter().zip(d_rest).enumerate() {
        acc[l] += x * (d * x);
    }
    lanes::sum(acc)
}

/// The sweeps of `CgVectors::solve`, row block by row block
/// (`sliced::RowStep`).
///
/// `x = (x + sums) D^-1`: solves `(D - G_lower) x = u` in place of `u`.
#[derive(Clone, Copy)]
struct SolveLower<'a, F> {
    inv_diag: &'a [F],
}

impl<F: Real> RowStep<F> for SolveLower<'_, F> {
    #[inline(always)]
    fn step(&mut self, rows: Range<usize>, sums: [F; LANES], x: &mut [F]) {
        let (u, inv) = (rows_of(x, &rows), rows_of(self.inv_diag, &rows));
        set_rows(x, &rows, std::array::from_fn(|l| (u[l] + sums[l]) * inv[l]));
    }
}

impl<F: Real, const K: usize> RowSteps<F, K> for SolveLower<'_, F> {
    #[inline(always)]
    fn step(&mut self, rows: Range<usize>, sums: [[F; LANES]; K], xs: &mut [&mut [F]; K]) {
        for (x, sums) in xs.iter_mut().zip(sums) {
            RowStep::step(self, rows.clone(), sums, x);
        }
    }
}

/// The upward sweep of the set-up, over `x` and the free rows' `1`:
/// `w = b + G x` and `ones = G 1`.
struct UpperSetUp<'a, F> {
    b: &'a [F],
    w: &'a mut [F],
    ones: &'a mut [F],
}

impl<F: Real> RowSteps<F, 2> for UpperSetUp<'_, F> {
    #[inline(always)]
    fn step(&mut self, rows: Range<usize>, [sums, ones]: [[F; LANES]; 2], _: &mut [&mut [F]; 2]) {
        let b = rows_of(self.b, &rows);
        set_rows(self.w, &rows, std::array::from_fn(|l| b[l] + sums[l]));
        set_rows(self.ones, &rows, ones);
    }
}

/// `sum_a x_a d_a x_a` and `sum_a u_a d_a x_a`, accumulated per lane as
/// `weighted_square`.
#[inline(always)]
fn weighted_squares<F: Real>(x: &[F], d: &[F], u: &[F]) -> (F, F) {
    let (x_blocks, x_rest) = x.as_chunks::<LANES>();
    let (d_blocks, d_rest) = d.as_chunks::<LANES>();
    let (u_blocks, u_rest) = u.as_chunks::<LANES>();
    let (mut xx, mut ux) = ([F::ZERO; LANES], [F::ZERO; LANES]);
    for ((xb, db), ub) in x_blocks.iter().zip(d_blocks).zip(u_blocks) {
        xx = std::array::from_fn(|l| xx[l] + xb[l] * (db[l] * xb[l]));
        ux = std::array::from_fn(|l| ux[l] + ub[l] * (db[l] * xb[l]));
    }
    for (l, ((&x, &d), &u)) in x_rest.iter().zip(d_rest).zip(u_rest).enumerate() {
        xx[l] += x * (d * x);
        ux[l] += u * (d * x);
    }
    (lanes::sum(xx), lanes::sum(ux))
}

/// `t = (p + sums) D^-1`, solving `(D - G_upper) t = p` when swept
/// backwards, and `u = p - D t`.
struct SolveUpper<'a, F> {
    p: &'a [F],
    diag: &'a [F],
    inv_diag: &'a [F],
    u: &'a mut [F],
}

impl<F: Real> RowStep<F> for SolveUpper<'_, F> {
    #[inline(always)]
    fn step(&mut self, rows: Range<usize>, sums: [F; LANES], t: &mut [F]) {
        let (p, d, inv) = (
            rows_of(self.p, &rows),
            rows_of(self.diag, &rows),
            rows_of(self.inv_diag, &rows),
        );
        let t_rows: [F; LANES] = std::array::from_fn(|l| (p[l] + sums[l]) * inv[l]);
        set_rows(t, &rows, t_rows);
        set_rows(
            self.u,
            &rows,
            std::array::from_fn(|l| p[l] - d[l] * t_rows[l]),
        );
    }
}

/// `SolveLower` on `w`, and `p . (t + w)` lane by lane.
struct SolveLowerProduct<'a, F> {
    inv_diag: &'a [F],
    t: &'a [F],
    p: &'a [F],
    dot: [F; LANES],
}

impl<F: Real> RowStep<F> for &mut SolveLowerProduct<'_, F> {
    #[inline(always)]
    fn step(&mut self, rows: Range<usize>, sums: [F; LANES], w: &mut [F]) {
        let (u, inv, t, p) = (
            rows_of(w, &rows),
            rows_of(self.inv_diag, &rows),
            rows_of(self.t, &rows),
            rows_of(self.p, &rows),
        );
        let w_rows: [F; LANES] = std::array::from_fn(|l| (u[l] + sums[l]) * inv[l]);
        set_rows(w, &rows, w_rows);
        self.dot = std::array::from_fn(|l| self.dot[l] + p[l] * (t[l] + w_rows[l]));
    }
}

impl<F: Real> CgVectors<F> {
    /// The system `A x = b` of a weighted Laplacian with some nodes held
    /// at 0 V: `diag` each unknown's total conductance, `lower_g` and
    /// `upper_g` the conductance of each link of the caller's
    /// `ColouredRows`, in their order (0 for padding); `x` starts at 0.
    pub(crate) fn laplacian(diag: Vec<F>, lower_g: Vec<F>, upper_g: Vec<F>, b: Vec<F>) -> Self {
        let n = diag.len();
        CgVectors {
            inv_diag: diag.iter().map(|&d| F::ONE / d).collect(),
            diag,
            b,
            lower_g,
            upper_g,
            g_seen: Vec::new(),
            gathered_for: None,
            x: vec![F::ZERO; n],
            r: vec![F::ZERO; n],
            deflate: vec![F::ZERO; n],
            deflated: vec![F::ZERO; n],
            p: vec![F::ZERO; n],
            t: vec![F::ZERO; n],
            w: vec![F::ZERO; n],
        }
    }

    /// Conjugate gradients on one component, preconditioned by symmetric
    /// Gauss-Seidel in the colour order of `rows`, from the voltages in
    /// `x`, until `r^T M^-1 r <= tol^2 b^T M^-1 b`, `M` the
    /// preconditioner. Returns the iterations taken, or `None` at the cap
    /// (four per unknown, far more than exact arithmetic needs).
    ///
    /// With `A = D - G_lower - G_upper` and `L = D - G_lower`, the
    /// preconditioner is `M = L D^-1 L^T`, applied in Eisenstat's form:
    /// the iteration runs on `L^-1 A L^-T` (preconditioned by `D^-1`),
    /// whose product with `p` is `t + L^-1 (p - D t)`, `t = L^-T p`: one
    /// backward sweep and one forward sweep, together one pass over the
    /// links, as the plain product would be. The voltages follow as
    /// `x += alpha t`, and the residual `r` is `L^-1 (b - A x)`.
    ///
    /// Preconditioned so, the system has one slow mode: the component's
    /// voltage shifted as a whole, which only the few fixed nodes hold
    /// (one eigenvalue near 0.01, the rest between 0.68 and 1 on random
    /// networks of a thousand nodes). The iteration is deflated of it
    /// (Saad, Yeung, Erhel and Guyomarc'h 2000, with `W = L^T 1`): the start
    /// is shifted by a constant so that the residual sums to 0, and every
    /// direction is kept `A`-orthogonal to the constant, a dot product and
    /// a vector update per iteration and two sweeps per solve
    /// (`Real::DEFLATE`). The stopping rule is unchanged.
    #[inline(always)]
    pub(crate) fn solve(
        &mut self,
        isa: Isa,
        rows: &ColouredRows,
        chunks: std::ops::Range<usize>,
        unknowns: std::ops::Range<usize>,
        tol: F,
    ) -> Option<usize> {
        let s = unknowns;
        let CgVectors {
            diag,
            inv_diag,
            b,
            lower_g,
            upper_g,
            x,
            r,
            p,
            t,
            w,
            deflate,
            deflated,
            ..
        } = self;
        // The set-up's sweeps, each over three vectors or two at once:
        // - `b^T M^-1 b = |L^-1 b|^2` in `D`;
        // - the residual `r = L^-1 (b - A x) = L^-1 (b + G_upper x) - x`;
        // - the deflation of the component's constant voltage `1` (its
        //   free rows; masked rows have `1/D = 0`): in `L^-1 A L^-T` it is
        //   `L^T 1 = D 1 - G_upper 1`, and `L^-1 A 1 = 1 - L^-1 G_upper 1`.
        //   Their product is `1^T A 1`: positive wherever something drives
        //   the component (a zero leaves the iteration undeflated, as
        //   `F::DEFLATE` false does).
        for (t, &inv) in t[s.clone()].iter_mut().zip(&inv_diag[s.clone()]) {
            *t = if inv != F::ZERO { F::ONE } else { F::ZERO };
        }
        let upward = UpperSetUp {
            b,
            w,
            ones: deflated,
        };
        rows.upper.sweep_many(
            isa,
            chunks.clone(),
            false,
            upper_g,
            [&mut **x, &mut **t],
            upward,
        );
        for (((k, &sum), &d), &t) in deflate[s.clone()]
            .iter_mut()
            .zip(&deflated[s.clone()])
            .zip(&diag[s.clone()])
            .zip(&t[s.clone()])
        {
            *k = if t != F::ZERO { d - sum } else { F::ZERO };
        }
        r[s.clone()].copy_from_slice(&b[s.clone()]);
        let solve_lower = SolveLower { inv_diag };
        rows.lower.sweep_many(
            isa,
            chunks.clone(),
            false,
            lower_g,
            [&mut **r, &mut **w, &mut **deflated],
            solve_lower,
        );
        let b_norm = weighted_square(&r[s.clone()], &diag[s.clone()]);
        if b_norm == F::ZERO {
            // Nothing drives this component (one that pruning cut off among
            // them): it sits at 0 V.
            x[s].fill(F::ZERO);
            return Some(0);
        }
        for ((r, &w), &x) in r[s.clone()]
            .iter_mut()
            .zip(&w[s.clone()])
            .zip(&x[s.clone()])
        {
            *r = w - x;
        }
        for (u, &t) in deflated[s.clone()].iter_mut().zip(&t[s.clone()]) {
            *u = t - *u;
        }
        let mut energy = F::ZERO;
        if F::DEFLATE {
            energy = lanes::dot(&deflate[s.clone()], &deflated[s.clone()]);
        }
        if !(energy > F::ZERO) {
            deflate[s.clone()].fill(F::ZERO);
            deflated[s.clone()].fill(F::ZERO);
            energy = F::ONE;
        }
        // The start shifted by a constant so that the residual is
        // orthogonal to `L^T 1` (the true residual sums to 0).
        let shift = lanes::dot(&deflate[s.clone()], &r[s.clone()]) / energy;
        for ((x, r), (&t, &u)) in x[s.clone()]
            .iter_mut()
            .zip(&mut r[s.clone()])
            .zip(t[s.clone()].iter().zip(&deflated[s.clone()]))
        {
            *x += shift * t;
            *r -= shift * u;
        }
        let (mut rz, ur) = weighted_squares(&r[s.clone()], &diag[s.clone()], &deflated[s.clone()]);
        let mu = ur / energy;
        for ((p, &r), (&d, &k)) in p[s.clone()]
            .iter_mut()
            .zip(&r[s.clone()])
            .zip(diag[s.clone()].iter().zip(&deflate[s.clone()]))
        {
            *p = d * r - mu * k;
        }
        let stop = tol * tol * b_norm;
        let cap = 4 * s.len() + 100;
        let mut iterations = 0;
        while rz > stop {
            if iterations == cap {
                return None;
            }
            iterations += 1;
            // t = L^-T p, and p - D t into w.
            let backward = SolveUpper {
                p,
                diag,
                inv_diag,
                u: w,
            };
            rows.upper
                .sweep(isa, chunks.clone(), true, upper_g, t, backward);
            // w = L^-1 (p - D t); the product is q = t + w.
            let mut forward = SolveLowerProduct {
                inv_diag,
                t,
                p,
                dot: [F::ZERO; LANES],
            };
            rows.lower
                .sweep(isa, chunks.clone(), false, lower_g, w, &mut forward);
            let alpha = rz / lanes::sum(forward.dot);
            let (x, r) = (&mut x[s.clone()], &mut r[s.clone()]);
            let (t, w) = (&t[s.clone()], &w[s.clone()]);
            for ((x, r), (&t, &w)) in x.iter_mut().zip(r.iter_mut()).zip(t.iter().zip(w)) {
                *x += alpha * t;
                *r -= alpha * (t + w);
            }
            let (rz_next, ur) = weighted_squares(r, &diag[s.clone()], &deflated[s.clone()]);
            let beta = rz_next / rz;
            let mu = ur / energy;
            rz = rz_next;
            for ((p, &r), (&d, &k)) in p[s.clone()]
                .iter_mut()
                .zip(&*r)
                .zip(diag[s.clone()].iter().zip(&deflate[s.clone()]))
            {
                *p = d * r + beta * *p - mu * k;
            }
        }
        Some(iterations)
    }
}

impl<F: Real> Solver<F> {
    pub fn new(n_nodes: usize) -> Self {
        Self::with_choice(n_nodes, SolverChoice::Auto)
    }

    /// A solver that takes the path `choice` names for every boundary.
    pub fn with_choice(n_nodes: usize, choice: SolverChoice) -> Self {
        Solver {
            layout: Layout::new(n_nodes),
            cache: Vec::new(),
            slots: HashMap::new(),
            key: Vec::new(),
            active_slot: None,
            generation: 0,
            epoch: 0,
            sums: NodeSums::new(n_nodes),
            diag: vec![F::ZERO; n_nodes],
            // (Sized on first use: a large network on the iterative path
            // never needs it.)
            schur: Vec::new(),
            eliminated_term: Vec::new(),
            eliminated_rhs: Vec::new(),
            eliminated_inject: Vec::new(),
            x: Vec::with_capacity(n_nodes),
            b: Vec::with_capacity(n_nodes),
            pivot: vec![F::ZERO; n_nodes],
            coupling: Vec::new(),
            inv_diag: Vec::with_capacity(n_nodes),
            order: Vec::with_capacity(n_nodes),
            free_degree: vec![0; n_nodes],
            stack: Vec::with_capacity(n_nodes),
            component: Vec::with_capacity(n_nodes),
            components_generation: None,
            grounded_component: Vec::new(),
            choice,
            no_touches: Vec::new(),
            net_rows: NetworkRows::default(),
            terminals: Terminals::default(),
            driven: Vec::new(),
            cg: CgVectors::default(),
            pulse_solves: 0,
            history: vec![Vec::new(); EXTRAPOLATION_ORDER + 1],
            first_solves: HashMap::new(),
            links: Vec::new(),
            link_range: Vec::new(),
            new_unknowns: Vec::new(),
            new_starts: Vec::new(),
            colouring: sliced::Colouring::default(),
            rows_builds: 0,
            deaths: Vec::new(),
            deaths_log: 0,
            deaths_epoch: None,
            deaths_alive: Vec::new(),
            deaths_generation: None,
            search_mark: Vec::new(),
            search_stamp: 0,
            frontiers: Default::default(),
            stats: SolveStats::default(),
        }
    }

    /// The path this solver takes (`SolverChoice`).
    pub fn choice(&self) -> SolverChoice {
        self.choice
    }

    /// Whether the current boundary is solved by conjugate gradients.
    pub fn is_iterative(&self) -> bool {
        self.layout.iterative
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

    /// As `prepare`, keeping the layout: one is computed per boundary (a
    /// layout depends only on which nodes the boundary fixes) and reused,
    /// with its cut-off nodes redone after `alive_changed`. The protocol has
    /// few distinct boundaries (a read per pattern, normalize, a punish per
    /// pattern and winner), each applied many times.
    pub fn prepare_cached(&mut self, adj: &Adjacency, alive: &[bool], boundary: &Boundary<F>) {
        self.pulse_solves = 0;
        self.key.clear();
        self.key.resize(boundary.fixed.len().div_ceil(64), 0);
        for (i, _) in boundary.fixed.iter().enumerate().filter(|f| *f.1) {
            self.key[i / 64] |= 1 << (i % 64);
        }
        let slot = self.slots.get(self.key.as_slice()).copied();
        if slot.is_none() || self.active_slot != slot {
            if let Some(active) = self.active_slot.take() {
                std::mem::swap(&mut self.layout, &mut self.cache[active]);
            }
            match slot {
                Some(slot) => {
                    std::mem::swap(&mut self.layout, &mut self.cache[slot]);
                    self.active_slot = Some(slot);
                }
                None => {
                    self.prepare(adj, alive, boundary);
                    let slot = self.cache.len();
                    self.cache.push(Layout::default());
                    self.slots.insert(self.key.clone().into_boxed_slice(), slot);
                    self.active_slot = Some(slot);
                }
            }
        }
        if self.layout.generation != self.generation {
            self.mark_cut_off(adj, alive);
        }
    }

    /// Tell the solver that edges were pruned since the last solve.
    pub fn alive_changed(&mut self) {
        self.generation += 1;
        self.epoch += 1;
        self.pulse_solves = 0;
    }

    /// Tell the solver that edges were pruned since the last solve, and
    /// none came alive (a narrower `alive_changed`: the iterative path
    /// keeps its rows if their components did not change, the pruned
    /// edges' links adding exact zeros).
    pub fn edges_pruned(&mut self) {
        self.generation += 1;
        self.pulse_solves = 0;
    }

    /// Number of nodes in the dense system of the last `prepare`.
    pub fn dense_size(&self) -> usize {
        self.layout.dense.len()
    }

    /// Classify the nodes for `boundary` given which edges are `alive`.
    pub fn prepare(&mut self, adj: &Adjacency, alive: &[bool], boundary: &Boundary<F>) {
        self.pulse_solves = 0;
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
        // Two candidate splits, each a greedy independent set taken in order
        // of fewest free neighbours, so that the dense remainder is small:
        // - any free node may be eliminated;
        // - only quiet nodes (no fixed neighbour) may be: their edges join
        //   free nodes, which sit at similar voltages, so they seldom move
        //   during a pulse, and the Schur term of eliminating them can be
        //   reused from one substep to the next.
        // The one with the smaller estimated cost per substep is kept.
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
        // The split eliminates an independent set, so its dense remainder
        // covers every edge between free nodes: at least (edges) / (most
        // edges at one node) nodes, a factorisation of at least its cube
        // over six. Where the iterative path costs less than that, it
        // wins without trying the splits.
        if self.choice != SolverChoice::Dense {
            let ends: usize = self.order.iter().map(|&i| self.free_degree[i]).sum();
            let most = self
                .order
                .iter()
                .map(|&i| self.free_degree[i])
                .max()
                .unwrap_or(0);
            let least_dense = (ends / 2).div_ceil(most.max(1));
            if self.choice == SolverChoice::Sparse
                || self.iterative_cost(adj) < least_dense.saturating_pow(3) / 6
            {
                self.layout.iterative = true;
                self.prepare_iterative(adj, alive);
                return;
            }
        }
        let degree = &self.free_degree;
        self.order.sort_unstable_by_key(|&i| (degree[i], i));
        let greedy = self.split(adj, boundary, false);
        let quiet = self.split(adj, boundary, true);
        if greedy < quiet {
            self.split(adj, boundary, false);
        }
        self.layout.iterative = match self.choice {
            SolverChoice::Dense => false,
            SolverChoice::Sparse => true,
            SolverChoice::Auto => self.iterative_cost(adj) < greedy.min(quiet),
        };
        if self.layout.iterative {
            self.prepare_iterative(adj, alive);
            return;
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
        let layout = &mut self.layout;
        layout.list_fixed_and_isolated();
        let touches = &mut self.layout.touches_eliminated;
        touches.clear();
        touches.resize(adj.n_edges(), F::ZERO);
        for &i in &self.layout.eliminated {
            for k in adj.range(i) {
                touches[adj.edge[k] as usize] = F::ONE;
            }
        }
        self.mark_cut_off(adj, alive);
    }

    /// `iterative_cost_estimate` of the free nodes in `self.order`.
    fn iterative_cost(&self, adj: &Adjacency) -> usize {
        let ends: usize = self.order.iter().map(|&i| adj.range(i).len()).sum();
        // (Exact: integers far below 2^53.)
        iterative_cost_estimate(ends as f64, self.order.len() as f64) as usize
    }

    /// The layout of the iterative path: nothing is eliminated; the rows
    /// are the network's (`NetworkRows`), the boundary's fixed ones masked
    /// in the solve, and the layout keeps its regions (`free_regions`).
    fn prepare_iterative(&mut self, adj: &Adjacency, alive: &[bool]) {
        let layout = &mut self.layout;
        for &i in &self.order {
            layout.role[i] = NodeRole::Dense;
        }
        layout.eliminated.clear();
        layout.dense.clear();
        layout.link_start.clear();
        layout.link_pos.clear();
        layout.link_edge.clear();
        layout.dense_links.clear();
        layout.touches_eliminated.clear();
        layout.list_fixed_and_isolated();
        self.no_touches.clear();
        self.no_touches.resize(adj.n_edges(), F::ZERO);
        self.mark_cut_off(adj, alive);
    }

    /// Split the free nodes in `self.order` into eliminated and dense (a
    /// greedy independent set), eliminating only nodes without a fixed
    /// neighbour if `quiet_only`. Returns the estimated cost of a solve
    /// with that split, in multiply-subtract pairs: the factorisation, plus
    /// the Schur term, which is counted in full if an eliminated node is
    /// driven through a fixed neighbour (its term changes every substep) and
    /// at a quarter otherwise (it is reused while nothing it depends on
    /// moves).
    fn split(&mut self, adj: &Adjacency, boundary: &Boundary<F>, quiet_only: bool) -> usize {
        let layout = &mut self.layout;
        layout.eliminated.clear();
        layout.dense.clear();
        for &i in &self.order {
            layout.role[i] = NodeRole::Dense;
        }
        let mut any_driven = false;
        for &i in &self.order {
            let mut next_to_eliminated = false;
            let mut driven = false;
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                next_to_eliminated |= layout.role[j] == NodeRole::Eliminated;
                driven |= boundary.fixed[j];
            }
            if next_to_eliminated || (quiet_only && driven) {
                layout.role[i] = NodeRole::Dense;
                layout.pos[i] = layout.dense.len();
                layout.dense.push(i);
            } else {
                layout.role[i] = NodeRole::Eliminated;
                layout.eliminated.push(i);
                any_driven |= driven;
            }
        }
        let (nd, ne) = (layout.dense.len(), layout.eliminated.len());
        let schur = ne * nd * nd / 2;
        nd * nd * nd / 6 + if any_driven { schur } else { schur / 4 }
    }

    /// Mark the free nodes of the current layout that no alive path joins
    /// to a fixed node: those whose connected component of the alive graph
    /// holds no fixed node. The components are found once per generation
    /// and serve every boundary.
    fn mark_cut_off(&mut self, adj: &Adjacency, alive: &[bool]) {
        self.mark_cut_off_nodes(adj, alive);
        if self.layout.iterative {
            self.network_rows(adj, alive);
            self.free_regions(adj, alive);
        }
    }

    /// Find the current layout's regions (`Layout::region`). A region
    /// that no fixed neighbour drives sits at exactly 0 V, as a direct
    /// solve gives (so that outputs no current reaches tie exactly); the
    /// solve holds it there (`solve_iterative`).
    ///
    /// The regions are found once per generation for every node some
    /// boundary fixed (`Terminals`); a boundary, which fixes some of them,
    /// joins those regions through the ones it leaves free.
    fn free_regions(&mut self, adj: &Adjacency, alive: &[bool]) {
        let (layout, net_rows, terminals) = (&mut self.layout, &self.net_rows, &mut self.terminals);
        terminals.grow(&layout.fixed);
        terminals.find_regions(adj, alive, net_rows, self.generation);
        // Union-find over the terminals' regions, then each terminal's row.
        let n_base = terminals.regions;
        let mut parent = std::mem::take(&mut terminals.parent);
        let parent = &mut parent;
        parent.clear();
        parent.extend(0..(n_base + terminals.nodes.len()) as u32);
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let up = parent[parent[x as usize] as usize];
                parent[x as usize] = up;
                x = up;
            }
            x
        }
        let element = |terminals: &Terminals, j: usize| match terminals.index[j] {
            NO_REGION => terminals.region[net_rows.pos[j]],
            t => (n_base + t as usize) as u32,
        };
        for (t, &i) in terminals.nodes.iter().enumerate() {
            if layout.role[i] == NodeRole::Fixed {
                continue;
            }
            let own = (n_base + t) as u32;
            for k in adj.range(i) {
                let j = adj.other[k] as usize;
                if alive[adj.edge[k] as usize] && layout.role[j] != NodeRole::Fixed {
                    let (x, y) = (find(parent, own), find(parent, element(terminals, j)));
                    parent[x.max(y) as usize] = x.min(y);
                }
            }
        }
        let region = &mut layout.region;
        region.clear();
        region.extend(net_rows.unknown_node.iter().map(|&i| {
            if layout.role[i] == NodeRole::Fixed {
                NO_REGION
            } else {
                find(parent, element(terminals, i))
            }
        }));
        // Split: a component with rows of more than one region.
        layout.split = (0..net_rows.component_start.len() - 1).any(|c| {
            let rows = &region[net_rows.component_start[c]..net_rows.component_start[c + 1]];
            let mut free = rows.iter().filter(|&&r| r != NO_REGION);
            free.next().is_some_and(|&first| free.any(|&r| r != first))
        });
        layout.regions = n_base + terminals.nodes.len();
        layout.regions_build = net_rows.rows_build;
        terminals.parent = std::mem::take(parent);
    }

    /// Number the rows of the iterative path, every node with an alive
    /// edge, by connected component of the alive edges, and list their
    /// links (`NetworkRows`). Every boundary shares them, so they are
    /// built once per instance and again only when pruning splits a
    /// component.
    fn network_rows(&mut self, adj: &Adjacency, alive: &[bool]) {
        self.note_deaths(adj, alive);
        // Rows built since edges last came alive hold every alive link
        // (and the pruned ones, whose conductance 0 adds exact zeros);
        // they stay while the components do, that is while both ends of
        // every link that died since are still joined.
        let log_now = (self.deaths_log, self.deaths.len());
        let net_rows = &self.net_rows;
        if net_rows.rows_epoch == Some(self.epoch) && net_rows.deaths_seen.0 == log_now.0 {
            let first = net_rows.deaths_seen.1;
            let mut joined = true;
            for d in first..self.deaths.len() {
                let (a, b) = self.deaths[d];
                if !self.still_joined(adj, alive, a as usize, b as usize) {
                    joined = false;
                    break;
                }
            }
            if joined {
                self.net_rows.deaths_seen = log_now;
                return;
            }
        }
        let net_rows = &mut self.net_rows;
        let n = adj.start.len() - 1;
        // The components, breadth first, into `unknowns` and `starts`.
        let (unknowns, starts) = (&mut self.new_unknowns, &mut self.new_starts);
        unknowns.clear();
        starts.clear();
        net_rows.unlinked.clear();
        let mut seen = vec![false; n];
        let joins = |k: usize| alive[adj.edge[k] as usize];
        for root in 0..n {
            if seen[root] {
                continue;
            }
            seen[root] = true;
            if !adj.range(root).any(joins) {
                net_rows.unlinked.push(root);
                continue;
            }
            let start = unknowns.len();
            starts.push(start);
            unknowns.push(root);
            let mut next = start;
            while next < unknowns.len() {
                let i = unknowns[next];
                next += 1;
                for k in adj.range(i) {
                    let j = adj.other[k] as usize;
                    if joins(k) && !seen[j] {
                        seen[j] = true;
                        unknowns.push(j);
                    }
                }
            }
        }
        starts.push(unknowns.len());
        net_rows.deaths_seen = log_now;
        if net_rows.rows_epoch == Some(self.epoch)
            && same_components(&net_rows.component_start, &net_rows.pos, unknowns, starts)
        {
            return;
        }
        // Each row's alive links (node, edge), in adjacency order:
        // `links[link_range[i]]` for node `i`.
        let links = &mut self.links;
        links.clear();
        self.link_range.resize(n, (0, 0));
        for &i in unknowns.iter() {
            let first = links.len() as u32;
            links.extend(
                adj.range(i)
                    .filter(|&k| joins(k))
                    .map(|k| (adj.other[k], adj.edge[k])),
            );
            self.link_range[i] = (first, links.len() as u32);
        }
        std::mem::swap(&mut net_rows.unknown_node, unknowns);
        std::mem::swap(&mut net_rows.component_start, starts);
        net_rows.rows_epoch = Some(self.epoch);
        self.stats.rows_built += 1;
        self.rows_builds += 1;
        net_rows.rows_build = self.rows_builds;
        let (links, link_range) = (&self.links, &self.link_range);
        let links_of = |i: usize| {
            let (first, end) = link_range[i];
            &links[first as usize..end as usize]
        };
        // Within a component, rows colour by colour for the
        // preconditioner's sweeps, and within a colour as
        // `sliced::Colouring::runs` orders them, for little padding.
        net_rows.pos.clear();
        net_rows.pos.resize(n, usize::MAX);
        net_rows.rows.clear();
        net_rows.component_chunk.clear();
        let mut runs = Vec::new();
        for c in 0..net_rows.component_start.len() - 1 {
            let unknowns = net_rows.component_start[c]..net_rows.component_start[c + 1];
            runs.clear();
            runs.extend(
                self.colouring
                    .runs(
                        &mut net_rows.unknown_node[unknowns.clone()],
                        n,
                        DEGREE_WINDOW,
                        |i| links_of(i).iter().map(|&(j, _)| j as usize),
                    )
                    .into_iter()
                    .map(|r| r.start + unknowns.start..r.end + unknowns.start),
            );
            for a in unknowns {
                net_rows.pos[net_rows.unknown_node[a]] = a;
            }
            let (pos, unknown_node) = (&net_rows.pos, &net_rows.unknown_node);
            let chunks = net_rows.rows.push_component(&runs, |a| {
                links_of(unknown_node[a])
                    .iter()
                    .map(|&(j, e)| (pos[j as usize] as u32, e))
            });
            net_rows.component_chunk.push(chunks.start);
        }
        net_rows.component_chunk.push(net_rows.rows.n_chunks());
        net_rows.edge_links.clear();
        net_rows.edge_links.resize(adj.n_edges(), [NO_LINK; 2]);
        for (side, rows) in [&net_rows.rows.lower, &net_rows.rows.upper]
            .into_iter()
            .enumerate()
        {
            for (k, &e) in rows.via().iter().enumerate() {
                if e != sliced::NO_EDGE {
                    net_rows.edge_links[e as usize][side] = k as u32;
                }
            }
        }
    }

    /// Bring `deaths` up to date with `alive`, once per generation: the
    /// edges alive at the last call and dead now, with their ends. A new
    /// log starts whenever edges may have come alive.
    fn note_deaths(&mut self, adj: &Adjacency, alive: &[bool]) {
        if self.deaths_generation == Some(self.generation) {
            return;
        }
        self.deaths_generation = Some(self.generation);
        let seen = &mut self.deaths_alive;
        let revived = seen.len() != alive.len() || alive.iter().zip(&*seen).any(|(&a, &s)| a && !s);
        if revived || self.deaths_epoch != Some(self.epoch) {
            self.deaths_log += 1;
            self.deaths_epoch = Some(self.epoch);
            self.deaths.clear();
            seen.clear();
            seen.extend_from_slice(alive);
            return;
        }
        if alive == seen.as_slice() {
            return;
        }
        for i in 0..adj.start.len() - 1 {
            for k in adj.range(i) {
                let (j, e) = (adj.other[k] as usize, adj.edge[k] as usize);
                if i < j && seen[e] && !alive[e] {
                    self.deaths.push((i as u32, j as u32));
                }
            }
        }
        seen.copy_from_slice(alive);
    }

    /// Whether nodes `a` and `b` are joined by alive edges: a
    /// breadth-first search from each end, the smaller frontier on, until
    /// they meet or one runs out.
    fn still_joined(&mut self, adj: &Adjacency, alive: &[bool], a: usize, b: usize) -> bool {
        let mark = &mut self.search_mark;
        mark.resize(adj.start.len() - 1, 0);
        self.search_stamp += 2;
        let stamps = [self.search_stamp, self.search_stamp + 1];
        let [front_a, front_b, next] = &mut self.frontiers;
        for (front, (end, stamp)) in [&mut *front_a, &mut *front_b]
            .into_iter()
            .zip([(a, stamps[0]), (b, stamps[1])])
        {
            front.clear();
            front.push(end);
            mark[end] = stamp;
        }
        loop {
            let (front, stamp, other) = if front_a.len() <= front_b.len() {
                (&mut *front_a, stamps[0], stamps[1])
            } else {
                (&mut *front_b, stamps[1], stamps[0])
            };
            if front.is_empty() {
                return false;
            }
            next.clear();
            for &i in front.iter() {
                for k in adj.range(i) {
                    let (j, e) = (adj.other[k] as usize, adj.edge[k] as usize);
                    if !alive[e] {
                        continue;
                    }
                    if mark[j] == other {
                        return true;
                    }
                    if mark[j] != stamp {
                        mark[j] = stamp;
                        next.push(j);
                    }
                }
            }
            std::mem::swap(front, next);
        }
    }

    /// The cut-off nodes of `mark_cut_off`.
    fn mark_cut_off_nodes(&mut self, adj: &Adjacency, alive: &[bool]) {
        self.layout.generation = self.generation;
        let connected = !alive.contains(&false) || self.connected(adj, alive);
        let layout = &mut self.layout;
        if connected {
            // Nothing pruned, or the alive edges still join every node: only
            // nodes without any edge are cut off (there are none in the
            // second case).
            for (cut, role) in layout.cut_off.iter_mut().zip(&layout.role) {
                *cut = *role == NodeRole::Isolated;
            }
            layout.any_cut_off = false;
            return;
        }
        self.grounded_component.fill(false);
        for (role, &c) in layout.role.iter().zip(&self.component) {
            if *role == NodeRole::Fixed {
                self.grounded_component[c] = true;
            }
        }
        layout.any_cut_off = false;
        for ((cut, role), &c) in layout
            .cut_off
            .iter_mut()
            .zip(&layout.role)
            .zip(&self.component)
        {
            *cut = *role != NodeRole::Fixed && !self.grounded_component[c];
            layout.any_cut_off |= *cut && *role != NodeRole::Isolated;
        }
    }

    /// Whether the alive edges join every node into one component. Finds
    /// the components once per generation (`component`).
    fn connected(&mut self, adj: &Adjacency, alive: &[bool]) -> bool {
        if self.components_generation != Some(self.generation) {
            self.components_generation = Some(self.generation);
            let n = adj.start.len() - 1;
            let component = &mut self.component;
            component.clear();
            component.resize(n, usize::MAX);
            let mut count = 0;
            for root in 0..n {
                if component[root] != usize::MAX {
                    continue;
                }
                component[root] = count;
                self.stack.push(root);
                while let Some(i) = self.stack.pop() {
                    for k in adj.range(i) {
                        let j = adj.other[k] as usize;
                        if alive[adj.edge[k] as usize] && component[j] == usize::MAX {
                            component[j] = count;
                            self.stack.push(j);
                        }
                    }
                }
                count += 1;
            }
            self.grounded_component.resize(count, false);
        }
        self.grounded_component.len() == 1
    }

    /// Node voltages `v` (volt) for conductances `g` (siemens, 0 for a pruned
    /// edge) under the boundary of the last `prepare`.
    ///
    /// Assumes `prepare` saw the same `alive` mask and boundary; `v` has one
    /// entry per node. `gmin` may be 0: the nodes it alone would hold are
    /// exactly the cut-off ones, which sit at 0 V anyway.
    pub fn solve(
        &mut self,
        net: &Network,
        adj: &Adjacency,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
    ) {
        self.sums.fill(net, adj, g, boundary);
        self.solve_from_sums(g, gmin, boundary, v, false);
    }

    /// As `solve`, with `self.sums` already filled for `g` and `boundary`.
    /// With `reuse`, the Schur term of the eliminated nodes is taken from
    /// the previous solve: the caller vouches that no edge touching an
    /// eliminated node (`touches_eliminated`) has changed since, and that
    /// the boundary is the same. On the iterative path `v` holds the
    /// starting guess (the previous solve's voltages) and `reuse` does not
    /// apply.
    ///
    /// The dense system `S x = b` keeps the upper triangle of `S`, row
    /// `a` from the start of the block holding its diagonal, and `b` as a
    /// vector of its own, which the factorisation carries through (forward
    /// substitution). Rows are padded to whole blocks of `LANES` (see
    /// `crate::lanes`) so that every row update is vector code; entries left
    /// of the diagonal hold values that are never read.
    pub fn solve_from_sums(
        &mut self,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
        reuse: bool,
    ) {
        self.solve_with(Isa::Portable, g, gmin, boundary, v, reuse)
    }

    /// `solve_from_sums`, its kernels compiled for (the inlining caller's)
    /// instruction set `isa`.
    #[inline(always)]
    fn solve_with(
        &mut self,
        isa: Isa,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
        reuse: bool,
    ) {
        if self.layout.iterative {
            self.solve_iterative(isa, g, gmin, boundary, v);
            return;
        }
        self.stats.dense_solves += 1;
        self.pulse_solves = 0;
        let layout = &self.layout;
        // (Fixed and isolated nodes get a diagonal too, never read.)
        for (d, &c) in self.diag.iter_mut().zip(&self.sums.conductance) {
            *d = gmin + c;
        }
        if layout.any_cut_off {
            // A cut-off node's links are left out and its voltage is set to
            // 0; its diagonal only has to be nonzero, which `gmin + c` is
            // not when `gmin = 0` (controllability) and pruning took every
            // edge it had. The other nodes' voltages are the same bits.
            for (d, &cut) in self.diag.iter_mut().zip(&layout.cut_off) {
                if cut {
                    *d = F::ONE;
                }
            }
        }
        for &i in &layout.fixed {
            v[i] = boundary.volts[i];
        }
        for &i in &layout.isolated {
            v[i] = F::ZERO;
        }
        let nd = layout.dense.len();
        if nd == 0 {
            // Every free node is eliminated, and they have no free
            // neighbours: each sits at the current its fixed neighbours
            // inject over its conductance.
            for &i in &layout.eliminated {
                v[i] = if layout.cut_off[i] {
                    F::ZERO
                } else {
                    self.sums.inject[i] / self.diag[i]
                };
            }
            return;
        }
        // Row `a` of `S` holds columns `a..nd`, from the start of the block
        // of `a` on; `b` is a vector of its own.
        let stride = lanes::round_up(nd);
        let rows = nd.next_multiple_of(ROWS);
        if !reuse {
            // Eliminating node i couples every pair of its dense
            // neighbours. Row `c` of `coupling` holds the conductances from
            // the `c`-th eliminated node to the dense nodes (zero where
            // there is no edge), and the current it injects passes on to
            // them in proportion.
            let ne = layout.eliminated.len();
            self.coupling.clear();
            self.coupling.resize(ne * stride, F::ZERO);
            self.inv_diag.clear();
            self.eliminated_inject.clear();
            for (idx, &i) in layout.eliminated.iter().enumerate() {
                self.inv_diag.push(F::ONE / self.diag[i]);
                self.eliminated_inject.push(self.sums.inject[i]);
                let row = &mut self.coupling[idx * stride..(idx + 1) * stride];
                for k in layout.link_start[idx]..layout.link_start[idx + 1] {
                    row[layout.link_pos[k]] = g[layout.link_edge[k]];
                }
                if layout.any_cut_off && layout.cut_off[i] {
                    // Its alive links all lead to cut-off nodes: leave them out.
                    row.fill(F::ZERO);
                }
            }
            self.eliminated_term.clear();
            self.eliminated_term.resize(rows * stride, F::ZERO);
            self.eliminated_rhs.clear();
            self.eliminated_rhs.resize(stride, F::ZERO);
            if nd > 0 {
                schur_update(
                    &mut self.eliminated_term,
                    &mut self.eliminated_rhs,
                    nd,
                    stride,
                    &self.coupling,
                    &self.inv_diag,
                    &self.eliminated_inject,
                );
            }
        }
        self.schur.clear();
        self.schur.extend_from_slice(&self.eliminated_term);
        self.b.clear();
        self.b.extend_from_slice(&self.eliminated_rhs);
        for (a, &i) in layout.dense.iter().enumerate() {
            self.schur[a * stride + a] += self.diag[i];
            self.b[a] += self.sums.inject[i];
        }
        for &(a, b, e) in &layout.dense_links {
            // An alive link between two cut-off nodes is left out.
            if !(layout.any_cut_off && layout.cut_off[layout.dense[a]]) {
                self.schur[b * stride + a] -= g[e];
            }
        }
        let x = &mut self.x;
        x.clear();
        x.resize(stride, F::ZERO);
        ldlt_factor(&mut self.schur, &mut self.b, nd, stride, x, &mut self.pivot);
        // Back substitution, x = L^-T z, from z: once x_k is final, it is
        // taken out of every row above.
        for k in (1..nd).rev() {
            let x_k = x[k];
            for (a, x_a) in x[..k].iter_mut().enumerate() {
                *x_a -= self.schur[a * stride + k] * x_k;
            }
        }
        for (a, &i) in layout.dense.iter().enumerate() {
            v[i] = if layout.cut_off[i] { F::ZERO } else { x[a] };
        }
        for (idx, &i) in layout.eliminated.iter().enumerate() {
            let linked = &self.coupling[idx * stride..(idx + 1) * stride];
            let total = self.sums.inject[i] + lanes::dot(linked, x);
            v[i] = if layout.cut_off[i] {
                F::ZERO
            } else {
                total / self.diag[i]
            };
        }
    }

    /// The voltages of the free nodes by preconditioned conjugate
    /// gradients, component by component, each started from `v` or, after
    /// the first solve of a pulse, from the extrapolation of the pulse's
    /// last solves (see the module comment and `Real::CG_TOLERANCE`). The
    /// link conductances are kept in the chunked rows
    /// (`NetworkRows::rows`), changed ones brought in per solve. Sums run
    /// in one fixed order, so the result is the same on every machine,
    /// instruction set and thread.
    #[inline(always)]
    fn solve_iterative(&mut self, isa: Isa, g: &[F], gmin: F, boundary: &Boundary<F>, v: &mut [F]) {
        self.stats.iterative_solves += 1;
        let (layout, net_rows) = (&self.layout, &self.net_rows);
        let nf = net_rows.unknown_node.len();
        let cg = &mut self.cg;
        // (Every vector but `x` is written before it is read: only sized.)
        cg.x.clear();
        cg.x.resize(nf, F::ZERO);
        for x in [
            &mut cg.r,
            &mut cg.p,
            &mut cg.t,
            &mut cg.w,
            &mut cg.diag,
            &mut cg.inv_diag,
            &mut cg.b,
            &mut cg.deflate,
            &mut cg.deflated,
        ] {
            x.resize(nf, F::ZERO);
        }
        // The link conductances: if they were gathered for these rows,
        // only the edges whose conductance changed since are written
        // (within a pulse, a few devices move per substep); otherwise all
        // are gathered.
        if cg.gathered_for == Some(net_rows.rows_build) && cg.g_seen.len() == g.len() {
            let (seen_blocks, seen_rest) = cg.g_seen.as_chunks_mut::<LANES>();
            let (g_blocks, g_rest) = g.as_chunks::<LANES>();
            let blocks = seen_blocks
                .iter_mut()
                .zip(g_blocks)
                .map(|(s, g)| (s.as_mut_slice(), g.as_slice()));
            for (first, (seen, g)) in blocks.chain([(seen_rest, g_rest)]).enumerate() {
                // (Compared as a block first: most blocks did not change.)
                if seen.iter().zip(g).fold(false, |any, (s, g)| any | (s != g)) {
                    for (l, (seen, &g)) in seen.iter_mut().zip(g).enumerate() {
                        if *seen != g {
                            *seen = g;
                            let [lower, upper] = net_rows.edge_links[first * LANES + l];
                            if lower != NO_LINK {
                                cg.lower_g[lower as usize] = g;
                            }
                            if upper != NO_LINK {
                                cg.upper_g[upper as usize] = g;
                            }
                        }
                    }
                }
            }
        } else {
            // (A padding link's edge is out of range: conductance 0.)
            let gather = |to: &mut Vec<F>, via: &[u32]| {
                to.clear();
                to.extend(via.iter().map(|&e| match g.get(e as usize) {
                    // (Read one by one: the compiler's gather instruction is
                    // slower.)
                    // SAFETY: a reference, read as a value.
                    Some(g) => unsafe { std::ptr::read_volatile(g) },
                    None => F::ZERO,
                }));
            };
            gather(&mut cg.lower_g, net_rows.rows.lower.via());
            gather(&mut cg.upper_g, net_rows.rows.upper.via());
            cg.g_seen.clear();
            cg.g_seen.extend_from_slice(g);
            cg.gathered_for = Some(net_rows.rows_build);
        }
        // The start: the polynomial through the last solves of this pulse
        // (up to `EXTRAPOLATION_ORDER + 1` of them), one substep on.
        let weights: &[f64] = match self.pulse_solves {
            0 => &[],
            n => EXTRAPOLATION[(n - 1).min(EXTRAPOLATION_ORDER)],
        };
        // (Term by term over all unknowns, each still summed in the order
        // of `weights`.)
        // A pulse's first solve: from the first solve of the last pulse
        // under the same boundary and drive (the same rows), if any, else
        // from the voltages of the previous solve.
        // (Only a first solve needs the drive: `weights` is empty then.)
        let drive = self
            .active_slot
            .filter(|_| weights.is_empty())
            .map(|slot| (slot, drive_hash(&layout.fixed, boundary)));
        let last_first = drive.and_then(|drive| {
            self.first_solves
                .get(&drive)
                .filter(|(build, x)| *build == net_rows.rows_build && x.len() == nf)
        });
        if let Some((_, start)) = last_first {
            cg.x.copy_from_slice(start);
        } else if weights.is_empty() {
            for (x, &i) in cg.x.iter_mut().zip(&net_rows.unknown_node) {
                *x = v[i];
            }
        } else {
            for (w, h) in weights.iter().zip(&self.history) {
                let w = F::from_f64(*w);
                for (x, &h) in cg.x.iter_mut().zip(h) {
                    *x += w * h;
                }
            }
        }
        let (conductance, inject) = (&self.sums.conductance[..], &self.sums.inject[..]);
        for ((d, b), &i) in cg
            .diag
            .iter_mut()
            .zip(&mut cg.b)
            .zip(&net_rows.unknown_node)
        {
            *d = gmin + conductance[i];
            *b = inject[i];
        }
        for (inv, &d) in cg.inv_diag.iter_mut().zip(&cg.diag) {
            *inv = F::ONE / d;
        }
        // The boundary's fixed rows are masked: with `1/D` taken as 0 and
        // `x` at 0 there, every vector of the iteration stays 0 on them,
        // so their links add nothing and the free rows solve the
        // boundary's system (the fixed nodes' pull is in `D` and `b`).
        for &i in &layout.fixed {
            let a = net_rows.pos[i];
            if a != usize::MAX {
                cg.inv_diag[a] = F::ZERO;
                cg.x[a] = F::ZERO;
            }
        }
        // So are the regions no fixed neighbour drives (where the
        // boundary splits a component): they sit at exactly 0 V.
        assert_eq!(
            layout.regions_build, net_rows.rows_build,
            "regions of these rows"
        );
        if layout.split {
            let driven = &mut self.driven;
            driven.clear();
            driven.resize(layout.regions, false);
            for (&r, &b) in layout.region.iter().zip(&cg.b) {
                if r != NO_REGION && b != F::ZERO {
                    driven[r as usize] = true;
                }
            }
            for (a, &r) in layout.region.iter().enumerate() {
                if r != NO_REGION && !driven[r as usize] {
                    cg.inv_diag[a] = F::ZERO;
                    cg.x[a] = F::ZERO;
                }
            }
        }
        let tol = F::CG_TOLERANCE;
        for c in 0..net_rows.component_start.len() - 1 {
            let unknowns = net_rows.component_start[c]..net_rows.component_start[c + 1];
            let chunks = net_rows.component_chunk[c]..net_rows.component_chunk[c + 1];
            let iterations = cg.solve(isa, &net_rows.rows, chunks, unknowns, tol);
            match iterations {
                Some(iterations) => self.stats.cg_iterations += iterations as u64,
                None => self.stats.cg_capped += 1,
            }
        }
        for (a, &i) in net_rows.unknown_node.iter().enumerate() {
            v[i] = cg.x[a];
        }
        for &i in net_rows.unlinked.iter().chain(&layout.isolated) {
            v[i] = F::ZERO;
        }
        for &i in &layout.fixed {
            v[i] = boundary.volts[i];
        }
        if let Some(drive) = drive {
            let (build, x) = self.first_solves.entry(drive).or_default();
            *build = net_rows.rows_build;
            x.clear();
            x.extend_from_slice(&cg.x);
        }
        // (The oldest solve's vector becomes the next solve's `x`, which
        // starts from zeros.)
        self.history.rotate_right(1);
        std::mem::swap(&mut self.history[0], &mut cg.x);
        self.pulse_solves += 1;
    }

    /// `solve_from_sums` compiled for the instruction set `isa`, which the
    /// running CPU must have (`Isa::detect`, `Isa::available`).
    #[inline(always)]
    pub fn solve_from_sums_on(
        &mut self,
        isa: Isa,
        g: &[F],
        gmin: F,
        boundary: &Boundary<F>,
        v: &mut [F],
        reuse: bool,
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller passes only an instruction set the
            // running CPU has.
            Isa::Avx512 => unsafe { self.solve_avx512(g, gmin, boundary, v, reuse) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.solve_avx2(g, gmin, boundary, v, reuse) },
            _ => self.solve_with(Isa::Portable, g, gmin, boundary, v, reuse),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn solve_avx512(&mut self, g: &[F], gmin: F, boundary: &Boundary<F>, v: &mut [F], reuse: bool) {
        self.solve_with(Isa::Avx512, g, gmin, boundary, v, reuse)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn solve_avx2(&mut self, g: &[F], gmin: F, boundary: &Boundary<F>, v: &mut [F], reuse: bool) {
        self.solve_with(Isa::Avx2, g, gmin, boundary, v, reuse)
    }

    /// Per edge: whether it touches a node the current layout eliminates
    /// (see `solve_from_sums`).
    pub fn touches_eliminated(&self) -> &[F] {
        touches_of(&self.layout, &self.no_touches)
    }

    /// The node sums, to update, alongside `touches_eliminated`.
    pub fn sums_and_touches(&mut self) -> (&mut NodeSums<F>, &[F]) {
        (&mut self.sums, touches_of(&self.layout, &self.no_touches))
    }
}

/// Whether the components `unknowns[starts[k]..starts[k + 1]]` are those
/// of a layout (`component_start`, and `pos`, each node's unknown number):
/// as many, each within one of the layout's, of its size.
fn same_components(
    component_start: &[usize],
    pos: &[usize],
    unknowns: &[usize],
    starts: &[usize],
) -> bool {
    if component_start.len() != starts.len() || component_start.last() != starts.last() {
        return false;
    }
    // The layout's component of an unknown numbered `a`.
    let component_of = |a: usize| component_start.partition_point(|&s| s <= a) - 1;
    (0..starts.len() - 1).all(|k| {
        let nodes = &unknowns[starts[k]..starts[k + 1]];
        let c = component_of(pos[nodes[0]]);
        component_start[c + 1] - component_start[c] == nodes.len()
            && nodes.iter().all(|&i| component_of(pos[i]) == c)
    })
}

/// `layout`'s per-edge flags of edges touching an eliminated node, or
/// `none` (all 0) for an iterative layout, which eliminates nothing.
fn touches_of<'a, F>(layout: &'a Layout<F>, none: &'a [F]) -> &'a [F] {
    if layout.iterative {
        none
    } else {
        &layout.touches_eliminated
    }
}

/// Rows of the dense system updated together by `schur_update`: their
/// independent chains of subtractions keep the floating-point units busy.
const ROWS: usize = 4;

/// Subtract from the upper triangle of the `nd`-row matrix `s` (row `a`
/// holds columns `a..nd`) every eliminated node's rank-one term
/// `c c^T / d`, and add to the right-hand side `rhs` its `c i / d`, where
/// `c` is the node's row of `coupling`, `1 / d` its entry of `inv_diag` and
/// `i` the current it injects. `s` has whole groups of `ROWS` rows; each
/// row is updated from the start of the block holding its diagonal, so
/// entries left of the diagonal take values of no meaning.
#[inline(always)]
fn schur_update<F: Real>(
    s: &mut [F],
    rhs: &mut [F],
    nd: usize,
    stride: usize,
    coupling: &[F],
    inv_diag: &[F],
    inject: &[F],
) {
    for a0 in (0..nd).step_by(ROWS) {
        for b0 in (a0 / LANES * LANES..stride).step_by(LANES) {
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
    for ((c, &inv_d), &i) in coupling.chunks_exact(stride).zip(inv_diag).zip(inject) {
        for (r, &c) in rhs.iter_mut().zip(c) {
            *r += c * inv_d * i;
        }
    }
}

/// Factorise the symmetric positive definite `n x n` matrix `a` as
/// `L D L^T` and solve `L D z = b`. `a` is stored as in `schur_update`:
/// row `j` holds columns `j..n` from the start of the block of `j`, with
/// row stride `stride`, a whole number of blocks.
///
/// On return row `j` of `a` holds `L^T` (column `k > j` is `L_kj`) and `z`
/// the solution; the diagonal and the entries left of it, and `b`, hold
/// values of no meaning. `z` has `stride` entries, zero from `n` on.
///
/// Right-looking: pivot `j` subtracts its row from every row below, in
/// whole blocks (vector code), then scales itself into `L`. No square
/// roots.
#[inline(always)]
fn ldlt_factor<F: Real>(
    a: &mut [F],
    b: &mut [F],
    n: usize,
    stride: usize,
    z: &mut [F],
    pivot: &mut [F],
) {
    for j in 0..n {
        pivot[j] = a[j * stride + j];
    }
    // Pivots go in pairs: pivot j first updates row j + 1 alone, then the
    // rows below take both pivots' updates in one pass. Each value still
    // sees the same operations in the same order as one pivot at a time.
    for j in (0..n).step_by(2) {
        let (top, below) = a.split_at_mut((j + 1) * stride);
        let row_j = &mut top[j * stride..];
        let inv_j = F::ONE / pivot[j];
        if j + 1 == n {
            // The last pivot: nothing below it.
            z[j] = b[j] * inv_j;
            break;
        }
        let (row_j1, rest) = below.split_at_mut(stride);
        let j1 = j + 1;
        let a_jj1 = row_j[j1];
        let l_j1j = a_jj1 * inv_j;
        pivot[j1] -= l_j1j * a_jj1;
        let start = j1 / LANES * LANES;
        lanes::sub_scaled(&mut row_j1[start..], l_j1j, &row_j[start..]);
        let inv_j1 = F::ONE / pivot[j1];
        let rows_below = rest[..(n - j - 2) * stride].chunks_exact_mut(stride);
        let coefficients = row_j[j + 2..n].iter().zip(&row_j1[j + 2..n]);
        for ((k, row_k), (&a_jk, &a_j1k)) in (j + 2..n).zip(rows_below).zip(coefficients) {
            let (l_kj, l_kj1) = (a_jk * inv_j, a_j1k * inv_j1);
            pivot[k] -= l_kj * a_jk;
            pivot[k] -= l_kj1 * a_j1k;
            let start = k / LANES * LANES;
            let blocks = row_k[start..].as_chunks_mut::<LANES>().0;
            let pivot_rows = row_j[start..]
                .as_chunks::<LANES>()
                .0
                .iter()
                .zip(row_j1[start..].as_chunks::<LANES>().0);
            for (y, (x, w)) in blocks.iter_mut().zip(pivot_rows) {
                let (yv, xv, wv) = (*y, *x, *w);
                *y = std::array::from_fn(|l| (yv[l] - l_kj * xv[l]) - l_kj1 * wv[l]);
            }
        }
        for (row, inv, i) in [(row_j, inv_j, j), (row_j1, inv_j1, j1)] {
            let b_i = b[i];
            z[i] = b_i * inv;
            let from = (i + 1) / LANES * LANES;
            // Whole blocks, so that the loads below can take the scaled
            // values straight from these stores.
            for block in row[from..stride].as_chunks_mut::<LANES>().0 {
                *block = std::array::from_fn(|l| block[l] * inv);
            }
            lanes::sub_scaled(&mut b[from..stride], b_i, &row[from..stride]);
        }
    }
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
