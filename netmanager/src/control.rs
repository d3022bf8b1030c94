//! The local control socket: a root-only unix socket speaking one JSON
//! request and one JSON response per line. `netmanager status` is its client;
//! later issues add instance registration to the same socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use overlay::{Device, DeviceStatus};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::UnixListener;

use crate::NetmanagerError;

/// Longest request line accepted; anything longer is refused, not buffered.
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Status(DeviceStatus),
    Error { message: String },
}

/// The listening side; removes its socket file when dropped.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `path` with mode 0600 (creating its directory 0700). A stale
    /// socket left by a killed daemon is replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<ControlServer, NetmanagerError> {
        let err = |source| NetmanagerError::ControlSocket {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
            }
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another netmanager is running with this control socket",
                )));
            }
            std::fs::remove_file(path).map_err(err)?;
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Answers requests until the task is dropped.
    pub async fn serve(self, device: Arc<Device>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let device = device.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, &device).await {
                    tracing::debug!(error = %e, "control connection failed");
                }
            });
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle(stream: tokio::net::UnixStream, device: &Device) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = AsyncBufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Status) => Response::Status(device.status()),
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await
}

/// Sends one request to a running netmanager and returns its response.
pub fn request(path: &Path, request: &Request) -> Result<Response, NetmanagerError> {
    let err = |source| NetmanagerError::ControlSocket {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(err)?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(err)?;
    let mut line = serde_json::to_string(request).map_err(|e| err(std::io::Error::other(e)))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(err)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(err)?;
    serde_json::from_str(&answer).map_err(|e| NetmanagerError::ControlProtocol {
        path: path.to_owned(),
        message: e.to_string(),
    })
}
