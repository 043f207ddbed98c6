//! The GPU executor: WGSL compute shaders, run through wgpu, train a chunk
//! of instances at once with the protocol of `protocol::training`, step by
//! step and in f32, in one of two layouts (`Layout`): a workgroup per
//! instance (`shaders/train_group.wgsl`) wherever its workgroup memory fits
//! the adapter, else an invocation per instance (`shaders/train.wgsl`).
//!
//! Not here: the protocol itself (MODEL.md, `protocol::training`), which the
//! shaders mirror function by function, or the set-up of instances
//! (`Instance::build`, on the CPU as for every backend).
//!
//! Workgroup layout. The kernel's shape (`GroupShape`: invocations, edges
//! per invocation, node count, dense bound, pivots per barrier, hence the
//! sizes of its workgroup arrays) is written into the shader's first lines
//! per chunk, and its pipelines are built on first use. The shader's own
//! comment says who does what. The dense bound is the count of nodes
//! outside the network's parity class (`Network::parity_class`), which
//! the kernel eliminates first wherever its greedy split would leave more
//! dense. It keeps the persistent state in the same interleaved slots of
//! `fs`, `us` and `state` as the thread layout (below), reads them at the
//! start of a dispatch and writes them back at its end, so buffers,
//! upload, readback and probes are shared. One dispatch runs up to
//! ERAS_PER_CHECK whole eras (`Gpu::group_plan`; on lavapipe as many
//! patterns or eras as its loop budget allows,
//! `GroupShape::loop_iterations`), once the first eras show that they
//! keep it under MULTI_ERA_SECONDS.
//! Instances are grouped by layout and shape before chunking, so that how
//! an instance's sums are cut across invocations depends on its network
//! alone. On an H200, 8-16-8 trained about 17,900 instances/s with 10,000
//! in flight (22 times that host's 2-thread CPU backend, 9 times the thread
//! layout) and 16-64-16 about 610/s (15 times), before the changes the
//! README lists after its table as not yet timed on a GPU.
//!
//! Thread layout. One invocation trains one instance. An
//! instance's state and scratch (resistances, conductances, node voltages,
//! the node split, the dense Schur complement) live in two storage buffers,
//! `fs` (f32) and `us` (u32), interleaved by lane: word `slot` of lane `l` is
//! at `slot * n_lanes + l`, with slot counts set by the largest network of
//! the chunk, so the invocations of a subgroup, stepping through
//! equal-sized networks together, touch consecutive words. The topology and
//! adjacency are stored once per distinct network of a chunk (every
//! instance of an all-to-all layered point shares one copy), the task once
//! per instance. State stays on the device from the first era to the final
//! read. The era loop runs one step per dispatch, every instance of the
//! chunk taking the same step: per pattern a read, then for punish and for
//! normalize a pulse start (the node split) and `n_sub` Euler substeps; then
//! the era's end (pruning, convergence). Each dispatch binds its own entry
//! of a uniform schedule (pattern, pulse, substep) by dynamic offset. Every
//! few eras the host reads one counter (how many instances still train) to
//! stop early; at the end only what the results need comes back: the
//! per-instance outcome, the trace, the final currents, the final `R` and
//! alive mask. Pruning runs in the shader, with the same counter-hash draw
//! as the CPU (`rng::PURPOSE_PRUNE`, words `[era, 0, 0, edge]`, compared as
//! a 24-bit integer so that the test is exact), so both backends prune the
//! same edges given the same resistances.
//!
//! Why steps this short: a dispatch stays brief on any GPU (no watchdog
//! trouble), and each invocation stays within lavapipe's budget of 65535
//! loop iterations (Mesa's llvmpipe ends every loop of an invocation past
//! it, silently; the shader detects that with a canary loop and the host
//! stops with a message). `Gpu::check` refuses up front, on lavapipe, the
//! networks whose single step could exceed it (on an H200 every size runs).
//!
//! Thread per instance needs many instances in flight: on an H200, 8-16-8
//! trains about 2,000 instances/s with 10,000 in flight and 5,900/s with
//! 100,000; 16-64-16 about 180/s with 20,000. A step is bound by memory
//! traffic (each instance's Schur complement and conductances, kilobytes,
//! do not stay in cache).
//!
//! Chunking. Every storage binding must fit the adapter's
//! `max_storage_buffer_binding_size` (128 MiB on lavapipe) and
//! `max_buffer_size`, and a dispatch at most
//! `max_compute_workgroups_per_dimension` workgroups (of 64 lanes in the
//! thread layout, of one lane in the workgroup layout). A batch is cut,
//! in order, into chunks that respect all three; buffers are allocated for
//! the largest chunk seen and reused. A network whose single instance does
//! not fit is refused up front (`Gpu::check`) with the limit in the message.
//!
//! Comparison with the CPU (tests/gpu.rs, every test in both layouts). The
//! shaders compute in f32 and follow the CPU kernel step by step (the
//! workgroup layout sums a few terms in another order), so they are
//! compared with
//! `Cpu { precision: F32 }` instance by instance, and with the f64
//! reference in distribution:
//! - single steps (a read, a punish pulse, a normalize pulse) from random
//!   states: node voltages within 1e-4 V plus 1e-4 relative, output currents
//!   within 1e-4 of the largest current, resistances within 1e-4 relative.
//!   The two sides differ only by f32 rounding (GPU division, sqrt, log, cos
//!   are not correctly rounded; compilers may fuse multiply-adds), about 1e-6
//!   relative per operation, amplified by the conditioning of the nodal
//!   system; measured: under 3% of the tolerance;
//! - whole training: `recalled` and `converged_era` identical for at least
//!   95% of instances (a rounding difference can flip a near-tied winner or
//!   a device at its threshold, after which the two runs part ways;
//!   measured: 99% to all, in both layouts, on lavapipe and on an H200),
//!   and the grid-point
//!   means (mean recalled / P, Pr[learned_all]) within three standard errors
//!   of the f64 CPU backend's.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex};

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use crate::backend::cpu::{Cpu, Precision};
use crate::backend::Executor;
use crate::instance::Instance;
use crate::model::network::{Adjacency, Network};
use crate::params::{ModelKind, Params, Topology};
use crate::protocol::training::{EraRead, Outcome};

/// What both kernels share: buffers, structs, draws, phase boundaries.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
/// The protocol kernel, thread per instance (after `COMMON`).
pub const SHADER: &str = include_str!("../../shaders/train.wgsl");
/// The protocol kernel, workgroup per instance (after `COMMON`); its shape
/// lines are replaced per chunk (`GroupShape::source`).
pub const GROUP_SHADER: &str = include_str!("../../shaders/train_group.wgsl");

/// The thread layout's source: `COMMON`, then `SHADER`.
pub fn thread_source() -> String {
    format!("{COMMON}\n{SHADER}")
}

/// Invocations per workgroup; `@workgroup_size` in the shader.
const WORKGROUP: u32 = 64;
/// Eras dispatched between two looks at how many instances still train.
const ERAS_PER_CHECK: usize = 4;
/// The longest a workgroup-layout dispatch of several eras should take,
/// seconds: the driver of a GPU that also drives a display may end a
/// dispatch that runs for seconds.
const MULTI_ERA_SECONDS: f64 = 0.5;
/// Lanes per chunk at most, whatever the limits allow: one thread per
/// instance fills a large GPU (about 2048 threads on each of 132
/// multiprocessors on an H200) only with a few hundred thousand.
const MAX_LANES: usize = 1 << 19;
/// No single buffer larger than this, whatever the adapter allows (u32
/// word indices reach 16 GiB).
const MAX_BUFFER_BYTES: u64 = (1 << 32) - 256;

const STATUS_RUNNING: u32 = 0;
const STATUS_DONE: u32 = 1;
const STATUS_FAILED: u32 = 2;
const STATUS_LOOP_LIMIT: u32 = 3;
const NO_ERA: u32 = u32::MAX;
const PULSE_PUNISH: u32 = 0;
const PULSE_NORMALIZE: u32 = 1;
/// A read, in a workgroup-layout probe's `pulse`.
const PROBE_READ: u32 = 2;
/// llvmpipe (lavapipe) ends every loop of a shader invocation once the
/// invocation has run this many loop iterations in all (Mesa's
/// `LP_MAX_TGSI_LOOP_ITERATIONS`).
const LAVAPIPE_LOOP_BUDGET: u64 = 65_535;

/// One instance's description and parameters: `InstanceDesc` in the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct InstanceDesc {
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub n_in: u32,
    pub n_hidden: u32,
    pub n_out: u32,
    pub n_edges: u32,
    pub n_patterns: u32,
    pub mask_words: u32,
    pub net_off: u32,
    pub task_off: u32,
    pub trace_off: u32,
    pub currents_off: u32,
    pub n_sub: u32,
    pub max_eras: u32,
    pub prune_below: u32,
    pub pad0: u32,
    pub v_read: f32,
    pub v_punish: f32,
    pub v_norm: f32,
    pub dt: f32,
    pub gmin: f32,
    pub alpha: f32,
    pub beta: f32,
    pub sigma_c2c: f32,
    pub f_prune: f32,
    pub pad1: u32,
    pub pad2: u32,
    pub pad3: u32,
}

/// What survives between era dispatches: `InstanceState` in the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct InstanceState {
    pub status: u32,
    pub eras_run: u32,
    pub converged_era: u32,
    pub pruned: u32,
    pub updates_lo: u32,
    pub updates_hi: u32,
    pub recalled: u32,
    pub energy_write: f32,
    pub winner: u32,
    pub mistakes: u32,
    pub n_dense: u32,
    pub n_eliminated: u32,
    pub moving: u32,
    pub pad: [u32; 3],
}

/// One dispatch's uniform, the chunk's layout and the step it runs: `Chunk`
/// in the shader. A chunk's schedule holds one per (pattern, pulse,
/// substep), each dispatch binds its own with a dynamic offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ChunkUniform {
    pub n_lanes: u32,
    pub m_max: u32,
    pub n_max: u32,
    pub d_max: u32,
    pub o_max: u32,
    pub pattern: u32,
    pub pulse: u32,
    pub substep: u32,
    pub two: u32,
    /// Workgroup layout: one past the last pattern of the dispatch.
    pub pattern_end: u32,
    /// Workgroup layout: 1 when the dispatch ends the era.
    pub end_era: u32,
    /// Workgroup layout: eras the dispatch runs (whole eras if more than 1).
    pub eras: u32,
}

