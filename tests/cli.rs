//! The `memsweep` binary: bad sweep files are refused with one line and exit
//! status 2 before anything is written; good ones run, plan and report.

use std::path::Path;
use std::process::{Command, Output};

fn memsweep(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memsweep"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("memsweep runs")
}

/// Each malformed file and the field its error must name.
const BAD: &[(&str, &str)] = &[
    ("seed = 1\n[network\nn_in = 2", "toml"),
    ("[netwrok]\nn_in = 2", "netwrok"),
    ("[network]\nn_inn = 2", "network.n_inn"),
    ("[[axes]]\n\"network.n_inn\" = [2, 4]", "network.n_inn"),
    (
        "[[axes]]\n\"network.n_in\" = [2, 4]\n\"network.n_out\" = [2]",
        "axes",
    ),
    ("[network]\nn_in = -3", "network.n_in"),
    ("[network]\nhidden = [4, -1]", "network.hidden"),
    ("[device]\nron = 1e4\nroff = 1e3", "device.roff"),
    ("[training]\nn_patterns = 5", "training.n_patterns"),
    ("[pruning]\np_prune = 1.5", "pruning.p_prune"),
    ("[network]\ndensity = -0.1", "network.density"),
    ("[training]\nn_sub = 0", "training.n_sub"),
    ("[device]\nbeta = nan", "device.beta"),
    ("[training]\ntau = inf", "training.tau"),
    ("replicas = 0", "replicas"),
    ("[network]\ntopology = \"ring\"", "network.topology"),
];

#[test]
fn every_malformed_sweep_gives_one_line_naming_file_and_field_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, field)) in BAD.iter().enumerate() {
        let file = format!("bad{i}.toml");
        std::fs::write(dir.path().join(&file), text).unwrap();
        let out = memsweep(&["run", &file, "-o", "out"], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{text:?}: one line, got {stderr}"
        );
        assert!(stderr.contains(&file), "{text:?}: names the file: {stderr}");
        assert!(stderr.contains(field), "{text:?}: names {field}: {stderr}");
        assert!(
            !dir.path().join("out").exists(),
            "{text:?}: nothing written"
        );
        let plan = memsweep(&["plan", &file], dir.path());
        assert_eq!(plan.status.code(), Some(2), "plan refuses {text:?} too");
    }
}

#[test]
fn a_missing_sweep_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = memsweep(&["run", "nope.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nope.toml"));
    assert!(!dir.path().join("results").exists());
}

#[test]
fn bad_flags_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.toml"), "replicas = 2").unwrap();
    for args in [
        &["run", "ok.toml", "--threads", "0"][..],
        &["run", "ok.toml", "--batch-size", "0"][..],
        &["run", "ok.toml", "--backend", "quantum"][..],
    ] {
        let out = memsweep(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!dir.path().join("results").exists(), "{args:?}");
    }
}

#[test]
fn plan_prints_points_instances_and_work_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"p\"\nreplicas = 10\n[[axes]]\n\"device.sigma_r0\" = [0.0, 0.3]\n";
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    let out = memsweep(&["plan", "p.toml"], dir.path());
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("20 instances"), "{stdout}");
    assert!(
        stdout.contains("device.sigma_r0") && stdout.contains("0.3"),
        "{stdout}"
    );
    assert!(stdout.contains("memristor updates"), "{stdout}");
    assert!(!dir.path().join("results").exists());
}

#[test]
fn run_writes_results_under_the_sweep_name_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"smoke\"\nreplicas = 20\n[[axes]]\n\"device.sigma_r0\" = [0.0, 0.3]\n";
    std::fs::write(dir.path().join("s.toml"), text).unwrap();
    let out = memsweep(&["run", "s.toml", "--threads", "2"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = dir.path().join("results/smoke");
    assert!(results.join("sweep.toml").is_file());
    assert!(results.join("instances/part-000000000.parquet").is_file());
    assert!(results.join("eras/part-000000000.parquet").is_file());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Pr[learned_all]") && stdout.contains("recalled/P"),
        "{stdout}"
    );
    // Not a terminal: plain progress lines on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("progress: 40/40 instances"));
    // A second run on the same directory finds every instance there and
    // writes nothing.
    let again = memsweep(&["run", "s.toml"], dir.path());
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("40 of 40 instances already in"));
    let files = std::fs::read_dir(results.join("instances")).unwrap();
    assert_eq!(files.count(), 1);
    // A different sweep into the same directory is refused, leaving the files.
    std::fs::write(dir.path().join("t.toml"), text.replace("20", "21")).unwrap();
    let other = memsweep(&["run", "t.toml", "-o", "results/smoke"], dir.path());
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("different sweep"));
    assert!(results.join("instances/part-000000000.parquet").is_file());
}

#[test]
fn results_load_in_python_analytics_tools() {
    // CI pip-installs duckdb and pyarrow; elsewhere, skip loudly without them.
    let have = Command::new("python3")
        .args(["-c", "import duckdb, pyarrow"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        let msg = "python3 with duckdb and pyarrow not found: cannot check that analytics tools read the results";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), "name = \"py\"\nreplicas = 15\n").unwrap();
    assert!(
        memsweep(&["run", "s.toml", "-o", "res", "--quiet"], dir.path())
            .status
            .success()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_results.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("res"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_solver_flag_is_checked_and_changes_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = "name = \"s\"\nseed = 3\nreplicas = 6\n[network]\ntopology = \"random_bulk\"\n\
                 n_in = 3\nn_out = 3\nn_bulk = 150\np_bulk = 0.05\nk_attach = 3\n";
    std::fs::write(dir.path().join("s.toml"), sweep).unwrap();
    let bad = memsweep(
        &["run", "s.toml", "-o", "bad", "--solver", "lu"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lu"));
    assert!(!dir.path().join("bad").exists(), "nothing written");
    let gpu = memsweep(
        &[
            "run",
            "s.toml",
            "-o",
            "gpu",
            "--backend",
            "gpu",
            "--solver",
            "sparse",
        ],
        dir.path(),
    );
    assert_eq!(gpu.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&gpu.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--solver"), "{stderr}");
    // The summary table (recalled/P and Pr[learned_all] per point) is the
    // same whichever path solves the circuit.
    let table = |solver: &str| {
        let out = memsweep(
            &[
                "run",
                "s.toml",
                "-o",
                solver,
                "--backend",
                "cpu",
                "--quiet",
                "--solver",
                solver,
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let sparse = table("sparse");
    assert_eq!(table("dense"), sparse);
    assert_eq!(table("auto"), sparse);
}
