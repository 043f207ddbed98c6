//! Structure and control measures of an instance (MODEL.md section 8):
//! cycle-space dimension, controllability and final contrast.
//!
//! These run on the CPU in f64 whatever backend trained the instance: they
//! are computed twice per instance (initial and final state), not in the
//! training loop.

use crate::lanes;
use crate::model::circuit::{Boundary, Solver};
use crate::model::network::{Adjacency, Network};
use crate::params::Params;
use crate::real::Real;

/// Relative cut-off of the numerical rank (MODEL.md section 8).
pub const RANK_REL_TOL: f64 = 1e-9;

/// Dimension of the cycle space `M - N + c` of the network with a ground
/// node wired to every input and output: the alive memristors plus those
/// wires are the edges, the network's nodes plus ground are the nodes, and
/// `c` counts connected components (isolated nodes included).
pub fn cycle_space_dim(net: &Network, alive: &[bool]) -> usize {
    let n = net.n_nodes();
    let ground = n;
    let mut uf = UnionFind::new(n + 1);
    let mut m = 0;
    for e in 0..net.n_edges() {
        if alive[e] {
            uf.union(net.tail[e] as usize, net.head[e] as usize);
            m += 1;
        }
    }
    let terminals = (0..net.n_in).chain((0..net.n_out).map(|o| net.output_node(o)));
    for node in terminals {
        uf.union(node, ground);
        m += 1;
    }
    m + uf.components() - (n + 1)
}

/// Controllability: the numerical rank of the matrix whose columns are the
/// alive edges' voltage vectors under every single-input punish
/// configuration and the normalize configuration, divided by the number of
/// alive edges `M` (0 when none is alive).
///
/// The `M x K` matrix is `S A^T X` (polarity `S`, incidence `A`, node
/// voltages `X`). Its singular values equal those of the small matrix
/// `C^T X_r`: `X_r` is `X` with one reference node per connected component
/// subtracted and removed, and `C C^T` is the Cholesky factorisation of the
/// correspondingly reduced unweighted Laplacian. This keeps the cost at
/// `O(N^2 K)` instead of `O(M K^2)`.
pub fn controllability(
    net: &Network,
    adj: &Adjacency,
    params: &Params,
    r: &[f64],
    alive: &[bool],
) -> f64 {
    let m = alive.iter().filter(|&&a| a).count();
    if m == 0 {
        return 0.0;
    }
    let x = configuration_voltages(net, adj, params, r, alive);
    let n = net.n_nodes();
    let k = x.len();
    // One reference node per component of the alive network (no ground).
    let mut uf = UnionFind::new(n);
    for e in 0..net.n_edges() {
        if alive[e] {
            uf.union(net.tail[e] as usize, net.head[e] as usize);
        }
    }
    let mut reduced_index = vec![usize::MAX; n];
    let mut kept = Vec::new();
    for i in 0..n {
        if uf.find(i) != i {
            reduced_index[i] = kept.len();
            kept.push(i);
        }
    }
    let nr = kept.len();
    let mut lap = vec![0.0; nr * nr];
    for e in 0..net.n_edges() {
        if !alive[e] {
            continue;
        }
        let (a, b) = (
            reduced_index[net.tail[e] as usize],
            reduced_index[net.head[e] as usize],
        );
        if a != usize::MAX {
            lap[a * nr + a] += 1.0;
        }
        if b != usize::MAX {
            lap[b * nr + b] += 1.0;
        }
        if a != usize::MAX && b != usize::MAX {
            lap[a * nr + b] -= 1.0;
            lap[b * nr + a] -= 1.0;
        }
    }
    cholesky_factor(&mut lap, nr, nr, nr, &mut vec![0.0; nr]);
    // y[c][a] = sum_b C[b][a] * (x[c][kept[b]] - x[c][ref(kept[b])]), C lower.
    let mut cols = vec![0.0; k * nr];
    for (c, xc) in x.iter().enumerate() {
        for a in 0..nr {
            let mut s = 0.0;
            for b in a..nr {
                let node = kept[b];
                s += lap[b * nr + a] * (xc[node] - xc[uf.find(node)]);
            }
            cols[c * nr + a] = s;
        }
    }
    // Orthogonalise along the smaller dimension.
    let sv = if k <= nr {
        singular_values(&mut cols, k, nr)
    } else {
        let mut rows = vec![0.0; k * nr];
        for c in 0..k {
            for a in 0..nr {
                rows[a * k + c] = cols[c * nr + a];
            }
        }
        singular_values(&mut rows, nr, k)
    };
    let largest = sv.iter().cloned().fold(0.0, f64::max);
    let rank = sv.iter().filter(|&&s| s > RANK_REL_TOL * largest).count();
    rank as f64 / m as f64
}

