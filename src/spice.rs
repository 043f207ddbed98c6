//! SPICE export: one instance, in one state, as a self-contained ngspice
//! netlist that replays a schedule of protocol phases; running ngspice on it
//! and reading back what it measured; memsweep's own integration of the same
//! schedule in the same form, so the two can be compared; and the timing
//! line of `memsweep bench`.
//!
//! Not here: the physics. The netlist restates MODEL.md sections 2-4 in
//! SPICE's terms; `model` and `protocol` remain the definition.
//!
//! How the netlist reproduces MODEL.md:
//! - each alive memristor is a subcircuit instance with its own `ron`,
//!   `roff`, `vt`, `alpha`, `beta` and its current `R` as the initial
//!   condition (`SUBCIRCUIT`): a behavioural current source `I = V / R` and
//!   a 1 F state capacitor whose voltage is `R` in ohm. Its plus terminal
//!   sits at the edge's head (at the tail when the polarity is -1), so the
//!   subcircuit's `V(plus) - V(minus)` is `-v_e`, as in ngspice's
//!   Pershin–Di Ventra example. Pruned edges are left out.
//! - every node has a `1/gmin` resistor to ground.
//! - a node fixed in some phase reaches its voltage source through a switch
//!   that is open (1e30 ohm, below rounding next to `gmin`) when the node
//!   floats, so one transient run holds every phase and a floating node is
//!   connected only through the network and its `gmin` resistor. Closed, the
//!   switch is 1e-5 ohm: voltages and currents agree with memsweep's to
//!   about 1e-8 relative.
//! - a global enable node `en` multiplies every device's `dR/dt`: 1 during a
//!   pulse, 0 otherwise. Reads and the switching between phases therefore
//!   leave the state exactly as it was. The enable rises and falls in
//!   `tau * 1e-3`, and its area is exactly `tau`.
//! - cycle-to-cycle noise (`sigma_c2c`) is not modelled: SPICE integrates
//!   the noiseless state equation.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::bench::BenchConfig;
use crate::instance::Instance;
use crate::model::circuit::{node_current, Boundary, Solver};
use crate::model::device::Vteam;
use crate::params::{DeviceModel, DeviceParams, ModelKind, Params, ROfX, Window};
use crate::protocol::phase;
use crate::protocol::training::{run_eras, train, Pulse, Step, Trainer, FINAL_READ_ERA};
use crate::sweep::{instance_seed, Spec};

/// Switch resistances, ohm: closed and open. Closed, the drop across the
/// switch (its resistance times the node's conductance, near 1e-8 here)
/// balances the rounding of SPICE's branch current (about 1e-16 V over the
/// switch's resistance); open, it is below rounding next to `gmin`.
const SWITCH_ON_OHM: f64 = 1e-5;
const SWITCH_OFF_OHM: f64 = 1e30;
/// Gap around each phase's pulse, and the rise time of every ramp, as
/// fractions of `tau`.
const GAP_TAU: f64 = 0.5;
const RAMP_TAU: f64 = 1e-3;

/// The threshold memristor of MODEL.md section 2 as an ngspice subcircuit.
const SUBCIRCUIT: &[&str] = &[
    "* Memristor (MODEL.md section 2; ngspice's Pershin-Di Ventra model). The state V(x)",
    "* is R in ohm on a 1 F capacitor; V(r) is R clipped to [ron, roff]. With",
    "* y = V(plus) - V(minus), dR/dt = beta (y - vt) above vt, beta (y + vt) below -vt and",
    "* alpha y in between, never outwards past ron or roff, times V(en): 1 during a pulse,",
    "* 0 otherwise. Plus sits at the edge's head (at its tail for polarity -1), so y = -v_e",
    "* and v_e above vt lowers R.",
    ".subckt memristor plus minus en params: ron=1e3 roff=1e4 vt=1 alpha=0 beta=1.8e9 r0=3.1623e3",
    ".func rate(y) {y > vt ? beta * (y - vt) : y < -vt ? beta * (y + vt) : alpha * y}",
    "Bm plus minus I = V(plus,minus) / V(r)",
    "Br r 0 V = max(min(V(x), roff), ron)",
    "Bx 0 x I = V(en) * rate(V(plus,minus)) * (rate(V(plus,minus)) > 0 ? V(x) < roff : V(x) > ron)",
    "Cx x 0 1 IC={r0}",
    ".ends memristor",
];

