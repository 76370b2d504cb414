//! The window's traffic generator, driven headless with egui_kittest over
//! real loopback sockets: Repeat sends exactly M rounds, Stop stops it, the
//! endpoint stopping ends it, and a dropped file reaches the peer byte for
//! byte. Rounds are counted, never timed.

mod common;
use common::gui::Gui;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sockbench::app::composer::RepeatSettings;
use sockbench::model::EntryKind;

const LIMIT: Duration = common::gui::WAIT_LIMIT;

impl Gui {
    /// A window on an empty sessions folder.
    fn new() -> Gui {
        let mut gui = Gui::build(common::gui::SIZE, |_| {}, |_, _| {});
        gui.step();
        gui
    }

    /// A TCP client in the new session, connected to `remote`.
    fn connected_client(&mut self, remote: &str) {
        self.click("➕ Add endpoint");
        self.click("TCP client");
        self.retype("Connect to", remote);
        self.click("▶ Start");
        self.wait_for("the client connected", |g| {
            g.harness.state().doc().endpoints[0].state.is_up()
        });
    }

    /// The payloads of the client's Sent rows.
    fn sent_rows(&self) -> Vec<Vec<u8>> {
        let log = &self.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| log.entry(i).unwrap().kind == EntryKind::Sent)
            .map(|i| log.data(i).to_vec())
            .collect()
    }

    /// The log's note and error rows, as text.
    fn rows_of(&self, kind: EntryKind) -> Vec<String> {
        let log = &self.harness.state().doc().session.log;
        (0..log.len())
            .filter(|&i| log.entry(i).unwrap().kind == kind)
            .map(|i| String::from_utf8_lossy(log.data(i)).into_owned())
            .collect()
    }

    fn repeating(&self) -> bool {
        !self.harness.state().repeats().is_empty()
    }

    fn set_repeat(&mut self, every_ms: u64, times: u64, until_stopped: bool) {
        self.harness.state_mut().composer_mut().repeat = RepeatSettings {
            every_ms,
            times,
            until_stopped,
        };
        self.step();
    }

    /// Steps frames for `frames` × 5 ms (for "nothing more happens").
    fn idle(&mut self, frames: usize) {
        for _ in 0..frames {
            std::thread::sleep(Duration::from_millis(5));
            self.step();
        }
    }
}

/// A TCP peer that reads one connection to its end and returns every byte.
fn reading_peer() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    (addr, handle)
}

#[test]
fn repeat_sends_exactly_m_rounds_and_stops() {
    let mut gui = Gui::new();
    let (addr, peer) = reading_peer();
    gui.connected_client(&addr);
    gui.retype("Payload", "tick\\n");
    gui.set_repeat(1, 5, false);
    gui.click("🔁 Repeat");
    gui.wait_for("five Sent rows and the repeat done", |g| {
        g.sent_rows().len() >= 5 && !g.repeating()
    });
    // Nothing more goes once it is done, however many frames pass.
    gui.idle(40);
    assert_eq!(gui.sent_rows(), vec![b"tick\n".to_vec(); 5]);
    assert!(
        gui.shows("Repeat 5 of 5 rounds sent: done"),
        "the composer says how it ended"
    );
    assert_eq!(
        gui.rows_of(EntryKind::Note)
            .iter()
            .filter(|n| n.starts_with("repeat: "))
            .collect::<Vec<_>>(),
        ["repeat: 5 rounds every 1 ms of the composer's payload (5 bytes a round)"]
    );
    // The peer got exactly five rounds.
    gui.click("⏹ Stop");
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    assert_eq!(peer.join().unwrap(), b"tick\n".repeat(5));
}

/// The rounds of a 1 ms repeat do not wait for frames: a frame sends every
/// round due, so 200 rounds end within a few dozen frames at any frame rate
/// (here about 100 frames a second: each frame is 10 ms or more after the
/// last, so all 200 are due after 20 of them). One round a frame would need 200.
#[test]
fn a_1_ms_repeat_sends_every_round_whatever_the_frame_rate() {
    const ROUNDS: usize = 200;
    const FRAMES: usize = 60;
    let mut gui = Gui::new();
    let (addr, peer) = reading_peer();
    gui.connected_client(&addr);
    gui.retype("Payload", "tick\\n");
    gui.set_repeat(1, ROUNDS as u64, false);
    gui.click("🔁 Repeat");
    let mut frames = 0;
    while gui.repeating() && frames < FRAMES {
        std::thread::sleep(Duration::from_millis(10));
        gui.step();
        frames += 1;
    }
    let sent = gui
        .harness
        .state()
        .repeats()
        .running()
        .first()
        .map(|r| r.schedule.sent());
    assert!(
        !gui.repeating(),
        "{FRAMES} frames sent only {sent:?} of {ROUNDS} rounds"
    );
    gui.wait_for("every round's Sent row", |g| g.sent_rows().len() >= ROUNDS);
    gui.idle(10);
    assert_eq!(gui.sent_rows(), vec![b"tick\n".to_vec(); ROUNDS]);
    assert!(gui.shows(&format!("Repeat {ROUNDS} of {ROUNDS} rounds sent: done")));
    gui.click("⏹ Stop");
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    assert_eq!(peer.join().unwrap(), b"tick\n".repeat(ROUNDS));
}

