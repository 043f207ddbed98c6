//! A real Slurm array job: the script that `memsweep slurm` writes,
//! submitted as a 3-task array to the single-node cluster that
//! `scripts/start-slurm.sh` starts, fills one results directory with the
//! rows of an unsharded run, each instance once.
//!
//! Needs `sbatch` and a running cluster. In CI (`CI=true`) their absence
//! fails the test; elsewhere it is skipped with a message. The results go
//! to a local temporary directory, which only a single-node cluster shares.

#[path = "common/tables.rs"]
mod tables;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use memsweep::status::Inventory;
use memsweep::sweep::Spec;
use tables::read_sorted;

const SWEEP: &str = r#"
name = "slurm-ci"
seed = 21
replicas = 15
[network]
hidden = [4]
[training]
max_eras = 10
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#;

/// Why no cluster can take a job here, if none can.
fn cluster_missing() -> Option<String> {
    let sinfo = Command::new("sinfo").args(["-h", "-o", "%a %t"]).output();
    match sinfo {
        Err(e) => Some(format!(
            "sinfo not runnable ({e}): install slurm-wlm and run scripts/start-slurm.sh"
        )),
        Ok(out) if !out.status.success() => Some(format!(
            "no Slurm controller answers (run scripts/start-slurm.sh): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let usable = text
                .lines()
                .any(|l| l.starts_with("up") && (l.contains("idle") || l.contains("mix")));
            (!usable).then(|| format!("no partition is up with an idle node: {text:?}"))
        }
    }
}

fn memsweep(args: &[&str], cwd: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_memsweep"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("memsweep runs");
    assert!(
        out.status.success(),
        "memsweep {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn logs(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = fs::read_dir(dir.join("slurm")) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "out") {
                text += &format!(
                    "--- {}\n{}",
                    path.display(),
                    fs::read_to_string(&path).unwrap_or_default()
                );
            }
        }
    }
    text
}

#[test]
fn a_three_task_array_job_writes_the_rows_of_an_unsharded_run_once_each() {
    if let Some(why) = cluster_missing() {
        let msg = format!("no Slurm cluster: {why}");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("s.toml"), SWEEP).unwrap();
    let wrote = memsweep(
        &[
            "slurm",
            "s.toml",
            "--shards",
            "3",
            "-o",
            "array",
            "--batch-size",
            "4",
        ],
        d,
    );
    let stdout = String::from_utf8_lossy(&wrote.stdout);
    let script = d
        .join("array")
        .canonicalize()
        .unwrap()
        .join("slurm/run.sbatch");
    assert!(
        stdout.contains(&format!("sbatch {}", script.display())),
        "{stdout}"
    );

    // --wait: sbatch returns when every task has ended, with the highest
    // exit code among them.
    let mut sbatch = Command::new("sbatch")
        .args(["--parsable", "--wait"])
        .arg(&script)
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sbatch runs");
    let deadline = Instant::now() + Duration::from_secs(300);
    while sbatch.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = sbatch.kill();
            let _ = Command::new("scancel")
                .args(["--name", "memsweep-slurm-ci"])
                .status();
            panic!(
                "the array job did not finish in 300 s\n{}",
                logs(&d.join("array"))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let submitted = sbatch.wait_with_output().unwrap();
    assert!(
        submitted.status.success(),
        "array job failed: {}\n{}",
        String::from_utf8_lossy(&submitted.stderr),
        logs(&d.join("array"))
    );
    let job = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .to_string();
    let log_text = logs(&d.join("array"));
    for task in 0..3 {
        assert!(
            d.join(format!("array/slurm/{job}_{task}.out")).is_file(),
            "task {task} of job {job} logged\n{log_text}"
        );
        assert!(
            log_text.contains(&format!("10 instances (shard {task}/3 of 30)")),
            "task {task} ran shard {task}/3\n{log_text}"
        );
    }

    let spec = Spec::parse(SWEEP, "s.toml").unwrap();
    let inv = Inventory::scan(&spec, &d.join("array")).unwrap();
    assert_eq!(inv.complete(), 30, "every instance\n{log_text}");
    assert!(inv.orphan_eras.is_empty() && inv.partials.is_empty());
    let status = memsweep(&["status", "array"], d);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("complete: 30 of 30"), "{status}");
    assert!(
        status.contains("2/3") && status.contains("10/10"),
        "{status}"
    );

    // The same binary and backend, unsharded, on this machine.
    memsweep(
        &["run", "s.toml", "-o", "whole", "--quiet", "--no-slurm"],
        d,
    );
    for table in ["instances", "eras"] {
        let got = read_sorted(&d.join("array"), table);
        let want = read_sorted(&d.join("whole"), table);
        assert_eq!(got.num_rows(), want.num_rows(), "{table} rows");
        assert_eq!(
            got, want,
            "{table} of the array job differ from an unsharded run"
        );
    }
}
