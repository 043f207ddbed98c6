//! Sparse symmetric rows stored for the sweeps of the iterative nodal
//! solve: rows in chunks of `CHUNK` consecutive rows, each chunk's links
//! column by column (a chunk's `j`-th column holds the `j`-th link of each
//! of its rows), padded to the chunk's longest row. One step down a column
//! then serves `CHUNK` rows at once: a chunk's rows are the lanes of one
//! block (`crate::lanes`), and a sweep is vector arithmetic on them, with
//! the linked rows' values loaded lane by lane (on the development machine
//! faster than the gather instruction; docs/performance.md).
//!
//! `ColouredRows` splits a system's links by a colouring of its unknowns
//! (`Colouring`), so that a forward sweep over the links to earlier
//! colours, or a backward one over the links to later colours, solves a
//! triangle of the system a chunk at a time: the symmetric Gauss-Seidel
//! preconditioner of `circuit::CgVectors::solve`.
//!
//! Every row is summed in the same order on every instruction set:
//! `s_a = g_1 x_(to_1) + g_2 x_(to_2) + ...` from 0, link by link in column
//! order, padding included (a padding link has conductance 0 and points at
//! the first row of its own chunk, so it adds an exact zero). One source is
//! compiled for each instruction set, and nothing is fused or
//! reassociated, so every instruction set gives the same bits.

use std::ops::Range;

use crate::lanes::{self, Isa, LANES};
use crate::real::Real;

/// Rows per chunk: one block of `crate::lanes`, so a chunk's rows are one
/// block of every per-row vector.
pub const CHUNK: usize = LANES;

/// The `via` of a padding link: no edge.
pub const NO_EDGE: u32 = u32::MAX;

/// Rows of links `to` other rows `via` edges, in chunks (see the module
/// comment). Rows are numbered by the caller; `push_run` adds a run of
/// rows that starts a new chunk, so that a run (a connected component)
/// owns its chunks.
#[derive(Clone, Debug, Default)]
pub struct SlicedRows {
    /// Chunk `c` covers rows `chunk_row[c]..chunk_row[c + 1]` (at most
    /// `CHUNK`) and links `entry_start[c]..entry_start[c + 1]`, `CHUNK` per
    /// column.
    chunk_row: Vec<u32>,
    entry_start: Vec<u32>,
    /// Per link: the row it leads to, and its edge (`NO_EDGE` for padding).
    to: Vec<u32>,
    via: Vec<u32>,
}

impl SlicedRows {
    pub fn clear(&mut self) {
        self.chunk_row.clear();
        self.entry_start.clear();
        self.to.clear();
        self.via.clear();
    }

    /// Number of chunks.
    pub fn n_chunks(&self) -> usize {
        self.entry_start.len().saturating_sub(1)
    }

