//! Learning from mistakes (MODEL.md sections 4, 6, 7): the era loop of one
//! instance, as the CPU backend runs it. `shaders/train_group.wgsl` runs the
//! same steps, in the same order, for a chunk of instances.
//!
//! Generic over the float type: f64 is the reference; f32 mirrors the
//! shader's arithmetic so the two backends can be compared closely.

use crate::instance::Instance;
use crate::lanes::Isa;
use crate::model::circuit::{self, Boundary, Solver, SolverChoice};
use crate::model::device::{DeviceLaw, Law};
use crate::model::network::{Adjacency, Network};
use crate::model::step::{Edges, Pass, Segment};
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
    /// Its devices, in `net`'s edge order.
    edges: Edges<F>,
    alive: Vec<bool>,
    v: Vec<F>,
    /// Whether the solver's node conductances are those of `g`: the device
    /// step keeps them so, pruning and `set_state` do not.
    conductance_current: bool,
    /// The device law.
    law: Law<F>,
    boundary: Boundary<F>,
    /// The boundary's voltages at fixed nodes, 0 at free ones.
    fixed_volts: Vec<F>,
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
        let edges = Edges {
            g: r.iter().map(|&r| F::ONE / r).collect(),
            r,
            polarity: net
                .polarity
                .iter()
                .map(|&s| F::from_f64(s as f64))
                .collect(),
            ron: to_f(&dev.ron),
            roff: to_f(&dev.roff),
            vt: edge_id
                .iter()
                .map(|&e| F::from_f64(dev.kernel_threshold(e as usize)))
                .collect(),
            segments: Segment::of(&net.runs()),
            tail: net.tail.clone(),
            head: net.head.clone(),
            nodes: n,
            edge_id,
        };
        Trainer {
            inst,
            params,
            rng: CounterRng::new(inst.seed),
            adj: Adjacency::new(&net),
            edges,
            alive: vec![true; net.n_edges()],
            v: vec![F::ZERO; n],
            conductance_current: false,
            law: Law::new(&params.device),
            boundary: Boundary::floating(n),
            fixed_volts: vec![F::ZERO; n],
            heads_driven: false,
            isa: Isa::detect(),
            solver,
            currents: vec![F::ZERO; net.n_out],
            energy_write: F::ZERO,
            updates: 0,
            net,
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
        self.solve_fresh();
        let net = &self.net;
        let sigma_read = F::from_f64(self.params.training.sigma_read);
        for o in 0..net.n_out {
            self.currents[o] =
                circuit::node_current(&self.adj, &self.edges.g, &self.v, net.output_node(o));
            if sigma_read != F::ZERO {
                self.currents[o] *= read_noise(&self.rng, sigma_read, era, k, o);
            }
        }
        (phase::winner(&self.currents), self.edges.power(&self.v))
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
        for (&e, &x) in self.edges.edge_id.iter().zip(x) {
            out[e as usize] = x;
        }
        out
    }

    /// Resistance of every edge (ohm; a pruned edge keeps its last value),
    /// in the instance's edge order.
    pub fn r(&self) -> Vec<F> {
        self.in_instance_order(&self.edges.r)
    }

    /// Conductance of every edge (siemens, 0 for a pruned edge), in the
    /// instance's edge order.
    pub fn g(&self) -> Vec<F> {
        self.in_instance_order(&self.edges.g)
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
        for (s, &e) in self.edges.edge_id.iter().enumerate() {
            let e = e as usize;
            self.edges.r[s] = r[e];
            self.alive[s] = alive[e];
            self.edges.g[s] = if alive[e] { F::ONE / r[e] } else { F::ZERO };
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
        self.pulse_cached(era, k, Pulse::Punish);
    }

    pub fn normalize(&mut self, era: u32, k: usize) {
        let v_norm = F::from_f64(self.params.training.v_norm);
        phase::normalize(&self.net, v_norm, &mut self.boundary);
        self.pulse_cached(era, k, Pulse::Normalize);
    }

    /// Solve the read under the current boundary.
    fn solve_fresh(&mut self) {
        let gmin = F::from_f64(self.params.circuit.gmin);
        self.solver
            .prepare_cached(&self.adj, &self.alive, &self.boundary);
        self.refresh_sums();
        self.solver.solve_from_sums_on(
            self.isa,
            &self.edges.g,
            gmin,
            &self.boundary,
            &mut self.v,
            false,
        );
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
            sums.refill_inject(&self.adj, &self.edges.g, &self.boundary);
        } else {
            sums.fill(&self.net, &self.adj, &self.edges.g, &self.boundary);
            self.conductance_current = true;
        }
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
        self.solver.prepare(&self.adj, &self.alive, &self.boundary);
        self.substeps_of(era, k, which);
    }

    /// `pulse`, with the layout of the boundary kept by the solver for the
    /// next pulse under the same boundary.
    fn pulse_cached(&mut self, era: u32, k: usize, which: Pulse) {
        self.solver
            .prepare_cached(&self.adj, &self.alive, &self.boundary);
        self.substeps_of(era, k, which);
    }

    /// The substeps of a pulse whose layout is prepared.
    fn substeps_of(&mut self, era: u32, k: usize, which: Pulse) {
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
        let noise = self.params.device.sigma_c2c > 0.0;
        match (self.law, noise) {
            (Law::PershinDiVentra(l), true) => {
                self.substeps::<true, _>(l, era, pulse_id, n_sub, dt, gmin)
            }
            (Law::PershinDiVentra(l), false) => {
                self.substeps::<false, _>(l, era, pulse_id, n_sub, dt, gmin)
            }
            (Law::Vteam(l), true) => self.substeps::<true, _>(l, era, pulse_id, n_sub, dt, gmin),
            (Law::Vteam(l), false) => self.substeps::<false, _>(l, era, pulse_id, n_sub, dt, gmin),
        }
    }

    /// The `n_sub` Euler substeps of a pulse: solve, accumulate `P dt`,
    /// move every alive device (see `pulse`). The solve and the device
    /// step each run as a function of their own, compiled for the
    /// instruction set `self.isa`.
    fn substeps<const NOISE: bool, L: DeviceLaw<F>>(
        &mut self,
        law: L,
        era: u32,
        pulse_id: u32,
        n_sub: usize,
        dt: F,
        gmin: F,
    ) {
        // Whether the eliminated nodes' Schur term of the last solve still
        // holds: none of their edges moved since.
        let mut reuse = false;
        let sigma = F::from_f64(self.params.device.sigma_c2c);
        for sub in 0..n_sub {
            self.solver.solve_from_sums_on(
                self.isa,
                &self.edges.g,
                gmin,
                &self.boundary,
                &mut self.v,
                reuse,
            );
            let pass = Pass {
                v: &self.v,
                fixed_volts: &self.fixed_volts,
                heads_driven: self.heads_driven,
                dt,
                sigma,
                rng: &self.rng,
                counter: [era, pulse_id, sub as u32],
            };
            let (sums, touches) = self.solver.sums_and_touches();
            let moved = self
                .edges
                .step::<NOISE, L>(self.isa, law, &pass, sums, touches);
            if !moved.any {
                self.energy_write += moved.power * dt * F::from_f64((n_sub - sub) as f64);
                return;
            }
            self.energy_write += moved.power * dt;
            reuse = !moved.touching_eliminated;
        }
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

    /// Stochastic pruning at the end of `era` (MODEL.md section 7); returns
    /// how many edges it removed.
    pub fn prune(&mut self, era: u32) -> usize {
        let pr = &self.params.pruning;
        if pr.p_prune <= 0.0 {
            return 0;
        }
        let f = F::from_f64(pr.f_prune);
        let mut removed = 0;
        for e in 0..self.edges.r.len() {
            if !self.alive[e] {
                continue;
            }
            if self.edges.r[e] >= prune_threshold(self.edges.ron[e], self.edges.roff[e], f)
                && self
                    .rng
                    .uniform(PURPOSE_PRUNE, [era, 0, 0, self.edges.edge_id[e]])
                    < pr.p_prune
            {
                self.alive[e] = false;
                self.edges.g[e] = F::ZERO;
                removed += 1;
            }
        }
        if removed > 0 {
            self.solver.edges_pruned();
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
/// on the wiring and on the nodes a boundary fixes (the solver keys its
/// layouts by them), so a thread that trains many instances of one network
/// (every layered network with density 1 and no skip edges is the same
/// network) builds them once. The kept solver is dropped when the wiring or
/// the task's active inputs change, which bounds how many layouts it holds.
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
