//! [`MemoryStore`]: the same semantics as [`super::RedbStore`], in memory,
//! for tests of the code above the store (nothing survives the process).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{in_prefix, Entry, Ops, Store, StoreError, Table};

/// (table, key) → value; the BTreeMap's order gives prefix listing for free.
type Map = BTreeMap<(Table, String), Vec<u8>>;

/// An in-memory store: a BTreeMap behind a Mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<Map>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, Map>, StoreError> {
        self.map.lock().map_err(|_| StoreError::Poisoned)
    }
}

fn get_in(map: &Map, table: Table, key: &str) -> Option<Vec<u8>> {
    map.get(&(table, key.to_owned())).cloned()
}

fn list_in(map: &Map, table: Table, prefix: &str) -> Vec<Entry> {
    map.range((table, prefix.to_owned())..)
        .take_while(|((t, k), _)| *t == table && in_prefix(k, prefix))
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect()
}

impl Ops for MemoryStore {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(get_in(&*self.locked()?, table, key))
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.locked()?
            .insert((table, key.to_owned()), value.to_vec());
        Ok(())
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        Ok(self.locked()?.remove(&(table, key.to_owned())).is_some())
    }

    fn list(&self, table: Table, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        Ok(list_in(&*self.locked()?, table, prefix))
    }
}

/// A transaction's working copy: changes land here and replace the store's
/// map only on success. A RefCell because [`Ops`] takes `&self` (as redb's
/// write transaction does) and the copy is never shared across threads.
struct MemoryTx(RefCell<Map>);

impl Ops for MemoryTx {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(get_in(&self.0.borrow(), table, key))
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0
            .borrow_mut()
            .insert((table, key.to_owned()), value.to_vec());
        Ok(())
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .remove(&(table, key.to_owned()))
            .is_some())
    }

    fn list(&self, table: Table, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        Ok(list_in(&self.0.borrow(), table, prefix))
    }
}

impl Store for MemoryStore {
    fn transaction(
        &self,
        f: &mut dyn FnMut(&dyn Ops) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // The lock is held throughout, so transactions are serialised as in
        // redb; cloning the whole map is fine at test sizes.
        let mut map = self.locked()?;
        let tx = MemoryTx(RefCell::new(map.clone()));
        f(&tx)?;
        *map = tx.0.into_inner();
        Ok(())
    }
}