    /// Append rows `rows`, which continue the rows already pushed (the
    /// first run starts at row 0), row `a` linking to `(to, via)` for each
    /// pair of `links(a)`, in that order; every `to` lies in `within` (for
    /// `ColouredRows`, the rows of one colour linked to the other colours
    /// of their component). Returns the chunks they took.
    pub fn push_run<I>(
        &mut self,
        rows: Range<usize>,
        within: Range<usize>,
        mut links: impl FnMut(usize) -> I,
    ) -> Range<usize>
    where
        I: IntoIterator<Item = (u32, u32)>,
    {
        // (The closing bounds of the last chunk are dropped and pushed
        // again after the new chunks.)
        let closing = self.chunk_row.pop().unwrap_or(0) as usize;
        self.entry_start.pop();
        assert_eq!(rows.start, closing, "runs of rows continue each other");
        let first = self.chunk_row.len();
        // A chunk's links, row after row: row `lane`'s are
        // `flat[bounds[lane]..bounds[lane + 1]]`.
        let mut flat: Vec<(u32, u32)> = Vec::new();
        let mut start = rows.start;
        while start < rows.end {
            let end = (start + CHUNK).min(rows.end);
            flat.clear();
            let mut bounds = [0; CHUNK + 1];
            for (lane, a) in (start..end).enumerate() {
                flat.extend(links(a));
                bounds[lane + 1] = flat.len();
            }
            for lane in end - start..CHUNK {
                bounds[lane + 1] = flat.len();
            }
            let width = (0..CHUNK)
                .map(|l| bounds[l + 1] - bounds[l])
                .max()
                .unwrap_or(0);
            self.chunk_row.push(start as u32);
            let base = self.to.len();
            self.entry_start.push(base as u32);
            // Padding everywhere, then each row's links down its lane.
            self.to.resize(base + width * CHUNK, start as u32);
            self.via.resize(base + width * CHUNK, NO_EDGE);
            for lane in 0..CHUNK {
                let links = &flat[bounds[lane]..bounds[lane + 1]];
                for (j, &(to, via)) in links.iter().enumerate() {
                    assert!(within.contains(&(to as usize)), "a link leaves its run");
                    self.to[base + j * CHUNK + lane] = to;
                    self.via[base + j * CHUNK + lane] = via;
                }
            }
            start = end;
        }
        let last = self.chunk_row.len();
        self.chunk_row.push(rows.end as u32);
        self.entry_start.push(self.to.len() as u32);
        first..last
    }

    /// Per link, its edge (`NO_EDGE` for padding), to gather the link
    /// conductances in link order.
    pub fn via(&self) -> &[u32] {
        &self.via
    }

    /// For each chunk of `chunks`, forwards or `backwards`, the sums
    /// `sum_k g_k x_(to_k)` of its rows' links (from 0, link by link in
    /// column order, padding included), handed to `row` with the chunk's
    /// rows and `x`, which `row` may write before the next chunk reads it:
    /// a triangular solve's sweep when each chunk's links lead only to
    /// chunks before it.
    ///
    /// Each instruction set gets a function of its own (`sweep_avx512`,
    /// `sweep_avx2`), with `row` inlined into it: inlined into the solve,
    /// which is already compiled for `isa`, the same source ran several
    /// times slower (the compiler left `row` as a call and made the loads a
    /// gather).
    #[inline(always)]
    pub fn sweep<F: Real, R: RowStep<F>>(
        &self,
        isa: Isa,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        x: &mut [F],
        row: R,
    ) {
        assert!(g.len() == self.to.len());
        assert!(self.chunk_row.last().is_none_or(|&n| n as usize <= x.len()));
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller passes only an instruction set the running
            // CPU has.
            Isa::Avx512 => unsafe { self.sweep_avx512(chunks, backwards, g, x, row) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.sweep_avx2(chunks, backwards, g, x, row) },
            _ => self.sweep_lanes(chunks, backwards, g, x, row),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn sweep_avx512<F: Real, R: RowStep<F>>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        x: &mut [F],
        row: R,
    ) {
        self.sweep_lanes(chunks, backwards, g, x, row)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn sweep_avx2<F: Real, R: RowStep<F>>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        x: &mut [F],
        row: R,
    ) {
        self.sweep_lanes(chunks, backwards, g, x, row)
    }

    #[inline(always)]
    fn sweep_lanes<F: Real, R: RowStep<F>>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        x: &mut [F],
        mut row: R,
    ) {
        let n = chunks.len();
        for k in 0..n {
            let c = if backwards {
                chunks.end - 1 - k
            } else {
                chunks.start + k
            };
            let rows = self.chunk_row[c] as usize..self.chunk_row[c + 1] as usize;
            let entries = self.entry_start[c] as usize..self.entry_start[c + 1] as usize;
            let mut sums = [F::ZERO; LANES];
            let (to, g) = (&self.to[entries.clone()], &g[entries]);
            for (to, g) in to.chunks_exact(CHUNK).zip(g.chunks_exact(CHUNK)) {
                // SAFETY: every `to` lies in the run's `within` (`push_run`),
                // so below the last row, which is at most `x.len()`
                // (asserted by `sweep`). (A volatile read keeps the compiler
                // from making the eight loads one gather instruction, which
                // is slower.)
                let linked: [F; LANES] = std::array::from_fn(|l| unsafe {
                    std::ptr::read_volatile(x.as_ptr().add(to[l] as usize))
                });
                sums = std::array::from_fn(|l| sums[l] + g[l] * linked[l]);
            }
            row.step(rows, sums, x);
        }
    }
}

