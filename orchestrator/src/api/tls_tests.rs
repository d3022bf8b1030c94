//! The API over TLS: the real server on 127.0.0.1 with a certificate made
//! by `self_signed`, called by the real `grove` client code; what a bad
//! peer (plain HTTP, random bytes, a stalled handshake) does to it; what
//! bad files and untrusted certificates say.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::self_signed::{self, CERT_FILE, KEY_FILE};
use super::tests::{TestServer, TOKEN};
use super::tls::{fingerprint, read_certificates, ServerTls, TlsError};
use crate::cli::client::{exit_status, ApiFailure, Client};
use crate::cli::http::{Endpoint, HttpClient, HttpError};
use crate::cli::tls::ClientTls;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grove-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A self-signed pair in `dir` for `names`.
fn pair(dir: &Path, names: &[&str]) -> ServerTls {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    self_signed::load_or_create(dir, &names).expect("self-signed").0
}

fn tls_server(dir: &Path) -> TestServer {
    let tls = pair(dir, &["localhost", "127.0.0.1"]);
    TestServer::start_configured(false, |server| server.with_tls(tls))
}

fn client(server: &TestServer, ca: &Path, token: Option<&str>) -> Client {
    Client::with_ca(&server.url(), token.map(Into::into), Some((ca, "the test"))).expect("client")
}

/// A TLS request to the health route with the trust of `ca`.
fn health(server: &TestServer, ca: &Path) -> Result<u16, HttpError> {
    let tls = ClientTls::from_ca_file(ca, "the test").expect("ca");
    let http = HttpClient::new(Endpoint::parse(&server.url()).expect("url")).with_tls(tls);
    http.send("GET", "/v1/health", &[], None).map(|r| r.status)
}

/// Reads until the server closes; panics if it does not within 5 s.
fn closed_by_server(mut stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the server left the connection open")
            }
            Err(_) => return, // reset: closed too
        }
    }
}

