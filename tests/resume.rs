//! Shards, resuming and failures: however a sweep's work is split,
//! interrupted, failed or repeated into one directory, the directory ends
//! with the rows of one uninterrupted run, each instance exactly once.

#[path = "common/tables.rs"]
mod tables;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::run::{self, PointSummary, RunOptions};
use memsweep::shard::Shard;
use memsweep::status::Inventory;
use memsweep::sweep::Spec;
use tables::read_sorted;

const SWEEP: &str = r#"
name = "tiny"
seed = 5
replicas = 9
[network]
hidden = [3]
[training]
max_eras = 6
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#;

/// Big enough that a single thread takes about a second over 30 chunks of
/// 4 instances, so a kill lands midway.
const BIG_SWEEP: &str = r#"
name = "big"
seed = 11
replicas = 60
[network]
n_in = 8
hidden = [16]
n_out = 8
[training]
max_eras = 30
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#;

fn run_lib(text: &str, dir: &Path, shard: Shard, batch_size: usize) -> Vec<PointSummary> {
    let spec = Spec::parse(text, "sweep.toml").unwrap();
    let opts = RunOptions {
        out_dir: dir.to_path_buf(),
        batch_size,
        progress: false,
        shard,
    };
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| run::run(&spec, &cpu, &opts)).unwrap()
}

