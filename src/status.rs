//! What a results directory holds: which instances of its sweep are
//! complete, and what a killed run left behind. `run` resumes from this
//! inventory and `memsweep status` prints it.
//!
//! The files are the only record. An instance is complete when a finished
//! (renamed into place) `instances` file holds its row and the `eras` file
//! of the same name exists; `run` writes each chunk's `eras` file before
//! its `instances` file, so only a deletion by hand separates them. A
//! killed run can leave an `eras` file without its `instances` twin (an
//! orphan) and unfinished temporary files; the next run of the shard that
//! owns them removes them, and an `instances` file whose `eras` file is
//! gone, before it writes anything, and runs those instances again.
//!
//! A file that is not this sweep's is an error naming it, for `run`,
//! `status` and `report` alike: one written by another sweep (its
//! `memsweep.sweep` metadata parses to different rows) or by no memsweep,
//! one holding a row outside the grid, one holding an instance another
//! file holds too. Not here: running instances or choosing what to run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::run::PointSummary;
use crate::shard::Shard;
use crate::sweep::Spec;

/// The two tables, each a directory of chunk files.
pub const TABLES: [&str; 2] = ["instances", "eras"];

/// The most shards `status` reports one by one (a line each).
pub const MAX_SHARDS: usize = 100_000;

/// The key of the Parquet metadata entry that holds the sweep
/// (`Spec::source`) a file was written for.
pub const SWEEP_KEY: &str = "memsweep.sweep";

/// The file name of the chunk whose first instance is `first`, written by
/// `shard`: `part-000000042.parquet`, or `part-000000042-s1of3.parquet` for
/// shard 1 of 3. Unique across shards and reruns, since `first` is an
/// instance that no finished file held when the chunk was started. Zero
/// padding keeps name order equal to instance order within a shard.
pub fn chunk_name(first: usize, shard: Shard) -> String {
    match shard.tag() {
        Some(tag) => format!("part-{first:09}-{tag}.parquet"),
        None => format!("part-{first:09}.parquet"),
    }
}

/// The first instance and the shard count (if tagged) in a name that
/// `chunk_name` made; `None` for any other name.
fn parse_chunk_name(name: &str) -> Option<(usize, Option<usize>)> {
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (first, tag) = match stem.split_once('-') {
        Some((first, tag)) => (first, Some(tag)),
        None => (stem, None),
    };
    let count = match tag {
        Some(tag) => Some(tag.strip_prefix('s')?.split_once("of")?.1.parse().ok()?),
        None => None,
    };
    Some((first.parse().ok()?, count))
}

/// The chunk name inside a temporary file's name (`.NAME.partial`, as
/// `results::write_parquet` makes them, or the older `NAME.partial`).
fn partial_target(name: &str) -> Option<&str> {
    let target = name.strip_suffix(".partial")?;
    Some(target.strip_prefix('.').unwrap_or(target))
}

/// The contents of a results directory, measured against its sweep.
#[derive(Debug)]
pub struct Inventory {
    /// One bit per instance `k = point * replicas + replica`: set when a
    /// finished instances file with its eras file holds the row.
    done: Vec<u64>,
    n_instances: usize,
    dir: PathBuf,
    /// Per grid point, the complete instances of the shard scanned for
    /// (every instance for `scan`).
    pub tallies: Vec<PointSummary>,
    /// Eras files without an instances file of the same name.
    pub orphan_eras: Vec<PathBuf>,
    /// Instances files without an eras file of the same name (only a
    /// deletion by hand makes these): their instances count as missing.
    pub missing_eras: Vec<PathBuf>,
    /// Temporary files of unfinished writes.
    pub partials: Vec<PathBuf>,
    /// Shard counts named by chunk files (`-sIofN`), 1 for untagged ones.
    pub shard_counts: BTreeSet<usize>,
}

impl Inventory {
    /// Reads the `(point, replica, recalled)` of every finished instances
    /// file under `dir` and lists the leftovers. A file that is not this
    /// sweep's (see the module comment) is an `InvalidData` error, one
    /// line naming the file.
    pub fn scan(spec: &Spec, dir: &Path) -> io::Result<Inventory> {
        Inventory::scan_files(spec, dir, None, false)
    }

    /// `scan`, reading the eras files too: each must hold the eras of
    /// exactly the instances of its instances file. `report`'s check,
    /// since it reads them anyway; `run` and `status` check only their
    /// metadata.
    pub fn scan_with_eras(spec: &Spec, dir: &Path) -> io::Result<Inventory> {
        Inventory::scan_files(spec, dir, None, true)
    }

