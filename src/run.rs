//! Orchestration of `memsweep run`: expand the grid into jobs, keep this
//! shard's instances that the results directory does not hold yet,
//! simulate them chunk by chunk on an executor, write each chunk's Parquet
//! files as it completes, show progress, and summarise per grid point.
//!
//! Resuming needs no record beyond the results themselves: a rerun of the
//! same command reads which instances the finished files hold
//! (`status::Inventory`), removes what a killed run of this shard left
//! behind, and runs the rest. A directory holding another sweep is refused.
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

use crate::backend::{simulate, Executor, Job};
use crate::results;
use crate::shard::Shard;
use crate::status::{self, context, Inventory};
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

/// Every job of a sweep, in (point, replica) order: job `k` is instance
/// `k = point * replicas + replica`.
pub fn jobs(spec: &Spec) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(spec.n_instances());
    for point in spec.points() {
        let params = Arc::new(point.params);
        for replica in 0..spec.replicas {
            jobs.push(Job {
                params: params.clone(),
                point: point.index,
                replica,
                seed: instance_seed(spec.seed, point.index, replica),
            });
        }
    }
    jobs
}

/// Refuses a directory that holds another sweep (its `sweep.toml` differs
/// in content, not just in comments or layout) or results without a
/// `sweep.toml`. Reads only; each error is one line, for exit status 2.
/// Returns whether `dir` already records this sweep.
pub fn check_out_dir(spec: &Spec, dir: &Path) -> Result<bool, String> {
    let recorded = dir.join("sweep.toml");
    let read = || match fs::read_to_string(&recorded) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(context(e, "cannot read", &recorded).to_string()),
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
        || Spec::parse(&text, &recorded.display().to_string())
            .is_ok_and(|old| same_sweep(&old, spec));
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
/// `instances/`, `eras/` and `sweep.toml` (the sweep file as run). Writes
/// nothing when it refuses. Each error is one line.
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

/// Whether two sweeps give the same rows: same seed, replicas and grid
/// points, however the files spell them.
fn same_sweep(a: &Spec, b: &Spec) -> bool {
    a.seed == b.seed
        && a.replicas == b.replicas
        && a.n_points() == b.n_points()
        && a.points()
            .iter()
            .zip(b.points())
            .all(|(p, q)| p.params == q.params)
}

/// Simulate the instances of `opts.shard` that `opts.out_dir` does not
/// hold yet and write them to `instances/` and `eras/` (after
/// `prepare_out_dir`). Returns the per-point summary of every instance of
/// the shard now in the directory, including those of earlier runs.
///
/// Each chunk is written as an eras file, then an instances file of the
/// same name, each renamed into place when complete; a failure (disk full,
/// directory gone) stops the run with one error naming the file, and every
/// file written before stays intact for the rerun to resume from.
pub fn run(
    spec: &Spec,
    executor: &dyn Executor,
    opts: &RunOptions,
) -> io::Result<Vec<PointSummary>> {
    let dir = &opts.out_dir;
    let shard = opts.shard;
    prepare_out_dir(spec, dir).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let inventory = Inventory::scan_for(spec, dir, shard)?;
    inventory.remove_leftovers(spec, shard)?;

    let all = jobs(spec);
    let mut summary = vec![PointSummary::default(); spec.n_points()];
    let mut todo = Vec::new();
    for k in shard.instances(all.len()) {
        match inventory.recalled[k] {
            Some(recalled) => {
                let job = &all[k];
                let n_patterns = job.params.n_patterns();
                tally(&mut summary, job.point, recalled, n_patterns);
            }
            None => todo.push(all[k].clone()),
        }
    }
    let owned = shard.len(all.len());
    if opts.progress && todo.len() < owned {
        eprintln!(
            "resuming: {} of {owned} instances already in {}, {} to run",
            owned - todo.len(),
            dir.display(),
            todo.len()
        );
    }

    let metadata = vec![
        ("memsweep.sweep".to_string(), spec.source.clone()),
        (
            "memsweep.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("memsweep.backend".to_string(), executor.name().to_string()),
    ];
    let mut progress = Progress::new(todo.len() as u64, opts.progress);
    let mut written = 0;
    for chunk in chunks(&todo, opts.batch_size) {
        let records = simulate(executor, chunk);
        let name = status::chunk_name(chunk[0].point * spec.replicas + chunk[0].replica, shard);
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
        results::write_parquet(&eras, &results::eras_batch(&records), &metadata)
            .map_err(|e| failed(&eras, e))?;
        results::write_parquet(&instances, &results::instances_batch(&records), &metadata)
            .map_err(|e| {
                let _ = fs::remove_file(&eras);
                failed(&instances, e)
            })?;
        written += records.len();
        for r in &records {
            tally(&mut summary, r.point, r.recalled, r.params.n_patterns());
        }
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(summary)
}

/// Bytes that the instances of one chunk may hold at once: their set-up
/// (wiring, devices), outcomes and result rows. A chunk ends at
/// `batch_size` instances or where the next instance would pass this
/// bound, whichever comes first; the rows are the same either way.
pub const CHUNK_BYTES: usize = 512 << 20;

/// `todo` cut into chunks of at most `batch_size` instances and, beyond
/// one instance, at most `CHUNK_BYTES` by `instance_bytes`.
fn chunks(todo: &[Job], batch_size: usize) -> impl Iterator<Item = &[Job]> {
    let mut rest = todo;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut len = 0;
        while len < rest.len() && len < batch_size.max(1) {
            bytes += instance_bytes(&rest[len].params);
            if len > 0 && bytes > CHUNK_BYTES {
                break;
            }
            len += 1;
        }
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// Estimated bytes one instance of `params` holds while its chunk is
/// simulated: per edge its wiring, four device values, its final state and
/// the trainer's working copies (about 100 bytes); per node its role,
/// voltages and sums; per read its trace row.
pub fn instance_bytes(params: &crate::params::Params) -> usize {
    let edges = params.expected_edges();
    let nodes = params.network.n_in + params.n_hidden() + params.network.n_out;
    let reads = params.training.max_eras.saturating_mul(params.n_patterns());
    4096usize
        .saturating_add(edges.saturating_mul(100))
        .saturating_add(nodes.saturating_mul(64))
        .saturating_add(reads.saturating_mul(32))
}

fn tally(summary: &mut [PointSummary], point: usize, recalled: usize, n_patterns: usize) {
    let s = &mut summary[point];
    s.instances += 1;
    s.recalled_frac_sum += recalled as f64 / n_patterns as f64;
    s.learned_all += (recalled == n_patterns) as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Params, Topology};

    fn jobs_of(params: Params, n: usize) -> Vec<Job> {
        let params = Arc::new(params);
        (0..n)
            .map(|replica| Job {
                params: params.clone(),
                point: 0,
                replica,
                seed: replica as u64,
            })
            .collect()
    }

    #[test]
    fn chunks_of_large_instances_stay_under_the_memory_bound() {
        let mut large = Params::default();
        large.network.topology = Topology::RandomBulk;
        large.network.n_bulk = 10_000;
        large.network.p_bulk = 0.001;
        let per = instance_bytes(&large);
        assert!(
            per > 4 << 20,
            "a 50,000-edge instance holds megabytes: {per}"
        );
        let todo = jobs_of(large, 1000);
        let sizes: Vec<usize> = chunks(&todo, 1024).map(|c| c.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1000, "every job once");
        assert!(sizes.iter().all(|&n| n * per <= CHUNK_BYTES), "{sizes:?}");
        assert!(sizes.len() > 1);
    }

    #[test]
    fn small_instances_fill_whole_batches() {
        let todo = jobs_of(Params::default(), 2500);
        let sizes: Vec<usize> = chunks(&todo, 1024).map(|c| c.len()).collect();
        assert_eq!(sizes, vec![1024, 1024, 452]);
    }
}
