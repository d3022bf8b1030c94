//! The `netmanager` binary as a user meets it: help texts, key files, and
//! the errors of a wrong config or a daemon that is not running. Nothing
//! here needs root or namespaces: every `run` fails before it touches the
//! network (and would be killed after a timeout if it did not).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const NETMANAGER: &str = env!("CARGO_BIN_EXE_netmanager");
/// A `run` that has not failed by then is treated as a test failure.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("netmanager-cli-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn netmanager() -> Command {
    let mut command = Command::new(NETMANAGER);
    command
        .env_remove("GROVE_CONFIG")
        .env_remove("GROVE_CONTROL_SOCKET")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// Runs `netmanager args…` to completion.
fn cli(args: &[&str]) -> Output {
    netmanager().args(args).output().expect("run netmanager")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `netmanager run --config <config>`, which must fail within [`RUN_TIMEOUT`];
/// returns its stderr.
fn run_must_fail(config: &Path) -> String {
    run_with_must_fail(config, &[])
}

/// As [`run_must_fail`], with more `run` arguments.
fn run_with_must_fail(config: &Path, extra: &[&str]) -> String {
    let mut child = netmanager()
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netmanager run");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("poll netmanager").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`netmanager run --config {}` kept running; it must refuse this config",
                config.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect output");
    assert!(
        !out.status.success(),
        "run must fail for {}",
        config.display()
    );
    stderr(&out)
}

fn keygen(dir: &TempDir, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = cli(&["keygen", "--out", path.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "keygen failed: {}", stderr(&out));
    (path, stdout(&out).trim().to_owned())
}

/// A config for a node whose every other field is sound; `key` names the
/// key file, `extra` is appended verbatim.
fn write_config(dir: &TempDir, key: &Path, extra: &str) -> PathBuf {
    let path = dir.join("node.toml");
    let text = format!(
        "private_key_file = \"{}\"\naddress = \"10.18.0.1/24\"\ninterface = \"grvcli{}\"\ncontrol_socket = \"{}\"\n{extra}",
        key.display(),
        std::process::id() % 100_000,
        dir.join("control.sock").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn is_wireguard_key(s: &str) -> bool {
    s.len() == 44
        && s.ends_with('=')
        && s[..43]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

#[test]
fn help_explains_every_subcommand() {
    let top = cli(&["--help"]);
    assert!(top.status.success());
    let text = stdout(&top);
    for needle in ["50103", "keygen", "pubkey", "run", "status", "static mode"] {
        assert!(
            text.contains(needle),
            "`netmanager --help` lacks {needle:?}:\n{text}"
        );
    }
    for (command, needles) in [
        (
            "keygen",
            &["--out", "0600", "never overwrites", "public key"][..],
        ),
        ("pubkey", &["--key", "public key"][..]),
        ("run", &["--config", "TOML", "SIGTERM"][..]),
        (
            "status",
            &["--socket", "--json", "/run/grove/netmanager.sock", "peers"][..],
        ),
    ] {
        let out = cli(&[command, "--help"]);
        assert!(out.status.success(), "`netmanager {command} --help` failed");
        let text = stdout(&out);
        for needle in needles {
            assert!(
                text.contains(needle),
                "`netmanager {command} --help` lacks {needle:?}:\n{text}"
            );
        }
    }
}

#[test]
fn keygen_writes_a_private_file_and_prints_the_public_key() {
    let dir = TempDir::new();
    let (path, public) = keygen(&dir, "node.key");
    assert!(
        is_wireguard_key(&public),
        "not a 44-char base64 key: {public:?}"
    );
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    let private = std::fs::read_to_string(&path).expect("read key");
    assert!(
        is_wireguard_key(private.trim()),
        "key file holds {} chars",
        private.trim().len()
    );
    assert_ne!(
        private.trim(),
        public,
        "the private key must not be what is printed"
    );

    let out = cli(&["pubkey", "--key", path.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "pubkey failed: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), public, "pubkey disagrees with keygen");

    let (_, other) = keygen(&dir, "other.key");
    assert_ne!(other, public, "two keygens made the same key");
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let dir = TempDir::new();
    let (path, _) = keygen(&dir, "node.key");
    let before = std::fs::read(&path).expect("read key");
    let out = cli(&["keygen", "--out", path.to_str().expect("utf-8 path")]);
    assert!(
        !out.status.success(),
        "second keygen on the same path must fail"
    );
    let err = stderr(&out);
    assert!(
        err.contains("node.key") && err.contains("exists"),
        "stderr should say the key exists:\n{err}"
    );
    assert!(
        stdout(&out).is_empty(),
        "no key may be printed when none was written"
    );
    assert_eq!(
        std::fs::read(&path).expect("read key"),
        before,
        "the existing key was changed"
    );
}

#[test]
fn run_without_a_config_file_names_the_missing_file() {
    let dir = TempDir::new();
    let missing = dir.join("absent.toml");
    let err = run_must_fail(&missing);
    assert!(
        err.contains("cannot read config") && err.contains("absent.toml"),
        "stderr should name the config it cannot read:\n{err}"
    );
}

#[test]
fn run_with_an_unknown_field_names_it_and_the_valid_ones() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    let config = write_config(&dir, &key, "listen_prot = 50103\n");
    let err = run_must_fail(&config);
    for needle in ["node.toml", "unknown field", "listen_prot", "listen_port"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

#[test]
fn run_with_a_bad_peer_key_says_what_a_key_looks_like() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    let peer = "\n[[peer]]\npublic_key = \"not-a-key\"\nendpoints = [\"198.18.1.2:50103\"]\nallowed_ips = [\"10.18.0.2/32\"]\n";
    let config = write_config(&dir, &key, peer);
    let err = run_must_fail(&config);
    for needle in [
        "node.toml",
        "public_key",
        "invalid key",
        "32 bytes in base64",
        "netmanager keygen",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

#[test]
fn run_refuses_a_key_file_others_can_read() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let config = write_config(&dir, &key, "");
    let err = run_must_fail(&config);
    assert!(
        err.contains("node.key"),
        "stderr should name the key file:\n{err}"
    );
    assert!(err.contains("644"), "stderr should show the mode:\n{err}");
    assert!(
        err.contains("chmod 600"),
        "stderr should say how to fix it:\n{err}"
    );
    assert!(
        !dir.join("control.sock").exists(),
        "nothing may be started with an exposed key"
    );
}

#[test]
fn status_without_a_daemon_says_netmanager_is_not_running() {
    let dir = TempDir::new();
    let socket = dir.join("absent.sock");
    for json in [false, true] {
        let mut args = vec!["status", "--socket", socket.to_str().expect("utf-8 path")];
        if json {
            args.push("--json");
        }
        let out = cli(&args);
        assert!(!out.status.success(), "status must fail without a daemon");
        let err = stderr(&out);
        assert!(
            err.contains("is netmanager running?"),
            "stderr lacks the hint:\n{err}"
        );
        assert!(
            err.contains("netmanager run --config"),
            "stderr should say how to start it:\n{err}"
        );
        assert!(
            err.contains("absent.sock"),
            "stderr should name the socket:\n{err}"
        );
        assert!(
            stdout(&out).is_empty(),
            "nothing on stdout when there is no status"
        );
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn token_prints_a_fresh_token_and_appends_it_to_a_private_file() {
    let first = cli(&["token", "generate"]);
    assert!(first.status.success(), "token failed: {}", stderr(&first));
    let token = stdout(&first).trim().to_owned();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_alphanumeric()),
        "not 32 alphanumerics: {token:?}"
    );
    assert_ne!(stdout(&cli(&["token", "generate"])).trim(), token, "two tokens alike");

    let dir = TempDir::new();
    let file = dir.join("tokens");
    let path = file.to_str().expect("utf-8 path");
    let a = cli(&["token", "generate", "--file", path]);
    let b = cli(&["token", "generate", "--file", path]);
    assert!(
        a.status.success() && b.status.success(),
        "token --file failed: {}{}",
        stderr(&a),
        stderr(&b)
    );
    let mode = std::fs::metadata(&file)
        .expect("token file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "token file mode is {mode:o}");
    let listed = std::fs::read_to_string(&file).expect("read token file");
    let want = format!("{}\n{}\n", stdout(&a).trim(), stdout(&b).trim());
    assert_eq!(
        listed, want,
        "the file should hold both tokens, one per line"
    );
}

#[test]
fn token_ttl_writes_an_expiry_and_a_bad_ttl_is_refused() {
    let dir = TempDir::new();
    let file = dir.join("tokens");
    let path = file.to_str().expect("utf-8 path");
    let out = cli(&["token", "generate", "--file", path, "--ttl", "24h"]);
    assert!(
        out.status.success(),
        "token --ttl 24h failed: {}",
        stderr(&out)
    );
    let listed = std::fs::read_to_string(&file).expect("read token file");
    let (token, expiry) = listed.trim().split_once(' ').expect("`<token> <expiry>`");
    assert_eq!(token, stdout(&out).trim());
    let expiry: u64 = expiry.parse().expect("expiry in unix seconds");
    let ahead = expiry.saturating_sub(now_unix());
    assert!(
        (86_300..=86_400).contains(&ahead),
        "24h expiry is {ahead} s ahead"
    );

    for bad in ["--ttl=soon", "--ttl=5y", "--ttl=-3h", "--ttl=", "--ttl=999999999999999999d"] {
        let out = cli(&["token", "generate", "--file", path, bad]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "`netmanager token {bad}` must fail; it wrote {}",
            std::fs::read_to_string(&file).unwrap_or_default()
        );
        assert!(
            err.contains("--ttl") && (err.contains("24h") || err.contains("unit")),
            "{bad}: unclear error:\n{err}"
        );
        assert!(stdout(&out).is_empty(), "{bad}: a token was printed");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            listed,
            "{bad}: the token file changed"
        );
    }
}

#[test]
fn run_needs_an_address_or_control_but_not_both() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    let neither = dir.join("neither.toml");
    let socket = dir.join("control.sock");
    let text = format!(
        "private_key_file = \"{}\"\ncontrol_socket = \"{}\"\n",
        key.display(),
        socket.display()
    );
    std::fs::write(&neither, text).expect("write config");
    let err = run_must_fail(&neither);
    for needle in ["neither.toml", "address", "[control]"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    let both = write_config(&dir, &key, "\n[control]\nlisten = \"127.0.0.1:50103\"\n");
    let err = run_must_fail(&both);
    for needle in ["address", "[control]", "remove it"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

#[test]
fn run_admit_without_control_says_the_authority_needs_it() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    let tokens = dir.join("tokens");
    assert!(
        cli(&["token", "generate", "--file", tokens.to_str().expect("utf-8 path")])
            .status
            .success()
    );
    let config = write_config(&dir, &key, "");
    let err = run_with_must_fail(&config, &["--admit", tokens.to_str().expect("utf-8 path")]);
    for needle in ["--admit", "[control]"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    assert!(!dir.join("control.sock").exists(), "nothing may be started");
}

#[test]
fn id_prints_a_stable_peer_id_and_creates_the_identity_privately() {
    let dir = TempDir::new();
    let identity = dir.join("sub/identity.key");
    let path = identity.to_str().expect("utf-8 path");
    let first = cli(&["id", "--identity", path]);
    assert!(first.status.success(), "id failed: {}", stderr(&first));
    let peer = stdout(&first).trim().to_owned();
    assert!(peer.starts_with("12D3KooW"), "not an ed25519 peer id: {peer:?}");
    assert_eq!(stdout(&cli(&["id", "--identity", path])).trim(), peer, "the same file, the same id");
    let mode = std::fs::metadata(&identity).expect("identity").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_joining_node_must_pin_its_authority_and_keep_tokens_private() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir, "node.key");
    let socket = dir.join("control.sock");
    let two = format!(
        "private_key_file = \"{}\"\ncontrol_socket = \"{}\"\n[control]\nbootstrap = [\"12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE@198.18.1.1:50103\", \"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo@198.18.1.2:50103\"]\n",
        key.display(),
        socket.display()
    );
    let config = dir.join("two.toml");
    std::fs::write(&config, two).expect("write");
    let err = run_must_fail(&config);
    assert!(err.contains("authority"), "two pinned ids must be disambiguated:\n{err}");
    let inline = format!(
        "private_key_file = \"{}\"\ncontrol_socket = \"{}\"\n[control]\nbootstrap = [\"198.18.1.1:50103\"]\njoin_token = \"aaaaaaaaaaaaaaaaaaaa\"\n",
        key.display(),
        socket.display()
    );
    let config = dir.join("inline.toml");
    std::fs::write(&config, inline).expect("write");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = run_must_fail(&config);
    assert!(err.contains("join_token") && err.contains("chmod 600"), "a token in a readable config must be refused:\n{err}");
    assert!(!socket.exists(), "nothing may be started");
}

#[test]
fn token_commands_need_a_running_authority_and_say_so() {
    let dir = TempDir::new();
    let socket = dir.join("absent.sock");
    let out = cli(&["token", "create", "--socket", socket.to_str().expect("utf-8"), "--ttl", "1h"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("authority") && err.contains("absent.sock"), "{err}");
    let out = cli(&["token", "create", "--socket", socket.to_str().expect("utf-8"), "--ttl", "soon"]);
    assert!(stderr(&out).contains("--ttl"), "{}", stderr(&out));
}
