//! The replay bar: Replay, Pause, Step, speed, check, progress, and which log
//! the log view shows.

use egui::{RichText, Ui};

use super::replay::{IgnoreDraft, ReplayRun, SPEEDS, speed_label};
use super::{App, AppCommand, LogSource};
use crate::model::display::escape_controls;
use crate::run::replay::Check;

impl App {
    pub(super) fn replay_bar(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Replay").strong())
                .on_hover_text("Play the session's recording again: clients send what was recorded, servers answer as recorded");
            let running = self.replay.as_ref().is_some_and(|r| !r.is_done());
            let live = self.doc.endpoints.iter().any(|e| e.state.is_running());
            let label = ui.label("of");
            let names: Vec<String> = self.doc.endpoints.iter().map(|e| e.form.name.clone()).collect();
            egui::ComboBox::from_id_salt("replay endpoints")
                .selected_text(
                    self.replay_only
                        .as_deref()
                        .map_or_else(|| "all endpoints".into(), |n| escape_controls(n).into_owned()),
                )
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.replay_only, None, "all endpoints");
                    for name in names {
                        let shown = escape_controls(&name).into_owned();
                        ui.selectable_value(&mut self.replay_only, Some(name), shown);
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Replay every endpoint with recorded payloads, or one of them");
            let why_not = if live {
                Some("Stop the endpoints first: the replay uses their addresses")
            } else if self.doc.session.log.is_empty() {
                Some("Nothing recorded yet: run the session first")
            } else {
                None
            };
            if !running {
                if ui
                    .add_enabled(why_not.is_none(), egui::Button::new("▶ Replay"))
                    .on_hover_text("Play the recording with its timing (divided by the speed)")
                    .on_disabled_hover_text(why_not.unwrap_or_default())
                    .clicked()
                {
                    commands.push(AppCommand::StartReplay { paused: false });
                }
            } else if let Some(run) = &self.replay {
                if run.is_paused() {
                    if ui.button("▶ Resume").on_hover_text("Go on with the recorded timing").clicked() {
                        commands.push(AppCommand::ResumeReplay);
                    }
                } else if ui.button("⏸ Pause").on_hover_text("Hold the next payloads").clicked() {
                    commands.push(AppCommand::PauseReplay);
                }
            }
            let step = ui
                .add_enabled(running || why_not.is_none(), egui::Button::new("⏭ Step"))
                .on_hover_text("Send the next recorded payload only (starts a paused replay)")
                .on_disabled_hover_text(why_not.unwrap_or_default());
            if step.clicked() {
                if !running {
                    commands.push(AppCommand::StartReplay { paused: true });
                }
                commands.push(AppCommand::StepReplay);
            }
            if running
                && ui
                    .button("⏹ Stop replay")
                    .on_hover_text("End the replay now")
                    .clicked()
            {
                commands.push(AppCommand::StopReplay);
            }
            let label = ui.label("Speed");
            let mut speed = self.replay_speed;
            egui::ComboBox::from_id_salt("replay speed")
                .selected_text(speed_label(self.replay_speed))
                .show_ui(ui, |ui| {
                    for choice in SPEEDS {
                        ui.selectable_value(&mut speed, choice, speed_label(choice));
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("1× keeps the recorded gaps, 2× halves them, no waits sends at once");
            if speed != self.replay_speed {
                commands.push(AppCommand::SetReplaySpeed(speed));
            }
            ui.checkbox(&mut self.replay_check, "Check answers")
                .on_hover_text("Compare what comes back with the recording and mark the differences");

            if let Some(run) = &self.replay {
                ui.separator();
                let sent = run.sent();
                let total = run.total_sends();
                let fraction = if total == 0 {
                    1.0
                } else {
                    sent as f32 / total as f32
                };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(170.0)
                        .text(format!("{sent} of {total} payloads sent")),
                )
                .on_hover_text("Payloads the replay has sent, of all it will send");
                let elapsed = run.elapsed().as_secs_f64();
                let time = match (run.is_done(), run.total_time()) {
                    // Done: the run also waited for answers and closes, so say what it took.
                    (true, _) => format!("took {elapsed:.1} s"),
                    (false, Some(total)) => format!("{elapsed:.1} s of {:.1} s", total.as_secs_f64()),
                    (false, None) => format!("{elapsed:.1} s, no waits"),
                };
                ui.label(time).on_hover_text("Time the replay has run, of the recording's time at this speed");
                if run.is_paused() && !run.is_done() {
                    ui.label(RichText::new("paused").color(ui.visuals().warn_fg_color));
                }
                if run.is_done() {
                    let (text, color) = replay_outcome(run, ui);
                    ui.label(RichText::new(text).color(color));
                }
            }
        });
        if self.replay.is_some() {
            // Wrapped, and at most a few differences named: a long list must
            // not run past the window's edge (the log marks every one).
            ui.horizontal_wrapped(|ui| {
                let label = ui.label("Log shown");
                let mut source = self.log_source;
                ui.selectable_value(&mut source, LogSource::Recording, "Recording")
                    .labelled_by(label.id)
                    .on_hover_text("The session's log: what was recorded");
                ui.selectable_value(&mut source, LogSource::Replay, "Replay run")
                    .on_hover_text("What the replay did and received; differences are marked ≠");
                if source != self.log_source {
                    commands.push(AppCommand::ShowLog(source));
                }
                let mismatches: Vec<(usize, usize, String, bool)> = self
                    .replay
                    .as_ref()
                    .and_then(|r| r.mismatches())
                    .map(|ms| {
                        ms.iter()
                            .enumerate()
                            .filter_map(|(i, m)| {
                                m.row.map(|row| {
                                    (
                                        i,
                                        row,
                                        m.to_string().lines().next().unwrap_or_default().to_owned(),
                                        m.suggestion.is_some(),
                                    )
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let more = mismatches.len().saturating_sub(DIFFERENCES_NAMED);
                for (i, row, text, can_ignore) in mismatches.into_iter().take(DIFFERENCES_NAMED) {
                    if ui
                        .link(format!("≠ {text}"))
                        .on_hover_text("Show this difference in the log and the inspector")
                        .clicked()
                    {
                        commands.push(AppCommand::ShowReplayRow(row));
                    }
                    if can_ignore
                        && ui
                            .small_button("Ignore in future checks…")
                            .on_hover_text("Add an ignore rule for this difference to the session: the differing line or bytes")
                            .clicked()
                        && let Some(run) = &mut self.replay
                        && let Some(m) = run.mismatches().and_then(|r| r.get(i)).cloned()
                    {
                        run.ignore_draft = Some(IgnoreDraft::new(i, &m));
                    }
                }
                if more > 0 {
                    ui.label(format!("and {more} more, marked ≠ in the replay run's log"));
                }
            });
            self.ignore_editor_ui(ui, commands);
        }
    }

    /// The "ignore this in future checks" editor, while one is open.
    fn ignore_editor_ui(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        let Some(draft) = self.replay.as_mut().and_then(|r| r.ignore_draft.as_mut()) else {
            return;
        };
        let mut close = false;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Ignore in future checks").strong());
            ui.radio_value(&mut draft.by_line, true, "Line (regex)")
                .on_hover_text("A regular expression: what it matches on both sides is not compared");
            ui.radio_value(&mut draft.by_line, false, "Bytes")
                .on_hover_text("A byte range of the stream (TCP) or of each datagram (UDP), the end not included");
            if draft.by_line {
                let label = ui.label("Regex");
                ui.add(egui::TextEdit::singleline(&mut draft.regex).desired_width(220.0).code_editor())
                    .labelled_by(label.id);
            } else {
                let label = ui.label("Range");
                ui.add(egui::TextEdit::singleline(&mut draft.range).desired_width(90.0).code_editor())
                    .labelled_by(label.id);
            }
            let label = ui.label("Field name");
            ui.add(egui::TextEdit::singleline(&mut draft.name).desired_width(90.0))
                .labelled_by(label.id)
                .on_hover_text("Optional: the report then says \"field `name`\"");
            ui.checkbox(
                &mut draft.only_endpoint,
                format!("only \"{}\"", escape_controls(&draft.endpoint)),
            )
            .on_hover_text("Apply the rule to this endpoint's conversations only");
            let rule = draft.rule();
            if ui
                .add_enabled(rule.is_ok(), egui::Button::new("Add ignore rule"))
                .on_hover_text("Add the rule to the session: the next check with Check answers uses it")
                .clicked()
                && let Ok(rule) = &rule
            {
                commands.push(AppCommand::AddIgnoreRule(rule.clone()));
                close = true;
            }
            if ui.button("Cancel").clicked() {
                close = true;
            }
            if let Err(why) = rule {
                ui.label(RichText::new(escape_controls(&why)).color(ui.visuals().error_fg_color));
            }
        });
        if close && let Some(run) = &mut self.replay {
            run.ignore_draft = None;
        }
    }
}

/// How many differences the bar names (the rest are counted).
const DIFFERENCES_NAMED: usize = 3;

fn replay_outcome(run: &ReplayRun, ui: &Ui) -> (String, egui::Color32) {
    if let Some(first) = run.failures().first() {
        return (
            format!("✖ {}", escape_controls(&first.to_string())),
            ui.visuals().error_fg_color,
        );
    }
    match run.outcome() {
        Some(Check::Done {
            mismatches,
            ignored,
            ..
        }) if mismatches.is_empty() && !ignored.is_empty() => (
            format!(
                "✔ every conversation matched the recording (ignored: {})",
                escape_controls(&crate::model::replay::ignored_text(ignored))
            ),
            egui::Color32::from_rgb(60, 180, 90),
        ),
        Some(Check::Done { mismatches, .. }) if mismatches.is_empty() => (
            "✔ every conversation matched the recording".into(),
            egui::Color32::from_rgb(60, 180, 90),
        ),
        Some(Check::Done { mismatches, .. }) => (
            format!(
                "✖ {} difference{} from the recording",
                mismatches.len(),
                if mismatches.len() == 1 { "" } else { "s" }
            ),
            ui.visuals().error_fg_color,
        ),
        // Asked to check, but the run proves nothing: say why, never "matched".
        Some(Check::NotChecked(why)) => (
            format!("⚠ {}", escape_controls(why)),
            ui.visuals().warn_fg_color,
        ),
        _ if run.stopped_by_hand() => ("stopped".into(), ui.visuals().weak_text_color()),
        _ => ("done".into(), ui.visuals().text_color()),
    }
}
