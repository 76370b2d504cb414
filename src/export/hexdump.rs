//! A session's payloads as a hex dump in the style of `xxd`: for each
//! payload row of the log, a header line (time, endpoint, direction, peer,
//! length), then the bytes 16 to a line — offset, hex in pairs, and the
//! printable ASCII, exactly as `xxd` prints the same bytes. Written row by
//! row, so a log of any size is never held whole as text.

use std::io::{self, Write};

use crate::model::log::{Entry, TrafficLog};
use crate::persist::format_timestamp;

/// Writes every payload row of `log` to `out`.
pub fn write_hexdump(log: &TrafficLog, out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::with_capacity(80);
    for e in log.entries().iter().filter(|e| e.kind.is_traffic()) {
        header(log, e, out)?;
        for (i, row) in log.bytes_of(e).chunks(16).enumerate() {
            line.clear();
            xxd_line(i * 16, row, &mut line);
            out.write_all(line.as_bytes())?;
        }
    }
    out.flush()
}

/// `# TIME ENDPOINT -> PEER (N bytes)`: names and addresses with their
/// control characters escaped, so a name can never make a line of its own.
fn header(log: &TrafficLog, e: &Entry, out: &mut dyn Write) -> io::Result<()> {
    let peer = match log.peer_of(e) {
        Some(p) if !p.remote.is_empty() => p.remote.clone(),
        Some(p) => format!("peer #{}", p.number),
        None => "-".to_owned(),
    };
    let kept = if e.is_complete() {
        String::new()
    } else {
        format!(", only the first {} kept", e.len() - e.dropped())
    };
    writeln!(
        out,
        "# {} {} {} {} ({} byte{}{kept})",
        format_timestamp(&e.at()),
        crate::model::escape_controls(log.endpoint_name(e)),
        e.kind.label(),
        crate::model::escape_controls(&peer),
        e.len(),
        if e.len() == 1 { "" } else { "s" },
    )
}

/// One line of `xxd`'s default output: `00000010: 4865 6c6c 6f0a  Hello.`
/// (the hex column padded to its full width on a short last line).
fn xxd_line(offset: usize, row: &[u8], line: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(line, "{offset:08x}: ");
    for i in 0..16 {
        match row.get(i) {
            Some(b) => {
                let _ = write!(line, "{b:02x}");
            }
            None => line.push_str("  "),
        }
        if i % 2 == 1 {
            line.push(' ');
        }
    }
    line.push(' ');
    line.extend(row.iter().map(|&b| {
        if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        }
    }));
    line.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntryKind;
    use crate::model::log::NO_PEER;
    use chrono::DateTime;

    #[test]
    fn lines_are_xxds() {
        let mut line = String::new();
        xxd_line(0, b"GET / HTTP/1.0\r\n", &mut line);
        assert_eq!(
            line,
            "00000000: 4745 5420 2f20 4854 5450 2f31 2e30 0d0a  GET / HTTP/1.0..\n"
        );
        line.clear();
        xxd_line(16, b"abc", &mut line);
        assert_eq!(
            line,
            "00000010: 6162 63                                  abc\n"
        );
    }

    #[test]
    fn a_hostile_name_stays_on_its_header_line() {
        let mut log = TrafficLog::new();
        let ep = log.endpoint_index("evil\n00000000: 4142  AB");
        let at = DateTime::from_timestamp_micros(0).unwrap();
        log.push(at, ep, NO_PEER, EntryKind::Sent, &[0, 0x41, 0xff]);
        log.push(at, ep, NO_PEER, EntryKind::Note, b"not a payload");
        let mut out = Vec::new();
        write_hexdump(&log, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "# 1970-01-01T00:00:00.000000Z evil\\n00000000: 4142  AB -> - (3 bytes)\n\
             00000000: 0041 ff                                  .A.\n"
        );
    }
}
