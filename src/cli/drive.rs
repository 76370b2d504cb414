//! `connect` and `listen`: one endpoint on the engine, every event printed as a
//! line and recorded in a session that `--save` writes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::output::{entry_line, relay_line, summary_with_log};
use super::{
    Answer, ConnectJob, EXIT_NETWORK, EXIT_OK, EXIT_OUTPUT, Errors, ListenJob, Proto, RelayJob,
};
use crate::engine::{
    CLOSE_GRACE, Command, EndpointId, Engine, Event, EventKind, Events, Operation, Target, no_wake,
};
use crate::model::log::{LogBudget, TrafficLog};
use crate::model::placeholder::{Context, Template};
use crate::model::{
    AutoReply, Direction, EndpointKind, EndpointSpec, HostPort, Session, escape_controls,
};
use crate::persist::SaveTarget;

const ID: EndpointId = EndpointId(1);

/// How long to wait for the endpoint to stop after asking it to.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(4);

/// A headless run: the engine, the session being recorded, the printed lines.
pub(super) struct Run {
    pub engine: Engine,
    pub events: Events,
    pub session: Session,
    /// Events to log rows: the log endpoint of each engine endpoint, the totals.
    recorder: crate::run::Recorder,
    quiet: bool,
    /// Events as JSON objects (`--json`) instead of lines.
    pub json: bool,
    /// Why a file the run writes besides its session (`--report`) failed.
    pub output_failure: Option<String>,
    /// A server says the address it listens on, on stderr (port 0 picks one).
    announce_local: bool,
    /// The endpoint is a relay: its payload lines name the direction, and
    /// so does the summary.
    relay: bool,
    /// Log endpoints that are relays among others (`run`): their payload
    /// lines name the direction.
    relay_endpoints: Vec<u32>,
    /// The first failure that makes the run exit with status 3.
    pub(super) failure: Option<String>,
    /// `--stats`: the line maker and its timer (`None`: off, no timer at all).
    pub(super) stats: Option<StatsRun>,
}

/// What `--stats` keeps: the last line's counts, the timer, and the open
/// connections (one entry each, removed when it closes).
pub(super) struct StatsRun {
    lines: super::stats::Stats,
    timer: tokio::time::Interval,
    started: Instant,
    udp: bool,
    open: std::collections::HashSet<(EndpointId, crate::engine::PeerId)>,
}

