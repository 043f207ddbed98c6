//! `memsweep slurm`: an sbatch script that runs a sweep as a Slurm array
//! job, array task `I` running shard `I` of `N` into one results directory
//! on the shared filesystem. The tasks need no coordination: each writes
//! only its own instances, and a resubmitted task resumes.
//!
//! The script runs the sweep file frozen in `DIR/sweep.toml` (written here,
//! before submission), so editing the original file later cannot mix two
//! sweeps in one directory. Not here: submitting, which is the user's call.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::status::context;
use crate::sweep::Spec;

/// The resources and split of the array job.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// Array tasks, one shard each.
    pub shards: usize,
    pub partition: Option<String>,
    /// Wall-clock limit per task, in any form `sbatch --time` takes.
    pub time: Option<String>,
    /// `[type:]count`, as `sbatch --gpus-per-task` takes it.
    pub gpus_per_task: Option<String>,
    /// Cores per task; each task runs this many worker threads.
    pub cpus_per_task: usize,
    /// Instances per chunk, at most this much work lost when a task dies
    /// (default: `run`'s for the backend it picks).
    pub batch_size: Option<usize>,
}

/// Where `write_script` puts the script, under the results directory.
pub fn script_path(dir: &Path) -> PathBuf {
    dir.join("slurm").join("run.sbatch")
}

/// A few task ids of an array of `n`, to show how to resubmit some.
pub fn example_array(n: usize) -> String {
    match n {
        1 => "0".into(),
        2 => "1".into(),
        _ => format!("1,{}", n - 1),
    }
}

/// Checks the options against the sweep; one line per problem, naming the
/// flag.
pub fn check(spec: &Spec, opts: &SlurmOptions) -> Result<(), String> {
    let n = spec.n_instances();
    if opts.shards == 0 {
        return Err("--shards: must be at least 1".into());
    }
    if opts.shards > n {
        return Err(format!(
            "--shards: {} shards of a sweep of {n} instances would leave some with nothing to run; use at most {n}",
            opts.shards
        ));
    }
    if opts.cpus_per_task == 0 {
        return Err("--cpus-per-task: must be at least 1".into());
    }
    if opts.batch_size == Some(0) {
        return Err("--batch-size: must be at least 1".into());
    }
    let word = |flag: &str, value: &Option<String>, extra: &str| match value {
        Some(v)
            if v.is_empty()
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric() || "_-".contains(c) || extra.contains(c)
                }) =>
        {
            Err(format!(
                "{flag}: \"{}\" is not a valid value (letters, digits and _-{extra} only)",
                v.escape_debug()
            ))
        }
        _ => Ok(()),
    };
    word("--partition", &opts.partition, ".,")?;
    word("--time", &opts.time, ":")?;
    word("--gpus-per-task", &opts.gpus_per_task, ":")?;
    Ok(())
}

/// The sbatch script. `memsweep` is the binary the tasks run and `dir` the
/// results directory, both absolute paths on the shared filesystem.
pub fn script(
    spec: &Spec,
    memsweep: &Path,
    dir: &Path,
    opts: &SlurmOptions,
) -> Result<String, String> {
    let memsweep = plain(memsweep)?;
    let results = plain(dir)?;
    let script = script_path(dir);
    let n = opts.shards;
    let job_name: String = spec
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut s = format!(
        "#!/bin/bash
# Sweep '{name}' ({total} instances) as a Slurm array job of {n} tasks,
# written by `memsweep slurm`. Task I runs shard I of {n} (instance
# k = point * {replicas} + replica belongs to shard k mod {n}) into
# {results}.
# A task that is killed, preempted or out of time loses at most the chunk
# it was writing; resubmit it and it resumes where it stopped.
#
#   submit:    sbatch {script}
#   progress:  {memsweep} status {results}
#   redo some: sbatch --array={example} {script}
#SBATCH --job-name=memsweep-{job_name}
#SBATCH --array=0-{last}
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={results}/slurm/%A_%a.out
",
        name = spec.name,
        total = spec.n_instances(),
        replicas = spec.replicas,
        script = script.display(),
        last = n - 1,
        cpus = opts.cpus_per_task,
        example = example_array(n),
    );
    for (flag, value) in [
        ("partition", &opts.partition),
        ("time", &opts.time),
        ("gpus-per-task", &opts.gpus_per_task),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("#SBATCH --{flag}={v}\n"));
        }
    }
    s.push_str(&format!(
        "set -eu
# The shard count is written here, not read from SLURM_ARRAY_TASK_COUNT, so
# that resubmitting a few tasks (--array={example}) still runs those shards of {n}.
# Worker threads default to SLURM_CPUS_PER_TASK.
exec '{memsweep}' run '{results}/sweep.toml' -o '{results}' \\
    --shard \"$SLURM_ARRAY_TASK_ID/{n}\"{batch}
",
        batch = opts
            .batch_size
            .map_or(String::new(), |b| format!(" --batch-size {b}")),
        example = example_array(n),
    ));
    Ok(s)
}

