//! The real window, driven headless with egui_kittest over real loopback sockets.

mod common;
use common::free_port;
use common::gui::Gui;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::{NodeT, Queryable};
use sockbench::app::AppConfig;
use sockbench::model::EntryKind;

const LIMIT: Duration = common::gui::WAIT_LIMIT;

/// The window tests' copies of the shipped sessions keep none of their fixed
/// service ports (a test that starts one would collide with anything else
/// using that port, such as the same test run at once elsewhere).
#[test]
fn the_copied_examples_keep_no_fixed_port() {
    let dir = tempfile::tempdir().unwrap();
    common::gui::copy_examples(dir.path(), true);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions");
    let mut checked = 0;
    for sub in ["", "lessons"] {
        for entry in std::fs::read_dir(shipped.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "ron") {
                continue;
            }
            let original = std::fs::read_to_string(&path).unwrap();
            let copy =
                std::fs::read_to_string(dir.path().join(sub).join(path.file_name().unwrap()))
                    .unwrap();
            for (i, _) in original.match_indices("127.0.0.1:") {
                let digits: String = original[i + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                // Service ports; a recorded peer's port (ephemeral) is no listener.
                if digits.parse::<u16>().is_ok_and(|p| p < 10_000) {
                    let fixed = format!("127.0.0.1:{digits}");
                    assert!(!copy.contains(&fixed), "{} keeps {fixed}", path.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10, "the shipped sessions name their ports");
}

impl Gui {
    /// A window on a sessions folder holding the example sessions.
    fn new() -> Gui {
        Gui::with(|_| {})
    }

    /// The same, with its configuration changed by `adjust` first.
    fn with(adjust: impl FnOnce(&mut AppConfig)) -> Gui {
        let mut gui = Gui::build(
            common::gui::SIZE,
            |dir| common::gui::copy_examples(dir, true),
            |config, _| adjust(config),
        );
        gui.wait_for("the session list", |g| {
            g.harness.query_by_label("tcp-echo-pair").is_some()
        });
        gui
    }

    /// Replaces the composer's text by typing.
    fn type_payload(&mut self, text: &str) {
        let field = self.harness.get_by_label("Payload");
        field.focus();
        self.step();
        self.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
        self.step();
        self.harness.get_by_label("Payload").type_text(text);
        self.step();
    }

    fn start_all(&mut self) {
        self.click("▶ Start all");
    }

    /// Chooses `choice` in the log's filter `filter` (Endpoints, Kinds,
    /// Peers, Show): from the Filters menu when the bar is too narrow to
    /// show the filters themselves.
    fn filter_log(&mut self, filter: &str, choice: &str) {
        if self.harness.query_by_label(filter).is_some() {
            self.click(filter);
        } else {
            self.harness.get_by_label_contains("⏷ Filters").click();
            self.step();
            self.step();
        }
        self.choose(choice);
    }

    /// Clicks the log's action `label` (Playback, Clear log): from the "⋯"
    /// menu when the bar is too narrow to show it.
    fn log_action(&mut self, label: &str) {
        if self.harness.query_by_label(label).is_none() {
            self.click("⋯");
        }
        self.click(label);
    }

    /// Steps frames until the log has not grown for 300 ms (events that
    /// follow a start, such as the receive-buffer note, have arrived), at
    /// most LIMIT.
    fn settle(&mut self) {
        let started = Instant::now();
        let mut rows = self.harness.state().doc().session.log.len();
        let mut still = Instant::now();
        while still.elapsed() < Duration::from_millis(300) {
            assert!(started.elapsed() < LIMIT, "the log never settled");
            std::thread::sleep(Duration::from_millis(10));
            self.harness.step();
            let now = self.harness.state().doc().session.log.len();
            if now != rows {
                rows = now;
                still = Instant::now();
            }
        }
    }

    fn log_rows(&self, endpoint: &str, kind: EntryKind) -> Vec<Vec<u8>> {
        let log = &self.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| {
                let e = log.entry(i).unwrap();
                e.kind == kind && log.endpoint_name(e) == endpoint
            })
            .map(|i| log.data(i).to_vec())
            .collect()
    }

    fn progress(&self, done: usize, of: usize) -> bool {
        self.shows(&format!("{done} of {of} steps"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn joined(rows: Vec<Vec<u8>>) -> Vec<u8> {
    rows.concat()
}

/// Types at the end of the field labelled `label`.
fn append(gui: &mut Gui, label: &str, text: &str) {
    gui.harness.get_by_label(label).focus();
    gui.step();
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::End);
    gui.step();
    gui.harness.get_by_label(label).type_text(text);
    gui.step();
    gui.step();
}

fn is_disabled(gui: &Gui, label: &str) -> bool {
    gui.harness
        .get_by_label(label)
        .accesskit_node()
        .is_disabled()
}

/// A client endpoint in a fresh session, pointed at `remote`.
fn new_client(gui: &mut Gui, remote: &str) {
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    gui.click("➕ Add endpoint");
    gui.click("TCP client");
    gui.retype("Connect to", remote);
}

#[test]
fn echo_pair_from_the_composer() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    assert!(gui.shows("● connected"), "the client's badge");
    gui.type_payload("ping from the window\\n");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("the echo", |g| {
        joined(g.log_rows("client", EntryKind::Received)) == b"ping from the window\n"
    });

    // What reached the server is what was typed, escapes resolved.
    assert_eq!(
        joined(gui.log_rows("echo server", EntryKind::Received)),
        b"ping from the window\n"
    );
    // The log shows both endpoints' rows.
    assert!(
        gui.count_containing("\"ping from the window\\n\"") >= 4,
        "sent and received at both ends"
    );
    assert!(gui.shows("→ sent"));
    assert!(gui.shows("← received"));
    assert!(gui.shows("sent 2 payloads (42 bytes)"), "status bar totals");
}

#[test]
fn hex_mode_with_a_bad_digit_shows_the_error_and_sends_nothing() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("the client connected", |g| g.all_up());
    gui.click("Hex");
    gui.type_payload("41 42 4g");
    assert!(gui.shows("line 1, column 8: 'g' is not a hex digit"));
    assert!(is_disabled(&gui, "➤ Send"));
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    for _ in 0..20 {
        gui.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gui.log_rows("client", EntryKind::Sent).is_empty());
    assert!(gui.log_rows("echo server", EntryKind::Received).is_empty());

    // Mended, it goes out as those bytes.
    gui.type_payload("41 42 0a");
    assert!(gui.shows("3 bytes"));
    assert!(!is_disabled(&gui, "➤ Send"));
    gui.click("➤ Send");
    gui.wait_for("the bytes at the server", |g| {
        joined(g.log_rows("echo server", EntryKind::Received)) == b"AB\n"
    });
}

#[test]
fn a_bad_placeholder_shows_its_error_and_sends_nothing_then_counts_sends() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("the client connected", |g| g.all_up());
    gui.type_payload("ping ${crc16:0..2}");
    assert!(
        gui.shows("line 1, column 6: \"crc16\" is not a placeholder"),
        "the error stands by the field"
    );
    assert!(is_disabled(&gui, "➤ Send"));
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    for _ in 0..20 {
        gui.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gui.log_rows("client", EntryKind::Sent).is_empty());
    // A range past the end is refused the same way.
    gui.type_payload("ab${sum8:0..9}");
    assert!(gui.shows("line 1, column 3: the range 0..9 goes past the payload's end (3 bytes)"));
    assert!(is_disabled(&gui, "➤ Send"));

    // Mended: the preview shows the next send's bytes and says they vary.
    gui.type_payload("n=${counter}${xor8:0..3,HEX}\\n");
    assert!(
        gui.shows("6 bytes go out next: 6e 3d 31 36 32 0a"),
        "n=1, xor 62"
    );
    assert!(gui.shows("(changes with every send: counter)"));
    gui.click("➤ Send");
    gui.click("➤ Send");
    gui.wait_for("both sends at the server", |g| {
        joined(g.log_rows("echo server", EntryKind::Received)).len() >= 12
    });
    assert_eq!(
        String::from_utf8_lossy(&joined(gui.log_rows("echo server", EntryKind::Received))),
        "n=162\nn=261\n"
    );
    // The session keeps what was typed, not an expansion.
    assert_eq!(
        gui.harness.state().composer().text,
        "n=${counter}${xor8:0..3,HEX}\\n"
    );
}

#[test]
fn a_refused_connection_shows_the_failed_badge_and_an_explained_row() {
    let mut gui = Gui::new();
    let port = free_port();
    new_client(&mut gui, &format!("127.0.0.1:{port}"));
    gui.click("▶ Start");
    gui.wait_for("the failure", |g| g.shows("● failed"));
    assert!(
        gui.shows("connection refused: connect to 127.0.0.1:"),
        "the reason stands under the badge"
    );
    assert!(gui.shows("✖ connection refused"), "the log row stands out");
    gui.harness.get_by_label("✖ connection refused").click();
    gui.step();
    gui.step();
    assert!(
        gui.shows(&format!(
            "connection refused: nothing listens on 127.0.0.1:{port}, so that machine answered the connection request with a reset"
        )),
        "the inspector explains it"
    );
    gui.harness.check_accessibility();
}

#[test]
fn address_fields_are_checked_as_typed() {
    let mut gui = Gui::new();
    new_client(&mut gui, "127.0.0.1:99999");
    assert!(gui.shows("⚠ port 99999 is out of range: ports go from 0 to 65535"));
    assert!(is_disabled(&gui, "▶ Start"));
    gui.retype("Connect to", "localhost");
    assert!(gui.shows("has no port"));
    gui.retype("Connect to", "[::1]:7");
    assert!(!gui.shows("⚠"));
    assert!(!is_disabled(&gui, "▶ Start"));
    // A name that does not resolve is reported on start.
    gui.retype("Connect to", "no-such-host.invalid:80");
    gui.click("▶ Start");
    gui.wait_for("the resolver's answer", |g| g.shows("● failed"));
    assert!(gui.shows("name not resolved"));
}

#[test]
fn the_filter_narrows_the_rows() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("the client connected", |g| g.all_up());
    // One at a time, so each is its own read at every hop.
    for (text, want) in [
        ("alpha\\n", &b"alpha\n"[..]),
        ("beta\\n", &b"alpha\nbeta\n"[..]),
    ] {
        gui.type_payload(text);
        gui.harness
            .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
        gui.wait_for("the echo", |g| {
            joined(g.log_rows("client", EntryKind::Received)) == want
        });
    }
    let total = gui.harness.state().doc().session.log.len();
    // Ctrl+F goes to the search field.
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::F);
    gui.step();
    gui.step();
    gui.harness.get_by_label("Find").type_text("beta");
    gui.step();
    gui.step();
    assert!(
        gui.shows(&format!("4 of {total} rows")),
        "sent and received at both ends"
    );
    assert_eq!(gui.count_containing("\"beta\\n\""), 4);
    assert_eq!(gui.count_containing("\"alpha\\n\""), 0);
    // Received rows of one endpoint only.
    gui.retype("Find", "");
    gui.filter_log("Endpoints", "client");
    gui.filter_log("Kinds", "received <-");
    assert!(gui.shows(&format!("2 of {total} rows")));
    // Hex search.
    gui.click("hex");
    gui.retype("Find", "62 65");
    assert!(gui.shows(&format!("1 of {total} rows")));
    gui.retype("Find", "6g");
    assert!(gui.shows("search at position 2: 'g' is not a hex digit"));
}

#[test]
fn a_broken_file_shows_its_error_and_the_window_goes_on() {
    let mut gui = Gui::new();
    std::fs::write(
        gui.path("broken.ron"),
        "(\n    format: 1,\n    endpoints: [ (name: \"x\" kind: Udp()) ],\n)\n",
    )
    .unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the new file listed", |g| {
        g.harness.query_by_label("broken").is_some()
    });
    gui.click("broken");
    gui.wait_for("the error", |g| g.shows("broken.ron:3:"));
    assert!(gui.shows("Could not open"));
    assert!(
        gui.harness.state().doc().path.is_none(),
        "the open document stays"
    );
    // And the window goes on: another session opens and runs.
    gui.open_session("udp-pair");
    gui.start_all();
    gui.wait_for("both sockets bound", |g| g.all_up());
}

