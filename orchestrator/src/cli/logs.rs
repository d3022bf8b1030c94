//! `grove logs <service>`: what its instances wrote (stdout and stderr,
//! interleaved), fetched by the root from their workers; `--follow` asks
//! again every 500 ms and prints what is new. [`fresh`] is the byte
//! arithmetic, [`Printer`] what is shown.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::client::{finish, write_json, Client, ClientArgs};
use super::http::encode_segment;
use crate::api::types::{InstanceLogs, LogsView};

/// `grove logs` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "With several instances, each one's text comes under a `==> instance N on NODE <==` header.\n\n\
Examples:\n  grove logs web\n  grove logs web.shop.prod -f --instance 1\n  grove logs web --tail 1024 -o json"
)]
pub struct LogsArgs {
    /// The service: `service[.app[.namespace]]`, e.g. `web`
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Bytes from the end of each instance's output, e.g. `--tail 1024`
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub tail: u64,
    /// Keep printing what the instances write (asking every 500 ms) until Ctrl-C
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only this instance, e.g. `--instance 0`
    #[arg(long, value_name = "N")]
    pub instance: Option<u32>,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How often `--follow` asks.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// The root gives each worker 3 s; more than the default read timeout.
const LOGS_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `grove logs`.
pub fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    finish(
        args.client
            .client()
            .and_then(|client| logs(&client.with_read_timeout(LOGS_READ_TIMEOUT), args, &mut std::io::stdout().lock())),
    )
}

/// Prints the logs, once or (with `--follow`) until interrupted.
pub fn logs(client: &Client, args: &LogsArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/services/{}/logs?tail={}", encode_segment(&args.service), args.tail);
    let mut printer = Printer::new(args.client.json());
    let mut first = true;
    loop {
        let mut view: LogsView = client.get(&path)?;
        if let Some(number) = args.instance {
            let numbers: Vec<String> = view.instances.iter().map(|i| i.number.to_string()).collect();
            view.instances.retain(|i| i.number == number);
            if first && view.instances.is_empty() {
                anyhow::bail!(
                    "{} has no instance {number} (instances: {})",
                    view.service,
                    if numbers.is_empty() { "none".into() } else { numbers.join(", ") }
                );
            }
        }
        if !args.follow && args.client.json() {
            write_json(out, &view)?;
            return Ok(ExitCode::SUCCESS);
        }
        printer.print(&view, out)?;
        out.flush()?;
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        first = false;
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// What of an instance's tail is new.
#[derive(Debug, PartialEq, Eq)]
pub struct Fresh<'a> {
    /// Bytes written since last time that the tail no longer reaches back to.
    pub skipped: u64,
    /// The new text.
    pub text: &'a str,
    /// The byte count went back: the instance started over.
    pub restarted: bool,
}

/// `text` is the last bytes of `total` written; `seen` is how many were
/// printed before (none the first time, when the whole tail is new). The
/// text is lossy UTF-8, so its length stands for the bytes it covers; a cut
/// inside a character moves to the next whole one.
pub fn fresh(seen: Option<u64>, total: u64, text: &str) -> Fresh<'_> {
    let whole = Fresh {
        skipped: 0,
        text,
        restarted: false,
    };
    let Some(seen) = seen else { return whole };
    if total < seen {
        return Fresh { restarted: true, ..whole };
    }
    let new = total - seen;
    let length = text.len() as u64;
    if new > length {
        return Fresh {
            skipped: new - length,
            ..whole
        };
    }
    let mut start = text.len() - new as usize;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    Fresh {
        text: &text[start..],
        ..whole
    }
}

/// Prints successive [`LogsView`]s: new text only, a header whenever the
/// instance changes (when there are several), errors once each.
pub struct Printer {
    json: bool,
    seen: HashMap<u32, u64>,
    errors: HashMap<u32, String>,
    /// The instance whose text was printed last.
    current: Option<u32>,
    /// False when the last text did not end its line.
    at_line_start: bool,
}

