//! The vectorised device step (MODEL.md sections 2 and 4): one explicit-
//! Euler step of every alive device of an instance, run by run, in blocks
//! of `LANES` edges without branches, compiled once per device law and per
//! instruction set. The device laws themselves are `model::device`; the
//! protocol that decides when to step is `protocol::training`.

use crate::lanes::{self, Isa, LANES};
use crate::model::circuit::NodeSums;
use crate::model::device::{self, DeviceLaw};
use crate::model::network::EdgeRun;
use crate::real::Real;
use crate::rng::CounterRng;

/// The devices of one instance's circuit, its edges grouped into runs
/// (`Network::grouped`): every per-edge vector is in that order, and
/// `edge_id` maps it back to the instance's edge indices, which key the
/// random draws.
pub struct Edges<F> {
    /// For each edge, its index in the instance's network.
    pub edge_id: Vec<u32>,
    /// The runs, as the step takes them (`Segment::of`).
    pub segments: Vec<Segment>,
    /// Each edge's tail and head node, all below `nodes`, the number of
    /// nodes.
    pub tail: Vec<u32>,
    pub head: Vec<u32>,
    pub nodes: usize,
    /// `s_e` as a number, +1 or -1.
    pub polarity: Vec<F>,
    /// Thresholds as `Devices::kernel_threshold` gives them (negative for
    /// a stuck device).
    pub vt: Vec<F>,
    pub ron: Vec<F>,
    pub roff: Vec<F>,
    /// Resistance (ohm) and conductance (siemens, 0 for a pruned edge).
    pub r: Vec<F>,
    pub g: Vec<F>,
}

/// A stretch of edges that the device step takes in one go.
#[derive(Clone, Copy, Debug)]
pub enum Segment {
    /// A run of two or more edges, its heads' sums in blocks of `LANES`.
    Run(EdgeRun),
    /// Consecutive one-edge runs, from edge `e0`, stepped `LANES` at a time
    /// as one block of lanes (a shorter last block lane by lane). Random,
    /// nanowire and graph networks are mostly one-edge runs.
    Singles { e0: u32, len: u32 },
}

impl Segment {
    /// `runs` (`Network::runs`) as segments, in edge order.
    pub fn of(runs: &[EdgeRun]) -> Vec<Segment> {
        let mut segments = Vec::new();
        for run in runs {
            match segments.last_mut() {
                _ if run.len > 1 => segments.push(Segment::Run(*run)),
                Some(Segment::Singles { len, .. }) => *len += 1,
                _ => segments.push(Segment::Singles { e0: run.e0, len: 1 }),
            }
        }
        segments
    }
}

/// What one pass of the device step reads besides the devices.
pub struct Pass<'a, F> {
    /// Node voltages of the last solve.
    pub v: &'a [F],
    /// The boundary's voltages at fixed nodes, 0 at free ones.
    pub fixed_volts: &'a [F],
    /// Whether a head of some edge is held at a nonzero voltage (see
    /// `Trainer`): only then does a device step change the current the
    /// heads inject into their tails.
    pub heads_driven: bool,
    pub dt: F,
    /// `sigma_c2c`.
    pub sigma: F,
    pub rng: &'a CounterRng,
    /// (era, pulse id, substep), the counter of the c2c noise draws.
    pub counter: [u32; 3],
}

