//! The workbench window (eframe/egui) on top of the engine.
//!
//! Split as in rerun's viewer: [`App::logic`] drains engine events and file
//! results under a time budget (it runs even while the window is hidden), and
//! [`App::ui`] paints. The window never waits on the network or the disk: the
//! engine takes commands and reports events; file work runs on the runtime's
//! blocking pool ([`files`]).

mod code_view;
pub mod composer;
pub mod config;
pub mod document;
pub mod endpoint_form;
mod endpoint_pane;
pub mod files;
mod frame_log;
pub mod inspector;
mod launch;
mod lesson_panel;
mod lifecycle_view;
pub mod log_view;
pub mod replay;
mod replay_bar;
mod sequence_view;
mod sidebar;
mod stream_view;
pub mod visible_text;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Key, KeyboardShortcut, Modifiers};

use composer::Composer;
pub use config::{AppConfig, Prefs};
use document::{Document, RunState, SendTo};
use files::{FileMsg, Files, ListedSession, Pick};
pub use launch::{LaunchError, launch};
use log_view::{LogAction, LogView};

use crate::engine::{Command, EndpointId, Engine, Events, Target};
use crate::model::{HostPort, KindTag, Session};

/// The name eframe stores preferences under.
pub const APP_ID: &str = "sockbench";

/// How much of the engine's backlog one frame may drain before it paints:
/// whichever limit comes first ends the frame's drain, and the frame asks for
/// another at once. Time alone is not enough (a check every few events misses
/// a few huge payloads), and counts alone are not either (a slow machine), so
/// a flood never freezes a frame and the log still catches up quickly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainBudget {
    /// Wall time spent draining.
    pub time: Duration,
    /// Payload bytes taken in.
    pub bytes: usize,
    /// Events taken in.
    pub events: usize,
}

impl Default for DrainBudget {
    fn default() -> Self {
        DrainBudget {
            time: Duration::from_millis(4),
            bytes: 8 << 20,
            events: 50_000,
        }
    }
}

/// What one frame's drain took in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub events: usize,
    /// Payload bytes of the events taken in.
    pub bytes: usize,
    /// True when nothing was left waiting; false when the budget ended the drain.
    pub finished: bool,
}

/// Payload bytes between two looks at the clock while draining, so a few
/// huge payloads cannot run far past the time budget.
const DRAIN_CLOCK_BYTES: usize = 1 << 20;
/// How long informational notices stay.
const NOTICE_LIFETIME: Duration = Duration::from_secs(6);
/// How long "Start all" waits for servers before starting the clients anyway.
const SERVERS_GRACE: Duration = Duration::from_secs(3);

const KEY_PREFS: &str = "prefs";

/// Something to do once unsaved changes are dealt with.
#[derive(Clone, Debug, PartialEq)]
pub enum PendingAction {
    New,
    Open(PathBuf),
    Quit,
}

/// A message at the top of the window.
#[derive(Clone, Debug)]
pub struct Notice {
    pub error: bool,
    pub text: String,
    created: Instant,
}

/// The dialog in front of the window, if any.
#[derive(Clone, Debug)]
enum Modal {
    Unsaved(PendingAction),
    OpenPath {
        path: String,
    },
    SaveAsPath {
        path: String,
        then: Option<PendingAction>,
    },
    Recovery {
        original: Option<PathBuf>,
    },
    Shortcuts,
    /// Clearing the session's log loses its recording: asked first.
    ClearLog,
}

/// What the lower part of the window shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Log,
    Sequence,
    Lifecycle,
    Stream,
    Python,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Log,
        View::Sequence,
        View::Lifecycle,
        View::Stream,
        View::Python,
    ];

    pub fn label(self) -> &'static str {
        match self {
            View::Log => "📜 Log",
            View::Sequence => "⇄ Sequence",
            View::Lifecycle => "🔁 Lifecycle",
            View::Stream => "✂ Stream",
            View::Python => "🐍 Python",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            View::Log => "Every payload and event, as a table",
            View::Sequence => "The conversation as a sequence diagram: who sent what to whom",
            View::Lifecycle => {
                "The selected endpoint's socket calls, step by step, and the system's TCP states"
            }
            View::Stream => "One peer's bytes as reads, lines or length-prefixed frames",
            View::Python => "The selected endpoint as a Python program (socket module)",
        }
    }
}

/// Which log the log view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// The session's own log.
    Recording,
    /// The last replay run's log.
    Replay,
}

/// Clients waiting for the servers of a "Start all" to come up.
struct StartQueue {
    clients: Vec<EndpointId>,
    deadline: Instant,
}

/// The workbench.
pub struct App {
    ctx: egui::Context,
    config: AppConfig,
    engine: Engine,
    events: Events,
    files: Files,
    pub prefs: Prefs,
    pub doc: Document,
    next_id: u64,
    /// The selected endpoint's composer (see [`App::sync_composer`]).
    pub composer: Composer,
    /// The endpoint `composer` belongs to.
    composer_owner: Option<EndpointId>,
    /// The composers of the open session's other endpoints, put away.
    composers: std::collections::HashMap<EndpointId, Composer>,
    pub log_view: LogView,
    sessions: Vec<ListedSession>,
    pub notices: Vec<Notice>,
    modal: Option<Modal>,
    /// What the last native file dialog came back with, shown in the path box:
    /// nothing chosen may mean the person cancelled, or that this desktop has
    /// no dialog service, and the typed path is the way on.
    dialog_note: Option<String>,
    /// An action waiting for a save to finish.
    after_save: Option<PendingAction>,
    start_queue: Option<StartQueue>,
    last_autosave: Instant,
    autosaved_change: u64,
    /// An autosave is being written: the next waits for it (two writers of
    /// one recovery file would race, and pile up under a flood).
    autosave_in_flight: bool,
    /// Autosaves started and finished, for tests.
    autosaves: (u64, u64),
    /// Payload bytes the recovery copy keeps at most.
    autosave_payload_cap: usize,
    allow_close: bool,
    applied_theme: Option<config::Theme>,
    title: String,
    /// A name typed for a new library payload.
    library_name: String,
    /// The last replay of the open session.
    pub replay: Option<replay::ReplayRun>,
    pub replay_speed: f64,
    pub replay_check: bool,
    /// Replay only this endpoint (all with recordings when `None`).
    pub replay_only: Option<String>,
    pub log_source: LogSource,
    /// The teaching views below the endpoints.
    pub view: View,
    sequence_view: sequence_view::SequenceView,
    lifecycle_view: lifecycle_view::LifecycleView,
    stream_view: stream_view::StreamView,
    code_view: code_view::CodeView,
    /// The system's TCP sockets, read every second while the lifecycle view shows.
    os_tcp: Vec<crate::engine::os_tcp::OsConnection>,
    os_tcp_asked: Option<Instant>,
    /// The lesson's step states for (log generation, rows, ticks).
    lesson_cache: Option<LessonCache>,
    /// The sidebar scrolls to its top on the next frame (a session was opened).
    sidebar_to_top: bool,
    /// The limits of one frame's drain of engine events.
    drain_budget: DrainBudget,
    /// What the last frame's drain took in.
    last_drain: DrainReport,
    /// Events handed in by [`App::inject_events`], drained before the engine's.
    injected: std::collections::VecDeque<crate::engine::Event>,
    /// One line per frame to `$SOCKBENCH_FRAME_LOG`, for measurements.
    frame_log: frame_log::FrameLog,
}

