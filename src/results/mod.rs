//! Results: the row of each trained instance, the Arrow schema of the
//! `instances` and `eras` tables, and the Parquet writer.

pub mod schema;
pub mod writer;

pub use schema::{eras_batch, instances_batch, InstanceRecord};
pub use writer::write_parquet;
