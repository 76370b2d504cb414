//! The window's rules and log over real loopback sockets, driven headless
//! with egui_kittest: rule hit counts, reordering, the log's message rows,
//! and the log budget preference.

mod common;
use common::free_port;
use common::gui::Gui;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use sockbench::app::log_view::RowRef;
use sockbench::model::{LogBudget, Overflow};

const LIMIT: Duration = common::gui::WAIT_LIMIT;

impl Gui {
    /// A window with the session `text` open (written to a file first).
    fn with_session(text: &str) -> (Gui, PathBuf) {
        Gui::with_sessions(&[("s", text.to_owned())])
    }

    /// A window on a sessions folder holding `files` (name, text), the first open.
    fn with_sessions(files: &[(&str, String)]) -> (Gui, PathBuf) {
        let first = format!("{}.ron", files[0].0);
        let mut gui = Gui::build(
            // Tall, so every rule's row is on screen above the log.
            [1400.0, 1400.0],
            |dir| common::gui::write_sessions(dir, files),
            |config, dir| config.open = Some(dir.join(&first)),
        );
        let path = gui.dir.path().join(format!("{}.ron", files[0].0));
        let opened = path.clone();
        gui.wait_for("the session to open", move |g| {
            g.harness.state().doc().path.as_deref() == Some(opened.as_path())
        });
        (gui, path)
    }

    fn start_all(&mut self) {
        self.click("▶ Start all");
        self.wait_for("every endpoint up", Gui::all_up);
    }

    fn stop_all(&mut self) {
        self.click("⏹ Stop all");
        self.wait_for("every endpoint stopped", |g| {
            g.harness
                .state()
                .doc()
                .endpoints
                .iter()
                .all(|e| !e.state.is_running())
        });
    }
}

/// Sends `request` to 127.0.0.1:`port` and reads until `answer` came back whole.
fn ask(port: u16, request: &[&[u8]], answer: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    for part in request {
        s.write_all(part).unwrap();
        s.flush().unwrap();
    }
    let mut got = vec![0; answer.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(answer)
    );
}

/// A line server with two rules: `ping` gets `pong`, anything gets `other`.
fn two_rules(port: u16, budget: &str) -> String {
    format!(
        r#"(
    format: 1,
    {budget}
    endpoints: [
        (
            name: "srv",
            kind: TcpServer(listen: "127.0.0.1:{port}"),
            reply: Rules([
                (when: Exact(Text("ping")), reply: Text("pong\n")),
                (when: Always, reply: Text("other\n")),
            ]),
            framing: Line,
        ),
    ],
)"#
    )
}

#[test]
fn each_rule_shows_its_hits_live_and_they_start_over_on_restart() {
    let port = free_port();
    let (mut gui, _) = Gui::with_session(&two_rules(port, ""));
    assert_eq!(gui.count("0 hits"), 0, "no counts before the first start");
    gui.start_all();
    gui.wait_for("two rows counting from zero", |g| g.count("0 hits") == 2);
    // Two requests, the first split across writes.
    ask(port, &[b"pi", b"ng\n", b"ping\n"], b"pong\npong\n");
    gui.wait_for("rule 1's two hits", |g| g.count("2 hits") == 1);
    assert_eq!(gui.count("0 hits"), 1, "rule 2 answered nothing");
    ask(port, &[b"hello\n"], b"other\n");
    gui.wait_for("rule 2's hit", |g| g.count("1 hit") == 1);
    let hits: Vec<u64> = gui.harness.state().doc().endpoints[0]
        .rule_hits
        .iter()
        .map(|h| h.hits)
        .collect();
    assert_eq!(hits, [2, 1]);
    gui.stop_all();
    assert_eq!(gui.count("2 hits"), 1, "counts stay after a stop");
    gui.start_all();
    gui.wait_for("counts from zero again", |g| g.count("0 hits") == 2);
}

#[test]
fn moving_a_rule_changes_which_rule_answers_and_its_count_moves_with_it() {
    let port = free_port();
    let (mut gui, _) = Gui::with_session(&two_rules(port, ""));
    // "Always" moves to the top: first match wins, so it answers "ping" too.
    gui.start_all();
    ask(port, &[b"ping\n"], b"pong\n");
    gui.wait_for("rule 1's hit", |g| g.count("1 hit") == 1);
    // The asking peer's end takes its row out of the peers above the rules,
    // moving them up: wait for it before clicking by position.
    gui.wait_for("the peer gone", |g| {
        g.harness.state().doc().endpoints[0].peers.is_empty()
    });
    let up = gui
        .harness
        .query_all_by_label("⬆")
        .nth(1)
        .expect("rule 2's move up");
    up.click();
    gui.step();
    gui.step();
    let hits: Vec<u64> = gui.harness.state().doc().endpoints[0]
        .rule_hits
        .iter()
        .map(|h| h.hits)
        .collect();
    assert_eq!(hits, [0, 1], "the count moved with its rule");
    gui.stop_all();
    gui.start_all();
    ask(port, &[b"ping\n"], b"other\n");
    gui.wait_for("the moved rule's hit", |g| {
        g.harness.state().doc().endpoints[0]
            .rule_hits
            .iter()
            .map(|h| h.hits)
            .eq([1, 0])
    });
}

