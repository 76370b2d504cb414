//! Replay in the window: a run of the open session's recording, with its own
//! log, progress, pause, step and speed, and after a check the differences.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::engine::{Command, EndpointId, Engine, Event, ReplayOptions};
use crate::model::TrafficLog;
use crate::model::ignore::IgnoreRule;
use crate::model::replay::{EndpointPlan, Mismatch};
use crate::run::replay::{Check, Failure};
use crate::run::{Recorder, Replay};

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

/// One replay of the open session: the run (see [`crate::run::Replay`]) and
/// what the window keeps of it.
pub struct ReplayRun {
    run: Replay,
    /// What this run did: a log of its own, the recording stays as it was.
    pub log: TrafficLog,
    /// The run's events to its log's rows.
    recorder: Recorder,
    /// Commands the run gave out, sent on the next frame (the one engine caller).
    unsent: Vec<Command>,
    /// Time spent running (not paused), and since when it runs.
    elapsed: Duration,
    resumed_at: Option<Instant>,
    /// The recording's duration.
    pub recorded: Duration,
    /// Log rows of the differences, for marking them.
    pub marked: HashMap<usize, usize>,
    /// The open "ignore this in future checks" editor, if any.
    pub ignore_draft: Option<IgnoreDraft>,
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
        let recorded = plans
            .iter()
            .map(EndpointPlan::duration)
            .max()
            .unwrap_or_default();
        let paused = options.pace.is_paused();
        let (run, first) = Replay::new(plans, ids, options, check, Instant::now());
        for command in first {
            engine.send(command);
        }
        ReplayRun {
            run,
            log,
            recorder,
            unsent: Vec::new(),
            elapsed: Duration::ZERO,
            resumed_at: (!paused).then(Instant::now),
            recorded,
            marked: HashMap::new(),
            ignore_draft: None,
        }
    }

    /// Starts the clients once no mock server is still getting ready (or
    /// the servers' grace time is over).
    pub fn start_clients(&mut self, engine: &Engine) {
        let mut due = std::mem::take(&mut self.unsent);
        due.extend(self.run.on_time(Instant::now()));
        for command in due {
            engine.send(command);
        }
    }

    pub fn owns(&self, id: EndpointId) -> bool {
        self.run.owns(id)
    }

    /// Takes an event of one of the run's endpoints.
    pub fn apply(&mut self, event: &Event) {
        if !self.owns(event.id) {
            return;
        }
        let row = self.recorder.record(&mut self.log, event);
        let due = self.run.on_event(event, row);
        self.unsent.extend(due);
        if self.is_done() {
            self.finish();
        }
    }

    pub fn is_done(&self) -> bool {
        self.run.is_done()
    }

    fn finish(&mut self) {
        self.pause_clock();
        if let Check::Done { mismatches, .. } = self.run.finish(&self.log) {
            self.marked = mismatches
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.row.map(|row| (row, i)))
                .collect();
        }
    }

    /// How the check came out, once the run is done.
    pub fn outcome(&self) -> Option<&Check> {
        self.run.outcome()
    }

    /// The differences the check found (empty when all matched), if it checked.
    pub fn mismatches(&self) -> Option<&[Mismatch]> {
        match self.run.outcome()? {
            Check::Done { mismatches, .. } => Some(mismatches),
            _ => None,
        }
    }

    /// Failures that stopped an endpoint of the run (or reset a client's connection).
    pub fn failures(&self) -> &[Failure] {
        self.run.failures()
    }

    pub fn stopped_by_hand(&self) -> bool {
        self.run.stopped_by_hand()
    }

    fn pause_clock(&mut self) {
        if let Some(since) = self.resumed_at.take() {
            self.elapsed += since.elapsed();
        }
    }

    pub fn sent(&self) -> usize {
        self.run.sent()
    }

    pub fn total_sends(&self) -> usize {
        self.run.total_sends()
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
        self.run.speed()
    }

    pub fn is_paused(&self) -> bool {
        self.run.is_paused()
    }

    pub fn pause(&mut self) {
        if !self.is_paused() {
            self.pause_clock();
            self.run.pause();
        }
    }

    pub fn resume(&mut self) {
        if self.is_paused() {
            self.resumed_at = Some(Instant::now());
            self.run.resume();
        }
    }

    /// Pauses (if running) and lets the next payload of the run go.
    pub fn step(&mut self) {
        self.pause();
        self.run.step();
    }

    pub fn set_speed(&mut self, speed: f64) {
        self.run.set_speed(speed);
    }

    pub fn stop(&mut self, engine: &Engine) {
        // Clients given out but not sent yet never start.
        let unsent = std::mem::take(&mut self.unsent);
        for command in self.run.stop(&unsent) {
            engine.send(command);
        }
        if self.is_done() {
            self.finish();
        }
    }

    /// The difference shown at log row `row`, if the check marked it.
    pub fn mismatch_at(&self, row: usize) -> Option<&Mismatch> {
        let i = *self.marked.get(&row)?;
        self.mismatches()?.get(i)
    }
}
