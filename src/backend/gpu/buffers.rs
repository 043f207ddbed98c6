//! What the shaders see: the Rust mirrors of the structs of
//! `shaders/common.wgsl`, the slot counts of the interleaved state, a
//! chunk flattened for upload with its schedule of uniforms, and the
//! buffers it goes into.
//!
//! Not here: how a batch is cut into chunks (`Gpu::plan`) or what runs on
//! the buffers (the parent module).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::group::group_dense_bound;
use super::{Gpu, ERAS_PER_CHECK};
use crate::instance::Instance;
use crate::model::network::{Adjacency, Network};
use crate::params::{DeviceModel, Params, ROfX, Window};

pub(super) const STATUS_RUNNING: u32 = 0;
pub(super) const STATUS_DONE: u32 = 1;
pub(super) const STATUS_FAILED: u32 = 2;
pub(super) const STATUS_LOOP_LIMIT: u32 = 3;
pub(super) const NO_ERA: u32 = u32::MAX;
pub(super) const PULSE_PUNISH: u32 = 0;
pub(super) const PULSE_NORMALIZE: u32 = 1;
/// A read, in a workgroup-layout probe's `pulse`.
pub(super) const PROBE_READ: u32 = 2;
/// `InstanceDesc::device_model` and `window` (as in `shaders/common.wgsl`).
pub(super) const DEVICE_PERSHIN_DI_VENTRA: u32 = 0;
pub(super) const DEVICE_VTEAM: u32 = 1;
pub(super) const WINDOW_NONE: u32 = 0;
pub(super) const WINDOW_JOGLEKAR: u32 = 1;
pub(super) const WINDOW_BIOLEK: u32 = 2;

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
    pub sigma_read: f32,
    /// `DEVICE_PERSHIN_DI_VENTRA` or `DEVICE_VTEAM`.
    pub device_model: u32,
    /// VTEAM: `WINDOW_*`, and 1 for an exponential `R(x)`.
    pub window: u32,
    pub exponential: u32,
    pub k_on: f32,
    pub k_off: f32,
    pub alpha_on: f32,
    pub alpha_off: f32,
    /// `v_off / v_on`.
    pub off_ratio: f32,
    /// `2 p_window`.
    pub window_power: f32,
    pub pad2: u32,
    pub pad3: u32,
    pub pad4: u32,
    pub pad5: u32,
    pub pad6: u32,
}

impl InstanceDesc {
    /// The description's seed and parameters (everything but the
    /// network's and the task's place in the buffers).
    pub fn of_params(params: &Params, seed: u64) -> InstanceDesc {
        let t = &params.training;
        let d = &params.device;
        InstanceDesc {
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
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
            sigma_read: t.sigma_read as f32,
            f_prune: params.pruning.f_prune as f32,
            device_model: match d.model {
                DeviceModel::PershinDiVentra => DEVICE_PERSHIN_DI_VENTRA,
                DeviceModel::Vteam => DEVICE_VTEAM,
            },
            window: match d.window {
                Window::None => WINDOW_NONE,
                Window::Joglekar => WINDOW_JOGLEKAR,
                Window::Biolek => WINDOW_BIOLEK,
            },
            exponential: (d.r_of_x == ROfX::Exponential) as u32,
            k_on: d.k_on as f32,
            k_off: d.k_off as f32,
            alpha_on: d.alpha_on as f32,
            alpha_off: d.alpha_off as f32,
            off_ratio: (d.v_off / d.v_on) as f32,
            window_power: (2.0 * d.p_window) as f32,
            ..Default::default()
        }
    }
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
pub(super) struct Slots {
    pub(super) edges: usize,
    pub(super) nodes: usize,
    pub(super) outputs: usize,
    /// The workgroup kernel's bound on the dense system.
    pub(super) group_dense: usize,
}

impl Slots {
    pub(super) fn of(net: &Network) -> Slots {
        let n = net.n_nodes();
        let class = net.parity_class().iter().filter(|&&c| c).count();
        Slots {
            edges: net.n_edges().max(1),
            nodes: n,
            outputs: net.n_out,
            group_dense: group_dense_bound(n, class),
        }
    }

    /// The slots of every network of a chunk, in its order.
    pub(super) fn of_chunk(chunk: &[&(Instance, Arc<Params>)]) -> Vec<Slots> {
        chunk.par_iter().map(|b| Slots::of(&b.0.network)).collect()
    }

