//! The records the tiers keep about what runs where: identifiers
//! ([`ids`]), resource amounts ([`capacity`]) and the instance life cycle
//! ([`instance`]). Pure data and arithmetic: no I/O, no clock reads (time
//! is passed in as milliseconds).

pub mod capacity;
pub mod ids;
pub mod instance;

pub use capacity::Capacity;
pub use ids::{AppId, ClusterId, InstanceId, ServiceId, WorkerId};
pub use instance::{InstanceState, InstanceStatus, TransitionError};
