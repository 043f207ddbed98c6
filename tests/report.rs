//! `memsweep report`: its statistics against hand-computed values, the
//! exponential fit and the capacity on synthetic data, the summary of a
//! hand-built results directory split over shards, the figures of a real
//! quick sweep, and DuckDB reading the same means from the Parquet files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use memsweep::params::Params;
use memsweep::protocol::training::EraRead;
use memsweep::report::chart::Rasteriser;
use memsweep::report::load::load;
use memsweep::report::stats::{
    capacity, capacity_with_interval, decay_fit, fit_exponential, mean_interval, t_975, wilson,
};
use memsweep::report::summary::{era_curves, Grid};
use memsweep::results::{eras_batch, instances_batch, write_parquet, InstanceRecord};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn student_t_quantiles_match_tables() {
    assert!(close(t_975(1), 12.706204736, 1e-9));
    assert!(close(t_975(3), 3.182446305, 1e-9));
    assert!(close(t_975(30), 2.042272456, 1e-9));
    // Above the table, the expansion: t(0.975; 40) = 2.0210754, t(0.975; 200) = 1.9718962.
    assert!(close(t_975(40), 2.0210754, 1e-6));
    assert!(close(t_975(200), 1.9718962, 1e-6));
}

#[test]
fn mean_interval_is_mean_plus_minus_t_s_over_root_n() {
    // 1, 2, 3, 4: mean 2.5, s = sqrt(5/3), t(3) = 3.1824463.
    let i = mean_interval(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(i.estimate, 2.5);
    assert!(close(i.lo, 0.445_739_743, 1e-8), "{i:?}");
    assert!(close(i.hi, 4.554_260_257, 1e-8), "{i:?}");
    let one = mean_interval(&[7.0]);
    assert_eq!(one.estimate, 7.0);
    assert!(
        one.lo.is_nan() && one.hi.is_nan(),
        "no interval from one value"
    );
    assert!(mean_interval(&[]).estimate.is_nan());
}

#[test]
fn wilson_intervals_match_hand_computed_values() {
    let i = wilson(8, 10);
    assert_eq!(i.estimate, 0.8);
    assert!(
        close(i.lo, 0.490_162_47, 1e-7) && close(i.hi, 0.943_317_85, 1e-7),
        "{i:?}"
    );
    // No successes: [0, z^2 / (n + z^2)].
    let none = wilson(0, 20);
    assert_eq!((none.estimate, none.lo), (0.0, 0.0));
    assert!(close(none.hi, 0.161_125_158, 1e-8), "{none:?}");
    let all = wilson(20, 20);
    assert!(
        close(all.lo, 1.0 - 0.161_125_158, 1e-8) && all.hi == 1.0,
        "{all:?}"
    );
}

#[test]
fn the_exponential_fit_recovers_an_exact_decay() {
    let points: Vec<(f64, f64, f64)> = [8.0, 16.0, 24.0, 32.0]
        .iter()
        .map(|&x| (x, 0.8 * (-x / 12.0f64).exp(), 1.0))
        .collect();
    let fit = fit_exponential(&points).unwrap();
    assert!(close(1.0 / fit.rate, 12.0, 1e-6), "{fit:?}");
    assert!(close(fit.at(20.0), 0.8 * (-20.0 / 12.0f64).exp(), 1e-9));
    // A rising measure fits a negative rate: no decay.
    let rising: Vec<(f64, f64, f64)> = [1.0, 2.0, 3.0]
        .iter()
        .map(|&x| (x, 0.1 * (x / 2.0f64).exp(), 1.0))
        .collect();
    assert!(close(fit_exponential(&rising).unwrap().rate, -0.5, 1e-6));
    assert!(
        fit_exponential(&[(4.0, 0.5, 1.0)]).is_none(),
        "one size: no fit"
    );
    assert!(fit_exponential(&[(4.0, 0.0, 1.0), (8.0, 0.0, 1.0)]).is_none());
}

/// Pr[learned_all] = 0.9 exp(-nodes / 12), 2000 Bernoulli instances at each
/// of 8, 16, ..., 48 nodes.
fn synthetic_decay(seed: u64) -> Vec<(f64, Vec<f64>)> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (1..=6)
        .map(|k| {
            let x = 8.0 * k as f64;
            let p = 0.9 * (-x / 12.0f64).exp();
            let v = (0..2000)
                .map(|_| (rng.random::<f64>() < p) as u8 as f64)
                .collect();
            (x, v)
        })
        .collect()
}