#[test]
fn the_log_shows_one_row_per_message_for_a_framed_endpoint() {
    let port = free_port();
    let (mut gui, _) = Gui::with_session(&two_rules(port, ""));
    gui.start_all();
    // Every read sent on its own and answered before the next, so the reads
    // are exactly these (a rule answers each complete line).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let answer = |s: &mut TcpStream, n: usize| {
        let mut got = vec![0; n];
        s.read_exact(&mut got).unwrap();
        got
    };
    s.write_all(b"hel").unwrap();
    let reads = |g: &Gui| {
        let log = &g.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| log.entry(i).unwrap().kind == sockbench::model::EntryKind::Received)
            .count()
    };
    gui.wait_for("the first half", |g| reads(g) == 1);
    s.write_all(b"lo\n").unwrap();
    assert_eq!(answer(&mut s, 6), b"other\n");
    gui.wait_for("the second half", |g| reads(g) == 2);
    s.write_all(b"ping\na\nb\n").unwrap();
    assert_eq!(answer(&mut s, 17), b"pong\nother\nother\n");
    gui.wait_for("the read of three lines", |g| reads(g) == 3);
    assert!(gui.count("Reads") == 1 && gui.count("Messages") == 1);
    gui.click("Messages");
    gui.wait_for("the message rows", |g| {
        g.harness
            .state()
            .log_view()
            .message_rows()
            .iter()
            .filter(|r| matches!(r, RowRef::Message(_)))
            .count()
            == 4
    });
    let view = gui.harness.state().log_view();
    let texts: Vec<String> = view
        .message_rows()
        .iter()
        .filter_map(|r| match r {
            RowRef::Message(m) => Some(view.message(*m).unwrap()),
            RowRef::Entry(_) => None,
        })
        .map(|m| String::from_utf8_lossy(&m.preview).into_owned())
        .collect();
    assert_eq!(texts, ["hello", "ping", "a", "b"]);
    // The sent answers and the lifecycle rows stay rows of their own.
    assert!(
        view.message_rows()
            .iter()
            .any(|r| matches!(r, RowRef::Entry(_)))
    );
    assert_eq!(gui.count("← message"), 4, "shown as message rows");
    gui.click("Reads");
    assert_eq!(gui.count("← message"), 0);
}

#[test]
fn the_log_budget_preference_applies_unless_the_session_sets_its_own() {
    let port = free_port();
    let own = two_rules(port, r#"log_budget: (memory: "1 MiB", overflow: Spill),"#);
    let (mut gui, _) = Gui::with_sessions(&[("own", own), ("plain", two_rules(port, ""))]);
    assert_eq!(
        gui.harness.state().doc().session.log.budget(),
        LogBudget::new(1 << 20, Overflow::Spill),
        "the session's own budget"
    );
    // The preference: View ▸ Log memory.
    gui.click("View");
    let field = gui.harness.get_by_label("Log memory");
    field.focus();
    gui.step();
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
    gui.step();
    gui.harness.key_press(Key::Backspace);
    gui.step();
    gui.harness.get_by_label("Log memory").type_text("0");
    gui.step();
    gui.click("Drop the rest");
    assert_eq!(
        gui.harness.state().prefs().log_budget,
        LogBudget::new(0, Overflow::Drop)
    );
    assert_eq!(
        gui.harness.state().doc().session.log.budget(),
        LogBudget::new(1 << 20, Overflow::Spill),
        "a session's own budget wins over the preference"
    );
    // A session without one takes the preference; clearing the log keeps it.
    gui.harness.key_press(Key::Escape);
    gui.step();
    gui.click("plain");
    gui.wait_for("the other session to open", |g| {
        g.harness
            .state()
            .doc()
            .path
            .as_ref()
            .is_some_and(|p| p.ends_with("plain.ron"))
    });
    assert_eq!(
        gui.harness.state().doc().session.log.budget(),
        LogBudget::new(0, Overflow::Drop)
    );
    gui.start_all();
    // Longer than the preview a dropped row keeps.
    let mut long = vec![b'x'; 4000];
    long.push(b'\n');
    ask(port, &[&long], b"other\n");
    gui.wait_for("the dropped bytes in the status bar", |g| {
        g.harness
            .query_all_by_label_contains("dropped (")
            .next()
            .is_some()
    });
    let c = gui.harness.state().doc().session.log.counters();
    assert_eq!((c.memory_bytes, c.spilled_bytes), (0, 0));
    assert!(c.dropped_bytes >= 3000, "{c:?}");
    gui.harness.key_press_modifiers(Modifiers::COMMAND, Key::L);
    gui.step();
    if gui.harness.query_by_label("Clear").is_some() {
        gui.click("Clear");
    }
    gui.step();
    assert_eq!(
        gui.harness.state().doc().session.log.budget(),
        LogBudget::new(0, Overflow::Drop)
    );
}
