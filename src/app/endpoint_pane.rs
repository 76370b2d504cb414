//! The endpoint pane: one tab per endpoint, its settings with their errors
//! beside them, its peers, and the composer.

use egui::{Color32, RichText, Ui};

use super::document::{RuleHits, RunState};
use super::endpoint_form::{
    EndpointForm, FormErrors, ReplyMode, RuleForm, TOXIC_FIELDS, TlsForm, TriggerTag,
};
use super::{App, AppCommand};
use crate::model::display::escape_controls;
use crate::model::impair::Way;
use crate::model::{KindTag, Notation, RelayTransport, explain};

/// The width of a settings field, and of the reason under it.
const FIELD_WIDTH: f32 = 190.0;
/// The narrowest a field is drawn, wherever it stands: a grid gives a cell
/// the width its column had the frame before, so a field alone in its grid
/// (the relay's Seed, an impairment) would otherwise keep the width of its
/// first frame and show its hint as "d…".
const FIELD_MIN_WIDTH: f32 = 140.0;

/// The badge colour of a state.
fn state_color(ui: &Ui, state: &RunState) -> Color32 {
    match state {
        RunState::Idle | RunState::Closed => ui.visuals().weak_text_color(),
        RunState::Failed(_) => ui.visuals().error_fg_color,
        RunState::Connected | RunState::Listening | RunState::Bound => {
            Color32::from_rgb(60, 180, 90)
        }
        _ => ui.visuals().warn_fg_color,
    }
}

/// A text field with its label, tooltip and, beside it, the reason it is wrong.
fn field(
    ui: &mut Ui,
    label: &str,
    value: &mut String,
    hint: &str,
    tooltip: &str,
    error: Option<&String>,
) -> bool {
    let label = ui.label(label);
    // A value from a file draws its controls and bidi characters as marks.
    let mut layouter = super::visible_text::layouter(false);
    let response = ui
        .add(
            egui::TextEdit::singleline(value)
                .hint_text(hint)
                .desired_width(FIELD_WIDTH)
                .min_size(egui::vec2(FIELD_MIN_WIDTH, 0.0))
                .layouter(&mut layouter),
        )
        .labelled_by(label.id)
        .on_hover_text(tooltip);
    ui.end_row();
    if let Some(e) = error {
        // Under the field, wrapped to the field's own width, so it never runs
        // over the pane beside (the column is narrow at 1024 wide).
        ui.label("");
        ui.vertical(|ui| {
            ui.set_max_width(FIELD_WIDTH);
            ui.add(
                egui::Label::new(
                    RichText::new(format!("⚠ {}", escape_controls(e)))
                        .color(ui.visuals().error_fg_color),
                )
                .wrap(),
            );
        });
        ui.end_row();
    }
    response.changed()
}

