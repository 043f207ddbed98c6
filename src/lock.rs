//! One writer per shard of a results directory: `run` holds an exclusive
//! lock on `DIR/.lock` (`DIR/.lock-s1of3` for shard 1 of 3) while it
//! scans, repairs and writes, so a second `run` of the same shard is
//! refused with one line naming the first (its pid and host, which the
//! lock file holds). Different shards lock different files and run side
//! by side.
//!
//! The lock is the operating system's (`flock`), released when the
//! process ends however it ends, so a killed run leaves no lock behind,
//! only the file, which the next run takes over. Lock files are never
//! removed: removing one while another process opens it would let two
//! runs lock two different files of the same name. Where the file system
//! has no locks, a lock file naming a live process on this host still
//! refuses the second run. Not here: what a run writes (`run`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::shard::Shard;

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock file of `shard` in `dir`.
pub fn lock_path(dir: &Path, shard: Shard) -> PathBuf {
    match shard.tag() {
        Some(tag) => dir.join(format!(".lock-{tag}")),
        None => dir.join(".lock"),
    }
}

/// Locks `dir` for `shard`. `Err` is one line: another live run holds it
/// (naming its pid and host), or the lock file cannot be written.
pub fn lock(dir: &Path, shard: Shard) -> Result<DirLock, String> {
    let path = lock_path(dir, shard);
    let fail = |e: io::Error| format!("cannot lock {}: {e}", path.display());
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(fail)?;
    let held = |holder: &str| {
        format!(
            "{} is being written by another memsweep run ({holder}) for shard {shard}; \
             wait for it to finish or stop it (the lock is {})",
            dir.display(),
            path.display()
        )
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(held(&holder(&mut file))),
        // No locks on this file system: fall back to the pid in the file.
        Err(TryLockError::Error(_)) => {
            let text = holder(&mut file);
            if let Some((pid, host)) = parse_holder(&text) {
                if host == hostname() && pid != std::process::id() && alive(pid) {
                    return Err(held(&text));
                }
            }
        }
    }
    let me = format!("pid {} on host {}\n", std::process::id(), hostname());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(me.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    Ok(DirLock { _file: file, path })
}

/// The holder a lock file names (`pid 123 on host node7`), as one line.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.take(256).read_to_string(&mut text);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "pid and host unknown".into()
    } else {
        line.chars().filter(|c| !c.is_control()).collect()
    }
}

fn parse_holder(text: &str) -> Option<(u32, String)> {
    let rest = text.strip_prefix("pid ")?;
    let (pid, host) = rest.split_once(" on host ")?;
    Some((pid.parse().ok()?, host.trim().to_string()))
}

/// This machine's name, as the lock file records it.
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` runs on this host (Linux's /proc; elsewhere
/// assumed alive, so the fallback refuses rather than races).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_shard_is_refused_and_other_shards_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Shard::ALL).unwrap();
        // flock locks belong to the open file, so a second open in the
        // same process conflicts just as another process would.
        let err = lock(dir.path(), Shard::ALL).unwrap_err();
        assert!(
            err.contains(&format!("pid {} on host ", std::process::id())),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let a = lock(dir.path(), Shard::new(0, 2).unwrap()).unwrap();
        let b = lock(dir.path(), Shard::new(1, 2).unwrap()).unwrap();
        drop((a, b));
        drop(first);
        lock(dir.path(), Shard::ALL).expect("released on drop");
    }

    #[test]
    fn holder_lines_parse() {
        assert_eq!(
            parse_holder("pid 42 on host node7\n"),
            Some((42, "node7".to_string()))
        );
        assert_eq!(parse_holder("garbage"), None);
    }
}
