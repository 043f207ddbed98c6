//! Orchestration of `memsweep run`: expand the grid into jobs, keep this
//! shard's instances that the results directory does not hold yet,
//! simulate them chunk by chunk on an executor, write each chunk's Parquet
//! files as it completes, show progress, and summarise per grid point.
//!
//! Resuming needs no record beyond the results themselves: a rerun of the
//! same command locks its shard of the directory (`lock`), reads which
//! instances the finished files hold (`status::Inventory`), removes what a
//! killed run of this shard left behind (and an instances file whose eras
//! file is gone), and runs the rest. A directory holding another sweep, or
//! a file that is not this sweep's, is refused. The job list is never
//! built whole: jobs are made chunk by chunk from their index.
//!
//! Not here: parsing (`sweep::spec`), physics (`model`, `protocol`), file
//! formats (`results`), which instances a shard owns (`shard`).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{backends_of, simulate, Executor, Job};
use crate::lock;
use crate::params::Params;
use crate::results::{self, InstanceRecord};
use crate::shard::Shard;
use crate::status::{self, context, Inventory};
use crate::sweep::limits::{self, Footprint};
use crate::sweep::{instance_seed, Spec};

/// Options of one run.
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Instances simulated (and written) together.
    pub batch_size: usize,
    /// Show progress on stderr.
    pub progress: bool,
    /// The part of the sweep this process runs (`Shard::ALL` for all of it).
    pub shard: Shard,
}

/// Per-grid-point tallies, for the closing table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointSummary {
    pub instances: usize,
    pub recalled_frac_sum: f64,
    pub learned_all: usize,
}

impl PointSummary {
    /// Counts one instance that recalled `recalled` of `n_patterns`.
    pub fn add(&mut self, recalled: usize, n_patterns: usize) {
        self.instances += 1;
        self.recalled_frac_sum += recalled as f64 / n_patterns as f64;
        self.learned_all += (recalled == n_patterns) as usize;
    }
}

/// Job `k = point * replicas + replica` of a sweep. `last` keeps the
/// parameters of the point built last, shared by its replicas.
pub fn job(spec: &Spec, k: usize, last: &mut Option<(usize, Arc<Params>)>) -> Job {
    let (point, replica) = (k / spec.replicas, k % spec.replicas);
    let params = match last {
        Some((p, params)) if *p == point => params.clone(),
        _ => {
            let params = Arc::new(spec.params_at(point));
            *last = Some((point, params.clone()));
            params
        }
    };
    Job {
        params,
        point,
        replica,
        seed: instance_seed(spec.seed, point, replica),
    }
}

/// Refuses a directory that holds results of another sweep (its
/// `sweep.toml` differs in content, not just in comments or layout) or
/// results without a `sweep.toml`; a `sweep.toml` alone, of any sweep, is
/// no reason to refuse. Reads only; each error is one line, for exit
/// status 2. Returns whether `dir` already records this sweep.
pub fn check_out_dir(spec: &Spec, dir: &Path) -> Result<bool, String> {
    let recorded = dir.join("sweep.toml");
    let read = || match fs::symlink_metadata(&recorded) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        _ => limits::read_small_file(&recorded, limits::MAX_RECORDED_BYTES)
            .map(Some)
            .map_err(|reason| format!("{}: {reason}", recorded.display())),
    };
    let mut text = read()?;
    let held = || {
        status::TABLES
            .iter()
            .any(|t| fs::read_dir(dir.join(t)).is_ok_and(|mut entries| entries.next().is_some()))
    };
    if text.is_none() && held() {
        // A shard starting at the same moment may have written both since.
        text = read()?;
        if text.is_none() {
            return Err(format!(
                "{} holds results but no sweep.toml, so they cannot be matched to {}; \
                 choose another -o or remove the directory",
                dir.display(),
                spec.file
            ));
        }
    }
    let Some(text) = text else {
        return Ok(false);
    };
    let same = text == spec.source
        || Spec::parse(&text, &recorded.display().to_string()).is_ok_and(|old| old.same_rows(spec));
    if !same && !held() {
        // Only a sweep.toml (left by `slurm`, or a run stopped before its
        // first chunk): the new sweep replaces it.
        return Ok(false);
    }
    if !same {
        return Err(format!(
            "{} holds results of a different sweep than {} (compare {}); \
             choose another -o or remove the directory",
            dir.display(),
            spec.file,
            recorded.display()
        ));
    }
    Ok(true)
}

