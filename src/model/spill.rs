//! The spill file: where payload bytes beyond the log's memory budget go.
//!
//! One file per log (shared by its snapshots), in the user's cache folder or
//! the temporary folder. It is created new (`O_EXCL`, mode 0600) and, on Unix,
//! unlinked right after opening: no other process can open it by name, and
//! the disk space comes back when the last handle and mapping go, even after
//! a crash. Bytes are appended in segments; each written segment is mapped
//! read-only, so the log hands out `&[u8]` borrowed from the mapping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where cache files go: `$XDG_CACHE_HOME/sockbench`, `~/.cache/sockbench`,
/// then the temporary folder; the first that works wins.
pub fn cache_folders() -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|c| !c.is_empty()) {
        folders.push(PathBuf::from(cache).join("sockbench"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        folders.push(PathBuf::from(home).join(".cache").join("sockbench"));
    }
    folders.push(std::env::temp_dir());
    folders
}

/// An append-only file of spilled payload bytes, read back through mappings.
#[derive(Debug)]
pub struct SpillFile {
    file: std::fs::File,
    /// Bytes reserved so far; each segment reserves its range before writing,
    /// so a log and its snapshots may append to the same file.
    end: AtomicU64,
    /// Where the file was made (it has no name any more on Unix), for messages.
    folder: PathBuf,
}

impl SpillFile {
    /// Makes a new spill file in the first of `folders` that takes one.
    pub fn create_in(folders: &[PathBuf]) -> std::io::Result<SpillFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for folder in folders {
            let _ = create_private_dir(folder);
            let name = format!(
                "spill-{}-{}-{}.bin",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                chrono::Utc::now().timestamp_micros()
            );
            let path = folder.join(name);
            match open_new(&path) {
                Ok(file) => {
                    // Nameless from now on: nothing else can open or alter it.
                    #[cfg(unix)]
                    let _ = std::fs::remove_file(&path);
                    return Ok(SpillFile {
                        file,
                        end: AtomicU64::new(0),
                        folder: folder.clone(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no folder for a spill file")))
    }

    /// Makes a new spill file in the usual place ([`cache_folders`]).
    pub fn create() -> std::io::Result<SpillFile> {
        Self::create_in(&cache_folders())
    }

    /// The folder the file was made in.
    pub fn folder(&self) -> &std::path::Path {
        &self.folder
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `bytes` (not empty) and maps them read-only.
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<memmap2::Mmap> {
        if bytes.is_empty() {
            return Err(std::io::Error::other("an empty segment is never spilled"));
        }
        let offset = self.end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        write_all_at(&self.file, bytes, offset)?;
        // SAFETY: the mapped range was written by us and is never written
        // again (every append reserves a fresh range), and the file has no
        // name on Unix (unlinked at creation) or is opened without sharing
        // for writes elsewhere, so no other process can truncate or change it
        // while the mapping lives.
        unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(bytes.len())
                .map(&self.file)
        }
    }
}

/// A folder only this user can enter, for files other users must not swap:
/// `certs` (or any `name`) under the first cache folder that takes it; in
/// the shared temporary folder, `sockbench-NAME-UID`. Made with mode 0700 and
/// checked after: a real folder (not a link), owned by this user, closed to
/// others. None when no folder passes.
pub fn private_folder(name: &str) -> Option<PathBuf> {
    private_folder_in(&cache_folders(), &std::env::temp_dir(), name)
}

fn private_folder_in(bases: &[PathBuf], temp: &std::path::Path, name: &str) -> Option<PathBuf> {
    bases.iter().find_map(|base| {
        let folder = if base == temp {
            base.join(format!("sockbench-{name}-{}", user_id()?))
        } else {
            base.join(name)
        };
        create_private_dir(&folder).ok()?;
        is_private(&folder).then_some(folder)
    })
}

/// This process's user id (the owner of `/proc/self`), on Unix.
#[cfg(unix)]
fn user_id() -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn user_id() -> Option<u32> {
    Some(0)
}

#[cfg(unix)]
fn is_private(folder: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::symlink_metadata(folder) else {
        return false;
    };
    meta.is_dir() && Some(meta.uid()) == user_id() && meta.mode() & 0o077 == 0
}

#[cfg(not(unix))]
fn is_private(folder: &std::path::Path) -> bool {
    folder.is_dir()
}

fn create_private_dir(folder: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(folder)
    }
}

fn open_new(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt as _;
        // FILE_FLAG_DELETE_ON_CLOSE, and no sharing: the file goes with us.
        options.custom_flags(0x0400_0000).share_mode(0);
    }
    options.open(path)
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    file.write_all_at(bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt as _;
    while !bytes.is_empty() {
        let n = file.seek_write(bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_private_folder_is_never_one_others_can_enter_or_a_link() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let root = tempfile::tempdir().unwrap();
        let (open, linked, good) = (
            root.path().join("open"),
            root.path().join("linked"),
            root.path().join("good"),
        );
        // Someone made `certs` readable by all before us: passed over.
        std::fs::create_dir_all(open.join("certs")).unwrap();
        std::fs::set_permissions(open.join("certs"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // `certs` is a link to a private folder elsewhere: passed over too.
        let elsewhere = root.path().join("elsewhere");
        create_private_dir(&elsewhere).unwrap();
        std::fs::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(&elsewhere, linked.join("certs")).unwrap();
        let temp = root.path().join("no temp here");
        let got = private_folder_in(&[open, linked, good.clone()], &temp, "certs").unwrap();
        assert_eq!(got, good.join("certs"));
        assert_eq!(std::fs::metadata(&got).unwrap().mode() & 0o777, 0o700);

        // In the shared temporary folder, the user's id is in the name.
        let shared = root.path().join("tmp");
        std::fs::create_dir_all(&shared).unwrap();
        let got = private_folder_in(std::slice::from_ref(&shared), &shared, "certs").unwrap();
        let name = got.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("sockbench-certs-{}", user_id().unwrap()));
        assert!(is_private(&got));
    }

    #[test]
    fn segments_read_back_and_the_file_has_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::create_in(&[dir.path().to_owned()]).unwrap();
        let a = spill.append(b"first segment").unwrap();
        let b = spill.append(&[7u8; 5000]).unwrap();
        assert_eq!(&a[..], b"first segment");
        assert_eq!(&b[..], &[7u8; 5000][..]);
        assert_eq!(spill.len(), 13 + 5000);
        assert!(spill.append(b"").is_err());
        #[cfg(unix)]
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unusable_folder_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("a file");
        std::fs::write(&blocked, "x").unwrap();
        let spill = SpillFile::create_in(&[blocked.clone(), dir.path().to_owned()]).unwrap();
        assert_eq!(spill.folder(), dir.path());
        assert!(SpillFile::create_in(&[blocked]).is_err());
    }
}
