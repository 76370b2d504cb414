//! The traffic log view: a filter bar and a table that lays out only the rows
//! on screen, so a million rows scroll as smoothly as ten.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Local, Utc};
use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::config::{Prefs, PreviewMode, TimeDisplay};
use crate::model::display::{escape_bytes_lossy, escape_controls};
use crate::model::framing::ReceiveFraming;
use crate::model::log::{Entry, EntryKind, FilteredView, KindFilter, LogFilter, TrafficLog};
use crate::model::messages::{MessageIndex, MessageRow};
use crate::model::payload::{preview, to_hex, to_text_notation};
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
    /// Find tells upper from lower case (off: `host` finds `Host:`).
    pub match_case: bool,
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
    /// The person scrolled away from the newest row: new rows do not pull the
    /// view down until they scroll back to the end or press Latest.
    unfollowed: bool,
    /// The row count and height of the table last frame: when either changes
    /// while following, the view is put back at the newest row (a dragged
    /// split or a resized window must not leave it stranded above the end).
    last_rows: usize,
    last_height: f32,
    /// The widths the two halves of the filter bar took last frame, to put
    /// them on one line when they fit and on two when they do not.
    bar_widths: [f32; 2],
    /// One row per message instead of one per read, for the received reads
    /// of endpoints with a receive framing.
    pub by_message: bool,
    /// Those reads cut into messages, kept up to date incrementally.
    messages: MessageIndex,
    /// The rows of the message view: the filtered entries with each framed
    /// read replaced by the messages it completed.
    message_rows: MessageRows,
    /// The names of the session's relays, whose rows say client → upstream
    /// and upstream → client (set by the window each frame).
    pub relays: Vec<String>,
}

/// A row of the message view: a log entry, or a message of the [`MessageIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRef {
    Entry(u32),
    Message(u32),
}

/// The message view's rows, built from the filtered entries as they come
/// (never rebuilt per frame).
#[derive(Default)]
struct MessageRows {
    rows: Vec<RowRef>,
    /// The entry of each row (for the playback cut and jumps).
    entries: Vec<u32>,
    /// Filtered entries turned into rows so far.
    converted: usize,
    /// Rows that are messages.
    messages: usize,
    /// What the rows were built from: the filter and the log's generation.
    basis: Option<(LogFilter, u64)>,
}

/// The widest a search error stands on the filter bar: it is elided beyond
/// this (the whole text on hover), so it never wraps the bar.
const SEARCH_ERROR_WIDTH: f32 = 220.0;

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

