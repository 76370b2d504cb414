//! Checks the fuzz targets share: a session built from fuzz bytes, a scanner
//! of the exported Python (code apart from string literals), and the
//! properties of the Python, Mermaid, CSV, pcapng and hex dump exports.

use chrono::DateTime;

use crate::export::sequence::sequence;
use crate::export::{Format, export};
use crate::model::{
    EndpointKind, EndpointSpec, EntryKind, HostPort, NO_PEER, Session, TlsClientSettings,
    TlsServerSettings,
};

/// The strings of a one-endpoint session that reach exported text.
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct Strings {
    /// Which endpoint: TCP client or server, UDP client or server, TLS client or server.
    pub kind: u8,
    pub name: String,
    /// Address text: parsed when the parser accepts it, else used as the host.
    pub address: String,
    pub peer: String,
    pub note: String,
    pub path: String,
    pub alpn: String,
    pub file_name: String,
    pub payload: Vec<u8>,
}

impl Strings {
    /// The host the endpoint gets from `address`.
    pub fn host(&self) -> String {
        match self.address.parse::<HostPort>() {
            Ok(hp) => hp.host,
            Err(_) => self.address.clone(),
        }
    }

    /// The same session shape with harmless strings: its program is the code
    /// every hostile variant must have.
    pub fn benign(&self) -> Strings {
        Strings {
            kind: self.kind,
            name: "endpoint".into(),
            address: if self.host().contains(':') {
                "[::1]:1"
            } else {
                "localhost:1"
            }
            .into(),
            peer: "127.0.0.1:9".into(),
            note: "note".into(),
            path: "cert.pem".into(),
            alpn: "h2".into(),
            file_name: "session".into(),
            payload: vec![b'x'; self.payload.len()],
        }
    }

    /// A session of one endpoint with one recorded exchange.
    pub fn session(&self) -> Session {
        let host = HostPort::new(self.host(), 7007);
        let tls_client = TlsClientSettings {
            ca: vec![self.path.clone().into()],
            insecure: false,
            pin: None,
            sni: Some(self.name.clone()),
            alpn: vec![self.alpn.clone(), "http/1.1".into()],
        };
        let tls_server = TlsServerSettings {
            cert: Some(self.path.clone().into()),
            key: Some(self.path.clone().into()),
            alpn: vec![self.alpn.clone()],
        };
        let (kind, client) = match self.kind % 6 {
            0 => (EndpointKind::TcpClient { remote: host }, true),
            1 => (EndpointKind::TcpServer { listen: host }, false),
            2 => (
                EndpointKind::Udp {
                    bind: None,
                    remote: Some(host),
                },
                true,
            ),
            3 => (
                EndpointKind::Udp {
                    bind: Some(host),
                    remote: None,
                },
                false,
            ),
            4 => (
                EndpointKind::TlsClient {
                    remote: host,
                    tls: tls_client,
                },
                true,
            ),
            _ => (
                EndpointKind::TlsServer {
                    listen: host,
                    tls: tls_server,
                },
                false,
            ),
        };
        let mut session = Session {
            notes: self.note.clone(),
            ..Session::default()
        };
        session
            .endpoints
            .push(EndpointSpec::new(self.name.clone(), kind));
        let log = &mut session.log;
        let at = DateTime::from_timestamp_micros(1_000_000).unwrap_or_default();
        let e = log.endpoint_index(&self.name);
        let p = log.peer_index(e, u32::from(!client), &self.peer);
        log.push(at, e, NO_PEER, EntryKind::Note, self.note.as_bytes());
        let (first, second) = if client {
            (EntryKind::Sent, EntryKind::Received)
        } else {
            (EntryKind::Received, EntryKind::Sent)
        };
        log.push(at, e, p, first, &self.payload);
        log.push(at, e, p, second, &self.payload);
        session
    }
}

/// A Python string or bytes literal: its prefix (`b`, `f`, `rb`, …) and the
/// text between its quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    pub prefix: String,
    pub body: String,
}

/// Python source split into its code and its string literals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// The source with every string literal replaced by `S` (comments kept).
    pub skeleton: String,
    pub literals: Vec<Literal>,
}

