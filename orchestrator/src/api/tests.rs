//! The server against a fake root ([`FakeRoot`]: canned views, recorded
//! calls), over real HTTP on 127.0.0.1. [`TestServer`] is also what the
//! CLI's tests run their commands against.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::types::{AppView, ClusterView, InstanceLogs, InstanceView, LogsView, NodeView, ServiceView};
use super::{ApiServer, ApiToken, RootApi, MAX_BODY};
use crate::cli::http::{Endpoint, HttpClient, HttpResponse};
use crate::model::{Capacity, InstanceState};
use crate::sla::SlaSpec;
use crate::OrchestratorError;

/// The token of every test server.
pub(crate) const TOKEN: &str = "a-test-token-of-some-length";

/// What the fake was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Deploy { customer: String, services: Vec<String> },
    Scale { reference: String, instances: u32 },
    Logs { reference: String, tail: u64 },
    RemoveApp(String),
    RemoveService(String),
}

/// A root with two apps, `cam.default` (service `ms2`, 2 instances RUNNING)
/// and `cam.edge` (service `ms2`, 1 REQUESTED with a reason), so `ms2` is
/// ambiguous. With `advance`, every `services()` moves each instance one
/// state towards RUNNING, as a real deployment would.
#[derive(Default)]
pub(crate) struct FakeRoot {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    apps: Vec<AppView>,
    calls: Vec<Call>,
    advance: bool,
}

/// A service view with `n` RUNNING instances.
pub(crate) fn demo_service(name: &str, n: u32) -> ServiceView {
    let mut parts = name.split('.');
    let (service, app, namespace) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    ServiceView {
        name: name.to_owned(),
        service: service.to_owned(),
        app: app.to_owned(),
        namespace: namespace.to_owned(),
        closest: format!("closest.{name}.grove"),
        wanted: n,
        command: vec!["/usr/bin/cam".into(), "--fps".into(), "2".into()],
        memory_mib: 256,
        vcpus: 1,
        constraints: vec!["geo: within 50 km of 48.137,11.575".into()],
        instances: (0..n).map(|number| running(number, &format!("munich-{}", number + 1))).collect(),
    }
}

fn running(number: u32, node: &str) -> InstanceView {
    InstanceView {
        number,
        state: InstanceState::Running,
        reason: None,
        for_ms: 4200,
        cluster: Some("bavaria".into()),
        node: Some(node.into()),
        address: Some("10.18.0.70".parse().expect("ip")),
        restarts: 0,
    }
}

fn app(name: &str, namespace: &str, services: Vec<ServiceView>) -> AppView {
    AppView {
        name: name.into(),
        namespace: namespace.into(),
        customer: "Admin".into(),
        description: None,
        services,
    }
}