impl App {
    pub(super) fn endpoint_pane(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        // Fill the panel, so its size is the person's choice, not the content's.
        ui.set_min_height(ui.available_height());
        self.endpoint_tabs(ui, commands);
        ui.separator();
        if self.doc.endpoints.is_empty() {
            ui.label("This session has no endpoints yet. Add one with the buttons above, or open an example from the sidebar.");
            return;
        }
        let index = self.doc.selected.min(self.doc.endpoints.len() - 1);
        self.doc.selected = index;
        let errors = match self.doc.validate(index) {
            Ok(_) => FormErrors::default(),
            Err(e) => *e,
        };
        egui::ScrollArea::vertical()
            .id_salt("endpoint pane scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                // The peers under the settings, not above the composer, so
                // a server's peers never push Send down.
                // (and right under the state and Stop, where a running
                // server's peers matter more than its settings).
                ui.columns(2, |columns| {
                    self.endpoint_settings(&mut columns[0], index, &errors, commands);
                    if index < self.doc.endpoints.len() {
                        self.peers_ui(&mut columns[0], index, commands);
                        self.endpoint_form(&mut columns[0], index, &errors, commands);
                    }
                    if self.doc.endpoints.get(index).map(|e| e.kind()) == Some(KindTag::Relay) {
                        self.intercept_ui(&mut columns[1], index, commands);
                    } else {
                        self.composer_ui(&mut columns[1], index, commands);
                    }
                });
            });
    }

    fn endpoint_tabs(&mut self, ui: &mut Ui, commands: &mut Vec<AppCommand>) {
        ui.horizontal_wrapped(|ui| {
            for i in 0..self.doc.endpoints.len() {
                let e = &self.doc.endpoints[i];
                let color = state_color(ui, &e.state);
                let selected = i == self.doc.selected;
                // The state is the dot's colour on every tab; the name keeps the
                // theme's readable text colour (a state colour on the selection
                // fill is hard to read).
                let mut job = egui::text::LayoutJob::default();
                let font = egui::TextStyle::Button.resolve(ui.style());
                job.append("● ", 0.0, egui::TextFormat::simple(font.clone(), color));
                let name_color = if selected {
                    ui.visuals().selection.stroke.color
                } else {
                    ui.visuals().text_color()
                };
                job.append(
                    &escape_controls(&e.form.name),
                    0.0,
                    egui::TextFormat::simple(font, name_color),
                );
                let response = ui.selectable_label(selected, job).on_hover_text(format!(
                    "{} — {}{}",
                    e.kind().label(),
                    e.state.word(),
                    e.failure()
                        .map(|f| format!(": {}", escape_controls(f)))
                        .unwrap_or_default()
                ));
                if response.clicked() {
                    self.doc.selected = i;
                }
            }
            ui.separator();
            ui.menu_button("➕ Add endpoint", |ui| {
                for kind in KindTag::ALL {
                    let hint = match kind {
                        KindTag::TcpClient => "Connects to a server and holds one connection",
                        KindTag::TcpServer => "Listens and accepts many peers",
                        KindTag::TlsClient => {
                            "Connects, then speaks TLS: the server's certificate is checked"
                        }
                        KindTag::TlsServer => {
                            "Listens and speaks TLS, with your certificate or one made on start"
                        }
                        KindTag::Udp => "Sends and receives datagrams, no connection",
                        KindTag::Relay => {
                            "Relays each client to an upstream over TCP, TLS or UDP, logs both directions, can hold and impair them"
                        }
                        KindTag::UnixClient => {
                            "Connects to a Unix-domain stream socket by its path (this machine only)"
                        }
                        KindTag::UnixServer => {
                            "Listens on a Unix-domain stream socket at a path and accepts many peers"
                        }
                        KindTag::UnixDatagram => {
                            "Sends and receives datagrams on a Unix-domain socket named by a path"
                        }
                    };
                    if ui.button(kind.label()).on_hover_text(hint).clicked() {
                        commands.push(AppCommand::AddEndpoint(kind));
                    }
                }
            })
            .response
            .on_hover_text("Add a TCP, TLS, UDP or Unix-domain endpoint, or a relay, to the session");
        });
    }

    fn endpoint_settings(
        &mut self,
        ui: &mut Ui,
        index: usize,
        errors: &FormErrors,
        commands: &mut Vec<AppCommand>,
    ) {
        let state = self.doc.endpoints[index].state.clone();
        let running = state.is_running();
        // Wrapped: in a narrow column the buttons take a second line rather
        // than run under the composer beside it.
        ui.horizontal_wrapped(|ui| {
            let color = state_color(ui, &state);
            ui.label(
                RichText::new(format!("● {}", state.word()))
                    .color(color)
                    .strong(),
            )
            .on_hover_text("The endpoint's state");
            let form = &self.doc.endpoints[index].form;
            if form.binds_every_interface() {
                let mut tip = "Bound to every interface (0.0.0.0 or [::]): other machines on the \
                    network can connect or send to it. Use 127.0.0.1 to keep it to this machine."
                    .to_owned();
                if form.kind == KindTag::TlsServer && form.tls.cert.trim().is_empty() {
                    tip.push_str(
                        " The generated certificate names only localhost, 127.0.0.1 and ::1, \
                         so clients on other machines will not verify it.",
                    );
                }
                ui.label(
                    RichText::new("🌐 every interface")
                        .color(ui.visuals().warn_fg_color)
                        .strong(),
                )
                .on_hover_text(tip);
            }
            if running {
                if ui
                    .add_enabled(state != RunState::Stopping, egui::Button::new("⏹ Stop"))
                    .on_hover_text(
                        "Stop this endpoint: flush what is queued, close its connections in order",
                    )
                    .clicked()
                {
                    commands.push(AppCommand::Stop(index));
                }
                if ui
                    .button("⚡ Abort")
                    .on_hover_text("Stop at once: every connection is reset (RST)")
                    .clicked()
                {
                    commands.push(AppCommand::Abort(index));
                }
                let e = &self.doc.endpoints[index];
                if e.kind().is_client()
                    && state == RunState::Connected
                    && ui
                        .button("⏏ Half-close")
                        .on_hover_text("shutdown(SHUT_WR): send a FIN; the peer reads end-of-stream but can still answer")
                        .clicked()
                {
                    commands.push(AppCommand::HalfClose { index, peer: 0 });
                }
            } else if ui
                .add_enabled(errors.is_empty(), egui::Button::new("▶ Start"))
                .on_hover_text(if errors.is_empty() {
                    "Start this endpoint".to_owned()
                } else {
                    format!(
                        "Fix this first: {}",
                        escape_controls(&errors.first().unwrap_or_default())
                    )
                })
                .on_disabled_hover_text(format!(
                    "Fix this first: {}",
                    escape_controls(&errors.first().unwrap_or_default())
                ))
                .clicked()
            {
                commands.push(AppCommand::Start(index));
            }
            if ui
                .button("🗑 Remove")
                .on_hover_text("Remove this endpoint from the session (a running one is stopped)")
                .clicked()
            {
                commands.push(AppCommand::RemoveEndpoint(index));
            }
        });
        if index >= self.doc.endpoints.len() {
            return;
        }
        // Why Start is greyed out, under it: the field at fault may be folded
        // away (socket options) or scrolled out of view. Drawn in a scope that
        // is always there, so the reason coming and going never shifts the
        // ids of the fields below (a field being typed in keeps its focus).
        let blocked = if running { None } else { errors.first() };
        ui.scope(|ui| {
            if let Some(why) = blocked {
                ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                    ui.add(
                        egui::Label::new(
                            RichText::new(format!("⚠ Start waits for: {}", escape_controls(&why)))
                                .color(ui.visuals().error_fg_color),
                        )
                        .wrap(),
                    );
                });
            }
        });
        if let Some(why) = self.doc.endpoints[index].failure() {
            // Left-aligned and wrapped (a justified layout stretches the gaps).
            ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                ui.add(
                    egui::Label::new(
                        RichText::new(escape_controls(why)).color(ui.visuals().error_fg_color),
                    )
                    .wrap(),
                );
            });
        }
        let e = &self.doc.endpoints[index];
        if running && e.kind() == KindTag::TlsClient && e.form.tls.insecure {
            ui.colored_label(
                ui.visuals().error_fg_color,
                RichText::new(
                    "⚠ INSECURE: this client accepts any certificate, even an impostor's",
                )
                .strong(),
            );
        }
        if running && e.kind() == KindTag::TlsClient && !e.form.tls.pin.trim().is_empty() {
            ui.colored_label(
                ui.visuals().error_fg_color,
                RichText::new(
                    "⚠ PINNED: this client accepts one certificate whatever its name and issuer",
                )
                .strong(),
            );
        }
        if let Some(info) = &e.tls_info
            && e.kind().is_tls()
            && running
        {
            let short = info.split("; peer certificate").next().unwrap_or(info);
            ui.label(RichText::new(format!("🔒 {}", escape_controls(short))).small())
                .on_hover_text(format!("The TLS session: {}", escape_controls(info)));
        }
        let differs = {
            let e = &self.doc.endpoints[index];
            match (
                running,
                self.doc.validate(index).ok(),
                e.started_with.as_ref(),
            ) {
                (true, Some(mut now), Some(then)) => {
                    // TCP_NODELAY is set on the open connections at once,
                    // and groups are joined and left at once.
                    now.options.nodelay = then.options.nodelay;
                    now.options.multicast.groups = then.options.multicast.groups.clone();
                    now != *then
                }
                _ => false,
            }
        };
        if differs {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Changed settings apply when the endpoint starts again.",
            );
        }
    }

    /// The endpoint's settings form: name, kind, addresses, answers, options.
    fn endpoint_form(
        &mut self,
        ui: &mut Ui,
        index: usize,
        errors: &FormErrors,
        commands: &mut Vec<AppCommand>,
    ) {
        let running = self.doc.endpoints[index].state.is_running();
        let mut changed = false;
        let e = &mut self.doc.endpoints[index];
        let form: &mut EndpointForm = &mut e.form;
        egui::Grid::new(("endpoint settings", e.id.0))
            .num_columns(3)
            .spacing([8.0, 4.0])
            .show(ui, |ui| {
                changed |= field(
                    ui,
                    "Name",
                    &mut form.name,
                    "a unique name",
                    "The endpoint's name, as the log shows it",
                    errors.name.as_ref(),
                );
                let kind_label = ui.label("Kind");
                let before = form.kind;
                ui.add_enabled_ui(!running, |ui| {
                    egui::ComboBox::from_id_salt(("endpoint kind", e.id.0))
                        .selected_text(form.kind.label())
                        .show_ui(ui, |ui| {
                            for kind in KindTag::ALL {
                                ui.selectable_value(&mut form.kind, kind, kind.label());
                            }
                        })
                        .response
                        .labelled_by(kind_label.id)
                        .on_hover_text("TCP or TLS client or server, UDP socket or relay (stop the endpoint to change it)");
                });
                if form.kind != before {
                    changed = true;
                    if form.kind.is_unix() != before.is_unix() {
                        // A host:port is no socket path, nor the other way round.
                        let fresh = EndpointForm::new(String::new(), form.kind);
                        form.remote = fresh.remote;
                        form.local = fresh.local;
                    }
                    if form.kind.is_server() && form.local.is_empty() && !form.kind.is_unix() {
                        form.local = "127.0.0.1:7007".into();
                    }
                }
                ui.label("");
                ui.end_row();
                match form.kind {
                    KindTag::TcpClient | KindTag::TlsClient => {
                        changed |= field(
                            ui,
                            "Connect to",
                            &mut form.remote,
                            "host:port",
                            "The server to connect to: host:port or [IPv6]:port",
                            errors.remote.as_ref(),
                        );
                        changed |= field(
                            ui,
                            "Local address",
                            &mut form.options.bind,
                            "any (optional)",
                            "bind() before connect(): 127.0.0.1:5000, an address alone (any port) or a port alone (any address); empty lets the system choose",
                            errors.local.as_ref(),
                        );
                        changed |= client_way_ui(ui, form, errors);
                    }
                    KindTag::TcpServer | KindTag::TlsServer => {
                        changed |= field(
                            ui,
                            "Listen on",
                            &mut form.local,
                            "host:port",
                            "The address to listen on; 0.0.0.0 or [::] for every interface, port 0 for any free port",
                            errors.local.as_ref(),
                        );
                    }
                    KindTag::Udp => {
                        changed |= field(
                            ui,
                            "Bind to",
                            &mut form.local,
                            "any (optional)",
                            "The local address to receive on; empty binds any address and a free port",
                            errors.local.as_ref(),
                        );
                        changed |= field(
                            ui,
                            "Default remote",
                            &mut form.remote,
                            "host:port (optional)",
                            "Where datagrams go unless you choose another destination",
                            errors.remote.as_ref(),
                        );
                        if !form.remote.trim().is_empty() {
                            let deaf = deaf_to_groups(form);
                            changed |= udp_connection_ui(ui, &mut form.options.unconnected, deaf);
                        }
                    }
                    KindTag::UnixClient => {
                        changed |= field(
                            ui,
                            "Socket path",
                            &mut form.remote,
                            "/path/to/app.sock or @name",
                            "The server's socket file, or @name for a Linux abstract name (at most 107 bytes)",
                            errors.remote.as_ref(),
                        );
                    }
                    KindTag::UnixServer => {
                        changed |= field(
                            ui,
                            "Socket path",
                            &mut form.local,
                            "/path/to/app.sock or @name",
                            "Where the socket file is made (removed again when the server stops), or @name for a Linux abstract name; at most 107 bytes",
                            errors.local.as_ref(),
                        );
                        if !form.local.starts_with('@') {
                            changed |= unlink_ui(ui, &mut form.unlink);
                        }
                    }
                    KindTag::UnixDatagram => {
                        changed |= field(
                            ui,
                            "Bind to path",
                            &mut form.local,
                            "unnamed (optional)",
                            "This socket's own name, where answers come back; empty leaves it unnamed (it can send, nobody can answer)",
                            errors.local.as_ref(),
                        );
                        changed |= field(
                            ui,
                            "Default remote path",
                            &mut form.remote,
                            "/path/to/peer.sock (optional)",
                            "Where datagrams go unless you choose another destination",
                            errors.remote.as_ref(),
                        );
                        // An abstract name has no file to remove.
                        if !form.local.is_empty() && !form.local.starts_with('@') {
                            changed |= unlink_ui(ui, &mut form.unlink);
                        }
                    }
                    KindTag::Relay => {
                        let label = ui.label("Protocol");
                        ui.horizontal(|ui| {
                            for t in [RelayTransport::Tcp, RelayTransport::Tls, RelayTransport::Udp] {
                                changed |= ui
                                    .radio_value(&mut form.relay.transport, t, t.word())
                                    .labelled_by(label.id)
                                    .on_hover_text(match t {
                                        RelayTransport::Tcp => "A TCP connection to the upstream for each client",
                                        RelayTransport::Tls => "TLS ended toward each client and begun toward the upstream: the log holds plaintext",
                                        RelayTransport::Udp => "A UDP socket of its own toward the upstream for each client address",
                                    })
                                    .changed();
                            }
                        });
                        ui.end_row();
                        changed |= field(
                            ui,
                            "Listen on",
                            &mut form.local,
                            "host:port",
                            "Where clients connect (UDP: send); port 0 for any free port",
                            errors.local.as_ref(),
                        );
                        changed |= field(
                            ui,
                            "Upstream",
                            &mut form.remote,
                            "host:port",
                            "Where each client is relayed to",
                            errors.remote.as_ref(),
                        );
                    }
                }
                if form.kind != KindTag::Relay {
                    let reply_label = ui.label("Answers");
                    egui::ComboBox::from_id_salt(("reply mode", e.id.0))
                        .selected_text(form.reply.label())
                        .show_ui(ui, |ui| {
                            for mode in ReplyMode::ALL {
                                changed |= ui.selectable_value(&mut form.reply, mode, mode.label()).changed();
                            }
                        })
                        .response
                        .labelled_by(reply_label.id)
                        .on_hover_text("Let the endpoint answer what it receives by itself");
                    ui.label("");
                    ui.end_row();
                }
            });
        if form.kind.is_tls() {
            changed |= tls_ui(ui, form, errors, e.id.0);
        }
        if form.kind == KindTag::Relay {
            if form.relay.transport == RelayTransport::Tls {
                changed |= relay_tls_ui(ui, form, errors, e.id.0);
            }
            changed |= impairments_ui(ui, form, errors, e.id.0);
        }
        if form.kind != KindTag::Relay && form.reply == ReplyMode::Rules {
            changed |= rules_ui(ui, form, &mut e.rule_hits, errors, e.id.0);
        }
        if form.kind != KindTag::Relay {
            let library: Vec<String> = self
                .doc
                .session
                .library
                .iter()
                .map(|l| l.name.clone())
                .collect();
            // One id whatever the count, so adding a send keeps it open.
            egui::CollapsingHeader::new(format!("Scheduled sends ({})", form.sends.len()))
                .id_salt(("scheduled sends", e.id.0))
                .default_open(!form.sends.is_empty())
                .show(ui, |ui| {
                    changed |= super::endpoint_form::sends_ui(ui, form, errors, &library, e.id.0);
                });
        }
        let nodelay = form.options.nodelay;
        ui.collapsing("Socket options", |ui| {
            changed |= options_ui(ui, form, errors, e.id.0);
        });
        if form.kind == KindTag::Udp {
            ui.collapsing("Multicast", |ui| {
                changed |= multicast_ui(ui, form, running, e.id.0, index, commands);
            });
        }
        if running && form.options.nodelay != nodelay {
            // TCP_NODELAY also changes on the open connections, at once.
            commands.push(AppCommand::SetNoDelay {
                index,
                on: form.options.nodelay,
            });
        }
        if changed {
            self.doc.touch();
            self.doc.sync_name(index);
        }
    }
}