/// The VTEAM device of MODEL.md section 2b as an ngspice subcircuit, its
/// window and `R(x)` written for the sweep point's choices.
fn vteam_subcircuit(d: &DeviceParams) -> Vec<String> {
    let p2 = num(2.0 * d.p_window);
    let (f_on, f_off) = match d.window {
        Window::None => ("1".to_string(), "1".to_string()),
        Window::Joglekar => {
            let f = format!("1 - pow(abs(2 * x - 1), {p2})");
            (f.clone(), f)
        }
        Window::Biolek => (format!("1 - pow(x, {p2})"), format!("1 - pow(1 - x, {p2})")),
    };
    let r_of_x = match d.r_of_x {
        ROfX::Linear => "ron + (roff - ron) * x",
        ROfX::Exponential => "ron * exp(x * ln(roff / ron))",
    };
    let mut lines: Vec<String> = [
        "* Memristor: the VTEAM device (MODEL.md section 2b). The state V(x) is x on a 1 F",
        "* capacitor, V(xc) is x clipped to [0, 1] and V(r) = R(x) in ohm. With",
        "* y = V(plus) - V(minus) = -v_e: dx/dt = -kon (-y/von - 1)^aon fon(x) below -von,",
        "* +koff (y/voff - 1)^aoff foff(x) above voff, 0 in between, never outwards past",
        "* 0 or 1, times V(en). A stuck device has kon = koff = 0.",
    ]
    .iter()
    .map(|l| l.to_string())
    .collect();
    lines.push(
        ".subckt vteam plus minus en params: ron=1e3 roff=1e4 von=1 voff=1 kon=2e5 koff=2e5 x0=0.5"
            .to_string(),
    );
    lines.push(format!(".func fon(x) {{{f_on}}}"));
    lines.push(format!(".func foff(x) {{{f_off}}}"));
    lines.push(format!(".func rofx(x) {{{r_of_x}}}"));
    lines.push(format!(
        ".func rate(y, x) {{y < -von ? -kon * pow(max(-y / von - 1, 0), {}) * fon(x) : \
         y > voff ? koff * pow(max(y / voff - 1, 0), {}) * foff(x) : 0}}",
        num(d.alpha_on),
        num(d.alpha_off)
    ));
    lines.extend(
        [
            "Bm plus minus I = V(plus,minus) / V(r)",
            "Bc xc 0 V = max(min(V(x), 1), 0)",
            "Br r 0 V = rofx(V(xc))",
            "Bx 0 x I = V(en) * rate(V(plus,minus), V(xc)) * (rate(V(plus,minus), V(xc)) > 0 ? V(x) < 1 : V(x) > 0)",
            "Cx x 0 1 IC={x0}",
            ".ends vteam",
        ]
        .iter()
        .map(|l| l.to_string()),
    );
    lines
}

/// One phase of a schedule: a boundary held either for a read (no state
/// change) or for one pulse of duration `tau`.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// `read`, `punish`, `normalize`, or the caller's own name; used in
    /// comments only.
    pub name: String,
    pub boundary: Boundary<f64>,
    pub pulse: bool,
}

/// The device state a netlist starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Resistance of each edge, ohm.
    pub r: Vec<f64>,
    pub alive: Vec<bool>,
}

impl State {
    pub fn of(t: &Trainer<'_, f64>) -> State {
        State {
            r: t.r(),
            alive: t.alive(),
        }
    }
}

/// An instance in one state with a schedule of phases: everything a
/// netlist holds.
#[derive(Clone, Debug)]
pub struct Export {
    pub instance: Instance,
    pub params: Params,
    pub state: State,
    pub phases: Vec<Phase>,
    /// Comment lines saying which instance and which state this is.
    pub about: Vec<String>,
}

/// Per phase of a schedule: node voltages and the currents into fixed nodes
/// before the phase's pulse, and resistances after it. Both ngspice's
/// output and memsweep's own integration come in this form.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// `[phase][node]`, volt.
    pub volts: Vec<Vec<f64>>,
    /// `[phase][node]`, ampere: the current from the network into a fixed
    /// node (MODEL.md's `I_o` at a grounded output); NaN at a free node.
    pub currents: Vec<Vec<f64>>,
    /// `[phase][edge]`, ohm, after the phase's pulse; NaN for a read and for
    /// a pruned edge.
    pub r_after: Vec<Vec<f64>>,
}

/// Where a phase sits in the transient, in seconds.
struct Slot {
    /// The boundary switches here.
    start: f64,
    /// Voltages and currents are averaged over this window, before any
    /// pulse; nothing moves in it.
    before: (f64, f64),
    /// The pulse's enable starts rising at `.0`; resistances are averaged
    /// over the window `.1`.
    pulse: Option<(f64, (f64, f64))>,
}

