//! A relay's intercept in the window: a Hold switch per direction on a
//! running relay, and the payloads held, each forwarded as read, edited (text
//! or hex) then forwarded, or dropped — one by one or all. The engine keeps
//! the order of each client's direction and bounds what it holds
//! ([`crate::engine::intercept`]); this pane shows what it reports.

use std::collections::VecDeque;

use bytes::Bytes;
use egui::{RichText, Ui};

use super::{App, AppCommand};
use crate::engine::intercept::{HOLD_BYTES, HOLD_ITEMS, HeldChange, Pick, Verdict};
use crate::engine::{EventKind, PeerId};
use crate::model::Notation;
use crate::model::display::escape_controls;
use crate::model::impair::Way;

/// Held items shown at most (the rest are counted; they are forwarded or
/// dropped with "all").
const SHOWN: usize = 200;

/// A payload the relay holds.
#[derive(Clone, Debug)]
pub struct HeldItem {
    pub peer: PeerId,
    pub way: Way,
    pub item: u64,
    pub bytes: Bytes,
    /// Being edited: the text and its notation, and why it does not parse.
    pub edit: Option<(String, Notation)>,
    /// Decided here; the engine passes it on once the items before it are.
    pub decided: bool,
}

/// What a relay's intercept shows: the switches, and what is held, in order.
#[derive(Clone, Debug, Default)]
pub struct InterceptUi {
    /// Up (client → upstream), down (upstream → client).
    pub hold: [bool; 2],
    pub held: VecDeque<HeldItem>,
}

fn slot(way: Way) -> usize {
    match way {
        Way::Up => 0,
        Way::Down => 1,
    }
}

impl InterceptUi {
    /// Applies an event of the relay.
    pub fn on_event(&mut self, kind: &EventKind) {
        match kind {
            EventKind::Intercept {
                peer,
                way,
                item,
                change: HeldChange::Held(bytes),
            } => self.held.push_back(HeldItem {
                peer: *peer,
                way: *way,
                item: *item,
                bytes: bytes.clone(),
                edit: None,
                decided: false,
            }),
            EventKind::Intercept { item, .. } => self.held.retain(|h| h.item != *item),
            // What a client's ended connection held is gone with it.
            EventKind::Closed { peer, .. } => self.held.retain(|h| h.peer != *peer),
            EventKind::Stopped => *self = InterceptUi::default(),
            _ => {}
        }
    }
}

/// A payload in one line: text where it is printable, else hex; cut to `max` characters.
fn preview(bytes: &[u8], max: usize) -> String {
    let notation = crate::model::payload::natural_notation(bytes);
    let text = notation.format(bytes);
    let cut: String = text.chars().take(max).collect();
    let mut shown = escape_controls(&cut).into_owned();
    if cut.len() < text.len() {
        shown.push('…');
    }
    shown
}

impl App {
    /// The relay's intercept pane (in the composer's place).
    pub(super) fn intercept_ui(
        &mut self,
        ui: &mut Ui,
        index: usize,
        commands: &mut Vec<AppCommand>,
    ) {
        let Some(e) = self.doc.endpoints.get_mut(index) else {
            return;
        };
        let running = e.state.is_running();
        ui.heading("Intercept");
        if !running {
            ui.label(
                "Start the relay to hold what passes through it: each direction can hold its \
                 payloads for you to forward, edit or drop. Its rows in the log show each \
                 client's traffic both ways.",
            );
            return;
        }
        let intercept = &mut e.intercept;
        for way in [Way::Up, Way::Down] {
            ui.horizontal_wrapped(|ui| {
                let mut on = intercept.hold[slot(way)];
                let label = format!("✋ Hold {}", way.arrow());
                if ui
                    .toggle_value(&mut on, label)
                    .on_hover_text(if on {
                        "Holding: what is read this way waits here. Turn off to forward what waits, in order"
                    } else {
                        "Hold what is read this way: each payload waits here to be forwarded, edited or dropped"
                    })
                    .changed()
                {
                    intercept.hold[slot(way)] = on;
                    commands.push(AppCommand::SetHold { index, way, on });
                }
                let waiting = intercept.held.iter().filter(|h| h.way == way).count();
                if waiting > 0 {
                    ui.label(format!("{waiting} held"));
                    if ui
                        .button(format!("➡ Forward all {}", way.word()))
                        .on_hover_text(format!("Forward every payload held {}, in order", way.arrow()))
                        .clicked()
                    {
                        commands.push(AppCommand::DecideHeld {
                            index,
                            way,
                            pick: Pick::All,
                            verdict: Verdict::Forward,
                        });
                    }
                    if ui
                        .button(format!("🗑 Drop all {}", way.word()))
                        .on_hover_text(format!("Drop every payload held {}: none is passed on", way.arrow()))
                        .clicked()
                    {
                        commands.push(AppCommand::DecideHeld {
                            index,
                            way,
                            pick: Pick::All,
                            verdict: Verdict::Drop,
                        });
                    }
                }
            });
        }
        ui.label(
            RichText::new(format!(
                "Each client holds at most {HOLD_ITEMS} payloads or {} KiB a direction; when that \
                 is full, a TCP or TLS relay stops reading that side (TCP slows the sender) and a \
                 UDP relay drops datagrams, counted in the log.",
                HOLD_BYTES / 1024
            ))
            .small()
            .weak(),
        );
        if intercept.held.is_empty() {
            ui.label("Nothing is held.");
            return;
        }
        ui.separator();
        let hidden = intercept.held.len().saturating_sub(SHOWN);
        egui::ScrollArea::vertical()
            .id_salt("held payloads")
            .auto_shrink([false, true])
            .max_height(420.0)
            .show(ui, |ui| {
                for h in intercept.held.iter_mut().take(SHOWN) {
                    held_item_ui(ui, index, h, commands);
                    ui.separator();
                }
            });
        if hidden > 0 {
            ui.label(format!(
                "and {hidden} more held (forward or drop them with \"all\")"
            ));
        }
    }
}