/// The icon and words of a row's event column, knowing whether its endpoint
/// is a relay: a relay's payloads say which way they went (its `Received`
/// rows are client → upstream, its `Sent` rows upstream → client) and its
/// notes of an impairment or of the intercept say what was done, and which way.
pub fn row_text(kind: EntryKind, relay: bool, detail: &[u8]) -> String {
    use crate::model::impair::{Way, note_mark};
    if !relay {
        return kind_text(kind);
    }
    let arrow = |way: Way| if way == Way::Up { "⬆" } else { "⬇" };
    match kind {
        EntryKind::Received => format!("{} {}", arrow(Way::Up), Way::Up.arrow()),
        EntryKind::Sent => format!("{} {}", arrow(Way::Down), Way::Down.arrow()),
        EntryKind::Note => match std::str::from_utf8(detail).ok().and_then(note_mark) {
            Some((way, mark)) => {
                let icon = match mark {
                    crate::model::impair::NoteMark::Impaired => "⚡",
                    crate::model::impair::NoteMark::Held => "✋",
                    crate::model::impair::NoteMark::Forwarded => "➡",
                    crate::model::impair::NoteMark::Edited => "✏",
                    crate::model::impair::NoteMark::Dropped => "🗑",
                };
                format!("{icon} {} {}", mark.label(), arrow(way))
            }
            None => kind_text(kind),
        },
        _ => kind_text(kind),
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
    payload_preview(data, mode)
}

/// A message row's preview: its kept first bytes, `…` when there were more.
fn message_preview(m: &MessageRow, mode: PreviewMode) -> String {
    let mut text = payload_preview(&m.preview, mode);
    if m.len > m.preview.len() as u64 && !text.ends_with('…') {
        text.push_str(" …");
    }
    text
}

fn payload_preview(data: &[u8], mode: PreviewMode) -> String {
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
    /// The filter the controls describe, or why the search is not valid: hex
    /// in hex mode, text with escapes (`\r\n`, `\x00`) otherwise, the same
    /// notation the composer and the log's payload column use.
    fn wanted_filter(&mut self) -> LogFilter {
        let notation = if self.search_hex {
            Notation::Hex
        } else {
            Notation::Text
        };
        let needle = match notation.parse(&self.search) {
            Ok(b) => {
                self.search_error = None;
                b
            }
            Err(e) => {
                self.search_error = Some(e.to_string());
                Vec::new()
            }
        };
        LogFilter {
            endpoint: self.endpoint.clone(),
            kinds: self.kinds,
            peer: self.peer.clone(),
            needle,
            ignore_case: !self.match_case && !self.search_hex,
        }
    }

    /// Why the search is not valid, if it is not.
    pub fn search_error(&self) -> Option<&str> {
        self.search_error.as_deref()
    }

    /// The rows shown, as entry indices (kept current by [`LogView::ui`]).
    pub fn rows(&self) -> &[u32] {
        self.view.indices()
    }

    /// Brings the filtered rows (and, while it is shown, the message view)
    /// up to date with the log.
    pub fn refresh(&mut self, log: &TrafficLog) -> bool {
        let filter = self.wanted_filter();
        self.view.set_filter(filter);
        let mut done = self.view.refresh(log, FILTER_BUDGET);
        if self.shows_messages() {
            done &= self.messages.refresh(log, FILTER_BUDGET);
            done &= self.refresh_message_rows(log);
        }
        done
    }

    /// The receive framing of each endpoint (by name): the message view is
    /// offered when one of them is not raw.
    pub fn set_framings(&mut self, framings: Vec<(String, ReceiveFraming)>) {
        if self.messages.set_framings(framings) {
            self.message_rows = MessageRows::default();
        }
    }

    /// Whether the rows are messages now (asked for, and some endpoint has a framing).
    pub fn shows_messages(&self) -> bool {
        self.by_message && self.messages.is_active()
    }

    /// The message view's rows (kept current by [`LogView::ui`] while shown).
    pub fn message_rows(&self) -> &[RowRef] {
        &self.message_rows.rows
    }

    /// Message `index` of the message view.
    pub fn message(&self, index: u32) -> Option<&MessageRow> {
        self.messages.messages().get(index as usize)
    }

    /// Turns the filtered entries the message index has read into rows;
    /// true when every filtered entry is a row.
    fn refresh_message_rows(&mut self, log: &TrafficLog) -> bool {
        let basis = (self.view.filter().clone(), log.generation());
        let rows = &mut self.message_rows;
        if rows.basis.as_ref() != Some(&basis) || rows.converted > self.view.len() {
            *rows = MessageRows {
                basis: Some(basis),
                ..MessageRows::default()
            };
        }
        let indices = self.view.indices();
        while let Some(&entry) = indices.get(rows.converted) {
            if entry as usize >= self.messages.scanned() {
                return false;
            }
            if self.messages.frames(log, entry as usize) {
                for m in self.messages.range_of_entry(entry) {
                    rows.rows.push(RowRef::Message(m as u32));
                    rows.entries.push(entry);
                    rows.messages += 1;
                }
            } else {
                rows.rows.push(RowRef::Entry(entry));
                rows.entries.push(entry);
            }
            rows.converted += 1;
        }
        true
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

    /// The endpoint filter's choices.
    fn endpoint_choices(&mut self, ui: &mut Ui, log: &TrafficLog) {
        ui.selectable_value(&mut self.endpoint, None, "all endpoints");
        for name in log.endpoints() {
            ui.selectable_value(
                &mut self.endpoint,
                Some(name.clone()),
                escape_controls(name),
            );
        }
    }

    /// The kind filter's choices.
    fn kind_choices(&mut self, ui: &mut Ui) {
        let relays = !self.relays.is_empty();
        for k in KindFilter::ALL {
            // A relay's received rows are what its clients sent on.
            let label = match k {
                KindFilter::Sent if relays => "sent -> (relay: upstream → client)".into(),
                KindFilter::Received if relays => "received <- (relay: client → upstream)".into(),
                _ => k.label().to_owned(),
            };
            ui.selectable_value(&mut self.kinds, k, label);
        }
    }

    /// The peer filter's choices.
    fn peer_choices(&mut self, ui: &mut Ui, log: &TrafficLog) {
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
    }

    /// The payload preview's choices.
    fn preview_choices(ui: &mut Ui, prefs: &mut Prefs) {
        for mode in PreviewMode::ALL {
            ui.selectable_value(&mut prefs.preview, mode, mode.label())
                .on_hover_text(format!("Show payloads {}", mode.label()));
        }
    }

    /// The first half of the filter bar: which rows to show, and how.
    fn filter_bar_ui(&mut self, ui: &mut Ui, log: &TrafficLog, prefs: &mut Prefs) {
        let label = ui.label("Endpoints");
        let endpoint_text = self.endpoint.as_deref().map_or_else(
            || "all endpoints".into(),
            |n| escape_controls(n).into_owned(),
        );
        egui::ComboBox::from_id_salt("log endpoint filter")
            .selected_text(endpoint_text)
            .width(90.0)
            .truncate()
            .show_ui(ui, |ui| self.endpoint_choices(ui, log))
            .response
            .labelled_by(label.id)
            .on_hover_text("Show the rows of one endpoint only");
        let label = ui.label("Kinds");
        egui::ComboBox::from_id_salt("log kind filter")
            .selected_text(self.kinds.label())
            .width(66.0)
            .truncate()
            .show_ui(ui, |ui| self.kind_choices(ui))
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
            .width(66.0)
            .truncate()
            .show_ui(ui, |ui| self.peer_choices(ui, log))
            .response
            .labelled_by(label.id)
            .on_hover_text("Show the rows of one peer (one connection, or one UDP address) only");
        let label = ui.label("Show");
        egui::ComboBox::from_id_salt("log preview mode")
            .selected_text(prefs.preview.label())
            .width(70.0)
            .show_ui(ui, |ui| Self::preview_choices(ui, prefs))
            .response
            .labelled_by(label.id)
            .on_hover_text("Show payloads as text, as hex, or both");
    }

    /// The same choices in a menu (the bar is too narrow for them), under
    /// their names, one column each, so no choice opens a popup of its own.
    fn filter_menu_ui(&mut self, ui: &mut Ui, log: &TrafficLog, prefs: &mut Prefs) {
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.strong("Endpoints");
                self.endpoint_choices(ui, log);
            });
            ui.vertical(|ui| {
                ui.strong("Kinds");
                self.kind_choices(ui);
            });
            ui.vertical(|ui| {
                ui.strong("Peers");
                self.peer_choices(ui, log);
            });
            ui.vertical(|ui| {
                ui.strong("Show");
                Self::preview_choices(ui, prefs);
            });
        });
    }

    /// How many of the endpoint, kind and peer filters narrow the rows.
    fn filters_set(&self) -> usize {
        usize::from(self.endpoint.is_some())
            + usize::from(self.kinds != KindFilter::All)
            + usize::from(self.peer.is_some())
    }

    /// The second half of the filter bar: find, and what to do. `compact`
    /// puts the rarely used actions (playback, clear) in a "⋯" menu.
    fn view_bar_ui(&mut self, ui: &mut Ui, log: &TrafficLog, compact: bool) -> LogAction {
        let mut action = LogAction::None;
        let search_label = ui.label("Find");
        let search = ui
            .add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text(if self.search_hex {
                        "hex bytes"
                    } else {
                        "text, \\r\\n"
                    })
                    .desired_width(if compact { 90.0 } else { 110.0 }),
            )
            .labelled_by(search_label.id)
            .on_hover_text(
                "Show only rows whose bytes contain this (Ctrl+F); text takes the escapes \\r \\n \\t \\xNN",
            );
        if std::mem::take(&mut self.focus_search) {
            search.request_focus();
        }
        ui.add_enabled_ui(!self.search_hex, |ui| {
            ui.toggle_value(&mut self.match_case, "Aa")
                .on_hover_text(
                    "Match case: when on, Find tells upper from lower case (off: host finds Host:)",
                )
                .on_disabled_hover_text("Hex bytes are matched exactly");
        });
        ui.toggle_value(&mut self.search_hex, "hex")
            .on_hover_text("Search for hex bytes (like 0d 0a) instead of text");
        if self.messages.is_active() {
            ui.selectable_value(&mut self.by_message, false, "Reads")
                .on_hover_text("One row per read, as the network delivered the bytes");
            ui.selectable_value(&mut self.by_message, true, "Messages")
                .on_hover_text(
                    "One row per message, cut from each connection's received reads by its endpoint's framing (a message split across reads is one row)",
                );
        }
        if ui
            .button("⬇ Latest")
            .on_hover_text("Scroll to the newest row and follow new rows again")
            .clicked()
        {
            self.jump_to_end = true;
        }
        let mut rare = |ui: &mut Ui| {
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
        };
        if compact {
            ui.menu_button("⋯", |ui| rare(ui))
                .response
                .on_hover_text("Playback and Clear log");
        } else {
            rare(ui);
        }
        let shown = self.view.len();
        let total = log.len();
        let count = if self.shows_messages() {
            let n = self.message_rows.rows.len();
            let messages = self.message_rows.messages;
            let skipped = match self.messages.skipped {
                0 => String::new(),
                n => format!(", {n} more messages not indexed"),
            };
            format!("{n} rows ({messages} messages) from {shown} of {total} entries{skipped}")
        } else if shown == total {
            format!("{total} rows")
        } else {
            format!("{shown} of {total} rows")
        };
        // Last on the row: on a narrow pane it is elided (whole on hover)
        // rather than drawn past the pane's edge.
        ui.add(egui::Label::new(count.clone()).truncate())
            .on_hover_text(count);
        if let Some(e) = &self.search_error {
            // One line, elided, the whole reason on hover: a long reason must
            // not wrap the bar and push the rows down.
            let text = format!("⚠ search {}", escape_controls(e));
            let width = ui.available_width().clamp(24.0, SEARCH_ERROR_WIDTH);
            let color = ui.visuals().error_fg_color;
            ui.allocate_ui(egui::vec2(width, ui.spacing().interact_size.y), |ui| {
                ui.add(
                    egui::Label::new(RichText::new(text.clone()).color(color))
                        .truncate()
                        .show_tooltip_when_elided(false),
                )
                .on_hover_text(text);
            });
        }
        action
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

        // One line at every width: both halves where they fit, else the
        // filters in a menu and the rarely used actions in another, so the
        // bar never takes the rows' room at the window sizes people use.
        let spacing = ui.spacing().item_spacing.x;
        let full = self.bar_widths[0] + self.bar_widths[1] + 3.0 * spacing <= ui.available_width();
        ui.horizontal(|ui| {
            if full {
                let a = ui
                    .horizontal(|ui| self.filter_bar_ui(ui, log, prefs))
                    .response;
                ui.separator();
                let b = ui
                    .horizontal(|ui| action = self.view_bar_ui(ui, log, false))
                    .response;
                // Measured only in full, so a wider window finds it fits again.
                self.bar_widths = [a.rect.width(), b.rect.width()];
            } else {
                let title = match self.filters_set() {
                    0 => "⏷ Filters".to_owned(),
                    n => format!("⏷ Filters ({n})"),
                };
                ui.menu_button(title, |ui| self.filter_menu_ui(ui, log, prefs))
                    .response
                    .on_hover_text(
                        "Which rows to show (endpoint, kind, peer) and how (text or hex)",
                    );
                ui.separator();
                action = self.view_bar_ui(ui, log, true);
            }
        });
        let until = self.playback_ui(ui, log);
        ui.separator();

        // Labels in rows must not take the clicks that select the row.
        ui.style_mut().interaction.selectable_labels = false;
        let selected = self.selected;
        let by_message = self.shows_messages();
        // Each row's entry; in the message view, a row may be a message instead.
        let mut rows: &[u32] = if by_message {
            &self.message_rows.entries
        } else {
            self.view.indices()
        };
        let messages = &self.messages;
        let row_refs = &self.message_rows.rows;
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
        let columns = LogColumns::for_width(ui.available_width(), time_width);
        let height = ui.available_height();
        let mut table = TableBuilder::new(ui)
            .id_salt(("traffic log", columns.length))
            .striped(true)
            .stick_to_bottom(true)
            .animate_scrolling(false)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .min_scrolled_height(0.0);
        for column in columns.fixed() {
            table = table.column(column);
        }
        table = table.column(Column::remainder().clip(true));
        if std::mem::take(&mut self.jump_to_end) {
            self.unfollowed = false;
            self.last_rows = usize::MAX;
        }
        // Following: new rows, or a changed height (a dragged split), put the
        // view back at the newest row.
        let mut scripted = false;
        if !self.unfollowed
            && !rows.is_empty()
            && (rows.len() != self.last_rows || (height - self.last_height).abs() > 0.5)
        {
            table = table.scroll_to_row(rows.len() - 1, Some(egui::Align::BOTTOM));
            scripted = true;
        }
        if let Some(row) = self.jump_to.take()
            && let Some(position) = rows.iter().position(|&i| i as usize == row)
        {
            table = table.scroll_to_row(position, Some(egui::Align::Center));
            self.unfollowed = true;
            scripted = true;
        }
        self.last_rows = rows.len();
        self.last_height = height;
        let time_display = prefs.time;
        let mode = prefs.preview;
        let mut clicked = None;
        let output = table
            .header(row_height, |mut header| {
                for title in columns.titles() {
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
                    let message = match row_refs.get(row.index()) {
                        Some(RowRef::Message(m)) if by_message => {
                            messages.messages().get(*m as usize)
                        }
                        _ => None,
                    };
                    row.set_selected(selected == Some(index));
                    let color = kind_color(&visuals, e.kind);
                    row.col(|ui| {
                        ui.label(RichText::new(format_time(e.at(), time_display)).monospace())
                            .on_hover_text(crate::persist::format_timestamp(&e.at()));
                    });
                    row.col(|ui| {
                        let name = escape_controls(log.endpoint_name(e));
                        ui.label(name.as_ref()).on_hover_text(name.as_ref());
                    });
                    row.col(|ui| {
                        let peer = peer_text(log, e);
                        let detail = String::from_utf8_lossy(log.bytes_of(e));
                        let why = if e.kind.is_traffic() {
                            ""
                        } else {
                            detail.as_ref()
                        };
                        let relay = self.relays.iter().any(|r| r == log.endpoint_name(e));
                        let text = row_text(e.kind, relay, log.bytes_of(e));
                        if marks.contains_key(&index) {
                            ui.label(
                                RichText::new(format!("≠ {text}"))
                                    .color(visuals.error_fg_color)
                                    .strong(),
                            )
                            .on_hover_text(
                                "A replay check found the first difference from the recording in this row",
                            );
                        } else if message.is_some() {
                            ui.label(RichText::new("← message").color(color)).on_hover_text(
                                "A message cut from the received reads by the endpoint's framing; \
                                 this row stands at the read that completed it",
                            );
                        } else {
                            ui.label(RichText::new(text).color(color))
                                .on_hover_text(explain::explain(
                                    e.kind,
                                    log.endpoint_name(e),
                                    &peer,
                                    why,
                                ));
                        }
                    });
                    row.col(|ui| {
                        let peer = peer_text(log, e);
                        ui.label(&peer).on_hover_text(&peer);
                    });
                    if columns.length {
                        row.col(|ui| {
                            if let Some(m) = message {
                                ui.label(m.len.to_string());
                            } else if e.kind.is_traffic() {
                                ui.label(e.len().to_string());
                            }
                        });
                    }
                    if let Some(m) = message {
                        row.col(|ui| {
                            let mut text = message_preview(m, mode);
                            if !columns.length {
                                text = format!("{} B  {text}", m.len);
                            }
                            ui.label(RichText::new(text).monospace()).on_hover_ui(|ui| {
                                ui.set_max_width(640.0);
                                ui.label(
                                    RichText::new(text_view(&m.preview, HOVER_BYTES)).monospace(),
                                );
                                if m.first as usize != index {
                                    ui.label(format!(
                                        "began in an earlier read (row {} of the log)",
                                        m.first + 1
                                    ));
                                }
                            });
                        });
                        if row.response().clicked() {
                            clicked = Some(index);
                        }
                        return;
                    }
                    row.col(|ui| {
                        let mut text = preview_text(log, e, mode);
                        if !columns.length && e.kind.is_traffic() {
                            // The length column gave way to the payload: the
                            // count leads the preview instead.
                            text = format!("{} B  {text}", e.len());
                        }
                        let rich = RichText::new(text).monospace();
                        ui.label(if e.kind.is_traffic() {
                            rich
                        } else {
                            rich.color(color)
                        })
                        .on_hover_ui(|ui| {
                            // The whole payload, its lines as lines: what a
                            // clipped cell cuts off, without leaving the log.
                            ui.set_max_width(640.0);
                            ui.label(
                                RichText::new(text_view(log.bytes_of(e), HOVER_BYTES)).monospace(),
                            );
                        });
                    });
                    if row.response().clicked() {
                        clicked = Some(index);
                    }
                });
            });
        if !scripted {
            // Scrolled away from the end by the person: stop following;
            // back at the end: follow again.
            let end = (output.content_size.y - output.inner_rect.height()).max(0.0);
            self.unfollowed = output.state.clamped_offset().y < end - 1.0;
        }
        if let Some(index) = clicked {
            self.selected = Some(index);
        }
        action
    }

    /// Whether new rows scroll the view (the person has not scrolled away).
    pub fn follows(&self) -> bool {
        !self.unfollowed
    }
}