impl Export {
    /// Instance `replica` of grid point `point` of `spec`, in its initial
    /// state or, with `era`, after that many eras of training (fewer if it
    /// converged or reached `max_eras` first), with the default schedule:
    /// one read, one punish and one normalize of pattern 0.
    pub fn from_spec(
        spec: &Spec,
        point: usize,
        replica: usize,
        era: Option<usize>,
    ) -> Result<Export, String> {
        let points = spec.points();
        let Some(grid_point) = points.get(point) else {
            return Err(format!(
                "--point: sweep '{}' has {} grid points (0..={}), got {point}",
                spec.name,
                points.len(),
                points.len() - 1
            ));
        };
        if replica >= spec.replicas {
            return Err(format!(
                "--replica: sweep '{}' has {} replicas per point (0..={}), got {replica}",
                spec.name,
                spec.replicas,
                spec.replicas - 1
            ));
        }
        let params = grid_point.params.clone();
        if params.training.model != ModelKind::Circuit {
            return Err(format!(
                "--point: grid point {point} uses model = \"{}\", which has no circuit to export",
                params.training.model.name()
            ));
        }
        let seed = instance_seed(spec.seed, point, replica);
        let instance = Instance::build(&params, point, replica, seed);
        let mut about = vec![format!(
            "sweep '{}' ({}), grid point {point}, replica {replica}, instance seed {seed}",
            spec.name, spec.file
        )];
        about.extend(
            grid_point
                .varied
                .iter()
                .map(|(key, value)| format!("  {key} = {value}")),
        );
        let mut t = Trainer::<f64>::new(&instance, &params);
        about.push(match era {
            None => "state: initial (before training)".to_string(),
            Some(e) => {
                let eras = run_eras(&mut t, e.min(params.training.max_eras), |_, _| ());
                let stop = match eras.converged_era {
                    Some(c) => format!(", converged at era {c}"),
                    None => String::new(),
                };
                format!(
                    "state: after {e} eras of training (ran {}{stop}; {} edges pruned)",
                    eras.eras_run, eras.pruned_edges
                )
            }
        });
        let state = State::of(&t);
        let phases = default_phases(&mut t, &instance, &params, 0);
        Ok(Export {
            instance,
            params,
            state,
            phases,
            about,
        })
    }

    /// The ngspice netlist; `max_step_s` bounds SPICE's time step (seconds).
    pub fn netlist(&self, max_step_s: f64) -> String {
        let slots = timeline(&self.phases, self.params.training.tau);
        let mut out = String::new();
        self.write_header(&mut out, &slots);
        self.write_circuit(&mut out, &slots);
        self.write_control(&mut out, &slots, max_step_s);
        out
    }

    /// Comments: which instance, which state, which phases, how to run it.
    fn write_header(&self, out: &mut String, slots: &[Slot]) {
        let net = &self.instance.network;
        let p = &self.params;
        let n = net.n_nodes();
        let _ = writeln!(
            out,
            "* memsweep export-spice: a memristive network for ngspice"
        );
        for line in &self.about {
            let _ = writeln!(out, "* {line}");
        }
        let alive = self.state.alive.iter().filter(|&&a| a).count();
        let _ = writeln!(
            out,
            "* {n} nodes, {alive} memristors ({} pruned, left out)",
            net.n_edges() - alive
        );
        let hidden = if net.n_hidden == 0 {
            String::new()
        } else {
            format!(", hidden n{}..n{}", net.n_in, net.n_in + net.n_hidden - 1)
        };
        let _ = writeln!(
            out,
            "* nodes: inputs n0..n{}{hidden}, outputs n{}..n{}; 0 is ground",
            net.n_in - 1,
            net.output_node(0),
            n - 1
        );
        if p.device.sigma_c2c > 0.0 {
            let _ = writeln!(
                out,
                "* sigma_c2c = {}: cycle-to-cycle noise is not modelled here",
                short(p.device.sigma_c2c)
            );
        }
        let _ = writeln!(out, "*");
        let _ = writeln!(
            out,
            "* Run: ngspice -b FILE ({} s of transient). It prints, as `name = value`:",
            short(self.duration())
        );
        out.push_str(concat!(
            "*   pK_vI  voltage of node nI in phase K, before its pulse (V)\n",
            "*   pK_iI  current from the network into fixed node nI, through its source (A);\n",
            "*          at a grounded output this is MODEL.md's output current I_o\n",
            "*   pK_rE  resistance of memristor XE after the pulse of phase K (ohm)\n",
        ));
        let _ = writeln!(out, "* Phases (tau = {} s):", short(p.training.tau));
        for (k, (ph, slot)) in self.phases.iter().zip(slots).enumerate() {
            let timing = match slot.pulse {
                Some((on, _)) => format!(
                    "boundary from t = {} s, pulse from {} s for tau",
                    short(slot.start),
                    short(on)
                ),
                None => format!("boundary from t = {} s, state held", short(slot.start)),
            };
            let _ = writeln!(out, "*   {k} {}: {timing}", ph.name);
            let _ = writeln!(out, "*     {}", describe_boundary(&ph.boundary));
        }
        let _ = writeln!(out, "*");
    }

