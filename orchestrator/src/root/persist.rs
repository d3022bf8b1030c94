//! The root's records in the store: one entry per application (table
//! `apps`, key `<app>.<namespace>`) and one per service with its instances
//! (table `services`, key `<service>.<app>.<namespace>`), written together
//! in one transaction per change.

use super::records::{AppRecord, ServiceRecord};
use super::state::{Dirty, RootState};
use crate::store::schema::{list_values, put_value};
use crate::store::{Ops, Store, StoreError, Table};

/// Everything in the store.
pub fn load(store: &dyn Store) -> Result<(Vec<AppRecord>, Vec<ServiceRecord>), StoreError> {
    let apps = list_values::<AppRecord>(store, Table::Apps, "")?.into_iter().map(|(_, v)| v).collect();
    let services = list_values::<ServiceRecord>(store, Table::Services, "")?.into_iter().map(|(_, v)| v).collect();
    Ok((apps, services))
}

/// Copies of what changed, taken under the state lock and written outside it.
pub struct Batch {
    apps: Vec<(String, Option<AppRecord>)>,
    services: Vec<(String, Option<ServiceRecord>)>,
}

impl Batch {
    /// The records `dirty` names (`None`: deleted).
    pub fn collect(state: &RootState, dirty: Dirty) -> Batch {
        Batch {
            apps: dirty.apps.into_iter().map(|k| (k.clone(), state.apps.get(&k).cloned())).collect(),
            services: dirty.services.into_iter().map(|k| (k.clone(), state.services.get(&k).cloned())).collect(),
        }
    }

    /// One durable transaction.
    pub fn write(&self, store: &dyn Store) -> Result<(), StoreError> {
        store.transaction(&mut |ops: &dyn Ops| {
            for (key, app) in &self.apps {
                match app {
                    Some(app) => put_value(ops, Table::Apps, key, app)?,
                    None => {
                        ops.delete(Table::Apps, key)?;
                    }
                }
            }
            for (key, service) in &self.services {
                match service {
                    Some(service) => put_value(ops, Table::Services, key, service)?,
                    None => {
                        ops.delete(Table::Services, key)?;
                    }
                }
            }
            Ok(())
        })
    }
}
