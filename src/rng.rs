//! Randomness, all derived from an instance's seed.
//!
//! Two kinds of draws:
//! - set-up draws (topology, polarity, device variability, initial state,
//!   task) come from `rand_pcg` streams, one per purpose, so that changing
//!   one draw (say `sigma_r0`) leaves the others (the topology) unchanged;
//! - draws made during training (cycle-to-cycle noise, pruning) come from a
//!   counter-based hash of (seed, purpose, counters) in 32-bit arithmetic, so
//!   the WGSL shader computes the very same numbers (`shaders/common.wgsl`).

use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::real::Real;

/// splitmix64's finaliser: a bijective 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Set-up streams of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    Topology = 1,
    Polarity = 2,
    DeviceToDevice = 3,
    InitialState = 4,
    Task = 5,
    AbstractWeights = 6,
    AbstractDepression = 7,
    /// Nanowire geometry: centre, angle and length of every wire.
    Wires = 8,
}

/// The `rand_pcg` generator for one purpose of one instance.
pub fn stream(seed: u64, which: Stream) -> Pcg64 {
    Pcg64::seed_from_u64(mix64(seed ^ mix64(which as u64)))
}

/// A standard normal draw from a set-up stream (Box-Muller, one value).
pub fn standard_normal(rng: &mut Pcg64) -> f64 {
    use rand::Rng;
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A gamma draw with mean `mean` and standard deviation `std` (both > 0)
/// from a set-up stream: Marsaglia and Tsang's squeeze method (ACM TOMS
/// 2000) for shape `k = (mean/std)^2 >= 1`, boosted by `U^(1/k)` below 1.
pub fn gamma(rng: &mut Pcg64, mean: f64, std: f64) -> f64 {
    use rand::Rng;
    let shape = (mean / std).powi(2);
    let scale = std * std / mean;
    let (k, boost) = if shape < 1.0 {
        let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        (shape + 1.0, u.powf(1.0 / shape))
    } else {
        (shape, 1.0)
    };
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = 1.0 - rng.random::<f64>();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v * boost * scale;
        }
    }
}

/// Purposes of the counter-based draws made during training.
pub const PURPOSE_C2C_A: u32 = 0x6332_6361; // first uniform of the c2c normal
pub const PURPOSE_C2C_B: u32 = 0x6332_6362; // second uniform of the c2c normal
pub const PURPOSE_PRUNE: u32 = 0x7072_756e;
/// Which devices are stuck (drawn at set-up, keyed by edge).
pub const PURPOSE_STUCK: u32 = 0x7374_756b;

/// Wellons' "lowbias32" integer hash: a bijection on u32.
pub fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The counter-based generator of one instance: the seed split in two
/// 32-bit words, exactly as the shader holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRng {
    pub seed_lo: u32,
    pub seed_hi: u32,
}

impl CounterRng {
    pub fn new(seed: u64) -> Self {
        CounterRng {
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
        }
    }

    /// 32 random bits for (purpose, counters).
    pub fn bits(&self, purpose: u32, words: [u32; 4]) -> u32 {
        let mut h = mix32(self.seed_lo ^ 0x9e37_79b9);
        h = mix32(h.wrapping_add(self.seed_hi) ^ 0x85eb_ca6b);
        h = mix32(h.wrapping_add(purpose) ^ 0xc2b2_ae35);
        for w in words {
            h = mix32(h.wrapping_add(w) ^ 0x27d4_eb2f);
        }
        h
    }

    /// Uniform in [0, 1) with 24 bits, exact in f32 and f64.
    pub fn uniform(&self, purpose: u32, words: [u32; 4]) -> f64 {
        (self.bits(purpose, words) >> 8) as f64 * (1.0 / 16_777_216.0)
    }

    /// Standard normal by Box-Muller from two counter uniforms, evaluated in
    /// the precision `F` so that the f32 mode matches the shader.
    pub fn normal<F: Real>(&self, words: [u32; 4]) -> F {
        let u1 = ((self.bits(PURPOSE_C2C_A, words) >> 8) + 1) as f64 * (1.0 / 16_777_216.0);
        let u2 = (self.bits(PURPOSE_C2C_B, words) >> 8) as f64 * (1.0 / 16_777_216.0);
        let (u1, u2) = (F::from_f64(u1), F::from_f64(u2));
        (F::from_f64(-2.0) * u1.ln()).sqrt() * (F::from_f64(std::f64::consts::TAU) * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_uniform_is_uniform() {
        let rng = CounterRng::new(0x1234_5678_9abc_def0);
        let n = 100_000;
        let mean: f64 = (0..n)
            .map(|i| rng.uniform(PURPOSE_PRUNE, [i, 0, 0, 0]))
            .sum::<f64>()
            / n as f64;
        // standard error of the mean of U(0,1) over 1e5 draws is 9e-4
        assert!((mean - 0.5).abs() < 5e-3, "mean {mean}");
    }

    #[test]
    fn gamma_draws_have_the_asked_mean_and_spread() {
        // shape 100 (the default wire lengths), 4 and 0.25 (the boost)
        for (mean, std) in [(10.0, 1.0), (2.0, 1.0), (1.0, 2.0)] {
            let mut rng = stream(42, Stream::Wires);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| gamma(&mut rng, mean, std)).collect();
            assert!(xs.iter().all(|&x| x > 0.0));
            let m = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
            // standard errors: std / sqrt(n) <= 0.0045 for the mean
            assert!(
                (m - mean).abs() < 0.03 * std,
                "mean {m} for ({mean}, {std})"
            );
            assert!(
                (var.sqrt() / std - 1.0).abs() < 0.03,
                "std {} for ({mean}, {std})",
                var.sqrt()
            );
        }
    }

    #[test]
    fn counter_normal_has_unit_variance() {
        let rng = CounterRng::new(7);
        let n = 100_000u32;
        let zs: Vec<f64> = (0..n).map(|i| rng.normal::<f64>([1, 2, i, 3])).collect();
        let mean = zs.iter().sum::<f64>() / n as f64;
        let var = zs.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }
}