#[test]
fn save_then_reopen_gives_the_same_session() {
    let mut gui = Gui::new();
    gui.open_session("http-get");
    gui.retype("Name", "curl");
    gui.click("➕ Add endpoint");
    gui.click("UDP socket");
    gui.retype("Default remote", "[::1]:5353");
    let before = gui.harness.state().doc().to_session().unwrap();
    assert!(gui.harness.state().doc().is_dirty());
    assert!(gui.shows("● http-get"), "the unsaved mark");

    let target = gui.path("saved copy.ron");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::S);
    gui.step();
    gui.retype("Path", target.to_str().unwrap());
    gui.click("Save here");
    gui.wait_for("the save", |g| !g.harness.state().doc().is_dirty());
    assert!(gui.shows("Saved"));
    assert!(sockbench::persist::load(&target).is_ok());

    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    assert!(gui.harness.state().doc().endpoints.is_empty());
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::O);
    gui.step();
    gui.retype("Path", target.to_str().unwrap());
    gui.click("Open");
    gui.wait_for("the reopened file", |g| {
        g.harness.state().doc().endpoints.len() == 3
    });
    let after = gui.harness.state().doc().to_session().unwrap();
    assert_eq!(after.endpoints, before.endpoints);
    assert_eq!(after.library, before.library);
    assert_eq!(after.notes, before.notes);
    assert!(gui.shows("curl"));
}

#[test]
fn a_server_sends_to_the_chosen_peer_and_disconnects_one() {
    let mut gui = Gui::new();
    gui.open_session("line-chat");
    gui.start_all();
    gui.wait_for("two peers", |g| {
        g.harness.state().doc().endpoints[0].peers.len() == 2 && g.all_up()
    });
    gui.click("● chat server");
    gui.click("#2");
    gui.type_payload("just you\\n");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("one client to hear it", |g| {
        g.log_rows("alice", EntryKind::Received).len()
            + g.log_rows("bob", EntryKind::Received).len()
            == 1
    });
    // Peer #2 is whichever client connected second: its local port is the peer's port.
    let state = gui.harness.state();
    let peer2 = state.doc().endpoints[0].peers[&2].remote.clone();
    let heard = if joined(gui.log_rows("bob", EntryKind::Received)) == b"just you\n" {
        "bob"
    } else {
        "alice"
    };
    let log = &state.doc().session.log;
    let connected_from = (0..log.len())
        .map(|i| log.entry(i).unwrap())
        .find(|e| e.kind == EntryKind::Connected && log.endpoint_name(e) == heard)
        .map(|e| String::from_utf8_lossy(log.bytes_of(e)).into_owned())
        .unwrap();
    assert_eq!(connected_from, format!("from {peer2}"));

    // Disconnect that peer: the client sees the server close.
    // The picked peer's actions: one Close, for peer #2.
    assert!(gui.shows("Peer #2:"));
    let buttons: Vec<_> = gui.harness.query_all_by_label("Close").collect();
    assert_eq!(buttons.len(), 1);
    gui.harness.get_by_label("Close").click();
    gui.wait_for("the client closed", move |g| {
        g.harness
            .state()
            .doc()
            .endpoints
            .iter()
            .find(|e| e.form.name == heard)
            .unwrap()
            .state
            .word()
            == "closed"
    });
    gui.wait_for("one peer left", |g| {
        g.harness.state().doc().endpoints[0].peers.len() == 1
    });
}

#[test]
fn udp_sends_to_its_remote_and_replies_to_a_row() {
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    gui.start_all();
    gui.wait_for("both sockets bound", |g| g.all_up());
    // "udp a" is selected and the library's first payload is ready: one click sends.
    gui.click("➤ Send");
    gui.wait_for("the answer", |g| {
        joined(g.log_rows("udp a", EntryKind::Received)) == b"got it\n"
    });
    assert_eq!(
        joined(gui.log_rows("udp b", EntryKind::Received)),
        b"ping\n"
    );

    // Show udp b's rows only, select its received row, reply to its peer from the inspector.
    gui.filter_log("Endpoints", "udp b");
    gui.harness.get_by_label("← received").click();
    gui.step();
    gui.step();
    gui.click("Reply to this peer");
    let state = gui.harness.state();
    assert_eq!(
        state.doc().endpoints[state.doc().selected].form.name,
        "udp b"
    );
    gui.type_payload("direct\\n");
    gui.click("➤ Send");
    gui.wait_for("the direct reply", |g| {
        g.log_rows("udp a", EntryKind::Received)
            .iter()
            .any(|r| r == b"direct\n")
    });

    // A typed address works too.
    gui.click("● udp a");
    let b_port = gui.harness.state().doc().endpoints[1].form.local.clone();
    gui.click("Send to");
    gui.choose("an address…");
    gui.retype("address", &b_port);
    gui.type_payload("typed\\n");
    gui.click("➤ Send");
    gui.wait_for("the typed send", |g| {
        g.log_rows("udp b", EntryKind::Received)
            .iter()
            .any(|r| r == b"typed\n")
    });
}

#[test]
fn a_server_sends_to_all_three_peers_with_one_sent_row_each() {
    use std::io::Read;
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.click("● echo server");
    gui.click("▶ Start");
    gui.wait_for("the server up", |g| {
        g.harness.state().doc().endpoints[0].state.is_up()
    });
    let listen = gui.harness.state().doc().endpoints[0].form.local.clone();
    let mut peers: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(listen.as_str()).unwrap())
        .collect();
    gui.wait_for("three peers", |g| {
        g.harness.state().doc().endpoints[0].peers.len() == 3
    });
    // A server's "Send to" is every peer unless one is chosen.
    gui.click("Send to");
    gui.choose("all peers");
    gui.type_payload("to all\\n");
    gui.click("➤ Send");
    for peer in &mut peers {
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let mut got = [0u8; 7];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"to all\n");
    }
    gui.wait_for("one Sent row per peer", |g| {
        g.log_rows("echo server", EntryKind::Sent).len() == 3
    });
    let log = &gui.harness.state().doc().session.log;
    let mut sent_to: Vec<u32> = (0..log.len())
        .filter_map(|i| log.entry(i))
        .filter(|e| e.kind == EntryKind::Sent)
        .map(|e| e.peer)
        .collect();
    sent_to.sort();
    sent_to.dedup();
    assert_eq!(sent_to.len(), 3, "three different peers");
}

/// Scrolls the endpoint pane until the widget labelled `label` is in view
/// (the log's panel lies over what is scrolled out).
fn in_view(gui: &mut Gui, label: &str) {
    gui.harness.get_by_label(label).scroll_to_me();
    for _ in 0..5 {
        gui.step();
    }
}

/// A UDP socket connected to its remote hears only that remote: joining a
/// group then hears nothing of it, and the form says so beside the choice
/// and beside the groups, until the socket is unconnected.
#[test]
fn a_connected_udp_socket_joining_a_group_is_told_it_will_not_hear_it() {
    const WARNING: &str = "hears only that remote, not the groups it joins";
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    gui.click("● udp b");
    in_view(&mut gui, "Multicast");
    gui.click("Multicast");
    assert!(!gui.shows(WARNING), "no group joined yet");
    gui.retype("Group", "239.255.77.4");
    in_view(&mut gui, "Join");
    gui.click("Join");
    assert_eq!(
        gui.count_containing(WARNING),
        2,
        "beside the connected choice and beside the groups"
    );
    in_view(&mut gui, "unconnected");
    gui.click("unconnected");
    assert!(!gui.shows(WARNING), "an unconnected socket hears the group");
    assert!(
        gui.harness.state().doc().endpoints[1]
            .form
            .options
            .unconnected
    );
}