impl<F: Real> Edges<F> {
    /// Power dissipated at voltages `v`, `sum_e g_e (V_u - V_v)^2` (watt),
    /// summed per lane run by run as the device step sums it.
    pub fn power(&self, v: &[F]) -> F {
        let mut acc = [F::ZERO; LANES];
        for segment in &self.segments {
            let run = match *segment {
                Segment::Singles { e0, len } => {
                    let edges = e0 as usize..(e0 + len) as usize;
                    for (j, e) in edges.enumerate() {
                        let dv = v[self.tail[e] as usize] - v[self.head[e] as usize];
                        acc[j % LANES] += self.g[e] * dv * dv;
                    }
                    continue;
                }
                Segment::Run(run) => run,
            };
            let (u, heads, edges) = run.span();
            let v_tail = v[u];
            let heads = v[heads].chunks(LANES);
            for (v_head, g) in heads.zip(self.g[edges].chunks(LANES)) {
                if let (Ok(v_head), Ok(g)) =
                    (<&[F; LANES]>::try_from(v_head), <&[F; LANES]>::try_from(g))
                {
                    for l in 0..LANES {
                        let dv = v_tail - v_head[l];
                        acc[l] += g[l] * dv * dv;
                    }
                } else {
                    // A short block, lane by lane (as if padded with g = 0,
                    // which adds nothing).
                    for (l, (&v_head, &g)) in v_head.iter().zip(g).enumerate() {
                        let dv = v_tail - v_head;
                        acc[l] += g * dv * dv;
                    }
                }
            }
        }
        lanes::sum(acc)
    }

