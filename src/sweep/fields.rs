//! Every field of a sweep file, defined once: its dotted key, default, unit
//! and meaning, how a TOML value sets it, its range check and its Parquet
//! column. Parsing (`spec::set_field`), validation (`spec::validate`), the
//! results schema (`results::schema`), `report`'s parameter columns and
//! the README's field reference (`memsweep fields`, checked by
//! `tests/spec_errors.rs`) all come from `FIELDS`. Adding a field is one
//! entry here plus its physics.

use toml::Value;

use crate::params::{
    DeviceModel, ModelKind, NetworkParams, Params, ROfX, TaskKind, Topology, TrainingParams, Window,
};
use crate::wiring::FileGraph;

/// One sweep-file field.
pub struct Field {
    /// `section.name`, the key in a sweep file and in an axis.
    pub key: &'static str,
    /// The default as the README shows it.
    pub default: &'static str,
    /// Unit, meaning and model section, in one line.
    pub about: &'static str,
    /// Sets the field from a TOML value; `Err` is the reason, naming the
    /// value. Ranges are `check`'s.
    pub set: fn(&mut Params, &Value) -> Result<(), String>,
    /// The field's range and cross-field checks on a whole grid point.
    pub check: fn(&Params) -> Result<(), String>,
    /// Its column in the `instances` table, if it has one.
    pub column: Option<Column>,
}

/// A parameter column of the `instances` table.
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether some rows have no value (a field of another topology or
    /// device law).
    pub nullable: bool,
    pub value: fn(&Params) -> Cell,
}

/// The Arrow type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Bool,
    Text,
    IntList,
}

/// One row's value of a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    IntList(Vec<i64>),
    Null,
}

/// `*place = value`, or the reason it failed.
fn assign<T>(place: &mut T, value: Result<T, String>) -> Result<(), String> {
    *place = value?;
    Ok(())
}

fn ok(_: &Params) -> Result<(), String> {
    Ok(())
}

const fn column(name: &'static str, kind: Kind, value: fn(&Params) -> Cell) -> Option<Column> {
    Some(Column {
        name,
        kind,
        nullable: false,
        value,
    })
}

const fn nullable(name: &'static str, kind: Kind, value: fn(&Params) -> Cell) -> Option<Column> {
    Some(Column {
        name,
        kind,
        nullable: true,
        value,
    })
}

fn float_if(on: bool, x: f64) -> Cell {
    if on {
        Cell::Float(x)
    } else {
        Cell::Null
    }
}

fn nanowire(p: &Params) -> bool {
    p.network.topology == Topology::Nanowire
}

fn vteam(p: &Params) -> bool {
    p.device.model == DeviceModel::Vteam
}

