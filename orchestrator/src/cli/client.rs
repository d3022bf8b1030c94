//! The root API's client side: where the root is and the token (flags,
//! then environment, then a config file, then defaults), typed calls that
//! turn the API's errors into readable ones, exit codes, and the output
//! helpers the commands share (tables, capacities, durations).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::http::{Endpoint, HttpClient, HttpError, DEFAULT_TIMEOUT};
use super::tls::ClientTls;
use crate::api::types::{ErrorBody, InstanceView};
use crate::model::{Capacity, InstanceState};

/// The root when nothing says otherwise: one on this machine.
pub const DEFAULT_ROOT: &str = "http://127.0.0.1:10000";
/// The token file of a root on this machine, used when readable.
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/grove/root/api-token";

/// How the client commands reach the root. Each value comes from the
/// first of: the flag, its environment variable, the config file
/// (`$GROVE_CONFIG`, else `~/.config/grove/client.toml`), the default.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Reaching the root")]
pub struct ClientArgs {
    /// The root's API, e.g. `--root http://10.0.0.1:10000` (or https://)
    /// [env: GROVE_ROOT] [config: root] [default: http://127.0.0.1:10000]
    #[arg(long, value_name = "URL")]
    pub root: Option<String>,
    /// The API token (it shows in `ps`; prefer --token-file)
    /// [env: GROVE_TOKEN] [config: token]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A file holding the API token, e.g. `--token-file /var/lib/grove/root/api-token`
    /// [env: GROVE_TOKEN_FILE] [config: token_file] [default: /var/lib/grove/root/api-token, if readable]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// For an https:// root: trust only the certificates in this PEM file (the root's
    /// own, e.g. <state-dir>/api-cert.pem of `grove root --tls-self-signed`, or its CA)
    /// [env: GROVE_CA] [config: ca] [default: the system's CA bundle]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// `text` for people, `json` for scripts (the API's JSON, pretty-printed)
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `-o text` or `-o json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and sentences.
    Text,
    /// The API's JSON views.
    Json,
}

impl ClientArgs {
    /// True for `-o json`.
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }

    /// A client, with the settings resolved from the flags, the process
    /// environment and the config file.
    pub fn client(&self) -> anyhow::Result<Client> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let file = match config_path(&env) {
            Some((path, explicit)) => load_config(&path, explicit)?,
            None => Layer::default(),
        };
        let flags = Layer {
            origin: "the command line".into(),
            root: self.root.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
            ca: self.ca.clone(),
        };
        resolve(&[flags, env_layer(&env), file]).client()
    }
}

/// The settings of one source (flags, environment or config file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// For messages: "the command line", "the environment", the file.
    pub origin: String,
    /// The root's URL.
    pub root: Option<String>,
    /// The token itself.
    pub token: Option<String>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// The CA file for an https:// root.
    pub ca: Option<PathBuf>,
}

fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Layer {
    Layer {
        origin: "the environment".into(),
        root: env("GROVE_ROOT"),
        token: env("GROVE_TOKEN"),
        token_file: env("GROVE_TOKEN_FILE").map(PathBuf::from),
        ca: env("GROVE_CA").map(PathBuf::from),
    }
}

/// Where the token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// Given as text, by `origin`.
    Text {
        /// The token.
        token: String,
        /// Where it was given.
        origin: String,
    },
    /// A file named by `origin`: it must be readable.
    File {
        /// The file.
        path: PathBuf,
        /// Where it was named.
        origin: String,
    },
    /// [`DEFAULT_TOKEN_FILE`], used only if readable.
    Default,
}

/// Where the root is and how to prove who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The root's URL.
    pub root: String,
    /// The token's source.
    pub token: TokenSource,
    /// The CA file and who named it, if any.
    pub ca: Option<(PathBuf, String)>,
}

/// The first layer that sets a value wins; for the token, a layer's token
/// beats its token file, and the first layer with either wins.
pub fn resolve(layers: &[Layer]) -> Settings {
    let root = layers
        .iter()
        .find_map(|l| l.root.clone())
        .unwrap_or_else(|| DEFAULT_ROOT.to_owned());
    let token = layers
        .iter()
        .find_map(|l| match (&l.token, &l.token_file) {
            (Some(token), _) => Some(TokenSource::Text {
                token: token.trim().to_owned(),
                origin: l.origin.clone(),
            }),
            (None, Some(path)) => Some(TokenSource::File {
                path: path.clone(),
                origin: l.origin.clone(),
            }),
            (None, None) => None,
        })
        .unwrap_or(TokenSource::Default);
    let ca = layers.iter().find_map(|l| l.ca.clone().map(|path| (path, l.origin.clone())));
    Settings { root, token, ca }
}

impl Settings {
    /// The client: the token read now (an unreadable file that was asked
    /// for is a usage error; the default file is just skipped).
    pub fn client(&self) -> anyhow::Result<Client> {
        let (token, note) = match &self.token {
            TokenSource::Text { token, origin } => (Some(token.clone()), format!("the token came from {origin}")),
            TokenSource::File { path, origin } => match std::fs::read_to_string(path) {
                Ok(text) => (
                    Some(text.trim().to_owned()),
                    format!("the token came from {} (named by {origin})", path.display()),
                ),
                Err(e) => return Err(UsageError(format!("cannot read the token file {} (named by {origin}): {e}", path.display())).into()),
            },
            TokenSource::Default => match std::fs::read_to_string(DEFAULT_TOKEN_FILE) {
                Ok(text) => (Some(text.trim().to_owned()), format!("the token came from {DEFAULT_TOKEN_FILE}")),
                Err(e) => (None, format!("no token was given, and {DEFAULT_TOKEN_FILE} cannot be read ({e})")),
            },
        };
        let ca = self.ca.as_ref().map(|(path, origin)| (path.as_path(), origin.as_str()));
        let mut client = Client::with_ca(&self.root, token.filter(|t| !t.is_empty()), ca)?;
        client.token_note = note;
        Ok(client)
    }
}

/// `$GROVE_CONFIG` (which must exist), else `$XDG_CONFIG_HOME/grove/client.toml`
/// or `~/.config/grove/client.toml` (used if present).
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, bool)> {
    if let Some(path) = env("GROVE_CONFIG") {
        return Some((PathBuf::from(path), true));
    }
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some((base.join("grove").join("client.toml"), false))
}

fn load_config(path: &Path, explicit: bool) -> anyhow::Result<Layer> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Layer::default()),
        Err(e) => return Err(UsageError(format!("cannot read the config file {} (GROVE_CONFIG): {e}", path.display())).into()),
    };
    let mut layer = parse_config(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    layer.origin = path.display().to_string();
    if layer.token.is_some() {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o077 != 0) {
            eprintln!(
                "warning: {} holds a token and others can read it: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
    Ok(layer)
}

/// The config file: top-level `key = "string"` lines of TOML (basic or
/// literal strings, `#` comments), keys `root`, `token`, `token_file`,
/// `ca`. A token or CA file starting with `~/` is below `$HOME`.
pub fn parse_config(text: &str) -> Result<Layer, String> {
    let mut layer = Layer::default();
    for (number, line) in text.lines().enumerate() {
        let at = |what: String| format!("line {}: {what}", number + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            return Err(at("tables are not used: put root, token, token_file and ca at the top".into()));
        }
        let (key, value) = line.split_once('=').ok_or_else(|| at("expected key = \"value\"".into()))?;
        let value = toml_string(value.trim()).ok_or_else(|| at(format!("the value of {} must be a quoted string", key.trim())))?;
        match key.trim() {
            "root" => layer.root = Some(value),
            "token" => layer.token = Some(value),
            "token_file" => layer.token_file = Some(expand_home(&value)),
            "ca" => layer.ca = Some(expand_home(&value)),
            other => return Err(at(format!("unknown key {other:?}; the keys are root, token, token_file and ca"))),
        }
    }
    Ok(layer)
}

/// `"basic \" string"` or `'literal'`, then nothing but a comment.
fn toml_string(value: &str) -> Option<String> {
    let (text, rest) = if let Some(literal) = value.strip_prefix('\'') {
        let end = literal.find('\'')?;
        (literal[..end].to_owned(), &literal[end + 1..])
    } else {
        let mut chars = value.strip_prefix('"')?.char_indices();
        let mut text = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => text.push(match chars.next()?.1 {
                    '"' => '"',
                    '\\' => '\\',
                    'n' => '\n',
                    't' => '\t',
                    _ => return None,
                }),
                (_, c) => text.push(c),
            }
        };
        (text, &value[1 + end + 1..])
    };
    let rest = rest.trim();
    (rest.is_empty() || rest.starts_with('#')).then_some(text)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// A mistake in how grove was called or configured (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An error answer of the root: its `error` line, each SLA violation
