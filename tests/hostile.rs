//! What a hostile or careless user can do to memsweep (issue 15), and what
//! it must do instead of crashing or losing a row: sweeps too large for a
//! machine are refused in one line before anything is written; a results
//! directory is written by one run per shard, made whole by `run`, and a
//! file in it that is not its sweep's stops `run`, `status` and `report`.

#[path = "common/refusal.rs"]
mod refusal;
#[path = "common/tables.rs"]
mod tables;

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::run::{self, RunOptions};
use memsweep::shard::Shard;
use memsweep::status::Inventory;
use memsweep::sweep::Spec;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use refusal::{assert_refused, stderr};
use tables::read_sorted;

const SWEEP: &str = r#"
# A comment the results must not keep.
name = "tiny"   # and another
seed = 5
replicas = 4
[network]
hidden = [3]
[training]
max_eras = 6
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#;

/// Slow enough on one thread that a second run starts while the first
/// still writes.
const SLOW: &str = r#"
name = "slow"
seed = 11
replicas = 600
[network]
n_in = 8
hidden = [16]
n_out = 8
[training]
max_eras = 30
"#;

fn memsweep(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memsweep"));
    cmd.args(args).current_dir(cwd);
    if args[0] == "run" {
        cmd.args(["--backend", "cpu", "--threads", "1"]);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLURM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn output(args: &[&str], cwd: &Path) -> Output {
    memsweep(args, cwd).output().expect("memsweep runs")
}

/// The tiny sweep run into `dir/res` with the library, `batch` instances
/// per chunk (8 instances: chunks 0, 3 and 6 for a batch of 3).
fn tiny_results(dir: &Path, batch: usize) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("tiny.toml"), SWEEP).unwrap();
    let res = dir.join("res");
    let spec = Spec::parse(SWEEP, "tiny.toml").unwrap();
    let opts = RunOptions {
        out_dir: res.clone(),
        batch_size: batch,
        progress: false,
        shard: Shard::ALL,
    };
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    run::run(&spec, &cpu, &opts).unwrap();
    res
}

#[test]
fn sweeps_that_cannot_fit_a_machine_are_refused_at_once_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let many_layers = format!("[network]\nhidden = [{}]", vec!["4"; 100_000].join(", "));
    let values: Vec<String> = (0..1000).map(|i| format!("{}", i as f64 * 1e-4)).collect();
    let values = values.join(", ");
    let billion_points = format!(
        "[[axes]]\n\"device.sigma_r0\" = [{values}]\n[[axes]]\n\"device.sigma_d2d\" = [{values}]\n\
         [[axes]]\n\"device.sigma_c2c\" = [{values}]"
    );
    let cases: Vec<(String, &str, &str)> = vec![
        ("replicas = 1000000000000".into(), "replicas", "limit"),
        (
            "replicas = 9223372036854775807\n[[axes]]\n\"device.sigma_r0\" = [0.0, 0.3]".into(),
            "replicas",
            "limit",
        ),
        (
            "[training]\nmax_eras = 1000000000000".into(),
            "training.max_eras",
            "TiB per instance",
        ),
        (
            "[network]\nn_in = 9223372036854775807".into(),
            "network.n_in",
            "limit",
        ),
        ("[network]\nn_in = 1000000".into(), "network.n_in", "limit"),
        (many_layers, "network.hidden", "100000 layers"),
        (
            "[network]\nhidden = [1000000000]".into(),
            "network.hidden",
            "limit",
        ),
        (
            "[network]\ntopology = \"random_bulk\"\nn_bulk = 1000000000\nk_attach = 2".into(),
            "network.n_bulk",
            "limit",
        ),
        (
            "[training]\ntask = \"random_binary\"\nn_patterns = 1000000000".into(),
            "training.n_patterns",
            "limit",
        ),
        (
            "[network]\ntopology = \"random_bulk\"\nn_bulk = 100000\np_bulk = 1.0".into(),
            "network.n_bulk",
            "limit",
        ),
        (billion_points, "axes", "1000 x 1000 x 1000"),
    ];
    for (i, (text, field, mention)) in cases.iter().enumerate() {
        let file = format!("huge{i}.toml");
        fs::write(dir.path().join(&file), text).unwrap();
        for command in ["run", "plan", "slurm"] {
            let started = Instant::now();
            let args: &[&str] = match command {
                "slurm" => &["slurm", &file, "--shards", "2", "-o", "out"],
                "run" => &["run", &file, "-o", "out"],
                _ => &["plan", &file],
            };
            let out = output(args, dir.path());
            let what = format!("{command} {file} ({field})");
            assert_refused(&out, &[&file, &format!(": {field}: "), mention], &what);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{what}: took {:?}",
                started.elapsed()
            );
            assert!(!dir.path().join("out").exists(), "{what}: nothing written");
            assert!(!dir.path().join("results").exists(), "{what}");
        }
    }
}

