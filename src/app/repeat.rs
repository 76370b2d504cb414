//! The window's traffic generator: a payload sent every N ms, M times or
//! until stopped, from the composer or a library entry.
//!
//! [`Schedule`] is the timing alone, a pure state machine over an injected
//! clock (tested below without waiting). [`Repeat`] is one running repeat:
//! its endpoint, target, payload and schedule. The window keeps them in
//! [`Repeats`] and sends their due rounds from `logic` every frame (see
//! `App::run_repeats`), so they go on while the window is hidden.
//!
//! The semantics are those of `connect --repeat N --interval MS`: the
//! interval runs from the start of one round to the start of the next; a
//! round that goes late (a stalled or busy window, or a peer that reads
//! slowly: a round waits until its endpoint has written the one before)
//! goes once, as soon as it can, and the next is an interval after it —
//! missed rounds are never sent in a burst to catch up, and never skipped:
//! M rounds are M rounds.

use std::time::{Duration, Instant};

use super::composer::PayloadSource;
use crate::engine::{EndpointId, Target};

/// The shortest interval the window allows: 1 ms. Each frame sends at most
/// one round of each repeat, so in practice the window's frame rate bounds
/// the rate too (a flood tool would use the command line).
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The longest interval: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// How many repeats may run at once (one per endpoint).
pub const MAX_REPEATS: usize = 16;

/// When the rounds of a repeat are due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    /// How many rounds in all; `None`: until stopped.
    rounds: Option<u64>,
    /// Rounds handed out so far.
    sent: u64,
    /// When the next round is due.
    next: Instant,
}

impl Schedule {
    /// A schedule whose first round is due at `now`. The interval is kept
    /// within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub fn new(interval: Duration, rounds: Option<u64>, now: Instant) -> Schedule {
        Schedule {
            interval: interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            rounds,
            sent: 0,
            next: now,
        }
    }

    /// The round due at `now` (numbered from 1), counted as sent; `None`
    /// when none is due or all were sent. At most one round per call: after
    /// a stall the late round goes, and the next is an interval after `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<u64> {
        if self.is_done() || now < self.next {
            return None;
        }
        self.sent += 1;
        let on_time = self.next + self.interval;
        // On time (or late by less than an interval): keep the cadence, so
        // frame-to-frame jitter does not add up. Later than that: start over
        // from this round, so nothing bunches up.
        self.next = if on_time > now {
            on_time
        } else {
            now + self.interval
        };
        Some(self.sent)
    }

    /// How long from `now` until the next round is due (zero when due now);
    /// `None` when all rounds were sent.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        (!self.is_done()).then(|| self.next.saturating_duration_since(now))
    }

    pub fn is_done(&self) -> bool {
        self.rounds.is_some_and(|n| self.sent >= n)
    }

    /// Rounds sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Rounds in all (`None`: until stopped).
    pub fn rounds(&self) -> Option<u64> {
        self.rounds
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// "round 3 of 10" or "round 3 (until stopped)".
    pub fn progress(&self) -> String {
        match self.rounds {
            Some(n) => format!("round {} of {n}", self.sent),
            None => format!("round {} (until stopped)", self.sent),
        }
    }
}

/// One running repeat.
#[derive(Clone, Debug)]
pub struct Repeat {
    pub endpoint: EndpointId,
    /// Where every round goes, fixed when the repeat began.
    pub to: Target,
    /// What every round is built from, fixed when the repeat began (editing
    /// the composer meanwhile changes the next Send, not this repeat).
    pub source: PayloadSource,
    /// The composer's "write it in N pieces", fixed when the repeat began.
    pub writes: u32,
    pub gap: Duration,
    /// What is repeated, for the window: "the composer's payload", "library entry \"ping\"".
    pub what: String,
    pub schedule: Schedule,
    /// A round was handed to the engine and its endpoint has reported no
    /// write (a Sent row) or failure since: the next round waits, as with
    /// `connect --repeat`, so a slow peer slows the rounds instead of
    /// filling a queue.
    pub unwritten: bool,
}

/// How the last repeat of an endpoint ended, shown in its composer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub endpoint: EndpointId,
    pub text: String,
}

/// The running repeats (at most one per endpoint, [`MAX_REPEATS`] in all),
/// and how the last one of each endpoint ended.
#[derive(Debug, Default)]
pub struct Repeats {
    running: Vec<Repeat>,
    ended: Vec<Ended>,
}

