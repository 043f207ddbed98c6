//! What a sweep will do, before it does it: the text `memsweep plan` prints
//! (points, instance count, an upper bound on the work) and the seed of every
//! instance.
//!
//! This module neither reads sweep files (`sweep::spec`) nor runs anything.

use std::fmt::Write;

use rayon::prelude::*;

use super::limits;
use super::spec::{Spec, SpecError};
use crate::model::network::Network;
use crate::params::{ModelKind, Params, Topology};

/// Upper bounds on the circuit work of some instances.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// Edge-state Euler updates: `replicas * max_eras * P * 2 pulses * n_sub
    /// * edges`, `edges` the most a network of the point has but for odds
    /// below six standard deviations (`limits::network_size`: every pair
    /// of a layered network, not every pair of a random one).
    pub memristor_updates: f64,
    /// Nodal solves: `replicas * max_eras * P * (1 read + 2 pulses * n_sub)`.
    /// The final read (`replicas * P` more) is left out.
    pub nodal_solves: f64,
}

/// The work of `replicas` instances of one grid point if every era of every
/// pattern were a mistake. Abstract-model points (MODEL.md section 11) do no
/// circuit work and count zero. Computed in `f64` so huge grids cannot
/// overflow.
pub fn work_bound(params: &Params, replicas: usize) -> Work {
    if params.training.model == ModelKind::Abstract {
        return Work::default();
    }
    let t = &params.training;
    let presentations = replicas as f64 * t.max_eras as f64 * params.n_patterns() as f64;
    let n_sub = t.n_sub as f64;
    Work {
        memristor_updates: presentations * 2.0 * n_sub * limits::network_size(params).1,
        nodal_solves: presentations * (1.0 + 2.0 * n_sub),
    }
}

/// The text `memsweep plan` prints: name, seed, replicas, a table of the grid
/// points with their varied values, the instance count and the work bound.
pub fn describe(spec: &Spec) -> String {
    let points = spec.points();
    let mut out = String::new();
    let _ = writeln!(out, "sweep {} ({})", spec.name, spec.file);
    let _ = writeln!(
        out,
        "seed {}, {} replicas per point, {} grid points, {} instances",
        spec.seed,
        spec.replicas,
        points.len(),
        spec.n_instances()
    );
    out.push('\n');

    let mut rows = vec![std::iter::once("point".to_string())
        .chain(spec.axes.iter().flat_map(|a| a.keys.iter().cloned()))
        .collect::<Vec<_>>()];
    rows.extend(points.iter().map(|p| {
        std::iter::once(p.index.to_string())
            .chain(p.varied.iter().map(|(_, v)| v.clone()))
            .collect()
    }));
    out.push_str(&table(&rows));
    out.push('\n');

    let total = points.iter().fold(Work::default(), |sum, p| {
        let w = work_bound(&p.params, spec.replicas);
        Work {
            memristor_updates: sum.memristor_updates + w.memristor_updates,
            nodal_solves: sum.nodal_solves + w.nodal_solves,
        }
    });
    let _ = writeln!(
        out,
        "work, at most: {} memristor updates, {} nodal solves",
        readable(total.memristor_updates),
        readable(total.nodal_solves)
    );
    out
}

/// The seed of one instance, from the sweep seed and the instance's identity
/// (grid point index, replica index) and never from its position in a batch,
/// thread, shard or backend (MODEL.md section 9).
///
/// Each part is folded in by a splitmix64 finalizer before the next is
/// xor-ed in, so nearby (point, replica) pairs get unrelated seeds and
/// swapping point and replica changes the seed.
pub fn instance_seed(sweep_seed: u64, point: usize, replica: usize) -> u64 {
    let h = crate::rng::mix64(sweep_seed);
    let h = crate::rng::mix64(h ^ point as u64);
    crate::rng::mix64(h ^ replica as u64)
}

/// Refuses a sweep with a nanowire instance whose largest connected
/// component is smaller than its terminals (MODEL.md section 1), among the
/// first `replicas` replicas of each point that `owned` accepts (by job
/// index `point * spec.replicas + replica`):
/// the first in job order, as one error on `network.wire_density` naming
/// its grid point, replica and seed. Builds the wiring of nanowire points
/// only (in parallel), so a run can refuse before it writes anything.
pub fn check_wiring(
    spec: &Spec,
    replicas: usize,
    owned: impl Fn(usize) -> bool + Sync,
) -> Result<(), SpecError> {
    for point in spec.points() {
        if point.params.network.topology != Topology::Nanowire {
            continue;
        }
        let failed = (0..replicas)
            .into_par_iter()
            .filter(|&r| owned(point.index * spec.replicas + r))
            .find_map_first(|replica| {
                let seed = instance_seed(spec.seed, point.index, replica);
                Network::try_generate(&point.params.network, seed)
                    .err()
                    .map(|e| (replica, e))
            });
        if let Some((replica, reason)) = failed {
            return Err(SpecError {
                file: spec.file.clone(),
                field: "network.wire_density".into(),
                reason: format!("grid point {}, replica {replica}: {reason}", point.index),
            });
        }
    }
    Ok(())
}

/// Left-aligned columns, two spaces apart; the first column right-aligned.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Counts below a million in full, larger ones as `1.2e9`.
fn readable(x: f64) -> String {
    if x < 1e6 {
        format!("{}", x as u64)
    } else {
        format!("{x:.1e}")
    }
}