/// A client's proxy and reconnect settings, in the form's grid, with their errors beside them.
fn client_way_ui(ui: &mut Ui, form: &mut EndpointForm, errors: &FormErrors) -> bool {
    let mut changed = field(
        ui,
        "Proxy",
        &mut form.client.proxy,
        "none: connect directly",
        "Reach the server through a proxy: socks5://HOST:PORT (the proxy resolves host names) or http://HOST:PORT (CONNECT); user:pass@ before the host for credentials. TLS runs inside the tunnel, with the server's name.",
        errors.proxy.as_ref(),
    );
    let c = &mut form.client;
    ui.label("");
    changed |= ui
        .checkbox(&mut c.reconnect, "Reconnect")
        .on_hover_text("When the connection fails or ends (not when you stop it), connect again after a wait that doubles each time up to the longest")
        .changed();
    ui.end_row();
    if c.reconnect {
        changed |= field(
            ui,
            "Attempts",
            &mut c.attempts,
            "until stopped",
            "How many times to try again after a failure or an end; a connection that stays up for the longest wait starts the count afresh",
            errors
                .reconnect
                .as_ref()
                .filter(|e| e.starts_with("attempts")),
        );
        changed |= field(
            ui,
            "Wait (first..longest)",
            &mut c.backoff,
            "500ms..30s",
            "The first wait and the longest, doubling in between: 100ms..5s, 1s..1m",
            errors
                .reconnect
                .as_ref()
                .filter(|e| !e.starts_with("attempts")),
        );
        ui.label("");
        changed |= ui
            .checkbox(&mut c.jitter, "Jitter")
            .on_hover_text("Take each wait at random between half and all of it, so many clients do not come back in step")
            .changed();
        ui.end_row();
    }
    changed
}