impl Repeats {
    /// Starts `repeat`, or says why not: its endpoint repeats already, or
    /// [`MAX_REPEATS`] run.
    pub fn start(&mut self, repeat: Repeat) -> Result<(), String> {
        if self.running.iter().any(|r| r.endpoint == repeat.endpoint) {
            return Err("this endpoint repeats already: stop that repeat first".into());
        }
        if self.running.len() >= MAX_REPEATS {
            return Err(format!(
                "{MAX_REPEATS} repeats run already, the most the window runs at once: stop one first"
            ));
        }
        self.ended.retain(|e| e.endpoint != repeat.endpoint);
        self.running.push(repeat);
        Ok(())
    }

    /// The running repeat of `endpoint`.
    pub fn of(&self, endpoint: EndpointId) -> Option<&Repeat> {
        self.running.iter().find(|r| r.endpoint == endpoint)
    }

    /// How the last repeat of `endpoint` ended, while none runs.
    pub fn ended(&self, endpoint: EndpointId) -> Option<&str> {
        self.ended
            .iter()
            .find(|e| e.endpoint == endpoint)
            .map(|e| e.text.as_str())
    }

    /// Ends the repeat of `endpoint`; `why` completes "after 3 of 10 rounds, …".
    /// Returns the ended repeat.
    pub fn stop(&mut self, endpoint: EndpointId, why: &str) -> Option<Repeat> {
        let at = self.running.iter().position(|r| r.endpoint == endpoint)?;
        let repeat = self.running.remove(at);
        let text = format!("Repeat {}: {why}", repeat.summary());
        self.ended.retain(|e| e.endpoint != endpoint);
        self.ended.push(Ended { endpoint, text });
        Some(repeat)
    }

    /// Endpoint `endpoint` wrote a payload or reported a failure: its
    /// repeat's last round is settled, and the next may go when due.
    pub fn settled(&mut self, endpoint: EndpointId) {
        for r in &mut self.running {
            if r.endpoint == endpoint {
                r.unwritten = false;
            }
        }
    }

    /// Forgets everything (another session opened).
    pub fn clear(&mut self) {
        self.running.clear();
        self.ended.clear();
    }

    pub fn running(&self) -> &[Repeat] {
        &self.running
    }

    pub fn running_mut(&mut self) -> &mut [Repeat] {
        &mut self.running
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

impl Repeat {
    /// The round and, when the next round is due but the last one is not
    /// written yet, that it waits for it.
    pub fn progress(&self, now: Instant) -> String {
        let mut text = self.schedule.progress();
        if self.unwritten && self.schedule.wait(now) == Some(Duration::ZERO) {
            text.push_str(", waiting for the last round to be written");
        }
        text
    }

    /// "3 of 10 rounds sent" or "3 rounds sent".
    pub fn summary(&self) -> String {
        let sent = self.schedule.sent();
        let unit = |n: u64| if n == 1 { "round" } else { "rounds" };
        match self.schedule.rounds() {
            Some(n) => format!("{sent} of {n} {} sent", unit(n)),
            None => format!("{sent} {} sent", unit(sent)),
        }
    }
}

/// "every 250 ms", "every 1.5 s".
pub fn every_text(interval: Duration) -> String {
    let ms = interval.as_millis();
    if ms >= 1000 && ms.is_multiple_of(100) {
        format!("every {} s", interval.as_secs_f64())
    } else {
        format!("every {ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs `schedule` on a clock that ticks by `step` until `end`, and
    /// returns the offsets (in ms from `t0`) at which rounds were taken.
    fn run(schedule: &mut Schedule, t0: Instant, step: Duration, end: Duration) -> Vec<u128> {
        let mut taken = Vec::new();
        let mut now = t0;
        while now <= t0 + end {
            if schedule.take_due(now).is_some() {
                taken.push((now - t0).as_millis());
            }
            now += step;
        }
        taken
    }

    #[test]
    fn rounds_go_an_interval_apart_and_stop_after_m() {
        let t0 = Instant::now();
        let mut s = Schedule::new(100 * MS, Some(4), t0);
        assert_eq!(
            s.wait(t0),
            Some(Duration::ZERO),
            "the first round is due at once"
        );
        assert_eq!(run(&mut s, t0, MS, 1000 * MS), [0, 100, 200, 300]);
        assert!(s.is_done());
        assert_eq!(s.sent(), 4);
        assert_eq!(s.wait(t0 + 1000 * MS), None);
        assert_eq!(s.take_due(t0 + 5000 * MS), None, "never a fifth");
        assert_eq!(s.progress(), "round 4 of 4");
    }

    #[test]
    fn rounds_are_numbered_from_one_and_one_per_call() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MS, None, t0);
        // A whole second late: one round now, not a hundred.
        let late = t0 + 1000 * MS;
        assert_eq!(s.take_due(late), Some(1));
        assert_eq!(s.take_due(late), None);
        assert_eq!(s.wait(late), Some(10 * MS));
        assert_eq!(s.take_due(late + 10 * MS), Some(2));
        assert_eq!(s.progress(), "round 2 (until stopped)");
    }

    #[test]
    fn frame_jitter_does_not_add_up() {
        // Frames every 16 ms, interval 50 ms: each round is taken at the
        // first frame at or after its due time, and the due times stay on
        // the 50 ms grid (not 64, 128, …).
        let t0 = Instant::now();
        let mut s = Schedule::new(50 * MS, Some(6), t0);
        assert_eq!(
            run(&mut s, t0, 16 * MS, 400 * MS),
            [0, 64, 112, 160, 208, 256]
        );
    }

    #[test]
    fn after_a_stall_the_late_round_goes_once_and_the_next_follows_an_interval_later() {
        let t0 = Instant::now();
        let mut s = Schedule::new(100 * MS, Some(5), t0);
        assert_eq!(s.take_due(t0), Some(1));
        // The window stalls for 450 ms (four and a half intervals).
        let back = t0 + 550 * MS;
        assert_eq!(s.take_due(back), Some(2));
        assert_eq!(s.take_due(back + 99 * MS), None, "no burst to catch up");
        assert_eq!(s.take_due(back + 100 * MS), Some(3));
        assert_eq!(s.take_due(back + 200 * MS), Some(4));
        assert_eq!(s.take_due(back + 300 * MS), Some(5));
        assert!(s.is_done(), "nothing was skipped: five rounds in all");
    }

    #[test]
    fn the_interval_is_kept_within_bounds() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::ZERO, None, t0);
        assert_eq!(s.interval(), MIN_INTERVAL);
        // Even at interval 0, one round per call: a flood needs many frames.
        assert_eq!(run(&mut s, t0, MS, 9 * MS).len(), 10);
        let s = Schedule::new(Duration::from_secs(1_000_000), Some(1), t0);
        assert_eq!(s.interval(), MAX_INTERVAL);
    }