    /// `scan`, for what `shard` needs: files that another shard of the same
    /// count wrote (`-sJofN` with the same `N`) hold none of its instances
    /// and are not read, so the tasks of a large array job starting
    /// together do not each read every file. `tallies` counts this shard's
    /// instances only.
    pub fn scan_for(spec: &Spec, dir: &Path, shard: Shard) -> io::Result<Inventory> {
        Inventory::scan_files(spec, dir, Some(shard), false)
    }

    fn scan_files(
        spec: &Spec,
        dir: &Path,
        only: Option<Shard>,
        with_eras: bool,
    ) -> io::Result<Inventory> {
        let n = spec.n_instances();
        let mut n_patterns = Vec::with_capacity(spec.n_points());
        spec.each_point(|_, params| {
            n_patterns.push(params.n_patterns());
            Ok(())
        })
        .expect("a parsed sweep's points build");
        let mut inv = Inventory {
            done: vec![0; n.div_ceil(64)],
            n_instances: n,
            dir: dir.to_path_buf(),
            tallies: vec![PointSummary::default(); spec.n_points()],
            orphan_eras: Vec::new(),
            missing_eras: Vec::new(),
            partials: Vec::new(),
            shard_counts: BTreeSet::new(),
        };
        let mut sweeps = SweepCheck::new(spec, dir);
        let instances = list(&dir.join("instances"))?;
        let eras = list(&dir.join("eras"))?;
        // Complete files first, so that an instances file without its eras
        // file is told apart: a copy of rows held elsewhere is refused,
        // rows held nowhere else are missing and run again.
        let mut read: Vec<PathBuf> = Vec::new();
        let mut twinless = Vec::new();
        for name in &instances {
            let path = dir.join("instances").join(name);
            if partial_target(name).is_some() {
                inv.partials.push(path);
                continue;
            }
            if !name.ends_with(".parquet") || name.starts_with('.') {
                continue;
            }
            if let Some((first, count)) = parse_chunk_name(name) {
                let count = count.unwrap_or(1);
                if count <= n.max(1).min(MAX_SHARDS) {
                    inv.shard_counts.insert(count);
                }
                if only.is_some_and(|s| s.count() == count && !s.owns(first)) {
                    continue;
                }
            }
            if !eras.contains(name) {
                twinless.push(path);
                continue;
            }
            let rows = read_instances(&path, spec, true, &mut sweeps)?;
            let eras_path = dir.join("eras").join(name);
            if with_eras {
                let mut held: Vec<usize> = rows.iter().map(|&(k, _)| k).collect();
                held.sort_unstable();
                if eras_instances(&eras_path, spec, &mut sweeps)? != held {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: does not hold the eras of the instances in {} (the same \
                             instances, each once); remove both, and rerun `memsweep run` \
                             to run them again",
                            eras_path.display(),
                            path.display()
                        ),
                    ));
                }
            } else {
                open_checked(&eras_path, &mut sweeps)?;
            }
            for (k, recalled) in rows {
                if inv.holds(k) {
                    return Err(duplicate(&path, k, spec, &read, &mut sweeps));
                }
                inv.done[k / 64] |= 1 << (k % 64);
                if only.is_none_or(|s| s.owns(k)) {
                    let point = k / spec.replicas;
                    let recalled = recalled.expect("asked for recalled");
                    inv.tallies[point].add(recalled, n_patterns[point]);
                }
            }
            read.push(path);
        }
        for path in twinless {
            for (k, _) in read_instances(&path, spec, false, &mut sweeps)? {
                if inv.holds(k) {
                    return Err(duplicate(&path, k, spec, &read, &mut sweeps));
                }
            }
            inv.missing_eras.push(path);
        }
        for name in &eras {
            let path = dir.join("eras").join(name);
            if partial_target(name).is_some() {
                inv.partials.push(path);
            } else if name.ends_with(".parquet")
                && !name.starts_with('.')
                && !instances.contains(name)
            {
                inv.orphan_eras.push(path);
            }
        }
        Ok(inv)
    }

    /// Instances with a row.
    pub fn complete(&self) -> usize {
        self.done.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether instance `k` has a row.
    pub fn holds(&self, k: usize) -> bool {
        self.done[k / 64] >> (k % 64) & 1 == 1
    }

    /// Instances of `shard` without a row, ascending.
    pub fn missing(&self, shard: Shard) -> impl Iterator<Item = usize> + '_ {
        shard
            .instances(self.n_instances)
            .filter(|&k| !self.holds(k))
    }

    /// Removes the leftovers that `shard` is responsible for: orphan eras
    /// files and instances files without their eras file holding any of
    /// its instances, and unfinished temporary files of its chunks.
    /// Leftovers of other shards stay, since those may be running right
    /// now. Returns how many files were removed.
    pub fn remove_leftovers(&self, spec: &Spec, shard: Shard) -> io::Result<usize> {
        let mut removed = 0;
        let mut sweeps = SweepCheck::new(spec, &self.dir);
        for path in self.orphan_eras.iter().chain(&self.missing_eras) {
            let by_name = file_name(path)
                .and_then(parse_chunk_name)
                .is_some_and(|(first, _)| shard.owns(first));
            if by_name
                || read_instances(path, spec, false, &mut sweeps)?
                    .iter()
                    .any(|&(k, _)| shard.owns(k))
            {
                remove(path)?;
                removed += 1;
            }
        }
        for path in &self.partials {
            let ours = match file_name(path)
                .and_then(partial_target)
                .and_then(parse_chunk_name)
            {
                Some((first, _)) => shard.owns(first),
                None => shard.count() == 1,
            };
            if ours {
                remove(path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The error for a file holding instance `k`, which a file read before
/// (`read`) holds too: names both.
fn duplicate(
    path: &Path,
    k: usize,
    spec: &Spec,
    read: &[PathBuf],
    sweeps: &mut SweepCheck,
) -> io::Error {
    let other = read.iter().find(|p| {
        read_instances(p, spec, false, sweeps).is_ok_and(|rows| rows.iter().any(|&(j, _)| j == k))
    });
    let (point, replica) = (k / spec.replicas, k % spec.replicas);
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{}: holds instance {k} (point {point}, replica {replica}), which {} holds too, \
             so its rows would count twice; remove the copy",
            path.display(),
            other.map_or("another file".to_string(), |p| p.display().to_string())
        ),
    )
}

/// Whether a file's `memsweep.sweep` metadata is the sweep of the
/// directory. Texts found equal are remembered, so each distinct text is
/// parsed once (files of an earlier version hold the sweep file's text
/// as written, comments and all).
struct SweepCheck<'a> {
    spec: &'a Spec,
    recorded: PathBuf,
    same: Vec<String>,
}

impl<'a> SweepCheck<'a> {
    fn new(spec: &'a Spec, dir: &Path) -> Self {
        SweepCheck {
            spec,
            recorded: dir.join("sweep.toml"),
            same: vec![spec.source.clone()],
        }
    }

    /// `Err` is the reason `path` is not a file of this sweep.
    fn check(&mut self, text: Option<&str>) -> Result<(), String> {
        let Some(text) = text else {
            return Err(format!(
                "has no {SWEEP_KEY} metadata, so memsweep did not write it for this sweep"
            ));
        };
        if self.same.iter().any(|s| s == text) {
            return Ok(());
        }
        let same = Spec::parse(text, "metadata").is_ok_and(|other| self.spec.same_rows(&other));
        if !same {
            return Err(format!(
                "was written by a different sweep than {} (its {SWEEP_KEY} metadata differs)",
                self.recorded.display()
            ));
        }
        self.same.push(text.to_string());
        Ok(())
    }
}

/// Refuses a directory `report` should not summarise, with one line
/// naming the file: any that `Inventory::scan` refuses (when
/// `DIR/sweep.toml` says what the sweep is), and an instances file without
/// its eras file, whose learning curves would be missing.
pub fn check_whole(dir: &Path) -> Result<(), String> {
    let recorded = dir.join("sweep.toml");
    if fs::symlink_metadata(&recorded).is_ok() {
        let spec = Spec::from_results(dir).map_err(|e| e.to_string())?;
        let inv = Inventory::scan_with_eras(&spec, dir).map_err(|e| e.to_string())?;
        if let Some(path) = inv.missing_eras.first() {
            return Err(no_eras(path, dir));
        }
        return Ok(());
    }
    let instances = list(&dir.join("instances")).map_err(|e| e.to_string())?;
    let eras = list(&dir.join("eras")).map_err(|e| e.to_string())?;
    match instances
        .iter()
        .find(|n| n.ends_with(".parquet") && !n.starts_with('.') && !eras.contains(*n))
    {
        Some(name) => Err(no_eras(&dir.join("instances").join(name), dir)),
        None => Ok(()),
    }
}

fn no_eras(path: &Path, dir: &Path) -> String {
    format!(
        "{}: has no eras file of the same name, so its instances have no learning curves; \
         rerun `memsweep run {} -o {}` to run them again",
        path.display(),
        dir.join("sweep.toml").display(),
        dir.display()
    )
}

/// The `memsweep status` report: completion overall and per shard, the
/// missing instances, and what to run next. `shards` overrides the shard
/// count read from the chunk names.
pub fn report(spec: &Spec, dir: &Path, inv: &Inventory, shards: Option<usize>) -> String {
    let n = spec.n_instances();
    let complete = inv.complete();
    let count = shards
        .or_else(|| inv.shard_counts.last().copied())
        .unwrap_or(1)
        .min(n.max(1))
        .min(MAX_SHARDS);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: sweep '{}', {n} instances ({} points x {} replicas)",
        dir.display(),
        spec.name,
        spec.n_points(),
        spec.replicas
    );
    let _ = writeln!(
        out,
        "complete: {complete} of {n} ({:.1}%), missing {}",
        100.0 * complete as f64 / n.max(1) as f64,
        n - complete
    );
    let mut unfinished = Vec::new();
    if count > 1 {
        let _ = writeln!(out, "{:>9}  {:>17}  {:>9}", "shard", "complete", "missing");
        for index in 0..count {
            let shard = Shard::new(index, count).expect("index below count");
            let missing = inv.missing(shard).count();
            let owned = shard.len(n);
            let _ = writeln!(
                out,
                "{:>9}  {:>17}  {missing:>9}",
                shard.to_string(),
                format!("{}/{owned}", owned - missing)
            );
            if missing > 0 {
                unfinished.push(index.to_string());
            }
        }
    }
    if complete < n {
        let _ = writeln!(
            out,
            "missing instances (k = point * {} + replica): {}",
            spec.replicas,
            ranges(inv.missing(Shard::ALL), 20)
        );
        let script = dir.join("slurm").join("run.sbatch");
        if !unfinished.is_empty() && script.is_file() {
            let _ = writeln!(
                out,
                "to finish them: sbatch --array={} {}",
                unfinished.join(","),
                script.display()
            );
        } else {
            let _ = writeln!(out, "to finish them: rerun the same `memsweep run` command");
        }
    }
    if !inv.missing_eras.is_empty() {
        let names: Vec<String> = inv
            .missing_eras
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        let _ = writeln!(
            out,
            "{} instances files have no eras file of the same name ({}{}): their instances \
             count as missing, and the next run of their shard runs them again",
            inv.missing_eras.len(),
            names.join(", "),
            if inv.missing_eras.len() > 3 {
                ", ..."
            } else {
                ""
            }
        );
    }
    if !inv.orphan_eras.is_empty() || !inv.partials.is_empty() {
        let _ = writeln!(
            out,
            "leftovers of killed runs, removed by the next run of their shard: \
             {} eras files without their instances file, {} unfinished temporary files",
            inv.orphan_eras.len(),
            inv.partials.len()
        );
    }
    out
}

