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
//! Here: the context (`Gpu`), the choice of layout, chunking and the era
//! loop. Beside it: `adapter` (which adapters count and which one is
//! picked), `buffers` (the Rust mirrors of the shaders' structs, the
//! interleaved state, a chunk flattened for upload and its schedule),
//! `group` (the workgroup kernel's shape and pipelines) and `probe` (single
//! steps, for the tests).
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
//! Thread per instance needs many instances in flight (docs/performance.md
//! has the measurements): a step is bound by memory traffic (each
//! instance's Schur complement and conductances, kilobytes, do not stay in
//! cache).
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
//!   system;
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
use group::{GroupKnobs, GroupSteps};
pub use group::{GroupShape, Stages};
pub use probe::{ProbeCase, ProbeSnapshot, ProbeStep};
pub use rules::{RuleInput, RULE_NAMES};

/// What both kernels share: buffers, structs, draws, phase boundaries.
pub const COMMON: &str = include_str!("../../../shaders/common.wgsl");
/// The protocol kernel, thread per instance (after `COMMON`).
pub const SHADER: &str = include_str!("../../../shaders/train.wgsl");
/// The protocol kernel, workgroup per instance (after `COMMON`); its shape
/// lines are replaced per chunk (`GroupShape::source`).
pub const GROUP_SHADER: &str = include_str!("../../../shaders/train_group.wgsl");

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
/// llvmpipe (lavapipe) ends every loop of a shader invocation once the
/// invocation has run this many loop iterations in all (Mesa's
/// `LP_MAX_TGSI_LOOP_ITERATIONS`).
const LAVAPIPE_LOOP_BUDGET: u64 = 65_535;

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

    /// Tests only: whether the workgroup kernel keeps the split reads and
    /// normalize pulses share (default) or computes it anew, as
    /// MEMSWEEP_GROUP_CACHE=0 does.
    #[doc(hidden)]
    pub fn with_split_cache(mut self, cache: bool) -> Self {
        self.knobs.cache = cache;
        self
    }

    /// Tests only: run the workgroup kernel's `stages` (bits of `Stages`)
    /// twice, as MEMSWEEP_GROUP_REPEAT does.
    #[doc(hidden)]
    pub fn with_repeated_stages(mut self, stages: u32) -> Self {
        self.knobs.repeat = stages;
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
            splits: group.is_some() && self.knobs.cache,
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
        let splits = group && self.knobs.cache;
        let mut needs = ChunkNeeds {
            splits,
            ..ChunkNeeds::default()
        };
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
                    slots: slots[i],
                    net_words: task_words(inst) + topology_words(net),
                    trace_entries: params.training.max_eras * inst.task.n_patterns(),
                    current_words: inst.task.n_patterns() * net.n_out,
                    max_eras: params.training.max_eras,
                    splits,
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
    fn train_chunk(&self, chunk: &[&(Instance, Arc<Params>)], group: bool) -> Vec<Outcome> {
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
        let mut flat = self.flatten(chunk, None, group && self.knobs.cache);
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
        if let Some((at, size)) = flat.split_region() {
            encoder.clear_buffer(&b.us, at, Some(size));
        }
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
            .filter_map(|(inst, params)| self.instance_layout(inst, params))
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
        let circuit: Vec<usize> = (0..batch.len()).collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        // Instances of one layout and workgroup shape train together, so
        // that how an instance's work is cut across invocations (and so
        // the rounding of its sums) depends on its own network alone, never
        // on what shares its chunk.
        let mut kinds: Vec<(Option<GroupShape>, Vec<usize>)> = Vec::new();
        let layouts: Vec<Option<GroupShape>> = circuit
            .par_iter()
            .map(|&i| self.instance_layout(&batch[i].0, &batch[i].1))
            .collect();
        for (&i, key) in circuit.iter().zip(layouts) {
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
                for (j, out) in self
                    .train_chunk(&on_gpu[range], shape.is_some())
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

    /// Shapes of the layered networks `memsweep bench` runs (2-4-2,
    /// 8-16-8, 16-64-16, 8-[32,32,32]-8), and of the smallest.
    fn shapes() -> Vec<GroupShape> {
        let mut shapes: Vec<GroupShape> = crate::bench::standard_configs(1.0)
            .iter()
            .filter(|c| c.bulk.is_none())
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
}
