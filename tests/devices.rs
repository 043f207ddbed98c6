//! Device laws and faults (MODEL.md sections 2 and 2b): the VTEAM device
//! against closed forms and against the Pershin–Di Ventra device it reduces
//! to, stuck devices in training, and the sweep-file checks of their fields.

use std::sync::Arc;

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::backend::Executor;
use memsweep::instance::Instance;
use memsweep::model::circuit::SolverChoice;
use memsweep::model::device::{DeviceLaw, Vteam};
use memsweep::params::{DeviceModel, Params, ROfX, Topology, Window};
use memsweep::protocol::training::Outcome;
use memsweep::sweep::{instance_seed, Spec};

fn vteam(p: &Params) -> Vteam<f64> {
    Vteam::new(&p.device)
}

fn vteam_params() -> Params {
    let mut p = Params::default();
    p.device.model = DeviceModel::Vteam;
    p
}

/// Under a constant voltage above `v_on`, with no window and a linear
/// `R(x)`, `dx/dt = -k_on (v / v_on - 1)` is constant: every Euler step moves
/// `x` by the same amount, so the resistance after `n` steps is the exact
/// ramp `R(x0 - n dt k_on (v / v_on - 1))` until it reaches `Ron`, where it
/// stays. Depression mirrors it up to `Roff`.
#[test]
fn a_vteam_device_under_a_constant_voltage_follows_the_exact_ramp() {
    let law = vteam(&vteam_params());
    let (ron, roff, vt, dt) = (1e3, 1e4, 1.0, 1e-7);
    for (v, direction) in [(1.5, -1.0), (-1.8, 1.0)] {
        let slope = 2e5 * (f64::abs(v) / vt - 1.0); // |dx/dt|, 1/s
        let x0 = 0.4;
        let mut r = ron + (roff - ron) * x0;
        for n in 1..=200 {
            let rate = law.rate(v, vt, r, ron, roff);
            assert_eq!(rate, direction * slope, "v = {v}, step {n}");
            r = law.step(r, rate, dt, 1.0, ron, roff);
            let x = (x0 + direction * slope * dt * n as f64).clamp(0.0, 1.0);
            let exact = ron + (roff - ron) * x;
            assert!(
                (r - exact).abs() <= 1e-12 * exact,
                "v = {v}, step {n}: {r} against {exact}"
            );
        }
        // The ramp ran into its bound and stopped there, exactly.
        assert_eq!(r, if direction < 0.0 { ron } else { roff });
    }
}

#[test]
fn a_vteam_device_between_its_thresholds_or_stuck_does_not_move() {
    let mut p = vteam_params();
    p.device.v_off = 0.5;
    let law = vteam(&p);
    // v_on = 1, v_off = 0.5: quiet for -0.5 <= v <= 1.
    for v in [-0.5, -0.2, 0.0, 0.7, 1.0] {
        assert_eq!(law.rate(v, 1.0, 3e3, 1e3, 1e4), 0.0, "v = {v}");
    }
    assert!(law.rate(-0.6, 1.0, 3e3, 1e3, 1e4) > 0.0);
    // A stuck device's threshold is negated (Devices::kernel_threshold).
    for v in [-5.0, -1.0, 0.0, 1.0, 5.0] {
        assert_eq!(law.rate(v, -1.0, 3e3, 1e3, 1e4), 0.0, "stuck, v = {v}");
    }
    assert_eq!(law.step(3e3, 0.0, 1e-7, 1.0, 1e3, 1e4), 3e3);
}

/// The rate grows as the `alpha`-th power of the overdrive.
#[test]
fn vteam_exponents_shape_the_rate() {
    let mut p = vteam_params();
    p.device.alpha_on = 3.0;
    p.device.alpha_off = 2.0;
    p.device.v_on = 0.8;
    p.device.v_off = 1.2;
    let law = vteam(&p);
    let rate_on = law.rate(2.0, 0.8, 5e3, 1e3, 1e4);
    let expected_on = -2e5 * (2.0f64 / 0.8 - 1.0).powi(3);
    assert!((rate_on - expected_on).abs() <= 1e-12 * expected_on.abs());
    // v_off_e = v_on_e v_off / v_on: the edge's threshold here is v_on.
    let rate_off = law.rate(-3.0, 0.8, 5e3, 1e3, 1e4);
    let expected_off = 2e5 * (3.0f64 / 1.2 - 1.0).powi(2);
    assert!((rate_off - expected_off).abs() <= 1e-12 * expected_off);
}

#[test]
fn exponential_resistance_and_its_state_invert_each_other() {
    let mut p = vteam_params();
    p.device.r_of_x = ROfX::Exponential;
    let law = vteam(&p);
    let (ron, roff) = (1e3, 1e4);
    assert_eq!(law.r_of_x(0.0, ron, roff), ron);
    assert!((law.r_of_x(1.0, ron, roff) - roff).abs() < 1e-9);
    assert!((law.r_of_x(0.5, ron, roff) - (ron * roff).sqrt()).abs() < 1e-9);
    for x in [0.0, 0.1, 0.37, 0.5, 0.9, 1.0] {
        let back = law.x_of_r(law.r_of_x(x, ron, roff), ron, roff);
        assert!((back - x).abs() < 1e-14, "x = {x}: {back}");
    }
}

