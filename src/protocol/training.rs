//! Learning from mistakes (MODEL.md sections 4, 6, 7): the era loop of one
//! instance, as the CPU backend runs it. `shaders/train_group.wgsl` runs the
//! same steps, in the same order, for a chunk of instances.
//!
//! Generic over the float type: f64 is the reference; f32 mirrors the
//! shader's arithmetic so the two backends can be compared closely.

use crate::instance::Instance;
use crate::lanes::{self, Isa, LANES};
use crate::model::circuit::{self, Boundary, Solver, SolverChoice};
use crate::model::device;
use crate::model::network::{Adjacency, EdgeRun, Network};
use crate::params::Params;
use crate::protocol::phase;
use crate::real::Real;
use crate::rng::{CounterRng, PURPOSE_PRUNE};

/// One read during training: a row of the `eras` table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EraRead {
    pub era: u32,
    pub pattern: u32,
    pub correct: bool,
    /// Watt.
    pub read_power: f64,
}

/// What training an instance produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub recalled: usize,
    pub converged_era: Option<u32>,
    pub eras_run: u32,
    /// Joule dissipated by punish and normalize pulses.
    pub energy_write: f64,
    pub pruned_edges: usize,
    /// Final read currents (ampere), `[pattern][output]`.
    pub final_currents: Vec<Vec<f64>>,
    /// Final state: resistance (ohm) and whether each edge is alive.
    pub r_final: Vec<f64>,
    pub alive_final: Vec<bool>,
    /// Memristor updates integrated: alive edges x substeps of every pulse.
    pub updates: u64,
    pub trace: Vec<EraRead>,
}

/// Which pulse of a mistake; part of the counter of the c2c noise draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pulse {
    Punish = 0,
    Normalize = 1,
}

/// The state of one instance in training, with its reusable buffers.
///
/// The trainer runs the instance's circuit with its edges grouped into long
/// runs (`Network::grouped`): every per-edge vector below is in that order,
/// and `edge_id` maps it back to the instance's edge indices, which key the
/// random draws and number the edges in everything the trainer returns.
pub struct Trainer<'a, F: Real> {
    inst: &'a Instance,
    params: &'a Params,
    rng: CounterRng,
    /// The circuit as the trainer runs it, and its adjacency.
    net: Network,
    adj: Adjacency,
    /// For each edge of `net`, its index in the instance's network.
    edge_id: Vec<u32>,
    r: Vec<F>,
    g: Vec<F>,
    alive: Vec<bool>,
    v: Vec<F>,
    /// Whether the solver's node conductances are those of `g`: the device
    /// step keeps them so, pruning and `set_state` do not.
    conductance_current: bool,
    /// `s_e` as a number, +1 or -1.
    polarity: Vec<F>,
    ron: Vec<F>,
    roff: Vec<F>,
    vt: Vec<F>,
    boundary: Boundary<F>,
    /// The boundary's voltages at fixed nodes, 0 at free ones.
    fixed_volts: Vec<F>,
    runs: Vec<EdgeRun>,
    /// Whether a head of some edge is held at a nonzero voltage in the
    /// current pulse, so that the device step changes the current the
    /// heads inject into their tails (never, in a layered network: only
    /// inputs are driven, and they are tails).
    heads_driven: bool,
    /// The instruction set the substep loop runs with.
    isa: Isa,
    solver: Solver<F>,
    currents: Vec<F>,
    pub energy_write: F,
    pub updates: u64,
}

impl<'a, F: Real> Trainer<'a, F> {
    pub fn new(inst: &'a Instance, params: &'a Params) -> Self {
        Self::with_solver(inst, params, Solver::new(inst.network.n_nodes()))
    }

    /// As `new`, with the nodal solve `choice` names.
    pub fn with_choice(inst: &'a Instance, params: &'a Params, choice: SolverChoice) -> Self {
        Self::with_solver(
            inst,
            params,
            Solver::with_choice(inst.network.n_nodes(), choice),
        )
    }

