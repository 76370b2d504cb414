//! TLS over loopback: our client against our server, against Python's `ssl`
//! and openssl where they exist, each verification failure explained, the
//! self-signed `--ca` case, and TLS settings saved as paths only.

mod common;
use common::{BIN, free_port, python3, sockbench, text, wait_bounded};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// Writes a certificate and key as PEM files; returns their paths.
fn write_pair(
    dir: &Path,
    name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> (PathBuf, PathBuf) {
    let c = dir.join(format!("{name}.pem"));
    let k = dir.join(format!("{name}-key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// A certificate that is its own CA, for `names`, as `openssl req -x509` makes.
fn self_signed_ca(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    write_pair(dir, "selfsigned", &cert, &key)
}

/// A CA, and a server certificate it signed for `names`, valid from/to as given.
fn ca_and_leaf(dir: &Path, names: &[&str], expired: bool) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sockbench test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let (ca_path, _) = write_pair(dir, "ca", &ca_cert, &ca_key);
    let mut leaf =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, names[0]);
    if expired {
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let (cert, key) = write_pair(dir, "leaf", &leaf_cert, &leaf_key);
    (ca_path, cert, key)
}

/// Starts `sockbench listen tls` and returns it with its address.
fn tls_server(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["listen", "tls", "127.0.0.1:0", "--echo", "--for", "15"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("server listening"), "{first}");
    let addr = first.split_whitespace().nth(3).unwrap().to_owned();
    std::thread::spawn(move || for _ in out.lines() {});
    (child, addr)
}

fn connect_tls(addr: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "connect",
        "tls",
        addr,
        "--send",
        "secret\\n",
        "--wait",
        "0.5",
    ];
    args.extend_from_slice(extra);
    sockbench(&args)
}

#[test]
fn our_client_and_server_with_a_ca_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(dir.path(), &["localhost", "127.0.0.1"], false);
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--alpn",
        "h2,http/1.1",
    ]);
    let save = dir.path().join("tls.ron");
    let o = connect_tls(
        &addr,
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--alpn",
            "http/1.1",
            "--save",
            save.to_str().unwrap(),
        ],
    );
    let _ = server.kill();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let tls_line = out
        .lines()
        .find(|l| l.contains(" client tls "))
        .expect("a tls row");
    assert!(tls_line.contains("TLS 1.3"), "{tls_line}");
    assert!(tls_line.contains("ALPN http/1.1"), "{tls_line}");
    assert!(
        tls_line.contains("issuer CN=sockbench test CA"),
        "{tls_line}"
    );
    assert!(tls_line.contains("SHA-256 "), "{tls_line}");
    assert!(
        out.contains("<- ") && out.contains("\"secret\\n\""),
        "{out}"
    );
    // Saved as paths and choices, never key material.
    let saved = std::fs::read_to_string(&save).unwrap();
    assert!(
        saved.contains("kind: TlsClient(remote: \"127.0.0.1:"),
        "{saved}"
    );
    assert!(
        saved.contains(&format!("ca: [\"{}\"]", ca.display())),
        "{saved}"
    );
    assert!(saved.contains("alpn: [\"http/1.1\"]"), "{saved}");
    assert!(!saved.contains("BEGIN"), "{saved}");
}