    /// `step_runs` with the instruction set `isa`, which the running CPU
    /// must have (`Isa::detect`, `Isa::available`). Each instruction set
    /// gets a function of its own, kept out of the substep loop: the
    /// compiler vectorises the device blocks reliably only in a function
    /// this small. The kernels give the same bits at every vector width
    /// (see `crate::lanes`). `sums` are the solver's node sums, which the
    /// step keeps up to date; `touches` flags the edges that touch a node
    /// the solver eliminates (`Solver::sums_and_touches`).
    #[inline(always)]
    pub fn step<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        isa: Isa,
        law: L,
        pass: &Pass<'_, F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) -> Moved<F> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller passes only an instruction set the
            // running CPU has.
            Isa::Avx512 => unsafe { self.step_avx512::<NOISE, L>(law, pass, sums, touches) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.step_avx2::<NOISE, L>(law, pass, sums, touches) },
            _ => self.step_portable::<NOISE, L>(law, pass, sums, touches),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn step_avx512<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        law: L,
        pass: &Pass<'_, F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) -> Moved<F> {
        self.step_runs::<NOISE, L>(Isa::Avx512, law, pass, sums, touches)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn step_avx2<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        law: L,
        pass: &Pass<'_, F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) -> Moved<F> {
        self.step_runs::<NOISE, L>(Isa::Avx2, law, pass, sums, touches)
    }

    #[inline(never)]
    fn step_portable<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        law: L,
        pass: &Pass<'_, F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) -> Moved<F> {
        self.step_runs::<NOISE, L>(Isa::Portable, law, pass, sums, touches)
    }

    /// One pass over the edges with the voltages `pass.v`: the power they
    /// dissipate (watt, with the conductances the voltages were solved
    /// with) and an Euler step of every alive device, whose conductance
    /// change goes straight into the node sums of the next solve. Returns
    /// the power and which resistances changed. `counter` = (era, pulse
    /// id, substep) keys the cycle-to-cycle noise.
    ///
    /// Run by run (see `EdgeRun`), with or without cycle-to-cycle noise.
    #[inline(always)]
    fn step_runs<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        isa: Isa,
        law: L,
        pass: &Pass<'_, F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) -> Moved<F> {
        let step = DeviceStep {
            dt: pass.dt,
            law,
            sigma: pass.sigma,
            rng: pass.rng,
            counter: pass.counter,
        };
        let mut acc = StepSums::default();
        let heads_driven = pass.heads_driven;
        assert!(pass.v.len() >= self.nodes, "a voltage for every node");
        for i in 0..self.segments.len() {
            let run = match self.segments[i] {
                Segment::Singles { e0, len } => {
                    let (e0, n) = (e0 as usize, len as usize);
                    let acc = &mut acc;
                    match isa {
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: `step` runs `isa` only on a CPU that has it.
                        Isa::Avx512 => unsafe {
                            self.singles_avx512::<NOISE, L>(e0, n, &step, pass, acc, sums, touches)
                        },
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: as above.
                        Isa::Avx2 => unsafe {
                            self.singles_avx2::<NOISE, L>(e0, n, &step, pass, acc, sums, touches)
                        },
                        _ => self.step_singles::<NOISE, L>(e0, n, &step, pass, acc, sums, touches),
                    }
                    continue;
                }
                Segment::Run(run) => run,
            };
            let (u, heads, edges) = run.span();
            let len = edges.len();
            let mut view = RunView {
                edge_id: &self.edge_id[edges.clone()],
                v_tail: pass.v[u],
                volts_tail: pass.fixed_volts[u],
                v_head: &pass.v[heads.clone()],
                volts_head: &pass.fixed_volts[heads.clone()],
                polarity: &self.polarity[edges.clone()],
                vt: &self.vt[edges.clone()],
                ron: &self.ron[edges.clone()],
                roff: &self.roff[edges.clone()],
                r: &mut self.r[edges.clone()],
                touches_eliminated: &touches[edges.clone()],
                g: &mut self.g[edges],
                conductance_head: &mut sums.conductance[heads.clone()],
                inject_head: &mut sums.inject[heads],
            };
            let whole = len - len % LANES;
            // The tail's changes, per lane.
            let mut tail = TailSums::default();
            for j0 in (0..whole).step_by(LANES) {
                view.step_block::<NOISE, L>(j0, &step, &mut acc, &mut tail);
            }
            if whole < len {
                view.step_short::<NOISE, L>(whole, len - whole, &step, &mut acc, &mut tail);
            }
            if tail.moved {
                // (Otherwise both sums are zero.)
                sums.conductance[u] += lanes::sum(tail.conductance);
                if heads_driven {
                    // (Otherwise this sum is zero.)
                    sums.inject[u] += lanes::sum(tail.inject);
                }
            }
        }
        Moved {
            power: lanes::sum(acc.power),
            any: lanes::sum(acc.moved) != F::ZERO,
            touching_eliminated: lanes::sum(acc.moved_touching) != F::ZERO,
        }
    }

    /// `step_singles` for each instruction set, out of the runs' loop, so
    /// that the runs' blocks compile as they did before one-edge blocks
    /// existed (vector code; checked by the count of vector divisions).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn singles_avx512<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        e0: usize,
        n: usize,
        c: &DeviceStep<'_, F, L>,
        pass: &Pass<'_, F>,
        acc: &mut StepSums<F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) {
        self.step_singles::<NOISE, L>(e0, n, c, pass, acc, sums, touches)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn singles_avx2<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        e0: usize,
        n: usize,
        c: &DeviceStep<'_, F, L>,
        pass: &Pass<'_, F>,
        acc: &mut StepSums<F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) {
        self.step_singles::<NOISE, L>(e0, n, c, pass, acc, sums, touches)
    }

    /// The one-edge runs `e0..e0 + n` (`Segment::Singles`), `LANES` at a
    /// time: a whole block as one block of lanes (`step_lanes`), a shorter
    /// last one lane by lane (`Device::step`), with the same arithmetic.
    /// Each stepped device's change goes into its two nodes' sums in edge
    /// order.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn step_singles<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        e0: usize,
        n: usize,
        c: &DeviceStep<'_, F, L>,
        pass: &Pass<'_, F>,
        acc: &mut StepSums<F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) {
        for start in (e0..e0 + n).step_by(LANES) {
            let len = (e0 + n - start).min(LANES);
            self.singles_block::<NOISE, L>(start, len, c, pass, acc, sums, touches);
        }
    }

    /// One block of `step_singles`: the one-edge runs `e0..e0 + n`,
    /// `n <= LANES`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn singles_block<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        e0: usize,
        n: usize,
        c: &DeviceStep<'_, F, L>,
        pass: &Pass<'_, F>,
        acc: &mut StepSums<F>,
        sums: &mut NodeSums<F>,
        touches: &[F],
    ) {
        let mut into_sums = |j: usize, dg: F| {
            let (u, h) = (self.tail[j] as usize, self.head[j] as usize);
            sums.conductance[u] += dg;
            if pass.heads_driven {
                sums.inject[u] += dg * pass.fixed_volts[h];
            }
            sums.conductance[h] += dg;
            sums.inject[h] += dg * pass.fixed_volts[u];
        };
        if n < LANES {
            for (l, j) in (e0..e0 + n).enumerate() {
                let device = Device {
                    dv: pass.v[self.tail[j] as usize] - pass.v[self.head[j] as usize],
                    polarity: self.polarity[j],
                    vt: self.vt[j],
                    ron: self.ron[j],
                    roff: self.roff[j],
                    edge_id: self.edge_id[j],
                    touches_eliminated: touches[j],
                };
                // (A pruned device at a nonzero rate would add exact zeros
                // to the sums, which no sum is changed by.)
                if let Stepped::Moved(dg) =
                    device.step::<NOISE, L>(c, &mut self.r[j], &mut self.g[j], acc, l)
                {
                    into_sums(j, dg);
                }
            }
            return;
        }
        let at = e0..e0 + LANES;
        let load = |x: &[F]| lanes::block(&x[e0..]);
        let (tail, head) = (&self.tail[at.clone()], &self.head[at.clone()]);
        // SAFETY: every node index is below `self.nodes`, at most
        // `pass.v.len()` (asserted by `step_runs`). (Volatile reads keep the compiler from
        // making the loads one gather instruction, which is slower.)
        let volts =
            |node: u32| unsafe { std::ptr::read_volatile(pass.v.as_ptr().add(node as usize)) };
        let dv: [F; LANES] = std::array::from_fn(|l| volts(tail[l]) - volts(head[l]));
        let (polarity, vt) = (load(&self.polarity), load(&self.vt));
        let (ron, roff) = (load(&self.ron), load(&self.roff));
        let r_old = load(&self.r);
        let g_old = load(&self.g);
        let Some([r_new, g_new, dg, rate]) = step_lanes::<NOISE, F, L>(
            c,
            acc,
            dv,
            polarity,
            vt,
            ron,
            roff,
            r_old,
            g_old,
            &touches[e0..],
            &self.edge_id[at.clone()],
        ) else {
            return;
        };
        lanes::store(&mut self.r[at.clone()], &r_new);
        lanes::store(&mut self.g[at], &g_new);
        for l in 0..LANES {
            if rate[l] != F::ZERO && g_old[l] > F::ZERO {
                into_sums(e0 + l, dg[l]);
            }
        }
    }
}