    /// As `new`, reusing `solver`'s buffers and cached layouts, which must
    /// come from an instance with the same wiring and task inputs (see
    /// `Layouts`).
    fn with_solver(inst: &'a Instance, params: &'a Params, mut solver: Solver<F>) -> Self {
        // Its cut-off nodes belong to the other instance's pruning.
        solver.alive_changed();
        let n = inst.network.n_nodes();
        let (net, edge_id) = inst.network.grouped();
        let dev = &inst.devices;
        let to_f = |xs: &[f64]| {
            edge_id
                .iter()
                .map(|&e| F::from_f64(xs[e as usize]))
                .collect::<Vec<F>>()
        };
        let r = to_f(&dev.r0);
        Trainer {
            inst,
            params,
            rng: CounterRng::new(inst.seed),
            adj: Adjacency::new(&net),
            g: r.iter().map(|&r| F::ONE / r).collect(),
            r,
            alive: vec![true; net.n_edges()],
            v: vec![F::ZERO; n],
            conductance_current: false,
            polarity: net
                .polarity
                .iter()
                .map(|&s| F::from_f64(s as f64))
                .collect(),
            ron: to_f(&dev.ron),
            roff: to_f(&dev.roff),
            vt: to_f(&dev.vt),
            boundary: Boundary::floating(n),
            fixed_volts: vec![F::ZERO; n],
            runs: net.runs(),
            heads_driven: false,
            isa: Isa::detect(),
            solver,
            currents: vec![F::ZERO; net.n_out],
            energy_write: F::ZERO,
            updates: 0,
            net,
            edge_id,
        }
    }

    /// Read pattern `k` in `era` (`FINAL_READ_ERA` for the final read):
    /// solve, measure every output's current, with read noise if
    /// `sigma_read > 0`, and return the winner and the read power (watt).
    /// Changes no state.
    pub fn read(&mut self, era: u32, k: usize) -> (usize, F) {
        let v_read = F::from_f64(self.params.training.v_read);
        phase::read(
            &self.net,
            &self.inst.task.active[k],
            v_read,
            &mut self.boundary,
        );
        self.solve_fresh(k);
        let net = &self.net;
        let sigma_read = F::from_f64(self.params.training.sigma_read);
        for o in 0..net.n_out {
            self.currents[o] =
                circuit::node_current(&self.adj, &self.g, &self.v, net.output_node(o));
            if sigma_read != F::ZERO {
                self.currents[o] *= read_noise(&self.rng, sigma_read, era, k, o);
            }
        }
        (phase::winner(&self.currents), self.power())
    }

    /// Power dissipated in the network at the voltages of the last solve,
    /// `sum_e g_e (V_u - V_v)^2` (watt), summed per lane run by run as the
    /// device step sums it.
    fn power(&self) -> F {
        let mut acc = [F::ZERO; LANES];
        for run in &self.runs {
            let (u, heads, edges) = run.span();
            let v_tail = self.v[u];
            let heads = self.v[heads].chunks(LANES);
            for (v_head, g) in heads.zip(self.g[edges].chunks(LANES)) {
                // A short block is padded with g = 0.
                let (v_head, g) = (lanes::load(v_head), lanes::load(g));
                for l in 0..LANES {
                    let dv = v_tail - v_head[l];
                    acc[l] += g[l] * dv * dv;
                }
            }
        }
        lanes::sum(acc)
    }

    /// Replace the boundary, for a pulse under a configuration of the
    /// caller's (the physics tests and the SPICE cross-check use this).
    pub fn set_boundary(&mut self, boundary: Boundary<F>) {
        self.boundary = boundary;
    }

    /// The boundary of the last read or pulse.
    pub fn boundary(&self) -> &Boundary<F> {
        &self.boundary
    }

    /// Output currents of the last read (ampere).
    pub fn currents(&self) -> &[F] {
        &self.currents
    }

    /// `x`, one value per edge of `net`, in the instance's edge order.
    fn in_instance_order<T: Copy + Default>(&self, x: &[T]) -> Vec<T> {
        let mut out = vec![T::default(); x.len()];
        for (&e, &x) in self.edge_id.iter().zip(x) {
            out[e as usize] = x;
        }
        out
    }

    /// Resistance of every edge (ohm; a pruned edge keeps its last value),
    /// in the instance's edge order.
    pub fn r(&self) -> Vec<F> {
        self.in_instance_order(&self.r)
    }

    /// Conductance of every edge (siemens, 0 for a pruned edge), in the
    /// instance's edge order.
    pub fn g(&self) -> Vec<F> {
        self.in_instance_order(&self.g)
    }

