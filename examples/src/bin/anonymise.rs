//! `anonymise`: the edge stage of the camera pipeline. Finds every face in
//! each frame a camera sends (SeetaFace, model built in), pixelates it,
//! forwards the anonymised frame to the nearest detector
//! (`closest.detect`) and answers the camera with the anonymised frame,
//! the boxes, the detector's findings and its own identity. Raw frames
//! never leave this process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use examples::faces::{load_model, FaceFinder};
use examples::frames::{decode_jpeg, encode_jpeg, ANONYMISED_MARK};
use examples::link::ServiceLink;
use examples::messages::{instance_identity, Anonymised, Detected, Frame, ToDetect};
use examples::server::{init_logs, next_message, serve_each};
use examples::wire::{write_message, WireError};
use rustface::Model;

/// A frame slower than this is logged with where the time went.
const SLOW_FRAME_MS: f64 = 500.0;

/// The edge stage of grove's camera pipeline: anonymise frames, then ask
/// the cloud.
///
/// Listens for cameras (grove's pipeline protocol over TCP, one frame in
/// flight per connection, one thread per camera); each frame is decoded,
/// every face found with SeetaFace's frontal-face cascade (its model is
/// built into this binary) and pixelated, re-encoded, sent to
/// `--detect` (by default `closest.detect`, resolved by the system
/// resolver and re-resolved when its TTL lapses or the detector fails)
/// and answered. Without a detector the camera still gets its anonymised
/// frame, with the reason the detection is missing.
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Address to listen on for cameras.
    #[arg(long, default_value = "0.0.0.0:7000")]
    listen: SocketAddr,
    /// The detector's name ("" to anonymise only).
    #[arg(long, default_value = "closest.detect")]
    detect: String,
    /// The detector's port.
    #[arg(long, default_value_t = 7001)]
    detect_port: u16,
    /// How long to wait for the detector, ms (the camera then gets its
    /// frame without detections rather than late).
    #[arg(long, default_value_t = 500)]
    detect_timeout_ms: u64,
    /// JPEG quality of the anonymised frames (1–100).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Cameras served at once; more are refused.
    #[arg(long, default_value_t = 64)]
    max_cameras: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs("info");
    let model = load_model().context("the built-in SeetaFace model does not parse (a corrupt build?)")?;
    let me = instance_identity();
    let listener = TcpListener::bind(args.listen).with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(instance = %me, listen = %args.listen, detect = %args.detect, "anonymise: SeetaFace frontal model loaded, waiting for cameras");
    println!("anonymise {me}: listening on {}, detector {}:{}", args.listen, args.detect, args.detect_port);
    serve_each(listener, args.max_cameras, move |stream| serve(stream, &args, model.clone(), &me));
    Ok(())
}

/// One camera, frame after frame, until it leaves.
fn serve(mut stream: TcpStream, args: &Args, model: Model, me: &str) -> Result<(), WireError> {
    let mut finder = FaceFinder::new(model);
    let mut detector = (!args.detect.is_empty())
        .then(|| ServiceLink::new(&args.detect, args.detect_port, Duration::from_millis(args.detect_timeout_ms)));
    loop {
        let Some((frame, jpeg)) = next_message::<Frame>(&mut stream)? else { return Ok(()) };
        let started = Instant::now();
        let mut img = match decode_jpeg(&jpeg) {
            Ok(img) => img,
            Err(e) => {
                tracing::warn!(camera = %frame.camera, seq = frame.seq, "undecodable frame: {e}");
                let reply = Anonymised { seq: frame.seq, instance: me.to_owned(), faces: vec![], anonymise_ms: 0.0, detect: None, detect_error: Some(format!("frame refused: {e}")) };
                write_message(&mut stream, &reply, &[])?;
                continue;
            }
        };
        let faces = finder.anonymise(&mut img);
        let out = encode_jpeg(&img, args.quality, &format!("{ANONYMISED_MARK} {me} {} {}", frame.camera, frame.seq))
            .map_err(|e| WireError::Io(std::io::Error::other(e.to_string())))?;
        let anonymise_ms = started.elapsed().as_secs_f64() * 1e3;
        let detect_started = Instant::now();
        let (detect, detect_error) = match detector.as_mut() {
            None => (None, Some("no detector configured".to_owned())),
            Some(link) => match link.exchange::<_, Detected>(&ToDetect { seq: frame.seq, from: me.to_owned() }, &out) {
                Ok((found, _, _)) => (Some(found), None),
                Err(e) => {
                    tracing::warn!("detector {}: {e}", link.name());
                    (None, Some(e.to_string()))
                }
            },
        };
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        if total_ms > SLOW_FRAME_MS {
            let detect_ms = detect.as_ref().map(|d| d.detect_ms);
            let exchange_ms = detect_started.elapsed().as_secs_f64() * 1e3;
            let setup = detector.as_mut().and_then(ServiceLink::take_setup);
            tracing::warn!(camera = %frame.camera, seq = frame.seq,
                "slow frame: {total_ms:.0} ms in all, {anonymise_ms:.0} ms anonymising, {exchange_ms:.0} ms with the detector \
                 (its own time {detect_ms:?} ms; lookup and connect {setup:?})");
        }
        let reply = Anonymised { seq: frame.seq, instance: me.to_owned(), faces, anonymise_ms, detect, detect_error };
        write_message(&mut stream, &reply, &out)?;
    }
}