/// The binary, in `cwd`, with no Slurm variables inherited; `run` on the
/// CPU, like the library runs it is compared with.
fn memsweep(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memsweep"));
    cmd.args(args).current_dir(cwd);
    if args[0] == "run" {
        cmd.args(["--backend", "cpu"]);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLURM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("memsweep runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn reference(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_lib(text, dir.path(), Shard::ALL, 64);
    dir
}

/// `dir` holds exactly the rows of `reference`, each instance once, and
/// nothing a killed run leaves behind.
fn assert_same_rows(dir: &Path, reference: &Path, text: &str) {
    let spec = Spec::parse(text, "sweep.toml").unwrap();
    // `scan` refuses a directory holding an instance twice.
    let inv = Inventory::scan(&spec, dir).unwrap();
    assert_eq!(inv.complete(), spec.n_instances(), "every instance");
    assert!(inv.missing_eras.is_empty(), "{:?}", inv.missing_eras);
    assert!(inv.orphan_eras.is_empty(), "orphans {:?}", inv.orphan_eras);
    assert!(inv.partials.is_empty(), "partials {:?}", inv.partials);
    for table in ["instances", "eras"] {
        let got = read_sorted(dir, table);
        let want = read_sorted(reference, table);
        assert_eq!(got.num_rows(), want.num_rows(), "{table} rows");
        assert_eq!(got, want, "{table} differ from an uninterrupted run");
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for table in ["instances", "eras"] {
        for entry in fs::read_dir(dir.join(table)).unwrap() {
            let path = entry.unwrap().path();
            all.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    all.sort();
    all
}

#[test]
fn three_shards_run_one_after_another_give_the_rows_of_an_unsharded_run() {
    let want = reference(SWEEP);
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::parse(SWEEP, "sweep.toml").unwrap();
    for index in 0..3 {
        let shard = Shard::new(index, 3).unwrap();
        let summary = run_lib(SWEEP, dir.path(), shard, 2);
        let shard_rows: usize = summary.iter().map(|s| s.instances).sum();
        assert_eq!(shard_rows, 6, "the summary covers this shard's instances");
        let inv = Inventory::scan(&spec, dir.path()).unwrap();
        assert_eq!(inv.complete(), 6 * (index + 1));
        assert_eq!(inv.missing(shard).count(), 0);
    }
    assert_same_rows(dir.path(), want.path(), SWEEP);
}

#[test]
fn an_unsharded_run_finishes_what_some_shards_left() {
    let want = reference(SWEEP);
    let dir = tempfile::tempdir().unwrap();
    run_lib(SWEEP, dir.path(), Shard::new(1, 4).unwrap(), 3);
    run_lib(SWEEP, dir.path(), Shard::new(3, 4).unwrap(), 1);
    let summary = run_lib(SWEEP, dir.path(), Shard::ALL, 5);
    assert_eq!(summary, run_lib(SWEEP, want.path(), Shard::ALL, 64));
    assert_same_rows(dir.path(), want.path(), SWEEP);
}

#[test]
fn a_killed_run_resumes_to_the_rows_of_an_uninterrupted_run_each_instance_once() {
    let want = reference(BIG_SWEEP);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("big.toml"), BIG_SWEEP).unwrap();
    let args = [
        "run",
        "big.toml",
        "-o",
        "res",
        "--threads",
        "1",
        "--batch-size",
        "4",
    ];
    let mut child = memsweep(&args, dir.path())
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let finished = |d: &Path| {
        fs::read_dir(d.join("res/instances")).map_or(0, |entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "parquet")
                })
                .count()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(dir.path()) < 3 {
        assert!(Instant::now() < deadline, "no chunk written in 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed midway: make BIG_SWEEP bigger"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");

    let spec = Spec::parse(BIG_SWEEP, "big.toml").unwrap();
    let inv = Inventory::scan(&spec, &dir.path().join("res")).unwrap();
    assert!(
        inv.complete() > 0 && inv.complete() < spec.n_instances(),
        "killed midway: {} of {} done",
        inv.complete(),
        spec.n_instances()
    );
    let again = output(&mut memsweep(&args, dir.path()));
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!(
            "resuming: {} of {} instances already in res",
            inv.complete(),
            spec.n_instances()
        )),
        "{}",
        stderr(&again)
    );
    assert_same_rows(&dir.path().join("res"), want.path(), BIG_SWEEP);
}

#[test]
fn leftovers_of_a_killed_run_are_removed_by_their_shard_and_never_duplicated() {
    let want = reference(SWEEP);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_lib(SWEEP, d, Shard::ALL, 4);
    // Killed between a chunk's eras and instances files, and while writing
    // two other files.
    fs::remove_file(d.join("instances/part-000000004.parquet")).unwrap();
    fs::write(d.join("instances/.part-000000008.parquet.partial"), "half").unwrap();
    fs::write(d.join("eras/.part-000000017.parquet.partial"), "half").unwrap();
    let spec = Spec::parse(SWEEP, "sweep.toml").unwrap();
    let inv = Inventory::scan(&spec, d).unwrap();
    assert_eq!(inv.complete(), 14);
    assert_eq!(inv.orphan_eras.len(), 1);
    assert_eq!(inv.partials.len(), 2);
    // Shard 1 of 2 owns 17 and, in the orphan (instances 4-7), 5 and 7,
    // which it is about to rerun; the partial of chunk 8 is shard 0's.
    run_lib(SWEEP, d, Shard::new(1, 2).unwrap(), 3);
    let inv = Inventory::scan(&spec, d).unwrap();
    assert!(
        inv.orphan_eras.is_empty(),
        "the orphan holding 5 and 7 went"
    );
    assert_eq!(inv.partials.len(), 1, "shard 0's partial stays");
    assert_eq!(inv.complete(), 16, "shard 1 ran its instances 5 and 7");
    run_lib(SWEEP, d, Shard::new(0, 2).unwrap(), 3);
    assert_same_rows(d, want.path(), SWEEP);
}

#[test]
fn a_rerun_of_a_finished_directory_writes_nothing_and_summarises_everything() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_lib(SWEEP, dir.path(), Shard::ALL, 5);
    let before = files(dir.path());
    let again = run_lib(SWEEP, dir.path(), Shard::ALL, 7);
    assert_eq!(files(dir.path()), before);
    assert_eq!(again, first);
}

#[test]
fn a_directory_of_another_sweep_is_refused_with_exit_2_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.toml"), SWEEP).unwrap();
    fs::write(
        dir.path().join("b.toml"),
        SWEEP.replace("replicas = 9", "replicas = 10"),
    )
    .unwrap();
    let first = output(&mut memsweep(
        &["run", "a.toml", "-o", "res", "--quiet"],
        dir.path(),
    ));
    assert!(first.status.success(), "{}", stderr(&first));
    let before = files(&dir.path().join("res"));
    for args in [
        &["run", "b.toml", "-o", "res"][..],
        &["run", "b.toml", "-o", "res", "--shard", "1/2"][..],
        &["slurm", "b.toml", "-o", "res", "--shards", "2"][..],
    ] {
        let out = output(&mut memsweep(args, dir.path()));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("different sweep than b.toml"), "{err}");
    }
    assert_eq!(files(&dir.path().join("res")), before);
    assert_eq!(
        fs::read_to_string(dir.path().join("res/sweep.toml")).unwrap(),
        Spec::parse(SWEEP, "a.toml").unwrap().source,
        "sweep.toml holds the sweep as parsed"
    );
    // Results without their sweep.toml cannot be matched to any sweep.
    fs::remove_file(dir.path().join("res/sweep.toml")).unwrap();
    let out = output(&mut memsweep(&["run", "a.toml", "-o", "res"], dir.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no sweep.toml"), "{}", stderr(&out));
}

#[test]
fn bad_shards_and_slurm_variables_are_one_line_each_with_exit_2_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("s.toml"), SWEEP).unwrap();
    // (flags, environment, what the error says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["--shard", "3/3"],
            &[],
            "--shard: shard index 3 is not below",
        ),
        (&["--shard", "0/0"], &[], "--shard: the shard count must be"),
        (&["--shard", "two/3"], &[], "--shard: expected I/N"),
        (&["--shard", "1"], &[], "--shard: expected I/N"),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            "not below the shard count 3",
        ),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "0"),
            ],
            "shard count must be at least 1",
        ),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "1;"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            "SLURM_ARRAY_TASK_ID: expected a whole number",
        ),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "lots"),
            ],
            "SLURM_ARRAY_TASK_COUNT: expected a whole number",
        ),
        (
            &[],
            &[("SLURM_ARRAY_TASK_ID", "1")],
            "SLURM_ARRAY_TASK_COUNT is not",
        ),
        (
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_STEP", "0"),
            ],
            "SLURM_ARRAY_TASK_STEP: must be at least 1",
        ),
        (
            &[],
            &[("SLURM_CPUS_PER_TASK", "many")],
            "SLURM_CPUS_PER_TASK: expected a whole number",
        ),
        (
            &["--shard", "0/2"],
            &[("SLURM_CPUS_PER_TASK", "0")],
            "SLURM_CPUS_PER_TASK",
        ),
    ];
    for (flags, vars, says) in cases {
        let mut cmd = memsweep(&["run", "s.toml", "-o", "res"], dir.path());
        cmd.args(*flags).envs(vars.iter().copied());
        let out = output(&mut cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?} {vars:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{flags:?} {vars:?}: {err}"
        );
        assert!(err.contains(says), "{flags:?} {vars:?}: {err}");
        assert!(!dir.path().join("res").exists(), "{flags:?} {vars:?}");
    }
    // --no-slurm ignores them all.
    let mut cmd = memsweep(&["run", "s.toml", "-o", "res", "--no-slurm"], dir.path());
    cmd.envs([
        ("SLURM_ARRAY_TASK_ID", "x"),
        ("SLURM_ARRAY_TASK_COUNT", "0"),
        ("SLURM_CPUS_PER_TASK", "many"),
    ]);
    let out = output(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("memsweep: 18 instances of sweep"));
}