/// `0-3, 7, 9-12`, at most `limit` ranges, then how many more; reads
/// `sorted` once and keeps only those ranges.
fn ranges(sorted: impl IntoIterator<Item = usize>, limit: usize) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut more = 0;
    let mut last: Option<usize> = None;
    for k in sorted {
        let joins = last.is_some_and(|l| l + 1 == k);
        last = Some(k);
        if joins {
            if more == 0 {
                if let Some((_, end)) = spans.last_mut() {
                    *end = k;
                }
            }
        } else if spans.len() < limit {
            spans.push((k, k));
        } else {
            more += 1;
        }
    }
    let mut parts: Vec<String> = spans
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    if more > 0 {
        parts.push(format!("and {more} more ranges"));
    }
    parts.join(", ")
}

/// File names in `dir`, sorted; none if it does not exist.
fn list(dir: &Path) -> io::Result<BTreeSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(context(e, "cannot list", dir)),
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| context(e, "cannot list", dir))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// `path` opened for reading, once its metadata shows it is a file of
/// this sweep (`InvalidData` otherwise, naming it).
fn open_checked(
    path: &Path,
    sweeps: &mut SweepCheck,
) -> io::Result<ParquetRecordBatchReaderBuilder<File>> {
    let bad = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}; move it out of the directory", path.display()),
        )
    };
    // A fifo or a device would block or never end.
    let meta = fs::metadata(path).map_err(|e| context(e, "cannot read", path))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let file = File::open(path).map_err(|e| context(e, "cannot read", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
    let sweep = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == SWEEP_KEY))
        .and_then(|e| e.value.as_deref());
    sweeps.check(sweep).map_err(bad)?;
    Ok(builder)
}

