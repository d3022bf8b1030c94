//! The root API's client side: where the root is, the token, the output
//! format (flags, then environment, then defaults), and typed calls.

use std::path::PathBuf;

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::http;
use crate::api::types::ErrorBody;

/// Where the token file of a root on this machine is, by default.
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/grove/root/api-token";

/// How the client commands reach the root.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The root's API.
    #[arg(long, env = "GROVE_ROOT", default_value = "http://127.0.0.1:10000")]
    pub root: String,
    /// The API token.
    #[arg(long, env = "GROVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the API token (default: /var/lib/grove/root/api-token, if readable).
    #[arg(long, env = "GROVE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// `text` for people, `json` for scripts.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

impl ClientArgs {
    /// True for `-o json`.
    pub fn json(&self) -> bool {
        self.output == "json"
    }

    /// A client with the token resolved.
    pub fn client(&self) -> anyhow::Result<Client> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => Some(token.trim().to_owned()),
            (None, Some(file)) => Some(std::fs::read_to_string(file).with_context(|| format!("reading the token file {}", file.display()))?.trim().to_owned()),
            (None, None) => std::fs::read_to_string(DEFAULT_TOKEN_FILE).ok().map(|t| t.trim().to_owned()),
        };
        Ok(Client { root: self.root.clone(), token })
    }
}

/// Typed calls to the root.
#[derive(Debug, Clone)]
pub struct Client {
    root: String,
    token: Option<String>,
}

impl Client {
    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<T> {
        let response = http::request(&self.root, method, path, self.token.as_deref(), body)
            .map_err(|e| anyhow::anyhow!("{e} — is `grove root` running there? (set --root or GROVE_ROOT)"))?;
        if (200..300).contains(&response.status) {
            return serde_json::from_slice(&response.body).with_context(|| format!("reading the root's answer to {method} {path}"));
        }
        let error: ErrorBody = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| ErrorBody { error: String::from_utf8_lossy(&response.body).into_owned(), violations: Vec::new() });
        let mut text = format!("the root answered {}: {}", response.status, error.error);
        for violation in &error.violations {
            text.push_str(&format!("\n  {violation}"));
        }
        if response.status == 401 {
            text.push_str("\n  pass --token-file <the root's api-token file> or set GROVE_TOKEN");
        }
        anyhow::bail!(text)
    }

    /// GET.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("GET", path, None)
    }

    /// POST a body.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> anyhow::Result<T> {
        self.call("POST", path, Some(body))
    }

    /// DELETE.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("DELETE", path, None)
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `2.0 CPU / 3.8 GiB`.
pub fn capacity(c: &crate::model::Capacity) -> String {
    format!("{:.1} CPU / {:.1} GiB", f64::from(c.cpu_millis) / 1000.0, c.memory_mib as f64 / 1024.0)
}