/// What an Euler step of the devices needs besides their state.
struct DeviceStep<'a, F, L> {
    dt: F,
    law: L,
    sigma: F,
    rng: &'a CounterRng,
    /// (era, pulse id, substep), the counter of the c2c noise draws.
    counter: [u32; 3],
}

/// What a substep's device step did: the power dissipated (watt), whether
/// any device moved, and whether one that touches a node the solver
/// eliminates did.
pub struct Moved<F> {
    pub power: F,
    pub any: bool,
    pub touching_eliminated: bool,
}

/// Per-lane sums over a substep: power (watt), and 1 where a device moved
/// and where one touching an eliminated node moved (floats, to stay in
/// vector registers).
struct StepSums<F> {
    power: [F; LANES],
    moved: [F; LANES],
    moved_touching: [F; LANES],
}

impl<F: Real> Default for StepSums<F> {
    fn default() -> Self {
        StepSums {
            power: [F::ZERO; LANES],
            moved: [F::ZERO; LANES],
            moved_touching: [F::ZERO; LANES],
        }
    }
}

/// Per-lane changes of a run's tail node over a substep: conductance,
/// injected current, and whether any device of the run moved.
struct TailSums<F> {
    conductance: [F; LANES],
    inject: [F; LANES],
    moved: bool,
}