fn is_string_prefix(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "r" | "u" | "b" | "f" | "br" | "rb" | "fr" | "rf"
    )
}

/// Splits Python source into code and literals as Python's tokenizer does
/// (prefixes, single and triple quotes, backslashes, comments). An
/// unterminated literal is an error.
pub fn scan_python(source: &str) -> Result<Scanned, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut skeleton = String::with_capacity(source.len());
    let mut literals = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                skeleton.push(chars[i]);
                i += 1;
            }
            continue;
        }
        if c != '"' && c != '\'' {
            skeleton.push(c);
            i += 1;
            continue;
        }
        // The identifier right before the quote is a prefix when it is one.
        let word_start = skeleton
            .char_indices()
            .rev()
            .take_while(|(_, ch)| ch.is_ascii_alphanumeric() || *ch == '_')
            .last()
            .map(|(at, _)| at)
            .unwrap_or(skeleton.len());
        let prefix = if is_string_prefix(&skeleton[word_start..]) {
            let p = skeleton[word_start..].to_owned();
            skeleton.truncate(word_start);
            p
        } else {
            String::new()
        };
        let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
        let start = i;
        i += if triple { 3 } else { 1 };
        let body_start = i;
        let body_end = loop {
            match chars.get(i) {
                None => return Err(format!("a literal from character {start} never ends")),
                Some('\\') => i += 2,
                Some('\n') if !triple => {
                    return Err(format!(
                        "a literal from character {start} runs into a newline"
                    ));
                }
                Some(&q) if q == c && !triple => {
                    i += 1;
                    break i - 1;
                }
                Some(&q)
                    if q == c && chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c) =>
                {
                    i += 3;
                    break i - 3;
                }
                Some(_) => i += 1,
            }
        };
        literals.push(Literal {
            prefix,
            body: chars[body_start..body_end.min(chars.len())]
                .iter()
                .collect(),
        });
        skeleton.push('S');
    }
    Ok(Scanned { skeleton, literals })
}

fn hex_value(digits: &[char]) -> Option<u32> {
    let text: String = digits.iter().collect();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&text, 16).ok()
}

/// The value of a (non-raw, non-f) literal as Python reads it: the code
/// points of a `str`, or the bytes of a `bytes` (as code points 0..=255).
pub fn literal_value(literal: &Literal) -> Result<Vec<u32>, String> {
    let prefix = literal.prefix.to_ascii_lowercase();
    if prefix.contains('r') || prefix.contains('f') {
        return Err(format!("a {prefix} literal is not decoded here"));
    }
    let bytes = prefix.contains('b');
    let chars: Vec<char> = literal.body.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if bytes && !c.is_ascii() {
            return Err("bytes can only contain ASCII literal characters".into());
        }
        if c != '\\' {
            out.push(c as u32);
            i += 1;
            continue;
        }
        let Some(&e) = chars.get(i + 1) else {
            return Err("a literal ends in a backslash".into());
        };
        i += 2;
        let fixed = |n: usize, i: &mut usize| -> Result<u32, String> {
            let v = chars
                .get(*i..*i + n)
                .and_then(hex_value)
                .ok_or_else(|| format!("\\{e} needs {n} hex digits"))?;
            *i += n;
            Ok(v)
        };
        match e {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(e as u32),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(10),
            'r' => out.push(13),
            't' => out.push(9),
            'v' => out.push(11),
            'x' => out.push(fixed(2, &mut i)?),
            'u' if !bytes => out.push(fixed(4, &mut i)?),
            'U' if !bytes => {
                let v = fixed(8, &mut i)?;
                if v > 0x10ffff {
                    return Err(format!("\\U{v:08x} is beyond Unicode"));
                }
                out.push(v)
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.get(i).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v)
            }
            other => {
                // Python keeps an unknown escape as it is.
                out.push('\\' as u32);
                out.push(other as u32);
            }
        }
    }
    Ok(out)
}