/// What a TLS side's rows say: an endpoint's and a relay's rows are the
/// same fields, said of the server (an endpoint) or of the upstream (a relay).
struct TlsWords {
    cert_tip: &'static str,
    ca_tip: &'static str,
    sni_hint: &'static str,
    sni_tip: &'static str,
    pin_tip: &'static str,
    insecure: &'static str,
    insecure_tip: &'static str,
}

const ENDPOINT_TLS: TlsWords = TlsWords {
    cert_tip: "The certificate chain (PEM); empty makes a self-signed one for localhost, 127.0.0.1 and ::1",
    ca_tip: "Extra certificates to trust, as PEM files separated by ';': an authority, or the server's own self-signed certificate",
    sni_hint: "the host",
    sni_tip: "The name sent in the handshake (SNI) and checked in the certificate",
    pin_tip: "Trust exactly the certificate with this SHA-256 fingerprint (sha256:AB:CD:…, as a server's log prints it), whatever its name and issuer; no other certificate is accepted",
    insecure: "Insecure: do not verify the certificate",
    insecure_tip: "Accept any certificate, even an impostor's: for testing only",
};

const RELAY_TLS: TlsWords = TlsWords {
    cert_tip: "The certificate chain the relay presents to its clients (PEM); empty makes a self-signed one for localhost, 127.0.0.1 and ::1",
    ca_tip: "Extra certificates to trust for the upstream, as PEM files separated by ';'",
    sni_hint: "the upstream's host",
    sni_tip: "The name sent to the upstream (SNI) and checked in its certificate",
    pin_tip: "Trust exactly the upstream certificate with this SHA-256 fingerprint (sha256:AB:CD:…)",
    insecure: "Insecure: do not verify the upstream",
    insecure_tip: "Accept any certificate from the upstream, even an impostor's: for testing only",
};

