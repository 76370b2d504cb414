//! Exports of a session: the equivalent Python program of an endpoint, the log
//! as a Mermaid sequence diagram, as CSV, as a pcapng capture for Wireshark,
//! and its payloads as an `xxd`-style hex dump. Pure functions of the
//! session, shared by the window and `sockbench export` through [`check`]
//! and [`write_to`] (or [`save`]); [`Format::ALL`] is the one list of formats
//! both offer. Every string taken from the session is encoded for its target
//! by [`encode`]: a session file can never add code to a program, lines to a
//! diagram, formulas to a sheet or rows to a dump.

pub mod csv;
pub mod encode;
pub mod hexdump;
pub mod mermaid;
pub mod pcapng;
pub mod python;
pub mod sequence;

use std::io::Write;

use crate::model::Session;
use crate::model::display::escape_controls;
use crate::model::replay::{EndpointPlan, Role};
use crate::persist::{SaveError, SaveTarget};

/// What to export to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Python,
    Mermaid,
    Csv,
    Pcapng,
    Hexdump,
}

impl Format {
    /// Every format, in the order the window's menu and `--help` list them:
    /// the one list of formats.
    pub const ALL: [Format; 5] = [
        Format::Csv,
        Format::Python,
        Format::Mermaid,
        Format::Pcapng,
        Format::Hexdump,
    ];

    /// The format's name on the command line (`--to NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Python => "python",
            Format::Mermaid => "mermaid",
            Format::Csv => "csv",
            Format::Pcapng => "pcapng",
            Format::Hexdump => "hexdump",
        }
    }

    /// The format's name in the window's menu.
    pub fn label(self) -> &'static str {
        match self {
            Format::Python => "Python",
            Format::Mermaid => "Mermaid",
            Format::Csv => "CSV",
            Format::Pcapng => "pcapng",
            Format::Hexdump => "Hex dump",
        }
    }

    /// What the format holds, in a few words.
    pub fn about(self) -> &'static str {
        match self {
            Format::Python => "an endpoint as a Python program (standard socket module)",
            Format::Mermaid => "the log as a Mermaid sequence diagram",
            Format::Csv => "the log as CSV: time, endpoint, event, peer, length, data",
            Format::Pcapng => {
                "the log as a capture for Wireshark and tshark (synthetic Ethernet, IP, TCP or UDP headers)"
            }
            Format::Hexdump => "the payloads as a hex dump in the style of xxd",
        }
    }

    /// The usual file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Python => "py",
            Format::Mermaid => "mmd",
            Format::Csv => "csv",
            Format::Pcapng => "pcapng",
            Format::Hexdump => "txt",
        }
    }

    /// True for formats that are not text (never for a clipboard or a terminal).
    pub fn is_binary(self) -> bool {
        self == Format::Pcapng
    }

    /// The format named `name` (as [`Format::name`] gives it).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A plan of nothing recorded for the endpoint named (or the first client,
/// else the first endpoint) with scheduled sends: its program plays them.
fn scheduled_plan(session: &Session, endpoint: Option<&str>) -> Option<EndpointPlan> {
    let candidates = || {
        session
            .endpoints
            .iter()
            .filter(|e| endpoint.is_none_or(|n| e.name == n) && !e.sends.is_empty())
    };
    let spec = candidates()
        .find(|e| e.kind.tag().is_client())
        .or_else(|| candidates().next())?;
    let role = if spec.kind.tag().is_server() {
        Role::Server
    } else {
        Role::Client
    };
    Some(EndpointPlan {
        spec: spec.clone(),
        role,
        conversations: vec![crate::model::replay::Conversation {
            steps: Vec::new(),
            peer_closed: false,
            remote: String::new(),
            dropped: 0,
        }],
        ignore: Vec::new(),
    })
}

/// The endpoint plan a Python program is made from: `endpoint`, or the first
/// client with recorded payloads (or the first endpoint with any).
fn python_plan(session: &Session, endpoint: Option<&str>) -> Result<EndpointPlan, String> {
    let mut plans = match crate::model::replay::plan_session_for_programs(session, endpoint) {
        Ok(plans) if !plans.is_empty() => plans,
        // Nothing recorded, but an endpoint that sends by itself: its
        // program plays its scheduled sends.
        other => {
            if let Some(plan) = scheduled_plan(session, endpoint) {
                return Ok(plan);
            }
            other.map_err(|e| e.to_string())?;
            return Err("nothing recorded to export".to_owned());
        }
    };
    let index = plans
        .iter()
        .position(|p| p.role == Role::Client)
        .unwrap_or(0);
    let plan = plans.swap_remove(index);
    // A program that sent a payload's first bytes as the whole would be a
    // false word: refuse, and say how to record what is missing.
    let dropped: u64 = plan.conversations.iter().map(|c| c.dropped).sum();
    if dropped > 0 {
        return Err(format!(
            "endpoint \"{}\": {dropped} payload bytes were dropped by the log budget when recorded, so a Python program cannot send or expect them; record again with a larger --log-budget or --log-overflow spill",
            escape_controls(plan.name())
        ));
    }
    Ok(plan)
}