/// Makes `dir` ready for results of `spec`: `check_out_dir`, then creates
/// `instances/`, `eras/` and `sweep.toml` (the sweep as parsed,
/// `Spec::source`). Writes nothing when it refuses. Each error is one
/// line.
pub fn prepare_out_dir(spec: &Spec, dir: &Path) -> Result<(), String> {
    if !check_out_dir(spec, dir)? {
        let recorded = dir.join("sweep.toml");
        fs::create_dir_all(dir).map_err(|e| context(e, "cannot create", dir).to_string())?;
        // Shards may start together: each writes its own temporary file and
        // renames it over the others', all with the same text.
        let tmp = dir.join(format!(".sweep.toml.{}.partial", std::process::id()));
        fs::write(&tmp, &spec.source)
            .and_then(|()| fs::rename(&tmp, &recorded))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                context(e, "cannot write", &recorded).to_string()
            })?;
    }
    for table in status::TABLES {
        let sub = dir.join(table);
        fs::create_dir_all(&sub).map_err(|e| context(e, "cannot create", &sub).to_string())?;
    }
    Ok(())
}

/// The shard's part of a results directory, ready to be written: the
/// directory prepared, the shard locked (until this is dropped), the
/// directory scanned and the shard's leftovers removed.
pub struct ShardDir {
    _lock: lock::DirLock,
    inventory: Inventory,
}

impl ShardDir {
    /// Errors of kind `InvalidInput` (the directory refused, or locked by
    /// a live run) and `InvalidData` (a file that is not this sweep's)
    /// come before anything but the directory itself is written.
    pub fn open(spec: &Spec, dir: &Path, shard: Shard) -> io::Result<ShardDir> {
        let refused = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        prepare_out_dir(spec, dir).map_err(refused)?;
        let lock = lock::lock(dir, shard).map_err(refused)?;
        let inventory = Inventory::scan_for(spec, dir, shard)?;
        inventory.remove_leftovers(spec, shard)?;
        Ok(ShardDir {
            _lock: lock,
            inventory,
        })
    }
}

/// `ShardDir::open`, then `run_opened`.
pub fn run(
    spec: &Spec,
    executor: &dyn Executor,
    opts: &RunOptions,
) -> io::Result<Vec<PointSummary>> {
    let opened = ShardDir::open(spec, &opts.out_dir, opts.shard)?;
    run_opened(spec, executor, opts, opened)
}

