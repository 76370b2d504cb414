//! What the window does: one [`AppCommand`] enum that views, menus, shortcuts
//! and dialogs push, and the one place that runs them. This file is the only
//! caller of the engine and of the file tasks; everything else in `src/app`
//! decides, this acts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::document::{RuleHits, RunState, SendTo};
use super::files::Pick;
use super::modals::Modal;
use super::replay::ReplayRun;
use super::{App, LogSource, PendingAction, StartQueue, View};
use crate::engine::{Command, EndpointId, PeerId, ReplayOptions, Target};
use crate::export::Format;
use crate::model::placeholder::{Context, Scope, Template};
use crate::model::replay::plan_session;
use crate::model::{HostPort, KindTag, Session};

/// Something the person asked the window to do. Views push these; the frame
/// runs them in order once every view has drawn ([`App::run_command`]).
#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    /// An empty session (after the unsaved-changes question).
    New,
    /// Ask for a session file to open: the path prompt, and the system's
    /// dialog where there is one.
    Open,
    /// Open this session file (after the unsaved-changes question).
    OpenFile(PathBuf),
    /// Save to the session's file; a new session or a template asks where.
    Save,
    /// Ask where to save the session.
    SaveAs,
    /// Close the window (after the unsaved-changes question).
    Quit,
    /// List the sessions folder again.
    RefreshSessions,
    /// Add an endpoint of this kind and select it.
    AddEndpoint(KindTag),
    /// Remove endpoint `i` (a running one is aborted).
    RemoveEndpoint(usize),
    /// Start endpoint `i`, or say why it cannot start.
    Start(usize),
    /// Stop endpoint `i` in order: queued writes first, then FIN.
    Stop(usize),
    /// Stop endpoint `i` at once: every connection is reset.
    Abort(usize),
    /// Start every endpoint: servers first, clients once they listen.
    StartAll,
    /// Stop every endpoint.
    StopAll,
    /// shutdown(SHUT_WR) on one connection of endpoint `index` (peer 0 is a client's).
    HalfClose {
        index: usize,
        peer: PeerId,
    },
    /// End one connection of a server, in order or with a reset.
    Disconnect {
        index: usize,
        peer: PeerId,
        abort: bool,
    },
    /// Turn TCP_NODELAY on or off on a running endpoint's connections.
    SetNoDelay {
        index: usize,
        on: bool,
    },
    /// Hold (or stop holding) what relay `index` reads in direction `way`.
    SetHold {
        index: usize,
        way: crate::model::impair::Way,
        on: bool,
    },
    /// Forward, edit then forward, or drop what relay `index` holds.
    DecideHeld {
        index: usize,
        way: crate::model::impair::Way,
        pick: crate::engine::intercept::Pick,
        verdict: crate::engine::intercept::Verdict,
    },
    /// Join or leave a multicast group on a running UDP endpoint (the form's
    /// list has changed already).
    Multicast {
        index: usize,
        group: std::net::IpAddr,
        join: bool,
    },
    /// Stop reading endpoint `index`'s open TCP connections for `pause`
    /// (a lesson's demo: writes pile up in the receive buffer).
    PauseReads {
        index: usize,
        pause: Duration,
    },
    /// Send the composer's payload from the selected endpoint.
    Send,
    /// Send the quick-send row's payload, from its endpoint (made and started
    /// when needed).
    QuickSend,
    /// Show the library window.
    OpenLibrary,
    /// Put library entry `i` into the composer.
    LibraryLoad(usize),
    /// Move library entry `from` to place `to`.
    LibraryMove {
        from: usize,
        to: usize,
    },
    /// Rename library entry `index` (refused, with a notice, when the name is taken or empty).
    LibraryRename {
        index: usize,
        name: String,
    },
    /// Delete library entry `i` (Undo brings it back).
    LibraryDelete(usize),
    /// Bring back the library entry deleted last.
    LibraryUndoDelete,
    /// Send entry `i` (from 0) of the session's library from the selected
    /// endpoint, exactly as stored: the composer's line ending and frame are
    /// the composer's, not the entry's.
    SendLibrary(usize),
    /// Repeat the composer's payload from the selected endpoint, as its
    /// composer's repeat settings say (every N ms, M times or until stopped).
    Repeat,
    /// Repeat library entry `i` (from 0) from the selected endpoint, as
    /// stored, with the selected endpoint's repeat settings.
    RepeatLibrary(usize),
    /// Stop the repeat of this endpoint.
    StopRepeat(EndpointId),
    /// Read this file into the selected endpoint's composer (in the
    /// background; a file too large or not a regular file is refused beside
    /// the composer).
    LoadPayloadFile(PathBuf),
    /// The system's file dialog (where there is one) for a file to send.
    BrowsePayloadFile,
    /// Put the payload of row `i` of the shown log into the composer.
    LoadIntoComposer(usize),
    /// Point the composer at the peer of row `i` of the session's log.
    ReplyToRow(usize),
    /// Clear the shown log, asking first when that loses recorded rows.
    ClearLog,
    /// Clear the shown log now (the question was answered).
    ClearLogNow,
    /// Show the log and focus its filter.
    FindInLog,
    /// Replay the session's recording (paused, to step through it).
    StartReplay {
        paused: bool,
    },
    /// Let the next recorded payload of the replay go (pausing it).
    StepReplay,
    PauseReplay,
    ResumeReplay,
    /// End the replay now.
    StopReplay,
    /// The replay's speed (1.0 keeps the recorded gaps).
    SetReplaySpeed(f64),
    /// Which log the log view shows.
    ShowLog(LogSource),
    /// Show row `i` of the replay run's log.
    ShowReplayRow(usize),
    /// Add an ignore rule to the session (from a replay's difference).
    AddIgnoreRule(crate::model::ignore::IgnoreRule),
    /// Stop everything, clear the log and the ticks: the lesson from step 1.
    RestartLesson,
    /// The list of keyboard shortcuts.
    ShowShortcuts,
    /// Do this now, unsaved changes or not (the person chose "Don't save").
    Perform(PendingAction),
    /// Save, then do this.
    SaveThen(PendingAction),
    /// Save to this file, then do `then`.
    SaveTo {
        path: PathBuf,
        then: Option<PendingAction>,
    },
    /// Open the recovery copy of the session before a crash.
    Recover {
        original: Option<PathBuf>,
    },
    /// Delete the recovery copy.
    DiscardRecovery,
    /// Ask where to write an export of the session in this format (the path
    /// prompt, and the system's dialog where there is one).
    Export(Format),
    /// The export's path prompt again, at `path` (after "Choose another").
    ExportAt {
        format: Format,
        path: PathBuf,
    },
    /// Export the session in `format` to `path` with the code of `sockbench
    /// export`; an existing file is asked about first, unless `replace`.
    ExportTo {
        format: Format,
        path: PathBuf,
        replace: bool,
    },
    /// Open the system's file dialog (where there is one) for the path prompt.
    Browse {
        pick: Pick,
        folder: PathBuf,
        name: Option<String>,
    },
}

