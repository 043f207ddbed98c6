//! The kernel (`shaders/train_group.wgsl`), one workgroup per instance:
//! its shape, its pipelines, its runtime checks. The kernel's shape
//! (`GroupShape`: invocations, edges per invocation, node count, dense
//! bound, pivots per barrier, the path, hence the sizes of its workgroup
//! arrays) is written into the shader's first lines per chunk, and its
//! pipelines are built on first use. The shader's own comment says who does
//! what.
//!
//! The dense path: the dense bound is the count of nodes outside the
//! network's parity class (`Network::parity_class`), which the kernel
//! eliminates first wherever its greedy split would leave more dense. It
//! reads the persistent state from the interleaved slots of `fs`, `us` and
//! `state` at the start of a dispatch and writes it back at its end. One
//! dispatch runs up to ERAS_PER_CHECK whole eras (`Gpu::group_plan`; on
//! lavapipe as many patterns or eras as its loop budget allows,
//! `GroupShape::loop_iterations`), once the first eras show that they keep
//! it under MULTI_ERA_SECONDS.
//!
//! The iterative path (`GroupShape::large`), for networks whose dense
//! system does not fit: the circuit stays in `fs` and `us`, the solve is
//! conjugate gradients, and a dispatch runs one step (a read, a pulse's
//! start, a substep, an era's end); on lavapipe the loop budget caps a
//! solve's iterations (`GroupShape::large_loop_iterations`).
//!
//! Both share buffers, upload, readback and probes. Instances are grouped
//! by shape before chunking, so that how an instance's sums are cut across
//! invocations depends on its network alone. docs/gpu.md describes the
//! kernel; docs/performance.md has its measured speed.
//!
//! Not here: which path a chunk takes and how many patterns and eras a
//! dispatch runs (`Gpu::group_plan`, in the parent module).

use std::sync::Arc;

use super::buffers::{dense_bound, Slots};
use super::{Gpu, COMMON, ERAS_PER_CHECK, GROUP_SHADER};

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
    /// Stages run twice, for measuring (`Stages`): none by default.
    pub repeat: u32,
    /// Whether the kernel may keep the eliminated nodes' share of the
    /// dense system from one substep to the next, and so split a boundary
    /// as circuit.rs does, quiet nodes only where that is cheaper: where
    /// the dense bound is at most REUSE_MAX_DENSE.
    pub reuse: bool,
    /// Whether the kernel keeps the split that reads and normalize pulses
    /// share until pruning changes the alive edges (train_group.wgsl
    /// `at_split`).
    pub cache: bool,
    /// The outputs' currents in workgroup memory (`O_MAX`): `nodes` on the
    /// dense path, the outputs on the iterative path.
    pub outputs: u32,
    /// The iterative path (`LARGE` in the shader): state in storage
    /// buffers, conjugate gradients instead of the dense solve, one step
    /// per dispatch; for networks whose dense system does not fit the
    /// workgroup. `nodes` and `dense` then only size the dense path's
    /// workgroup arrays, which it leaves unused: 8 and 1.
    pub large: bool,
    /// The most conjugate-gradient iterations per solve, where lavapipe's
    /// loop budget bounds them (`u32::MAX` elsewhere).
    pub cg_cap: u32,
}

/// The largest dense bound for which the workgroup kernel keeps a second
/// triangle for the eliminated nodes' share (`GroupShape::reuse`). In the
/// layered networks of one hidden layer that fit it (8-16-8 and smaller) a
/// punish pulse's quiet split keeps the hidden layer dense and eliminates
/// the floating terminals, whose share is then recomputed only at the
/// substeps after one of their edges moved; larger networks' quiet
/// splits do not fit the bound, and the second triangle would only take
/// workgroup memory (4.9 KiB more for 8-[32,32,32]-8, 13%).
const REUSE_MAX_DENSE: u32 = 16;