impl FakeRoot {
    pub(crate) fn new(advance: bool) -> FakeRoot {
        let mut pending = demo_service("ms2.cam.edge", 0);
        pending.wanted = 1;
        pending.instances = vec![InstanceView {
            number: 0,
            state: InstanceState::Requested,
            reason: Some("no worker with 2 GiB free within 50 km of Munich: closest candidate munich-3 has 1.2 GiB".into()),
            for_ms: 61_000,
            cluster: None,
            node: None,
            address: None,
            restarts: 0,
        }];
        let apps = vec![
            app("cam", "default", vec![demo_service("ms2.cam.default", 2)]),
            app("cam", "edge", vec![pending]),
        ];
        FakeRoot {
            state: Mutex::new(FakeState {
                apps,
                calls: Vec::new(),
                advance,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    fn services_now(&self) -> Vec<ServiceView> {
        self.state().apps.iter().flat_map(|a| a.services.clone()).collect()
    }

    fn find<'a, T>(items: &'a [T], name: impl Fn(&T) -> String, what: &'static str, reference: &str) -> Result<&'a T, OrchestratorError> {
        let exact = items.iter().find(|i| name(i) == reference);
        let matching: Vec<&T> = items.iter().filter(|i| name(i).starts_with(&format!("{reference}."))).collect();
        match (exact, matching.as_slice()) {
            (Some(item), _) => Ok(item),
            (None, [item]) => Ok(*item),
            (None, []) => Err(OrchestratorError::NotFound {
                what,
                reference: reference.into(),
            }),
            (None, many) => Err(OrchestratorError::Ambiguous {
                what,
                reference: reference.into(),
                candidates: many.iter().map(|i| name(i)).collect(),
            }),
        }
    }
}

fn next(state: InstanceState) -> InstanceState {
    match state {
        InstanceState::Requested => InstanceState::ClusterScheduled,
        InstanceState::ClusterScheduled => InstanceState::NodeScheduled,
        InstanceState::NodeScheduled => InstanceState::Creating,
        _ => InstanceState::Running,
    }
}

#[async_trait]
impl RootApi for FakeRoot {
    async fn deploy(&self, sla: SlaSpec) -> Result<Vec<AppView>, OrchestratorError> {
        let mut views = Vec::new();
        for spec in &sla.apps {
            let services = spec
                .services
                .iter()
                .map(|s| {
                    let name = format!("{}.{}.{}", s.name, spec.name, spec.namespace);
                    let mut view = demo_service(&name, 0);
                    view.wanted = s.instances;
                    view.memory_mib = s.resources.memory_mib;
                    view.instances = (0..s.instances)
                        .map(|number| InstanceView {
                            state: InstanceState::Requested,
                            node: None,
                            address: None,
                            cluster: None,
                            for_ms: 0,
                            ..running(number, "")
                        })
                        .collect();
                    view
                })
                .collect();
            views.push(app(spec.name.as_str(), spec.namespace.as_str(), services));
        }
        let mut state = self.state();
        let services = views.iter().flat_map(|a| a.services.iter().map(|s| s.name.clone())).collect();
        state.calls.push(Call::Deploy {
            customer: sla.customer.clone(),
            services,
        });
        for view in &views {
            state
                .apps
                .retain(|a| (a.name.as_str(), a.namespace.as_str()) != (view.name.as_str(), view.namespace.as_str()));
            state.apps.push(view.clone());
        }
        Ok(views)
    }
    async fn apps(&self) -> Vec<AppView> {
        self.state().apps.clone()
    }
    async fn app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        let apps = self.state().apps.clone();
        FakeRoot::find(&apps, |a| format!("{}.{}", a.name, a.namespace), "application", reference).cloned()
    }
    async fn remove_app(&self, reference: &str) -> Result<AppView, OrchestratorError> {
        let removed = self.app(reference).await?;
        let mut state = self.state();
        state.calls.push(Call::RemoveApp(reference.into()));
        state
            .apps
            .retain(|a| (&a.name, &a.namespace) != (&removed.name, &removed.namespace));
        Ok(removed)
    }
    async fn services(&self) -> Vec<ServiceView> {
        let mut state = self.state();
        if state.advance {
            for instance in state
                .apps
                .iter_mut()
                .flat_map(|a| a.services.iter_mut())
                .flat_map(|s| s.instances.iter_mut())
            {
                let was = instance.state;
                instance.state = next(was);
                if instance.state == InstanceState::Running && was != InstanceState::Running {
                    *instance = running(instance.number, "munich-1");
                }
            }
        }
        state.apps.iter().flat_map(|a| a.services.clone()).collect()
    }
    async fn service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        FakeRoot::find(&self.services_now(), |s| s.name.clone(), "service", reference).cloned()
    }
    async fn scale(&self, reference: &str, instances: u32) -> Result<ServiceView, OrchestratorError> {
        let mut view = self.service(reference).await?;
        self.state().calls.push(Call::Scale {
            reference: reference.into(),
            instances,
        });
        view.wanted = instances;
        Ok(view)
    }
    async fn remove_service(&self, reference: &str) -> Result<ServiceView, OrchestratorError> {
        if reference == "busy" {
            return Err(OrchestratorError::Unavailable("cluster bavaria did not answer".into()));
        }
        let view = self.service(reference).await?;
        let mut state = self.state();
        state.calls.push(Call::RemoveService(reference.into()));
        for app in &mut state.apps {
            app.services.retain(|s| s.name != view.name);
        }
        Ok(view)
    }
    async fn logs(&self, reference: &str, tail_bytes: u64) -> Result<LogsView, OrchestratorError> {
        let view = self.service(reference).await?;
        self.state().calls.push(Call::Logs {
            reference: reference.into(),
            tail: tail_bytes,
        });
        let instances = view
            .instances
            .iter()
            .map(|i| {
                let text = format!("hello from instance-{}\n", i.number);
                let tail = &text[text.len().saturating_sub(tail_bytes as usize)..];
                InstanceLogs {
                    number: i.number,
                    node: i.node.clone(),
                    text: tail.into(),
                    total_bytes: text.len() as u64,
                    error: None,
                }
            })
            .collect();
        Ok(LogsView {
            service: view.name,
            instances,
        })
    }
    async fn clusters(&self) -> Vec<ClusterView> {
        vec![ClusterView {
            name: "bavaria".into(),
            address: Some("10.18.0.1".parse().expect("ip")),
            state: "alive".into(),
            location: None,
            workers: 2,
            total: Capacity::new(4000, 7782),
            free: Capacity::new(2000, 3891),
            instances: 2,
            last_report_ms: 420,
        }]
    }
    async fn nodes(&self) -> Vec<NodeView> {
        ["munich-1", "munich-2"]
            .iter()
            .map(|name| NodeView {
                name: (*name).into(),
                cluster: "bavaria".into(),
                arch: "x86_64".into(),
                capacity: Capacity::new(2000, 3891),
                reserved: Capacity::new(1000, 256),
                load: 0.25,
                location: None,
                state: "alive".into(),
                instances: 1,
            })
            .collect()
    }
}

/// A real server on 127.0.0.1 with a [`FakeRoot`], on its own runtime, so
/// that blocking clients can call it from the test's thread.
pub(crate) struct TestServer {
    pub(crate) fake: Arc<FakeRoot>,
    pub(crate) address: SocketAddr,
    tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestServer {
    pub(crate) fn start(advance: bool) -> TestServer {
        TestServer::start_with(advance, None)
    }

    fn start_with(advance: bool, max_connections: Option<usize>) -> TestServer {
        TestServer::start_configured(advance, |server| match max_connections {
            Some(max) => server.with_max_connections(max),
            None => server,
        })
    }

    /// A server that `configure` sets up further (TLS, limits).
    pub(crate) fn start_configured(advance: bool, configure: impl FnOnce(ApiServer) -> ApiServer) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = Arc::new(FakeRoot::new(advance));
        let server = runtime
            .block_on(ApiServer::bind(
                "127.0.0.1:0".parse().expect("addr"),
                ApiToken::from_secret(TOKEN),
                fake.clone(),
            ))
            .expect("bind");
        let server = configure(server);
        let tls = server.is_tls();
        let address = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(server.serve(async {
            let _ = stopped.await;
        }));
        TestServer {
            fake,
            address,
            tls,
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// One request; the token when `token` is true.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> HttpResponse {
        let client = HttpClient::new(Endpoint::parse(&self.url()).expect("url"));
        let authorization = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        client.send(method, path, &headers, body).expect("answer")
    }

    /// Status and JSON body of an authorized request.
    fn json(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
        let response = self.call(method, path, Some(TOKEN), body);
        assert_eq!(response.header("content-type"), Some("application/json"), "{method} {path}");
        (response.status, serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// An SLA with one process microservice, in the style of `sla/spec_tests.rs`.
pub(crate) fn sla_document(app: &str, service: &str, memory: i64, virtualization: &str) -> Value {
    json!({
        "sla_version": "v2.0",
        "customerID": "Admin",
        "applications": [{
            "applicationID": "",
            "application_name": app,
            "application_namespace": "default",
            "application_desc": "",
            "microservices": [{
                "microserviceID": "",
                "microservice_name": service,
                "microservice_namespace": "default",
                "virtualization": virtualization,
                "code": "/usr/local/bin/anonymiser",
                "cmd": ["--fps", "2"],
                "memory": memory,
                "vcpus": 1,
                "constraints": [{"type": "geo", "location": "48.137,11.575", "threshold": 50}]
            }]
        }]
    })
}

pub(crate) fn sla_bytes(app: &str, service: &str, memory: i64, virtualization: &str) -> Vec<u8> {
    sla_document(app, service, memory, virtualization).to_string().into_bytes()
}

#[test]
fn health_needs_no_token_and_the_rest_does() {
    let server = TestServer::start(false);
    let health = server.call("GET", "/v1/health", None, None);
    assert_eq!(
        (health.status, serde_json::from_slice::<Value>(&health.body).ok()),
        (200, Some(json!({"ok": true})))
    );
    let missing = server.call("GET", "/v1/apps", None, None);
    assert_eq!((missing.status, missing.header("www-authenticate")), (401, Some("Bearer")));
    let body: Value = serde_json::from_slice(&missing.body).expect("json");
    assert_eq!(
        body["error"],
        "missing API token: pass --token or set GROVE_TOKEN (the root printed where its token file is)"
    );
    let wrong = server.call("GET", "/v1/apps", Some("wrong-token-wrong-token"), None);
    assert_eq!(wrong.status, 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&wrong.body).expect("json")["error"],
        "wrong API token"
    );
    assert!(wrong.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    // A stranger learns nothing of the routes either.
    assert_eq!(server.call("GET", "/v1/nothing", None, None).status, 401);
    assert_eq!(server.json("GET", "/v1/apps", None).0, 200);
}

#[test]
fn deploy_checks_the_sla_as_validate_does() {
    let server = TestServer::start(false);
    let (status, body) = server.json("POST", "/v1/apps", Some(&sla_bytes("Shop", "web", 64, "process")));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["services"][0]["name"], "web.shop.default");
    assert_eq!(
        server.fake.calls(),
        [Call::Deploy {
            customer: "Admin".into(),
            services: vec!["web.shop.default".into()]
        }]
    );

    let (status, body) = server.json("POST", "/v1/apps", Some(&sla_bytes("Shop", "web", 0, "process")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["violations"], json!(["applications[0].microservices[0].memory: must be > 0"]));
    assert_eq!(body["error"], "invalid SLA: applications[0].microservices[0].memory: must be > 0");

    let (status, body) = server.json("POST", "/v1/apps", Some(&sla_bytes("Shop", "web", 64, "docker")));
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["violations"],
        json!([r#"applications[0].microservices[0].virtualization: "docker" is not supported by grove; supported: process"#])
    );

    let (status, body) = server.json("POST", "/v1/apps", Some(b"{\n  \"sla_version\": \"v2.0\",\n  oops\n}"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid JSON at line 3 column 3")),
        "{body}"
    );
    assert_eq!(server.fake.calls().len(), 1, "only the valid SLA reached the root");
}

#[test]
fn bodies_over_a_mebibyte_are_413() {
    let server = TestServer::start(false);
    let (status, body) = server.json("POST", "/v1/apps", Some(&vec![b' '; MAX_BODY + 1]));
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("1048576 bytes")), "{body}");
    // Far too large: refused by its Content-Length before it is read.
    let mut stream = TcpStream::connect(server.address).expect("connect");
    write!(
        stream,
        "POST /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000000000\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        server.json("POST", "/v1/apps", Some(&sla_bytes("Shop", "web", 64, "process"))).0,
        201
    );
}

#[test]
fn root_errors_map_to_statuses() {
    let server = TestServer::start(false);
    let (status, body) = server.json("GET", "/v1/services/nope", None);
    assert_eq!((status, body["error"].as_str()), (404, Some("no service named \"nope\"")));
    let (status, body) = server.json("GET", "/v1/services/ms2", None);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("ms2.cam.default, ms2.cam.edge")),
        "{body}"
    );
    assert_eq!(
        server.json("GET", "/v1/services/ms2.cam.edge", None).1["instances"][0]["state"],
        "REQUESTED"
    );
    assert_eq!(server.json("GET", "/v1/apps/cam", None).0, 409);
    assert_eq!(server.json("GET", "/v1/apps/cam.edge", None).1["namespace"], "edge");
    assert_eq!(server.json("DELETE", "/v1/services/busy", None).0, 503);
    assert_eq!(server.json("DELETE", "/v1/apps/cam.edge", None).0, 200);
    assert_eq!(server.json("GET", "/v1/services/ms2", None).0, 200, "no longer ambiguous");
    assert_eq!(server.fake.calls(), [Call::RemoveApp("cam.edge".into())]);
}

#[test]
fn scale_takes_an_instance_count() {
    let server = TestServer::start(false);
    let (status, body) = server.json("POST", "/v1/services/ms2.cam.default/scale", Some(br#"{"instances":3}"#));
    assert_eq!((status, &body["wanted"]), (200, &json!(3)), "{body}");
    assert_eq!(
        server.fake.calls(),
        [Call::Scale {
            reference: "ms2.cam.default".into(),
            instances: 3
        }]
    );
    for bad in [
        &br#"{"n":3}"#[..],
        br#"{"instances":-1}"#,
        br#"{"instances":3,"extra":1}"#,
        b"three",
        b"",
    ] {
        let (status, body) = server.json("POST", "/v1/services/ms2.cam.default/scale", Some(bad));
        assert_eq!(status, 400, "{}: {body}", String::from_utf8_lossy(bad));
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("a scale request is {\"instances\": N}")),
            "{body}"
        );
    }
    assert_eq!(server.fake.calls().len(), 1);
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let server = TestServer::start(false);
    for path in ["/v1/nothing", "/v1/apps/a/b", "/", "/v2/apps", "/v1/services/ms2/restart"] {
        assert_eq!(server.json("GET", path, None).0, 404, "{path}");
    }
    let wrong = server.call("PUT", "/v1/apps", Some(TOKEN), None);
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("GET, POST")));
    assert_eq!(server.json("GET", "/v1/services/ms2.cam.default/scale", None).0, 405);
    assert_eq!(server.json("POST", "/v1/nodes", Some(b"{}")).0, 405);
    assert_eq!(server.call("DELETE", "/v1/health", None, None).status, 405);
}

#[test]
fn logs_pass_the_tail() {
    let server = TestServer::start(false);
    let (status, body) = server.json("GET", "/v1/services/ms2.cam.default/logs", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances"][1]["text"], "hello from instance-1\n");
    let (_, body) = server.json("GET", "/v1/services/ms2.cam.default/logs?tail=6", None);
    assert_eq!(body["instances"][0]["text"], "nce-0\n");
    let tails: Vec<u64> = server
        .fake
        .calls()
        .iter()
        .filter_map(|c| if let Call::Logs { tail, .. } = c { Some(*tail) } else { None })
        .collect();
    assert_eq!(tails, [65536, 6]);
    for bad in ["tail=x", "tail=-5", "tail=99999999999"] {
        assert_eq!(
            server.json("GET", &format!("/v1/services/ms2.cam.default/logs?{bad}"), None).0,
            400,
            "{bad}"
        );
    }
}

#[test]
fn list_routes_answer_json() {
    let server = TestServer::start(false);
    assert_eq!(server.json("GET", "/v1/apps", None).1.as_array().map(Vec::len), Some(2));
    assert_eq!(server.json("GET", "/v1/services", None).1.as_array().map(Vec::len), Some(2));
    assert_eq!(server.json("GET", "/v1/clusters", None).1[0]["name"], "bavaria");
    assert_eq!(server.json("GET", "/v1/nodes", None).1[1]["name"], "munich-2");
}

#[test]
fn connections_beyond_the_cap_are_closed() {
    let server = TestServer::start_with(false, Some(1));
    let _held = TcpStream::connect(server.address).expect("first");
    std::thread::sleep(Duration::from_millis(100));
    let mut second = TcpStream::connect(server.address).expect("second connects, then is closed");
    second.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = second.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = second.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(_held);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.call("GET", "/v1/health", None, None).status, 200);
}

#[test]
fn token_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("grove-token-{}", std::process::id()));
    let path = dir.join("state").join("api-token");
    let _ = std::fs::remove_dir_all(&dir);
    let made = ApiToken::load_or_create(&path).expect("made");
    assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("text");
    assert_eq!(text.trim().len(), 43, "32 bytes of base64url: {text:?}");
    let again = ApiToken::load_or_create(&path).expect("read");
    assert!(made.matches(text.trim()) && again.matches(text.trim()) && !again.matches("other"));
    assert_eq!(
        std::fs::read_dir(path.parent().expect("dir")).expect("list").count(),
        1,
        "no temporary file left"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let e = ApiToken::load_or_create(&path).expect_err("refused");
    assert!(e.to_string().contains(&format!("chmod 600 {}", path.display())), "{e}");
    std::fs::write(&path, "\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(ApiToken::load_or_create(&path).expect_err("empty").to_string().contains("empty"));
    let _ = std::fs::remove_dir_all(&dir);
}
