//! `camera`: a camera client of grove's pipeline. Produces frames (a real
//! photograph, panned), finds its anonymiser by name through the system
//! resolver, streams frames over a kept connection and reports what comes
//! back: frames/s, round-trip percentiles, who served it.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use examples::frames::{encode_jpeg, RAW_MARK};
use examples::link::ServiceLink;
use examples::messages::{Anonymised, Frame};
use examples::photo::Pan;
use examples::stats::Window;
use serde_json::json;

/// A camera of grove's pipeline: stream frames to the nearest anonymiser.
///
/// Frames are crops of a real photograph (the 1927 Solvay conference,
/// built in) sweeping across it, JPEG-encoded. The anonymiser is found by
/// `--target` through the system resolver (getaddrinfo; in a grove
/// workload `closest.anonymise` resolves through the node's resolver with
/// the app's search list), re-resolved when the answer's TTL lapses (and
/// followed if it moved) and at once when the connection breaks or an
/// answer is later than `--timeout-ms`. One frame is in flight at a time.
///
/// Prints a line a second (`--json`: a JSON object a second, and one per
/// change of anonymiser with the gap between the last frame served by the
/// old one and the first served by the new).
#[derive(Debug, Parser)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// This camera's name (in reports and in each frame).
    #[arg(long, default_value = "camera")]
    name: String,
    /// The anonymiser's name.
    #[arg(long, default_value = "closest.anonymise")]
    target: String,
    /// The anonymiser's port.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// Frames per second (0: as fast as answers come).
    #[arg(long, default_value_t = 5.0)]
    fps: f64,
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "480x360", value_parser = parse_size)]
    size: (u32, u32),
    /// JPEG quality (1–100).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Longest wait for connecting and for an answer, ms (then the
    /// anonymiser counts as gone: resolve again). Above the anonymiser's
    /// own wait for the detector (500 ms) plus its processing.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Stop after this many seconds (0: run until killed).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Machine-readable output: one JSON object per line.
    #[arg(long)]
    json: bool,
    /// With --json, also one object per frame: round trip, the stages'
    /// processing times, who served it (for benchmarks).
    #[arg(long)]
    frames_log: bool,
    /// Write the last anonymised frame to this file (JPEG).
    #[arg(long)]
    save_last: Option<std::path::PathBuf>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("WIDTHxHEIGHT, e.g. 480x360")?;
    let w: u32 = w.parse().map_err(|_| format!("width {w:?} is not a number"))?;
    let h: u32 = h.parse().map_err(|_| format!("height {h:?} is not a number"))?;
    if !(32..=4096).contains(&w) || !(32..=4096).contains(&h) {
        return Err("each side between 32 and 4096".into());
    }
    Ok((w, h))
}