#[test]
fn a_udp_socket_joins_and_leaves_a_group_from_its_settings() {
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    gui.click("● udp b");
    // Multicast first: a field's tooltip would lie over the header.
    in_view(&mut gui, "Multicast");
    gui.click("Multicast");
    gui.retype("Interface", "127.0.0.1");
    let port = free_port();
    gui.retype("Bind to", &format!("239.255.77.4:{port}"));
    // A socket connected to its remote hears only that remote, not a group.
    gui.retype("Default remote", "");
    in_view(&mut gui, "▶ Start");
    gui.click("▶ Start");
    gui.wait_for("udp b bound", |g| {
        g.harness.state().doc().endpoints[1].state.is_up()
    });
    gui.retype("Group", "10.0.0.1");
    assert!(gui.shows("group 10.0.0.1: not a multicast address"));
    gui.retype("Group", "239.255.77.4");
    in_view(&mut gui, "Join");
    gui.click("Join");
    let note = |g: &Gui, text: &str| {
        g.log_rows("udp b", EntryKind::Note)
            .iter()
            .any(|r| String::from_utf8_lossy(r).contains(text))
    };
    gui.wait_for("the join", |g| {
        note(
            g,
            "setsockopt(IP_ADD_MEMBERSHIP) group 239.255.77.4 on interface 127.0.0.1: joined",
        )
    });
    assert_eq!(
        gui.harness.state().doc().endpoints[1].form.options.groups,
        vec!["239.255.77.4".parse::<std::net::IpAddr>().unwrap()]
    );
    // Joined live: no restart is asked for.
    assert!(!gui.shows("Changed settings apply when the endpoint starts again."));
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&sender)
        .set_multicast_if_v4(&"127.0.0.1".parse().unwrap())
        .unwrap();
    sender
        .send_to(b"to the group", ("239.255.77.4", port))
        .unwrap();
    gui.wait_for("the group's datagram", |g| {
        joined(g.log_rows("udp b", EntryKind::Received)) == b"to the group"
    });
    in_view(&mut gui, "Leave");
    gui.click("Leave");
    gui.wait_for("the leave", |g| {
        note(
            g,
            "setsockopt(IP_DROP_MEMBERSHIP) group 239.255.77.4 on interface 127.0.0.1: left",
        )
    });
    assert!(
        gui.harness.state().doc().endpoints[1]
            .form
            .options
            .groups
            .is_empty()
    );
}

#[test]
fn a_client_binds_the_local_address_its_form_names() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.click("● client");
    gui.retype("Local address", "localhost:5");
    assert!(gui.shows("is not an IP address"));
    let port = free_port();
    gui.retype("Local address", &format!("127.0.0.1:{port}"));
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    gui.wait_for("the server's peer", |g| {
        !g.harness.state().doc().endpoints[0].peers.is_empty()
    });
    let doc = gui.harness.state().doc();
    let peer = doc.endpoints[0]
        .peers
        .values()
        .next()
        .unwrap()
        .remote
        .clone();
    assert_eq!(peer, format!("127.0.0.1:{port}"));
}

#[test]
fn unsaved_changes_are_asked_about_before_they_are_lost() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    append(&mut gui, "Notes", " More notes.");
    assert!(gui.harness.state().doc().is_dirty());
    gui.click("udp-pair");
    assert!(gui.shows("Save changes?"));
    gui.click("Cancel");
    assert!(!gui.shows("Save changes?"));
    assert!(
        gui.harness
            .state()
            .doc()
            .path
            .as_ref()
            .unwrap()
            .ends_with("tcp-echo-pair.ron")
    );
    gui.click("udp-pair");
    gui.click("Don't save");
    gui.wait_for("the other session", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .unwrap()
            .ends_with("udp-pair.ron")
    });
    // The file on disk was left as it was.
    let text = std::fs::read_to_string(gui.path("tcp-echo-pair.ron")).unwrap();
    assert!(!text.contains("More notes."));
}

#[test]
fn ctrl_l_asks_then_clears_the_log() {
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    gui.start_all();
    gui.wait_for("bound", |g| g.all_up());
    gui.settle();
    let rows = gui.harness.state().doc().session.log.len();
    assert!(rows >= 2);
    // It asks first: the log is the session's recording.
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::L);
    gui.step();
    gui.step();
    assert!(gui.shows("Clear the log?"));
    gui.click("Keep");
    assert_eq!(gui.harness.state().doc().session.log.len(), rows);
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::L);
    gui.step();
    gui.step();
    gui.click("Clear");
    assert_eq!(gui.harness.state().doc().session.log.len(), 0);
    assert!(gui.shows("0 rows"));
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_dropped_session_file_opens() {
    let mut gui = Gui::new();
    let path = gui.path("http-get.ron");
    gui.harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path)));
    gui.wait_for("the dropped file", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .is_some_and(|p| p.ends_with("http-get.ron"))
    });
    assert!(gui.shows("web server"));
    // Any other file loads into the selected endpoint's composer, to send.
    let other = gui.path("notes.txt");
    std::fs::write(&other, "hi").unwrap();
    gui.harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(other.clone())));
    gui.wait_for("the file in the composer", |g| {
        g.shows("Loaded notes.txt (2 bytes) as text")
    });
    assert_eq!(gui.harness.state().composer().text, "hi");
    // With no endpoint to send it from, it is refused with a reason.
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.wait_for("an empty session", |g| {
        g.harness.state().doc().endpoints.is_empty()
    });
    gui.harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(other)));
    gui.step();
    gui.step();
    assert!(gui.shows("is not a session file: only .ron files open here"));
}

#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn preferences_are_saved() {
    let mut gui = Gui::new();
    gui.click("View");
    gui.click("Light");
    gui.click("View");
    gui.click("UTC");
    gui.open_session("udp-pair");
    let mut storage = MemoryStorage::default();
    eframe::App::save(gui.harness.state_mut(), &mut storage);
    let prefs: sockbench::app::Prefs = eframe::get_value(&storage, "prefs").unwrap();
    assert_eq!(prefs.theme, sockbench::app::config::Theme::Light);
    assert_eq!(prefs.time, sockbench::app::config::TimeDisplay::Utc);
    assert!(prefs.recent_files[0].ends_with("udp-pair.ron"));
}

#[test]
fn unsaved_work_is_recovered_after_a_crash() {
    let recovery = tempfile::tempdir().unwrap();
    let dir = recovery.path().to_owned();
    {
        let mut gui = Gui::with(|c| {
            c.recovery_dir = Some(dir.clone());
            c.autosave_every = Duration::ZERO;
        });
        gui.open_session("tcp-echo-pair");
        append(&mut gui, "Notes", " Precious.");
        gui.wait_for("the autosave", |_| dir.join("recovery.ron").is_file());
        // The window is dropped without a clean exit: a crash, as far as it knows.
    }
    let mut gui = Gui::with(|c| c.recovery_dir = Some(dir.clone()));
    gui.wait_for("the offer", |g| g.shows("Recover unsaved work?"));
    gui.click("Recover");
    gui.wait_for("the recovered session", |g| {
        g.harness
            .state()
            .doc()
            .session
            .notes
            .ends_with(" Precious.")
    });
    let doc = &gui.harness.state().doc();
    assert!(doc.is_dirty(), "recovered work is not saved yet");
    assert!(doc.path.as_ref().unwrap().ends_with("tcp-echo-pair.ron"));
}

#[test]
fn step_mode_sends_one_payload_per_click_and_the_progress_bar_follows() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    for (text, want) in [("one\\n", &b"one\n"[..]), ("two\\n", &b"one\ntwo\n"[..])] {
        gui.type_payload(text);
        gui.harness
            .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
        gui.wait_for("the echo", |g| {
            joined(g.log_rows("client", EntryKind::Received)) == want
        });
    }
    gui.click("⏹ Stop all");
    gui.wait_for("everything stopped", |g| {
        g.harness
            .state()
            .doc()
            .endpoints
            .iter()
            .all(|e| !e.state.is_running())
    });

    // The first Step starts a paused replay and lets one payload go: the client's "one".
    for n in 1..=4 {
        gui.click("⏭ Step");
        let progress = format!("{n} of 4 payloads sent");
        gui.wait_for(&progress.clone(), move |g| g.shows(&progress));
        if n < 4 {
            // Nothing more goes without a click.
            for _ in 0..20 {
                gui.step();
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(gui.shows(&format!("{n} of 4 payloads sent")));
            assert!(gui.shows("paused"));
        }
    }
    gui.wait_for("the check", |g| {
        g.shows("✔ every conversation matched the recording")
    });
    // The run has a log of its own; the recording is unchanged.
    let run = gui.harness.state().replay().unwrap();
    let sent: Vec<Vec<u8>> = (0..run.log.len())
        .filter(|&i| run.log.entry(i).unwrap().kind == EntryKind::Sent)
        .map(|i| run.log.data(i).to_vec())
        .collect();
    assert_eq!(
        sent,
        [
            b"one\n".to_vec(),
            b"one\n".to_vec(),
            b"two\n".to_vec(),
            b"two\n".to_vec()
        ]
    );
    assert!(gui.shows("Replay run"));
}

#[test]
fn a_check_marks_the_differing_row_and_the_inspector_shows_the_diff() {
    let mut gui = Gui::new();
    // A peer that answers in capitals, where the recording has an echo.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
        let _ = s.read(&mut buf);
    });
    let recording = format!(
        r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "{addr}"))],
        log: (peers: [(endpoint: "client", peer: 0, remote: "{addr}")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:1")),
            (at: "2026-01-01T00:00:00.010000Z", endpoint: "client", peer: 0, event: Sent(Text("hello\n"))),
            (at: "2026-01-01T00:00:00.020000Z", endpoint: "client", peer: 0, event: Received(Text("hello\n"))),
        ]))"#
    );
    std::fs::write(gui.path("recorded.ron"), recording).unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the file listed", |g| {
        g.harness.query_by_label("recorded").is_some()
    });
    gui.open_session("recorded");
    gui.click("▶ Replay");
    gui.wait_for("the check", |g| {
        g.shows("✖ 1 difference from the recording")
    });
    peer.join().unwrap();
    assert!(gui.shows("≠ ← received"), "the differing row is marked");
    gui.harness
        .get_by_label_contains("≠ \"client\", connection 1: received bytes differ at offset 0")
        .click();
    gui.step();
    gui.step();
    assert!(gui.shows("≠ Differs from the recording"));
    assert!(gui.shows("expected: \"hello\\n\""));
    assert!(gui.shows("received: \"HELLO\\n\""));
    assert!(gui.shows("expected hex: 68 65 6c 6c 6f 0a"));
}

