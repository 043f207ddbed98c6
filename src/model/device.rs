//! The voltage-controlled threshold memristor (MODEL.md section 2): its
//! per-device parameters, drawn per instance, and its state equation.

use crate::params::DeviceParams;
use crate::real::Real;
use crate::rng::{self, Stream};

/// Per-edge device parameters and initial resistances of one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Devices {
    /// Ohm.
    pub ron: Vec<f64>,
    /// Ohm.
    pub roff: Vec<f64>,
    /// Volt.
    pub vt: Vec<f64>,
    /// Initial resistance `R_e(0)`, ohm.
    pub r0: Vec<f64>,
}

impl Devices {
    /// Draw device-to-device variability and the initial state of `n_edges`
    /// devices from the instance's seed.
    pub fn draw(p: &DeviceParams, n_edges: usize, seed: u64) -> Devices {
        let mut d2d = rng::stream(seed, Stream::DeviceToDevice);
        let mut init = rng::stream(seed, Stream::InitialState);
        let mut dev = Devices {
            ron: Vec::with_capacity(n_edges),
            roff: Vec::with_capacity(n_edges),
            vt: Vec::with_capacity(n_edges),
            r0: Vec::with_capacity(n_edges),
        };
        let r_mid = (p.ron * p.roff).sqrt();
        let spread = p.sigma_d2d != 0.0;
        for _ in 0..n_edges {
            // Without spread the draws would be multiplied by zero: skip
            // them (the stream serves nothing else, so no later draw moves).
            let mut normal = || {
                if spread {
                    rng::standard_normal(&mut d2d)
                } else {
                    0.0
                }
            };
            let (z, z1, z2) = (normal(), normal(), normal());
            let mut ron = p.ron * (p.sigma_d2d * z).exp();
            let mut roff = p.roff * (p.sigma_d2d * z1).exp();
            if roff <= ron {
                std::mem::swap(&mut ron, &mut roff);
            }
            let vt = p.vt * (p.sigma_d2d * z2).exp();
            let r0 =
                (r_mid * (p.sigma_r0 * rng::standard_normal(&mut init)).exp()).clamp(ron, roff);
            dev.ron.push(ron);
            dev.roff.push(roff);
            dev.vt.push(vt);
            dev.r0.push(r0);
        }
        dev
    }
}

/// `dR/dt` (ohm/s) of a device at voltage `v` (its own orientation) with
/// threshold `vt > 0`: above threshold the resistance falls, below minus the
/// threshold it rises, in between it drifts at `alpha`.
///
/// Written as selects between values computed unconditionally, so that a
/// block of devices compiles to vector code without branches.
#[inline(always)]
pub fn resistance_rate<F: Real>(v: F, vt: F, alpha: F, beta: F) -> F {
    let above = v - vt;
    let below = v + vt;
    // The excess beyond the threshold: at most one of the two is nonzero.
    let excess = (if above > F::ZERO { above } else { F::ZERO })
        + (if below < F::ZERO { below } else { F::ZERO });
    let switching = -beta * excess;
    let drift = -alpha * v;
    if excess != F::ZERO {
        switching
    } else {
        drift
    }
}

/// Mean-one multiplicative cycle-to-cycle factor `exp(sigma z - sigma^2/2)`.
#[inline(always)]
pub fn c2c_factor<F: Real>(sigma: F, z: F) -> F {
    (sigma * z - F::from_f64(0.5) * sigma * sigma).exp()
}

/// One explicit-Euler step of one device: the new resistance, clipped to
/// `[ron, roff]`.
#[inline(always)]
pub fn euler_step<F: Real>(r: F, rate: F, dt: F, noise: F, ron: F, roff: F) -> F {
    let next = r + dt * rate * noise;
    let floored = if next < ron { ron } else { next };
    if floored > roff {
        roff
    } else {
        floored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn rate_is_zero_below_threshold_without_drift() {
        for v in [-1.0, -0.5, 0.0, 0.3, 1.0] {
            assert_eq!(resistance_rate(v, 1.0, 0.0, 1.8e9), 0.0);
        }
    }

    #[test]
    fn positive_voltage_above_threshold_lowers_resistance() {
        assert_eq!(resistance_rate(1.5, 1.0, 0.0, 2.0e9), -1.0e9);
        assert_eq!(resistance_rate(-1.5, 1.0, 0.0, 2.0e9), 1.0e9);
        assert_eq!(resistance_rate(0.5, 1.0, 4.0, 2.0e9), -2.0);
    }

    #[test]
    fn d2d_draws_keep_roff_above_ron() {
        let mut p = Params::default().device;
        p.sigma_d2d = 2.0;
        let d = Devices::draw(&p, 1000, 3);
        for e in 0..1000 {
            assert!(d.roff[e] > d.ron[e]);
            assert!(d.r0[e] >= d.ron[e] && d.r0[e] <= d.roff[e]);
        }
    }

    #[test]
    fn without_variability_every_device_starts_at_the_geometric_mean() {
        let mut p = Params::default().device;
        p.sigma_r0 = 0.0;
        let d = Devices::draw(&p, 10, 3);
        assert!(d.r0.iter().all(|&r| (r - 1e3 * 10f64.sqrt()).abs() < 1e-9));
        assert!(d.ron.iter().all(|&r| r == 1e3));
    }
}
