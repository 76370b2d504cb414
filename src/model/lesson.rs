//! Lessons: a session with steps for a learner, each with a checkpoint that
//! turns green when the real event happens in the session's log.

use super::log::{EntryKind, TrafficLog};
use super::payload::Payload;

/// A lesson carried by a session file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    pub title: String,
    pub steps: Vec<LessonStep>,
}

/// One step: what to do, and how sockbench knows it happened.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonStep {
    /// What to do and what to notice, in plain words.
    pub text: String,
    /// The event that completes the step; without one, the learner ticks it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Checkpoint>,
    /// A button the step offers beside its text, for a demo the window has
    /// no other control for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LessonAction>,
}

/// Something a step's button does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LessonAction {
    /// Stop reading the endpoint's open TCP connections for `millis`: what
    /// arrives meanwhile piles up in the kernel's receive buffer, so the next
    /// read takes several writes at once.
    PauseReads { endpoint: String, millis: u32 },
}

impl LessonAction {
    /// The button's words.
    pub fn label(&self) -> String {
        match self {
            LessonAction::PauseReads { endpoint, millis } => format!(
                "⏸ Pause \"{}\"'s reads for {}",
                super::display::escape_controls(endpoint),
                seconds(*millis)
            ),
        }
    }
}

/// `5 s`, `1.5 s`, `300 ms`.
fn seconds(millis: u32) -> String {
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", f64::from(millis) / 1000.0)
    }
}

/// An event to wait for in the log.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The event's kind: `Connected`, `Received`, `Failed(Refused)`, …
    pub event: EntryKind,
    /// Only this endpoint's events (any endpoint when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only events whose bytes contain this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Payload>,
    /// How many such events are needed (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// Events this close before the previous step's event still count for the
/// next step: two ends of one connection report at nearly the same moment,
/// in either order.
const TOGETHER_MICROS: i64 = 200_000;

/// Where the previous step was completed: only entries from here on count
/// for the next step, so a checkpoint is earned only by its own step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    /// The first entry index that counts.
    from: usize,
    /// The time of the event that completed the previous step.
    at: i64,
    /// Whether entries just before `from` (within [`TOGETHER_MICROS`]) count
    /// too: yes after an event, no after a step the learner ticked off.
    together: bool,
    /// Entries before this never count, however close in time: where the
    /// previous step began to count. A fast run (a test, a script) puts a
    /// whole conversation within the window, and an early event must not
    /// pass a later step from there.
    floor: usize,
}

impl Mark {
    fn counts(&self, i: usize, at: i64) -> bool {
        i >= self.from
            || (self.together
                && i >= self.floor
                && i + 1 < self.from
                && at >= self.at - TOGETHER_MICROS)
    }
}

impl Checkpoint {
    /// The index of the entry at which this checkpoint is met, counting only
    /// entries that `after` lets count.
    fn met_at(&self, log: &TrafficLog, after: Option<Mark>) -> Option<usize> {
        let finder = self
            .contains
            .as_ref()
            .map(|p| memchr::memmem::Finder::new(p.bytes()));
        let needed = self.count.unwrap_or(1).max(1);
        let mut n = 0;
        for (i, e) in log.entries().iter().enumerate() {
            if after.is_some_and(|m| !m.counts(i, e.at_micros)) || e.kind != self.event {
                continue;
            }
            if let Some(name) = &self.endpoint
                && log.endpoint_name(e) != name
            {
                continue;
            }
            if let Some(f) = &finder
                && f.find(log.bytes_of(e)).is_none()
            {
                continue;
            }
            n += 1;
            // The first entry that meets it: a later one would move the line
            // past events that belong to the next step.
            if n >= needed {
                return Some(i);
            }
        }
        None
    }
}

