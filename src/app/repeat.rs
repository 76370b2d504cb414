//! The window's traffic generator: a payload sent every N ms, M times or
//! until stopped, from the composer or a library entry.
//!
//! [`Schedule`] is the timing alone, a pure state machine over an injected
//! clock (tested below without waiting). [`Repeat`] is one running repeat:
//! its endpoint, target, payload and schedule. The window keeps them in
//! [`Repeats`] and sends their due rounds from `logic` every frame (see
//! `App::run_repeats`), so they go on while the window is hidden.
//!
//! The rounds are due on a fixed grid: round k at start + (k − 1) × interval.
//! Every frame sends every round that is due, not one: the rate a person asks
//! for does not depend on the frame rate (1 ms at 60 frames a second is about
//! 16 rounds a frame). Two bounds keep a frame and the queues small:
//! [`MAX_ROUNDS_PER_FRAME`], and the rounds handed to the engine and not yet
//! written ([`InFlight`]: a slow peer slows the rounds instead of filling a
//! queue). Rounds that are due but held back by them are not skipped: they
//! go in the next frames, and the window shows how many are behind the
//! interval while it lasts and, when the repeat ends, the most that ever were.
//! M rounds are M rounds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::composer::PayloadSource;
use crate::engine::{EndpointId, Target};

/// The shortest interval the window allows: 1 ms.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The longest interval: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// How many repeats may run at once (one per endpoint).
pub const MAX_REPEATS: usize = 16;
/// The most rounds of one repeat a frame sends; more due wait for the next
/// frame (and are shown as behind).
pub const MAX_ROUNDS_PER_FRAME: u64 = 256;
/// The most rounds of one repeat handed to the engine and not yet written.
pub const MAX_IN_FLIGHT_ROUNDS: usize = 256;
/// The most bytes of one repeat handed to the engine and not yet written
/// (a larger round still goes alone, when nothing is in flight).
pub const MAX_IN_FLIGHT_BYTES: usize = 1024 * 1024;

/// When the rounds of a repeat are due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    /// How many rounds in all; `None`: until stopped.
    rounds: Option<u64>,
    /// Rounds handed out so far.
    sent: u64,
    /// When the next round is due (on the grid).
    next: Instant,
    /// Rounds due and not sent when the last frame's sends were done.
    behind: u64,
    /// The most rounds ever behind.
    most_behind: u64,
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
            behind: 0,
            most_behind: 0,
        }
    }

    /// The next round (numbered from 1) if it is due at `now`, counted as
    /// sent; `None` when none is due or all were sent. Call it again for
    /// the next: after a stall, every round that fell due is due at once.
    pub fn take_due(&mut self, now: Instant) -> Option<u64> {
        if self.due(now) == 0 {
            return None;
        }
        self.sent += 1;
        // On the grid, so frame-to-frame jitter does not add up.
        self.next += self.interval;
        Some(self.sent)
    }

    /// How many rounds are due at `now` and not sent (at most those left).
    pub fn due(&self, now: Instant) -> u64 {
        if self.is_done() || now < self.next {
            return 0;
        }
        let late = (now - self.next).as_nanos() / self.interval.as_nanos();
        let due = u64::try_from(late).unwrap_or(u64::MAX).saturating_add(1);
        match self.rounds {
            Some(n) => due.min(n - self.sent),
            None => due,
        }
    }

    /// Notes how many rounds are due at `now` once a frame sent what it
    /// could: shown while it lasts, and the most of them when it ends.
    pub fn note_behind(&mut self, now: Instant) {
        self.behind = self.due(now);
        self.most_behind = self.most_behind.max(self.behind);
    }

    /// Rounds due and not sent after the last frame's sends.
    pub fn behind(&self) -> u64 {
        self.behind
    }

    /// The most rounds that were ever behind.
    pub fn most_behind(&self) -> u64 {
        self.most_behind
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

    /// "round 3 of 10" or "round 3 (until stopped)", and ", 5 rounds behind
    /// the interval" while some are.
    pub fn progress(&self) -> String {
        let mut text = match self.rounds {
            Some(n) => format!("round {} of {n}", self.sent),
            None => format!("round {} (until stopped)", self.sent),
        };
        if self.behind > 0 {
            text.push_str(&format!(
                ", {} behind the interval",
                rounds_word(self.behind)
            ));
        }
        text
    }
}

fn rounds_word(n: u64) -> String {
    if n == 1 {
        "1 round".into()
    } else {
        format!("{n} rounds")
    }
}

