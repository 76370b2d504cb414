//! A running endpoint's peers: one row each, with its state and the
//! buttons that end or half-close it.

use egui::{RichText, Ui};

use super::document::SendTo;
use super::{App, AppCommand};

/// Rows of the peers table shown before it scrolls (the header is one).
const PEER_ROWS_SHOWN: f32 = 4.5;

impl App {
    pub(super) fn peers_ui(&mut self, ui: &mut Ui, index: usize, commands: &mut Vec<AppCommand>) {
        let e = &self.doc.endpoints[index];
        if e.kind().is_client() || e.peers.is_empty() {
            return;
        }
        let id = e.id;
        ui.label(
            RichText::new(if e.kind().is_datagram() {
                "Peers seen"
            } else {
                "Connected peers"
            })
            .strong(),
        );
        let mut disconnect = None;
        let mut half_close = None;
        let mut choose = None;
        // A few rows high, scrolling beyond: many peers must not push the
        // rest of the pane away.
        let row = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
        egui::ScrollArea::both()
            .id_salt(("peers scroll", id.0))
            .max_height(row * PEER_ROWS_SHOWN)
            .auto_shrink([false, true])
            .show(ui, |ui| {
        egui::Grid::new(("peers", id.0))
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for title in ["#", "Address", "Since", "In", "Out"] {
                    ui.label(RichText::new(title).weak());
                }
                ui.end_row();
                for (peer, info) in &e.peers {
                    let chosen = e.send_to == SendTo::Peer(*peer);
                    if ui
                        .selectable_label(chosen, format!("#{peer}"))
                        .on_hover_text("Pick this peer: the composer sends to it only, and the buttons below act on it")
                        .clicked()
                    {
                        choose = Some(*peer);
                    }
                    ui.label(&info.remote);
                    ui.label(
                        super::log_view::format_time(info.since, self.prefs.time)
                            .split('.')
                            .next()
                            .unwrap_or_default(),
                    )
                    .on_hover_text(crate::persist::format_timestamp(&info.since));
                    ui.label(format!("{} B", info.bytes_in));
                    ui.label(format!("{} B", info.bytes_out));
                    ui.end_row();
                }
            });
            });
        // The connection's own actions act on the picked peer, in a row of
        // their own, so a narrow pane never cuts them off.
        if e.kind().is_server() {
            ui.horizontal_wrapped(|ui| match e.send_to {
                SendTo::Peer(peer) if e.peers.contains_key(&peer) => {
                    ui.label(format!("Peer #{peer}:"));
                    if ui
                        .small_button("Close")
                        .on_hover_text("Close this connection in order (FIN)")
                        .clicked()
                    {
                        disconnect = Some((peer, false));
                    }
                    if ui
                        .small_button("Reset")
                        .on_hover_text("Abort this connection (RST)")
                        .clicked()
                    {
                        disconnect = Some((peer, true));
                    }
                    if ui
                        .small_button("Half-close")
                        .on_hover_text(
                            "shutdown(SHUT_WR) on this connection: send a FIN, keep reading",
                        )
                        .clicked()
                    {
                        half_close = Some(peer);
                    }
                }
                _ => {
                    ui.label(
                        RichText::new(
                            "Pick a peer (#) to close, reset or half-close its connection.",
                        )
                        .weak(),
                    );
                }
            });
        }
        if let Some(peer) = choose {
            self.doc.endpoints[index].send_to = SendTo::Peer(peer);
        }
        if let Some((peer, abort)) = disconnect {
            commands.push(AppCommand::Disconnect { index, peer, abort });
        }
        if let Some(peer) = half_close {
            commands.push(AppCommand::HalfClose { index, peer });
        }
        ui.separator();
    }
}