#[test]
fn windows_have_their_stated_shapes() {
    let mut p = vteam_params();
    p.device.window = Window::Joglekar;
    let law = vteam(&p);
    for potentiating in [true, false] {
        assert_eq!(law.window(0.0, potentiating), 0.0);
        assert_eq!(law.window(1.0, potentiating), 0.0);
        assert_eq!(law.window(0.5, potentiating), 1.0);
        assert!((law.window(0.25, potentiating) - 0.75).abs() < 1e-15);
    }
    p.device.window = Window::Biolek;
    p.device.p_window = 2.0;
    let law = vteam(&p);
    // f_on = 1 - x^4 while potentiating, f_off = 1 - (1 - x)^4 while
    // depressing (MODEL.md 2b).
    assert_eq!(law.window(0.0, true), 1.0);
    assert_eq!(law.window(1.0, true), 0.0);
    assert_eq!(law.window(0.0, false), 0.0);
    assert_eq!(law.window(1.0, false), 1.0);
    assert!((law.window(0.5, true) - (1.0 - 0.0625)).abs() < 1e-12);
    p.device.window = Window::None;
    assert_eq!(vteam(&p).window(0.3, true), 1.0);
}

fn batch(params: &Params, point: usize, n: usize) -> Vec<(Instance, Arc<Params>)> {
    let params = Arc::new(params.clone());
    (0..n)
        .map(|replica| {
            let seed = instance_seed(7, point, replica);
            (
                Instance::build(&params, point, replica, seed),
                params.clone(),
            )
        })
        .collect()
}

fn train(b: &[(Instance, Arc<Params>)]) -> Vec<Outcome> {
    Cpu {
        precision: Precision::F64,
        solver: SolverChoice::Auto,
    }
    .train(b)
}

fn networks() -> Vec<(&'static str, Params)> {
    let mut layered = Params::default();
    layered.network.n_in = 4;
    layered.network.hidden = vec![8];
    layered.network.n_out = 4;
    let mut deep = Params::default();
    deep.network.n_in = 3;
    deep.network.hidden = vec![6, 5];
    deep.network.n_out = 3;
    deep.network.random_polarity = true;
    deep.device.sigma_c2c = 0.2;
    let mut bulk = Params::default();
    bulk.network.topology = Topology::RandomBulk;
    bulk.network.n_in = 3;
    bulk.network.n_out = 3;
    bulk.network.n_bulk = 12;
    bulk.network.p_bulk = 0.35;
    vec![
        ("4-8-4", layered),
        ("3-[6,5]-3", deep),
        ("random_bulk", bulk),
    ]
}

/// MODEL.md 2b: with its defaults (linear `R(x)`, no window, alpha 1,
/// `sigma_d2d = 0`), VTEAM is the Pershin–Di Ventra device with `alpha = 0`
/// and `beta = k (Roff - Ron) / v_on`, which are that device's defaults:
/// the same outcomes, and resistances and energy equal up to rounding.
#[test]
fn vteam_with_its_defaults_trains_as_the_pershin_di_ventra_device() {
    for (point, (name, pdv)) in networks().into_iter().enumerate() {
        let d = &pdv.device;
        assert_eq!(d.beta, d.k_on * (d.roff - d.ron) / d.v_on);
        let mut vt = pdv.clone();
        vt.device.model = DeviceModel::Vteam;
        let n = 60;
        let (a, b) = (train(&batch(&pdv, point, n)), train(&batch(&vt, point, n)));
        let mut moved = 0;
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            let what = format!("{name}, replica {i}");
            assert_eq!(a.recalled, b.recalled, "{what}: recalled");
            assert_eq!(a.converged_era, b.converged_era, "{what}: converged_era");
            assert_eq!(a.eras_run, b.eras_run, "{what}: eras_run");
            assert_eq!(a.pruned_edges, b.pruned_edges, "{what}: pruned_edges");
            assert_eq!(a.alive_final, b.alive_final, "{what}: alive");
            let rel = (a.energy_write - b.energy_write).abs() / a.energy_write.max(1e-30);
            assert!(
                rel < 1e-9,
                "{what}: energy {} against {}",
                a.energy_write,
                b.energy_write
            );
            for (ra, rb) in a.r_final.iter().zip(&b.r_final) {
                assert!((ra - rb).abs() <= 1e-9 * ra, "{what}: R {ra} against {rb}");
            }
            moved += (a.energy_write > 0.0) as usize;
        }
        assert!(moved > n / 2, "{name}: only {moved} instances were written");
    }
}

