//! Orchestration of `memsweep run`: expand the grid into jobs, simulate
//! them chunk by chunk on an executor, write each chunk's Parquet files as
//! it completes, show progress, and summarise per grid point.
//!
//! Not here: parsing (`sweep::spec`), physics (`model`, `protocol`), file
//! formats (`results`).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{simulate, Executor, Job};
use crate::results::{self, InstanceRecord};
use crate::sweep::{instance_seed, Spec};

/// Options of one run.
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Instances simulated (and written) together.
    pub batch_size: usize,
    /// Show progress on stderr.
    pub progress: bool,
}

/// Per-grid-point tallies, for the closing table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointSummary {
    pub instances: usize,
    pub recalled_frac_sum: f64,
    pub learned_all: usize,
}

/// Every job of a sweep, in (point, replica) order.
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

/// Refuse to write into a directory that already holds results.
pub fn check_out_dir(dir: &Path) -> io::Result<()> {
    for table in ["instances", "eras"] {
        let sub = dir.join(table);
        if sub.is_dir() && fs::read_dir(&sub)?.next().is_some() {
            return Err(io::Error::other(format!(
                "{} already holds results; choose another -o or remove it",
                sub.display()
            )));
        }
    }
    Ok(())
}

/// Simulate every instance of `spec` and write `instances/`, `eras/` and
/// `sweep.toml` under `opts.out_dir`. Returns the per-point summary.
pub fn run(
    spec: &Spec,
    executor: &dyn Executor,
    opts: &RunOptions,
) -> io::Result<Vec<PointSummary>> {
    let dir = &opts.out_dir;
    check_out_dir(dir)?;
    for table in ["instances", "eras"] {
        fs::create_dir_all(dir.join(table))?;
    }
    let spec_path = dir.join("sweep.toml");
    let tmp = dir.join("sweep.toml.partial");
    fs::write(&tmp, &spec.source)?;
    fs::rename(&tmp, &spec_path)?;

    let metadata = vec![
        ("memsweep.sweep".to_string(), spec.source.clone()),
        (
            "memsweep.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("memsweep.backend".to_string(), executor.name().to_string()),
    ];
    let all = jobs(spec);
    let mut summary = vec![PointSummary::default(); spec.n_points()];
    let mut progress = Progress::new(all.len() as u64, opts.progress);
    for (chunk_index, chunk) in all.chunks(opts.batch_size.max(1)).enumerate() {
        let records = simulate(executor, chunk);
        let name = format!("part-{chunk_index:05}.parquet");
        results::write_parquet(
            &dir.join("instances").join(&name),
            &results::instances_batch(&records),
            &metadata,
        )?;
        results::write_parquet(
            &dir.join("eras").join(&name),
            &results::eras_batch(&records),
            &metadata,
        )?;
        tally(&mut summary, &records);
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(summary)
}

fn tally(summary: &mut [PointSummary], records: &[InstanceRecord]) {
    for r in records {
        let s = &mut summary[r.point];
        s.instances += 1;
        s.recalled_frac_sum += r.recalled as f64 / r.params.n_patterns() as f64;
        s.learned_all += r.learned_all() as usize;
    }
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