    /// The memristors, the gmin leaks, the switched sources of the fixed
    /// nodes and the enable.
    fn write_circuit(&self, out: &mut String, slots: &[Slot]) {
        let inst = &self.instance;
        let (net, dev, p) = (&inst.network, &inst.devices, &self.params);
        let n = net.n_nodes();
        let tau = p.training.tau;
        let ramp = tau * RAMP_TAU;
        let vteam = p.device.model == DeviceModel::Vteam;
        if vteam {
            for line in vteam_subcircuit(&p.device) {
                let _ = writeln!(out, "{line}");
            }
        } else {
            for line in SUBCIRCUIT {
                let _ = writeln!(out, "{line}");
            }
        }
        let law = Vteam::<f64>::new(&p.device);
        let _ = writeln!(out, "*");
        let _ = writeln!(
            out,
            "* X<e> is edge e (tail -> head in MODEL.md's numbering)."
        );
        for e in 0..net.n_edges() {
            let (tail, head) = (net.tail[e], net.head[e]);
            if !self.state.alive[e] {
                let _ = writeln!(out, "* X{e}: n{tail} -> n{head} pruned");
                continue;
            }
            let (plus, minus) = if net.polarity[e] < 0 {
                (tail, head)
            } else {
                (head, tail)
            };
            // A stuck device has no rate (MODEL.md section 2).
            let moves = |rate: f64| if dev.stuck[e] { 0.0 } else { rate };
            if vteam {
                let (ron, roff, r) = (dev.ron[e], dev.roff[e], self.state.r[e]);
                let _ = writeln!(
                    out,
                    "X{e} n{plus} n{minus} en vteam params: ron={} roff={} von={} voff={} kon={} koff={} x0={}",
                    num(ron),
                    num(roff),
                    num(dev.vt[e]),
                    num(dev.vt[e] * p.device.v_off / p.device.v_on),
                    num(moves(p.device.k_on)),
                    num(moves(p.device.k_off)),
                    num(law.x_of_r(r, ron, roff))
                );
            } else {
                let _ = writeln!(
                    out,
                    "X{e} n{plus} n{minus} en memristor params: ron={} roff={} vt={} alpha={} beta={} r0={}",
                    num(dev.ron[e]),
                    num(dev.roff[e]),
                    num(dev.vt[e]),
                    num(moves(p.device.alpha)),
                    num(moves(p.device.beta)),
                    num(self.state.r[e])
                );
            }
        }
        let _ = writeln!(out, "* gmin from every node to ground");
        for i in 0..n {
            let _ = writeln!(out, "Rg{i} n{i} 0 {}", num(1.0 / p.circuit.gmin));
        }
        let _ = writeln!(
            out,
            "* Fixed nodes: source V<i> through switch S<i>, closed while Vc<i> is 1."
        );
        let _ = writeln!(
            out,
            ".model terminal sw vt=0.5 vh=0 ron={} roff={}",
            num(SWITCH_ON_OHM),
            num(SWITCH_OFF_OHM)
        );
        for i in (0..n).filter(|&i| self.phases.iter().any(|ph| ph.boundary.fixed[i])) {
            let fixed = |ph: &Phase| ph.boundary.fixed[i];
            let volts = held(
                self.phases
                    .iter()
                    .map(|ph| fixed(ph).then_some(ph.boundary.volts[i])),
            );
            let closed: Vec<f64> = self
                .phases
                .iter()
                .map(|ph| if fixed(ph) { 1.0 } else { 0.0 })
                .collect();
            let _ = writeln!(out, "V{i} s{i} 0 {}", pwl(&volts, slots, ramp));
            let _ = writeln!(out, "S{i} n{i} s{i} c{i} 0 terminal");
            let _ = writeln!(out, "Vc{i} c{i} 0 {}", pwl(&closed, slots, ramp));
        }
        let _ = writeln!(
            out,
            "* Enable: 1 during each pulse (area exactly tau), 0 otherwise."
        );
        let mut enable = vec![(0.0, 0.0)];
        for (on, _) in slots.iter().filter_map(|slot| slot.pulse) {
            enable.extend([
                (on, 0.0),
                (on + ramp, 1.0),
                (on + tau, 1.0),
                (on + tau + ramp, 0.0),
            ]);
        }
        let _ = writeln!(out, "Ven en 0 {}", pwl_points(&enable));
        let _ = writeln!(out, "*");
    }

