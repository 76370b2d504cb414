//! The session's library of named payloads, kept in order: a window to load
//! one into the composer, rename, delete (with undo) and move entries up or
//! down. Every change goes into the session, so Save keeps it.

use egui::{RichText, Ui};

use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::session::LibraryItem;

/// The library window's state.
#[derive(Default)]
pub struct LibraryEditor {
    pub open: bool,
    /// The entry being renamed, and the name as typed.
    renaming: Option<(usize, String)>,
    /// The last entry deleted, with its place, for Undo.
    deleted: Option<(usize, LibraryItem)>,
    /// Cancel was pressed while renaming.
    cancel_rename: bool,
}

/// Why a name is not taken.
pub fn name_problem(library: &[LibraryItem], index: usize, name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        return Some("give it a name".into());
    }
    if name.chars().count() > 80 {
        return Some("80 characters at most".into());
    }
    if name.chars().any(char::is_control) {
        return Some("no line breaks or control characters".into());
    }
    library
        .iter()
        .enumerate()
        .any(|(i, item)| i != index && item.name == name)
        .then(|| format!("\"{}\" is taken: names are unique", escape_controls(name)))
}

/// Renames entry `index`; the reason when the name cannot be used.
pub fn rename(library: &mut [LibraryItem], index: usize, name: &str) -> Result<(), String> {
    if index >= library.len() {
        return Err("that entry is gone".into());
    }
    if let Some(problem) = name_problem(library, index, name) {
        return Err(problem);
    }
    library[index].name = name.trim().to_owned();
    Ok(())
}

/// Moves entry `from` to place `to` (the others keep their order); false
/// when either is out of range or they are the same.
pub fn move_to(library: &mut Vec<LibraryItem>, from: usize, to: usize) -> bool {
    if from >= library.len() || to >= library.len() || from == to {
        return false;
    }
    let item = library.remove(from);
    library.insert(to, item);
    true
}

/// A button whose screen-reader name says what it does to which entry.
fn row_button(ui: &mut Ui, enabled: bool, icon: &str, name: String, tip: &str) -> bool {
    let response = ui
        .add_enabled(enabled, egui::Button::new(icon).small())
        .on_hover_text(tip);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, &name));
    response.clicked()
}

impl App {
    /// The library window, when open.
    pub(super) fn library_window(&mut self, ctx: &egui::Context, commands: &mut Vec<AppCommand>) {
        if !self.library_editor.open {
            return;
        }
        let mut open = true;
        egui::Window::new("📚 Library")
            .open(&mut open)
            .default_width(420.0)
            .resizable(true)
            .collapsible(false)
            .show(ctx, |ui| self.library_ui(ui, commands));
        self.library_editor.open &= open;
    }

