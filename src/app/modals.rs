//! The dialogs in front of the window: the unsaved-changes question, one path
//! prompt shared by Open and Save As, the recovery offer, the question before
//! the log is cleared, and the list of keyboard shortcuts. Their buttons push
//! [`AppCommand`]s like any view.

use std::path::{Path, PathBuf};

use egui::Key;

use super::files::{Pick, export_words};
use super::{App, AppCommand, PendingAction, visible_text};
use crate::export::Format;

/// The dialog in front of the window, if any.
#[derive(Clone, Debug)]
pub(super) enum Modal {
    Unsaved(PendingAction),
    /// A typed path, with the system's dialog beside it where there is one.
    Path(PathPrompt),
    Recovery {
        original: Option<PathBuf>,
    },
    Shortcuts,
    /// Clearing the session's log loses its recording: asked first.
    ClearLog,
    /// An export's file exists: replaced only when the person says so.
    ReplaceExport {
        format: Format,
        path: PathBuf,
    },
}

/// The path box: what is typed, and what the path is for.
#[derive(Clone, Debug)]
pub(super) struct PathPrompt {
    pub path: String,
    pub purpose: PromptFor,
}

/// What a path prompt's path is for.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum PromptFor {
    /// A session file to open.
    Open,
    /// Where to save the session, then what to do.
    SaveAs { then: Option<PendingAction> },
    /// Where to write an export of the session.
    Export(Format),
}

/// The words of a path prompt for its purpose.
struct PromptWords {
    id: &'static str,
    heading: String,
    field_hint: String,
    go: &'static str,
    go_hint: &'static str,
    browse_hint: &'static str,
    cancel_hint: &'static str,
}

impl PromptFor {
    fn words(&self) -> PromptWords {
        match self {
            PromptFor::Open => PromptWords {
                id: "open path",
                heading: "Open a session".into(),
                field_hint: "The path of a .ron session file".into(),
                go: "Open",
                go_hint: "Open this file",
                browse_hint: "Pick the file in your system's file dialog",
                cancel_hint: "Open nothing",
            },
            PromptFor::SaveAs { .. } => PromptWords {
                id: "save as path",
                heading: "Save the session as".into(),
                field_hint: "Where to save: a path ending in .ron".into(),
                go: "Save here",
                go_hint: "Save to this file",
                browse_hint: "Pick the place in your system's file dialog",
                cancel_hint: "Save nothing",
            },
            PromptFor::Export(format) => {
                let (label, extension, holds) = export_words(*format);
                PromptWords {
                    id: "export path",
                    heading: format!("Export as {label}"),
                    field_hint: format!("Where to write {holds}: a path ending in .{extension}"),
                    go: "Export here",
                    go_hint: "Write the export to this file (an existing file is replaced only when you say so)",
                    browse_hint: "Pick the place in your system's file dialog",
                    cancel_hint: "Export nothing",
                }
            }
        }
    }

    /// The command for the typed `path`.
    fn command(&self, path: &str) -> AppCommand {
        match self {
            PromptFor::Open => AppCommand::OpenFile(PathBuf::from(path.trim())),
            PromptFor::SaveAs { then } => {
                let mut target = PathBuf::from(path.trim());
                if target.extension().is_none() {
                    target.set_extension("ron");
                }
                AppCommand::SaveTo {
                    path: target,
                    then: then.clone(),
                }
            }
            PromptFor::Export(format) => {
                let mut target = PathBuf::from(path.trim());
                if target.extension().is_none() {
                    target.set_extension(export_words(*format).1);
                }
                AppCommand::ExportTo {
                    format: *format,
                    path: target,
                    replace: false,
                }
            }
        }
    }

    /// The system's dialog for this purpose, starting from the typed `path`.
    fn browse(&self, path: &str, sessions_dir: &Path) -> AppCommand {
        match self {
            PromptFor::Open => AppCommand::Browse {
                pick: Pick::Open,
                folder: sessions_dir.to_owned(),
                name: None,
            },
            PromptFor::SaveAs { .. } => AppCommand::Browse {
                pick: Pick::SaveAs,
                folder: sessions_dir.to_owned(),
                name: Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned()),
            },
            PromptFor::Export(format) => AppCommand::Browse {
                pick: Pick::Export(*format),
                folder: Path::new(path.trim())
                    .parent()
                    .filter(|p| p.is_dir())
                    .map_or_else(|| sessions_dir.to_owned(), Path::to_path_buf),
                name: Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned()),
            },
        }
    }
}

