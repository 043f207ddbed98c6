//! The GPU executor: a WGSL compute shader (`shaders/train_group.wgsl`),
//! run through wgpu, trains a chunk of instances at once with the protocol
//! of `protocol::training`, step by step and in f32, one workgroup per
//! instance. Networks whose dense nodal system fits the workgroup's memory
//! take the dense path (workgroup memory, a dense solve, whole patterns or
//! eras per dispatch); larger ones the iterative path (state in storage
//! buffers, conjugate gradients, one read, pulse start or substep per
//! dispatch). `group` has the kernel's shape and both paths.
//!
//! Not here: the protocol itself (MODEL.md, `protocol::training`), which the
//! shader mirrors function by function, or the set-up of instances
//! (`Instance::build`, on the CPU as for every backend).
//!
//! Here: the context (`Gpu`), the choice of path, chunking and the era
//! loop. Beside it: `adapter` (which adapters count and which one is
//! picked), `buffers` (the Rust mirrors of the shader's structs, the
//! interleaved state, a chunk flattened for upload and its schedule),
//! `group` (the kernel's shape and pipelines) and `probe` (single steps,
//! for the tests).
//!
//! State. What survives between dispatches lives in two storage buffers,
//! `fs` (f32) and `us` (u32), interleaved by lane: word `slot` of lane `l`
//! is at `slot * n_lanes + l`, with slot counts set by the largest network
//! of the chunk. The topology and adjacency are stored once per distinct
//! network of a chunk (every instance of an all-to-all layered point shares
//! one copy), the task once per instance. State stays on the device from
//! the first era to the final read. Every few eras the host reads one
//! counter (how many instances still train) to stop early; at the end only
//! what the results need comes back: the per-instance outcome, the trace,
//! the final currents, the final `R` and alive mask. Pruning runs in the
//! shader, with the same counter-hash draw as the CPU (`rng::PURPOSE_PRUNE`,
//! words `[era, 0, 0, edge]`, compared as a 24-bit integer so that the test
//! is exact), so both backends prune the same edges given the same
//! resistances.
//!
//! lavapipe. Mesa's llvmpipe ends every loop of a shader invocation past
//! 65535 loop iterations in all, silently; the shader detects that with a
//! canary loop and the host stops with a message. So on lavapipe the dense
//! path runs as many patterns per dispatch as the budget allows, the
//! iterative path caps a solve's iterations at what it allows (hundreds;
//! a solve takes tens), and `Gpu::check` refuses up front the networks
//! whose single step could exceed it (on an H200 every size runs).
//!
//! Chunking. Every storage binding must fit the adapter's
//! `max_storage_buffer_binding_size` (128 MiB on lavapipe) and
//! `max_buffer_size`, and a dispatch at most
//! `max_compute_workgroups_per_dimension` workgroups (one per instance). A
//! batch is cut, in order, into chunks that respect all three; buffers are
//! allocated for the largest chunk seen and reused. A network whose single
//! instance does not fit is refused up front (`Gpu::check`) with the limit
//! in the message.
//!
//! Comparison with the CPU (tests/gpu.rs, both paths). The shader computes
//! in f32 and follows the CPU kernel step by step (it sums a few terms in
//! another order, and the iterative path stops where the stopping rule
//! lets it), so it is compared with `Cpu { precision: F32 }` instance by
//! instance, and with the f64 reference in distribution:
//! - single steps (a read, a punish pulse, a normalize pulse) from random
//!   states: node voltages within 1e-4 V plus 1e-4 relative, output currents
//!   within 1e-4 of the largest current, resistances within 1e-4 relative.
//!   The two sides differ only by f32 rounding (GPU division, sqrt, log, cos
//!   are not correctly rounded; compilers may fuse multiply-adds), about 1e-6
//!   relative per operation, amplified by the conditioning of the nodal
//!   system, and on the iterative path by the stopping rule's 1e-6;
//! - whole training: `recalled` and `converged_era` identical for at least
//!   95% of instances (a rounding difference can flip a near-tied winner or
//!   a device at its threshold, after which the two runs part ways),
//!   and the grid-point
//!   means (mean recalled / P, Pr[learned_all]) within three standard errors
//!   of the f64 CPU backend's.
//!
//! What those tests measured is recorded in docs/numerics.md.

mod adapter;
mod buffers;
mod group;
mod probe;
mod rules;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex};

use rayon::prelude::*;

use crate::backend::Executor;
use crate::instance::Instance;
use crate::params::{ModelKind, Params, Topology};
use crate::protocol::training::{EraRead, Outcome};

