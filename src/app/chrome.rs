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
    let none = Modifiers::NONE;
    let mut table = vec![
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
        // As a debugger's Run and Stop.
        shortcut(shift, Key::F5, "stop every endpoint", AppCommand::StopAll),
        shortcut(
            none,
            Key::F5,
            "start every endpoint (servers first)",
            AppCommand::StartAll,
        ),
        shortcut(
            none,
            Key::F1,
            "this list of shortcuts",
            AppCommand::ShowShortcuts,
        ),
    ];
    const DIGITS: [(Key, &str); 9] = [
        (Key::Num1, "send library entry 1 from the selected endpoint"),
        (Key::Num2, "send library entry 2"),
        (Key::Num3, "send library entry 3"),
        (Key::Num4, "send library entry 4"),
        (Key::Num5, "send library entry 5"),
        (Key::Num6, "send library entry 6"),
        (Key::Num7, "send library entry 7"),
        (Key::Num8, "send library entry 8"),
        (Key::Num9, "send library entry 9"),
    ];
    for (entry, (key, what)) in DIGITS.into_iter().enumerate() {
        table.push(shortcut(ctrl, key, what, AppCommand::SendLibrary(entry)));
    }
    table
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

    /// A dropped file: on the composer, or any file but a .ron session, it
    /// loads into the selected endpoint's composer; a .ron file elsewhere
    /// opens as a session (after the unsaved-changes question).
    pub(super) fn dropped_files_ui(&mut self, ctx: &egui::Context, commands: &mut Vec<AppCommand>) {
        let (dropped, pointer): (Vec<PathBuf>, Option<egui::Pos2>) = ctx.input(|i| {
            (
                i.raw
                    .dropped_files
                    .iter()
                    .map(|f| f.path().to_path_buf())
                    .collect(),
                i.pointer.latest_pos(),
            )
        });
        let Some(path) = dropped.into_iter().next() else {
            return;
        };
        let on_composer = self
            .composer_rect
            .zip(pointer)
            .is_some_and(|(rect, at)| rect.contains(at));
        let session = path.extension().is_some_and(|x| x == "ron");
        let has_composer = self
            .doc
            .endpoints
            .get(self.doc.selected)
            .is_some_and(|e| e.kind() != crate::model::KindTag::Relay);
        if session && !on_composer {
            commands.push(AppCommand::OpenFile(path));
        } else if has_composer {
            commands.push(AppCommand::LoadPayloadFile(path));
        } else {
            self.notify(
                true,
                format!(
                    "{} is not a session file: only .ron files open here (add an endpoint to send a file from its composer)",
                    path.display()
                ),
            );
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
                ui.menu_button("Export…", |ui| {
                    for format in super::files::EXPORT_FORMATS {
                        let (label, _, holds) = super::files::export_words(format);
                        if ui
                            .button(format!("{label}…"))
                            .on_hover_text(format!(
                                "Write {holds} to a file, as `sockbench export --to {}` does",
                                format.name()
                            ))
                            .clicked()
                        {
                            commands.push(AppCommand::Export(format));
                        }
                    }
                })
                .response
                .on_hover_text("Write the session's log or an endpoint's program to a file");
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
                ui.separator();
                self.log_budget_ui(ui);
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .add(
                        egui::Button::new("Keyboard shortcuts")
                            .shortcut_text(keys(&AppCommand::ShowShortcuts)),
                    )
                    .on_hover_text("List the keyboard shortcuts")
                    .clicked()
                {
                    commands.push(AppCommand::ShowShortcuts);
                }
            });
        });
    }

    /// The toolbar. Its buttons come first, at a fixed place: the session's
    /// title (which grows with its name and the unsaved mark) follows them,
    /// and the notices sit below the toolbar, so nothing moves a button
    /// between the moment it is aimed at and the click.
    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let ctx = ui.ctx().clone();
        let hint = |what: &str, command: &AppCommand| match keys_of(&ctx, command) {
            keys if keys.is_empty() => what.to_owned(),
            keys => format!("{what} ({keys})"),
        };
        ui.horizontal(|ui| {
            let any = !self.doc.endpoints.is_empty();
            if ui
                .add_enabled(any, egui::Button::new("▶ Start all"))
                .on_hover_text(hint(
                    "Start every endpoint: servers first, then the clients",
                    &AppCommand::StartAll,
                ))
                .clicked()
            {
                commands.push(AppCommand::StartAll);
            }
            let running = self.doc.endpoints.iter().any(|e| e.state.is_running());
            if ui
                .add_enabled(running, egui::Button::new("⏹ Stop all"))
                .on_hover_text(hint(
                    "Stop every endpoint, closing connections in order",
                    &AppCommand::StopAll,
                ))
                .clicked()
            {
                commands.push(AppCommand::StopAll);
            }
            ui.separator();
            if ui
                .button("💾 Save")
                .on_hover_text(hint("Save the session", &AppCommand::Save))
                .clicked()
            {
                commands.push(AppCommand::Save);
            }
            ui.separator();
            ui.add(egui::Label::new(egui::RichText::new(self.doc.title()).heading()).truncate());
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

    /// The log budget preference: payload bytes kept in memory, and whether
    /// the rest spills to disk or is dropped. A session that sets its own
    /// `log_budget` keeps it.
    fn log_budget_ui(&mut self, ui: &mut egui::Ui) {
        use crate::model::budget::{Overflow, exact_size_text, parse_size};
        let label = ui.label("Log memory");
        let field = ui
            .add(egui::TextEdit::singleline(&mut self.budget_text).desired_width(90.0))
            .labelled_by(label.id)
            .on_hover_text(
                "Payload bytes the log keeps in memory (256 MiB, 1 GiB, 0); beyond them, the choice below",
            );
        let parsed = parse_size(&self.budget_text);
        match &parsed {
            Ok(memory) => {
                if field.changed() {
                    self.prefs.log_budget.memory = *memory;
                }
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {e}"));
            }
        }
        if field.lost_focus() && parsed.is_ok() {
            self.budget_text = exact_size_text(self.prefs.log_budget.memory);
        }
        ui.radio_value(
            &mut self.prefs.log_budget.overflow,
            Overflow::Spill,
            "Spill the rest to disk",
        )
        .on_hover_text(
            "Bytes beyond the budget go to a file in the cache folder; saving reads them back",
        );
        ui.radio_value(
            &mut self.prefs.log_budget.overflow,
            Overflow::Drop,
            "Drop the rest",
        )
        .on_hover_text(
            "Bytes beyond the budget are not kept: rows keep their length and first bytes",
        );
        if let Some(own) = self.doc.session.log_budget {
            ui.label(format!(
                "This session sets its own: {}, {}",
                exact_size_text(own.memory),
                own.overflow.word()
            ));
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
                let t = self.doc.totals_of(e.id);
                (
                    acc.0 + t.sent,
                    acc.1 + t.sent_bytes,
                    acc.2 + t.received,
                    acc.3 + t.received_bytes,
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
            let counters = self.doc.session.log.counters();
            let size = crate::model::budget::size_text;
            if counters.spilled_bytes > 0 {
                ui.separator();
                ui.label(format!(
                    "log: {} spilled to disk ({} rows)",
                    size(counters.spilled_bytes),
                    counters.spilled_entries
                ))
                .on_hover_text(
                    "Payload bytes beyond the log's memory budget, kept in a file on disk (View ▸ Log memory)",
                );
            }
            if counters.dropped_bytes > 0 {
                ui.separator();
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "log: {} dropped ({} rows)",
                        size(counters.dropped_bytes),
                        counters.dropped_entries
                    ),
                )
                .on_hover_text(
                    "Payload bytes beyond the log's memory budget, not kept: their rows keep length and first bytes (View ▸ Log memory)",
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// egui matches a shortcut without Shift on a press with Shift: an entry
    /// listed after one that matches its keys would never run.
    #[test]
    fn every_shortcut_is_the_first_match_of_its_own_keys() {
        let table = shortcuts();
        for (i, s) in table.iter().enumerate() {
            let first = table
                .iter()
                .position(|t| {
                    t.keys.logical_key == s.keys.logical_key
                        && s.keys.modifiers.matches_logically(t.keys.modifiers)
                })
                .unwrap();
            assert_eq!(
                first, i,
                "{:?} is shadowed by {:?}",
                s.what, table[first].what
            );
        }
    }

    #[test]
    fn every_command_has_one_shortcut_and_one_line() {
        let table = shortcuts();
        for (i, s) in table.iter().enumerate() {
            assert!(
                table[i + 1..]
                    .iter()
                    .all(|t| t.command != s.command && t.what != s.what),
                "{:?} twice",
                s.what
            );
        }
    }
}
