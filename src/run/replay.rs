//! A replay run without I/O: what the window's replay bar and `sockbench
//! replay` both drive. It keeps the plans and their engine ids, starts mock
//! servers before clients ([`Launch`]), tallies what came back, knows which
//! endpoints still run and which failures count, stops by hand, and at the
//! end says how the check came out. It never touches the engine: its methods
//! take events and the time and return the [`Command`]s to send.
//!
//! The rules, one for both front ends:
//! - An endpoint that cannot resolve, bind, listen, connect or be configured
//!   fails the run; so does a connection reset seen by a replayed client (a
//!   mock server's peer that resets is the peer's business, as in `run`).
//! - A failure does not hide the check: the conversations it cut short are
//!   differences too.
//! - A check of a run that did not end on its own (stopped by hand, or cut
//!   off) or whose log lost payloads is "not checked", never "matched".

use std::collections::HashSet;
use std::time::Instant;

use super::Launch;
use crate::engine::replay::Tally;
use crate::engine::{Command, EndpointId, Event, EventKind, Operation, ReplayOptions};
use crate::model::TrafficLog;
use crate::model::replay::{ConversationCheck, EndpointPlan, Mismatch, Role};

/// A failure of one endpoint of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The endpoint's name.
    pub endpoint: String,
    /// What went wrong ("connection refused: …").
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\": {}", self.endpoint, self.what)
    }
}

/// How the check of a finished run came out.
#[derive(Clone, Debug)]
pub enum Check {
    /// The run was not asked to check.
    Off,
    /// Asked, but the run proves nothing: why ("not checked: …").
    NotChecked(String),
    /// Every recorded conversation compared.
    Done {
        /// One a conversation, matched or not.
        checks: Vec<ConversationCheck>,
        /// The differences (empty when everything matched).
        mismatches: Vec<Mismatch>,
        /// The ignore rules that applied, with their spans summed over the run.
        ignored: Vec<(String, usize)>,
    },
}

/// One replay run of `plans`.
pub struct Replay {
    plans: Vec<EndpointPlan>,
    ids: Vec<EndpointId>,
    options: ReplayOptions,
    check: bool,
    /// Mock servers first; clients once they listen.
    launch: Launch,
    tally: Tally,
    /// Endpoints started (or still to start) that have not stopped.
    running: HashSet<EndpointId>,
    /// Payloads sent so far, per plan.
    sent: Vec<usize>,
    failures: Vec<Failure>,
    stopped_by_hand: bool,
    /// Set by [`Replay::finish`].
    outcome: Option<Check>,
}

impl Replay {
    /// Plans a run of `plans` as engine endpoints `ids` (one each) at `now`;
    /// returns it and the commands to send at once (the mock servers, and the
    /// clients too when there is no server).
    pub fn new(
        plans: Vec<EndpointPlan>,
        ids: Vec<EndpointId>,
        options: ReplayOptions,
        check: bool,
        now: Instant,
    ) -> (Replay, Vec<Command>) {
        let (launch, first) = Launch::new(
            ids.iter()
                .zip(&plans)
                .map(|(id, plan)| (*id, plan.role != Role::Server)),
            now,
        );
        // A plan without an id never runs.
        let ids: Vec<EndpointId> = ids.into_iter().take(plans.len()).collect();
        let replay = Replay {
            running: ids.iter().copied().collect(),
            sent: vec![0; plans.len()],
            plans,
            ids,
            options,
            check,
            launch,
            tally: Tally::new(),
            failures: Vec::new(),
            stopped_by_hand: false,
            outcome: None,
        };
        let commands = replay.open(first);
        (replay, commands)
    }

    fn open(&self, ids: Vec<EndpointId>) -> Vec<Command> {
        ids.into_iter()
            .filter_map(|id| {
                let i = self.index(id)?;
                Some(Command::Replay {
                    id,
                    plan: Box::new(self.plans[i].clone()),
                    options: self.options.clone(),
                })
            })
            .collect()
    }

    fn index(&self, id: EndpointId) -> Option<usize> {
        self.ids.iter().position(|x| *x == id)
    }

    pub fn plans(&self) -> &[EndpointPlan] {
        &self.plans
    }

    pub fn ids(&self) -> &[EndpointId] {
        &self.ids
    }

    /// Whether `id` is one of the run's endpoints.
    pub fn owns(&self, id: EndpointId) -> bool {
        self.index(id).is_some()
    }

