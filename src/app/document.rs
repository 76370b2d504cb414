//! The open session and what the engine tells about each of its endpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::endpoint_form::{EndpointForm, FormErrors};
use crate::engine::{EndpointId, Event, EventKind, PeerId};
use crate::model::log::{Totals, TrafficLog};
use crate::model::{Direction, EndpointSpec, KindTag, Session};
use crate::run::Recorder;

/// Where an endpoint is in its life, as its badge shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Idle,
    Starting,
    Resolving,
    Connecting,
    /// A client waits before it connects again (its connection failed or ended).
    Reconnecting,
    Connected,
    Listening,
    Bound,
    Stopping,
    Closed,
    Failed(String),
}

impl RunState {
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Starting => "starting",
            RunState::Resolving => "resolving",
            RunState::Connecting => "connecting",
            RunState::Reconnecting => "waiting to reconnect",
            RunState::Connected => "connected",
            RunState::Listening => "listening",
            RunState::Bound => "bound",
            RunState::Stopping => "stopping",
            RunState::Closed => "closed",
            RunState::Failed(_) => "failed",
        }
    }

    /// True while the engine runs the endpoint.
    pub fn is_running(&self) -> bool {
        !matches!(
            self,
            RunState::Idle | RunState::Closed | RunState::Failed(_)
        )
    }

    /// True once the endpoint can send (its connection or socket is up).
    pub fn is_up(&self) -> bool {
        matches!(
            self,
            RunState::Connected | RunState::Listening | RunState::Bound
        )
    }

    /// True before the endpoint is up (a failure now means it failed to start).
    fn is_starting(&self) -> bool {
        matches!(
            self,
            RunState::Starting
                | RunState::Resolving
                | RunState::Connecting
                | RunState::Reconnecting
        )
    }
}

/// A peer of an endpoint: a connection, or a UDP remote address.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Its address (`127.0.0.1:50000`) or Unix socket name, as shown
    /// (escaped: a Unix peer chose its name).
    pub remote: String,
    pub since: DateTime<Utc>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The length of the latest payload reported as sent: the one a failed
    /// write (which follows its report) takes back from the totals.
    pub last_sent: Option<u64>,
}

impl PeerInfo {
    fn new(remote: String, since: DateTime<Utc>) -> Self {
        PeerInfo {
            remote,
            since,
            bytes_in: 0,
            bytes_out: 0,
            last_sent: None,
        }
    }
}

/// Where the composer sends for this endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SendTo {
    /// The client's connection, the UDP default remote, or every peer of a server.
    #[default]
    Default,
    /// One peer.
    Peer(PeerId),
    /// A typed address (UDP).
    Address,
}

/// The hits of one rule row of an endpoint's form, since the endpoint last started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleHits {
    /// The rule's index in the list the endpoint was started with (the
    /// engine names rules by it); `None` for a row added since.
    pub started_as: Option<u32>,
    pub hits: u64,
}

/// One endpoint of the open session: its settings as typed, and its live state.
#[derive(Clone, Debug)]
pub struct EndpointUi {
    /// The engine's name for it; fresh for every endpoint the window creates.
    pub id: EndpointId,
    pub form: EndpointForm,
    pub state: RunState,
    /// Live peers (TCP connections that are open; UDP addresses seen).
    pub peers: BTreeMap<PeerId, PeerInfo>,
    pub send_to: SendTo,
    /// The typed address for UDP sends to an address.
    pub send_address: String,
    /// The settings it was last started with (edits apply on the next start).
    pub started_with: Option<EndpointSpec>,
    /// TLS, as the last handshake or the server's certificate told it.
    pub tls_info: Option<String>,
    /// A relay's hold switches and what it holds.
    pub intercept: super::intercept::InterceptUi,
    /// One per row of `form.rules`, moved and removed with its row, so a
    /// reordered rule keeps its count.
    pub rule_hits: Vec<RuleHits>,
}

impl EndpointUi {
    pub fn kind(&self) -> KindTag {
        self.form.kind
    }

