//! `sockbench export --to pcapng` read by tshark (where installed: the
//! Debian package tshark; skipped with a message elsewhere) and by
//! `sockbench import`, and `--to hexdump` against `xxd` of the same bytes.

mod common;
use common::{BIN, run, text};

use std::path::{Path, PathBuf};
use std::process::Command;

use sockbench::model::EntryKind;

/// Whether tshark is here; says so when it is not (the test then skips).
fn tshark() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipped: tshark is not installed (Debian package tshark)");
            false
        }
    }
}

/// Runs tshark on `file` with `args` and returns its stdout.
fn tshark_on(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["-r", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run("tshark", &all);
    assert!(o.status.success(), "tshark {all:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Bytes no text notation flatters: every value, over and over.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A web client on IPv6 talking to port 8080: a request, then an answer of
/// 5,000 binary bytes (four segments), then FINs; and a UDP exchange.
fn web_session(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let request = b"GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n".to_vec();
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec();
    answer.extend(binary(5000, 7));
    let file = dir.join("web.ron");
    std::fs::write(
        &file,
        format!(
            r#"(format: 1, endpoints: [
                (name: "browser", kind: TcpClient(remote: "[::1]:8080")),
                (name: "probe", kind: Udp(bind: "127.0.0.1:5353", remote: "127.0.0.1:9999"))],
            log: (peers: [(endpoint: "browser", peer: 0, remote: "[::1]:8080"), (endpoint: "probe", peer: 0, remote: "127.0.0.1:9999")], entries: [
                (at: "2026-01-01T00:00:00.000000Z", endpoint: "browser", peer: 0, event: Connected("from [::1]:41000")),
                (at: "2026-01-01T00:00:00.000100Z", endpoint: "browser", peer: 0, event: Sent(Hex("{}"))),
                (at: "2026-01-01T00:00:00.000200Z", endpoint: "browser", peer: 0, event: Received(Hex("{}"))),
                (at: "2026-01-01T00:00:00.000250Z", endpoint: "probe", event: Bound("127.0.0.1:5353")),
                (at: "2026-01-01T00:00:00.000300Z", endpoint: "probe", peer: 0, event: Sent(Hex("{}"))),
                (at: "2026-01-01T00:00:00.000400Z", endpoint: "browser", peer: 0, event: PeerClosed("the peer closed its sending side")),
                (at: "2026-01-01T00:00:00.000500Z", endpoint: "browser", peer: 0, event: Closed("connection closed")),
            ]))"#,
            hex(&request),
            hex(&answer),
            hex(&binary(300, 1)),
        ),
    )
    .unwrap();
    (file, request, answer)
}

fn export(file: &Path, to: &str, out: &Path) {
    let o = run(
        BIN,
        &[
            "export",
            file.to_str().unwrap(),
            "--to",
            to,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(o.stdout, b"");
}

#[test]
fn tshark_follows_the_tcp_stream_and_dissects_http() {
    if !tshark() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, request, answer) = web_session(dir.path());
    let capture = dir.path().join("web.pcapng");
    export(&file, "pcapng", &capture);

    // The stream's bytes, each direction in order, as tshark reassembles them.
    let follow = tshark_on(&capture, &["-qz", "follow,tcp,raw,0"]);
    let mut to_server = String::new();
    let mut to_client = String::new();
    for line in follow.lines() {
        if let Some(h) = line.strip_prefix('\t') {
            to_client.push_str(h.trim());
        } else if !line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            to_server.push_str(line);
        }
    }
    assert_eq!(to_server, hex(&request), "{follow}");
    assert_eq!(to_client, hex(&answer), "{follow}");

    // The request is HTTP on 8080; no segment is out of order, lost or repeated.
    let http = tshark_on(
        &capture,
        &[
            "-Y",
            "http.request",
            "-T",
            "fields",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.dstport",
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
        ],
    );
    assert_eq!(http.trim(), "::1\t8080\tGET\t/index.html", "{http}");
    let problems = tshark_on(
        &capture,
        &[
            "-Y",
            "tcp.analysis.flags",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert_eq!(problems.trim(), "", "tshark flags these frames");
    let flags = tshark_on(
        &capture,
        &["-Y", "tcp", "-T", "fields", "-e", "tcp.flags.str"],
    );
    let flags: Vec<&str> = flags.lines().map(str::trim).collect();
    assert_eq!(flags.first(), Some(&"··········S·"), "{flags:?}");
    assert_eq!(
        flags.len(),
        3 + 1 + 4 + 4,
        "handshake, request, four answer segments, FINs and ACKs: {flags:?}"
    );

    // The datagram, and every packet's comment naming its endpoints.
    let udp = tshark_on(
        &capture,
        &[
            "-Y",
            "udp",
            "-T",
            "fields",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.payload",
        ],
    );
    assert_eq!(udp.trim(), format!("5353\t9999\t{}", hex(&binary(300, 1))));
    let comments = tshark_on(&capture, &["-T", "fields", "-e", "frame.comment"]);
    let comments: Vec<&str> = comments.lines().collect();
    assert_eq!(comments.len(), 13, "{comments:?}");
    assert_eq!(comments[0], "browser → [::1]:8080");
    assert_eq!(comments[4], "[::1]:8080 → browser");
    assert_eq!(comments[8], "probe → 127.0.0.1:9999");
}

#[test]
fn a_recorded_http_session_is_http_on_its_port_once() {
    if !tshark() {
        return;
    }
    // The shipped recording holds both ends (a browser and a web server).
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("http.pcapng");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/recorded-http.ron");
    export(&shipped, "pcapng", &capture);
    let http = tshark_on(
        &capture,
        &[
            "-Y",
            "http",
            "-T",
            "fields",
            "-e",
            "frame.comment",
            "-e",
            "http.request.method",
            "-e",
            "http.response.code",
        ],
    );
    assert_eq!(
        http,
        "browser → web server\tGET\t\nweb server → browser\t\t200\n"
    );
}

#[test]
fn a_pcapng_imports_back_to_the_same_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (file, request, answer) = web_session(dir.path());
    let capture = dir.path().join("web.pcapng");
    export(&file, "pcapng", &capture);
    let back = dir.path().join("back.ron");
    let o = run(
        BIN,
        &[
            "import",
            capture.to_str().unwrap(),
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let session = sockbench::persist::load(&back).unwrap();
    let log = &session.log;
    let sent_by = |name: &str| -> Vec<u8> {
        log.entries()
            .iter()
            .filter(|e| e.kind == EntryKind::Sent && log.endpoint_name(e) == name)
            .flat_map(|e| {
                assert!(e.is_complete());
                log.bytes_of(e).to_vec()
            })
            .collect()
    };
    assert_eq!(sent_by("client"), request);
    assert_eq!(sent_by("server"), answer);
    assert!(
        log.entries()
            .iter()
            .any(|e| e.kind == EntryKind::PeerClosed && log.endpoint_name(e) == "client"),
        "the server's FIN came back"
    );

    // The datagrams come back too, as the conversation picked by port.
    let o = run(
        BIN,
        &[
            "import",
            capture.to_str().unwrap(),
            "-o",
            back.to_str().unwrap(),
            "--port",
            "9999",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let session = sockbench::persist::load(&back).unwrap();
    let log = &session.log;
    let sent: Vec<&[u8]> = log
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::Sent)
        .map(|e| log.bytes_of(e))
        .collect();
    assert_eq!(sent, [&binary(300, 1)[..]]);
}

#[test]
fn pcapng_goes_to_stdout_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _, _) = web_session(dir.path());
    let o = run(BIN, &["export", file.to_str().unwrap(), "--to", "pcapng"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let to_file = dir.path().join("web.pcapng");
    export(&file, "pcapng", &to_file);
    // The same bytes, whichever the target; a section header block first.
    assert_eq!(o.stdout, std::fs::read(&to_file).unwrap());
    assert_eq!(o.stdout[..4], [0x0a, 0x0d, 0x0d, 0x0a]);
}

#[test]
fn the_hexdump_is_xxds_under_a_header_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let (file, request, answer) = web_session(dir.path());
    let dump = dir.path().join("web.txt");
    export(&file, "hexdump", &dump);
    let dump = std::fs::read_to_string(&dump).unwrap();
    let headers: Vec<&str> = dump.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# 2026-01-01T00:00:00.000100Z browser -> [::1]:8080 (43 bytes)",
            "# 2026-01-01T00:00:00.000200Z browser <- [::1]:8080 (5041 bytes)",
            "# 2026-01-01T00:00:00.000300Z probe -> 127.0.0.1:9999 (300 bytes)",
        ]
    );
    let xxd_ok = Command::new("xxd").arg("-v").output().is_ok();
    if !xxd_ok {
        eprintln!("skipped the comparison with xxd: xxd is not installed");
        return;
    }
    // Each row's lines are xxd's lines for the same bytes.
    let rows: Vec<&str> = dump.split("# ").filter(|r| !r.is_empty()).collect();
    for (row, bytes) in rows.iter().zip([request, answer, binary(300, 1)]) {
        let raw = dir.path().join("row.bin");
        std::fs::write(&raw, &bytes).unwrap();
        let o = run("xxd", &[raw.to_str().unwrap()]);
        assert!(o.status.success());
        let ours = row.split_once('\n').unwrap().1;
        assert_eq!(ours, text(&o.stdout));
    }
}

#[test]
fn help_lists_every_format() {
    let o = run(BIN, &["export", "--help"]);
    let help = text(&o.stdout);
    for name in ["python", "mermaid", "csv", "pcapng", "hexdump"] {
        assert!(help.contains(name), "{help}");
    }
}

#[test]
fn pcapng_is_not_written_to_a_terminal() {
    // `script` (util-linux) gives the command a terminal for its stdout.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, _, _) = web_session(dir.path());
    let line = format!(
        "{BIN} export '{}' --to pcapng; echo status=$?",
        file.display()
    );
    let o = run("script", &["-qec", &line, "/dev/null"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("error: pcapng is binary: write it to a file with -o FILE"),
        "{out}"
    );
    assert!(out.contains("status=2"), "{out}");
    assert!(
        !out.contains('\u{fffd}'),
        "no capture bytes on the terminal: {out}"
    );
}

#[test]
fn unix_traffic_is_exported_on_made_up_addresses_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unix.ron");
    std::fs::write(
        &file,
        r#"(format: 1, endpoints: [(name: "srv", kind: UnixServer(path: "/run/app.sock"))],
        log: (peers: [(endpoint: "srv", peer: 1, remote: "(unnamed #1)")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "srv", event: Listening("/run/app.sock")),
            (at: "2026-01-01T00:00:00.000001Z", endpoint: "srv", peer: 1, event: Accepted("on /run/app.sock")),
            (at: "2026-01-01T00:00:00.000002Z", endpoint: "srv", peer: 1, event: Received(Text("ping\n"))),
            (at: "2026-01-01T00:00:00.000003Z", endpoint: "srv", peer: 1, event: Sent(Text("pong\n"))),
        ]))"#,
    )
    .unwrap();
    let capture = dir.path().join("unix.pcapng");
    let o = run(
        BIN,
        &[
            "export",
            file.to_str().unwrap(),
            "--to",
            "pcapng",
            "-o",
            capture.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("note: Unix-domain socket traffic (1 conversation of \"srv\") is written as TCP/UDP between made-up addresses"),
        "{err}"
    );
    if !tshark() {
        return;
    }
    // Wireshark sees the bytes, each direction in order.
    let follow = tshark_on(&capture, &["-qz", "follow,tcp,raw,0"]);
    assert!(follow.contains(&hex(b"ping\n")), "{follow}");
    assert!(follow.contains(&hex(b"pong\n")), "{follow}");
    // And is told what the addresses stand for.
    let comments = tshark_on(&capture, &["-T", "fields", "-e", "frame.comment"]);
    let first = comments.lines().next().unwrap_or_default();
    assert!(first.contains("Unix-domain stream conversation"), "{first}");
    assert!(first.contains("/run/app.sock"), "{first}");
}
