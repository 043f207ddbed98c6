//! memsweep: trains thousands of simulated memristive networks with the
//! learning-from-mistakes rule and measures their capacity.
//!
//! The model (`model`), the protocol (`protocol`), the sweep (`sweep`), the
//! executors (`backend`) and the results (`results`) are separate modules;
//! `run` ties them together for the command line.

pub mod analyze;
pub mod backend;
pub mod bench;
pub mod instance;
pub mod lanes;
pub mod lock;
pub mod model;
pub mod params;
pub mod protocol;
pub mod real;
pub mod report;
pub mod results;
pub mod rng;
pub mod run;
pub mod shard;
pub mod slurm;
pub mod spice;
pub mod status;
pub mod sweep;
pub mod wiring;
