//! Fixed-width lanes for the CPU kernels: loops over blocks of `LANES`
//! values, which the compiler turns into vector instructions of whatever
//! width the machine has, and sums reduced in one fixed order. Nothing is
//! reassociated behind the source's back (no fused multiply-add, no
//! fast-math), so every vector width gives the same bits.

use crate::real::Real;

/// The instruction set a kernel is compiled for, chosen at run time. Every
/// choice gives the same bits; the wider ones are faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// What the build targets (SSE2 on x86-64).
    Portable,
    Avx2,
    Avx512,
}

impl Isa {
    /// The widest instruction set this CPU has.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Portable)
    }

    /// Whether this CPU can run kernels compiled for `self`.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Values per block: one AVX-512 register of f64.
pub const LANES: usize = 8;

/// `n` rounded up to a whole number of blocks.
#[inline(always)]
pub fn round_up(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// The first `LANES` values of `x`.
#[inline(always)]
pub fn block<F: Real>(x: &[F]) -> [F; LANES] {
    *x.first_chunk::<LANES>().expect("a whole block")
}

/// A block holding `x` (at most `LANES` values), zero-padded.
#[inline(always)]
pub fn load<F: Real>(x: &[F]) -> [F; LANES] {
    match x.try_into() {
        Ok(block) => block,
        Err(_) => {
            let mut block = [F::ZERO; LANES];
            block[..x.len()].copy_from_slice(x);
            block
        }
    }
}

/// Write the first `x.len()` lanes of `block` to `x`.
#[inline(always)]
pub fn store<F: Real>(x: &mut [F], block: &[F; LANES]) {
    match <&mut [F; LANES]>::try_from(&mut *x) {
        Ok(whole) => *whole = *block,
        Err(_) => {
            let n = x.len();
            x.copy_from_slice(&block[..n]);
        }
    }
}

/// The sum of the lanes, in a fixed pairwise order.
#[inline(always)]
pub fn sum<F: Real>(x: [F; LANES]) -> F {
    let half: [F; 4] = std::array::from_fn(|l| x[l] + x[l + 4]);
    let quarter: [F; 2] = std::array::from_fn(|l| half[l] + half[l + 2]);
    quarter[0] + quarter[1]
}

/// `y -= a x`, block by block, then value by value for the rest; `y` and
/// `x` have the same length.
#[inline(always)]
pub fn sub_scaled<F: Real>(y: &mut [F], a: F, x: &[F]) {
    let (y_blocks, y_rest) = y.as_chunks_mut::<LANES>();
    let (x_blocks, x_rest) = x.as_chunks::<LANES>();
    for (yb, xb) in y_blocks.iter_mut().zip(x_blocks) {
        // Whole blocks in, whole block out: vector code.
        let (yv, xv) = (*yb, *xb);
        *yb = std::array::from_fn(|l| yv[l] - a * xv[l]);
    }
    for (y, &x) in y_rest.iter_mut().zip(x_rest) {
        *y -= a * x;
    }
}

/// `sum_k x_k y_k`, accumulated per lane.
#[inline(always)]
pub fn dot<F: Real>(x: &[F], y: &[F]) -> F {
    let (x_blocks, x_rest) = x.as_chunks::<LANES>();
    let (y_blocks, y_rest) = y.as_chunks::<LANES>();
    let mut acc = [F::ZERO; LANES];
    for (xb, yb) in x_blocks.iter().zip(y_blocks) {
        acc = std::array::from_fn(|l| acc[l] + xb[l] * yb[l]);
    }
    for (l, (&x, &y)) in x_rest.iter().zip(y_rest).enumerate() {
        acc[l] += x * y;
    }
    sum(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_up_and_sum_every_lane() {
        assert_eq!(
            (round_up(0), round_up(1), round_up(8), round_up(9)),
            (0, 8, 8, 16)
        );
        let x: [f64; LANES] = std::array::from_fn(|l| l as f64);
        assert_eq!(sum(x), 28.0);
        let y = vec![2.0; 16];
        let x: Vec<f64> = (0..16).map(|k| k as f64).collect();
        assert_eq!(dot(&x, &y), 240.0);
        let mut z = vec![1.0; 11];
        sub_scaled(&mut z, 0.5, &x[..11]);
        assert_eq!((z[4], z[10]), (-1.0, -4.0));
    }
}