    /// Applies an event of this endpoint to its state.
    pub fn on_event(&mut self, event: &Event) {
        if self.kind() == KindTag::Relay {
            self.intercept.on_event(&event.kind);
        }
        match &event.kind {
            EventKind::Resolving { .. } if self.state.is_starting() => {
                self.state = RunState::Resolving
            }
            EventKind::Connecting { .. } => self.state = RunState::Connecting,
            EventKind::Connected { peer, remote, .. } => {
                self.state = RunState::Connected;
                self.peers.insert(
                    *peer,
                    PeerInfo {
                        remote: remote.to_string(),
                        since: event.at,
                        bytes_in: 0,
                        bytes_out: 0,
                        last_sent: None,
                    },
                );
            }
            EventKind::Listening { .. } => self.state = RunState::Listening,
            EventKind::RuleMatched { rule, .. } => {
                if let Some(row) = self
                    .rule_hits
                    .iter_mut()
                    .find(|r| r.started_as == Some(*rule))
                {
                    row.hits += 1;
                }
            }
            EventKind::Note { peer: None, text } if text.starts_with("TLS: ") => {
                self.tls_info = Some(text.trim_start_matches("TLS: ").to_owned());
            }
            EventKind::TlsHandshake { detail, .. } if self.kind().is_client() => {
                self.tls_info = Some(detail.clone());
            }
            EventKind::Bound { .. } => self.state = RunState::Bound,
            EventKind::UnixConnected { peer, remote, .. } => {
                self.state = RunState::Connected;
                self.peers
                    .insert(*peer, PeerInfo::new(remote.to_string(), event.at));
            }
            EventKind::UnixListening { .. } => self.state = RunState::Listening,
            EventKind::UnixBound { .. } => self.state = RunState::Bound,
            EventKind::UnixAccepted { peer, remote, .. } | EventKind::UnixPeer { peer, remote } => {
                self.peers
                    .entry(*peer)
                    .or_insert_with(|| PeerInfo::new(remote.to_string(), event.at));
            }
            EventKind::Accepted { peer, remote, .. } => {
                self.peers.insert(
                    *peer,
                    PeerInfo {
                        remote: remote.to_string(),
                        since: event.at,
                        bytes_in: 0,
                        bytes_out: 0,
                        last_sent: None,
                    },
                );
            }
            EventKind::Traffic {
                peer,
                remote,
                dir,
                bytes,
            } => {
                let info = self.peers.entry(*peer).or_insert_with(|| PeerInfo {
                    remote: remote.to_string(),
                    since: event.at,
                    bytes_in: 0,
                    bytes_out: 0,
                    last_sent: None,
                });
                match dir {
                    Direction::Sent => {
                        info.bytes_out += bytes.len() as u64;
                        info.last_sent = Some(bytes.len() as u64);
                    }
                    Direction::Received => {
                        info.bytes_in += bytes.len() as u64;
                    }
                }
            }
            // The payload reported as sent just before did not (all) go out:
            // the status bar counts only payloads written whole, as the
            // command line's summary and the saved file do.
            EventKind::Failed {
                peer: Some(peer),
                error,
            } if error.failed_write => {
                if let Some(info) = self.peers.get_mut(peer)
                    && let Some(len) = info.last_sent.take()
                {
                    info.bytes_out = info.bytes_out.saturating_sub(len);
                }
            }
            // A client that reconnects is not done when one connection fails or ends.
            EventKind::Note { peer: None, text }
                if self.state.is_running()
                    && text
                        .strip_prefix(crate::engine::RECONNECT_NOTE)
                        .is_some_and(|t| t.starts_with("attempt")) =>
            {
                self.state = RunState::Reconnecting;
            }
            EventKind::Reset { .. } if self.kind().is_client() && self.form.client.reconnect => {}
            EventKind::Reset { .. } if self.kind().is_client() => {
                self.state = RunState::Failed("the peer reset the connection".into());
            }
            EventKind::Closed { peer, .. } => {
                self.peers.remove(peer);
                if self.send_to == SendTo::Peer(*peer) {
                    self.send_to = SendTo::Default;
                }
            }
            // Failing to start, or to finish the TLS handshake, fails the endpoint;
            // so does a bug inside the engine (it stopped the endpoint).
            EventKind::Failed { peer: None, error }
                if self.state.is_starting()
                    || error.operation == crate::engine::Operation::Tls
                    || error.is_internal() =>
            {
                self.state = RunState::Failed(error.to_string());
            }
            EventKind::Stopped => {
                if !matches!(self.state, RunState::Failed(_)) {
                    self.state = RunState::Closed;
                }
                if !self.kind().is_datagram() {
                    self.peers.clear();
                }
                self.send_to = SendTo::Default;
            }
            _ => {}
        }
    }

