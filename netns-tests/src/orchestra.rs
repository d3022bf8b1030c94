//! The orchestrator's daemons on a dynamic mesh: `grove root`, `grove
//! cluster` and `grove worker` run in a node's namespace beside its
//! netmanager (with `nsenter --net`, like netmanager itself, so workload
//! namespaces stay visible), and a small HTTP client for the root's API
//! and for services, driven from inside a namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::dynamic::DynamicNode;
use crate::inns::in_netns;
use crate::{bin_path, ChildGuard, Error, Result};

/// Starts `grove <role> <args> --netmanager-socket <node's>` in the node's
/// namespace, logging to `<dir>/<node>-<role>.log`.
pub fn daemon(node: &DynamicNode, dir: &Path, role: &str, args: &[&str]) -> Result<ChildGuard> {
    let log = dir.join(format!("{}-{role}.log", node.name));
    let file = std::fs::File::options().create(true).append(true).open(&log).map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let err = file.try_clone().map_err(|e| Error::io("clone log", e))?;
    let bin = bin_path("grove")?;
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", node.netns))
        .arg(&bin)
        .arg(role)
        .args(args)
        .arg("--netmanager-socket")
        .arg(&node.control_socket)
        .env("RUST_LOG", std::env::var("GROVE_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|source| Error::Spawn { program: bin.display().to_string(), source })?;
    Ok(ChildGuard::new(format!("grove {role} on {}", node.name), child, log))
}

/// One HTTP/1.0 request from inside `netns`: (status, body).
pub fn http(netns: &str, to: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>, timeout: Duration) -> Result<(u16, String)> {
    let mut stream = in_netns(netns, move || TcpStream::connect_timeout(&to, timeout))?.map_err(|e| Error::io(format!("connect {to}"), e))?;
    let io = |e| Error::io(format!("HTTP to {to}"), e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let body = body.unwrap_or("");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {to}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The root's API, reached from inside the root's namespace.
#[derive(Debug, Clone)]
pub struct RootClient {
    /// The root node's namespace.
    pub netns: String,
    /// The token.
    pub token: String,
}

impl RootClient {
    /// Waits for the root's token file and reads it.
    pub fn new(netns: &str, state_dir: &Path) -> Result<RootClient> {
        let file: PathBuf = state_dir.join("api-token");
        crate::wait_until_named("the root's API token file", Duration::from_secs(10), || file.exists())?;
        let token = std::fs::read_to_string(&file).map_err(|e| Error::io("read the token", e))?.trim().to_owned();
        Ok(RootClient { netns: netns.to_owned(), token })
    }

    /// A call: (status, JSON or null).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, serde_json::Value)> {
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, 10000));
        let (status, text) = http(&self.netns, to, method, path, Some(&self.token), body, Duration::from_secs(10))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
    }

    /// GET, the JSON (null on any failure).
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.call("GET", path, None).map(|(_, v)| v).unwrap_or(serde_json::Value::Null)
    }
}
