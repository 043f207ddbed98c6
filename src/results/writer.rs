//! Writes one table to one Parquet file, atomically: the file appears under
//! its final name only once it is complete.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// Rows per row group: large enough for good compression and scans, small
/// enough that a reader can stream a big table.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Write `batch` to `path` (zstd, key-value `metadata` in the footer) via a
/// temporary file in the same directory, renamed into place when complete.
/// The temporary name is hidden (`.NAME.partial`), so readers of the
/// directory (pyarrow, DuckDB globs) never see an unfinished file.
pub fn write_parquet(
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let result = write_file(&tmp, batch, metadata).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_file(path: &Path, batch: &RecordBatch, metadata: &[(String, String)]) -> io::Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(io::Error::other)?,
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ))
        .build();
    // Encoded in memory, then written: a full disk or a removed directory
    // surfaces as the operating system's error, not a Parquet one.
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).map_err(io::Error::other)?;
    writer.write(batch).map_err(io::Error::other)?;
    let bytes = writer.into_inner().map_err(io::Error::other)?;
    let mut file = File::create(path)?;
    file.write_all(&bytes)?;
    file.sync_all()
}
