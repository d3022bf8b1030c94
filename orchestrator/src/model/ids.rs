//! Identifier newtypes, so that a worker id cannot be passed where a
//! cluster id is expected. Ids are opaque numbers allocated by the store;
//! names (DNS labels) are for people and constraints, never the join key.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;

            fn from_str(text: &str) -> Result<Self, ParseIntError> {
                text.parse().map($name)
            }
        }
    };
}

id!(
    /// One application.
    AppId
);
id!(
    /// One service of an application.
    ServiceId
);
id!(
    /// One running (or wanted) copy of a service.
    InstanceId
);
id!(
    /// One cluster orchestrator.
    ClusterId
);
id!(
    /// One worker node.
    WorkerId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_and_serde_round_trip() {
        let id = WorkerId(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!("42".parse::<WorkerId>(), Ok(id));
        assert!("x".parse::<ClusterId>().is_err());
        assert_eq!(serde_json::to_string(&id).expect("json"), "42");
        assert_eq!(serde_json::from_str::<WorkerId>("42").expect("json"), id);
    }
}
