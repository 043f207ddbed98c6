//! Sparse symmetric rows stored for the product `q = A p` of the iterative
//! nodal solve: rows in chunks of `CHUNK` consecutive rows, each chunk's
//! links column by column (a chunk's `j`-th column holds the `j`-th link of
//! each of its rows), padded to the chunk's longest row. One step down a
//! column then serves `CHUNK` rows at once: a chunk's rows are the lanes of
//! one block (`crate::lanes`), and the product is vector arithmetic on them,
//! with the linked rows' values loaded lane by lane (on the development
//! machine faster than the gather instruction; docs/performance.md).
//!
//! Every row is summed in the same order on every instruction set:
//! `q_a = d_a p_a - g_1 p_(to_1) - g_2 p_(to_2) - ...`, link by link in
//! column order, padding included (a padding link has conductance 0 and
//! points at the first row of its own chunk, so it subtracts an exact
//! zero). One source is compiled for each instruction set, and nothing is
//! fused or reassociated, so every instruction set gives the same bits.

use std::ops::Range;

use crate::lanes::{self, Isa, LANES};
use crate::real::Real;

/// Rows per chunk: one block of `crate::lanes`, so a chunk's rows are one
/// block of every per-row vector and the fused `p . q` of `product` adds in
/// the order of `lanes::dot`.
pub const CHUNK: usize = LANES;

/// The `via` of a padding link: no edge.
pub const NO_EDGE: u32 = u32::MAX;