#[test]
fn a_difference_becomes_an_ignore_rule_and_the_next_check_passes() {
    let mut gui = Gui::new();
    // A peer that stamps a counter where the recording has 0001, twice.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stamp in ["7342", "7343"] {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(format!("ok {stamp} done\n").as_bytes())
                .unwrap();
            let _ = s.read(&mut buf);
        }
    });
    let recording = format!(
        r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "{addr}"))],
        log: (peers: [(endpoint: "client", peer: 0, remote: "{addr}")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:1")),
            (at: "2026-01-01T00:00:00.010000Z", endpoint: "client", peer: 0, event: Sent(Text("count?\n"))),
            (at: "2026-01-01T00:00:00.020000Z", endpoint: "client", peer: 0, event: Received(Text("ok 0001 done\n"))),
        ]))"#
    );
    std::fs::write(gui.path("stamped.ron"), recording).unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the file listed", |g| {
        g.harness.query_by_label("stamped").is_some()
    });
    gui.open_session("stamped");
    gui.click("▶ Replay");
    gui.wait_for("the check", |g| {
        g.shows("✖ 1 difference from the recording")
    });
    gui.click("Ignore in future checks…");
    gui.step();
    // Offered: the line from the difference on as a regex, and the differing bytes.
    let draft = gui
        .harness
        .state()
        .replay()
        .unwrap()
        .ignore_draft
        .clone()
        .unwrap();
    assert!(draft.by_line);
    assert_eq!(draft.regex, "ok [^\\r\\n]*");
    assert_eq!(draft.range, "3..7");
    gui.click("Bytes");
    gui.step();
    gui.click("Add ignore rule");
    gui.step();
    let rules = gui.harness.state().doc().session.ignore.clone();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].to_string(), "bytes 3..7 for \"client\"");
    assert!(gui.shows("Future checks ignore bytes 3..7"));
    gui.click("▶ Replay");
    gui.wait_for("the second check", |g| {
        g.shows("✔ every conversation matched the recording (ignored: bytes 3..7 (1))")
    });
    peer.join().unwrap();
}

/// Opens a recording of one TCP client "client" to `addr` that sends each of
/// `sends` and gets it echoed.
fn open_echo_recording(gui: &mut Gui, name: &str, addr: std::net::SocketAddr, sends: &[&str]) {
    let mut entries = String::from(
        r#"(at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 0, event: Connected("from 127.0.0.1:1")),"#,
    );
    for (i, text) in sends.iter().enumerate() {
        entries.push_str(&format!(
            r#"(at: "2026-01-01T00:00:0{i}.100000Z", endpoint: "client", peer: 0, event: Sent(Text("{text}"))),
            (at: "2026-01-01T00:00:0{i}.200000Z", endpoint: "client", peer: 0, event: Received(Text("{text}"))),"#
        ));
    }
    let recording = format!(
        r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "{addr}"))],
        log: (peers: [(endpoint: "client", peer: 0, remote: "{addr}")], entries: [{entries}]))"#
    );
    std::fs::write(gui.path(&format!("{name}.ron")), recording).unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the file listed", |g| {
        g.harness.query_by_label(name).is_some()
    });
    gui.open_session(name);
}

#[test]
fn a_reset_of_a_replayed_client_fails_the_replay_in_the_window() {
    let mut gui = Gui::new();
    // A peer that echoes as recorded, then resets the connection when the client closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = common::echo_then_reset(listener, 6);
    open_echo_recording(&mut gui, "reset", addr, &["hello\\n"]);
    gui.click("▶ Replay");
    // The answer matched, but the reset is what the person must see.
    replay_ends_with(
        &mut gui,
        peer,
        "✖ \"client\": connection reset: the peer reset the connection",
    );
}

/// Waits for the replay's end and the peer's; the bar shows `outcome`, not "matched".
fn replay_ends_with(gui: &mut Gui, peer: std::thread::JoinHandle<()>, outcome: &str) {
    gui.wait_for("the end of the replay", |g| {
        g.harness.state().replay().is_some_and(|r| r.is_done())
    });
    peer.join().unwrap();
    assert!(
        gui.shows(outcome),
        "{:?}",
        gui.harness.state().replay().unwrap().outcome()
    );
    assert!(!gui.shows("✔ every conversation matched"));
}

#[test]
fn a_checked_replay_stopped_by_hand_says_it_was_not_checked() {
    let mut gui = Gui::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    open_echo_recording(&mut gui, "stopped", addr, &["one\\n", "two\\n"]);
    // One step: the first payload goes, and its echo comes back as recorded.
    gui.click("⏭ Step");
    gui.wait_for("the first echo", |g| {
        g.harness.state().replay().is_some_and(|r| {
            (0..r.log.len()).any(|i| r.log.entry(i).unwrap().kind == EntryKind::Received)
        })
    });
    gui.click("⏹ Stop replay");
    // Half a run proves nothing: it says so, not "stopped" as if no check was asked.
    replay_ends_with(
        &mut gui,
        peer,
        "not checked: the replay was interrupted before it ended",
    );
}

#[test]
fn playback_shows_the_rows_as_they_came() {
    let mut gui = Gui::new();
    let recording = r#"(format: 1, endpoints: [(name: "c", kind: Udp())],
        log: (peers: [(endpoint: "c", peer: 1, remote: "127.0.0.1:9")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "c", event: Bound("0.0.0.0:5000")),
            (at: "2026-01-01T00:00:01.000000Z", endpoint: "c", peer: 1, event: Sent(Text("first"))),
            (at: "2026-01-01T00:00:02.000000Z", endpoint: "c", peer: 1, event: Sent(Text("second"))),
        ]))"#;
    std::fs::write(gui.path("timeline.ron"), recording).unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the file listed", |g| {
        g.harness.query_by_label("timeline").is_some()
    });
    gui.open_session("timeline");
    assert!(gui.shows("\"second\""));
    gui.log_action("⏵ Playback");
    // At the start only the first row stands.
    assert!(gui.shows("● bound"));
    assert!(!gui.shows("\"first\""));
    let slider = gui
        .harness
        .query_all_by_label("Up to")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Slider)
        .unwrap();
    slider.set_value_accesskit(1.5);
    gui.step();
    gui.step();
    assert!(gui.shows("\"first\""));
    assert!(!gui.shows("\"second\""));
    // Played back, the rest appears by itself.
    gui.click("▶ Play back");
    gui.wait_for("the last row", |g| g.shows("\"second\""));
}

#[test]
fn lesson_checkpoints_turn_green_as_the_events_happen() {
    let mut gui = Gui::new();
    gui.open_session("1-first-tcp-echo");
    assert!(gui.shows("Lesson: Your first TCP echo"));
    assert!(gui.progress(0, 7));
    gui.click("● server");
    gui.click("▶ Start");
    gui.wait_for("step 1", |g| g.progress(1, 7));
    gui.click("● client");
    gui.click("▶ Start");
    gui.wait_for("steps 2 and 3", |g| g.progress(3, 7));
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("steps 4 and 5", |g| g.progress(5, 7));
    gui.click("⏏ Half-close");
    gui.wait_for("step 6", |g| g.progress(6, 7));
    gui.click("🐍 Python");
    assert!(gui.shows("CONVERSATIONS = ["), "the program is shown");
    assert!(
        gui.shows("(\"send\", b\"hello, server\\n\")"),
        "with the recorded payload"
    );
    // The last step: a program outside the window connects to the server
    // that still listens (here a plain socket stands in for python3).
    assert!(!gui.progress(7, 7));
    let listen = gui.harness.state().doc().endpoints[0].form.local.clone();
    let program = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(listen.as_str()).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(b"hi\n").unwrap();
        let mut echo = [0u8; 3];
        s.read_exact(&mut echo).unwrap();
        echo
    });
    gui.wait_for("step 7", |g| g.progress(7, 7));
    assert_eq!(&program.join().unwrap(), b"hi\n");
    assert!(gui.shows("Every step done"));
}

#[test]
fn lesson_2_six_writes_wait_in_the_paused_receiver_and_come_as_one_read() {
    let mut gui = Gui::new();
    gui.open_session("2-tcp-is-a-stream");
    assert!(gui.progress(0, 9));
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    gui.wait_for("step 1", |g| g.progress(1, 9));
    gui.wait_for("the receiver's peer", |g| {
        !g.harness.state().doc().endpoints[0].peers.is_empty()
    });
    gui.click("● sender");
    gui.type_payload("first line\\nsecond line\\nthird line\\n");
    {
        let composer = &mut gui.harness.state_mut().composer_mut();
        composer.writes = 6;
        composer.gap_ms = 0;
    }
    gui.step();
    assert!(gui.shows("every"), "the gap shows once there are pieces");
    // The step's own button pauses the receiver's reads.
    gui.click("⏸ Pause \"receiver\"'s reads for 5 s");
    gui.wait_for("step 2", |g| g.progress(2, 9));
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("six writes", |g| {
        g.log_rows("sender", EntryKind::Sent).len() == 6
    });
    gui.wait_for("step 3", |g| g.progress(3, 9));
    let sent = gui.log_rows("sender", EntryKind::Sent);
    assert_eq!(
        joined(sent.clone()),
        b"first line\nsecond line\nthird line\n"
    );
    assert!(sent.iter().all(|piece| piece.len() <= 6), "{sent:?}");
    // Once the pause ends: one read with all 34 bytes.
    gui.wait_for("the read after the pause", |g| {
        !g.log_rows("receiver", EntryKind::Received).is_empty()
    });
    assert_eq!(
        gui.log_rows("receiver", EntryKind::Received),
        [b"first line\nsecond line\nthird line\n".to_vec()]
    );
    gui.wait_for("step 4", |g| g.progress(4, 9));
    assert!(!gui.progress(5, 9), "the look at the stream is ticked off");
}

#[test]
fn the_lifecycle_view_shows_a_refused_connection() {
    let mut gui = Gui::new();
    gui.open_session("4-when-things-fail");
    // The first client of the lesson is selected: start it with nothing listening.
    gui.click("▶ Start");
    gui.wait_for("the refusal", |g| g.shows("● failed"));
    gui.click("🔁 Lifecycle");
    assert!(gui.shows("✖ connect() failed"));
    assert!(gui.shows("connection refused: nothing listens on 127.0.0.1:"));
    assert!(gui.shows("so that machine answered the connection request with a reset (RST)"));
    assert!(gui.shows("socket()"));
    assert!(gui.progress(1, 5), "the lesson's first checkpoint");
}

