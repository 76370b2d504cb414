//! The sidebar: the sessions folder (the built-in library), recent files, and
//! the open session's notes.

use super::{App, PendingAction};

impl App {
    pub(super) fn sidebar_ui(&mut self, ui: &mut egui::Ui) {
        ui.set_min_width(ui.available_width());
        egui::ScrollArea::vertical()
            .id_salt("sidebar scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.lesson_ui(ui);
                ui.heading("Sessions").on_hover_text(format!(
                    "The session files in {}",
                    self.config.sessions_dir.display()
                ));
                if self.sessions.is_empty() {
                    ui.label(format!(
                        "No session files in {}",
                        self.config.sessions_dir.display()
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
                            ui.label(egui::RichText::new(&listed.group).strong());
                        }
                    }
                    let is_current = current == Some(listed.path.as_path());
                    let hint = if listed.summary.is_empty() {
                        format!("Open {}", listed.path.display())
                    } else {
                        format!("{}\n\nOpen {}", listed.summary, listed.path.display())
                    };
                    if ui
                        .selectable_label(is_current, &listed.name)
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
                    self.files.list(self.config.sessions_dir.clone());
                }

                if !self.prefs.recent_files.is_empty() {
                    ui.add_space(8.0);
                    ui.separator();
                    ui.heading("Recent");
                    for path in &self.prefs.recent_files {
                        let name = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        if ui
                            .selectable_label(false, name)
                            .on_hover_text(format!("Open {}", path.display()))
                            .clicked()
                        {
                            open = Some(path.clone());
                        }
                    }
                }
                if let Some(path) = open {
                    self.request(PendingAction::Open(path));
                }

                ui.add_space(8.0);
                ui.separator();
                let label = ui.heading("Notes");
                let notes = ui
                    .add(
                        egui::TextEdit::multiline(&mut self.doc.session.notes)
                            .hint_text("What this session is for, how to use it")
                            .desired_rows(6)
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id)
                    .on_hover_text("Notes are saved with the session");
                if notes.changed() {
                    self.doc.touch();
                }
            });
    }
}
