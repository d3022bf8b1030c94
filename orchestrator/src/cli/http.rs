//! A small blocking HTTP/1.1 client for the root's API, enough for the CLI:
//! one request per connection (`Connection: close`), `Content-Length`
//! request bodies, and responses framed by `Content-Length`, chunked
//! transfer coding or the end of the connection (RFC 9112 §6.3).
//! `https://` goes through rustls with what [`ClientTls`] trusts.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

use super::tls::{explain, ClientTls, Handshake, TrustError};

/// Connect and read timeouts unless the caller picks others.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response head.
const MAX_HEAD: usize = 64 << 10;
/// Largest response body (a logs answer for many instances is the big one).
const MAX_BODY: u64 = 64 << 20;

/// Where the root's API is: `http[s]://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://`.
    tls: bool,
    /// Host as written, IPv6 literals without brackets.
    host: String,
    port: u16,
    /// A path prefix (`""` or `/something`), for a root behind a proxy.
    prefix: String,
    /// `host:port` as the Host header has it (IPv6 in brackets).
    authority: String,
    /// `http[s]://host:port[/prefix]`, for messages.
    url: String,
}

impl Endpoint {
    /// Reads `http[s]://host[:port][/prefix]` (port 80 or 443 by
    /// default); a bare `host:port` is taken as http.
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let url = url.trim();
        let bad = |why: &str| {
            HttpError::BadUrl(format!(
                "the root's address {url:?} {why}; expected http://host:port or https://host:port, e.g. http://10.0.0.1:10000"
            ))
        };
        let (tls, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some(_) => return Err(bad("has a scheme other than http or https")),
            None => (false, url),
        };
        let (authority, prefix) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        if authority.contains('@') {
            return Err(bad("has user info; pass the token with --token instead"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        let port = match port {
            Some(port) => port.parse::<u16>().map_err(|_| bad("has a bad port"))?,
            None if tls => 443,
            None => 80,
        };
        let prefix = prefix.trim_end_matches('/').to_owned();
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let scheme = if tls { "https" } else { "http" };
        Ok(Endpoint {
            tls,
            url: format!("{scheme}://{authority}{prefix}"),
            host: host.to_owned(),
            port,
            prefix,
            authority,
        })
    }

    /// `http[s]://host:port[/prefix]`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True for `https://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not a URL this client can use.
    #[error("{0}")]
    BadUrl(String),
    /// An `https://` URL, and nothing to check the root's certificate with.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// TLS refused the root (its certificate, or it does not speak TLS).
    #[error("{}", explain(url, trusted, source))]
    Handshake {
        /// The root's URL.
        url: String,
        /// What the client trusted.
        trusted: String,
        /// What rustls said.
        source: rustls::Error,
    },
    /// No connection (refused, unreachable, no such host).
    #[error("cannot reach the root at {url}: {source}")]
    Connect {
        /// The root's URL.
        url: String,
        /// The OS error (`ConnectionRefused`, ...).
        source: io::Error,
    },
    /// Connected, but no (complete) answer in time.
    #[error("the root at {url} did not answer within {} s", after.as_secs_f64())]
    Timeout {
        /// The root's URL.
        url: String,
        /// The read timeout.
        after: Duration,
    },
    /// The connection failed midway.
    #[error("talking to the root at {url}: {source}")]
    Io {
        /// The root's URL.
        url: String,
        /// The OS error.
        source: io::Error,
    },
    /// Not HTTP, or beyond this client's limits.
    #[error("the root at {url} sent a malformed answer: {what}")]
    Malformed {
        /// The root's URL.
        url: String,
        /// What was wrong.
        what: String,
    },
}

/// Requests to one endpoint.
#[derive(Clone, Debug)]
pub struct HttpClient {
    endpoint: Endpoint,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// For `https://`; `None` means the system's CA bundle.
    tls: Option<ClientTls>,
}

impl HttpClient {
    /// A client with [`DEFAULT_TIMEOUT`]s.
    pub fn new(endpoint: Endpoint) -> HttpClient {
        HttpClient {
            endpoint,
            connect_timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_TIMEOUT,
            tls: None,
        }
    }

    /// Trusts what `tls` trusts for an `https://` endpoint.
    pub fn with_tls(mut self, tls: ClientTls) -> HttpClient {
        self.tls = Some(tls);
        self
    }

    /// Other timeouts: for connecting, and for each read or write.
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> HttpClient {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One request: `path` (with its query) below the endpoint, the
    /// `headers` given plus Host, Connection, Content-Length.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<HttpResponse, HttpError> {
        let url = self.endpoint.url.clone();
        let io_error = |source: io::Error| match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout {
                url: url.clone(),
                after: self.read_timeout,
            },
            _ => HttpError::Io { url: url.clone(), source },
        };
        let tcp = self.connect()?;
        tcp.set_read_timeout(Some(self.read_timeout)).map_err(io_error)?;
        tcp.set_write_timeout(Some(self.read_timeout)).map_err(io_error)?;
        let mut stream = if self.endpoint.tls {
            let tls = match &self.tls {
                Some(tls) => tls.clone(),
                None => ClientTls::system()?,
            };
            match tls.connect(&self.endpoint.host, tcp) {
                Ok(stream) => Stream::Tls(Box::new(stream)),
                Err(Handshake::Io(e)) => return Err(io_error(e)),
                Err(Handshake::Tls(source)) => {
                    return Err(HttpError::Handshake {
                        url,
                        trusted: tls.trusted().to_owned(),
                        source,
                    })
                }
            }
        } else {
            Stream::Plain(tcp)
        };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.endpoint.prefix, self.endpoint.authority
        );
        head.push_str(&format!(
            "User-Agent: grove/{}\r\nAccept: application/json\r\n",
            env!("CARGO_PKG_VERSION")
        ));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let written = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.unwrap_or_default()))
            .and_then(|()| stream.flush());
        // A server that refuses a body (413) may answer and close before
        // taking all of it: its answer is still worth reading.
        let read = read_response(&mut BufReader::new(&mut stream), method);
        match (written, read) {
            (_, Ok(response)) => Ok(response),
            (Err(e), Err(_)) => Err(io_error(e)),
            (Ok(()), Err(e)) if e.kind() == io::ErrorKind::InvalidData => Err(HttpError::Malformed { url, what: e.to_string() }),
            (Ok(()), Err(e)) => Err(io_error(e)),
        }
    }

    fn connect(&self) -> Result<TcpStream, HttpError> {
        let url = &self.endpoint.url;
        let connect_error = |source| HttpError::Connect { url: url.clone(), source };
        let addresses = (self.endpoint.host.as_str(), self.endpoint.port)
            .to_socket_addrs()
            .map_err(connect_error)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        for address in addresses {
            match TcpStream::connect_timeout(&address, self.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(connect_error(last))
    }
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Reads one response (after any 1xx ones). Malformed input is
/// `InvalidData`.
pub fn read_response(reader: &mut impl BufRead, method: &str) -> io::Result<HttpResponse> {
    loop {
        let (status, headers) = read_head(reader)?;
        if (100..200).contains(&status) {
            continue;
        }
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let body = if method == "HEAD" || status == 204 || status == 304 {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked")) {
            read_chunked(reader)?
        } else if let Some(length) = header("content-length") {
            let length: u64 = length
                .trim()
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
            if length > MAX_BODY {
                return Err(invalid(format!("a body of {length} bytes is beyond this client's {MAX_BODY}")));
            }
            let mut body = vec![0; length as usize];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            Read::take(&mut *reader, MAX_BODY + 1).read_to_end(&mut body)?;
            if body.len() as u64 > MAX_BODY {
                return Err(invalid(format!("a body beyond this client's {MAX_BODY} bytes")));
            }
            body
        };
        return Ok(HttpResponse { status, headers, body });
    }
}

/// Status line and headers (names lowercased).
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut budget = MAX_HEAD;
    let status_line = read_line(reader, &mut budget)?;
    // 0x15 and 0x16 open a TLS alert or handshake record: the client
    // spoke plain HTTP to a TLS port, and the server said so in TLS.
    if status_line.starts_with(['\x15', '\x16']) {
        return Err(invalid("it answers in TLS, not plain HTTP: use an https:// URL".into()));
    }
    let mut parts = status_line.splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse::<u16>().ok().filter(|c| (100..600).contains(c)),
        _ => None,
    }
    .ok_or_else(|| invalid(format!("not an HTTP/1.x status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let header = read_line(reader, &mut budget)?;
        if header.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = header.split_once(':').ok_or_else(|| invalid(format!("not a header: {header:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// One head line without its line end, taken from a `budget` of bytes.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> io::Result<String> {
    let mut raw = Vec::new();
    let n = Read::take(&mut *reader, *budget as u64 + 1).read_until(b'\n', &mut raw)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before an answer",
        ));
    }
    if n > *budget {
        return Err(invalid(format!("a response head beyond {MAX_HEAD} bytes")));
    }
    *budget -= n;
    String::from_utf8(raw)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|_| invalid("a non-UTF-8 header".into()))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A chunked body (RFC 9112 §7.1); trailers are read and dropped.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let malformed = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunked body: {what}"));
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        Read::take(&mut *reader, 1024).read_line(&mut size_line)?;
        let size_text = size_line.trim_end().split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| malformed("a chunk size that is not hex"))?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                if Read::take(&mut *reader, MAX_HEAD as u64).read_line(&mut trailer)? == 0 || trailer.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() as u64 + size > MAX_BODY {
            return Err(malformed("beyond this client's limit"));
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(malformed("a chunk not followed by CRLF"));
        }
    }
}

