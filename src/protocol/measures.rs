//! Structure and control measures of an instance (MODEL.md section 8):
//! cycle-space dimension, controllability and final contrast.
//!
//! These run on the CPU in f64 whatever backend trained the instance: they
//! are computed twice per instance (initial and final state), not in the
//! training loop.

use crate::lanes;
use crate::lanes::Isa;
use crate::model::circuit::CgVectors;
use crate::model::network::Network;
use crate::model::sliced::{self, ColouredRows};
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
/// configuration and the normalize configuration, solved without the `gmin`
/// leak, divided by the number of alive edges `M` (0 when none is alive).
///
/// The `M x K` matrix is `S A^T X` (polarity `S`, incidence `A`, node
/// voltages `X`, `K = n_in n_out + 1`), and by superposition
/// `X = Phi T` (`ControlMatrix`): a configuration's voltages are those of
/// the currents it draws through the terminals. So the rank is at most the
/// number of terminals, and the singular values are found in three small
/// steps, none of them as large as the `M x K` matrix:
/// - `B = C^T Phi`, with `C C^T` the Cholesky factorisation of the reduced
///   unweighted Laplacian `A A^T`, has the Gram matrix of `S A^T Phi`;
/// - `B = Q R` (Householder), so `S A^T X` has the singular values of `R T`,
///   a terminals-by-`K` matrix;
/// - a Householder QR with column pivoting of `(R T)^T` stops once what is
///   left is below a thousandth of the rank cut, and one-sided Jacobi gives
///   the singular values of the rows it kept, to the relative accuracy the
///   `1e-9` cut needs.
pub fn controllability(net: &Network, params: &Params, r: &[f64], alive: &[bool]) -> f64 {
    let m = alive.iter().filter(|&&a| a).count();
    if m == 0 {
        return 0.0;
    }
    let sv = ControlMatrix::new(net, params, r, alive).singular_values(net, alive);
    numerical_rank(&sv) as f64 / m as f64
}

/// The number of singular values above `RANK_REL_TOL` times the largest.
fn numerical_rank(sv: &[f64]) -> usize {
    let largest = sv.iter().cloned().fold(0.0, f64::max);
    sv.iter().filter(|&&s| s > RANK_REL_TOL * largest).count()
}

/// The node voltages of the controllability configurations, without the
/// `gmin` leak, as `Phi T`.
///
/// Only the alive components that hold an input and an output carry edge
/// voltages: in any other one every node sits at the one voltage its
/// terminals share, or at 0 V. Each such component has its first output as
/// reference, at 0 V, and every other node of it is a node of the reduced
/// system. `Phi` holds the potentials (volt per ampere) of a unit current
/// injected at each other terminal of these components and drawn out at its
/// reference; `T` holds the currents (ampere) each configuration draws:
/// `-v_punish / R_eff` in at input `i` and out at output `o` for the punish
/// pair `(i, o)` (nothing if they are not joined), and for normalize the
/// currents that hold the inputs at `v_norm` and the outputs at 0 V.
struct ControlMatrix {
    /// Reduced index of each node (`usize::MAX`: not in the reduced system).
    index: Vec<usize>,
    n_reduced: usize,
    /// The terminals with an unknown potential (every terminal of those
    /// components but their references), in node order.
    n_terminals: usize,
    /// `Phi`, row-major `n_reduced x n_terminals`.
    potentials: Vec<f64>,
    /// `T`, one column of `n_terminals` currents per configuration (`i`
    /// outer, `o` inner, then normalize), one after another.
    currents: Vec<f64>,
    /// How `Phi` and the Gram factor are computed.
    path: MeasurePath,
}

/// How `ControlMatrix` computes: with dense `n_reduced x n_reduced`
/// factorisations (small or dense networks), or with conjugate-gradient
/// solves and a QR of the edge voltages of each unit current (large
/// sparse ones, whose memory and time then grow with the edge count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MeasurePath {
    Dense,
    Sparse,
}