#[test]
fn stop_ends_a_repeat_and_so_does_the_endpoint_stopping() {
    let mut gui = Gui::new();
    let (addr, peer) = reading_peer();
    gui.connected_client(&addr);
    gui.retype("Payload", "x");
    gui.set_repeat(5, 1, true);
    gui.click("🔁 Repeat");
    gui.wait_for("three rounds", |g| g.sent_rows().len() >= 3);
    assert!(gui.shows("🔁 Repeating the composer's payload: round "));
    // Apart: while a due round waits for the last one's write (a busy
    // machine), ", waiting for the last round to be written" stands between.
    assert!(gui.shows(" (until stopped), "));
    assert!(gui.shows(", every 5 ms"));
    gui.click("⏹ Stop repeat");
    assert!(!gui.repeating());
    let stopped = gui
        .rows_of(EntryKind::Note)
        .into_iter()
        .find(|n| n.starts_with("repeat stopped by you"))
        .expect("a note says the repeat was stopped");
    // "repeat stopped by you (N rounds sent)": exactly N rows, no more later.
    let n: usize = stopped
        .trim_start_matches("repeat stopped by you (")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 3, "{stopped}");
    gui.wait_for("every round's Sent row", |g| g.sent_rows().len() >= n);
    gui.idle(40);
    assert_eq!(gui.sent_rows().len(), n, "no round after Stop");

    // A repeat ends when its endpoint stops.
    gui.click("🔁 Repeat");
    gui.wait_for("a round of the second repeat", |g| g.sent_rows().len() > n);
    gui.click("⏹ Stop");
    gui.wait_for("the repeat to end with its endpoint", |g| !g.repeating());
    assert!(
        gui.rows_of(EntryKind::Note)
            .iter()
            .any(|r| r.starts_with("repeat ended: the endpoint stopped (")),
        "{:?}",
        gui.rows_of(EntryKind::Note)
    );
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    let rows = gui.sent_rows().len();
    let got = peer.join().unwrap();
    assert_eq!(got, b"x".repeat(rows), "every Sent row reached the peer");
}

#[test]
fn a_library_entry_repeats_as_stored() {
    let mut gui = Gui::new();
    let (addr, peer) = reading_peer();
    gui.connected_client(&addr);
    gui.harness
        .state_mut()
        .doc_mut()
        .session
        .library
        .push(sockbench::model::LibraryItem {
            name: "hello".into(),
            payload: sockbench::model::Payload::new(b"hi\r\n".to_vec()),
        });
    gui.harness
        .state_mut()
        .run_command(sockbench::app::AppCommand::OpenLibrary);
    gui.set_repeat(1, 3, false);
    gui.step();
    gui.click("Repeat \"hello\"");
    gui.wait_for("three rounds, done", |g| {
        g.sent_rows().len() >= 3 && !g.repeating()
    });
    gui.idle(20);
    assert_eq!(gui.sent_rows(), vec![b"hi\r\n".to_vec(); 3]);
    gui.click("⏹ Stop");
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    assert_eq!(peer.join().unwrap(), b"hi\r\n".repeat(3));
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

fn drop_file(gui: &mut Gui, path: PathBuf) {
    gui.harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(path)));
    gui.step();
}

#[test]
fn a_dropped_file_reaches_the_peer_byte_for_byte() {
    let mut gui = Gui::new();
    let (addr, peer) = reading_peer();
    gui.connected_client(&addr);

    // A binary file too large to edit is attached and sent as it is.
    let binary: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let path = gui.dir.path().join("firmware.bin");
    std::fs::write(&path, &binary).unwrap();
    drop_file(&mut gui, path);
    gui.wait_for("the file in the composer", |g| {
        g.harness.state().composer().file.is_some()
    });
    assert!(
        gui.shows("📎 Payload: the file firmware.bin (97.7 KiB (100000 bytes)), sent as it is")
    );
    gui.click("➤ Send");
    gui.wait_for("the Sent row", |g| g.sent_rows().len() == 1);

    // A small text file loads into the payload box, to read and edit.
    gui.click("✖ Remove file");
    let text = gui.dir.path().join("hello.txt");
    std::fs::write(&text, "hello, peer\n").unwrap();
    drop_file(&mut gui, text);
    gui.wait_for("the text in the composer", |g| {
        g.harness.state().composer().text == "hello, peer\\n"
    });
    assert!(gui.shows("Loaded hello.txt (12 bytes) as text"));
    gui.click("➤ Send");
    gui.wait_for("the second Sent row", |g| g.sent_rows().len() == 2);

    // What is not a regular file is refused beside the composer, and nothing goes.
    let folder = gui.dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    drop_file(&mut gui, folder);
    gui.wait_for("the refusal", |g| {
        g.shows("is a directory, not a regular file")
    });
    assert_eq!(gui.harness.state().composer().text, "hello, peer\\n");

    // The File… row reads a typed path the same way.
    let typed = gui.dir.path().join("typed.bin");
    std::fs::write(&typed, [0u8, 1, 2, 0xff]).unwrap();
    gui.click("📂 File…");
    gui.retype("File to send", typed.to_str().unwrap());
    gui.click("Load");
    gui.wait_for("the hex in the composer", |g| {
        g.harness.state().composer().text == "00 01 02 ff"
    });
    gui.click("➤ Send");
    gui.wait_for("the third Sent row", |g| g.sent_rows().len() == 3);

    gui.click("⏹ Stop");
    gui.wait_for("the client stopped", |g| {
        !g.harness.state().doc().endpoints[0].state.is_running()
    });
    let mut expected = binary;
    expected.extend_from_slice(b"hello, peer\n");
    expected.extend_from_slice(&[0, 1, 2, 0xff]);
    let got = peer.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the peer got other bytes");
}