/// Stages of the workgroup kernel that `repeat` (MEMSWEEP_GPU_PROFILE) can run
/// twice, as bits of `GroupShape::repeat` (REPEAT_* in train_group.wgsl).
/// A stage run twice gives the same rows bit for bit; what the second run
/// adds to the time is what the stage costs.
pub struct Stages;

impl Stages {
    /// The boundary's node split, link table and fixed voltages.
    pub const PREPARE: u32 = 1;
    /// The node sums.
    pub const SUMS: u32 = 2;
    /// The solve: Schur complement, Cholesky, back substitution.
    pub const SOLVE: u32 = 4;

    /// The bits of a list of `prepare`, `sums`, `solve` joined by `+` (or
    /// by commas);
    /// None if a name is unknown.
    pub fn parse(list: &str) -> Option<u32> {
        list.split(['+', ','])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .try_fold(0, |bits, name| match name {
                "prepare" => Some(bits | Stages::PREPARE),
                "sums" => Some(bits | Stages::SUMS),
                "solve" => Some(bits | Stages::SOLVE),
                _ => None,
            })
    }
}

/// The workgroup layout's knobs for measuring, read once per `Gpu` from
/// MEMSWEEP_GPU_PROFILE: none changes the model, and the rows stay the same
/// except that the workgroup size changes how a few sums are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GroupKnobs {
    /// `wg`: invocations per workgroup, a power of two from 32
    /// to 256 (default: from the edges).
    pub(super) wg: Option<u32>,
    /// `pivots`: Cholesky pivots per barrier, 1 or 2.
    pub(super) pivots: u32,
    /// `eras`: the most whole eras per dispatch, 1 to
    /// ERAS_PER_CHECK (see `Gpu::group_plan`).
    pub(super) eras: usize,
    /// `repeat`: the stages to run twice (`Stages`).
    pub(super) repeat: u32,
    /// `reuse`: 0 or 1 overrides REUSE_MAX_DENSE.
    pub(super) reuse: Option<bool>,
    /// `cache=0`: compute every boundary's split anew.
    pub(super) cache: bool,
}

impl Default for GroupKnobs {
    fn default() -> Self {
        GroupKnobs {
            wg: None,
            pivots: 2,
            eras: ERAS_PER_CHECK,
            repeat: 0,
            reuse: None,
            cache: true,
        }
    }
}

/// The one variable that holds every knob a kernel developer measures
/// with (docs/gpu.md): comma-separated `key=value` items, `timing` alone,
/// e.g. `MEMSWEEP_GPU_PROFILE=wg=64,repeat=sums+solve,timing`. None changes
/// the model; users never need it.
pub(super) const PROFILE_VARIABLE: &str = "MEMSWEEP_GPU_PROFILE";

