//! The sweep: what to run, described by a TOML sweep file.
//!
//! `spec` reads and validates the file into a base `Params` and a list of
//! axes; its grid points are the product of the axes. `limits` bounds what
//! a sweep may ask of a machine (file size, grid, instance count, memory
//! per instance). `plan` describes a sweep for `memsweep plan` (points,
//! instance count, a bound on the work) and derives every instance's seed. Running the instances and writing results
//! belong to other modules.

pub mod fields;
pub mod limits;
pub mod plan;
pub mod spec;

pub use plan::{check_wiring, describe, instance_seed, work_bound, Work};
pub use spec::{set_field, validate, Axis, GridPoint, Spec, SpecError};