/// The rounds of a repeat handed to the engine and not yet written: their
/// sizes, oldest first. Each write (a Sent row) or failure of the endpoint
/// settles the oldest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InFlight {
    sizes: VecDeque<usize>,
    bytes: usize,
}

impl InFlight {
    /// Whether a round of `len` bytes may go now: always when nothing is in
    /// flight, else within [`MAX_IN_FLIGHT_ROUNDS`] and [`MAX_IN_FLIGHT_BYTES`].
    pub fn has_room(&self, len: usize) -> bool {
        self.sizes.is_empty()
            || (self.sizes.len() < MAX_IN_FLIGHT_ROUNDS
                && self.bytes.saturating_add(len) <= MAX_IN_FLIGHT_BYTES)
    }

    /// A round of `len` bytes was handed to the engine.
    pub fn push(&mut self, len: usize) {
        self.sizes.push_back(len);
        self.bytes += len;
    }

    /// The oldest round was written or failed.
    pub fn settle(&mut self) {
        if let Some(len) = self.sizes.pop_front() {
            self.bytes -= len;
        }
    }

    /// Rounds in flight.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
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
    /// The rounds handed to the engine that its endpoint has not reported
    /// written (a Sent row) or failed: when they reach their bound the next
    /// rounds wait, so a slow peer slows the rounds instead of filling a queue.
    pub in_flight: InFlight,
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
        let text = format!("Repeat {}: {why}{}", repeat.summary(), repeat.lag_note());
        self.ended.retain(|e| e.endpoint != endpoint);
        self.ended.push(Ended { endpoint, text });
        Some(repeat)
    }

    /// Endpoint `endpoint` wrote a payload or reported a failure: its
    /// repeat's oldest round in flight is settled, making room for the next.
    pub fn settled(&mut self, endpoint: EndpointId) {
        for r in &mut self.running {
            if r.endpoint == endpoint {
                r.in_flight.settle();
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
    /// The round, how many are behind the interval and, when rounds are due
    /// but the ones in flight leave no room, that they wait for them.
    pub fn progress(&self, now: Instant) -> String {
        let mut text = self.schedule.progress();
        if self.schedule.due(now) > 0 && !self.in_flight.has_room(0) {
            text.push_str(&format!(
                ", waiting for {} to be written",
                rounds_word(self.in_flight.len() as u64)
            ));
        }
        text
    }

    /// " (at most 12 rounds fell behind the interval)" when any ever did,
    /// so slower rounds than asked for are never silent; else nothing.
    pub fn lag_note(&self) -> String {
        match self.schedule.most_behind() {
            0 => String::new(),
            n => format!(" (at most {} fell behind the interval)", rounds_word(n)),
        }
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
    fn rounds_are_numbered_from_one_and_every_due_round_is_due() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MS, None, t0);
        // A whole second late: the 101 rounds due at 0, 10, …, 1000 ms.
        let late = t0 + 1000 * MS;
        assert_eq!(s.due(late), 101);
        assert_eq!(s.take_due(late), Some(1));
        assert_eq!(s.take_due(late), Some(2));
        assert_eq!(s.due(late), 99);
        while s.take_due(late).is_some() {}
        assert_eq!(s.sent(), 101);
        assert_eq!(s.wait(late), Some(10 * MS), "back on the grid");
        assert_eq!(s.take_due(late + 10 * MS), Some(102));
        assert_eq!(s.progress(), "round 102 (until stopped)");
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
    fn after_a_stall_every_round_that_fell_due_goes_and_none_more() {
        let t0 = Instant::now();
        let mut s = Schedule::new(100 * MS, Some(5), t0);
        assert_eq!(s.take_due(t0), Some(1));
        // The window stalls for 450 ms: rounds 2 to 5 fell due meanwhile.
        let back = t0 + 550 * MS;
        assert_eq!(s.due(back), 4, "never more than the rounds left");
        let taken: Vec<_> = std::iter::from_fn(|| s.take_due(back)).collect();
        assert_eq!(taken, [2, 3, 4, 5]);
        assert!(s.is_done(), "nothing was skipped: five rounds in all");
        assert_eq!(s.due(back + 1000 * MS), 0);
    }

    /// Frames every `frame` ms, each taking at most `cap` due rounds, until
    /// all are taken: the number of frames, and the most behind.
    fn frames_to_finish(s: &mut Schedule, t0: Instant, frame: u64, cap: u64) -> (u64, u64) {
        let mut frames = 0;
        while !s.is_done() {
            let now = t0 + Duration::from_millis(frame * frames);
            let mut taken = 0;
            while taken < cap && s.take_due(now).is_some() {
                taken += 1;
            }
            s.note_behind(now);
            frames += 1;
            assert!(frames < 100_000, "never finished");
        }
        (frames, s.most_behind())
    }

    #[test]
    fn the_rate_does_not_depend_on_the_frame_rate() {
        // 1000 rounds at 1 ms: at 60 frames a second (16 ms) and at 4 (250
        // ms) they are all sent by the frame at or after 999 ms, none behind.
        for frame in [1, 16, 250] {
            let t0 = Instant::now();
            let mut s = Schedule::new(MS, Some(1000), t0);
            let (frames, behind) = frames_to_finish(&mut s, t0, frame, MAX_ROUNDS_PER_FRAME);
            assert_eq!(frames, 999_u64.div_ceil(frame) + 1, "frames of {frame} ms");
            assert_eq!(behind, 0, "frames of {frame} ms");
            assert_eq!(s.sent(), 1000);
        }
    }

    #[test]
    fn rounds_held_back_by_the_frame_bound_are_counted_behind_and_still_sent() {
        let t0 = Instant::now();
        let mut s = Schedule::new(MS, Some(100), t0);
        // One frame after a 99 ms stall: 100 due, 30 go, 70 are behind.
        let now = t0 + 99 * MS;
        for _ in 0..30 {
            s.take_due(now).unwrap();
        }
        s.note_behind(now);
        assert_eq!(s.behind(), 70);
        assert_eq!(
            s.progress(),
            "round 30 of 100, 70 rounds behind the interval"
        );
        // The next frames send the rest; the most behind stays said.
        let (_, most) = frames_to_finish(&mut s, now, 1, 30);
        assert_eq!(s.sent(), 100, "none skipped");
        assert_eq!(most, 70);
        assert_eq!(s.behind(), 0);
        assert_eq!(s.progress(), "round 100 of 100");
    }

    #[test]
    fn rounds_in_flight_are_bounded_in_count_and_bytes() {
        let mut f = InFlight::default();
        assert!(
            f.has_room(10 * MAX_IN_FLIGHT_BYTES),
            "a large round goes alone"
        );
        f.push(MAX_IN_FLIGHT_BYTES - 10);
        assert!(f.has_room(10));
        assert!(!f.has_room(11));
        f.settle();
        assert!(f.is_empty());
        for _ in 0..MAX_IN_FLIGHT_ROUNDS {
            assert!(f.has_room(1));
            f.push(1);
        }
        assert!(!f.has_room(1));
        f.settle();
        assert!(f.has_room(1));
        // More settled than sent (a round written in pieces) is no harm.
        for _ in 0..2 * MAX_IN_FLIGHT_ROUNDS {
            f.settle();
        }
        assert!(f.is_empty());
    }

    #[test]
    fn the_interval_is_kept_within_bounds() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::ZERO, None, t0);
        assert_eq!(s.interval(), MIN_INTERVAL);
        // Even at interval 0, one round per call (the caller asks again).
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
            in_flight: InFlight::default(),
        }
    }

    #[test]
    fn rounds_waiting_for_room_say_so_once_the_next_is_due() {
        let t0 = Instant::now();
        let mut r = repeat(1);
        r.schedule = Schedule::new(10 * MS, Some(3), t0);
        assert_eq!(r.schedule.take_due(t0), Some(1));
        r.in_flight.push(2 * MAX_IN_FLIGHT_BYTES);
        assert_eq!(r.progress(t0 + 5 * MS), "round 1 of 3");
        assert_eq!(
            r.progress(t0 + 10 * MS),
            "round 1 of 3, waiting for 1 round to be written"
        );
        let mut repeats = Repeats::default();
        repeats.start(r).unwrap();
        repeats.settled(EndpointId(2));
        assert_eq!(
            repeats.of(EndpointId(1)).unwrap().in_flight.len(),
            1,
            "another endpoint's write"
        );
        repeats.settled(EndpointId(1));
        assert!(repeats.of(EndpointId(1)).unwrap().in_flight.is_empty());
    }

    #[test]
    fn an_ended_repeat_says_how_far_behind_it_fell() {
        let t0 = Instant::now();
        let mut repeats = Repeats::default();
        let mut r = repeat(1);
        r.schedule = Schedule::new(MS, Some(3), t0);
        r.schedule.take_due(t0 + 2 * MS).unwrap();
        r.schedule.note_behind(t0 + 2 * MS);
        repeats.start(r).unwrap();
        repeats.stop(EndpointId(1), "stopped by you");
        assert_eq!(
            repeats.ended(EndpointId(1)),
            Some(
                "Repeat 1 of 3 rounds sent: stopped by you (at most 2 rounds fell behind the interval)"
            )
        );
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