/// Whether `session` can be exported as `format` (for a Python program: the
/// endpoint exists and has something to send): bad input is found before
/// any output is touched. The other formats take any session.
pub fn check(session: &Session, format: Format, endpoint: Option<&str>) -> Result<(), String> {
    match format {
        Format::Python => python_plan(session, endpoint).map(drop),
        _ => Ok(()),
    }
}

/// What a person should know about the export of `session` as `format`
/// that the output itself cannot show them at once (for a pcapng: that Unix
/// socket traffic stands on made-up addresses). A command prints it on stderr.
pub fn notes(session: &Session, format: Format) -> Vec<String> {
    match format {
        Format::Pcapng => pcapng::unix_note(session).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Writes the export of `session` (named `name`, which the Python program
/// keeps in a literal) to `out` as it is made: a pcapng or a hex dump of a
/// large (spilled) log streams, packet by packet and row by row. Call
/// [`check`] first; this fails only when `out` does.
pub fn write_to(
    session: &Session,
    name: &str,
    format: Format,
    endpoint: Option<&str>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Mermaid => out.write_all(mermaid::to_mermaid(&session.log).as_bytes()),
        Format::Csv => out.write_all(csv::to_csv(&session.log).as_bytes()),
        Format::Python => {
            let plan = python_plan(session, endpoint).map_err(std::io::Error::other)?;
            out.write_all(python::to_python_with(&plan, name, &session.library).as_bytes())
        }
        Format::Pcapng => pcapng::write_pcapng(session, out),
        Format::Hexdump => hexdump::write_hexdump(&session.log, out),
    }?;
    out.flush()
}

/// Exports to a checked target (see [`crate::persist::prepare_save`]):
/// standard output written through, a file replaced atomically once the
/// whole export is written.
pub fn save(
    session: &Session,
    name: &str,
    format: Format,
    endpoint: Option<&str>,
    target: &SaveTarget,
) -> Result<(), SaveError> {
    const BUFFER: usize = 256 * 1024;
    match target {
        SaveTarget::Stdout => {
            let mut out = std::io::BufWriter::with_capacity(BUFFER, std::io::stdout().lock());
            write_to(session, name, format, endpoint, &mut out)
                .map_err(|source| SaveError::Stdout { source })
        }
        SaveTarget::File(path) => crate::persist::write_atomic_with(path, |file| {
            let mut out = std::io::BufWriter::with_capacity(BUFFER, file);
            write_to(session, name, format, endpoint, &mut out)
        }),
    }
}

/// Exports `session` as text, for the text formats (a clipboard, a view):
/// [`check`] and [`write_to`] into memory. A binary format is refused; write
/// it to a file with [`save`].
pub fn export(
    session: &Session,
    name: &str,
    format: Format,
    endpoint: Option<&str>,
) -> Result<String, String> {
    if format.is_binary() {
        return Err(format!(
            "{} is not text: export it to a file",
            format.name()
        ));
    }
    check(session, format, endpoint)?;
    let mut out = Vec::new();
    write_to(session, name, format, endpoint, &mut out).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::{EndpointKind, EndpointSpec};
    use crate::model::log::EntryKind;

    /// A payload whose bytes the log budget dropped is never exported as if
    /// its first bytes were all of it: the Python export is refused.
    #[test]
    fn python_refuses_payloads_the_recording_dropped() {
        let mut s = Session::default();
        s.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: "127.0.0.1:7".parse().unwrap(),
            },
        ));
        let ep = s.log.endpoint_index("client");
        let p = s.log.peer_index(ep, 0, "127.0.0.1:7");
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap();
        s.log.push(at, ep, p, EntryKind::Connected, b"");
        s.log.push(at, ep, p, EntryKind::Sent, b"whole");
        assert!(check(&s, Format::Python, None).is_ok());
        s.log.push_kept(at, ep, p, EntryKind::Sent, b"first", 1000);
        let err = check(&s, Format::Python, None).unwrap_err();
        assert!(err.contains("1000 payload bytes were dropped"), "{err}");
        assert!(err.contains("--log-overflow spill"), "{err}");
    }
}