fn held_item_ui(ui: &mut Ui, index: usize, h: &mut HeldItem, commands: &mut Vec<AppCommand>) {
    let pick = Pick::One {
        peer: h.peer,
        item: h.item,
    };
    let arrow = if h.way == Way::Up { "⬆" } else { "⬇" };
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "✋ #{} {arrow} {} · client #{} · {} bytes",
                h.item,
                h.way.arrow(),
                h.peer,
                h.bytes.len()
            ))
            .strong(),
        );
    });
    ui.label(RichText::new(preview(&h.bytes, 160)).monospace());
    if h.decided {
        ui.label(
            RichText::new("⏳ decided: it goes once the payloads held before it are decided")
                .weak(),
        );
        return;
    }
    let mut decide = |verdict: Verdict| {
        commands.push(AppCommand::DecideHeld {
            index,
            way: h.way,
            pick,
            verdict,
        });
    };
    match &mut h.edit {
        None => {
            let mut edit = false;
            let mut decided = false;
            ui.horizontal_wrapped(|ui| {
                if ui
                    .button(format!("➡ Forward #{}", h.item))
                    .on_hover_text("Pass it on as read (after the payloads held before it)")
                    .clicked()
                {
                    decide(Verdict::Forward);
                    decided = true;
                }
                if ui
                    .button(format!("✏ Edit #{}", h.item))
                    .on_hover_text("Change the bytes, then forward them")
                    .clicked()
                {
                    edit = true;
                }
                if ui
                    .button(format!("🗑 Drop #{}", h.item))
                    .on_hover_text("Never pass it on")
                    .clicked()
                {
                    decide(Verdict::Drop);
                    decided = true;
                }
            });
            if edit {
                let notation = crate::model::payload::natural_notation(&h.bytes);
                h.edit = Some((notation.format(&h.bytes), notation));
            }
            h.decided = decided;
        }
        Some((text, notation)) => {
            let label = ui.label("Edited payload");
            ui.add(
                egui::TextEdit::multiline(text)
                    .desired_rows(3)
                    .desired_width(f32::INFINITY)
                    .code_editor(),
            )
            .labelled_by(label.id)
            .on_hover_text(if *notation == Notation::Hex {
                "Hex bytes: 48 65 6c 6c 6f"
            } else {
                "Text with escapes: \\r \\n \\t \\0 \\\\ \\xNN"
            });
            let parsed = notation.parse(text);
            if let Err(e) = &parsed {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("⚠ {}", escape_controls(&e.to_string())),
                );
            }
            let mut done = false;
            let mut cancel = false;
            ui.horizontal_wrapped(|ui| {
                let mut hex = *notation == Notation::Hex;
                if ui
                    .checkbox(&mut hex, "hex")
                    .on_hover_text("Edit the bytes as hex instead of text")
                    .changed()
                    && let Ok(bytes) = &parsed
                {
                    let to = if hex { Notation::Hex } else { Notation::Text };
                    *text = to.format(bytes);
                    *notation = to;
                }
                if ui
                    .add_enabled(
                        parsed.is_ok(),
                        egui::Button::new(format!("➡ Forward edited #{}", h.item)),
                    )
                    .on_hover_text("Pass these bytes on instead of those read; the log keeps both")
                    .clicked()
                    && let Ok(bytes) = &parsed
                {
                    decide(Verdict::Edited(Bytes::from(bytes.clone())));
                    done = true;
                }
                if ui
                    .button("Cancel")
                    .on_hover_text("Keep it held as read")
                    .clicked()
                {
                    cancel = true;
                }
            });
            if done {
                h.decided = true;
            }
            if done || cancel {
                h.edit = None;
            }
        }
    }
}
