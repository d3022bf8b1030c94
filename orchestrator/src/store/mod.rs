//! The root's state store: the one seam between the orchestrator and its
//! persistence, so that etcd can stand in for redb later without the tiers
//! noticing.
//!
//! The API is synchronous on purpose: redb is, every commit blocks on an
//! fsync, and the async daemons call it from `spawn_blocking`. Keys are
//! strings (ids, see [`schema`] for their shape) and values are opaque bytes
//! here; [`schema`] adds the typed, versioned encoding on top.
//!
//! Each single [`Ops`] call on a [`Store`] is its own durable commit;
//! [`Store::transaction`] groups several so that they land together or not
//! at all, which is what a deployment touching app, services and instances
//! needs to survive a kill half-way.

pub mod memory;
pub mod redb;
pub mod schema;
#[cfg(test)]
mod suite;

pub use memory::MemoryStore;
pub use redb::RedbStore;
pub use schema::Table;

use std::path::PathBuf;

/// A key and its value, as [`Ops::list`] returns them (in key order).
pub type Entry = (String, Vec<u8>);

/// The four operations, on a store directly or inside a transaction.
///
/// A separate trait from [`Store`] so that the typed helpers in [`schema`]
/// work the same on both, and so that a transaction can read what it is
/// about to change (read-modify-write without a race).
pub trait Ops {
    /// The value under `key`, if any.
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`, replacing what was there.
    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; `true` if it was there.
    fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order (`""` lists
    /// the whole table).
    fn list(&self, table: Table, prefix: &str) -> Result<Vec<Entry>, StoreError>;
}

/// A durable key-value store with atomic multi-key transactions.
///
/// `Send + Sync` because the daemons share one store across tasks.
pub trait Store: Ops + Send + Sync {
    /// Runs `f` inside one transaction: every change it makes is committed
    /// atomically (and durably) when it returns `Ok`, and none is when it
    /// returns `Err`, whose error is handed back. Transactions are
    /// serialised, so reads inside `f` see no concurrent writer.
    /// `f` must work through the [`Ops`] it is given, never the store
    /// itself: that would wait on its own transaction forever.
    ///
    /// `f` is a `&mut dyn FnMut` (not a generic) so that `dyn Store` works;
    /// a closure hands results out through captured variables.
    fn transaction(
        &self,
        f: &mut dyn FnMut(&dyn Ops) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The redb file is flock'ed by another process: two roots on one
    /// store would each believe they own the state.
    #[error("another grove root holds {}", path.display())]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// redb refused the file: corrupt, not a redb file, or unreadable.
    #[error("cannot open the store {} (corrupt, or not a grove store?)", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: Box<::redb::DatabaseError>,
    },
    /// Creating the store's directory or file, or setting its mode.
    #[error("cannot prepare the store at {}", path.display())]
    Io {
        /// The path being created or chmod'ed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A redb read, write or commit failed after the store was open.
    /// Boxed: redb's error types are large and this is the cold path.
    #[error("store operation failed")]
    Redb(#[source] Box<::redb::Error>),
    /// A value could not be encoded (postcard).
    #[error("cannot encode the value for {table}/{key}")]
    Encode {
        /// The table written to.
        table: Table,
        /// The key written.
        key: String,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
    /// A stored value does not decode as the type asked for.
    #[error("cannot decode the value at {table}/{key}")]
    Decode {
        /// The table read.
        table: Table,
        /// The key read.
        key: String,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
    /// A stored value carries a format version this build does not know
    /// (written by a newer grove, or not by grove at all); refused rather
    /// than misread. `found` is `None` for an empty value (no tag at all).
    #[error("{table}/{key} has {}, this grove reads format version {expected}", tag_name(.found))]
    UnknownVersion {
        /// The table read.
        table: Table,
        /// The key read.
        key: String,
        /// The tag found.
        found: Option<u8>,
        /// The tag this build writes and reads.
        expected: u8,
    },
    /// A transaction's closure gave up; nothing it did was applied.
    #[error("transaction aborted: {reason}")]
    Aborted {
        /// Why, for the log.
        reason: &'static str,
    },
    /// A thread panicked while holding the in-memory store's lock.
    #[error("the in-memory store's lock is poisoned")]
    Poisoned,
}

/// How [`StoreError::UnknownVersion`] names what it found.
fn tag_name(found: &Option<u8>) -> String {
    match found {
        Some(tag) => format!("format version {tag}"),
        None => "no format version tag (empty value)".to_owned(),
    }
}

/// Every redb error type converts into the one boxed variant.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError
);

/// Whether `key` belongs in a listing of `prefix` (shared by both stores so
/// they agree exactly).
fn in_prefix(key: &str, prefix: &str) -> bool {
    key.starts_with(prefix)
}
