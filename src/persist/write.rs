//! Writing output to a path: session saves, `export -o`, the window's Save As,
//! the recovery copy. One rule for all of them: a target that exists and is not
//! a regular file (a device, a fifo, a socket, a directory, a link to one) is
//! never replaced. Where the caller allows it, `-`, `/dev/stdout`, `/dev/fd/1`
//! and `/proc/self/fd/1` mean standard output and are written through.
//!
//! A file is written atomically: a temporary file beside the target, flushed,
//! then renamed over it. [`prepare_save`] proves all of that will work before a
//! long run, by creating the real temporary file (and the target's name, when
//! it is new) and removing them again; [`save_or_recover`] keeps a recording
//! that still could not be saved (a full disk) in a recovery file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::SaveError;
use crate::model::Session;

/// Where output goes, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveTarget {
    /// Standard output (`-`, `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`).
    Stdout,
    /// A regular file, new or replaced atomically.
    File(PathBuf),
}

impl SaveTarget {
    /// Writes `bytes` to the target: through to stdout, or atomically to the file.
    pub fn write(&self, bytes: &[u8]) -> Result<(), SaveError> {
        match self {
            SaveTarget::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|source| SaveError::Stdout { source })
            }
            SaveTarget::File(path) => write_atomic(path, bytes),
        }
    }

    /// Saves a session to the target, streamed entry by entry (spilled
    /// payloads are read back from the spill file as they are written).
    pub fn save(&self, session: &Session) -> Result<(), SaveError> {
        session
            .validate()
            .map_err(|message| SaveError::Invalid { message })?;
        match self {
            SaveTarget::Stdout => {
                let out = std::io::BufWriter::with_capacity(SAVE_BUFFER, std::io::stdout().lock());
                super::format::encode_to(session, out)
                    .map_err(|source| SaveError::Stdout { source })
            }
            SaveTarget::File(path) => write_atomic_with(path, |file| {
                let out = std::io::BufWriter::with_capacity(SAVE_BUFFER, file);
                super::format::encode_to(session, out)
            }),
        }
    }

    /// The file, when the target is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SaveTarget::Stdout => None,
            SaveTarget::File(p) => Some(p),
        }
    }
}

impl std::fmt::Display for SaveTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveTarget::Stdout => f.write_str("standard output"),
            SaveTarget::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// True for the names that mean standard output.
pub fn is_stdout_name(path: &Path) -> bool {
    matches!(
        path.as_os_str().to_str(),
        Some("-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1")
    )
}

/// Checks `path` as a place to write to, touching nothing: standard output
/// when `stdout_ok` and the path names it, else a regular file (existing or
/// new) in an existing folder.
pub fn classify(path: &Path, stdout_ok: bool) -> Result<SaveTarget, SaveError> {
    if stdout_ok && is_stdout_name(path) {
        return Ok(SaveTarget::Stdout);
    }
    // A symbolic link is followed: what it names is written (atomically, in
    // that file's folder) and the link stays a link; a link to nothing, or
    // to something that is not a regular file, is refused below.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => match std::fs::canonicalize(path) {
                Ok(target) => classify(&target, false),
                Err(source) => Err(SaveError::Write {
                    path: path.to_owned(),
                    source,
                }),
            },
            Ok(m) if m.is_dir() => Err(SaveError::IsDirectory {
                path: path.to_owned(),
            }),
            Ok(m) => Err(SaveError::NotAFile {
                path: path.to_owned(),
                kind: super::read::kind_of(m.file_type()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SaveError::DanglingLink {
                path: path.to_owned(),
            }),
            Err(source) => Err(SaveError::Write {
                path: path.to_owned(),
                source,
            }),
        };
    }
    let owned = || path.to_owned();
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.is_empty() {
        return Err(SaveError::NoName { path: owned() });
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(SaveError::IsDirectory { path: owned() }),
        Ok(m) if !m.is_file() => {
            return Err(SaveError::NotAFile {
                path: owned(),
                kind: super::read::kind_of(m.file_type()),
            });
        }
        Ok(_) => {}
        // New, or a link to nothing (replaced by the file), or below a file
        // (found with the folder below).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) => {}
        Err(source) => {
            return Err(SaveError::Write {
                path: owned(),
                source,
            });
        }
    }
    // `x.ron/` names a folder even where none exists; Path would quietly drop
    // the slash and write a file named `x.ron`.
    if bytes.ends_with(b"/") || path.file_name().is_none() {
        return Err(SaveError::EndsInSlash { path: owned() });
    }
    let folder = folder_of(path);
    match std::fs::metadata(&folder) {
        Ok(m) if m.is_dir() => Ok(SaveTarget::File(owned())),
        Ok(_) => Err(SaveError::ParentIsFile {
            path: owned(),
            parent: folder,
        }),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            // The nearest part of the path that exists says which is wrong.
            let file_above = folder
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .find_map(|a| std::fs::metadata(a).ok().map(|m| (a.to_owned(), m)))
                .filter(|(_, m)| !m.is_dir());
            Err(match file_above {
                Some((parent, _)) => SaveError::ParentIsFile {
                    path: owned(),
                    parent,
                },
                None => SaveError::NoFolder {
                    path: owned(),
                    folder,
                },
            })
        }
        Err(source) => Err(SaveError::Write {
            path: owned(),
            source,
        }),
    }
}

