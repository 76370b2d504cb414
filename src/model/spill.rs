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