    /// Takes an event of the run and the log row it became; returns the
    /// commands to send (clients whose servers now listen).
    pub fn on_event(&mut self, event: &Event, row: Option<usize>) -> Vec<Command> {
        let Some(plan) = self.index(event.id) else {
            return Vec::new();
        };
        self.tally.note(event.id, &event.kind, row);
        let due = if self.stopped_by_hand {
            Vec::new()
        } else {
            self.launch.on_event(event.id, &event.kind)
        };
        let name = || self.plans[plan].name().to_owned();
        match &event.kind {
            EventKind::ReplayProgress { sent } => self.sent[plan] = *sent,
            EventKind::Failed { peer: None, error }
                if matches!(
                    error.operation,
                    Operation::Resolve
                        | Operation::Bind
                        | Operation::Listen
                        | Operation::Connect
                        | Operation::Configure
                ) =>
            {
                let failure = Failure {
                    endpoint: name(),
                    what: error.to_string(),
                };
                self.failures.push(failure);
            }
            // A replayed client's payload that did not go out (the peer
            // stopped reading, the write failed): a payload not sent is an error.
            EventKind::Failed { error, .. }
                if self.plans[plan].role == Role::Client && error.operation == Operation::Send =>
            {
                let failure = Failure {
                    endpoint: name(),
                    what: error.to_string(),
                };
                self.failures.push(failure);
            }
            EventKind::Reset { .. } if self.plans[plan].role == Role::Client => {
                let failure = Failure {
                    endpoint: name(),
                    what: "connection reset: the peer reset the connection".into(),
                };
                self.failures.push(failure);
            }
            EventKind::Stopped => {
                self.running.remove(&event.id);
            }
            _ => {}
        }
        self.open(due)
    }

    /// When [`Replay::on_time`] next has something to do: the clients go
    /// then even though a mock server has not said it listens.
    pub fn deadline(&self) -> Option<Instant> {
        if self.stopped_by_hand {
            None
        } else {
            self.launch.deadline()
        }
    }

    /// The commands due at `now` (clients whose servers' grace time is over).
    pub fn on_time(&mut self, now: Instant) -> Vec<Command> {
        if self.stopped_by_hand {
            return Vec::new();
        }
        let due = self.launch.on_time(now);
        self.open(due)
    }

    /// Stops the run by hand: clients not started yet never will be, and
    /// neither will those of `unsent` (commands this run returned that the
    /// front end has not sent). Returns the commands that close the rest.
    pub fn stop(&mut self, unsent: &[Command]) -> Vec<Command> {
        self.stopped_by_hand = true;
        let never = unsent.iter().filter_map(|c| match c {
            Command::Replay { id, .. } => Some(*id),
            _ => None,
        });
        for id in self.launch.cancel().into_iter().chain(never) {
            self.running.remove(&id);
        }
        self.ids
            .iter()
            .filter(|id| self.running.contains(id))
            .map(|id| Command::Close {
                id: *id,
                abort: false,
            })
            .collect()
    }

    /// Every endpoint of the run has stopped (or will never start).
    pub fn is_done(&self) -> bool {
        self.running.is_empty()
    }

    pub fn stopped_by_hand(&self) -> bool {
        self.stopped_by_hand
    }

    /// The failures so far, in the order they came.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Payloads sent so far.
    pub fn sent(&self) -> usize {
        self.sent.iter().sum()
    }

    /// Payloads the run sends in all.
    pub fn total_sends(&self) -> usize {
        self.plans.iter().map(EndpointPlan::sends).sum()
    }

    /// Ends the run (a second call changes nothing) and checks what came
    /// back, if asked to, against `log`: the log the run's events were
    /// recorded in (their rows given to [`Replay::on_event`]).
    pub fn finish(&mut self, log: &TrafficLog) -> &Check {
        let check = self.outcome.take().unwrap_or_else(|| self.check(log));
        self.outcome.insert(check)
    }

    /// How the check came out, once finished.
    pub fn outcome(&self) -> Option<&Check> {
        self.outcome.as_ref()
    }

    fn check(&self, log: &TrafficLog) -> Check {
        if !self.check {
            return Check::Off;
        }
        if self.stopped_by_hand || !self.is_done() {
            // A run cut short proves nothing: "matched" would promise too much.
            return Check::NotChecked(
                "not checked: the replay was interrupted before it ended".into(),
            );
        }
        let lost = log.counters().dropped_entries;
        if lost > 0 {
            // The check compares every byte; some were not kept.
            return Check::NotChecked(format!(
                "not checked: {lost} payload{} of the replay could not be kept ({})",
                if lost == 1 { "" } else { "s" },
                log.spill_error().unwrap_or("dropped beyond the log budget")
            ));
        }
        let checks = self.tally.check_all(&self.plans, &self.ids, log);
        let mut ignored: Vec<(String, usize)> = Vec::new();
        for (label, n) in checks.iter().flat_map(|c| &c.ignored) {
            match ignored.iter_mut().find(|(l, _)| l == label) {
                Some((_, total)) => *total += n,
                None => ignored.push((label.clone(), *n)),
            }
        }
        let mismatches = checks.iter().filter_map(|c| c.mismatch.clone()).collect();
        Check::Done {
            checks,
            mismatches,
            ignored,
        }
    }