/// Checks `path` for output before a run, as [`classify`] with standard
/// output allowed, and for a file proves the save will work by creating the
/// real temporary file beside it (and the target itself when it is new, so a
/// name too long, a read-only file system or a refused permission show now)
/// and removing them again.
pub fn prepare_save(path: &Path) -> Result<SaveTarget, SaveError> {
    prepare(path, true)
}

/// [`prepare_save`] for callers that never write to standard output (the
/// window): `-` is a file of that name, `/dev/stdout` a device and refused.
pub fn prepare_file(path: &Path) -> Result<PathBuf, SaveError> {
    match prepare(path, false)? {
        SaveTarget::File(p) => Ok(p),
        SaveTarget::Stdout => Err(SaveError::NotAFile {
            path: path.to_owned(),
            kind: "standard output",
        }),
    }
}

fn prepare(path: &Path, stdout_ok: bool) -> Result<SaveTarget, SaveError> {
    let target = classify(path, stdout_ok)?;
    let SaveTarget::File(file) = &target else {
        return Ok(target);
    };
    let write_err = |source| SaveError::Write {
        path: path.to_owned(),
        source,
    };
    let temp = temp_path(file);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(write_err)?;
    let _ = std::fs::remove_file(&temp);
    if std::fs::symlink_metadata(file).is_err() {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(file);
            }
            // Made meanwhile by someone else: the name is fine.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_err(e)),
        }
    }
    Ok(target)
}

/// Writes `bytes` to `path` after [`prepare_save`]'s checks: the one function
/// for "write output to a path" (`export -o`): `-` and `/dev/stdout` write
/// through, a device or other non-file is refused, a file is replaced atomically.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    prepare_save(path)?.write(bytes)
}

pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.PID-N.tmp` beside `path`, its name kept short enough for any file
/// system (255 bytes) however long the target's is.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    folder_of(path).join(format!(".{}.{}-{n}.tmp", &name[..end], std::process::id()))
}

/// The write buffer of a streamed save.
const SAVE_BUFFER: usize = 256 * 1024;

/// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it
/// over `path`, which must be a regular file or new (see [`classify`]; never
/// standard output). On any failure the target is untouched and the temporary
/// removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` to the temporary
/// file as it goes (a streamed save), rather than given whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), SaveError> {
    let path = match classify(path, false)? {
        SaveTarget::File(path) => path,
        SaveTarget::Stdout => {
            return Err(SaveError::NotAFile {
                path: path.to_owned(),
                kind: "standard output",
            });
        }
    };
    let temp = temp_path(&path);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(SaveError::Write { path, source });
    }
    // The rename itself survives a power cut once the folder is flushed.
    if let Ok(folder) = std::fs::File::open(folder_of(&path)) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// A save that failed, and where the recording went instead.
#[derive(Debug, thiserror::Error)]
#[error("not saved: {error}; {}", match recovery {
    Ok(p) => format!("the recording is kept in {}: move it where you want it", p.display()),
    Err(e) => format!("the recording could not be kept elsewhere either ({e})"),
})]
pub struct SaveFailure {
    pub error: SaveError,
    /// The recovery file holding the recording, or why it could not be written.
    pub recovery: Result<PathBuf, SaveError>,
}

/// Saves `session` to `target` (checked with [`prepare_save`] before the run);
/// if that fails (the disk filled up, the folder went away), writes it to a
/// recovery file in the user's cache folder or the temporary folder and says
/// where.
pub fn save_or_recover(target: &SaveTarget, session: &Session) -> Result<(), SaveFailure> {
    save_or_recover_in(target, session, &recovery_folders())
}