impl App {
    /// The dialog in front of the window, if any. A button closes the dialog
    /// and pushes its command; a command may open the next dialog.
    pub(super) fn modals(&mut self, ctx: &egui::Context, commands: &mut Vec<AppCommand>) {
        let Some(modal) = self.modal.clone() else {
            return;
        };
        let mut close = false;
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
                            commands.push(AppCommand::SaveThen(action.clone()));
                        }
                        if ui
                            .button("Don't save")
                            .on_hover_text("Go on and lose the changes")
                            .clicked()
                        {
                            close = true;
                            commands.push(AppCommand::Perform(action.clone()));
                        }
                        if ui.button("Cancel").on_hover_text("Stay here").clicked() {
                            close = true;
                        }
                    });
                });
            }
            Modal::Path(mut prompt) => {
                close = self.path_prompt(ctx, &mut prompt, commands);
                if !close {
                    self.modal = Some(Modal::Path(prompt));
                }
            }
            Modal::ReplaceExport { format, path } => {
                let response =
                    egui::Modal::new(egui::Id::unique("replace export")).show(ctx, |ui| {
                        ui.heading("Replace the file?");
                        ui.label(format!(
                            "{} exists already. Replace it with the {} export?",
                            crate::model::display::escape_controls(&path.display().to_string()),
                            export_words(format).0
                        ));
                        ui.horizontal(|ui| {
                            if ui
                                .button("Replace")
                                .on_hover_text("Write the export over this file")
                                .clicked()
                            {
                                close = true;
                                commands.push(AppCommand::ExportTo {
                                    format,
                                    path: path.clone(),
                                    replace: true,
                                });
                            }
                            if ui
                                .button("Choose another")
                                .on_hover_text("Back to the path, to pick another file")
                                .clicked()
                            {
                                close = true;
                                commands.push(AppCommand::ExportAt {
                                    format,
                                    path: path.clone(),
                                });
                            }
                            if ui
                                .button("Cancel")
                                .on_hover_text("Export nothing, keep the file")
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
                            commands.push(AppCommand::Recover {
                                original: original.clone(),
                            });
                        }
                        if ui
                            .button("Discard")
                            .on_hover_text("Delete the kept copy")
                            .clicked()
                        {
                            close = true;
                            commands.push(AppCommand::DiscardRecovery);
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
                            commands.push(AppCommand::ClearLogNow);
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
                        for shortcut in super::chrome::shortcuts() {
                            ui.monospace(ctx.format_shortcut(&shortcut.keys));
                            ui.label(shortcut.what);
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
            self.modal = None;
        }
    }

    /// The path box shared by Open and Save As: a typed path (Enter goes),
    /// the system's dialog beside it, Cancel. True when it closes.
    fn path_prompt(
        &mut self,
        ctx: &egui::Context,
        prompt: &mut PathPrompt,
        commands: &mut Vec<AppCommand>,
    ) -> bool {
        let words = prompt.purpose.words();
        let mut close = false;
        egui::Modal::new(egui::Id::unique(words.id)).show(ctx, |ui| {
            ui.heading(&words.heading);
            let label = ui.label("Path");
            // Read before the field: a single-line field takes the
            // Enter that ends its editing.
            let enter_pressed = ui.input(|i| i.key_pressed(Key::Enter));
            let field = ui
                .add(
                    // A path from a file name may hold controls: drawn as marks.
                    egui::TextEdit::singleline(&mut prompt.path)
                        .desired_width(420.0)
                        .layouter(&mut visible_text::layouter(false)),
                )
                .labelled_by(label.id)
                .on_hover_text(&words.field_hint);
            // Before focus is asked back below: a field that gave up
            // its focus to Enter has it again after that.
            let enter = field.lost_focus() && enter_pressed;
            if ui.memory(|m| m.focused().is_none()) {
                field.request_focus();
            }
            if let Some(note) = &self.dialog_note {
                ui.label(egui::RichText::new(crate::model::display::escape_controls(note)).weak());
            }
            ui.horizontal(|ui| {
                if ui.button(words.go).on_hover_text(words.go_hint).clicked() || enter {
                    close = true;
                    commands.push(prompt.purpose.command(&prompt.path));
                }
                if self.config.native_dialogs
                    && ui
                        .button("Browse…")
                        .on_hover_text(words.browse_hint)
                        .clicked()
                {
                    commands.push(
                        prompt
                            .purpose
                            .browse(&prompt.path, &self.config.sessions_dir),
                    );
                }
                if ui
                    .button("Cancel")
                    .on_hover_text(words.cancel_hint)
                    .clicked()
                {
                    close = true;
                }
            });
        });
        close
    }
}