/// One read of the trace: `TraceEntry` in the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct TraceEntry {
    pub correct: u32,
    pub read_power: f32,
}

/// Slot counts of the interleaved state of a chunk (the largest network's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slots {
    edges: usize,
    nodes: usize,
    dense: usize,
    outputs: usize,
    /// The workgroup kernel's bound on the dense system.
    group_dense: usize,
}

impl Slots {
    fn of(net: &Network) -> Slots {
        let n = net.n_nodes();
        let class = net.parity_class().iter().filter(|&&c| c).count();
        Slots {
            edges: net.n_edges().max(1),
            nodes: n,
            dense: dense_bound(n),
            outputs: net.n_out,
            group_dense: group_dense_bound(n, class),
        }
    }

    /// The slots of the largest network `params` may generate.
    fn of_params(params: &Params) -> Slots {
        let n = params.n_nodes();
        Slots {
            edges: params.max_edges().max(1),
            nodes: n,
            dense: dense_bound(n),
            outputs: params.network.n_out,
            group_dense: group_dense_bound(n, params.parity_class_size()),
        }
    }

    fn max(self, o: Slots) -> Slots {
        Slots {
            edges: self.edges.max(o.edges),
            nodes: self.nodes.max(o.nodes),
            dense: self.dense.max(o.dense),
            outputs: self.outputs.max(o.outputs),
            group_dense: self.group_dense.max(o.group_dense),
        }
    }

    /// f32 words per lane: ron, roff, vt, r, g; v, diag, inject, rhs;
    /// currents; the dense Schur complement.
    fn f32_words(self) -> usize {
        5 * self.edges + 4 * self.nodes + self.outputs + self.dense * self.dense
    }

    /// u32 words per lane: alive; role, pos, dense, eliminated, order,
    /// free degree, stack, link starts (one more); link dense positions and
    /// link edges (two per edge each).
    fn u32_words(self) -> usize {
        self.edges + 8 * self.nodes + 1 + 4 * self.edges
    }

    /// f32 slots written at upload: ron, roff, vt, r, g.
    fn f32_init_words(self) -> usize {
        5 * self.edges
    }
}

/// Which parallel layout trains a chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// The workgroup layout wherever it fits the adapter (its workgroup
    /// memory, and on lavapipe its loop budget), else thread per instance.
    #[default]
    Auto,
    /// One invocation per instance (`shaders/train.wgsl`).
    Thread,
    /// One workgroup per instance (`shaders/train_group.wgsl`); networks it
    /// cannot take are refused up front.
    Group,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Layout, String> {
        match s {
            "auto" => Ok(Layout::Auto),
            "thread" => Ok(Layout::Thread),
            "group" => Ok(Layout::Group),
            _ => Err(format!("unknown GPU layout {s:?} (auto, thread or group)")),
        }
    }
}

/// The compile-time shape of the workgroup kernel for a chunk: invocations
/// per workgroup and the sizes of its workgroup arrays. Edges round up to
/// a multiple of the workgroup, nodes and the dense bound to multiples of 8
/// (`group_dense_bound`), so that few shapes (and pipelines) serve a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupShape {
    pub wg: u32,
    pub edges_per_invocation: u32,
    pub nodes: u32,
    pub dense: u32,
    /// Pivots of the Cholesky factorisation per barrier: 1 or 2.
    pub pivots: u32,
}

/// The workgroup layout's knobs for measuring, read once per `Gpu` from
/// the environment: none changes the model, and the rows stay the same
/// except that the workgroup size changes how a few sums are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GroupKnobs {
    /// MEMSWEEP_GROUP_WG: invocations per workgroup, a power of two from 32
    /// to 256 (default: from the edges).
    wg: Option<u32>,
    /// MEMSWEEP_GROUP_PIVOTS: Cholesky pivots per barrier, 1 or 2.
    pivots: u32,
    /// MEMSWEEP_GROUP_ERAS: the most whole eras per dispatch, 1 to
    /// ERAS_PER_CHECK (see `Gpu::group_plan`).
    eras: usize,
}

impl Default for GroupKnobs {
    fn default() -> Self {
        GroupKnobs {
            wg: None,
            pivots: 2,
            eras: ERAS_PER_CHECK,
        }
    }
}

impl GroupKnobs {
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
        };
        let default = GroupKnobs::default();
        GroupKnobs {
            wg: var("MEMSWEEP_GROUP_WG")
                .filter(|w| w.is_power_of_two() && (32..=256).contains(w))
                .map(|w| w as u32),
            pivots: var("MEMSWEEP_GROUP_PIVOTS")
                .filter(|p| (1..=2).contains(p))
                .map_or(default.pivots, |p| p as u32),
            eras: var("MEMSWEEP_GROUP_ERAS").map_or(default.eras, |e| e.clamp(1, ERAS_PER_CHECK)),
        }
    }
}

impl GroupShape {
    /// About four edges per invocation, from 32 to 256 invocations (or the
    /// size `knobs` names, which changes only how the work is cut).
    fn of(slots: Slots, knobs: &GroupKnobs) -> GroupShape {
        let wg = knobs
            .wg
            .unwrap_or_else(|| slots.edges.div_ceil(4).next_power_of_two().clamp(32, 256) as u32);
        GroupShape {
            wg,
            edges_per_invocation: (slots.edges as u32).div_ceil(wg),
            nodes: (slots.nodes as u32).next_multiple_of(8),
            dense: slots.group_dense as u32,
            pivots: knobs.pivots,
        }
    }

    fn edges(self) -> u32 {
        self.wg * self.edges_per_invocation
    }

    fn dense(self) -> u32 {
        self.dense
    }

    /// Entries of the packed triangle, the right-hand side row included.
    fn triangle(self) -> u32 {
        (self.dense() + 1) * (self.dense() + 2) / 2
    }

    fn triangle_per_invocation(self) -> u32 {
        self.triangle().div_ceil(self.wg)
    }

    /// Bytes of workgroup memory (train_group.wgsl's `var<workgroup>`s).
    pub fn workgroup_bytes(self) -> u64 {
        let n = self.nodes as u64;
        let sets = n.div_ceil(32);
        let links = (n * n).div_ceil(4) + 1;
        let words = self.edges() as u64
            + 12 * n
            + (n + 2) * sets
            + links
            + self.triangle() as u64
            + 4 * (self.dense() as u64 + 1)
            + 2 * self.wg as u64
            + 7;
        4 * words
    }

    /// The kernel's source with this shape.
    fn source(self) -> String {
        let begin = GROUP_SHADER
            .find("// shape begin")
            .expect("train_group.wgsl: no shape begin");
        let end = GROUP_SHADER
            .find("// shape end")
            .expect("train_group.wgsl: no shape end");
        format!(
            "{COMMON}\n{}// shape: {self:?}\nconst WG: u32 = {}u;\nconst M_MAX: u32 = {}u;\n\
             const N_MAX: u32 = {}u;\nconst D_MAX: u32 = {}u;\nconst E_PER: u32 = {}u;\n\
             const PIVOTS: u32 = {}u;\n{}",
            &GROUP_SHADER[..begin],
            self.wg,
            self.edges(),
            self.nodes,
            self.dense(),
            self.edges_per_invocation,
            self.pivots,
            &GROUP_SHADER[end..]
        )
    }

    /// An upper bound on the loop iterations of one invocation over one
    /// pattern (a read and two pulses) for networks of this shape whose
    /// nodes have at most `degree` edges; and over the rest of a dispatch.
    fn loop_iterations(self, degree: u64, n_sub: u64, n_out: u64) -> (u64, u64) {
        let (n, m, d) = (self.nodes as u64, self.edges() as u64, self.dense() as u64);
        let wg = self.wg as u64;
        let per = |x: u64| x.div_ceil(wg);
        let (e, t) = (
            self.edges_per_invocation as u64,
            self.triangle_per_invocation() as u64,
        );
        let w = n.div_ceil(32);
        // Invocation 0's share: the breadth-first search and the greedy
        // set (twice, with the parity class's fallback) run there.
        let prepare =
            5 * per(n) + 32 * w + 2 * n * w + 2 * (per(n) * n + wg + n * w) + per(n * n / 4) + e;
        let sums = per(n) * degree;
        let solve = 2 * per(n)
            + t * n
            + per(n) * degree
            + d * (t + per(d))
            + 2 * per(d)
            + d * per(d)
            + per(n) * d;
        let read = prepare + sums + solve + per(n_out) * degree + e + wg + 2 * n_out;
        let pulse = prepare + sums + m + n_sub * (solve + 2 * e + 4 * e + sums);
        let rest = w + e + t + per(n) * (degree + w) + 4 * e + 2 * wg + 2 * e + 16;
        (read + 2 * pulse, rest)
    }
}

/// A bound on the dense system's size for a network of `n` nodes: every
/// phase fixes at least two nodes (an active input and an output), and the
/// first free node of the greedy order is always eliminated.
fn dense_bound(n: usize) -> usize {
    n.saturating_sub(2).max(1)
}

/// The workgroup kernel's bound for a network of `n` nodes with a parity
/// class of `class` nodes (`Network::parity_class`): the kernel falls back
/// to eliminating that class first whenever its greedy split leaves more
/// than the other `n - class` nodes dense, so its dense system never
/// exceeds them. Rounded up to a multiple of 8 (few shapes).
fn group_dense_bound(n: usize, class: usize) -> usize {
    (n - class).next_multiple_of(8).min(dense_bound(n)).max(1)
}

/// u32 words of one network's topology and adjacency in `net`.
fn topology_words(net: &Network) -> usize {
    6 * net.n_edges() + net.n_nodes() + 1 + net.n_nodes().div_ceil(32)
}

fn mask_words(n_in: usize) -> usize {
    n_in.div_ceil(32).max(1)
}

fn task_words(inst: &Instance) -> usize {
    inst.task.n_patterns() * (1 + mask_words(inst.network.n_in))
}

