//! The parameters of one grid point: every field MODEL.md names, under its
//! MODEL.md name, with MODEL.md's defaults, and which measures to take.
//!
//! This module only holds values. Reading them from a sweep file and checking
//! their ranges is `sweep::spec`'s job.

use std::sync::Arc;

use serde::Serialize;

use crate::model::nanowire;
use crate::wiring::FileGraph;

/// How the network is wired (MODEL.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    Layered,
    RandomBulk,
    Nanowire,
    Graph,
}

impl Topology {
    pub const ALL: [Topology; 4] = [
        Topology::Layered,
        Topology::RandomBulk,
        Topology::Nanowire,
        Topology::Graph,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topology::Layered => "layered",
            Topology::RandomBulk => "random_bulk",
            Topology::Nanowire => "nanowire",
            Topology::Graph => "graph",
        }
    }
}

/// Which patterns the network must learn (MODEL.md section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    OneHot,
    RandomBinary,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::OneHot => "one_hot",
            TaskKind::RandomBinary => "random_binary",
        }
    }
}

/// Circuit physics (MODEL.md sections 2-7) or the ideal Chialvo-Bak walk
/// (MODEL.md section 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Circuit,
    Abstract,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Circuit => "circuit",
            ModelKind::Abstract => "abstract",
        }
    }
}

/// The device law (MODEL.md sections 2 and 2b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceModel {
    PershinDiVentra,
    Vteam,
}

impl DeviceModel {
    pub fn name(self) -> &'static str {
        match self {
            DeviceModel::PershinDiVentra => "pershin_di_ventra",
            DeviceModel::Vteam => "vteam",
        }
    }
}

/// The VTEAM window function (MODEL.md section 2b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    None,
    Joglekar,
    Biolek,
}

impl Window {
    pub fn name(self) -> &'static str {
        match self {
            Window::None => "none",
            Window::Joglekar => "joglekar",
            Window::Biolek => "biolek",
        }
    }
}

/// How a VTEAM device's resistance follows its state `x` (MODEL.md 2b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ROfX {
    Linear,
    Exponential,
}

impl ROfX {
    pub fn name(self) -> &'static str {
        match self {
            ROfX::Linear => "linear",
            ROfX::Exponential => "exponential",
        }
    }
}

/// `[network]`: MODEL.md section 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkParams {
    pub topology: Topology,
    pub n_in: usize,
    /// Widths of the hidden layers (layered only); depth = `hidden.len()`.
    pub hidden: Vec<usize>,
    pub n_out: usize,
    /// Probability that each consecutive-layer edge is kept (layered).
    pub density: f64,
    /// Probability of each input->output edge (layered).
    pub skip: f64,
    pub random_polarity: bool,
    /// Bulk node count (random_bulk).
    pub n_bulk: usize,
    /// Erdős–Rényi edge probability among bulk nodes (random_bulk).
    pub p_bulk: f64,
    /// Distinct bulk nodes each input and output attaches to (random_bulk).
    pub k_attach: usize,
    /// Wires dropped in the box (nanowire).
    pub n_wires: usize,
    /// Wires per square micrometre (nanowire).
    pub wire_density: f64,
    /// Mean wire length, micrometre (nanowire).
    pub wire_length: f64,
    /// Standard deviation of the wire length, micrometre (nanowire).
    pub wire_length_std: f64,
    /// The edges file (graph): as written in the sweep file until
    /// `sweep::spec` resolves it against the sweep file's directory.
    pub graph: Option<String>,
    /// The nodes file (graph); `None` means `nodes.csv` or `nodes.parquet`
    /// beside the edges file.
    pub graph_nodes: Option<String>,
    /// The graph the two files hold, read once per sweep by `sweep::spec`.
    #[serde(skip)]
    pub wiring: Option<Arc<FileGraph>>,
}

impl NetworkParams {
    /// Widths of a layered network's layers, inputs first and outputs
    /// last.
    pub fn layer_widths(&self) -> Vec<usize> {
        let mut widths = vec![self.n_in];
        widths.extend(&self.hidden);
        widths.push(self.n_out);
        widths
    }
}