    fn library_ui(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        ui.label(
            RichText::new("Named payloads of this session, in order; Save keeps them.").weak(),
        );
        let can_load = !self.doc.endpoints.is_empty();
        // Repeat: from the selected endpoint, with its composer's repeat
        // settings; its progress and Stop show here and in the composer.
        let selected = self.doc.endpoints.get(self.doc.selected);
        let selected_id = selected.map(|e| e.id);
        let running = selected_id.and_then(|id| self.repeats.of(id));
        let can_repeat = selected.is_some_and(|e| e.state.is_up()) && running.is_none();
        if let (Some(id), Some(repeat)) = (selected_id, running) {
            ui.horizontal_wrapped(|ui| {
                // Stop first, so the growing round number never moves it.
                if ui.button("⏹ Stop repeat").clicked() {
                    commands.push(AppCommand::StopRepeat(id));
                }
                ui.label(format!(
                    "🔁 Repeating {}: {}",
                    repeat.what,
                    repeat.progress(std::time::Instant::now())
                ));
            });
        }
        let repeat_tip = match selected {
            None => "Add an endpoint first".to_owned(),
            Some(e) if !e.state.is_up() => "Start the selected endpoint first".to_owned(),
            Some(_) if running.is_some() => {
                "The selected endpoint repeats already: stop it first".to_owned()
            }
            Some(e) => {
                let settings = self.composer.repeat;
                let how_many = match settings.rounds() {
                    Some(n) => format!("{n} times"),
                    None => "until stopped".to_owned(),
                };
                format!(
                    "Send it from \"{}\" {}, {how_many} (the composer's repeat settings)",
                    escape_controls(e.form.name.trim()),
                    super::repeat::every_text(settings.interval())
                )
            }
        };
        let library = &self.doc.session.library;
        let len = library.len();
        if len == 0 {
            ui.label("The library is empty: add the composer's payload from the Library menu.");
        }
        let error = ui.visuals().error_fg_color;
        let editor = &mut self.library_editor;
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                egui::Grid::new("library entries")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (i, item) in library.iter().enumerate() {
                            let name = escape_controls(&item.name);
                            let editing = matches!(&editor.renaming, Some((r, _)) if *r == i);
                            match &mut editor.renaming {
                                Some((r, typed)) if *r == i => {
                                    ui.vertical(|ui| {
                                        let label = ui.label(format!("New name for \"{name}\""));
                                        let field = ui
                                            .add(
                                                egui::TextEdit::singleline(typed)
                                                    .desired_width(200.0),
                                            )
                                            .labelled_by(label.id);
                                        let problem = name_problem(library, i, typed);
                                        if let Some(p) = &problem {
                                            ui.colored_label(error, format!("⚠ {p}"));
                                        }
                                        let enter = field.lost_focus()
                                            && ui.input(|i| i.key_pressed(egui::Key::Enter));
                                        ui.horizontal(|ui| {
                                            let ok = ui
                                                .add_enabled(
                                                    problem.is_none(),
                                                    egui::Button::new("✔ Rename"),
                                                )
                                                .clicked();
                                            if (ok || enter) && problem.is_none() {
                                                commands.push(AppCommand::LibraryRename {
                                                    index: i,
                                                    name: typed.clone(),
                                                });
                                            }
                                            if ui.button("✖ Cancel").clicked() {
                                                editor.cancel_rename = true;
                                            }
                                        });
                                    });
                                }
                                _ => {
                                    ui.label(RichText::new(name.as_ref()).strong())
                                        .on_hover_text(crate::model::payload::preview(
                                            item.payload.bytes(),
                                            80,
                                        ));
                                }
                            }
                            ui.horizontal(|ui| {
                                if row_button(
                                    ui,
                                    can_load,
                                    "↩",
                                    format!("Load \"{name}\""),
                                    "Put it in the selected endpoint's composer",
                                ) {
                                    commands.push(AppCommand::LibraryLoad(i));
                                }
                                if row_button(
                                    ui,
                                    can_repeat,
                                    "🔁",
                                    format!("Repeat \"{name}\""),
                                    &repeat_tip,
                                ) {
                                    commands.push(AppCommand::RepeatLibrary(i));
                                }
                                if row_button(
                                    ui,
                                    i > 0,
                                    "⬆",
                                    format!("Move \"{name}\" up"),
                                    "Move up",
                                ) {
                                    commands.push(AppCommand::LibraryMove { from: i, to: i - 1 });
                                }
                                if row_button(
                                    ui,
                                    i + 1 < len,
                                    "⬇",
                                    format!("Move \"{name}\" down"),
                                    "Move down",
                                ) {
                                    commands.push(AppCommand::LibraryMove { from: i, to: i + 1 });
                                }
                                if row_button(
                                    ui,
                                    !editing,
                                    "✏",
                                    format!("Rename \"{name}\""),
                                    "Rename",
                                ) {
                                    editor.renaming = Some((i, item.name.clone()));
                                }
                                if row_button(
                                    ui,
                                    true,
                                    "🗑",
                                    format!("Delete \"{name}\""),
                                    "Delete (Undo brings it back)",
                                ) {
                                    commands.push(AppCommand::LibraryDelete(i));
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
        if std::mem::take(&mut editor.cancel_rename) {
            editor.renaming = None;
        }
        if let Some((_, item)) = &editor.deleted {
            ui.horizontal(|ui| {
                ui.label(format!("Deleted \"{}\"", escape_controls(&item.name)));
                if ui.button("↶ Undo delete").clicked() {
                    commands.push(AppCommand::LibraryUndoDelete);
                }
            });
        }
    }

    /// The library's entries, in order.
    pub fn library(&self) -> &[LibraryItem] {
        &self.doc.session.library
    }

    pub(super) fn library_load(&mut self, index: usize) {
        if let Some(item) = self.doc.session.library.get(index) {
            let template = item.payload.bytes().to_vec();
            self.composer.load_template(&template);
        }
    }

    pub(super) fn library_move(&mut self, from: usize, to: usize) {
        if move_to(&mut self.doc.session.library, from, to) {
            self.library_editor.renaming = None;
            self.doc.touch();
        }
    }

    pub(super) fn library_rename(&mut self, index: usize, name: &str) {
        match rename(&mut self.doc.session.library, index, name) {
            Ok(()) => {
                self.library_editor.renaming = None;
                self.doc.touch();
            }
            Err(why) => self.notify(true, format!("Not renamed: {why}")),
        }
    }

    pub(super) fn library_delete(&mut self, index: usize) {
        if index < self.doc.session.library.len() {
            let item = self.doc.session.library.remove(index);
            self.library_editor.deleted = Some((index, item));
            self.library_editor.renaming = None;
            self.doc.touch();
        }
    }

    pub(super) fn library_undo_delete(&mut self) {
        let Some((at, mut item)) = self.library_editor.deleted.take() else {
            return;
        };
        let library = &mut self.doc.session.library;
        // The name may have been taken meanwhile: keep both.
        if library.iter().any(|i| i.name == item.name) {
            item.name = format!("{} (restored)", item.name);
        }
        library.insert(at.min(library.len()), item);
        self.doc.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;

    fn lib(names: &[&str]) -> Vec<LibraryItem> {
        names
            .iter()
            .map(|n| LibraryItem {
                name: (*n).into(),
                payload: Payload::from(*n),
            })
            .collect()
    }

    fn names(l: &[LibraryItem]) -> Vec<&str> {
        l.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn entries_move_and_rename_within_bounds() {
        let mut l = lib(&["a", "b", "c"]);
        assert!(move_to(&mut l, 2, 0));
        assert_eq!(names(&l), ["c", "a", "b"]);
        assert!(move_to(&mut l, 0, 1));
        assert_eq!(names(&l), ["a", "c", "b"]);
        assert!(!move_to(&mut l, 0, 3));
        assert!(!move_to(&mut l, 5, 0));
        assert!(!move_to(&mut l, 1, 1));
        assert_eq!(names(&l), ["a", "c", "b"]);

        assert_eq!(rename(&mut l, 1, "  see  "), Ok(()));
        assert_eq!(names(&l), ["a", "see", "b"]);
        // Its own name again is fine; another entry's is not.
        assert_eq!(rename(&mut l, 1, "see"), Ok(()));
        assert!(rename(&mut l, 1, "a").unwrap_err().contains("taken"));
        assert!(rename(&mut l, 1, "   ").is_err());
        assert!(rename(&mut l, 1, "two\nlines").is_err());
        assert!(rename(&mut l, 1, &"x".repeat(81)).is_err());
        assert!(rename(&mut l, 9, "nine").is_err());
        assert_eq!(names(&l), ["a", "see", "b"]);
    }
}