impl<F: Real> Default for TailSums<F> {
    fn default() -> Self {
        TailSums {
            conductance: [F::ZERO; LANES],
            inject: [F::ZERO; LANES],
            moved: false,
        }
    }
}

/// One run of edges (see `EdgeRun`): its devices, its head nodes' voltages
/// and node sums.
struct RunView<'a, F> {
    /// The instance's index of each edge of the run (keys the noise).
    edge_id: &'a [u32],
    v_tail: F,
    volts_tail: F,
    v_head: &'a [F],
    volts_head: &'a [F],
    polarity: &'a [F],
    vt: &'a [F],
    ron: &'a [F],
    roff: &'a [F],
    touches_eliminated: &'a [F],
    r: &'a mut [F],
    g: &'a mut [F],
    conductance_head: &'a mut [F],
    inject_head: &'a mut [F],
}

impl<F: Real> RunView<'_, F> {
    /// Step the `LANES` edges from `j0`. Every lane is computed without
    /// branches, so the block becomes vector code; a pruned edge (`g = 0`)
    /// keeps its state. If no device of the block is above threshold,
    /// nothing but the power is touched. Each lane's step is `lane_step`,
    /// as in `step_lanes` for one-edge runs (see there why this block does
    /// not call it).
    #[inline(always)]
    fn step_block<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        j0: usize,
        c: &DeviceStep<'_, F, L>,
        acc: &mut StepSums<F>,
        tail: &mut TailSums<F>,
    ) {
        let at = j0..j0 + LANES;
        let load = |x: &[F]| lanes::block(&x[j0..]);
        let (v_head, volts_head) = (load(self.v_head), load(self.volts_head));
        let (polarity, vt) = (load(self.polarity), load(self.vt));
        let (ron, roff) = (load(self.ron), load(self.roff));
        let r_old = load(self.r);
        let g_old = load(self.g);
        let mut rate = [F::ZERO; LANES];
        let mut v = [F::ZERO; LANES];
        let mut may_move = false;
        for l in 0..LANES {
            let dv = self.v_tail - v_head[l];
            acc.power[l] += g_old[l] * dv * dv;
            v[l] = polarity[l] * dv;
            may_move |= c.law.may_move(v[l], vt[l]);
        }
        if may_move {
            for l in 0..LANES {
                rate[l] = c.law.rate(v[l], vt[l], r_old[l], ron[l], roff[l]);
            }
        }
        if rate.iter().all(|&rate| rate == F::ZERO) {
            // Nothing moves: every lane below would leave its state and
            // sums exactly as they are.
            return;
        }
        let touches = load(self.touches_eliminated);
        let (conductance_head, inject_head) = (load(self.conductance_head), load(self.inject_head));
        let mut r_new = r_old;
        let mut g_new = g_old;
        let mut dg = [F::ZERO; LANES];
        for l in 0..LANES {
            (r_new[l], g_new[l], dg[l]) = lane_step::<NOISE, F, L>(
                c,
                acc,
                l,
                rate[l],
                r_old[l],
                g_old[l],
                ron[l],
                roff[l],
                touches[l],
                self.edge_id[j0 + l],
            );
            tail.conductance[l] += dg[l];
            tail.inject[l] += dg[l] * volts_head[l];
        }
        let conductance_head: [F; LANES] = std::array::from_fn(|l| conductance_head[l] + dg[l]);
        let inject_head: [F; LANES] =
            std::array::from_fn(|l| inject_head[l] + dg[l] * self.volts_tail);
        lanes::store(&mut self.r[at.clone()], &r_new);
        lanes::store(&mut self.g[at.clone()], &g_new);
        lanes::store(&mut self.conductance_head[at.clone()], &conductance_head);
        lanes::store(&mut self.inject_head[at], &inject_head);
        tail.moved = true;
    }

    /// `step_block` for the last `n < LANES` edges of a run, lane by lane
    /// (`Device::step`): the same arithmetic, each lane in its own
    /// accumulators, skipping the lanes at rate zero (which would add exact
    /// zeros), so the bits are those of a block padded with pruned edges.
    /// Runs of random, nanowire and graph networks are mostly one or two
    /// edges long, where padding and copying a block would cost several
    /// times the work (and a one-edge run skips even the run's view:
    /// `step_runs`).
    #[inline(always)]
    fn step_short<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        j0: usize,
        n: usize,
        c: &DeviceStep<'_, F, L>,
        acc: &mut StepSums<F>,
        tail: &mut TailSums<F>,
    ) {
        for l in 0..n {
            let j = j0 + l;
            let device = Device {
                dv: self.v_tail - self.v_head[j],
                polarity: self.polarity[j],
                vt: self.vt[j],
                ron: self.ron[j],
                roff: self.roff[j],
                edge_id: self.edge_id[j],
                touches_eliminated: self.touches_eliminated[j],
            };
            match device.step::<NOISE, L>(c, &mut self.r[j], &mut self.g[j], acc, l) {
                Stepped::Still => (),
                Stepped::Pruned => tail.moved = true,
                Stepped::Moved(dg) => {
                    tail.moved = true;
                    tail.conductance[l] += dg;
                    tail.inject[l] += dg * self.volts_head[j];
                    self.conductance_head[j] += dg;
                    self.inject_head[j] += dg * self.volts_tail;
                }
            }
        }
    }
}