/// Rows of the interleaved initial state that `flatten` fills together.
const INTERLEAVE_ROWS: usize = 32;

/// A network as the dedup key of the shared topology.
struct SameNetwork<'a>(&'a Network);

impl PartialEq for SameNetwork<'_> {
    fn eq(&self, o: &Self) -> bool {
        let (a, b) = (self.0, o.0);
        a.n_in == b.n_in
            && a.n_hidden == b.n_hidden
            && a.n_out == b.n_out
            && a.tail == b.tail
            && a.head == b.head
            && a.polarity == b.polarity
            && a.layer == b.layer
    }
}

impl Eq for SameNetwork<'_> {}

impl Hash for SameNetwork<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let n = self.0;
        (n.n_in, n.n_hidden, n.n_out).hash(h);
        n.tail.hash(h);
        n.head.hash(h);
        n.polarity.hash(h);
        n.layer.hash(h);
    }
}

/// Bytes of each storage buffer a chunk needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sizes {
    desc: u64,
    net: u64,
    fs: u64,
    us: u64,
    state: u64,
    trace: u64,
    currents: u64,
    running: u64,
    /// The uniform schedule (not a storage buffer).
    schedule: u64,
}

impl Sizes {
    fn each(&self) -> [(&'static str, u64); 8] {
        [
            ("instance descriptions", self.desc),
            ("networks and tasks", self.net),
            ("f32 state and scratch", self.fs),
            ("u32 state and scratch", self.us),
            ("instance states", self.state),
            ("trace", self.trace),
            ("final currents", self.currents),
            ("era counters", self.running),
        ]
    }

    fn max(self, o: Sizes) -> Sizes {
        Sizes {
            desc: self.desc.max(o.desc),
            net: self.net.max(o.net),
            fs: self.fs.max(o.fs),
            us: self.us.max(o.us),
            state: self.state.max(o.state),
            trace: self.trace.max(o.trace),
            currents: self.currents.max(o.currents),
            running: self.running.max(o.running),
            schedule: self.schedule.max(o.schedule),
        }
    }
}

/// A chunk's accumulated needs while it is being planned.
#[derive(Clone, Debug, Default)]
struct ChunkNeeds {
    lanes: usize,
    slots: Slots,
    net_words: usize,
    trace_entries: usize,
    current_words: usize,
    max_eras: usize,
}

impl ChunkNeeds {
    fn sizes(&self) -> Sizes {
        let lanes = self.lanes as u64;
        Sizes {
            desc: lanes * size_of::<InstanceDesc>() as u64,
            net: 4 * self.net_words.max(1) as u64,
            fs: 4 * lanes * self.slots.f32_words() as u64,
            us: 4 * lanes * self.slots.u32_words() as u64,
            state: lanes * size_of::<InstanceState>() as u64,
            trace: 8 * self.trace_entries.max(1) as u64,
            currents: 4 * self.current_words.max(1) as u64,
            running: 4 * self.max_eras.max(1) as u64,
            schedule: 0,
        }
    }
}

/// The adapter limits a chunk must respect.
#[derive(Clone, Copy, Debug)]
struct ChunkLimits {
    /// Bytes per storage buffer (binding and buffer limits, and our cap).
    buffer_bytes: u64,
    /// Lanes per chunk, thread layout.
    lanes: usize,
    /// Lanes per chunk, workgroup layout (workgroups per dispatch).
    groups: usize,
    /// Workgroup memory and invocations per workgroup.
    workgroup_bytes: u64,
    invocations: u32,
}

/// Why no GPU executor could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuError(pub String);

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which adapters count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Any adapter that runs compute shaders, software ones (lavapipe)
    /// included, hardware first: `--backend gpu`.
    Any,
    /// Hardware adapters only: `--backend auto`.
    Hardware,
}

/// An adapter as `memsweep devices` lists it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Runs compute shaders with the storage buffers the kernel binds.
    pub suitable: bool,
    /// A GPU in hardware (discrete, integrated or virtual), not a CPU driver.
    pub hardware: bool,
}

impl AdapterSummary {
    /// `'name' (backend, type)`.
    pub fn describe(&self) -> String {
        format!("'{}' ({}, {})", self.name, self.backend, self.device_type)
    }
}

fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let compute = adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
    let storage = adapter.limits().max_storage_buffers_per_shader_stage >= 8;
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        suitable: compute && storage,
        hardware: matches!(
            info.device_type,
            wgpu::DeviceType::DiscreteGpu
                | wgpu::DeviceType::IntegratedGpu
                | wgpu::DeviceType::VirtualGpu
        ),
    }
}

/// Preference among suitable adapters: discrete, integrated, virtual, other,
/// then software.
fn rank(device_type: &str) -> u8 {
    match device_type {
        "DiscreteGpu" => 0,
        "IntegratedGpu" => 1,
        "VirtualGpu" => 2,
        "Other" => 3,
        _ => 4,
    }
}

/// Index of the adapter `selection` picks among `adapters`, if any.
pub fn pick(adapters: &[AdapterSummary], selection: Selection) -> Option<usize> {
    adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| a.suitable && (selection == Selection::Any || a.hardware))
        .min_by_key(|(i, a)| (rank(&a.device_type), *i))
        .map(|(i, _)| i)
}

fn new_instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Every adapter wgpu sees, in its order.
pub fn adapters() -> Vec<AdapterSummary> {
    enumerate(&new_instance()).iter().map(summary).collect()
}

/// The GPU context, built once: adapter, device, queue, the kernel's
/// pipelines, and buffers reused from chunk to chunk.
pub struct Gpu {
    adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    steps: Steps,
    /// The layout asked for (`Layout::Auto` unless `with_layout`).
    choice: Layout,
    /// The workgroup layout's knobs (`with_eras_per_dispatch` sets the
    /// eras).
    knobs: GroupKnobs,
    /// Pipelines of the workgroup kernel, per shape, built on first use.
    groups: Mutex<HashMap<GroupShape, Arc<GroupSteps>>>,
    /// Bytes between two entries of a chunk's schedule.
    uniform_stride: u64,
    limits: ChunkLimits,
    buffers: Mutex<Option<Buffers>>,
    /// Kept so the adapter and instance outlive the device on every backend.
    _adapter: wgpu::Adapter,
    _instance: wgpu::Instance,
}

/// One dispatch: an entry point and the index of its schedule entry.
type Dispatch<'a> = (&'a wgpu::ComputePipeline, usize);

/// The kernel's entry points: the steps of the era loop and the final read.
struct Steps {
    read: wgpu::ComputePipeline,
    pulse_begin: wgpu::ComputePipeline,
    pulse_substep: wgpu::ComputePipeline,
    end_era: wgpu::ComputePipeline,
    final_read: wgpu::ComputePipeline,
}

/// The workgroup kernel's entry points for one shape.
struct GroupSteps {
    shape: GroupShape,
    era: wgpu::ComputePipeline,
    final_read: wgpu::ComputePipeline,
    probe: wgpu::ComputePipeline,
}

/// The buffers of one chunk, with the bind group over them.
struct Buffers {
    sizes: Sizes,
    uniform: wgpu::Buffer,
    desc: wgpu::Buffer,
    net: wgpu::Buffer,
    fs: wgpu::Buffer,
    us: wgpu::Buffer,
    state: wgpu::Buffer,
    trace: wgpu::Buffer,
    currents: wgpu::Buffer,
    running: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// One flattened chunk, ready to upload.
struct Flat {
    /// The chunk's layout; the step fields are set per schedule entry.
    uniform: ChunkUniform,
    descs: Vec<InstanceDesc>,
    net: Vec<u32>,
    /// The f32 slots written at upload (ron, roff, vt, r, g), interleaved.
    fs_init: Vec<f32>,
    /// The u32 slots written at upload (alive), interleaved.
    us_init: Vec<u32>,
    states: Vec<InstanceState>,
    trace_entries: usize,
    current_words: usize,
    max_eras: usize,
    max_patterns: usize,
    max_substeps: usize,
    /// Workgroup layout: patterns per era dispatch, and eras per dispatch
    /// (more than 1 only where a whole era fits one dispatch).
    patterns_per_step: usize,
    eras_per_step: usize,
    slots: Slots,
    sizes: Sizes,
}

impl Flat {
    /// Index of the schedule entry of (pattern, pulse, substep).
    fn entry(&self, pattern: usize, pulse: u32, substep: usize) -> usize {
        (pattern * 2 + pulse as usize) * self.max_substeps + substep
    }

    /// The first schedule entry of the workgroup layout.
    fn group_base(&self) -> usize {
        self.max_patterns.max(1) * 2 * self.max_substeps
    }

    /// Workgroup layout: the entry of era dispatch `q` (patterns
    /// `q * patterns_per_step` on).
    fn group_step(&self, q: usize) -> usize {
        self.group_base() + q
    }

    /// Workgroup layout: the entry of a probe of pattern `k`, `code` one
    /// of PULSE_PUNISH, PULSE_NORMALIZE, PROBE_READ.
    fn group_probe(&self, k: usize, code: u32) -> usize {
        self.group_base() + self.max_patterns.max(1) + 3 * k + code as usize
    }

    /// Workgroup layout: the entry of the final read.
    fn group_final(&self) -> usize {
        self.group_base() + 4 * self.max_patterns.max(1)
    }

    /// Workgroup layout: the entry of a dispatch of `eras` whole eras (1 to
    /// ERAS_PER_CHECK).
    fn group_eras(&self, eras: usize) -> usize {
        if eras == 1 {
            self.group_step(0)
        } else {
            self.group_final() + eras - 1
        }
    }

    /// Era dispatches per era in the workgroup layout.
    fn group_steps(&self) -> usize {
        self.max_patterns.max(1).div_ceil(self.patterns_per_step)
    }

    /// Entries in the schedule.
    fn schedule_entries(&self) -> usize {
        self.group_final() + ERAS_PER_CHECK
    }