    /// Which edges are alive, in the instance's edge order.
    pub fn alive(&self) -> Vec<bool> {
        self.in_instance_order(&self.alive)
    }

    /// What the nodal solver did so far (`memsweep bench`).
    pub fn solve_stats(&self) -> circuit::SolveStats {
        self.solver.stats
    }

    /// Node voltages of the last solve (volt).
    pub fn v(&self) -> &[F] {
        &self.v
    }

    /// Replace the devices' state, for a pulse from a state of the caller's
    /// (the SPICE cross-check, the GPU agreement tests).
    /// `r` and `alive` are in the instance's edge order.
    pub fn set_state(&mut self, r: &[F], alive: &[bool]) {
        for (s, &e) in self.edge_id.iter().enumerate() {
            let e = e as usize;
            self.r[s] = r[e];
            self.alive[s] = alive[e];
            self.g[s] = if alive[e] { F::ONE / r[e] } else { F::ZERO };
        }
        self.solver.alive_changed();
        self.conductance_current = false;
    }

    /// Punish pattern `k` whose read was won by `winner`.
    pub fn punish(&mut self, era: u32, k: usize, winner: usize) {
        let net = &self.net;
        let v_punish = F::from_f64(self.params.training.v_punish);
        phase::punish(
            net,
            &self.inst.task.active[k],
            winner,
            v_punish,
            &mut self.boundary,
        );
        let slot = self.slot_normalize() + 1 + k * net.n_out + winner;
        self.pulse_in_slot(era, k, Pulse::Punish, Some(slot));
    }

    pub fn normalize(&mut self, era: u32, k: usize) {
        let v_norm = F::from_f64(self.params.training.v_norm);
        phase::normalize(&self.net, v_norm, &mut self.boundary);
        let slot = self.slot_normalize();
        self.pulse_in_slot(era, k, Pulse::Normalize, Some(slot));
    }

    /// Solve the read of pattern `k` (boundary slot `k`).
    fn solve_fresh(&mut self, k: usize) {
        let gmin = F::from_f64(self.params.circuit.gmin);
        self.solver
            .prepare_cached(k, &self.adj, &self.alive, &self.boundary);
        self.refresh_sums();
        self.solver
            .solve_from_sums(&self.g, gmin, &self.boundary, &mut self.v, false);
    }

    /// Bring the solver's node sums to the current boundary: the injected
    /// currents always, the conductances only if they are not current.
    ///
    /// Between prunings the conductances are kept by the device steps,
    /// which add every change of `g` to both ends' sums: rounding makes
    /// them drift from a fresh sum by about one unit in the last place per
    /// change, some 1e-17 S over a whole training, far below `gmin`.
    fn refresh_sums(&mut self) {
        let sums = &mut self.solver.sums;
        if self.conductance_current {
            sums.refill_inject(&self.adj, &self.g, &self.boundary);
        } else {
            sums.fill(&self.net, &self.adj, &self.g, &self.boundary);
            self.conductance_current = true;
        }
    }

    /// Layout slots: reads take `0..P`, normalize `P`, punish (k, winner)
    /// the slots after it.
    fn slot_normalize(&self) -> usize {
        self.inst.task.n_patterns()
    }

    /// One pulse of duration `tau` under the current boundary, in `n_sub`
    /// Euler substeps: solve, accumulate
    /// `P dt`, move every alive device.
    ///
    /// Once a substep moves no device, every later substep of the pulse
    /// would solve the same system and move nothing either (sub-threshold
    /// devices stay, devices at a bound stay clipped), so the rest of the
    /// pulse is accounted in one step. This is exact, not an approximation.
    pub fn pulse(&mut self, era: u32, k: usize, which: Pulse) {
        self.pulse_in_slot(era, k, which, None);
    }

