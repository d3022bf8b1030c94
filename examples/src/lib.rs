//! grove's example workload: cameras at the edge stream frames to the
//! nearest anonymiser (`closest.anonymise`), which pixelates every face
//! before the frame leaves the site and forwards it to the nearest
//! detector (`closest.detect`) in the cloud. The binaries (`camera`,
//! `anonymise`, `detect`) are thin: the logic lives here, free of I/O
//! where it can be (faces, cascades, frames, the wire format).
//!
//! Also the one-command demo (`src/bin/demo.rs`), which runs the whole
//! platform with this pipeline on one machine.

pub mod detector;
pub mod faces;
pub mod frames;
pub mod haar;
pub mod link;
pub mod messages;
pub mod photo;
pub mod resolve;
pub mod server;
pub mod stats;
pub mod wire;