#[test]
fn a_large_but_feasible_sweep_is_checked_in_milliseconds_and_runs_a_shard() {
    // 10^5 grid points of 10^4 replicas: every limit at its edge.
    let a: Vec<String> = (0..1000).map(|i| format!("{}", i as f64 * 1e-4)).collect();
    let b: Vec<String> = (0..100).map(|i| format!("{}", i as f64 * 1e-3)).collect();
    let text = format!(
        "replicas = 10000\n[[axes]]\n\"device.sigma_r0\" = [{}]\n[[axes]]\n\"device.sigma_d2d\" = [{}]",
        a.join(", "),
        b.join(", ")
    );
    let started = Instant::now();
    let spec = Spec::parse(&text, "edge.toml").unwrap();
    let took = started.elapsed();
    assert_eq!(spec.n_instances(), 1_000_000_000);
    assert!(took < Duration::from_millis(500), "parsed in {took:?}");

    // A billion replicas of one small point: shard 0 of a million runs
    // its thousand instances without the job list of the whole sweep.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("wide.toml"),
        "replicas = 1000000000\n[training]\nmax_eras = 3\n",
    )
    .unwrap();
    let out = output(
        &[
            "run",
            "wide.toml",
            "-o",
            "res",
            "--quiet",
            "--shard",
            "0/1000000",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let status = output(&["status", "res"], dir.path());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        text.contains("complete: 1000 of 1000000000"),
        "{}",
        text.lines().take(3).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn a_sweep_file_too_large_or_not_a_regular_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let comments = "# padding\n".repeat(200_000);
    fs::write(dir.path().join("padded.toml"), comments + "replicas = 2\n").unwrap();
    fs::create_dir(dir.path().join("folder.toml")).unwrap();
    for file in ["padded.toml", "/dev/zero", "/dev/urandom", "folder.toml"] {
        let started = Instant::now();
        for args in [["run", file, "-o", "out"].as_slice(), &["plan", file]] {
            let out = output(args, dir.path());
            assert_refused(&out, &[file, ": file: "], &format!("{args:?}"));
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{file}");
        assert!(!dir.path().join("out").exists());
    }
}

#[test]
fn status_refuses_more_shards_than_it_can_report() {
    let dir = tempfile::tempdir().unwrap();
    tiny_results(dir.path(), 3);
    for shards in ["9", "1000000000000"] {
        let out = output(&["status", "res", "--shards", shards], dir.path());
        assert_refused(&out, &["--shards", shards], shards);
    }
    let out = output(&["status", "res", "--shards", "8"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = output(
        &["run", "tiny.toml", "-o", "res", "--shard", "0/9"],
        dir.path(),
    );
    assert_refused(&out, &["--shard", "8 instances"], "run --shard 0/9");
}

/// The `memsweep.sweep` metadata of a Parquet file.
fn sweep_metadata(path: &Path) -> String {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    kv.iter()
        .find(|e| e.key == "memsweep.sweep")
        .and_then(|e| e.value.clone())
        .unwrap()
}

#[test]
fn results_record_the_sweep_as_parsed_without_comments() {
    let dir = tempfile::tempdir().unwrap();
    let padded = format!("{}{SWEEP}", "# a long comment line\n".repeat(20_000));
    fs::write(dir.path().join("tiny.toml"), &padded).unwrap();
    let out = output(&["run", "tiny.toml", "-o", "res", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let recorded = fs::read_to_string(dir.path().join("res/sweep.toml")).unwrap();
    assert!(!recorded.contains('#'), "{recorded}");
    assert_eq!(recorded, Spec::parse(SWEEP, "tiny.toml").unwrap().source);
    let spec = Spec::parse(&recorded, "sweep.toml").unwrap();
    assert!(spec.same_rows(&Spec::parse(&padded, "tiny.toml").unwrap()));
    assert_eq!(spec.name, "tiny");
    for table in ["instances", "eras"] {
        for entry in fs::read_dir(dir.path().join("res").join(table)).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(sweep_metadata(&path), recorded, "{}", path.display());
            let size = fs::metadata(&path).unwrap().len();
            assert!(size < 64 * 1024, "{}: {size} bytes", path.display());
        }
    }
    // The comments changed nothing: a rerun of the bare file resumes.
    fs::write(dir.path().join("tiny.toml"), SWEEP).unwrap();
    let again = output(&["run", "tiny.toml", "-o", "res"], dir.path());
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("8 of 8 instances already in res"));
}

#[test]
fn a_directory_that_recorded_the_raw_sweep_file_still_resumes() {
    // Before issue 15, sweep.toml and every file's metadata held the sweep
    // file as written, comments and all.
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    // Comments past the sweep file limit, as an old directory may hold.
    let raw = format!("{}{SWEEP}", "# an old, long comment\n".repeat(60_000));
    assert!(raw.len() > 1 << 20);
    let mut spec = Spec::parse(&raw, "tiny.toml").unwrap();
    spec.source = raw.clone();
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    let opts = RunOptions {
        out_dir: res.clone(),
        batch_size: 2,
        progress: false,
        shard: Shard::new(0, 2).unwrap(),
    };
    run::run(&spec, &cpu, &opts).unwrap();
    assert_eq!(fs::read_to_string(res.join("sweep.toml")).unwrap(), raw);
    fs::write(dir.path().join("tiny.toml"), SWEEP).unwrap();
    let out = output(&["run", "tiny.toml", "-o", "res", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = output(&["status", "res"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete: 8 of 8"));
    let out = output(&["report", "res"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Waits until `dir/res/instances` holds a finished file whose name ends
/// with `suffix`, while `child` still runs.
fn wait_for_a_chunk(dir: &Path, suffix: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let written = || {
        fs::read_dir(dir.join("res/instances")).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
        })
    };
    while !written() {
        assert!(Instant::now() < deadline, "no chunk in 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "a run ended too soon: make SLOW bigger"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_run_of_a_shard_is_refused_while_the_first_writes_and_a_killed_run_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("slow.toml"), SLOW).unwrap();
    let args = [
        "run",
        "slow.toml",
        "-o",
        "res",
        "--quiet",
        "--batch-size",
        "4",
        "--shard",
        "0/2",
    ];
    let mut first = memsweep(&args, d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_a_chunk(d, "s0of2.parquet", &mut first);
    let second = output(&args, d);
    assert_refused(
        &second,
        &[
            &format!("pid {} on host ", first.id()),
            "another memsweep run",
            "shard 0/2",
        ],
        "second run",
    );
    // The other shard of the sweep runs beside it.
    let mut other_args = args;
    other_args[8] = "1/2";
    let mut other = memsweep(&other_args, d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_chunk(d, "s1of2.parquet", &mut other);
    first.kill().unwrap();
    assert_eq!(
        first.wait().unwrap().signal(),
        Some(9),
        "killed while writing: make SLOW bigger"
    );
    let other = other.wait_with_output().unwrap();
    assert!(other.status.success(), "{}", stderr(&other));
    // The killed run's lock file stays, and is taken over.
    assert!(d.join("res/.lock-s0of2").is_file());
    let third = output(&args, d);
    assert!(third.status.success(), "{}", stderr(&third));
    let spec = Spec::parse(SLOW, "slow.toml").unwrap();
    let inv = Inventory::scan(&spec, &d.join("res")).unwrap();
    assert_eq!(inv.complete(), spec.n_instances());
    assert!(inv.missing_eras.is_empty() && inv.orphan_eras.is_empty());
}

#[test]
fn an_instances_file_without_its_eras_file_is_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let want = tiny_results(&d.join("want"), 3);
    let res = tiny_results(d, 3);
    let lost = res.join("eras/part-000000003.parquet");
    fs::remove_file(&lost).unwrap();

    let status = output(&["status", "res"], d);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(text.contains("complete: 5 of 8"), "{text}");
    assert!(text.contains("instances/part-000000003.parquet"), "{text}");
    let report = output(&["report", "res"], d);
    assert_refused(
        &report,
        &[
            "instances/part-000000003.parquet",
            "no eras file",
            "memsweep run",
        ],
        "report",
    );

    let out = output(&["run", "tiny.toml", "-o", "res", "--quiet"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(lost.is_file(), "the eras file is back");
    for table in ["instances", "eras"] {
        assert_eq!(
            read_sorted(&res, table),
            read_sorted(&want, table),
            "{table}"
        );
    }
    let report = output(&["report", "res"], d);
    assert!(report.status.success(), "{}", stderr(&report));
}

/// `run`, `status` and `report` each stop with one line naming `file`.
fn assert_all_refuse(d: &Path, file: &str, mentions: &[&str]) {
    let before = read_sorted(&d.join("res"), "instances");
    let mut all = vec![file];
    all.extend(mentions);
    for args in [
        &["run", "tiny.toml", "-o", "res"][..],
        &["status", "res"][..],
        &["report", "res"][..],
    ] {
        let out = output(args, d);
        assert_refused(&out, &all, &format!("{args:?} with {file}"));
    }
    assert_eq!(
        read_sorted(&d.join("res"), "instances"),
        before,
        "nothing written"
    );
    assert!(!d.join("res/report").exists(), "no report written");
}

#[test]
fn a_copy_of_an_instances_file_stops_run_status_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let res = tiny_results(d, 3);
    fs::copy(
        res.join("instances/part-000000000.parquet"),
        res.join("instances/copy.parquet"),
    )
    .unwrap();
    assert_all_refuse(
        d,
        "instances/copy.parquet",
        &["part-000000000.parquet", "twice"],
    );
    // With eras too, under a chunk's name: the same.
    fs::rename(
        res.join("instances/copy.parquet"),
        res.join("instances/part-000000001.parquet"),
    )
    .unwrap();
    fs::copy(
        res.join("eras/part-000000000.parquet"),
        res.join("eras/part-000000001.parquet"),
    )
    .unwrap();
    assert_all_refuse(d, "part-000000001.parquet", &["twice"]);
    fs::remove_file(res.join("instances/part-000000001.parquet")).unwrap();
    fs::remove_file(res.join("eras/part-000000001.parquet")).unwrap();
    // Nothing was counted twice: the summary is the original run's.
    let out = output(&["run", "tiny.toml", "-o", "res", "--quiet"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for line in table.lines().skip(1) {
        assert_eq!(line.split_whitespace().nth(2), Some("4"), "{table}");
    }
}

#[test]
fn a_file_of_another_sweep_stops_run_status_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let res = tiny_results(d, 3);
    tiny_results(&d.join("want"), 3);
    let other = d.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(
        other.join("tiny.toml"),
        SWEEP.replace("seed = 5", "seed = 6"),
    )
    .unwrap();
    let out = output(
        &[
            "run",
            "tiny.toml",
            "-o",
            "res",
            "--quiet",
            "--batch-size",
            "3",
        ],
        &other,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Moved in whole, in place of this sweep's own chunk of the same name.
    for table in ["instances", "eras"] {
        fs::copy(
            other.join("res").join(table).join("part-000000003.parquet"),
            res.join(table).join("part-000000003.parquet"),
        )
        .unwrap();
    }
    assert_all_refuse(d, "instances/part-000000003.parquet", &["different sweep"]);
    // The eras file alone is enough.
    fs::copy(
        d.join("want/res/instances/part-000000003.parquet"),
        res.join("instances/part-000000003.parquet"),
    )
    .unwrap();
    assert_all_refuse(d, "eras/part-000000003.parquet", &["different sweep"]);
}

#[test]
fn an_eras_file_of_other_instances_stops_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let res = tiny_results(d, 3);
    fs::copy(
        res.join("eras/part-000000000.parquet"),
        res.join("eras/part-000000003.parquet"),
    )
    .unwrap();
    let out = output(&["report", "res"], d);
    assert_refused(
        &out,
        &[
            "eras/part-000000003.parquet",
            "instances/part-000000003.parquet",
        ],
        "report",
    );
    assert!(!res.join("report").exists());
}

/// Rewrites the instances file at `path` with every `point` moved by
/// `shift`, keeping its metadata.
fn shift_points(path: &Path, shift: i64) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let metadata: Vec<(String, String)> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let batch = &batches[0];
    let index = batch.schema().index_of("point").unwrap();
    let moved: Int64Array = batch
        .column(index)
        .as_primitive::<Int64Type>()
        .iter()
        .map(|p| p.map(|p| p + shift))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(moved);
    let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
    assert!(batch.column(index).len() > 0);
    memsweep::results::write_parquet(path, &batch, &metadata).unwrap();
}

#[test]
fn rows_outside_the_grid_stop_run_status_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let res = tiny_results(d, 3);
    shift_points(&res.join("instances/part-000000006.parquet"), 5);
    assert_all_refuse(
        d,
        "instances/part-000000006.parquet",
        &["not an instance of this sweep"],
    );
}

#[test]
fn a_directory_holding_only_another_sweep_toml_takes_the_corrected_sweep() {
    // What a run stopped before its first chunk, or `slurm`, leaves.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("res")).unwrap();
    fs::write(d.join("res/sweep.toml"), "replicas = 1000000\n").unwrap();
    fs::write(d.join("tiny.toml"), SWEEP).unwrap();
    let out = output(&["run", "tiny.toml", "-o", "res", "--quiet"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(d.join("res/sweep.toml")).unwrap(),
        Spec::parse(SWEEP, "tiny.toml").unwrap().source
    );
}

#[test]
fn a_fifo_among_the_results_stops_run_status_and_report_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let res = tiny_results(d, 3);
    let fifo = res.join("instances/part-000000009.parquet");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // (`assert_all_refuse` would block reading it back.)
    for args in [
        &["run", "tiny.toml", "-o", "res"][..],
        &["status", "res"][..],
        &["report", "res"][..],
    ] {
        let out = output(args, d);
        let file = "instances/part-000000009.parquet";
        assert_refused(&out, &[file, "not a regular file"], &format!("{args:?}"));
    }
}
