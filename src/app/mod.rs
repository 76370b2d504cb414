//! The workbench window (eframe/egui) on top of the engine.
//!
//! Split as in rerun's viewer (`re_viewer/src/app/`):
//! - here: [`App`], its state, and the `eframe::App` impl that only delegates;
//! - `logic.rs`: what runs every frame, even while the window is hidden —
//!   engine events drained under a budget, file results, autosave, the start
//!   queue, the poll of the system's TCP states;
//! - `command_handling.rs`: the one [`AppCommand`] enum that views push, and the
//!   one place that runs them — the only caller of the engine and the file tasks;
//! - `session_flow.rs`: new, open, save, the unsaved-changes question, templates;
//! - `chrome.rs`: menu, toolbar, notices, status bar and keyboard shortcuts;
//! - `modals.rs`: the dialogs, with one path prompt for Open and Save As;
//! - `ui.rs`: the panels and the views in them.
//!
//! Views never act: they change what they show and push [`AppCommand`]s. The
//! window never waits on the network or the disk: the engine takes commands
//! and reports events; file work runs on the runtime's blocking pool ([`files`]).

mod chrome;
mod code_view;
mod command_handling;
pub mod composer;
pub mod config;
pub mod document;
pub mod endpoint_form;
mod endpoint_pane;
pub mod files;
mod frame_log;
pub mod inspector;
pub mod intercept;
mod launch;
mod lesson_panel;
pub mod library;
mod lifecycle_view;
pub mod log_view;
mod logic;
mod modals;
mod panels;
mod peers;
pub mod quick_send;
pub mod repeat;
pub mod replay;
mod replay_bar;
mod sequence_view;
mod session_flow;
mod sidebar;
pub mod stats_view;
mod stream_view;
mod ui;
pub mod visible_text;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use chrome::{Shortcut, shortcuts};
pub use command_handling::AppCommand;
use composer::Composer;
pub use config::{AppConfig, Prefs};
use document::Document;
use files::{Files, ListedSession};
pub use launch::{LaunchError, launch};
use log_view::LogView;
use modals::Modal;

use crate::engine::{EndpointId, Engine, Events};
use crate::model::Session;

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

/// What the lower part of the window shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Log,
    Sequence,
    Lifecycle,
    Stream,
    Stats,
    Python,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Log,
        View::Sequence,
        View::Lifecycle,
        View::Stream,
        View::Stats,
        View::Python,
    ];

    pub fn label(self) -> &'static str {
        match self {
            View::Log => "📜 Log",
            View::Sequence => "⇄ Sequence",
            View::Lifecycle => "🔁 Lifecycle",
            View::Stream => "✂ Stream",
            View::Stats => "📈 Stats",
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
            View::Stats => {
                "Payloads, bytes, rates and connections per endpoint and peer; the selected endpoint's rate over time"
            }
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
    /// The servers it waits for and the clients still to start.
    launch: crate::run::Launch,
    /// Clients whose servers listen, started on the next frame.
    due: Vec<EndpointId>,
}

