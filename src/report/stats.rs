//! The statistics of the report: means with Student-t intervals, Wilson
//! intervals for proportions, the exponential decay fit of a measure
//! against network size, the capacity `C = max P with Pr[learned_all] >=
//! 0.5` (MODEL.md section 8), and bootstrap intervals for both.
//!
//! Plain functions over slices; every interval is 95%. Resampling uses a
//! fixed seed, so a report is reproducible.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// The 0.975 quantile of the standard normal.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// Bootstrap resamples behind every resampling interval of the report.
pub const RESAMPLES: usize = 1000;

/// An estimate with a 95% interval. `lo` and `hi` are NaN where no
/// interval exists (a mean of fewer than two values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub const NONE: Interval = Interval {
        estimate: f64::NAN,
        lo: f64::NAN,
        hi: f64::NAN,
    };
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (`df >=
/// 1`): exact to 9 digits from a table up to 30, a Cornish-Fisher expansion
/// in `1/df` above (error below 1e-7).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706204736,
        4.302652730,
        3.182446305,
        2.776445105,
        2.570581836,
        2.446911851,
        2.364624252,
        2.306004135,
        2.262157163,
        2.228138852,
        2.200985160,
        2.178812830,
        2.160368656,
        2.144786688,
        2.131449546,
        2.119905299,
        2.109815578,
        2.100922040,
        2.093024054,
        2.085963447,
        2.079613845,
        2.073873068,
        2.068657610,
        2.063898562,
        2.059538553,
        2.055529439,
        2.051830516,
        2.048407142,
        2.045229642,
        2.042272456,
    ];
    assert!(df >= 1, "t quantile needs at least one degree of freedom");
    if df <= TABLE.len() {
        return TABLE[df - 1];
    }
    let (z, v) = (Z_975, df as f64);
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
    let g4 = (79.0 * z.powi(9) + 776.0 * z.powi(7) + 1482.0 * z.powi(5)
        - 1920.0 * z.powi(3)
        - 945.0 * z)
        / 92160.0;
    z + g1 / v + g2 / v.powi(2) + g3 / v.powi(3) + g4 / v.powi(4)
}

/// The mean with its Student-t 95% interval, `mean ± t(n-1) s / sqrt(n)`
/// (`s` the sample standard deviation). NaN for no values; no interval for
/// one.
pub fn mean_interval(xs: &[f64]) -> Interval {
    let n = xs.len();
    if n == 0 {
        return Interval::NONE;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Interval {
            estimate: mean,
            ..Interval::NONE
        };
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (var / n as f64).sqrt();
    Interval {
        estimate: mean,
        lo: mean - half,
        hi: mean + half,
    }
}

/// The proportion `k / n` with its Wilson score 95% interval, which stays
/// inside [0, 1] and is honest at 0 and n successes. NaN for `n = 0`.
pub fn wilson(k: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval::NONE;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z_975 * Z_975;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z_975 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        estimate: p,
        lo: (center - half).max(0.0),
        hi: (center + half).min(1.0),
    }
}

/// `y = a exp(-rate (x - x_ref))`, fitted by least squares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    pub a: f64,
    pub rate: f64,
    pub x_ref: f64,
}

impl Exponential {
    pub fn at(&self, x: f64) -> f64 {
        self.a * (-self.rate * (x - self.x_ref)).exp()
    }
}

/// Weighted least-squares fit of `y = a exp(-rate x)` to points `(x, y,
/// weight)`, `rate` of either sign. For a fixed rate the best `a` is
/// closed-form, so the fit is a one-dimensional search over the rate: a
/// grid over `|rate| * span(x) <= 30`, then golden-section refinement.
/// `None` with fewer than two distinct `x` or when every `y` is zero (no
/// curve to fit).
pub fn fit_exponential(points: &[(f64, f64, f64)]) -> Option<Exponential> {
    let x_min = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let span = x_max - x_min;
    if span.is_nan() || span <= 0.0 || points.iter().all(|p| p.1 == 0.0) {
        return None;
    }
    // Best amplitude and residual sum of squares at one rate.
    let solve = |rate: f64| {
        let (mut sye, mut see) = (0.0, 0.0);
        for &(x, y, w) in points {
            let e = (-rate * (x - x_min)).exp();
            sye += w * y * e;
            see += w * e * e;
        }
        let a = sye / see;
        let rss: f64 = points
            .iter()
            .map(|&(x, y, w)| w * (y - a * (-rate * (x - x_min)).exp()).powi(2))
            .sum();
        (a, rss)
    };
    let bound = 30.0 / span;
    let steps = 600;
    let rate_at = |i: usize| -bound + 2.0 * bound * i as f64 / steps as f64;
    let best = (0..=steps)
        .min_by(|&i, &j| solve(rate_at(i)).1.total_cmp(&solve(rate_at(j)).1))
        .expect("a grid");
    let (mut lo, mut hi) = (
        rate_at(best.saturating_sub(1)),
        rate_at((best + 1).min(steps)),
    );
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let (m1, m2) = (hi - phi * (hi - lo), lo + phi * (hi - lo));
        if solve(m1).1 <= solve(m2).1 {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    let rate = (lo + hi) / 2.0;
    Some(Exponential {
        a: solve(rate).0,
        rate,
        x_ref: x_min,
    })
}

/// An exponential decay against size with a bootstrap interval on its
/// rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecayFit {
    pub curve: Exponential,
    /// 95% bootstrap interval of `curve.rate`.
    pub rate_lo: f64,
    pub rate_hi: f64,
}