impl Printer {
    /// A printer that has seen nothing; `json` prints one JSON object per
    /// new piece (`--follow -o json`).
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            seen: HashMap::new(),
            errors: HashMap::new(),
            current: None,
            at_line_start: true,
        }
    }

    /// Prints what is new in `view`.
    pub fn print(&mut self, view: &LogsView, out: &mut dyn Write) -> anyhow::Result<()> {
        let several = view.instances.len() > 1 || self.seen.len() > 1;
        for instance in &view.instances {
            if let Some(error) = &instance.error {
                if self.errors.get(&instance.number) != Some(error) {
                    self.header(instance, several, out)?;
                    writeln!(out, "(no output: {error})")?;
                    self.at_line_start = true;
                    self.errors.insert(instance.number, error.clone());
                }
                continue;
            }
            self.errors.remove(&instance.number);
            let piece = fresh(self.seen.get(&instance.number).copied(), instance.total_bytes, &instance.text);
            self.seen.insert(instance.number, instance.total_bytes);
            if piece.text.is_empty() && piece.skipped == 0 && !piece.restarted {
                continue;
            }
            if self.json {
                let line = serde_json::json!({"number": instance.number, "node": instance.node, "text": piece.text,
                    "skipped": piece.skipped, "restarted": piece.restarted, "total_bytes": instance.total_bytes});
                writeln!(out, "{line}")?;
                continue;
            }
            self.header(instance, several, out)?;
            if piece.restarted {
                self.end_line(out)?;
                writeln!(out, "… (instance {} started over)", instance.number)?;
            }
            if piece.skipped > 0 {
                self.end_line(out)?;
                writeln!(out, "… ({} bytes skipped)", piece.skipped)?;
            }
            out.write_all(piece.text.as_bytes())?;
            if !piece.text.is_empty() {
                self.at_line_start = piece.text.ends_with('\n');
            }
        }
        Ok(())
    }

    fn header(&mut self, instance: &InstanceLogs, several: bool, out: &mut dyn Write) -> anyhow::Result<()> {
        if several && self.current != Some(instance.number) {
            self.end_line(out)?;
            writeln!(
                out,
                "==> instance {} on {} <==",
                instance.number,
                instance.node.as_deref().unwrap_or("?")
            )?;
        }
        self.current = Some(instance.number);
        Ok(())
    }

    fn end_line(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        if !self.at_line_start {
            writeln!(out)?;
            self.at_line_start = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::{TestServer, TOKEN};
    use crate::cli::client::OutputFormat;

    #[test]
    fn fresh_bytes() {
        assert_eq!(
            fresh(None, 4, "abc\n"),
            Fresh {
                skipped: 0,
                text: "abc\n",
                restarted: false
            }
        );
        assert_eq!(fresh(Some(4), 8, "abc\ndef\n").text, "def\n");
        assert_eq!(fresh(Some(8), 8, "abc\ndef\n").text, "");
        assert_eq!(
            fresh(Some(2), 10, "ef\n"),
            Fresh {
                skipped: 5,
                text: "ef\n",
                restarted: false
            }
        );
        assert_eq!(
            fresh(Some(9), 3, "ab\n"),
            Fresh {
                skipped: 0,
                text: "ab\n",
                restarted: true
            }
        );
        // 2 new bytes end inside "é" (2 bytes) + "\n": the cut moves to a whole character.
        assert_eq!(fresh(Some(1), 3, "é\n").text, "\n");
    }

    fn logs(pieces: &[(u32, &str, u64)]) -> LogsView {
        LogsView {
            service: "web.shop.prod".into(),
            instances: pieces
                .iter()
                .map(|&(number, text, total_bytes)| InstanceLogs {
                    number,
                    node: Some(format!("n{number}")),
                    text: text.into(),
                    total_bytes,
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn following_prints_only_what_is_new_under_headers() {
        let mut printer = Printer::new(false);
        let mut out = Vec::new();
        printer.print(&logs(&[(0, "a\n", 2), (1, "b", 1)]), &mut out).expect("print");
        printer.print(&logs(&[(0, "a\n", 2), (1, "b c\n", 4)]), &mut out).expect("print");
        printer.print(&logs(&[(0, "xyz\n", 12), (1, "b c\n", 4)]), &mut out).expect("print");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "==> instance 0 on n0 <==\na\n==> instance 1 on n1 <==\nb c\n==> instance 0 on n0 <==\n… (6 bytes skipped)\nxyz\n"
        );
        let mut single = Printer::new(false);
        let mut out = Vec::new();
        single.print(&logs(&[(0, "one", 3)]), &mut out).expect("print");
        single.print(&logs(&[(0, "one two\n", 8)]), &mut out).expect("print");
        assert_eq!(String::from_utf8_lossy(&out), "one two\n");
    }

    #[test]
    fn logs_against_the_fake_root() {
        let server = TestServer::start(false);
        let client = Client::new(&server.url(), Some(TOKEN.into())).expect("client");
        let args = |instance| LogsArgs {
            service: "ms2.cam.default".into(),
            tail: 100,
            follow: false,
            instance,
            client: ClientArgs {
                root: None,
                token: None,
                token_file: None,
                ca: None,
                output: OutputFormat::Text,
            },
        };
        let mut out = Vec::new();
        super::logs(&client, &args(None), &mut out).expect("logs");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "==> instance 0 on munich-1 <==\nhello from instance-0\n==> instance 1 on munich-2 <==\nhello from instance-1\n"
        );
        let mut out = Vec::new();
        super::logs(&client, &args(Some(1)), &mut out).expect("logs");
        assert_eq!(String::from_utf8_lossy(&out), "hello from instance-1\n");
        let e = super::logs(&client, &args(Some(7)), &mut Vec::new()).expect_err("no such instance");
        assert_eq!(e.to_string(), "ms2.cam.default has no instance 7 (instances: 0, 1)");
    }
}