/// Over 20 synthetic data sets the fitted decay length lands within 1 node
/// of the true 12, and its 95% bootstrap interval covers 12 in at least 17.
#[test]
fn the_decay_fit_recovers_a_known_decay_length_from_noisy_data() {
    let mut covered = 0;
    for seed in 0..20 {
        let fit = decay_fit(&synthetic_decay(seed), 200, seed + 100).unwrap();
        let (lo, hi) = fit.length_interval();
        eprintln!(
            "seed {seed}: ξ = {:.2} [{lo:.2}, {hi:.2}] (true 12)",
            fit.length()
        );
        assert!(
            close(fit.length(), 12.0, 1.0),
            "seed {seed}: {}",
            fit.length()
        );
        assert!(
            lo < fit.length() && fit.length() < hi && hi - lo < 3.0,
            "[{lo}, {hi}]"
        );
        covered += (lo <= 12.0 && 12.0 <= hi) as usize;
    }
    assert!(covered >= 17, "interval covered 12 in {covered} of 20");
}

#[test]
fn capacity_is_the_largest_p_with_at_least_half_learned() {
    let at = |p: i64, learned: usize, n: usize| (p, (0..n).map(|i| i < learned).collect());
    let points: Vec<(i64, Vec<bool>)> = vec![
        at(1, 10, 10),
        at(2, 8, 10),
        at(3, 5, 10),
        at(4, 3, 10),
        at(5, 0, 10),
    ];
    assert_eq!(capacity(&points), Some(3), "exactly one half counts");
    assert_eq!(capacity(&[at(2, 4, 10), at(3, 1, 10)]), None);
    let c = capacity_with_interval(&points, 500, 7);
    assert_eq!(c.c, Some(3));
    assert!(
        c.lo <= Some(3) && c.hi >= Some(3) && c.lo >= Some(2) && c.hi <= Some(4),
        "{c:?}"
    );
}

fn read(era: u32, pattern: u32, correct: bool, read_power: f64) -> EraRead {
    EraRead {
        era,
        pattern,
        correct,
        read_power,
    }
}

/// One hand-built row; P = 2, so `learned_all` is `recalled == 2`.
#[allow(clippy::too_many_arguments)]
fn row(
    params: &Arc<Params>,
    point: usize,
    replica: usize,
    recalled: usize,
    converged_era: Option<u32>,
    controllability: (f64, f64),
    trace: Vec<EraRead>,
) -> InstanceRecord {
    InstanceRecord {
        point,
        replica,
        seed: (point * 100 + replica) as u64,
        params: params.clone(),
        n_nodes: 8,
        n_edges: 16,
        recalled,
        converged_era,
        eras_run: trace.iter().map(|r| r.era + 1).max().unwrap_or(0),
        energy_write: 1e-9,
        pruned_edges: 0,
        contrast: Some(1.5 + replica as f64),
        cycle_space_dim: Some(12),
        controllability_initial: Some(controllability.0),
        controllability_final: Some(controllability.1),
        backend: "cpu",
        trace,
    }
}

/// Two grid points (sigma_r0 = 0 and 0.3) written as two shards.
fn synthetic_results(dir: &Path) {
    let mut pa = Params::default();
    pa.device.sigma_r0 = 0.0;
    let pa = Arc::new(pa);
    let pb = Arc::new(Params::default());
    let one_era = |c: bool| vec![read(0, 0, true, 1e-4), read(0, 1, c, 1e-4)];
    let shard0 = vec![
        row(&pa, 0, 0, 2, Some(1), (0.5, 1.0), one_era(true)),
        row(&pa, 0, 1, 1, None, (0.5, 0.5), one_era(false)),
    ];
    let shard1 = vec![
        row(&pa, 0, 2, 2, Some(3), (0.25, 0.5), one_era(true)),
        row(&pa, 0, 3, 0, None, (0.25, 0.0), one_era(false)),
        row(
            &pb,
            1,
            0,
            2,
            Some(0),
            (0.5, 0.5),
            vec![read(0, 0, true, 1e-4), read(0, 1, true, 3e-4)],
        ),
        row(
            &pb,
            1,
            1,
            2,
            Some(2),
            (0.5, 0.5),
            vec![
                read(0, 0, false, 2e-4),
                read(0, 1, false, 2e-4),
                read(1, 0, true, 1e-4),
                read(1, 1, false, 1e-4),
                read(2, 0, true, 5e-5),
                read(2, 1, true, 5e-5),
            ],
        ),
    ];
    for table in ["instances", "eras"] {
        std::fs::create_dir_all(dir.join(table)).unwrap();
    }
    // Shards in reverse order: the report must not depend on file order.
    for (name, rows) in [
        ("part-00000.parquet", &shard1),
        ("part-00001.parquet", &shard0),
    ] {
        write_parquet(
            &dir.join("instances").join(name),
            &instances_batch(rows),
            &[],
        )
        .unwrap();
        write_parquet(&dir.join("eras").join(name), &eras_batch(rows), &[]).unwrap();
    }
}