impl Lesson {
    /// Which steps are done. Steps are followed in order: a step's checkpoint
    /// counts only events after the previous step was completed (or, after an
    /// event, at nearly the same moment). A step without a checkpoint is done
    /// when the learner ticked it off; `ticked[i]` holds the log's length at
    /// that moment, so what happened before the tick counts for no later step.
    pub fn done(&self, log: &TrafficLog, ticked: &[Option<usize>]) -> Vec<bool> {
        let mut after: Option<Mark> = None;
        let mut open = true;
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                if !open {
                    return false;
                }
                let done = match &step.check {
                    Some(c) => match c.met_at(log, after) {
                        Some(at) => {
                            let when = log.entry(at).map_or(0, |e| e.at_micros);
                            // Keep the latest point, so a step met just before its
                            // predecessor does not move the line back.
                            after = Some(match after {
                                Some(m) if m.from > at + 1 => Mark {
                                    at: m.at.max(when),
                                    ..m
                                },
                                _ => Mark {
                                    from: at + 1,
                                    at: when,
                                    together: true,
                                    floor: after.map_or(0, |m| m.from),
                                },
                            });
                            true
                        }
                        None => false,
                    },
                    None => match ticked.get(i).copied().flatten() {
                        Some(len) => {
                            let from = len.min(log.len());
                            if after.is_none_or(|m| m.from <= from) {
                                after = Some(Mark {
                                    from,
                                    at: i64::MAX,
                                    together: false,
                                    floor: from,
                                });
                            }
                            true
                        }
                        None => false,
                    },
                };
                open = done;
                done
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::{ErrorKind, NO_PEER};

    /// Lesson 2 as shipped: the reads of step 3's send (here split, as when
    /// the learner forgot the pause) never pass the later step that asks for
    /// six reads, nor the one-read step; only reads after the tick do.
    #[test]
    fn lesson_2_earlier_reads_never_pass_a_later_step() {
        let session = crate::persist::from_str(
            include_str!("../../sessions/lessons/2-tcp-is-a-stream.ron"),
            std::path::Path::new("2-tcp-is-a-stream.ron"),
        )
        .unwrap();
        let lesson = session.lesson.unwrap();
        let at = |s: i64| chrono::DateTime::from_timestamp_micros(s * 1_000_000).unwrap();
        let mut log = TrafficLog::new();
        let sender = log.endpoint_index("sender");
        let receiver = log.endpoint_index("receiver");
        log.push(at(1), sender, NO_PEER, EntryKind::Connected, b"");
        log.push(
            at(2),
            receiver,
            NO_PEER,
            EntryKind::Note,
            b"reads paused for 5000 ms",
        );
        let lines = b"first line\nsecond line\nthird line\n";
        for (n, piece) in lines.chunks(6).enumerate() {
            log.push(at(3), sender, NO_PEER, EntryKind::Sent, piece);
            log.push(
                at(4 + n as i64),
                receiver,
                NO_PEER,
                EntryKind::Received,
                piece,
            );
        }
        let mut ticked = vec![None; lesson.steps.len()];
        let done = lesson.done(&log, &ticked);
        assert_eq!(
            &done[..4],
            [true, true, true, false],
            "six reads are not one"
        );
        // The whole text in one read, then the look at the stream ticked off.
        log.push(at(20), receiver, NO_PEER, EntryKind::Received, lines);
        ticked[4] = Some(log.len());
        let done = lesson.done(&log, &ticked);
        assert_eq!(&done[..6], [true, true, true, true, true, false]);
        for n in 0..6 {
            assert!(!lesson.done(&log, &ticked)[5], "after {n} new reads");
            log.push(at(30 + n), receiver, NO_PEER, EntryKind::Received, b"x");
        }
        assert!(lesson.done(&log, &ticked)[5]);
        assert!(!lesson.done(&log, &ticked)[6]);
    }

    #[test]
    fn checkpoints_follow_the_steps_in_order() {
        // Each entry a second after the one before.
        let clock = std::cell::Cell::new(0);
        let secs = || {
            clock.set(clock.get() + 1);
            clock.get()
        };
        let at = |s: i64| chrono::DateTime::from_timestamp_micros(s * 1_000_000).unwrap();
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        let s = log.endpoint_index("server");
        log.push(at(secs()), s, NO_PEER, EntryKind::Listening, b"127.0.0.1:7");
        log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"hello there");
        log.push(
            at(secs()),
            c,
            NO_PEER,
            EntryKind::Failed(ErrorKind::Refused),
            b"x",
        );
        let lesson: Lesson = ron::from_str(
            r#"(title: "t", steps: [
                (text: "listen", check: Some((event: Listening, endpoint: Some("server")))),
                (text: "say hello", check: Some((event: Sent, contains: Some(Text("hello"))))),
                (text: "refused", check: Some((event: Failed(Refused)))),
                (text: "read this"),
                (text: "twice more", check: Some((event: Sent, count: Some(2)))),
            ])"#,
        )
        .unwrap();
        assert_eq!(lesson.done(&log, &[]), [true, true, true, false, false]);
        let ticked = [None, None, None, Some(log.len())];
        assert_eq!(lesson.done(&log, &ticked), [true, true, true, true, false]);
        // Only sends after the earlier steps count.
        log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"one");
        assert!(!lesson.done(&log, &ticked)[4]);
        log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"two");
        assert!(lesson.done(&log, &ticked)[4]);

        // Two ends of a connection report in either order, at nearly the same moment.
        let together: Lesson = ron::from_str(
            r#"(title: "t", steps: [
                (text: "connected", check: Some((event: Connected))),
                (text: "accepted", check: Some((event: Accepted))),
            ])"#,
        )
        .unwrap();
        let mut both = TrafficLog::new();
        let c = both.endpoint_index("client");
        both.push(at(100), c, NO_PEER, EntryKind::Accepted, b"");
        both.push(at(100), c, NO_PEER, EntryKind::Connected, b"");
        assert_eq!(together.done(&both, &[]), [true, true]);

        // A step the learner ticks off closes the door on what came before it:
        // reads of step 1 do not pass step 3, only reads after the tick do.
        let stream: Lesson = ron::from_str(
            r#"(title: "t", steps: [
                (text: "send in 3 writes", check: Some((event: Sent, count: Some(3)))),
                (text: "look at the reads"),
                (text: "three reads", check: Some((event: Received, count: Some(3)))),
            ])"#,
        )
        .unwrap();
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        for _ in 0..3 {
            log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"x");
        }
        for _ in 0..3 {
            log.push(at(secs()), c, NO_PEER, EntryKind::Received, b"x");
        }
        assert_eq!(stream.done(&log, &[]), [true, false, false]);
        let ticked = [None, Some(log.len())];
        assert_eq!(stream.done(&log, &ticked), [true, true, false]);
        for n in 0..3 {
            assert!(!stream.done(&log, &ticked)[2], "after {n} new reads");
            log.push(at(secs()), c, NO_PEER, EntryKind::Received, b"x");
        }
        assert_eq!(stream.done(&log, &ticked), [true, true, true]);

        // The other end's event just before the mark meets its step there: a
        // later event of that kind (a second peer) must not move the line past
        // the steps in between (lesson 1: accepted before connected, then a
        // send, then a second peer much later).
        let echo: Lesson = ron::from_str(
            r#"(title: "t", steps: [
                (text: "connect", check: Some((event: Connected))),
                (text: "accepted", check: Some((event: Accepted))),
                (text: "send", check: Some((event: Sent))),
            ])"#,
        )
        .unwrap();
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        let s = log.endpoint_index("server");
        let t = secs();
        log.push(at(t), s, NO_PEER, EntryKind::Accepted, b"");
        log.push(at(t), c, NO_PEER, EntryKind::Connected, b"");
        log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"hi");
        log.push(at(secs()), s, NO_PEER, EntryKind::Accepted, b"");
        assert_eq!(echo.done(&log, &[]), [true, true, true]);

        // A fast run: the whole conversation within the together window. The
        // first peer's accept (step 2's time) does not pass the last step,
        // which waits for a second peer.
        let fast: Lesson = ron::from_str(
            r#"(title: "t", steps: [
                (text: "connect", check: Some((event: Connected))),
                (text: "accepted", check: Some((event: Accepted))),
                (text: "send", check: Some((event: Sent))),
                (text: "closed", check: Some((event: PeerClosed))),
                (text: "a second peer", check: Some((event: Accepted))),
            ])"#,
        )
        .unwrap();
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        let s = log.endpoint_index("server");
        let t = secs();
        log.push(at(t), s, NO_PEER, EntryKind::Accepted, b"");
        log.push(at(t), c, NO_PEER, EntryKind::Connected, b"");
        log.push(at(t), c, NO_PEER, EntryKind::Sent, b"hi");
        log.push(at(t), s, NO_PEER, EntryKind::PeerClosed, b"");
        assert_eq!(fast.done(&log, &[]), [true, true, true, true, false]);
        log.push(at(t), s, NO_PEER, EntryKind::Accepted, b"");
        assert_eq!(fast.done(&log, &[]), [true, true, true, true, true]);

        // Out of order, later steps wait for the earlier ones.
        let mut log = TrafficLog::new();
        let c = log.endpoint_index("client");
        log.push(at(secs()), c, NO_PEER, EntryKind::Sent, b"hello");
        assert_eq!(lesson.done(&log, &[]), [false, false, false, false, false]);
    }
}