    /// The schedule, `stride` bytes apart: one uniform per (pattern, pulse,
    /// substep) for the thread layout, then the workgroup layout's era
    /// dispatches, probes and final read.
    fn schedule(&self, stride: u64) -> Vec<u8> {
        let n = self.schedule_entries();
        let mut bytes = vec![0u8; n * stride as usize];
        let mut put = |entry: usize, u: ChunkUniform| {
            let at = entry * stride as usize;
            bytes[at..at + size_of::<ChunkUniform>()].copy_from_slice(bytemuck::bytes_of(&u));
        };
        let p = self.max_patterns.max(1);
        let pps = self.patterns_per_step;
        for q in 0..p {
            let first = (q * pps).min(p);
            let end = ((q + 1) * pps).min(p);
            put(
                self.group_step(q),
                ChunkUniform {
                    pattern: first as u32,
                    pattern_end: end as u32,
                    end_era: (end == p) as u32,
                    eras: 1,
                    two: 2,
                    ..self.uniform
                },
            );
        }
        for eras in 2..=ERAS_PER_CHECK {
            put(
                self.group_eras(eras),
                ChunkUniform {
                    pattern: 0,
                    pattern_end: p as u32,
                    end_era: 1,
                    eras: eras as u32,
                    two: 2,
                    ..self.uniform
                },
            );
        }
        for k in 0..p {
            for code in [PULSE_PUNISH, PULSE_NORMALIZE, PROBE_READ] {
                put(
                    self.group_probe(k, code),
                    ChunkUniform {
                        pattern: k as u32,
                        pattern_end: k as u32 + 1,
                        pulse: code,
                        two: 2,
                        ..self.uniform
                    },
                );
            }
        }
        put(
            self.group_final(),
            ChunkUniform {
                pattern: 0,
                pattern_end: p as u32,
                two: 2,
                ..self.uniform
            },
        );
        for k in 0..self.max_patterns.max(1) {
            for pulse in [PULSE_PUNISH, PULSE_NORMALIZE] {
                for sub in 0..self.max_substeps {
                    let u = ChunkUniform {
                        pattern: k as u32,
                        pulse,
                        substep: sub as u32,
                        two: 2,
                        ..self.uniform
                    };
                    put(self.entry(k, pulse, sub), u);
                }
            }
        }
        bytes
    }
}

/// A starting state for `Gpu::probe`: resistances (ohm) and alive mask.
pub struct ProbeCase<'a> {
    pub instance: &'a Instance,
    pub params: &'a Params,
    pub r: Vec<f32>,
    pub alive: Vec<bool>,
}

/// One protocol step for `Gpu::probe`. Punish and normalize act as after
/// a mistake won by `winner`, or by the output after the target,
/// `(target + 1) % n_out`, if `None`. (A winner equal to the target is no
/// mistake: the step does nothing.)
#[derive(Clone, Copy, Debug)]
pub enum ProbeStep {
    Read {
        pattern: u32,
    },
    Punish {
        pattern: u32,
        winner: Option<u32>,
        era: u32,
    },
    Normalize {
        pattern: u32,
        winner: Option<u32>,
        era: u32,
    },
}

/// The state after a probe step.
#[derive(Clone, Debug)]
pub struct ProbeSnapshot {
    /// Node voltages (volt) of the step's last solve.
    pub v: Vec<f32>,
    /// Output currents (ampere) of a read.
    pub currents: Vec<f32>,
    /// The winner of a read.
    pub winner: u32,
    /// Resistances (ohm).
    pub r: Vec<f32>,
    /// Joule, accumulated over the probe's pulses.
    pub energy_write: f32,
}