#[test]
fn a_self_signed_certificate_given_with_ca_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_ca(dir.path(), &["localhost"]);
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let port = addr.rsplit(':').next().unwrap();
    // Without it: refused, with a reason that says what to do.
    let o = connect_tls(&format!("localhost:{port}"), &[]);
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(err.contains("--ca FILE.pem"), "{err}");
    assert!(
        err.contains("untrusted self-signed certificate") || err.contains("unknown issuer"),
        "{err}"
    );
    // With it: accepted.
    let o = connect_tls(
        &format!("localhost:{port}"),
        &["--ca", cert.to_str().unwrap()],
    );
    let _ = server.kill();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains(" client tls "),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn openssl_made_certificates_work_with_ca() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: openssl is not installed here");
        return;
    }
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    // Its name is checked as OpenSSL does: no alternative names, so its
    // common name (localhost) is the name; 127.0.0.1 is not it.
    let port = addr.rsplit(':').next().unwrap();
    let o = connect_tls(
        &format!("localhost:{port}"),
        &["--ca", cert.to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = connect_tls(&addr, &["--ca", cert.to_str().unwrap()]);
    let _ = server.kill();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("name mismatch"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn each_verification_failure_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    // Unknown issuer: a server with a certificate made on start, a client trusting only the system.
    let (mut server, addr) = tls_server(&[]);
    let o = connect_tls(&addr, &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("unknown issuer: the server's certificate is not signed by an authority this client trusts"), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(" client failed TLS failure: "),
        "{}",
        text(&o.stdout)
    );
    // --insecure accepts it, and says so loudly.
    let o = connect_tls(&addr, &["--insecure"]);
    let _ = server.kill();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("⚠ INSECURE: the server's certificate is NOT verified"),
        "{}",
        text(&o.stdout)
    );

    // Name mismatch: a good chain for another name.
    let (ca, cert, key) = ca_and_leaf(dir.path(), &["other.example"], false);
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let o = connect_tls(&addr, &["--ca", ca.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr)
            .contains("name mismatch: the certificate is for other.example, not for \"127.0.0.1\""),
        "{}",
        text(&o.stderr)
    );
    // --sni names the server as its certificate does.
    let o = connect_tls(
        &addr,
        &["--ca", ca.to_str().unwrap(), "--sni", "other.example"],
    );
    let _ = server.kill();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // Expired.
    let expired = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(expired.path(), &["127.0.0.1"], true);
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let o = connect_tls(&addr, &["--ca", ca.to_str().unwrap()]);
    let _ = server.kill();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("expired: the certificate was valid until 2021-01-01"),
        "{}",
        text(&o.stderr)
    );

    // An alert from the peer: no application protocol in common.
    let (mut server, addr) = tls_server(&["--alpn", "h2"]);
    let o = connect_tls(&addr, &["--insecure", "--alpn", "http/1.1"]);
    let _ = server.kill();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("the peer sent the TLS alert NoApplicationProtocol"),
        "{}",
        text(&o.stderr)
    );

    // Not TLS at all on the other side.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    let talker = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = plain.accept().unwrap();
        let _ = s.write_all(b"220 plain text service ready\r\n");
        // Its hello read before the close: a close with it unread would be
        // a reset, which a slow client could see before our line.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut hello = [0u8; 1024];
        let _ = s.read(&mut hello);
        std::thread::sleep(Duration::from_millis(300));
    });
    let o = connect_tls(&addr.to_string(), &["--insecure"]);
    talker.join().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("is not TLS"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bad_tls_input_exits_2() {
    let bad = |args: &[&str], expected: &str| {
        let o = sockbench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).lines().next().unwrap().contains(expected),
            "{args:?}: {}",
            text(&o.stderr)
        );
    };
    bad(
        &["connect", "tcp", "127.0.0.1:9", "--insecure"],
        "are for tls",
    );
    bad(
        &["connect", "tls", "127.0.0.1:9", "--ca", "/no/such.pem"],
        "--ca /no/such.pem: cannot read the CA certificate file: no such file",
    );
    bad(
        &["connect", "tls", "127.0.0.1:9", "--sni", "bad name"],
        "--sni \"bad name\": not a server name",
    );
    bad(
        &["connect", "tls", "127.0.0.1:9", "--alpn", "h2,,x"],
        "is not a protocol name",
    );
    bad(
        &["listen", "tls", "127.0.0.1:0", "--cert", "/etc/hostname"],
        "--cert needs --key",
    );
    bad(
        &["listen", "udp", "127.0.0.1:0", "--alpn", "h2"],
        "are for tls",
    );
}

#[test]
fn python_ssl_interoperates_both_ways() {
    if !python3() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(dir.path(), &["localhost", "127.0.0.1"], false);
    // A Python TLS echo server, our client.
    let port = free_port();
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain({cert:?}, {key:?})
srv = socket.create_server(("127.0.0.1", {port}))
print("ready", flush=True)
srv.settimeout(15)
conn, _ = srv.accept()
with ctx.wrap_socket(conn, server_side=True) as tls:
    tls.settimeout(10)
    data = tls.recv(1024)
    tls.sendall(b"python: " + data)
"#,
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    );
    let mut py = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let o = connect_tls(
        &format!("127.0.0.1:{port}"),
        &["--ca", ca.to_str().unwrap()],
    );
    wait_bounded(&mut py);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("\"python: secret\\n\""),
        "{}",
        text(&o.stdout)
    );

    // A Python TLS client, our server.
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let port = addr.rsplit(':').next().unwrap();
    let client = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile={ca:?})
with socket.create_connection(("127.0.0.1", {port}), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"from python")
        print(tls.recv(1024).decode())