impl SlicedRows {
    /// `sweep` over `K` vectors at once: each chunk's links are read once
    /// and summed over every vector of `xs` (each sum in `sweep`'s order,
    /// so each vector gets `sweep`'s bits), then handed to `row`. For the
    /// set-up of a solve, where several independent sweeps go the same way.
    #[inline(always)]
    pub fn sweep_many<F: Real, R: RowSteps<F, K>, const K: usize>(
        &self,
        isa: Isa,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        xs: [&mut [F]; K],
        row: R,
    ) {
        assert!(g.len() == self.to.len());
        for x in &xs {
            assert!(self.chunk_row.last().is_none_or(|&n| n as usize <= x.len()));
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller passes only an instruction set the running
            // CPU has.
            Isa::Avx512 => unsafe { self.sweep_many_avx512(chunks, backwards, g, xs, row) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.sweep_many_avx2(chunks, backwards, g, xs, row) },
            _ => self.sweep_many_lanes(chunks, backwards, g, xs, row),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn sweep_many_avx512<F: Real, R: RowSteps<F, K>, const K: usize>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        xs: [&mut [F]; K],
        row: R,
    ) {
        self.sweep_many_lanes(chunks, backwards, g, xs, row)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn sweep_many_avx2<F: Real, R: RowSteps<F, K>, const K: usize>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        xs: [&mut [F]; K],
        row: R,
    ) {
        self.sweep_many_lanes(chunks, backwards, g, xs, row)
    }

    #[inline(always)]
    fn sweep_many_lanes<F: Real, R: RowSteps<F, K>, const K: usize>(
        &self,
        chunks: Range<usize>,
        backwards: bool,
        g: &[F],
        mut xs: [&mut [F]; K],
        mut row: R,
    ) {
        let n = chunks.len();
        for k in 0..n {
            let c = if backwards {
                chunks.end - 1 - k
            } else {
                chunks.start + k
            };
            let rows = self.chunk_row[c] as usize..self.chunk_row[c + 1] as usize;
            let entries = self.entry_start[c] as usize..self.entry_start[c + 1] as usize;
            let mut sums = [[F::ZERO; LANES]; K];
            let (to, g) = (&self.to[entries.clone()], &g[entries]);
            for (to, g) in to.chunks_exact(CHUNK).zip(g.chunks_exact(CHUNK)) {
                for (sums, x) in sums.iter_mut().zip(&xs) {
                    // SAFETY: as in `sweep_lanes` (every vector is asserted
                    // long enough by `sweep_many`).
                    let linked: [F; LANES] = std::array::from_fn(|l| unsafe {
                        std::ptr::read_volatile(x.as_ptr().add(to[l] as usize))
                    });
                    *sums = std::array::from_fn(|l| sums[l] + g[l] * linked[l]);
                }
            }
            row.step(rows, sums, &mut xs);
        }
    }
}

/// What `SlicedRows::sweep_many` does with a chunk's rows once the link
/// sums of each of its `K` vectors are known.
pub trait RowSteps<F, const K: usize> {
    fn step(&mut self, rows: Range<usize>, sums: [[F; LANES]; K], xs: &mut [&mut [F]; K]);
}

/// What a sweep (`SlicedRows::sweep`) does with a chunk's rows once their
/// link sums are known: `x` is the vector the links read.
pub trait RowStep<F> {
    fn step(&mut self, rows: Range<usize>, sums: [F; LANES], x: &mut [F]);
}

/// The block of rows `rows` (at most `CHUNK`) of `x`, zero-padded.
#[inline(always)]
pub fn rows_of<F: Real>(x: &[F], rows: &Range<usize>) -> [F; LANES] {
    let n = rows.len();
    if n == CHUNK {
        lanes::block(&x[rows.start..])
    } else if let Some(whole) = x.get(rows.start..rows.start + LANES) {
        // (A whole block with the lanes past the rows zeroed: the copy of
        // a shorter slice is a call.)
        let whole = lanes::block(whole);
        std::array::from_fn(|l| if l < n { whole[l] } else { F::ZERO })
    } else {
        lanes::load(&x[rows.clone()])
    }
}

/// Write the first `rows.len()` lanes of `block` to rows `rows` of `x`.
#[inline(always)]
pub fn set_rows<F: Real>(x: &mut [F], rows: &Range<usize>, block: [F; LANES]) {
    let n = rows.len();
    if n == CHUNK {
        *x[rows.start..]
            .first_chunk_mut::<LANES>()
            .expect("a whole chunk") = block;
    } else if let Some(whole) = x[rows.start..].first_chunk_mut::<LANES>() {
        // (The lanes past the rows written back as they were.)
        *whole = std::array::from_fn(|l| if l < n { block[l] } else { whole[l] });
    } else {
        lanes::store(&mut x[rows.clone()], &block);
    }
}

/// A symmetric system's links split for symmetric Gauss-Seidel sweeps:
/// the unknowns of a component are numbered colour by colour (no link
/// joins two unknowns of one colour), each colour a run of rows; `lower`
/// holds each row's links to earlier colours, `upper` to later ones, both
/// in the same chunks. A forward sweep over `lower` then solves
/// `(D - G_lower) w = u` chunk by chunk, a backward sweep over `upper`
/// `(D - G_upper) t = p`: a chunk's rows never depend on each other.
#[derive(Clone, Debug, Default)]
pub struct ColouredRows {
    pub lower: SlicedRows,
    pub upper: SlicedRows,
}

impl ColouredRows {
    pub fn clear(&mut self) {
        self.lower.clear();
        self.upper.clear();
    }

