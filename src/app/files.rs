//! Disk work for the window, always off the UI thread: listing the sessions
//! folder, loading, saving, autosaving, and the native file dialogs. Results
//! come back as [`FileMsg`]s that the window drains in `logic`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::model::Session;
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
}

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
    /// The system's TCP sockets (for the lifecycle view).
    TcpStates(Vec<crate::engine::os_tcp::OsConnection>),
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

    pub fn save(&self, path: PathBuf, session: Session, change: u64) {
        self.spawn(move || {
            let result = crate::persist::save(&path, &session);
            FileMsg::Saved {
                path,
                result,
                change,
            }
        });
    }

    fn recovery_paths(&self) -> Option<(PathBuf, PathBuf)> {
        self.recovery_dir
            .as_ref()
            .map(|d| (d.join(RECOVERY_FILE), d.join(RECOVERY_ORIGIN)))
    }

    /// Writes the recovery copy of the open session.
    pub fn autosave(&self, session: Session, original: Option<PathBuf>) {
        let Some((file, origin)) = self.recovery_paths() else {
            return;
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
            FileMsg::Autosaved(result)
        });
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
            let dialog = rfd::AsyncFileDialog::new()
                .add_filter("sockbench session", &["ron"])
                .set_directory(&start_dir);
            let handle = match pick {
                Pick::Open => dialog.set_title("Open a session").pick_file().await,
                Pick::SaveAs => {
                    dialog
                        .set_title("Save the session as")
                        .set_file_name(file_name.unwrap_or_else(|| "session.ron".into()))
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
        files.save(PathBuf::from("/dev/null"), Session::default(), 1);
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
            files.save(fifo.clone(), Session::default(), 1);
            assert!(saved(&files).is_err());
            assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        }
        let err = {
            files.save(dir.path().to_owned(), Session::default(), 1);
            saved(&files).unwrap_err()
        };
        assert!(matches!(err, SaveError::IsDirectory { .. }), "{err}");
        // A regular file is saved as before.
        let file = dir.path().join("s.ron");
        files.save(file.clone(), Session::default(), 1);
        saved(&files).unwrap();
        assert!(file.is_file());
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
