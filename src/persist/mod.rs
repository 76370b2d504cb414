//! Session files: the [`Session`] document as RON, format 1.
//!
//! Loading checks the `format` field first, so a file from a newer sockbench says
//! so instead of failing on some field it does not know. Every error names the
//! file, and where the text is at fault, its line and column. Saving is atomic:
//! the text goes to a temporary file beside the target, is flushed to disk, and
//! only then renamed over the target, so a failed save never leaves half a file.

mod format;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::model::Session;

pub use format::{FORMAT, format_timestamp};

/// Why a session file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: is a directory, not a session file", path.display())]
    IsDirectory { path: PathBuf },
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
            LoadError::Read { path, .. }
            | LoadError::IsDirectory { path }
            | LoadError::Syntax { path, .. }
            | LoadError::UnknownFormat { path, .. }
            | LoadError::MissingFormat { path }
            | LoadError::Invalid { path, .. } => path,
        }
    }
}

/// Why a session file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}: is a directory; give a file name to save the session as", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: the folder {} does not exist", path.display(), folder.display())]
    NoFolder { path: PathBuf, folder: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot save: {message}")]
    Invalid { message: String },
}

/// Reads a session file.
pub fn load(path: &Path) -> Result<Session, LoadError> {
    if path.is_dir() {
        return Err(LoadError::IsDirectory {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
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

/// Checks that `path` can be saved to without writing anything: it is not a
/// directory and its folder exists. Used before a long run whose result is saved.
pub fn check_save_target(path: &Path) -> Result<(), SaveError> {
    if path.is_dir() {
        return Err(SaveError::IsDirectory {
            path: path.to_owned(),
        });
    }
    let folder = folder_of(path);
    if !folder.is_dir() {
        return Err(SaveError::NoFolder {
            path: path.to_owned(),
            folder,
        });
    }
    Ok(())
}

/// Like [`check_save_target`], and proves the folder takes a new file by
/// creating and removing one, so a long run does not learn at its end that
/// its recording cannot be kept.
pub fn check_writable(path: &Path) -> Result<(), SaveError> {
    check_save_target(path)?;
    let probe = folder_of(path).join(format!(".sockbench-probe.{}.tmp", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(SaveError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Writes a session file atomically.
pub fn save(path: &Path, session: &Session) -> Result<(), SaveError> {
    let text = to_string(session)?;
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it
/// over `path`. On any failure the target is untouched and the temporary removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    check_save_target(path)?;
    let folder = folder_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let write_err = |source| SaveError::Write {
        path: path.to_owned(),
        source,
    };
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(write_err(e));
    }
    Ok(())
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
                .ends_with("is a directory, not a session file")
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
}
