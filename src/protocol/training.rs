//! Learning from mistakes (MODEL.md sections 4, 6, 7): the era loop of one
//! instance, as the CPU backend runs it. `shaders/train.wgsl` runs the same
//! steps, in the same order, for a chunk of instances.
//!
//! Generic over the float type: f64 is the reference; f32 mirrors the
//! shader's arithmetic so the two backends can be compared closely.

use crate::instance::Instance;
use crate::model::circuit::{self, Boundary, Solver};
use crate::model::device;
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
pub struct Trainer<'a, F: Real> {
    inst: &'a Instance,
    params: &'a Params,
    rng: CounterRng,
    pub r: Vec<F>,
    pub g: Vec<F>,
    pub alive: Vec<bool>,
    pub v: Vec<F>,
    /// `s_e` as a number, +1 or -1.
    polarity: Vec<F>,
    ron: Vec<F>,
    roff: Vec<F>,
    vt: Vec<F>,
    boundary: Boundary<F>,
    solver: Solver<F>,
    currents: Vec<F>,
    pub energy_write: F,
    pub updates: u64,
}

impl<'a, F: Real> Trainer<'a, F> {
    pub fn new(inst: &'a Instance, params: &'a Params) -> Self {
        let n = inst.network.n_nodes();
        let dev = &inst.devices;
        let to_f = |xs: &[f64]| xs.iter().map(|&x| F::from_f64(x)).collect::<Vec<F>>();
        let r = to_f(&dev.r0);
        Trainer {
            inst,
            params,
            rng: CounterRng::new(inst.seed),
            g: r.iter().map(|&r| F::ONE / r).collect(),
            r,
            alive: vec![true; inst.network.n_edges()],
            v: vec![F::ZERO; n],
            polarity: inst
                .network
                .polarity
                .iter()
                .map(|&s| F::from_f64(s as f64))
                .collect(),
            ron: to_f(&dev.ron),
            roff: to_f(&dev.roff),
            vt: to_f(&dev.vt),
            boundary: Boundary::floating(n),
            solver: Solver::new(n),
            currents: vec![F::ZERO; inst.network.n_out],
            energy_write: F::ZERO,
            updates: 0,
        }
    }

