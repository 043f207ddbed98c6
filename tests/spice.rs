//! memsweep's physics against ngspice, a simulator nobody here wrote: export
//! instances as netlists, run `ngspice -b`, and compare what it measures
//! with memsweep's own integration of the same phases.
//!
//! Without ngspice these tests fail in CI (`CI=true`) and are skipped, loudly,
//! elsewhere.

use std::io::Write;

use memsweep::model::circuit::Boundary;
use memsweep::spice::{self, Export, Measured, Phase};
use memsweep::sweep::Spec;

/// Euler substeps per pulse at which memsweep must match SPICE within 1%.
const FINE_N_SUB: usize = 1000;

fn ngspice_present() -> bool {
    if spice::ngspice_available() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "ngspice is not installed, and CI must run the SPICE cross-check (.ci/run installs it)"
        );
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing
    // tests, and this must be seen.
    let _ = std::io::stderr().write_all(
        concat!(
            "\n************************************************************************\n",
            "* SKIPPED: ngspice is not installed, so the SPICE cross-check did not  *\n",
            "* run. Install it (Debian: apt-get install ngspice) to run this test.  *\n",
            "************************************************************************\n\n",
        )
        .as_bytes(),
    );
    false
}

fn export(toml: &str, replica: usize, era: Option<usize>) -> Export {
    let spec = Spec::parse(toml, "test.toml").expect("valid sweep");
    Export::from_spec(&spec, 0, replica, era).expect("instance exists")
}

fn ngspice(ex: &Export) -> Measured {
    ex.simulate(ex.default_max_step_s()).unwrap_or_else(|e| {
        panic!(
            "{e}\n--- netlist ---\n{}",
            ex.netlist(ex.default_max_step_s())
        )
    })
}

/// Largest `|a - b| / max(|a|, |b|, floor)` over two lists. NaN marks a
/// quantity not measured: skipped where both lack it, infinite where one
/// does.
fn max_rel(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .filter(|(x, y)| !(x.is_nan() && y.is_nan()))
        .map(|(x, y)| {
            if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else {
                (x - y).abs() / x.abs().max(y.abs()).max(floor)
            }
        })
        .fold(0.0, f64::max)
}

/// The exported resistances, NaN for pruned edges (as `Measured` has them).
fn r_before(ex: &Export) -> Vec<f64> {
    let s = &ex.state;
    s.r.iter()
        .zip(&s.alive)
        .map(|(&r, &alive)| if alive { r } else { f64::NAN })
        .collect()
}

/// Phases up to and including the first pulse start from the exported state
/// in both simulators, so their voltages and currents must agree exactly.
fn same_state_phases(ex: &Export) -> usize {
    ex.phases
        .iter()
        .position(|ph| ph.pulse)
        .map_or(ex.phases.len(), |k| k + 1)
}

/// Compare ngspice with memsweep on `ex`'s schedule; print the errors.
fn cross_check(label: &str, ex: &Export) {
    let spice = ngspice(ex);
    let fine = ex.integrate(FINE_N_SUB);
    let default_n_sub = ex.params.training.n_sub;
    let coarse = ex.integrate(default_n_sub);
    let p = &ex.params;
    let gmin_floor = p.circuit.gmin * p.training.v_read;

    for k in 0..same_state_phases(ex) {
        let v_scale = ex.phases[k]
            .boundary
            .volts
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let dv = max_rel(&spice.volts[k], &fine.volts[k], v_scale);
        let di = max_rel(&spice.currents[k], &fine.currents[k], gmin_floor);
        println!(
            "{label}: phase {k} ({}): voltages within {dv:.1e} (of {v_scale} V), currents within {di:.1e} relative",
            ex.phases[k].name
        );
        assert!(dv <= 1e-6, "{label}: phase {k}: voltages differ by {dv:e}");
        assert!(di <= 1e-6, "{label}: phase {k}: currents differ by {di:e}");
    }
    let mut pulses = 0;
    for (k, ph) in ex.phases.iter().enumerate().filter(|(_, ph)| ph.pulse) {
        pulses += 1;
        let moved = max_rel(&r_before(ex), &spice.r_after[k], 0.0);
        let fine_err = max_rel(&spice.r_after[k], &fine.r_after[k], 0.0);
        let coarse_err = max_rel(&spice.r_after[k], &coarse.r_after[k], 0.0);
        println!(
            "{label}: phase {k} ({}): R moved up to {:.1}%; memsweep vs ngspice: {:.3}% at n_sub {FINE_N_SUB}, {:.3}% at the default n_sub {default_n_sub}",
            ph.name,
            100.0 * moved,
            100.0 * fine_err,
            100.0 * coarse_err
        );
        assert!(
            fine_err <= 0.01,
            "{label}: phase {k}: resistances differ by {:.3}% at n_sub {FINE_N_SUB}",
            100.0 * fine_err
        );
    }
    assert!(pulses > 0, "{label}: the schedule has no pulse");
}

