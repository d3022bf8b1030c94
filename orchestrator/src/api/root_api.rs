//! What the HTTP API needs from the root: one trait, so that the server
//! ([`super::server::ApiServer`]) is tested against a fake and the root's core stays
//! free of HTTP.

use async_trait::async_trait;

use super::types::{AppView, ClusterView, LogsView, NodeView, ServiceView};
use crate::sla::SlaSpec;
use crate::OrchestratorError;

/// The root's operations, as the API calls them. Service and app
/// references are what users type: `service[.app[.namespace]]` and
/// `app[.namespace]`; a short one that matches several is
/// [`OrchestratorError::Ambiguous`], none [`OrchestratorError::NotFound`].
#[async_trait]
pub trait RootApi: Send + Sync + 'static {
    /// Deploys the SLA's applications (updating those that exist).
    async fn deploy(&self, sla: SlaSpec) -> Result<Vec<AppView>, OrchestratorError>;
    /// Every application.
    async fn apps(&self) -> Vec<AppView>;
    /// One application.
    async fn app(&self, reference: &str) -> Result<AppView, OrchestratorError>;
    /// Undeploys an application and every instance of it.
    async fn remove_app(&self, reference: &str) -> Result<AppView, OrchestratorError>;
    /// Every service.
    async fn services(&self) -> Vec<ServiceView>;
    /// One service.
    async fn service(&self, reference: &str) -> Result<ServiceView, OrchestratorError>;
    /// Sets how many instances a service wants.
    async fn scale(&self, reference: &str, instances: u32) -> Result<ServiceView, OrchestratorError>;
    /// Undeploys one service.
    async fn remove_service(&self, reference: &str) -> Result<ServiceView, OrchestratorError>;
    /// The last `tail_bytes` of each instance's output, fetched from its worker.
    async fn logs(&self, reference: &str, tail_bytes: u64) -> Result<LogsView, OrchestratorError>;
    /// Registered clusters.
    async fn clusters(&self) -> Vec<ClusterView>;
    /// Workers of every cluster.
    async fn nodes(&self) -> Vec<NodeView>;
}
