//! Reading the files sockbench is given: sessions, certificates, keys, the
//! recovery copy. Every one must be a regular file under a stated size, so a
//! path to `/dev/zero`, a fifo, a terminal or a directory is refused with a
//! clear message instead of reading forever or blocking.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest session file read: 256 MiB (a recording of a long run with
/// payloads in hex; far beyond what the window can show comfortably).
pub const SESSION_LIMIT: u64 = 256 * 1024 * 1024;
/// The largest PEM file read (a certificate, a chain, a key, a CA bundle):
/// 4 MiB, ten times the system's whole trust store as one PEM file.
pub const PEM_LIMIT: u64 = 4 * 1024 * 1024;
/// The largest file sent as a payload (`connect --send-file`, a file loaded
/// into the window's composer): 64 MiB, the bytes the engine lets wait for
/// a connection at once ([`crate::engine::COMMAND_BUDGET`]).
pub const PAYLOAD_FILE_LIMIT: u64 = 64 * 1024 * 1024;
/// Small side files (the recovery copy's note of its original path).
pub const NOTE_LIMIT: u64 = 64 * 1024;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read the {what}: no such file", path.display())]
    NotFound { path: PathBuf, what: &'static str },
    #[error("{}: cannot read the {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{}: is {kind}, not a regular file; give the {what} as a file", path.display())]
    NotAFile {
        path: PathBuf,
        what: &'static str,
        /// `a directory`, `a character device`, `a fifo (named pipe)`, …
        kind: &'static str,
    },
    #[error("{}: the {what} is larger than {}, the most sockbench reads; give a smaller file", path.display(), size_text(*limit))]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },
}

impl ReadError {
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path, .. }
            | ReadError::Io { path, .. }
            | ReadError::NotAFile { path, .. }
            | ReadError::TooLarge { path, .. } => path,
        }
    }
}

/// `256 MiB`, `4 MiB`, `64 KiB`, `1000 bytes`.
pub fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// What kind of thing a non-regular file is, in words.
pub fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a fifo (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_symlink() {
        return "a symbolic link";
    }
    "not a regular file"
}

/// Reads the whole of `path`, which must be a regular file of at most `limit`
/// bytes; `what` names the file's role in errors ("session file", "CA
/// certificate file").
///
/// The path's type is checked before opening (a fifo is never opened, so this
/// never blocks), the file is opened without blocking and its type checked
/// again on the open handle (the path may have changed in between), and at
/// most `limit + 1` bytes are read, so a file that grows is still refused.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReadError::NotFound {
                path: path.to_owned(),
                what,
            }
        } else {
            ReadError::Io {
                path: path.to_owned(),
                what,
                source,
            }
        }
    };
    let not_a_file = |t: std::fs::FileType| ReadError::NotAFile {
        path: path.to_owned(),
        what,
        kind: kind_of(t),
    };
    let too_large = || ReadError::TooLarge {
        path: path.to_owned(),
        what,
        limit,
    };
    let before = std::fs::metadata(path).map_err(io)?;
    if !before.is_file() {
        return Err(not_a_file(before.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Swapped for a fifo after the check above, the open must not wait for
        // a writer; on a regular file the flag changes nothing.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fifo in `dir`, made with the system's `mkfifo`; `None` where there is none.
    pub(crate) fn make_fifo(dir: &Path) -> Option<PathBuf> {
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        made.then_some(fifo)
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.pem");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_bounded(&f, 5, "test file").unwrap(), b"12345");
    }

    #[test]
    fn devices_are_refused_without_reading() {
        // Before: /dev/zero was read until the allocator gave up.
        let err = read_bounded(Path::new("/dev/zero"), PEM_LIMIT, "certificate file").unwrap_err();
        assert!(matches!(err, ReadError::NotAFile { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "/dev/zero: is a character device, not a regular file; give the certificate file as a file"
        );
        let err =
            read_bounded(Path::new("/dev/null"), PEM_LIMIT, "CA certificate file").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn standard_input_is_not_waited_for() {
        // /dev/stdin is the test's terminal, pipe or /dev/null: never a regular
        // file under cargo test, and never read.
        let meta = std::fs::metadata("/dev/stdin");
        if meta.as_ref().is_ok_and(|m| !m.is_file()) {
            let err = read_bounded(Path::new("/dev/stdin"), 10, "session file").unwrap_err();
            assert!(matches!(err, ReadError::NotAFile { .. }), "{err}");
        }
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let Some(fifo) = make_fifo(dir.path()) else {
            eprintln!("skipped: no mkfifo here");
            return;
        };
        // No writer ever opens it: a plain open would wait forever. The check
        // runs on a thread so a regression fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read_bounded(&path, 10, "session file").map(drop));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a fifo must not block");
        let err = result.unwrap_err();
        assert!(err.to_string().contains("is a fifo (named pipe)"), "{err}");
    }

    #[test]
    fn directories_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(dir.path(), 10, "session file").unwrap_err();
        assert!(
            err.to_string()
                .contains("is a directory, not a regular file"),
            "{err}"
        );
        let err = read_bounded(&dir.path().join("none"), 10, "key file").unwrap_err();
        assert!(matches!(err, ReadError::NotFound { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("none: cannot read the key file: no such file"),
            "{err}"
        );
    }

    #[test]
    fn oversized_files_name_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.ron");
        std::fs::write(&f, vec![b'x'; 2049]).unwrap();
        let err = read_bounded(&f, 2048, "session file").unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 2048, .. }),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(
                "big.ron: the session file is larger than 2 KiB, the most sockbench reads; give a smaller file"
            ),
            "{err}"
        );
        assert_eq!(read_bounded(&f, 2049, "session file").unwrap().len(), 2049);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size_text(SESSION_LIMIT), "256 MiB");
        assert_eq!(size_text(PEM_LIMIT), "4 MiB");
        assert_eq!(size_text(NOTE_LIMIT), "64 KiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }
}