impl Run {
    pub fn new(quiet: bool, budget: LogBudget) -> Run {
        let (engine, events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
        Run {
            engine,
            events,
            session: Session {
                log: TrafficLog::with_budget(budget),
                ..Session::default()
            },
            recorder: crate::run::Recorder::new(),
            quiet,
            json: false,
            output_failure: None,
            announce_local: false,
            relay: false,
            relay_endpoints: Vec::new(),
            failure: None,
            stats: None,
        }
    }

    /// Turns `--stats` on: a line on stderr every second from now.
    pub(super) fn enable_stats(&mut self, udp: bool) {
        let started = Instant::now();
        let mut timer =
            tokio::time::interval_at(started + super::stats::EVERY, super::stats::EVERY);
        // A run that was busy past a tick says one line late, not a burst.
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.stats = Some(StatsRun {
            lines: super::stats::Stats::default(),
            timer,
            started,
            udp,
            open: std::collections::HashSet::new(),
        });
    }

    /// Prints the `--stats` line.
    pub(super) fn print_stats(&mut self) {
        let peers = self.session.log.peers().len();
        if let Some(s) = &mut self.stats {
            let peers = if s.udp {
                super::stats::Peers::Datagram(peers)
            } else {
                super::stats::Peers::Connections(s.open.len())
            };
            let line = s
                .lines
                .line(s.started.elapsed(), self.recorder.totals(), peers);
            note!("{line}");
        }
    }

    /// Names the endpoint the engine calls `id` in the log.
    pub fn name(&mut self, id: EndpointId, name: &str) {
        self.recorder.name(&mut self.session.log, id, name);
    }

    /// Names a relay among other endpoints: its payload lines name the direction.
    pub fn name_relay(&mut self, id: EndpointId, name: &str) {
        let index = self.recorder.name(&mut self.session.log, id, name);
        self.relay_endpoints.push(index);
    }

    /// Starts the one endpoint, with `then` (its first payloads) routed
    /// together with the Open, before the endpoint can connect.
    fn start(spec: EndpointSpec, quiet: bool, budget: LogBudget, then: Vec<Command>) -> Run {
        let mut run = Run::new(quiet, budget);
        run.name(ID, &spec.name);
        run.session.endpoints.push(spec.clone());
        let mut batch = vec![Command::Open {
            id: ID,
            spec: Box::new(spec),
        }];
        batch.extend(then);
        run.engine.send(Command::Batch(batch));
        run
    }

    /// Records and prints an event; returns its log row.
    pub fn record(&mut self, event: &Event) -> Option<usize> {
        let index = self.recorder.record(&mut self.session.log, event)?;
        if let Some(stats) = &mut self.stats {
            match &event.kind {
                EventKind::Connected { peer, .. }
                | EventKind::Accepted { peer, .. }
                | EventKind::UnixConnected { peer, .. }
                | EventKind::UnixAccepted { peer, .. } => {
                    stats.open.insert((event.id, *peer));
                }
                EventKind::Closed { peer, .. } => {
                    stats.open.remove(&(event.id, *peer));
                }
                _ => {}
            }
        }
        if !self.quiet {
            if self.json {
                say(super::json::entry(&self.session.log, index));
            } else if self.relay
                || self
                    .session
                    .log
                    .entry(index)
                    .is_some_and(|e| self.relay_endpoints.contains(&e.endpoint))
            {
                say(relay_line(&self.session.log, index));
            } else {
                say(entry_line(&self.session.log, index));
            }
        }
        if let EventKind::Listening { local } | EventKind::Bound { local } = &event.kind
            && self.announce_local
        {
            // Port 0 picks a port: stderr always says which, so a script that
            // sends stdout elsewhere (or runs --quiet) still learns it.
            note!("listening on {local}");
        }
        if let EventKind::UnixListening { local } | EventKind::UnixBound { local } = &event.kind
            && self.announce_local
        {
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
        if let Some(failure) = self.output_failure.take() {
            errors.add(EXIT_OUTPUT, failure);
        }
        if let Some(target) = save {
            let totals = self.recorder.totals();
            let traffic = totals.sent + totals.received;
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
        if let Some(why) = self.session.log.spill_error() {
            note!("note: payload bytes beyond the log budget were dropped: {why}");
        }
        let status = errors.finish();
        let log = &self.session.log;
        let totals = self.recorder.totals();
        let mut summary = summary_with_log(totals, &log.counters(), log.budget());
        if self.relay {
            summary = summary.replacen(
                &super::output::summary_line(totals),
                &super::output::relay_summary_line(totals),
                1,
            );
        }
        note!("{summary}");
        status
    }
}

/// Resolves when the person or the system asks the run to stop: Ctrl+C
/// (SIGINT) everywhere, and SIGTERM on Unix (`timeout`, `docker stop`,
/// systemd), so the `--save` file and the summary line are still written.
///
/// The handlers are in place when this returns, not when the future is
/// first polled: a run's loop may print "listening" before it polls this,
/// and a signal sent on that line must not meet the default action (the
/// process killed, nothing saved).
pub(super) fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            match (int, term) {
                (Some(mut int), Some(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (Some(mut int), None) => {
                    int.recv().await;
                }
                (None, Some(mut term)) => {
                    term.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints a line on stdout; a closed stdout (piped into `head` or `true`)
/// must not stop the run or lose its `--save` file.
pub(super) fn say(line: impl std::fmt::Display) {
    super::console::line(line);
}

/// The next `--stats` tick; never when `--stats` is off.
pub(super) async fn stats_tick(stats: &mut Option<StatsRun>) {
    match stats {
        Some(s) => {
            s.timer.tick().await;
        }
        None => std::future::pending().await,
    }
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

/// A moment `after` from now, or the far future when that does not fit the clock.
pub(super) fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// What became of the payloads a `connect` was asked to send.
#[derive(Default, Debug)]
struct Delivery {
    requested: usize,
    /// Writes reported (a `Traffic` sent event each).
    reported: usize,
    /// Of those, writes that failed or were cut short.
    failed_writes: usize,
    /// Payloads refused before any write.
    refused: usize,
}

impl Delivery {
    fn note(&mut self, kind: &EventKind) {
        match kind {
            EventKind::Traffic {
                dir: Direction::Sent,
                ..
            } => self.reported += 1,
            EventKind::Failed { error, .. } if error.failed_write => self.failed_writes += 1,
            EventKind::Failed { error, .. } if error.operation == Operation::Send => {
                self.refused += 1
            }
            _ => {}
        }
    }

    /// Payloads that went out whole.
    fn written(&self) -> usize {
        self.reported.saturating_sub(self.failed_writes)
    }

    /// Every payload has had its outcome.
    fn settled(&self) -> bool {
        self.reported + self.refused >= self.requested
    }

    /// The run's error line once the connection was up: how many of the
    /// payloads went out, then why the rest did not (or why the run failed).
    fn verdict(&self, failure: Option<String>, interrupted: bool) -> Option<String> {
        let written = self.written().min(self.requested);
        let cause = match failure {
            Some(f) => f,
            None if written == self.requested => return None,
            None if interrupted => "interrupted before the rest went out".to_owned(),
            None => "the connection ended before the rest went out".to_owned(),
        };
        if self.requested == 0 {
            return Some(cause);
        }
        Some(format!(
            "sent {written} of {} payload{}: {cause}",
            self.requested,
            if self.requested == 1 { "" } else { "s" }
        ))
    }
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
            bind: request.bind.clone(),
            remote: Some(request.remote.clone()),
        },
        Proto::Unix | Proto::UnixDgram => {
            let Some((path, bind)) = request.unix.clone().map(|b| *b) else {
                note!("error: a socket path is required");
                return super::EXIT_BAD_INPUT;
            };
            if request.proto == Proto::Unix {
                EndpointKind::UnixClient { path }
            } else {
                EndpointKind::UnixDatagram {
                    bind,
                    remote: Some(path),
                    unlink: false,
                }
            }
        }
    };
    let mut spec = EndpointSpec::new("client", kind);
    if request.proto != Proto::Udp {
        spec.options.bind = request.bind.clone();
    }
    request.udp.apply(&mut spec.options);
    if let Some(limit) = request.connect_timeout {
        spec.options.connect_timeout_secs = limit.as_secs_f64();
    }
    spec.options.connected = !request.unconnected;
    spec.proxy = request.proxy.clone();
    spec.reconnect = request.reconnect;
    // A client that reconnects lives on past the end or failure of one
    // connection: those are printed, and only giving up (or a payload not
    // sent) fails the run.
    let reconnects = request.reconnect.is_some();
    let mut delivery = Delivery {
        requested: request.payloads.len(),
        ..Delivery::default()
    };
    // Routed with the Open, before the endpoint can connect: the engine puts
    // them on the connection before it reads anything, so a peer that closes
    // at once cannot cut them off.
    // Round `n` (from 0): the payloads filled in for it; `${counter}` counts rounds.
    let round = |payloads: &[Template], n: u64| -> Result<Vec<Command>, String> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, template)| {
                let bytes = template
                    .expand(&Context::now(n))
                    .map_err(|e| format!("payload {} of round {} not sent: {e}", i + 1, n + 1))?;
                Ok(Command::Send {
                    id: ID,
                    to: Target::Default,
                    bytes,
                })
            })
            .collect()
    };
    let mut rounds_sent = 0u64;
    let sends = match round(&request.payloads, rounds_sent) {
        Ok(sends) => sends,
        Err(why) => {
            note!("error: {}", escape_controls(&why));
            return super::EXIT_BAD_INPUT;
        }
    };
    // --repeat: rounds still to send (None: until stopped); a round goes only
    // once the one before is written, so at most one round is ever queued.
    let mut rounds_left = request.repeat.map(|n| n.saturating_sub(1));
    let mut round_began = Instant::now();
    let mut next_round: Option<Instant> = None;
    let budget = request
        .log
        .budget(request.quiet, job.save.is_some(), false, None);
    let mut run = Run::start(spec, request.quiet, budget, sends);
    if request.stats {
        run.enable_stats(matches!(request.proto, Proto::Udp | Proto::UnixDgram));
    }
    run.json = request.json;
    let mut phase = if delivery.requested == 0 {
        Phase::Starting
    } else {
        Phase::Sending
    };
    let mut up = false;
    let mut stopped_by_person = false;
    let mut deadline: Option<Instant> = None;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);

    loop {
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                run.record(&event);
                delivery.note(&event.kind);
                match &event.kind {
                    EventKind::Connected { .. } | EventKind::Bound { .. }
                    | EventKind::UnixConnected { .. } | EventKind::UnixBound { .. } => {
                        up = true;
                        if phase == Phase::Starting {
                            phase = Phase::Waiting;
                            deadline = Some(later(request.wait));
                        }
                    }
                    EventKind::Traffic { dir: Direction::Received, .. } if phase == Phase::Waiting => {
                        deadline = Some(later(request.wait));
                    }
                    EventKind::Failed { peer: Some(_), error }
                        if reconnects && !error.failed_write && error.operation != Operation::Send => {}
                    EventKind::Failed { error, .. } => run.fail(error.to_string()),
                    EventKind::Reset { .. } if reconnects => {}
                    EventKind::Reset { .. } => run.fail("connection reset: the peer reset the connection".into()),
                    EventKind::PeerClosed { .. } if reconnects => {}
                    EventKind::PeerClosed { .. } => {
                        // The engine closes our side once the queued writes are out.
                        phase = Phase::Closing;
                        deadline = Some(later(STOP_GRACE));
                    }
                    EventKind::Stopped => break,
                    _ => {}
                }
                if phase == Phase::Sending && up && delivery.settled() && next_round.is_none() {
                    if rounds_left != Some(0) && run.failure.is_none() {
                        next_round = Some(round_began + request.interval);
                    } else {
                        phase = Phase::Waiting;
                        deadline = Some(later(request.wait));
                    }
                }
            }
            _ = until(next_round), if phase == Phase::Sending && next_round.is_some() => {
                next_round = None;
                round_began = Instant::now();
                if let Some(left) = rounds_left.as_mut() {
                    *left -= 1;
                }
                rounds_sent += 1;
                match round(&request.payloads, rounds_sent) {
                    Ok(commands) => {
                        delivery.requested += request.payloads.len();
                        for command in commands {
                            run.send(command);
                        }
                    }
                    Err(why) => {
                        // A range the round's counter or time pushed past the end.
                        run.fail(why);
                        rounds_left = Some(0);
                        phase = Phase::Waiting;
                        deadline = Some(later(request.wait));
                    }
                }
            }
            _ = until(deadline) => match phase {
                Phase::Waiting => {
                    run.send(Command::Close { id: ID, abort: false });
                    phase = Phase::Closing;
                    deadline = Some(later(STOP_GRACE));
                }
                _ => break,
            },
            _ = stats_tick(&mut run.stats) => run.print_stats(),
            _ = &mut ctrl_c, if phase != Phase::Closing => {
                stopped_by_person = true;
                next_round = None;
                run.send(Command::Close { id: ID, abort: false });
                phase = Phase::Closing;
                deadline = Some(later(STOP_GRACE));
            }
        }
    }
    // Events that came with the last ones still count.
    while let Some(event) = run.events.try_recv() {
        run.record(&event);
        delivery.note(&event.kind);
        if let EventKind::Failed { peer, error } = &event.kind
            && !(reconnects
                && peer.is_some()
                && !error.failed_write
                && error.operation != Operation::Send)
        {
            run.fail(error.to_string());
        }
    }
    if up {
        run.failure = delivery.verdict(run.failure.take(), stopped_by_person);
    }
    run.finish(job.save).await
}