#[test]
fn the_sequence_and_stream_views_show_the_conversation() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    gui.type_payload("one\\ntwo\\n");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("the echo", |g| {
        joined(g.log_rows("client", EntryKind::Received)) == b"one\ntwo\n"
    });

    gui.click("⇄ Sequence");
    let arrow = "client → echo server: \"one\\ntwo\\n\" (8 bytes)";
    assert!(gui.shows(arrow), "an arrow per payload");
    gui.harness.get_by_label(arrow).click();
    gui.step();
    gui.step();
    let selected = gui.harness.state().log_view().selected.unwrap();
    let log = &gui.harness.state().doc().session.log;
    assert_eq!(
        log.entry(selected).unwrap().kind,
        EntryKind::Sent,
        "clicking an arrow selects its row"
    );

    gui.click("✂ Stream");
    gui.click("cut as");
    gui.choose("lines");
    assert!(
        gui.shows("cut as lines: 2 messages."),
        "the stream cut into its lines"
    );
}

#[test]
fn tls_endpoints_work_in_the_window() {
    let mut gui = Gui::new();
    gui.open_session("tls-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    assert!(
        gui.shows("⚠ INSECURE: this client accepts any certificate"),
        "insecure is marked loudly"
    );
    gui.wait_for("the handshake", |g| g.shows("TLS 1.3"));
    gui.click("➤ Send");
    gui.wait_for("the echo", |g| {
        joined(g.log_rows("tls client", EntryKind::Received)) == b"hello over TLS\n"
    });
    assert!(gui.shows("🔒 TLS handshake"), "the handshake row");
    gui.click("⏹ Stop all");
    gui.wait_for("stopped", |g| {
        g.harness
            .state()
            .doc()
            .endpoints
            .iter()
            .all(|e| !e.state.is_running())
    });

    // Verification on: the made certificate is refused, with the reason.
    gui.click("Insecure: do not verify the certificate");
    gui.start_all();
    gui.wait_for("the refusal", |g| g.shows("● failed"));
    assert!(gui.shows("unknown issuer"));
    gui.click("🔁 Lifecycle");
    assert!(gui.shows("✖ TLS handshake failed"));
}

/// Characters that must never reach a drawn label as themselves.
fn is_dangerous(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7F..=0x9F).contains(&u)
        || (0x202A..=0x202E).contains(&u)
        || (0x2066..=0x2069).contains(&u)
        || matches!(u, 0x200E | 0x200F | 0x061C | 0x2028 | 0x2029)
}

/// Every label and every label's text in the window: none holds a control or
/// bidi character (text fields hold their text as it is, and are left out).
/// A line feed is allowed only where it is ours (the Python program has
/// lines): none may come from the file, so none may stand before "FAKE",
/// "evil" or a forged time.
fn assert_no_raw_controls(gui: &Gui, view: &str) {
    use egui::accesskit::Role;
    let bad: Vec<String> = gui
        .harness
        .query_all_by(|node| {
            let label = node.label().unwrap_or_default();
            let value = if node.role() == Role::Label {
                node.value().unwrap_or_default()
            } else {
                String::new()
            };
            let text = format!("{label}{value}");
            text.chars().any(|c| c != '\n' && is_dangerous(c))
                || ["\nFAKE", "evil\n", "\n2026", "\nthen", "\n\x1b", "\nsecond"]
                    .iter()
                    .any(|forged| text.contains(forged))
        })
        .map(|n| format!("{:?}", n.accesskit_node()))
        .collect();
    assert!(
        bad.is_empty(),
        "raw control characters drawn in the {view}: {bad:#?}"
    );
}

#[test]
fn text_from_a_hostile_file_is_drawn_escaped() {
    use sockbench::model::lesson::{Lesson, LessonStep};
    use sockbench::model::{EndpointKind, EndpointSpec, LibraryItem, Payload, Session};

    let mut gui = Gui::new();
    let name = "\u{202e}evil\n\x1b[31m";
    let shown = "\\u{202e}evil\\n\\x1b[31m";
    let mut session = Session {
        notes: "first line\nthen \u{202e}reversed\x1b[31m red".into(),
        ..Session::default()
    };
    session.endpoints.push(EndpointSpec::new(
        name,
        EndpointKind::TcpClient {
            remote: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        },
    ));
    session.library.push(LibraryItem {
        name: "lib\u{2066}item\x07".into(),
        payload: Payload::from("hi"),
    });
    session.lesson = Some(Lesson {
        title: "lesson\u{202e}title\r".into(),
        steps: vec![LessonStep {
            text: "step one\n\x1b[2Jsecond line\u{85}".into(),
            check: None,
            action: None,
        }],
    });
    let log = &mut session.log;
    let ep = log.endpoint_index(name);
    let peer = log.peer_index(ep, 0, "127.0.0.1:1\n2026-01-01T00:00:00Z FAKE\u{2067}");
    let at = chrono::Utc::now();
    log.push(at, ep, peer, EntryKind::Connected, b"from 127.0.0.1:2");
    log.push(
        at,
        ep,
        peer,
        EntryKind::Sent,
        "hello\n\u{202e}there".as_bytes(),
    );
    log.push(
        at,
        ep,
        peer,
        EntryKind::Received,
        b"\x1b]0;owned\x07\n2026 FAKE connected",
    );
    log.push(
        at,
        ep,
        peer,
        EntryKind::Note,
        "a note\nFAKE row\u{9b}2J".as_bytes(),
    );
    log.push(
        at,
        ep,
        sockbench::model::NO_PEER,
        EntryKind::Failed(sockbench::model::ErrorKind::Tls),
        "bad certificate: CN=\x1b[31mx\u{202e}\nFAKE".as_bytes(),
    );
    sockbench::persist::save(&gui.path("hostile\u{202e}file.ron"), &session).unwrap();

    gui.click("⟳ Refresh");
    gui.wait_for("the new file listed", |g| {
        g.harness.query_by_label("hostile\\u{202e}file").is_some()
    });
    gui.click("hostile\\u{202e}file");
    gui.wait_for("the session to open", |g| {
        g.harness.state().doc().path.is_some()
    });
    gui.step();

    assert_no_raw_controls(&gui, "log view");
    // The endpoint's tab, the log's rows and filters show the escaped name.
    assert!(
        gui.count_containing(shown) >= 2,
        "the name escaped in the tab and the rows"
    );
    assert!(gui.shows("127.0.0.1:1\\n2026-01-01T00:00:00Z FAKE\\u{2067}"));
    assert!(gui.shows("a note\\nFAKE row\\u{9b}2J"));
    assert!(gui.shows("bad certificate: CN=\\x1b[31mx\\u{202e}\\nFAKE"));
    assert!(gui.shows("Lesson: lesson\\u{202e}title\\r"));
    assert!(gui.shows("step one\\n\\x1b[2Jsecond line\\u{85}"));
    assert!(gui.shows("marks a control or bidi character in the notes: \\u{202e} \\x1b"));

    // Each row in the inspector.
    let rows = gui.harness.state().doc().session.log.len();
    for row in 0..rows {
        gui.harness.state_mut().log_view_mut().select(row);
        gui.step();
        gui.step();
        assert_no_raw_controls(&gui, &format!("inspector of row {row}"));
    }
    assert!(
        gui.shows("CN=\\x1b[31mx\\u{202e}\\nFAKE"),
        "the failure's detail"
    );

    // The library menu.
    gui.click("Library");
    assert!(gui.shows("lib\\u{2066}item\\x07"));
    assert_no_raw_controls(&gui, "library menu");
    gui.harness.key_press(Key::Escape);
    gui.step();

    for view in ["⇄ Sequence", "🔁 Lifecycle", "✂ Stream", "🐍 Python"] {
        gui.click(view);
        assert_no_raw_controls(&gui, view);
    }
    gui.click("⇄ Sequence");
    assert!(
        gui.shows(shown),
        "the lifeline and arrows name the endpoint escaped"
    );
}

#[test]
fn udp_sockets_offer_connected_or_not_and_every_interface_shows_a_badge() {
    let mut gui = Gui::new();
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    gui.click("➕ Add endpoint");
    gui.click("UDP socket");
    let connected = sockbench::model::explain::setting("UdpConnected");
    let unconnected = sockbench::model::explain::setting("UdpUnconnected");
    // A socket with a default remote is connected, and says what that means.
    assert!(gui.harness.query_by_label("connected").is_some());
    assert!(gui.shows(&connected));
    gui.choose("unconnected");
    assert!(gui.shows(&unconnected));
    assert!(!gui.shows(&connected));
    let state = gui.harness.state();
    let spec = state.doc().validate(state.doc().selected).unwrap();
    assert!(!spec.options.connected);

    // Bound to loopback: no badge. Typed a wildcard (never started here): a badge.
    assert!(!gui.shows("🌐 every interface"));
    gui.retype("Bind to", "0.0.0.0:0");
    assert!(gui.shows("🌐 every interface"));
    gui.retype("Bind to", "127.0.0.1:0");
    assert!(!gui.shows("🌐 every interface"));
}

#[test]
fn lesson_3_sender_hears_no_error_from_a_closed_port() {
    let mut gui = Gui::new();
    gui.open_session("3-udp-has-no-connection");
    assert!(gui.progress(0, 6));
    // The sender is selected: start it alone and send into the void.
    gui.click("▶ Start");
    gui.wait_for("the sender bound", |g| {
        g.harness.state().doc().endpoints[0].state.is_up()
    });
    gui.click("➤ Send");
    gui.wait_for("the datagram sent", |g| {
        g.log_rows("sender", EntryKind::Sent).len() == 1
    });
    // An ICMP "port unreachable" comes back at once; an unconnected socket
    // is not told, as the lesson says.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        gui.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = &gui.harness.state().doc().session.log;
    let failures = (0..log.len())
        .filter(|&i| matches!(log.entry(i).unwrap().kind, EntryKind::Failed(_)))
        .count();
    assert_eq!(failures, 0);
    assert!(gui.progress(1, 6));
}