    /// The transient run and the measurements it prints.
    fn write_control(&self, out: &mut String, slots: &[Slot], max_step_s: f64) {
        let net = &self.instance.network;
        let n = net.n_nodes();
        let _ = writeln!(out, ".options reltol=1e-6 abstol=1e-15 vntol=1e-12");
        let _ = writeln!(
            out,
            ".tran {} {} 0 {} uic",
            seconds(max_step_s),
            seconds(self.duration()),
            seconds(max_step_s)
        );
        let _ = writeln!(out, ".control\nset numdgt=15\nrun");
        // `meas` rounds to 7 digits; a mean over a window in which the value
        // is constant keeps all of them.
        let window = |out: &mut String, name: &str, (from, to): (f64, f64)| {
            let _ = writeln!(
                out,
                "let {name} = (time ge {}) and (time le {})",
                seconds(from),
                seconds(to)
            );
        };
        let mut values = Vec::new();
        for (k, (ph, slot)) in self.phases.iter().zip(slots).enumerate() {
            let w = format!("w{k}");
            window(out, &w, slot.before);
            for i in 0..n {
                values.push((format!("p{k}_v{i}"), format!("v(n{i})"), w.clone()));
            }
            for i in (0..n).filter(|&i| ph.boundary.fixed[i]) {
                values.push((format!("p{k}_i{i}"), format!("i(v{i})"), w.clone()));
            }
            if let Some((_, after)) = slot.pulse {
                let a = format!("a{k}");
                window(out, &a, after);
                for e in (0..net.n_edges()).filter(|&e| self.state.alive[e]) {
                    values.push((format!("p{k}_r{e}"), format!("v(x{e}.r)"), a.clone()));
                }
            }
        }
        for (name, what, window) in &values {
            let _ = writeln!(out, "let {name} = mean({what} * {window}) / mean({window})");
        }
        let names: Vec<&str> = values.iter().map(|(name, _, _)| name.as_str()).collect();
        for chunk in names.chunks(8) {
            let _ = writeln!(out, "print {}", chunk.join(" "));
        }
        // Without it, batch mode exits with status 1: it ran no `.print`.
        let _ = writeln!(out, "quit\n.endc\n.end");
    }

    /// The largest SPICE time step `export-spice` writes: `tau / 1000`,
    /// fine enough that memsweep's integration at 1000 substeps per pulse
    /// agrees with it to well under 1%.
    pub fn default_max_step_s(&self) -> f64 {
        self.params.training.tau * 1e-3
    }

    /// Seconds of transient the netlist simulates.
    pub fn duration(&self) -> f64 {
        let tau = self.params.training.tau;
        self.phases.iter().map(|ph| slot_length(ph, tau)).sum()
    }

    /// memsweep's own integration of the schedule, with `n_sub` Euler
    /// substeps per pulse: the nodal solve before each phase's pulse, then
    /// `Trainer::pulse` under the phase's boundary.
    pub fn integrate(&self, n_sub: usize) -> Measured {
        let mut params = self.params.clone();
        params.training.n_sub = n_sub;
        let inst = &self.instance;
        let (net, adj) = (&inst.network, &inst.adjacency);
        let n = net.n_nodes();
        let mut t = Trainer::<f64>::new(inst, &params);
        t.set_state(&self.state.r, &self.state.alive);
        let mut solver = Solver::new(n);
        let mut m = Measured::empty(self.phases.len(), n, net.n_edges());
        for (k, ph) in self.phases.iter().enumerate() {
            let b = &ph.boundary;
            let (alive, g) = (t.alive(), t.g());
            solver.prepare(adj, &alive, b);
            solver.solve(net, adj, &g, params.circuit.gmin, b, &mut m.volts[k]);
            for i in (0..n).filter(|&i| b.fixed[i]) {
                m.currents[k][i] = node_current(adj, &g, &m.volts[k], i);
            }
            if ph.pulse {
                t.set_boundary(b.clone());
                // The pulse kind only keys the c2c noise draws.
                t.pulse(0, 0, Pulse::Normalize);
                let r = t.r();
                for e in (0..net.n_edges()).filter(|&e| alive[e]) {
                    m.r_after[k][e] = r[e];
                }
            }
        }
        m
    }

