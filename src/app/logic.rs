//! What runs every frame, even while the window is hidden (rerun's
//! `logic`): engine events drained within the frame's budget, file results,
//! autosave, the clients of a "Start all" waiting for their servers, the
//! replay's clients, and the poll of the system's TCP states.

use std::time::{Duration, Instant};

use super::files::{self, FileMsg, Pick};
use super::modals::{Modal, PathPrompt, PromptFor};
use super::{
    App, DRAIN_CLOCK_BYTES, DrainBudget, DrainReport, NOTICE_LIFETIME, Notice, PendingAction, View,
};

impl App {
    /// One frame's logic: called by `eframe::App::logic`.
    pub(super) fn logic_frame(&mut self, ctx: &egui::Context) {
        self.apply_log_budget();
        let drain_started = Instant::now();
        self.drain_events(ctx);
        if self.frame_log.is_on() {
            self.log_frame(ctx, drain_started.elapsed());
        }
        for msg in self.file_messages() {
            self.handle_file_message(msg);
        }
        self.start_waiting_clients();
        self.run_repeats();
        self.run_schedules();
        if self.advance_replay() {
            // The elapsed time on the replay bar moves on.
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if self.start_queue.is_some() {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        self.autosave();
        if self.stats.len() > self.doc.endpoints.len() {
            // Endpoints removed, or another session opened: their numbers go.
            let doc = &self.doc;
            self.stats
                .retain(|id| doc.endpoints.iter().any(|e| e.id == id));
        }
        if self.view == View::Stats {
            // The rates are of the last whole second: they move on without events.
            ctx.request_repaint_after(Duration::from_millis(500));
        }
        if self.view == View::Lifecycle {
            self.poll_tcp_states();
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        let expired = |n: &Notice| !n.error && n.created.elapsed() > NOTICE_LIFETIME;
        if self.notices.iter().any(expired) {
            self.notices.retain(|n| !expired(n));
        }
        if self.notices.iter().any(|n| !n.error) {
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        if ctx.input(|i| i.viewport().close_requested()) && !self.allow_close && self.doc.is_dirty()
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if self.modal.is_none() {
                self.modal = Some(Modal::Unsaved(PendingAction::Quit));
            }
        }
    }

    /// Gives the open session's log its budget: the session's own
    /// `log_budget` when it sets one, else the preference. Checked every
    /// frame, so every way a log comes (new, opened, recovered, cleared) and
    /// a changed preference take effect before the next event is recorded.
    fn apply_log_budget(&mut self) {
        let budget = self.doc.session.log_budget.unwrap_or(self.prefs.log_budget);
        if self.doc.session.log.budget() != budget {
            self.doc.session.log.set_budget(budget);
        }
    }

    /// Writes this frame's line to the frame log (see [`super::frame_log`]).
    fn log_frame(&mut self, ctx: &egui::Context, drain: Duration) {
        let (sent_bytes, received_bytes) = self.doc.endpoints.iter().fold((0, 0), |acc, e| {
            let t = self.doc.totals_of(e.id);
            (acc.0 + t.sent_bytes, acc.1 + t.received_bytes)
        });
        let presses = ctx.input(|i| {
            i.events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        egui::Event::PointerButton {
                            button: egui::PointerButton::Primary,
                            pressed: true,
                            ..
                        }
                    )
                })
                .count() as u64
        });
        let facts = super::frame_log::FrameFacts {
            drain,
            events: self.last_drain.events,
            sent_bytes,
            received_bytes,
            view: View::ALL.iter().position(|v| *v == self.view).unwrap_or(0),
        };
        self.frame_log.record(facts, presses);
    }

    /// Drains engine events within the frame's [`DrainBudget`]; when the
    /// budget ends the drain, asks for the next frame at once.
    fn drain_events(&mut self, ctx: &egui::Context) {
        let budget = self.drain_budget;
        let started = Instant::now();
        let mut report = DrainReport::default();
        let mut clock_bytes = 0usize;
        loop {
            if report.events >= budget.events || report.bytes >= budget.bytes {
                break;
            }
            // The clock is read every 64 events or every MiB, not per event.
            if (report.events % 64 == 63 || clock_bytes >= DRAIN_CLOCK_BYTES)
                && started.elapsed() >= budget.time
            {
                break;
            }
            let Some(event) = self.injected.pop_front().or_else(|| self.events.try_recv()) else {
                report.finished = true;
                break;
            };
            let bytes = match &event.kind {
                crate::engine::EventKind::Traffic { bytes, .. } => bytes.len(),
                _ => 0,
            };
            match &mut self.replay {
                Some(run) if run.owns(event.id) => run.apply(&event),
                _ => {
                    self.stats.record(&event);
                    self.doc.apply(&event);
                    if !self.schedules.is_empty() {
                        self.schedules.on_event(&event, Instant::now());
                    }
                    if let Some(queue) = &mut self.start_queue {
                        let due = queue.launch.on_event(event.id, &event.kind);
                        queue.due.extend(due);
                    }
                    if !self.repeats.is_empty()
                        && matches!(
                            event.kind,
                            crate::engine::EventKind::Traffic {
                                dir: crate::model::Direction::Sent,
                                ..
                            } | crate::engine::EventKind::Failed { .. }
                        )
                    {
                        self.repeats.settled(event.id);
                    }
                }
            }
            report.events += 1;
            report.bytes += bytes;
            clock_bytes = if clock_bytes >= DRAIN_CLOCK_BYTES {
                bytes
            } else {
                clock_bytes + bytes
            };
        }
        if !report.finished {
            // More may be waiting: paint this frame, come back at once.
            ctx.request_repaint();
        }
        self.last_drain = report;
    }

