//! `grove logs <service>`: what its instances wrote, optionally followed.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use super::client::{print_json, ClientArgs};
use crate::api::types::LogsView;

/// `grove logs` arguments.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The service: `service[.app[.namespace]]`.
    pub service: String,
    /// Bytes from the end of each instance's output.
    #[arg(long, default_value_t = 65536)]
    pub tail: u64,
    /// Keep printing what is written (every 500 ms) until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only this instance number.
    #[arg(long)]
    pub instance: Option<u32>,
    /// Where the root is and how to talk to it.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `grove logs`.
pub fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let client = args.client.client()?;
    let path = format!("/v1/services/{}/logs?tail={}", args.service, args.tail);
    let mut seen: HashMap<u32, u64> = HashMap::new();
    loop {
        let view: LogsView = client.get(&path)?;
        if args.client.json() && !args.follow {
            print_json(&view)?;
            return Ok(ExitCode::SUCCESS);
        }
        let several = view.instances.len() > 1 && args.instance.is_none();
        for i in view.instances.iter().filter(|i| args.instance.is_none_or(|n| n == i.number)) {
            if let Some(error) = &i.error {
                eprintln!("instance {}: {error}", i.number);
                continue;
            }
            let new = new_text(&i.text, i.total_bytes, seen.get(&i.number).copied());
            seen.insert(i.number, i.total_bytes);
            if new.is_empty() {
                continue;
            }
            if several {
                println!("==> instance {} on {} <==", i.number, i.node.as_deref().unwrap_or("?"));
            }
            print!("{new}");
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What of `text` (the tail ending at byte `total`) lies beyond `seen`.
pub fn new_text(text: &str, total: u64, seen: Option<u64>) -> String {
    let Some(seen) = seen else { return text.to_owned() };
    let fresh = total.saturating_sub(seen) as usize;
    if fresh == 0 {
        return String::new();
    }
    if fresh > text.len() {
        return format!("… ({} bytes skipped)\n{text}", fresh - text.len());
    }
    String::from_utf8_lossy(&text.as_bytes()[text.len() - fresh..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::new_text;

    #[test]
    fn follow_prints_only_what_is_new() {
        assert_eq!(new_text("abc\n", 4, None), "abc\n");
        assert_eq!(new_text("abc\ndef\n", 8, Some(4)), "def\n");
        assert_eq!(new_text("abc\n", 4, Some(4)), "");
        assert_eq!(new_text("ef\n", 10, Some(2)), "… (5 bytes skipped)\nef\n");
    }
}