impl Gpu {
    /// Open the adapter `selection` picks and build the kernel's pipelines.
    pub fn new(selection: Selection) -> Result<Gpu, GpuError> {
        let instance = new_instance();
        let found = enumerate(&instance);
        let summaries: Vec<AdapterSummary> = found.iter().map(summary).collect();
        let Some(index) = pick(&summaries, selection) else {
            return Err(GpuError(
                match (selection, summaries.iter().find(|a| a.suitable)) {
                    (Selection::Hardware, Some(sw)) => format!(
                        "no hardware GPU adapter (only {}, a software driver)",
                        sw.describe()
                    ),
                    _ if summaries.is_empty() => {
                        "no GPU adapter found (wgpu sees none)".to_string()
                    }
                    _ => format!(
                        "no GPU adapter with compute shaders (wgpu sees: {})",
                        summaries
                            .iter()
                            .map(|a| a.describe())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ));
        };
        let adapter = found[index].clone();
        let chosen = summaries[index].clone();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("memsweep"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| GpuError(format!("cannot open {}: {e}", chosen.describe())))?;
        let limits = device.limits();
        let buffer_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(MAX_BUFFER_BYTES);
        let lanes = (limits.max_compute_workgroups_per_dimension as usize * WORKGROUP as usize)
            .min(MAX_LANES);

        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("train.wgsl"),
            source: wgpu::ShaderSource::Wgsl(thread_source().into()),
        });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("train"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(size_of::<ChunkUniform>() as u64),
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, true),
                storage(3, false),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                storage(7, false),
                storage(8, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("train"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let steps = Steps {
            read: pipeline("read_step"),
            pulse_begin: pipeline("pulse_begin"),
            pulse_substep: pipeline("pulse_substep"),
            end_era: pipeline("end_era"),
            final_read: pipeline("final_read_step"),
        };
        Ok(Gpu {
            steps,
            uniform_stride: (size_of::<ChunkUniform>() as u64)
                .next_multiple_of(limits.min_uniform_buffer_offset_alignment as u64),
            adapter: chosen,
            device,
            queue,
            layout,
            pipeline_layout,
            choice: Layout::Auto,
            knobs: GroupKnobs::from_env(),
            groups: Mutex::new(HashMap::new()),
            limits: ChunkLimits {
                buffer_bytes,
                lanes,
                groups: (limits.max_compute_workgroups_per_dimension as usize).min(MAX_LANES),
                workgroup_bytes: limits.max_compute_workgroup_storage_size as u64,
                invocations: limits
                    .max_compute_invocations_per_workgroup
                    .min(limits.max_compute_workgroup_size_x),
            },
            buffers: Mutex::new(None),
            _adapter: adapter,
            _instance: instance,
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// Tests only: at most `lanes` instances per chunk, to exercise chunking
    /// on small batches.
    #[doc(hidden)]
    pub fn with_max_lanes(mut self, lanes: usize) -> Self {
        self.limits.lanes = lanes.max(1);
        self.limits.groups = lanes.max(1);
        self
    }

    /// Tests only: at most `eras` whole eras per workgroup-layout dispatch
    /// (1 to ERAS_PER_CHECK).
    #[doc(hidden)]
    pub fn with_eras_per_dispatch(mut self, eras: usize) -> Self {
        self.knobs.eras = eras.clamp(1, ERAS_PER_CHECK);
        self
    }

    /// The layout asked for.
    pub fn layout(&self) -> Layout {
        self.choice
    }

    /// Use `layout` (default `Layout::Auto`).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.choice = layout;
        self
    }

    /// The workgroup shape for a chunk of `slots` whose nodes have at most
    /// `degree` edges, with the patterns per era dispatch and the whole eras
    /// per dispatch (more than 1 only where a dispatch takes a whole era: up
    /// to ERAS_PER_CHECK, or MEMSWEEP_GROUP_ERAS, a knob for measuring that
    /// leaves the rows as they are): None where the thread layout is asked
    /// for, or where the shape does not fit the adapter's workgroup memory
    /// or invocations, or (lavapipe) where one pattern would overrun its
    /// loop budget. On lavapipe the budget bounds both counts.
    fn group_plan(
        &self,
        slots: Slots,
        degree: u64,
        n_sub: u64,
        n_out: u64,
        patterns: usize,
    ) -> Option<(GroupShape, usize, usize)> {
        if self.choice == Layout::Thread {
            return None;
        }
        let shape = GroupShape::of(slots, &self.knobs);
        if shape.workgroup_bytes() > self.limits.workgroup_bytes
            || shape.wg > self.limits.invocations
        {
            return None;
        }
        let patterns = patterns.max(1);
        let eras = |most: usize| self.knobs.eras.min(most).max(1);
        if !self.is_lavapipe() {
            return Some((shape, patterns, eras(ERAS_PER_CHECK)));
        }
        let (per, rest) = shape.loop_iterations(degree, n_sub, n_out);
        (per + rest <= LAVAPIPE_LOOP_BUDGET).then(|| {
            let pps = (((LAVAPIPE_LOOP_BUDGET - rest) / per) as usize).clamp(1, patterns);
            let whole = if pps == patterns {
                (LAVAPIPE_LOOP_BUDGET / (per * patterns as u64 + rest)) as usize
            } else {
                1
            };
            (shape, pps, eras(whole))
        })
    }

    fn is_lavapipe(&self) -> bool {
        self.adapter.name.contains("llvmpipe")
    }

    /// The workgroup kernel's pipelines for `shape`, built on first use.
    fn group_steps(&self, shape: GroupShape) -> Arc<GroupSteps> {
        let mut cache = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(shape)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some("train_group.wgsl"),
                    source: wgpu::ShaderSource::Wgsl(shape.source().into()),
                };
                // SAFETY: see group_checks.
                let module = unsafe {
                    self.device
                        .create_shader_module_trusted(desc, group_checks())
                };
                let pipeline = |entry: &str| {
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(entry),
                            layout: Some(&self.pipeline_layout),
                            module: &module,
                            entry_point: Some(entry),
                            compilation_options: Default::default(),
                            cache: None,
                        })
                };
                Arc::new(GroupSteps {
                    shape,
                    era: pipeline("era_group"),
                    final_read: pipeline("final_group"),
                    probe: pipeline("probe_group"),
                })
            })
            .clone()
    }

    /// The workgroup shape an instance trains with alone, or None for the
    /// thread layout.
    fn instance_layout(&self, inst: &Instance, params: &Params) -> Option<GroupShape> {
        let degree = inst.adjacency.max_degree() as u64;
        self.group_plan(
            Slots::of(&inst.network),
            degree,
            params.training.n_sub as u64,
            inst.network.n_out as u64,
            inst.task.n_patterns(),
        )
        .map(|(shape, ..)| shape)
    }

    /// The layout of a chunk: the workgroup pipelines and patterns per era
    /// dispatch, or None for thread per instance.
    fn chunk_layout(
        &self,
        chunk: &[&(Instance, Arc<Params>)],
        flat: &mut Flat,
    ) -> Option<Arc<GroupSteps>> {
        let slots = flat.slots;
        let degree = chunk
            .iter()
            .map(|b| b.0.adjacency.max_degree() as u64)
            .max()
            .unwrap_or(0);
        let plan = self.group_plan(
            slots,
            degree,
            flat.max_substeps as u64,
            slots.outputs as u64,
            flat.max_patterns,
        );
        match plan {
            Some((shape, pps, eras)) => {
                flat.patterns_per_step = pps;
                flat.eras_per_step = eras;
                Some(self.group_steps(shape))
            }
            None if self.choice == Layout::Group => panic!(
                "GPU backend: the workgroup layout does not fit this chunk on {} (checked up front \
                 per grid point; a chunk mixing networks can exceed them)",
                self.adapter.describe()
            ),
            None => None,
        }
    }

    /// Refuse, before any work, a grid point whose single instance cannot
    /// fit the adapter's buffers (or, on lavapipe, its loop budget); the
    /// message states the limit.
    pub fn check(&self, params: &Params) -> Result<(), String> {
        if params.training.model != ModelKind::Circuit {
            return Ok(());
        }
        let (n, m) = (params.n_nodes(), params.max_edges());
        let slots = Slots::of_params(params);
        let group = self.group_plan(
            slots,
            max_degree(params),
            params.training.n_sub as u64,
            params.network.n_out as u64,
            params.n_patterns(),
        );
        if self.choice == Layout::Group && group.is_none() {
            let shape = GroupShape::of(slots, &self.knobs);
            return Err(format!(
                "the workgroup layout cannot take a network of {n} nodes and up to {m} edges on {}: \
                 it needs {} bytes of workgroup memory and {} invocations (the adapter allows {} \
                 and {}){}; use --gpu-layout thread or auto",
                self.adapter.describe(),
                shape.workgroup_bytes(),
                shape.wg,
                self.limits.workgroup_bytes,
                self.limits.invocations,
                if self.is_lavapipe() {
                    format!(", or one pattern overruns lavapipe's loop budget of {LAVAPIPE_LOOP_BUDGET}")
                } else {
                    String::new()
                }
            ));
        }
        if self.is_lavapipe() && group.is_none() {
            let bound = loop_iterations_bound(params);
            if bound > LAVAPIPE_LOOP_BUDGET {
                return Err(format!(
                    "{} (lavapipe) ends every shader loop after {LAVAPIPE_LOOP_BUDGET} iterations \
                     per invocation, and one step of a network of {} nodes and up to {} edges may \
                     need {bound}; use --backend cpu or a hardware GPU",
                    self.adapter.describe(),
                    params.n_nodes(),
                    params.max_edges()
                ));
            }
        }
        let p = params.n_patterns();
        let one = ChunkNeeds {
            lanes: 1,
            slots,
            net_words: 6 * m + n + 1 + n.div_ceil(32) + p * (1 + mask_words(params.network.n_in)),
            trace_entries: params.training.max_eras * p,
            current_words: p * params.network.n_out,
            max_eras: params.training.max_eras,
        };
        let limit = self.limits.buffer_bytes;
        for (what, bytes) in one.sizes().each() {
            if bytes > limit {
                return Err(format!(
                    "a network of {n} nodes and up to {m} edges needs {:.1} MiB of GPU {what} per \
                     instance, over the {:.1} MiB per storage buffer that {} allows; use --backend cpu",
                    bytes as f64 / (1 << 20) as f64,
                    limit as f64 / (1 << 20) as f64,
                    self.adapter.describe()
                ));
            }
        }
        if (m as u64) * (params.training.n_sub as u64) > u32::MAX as u64 {
            return Err(format!(
                "{m} edges x {} substeps overflow the GPU's 32-bit update counter; use --backend cpu",
                params.training.n_sub
            ));
        }
        Ok(())
    }

    /// Lanes per chunk at most: the workgroup layout (`group`) dispatches
    /// one workgroup per lane, in one dimension.
    fn lane_cap(&self, group: bool) -> usize {
        if group {
            self.limits.lanes.min(self.limits.groups)
        } else {
            self.limits.lanes
        }
    }

    /// Cut `batch` into chunks that respect the adapter's limits, for the
    /// workgroup layout if `group`.
    fn plan(&self, batch: &[&(Instance, Arc<Params>)], group: bool) -> Vec<Range<usize>> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut needs = ChunkNeeds::default();
        let mut seen: HashSet<SameNetwork> = HashSet::new();
        for (i, (inst, params)) in batch.iter().map(|b| (&b.0, &b.1)).enumerate() {
            let net = &inst.network;
            let new_net = !seen.contains(&SameNetwork(net));
            let mut next = needs.clone();
            next.lanes += 1;
            next.slots = next.slots.max(Slots::of(net));
            next.net_words += task_words(inst) + if new_net { topology_words(net) } else { 0 };
            next.trace_entries += params.training.max_eras * inst.task.n_patterns();
            next.current_words += inst.task.n_patterns() * net.n_out;
            next.max_eras = next.max_eras.max(params.training.max_eras);
            let fits = next.lanes <= self.lane_cap(group)
                && next
                    .sizes()
                    .each()
                    .iter()
                    .all(|&(_, b)| b <= self.limits.buffer_bytes);
            if !fits && needs.lanes > 0 {
                chunks.push(start..i);
                start = i;
                seen.clear();
                next = ChunkNeeds {
                    lanes: 1,
                    slots: Slots::of(net),
                    net_words: task_words(inst) + topology_words(net),
                    trace_entries: params.training.max_eras * inst.task.n_patterns(),
                    current_words: inst.task.n_patterns() * net.n_out,
                    max_eras: params.training.max_eras,
                };
            }
            if !next
                .sizes()
                .each()
                .iter()
                .all(|&(_, b)| b <= self.limits.buffer_bytes)
            {
                panic!(
                    "GPU backend: instance {} does not fit the adapter's buffers: {}",
                    inst.seed,
                    self.check(params).err().unwrap_or_default()
                );
            }
            seen.insert(SameNetwork(net));
            needs = next;
        }
        if needs.lanes > 0 {
            chunks.push(start..batch.len());
        }
        chunks
    }

    /// Flatten a chunk: descriptions, shared topologies and tasks, and the
    /// initial interleaved state. `states` overrides the initial `R` and
    /// alive mask (probes).
    fn flatten(
        &self,
        chunk: &[&(Instance, Arc<Params>)],
        states: Option<&[(&[f32], &[bool])]>,
    ) -> Flat {
        let lanes = chunk.len();
        let slots = chunk
            .iter()
            .fold(Slots::default(), |s, b| s.max(Slots::of(&b.0.network)));
        let mut net: Vec<u32> = Vec::new();
        let mut topology_at: HashMap<SameNetwork, u32> = HashMap::new();
        let mut descs = Vec::with_capacity(lanes);
        let mut fs_init = vec![0f32; slots.f32_init_words() * lanes];
        let mut us_init = vec![0u32; slots.edges * lanes];
        let mut states_out = Vec::with_capacity(lanes);
        let (mut trace_entries, mut current_words) = (0usize, 0usize);
        let (mut max_eras, mut max_patterns, mut max_substeps) = (0usize, 0usize, 1usize);
        for (inst, params) in chunk.iter().map(|b| (&b.0, &b.1)) {
            let nw = &inst.network;
            let net_off = *topology_at.entry(SameNetwork(nw)).or_insert_with(|| {
                let off = net.len() as u32;
                push_topology(&mut net, nw, &inst.adjacency);
                off
            });
            let task_off = net.len() as u32;
            let mw = mask_words(nw.n_in);
            for k in 0..inst.task.n_patterns() {
                net.push(inst.task.target[k] as u32);
                let mut mask = vec![0u32; mw];
                for (i, &on) in inst.task.active[k].iter().enumerate() {
                    if on {
                        mask[i / 32] |= 1 << (i % 32);
                    }
                }
                net.extend(mask);
            }
            let t = &params.training;
            let d = &params.device;
            let p = inst.task.n_patterns();
            descs.push(InstanceDesc {
                seed_lo: inst.seed as u32,
                seed_hi: (inst.seed >> 32) as u32,
                n_in: nw.n_in as u32,
                n_hidden: nw.n_hidden as u32,
                n_out: nw.n_out as u32,
                n_edges: nw.n_edges() as u32,
                n_patterns: p as u32,
                mask_words: mw as u32,
                net_off,
                task_off,
                trace_off: trace_entries as u32,
                currents_off: current_words as u32,
                n_sub: t.n_sub as u32,
                max_eras: t.max_eras as u32,
                prune_below: prune_below(params.pruning.p_prune),
                v_read: t.v_read as f32,
                v_punish: t.v_punish as f32,
                v_norm: t.v_norm as f32,
                dt: (t.tau / t.n_sub as f64) as f32,
                gmin: params.circuit.gmin as f32,
                alpha: d.alpha as f32,
                beta: d.beta as f32,
                sigma_c2c: d.sigma_c2c as f32,
                f_prune: params.pruning.f_prune as f32,
                ..Default::default()
            });
            trace_entries += t.max_eras * p;
            current_words += p * nw.n_out;
            max_eras = max_eras.max(t.max_eras);
            max_patterns = max_patterns.max(p);
            max_substeps = max_substeps.max(t.n_sub);

            states_out.push(InstanceState {
                status: if t.max_eras == 0 {
                    STATUS_DONE
                } else {
                    STATUS_RUNNING
                },
                converged_era: NO_ERA,
                ..Default::default()
            });
        }
        // The initial device state, interleaved: one slot (a row of
        // `lanes` words) per task. Filled a block of rows at a time, lane by
        // lane within it, so that each lane's edges are read in order and
        // the rows written stay in cache (row by row, every read of a lane
        // would miss).
        let m = slots.edges;
        let state_of = |lane: usize, e: usize| match states {
            Some(s) => (s[lane].0[e], s[lane].1[e]),
            None => (chunk[lane].0.devices.r0[e] as f32, true),
        };
        let rows = |block: usize| (block * INTERLEAVE_ROWS..).take(INTERLEAVE_ROWS);
        fs_init
            .par_chunks_mut(lanes.max(1) * INTERLEAVE_ROWS)
            .enumerate()
            .for_each(|(block, out)| {
                for (lane, (inst, _)) in chunk.iter().map(|b| (&b.0, &b.1)).enumerate() {
                    let dev = &inst.devices;
                    for (slot, row) in rows(block).zip(out.chunks_mut(lanes)) {
                        let (kind, e) = (slot / m, slot % m);
                        if e >= inst.network.n_edges() {
                            continue;
                        }
                        row[lane] = match kind {
                            0 => dev.ron[e] as f32,
                            1 => dev.roff[e] as f32,
                            2 => dev.vt[e] as f32,
                            3 => state_of(lane, e).0,
                            _ => match state_of(lane, e) {
                                (r, true) => 1.0 / r,
                                (_, false) => 0.0,
                            },
                        };
                    }
                }
            });
        us_init
            .par_chunks_mut(lanes.max(1) * INTERLEAVE_ROWS)
            .enumerate()
            .for_each(|(block, out)| {
                for (lane, (inst, _)) in chunk.iter().map(|b| (&b.0, &b.1)).enumerate() {
                    for (e, row) in rows(block).zip(out.chunks_mut(lanes)) {
                        if e < inst.network.n_edges() {
                            row[lane] = state_of(lane, e).1 as u32;
                        }
                    }
                }
            });
        let needs = ChunkNeeds {
            lanes,
            slots,
            net_words: net.len(),
            trace_entries,
            current_words,
            max_eras,
        };
        let sizes = needs.sizes();
        let mut flat = Flat {
            uniform: ChunkUniform {
                n_lanes: lanes as u32,
                m_max: slots.edges as u32,
                n_max: slots.nodes as u32,
                d_max: slots.dense as u32,
                o_max: slots.outputs as u32,
                ..Default::default()
            },
            descs,
            net,
            fs_init,
            us_init,
            states: states_out,
            trace_entries,
            current_words,
            max_eras,
            max_patterns,
            max_substeps,
            patterns_per_step: max_patterns.max(1),
            eras_per_step: 1,
            slots,
            sizes,
        };
        flat.sizes.schedule = flat.schedule_entries() as u64 * self.uniform_stride;
        flat
    }

    /// Buffers for a chunk of `sizes`, reusing (or growing) the last ones.
    fn buffers<'a>(&self, slot: &'a mut Option<Buffers>, sizes: Sizes) -> &'a Buffers {
        let fits = slot.as_ref().is_some_and(|b| b.sizes.max(sizes) == b.sizes);
        if !fits {
            let grown = slot.as_ref().map_or(sizes, |b| b.sizes.max(sizes));
            *slot = None; // free the old buffers before allocating the new
            *slot = Some(self.allocate(grown));
        }
        slot.as_ref().unwrap()
    }

    fn allocate(&self, sizes: Sizes) -> Buffers {
        let storage = |label: &str, size: u64| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16).next_multiple_of(4),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let uniform = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("schedule"),
            size: sizes.schedule.max(self.uniform_stride),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let desc = storage("desc", sizes.desc);
        let net = storage("net", sizes.net);
        let fs = storage("fs", sizes.fs);
        let us = storage("us", sizes.us);
        let state = storage("state", sizes.state);
        let trace = storage("trace", sizes.trace);
        let currents = storage("currents", sizes.currents);
        let running = storage("running", sizes.running);
        // The readback copies at most: states, trace, currents, and one
        // edge slot range of fs and us (the largest probe readback is
        // smaller than fs + us).
        let staging_size = sizes.state + sizes.trace + sizes.currents + sizes.fs + sizes.us;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size: staging_size.next_multiple_of(8),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("train"),
            layout: &self.layout,
            entries: &[
                (0, &uniform),
                (1, &desc),
                (2, &net),
                (3, &fs),
                (4, &us),
                (5, &state),
                (6, &trace),
                (7, &currents),
                (8, &running),
            ]
            .map(|(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: if binding == 0 {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b,
                        offset: 0,
                        size: wgpu::BufferSize::new(size_of::<ChunkUniform>() as u64),
                    })
                } else {
                    b.as_entire_binding()
                },
            }),
        });
        Buffers {
            sizes,
            uniform,
            desc,
            net,
            fs,
            us,
            state,
            trace,
            currents,
            running,
            staging,
            bind_group,
        }
    }

    fn upload(&self, b: &Buffers, flat: &Flat) {
        self.queue
            .write_buffer(&b.uniform, 0, &flat.schedule(self.uniform_stride));
        self.queue
            .write_buffer(&b.desc, 0, bytemuck::cast_slice(&flat.descs));
        if !flat.net.is_empty() {
            self.queue
                .write_buffer(&b.net, 0, bytemuck::cast_slice(&flat.net));
        }
        self.queue
            .write_buffer(&b.fs, 0, bytemuck::cast_slice(&flat.fs_init));
        self.queue
            .write_buffer(&b.us, 0, bytemuck::cast_slice(&flat.us_init));
        self.queue
            .write_buffer(&b.state, 0, bytemuck::cast_slice(&flat.states));
    }

    /// Record `steps` in order, each one dispatch of `workgroups` with its
    /// schedule entry. wgpu puts a barrier between dispatches that
    /// write the same buffers.
    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &Buffers,
        steps: &[Dispatch],
        workgroups: u32,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        for &(pipeline, entry) in steps {
            pass.set_pipeline(pipeline);
            let offset = entry as u64 * self.uniform_stride;
            pass.set_bind_group(0, &b.bind_group, &[offset as u32]);
            pass.dispatch_workgroups(workgroups, 1, 1);
        }
    }

    /// The dispatches of pulse `pulse` of pattern `k`.
    fn pulse_steps<'s>(&'s self, flat: &Flat, k: usize, pulse: u32, out: &mut Vec<Dispatch<'s>>) {
        out.push((&self.steps.pulse_begin, flat.entry(k, pulse, 0)));
        for sub in 0..flat.max_substeps {
            out.push((&self.steps.pulse_substep, flat.entry(k, pulse, sub)));
        }
    }

    /// The dispatches of one era: per pattern a read, a punish pulse and a
    /// normalize pulse; then the era's end.
    fn era_steps<'s>(&'s self, flat: &Flat) -> Vec<Dispatch<'s>> {
        let mut steps = Vec::new();
        for k in 0..flat.max_patterns {
            steps.push((&self.steps.read, flat.entry(k, PULSE_PUNISH, 0)));
            self.pulse_steps(flat, k, PULSE_PUNISH, &mut steps);
            self.pulse_steps(flat, k, PULSE_NORMALIZE, &mut steps);
        }
        steps.push((&self.steps.end_era, 0));
        steps
    }

    /// Submit `encoder`, whose last commands copied `size` bytes into the
    /// staging buffer, wait, and return those bytes.
    fn read_back(&self, b: &Buffers, encoder: wgpu::CommandEncoder, size: u64) -> Vec<u8> {
        self.queue.submit(Some(encoder.finish()));
        let slice = b.staging.slice(0..size.next_multiple_of(4).max(4));
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap_or_else(|e| panic!("GPU backend: waiting for the device failed: {e}"));
        rx.recv()
            .expect("GPU backend: buffer mapping callback dropped")
            .unwrap_or_else(|e| panic!("GPU backend: reading results back failed: {e}"));
        let bytes = slice
            .get_mapped_range()
            .unwrap_or_else(|e| panic!("GPU backend: reading results back failed: {e}"))
            .to_vec();
        b.staging.unmap();
        bytes
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Train one chunk: eras until none trains, the final read, readback.
    fn train_chunk(&self, chunk: &[&(Instance, Arc<Params>)]) -> Vec<Outcome> {
        let timing = std::env::var_os("MEMSWEEP_GPU_TIMING").is_some();
        let clock = std::time::Instant::now();
        let lap = |what: &str| {
            if timing {
                eprintln!(
                    "gpu: {} lanes: {what} at {:.3} s",
                    chunk.len(),
                    clock.elapsed().as_secs_f64()
                );
            }
        };
        let mut flat = self.flatten(chunk, None);
        let group = self.chunk_layout(chunk, &mut flat);
        lap(&match &group {
            Some(g) => format!(
                "flattened; workgroup layout {:?}, {} patterns, {} eras per dispatch",
                g.shape, flat.patterns_per_step, flat.eras_per_step
            ),
            None => "flattened; thread layout".to_string(),
        });
        let lanes = chunk.len();
        // The era's dispatches, their workgroups, and the final read's.
        let (era_steps, final_steps, workgroups): (Vec<Dispatch>, Vec<Dispatch>, u32) = match &group
        {
            Some(g) => (
                (0..flat.group_steps())
                    .map(|q| (&g.era, flat.group_step(q)))
                    .collect(),
                vec![(&g.final_read, flat.group_final())],
                lanes as u32,
            ),
            None => (
                self.era_steps(&flat),
                (0..flat.max_patterns)
                    .map(|k| (&self.steps.final_read, flat.entry(k, PULSE_PUNISH, 0)))
                    .collect(),
                (lanes as u32).div_ceil(WORKGROUP),
            ),
        };
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.buffers(&mut guard, flat.sizes);
        self.upload(b, &flat);
        lap("uploaded");
        let mut encoder = self.encoder();
        encoder.clear_buffer(&b.running, 0, None);
        // Eras per workgroup-layout dispatch: one until an era's time is
        // known, then as many as keep a dispatch under MULTI_ERA_SECONDS.
        let mut eras_per_dispatch = 1;
        let mut era = 0;
        while era < flat.max_eras {
            let eras = ERAS_PER_CHECK.min(flat.max_eras - era);
            let since = std::time::Instant::now();
            match &group {
                Some(g) if eras_per_dispatch > 1 => {
                    let mut left = eras;
                    while left > 0 {
                        let e = left.min(eras_per_dispatch);
                        self.dispatch(&mut encoder, b, &[(&g.era, flat.group_eras(e))], workgroups);
                        left -= e;
                    }
                }
                _ => {
                    for _ in 0..eras {
                        self.dispatch(&mut encoder, b, &era_steps, workgroups);
                    }
                }
            }
            era += eras;
            if era < flat.max_eras {
                encoder.copy_buffer_to_buffer(&b.running, 4 * (era as u64 - 1), &b.staging, 0, 4);
                let bytes = self.read_back(b, encoder, 4);
                encoder = self.encoder();
                let running = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                let per_era = since.elapsed().as_secs_f64() / eras as f64;
                eras_per_dispatch =
                    ((MULTI_ERA_SECONDS / per_era) as usize).clamp(1, flat.eras_per_step.max(1));
                lap(&format!(
                    "{era} eras, {running} instances training, {per_era:.3} s per era"
                ));
                if running == 0 {
                    break;
                }
            }
        }
        self.dispatch(&mut encoder, b, &final_steps, workgroups);

        // Copy out what the results need: states, trace, final currents,
        // and the r and alive slots.
        let u = &flat.uniform;
        let m = u.m_max as u64;
        let l = lanes as u64;
        let parts = [
            (&b.state, 0, 4 * (l * size_of::<InstanceState>() as u64 / 4)),
            (&b.trace, 0, 8 * flat.trace_entries as u64),
            (&b.currents, 0, 4 * flat.current_words as u64),
            (&b.fs, 4 * 3 * m * l, 4 * m * l),
            (&b.us, 0, 4 * m * l),
        ];
        let mut at = 0;
        let mut spans = Vec::new();
        for &(buffer, from, size) in &parts {
            if size > 0 {
                encoder.copy_buffer_to_buffer(buffer, from, &b.staging, at, size);
            }
            spans.push(at as usize..(at + size) as usize);
            at += size;
        }
        let bytes = self.read_back(b, encoder, at);
        drop(guard);
        lap("final read, read back");
        let part = |i: usize| &bytes[spans[i].clone()];
        let states: &[InstanceState] = bytemuck::cast_slice(part(0));
        let trace: &[TraceEntry] = bytemuck::cast_slice(part(1));
        let currents: &[f32] = bytemuck::cast_slice(part(2));
        let r: &[f32] = bytemuck::cast_slice(part(3));
        let alive: &[u32] = bytemuck::cast_slice(part(4));

        chunk
            .par_iter()
            .enumerate()
            .map(|(lane, (inst, _))| {
                let st = states[lane];
                let dsc = &flat.descs[lane];
                check_status(&self.adapter, st.status, inst.seed);
                let (p, n_out) = (dsc.n_patterns as usize, dsc.n_out as usize);
                let trace = (0..st.eras_run)
                    .flat_map(|era| (0..p as u32).map(move |k| (era, k)))
                    .map(|(era, k)| {
                        let t = trace[dsc.trace_off as usize + era as usize * p + k as usize];
                        EraRead {
                            era,
                            pattern: k,
                            correct: t.correct != 0,
                            read_power: t.read_power as f64,
                        }
                    })
                    .collect();
                let c0 = dsc.currents_off as usize;
                let final_currents = (0..p)
                    .map(|k| {
                        (0..n_out)
                            .map(|o| currents[c0 + k * n_out + o] as f64)
                            .collect()
                    })
                    .collect();
                let m = inst.network.n_edges();
                Outcome {
                    recalled: st.recalled as usize,
                    converged_era: (st.converged_era != NO_ERA).then_some(st.converged_era),
                    eras_run: st.eras_run,
                    energy_write: st.energy_write as f64,
                    pruned_edges: st.pruned as usize,
                    final_currents,
                    r_final: (0..m).map(|e| r[e * lanes + lane] as f64).collect(),
                    alive_final: (0..m).map(|e| alive[e * lanes + lane] != 0).collect(),
                    updates: st.updates_lo as u64 | (st.updates_hi as u64) << 32,
                    trace,
                }
            })
            .collect()
    }

    /// Tests only: run `steps` in turn from the given states, each with
    /// the kernel's own entry point, and snapshot voltages, currents and
    /// resistances after each. Every case must fit one chunk, and every
    /// step's pattern must exist in every case.
    #[doc(hidden)]
    pub fn probe(&self, cases: &[ProbeCase], steps: &[ProbeStep]) -> Vec<Vec<ProbeSnapshot>> {
        let owned: Vec<(Instance, Arc<Params>)> = cases
            .iter()
            .map(|c| (c.instance.clone(), Arc::new(c.params.clone())))
            .collect();
        let chunk: Vec<&(Instance, Arc<Params>)> = owned.iter().collect();
        assert_eq!(
            self.plan(&chunk, self.choice != Layout::Thread).len(),
            1,
            "probe cases must fit one chunk"
        );
        let initial: Vec<(&[f32], &[bool])> = cases
            .iter()
            .map(|c| (c.r.as_slice(), c.alive.as_slice()))
            .collect();
        let mut flat = self.flatten(&chunk, Some(&initial));
        let group = self.chunk_layout(&chunk, &mut flat);
        let lanes = cases.len();
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.buffers(&mut guard, flat.sizes);
        self.upload(b, &flat);
        let u = flat.uniform;
        let (m, n, l) = (u.m_max as u64, u.n_max as u64, lanes as u64);
        let mut states = flat.states.clone();
        let mut out = vec![Vec::new(); lanes];
        for step in steps {
            let (pattern, era, winner, pulse) = match *step {
                ProbeStep::Read { pattern } => (pattern, 0, None, None),
                ProbeStep::Punish {
                    pattern,
                    winner,
                    era,
                } => (pattern, era, Some(winner), Some(PULSE_PUNISH)),
                ProbeStep::Normalize {
                    pattern,
                    winner,
                    era,
                } => (pattern, era, Some(winner), Some(PULSE_NORMALIZE)),
            };
            for (st, case) in states.iter_mut().zip(cases) {
                let target = case.instance.task.target[pattern as usize];
                st.status = STATUS_RUNNING;
                st.eras_run = era;
                if let Some(w) = winner {
                    st.winner = w.unwrap_or(((target + 1) % case.instance.network.n_out) as u32);
                }
            }
            self.queue
                .write_buffer(&b.state, 0, bytemuck::cast_slice(&states));
            let k = pattern as usize;
            let mut dispatches = Vec::new();
            match (&group, pulse) {
                (Some(g), _) => {
                    dispatches.push((&g.probe, flat.group_probe(k, pulse.unwrap_or(PROBE_READ))))
                }
                (None, None) => dispatches.push((&self.steps.read, flat.entry(k, PULSE_PUNISH, 0))),
                (None, Some(pulse)) => self.pulse_steps(&flat, k, pulse, &mut dispatches),
            }
            let workgroups = match group {
                Some(_) => lanes as u32,
                None => (lanes as u32).div_ceil(WORKGROUP),
            };
            let mut encoder = self.encoder();
            self.dispatch(&mut encoder, b, &dispatches, workgroups);
            // States; then fs from r to the currents: r, g, v, diag, inject,
            // rhs, currents.
            let state_bytes = l * size_of::<InstanceState>() as u64;
            let fs_from = 4 * 3 * m * l;
            let fs_size = 4 * (2 * m + 4 * n + u.o_max as u64) * l;
            encoder.copy_buffer_to_buffer(&b.state, 0, &b.staging, 0, state_bytes);
            encoder.copy_buffer_to_buffer(&b.fs, fs_from, &b.staging, state_bytes, fs_size);
            let bytes = self.read_back(b, encoder, state_bytes + fs_size);
            states.copy_from_slice(bytemuck::cast_slice(&bytes[..state_bytes as usize]));
            let fs: &[f32] = bytemuck::cast_slice(&bytes[state_bytes as usize..]);
            // Slot s (counted from r) of lane `lane`.
            let at = |slot: u64, lane: usize| fs[(slot * l) as usize + lane];
            for (lane, case) in cases.iter().enumerate() {
                check_status(&self.adapter, states[lane].status, case.instance.seed);
                let net = &case.instance.network;
                let v0 = 2 * m;
                let cur0 = 2 * m + 4 * n;
                out[lane].push(ProbeSnapshot {
                    v: (0..net.n_nodes() as u64)
                        .map(|i| at(v0 + i, lane))
                        .collect(),
                    currents: (0..net.n_out as u64).map(|o| at(cur0 + o, lane)).collect(),
                    winner: states[lane].winner,
                    r: (0..net.n_edges() as u64).map(|e| at(e, lane)).collect(),
                    energy_write: states[lane].energy_write,
                });
            }
        }
        out
    }
}