/// `count` received payloads of `size` bytes for endpoint `index` of the open
/// session, as the engine would report them.
// `.into()`: events carry `Vec<u8>` now and `bytes::Bytes` soon; both convert.
#[allow(clippy::useless_conversion)]
fn traffic(gui: &Gui, index: usize, count: usize, size: usize) -> Vec<sockbench::engine::Event> {
    let id = gui.harness.state().doc().endpoints[index].id;
    let at = chrono::Utc::now();
    (0..count)
        .map(|i| sockbench::engine::Event {
            id,
            at,
            kind: sockbench::engine::EventKind::Traffic {
                peer: 0,
                remote: "127.0.0.1:9".parse().unwrap(),
                dir: sockbench::model::Direction::Received,
                bytes: vec![(i % 251) as u8; size].into(),
            },
        })
        .collect()
}

/// Whether the last frame asked for the next one at once.
fn asked_for_the_next_frame(gui: &Gui) -> bool {
    gui.harness
        .output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .is_some_and(|v| v.repaint_delay.is_zero())
}

/// Steps until the backlog is drained; every frame keeps within `budget` (by
/// count: events, and bytes up to one event past the limit) and asks for the
/// next frame while more waits. Returns the frames it took.
fn drain_within(gui: &mut Gui, budget: sockbench::app::DrainBudget, largest: usize) -> usize {
    for frame in 1..=1000 {
        gui.step();
        let report = gui.harness.state().last_drain();
        assert!(report.events <= budget.events, "frame {frame}: {report:?}");
        assert!(
            report.bytes <= budget.bytes + largest,
            "frame {frame}: {report:?}"
        );
        if report.finished {
            return frame;
        }
        assert!(
            asked_for_the_next_frame(gui),
            "frame {frame} left events waiting and did not ask to come back"
        );
    }
    panic!("the backlog was not drained in 1000 frames");
}

#[test]
fn a_flood_backlog_is_drained_in_bounded_frames_each_within_the_budget() {
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    // Counts decide here (the clock limit is out of reach), so the figures are exact.
    let budget = sockbench::app::DrainBudget {
        time: Duration::from_secs(3600),
        bytes: 8 << 20,
        events: 50_000,
    };
    gui.harness.state_mut().set_drain_budget(budget);
    let backlog = traffic(&gui, 0, 200_000, 64);
    gui.harness.state_mut().inject_events(backlog);
    let frames = drain_within(&mut gui, budget, 64);
    // 50,000 a frame: four frames, and a fifth that finds nothing left.
    assert!(frames <= 5, "{frames} frames");
    let state = gui.harness.state();
    assert_eq!(state.doc().session.log.len(), 200_000);
    assert_eq!(
        state
            .doc()
            .totals_of(state.doc().endpoints[0].id)
            .received_bytes,
        200_000 * 64
    );

    // Few large payloads: the byte limit ends each frame's drain.
    let big = traffic(&gui, 0, 40, 1 << 20);
    gui.harness.state_mut().inject_events(big);
    let frames = drain_within(&mut gui, budget, 1 << 20);
    assert!((5..=6).contains(&frames), "{frames} frames");
    assert_eq!(gui.harness.state().doc().session.log.len(), 200_040);

    // The window's own budget: within its counts, and done in bounded frames.
    let budget = sockbench::app::DrainBudget::default();
    gui.harness.state_mut().set_drain_budget(budget);
    let backlog = traffic(&gui, 1, 100_000, 100);
    gui.harness.state_mut().inject_events(backlog);
    drain_within(&mut gui, budget, 100);
    assert_eq!(gui.harness.state().doc().session.log.len(), 300_040);
    gui.step();
    assert!(gui.shows("300040 rows"), "the log view counts every row");
}

#[test]
fn the_autosave_never_runs_twice_at_once_and_keeps_payloads_up_to_its_cap() {
    let recovery = tempfile::tempdir().unwrap();
    let dir = recovery.path().to_owned();
    let mut gui = Gui::with(|c| {
        c.recovery_dir = Some(dir.clone());
        c.autosave_every = Duration::ZERO;
    });
    gui.open_session("tcp-echo-pair");
    // An edit: unsaved work (a template's log alone is not).
    append(&mut gui, "Notes", " Edited.");
    gui.harness.state_mut().set_autosave_payload_cap(1 << 20);
    let big = traffic(&gui, 0, 4, 1 << 20);
    gui.harness.state_mut().inject_events(big);
    // Every frame changes the document, and every frame may autosave: never
    // while one is still being written.
    for _ in 0..60 {
        let more = traffic(&gui, 0, 1, 16);
        gui.harness.state_mut().inject_events(more);
        gui.step();
        let (started, finished) = gui.harness.state().autosaves();
        assert!(
            started <= finished + 1,
            "{started} started, {finished} done"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    gui.wait_for("the last autosave", |g| {
        let (started, finished) = g.harness.state().autosaves();
        started >= 1 && started == finished
    });
    let saved = sockbench::persist::load(&dir.join("recovery.ron")).unwrap();
    let log = &saved.log;
    let payload: usize = log
        .entries()
        .iter()
        .filter(|e| e.kind.is_traffic())
        .map(|e| e.len())
        .sum();
    assert!(payload <= 1 << 20, "{payload} bytes kept");
    let last = log.len() - 1;
    assert_eq!(log.entry(last).unwrap().kind, EntryKind::Note);
    assert!(
        log.detail(last)
            .contains("left out; the autosave keeps at most 1 MiB of payloads"),
        "{}",
        log.detail(last)
    );
    // The window's own log keeps everything.
    assert!(gui.harness.state().doc().session.log.data_bytes() >= 4 << 20);
}

#[test]
fn the_composer_belongs_to_its_endpoint_and_session_and_shows_what_goes_out() {
    let mut gui = Gui::new();
    gui.open_session("2-tcp-is-a-stream");
    gui.type_payload("ping");
    gui.click("frame");
    gui.choose("2-byte length");
    gui.click("ending");
    gui.choose("LF (\\n)");
    assert!(
        gui.shows("7 bytes go out: 00 05 70 69 6e 67 0a"),
        "the exact bytes beside Send"
    );
    // Another endpoint of the session has its own composer.
    let other = gui.harness.state().doc().endpoints[1 - gui.harness.state().doc().selected]
        .form
        .name
        .clone();
    let mine = gui.harness.state().doc().endpoints[gui.harness.state().doc().selected]
        .form
        .name
        .clone();
    gui.click(&format!("● {other}"));
    assert_eq!(
        gui.harness.state().composer().framing,
        sockbench::model::framing::Framing::Reads
    );
    assert!(!gui.shows("go out"));
    gui.click(&format!("● {mine}"));
    assert!(
        gui.shows("7 bytes go out: 00 05 70 69 6e 67 0a"),
        "kept with its endpoint"
    );

    // The next session starts from its own state: no frame, no line ending.
    let next = gui.path("lessons/3-udp-has-no-connection.ron");
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::O);
    gui.step();
    gui.retype("Path", next.to_str().unwrap());
    gui.click("Open");
    gui.wait_for("lesson 3", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .is_some_and(|p| p.ends_with("3-udp-has-no-connection.ron"))
    });
    let composer = &gui.harness.state().composer();
    assert_eq!(composer.framing, sockbench::model::framing::Framing::Reads);
    assert_eq!(
        composer.line_ending,
        sockbench::app::composer::LineEnding::None
    );
    assert!(!gui.shows("go out"));
    assert!(!gui.shows("00 05"));
}

#[test]
fn hex_to_text_escapes_binary_bytes() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.click("Hex");
    gui.type_payload("de ad be ef");
    gui.click("Text");
    assert_eq!(gui.harness.state().composer().text, "\\xde\\xad\\xbe\\xef");
    assert!(gui.shows("4 bytes"));
}

#[test]
fn shipped_sessions_are_templates_and_are_never_overwritten() {
    let mut gui = Gui::new();
    gui.open_session("1-first-tcp-echo");
    let lesson = gui.path("lessons/1-first-tcp-echo.ron");
    let original = std::fs::read(&lesson).unwrap();
    gui.click("● server");
    gui.click("▶ Start");
    gui.wait_for("step 1", |g| g.progress(1, 7));
    // Running a template records a log, but is no unsaved work.
    assert!(!gui.harness.state().doc().is_dirty());
    assert!(!gui.shows("● 1-first-tcp-echo"));

    // Save goes to Save As, in a folder of the person's own.
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    gui.step();
    gui.step();
    assert!(gui.shows("Save the session as"));
    let suggested = gui
        .harness
        .get_by_label("Path")
        .accesskit_node()
        .value()
        .unwrap_or_default();
    assert!(suggested.ends_with("1-first-tcp-echo.ron"), "{suggested}");
    assert!(
        !Path::new(&suggested).starts_with(gui.dir.path()),
        "{suggested} is in the program's sessions folder"
    );
    // Typed back onto the shipped file, it is refused with the reason.
    gui.retype("Path", lesson.to_str().unwrap());
    gui.click("Save here");
    assert!(gui.shows("is one of the program's examples"));
    assert!(
        gui.shows("Save the session as"),
        "the box stays for another place"
    );
    let own = tempfile::tempdir().unwrap();
    let copy = own.path().join("my lesson.ron");
    gui.retype("Path", copy.to_str().unwrap());
    gui.click("Save here");
    gui.wait_for("the copy", |_| copy.is_file());
    assert_eq!(
        std::fs::read(&lesson).unwrap(),
        original,
        "the lesson is as shipped"
    );
    gui.wait_for("the document is the copy", |g| {
        g.harness.state().doc().path.as_deref() == Some(copy.as_path())
    });

    // A template run then left asks nothing.
    let mut gui = Gui::new();
    gui.open_session("udp-pair");
    gui.start_all();
    gui.wait_for("bound", |g| g.all_up());
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    gui.step();
    assert!(!gui.shows("Save changes?"));
    assert!(gui.harness.state().doc().endpoints.is_empty());
}

#[test]
fn enter_in_the_open_box_opens_the_typed_path() {
    let mut gui = Gui::new();
    let target = gui.path("udp-pair.ron");
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::O);
    gui.step();
    gui.retype("Path", target.to_str().unwrap());
    gui.harness.key_press(Key::Enter);
    gui.step();
    gui.wait_for("the typed file", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .is_some_and(|p| p.ends_with("udp-pair.ron"))
    });
    assert!(!gui.shows("Open a session"));
}