/// One block of `LANES` one-edge runs (`step_singles`), without
/// branches: the power into `acc`, and an Euler step of every lane; a
/// pruned lane (`g = 0`) keeps its state. Each lane's step is
/// `lane_step`, as in `RunView::step_block`. (That function does not call
/// this one: through this one, whose arrays go by value, the runs' blocks
/// were left scalar code, and an 8-16-8 training took 1.6 times as long.)
/// `dv` is the voltage across each device before polarity; `touches` and
/// `edge_id` are the block's `touches_eliminated` flags and edges.
/// Returns `None` if no lane is above threshold, else the new resistances
/// and conductances, each lane's change of conductance and its rate (a
/// lane stepped if it was alive at a nonzero rate).
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn step_lanes<const NOISE: bool, F: Real, L: DeviceLaw<F>>(
    c: &DeviceStep<'_, F, L>,
    acc: &mut StepSums<F>,
    dv: [F; LANES],
    polarity: [F; LANES],
    vt: [F; LANES],
    ron: [F; LANES],
    roff: [F; LANES],
    r_old: [F; LANES],
    g_old: [F; LANES],
    touches: &[F],
    edge_id: &[u32],
) -> Option<[[F; LANES]; 4]> {
    let mut rate = [F::ZERO; LANES];
    let mut v = [F::ZERO; LANES];
    let mut may_move = false;
    for l in 0..LANES {
        acc.power[l] += g_old[l] * dv[l] * dv[l];
        v[l] = polarity[l] * dv[l];
        may_move |= c.law.may_move(v[l], vt[l]);
    }
    if may_move {
        for l in 0..LANES {
            rate[l] = c.law.rate(v[l], vt[l], r_old[l], ron[l], roff[l]);
        }
    }
    if rate.iter().all(|&rate| rate == F::ZERO) {
        // Nothing moves: every lane would keep its state and sums.
        return None;
    }
    let touches = lanes::block(touches);
    let mut r_new = r_old;
    let mut g_new = g_old;
    let mut dg = [F::ZERO; LANES];
    for l in 0..LANES {
        (r_new[l], g_new[l], dg[l]) = lane_step::<NOISE, F, L>(
            c, acc, l, rate[l], r_old[l], g_old[l], ron[l], roff[l], touches[l], edge_id[l],
        );
    }
    Some([r_new, g_new, dg, rate])
}