/// The one literal on the line of `program` that starts with `start`, and its value.
fn value_after(program: &str, start: &str, index: usize) -> Result<Vec<u32>, String> {
    let line = program
        .lines()
        .find_map(|l| l.strip_prefix(start))
        .ok_or_else(|| format!("no line starts with {start:?}"))?;
    let scanned = scan_python(line)?;
    let literal = scanned
        .literals
        .get(index)
        .ok_or_else(|| format!("the {start:?} line has no literal {index}"))?;
    literal_value(literal)
}

fn code_points(text: &str) -> Vec<u32> {
    text.chars().map(|c| c as u32).collect()
}

/// A character that a literal must escape and that the code of our programs
/// never holds: a control other than newline, a non-ASCII character, `\`.
fn needs_escaping(c: char) -> bool {
    (c.is_control() && c != '\n') || !c.is_ascii() || c == '\\'
}

/// The Python program of `s` is ASCII, has exactly the code of the benign
/// program (the strings change only literals), holds no input string outside
/// its literals, and its literals read back as the session's strings.
pub fn check_python(s: &Strings) {
    let Ok(program) = export(&s.session(), &s.file_name, Format::Python, None) else {
        return;
    };
    let benign = s.benign();
    let reference = export(&benign.session(), &benign.file_name, Format::Python, None)
        .unwrap_or_else(|e| panic!("the benign session does not export: {e}"));
    assert!(program.is_ascii(), "the program is not ASCII:\n{program}");
    let scanned = scan_python(&program).unwrap_or_else(|e| panic!("{e}:\n{program}"));
    let expected = scan_python(&reference).unwrap_or_else(|e| panic!("{e}:\n{reference}"));
    assert_eq!(
        scanned.skeleton, expected.skeleton,
        "session strings changed the code:\n{program}"
    );
    for input in [&s.name, &s.address, &s.peer, &s.path, &s.alpn, &s.file_name] {
        if input.chars().count() >= 4 && input.chars().any(needs_escaping) {
            assert!(
                !scanned.skeleton.contains(input.as_str()),
                "{input:?} outside a literal:\n{program}"
            );
        }
    }
    let check = |start: &str, index: usize, want: Vec<u32>| {
        let got = value_after(&program, start, index).unwrap_or_else(|e| panic!("{e}:\n{program}"));
        assert_eq!(
            got, want,
            "the literal after {start:?} reads back wrong:\n{program}"
        );
    };
    check("ENDPOINT = ", 0, code_points(&s.name));
    check("SESSION = ", 0, code_points(&s.file_name));
    check("HOST, PORT = ", 0, code_points(&s.host()));
    let payload: Vec<u32> = s.payload.iter().map(|&b| u32::from(b)).collect();
    check("        (\"send\", ", 0, payload);
}

/// `text` without Mermaid entity codes (`#35;`, `#quot;`).
fn without_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('#') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(';') {
            rest = &after[name_len + 1..];
        } else {
            out.push('#');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The diagram has one line per lifeline and per message, and no label holds
/// Mermaid syntax, HTML or a control or bidi character.
pub fn check_mermaid(session: &Session) {
    let diagram = crate::export::mermaid::to_mermaid(&session.log);
    let seq = sequence(&session.log);
    assert_eq!(
        diagram.lines().count(),
        1 + seq.participants.len() + seq.messages.len(),
        "{diagram}"
    );
    for line in diagram.lines().skip(1) {
        let label = if line.starts_with("    participant ") {
            line.split_once(" as ")
        } else {
            line.split_once(": ")
        }
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("a line without a label: {line:?}"));
        let switch = label.trim().to_ascii_lowercase();
        assert!(
            !["wrap:", "nowrap:", ":wrap:", ":nowrap:"]
                .iter()
                .any(|p| switch.starts_with(p)),
            "a label that switches wrapping: {line:?}"
        );
        let rest = without_entities(label);
        assert!(
            !rest.contains(['#', '%', ';', '"', '<', '>', '&']),
            "syntax in a label: {line:?}"
        );
        assert!(
            !rest.chars().any(crate::export::encode::is_hidden_char),
            "a hidden character in a label: {line:?}"
        );
    }
}