/// The rows of the certificate a TLS side presents (a server, or a relay
/// toward its clients), in a 3-column grid, with their errors beside them.
fn tls_identity_rows(
    ui: &mut Ui,
    tls: &mut TlsForm,
    errors: &FormErrors,
    words: &TlsWords,
) -> bool {
    let mut changed = field(
        ui,
        "Certificate",
        &mut tls.cert,
        "made on start",
        words.cert_tip,
        None,
    );
    changed |= field(
        ui,
        "Private key",
        &mut tls.key,
        "made on start",
        "The certificate's private key (PEM); only its path is saved, never the key",
        errors
            .tls
            .as_ref()
            .filter(|e| e.contains("key") || e.contains("certificate")),
    );
    changed
}

/// The rows of how a TLS side checks its peer's certificate (a client, or a
/// relay toward its upstream), in a 3-column grid, with their errors beside them.
fn tls_trust_rows(ui: &mut Ui, tls: &mut TlsForm, errors: &FormErrors, words: &TlsWords) -> bool {
    let mut changed = field(
        ui,
        "Trust (PEM)",
        &mut tls.ca,
        "the system's authorities",
        words.ca_tip,
        None,
    );
    changed |= field(
        ui,
        "Server name",
        &mut tls.sni,
        words.sni_hint,
        words.sni_tip,
        errors
            .tls
            .as_ref()
            .filter(|e| e.contains("name") && !e.starts_with("pin")),
    );
    changed |= field(
        ui,
        "Pin (SHA-256)",
        &mut tls.pin,
        "none: check the name and authority",
        words.pin_tip,
        errors.tls.as_ref().filter(|e| e.starts_with("pin")),
    );
    ui.label("");
    let color = if tls.insecure {
        ui.visuals().error_fg_color
    } else {
        ui.visuals().text_color()
    };
    changed |= ui
        .checkbox(
            &mut tls.insecure,
            RichText::new(words.insecure).color(color),
        )
        .on_hover_text(words.insecure_tip)
        .changed();
    ui.label("");
    ui.end_row();
    changed
}

/// The TLS settings of a TLS client or server, with their errors beside them.
fn tls_ui(ui: &mut Ui, form: &mut EndpointForm, errors: &FormErrors, salt: u64) -> bool {
    let mut changed = false;
    let tls = &mut form.tls;
    egui::Grid::new(("tls settings", salt))
        .num_columns(3)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            if form.kind == KindTag::TlsClient {
                changed |= tls_trust_rows(ui, tls, errors, &ENDPOINT_TLS);
            } else {
                changed |= tls_identity_rows(ui, tls, errors, &ENDPOINT_TLS);
            }
            changed |= field(
                ui,
                "ALPN",
                &mut tls.alpn,
                "none",
                "Application protocols, most wanted first, separated by commas: h2, http/1.1",
                errors.tls.as_ref().filter(|e| e.contains("ALPN")),
            );
        });
    if form.kind == KindTag::TlsClient && form.tls.insecure {
        ui.colored_label(
            ui.visuals().error_fg_color,
            RichText::new("⚠ INSECURE: the server's certificate will not be checked").strong(),
        );
    }
    if form.kind == KindTag::TlsClient && !form.tls.pin.trim().is_empty() {
        // Left-aligned and wrapped (a justified layout stretches the gaps).
        ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
            let color = ui.visuals().error_fg_color;
            ui.add(
                egui::Label::new(
                    RichText::new("⚠ PINNED: only that one certificate is accepted; its name and issuer are not checked")
                        .color(color)
                        .strong(),
                )
                .wrap(),
            );
        });
    }
    changed
}

/// A TLS relay's two sides, as `sockbench relay tls` takes them: the
/// certificate it presents to clients, and how it checks the upstream.
fn relay_tls_ui(ui: &mut Ui, form: &mut EndpointForm, errors: &FormErrors, salt: u64) -> bool {
    let mut changed = false;
    let tls = &mut form.tls;
    // One grid for both sides, so their fields share one width.
    egui::Grid::new(("relay tls", salt))
        .num_columns(3)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            ui.label(RichText::new("TLS toward clients").strong());
            ui.end_row();
            changed |= tls_identity_rows(ui, tls, errors, &RELAY_TLS);
            ui.label(RichText::new("TLS toward the upstream").strong());
            ui.end_row();
            changed |= tls_trust_rows(ui, tls, errors, &RELAY_TLS);
        });
    changed
}

