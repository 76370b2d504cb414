//! The traffic log view: a filter bar and a table that lays out only the rows
//! on screen, so a million rows scroll as smoothly as ten.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Local, Utc};
use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::config::{Prefs, PreviewMode, TimeDisplay};
use crate::model::display::{escape_bytes_lossy, escape_controls};
use crate::model::log::{Entry, EntryKind, FilteredView, KindFilter, LogFilter, TrafficLog};
use crate::model::payload::{preview, to_hex};
use crate::model::{Notation, explain};

/// How many new log entries the filter examines per frame (the rest next frame).
const FILTER_BUDGET: usize = 250_000;

/// What the person asked the log view to do, for the app to carry out.
#[derive(Debug, PartialEq)]
pub enum LogAction {
    None,
    Clear,
}

/// The log view's state.
#[derive(Default)]
pub struct LogView {
    pub endpoint: Option<String>,
    pub kinds: KindFilter,
    pub peer: Option<(String, u32)>,
    pub search: String,
    pub search_hex: bool,
    search_error: Option<String>,
    view: FilteredView,
    /// The selected row, as a log entry index.
    pub selected: Option<usize>,
    /// Set by Ctrl+F: focus the search field on the next frame.
    pub focus_search: bool,
    /// Set to scroll to the newest row once.
    jump_to_end: bool,
    /// Set to scroll to this entry once.
    jump_to: Option<usize>,
    /// Playing the log back on a timeline, without the network.
    playback: Option<Playback>,
}

/// The timeline of a log played back: rows appear as they did.
#[derive(Clone, Copy, Debug)]
struct Playback {
    /// Rows up to this time (µs since the epoch) are shown.
    cursor: i64,
    playing: bool,
    speed: f64,
    last_tick: Option<Instant>,
}

/// Colours of the row kinds, readable on dark and light backgrounds.
pub fn kind_color(visuals: &egui::Visuals, kind: EntryKind) -> Color32 {
    let dark = visuals.dark_mode;
    match kind {
        EntryKind::Sent => {
            if dark {
                Color32::from_rgb(110, 170, 255)
            } else {
                Color32::from_rgb(20, 90, 200)
            }
        }
        EntryKind::Received => {
            if dark {
                Color32::from_rgb(120, 210, 130)
            } else {
                Color32::from_rgb(20, 130, 50)
            }
        }
        EntryKind::Failed(_) | EntryKind::Unsent => visuals.error_fg_color,
        EntryKind::Reset | EntryKind::PeerClosed | EntryKind::HalfClosed => visuals.warn_fg_color,
        EntryKind::Note => visuals.hyperlink_color,
        _ => {
            if dark {
                Color32::from_rgb(200, 170, 255)
            } else {
                Color32::from_rgb(120, 60, 170)
            }
        }
    }
}

/// The icon and words of a row's event column.
pub fn kind_text(kind: EntryKind) -> String {
    match kind {
        EntryKind::Sent => "→ sent".into(),
        EntryKind::Received => "← received".into(),
        EntryKind::Unsent => "✖ not sent".into(),
        EntryKind::Failed(e) => format!("✖ {}", e.label()),
        EntryKind::Reset => "⚠ reset".into(),
        EntryKind::PeerClosed => "⏏ peer closed".into(),
        EntryKind::HalfClosed => "⏏ half-closed".into(),
        EntryKind::Closed => "⏹ closed".into(),
        EntryKind::Stopped => "⏹ stopped".into(),
        EntryKind::Note => "ℹ note".into(),
        EntryKind::TlsHandshake => "🔒 TLS handshake".into(),
        other => format!("● {}", other.label()),
    }
}

/// How wide `text` is in the monospace font, in points.
pub(super) fn monospace_width(ui: &Ui, text: &str) -> f32 {
    ui.painter()
        .layout_no_wrap(
            text.to_owned(),
            egui::TextStyle::Monospace.resolve(ui.style()),
            egui::Color32::WHITE,
        )
        .size()
        .x
}

pub fn format_time(at: DateTime<Utc>, display: TimeDisplay) -> String {
    match display {
        TimeDisplay::Utc => at.format("%H:%M:%S%.6fZ").to_string(),
        TimeDisplay::Local => at.with_timezone(&Local).format("%H:%M:%S%.6f").to_string(),
    }
}

