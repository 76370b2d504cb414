//! Replay in the window: a run of the open session's recording, with its own
//! log, progress, pause, step and speed, and after a check the differences.

use std::collections::{HashMap, HashSet};

use crate::run::{Launch, Recorder};
use std::time::{Duration, Instant};

use crate::engine::replay::Tally;
use crate::engine::{Command, EndpointId, Engine, Event, EventKind, Operation, ReplayOptions};
use crate::model::TrafficLog;
use crate::model::ignore::IgnoreRule;
use crate::model::replay::{EndpointPlan, Mismatch, Role};

/// Speeds offered in the window.
pub const SPEEDS: [f64; 7] = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0];

pub fn speed_label(speed: f64) -> String {
    if speed == 0.0 {
        "no waits".to_owned()
    } else {
        format!("{speed}×")
    }
}

/// The "ignore this in future checks" editor of one difference: the
/// differing line as a regular expression, or the differing bytes as a
/// range, both prefilled from the check's suggestion and editable.
#[derive(Clone, Debug, PartialEq)]
pub struct IgnoreDraft {
    /// The difference it came from (an index into the run's result).
    pub mismatch: usize,
    pub endpoint: String,
    /// A regular expression (true) or a byte range (false).
    pub by_line: bool,
    pub regex: String,
    pub range: String,
    /// An optional field name for the report.
    pub name: String,
    /// For this endpoint only (else for every endpoint of the session).
    pub only_endpoint: bool,
}

impl IgnoreDraft {
    pub fn new(mismatch: usize, m: &Mismatch) -> IgnoreDraft {
        let suggestion = m.suggestion.as_ref();
        let line = suggestion.and_then(|s| s.line.clone());
        IgnoreDraft {
            mismatch,
            endpoint: m.endpoint.clone(),
            by_line: line.is_some(),
            regex: line.unwrap_or_default(),
            range: suggestion.map(|s| s.bytes.to_string()).unwrap_or_default(),
            name: String::new(),
            only_endpoint: true,
        }
    }

    /// The rule, or why the typed text is not one.
    pub fn rule(&self) -> Result<IgnoreRule, String> {
        let mut rule = if self.by_line {
            IgnoreRule::regex(&self.regex)?
        } else {
            IgnoreRule::bytes(&self.range)?
        };
        let name = self.name.trim();
        if !name.is_empty() {
            rule.name = Some(name.to_owned());
        }
        if self.only_endpoint {
            rule.endpoint = Some(self.endpoint.clone());
        }
        Ok(rule)
    }
}

/// One replay of the open session.
pub struct ReplayRun {
    pub plans: Vec<EndpointPlan>,
    pub ids: Vec<EndpointId>,
    /// What this run did: a log of its own, the recording stays as it was.
    pub log: TrafficLog,
    /// The run's events to its log's rows.
    recorder: Recorder,
    tally: Tally,
    /// Payloads sent so far, per plan.
    sent: Vec<usize>,
    pub total_sends: usize,
    running: HashSet<EndpointId>,
    /// Mock servers first; clients once they listen.
    launch: Launch,
    /// Clients whose servers listen, to open on the next frame.
    due_clients: Vec<EndpointId>,
    options: ReplayOptions,
    pub paused: bool,
    pub check: bool,
    /// Time spent running (not paused), and since when it runs.
    elapsed: Duration,
    resumed_at: Option<Instant>,
    /// The recording's duration.
    pub recorded: Duration,
    /// Failures that stopped an endpoint of the run.
    pub failures: Vec<String>,
    /// After the run, with a check: the differences (empty when all matched).
    pub result: Option<Vec<Mismatch>>,
    /// Log rows of the differences, for marking them.
    pub marked: HashMap<usize, usize>,
    /// After a check: the ignore rules that applied, with their spans.
    pub ignored: Vec<(String, usize)>,
    /// The open "ignore this in future checks" editor, if any.
    pub ignore_draft: Option<IgnoreDraft>,
    pub stopped_by_hand: bool,
}

impl ReplayRun {
    /// Starts the plans on `engine`: mock servers now, clients once they listen.
    pub fn start(
        plans: Vec<EndpointPlan>,
        engine: &Engine,
        next_id: &mut impl FnMut() -> EndpointId,
        options: ReplayOptions,
        check: bool,
    ) -> ReplayRun {
        let ids: Vec<EndpointId> = plans.iter().map(|_| next_id()).collect();
        let mut log = TrafficLog::new();
        let mut recorder = Recorder::new();
        for (id, plan) in ids.iter().zip(&plans) {
            recorder.name(&mut log, *id, plan.name());
        }
        let (launch, first) = Launch::new(
            ids.iter()
                .zip(&plans)
                .map(|(id, plan)| (*id, plan.role != Role::Server)),
            Instant::now(),
        );
        let recorded = plans
            .iter()
            .map(EndpointPlan::duration)
            .max()
            .unwrap_or_default();
        let paused = options.pace.is_paused();
        let run = ReplayRun {
            total_sends: plans.iter().map(EndpointPlan::sends).sum(),
            sent: vec![0; plans.len()],
            running: ids.iter().copied().collect(),
            launch,
            due_clients: Vec::new(),
            ids,
            plans,
            log,
            recorder,
            tally: Tally::new(),
            paused,
            options,
            check,
            elapsed: Duration::ZERO,
            resumed_at: (!paused).then(Instant::now),
            recorded,
            failures: Vec::new(),
            result: None,
            marked: HashMap::new(),
            ignore_draft: None,
            ignored: Vec::new(),
            stopped_by_hand: false,
        };
        run.open(first, engine);
        run
    }

