//! Session files: the [`Session`] document as RON, format 1, and the one way
//! sockbench reads and writes the files it is given.
//!
//! Loading checks the `format` field first, so a file from a newer sockbench says
//! so instead of failing on some field it does not know. Every error names the
//! file, and where the text is at fault, its line and column. Every file read
//! is a regular file under a stated size ([`read_bounded`]: sessions up to
//! [`SESSION_LIMIT`], PEM files up to [`PEM_LIMIT`]). Saving is atomic: the text
//! goes to a temporary file beside the target, is flushed to disk, and only then
//! renamed over the target, so a failed save never leaves half a file; a target
//! that is not a regular file (a device, a fifo) is never replaced ([`write`]).

mod format;
pub mod read;
pub mod write;

use std::path::{Path, PathBuf};

use crate::model::Session;

pub use format::{FORMAT, encode_to, format_timestamp};
pub use read::kind_of;
pub use read::{NOTE_LIMIT, PAYLOAD_FILE_LIMIT, PEM_LIMIT, ReadError, SESSION_LIMIT, read_bounded};
pub use write::{
    SaveFailure, SaveTarget, prepare_file, prepare_save, save_or_recover, write_atomic,
    write_atomic_with, write_output,
};

/// Why a session file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Missing, unreadable, not a regular file, or too large.
    #[error(transparent)]
    File(#[from] ReadError),
    #[error("{}:{line}:{col}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}: session format {found} is not one this sockbench reads (it reads format {FORMAT}){}",
        path.display(), if *found > FORMAT as u64 { "; it was written by a newer sockbench" } else { "" })]
    UnknownFormat { path: PathBuf, found: u64 },
    #[error("{}: not a sockbench session: it has no `format` field (expected `format: {FORMAT}`)", path.display())]
    MissingFormat { path: PathBuf },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

impl LoadError {
    pub fn path(&self) -> &Path {
        match self {
            LoadError::File(e) => e.path(),
            LoadError::Syntax { path, .. }
            | LoadError::UnknownFormat { path, .. }
            | LoadError::MissingFormat { path }
            | LoadError::Invalid { path, .. } => path,
        }
    }
}

/// Why output could not be written. Every kind but `Write` and `Stdout` is
/// found before anything is written (bad input: exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}: is a directory; give a file name", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: ends with /, which names a folder; give a file name", path.display())]
    EndsInSlash { path: PathBuf },
    #[error("an empty file name; give a file name")]
    NoName { path: PathBuf },
    #[error("{}: is {kind}, not a regular file; give a file name (or - for standard output)", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{}: is a symbolic link to nothing; give a file name, or make the link point at a file", path.display())]
    DanglingLink { path: PathBuf },
    #[error("{}: the folder {} does not exist; create it first or give another folder", path.display(), folder.display())]
    NoFolder { path: PathBuf, folder: PathBuf },
    #[error("{}: {} is a file, not a folder", path.display(), parent.display())]
    ParentIsFile { path: PathBuf, parent: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {source}")]
    Stdout { source: std::io::Error },
    #[error("cannot save: {message}")]
    Invalid { message: String },
}

/// Reads a session file (a regular file of at most [`SESSION_LIMIT`] bytes).
pub fn load(path: &Path) -> Result<Session, LoadError> {
    let text = read_bounded(path, SESSION_LIMIT, "session file")?;
    let text = String::from_utf8(text).map_err(|e| {
        let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        LoadError::Syntax {
            path: path.to_owned(),
            line,
            col,
            message: "the file is not UTF-8 text".into(),
        }
    })?;
    from_str(&text, path)
}

/// Parses session text; `path` is only used to name the source in errors.
pub fn from_str(text: &str, path: &Path) -> Result<Session, LoadError> {
    format::decode(text, path)
}

/// The session as file text.
pub fn to_string(session: &Session) -> Result<String, SaveError> {
    session
        .validate()
        .map_err(|message| SaveError::Invalid { message })?;
    Ok(format::encode(session))
}

