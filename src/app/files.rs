//! Disk work for the window, always off the UI thread: listing the sessions
//! folder, loading, saving, autosaving, and the native file dialogs. Results
//! come back as [`FileMsg`]s that the window drains in `logic`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::export::Format;
use crate::model::Session;
use crate::model::log::{EntryKind, NO_PEER, TrafficLog};
use crate::persist::{LoadError, SaveError};

/// A session file in the sessions folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedSession {
    /// The sub-folder it is in ("" for the top level, "lessons", …).
    pub group: String,
    /// The file name without `.ron`.
    pub name: String,
    pub path: PathBuf,
    /// The first line of its notes, for the tooltip (empty when unreadable).
    pub summary: String,
}

/// Why a dialog was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Open,
    SaveAs,
    /// Where to write an export of the session in this format.
    Export(Format),
    /// A file to send from the composer.
    Payload,
}

/// A format of `sockbench export` as the window names it: its menu entry,
/// its file name extension, and what the file holds (all from
/// [`crate::export::Format`], the one list of formats).
pub fn export_words(format: Format) -> (&'static str, &'static str, &'static str) {
    (format.label(), format.extension(), format.about())
}

/// Every format the window exports to, in its menu's order.
pub const EXPORT_FORMATS: [Format; 5] = Format::ALL;

/// What a background file task reports.
pub enum FileMsg {
    Listed(Vec<ListedSession>),
    Loaded {
        path: PathBuf,
        result: Box<Result<Session, LoadError>>,
        /// The load is a crash recovery, not a file the person opened.
        recovered_from: Option<Option<PathBuf>>,
    },
    Saved {
        path: PathBuf,
        result: Result<(), SaveError>,
        /// The document's change count when the save started.
        change: u64,
    },
    Autosaved(Result<(), SaveError>),
    /// A recovery file from a run that did not end cleanly: its original path, if any.
    RecoveryFound {
        original: Option<PathBuf>,
    },
    Picked {
        pick: Pick,
        path: Option<PathBuf>,
    },
    /// A file read for endpoint `endpoint`'s composer, or why it was not
    /// (one line naming the path).
    PayloadRead {
        endpoint: crate::engine::EndpointId,
        path: PathBuf,
        result: Result<Vec<u8>, String>,
    },
    /// The system's TCP sockets (for the lifecycle view).
    TcpStates(Vec<crate::engine::os_tcp::OsConnection>),
    /// An export was written to `path`, or why not.
    Exported {
        path: PathBuf,
        format: Format,
        result: Result<(), String>,
    },
}

/// Runs file work on the runtime's blocking pool and reports back.
pub struct Files {
    runtime: tokio::runtime::Handle,
    tx: mpsc::Sender<FileMsg>,
    pub rx: mpsc::Receiver<FileMsg>,
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    pub recovery_dir: Option<PathBuf>,
}

const RECOVERY_FILE: &str = "recovery.ron";
const RECOVERY_ORIGIN: &str = "recovery-of.txt";

impl Files {
    pub fn new(
        runtime: tokio::runtime::Handle,
        wake: std::sync::Arc<dyn Fn() + Send + Sync>,
        recovery_dir: Option<PathBuf>,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        Files {
            runtime,
            tx,
            rx,
            wake,
            recovery_dir,
        }
    }

    fn spawn(&self, work: impl FnOnce() -> FileMsg + Send + 'static) {
        let tx = self.tx.clone();
        let wake = self.wake.clone();
        self.runtime.spawn_blocking(move || {
            let _ = tx.send(work());
            wake();
        });
    }

    /// Reads the system's TCP states (Linux `/proc/net/tcp`).
    pub fn read_tcp_states(&self) {
        self.spawn(|| FileMsg::TcpStates(crate::engine::os_tcp::connections()));
    }

    /// Reads `path` for endpoint `endpoint`'s composer: a regular file of
    /// at most [`crate::persist::PAYLOAD_FILE_LIMIT`], as `connect --send-file` reads.
    pub fn read_payload(&self, path: PathBuf, endpoint: crate::engine::EndpointId) {
        self.spawn(move || {
            let result = crate::persist::read_bounded(
                &path,
                crate::persist::PAYLOAD_FILE_LIMIT,
                "payload file",
            )
            .map_err(|e| e.to_string());
            FileMsg::PayloadRead {
                endpoint,
                path,
                result,
            }
        });
    }

    /// Lists the `.ron` files of `dir` and its sub-folders (one level deep).
    pub fn list(&self, dir: PathBuf) {
        self.spawn(move || FileMsg::Listed(list_sessions(&dir)));
    }

