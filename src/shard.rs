//! Which instances one process runs. Shard `index` of `count` owns the
//! instances whose global index `k = point * replicas + replica` has
//! `k % count == index`: round robin, so every shard gets a slice of every
//! grid point and shards finish together even when later points are larger
//! networks.
//!
//! Also reads the shard and the thread count from a Slurm job's environment
//! (`SLURM_ARRAY_TASK_*`, `SLURM_CPUS_PER_TASK`). Every bad value is one
//! error line naming the flag or variable. Not here: running or writing.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole sweep: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; refuses `count == 0` and `index >= count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1, got 0".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (shards are numbered 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn index(self) -> usize {
        self.index
    }

    pub fn count(self) -> usize {
        self.count
    }

    /// The shard of `count` that owns instance `k`.
    pub fn owner(k: usize, count: usize) -> Shard {
        Shard {
            index: k % count,
            count,
        }
    }

    /// Whether this shard runs instance `k`.
    pub fn owns(self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// The global indices this shard owns among `n_instances`, ascending.
    pub fn instances(self, n_instances: usize) -> impl Iterator<Item = usize> {
        (self.index..n_instances).step_by(self.count)
    }

    /// How many of `n_instances` this shard owns.
    pub fn len(self, n_instances: usize) -> usize {
        n_instances.saturating_sub(self.index).div_ceil(self.count)
    }

    /// `s{index}of{count}` for file names; `None` for the whole sweep.
    pub fn tag(self) -> Option<String> {
        (self.count > 1).then(|| format!("s{}of{}", self.index, self.count))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `I/N`, as `--shard` takes it.
impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (shard I of N, e.g. 0/4), got \"{text}\""))?;
        let number = |s: &str, what: &str| {
            s.parse::<usize>().map_err(|_| {
                format!("expected I/N with whole numbers, got \"{text}\" ({what} \"{s}\")")
            })
        };
        Shard::new(number(i, "I")?, number(n, "N")?)
    }
}

/// The shard of a Slurm array task, from `SLURM_ARRAY_TASK_ID`,
/// `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN` (default 0) and
/// `SLURM_ARRAY_TASK_STEP` (default 1): shard `(ID - MIN) / STEP` of
/// `COUNT`. `None` outside an array job (no `SLURM_ARRAY_TASK_ID`). `var`
/// looks a variable up (`env_var` for the process environment).
pub fn shard_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
    let Some(id) = var("SLURM_ARRAY_TASK_ID") else {
        return Ok(None);
    };
    let number = |name: &str, value: &str| {
        value
            .parse::<usize>()
            .map_err(|_| format!("{name}: expected a whole number, got \"{value}\""))
    };
    let id = number("SLURM_ARRAY_TASK_ID", &id)?;
    let count = var("SLURM_ARRAY_TASK_COUNT").ok_or(
        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard I/N or --no-slurm",
    )?;
    let count = number("SLURM_ARRAY_TASK_COUNT", &count)?;
    let min = match var("SLURM_ARRAY_TASK_MIN") {
        Some(v) => number("SLURM_ARRAY_TASK_MIN", &v)?,
        None => 0,
    };
    let step = match var("SLURM_ARRAY_TASK_STEP") {
        Some(v) => number("SLURM_ARRAY_TASK_STEP", &v)?,
        None => 1,
    };
    if step == 0 {
        return Err("SLURM_ARRAY_TASK_STEP: must be at least 1, got 0".into());
    }
    if id < min || (id - min) % step != 0 {
        return Err(format!(
            "SLURM_ARRAY_TASK_ID={id} is not MIN + a multiple of STEP (MIN={min}, STEP={step}); \
             submit the array as --array=0-{} or pass --shard I/N",
            count.saturating_sub(1)
        ));
    }
    Shard::new((id - min) / step, count).map(Some).map_err(|e| {
        format!(
            "SLURM_ARRAY_TASK_ID={id} (MIN={min}, STEP={step}) with SLURM_ARRAY_TASK_COUNT={count}: {e}; \
             pass --shard I/N"
        )
    })
}

/// Worker threads from `SLURM_CPUS_PER_TASK`, if set.
pub fn threads_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<usize>, String> {
    let Some(v) = var("SLURM_CPUS_PER_TASK") else {
        return Ok(None);
    };
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(format!(
            "SLURM_CPUS_PER_TASK: expected a whole number of at least 1, got \"{v}\""
        )),
    }
}