/// Bytes of a payload shown on hover at most.
const HOVER_BYTES: usize = 2048;

/// A payload for reading: text with its line breaks as real line breaks (each
/// line still shows its `\r\n` escapes, so the line ending can be seen), other
/// controls and binary bytes escaped; at most `limit` bytes, then `…`.
pub fn text_view(data: &[u8], limit: usize) -> String {
    let shown = &data[..data.len().min(limit)];
    let mut text = String::with_capacity(shown.len() + 16);
    for line in shown.split_inclusive(|&b| b == b'\n') {
        text.push_str(&to_text_notation(line));
        if line.ends_with(b"\n") {
            text.push('\n');
        }
    }
    if data.len() > shown.len() {
        text.push('…');
    }
    text
}

/// The log's columns for a table `width` points wide: every column but the
/// payload gets a share, so the payload keeps the rest; below a width the
/// length column gives way (its count leads the payload instead).
#[derive(Clone, Copy, Debug, PartialEq)]
struct LogColumns {
    width: f32,
    time: f32,
    /// Whether the length column is shown.
    length: bool,
}

/// Below this table width the length column gives way to the payload.
const LENGTH_COLUMN_FROM: f32 = 820.0;

impl LogColumns {
    fn for_width(width: f32, time: f32) -> LogColumns {
        LogColumns {
            width,
            time,
            length: width >= LENGTH_COLUMN_FROM,
        }
    }