#[test]
fn a_2_4_2_network_matches_ngspice_in_read_punish_and_normalize() {
    if !ngspice_present() {
        return;
    }
    let ex = export("", 0, None);
    assert_eq!(ex.phases.len(), 3);
    cross_check("2-4-2", &ex);
}

#[test]
fn a_depth_2_network_with_variability_and_random_polarity_matches_ngspice() {
    if !ngspice_present() {
        return;
    }
    let ex = export(
        r#"
        [network]
        n_in = 3
        hidden = [5, 4]
        n_out = 3
        density = 0.8
        skip = 0.3
        random_polarity = true
        [device]
        sigma_d2d = 0.2
        "#,
        1,
        None,
    );
    assert!(ex.instance.network.polarity.contains(&-1));
    cross_check("3-[5,4]-3", &ex);
}

#[test]
fn a_random_bulk_network_with_drift_matches_ngspice() {
    if !ngspice_present() {
        return;
    }
    let ex = export(
        r#"
        [network]
        topology = "random_bulk"
        n_in = 2
        n_out = 3
        n_bulk = 10
        p_bulk = 0.3
        random_polarity = true
        [device]
        sigma_d2d = 0.2
        alpha = 2e7
        "#,
        2,
        None,
    );
    cross_check("random_bulk", &ex);
}

/// The VTEAM device (MODEL.md 2b) in each of its shapes, with stuck
/// devices, against ngspice's integration of the same law.
#[test]
fn the_vteam_device_matches_ngspice_in_every_shape() {
    if !ngspice_present() {
        return;
    }
    let shapes = [
        r#"window = "none"
        r_of_x = "linear""#,
        r#"window = "joglekar"
        p_window = 1.5
        r_of_x = "exponential"
        alpha_on = 3.0
        alpha_off = 2.0"#,
        r#"window = "biolek"
        r_of_x = "linear"
        v_off = 0.7
        k_off = 4e5"#,
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let ex = export(
            &format!(
                r#"
                [network]
                n_in = 3
                hidden = [5, 4]
                n_out = 3
                random_polarity = true
                [device]
                model = "vteam"
                sigma_d2d = 0.2
                p_stuck_on = 0.1
                p_stuck_off = 0.1
                {shape}
                "#
            ),
            i,
            None,
        );
        let stuck = ex.instance.devices.stuck.iter().filter(|&&s| s).count();
        assert!(stuck > 0, "shape {i}: no stuck device to check");
        cross_check(&format!("vteam shape {i}"), &ex);
        // Stuck devices stay put in ngspice too.
        let spice = ngspice(&ex);
        for (k, ph) in ex.phases.iter().enumerate().filter(|(_, ph)| ph.pulse) {
            for e in (0..ex.instance.network.n_edges()).filter(|&e| ex.instance.devices.stuck[e]) {
                let (before, after) = (ex.state.r[e], spice.r_after[k][e]);
                assert!(
                    (after - before).abs() <= 1e-9 * before,
                    "shape {i}, phase {k} ({}): stuck X{e} moved from {before} to {after}",
                    ph.name
                );
            }
        }
    }
}