/// Checks that `path` can take a file without writing anything (see
/// [`write::classify`]; standard output is not a file here).
pub fn check_save_target(path: &Path) -> Result<(), SaveError> {
    write::classify(path, false).and_then(|t| match t {
        SaveTarget::File(_) => Ok(()),
        SaveTarget::Stdout => Err(SaveError::NotAFile {
            path: path.to_owned(),
            kind: "standard output",
        }),
    })
}

/// Proves a file can be saved at `path` by creating and removing the real
/// temporary file (see [`prepare_file`]); standard output is not a file here.
pub fn check_writable(path: &Path) -> Result<(), SaveError> {
    prepare_file(path).map(drop)
}

/// Writes a session file atomically. `path` is a file, never standard output
/// (the window's Save As, the recovery copy); see [`SaveTarget::save`] for both.
pub fn save(path: &Path, session: &Session) -> Result<(), SaveError> {
    SaveTarget::File(path.to_owned()).save(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_save_leaves_no_temporary_and_refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.ron");
        save(&target, &Session::default()).unwrap();
        assert!(target.is_file());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        let err = save(dir.path(), &Session::default()).unwrap_err();
        assert!(matches!(err, SaveError::IsDirectory { .. }), "{err}");
        let err = save(&dir.path().join("no/such/x.ron"), &Session::default()).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        // Nothing but the file: no temporary left by the failed saves either.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writable_targets_are_proved_without_leaving_a_file() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("s.ron")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&dir.path().join("no/such/x.ron")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let locked = dir.path().join("locked");
            std::fs::create_dir(&locked).unwrap();
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
            // Root may write anyway; only a refused write must be reported.
            if std::fs::File::create(locked.join("x")).is_err() {
                let err = check_writable(&locked.join("s.ron")).unwrap_err();
                assert!(err.to_string().contains("cannot write"), "{err}");
            }
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory, not a regular file; give the session file as a file"),
            "{err}"
        );
        let missing = dir.path().join("missing.ron");
        let err = load(&missing).unwrap_err();
        assert!(err.to_string().starts_with(&missing.display().to_string()));
        let binary = dir.path().join("bin.ron");
        std::fs::write(&binary, b"(\n  format: 1,\xff\n)").unwrap();
        let err = load(&binary).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(":2:13: the file is not UTF-8 text"),
            "{err}"
        );
    }

    #[test]
    fn sessions_that_are_not_regular_files_are_refused() {
        // Before: /dev/zero was read until the allocator aborted.
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: is a character device, not a regular file; give the session file as a file"
        );
        let dir = tempfile::tempdir().unwrap();
        if let Some(fifo) = read::tests::make_fifo(dir.path()) {
            let err = load(&fifo).unwrap_err();
            assert!(err.to_string().contains("is a fifo (named pipe)"), "{err}");
        }
    }

    #[test]
    fn sessions_above_the_limit_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.ron");
        // Sparse: takes no disk, and is never read.
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(SESSION_LIMIT + 1).unwrap();
        drop(file);
        let err = load(&huge).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::File(ReadError::TooLarge {
                    limit: SESSION_LIMIT,
                    ..
                })
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("huge.ron: the session file is larger than 256 MiB, the most sockbench reads; give a smaller file"),
            "{err}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bom.ron");
        // Before: "1:1: Unexpected ..." for a file saved by a Windows editor.
        std::fs::write(&file, b"\xef\xbb\xbf(format: 1, notes: \"hi\")\n").unwrap();
        assert_eq!(load(&file).unwrap().notes, "hi");
        // And errors after it keep their line and column.
        std::fs::write(&file, b"\xef\xbb\xbf(format: 1,\n  nots: \"x\")").unwrap();
        let err = load(&file).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::Syntax {
                    line: 2,
                    col: 3,
                    ..
                }
            ),
            "{err}"
        );
    }
}