/// indented on its own line, then what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// The root's message.
    pub error: String,
    /// SLA violations, `<path>: <rule>`.
    pub violations: Vec<String>,
    /// Advice, one line each.
    pub hints: Vec<String>,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        let said = matches!(self.violations.as_slice(), [one] if self.error.ends_with(one.as_str()));
        if !said {
            for violation in &self.violations {
                write!(f, "\n  {violation}")?;
            }
        }
        for hint in &self.hints {
            write!(f, "\n  {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiFailure {}

/// Exit status 2 for usage errors (and a missing or wrong token), else 1.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    let usage = error.downcast_ref::<UsageError>().is_some() || error.downcast_ref::<ApiFailure>().is_some_and(|f| f.status == 401);
    if usage {
        2
    } else {
        1
    }
}

/// What every command's `run` returns: its own exit code, or the error
/// printed on stderr with [`exit_status`].
pub fn finish(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(exit_status(&error)))
        }
    }
}

/// Typed calls to the root.
#[derive(Clone, Debug)]
pub struct Client {
    http: HttpClient,
    token: Option<String>,
    /// Where the token came from (or why there is none), for a 401.
    token_note: String,
}

impl Client {
    /// A client of the root at `root` (`http://host:port`; an `https://`
    /// one is checked against the system's CA bundle).
    pub fn new(root: &str, token: Option<String>) -> anyhow::Result<Client> {
        Client::with_ca(root, token, None)
    }

