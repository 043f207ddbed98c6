//! The voltage-controlled threshold memristor (MODEL.md sections 2 and 2b):
//! its per-device parameters and stuck devices, drawn per instance, and the
//! two device laws, Pershin–Di Ventra and VTEAM, as the pointwise rules
//! both backends run (`shaders/common.wgsl` mirrors each function here).

use crate::params::{DeviceModel, DeviceParams, ROfX, Window};
use crate::real::Real;
use crate::rng::{self, CounterRng, Stream, PURPOSE_STUCK};

/// Per-edge device parameters and initial resistances of one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Devices {
    /// Ohm.
    pub ron: Vec<f64>,
    /// Ohm.
    pub roff: Vec<f64>,
    /// Volt.
    pub vt: Vec<f64>,
    /// Initial resistance `R_e(0)`, ohm: `Ron_e` or `Roff_e` for a stuck
    /// device.
    pub r0: Vec<f64>,
    /// Whether each device is stuck: it never moves (MODEL.md section 2).
    pub stuck: Vec<bool>,
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
            stuck: vec![false; n_edges],
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
            let vt = p.threshold() * (p.sigma_d2d * z2).exp();
            let r0 =
                (r_mid * (p.sigma_r0 * rng::standard_normal(&mut init)).exp()).clamp(ron, roff);
            dev.ron.push(ron);
            dev.roff.push(roff);
            dev.vt.push(vt);
            dev.r0.push(r0);
        }
        dev.stick(p, seed);
        dev
    }

    /// Draw which devices are stuck, and pin each stuck one's state to the
    /// bound it is stuck at: one counter-hash uniform `u` per edge, stuck
    /// at `Ron_e` if `u < p_stuck_on`, at `Roff_e` if
    /// `p_stuck_on <= u < p_stuck_on + p_stuck_off`. Run again after
    /// per-edge values replace drawn ones (a `graph` file's), it draws the
    /// same devices and pins them to the new bounds.
    pub fn stick(&mut self, p: &DeviceParams, seed: u64) {
        if p.p_stuck_on <= 0.0 && p.p_stuck_off <= 0.0 {
            return;
        }
        let rng = CounterRng::new(seed);
        for e in 0..self.r0.len() {
            let u = rng.uniform(PURPOSE_STUCK, [0, 0, 0, e as u32]);
            if u < p.p_stuck_on {
                self.r0[e] = self.ron[e];
                self.stuck[e] = true;
            } else if u < p.p_stuck_on + p.p_stuck_off {
                self.r0[e] = self.roff[e];
                self.stuck[e] = true;
            }
        }
    }

    /// The threshold edge `e` is handed to the kernels with: its own, or,
    /// for a stuck device, its negation, which every law reads as "never
    /// moves" (`resistance_rate`, `Vteam::rate`).
    pub fn kernel_threshold(&self, e: usize) -> f64 {
        if self.stuck[e] {
            -self.vt[e]
        } else {
            self.vt[e]
        }
    }
}

/// A device law as the kernels run it: the rate of its state at voltage
/// `v` (the device's own orientation) and one explicit-Euler step of it.
/// `vt` is the edge's threshold (`Devices::kernel_threshold`: negative for a
/// stuck device), `r` its resistance, `ron`/`roff` its bounds.
pub trait DeviceLaw<F: Real>: Copy {
    /// The rate of the law's state: dR/dt (ohm/s) or dx/dt (1/s).
    fn rate(&self, v: F, vt: F, r: F, ron: F, roff: F) -> F;
    /// A cheap screen: false only where `rate` is certainly zero, so that
    /// a block of quiet devices skips the law.
    #[inline(always)]
    fn may_move(&self, _v: F, _vt: F) -> bool {
        true
    }
    /// The resistance after one step of `dt` at `rate`, the increment
    /// multiplied by the cycle-to-cycle factor `noise`, clipped to the
    /// bounds; exactly `r` when `rate` is zero.
    fn step(&self, r: F, rate: F, dt: F, noise: F, ron: F, roff: F) -> F;
}

/// The Pershin–Di Ventra threshold memristor (MODEL.md section 2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PershinDiVentra<F> {
    pub alpha: F,
    pub beta: F,
}

impl<F: Real> DeviceLaw<F> for PershinDiVentra<F> {
    #[inline(always)]
    fn rate(&self, v: F, vt: F, _r: F, _ron: F, _roff: F) -> F {
        resistance_rate(v, vt, self.alpha, self.beta)
    }

    #[inline(always)]
    fn step(&self, r: F, rate: F, dt: F, noise: F, ron: F, roff: F) -> F {
        euler_step(r, rate, dt, noise, ron, roff)
    }
}

/// The VTEAM device (MODEL.md section 2b). Its state `x` in `[0, 1]` is
/// kept as the resistance `R(x)`; a step converts to `x`, moves and clips
/// `x`, and converts back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vteam<F> {
    pub k_on: F,
    pub k_off: F,
    pub alpha_on: F,
    pub alpha_off: F,
    /// `v_off / v_on`: a device's two thresholds scale together under
    /// device-to-device variability, so `v_off_e = v_on_e v_off / v_on`.
    pub off_ratio: F,
    pub window: Window,
    /// The window's exponent `2 p_window`.
    pub window_power: F,
    pub exponential: bool,
}

