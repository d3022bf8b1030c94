//! What the store holds: its tables, the shape of their keys, and the
//! encoding of their values (a format version tag, then postcard).
//!
//! The tag is a single byte in front of every value so that a grove that
//! meets data written by a newer grove refuses it by name instead of
//! misreading it: postcard is not self-describing, a changed struct would
//! otherwise decode into garbage or fail far from the cause.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Ops, StoreError};

/// The format version this build writes and the only one it reads. Bump it
/// when a stored type changes shape (and teach [`decode`] the old one, if
/// old stores must keep opening).
pub const FORMAT_VERSION: u8 = 1;

/// The store's tables. Each is a redb table (or an etcd key prefix later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Applications, keyed by app id.
    Apps,
    /// Services, keyed by [`child_key`]`(app, service)`.
    Services,
    /// Instances, keyed by [`child_key`]`(service key, instance)`.
    Instances,
    /// Clusters registered with the root, keyed by cluster id.
    Clusters,
    /// The store's own bookkeeping (schema notes, counters).
    Meta,
}

impl Table {
    /// Every table, to create them all when a store is opened (so reads
    /// never meet a missing table).
    pub const ALL: [Table; 5] = [
        Table::Apps,
        Table::Services,
        Table::Instances,
        Table::Clusters,
        Table::Meta,
    ];

    /// The table's name on disk: stable, never rename one.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Apps => "apps",
            Table::Services => "services",
            Table::Instances => "instances",
            Table::Clusters => "clusters",
            Table::Meta => "meta",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The separator in hierarchical keys. Ids are DNS labels, which cannot
/// contain it, so a parent's prefix never matches a sibling with a longer
/// name (`app/` does not list `app2/...`).
pub const SEP: char = '/';

/// The key of `child` under `parent` (`app/service`, `app/service/3`).
pub fn child_key(parent: &str, child: &str) -> String {
    format!("{parent}{SEP}{child}")
}

/// The prefix that lists every child of `parent` and nothing else.
pub fn children_of(parent: &str) -> String {
    format!("{parent}{SEP}")
}

/// A value with its format version tag: `[FORMAT_VERSION] ++ postcard(T)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T>(pub T);

impl<T: Serialize> Versioned<T> {
    /// The tagged bytes; `table` and `key` only name the value in errors.
    pub fn encode(&self, table: Table, key: &str) -> Result<Vec<u8>, StoreError> {
        let out = vec![FORMAT_VERSION];
        postcard::to_extend(&self.0, out).map_err(|source| StoreError::Encode {
            table,
            key: key.to_owned(),
            source,
        })
    }
}

impl<T: DeserializeOwned> Versioned<T> {
    /// Decodes tagged bytes, refusing an unknown tag and trailing bytes.
    pub fn decode(table: Table, key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        decode(table, key, bytes).map(Versioned)
    }
}

fn decode<T: DeserializeOwned>(table: Table, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            let decode_err = |source| StoreError::Decode {
                table,
                key: key.to_owned(),
                source,
            };
            let (value, rest) = postcard::take_from_bytes(body).map_err(decode_err)?;
            // Leftover bytes mean the stored type was wider than T: the
            // same silent-misread the tag exists to prevent.
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(decode_err(postcard::Error::DeserializeBadEncoding))
            }
        }
        found => Err(StoreError::UnknownVersion {
            table,
            key: key.to_owned(),
            found: found.map(|(tag, _)| *tag),
            expected: FORMAT_VERSION,
        }),
    }
}

/// Stores `value` under `key`, tagged and encoded.
pub fn put_value<T: Serialize>(
    ops: &(impl Ops + ?Sized),
    table: Table,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = Versioned(value).encode(table, key)?;
    ops.put(table, key, &bytes)
}

/// The decoded value under `key`, if any.
pub fn get_value<T: DeserializeOwned>(
    ops: &(impl Ops + ?Sized),
    table: Table,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match ops.get(table, key)? {
        Some(bytes) => decode(table, key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Every decoded value whose key starts with `prefix`, in key order. One
/// undecodable value fails the whole listing: a partial view of the state
/// would let the reconciler act on a lie.
pub fn list_values<T: DeserializeOwned>(
    ops: &(impl Ops + ?Sized),
    table: Table,
    prefix: &str,
) -> Result<Vec<(String, T)>, StoreError> {
    ops.list(table, prefix)?
        .into_iter()
        .map(|(key, bytes)| {
            let value = decode(table, &key, &bytes)?;
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_leading_tag() {
        let bytes = Versioned(("web", 3u32))
            .encode(Table::Apps, "a")
            .expect("encode");
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: Versioned<(String, u32)> =
            Versioned::decode(Table::Apps, "a", &bytes).expect("decode");
        assert_eq!(back.0, ("web".to_owned(), 3));
    }

    #[test]
    fn refuses_unknown_and_missing_tags_by_name() {
        let err = Versioned::<u32>::decode(Table::Services, "app/web", &[9, 1])
            .expect_err("version 9 is unknown");
        assert!(matches!(
            err,
            StoreError::UnknownVersion { found: Some(9), .. }
        ));
        assert_eq!(
            err.to_string(),
            "services/app/web has format version 9, this grove reads format version 1"
        );
        let err = Versioned::<u32>::decode(Table::Meta, "k", &[]).expect_err("empty");
        assert!(matches!(
            err,
            StoreError::UnknownVersion { found: None, .. }
        ));
    }

    #[test]
    fn refuses_trailing_bytes_and_bad_bodies() {
        let bytes = Versioned((1u8, 2u8))
            .encode(Table::Apps, "a")
            .expect("encode");
        let err = Versioned::<u8>::decode(Table::Apps, "a", &bytes).expect_err("too long");
        assert!(err.to_string().contains("apps/a"), "{err}");
        let err = Versioned::<String>::decode(Table::Apps, "a", &[FORMAT_VERSION, 5, b'x'])
            .expect_err("truncated");
        assert!(matches!(err, StoreError::Decode { .. }));
    }

    #[test]
    fn child_prefixes_do_not_match_longer_siblings() {
        assert_eq!(child_key("app", "web"), "app/web");
        assert!(!child_key("app2", "web").starts_with(&children_of("app")));
    }
}