/// A stuck device starts at the bound it is stuck at and never moves; the
/// stuck fraction is the probability asked for; the others train.
#[test]
fn stuck_devices_sit_at_their_bound_for_good() {
    let mut p = networks()[1].1.clone(); // c2c noise and random polarity
    p.device.p_stuck_on = 0.15;
    p.device.p_stuck_off = 0.1;
    p.pruning.p_prune = 0.0;
    for model in [DeviceModel::PershinDiVentra, DeviceModel::Vteam] {
        p.device.model = model;
        let b = batch(&p, 0, 40);
        let out = train(&b);
        let (mut on, mut off, mut edges, mut free_moved) = (0, 0, 0, 0);
        for ((inst, _), o) in b.iter().zip(&out) {
            let dev = &inst.devices;
            for e in 0..inst.network.n_edges() {
                edges += 1;
                if dev.stuck[e] {
                    assert_eq!(o.r_final[e], dev.r0[e], "{model:?}: a stuck device moved");
                    if dev.r0[e] == dev.ron[e] {
                        on += 1;
                    } else {
                        assert_eq!(dev.r0[e], dev.roff[e]);
                        off += 1;
                    }
                } else if o.r_final[e] != dev.r0[e] {
                    free_moved += 1;
                }
            }
        }
        // Binomial counts within 5 standard deviations.
        for (count, q) in [(on, 0.15), (off, 0.1)] {
            let (mean, sd) = (edges as f64 * q, (edges as f64 * q * (1.0 - q)).sqrt());
            assert!(
                (count as f64 - mean).abs() < 5.0 * sd,
                "{model:?}: {count} of {edges} stuck, expected {mean}"
            );
        }
        assert!(
            free_moved > edges / 10,
            "{model:?}: the free devices hardly moved"
        );
    }
}

/// Stuck at Roff is at or above the pruning threshold: pruning still removes
/// such devices (MODEL.md section 2).
#[test]
fn devices_stuck_off_can_still_be_pruned() {
    let mut p = networks()[0].1.clone();
    p.device.p_stuck_off = 1.0;
    p.pruning.p_prune = 0.5;
    let out = train(&batch(&p, 0, 10));
    let with_mistakes: Vec<&Outcome> = out.iter().filter(|o| o.converged_era != Some(0)).collect();
    assert!(!with_mistakes.is_empty());
    assert!(with_mistakes.iter().all(|o| o.pruned_edges > 0));
    // Nothing moved: the energy went into resistors that stayed put.
    for o in &out {
        assert!(o.r_final.iter().all(|&r| r == 1e4));
    }
}

/// The stuck draw belongs to the instance, not to the device law or to the
/// other draws: the same devices are stuck under either law.
#[test]
fn the_same_devices_are_stuck_under_either_law() {
    let mut p = networks()[2].1.clone();
    p.device.p_stuck_on = 0.2;
    p.device.p_stuck_off = 0.2;
    let a = batch(&p, 3, 5);
    p.device.model = DeviceModel::Vteam;
    let b = batch(&p, 3, 5);
    for ((ia, _), (ib, _)) in a.iter().zip(&b) {
        assert_eq!(ia.devices.stuck, ib.devices.stuck);
        assert!(ia.devices.stuck.iter().any(|&s| s));
    }
}

fn reject(text: &str) -> (String, String) {
    match Spec::parse(text, "sweeps/devices.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert_eq!(e.file, "sweeps/devices.toml");
            assert!(!e.to_string().contains('\n'), "{e}");
            (e.field, e.reason)
        }
    }
}

#[test]
fn bad_device_fields_are_named() {
    let cases = [
        ("[device]\nmodel = \"teamm\"\n", "device.model", "\"vteam\""),
        (
            "[device]\nwindow = \"prodromakis\"\n",
            "device.window",
            "\"biolek\"",
        ),
        (
            "[device]\nr_of_x = \"log\"\n",
            "device.r_of_x",
            "\"exponential\"",
        ),
        (
            "[device]\nmodel = \"vteam\"\nv_on = 0.0\n",
            "device.v_on",
            "> 0",
        ),
        ("[device]\nv_off = -1.0\n", "device.v_off", "> 0"),
        ("[device]\nk_on = 0.0\n", "device.k_on", "> 0"),
        ("[device]\nk_off = -2e5\n", "device.k_off", "> 0"),
        ("[device]\nalpha_on = 0.0\n", "device.alpha_on", "> 0"),
        ("[device]\np_window = 0.0\n", "device.p_window", "> 0"),
        (
            "[device]\np_stuck_on = 1.5\n",
            "device.p_stuck_on",
            "probability",
        ),
        (
            "[device]\np_stuck_on = 0.6\np_stuck_off = 0.5\n",
            "device.p_stuck_off",
            "at most 1",
        ),
        (
            "[device]\np_stuck_on = 0.6\n[[axes]]\n\"device.p_stuck_off\" = [0.1, 0.7]\n",
            "device.p_stuck_off",
            "at most 1",
        ),
    ];
    for (text, field, mention) in cases {
        let (f, reason) = reject(text);
        // An axis value is named by its axis: axes[0]."device.p_stuck_off".
        assert!(
            f == field || f.ends_with(&format!("\"{field}\"")),
            "{text}: {f}"
        );
        assert!(reason.contains(mention), "{text}: `{reason}`");
    }
}