#[test]
fn copy_buttons_say_copied() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.click("🐍 Python");
    assert!(!gui.shows("✔ copied"));
    gui.click("📋 Copy program");
    assert!(gui.shows("✔ copied"));
    gui.click("⇄ Sequence");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    gui.wait_for("the diagram", |g| g.shows("📋 Copy as Mermaid"));
    assert!(!gui.shows("✔ copied"));
    gui.click("📋 Copy as Mermaid");
    assert!(gui.shows("✔ copied"));
}

#[test]
fn nodelay_applies_at_once_and_says_nothing_about_a_restart() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    gui.click("Socket options");
    let nodelay = |g: &Gui| {
        let doc = &g.harness.state().doc();
        doc.endpoints[doc.selected].form.options.nodelay
    };
    let before = nodelay(&gui);
    gui.click("TCP_NODELAY");
    assert_ne!(nodelay(&gui), before, "the option changed");
    assert!(!gui.shows("Changed settings apply when the endpoint starts again."));
    // Another option does need a restart, and says so.
    gui.retype("TTL / hops", "64");
    assert!(gui.shows("Changed settings apply when the endpoint starts again."));
}

#[test]
fn restart_lesson_starts_over_from_step_1() {
    let mut gui = Gui::new();
    gui.open_session("1-first-tcp-echo");
    gui.click("● server");
    gui.click("▶ Start");
    gui.wait_for("step 1", |g| g.progress(1, 7));
    gui.click("↺ Restart lesson");
    gui.wait_for("the server stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    // The stop's own rows may come after the clear; they earn no step.
    for _ in 0..20 {
        gui.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(gui.progress(0, 7));
    assert!(
        !gui.harness.state().doc().is_dirty(),
        "a template run is no work"
    );
    // And the steps are earned again.
    gui.click("▶ Start");
    gui.wait_for("step 1 again", |g| g.progress(1, 7));
}

#[test]
fn the_stats_view_counts_what_an_echo_carried() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| g.all_up());
    // 37 characters and a newline: 38 bytes each way at each end.
    gui.type_payload("0123456789abcdefghijklmnopqrstuvwxyz!\\n");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("the echo", |g| {
        joined(g.log_rows("client", EntryKind::Received)).len() == 38
    });
    gui.click("📈 Stats");

    // The sampler's numbers are the log's, at both ends, both ways.
    for name in ["client", "echo server"] {
        let doc = gui.harness.state().doc();
        let id = doc
            .endpoints
            .iter()
            .find(|e| e.form.name == name)
            .unwrap()
            .id;
        let stats = gui.harness.state().stats().get(id).unwrap();
        let received = gui.log_rows(name, EntryKind::Received);
        let sent = gui.log_rows(name, EntryKind::Sent);
        assert_eq!(stats.totals.bytes_in, 38, "{name} received");
        assert_eq!(stats.totals.bytes_out, 38, "{name} sent");
        assert_eq!(stats.totals.payloads_in, received.len() as u64, "{name}");
        assert_eq!(stats.totals.payloads_out, sent.len() as u64, "{name}");
        assert_eq!((stats.open, stats.connections), (1, 1), "{name}");
    }
    // The view shows them: both ways at both endpoints, and both ways for
    // the selected endpoint's one peer.
    // (The endpoint pane above the tabs may say "38 bytes" too.)
    let below_tabs = |label: &str| {
        let tabs = gui.harness.get_by_label("📈 Stats").rect().max.y;
        gui.harness
            .query_all_by_label(label)
            .filter(|n| n.rect().min.y > tabs)
            .count()
    };
    assert_eq!(below_tabs("38 bytes"), 6);
    assert_eq!(below_tabs("1 open, 1 in all"), 2);
    assert!(gui.shows("Peers of "));
}

/// The library's names, in order.
fn library_names(gui: &Gui) -> Vec<String> {
    gui.harness
        .state()
        .library()
        .iter()
        .map(|i| i.name.clone())
        .collect()
}

#[test]
fn library_entries_are_renamed_deleted_and_reordered_and_saved() {
    let mut gui = Gui::new();
    gui.open_session("tcp-echo-pair");
    assert_eq!(library_names(&gui), ["hello", "some bytes"]);
    gui.choose("Library");
    gui.choose("✏ Rename, delete, reorder…");
    assert!(gui.shows("Named payloads of this session"));
    // The first can go down, not up.
    assert!(is_disabled(&gui, "Move \"hello\" up"));
    gui.click("Move \"some bytes\" up");
    assert_eq!(library_names(&gui), ["some bytes", "hello"]);
    assert!(gui.harness.state().doc().is_dirty());

    // A taken name is refused with the reason beside the field.
    gui.click("Rename \"hello\"");
    gui.retype("New name for \"hello\"", "some bytes");
    assert!(gui.shows("is taken"));
    assert!(is_disabled(&gui, "✔ Rename"));
    gui.retype("New name for \"hello\"", "greeting");
    gui.click("✔ Rename");
    assert_eq!(library_names(&gui), ["some bytes", "greeting"]);

    // Delete, undo, delete again (a frame first: the rows moved up as the
    // rename field closed, and a click lands where a row is drawn).
    gui.step();
    gui.click("Delete \"some bytes\"");
    assert_eq!(library_names(&gui), ["greeting"]);
    gui.click("↶ Undo delete");
    assert_eq!(library_names(&gui), ["some bytes", "greeting"]);
    gui.click("Move \"greeting\" up");
    gui.click("Delete \"some bytes\"");
    assert_eq!(library_names(&gui), ["greeting"]);
    // Load puts the entry into the composer.
    gui.click("Load \"greeting\"");
    assert_eq!(
        gui.harness.state_mut().composer_mut().bytes().unwrap(),
        b"hello, echo\n"
    );

    // Saved with the session (an example saves as a copy of the person's own).
    let target = gui.path("my library.ron");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::S);
    gui.step();
    gui.retype("Path", target.to_str().unwrap());
    gui.click("Save here");
    gui.wait_for("the save", |g| !g.harness.state().doc().is_dirty());
    let saved = sockbench::persist::load(&target).unwrap();
    let names: Vec<&str> = saved.library.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["greeting"]);
}

/// A loopback echo server outside sockbench (port 0): echoes each
/// connection until it closes, bounded in time.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

#[test]
fn quick_send_talks_to_an_address_and_the_echo_shows_under_its_name() {
    let addr = echo_server();
    let mut gui = Gui::new();
    // Reasons beside the fields, and no send while they stand.
    gui.retype("to", "localhost");
    assert!(gui.shows("has no port"));
    assert!(is_disabled(&gui, "➤ Quick send"));
    gui.retype("to", &addr.to_string());
    assert!(!gui.shows("has no port"));
    gui.retype("payload", "bad \\q escape");
    assert!(gui.shows("⚠ at position"));
    assert!(is_disabled(&gui, "➤ Quick send"));
    gui.retype("payload", "quick hello\\n");
    let endpoints_before = gui.harness.state().doc().endpoints.len();
    gui.click("➤ Quick send");

    let name = format!("quick TCP {addr}");
    let wanted = name.clone();
    gui.wait_for("the echo", move |g| {
        joined(g.log_rows(&wanted, EntryKind::Received)) == b"quick hello\n"
    });
    assert_eq!(
        joined(gui.log_rows(&name, EntryKind::Sent)),
        b"quick hello\n"
    );
    assert!(gui.shows(&name), "the endpoint's tab");
    assert_eq!(
        gui.harness.state().doc().endpoints.len(),
        endpoints_before + 1
    );

    // Again: the same endpoint and connection carry it.
    gui.retype("payload", "again\\n");
    gui.click("➤ Quick send");
    let wanted = name.clone();
    gui.wait_for("the second echo", move |g| {
        joined(g.log_rows(&wanted, EntryKind::Received)) == b"quick hello\nagain\n"
    });
    assert_eq!(
        gui.harness.state().doc().endpoints.len(),
        endpoints_before + 1
    );
    assert_eq!(gui.log_rows(&name, EntryKind::Connected).len(), 1);
}

#[test]
fn quick_send_over_udp_hears_the_answer() {
    let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    echo.set_read_timeout(Some(LIMIT)).unwrap();
    let addr = echo.local_addr().unwrap();
    let answered = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (n, from) = echo.recv_from(&mut buf).unwrap();
        echo.send_to(&buf[..n], from).unwrap();
        buf[..n].to_vec()
    });
    let mut gui = Gui::new();
    gui.choose("⚡ Quick send");
    gui.choose("UDP");
    gui.retype("to", &addr.to_string());
    gui.retype("payload", "datagram\\x00");
    gui.click("➤ Quick send");
    let name = format!("quick UDP {addr}");
    let wanted = name.clone();
    gui.wait_for("the answer", move |g| {
        joined(g.log_rows(&wanted, EntryKind::Received)) == b"datagram\0"
    });
    assert_eq!(answered.join().unwrap(), b"datagram\0");
    assert_eq!(joined(gui.log_rows(&name, EntryKind::Sent)), b"datagram\0");
}

#[test]
fn a_relay_from_a_file_is_editable_and_shows_its_intercept_not_a_composer() {
    let mut gui = Gui::new();
    let path = gui.path("a-relay.ron");
    std::fs::write(
        &path,
        "(format: 1, endpoints: [(name: \"r\", kind: Relay(transport: Tcp, \
         listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\"))])",
    )
    .unwrap();
    gui.harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path)));
    gui.wait_for("the relay session", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .is_some_and(|p| p.ends_with("a-relay.ron"))
    });
    gui.step();
    // Editable like any endpoint; its pane holds the intercept, not a composer.
    assert!(gui.shows("Start the relay to hold what passes through it"));
    assert!(gui.harness.query_by_label("Upstream").is_some());
    assert!(gui.harness.query_by_label("Send").is_none());
}

/// An upstream on loopback for one client: answers each read upper-cased,
/// and returns all it read once the client closes.
fn upper_upstream() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = conn.write_all(&buf[..n].to_ascii_uppercase());
                }
            }
        }
        all
    });
    (addr, serve)
}