    #[test]
    fn until_stopped_never_ends_by_itself() {
        let t0 = Instant::now();
        let mut s = Schedule::new(MS, None, t0);
        assert_eq!(run(&mut s, t0, MS, 999 * MS).len(), 1000);
        assert!(!s.is_done());
    }

    fn repeat(endpoint: u64) -> Repeat {
        Repeat {
            endpoint: EndpointId(endpoint),
            to: Target::Default,
            source: PayloadSource::Bytes {
                bytes: std::sync::Arc::from(&b"x"[..]),
                framing: crate::model::framing::Framing::Reads,
            },
            writes: 1,
            gap: Duration::ZERO,
            what: "the composer's payload".into(),
            schedule: Schedule::new(10 * MS, Some(3), Instant::now()),
            unwritten: false,
        }
    }

    #[test]
    fn a_round_not_yet_written_says_so_once_the_next_is_due() {
        let t0 = Instant::now();
        let mut r = repeat(1);
        r.schedule = Schedule::new(10 * MS, Some(3), t0);
        assert_eq!(r.schedule.take_due(t0), Some(1));
        r.unwritten = true;
        assert_eq!(r.progress(t0 + 5 * MS), "round 1 of 3");
        assert_eq!(
            r.progress(t0 + 10 * MS),
            "round 1 of 3, waiting for the last round to be written"
        );
        let mut repeats = Repeats::default();
        repeats.start(r).unwrap();
        repeats.settled(EndpointId(2));
        assert!(
            repeats.of(EndpointId(1)).unwrap().unwritten,
            "another endpoint's write"
        );
        repeats.settled(EndpointId(1));
        assert!(!repeats.of(EndpointId(1)).unwrap().unwritten);
    }

    #[test]
    fn one_repeat_per_endpoint_and_a_cap_in_all() {
        let mut repeats = Repeats::default();
        repeats.start(repeat(1)).unwrap();
        assert!(
            repeats
                .start(repeat(1))
                .unwrap_err()
                .contains("repeats already")
        );
        for id in 2..=MAX_REPEATS as u64 {
            repeats.start(repeat(id)).unwrap();
        }
        let e = repeats.start(repeat(99)).unwrap_err();
        assert!(e.contains("16 repeats run already"), "{e}");
        let stopped = repeats.stop(EndpointId(1), "stopped by you").unwrap();
        assert_eq!(stopped.endpoint, EndpointId(1));
        assert_eq!(
            repeats.ended(EndpointId(1)),
            Some("Repeat 0 of 3 rounds sent: stopped by you")
        );
        repeats.start(repeat(99)).unwrap();
        assert!(repeats.stop(EndpointId(1), "again").is_none());
        repeats.clear();
        assert!(repeats.is_empty());
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(every_text(250 * MS), "every 250 ms");
        assert_eq!(every_text(1500 * MS), "every 1.5 s");
        assert_eq!(every_text(1234 * MS), "every 1234 ms");
    }
}