/// Looks a variable up in the process environment; a value that is not
/// UTF-8 comes back lossily converted, so it is reported rather than
/// skipped.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_instance_belongs_to_exactly_one_shard() {
        for count in 1..7 {
            for n in [0, 1, 5, 18, 37] {
                let mut seen = vec![0; n];
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    let owned: Vec<usize> = shard.instances(n).collect();
                    assert_eq!(owned.len(), shard.len(n));
                    for k in owned {
                        assert!(shard.owns(k));
                        assert_eq!(Shard::owner(k, count), shard);
                        seen[k] += 1;
                    }
                }
                assert!(seen.iter().all(|&s| s == 1), "{count} shards of {n}");
            }
        }
    }

    #[test]
    fn shard_flag_parses_i_of_n() {
        assert_eq!("2/5".parse::<Shard>(), Shard::new(2, 5));
        assert_eq!("0/1".parse::<Shard>(), Ok(Shard::ALL));
        assert_eq!(Shard::new(2, 5).unwrap().to_string(), "2/5");
        assert_eq!(Shard::new(2, 5).unwrap().tag().as_deref(), Some("s2of5"));
        assert_eq!(Shard::ALL.tag(), None);
    }

    #[test]
    fn bad_shard_flags_are_one_clear_error_each() {
        for (text, says) in [
            ("3/3", "not below the shard count 3"),
            ("7/3", "not below"),
            ("0/0", "at least 1"),
            ("1", "expected I/N"),
            ("", "expected I/N"),
            ("a/3", "whole numbers"),
            ("1/b", "whole numbers"),
            ("-1/3", "whole numbers"),
            ("1/3/4", "whole numbers"),
            (" 1/3", "whole numbers"),
        ] {
            let err = text.parse::<Shard>().unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{text:?}: one line");
        }
    }

    #[test]
    fn slurm_array_variables_give_the_shard() {
        let vars = [
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        assert_eq!(
            shard_from_env(env(&vars)),
            Ok(Some(Shard::new(2, 3).unwrap()))
        );
        // --array=10-30:10 is tasks 10, 20, 30: task 20 is shard 1 of 3.
        let vars = [
            ("SLURM_ARRAY_TASK_ID", "20"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "10"),
        ];
        assert_eq!(
            shard_from_env(env(&vars)),
            Ok(Some(Shard::new(1, 3).unwrap()))
        );
        assert_eq!(shard_from_env(env(&[])), Ok(None));
        assert_eq!(
            shard_from_env(env(&[("SLURM_ARRAY_TASK_COUNT", "3")])),
            Ok(None)
        );
    }

    #[test]
    fn bad_slurm_array_variables_are_one_clear_error_each() {
        for (vars, says) in [
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "3"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ][..],
                "not below the shard count 3",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "0"),
                ][..],
                "at least 1",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "x1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ][..],
                "SLURM_ARRAY_TASK_ID: expected a whole number, got \"x1\"",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "")][..],
                "SLURM_ARRAY_TASK_COUNT: expected a whole number",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "-1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ][..],
                "SLURM_ARRAY_TASK_ID: expected a whole number",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "1")][..],
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_MIN", "two"),
                ][..],
                "SLURM_ARRAY_TASK_MIN: expected a whole number",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_STEP", "0"),
                ][..],
                "SLURM_ARRAY_TASK_STEP: must be at least 1",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_MIN", "5"),
                ][..],
                "not MIN + a multiple of STEP",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "15"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_STEP", "10"),
                ][..],
                "not MIN + a multiple of STEP",
            ),
        ] {
            let err = shard_from_env(env(vars)).unwrap_err();
            assert!(err.contains(says), "{vars:?}: {err}");
            assert!(!err.contains('\n'), "{vars:?}: one line");
        }
    }

    #[test]
    fn threads_come_from_slurm_cpus_per_task() {
        assert_eq!(
            threads_from_env(env(&[("SLURM_CPUS_PER_TASK", "4")])),
            Ok(Some(4))
        );
        assert_eq!(threads_from_env(env(&[])), Ok(None));
        for bad in ["0", "", "four", "2.5", "-2"] {
            let err = threads_from_env(env(&[("SLURM_CPUS_PER_TASK", bad)])).unwrap_err();
            assert!(err.starts_with("SLURM_CPUS_PER_TASK: "), "{bad:?}: {err}");
        }
    }
}