    /// A client of the root at `root` that, for `https://`, trusts only
    /// the CA file `ca` (named by its second part, for messages). The CA
    /// is read now, so that a bad file is told before any request.
    pub fn with_ca(root: &str, token: Option<String>, ca: Option<(&Path, &str)>) -> anyhow::Result<Client> {
        let endpoint = Endpoint::parse(root).map_err(|e| UsageError(e.to_string()))?;
        let tls = match (endpoint.is_tls(), ca) {
            // Like consul and vault, a CA given for a plain http:// root is not used.
            (false, _) => None,
            (true, Some((path, origin))) => Some(ClientTls::from_ca_file(path, origin)),
            (true, None) => Some(ClientTls::system()),
        };
        let mut http = HttpClient::new(endpoint);
        if let Some(tls) = tls {
            http = http.with_tls(tls.map_err(|e| UsageError(e.to_string()))?);
        }
        Ok(Client {
            http,
            token,
            token_note: String::new(),
        })
    }

    /// Waits up to `read` for each answer (connecting still takes at most 5 s).
    pub fn with_read_timeout(mut self, read: Duration) -> Client {
        self.http = self.http.with_timeouts(DEFAULT_TIMEOUT, read);
        self
    }

    /// `http://host:port`.
    pub fn root(&self) -> &str {
        self.http.endpoint().url()
    }