/// Every field, in the order of the README's reference and of the columns.
pub const FIELDS: &[Field] = &[
    Field {
        key: "network.topology",
        default: "\"layered\"",
        about: "`\"layered\"`, `\"random_bulk\"`, `\"nanowire\"` or `\"graph\"` (1)",
        set: |p, v| assign(&mut p.network.topology, as_enum(v, &Topology::ALL, Topology::name)),
        check: ok,
        column: column("topology", Kind::Text, |p| {
            Cell::Text(p.network.topology.name().into())
        }),
    },
    Field {
        key: "network.n_in",
        default: "2",
        about: "inputs, >= 1",
        set: |p, v| assign(&mut p.network.n_in, as_usize(v)),
        check: |p| {
            at_least(p.network.n_in, 1)?;
            terminals_match(&p.network, p.network.n_in, "input", |g| g.n_in)
        },
        column: column("n_in", Kind::Int, |p| Cell::Int(p.network.n_in as i64)),
    },
    Field {
        key: "network.hidden",
        default: "[4]",
        about: "layered: widths of the hidden layers; `[]` joins inputs to outputs",
        set: |p, v| assign(&mut p.network.hidden, as_usize_list(v)),
        check: |p| each_at_least(&p.network.hidden, 1),
        column: column("hidden", Kind::IntList, |p| {
            Cell::IntList(p.network.hidden.iter().map(|&h| h as i64).collect())
        }),
    },
    Field {
        key: "network.n_out",
        default: "2",
        about: "outputs, >= 2: a winner needs a rival",
        set: |p, v| assign(&mut p.network.n_out, as_usize(v)),
        check: |p| {
            at_least(p.network.n_out, 2).map_err(|r| format!("{r} (a winner needs a rival)"))?;
            terminals_match(&p.network, p.network.n_out, "output", |g| g.n_out)
        },
        column: column("n_out", Kind::Int, |p| Cell::Int(p.network.n_out as i64)),
    },
    Field {
        key: "network.density",
        default: "1.0",
        about: "layered: probability each consecutive-layer edge is kept",
        set: |p, v| assign(&mut p.network.density, as_f64(v)),
        check: |p| probability(p.network.density),
        column: column("density", Kind::Float, |p| Cell::Float(p.network.density)),
    },
    Field {
        key: "network.skip",
        default: "0.0",
        about: "layered: probability of each input->output edge",
        set: |p, v| assign(&mut p.network.skip, as_f64(v)),
        check: |p| probability(p.network.skip),
        column: column("skip", Kind::Float, |p| Cell::Float(p.network.skip)),
    },
    Field {
        key: "network.random_polarity",
        default: "false",
        about: "each device's orientation +1 or -1 at random",
        set: |p, v| assign(&mut p.network.random_polarity, as_bool(v)),
        check: ok,
        column: column("random_polarity", Kind::Bool, |p| {
            Cell::Bool(p.network.random_polarity)
        }),
    },
    Field {
        key: "network.n_bulk",
        default: "16",
        about: "random_bulk: bulk nodes",
        set: |p, v| assign(&mut p.network.n_bulk, as_usize(v)),
        check: |p| at_least(p.network.n_bulk, 1),
        column: column("n_bulk", Kind::Int, |p| Cell::Int(p.network.n_bulk as i64)),
    },
    Field {
        key: "network.p_bulk",
        default: "0.3",
        about: "random_bulk: Erdős–Rényi edge probability",
        set: |p, v| assign(&mut p.network.p_bulk, as_f64(v)),
        check: |p| probability(p.network.p_bulk),
        column: column("p_bulk", Kind::Float, |p| Cell::Float(p.network.p_bulk)),
    },
    Field {
        key: "network.k_attach",
        default: "2",
        about: "random_bulk: bulk nodes each terminal attaches to",
        set: |p, v| assign(&mut p.network.k_attach, as_usize(v)),
        check: |p| between(p.network.k_attach, 1, p.network.n_bulk, "network.n_bulk"),
        column: column("k_attach", Kind::Int, |p| {
            Cell::Int(p.network.k_attach as i64)
        }),
    },
    Field {
        key: "network.n_wires",
        default: "200",
        about: "nanowire: wires dropped; the largest component is kept",
        set: |p, v| assign(&mut p.network.n_wires, as_usize(v)),
        check: |p| wires_fit(&p.network),
        column: nullable("n_wires", Kind::Int, |p| {
            if nanowire(p) {
                Cell::Int(p.network.n_wires as i64)
            } else {
                Cell::Null
            }
        }),
    },
    Field {
        key: "network.wire_density",
        default: "0.1",
        about: "nanowire: wires per µm² (percolation near 5.64 / `wire_length`²)",
        set: |p, v| assign(&mut p.network.wire_density, as_f64(v)),
        check: |p| positive(p.network.wire_density),
        column: nullable("wire_density", Kind::Float, |p| {
            float_if(nanowire(p), p.network.wire_density)
        }),
    },
    Field {
        key: "network.wire_length",
        default: "10.0",
        about: "nanowire: mean wire length, µm (gamma-distributed)",
        set: |p, v| assign(&mut p.network.wire_length, as_f64(v)),
        check: |p| positive(p.network.wire_length),
        column: nullable("wire_length", Kind::Float, |p| {
            float_if(nanowire(p), p.network.wire_length)
        }),
    },
    Field {
        key: "network.wire_length_std",
        default: "1.0",
        about: "nanowire: its standard deviation, µm",
        set: |p, v| assign(&mut p.network.wire_length_std, as_f64(v)),
        check: |p| non_negative(p.network.wire_length_std),
        column: nullable("wire_length_std", Kind::Float, |p| {
            float_if(nanowire(p), p.network.wire_length_std)
        }),
    },
    Field {
        key: "network.graph",
        default: "none",
        about: "graph: edges file (`.csv` or `.parquet`; `tail`, `head`, optional `polarity`, `ron`, `roff`, `vt`, `r0`), relative to the sweep file",
        set: |p, v| assign(&mut p.network.graph, as_str(v).map(|s| Some(s.to_string()))),
        check: |p| graph_given(&p.network),
        column: nullable("graph", Kind::Text, |p| match &p.network.wiring {
            Some(g) => Cell::Text(g.edges_file.clone()),
            None => Cell::Null,
        }),
    },
    Field {
        key: "network.graph_nodes",
        default: "`nodes.csv` beside it",
        about: "graph: nodes file (`id`, `role` = input/bulk/output, optional `layer`)",
        set: |p, v| assign(&mut p.network.graph_nodes, as_str(v).map(|s| Some(s.to_string()))),
        check: ok,
        column: None,
    },
    Field {
        key: "device.model",
        default: "\"pershin_di_ventra\"",
        about: "device law (2), or `\"vteam\"` (2b); column `device_model`",
        set: |p, v| {
            let laws = [DeviceModel::PershinDiVentra, DeviceModel::Vteam];
            assign(&mut p.device.model, as_enum(v, &laws, DeviceModel::name))
        },
        check: ok,
        column: column("device_model", Kind::Text, |p| {
            Cell::Text(p.device.model.name().into())
        }),
    },
    Field {
        key: "device.ron",
        default: "1e3",
        about: "ohm (2)",
        set: |p, v| assign(&mut p.device.ron, as_f64(v)),
        check: |p| positive(p.device.ron),
        column: column("ron", Kind::Float, |p| Cell::Float(p.device.ron)),
    },
    Field {
        key: "device.roff",
        default: "1e4",
        about: "ohm, > `ron`",
        set: |p, v| assign(&mut p.device.roff, as_f64(v)),
        check: |p| above(p.device.roff, p.device.ron, "device.ron"),
        column: column("roff", Kind::Float, |p| Cell::Float(p.device.roff)),
    },
    Field {
        key: "device.vt",
        default: "1.0",
        about: "V, threshold (Pershin–Di Ventra)",
        set: |p, v| assign(&mut p.device.vt, as_f64(v)),
        check: |p| positive(p.device.vt),
        column: column("vt", Kind::Float, |p| Cell::Float(p.device.vt)),
    },
    Field {
        key: "device.alpha",
        default: "0.0",
        about: "ohm/(V s), sub-threshold drift (Pershin–Di Ventra)",
        set: |p, v| assign(&mut p.device.alpha, as_f64(v)),
        check: |p| non_negative(p.device.alpha),
        column: column("alpha", Kind::Float, |p| Cell::Float(p.device.alpha)),
    },
    Field {
        key: "device.beta",
        default: "1.8e9",
        about: "ohm/(V s), switching rate (Pershin–Di Ventra)",
        set: |p, v| assign(&mut p.device.beta, as_f64(v)),
        check: |p| non_negative(p.device.beta),
        column: column("beta", Kind::Float, |p| Cell::Float(p.device.beta)),
    },
    Field {
        key: "device.k_on",
        default: "2e5",
        about: "1/s, VTEAM potentiation rate (2b)",
        set: |p, v| assign(&mut p.device.k_on, as_f64(v)),
        check: |p| positive(p.device.k_on),
        column: nullable("k_on", Kind::Float, |p| float_if(vteam(p), p.device.k_on)),
    },
    Field {
        key: "device.k_off",
        default: "2e5",
        about: "1/s, VTEAM depression rate",
        set: |p, v| assign(&mut p.device.k_off, as_f64(v)),
        check: |p| positive(p.device.k_off),
        column: nullable("k_off", Kind::Float, |p| float_if(vteam(p), p.device.k_off)),
    },
    Field {
        key: "device.v_on",
        default: "1.0",
        about: "V, VTEAM potentiation threshold",
        set: |p, v| assign(&mut p.device.v_on, as_f64(v)),
        check: |p| positive(p.device.v_on),
        column: nullable("v_on", Kind::Float, |p| float_if(vteam(p), p.device.v_on)),
    },
    Field {
        key: "device.v_off",
        default: "1.0",
        about: "V, VTEAM depression threshold",
        set: |p, v| assign(&mut p.device.v_off, as_f64(v)),
        check: |p| positive(p.device.v_off),
        column: nullable("v_off", Kind::Float, |p| float_if(vteam(p), p.device.v_off)),
    },
    Field {
        key: "device.alpha_on",
        default: "1.0",
        about: "VTEAM exponent of the overdrive, potentiating",
        set: |p, v| assign(&mut p.device.alpha_on, as_f64(v)),
        check: |p| positive(p.device.alpha_on),
        column: nullable("alpha_on", Kind::Float, |p| {
            float_if(vteam(p), p.device.alpha_on)
        }),
    },
    Field {
        key: "device.alpha_off",
        default: "1.0",
        about: "VTEAM exponent of the overdrive, depressing",
        set: |p, v| assign(&mut p.device.alpha_off, as_f64(v)),
        check: |p| positive(p.device.alpha_off),
        column: nullable("alpha_off", Kind::Float, |p| {
            float_if(vteam(p), p.device.alpha_off)
        }),
    },
    Field {
        key: "device.window",
        default: "\"none\"",
        about: "VTEAM window: `\"none\"`, `\"joglekar\"` or `\"biolek\"`",
        set: |p, v| {
            let windows = [Window::None, Window::Joglekar, Window::Biolek];
            assign(&mut p.device.window, as_enum(v, &windows, Window::name))
        },
        check: ok,
        column: nullable("window", Kind::Text, |p| {
            if vteam(p) {
                Cell::Text(p.device.window.name().into())
            } else {
                Cell::Null
            }
        }),
    },
    Field {
        key: "device.p_window",
        default: "1.0",
        about: "VTEAM window exponent `p`",
        set: |p, v| assign(&mut p.device.p_window, as_f64(v)),
        check: |p| positive(p.device.p_window),
        column: nullable("p_window", Kind::Float, |p| {
            float_if(vteam(p), p.device.p_window)
        }),
    },
    Field {
        key: "device.r_of_x",
        default: "\"linear\"",
        about: "VTEAM `R(x)`, or `\"exponential\"`",
        set: |p, v| {
            let shapes = [ROfX::Linear, ROfX::Exponential];
            assign(&mut p.device.r_of_x, as_enum(v, &shapes, ROfX::name))
        },
        check: ok,
        column: nullable("r_of_x", Kind::Text, |p| {
            if vteam(p) {
                Cell::Text(p.device.r_of_x.name().into())
            } else {
                Cell::Null
            }
        }),
    },
    Field {
        key: "device.sigma_r0",
        default: "0.3",
        about: "spread of the initial state",
        set: |p, v| assign(&mut p.device.sigma_r0, as_f64(v)),
        check: |p| non_negative(p.device.sigma_r0),
        column: column("sigma_r0", Kind::Float, |p| Cell::Float(p.device.sigma_r0)),
    },
    Field {
        key: "device.sigma_d2d",
        default: "0.0",
        about: "device-to-device spread of `ron`, `roff` and the threshold",
        set: |p, v| assign(&mut p.device.sigma_d2d, as_f64(v)),
        check: |p| non_negative(p.device.sigma_d2d),
        column: column("sigma_d2d", Kind::Float, |p| Cell::Float(p.device.sigma_d2d)),
    },
    Field {
        key: "device.sigma_c2c",
        default: "0.0",
        about: "cycle-to-cycle noise of each Euler increment",
        set: |p, v| assign(&mut p.device.sigma_c2c, as_f64(v)),
        check: |p| non_negative(p.device.sigma_c2c),
        column: column("sigma_c2c", Kind::Float, |p| Cell::Float(p.device.sigma_c2c)),
    },
    Field {
        key: "device.p_stuck_on",
        default: "0.0",
        about: "probability that a device is stuck at `Ron` (2)",
        set: |p, v| assign(&mut p.device.p_stuck_on, as_f64(v)),
        check: |p| probability(p.device.p_stuck_on),
        column: column("p_stuck_on", Kind::Float, |p| {
            Cell::Float(p.device.p_stuck_on)
        }),
    },
    Field {
        key: "device.p_stuck_off",
        default: "0.0",
        about: "probability that a device is stuck at `Roff`; with `p_stuck_on` at most 1",
        set: |p, v| assign(&mut p.device.p_stuck_off, as_f64(v)),
        check: |p| stuck_fits(p.device.p_stuck_on, p.device.p_stuck_off),
        column: column("p_stuck_off", Kind::Float, |p| {
            Cell::Float(p.device.p_stuck_off)
        }),
    },
    Field {
        key: "circuit.gmin",
        default: "1e-12",
        about: "S, leak from every node to ground (3)",
        set: |p, v| assign(&mut p.circuit.gmin, as_f64(v)),
        check: |p| positive(p.circuit.gmin),
        column: column("gmin", Kind::Float, |p| Cell::Float(p.circuit.gmin)),
    },
    Field {
        key: "training.model",
        default: "\"circuit\"",
        about: "or `\"abstract\"`: the Chialvo–Bak walk (11), one_hot only",
        set: |p, v| {
            let models = [ModelKind::Circuit, ModelKind::Abstract];
            assign(&mut p.training.model, as_enum(v, &models, ModelKind::name))
        },
        check: ok,
        column: column("model", Kind::Text, |p| {
            Cell::Text(p.training.model.name().into())
        }),
    },
    Field {
        key: "training.task",
        default: "\"one_hot\"",
        about: "or `\"random_binary\"` (5)",
        set: |p, v| {
            let tasks = [TaskKind::OneHot, TaskKind::RandomBinary];
            assign(&mut p.training.task, as_enum(v, &tasks, TaskKind::name))
        },
        check: |p| model_fits_task(&p.training),
        column: column("task", Kind::Text, |p| {
            Cell::Text(p.training.task.name().into())
        }),
    },
    Field {
        key: "training.n_patterns",
        default: "`n_in`",
        about: "patterns; one_hot needs `n_patterns <= n_in`",
        set: |p, v| assign(&mut p.training.n_patterns, as_usize(v).map(Some)),
        check: |p| patterns_fit(&p.training, p.network.n_in),
        column: column("n_patterns", Kind::Int, |p| Cell::Int(p.n_patterns() as i64)),
    },
    Field {
        key: "training.max_eras",
        default: "20",
        about: "(6)",
        set: |p, v| assign(&mut p.training.max_eras, as_usize(v)),
        check: |p| at_least(p.training.max_eras, 1),
        column: column("max_eras", Kind::Int, |p| {
            Cell::Int(p.training.max_eras as i64)
        }),
    },
    Field {
        key: "training.v_read",
        default: "0.5",
        about: "V",
        set: |p, v| assign(&mut p.training.v_read, as_f64(v)),
        check: |p| positive(p.training.v_read),
        column: column("v_read", Kind::Float, |p| Cell::Float(p.training.v_read)),
    },
    Field {
        key: "training.sigma_read",
        default: "0.0",
        about: "relative read noise of each output current, drawn at every read",
        set: |p, v| assign(&mut p.training.sigma_read, as_f64(v)),
        check: |p| non_negative(p.training.sigma_read),
        column: column("sigma_read", Kind::Float, |p| {
            Cell::Float(p.training.sigma_read)
        }),
    },
    Field {
        key: "training.v_punish",
        default: "3.0",
        about: "V",
        set: |p, v| assign(&mut p.training.v_punish, as_f64(v)),
        check: |p| positive(p.training.v_punish),
        column: column("v_punish", Kind::Float, |p| Cell::Float(p.training.v_punish)),
    },
    Field {
        key: "training.v_norm",
        default: "2.0",
        about: "V",
        set: |p, v| assign(&mut p.training.v_norm, as_f64(v)),
        check: |p| positive(p.training.v_norm),
        column: column("v_norm", Kind::Float, |p| Cell::Float(p.training.v_norm)),
    },
    Field {
        key: "training.tau",
        default: "1e-6",
        about: "s, pulse duration (4)",
        set: |p, v| assign(&mut p.training.tau, as_f64(v)),
        check: |p| positive(p.training.tau),
        column: column("tau", Kind::Float, |p| Cell::Float(p.training.tau)),
    },
    Field {
        key: "training.n_sub",
        default: "10",
        about: "Euler substeps per pulse",
        set: |p, v| assign(&mut p.training.n_sub, as_usize(v)),
        check: |p| at_least(p.training.n_sub, 1),
        column: column("n_sub", Kind::Int, |p| Cell::Int(p.training.n_sub as i64)),
    },
    Field {
        key: "training.delta",
        default: "1.0",
        about: "abstract: depressions are uniform in [0, delta)",
        set: |p, v| assign(&mut p.training.delta, as_f64(v)),
        check: |p| positive(p.training.delta),
        column: column("delta", Kind::Float, |p| Cell::Float(p.training.delta)),
    },
    Field {
        key: "training.tagging",
        default: "false",
        about: "abstract: edges once on a correct walk are depressed less",
        set: |p, v| assign(&mut p.training.tagging, as_bool(v)),
        check: ok,
        column: column("tagging", Kind::Bool, |p| Cell::Bool(p.training.tagging)),
    },
    Field {
        key: "training.tag_factor",
        default: "0.01",
        about: "abstract: by this factor",
        set: |p, v| assign(&mut p.training.tag_factor, as_f64(v)),
        check: |p| non_negative(p.training.tag_factor),
        column: column("tag_factor", Kind::Float, |p| {
            Cell::Float(p.training.tag_factor)
        }),
    },
    Field {
        key: "pruning.p_prune",
        default: "0.3",
        about: "0 turns pruning off (7)",
        set: |p, v| assign(&mut p.pruning.p_prune, as_f64(v)),
        check: |p| probability(p.pruning.p_prune),
        column: column("p_prune", Kind::Float, |p| Cell::Float(p.pruning.p_prune)),
    },
    Field {
        key: "pruning.f_prune",
        default: "0.95",
        about: "pruning threshold, fraction of the range",
        set: |p, v| assign(&mut p.pruning.f_prune, as_f64(v)),
        check: |p| probability(p.pruning.f_prune),
        column: column("f_prune", Kind::Float, |p| Cell::Float(p.pruning.f_prune)),
    },
    Field {
        key: "measures.controllability",
        default: "true",
        about: "compute controllability (8); false leaves its columns null",
        set: |p, v| assign(&mut p.measures.controllability, as_bool(v)),
        check: ok,
        column: None,
    },
    Field {
        key: "measures.cycle_space",
        default: "true",
        about: "compute the cycle-space dimension (8); false leaves its column null",
        set: |p, v| assign(&mut p.measures.cycle_space, as_bool(v)),
        check: ok,
        column: None,
    },
];

