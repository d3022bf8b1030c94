//! The user API's operations on the root ([`crate::api::RootApi`]): each
//! changes the state, makes the change durable, then wakes the reconcile
//! loop, so a 201 means the deployment survives a kill.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::views::{app_view, cluster_view, node_views, service_view};
use super::{now_ms, Root};
use crate::api::types::{AppView, ClusterView, InstanceLogs, LogsView, NodeView, ServiceView};
use crate::api::RootApi;
use crate::proto::Message;
use crate::sla::SlaSpec;
use crate::OrchestratorError;

/// How long a worker gets to send logs.
const LOGS_TIMEOUT: Duration = Duration::from_secs(3);

impl Root {
    fn commit(&self) -> Result<(), OrchestratorError> {
        self.persist()?;
        self.kick.notify_one();
        Ok(())
    }
}

#[async_trait]
impl RootApi for Root {
    async fn deploy(&self, sla: SlaSpec) -> Result<Vec<AppView>, OrchestratorError> {
        let now = now_ms();
        let (keys, out) = self.state().deploy(sla, now);
        self.send(out);
        // Place at once rather than on the next tick: deploy latency is the figure users feel.
        let placed = self.state().reconcile(now, self.cluster_timeout);
        self.send(placed);
        self.commit()?;
        let state = self.state();
        Ok(keys.iter().filter_map(|k| state.apps.get(k)).map(|a| app_view(&state, a, now)).collect())
    }

    async fn apps(&self) -> Vec<AppView> {
        let state = self.state();
        state.apps.values().map(|a| app_view(&state, a, now_ms())).collect()
    }

    async fn app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        let state = self.state();
        let key = state.find_app(reference)?;
        let app = state.apps.get(&key).ok_or(OrchestratorError::NotFound { what: "application", reference: key.clone() })?;
        Ok(app_view(&state, app, now_ms()))
    }

    async fn remove_app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        let now = now_ms();
        let (view, out) = {
            let mut state = self.state();
            let key = state.find_app(reference)?;
            let mut out = Vec::new();
            let Some((app, services)) = state.remove_app_key(&key, &mut out) else {
                return Err(OrchestratorError::NotFound { what: "application", reference: key });
            };
            let view = AppView {
                name: app.name.to_string(),
                namespace: app.namespace.to_string(),
                customer: app.customer,
                description: app.description,
                services: services.iter().map(|s| undeployed(service_view(s, now))).collect(),
            };
            (view, out)
        };
        self.send(out);
        self.commit()?;
        Ok(view)
    }

    async fn services(&self) -> Vec<ServiceView> {
        let state = self.state();
        state.services.values().map(|s| service_view(s, now_ms())).collect()
    }

    async fn service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        let state = self.state();
        let key = state.find_service(reference)?;
        let service = state.services.get(&key).ok_or(OrchestratorError::NotFound { what: "service", reference: key.clone() })?;
        Ok(service_view(service, now_ms()))
    }

    async fn scale(&self, reference: &str, instances: u32) -> Result<ServiceView, OrchestratorError> {
        if instances > 10_000 {
            return Err(OrchestratorError::BadRequest(format!("{instances} instances: at most 10000 per service")));
        }
        let now = now_ms();
        let (view, out) = {
            let mut state = self.state();
            let key = state.find_service(reference)?;
            let out = state.scale(&key, instances, now);
            let view = state.services.get(&key).map(|s| service_view(s, now));
            (view.ok_or(OrchestratorError::NotFound { what: "service", reference: key })?, out)
        };
        self.send(out);
        self.commit()?;
        Ok(view)
    }

    async fn remove_service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        let now = now_ms();
        let (view, out) = {
            let mut state = self.state();
            let key = state.find_service(reference)?;
            let mut out = Vec::new();
            let removed = state.remove_service_key(&key, &mut out).ok_or(OrchestratorError::NotFound { what: "service", reference: key })?;
            (undeployed(service_view(&removed, now)), out)
        };
        self.send(out);
        self.commit()?;
        Ok(view)
    }

    async fn logs(&self, reference: &str, tail_bytes: u64) -> Result<LogsView, OrchestratorError> {
        let (name, asks) = {
            let state = self.state();
            let key = state.find_service(reference)?;
            let service = state.services.get(&key).ok_or(OrchestratorError::NotFound { what: "service", reference: key.clone() })?;
            let asks: Vec<_> = service.instances.iter().map(|(&n, i)| (n, service.key(n), i.cluster.clone(), i.node.clone())).collect();
            (key, asks)
        };
        let mut waits = Vec::new();
        for (number, key, cluster, node) in asks {
            let Some(cluster) = cluster else {
                waits.push((number, node, None));
                continue;
            };
            let request = self.next_request.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            self.logs.lock().unwrap_or_else(|p| p.into_inner()).insert(request, tx);
            self.send(vec![(cluster, Message::Logs { request, key, tail_bytes })]);
            waits.push((number, node, Some((request, rx))));
        }
        let mut instances = Vec::new();
        for (number, node, wait) in waits {
            let result = match wait {
                None => Err("not placed yet".to_owned()),
                Some((request, rx)) => {
                    let result = tokio::time::timeout(LOGS_TIMEOUT, rx).await;
                    self.logs.lock().unwrap_or_else(|p| p.into_inner()).remove(&request);
                    match result {
                        Ok(Ok(result)) => result,
                        Ok(Err(_)) | Err(_) => Err("its cluster did not answer in time".to_owned()),
                    }
                }
            };
            instances.push(match result {
                Ok((text, total_bytes)) => InstanceLogs { number, node, text, total_bytes, error: None },
                Err(error) => InstanceLogs { number, node, text: String::new(), total_bytes: 0, error: Some(error) },
            });
        }
        Ok(LogsView { service: name, instances })
    }

    async fn clusters(&self) -> Vec<ClusterView> {
        let state = self.state();
        state.clusters.values().map(|c| cluster_view(&state, c, now_ms())).collect()
    }

    async fn nodes(&self) -> Vec<NodeView> {
        node_views(&self.state())
    }
}

/// A removed service's view: every instance UNDEPLOYED.
fn undeployed(mut view: ServiceView) -> ServiceView {
    for instance in &mut view.instances {
        instance.state = crate::model::InstanceState::Undeployed;
        instance.for_ms = 0;
    }
    view
}
