//! [`RedbStore`]: the default store, one redb file on the root's disk.
//!
//! Crash safety comes from redb itself: every commit uses its default
//! `Durability::Immediate` (the commit returns only after fsync), and a
//! file left by a killed process is repaired to its last commit on the next
//! open. redb also flock()s the file, which is how a second root on the same
//! state is refused ([`StoreError::Locked`]).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableTable, TableDefinition, WriteTransaction};

use super::{in_prefix, Entry, Ops, Store, StoreError, Table};

/// Every table maps a string key to opaque (versioned) bytes.
type Def = TableDefinition<'static, &'static str, &'static [u8]>;

const fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

/// A store in one redb file, safe against being killed at any point.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it (and its directory, mode
    /// 0700) if missing. The file is mode 0600: it holds the whole
    /// deployment state, join material included later.
    ///
    /// Fails with [`StoreError::Locked`] while another process has it open,
    /// and [`StoreError::Open`] when the file is not a readable redb store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StoreError::Io { path: p, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Only directories this creates get 0700; an existing one (say
            // /var/lib) is not ours to chmod.
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        // Created 0600 up front so the state is never readable by others,
        // not even between creation and the chmod below.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        let db = redb::Builder::new()
            .create_file(file)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.clone() },
                other => StoreError::Open {
                    path: path.clone(),
                    source: Box::new(other),
                },
            })?;
        // An existing file may have been created looser (umask, a copy):
        // tighten it once it is known to be our store.
        std::fs::set_permissions(&path, Permissions::from_mode(0o600)).map_err(io_err(&path))?;
        // Create every table now so that reads never meet a missing one.
        let tx = db.begin_write()?;
        for table in Table::ALL {
            tx.open_table(def(table))?;
        }
        tx.commit()?;
        Ok(RedbStore { db, path })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One write transaction around `f`, committed if `f` succeeds; a
    /// dropped, uncommitted redb transaction is rolled back.
    fn write<R>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let tx = self.db.begin_write()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// get on any readable redb table (read or write transaction).
fn get_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(t.get(key)?.map(|v| v.value().to_vec()))
}

/// list on any readable redb table: a range scan from `prefix`, stopped at
/// the first key past it (keys are sorted, so the matches are contiguous).
fn list_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    for item in t.range::<&str>(prefix..)? {
        let (k, v) = item?;
        if !in_prefix(k.value(), prefix) {
            break;
        }
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

/// The operations inside a write transaction: reads see its own writes.
struct RedbTx<'a>(&'a WriteTransaction);

impl Ops for RedbTx<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(&self.0.open_table(def(table))?, key)
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.open_table(def(table))?.insert(key, value)?;
        Ok(())
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        Ok(self.0.open_table(def(table))?.remove(key)?.is_some())
    }

    fn list(&self, table: Table, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        list_in(&self.0.open_table(def(table))?, prefix)
    }
}

impl Ops for RedbStore {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(&self.db.begin_read()?.open_table(def(table))?, key)
    }

    fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| RedbTx(tx).put(table, key, value))
    }

    fn delete(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        self.write(|tx| RedbTx(tx).delete(table, key))
    }

    fn list(&self, table: Table, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        list_in(&self.db.begin_read()?.open_table(def(table))?, prefix)
    }
}

impl Store for RedbStore {
    fn transaction(
        &self,
        f: &mut dyn FnMut(&dyn Ops) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write(|tx| f(&RedbTx(tx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("grove-redb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_a_private_dir_and_file() {
        let dir = scratch("perms");
        let path = dir.join("state").join("root.redb");
        RedbStore::open(&path).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_second_open_by_name() {
        let dir = scratch("locked");
        let path = dir.join("root.redb");
        let _held = RedbStore::open(&path).expect("first open");
        let err = RedbStore::open(&path).expect_err("second open");
        assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("another grove root holds {}", path.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_corrupt_file() {
        let dir = scratch("corrupt");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("root.redb");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).expect("write garbage");
        let err = RedbStore::open(&path).expect_err("garbage is no store");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("corrupt"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeps_data_across_reopen() {
        let dir = scratch("reopen");
        let path = dir.join("root.redb");
        RedbStore::open(&path)
            .expect("open")
            .put(Table::Apps, "a", b"1")
            .expect("put");
        let store = RedbStore::open(&path).expect("reopen");
        assert_eq!(
            store.get(Table::Apps, "a").expect("get"),
            Some(b"1".to_vec())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
