//! The sequence diagram: a lifeline per endpoint and outside peer, an arrow per
//! payload and connection event; click an arrow to select its log row.

use std::borrow::Cow;

use egui::{Align2, FontId, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};

use super::log_view::kind_color;
use crate::export::sequence::{MessageKind, Sequence, payload_label, sequence_with};
use crate::model::TrafficLog;
use crate::model::display::escape_controls;
use crate::model::log::EntryKind;

const ROW: f32 = 30.0;
const HEADER: f32 = 34.0;

/// The diagram, rebuilt only when the log changed.
#[derive(Default)]
pub struct SequenceView {
    cache: Option<(u64, usize, Sequence)>,
    /// Payload labels by log row, for the log generation in `labels_of`: the
    /// diagram is built again each time the log grows (every frame under a
    /// flood), and each payload is looked at once, not at every build.
    labels: Vec<Option<String>>,
    labels_of: u64,
    /// Payload labels made so far (each reads its payload's first bytes).
    labels_made: usize,
    /// When the diagram was last copied, for the "copied" mark.
    copied_at: Option<std::time::Instant>,
}

impl SequenceView {
    fn sequence(&mut self, log: &TrafficLog) -> &Sequence {
        let key = (log.generation(), log.len());
        if self.cache.as_ref().is_none_or(|(g, n, _)| (*g, *n) != key) {
            if self.labels_of != key.0 {
                self.labels.clear();
                self.labels_of = key.0;
            }
            let labels = &mut self.labels;
            let made = &mut self.labels_made;
            labels.resize(key.1, None);
            let seq = sequence_with(log, &mut |row, e| {
                labels[row]
                    .get_or_insert_with(|| {
                        *made += 1;
                        payload_label(log, e)
                    })
                    .clone()
            });
            // Labels of rows already spilled read their first bytes from the
            // spill file: those pages go back at once.
            if log.spilled_pages_read() {
                log.release_spilled_pages();
            }
            self.cache = Some((key.0, key.1, shown(seq)));
        }
        &self.cache.as_ref().expect("filled above").2
    }

    /// Shows the diagram; returns the log row of a clicked arrow.
    pub fn ui(&mut self, ui: &mut Ui, log: &TrafficLog, selected: Option<usize>) -> Option<usize> {
        let mut clicked = None;
        ui.horizontal(|ui| {
            if ui
                .button("📋 Copy as Mermaid")
                .on_hover_text("Copy the diagram as a Mermaid sequenceDiagram, for docs and slides")
                .clicked()
            {
                ui.ctx().copy_text(crate::export::mermaid::to_mermaid(log));
                self.copied_at = Some(std::time::Instant::now());
            }
            super::copied_mark(ui, &mut self.copied_at);
            ui.label("Solid arrows are payloads, dashed ones connection events; click one to see its row.");
        });
        let visuals = ui.visuals().clone();
        let seq = self.sequence(log).clone();
        if seq.messages.is_empty() {
            ui.label("Nothing to draw yet: start the endpoints and send something.");
            return None;
        }
        let lanes = seq.participants.len().max(1);
        let lane_width = (ui.available_width() / lanes as f32).max(170.0);
        let lane_x = |left: f32, i: usize| left + lane_width * (i as f32 + 0.5);
        let text_color = visuals.text_color();
        let line = Stroke::new(1.0, visuals.weak_text_color());

        egui::ScrollArea::horizontal()
            .id_salt("sequence scroll x")
            .show(ui, |ui| {
                let width = lane_width * lanes as f32;
                // Lifeline heads, always on top.
                let (head, _) = ui.allocate_exact_size(vec2(width, HEADER), Sense::hover());
                let painter = ui.painter_at(head);
                for (i, name) in seq.participants.iter().enumerate() {
                    let x = lane_x(head.left(), i);
                    let rect = Rect::from_center_size(
                        pos2(x, head.center().y),
                        vec2(lane_width - 20.0, HEADER - 8.0),
                    );
                    painter.rect(
                        rect,
                        4.0,
                        visuals.faint_bg_color,
                        Stroke::new(1.0, text_color),
                        egui::StrokeKind::Inside,
                    );
                    painter.text(
                        rect.center(),
                        Align2::CENTER_CENTER,
                        name,
                        FontId::proportional(13.0),
                        text_color,
                    );
                }
                egui::ScrollArea::vertical()
                    .id_salt("sequence scroll y")
                    .auto_shrink([false, false])
                    .show_rows(ui, ROW, seq.messages.len(), |ui, range| {
                        for m in &seq.messages[range] {
                            let (rect, response) =
                                ui.allocate_exact_size(vec2(width, ROW), Sense::click());
                            let painter = ui.painter_at(rect);
                            if selected == Some(m.row) {
                                painter.rect_filled(
                                    rect,
                                    0.0,
                                    visuals.selection.bg_fill.gamma_multiply(0.5),
                                );
                            }
                            for i in 0..lanes {
                                let x = lane_x(rect.left(), i);
                                painter.line_segment(
                                    [pos2(x, rect.top()), pos2(x, rect.bottom())],
                                    line,
                                );
                            }
                            let kind = log.entry(m.row).map_or(EntryKind::Note, |e| e.kind);
                            let color = kind_color(&visuals, kind);
                            let y = rect.center().y + 6.0;
                            let (from, to) =
                                (lane_x(rect.left(), m.from), lane_x(rect.left(), m.to));
                            match m.kind {
                                MessageKind::Payload | MessageKind::Control => {
                                    let stroke = Stroke::new(1.5, color);
                                    if m.kind == MessageKind::Payload {
                                        painter.line_segment([pos2(from, y), pos2(to, y)], stroke);
                                    } else {
                                        dashed(&painter, pos2(from, y), pos2(to, y), stroke);
                                    }
                                    let dir = if to >= from { 1.0 } else { -1.0 };
                                    painter.line_segment(
                                        [pos2(to, y), pos2(to - dir * 8.0, y - 4.0)],
                                        stroke,
                                    );
                                    painter.line_segment(
                                        [pos2(to, y), pos2(to - dir * 8.0, y + 4.0)],
                                        stroke,
                                    );
                                    painter.text(
                                        pos2((from + to) / 2.0, y - 3.0),
                                        Align2::CENTER_BOTTOM,
                                        &m.label,
                                        FontId::monospace(11.0),
                                        color,
                                    );
                                }
                                MessageKind::Note | MessageKind::Failure => {
                                    let galley = painter.layout_no_wrap(
                                        m.label.clone(),
                                        FontId::proportional(12.0),
                                        color,
                                    );
                                    let note = Rect::from_min_size(
                                        pos2(
                                            from - 6.0,
                                            rect.center().y - galley.size().y / 2.0 - 2.0,
                                        ),
                                        galley.size() + vec2(12.0, 4.0),
                                    );
                                    painter.rect_filled(note, 3.0, visuals.extreme_bg_color);
                                    painter.rect_stroke(
                                        note,
                                        3.0,
                                        Stroke::new(1.0, color),
                                        egui::StrokeKind::Inside,
                                    );
                                    painter.galley(note.min + vec2(6.0, 2.0), galley, color);
                                }
                            }
                            // Named, so screen readers (and tests) can find each arrow.
                            let name = format!(
                                "{} → {}: {}",
                                seq.participants[m.from], seq.participants[m.to], m.label
                            );
                            response.widget_info(|| {
                                egui::WidgetInfo::labeled(egui::Role::Button, true, &name)
                            });
                            if response
                                .on_hover_text(format!("Row {}: {}", m.row + 1, m.label))
                                .clicked()
                            {
                                clicked = Some(m.row);
                            }
                        }
                    });
            });
        clicked
    }
}