/// Simulate the instances of `opts.shard` that `opts.out_dir` does not
/// hold yet and write them to `instances/` and `eras/`, holding the
/// shard's lock throughout. Returns the per-point summary of every
/// instance of the shard now in the directory, including those of earlier
/// runs.
///
/// Each chunk is written as an eras file, then an instances file of the
/// same name, each renamed into place when complete; a failure (disk full,
/// directory gone) stops the run with one error naming the file, and every
/// file written before stays intact for the rerun to resume from. Chunks
/// hold at most `opts.batch_size` instances, fewer where their records
/// would not fit in `limits::CHUNK_BYTES`.
pub fn run_opened(
    spec: &Spec,
    executor: &dyn Executor,
    opts: &RunOptions,
    opened: ShardDir,
) -> io::Result<Vec<PointSummary>> {
    let dir = &opts.out_dir;
    let shard = opts.shard;
    let inventory = &opened.inventory;
    let n = spec.n_instances();
    let mut summary = inventory.tallies.clone();
    let owned = shard.len(n);
    let todo = shard.instances(n).filter(|&k| !inventory.holds(k)).count();
    if opts.progress && todo < owned {
        eprintln!(
            "resuming: {} of {owned} instances already in {}, {todo} to run",
            owned - todo,
            dir.display(),
        );
    }

    let mut footprints = Vec::new();
    spec.each_point(|_, params| {
        footprints.push(Footprint::of(params));
        Ok(())
    })
    .expect("a parsed sweep's points build");
    let batch_size = limits::chunk_size(opts.batch_size.max(1), footprints.into_iter());
    if opts.progress && batch_size < opts.batch_size {
        eprintln!(
            "chunks of {batch_size} instances (not {}), so that a chunk's records fit in {}",
            opts.batch_size,
            limits::bytes(limits::CHUNK_BYTES)
        );
    }

    let metadata = |records: &[InstanceRecord]| {
        vec![
            (status::SWEEP_KEY.to_string(), spec.source.clone()),
            (
                "memsweep.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            // The backends that trained this file's rows.
            ("memsweep.backend".to_string(), backends_of(records)),
        ]
    };
    let mut progress = Progress::new(todo as u64, opts.progress);
    let mut written = 0;
    let mut last = None;
    let mut pending = shard.instances(n).filter(|&k| !inventory.holds(k));
    loop {
        let chunk: Vec<Job> = pending
            .by_ref()
            .take(batch_size)
            .map(|k| job(spec, k, &mut last))
            .collect();
        let Some(first) = chunk.first() else {
            break;
        };
        let records = simulate(executor, &chunk);
        let name = status::chunk_name(first.point * spec.replicas + first.replica, shard);
        // Eras first: an instances row on disk implies its eras are there.
        let eras = dir.join("eras").join(&name);
        let instances = dir.join("instances").join(&name);
        let failed = |path: &Path, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot write {}: {e}; every finished file is intact ({written} instances \
                     written by this run), and rerunning the same command resumes",
                    path.display()
                ),
            )
        };
        let metadata = metadata(&records);
        results::write_parquet(&eras, &results::eras_batch(&records), &metadata)
            .map_err(|e| failed(&eras, e))?;
        results::write_parquet(&instances, &results::instances_batch(&records), &metadata)
            .map_err(|e| {
                let _ = fs::remove_file(&eras);
                failed(&instances, e)
            })?;
        written += records.len();
        for r in &records {
            summary[r.point].add(r.recalled, r.params.n_patterns());
        }
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(summary)
}

/// The closing table: per point, its varied values, instances, mean
/// recalled/P and Pr[learned_all].
pub fn summary_table(spec: &Spec, summary: &[PointSummary]) -> String {
    let points = spec.points();
    let keys: Vec<String> = spec.axes.iter().flat_map(|a| a.keys.clone()).collect();
    let mut out = String::new();
    let _ = write!(out, "{:>5}", "point");
    for k in &keys {
        let _ = write!(out, "  {k:>14}");
    }
    let _ = writeln!(
        out,
        "  {:>9}  {:>11}  {:>15}",
        "instances", "recalled/P", "Pr[learned_all]"
    );
    for (p, s) in points.iter().zip(summary) {
        let _ = write!(out, "{:>5}", p.index);
        for (_, v) in &p.varied {
            let _ = write!(out, "  {v:>14}");
        }
        let n = s.instances.max(1) as f64;
        let _ = writeln!(
            out,
            "  {:>9}  {:>11.3}  {:>15.3}",
            s.instances,
            s.recalled_frac_sum / n,
            s.learned_all as f64 / n
        );
    }
    out
}

/// A progress bar on a terminal; plain periodic lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    start: Instant,
    last_line: Instant,
    enabled: bool,
}

impl Progress {
    const LINE_EVERY: Duration = Duration::from_secs(10);

    fn new(total: u64, enabled: bool) -> Self {
        let bar = (enabled && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} instances  {per_sec}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            done: 0,
            start: now,
            last_line: now,
            enabled,
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.enabled
            && (self.last_line.elapsed() >= Self::LINE_EVERY || self.done == self.total)
        {
            self.last_line = Instant::now();
            let secs = self.start.elapsed().as_secs_f64();
            let rate = self.done as f64 / secs.max(1e-9);
            let eta = (self.total - self.done) as f64 / rate.max(1e-9);
            eprintln!(
                "progress: {}/{} instances, {:.1} instances/s, {:.0} s elapsed, ETA {:.0} s",
                self.done, self.total, rate, secs, eta
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