/// The field with dotted key `key`.
pub fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// The parameter columns of the `instances` table in schema order: every
/// field's column, with `depth` (derived from the network fields) after
/// `n_out` and `graph_hash` after `graph`.
pub fn parameter_columns() -> Vec<&'static str> {
    let mut out = Vec::new();
    for column in FIELDS.iter().filter_map(|f| f.column.as_ref()) {
        out.push(column.name);
        match column.name {
            "n_out" => out.push("depth"),
            "graph" => out.push("graph_hash"),
            _ => {}
        }
    }
    out
}

/// The README's field reference: a Markdown table, one row per field
/// (`memsweep fields` prints it; `tests/spec_errors.rs` checks the README
/// holds it).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| field | default | meaning (model section) |\n| --- | --- | --- |\n");
    for f in FIELDS {
        // A TOML value in code style; prose (`none`, `` `n_in` ``) as is.
        let literal = f.default.parse::<toml::Value>().is_ok()
            || format!("x = {}", f.default).parse::<toml::Table>().is_ok();
        let default = if literal {
            format!("`{}`", f.default)
        } else {
            f.default.to_string()
        };
        out.push_str(&format!("| `{}` | {default} | {} |\n", f.key, f.about));
    }
    out
}

pub(super) fn at_least(x: usize, min: usize) -> Result<(), String> {
    if x >= min {
        Ok(())
    } else {
        Err(format!("must be >= {min}, got {x}"))
    }
}

