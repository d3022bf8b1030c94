//! The headers of the pipeline's messages ([`crate::wire`]).

use serde::{Deserialize, Serialize};

/// A rectangle in a frame, pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// Camera → anonymiser: one raw frame (JPEG body).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Frame {
    /// The camera's name.
    pub camera: String,
    /// Counts from 0 per camera run.
    pub seq: u64,
}

/// Anonymiser → camera: the anonymised frame (JPEG body), what was
/// blurred, and what the cloud made of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Anonymised {
    /// The frame's sequence number.
    pub seq: u64,
    /// The anonymiser instance that served it (`$GROVE_INSTANCE`, or the
    /// host name) and its address.
    pub instance: String,
    /// Faces found and pixelated.
    pub faces: Vec<Rect>,
    /// Time spent finding and blurring them, ms.
    pub anonymise_ms: f64,
    /// The cloud's answer, when it came.
    pub detect: Option<Detected>,
    /// Why there is none.
    pub detect_error: Option<String>,
}

/// Anonymiser → detector: an anonymised frame (JPEG body).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToDetect {
    /// The frame's sequence number.
    pub seq: u64,
    /// The anonymiser instance sending it.
    pub from: String,
}

/// Detector → anonymiser: what it found in one frame (empty body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detected {
    /// The frame's sequence number.
    pub seq: u64,
    /// The detector instance.
    pub instance: String,
    /// People (upper bodies) found.
    pub persons: Vec<Rect>,
    /// Faces still recognisable (after anonymisation: none).
    pub faces: Vec<Rect>,
    /// Time spent, ms.
    pub detect_ms: f64,
}

/// Who this process is: the worker's `GROVE_INSTANCE` and
/// `GROVE_ADDRESS`, or the host name outside grove.
pub fn instance_identity() -> String {
    let name = std::env::var("GROVE_INSTANCE").ok().filter(|s| !s.is_empty());
    let address = std::env::var("GROVE_ADDRESS").ok().filter(|s| !s.is_empty());
    match (name, address) {
        (Some(n), Some(a)) => format!("{n}@{a}"),
        (Some(n), None) => n,
        (None, _) => std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into()),
    }
}
