//! The lesson panel: a lesson's steps, each with a checkpoint that turns green
//! when the real event happens, and how far the learner has come.

use egui::{Color32, RichText, Ui};

use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::lesson::LessonAction;

impl App {
    /// Starts the lesson over: every endpoint stops at once, the log and the
    /// ticked steps go, so no checkpoint counts an earlier run's events.
    pub(super) fn restart_lesson(&mut self) {
        self.stop_everything();
        self.doc.session.log.clear();
        self.doc.log_changed();
        self.doc.ticked.clear();
        self.log_view.selected = None;
        self.lesson_cache = None;
        self.sidebar_to_top = true;
    }

    /// A step's button: enabled while the endpoint it acts on runs.
    fn lesson_action_ui(
        &mut self,
        ui: &mut Ui,
        action: &LessonAction,
        commands: &mut Vec<AppCommand>,
    ) {
        match action {
            LessonAction::PauseReads { endpoint, millis } => {
                let target = self
                    .doc
                    .endpoints
                    .iter()
                    .position(|e| e.form.name == *endpoint)
                    .map(|i| {
                        let e = &self.doc.endpoints[i];
                        (i, e.state.is_up() && !e.peers.is_empty())
                    });
                let enabled = target.is_some_and(|(_, up)| up);
                let button = ui
                    .add_enabled(enabled, egui::Button::new(action.label()).small())
                    .on_hover_text(
                        "Its program calls no recv() meanwhile: what arrives waits in the \
                         kernel's receive buffer",
                    )
                    .on_disabled_hover_text(format!(
                        "Start \"{}\" and connect to it first",
                        escape_controls(endpoint)
                    ));
                if button.clicked()
                    && let Some((index, _)) = target
                {
                    commands.push(AppCommand::PauseReads {
                        index,
                        pause: std::time::Duration::from_millis(u64::from(*millis)),
                    });
                }
            }
        }
    }

    /// Shows the open session's lesson, if it has one.
    pub(super) fn lesson_ui(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        let Some(lesson) = self.doc.session.lesson.clone() else {
            return;
        };
        let key = (
            self.doc.session.log.generation(),
            self.doc.session.log.len(),
            self.doc.ticked.clone(),
        );
        if self.lesson_cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let done = lesson.done(&self.doc.session.log, &self.doc.ticked);
            self.lesson_cache = Some((key, done));
        }
        let done = self
            .lesson_cache
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let count = done.iter().filter(|d| **d).count();
        ui.heading(RichText::new(format!(
            "Lesson: {}",
            escape_controls(&lesson.title)
        )));
        ui.add(
            egui::ProgressBar::new(if done.is_empty() {
                1.0
            } else {
                count as f32 / done.len() as f32
            })
            .text(format!("{count} of {} steps", done.len())),
        )
        .on_hover_text("Steps whose checkpoint has happened");
        // At the top, always there: reachable without scrolling past the
        // steps, and the steps never move when it changes.
        if ui
            .add_enabled(
                count > 0 || !self.doc.session.log.is_empty(),
                egui::Button::new("↺ Restart lesson"),
            )
            .on_hover_text("Stop the endpoints, clear the log and start again from step 1")
            .clicked()
        {
            commands.push(AppCommand::RestartLesson);
        }
        // The lesson's introduction (the session's notes) before its steps;
        // the notes stay editable at the bottom of the sidebar.
        let intro = self.doc.session.notes.trim();
        if !intro.is_empty() {
            ui.add_space(4.0);
            // A label per line: a line break from the file never sits inside one label.
            for line in intro.lines() {
                ui.label(escape_controls(line));
            }
        }
        let current = done.iter().position(|d| !d);
        let green = if ui.visuals().dark_mode {
            Color32::from_rgb(110, 210, 120)
        } else {
            Color32::from_rgb(20, 130, 50)
        };
        for (i, step) in lesson.steps.iter().enumerate() {
            ui.add_space(4.0);
            let (mark, color) = if done[i] {
                ("✔", green)
            } else if Some(i) == current {
                ("▶", ui.visuals().strong_text_color())
            } else {
                ("○", ui.visuals().weak_text_color())
            };
            ui.horizontal_top(|ui| {
                ui.label(RichText::new(mark).color(color).strong())
                    .on_hover_text(if done[i] {
                        "Done: the checkpoint happened"
                    } else {
                        "Not yet"
                    });
                ui.vertical(|ui| {
                    let text = RichText::new(format!("{}. {}", i + 1, escape_controls(&step.text)));
                    ui.label(if Some(i) == current {
                        text.strong()
                    } else {
                        text.color(color)
                    });
                    if let Some(action) = &step.action
                        && Some(i) == current
                    {
                        self.lesson_action_ui(ui, action, commands);
                    }
                    if step.check.is_none()
                        && !done[i]
                        && Some(i) == current
                        && ui
                            .small_button("✔ Done")
                            .on_hover_text("Tick this step off when you have done it")
                            .clicked()
                    {
                        self.doc.ticked.resize(lesson.steps.len(), None);
                        self.doc.ticked[i] = Some(self.doc.session.log.len());
                    }
                });
            });
        }
        if count == done.len() {
            ui.add_space(6.0);
            ui.label(
                RichText::new("🎉 Every step done. The Python tab shows the same program in code.")
                    .color(green),
            );
        }
        ui.separator();
    }
}