/// A relay's impairments, one block per direction, each field with its
/// reason beside it; the fields that do not fit the protocol are hidden
/// unless they hold something (then their reason says to clear them).
fn impairments_ui(ui: &mut Ui, form: &mut EndpointForm, errors: &FormErrors, salt: u64) -> bool {
    let mut changed = false;
    let transport = form.relay.transport;
    for way in [Way::Up, Way::Down] {
        let texts = form.relay.way_mut(way);
        let errs = errors.relay.way(way);
        let set = texts.iter().filter(|t| !t.trim().is_empty()).count();
        let title = if set == 0 {
            format!("Impairments {}", way.arrow())
        } else {
            format!("Impairments {} ({set})", way.arrow())
        };
        egui::CollapsingHeader::new(title)
            .id_salt(("impairments", salt, way.word()))
            .default_open(set > 0 || errs.iter().any(Option::is_some))
            .show(ui, |ui| {
                egui::Grid::new(("impairments grid", salt, way.word()))
                    .num_columns(3)
                    .spacing([8.0, 4.0])
                    .show(ui, |ui| {
                        for (i, spec) in TOXIC_FIELDS.iter().enumerate() {
                            if !spec.fits.relay(transport) && texts[i].trim().is_empty() {
                                continue;
                            }
                            changed |= field(
                                ui,
                                &format!(
                                    "{} {}",
                                    spec.label,
                                    if way == Way::Up { "↑" } else { "↓" }
                                ),
                                &mut texts[i],
                                spec.hint,
                                spec.tip,
                                errs[i].as_ref(),
                            );
                        }
                    });
            });
    }
    egui::Grid::new(("impairments seed", salt))
        .num_columns(3)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            changed |= field(
                ui,
                "Seed",
                &mut form.relay.seed,
                "drawn at start",
                "Seeds the chances (loss, duplicate, reorder, jitter), so a run can be repeated; the log says the seed drawn when empty",
                errors.relay.seed.as_ref(),
            );
        });
    changed
}

fn rules_ui(
    ui: &mut Ui,
    form: &mut EndpointForm,
    hits: &mut Vec<RuleHits>,
    errors: &FormErrors,
    salt: u64,
) -> bool {
    let mut changed = false;
    // One count per row; rows added since the start count nothing.
    hits.resize(form.rules.len(), RuleHits::default());
    let mut remove = None;
    let mut move_up = None;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Messages:");
        egui::ComboBox::from_id_salt(("rule framing", salt))
            .selected_text(form.framing.as_str())
            .show_ui(ui, |ui| {
                for (notation, what) in [
                    ("raw", "each read as it came"),
                    ("line", "lines ended by \\n (a \\r before it dropped)"),
                    ("crlf", "lines ended by \\r\\n"),
                    ("delim:00", "ended by a delimiter (hex; edit the field)"),
                    ("len:2be", "2-byte big-endian length first"),
                    ("len:4be", "4-byte big-endian length first"),
                ] {
                    if ui
                        .selectable_label(form.framing == notation, format!("{notation}: {what}"))
                        .clicked()
                    {
                        form.framing = notation.to_owned();
                        changed = true;
                    }
                }
            })
            .response
            .on_hover_text("How each connection's stream is cut into messages for the rules");
        changed |= ui
            .add(egui::TextEdit::singleline(&mut form.framing).desired_width(90.0))
            .labelled_by(label.id)
            .on_hover_text(
                "raw, line, crlf, delim:HEX, len:1, len:2be, len:2le, len:4be, len:4le; +incl when the length counts its prefix",
            )
            .changed();
        let label = ui.label("longest");
        changed |= ui
            .add(
                egui::TextEdit::singleline(&mut form.max_message)
                    .hint_text("1048576")
                    .desired_width(70.0),
            )
            .labelled_by(label.id)
            .on_hover_text("The longest message kept, in bytes: a longer one is cut there and noted")
            .changed();
    });
    if let Some(e) = &errors.framing {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("⚠ {}", escape_controls(e)),
        );
    }
    let names: Vec<String> = form
        .rules
        .iter()
        .map(|r| r.name.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let count = form.rules.len();
    for (i, rule) in form.rules.iter_mut().enumerate() {
        let row_hits = hits[i];
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("Rule {}: when", i + 1));
            egui::ComboBox::from_id_salt(("rule trigger", salt, i))
                .selected_text(rule.trigger.label())
                .show_ui(ui, |ui| {
                    for t in TriggerTag::ALL {
                        changed |= ui
                            .selectable_value(&mut rule.trigger, t, t.label())
                            .changed();
                    }
                })
                .response
                .on_hover_text("Which received payloads this rule answers");
            if rule.trigger != TriggerTag::Always {
                let label = ui.label("pattern");
                changed |= ui
                    .add(
                        // A regex from a file may hold controls: drawn as marks.
                        egui::TextEdit::singleline(&mut rule.pattern)
                            .desired_width(120.0)
                            .layouter(&mut super::visible_text::layouter(false)),
                    )
                    .labelled_by(label.id)
                    .on_hover_text(match rule.trigger {
                        TriggerTag::Regex => "A regular expression over the message's bytes; the reply takes its captures as $1 or ${name}",
                        TriggerTag::HexPrefix => "The bytes the message starts with, in hex",
                        _ => "Bytes to look for, in text notation",
                    })
                    .changed();
            }
            let label = ui.label("reply");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut rule.reply).desired_width(140.0))
                .labelled_by(label.id)
                .on_hover_text("The payload sent back")
                .changed();
            let hex = rule.reply_notation == Notation::Hex;
            let mut want_hex = hex;
            ui.checkbox(&mut want_hex, "hex")
                .on_hover_text("The reply is written in hex");
            if want_hex != hex {
                rule.reply_notation = if want_hex {
                    Notation::Hex
                } else {
                    Notation::Text
                };
                changed = true;
            }
            if ui
                .small_button("✖")
                .on_hover_text("Remove this rule")
                .clicked()
            {
                remove = Some(i);
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.add_space(16.0);
            let label = ui.label("name");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut rule.name).desired_width(60.0))
                .labelled_by(label.id)
                .on_hover_text("The name other rules wait for")
                .changed();
            egui::ComboBox::from_id_salt(("rule after", salt, i))
                .selected_text(if rule.after.trim().is_empty() {
                    "any time".to_owned()
                } else {
                    format!("after {}", rule.after.trim())
                })
                .show_ui(ui, |ui| {
                    changed |= ui.selectable_value(&mut rule.after, String::new(), "any time").changed();
                    for n in names.iter().filter(|n| **n != rule.name.trim()) {
                        changed |= ui
                            .selectable_value(&mut rule.after, n.clone(), format!("after {n}"))
                            .changed();
                    }
                })
                .response
                .on_hover_text("Answer only once the named rule has matched on the same connection (login, then commands)");
            let label = ui.label("delay ms");
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut rule.delay_ms)
                        .hint_text("0")
                        .desired_width(50.0),
                )
                .labelled_by(label.id)
                .on_hover_text("Wait this long before the reply goes out")
                .changed();
            if ui
                .add_enabled(i > 0, egui::Button::new("⬆").small())
                .on_hover_text("Move up: the first matching rule answers")
                .clicked()
            {
                move_up = Some(i);
            }
            if ui
                .add_enabled(i + 1 < count, egui::Button::new("⬇").small())
                .on_hover_text("Move down")
                .clicked()
            {
                move_up = Some(i + 1);
            }
            if row_hits.started_as.is_some() {
                let n = row_hits.hits;
                ui.label(if n == 1 {
                    "1 hit".to_owned()
                } else {
                    format!("{n} hits")
                })
                .on_hover_text(
                    "Messages this rule answered since the endpoint last started (every connection)",
                );
            }
        });
        if let Some(Some(e)) = errors.rules.get(i) {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("⚠ {}", escape_controls(e)),
            );
        }
    }
    if let Some(i) = remove {
        form.rules.remove(i);
        hits.remove(i);
        changed = true;
    }
    if let Some(i) = move_up {
        // The count moves with its rule.
        form.rules.swap(i - 1, i);
        hits.swap(i - 1, i);
        changed = true;
    }
    if ui
        .button("➕ Add rule")
        .on_hover_text("Answer payloads that match with a reply of your own")
        .clicked()
    {
        form.rules.push(RuleForm::default());
        hits.push(RuleHits::default());
        changed = true;
    }
    changed
}