    /// The limits of one frame's drain of engine events.
    pub fn set_drain_budget(&mut self, budget: DrainBudget) {
        self.drain_budget = budget;
    }

    /// What the last frame's drain of engine events took in.
    pub fn last_drain(&self) -> DrainReport {
        self.last_drain
    }

    /// Hands events to the window as if the engine had sent them (tests and
    /// benchmarks build a backlog with this); they are drained first, under
    /// the same budget.
    pub fn inject_events(&mut self, events: impl IntoIterator<Item = crate::engine::Event>) {
        self.injected.extend(events);
        self.ctx.request_repaint();
    }

    fn handle_file_message(&mut self, msg: FileMsg) {
        match msg {
            FileMsg::Listed(sessions) => self.sessions = sessions,
            FileMsg::Loaded {
                path,
                result,
                recovered_from,
            } => match *result {
                Ok(session) => self.loaded(path, session, recovered_from),
                Err(e) => self.notify(true, format!("Could not open {e}")),
            },
            FileMsg::Saved {
                path,
                result,
                change,
            } => match result {
                Ok(()) => self.saved(path, change),
                Err(e) => {
                    self.after_save = None;
                    self.notify(true, format!("Not saved: {e}"));
                }
            },
            FileMsg::Autosaved(result) => {
                self.autosave_in_flight = false;
                self.autosaves.1 += 1;
                if let Err(e) = result {
                    self.notify(true, format!("Autosave failed: {e}"));
                }
            }
            FileMsg::RecoveryFound { original } => {
                if self.modal.is_none() {
                    self.modal = Some(Modal::Recovery { original });
                }
            }
            FileMsg::TcpStates(states) => self.os_tcp = states,
            FileMsg::PayloadRead {
                endpoint,
                path,
                result,
            } => self.payload_file_read(endpoint, path, result),
            // A file to send was chosen: it loads into the composer.
            FileMsg::Picked {
                pick: Pick::Payload,
                path,
            } => {
                if let Some(path) = path {
                    self.run_command(super::AppCommand::LoadPayloadFile(path));
                }
            }
            FileMsg::Exported {
                path,
                format,
                result,
            } => {
                let label = files::export_words(format).0;
                match result {
                    Ok(()) => self.notify(false, format!("Exported {label} to {}", path.display())),
                    Err(e) => self.notify(true, format!("Not exported ({label}): {e}")),
                }
            }
            FileMsg::Picked { pick, path } => {
                match (path, self.modal.take(), pick) {
                    // A chosen file acts at once, as a native dialog should.
                    (
                        Some(path),
                        Some(Modal::Path(PathPrompt {
                            purpose: PromptFor::Open,
                            ..
                        })),
                        Pick::Open,
                    ) => {
                        self.dialog_note = None;
                        self.request(PendingAction::Open(path));
                    }
                    (
                        Some(mut path),
                        Some(Modal::Path(PathPrompt {
                            purpose: PromptFor::SaveAs { then },
                            ..
                        })),
                        Pick::SaveAs,
                    ) => {
                        self.dialog_note = None;
                        // As for a typed path: a session file ends in .ron (and so
                        // shows in the sidebar), whatever the dialog added.
                        if path.extension().is_none() {
                            path.set_extension("ron");
                        }
                        self.save_to(path, then);
                    }
                    (
                        Some(path),
                        Some(Modal::Path(PathPrompt {
                            purpose: PromptFor::Export(format),
                            ..
                        })),
                        Pick::Export(picked),
                    ) if format == picked => {
                        self.dialog_note = None;
                        // An existing file is asked about here too: not every
                        // desktop's dialog asks before a file is replaced.
                        self.run_command(super::AppCommand::ExportTo {
                            format,
                            path,
                            replace: false,
                        });
                    }
                    // Nothing chosen: the typed path stays, and says why it is there.
                    (None, modal, _) => {
                        self.modal = modal;
                        self.dialog_note = Some(
                            "No file was chosen in a dialog. If none appeared, this desktop has no file dialog service: type the path here."
                                .into(),
                        );
                    }
                    (Some(_), modal, _) => self.modal = modal,
                }
            }
        }
    }

    fn autosave(&mut self) {
        if self.config.recovery_dir.is_none()
            || self.autosave_in_flight
            || !self.doc.is_dirty()
            || self.doc.changes == self.autosaved_change
            || self.last_autosave.elapsed() < self.config.autosave_every
        {
            return;
        }
        self.last_autosave = Instant::now();
        // A snapshot (it shares the log's bytes, so it is cheap to make here,
        // on the UI thread), written in the background; payloads beyond the
        // cap stay out of the file, and the copy says so in a note row.
        let log = files::recovery_log(&self.doc.session.log, self.autosave_payload_cap);
        if let Ok(session) = self.doc.to_session_with_log(log) {
            self.autosaved_change = self.doc.changes;
            if self.write_recovery(session) {
                self.autosave_in_flight = true;
                self.autosaves.0 += 1;
            }
        }
    }

    /// Autosaves (started, finished) so far.
    pub fn autosaves(&self) -> (u64, u64) {
        self.autosaves
    }

    /// How many payload bytes the recovery copy keeps at most.
    pub fn set_autosave_payload_cap(&mut self, cap: usize) {
        self.autosave_payload_cap = cap;
    }
}
