//! Random nanowire networks (MODEL.md section 1, `nanowire`): straight
//! wires dropped in a square box, a junction memristor wherever two cross,
//! the largest connected component kept and its terminals chosen by
//! position.
//!
//! Junctions are found on a uniform grid of cells at least one (longest)
//! wire long, so a wire only meets wires of its own and the neighbouring
//! cells: linear work in the wire count at a fixed density. Not here: node
//! numbering and polarity (`network`).

use crate::params::NetworkParams;
use crate::rng::{self, Stream};

/// One straight wire from `a` to `b`, micrometre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wire {
    pub a: [f64; 2],
    pub b: [f64; 2],
}

impl Wire {
    pub fn centre_x(&self) -> f64 {
        0.5 * (self.a[0] + self.b[0])
    }

    pub fn min_x(&self) -> f64 {
        self.a[0].min(self.b[0])
    }

    pub fn max_x(&self) -> f64 {
        self.a[0].max(self.b[0])
    }

    fn min_y(&self) -> f64 {
        self.a[1].min(self.b[1])
    }

    fn max_y(&self) -> f64 {
        self.a[1].max(self.b[1])
    }

    fn length(&self) -> f64 {
        (self.b[0] - self.a[0]).hypot(self.b[1] - self.a[1])
    }

    /// Whether the two segments share a point (touching counts).
    pub fn crosses(&self, o: &Wire) -> bool {
        let side = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| {
            (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        };
        let boxes_meet = self.min_x() <= o.max_x()
            && o.min_x() <= self.max_x()
            && self.min_y() <= o.max_y()
            && o.min_y() <= self.max_y();
        boxes_meet
            && side(self.a, self.b, o.a) * side(self.a, self.b, o.b) <= 0.0
            && side(o.a, o.b, self.a) * side(o.a, o.b, self.b) <= 0.0
    }
}

/// The side of the square box, micrometre: `sqrt(n_wires / wire_density)`.
pub fn box_side(p: &NetworkParams) -> f64 {
    (p.n_wires as f64 / p.wire_density).sqrt()
}

/// Drops `n_wires` wires from the instance's `Wires` stream: per wire, the
/// centre's x and y, the angle, then the length.
pub fn drop_wires(p: &NetworkParams, seed: u64) -> Vec<Wire> {
    use rand::Rng;
    let mut rng = rng::stream(seed, Stream::Wires);
    let side = box_side(p);
    (0..p.n_wires)
        .map(|_| {
            let cx = rng.random::<f64>() * side;
            let cy = rng.random::<f64>() * side;
            let angle = rng.random::<f64>() * std::f64::consts::PI;
            let length = if p.wire_length_std > 0.0 {
                rng::gamma(&mut rng, p.wire_length, p.wire_length_std)
            } else {
                p.wire_length
            };
            let (dx, dy) = (0.5 * length * angle.cos(), 0.5 * length * angle.sin());
            Wire {
                a: [cx - dx, cy - dy],
                b: [cx + dx, cy + dy],
            }
        })
        .collect()
}

/// Every crossing pair `(i, j)` with `i < j`, sorted.
///
/// Each wire is listed in every grid cell its bounding box touches (at most
/// four, since a cell is at least as long as any wire); a pair is tested
/// only in the cell holding the lower-left corner of the overlap of the two
/// bounding boxes, so once. The grid has at most about `n` cells.
pub fn junctions(wires: &[Wire]) -> Vec<(u32, u32)> {
    let n = wires.len();
    if n < 2 {
        return Vec::new();
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let mut longest: f64 = 0.0;
    for w in wires {
        x0 = x0.min(w.min_x());
        y0 = y0.min(w.min_y());
        x1 = x1.max(w.max_x());
        y1 = y1.max(w.max_y());
        longest = longest.max(w.length());
    }
    let extent = (x1 - x0).max(y1 - y0);
    let per_side = (n as f64).sqrt().ceil();
    let cell = longest.max(extent / per_side).max(f64::MIN_POSITIVE);
    let columns = ((x1 - x0) / cell).floor() as usize + 1;
    let rows = ((y1 - y0) / cell).floor() as usize + 1;
    let cell_of = |x: f64, y: f64| {
        let c = (((x - x0) / cell).floor() as usize).min(columns - 1);
        let r = (((y - y0) / cell).floor() as usize).min(rows - 1);
        (c, r)
    };

    // Wires of each cell in compressed rows: count, then fill.
    let spans: Vec<((usize, usize), (usize, usize))> = wires
        .iter()
        .map(|w| (cell_of(w.min_x(), w.min_y()), cell_of(w.max_x(), w.max_y())))
        .collect();
    let mut start = vec![0u32; columns * rows + 1];
    for &((c0, r0), (c1, r1)) in &spans {
        for r in r0..=r1 {
            for c in c0..=c1 {
                start[r * columns + c + 1] += 1;
            }
        }
    }
    for i in 0..columns * rows {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut members = vec![0u32; start[columns * rows] as usize];
    for (i, &((c0, r0), (c1, r1))) in spans.iter().enumerate() {
        for r in r0..=r1 {
            for c in c0..=c1 {
                let k = r * columns + c;
                members[fill[k] as usize] = i as u32;
                fill[k] += 1;
            }
        }
    }

    let mut pairs = Vec::new();
    for r in 0..rows {
        for c in 0..columns {
            let k = r * columns + c;
            let here = &members[start[k] as usize..start[k + 1] as usize];
            for (s, &i) in here.iter().enumerate() {
                let wi = &wires[i as usize];
                for &j in &here[s + 1..] {
                    let wj = &wires[j as usize];
                    let corner = cell_of(wi.min_x().max(wj.min_x()), wi.min_y().max(wj.min_y()));
                    if corner == (c, r) && wi.crosses(wj) {
                        pairs.push((i.min(j), i.max(j)));
                    }
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

/// The same pairs as `junctions` by testing every pair: the reference the
/// grid is checked against.
pub fn junctions_brute_force(wires: &[Wire]) -> Vec<(u32, u32)> {
    let mut pairs = Vec::new();
    for i in 0..wires.len() {
        for j in i + 1..wires.len() {
            if wires[i].crosses(&wires[j]) {
                pairs.push((i as u32, j as u32));
            }
        }
    }
    pairs
}

/// The wires of the largest connected component, in increasing order; on
/// a tie, the component of the lowest wire.
pub fn largest_component(n: usize, pairs: &[(u32, u32)]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for &(i, j) in pairs {
        let (a, b) = (root(&mut parent, i as usize), root(&mut parent, j as usize));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut size = vec![0usize; n];
    let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    for &r in &roots {
        size[r] += 1;
    }
    // Roots are the lowest wire of their component, so the first maximum
    // is the component of the lowest wire.
    let best = (0..n).fold(0, |b, r| if size[r] > size[b] { r } else { b });
    (0..n).filter(|&i| roots[i] == best).collect()
}

/// A network built from a nanowire instance: which wire each node is,
/// how many are hidden, and the junctions between nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// The wire of each node: inputs, then bulk, then outputs.
    pub wire: Vec<usize>,
    pub n_hidden: usize,
    /// `(tail, head)` per junction, as node indices, sorted.
    pub edges: Vec<(u32, u32)>,
}

/// The largest component had too few wires for the terminals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    pub largest: usize,
    pub needed: usize,
}

/// Drops the wires of an instance, keeps the largest component and numbers
/// its wires: the `n_in` wires with the smallest left end are the inputs
/// (leftmost first), of the rest the `n_out` with the largest right end
/// the outputs (rightmost first), the others bulk in the order they were
/// dropped. A junction points from the wire whose centre has the smaller x
/// (the lower wire index on a tie) to the other.
pub fn build(p: &NetworkParams, seed: u64) -> Result<Built, TooSmall> {
    let wires = drop_wires(p, seed);
    let pairs = junctions(&wires);
    let kept = largest_component(wires.len(), &pairs);
    let needed = p.n_in + p.n_out;
    if kept.len() < needed {
        return Err(TooSmall {
            largest: kept.len(),
            needed,
        });
    }
    let by = |key: fn(&Wire) -> f64, list: &mut Vec<usize>| {
        list.sort_by(|&i, &j| key(&wires[i]).total_cmp(&key(&wires[j])).then(i.cmp(&j)));
    };
    let mut rest = kept;
    by(Wire::min_x, &mut rest);
    let inputs: Vec<usize> = rest.drain(..p.n_in).collect();
    by(|w| -w.max_x(), &mut rest);
    let outputs: Vec<usize> = rest.drain(..p.n_out).collect();
    rest.sort_unstable();
    let n_hidden = rest.len();
    let wire: Vec<usize> = inputs.into_iter().chain(rest).chain(outputs).collect();

    let mut node_of = vec![u32::MAX; wires.len()];
    for (node, &w) in wire.iter().enumerate() {
        node_of[w] = node as u32;
    }
    let mut edges: Vec<(u32, u32)> = pairs
        .iter()
        .filter(|&&(i, _)| node_of[i as usize] != u32::MAX)
        .map(|&(i, j)| {
            let (i, j) = (i as usize, j as usize);
            // i < j, so a tie in centre x leaves the lower wire as tail.
            if wires[j].centre_x() < wires[i].centre_x() {
                (node_of[j], node_of[i])
            } else {
                (node_of[i], node_of[j])
            }
        })
        .collect();
    edges.sort_unstable();
    Ok(Built {
        wire,
        n_hidden,
        edges,
    })
}

/// The percolation threshold of sticks of the mean length, wires per
/// square micrometre: `N_c l^2 = 5.637` (Li and Zhang, PRE 2009).
pub fn percolation_density(p: &NetworkParams) -> f64 {
    5.637 / (p.wire_length * p.wire_length)
}

/// The junctions expected of `n_wires` wires, ignoring the box edges (which
/// only lose some): two wires of lengths `a`, `b` at a uniform angle cross
/// with probability `2 a b / (pi L^2)`, so the mean is
/// `(n - 1) wire_density wire_length^2 / pi`.
pub fn expected_edges(p: &NetworkParams) -> f64 {
    let n = p.n_wires as f64;
    (n - 1.0).max(0.0) * p.wire_density * p.wire_length * p.wire_length / std::f64::consts::PI
}

/// A bound on a network's junction count that no instance reaches in
/// practice: the mean plus six standard deviations of a count whose
/// variance is inflated by the mean degree (junctions share wires), at most
/// every pair.
pub fn edge_bound(p: &NetworkParams) -> f64 {
    let n = p.n_wires as f64;
    let mean = expected_edges(p);
    let degree = 2.0 * mean / n.max(1.0);
    let pairs = n * (n - 1.0).max(0.0) / 2.0;
    (mean + 6.0 * (mean * (1.0 + degree)).sqrt() + 1.0)
        .ceil()
        .min(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn crossing_is_symmetric_and_needs_overlap() {
        let w = |a: [f64; 2], b: [f64; 2]| Wire { a, b };
        let h = w([0.0, 0.0], [2.0, 0.0]);
        let v = w([1.0, -1.0], [1.0, 1.0]);
        let far = w([3.0, -1.0], [3.0, 1.0]);
        assert!(h.crosses(&v) && v.crosses(&h));
        assert!(!h.crosses(&far) && !far.crosses(&h));
    }

    #[test]
    fn the_edge_bound_holds_over_many_instances() {
        let p = Params::default().network;
        let bound = edge_bound(&p);
        for seed in 0..200 {
            let wires = drop_wires(&p, seed);
            assert!((junctions(&wires).len() as f64) < bound);
        }
    }
}