impl App {
    /// Runs the commands the views pushed this frame, in order.
    pub(super) fn run_commands(&mut self, commands: Vec<AppCommand>) {
        for command in commands {
            self.run_command(command);
        }
    }

    /// Runs one command, as a click on its button would.
    pub fn run_command(&mut self, command: AppCommand) {
        match command {
            AppCommand::New => self.request(PendingAction::New),
            AppCommand::Open => self.open_dialog(),
            AppCommand::OpenFile(path) => self.request(PendingAction::Open(path)),
            AppCommand::Save => self.save(None),
            AppCommand::SaveAs => self.open_save_as(None),
            AppCommand::Quit => self.request(PendingAction::Quit),
            AppCommand::RefreshSessions => self.list_sessions(),
            AppCommand::AddEndpoint(kind) => {
                let id = self.fresh_id();
                self.doc.add_endpoint(kind, id);
            }
            AppCommand::RemoveEndpoint(index) => self.remove_endpoint(index),
            AppCommand::Start(index) => self.start(index),
            AppCommand::Stop(index) => self.stop(index),
            AppCommand::Abort(index) => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::Close {
                        id: e.id,
                        abort: true,
                    });
                }
            }
            AppCommand::StartAll => self.start_all(),
            AppCommand::StopAll => self.stop_all(),
            AppCommand::HalfClose { index, peer } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::HalfClose { id: e.id, peer });
                }
            }
            AppCommand::Disconnect { index, peer, abort } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::Disconnect {
                        id: e.id,
                        peer,
                        abort,
                    });
                }
            }
            AppCommand::SetNoDelay { index, on } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::SetNoDelay { id: e.id, on });
                }
            }
            AppCommand::SetHold { index, way, on } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::SetHold { id: e.id, way, on });
                }
            }
            AppCommand::DecideHeld {
                index,
                way,
                pick,
                verdict,
            } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::Decide {
                        id: e.id,
                        way,
                        pick,
                        verdict,
                    });
                }
            }
            AppCommand::Multicast { index, group, join } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::Multicast {
                        id: e.id,
                        group,
                        join,
                    });
                }
            }
            AppCommand::PauseReads { index, pause } => {
                if let Some(e) = self.doc.endpoints.get(index) {
                    self.engine.send(Command::PauseReads { id: e.id, pause });
                }
            }
            AppCommand::Send => self.send_composer(),
            AppCommand::QuickSend => self.quick_send(),
            AppCommand::OpenLibrary => self.library_editor.open = true,
            AppCommand::LibraryLoad(i) => self.library_load(i),
            AppCommand::LibraryMove { from, to } => self.library_move(from, to),
            AppCommand::LibraryRename { index, name } => self.library_rename(index, &name),
            AppCommand::LibraryDelete(i) => self.library_delete(i),
            AppCommand::LibraryUndoDelete => self.library_undo_delete(),
            AppCommand::SendLibrary(entry) => self.send_library(entry),
            AppCommand::Repeat => self.repeat_composer(),
            AppCommand::RepeatLibrary(entry) => self.repeat_library(entry),
            AppCommand::StopRepeat(id) => self.stop_repeat(id, "stopped by you"),
            AppCommand::LoadPayloadFile(path) => self.load_payload_file(path),
            AppCommand::BrowsePayloadFile => {
                if self.config.native_dialogs {
                    let folder = self
                        .composer
                        .file_prompt
                        .as_deref()
                        .map(|p| PathBuf::from(p.trim()))
                        .and_then(|p| p.parent().map(PathBuf::from))
                        .filter(|p| p.is_dir())
                        .unwrap_or_else(|| self.config.sessions_dir.clone());
                    self.files.pick(Pick::Payload, folder, None);
                }
            }
            AppCommand::LoadIntoComposer(row) => {
                let bytes = self.shown_log().data(row).to_vec();
                self.sync_composer();
                self.composer.load_bytes(&bytes);
            }
            AppCommand::ReplyToRow(row) => self.reply_to_row(row),
            AppCommand::ClearLog => self.ask_clear_log(),
            AppCommand::ClearLogNow => self.clear_log(),
            AppCommand::FindInLog => {
                // The filter lives in the log view: show it, then focus it.
                self.view = View::Log;
                self.log_view.focus_search = true;
            }
            AppCommand::StartReplay { paused } => self.start_replay(paused),
            AppCommand::StepReplay => {
                if let Some(run) = &mut self.replay {
                    run.step();
                }
            }
            AppCommand::PauseReplay => {
                if let Some(run) = &mut self.replay {
                    run.pause();
                }
            }
            AppCommand::ResumeReplay => {
                if let Some(run) = &mut self.replay {
                    run.resume();
                }
            }
            AppCommand::StopReplay => {
                if let Some(run) = &mut self.replay {
                    run.stop(&self.engine);
                }
            }
            AppCommand::SetReplaySpeed(speed) => {
                self.replay_speed = speed;
                if let Some(run) = &mut self.replay
                    && !run.is_done()
                {
                    run.set_speed(speed);
                }
            }
            AppCommand::ShowLog(source) => self.show_log(source),
            AppCommand::ShowReplayRow(row) => {
                self.show_log(LogSource::Replay);
                self.log_view.select(row);
            }
            AppCommand::AddIgnoreRule(rule) => {
                let said = rule.to_string();
                if !self.doc.session.ignore.contains(&rule) {
                    self.doc.session.ignore.push(rule);
                    self.doc.touch();
                }
                self.notify(
                    false,
                    format!("Future checks ignore {said}; save the session to keep the rule."),
                );
            }
            AppCommand::RestartLesson => self.restart_lesson(),
            AppCommand::ShowShortcuts => self.modal = Some(Modal::Shortcuts),
            AppCommand::Perform(action) => self.perform(action),
            AppCommand::SaveThen(action) => self.save(Some(action)),
            AppCommand::SaveTo { path, then } => self.save_to(path, then),
            AppCommand::Recover { original } => self.files.recover(original),
            AppCommand::DiscardRecovery => self.files.discard_recovery(),
            AppCommand::Export(format) => self.open_export(format, None),
            AppCommand::ExportAt { format, path } => self.open_export(format, Some(path)),
            AppCommand::ExportTo {
                format,
                path,
                replace,
            } => self.export_to(format, path, replace),
            AppCommand::Browse { pick, folder, name } => {
                if self.config.native_dialogs {
                    self.files.pick(pick, folder, name);
                }
            }
        }
    }

    // ----- the log -----

    /// Points the composer at the peer of log row `index` (and its endpoint).
    fn reply_to_row(&mut self, index: usize) {
        if self.log_source != LogSource::Recording {
            self.notify(
                true,
                "Replies go to peers of the session's own log: show the recording first.",
            );
            return;
        }
        let log = &self.doc.session.log;
        let Some(entry) = log.entry(index) else {
            return;
        };
        let Some(peer) = log.peer_of(entry) else {
            return;
        };
        let name = log.endpoints()[peer.endpoint as usize].clone();
        let number = peer.number;
        if let Some(i) = self
            .doc
            .endpoints
            .iter()
            .position(|e| e.form.name.trim() == name)
        {
            self.doc.selected = i;
            self.doc.endpoints[i].send_to = SendTo::Peer(number);
        }
    }

    /// Clears the shown log, asking first when that loses recorded rows.
    fn ask_clear_log(&mut self) {
        if self.log_source == LogSource::Recording && !self.doc.session.log.is_empty() {
            self.modal = Some(Modal::ClearLog);
        } else {
            self.clear_log();
        }
    }

    fn clear_log(&mut self) {
        if self.log_source == LogSource::Replay {
            // The replay run's log goes; the recording stays.
            self.replay = None;
            self.show_log(LogSource::Recording);
            return;
        }
        self.doc.session.log.clear();
        self.log_view.selected = None;
        self.doc.log_changed();
    }

    pub(super) fn show_log(&mut self, source: LogSource) {
        if self.log_source != source {
            self.log_source = source;
            self.log_view.retarget();
        }
    }

    // ----- the engine -----

    /// Starts endpoint `index`, or explains why it cannot start.
    fn start(&mut self, index: usize) {
        if index >= self.doc.endpoints.len() {
            return;
        }
        let spec = match self.doc.validate(index) {
            Ok(spec) => spec,
            Err(errors) => {
                let name = self.doc.endpoints[index].form.name.clone();
                let why = errors.first().unwrap_or_default();
                self.notify(true, format!("\"{name}\" cannot start: {why}"));
                return;
            }
        };
        self.doc.sync_name(index);
        if self.doc.endpoints[index].state.is_running() {
            return;
        }
        // The form checked the sends, library names included; the library
        // may still have changed since.
        let id = self.doc.endpoints[index].id;
        let scheduler = match crate::run::Scheduler::new(id, &spec.sends, &self.doc.session.library)
        {
            Ok(scheduler) => scheduler,
            Err(why) => {
                let name = self.doc.endpoints[index].form.name.clone();
                self.notify(true, format!("\"{name}\" cannot start: {why}"));
                return;
            }
        };
        let e = &mut self.doc.endpoints[index];
        e.state = RunState::Starting;
        e.peers.clear();
        // Each rule row counts the hits of the rule it starts as, from zero.
        e.rule_hits = (0..e.form.rules.len() as u32)
            .map(|i| RuleHits {
                started_as: Some(i),
                hits: 0,
            })
            .collect();
        e.started_with = Some(spec.clone());
        let id = e.id;
        // Its scheduled sends run from its first connection.
        match scheduler {
            Some(scheduler) => self.schedules.start(scheduler),
            None => self.schedules.forget(id),
        }
        self.doc.restart_totals(id);
        if let Some(log_endpoint) = self.doc.log_endpoint(id) {
            self.doc.session.log.new_run(log_endpoint);
        }
        self.engine.send(Command::Open {
            id,
            spec: Box::new(spec),
        });
    }

    fn stop(&mut self, index: usize) {
        let Some(e) = self.doc.endpoints.get_mut(index) else {
            return;
        };
        if e.state.is_running() {
            self.engine.send(Command::Close {
                id: e.id,
                abort: false,
            });
            e.state = RunState::Stopping;
        }
        if let Some(queue) = &mut self.start_queue {
            // A server stopped before it listened frees its clients.
            let due = queue.launch.forget(e.id);
            queue.due.extend(due);
        }
    }

    /// Starts servers and UDP sockets first, then clients once the servers listen.
    fn start_all(&mut self) {
        let endpoints: Vec<(EndpointId, bool)> = self
            .doc
            .endpoints
            .iter()
            .filter(|e| !e.state.is_running())
            .map(|e| (e.id, e.kind().is_client()))
            .collect();
        let (launch, first) = crate::run::Launch::new(endpoints, Instant::now());
        self.start_ids(first);
        if !launch.is_done() {
            self.start_queue = Some(StartQueue {
                launch,
                due: Vec::new(),
            });
        }
    }

    /// Starts the endpoints of these ids (those still here).
    fn start_ids(&mut self, ids: Vec<EndpointId>) {
        for id in ids {
            if let Some(i) = self.doc.endpoints.iter().position(|e| e.id == id) {
                self.start(i);
            }
        }
    }

    /// Starts the clients of a "Start all" once its servers listen (or the
    /// grace time is over).
    pub(super) fn start_waiting_clients(&mut self) {
        let Some(queue) = &mut self.start_queue else {
            return;
        };
        let mut due = std::mem::take(&mut queue.due);
        due.extend(queue.launch.on_time(Instant::now()));
        if queue.launch.is_done() {
            self.start_queue = None;
        }
        self.start_ids(due);
    }

    fn stop_all(&mut self) {
        self.start_queue = None;
        for i in 0..self.doc.endpoints.len() {
            self.stop(i);
        }
    }

    fn remove_endpoint(&mut self, index: usize) {
        if index >= self.doc.endpoints.len() {
            return;
        }
        let e = self.doc.endpoints.remove(index);
        self.doc.forget(e.id);
        self.schedules.forget(e.id);
        if e.state.is_running() {
            self.engine.send(Command::Close {
                id: e.id,
                abort: true,
            });
        }
        self.doc.selected = self
            .doc
            .selected
            .min(self.doc.endpoints.len().saturating_sub(1));
        self.doc.touch();
    }

    /// Stops every endpoint of the open document at once (it is being replaced).
    pub(super) fn stop_everything(&mut self) {
        if let Some(run) = &mut self.replay
            && !run.is_done()
        {
            run.stop(&self.engine);
        }
        self.replay = None;
        self.replay_only = None;
        self.log_source = LogSource::Recording;
        for e in &self.doc.endpoints {
            if e.state.is_running() {
                self.engine.send(Command::Close {
                    id: e.id,
                    abort: true,
                });
            }
        }
        self.start_queue = None;
        self.repeats.clear();
        self.schedules = Default::default();
    }

    /// Where the selected endpoint sends (its "Send to" choice), or why it
    /// cannot send now (said in a notice).
    fn send_target(&mut self) -> Option<(EndpointId, Target)> {
        let e = self.doc.endpoints.get(self.doc.selected)?;
        if !e.state.is_up() {
            let name = e.form.name.clone();
            self.notify(
                true,
                format!("\"{name}\" is not running: start it, then send"),
            );
            return None;
        }
        let to = match (&e.send_to, e.kind()) {
            (SendTo::Peer(p), _) => Target::Peer(*p),
            (SendTo::Address, KindTag::Udp) => match e
                .send_address
                .parse::<HostPort>()
                .and_then(HostPort::require_port)
            {
                Ok(address) => Target::Address(address),
                Err(err) => {
                    let why = format!("Not sent: the address \"{}\": {err}", e.send_address);
                    self.notify(true, why);
                    return None;
                }
            },
            (SendTo::Address, KindTag::UnixDatagram) => {
                match crate::model::UnixPath::parse(&e.send_address) {
                    Ok(path) => Target::UnixPath(path),
                    Err(err) => {
                        let why = format!(
                            "Not sent: the socket path \"{}\": {err}",
                            crate::model::escape_controls(&e.send_address)
                        );
                        self.notify(true, why);
                        return None;
                    }
                }
            }
            (_, kind) if kind.is_server() => Target::AllPeers,
            _ => Target::Default,
        };
        Some((e.id, to))
    }

    /// Sends the row's payload from its endpoint, made (and started) when needed.
    fn quick_send(&mut self) {
        let target = match self.quick_send.target() {
            Ok(t) => t,
            Err(why) => {
                self.notify(true, format!("Not sent: {why}"));
                return;
            }
        };
        let kind = self.quick_send.proto.kind();
        let name = self.quick_send.endpoint_name(&target.address);
        let index = match self
            .doc
            .endpoints
            .iter()
            .position(|e| e.form.name == name && e.kind() == kind)
        {
            Some(i) => i,
            None => {
                if self.doc.endpoints.iter().any(|e| e.form.name == name) {
                    self.notify(
                        true,
                        format!(
                            "Not sent: an endpoint \"{}\" of another kind is in the way; rename it",
                            crate::model::display::escape_controls(&name)
                        ),
                    );
                    return;
                }
                let id = self.fresh_id();
                self.doc.add_endpoint(kind, id);
                let i = self.doc.endpoints.len() - 1;
                let form = &mut self.doc.endpoints[i].form;
                form.name = name.clone();
                form.remote = target.address.to_string();
                // A UDP socket connected to its remote binds where the route
                // to it starts, so it hears the answer and only the answer.
                form.local.clear();
                self.doc.endpoints[i].send_address = target.address.to_string();
                self.doc.sync_name(i);
                i
            }
        };
        self.doc.selected = index;
        let e = &self.doc.endpoints[index];
        let (id, running) = (e.id, e.state.is_running() && e.state != RunState::Stopping);
        if !running {
            self.start(index);
            if !self.doc.endpoints[index].state.is_running() {
                // It could not start; the notice says why.
                return;
            }
        }
        // Behind the Open: a client queues it until it is connected.
        self.engine.send(Command::Send {
            id,
            to: Target::Default,
            bytes: target.bytes,
        });
        self.quick_send.sends += 1;
    }

    /// Sends the composer's payload from the selected endpoint.
    fn send_composer(&mut self) {
        self.sync_composer();
        let Some((id, to)) = self.send_target() else {
            return;
        };
        // Send is the next round of the composer's own count, so
        // `${counter}` counts single sends as a repeat counts its rounds.
        let Ok(bytes) = self.composer.source().round_bytes(self.composer.sends + 1) else {
            // The error stands under the composer already.
            return;
        };
        self.composer.sends += 1;
        let command = if self.composer.writes > 1 {
            Command::SendSplit {
                id,
                to,
                bytes,
                writes: self.composer.writes,
                gap: Duration::from_millis(u64::from(self.composer.gap_ms)),
            }
        } else {
            Command::Send { id, to, bytes }
        };
        self.engine.send(command);
        if self.composer.file.is_none() {
            self.composer.remember();
        }
    }

    // ----- repeats (the traffic generator) -----

    /// Starts repeating the composer's payload from the selected endpoint.
    fn repeat_composer(&mut self) {
        self.sync_composer();
        let source = self.composer.source();
        let what = match &self.composer.file {
            Some(file) => format!(
                "the file {}",
                crate::model::display::escape_controls(&file.name)
            ),
            None => "the composer's payload".to_owned(),
        };
        let (writes, gap) = (
            self.composer.writes,
            Duration::from_millis(u64::from(self.composer.gap_ms)),
        );
        self.start_repeat(source, what, writes, gap);
    }

    /// Starts repeating library entry `entry` (from 0) from the selected
    /// endpoint, as stored (no line ending, no frame, one write).
    fn repeat_library(&mut self, entry: usize) {
        let Some(item) = self.doc.session.library.get(entry) else {
            self.notify(true, "Not repeated: that library entry is gone");
            return;
        };
        // A template as stored: each round fills in its placeholders.
        let source = super::composer::PayloadSource::Stored {
            template: std::sync::Arc::from(item.payload.bytes()),
        };
        let what = format!(
            "library entry \"{}\"",
            crate::model::display::escape_controls(&item.name)
        );
        self.sync_composer();
        self.start_repeat(source, what, 1, Duration::ZERO);
    }

    /// Starts a repeat of `source` from the selected endpoint with its
    /// composer's settings, or says why not. Round 1 goes on the next frame.
    fn start_repeat(
        &mut self,
        source: super::composer::PayloadSource,
        what: String,
        writes: u32,
        gap: Duration,
    ) {
        let Some(e) = self.doc.endpoints.get(self.doc.selected) else {
            return;
        };
        let (id, tcp) = (e.id, e.kind().is_tcp());
        // Round 1's bytes, to refuse a payload that cannot go before it starts.
        let first = match source.round_bytes(1) {
            Ok(bytes) => bytes,
            Err(why) => return self.notify(true, format!("Not repeated: {why}")),
        };
        if first.is_empty() && tcp {
            return self.notify(
                true,
                "Not repeated: the payload is empty (TCP has no empty messages)",
            );
        }
        let Some((_, to)) = self.send_target() else {
            return;
        };
        let settings = self.composer.repeat;
        let schedule =
            super::repeat::Schedule::new(settings.interval(), settings.rounds(), Instant::now());
        let rounds = match schedule.rounds() {
            Some(1) => "1 round".to_owned(),
            Some(n) => format!("{n} rounds"),
            None => "rounds until stopped".to_owned(),
        };
        let note = format!(
            "repeat: {rounds} {} of {what} ({} a round)",
            super::repeat::every_text(schedule.interval()),
            super::composer::size_words(first.len()),
        );
        let repeat = super::repeat::Repeat {
            endpoint: id,
            to,
            source,
            writes,
            gap,
            what,
            schedule,
            in_flight: Default::default(),
        };
        match self.repeats.start(repeat) {
            Ok(()) => self.log_note(id, note),
            Err(why) => self.notify(true, format!("Not repeated: {why}")),
        }
    }

    /// Stops the repeat of endpoint `id`, saying why in the log.
    fn stop_repeat(&mut self, id: EndpointId, why: &str) {
        if let Some(repeat) = self.repeats.stop(id, why) {
            let lag = repeat.lag_note();
            self.log_note(id, format!("repeat {why} ({}){lag}", repeat.summary()));
        }
    }

    /// A note row in endpoint `id`'s log, drained with the engine's events.
    fn log_note(&mut self, id: EndpointId, text: String) {
        self.inject_events([crate::engine::Event {
            id,
            at: crate::engine::now(),
            kind: crate::engine::EventKind::Note { peer: None, text },
        }]);
    }

    /// Sends every repeat's due rounds (all of them, within the bounds of
    /// [`super::repeat`]: rounds held back are shown as behind, never
    /// dropped), and ends the repeats that are done or whose endpoint
    /// stopped. Called by `logic` every frame.
    pub(super) fn run_repeats(&mut self) {
        if self.repeats.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut ended: Vec<(EndpointId, &'static str)> = Vec::new();
        let mut errors = Vec::new();
        for repeat in self.repeats.running_mut() {
            let id = repeat.endpoint;
            match self.doc.endpoints.iter().find(|e| e.id == id) {
                None => {
                    ended.push((id, "ended: the endpoint was removed"));
                    continue;
                }
                Some(e) if !e.state.is_up() => {
                    ended.push((id, "ended: the endpoint stopped"));
                    continue;
                }
                Some(_) => {}
            }
            for _ in 0..super::repeat::MAX_ROUNDS_PER_FRAME {
                if repeat.schedule.due(now) == 0 {
                    break;
                }
                let round = repeat.schedule.sent() + 1;
                match repeat.source.round_bytes(round) {
                    Ok(bytes) => {
                        if !repeat.in_flight.has_room(bytes.len()) {
                            // Until rounds in flight are written (or failed): no queue fills.
                            break;
                        }
                        repeat.schedule.take_due(now);
                        repeat.in_flight.push(bytes.len());
                        self.engine.send(if repeat.writes > 1 {
                            Command::SendSplit {
                                id,
                                to: repeat.to.clone(),
                                bytes,
                                writes: repeat.writes,
                                gap: repeat.gap,
                            }
                        } else {
                            Command::Send {
                                id,
                                to: repeat.to.clone(),
                                bytes,
                            }
                        })
                    }
                    // Never skipped unsaid: the round is an error row.
                    Err(why) => {
                        repeat.schedule.take_due(now);
                        errors.push(crate::engine::Event {
                            id,
                            at: crate::engine::now(),
                            kind: crate::engine::EventKind::Failed {
                                peer: None,
                                error: crate::engine::NetError::new(
                                    crate::model::ErrorKind::Other,
                                    crate::engine::Operation::Send,
                                    format!("repeat round {round}: not sent: {why}"),
                                ),
                            },
                        })
                    }
                }
            }
            repeat.schedule.note_behind(now);
            if repeat.schedule.is_done() {
                ended.push((id, "done"));
            }
        }
        if !errors.is_empty() {
            self.inject_events(errors);
        }
        for (id, why) in ended {
            if why == "done" {
                // No note: the start note said how many, the Sent rows
                // follow; unless rounds fell behind, which is never silent.
                if let Some(repeat) = self.repeats.stop(id, why) {
                    let lag = repeat.lag_note();
                    if !lag.is_empty() {
                        self.log_note(id, format!("repeat done ({}){lag}", repeat.summary()));
                    }
                }
            } else {
                self.stop_repeat(id, why);
            }
        }
        let now = Instant::now();
        if let Some(wait) = self
            .repeats
            .running()
            .iter()
            // Rounds waiting for room are woken by the engine's write events,
            // not by a timer (which would repaint without pause meanwhile).
            .filter(|r| r.in_flight.has_room(0))
            .filter_map(|r| r.schedule.wait(now))
            .min()
        {
            self.ctx.request_repaint_after(wait);
        }
    }

    /// Sends the scheduled sends that are due (see [`crate::run::Scheduler`]):
    /// a payload that cannot be made is an error row. Called by `logic`
    /// every frame; asks for the frame when the next one falls due.
    pub(super) fn run_schedules(&mut self) {
        if self.schedules.is_empty() {
            return;
        }
        let mut not_sent = Vec::new();
        for action in self.schedules.due(Instant::now()) {
            match action {
                crate::run::schedule::Action::Send(command) => self.engine.send(command),
                crate::run::schedule::Action::NotSent(event) => not_sent.push(event),
            }
        }
        if !not_sent.is_empty() {
            self.inject_events(not_sent);
        }
        if let Some(next) = self.schedules.next_wake() {
            self.ctx
                .request_repaint_after(next.saturating_duration_since(Instant::now()));
        }
    }

    /// Reads `path` into the selected endpoint's composer, in the background.
    fn load_payload_file(&mut self, path: PathBuf) {
        self.sync_composer();
        let Some(id) = self.composer_owner else {
            self.notify(
                true,
                "Add an endpoint first: a file is sent from an endpoint's composer",
            );
            return;
        };
        self.composer.file_note = Some(Ok(format!("Reading {}…", path.display())));
        self.files.read_payload(path, id);
    }

    /// A file read for endpoint `id`'s composer came back.
    pub(super) fn payload_file_read(
        &mut self,
        id: EndpointId,
        path: PathBuf,
        result: Result<Vec<u8>, String>,
    ) {
        let composer = if self.composer_owner == Some(id) {
            &mut self.composer
        } else if let Some(c) = self.composers.get_mut(&id) {
            c
        } else {
            // Its endpoint or session is gone.
            return;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        match result {
            Ok(bytes) => {
                composer.load_file(&name, bytes);
                composer.file_prompt = None;
            }
            Err(why) => composer.file_note = Some(Err(why)),
        }
    }

    /// Sends library entry `entry` (from 0) from the selected endpoint, as stored.
    fn send_library(&mut self, entry: usize) {
        let Some(item) = self.doc.session.library.get(entry) else {
            let count = self.doc.session.library.len();
            let has = match count {
                0 => "is empty".to_owned(),
                1 => "has 1 entry".to_owned(),
                n => format!("has {n} entries"),
            };
            self.notify(
                true,
                format!(
                    "Not sent: the session's library {has}, no entry {}",
                    entry + 1
                ),
            );
            return;
        };
        let name = item.name.clone();
        // The entry is a template: filled in now, its counter counting its sends.
        let send = self.library_sends.get(&name).copied().unwrap_or(0);
        let bytes = match Template::parse(item.payload.bytes(), &Scope::Plain)
            .and_then(|t| t.expand(&Context::now(send)))
        {
            Ok(bytes) => bytes,
            Err(e) => {
                self.notify(
                    true,
                    format!(
                        "Not sent: the library's \"{}\": {e}",
                        crate::model::display::escape_controls(&name)
                    ),
                );
                return;
            }
        };
        let Some(e) = self.doc.endpoints.get(self.doc.selected) else {
            return;
        };
        if bytes.is_empty() && e.kind().is_tcp() {
            self.notify(
                true,
                format!(
                    "Not sent: the library's \"{}\" is empty (TCP has no empty messages)",
                    crate::model::display::escape_controls(&name)
                ),
            );
            return;
        }
        let Some((id, to)) = self.send_target() else {
            return;
        };
        self.engine.send(Command::Send { id, to, bytes });
        *self.library_sends.entry(name).or_default() += 1;
    }

    /// Starts a replay of the open session's recording (paused when stepping).
    fn start_replay(&mut self, paused: bool) {
        if self.doc.endpoints.iter().any(|e| e.state.is_running()) {
            self.notify(
                true,
                "Stop the endpoints first: the replay plays the recording on their addresses.",
            );
            return;
        }
        let session = match self.doc.to_session() {
            Ok(s) => s,
            Err(e) => return self.notify(true, format!("Cannot replay: {e}")),
        };
        let plans = match plan_session(&session, self.replay_only.as_deref(), None) {
            Ok(p) => p,
            Err(e) => return self.notify(true, format!("Cannot replay: {e}")),
        };
        if let Some(old) = &mut self.replay
            && !old.is_done()
        {
            old.stop(&self.engine);
        }
        let mut next = self.next_id;
        let run = ReplayRun::start(
            plans,
            &self.engine,
            &mut || {
                next += 1;
                EndpointId(next)
            },
            ReplayOptions::new(self.replay_speed, Duration::from_secs(5), paused),
            self.replay_check,
        );
        self.next_id = next;
        self.replay = Some(run);
        self.show_log(LogSource::Replay);
    }

    /// Starts the replay's clients once its mock servers listen.
    pub(super) fn advance_replay(&mut self) -> bool {
        match &mut self.replay {
            Some(run) if !run.is_done() => {
                run.start_clients(&self.engine);
                true
            }
            _ => false,
        }
    }

    /// The window closes: the engine shuts down, and the recovery copy goes
    /// (unsaved work was either saved or knowingly discarded at the prompt).
    pub(super) fn shut_down(&mut self) {
        self.engine.request_shutdown();
        self.files.discard_recovery();
    }

    // ----- the file tasks -----

    pub(super) fn list_sessions(&self) {
        self.files.list(self.config.sessions_dir.clone());
    }

    pub(super) fn look_for_recovery(&self) {
        self.files.look_for_recovery();
    }

    /// Reads a session file in the background; [`FileMsg::Loaded`](super::files::FileMsg) brings it.
    pub(super) fn load_file(&self, path: PathBuf) {
        self.files.load(path);
    }

    /// Writes `session` to `path` in the background.
    pub(super) fn write_session(
        &self,
        path: PathBuf,
        session: Session,
        change: u64,
        make_folder: bool,
    ) {
        self.files.save(path, session, change, make_folder);
    }

    /// Opens the system's file dialog, where there is one.
    pub(super) fn pick_file(&mut self, pick: Pick, folder: PathBuf, name: Option<String>) {
        self.dialog_note = None;
        if self.config.native_dialogs {
            self.files.pick(pick, folder, name);
        }
    }

    /// Exports the session in `format` to `path` in the background, asking
    /// first when the file exists.
    fn export_to(&mut self, format: Format, path: PathBuf, replace: bool) {
        if !replace && std::fs::symlink_metadata(&path).is_ok() {
            self.modal = Some(Modal::ReplaceExport { format, path });
            return;
        }
        let session = match self.doc.to_session() {
            Ok(session) => session,
            Err(e) => return self.notify(true, format!("Not exported: {e}")),
        };
        let (name, endpoint) = self.export_names();
        self.files.export(path, format, session, name, endpoint);
    }

    /// Writes the recovery copy in the background; false when one is being written.
    pub(super) fn write_recovery(&self, session: Session) -> bool {
        self.files.autosave(session, self.doc.path.clone())
    }

    pub(super) fn discard_recovery_in_background(&self) {
        self.files.discard_recovery_in_background();
    }

    /// Asks for the system's TCP states (every second while the lifecycle view shows).
    pub(super) fn poll_tcp_states(&mut self) {
        if self
            .os_tcp_asked
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.os_tcp_asked = Some(Instant::now());
            self.files.read_tcp_states();
        }
    }

    /// The file results that came back since the last frame.
    pub(super) fn file_messages(&self) -> Vec<super::files::FileMsg> {
        std::iter::from_fn(|| self.files.rx.try_recv().ok()).collect()
    }
}