    /// Read ngspice's output of `self.netlist(..)`.
    pub fn parse(&self, output: &str) -> Result<Measured, String> {
        let mut values = HashMap::new();
        for line in output.lines() {
            if let Some((name, value)) = line.split_once(" = ") {
                if let Ok(x) = value.trim().parse::<f64>() {
                    values.insert(name.trim().to_ascii_lowercase(), x);
                }
            }
        }
        let net = &self.instance.network;
        let n = net.n_nodes();
        let mut m = Measured::empty(self.phases.len(), n, net.n_edges());
        let get = |name: String| {
            values
                .get(&name)
                .copied()
                .ok_or_else(|| format!("ngspice printed no value for {name}"))
        };
        for (k, ph) in self.phases.iter().enumerate() {
            for i in 0..n {
                m.volts[k][i] = get(format!("p{k}_v{i}"))?;
                if ph.boundary.fixed[i] {
                    m.currents[k][i] = get(format!("p{k}_i{i}"))?;
                }
            }
            if ph.pulse {
                for e in (0..net.n_edges()).filter(|&e| self.state.alive[e]) {
                    m.r_after[k][e] = get(format!("p{k}_r{e}"))?;
                }
            }
        }
        Ok(m)
    }

    /// Write the netlist, run ngspice on it and read what it measured.
    pub fn simulate(&self, max_step_s: f64) -> Result<Measured, String> {
        let out = run_ngspice(&self.netlist(max_step_s))?;
        self.parse(&out)
    }
}

impl Measured {
    fn empty(n_phases: usize, n_nodes: usize, n_edges: usize) -> Measured {
        Measured {
            volts: vec![vec![0.0; n_nodes]; n_phases],
            currents: vec![vec![f64::NAN; n_nodes]; n_phases],
            r_after: vec![vec![f64::NAN; n_edges]; n_phases],
        }
    }
}

/// The default schedule for pattern `k` in the trainer's state: its read,
/// a punish of the read's winner if it is wrong (else of the strongest
/// other output, the one a mistake would punish), and a normalize.
pub fn default_phases(
    t: &mut Trainer<'_, f64>,
    inst: &Instance,
    params: &Params,
    k: usize,
) -> Vec<Phase> {
    let (winner, _) = t.read(FINAL_READ_ERA, k);
    let read = t.boundary().clone();
    let target = inst.task.target[k];
    let wrong = if winner != target {
        winner
    } else {
        let c = t.currents();
        (0..c.len())
            .filter(|&o| o != target)
            .fold(None, |best: Option<usize>, o| match best {
                Some(b) if c[b] >= c[o] => Some(b),
                _ => Some(o),
            })
            .expect("n_out >= 2")
    };
    let net = &inst.network;
    let n = net.n_nodes();
    let mut punish = Boundary::floating(n);
    let v_punish = params.training.v_punish;
    phase::punish(net, &inst.task.active[k], wrong, v_punish, &mut punish);
    let mut normalize = Boundary::floating(n);
    phase::normalize(net, params.training.v_norm, &mut normalize);
    let target_note = if winner == target {
        "read correct; punish shows the strongest other output"
    } else {
        "read wrong"
    };
    vec![
        Phase {
            name: format!("read of pattern {k} (target output {target}, winner {winner})"),
            boundary: read,
            pulse: false,
        },
        Phase {
            name: format!("punish of pattern {k}, output {wrong} grounded ({target_note})"),
            boundary: punish,
            pulse: true,
        },
        Phase {
            name: format!("normalize (after pattern {k})"),
            boundary: normalize,
            pulse: true,
        },
    ]
}

