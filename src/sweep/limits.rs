//! What a sweep may ask of one machine: the size of the sweep file, of the
//! grid, of the instance count, and the memory one instance needs. `spec`
//! checks every limit before anything runs or is written, and `run` sizes
//! its chunks by `instance_bytes` so a chunk's records fit in
//! `CHUNK_BYTES`.
//!
//! Sizes are estimated in `f64`: a product of a few counts below 2^64
//! cannot overflow it, and the estimate only has to say which side of a
//! limit a sweep is on. Not here: the checks of physical ranges
//! (`spec::validate`).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::model::{circuit, nanowire};
use crate::params::{Params, Topology};
use crate::protocol::measures;
use crate::protocol::training::EraRead;

/// The largest sweep file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The largest `DIR/sweep.toml` read, in bytes: more than a sweep file,
/// since results directories of earlier versions recorded the sweep file
/// as written, comments and all.
pub const MAX_RECORDED_BYTES: u64 = 64 << 20;

/// The largest graph file (`topology = "graph"`) read, in bytes; the
/// memory limit below bounds the network it describes.
pub const MAX_GRAPH_FILE_BYTES: u64 = 1 << 30;

/// The most grid points in one sweep: each is validated, planned and
/// summarised one by one.
pub const MAX_POINTS: usize = 100_000;

/// The most instances in one sweep: `status` and `run` keep one bit per
/// instance (125 MB at this limit).
pub const MAX_INSTANCES: usize = 1_000_000_000;

/// The most memory one instance may need while it trains, in bytes.
pub const MAX_INSTANCE_BYTES: f64 = (128u64 << 20) as f64;

/// The memory the records of one chunk may hold, in bytes: `run` shrinks
/// `--batch-size` to fit (at least `CHUNK_BYTES / MAX_INSTANCE_BYTES` = 16
/// instances, so every core of a node has work). Writing a chunk takes
/// about as much again for its Arrow and Parquet copies.
pub const CHUNK_BYTES: f64 = (2u64 << 30) as f64;

/// Bytes per node and per edge of a network, with its adjacency, device
/// states and the per-edge scratch of training (a generous bound).
const NODE_BYTES: f64 = 64.0;
const EDGE_BYTES: f64 = 64.0;

/// The memory one instance of `params` needs at most, by part, in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footprint {
    /// Nodes and edges (`network_size`) of the network.
    pub network: f64,
    /// The nodal solve's dense system and the controllability measure's
    /// dense matrices, where their paths are dense (`dense_sizes`).
    pub solver: f64,
    /// The patterns and their targets.
    pub patterns: f64,
    /// One `eras` row per pattern per era, reserved up front.
    pub trace: f64,
}

impl Footprint {
    pub fn of(params: &Params) -> Footprint {
        let n = &params.network;
        let (nodes, edges) = network_size(params);
        let patterns = patterns_f64(params);
        let (solve, measure) = dense_sizes(params, nodes, edges);
        Footprint {
            network: NODE_BYTES * nodes + EDGE_BYTES * edges,
            solver: 8.0 * (2.0 * (solve * solve + nodes * solve) + 3.0 * measure * measure),
            patterns: patterns * (n.n_in as f64 + 32.0),
            trace: patterns
                * params.training.max_eras as f64
                * std::mem::size_of::<EraRead>() as f64,
        }
    }

    pub fn total(&self) -> f64 {
        self.network + self.solver + self.patterns + self.trace
    }

    /// What one record keeps until its chunk is written (the solver is
    /// per thread and the network is dropped with the instance, but the
    /// whole batch is set up before training, so both count).
    pub fn record(&self) -> f64 {
        self.network + self.patterns + self.trace
    }
}

/// The largest dense systems an instance of `params` can meet with the
/// default solver: the nodal solve's dense remainder (the split is taken
/// only where its `nd^3 / 6` is below the iterative path's estimate,
/// `model::circuit`) and the controllability measure's reduced Laplacian
/// (dense only where two factorisations cost less than the sparse path,
/// `protocol::measures`); each at most the node count.
fn dense_sizes(params: &Params, nodes: f64, edges: f64) -> (f64, f64) {
    let n = &params.network;
    // The split's factorisation costs nd^3 / 6, the measure's dense path
    // at least 2 n^3 / 3.
    let iterative = circuit::iterative_cost_estimate(2.0 * edges, nodes);
    let solve = (6.0 * iterative).cbrt().min(nodes);
    let nt = (n.n_in + n.n_out) as f64;
    let sparse = measures::sparse_measure_cost(edges, nt, nodes);
    let measure = (1.5 * sparse).cbrt().min(nodes);
    (solve, measure)
}

/// Nodes and a bound on the edge count of a network of `params`, as
/// `f64`: every possible edge of a layered network; for random_bulk the
/// Erdős–Rényi mean plus six standard deviations (never exceeded in
/// practice), capped at every pair; for nanowire every wire and
/// `nanowire::edge_bound` (the expected junctions plus six standard
/// deviations); for graph the file's counts.
pub(crate) fn network_size(params: &Params) -> (f64, f64) {
    let n = &params.network;
    let (n_in, n_out) = (n.n_in as f64, n.n_out as f64);
    match n.topology {
        Topology::Layered => {
            let hidden: f64 = n.hidden.iter().map(|&h| h as f64).sum();
            let mut widths = vec![n_in];
            widths.extend(n.hidden.iter().map(|&h| h as f64));
            widths.push(n_out);
            let mut edges: f64 = widths.windows(2).map(|w| w[0] * w[1]).sum();
            if n.skip > 0.0 {
                edges += n_in * n_out;
            }
            (n_in + hidden + n_out, edges)
        }
        Topology::RandomBulk => {
            let bulk = n.n_bulk as f64;
            let pairs = bulk * (bulk - 1.0).max(0.0) / 2.0;
            let p = n.p_bulk;
            let likely = pairs * p + 6.0 * (pairs * p * (1.0 - p)).sqrt();
            let edges = likely.min(pairs) + (n_in + n_out) * n.k_attach as f64;
            (n_in + bulk + n_out, edges)
        }
        Topology::Nanowire => (n.n_wires as f64, nanowire::edge_bound(n)),
        Topology::Graph => (params.n_nodes() as f64, params.max_edges() as f64),
    }
}

