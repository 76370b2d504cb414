//! An endpoint as the equivalent Python program, standard `socket` module
//! only: a learner reads the calls one by one, and runs it with `python3`
//! against the same peer to see the same answers.

use std::fmt::Write as _;

use super::encode::python_comment;
use super::encode::{python_bytes, python_str};
use crate::model::placeholder::{CounterFormat, CounterPart};
use crate::model::proxy::{Proxy, ProxyKind};
use crate::model::replay::{EndpointPlan, Role};
use crate::model::{Direction, EndpointKind, HostPort, LibraryItem, UnixPath};

/// The recorded conversations as a Python list of lists of steps.
fn conversations(plan: &EndpointPlan, udp: bool) -> String {
    let mut s = String::from("[\n");
    for (i, c) in plan.conversations.iter().enumerate() {
        let _ = writeln!(
            s,
            "    [  # {} {}",
            if udp { "exchange" } else { "connection" },
            i + 1
        );
        for step in &c.steps {
            match step.dir {
                Direction::Sent => {
                    let _ = writeln!(s, "        (\"send\", {}),", python_bytes(&step.bytes));
                }
                Direction::Received => {
                    let _ = writeln!(s, "        (\"recv\", {}),", step.bytes.len());
                }
            }
        }
        s.push_str("    ],\n");
    }
    s.push(']');
    s
}

fn host_port(hp: Option<&HostPort>, fallback: &str) -> (String, u16) {
    match hp {
        Some(hp) => (hp.host.clone(), hp.port),
        None => (fallback.to_owned(), 0),
    }
}

const HELPERS: &str = r#"
def receive(sock, count):
    """Reads `count` bytes (TCP is a stream: they may come in several pieces)."""
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except socket.timeout:
            print(f"  (no more within {TIMEOUT} s)")
            break
        if not chunk:  # the peer closed its side
            break
        data += chunk
    return data


def play(sock, steps):
    """Plays one recorded conversation on a connected socket."""
    for action, value in steps:
        if action == "send":
            sock.sendall(value)
            print("sent    ", value)
        else:
            print("received", receive(sock, value))
"#;

/// The Python program for one endpoint's plan (library payloads its
/// scheduled sends name are not known: see [`to_python_with`]).
pub fn to_python(plan: &EndpointPlan, session_name: &str) -> String {
    to_python_with(plan, session_name, &[])
}

/// How a payload part of a scheduled send is written in Python: a bytes
/// literal, or a counter `("counter", start, format, width, little)`.
fn schedule_part(part: &CounterPart) -> String {
    match part {
        CounterPart::Literal(b) => python_bytes(b),
        CounterPart::Counter { start, format } => {
            let (kind, width, little) = match *format {
                CounterFormat::Decimal { width } => ("d", width, false),
                CounterFormat::Hex {
                    width,
                    upper: false,
                } => ("x", width, false),
                CounterFormat::Hex { width, upper: true } => ("X", width, false),
                CounterFormat::Binary { bytes, little } => ("bin", bytes, little),
            };
            format!(
                "(\"counter\", {start}, \"{kind}\", {width}, {})",
                if little { "True" } else { "False" }
            )
        }
    }
}

/// The endpoint's scheduled sends as a Python `SCHEDULE` list and the
/// helpers that play it on a connected socket, or `None` without sends.
/// Counters are filled in by the program for each send; other
/// placeholders (times, random bytes, lengths, checksums) are filled in
/// once here, and a comment says which sends hold such values.
fn schedule_program(spec: &crate::model::EndpointSpec, library: &[LibraryItem]) -> Option<String> {
    if spec.sends.is_empty() {
        return None;
    }
    let mut s = String::from(
        "# The endpoint's scheduled sends: (delay s, count or None for until stopped,\n\
         # interval s, payload parts). A part is bytes, or a counter that counts this\n\
         # entry's sends on the connection from 1: (\"counter\", start, format, width, little).\n",
    );
    let mut entries = Vec::new();
    for (i, send) in spec.sends.iter().enumerate() {
        let count = send
            .repeat
            .count()
            .map_or("None".to_owned(), |n| n.to_string());
        let parts = match send.template(library) {
            Ok(template) => match template.counter_parts() {
                Some(parts) => parts.iter().map(schedule_part).collect::<Vec<_>>(),
                None => {
                    let kinds = template.other_placeholders().join(", ");
                    let _ = writeln!(
                        s,
                        "{}",
                        python_comment(&format!(
                            "Send {}: sockbench fills in its {kinds} for each send; this program sends the values filled in once, when it was exported.",
                            i + 1
                        ))
                    );
                    let bytes = template
                        .expand(&crate::model::placeholder::Context::now(0))
                        .unwrap_or_default();
                    vec![python_bytes(&bytes)]
                }
            },
            Err(why) => {
                // The session's own words go into a comment, escaped.
                let _ = writeln!(
                    s,
                    "{}",
                    python_comment(&format!("Send {}: not exported: {why}", i + 1))
                );
                continue;
            }
        };
        entries.push(format!(
            "    ({:?}, {count}, {:?}, [{}]),",
            send.delay.as_secs_f64(),
            send.interval.as_secs_f64(),
            parts.join(", ")
        ));
    }
    let _ = writeln!(s, "SCHEDULE = [\n{}\n]", entries.join("\n"));
    s.push_str(SCHEDULE_HELPERS);
    Some(s)
}

