//! The session's way through the window: new, open, save and save as, the
//! unsaved-changes question before a session is replaced, and templates (the
//! program's shipped sessions, which are never written over).

use std::path::{Path, PathBuf};

use super::document::Document;
use super::files::{Pick, export_words};
use super::modals::{Modal, PathPrompt, PromptFor};
use super::{APP_ID, App, PendingAction};
use crate::engine::EndpointId;
use crate::export::Format;
use crate::model::{KindTag, Session};

impl App {
    /// Does `action`, first asking about unsaved changes.
    pub(super) fn request(&mut self, action: PendingAction) {
        if self.doc.is_dirty() {
            self.modal = Some(Modal::Unsaved(action));
        } else {
            self.perform(action);
        }
    }

    pub(super) fn perform(&mut self, action: PendingAction) {
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
            PendingAction::Open(path) => self.load_file(path),
            PendingAction::Quit => {
                self.allow_close = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    pub(super) fn loaded(
        &mut self,
        path: PathBuf,
        session: Session,
        recovered_from: Option<Option<PathBuf>>,
    ) {
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
        self.composer.load_template(&bytes);
    }

    /// Whether `path` is one of the program's shipped sessions: a template,
    /// never overwritten ([`is_shipped`]).
    fn is_template(&self, path: &Path) -> bool {
        is_shipped(&self.config.sessions_dir, path)
    }

    /// Saves to the document's file, or asks for one. A template is never
    /// written over: its Save is a Save As in the person's own folder.
    pub(super) fn save(&mut self, then: Option<PendingAction>) {
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

    pub(super) fn open_save_as(&mut self, then: Option<PendingAction>) {
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
        self.modal = Some(Modal::Path(PathPrompt {
            path: suggested.to_string_lossy().into_owned(),
            purpose: PromptFor::SaveAs { then },
        }));
        self.pick_file(Pick::SaveAs, folder, name);
    }

    pub(super) fn save_to(&mut self, path: PathBuf, then: Option<PendingAction>) {
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
                self.write_session(path, session, self.doc.changes, make_folder);
            }
            Err(e) => self.notify(true, format!("Not saved: {e}")),
        }
    }

    pub(super) fn saved(&mut self, path: PathBuf, change: u64) {
        self.doc.path = Some(path.clone());
        self.doc.saved_at_change = change;
        // The person's own copy now, saved as any other file.
        self.doc.template = false;
        self.prefs.remember(&path);
        self.notify(false, format!("Saved {}", path.display()));
        // The recovery copy is older than what is on disk now.
        self.autosaved_change = change;
        self.discard_recovery_in_background();
        if path.starts_with(&self.config.sessions_dir) {
            self.list_sessions();
        }
        if let Some(action) = self.after_save.take() {
            self.perform(action);
        }
    }

    /// Asks for a session file: the path prompt, and the system's dialog.
    pub(super) fn open_dialog(&mut self) {
        let start = self
            .doc
            .path
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.config.sessions_dir.clone());
        self.modal = Some(Modal::Path(PathPrompt {
            path: format!("{}/", start.display()),
            purpose: PromptFor::Open,
        }));
        // The system's dialog at once where there is one; the box stays beside
        // it for a typed path.
        self.pick_file(Pick::Open, start, None);
    }

    /// The export's path prompt for `format`, at `path` or at a suggested
    /// file: beside the session's file, or (for a new session or a template,
    /// whose folder is the program's) in the person's own folder.
    pub(super) fn open_export(&mut self, format: Format, path: Option<PathBuf>) {
        let extension = export_words(format).1;
        let path = path.unwrap_or_else(|| {
            let (stem, _) = self.export_names();
            let folder = match &self.doc.path {
                Some(p) if !self.doc.template => p.parent().map(Path::to_path_buf),
                _ => None,
            }
            .or_else(|| Some(self.own_sessions_dir()).filter(|d| d.is_dir()))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| self.config.sessions_dir.clone());
            folder.join(format!("{stem}.{extension}"))
        });
        let folder = path
            .parent()
            .filter(|p| p.is_dir())
            .map_or_else(|| self.config.sessions_dir.clone(), Path::to_path_buf);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.modal = Some(Modal::Path(PathPrompt {
            path: path.to_string_lossy().into_owned(),
            purpose: PromptFor::Export(format),
        }));
        self.pick_file(Pick::Export(format), folder, name);
    }

    /// The name an export gives the session (its file's name, as `sockbench
    /// export` takes it) and the endpoint a Python export is of (the
    /// selected one, as the Python tab shows it).
    pub(super) fn export_names(&self) -> (String, Option<String>) {
        let name = self
            .doc
            .path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "untitled".into());
        let endpoint = self
            .doc
            .endpoints
            .get(self.doc.selected)
            .map(|e| e.form.name.trim().to_owned());
        (name, endpoint)
    }
}

/// The sessions shipped with the program, relative to its sessions folder
/// (`/`-separated). Only these are templates: a file a person saves into the
/// folder is theirs, saved over like any other.
pub(crate) const SHIPPED_SESSIONS: &[&str] = &[
    "http-get.ron",
    "line-chat.ron",
    "recorded-http.ron",
    "scheduled-chat.ron",
    "tcp-echo-pair.ron",
    "tls-echo-pair.ron",
    "udp-pair.ron",
    "lessons/1-first-tcp-echo.ron",
    "lessons/2-tcp-is-a-stream.ron",
    "lessons/3-udp-has-no-connection.ron",
    "lessons/4-when-things-fail.ron",
    "lessons/5-text-protocol-by-hand.ron",
];

/// Whether `path` is a shipped session in `sessions_dir` (one of
/// [`SHIPPED_SESSIONS`]), after resolving links and `..`.
pub(crate) fn is_shipped(sessions_dir: &Path, path: &Path) -> bool {
    let dir = std::fs::canonicalize(sessions_dir).unwrap_or_else(|_| sessions_dir.to_owned());
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let Ok(relative) = path.strip_prefix(&dir) else {
        return false;
    };
    let parts: Vec<&str> = relative
        .components()
        .map(|c| c.as_os_str().to_str().unwrap_or("\u{fffd}"))
        .collect();
    SHIPPED_SESSIONS.contains(&parts.join("/").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file a person saved into the sessions folder is not a template;
    /// the shipped ones are.
    #[test]
    fn only_shipped_sessions_are_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lessons")).unwrap();
        for name in [
            "http-get.ron",
            "mine.ron",
            "lessons/1-first-tcp-echo.ron",
            "lessons/mine.ron",
        ] {
            std::fs::write(dir.path().join(name), "()").unwrap();
        }
        let shipped = |name: &str| is_shipped(dir.path(), &dir.path().join(name));
        assert!(shipped("http-get.ron"));
        assert!(shipped("lessons/1-first-tcp-echo.ron"));
        assert!(shipped("lessons/../http-get.ron"));
        assert!(!shipped("mine.ron"));
        assert!(!shipped("lessons/mine.ron"));
        assert!(!is_shipped(
            dir.path(),
            Path::new("/elsewhere/http-get.ron")
        ));
    }

    /// The compiled-in list is the repository's sessions folder, file for file.
    #[test]
    fn the_shipped_list_matches_the_sessions_folder() {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &format!("{name}/"), out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions"),
            "",
            &mut found,
        );
        found.sort();
        let mut listed: Vec<String> = SHIPPED_SESSIONS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