/// `[device]`: MODEL.md sections 2 and 2b. Resistances in ohm, voltages in
/// volt, `beta` and `alpha` in ohm/(V s), `k_on` and `k_off` in 1/s.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceParams {
    pub model: DeviceModel,
    pub ron: f64,
    pub roff: f64,
    /// Pershin–Di Ventra threshold.
    pub vt: f64,
    pub alpha: f64,
    pub beta: f64,
    /// VTEAM rates, thresholds and exponents.
    pub k_on: f64,
    pub k_off: f64,
    pub v_on: f64,
    pub v_off: f64,
    pub alpha_on: f64,
    pub alpha_off: f64,
    pub window: Window,
    pub p_window: f64,
    pub r_of_x: ROfX,
    pub sigma_r0: f64,
    pub sigma_d2d: f64,
    pub sigma_c2c: f64,
    /// Probabilities that a device is stuck at `Ron_e`, at `Roff_e`.
    pub p_stuck_on: f64,
    pub p_stuck_off: f64,
}

impl DeviceParams {
    /// The threshold that device-to-device variability scales per edge:
    /// `vt`, or VTEAM's `v_on` (its `v_off` scales with it).
    pub fn threshold(&self) -> f64 {
        match self.model {
            DeviceModel::PershinDiVentra => self.vt,
            DeviceModel::Vteam => self.v_on,
        }
    }
}

/// `[circuit]`: MODEL.md section 3.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CircuitParams {
    /// Leak conductance from every node to ground, in siemens.
    pub gmin: f64,
}

/// `[training]`: MODEL.md sections 4-6 and 11.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingParams {
    pub model: ModelKind,
    pub task: TaskKind,
    /// Number of patterns; `None` means `n_in`.
    pub n_patterns: Option<usize>,
    pub max_eras: usize,
    /// Volts.
    pub v_read: f64,
    /// Relative read noise of each output current (MODEL.md section 6).
    pub sigma_read: f64,
    pub v_punish: f64,
    pub v_norm: f64,
    /// Pulse duration in seconds.
    pub tau: f64,
    /// Explicit-Euler substeps per pulse.
    pub n_sub: usize,
    /// Abstract model: depression draws are uniform in `[0, delta)`.
    pub delta: f64,
    pub tagging: bool,
    pub tag_factor: f64,
}

/// `[pruning]`: MODEL.md section 7.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PruningParams {
    pub p_prune: f64,
    pub f_prune: f64,
}

/// `[measures]`: which structural measures (MODEL.md section 8) each
/// instance gets. They cost nothing to training; on large networks they can
/// cost more than it, and a measure switched off leaves its columns null.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuresParams {
    /// `controllability_initial` and `controllability_final`.
    pub controllability: bool,
    /// `cycle_space_dim`.
    pub cycle_space: bool,
}

/// Everything one grid point needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    pub network: NetworkParams,
    pub device: DeviceParams,
    pub circuit: CircuitParams,
    pub training: TrainingParams,
    pub pruning: PruningParams,
    pub measures: MeasuresParams,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            network: NetworkParams {
                topology: Topology::Layered,
                n_in: 2,
                hidden: vec![4],
                n_out: 2,
                density: 1.0,
                skip: 0.0,
                random_polarity: false,
                n_bulk: 16,
                p_bulk: 0.3,
                k_attach: 2,
                n_wires: 200,
                wire_density: 0.1,
                wire_length: 10.0,
                wire_length_std: 1.0,
                graph: None,
                graph_nodes: None,
                wiring: None,
            },
            device: DeviceParams {
                model: DeviceModel::PershinDiVentra,
                ron: 1e3,
                roff: 1e4,
                vt: 1.0,
                alpha: 0.0,
                beta: 1.8e9,
                k_on: 2e5,
                k_off: 2e5,
                v_on: 1.0,
                v_off: 1.0,
                alpha_on: 1.0,
                alpha_off: 1.0,
                window: Window::None,
                p_window: 1.0,
                r_of_x: ROfX::Linear,
                sigma_r0: 0.3,
                sigma_d2d: 0.0,
                sigma_c2c: 0.0,
                p_stuck_on: 0.0,
                p_stuck_off: 0.0,
            },
            circuit: CircuitParams { gmin: 1e-12 },
            training: TrainingParams {
                model: ModelKind::Circuit,
                task: TaskKind::OneHot,
                n_patterns: None,
                max_eras: 20,
                v_read: 0.5,
                sigma_read: 0.0,
                v_punish: 3.0,
                v_norm: 2.0,
                tau: 1e-6,
                n_sub: 10,
                delta: 1.0,
                tagging: false,
                tag_factor: 0.01,
            },
            pruning: PruningParams {
                p_prune: 0.3,
                f_prune: 0.95,
            },
            measures: MeasuresParams {
                controllability: true,
                cycle_space: true,
            },
        }
    }
}

