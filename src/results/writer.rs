//! Writes one table to one Parquet file, atomically: the file appears under
//! its final name only once it is complete.

use std::fs::{self, File};
use std::io;
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
pub fn write_parquet(
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
) -> io::Result<()> {
    let tmp = path.with_extension("parquet.partial");
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
    let file = File::create(path)?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(io::Error::other)?;
    writer.write(batch).map_err(io::Error::other)?;
    let file = writer.into_inner().map_err(io::Error::other)?;
    file.sync_all()
}