    /// The failure reason, if the endpoint failed.
    pub fn failure(&self) -> Option<&str> {
        match &self.state {
            RunState::Failed(why) => Some(why),
            _ => None,
        }
    }
}

/// The open session: the document, where it lives, and whether it changed.
pub struct Document {
    pub session: Session,
    pub path: Option<PathBuf>,
    pub endpoints: Vec<EndpointUi>,
    /// Engine events to log rows: each endpoint's log name, followed
    /// through renames.
    recorder: Recorder,
    /// The endpoint whose tab is open.
    pub selected: usize,
    /// Counts every change; a save records the count it saved, so a change made
    /// while the save ran keeps the document marked unsaved.
    pub changes: u64,
    pub saved_at_change: u64,
    /// The document is a shipped example or lesson (a file in the program's
    /// sessions folder): running it records a log but is no unsaved work;
    /// only edits are, and they are saved elsewhere (Save goes to Save As).
    pub template: bool,
    /// Edits of the settings, notes or library (not the log) since opening.
    edits: u64,
    /// Lesson steps without a checkpoint that the learner ticked off, with
    /// the log's length at that moment (later steps count only what came after).
    pub ticked: Vec<Option<usize>>,
}

impl Document {
    /// A document for `session`; `next_id` hands out engine ids.
    pub fn new(
        mut session: Session,
        path: Option<PathBuf>,
        next_id: &mut impl FnMut() -> EndpointId,
    ) -> Self {
        let endpoints = session
            .endpoints
            .iter()
            .map(|spec| EndpointUi {
                id: next_id(),
                form: EndpointForm::from_spec(spec),
                state: RunState::Idle,
                peers: BTreeMap::new(),
                send_to: SendTo::Default,
                send_address: spec
                    .kind
                    .remote()
                    .map(ToString::to_string)
                    .or_else(|| spec.kind.unix_remote().map(|p| p.as_str().to_owned()))
                    .unwrap_or_default(),
                started_with: None,
                tls_info: None,
                intercept: Default::default(),
                rule_hits: Vec::new(),
            })
            .collect::<Vec<EndpointUi>>();
        let mut recorder = Recorder::new();
        for (e, spec) in endpoints.iter().zip(&session.endpoints) {
            recorder.name(&mut session.log, e.id, &spec.name);
        }
        Document {
            session,
            path,
            endpoints,
            recorder,
            selected: 0,
            changes: 0,
            saved_at_change: 0,
            template: false,
            edits: 0,
            ticked: Vec::new(),
        }
    }

    /// Whether there is work to save: any change, or for a template only
    /// an edit (its recorded log is not work to keep).
    pub fn is_dirty(&self) -> bool {
        if self.template {
            self.edits > 0
        } else {
            self.changes != self.saved_at_change
        }
    }

    /// An edit of the document (settings, notes, library).
    pub fn touch(&mut self) {
        self.changes += 1;
        self.edits += 1;
    }

    /// A change of the log only (rows recorded or cleared).
    pub fn log_changed(&mut self) {
        self.changes += 1;
    }

    /// The title: the file's name (or "untitled"), with a mark when unsaved.
    pub fn title(&self) -> String {
        let name = self
            .path
            .as_ref()
            .and_then(|p| p.file_stem())
            // A file name is outside text: escaped for the heading and the window title.
            .map(|s| crate::model::display::escape_controls(&s.to_string_lossy()).into_owned())
            .unwrap_or_else(|| "untitled".into());
        if self.is_dirty() {
            format!("● {name}")
        } else {
            name
        }
    }

