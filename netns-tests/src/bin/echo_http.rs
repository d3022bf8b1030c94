//! `echo_http`: a tiny HTTP server for orchestrator tests and benchmarks:
//! answers every request on `--port` (default 8080) with the instance it
//! is (`$GROVE_INSTANCE`, set by the worker) and its address.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port = std::env::args().skip_while(|a| a != "--port").nth(1).unwrap_or_else(|| "8080".into());
    let listener = TcpListener::bind(format!("0.0.0.0:{port}"))?;
    let me = std::env::var("GROVE_INSTANCE").unwrap_or_else(|_| "unknown".into());
    let address = std::env::var("GROVE_ADDRESS").unwrap_or_default();
    println!("echo_http: {me} listening on {address}:{port}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut buf = [0u8; 2048];
        let _ = stream.read(&mut buf);
        let body = format!("{me} {address}\n");
        let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    }
    Ok(())
}