pub use adapter::{adapters, pick, AdapterSummary, Selection};
use adapter::{enumerate, new_instance, summary};
use buffers::*;
pub use buffers::{ChunkUniform, InstanceDesc, InstanceState, TraceEntry};
use group::{GroupKnobs, GroupSteps, LargeSteps};
pub use group::{GroupShape, Stages};
pub use probe::{ProbeCase, ProbeSnapshot, ProbeStep};
pub use rules::{RuleInput, RULE_NAMES};

/// What the kernel's paths share with the Rust mirrors: buffers, structs,
/// draws, phase boundaries, the device rate.
pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");
/// The protocol kernel, workgroup per instance (after `COMMON`); its shape
/// lines are replaced per chunk (`GroupShape::source`).
pub const GROUP_SHADER: &str = include_str!("../../../shaders/train_group.wgsl");
/// Eras dispatched between two looks at how many instances still train.
const ERAS_PER_CHECK: usize = 4;
/// The longest a workgroup-layout dispatch of several eras should take,
/// seconds: the driver of a GPU that also drives a display may end a
/// dispatch that runs for seconds.
const MULTI_ERA_SECONDS: f64 = 0.5;
/// Instances per chunk at most, whatever the limits allow.
const MAX_LANES: usize = 1 << 19;
/// No single buffer larger than this, whatever the adapter allows (u32
/// word indices reach 16 GiB).
const MAX_BUFFER_BYTES: u64 = (1 << 32) - 256;
/// llvmpipe (lavapipe) ends every loop of a shader invocation once the
/// invocation has run this many loop iterations in all (Mesa's
/// `LP_MAX_TGSI_LOOP_ITERATIONS`).
const LAVAPIPE_LOOP_BUDGET: u64 = 65_535;
/// The fewest conjugate-gradient iterations per solve that lavapipe's loop
/// budget must allow the iterative path (a warm-started solve takes tens;
/// circuit.rs caps one at four per unknown and 100).
const MIN_CG_CAP: u64 = 128;