    /// Read pattern `k`: solve, measure every output's current, and return
    /// the winner and the read power (watt). Changes no state.
    pub fn read(&mut self, k: usize) -> (usize, F) {
        let net = &self.inst.network;
        let v_read = F::from_f64(self.params.training.v_read);
        phase::read(net, &self.inst.task.active[k], v_read, &mut self.boundary);
        self.solve_fresh(k);
        for o in 0..net.n_out {
            self.currents[o] =
                circuit::node_current(&self.inst.adjacency, &self.g, &self.v, net.output_node(o));
        }
        (
            phase::winner(&self.currents),
            circuit::power(net, &self.g, &self.v),
        )
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

    /// Punish pattern `k` whose read was won by `winner`.
    pub fn punish(&mut self, era: u32, k: usize, winner: usize) {
        let net = &self.inst.network;
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
        phase::normalize(&self.inst.network, v_norm, &mut self.boundary);
        let slot = self.slot_normalize();
        self.pulse_in_slot(era, k, Pulse::Normalize, Some(slot));
    }

    /// Solve the read of pattern `k` (boundary slot `k`).
    fn solve_fresh(&mut self, k: usize) {
        let gmin = F::from_f64(self.params.circuit.gmin);
        let inst = self.inst;
        self.solver
            .prepare_cached(k, &inst.adjacency, &self.alive, &self.boundary);
        self.solver.solve(
            &inst.network,
            &inst.adjacency,
            &self.g,
            gmin,
            &self.boundary,
            &mut self.v,
        );
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
        let inst = self.inst;
        match slot {
            Some(slot) => {
                self.solver
                    .prepare_cached(slot, &inst.adjacency, &self.alive, &self.boundary)
            }
            None => self
                .solver
                .prepare(&inst.adjacency, &self.alive, &self.boundary),
        }
        let t = &self.params.training;
        let n_sub = t.n_sub;
        let dt = F::from_f64(t.tau / n_sub as f64);
        let gmin = F::from_f64(self.params.circuit.gmin);
        self.solver
            .sums
            .fill(&inst.network, &self.g, &self.boundary);
        let n_alive = self.alive.iter().filter(|&&a| a).count() as u64;
        self.updates += n_alive * n_sub as u64;
        for sub in 0..n_sub {
            self.solver.solve_from_sums(
                &inst.adjacency,
                &self.g,
                gmin,
                &self.boundary,
                &mut self.v,
            );
            let (p, moved) =
                self.step_devices(dt, [era, (2 * k + which as usize) as u32, sub as u32]);
            if !moved {
                self.energy_write += p * dt * F::from_f64((n_sub - sub) as f64);
                return;
            }
            self.energy_write += p * dt;
        }
    }

    /// One pass over the edges with the voltages in `self.v`: the power they
    /// dissipate (watt, with the conductances the voltages were solved
    /// with) and an Euler step of every alive device, whose conductance
    /// change goes straight into the node sums of the next solve. Returns
    /// the power and whether any resistance changed. `counter` = (era, pulse id, substep) keys the
    /// cycle-to-cycle noise.
    fn step_devices(&mut self, dt: F, counter: [u32; 3]) -> (F, bool) {
        let d = &self.params.device;
        let (alpha, beta, sigma) = (
            F::from_f64(d.alpha),
            F::from_f64(d.beta),
            F::from_f64(d.sigma_c2c),
        );
        let net = &self.inst.network;
        let mut power = F::ZERO;
        let mut moved = false;
        for e in 0..net.n_edges() {
            if !self.alive[e] {
                continue;
            }
            let (u, w) = (net.tail[e] as usize, net.head[e] as usize);
            let dv = self.v[u] - self.v[w];
            power += self.g[e] * dv * dv;
            let v_e = self.polarity[e] * dv;
            let rate = device::resistance_rate(v_e, self.vt[e], alpha, beta);
            if rate != F::ZERO {
                let noise = if d.sigma_c2c > 0.0 {
                    let z = self
                        .rng
                        .normal::<F>([counter[0], counter[1], counter[2], e as u32]);
                    device::c2c_factor(sigma, z)
                } else {
                    F::ONE
                };
                let r = device::euler_step(self.r[e], rate, dt, noise, self.ron[e], self.roff[e]);
                if r != self.r[e] {
                    let g = F::ONE / r;
                    self.solver
                        .sums
                        .add_edge(u, w, g - self.g[e], &self.boundary);
                    self.r[e] = r;
                    self.g[e] = g;
                    moved = true;
                }
            }
        }
        (power, moved)
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
            let threshold = self.ron[e] + f * (self.roff[e] - self.ron[e]);
            if self.r[e] >= threshold
                && self.rng.uniform(PURPOSE_PRUNE, [era, 0, 0, e as u32]) < pr.p_prune
            {
                self.alive[e] = false;
                self.g[e] = F::ZERO;
                removed += 1;
            }
        }
        if removed > 0 {
            self.solver.invalidate_cache();
        }
        removed
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
/// after the first era without a mistake. `observe` sees the trainer after
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
            let (winner, read_power) = t.read(k);
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
        eras.pruned_edges += t.prune(era);
        observe(Step::Prune, t);
        eras.eras_run = era + 1;
        if mistakes == 0 {
            eras.converged_era = Some(era);
            break;
        }
    }
    eras
}

/// Train one instance with learning from mistakes and read it out.
pub fn train<F: Real>(inst: &Instance, params: &Params) -> Outcome {
    let p = inst.task.n_patterns();
    let mut t = Trainer::<F>::new(inst, params);
    let eras = run_eras(&mut t, params.training.max_eras, |_, _| ());
    let mut recalled = 0;
    let mut final_currents = Vec::with_capacity(p);
    for k in 0..p {
        let (winner, _) = t.read(k);
        recalled += (winner == inst.task.target[k]) as usize;
        final_currents.push(t.currents().iter().map(|c| c.to_f64()).collect());
    }
    Outcome {
        recalled,
        converged_era: eras.converged_era,
        eras_run: eras.eras_run,
        energy_write: t.energy_write.to_f64(),
        pruned_edges: eras.pruned_edges,
        final_currents,
        r_final: t.r.iter().map(|r| r.to_f64()).collect(),
        alive_final: t.alive.clone(),
        updates: t.updates,
        trace: eras.trace,
    }
}