/// The warning a listener bound to every interface prints: others on the
/// network can reach it (and a generated TLS certificate does not name this
/// machine for them). `None` for an address of this machine alone.
pub fn wildcard_warning(local: SocketAddr, generated_certificate: bool) -> Option<String> {
    if !HostPort::from(local).is_wildcard() {
        return None;
    }
    let loopback = if local.is_ipv4() {
        "127.0.0.1"
    } else {
        "[::1]"
    };
    let mut line = format!(
        "warning: listening on every interface ({local}): other machines on the network can connect; \
         listen on {loopback}:{} to keep it to this machine",
        local.port()
    );
    if generated_certificate {
        line.push_str(
            "; the generated certificate names only localhost, 127.0.0.1 and ::1, so clients \
             on other machines will not verify it",
        );
    }
    Some(line)
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
        Proto::Unix | Proto::UnixDgram => {
            let Some(path) = request.unix.clone() else {
                note!("error: a socket path is required");
                return super::EXIT_BAD_INPUT;
            };
            if request.proto == Proto::Unix {
                EndpointKind::UnixServer {
                    path,
                    unlink: request.unlink,
                }
            } else {
                EndpointKind::UnixDatagram {
                    bind: Some(path),
                    remote: None,
                    unlink: request.unlink,
                }
            }
        }
    };
    let reply = match &request.answer {
        Answer::None => AutoReply::Off,
        Answer::Echo => AutoReply::Echo,
        Answer::Reply(p) => AutoReply::always(p.clone()),
        Answer::Rules { rules, .. } => AutoReply::Rules(rules.clone()),
    };
    let answers = reply != AutoReply::Off;
    let budget = request
        .log
        .budget(request.quiet, job.save.is_some(), false, None);
    let mut spec = EndpointSpec::new("server", kind).with_reply(reply);
    if let Answer::Rules {
        framing,
        max_message,
        ..
    } = &request.answer
    {
        spec.framing = framing.clone();
        spec.max_message = *max_message;
    }
    spec.options.max_peers = request.max_peers;
    request.udp.apply(&mut spec.options);
    let mut run = Run::start(spec, request.quiet, budget, Vec::new());
    run.announce_local = true;
    if request.stats {
        run.enable_stats(matches!(request.proto, Proto::Udp | Proto::UnixDgram));
    }
    run.json = request.json;
    let mut deadline = request.run_for.map(later);
    let mut closing = false;
    // --once over TLS: only a peer that finished its handshake is a served
    // client (a port probe that connects and leaves does not end the run).
    let mut handshaken = std::collections::HashSet::new();
    let mut refused = std::collections::HashSet::new();
    let generated_certificate = request.proto == Proto::Tls && request.tls.cert.is_none();
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
                    EventKind::Listening { local } | EventKind::Bound { local } => {
                        // Said even with --quiet: it is about who else can connect.
                        if let Some(warning) = wildcard_warning(*local, generated_certificate) {
                            note!("{warning}");
                        }
                    }
                    EventKind::TlsHandshake { peer, .. } => {
                        handshaken.insert(*peer);
                    }
                    // A peer over --max-peers is accepted and closed at once,
                    // unserved: its end does not end a --once run.
                    EventKind::Note { peer: Some(peer), text } if text.starts_with(crate::engine::REFUSED_PEER) => {
                        refused.insert(*peer);
                    }
                    EventKind::Closed { peer, .. }
                        if request.once
                            && !refused.contains(peer)
                            && (matches!(request.proto, Proto::Tcp | Proto::Unix)
                                || handshaken.contains(peer)) =>
                    {
                        close = true
                    }
                    EventKind::Traffic { dir: Direction::Received, .. }
                        if request.once
                            && matches!(request.proto, Proto::Udp | Proto::UnixDgram)
                            && !awaiting_answer =>
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
            _ = stats_tick(&mut run.stats) => run.print_stats(),
            _ = &mut ctrl_c, if !closing => close = true,
        }
        if close && !closing {
            closing = true;
            run.send(Command::Close {
                id: ID,
                abort: false,
            });
            deadline = Some(later(STOP_GRACE + CLOSE_GRACE));
        }
    }
    run.finish(job.save).await
}