/// The adapter limits a chunk must respect.
#[derive(Clone, Copy, Debug)]
struct ChunkLimits {
    /// Bytes per storage buffer (binding and buffer limits, and our cap).
    buffer_bytes: u64,
    /// Instances per chunk (workgroups per dispatch).
    lanes: usize,
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

/// The GPU context, built once: adapter, device, queue, the bind group
/// layout, the kernel's pipelines per shape, and buffers reused from chunk
/// to chunk.
pub struct Gpu {
    adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    /// Tests only: the iterative path for every network
    /// (`with_iterative_path`).
    iterative_always: bool,
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
        let lanes = (limits.max_compute_workgroups_per_dimension as usize).min(MAX_LANES);
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
        Ok(Gpu {
            uniform_stride: (size_of::<ChunkUniform>() as u64)
                .next_multiple_of(limits.min_uniform_buffer_offset_alignment as u64),
            adapter: chosen,
            device,
            queue,
            layout,
            pipeline_layout,
            iterative_always: false,
            knobs: GroupKnobs::from_env(),
            groups: Mutex::new(HashMap::new()),
            limits: ChunkLimits {
                buffer_bytes,
                lanes,
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
        self
    }

    /// Tests only: at most `eras` whole eras per workgroup-layout dispatch
    /// (1 to ERAS_PER_CHECK).
    #[doc(hidden)]
    pub fn with_eras_per_dispatch(mut self, eras: usize) -> Self {
        self.knobs.eras = eras.clamp(1, ERAS_PER_CHECK);
        self
    }

    /// Tests only: whether the workgroup kernel keeps the split reads and
    /// normalize pulses share (default) or computes it anew, as
    /// `cache=0` in MEMSWEEP_GPU_PROFILE does.
    #[doc(hidden)]
    pub fn with_split_cache(mut self, cache: bool) -> Self {
        self.knobs.cache = cache;
        self
    }

    /// Tests only: run the workgroup kernel's `stages` (bits of `Stages`)
    /// twice, as `repeat` in MEMSWEEP_GPU_PROFILE does.
    #[doc(hidden)]
    pub fn with_repeated_stages(mut self, stages: u32) -> Self {
        self.knobs.repeat = stages;
        self
    }

    /// Tests only: train every network on the iterative path, small ones
    /// too, to compare it with the CPU on networks that train quickly.
    #[doc(hidden)]
    pub fn with_iterative_path(mut self) -> Self {
        self.iterative_always = true;
        self
    }

    /// Which networks take the iterative path: `"iterative"` with
    /// `with_iterative_path`, else `"auto"` (those the dense path cannot
    /// take).
    pub fn path(&self) -> &'static str {
        if self.iterative_always {
            "iterative"
        } else {
            "auto"
        }
    }

    /// The kernel's shape for a chunk of `slots` whose nodes have at most
    /// `degree` edges, with the patterns per era dispatch and the whole eras
    /// per dispatch of the dense path (more than 1 only where a dispatch
    /// takes a whole era: up to ERAS_PER_CHECK, or `eras` in MEMSWEEP_GPU_PROFILE, a
    /// knob for measuring that leaves the rows as they are). The dense path
    /// wherever its shape fits the adapter's workgroup memory and
    /// invocations and (lavapipe) one pattern fits its loop budget, else the
    /// iterative path; None where neither fits (on lavapipe, a network
    /// whose single step overruns the budget even with a solve capped at
    /// MIN_CG_CAP iterations).
    fn group_plan(
        &self,
        slots: Slots,
        degree: u64,
        n_sub: u64,
        n_out: u64,
        patterns: usize,
    ) -> Option<(GroupShape, usize, usize)> {
        let patterns = patterns.max(1);
        let eras = |most: usize| self.knobs.eras.min(most).max(1);
        let shape = GroupShape::of(slots, &self.knobs);
        let fits = |shape: GroupShape| {
            shape.workgroup_bytes() <= self.limits.workgroup_bytes
                && shape.wg <= self.limits.invocations
        };
        if fits(shape) && !self.iterative_always {
            if !self.is_lavapipe() {
                return Some((shape, patterns, eras(ERAS_PER_CHECK)));
            }
            let (per, rest) = shape.loop_iterations(degree, n_sub, n_out);
            if per + rest <= LAVAPIPE_LOOP_BUDGET {
                let pps = (((LAVAPIPE_LOOP_BUDGET - rest) / per) as usize).clamp(1, patterns);
                let whole = if pps == patterns {
                    (LAVAPIPE_LOOP_BUDGET / (per * patterns as u64 + rest)) as usize
                } else {
                    1
                };
                return Some((shape, pps, eras(whole)));
            }
        }
        let mut large = GroupShape::large(slots, &self.knobs);
        if !fits(large) {
            return None;
        }
        if self.is_lavapipe() {
            let (step, iteration) = large.large_loop_iterations(slots.nodes as u64, degree, n_out);
            let cap = LAVAPIPE_LOOP_BUDGET.saturating_sub(step) / iteration;
            if cap < MIN_CG_CAP {
                return None;
            }
            // Rounded down to a power of two: few shapes.
            large.cg_cap = 1 << cap.min(u32::MAX as u64).ilog2();
        }
        Some((large, 1, 1))
    }

    fn is_lavapipe(&self) -> bool {
        self.adapter.name.contains("llvmpipe")
    }

    /// The kernel's shape for an instance alone.
    fn instance_shape(&self, inst: &Instance, params: &Params) -> Option<GroupShape> {
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

    /// The pipelines of a chunk, with its patterns and eras per era
    /// dispatch set in `flat`: of `shape`, that of each of its instances
    /// alone (`instance_shape`), if given, so that the chunk never changes
    /// how an instance is cut across invocations or where its solves are
    /// capped.
    fn chunk_steps(
        &self,
        chunk: &[&(Instance, Arc<Params>)],
        flat: &mut Flat,
        shape: Option<GroupShape>,
    ) -> Arc<GroupSteps> {
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
        let Some((planned, pps, eras)) = plan else {
            panic!(
                "GPU backend: no kernel shape fits this chunk on {} (checked up front per grid \
                 point; a chunk mixing networks can exceed it)",
                self.adapter.describe()
            )
        };
        let shape = shape.unwrap_or(planned);
        if !shape.large {
            flat.patterns_per_step = pps;
            flat.eras_per_step = eras;
        }
        self.group_steps(shape)
    }

    /// Refuse, before any work, a grid point whose single instance cannot
    /// fit the adapter (its buffers, its workgroup memory, or on lavapipe
    /// its loop budget); the message states the limit.
    pub fn check(&self, params: &Params) -> Result<(), String> {
        if params.training.model != ModelKind::Circuit {
            return Ok(());
        }
        let (n, m) = (params.n_nodes(), params.max_edges());
        let slots = Slots::of_params(params);
        let degree = max_degree(params);
        let plan = self.group_plan(
            slots,
            degree,
            params.training.n_sub as u64,
            params.network.n_out as u64,
            params.n_patterns(),
        );
        // A random network's degrees are drawn, and its bound (every node
        // joined to every other) would refuse any size on lavapipe: there
        // each instance's budget is checked when it is planned, with its
        // own degrees (`Gpu::train` stops on one that does not fit).
        let drawn = params.network.topology == Topology::RandomBulk && self.is_lavapipe();
        if plan.is_none() && !drawn {
            return Err(self.refusal(slots, degree));
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

    /// Why no shape fits networks of `slots` whose nodes have at most
    /// `degree` edges (`group_plan` returned None): one line.
    fn refusal(&self, slots: Slots, degree: u64) -> String {
        let (n, m) = (slots.nodes, slots.edges);
        let large = GroupShape::large(slots, &self.knobs);
        if self.is_lavapipe() {
            let (step, iteration) =
                large.large_loop_iterations(n as u64, degree, slots.outputs as u64);
            format!(
                "{} (lavapipe) ends every shader loop after {LAVAPIPE_LOOP_BUDGET} iterations \
                 per invocation, and one step of a network of {n} nodes and up to {m} edges \
                 may need {step} besides {MIN_CG_CAP} iterations of its solve at {iteration} \
                 each; use --backend cpu or a hardware GPU",
                self.adapter.describe(),
            )
        } else {
            format!(
                "a network of {n} nodes and up to {m} edges needs {} bytes of workgroup \
                 memory and {} invocations on {} (the adapter allows {} and {}); use \
                 --backend cpu",
                large.workgroup_bytes(),
                large.wg,
                self.adapter.describe(),
                self.limits.workgroup_bytes,
                self.limits.invocations,
            )
        }
    }

    /// Cut `batch` into chunks that respect the adapter's limits.
    fn plan(&self, batch: &[&(Instance, Arc<Params>)]) -> Vec<Range<usize>> {
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut needs = ChunkNeeds::default();
        let mut seen: HashSet<SameNetwork> = HashSet::new();
        let keys = SameNetwork::of_chunk(batch);
        let slots = Slots::of_chunk(batch);
        for (i, (inst, params)) in batch.iter().map(|b| (&b.0, &b.1)).enumerate() {
            let net = &inst.network;
            let new_net = !seen.contains(&keys[i]);
            let mut next = needs.clone();
            next.lanes += 1;
            next.slots = next.slots.max(slots[i]);
            next.net_words += task_words(inst) + if new_net { topology_words(net) } else { 0 };
            next.trace_entries += params.training.max_eras * inst.task.n_patterns();
            next.current_words += inst.task.n_patterns() * net.n_out;
            next.max_eras = next.max_eras.max(params.training.max_eras);
            let fits = next.lanes <= self.limits.lanes
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
                    slots: slots[i],
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
            seen.insert(keys[i]);
            needs = next;
        }
        if needs.lanes > 0 {
            chunks.push(start..batch.len());
        }
        chunks
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

    /// The iterative path's dispatches of pulse `pulse` of pattern `k`.
    fn pulse_steps<'s>(
        steps: &'s LargeSteps,
        flat: &Flat,
        k: usize,
        pulse: u32,
        out: &mut Vec<Dispatch<'s>>,
    ) {
        out.push((&steps.pulse_begin, flat.entry(k, pulse, 0)));
        for sub in 0..flat.max_substeps {
            out.push((&steps.pulse_substep, flat.entry(k, pulse, sub)));
        }
    }

    /// The dispatches of one era of a chunk with pipelines `g`: on the dense
    /// path, its patterns cut as `flat` says; on the iterative path, per
    /// pattern a read, a punish pulse and a normalize pulse, then the era's
    /// end.
    fn era_steps<'s>(g: &'s GroupSteps, flat: &Flat) -> Vec<Dispatch<'s>> {
        let Some(large) = &g.steps else {
            return (0..flat.group_steps())
                .map(|q| (&g.era, flat.group_step(q)))
                .collect();
        };
        let mut steps = Vec::new();
        for k in 0..flat.max_patterns {
            steps.push((&large.read, flat.entry(k, PULSE_PUNISH, 0)));
            Gpu::pulse_steps(large, flat, k, PULSE_PUNISH, &mut steps);
            Gpu::pulse_steps(large, flat, k, PULSE_NORMALIZE, &mut steps);
        }
        steps.push((&g.era, flat.group_end_era()));
        steps
    }

    /// The dispatches of the final read: every pattern at once on the
    /// dense path, one a dispatch on the iterative path.
    fn final_steps<'s>(g: &'s GroupSteps, flat: &Flat) -> Vec<Dispatch<'s>> {
        match g.steps {
            None => vec![(&g.final_read, flat.group_final())],
            Some(_) => (0..flat.max_patterns)
                .map(|k| (&g.final_read, flat.entry(k, PULSE_PUNISH, 0)))
                .collect(),
        }
    }

