//! The real window under test, driven headless with egui_kittest: a window
//! on a private runtime and a private sessions folder, and the steps every
//! window test takes (step, wait for, click, type, read what it shows).
//! A test file adds its own steps in an `impl Gui` of its own, and checks
//! accessibility when a `Gui` drops (see the `Drop` impl below).

use std::path::Path;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use sockbench::app::{App, AppConfig};

use super::free_port;

/// The longest a window test waits for anything.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// The size most window tests use.
pub const SIZE: [f32; 2] = [1400.0, 900.0];

/// A window on a private runtime and a private sessions folder.
pub struct Gui {
    pub harness: Harness<'static, App>,
    /// The sessions folder (removed when the window drops).
    pub dir: tempfile::TempDir,
    /// The window's size, as it was built.
    pub size: Vec2,
    _runtime: tokio::runtime::Runtime,
}

impl Gui {
    /// A window of `size`: `fill` first writes into the sessions folder,
    /// `adjust` then changes the window's configuration (given the folder).
    pub fn build(
        size: impl Into<Vec2>,
        fill: impl FnOnce(&Path),
        adjust: impl FnOnce(&mut AppConfig, &Path),
    ) -> Gui {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path());
        let mut config = AppConfig {
            runtime: runtime.handle().clone(),
            sessions_dir: dir.path().to_owned(),
            recovery_dir: None,
            open: None,
            native_dialogs: false,
            autosave_every: Duration::from_secs(3600),
        };
        adjust(&mut config, dir.path());
        let size = size.into();
        let harness = Harness::builder()
            .with_size(size)
            .build_eframe(move |cc| App::new(cc, config));
        Gui {
            harness,
            dir,
            size,
            _runtime: runtime,
        }
    }

    /// A window of `size` on a sessions folder holding `sessions` (name, text).
    pub fn in_folder(size: impl Into<Vec2>, sessions: &[(&str, String)]) -> Gui {
        Gui::build(size, |dir| write_sessions(dir, sessions), |_, _| {})
    }

    pub fn step(&mut self) {
        self.harness.step();
    }

    /// Steps frames until `done` holds, at most [`WAIT_LIMIT`], then two more
    /// (so what the last one changed is drawn and laid out).
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&Gui) -> bool) {
        let started = Instant::now();
        loop {
            self.harness.step();
            if done(self) {
                self.harness.step();
                self.harness.step();
                return;
            }
            assert!(started.elapsed() < WAIT_LIMIT, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Clicks the widget labelled `label`, and lets two frames pass.
    pub fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.step();
        self.step();
    }

    /// Clicks the choice (a button or menu entry, not a plain label) named `label`.
    pub fn choose(&mut self, label: &str) {
        let node = self
            .harness
            .query_all_by_label(label)
            .find(|n| n.accesskit_node().role() != egui::accesskit::Role::Label)
            .unwrap_or_else(|| panic!("no choice named {label:?}"));
        node.click();
        self.step();
        self.step();
    }

    /// Presses `key` with `modifiers`, and lets two frames pass.
    pub fn press(&mut self, modifiers: Modifiers, key: Key) {
        self.harness.key_press_modifiers(modifiers, key);
        self.step();
        self.step();
    }

    /// Whether something whose label contains `label` is on screen.
    pub fn shows(&self, label: &str) -> bool {
        self.harness
            .query_all_by_label_contains(label)
            .next()
            .is_some()
    }

    /// How many things labelled exactly `label` are on screen.
    pub fn count(&self, label: &str) -> usize {
        self.harness.query_all_by_label(label).count()
    }

    /// How many things whose label contains `label` are on screen.
    pub fn count_containing(&self, label: &str) -> usize {
        self.harness.query_all_by_label_contains(label).count()
    }

    /// Replaces the text of the field labelled `label` by typing.
    pub fn retype(&mut self, label: &str, text: &str) {
        self.harness.get_by_label(label).focus();
        self.step();
        self.harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
        self.step();
        self.harness.key_press(Key::Backspace);
        self.step();
        self.harness.get_by_label(label).type_text(text);
        self.step();
        self.step();
    }

    /// Whether every endpoint of the open session is up (connected,
    /// listening or bound), and there is one.
    pub fn all_up(&self) -> bool {
        let doc = self.harness.state().doc();
        !doc.endpoints.is_empty() && doc.endpoints.iter().all(|e| e.state.is_up())
    }

    /// Clicks the session `name` in the sidebar and waits until it is open.
    pub fn open_session(&mut self, name: &str) {
        self.click(name);
        let name = name.to_owned();
        self.wait_for("the session to open", move |g| {
            g.harness
                .state()
                .doc()
                .path
                .as_ref()
                .is_some_and(|p| p.ends_with(format!("{name}.ron")))
        });
    }
}

impl Drop for Gui {
    /// Every screen a test leaves behind must name every input it shows.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.harness.check_accessibility();
        }
    }
}

/// Writes `sessions` (name, text) into `dir` as NAME.ron.
pub fn write_sessions(dir: &Path, sessions: &[(&str, String)]) {
    for (name, text) in sessions {
        std::fs::write(dir.join(format!("{name}.ron")), text).unwrap();
    }
}

/// The example sessions, copied into `dir` with their fixed ports replaced
/// by free ones, so tests never collide with each other or with anything
/// else; with their folders (the lessons) when `with_folders`.
pub fn copy_examples(dir: &Path, with_folders: bool) {
    copy_sessions(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions"),
        dir,
        with_folders,
    );
}

fn copy_sessions(from: &Path, to: &Path, with_folders: bool) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if with_folders {
                let sub = to.join(path.file_name().unwrap());
                std::fs::create_dir_all(&sub).unwrap();
                copy_sessions(&path, &sub, true);
            }
            continue;
        }
        if path.extension().is_none_or(|x| x != "ron") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        // Every fixed port the shipped sessions listen on or connect to.
        for port in [
            "7007", "7008", "7009", "7010", "7011", "8080", "8443", "7101", "7102", "7103", "7104",
            "7105", "7120",
        ] {
            text = text.replace(
                &format!("127.0.0.1:{port}"),
                &format!("127.0.0.1:{}", free_port()),
            );
        }
        std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
    }
}