/// The peer column: its address (escaped: recorded text from a file), else
/// its number.
pub fn peer_text(log: &TrafficLog, e: &Entry) -> String {
    match log.peer_of(e) {
        Some(p) if !p.remote.is_empty() => escape_controls(&p.remote).into_owned(),
        Some(p) => format!("#{}", p.number),
        None => String::new(),
    }
}

fn preview_text(log: &TrafficLog, e: &Entry, mode: PreviewMode) -> String {
    let data = log.bytes_of(e);
    if !e.kind.is_traffic() {
        return escape_bytes_lossy(data);
    }
    let hex = || {
        let shown = &data[..data.len().min(32)];
        let mut h = to_hex(shown);
        if data.len() > shown.len() {
            h.push_str(" …");
        }
        h
    };
    match mode {
        PreviewMode::Text => preview(data, 120),
        PreviewMode::Hex => hex(),
        PreviewMode::Both => format!("{}   {}", preview(data, 40), hex()),
    }
}

impl LogView {
    /// The filter the controls describe, or why the search is not valid hex.
    fn wanted_filter(&mut self) -> LogFilter {
        let needle = if self.search_hex {
            match Notation::Hex.parse(&self.search) {
                Ok(b) => {
                    self.search_error = None;
                    b
                }
                Err(e) => {
                    self.search_error = Some(e.to_string());
                    Vec::new()
                }
            }
        } else {
            self.search_error = None;
            self.search.as_bytes().to_vec()
        };
        LogFilter {
            endpoint: self.endpoint.clone(),
            kinds: self.kinds,
            peer: self.peer.clone(),
            needle,
        }
    }

    /// The rows shown, as entry indices (kept current by [`LogView::ui`]).
    pub fn rows(&self) -> &[u32] {
        self.view.indices()
    }

    /// Brings the filtered rows up to date with the log.
    pub fn refresh(&mut self, log: &TrafficLog) -> bool {
        let filter = self.wanted_filter();
        self.view.set_filter(filter);
        self.view.refresh(log, FILTER_BUDGET)
    }

    /// Forgets the selection (a new document).
    pub fn reset(&mut self) {
        *self = LogView::default();
    }

    /// Keeps the filter but starts over on another log.
    pub fn retarget(&mut self) {
        self.view = FilteredView::new(self.view.filter().clone());
        self.selected = None;
        self.playback = None;
    }

    /// Selects entry `row` and scrolls to it.
    pub fn select(&mut self, row: usize) {
        self.selected = Some(row);
        self.jump_to = Some(row);
    }