/// The instances an eras file holds reads of, sorted. `run` writes the
/// rows of one instance together, so only changes are kept while reading.
fn eras_instances(path: &Path, spec: &Spec, sweeps: &mut SweepCheck) -> io::Result<Vec<usize>> {
    let mut ks = Vec::new();
    for_each_instance(path, spec, false, sweeps, |k, _| {
        if ks.last() != Some(&k) {
            ks.push(k);
        }
    })?;
    // An instance whose reads are split over two runs of rows appears
    // twice, and so does not match.
    ks.sort_unstable();
    Ok(ks)
}

/// The instance index `k` of every row of an instances or eras file, with
/// its `recalled` if asked for (instances files only). A file of another
/// sweep, or with a row outside the grid, is an `InvalidData` error.
fn read_instances(
    path: &Path,
    spec: &Spec,
    with_recalled: bool,
    sweeps: &mut SweepCheck,
) -> io::Result<Vec<(usize, Option<usize>)>> {
    let mut rows = Vec::new();
    for_each_instance(path, spec, with_recalled, sweeps, |k, recalled| {
        rows.push((k, recalled))
    })?;
    Ok(rows)
}

/// `read_instances`, handing each row to `f` instead of keeping it.
fn for_each_instance(
    path: &Path,
    spec: &Spec,
    with_recalled: bool,
    sweeps: &mut SweepCheck,
    mut f: impl FnMut(usize, Option<usize>),
) -> io::Result<()> {
    let bad = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}; move it out of the directory", path.display()),
        )
    };
    let builder = open_checked(path, sweeps)?;
    let mut columns = vec!["point", "replica"];
    if with_recalled {
        columns.push("recalled");
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
        let column = |name: &str| {
            int_column(&batch, name).ok_or_else(|| bad(format!("no int64 column `{name}`")))
        };
        let point = column("point")?;
        let replica = column("replica")?;
        let recalled = if with_recalled {
            Some(column("recalled")?)
        } else {
            None
        };
        for i in 0..batch.num_rows() {
            let (p, r) = (point.value(i), replica.value(i));
            if p < 0 || p as usize >= spec.n_points() || r < 0 || r as usize >= spec.replicas {
                return Err(bad(format!(
                    "holds point {p}, replica {r}, which is not an instance of this sweep \
                     ({} points x {} replicas)",
                    spec.n_points(),
                    spec.replicas
                )));
            }
            let k = p as usize * spec.replicas + r as usize;
            f(k, recalled.map(|c| c.value(i).max(0) as usize));
        }
    }
    Ok(())
}

