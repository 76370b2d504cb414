//! `connect` and `listen`: one endpoint on the engine, every event printed as a
//! line and recorded in a session that `--save` writes.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::output::{entry_line, summary_line};
use super::{Answer, ConnectJob, EXIT_NETWORK, EXIT_OK, EXIT_OUTPUT, Errors, ListenJob, Proto};
use crate::engine::{
    CLOSE_GRACE, Command, EndpointId, Engine, Event, EventKind, Events, Operation, Target, no_wake,
};
use crate::model::log::Totals;
use crate::model::{AutoReply, Direction, EndpointKind, EndpointSpec, Session, escape_controls};
use crate::persist::SaveTarget;

const ID: EndpointId = EndpointId(1);

/// How long to wait for the endpoint to stop after asking it to.
const STOP_GRACE: Duration = Duration::from_secs(4);

/// A headless run: the engine, the session being recorded, the printed lines.
pub(super) struct Run {
    pub engine: Engine,
    pub events: Events,
    pub session: Session,
    /// The log's endpoint index of each running endpoint.
    endpoints: HashMap<EndpointId, u32>,
    quiet: bool,
    /// A quiet server still says the address it listens on, on stderr (port 0).
    announce_local: bool,
    pub totals: Totals,
    /// The first failure that makes the run exit with status 3.
    failure: Option<String>,
}

impl Run {
    pub fn new(quiet: bool) -> Run {
        let (engine, events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        Run {
            engine,
            events,
            session: Session::default(),
            endpoints: HashMap::new(),
            quiet,
            announce_local: false,
            totals: Totals::default(),
            failure: None,
        }
    }

    /// Names the endpoint the engine calls `id` in the log.
    pub fn name(&mut self, id: EndpointId, name: &str) {
        let index = self.session.log.endpoint_index(name);
        self.endpoints.insert(id, index);
    }

    fn start(spec: EndpointSpec, quiet: bool) -> Run {
        let mut run = Run::new(quiet);
        run.name(ID, &spec.name);
        run.session.endpoints.push(spec.clone());
        run.engine.send(Command::Open { id: ID, spec });
        run
    }

    /// Records and prints an event; returns its log row.
    pub fn record(&mut self, event: &Event) -> Option<usize> {
        let endpoint = *self.endpoints.get(&event.id)?;
        let index = event.record(&mut self.session.log, endpoint)?;
        if let Some(entry) = self.session.log.entry(index) {
            self.totals.add(entry.kind, entry.len());
        }
        if !self.quiet {
            say(entry_line(&self.session.log, index));
        } else if let EventKind::Listening { local } | EventKind::Bound { local } = &event.kind
            && self.announce_local
        {
            // Port 0 picks a port; a quiet run still says which, on stderr.
            note!("listening on {local}");
        }
        Some(index)
    }

    pub fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
    }

    pub fn send(&self, command: Command) {
        self.engine.send(command);
    }

    /// Stops the engine, saves, prints the error line and the summary, and
    /// returns the exit status.
    pub async fn finish(self, save: Option<SaveTarget>) -> i32 {
        self.finish_with(save, EXIT_OK, None).await
    }

    /// Like [`Run::finish`], with the status and message of a run that is not a
    /// network failure (a replay check that found differences).
    pub async fn finish_with(
        mut self,
        save: Option<SaveTarget>,
        otherwise: i32,
        message: Option<String>,
    ) -> i32 {
        // Drain what is left (the endpoint has stopped or is being abandoned).
        while let Some(event) = self.events.try_recv() {
            self.record(&event);
        }
        self.engine.shutdown().await;
        let mut errors = Errors::default();
        let failed = self.failure.is_some();
        if let Some(failure) = self.failure.take() {
            errors.add(EXIT_NETWORK, failure);
        }
        match message {
            Some(message) => errors.add(otherwise, message),
            None => errors.raise(otherwise),
        }
        if let Some(target) = save {
            let traffic = self.totals.sent + self.totals.received;
            if failed && traffic == 0 {
                // A run that failed before any traffic recorded nothing worth
                // keeping, and must not replace a file that holds something.
                note!(
                    "note: nothing saved to {}: the run failed before any traffic",
                    escape_controls(&target.to_string())
                );
            } else if let Err(e) = crate::persist::save_or_recover(&target, &self.session) {
                // The recording is kept in a recovery file the message names.
                errors.add(EXIT_OUTPUT, e.to_string());
            }
        }
        errors.add_console();
        let status = errors.finish();
        note!("{}", summary_line(&self.totals));
        status
    }
}

/// Resolves when the person or the system asks the run to stop: Ctrl+C
/// (SIGINT) everywhere, and SIGTERM on Unix (`timeout`, `docker stop`,
/// systemd), so the `--save` file and the summary line are still written.
pub(super) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints a line on stdout; a closed stdout (piped into `head` or `true`)
/// must not stop the run or lose its `--save` file.
pub(super) fn say(line: impl std::fmt::Display) {
    super::console::line(line);
}

/// A timer that may be unset.
pub(super) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Waiting for the connection (TCP) or the bound socket (UDP).
    Starting,
    /// Payloads are queued; waiting for each to be written.
    Sending,
    /// All written; reading until `--wait` passes quietly.
    Waiting,
    /// Asked to close; waiting for the endpoint to stop.
    Closing,
}