    /// `GET path`, the 2xx body decoded.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("GET", path, None)
    }

    /// `POST path` with `body` as JSON.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> anyhow::Result<T> {
        self.call("POST", path, Some(&serde_json::to_vec(body)?))
    }

    /// `POST path` with bytes that already are JSON (an SLA file).
    pub fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> anyhow::Result<T> {
        self.call("POST", path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("DELETE", path, None)
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<T> {
        let authorization = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        let response = self.http.send(method, path, &headers, body).map_err(|e| self.unreachable(e))?;
        if (200..300).contains(&response.status) {
            return serde_json::from_slice(&response.body).map_err(|e| {
                anyhow::anyhow!("the root's answer to {method} {path} is not what this grove expects ({e}); are the root and this client the same version?")
            });
        }
        Err(self.failure(response.status, &response.body).into())
    }

    fn failure(&self, status: u16, body: &[u8]) -> ApiFailure {
        let ErrorBody { error, violations } = serde_json::from_slice(body).unwrap_or_else(|_| ErrorBody {
            error: format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()),
            violations: Vec::new(),
        });
        let mut hints = Vec::new();
        if status == 401 {
            hints.push(self.token_note.clone());
            hints.push(format!(
                "pass the root's token file with --token-file (the root prints where it is; {DEFAULT_TOKEN_FILE} by default), \
                 or set GROVE_TOKEN_FILE or GROVE_TOKEN, or put token_file in ~/.config/grove/client.toml"
            ));
        }
        hints.retain(|h| !h.is_empty());
        ApiFailure {
            status,
            error,
            violations,
            hints,
        }
    }

    fn unreachable(&self, error: HttpError) -> anyhow::Error {
        let url = self.root();
        match error {
            // A certificate not trusted, or TLS spoken to a plain port, is a
            // setting to fix (--ca, the URL's scheme), like a wrong token.
            HttpError::BadUrl(_) | HttpError::Trust(_) | HttpError::Handshake { .. } => UsageError(error.to_string()).into(),
            HttpError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused => {
                anyhow::anyhow!("cannot reach the root at {url}: connection refused — is `grove root` running? (set --root or GROVE_ROOT)")
            }
            HttpError::Connect { source, .. } => anyhow::anyhow!("cannot reach the root at {url}: {source} (set --root or GROVE_ROOT)"),
            other => other.into(),
        }
    }
}