    /// The widest each fixed column may be: their sum leaves the payload at
    /// least about 40% of the table.
    fn caps(&self) -> [f32; 5] {
        let w = self.width;
        [
            (w * 0.18).clamp(72.0, self.time.max(72.0)),
            (w * 0.11).clamp(50.0, 200.0),
            (w * 0.14).clamp(64.0, 220.0),
            (w * 0.14).clamp(48.0, 220.0),
            (w * 0.06).clamp(36.0, 80.0),
        ]
    }

    fn fixed(&self) -> Vec<Column> {
        let caps = self.caps();
        let initial = [self.time, 100.0, 130.0, 140.0, 60.0];
        let least = [60.0, 40.0, 50.0, 36.0, 30.0];
        let count = if self.length { 5 } else { 4 };
        (0..count)
            .map(|i| {
                Column::initial(initial[i].min(caps[i]))
                    .range(least[i]..=caps[i].max(least[i]))
                    .resizable(true)
                    .clip(true)
            })
            .collect()
    }

    fn titles(&self) -> Vec<&'static str> {
        let mut titles = vec!["Time", "Endpoint", "Event", "Peer"];
        if self.length {
            titles.push("Length");
        }
        titles.push("Payload or detail");
        titles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed columns at their widest, with the gaps between columns.
    fn fixed_width(c: &LogColumns) -> f32 {
        let n = if c.length { 5 } else { 4 };
        c.caps()[..n].iter().sum::<f32>() + 8.0 * (n as f32 + 1.0)
    }