/// Whether an `ngspice` executable runs.
pub fn ngspice_available() -> bool {
    Command::new("ngspice")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `ngspice -b` on a netlist given on its standard input; its standard
/// output.
pub fn run_ngspice(netlist: &str) -> Result<String, String> {
    let mut child = Command::new("ngspice")
        .arg("-b")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ngspice: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let text = netlist.to_string();
    // A separate writer, so a large netlist cannot deadlock against output.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ngspice: {e}"))?;
    writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("cannot write to ngspice: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| l.contains("Error") || l.contains("error:"));
    match (out.status.success(), failed) {
        (true, None) => Ok(stdout),
        (_, Some(line)) => Err(format!("ngspice: {}", line.trim())),
        (false, None) => Err(format!("ngspice exited with {}", out.status)),
    }
}

/// `memsweep bench`'s SPICE comparison: one training run replayed in ngspice
/// one read or pulse at a time (as a SPICE-in-the-loop trainer runs it),
/// against memsweep training the same instance on one thread.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayTiming {
    pub config: String,
    /// ngspice runs: every read, punish and normalize, and the final reads.
    pub runs: usize,
    pub pulses: usize,
    /// Seconds for all ngspice runs together.
    pub ngspice_s: f64,
    /// Seconds memsweep takes to set up and train the instance (one
    /// thread, averaged over repeats).
    pub memsweep_s: f64,
}

impl ReplayTiming {
    pub fn ratio(&self) -> f64 {
        self.ngspice_s / self.memsweep_s
    }

    pub fn line(&self) -> String {
        format!(
            "ngspice: one {} training run replayed pulse by pulse ({} ngspice runs, {} pulses) takes {:.3} s; memsweep {:.3e} s per instance (one thread): ratio {:.0}x",
            self.config,
            self.runs,
            self.pulses,
            self.ngspice_s,
            self.memsweep_s,
            self.ratio()
        )
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"config\":\"ngspice-replay-{}\",\"ngspice_runs\":{},\"pulses\":{},\"ngspice_seconds\":{:.6},\"memsweep_seconds_per_instance\":{:.6e},\"ratio\":{:.3}}}",
            self.config,
            self.runs,
            self.pulses,
            self.ngspice_s,
            self.memsweep_s,
            self.ratio()
        )
    }
}

/// `memsweep bench`'s SPICE line: the bench's 2-4-2 configuration, seed 1.
/// An error, to print as a note, when ngspice is not installed or fails.
pub fn bench_2_4_2() -> Result<ReplayTiming, String> {
    if !ngspice_available() {
        return Err(
            "ngspice: not installed; the SPICE timing is skipped (Debian: apt-get install ngspice)"
                .into(),
        );
    }
    let config = BenchConfig::new(2, &[4], 2, 1);
    time_replay(&config.name, &config.params(), 1)
}

/// Time ngspice on one training run of a `params` network: the first
/// instance (replicas of `seed`, point 0) that makes a mistake, so the
/// replay holds pulses. Every read and pulse becomes one netlist, with the
/// state memsweep reached before it.
pub fn time_replay(config: &str, params: &Params, seed: u64) -> Result<ReplayTiming, String> {
    let inst = (0..1000)
        .map(|replica| Instance::build(params, 0, replica, instance_seed(seed, 0, replica)))
        .find(|inst| train::<f64>(inst, params).trace.iter().any(|r| !r.correct))
        .ok_or("no instance of the first 1000 makes a mistake")?;
    let mut t = Trainer::<f64>::new(&inst, params);
    let mut before = State::of(&t);
    let mut steps = Vec::new();
    run_eras(&mut t, params.training.max_eras, |step, t| {
        if step != Step::Prune {
            steps.push((
                before.clone(),
                Phase {
                    name: format!("{step:?}"),
                    boundary: t.boundary().clone(),
                    pulse: step != Step::Read,
                },
            ));
        }
        before = State::of(t);
    });
    for k in 0..inst.task.n_patterns() {
        t.read(FINAL_READ_ERA, k);
        steps.push((
            State::of(&t),
            Phase {
                name: "final read".into(),
                boundary: t.boundary().clone(),
                pulse: false,
            },
        ));
    }
    let pulses = steps.iter().filter(|(_, ph)| ph.pulse).count();
    let start = Instant::now();
    for (i, (state, phase)) in steps.iter().enumerate() {
        let export = Export {
            instance: inst.clone(),
            params: params.clone(),
            state: state.clone(),
            phases: vec![phase.clone()],
            about: vec![format!("bench replay, step {i}")],
        };
        export.simulate(export.default_max_step_s())?;
    }
    let ngspice_s = start.elapsed().as_secs_f64();

    let repeats = 200;
    let start = Instant::now();
    for _ in 0..repeats {
        let inst = Instance::build(params, inst.point, inst.replica, inst.seed);
        std::hint::black_box(train::<f64>(&inst, params));
    }
    let memsweep_s = start.elapsed().as_secs_f64() / repeats as f64;
    Ok(ReplayTiming {
        config: config.to_string(),
        runs: steps.len(),
        pulses,
        ngspice_s,
        memsweep_s,
    })
}

