//! The traffic log view: a filter bar and a table that lays out only the rows
//! on screen, so a million rows scroll as smoothly as ten.

use chrono::{DateTime, Local, Utc};
use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::config::{Prefs, PreviewMode, TimeDisplay};
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
        EntryKind::Failed(_) => visuals.error_fg_color,
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
        EntryKind::Failed(e) => format!("✖ {}", e.label()),
        EntryKind::Reset => "⚠ reset".into(),
        EntryKind::PeerClosed => "⏏ peer closed".into(),
        EntryKind::HalfClosed => "⏏ half-closed".into(),
        EntryKind::Closed => "⏹ closed".into(),
        EntryKind::Stopped => "⏹ stopped".into(),
        EntryKind::Note => "ℹ note".into(),
        other => format!("● {}", other.label()),
    }
}

pub fn format_time(at: DateTime<Utc>, display: TimeDisplay) -> String {
    match display {
        TimeDisplay::Utc => at.format("%H:%M:%S%.6fZ").to_string(),
        TimeDisplay::Local => at.with_timezone(&Local).format("%H:%M:%S%.6f").to_string(),
    }
}

pub fn peer_text(log: &TrafficLog, e: &Entry) -> String {
    match log.peer_of(e) {
        Some(p) if !p.remote.is_empty() => p.remote.clone(),
        Some(p) => format!("#{}", p.number),
        None => String::new(),
    }
}

fn preview_text(log: &TrafficLog, e: &Entry, mode: PreviewMode) -> String {
    let data = log.bytes_of(e);
    if !e.kind.is_traffic() {
        return String::from_utf8_lossy(data).into_owned();
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

    pub fn ui(&mut self, ui: &mut Ui, log: &TrafficLog, prefs: &mut Prefs) -> LogAction {
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
            let endpoint_text = self
                .endpoint
                .clone()
                .unwrap_or_else(|| "all endpoints".into());
            egui::ComboBox::from_id_salt("log endpoint filter")
                .selected_text(endpoint_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.endpoint, None, "all endpoints");
                    for name in log.endpoints() {
                        ui.selectable_value(&mut self.endpoint, Some(name.clone()), name);
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
                Some((e, n)) => format!("{e} peer #{n}"),
                None => "all peers".into(),
            };
            let label = ui.label("Peers");
            egui::ComboBox::from_id_salt("log peer filter")
                .selected_text(peer_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.peer, None, "all peers");
                    for p in log.peers() {
                        let endpoint = log.endpoints()[p.endpoint as usize].clone();
                        let text = format!("{endpoint} #{} {}", p.number, p.remote);
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
                ui.colored_label(ui.visuals().error_fg_color, format!("search {e}"));
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
        ui.separator();

        // Labels in rows must not take the clicks that select the row.
        ui.style_mut().interaction.selectable_labels = false;
        let selected = self.selected;
        let rows = self.view.indices();
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
        let visuals = ui.visuals().clone();
        let mut table = TableBuilder::new(ui)
            .id_salt("traffic log")
            .striped(true)
            .stick_to_bottom(true)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(
                Column::initial(120.0)
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
                        ui.label(log.endpoint_name(e));
                    });
                    row.col(|ui| {
                        let peer = peer_text(log, e);
                        let detail = String::from_utf8_lossy(log.bytes_of(e));
                        let why = if e.kind.is_traffic() {
                            ""
                        } else {
                            detail.as_ref()
                        };
                        ui.label(RichText::new(kind_text(e.kind)).color(color))
                            .on_hover_text(explain::explain(
                                e.kind,
                                log.endpoint_name(e),
                                &peer,
                                why,
                            ));
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
