//! The root's store survives being SIGKILLed: every write a killed process
//! saw committed is there when the store reopens, and no transaction is
//! half-applied.
//!
//! A real process, not a simulated crash: the test binary re-executes
//! itself (`--exact child_role`) with GROVE_STORE_CHILD naming the role, so
//! the kill lands wherever the child happens to be, mid-commit included.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use orchestrator::store::schema::{get_value, list_values, put_value};
use orchestrator::store::{Ops, RedbStore, Store, StoreError, Table};

/// Selects the child role: `write:<round>:<path>` or `hold:<path>`.
const ROLE: &str = "GROVE_STORE_CHILD";

/// Not a test of its own: the entry point of the re-executed child. Run
/// normally (no GROVE_STORE_CHILD), it does nothing.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let mut out = std::io::stdout();
    if let Some(rest) = role.strip_prefix("write:") {
        let (round, path) = rest.split_once(':').expect("write:<round>:<path>");
        let store = RedbStore::open(path).expect("child open");
        // Effectively endless: the parent kills it long before the end.
        for i in 0u64..1_000_000 {
            let key = format!("{round}/{i:07}");
            // Two tables in one transaction: both or neither must survive.
            store
                .transaction(&mut |tx| {
                    put_value(tx, Table::Instances, &key, &i)?;
                    put_value(tx, Table::Meta, &key, &(i * 2))
                })
                .expect("child commit");
            // Printed only after commit returned: a reported index is a
            // write the store promised to keep.
            writeln!(out, "committed {i}").expect("stdout");
            out.flush().expect("flush");
        }
    } else if let Some(path) = role.strip_prefix("hold:") {
        let _store = RedbStore::open(path).expect("child open");
        writeln!(out, "holding").expect("stdout");
        out.flush().expect("flush");
        // Hold the store until killed, or until the parent goes away (its
        // end of our stdin closes), so a failed test leaves no holder behind.
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grove-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spawn(role: String) -> (Child, BufReader<ChildStdout>) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout))
}

/// The index in a "committed N" line. Searched for, not matched at the
/// start: with --nocapture libtest prints "test child_role ... " with no
/// newline, so the child's first line shares it.
fn committed(line: &str) -> Option<u64> {
    line.split("committed ").nth(1)?.trim().parse().ok()
}

/// Reads until `n` commits are reported, SIGKILLs the child (Child::kill is
/// SIGKILL on Unix), then drains what it printed before dying: those were
/// committed too. Returns the highest reported index.
fn run_and_kill(path: &Path, round: u32, n: u64) -> Option<u64> {
    let (mut child, mut stdout) = spawn(format!("write:{round}:{}", path.display()));
    let mut last = None;
    let mut line = String::new();
    while last.is_none_or(|i| i + 1 < n) {
        line.clear();
        if stdout.read_line(&mut line).expect("read child") == 0 {
            panic!("child ended before {n} commits: {:?}", child.wait());
        }
        last = committed(&line).or(last);
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    assert!(
        !status.success(),
        "child was killed, not finished: {status:?}"
    );
    for line in stdout.lines() {
        last = committed(&line.expect("drain")).or(last);
    }
    last
}

#[test]
fn killed_writer_loses_no_committed_write() {
    let dir = scratch("writer");
    let path = dir.join("state").join("root.redb");
    let mut reported = Vec::new();
    for round in 0..4u32 {
        let last = run_and_kill(&path, round, 20 + 37 * u64::from(round));
        reported.push(last.expect("some commits reported"));

        let store = RedbStore::open(&path).expect("reopen after SIGKILL");
        // Every round so far: everything reported is there with its value…
        for (r, &last) in reported.iter().enumerate() {
            for i in 0..=last {
                let key = format!("{r}/{i:07}");
                let v: Option<u64> = get_value(&store, Table::Instances, &key).expect("get");
                assert_eq!(v, Some(i), "round {r}: committed write {key} lost");
            }
        }
        // …and nothing is half a transaction: both tables hold the same
        // keys (the kill may have landed one commit past the last report).
        let inst: Vec<(String, u64)> = list_values(&store, Table::Instances, "").expect("list");
        let meta: Vec<(String, u64)> = list_values(&store, Table::Meta, "").expect("list");
        assert_eq!(inst.len(), meta.len(), "a transaction was half-applied");
        let stored = inst
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{round}/")))
            .count();
        eprintln!("round {round}: child reported 0..={last:?}, store holds {stored}");
        for ((ki, vi), (km, vm)) in inst.iter().zip(&meta) {
            assert_eq!((ki, vi * 2), (km, *vm), "tables disagree");
        }
        // Still writable after the repair.
        store
            .put(Table::Apps, "after", &[round as u8])
            .expect("write after reopen");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn store_held_by_a_live_process_is_refused() {
    let dir = scratch("held");
    let path = dir.join("root.redb");
    let (mut child, mut stdout) = spawn(format!("hold:{}", path.display()));
    let mut line = String::new();
    while !line.trim_end().ends_with("holding") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read child") > 0,
            "child died"
        );
    }
    let err = RedbStore::open(&path).expect_err("the child holds it");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("another grove root holds {}", path.display())
    );

    // The kernel drops the flock with the process: a restarted root gets in.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let store = RedbStore::open(&path).expect("open after holder died");
    assert_eq!(store.get(Table::Apps, "none").expect("get"), None);
    let _ = std::fs::remove_dir_all(&dir);
}