/// The workbench: the open session and everything the window shows of it.
///
/// The fields are private: views reach them as `App`'s own methods, tests
/// through the accessors below.
pub struct App {
    /// The window's context, to ask for repaints and viewport changes.
    ctx: egui::Context,
    /// How the window was started (folders, dialogs, autosave interval).
    config: AppConfig,
    /// The engine the endpoints run on; used by `command_handling` only.
    engine: Engine,
    /// The engine's events, drained by `logic`.
    events: Events,
    /// File work on the runtime's blocking pool; used by `command_handling` only.
    files: Files,
    /// What eframe keeps between runs: theme, times, recent files, panels.
    prefs: Prefs,
    /// The log budget's memory as typed in the preferences (applied when it reads as a size).
    budget_text: String,
    /// The open session with its endpoints' forms and run states.
    doc: Document,
    /// The last endpoint id handed out (ids are never reused in a run).
    next_id: u64,
    /// The selected endpoint's composer (see [`App::sync_composer`]).
    composer: Composer,
    /// The endpoint `composer` belongs to.
    composer_owner: Option<EndpointId>,
    /// The composers of the open session's other endpoints, put away.
    composers: std::collections::HashMap<EndpointId, Composer>,
    /// The log table's state: filter, selection, following.
    log_view: LogView,
    /// The session files of the sessions folder, for the sidebar.
    sessions: Vec<ListedSession>,
    /// Messages at the top of the window.
    notices: Vec<Notice>,
    /// The dialog in front of the window, if any.
    modal: Option<Modal>,
    /// What the last native file dialog came back with, shown in the path box:
    /// nothing chosen may mean the person cancelled, or that this desktop has
    /// no dialog service, and the typed path is the way on.
    dialog_note: Option<String>,
    /// An action waiting for a save to finish.
    after_save: Option<PendingAction>,
    /// Clients of a "Start all" waiting for its servers.
    start_queue: Option<StartQueue>,
    /// When the last autosave began.
    last_autosave: Instant,
    /// The document change the recovery copy holds.
    autosaved_change: u64,
    /// An autosave is being written: the next waits for it (two writers of
    /// one recovery file would race, and pile up under a flood).
    autosave_in_flight: bool,
    /// Autosaves started and finished, for tests.
    autosaves: (u64, u64),
    /// Payload bytes the recovery copy keeps at most.
    autosave_payload_cap: usize,
    /// The person chose to quit (unsaved changes dealt with): the next close goes through.
    allow_close: bool,
    /// The theme last given to egui, so it is set once per change.
    applied_theme: Option<config::Theme>,
    /// The window title last sent, so it is sent once per change.
    title: String,
    /// A name typed for a new library payload.
    library_name: String,
    /// How many times each library entry (by name) was sent: its `${counter}`.
    library_sends: std::collections::HashMap<String, u64>,
    /// The library window (rename, delete, reorder).
    library_editor: library::LibraryEditor,
    /// The quick-send row above the endpoints, as typed.
    quick_send: quick_send::QuickSend,
    /// The running repeats (the traffic generator), sent from `logic`.
    repeats: repeat::Repeats,
    /// The scheduled sends of the running endpoints, sent from `logic`.
    schedules: crate::run::Schedules,
    /// Where the composer was drawn last frame: a file dropped on it loads
    /// into it, whatever its name.
    composer_rect: Option<egui::Rect>,
    /// The last replay of the open session.
    replay: Option<replay::ReplayRun>,
    /// The replay's speed (1.0 keeps the recorded gaps).
    replay_speed: f64,
    /// Whether the replay compares answers with the recording.
    replay_check: bool,
    /// Replay only this endpoint (all with recordings when `None`).
    replay_only: Option<String>,
    /// Which log the log view and the inspector show.
    log_source: LogSource,
    /// The teaching views below the endpoints.
    view: View,
    sequence_view: sequence_view::SequenceView,
    lifecycle_view: lifecycle_view::LifecycleView,
    stream_view: stream_view::StreamView,
    code_view: code_view::CodeView,
    stats_view: stats_view::StatsView,
    /// Every endpoint's counts and per-second samples, fed as events are drained.
    stats: stats_view::Sampler,
    /// The system's TCP sockets, read every second while the lifecycle view shows.
    os_tcp: Vec<crate::engine::os_tcp::OsConnection>,
    /// When the TCP states were last asked for.
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
            budget_text: crate::model::budget::exact_size_text(prefs.log_budget.memory),
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
            library_sends: std::collections::HashMap::new(),
            library_editor: Default::default(),
            quick_send: Default::default(),
            repeats: Default::default(),
            schedules: Default::default(),
            composer_rect: None,
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
            stats_view: Default::default(),
            stats: Default::default(),
            os_tcp: Vec::new(),
            os_tcp_asked: None,
            lesson_cache: None,
            sidebar_to_top: false,
            drain_budget: DrainBudget::default(),
            last_drain: DrainReport::default(),
            injected: Default::default(),
            frame_log: frame_log::FrameLog::from_env(),
        };
        app.list_sessions();
        app.look_for_recovery();
        if let Some(path) = app.config.open.clone() {
            app.load_file(path);
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

    // ----- what tests and benchmarks read -----

    /// The open session with its endpoints.
    pub fn doc(&self) -> &Document {
        &self.doc
    }

    /// The open session, to change in place (tests and benchmarks build one).
    pub fn doc_mut(&mut self) -> &mut Document {
        &mut self.doc
    }

    /// The selected endpoint's composer.
    pub fn composer(&self) -> &Composer {
        &self.composer
    }

    /// The selected endpoint's composer, to fill in.
    pub fn composer_mut(&mut self) -> &mut Composer {
        &mut self.composer
    }

    /// The log table's state.
    pub fn log_view(&self) -> &LogView {
        &self.log_view
    }

    /// The log table's state, to select a row.
    pub fn log_view_mut(&mut self) -> &mut LogView {
        &mut self.log_view
    }

    /// The running repeats.
    pub fn repeats(&self) -> &repeat::Repeats {
        &self.repeats
    }

    /// The last replay of the open session.
    pub fn replay(&self) -> Option<&replay::ReplayRun> {
        self.replay.as_ref()
    }

    /// The preferences eframe keeps between runs.
    pub fn prefs(&self) -> &Prefs {
        &self.prefs
    }

    /// The messages at the top of the window.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Every endpoint's counts and rates, as the stats view shows them.
    pub fn stats(&self) -> &stats_view::Sampler {
        &self.stats
    }

    /// Which view is below the endpoints.
    pub fn view(&self) -> View {
        self.view
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.logic_frame(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.ui_frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, KEY_PREFS, &self.prefs);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.shut_down();
    }
}