#[test]
fn a_sharded_synthetic_table_gives_the_hand_computed_summary() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_results(dir.path());
    let results = load(dir.path()).unwrap();
    assert_eq!(results.instances.len(), 6);
    let grid = Grid::new(&results);
    assert_eq!(grid.varied.columns, ["sigma_r0"]);
    assert_eq!(grid.varied.labels, ["sigma_r0"]);
    assert_eq!(grid.points.len(), 2);
    let a = &grid.points[0];
    assert_eq!(grid.label(a), "sigma_r0 = 0.0");
    assert!(a.symmetric, "sigma_r0 = 0 on a 2-4-2 layered network");
    assert_eq!(a.instances(), 4);
    // recalled 2, 1, 2, 0: mean 1.25, s^2 = 2.75 / 3, t(3) = 3.1824463.
    assert_eq!(a.recalled.estimate, 1.25);
    assert!(
        close(a.recalled.lo, -0.273_480_181, 1e-8),
        "{:?}",
        a.recalled
    );
    assert!(close(a.recalled.hi, 2.773_480_181, 1e-8));
    assert_eq!(a.recalled_frac.estimate, 0.625);
    // 2 of 4 learned everything: Wilson [0.150039, 0.849961].
    assert_eq!(a.learned_all.estimate, 0.5);
    assert!(
        close(a.learned_all.lo, 0.150_038_989, 1e-8),
        "{:?}",
        a.learned_all
    );
    assert!(close(a.learned_all.hi, 0.849_961_011, 1e-8));
    // Converged at eras 1 and 3 (two of four): mean 2, t(1) = 12.706.
    assert_eq!((a.converged, a.converged_era.estimate), (2, 2.0));
    assert!(close(a.converged_era.hi, 14.706_204_736, 1e-8));
    assert_eq!(a.controllability_initial.estimate, 0.375);
    assert_eq!(a.controllability_final.estimate, 0.5);
    assert_eq!(a.cycle_space_dim.estimate, 12.0);

    let b = &grid.points[1];
    assert!(!b.symmetric);
    assert_eq!(
        (b.recalled.estimate, b.recalled.lo, b.recalled.hi),
        (2.0, 2.0, 2.0)
    );
    assert!(close(b.learned_all.lo, 0.342_380_228, 1e-8) && b.learned_all.hi == 1.0);
    // Instance 0 stopped after era 0 and keeps its values for eras 1 and 2.
    let (correct, power) = era_curves(&results, b);
    let means: Vec<f64> = correct.iter().map(|i| i.estimate).collect();
    assert_eq!(means, [0.5, 0.75, 1.0]);
    let watts: Vec<f64> = power.iter().map(|i| i.estimate).collect();
    assert!(close(watts[0], 2e-4, 1e-18) && close(watts[1], 1.5e-4, 1e-18));
    assert!(close(watts[2], 1.25e-4, 1e-18), "{watts:?}");

    // The whole report: the statistics at full precision, and the figures
    // that apply when only the symmetry varies.
    let report = memsweep::report::report(dir.path()).unwrap();
    assert_eq!(
        report.figures,
        [
            "learning_curves",
            "read_power",
            "controllability",
            "contrast"
        ]
    );
    let csv = std::fs::read_to_string(dir.path().join("report/summary.csv")).unwrap();
    assert!(csv.starts_with("sigma_r0,label,model,n_patterns,n_nodes,instances,recalled_mean"));
    assert!(
        csv.contains("0.0,sigma_r0 = 0.0,circuit,2,8,4,1.25,"),
        "{csv}"
    );
    assert!(
        report.text.contains("1.25 [-0.27, 2.77]"),
        "{}",
        report.text
    );
}

#[test]
fn a_directory_without_results_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = memsweep::report::report(dir.path()).err().unwrap();
    assert!(err.contains(&dir.path().display().to_string()) && err.contains("instances"));
}

fn memsweep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_memsweep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("memsweep runs")
}