impl DecayFit {
    /// The decay length `1 / rate` (in units of x); infinite when the
    /// measure does not fall.
    pub fn length(&self) -> f64 {
        decay_length(self.curve.rate)
    }

    /// The 95% interval of the decay length: `[1/rate_hi, 1/rate_lo]`, with
    /// an infinite end where the rate's interval reaches zero.
    pub fn length_interval(&self) -> (f64, f64) {
        (decay_length(self.rate_hi), decay_length(self.rate_lo))
    }
}

fn decay_length(rate: f64) -> f64 {
    if rate > 0.0 {
        1.0 / rate
    } else {
        f64::INFINITY
    }
}

/// Fit `mean(values) = a exp(-rate x)` over points `(x, values of the
/// instances there)`, weighting each point by its instance count, and
/// bootstrap the rate: resample the instances of every point with
/// replacement, refit, take the 2.5% and 97.5% quantiles.
pub fn decay_fit(points: &[(f64, Vec<f64>)], resamples: usize, seed: u64) -> Option<DecayFit> {
    let fit = |means: &[(f64, f64, f64)]| fit_exponential(means);
    let observed: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(x, v)| (*x, mean(v), v.len() as f64))
        .collect();
    let curve = fit(&observed)?;
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut rates: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let means: Vec<(f64, f64, f64)> = points
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(x, v)| (*x, mean(&resample(v, &mut rng)), v.len() as f64))
                .collect();
            fit(&means).map(|c| c.rate)
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let (rate_lo, rate_hi) = quantiles(&rates).unwrap_or((f64::NAN, f64::NAN));
    Some(DecayFit {
        curve,
        rate_lo,
        rate_hi,
    })
}

/// `C = max P with Pr[learned_all] >= 0.5` over points `(P, learned_all of
/// each instance there)`; `None` when no P reaches one half.
pub fn capacity(points: &[(i64, Vec<bool>)]) -> Option<i64> {
    points
        .iter()
        .filter(|(_, l)| !l.is_empty() && 2 * l.iter().filter(|&&b| b).count() >= l.len())
        .map(|(p, _)| *p)
        .max()
}

/// The capacity with a 95% bootstrap interval (instances resampled within
/// each P). `None` sorts below every P: an interval `(None, Some(4))`
/// reads "below the smallest P tested, up to 4".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub c: Option<i64>,
    pub lo: Option<i64>,
    pub hi: Option<i64>,
}

pub fn capacity_with_interval(
    points: &[(i64, Vec<bool>)],
    resamples: usize,
    seed: u64,
) -> Capacity {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut draws: Vec<Option<i64>> = (0..resamples)
        .map(|_| {
            let again: Vec<(i64, Vec<bool>)> = points
                .iter()
                .map(|(p, l)| (*p, resample(l, &mut rng)))
                .collect();
            capacity(&again)
        })
        .collect();
    draws.sort();
    let (lo, hi) = quantiles(&draws).unwrap_or((None, None));
    Capacity {
        c: capacity(points),
        lo,
        hi,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn resample<T: Copy>(v: &[T], rng: &mut Pcg64) -> Vec<T> {
    (0..v.len())
        .map(|_| v[rng.random_range(0..v.len())])
        .collect()
}

/// The 2.5% and 97.5% order statistics of sorted draws.
fn quantiles<T: Copy>(sorted: &[T]) -> Option<(T, T)> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let lo = ((0.025 * n as f64).floor() as usize).min(n - 1);
    let hi = ((0.975 * n as f64).ceil() as usize).clamp(1, n) - 1;
    Some((sorted[lo], sorted[hi]))
}