    /// Submit `encoder`, whose last commands copied `size` bytes into
    /// `staging` (a mappable buffer), wait, and return those bytes.
    fn read_back(
        &self,
        staging: &wgpu::Buffer,
        encoder: wgpu::CommandEncoder,
        size: u64,
    ) -> Vec<u8> {
        self.queue.submit(Some(encoder.finish()));
        let slice = staging.slice(0..size.next_multiple_of(4).max(4));
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
        staging.unmap();
        bytes
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Train one chunk: eras until none trains, the final read, readback.
    fn train_chunk(&self, chunk: &[&(Instance, Arc<Params>)], shape: GroupShape) -> Vec<Outcome> {
        let timing = group::profile("timing").is_some();
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
        let g = self.chunk_steps(chunk, &mut flat, Some(shape));
        lap(&format!(
            "flattened; {:?}, {} patterns, {} eras per dispatch",
            g.shape, flat.patterns_per_step, flat.eras_per_step
        ));
        let lanes = chunk.len();
        let workgroups = lanes as u32;
        let era_steps = Gpu::era_steps(&g, &flat);
        let final_steps = Gpu::final_steps(&g, &flat);
        let mut guard = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.buffers(&mut guard, flat.sizes);
        self.upload(b, &flat);
        lap("uploaded");
        let mut encoder = self.encoder();
        encoder.clear_buffer(&b.running, 0, None);
        self.clear_scratch(&mut encoder, b, &flat);
        // Eras per workgroup-layout dispatch: one until an era's time is
        // known, then as many as keep a dispatch under MULTI_ERA_SECONDS.
        let mut eras_per_dispatch = 1;
        let mut era = 0;
        while era < flat.max_eras {
            let eras = ERAS_PER_CHECK.min(flat.max_eras - era);
            let since = std::time::Instant::now();
            if eras_per_dispatch > 1 {
                let mut left = eras;
                while left > 0 {
                    let e = left.min(eras_per_dispatch);
                    self.dispatch(&mut encoder, b, &[(&g.era, flat.group_eras(e))], workgroups);
                    left -= e;
                }
            } else {
                for _ in 0..eras {
                    self.dispatch(&mut encoder, b, &era_steps, workgroups);
                }
            }
            era += eras;
            if era < flat.max_eras {
                encoder.copy_buffer_to_buffer(&b.running, 4 * (era as u64 - 1), &b.staging, 0, 4);
                let bytes = self.read_back(&b.staging, encoder, 4);
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
        let bytes = self.read_back(&b.staging, encoder, at);
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
}

/// The most edges a node of a network of `params` can have.
fn max_degree(params: &Params) -> u64 {
    let net = &params.network;
    match net.topology {
        Topology::Layered => {
            let widths = net.layer_widths();
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
        Topology::Nanowire | Topology::Graph => params.n_nodes().saturating_sub(1) as u64,
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

impl Executor for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn check(&self, params: &Params) -> Result<(), String> {
        Gpu::check(self, params)
    }

    /// The workgroup pipelines of every shape in `batch`.
    fn warm_up(&self, batch: &[(Instance, Arc<Params>)]) {
        let shapes: HashSet<GroupShape> = batch
            .par_iter()
            .filter(|(_, params)| params.training.model == ModelKind::Circuit)
            .filter_map(|(inst, params)| self.instance_shape(inst, params))
            .collect();
        for shape in shapes {
            self.group_steps(shape);
        }
    }

    /// Circuit-model instances, chunk by chunk. The abstract model has no
    /// circuit: `backend::simulate` routes its instances before any
    /// executor, and handing one here is a caller's bug.
    fn train(&self, batch: &[(Instance, Arc<Params>)]) -> Vec<Outcome> {
        assert!(
            batch
                .iter()
                .all(|(_, p)| p.training.model == ModelKind::Circuit),
            "GPU backend: an abstract-model instance reached the GPU executor \
             (backend::simulate routes them to the CPU)"
        );
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        // Instances of one shape train together, so that how an
        // instance's work is cut across invocations (and so the rounding of
        // its sums) depends on its own network alone, never on what shares
        // its chunk.
        let mut kinds: Vec<(GroupShape, Vec<usize>)> = Vec::new();
        let shapes: Vec<GroupShape> = batch
            .par_iter()
            .map(|(inst, params)| {
                self.instance_shape(inst, params).unwrap_or_else(|| {
                    let degree = inst.adjacency.max_degree() as u64;
                    panic!(
                        "GPU backend: instance {}: {}",
                        inst.seed,
                        self.refusal(Slots::of(&inst.network), degree)
                    )
                })
            })
            .collect();
        for (i, key) in shapes.into_iter().enumerate() {
            match kinds.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => kinds.push((key, vec![i])),
            }
        }
        for (shape, members) in kinds {
            let on_gpu: Vec<&(Instance, Arc<Params>)> =
                members.iter().map(|&i| &batch[i]).collect();
            for range in self.plan(&on_gpu) {
                let first = range.start;
                for (j, out) in self
                    .train_chunk(&on_gpu[range], shape)
                    .into_iter()
                    .enumerate()
                {
                    outcomes[members[first + j]] = Some(out);
                }
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
        parse(&format!("{COMMON}\n{GROUP_SHADER}"))
    }

    fn validate(source: &str) {
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&parse(source))
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
    }

    /// Shapes of the layered networks `memsweep bench` runs (2-4-2,
    /// 8-16-8, 16-64-16, 8-[32,32,32]-8), and of the smallest.
    fn shapes() -> Vec<GroupShape> {
        let mut shapes: Vec<GroupShape> = crate::bench::standard_configs(1.0)
            .iter()
            .filter(|c| c.bulk.is_none())
            .take(4)
            .map(|c| GroupShape::of(Slots::of_params(&c.params()), &GroupKnobs::default()))
            .collect();
        shapes.push(GroupShape::of(
            Slots {
                edges: 1,
                nodes: 2,
                outputs: 1,
                group_dense: 1,
            },
            &GroupKnobs::default(),
        ));
        shapes
    }

    /// The iterative path's shapes for the large bench configurations
    /// (bulk-1040, 32-128-32, 64-256-64).
    fn large_shapes() -> Vec<GroupShape> {
        crate::bench::standard_configs(1.0)
            .iter()
            .filter(|c| ["bulk-1040", "32-128-32", "64-256-64"].contains(&c.name.as_str()))
            .map(|c| GroupShape::large(Slots::of_params(&c.params()), &GroupKnobs::default()))
            .collect()
    }

    /// Size and alignment of the WGSL struct `name`.
    fn wgsl_layout(module: &naga::Module, name: &str) -> (u32, u32) {
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name} in common.wgsl"));
        let l = layouter[handle];
        (l.size, l.alignment.round_up(1))
    }

    #[test]
    fn shader_is_valid_wgsl() {
        validate(&format!("{COMMON}\n{GROUP_SHADER}"));
        for shape in shapes() {
            validate(&shape.source());
            validate(&GroupShape { pivots: 1, ..shape }.source());
            validate(&GroupShape { repeat: 7, ..shape }.source());
            validate(
                &GroupShape {
                    reuse: !shape.reuse,
                    cache: !shape.cache,
                    ..shape
                }
                .source(),
            );
        }
        for shape in large_shapes() {
            validate(&shape.source());
            validate(
                &GroupShape {
                    cg_cap: 256,
                    ..shape
                }
                .source(),
            );
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
        // Only the small networks keep the eliminated nodes' share.
        assert!(bench[1].reuse && !bench[2].reuse && !bench[3].reuse);
        // NVIDIA allows 48 KiB of workgroup memory: 8-16-8 needs 6 KiB,
        // 16-64-16 28 KiB, 8-[32,32,32]-8 37 KiB.
        assert!(bench[1].workgroup_bytes() < 6 << 10);
        assert!(bench[2].workgroup_bytes() < 28 << 10);
        assert!(bench[3].workgroup_bytes() < 40 << 10);
        // The iterative path keeps nothing per edge or node in workgroup
        // memory: a few KiB whatever the size, most of it the reductions'.
        for shape in large_shapes() {
            assert!(shape.large && shape.wg == 256);
            assert!(shape.workgroup_bytes() < 8 << 10, "{shape:?}");
        }
    }

    #[test]
    fn rust_mirrors_of_shader_structs_have_the_wgsl_layout() {
        // The structs live in common.wgsl, which the kernel begins with.
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
}