    pub fn n_chunks(&self) -> usize {
        self.lower.n_chunks()
    }

    /// Append a component whose rows are `runs` (consecutive, one per
    /// colour, continuing the rows already pushed), row `a` linking to
    /// `(to, via)` for each pair of `links(a)`; no link joins two rows of
    /// one run. Returns the chunks they took.
    pub fn push_component<I>(
        &mut self,
        runs: &[Range<usize>],
        mut links: impl FnMut(usize) -> I,
    ) -> Range<usize>
    where
        I: IntoIterator<Item = (u32, u32)>,
    {
        let within = runs.first().map_or(0, |r| r.start)..runs.last().map_or(0, |r| r.end);
        let first = self.lower.n_chunks();
        // Each row's links split once into those to earlier colours and
        // those to later ones, in their order: row `a`'s are
        // `side[bounds[a - run.start]..bounds[a - run.start + 1]]`.
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        let (mut lower_bounds, mut upper_bounds) = (Vec::new(), Vec::new());
        for run in runs {
            let (below, above) = (run.start, run.end);
            (lower.clear(), upper.clear());
            (lower_bounds.clear(), upper_bounds.clear());
            lower_bounds.push(0);
            upper_bounds.push(0);
            for a in run.clone() {
                for (to, via) in links(a) {
                    if (to as usize) < below {
                        lower.push((to, via));
                    } else {
                        assert!(to as usize >= above, "a link within a colour");
                        upper.push((to, via));
                    }
                }
                lower_bounds.push(lower.len());
                upper_bounds.push(upper.len());
            }
            let (lower, upper) = (&lower, &upper);
            let (lower_bounds, upper_bounds) = (&lower_bounds, &upper_bounds);
            self.lower.push_run(run.clone(), within.clone(), |a| {
                let k = a - below;
                lower[lower_bounds[k]..lower_bounds[k + 1]].iter().copied()
            });
            self.upper.push_run(run.clone(), within.clone(), |a| {
                let k = a - below;
                upper[upper_bounds[k]..upper_bounds[k + 1]].iter().copied()
            });
        }
        first..self.lower.n_chunks()
    }
}

/// Orders unknowns for `ColouredRows` (`runs`); keeps its scratch, one
/// entry per node, from one call to the next.
#[derive(Clone, Debug, Default)]
pub struct Colouring {
    colour: Vec<u32>,
    /// Per node, the sort key within a colour.
    key: Vec<(u32, u32)>,
    /// `taken[c] == stamp` when a neighbour of the node being coloured
    /// has colour `c`.
    taken: Vec<usize>,
    sorted: Vec<usize>,
    /// Scratch of `group`: the rows not yet placed.
    rest: Vec<usize>,
}

impl Colouring {
    /// Order `nodes` (one component, in the caller's order; `n_nodes`
    /// nodes in all) for `ColouredRows`: colour them greedily in that order
    /// (each takes the lowest colour none of its `links` has), then gather
    /// them colour by colour, and within a colour group them into chunks
    /// whose rows have about as many links to earlier colours, and as many
    /// to later ones (`group`, choosing among the next `window` rows).
    /// Returns each colour's run, as offsets into `nodes`.
    pub fn runs<I>(
        &mut self,
        nodes: &mut [usize],
        n_nodes: usize,
        window: usize,
        links: impl Fn(usize) -> I,
    ) -> Vec<Range<usize>>
    where
        I: IntoIterator<Item = usize>,
    {
        const NONE: u32 = u32::MAX;
        self.colour.resize(n_nodes, NONE);
        self.key.resize(n_nodes, (0, 0));
        for &i in nodes.iter() {
            self.colour[i] = NONE;
        }
        let colour = &mut self.colour;
        self.taken.clear();
        let mut n_colours = 0;
        for (stamp, &i) in nodes.iter().enumerate() {
            for j in links(i) {
                let c = colour[j];
                if c != NONE {
                    if self.taken.len() <= c as usize {
                        self.taken.resize(c as usize + 1, usize::MAX);
                    }
                    self.taken[c as usize] = stamp;
                }
            }
            let c = (0..)
                .find(|&c| self.taken.get(c) != Some(&stamp))
                .expect("a free colour");
            colour[i] = c as u32;
            n_colours = n_colours.max(c + 1);
        }
        let mut start = vec![0; n_colours + 1];
        for &i in nodes.iter() {
            start[colour[i] as usize + 1] += 1;
            let (mut lower, mut upper) = (0, 0);
            for j in links(i) {
                if colour[j] < colour[i] {
                    lower += 1;
                } else {
                    upper += 1;
                }
            }
            self.key[i] = (lower, upper);
        }
        for c in 0..n_colours {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        self.sorted.clear();
        self.sorted.resize(nodes.len(), 0);
        for &i in nodes.iter() {
            let c = colour[i] as usize;
            self.sorted[next[c]] = i;
            next[c] += 1;
        }
        nodes.copy_from_slice(&self.sorted);
        let runs: Vec<Range<usize>> = (0..n_colours).map(|c| start[c]..start[c + 1]).collect();
        for run in &runs {
            self.group(&mut nodes[run.clone()], window);
        }
        runs
    }

    /// Order the rows of one colour into chunks of `CHUNK` with little
    /// padding: a chunk is padded to its most links to earlier colours
    /// (the lower sweep) plus its most to later ones (the upper sweep).
    /// Greedily: rows by decreasing number of links, each chunk led by the
    /// first row left and filled by the rows, among the next `window`
    /// left, that widen it least (the one with more links on a tie, then
    /// the earlier).
    fn group(&mut self, rows: &mut [usize], window: usize) {
        let key = &self.key;
        rows.sort_unstable_by_key(|&i| {
            let (lower, upper) = key[i];
            (
                std::cmp::Reverse(lower + upper),
                std::cmp::Reverse(lower),
                i,
            )
        });
        self.rest.clear();
        self.rest.extend(rows.iter().rev());
        // (`rest` is reversed: the next row is its last.)
        for chunk in rows.chunks_mut(CHUNK) {
            let leader = self.rest.pop().expect("a row per place");
            let (mut lower, mut upper) = key[leader];
            chunk[0] = leader;
            for place in &mut chunk[1..] {
                let n = self.rest.len();
                let mut best = (u32::MAX, 0, n - 1);
                for p in (n.saturating_sub(window.max(1))..n).rev() {
                    let (l, u) = key[self.rest[p]];
                    let widening = l.saturating_sub(lower) + u.saturating_sub(upper);
                    if widening < best.0 || (widening == best.0 && l + u > best.1) {
                        best = (widening, l + u, p);
                        if widening == 0 {
                            // (None after it has more links: `rest` runs
                            // by decreasing number.)
                            break;
                        }
                    }
                }
                let i = self.rest.remove(best.2);
                (lower, upper) = (lower.max(key[i].0), upper.max(key[i].1));
                *place = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `x = (x + sums) / d`, lane by lane.
    struct Divide<'a>(&'a [f64]);

    impl RowStep<f64> for Divide<'_> {
        fn step(&mut self, rows: Range<usize>, sums: [f64; LANES], x: &mut [f64]) {
            let (u, d) = (rows_of(x, &rows), rows_of(self.0, &rows));
            set_rows(x, &rows, std::array::from_fn(|l| (u[l] + sums[l]) / d[l]));
        }
    }

    /// Two components (19 and 6 nodes, random links) coloured, ordered
    /// and pushed: no link joins two rows of one colour, every node keeps
    /// its links, and the two sweeps solve `(D - G_lower) w = u` and
    /// `(D - G_upper) t = p` row by row in link order, with the same bits
    /// on every instruction set.
    #[test]
    fn coloured_sweeps_solve_the_two_triangles() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let n = 25;
        let components = [0..19, 19..25];
        let mut adj: Vec<Vec<(usize, u32)>> = vec![Vec::new(); n];
        let mut g_edge = Vec::new();
        for comp in &components {
            for a in comp.clone() {
                for b in a + 1..comp.end {
                    if rng.random::<f64>() < 0.35 {
                        let e = g_edge.len() as u32;
                        g_edge.push(0.5 + rng.random::<f64>());
                        adj[a].push((b, e));
                        adj[b].push((a, e));
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut colouring = Colouring::default();
        let mut rows = ColouredRows::default();
        let mut all_runs = Vec::new();
        for comp in &components {
            let runs: Vec<Range<usize>> = colouring
                .runs(&mut order[comp.clone()], n, 4, |i| {
                    adj[i].iter().map(|&(j, _)| j)
                })
                .into_iter()
                .map(|r| r.start + comp.start..r.end + comp.start)
                .collect();
            all_runs.push(runs);
        }
        let mut pos = vec![0; n];
        for (a, &i) in order.iter().enumerate() {
            pos[i] = a;
        }
        let mut chunks = Vec::new();
        for runs in &all_runs {
            for run in runs {
                for a in run.clone() {
                    for &(j, _) in &adj[order[a]] {
                        assert!(!run.contains(&pos[j]), "a link within a colour");
                    }
                }
            }
            chunks.push(rows.push_component(runs, |a| {
                adj[order[a]].iter().map(|&(j, e)| (pos[j] as u32, e))
            }));
        }
        let g = |via: &[u32]| -> Vec<f64> {
            via.iter()
                .map(|&e| g_edge.get(e as usize).copied().unwrap_or(0.0))
                .collect()
        };
        let (lower_g, upper_g) = (g(rows.lower.via()), g(rows.upper.via()));
        let d: Vec<f64> = (0..n).map(|_| 4.0 + rng.random::<f64>()).collect();
        let u: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        let mut results = Vec::new();
        for isa in [Isa::Portable, Isa::detect()] {
            let (mut w, mut t) = (u.clone(), u.clone());
            for c in &chunks {
                rows.lower
                    .sweep(isa, c.clone(), false, &lower_g, &mut w, Divide(&d));
                rows.upper
                    .sweep(isa, c.clone(), true, &upper_g, &mut t, Divide(&d));
            }
            // Row by row, links in their order: the lower triangle from
            // the first row on, the upper one from the last.
            let (mut w_rows, mut t_rows) = (u.clone(), u.clone());
            let links = |a: usize, earlier: bool| -> Vec<(usize, f64)> {
                adj[order[a]]
                    .iter()
                    .filter(|&&(j, _)| {
                        let before = all_runs
                            .iter()
                            .flatten()
                            .find(|r| r.contains(&a))
                            .is_some_and(|r| pos[j] < r.start);
                        before == earlier
                    })
                    .map(|&(j, e)| (pos[j], g_edge[e as usize]))
                    .collect()
            };
            for a in 0..n {
                let sums = links(a, true)
                    .iter()
                    .fold(0.0, |s, &(b, g)| s + g * w_rows[b]);
                w_rows[a] = (w_rows[a] + sums) / d[a];
            }
            for a in (0..n).rev() {
                let sums = links(a, false)
                    .iter()
                    .fold(0.0, |s, &(b, g)| s + g * t_rows[b]);
                t_rows[a] = (t_rows[a] + sums) / d[a];
            }
            assert_eq!(w, w_rows, "forward sweep on {isa:?}");
            assert_eq!(t, t_rows, "backward sweep on {isa:?}");
            results.push((w, t));
        }
        assert_eq!(results[0], results[1]);
    }

    /// Chunks grouped by `Colouring::group` are a reordering of each
    /// colour, and on a random graph of mean degree 10 carry less padding
    /// than rows sorted by their links to earlier colours, then to later
    /// ones.
    #[test]
    fn grouped_chunks_are_narrower_than_sorted_ones() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(8);
        let n = 600;
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
        for a in 0..n {
            for b in a + 1..n {
                if rng.random::<f64>() < 10.0 / n as f64 {
                    adj[a].push(b);
                    adj[b].push(a);
                }
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut colouring = Colouring::default();
        let runs = colouring.runs(&mut order, n, 64, |i| adj[i].iter().copied());
        let mut colour = vec![0; n];
        for (c, run) in runs.iter().enumerate() {
            let mut members: Vec<usize> = order[run.clone()].to_vec();
            members.sort_unstable();
            let mut expected: Vec<usize> = (0..n)
                .filter(|&i| colouring.colour[i] == c as u32)
                .collect();
            expected.sort_unstable();
            assert_eq!(members, expected, "colour {c} holds its nodes once each");
            for &i in &members {
                colour[i] = c;
            }
        }
        let key = |i: usize| {
            let lower = adj[i].iter().filter(|&&j| colour[j] < colour[i]).count();
            (lower, adj[i].len() - lower)
        };
        let width = |rows: &[usize]| -> usize {
            rows.chunks(CHUNK)
                .map(|c| {
                    let lower = c.iter().map(|&i| key(i).0).max().unwrap();
                    let upper = c.iter().map(|&i| key(i).1).max().unwrap();
                    lower + upper
                })
                .sum()
        };
        let (mut grouped, mut sorted) = (0, 0);
        for run in &runs {
            grouped += width(&order[run.clone()]);
            let mut rows = order[run.clone()].to_vec();
            rows.sort_unstable_by_key(|&i| (std::cmp::Reverse(key(i)), i));
            sorted += width(&rows);
        }
        assert!(grouped < sorted, "grouped {grouped}, sorted {sorted}");
    }
}