    /// The slots of the largest network `params` may generate.
    pub(super) fn of_params(params: &Params) -> Slots {
        let n = params.n_nodes();
        Slots {
            edges: params.max_edges().max(1),
            nodes: n,
            outputs: params.network.n_out,
            group_dense: group_dense_bound(n, params.parity_class_size()),
        }
    }

    pub(super) fn max(self, o: Slots) -> Slots {
        Slots {
            edges: self.edges.max(o.edges),
            nodes: self.nodes.max(o.nodes),
            outputs: self.outputs.max(o.outputs),
            group_dense: self.group_dense.max(o.group_dense),
        }
    }

    /// f32 words per lane: ron, roff, vt, r, g (per edge); v (per node);
    /// currents (per output); the iterative path's eight vectors (per node,
    /// train_group.wgsl `at_cg`).
    pub(super) fn f32_words(self) -> usize {
        5 * self.edges + 9 * self.nodes + self.outputs
    }

    /// u32 words per lane: alive (per edge); then the dense path's kept
    /// split (`split_words`) or the iterative path's node kinds.
    pub(super) fn u32_words(self) -> usize {
        self.edges + self.split_words()
    }

    /// u32 words of the workgroup kernel's kept split (train_group.wgsl
    /// `at_split`): a tag, the counts and a word per node.
    pub(super) fn split_words(self) -> usize {
        self.nodes + 2
    }

    /// f32 slots written at upload: ron, roff, vt, r, g.
    pub(super) fn f32_init_words(self) -> usize {
        5 * self.edges
    }
}

/// A bound on the dense system's size for a network of `n` nodes: every
/// phase fixes at least two nodes (an active input and an output), and the
/// first free node of the greedy order is always eliminated.
pub(super) fn dense_bound(n: usize) -> usize {
    n.saturating_sub(2).max(1)
}

/// u32 words of one network's topology and adjacency in `net`.
pub(super) fn topology_words(net: &Network) -> usize {
    6 * net.n_edges() + net.n_nodes() + 1 + net.n_nodes().div_ceil(32)
}

pub(super) fn mask_words(n_in: usize) -> usize {
    n_in.div_ceil(32).max(1)
}

pub(super) fn task_words(inst: &Instance) -> usize {
    inst.task.n_patterns() * (1 + mask_words(inst.network.n_in))
}

/// Rows of the interleaved initial state that `flatten` fills together.
pub(super) const INTERLEAVE_ROWS: usize = 32;

/// A network as the dedup key of the shared topology, hashed once when the
/// key is made (`SameNetwork::of_chunk` makes a chunk's in parallel).
#[derive(Clone, Copy)]
pub(super) struct SameNetwork<'a> {
    net: &'a Network,
    hash: u64,
}

impl<'a> SameNetwork<'a> {
    pub(super) fn new(net: &'a Network) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        (net.n_in, net.n_hidden, net.n_out).hash(&mut h);
        net.tail.hash(&mut h);
        net.head.hash(&mut h);
        net.polarity.hash(&mut h);
        net.layer.hash(&mut h);
        SameNetwork {
            net,
            hash: h.finish(),
        }
    }

    /// The keys of a chunk's networks, in its order.
    pub(super) fn of_chunk(chunk: &[&'a (Instance, Arc<Params>)]) -> Vec<Self> {
        chunk
            .par_iter()
            .map(|b| SameNetwork::new(&b.0.network))
            .collect()
    }
}

impl PartialEq for SameNetwork<'_> {
    fn eq(&self, o: &Self) -> bool {
        let (a, b) = (self.net, o.net);
        self.hash == o.hash
            && a.n_in == b.n_in
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
        h.write_u64(self.hash);
    }
}

/// Bytes of each storage buffer a chunk needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sizes {
    pub(super) desc: u64,
    pub(super) net: u64,
    pub(super) fs: u64,
    pub(super) us: u64,
    pub(super) state: u64,
    pub(super) trace: u64,
    pub(super) currents: u64,
    pub(super) running: u64,
    /// The uniform schedule (not a storage buffer).
    pub(super) schedule: u64,
}

