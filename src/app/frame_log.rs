//! A frame log for measurements: with `SOCKBENCH_FRAME_LOG=FILE` in the
//! environment, the window appends one line per frame to FILE, so a script
//! (`benches/window_flood.py`) can tell from outside how the window keeps up
//! under a flood: when each frame ran, how long its drain of engine events
//! took, the payload totals the status bar shows, and the pointer presses the
//! frame saw (a click takes effect in the frame that sees it).
//!
//! Line format, space separated:
//! `frame UNIX_MS DRAIN_US EVENTS SENT_BYTES RECEIVED_BYTES PRESSES RSS_KIB VIEW`
//! (`PRESSES` counts primary-button presses since the start; `RSS_KIB` is
//! the window's resident memory, read at most every 100 ms, 0 where unknown;
//! `VIEW` is the number of the view shown below the endpoints, 0 for the log).

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that names the frame log's file.
pub const ENV: &str = "SOCKBENCH_FRAME_LOG";

/// Appends frame lines to a file, when asked for.
#[derive(Default)]
pub struct FrameLog {
    out: Option<std::io::LineWriter<std::fs::File>>,
    presses: u64,
    rss_kib: u64,
    rss_read: Option<Instant>,
}

/// What one frame did, as the log writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameFacts {
    pub drain: Duration,
    pub events: usize,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// Which view shows below the endpoints (its place in the tab row).
    pub view: usize,
}

impl FrameLog {
    /// Opens the file `SOCKBENCH_FRAME_LOG` names (created or truncated); off
    /// when unset or when the file cannot be made (said once on stderr).
    pub fn from_env() -> FrameLog {
        match std::env::var_os(ENV).filter(|p| !p.is_empty()) {
            Some(path) => FrameLog::to_path(std::path::Path::new(&path)),
            None => FrameLog::default(),
        }
    }

    /// A frame log written to `path`.
    pub fn to_path(path: &std::path::Path) -> FrameLog {
        match std::fs::File::create(path) {
            Ok(file) => FrameLog {
                out: Some(std::io::LineWriter::new(file)),
                ..FrameLog::default()
            },
            Err(e) => {
                eprintln!("{ENV}: cannot write {}: {e}", path.display());
                FrameLog::default()
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// Writes one frame's line. `presses` is how many primary presses this
    /// frame's input holds.
    pub fn record(&mut self, facts: FrameFacts, presses: u64) {
        let Some(out) = &mut self.out else {
            return;
        };
        self.presses += presses;
        if self
            .rss_read
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100))
        {
            self.rss_read = Some(Instant::now());
            self.rss_kib = resident_kib().unwrap_or(0);
        }
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let line = format!(
            "frame {unix_ms} {} {} {} {} {} {} {}\n",
            facts.drain.as_micros(),
            facts.events,
            facts.sent_bytes,
            facts.received_bytes,
            self.presses,
            self.rss_kib,
            facts.view
        );
        if out.write_all(line.as_bytes()).is_err() {
            // A full disk ends the log, never the window.
            self.out = None;
        }
    }
}

/// This process's resident memory in KiB (Linux's /proc), if known.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_per_frame_with_running_press_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.log");
        let mut log = FrameLog::to_path(&path);
        assert!(log.is_on());
        let facts = FrameFacts {
            drain: Duration::from_micros(1500),
            events: 7,
            sent_bytes: 10,
            received_bytes: 20,
            view: 2,
        };
        log.record(facts, 1);
        log.record(facts, 2);
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0][0], "frame");
        assert_eq!(&lines[0][2..7], ["1500", "7", "10", "20", "1"]);
        assert_eq!(lines[1][6], "3", "presses add up");
        assert_eq!(lines[1].len(), 9);
        assert_eq!(lines[1][8], "2");
    }

    #[test]
    fn off_without_a_file() {
        let mut log = FrameLog::default();
        assert!(!log.is_on());
        log.record(FrameFacts::default(), 1);
    }
}