const SCHEDULE_HELPERS: &str = r#"

def fill(parts, n):
    """The payload of send number n (from 1): counters filled in."""
    out = b""
    for part in parts:
        if isinstance(part, bytes):
            out += part
            continue
        _, start, kind, width, little = part
        value = start + n - 1
        if kind == "bin":
            value %= 1 << (8 * width)
            out += value.to_bytes(width, "little" if little else "big")
        else:
            out += format(value, "0%d%s" % (width, kind)).encode()
    return out


def read_for(sock, seconds):
    """Prints what arrives for `seconds`; False when the peer closed."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except socket.timeout:
            return True
        except ConnectionError as e:
            print("connection ended:", e)
            return False
        if not data and sock.type == socket.SOCK_STREAM:
            print("the peer closed its side")
            return False
        print("received", data)


def run_schedule(sock):
    """Plays SCHEDULE on a connected socket, timed from now: each entry after
    its delay, then every interval; a late send goes at once and the next an
    interval after it. Until-stopped entries run until Ctrl+C or the peer closes."""
    start = time.monotonic()
    # Per entry: when it is next due, and how many went.
    state = [[start + delay, 0] for delay, _, _, _ in SCHEDULE]
    while True:
        due = [(at, i) for i, (at, sent) in enumerate(state)
               if SCHEDULE[i][1] is None or sent < SCHEDULE[i][1]]
        if not due:
            break
        at, i = min(due)
        wait = at - time.monotonic()
        if wait > 0 and not read_for(sock, wait):
            return
        _, _, interval, parts = SCHEDULE[i]
        state[i][1] += 1
        payload = fill(parts, state[i][1])
        sock.sendall(payload)
        print("sent    ", payload)
        now = time.monotonic()
        state[i][0] = at + interval if at + interval > now else now + interval
    read_for(sock, TIMEOUT)  # the answers to the last sends
"#;

/// [`to_python`] with the session's library, for the library payloads an
/// endpoint's scheduled sends name. An endpoint with scheduled sends plays
/// them (with their timing) instead of the recording, which holds their
/// own bytes: TCP and TLS clients and servers (each accepted peer), and
/// connected UDP clients; other kinds say in a comment that they do not.
pub fn to_python_with(plan: &EndpointPlan, session_name: &str, library: &[LibraryItem]) -> String {
    let schedule = match (&plan.spec.kind, plan.role) {
        (EndpointKind::Udp { .. }, Role::Client) if !plan.spec.options.connected => None,
        (EndpointKind::Udp { .. }, Role::Server) => None,
        (k, _) if k.tag().is_unix() || k.tag() == crate::model::KindTag::Relay => None,
        _ => schedule_program(&plan.spec, library),
    };
    let mut program = to_python_inner(plan, session_name, schedule.as_deref());
    if schedule.is_none() && !plan.spec.sends.is_empty() {
        program = program.replacen(
            "\nimport socket\n",
            "\nimport socket\n# Not exported: this endpoint's scheduled sends (sockbench sends them on each\n# connection); this program plays the recording only.\n",
            1,
        );
    }
    program
}

fn to_python_inner(plan: &EndpointPlan, session_name: &str, schedule: Option<&str>) -> String {
    if plan.spec.kind.tag().is_unix() {
        return unix_program(plan, session_name);
    }
    let udp = plan.is_udp();
    let name = plan.name();
    let mut out = String::from("#!/usr/bin/env python3\n");
    let (role_text, target) = match (&plan.spec.kind, plan.role) {
        (EndpointKind::TcpClient { remote }, _) => {
            ("connects to", host_port(Some(remote), "127.0.0.1"))
        }
        (EndpointKind::TlsClient { remote, .. }, _) => {
            ("connects with TLS to", host_port(Some(remote), "127.0.0.1"))
        }
        (EndpointKind::TcpServer { listen }, _) => {
            ("listens on", host_port(Some(listen), "127.0.0.1"))
        }
        (EndpointKind::TlsServer { listen, .. }, _) => {
            ("listens with TLS on", host_port(Some(listen), "127.0.0.1"))
        }
        (EndpointKind::Udp { remote, .. }, Role::Client) => (
            "sends datagrams to",
            host_port(remote.as_ref(), "127.0.0.1"),
        ),
        (EndpointKind::Udp { bind, .. }, Role::Server) => (
            "receives datagrams on",
            host_port(bind.as_ref(), "127.0.0.1"),
        ),
        // A relay is exported through its plan as upstream or client.
        (EndpointKind::Relay { listen, .. }, _) => {
            ("relays clients from", host_port(Some(listen), "127.0.0.1"))
        }
        // Written by `unix_program`.
        (
            EndpointKind::UnixClient { .. }
            | EndpointKind::UnixServer { .. }
            | EndpointKind::UnixDatagram { .. },
            _,
        ) => ("talks to", host_port(None, "")),
    };
    let (host, port) = target;
    let family = if host.contains(':') {
        "socket.AF_INET6"
    } else {
        "socket.AF_INET"
    };
    // Session text (names, addresses, paths) only ever goes into literals made
    // by `python_str`/`python_bytes`: never into this docstring or a comment.
    let _ = writeln!(
        out,
        "\"\"\"One endpoint of a sockbench session (ENDPOINT, SESSION below), as a Python program.\n\n\
         It {role_text} HOST:PORT and plays what was recorded: it sends the same\n\
         payloads and prints what comes back. Standard library only; run it with python3.\n\"\"\"",
    );
    if plan
        .spec
        .proxy
        .as_ref()
        .is_some_and(|p| p.kind == ProxyKind::HttpConnect && p.credentials.is_some())
        && !udp
        && plan.role == Role::Client
    {
        out.push_str("import base64\n");
    }
    out.push_str("import socket\n");
    if schedule.is_some() {
        out.push_str("import time\n");
    }
    if udp && !plan.spec.options.multicast.groups.is_empty() {
        out.push_str("import struct\n");
    }
    if plan.spec.kind.tag().is_tls() {
        out.push_str("import ssl\n");
    }
    if let EndpointKind::TlsClient { tls, .. } = &plan.spec.kind
        && tls.pin.is_some()
        && !tls.insecure
    {
        out.push_str("import hashlib\n");
    }
    out.push('\n');
    let _ = writeln!(out, "ENDPOINT = {}", python_str(name));
    let _ = writeln!(out, "SESSION = {}", python_str(session_name));
    let _ = writeln!(out, "HOST, PORT = {}, {port}", python_str(&host));
    out.push_str("TIMEOUT = 5.0  # seconds to wait for an answer\n");
    if !udp && plan.role == Role::Client {
        if let Some(proxy) = &plan.spec.proxy {
            let (user, password) = proxy
                .credentials
                .as_ref()
                .map_or((String::new(), String::new()), |c| {
                    (c.user.clone(), c.password.clone())
                });
            let _ = writeln!(
                out,
                "PROXY_HOST, PROXY_PORT = {}, {}",
                python_str(&proxy.server.host),
                proxy.server.port
            );
            let _ = writeln!(
                out,
                "PROXY_USER, PROXY_PASSWORD = {}, {}  # empty: no authentication",
                python_str(&user),
                python_str(&password)
            );
        }
        if plan.spec.reconnect.is_some() {
            out.push_str(
                "# Not exported: sockbench's reconnect with backoff. This program connects\n",
            );
            out.push_str("# once per recorded connection and stops at the first failure.\n");
        }
    }
    out.push('\n');
    out.push_str("# What was recorded: (\"send\", bytes) goes out; (\"recv\", n) reads n bytes");
    out.push_str(if udp { " (one datagram).\n" } else { ".\n" });
    // The log holds what went out, so a payload written with placeholders
    // plays as its recorded expansion: the program repeats that run exactly
    // (a learner compares answers byte for byte), and says so.
    out.push_str(
        "# The bytes are as they went out: counters, times, random bytes and checksums\n\
         # that sockbench placeholders filled in are that run's values, sent again as recorded.\n",
    );
    let _ = writeln!(out, "CONVERSATIONS = {}\n", conversations(plan, udp));
    if let Some(schedule) = schedule {
        out.push_str(
            "# This endpoint has scheduled sends: the program plays them (below), with\n\
             # their timing, instead of the sends recorded above (which were theirs).\n",
        );
        out.push_str(schedule);
    }

    let (before, after) = if udp {
        udp_options(&plan.spec, family == "socket.AF_INET6")
    } else {
        (String::new(), String::new())
    };
    // A UDP client's own address, when the endpoint binds one.
    let client_bind = match (&plan.spec.kind, plan.role) {
        (EndpointKind::Udp { bind: Some(b), .. }, Role::Client) => {
            format!("        sock.bind(({}, {}))\n", python_str(&b.host), b.port)
        }
        _ => String::new(),
    };
    match (udp, plan.role) {
        (false, Role::Client) => {
            out.push_str(HELPERS);
            let bind = plan.spec.options.bind.as_ref();
            if let Some(proxy) = &plan.spec.proxy {
                out.push_str(&proxy_tunnel(proxy).replace(
                    "socket.create_connection((PROXY_HOST, PROXY_PORT), timeout=TIMEOUT)",
                    &format!(
                        "socket.create_connection((PROXY_HOST, PROXY_PORT), timeout=TIMEOUT{})",
                        source_address(bind)
                    ),
                ));
            }
            out.push_str(&client_connect(
                &plan.spec.kind,
                plan.spec.proxy.is_some(),
                bind,
            ));
            let play = if schedule.is_some() {
                "run_schedule(sock)"
            } else {
                "play(sock, steps)"
            };
            let _ = write!(
                out,
                r#"

def main():
    for steps in CONVERSATIONS:
        # socket() + connect(): the three-way handshake happens here.
        with connect() as sock:
            print("connected to", sock.getpeername(), "from", sock.getsockname())
            {play}
            finish(sock)
        print("closed")
"#,
            );
        }
        (false, Role::Server) => {
            out.push_str(HELPERS);
            out.push_str(&server_secure(&plan.spec.kind));
            // Scheduled sends: each peer's greeting, timed from its accept.
            let play = if schedule.is_some() {
                "run_schedule(conn)"
            } else {
                "play(conn, steps)"
            };
            let _ = write!(
                out,
                r#"

def main():
    with socket.socket({family}, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((HOST, PORT))
        server.listen()
        print("listening on", server.getsockname())
        for steps in CONVERSATIONS:
            conn, address = server.accept()  # a new socket for this peer
            conn = secure(conn)
            with conn:
                conn.settimeout(TIMEOUT)
                print("accepted", address)
                {play}
                done(conn)
            print("closed", address)
"#
            );
        }
        (true, Role::Client) if plan.spec.options.connected && schedule.is_some() => {
            let _ = write!(
                out,
                r#"
def main():
    with socket.socket({family}, socket.SOCK_DGRAM) as sock:
{before}{client_bind}{after}        # A connected UDP socket: send() goes to HOST:PORT, recv() hears only
        # datagrams from there, and a closed port comes back as an error.
        sock.connect((HOST, PORT))
        try:
            run_schedule(sock)
        except ConnectionRefusedError:
            raise SystemExit("refused: nothing listens on that port (ICMP port unreachable)")
"#
            );
        }
        (true, Role::Client) if plan.spec.options.connected => {
            let _ = write!(
                out,
                r#"
def main():
    with socket.socket({family}, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
{before}{client_bind}{after}        # A connected UDP socket: send() goes to HOST:PORT, recv() hears only
        # datagrams from there, and a closed port comes back as an error.
        sock.connect((HOST, PORT))
        for steps in CONVERSATIONS:
            for action, value in steps:
                try:
                    if action == "send":
                        sock.send(value)
                        print("sent    ", value)
                    else:
                        data = sock.recv(65535)
                        print("received", data)
                except socket.timeout:
                    print(f"  (no datagram within {{TIMEOUT}} s)")
                except ConnectionRefusedError:
                    raise SystemExit("refused: nothing listens on that port (ICMP port unreachable)")
"#
            );
        }
        (true, Role::Client) => {
            let _ = write!(
                out,
                r#"
def main():
    with socket.socket({family}, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
{before}{client_bind}{after}        for steps in CONVERSATIONS:
            for action, value in steps:
                if action == "send":
                    sock.sendto(value, (HOST, PORT))
                    print("sent    ", value)
                else:
                    try:
                        data, address = sock.recvfrom(65535)
                        print("received", data, "from", address)
                    except socket.timeout:
                        print(f"  (no datagram within {{TIMEOUT}} s)")
"#
            );
        }
        (true, Role::Server) => {
            let _ = write!(
                out,
                r#"
def main():
    with socket.socket({family}, socket.SOCK_DGRAM) as sock:
{before}        sock.bind((HOST, PORT))
        print("bound to", sock.getsockname())
{after}        for steps in CONVERSATIONS:
            peer = None
            for action, value in steps:
                if action == "recv":
                    data, peer = sock.recvfrom(65535)
                    print("received", data, "from", peer)
                elif peer is not None:
                    sock.sendto(value, peer)
                    print("sent    ", value, "to", peer)
"#
            );
        }
    }
    out.push_str("\n\nif __name__ == \"__main__\":\n    main()\n");
    out
}

/// A Unix socket name as a Python `bytes` literal: a path's bytes (quotes,
/// newlines and any byte escaped), or an abstract name as `b"\0" + b"name"`
/// (the kernel's spelling: a leading NUL byte), `None` for no name.
fn python_unix_path(path: Option<&UnixPath>) -> String {
    match path {
        None => "None".to_owned(),
        Some(p) => match p.abstract_name() {
            Some(name) => format!("b\"\\0\" + {}", python_bytes(name)),
            None => python_bytes(p.as_str().as_bytes()),
        },
    }
}

const UNIX_HELPERS: &str = r#"

def remove_socket_file(path):
    """A bound socket's file stays until removed (an abstract name has none)."""
    if path and not path.startswith(b"\0"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
"#;

/// The Python program of a Unix-domain endpoint: `socket.AF_UNIX`, stream or datagram.
fn unix_program(plan: &EndpointPlan, session_name: &str) -> String {
    let datagram = plan.is_udp();
    let (role_text, path, bind) = match (&plan.spec.kind, plan.role) {
        (EndpointKind::UnixClient { path }, _) => {
            ("connects to the Unix stream socket", Some(path), None)
        }
        (EndpointKind::UnixServer { path, .. }, _) => {
            ("listens on the Unix stream socket", Some(path), None)
        }
        (EndpointKind::UnixDatagram { remote, bind, .. }, Role::Client) => (
            "sends datagrams to the Unix socket",
            remote.as_ref(),
            bind.as_ref(),
        ),
        (EndpointKind::UnixDatagram { bind, .. }, Role::Server) => {
            ("receives datagrams on the Unix socket", bind.as_ref(), None)
        }
        _ => ("talks to", None, None),
    };
    let mut out = String::from("#!/usr/bin/env python3\n");
    // Session text (names, paths) only ever goes into literals made by
    // `python_str`/`python_bytes`: never into this docstring or a comment.
    let _ = writeln!(
        out,
        "\"\"\"One endpoint of a sockbench session (ENDPOINT, SESSION below), as a Python program.\n\n\
         It {role_text} PATH and plays what was recorded: it sends the same\n\
         payloads and prints what comes back. Standard library only; run it with python3.\n\
         A path is bytes; an abstract name (Linux) starts with a NUL byte.\n\"\"\"",
    );
    out.push_str("import os\nimport socket\n");
    if datagram && plan.role == Role::Client {
        out.push_str("import tempfile\n");
    }
    out.push('\n');
    let _ = writeln!(out, "ENDPOINT = {}", python_str(plan.name()));
    let _ = writeln!(out, "SESSION = {}", python_str(session_name));
    let _ = writeln!(out, "PATH = {}", python_unix_path(path));
    if datagram && plan.role == Role::Client {
        out.push_str("# Where answers come back: an unnamed socket cannot be answered.\n");
        let _ = writeln!(out, "BIND = {}", python_unix_path(bind));
    }
    out.push_str("TIMEOUT = 5.0  # seconds to wait for an answer\n\n");
    out.push_str("# What was recorded: (\"send\", bytes) goes out; (\"recv\", n) reads n bytes");
    out.push_str(if datagram {
        " (one datagram).\n"
    } else {
        ".\n"
    });
    let _ = writeln!(out, "CONVERSATIONS = {}\n", conversations(plan, datagram));
    out.push_str(UNIX_HELPERS);
    match (datagram, plan.role) {
        (false, Role::Client) => {
            out.push_str(HELPERS);
            out.push_str(
                r#"

def main():
    for steps in CONVERSATIONS:
        # socket(AF_UNIX, SOCK_STREAM) + connect(): no handshake, the kernel
        # joins the two sockets at once.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(PATH)
            print("connected to", sock.getpeername())
            play(sock, steps)
            # shutdown(SHUT_WR): the peer reads end-of-stream.
            sock.shutdown(socket.SHUT_WR)
            rest = receive(sock, 1 << 20)
            if rest:
                print("received", rest)
        print("closed")
"#,
            );
        }
        (false, Role::Server) => {
            out.push_str(HELPERS);
            out.push_str(
                r#"

def main():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(PATH)  # creates the socket file (fails if the path exists)
        try:
            server.listen()
            print("listening on", server.getsockname())
            for steps in CONVERSATIONS:
                conn, address = server.accept()  # a new socket for this peer
                with conn:
                    conn.settimeout(TIMEOUT)
                    print("accepted", address or "(unnamed)")
                    play(conn, steps)
                    conn.shutdown(socket.SHUT_WR)
                print("closed")
        finally:
            remove_socket_file(PATH)
"#,
            );
        }
        (true, Role::Client) => {
            out.push_str(
                r#"

def main():
    folder = None
    bind = BIND
    if bind is None:
        folder = tempfile.mkdtemp()
        bind = os.path.join(folder, "client.sock").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.bind(bind)
        try:
            for steps in CONVERSATIONS:
                for action, value in steps:
                    if action == "send":
                        sock.sendto(value, PATH)
                        print("sent    ", value)
                    else:
                        try:
                            data, address = sock.recvfrom(1 << 18)
                            print("received", data, "from", address or "(unnamed)")
                        except socket.timeout:
                            print(f"  (no datagram within {TIMEOUT} s)")
        finally:
            remove_socket_file(bind)
            if folder:
                os.rmdir(folder)
"#,
            );
        }
        (true, Role::Server) => {
            out.push_str(
                r#"

def main():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(PATH)  # creates the socket file (fails if the path exists)
        try:
            print("bound to", sock.getsockname())
            for steps in CONVERSATIONS:
                peer = None
                for action, value in steps:
                    if action == "recv":
                        data, peer = sock.recvfrom(1 << 18)
                        print("received", data, "from", peer or "(unnamed)")
                    elif peer:
                        sock.sendto(value, peer)
                        print("sent    ", value, "to", peer)
                    else:
                        print("cannot answer: the sender's socket has no name")
        finally:
            remove_socket_file(PATH)
"#,
            );
        }
    }
    out.push_str("\n\nif __name__ == \"__main__\":\n    main()\n");
    out
}

fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| python_str(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `exactly()` and `tunnel()`: the proxy's handshake, by hand, so a learner
/// sees every byte of it (the standard library has no SOCKS or CONNECT client).
fn proxy_tunnel(proxy: &Proxy) -> String {
    let mut s = String::from(
        r#"

def exactly(sock, count):
    """Reads exactly `count` bytes of the proxy's reply."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise SystemExit("the proxy closed the connection during the handshake")
        data += chunk
    return data
"#,
    );
    match proxy.kind {
        ProxyKind::Socks5 => s.push_str(
            r#"

def tunnel():
    """connect() to the SOCKS5 proxy (RFC 1928), then ask it for HOST:PORT."""
    sock = socket.create_connection((PROXY_HOST, PROXY_PORT), timeout=TIMEOUT)
    print("connected to proxy", sock.getpeername())
    # Greeting: version 5 and the authentication methods we offer
    # (0: none, 2: username/password).
    methods = b"\x00\x02" if PROXY_USER else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    version, method = exactly(sock, 2)
    if version != 5:
        raise SystemExit(f"the proxy does not speak SOCKS5 (version byte {version:#04x})")
    if method == 2 and PROXY_USER:
        user, password = PROXY_USER.encode(), PROXY_PASSWORD.encode()
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        if exactly(sock, 2)[1] != 0:
            raise SystemExit("proxy refused the user name and password")
    elif method != 0:
        raise SystemExit(f"proxy asked for authentication (method {method:#04x})")
    # CONNECT request: an IP address as such, a name for the proxy to resolve.
    try:
        address = b"\x01" + socket.inet_pton(socket.AF_INET, HOST)
    except OSError:
        try:
            address = b"\x04" + socket.inet_pton(socket.AF_INET6, HOST)
        except OSError:
            address = b"\x03" + bytes([len(HOST.encode())]) + HOST.encode()
    sock.sendall(b"\x05\x01\x00" + address + PORT.to_bytes(2, "big"))
    _, reply, _, kind = exactly(sock, 4)
    if reply != 0:
        raise SystemExit(f"proxy refused: SOCKS5 reply {reply:02x}")
    # The address the proxy connected from, then its port: read whole, so the
    # tunnel starts clean.
    length = {1: 4, 4: 16}.get(kind) or exactly(sock, 1)[0]
    exactly(sock, length + 2)
    print("tunnel established to", HOST, PORT)
    return sock
"#,
        ),
        ProxyKind::HttpConnect => s.push_str(
            r#"

def tunnel():
    """connect() to the HTTP proxy, then CONNECT to HOST:PORT."""
    sock = socket.create_connection((PROXY_HOST, PROXY_PORT), timeout=TIMEOUT)
    print("connected to proxy", sock.getpeername())
    target = f"[{HOST}]:{PORT}" if ":" in HOST else f"{HOST}:{PORT}"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if PROXY_USER:
        token = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall((request + "\r\n").encode())
    # The reply header, one byte at a time (what follows it belongs to the
    # tunnel), at most 16 KiB.
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        if len(header) >= 16384:
            raise SystemExit("the proxy's reply header is too long")
        header += exactly(sock, 1)
    status = header.split(b"\r\n")[0]
    parts = status.split(b" ")
    if len(parts) < 2 or not parts[1].startswith(b"2"):
        raise SystemExit(f"proxy refused: {status!r}")
    print("tunnel established to", HOST, PORT, status)
    return sock
"#,
        ),
    }
    s
}

/// The setsockopt calls of a UDP socket, in the order sockbench makes
/// them: options before bind(), group memberships after (8 spaces in).
/// Interfaces and groups go in as string literals, never as code.
fn udp_options(spec: &crate::model::EndpointSpec, v6: bool) -> (String, String) {
    use crate::model::multicast::{Interface, membership_option};
    let mut before = String::new();
    let m = &spec.options.multicast;
    if spec.options.broadcast {
        before.push_str("        # Sending to a broadcast address needs SO_BROADCAST.\n");
        before.push_str("        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n");
    }
    // IPv6 names its interface by index; 0 lets the kernel choose.
    let v6_index = |iface: Option<&Interface>| match iface {
        Some(Interface::Index(i)) => i.to_string(),
        Some(Interface::Name(n)) => format!("socket.if_nametoindex({})", python_str(n)),
        Some(Interface::Address(a)) => {
            format!(
                "0  # {} is an IPv4 address: give an index",
                python_str(&a.to_string())
            )
        }
        None => "0".to_owned(),
    };
    let v4_address = |iface: Option<&Interface>| match iface {
        Some(Interface::Address(a)) => python_str(&a.to_string()),
        // An IPv4 socket names its interface by address.
        Some(other) => python_str(&other.to_string()),
        None => python_str("0.0.0.0"),
    };
    if let Some(iface) = &m.iface {
        if v6 {
            let _ = writeln!(
                before,
                "        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, {})",
                v6_index(Some(iface))
            );
        } else {
            let _ = writeln!(
                before,
                "        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton({}))",
                v4_address(Some(iface))
            );
        }
    }
    if let Some(ttl) = m.ttl {
        let _ = writeln!(
            before,
            "        sock.setsockopt({}, {ttl})",
            if v6 {
                "socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS"
            } else {
                "socket.IPPROTO_IP, socket.IP_MULTICAST_TTL"
            }
        );
    }
    if let Some(on) = m.loopback {
        let _ = writeln!(
            before,
            "        sock.setsockopt({}, {})",
            if v6 {
                "socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP"
            } else {
                "socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP"
            },
            u8::from(on)
        );
    }
    let mut after = String::new();
    for group in &m.groups {
        let option = membership_option(*group, true);
        let text = python_str(&group.to_string());
        if group.is_ipv4() {
            let _ = writeln!(
                after,
                "        sock.setsockopt(socket.IPPROTO_IP, socket.{option}, struct.pack(\"4s4s\", socket.inet_aton({text}), socket.inet_aton({})))",
                v4_address(m.iface.as_ref())
            );
        } else {
            let _ = writeln!(
                after,
                "        sock.setsockopt(socket.IPPROTO_IPV6, socket.{option}, struct.pack(\"16sI\", socket.inet_pton(socket.AF_INET6, {text}), {}))",
                v6_index(m.iface.as_ref())
            );
        }
    }
    if !after.is_empty() {
        after.insert_str(
            0,
            "        # Join the multicast groups: datagrams sent to them now reach this socket.\n",
        );
    }
    (before, after)
}

/// `source_address=…` for a client that binds its local end, else nothing.
fn source_address(bind: Option<&HostPort>) -> String {
    match bind {
        Some(b) => format!(", source_address=({}, {})", python_str(&b.host), b.port),
        None => String::new(),
    }
}

/// `connect()`: a TCP connection (through the proxy's tunnel when
/// `proxied`), wrapped in TLS for a TLS client.
fn client_connect(kind: &EndpointKind, proxied: bool, bind: Option<&HostPort>) -> String {
    let open = if proxied {
        "tunnel()".to_owned()
    } else {
        format!(
            "socket.create_connection((HOST, PORT), timeout=TIMEOUT{})",
            source_address(bind)
        )
    };
    let EndpointKind::TlsClient { remote, tls } = kind else {
        return format!(
            r#"

def connect():
    # socket() + connect(): the three-way handshake happens here.
    return {open}
"#
        ) + r#"

def finish(sock):
    # shutdown(SHUT_WR) sends our FIN: the peer reads end-of-stream.
    sock.shutdown(socket.SHUT_WR)
    rest = receive(sock, 1 << 20)
    if rest:
        print("received", rest)
"#;
    };
    let mut s = String::from("\n\ndef connect():\n");
    if tls.insecure {
        s.push_str("    # INSECURE, as recorded: the server's certificate is not checked.\n");
        s.push_str("    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n");
        s.push_str("    context.check_hostname = False\n    context.verify_mode = ssl.CERT_NONE\n");
    } else if tls.pin.is_some() {
        s.push_str("    # PINNED, as recorded: exactly one certificate is trusted, by its\n");
        s.push_str(
            "    # SHA-256, whatever its name or issuer; it is compared after the handshake.\n",
        );
        s.push_str("    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n");
        s.push_str("    context.check_hostname = False\n    context.verify_mode = ssl.CERT_NONE\n");
    } else {
        s.push_str("    # The system's authorities, like sockbench's client; the server's\n");
        s.push_str("    # name is checked against its certificate.\n");
        s.push_str("    context = ssl.create_default_context()\n");
        if !tls.ca.is_empty() {
            s.push_str("    # Also trusted: the certificates given with --ca, an authority or a\n");
            s.push_str("    # server's own certificate (its name is still checked).\n");
            s.push_str("    if hasattr(ssl, \"VERIFY_X509_PARTIAL_CHAIN\"):\n");
            s.push_str("        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN\n");
        }
        for ca in &tls.ca {
            let _ = writeln!(
                s,
                "    context.load_verify_locations({})",
                python_str(&ca.display().to_string())
            );
        }
    }
    if !tls.alpn.is_empty() {
        let _ = writeln!(s, "    context.set_alpn_protocols({})", py_list(&tls.alpn));
    }
    let name = tls.sni.clone().unwrap_or_else(|| remote.host.clone());
    let _ = writeln!(s, "    raw = {open}");
    s.push_str("    # The TLS handshake happens here; the name is checked in the certificate.\n");
    let _ = writeln!(
        s,
        "    sock = context.wrap_socket(raw, server_hostname={})",
        python_str(&name)
    );
    if let (Some(pin), false) = (&tls.pin, tls.insecure) {
        let hex: String = pin.0.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(s, "    pin = {}", python_str(&hex));
        s.push_str("    seen = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()\n");
        s.push_str("    if seen != pin:\n");
        s.push_str("        sock.close()\n");
        s.push_str("        raise SystemExit(\"the server's certificate is not the pinned one: sha256 \" + seen)\n");
    }
    s.push_str("    print(\"TLS:\", sock.version(), sock.cipher()[0], \"ALPN\", sock.selected_alpn_protocol())\n");
    s.push_str("    return sock\n");
    // TLS has no half-close: what is left is read, then the connection closes.
    s.push_str("\n\ndef finish(sock):\n    sock.settimeout(1.0)\n    try:\n        rest = sock.recv(1 << 20)\n");
    s.push_str("    except (socket.timeout, ssl.SSLError, OSError):\n        rest = b\"\"\n    if rest:\n        print(\"received\", rest)\n");
    s
}

/// `secure(conn)`: a TLS server's handshake on an accepted connection.
fn server_secure(kind: &EndpointKind) -> String {
    let EndpointKind::TlsServer { tls, .. } = kind else {
        return "\n\ndef secure(conn):\n    return conn  # plain TCP\n\n\ndef done(conn):\n    conn.shutdown(socket.SHUT_WR)  # our FIN\n"
            .to_owned();
    };
    let mut s = String::from("\n\n");
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let _ = writeln!(
                s,
                "CERT, KEY = {}, {}",
                python_str(&cert.display().to_string()),
                python_str(&key.display().to_string())
            );
        }
        _ => {
            s.push_str(
                "# sockbench made a certificate when it started; give one here, for example\n",
            );
            s.push_str(
                "# openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost\n",
            );
            s.push_str("CERT, KEY = \"cert.pem\", \"key.pem\"\n");
            s.push_str(
                "import os\nimport sys\n\nif not (os.path.isfile(CERT) and os.path.isfile(KEY)):\n",
            );
            s.push_str("    sys.exit(f\"no {CERT} and {KEY} here: make them with the openssl command above\")\n");
        }
    }
    s.push_str(
        "CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nCONTEXT.load_cert_chain(CERT, KEY)\n",
    );
    if !tls.alpn.is_empty() {
        let _ = writeln!(s, "CONTEXT.set_alpn_protocols({})", py_list(&tls.alpn));
    }
    s.push_str(
        "\n\ndef secure(conn):\n    # The TLS handshake with this peer.\n    return CONTEXT.wrap_socket(conn, server_side=True)\n\n\ndef done(conn):\n    pass  # closing the TLS socket ends the connection\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointSpec;
    use crate::model::replay::{Conversation, Step};
    use std::time::Duration;

    #[test]
    fn a_client_program() {
        let plan = EndpointPlan {
            spec: EndpointSpec::new(
                "client",
                EndpointKind::TcpClient {
                    remote: "127.0.0.1:7007".parse().unwrap(),
                },
            ),
            role: Role::Client,
            conversations: vec![Conversation {
                steps: vec![
                    Step {
                        dir: Direction::Sent,
                        bytes: b"hi\n".to_vec(),
                        gap: Duration::ZERO,
                    },
                    Step {
                        dir: Direction::Received,
                        bytes: b"hi\n".to_vec(),
                        gap: Duration::ZERO,
                    },
                ],
                peer_closed: false,
                remote: "127.0.0.1:7007".into(),
                dropped: 0,
            }],
            ignore: Vec::new(),
        };
        let program = to_python(&plan, "tcp-echo-pair");
        assert!(
            program.contains("HOST, PORT = \"127.0.0.1\", 7007\n"),
            "{program}"
        );
        assert!(
            program.contains("        (\"send\", b\"hi\\n\"),\n        (\"recv\", 3),\n"),
            "{program}"
        );
        assert!(program.contains("socket.create_connection((HOST, PORT), timeout=TIMEOUT)"));
        // Placeholders were filled in when recorded: the program says it plays those values.
        assert!(program.contains("# that sockbench placeholders filled in are that run's values"));
        assert!(program.ends_with("if __name__ == \"__main__\":\n    main()\n"));
    }

    /// Issue 10: a zone id ending a docstring with `"""` ran the next line.
    #[test]
    fn session_text_stays_inside_literals() {
        let hostile = "x\"\"\"\nimport pwned\r\u{85}\u{2028}\u{202e}# '''\\";
        let steps = vec![Step {
            dir: Direction::Sent,
            bytes: hostile.as_bytes().to_vec(),
            gap: Duration::ZERO,
        }];
        let conversation = Conversation {
            steps,
            peer_closed: false,
            remote: hostile.into(),
            dropped: 0,
        };
        let tls_client = EndpointKind::TlsClient {
            remote: HostPort::new(format!("fe80::1%{hostile}"), 443),
            tls: crate::model::TlsClientSettings {
                ca: vec![hostile.into()],
                insecure: false,
                pin: None,
                sni: Some(hostile.into()),
                alpn: vec![hostile.into()],
            },
        };
        let tls_server = EndpointKind::TlsServer {
            listen: HostPort::new(hostile, 443),
            tls: crate::model::TlsServerSettings {
                cert: Some(hostile.into()),
                key: Some(hostile.into()),
                alpn: vec![hostile.into()],
            },
        };
        for (kind, role) in [(tls_client, Role::Client), (tls_server, Role::Server)] {
            let plan = EndpointPlan {
                spec: EndpointSpec::new(hostile, kind),
                role,
                conversations: vec![conversation.clone()],
                ignore: Vec::new(),
            };
            let program = to_python(&plan, hostile);
            assert!(program.is_ascii(), "{program}");
            let literal = python_str(hostile);
            assert!(
                program.contains(&format!("ENDPOINT = {literal}\nSESSION = {literal}\n")),
                "{program}"
            );
            let docstring_end = program.find("\"\"\"\nimport socket").unwrap();
            assert!(!program[..docstring_end].contains("pwned"), "{program}");
            for line in program.lines().filter(|l| l.contains("pwned")) {
                // Each such line holds the text only as an escaped literal.
                let text = &literal[1..literal.len() - 1];
                let bytes = python_bytes(hostile.as_bytes());
                let bytes = &bytes[2..bytes.len() - 1];
                assert!(line.contains(text) || line.contains(bytes), "{line}");
                assert!(!line.trim_start().starts_with("import"), "{line}");
            }
        }
    }
}
