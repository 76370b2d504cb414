//! How the window is started, and the preferences that survive a restart.

use std::path::{Path, PathBuf};

/// What the window is started with (from `main`, or from a test).
#[derive(Clone)]
pub struct AppConfig {
    /// The runtime the engine runs on. A handle, never the runtime itself: the
    /// window must not own (and drop) a runtime.
    pub runtime: tokio::runtime::Handle,
    /// The folder listed in the sidebar, where new sessions are saved by default.
    pub sessions_dir: PathBuf,
    /// Where the autosave recovery file lives; `None` turns autosave off.
    pub recovery_dir: Option<PathBuf>,
    /// A session file to open at start (`sockbench FILE`).
    pub open: Option<PathBuf>,
    /// Whether native file dialogs may be offered (never in tests).
    pub native_dialogs: bool,
    /// How often the open session is copied to the recovery file while unsaved.
    pub autosave_every: std::time::Duration,
}

impl AppConfig {
    /// The configuration `main` uses: the sessions folder found near the program,
    /// recovery in the user's data folder, native dialogs on.
    pub fn for_desktop(runtime: tokio::runtime::Handle, open: Option<PathBuf>) -> Self {
        Self {
            runtime,
            sessions_dir: find_sessions_dir(),
            recovery_dir: eframe::storage_dir(super::APP_ID),
            open,
            native_dialogs: true,
            autosave_every: std::time::Duration::from_secs(10),
        }
    }
}

/// The example sessions: `$SOCKBENCH_SESSIONS`, `./sessions`, the folder beside
/// the program, or the source tree's (for `cargo run`), whichever exists first.
pub fn find_sessions_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("SOCKBENCH_SESSIONS").map(PathBuf::from),
        Some(PathBuf::from("sessions")),
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("sessions"))),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("sessions"))
}

/// The colour theme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Theme {
    #[default]
    System,
    Dark,
    Light,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Dark, Theme::Light];

    pub fn label(self) -> &'static str {
        match self {
            Theme::System => "Follow the system",
            Theme::Dark => "Dark",
            Theme::Light => "Light",
        }
    }

    pub fn preference(self) -> egui::ThemePreference {
        match self {
            Theme::System => egui::ThemePreference::System,
            Theme::Dark => egui::ThemePreference::Dark,
            Theme::Light => egui::ThemePreference::Light,
        }
    }
}

/// How times are shown in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeDisplay {
    #[default]
    Local,
    Utc,
}

/// How payloads are previewed in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PreviewMode {
    #[default]
    Text,
    Hex,
    Both,
}

impl PreviewMode {
    pub const ALL: [PreviewMode; 3] = [PreviewMode::Text, PreviewMode::Hex, PreviewMode::Both];

    pub fn label(self) -> &'static str {
        match self {
            PreviewMode::Text => "as text",
            PreviewMode::Hex => "as hex",
            PreviewMode::Both => "as both",
        }
    }
}

/// Preferences saved by eframe between runs. The window size is saved by eframe itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub theme: Theme,
    pub time: TimeDisplay,
    pub preview: PreviewMode,
    /// Most recent first.
    pub recent_files: Vec<PathBuf>,
    pub show_inspector: bool,
    /// The sessions sidebar is shown (hidden: more room for the log).
    pub show_sidebar: bool,
    /// The endpoints pane above the log is shown.
    pub show_endpoints: bool,
    /// Payload bytes a session's log keeps in memory, and what happens to
    /// the rest (spilled to disk or dropped), for sessions that do not set
    /// their own `log_budget` (as `--log-budget` does on the command line).
    pub log_budget: crate::model::LogBudget,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            theme: Theme::System,
            time: TimeDisplay::Local,
            preview: PreviewMode::Text,
            recent_files: Vec::new(),
            show_inspector: true,
            show_sidebar: true,
            show_endpoints: true,
            log_budget: crate::model::LogBudget::default(),
        }
    }
}

/// How many recent files are remembered.
const RECENT_FILES: usize = 10;

impl Prefs {
    /// Puts `path` first in the recent files.
    pub fn remember(&mut self, path: &Path) {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        self.recent_files.retain(|p| *p != path);
        self.recent_files.insert(0, path);
        self.recent_files.truncate(RECENT_FILES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_are_unique_and_bounded() {
        let mut p = Prefs::default();
        for i in 0..15 {
            p.remember(Path::new(&format!("/nonexistent/{i}.ron")));
        }
        p.remember(Path::new("/nonexistent/3.ron"));
        assert_eq!(p.recent_files.len(), RECENT_FILES);
        assert_eq!(p.recent_files[0], Path::new("/nonexistent/3.ron"));
        assert_eq!(
            p.recent_files
                .iter()
                .filter(|f| f.ends_with("3.ron"))
                .count(),
            1
        );
    }
}