/// A UDP socket with a default remote: connected to it, or not. The difference
/// is a teaching point, so each choice says what it means on one line.
/// Whether a UDP socket joins groups it will not hear: connected to a
/// remote, the kernel delivers it only what comes from that remote, and a
/// group's datagrams come from their senders.
fn deaf_to_groups(form: &EndpointForm) -> bool {
    form.kind == KindTag::Udp
        && !form.remote.trim().is_empty()
        && !form.options.unconnected
        && !form.options.groups.is_empty()
}

/// What the form says beside the connected choice and the groups while
/// [`deaf_to_groups`] holds.
const DEAF_TO_GROUPS: &str = "⚠ Connected to its remote, this socket hears only that remote, not the groups it joins: choose unconnected (or clear the remote) to hear them";

/// The reason of [`DEAF_TO_GROUPS`], wrapped to a field's width, in the warning colour.
fn deaf_to_groups_ui(ui: &mut Ui) {
    ui.vertical(|ui| {
        ui.set_max_width(FIELD_WIDTH);
        let color = ui.visuals().warn_fg_color;
        ui.add(egui::Label::new(RichText::new(DEAF_TO_GROUPS).color(color)).wrap());
    });
}

/// The connected/unconnected choice of a UDP socket with a remote, its
/// meaning under it, and (`deaf`) that the groups it joins are not heard.
fn udp_connection_ui(ui: &mut Ui, unconnected: &mut bool, deaf: bool) -> bool {
    let mut changed = false;
    ui.label("Remote is");
    ui.horizontal(|ui| {
        changed |= ui
            .radio_value(unconnected, false, "connected")
            .on_hover_text(explain::setting("UdpConnected"))
            .changed();
        changed |= ui
            .radio_value(unconnected, true, "unconnected")
            .on_hover_text(explain::setting("UdpUnconnected"))
            .changed();
    });
    ui.end_row();
    ui.label("");
    ui.vertical(|ui| {
        ui.set_max_width(240.0);
        let name = if *unconnected {
            "UdpUnconnected"
        } else {
            "UdpConnected"
        };
        ui.add(egui::Label::new(RichText::new(explain::setting(name)).small().weak()).wrap());
    });
    ui.end_row();
    if deaf {
        ui.label("");
        deaf_to_groups_ui(ui);
        ui.end_row();
    }
    changed
}

/// The box that lets a Unix server remove a stale socket file at its path.
fn unlink_ui(ui: &mut Ui, unlink: &mut bool) -> bool {
    ui.label("");
    let changed = ui
        .checkbox(unlink, "Remove a stale socket file")
        .on_hover_text(
            "If a socket file nobody listens on is at the path (left by a program that ended), \
             remove it before binding. A socket in use, or any other file, is never touched.",
        )
        .changed();
    ui.end_row();
    changed
}

