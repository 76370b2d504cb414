//! The inspector: the selected row in full — a hex dump of its payload, copy
//! buttons, and for lifecycle and error rows a sentence that explains them.

use egui::{RichText, Ui};

use super::config::TimeDisplay;
use super::log_view::{format_time, kind_color, peer_text, row_text};
use crate::model::display::escape_controls;
use crate::model::explain;
use crate::model::log::TrafficLog;
use crate::model::payload::{hex_dump_by, hex_dump_line_chars, to_hex, to_text_notation};
use crate::model::replay::Mismatch;

/// What the person asked the inspector to do.
#[derive(Debug, PartialEq, Eq)]
pub enum InspectorAction {
    None,
    /// Put this row's payload into the composer.
    LoadIntoComposer(usize),
    /// Make this row's peer the composer's target.
    ReplyToPeer(usize),
}

/// Lines of hex dump shown at most; the rest is reachable by copying.
const DUMP_LINES: usize = 4096;

pub fn ui(
    ui: &mut Ui,
    log: &TrafficLog,
    selected: Option<usize>,
    time: TimeDisplay,
    mismatch: Option<&Mismatch>,
    relays: &[String],
) -> InspectorAction {
    let mut action = InspectorAction::None;
    ui.heading("Inspector");
    let Some(index) = selected else {
        ui.label("Click a row of the log to see it here in full.");
        return action;
    };
    let Some(e) = log.entry(index) else {
        return action;
    };
    let data = log.bytes_of(e);
    let peer = peer_text(log, e);
    egui::Grid::new("inspector facts")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Row");
            ui.label(format!("{}", index + 1));
            ui.end_row();
            ui.label("Time");
            // The date on hover: on one line with the time it would widen
            // a narrow inspector past its edge.
            ui.label(format_time(e.at(), time))
                .on_hover_text(crate::persist::format_timestamp(&e.at()));
            ui.end_row();
            ui.label("Endpoint");
            ui.label(escape_controls(log.endpoint_name(e)));
            ui.end_row();
            ui.label("Event");
            let relay = relays.iter().any(|r| r == log.endpoint_name(e));
            ui.label(
                RichText::new(row_text(e.kind, relay, data))
                    .color(kind_color(ui.visuals(), e.kind)),
            );
            ui.end_row();
            if relay && e.kind.is_traffic() {
                ui.label("Relay");
                ui.label(if e.kind == crate::model::EntryKind::Received {
                    "read from the client, passed on to the upstream"
                } else {
                    "read from the upstream, passed on to the client"
                });
                ui.end_row();
            }
            if !peer.is_empty() {
                ui.label("Peer");
                ui.label(&peer);
                ui.end_row();
            }
            if e.kind.is_traffic() {
                ui.label("Length");
                ui.label(format!("{} bytes", data.len()));
                ui.end_row();
            }
        });
    ui.separator();

    if let Some(m) = mismatch {
        ui.label(
            RichText::new("≠ Differs from the recording")
                .strong()
                .color(ui.visuals().error_fg_color),
        );
        mismatch_ui(ui, &m.to_string());
        ui.separator();
    }

    if !e.kind.is_traffic() {
        let detail = String::from_utf8_lossy(data);
        if !detail.is_empty() {
            ui.label(RichText::new(escape_controls(&detail)).monospace());
        }
        ui.add_space(4.0);
        ui.label(RichText::new("What happened").strong());
        ui.label(explain::explain(
            e.kind,
            log.endpoint_name(e),
            &peer,
            &detail,
        ));
        return action;
    }

    ui.label(RichText::new(explain::explain(e.kind, log.endpoint_name(e), &peer, "")).weak());
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Copy as text")
            .on_hover_text("Copy the payload as text (bytes that are not UTF-8 become �)")
            .clicked()
        {
            ui.ctx().copy_text(String::from_utf8_lossy(data).into_owned());
        }
        if ui
            .button("Copy as hex")
            .on_hover_text("Copy the payload as hex pairs, like 48 65 6c")
            .clicked()
        {
            ui.ctx().copy_text(to_hex(data));
        }
        if ui
            .button("Copy as escaped")
            .on_hover_text("Copy the payload in text notation with escapes (\\r \\n \\xNN), ready to paste into the composer")
            .clicked()
        {
            ui.ctx().copy_text(to_text_notation(data));
        }
        if ui
            .button("To composer")
            .on_hover_text("Put this payload into the composer to send it again")
            .clicked()
        {
            action = InspectorAction::LoadIntoComposer(index);
        }
        if e.has_peer()
            && ui
                .button("Reply to this peer")
                .on_hover_text("Make this row's peer the composer's destination")
                .clicked()
        {
            action = InspectorAction::ReplyToPeer(index);
        }
    });
    ui.separator();
    payload_ui(ui, data);
    action
}