fn patterns_f64(params: &Params) -> f64 {
    params.training.n_patterns.unwrap_or(params.network.n_in) as f64
}

/// Refuses a grid point whose instances would need more than
/// `MAX_INSTANCE_BYTES`. `Err((field, reason))` names the field that asks
/// for most of it, its value, the memory and the limit.
pub fn check_memory(params: &Params) -> Result<(), (String, String)> {
    let f = Footprint::of(params);
    let total = f.total();
    if total <= MAX_INSTANCE_BYTES {
        return Ok(());
    }
    let t = &params.training;
    let (field, value) = if f.trace >= (f.network + f.solver).max(f.patterns) {
        if t.max_eras as f64 >= patterns_f64(params) {
            (
                "training.max_eras",
                format!("{} eras of {} patterns", t.max_eras, patterns_f64(params)),
            )
        } else {
            patterns_field(params)
        }
    } else if f.patterns >= f.network + f.solver {
        patterns_field(params)
    } else {
        network_field(params)
    };
    Err((
        field.to_string(),
        format!(
            "{value} would need {} per instance (network {}, nodal solve {}, patterns {}, era reads {}); \
             the limit is {}",
            bytes(total),
            bytes(f.network),
            bytes(f.solver),
            bytes(f.patterns),
            bytes(f.trace),
            bytes(MAX_INSTANCE_BYTES)
        ),
    ))
}

fn patterns_field(params: &Params) -> (&'static str, String) {
    match params.training.n_patterns {
        Some(p) => ("training.n_patterns", format!("{p} patterns")),
        None => (
            "network.n_in",
            format!("{} inputs (and as many patterns)", params.network.n_in),
        ),
    }
}

/// The network field with the most nodes, and its value in words.
fn network_field(params: &Params) -> (&'static str, String) {
    let n = &params.network;
    let (nodes, edges) = network_size(params);
    let size = format!("{} nodes and up to {} edges", count(nodes), count(edges));
    let hidden: f64 = match n.topology {
        Topology::Layered => n.hidden.iter().map(|&h| h as f64).sum(),
        Topology::RandomBulk => n.n_bulk as f64,
        Topology::Nanowire | Topology::Graph => params.n_hidden() as f64,
    };
    let (in_out, hidden_name) = (n.n_in.max(n.n_out) as f64, n.topology);
    if in_out >= hidden {
        let field = if n.n_in >= n.n_out {
            "network.n_in"
        } else {
            "network.n_out"
        };
        let value = n.n_in.max(n.n_out);
        return (field, format!("{value} ({size})"));
    }
    match hidden_name {
        Topology::Layered if n.hidden.len() <= 8 => {
            ("network.hidden", format!("{:?} ({size})", n.hidden))
        }
        Topology::Layered => (
            "network.hidden",
            format!(
                "{} layers of {} nodes in all ({size})",
                n.hidden.len(),
                count(hidden)
            ),
        ),
        Topology::RandomBulk => ("network.n_bulk", format!("{} ({size})", n.n_bulk)),
        Topology::Nanowire => ("network.n_wires", format!("{} ({size})", n.n_wires)),
        Topology::Graph => ("network.graph", format!("the graph file ({size})")),
    }
}

/// Instances per chunk: `requested`, fewer if their records would exceed
/// `CHUNK_BYTES`; at least 1.
pub fn chunk_size(requested: usize, footprints: impl Iterator<Item = Footprint>) -> usize {
    let largest = footprints.map(|f| f.record()).fold(0.0, f64::max);
    let fit = (CHUNK_BYTES / largest.max(1.0)).floor();
    if fit < requested as f64 {
        (fit as usize).max(1)
    } else {
        requested
    }
}

/// A count in full below 10^15, as `1.845e19` above.
fn count(x: f64) -> String {
    if x < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.3e}")
    }
}

/// A byte count as `1.5 GiB` (powers of 1024 named like ls -h).
pub fn bytes(x: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = x;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{x:.0} B")
    } else if x >= 1024.0 {
        format!("{x:.1e} {}", UNITS[unit])
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

/// Reads a small text file (a sweep file, `DIR/sweep.toml`): refuses what
/// is not a regular file (a device such as /dev/zero, a directory, a fifo)
/// and anything over `max_bytes`, before reading it, and reads at most
/// that many bytes whatever the file claims. `Err` is the reason.
pub fn read_small_file(path: &Path, max_bytes: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a sweep is a TOML text file)".into());
    }
    let too_big =
        |size: u64| format!("{size} bytes is more than a sweep file may hold ({max_bytes} bytes)");
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let file = File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut raw = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if raw.len() as u64 > max_bytes {
        return Err(too_big(raw.len() as u64));
    }
    String::from_utf8(raw).map_err(|_| "cannot read it: not UTF-8 text".to_string())
}