/// What the camera has seen so far.
#[derive(Default)]
struct Tally {
    frames: u64,
    errors: u64,
    faces_blurred: u64,
    switches: u64,
    anonymiser: Option<String>,
    detector: Option<String>,
    last_faces: usize,
    last_persons: usize,
    last_served: Option<Instant>,
    last_error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    examples::server::init_logs("warn");
    let pan = Pan::new(args.size.0, args.size.1, 120).context("the built-in photograph does not decode (a corrupt build?)")?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let mut link = ServiceLink::new(&args.target, args.port, timeout);
    let started = Instant::now();
    let period = (args.fps > 0.0).then(|| Duration::from_secs_f64(1.0 / args.fps));
    let mut rtts = Window::new(Duration::from_secs(5));
    let mut served_in_second = Window::new(Duration::from_secs(1));
    let mut tally = Tally::default();
    let mut next_report = started + Duration::from_secs(1);
    let mut next_frame = started;
    let mut out = std::io::stdout().lock();
    for seq in 0u64.. {
        if args.duration > 0.0 && started.elapsed().as_secs_f64() >= args.duration {
            break;
        }
        if let Some(period) = period {
            let now = Instant::now();
            if next_frame > now {
                std::thread::sleep(next_frame - now);
            }
            // Late frames are not made up for: at most one period behind.
            next_frame = Instant::now().checked_sub(period).map_or(next_frame, |floor| next_frame.max(floor)) + period;
        }
        let jpeg = encode_jpeg(&pan.frame(seq), args.quality, &format!("{RAW_MARK} {} {seq}", args.name))?;
        let sent = Instant::now();
        match link.exchange::<_, Anonymised>(&Frame { camera: args.name.clone(), seq }, &jpeg) {
            Ok((reply, body, _peer)) => {
                let now = Instant::now();
                let rtt_ms = now.duration_since(sent).as_secs_f64() * 1e3;
                rtts.push(now, rtt_ms);
                if args.frames_log && args.json {
                    let detect_ms = reply.detect.as_ref().map(|d| d.detect_ms);
                    let line = json!({"event": "frame", "seq": seq, "rtt_ms": rtt_ms, "anonymise_ms": reply.anonymise_ms, "detect_ms": detect_ms, "anonymiser": reply.instance, "detector": reply.detect.as_ref().map(|d| &d.instance)});
                    emit(&mut out, true, &line, String::new);
                }
                served_in_second.push(now, 1.0);
                if tally.anonymiser.as_deref() != Some(reply.instance.as_str()) {
                    if let (Some(from), Some(last)) = (tally.anonymiser.take(), tally.last_served) {
                        tally.switches += 1;
                        let gap = now.duration_since(last).as_secs_f64();
                        let t = started.elapsed().as_secs_f64();
                        let line = json!({"event": "switch", "camera": args.name, "t": t, "from": from, "to": reply.instance, "gap_s": gap});
                        emit(&mut out, args.json, &line, || format!("[{t:7.1}s] {}: now served by {} (was {from}; {gap:.2} s without frames)", args.name, reply.instance));
                    }
                    tally.anonymiser = Some(reply.instance.clone());
                }
                tally.frames += 1;
                tally.faces_blurred += reply.faces.len() as u64;
                tally.last_faces = reply.faces.len();
                tally.last_served = Some(now);
                match &reply.detect {
                    Some(d) => {
                        tally.detector = Some(d.instance.clone());
                        tally.last_persons = d.persons.len();
                        tally.last_error = None;
                    }
                    None => tally.last_error = reply.detect_error.clone(),
                }
                if let Some(path) = &args.save_last {
                    let _ = std::fs::write(path, &body);
                }
            }
            Err(e) => {
                tally.errors += 1;
                tracing::info!("frame {seq}: {e}");
                tally.last_error = Some(e.to_string());
                // Do not hammer a resolver that has no answer yet.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let now = Instant::now();
        if now >= next_report {
            next_report += Duration::from_secs(1);
            served_in_second.expire(now);
            report(&mut out, &args, started, &tally, &rtts, served_in_second.len());
        }
    }
    report(&mut out, &args, started, &tally, &rtts, served_in_second.len());
    Ok(())
}

fn report(out: &mut impl Write, args: &Args, started: Instant, tally: &Tally, rtts: &Window, fps: usize) {
    let t = started.elapsed().as_secs_f64();
    let p50 = rtts.percentile(50.0);
    let p99 = rtts.percentile(99.0);
    let line = json!({
        "camera": args.name, "t": t, "frames": tally.frames, "fps": fps, "errors": tally.errors,
        "rtt_p50_ms": p50, "rtt_p99_ms": p99, "anonymiser": tally.anonymiser, "detector": tally.detector,
        "faces": tally.last_faces, "persons": tally.last_persons, "faces_blurred": tally.faces_blurred,
        "switches": tally.switches, "last_error": tally.last_error,
    });
    emit(out, args.json, &line, || {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "[{t:7.1}s] {}: {fps} fps, rtt p50 {} / p99 {} ms, anonymiser {}, detector {}, faces {} (blurred {} in all), persons {}{}",
            args.name,
            ms(p50),
            ms(p99),
            tally.anonymiser.as_deref().unwrap_or("-"),
            tally.detector.as_deref().unwrap_or("-"),
            tally.last_faces,
            tally.faces_blurred,
            tally.last_persons,
            tally.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default(),
        )
    });
}

fn emit(out: &mut impl Write, json: bool, line: &serde_json::Value, text: impl FnOnce() -> String) {
    let _ = if json { writeln!(out, "{line}") } else { writeln!(out, "{}", text()) };
    let _ = out.flush();
}