/// Node voltages of every single-input punish configuration (input `i` at
/// `-v_punish`, output `o` grounded, everything else floating), then the
/// normalize configuration.
fn configuration_voltages(
    net: &Network,
    adj: &Adjacency,
    params: &Params,
    r: &[f64],
    alive: &[bool],
) -> Vec<Vec<f64>> {
    let n = net.n_nodes();
    let g: Vec<f64> = r
        .iter()
        .zip(alive)
        .map(|(&r, &a)| if a { 1.0 / r } else { 0.0 })
        .collect();
    let mut solver = Solver::new(n);
    let mut boundary = Boundary::floating(n);
    let mut out = Vec::with_capacity(net.n_in * net.n_out + 1);
    let t = &params.training;
    let mut solve = |boundary: &Boundary<f64>| {
        let mut v = vec![0.0; n];
        solver.prepare(adj, alive, boundary);
        solver.solve(net, adj, &g, params.circuit.gmin, boundary, &mut v);
        v
    };
    for i in 0..net.n_in {
        for o in 0..net.n_out {
            let mut active = vec![false; net.n_in];
            active[i] = true;
            crate::protocol::phase::punish(net, &active, o, t.v_punish, &mut boundary);
            out.push(solve(&boundary));
        }
    }
    crate::protocol::phase::normalize(net, t.v_norm, &mut boundary);
    out.push(solve(&boundary));
    out
}

/// Singular values of the matrix whose `n_vec` columns, each of length
/// `len`, are stored one after another in `a` (one-sided Jacobi; `a` is
/// overwritten). One-sided Jacobi keeps small singular values to high
/// relative accuracy, which a rank cut at 1e-9 needs.
pub fn singular_values(a: &mut [f64], n_vec: usize, len: usize) -> Vec<f64> {
    for _sweep in 0..80 {
        let mut rotated = false;
        for p in 0..n_vec {
            for q in p + 1..n_vec {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for i in 0..len {
                    let (x, y) = (a[p * len + i], a[q * len + i]);
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for i in 0..len {
                    let (x, y) = (a[p * len + i], a[q * len + i]);
                    a[p * len + i] = c * x - s * y;
                    a[q * len + i] = s * x + c * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    (0..n_vec)
        .map(|p| {
            a[p * len..(p + 1) * len]
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// Final contrast: per pattern, the target's current over the largest other
/// output's current, geometric mean over patterns. Currents are floored at
/// `gmin * v_read`, the leak scale below which an ammeter reading means
/// nothing, so a disconnected output gives a finite ratio. `None` for no
/// patterns.
pub fn contrast(currents: &[Vec<f64>], target: &[usize], floor: f64) -> Option<f64> {
    if currents.is_empty() {
        return None;
    }
    let mut log_sum = 0.0;
    for (k, c) in currents.iter().enumerate() {
        let t = target[k];
        let rival = c
            .iter()
            .enumerate()
            .filter(|&(o, _)| o != t)
            .map(|(_, &x)| x)
            .fold(f64::NEG_INFINITY, f64::max);
        log_sum += (c[t].max(floor) / rival.max(floor)).ln();
    }
    Some((log_sum / currents.len() as f64).exp())
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the sets of `a` and `b`; the smaller index stays the root, so
    /// the root of each set is its lowest node.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }

    fn components(&mut self) -> usize {
        (0..self.parent.len())
            .filter(|&i| self.find(i) == i)
            .count()
    }
}

/// Overwrite the lower triangle of the symmetric positive definite `a`
/// (`n x n`, row-major with row stride `stride >= n`) with `L`, where
/// `A = L L^T`, and carry rows `n..rows` (each a right-hand side `b^T`)
/// through the same elimination, which turns them into `(L^{-1} b)^T`.
/// Only the lower triangle is read; entries right of the diagonal are
/// overwritten with values of no meaning. `column` is scratch of at least
/// `stride` finite values.
///
/// Right-looking: after each pivot, the trailing rows are updated by runs
/// of whole blocks (which vectorise), using a copy of the pivot's column.
#[inline(always)]
fn cholesky_factor<F: Real>(a: &mut [F], n: usize, rows: usize, stride: usize, column: &mut [F]) {
    for j in 0..n {
        let d = a[j * stride + j].sqrt();
        a[j * stride + j] = d;
        let inv = F::ONE / d;
        for i in j + 1..rows {
            a[i * stride + j] *= inv;
            column[i] = a[i * stride + j];
        }
        for i in j + 1..rows {
            let width = lanes::round_up(i.min(n - 1) + 1 - (j + 1)).min(stride - j - 1);
            let row = i * stride + j + 1;
            lanes::sub_scaled(
                &mut a[row..row + width],
                column[i],
                &column[j + 1..j + 1 + width],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_values_of_a_rank_one_matrix() {
        // columns (1,2,3) and (2,4,6): rank one, sigma = sqrt(14 * 5)
        let mut a = vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0];
        let mut sv = singular_values(&mut a, 2, 3);
        sv.sort_by(|a, b| b.partial_cmp(a).unwrap());
        assert!((sv[0] - 70f64.sqrt()).abs() < 1e-12);
        assert!(sv[1] < 1e-12);
    }

    #[test]
    fn contrast_is_the_geometric_mean_of_target_over_rival() {
        let c = vec![vec![2.0, 1.0], vec![1.0, 8.0]];
        let got = contrast(&c, &[0, 1], 1e-15).unwrap();
        assert!((got - 4.0).abs() < 1e-12);
    }
}
