//! The window's chrome: the menu bar, the toolbar, the notices, the status
//! bar and the keyboard shortcuts. Shortcuts come from one table,
//! [`shortcuts`]: the handler reads it and the Help window lists it, so the
//! two cannot drift apart.

use std::path::PathBuf;

use egui::{Key, KeyboardShortcut, Modifiers};

use super::{App, AppCommand, config};

/// A keyboard shortcut and the command it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Shortcut {
    pub keys: KeyboardShortcut,
    /// What it does, as the Help window says it.
    pub what: &'static str,
    pub command: AppCommand,
}

fn shortcut(modifiers: Modifiers, key: Key, what: &'static str, command: AppCommand) -> Shortcut {
    Shortcut {
        keys: KeyboardShortcut::new(modifiers, key),
        what,
        command,
    }
}

/// Every keyboard shortcut of the window, in the order they are tried: one
/// with Shift comes before the same keys without it (egui lets a shortcut
/// without Shift match a press with Shift).
pub fn shortcuts() -> Vec<Shortcut> {
    let ctrl = Modifiers::COMMAND;
    let shift = Modifiers::SHIFT;
    vec![
        shortcut(ctrl, Key::N, "new session", AppCommand::New),
        shortcut(ctrl, Key::O, "open a session", AppCommand::Open),
        shortcut(ctrl | shift, Key::S, "save as", AppCommand::SaveAs),
        shortcut(ctrl, Key::S, "save", AppCommand::Save),
        shortcut(
            ctrl,
            Key::Enter,
            "send the composer's payload",
            AppCommand::Send,
        ),
        shortcut(ctrl, Key::F, "find in the log", AppCommand::FindInLog),
        shortcut(ctrl, Key::L, "clear the log", AppCommand::ClearLog),
    ]
}

/// The keys of the shortcut that runs `command`, as a menu shows them.
fn keys_of(ctx: &egui::Context, command: &AppCommand) -> String {
    shortcuts()
        .iter()
        .find(|s| s.command == *command)
        .map(|s| ctx.format_shortcut(&s.keys))
        .unwrap_or_default()
}

impl App {
    /// Pushes the commands of the shortcuts pressed this frame (none while a
    /// dialog is open: its keys are its own).
    pub(super) fn shortcuts_ui(&mut self, ctx: &egui::Context, commands: &mut Vec<AppCommand>) {
        if self.modal.is_some() {
            return;
        }
        for s in shortcuts() {
            if ctx.input_mut(|i| i.consume_shortcut(&s.keys)) {
                commands.push(s.command);
            }
        }
    }

    /// A dropped .ron file opens (after the unsaved-changes question).
    pub(super) fn dropped_files_ui(&mut self, ctx: &egui::Context, commands: &mut Vec<AppCommand>) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            if path.extension().is_some_and(|x| x == "ron") {
                commands.push(AppCommand::OpenFile(path));
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

    pub(super) fn menu_bar(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let ctx = ui.ctx().clone();
        let keys = |command: &AppCommand| keys_of(&ctx, command);
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(egui::Button::new("New").shortcut_text(keys(&AppCommand::New)))
                    .on_hover_text("Start an empty session")
                    .clicked()
                {
                    commands.push(AppCommand::New);
                }
                if ui
                    .add(egui::Button::new("Open…").shortcut_text(keys(&AppCommand::Open)))
                    .on_hover_text("Open a session file")
                    .clicked()
                {
                    commands.push(AppCommand::Open);
                }
                if ui
                    .add(egui::Button::new("Save").shortcut_text(keys(&AppCommand::Save)))
                    .on_hover_text("Save the session to its file")
                    .clicked()
                {
                    commands.push(AppCommand::Save);
                }
                if ui
                    .add(egui::Button::new("Save As…").shortcut_text(keys(&AppCommand::SaveAs)))
                    .on_hover_text("Save the session to a new file")
                    .clicked()
                {
                    commands.push(AppCommand::SaveAs);
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
                            commands.push(AppCommand::OpenFile(path));
                        }
                    }
                });
                ui.separator();
                if ui.button("Quit").on_hover_text("Close sockbench").clicked() {
                    commands.push(AppCommand::Quit);
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
                    commands.push(AppCommand::ShowShortcuts);
                }
            });
        });
    }

    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            ui.heading(self.doc.title());
            ui.separator();
            let any = !self.doc.endpoints.is_empty();
            if ui
                .add_enabled(any, egui::Button::new("▶ Start all"))
                .on_hover_text("Start every endpoint: servers first, then the clients")
                .clicked()
            {
                commands.push(AppCommand::StartAll);
            }
            let running = self.doc.endpoints.iter().any(|e| e.state.is_running());
            if ui
                .add_enabled(running, egui::Button::new("⏹ Stop all"))
                .on_hover_text("Stop every endpoint, closing connections in order")
                .clicked()
            {
                commands.push(AppCommand::StopAll);
            }
            ui.separator();
            if ui
                .button("💾 Save")
                .on_hover_text("Save the session (Ctrl+S)")
                .clicked()
            {
                commands.push(AppCommand::Save);
            }
        });
    }

    pub(super) fn notices_ui(&mut self, ui: &mut egui::Ui) {
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

    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
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
}