/// A relay added in a fresh session, listening on a free port, relaying to `upstream`.
fn new_relay(gui: &mut Gui, upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    gui.click("➕ Add endpoint");
    gui.choose("relay");
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    gui.retype("Listen on", &listen.to_string());
    gui.retype("Upstream", &upstream.to_string());
    gui.click("▶ Start");
    gui.wait_for("the relay listening", |g| g.shows("● listening"));
    listen
}

#[test]
fn a_relay_added_in_the_form_logs_both_directions() {
    use std::io::{Read, Write};
    let (upstream, served) = upper_upstream();
    let mut gui = Gui::new();
    let at = new_relay(&mut gui, upstream);
    let mut client = std::net::TcpStream::connect(at).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    client.write_all(b"hello\n").unwrap();
    let mut answer = [0u8; 6];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HELLO\n");
    gui.wait_for("both directions in the log", |g| {
        joined(g.log_rows("relay", EntryKind::Received)) == b"hello\n"
            && joined(g.log_rows("relay", EntryKind::Sent)) == b"HELLO\n"
    });
    assert!(
        gui.shows("⬆ client → upstream"),
        "the client's bytes, by their way"
    );
    assert!(
        gui.shows("⬇ upstream → client"),
        "the upstream's bytes, by their way"
    );
    assert!(
        !gui.shows("← received"),
        "a relay's rows are not a server's"
    );
    drop(client);
    assert_eq!(served.join().unwrap(), b"hello\n");
    // The relay as the session saves it.
    let spec = gui.harness.state().doc().validate(0).unwrap();
    match &spec.kind {
        sockbench::model::EndpointKind::Relay { upstream: u, .. } => {
            assert_eq!(u.to_string(), upstream.to_string())
        }
        other => panic!("not a relay: {other:?}"),
    }
}

#[test]
fn held_payloads_are_forwarded_edited_or_dropped_from_the_relay_pane() {
    use std::io::Write;
    let (upstream, served) = upper_upstream();
    let mut gui = Gui::new();
    let at = new_relay(&mut gui, upstream);
    assert!(gui.shows("Nothing is held") || gui.shows("Intercept"));
    gui.click("✋ Hold client → upstream");
    gui.wait_for("the hold on", |g| {
        g.log_rows("relay", EntryKind::Note)
            .iter()
            .any(|r| r.starts_with("hold up (client → upstream) on".as_bytes()))
    });
    let mut client = std::net::TcpStream::connect(at).unwrap();
    client.set_nodelay(true).unwrap();
    for (n, word) in ["first", "second", "third"].iter().enumerate() {
        client.write_all(word.as_bytes()).unwrap();
        let item = format!("✋ #{} ⬆", n + 1);
        gui.wait_for("the payload held", move |g| g.shows(&item));
    }
    // The first edited, the second dropped, the third forwarded by hold off.
    gui.click("✏ Edit #1");
    gui.retype("Edited payload", "FIRST");
    gui.click("➡ Forward edited #1");
    // The pane drops #1 when the relay says it passed it on; clicks land by
    // position, so wait for that before clicking what moves up.
    gui.wait_for("#1 passed on", |g| !g.shows("✋ #1 ⬆"));
    gui.click("🗑 Drop #2");
    gui.click("✋ Hold client → upstream");
    gui.wait_for("the queue empty", |g| !g.shows("✋ #"));
    client.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(served.join().unwrap(), b"FIRSTthird");
    gui.wait_for("what was done, in the log", |g| {
        let notes = g.log_rows("relay", EntryKind::Note);
        ["up: edited #1", "up: dropped #2", "up: forwarded #3"]
            .iter()
            .all(|n| notes.iter().any(|r| r.starts_with(n.as_bytes())))
    });
    // The log keeps the read and the edited bytes both.
    assert_eq!(
        joined(gui.log_rows("relay", EntryKind::Received)),
        b"firstsecondthird"
    );
    drop(client);
}

/// A SOCKS5 proxy for one client (no authentication, IPv4 targets on
/// loopback), on std threads; its address.
fn one_client_socks5_proxy() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else {
            return;
        };
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let mut greeting = [0u8; 3];
        c.read_exact(&mut greeting).unwrap();
        c.write_all(&[5, 0]).unwrap();
        let mut req = [0u8; 10];
        c.read_exact(&mut req).unwrap();
        assert_eq!(req[3], 1, "an IPv4 target");
        let ip = std::net::Ipv4Addr::new(req[4], req[5], req[6], req[7]);
        assert!(ip.is_loopback());
        let up = std::net::TcpStream::connect((ip, u16::from_be_bytes([req[8], req[9]]))).unwrap();
        c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).unwrap();
        let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
        let mut up = up;
        std::thread::spawn(move || std::io::copy(&mut up2, &mut c2));
        let _ = std::io::copy(&mut c, &mut up);
    });
    addr
}

/// An echo server for one connection, on std threads; its address.
fn one_client_echo() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else {
            return;
        };
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 || c.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    addr
}

#[test]
fn a_client_form_takes_a_proxy_and_reconnects_and_checks_both_as_typed() {
    let mut gui = Gui::new();
    let echo = one_client_echo();
    new_client(&mut gui, &echo.to_string());
    gui.retype("Proxy", "socks5://proxy.example");
    assert!(gui.shows("⚠ proxy address: \"proxy.example\" has no port"));
    assert!(is_disabled(&gui, "▶ Start"));
    gui.retype("Proxy", "ftp://p:1");
    assert!(gui.shows("the scheme must be socks5:// or http://"));
    gui.click("Reconnect");
    gui.retype("Wait (first..longest)", "5s..1s");
    assert!(gui.shows("longer than the longest"));
    gui.retype("Wait (first..longest)", "10ms..1s");
    gui.retype("Attempts", "3");

    let proxy = one_client_socks5_proxy();
    gui.retype("Proxy", &format!("socks5://{proxy}"));
    assert!(!gui.shows("⚠"));
    assert!(!is_disabled(&gui, "▶ Start"));
    gui.click("▶ Start");
    gui.wait_for("the tunnel", |g| g.shows("● connected"));
    assert!(gui.shows(&format!("tunnel established to {echo}")));
    gui.type_payload("via socks\\n");
    gui.click("➤ Send");
    gui.wait_for("the echo", |g| {
        joined(g.log_rows("client", EntryKind::Received)) == b"via socks\n"
    });
    let session = gui.harness.state().doc().to_session().unwrap();
    let client = session
        .endpoints
        .iter()
        .find(|s| s.name == "client")
        .unwrap();
    assert_eq!(
        client.proxy.as_ref().unwrap().url(),
        format!("socks5://{proxy}")
    );
    assert_eq!(client.reconnect.unwrap().attempts, Some(3));
    gui.harness.check_accessibility();
}

#[test]
fn unix_stream_endpoints_from_the_add_menu_talk_and_teach_their_calls() {
    let mut gui = Gui::new();
    let sock = gui.path("win.sock");
    let sock = sock.to_str().unwrap().to_owned();
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::N);
    gui.step();
    gui.click("➕ Add endpoint");
    gui.click("Unix stream server");
    // A path too long for sun_path is said next to the field.
    let long = format!("/tmp/{}", "x".repeat(120));
    gui.retype("Socket path", &long);
    assert!(gui.shows("path too long: 125 bytes"));
    assert!(gui.harness.state().doc().validate(0).is_err());
    gui.retype("Socket path", &sock);
    assert!(!gui.shows("path too long"));
    assert!(
        gui.harness
            .query_by_label("Remove a stale socket file")
            .is_some()
    );
    gui.click("▶ Start");
    gui.wait_for("the server listening", |g| {
        g.harness.state().doc().endpoints[0].state.is_up()
    });
    assert!(Path::new(&sock).exists(), "the socket file is made");

    gui.click("➕ Add endpoint");
    gui.click("Unix stream client");
    gui.retype("Socket path", &sock);
    gui.click("▶ Start");
    gui.wait_for("both up", |g| g.all_up());
    gui.type_payload("over a path\\n");
    gui.harness
        .key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    gui.wait_for("the server's read", |g| {
        joined(g.log_rows("unix server", EntryKind::Received)) == b"over a path\n"
    });
    assert_eq!(
        joined(gui.log_rows("unix client", EntryKind::Sent)),
        b"over a path\n"
    );
    gui.click("🔁 Lifecycle");
    assert!(gui.shows("socket(AF_UNIX, SOCK_STREAM)"));
    assert!(gui.shows("connect()"));
}

#[test]
fn a_unix_session_replays_from_the_replay_bar_as_a_checked_client() {
    let mut gui = Gui::new();
    // A live Unix stream server in a thread: reads a request, answers as recorded.
    let sock = gui.path("live.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        s.write_all(b"world\n").unwrap();
        let _ = s.read(&mut buf);
    });
    let recording = format!(
        r#"(format: 1, endpoints: [(name: "client", kind: UnixClient(path: "{}"))],
        log: (peers: [(endpoint: "client", peer: 0, remote: "{}")], entries: [
            (at: "2026-01-01T00:00:00.000000Z", endpoint: "client", peer: 0, event: Connected("")),
            (at: "2026-01-01T00:00:00.010000Z", endpoint: "client", peer: 0, event: Sent(Text("hello\n"))),
            (at: "2026-01-01T00:00:00.020000Z", endpoint: "client", peer: 0, event: Received(Text("world\n"))),
        ]))"#,
        sock.display(),
        sock.display()
    );
    std::fs::write(gui.path("unixrec.ron"), recording).unwrap();
    gui.click("⟳ Refresh");
    gui.wait_for("the file listed", |g| {
        g.harness.query_by_label("unixrec").is_some()
    });
    gui.open_session("unixrec");
    gui.click("▶ Replay");
    gui.wait_for("the check", |g| {
        g.shows("✔ every conversation matched the recording")
    });
    peer.join().unwrap();
    let run = gui.harness.state().replay().unwrap();
    let received: Vec<Vec<u8>> = (0..run.log.len())
        .filter(|&i| run.log.entry(i).unwrap().kind == EntryKind::Received)
        .map(|i| run.log.data(i).to_vec())
        .collect();
    assert_eq!(received, [b"world\n".to_vec()]);
}