    /// The log's index of engine endpoint `id`'s name.
    pub fn log_endpoint(&self, id: EndpointId) -> Option<u32> {
        self.recorder.log_endpoint(id)
    }

    /// Payloads and bytes of endpoint `id` since it last started, counting
    /// only payloads written whole (the status bar's totals).
    pub fn totals_of(&self, id: EndpointId) -> Totals {
        self.recorder.totals_of(id)
    }

    /// Endpoint `id` starts again: its totals start from zero.
    pub fn restart_totals(&mut self, id: EndpointId) {
        self.recorder.restart(id);
    }

    /// Forgets a removed endpoint: its late events are no rows.
    pub fn forget(&mut self, id: EndpointId) {
        self.recorder.forget(id);
    }

    pub fn endpoint_by_id(&mut self, id: EndpointId) -> Option<&mut EndpointUi> {
        self.endpoints.iter_mut().find(|e| e.id == id)
    }

    /// Records an event in the log and applies it to its endpoint. Returns the
    /// log index of the new row, or `None` for events of endpoints no longer here.
    pub fn apply(&mut self, event: &Event) -> Option<usize> {
        let endpoint = self.endpoints.iter_mut().find(|e| e.id == event.id)?;
        endpoint.on_event(event);
        let row = self.recorder.record(&mut self.session.log, event)?;
        self.changes += 1;
        Some(row)
    }