/// Rows of links `to` other rows `via` edges, in chunks (see the module
/// comment). Rows are numbered by the caller; `push_rows` adds a run of
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
    /// pair of `links(a)`, in that order; every `to` lies in `rows`.
    /// Returns the chunks they took.
    pub fn push_rows<I>(
        &mut self,
        rows: Range<usize>,
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
            self.entry_start.push(self.to.len() as u32);
            for j in 0..width {
                for lane in 0..CHUNK {
                    let k = bounds[lane] + j;
                    let (to, via) = if k < bounds[lane + 1] {
                        flat[k]
                    } else {
                        (start as u32, NO_EDGE)
                    };
                    assert!(rows.contains(&(to as usize)), "a link leaves its run");
                    self.to.push(to);
                    self.via.push(via);
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

    /// Chunks `chunks` of `q = A p`, `A` having the diagonal `diag` and
    /// `-g[k]` at each link `k`; returns `p . q` over their rows, each
    /// chunk's rows added lane by lane (lanes past a run's end add 0), then
    /// the lanes summed as `lanes::sum` sums them.
    ///
    /// Each instruction set gets a function of its own (`product_avx512`,
    /// `product_avx2`), although the solve that calls it is already
    /// compiled for `isa`: inlined into that large function, the same
    /// source trained a 1,040-node network about 25% slower.
    #[inline(always)]
    pub fn product<F: Real>(
        &self,
        isa: Isa,
        chunks: Range<usize>,
        diag: &[F],
        g: &[F],
        p: &[F],
        q: &mut [F],
    ) -> F {
        assert!(g.len() == self.to.len() && diag.len() == p.len() && q.len() == p.len());
        assert!(self.chunk_row.last().is_none_or(|&n| n as usize <= p.len()));
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller passes only an instruction set the running
            // CPU has.
            Isa::Avx512 => unsafe { self.product_avx512(chunks, diag, g, p, q) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.product_avx2(chunks, diag, g, p, q) },
            _ => self.product_lanes(chunks, diag, g, p, q),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
    #[inline(never)]
    fn product_avx512<F: Real>(
        &self,
        chunks: Range<usize>,
        diag: &[F],
        g: &[F],
        p: &[F],
        q: &mut [F],
    ) -> F {
        self.product_lanes(chunks, diag, g, p, q)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    fn product_avx2<F: Real>(
        &self,
        chunks: Range<usize>,
        diag: &[F],
        g: &[F],
        p: &[F],
        q: &mut [F],
    ) -> F {
        self.product_lanes(chunks, diag, g, p, q)
    }

    /// `product`, a chunk's rows in the lanes of one block.
    #[inline(always)]
    fn product_lanes<F: Real>(
        &self,
        chunks: Range<usize>,
        diag: &[F],
        g: &[F],
        p: &[F],
        q: &mut [F],
    ) -> F {
        let mut dot = [F::ZERO; LANES];
        for c in chunks {
            let rows = self.chunk_row[c] as usize..self.chunk_row[c + 1] as usize;
            let entries = self.entry_start[c] as usize..self.entry_start[c + 1] as usize;
            let whole = rows.len() == CHUNK;
            // (Past a partial chunk's rows: diagonal and p 0, links of
            // conductance 0, so those lanes stay 0.)
            let (d, p_rows) = if whole {
                (
                    lanes::block(&diag[rows.start..]),
                    lanes::block(&p[rows.start..]),
                )
            } else {
                (
                    lanes::load(&diag[rows.clone()]),
                    lanes::load(&p[rows.clone()]),
                )
            };
            let mut acc: [F; LANES] = std::array::from_fn(|l| d[l] * p_rows[l]);
            let (to, g) = (&self.to[entries.clone()], &g[entries]);
            for (to, g) in to.chunks_exact(CHUNK).zip(g.chunks_exact(CHUNK)) {
                // SAFETY: every `to` is a row of its run (`push_rows`), so
                // below `p.len()` (asserted by `product`).
                let linked: [F; LANES] =
                    std::array::from_fn(|l| unsafe { *p.get_unchecked(to[l] as usize) });
                acc = std::array::from_fn(|l| acc[l] - g[l] * linked[l]);
            }
            if whole {
                *q[rows.start..]
                    .first_chunk_mut::<LANES>()
                    .expect("a whole chunk") = acc;
            } else {
                lanes::store(&mut q[rows], &acc);
            }
            dot = std::array::from_fn(|l| dot[l] + p_rows[l] * acc[l]);
        }
        lanes::sum(dot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Two runs (components) of 13 and 6 rows, random symmetric links:
    /// the product is row by row `d p - g p ...` in link order, exactly,
    /// partial chunks and padding included, and `p . q` is `lanes::dot`.
    #[test]
    fn the_product_sums_each_row_in_link_order() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let runs = [0..13, 13..19];
        let n = 19;
        let mut links: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n];
        let mut g_edge = Vec::new();
        for run in &runs {
            for a in run.clone() {
                for b in a + 1..run.end {
                    if rng.random::<f64>() < 0.4 {
                        let e = g_edge.len() as u32;
                        g_edge.push(rng.random::<f64>());
                        links[a].push((b as u32, e));
                        links[b].push((a as u32, e));
                    }
                }
            }
        }
        let mut rows = SlicedRows::default();
        let chunks: Vec<Range<usize>> = runs
            .iter()
            .map(|run| rows.push_rows(run.clone(), |a| links[a].clone()))
            .collect();
        let g: Vec<f64> = (rows.via().iter())
            .map(|&e| g_edge.get(e as usize).copied().unwrap_or(0.0))
            .collect();
        let diag: Vec<f64> = (0..n).map(|_| 1.0 + rng.random::<f64>()).collect();
        let p: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        for isa in [Isa::Portable, Isa::detect()] {
            let mut q = vec![0.0; n];
            for (run, chunks) in runs.iter().zip(&chunks) {
                let dot = rows.product(isa, chunks.clone(), &diag, &g, &p, &mut q);
                assert_eq!(dot, lanes::dot(&p[run.clone()], &q[run.clone()]));
            }
            for a in 0..n {
                let mut want = diag[a] * p[a];
                for &(b, e) in &links[a] {
                    want -= g_edge[e as usize] * p[b as usize];
                }
                assert_eq!(q[a], want, "row {a} on {isa:?}");
            }
        }
    }
}