    /// `pulse`, with the layout of the boundary kept in `slot` if given.
    fn pulse_in_slot(&mut self, era: u32, k: usize, which: Pulse, slot: Option<usize>) {
        match slot {
            Some(slot) => self
                .solver
                .prepare_cached(slot, &self.adj, &self.alive, &self.boundary),
            None => self.solver.prepare(&self.adj, &self.alive, &self.boundary),
        }
        let t = &self.params.training;
        let n_sub = t.n_sub;
        let dt = F::from_f64(t.tau / n_sub as f64);
        let gmin = F::from_f64(self.params.circuit.gmin);
        for (i, volts) in self.fixed_volts.iter_mut().enumerate() {
            *volts = if self.boundary.fixed[i] {
                self.boundary.volts[i]
            } else {
                F::ZERO
            };
        }
        let (net, adj) = (&self.net, &self.adj);
        self.heads_driven = (0..self.fixed_volts.len()).any(|j| {
            self.fixed_volts[j] != F::ZERO
                && adj
                    .range(j)
                    .any(|k| net.head[adj.edge[k] as usize] as usize == j)
        });
        self.refresh_sums();
        let n_alive = self.alive.iter().filter(|&&a| a).count() as u64;
        self.updates += n_alive * n_sub as u64;
        let pulse_id = (2 * k + which as usize) as u32;
        if self.params.device.sigma_c2c > 0.0 {
            self.substeps::<true>(era, pulse_id, n_sub, dt, gmin)
        } else {
            self.substeps::<false>(era, pulse_id, n_sub, dt, gmin)
        }
    }

    /// The `n_sub` Euler substeps of a pulse: solve, accumulate `P dt`,
    /// move every alive device (see `pulse`). The solve and the device
    /// step each run as a function of their own, compiled for the
    /// instruction set `self.isa`.
    fn substeps<const NOISE: bool>(
        &mut self,
        era: u32,
        pulse_id: u32,
        n_sub: usize,
        dt: F,
        gmin: F,
    ) {
        // Whether the eliminated nodes' Schur term of the last solve still
        // holds: none of their edges moved since.
        let mut reuse = false;
        for sub in 0..n_sub {
            self.solve_on(gmin, reuse);
            let moved = self.step_runs_on::<NOISE>(dt, [era, pulse_id, sub as u32]);
            if !moved.any {
                self.energy_write += moved.power * dt * F::from_f64((n_sub - sub) as f64);
                return;
            }
            self.energy_write += moved.power * dt;
            reuse = !moved.touching_eliminated;
        }
    }

