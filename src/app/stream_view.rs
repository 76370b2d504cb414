//! The stream view: one peer's bytes in one direction, shown as the reads that
//! came, as lines, or as length-prefixed frames — so a learner sees message
//! boundaries vanish on the way and come back when the receiver cuts the stream.

use egui::{RichText, Ui};

use crate::model::TrafficLog;
use crate::model::display::escape_controls;
use crate::model::framing::{Framing, cut};
use crate::model::log::EntryKind;
use crate::model::payload::preview;

/// A peer's stream in one direction: (what it was gathered for, the bytes, the read lengths).
type Gathered = ((u64, usize, Option<u32>, EntryKind), Vec<u8>, Vec<usize>);

/// The view's choices.
pub struct StreamView {
    /// (endpoint name, peer number)
    pub peer: Option<(String, u32)>,
    pub received: bool,
    pub framing: Framing,
    /// The gathered stream and its read lengths, for (generation, rows, peer, kind).
    cache: Option<Gathered>,
}

impl Default for StreamView {
    fn default() -> Self {
        StreamView {
            peer: None,
            received: true,
            framing: Framing::Reads,
            cache: None,
        }
    }
}

impl StreamView {
    pub fn ui(&mut self, ui: &mut Ui, log: &TrafficLog, endpoint: &str) {
        // Default to the endpoint's most recent peer.
        let ep = log.find_endpoint(endpoint);
        let peers: Vec<(u32, String)> = log
            .peers()
            .iter()
            .filter(|p| Some(p.endpoint) == ep)
            // Shown in the peer menu: recorded text, escaped.
            .map(|p| (p.number, escape_controls(&p.remote).into_owned()))
            .collect();
        if self
            .peer
            .as_ref()
            .is_none_or(|(e, n)| e != endpoint || !peers.iter().any(|(p, _)| p == n))
        {
            self.peer = peers.last().map(|(n, _)| (endpoint.to_owned(), *n));
        }
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Peer");
            let current = self
                .peer
                .as_ref()
                .and_then(|(_, n)| peers.iter().find(|(p, _)| p == n))
                .map(|(n, r)| format!("#{n} {r}"))
                .unwrap_or_else(|| "none yet".into());
            egui::ComboBox::from_id_salt("stream peer")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for (n, remote) in &peers {
                        ui.selectable_value(
                            &mut self.peer,
                            Some((endpoint.to_owned(), *n)),
                            format!("#{n} {remote}"),
                        );
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("Whose bytes to show: one connection, or one UDP address");
            ui.selectable_value(&mut self.received, true, "received")
                .on_hover_text("The bytes this endpoint read from the peer");
            ui.selectable_value(&mut self.received, false, "sent")
                .on_hover_text("The bytes this endpoint wrote to the peer");
            let label = ui.label("cut as");
            egui::ComboBox::from_id_salt("stream framing")
                .selected_text(self.framing.label())
                .show_ui(ui, |ui| {
                    for f in Framing::ALL {
                        ui.selectable_value(&mut self.framing, f, f.label());
                    }
                })
                .response
                .labelled_by(label.id)
                .on_hover_text("How the receiver cuts the byte stream into messages");
        });
        let Some((_, number)) = self.peer.clone() else {
            ui.label("No peer yet: connect and send something, then look here.");
            return;
        };
        let kind = if self.received {
            EntryKind::Received
        } else {
            EntryKind::Sent
        };
        let peer_index = ep.and_then(|ep| log.find_peer(ep, number));
        let key = (log.generation(), log.len(), peer_index, kind);
        if self.cache.as_ref().is_none_or(|(k, _, _)| *k != key) {
            let mut stream = Vec::new();
            let mut reads = Vec::new();
            for e in log.entries() {
                if e.kind == kind && Some(e.peer) == peer_index {
                    let data = log.bytes_of(e);
                    stream.extend_from_slice(data);
                    reads.push(data.len());
                }
            }
            self.cache = Some((key, stream, reads));
        }
        let Some((_, stream, reads)) = &self.cache else {
            return;
        };
        let pieces = cut(stream, self.framing, reads);
        let what = if self.received { "reads" } else { "writes" };
        ui.label(format!(
            "{} bytes in {} {what}; cut as {}: {} message{}.",
            stream.len(),
            reads.len(),
            self.framing.label(),
            pieces.messages.len(),
            if pieces.messages.len() == 1 { "" } else { "s" },
        ));
        if self.framing == Framing::Reads && self.received {
            ui.label(RichText::new("Over TCP, reads follow the network, not the sender's writes: one write may arrive in pieces, several in one read.").weak());
        }
        let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 2.0;
        egui::ScrollArea::vertical()
            .id_salt("stream messages")
            .auto_shrink([false, false])
            .show_rows(ui, row_height, pieces.messages.len() + 1, |ui, range| {
                for i in range {
                    match pieces.messages.get(i) {
                        Some(r) => {
                            ui.label(
                                RichText::new(format!(
                                    "{:>4}  {:>6} B  {}",
                                    i + 1,
                                    r.len(),
                                    preview(&stream[r.clone()], 100)
                                ))
                                .monospace(),
                            );
                        }
                        None if !pieces.rest.is_empty() => {
                            ui.label(
                                RichText::new(format!(
                                    "      waiting for the rest: {} B so far  {}",
                                    pieces.rest.len(),
                                    preview(&stream[pieces.rest.clone()], 60)
                                ))
                                .monospace()
                                .weak(),
                            );
                        }
                        None => {}
                    }
                }
            });
    }
}
