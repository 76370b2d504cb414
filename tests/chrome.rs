//! The window's chrome, driven headless with egui_kittest over real loopback
//! sockets: keyboard shortcuts (F5, Shift+F5, Ctrl+1…9), the Help list,
//! File → Export, and a toolbar that stays where it is.

mod common;
use common::gui::Gui;
use common::{BIN, run, text};

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use sockbench::app::{AppCommand, shortcuts};
use sockbench::model::EntryKind;

const LIMIT: Duration = common::gui::WAIT_LIMIT;

impl Gui {
    /// A window on a private sessions folder holding `sessions`.
    fn with_sessions(sessions: &[(&str, String)]) -> Gui {
        let mut gui = Gui::in_folder(common::gui::SIZE, sessions);
        let first = sessions[0].0.to_owned();
        gui.wait_for("the session list", move |g| {
            g.harness.query_by_label(&first).is_some()
        });
        gui
    }

    fn running(&self) -> usize {
        let doc = self.harness.state().doc();
        doc.endpoints
            .iter()
            .filter(|e| e.state.is_running())
            .count()
    }

    fn sent(&self, endpoint: &str) -> Vec<Vec<u8>> {
        let log = &self.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| {
                let e = log.entry(i).unwrap();
                e.kind == EntryKind::Sent && log.endpoint_name(e) == endpoint
            })
            .map(|i| log.data(i).to_vec())
            .collect()
    }
}

/// A TCP server and a UDP socket, both on loopback port 0.
fn two_listeners() -> String {
    r#"(format: 1, endpoints: [
        (name: "server", kind: TcpServer(listen: "127.0.0.1:0"), reply: Echo),
        (name: "udp", kind: Udp(bind: "127.0.0.1:0")),
    ])"#
    .to_owned()
}

#[test]
fn f5_starts_every_endpoint_and_shift_f5_stops_them() {
    let mut gui = Gui::with_sessions(&[("listeners", two_listeners())]);
    gui.open_session("listeners");
    assert_eq!(gui.running(), 0);

    gui.press(Modifiers::NONE, Key::F5);
    gui.wait_for("both endpoints up", |g| {
        let doc = g.harness.state().doc();
        doc.endpoints.iter().all(|e| e.state.is_up())
    });
    assert_eq!(gui.running(), 2);

    // Shift+F5 is Stop, not a second Start (F5 alone would match it too).
    gui.press(Modifiers::SHIFT, Key::F5);
    gui.wait_for("both endpoints stopped", |g| g.running() == 0);
    let log = &gui.harness.state().doc().session.log;
    let stopped = (0..log.len())
        .filter(|&i| log.entry(i).unwrap().kind == EntryKind::Stopped)
        .count();
    assert_eq!(stopped, 2, "each endpoint stopped once");
}