pub async fn connect(job: ConnectJob) -> i32 {
    let request = job.request;
    let kind = match request.proto {
        Proto::Tcp => EndpointKind::TcpClient {
            remote: request.remote.clone(),
        },
        Proto::Tls => EndpointKind::TlsClient {
            remote: request.remote.clone(),
            tls: request.tls.clone(),
        },
        Proto::Udp => EndpointKind::Udp {
            bind: None,
            remote: Some(request.remote.clone()),
        },
    };
    let mut spec = EndpointSpec::new("client", kind);
    if let Some(limit) = request.connect_timeout {
        spec.options.connect_timeout_secs = limit.as_secs_f64();
    }
    let mut run = Run::start(spec, request.quiet);
    let mut payloads = request.payloads;
    let mut unsent = payloads.len();
    let mut phase = Phase::Starting;
    let mut deadline: Option<Instant> = None;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);

    loop {
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                run.record(&event);
                match &event.kind {
                    EventKind::Connected { .. } | EventKind::Bound { .. } if phase == Phase::Starting => {
                        for bytes in payloads.drain(..) {
                            run.send(Command::Send { id: ID, to: Target::Default, bytes });
                        }
                        phase = Phase::Sending;
                    }
                    EventKind::Traffic { dir: Direction::Sent, .. } => unsent = unsent.saturating_sub(1),
                    EventKind::Traffic { dir: Direction::Received, .. } if phase == Phase::Waiting => {
                        deadline = Some(Instant::now() + request.wait);
                    }
                    EventKind::Failed { error, .. } => {
                        if error.operation == Operation::Send {
                            unsent = unsent.saturating_sub(1);
                        }
                        run.fail(error.to_string());
                    }
                    EventKind::Reset { .. } => run.fail("connection reset: the peer reset the connection".into()),
                    EventKind::PeerClosed { .. } => {
                        // The engine closes our side once the queued writes are out.
                        phase = Phase::Closing;
                        deadline = Some(Instant::now() + STOP_GRACE);
                    }
                    EventKind::Stopped => break,
                    _ => {}
                }
                if phase == Phase::Sending && unsent == 0 {
                    phase = Phase::Waiting;
                    deadline = Some(Instant::now() + request.wait);
                }
            }
            _ = until(deadline) => match phase {
                Phase::Waiting => {
                    run.send(Command::Close { id: ID, abort: false });
                    phase = Phase::Closing;
                    deadline = Some(Instant::now() + STOP_GRACE);
                }
                _ => break,
            },
            _ = &mut ctrl_c, if phase != Phase::Closing => {
                run.send(Command::Close { id: ID, abort: false });
                phase = Phase::Closing;
                deadline = Some(Instant::now() + STOP_GRACE);
            }
        }
    }
    run.finish(job.save).await
}

pub async fn listen(job: ListenJob) -> i32 {
    let request = job.request;
    let kind = match request.proto {
        Proto::Tcp => EndpointKind::TcpServer {
            listen: request.local.clone(),
        },
        Proto::Tls => EndpointKind::TlsServer {
            listen: request.local.clone(),
            tls: request.tls.clone(),
        },
        Proto::Udp => EndpointKind::Udp {
            bind: Some(request.local.clone()),
            remote: None,
        },
    };
    let reply = match &request.answer {
        Answer::None => AutoReply::Off,
        Answer::Echo => AutoReply::Echo,
        Answer::Reply(p) => AutoReply::always(p.clone()),
    };
    let answers = reply != AutoReply::Off;
    let mut run = Run::start(
        EndpointSpec::new("server", kind).with_reply(reply),
        request.quiet,
    );
    run.announce_local = true;
    let mut deadline = request.run_for.map(|d| Instant::now() + d);
    let mut closing = false;
    // --once over UDP: the first datagram came in, its answer is still to go out.
    let mut awaiting_answer = false;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);

    loop {
        let mut close = false;
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                run.record(&event);
                match &event.kind {
                    // Only the endpoint's own failure fails the run; a peer that
                    // misbehaves is the server's everyday business.
                    EventKind::Failed { peer: None, error } if matches!(
                        error.operation,
                        Operation::Resolve | Operation::Bind | Operation::Listen | Operation::Configure
                    ) => run.fail(error.to_string()),
                    EventKind::Closed { .. } if request.once && request.proto != Proto::Udp => close = true,
                    EventKind::Traffic { dir: Direction::Received, .. }
                        if request.once && request.proto == Proto::Udp && !awaiting_answer =>
                    {
                        if answers {
                            awaiting_answer = true;
                        } else {
                            close = true;
                        }
                    }
                    EventKind::Traffic { dir: Direction::Sent, .. } if awaiting_answer => close = true,
                    EventKind::Stopped => break,
                    _ => {}
                }
            }
            _ = until(deadline) => {
                if closing {
                    break;
                }
                close = true;
            }
            _ = &mut ctrl_c, if !closing => close = true,
        }
        if close && !closing {
            closing = true;
            run.send(Command::Close {
                id: ID,
                abort: false,
            });
            deadline = Some(Instant::now() + STOP_GRACE + CLOSE_GRACE);
        }
    }
    run.finish(job.save).await
}
