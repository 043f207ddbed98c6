//! The training protocol and what it measures (MODEL.md sections 5-8): the
//! task, the boundary of each phase, the era loop with pruning, and the
//! measures computed from an instance's state.

pub mod measures;
pub mod phase;
pub mod task;
pub mod training;