    pub fn load(&self, path: PathBuf) {
        self.spawn(move || {
            let result = Box::new(crate::persist::load(&path));
            // One spelling per file (the sidebar lists canonical paths), so the
            // open session is marked there however it was named.
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            FileMsg::Loaded {
                path,
                result,
                recovered_from: None,
            }
        });
    }

    /// Saves `session` to `path`; `make_folder` creates the folder first (the
    /// person's own sessions folder, on its first use).
    pub fn save(&self, path: PathBuf, session: Session, change: u64, make_folder: bool) {
        self.spawn(move || {
            if make_folder && let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let result = crate::persist::save(&path, &session);
            FileMsg::Saved {
                path,
                result,
                change,
            }
        });
    }

    /// Exports `session` (named `name`) in `format` to `path` with the code
    /// of `sockbench export` ([`crate::export::check`], [`crate::export::save`]:
    /// streamed, so a pcapng of a large log is never whole in memory), after
    /// the same checks of the target as its `-o` ([`crate::persist::prepare_file`]),
    /// and writes it atomically.
    pub fn export(
        &self,
        path: PathBuf,
        format: Format,
        session: Session,
        name: String,
        endpoint: Option<String>,
    ) {
        self.spawn(move || {
            let endpoint = endpoint.as_deref();
            let result = crate::export::check(&session, format, endpoint).and_then(|()| {
                let target = crate::persist::prepare_file(&path).map_err(|e| e.to_string())?;
                let target = crate::persist::SaveTarget::File(target);
                crate::export::save(&session, &name, format, endpoint, &target)
                    .map_err(|e| e.to_string())
            });
            FileMsg::Exported {
                path,
                format,
                result,
            }
        });
    }

    fn recovery_paths(&self) -> Option<(PathBuf, PathBuf)> {
        self.recovery_dir
            .as_ref()
            .map(|d| (d.join(RECOVERY_FILE), d.join(RECOVERY_ORIGIN)))
    }

    /// Writes the recovery copy of the open session; false when there is
    /// nowhere to write it (no `Autosaved` answer comes then).
    pub fn autosave(&self, session: Session, original: Option<PathBuf>) -> bool {
        let Some((file, origin)) = self.recovery_paths() else {
            return false;
        };
        self.spawn(move || {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let origin_text = original
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let result = crate::persist::save(&file, &session)
                .and_then(|()| crate::persist::write_atomic(&origin, origin_text.as_bytes()));
            // Spilled bytes the copy read go back to the file, not the window's memory.
            session.log.release_spilled_pages();
            FileMsg::Autosaved(result)
        });
        true
    }

    /// Looks for a recovery file left by a run that did not end cleanly.
    pub fn look_for_recovery(&self) {
        let Some((file, origin)) = self.recovery_paths() else {
            return;
        };
        let tx = self.tx.clone();
        let wake = self.wake.clone();
        self.runtime.spawn_blocking(move || {
            if file.is_file() {
                let original = read_origin(&origin);
                let _ = tx.send(FileMsg::RecoveryFound { original });
                wake();
            }
        });
    }

    /// Loads the recovery file as the document.
    pub fn recover(&self, original: Option<PathBuf>) {
        let Some((file, _)) = self.recovery_paths() else {
            return;
        };
        self.spawn(move || {
            let result = Box::new(crate::persist::load(&file));
            FileMsg::Loaded {
                path: file,
                result,
                recovered_from: Some(original),
            }
        });
    }

    /// Removes the recovery file (a clean exit, or the person declined it).
    /// Done synchronously: it runs at exit, when no frame is waiting.
    pub fn discard_recovery(&self) {
        if let Some((file, origin)) = self.recovery_paths() {
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_file(origin);
        }
    }

    /// Removes the recovery file without waiting (after a save).
    pub fn discard_recovery_in_background(&self) {
        if let Some((file, origin)) = self.recovery_paths() {
            self.runtime.spawn_blocking(move || {
                let _ = std::fs::remove_file(file);
                let _ = std::fs::remove_file(origin);
            });
        }
    }

