//! `detect`: the cloud stage of the camera pipeline. Receives anonymised
//! frames from anonymisers and answers with the people found in each and
//! any face still recognisable (none, if the edge did its job).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use examples::detector::{Detector, DEFAULT_CASCADES, FACE_FILE, PERSON_FILE};
use examples::frames::decode_jpeg;
use examples::messages::{instance_identity, Detected, ToDetect};
use examples::server::{init_logs, next_message, serve_each};
use examples::wire::{write_message, WireError};

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
    init_logs("info");
    let started = Instant::now();
    let detector = Detector::load(&args.cascades).context("detect: cannot load its models")?;
    let me = instance_identity();
    let listener = TcpListener::bind(args.listen).with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(instance = %me, listen = %args.listen, "detect: cascades {PERSON_FILE} and {FACE_FILE} loaded in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    println!("detect {me}: listening on {}", args.listen);
    serve_each(listener, args.max_connections, move |stream| serve(stream, &detector, &me));
    Ok(())
}

fn serve(mut stream: TcpStream, detector: &Detector, me: &str) -> Result<(), WireError> {
    loop {
        let Some((frame, jpeg)) = next_message::<ToDetect>(&mut stream)? else { return Ok(()) };
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