/// A path segment with everything but RFC 3986's unreserved characters
/// percent-encoded, so that a reference can never leave its segment.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8]) -> io::Result<HttpResponse> {
        read_response(&mut &raw[..], "GET")
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://10.0.0.1:10000/").expect("parse");
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str(), e.url()),
            ("10.0.0.1", 10000, "", "http://10.0.0.1:10000")
        );
        assert_eq!(Endpoint::parse("root.local:8080").expect("bare").url(), "http://root.local:8080");
        assert_eq!(Endpoint::parse("HTTP://[::1]:9/grove/").expect("v6").url(), "http://[::1]:9/grove");
        assert_eq!(Endpoint::parse("http://[::1]:9").expect("v6").authority, "[::1]:9");
        assert_eq!(Endpoint::parse("http://h").expect("default port").port, 80);
        let tls = Endpoint::parse("HTTPS://root:10000/g").expect("https");
        assert_eq!((tls.is_tls(), tls.url()), (true, "https://root:10000/g"));
        assert_eq!(Endpoint::parse("https://root").expect("default port").port, 443);
        assert!(!Endpoint::parse("root:1").expect("bare").is_tls());
        for bad in ["ftp://x", "http://:1", "http://x:99999", "http://u:p@x:1", "http://[::1", "https://"] {
            assert!(matches!(Endpoint::parse(bad), Err(HttpError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn responses_by_length_chunks_or_close() {
        let r = read(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}trailing").expect("length");
        assert_eq!((r.status, r.body.as_slice(), r.header("x-a")), (201, &b"{}"[..], Some("b")));
        let r =
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n").expect("chunked");
        assert_eq!(r.body, b"abcde");
        let r = read(b"HTTP/1.0 200 OK\nServer: old\n\nuntil close").expect("close");
        assert_eq!(r.body, b"until close");
        let r = read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").expect("1xx");
        assert_eq!(r.status, 404);
    }

    #[test]
    fn malformed_responses_are_invalid_data() {
        for raw in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert_eq!(
                read(raw).expect_err("malformed").kind(),
                io::ErrorKind::InvalidData,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let alert = read(b"\x15\x03\x03\x00\x02\x02\x32").expect_err("a TLS alert");
        assert!(alert.to_string().contains("use an https:// URL"), "{alert}");
        assert_eq!(read(b"").expect_err("empty").kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").expect_err("short").kind(),
            io::ErrorKind::UnexpectedEof
        );
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(read(huge.as_bytes()).expect_err("huge").kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("ms2.cam.default"), "ms2.cam.default");
        assert_eq!(encode_segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }

    #[test]
    fn refused_connections_say_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = HttpClient::new(Endpoint::parse(&format!("http://127.0.0.1:{port}")).expect("url"));
        match client.send("GET", "/v1/health", &[], None) {
            Err(HttpError::Connect { source, .. }) => assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
    }
}