/// Writes the script for `spec` to `script_path(dir)` (after
/// `run::prepare_out_dir`, which froze the sweep in `dir`) and returns its
/// path. `dir` must be absolute.
pub fn write_script(spec: &Spec, dir: &Path, opts: &SlurmOptions) -> io::Result<PathBuf> {
    let memsweep = std::env::current_exe()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot locate the memsweep binary: {e}")))?;
    let text = script(spec, &memsweep, dir, opts)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let path = script_path(dir);
    let logs = dir.join("slurm");
    fs::create_dir_all(&logs).map_err(|e| context(e, "cannot create", &logs))?;
    fs::write(&path, text).map_err(|e| context(e, "cannot write", &path))?;
    Ok(path)
}

/// The path as text, refused if an `#SBATCH` line or a single-quoted shell
/// word could not carry it.
fn plain(path: &Path) -> Result<&str, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{}: path is not UTF-8", path.display()))?;
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "'\"%\\$`".contains(c))
    {
        return Err(format!(
            "{text}: a path with spaces, quotes, %, $, ` or \\ cannot go into an sbatch script; choose another -o"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SlurmOptions {
        SlurmOptions {
            shards: 3,
            partition: Some("short".into()),
            time: Some("1-02:00:00".into()),
            gpus_per_task: None,
            cpus_per_task: 4,
            batch_size: Some(64),
        }
    }

    #[test]
    fn script_runs_shard_task_id_of_n_into_one_directory() {
        let spec = Spec::parse("name = \"s\"\nreplicas = 10", "s.toml").unwrap();
        let text = script(
            &spec,
            Path::new("/opt/memsweep"),
            Path::new("/scratch/s"),
            &opts(),
        )
        .unwrap();
        for line in [
            "#SBATCH --array=0-2\n",
            "#SBATCH --cpus-per-task=4\n",
            "#SBATCH --partition=short\n",
            "#SBATCH --time=1-02:00:00\n",
            "#SBATCH --output=/scratch/s/slurm/%A_%a.out\n",
            "exec '/opt/memsweep' run '/scratch/s/sweep.toml' -o '/scratch/s'",
            "--shard \"$SLURM_ARRAY_TASK_ID/3\" --batch-size 64\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("--gpus-per-task="));
        // sbatch reads #SBATCH lines only before the first command.
        let first_command = text.find("\nset -eu").unwrap();
        assert!(text.rfind("#SBATCH").unwrap() < first_command);
    }

    #[test]
    fn bad_options_and_paths_are_refused() {
        let spec = Spec::parse("replicas = 2", "s.toml").unwrap();
        let with = |f: fn(&mut SlurmOptions)| {
            let mut o = opts();
            o.shards = 2;
            f(&mut o);
            check(&spec, &o).unwrap_err()
        };
        assert!(with(|o| o.shards = 0).starts_with("--shards"));
        assert!(with(|o| o.shards = 3).contains("at most 2"));
        assert!(with(|o| o.cpus_per_task = 0).starts_with("--cpus-per-task"));
        assert!(with(|o| o.partition = Some("a b".into())).starts_with("--partition"));
        assert!(with(|o| o.time = Some("1h\n#SBATCH".into())).starts_with("--time"));
        assert!(with(|o| o.gpus_per_task = Some(String::new())).starts_with("--gpus-per-task"));
        let mut ok = opts();
        ok.shards = 2;
        ok.gpus_per_task = Some("a100:1".into());
        assert_eq!(check(&spec, &ok), Ok(()));
        let err = script(&spec, Path::new("/bin/m"), Path::new("/my results"), &ok).unwrap_err();
        assert!(err.contains("choose another -o"), "{err}");
    }
}
