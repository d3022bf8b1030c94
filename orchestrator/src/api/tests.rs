//! The server against a fake root, over real HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::types::{AppView, ClusterView, LogsView, NodeView, ServiceView};
use super::{ApiServer, ApiToken, RootApi};
use crate::cli::http::{request, HttpResponse};
use crate::sla::SlaSpec;
use crate::OrchestratorError;

const TOKEN: &str = "a-test-token-of-some-length";

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl RootApi for Fake {
    async fn deploy(&self, sla: SlaSpec) -> Result<Vec<AppView>, OrchestratorError> {
        self.calls.lock().expect("lock").push(format!("deploy {}", sla.service_count()));
        Ok(vec![])
    }
    async fn apps(&self) -> Vec<AppView> {
        vec![]
    }
    async fn app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        Err(OrchestratorError::NotFound { what: "application", reference: reference.into() })
    }
    async fn remove_app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        Err(OrchestratorError::Ambiguous { what: "application", reference: reference.into(), candidates: vec!["a.x".into(), "a.y".into()] })
    }
    async fn services(&self) -> Vec<ServiceView> {
        vec![]
    }
    async fn service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        Err(OrchestratorError::NotFound { what: "service", reference: reference.into() })
    }
    async fn scale(&self, reference: &str, instances: u32) -> Result<ServiceView, OrchestratorError> {
        self.calls.lock().expect("lock").push(format!("scale {reference} {instances}"));
        Err(OrchestratorError::NotFound { what: "service", reference: reference.into() })
    }
    async fn remove_service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        Err(OrchestratorError::NotFound { what: "service", reference: reference.into() })
    }
    async fn logs(&self, reference: &str, tail_bytes: u64) -> Result<LogsView, OrchestratorError> {
        Ok(LogsView { service: format!("{reference} {tail_bytes}"), instances: vec![] })
    }
    async fn clusters(&self) -> Vec<ClusterView> {
        vec![]
    }
    async fn nodes(&self) -> Vec<NodeView> {
        vec![]
    }
}

async fn server() -> (SocketAddr, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let server = ApiServer::bind("127.0.0.1:0".parse().expect("addr"), ApiToken::new(TOKEN), fake.clone()).await.expect("bind");
    let address = server.local_addr();
    tokio::spawn(server.serve(std::future::pending()));
    (address, fake)
}

async fn call(address: SocketAddr, method: &'static str, path: &str, token: Option<&'static str>, body: Option<Vec<u8>>) -> (u16, serde_json::Value) {
    let (base, path) = (format!("http://{address}"), path.to_owned());
    let r: HttpResponse = tokio::task::spawn_blocking(move || request(&base, method, &path, token, body.as_deref()))
        .await
        .expect("join")
        .expect("request");
    (r.status, serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
}

fn sla(memory: i64, virtualization: &str) -> Vec<u8> {
    serde_json::json!({
        "sla_version": "v2.0", "customerID": "me",
        "applications": [{"applicationID": "", "application_name": "shop", "application_namespace": "prod", "application_desc": "",
            "microservices": [{"microserviceID": "", "microservice_name": "web", "microservice_namespace": "prod",
                "virtualization": virtualization, "code": "/bin/true", "memory": memory, "vcpus": 1}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_checked_except_for_health() {
    let (a, _) = server().await;
    assert_eq!(call(a, "GET", "/v1/health", None, None).await.0, 200);
    let (status, body) = call(a, "GET", "/v1/apps", None, None).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("missing API token")), "{body}");
    assert_eq!(call(a, "GET", "/v1/apps", Some("wrong-token-wrong-token"), None).await.0, 401);
    assert_eq!(call(a, "GET", "/v1/apps", Some(TOKEN), None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn slas_are_checked_with_field_paths() {
    let (a, fake) = server().await;
    assert_eq!(call(a, "POST", "/v1/apps", Some(TOKEN), Some(sla(64, "process"))).await.0, 201);
    assert_eq!(fake.calls.lock().expect("lock").as_slice(), ["deploy 1"]);
    let (status, body) = call(a, "POST", "/v1/apps", Some(TOKEN), Some(sla(0, "process"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["violations"][0].as_str().is_some_and(|v| v.starts_with("applications[0].microservices[0].memory")), "{body}");
    let (status, body) = call(a, "POST", "/v1/apps", Some(TOKEN), Some(sla(64, "docker"))).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("virtualization"), "{body}");
    assert_eq!(call(a, "POST", "/v1/apps", Some(TOKEN), Some(b"{not json".to_vec())).await.0, 400);
    assert_eq!(call(a, "POST", "/v1/apps", Some(TOKEN), Some(vec![b' '; 2 << 20])).await.0, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_and_error_statuses() {
    let (a, fake) = server().await;
    assert_eq!(call(a, "GET", "/v1/services/nope", Some(TOKEN), None).await.0, 404);
    let (status, body) = call(a, "DELETE", "/v1/apps/a", Some(TOKEN), None).await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("a.x, a.y")), "{body}");
    call(a, "POST", "/v1/services/web/scale", Some(TOKEN), Some(br#"{"instances":3}"#.to_vec())).await;
    assert!(fake.calls.lock().expect("lock").contains(&"scale web 3".to_owned()));
    assert_eq!(call(a, "POST", "/v1/services/web/scale", Some(TOKEN), Some(br#"{"n":3}"#.to_vec())).await.0, 400);
    let (_, body) = call(a, "GET", "/v1/services/web/logs", Some(TOKEN), None).await;
    assert_eq!(body["service"], "web 65536");
    assert_eq!(call(a, "GET", "/v1/services/web/logs?tail=x", Some(TOKEN), None).await.0, 400);
    assert_eq!(call(a, "GET", "/v1/nothing", Some(TOKEN), None).await.0, 404);
    assert_eq!(call(a, "PUT", "/v1/apps", Some(TOKEN), None).await.0, 405);
}

#[test]
fn token_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("grove-token-{}", std::process::id()));
    let path = dir.join("api-token");
    let _ = std::fs::remove_dir_all(&dir);
    let made = ApiToken::load_or_create(&path).expect("made");
    assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
    let again = ApiToken::load_or_create(&path).expect("read");
    let text = std::fs::read_to_string(&path).expect("text");
    assert!(made.matches(text.trim()) && again.matches(text.trim()) && !again.matches("other"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = ApiToken::load_or_create(&path).expect_err("refused");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