/// The value of `key` in `MEMSWEEP_GPU_PROFILE` (empty for a bare key), if
/// the variable names it.
pub(super) fn profile(key: &str) -> Option<String> {
    let all = std::env::var(PROFILE_VARIABLE).ok()?;
    all.split(',').map(str::trim).find_map(|item| {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

impl GroupKnobs {
    /// The knobs `MEMSWEEP_GPU_PROFILE` sets: `wg`, `pivots`, `eras`,
    /// `repeat`, `reuse`, `cache`.
    pub(super) fn from_env() -> Self {
        let var = |name: &str| profile(name).and_then(|s| s.parse::<usize>().ok());
        let default = GroupKnobs::default();
        GroupKnobs {
            wg: var("wg")
                .filter(|w| w.is_power_of_two() && (32..=256).contains(w))
                .map(|w| w as u32),
            pivots: var("pivots")
                .filter(|p| (1..=2).contains(p))
                .map_or(default.pivots, |p| p as u32),
            eras: var("eras").map_or(default.eras, |e| e.clamp(1, ERAS_PER_CHECK)),
            repeat: profile("repeat")
                .and_then(|list| Stages::parse(&list))
                .unwrap_or(default.repeat),
            reuse: var("reuse").filter(|&r| r <= 1).map(|r| r == 1),
            cache: var("cache").map_or(default.cache, |c| c != 0),
        }
    }
}

impl GroupShape {
    /// About four edges per invocation, from 32 to 256 invocations (or the
    /// size `knobs` names, which changes only how the work is cut).
    pub(super) fn of(slots: Slots, knobs: &GroupKnobs) -> GroupShape {
        let wg = knobs
            .wg
            .unwrap_or_else(|| slots.edges.div_ceil(4).next_power_of_two().clamp(32, 256) as u32);
        GroupShape {
            wg,
            edges_per_invocation: (slots.edges as u32).div_ceil(wg),
            nodes: (slots.nodes as u32).next_multiple_of(8),
            dense: slots.group_dense as u32,
            pivots: knobs.pivots,
            repeat: knobs.repeat,
            reuse: knobs
                .reuse
                .unwrap_or(slots.group_dense as u32 <= REUSE_MAX_DENSE),
            cache: knobs.cache,
            outputs: (slots.nodes as u32).next_multiple_of(8),
            large: false,
            cg_cap: u32::MAX,
        }
    }

    /// The iterative path's shape for a chunk of `slots`: workgroup arrays
    /// only for the outputs' currents and the reductions.
    pub(super) fn large(slots: Slots, knobs: &GroupKnobs) -> GroupShape {
        let dense = GroupShape::of(slots, knobs);
        GroupShape {
            nodes: 8,
            outputs: (slots.outputs as u32).next_multiple_of(8).max(8),
            dense: 1,
            pivots: 1,
            repeat: 0,
            reuse: false,
            cache: false,
            large: true,
            // A power of two: few shapes for random networks, whose edge
            // counts vary.
            edges_per_invocation: dense.edges_per_invocation.next_power_of_two(),
            ..dense
        }
    }

    pub(super) fn edges(self) -> u32 {
        self.wg * self.edges_per_invocation
    }

    pub(super) fn dense(self) -> u32 {
        self.dense
    }

    /// Entries of the packed triangle, the right-hand side row included.
    pub(super) fn triangle(self) -> u32 {
        (self.dense() + 1) * (self.dense() + 2) / 2
    }

    pub(super) fn triangle_per_invocation(self) -> u32 {
        self.triangle().div_ceil(self.wg)
    }

    /// Bytes of workgroup memory (train_group.wgsl's `var<workgroup>`s).
    pub fn workgroup_bytes(self) -> u64 {
        let n = self.nodes as u64;
        let sets = n.div_ceil(32);
        let links = (n * n).div_ceil(4) + 1;
        let conductances = if self.large { 1 } else { self.edges() as u64 };
        // The iterative path's reductions.
        let pairs = if self.large { 2 * self.wg as u64 } else { 2 } + 6;
        let words = conductances
            + pairs
            + self.outputs as u64
            + 11 * n
            + (n + 2) * sets
            + links
            + (1 + self.reuse as u64) * self.triangle() as u64
            + 4 * (self.dense() as u64 + 1)
            + 2 * self.wg as u64
            + 10;
        4 * words
    }

    /// The kernel's source with this shape.
    pub(super) fn source(self) -> String {
        let begin = GROUP_SHADER
            .find("// shape begin")
            .expect("train_group.wgsl: no shape begin");
        let end = GROUP_SHADER
            .find("// shape end")
            .expect("train_group.wgsl: no shape end");
        format!(
            "{COMMON}\n{}// shape: {self:?}\nconst WG: u32 = {}u;\nconst M_MAX: u32 = {}u;\n\
             const N_MAX: u32 = {}u;\nconst D_MAX: u32 = {}u;\nconst E_PER: u32 = {}u;\n\
             const PIVOTS: u32 = {}u;\nconst REPEAT: u32 = {}u;\nconst REUSE: u32 = {}u;\nconst CACHE: u32 = {}u;\n\
             const O_MAX: u32 = {}u;\nconst LARGE: u32 = {}u;\nconst CG_CAP: u32 = {}u;\n{}",
            &GROUP_SHADER[..begin],
            self.wg,
            self.edges(),
            self.nodes,
            self.dense(),
            self.edges_per_invocation,
            self.pivots,
            self.repeat,
            self.reuse as u32,
            self.cache as u32,
            self.outputs,
            self.large as u32,
            self.cg_cap,
            &GROUP_SHADER[end..]
        )
    }

    /// An upper bound on the loop iterations of one invocation over one
    /// pattern (a read and two pulses) for networks of this shape whose
    /// nodes have at most `degree` edges; and over the rest of a dispatch.
    pub(super) fn loop_iterations(self, degree: u64, n_sub: u64, n_out: u64) -> (u64, u64) {
        let (n, m, d) = (self.nodes as u64, self.edges() as u64, self.dense() as u64);
        let wg = self.wg as u64;
        let per = |x: u64| x.div_ceil(wg);
        let (e, t) = (
            self.edges_per_invocation as u64,
            self.triangle_per_invocation() as u64,
        );
        let w = n.div_ceil(32);
        // A stage run twice (`Stages`) counts twice.
        let times = |stage: u32| 1 + (self.repeat & stage != 0) as u64;
        // Invocation 0's share: the breadth-first search and the two
        // greedy splits with their assignment (twice, with the parity
        // class's fallback) run there.
        let prepare = times(Stages::PREPARE)
            * (7 * per(n)
                + 32 * w
                + 2 * n * w
                + 2 * (per(n) * n + wg + 3 * n * w + n)
                + per(n * n / 4)
                + e);
        let sums = times(Stages::SUMS) * per(n) * degree;
        let solve = times(Stages::SOLVE)
            * (2 * per(n)
                + t * n
                + per(n) * degree
                + d * (t + per(d))
                + 2 * per(d)
                + d * per(d)
                + per(n) * d);
        let read = prepare + sums + solve + per(n_out) * degree + e + wg + 2 * n_out;
        let pulse = prepare + sums + m + n_sub * (solve + 2 * e + 4 * e + sums);
        let rest = w + e + t + per(n) * (degree + w) + 4 * e + 2 * wg + 2 * e + 16;
        (read + 2 * pulse, rest)
    }

    /// The iterative path, for networks of `nodes` nodes whose nodes have
    /// at most `degree` edges and `n_out` outputs: an upper bound on the
    /// loop iterations of one invocation in any one step (a read, a
    /// pulse's start, a substep, an era's end) besides the solve's
    /// iterations, assuming the driven kind spreads in at most
    /// `SPREAD_ROUNDS` rounds (lavapipe's canary reports a step that needs
    /// more); and the loop iterations of one conjugate-gradient iteration.
    pub(super) fn large_loop_iterations(self, nodes: u64, degree: u64, n_out: u64) -> (u64, u64) {
        let wg = self.wg as u64;
        let per_node = nodes.div_ceil(wg);
        let e = self.edges_per_invocation as u64;
        let reduction = 2 + wg.ilog2() as u64;
        let w = self.nodes.div_ceil(32) as u64;
        let setup = w + 8 * e + wg;
        let rows = per_node * (degree + 1);
        let prepare = 3 + 2 * per_node + (SPREAD_ROUNDS + 1) * (rows + 1);
        let solve = 4 * per_node + rows + 2 * reduction + 1;
        let read = prepare + rows + solve + n_out.div_ceil(wg) * degree + e + wg + 2 * n_out;
        let substep = rows + solve + reduction + wg + 4 * e;
        let iteration = 3 * per_node + rows + 2 * reduction + 1;
        (setup + read.max(substep) + 16, iteration)
    }
}

/// Rounds of the spread of the driven kind that the iterative path's loop
/// budget allows for (train_group.wgsl `prepare_large`; each round reaches
/// one ring of neighbours further: a random network of a thousand nodes
/// and mean degree 10 needs about 5, a layered one its depth).
const SPREAD_ROUNDS: u64 = 24;

/// The workgroup kernel's bound for a network of `n` nodes with a parity
/// class of `class` nodes (`Network::parity_class`): the kernel falls back
/// to eliminating that class first whenever its greedy split leaves more
/// than the other `n - class` nodes dense, so its dense system never
/// exceeds them. Rounded up to a multiple of 8 (few shapes).
pub(super) fn group_dense_bound(n: usize, class: usize) -> usize {
    (n - class).next_multiple_of(8).min(dense_bound(n)).max(1)
}

/// The workgroup kernel's entry points for one shape.
pub(super) struct GroupSteps {
    pub(super) shape: GroupShape,
    pub(super) era: wgpu::ComputePipeline,
    pub(super) final_read: wgpu::ComputePipeline,
    /// The dense path's probe (None on the iterative path, whose probes
    /// run its steps).
    pub(super) probe: Option<wgpu::ComputePipeline>,
    /// The iterative path's steps (`GroupShape::large`).
    pub(super) steps: Option<LargeSteps>,
}

/// The iterative path's entry points besides `era_group` (which ends an
/// era) and `final_group` (which reads a pattern).
pub(super) struct LargeSteps {
    pub(super) read: wgpu::ComputePipeline,
    pub(super) pulse_begin: wgpu::ComputePipeline,
    pub(super) pulse_substep: wgpu::ComputePipeline,
}

impl Gpu {
    /// The workgroup kernel's pipelines for `shape`, built on first use.
    pub(super) fn group_steps(&self, shape: GroupShape) -> Arc<GroupSteps> {
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
                    probe: (!shape.large).then(|| pipeline("probe_group")),
                    steps: shape.large.then(|| LargeSteps {
                        read: pipeline("read_step"),
                        pulse_begin: pipeline("pulse_begin_step"),
                        pulse_substep: pipeline("pulse_substep_step"),
                    }),
                })
            })
            .clone()
    }
}