fn each_at_least(xs: &[usize], min: usize) -> Result<(), String> {
    if xs.iter().all(|&x| x >= min) {
        Ok(())
    } else {
        Err(format!("every entry must be >= {min}, got {xs:?}"))
    }
}

fn between(x: usize, min: usize, max: usize, max_name: &str) -> Result<(), String> {
    if (min..=max).contains(&x) {
        Ok(())
    } else {
        Err(format!(
            "must be between {min} and {max_name} = {max}, got {x}"
        ))
    }
}

fn finite(x: f64) -> Result<(), String> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(format!("must be finite, got {}", number(x)))
    }
}

fn positive(x: f64) -> Result<(), String> {
    finite(x)?;
    if x > 0.0 {
        Ok(())
    } else {
        Err(format!("must be > 0, got {}", number(x)))
    }
}

fn non_negative(x: f64) -> Result<(), String> {
    finite(x)?;
    if x >= 0.0 {
        Ok(())
    } else {
        Err(format!("must be >= 0, got {}", number(x)))
    }
}

fn probability(x: f64) -> Result<(), String> {
    finite(x)?;
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(format!(
            "must be a probability in [0, 1], got {}",
            number(x)
        ))
    }
}

fn above(x: f64, floor: f64, floor_name: &str) -> Result<(), String> {
    finite(x)?;
    if x > floor {
        Ok(())
    } else {
        Err(format!(
            "must be > {floor_name} = {}, got {}",
            number(floor),
            number(x)
        ))
    }
}