/// `relay`: a relay endpoint until `--for` passes or Ctrl-C; every event of
/// both legs printed, the recording saved with `--save`.
pub async fn relay(job: RelayJob) -> i32 {
    let r = job.request;
    let transport = match r.proto {
        Proto::Tcp => crate::model::RelayTransport::Tcp,
        Proto::Tls => crate::model::RelayTransport::Tls,
        Proto::Udp => crate::model::RelayTransport::Udp,
        // Refused when the command line is read.
        Proto::Unix | Proto::UnixDgram => {
            note!("error: unix and unix-dgram are not relayed yet");
            return super::EXIT_BAD_INPUT;
        }
    };
    let kind = EndpointKind::Relay {
        transport,
        listen: r.listen.clone(),
        upstream: r.upstream.clone(),
        tls_server: Box::new(r.tls_server.clone()),
        tls_client: Box::new(r.tls_client.clone()),
        impair: Box::new(r.impair.clone()),
    };
    let mut spec = EndpointSpec::new("relay", kind);
    spec.options.max_peers = r.max_peers;
    if let Some(limit) = r.connect_timeout {
        spec.options.connect_timeout_secs = limit.as_secs_f64();
    }
    let budget = r.log.budget(r.quiet, job.save.is_some(), false, None);
    let mut run = Run::start(spec, r.quiet, budget, Vec::new());
    run.announce_local = true;
    run.relay = true;
    run.json = r.json;
    let generated_certificate = r.proto == Proto::Tls && r.tls_server.cert.is_none();
    let mut deadline = r.run_for.map(later);
    let mut closing = false;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    loop {
        let mut close = false;
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                run.record(&event);
                match &event.kind {
                    // The relay's own failure fails the run; a client or an
                    // upstream that misbehaves is logged and the relay goes on.
                    EventKind::Failed { peer: None, error } => run.fail(error.to_string()),
                    EventKind::Listening { local } | EventKind::Bound { local } => {
                        if let Some(warning) = wildcard_warning(*local, generated_certificate) {
                            note!("{warning}");
                        }
                    }
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
            deadline = Some(later(STOP_GRACE + CLOSE_GRACE));
        }
    }
    run.finish(job.save).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop signal that comes after `interrupted()` is called but before
    /// its future is first polled (the run printed "listening" first) is
    /// caught, not met by the default action that kills the process. Before,
    /// the handlers were installed on the first poll: this test process died
    /// of the SIGINT, or (another handler already there) never saw it.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_stop_signal_before_the_first_poll_is_caught() {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let stop = interrupted();
            // SAFETY: raise sends a signal to this thread; nothing is shared.
            assert_eq!(unsafe { libc::raise(sig) }, 0);
            tokio::time::timeout(Duration::from_secs(10), stop)
                .await
                .unwrap_or_else(|_| panic!("signal {sig} sent before the first poll was missed"));
        }
    }

    #[test]
    fn every_interface_is_warned_about_and_loopback_is_not() {
        let any4: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let line = wildcard_warning(any4, false).unwrap();
        assert_eq!(
            line,
            "warning: listening on every interface (0.0.0.0:7000): other machines on the network \
             can connect; listen on 127.0.0.1:7000 to keep it to this machine"
        );
        let any6: SocketAddr = "[::]:443".parse().unwrap();
        let line = wildcard_warning(any6, true).unwrap();
        assert!(line.contains("listen on [::1]:443"), "{line}");
        assert!(
            line.ends_with(
                "the generated certificate names only localhost, 127.0.0.1 and ::1, so clients \
                 on other machines will not verify it"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        for local in ["127.0.0.1:7000", "[::1]:7000", "192.0.2.1:80"] {
            assert_eq!(
                wildcard_warning(local.parse().unwrap(), true),
                None,
                "{local}"
            );
        }
    }

    #[test]
    fn the_verdict_counts_what_went_out() {
        let sent = EventKind::Traffic {
            peer: 0,
            remote: "127.0.0.1:1".parse().unwrap(),
            dir: Direction::Sent,
            bytes: bytes::Bytes::from_static(b"x"),
        };
        let failed_write = EventKind::Failed {
            peer: Some(0),
            error: crate::engine::NetError::new(
                crate::model::ErrorKind::BrokenPipe,
                Operation::Send,
                "send 1 bytes to 127.0.0.1:1: Broken pipe (os error 32)",
            )
            .of_reported_write(),
        };
        let mut d = Delivery {
            requested: 3,
            ..Delivery::default()
        };
        d.note(&sent);
        d.note(&sent);
        d.note(&failed_write);
        assert_eq!(d.written(), 1);
        assert_eq!(
            d.verdict(Some("broken pipe: …".into()), false).as_deref(),
            Some("sent 1 of 3 payloads: broken pipe: …")
        );
        // Nothing failed, yet payloads are missing: still an error.
        assert_eq!(
            d.verdict(None, false).as_deref(),
            Some("sent 1 of 3 payloads: the connection ended before the rest went out")
        );
        let mut whole = Delivery {
            requested: 1,
            ..Delivery::default()
        };
        whole.note(&sent);
        assert_eq!(whole.verdict(None, false), None);
        assert_eq!(
            whole
                .verdict(Some("connection reset".into()), false)
                .as_deref(),
            Some("sent 1 of 1 payload: connection reset")
        );
        let none = Delivery::default();
        assert_eq!(none.verdict(Some("x".into()), false).as_deref(), Some("x"));
    }

    #[test]
    fn far_deadlines_do_not_overflow() {
        let _ = later(Duration::MAX);
        let _ = later(Duration::from_secs(u64::MAX / 2));
    }
}