/// The bytes of a payload shown at most in the text view and the dump; the
/// rest is reachable by copying.
const SHOWN_BYTES: usize = DUMP_LINES * 16;

/// How many bytes a dump line holds in a pane `width` points wide whose
/// monospace characters are `char_width` wide: 16 where they fit, else 8,
/// else 4 (the ASCII column is half the point of a dump and must not scroll
/// out of view).
pub fn dump_bytes_per_line(width: f32, char_width: f32) -> usize {
    let fits = (width / char_width.max(1.0)) as usize;
    [16, 8, 4]
        .into_iter()
        .find(|&n| hex_dump_line_chars(n) <= fits)
        .unwrap_or(4)
}

/// The payload as text (its lines as lines) and as a hex dump: side by side
/// where the pane is wide enough for a 16-byte dump and a text column, else
/// the text above the dump. Both are selectable and copyable.
fn payload_ui(ui: &mut Ui, data: &[u8]) {
    let shown = &data[..data.len().min(SHOWN_BYTES)];
    let char_width = super::log_view::monospace_width(ui, "0").max(1.0);
    // Room for the scroll bar and the text field's margins.
    let chrome = ui.spacing().scroll.bar_width + 24.0;
    let full = ui.available_width();
    let dump16 = hex_dump_line_chars(16) as f32 * char_width + chrome;
    let side_by_side = full >= dump16 + 280.0;
    let dump_width = if side_by_side { dump16 } else { full };
    let per_line = dump_bytes_per_line(dump_width - chrome, char_width);
    let dump = hex_dump_by(shown, per_line);
    let text = super::log_view::text_view(shown, shown.len());
    let height = (ui.available_height() - 2.0 * ui.spacing().interact_size.y).max(120.0);
    if side_by_side {
        ui.horizontal_top(|ui| {
            let text_width = (full - dump_width - ui.spacing().item_spacing.x).max(120.0);
            ui.allocate_ui(egui::vec2(text_width, height), |ui| {
                text_pane_ui(ui, &text, height)
            });
            ui.allocate_ui(egui::vec2(dump_width, height), |ui| {
                dump_pane_ui(ui, &dump, per_line, height)
            });
        });
    } else {
        let half = ((height - ui.spacing().item_spacing.y) / 2.0).max(60.0);
        text_pane_ui(ui, &text, half);
        dump_pane_ui(ui, &dump, per_line, half);
    }
    if data.len() > shown.len() {
        ui.label(format!(
            "The views show the first {} bytes; copy to get all {}.",
            shown.len(),
            data.len()
        ));
    }
}

/// The payload as text: escapes for what is not printable, and a real line
/// break after each line feed.
fn text_pane_ui(ui: &mut Ui, text: &str, height: f32) {
    ui.vertical(|ui| {
        let label = ui.label(RichText::new("As text").strong());
        egui::ScrollArea::both()
            .id_salt("payload text")
            .max_height(height)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                // A `&str` buffer: selectable and copyable, never edited.
                ui.add(
                    egui::TextEdit::multiline(&mut &*text)
                        .code_editor()
                        .desired_width(f32::INFINITY)
                        .desired_rows(1),
                )
                .labelled_by(label.id)
                .on_hover_text(
                    "The payload as text: each line ends with its escapes (\\r\\n), then breaks",
                );
            });
    });
}

/// The hex dump, `per_line` bytes a line.
fn dump_pane_ui(ui: &mut Ui, dump: &str, per_line: usize, height: f32) {
    ui.vertical(|ui| {
        let label = ui
            .label(RichText::new(format!("Bytes, {per_line} a row")).strong())
            .on_hover_text("16 bytes a row where the pane is wide enough, else 8 or 4");
        egui::ScrollArea::both()
            .id_salt("hex dump")
            .max_height(height)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut &*dump)
                        .code_editor()
                        .desired_width(f32::INFINITY)
                        .desired_rows(1),
                )
                .labelled_by(label.id);
            });
    });
}

/// A replay difference: its summary wrapped to the pane, its expected and
/// received lines (with the caret under the first differing character) in a
/// scroll area, not wrapped, so the caret keeps its column.
fn mismatch_ui(ui: &mut Ui, report: &str) {
    let (summary, detail) = report.split_once('\n').unwrap_or((report, ""));
    ui.add(egui::Label::new(RichText::new(summary).strong()).wrap());
    let detail = detail.trim_end();
    if detail.is_empty() {
        return;
    }
    egui::ScrollArea::horizontal()
        .id_salt("difference")
        .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::VisibleWhenNeeded)
        .show(ui, |ui| {
            ui.add(egui::Label::new(RichText::new(detail).monospace()).extend());
        });
}
