//! Runs small sweeps end to end and reads the Parquet files back: schema,
//! row counts, metadata, and determinism across threads and batch sizes.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use memsweep::backend::cpu::{Cpu, Precision};
use memsweep::run::{self, RunOptions};
use memsweep::shard::Shard;
use memsweep::sweep::Spec;

const SWEEP: &str = r#"
name = "tiny"
seed = 3
replicas = 9
[network]
hidden = [3]
[training]
max_eras = 6
[[axes]]
"device.sigma_r0" = [0.0, 0.3]
"#;

fn run_sweep(text: &str, dir: &Path, threads: usize, batch_size: usize) {
    let spec = Spec::parse(text, "tiny.toml").unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let opts = RunOptions {
        out_dir: dir.to_path_buf(),
        batch_size,
        progress: false,
        shard: Shard::ALL,
    };
    let cpu = Cpu {
        precision: Precision::F64,
        solver: memsweep::model::circuit::SolverChoice::Auto,
    };
    pool.install(|| run::run(&spec, &cpu, &opts)).unwrap();
}

/// Every file of a table, in name order, concatenated.
fn read_table(dir: &Path, table: &str) -> (RecordBatch, Vec<(String, String)>) {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let mut batches = Vec::new();
    let mut metadata = Vec::new();
    for p in &paths {
        assert_eq!(
            p.extension().unwrap(),
            "parquet",
            "only complete files: {}",
            p.display()
        );
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap()).unwrap();
        if let Some(kv) = builder.metadata().file_metadata().key_value_metadata() {
            metadata = kv
                .iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect();
        }
        for b in builder.build().unwrap() {
            batches.push(b.unwrap());
        }
    }
    let schema = batches[0].schema();
    (concat_batches(&schema, &batches).unwrap(), metadata)
}

#[test]
fn results_have_the_documented_schema_rows_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    run_sweep(SWEEP, dir.path(), 2, 5);
    let (instances, metadata) = read_table(dir.path(), "instances");
    assert_eq!(instances.num_rows(), 18);
    let names: Vec<String> = instances
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for col in [
        "point",
        "replica",
        "seed",
        "topology",
        "n_in",
        "hidden",
        "n_out",
        "depth",
        "n_nodes",
        "n_edges",
        "density",
        "skip",
        "random_polarity",
        "ron",
        "roff",
        "vt",
        "alpha",
        "beta",
        "sigma_r0",
        "sigma_d2d",
        "sigma_c2c",
        "task",
        "n_patterns",
        "max_eras",
        "v_read",
        "v_punish",
        "v_norm",
        "tau",
        "n_sub",
        "p_prune",
        "f_prune",
        "recalled",
        "learned_all",
        "converged_era",
        "eras_run",
        "energy_write",
        "pruned_edges",
        "contrast",
        "cycle_space_dim",
        "controllability_initial",
        "controllability_final",
        "backend",
    ] {
        assert!(names.iter().any(|n| n == col), "missing column {col}");
    }
    let keys: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"memsweep.sweep")
            && keys.contains(&"memsweep.version")
            && keys.contains(&"memsweep.backend")
    );
    assert!(metadata
        .iter()
        .any(|(k, v)| k == "memsweep.sweep" && v.contains("replicas = 9")));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sweep.toml")).unwrap(),
        Spec::parse(SWEEP, "tiny.toml").unwrap().source,
        "sweep.toml holds the sweep as parsed"
    );

    // eras: one row per (instance, era, pattern) read in training
    let (eras, _) = read_table(dir.path(), "eras");
    let eras_run = instances
        .column_by_name("eras_run")
        .unwrap()
        .as_primitive::<Int64Type>();
    let n_patterns = instances
        .column_by_name("n_patterns")
        .unwrap()
        .as_primitive::<Int64Type>();
    let expected: i64 = (0..18)
        .map(|i| eras_run.value(i) * n_patterns.value(i))
        .sum();
    assert_eq!(eras.num_rows() as i64, expected);
    // 2-3-2: 12 edges; cycle space (12 + 4 wires) - (7 + ground) + 1 component = 9
    let n_edges = instances
        .column_by_name("n_edges")
        .unwrap()
        .as_primitive::<Int64Type>();
    let cycles = instances
        .column_by_name("cycle_space_dim")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert!((0..18).all(|i| n_edges.value(i) == 12 && cycles.value(i) == 9));
    let converged = instances.column_by_name("converged_era").unwrap();
    let recalled = instances
        .column_by_name("recalled")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert!(recalled.values().iter().all(|&r| (0..=2).contains(&r)));
    assert!(converged.null_count() < 18, "some instances converge");
}

#[test]
fn rows_are_identical_for_any_thread_count_and_batch_size() {
    let runs = [(1, 1024), (2, 1024), (2, 4), (1, 7)];
    let mut tables = Vec::new();
    for (threads, batch) in runs {
        let dir = tempfile::tempdir().unwrap();
        run_sweep(SWEEP, dir.path(), threads, batch);
        tables.push((
            read_table(dir.path(), "instances").0,
            read_table(dir.path(), "eras").0,
        ));
    }
    for (i, t) in tables.iter().enumerate().skip(1) {
        assert_eq!(t.0, tables[0].0, "instances differ for run {:?}", runs[i]);
        assert_eq!(t.1, tables[0].1, "eras differ for run {:?}", runs[i]);
    }
}

#[test]
fn a_directory_with_results_of_another_sweep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_sweep(SWEEP, dir.path(), 1, 100);
    let other = Spec::parse(&SWEEP.replace("seed = 3", "seed = 4"), "other.toml").unwrap();
    let err = run::prepare_out_dir(&other, dir.path()).unwrap_err();
    assert!(err.contains("different sweep than other.toml"), "{err}");
    // The same sweep, spelled differently, resumes.
    let respelled = Spec::parse(&format!("# same grid\n{SWEEP}"), "again.toml").unwrap();
    assert_eq!(run::prepare_out_dir(&respelled, dir.path()), Ok(()));
}

#[test]
fn measures_switched_off_leave_their_columns_null() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{SWEEP}[measures]\ncontrollability = false\ncycle_space = false\n");
    run_sweep(&text, dir.path(), 1, 18);
    let (instances, _) = read_table(dir.path(), "instances");
    for name in [
        "cycle_space_dim",
        "controllability_initial",
        "controllability_final",
    ] {
        let column = instances.column_by_name(name).unwrap();
        assert_eq!(column.null_count(), 18, "{name}");
    }
    let recalled = instances.column_by_name("recalled").unwrap();
    assert_eq!(recalled.null_count(), 0);
}
