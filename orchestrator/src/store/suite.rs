//! One behavioural suite, run against every store: MemoryStore stands in
//! for RedbStore in the tests above the store only if the two agree.

use serde::{Deserialize, Serialize};

use super::schema::{child_key, children_of, get_value, list_values, put_value, FORMAT_VERSION};
use super::{MemoryStore, RedbStore, Store, StoreError, Table};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct App {
    name: String,
    replicas: u32,
}

fn app(name: &str, replicas: u32) -> App {
    App {
        name: name.to_owned(),
        replicas,
    }
}

fn put_get_delete(s: &dyn Store) {
    assert_eq!(s.get(Table::Apps, "a").expect("get"), None);
    s.put(Table::Apps, "a", b"one").expect("put");
    s.put(Table::Apps, "a", b"two").expect("overwrite");
    assert_eq!(s.get(Table::Apps, "a").expect("get"), Some(b"two".to_vec()));
    // Tables are separate namespaces.
    assert_eq!(s.get(Table::Services, "a").expect("get"), None);
    assert!(s.delete(Table::Apps, "a").expect("delete"));
    assert!(!s.delete(Table::Apps, "a").expect("delete again"));
    assert_eq!(s.get(Table::Apps, "a").expect("get"), None);
}

fn list_by_prefix(s: &dyn Store) {
    for key in ["app2/x", "app/b", "app/a", "ap", "b"] {
        s.put(Table::Services, key, key.as_bytes()).expect("put");
    }
    s.put(Table::Instances, "app/z", b"other table")
        .expect("put");
    let keys = |prefix: &str| -> Vec<String> {
        let list = s.list(Table::Services, prefix).expect("list");
        list.into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(keys(&children_of("app")), ["app/a", "app/b"]);
    assert_eq!(keys("app"), ["app/a", "app/b", "app2/x"]);
    assert_eq!(keys(""), ["ap", "app/a", "app/b", "app2/x", "b"]);
    assert!(keys("c").is_empty());
    let list = s.list(Table::Services, "b").expect("list");
    assert_eq!(list, [("b".to_owned(), b"b".to_vec())]);
}

fn transaction_applies_all(s: &dyn Store) {
    s.put(Table::Apps, "old", b"x").expect("put");
    let mut seen = None;
    s.transaction(&mut |tx| {
        tx.put(Table::Apps, "new", b"1")?;
        tx.put(Table::Services, "new/web", b"2")?;
        tx.delete(Table::Apps, "old")?;
        // Reads inside see the transaction's own writes.
        seen = tx.get(Table::Apps, "new")?;
        assert_eq!(tx.list(Table::Apps, "")?.len(), 1);
        Ok(())
    })
    .expect("transaction");
    assert_eq!(seen, Some(b"1".to_vec()));
    assert_eq!(s.get(Table::Apps, "new").expect("get"), Some(b"1".to_vec()));
    assert_eq!(
        s.get(Table::Services, "new/web").expect("get"),
        Some(b"2".to_vec())
    );
    assert_eq!(s.get(Table::Apps, "old").expect("get"), None);
}

fn failed_transaction_applies_nothing(s: &dyn Store) {
    s.put(Table::Apps, "keep", b"x").expect("put");
    let err = s
        .transaction(&mut |tx| {
            tx.put(Table::Apps, "half", b"1")?;
            tx.delete(Table::Apps, "keep")?;
            Err(StoreError::Aborted { reason: "test" })
        })
        .expect_err("closure failed");
    assert!(matches!(err, StoreError::Aborted { reason: "test" }));
    assert_eq!(s.get(Table::Apps, "half").expect("get"), None);
    assert_eq!(
        s.get(Table::Apps, "keep").expect("get"),
        Some(b"x".to_vec())
    );
    // A decode error inside a transaction aborts it just the same.
    s.put(Table::Meta, "bad", &[FORMAT_VERSION + 1])
        .expect("put");
    let err = s
        .transaction(&mut |tx| {
            put_value(tx, Table::Apps, "half", &app("half", 1))?;
            get_value::<App>(tx, Table::Meta, "bad").map(drop)
        })
        .expect_err("unknown version");
    assert!(matches!(err, StoreError::UnknownVersion { .. }));
    assert_eq!(s.get(Table::Apps, "half").expect("get"), None);
}

fn typed_values(s: &dyn Store) {
    let key = child_key("shop", "web");
    put_value(s, Table::Services, &key, &app("web", 3)).expect("put");
    put_value(s, Table::Services, "shop/db", &app("db", 1)).expect("put");
    let got: Option<App> = get_value(s, Table::Services, &key).expect("get");
    assert_eq!(got, Some(app("web", 3)));
    let all: Vec<(String, App)> = list_values(s, Table::Services, "shop/").expect("list");
    assert_eq!(
        all,
        [("shop/db".to_owned(), app("db", 1)), (key, app("web", 3))]
    );
}

fn refuses_unknown_versions(s: &dyn Store) {
    s.put(Table::Clusters, "eu", &[FORMAT_VERSION + 1, 0])
        .expect("put");
    let err = get_value::<App>(s, Table::Clusters, "eu").expect_err("unknown");
    assert!(
        err.to_string()
            .starts_with("clusters/eu has format version 2"),
        "{err}"
    );
    // One bad value fails the listing instead of silently shortening it.
    put_value(s, Table::Clusters, "ap", &app("ap", 1)).expect("put");
    assert!(list_values::<App>(s, Table::Clusters, "").is_err());
}

/// Runs every case on a fresh store of each kind.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $case() { super::$case(&super::MemoryStore::new()); })*
        }
        mod redb {
            $(#[test] fn $case() {
                let dir = std::env::temp_dir()
                    .join(format!("grove-suite-{}-{}", std::process::id(), stringify!($case)));
                let _ = std::fs::remove_dir_all(&dir);
                let store = super::RedbStore::open(dir.join("root.redb")).expect("open");
                super::$case(&store);
                drop(store);
                let _ = std::fs::remove_dir_all(&dir);
            })*
        }
    };
}

suite!(
    put_get_delete,
    list_by_prefix,
    transaction_applies_all,
    failed_transaction_applies_nothing,
    typed_values,
    refuses_unknown_versions,
);