/// A UDP socket's multicast groups, each with a Leave button, a field to
/// join another, and the interface, TTL and loopback. While the socket runs,
/// Join and Leave act at once; stopped, they change what is joined at start.
fn multicast_ui(
    ui: &mut Ui,
    form: &mut EndpointForm,
    running: bool,
    salt: u64,
    index: usize,
    commands: &mut Vec<AppCommand>,
) -> bool {
    let mut changed = false;
    let o = &mut form.options;
    let mut leave = None;
    for (i, group) in o.groups.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(group.to_string());
            if ui
                .button("Leave")
                .on_hover_text(if running {
                    "Leave this group now (IP_DROP_MEMBERSHIP / IPV6_LEAVE_GROUP)"
                } else {
                    "Do not join this group when the socket starts"
                })
                .clicked()
            {
                leave = Some(i);
            }
        });
    }
    if o.groups.is_empty() {
        ui.label(RichText::new("No groups joined").weak());
    }
    let deaf = deaf_to_groups(form);
    let o = &mut form.options;
    if deaf {
        deaf_to_groups_ui(ui);
    }
    if let Some(i) = leave {
        let group = o.groups.remove(i);
        changed = true;
        if running {
            commands.push(AppCommand::Multicast {
                index,
                group,
                join: false,
            });
        }
    }
    let parsed = crate::model::multicast::parse_group(&o.group_input);
    ui.horizontal(|ui| {
        let label = ui.label("Group");
        let response = ui
            .add(
                egui::TextEdit::singleline(&mut o.group_input)
                    .hint_text("239.1.2.3 or ff15::1")
                    .desired_width(140.0),
            )
            .labelled_by(label.id)
            .on_hover_text("A multicast group: 224.0.0.0 to 239.255.255.255, or ff00::/8");
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let join = ui
            .add_enabled(parsed.is_ok(), egui::Button::new("Join"))
            .on_hover_text(if running {
                "Join this group now (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP)"
            } else {
                "Join this group when the socket starts"
            })
            .on_disabled_hover_text("Type a multicast group first")
            .clicked();
        if let (Ok(group), true) = (&parsed, join || enter) {
            if !o.groups.contains(group) {
                o.groups.push(*group);
                changed = true;
                if running {
                    commands.push(AppCommand::Multicast {
                        index,
                        group: *group,
                        join: true,
                    });
                }
            }
            o.group_input.clear();
        }
    });
    if let (Err(e), false) = (&parsed, o.group_input.trim().is_empty()) {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("⚠ {}", escape_controls(e)),
        );
    }
    egui::Grid::new(("multicast options", salt)).num_columns(2).show(ui, |ui| {
        let mut text = |ui: &mut Ui, label: &str, value: &mut String, hint: &str, tip: &str| {
            let l = ui.label(label);
            changed |= ui
                .add(egui::TextEdit::singleline(value).hint_text(hint).desired_width(100.0))
                .labelled_by(l.id)
                .on_hover_text(tip)
                .changed();
            ui.end_row();
        };
        text(ui, "Interface", &mut o.multicast_iface, "kernel's choice", "Where groups are joined and multicast is sent: an IPv4 address of the interface (127.0.0.1), or for IPv6 its index or name (1, lo). Applies when the socket starts");
        text(ui, "Multicast TTL", &mut o.multicast_ttl, "1", "IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: how many routers outgoing multicast may cross (0 to 255)");
        let l = ui.label("Loopback");
        let shown = match o.multicast_loop {
            None => "default (on)",
            Some(true) => "on",
            Some(false) => "off",
        };
        egui::ComboBox::from_id_salt(("multicast loop", salt))
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for (value, text) in [(None, "default (on)"), (Some(true), "on"), (Some(false), "off")] {
                    changed |= ui.selectable_value(&mut o.multicast_loop, value, text).changed();
                }
            })
            .response
            .labelled_by(l.id)
            .on_hover_text("IP_MULTICAST_LOOP: whether this machine's own members hear what this socket sends");
        ui.end_row();
    });
    changed
}

fn options_ui(ui: &mut Ui, form: &mut EndpointForm, errors: &FormErrors, salt: u64) -> bool {
    let mut changed = false;
    let o = &mut form.options;
    let relay = form.kind == KindTag::Relay;
    let tcp = form.kind.is_tcp() || (relay && form.relay.transport != RelayTransport::Udp);
    let unix = form.kind.is_unix();
    egui::Grid::new(("socket options", salt)).num_columns(2).show(ui, |ui| {
        if unix {
            // A Unix socket has no Nagle, TTL, keepalive or broadcast: its
            // buffers and the stream kinds' timeout and cap are what apply.
        } else if tcp {
            ui.label("");
            changed |= ui
                .checkbox(&mut o.nodelay, "TCP_NODELAY")
                .on_hover_text("Send small writes at once instead of waiting to coalesce them (Nagle's algorithm off)")
                .changed();
            ui.end_row();
        } else {
            ui.label("");
            changed |= ui
                .checkbox(&mut o.broadcast, "SO_BROADCAST")
                .on_hover_text("Allow sending to broadcast addresses")
                .changed();
            ui.end_row();
            ui.label("");
            changed |= ui
                .checkbox(&mut o.reuse_address, "SO_REUSEADDR")
                .on_hover_text("Let several sockets bind the same address and port")
                .changed();
            ui.end_row();
        }
        let mut number = |ui: &mut Ui, label: &str, value: &mut String, tip: &str| {
            let l = ui.label(label);
            changed |= ui
                .add(egui::TextEdit::singleline(value).hint_text("default").desired_width(80.0))
                .labelled_by(l.id)
                .on_hover_text(tip)
                .changed();
            ui.end_row();
        };
        if tcp || unix {
            // A server accepts; it never connects.
            if form.kind.is_client() || relay || form.kind == KindTag::UnixDatagram {
                number(ui, "Connect timeout (s)", &mut o.connect_timeout_secs, "How long a connect may take (default 10 s)");
            }
            if form.kind.is_server() || relay {
                number(ui, "Max peers", &mut o.max_peers, "Serve at most this many peers at once; one more is accepted and closed at once, and the log says why (empty: no cap)");
            }
        }
        if tcp && !unix {
            number(ui, "Keepalive (s)", &mut o.keepalive_secs, "SO_KEEPALIVE: probe an idle connection after this many seconds");
            number(ui, "Linger (s)", &mut o.linger_secs, "SO_LINGER: how long close waits for unsent data (0 makes close a reset)");
        } else if relay {
            number(ui, "Max clients", &mut o.max_peers, "Relay at most this many client addresses at once; datagrams from a new one are dropped and counted (empty: 256)");
        }
        if !unix {
            number(ui, "TTL / hops", &mut o.ttl, "IP_TTL: how many routers a packet may cross");
        }
        number(ui, "Receive buffer (bytes)", &mut o.recv_buffer, "SO_RCVBUF: the kernel's receive buffer size");
        number(ui, "Send buffer (bytes)", &mut o.send_buffer, "SO_SNDBUF: the kernel's send buffer size");
    });
    if let Some(e) = &errors.options {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("⚠ {}", escape_controls(e)),
        );
    }
    changed
}