    fn open(&self, ids: Vec<EndpointId>, engine: &Engine) {
        for id in ids {
            let Some(i) = self.ids.iter().position(|x| *x == id) else {
                continue;
            };
            engine.send(Command::Replay {
                id,
                plan: Box::new(self.plans[i].clone()),
                options: self.options.clone(),
            });
        }
    }

    /// Starts the clients once no mock server is still getting ready (or
    /// the servers' grace time is over).
    pub fn start_clients(&mut self, engine: &Engine) {
        let mut due = std::mem::take(&mut self.due_clients);
        due.extend(self.launch.on_time(Instant::now()));
        self.open(due, engine);
    }

    pub fn owns(&self, id: EndpointId) -> bool {
        self.ids.contains(&id)
    }

    /// Takes an event of one of the run's endpoints.
    pub fn apply(&mut self, event: &Event) {
        if !self.owns(event.id) {
            return;
        }
        let row = self.recorder.record(&mut self.log, event);
        if !self.stopped_by_hand {
            // Opened by the next frame's start_clients (the one engine caller).
            let due = self.launch.on_event(event.id, &event.kind);
            self.due_clients.extend(due);
        }
        self.tally.note(event.id, &event.kind, row);
        let plan = self.ids.iter().position(|id| *id == event.id);
        match &event.kind {
            EventKind::ReplayProgress { sent } => {
                if let Some(p) = plan {
                    self.sent[p] = *sent;
                }
            }
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
                let name = plan
                    .map(|p| self.plans[p].name().to_owned())
                    .unwrap_or_default();
                self.failures.push(format!("\"{name}\": {error}"));
            }
            EventKind::Stopped => {
                self.running.remove(&event.id);
                if self.is_done() {
                    self.finish();
                }
            }
            _ => {}
        }
    }

    pub fn is_done(&self) -> bool {
        self.running.is_empty()
    }

    fn finish(&mut self) {
        self.pause_clock();
        if self.check && !self.stopped_by_hand && self.failures.is_empty() {
            let checks = self.tally.check_all(&self.plans, &self.ids, &self.log);
            for (label, n) in checks.iter().flat_map(|c| &c.ignored) {
                match self.ignored.iter_mut().find(|(l, _)| l == label) {
                    Some((_, total)) => *total += n,
                    None => self.ignored.push((label.clone(), *n)),
                }
            }
            let mismatches: Vec<Mismatch> = checks.into_iter().filter_map(|c| c.mismatch).collect();
            self.marked = mismatches
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.row.map(|row| (row, i)))
                .collect();
            self.result = Some(mismatches);
        }
    }

    fn pause_clock(&mut self) {
        if let Some(since) = self.resumed_at.take() {
            self.elapsed += since.elapsed();
        }
    }

    pub fn sent(&self) -> usize {
        self.sent.iter().sum()
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed + self.resumed_at.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// The recording's duration at the current speed, if it has one.
    pub fn total_time(&self) -> Option<Duration> {
        let speed = self.speed();
        (speed > 0.0).then(|| crate::model::replay::scaled_gap(self.recorded, speed))
    }

    pub fn speed(&self) -> f64 {
        self.options.pace.speed()
    }

    pub fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            self.pause_clock();
            self.options.pace.pause();
        }
    }

    pub fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.resumed_at = Some(Instant::now());
            self.options.pace.resume();
        }
    }

    /// Pauses (if running) and lets the next payload of the run go.
    pub fn step(&mut self) {
        self.pause();
        self.options.pace.step();
    }

    pub fn set_speed(&mut self, speed: f64) {
        self.options.pace.set_speed(speed);
    }

    pub fn stop(&mut self, engine: &Engine) {
        self.stopped_by_hand = true;
        for id in &self.ids {
            engine.send(Command::Close {
                id: *id,
                abort: false,
            });
        }
        // Clients that never started will not.
        let due = std::mem::take(&mut self.due_clients);
        for id in self.launch.cancel().into_iter().chain(due) {
            self.running.remove(&id);
        }
        if self.is_done() {
            self.finish();
        }
    }

    /// The difference shown at log row `row`, if the check marked it.
    pub fn mismatch_at(&self, row: usize) -> Option<&Mismatch> {
        let i = *self.marked.get(&row)?;
        self.result.as_ref()?.get(i)
    }
}
