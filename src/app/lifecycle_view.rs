//! The lifecycle view: an endpoint's socket API calls as a diagram. The step
//! just taken lights up with its time; a failure turns its step red with the
//! reason in plain words; the operating system's TCP states stand below.

use std::net::SocketAddr;

use egui::{Color32, RichText, Ui};

use super::config::TimeDisplay;
use super::log_view::format_time;
use crate::engine::os_tcp::{OsConnection, state_of};
use crate::model::display::escape_controls;
use crate::model::lifecycle::{StepState, StepStatus, lifecycle};
use crate::model::log::{EntryKind, TrafficLog};
use crate::model::{KindTag, explain};

/// The steps, recomputed only when the log or the endpoint changed.
#[derive(Default)]
pub struct LifecycleView {
    cache: Option<(u64, usize, String, KindTag, Vec<StepStatus>)>,
}

/// The connections of an endpoint's last run, as (local, remote) pairs, from
/// its Connected / Accepted rows (and where it listens).
fn connections(
    log: &TrafficLog,
    endpoint: &str,
) -> (Option<SocketAddr>, Vec<(SocketAddr, SocketAddr)>) {
    let mut listening = None;
    let mut pairs = Vec::new();
    for e in log.entries() {
        if log.endpoint_name(e) != endpoint {
            continue;
        }
        let detail = String::from_utf8_lossy(log.bytes_of(e));
        let remote = log
            .peer_of(e)
            .and_then(|p| p.remote.parse::<SocketAddr>().ok());
        match e.kind {
            EntryKind::Listening => {
                listening = detail.trim().parse().ok();
                pairs.clear();
            }
            EntryKind::Connecting if pairs.is_empty() => {}
            EntryKind::Connected => {
                if let (Some(local), Some(remote)) = (
                    detail
                        .trim()
                        .strip_prefix("from ")
                        .and_then(|a| a.parse().ok()),
                    remote,
                ) {
                    pairs.push((local, remote));
                }
            }
            EntryKind::Accepted => {
                if let (Some(local), Some(remote)) = (
                    detail
                        .trim()
                        .strip_prefix("on ")
                        .and_then(|a| a.parse().ok()),
                    remote,
                ) {
                    pairs.push((local, remote));
                }
            }
            _ => {}
        }
    }
    (listening, pairs)
}

fn step_colors(ui: &Ui, state: &StepState) -> (Color32, Color32) {
    let dark = ui.visuals().dark_mode;
    match state {
        StepState::Pending => (ui.visuals().faint_bg_color, ui.visuals().weak_text_color()),
        StepState::Active => (
            if dark {
                Color32::from_rgb(90, 70, 20)
            } else {
                Color32::from_rgb(255, 230, 160)
            },
            ui.visuals().text_color(),
        ),
        StepState::Done => (
            if dark {
                Color32::from_rgb(25, 80, 40)
            } else {
                Color32::from_rgb(190, 235, 200)
            },
            ui.visuals().text_color(),
        ),
        StepState::Failed(..) => (
            if dark {
                Color32::from_rgb(110, 30, 30)
            } else {
                Color32::from_rgb(255, 200, 200)
            },
            ui.visuals().text_color(),
        ),
    }
}