/// Every CSV record has six cells, one per log entry, and no cell is a
/// formula or holds a control character.
pub fn check_csv(session: &Session) {
    let sheet = crate::export::csv::to_csv(&session.log);
    let mut reader = csv::ReaderBuilder::new().from_reader(sheet.as_bytes());
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("{e}: {sheet}"));
        assert_eq!(record.len(), 6, "{sheet}");
        for cell in &record {
            let formula =
                cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err();
            assert!(!formula, "a formula cell {cell:?}");
            assert!(!cell.contains(|c: char| c.is_control()), "{cell:?}");
        }
        rows += 1;
    }
    assert_eq!(rows, session.log.len(), "{sheet}");
}

/// The traffic rows' bytes, in log order.
fn traffic_bytes(session: &Session) -> Vec<u8> {
    let log = &session.log;
    log.entries()
        .iter()
        .filter(|e| e.kind.is_traffic())
        .flat_map(|e| log.bytes_of(e).iter().copied())
        .collect()
}

/// The capture reads back block by block; every packet is Ethernet, IP and
/// TCP or UDP, carries one comment whose lines hold no control or bidi
/// character, and the transport payloads, in order, are the log's payloads.
pub fn check_pcapng(session: &Session) {
    use etherparse::{LaxSlicedPacket, TransportSlice};
    use pcap_parser::{Block, PcapBlockOwned, PcapNGSlice};
    let mut file = Vec::new();
    crate::export::pcapng::write_pcapng(session, &mut file).expect("writing to memory");
    let mut payloads = Vec::new();
    for block in PcapNGSlice::from_slice(&file).expect("a section header") {
        let block = block.unwrap_or_else(|e| panic!("a block does not parse: {e:?}"));
        let PcapBlockOwned::NG(Block::EnhancedPacket(epb)) = block else {
            continue;
        };
        assert!(epb.caplen <= epb.origlen);
        let data = &epb.data[..epb.caplen as usize];
        let packet = LaxSlicedPacket::from_ethernet(data).expect("an Ethernet frame");
        match packet.transport {
            Some(TransportSlice::Tcp(t)) => payloads.extend_from_slice(t.payload()),
            Some(TransportSlice::Udp(u)) => payloads.extend_from_slice(u.payload()),
            other => panic!("neither TCP nor UDP: {other:?}"),
        }
        let comments: Vec<_> = epb
            .options
            .iter()
            .filter(|o| o.code == pcap_parser::OptionCode::Comment)
            .collect();
        assert_eq!(comments.len(), 1);
        let comment = comments[0].as_str().expect("a UTF-8 comment");
        assert!(comment.len() < 4_000, "{} bytes of comment", comment.len());
        for line in comment.lines() {
            assert!(
                !line.chars().any(crate::model::display::is_unsafe_for_display),
                "{line:?}"
            );
        }
    }
    // A datagram longer than UDP carries is written cut (and says so).
    let cut = session.log.entries().iter().any(|e| e.len() > 65_000);
    if !cut {
        assert_eq!(payloads, traffic_bytes(session));
    }
}

/// One header line per payload row, with no control or bidi character; the
/// other lines are `xxd` lines whose hex is the payloads' bytes.
pub fn check_hexdump(session: &Session) {
    let mut out = Vec::new();
    crate::export::hexdump::write_hexdump(&session.log, &mut out).expect("writing to memory");
    let text = String::from_utf8(out).expect("UTF-8");
    let mut headers = 0;
    let mut bytes = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            headers += 1;
            assert!(
                !header.chars().any(crate::model::display::is_unsafe_for_display),
                "{line:?}"
            );
            continue;
        }
        assert!(line.len() > 51 && line.is_char_boundary(51), "{line:?}");
        assert!(line[..8].bytes().all(|b| b.is_ascii_hexdigit()) && &line[8..10] == ": ");
        let hex: String = line[10..50].chars().filter(|c| *c != ' ').collect();
        for pair in hex.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            bytes.push(u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("{line:?}")));
        }
    }
    let rows = session.log.entries().iter().filter(|e| e.kind.is_traffic()).count();
    assert_eq!(headers, rows);
    assert_eq!(bytes, traffic_bytes(session));
}