#[test]
fn the_real_client_talks_tls_with_the_token() {
    let dir = scratch("client");
    let server = tls_server(&dir);
    let ca = dir.join(CERT_FILE);
    assert!(server.url().starts_with("https://127.0.0.1:"), "{}", server.url());
    let apps: Value = client(&server, &ca, Some(TOKEN)).get("/v1/apps").expect("apps over TLS");
    assert_eq!(apps.as_array().map(Vec::len), Some(2));
    let e = client(&server, &ca, None).get::<Value>("/v1/apps").expect_err("no token");
    assert_eq!(e.downcast_ref::<ApiFailure>().map(|f| f.status), Some(401), "{e}");
    let e = client(&server, &ca, Some("wrong-token-wrong-token")).get::<Value>("/v1/apps").expect_err("wrong token");
    assert_eq!(e.downcast_ref::<ApiFailure>().map(|f| f.status), Some(401), "{e}");
    // Bodies go over TLS too (the scale route reads one).
    let view: Value = client(&server, &ca, Some(TOKEN))
        .post("/v1/services/ms2.cam.default/scale", &serde_json::json!({"instances": 3}))
        .expect("scale");
    assert_eq!(view["wanted"], 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_untrusted_certificate_says_pass_ca() {
    let dir = scratch("untrusted");
    let server = tls_server(&dir.join("server"));
    let other = dir.join("other");
    pair(&other, &["localhost", "127.0.0.1"]);
    let e = client(&server, &other.join(CERT_FILE), Some(TOKEN)).get::<Value>("/v1/apps").expect_err("untrusted");
    let text = e.to_string();
    assert!(text.contains("presented a certificate not signed by the CA file"), "{text}");
    assert!(text.contains("pass --ca with the root's certificate"), "{text}");
    assert!(text.contains(&other.join(CERT_FILE).display().to_string()), "names what was trusted: {text}");
    assert_eq!(exit_status(&e), 2, "a setting to fix");
    // No --ca: the system's bundle (if there is one) has not signed it either.
    let e = Client::new(&server.url(), Some(TOKEN.into()))
        .and_then(|c| c.get::<Value>("/v1/apps"))
        .expect_err("system roots");
    assert!(e.to_string().contains("pass --ca"), "{e}");
    // The server is still there for a client that trusts it.
    assert_eq!(health(&server, &dir.join("server").join(CERT_FILE)).expect("health"), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_certificate_for_other_names_says_so() {
    let dir = scratch("names");
    let tls = pair(&dir, &["root.example"]);
    let server = TestServer::start_configured(false, |server| server.with_tls(tls));
    match health(&server, &dir.join(CERT_FILE)) {
        Err(e @ HttpError::Handshake { .. }) => {
            let text = e.to_string();
            assert!(text.contains("a certificate for other names"), "{text}");
            assert!(text.contains("root.example") && text.contains("--ca"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_http_to_the_tls_port_fails_cleanly() {
    let dir = scratch("plain");
    let server = tls_server(&dir);
    let plain = HttpClient::new(Endpoint::parse(&format!("http://{}", server.address)).expect("url"));
    let started = Instant::now();
    let e = plain.send("GET", "/v1/health", &[], None).expect_err("TLS port");
    assert!(started.elapsed() < Duration::from_secs(4), "answered at once, not by a timeout: {e}");
    // The server's TLS alert, told as such; or, if the close outran it, a reset.
    match &e {
        HttpError::Malformed { what, .. } => assert!(what.contains("use an https:// URL"), "{what}"),
        HttpError::Io { .. } => {}
        other => panic!("{other}"),
    }
    assert_eq!(health(&server, &dir.join(CERT_FILE)).expect("still serves"), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_to_a_plain_port_says_it_is_plain() {
    let dir = scratch("tls-to-plain");
    pair(&dir, &["127.0.0.1"]);
    let server = TestServer::start(false);
    let https = server.url().replacen("http://", "https://", 1);
    let e = Client::with_ca(&https, Some(TOKEN.into()), Some((&dir.join(CERT_FILE), "the test")))
        .expect("client")
        .get::<Value>("/v1/apps")
        .expect_err("plain port");
    assert!(e.to_string().contains("does not answer TLS"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_handshakes_do_not_stop_the_server() {
    let dir = scratch("garbage");
    let server = tls_server(&dir);
    for round in 0..8 {
        let mut bytes = vec![0u8; 64 + round * 500];
        getrandom::fill(&mut bytes).expect("randomness");
        if round % 2 == 1 {
            // A handshake record header, so that rustls reads on into the garbage.
            bytes[..5].copy_from_slice(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        }
        let mut stream = TcpStream::connect(server.address).expect("connect");
        let _ = stream.write_all(&bytes);
        closed_by_server(stream);
    }
    assert_eq!(health(&server, &dir.join(CERT_FILE)).expect("still serves"), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stalled_handshake_holds_a_slot_until_its_deadline() {
    let dir = scratch("stalled");
    let tls = pair(&dir, &["127.0.0.1"]);
    let server = TestServer::start_configured(false, |server| {
        server
            .with_tls(tls)
            .with_max_connections(1)
            .with_handshake_timeout(Duration::from_millis(500))
    });
    let stalled = TcpStream::connect(server.address).expect("first");
    std::thread::sleep(Duration::from_millis(100));
    // The one slot is taken by a connection that says nothing: the cap
    // counts it, so the next one is closed...
    assert!(health(&server, &dir.join(CERT_FILE)).is_err(), "over the cap");
    // ...until the handshake deadline closes the silent one.
    let started = Instant::now();
    closed_by_server(stalled);
    assert!(started.elapsed() < Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(health(&server, &dir.join(CERT_FILE)).expect("slot free again"), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_files_are_named_with_what_is_wrong() {
    let dir = scratch("bad-files");
    pair(&dir.join("a"), &["localhost"]);
    pair(&dir.join("b"), &["localhost"]);
    let (cert, key) = (dir.join("a").join(CERT_FILE), dir.join("a").join(KEY_FILE));
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not a key\n").expect("write");
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, "-----BEGIN PRIVATE KEY-----\n!!!not base64!!!\n-----END PRIVATE KEY-----\n").expect("write");
    let missing = dir.join("missing.pem");

    let said = |cert: &Path, key: &Path| ServerTls::from_files(cert, key).expect_err("refused").to_string();
    let e = said(&cert, &garbage);
    assert!(e.starts_with(&format!("{} holds no private key", garbage.display())), "{e}");
    let e = said(&cert, &broken);
    assert!(e.starts_with(&format!("{} is not a valid PEM file", broken.display())), "{e}");
    let e = said(&missing, &key);
    assert!(e.starts_with(&format!("cannot read {}", missing.display())), "{e}");
    let e = said(&key, &cert);
    assert!(e.contains("holds no certificate") && e.contains("swapped"), "{e}");
    let e = said(&cert, &dir.join("b").join(KEY_FILE));
    assert!(e.contains("does not belong to the certificate"), "{e}");
    assert!(ServerTls::from_files(&cert, &key).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn self_signed_files_are_private_and_reused() {
    let dir = scratch("reuse");
    let names = self_signed::default_names("127.0.0.1:10000".parse().expect("addr"), &["root.example".into()]);
    let (first, files) = self_signed::load_or_create(&dir, &names).expect("made");
    assert!(files.created);
    let mode = |path: &Path| std::fs::metadata(path).expect("file").permissions().mode() & 0o777;
    assert_eq!((mode(&files.key), mode(&files.cert)), (0o600, 0o644));
    assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 2, "no temporary files left");
    let leaf = read_certificates(&files.cert).expect("cert").remove(0);
    assert_eq!(first.fingerprint(), fingerprint(&leaf));
    assert_eq!(first.fingerprint().len(), 32 * 3 - 1, "AB:CD:... {}", first.fingerprint());

    let (again, reused) = self_signed::load_or_create(&dir, &names).expect("reused");
    assert!(!reused.created);
    assert_eq!(again.fingerprint(), first.fingerprint(), "the same certificate after a restart");

    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    match self_signed::load_or_create(&dir, &names) {
        Err(e @ TlsError::KeyReadable { .. }) => assert!(e.to_string().contains("chmod 600"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A certificate lost after a crash: a new pair, not a half one.
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::remove_file(&files.cert).expect("rm");
    let (fresh, remade) = self_signed::load_or_create(&dir, &names).expect("remade");
    assert!(remade.created && fresh.fingerprint() != first.fingerprint());
    let _ = std::fs::remove_dir_all(&dir);
}