#[test]
fn a_trained_network_with_pruned_edges_matches_ngspice() {
    if !ngspice_present() {
        return;
    }
    let toml = r#"
        [network]
        n_in = 2
        hidden = [6]
        n_out = 2
        random_polarity = true
        [device]
        sigma_d2d = 0.1
        [pruning]
        p_prune = 1.0
        f_prune = 0.3
        "#;
    let ex = (0..50)
        .map(|replica| export(toml, replica, Some(2)))
        .find(|ex| ex.state.alive.iter().any(|&a| !a))
        .expect("some replica prunes an edge in two eras");
    let netlist = ex.netlist(ex.default_max_step_s());
    assert!(netlist.contains(" pruned"));
    assert!(netlist.contains("state: after 2 eras of training"));
    cross_check("2-6-2 trained, pruned", &ex);
}

#[test]
fn a_pulse_below_threshold_leaves_the_state_unchanged_in_both() {
    if !ngspice_present() {
        return;
    }
    let mut ex = export("[device]\nsigma_r0 = 0.5", 0, None);
    // Every input at 0.9 Vt and every output grounded: no device sees more
    // than 0.9 Vt.
    let net = &ex.instance.network;
    let mut b = Boundary::floating(net.n_nodes());
    for i in 0..net.n_in {
        b.drive(i, 0.9 * ex.params.device.vt);
    }
    for o in 0..net.n_out {
        b.ground(net.output_node(o));
    }
    ex.phases = vec![Phase {
        name: "sub-threshold pulse".into(),
        boundary: b,
        pulse: true,
    }];
    let spice = ngspice(&ex);
    let ours = ex.integrate(ex.params.training.n_sub);
    assert_eq!(ours.r_after[0], ex.state.r, "memsweep moved a device");
    let moved = max_rel(&spice.r_after[0], &r_before(&ex), 0.0);
    assert!(moved <= 1e-12, "ngspice moved a device by {moved:e}");
}

#[test]
fn the_netlist_says_what_it_holds_and_how_to_run_it() {
    let ex = export("", 3, None);
    let netlist = ex.netlist(ex.default_max_step_s());
    for needle in [
        "grid point 0, replica 3",
        "state: initial",
        "ngspice -b",
        "read of pattern 0",
        "punish of pattern 0",
        "normalize",
        ".subckt memristor plus minus en",
        "Cx x 0 1 IC={r0}",
        ".end",
    ] {
        assert!(netlist.contains(needle), "netlist lacks {needle:?}");
    }
    // One subcircuit per memristor, plus at the head for polarity +1.
    let net = &ex.instance.network;
    assert!(netlist.contains(&format!(
        "X0 n{} n{} en memristor",
        net.head[0], net.tail[0]
    )));
    assert_eq!(
        netlist.matches(" en memristor params:").count(),
        net.n_edges()
    );
}

#[test]
fn export_spice_writes_the_trained_instance_and_refuses_a_missing_point() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.cir");
    let memsweep = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_memsweep"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let out_arg = out.to_str().unwrap();
    let ok = memsweep(&[
        "export-spice",
        "sweeps/quick.toml",
        "--point",
        "1",
        "--replica",
        "4",
        "--era",
        "3",
        "-o",
        out_arg,
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let netlist = std::fs::read_to_string(&out).unwrap();
    assert!(netlist.contains("sweep 'quick' (sweeps/quick.toml), grid point 1, replica 4"));
    assert!(netlist.contains("state: after 3 eras of training"));

    let bad = memsweep(&[
        "export-spice",
        "sweeps/quick.toml",
        "--point",
        "999",
        "--replica",
        "0",
        "-o",
        out_arg,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--point"));

    if ngspice_present() {
        let run = spice::run_ngspice(&netlist).expect("ngspice runs the exported netlist");
        assert!(run.contains("p0_v0 = "));
    }
}