/// An upper bound on the loop iterations of one invocation in any one
/// dispatch (a read, a pulse's start, a substep, an era's end), for
/// networks of `params`: prepare, solve, power, device update, pruning.
fn loop_iterations_bound(params: &Params) -> u64 {
    let net = &params.network;
    let (n, m) = (params.n_nodes() as u64, params.max_edges() as u64);
    let d = dense_bound(n as usize) as u64;
    let max_degree = max_degree(params);
    let sum_degree_squared = max_degree * 2 * m;
    let prepare = 6 * n + 8 * m + n * n / 2 + sum_degree_squared / 2;
    let fill_sums = n + m;
    let solve = 3 * n + 5 * m + sum_degree_squared / 2 + d * d * d / 6 + 3 * d * d + 4 * d;
    let read = prepare + fill_sums + solve + m + net.n_out as u64 * (max_degree + 2);
    let substep = solve + m + 5 * m;
    let end_era = 5 * m;
    read.max(prepare + fill_sums + m).max(substep).max(end_era) + 16
}

/// The most edges a node of a network of `params` can have.
fn max_degree(params: &Params) -> u64 {
    let net = &params.network;
    match net.topology {
        Topology::Layered => {
            let mut widths = vec![net.n_in];
            widths.extend(&net.hidden);
            widths.push(net.n_out);
            let skip = if net.skip > 0.0 {
                net.n_in.max(net.n_out)
            } else {
                0
            };
            (0..widths.len())
                .map(|l| {
                    let below = if l > 0 { widths[l - 1] } else { 0 };
                    let above = widths.get(l + 1).copied().unwrap_or(0);
                    below + above + skip
                })
                .max()
                .unwrap_or(0) as u64
        }
        Topology::RandomBulk => (net.n_bulk + net.n_in + net.n_out) as u64,
    }
}