/// Writes `value` as pretty JSON and a newline.
pub fn write_json(out: &mut dyn Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A text table: left-aligned columns two spaces apart, the last unpadded.
#[derive(Clone, Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(headings: &[&str]) -> Table {
        Table {
            rows: vec![headings.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The lines, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 < row.len() {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
                } else {
                    line.push_str(cell);
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `2.0 CPU / 3.8 GiB` (memory under 1 GiB in MiB).
pub fn capacity(c: &Capacity) -> String {
    let memory = if c.memory_mib >= 1024 {
        format!("{:.1} GiB", c.memory_mib as f64 / 1024.0)
    } else {
        format!("{} MiB", c.memory_mib)
    };
    format!("{:.1} CPU / {memory}", f64::from(c.cpu_millis) / 1000.0)
}

/// `0.4 s`, `42 s`, `17 min`, `5 h`, `3 d`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    match ms {
        0..10_000 => format!("{s:.1} s"),
        10_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        7_200_000..172_800_000 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

/// Oakestra's states in life-cycle order.
pub const STATES: [InstanceState; 9] = [
    InstanceState::Running,
    InstanceState::Requested,
    InstanceState::ClusterScheduled,
    InstanceState::NodeScheduled,
    InstanceState::Creating,
    InstanceState::Failed,
    InstanceState::Dead,
    InstanceState::Completed,
    InstanceState::Undeployed,
];

/// `2 RUNNING, 1 REQUESTED`, or `-` for no instances.
pub fn states(instances: &[InstanceView]) -> String {
    let parts: Vec<String> = STATES
        .iter()
        .filter_map(|&state| {
            let n = instances.iter().filter(|i| i.state == state).count();
            (n > 0).then(|| format!("{n} {state}"))
        })
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The value, or `-`.
pub fn or_dash(value: Option<impl fmt::Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(origin: &str, root: Option<&str>, token: Option<&str>, token_file: Option<&str>) -> Layer {
        Layer {
            origin: origin.into(),
            root: root.map(Into::into),
            token: token.map(Into::into),
            token_file: token_file.map(PathBuf::from),
            ca: None,
        }
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let flags = layer("flags", None, None, None);
        let env = layer("env", Some("http://env:1"), None, Some("/env/token"));
        let file = layer("file", Some("http://file:1"), Some("file-token"), None);
        let settings = resolve(&[flags.clone(), env.clone(), file.clone()]);
        assert_eq!(settings.root, "http://env:1");
        assert_eq!(
            settings.token,
            TokenSource::File {
                path: "/env/token".into(),
                origin: "env".into()
            }
        );
        let settings = resolve(&[
            layer("flags", Some("http://flag:1"), Some(" t "), Some("/ignored")),
            env,
            file.clone(),
        ]);
        assert_eq!(
            (settings.root.as_str(), settings.token),
            (
                "http://flag:1",
                TokenSource::Text {
                    token: "t".into(),
                    origin: "flags".into()
                }
            )
        );
        let settings = resolve(&[flags.clone(), Layer::default(), file]);
        assert_eq!(
            settings.token,
            TokenSource::Text {
                token: "file-token".into(),
                origin: "file".into()
            }
        );
        let settings = resolve(&[flags]);
        assert_eq!((settings.root.as_str(), settings.token), (DEFAULT_ROOT, TokenSource::Default));
    }

    #[test]
    fn config_files() {
        let text =
            "# grove client\nroot = \"http://10.0.0.1:10000\"  # the cloud root\ntoken_file = '/etc/grove/token'\n\ntoken = \"a\\\"b\"\n";
        let parsed = parse_config(text).expect("parse");
        assert_eq!(
            parsed,
            layer("", Some("http://10.0.0.1:10000"), Some("a\"b"), Some("/etc/grove/token"))
        );
        for (bad, says) in [
            ("rooot = \"x\"", "line 1: unknown key \"rooot\""),
            ("root = x", "must be a quoted string"),
            ("\n[client]", "line 2: tables"),
            ("root", "expected key"),
            ("root = \"x\" y", "quoted string"),
        ] {
            let e = parse_config(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn config_locations() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            config_path(&env(&[("GROVE_CONFIG", "/x.toml"), ("HOME", "/h")])),
            Some(("/x.toml".into(), true))
        );
        assert_eq!(
            config_path(&env(&[("HOME", "/h")])),
            Some(("/h/.config/grove/client.toml".into(), false))
        );
        assert_eq!(
            config_path(&env(&[("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")])),
            Some(("/c/grove/client.toml".into(), false))
        );
        assert_eq!(config_path(&env(&[])), None);
        let missing = std::env::temp_dir().join("grove-no-such-config.toml");
        assert_eq!(load_config(&missing, false).expect("absent is fine"), Layer::default());
        assert_eq!(exit_status(&load_config(&missing, true).expect_err("asked for")), 2);
    }

    #[test]
    fn failures_print_the_error_then_each_violation() {
        let failure = ApiFailure {
            status: 400,
            error: "invalid SLA: 2 problems".into(),
            violations: vec!["a.memory: must be > 0".into(), "a.vcpus: must be > 0".into()],
            hints: vec![],
        };
        assert_eq!(
            failure.to_string(),
            "invalid SLA: 2 problems\n  a.memory: must be > 0\n  a.vcpus: must be > 0"
        );
        let one = ApiFailure {
            status: 400,
            error: "invalid SLA: a: b".into(),
            violations: vec!["a: b".into()],
            hints: vec!["fix it".into()],
        };
        assert_eq!(one.to_string(), "invalid SLA: a: b\n  fix it");
        assert_eq!(exit_status(&anyhow::Error::new(one)), 1);
        assert_eq!(
            exit_status(&anyhow::Error::new(ApiFailure {
                status: 401,
                error: String::new(),
                violations: vec![],
                hints: vec![]
            })),
            2
        );
    }

    #[test]
    fn bad_roots_are_usage_errors() {
        let e = Client::new("gopher://root:10000", None).expect_err("scheme");
        assert_eq!(exit_status(&e), 2);
        assert_eq!(Client::new("10.0.0.1:10000", None).expect("bare").root(), "http://10.0.0.1:10000");
        let missing = std::env::temp_dir().join("grove-no-such-ca.pem");
        let e = Client::with_ca("https://root:10000", None, Some((&missing, "the command line"))).expect_err("no CA file");
        assert_eq!(exit_status(&e), 2);
        assert!(
            e.to_string()
                .starts_with(&format!("the CA file named by the command line: cannot read {}", missing.display())),
            "{e}"
        );
        // A CA for a plain root is not read.
        assert!(Client::with_ca("http://root:10000", None, Some((&missing, "x"))).is_ok());
    }

    #[test]
    fn the_ca_follows_the_same_layers() {
        let with_ca = |origin: &str, ca: Option<&str>| Layer {
            ca: ca.map(PathBuf::from),
            ..layer(origin, None, None, None)
        };
        let settings = resolve(&[with_ca("flags", None), with_ca("env", Some("/env.pem")), with_ca("file", Some("/file.pem"))]);
        assert_eq!(settings.ca, Some(("/env.pem".into(), "env".into())));
        assert_eq!(resolve(&[with_ca("flags", None)]).ca, None);
        assert_eq!(parse_config("ca = '/etc/grove/root.pem'").expect("ca").ca, Some("/etc/grove/root.pem".into()));
    }

    #[test]
    fn refused_connections_say_what_to_do() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let e = Client::new(&url, None)
            .expect("client")
            .get::<serde_json::Value>("/v1/apps")
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            format!("cannot reach the root at {url}: connection refused — is `grove root` running? (set --root or GROVE_ROOT)")
        );
    }

    #[test]
    fn tables_and_formats() {
        let mut table = Table::new(&["SERVICE", "INSTANCES", "CLOSEST"]);
        table.row(vec!["ms2.cam.default".into(), "2/3".into(), "closest.ms2.cam.default.grove".into()]);
        table.row(vec!["ä".into(), "10/10".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "SERVICE          INSTANCES  CLOSEST\nms2.cam.default  2/3        closest.ms2.cam.default.grove\nä                10/10      -\n"
        );
        assert_eq!(capacity(&Capacity::new(2000, 3891)), "2.0 CPU / 3.8 GiB");
        assert_eq!(capacity(&Capacity::new(500, 512)), "0.5 CPU / 512 MiB");
        let d: Vec<String> = [420, 42_000, 1_020_000, 18_000_000, 259_200_000]
            .into_iter()
            .map(duration_ms)
            .collect();
        assert_eq!(d, ["0.4 s", "42 s", "17 min", "5 h", "3 d"]);
        let instance = |state| InstanceView {
            number: 0,
            state,
            reason: None,
            for_ms: 0,
            cluster: None,
            node: None,
            address: None,
            restarts: 0,
        };
        let instances = [
            instance(InstanceState::Requested),
            instance(InstanceState::Running),
            instance(InstanceState::Running),
        ];
        assert_eq!(states(&instances), "2 RUNNING, 1 REQUESTED");
        assert_eq!(states(&[]), "-");
        assert_eq!(or_dash(None::<u32>), "-");
    }
}