impl MeasurePath {
    /// The cheaper by estimated operations: two dense factorisations
    /// against a QR of the `M x terminals` edge voltages and some 50
    /// conjugate-gradient iterations per terminal.
    fn choose(n_reduced: usize, m: usize, nt: usize) -> MeasurePath {
        let (n, nt) = (n_reduced as f64, nt as f64);
        let dense = 2.0 * n.powi(3) / 3.0 + n * n * nt;
        if sparse_measure_cost(m as f64, nt, n) < dense {
            MeasurePath::Sparse
        } else {
            MeasurePath::Dense
        }
    }
}

/// Estimated operations of the sparse path for `m` alive edges, `nt`
/// terminals and `n_reduced` nodes: a QR of the `m x nt` edge voltages and
/// some 50 conjugate-gradient iterations per terminal. Also the memory
/// limit's bound on the dense path's size (`sweep::limits`).
pub(crate) fn sparse_measure_cost(m: f64, nt: f64, n_reduced: f64) -> f64 {
    2.0 * m * nt * nt + nt * 50.0 * (4.0 * m + 10.0 * n_reduced)
}

impl ControlMatrix {
    fn new(net: &Network, params: &Params, r: &[f64], alive: &[bool]) -> ControlMatrix {
        Self::with_path(net, params, r, alive, None)
    }

    /// As `new`, on the path given (`None`: the cheaper).
    fn with_path(
        net: &Network,
        params: &Params,
        r: &[f64],
        alive: &[bool],
        path: Option<MeasurePath>,
    ) -> ControlMatrix {
        let n = net.n_nodes();
        let mut uf = UnionFind::new(n);
        for e in 0..net.n_edges() {
            if alive[e] {
                uf.union(net.tail[e] as usize, net.head[e] as usize);
            }
        }
        let root: Vec<usize> = (0..n).map(|i| uf.find(i)).collect();
        let outputs: Vec<usize> = (0..net.n_out).map(|o| net.output_node(o)).collect();
        let mut has_input = vec![false; n];
        for i in 0..net.n_in {
            has_input[root[i]] = true;
        }
        // Per component root: its reference output, if it has an input.
        let mut reference = vec![usize::MAX; n];
        for &o in &outputs {
            if has_input[root[o]] && reference[root[o]] == usize::MAX {
                reference[root[o]] = o;
            }
        }
        let mut index = vec![usize::MAX; n];
        let mut n_reduced = 0;
        for i in 0..n {
            let reference = reference[root[i]];
            if reference != usize::MAX && reference != i {
                index[i] = n_reduced;
                n_reduced += 1;
            }
        }
        let terminals: Vec<usize> = (0..net.n_in)
            .chain(outputs.iter().copied())
            .filter(|&t| index[t] != usize::MAX)
            .collect();
        let nt = terminals.len();
        let mut slot = vec![usize::MAX; n];
        for (s, &t) in terminals.iter().enumerate() {
            slot[t] = s;
        }

        let m = alive.iter().filter(|&&a| a).count();
        let path = path.unwrap_or_else(|| MeasurePath::choose(n_reduced, m, nt));
        let mut unit = vec![0.0; nt * n_reduced];
        for (s, &t) in terminals.iter().enumerate() {
            unit[s * n_reduced + index[t]] = 1.0;
        }
        let potentials = match path {
            MeasurePath::Dense => {
                let laplacian = reduced_laplacian(net, alive, &index, n_reduced, |e| 1.0 / r[e]);
                solve_spd(&laplacian, n_reduced, &unit, nt)
            }
            MeasurePath::Sparse => {
                let rows = ReducedRows::new(net, alive, &index, n_reduced);
                let mut phi = vec![0.0; n_reduced * nt];
                for s in 0..nt {
                    let x = rows.solve(r, &unit[s * n_reduced..(s + 1) * n_reduced]);
                    for (a, &x) in x.iter().enumerate() {
                        phi[a * nt + s] = x;
                    }
                }
                phi
            }
        };
        // Terminal-to-terminal transfer resistance, ohm (0 at a reference).
        let z = |a: usize, b: usize| {
            if a == usize::MAX || b == usize::MAX {
                0.0
            } else {
                potentials[index[terminals[a]] * nt + b]
            }
        };

        let t = &params.training;
        let k = net.n_in * net.n_out + 1;
        let mut currents = vec![0.0; k * nt];
        for i in 0..net.n_in {
            for (o, &out) in outputs.iter().enumerate() {
                if index[i] == usize::MAX || root[i] != root[out] {
                    continue;
                }
                let (si, so) = (slot[i], slot[out]);
                let r_eff = z(si, si) - 2.0 * z(si, so) + z(so, so);
                let column = &mut currents[(i * net.n_out + o) * nt..][..nt];
                column[si] -= t.v_punish / r_eff;
                if so != usize::MAX {
                    column[so] += t.v_punish / r_eff;
                }
            }
        }
        // Normalize: the currents whose potentials are `v_norm` at the
        // inputs and 0 at the outputs. `Z` is block diagonal over the
        // components, so one solve serves them all.
        let transfer: Vec<f64> = (0..nt * nt).map(|ab| z(ab / nt, ab % nt)).collect();
        let volts: Vec<f64> = terminals
            .iter()
            .map(|&node| if node < net.n_in { t.v_norm } else { 0.0 })
            .collect();
        let normalize = solve_spd(&transfer, nt, &volts, 1);
        currents[(k - 1) * nt..].copy_from_slice(&normalize);

        ControlMatrix {
            index,
            n_reduced,
            n_terminals: nt,
            potentials,
            currents,
            path,
        }
    }