#[test]
fn ctrl_digit_sends_that_library_entry_from_the_selected_endpoint() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let session = format!(
        r#"(format: 1, endpoints: [(name: "client", kind: TcpClient(remote: "{}"))],
        library: [(name: "hello", payload: Text("hello, peer\n")), (name: "bytes", payload: Hex("de ad be ef 00 01"))])"#,
        peer.local_addr().unwrap()
    );
    let mut gui = Gui::with_sessions(&[("library", session)]);
    gui.open_session("library");
    gui.press(Modifiers::NONE, Key::F5);
    gui.wait_for("the client connected", |g| {
        g.harness.state().doc().endpoints[0].state.is_up()
    });
    let (mut stream, _) = peer.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // The composer holds something else: the shortcut sends the entry.
    gui.harness.state_mut().composer_mut().text = "not this".into();

    let mut read_until = |gui: &mut Gui, want: &[u8]| {
        let started = Instant::now();
        let mut got = Vec::new();
        while got.len() < want.len() {
            assert!(started.elapsed() < LIMIT, "the peer got {got:?}");
            gui.step();
            let mut buf = [0u8; 64];
            match stream.read(&mut buf) {
                Ok(0) => panic!("the client closed"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        assert_eq!(got, want);
    };
    gui.press(Modifiers::COMMAND, Key::Num1);
    read_until(&mut gui, b"hello, peer\n");
    gui.press(Modifiers::COMMAND, Key::Num2);
    read_until(&mut gui, &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    // The peer can read the bytes before the window has drained the
    // engine's Sent events: wait for the log, then compare it exactly.
    gui.wait_for("both Sent rows in the log", |g| g.sent("client").len() >= 2);
    assert_eq!(
        gui.sent("client"),
        vec![
            b"hello, peer\n".to_vec(),
            vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]
        ]
    );

    // No entry 9: said, and nothing goes out.
    gui.press(Modifiers::COMMAND, Key::Num9);
    assert!(gui.shows("the session's library has 2 entries, no entry 9"));
    assert_eq!(gui.sent("client").len(), 2);
    // The composer kept what it held.
    assert_eq!(gui.harness.state().composer().text, "not this");
}

#[test]
fn help_lists_every_shortcut_of_the_table_that_the_keys_run() {
    let mut gui = Gui::with_sessions(&[("listeners", two_listeners())]);
    gui.press(Modifiers::NONE, Key::F1);
    assert!(gui.shows("Keyboard shortcuts"));
    let table = shortcuts();
    let ctx = gui.harness.ctx.clone();
    for s in &table {
        let keys = ctx.format_shortcut(&s.keys);
        assert!(
            gui.harness.query_by_label(&keys).is_some(),
            "Help lists {keys}"
        );
        assert!(
            gui.harness.query_by_label(s.what).is_some(),
            "Help says what {keys} does"
        );
    }
    // Each entry once.
    for s in &table {
        assert_eq!(
            gui.harness.query_all_by_label(s.what).count(),
            1,
            "{} is listed once",
            s.what
        );
    }
    // The keys of the issue's keyboard goals are in the table.
    for (modifiers, key, command) in [
        (Modifiers::NONE, Key::F5, AppCommand::StartAll),
        (Modifiers::SHIFT, Key::F5, AppCommand::StopAll),
        (Modifiers::COMMAND, Key::Enter, AppCommand::Send),
        (Modifiers::COMMAND, Key::Num1, AppCommand::SendLibrary(0)),
        (Modifiers::COMMAND, Key::Num9, AppCommand::SendLibrary(8)),
        (Modifiers::NONE, Key::F1, AppCommand::ShowShortcuts),
    ] {
        let first = table
            .iter()
            .find(|s| s.keys.logical_key == key && modifiers.matches_logically(s.keys.modifiers))
            .unwrap_or_else(|| panic!("no shortcut for {key:?}"));
        assert_eq!(first.command, command, "{modifiers:?} {key:?}");
    }
    gui.click("Close");
    assert!(!gui.shows("Keyboard shortcuts"));
}

/// What `sockbench export FILE --to FORMAT [--endpoint NAME]` writes.
fn cli_export(file: &Path, format: &str, endpoint: Option<&str>) -> String {
    let mut args = vec!["export", file.to_str().unwrap(), "--to", format];
    if let Some(name) = endpoint {
        args.extend(["--endpoint", name]);
    }
    let o = run(BIN, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    text(&o.stdout)
}

fn recorded_http() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/recorded-http.ron"),
    )
    .unwrap()
}

/// File → Export… → `label`, the path typed, Export here.
fn export(gui: &mut Gui, label: &str, path: &Path) {
    gui.click("File");
    gui.click("Export…");
    gui.click(&format!("{label}…"));
    assert!(gui.shows(&format!("Export as {label}")));
    gui.retype("Path", path.to_str().unwrap());
    gui.click("Export here");
    // A dialog that follows (the question before a file is replaced) is
    // measured in its first frame and shown in the next.
    gui.step();
}

#[test]
fn export_writes_what_the_cli_export_writes_and_asks_before_replacing() {
    let mut gui = Gui::with_sessions(&[("recorded-http", recorded_http())]);
    gui.open_session("recorded-http");
    let file = gui.dir.path().join("recorded-http.ron");
    let out = tempfile::tempdir().unwrap();
    for (label, format, endpoint) in [
        ("CSV", "csv", None),
        ("Mermaid", "mermaid", None),
        // The window exports the selected endpoint (the client, on opening).
        ("Python", "python", Some("browser")),
        ("Hex dump", "hexdump", None),
    ] {
        let path = out.path().join(format!("talk.{format}"));
        export(&mut gui, label, &path);
        gui.wait_for("the export written", |g| {
            path.is_file() && g.shows("Exported")
        });
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, cli_export(&file, format, endpoint), "{label}");
        assert!(!written.is_empty());
    }

    // A binary format through the same path: the bytes `export -o` writes.
    let capture = out.path().join("talk.pcapng");
    export(&mut gui, "pcapng", &capture);
    gui.wait_for("the capture written", |g| {
        capture.is_file() && g.shows("Exported")
    });
    let by_cli = out.path().join("cli.pcapng");
    let o = run(
        BIN,
        &[
            "export",
            file.to_str().unwrap(),
            "--to",
            "pcapng",
            "-o",
            by_cli.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(&capture).unwrap(),
        std::fs::read(&by_cli).unwrap()
    );

    // An existing file is asked about; Cancel keeps it as it was.
    let kept = out.path().join("kept.csv");
    std::fs::write(&kept, "precious").unwrap();
    export(&mut gui, "CSV", &kept);
    assert!(gui.shows("Replace the file?"));
    gui.click("Cancel");
    for _ in 0..10 {
        gui.step();
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious");
    // Replace writes it.
    export(&mut gui, "CSV", &kept);
    gui.click("Replace");
    gui.wait_for("the file replaced", |g| {
        std::fs::read_to_string(&kept).unwrap() != "precious" && g.shows("Exported")
    });
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        cli_export(&file, "csv", None)
    );

    // A path the export cannot write is said, and nothing is written.
    let bad = out.path().join("no such folder").join("x.csv");
    export(&mut gui, "CSV", &bad);
    gui.wait_for("the error", |g| g.shows("Not exported (CSV)"));
    assert!(!bad.exists());
}

#[test]
fn toolbar_buttons_stay_put_when_the_title_and_the_notices_change() {
    let mut gui = Gui::with_sessions(&[
        ("listeners", two_listeners()),
        (
            "a session with a long name that makes the title wide",
            two_listeners(),
        ),
    ]);
    let rects = |g: &Gui| {
        ["▶ Start all", "⏹ Stop all", "💾 Save"].map(|label| g.harness.get_by_label(label).rect())
    };
    let before = rects(&gui);
    gui.open_session("a session with a long name that makes the title wide");
    assert_eq!(rects(&gui), before, "a longer title");
    // Unsaved (the title gains a mark) and a notice (an error banner).
    gui.harness.state_mut().doc_mut().touch();
    gui.press(Modifiers::COMMAND, Key::Num1);
    assert!(gui.shows("library is empty"));
    assert_eq!(rects(&gui), before, "a notice and the unsaved mark");
}