fn patterns_fit(t: &TrainingParams, n_in: usize) -> Result<(), String> {
    match t.n_patterns {
        Some(0) => Err("must be >= 1, got 0".into()),
        Some(p) if t.task == TaskKind::OneHot && p > n_in => Err(format!(
            "one_hot activates one input per pattern, so needs n_patterns <= network.n_in = {n_in}, got {p}"
        )),
        _ => Ok(()),
    }
}

/// `p_stuck_off` is a probability, and with `p_stuck_on` at most 1: a
/// device is stuck on, stuck off or free.
fn stuck_fits(on: f64, off: f64) -> Result<(), String> {
    probability(off)?;
    if on + off > 1.0 {
        return Err(format!(
            "plus device.p_stuck_on must be at most 1, got {} + {}",
            number(off),
            number(on)
        ));
    }
    Ok(())
}

/// The abstract baseline (MODEL.md section 11) starts its walk at the one
/// active input of a one_hot pattern; a random_binary pattern has several.
fn model_fits_task(t: &TrainingParams) -> Result<(), String> {
    match (t.model, t.task) {
        (ModelKind::Abstract, TaskKind::RandomBinary) => Err(
            "model = \"abstract\" walks from a single active input, so needs task = \"one_hot\", got \"random_binary\""
                .into(),
        ),
        _ => Ok(()),
    }
}