/// The runtime checks wgpu adds to the workgroup kernel: bounds checks on
/// every array and buffer access, and guarded integer division, but no
/// loop bounding (a counter wgpu adds to every loop so that a driver can
/// never see an infinite one; what it costs is in docs/performance.md).
/// `checks=all` in MEMSWEEP_GPU_PROFILE keeps loop bounding too, `none` drops
/// every check: knobs for measuring (docs/gpu.md).
///
/// Safety of dropping loop bounding: the kernel has no infinite loop. Every
/// loop in train_group.wgsl runs over nodes, edges, entries, patterns,
/// substeps, rounds (at most one per node) or conjugate-gradient
/// iterations (at most four per node and 100), except the breadth-first
/// search, which stops once the reached set (of at most N_MAX nodes)
/// stops growing, and the scans of set bits, each of which clears a bit
/// per turn.
pub(super) fn group_checks() -> wgpu::ShaderRuntimeChecks {
    match profile("checks").as_deref() {
        Some("all") => wgpu::ShaderRuntimeChecks::checked(),
        Some("none") => wgpu::ShaderRuntimeChecks::unchecked(),
        _ => {
            let mut checks = wgpu::ShaderRuntimeChecks::unchecked();
            checks.bounds_checks = true;
            checks.int_div_checks = true;
            checks
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_lists_parse_to_their_bits() {
        assert_eq!(Stages::parse(""), Some(0));
        assert_eq!(
            Stages::parse("sums+solve"),
            Some(Stages::SUMS | Stages::SOLVE)
        );
        assert_eq!(Stages::parse("solve"), Some(Stages::SOLVE));
        assert_eq!(
            Stages::parse("prepare, sums,solve"),
            Some(Stages::PREPARE | Stages::SUMS | Stages::SOLVE)
        );
        assert_eq!(Stages::parse("prepare,cholesky"), None);
    }
}