#[test]
fn slurm_array_variables_choose_the_shard_and_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("s.toml"), SWEEP).unwrap();
    let mut cmd = memsweep(&["run", "s.toml", "-o", "res"], dir.path());
    // --array=10-30:10, task 30: shard 2 of 3.
    cmd.envs([
        ("SLURM_ARRAY_TASK_ID", "30"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_STEP", "10"),
        ("SLURM_CPUS_PER_TASK", "3"),
    ]);
    let out = output(&mut cmd);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("6 instances (shard 2/3 of 18)") && err.contains("(3 threads)"),
        "{err}"
    );
    let spec = Spec::parse(SWEEP, "s.toml").unwrap();
    let inv = Inventory::scan(&spec, &dir.path().join("res")).unwrap();
    assert_eq!(inv.complete(), 6);
    assert_eq!(inv.missing(Shard::new(2, 3).unwrap()).count(), 0);
    let names: Vec<String> = fs::read_dir(dir.path().join("res/instances"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.ends_with("-s2of3.parquet")),
        "{names:?}"
    );
}

#[test]
fn status_counts_complete_and_missing_instances_per_shard() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("s.toml"), SWEEP).unwrap();
    let shard = |i: &str| {
        let out = output(&mut memsweep(
            &["run", "s.toml", "-o", "res", "--quiet", "--shard", i],
            dir.path(),
        ));
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let status = || {
        let out = output(&mut memsweep(&["status", "res"], dir.path()));
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    shard("1/3");
    let text = status();
    assert!(text.contains("complete: 6 of 18"), "{text}");
    assert!(text.contains("1/3") && text.contains("6/6"), "{text}");
    assert!(text.contains("0/3") && text.contains("0/6"), "{text}");
    // k mod 3 != 1 over 0..18
    assert!(
        text.contains("missing instances (k = point * 9 + replica): 0, 2-3, 5-6,"),
        "{text}"
    );
    shard("0/3");
    shard("2/3");
    let text = status();
    assert!(
        text.contains("complete: 18 of 18 (100.0%), missing 0"),
        "{text}"
    );
    assert!(!text.contains("missing instances"), "{text}");
    let out = output(&mut memsweep(&["status", "nowhere"], dir.path()));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_write_failure_is_one_error_keeping_every_finished_file_and_a_rerun_completes() {
    // A file size limit makes the next write fail (EFBIG) as a full disk
    // would (ENOSPC); SIGXFSZ is ignored so the write returns the error.
    let want = reference(SWEEP);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("s.toml"), SWEEP).unwrap();
    let first = output(&mut memsweep(
        &["run", "s.toml", "-o", "res", "--quiet", "--shard", "0/2"],
        dir.path(),
    ));
    assert!(first.status.success(), "{}", stderr(&first));
    let before = files(&dir.path().join("res"));
    let limited = output(
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 1; exec '{}' run s.toml -o res --quiet --backend cpu",
                env!("CARGO_BIN_EXE_memsweep")
            ))
            .current_dir(dir.path()),
    );
    let err = stderr(&limited);
    assert_eq!(limited.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot write") && err.contains("File too large"),
        "{err}"
    );
    assert!(err.contains("rerunning the same command resumes"), "{err}");
    assert_eq!(
        files(&dir.path().join("res")),
        before,
        "finished files intact"
    );
    let again = output(&mut memsweep(&["run", "s.toml", "-o", "res"], dir.path()));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_same_rows(&dir.path().join("res"), want.path(), SWEEP);
}

#[test]
fn an_unusable_output_directory_is_one_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("s.toml"), SWEEP).unwrap();
    fs::write(dir.path().join("file"), "not a directory").unwrap();
    let out = output(&mut memsweep(
        &["run", "s.toml", "-o", "file/res"],
        dir.path(),
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("file/res"), "{err}");
}
