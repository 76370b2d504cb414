//! The log's memory budget on the command line: `--log-budget`, `--log-overflow`,
//! the summary line, and `--save` of a log that spilled or dropped bytes.

mod common;
use common::{BIN, LIMIT, text, wait_bounded};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

/// Runs the built sockbench with its cache folder (where the spill file goes) in `cache`.
fn sockbench_in(cache: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines are read as they come, so a full pipe never stalls the run.
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = out.read_to_end(&mut all);
        all
    });
    wait_bounded(&mut child);
    let mut o = child.wait_with_output().unwrap();
    o.stdout = reader.join().unwrap();
    o
}

fn last_stderr_line(o: &Output) -> String {
    text(&o.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// A TCP peer that reads one request, answers with `answer`, then closes.
fn answering_peer(answer: Vec<u8>) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&answer);
    });
    (addr, handle)
}

fn megabyte() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_run_beyond_its_budget_spills_and_saves_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let save = dir.path().join("run.ron");
    let answer = megabyte();
    let (addr, peer) = answering_peer(answer.clone());
    let o = sockbench_in(
        &cache,
        &[
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "GET",
            "--wait",
            "0.5",
            "--quiet",
            "--log-budget",
            "1KiB",
            "--save",
            save.to_str().unwrap(),
        ],
    );
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = last_stderr_line(&o);
    assert!(
        summary.starts_with("summary: sent 1 payloads (3 bytes), received "),
        "{summary}"
    );
    assert!(summary.contains(" payloads (1048576 bytes); "), "{summary}");
    assert!(summary.contains(" spilled to disk ("), "{summary}");
    assert!(!summary.contains("dropped"), "{summary}");

    let session = sockbench::persist::load(&save).unwrap();
    let log = &session.log;
    let mut received = Vec::new();
    for e in log.entries() {
        assert!(e.is_complete());
        if e.kind == sockbench::model::EntryKind::Received {
            received.extend_from_slice(log.bytes_of(e));
        }
    }
    assert!(received == answer, "{} bytes saved", received.len());
    assert!(!std::fs::read_to_string(&save).unwrap().contains("dropped"));
    // The spill file never had a name for others to find.
    let left: Vec<_> = std::fs::read_dir(cache.join("sockbench"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn dropped_bytes_are_counted_marked_and_not_checkable() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("run.ron");
    let (addr, peer) = answering_peer(megabyte());
    let o = sockbench_in(
        dir.path(),
        &[
            "connect",
            "tcp",
            &addr.to_string(),
            "--send",
            "GET",
            "--wait",
            "0.5",
            "--log-budget",
            "0",
            "--log-overflow",
            "drop",
            "--save",
            save.to_str().unwrap(),
        ],
    );
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = last_stderr_line(&o);
    assert!(summary.contains(" payloads (1048576 bytes); "), "{summary}");
    assert!(
        summary.contains(" of payload dropped in ")
            && summary.ends_with(" payloads (beyond the 0 bytes log budget)"),
        "{summary}"
    );
    // Lines still give the true length of each read.
    let lines = text(&o.stdout);
    let shown: usize = lines
        .lines()
        .filter(|l| l.contains(" client <- "))
        .map(|l| {
            l.split_whitespace()
                .nth(4)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(shown, 1 << 20, "{lines}");
    let file = std::fs::read_to_string(&save).unwrap();
    assert!(
        file.contains(", dropped: "),
        "{}",
        &file[..file.len().min(3000)]
    );
    let session = sockbench::persist::load(&save).unwrap();
    assert!(session.log.entries().iter().any(|e| !e.is_complete()));
    let total: usize = session
        .log
        .entries()
        .iter()
        .filter(|e| e.kind == sockbench::model::EntryKind::Received)
        .map(|e| e.len())
        .sum();
    assert_eq!(total, 1 << 20);

    // Replaying that recording against the same answer cannot be checked.
    let (addr, peer) = answering_peer(megabyte());
    let o = sockbench_in(
        dir.path(),
        &[
            "replay",
            save.to_str().unwrap(),
            "--target",
            &addr.to_string(),
            "--speed",
            "0",
            "--check",
            "--timeout",
            "2",
        ],
    );
    peer.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("\"client\", connection 1: not checkable: the recording dropped "),
        "{out}"
    );
    assert!(
        text(&o.stderr).contains("warning: the recording of \"client\" dropped "),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bad_budgets_are_usage_errors_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let o = sockbench_in(
        dir.path(),
        &["connect", "tcp", "127.0.0.1:7", "--log-budget", "lots"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(
            "error: --log-budget \"lots\": the size starts with a number (256MiB, 1GiB, 0)\n"
        ),
        "{err}"
    );
    assert!(last_stderr_line(&o).starts_with("summary: "), "{err}");
    let o = sockbench_in(
        dir.path(),
        &["listen", "tcp", "127.0.0.1:0", "--log-overflow", "keep"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("keep"), "{}", text(&o.stderr));
}
