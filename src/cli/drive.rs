//! `connect` and `listen`: one endpoint on the engine, every event printed as a
//! line and recorded in a session that `--save` writes.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::output::{entry_line, summary_line};
use super::{Answer, ConnectRequest, EXIT_BAD_INPUT, EXIT_NETWORK, EXIT_OK, ListenRequest, Proto};
use crate::engine::{
    CLOSE_GRACE, Command, EndpointId, Engine, Event, EventKind, Events, Operation, Target, no_wake,
};
use crate::model::log::Totals;
use crate::model::{AutoReply, Direction, EndpointKind, EndpointSpec, Session};

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
    pub async fn finish(self, save: Option<PathBuf>) -> i32 {
        self.finish_with(save, EXIT_OK, None).await
    }

    /// Like [`Run::finish`], with the status and message of a run that is not a
    /// network failure (a replay check that found differences).
    pub async fn finish_with(
        mut self,
        save: Option<PathBuf>,
        otherwise: i32,
        message: Option<String>,
    ) -> i32 {
        // Drain what is left (the endpoint has stopped or is being abandoned).
        while let Some(event) = self.events.try_recv() {
            self.record(&event);
        }
        self.engine.shutdown().await;
        let mut status = if self.failure.is_some() {
            EXIT_NETWORK
        } else {
            otherwise
        };
        let mut error = self.failure.take().or(message);
        if let Some(path) = save {
            let traffic = self.totals.sent + self.totals.received;
            if status == EXIT_NETWORK && traffic == 0 {
                // A run that failed before any traffic recorded nothing worth
                // keeping, and must not replace a file that holds something.
                note!(
                    "note: nothing saved to {}: the run failed before any traffic",
                    path.display()
                );
            } else if let Err(e) = crate::persist::save(&path, &self.session) {
                if error.is_some() {
                    // The run's own failure stays the last word; the save's is said
                    // too, and the status shows a lost recording (bad input, 2).
                    note!("error: {e}");
                    status = status.max(EXIT_BAD_INPUT);
                } else {
                    status = EXIT_BAD_INPUT;
                    error = Some(e.to_string());
                }
            }
        }
        if let Some(message) = error {
            note!("error: {message}");
        }
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
    let _ = writeln!(std::io::stdout(), "{line}");
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

pub async fn connect(request: ConnectRequest) -> i32 {
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
    let mut run = Run::start(EndpointSpec::new("client", kind), request.quiet);
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
    run.finish(request.save).await
}

pub async fn listen(request: ListenRequest) -> i32 {
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
    run.finish(request.save).await
}
