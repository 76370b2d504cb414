//! Unix-domain socket names: what a person types and a session file stores
//! ([`UnixPath`]), and what the operating system reports about a peer
//! ([`UnixName`]), which is hostile text: escaped and bounded for display.
//!
//! Written as text, a name is a filesystem path (`/tmp/app.sock`,
//! `./app.sock`), or, on Linux, an abstract name written with a leading `@`
//! (`@app`: no file, the name lives in the kernel and vanishes with the
//! socket). A file whose name begins with `@` is written `./@name`.

use std::fmt;

use super::display::escape_controls;

/// The most bytes a name may have: `sun_path` holds 108, and a filesystem
/// path needs its terminating NUL (an abstract name its leading one).
pub const MAX_UNIX_PATH: usize = 107;

/// The most bytes of a peer's name shown (the system never gives more than
/// `sun_path`, but a name is shown escaped, up to four characters a byte).
const SHOWN_BYTES: usize = 108;

/// A Unix-domain socket's name as a person set it: a path, or `@name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnixPath(String);

/// Why a text is not a Unix socket name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnixPathError {
    #[error("a socket path is required (a file path, or @name for an abstract name)")]
    Empty,
    #[error("\"@\" alone names nothing: write @ and the abstract name, e.g. @myapp")]
    EmptyAbstract,
    #[error(
        "a socket path cannot contain a NUL character (at byte {position}); abstract names are written @name"
    )]
    Nul { position: usize },
    #[error(
        "path too long: {len} bytes, a Unix socket name has at most {MAX_UNIX_PATH} (sun_path); use a shorter path, e.g. in /tmp or relative to the working folder"
    )]
    TooLong { len: usize },
}

impl UnixPath {
    /// Checks a typed name. Spaces at the ends are kept: they belong to the name.
    pub fn parse(text: &str) -> Result<UnixPath, UnixPathError> {
        if text.is_empty() {
            return Err(UnixPathError::Empty);
        }
        if text == "@" {
            return Err(UnixPathError::EmptyAbstract);
        }
        if let Some(position) = text.bytes().position(|b| b == 0) {
            return Err(UnixPathError::Nul { position });
        }
        let len = text.strip_prefix('@').unwrap_or(text).len();
        if len > MAX_UNIX_PATH {
            return Err(UnixPathError::TooLong { len });
        }
        Ok(UnixPath(text.to_owned()))
    }

    /// The name as typed (`@name` for an abstract one).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The abstract name's bytes (without the `@`), if this is one.
    pub fn abstract_name(&self) -> Option<&[u8]> {
        self.0.strip_prefix('@').map(str::as_bytes)
    }

    /// The filesystem path, if this is not an abstract name.
    pub fn fs_path(&self) -> Option<&std::path::Path> {
        (!self.0.starts_with('@')).then(|| std::path::Path::new(&self.0))
    }

    /// What the socket address holds: the path's bytes, or NUL and the abstract name.
    pub fn socket_bytes(&self) -> Vec<u8> {
        match self.abstract_name() {
            Some(name) => [&[0u8][..], name].concat(),
            None => self.0.as_bytes().to_vec(),
        }
    }

    /// The name for a label or a log line: controls escaped.
    pub fn shown(&self) -> String {
        escape_controls(&self.0).into_owned()
    }
}

impl std::str::FromStr for UnixPath {
    type Err = UnixPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnixPath::parse(s)
    }
}

impl fmt::Display for UnixPath {
    /// Escaped: a path is text a file or a person controls.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&self.0))
    }
}

impl serde::Serialize for UnixPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for UnixPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UnixPath::parse(&s).map_err(|e| serde::de::Error::custom(format!("unix socket: {e}")))
    }
}

/// A Unix-domain socket's name as the operating system reports it (a peer's,
/// or our own): bytes the other side chose, so shown only escaped and bounded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixName {
    /// Not bound to any name: a connecting client usually is; a datagram
    /// sender that is cannot be answered.
    Unnamed,
    /// A filesystem path (its raw bytes).
    Path(Vec<u8>),
    /// A Linux abstract name (the bytes after the leading NUL).
    Abstract(Vec<u8>),
}