impl<F: Real> Vteam<F> {
    pub fn new(p: &DeviceParams) -> Self {
        Vteam {
            k_on: F::from_f64(p.k_on),
            k_off: F::from_f64(p.k_off),
            alpha_on: F::from_f64(p.alpha_on),
            alpha_off: F::from_f64(p.alpha_off),
            off_ratio: F::from_f64(p.v_off / p.v_on),
            window: p.window,
            window_power: F::from_f64(2.0 * p.p_window),
            exponential: p.r_of_x == ROfX::Exponential,
        }
    }

    /// The state `x` of a device at resistance `r`.
    #[inline(always)]
    pub fn x_of_r(&self, r: F, ron: F, roff: F) -> F {
        if self.exponential {
            (r / ron).ln() / (roff / ron).ln()
        } else {
            (r - ron) / (roff - ron)
        }
    }

    /// `R(x)`: `ron + (roff - ron) x`, or `ron (roff / ron)^x`.
    #[inline(always)]
    pub fn r_of_x(&self, x: F, ron: F, roff: F) -> F {
        if self.exponential {
            ron * (x * (roff / ron).ln()).exp()
        } else {
            ron + (roff - ron) * x
        }
    }

    /// The window `f(x)`, `potentiating` or depressing.
    #[inline(always)]
    pub fn window(&self, x: F, potentiating: bool) -> F {
        match self.window {
            Window::None => F::ONE,
            Window::Joglekar => {
                F::ONE - power((F::from_f64(2.0) * x - F::ONE).abs(), self.window_power)
            }
            Window::Biolek => {
                let base = if potentiating { x } else { F::ONE - x };
                F::ONE - power(base, self.window_power)
            }
        }
    }
}

impl<F: Real> DeviceLaw<F> for Vteam<F> {
    /// Beyond a threshold: `v > v_on` or `-v > v_off`. (The division in
    /// `rate` is monotonic, so `v / v_on - 1 > 0` implies `v > v_on`.)
    #[inline(always)]
    fn may_move(&self, v: F, vt: F) -> bool {
        (vt > F::ZERO) & ((v > vt) | (-v > vt * self.off_ratio))
    }

    /// dx/dt (1/s); `vt` is the edge's `v_on_e`.
    #[inline(always)]
    fn rate(&self, v: F, vt: F, r: F, ron: F, roff: F) -> F {
        let v_on = vt;
        let v_off = vt * self.off_ratio;
        // How far beyond each threshold, 0 below it (and for a stuck
        // device, whose thresholds are negative).
        let over_on = v / v_on - F::ONE;
        let over_off = -v / v_off - F::ONE;
        let on = (vt > F::ZERO) & (over_on > F::ZERO);
        let off = (vt > F::ZERO) & (over_off > F::ZERO);
        if !(on | off) {
            return F::ZERO;
        }
        let x = self.x_of_r(r, ron, roff);
        if on {
            -self.k_on * power(over_on, self.alpha_on) * self.window(x, true)
        } else {
            self.k_off * power(over_off, self.alpha_off) * self.window(x, false)
        }
    }

    #[inline(always)]
    fn step(&self, r: F, rate: F, dt: F, noise: F, ron: F, roff: F) -> F {
        if rate == F::ZERO {
            return r;
        }
        let x = self.x_of_r(r, ron, roff) + dt * rate * noise;
        let x = if x < F::ZERO { F::ZERO } else { x };
        let x = if x > F::ONE { F::ONE } else { x };
        self.r_of_x(x, ron, roff)
    }
}

/// `base^e` for `base >= 0`, exact for the exponents 1 and 2 (VTEAM's
/// defaults, and a window with `p_window = 1`).
#[inline(always)]
pub fn power<F: Real>(base: F, e: F) -> F {
    if e == F::ONE {
        base
    } else if e == F::from_f64(2.0) {
        base * base
    } else if base == F::ZERO {
        F::ZERO
    } else {
        (e * base.ln()).exp()
    }
}

/// The device law of one grid point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Law<F> {
    PershinDiVentra(PershinDiVentra<F>),
    Vteam(Vteam<F>),
}

impl<F: Real> Law<F> {
    pub fn new(p: &DeviceParams) -> Self {
        match p.model {
            DeviceModel::PershinDiVentra => Law::PershinDiVentra(PershinDiVentra {
                alpha: F::from_f64(p.alpha),
                beta: F::from_f64(p.beta),
            }),
            DeviceModel::Vteam => Law::Vteam(Vteam::new(p)),
        }
    }

    /// The rate, for callers outside the hot loop.
    pub fn rate(&self, v: F, vt: F, r: F, ron: F, roff: F) -> F {
        match self {
            Law::PershinDiVentra(l) => l.rate(v, vt, r, ron, roff),
            Law::Vteam(l) => l.rate(v, vt, r, ron, roff),
        }
    }

    /// The step, for callers outside the hot loop.
    pub fn step(&self, r: F, rate: F, dt: F, noise: F, ron: F, roff: F) -> F {
        match self {
            Law::PershinDiVentra(l) => l.step(r, rate, dt, noise, ron, roff),
            Law::Vteam(l) => l.step(r, rate, dt, noise, ron, roff),
        }
    }
}

/// `dR/dt` (ohm/s) of a device at voltage `v` (its own orientation) with
/// threshold `vt > 0`: above threshold the resistance falls, below minus the
/// threshold it rises, in between it drifts at `alpha`. A stuck device
/// (`vt < 0`) does not move.
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
    let rate = if excess != F::ZERO { switching } else { drift };
    if vt < F::ZERO {
        F::ZERO
    } else {
        rate
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
