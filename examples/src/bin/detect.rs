//! `detect`: the cloud stage of the camera pipeline. Receives anonymised
//! frames from anonymisers and answers with the people found in each and
//! any face still recognisable (none, if the edge did its job).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use examples::detector::{Detector, DEFAULT_CASCADES, FACE_FILE, PERSON_FILE};
use examples::frames::decode_jpeg;
use examples::messages::{instance_identity, Detected, ToDetect};
use examples::wire::{read_message, write_message, WireError};

/// The cloud stage of grove's camera pipeline: find people in anonymised
/// frames.
///
/// Loads two of OpenCV's trained Haar cascades once at start-up (upper
/// bodies for people, alt2 frontal faces as a privacy check) from
/// `--cascades` (Debian/Ubuntu: `apt-get install opencv-data`), then
/// serves anonymisers over grove's pipeline protocol, one thread per
/// connection, answering each frame with the boxes and the time taken.
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Address to listen on for anonymisers.
    #[arg(long, default_value = "0.0.0.0:7001")]
    listen: SocketAddr,
    /// Directory holding the cascades.
    #[arg(long, default_value = DEFAULT_CASCADES)]
    cascades: PathBuf,
    /// Connections served at once; more are refused.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();
    let detector = Arc::new(Detector::load(&args.cascades).context("detect: cannot load its models")?);
    let me = instance_identity();
    let listener = TcpListener::bind(args.listen).with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(instance = %me, listen = %args.listen, "detect: cascades {PERSON_FILE} and {FACE_FILE} loaded in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    println!("detect {me}: listening on {}", args.listen);
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= args.max_connections {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("refusing a connection: {} already open", args.max_connections);
            continue;
        }
        let (detector, me, busy) = (detector.clone(), me.clone(), busy.clone());
        std::thread::spawn(move || {
            let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            if let Err(e) = serve(stream, &detector, &me) {
                tracing::info!(%peer, "connection ended: {e}");
            }
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn serve(mut stream: TcpStream, detector: &Detector, me: &str) -> Result<(), WireError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    loop {
        let (frame, jpeg): (ToDetect, Vec<u8>) = match read_message(&mut stream) {
            Ok(m) => m,
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let started = Instant::now();
        let (persons, faces) = match decode_jpeg(&jpeg) {
            Ok(img) => detector.detect(&image::imageops::grayscale(&img)),
            Err(e) => {
                tracing::warn!(from = %frame.from, seq = frame.seq, "undecodable frame: {e}");
                (vec![], vec![])
            }
        };
        if !faces.is_empty() {
            tracing::warn!(from = %frame.from, seq = frame.seq, "{} face(s) still recognisable in an anonymised frame", faces.len());
        }
        let reply = Detected { seq: frame.seq, instance: me.to_owned(), persons, faces, detect_ms: started.elapsed().as_secs_f64() * 1e3 };
        write_message(&mut stream, &reply, &[])?;
    }
}