fn wires_fit(n: &NetworkParams) -> Result<(), String> {
    if n.topology == Topology::Nanowire && n.n_wires < n.n_in + n.n_out {
        return Err(format!(
            "must be >= n_in + n_out = {}, got {}",
            n.n_in + n.n_out,
            n.n_wires
        ));
    }
    Ok(())
}

fn graph_given(n: &NetworkParams) -> Result<(), String> {
    match (n.topology, &n.graph) {
        (Topology::Graph, None) => {
            Err("topology = \"graph\" needs graph = \"path/to/edges.csv\" (or .parquet)".into())
        }
        _ => Ok(()),
    }
}

/// A graph point's `n_in`/`n_out` must be the file's count of that role.
fn terminals_match(
    n: &NetworkParams,
    given: usize,
    role: &str,
    of: fn(&FileGraph) -> usize,
) -> Result<(), String> {
    match n.wiring.as_ref().filter(|_| n.topology == Topology::Graph) {
        Some(g) if of(g) != given => Err(format!(
            "{} has {} nodes of role {role}, but this field is {given}; set it to {}",
            g.nodes_file,
            of(g),
            of(g)
        )),
        _ => Ok(()),
    }
}

pub(super) fn as_f64(value: &Value) -> Result<f64, String> {
    match value {
        Value::Integer(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub(super) fn as_u64(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        other => Err(format!("expected a non-negative integer, got {other}")),
    }
}

pub(super) fn as_usize(value: &Value) -> Result<usize, String> {
    let x = as_u64(value)?;
    usize::try_from(x).map_err(|_| format!("too large for this machine, got {x}"))
}

fn as_usize_list(value: &Value) -> Result<Vec<usize>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("expected a list of integers, got {value}"))?;
    items
        .iter()
        .map(|item| as_usize(item).map_err(|r| format!("{r} in {value}")))
        .collect()
}

fn as_bool(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("expected true or false, got {value}"))
}

pub(super) fn as_str(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("expected a string, got {value}"))
}

/// Picks the option whose `name` is the string `value`.
fn as_enum<T: Copy>(
    value: &Value,
    options: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    let quoted: Vec<String> = options
        .iter()
        .map(|&o| format!("\"{}\"", name(o)))
        .collect();
    let expected = || format!("expected one of {}, got {value}", quoted.join(", "));
    let s = value.as_str().ok_or_else(expected)?;
    options
        .iter()
        .copied()
        .find(|&o| name(o) == s)
        .ok_or_else(expected)
}

/// A float as errors show it: plain near 1, exponent far from it.
pub(super) fn number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x:?}")
    }
}