impl UnixName {
    /// The name as typed in a session, if it can be (a path that is UTF-8
    /// without NUL, or an abstract name likewise).
    pub fn to_unix_path(&self) -> Option<UnixPath> {
        match self {
            UnixName::Unnamed => None,
            UnixName::Path(p) => UnixPath::parse(std::str::from_utf8(p).ok()?).ok(),
            UnixName::Abstract(n) => {
                UnixPath::parse(&format!("@{}", std::str::from_utf8(n).ok()?)).ok()
            }
        }
    }
}

impl From<&UnixPath> for UnixName {
    fn from(p: &UnixPath) -> Self {
        match p.abstract_name() {
            Some(n) => UnixName::Abstract(n.to_vec()),
            None => UnixName::Path(p.as_str().as_bytes().to_vec()),
        }
    }
}

impl fmt::Display for UnixName {
    /// `(unnamed)`, the path, or `@name`: invalid UTF-8 as `\xNN`, controls
    /// escaped, at most [`SHOWN_BYTES`] bytes of the name (then `…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = match self {
            UnixName::Unnamed => return f.write_str("(unnamed)"),
            UnixName::Path(p) => p.as_slice(),
            UnixName::Abstract(n) => {
                f.write_str("@")?;
                n.as_slice()
            }
        };
        f.write_str(&escape_name_bytes(bytes))
    }
}

/// Bytes of a name as one line of text: valid UTF-8 with controls escaped,
/// other bytes as `\xNN`, cut after [`SHOWN_BYTES`] bytes.
pub fn escape_name_bytes(bytes: &[u8]) -> String {
    let cut = bytes.len() > SHOWN_BYTES;
    let bytes = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let mut s = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        s.push_str(&escape_controls(chunk.valid()));
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_when_typed() {
        assert_eq!(UnixPath::parse(""), Err(UnixPathError::Empty));
        assert_eq!(UnixPath::parse("@"), Err(UnixPathError::EmptyAbstract));
        assert_eq!(
            UnixPath::parse("/tmp/a\0b"),
            Err(UnixPathError::Nul { position: 6 })
        );
        let long = format!("/tmp/{}", "x".repeat(103));
        assert_eq!(long.len(), 108);
        let e = UnixPath::parse(&long).unwrap_err();
        assert_eq!(e, UnixPathError::TooLong { len: 108 });
        assert!(e.to_string().starts_with("path too long: 108 bytes"), "{e}");
        assert!(UnixPath::parse(&long[..107]).is_ok());
        let abs = UnixPath::parse("@app").unwrap();
        assert_eq!(abs.abstract_name(), Some(&b"app"[..]));
        assert_eq!(abs.socket_bytes(), b"\0app");
        assert!(abs.fs_path().is_none());
        let file = UnixPath::parse("./@app").unwrap();
        assert_eq!(file.abstract_name(), None);
        assert_eq!(file.fs_path(), Some(std::path::Path::new("./@app")));
    }

    #[test]
    fn a_name_is_stored_as_text_and_checked_when_read() {
        let p = UnixPath::parse("/tmp/s\"q\n.sock").unwrap();
        let text = ron::to_string(&p).unwrap();
        assert_eq!(ron::from_str::<UnixPath>(&text).unwrap(), p);
        let e = ron::from_str::<UnixPath>("\"\"").unwrap_err().to_string();
        assert!(e.contains("socket path is required"), "{e}");
        // Shown escaped: a newline in a path cannot forge a log line.
        assert_eq!(p.to_string(), "/tmp/s\"q\\n.sock");
    }

    #[test]
    fn peer_names_from_the_system_are_escaped_and_bounded() {
        assert_eq!(UnixName::Unnamed.to_string(), "(unnamed)");
        let hostile = UnixName::Path(b"/tmp/\x1b[31m\n\xff\xfe.sock".to_vec());
        let shown = hostile.to_string();
        assert_eq!(shown, "/tmp/\\x1b[31m\\n\\xff\\xfe.sock");
        assert!(!shown.chars().any(char::is_control));
        let long = UnixName::Abstract(vec![b'a'; 500]);
        let shown = long.to_string();
        assert_eq!(shown.chars().count(), 1 + SHOWN_BYTES + 1, "{shown}");
        assert!(shown.starts_with('@') && shown.ends_with('…'));
        assert_eq!(
            UnixName::Abstract(b"x".to_vec()).to_unix_path(),
            Some(UnixPath::parse("@x").unwrap())
        );
        assert_eq!(UnixName::Path(vec![0xff]).to_unix_path(), None);
    }
}