/// `sweeps/quick.toml` run once (in chunks of 400, so several files per
/// table) and reported, shared by the tests below.
fn quick_results() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-quick");
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.to_str().unwrap();
        let run = memsweep(&[
            "run",
            "sweeps/quick.toml",
            "-o",
            d,
            "--quiet",
            "--backend",
            "cpu",
            "--batch-size",
            "400",
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report = memsweep(&["report", d]);
        assert!(
            report.status.success(),
            "{}",
            String::from_utf8_lossy(&report.stderr)
        );
        let stdout = String::from_utf8_lossy(&report.stdout);
        assert!(
            stdout.contains("Pr[learned_all]") && stdout.contains("2-4-2"),
            "{stdout}"
        );
        assert!(
            stdout.contains("ξ = "),
            "the size fits are printed: {stdout}"
        );
        dir
    })
}

const QUICK_FIGURES: [&str; 5] = [
    "capacity_vs_size",
    "learning_curves",
    "read_power",
    "controllability",
    "contrast",
];

#[test]
fn report_on_the_quick_sweep_writes_every_figure_as_parseable_svg_and_non_blank_png() {
    let out = quick_results().join("report");
    let raster = Rasteriser::new();
    for stem in QUICK_FIGURES {
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        let tree = raster
            .parse(&svg)
            .unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
        assert!(tree.size().width() > 300.0, "{stem}.svg");
        assert!(
            svg.contains("<text")
                && svg.contains("network size")
                    == (stem == "capacity_vs_size" || stem == "controllability")
        );

        let file = std::fs::File::open(out.join(format!("{stem}.png"))).unwrap();
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .unwrap_or_else(|e| panic!("{stem}.png: {e}"));
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        let pixels = &buf[..info.buffer_size()];
        let inked = pixels
            .chunks(channels)
            .filter(|p| p.iter().take(3).any(|&c| c < 200))
            .count();
        let total = (info.width * info.height) as usize;
        assert!(
            info.width >= 600 && info.height >= 400,
            "{stem}.png is {}x{}",
            info.width,
            info.height
        );
        assert!(
            inked * 100 > total,
            "{stem}.png is blank: {inked} of {total} pixels inked"
        );
        assert!(
            inked * 2 < total,
            "{stem}.png is mostly ink: {inked} of {total}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for stem in QUICK_FIGURES {
        assert!(
            md.contains(&format!("({stem}.svg)")),
            "report.md shows {stem}"
        );
    }
    assert!(md.contains("## Scaling with size") && md.contains("ξ = "));
    assert!(
        !out.join("capacity_vs_patterns.svg").exists(),
        "P follows n_in in quick.toml"
    );
}

/// CI pip-installs duckdb; elsewhere, skip loudly without it.
#[test]
fn duckdb_over_a_glob_of_instances_gets_the_same_means_as_report() {
    let have = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        let msg = "python3 with duckdb not found: cannot check report's means against DuckDB";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = quick_results();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report_duckdb.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg("n_in,hidden,n_out,sigma_r0,p_prune")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("8 grid points"), "{stdout}");
}

/// `analyze` builds the very instances `run` trains, so over all replicas
/// its initial controllability and cycle-space dimension are the report's.
#[test]
fn analyze_gives_the_structure_that_run_recorded() {
    let spec = memsweep::sweep::Spec::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/quick.toml"),
    )
    .unwrap();
    let structure = memsweep::analyze::analyze(&spec, spec.replicas);
    let grid = Grid::new(&load(quick_results()).unwrap());
    assert_eq!(structure.len(), grid.points.len());
    for (s, p) in structure.iter().zip(&grid.points) {
        assert_eq!(s.nodes, p.n_nodes);
        let (cycles, controllability) = (s.cycle_space_dim.unwrap(), s.controllability.unwrap());
        assert!(close(cycles, p.cycle_space_dim.estimate, 1e-9));
        assert!(
            close(controllability, p.controllability_initial.estimate, 1e-9),
            "point {}: {} vs {}",
            s.point,
            controllability,
            p.controllability_initial.estimate
        );
    }
    let table = memsweep::analyze::table(&structure);
    assert!(
        table.contains("controllability") && table.lines().count() == 9,
        "{table}"
    );
}

#[test]
fn report_of_a_directory_without_results_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = memsweep(&["report", d]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(d) && stderr.contains("instances"),
        "{stderr}"
    );
    assert!(!dir.path().join("report").exists(), "nothing written");
}

#[test]
fn analyze_prints_one_row_per_grid_point_without_writing_results() {
    let out = memsweep(&["analyze", "sweeps/quick.toml", "--replicas", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 9, "{stdout}");
    assert!(
        stdout.contains("cycle-space dim") && stdout.contains("56.0"),
        "{stdout}"
    );
    let refused = memsweep(&["analyze", "sweeps/quick.toml", "--replicas", "0"]);
    assert_eq!(refused.status.code(), Some(2));
}