/// [`save_or_recover`] with the recovery folders given, first that works wins.
pub fn save_or_recover_in(
    target: &SaveTarget,
    session: &Session,
    folders: &[PathBuf],
) -> Result<(), SaveFailure> {
    let error = match target.save(session) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    // A session that cannot be encoded cannot be kept anywhere.
    if let SaveError::Invalid { message } = &error {
        let recovery = Err(SaveError::Invalid {
            message: message.clone(),
        });
        return Err(SaveFailure { error, recovery });
    }
    let stem: String = target
        .path()
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().chars().take(80).collect())
        .unwrap_or_else(|| "session".into());
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let name = format!("{stem}.unsaved-{stamp}-{}.ron", std::process::id());
    let mut last = None;
    for folder in folders {
        let _ = std::fs::create_dir_all(folder);
        let file = folder.join(&name);
        match super::save(&file, session) {
            Ok(()) => {
                return Err(SaveFailure {
                    error,
                    recovery: Ok(file),
                });
            }
            Err(e) => last = Some(e),
        }
    }
    let recovery = Err(last.unwrap_or(SaveError::NoName {
        path: PathBuf::from(name),
    }));
    Err(SaveFailure { error, recovery })
}

/// Where unsaved recordings go: `$XDG_CACHE_HOME/sockbench`,
/// `~/.cache/sockbench`, then the temporary folder.
pub fn recovery_folders() -> Vec<PathBuf> {
    crate::model::spill::cache_folders()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::read::tests::make_fifo;

    fn is_char_device(path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn devices_are_never_replaced() {
        // Before: a regular file was renamed over /dev/null.
        for prepare in [prepare_save, |p: &Path| {
            prepare_file(p).map(SaveTarget::File)
        }] {
            let err = prepare(Path::new("/dev/null")).unwrap_err();
            assert!(matches!(err, SaveError::NotAFile { .. }), "{err}");
            assert_eq!(
                err.to_string(),
                "/dev/null: is a character device, not a regular file; give a file name (or - for standard output)"
            );
        }
        let err = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(matches!(err, SaveError::NotAFile { .. }), "{err}");
        let err = write_output(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(matches!(err, SaveError::NotAFile { .. }), "{err}");
        let err = crate::persist::save(Path::new("/dev/null"), &Session::default()).unwrap_err();
        assert!(matches!(err, SaveError::NotAFile { .. }), "{err}");
        assert!(is_char_device(Path::new("/dev/null")));
    }

    #[test]
    fn standard_output_is_written_through_only_where_allowed() {
        for name in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert_eq!(prepare_save(Path::new(name)).unwrap(), SaveTarget::Stdout);
        }
        // Writing files never means stdout: /dev/stdout is whatever stdout is
        // (a terminal, a pipe), and that is not a regular file under cargo test.
        let stdout = std::fs::metadata("/dev/stdout");
        if stdout.as_ref().is_ok_and(|m| !m.is_file()) {
            let err = write_atomic(Path::new("/dev/stdout"), b"x").unwrap_err();
            assert!(matches!(err, SaveError::NotAFile { .. }), "{err}");
            assert!(prepare_file(Path::new("/dev/stdout")).is_err());
            assert!(std::fs::metadata("/dev/stdout").is_ok_and(|m| !m.is_file()));
        }
    }

    #[test]
    fn a_fifo_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let Some(fifo) = make_fifo(dir.path()) else {
            eprintln!("skipped: no mkfifo here");
            return;
        };
        let err = prepare_save(&fifo).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a fifo (named pipe), not a regular file"),
            "{err}"
        );
        assert!(write_output(&fifo, b"x").is_err());
        assert!(write_atomic(&fifo, b"x").is_err());
        use std::os::unix::fs::FileTypeExt as _;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names_in(dir.path()), ["fifo"]);
    }

    #[test]
    fn a_link_to_a_file_writes_the_file_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.ron");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.ron");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // Before: the link was replaced by a regular file, the target kept "old".
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        assert!(matches!(
            prepare_save(&link).unwrap(),
            SaveTarget::File(p) if p == real.canonicalize().unwrap()
        ));
        let dangling = dir.path().join("dangling.ron");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        let err = write_atomic(&dangling, b"x").unwrap_err();
        assert!(matches!(err, SaveError::DanglingLink { .. }), "{err}");
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_link_to_a_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out.ron");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let err = write_atomic(&link, b"x").unwrap_err();
        assert!(err.to_string().contains("is a character device"), "{err}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(is_char_device(Path::new("/dev/null")));
    }

    #[test]
    fn directories_are_refused_with_or_without_a_slash() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare_save(dir.path()).unwrap_err();
        assert!(matches!(err, SaveError::IsDirectory { .. }), "{err}");
        assert!(dir.path().is_dir());
        // Before: `new/` passed the check and the save failed after the run.
        let slash = PathBuf::from(format!("{}/new/", dir.path().display()));
        let err = prepare_save(&slash).unwrap_err();
        assert!(matches!(err, SaveError::EndsInSlash { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("new/: ends with /, which names a folder; give a file name"),
            "{err}"
        );
        let slash = PathBuf::from(format!("{}/", dir.path().display()));
        assert!(matches!(
            prepare_save(&slash).unwrap_err(),
            SaveError::IsDirectory { .. }
        ));
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn a_file_where_a_folder_should_be_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let afile = dir.path().join("afile");
        std::fs::write(&afile, "x").unwrap();
        // Before: "the folder afile does not exist".
        for target in [afile.join("x.ron"), afile.join("deeper").join("x.ron")] {
            let err = prepare_save(&target).unwrap_err();
            assert!(matches!(err, SaveError::ParentIsFile { .. }), "{err}");
            assert!(
                err.to_string()
                    .ends_with(&format!("{} is a file, not a folder", afile.display())),
                "{err}"
            );
        }
        let err = prepare_save(&dir.path().join("no/such/x.ron")).unwrap_err();
        assert!(matches!(err, SaveError::NoFolder { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(std::fs::read_to_string(&afile).unwrap(), "x");
    }

    #[test]
    fn a_name_too_long_is_found_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        // Before: passed the check; the save failed after the run.
        let long = dir.path().join(format!("{}.ron", "n".repeat(296)));
        let err = prepare_save(&long).unwrap_err();
        assert!(matches!(err, SaveError::Write { .. }), "{err}");
        assert!(err.to_string().contains("cannot write"), "{err}");
        assert!(names_in(dir.path()).is_empty());
        // A long name that fits (250 bytes) works, though its temporary is longer.
        let fits = dir.path().join(format!("{}.ron", "n".repeat(246)));
        assert_eq!(prepare_save(&fits).unwrap(), SaveTarget::File(fits.clone()));
        assert!(names_in(dir.path()).is_empty());
        write_atomic(&fits, b"ok").unwrap();
        assert_eq!(std::fs::read(&fits).unwrap(), b"ok");
    }

    #[test]
    fn preparing_leaves_nothing_behind_and_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.ron");
        prepare_save(&target).unwrap();
        assert!(names_in(dir.path()).is_empty());
        std::fs::write(&target, "old").unwrap();
        prepare_save(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(names_in(dir.path()), ["s.ron"]);
    }

    #[test]
    fn a_locked_folder_is_found_before_the_run() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Root may write anyway; only a refused write must be reported.
        if std::fs::File::create(locked.join("x")).is_err() {
            let err = prepare_save(&locked.join("s.ron")).unwrap_err();
            assert!(err.to_string().contains("cannot write"), "{err}");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_save_that_fails_after_the_run_keeps_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("gone");
        std::fs::create_dir(&folder).unwrap();
        let target = prepare_save(&folder.join("run.ron")).unwrap();
        // The disk fills or the folder goes away while the run goes on.
        std::fs::remove_dir(&folder).unwrap();
        let session = Session {
            notes: "the recording".into(),
            ..Default::default()
        };
        let recovery_dir = dir.path().join("cache");
        let failure =
            save_or_recover_in(&target, &session, std::slice::from_ref(&recovery_dir)).unwrap_err();
        assert!(
            matches!(failure.error, SaveError::NoFolder { .. }),
            "{failure}"
        );
        let kept = failure.recovery.as_ref().unwrap().clone();
        assert!(kept.starts_with(&recovery_dir));
        assert!(
            kept.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("run.unsaved-")
        );
        let message = failure.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.starts_with("not saved: "), "{message}");
        assert!(
            message.ends_with(&format!(
                "the recording is kept in {}: move it where you want it",
                kept.display()
            )),
            "{message}"
        );
        assert_eq!(crate::persist::load(&kept).unwrap().notes, "the recording");

        // And when the recovery cannot be written either, both are said.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, "a file").unwrap();
        let failure =
            save_or_recover_in(&target, &session, std::slice::from_ref(&blocked)).unwrap_err();
        assert!(failure.recovery.is_err());
        assert!(
            failure
                .to_string()
                .contains("could not be kept elsewhere either"),
            "{failure}"
        );

        // A save that works needs no recovery.
        let fine = prepare_save(&dir.path().join("fine.ron")).unwrap();
        save_or_recover_in(&fine, &session, &[recovery_dir]).unwrap();
        assert_eq!(
            crate::persist::load(&dir.path().join("fine.ron"))
                .unwrap()
                .notes,
            "the recording"
        );
    }

    #[test]
    fn the_full_device_is_refused_up_front() {
        // /dev/full cannot be detected as full before writing, but it is a
        // device, so it is refused like /dev/null.
        if Path::new("/dev/full").exists() {
            assert!(matches!(
                prepare_save(Path::new("/dev/full")).unwrap_err(),
                SaveError::NotAFile { .. }
            ));
        }
    }
}