/// The runtime checks wgpu adds to the workgroup kernel: bounds checks on
/// every array and buffer access, and guarded integer division, but no
/// loop bounding (a counter wgpu adds to every loop so that a driver can
/// never see an infinite one; it cost a third of the time of 16-64-16 on an
/// H200). MEMSWEEP_GPU_CHECKS=all keeps loop bounding too, `none` drops
/// every check: knobs for measuring.
///
/// Safety of dropping loop bounding: the kernel has no infinite loop. Every
/// loop in train_group.wgsl runs over nodes, edges, entries, patterns or
/// substeps, except the breadth-first search, which stops once the reached
/// set (of at most N_MAX nodes) stops growing, and the scans of set bits,
/// each of which clears a bit per turn.
fn group_checks() -> wgpu::ShaderRuntimeChecks {
    match std::env::var("MEMSWEEP_GPU_CHECKS").as_deref() {
        Ok("all") => wgpu::ShaderRuntimeChecks::checked(),
        Ok("none") => wgpu::ShaderRuntimeChecks::unchecked(),
        _ => {
            let mut checks = wgpu::ShaderRuntimeChecks::unchecked();
            checks.bounds_checks = true;
            checks.int_div_checks = true;
            checks
        }
    }
}

/// Stop, with the reason, on an instance the shader flagged.
fn check_status(adapter: &AdapterSummary, status: u32, seed: u64) {
    match status {
        STATUS_FAILED => {
            panic!("GPU backend: instance {seed}: the dense system outgrew its scratch (a bug)")
        }
        STATUS_LOOP_LIMIT => panic!(
            "GPU backend: instance {seed}: {} cut a shader loop short (lavapipe ends every \
             loop after {LAVAPIPE_LOOP_BUDGET} iterations per invocation); this network is too \
             large for it, use --backend cpu",
            adapter.describe()
        ),
        _ => {}
    }
}