    /// Opens a native dialog on the runtime; the answer comes back as `Picked`.
    /// Where no dialog service exists the answer is `None`, and the typed path stays.
    pub fn pick(&self, pick: Pick, start_dir: PathBuf, file_name: Option<String>) {
        let tx = self.tx.clone();
        let wake = self.wake.clone();
        self.runtime.spawn(async move {
            let dialog = rfd::AsyncFileDialog::new().set_directory(&start_dir);
            let dialog = match pick {
                Pick::Export(format) => {
                    let (label, extension, _) = export_words(format);
                    dialog.add_filter(label, &[extension])
                }
                Pick::Payload => dialog,
                _ => dialog.add_filter("sockbench session", &["ron"]),
            };
            let handle = match pick {
                Pick::Open => dialog.set_title("Open a session").pick_file().await,
                Pick::Payload => dialog.set_title("A file to send").pick_file().await,
                Pick::SaveAs => {
                    dialog
                        .set_title("Save the session as")
                        .set_file_name(file_name.unwrap_or_else(|| "session.ron".into()))
                        .save_file()
                        .await
                }
                Pick::Export(format) => {
                    let (label, extension, _) = export_words(format);
                    dialog
                        .set_title(format!("Export as {label}"))
                        .set_file_name(file_name.unwrap_or_else(|| format!("session.{extension}")))
                        .save_file()
                        .await
                }
            };
            let _ = tx.send(FileMsg::Picked {
                pick,
                path: handle.map(|h| h.path().to_owned()),
            });
            wake();
        });
    }
}

/// How many payload bytes the recovery copy keeps, at most. The copy is made
/// on the UI thread and is always a cheap snapshot of the log (full chunks
/// shared, no payload copied); the file is written in the background.
pub const RECOVERY_PAYLOAD_CAP: usize = 64 << 20;

/// A copy of `log` for the recovery file: every row while the rows' bytes
/// fit in `cap`, then one note row that says how many rows and bytes were
/// left out. Endpoint and peer numbering stay as in `log`. The copy shares
/// the log's bytes ([`TrafficLog::snapshot_first`]): making it copies rows'
/// 32-byte entries, never their payloads.
pub fn recovery_log(log: &TrafficLog, cap: usize) -> TrafficLog {
    let mut kept = 0usize;
    let cut = log.entries().iter().position(|e| {
        kept = kept.saturating_add(e.len());
        kept > cap
    });
    let Some(i) = cut else {
        return log.snapshot();
    };
    let mut copy = log.snapshot_first(i);
    let rest = &log.entries()[i..];
    let e = rest[0];
    let bytes: usize = rest.iter().map(|e| e.len()).sum();
    let cap_text = if cap >= 1 << 20 && cap.is_multiple_of(1 << 20) {
        format!("{} MiB", cap >> 20)
    } else {
        format!("{cap} bytes")
    };
    let note = format!(
        "recovery copy: {} from here on ({bytes} bytes) left out; the autosave keeps at most {cap_text} of payloads",
        if rest.len() == 1 {
            "1 row".to_owned()
        } else {
            format!("{} rows", rest.len())
        },
    );
    copy.push(
        e.at(),
        e.endpoint,
        NO_PEER,
        EntryKind::Note,
        note.as_bytes(),
    );
    copy
}

/// The original path noted beside the recovery file: a small regular file
/// (read bounded, so a device or fifo put there is ignored, never waited on).
fn read_origin(origin: &Path) -> Option<PathBuf> {
    crate::persist::read_bounded(origin, crate::persist::NOTE_LIMIT, "recovery note")
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|s| !s.trim().is_empty())
        .map(PathBuf::from)
}

