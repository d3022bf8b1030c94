//! The live view: one block (cameras, the services' instances, the latest
//! events) redrawn in place on a terminal; in a log or a pipe printed when
//! who serves whom changes, or every five seconds.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use netns_tests::pipeline::{Pipeline, ANONYMISE, DETECT};
use orchestrator::model::InstanceState;
use serde_json::Value;

/// Where a node key is.
pub fn site_of(key: &str) -> &'static str {
    match key.get(..3) {
        Some("fra") => "Frankfurt",
        Some("muc") => "Munich",
        Some("mil") => "Milan",
        _ => "?",
    }
}

/// Redraws the block.
pub struct View {
    tty: bool,
    drawn_lines: usize,
    last_printed: Option<(String, Instant)>,
    pub events: Vec<String>,
}

/// How often a log gets the block when nothing moved.
const LOG_EVERY: Duration = Duration::from_secs(5);

impl View {
    pub fn new() -> View {
        View { tty: std::io::stdout().is_terminal(), drawn_lines: 0, last_printed: None, events: Vec::new() }
    }

    /// A line under the table (kept: the last six).
    pub fn event(&mut self, line: String) {
        self.events.push(line);
    }

    /// Draws the current state (in place on a terminal; when it moved
    /// otherwise), `clock` seconds into the demo.
    pub fn draw(&mut self, p: &Pipeline, clock: f64) {
        let (body, moved) = render(p, &self.events);
        let mut out = std::io::stdout().lock();
        if self.tty {
            if self.drawn_lines > 0 {
                let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
            }
            let text = format!("  [{clock:5.1} s]\n{body}");
            let _ = write!(out, "{text}");
            self.drawn_lines = text.lines().count();
        } else if self.last_printed.as_ref().is_none_or(|(last, at)| *last != moved || at.elapsed() >= LOG_EVERY) {
            let _ = write!(out, "  [{clock:5.1} s]\n{body}");
            self.last_printed = Some((moved, Instant::now()));
        }
        let _ = out.flush();
    }

    /// Leaves the block as it is: the next output goes below it.
    pub fn detach(&mut self) {
        self.drawn_lines = 0;
        self.last_printed = None;
    }
}

/// The block, and what a log reader must not miss in it (who serves each
/// camera, the instances' places and states, the events): one read of
/// each camera's reports and one API call per service.
fn render(p: &Pipeline, events: &[String]) -> (String, String) {
    let mut s = format!(
        "  {:<8} {:<30} {:<26} {:>15} {:>4} {:>7} {:>7} {:>7}\n",
        "camera", "served by (anonymise)", "detector", "rtt p50/p99 ms", "fps", "frames", "blurred", "persons"
    );
    let mut moved = events.len().to_string();
    for camera in p.cameras() {
        let r = p.latest(&camera.name).unwrap_or(Value::Null);
        let ms = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.0}"));
        let (anonymiser, detector) = (instance(p, &r["anonymiser"]), instance(p, &r["detector"]));
        moved.push_str(&format!(" {anonymiser} {detector}"));
        s.push_str(&format!(
            "  {:<8} {:<30} {:<26} {:>15} {:>4} {:>7} {:>7} {:>7}\n",
            camera.name,
            anonymiser,
            detector,
            format!("{} / {}", ms(&r["rtt_p50_ms"]), ms(&r["rtt_p99_ms"])),
            r["fps"].as_u64().unwrap_or(0),
            r["frames"].as_u64().unwrap_or(0),
            r["faces_blurred"].as_u64().unwrap_or(0),
            r["persons"].as_u64().unwrap_or(0),
        ));
    }
    for service in [ANONYMISE, DETECT] {
        let placed: Vec<String> = p
            .o
            .service(service)
            .map(|v| {
                v.instances
                    .iter()
                    .map(|i| {
                        let node = i.node.as_deref().and_then(|n| p.o.key_of(n)).unwrap_or("-");
                        let state = if i.state == InstanceState::Running { "running".to_owned() } else { i.state.to_string().to_lowercase() };
                        format!("#{} {state} on {node}", i.number)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let placed = if placed.is_empty() { "-".to_owned() } else { placed.join(", ") };
        moved.push_str(&format!(" {placed}"));
        s.push_str(&format!("  {service}: {placed}\n"));
    }
    for e in events.iter().rev().take(6).rev() {
        s.push_str(&format!("  {e}\n"));
    }
    (s, moved)
}

/// `instance-0.anonymise.pipeline.prod@10.18.0.70` as `#0 on mucwa (Munich)`.
fn instance(p: &Pipeline, identity: &Value) -> String {
    let Some(id) = identity.as_str() else { return "-".to_owned() };
    let number = id.strip_prefix("instance-").and_then(|r| r.split('.').next()).unwrap_or("?");
    match p.node_of(id) {
        Some(key) => format!("#{number} on {key} ({})", site_of(&key)),
        None => id.to_owned(),
    }
}