    /// The singular values of the `M x K` edge-voltage matrix (see
    /// `controllability`), less those the pivoted QR found negligible.
    fn singular_values(&self, net: &Network, alive: &[bool]) -> Vec<f64> {
        let (nr, nt) = (self.n_reduced, self.n_terminals);
        if nt == 0 {
            return Vec::new();
        }
        let k = self.currents.len() / nt;
        let (steps, r) = match self.path {
            MeasurePath::Dense => {
                let mut c = reduced_laplacian(net, alive, &self.index, nr, |_| 1.0);
                cholesky_factor(&mut c, nr, nr, nr, &mut vec![0.0; nr]);
                // B = C^T Phi, C lower triangular; stored by columns for the QR.
                let mut b_rows = vec![0.0; nr * nt];
                for row in 0..nr {
                    let phi = &self.potentials[row * nt..(row + 1) * nt];
                    for a in 0..=row {
                        let l = c[row * nr + a];
                        if l != 0.0 {
                            for (x, &p) in b_rows[a * nt..(a + 1) * nt].iter_mut().zip(phi) {
                                *x += l * p;
                            }
                        }
                    }
                }
                let mut b = transpose(&b_rows, nr, nt);
                pivoted_qr(&mut b, nt, nr, 0.0)
            }
            MeasurePath::Sparse => {
                // The edge voltages of each unit current, `A^T Phi` (a
                // node outside the reduced system is at 0 V): they have
                // the Gram matrix `B^T B` of the dense path.
                let edges: Vec<usize> = (0..net.n_edges()).filter(|&e| alive[e]).collect();
                let m = edges.len();
                let mut columns = vec![0.0; nt * m];
                let phi = |node: usize, s: usize| match self.index[node] {
                    usize::MAX => 0.0,
                    a => self.potentials[a * nt + s],
                };
                for s in 0..nt {
                    for (j, &e) in edges.iter().enumerate() {
                        let (u, v) = (net.tail[e] as usize, net.head[e] as usize);
                        columns[s * m + j] = phi(u, s) - phi(v, s);
                    }
                }
                pivoted_qr(&mut columns, nt, m, 0.0)
            }
        };
        // (R T)^T, by columns: row j of R T, for every configuration.
        let mut rt = vec![0.0; steps * k];
        for j in 0..steps {
            let r_j = &r[j * nt..(j + 1) * nt];
            for (c, x) in rt[j * k..(j + 1) * k].iter_mut().enumerate() {
                let t_c = &self.currents[c * nt..(c + 1) * nt];
                *x = r_j.iter().zip(t_c).map(|(a, b)| a * b).sum();
            }
        }
        let largest = (0..steps)
            .map(|j| rt[j * k..(j + 1) * k].iter().map(|x| x * x).sum::<f64>())
            .fold(0.0, f64::max)
            .sqrt();
        let (rank, mut kept) = pivoted_qr(&mut rt, steps, k, 1e-3 * RANK_REL_TOL * largest);
        singular_values(&mut kept, rank, steps)
    }
}

