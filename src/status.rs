//! What a results directory holds: which instances of its sweep are
//! complete, and what a killed run left behind. `run` resumes from this
//! inventory and `memsweep status` prints it.
//!
//! The files are the only record. An instance is complete when a finished
//! (renamed into place) `instances` file holds its row; `run` writes each
//! chunk's `eras` file before its `instances` file under the same name, so a
//! complete instance always has its eras. A killed run can leave an `eras`
//! file without its `instances` twin (an orphan) and unfinished temporary
//! files; the next run of the shard that owns them removes them before it
//! writes anything. Not here: running instances or choosing what to run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::shard::Shard;
use crate::sweep::Spec;

/// The two tables, each a directory of chunk files.
pub const TABLES: [&str; 2] = ["instances", "eras"];

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
    /// Per instance `k = point * replicas + replica`: `Some(recalled)` when a
    /// finished instances file holds its row.
    pub recalled: Vec<Option<usize>>,
    /// Instances held by more than one instances file (only a copy by hand
    /// makes these).
    pub duplicates: Vec<usize>,
    /// Eras files without an instances file of the same name.
    pub orphan_eras: Vec<PathBuf>,
    /// Instances files without an eras file of the same name (only a
    /// deletion by hand makes these).
    pub missing_eras: Vec<PathBuf>,
    /// Temporary files of unfinished writes.
    pub partials: Vec<PathBuf>,
    /// Shard counts named by chunk files (`-sIofN`), 1 for untagged ones.
    pub shard_counts: BTreeSet<usize>,
}

impl Inventory {
    /// Reads the `(point, replica, recalled)` of every finished instances
    /// file under `dir` and lists the leftovers. A row that is not an
    /// instance of `spec` is an error naming the file.
    pub fn scan(spec: &Spec, dir: &Path) -> io::Result<Inventory> {
        Inventory::scan_files(spec, dir, None)
    }

    /// `scan`, for what `shard` needs: files that another shard of the same
    /// count wrote (`-sJofN` with the same `N`) hold none of its instances
    /// and are not read, so the tasks of a large array job starting
    /// together do not each read every file.
    pub fn scan_for(spec: &Spec, dir: &Path, shard: Shard) -> io::Result<Inventory> {
        Inventory::scan_files(spec, dir, Some(shard))
    }

    fn scan_files(spec: &Spec, dir: &Path, only: Option<Shard>) -> io::Result<Inventory> {
        let mut inv = Inventory {
            recalled: vec![None; spec.n_instances()],
            duplicates: Vec::new(),
            orphan_eras: Vec::new(),
            missing_eras: Vec::new(),
            partials: Vec::new(),
            shard_counts: BTreeSet::new(),
        };
        let instances = list(&dir.join("instances"))?;
        let eras = list(&dir.join("eras"))?;
        for name in &instances {
            let path = dir.join("instances").join(name);
            if partial_target(name).is_some() {
                inv.partials.push(path);
                continue;
            }
            if !name.ends_with(".parquet") {
                continue;
            }
            if let Some((first, count)) = parse_chunk_name(name) {
                let count = count.unwrap_or(1);
                inv.shard_counts.insert(count);
                if only.is_some_and(|s| s.count() == count && !s.owns(first)) {
                    continue;
                }
            }
            if !eras.contains(name) {
                inv.missing_eras.push(path.clone());
            }
            for (k, recalled) in read_instances(&path, spec, true)? {
                match inv.recalled[k] {
                    Some(_) => inv.duplicates.push(k),
                    None => inv.recalled[k] = recalled,
                }
            }
        }
        for name in &eras {
            let path = dir.join("eras").join(name);
            if partial_target(name).is_some() {
                inv.partials.push(path);
            } else if name.ends_with(".parquet") && !instances.contains(name) {
                inv.orphan_eras.push(path);
            }
        }
        Ok(inv)
    }

    /// Instances with a row.
    pub fn complete(&self) -> usize {
        self.recalled.iter().filter(|r| r.is_some()).count()
    }

    /// Instances of `shard` without a row, ascending.
    pub fn missing(&self, shard: Shard) -> impl Iterator<Item = usize> + '_ {
        shard
            .instances(self.recalled.len())
            .filter(|&k| self.recalled[k].is_none())
    }

    /// Removes the leftovers that `shard` is responsible for: orphan eras
    /// files holding any of its instances and unfinished temporary files
    /// of its chunks. Leftovers of other shards stay, since those may be
    /// running right now. Returns how many files were removed.
    pub fn remove_leftovers(&self, spec: &Spec, shard: Shard) -> io::Result<usize> {
        let mut removed = 0;
        for path in &self.orphan_eras {
            let by_name = file_name(path)
                .and_then(parse_chunk_name)
                .is_some_and(|(first, _)| shard.owns(first));
            if by_name
                || read_instances(path, spec, false)?
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

/// The `memsweep status` report: completion overall and per shard, the
/// missing instances, and what to run next. `shards` overrides the shard
/// count read from the chunk names.
pub fn report(spec: &Spec, dir: &Path, inv: &Inventory, shards: Option<usize>) -> String {
    let n = spec.n_instances();
    let complete = inv.complete();
    let count = shards
        .or_else(|| inv.shard_counts.last().copied())
        .unwrap_or(1);
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
        let missing: Vec<usize> = inv.missing(Shard::ALL).collect();
        let _ = writeln!(
            out,
            "missing instances (k = point * {} + replica): {}",
            spec.replicas,
            ranges(&missing, 20)
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
    if !inv.duplicates.is_empty() {
        let _ = writeln!(
            out,
            "warning: {} instances have rows in more than one file: {}",
            inv.duplicates.len(),
            ranges(&inv.duplicates, 10)
        );
    }
    if !inv.missing_eras.is_empty() {
        let _ = writeln!(
            out,
            "warning: {} instances files have no eras file of the same name",
            inv.missing_eras.len()
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

/// `0-3, 7, 9-12`, at most `limit` ranges, then how many more.
fn ranges(sorted: &[usize], limit: usize) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for &k in sorted {
        match spans.last_mut() {
            Some((_, end)) if *end + 1 == k => *end = k,
            _ => spans.push((k, k)),
        }
    }
    let mut parts: Vec<String> = spans
        .iter()
        .take(limit)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    if spans.len() > limit {
        parts.push(format!("and {} more ranges", spans.len() - limit));
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

/// The instance index `k` of every row of an instances or eras file, with
/// its `recalled` if asked for (instances files only).
fn read_instances(
    path: &Path,
    spec: &Spec,
    with_recalled: bool,
) -> io::Result<Vec<(usize, Option<usize>)>> {
    let bad = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}", path.display()),
        )
    };
    let file = File::open(path).map_err(|e| context(e, "cannot read", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
    let mut columns = vec!["point", "replica"];
    if with_recalled {
        columns.push("recalled");
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut rows = Vec::new();
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
            rows.push((k, recalled.map(|c| c.value(i).max(0) as usize)));
        }
    }
    Ok(rows)
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
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10], 10), "0-3, 7, 9-10");
        assert_eq!(ranges(&[1, 3, 5, 7], 2), "1, 3, and 2 more ranges");
        assert_eq!(ranges(&[], 2), "");
    }
}