/// Lesson steps done, for the log state they were worked out from.
type LessonCache = ((u64, usize, Vec<Option<usize>>), Vec<bool>);

/// "✔ copied" beside a copy button for two seconds after it was clicked.
fn copied_mark(ui: &mut egui::Ui, copied_at: &mut Option<Instant>) {
    const SHOWN: Duration = Duration::from_secs(2);
    match copied_at {
        Some(at) if at.elapsed() < SHOWN => {
            ui.label("✔ copied");
            ui.ctx().request_repaint_after(SHOWN - at.elapsed());
        }
        Some(_) => *copied_at = None,
        None => {}
    }
}

/// egui's fonts, with the monospace font as the last fallback of the
/// proportional family: it has the arrows (→ ←) and shapes (●) the log uses.
fn fonts() -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        family.push("Hack".to_owned());
    }
    fonts
}

fn shortcut(modifiers: Modifiers, key: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(modifiers, key)
}

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, config: AppConfig) -> Self {
        let ctx = cc.egui_ctx.clone();
        ctx.set_fonts(fonts());
        let wake_ctx = ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> =
            Arc::new(move || wake_ctx.request_repaint_after(Duration::from_millis(10)));
        let (engine, events) = Engine::start(&config.runtime, wake.clone());
        let files = Files::new(config.runtime.clone(), wake, config.recovery_dir.clone());
        let prefs: Prefs = cc
            .storage
            .and_then(|s| eframe::get_value(s, KEY_PREFS))
            .unwrap_or_default();
        files.list(config.sessions_dir.clone());
        files.look_for_recovery();
        let mut next_id = 1;
        let doc = Document::new(Session::default(), None, &mut || {
            next_id += 1;
            EndpointId(next_id)
        });
        let app = App {
            ctx,
            config,
            engine,
            events,
            files,
            prefs,
            doc,
            next_id,
            composer: Composer::default(),
            composer_owner: None,
            composers: Default::default(),
            log_view: LogView::default(),
            sessions: Vec::new(),
            notices: Vec::new(),
            modal: None,
            dialog_note: None,
            after_save: None,
            start_queue: None,
            last_autosave: Instant::now(),
            autosaved_change: 0,
            autosave_in_flight: false,
            autosaves: (0, 0),
            autosave_payload_cap: files::RECOVERY_PAYLOAD_CAP,
            allow_close: false,
            applied_theme: None,
            title: String::new(),
            library_name: String::new(),
            replay: None,
            replay_speed: 1.0,
            replay_check: true,
            replay_only: None,
            log_source: LogSource::Recording,
            view: View::Log,
            sequence_view: Default::default(),
            lifecycle_view: Default::default(),
            stream_view: Default::default(),
            code_view: Default::default(),
            os_tcp: Vec::new(),
            os_tcp_asked: None,
            lesson_cache: None,
            sidebar_to_top: false,
            drain_budget: DrainBudget::default(),
            last_drain: DrainReport::default(),
            injected: Default::default(),
            frame_log: frame_log::FrameLog::from_env(),
        };
        if let Some(path) = app.config.open.clone() {
            app.files.load(path);
        }
        app
    }

    /// Keeps each composer with its endpoint: when another endpoint is
    /// selected, the shown composer is put away with the endpoint it belongs
    /// to and the selected one's comes out (fresh the first time). Only the
    /// recent payloads are shared.
    fn sync_composer(&mut self) {
        let current = self.doc.endpoints.get(self.doc.selected).map(|e| e.id);
        if current == self.composer_owner {
            return;
        }
        let fresh = self.composer.fresh();
        let shown = std::mem::replace(&mut self.composer, fresh);
        if let Some(owner) = self.composer_owner {
            self.composers.insert(owner, shown);
        }
        if let Some(id) = current
            && let Some(mut kept) = self.composers.remove(&id)
        {
            kept.recent = std::mem::take(&mut self.composer.recent);
            self.composer = kept;
        }
        self.composer_owner = current;
    }

    /// A new document: no composer of the session before comes along.
    fn forget_composers(&mut self) {
        self.composers.clear();
        self.composer = self.composer.fresh();
        self.composer_owner = None;
    }

    fn fresh_id(&mut self) -> EndpointId {
        self.next_id += 1;
        EndpointId(self.next_id)
    }

    pub fn notify(&mut self, error: bool, text: impl Into<String>) {
        let text = text.into();
        if error {
            // stderr is a terminal too: one escaped line.
            tracing::warn!("{}", crate::model::display::escape_controls(&text));
        }
        // The same message twice stays once.
        self.notices.retain(|n| n.text != text);
        self.notices.push(Notice {
            error,
            text,
            created: Instant::now(),
        });
    }

    // ----- documents and files -----

    /// Does `action`, first asking about unsaved changes.
    pub fn request(&mut self, action: PendingAction) {
        if self.doc.is_dirty() {
            self.modal = Some(Modal::Unsaved(action));
        } else {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: PendingAction) {
        match action {
            PendingAction::New => {
                self.stop_everything();
                let mut ids = self.next_id;
                self.doc = Document::new(Session::default(), None, &mut || {
                    ids += 1;
                    EndpointId(ids)
                });
                self.next_id = ids;
                self.log_view.reset();
                self.forget_composers();
            }
            PendingAction::Open(path) => self.files.load(path),
            PendingAction::Quit => {
                self.allow_close = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Stops every endpoint of the open document at once (it is being replaced).
    fn stop_everything(&mut self) {
        if let Some(run) = &mut self.replay
            && !run.is_done()
        {
            run.stop(&self.engine);
        }
        self.replay = None;
        self.replay_only = None;
        self.log_source = LogSource::Recording;
        for e in &self.doc.endpoints {
            if e.state.is_running() {
                self.engine.send(Command::Close {
                    id: e.id,
                    abort: true,
                });
            }
        }
        self.start_queue = None;
    }

    fn loaded(&mut self, path: PathBuf, session: Session, recovered_from: Option<Option<PathBuf>>) {
        self.stop_everything();
        let mut ids = self.next_id;
        let recovered = recovered_from.is_some();
        let doc_path = match recovered_from {
            Some(original) => original,
            None => Some(path.clone()),
        };
        self.doc = Document::new(session, doc_path, &mut || {
            ids += 1;
            EndpointId(ids)
        });
        self.next_id = ids;
        self.doc.template = !recovered && self.is_template(&path);
        self.log_view.reset();
        self.lesson_cache = None;
        self.sidebar_to_top = true;
        self.forget_composers();
        self.ready_to_send();
        if recovered {
            // The recovered work is not saved anywhere yet.
            self.doc.touch();
            self.notify(false, "Recovered the unsaved session; save it to keep it.");
        } else {
            self.prefs.remember(&path);
            self.notices.retain(|n| !n.error);
        }
    }

    /// Makes a freshly opened session ready for its first send: the first client
    /// (or UDP socket) is selected, and the first library payload is in the composer.
    fn ready_to_send(&mut self) {
        if let Some(i) = self
            .doc
            .endpoints
            .iter()
            .position(|e| e.kind().is_client())
            .or_else(|| {
                self.doc
                    .endpoints
                    .iter()
                    .position(|e| e.kind() == KindTag::Udp)
            })
        {
            self.doc.selected = i;
        }
        self.sync_composer();
        // The composer starts from the session's first payload, or empty: a
        // payload of the session before would be sent to the wrong place.
        let bytes = self
            .doc
            .session
            .library
            .first()
            .map(|item| item.payload.bytes().to_vec())
            .unwrap_or_default();
        self.composer.load_bytes(&bytes);
    }

    /// Whether `path` is one of the program's shipped sessions (a file in its
    /// sessions folder): a template, never overwritten.
    fn is_template(&self, path: &Path) -> bool {
        let dir = std::fs::canonicalize(&self.config.sessions_dir)
            .unwrap_or_else(|_| self.config.sessions_dir.clone());
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        path.starts_with(dir)
    }

    /// Saves to the document's file, or asks for one. A template is never
    /// written over: its Save is a Save As in the person's own folder.
    pub fn save(&mut self, then: Option<PendingAction>) {
        match self.doc.path.clone() {
            Some(path) if !self.doc.template => self.save_to(path, then),
            _ => self.open_save_as(then),
        }
    }

    /// The person's own folder for sessions: `~/Documents/sockbench` where
    /// there is a documents folder, else `sessions` in the app's data folder.
    fn own_sessions_dir(&self) -> PathBuf {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        match home.map(|h| h.join("Documents")).filter(|d| d.is_dir()) {
            Some(documents) => documents.join("sockbench"),
            None => eframe::storage_dir(APP_ID)
                .map(|d| d.join("sessions"))
                .unwrap_or_else(|| PathBuf::from("sockbench-sessions")),
        }
    }

    fn open_save_as(&mut self, then: Option<PendingAction>) {
        let name = self
            .doc
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_owned())
            .unwrap_or_else(|| "untitled.ron".into());
        // A new session or a template goes to the person's own folder, never
        // into the program's sessions folder.
        let suggested = match &self.doc.path {
            Some(path) if !self.doc.template => path.clone(),
            _ => self.own_sessions_dir().join(name),
        };
        let name = suggested
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let folder = suggested
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.config.sessions_dir.clone());
        self.modal = Some(Modal::SaveAsPath {
            path: suggested.to_string_lossy().into_owned(),
            then,
        });
        self.dialog_note = None;
        if self.config.native_dialogs {
            self.files.pick(Pick::SaveAs, folder, name);
        }
    }

    fn save_to(&mut self, path: PathBuf, then: Option<PendingAction>) {
        if path.is_file() && self.is_template(&path) {
            self.notify(
                true,
                format!(
                    "Not saved: {} is one of the program's examples; save under another name or in your own folder",
                    path.display()
                ),
            );
            self.open_save_as(then);
            return;
        }
        match self.doc.to_session() {
            Ok(session) => {
                self.after_save = then;
                let make_folder = path.parent() == Some(self.own_sessions_dir().as_path());
                self.files
                    .save(path, session, self.doc.changes, make_folder);
            }
            Err(e) => self.notify(true, format!("Not saved: {e}")),
        }
    }

    fn saved(&mut self, path: PathBuf, change: u64) {
        self.doc.path = Some(path.clone());
        self.doc.saved_at_change = change;
        // The person's own copy now, saved as any other file.
        self.doc.template = false;
        self.prefs.remember(&path);
        self.notify(false, format!("Saved {}", path.display()));
        // The recovery copy is older than what is on disk now.
        self.autosaved_change = change;
        self.files.discard_recovery_in_background();
        if path.starts_with(&self.config.sessions_dir) {
            self.files.list(self.config.sessions_dir.clone());
        }
        if let Some(action) = self.after_save.take() {
            self.perform(action);
        }
    }

    fn handle_file_message(&mut self, msg: FileMsg) {
        match msg {
            FileMsg::Listed(sessions) => self.sessions = sessions,
            FileMsg::Loaded {
                path,
                result,
                recovered_from,
            } => match *result {
                Ok(session) => self.loaded(path, session, recovered_from),
                Err(e) => self.notify(true, format!("Could not open {e}")),
            },
            FileMsg::Saved {
                path,
                result,
                change,
            } => match result {
                Ok(()) => self.saved(path, change),
                Err(e) => {
                    self.after_save = None;
                    self.notify(true, format!("Not saved: {e}"));
                }
            },
            FileMsg::Autosaved(result) => {
                self.autosave_in_flight = false;
                self.autosaves.1 += 1;
                if let Err(e) = result {
                    self.notify(true, format!("Autosave failed: {e}"));
                }
            }
            FileMsg::RecoveryFound { original } => {
                if self.modal.is_none() {
                    self.modal = Some(Modal::Recovery { original });
                }
            }
            FileMsg::TcpStates(states) => self.os_tcp = states,
            FileMsg::Picked { pick, path } => {
                match (path, self.modal.take(), pick) {
                    // A chosen file acts at once, as a native dialog should.
                    (Some(path), Some(Modal::OpenPath { .. }), Pick::Open) => {
                        self.dialog_note = None;
                        self.request(PendingAction::Open(path));
                    }
                    (Some(mut path), Some(Modal::SaveAsPath { then, .. }), Pick::SaveAs) => {
                        self.dialog_note = None;
                        // As for a typed path: a session file ends in .ron (and so
                        // shows in the sidebar), whatever the dialog added.
                        if path.extension().is_none() {
                            path.set_extension("ron");
                        }
                        self.save_to(path, then);
                    }
                    // Nothing chosen: the typed path stays, and says why it is there.
                    (None, modal, _) => {
                        self.modal = modal;
                        self.dialog_note = Some(
                            "No file was chosen in a dialog. If none appeared, this desktop has no file dialog service: type the path here."
                                .into(),
                        );
                    }
                    (Some(_), modal, _) => self.modal = modal,
                }
            }
        }
    }

    fn autosave(&mut self) {
        if self.config.recovery_dir.is_none()
            || self.autosave_in_flight
            || !self.doc.is_dirty()
            || self.doc.changes == self.autosaved_change
            || self.last_autosave.elapsed() < self.config.autosave_every
        {
            return;
        }
        self.last_autosave = Instant::now();
        // Payloads beyond the cap stay out of the copy (it is made here, on the
        // UI thread), and the copy says so in a note row.
        let log = files::recovery_log(&self.doc.session.log, self.autosave_payload_cap);
        if let Ok(session) = self.doc.to_session_with_log(log) {
            self.autosaved_change = self.doc.changes;
            if self.files.autosave(session, self.doc.path.clone()) {
                self.autosave_in_flight = true;
                self.autosaves.0 += 1;
            }
        }
    }

    /// Autosaves (started, finished) so far.
    pub fn autosaves(&self) -> (u64, u64) {
        self.autosaves
    }

    /// How many payload bytes the recovery copy keeps at most.
    pub fn set_autosave_payload_cap(&mut self, cap: usize) {
        self.autosave_payload_cap = cap;
    }

    // ----- endpoints -----

    /// Starts endpoint `index`, or explains why it cannot start.
    pub fn start(&mut self, index: usize) {
        let spec = match self.doc.validate(index) {
            Ok(spec) => spec,
            Err(errors) => {
                let name = self.doc.endpoints[index].form.name.clone();
                let why = errors.first().unwrap_or_default();
                self.notify(true, format!("\"{name}\" cannot start: {why}"));
                return;
            }
        };
        self.doc.sync_name(index);
        let e = &mut self.doc.endpoints[index];
        if e.state.is_running() {
            return;
        }
        e.state = RunState::Starting;
        e.peers.clear();
        e.totals = Default::default();
        e.started_with = Some(spec.clone());
        let log_endpoint = e.log_endpoint;
        let id = e.id;
        self.doc.session.log.new_run(log_endpoint);
        self.engine.send(Command::Open { id, spec });
    }

    pub fn stop(&mut self, index: usize) {
        let e = &mut self.doc.endpoints[index];
        if e.state.is_running() {
            self.engine.send(Command::Close {
                id: e.id,
                abort: false,
            });
            e.state = RunState::Stopping;
        }
        if let Some(queue) = &mut self.start_queue {
            let id = e.id;
            queue.clients.retain(|c| *c != id);
        }
    }

    /// Starts servers and UDP sockets first, then clients once the servers listen.
    pub fn start_all(&mut self) {
        let mut clients = Vec::new();
        for i in 0..self.doc.endpoints.len() {
            let e = &self.doc.endpoints[i];
            if e.state.is_running() {
                continue;
            }
            if e.kind().is_client() {
                clients.push(e.id);
            } else {
                self.start(i);
            }
        }
        if !clients.is_empty() {
            self.start_queue = Some(StartQueue {
                clients,
                deadline: Instant::now() + SERVERS_GRACE,
            });
            self.start_waiting_clients();
        }
    }

    fn start_waiting_clients(&mut self) {
        let Some(queue) = &self.start_queue else {
            return;
        };
        let servers_starting = self.doc.endpoints.iter().any(|e| {
            !e.kind().is_client() && matches!(e.state, RunState::Starting | RunState::Resolving)
        });
        if servers_starting && Instant::now() < queue.deadline {
            return;
        }
        let clients = self
            .start_queue
            .take()
            .map(|q| q.clients)
            .unwrap_or_default();
        for id in clients {
            if let Some(i) = self.doc.endpoints.iter().position(|e| e.id == id) {
                self.start(i);
            }
        }
    }

    pub fn stop_all(&mut self) {
        self.start_queue = None;
        for i in 0..self.doc.endpoints.len() {
            self.stop(i);
        }
    }

    pub fn add_endpoint(&mut self, kind: KindTag) {
        let id = self.fresh_id();
        self.doc.add_endpoint(kind, id);
    }

    pub fn remove_endpoint(&mut self, index: usize) {
        if index >= self.doc.endpoints.len() {
            return;
        }
        let e = self.doc.endpoints.remove(index);
        if e.state.is_running() {
            self.engine.send(Command::Close {
                id: e.id,
                abort: true,
            });
        }
        self.doc.selected = self
            .doc
            .selected
            .min(self.doc.endpoints.len().saturating_sub(1));
        self.doc.touch();
    }

    /// Sends the composer's payload from the selected endpoint.
    pub fn send_composer(&mut self) {
        self.sync_composer();
        let Some(e) = self.doc.endpoints.get(self.doc.selected) else {
            return;
        };
        if !e.state.is_up() {
            let name = e.form.name.clone();
            self.notify(
                true,
                format!("\"{name}\" is not running: start it, then send"),
            );
            return;
        }
        let Ok(bytes) = self.composer.bytes() else {
            // The error stands under the composer already.
            return;
        };
        let to = match (&e.send_to, e.kind()) {
            (SendTo::Peer(p), _) => Target::Peer(*p),
            (SendTo::Address, KindTag::Udp) => match e
                .send_address
                .parse::<HostPort>()
                .and_then(HostPort::require_port)
            {
                Ok(address) => Target::Address(address),
                Err(err) => {
                    self.notify(
                        true,
                        format!("Not sent: the address \"{}\": {err}", e.send_address),
                    );
                    return;
                }
            },
            (_, kind) if kind.is_server() => Target::AllPeers,
            _ => Target::Default,
        };
        let command = if self.composer.writes > 1 {
            Command::SendSplit {
                id: e.id,
                to,
                bytes,
                writes: self.composer.writes,
                gap: Duration::from_millis(u64::from(self.composer.gap_ms)),
            }
        } else {
            Command::Send {
                id: e.id,
                to,
                bytes,
            }
        };
        self.engine.send(command);
        self.composer.remember();
    }

    /// Points the composer at the peer of log row `index` (and its endpoint).
    pub fn reply_to_row(&mut self, index: usize) {
        if self.log_source != LogSource::Recording {
            self.notify(
                true,
                "Replies go to peers of the session's own log: show the recording first.",
            );
            return;
        }
        let log = &self.doc.session.log;
        let Some(entry) = log.entry(index) else {
            return;
        };
        let Some(peer) = log.peer_of(entry) else {
            return;
        };
        let name = log.endpoints()[peer.endpoint as usize].clone();
        let number = peer.number;
        if let Some(i) = self
            .doc
            .endpoints
            .iter()
            .position(|e| e.form.name.trim() == name)
        {
            self.doc.selected = i;
            self.doc.endpoints[i].send_to = SendTo::Peer(number);
        }
    }

    /// The view below the endpoints: the log or a teaching view.
    fn lower_view(&mut self, ui: &mut egui::Ui) {
        let endpoint = self
            .doc
            .endpoints
            .get(self.doc.selected)
            .map(|e| (e.form.name.trim().to_owned(), e.kind()));
        match self.view {
            View::Log => {
                let no_marks = std::collections::HashMap::new();
                let (log, marks) = match (&self.replay, self.log_source) {
                    (Some(run), LogSource::Replay) => (&run.log, &run.marked),
                    _ => (&self.doc.session.log, &no_marks),
                };
                let action = self.log_view.ui(ui, log, &mut self.prefs, marks);
                if action == LogAction::Clear {
                    self.ask_clear_log();
                }
            }
            View::Sequence => {
                let selected = self.log_view.selected;
                let log = match (&self.replay, self.log_source) {
                    (Some(run), LogSource::Replay) => &run.log,
                    _ => &self.doc.session.log,
                };
                if let Some(row) = self.sequence_view.ui(ui, log, selected) {
                    self.log_view.select(row);
                }
            }
            View::Lifecycle | View::Stream | View::Python if endpoint.is_none() => {
                ui.label("Add an endpoint first: this view shows the selected endpoint.");
            }
            View::Lifecycle => {
                let (name, kind) = endpoint.unwrap_or((String::new(), KindTag::TcpClient));
                self.lifecycle_view.ui(
                    ui,
                    &self.doc.session.log,
                    &name,
                    kind,
                    &self.os_tcp,
                    self.prefs.time,
                );
            }
            View::Stream => {
                let name = endpoint.map(|e| e.0).unwrap_or_default();
                self.stream_view.ui(ui, &self.doc.session.log, &name);
            }
            View::Python => {
                let name = endpoint.map(|e| e.0).unwrap_or_default();
                let session_name = self
                    .doc
                    .path
                    .as_ref()
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "untitled".into());
                let changes = self.doc.changes;
                let session = self.doc.to_session();
                self.code_view
                    .ui(ui, session, &name, changes, &session_name);
            }
        }
    }

    /// The log the log view shows.
    fn shown_log(&self) -> &crate::model::TrafficLog {
        match (&self.replay, self.log_source) {
            (Some(run), LogSource::Replay) => &run.log,
            _ => &self.doc.session.log,
        }
    }

    /// Clears the shown log, asking first when that loses recorded rows.
    pub fn ask_clear_log(&mut self) {
        if self.log_source == LogSource::Recording && !self.doc.session.log.is_empty() {
            self.modal = Some(Modal::ClearLog);
        } else {
            self.clear_log();
        }
    }

    pub fn clear_log(&mut self) {
        if self.log_source == LogSource::Replay {
            // The replay run's log goes; the recording stays.
            self.replay = None;
            self.show_log(LogSource::Recording);
            return;
        }
        self.doc.session.log.clear();
        self.log_view.selected = None;
        self.doc.log_changed();
    }

    /// Drains engine events within the frame's [`DrainBudget`]; when the
    /// budget ends the drain, asks for the next frame at once.
    fn drain_events(&mut self, ctx: &egui::Context) {
        let budget = self.drain_budget;
        let started = Instant::now();
        let mut report = DrainReport::default();
        let mut clock_bytes = 0usize;
        loop {
            if report.events >= budget.events || report.bytes >= budget.bytes {
                break;
            }
            // The clock is read every 64 events or every MiB, not per event.
            if (report.events % 64 == 63 || clock_bytes >= DRAIN_CLOCK_BYTES)
                && started.elapsed() >= budget.time
            {
                break;
            }
            let Some(event) = self.injected.pop_front().or_else(|| self.events.try_recv()) else {
                report.finished = true;
                break;
            };
            let bytes = match &event.kind {
                crate::engine::EventKind::Traffic { bytes, .. } => bytes.len(),
                _ => 0,
            };
            match &mut self.replay {
                Some(run) if run.owns(event.id) => run.apply(&event),
                _ => {
                    self.doc.apply(&event);
                }
            }
            report.events += 1;
            report.bytes += bytes;
            clock_bytes = if clock_bytes >= DRAIN_CLOCK_BYTES {
                bytes
            } else {
                clock_bytes + bytes
            };
        }
        if !report.finished {
            // More may be waiting: paint this frame, come back at once.
            ctx.request_repaint();
        }
        self.last_drain = report;
    }

    /// Writes this frame's line to the frame log (see [`frame_log`]).
    fn log_frame(&mut self, ctx: &egui::Context, drain: Duration) {
        let (sent_bytes, received_bytes) = self.doc.endpoints.iter().fold((0, 0), |acc, e| {
            (acc.0 + e.totals.sent_bytes, acc.1 + e.totals.received_bytes)
        });
        let presses = ctx.input(|i| {
            i.events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        egui::Event::PointerButton {
                            button: egui::PointerButton::Primary,
                            pressed: true,
                            ..
                        }
                    )
                })
                .count() as u64
        });
        let facts = frame_log::FrameFacts {
            drain,
            events: self.last_drain.events,
            sent_bytes,
            received_bytes,
            view: View::ALL.iter().position(|v| *v == self.view).unwrap_or(0),
        };
        self.frame_log.record(facts, presses);
    }

    /// The limits of one frame's drain of engine events.
    pub fn set_drain_budget(&mut self, budget: DrainBudget) {
        self.drain_budget = budget;
    }

    /// What the last frame's drain of engine events took in.
    pub fn last_drain(&self) -> DrainReport {
        self.last_drain
    }

    /// Hands events to the window as if the engine had sent them (tests and
    /// benchmarks build a backlog with this); they are drained first, under
    /// the same budget.
    pub fn inject_events(&mut self, events: impl IntoIterator<Item = crate::engine::Event>) {
        self.injected.extend(events);
        self.ctx.request_repaint();
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        if self.modal.is_some() {
            return;
        }
        let command = Modifiers::COMMAND;
        let pressed = |s: KeyboardShortcut| ctx.input_mut(|i| i.consume_shortcut(&s));
        if pressed(shortcut(command | Modifiers::SHIFT, Key::S)) {
            self.open_save_as(None);
        } else if pressed(shortcut(command, Key::S)) {
            self.save(None);
        }
        if pressed(shortcut(command, Key::N)) {
            self.request(PendingAction::New);
        }
        if pressed(shortcut(command, Key::O)) {
            self.open_dialog();
        }
        if pressed(shortcut(command, Key::F)) {
            // The filter lives in the log view: show it, then focus it.
            self.view = View::Log;
            self.log_view.focus_search = true;
        }
        if pressed(shortcut(command, Key::L)) {
            self.ask_clear_log();
        }
        if pressed(shortcut(command, Key::Enter)) {
            self.send_composer();
        }
    }

    pub fn open_dialog(&mut self) {
        let start = self
            .doc
            .path
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.config.sessions_dir.clone());
        self.modal = Some(Modal::OpenPath {
            path: format!("{}/", start.display()),
        });
        // The system's dialog at once where there is one; the box stays beside
        // it for a typed path.
        self.dialog_note = None;
        if self.config.native_dialogs {
            self.files.pick(Pick::Open, start, None);
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            if path.extension().is_some_and(|x| x == "ron") {
                self.request(PendingAction::Open(path));
            } else {
                self.notify(
                    true,
                    format!(
                        "{} is not a session file: only .ron files open here",
                        path.display()
                    ),
                );
            }
        }
    }
}

