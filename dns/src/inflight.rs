//! Admission of forwarded queries: how many may wait for an upstream at
//! once, in total and per client. Pure counting; the forwarder holds it
//! behind a mutex and releases through a guard.
//!
//! Every waiting query counts, whether it asks the upstream itself or
//! waits on an identical query already in flight, so the total bounds the
//! tasks, buffers and sockets forwarding holds. The per-client table only
//! holds clients with a query waiting, so it is never larger than the
//! total.

use std::collections::HashMap;

use crate::client::ClientKey;

/// Why a query was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The total is reached.
    Full,
    /// This client's share is reached.
    ClientFull,
}

/// Counts of waiting forwarded queries.
#[derive(Debug)]
pub struct InFlight {
    total: usize,
    max_total: usize,
    max_per_client: u32,
    /// Keyed by source, so std's keyed hasher.
    per_client: HashMap<ClientKey, u32>,
}

impl InFlight {
    /// At most `max_total` at once, `max_per_client` of them per client.
    pub fn new(max_total: usize, max_per_client: usize) -> InFlight {
        InFlight {
            total: 0,
            max_total,
            // At least one, so that a refused client never leaves a zero count behind.
            max_per_client: u32::try_from(max_per_client).unwrap_or(u32::MAX).max(1),
            per_client: HashMap::new(),
        }
    }

    /// Admits one query of `client`, or says why not.
    pub fn admit(&mut self, client: ClientKey) -> Result<(), Refusal> {
        if self.total >= self.max_total {
            return Err(Refusal::Full);
        }
        let count = self.per_client.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            return Err(Refusal::ClientFull);
        }
        *count += 1;
        self.total += 1;
        Ok(())
    }

    /// Releases one admitted query of `client`.
    pub fn release(&mut self, client: ClientKey) {
        if let Some(count) = self.per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&client);
            }
            self.total -= 1;
        }
    }

    /// Queries waiting now.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Clients with a query waiting now.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.per_client.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn client(n: u32) -> ClientKey {
        ClientKey::of(IpAddr::V4(Ipv4Addr::from(0x0a12_0000 + n)))
    }

    #[test]
    fn bounded_in_total_and_per_client() {
        let mut f = InFlight::new(5, 2);
        assert_eq!(f.admit(client(1)), Ok(()));
        assert_eq!(f.admit(client(1)), Ok(()));
        assert_eq!(f.admit(client(1)), Err(Refusal::ClientFull));
        assert_eq!(f.admit(client(2)), Ok(()));
        assert_eq!(f.admit(client(3)), Ok(()));
        assert_eq!(f.admit(client(4)), Ok(()));
        assert_eq!(f.admit(client(5)), Err(Refusal::Full));
        assert_eq!((f.total(), f.clients()), (5, 4));
        f.release(client(1));
        assert_eq!(f.admit(client(5)), Ok(()));
        for n in [1, 2, 3, 4, 5] {
            f.release(client(n));
        }
        assert_eq!((f.total(), f.clients()), (0, 0), "released clients leave the table");
        f.release(client(9));
        assert_eq!(f.total(), 0, "releasing what was never admitted changes nothing");
    }
}