    /// `Solver::solve_from_sums` for the current state and boundary, with
    /// the instruction set `self.isa`.
    #[inline(always)]
    fn solve_on(&mut self, gmin: F, reuse: bool) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` is only ever set to an instruction set the
            // running CPU has (`Isa::detect`, `Trainer::set_isa`).
            Isa::Avx512 => unsafe { self.solve_avx512(gmin, reuse) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.solve_avx2(gmin, reuse) },
            _ => self.solve_portable(gmin, reuse),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn solve_avx512(&mut self, gmin: F, reuse: bool) {
        self.solve_portable(gmin, reuse)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn solve_avx2(&mut self, gmin: F, reuse: bool) {
        self.solve_portable(gmin, reuse)
    }

    #[inline(always)]
    fn solve_portable(&mut self, gmin: F, reuse: bool) {
        self.solver
            .solve_from_sums(&self.g, gmin, &self.boundary, &mut self.v, reuse);
    }

    /// `step_runs` with the instruction set `self.isa`. Each instruction
    /// set gets a function of its own, kept out of the substep loop: the
    /// compiler vectorises the device blocks reliably only in a function
    /// this small. The kernels give the same bits at every vector width
    /// (see `crate::lanes`).
    #[inline(always)]
    fn step_runs_on<const NOISE: bool>(&mut self, dt: F, counter: [u32; 3]) -> Moved<F> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` is only ever set to an instruction set the
            // running CPU has (`Isa::detect`, `Trainer::set_isa`).
            Isa::Avx512 => unsafe { self.step_runs_avx512::<NOISE>(dt, counter) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.step_runs_avx2::<NOISE>(dt, counter) },
            _ => self.step_runs_portable::<NOISE>(dt, counter),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn step_runs_avx512<const NOISE: bool>(&mut self, dt: F, counter: [u32; 3]) -> Moved<F> {
        self.step_runs::<NOISE>(dt, counter)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn step_runs_avx2<const NOISE: bool>(&mut self, dt: F, counter: [u32; 3]) -> Moved<F> {
        self.step_runs::<NOISE>(dt, counter)
    }

    #[inline(never)]
    fn step_runs_portable<const NOISE: bool>(&mut self, dt: F, counter: [u32; 3]) -> Moved<F> {
        self.step_runs::<NOISE>(dt, counter)
    }

    /// Run the hot loop with instruction set `isa` instead of the best the
    /// CPU has (to check that every choice gives the same bits). Returns
    /// false, changing nothing, if this CPU lacks `isa`.
    pub fn set_isa(&mut self, isa: Isa) -> bool {
        let ok = isa.available();
        if ok {
            self.isa = isa;
        }
        ok
    }

    /// One pass over the edges with the voltages in `self.v`: the power they
    /// dissipate (watt, with the conductances the voltages were solved
    /// with) and an Euler step of every alive device, whose conductance
    /// change goes straight into the node sums of the next solve. Returns
    /// the power and which resistances changed. `counter` = (era, pulse
    /// id, substep) keys the cycle-to-cycle noise.
    ///
    /// Run by run (see `EdgeRun`), with or without cycle-to-cycle noise.
    #[inline(always)]
    fn step_runs<const NOISE: bool>(&mut self, dt: F, counter: [u32; 3]) -> Moved<F> {
        let d = &self.params.device;
        let step = DeviceStep {
            dt,
            alpha: F::from_f64(d.alpha),
            beta: F::from_f64(d.beta),
            sigma: F::from_f64(d.sigma_c2c),
            rng: &self.rng,
            counter,
        };
        let mut acc = StepSums::default();
        let heads_driven = self.heads_driven;
        let (sums, touches) = self.solver.sums_and_touches();
        for run in &self.runs {
            let (u, heads, edges) = run.span();
            let len = edges.len();
            let mut view = RunView {
                edge_id: &self.edge_id[edges.clone()],
                v_tail: self.v[u],
                volts_tail: self.fixed_volts[u],
                v_head: &self.v[heads.clone()],
                volts_head: &self.fixed_volts[heads.clone()],
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
                view.step_block::<NOISE>(j0, LANES, &step, &mut acc, &mut tail);
            }
            if whole < len {
                view.step_block::<NOISE>(whole, len - whole, &step, &mut acc, &mut tail);
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

    /// Stochastic pruning at the end of `era` (MODEL.md section 7); returns
    /// how many edges it removed.
    pub fn prune(&mut self, era: u32) -> usize {
        let pr = &self.params.pruning;
        if pr.p_prune <= 0.0 {
            return 0;
        }
        let f = F::from_f64(pr.f_prune);
        let mut removed = 0;
        for e in 0..self.r.len() {
            if !self.alive[e] {
                continue;
            }
            if self.r[e] >= prune_threshold(self.ron[e], self.roff[e], f)
                && self
                    .rng
                    .uniform(PURPOSE_PRUNE, [era, 0, 0, self.edge_id[e]])
                    < pr.p_prune
            {
                self.alive[e] = false;
                self.g[e] = F::ZERO;
                removed += 1;
            }
        }
        if removed > 0 {
            self.solver.alive_changed();
            self.conductance_current = false;
        }
        removed
    }
}

/// The era word of the final read's noise draws: no training era has it.
pub const FINAL_READ_ERA: u32 = u32::MAX;

/// The pulse word of read-noise draws, which no pulse has (pulses are
/// `2k + 0|1`), so they never share a counter with cycle-to-cycle noise.
const READ_WORD: u32 = u32::MAX;

/// The factor read noise multiplies output `o`'s current by at the read of
/// pattern `k` in `era` (MODEL.md section 6): `1 + sigma_read z`, `z` a
/// standard normal from the counter hash.
#[inline(always)]
pub fn read_noise<F: Real>(rng: &CounterRng, sigma_read: F, era: u32, k: usize, o: usize) -> F {
    F::ONE + sigma_read * rng.normal::<F>([era, READ_WORD, k as u32, o as u32])
}

/// The resistance (ohm) at and above which a device with bounds `ron`,
/// `roff` may be pruned: `ron + f_prune (roff - ron)` (MODEL.md section 7).
#[inline(always)]
pub fn prune_threshold<F: Real>(ron: F, roff: F, f_prune: F) -> F {
    ron + f_prune * (roff - ron)
}

/// What an Euler step of the devices needs besides their state.
struct DeviceStep<'a, F> {
    dt: F,
    alpha: F,
    beta: F,
    sigma: F,
    rng: &'a CounterRng,
    /// (era, pulse id, substep), the counter of the c2c noise draws.
    counter: [u32; 3],
}

/// What a substep's device step did: the power dissipated (watt), whether
/// any device moved, and whether one that touches a node the solver
/// eliminates did.
struct Moved<F> {
    power: F,
    any: bool,
    touching_eliminated: bool,
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
    /// Step the `n <= LANES` edges from `j0`. Every lane is computed without
    /// branches, so the block becomes vector code; a short block is padded
    /// with pruned edges (`g = 0`), which move nothing and add nothing, and
    /// a pruned edge keeps its state. If no device of the block is above
    /// threshold, nothing but the power is touched.
    #[inline(always)]
    fn step_block<const NOISE: bool>(
        &mut self,
        j0: usize,
        n: usize,
        c: &DeviceStep<'_, F>,
        acc: &mut StepSums<F>,
        tail: &mut TailSums<F>,
    ) {
        let at = j0..j0 + n;
        let load = |x: &[F]| {
            if n == LANES {
                lanes::block(&x[j0..])
            } else {
                lanes::load(&x[at.clone()])
            }
        };
        let (v_head, volts_head) = (load(self.v_head), load(self.volts_head));
        let (polarity, vt) = (load(self.polarity), load(self.vt));
        let g_old = load(self.g);
        let mut rate = [F::ZERO; LANES];
        for l in 0..LANES {
            let dv = self.v_tail - v_head[l];
            acc.power[l] += g_old[l] * dv * dv;
            rate[l] = device::resistance_rate(polarity[l] * dv, vt[l], c.alpha, c.beta);
        }
        if rate.iter().all(|&rate| rate == F::ZERO) {
            // Nothing moves: every lane below would leave its state and
            // sums exactly as they are.
            return;
        }
        let (ron, roff) = (load(self.ron), load(self.roff));
        let r_old = load(self.r);
        let touches = load(self.touches_eliminated);
        let (conductance_head, inject_head) = (load(self.conductance_head), load(self.inject_head));
        let mut r_new = r_old;
        let mut g_new = g_old;
        let mut dg = [F::ZERO; LANES];
        for l in 0..LANES {
            let rate = rate[l];
            let noise = if NOISE && rate != F::ZERO {
                let e = self.edge_id[j0 + l];
                let z = c
                    .rng
                    .normal::<F>([c.counter[0], c.counter[1], c.counter[2], e]);
                device::c2c_factor(c.sigma, z)
            } else {
                F::ONE
            };
            let alive = g_old[l] > F::ZERO;
            let stepped = device::euler_step(r_old[l], rate, c.dt, noise, ron[l], roff[l]);
            let g_stepped = F::ONE / stepped;
            let moves = alive & (stepped != r_old[l]);
            acc.moved[l] = if moves { F::ONE } else { acc.moved[l] };
            acc.moved_touching[l] = if moves & (touches[l] != F::ZERO) {
                F::ONE
            } else {
                acc.moved_touching[l]
            };
            r_new[l] = if alive { stepped } else { r_old[l] };
            g_new[l] = if alive { g_stepped } else { F::ZERO };
            dg[l] = g_new[l] - g_old[l];
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
}

/// A step of the era loop, as `run_eras` reports it to its observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Read,
    Pulse(Pulse),
    Prune,
}

/// What the era loop did.
#[derive(Clone, Debug, PartialEq)]
pub struct Eras {
    pub trace: Vec<EraRead>,
    pub converged_era: Option<u32>,
    pub eras_run: u32,
    pub pruned_edges: usize,
}

/// The era loop of learning from mistakes: at most `max_eras` eras, stopping
/// after the first era without a mistake, unpruned; an era with a mistake
/// ends with a pruning. `observe` sees the trainer after
/// every read, pulse and pruning, so a caller can stop training part-way
/// (SPICE export of the state after E eras) or replay it step by step.
pub fn run_eras<F: Real>(
    t: &mut Trainer<'_, F>,
    max_eras: usize,
    mut observe: impl FnMut(Step, &Trainer<'_, F>),
) -> Eras {
    let inst = t.inst;
    let task = &inst.task;
    let p = task.n_patterns();
    let mut eras = Eras {
        trace: Vec::with_capacity(p * max_eras),
        converged_era: None,
        eras_run: 0,
        pruned_edges: 0,
    };
    for era in 0..max_eras as u32 {
        let mut mistakes = 0;
        for k in 0..p {
            let (winner, read_power) = t.read(era, k);
            observe(Step::Read, t);
            let correct = winner == task.target[k];
            eras.trace.push(EraRead {
                era,
                pattern: k as u32,
                correct,
                read_power: read_power.to_f64(),
            });
            if !correct {
                mistakes += 1;
                t.punish(era, k, winner);
                observe(Step::Pulse(Pulse::Punish), t);
                t.normalize(era, k);
                observe(Step::Pulse(Pulse::Normalize), t);
            }
        }
        eras.eras_run = era + 1;
        if mistakes == 0 {
            // Converged: it stops as it is, unpruned (MODEL.md section 6), so
            // the state that read every pattern correctly is the final one.
            eras.converged_era = Some(era);
            break;
        }
        eras.pruned_edges += t.prune(era);
        observe(Step::Prune, t);
    }
    eras
}

/// Solver layouts kept from one instance to the next. A layout depends only
/// on the wiring and on each slot's boundary (set by the task's active
/// inputs), so a thread that trains many instances of one network (every
/// layered network with density 1 and no skip edges is the same network)
/// builds them once.
pub struct Layouts<F> {
    /// Wiring and task inputs the solver's layouts were built for.
    key: Vec<u32>,
    solver: Option<Solver<F>>,
    /// The solver path of every solver made here.
    choice: SolverChoice,
}

impl<F> Default for Layouts<F> {
    fn default() -> Self {
        Layouts::with_choice(SolverChoice::Auto)
    }
}

impl<F> Layouts<F> {
    /// Layouts of solvers that take the path `choice` names.
    pub fn with_choice(choice: SolverChoice) -> Self {
        Layouts {
            key: Vec::new(),
            solver: None,
            choice,
        }
    }
}

impl<F: Real> Layouts<F> {
    /// A solver for `inst`: the kept one if it was built for the same
    /// wiring and task inputs, a new one otherwise.
    fn take(&mut self, inst: &Instance) -> Solver<F> {
        let net = &inst.network;
        let key: Vec<u32> = [net.n_in, net.n_hidden, net.n_out]
            .iter()
            .map(|&x| x as u32)
            .chain(net.tail.iter().copied())
            .chain(net.head.iter().copied())
            .chain(inst.task.active.iter().flatten().map(|&on| on as u32))
            .collect();
        match self.solver.take() {
            Some(solver) if key == self.key => solver,
            _ => {
                self.key = key;
                Solver::with_choice(net.n_nodes(), self.choice)
            }
        }
    }
}

/// Train one instance with learning from mistakes and read it out.
pub fn train<F: Real>(inst: &Instance, params: &Params) -> Outcome {
    train_reusing(inst, params, &mut Layouts::<F>::default())
}

/// `train`, keeping the solver's layouts in `layouts` for the next instance.
/// The outcome is the same as `train`'s.
pub fn train_reusing<F: Real>(
    inst: &Instance,
    params: &Params,
    layouts: &mut Layouts<F>,
) -> Outcome {
    let p = inst.task.n_patterns();
    let mut t = Trainer::<F>::with_solver(inst, params, layouts.take(inst));
    let eras = run_eras(&mut t, params.training.max_eras, |_, _| ());
    let mut recalled = 0;
    let mut final_currents = Vec::with_capacity(p);
    for k in 0..p {
        let (winner, _) = t.read(FINAL_READ_ERA, k);
        recalled += (winner == inst.task.target[k]) as usize;
        final_currents.push(t.currents().iter().map(|c| c.to_f64()).collect());
    }
    let outcome = Outcome {
        recalled,
        converged_era: eras.converged_era,
        eras_run: eras.eras_run,
        energy_write: t.energy_write.to_f64(),
        pruned_edges: eras.pruned_edges,
        final_currents,
        r_final: t.r().iter().map(|r| r.to_f64()).collect(),
        alive_final: t.alive(),
        updates: t.updates,
        trace: eras.trace,
    };
    layouts.solver = Some(t.solver);
    outcome
}
