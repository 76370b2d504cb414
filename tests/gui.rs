//! The real window, driven headless with egui_kittest over real loopback sockets.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use sockbench::app::{App, AppConfig};
use sockbench::model::EntryKind;

const LIMIT: Duration = Duration::from_secs(10);

/// A window on a private runtime and a private sessions folder.
struct Gui {
    harness: Harness<'static, App>,
    dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example sessions, copied into `dir` with their fixed ports replaced by
/// free ones, so tests never collide with each other or with anything else.
fn copy_examples(dir: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "ron") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for port in ["7007", "7008", "7009", "7010", "8080"] {
            text = text.replace(
                &format!("127.0.0.1:{port}"),
                &format!("127.0.0.1:{}", free_port()),
            );
        }
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
}

impl Gui {
    fn new() -> Gui {
        Gui::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut AppConfig)) -> Gui {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        let mut config = AppConfig {
            runtime: runtime.handle().clone(),
            sessions_dir: dir.path().to_owned(),
            recovery_dir: None,
            open: None,
            native_dialogs: false,
        };
        adjust(&mut config);
        let harness = Harness::builder()
            .with_size([1400.0, 900.0])
            .build_eframe(move |cc| App::new(cc, config));
        let mut gui = Gui {
            harness,
            dir,
            _runtime: runtime,
        };
        gui.wait_for("the session list", |g| {
            g.harness.query_by_label("tcp-echo-pair").is_some()
        });
        gui
    }

    fn step(&mut self) {
        self.harness.step();
    }

    /// Steps frames until `done` holds, at most LIMIT.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Gui) -> bool) {
        let started = Instant::now();
        loop {
            self.harness.step();
            if done(self) {
                self.harness.step();
                return;
            }
            assert!(started.elapsed() < LIMIT, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.step();
        self.step();
    }

    fn shows(&self, label: &str) -> bool {
        self.harness
            .query_all_by_label_contains(label)
            .next()
            .is_some()
    }

    fn count(&self, label: &str) -> usize {
        self.harness.query_all_by_label_contains(label).count()
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

    fn open_example(&mut self, name: &str) {
        self.click(name);
        let name = name.to_owned();
        self.wait_for("the example to open", move |g| {
            g.harness
                .state()
                .doc
                .path
                .as_ref()
                .is_some_and(|p| p.ends_with(format!("{name}.ron")))
        });
    }

    fn start_all(&mut self) {
        self.click("▶ Start all");
    }

    fn log_rows(&self, endpoint: &str, kind: EntryKind) -> Vec<Vec<u8>> {
        let log = &self.harness.state().doc.session.log;
        (0..log.len())
            .filter(|&i| {
                let e = log.entry(i).unwrap();
                e.kind == kind && log.endpoint_name(e) == endpoint
            })
            .map(|i| log.data(i).to_vec())
            .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn joined(rows: Vec<Vec<u8>>) -> Vec<u8> {
    rows.concat()
}

#[test]
fn echo_pair_from_the_composer() {
    let mut gui = Gui::new();
    gui.open_example("tcp-echo-pair");
    gui.start_all();
    gui.wait_for("both ends up", |g| {
        g.shows("● connected") && g.count("● listening") >= 1
    });
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
        gui.count("\"ping from the window\\n\"") >= 4,
        "sent and received at both ends"
    );
    assert!(gui.shows("→ sent"));
    assert!(gui.shows("← received"));
    assert!(gui.shows("sent 2 payloads (42 bytes)"), "status bar totals");
}
