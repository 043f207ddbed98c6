//! The training protocol and what it measures (MODEL.md sections 5-8): the
//! task, the boundary of each phase, the era loop with pruning, and the
//! measures computed from an instance's state; and the abstract Chialvo–Bak
//! baseline (section 11), trained on the same instances.

pub mod abstract_model;
pub mod measures;
pub mod phase;
pub mod task;
pub mod training;
