//! `memsweep analyze SPEC`: the structure of every grid point without
//! training: nodes, edges, cycle-space dimension and controllability at the
//! initial state, averaged over the point's replicas. The co-design check a
//! hardware designer runs before fabricating.
//!
//! Each replica is the instance `run` would train (same seed, same
//! `Instance::build`), measured by `protocol::measures`.

use rayon::prelude::*;

use crate::instance::Instance;
use crate::protocol::measures;
use crate::sweep::{instance_seed, Spec};

/// Replica means of one grid point's structure.
#[derive(Clone, Debug, PartialEq)]
pub struct Structure {
    pub point: usize,
    /// Each varied field and its value here.
    pub varied: Vec<(String, String)>,
    pub replicas: usize,
    pub nodes: f64,
    pub edges: f64,
    /// `None` where `[measures]` switched the measure off.
    pub cycle_space_dim: Option<f64>,
    pub controllability: Option<f64>,
}

/// The structure of every grid point of `spec`, over its first `replicas`
/// replicas (the instances `run` would train first).
pub fn analyze(spec: &Spec, replicas: usize) -> Vec<Structure> {
    spec.points()
        .into_iter()
        .map(|point| {
            let wanted = &point.params.measures;
            // A measure switched off is NaN here and None in the result.
            let per_replica: Vec<[f64; 4]> = (0..replicas)
                .into_par_iter()
                .map(|replica| {
                    let seed = instance_seed(spec.seed, point.index, replica);
                    let inst = Instance::build(&point.params, point.index, replica, seed);
                    let net = &inst.network;
                    let alive = vec![true; net.n_edges()];
                    [
                        net.n_nodes() as f64,
                        net.n_edges() as f64,
                        match wanted.cycle_space {
                            true => measures::cycle_space_dim(net, &alive) as f64,
                            false => f64::NAN,
                        },
                        match wanted.controllability {
                            true => measures::controllability(
                                net,
                                &point.params,
                                &inst.devices.r0,
                                &alive,
                            ),
                            false => f64::NAN,
                        },
                    ]
                })
                .collect();
            let mean =
                |k: usize| per_replica.iter().map(|m| m[k]).sum::<f64>() / replicas.max(1) as f64;
            Structure {
                point: point.index,
                varied: point.varied,
                replicas,
                nodes: mean(0),
                edges: mean(1),
                cycle_space_dim: wanted.cycle_space.then(|| mean(2)),
                controllability: wanted.controllability.then(|| mean(3)),
            }
        })
        .collect()
}

/// The table `memsweep analyze` prints: one row per grid point.
pub fn table(rows: &[Structure]) -> String {
    let mut header = vec!["point".to_string()];
    if let Some(first) = rows.first() {
        header.extend(first.varied.iter().map(|(k, _)| k.clone()));
    }
    header.extend(
        [
            "replicas",
            "nodes",
            "edges",
            "cycle-space dim",
            "controllability",
        ]
        .map(String::from),
    );
    let mut cells = vec![header];
    for r in rows {
        let mut row = vec![r.point.to_string()];
        row.extend(r.varied.iter().map(|(_, v)| v.clone()));
        row.extend([
            r.replicas.to_string(),
            format!("{:.1}", r.nodes),
            format!("{:.1}", r.edges),
            r.cycle_space_dim.map_or("-".into(), |d| format!("{d:.1}")),
            r.controllability.map_or("-".into(), |c| format!("{c:.3}")),
        ]);
        cells.push(row);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