/// The reduced Laplacian of `reduced_laplacian`, sparse: the reduced
/// nodes in colour order (`sliced::colour_runs`; `order[a]` is the reduced
/// node of row `a`), each row's links to other rows, and every alive edge
/// at a reduced node for the diagonal.
struct ReducedRows {
    n: usize,
    order: Vec<usize>,
    rows: ColouredRows,
    /// Per reduced node, the alive edges at it (`edge_start` rows).
    edge_start: Vec<u32>,
    edges: Vec<u32>,
}

impl ReducedRows {
    fn new(net: &Network, alive: &[bool], index: &[usize], n: usize) -> ReducedRows {
        let mut at: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
        for e in 0..net.n_edges() {
            if !alive[e] {
                continue;
            }
            let (a, b) = (index[net.tail[e] as usize], index[net.head[e] as usize]);
            if a != usize::MAX {
                at[a].push((e as u32, b));
            }
            if b != usize::MAX {
                at[b].push((e as u32, a));
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        let runs = sliced::Colouring::default().runs(&mut order, n, 256, |a| {
            at[a]
                .iter()
                .filter(move |&&(_, other)| other != usize::MAX && other != a)
                .map(|&(_, other)| other)
        });
        let mut row_of = vec![0; n];
        for (row, &a) in order.iter().enumerate() {
            row_of[a] = row;
        }
        let mut rows = ReducedRows {
            n,
            order,
            rows: ColouredRows::default(),
            edge_start: Vec::with_capacity(n + 1),
            edges: Vec::new(),
        };
        for list in &at {
            rows.edge_start.push(rows.edges.len() as u32);
            rows.edges.extend(list.iter().map(|&(e, _)| e));
        }
        rows.edge_start.push(rows.edges.len() as u32);
        let order = &rows.order;
        rows.rows.push_component(&runs, |row| {
            at[order[row]]
                .iter()
                .filter(|&&(_, other)| other != usize::MAX)
                .map(|&(e, other)| (row_of[other] as u32, e))
        });
        rows
    }

    /// The potentials `x` of `L x = b` with the conductances `1 / r` of
    /// the alive edges, by conjugate gradients (`circuit::CgVectors`) to a
    /// relative residual of 1e-13.
    fn solve(&self, r: &[f64], b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let diag: Vec<f64> = (self.order.iter())
            .map(|&a| {
                self.edges[self.edge_start[a] as usize..self.edge_start[a + 1] as usize]
                    .iter()
                    .map(|&e| 1.0 / r[e as usize])
                    .sum()
            })
            .collect();
        let link_g = |via: &[u32]| {
            via.iter()
                .map(|&e| r.get(e as usize).map_or(0.0, |r| 1.0 / r))
                .collect()
        };
        let (lower_g, upper_g) = (link_g(self.rows.lower.via()), link_g(self.rows.upper.via()));
        let b = self.order.iter().map(|&a| b[a]).collect();
        let mut cg = CgVectors::laplacian(diag, lower_g, upper_g, b);
        // (The cap is never met on a connected reduced system; a capped
        // solve would still be the best iterate.)
        let chunks = 0..self.rows.n_chunks();
        let _ = cg.solve(Isa::detect(), &self.rows, chunks, 0..n, 1e-13);
        let mut x = vec![0.0; n];
        for (row, &a) in self.order.iter().enumerate() {
            x[a] = cg.x[row];
        }
        x
    }
}

/// The Laplacian `A diag(w) A^T` of the alive edges on the nodes that have
/// an `index` (row-major, `n x n`, both triangles). An edge from such a node
/// to one without (a reference at 0 V) adds to its diagonal only.
fn reduced_laplacian(
    net: &Network,
    alive: &[bool],
    index: &[usize],
    n: usize,
    weight: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let mut lap = vec![0.0; n * n];
    for e in 0..net.n_edges() {
        if !alive[e] {
            continue;
        }
        let w = weight(e);
        let (a, b) = (index[net.tail[e] as usize], index[net.head[e] as usize]);
        if a != usize::MAX {
            lap[a * n + a] += w;
        }
        if b != usize::MAX {
            lap[b * n + b] += w;
        }
        if a != usize::MAX && b != usize::MAX {
            lap[a * n + b] -= w;
            lap[b * n + a] -= w;
        }
    }
    lap
}

/// The solution `X` (row-major `n x n_rhs`) of `A X = B` for the symmetric
/// positive definite `a` (row-major `n x n`, lower triangle read) and the
/// right-hand sides in `rhs` (`n_rhs` rows of `n`, one per column of `B`).
fn solve_spd(a: &[f64], n: usize, rhs: &[f64], n_rhs: usize) -> Vec<f64> {
    let rows = n + n_rhs;
    let mut work = vec![0.0; rows * n];
    work[..n * n].copy_from_slice(a);
    work[n * n..].copy_from_slice(rhs);
    cholesky_factor(&mut work, n, rows, n, &mut vec![0.0; rows]);
    // Rows n.. now hold (L^-1 B)^T; solve L^T X = L^-1 B from the bottom.
    let mut x = transpose(&work[n * n..], n_rhs, n);
    for k in (0..n).rev() {
        let (above, from_k) = x.split_at_mut(k * n_rhs);
        let x_k = &mut from_k[..n_rhs];
        let d = work[k * n + k];
        x_k.iter_mut().for_each(|v| *v /= d);
        for i in 0..k {
            let l = work[k * n + i];
            if l != 0.0 {
                lanes::sub_scaled(&mut above[i * n_rhs..(i + 1) * n_rhs], l, x_k);
            }
        }
    }
    x
}

/// The `cols x rows` transpose of the row-major `rows x cols` matrix `a`.
fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

/// Householder QR with column pivoting of the matrix whose `n_cols` columns,
/// each of length `len`, lie one after another in `a` (overwritten): `A P =
/// Q R`. Each step takes the column with the largest remaining norm; it
/// stops when the Frobenius norm of what remains is at most `stop`, which
/// then bounds every singular value it leaves out. Returns the number of
/// steps `r` and the rows of `R P^T` (`r x n_cols`, row-major, columns in
/// their original order), which has the singular values of `A` less those.
fn pivoted_qr(a: &mut [f64], n_cols: usize, len: usize, stop: f64) -> (usize, Vec<f64>) {
    let mut order: Vec<usize> = (0..n_cols).collect();
    let mut norms = vec![0.0; n_cols];
    let mut r = Vec::new();
    let mut steps = 0;
    while steps < n_cols.min(len) {
        let j = steps;
        for (p, norm) in norms.iter_mut().enumerate().skip(j) {
            *norm = a[p * len + j..(p + 1) * len].iter().map(|x| x * x).sum();
        }
        let remaining: f64 = norms[j..].iter().sum();
        if remaining.sqrt() <= stop {
            break;
        }
        let pivot = (j..n_cols)
            .max_by(|&p, &q| norms[p].total_cmp(&norms[q]))
            .expect("a column remains");
        if pivot != j {
            for i in 0..len {
                a.swap(j * len + i, pivot * len + i);
            }
            order.swap(j, pivot);
        }
        // Reflect column j onto (alpha, 0, ..., 0): v = x - alpha e_1.
        let (done, rest) = a.split_at_mut((j + 1) * len);
        let v = &mut done[j * len + j..];
        let alpha = -v[0].signum() * norms[pivot].sqrt();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        for col in rest.chunks_exact_mut(len) {
            let y = &mut col[j..];
            let dot: f64 = v.iter().zip(y.iter()).map(|(a, b)| a * b).sum();
            if vv > 0.0 {
                lanes::sub_scaled(y, 2.0 * dot / vv, v);
            }
        }
        v[0] = alpha;
        let mut row = vec![0.0; n_cols];
        for p in j..n_cols {
            row[order[p]] = a[p * len + j];
        }
        r.extend_from_slice(&row);
        steps += 1;
    }
    (steps, r)
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
    use crate::model::circuit::{edge_voltage, Boundary, Solver};
    use crate::model::network::Adjacency;
    use crate::params::{NetworkParams, Topology};
    use crate::rng::{self, Stream};
    use rand::Rng;

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

    /// A network of `params` with resistances `ron * exp(spread z)` or
    /// `roff * exp(spread z)` at random, and a fraction `dead` of its edges
    /// pruned.
    #[derive(Clone)]
    struct Case {
        net: Network,
        adj: Adjacency,
        r: Vec<f64>,
        alive: Vec<bool>,
    }

    fn case(network: NetworkParams, seed: u64, spread: f64, dead: f64) -> Case {
        let net = Network::generate(&network, seed);
        let adj = Adjacency::new(&net);
        let mut rng = rng::stream(seed, Stream::InitialState);
        let r = (0..net.n_edges())
            .map(|_| {
                let level = if rng.random::<bool>() { 1e3 } else { 1e4 };
                level * (spread * rng::standard_normal(&mut rng)).exp()
            })
            .collect();
        let alive = (0..net.n_edges())
            .map(|_| rng.random::<f64>() >= dead)
            .collect();
        Case { net, adj, r, alive }
    }

    /// A symmetric network (MODEL.md section 1): every resistance `R0`.
    fn symmetric(network: NetworkParams) -> Case {
        let mut c = case(network, 0, 0.0, 0.0);
        c.r.fill((1e3f64 * 1e4).sqrt());
        c
    }

    fn layered(n_in: usize, hidden: &[usize], n_out: usize) -> NetworkParams {
        NetworkParams {
            n_in,
            hidden: hidden.to_vec(),
            n_out,
            ..Params::default().network
        }
    }

    fn bulk(n_in: usize, n_bulk: usize, p_bulk: f64, n_out: usize) -> NetworkParams {
        NetworkParams {
            topology: Topology::RandomBulk,
            n_in,
            n_out,
            n_bulk,
            p_bulk,
            k_attach: 2,
            ..Params::default().network
        }
    }

    /// Networks of every kind the ranks are checked on: with resistances
    /// spread or all equal (rank-deficient), pruned or not, with skip edges,
    /// deeper, and random_bulk networks dense, sparse and in pieces.
    fn test_cases() -> Vec<Case> {
        let mut cases = vec![
            symmetric(layered(2, &[4], 2)),
            symmetric(layered(4, &[8], 4)),
            symmetric(layered(3, &[5, 5], 6)),
            case(layered(16, &[32], 16), 0, 0.3, 0.0),
            case(layered(16, &[32], 16), 0, 0.3, 0.2),
        ];
        for seed in 0..3 {
            for dead in [0.0, 0.3] {
                cases.push(case(layered(2, &[4], 2), seed, 0.05, dead));
                cases.push(case(layered(4, &[8], 4), seed, 0.0, dead));
                cases.push(case(layered(4, &[8], 4), seed, 0.3, dead));
                cases.push(case(layered(3, &[6, 5], 4), seed, 0.3, dead));
                cases.push(case(layered(8, &[16], 8), seed, 0.3, dead));
                let skip = NetworkParams {
                    skip: 0.5,
                    density: 0.7,
                    ..layered(4, &[8], 3)
                };
                cases.push(case(skip, seed, 0.3, dead));
                cases.push(case(bulk(4, 20, 0.3, 4), seed, 0.3, dead));
                cases.push(case(bulk(4, 30, 0.03, 4), seed, 0.3, dead));
            }
        }
        cases
    }

    /// Node voltages of every single-input punish configuration, then
    /// normalize, each solved directly with leak `gmin`.
    fn direct_voltages(c: &Case, params: &Params, gmin: f64) -> Vec<Vec<f64>> {
        let net = &c.net;
        let n = net.n_nodes();
        let g: Vec<f64> =
            c.r.iter()
                .zip(&c.alive)
                .map(|(&r, &a)| if a { 1.0 / r } else { 0.0 })
                .collect();
        let mut solver = Solver::new(n);
        let mut boundary = Boundary::floating(n);
        let mut solve = |boundary: &Boundary<f64>| {
            let mut v = vec![0.0; n];
            solver.prepare(&c.adj, &c.alive, boundary);
            solver.solve(net, &c.adj, &g, gmin, boundary, &mut v);
            v
        };
        let t = &params.training;
        let mut out = Vec::new();
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

    /// The method `controllability` replaced, kept as a reference: every
    /// configuration solved directly, `C^T X_r` with one reference node per
    /// component, and one-sided Jacobi over the whole `(N - c) x K` matrix.
    fn reference_singular_values(c: &Case, params: &Params, gmin: f64) -> Vec<f64> {
        let x = direct_voltages(c, params, gmin);
        let (net, alive) = (&c.net, &c.alive);
        let n = net.n_nodes();
        let k = x.len();
        let mut uf = UnionFind::new(n);
        for e in 0..net.n_edges() {
            if alive[e] {
                uf.union(net.tail[e] as usize, net.head[e] as usize);
            }
        }
        let mut index = vec![usize::MAX; n];
        let mut kept = Vec::new();
        for i in 0..n {
            if uf.find(i) != i {
                index[i] = kept.len();
                kept.push(i);
            }
        }
        let nr = kept.len();
        let mut lap = reduced_laplacian(net, alive, &index, nr, |_| 1.0);
        cholesky_factor(&mut lap, nr, nr, nr, &mut vec![0.0; nr]);
        let mut cols = vec![0.0; k * nr];
        for (col, xc) in x.iter().enumerate() {
            for a in 0..nr {
                cols[col * nr + a] = (a..nr)
                    .map(|b| lap[b * nr + a] * (xc[kept[b]] - xc[uf.find(kept[b])]))
                    .sum();
            }
        }
        if k <= nr {
            singular_values(&mut cols, k, nr)
        } else {
            singular_values(&mut transpose(&cols, k, nr), nr, k)
        }
    }

    fn largest(sv: &[f64]) -> f64 {
        sv.iter().cloned().fold(0.0, f64::max)
    }

    #[test]
    fn superposed_voltages_are_those_of_direct_solves_without_leak() {
        let params = Params::default();
        for c in test_cases() {
            let cm = ControlMatrix::new(&c.net, &params, &c.r, &c.alive);
            let direct = direct_voltages(&c, &params, 0.0);
            let nt = cm.n_terminals;
            let n = c.net.n_nodes();
            let mut worst: f64 = 0.0;
            for (col, x) in direct.iter().enumerate() {
                let t_c = &cm.currents[col * nt..(col + 1) * nt];
                let superposed: Vec<f64> = (0..n)
                    .map(|node| match cm.index[node] {
                        usize::MAX => 0.0,
                        a => (0..nt).map(|s| cm.potentials[a * nt + s] * t_c[s]).sum(),
                    })
                    .collect();
                for e in (0..c.net.n_edges()).filter(|&e| c.alive[e]) {
                    let d = edge_voltage(&c.net, x, e) - edge_voltage(&c.net, &superposed, e);
                    worst = worst.max(d.abs());
                }
            }
            // The edge voltages are of order one volt.
            assert!(worst < 1e-9, "{worst:e} V apart");
        }
    }

    #[test]
    fn ranks_equal_the_jacobi_reference_on_test_networks() {
        let params = Params::default();
        let (mut deficient, mut split) = (0, 0);
        for (c, path) in test_cases()
            .into_iter()
            .flat_map(|c| [MeasurePath::Dense, MeasurePath::Sparse].map(|p| (c.clone(), p)))
        {
            let cm = ControlMatrix::with_path(&c.net, &params, &c.r, &c.alive, Some(path));
            let new = cm.singular_values(&c.net, &c.alive);
            let old = reference_singular_values(&c, &params, 0.0);
            assert_eq!(numerical_rank(&new), numerical_rank(&old), "{path:?}");
            let (a, b) = (largest(&new), largest(&old));
            assert!(
                (a - b).abs() <= 1e-9 * b,
                "{path:?}: largest {a} against {b}"
            );
            let m = c.alive.iter().filter(|&&a| a).count();
            let k = c.net.n_in * c.net.n_out + 1;
            deficient += usize::from(numerical_rank(&new) < m.min(k));
            split += usize::from(cm.n_terminals + 1 < c.net.n_in + c.net.n_out);
        }
        assert!(deficient > 0, "no rank-deficient case");
        assert!(split > 0, "no case with terminals in two pieces");
    }

    #[test]
    fn controllability_of_a_2_4_2_spread_between_ron_and_roff_ignores_gmin() {
        let leak = Params::default();
        let mut less_leak = Params::default();
        less_leak.circuit.gmin = 1e-15;
        for seed in 0..20 {
            let c = case(layered(2, &[4], 2), seed, 0.05, 0.0);
            let at = |p: &Params| controllability(&c.net, p, &c.r, &c.alive);
            // Three directions of order one; the leak's fourth is gone.
            assert_eq!(at(&leak), 3.0 / 16.0);
            assert_eq!(at(&less_leak), 3.0 / 16.0);
            // The old computation, with the leak: a fourth direction that
            // scales with gmin, near the 1e-9 cut.
            let fourth = |p: &Params| {
                let mut sv = reference_singular_values(&c, p, p.circuit.gmin);
                sv.sort_by(|a, b| b.total_cmp(a));
                sv[3] / sv[0]
            };
            let ratio = fourth(&leak) / fourth(&less_leak);
            assert!((ratio / 1e3 - 1.0).abs() < 1e-2, "{ratio}");
        }
    }

    /// Without the leak the rank is the number of terminals less one per
    /// piece of the network that joins inputs to outputs: 3 for a 2-4-2
    /// however its resistances lie. Wiring changes the measure: pruning
    /// (the alive edge count `M`, and the rank once an input is cut off)
    /// and skip edges (`M`).
    #[test]
    fn pruning_an_edge_or_adding_skip_edges_changes_controllability() {
        let params = Params::default();
        let c = case(layered(2, &[4], 2), 7, 0.05, 0.0);
        let at = |c: &Case, alive: &[bool]| controllability(&c.net, &params, &c.r, alive);
        assert_eq!(at(&c, &c.alive), 3.0 / 16.0);
        let mut pruned = c.alive.clone();
        pruned[0] = false;
        assert_eq!(at(&c, &pruned), 3.0 / 15.0);
        // Every edge of input 0 gone: one input and two outputs remain.
        for e in 0..c.net.n_edges() {
            if c.net.tail[e] == 0 {
                pruned[e] = false;
            }
        }
        assert_eq!(at(&c, &pruned), 2.0 / 12.0);
        let skip = NetworkParams {
            skip: 1.0,
            ..layered(2, &[4], 2)
        };
        let s = case(skip, 7, 0.05, 0.0);
        assert_eq!(s.net.n_edges(), 20);
        assert_eq!(at(&s, &s.alive), 3.0 / 20.0);
    }
}