impl Params {
    /// The number of patterns `P` actually trained.
    pub fn n_patterns(&self) -> usize {
        self.training.n_patterns.unwrap_or(self.network.n_in)
    }

    /// Number of hidden (bulk) nodes; for nanowire the most there can be
    /// (every wire in the largest component).
    pub fn n_hidden(&self) -> usize {
        let n = &self.network;
        match n.topology {
            Topology::Layered => n.hidden.iter().sum(),
            Topology::RandomBulk => n.n_bulk,
            Topology::Nanowire => n.n_wires.saturating_sub(n.n_in + n.n_out),
            Topology::Graph => n.wiring.as_ref().map_or(0, |g| g.n_hidden),
        }
    }

    pub fn n_nodes(&self) -> usize {
        self.network.n_in + self.n_hidden() + self.network.n_out
    }

    /// Hidden layers for layered networks; 1 for the others (their bulk).
    pub fn depth(&self) -> usize {
        match self.network.topology {
            Topology::Layered => self.network.hidden.len(),
            Topology::RandomBulk | Topology::Nanowire | Topology::Graph => 1,
        }
    }

    /// A size that `Network::parity_class` reaches for every network of
    /// these parameters: the odd layers of a layered network (the even ones
    /// too unless skip edges join inputs to outputs over an odd number of
    /// hidden layers), the terminals of a random_bulk network (its bulk
    /// too if it has no edges), none of a nanowire network (any two wires
    /// may cross), that of the file's wiring for graph.
    pub fn parity_class_size(&self) -> usize {
        let n = &self.network;
        let (even, odd, even_independent, odd_independent) = match n.topology {
            Topology::Layered => {
                let widths = n.layer_widths();
                let of = |parity: usize| -> usize { widths.iter().skip(parity).step_by(2).sum() };
                let skip_joins_even = n.skip > 0.0 && n.hidden.len() % 2 == 1;
                (of(0), of(1), !skip_joins_even, true)
            }
            Topology::RandomBulk => (n.n_in + n.n_out, n.n_bulk, true, n.p_bulk <= 0.0),
            Topology::Nanowire => (0, 0, false, false),
            Topology::Graph => {
                let size = n.wiring.as_ref().map_or(0, |g| g.parity_class_size);
                (size, 0, true, false)
            }
        };
        let even = if even_independent { even } else { 0 };
        let odd = if odd_independent { odd } else { 0 };
        even.max(odd)
    }

    /// The largest number of edges a network of these parameters can have
    /// (nanowire: `nanowire::edge_bound`, a bound no network reaches in
    /// practice).
    pub fn max_edges(&self) -> usize {
        let n = &self.network;
        match n.topology {
            Topology::Layered => {
                let widths = n.layer_widths();
                let layered: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
                layered + if n.skip > 0.0 { n.n_in * n.n_out } else { 0 }
            }
            Topology::RandomBulk => {
                n.n_bulk * n.n_bulk.saturating_sub(1) / 2 + (n.n_in + n.n_out) * n.k_attach
            }
            Topology::Nanowire => nanowire::edge_bound(n) as usize,
            Topology::Graph => n.wiring.as_ref().map_or(0, |g| g.tail.len()),
        }
    }
}