/// Each phase's slot in the transient (see `Slot`): the boundary switches,
/// a gap, the pulse, a gap. Each measuring window is the middle half of a
/// gap.
fn timeline(phases: &[Phase], tau: f64) -> Vec<Slot> {
    let gap = tau * GAP_TAU;
    let window = |from: f64| (from + gap / 4.0, from + 3.0 * gap / 4.0);
    let mut t = 0.0;
    phases
        .iter()
        .map(|ph| {
            let start = t;
            let pulse = ph.pulse.then(|| {
                let on = start + gap;
                (on, window(on + tau + tau * RAMP_TAU))
            });
            t += slot_length(ph, tau);
            Slot {
                start,
                before: window(start),
                pulse,
            }
        })
        .collect()
}

/// Seconds a phase takes in the transient.
fn slot_length(phase: &Phase, tau: f64) -> f64 {
    let gap = tau * GAP_TAU;
    if phase.pulse {
        2.0 * gap + tau + tau * RAMP_TAU
    } else {
        gap
    }
}

/// Per-phase values where `None` (a floating phase) keeps the last value
/// (the first known one before any), so a source changes only when it must.
fn held(values: impl Iterator<Item = Option<f64>>) -> Vec<f64> {
    let values: Vec<Option<f64>> = values.collect();
    let first = values.iter().flatten().next().copied().unwrap_or(0.0);
    let mut last = first;
    values
        .iter()
        .map(|v| {
            last = v.unwrap_or(last);
            last
        })
        .collect()
}

/// A source that takes `values[k]` during phase `k`, ramping at each slot's
/// start.
fn pwl(values: &[f64], slots: &[Slot], ramp: f64) -> String {
    if values.iter().all(|&v| v == values[0]) {
        return format!("DC {}", num(values[0]));
    }
    let mut points = vec![(0.0, values[0])];
    for k in 1..values.len() {
        if values[k] != values[k - 1] {
            points.push((slots[k].start, values[k - 1]));
            points.push((slots[k].start + ramp, values[k]));
        }
    }
    pwl_points(&points)
}

fn pwl_points(points: &[(f64, f64)]) -> String {
    if points.len() == 1 {
        return format!("DC {}", num(points[0].1));
    }
    let mut s = String::from("PWL(");
    for (i, (t, v)) in points.iter().enumerate() {
        let _ = write!(
            s,
            "{}{} {}",
            if i > 0 { " " } else { "" },
            seconds(*t),
            num(*v)
        );
    }
    s.push(')');
    s
}

/// Which nodes a boundary drives, grounds and leaves floating, in words.
fn describe_boundary(b: &Boundary<f64>) -> String {
    let list = |keep: &dyn Fn(usize) -> bool| {
        let nodes: Vec<String> = (0..b.fixed.len())
            .filter(|&i| keep(i))
            .map(|i| format!("n{i}"))
            .collect();
        if nodes.is_empty() {
            "none".to_string()
        } else {
            nodes.join(" ")
        }
    };
    let driven: Vec<String> = (0..b.fixed.len())
        .filter(|&i| b.fixed[i] && b.volts[i] != 0.0)
        .map(|i| format!("n{i} at {} V", short(b.volts[i])))
        .collect();
    format!(
        "driven: {}; grounded: {}; floating: {}",
        if driven.is_empty() {
            "none".to_string()
        } else {
            driven.join(", ")
        },
        list(&|i| b.fixed[i] && b.volts[i] == 0.0),
        list(&|i| !b.fixed[i])
    )
}

/// A number as SPICE reads it back exactly: the shortest round-trip form,
/// in decimal where that is short.
fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A time, in seconds, to ten significant digits: the schedule's times are
/// sums that pick up rounding noise in the last digits.
fn seconds(t: f64) -> String {
    if t == 0.0 {
        return "0".into();
    }
    let s = format!("{t:.9e}");
    let (mantissa, exponent) = s.split_once('e').expect("exponent form");
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exponent}")
}

/// A number for a comment: four significant digits at most.
fn short(x: f64) -> String {
    let trim = |m: &str| m.trim_end_matches('0').trim_end_matches('.').to_string();
    if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        return trim(&format!("{x:.4}"));
    }
    let s = format!("{x:.3e}");
    let (mantissa, exponent) = s.split_once('e').expect("exponent form");
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exponent}")
}