fn int_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Option<&'a arrow::array::PrimitiveArray<Int64Type>> {
    let column = batch.column_by_name(name)?;
    (column.null_count() == 0)
        .then(|| column.as_primitive_opt::<Int64Type>())
        .flatten()
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(context(e, "cannot remove", path)),
        _ => Ok(()),
    }
}

/// `e` with the action and the path in front, kind kept.
pub fn context(e: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{action} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_round_trip_and_sort_by_first_instance() {
        let shard = Shard::new(1, 3).unwrap();
        assert_eq!(chunk_name(42, shard), "part-000000042-s1of3.parquet");
        assert_eq!(chunk_name(7, Shard::ALL), "part-000000007.parquet");
        assert_eq!(
            parse_chunk_name(&chunk_name(42, shard)),
            Some((42, Some(3)))
        );
        assert_eq!(
            parse_chunk_name(&chunk_name(7, Shard::ALL)),
            Some((7, None))
        );
        assert_eq!(parse_chunk_name("notes.parquet"), None);
        assert!(chunk_name(99, Shard::ALL) < chunk_name(100, Shard::ALL));
        assert_eq!(
            partial_target(".part-000000042-s1of3.parquet.partial"),
            Some("part-000000042-s1of3.parquet")
        );
        assert_eq!(partial_target("part-000000042.parquet"), None);
    }

    #[test]
    fn ranges_are_compact() {
        assert_eq!(ranges([0, 1, 2, 3, 7, 9, 10], 10), "0-3, 7, 9-10");
        assert_eq!(ranges([1, 3, 5, 7], 2), "1, 3, and 2 more ranges");
        assert_eq!(ranges([1, 2, 4, 5, 7, 8, 9], 1), "1-2, and 2 more ranges");
        assert_eq!(ranges([], 2), "");
    }
}