fn summary_of(path: &Path) -> String {
    crate::persist::load(path)
        .map(|s| s.notes.lines().next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn list_sessions(dir: &Path) -> Vec<ListedSession> {
    let mut found = Vec::new();
    let mut visit = |folder: &Path, group: &str| {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return Vec::new();
        };
        let mut subfolders = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                subfolders.push(path);
            } else if path.extension().is_some_and(|x| x == "ron") {
                // Canonical, so the sidebar can tell which one is open by comparing paths.
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                found.push(ListedSession {
                    group: group.to_owned(),
                    name: path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    summary: summary_of(&path),
                    path,
                });
            }
        }
        subfolders
    };
    for sub in visit(dir, "") {
        let group = sub
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        visit(&sub, &group);
    }
    found.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tokio::runtime::Runtime, Files) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let files = Files::new(runtime.handle().clone(), std::sync::Arc::new(|| {}), None);
        (runtime, files)
    }

    fn saved(files: &Files) -> Result<(), SaveError> {
        // The blocking pool runs the save without the runtime being driven.
        match files.rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(FileMsg::Saved { result, .. }) => result,
            Ok(_) => panic!("not a save"),
            Err(e) => panic!("no answer from the save: {e}"),
        }
    }

    #[test]
    fn save_as_never_replaces_a_device_or_a_fifo() {
        use std::os::unix::fs::FileTypeExt as _;
        let (_runtime, files) = files();
        // Before: the window's Save As renamed a file over /dev/null.
        files.save(PathBuf::from("/dev/null"), Session::default(), 1, false);
        let err = saved(&files).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a character device, not a regular file"),
            "{err}"
        );
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.ron");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            files.save(fifo.clone(), Session::default(), 1, false);
            assert!(saved(&files).is_err());
            assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        }
        let err = {
            files.save(dir.path().to_owned(), Session::default(), 1, false);
            saved(&files).unwrap_err()
        };
        assert!(matches!(err, SaveError::IsDirectory { .. }), "{err}");
        // A regular file is saved as before.
        let file = dir.path().join("s.ron");
        files.save(file.clone(), Session::default(), 1, false);
        saved(&files).unwrap();
        assert!(file.is_file());
    }

    #[test]
    fn the_recovery_copy_keeps_payloads_up_to_its_cap_and_says_what_it_left_out() {
        let mut log = TrafficLog::new();
        let a = log.endpoint_index("a");
        let b = log.endpoint_index("b");
        let p1 = log.peer_index(a, 1, "127.0.0.1:1");
        log.new_run(a);
        let p1again = log.peer_index(a, 1, "127.0.0.1:2");
        let at = chrono::Utc::now();
        log.push(at, a, p1, EntryKind::Sent, &[1; 40]);
        log.push(at, b, NO_PEER, EntryKind::Listening, b"on 127.0.0.1:9");
        log.push(at, a, p1again, EntryKind::Received, &[2; 40]);
        log.push(at, a, p1again, EntryKind::Received, &[3; 30]);
        let copy = recovery_log(&log, 100);
        assert_eq!(copy.endpoints(), log.endpoints());
        assert_eq!(copy.peers(), log.peers());
        assert_eq!(copy.len(), 4, "three rows fit, then the note");
        for i in 0..3 {
            assert_eq!(copy.entry(i), log.entry(i));
            assert_eq!(copy.data(i), log.data(i));
        }
        assert_eq!(copy.entry(3).unwrap().kind, EntryKind::Note);
        assert_eq!(
            copy.detail(3),
            "recovery copy: 1 row from here on (30 bytes) left out; the autosave keeps at most 100 bytes of payloads"
        );
        // Under the cap, the copy is the log.
        let whole = recovery_log(&log, 1 << 20);
        assert_eq!(whole.entries(), log.entries());
        assert_eq!(whole.data_bytes(), log.data_bytes());
    }

    #[test]
    fn a_capped_recovery_copy_shares_the_logs_bytes_instead_of_copying_them() {
        let mut log = TrafficLog::new();
        let a = log.endpoint_index("a");
        let at = chrono::Utc::now();
        // Rows of 256 KiB: the first chunks are full (shared) by the end.
        for i in 0..40u8 {
            log.push(at, a, NO_PEER, EntryKind::Received, &[i; 256 * 1024]);
        }
        let copy = recovery_log(&log, 4 << 20);
        assert_eq!(copy.len(), 16 + 1, "16 rows fit in 4 MiB, then the note");
        for i in 0..8 {
            assert_eq!(
                copy.data(i).as_ptr(),
                log.data(i).as_ptr(),
                "row {i}'s bytes are the log's, not a copy made on the UI thread"
            );
        }
        assert_eq!(copy.data(15), log.data(15));
        assert_eq!(copy.entry(16).unwrap().kind, EntryKind::Note);
    }

    #[test]
    fn the_recovery_note_is_read_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join("recovery-of.txt");
        std::fs::write(&note, "/home/me/s.ron").unwrap();
        assert_eq!(read_origin(&note), Some(PathBuf::from("/home/me/s.ron")));
        assert_eq!(read_origin(Path::new("/dev/zero")), None);
        std::fs::write(&note, vec![b'a'; crate::persist::NOTE_LIMIT as usize + 1]).unwrap();
        assert_eq!(read_origin(&note), None);
    }

    #[test]
    fn listing_finds_sessions_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.ron"),
            "(format: 1, notes: \"Bee\\nmore\")",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.ron"), "(format: 1)").unwrap();
        std::fs::write(dir.path().join("readme.txt"), "not a session").unwrap();
        std::fs::create_dir(dir.path().join("lessons")).unwrap();
        std::fs::write(dir.path().join("lessons").join("1-first.ron"), "broken").unwrap();
        let listed = list_sessions(dir.path());
        let names: Vec<(&str, &str)> = listed
            .iter()
            .map(|l| (l.group.as_str(), l.name.as_str()))
            .collect();
        assert_eq!(names, [("", "a"), ("", "b"), ("lessons", "1-first")]);
        assert_eq!(listed[1].summary, "Bee");
        assert_eq!(listed[2].summary, "");
    }
}