    /// The playback controls; returns the time up to which rows are shown.
    fn playback_ui(&mut self, ui: &mut Ui, log: &TrafficLog) -> Option<i64> {
        let playback = self.playback.as_mut()?;
        let (start, end) = match (log.entries().first(), log.entries().last()) {
            (Some(a), Some(b)) => (a.at_micros, b.at_micros.max(a.at_micros)),
            _ => return None,
        };
        if playback.playing {
            let now = Instant::now();
            if let Some(last) = playback.last_tick {
                let advance = now.duration_since(last).as_secs_f64() * playback.speed * 1e6;
                playback.cursor = playback.cursor.saturating_add(advance as i64);
            }
            playback.last_tick = Some(now);
            if playback.cursor >= end {
                playback.cursor = end;
                playback.playing = false;
            } else {
                ui.ctx().request_repaint();
            }
        }
        playback.cursor = playback.cursor.clamp(start, end);
        ui.horizontal(|ui| {
            let (icon, tip) = if playback.playing {
                ("⏸ Hold", "Stop the timeline here")
            } else {
                (
                    "▶ Play back",
                    "Let the rows appear as they did, without the network",
                )
            };
            if ui.button(icon).on_hover_text(tip).clicked() {
                if !playback.playing && playback.cursor >= end {
                    playback.cursor = start;
                }
                playback.playing = !playback.playing;
                playback.last_tick = None;
            }
            let span = (end - start) as f64 / 1e6;
            let mut offset = (playback.cursor - start) as f64 / 1e6;
            let label = ui.label("Up to");
            let slider = ui
                .add(
                    egui::Slider::new(&mut offset, 0.0..=span.max(0.000_001))
                        .suffix(" s")
                        .max_decimals(6),
                )
                .labelled_by(label.id)
                .on_hover_text("Drag to show the log as it was at that moment");
            if slider.changed() {
                playback.cursor = start + (offset * 1e6) as i64;
                playback.playing = false;
            }
            ui.label(format!("of {span:.3} s"));
            let label = ui.label("at");
            egui::ComboBox::from_id_salt("playback speed")
                .selected_text(format!("{}×", playback.speed))
                .show_ui(ui, |ui| {
                    for speed in [0.25, 0.5, 1.0, 2.0, 5.0, 10.0] {
                        ui.selectable_value(&mut playback.speed, speed, format!("{speed}×"));
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("How fast the timeline plays");
        });
        Some(playback.cursor)
    }

    /// The log view. `marks` maps entry indices to a difference found by a
    /// replay check; those rows are marked.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        log: &TrafficLog,
        prefs: &mut Prefs,
        marks: &HashMap<usize, usize>,
    ) -> LogAction {
        let mut action = LogAction::None;
        let caught_up = self.refresh(log);
        if !caught_up {
            ui.ctx().request_repaint();
        }
        if let Some(selected) = self.selected
            && selected >= log.len()
        {
            self.selected = None;
        }

        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Endpoints");
            let endpoint_text = self.endpoint.as_deref().map_or_else(
                || "all endpoints".into(),
                |n| escape_controls(n).into_owned(),
            );
            egui::ComboBox::from_id_salt("log endpoint filter")
                .selected_text(endpoint_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.endpoint, None, "all endpoints");
                    for name in log.endpoints() {
                        ui.selectable_value(
                            &mut self.endpoint,
                            Some(name.clone()),
                            escape_controls(name),
                        );
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Show the rows of one endpoint only");
            let label = ui.label("Kinds");
            egui::ComboBox::from_id_salt("log kind filter")
                .selected_text(self.kinds.label())
                .show_ui(ui, |ui| {
                    for k in KindFilter::ALL {
                        ui.selectable_value(&mut self.kinds, k, k.label());
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Show sent payloads, received payloads, or lifecycle events only");
            let peer_text = match &self.peer {
                Some((e, n)) => format!("{} peer #{n}", escape_controls(e)),
                None => "all peers".into(),
            };
            let label = ui.label("Peers");
            egui::ComboBox::from_id_salt("log peer filter")
                .selected_text(peer_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.peer, None, "all peers");
                    for p in log.peers() {
                        let endpoint = log.endpoints()[p.endpoint as usize].clone();
                        let text = format!(
                            "{} #{} {}",
                            escape_controls(&endpoint),
                            p.number,
                            escape_controls(&p.remote)
                        );
                        ui.selectable_value(&mut self.peer, Some((endpoint, p.number)), text);
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text(
                    "Show the rows of one peer (one connection, or one UDP address) only",
                );
            let search_label = ui.label("Find");
            let search = ui
                .add(
                    egui::TextEdit::singleline(&mut self.search)
                        .hint_text(if self.search_hex { "hex bytes" } else { "text" })
                        .desired_width(160.0),
                )
                .labelled_by(search_label.id)
                .on_hover_text("Show only rows whose bytes contain this (Ctrl+F)");
            if std::mem::take(&mut self.focus_search) {
                search.request_focus();
            }
            ui.checkbox(&mut self.search_hex, "hex bytes")
                .on_hover_text("Search for hex bytes (like 0d 0a) instead of text");
            if let Some(e) = &self.search_error {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("search {}", escape_controls(e)),
                );
            }
            ui.separator();
            for mode in PreviewMode::ALL {
                ui.selectable_value(&mut prefs.preview, mode, mode.label())
                    .on_hover_text(format!("Show payloads {}", mode.label()));
            }
            ui.separator();
            if ui
                .button("⬇ Latest")
                .on_hover_text("Scroll to the newest row and follow new rows again")
                .clicked()
            {
                self.jump_to_end = true;
            }
            let mut playing_back = self.playback.is_some();
            if ui
                .toggle_value(&mut playing_back, "⏵ Playback")
                .on_hover_text("Scrub the log on a timeline and watch its rows appear as they did")
                .changed()
            {
                self.playback = playing_back.then(|| Playback {
                    cursor: log.entries().first().map_or(0, |e| e.at_micros),
                    playing: false,
                    speed: 1.0,
                    last_tick: None,
                });
            }
            if ui
                .button("🗑 Clear log")
                .on_hover_text("Remove every row of the log (Ctrl+L)")
                .clicked()
            {
                action = LogAction::Clear;
            }
            let shown = self.view.len();
            let total = log.len();
            let count = if shown == total {
                format!("{total} rows")
            } else {
                format!("{shown} of {total} rows")
            };
            ui.label(count);
        });
        let until = self.playback_ui(ui, log);
        ui.separator();

        // Labels in rows must not take the clicks that select the row.
        ui.style_mut().interaction.selectable_labels = false;
        let selected = self.selected;
        let mut rows = self.view.indices();
        if let Some(until) = until {
            // Rows come (nearly) in time order: show those up to the cursor.
            let cut = rows
                .partition_point(|&i| log.entry(i as usize).is_some_and(|e| e.at_micros <= until));
            rows = &rows[..cut];
        }
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
        let visuals = ui.visuals().clone();
        // Wide enough for the whole time with microseconds and its zone mark.
        let time_width =
            monospace_width(ui, "00:00:00.000000Z") + 2.0 * ui.spacing().item_spacing.x + 4.0;
        let mut table = TableBuilder::new(ui)
            .id_salt("traffic log")
            .striped(true)
            .stick_to_bottom(true)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(
                Column::initial(time_width)
                    .at_least(80.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(
                Column::initial(100.0)
                    .at_least(50.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(
                Column::initial(130.0)
                    .at_least(60.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(
                Column::initial(140.0)
                    .at_least(40.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(
                Column::initial(60.0)
                    .at_least(40.0)
                    .resizable(true)
                    .clip(true),
            )
            .column(Column::remainder().clip(true))
            .min_scrolled_height(0.0);
        if std::mem::take(&mut self.jump_to_end) && !rows.is_empty() {
            table = table.scroll_to_row(rows.len() - 1, Some(egui::Align::BOTTOM));
        }
        if let Some(row) = self.jump_to.take()
            && let Some(position) = rows.iter().position(|&i| i as usize == row)
        {
            table = table.scroll_to_row(position, Some(egui::Align::Center));
        }
        let time_display = prefs.time;
        let mode = prefs.preview;
        let mut clicked = None;
        table
            .header(row_height, |mut header| {
                for title in [
                    "Time",
                    "Endpoint",
                    "Event",
                    "Peer",
                    "Length",
                    "Payload or detail",
                ] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, rows.len(), |mut row| {
                    let index = rows[row.index()] as usize;
                    let Some(e) = log.entry(index) else {
                        return;
                    };
                    row.set_selected(selected == Some(index));
                    let color = kind_color(&visuals, e.kind);
                    row.col(|ui| {
                        ui.label(RichText::new(format_time(e.at(), time_display)).monospace())
                            .on_hover_text(crate::persist::format_timestamp(&e.at()));
                    });
                    row.col(|ui| {
                        ui.label(escape_controls(log.endpoint_name(e)));
                    });
                    row.col(|ui| {
                        let peer = peer_text(log, e);
                        let detail = String::from_utf8_lossy(log.bytes_of(e));
                        let why = if e.kind.is_traffic() {
                            ""
                        } else {
                            detail.as_ref()
                        };
                        if marks.contains_key(&index) {
                            ui.label(
                                RichText::new(format!("≠ {}", kind_text(e.kind)))
                                    .color(visuals.error_fg_color)
                                    .strong(),
                            )
                            .on_hover_text(
                                "A replay check found the first difference from the recording in this row",
                            );
                        } else {
                        ui.label(RichText::new(kind_text(e.kind)).color(color))
                                .on_hover_text(explain::explain(
                                    e.kind,
                                    log.endpoint_name(e),
                                    &peer,
                                    why,
                                ));
                        }
                    });
                    row.col(|ui| {
                        ui.label(peer_text(log, e));
                    });
                    row.col(|ui| {
                        if e.kind.is_traffic() {
                            ui.label(e.len().to_string());
                        }
                    });
                    row.col(|ui| {
                        let text = preview_text(log, e, mode);
                        let rich = RichText::new(text).monospace();
                        ui.label(if e.kind.is_traffic() {
                            rich
                        } else {
                            rich.color(color)
                        });
                    });
                    if row.response().clicked() {
                        clicked = Some(index);
                    }
                });
            });
        if let Some(index) = clicked {
            self.selected = Some(index);
        }
        action
    }
}
