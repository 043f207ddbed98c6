//! A results directory read back as whole tables in a fixed row order, so
//! runs that split the work differently (shards, chunks, resumes) compare
//! equal exactly when they hold the same rows.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::datatypes::Schema;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every finished file of `table` under `dir`, concatenated and sorted by
/// (point, replica), then (era, pattern) for eras. File metadata is dropped.
pub fn read_sorted(dir: &Path, table: &str) -> RecordBatch {
    let mut batches = Vec::new();
    for entry in std::fs::read_dir(dir.join(table)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            batches.extend(reader.map(Result::unwrap));
        }
    }
    assert!(!batches.is_empty(), "no {table} files in {}", dir.display());
    let schema = Arc::new(Schema::new(batches[0].schema().fields().clone()));
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).unwrap())
        .collect();
    let all = concat_batches(&schema, &batches).unwrap();
    let keys: &[&str] = match table {
        "eras" => &["point", "replica", "era", "pattern"],
        _ => &["point", "replica"],
    };
    let columns: Vec<SortColumn> = keys
        .iter()
        .map(|k| SortColumn {
            values: all.column_by_name(k).unwrap().clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&columns, None).unwrap();
    take_record_batch(&all, &order).unwrap()
}
