//! The userspace WAN emulator (`wanem`) and its control client.
//!
//! Kernel `netem` is not available on grove's build machines, so the router
//! namespace of a [`crate::Testbed`] forwards every packet through a TUN
//! (`wan0`) served by the `wanem` binary. wanem holds each packet for the
//! one-way delay configured for its (source, destination) pair, drops a
//! configured share of them, or all of them while the pair is cut, and
//! writes the rest back into the TUN, from where the kernel routes them to
//! the destination's veth.
//!
//! - [`protocol`]: the line protocol on wanem's control socket.
//! - [`policy`]: per-pair delay/loss/cut rules and the verdict per packet.
//! - [`queue`]: the deadline queue that keeps per-pair FIFO order.
//! - [`packet`]: reading addresses from IP headers.
//! - [`emulator`]: the threads that tie TUN, queue and control socket together.
//! - [`control`]: [`WanControl`], the typed client tests use.

pub mod control;
pub mod emulator;
pub mod packet;
pub mod policy;
pub mod protocol;
pub mod queue;

pub use control::{WanControl, WanStats};