/// The diagram as it may be drawn: names and labels come from peers and
/// files, so their controls and bidi characters are escaped (a newline would
/// break a label in two, an override reorder it).
fn shown(mut seq: Sequence) -> Sequence {
    for name in &mut seq.participants {
        if let Cow::Owned(escaped) = escape_controls(name) {
            *name = escaped;
        }
    }
    for m in &mut seq.messages {
        if let Cow::Owned(escaped) = escape_controls(&m.label) {
            m.label = escaped;
        }
    }
    seq
}

fn dashed(painter: &egui::Painter, a: Pos2, b: Pos2, stroke: Stroke) {
    let length = (b.x - a.x).abs();
    let dir = if b.x >= a.x { 1.0 } else { -1.0 };
    let mut x = 0.0;
    while x < length {
        let end = (x + 6.0).min(length);
        painter.line_segment(
            [pos2(a.x + dir * x, a.y), pos2(a.x + dir * end, a.y)],
            stroke,
        );
        x += 10.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{LogBudget, NO_PEER, Overflow};

    #[test]
    fn a_diagram_built_again_as_the_log_grows_reads_no_old_payload_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TrafficLog::with_budget(LogBudget::new(0, Overflow::Spill))
            .spill_in(vec![dir.path().to_path_buf()]);
        let ep = log.endpoint_index("client");
        let peer = log.peer_index(ep, 0, "127.0.0.1:9");
        let at = chrono::Utc::now();
        log.push(at, ep, NO_PEER, EntryKind::Listening, b"127.0.0.1:8");
        for i in 0..25u8 {
            log.push(at, ep, peer, EntryKind::Sent, &[b'a' + i; 1 << 20]);
        }
        let mut view = SequenceView::default();
        let arrows = view.sequence(&log).messages.len();
        assert!(arrows >= 25, "{arrows}");
        assert_eq!(view.labels_made, 25);
        assert!(
            !log.spilled_pages_read(),
            "the spilled pages the labels read were given back"
        );
        log.push(at, ep, peer, EntryKind::Sent, b"one more");
        assert_eq!(view.sequence(&log).messages.len(), arrows + 1);
        assert_eq!(
            view.labels_made, 26,
            "building the diagram again looked at the earlier payloads again"
        );
        let labels: Vec<&str> = view
            .sequence(&log)
            .messages
            .iter()
            .map(|m| m.label.as_str())
            .collect();
        assert!(labels.iter().any(|l| l.starts_with("\"aaaa")), "{labels:?}");
    }
}
