//! The physical model: network wiring, the threshold memristor, and the
//! circuit equations (MODEL.md sections 1-3).

pub mod circuit;
pub mod device;
pub mod nanowire;
pub mod network;
