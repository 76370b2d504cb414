//! The sidebar: the sessions folder (the built-in library), recent files, and
//! the open session's notes.

use super::{App, AppCommand, visible_text};
use crate::model::display::{escape_controls, escape_controls_keep_lines};

/// The control and bidi characters of `text` (line feeds aside), each once,
/// as escapes: what the marks in the notes stand for.
fn hidden_characters(text: &str) -> String {
    let mut seen: Vec<char> = Vec::new();
    for c in text.chars() {
        if c != '\n'
            && crate::model::display::is_unsafe_for_display(c)
            && !seen.contains(&c)
            && seen.len() < 12
        {
            seen.push(c);
        }
    }
    let list: String = seen.iter().flat_map(|c| [*c, ' ']).collect();
    escape_controls(list.trim_end()).into_owned()
}

/// A path as a label shows it (a file name is outside text).
fn shown_path(path: &std::path::Path) -> String {
    escape_controls(&path.display().to_string()).into_owned()
}

impl App {
    pub(super) fn sidebar_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        ui.set_min_width(ui.available_width());
        let mut area = egui::ScrollArea::vertical()
            .id_salt("sidebar scroll")
            .auto_shrink([false, false]);
        // A newly opened session (a lesson's first step) is read from the top.
        if std::mem::take(&mut self.sidebar_to_top) {
            area = area.vertical_scroll_offset(0.0);
        }
        area.show(ui, |ui| {
            self.lesson_ui(ui, commands);
            ui.heading("Sessions").on_hover_text(format!(
                "The session files in {}",
                shown_path(&self.config.sessions_dir)
            ));
            if self.sessions.is_empty() {
                ui.label(format!(
                    "No session files in {}",
                    shown_path(&self.config.sessions_dir)
                ));
            }
            let current = self.doc.path.as_deref();
            let mut open = None;
            let mut group: Option<&str> = None;
            for listed in &self.sessions {
                if group != Some(listed.group.as_str()) {
                    group = Some(listed.group.as_str());
                    if !listed.group.is_empty() {
                        ui.add_space(6.0);
                        ui.label(egui::RichText::new(escape_controls(&listed.group)).strong());
                    }
                }
                let is_current = current == Some(listed.path.as_path());
                let hint = if listed.summary.is_empty() {
                    format!("Open {}", shown_path(&listed.path))
                } else {
                    format!(
                        "{}\n\nOpen {}",
                        escape_controls_keep_lines(&listed.summary),
                        shown_path(&listed.path)
                    )
                };
                if ui
                    .selectable_label(is_current, escape_controls(&listed.name))
                    .on_hover_text(hint)
                    .clicked()
                {
                    open = Some(listed.path.clone());
                }
            }
            if ui
                .small_button("⟳ Refresh")
                .on_hover_text("List the sessions folder again")
                .clicked()
            {
                commands.push(AppCommand::RefreshSessions);
            }

            if !self.prefs.recent_files.is_empty() {
                ui.add_space(8.0);
                ui.separator();
                ui.heading("Recent");
                for path in &self.prefs.recent_files {
                    let name = path
                        .file_stem()
                        .map(|s| escape_controls(&s.to_string_lossy()).into_owned())
                        .unwrap_or_default();
                    if ui
                        .selectable_label(false, name)
                        .on_hover_text(format!("Open {}", shown_path(path)))
                        .clicked()
                    {
                        open = Some(path.clone());
                    }
                }
            }
            if let Some(path) = open {
                commands.push(AppCommand::OpenFile(path));
            }

            ui.add_space(8.0);
            ui.separator();
            let label = ui.heading("Notes");
            // Notes come from the file: lines as lines, but controls and bidi
            // characters drawn as marks, never obeyed.
            let mut layouter = visible_text::layouter(true);
            let notes = ui
                .add(
                    egui::TextEdit::multiline(&mut self.doc.session.notes)
                        .hint_text("What this session is for, how to use it")
                        .desired_rows(6)
                        .desired_width(f32::INFINITY)
                        .layouter(&mut layouter),
                )
                .labelled_by(label.id)
                .on_hover_text("Notes are saved with the session");
            if notes.changed() {
                self.doc.touch();
            }
            if visible_text::has_marks(&self.doc.session.notes, true) {
                ui.label(
                    egui::RichText::new(format!(
                        "{} marks a control or bidi character in the notes: {}",
                        visible_text::MARK,
                        hidden_characters(&self.doc.session.notes)
                    ))
                    .weak(),
                );
            }
        });
    }
}