impl Sizes {
    pub(super) fn each(&self) -> [(&'static str, u64); 8] {
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

    pub(super) fn max(self, o: Sizes) -> Sizes {
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
pub(super) struct ChunkNeeds {
    pub(super) lanes: usize,
    pub(super) slots: Slots,
    pub(super) net_words: usize,
    pub(super) trace_entries: usize,
    pub(super) current_words: usize,
    pub(super) max_eras: usize,
}

impl ChunkNeeds {
    pub(super) fn sizes(&self) -> Sizes {
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

/// The buffers of one chunk, with the bind group over them.
pub(super) struct Buffers {
    pub(super) sizes: Sizes,
    pub(super) uniform: wgpu::Buffer,
    pub(super) desc: wgpu::Buffer,
    pub(super) net: wgpu::Buffer,
    pub(super) fs: wgpu::Buffer,
    pub(super) us: wgpu::Buffer,
    pub(super) state: wgpu::Buffer,
    pub(super) trace: wgpu::Buffer,
    pub(super) currents: wgpu::Buffer,
    pub(super) running: wgpu::Buffer,
    pub(super) staging: wgpu::Buffer,
    pub(super) bind_group: wgpu::BindGroup,
}

/// One flattened chunk, ready to upload.
pub(super) struct Flat {
    /// The chunk's layout; the step fields are set per schedule entry.
    pub(super) uniform: ChunkUniform,
    pub(super) descs: Vec<InstanceDesc>,
    pub(super) net: Vec<u32>,
    /// The f32 slots written at upload (ron, roff, vt, r, g), interleaved.
    pub(super) fs_init: Vec<f32>,
    /// The u32 slots written at upload (alive), interleaved.
    pub(super) us_init: Vec<u32>,
    pub(super) states: Vec<InstanceState>,
    pub(super) trace_entries: usize,
    pub(super) current_words: usize,
    pub(super) max_eras: usize,
    pub(super) max_patterns: usize,
    pub(super) max_substeps: usize,
    /// Workgroup layout: patterns per era dispatch, and eras per dispatch
    /// (more than 1 only where a whole era fits one dispatch).
    pub(super) patterns_per_step: usize,
    pub(super) eras_per_step: usize,
    pub(super) slots: Slots,
    pub(super) sizes: Sizes,
}

impl Flat {
    /// Bytes of `us` and of `fs` that are neither uploaded nor read back:
    /// the kept split or node kinds, and the node voltages and vectors, as
    /// (offset, size) each. Zeroed before training, so that no kept split
    /// is current and every voltage starts at 0 V, as on the CPU.
    pub(super) fn scratch_regions(&self) -> [(u64, u64); 2] {
        let (l, s) = (self.descs.len() as u64, self.slots);
        let (m, n, o) = (s.edges as u64, s.nodes as u64, s.outputs as u64);
        [
            (4 * m * l, 4 * s.split_words() as u64 * l),
            (4 * 5 * m * l, 4 * (7 * n + o) * l),
        ]
    }

    /// Index of the schedule entry of (pattern, pulse, substep): a step of
    /// the iterative path (and its final read of `pattern`).
    pub(super) fn entry(&self, pattern: usize, pulse: u32, substep: usize) -> usize {
        (pattern * 2 + pulse as usize) * self.max_substeps + substep
    }

    /// The first schedule entry of the workgroup layout.
    pub(super) fn group_base(&self) -> usize {
        self.max_patterns.max(1) * 2 * self.max_substeps
    }

    /// Workgroup layout: the entry of era dispatch `q` (patterns
    /// `q * patterns_per_step` on).
    pub(super) fn group_step(&self, q: usize) -> usize {
        self.group_base() + q
    }

    /// Workgroup layout: the entry of a probe of pattern `k`, `code` one
    /// of PULSE_PUNISH, PULSE_NORMALIZE, PROBE_READ.
    pub(super) fn group_probe(&self, k: usize, code: u32) -> usize {
        self.group_base() + self.max_patterns.max(1) + 3 * k + code as usize
    }

    /// Workgroup layout: the entry of the final read.
    pub(super) fn group_final(&self) -> usize {
        self.group_base() + 4 * self.max_patterns.max(1)
    }

    /// Workgroup layout: the entry of a dispatch of `eras` whole eras (1 to
    /// ERAS_PER_CHECK).
    pub(super) fn group_eras(&self, eras: usize) -> usize {
        if eras == 1 {
            self.group_step(0)
        } else {
            self.group_final() + eras - 1
        }
    }

    /// Era dispatches per era in the workgroup layout.
    pub(super) fn group_steps(&self) -> usize {
        self.max_patterns.max(1).div_ceil(self.patterns_per_step)
    }

    /// The entry of an era's end with no pattern (the iterative path).
    pub(super) fn group_end_era(&self) -> usize {
        self.group_final() + ERAS_PER_CHECK
    }

    /// Entries in the schedule.
    pub(super) fn schedule_entries(&self) -> usize {
        self.group_end_era() + 1
    }

    /// The schedule, `stride` bytes apart: one uniform per (pattern, pulse,
    /// substep) for the iterative path's steps, then the dense path's era
    /// dispatches, probes and final read, and the era's end.
    pub(super) fn schedule(&self, stride: u64) -> Vec<u8> {
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
        put(
            self.group_end_era(),
            ChunkUniform {
                pattern: p as u32,
                pattern_end: p as u32,
                end_era: 1,
                eras: 1,
                two: 2,
                ..self.uniform
            },
        );
        for k in 0..self.max_patterns.max(1) {
            for pulse in [PULSE_PUNISH, PULSE_NORMALIZE] {
                for sub in 0..self.max_substeps {
                    let u = ChunkUniform {
                        pattern: k as u32,
                        pattern_end: k as u32 + 1,
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

impl Gpu {
    /// Flatten a chunk: descriptions, shared topologies and tasks, and the
    /// initial interleaved state. `states` overrides the initial `R` and
    /// alive mask (probes).
    pub(super) fn flatten(
        &self,
        chunk: &[&(Instance, Arc<Params>)],
        states: Option<&[(&[f32], &[bool])]>,
    ) -> Flat {
        let lanes = chunk.len();
        let slots = Slots::of_chunk(chunk)
            .into_iter()
            .fold(Slots::default(), Slots::max);
        let keys = SameNetwork::of_chunk(chunk);
        let mut net: Vec<u32> = Vec::new();
        let mut topology_at: HashMap<SameNetwork, u32> = HashMap::new();
        let mut descs = Vec::with_capacity(lanes);
        let mut fs_init = vec![0f32; slots.f32_init_words() * lanes];
        let mut us_init = vec![0u32; slots.edges * lanes];
        let mut states_out = Vec::with_capacity(lanes);
        let (mut trace_entries, mut current_words) = (0usize, 0usize);
        let (mut max_eras, mut max_patterns, mut max_substeps) = (0usize, 0usize, 1usize);
        for ((inst, params), key) in chunk.iter().map(|b| (&b.0, &b.1)).zip(keys) {
            let nw = &inst.network;
            let net_off = *topology_at.entry(key).or_insert_with(|| {
                let off = net.len() as u32;
                push_topology(&mut net, nw, &inst.adjacency);
                off
            });
            let task_off = net.len() as u32;
            let mw = mask_words(nw.n_in);
            for k in 0..inst.task.n_patterns() {
                net.push(inst.task.target[k] as u32);
                let mask = net.len();
                net.resize(mask + mw, 0);
                for (i, &on) in inst.task.active[k].iter().enumerate() {
                    if on {
                        net[mask + i / 32] |= 1 << (i % 32);
                    }
                }
            }
            let t = &params.training;
            let p = inst.task.n_patterns();
            descs.push(InstanceDesc {
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
                ..InstanceDesc::of_params(params, inst.seed)
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
                            2 => dev.kernel_threshold(e) as f32,
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
                d_max: slots.group_dense as u32,
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
    pub(super) fn buffers<'a>(&self, slot: &'a mut Option<Buffers>, sizes: Sizes) -> &'a Buffers {
        let fits = slot.as_ref().is_some_and(|b| b.sizes.max(sizes) == b.sizes);
        if !fits {
            let grown = slot.as_ref().map_or(sizes, |b| b.sizes.max(sizes));
            *slot = None; // free the old buffers before allocating the new
            *slot = Some(self.allocate(grown));
        }
        slot.as_ref().unwrap()
    }

    pub(super) fn allocate(&self, sizes: Sizes) -> Buffers {
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

    /// Zero `flat`'s scratch regions (`Flat::scratch_regions`).
    pub(super) fn clear_scratch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        b: &Buffers,
        flat: &Flat,
    ) {
        let [(us_at, us_size), (fs_at, fs_size)] = flat.scratch_regions();
        encoder.clear_buffer(&b.us, us_at, Some(us_size));
        encoder.clear_buffer(&b.fs, fs_at, Some(fs_size));
    }

    pub(super) fn upload(&self, b: &Buffers, flat: &Flat) {
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
}

/// `ceil(p * 2^24)`: a 24-bit draw `u = m / 2^24` is below `p` exactly when
/// `m` is below this, so the shader's integer test matches the CPU's f64 one.
pub(super) fn prune_below(p_prune: f64) -> u32 {
    if p_prune <= 0.0 {
        0
    } else {
        (p_prune * 16_777_216.0).ceil().min(u32::MAX as f64) as u32
    }
}

/// tail, head, negative (1 for polarity -1), adjacency start, edge, other;
/// the parity class as a node set.
pub(super) fn push_topology(out: &mut Vec<u32>, net: &Network, adj: &Adjacency) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