/// `ceil(p * 2^24)`: a 24-bit draw `u = m / 2^24` is below `p` exactly when
/// `m` is below this, so the shader's integer test matches the CPU's f64 one.
fn prune_below(p_prune: f64) -> u32 {
    if p_prune <= 0.0 {
        0
    } else {
        (p_prune * 16_777_216.0).ceil().min(u32::MAX as f64) as u32
    }
}

/// tail, head, negative (1 for polarity -1), adjacency start, edge, other;
/// the parity class as a node set.
fn push_topology(out: &mut Vec<u32>, net: &Network, adj: &Adjacency) {
    out.extend(&net.tail);
    out.extend(&net.head);
    out.extend(net.polarity.iter().map(|&s| (s < 0) as u32));
    out.extend(&adj.start);
    out.extend(&adj.edge);
    out.extend(&adj.other);
    let mut class = vec![0u32; net.n_nodes().div_ceil(32)];
    for (i, _) in net.parity_class().iter().enumerate().filter(|c| *c.1) {
        class[i / 32] |= 1 << (i % 32);
    }
    out.extend(class);
}

impl Executor for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn backend_of(&self, params: &Params) -> &'static str {
        match params.training.model {
            ModelKind::Circuit => self.name(),
            ModelKind::Abstract => "cpu",
        }
    }

    fn check(&self, params: &Params) -> Result<(), String> {
        Gpu::check(self, params)
    }

    /// Circuit-model instances run on the GPU, chunk by chunk; instances of
    /// the abstract model (no circuit to solve) run on the CPU.
    fn train(&self, batch: &[(Instance, Arc<Params>)]) -> Vec<Outcome> {
        let (circuit, other): (Vec<usize>, Vec<usize>) =
            (0..batch.len()).partition(|&i| batch[i].1.training.model == ModelKind::Circuit);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        // Instances of one layout and workgroup shape train together, so
        // that how an instance's work is cut across invocations (and so
        // the rounding of its sums) depends on its own network alone, never
        // on what shares its chunk.
        let mut kinds: Vec<(Option<GroupShape>, Vec<usize>)> = Vec::new();
        for &i in &circuit {
            let key = self.instance_layout(&batch[i].0, &batch[i].1);
            match kinds.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => kinds.push((key, vec![i])),
            }
        }
        for (shape, members) in kinds {
            let on_gpu: Vec<&(Instance, Arc<Params>)> =
                members.iter().map(|&i| &batch[i]).collect();
            for range in self.plan(&on_gpu, shape.is_some()) {
                let first = range.start;
                for (j, out) in self.train_chunk(&on_gpu[range]).into_iter().enumerate() {
                    outcomes[members[first + j]] = Some(out);
                }
            }
        }
        if !other.is_empty() {
            let rest: Vec<(Instance, Arc<Params>)> =
                other.iter().map(|&i| batch[i].clone()).collect();
            let cpu = Cpu {
                precision: Precision::F64,
            };
            for (&i, out) in other.iter().zip(cpu.train(&rest)) {
                outcomes[i] = Some(out);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every instance trained"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::naga;

    fn parse(source: &str) -> naga::Module {
        naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)))
    }

    fn module() -> naga::Module {
        parse(&thread_source())
    }

    fn validate(source: &str) {
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&parse(source))
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
    }

    /// Shapes of the networks `memsweep bench` runs (2-4-2, 8-16-8,
    /// 16-64-16, 8-[32,32,32]-8), and of the smallest.
    fn shapes() -> Vec<GroupShape> {
        let mut shapes: Vec<GroupShape> = crate::bench::standard_configs(1.0)
            .iter()
            .map(|c| GroupShape::of(Slots::of_params(&c.params()), &GroupKnobs::default()))
            .collect();
        shapes.push(GroupShape::of(
            Slots {
                edges: 1,
                nodes: 2,
                dense: 1,
                outputs: 1,
                group_dense: 1,
            },
            &GroupKnobs::default(),
        ));
        shapes
    }

    /// Size and alignment of the WGSL struct `name`.
    fn wgsl_layout(module: &naga::Module, name: &str) -> (u32, u32) {
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name} in train.wgsl"));
        let l = layouter[handle];
        (l.size, l.alignment.round_up(1))
    }

    #[test]
    fn shader_is_valid_wgsl() {
        validate(&thread_source());
        validate(&format!("{COMMON}\n{GROUP_SHADER}"));
        for shape in shapes() {
            validate(&shape.source());
            validate(&GroupShape { pivots: 1, ..shape }.source());
        }
    }

    #[test]
    fn group_shapes_cover_their_networks() {
        for shape in shapes() {
            assert!(shape.wg.is_power_of_two() && (32..=256).contains(&shape.wg));
            assert!(shape.edges() >= shape.wg && shape.nodes % 8 == 0);
            // The packed triangle's entries are spread over the invocations.
            assert!(shape.triangle_per_invocation() * shape.wg >= shape.triangle());
        }
        let dims = |s: GroupShape| (s.wg, s.edges_per_invocation, s.nodes, s.dense);
        let bench = shapes();
        // Dense bounds: the free terminals (8-16-8, 16-64-16), the even
        // layers (8-[32,32,32]-8).
        assert_eq!(dims(bench[1]), (64, 4, 32, 16));
        assert_eq!(dims(bench[2]), (256, 8, 96, 32));
        assert_eq!(dims(bench[3]), (256, 10, 112, 48));
        // NVIDIA allows 48 KiB of workgroup memory: 8-16-8 needs 5 KiB,
        // 16-64-16 28 KiB, 8-[32,32,32]-8 37 KiB.
        assert!(bench[1].workgroup_bytes() < 6 << 10);
        assert!(bench[2].workgroup_bytes() < 28 << 10);
        assert!(bench[3].workgroup_bytes() < 40 << 10);
    }

    #[test]
    fn rust_mirrors_of_shader_structs_have_the_wgsl_layout() {
        // The structs live in common.wgsl, which both kernels begin with.
        let module = module();
        for (name, size, align) in [
            (
                "InstanceDesc",
                size_of::<InstanceDesc>(),
                align_of::<InstanceDesc>(),
            ),
            (
                "InstanceState",
                size_of::<InstanceState>(),
                align_of::<InstanceState>(),
            ),
            (
                "Chunk",
                size_of::<ChunkUniform>(),
                align_of::<ChunkUniform>(),
            ),
            (
                "TraceEntry",
                size_of::<TraceEntry>(),
                align_of::<TraceEntry>(),
            ),
        ] {
            let (wsize, walign) = wgsl_layout(&module, name);
            assert_eq!(size as u32, wsize, "size of {name}");
            assert!(
                walign as usize <= align.max(4),
                "alignment of {name}: WGSL {walign}, Rust {align}"
            );
        }
        // A uniform binding's struct must be a multiple of 16 bytes.
        assert_eq!(size_of::<ChunkUniform>() % 16, 0);
    }

    #[test]
    fn prune_threshold_matches_the_f64_comparison() {
        for p in [0.0, 1e-9, 0.3, 0.5, 0.7, 1.0 / 3.0, 0.999_999_99, 1.0] {
            let below = prune_below(p);
            for m in [
                0u32, 1, 5_033_164, 5_033_165, 8_388_607, 8_388_608, 16_777_215,
            ] {
                let u = m as f64 / 16_777_216.0;
                assert_eq!(m < below, u < p, "p {p}, m {m}");
            }
        }
    }

    #[test]
    fn auto_never_picks_a_software_adapter() {
        let a = |t: &str, hardware| AdapterSummary {
            name: t.into(),
            backend: "Vulkan".into(),
            device_type: t.into(),
            suitable: true,
            hardware,
        };
        let list = vec![
            a("Cpu", false),
            a("IntegratedGpu", true),
            a("DiscreteGpu", true),
        ];
        assert_eq!(pick(&list, Selection::Hardware), Some(2));
        assert_eq!(pick(&list, Selection::Any), Some(2));
        let only_sw = vec![a("Cpu", false)];
        assert_eq!(pick(&only_sw, Selection::Hardware), None);
        assert_eq!(pick(&only_sw, Selection::Any), Some(0));
    }
}