    pub fn speed(&self) -> f64 {
        self.options.pace.speed()
    }

    pub fn is_paused(&self) -> bool {
        self.options.pace.is_paused()
    }

    pub fn pause(&self) {
        self.options.pace.pause();
    }

    pub fn resume(&self) {
        self.options.pace.resume();
    }

    /// Pauses, and lets the next payload of the run go.
    pub fn step(&self) {
        self.options.pace.step();
    }

    pub fn set_speed(&self, speed: f64) {
        self.options.pace.set_speed(speed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NetError, SERVERS_GRACE};
    use crate::model::ignore::IgnoreRule;
    use crate::model::replay::{Conversation, Step};
    use crate::model::{Direction, EndpointKind, EndpointSpec, ErrorKind, LogBudget, Overflow};
    use crate::run::Recorder;
    use std::time::Duration;

    const SERVER: EndpointId = EndpointId(11);
    const CLIENT: EndpointId = EndpointId(12);

    fn conversation(steps: &[(Direction, &[u8])]) -> Conversation {
        Conversation {
            steps: steps
                .iter()
                .map(|(dir, bytes)| Step {
                    dir: *dir,
                    bytes: bytes.to_vec(),
                    gap: Duration::from_millis(10),
                })
                .collect(),
            peer_closed: false,
            remote: "127.0.0.1:1".into(),
            dropped: 0,
        }
    }

    fn client_plan(answer: &[u8]) -> EndpointPlan {
        EndpointPlan {
            spec: EndpointSpec::new(
                "client",
                EndpointKind::TcpClient {
                    remote: "127.0.0.1:1".parse().unwrap(),
                },
            ),
            role: Role::Client,
            conversations: vec![conversation(&[
                (Direction::Sent, b"hello\n"),
                (Direction::Received, answer),
            ])],
            ignore: Vec::new(),
        }
    }

    fn server_plan() -> EndpointPlan {
        EndpointPlan {
            spec: EndpointSpec::new(
                "mock",
                EndpointKind::TcpServer {
                    listen: "127.0.0.1:1".parse().unwrap(),
                },
            ),
            role: Role::Server,
            conversations: vec![conversation(&[
                (Direction::Received, b"hello\n"),
                (Direction::Sent, b"hello\n"),
            ])],
            ignore: Vec::new(),
        }
    }

    /// A run fed synthetic events, recorded as a front end records them.
    struct Sim {
        replay: Replay,
        log: TrafficLog,
        recorder: Recorder,
        sent: Vec<Command>,
    }

    impl Sim {
        fn new(plans: Vec<EndpointPlan>, ids: Vec<EndpointId>, check: bool, now: Instant) -> Sim {
            Sim::with_log(plans, ids, check, now, TrafficLog::new())
        }

        fn with_log(
            plans: Vec<EndpointPlan>,
            ids: Vec<EndpointId>,
            check: bool,
            now: Instant,
            mut log: TrafficLog,
        ) -> Sim {
            let mut recorder = Recorder::new();
            for (plan, id) in plans.iter().zip(&ids) {
                recorder.name(&mut log, *id, plan.name());
            }
            let options = ReplayOptions::new(0.0, Duration::from_secs(1), false);
            let (replay, sent) = Replay::new(plans, ids, options, check, now);
            Sim {
                replay,
                log,
                recorder,
                sent,
            }
        }

        fn event(&mut self, id: EndpointId, kind: EventKind) -> Vec<Command> {
            let event = Event {
                id,
                at: crate::engine::now(),
                kind,
            };
            let row = self.recorder.record(&mut self.log, &event);
            self.replay.on_event(&event, row)
        }

        /// The client's conversation as an engine would play it, answered with `answer`.
        fn converse(&mut self, answer: &[u8]) {
            let remote = "127.0.0.1:1".parse().unwrap();
            self.event(
                CLIENT,
                EventKind::Connected {
                    peer: 0,
                    local: "127.0.0.1:2".parse().unwrap(),
                    remote,
                },
            );
            self.event(
                CLIENT,
                EventKind::ReplayAssigned {
                    peer: 0,
                    conversation: 0,
                },
            );
            for (dir, bytes) in [
                (Direction::Sent, &b"hello\n"[..]),
                (Direction::Received, answer),
            ] {
                self.event(
                    CLIENT,
                    EventKind::Traffic {
                        peer: 0,
                        remote,
                        dir,
                        bytes: bytes::Bytes::copy_from_slice(bytes),
                    },
                );
            }
            self.event(CLIENT, EventKind::ReplayProgress { sent: 1 });
        }

        fn finish(&mut self) -> &Check {
            self.replay.finish(&self.log)
        }
    }

    fn replayed(commands: &[Command]) -> Vec<EndpointId> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Replay { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn closed(commands: &[Command]) -> Vec<EndpointId> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Close { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn listening() -> EventKind {
        EventKind::Listening {
            local: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn clients_start_once_every_mock_server_listens_or_the_grace_time_passed() {
        let now = Instant::now();
        let mut sim = Sim::new(
            vec![client_plan(b"hello\n"), server_plan()],
            vec![CLIENT, SERVER],
            false,
            now,
        );
        assert_eq!(replayed(&sim.sent), [SERVER], "the mock server alone first");
        assert_eq!(sim.replay.deadline(), Some(now + SERVERS_GRACE));
        assert!(
            sim.replay
                .on_time(now + Duration::from_millis(1))
                .is_empty()
        );
        let due = sim.event(SERVER, listening());
        assert_eq!(replayed(&due), [CLIENT]);
        // Each client once: neither a later event nor the time starts it again.
        assert!(sim.event(SERVER, listening()).is_empty());
        assert!(sim.replay.on_time(now + SERVERS_GRACE).is_empty());
        assert_eq!(sim.replay.deadline(), None);

        // A server that never says it listens: the clients go at the grace time.
        let mut sim = Sim::new(
            vec![server_plan(), client_plan(b"hello\n")],
            vec![SERVER, CLIENT],
            false,
            now,
        );
        assert_eq!(replayed(&sim.sent), [SERVER]);
        assert!(
            sim.event(
                SERVER,
                EventKind::Note {
                    peer: None,
                    text: "x".into()
                }
            )
            .is_empty()
        );
        assert_eq!(replayed(&sim.replay.on_time(now + SERVERS_GRACE)), [CLIENT]);

        // Without a mock server the clients start at once.
        let sim = Sim::new(vec![client_plan(b"x")], vec![CLIENT], false, now);
        assert_eq!(replayed(&sim.sent), [CLIENT]);
    }

    #[test]
    fn a_stop_by_hand_cancels_the_clients_not_started() {
        let now = Instant::now();
        let mut sim = Sim::new(
            vec![server_plan(), client_plan(b"hello\n")],
            vec![SERVER, CLIENT],
            true,
            now,
        );
        let close = sim.replay.stop(&[]);
        assert_eq!(closed(&close), [SERVER], "only what runs is closed");
        assert_eq!(sim.replay.deadline(), None);
        assert!(sim.replay.on_time(now + SERVERS_GRACE).is_empty());
        assert!(
            sim.event(SERVER, listening()).is_empty(),
            "the client never starts"
        );
        assert!(!sim.replay.is_done());
        sim.event(SERVER, EventKind::Stopped);
        assert!(sim.replay.is_done());

        // Clients the run gave out but the front end had not sent yet.
        let mut sim = Sim::new(
            vec![server_plan(), client_plan(b"hello\n")],
            vec![SERVER, CLIENT],
            true,
            now,
        );
        let due = sim.event(SERVER, listening());
        assert_eq!(replayed(&due), [CLIENT]);
        assert_eq!(closed(&sim.replay.stop(&due)), [SERVER]);
        sim.event(SERVER, EventKind::Stopped);
        assert!(sim.replay.is_done());
    }

    #[test]
    fn an_interrupted_run_is_not_checked() {
        let mut sim = Sim::new(
            vec![client_plan(b"hello\n")],
            vec![CLIENT],
            true,
            Instant::now(),
        );
        // Everything came back as recorded, but the run was stopped by hand.
        sim.converse(b"hello\n");
        assert_eq!(closed(&sim.replay.stop(&[])), [CLIENT]);
        sim.event(CLIENT, EventKind::Stopped);
        assert!(sim.replay.is_done());
        assert!(
            matches!(sim.finish(), Check::NotChecked(why) if why.contains("interrupted")),
            "{:?}",
            sim.replay.outcome()
        );

        // A front end that gives up waiting (its endpoints never stopped).
        let mut sim = Sim::new(
            vec![client_plan(b"hello\n")],
            vec![CLIENT],
            true,
            Instant::now(),
        );
        sim.converse(b"hello\n");
        assert!(matches!(sim.finish(), Check::NotChecked(why) if why.contains("interrupted")));

        // Not asked to check: nothing to say.
        let mut sim = Sim::new(
            vec![client_plan(b"hello\n")],
            vec![CLIENT],
            false,
            Instant::now(),
        );
        sim.replay.stop(&[]);
        assert!(matches!(sim.finish(), Check::Off));
    }

    #[test]
    fn a_run_that_lost_payloads_is_not_checked() {
        let log = TrafficLog::with_budget(LogBudget::new(4, Overflow::Drop));
        let answer = [b'a'; 200];
        let mut sim = Sim::with_log(
            vec![client_plan(&answer)],
            vec![CLIENT],
            true,
            Instant::now(),
            log,
        );
        sim.converse(&answer);
        sim.event(CLIENT, EventKind::Stopped);
        assert!(
            matches!(sim.finish(), Check::NotChecked(why) if why.contains("could not be kept")),
            "{:?}",
            sim.replay.outcome()
        );
    }

    #[test]
    fn a_reset_of_a_replayed_client_fails_the_run_and_its_failures_are_named() {
        let mut sim = Sim::new(
            vec![server_plan(), client_plan(b"hello\n")],
            vec![SERVER, CLIENT],
            true,
            Instant::now(),
        );
        sim.event(SERVER, listening());
        sim.converse(b"hello\n");
        // A mock server's peer that resets is the peer's business.
        sim.event(SERVER, EventKind::Reset { peer: 3 });
        assert!(sim.replay.failures().is_empty());
        sim.event(CLIENT, EventKind::Reset { peer: 0 });
        assert_eq!(
            sim.replay.failures(),
            [Failure {
                endpoint: "client".into(),
                what: "connection reset: the peer reset the connection".into()
            }]
        );
        assert_eq!(
            sim.replay.failures()[0].to_string(),
            "\"client\": connection reset: the peer reset the connection"
        );
        // An endpoint's own failure counts; a peer's failure does not.
        sim.event(
            SERVER,
            EventKind::Failed {
                peer: Some(3),
                error: NetError::new(ErrorKind::Reset, Operation::Receive, "reset"),
            },
        );
        assert_eq!(sim.replay.failures().len(), 1);
        sim.event(
            SERVER,
            EventKind::Failed {
                peer: None,
                error: NetError::new(ErrorKind::AddressInUse, Operation::Bind, "in use"),
            },
        );
        assert_eq!(sim.replay.failures().len(), 2);
        assert_eq!(sim.replay.failures()[1].endpoint, "mock");
        sim.event(CLIENT, EventKind::Stopped);
        sim.event(SERVER, EventKind::Stopped);
        // The failures do not hide the check: the client matched, the mock
        // (which never had a peer) differs.
        assert!(
            matches!(sim.finish(), Check::Done { checks, mismatches, .. }
                if checks.len() == 2 && mismatches.len() == 1 && mismatches[0].endpoint == "mock"),
            "{:?}",
            sim.replay.outcome()
        );
    }

    #[test]
    fn a_run_that_matched_gives_the_ignored_totals_and_a_changed_answer_a_difference() {
        let mut plan = client_plan(b"at 0001, at 0002\n");
        plan.ignore = vec![IgnoreRule::regex("[0-9]{4}").unwrap()];
        let mut sim = Sim::new(vec![plan.clone()], vec![CLIENT], true, Instant::now());
        sim.converse(b"at 7342, at 7343\n");
        assert_eq!(sim.replay.sent(), 1);
        assert_eq!(sim.replay.total_sends(), 1);
        sim.event(CLIENT, EventKind::Stopped);
        assert!(sim.replay.is_done());
        let Check::Done {
            checks,
            mismatches,
            ignored,
        } = sim.finish().clone()
        else {
            panic!("{:?}", sim.replay.outcome())
        };
        assert_eq!(checks.len(), 1);
        assert!(mismatches.is_empty(), "{mismatches:?}");
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!(ignored[0].1, 2, "{ignored:?}");
        // A second finish changes nothing.
        assert!(matches!(sim.finish(), Check::Done { .. }));

        let mut sim = Sim::new(vec![plan], vec![CLIENT], true, Instant::now());
        sim.converse(b"no stamp\n");
        sim.event(CLIENT, EventKind::Stopped);
        assert!(matches!(sim.finish(), Check::Done { mismatches, .. } if mismatches.len() == 1));
    }
}