/// One lane of a block's Euler step at `rate`, without branches (the
/// shared lane of `RunView::step_block` and `step_lanes`): the c2c noise
/// if the device moves, the step, the lane's moved flags in `acc`; a
/// pruned lane (`g_old = 0`) keeps its state. Returns the new resistance,
/// conductance and the change of conductance.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lane_step<const NOISE: bool, F: Real, L: DeviceLaw<F>>(
    c: &DeviceStep<'_, F, L>,
    acc: &mut StepSums<F>,
    l: usize,
    rate: F,
    r_old: F,
    g_old: F,
    ron: F,
    roff: F,
    touches: F,
    edge_id: u32,
) -> (F, F, F) {
    let noise = if NOISE && rate != F::ZERO {
        let z = c
            .rng
            .normal::<F>([c.counter[0], c.counter[1], c.counter[2], edge_id]);
        device::c2c_factor(c.sigma, z)
    } else {
        F::ONE
    };
    let alive = g_old > F::ZERO;
    let stepped = c.law.step(r_old, rate, c.dt, noise, ron, roff);
    let g_stepped = F::ONE / stepped;
    let moves = alive & (stepped != r_old);
    acc.moved[l] = if moves { F::ONE } else { acc.moved[l] };
    acc.moved_touching[l] = if moves & (touches != F::ZERO) {
        F::ONE
    } else {
        acc.moved_touching[l]
    };
    let r_new = if alive { stepped } else { r_old };
    let g_new = if alive { g_stepped } else { F::ZERO };
    (r_new, g_new, g_new - g_old)
}

/// One device of a substep's step, as `step_short` and `Edges::step_single`
/// see it: the voltage across it (before polarity) and its fixed values.
struct Device<F> {
    dv: F,
    polarity: F,
    vt: F,
    ron: F,
    roff: F,
    edge_id: u32,
    touches_eliminated: F,
}

/// What `Device::step` did: nothing (below threshold or at rate zero), a
/// pruned device at a nonzero rate (which keeps its state), or a step
/// that changed its conductance by `dg`.
enum Stepped<F> {
    Still,
    Pruned,
    Moved(F),
}

impl<F: Real> Device<F> {
    /// `step_block`'s lane, scalar: the power into lane `l` of `acc`, an
    /// Euler step of `r` and `g`, the lane's moved flags.
    #[inline(always)]
    fn step<const NOISE: bool, L: DeviceLaw<F>>(
        &self,
        c: &DeviceStep<'_, F, L>,
        r: &mut F,
        g: &mut F,
        acc: &mut StepSums<F>,
        l: usize,
    ) -> Stepped<F> {
        let (dv, g_old) = (self.dv, *g);
        acc.power[l] += g_old * dv * dv;
        let v = self.polarity * dv;
        if !c.law.may_move(v, self.vt) {
            return Stepped::Still;
        }
        let r_old = *r;
        let rate = c.law.rate(v, self.vt, r_old, self.ron, self.roff);
        if rate == F::ZERO {
            return Stepped::Still;
        }
        if g_old <= F::ZERO {
            // Pruned: it keeps its state.
            return Stepped::Pruned;
        }
        let noise = if NOISE {
            let z = c
                .rng
                .normal::<F>([c.counter[0], c.counter[1], c.counter[2], self.edge_id]);
            device::c2c_factor(c.sigma, z)
        } else {
            F::ONE
        };
        let stepped = c.law.step(r_old, rate, c.dt, noise, self.ron, self.roff);
        let g_new = F::ONE / stepped;
        if stepped != r_old {
            acc.moved[l] = F::ONE;
            if self.touches_eliminated != F::ZERO {
                acc.moved_touching[l] = F::ONE;
            }
        }
        *r = stepped;
        *g = g_new;
        Stepped::Moved(g_new - g_old)
    }
}
