//! The physical model: network wiring, the device laws, the circuit
//! equations and the vectorised device step (MODEL.md sections 1-4).

pub mod circuit;
pub mod device;
pub mod nanowire;
pub mod network;
pub mod sliced;
pub mod step;
