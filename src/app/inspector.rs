//! The inspector: the selected row in full — a hex dump of its payload, copy
//! buttons, and for lifecycle and error rows a sentence that explains them.

use egui::{RichText, Ui};

use super::config::TimeDisplay;
use super::log_view::{format_time, kind_color, kind_text, peer_text};
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
            ui.label(format!(
                "{}  ({})",
                format_time(e.at(), time),
                crate::persist::format_timestamp(&e.at())
            ));
            ui.end_row();
            ui.label("Endpoint");
            ui.label(escape_controls(log.endpoint_name(e)));
            ui.end_row();
            ui.label("Event");
            ui.label(RichText::new(kind_text(e.kind)).color(kind_color(ui.visuals(), e.kind)));
            ui.end_row();
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
        // Not wrapped: the caret must stand under the first differing character.
        egui::ScrollArea::horizontal()
            .id_salt("difference")
            .show(ui, |ui| {
                ui.add(egui::Label::new(RichText::new(m.to_string()).monospace()).extend());
            });
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
    // 16 bytes a line where the pane is wide enough, else 8 or 4: the ASCII
    // column is half the point of a dump and must not scroll out of view.
    let char_width = super::log_view::monospace_width(ui, "0").max(1.0);
    let fits = (ui.available_width() / char_width) as usize;
    let per_line = [16, 8, 4]
        .into_iter()
        .find(|&n| hex_dump_line_chars(n) <= fits)
        .unwrap_or(4);
    let dump = hex_dump_by(&data[..data.len().min(DUMP_LINES * per_line)], per_line);
    let lines: Vec<&str> = dump.lines().collect();
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
    egui::ScrollArea::both()
        .id_salt("hex dump")
        .auto_shrink([false, false])
        .show_rows(ui, row_height, lines.len(), |ui, range| {
            for line in &lines[range] {
                ui.add(egui::Label::new(RichText::new(*line).monospace()).extend());
            }
        });
    if data.len() > DUMP_LINES * per_line {
        ui.label(format!(
            "The dump shows the first {} bytes; copy to get all {}.",
            DUMP_LINES * per_line,
            data.len()
        ));
    }
    action
}