"#,
        ca = ca.display().to_string(),
    );
    let o = Command::new("python3")
        .args(["-c", &client])
        .output()
        .unwrap();
    let _ = server.kill();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "from python");
}

#[test]
fn a_tls_conversation_replays_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(dir.path(), &["127.0.0.1"], false);
    let (mut server, addr) = tls_server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let file = dir.path().join("recorded.ron");
    let o = connect_tls(
        &addr,
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--save",
            file.to_str().unwrap(),
            "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = sockbench(&["replay", file.to_str().unwrap(), "--check", "--speed", "0"]);
    let _ = server.kill();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("check: every conversation matched the recording"));
    assert!(
        text(&o.stdout).contains(" client tls "),
        "the replay speaks TLS too"
    );
}

// ---- Name checks and pins, through the engine (no command line involved) ----

use sockbench::engine::{Command as EngineCommand, EndpointId, Engine, EventKind, no_wake};
use sockbench::model::endpoint::CertPin;
use sockbench::model::{
    EndpointKind, EndpointSpec, HostPort, TlsClientSettings, TlsServerSettings,
};

/// What a TLS client saw: the handshake's detail and its notes, or its failure.
struct ClientOutcome {
    result: Result<String, String>,
    notes: Vec<String>,
}

/// A TLS server of the engine presenting `cert`/`key` on 127.0.0.1, and a TLS
/// client of the engine connecting to it as `host` with `tls`.
async fn handshake(cert: &Path, key: &Path, host: &str, tls: TlsClientSettings) -> ClientOutcome {
    let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
    engine.send(EngineCommand::Open {
        id: EndpointId(1),
        spec: Box::new(EndpointSpec::new(
            "server",
            EndpointKind::TlsServer {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: TlsServerSettings {
                    cert: Some(cert.to_owned()),
                    key: Some(key.to_owned()),
                    alpn: vec![],
                },
            },
        )),
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut next = async || {
        tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the engine answers in time")
            .expect("the engine runs")
    };
    let port = loop {
        let e = next().await;
        match e.kind {
            EventKind::Listening { local } if e.id == EndpointId(1) => break local.port(),
            EventKind::Failed { error, .. } => panic!("the server failed: {}", error.message),
            _ => {}
        }
    };
    engine.send(EngineCommand::Open {
        id: EndpointId(2),
        spec: Box::new(EndpointSpec::new(
            "client",
            EndpointKind::TlsClient {
                remote: HostPort::new(host, port),
                tls,
            },
        )),
    });
    let mut notes = Vec::new();
    let result = loop {
        let e = next().await;
        if e.id != EndpointId(2) {
            continue;
        }
        match e.kind {
            EventKind::Note { text, .. } => notes.push(text),
            EventKind::TlsHandshake { detail, .. } => break Ok(detail),
            EventKind::Failed { error, .. } => break Err(error.message),
            _ => {}
        }
    };
    engine.shutdown().await;
    ClientOutcome { result, notes }
}

/// A self-signed certificate for `names` that is not a CA (as rcgen makes it).
fn self_signed_leaf(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, CertPin) {
    let made =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let (cert, key) = write_pair(dir, "leaf", &made.cert, &made.signing_key);
    let pin = CertPin::parse(&sockbench::engine::tls::fingerprint(made.cert.der())).unwrap();
    (cert, key, pin)
}

fn with_ca(ca: &Path, sni: Option<&str>) -> TlsClientSettings {
    TlsClientSettings {
        ca: vec![ca.to_owned()],
        sni: sni.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_given_with_ca_must_still_be_for_the_name() {
    let dir = tempfile::tempdir().unwrap();
    // Before: a certificate given with --ca passed whatever name was asked for.
    for (cert, key) in [self_signed_ca(dir.path(), &["localhost"]), {
        let (c, k, _) = self_signed_leaf(dir.path(), &["localhost"]);
        (c, k)
    }] {
        let o = handshake(
            &cert,
            &key,
            "127.0.0.1",
            with_ca(&cert, Some("wrong.example")),
        )
        .await;
        let err = o.result.expect_err("a name mismatch fails");
        assert!(
            err.contains(
                "name mismatch: the certificate is for localhost, not for \"wrong.example\""
            ),
            "{err}"
        );
        assert!(err.contains("--pin sha256:"), "{err}");
        // The address is checked too when no --sni is given.
        let o = handshake(&cert, &key, "127.0.0.1", with_ca(&cert, None)).await;
        let err = o.result.expect_err("127.0.0.1 is not in the certificate");
        assert!(err.contains("not for \"127.0.0.1\""), "{err}");
        // The right name passes.
        let o = handshake(&cert, &key, "127.0.0.1", with_ca(&cert, Some("localhost"))).await;
        assert!(o.result.is_ok(), "{:?}", o.result);
        assert!(o.notes.iter().all(|n| !n.contains('⚠')), "{:?}", o.notes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_signed_certificate_is_checked_for_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_leaf(dir.path(), &["localhost"], false);
    let o = handshake(
        &cert,
        &key,
        "127.0.0.1",
        with_ca(&ca, Some("wrong.example")),
    )
    .await;
    let err = o.result.unwrap_err();
    assert!(err.contains("name mismatch"), "{err}");
    let o = handshake(&cert, &key, "127.0.0.1", with_ca(&ca, Some("localhost"))).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_trusts_one_certificate_whatever_its_name_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pin) = self_signed_leaf(dir.path(), &["localhost"]);
    let pinned = |pin: CertPin| TlsClientSettings {
        sni: Some("wrong.example".into()),
        pin: Some(pin),
        ..Default::default()
    };
    let o = handshake(&cert, &key, "127.0.0.1", pinned(pin)).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(
        o.notes.iter().any(|n| n.starts_with(&format!(
            "⚠ PINNED: only the certificate with SHA-256 {} is accepted",
            pin.hex()
        ))),
        "{:?}",
        o.notes
    );
    // The handshake's detail shows the same fingerprint the pin names.
    assert!(o.result.unwrap().contains(&pin.hex()));

    // Another certificate is refused, with both fingerprints named.
    let mut other = pin;
    other.0[0] ^= 0xFF;
    let o = handshake(&cert, &key, "127.0.0.1", pinned(other)).await;
    let err = o.result.unwrap_err();
    assert!(
        err.contains(&format!(
            "pinned certificate not presented: the server's certificate has SHA-256 {}, not the pinned {}",
            pin.hex(),
            other.hex()
        )),
        "{err}"
    );

    // A pin is exclusive: a certificate the system or --ca would trust is refused too.
    let (ca, cert2, key2) = ca_and_leaf(dir.path(), &["localhost"], false);
    let mut both = pinned(pin);
    both.ca = vec![ca];
    both.sni = Some("localhost".into());
    let o = handshake(&cert2, &key2, "127.0.0.1", both).await;
    assert!(
        o.result
            .unwrap_err()
            .contains("pinned certificate not presented")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_certificate_must_be_in_date() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = ca_and_leaf(dir.path(), &["localhost"], true);
    let der = CertificateDer::from_pem_file(&cert).unwrap();
    let pin = CertPin::parse(&sockbench::engine::tls::fingerprint(&der)).unwrap();
    let o = handshake(
        &cert,
        &key,
        "127.0.0.1",
        TlsClientSettings {
            pin: Some(pin),
            ..Default::default()
        },
    )
    .await;
    let err = o.result.unwrap_err();
    assert!(
        err.contains("expired: the certificate was valid until 2021-01-01"),
        "{err}"
    );
}

/// The Python program of a recorded TLS client trusts what sockbench trusted:
/// a certificate given with --ca (its name still checked), or a pin.
#[test]
fn exported_python_tls_clients_trust_as_sockbench_did() {
    if !python3() {
        return;
    }
    let mut server = Command::new(BIN)
        .args(["listen", "tls", "127.0.0.1:0", "--echo", "--for", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let (mut first, mut note) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut note).unwrap();
    let addr = first.split_whitespace().nth(3).unwrap().to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let pin = note
        .split("SHA-256 ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_owned();
    let cert = note
        .split("saved as ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    for (name, trust) in [
        ("ca", vec!["--ca", cert.as_str()]),
        ("pin", vec!["--pin", pin.as_str()]),
    ] {
        let recording = dir.path().join(format!("{name}.ron"));
        let target = format!("localhost:{port}");
        let mut args = vec!["connect", "tls", target.as_str(), "--send", "hi\\n"];
        args.extend(&trust);
        args.extend(["--wait", "0.3", "--save", recording.to_str().unwrap()]);
        let o = sockbench(&args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        let program = dir.path().join(format!("{name}.py"));
        let o = sockbench(&[
            "export",
            recording.to_str().unwrap(),
            "--to",
            "python",
            "-o",
            program.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let o = Command::new("python3").arg(&program).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            text(&o.stdout).contains("received b'hi\\n'"),
            "{}",
            text(&o.stdout)
        );
    }
    let _ = server.kill();
    wait_bounded(&mut server);
}