impl LifecycleView {
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        log: &TrafficLog,
        endpoint: &str,
        kind: KindTag,
        os: &[OsConnection],
        time: TimeDisplay,
    ) {
        let key = (log.generation(), log.len());
        let fresh = matches!(&self.cache, Some((g, n, e, k, _)) if (*g, *n) == key && e == endpoint && *k == kind);
        if !fresh {
            self.cache = Some((
                key.0,
                key.1,
                endpoint.to_owned(),
                kind,
                lifecycle(log, endpoint, kind),
            ));
        }
        let steps = self.cache.as_ref().map(|c| c.4.clone()).unwrap_or_default();
        ui.label(format!(
            "The socket calls of \"{}\" ({}), as its last run went. Hover a step for what the call does.",
            escape_controls(endpoint),
            kind.label()
        ));
        ui.add_space(6.0);
        // The steps and the states below can be taller than the pane (a
        // server with many peers): they scroll.
        egui::ScrollArea::vertical()
            .id_salt("lifecycle scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.steps_and_states_ui(ui, &steps, log, endpoint, kind, os, time)
            });
    }

    #[allow(clippy::too_many_arguments)]
    fn steps_and_states_ui(
        &self,
        ui: &mut Ui,
        steps: &[StepStatus],
        log: &TrafficLog,
        endpoint: &str,
        kind: KindTag,
        os: &[OsConnection],
        time: TimeDisplay,
    ) {
        // Every box is given the height of the tallest, so a row's boxes
        // stand level (a wrapped row centres what it holds).
        let line = |style: egui::TextStyle| ui.text_style_height(&style);
        let lines_of = |step: &StepStatus| {
            line(egui::TextStyle::Monospace)
                + line(egui::TextStyle::Small)
                + if step.at.is_some() {
                    line(egui::TextStyle::Monospace)
                } else {
                    0.0
                }
                + if step.note.is_empty() {
                    0.0
                } else {
                    line(egui::TextStyle::Small)
                }
        };
        let box_height = steps.iter().map(lines_of).fold(0.0, f32::max)
            + 3.0 * ui.spacing().item_spacing.y
            + 2.0 * 6.0
            + 2.0;
        ui.horizontal_wrapped(|ui| {
            for (i, step) in steps.iter().enumerate() {
                if i > 0 {
                    ui.label(RichText::new("→").size(18.0));
                }
                let (fill, text) = step_colors(ui, &step.state);
                let word = match &step.state {
                    StepState::Pending => "not yet",
                    StepState::Active => "under way",
                    StepState::Done => "done",
                    StepState::Failed(..) => "failed",
                };
                // Each box asks for the width its words need, so a wrapped
                // row moves it to the next line whole instead of squeezing it
                // into what is left (`shutdown()` one letter a line).
                let time_text = step
                    .at
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|at| format_time(at, time));
                let words = [
                    super::log_view::monospace_width(ui, step.call.name_for(kind)) * 1.1,
                    super::log_view::monospace_width(ui, time_text.as_deref().unwrap_or("")),
                    super::log_view::monospace_width(ui, word),
                ];
                let note = if step.note.is_empty() {
                    0.0
                } else {
                    super::log_view::monospace_width(ui, &escape_controls(&step.note)).min(220.0)
                };
                let inner = words.into_iter().fold(note, f32::max) + 4.0;
                let size = egui::vec2(inner + 2.0 * 10.0 + 2.0, box_height);
                ui.allocate_ui(size, |ui| {
                    egui::Frame::new()
                        .fill(fill)
                        .stroke(egui::Stroke::new(1.0, text))
                        .corner_radius(6.0)
                        .inner_margin(egui::Margin::symmetric(10, 6))
                        .show(ui, |ui| {
                            ui.vertical(|ui| {
                                ui.label(
                                    RichText::new(step.call.name_for(kind))
                                        .monospace()
                                        .strong()
                                        .color(text),
                                );
                                ui.label(RichText::new(word).small().color(text));
                                if let Some(at) = &time_text {
                                    ui.label(RichText::new(at).small().monospace().color(text));
                                }
                                if !step.note.is_empty() {
                                    ui.label(
                                        RichText::new(escape_controls(&step.note))
                                            .small()
                                            .color(text),
                                    );
                                }
                            });
                        })
                        .response
                        .on_hover_text(step.call.meaning_for(kind));
                });
            }
        });
        for step in steps {
            if let StepState::Failed(error, detail) = &step.state {
                ui.add_space(6.0);
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    RichText::new(format!("✖ {} failed", step.call.name_for(kind))).strong(),
                );
                ui.label(explain::explain(
                    EntryKind::Failed(*error),
                    endpoint,
                    "",
                    detail,
                ));
                ui.label(RichText::new(escape_controls(detail)).monospace().weak());
            }
        }

        if kind == KindTag::Udp {
            ui.add_space(8.0);
            ui.label("UDP keeps no connection state: there is no handshake, no FIN and no TIME_WAIT, only datagrams.");
            return;
        }
        if kind.is_unix() {
            ui.add_space(8.0);
            ui.label(
                "A Unix-domain socket never leaves this machine: no packets, no handshake and no \
                 TCP states; the kernel joins the two sockets, and a peer's name is a path (most \
                 clients are unnamed).",
            );
            return;
        }
        ui.add_space(8.0);
        ui.label(RichText::new("TCP states, as the operating system keeps them").strong())
            .on_hover_text("Read from /proc/net/tcp every second (Linux)");
        if os.is_empty() {
            ui.label(
                "This system does not report TCP states (only Linux does, through /proc/net/tcp).",
            );
            return;
        }
        let (listening, pairs) = connections(log, endpoint);
        egui::Grid::new("os tcp states")
            .striped(true)
            .show(ui, |ui| {
                if let Some(local) = listening {
                    ui.monospace(format!("{local} (listening)"));
                    match state_of(os, local, None) {
                        Some(state) => ui.label(format!("{} — {}", state.name(), state.meaning())),
                        None => ui.label("no socket: the listener is closed"),
                    };
                    ui.end_row();
                }
                for (local, remote) in pairs.iter().rev().take(12) {
                    ui.monospace(format!("{local} ⇄ {remote}"));
                    match state_of(os, *local, Some(*remote)) {
                        Some(state) => ui.label(format!("{} — {}", state.name(), state.meaning())),
                        None => ui.label("gone: the system no longer keeps this connection"),
                    };
                    ui.end_row();
                }
                if listening.is_none() && pairs.is_empty() {
                    ui.label("No connection yet.");
                    ui.end_row();
                }
            });
    }
}