impl App {
    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("New").shortcut_text("Ctrl+N"))
                    .on_hover_text("Start an empty session")
                    .clicked()
                {
                    self.request(PendingAction::New);
                }
                if ui
                    .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                    .on_hover_text("Open a session file")
                    .clicked()
                {
                    self.open_dialog();
                }
                if ui
                    .add(egui::Button::new("Save").shortcut_text("Ctrl+S"))
                    .on_hover_text("Save the session to its file")
                    .clicked()
                {
                    self.save(None);
                }
                if ui
                    .add(egui::Button::new("Save As…").shortcut_text("Ctrl+Shift+S"))
                    .on_hover_text("Save the session to a new file")
                    .clicked()
                {
                    self.open_save_as(None);
                }
                ui.separator();
                ui.menu_button("Recent files", |ui| {
                    if self.prefs.recent_files.is_empty() {
                        ui.label("None yet");
                    }
                    for path in self.prefs.recent_files.clone() {
                        if ui
                            .button(crate::model::display::escape_controls(
                                &path.display().to_string(),
                            ))
                            .on_hover_text("Open this session again")
                            .clicked()
                        {
                            self.request(PendingAction::Open(path));
                        }
                    }
                });
                ui.separator();
                if ui.button("Quit").on_hover_text("Close sockbench").clicked() {
                    self.request(PendingAction::Quit);
                }
            });
            ui.menu_button("View", |ui| {
                ui.label("Theme");
                for theme in config::Theme::ALL {
                    ui.radio_value(&mut self.prefs.theme, theme, theme.label())
                        .on_hover_text(match theme {
                            config::Theme::System => "Dark or light as the desktop is set",
                            config::Theme::Dark => "Light text on a dark background",
                            config::Theme::Light => "Dark text on a light background",
                        });
                }
                ui.separator();
                ui.label("Times in the log");
                ui.radio_value(
                    &mut self.prefs.time,
                    config::TimeDisplay::Local,
                    "Local time",
                )
                .on_hover_text("Show times in this computer's time zone");
                ui.radio_value(&mut self.prefs.time, config::TimeDisplay::Utc, "UTC")
                    .on_hover_text("Show times in UTC, as session files store them (ends in Z)");
                ui.separator();
                ui.checkbox(&mut self.prefs.show_inspector, "Inspector")
                    .on_hover_text("Show the selected row in full on the right");
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .button("Keyboard shortcuts")
                    .on_hover_text("List the keyboard shortcuts")
                    .clicked()
                {
                    self.modal = Some(Modal::Shortcuts);
                }
            });
        });
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading(self.doc.title());
            ui.separator();
            let any = !self.doc.endpoints.is_empty();
            if ui
                .add_enabled(any, egui::Button::new("▶ Start all"))
                .on_hover_text("Start every endpoint: servers first, then the clients")
                .clicked()
            {
                self.start_all();
            }
            let running = self.doc.endpoints.iter().any(|e| e.state.is_running());
            if ui
                .add_enabled(running, egui::Button::new("⏹ Stop all"))
                .on_hover_text("Stop every endpoint, closing connections in order")
                .clicked()
            {
                self.stop_all();
            }
            ui.separator();
            if ui
                .button("💾 Save")
                .on_hover_text("Save the session (Ctrl+S)")
                .clicked()
            {
                self.save(None);
            }
        });
    }

    fn notices_ui(&mut self, ui: &mut egui::Ui) {
        let mut dismissed = None;
        for (i, notice) in self.notices.iter().enumerate() {
            ui.horizontal(|ui| {
                let color = if notice.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                let icon = if notice.error { "⚠" } else { "ℹ" };
                if ui
                    .small_button("✖")
                    .on_hover_text("Dismiss this message")
                    .clicked()
                {
                    dismissed = Some(i);
                }
                // Notices quote errors, file names and endpoint names.
                ui.colored_label(
                    color,
                    format!(
                        "{icon} {}",
                        crate::model::display::escape_controls(&notice.text)
                    ),
                );
            });
        }
        if let Some(i) = dismissed {
            self.notices.remove(i);
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let running = self
                .doc
                .endpoints
                .iter()
                .filter(|e| e.state.is_running())
                .count();
            ui.label(format!(
                "{} endpoint{}, {running} running",
                self.doc.endpoints.len(),
                if self.doc.endpoints.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
            ui.separator();
            let t = self.doc.endpoints.iter().fold((0, 0, 0, 0), |acc, e| {
                (
                    acc.0 + e.totals.sent,
                    acc.1 + e.totals.sent_bytes,
                    acc.2 + e.totals.received,
                    acc.3 + e.totals.received_bytes,
                )
            });
            let payloads = |n: u64| {
                if n == 1 {
                    "1 payload".to_owned()
                } else {
                    format!("{n} payloads")
                }
            };
            let bytes = |n: u64| {
                if n == 1 {
                    "1 byte".to_owned()
                } else {
                    format!("{n} bytes")
                }
            };
            ui.label(format!(
                "sent {} ({}), received {} ({})",
                payloads(t.0),
                bytes(t.1),
                payloads(t.2),
                bytes(t.3)
            ))
            .on_hover_text("Since each endpoint last started");
            ui.separator();
            match &self.doc.path {
                Some(p) => ui.label(crate::model::display::escape_controls(
                    &p.display().to_string(),
                )),
                None => ui.label("not saved yet"),
            };
        });
    }

    fn modals(&mut self, ctx: &egui::Context) {
        let Some(modal) = self.modal.clone() else {
            return;
        };
        let mut close = false;
        let mut next: Option<Modal> = None;
        match modal {
            Modal::Unsaved(action) => {
                egui::Modal::new(egui::Id::unique("unsaved")).show(ctx, |ui| {
                    ui.heading("Save changes?");
                    ui.label(format!(
                        "\"{}\" has changes that are not saved. Save them first?",
                        self.doc.title().trim_start_matches("● ")
                    ));
                    ui.horizontal(|ui| {
                        if ui
                            .button("Save")
                            .on_hover_text("Save, then go on")
                            .clicked()
                        {
                            close = true;
                            self.modal = None;
                            self.save(Some(action.clone()));
                            next = self.modal.take();
                        }
                        if ui
                            .button("Don't save")
                            .on_hover_text("Go on and lose the changes")
                            .clicked()
                        {
                            close = true;
                            self.perform(action.clone());
                        }
                        if ui.button("Cancel").on_hover_text("Stay here").clicked() {
                            close = true;
                        }
                    });
                });
            }
            Modal::OpenPath { mut path } => {
                egui::Modal::new(egui::Id::unique("open path")).show(ctx, |ui| {
                    ui.heading("Open a session");
                    let label = ui.label("Path");
                    // Read before the field: a single-line field takes the
                    // Enter that ends its editing.
                    let enter_pressed = ui.input(|i| i.key_pressed(Key::Enter));
                    let field = ui
                        .add(
                            // A path from a file name may hold controls: drawn as marks.
                            egui::TextEdit::singleline(&mut path)
                                .desired_width(420.0)
                                .layouter(&mut visible_text::layouter(false)),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("The path of a .ron session file");
                    // Before focus is asked back below: a field that gave up
                    // its focus to Enter has it again after that.
                    let enter = field.lost_focus() && enter_pressed;
                    if ui.memory(|m| m.focused().is_none()) {
                        field.request_focus();
                    }
                    if let Some(note) = &self.dialog_note {
                        ui.label(
                            egui::RichText::new(crate::model::display::escape_controls(note))
                                .weak(),
                        );
                    }
                    ui.horizontal(|ui| {
                        if ui.button("Open").on_hover_text("Open this file").clicked() || enter {
                            close = true;
                            // The box goes; an unsaved-changes question may come.
                            self.modal = None;
                            self.request(PendingAction::Open(PathBuf::from(path.trim())));
                            next = self.modal.take();
                        }
                        if self.config.native_dialogs
                            && ui
                                .button("Browse…")
                                .on_hover_text("Pick the file in your system's file dialog")
                                .clicked()
                        {
                            self.files
                                .pick(Pick::Open, self.config.sessions_dir.clone(), None);
                        }
                        if ui.button("Cancel").on_hover_text("Open nothing").clicked() {
                            close = true;
                        }
                    });
                });
                if !close {
                    self.modal = Some(Modal::OpenPath { path });
                }
            }
            Modal::SaveAsPath { mut path, then } => {
                egui::Modal::new(egui::Id::unique("save as path")).show(ctx, |ui| {
                    ui.heading("Save the session as");
                    let label = ui.label("Path");
                    // Read before the field: a single-line field takes the
                    // Enter that ends its editing.
                    let enter_pressed = ui.input(|i| i.key_pressed(Key::Enter));
                    let field = ui
                        .add(
                            // A path from a file name may hold controls: drawn as marks.
                            egui::TextEdit::singleline(&mut path)
                                .desired_width(420.0)
                                .layouter(&mut visible_text::layouter(false)),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("Where to save: a path ending in .ron");
                    // Before focus is asked back below: a field that gave up
                    // its focus to Enter has it again after that.
                    let enter = field.lost_focus() && enter_pressed;
                    if ui.memory(|m| m.focused().is_none()) {
                        field.request_focus();
                    }
                    if let Some(note) = &self.dialog_note {
                        ui.label(
                            egui::RichText::new(crate::model::display::escape_controls(note))
                                .weak(),
                        );
                    }
                    ui.horizontal(|ui| {
                        if ui
                            .button("Save here")
                            .on_hover_text("Save to this file")
                            .clicked()
                            || enter
                        {
                            close = true;
                            let mut target = PathBuf::from(path.trim());
                            if target.extension().is_none() {
                                target.set_extension("ron");
                            }
                            self.modal = None;
                            self.save_to(target, then.clone());
                            // A refused place opens the box again.
                            next = self.modal.take();
                        }
                        if self.config.native_dialogs
                            && ui
                                .button("Browse…")
                                .on_hover_text("Pick the place in your system's file dialog")
                                .clicked()
                        {
                            let name = Path::new(&path)
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned());
                            self.files
                                .pick(Pick::SaveAs, self.config.sessions_dir.clone(), name);
                        }
                        if ui.button("Cancel").on_hover_text("Save nothing").clicked() {
                            close = true;
                        }
                    });
                });
                if !close {
                    self.modal = Some(Modal::SaveAsPath { path, then });
                }
            }
            Modal::Recovery { original } => {
                egui::Modal::new(egui::Id::unique("recovery")).show(ctx, |ui| {
                    ui.heading("Recover unsaved work?");
                    let from = original
                        .as_ref()
                        .map(|p| {
                            format!(
                                " (from {})",
                                crate::model::display::escape_controls(&p.display().to_string())
                            )
                        })
                        .unwrap_or_default();
                    ui.label(format!(
                        "sockbench did not close cleanly last time. A copy of the unsaved session{from} was kept."
                    ));
                    ui.horizontal(|ui| {
                        if ui.button("Recover").on_hover_text("Open the kept copy").clicked() {
                            close = true;
                            self.files.recover(original.clone());
                        }
                        if ui
                            .button("Discard")
                            .on_hover_text("Delete the kept copy")
                            .clicked()
                        {
                            close = true;
                            self.files.discard_recovery();
                        }
                    });
                });
            }
            Modal::ClearLog => {
                let rows = self.doc.session.log.len();
                let response = egui::Modal::new(egui::Id::unique("clear log")).show(ctx, |ui| {
                    ui.heading("Clear the log?");
                    ui.label(format!(
                        "The {rows} row{} of the session's log go, and with them its recording for replay. This cannot be undone.",
                        if rows == 1 { "" } else { "s" }
                    ));
                    ui.horizontal(|ui| {
                        if ui
                            .button("Clear")
                            .on_hover_text("Remove every row of the log")
                            .clicked()
                        {
                            close = true;
                            self.clear_log();
                        }
                        if ui
                            .button("Keep")
                            .on_hover_text("Leave the log as it is")
                            .clicked()
                        {
                            close = true;
                        }
                    });
                });
                if response.should_close() {
                    close = true;
                }
            }
            Modal::Shortcuts => {
                let response = egui::Modal::new(egui::Id::unique("shortcuts")).show(ctx, |ui| {
                    ui.heading("Keyboard shortcuts");
                    egui::Grid::new("shortcut list").show(ui, |ui| {
                        for (keys, what) in [
                            ("Ctrl+N", "new session"),
                            ("Ctrl+O", "open a session"),
                            ("Ctrl+S", "save"),
                            ("Ctrl+Shift+S", "save as"),
                            ("Ctrl+Enter", "send the composer's payload"),
                            ("Ctrl+F", "find in the log"),
                            ("Ctrl+L", "clear the log"),
                        ] {
                            ui.monospace(keys);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                    if ui
                        .button("Close")
                        .on_hover_text("Close this list")
                        .clicked()
                    {
                        close = true;
                    }
                });
                if response.should_close() {
                    close = true;
                }
            }
        }
        if close {
            self.modal = next;
        }
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let drain_started = Instant::now();
        self.drain_events(ctx);
        if self.frame_log.is_on() {
            self.log_frame(ctx, drain_started.elapsed());
        }
        while let Ok(msg) = self.files.rx.try_recv() {
            self.handle_file_message(msg);
        }
        self.start_waiting_clients();
        if let Some(run) = &mut self.replay
            && !run.is_done()
        {
            run.start_clients(&self.engine);
            // The elapsed time on the replay bar moves on.
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if self.start_queue.is_some() {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        self.autosave();
        if self.view == View::Lifecycle {
            if self
                .os_tcp_asked
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            {
                self.os_tcp_asked = Some(Instant::now());
                self.files.read_tcp_states();
            }
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        let expired = |n: &Notice| !n.error && n.created.elapsed() > NOTICE_LIFETIME;
        if self.notices.iter().any(expired) {
            self.notices.retain(|n| !expired(n));
        }
        if self.notices.iter().any(|n| !n.error) {
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        if ctx.input(|i| i.viewport().close_requested()) && !self.allow_close && self.doc.is_dirty()
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if self.modal.is_none() {
                self.modal = Some(Modal::Unsaved(PendingAction::Quit));
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if self.applied_theme != Some(self.prefs.theme) {
            ctx.set_theme(self.prefs.theme.preference());
            self.applied_theme = Some(self.prefs.theme);
        }
        let title = format!("{} — sockbench", self.doc.title());
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        self.sync_composer();
        self.shortcuts(&ctx);
        self.handle_dropped_files(&ctx);

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::top("replay bar").show(ui, |ui| self.replay_bar(ui));
        if !self.notices.is_empty() {
            egui::Panel::top("notices").show(ui, |ui| self.notices_ui(ui));
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("sidebar")
            .resizable(true)
            .default_size(220.0)
            .show(ui, |ui| self.sidebar_ui(ui));
        if self.prefs.show_inspector {
            egui::Panel::right("inspector")
                .resizable(true)
                .default_size(360.0)
                .show(ui, |ui| {
                    // Fill the panel, so its width is the person's choice, not the content's.
                    ui.set_min_width(ui.available_width());
                    let (log, mismatch) = match (&self.replay, self.log_source) {
                        (Some(run), LogSource::Replay) => (
                            &run.log,
                            self.log_view.selected.and_then(|row| run.mismatch_at(row)),
                        ),
                        _ => (&self.doc.session.log, None),
                    };
                    let action =
                        inspector::ui(ui, log, self.log_view.selected, self.prefs.time, mismatch);
                    match action {
                        inspector::InspectorAction::None => {}
                        inspector::InspectorAction::LoadIntoComposer(i) => {
                            let bytes = self.shown_log().data(i).to_vec();
                            self.composer.load_bytes(&bytes);
                        }
                        inspector::InspectorAction::ReplyToPeer(i) => self.reply_to_row(i),
                    }
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            egui::Panel::top("endpoints")
                .resizable(true)
                .default_size(330.0)
                .show(ui, |ui| self.endpoint_pane(ui));
            ui.horizontal(|ui| {
                for view in View::ALL {
                    ui.selectable_value(&mut self.view, view, view.label())
                        .on_hover_text(view.hint());
                }
            });
            ui.separator();
            self.lower_view(ui);
        });

        if ctx.input(|i| !i.raw.hovered_files.is_empty()) {
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop hint"),
            ));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop a .ron session file to open it",
                egui::FontId::proportional(24.0),
                egui::Color32::WHITE,
            );
        }
        self.modals(&ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, KEY_PREFS, &self.prefs);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.engine.request_shutdown();
        // A clean exit: the recovery copy is not needed (unsaved work was
        // either saved or knowingly discarded at the prompt).
        self.files.discard_recovery();
    }
}