    /// The names of every endpoint but `index`, for the unique-name check.
    pub fn other_names(&self, index: usize) -> Vec<&str> {
        self.endpoints
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, e)| e.form.name.trim())
            .collect()
    }

    /// Each endpoint's receive framing as its form sets it (answering by
    /// rules; unreadable ones left out), for the log's message view.
    pub fn framings(&self) -> Vec<(String, crate::model::framing::ReceiveFraming)> {
        self.endpoints
            .iter()
            .filter(|e| e.form.reply == super::endpoint_form::ReplyMode::Rules)
            .filter_map(|e| {
                let framing = crate::model::framing::ReceiveFraming::parse(&e.form.framing).ok()?;
                Some((e.form.name.trim().to_owned(), framing))
            })
            .collect()
    }

    /// Checks endpoint `index`'s form.
    pub fn validate(&self, index: usize) -> Result<EndpointSpec, Box<FormErrors>> {
        let library: Vec<String> = self
            .session
            .library
            .iter()
            .map(|l| l.name.clone())
            .collect();
        self.endpoints[index]
            .form
            .validate_in(&self.other_names(index), Some(&library))
    }

    /// Keeps the log's endpoint name in step with a renamed endpoint.
    pub fn sync_name(&mut self, index: usize) {
        let name = self.endpoints[index].form.name.trim().to_owned();
        if name.is_empty() || self.other_names(index).contains(&name.as_str()) {
            return;
        }
        let log = &mut self.session.log;
        let id = self.endpoints[index].id;
        let Some(current) = self
            .recorder
            .log_endpoint(id)
            .and_then(|i| log.endpoints().get(i as usize).cloned())
        else {
            self.recorder.name(log, id, &name);
            return;
        };
        if current != name {
            log.rename_endpoint(&current, &name);
            self.recorder.name(log, id, &name);
            // Ignore rules for the endpoint follow it to its new name.
            for rule in &mut self.session.ignore {
                if rule.endpoint.as_deref() == Some(current.as_str()) {
                    rule.endpoint = Some(name.clone());
                }
            }
        }
    }

    /// The session as it should be saved: every endpoint's form must be valid.
    pub fn to_session(&self) -> Result<Session, String> {
        let mut session = self.session.clone();
        session.endpoints = self.endpoint_specs()?;
        Ok(session)
    }

    /// The session with `log` in place of its own (the autosave's capped
    /// copy): everything but the log is cloned, and the log never is.
    pub fn to_session_with_log(&mut self, log: TrafficLog) -> Result<Session, String> {
        let endpoints = self.endpoint_specs()?;
        let own = std::mem::take(&mut self.session.log);
        let mut session = self.session.clone();
        self.session.log = own;
        session.log = log;
        session.endpoints = endpoints;
        Ok(session)
    }

    /// Every endpoint's settings, or the first form's mistake.
    fn endpoint_specs(&self) -> Result<Vec<EndpointSpec>, String> {
        let mut specs = Vec::with_capacity(self.endpoints.len());
        for (i, e) in self.endpoints.iter().enumerate() {
            match self.validate(i) {
                Ok(spec) => specs.push(spec),
                Err(errors) => {
                    return Err(format!(
                        "endpoint \"{}\" has a mistake ({}); fix it before saving",
                        e.form.name,
                        errors.first().unwrap_or_default()
                    ));
                }
            }
        }
        Ok(specs)
    }

    /// Adds an endpoint of `kind` and selects it.
    pub fn add_endpoint(&mut self, kind: KindTag, id: EndpointId) {
        let base = match kind {
            KindTag::TcpClient => "client",
            KindTag::TcpServer => "server",
            KindTag::TlsClient => "tls client",
            KindTag::TlsServer => "tls server",
            KindTag::Udp => "udp",
            KindTag::Relay => "relay",
            KindTag::UnixClient => "unix client",
            KindTag::UnixServer => "unix server",
            KindTag::UnixDatagram => "unix dgram",
        };
        let names: Vec<String> = self.endpoints.iter().map(|e| e.form.name.clone()).collect();
        let name = (1..)
            .map(|n| {
                if n == 1 {
                    base.to_owned()
                } else {
                    format!("{base} {n}")
                }
            })
            .find(|candidate| !names.contains(candidate))
            .unwrap_or_else(|| base.to_owned());
        let form = EndpointForm::new(name.clone(), kind);
        self.recorder.name(&mut self.session.log, id, &name);
        self.endpoints.push(EndpointUi {
            id,
            send_address: form.remote.clone(),
            form,
            state: RunState::Idle,
            peers: BTreeMap::new(),
            send_to: SendTo::Default,
            started_with: None,
            tls_info: None,
            intercept: Default::default(),
            rule_hits: Vec::new(),
        });
        self.selected = self.endpoints.len() - 1;
        self.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NetError, Operation};
    use crate::model::endpoint::EndpointKind;
    use crate::model::log::ErrorKind;

    /// The status bar's totals count only payloads written whole: a failed
    /// write (reported as sent just before its failure) is taken back.
    #[test]
    fn a_failed_write_leaves_the_status_bar_totals() {
        let remote: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
        let mut session = Session::default();
        session.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TcpClient {
                remote: remote.into(),
            },
        ));
        let mut n = 0;
        let mut doc = Document::new(session, None, &mut || {
            n += 1;
            EndpointId(n)
        });
        let id = doc.endpoints[0].id;
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let sent = |bytes: &'static [u8]| EventKind::Traffic {
            peer: 0,
            remote,
            dir: Direction::Sent,
            bytes: bytes::Bytes::from_static(bytes),
        };
        for kind in [
            EventKind::Connected {
                peer: 0,
                local: "127.0.0.1:5000".parse().unwrap(),
                remote,
            },
            sent(b"went out"),
            sent(b"never went out"),
            EventKind::Failed {
                peer: Some(0),
                error: NetError::new(ErrorKind::BrokenPipe, Operation::Send, "send: broken pipe")
                    .of_reported_write(),
            },
        ] {
            doc.apply(&Event { id, at, kind });
        }
        let totals = doc.totals_of(id);
        assert_eq!((totals.sent, totals.sent_bytes), (1, 8));
        assert_eq!(doc.endpoints[0].peers[&0].bytes_out, 8);
        // A new start counts from zero.
        doc.restart_totals(id);
        assert_eq!(doc.totals_of(id), Totals::default());
    }
}
