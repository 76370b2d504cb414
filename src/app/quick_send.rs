//! The quick-send row: protocol · host:port · payload · Send, to talk to an
//! address without building an endpoint first. It sends from a client
//! endpoint of the session named after the address ("quick TCP
//! 127.0.0.1:7"), made on the first send and reused after, so the send and
//! the answer show in the log under that name, and the endpoint can be
//! looked at, sent from again, or removed like any other.

use egui::Ui;

use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::placeholder;
use crate::model::{HostPort, KindTag};

/// The protocols of the row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuickProto {
    #[default]
    Tcp,
    Udp,
}

impl QuickProto {
    pub fn label(self) -> &'static str {
        match self {
            QuickProto::Tcp => "TCP",
            QuickProto::Udp => "UDP",
        }
    }

    pub fn kind(self) -> KindTag {
        match self {
            QuickProto::Tcp => KindTag::TcpClient,
            QuickProto::Udp => KindTag::Udp,
        }
    }
}

/// What the row holds as typed.
#[derive(Clone, Debug, Default)]
pub struct QuickSend {
    pub proto: QuickProto,
    pub address: String,
    /// Text with backslash escapes (`\n`, `\x00`) and placeholders
    /// (`${counter}`), as the composer's Text.
    pub payload: String,
    /// How many payloads the row sent: the next `${counter}` counts from it.
    pub sends: u64,
}

/// The row's checked input: where to, and the bytes.
#[derive(Debug, PartialEq)]
pub struct QuickTarget {
    pub address: HostPort,
    pub bytes: Vec<u8>,
}

impl QuickSend {
    /// Why the address cannot be used (`None` when it can, or is still empty).
    pub fn address_problem(&self) -> Option<String> {
        let typed = self.address.trim();
        if typed.is_empty() {
            return None;
        }
        typed
            .parse::<HostPort>()
            .and_then(HostPort::require_port)
            .err()
            .map(|e| e.to_string())
    }

    /// Why the payload cannot be sent (`None` when it can, or is still empty).
    pub fn payload_problem(&self) -> Option<String> {
        self.bytes().err()
    }

    /// The payload of the row's next send, placeholders filled in.
    fn bytes(&self) -> Result<Vec<u8>, String> {
        let template = placeholder::parse_text(&self.payload, &placeholder::Scope::Plain)
            .map_err(|e| e.to_string())?;
        template
            .expand(&placeholder::Context::now(self.sends))
            .map_err(|e| e.in_text(&self.payload).to_string())
    }

    /// The address and bytes, or the first reason the row cannot send.
    pub fn target(&self) -> Result<QuickTarget, String> {
        let typed = self.address.trim();
        if typed.is_empty() {
            return Err("type where to send: host:port, for example 127.0.0.1:7".into());
        }
        let address = typed
            .parse::<HostPort>()
            .and_then(HostPort::require_port)
            .map_err(|e| e.to_string())?;
        let bytes = self.bytes().map_err(|e| format!("the payload {e}"))?;
        if bytes.is_empty() && self.proto == QuickProto::Tcp {
            return Err("type a payload (TCP has no empty messages)".into());
        }
        Ok(QuickTarget { address, bytes })
    }

    /// The name of the endpoint that sends for the row.
    pub fn endpoint_name(&self, address: &HostPort) -> String {
        format!("quick {} {address}", self.proto.label())
    }
}

impl App {
    /// The row, one line above the endpoints.
    pub(super) fn quick_send_ui(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        let error = ui.visuals().error_fg_color;
        let mut send = false;
        ui.horizontal_wrapped(|ui| {
            let title = ui.label("⚡ Quick send")
                .on_hover_text("Send to an address without building an endpoint first: it sends from an endpoint named after the address");
            let q = &mut self.quick_send;
            egui::ComboBox::from_id_salt("quick protocol")
                .width(56.0)
                .selected_text(q.proto.label())
                .show_ui(ui, |ui| {
                    for proto in [QuickProto::Tcp, QuickProto::Udp] {
                        ui.selectable_value(&mut q.proto, proto, proto.label());
                    }
                })
                .response
                .labelled_by(title.id)
                .on_hover_text("TCP connects first and keeps the connection; UDP sends a datagram");
            let label = ui.label("to");
            let address = ui
                .add(
                    egui::TextEdit::singleline(&mut q.address)
                        .hint_text("host:port")
                        .desired_width(120.0),
                )
                .labelled_by(label.id)
                .on_hover_text("Where to send: host:port, for example 127.0.0.1:7 or [::1]:7");
            if let Some(problem) = q.address_problem() {
                ui.colored_label(error, format!("⚠ {}", escape_controls(&problem)));
            }
            let label = ui.label("payload");
            // The rest of the line, less the button's room.
            // (In a wrapping row, what is left of this line: from the cursor to the edge.)
            let left = ui.max_rect().right() - ui.cursor().left();
            // Too little left: the field goes to the next line, and takes
            // that line's room.
            let room = if left - 130.0 >= 120.0 { left } else { ui.max_rect().width() };
            let width = (room - 130.0).clamp(60.0, 360.0);
            let payload = ui
                .add(
                    egui::TextEdit::singleline(&mut q.payload)
                        .hint_text("text; \\n for a line break")
                        .desired_width(width),
                )
                .labelled_by(label.id)
                .on_hover_text("The bytes to send, as text with backslash escapes");
            if let Some(problem) = q.payload_problem() {
                ui.colored_label(error, format!("⚠ {}", escape_controls(&problem)));
            }
            let why_not = q.target().err();
            let enter = (address.lost_focus() || payload.lost_focus())
                && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let button = ui
                .add_enabled(why_not.is_none(), egui::Button::new("➤ Quick send"))
                .on_hover_text("Send it now (Enter in the row sends too)")
                .on_disabled_hover_text(why_not.clone().unwrap_or_default());
            send = (button.clicked() || enter) && why_not.is_none();
        });
        if send {
            commands.push(AppCommand::QuickSend);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(proto: QuickProto, address: &str, payload: &str) -> QuickSend {
        QuickSend {
            proto,
            address: address.into(),
            payload: payload.into(),
            sends: 0,
        }
    }

    #[test]
    fn the_row_checks_address_and_payload_with_reasons() {
        let ok = row(QuickProto::Tcp, " 127.0.0.1:7 ", "hi\\n");
        let t = ok.target().unwrap();
        assert_eq!(t.bytes, b"hi\n");
        assert_eq!(ok.endpoint_name(&t.address), "quick TCP 127.0.0.1:7");

        let empty = row(QuickProto::Tcp, "", "hi");
        assert_eq!(empty.address_problem(), None, "no red before typing");
        assert!(empty.target().unwrap_err().contains("host:port"));

        let no_port = row(QuickProto::Tcp, "localhost", "hi");
        assert!(no_port.address_problem().unwrap().contains("no port"));
        let zero = row(QuickProto::Udp, "127.0.0.1:0", "hi");
        assert!(zero.address_problem().unwrap().contains("port 0"));

        let bad_escape = row(QuickProto::Udp, "127.0.0.1:9", "a\\q");
        assert!(bad_escape.payload_problem().is_some());
        assert!(bad_escape.target().is_err());

        // UDP may send an empty datagram; TCP has no empty message.
        assert!(row(QuickProto::Udp, "[::1]:9", "").target().is_ok());
        assert!(row(QuickProto::Tcp, "[::1]:9", "").target().is_err());
    }
}