    #[test]
    fn a_relays_rows_say_their_way_and_what_was_done() {
        assert_eq!(
            row_text(EntryKind::Received, true, b"x"),
            "⬆ client → upstream"
        );
        assert_eq!(row_text(EntryKind::Sent, true, b"x"), "⬇ upstream → client");
        assert_eq!(row_text(EntryKind::Received, false, b"x"), "← received");
        assert_eq!(
            row_text(
                EntryKind::Note,
                true,
                b"down: 4 bytes held 50ms (latency 50ms)"
            ),
            "⚡ impaired ⬇"
        );
        assert_eq!(
            row_text(
                EntryKind::Note,
                true,
                b"up: edited #3: passed on as 1 bytes"
            ),
            "✏ edited ⬆"
        );
        assert_eq!(
            row_text(EntryKind::Note, true, b"upstream: connected"),
            "ℹ note"
        );
    }

    #[test]
    fn the_payload_column_keeps_a_third_of_the_table_at_every_width() {
        for width in [500.0, 560.0, 700.0, 900.0, 1200.0, 1600.0] {
            let c = LogColumns::for_width(width, 135.0);
            let payload = width - fixed_width(&c);
            assert!(
                payload >= width * 0.33,
                "{width}: the payload keeps {payload} points"
            );
        }
        assert!(!LogColumns::for_width(600.0, 135.0).length);
        assert!(LogColumns::for_width(1000.0, 135.0).length);
    }

    #[test]
    fn the_text_view_breaks_lines_where_the_payload_does() {
        let http = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            text_view(http, 1024),
            "HTTP/1.1 200 OK\\r\\n\nContent-Length: 2\\r\\n\n\\r\\n\nhi"
        );
        // Binary bytes and controls stay escapes, never raw.
        assert_eq!(text_view(b"\x1b[31m\xff", 1024), "\\x1b[31m\\xff");
        assert_eq!(text_view(b"abcdef", 3), "abc…");
    }
}
