//! Scheduled sends: what an endpoint sends by itself on each connection,
//! without a person at the composer — a client's requests, a server's
//! greeting (an SMTP or FTP banner) to each peer it accepts.
//!
//! In a session file, an endpoint's `sends` list:
//!
//! ```ron
//! sends: [
//!     (text: "HELO sockbench\r\n"),
//!     (text: "ping ${counter}\n", delay: "100ms", repeat: 3, interval: "50ms"),
//!     (library: "status request", repeat: "until stopped", interval: "1s"),
//! ]
//! ```
//!
//! - the payload: `text` in the composer's text notation (escapes `\r \n
//!   \xNN`, placeholders `${counter}`, `${time}`, checksums: see
//!   [`super::placeholder`]), or `library`, the name of a library payload
//!   (its bytes are sent as they are, `$` included);
//! - `delay`: how long after the connection is made (a server: after the peer
//!   is accepted; a datagram socket: after it is bound) the first send goes,
//!   in the relay's time notation (`250us`, `50ms`, `1.5s`; default `0ms`);
//! - `repeat`: how many times it goes, 1 to [`MAX_REPEAT`] (default 1), or
//!   `"until stopped"`;
//! - `interval`: the time from one send to the next, 1 ms to an hour; required
//!   when the send repeats.
//!
//! `${counter}` counts the sends of that entry on that connection, from 1; a
//! connection made again (a reconnect, a new peer) starts every schedule over.

use std::time::Duration;

use super::impair::{MAX_DELAY, duration_text, parse_duration};
use super::placeholder::{Scope, Template};

/// The most times one scheduled send may repeat (short of "until stopped").
pub const MAX_REPEAT: u32 = 1_000_000;
/// The shortest interval between two sends of a repeating entry.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The most scheduled sends one endpoint may hold.
pub const MAX_SENDS: usize = 256;

/// Where a scheduled send's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendPayload {
    /// Text notation with placeholders, as the composer takes it.
    Text(String),
    /// A library payload, by name (sent as its bytes are).
    Library(String),
}

/// How many times a scheduled send goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// This many times (1 to [`MAX_REPEAT`]).
    Times(u32),
    /// Until the connection ends or the endpoint stops.
    UntilStopped,
}

impl Repeat {
    pub fn is_once(&self) -> bool {
        *self == Repeat::Times(1)
    }

    /// The count, `None` for until stopped.
    pub fn count(&self) -> Option<u32> {
        match self {
            Repeat::Times(n) => Some(*n),
            Repeat::UntilStopped => None,
        }
    }
}

/// One scheduled send of an endpoint. Checked when built: see [`ScheduledSend::check`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SendFile", into = "SendFile")]
pub struct ScheduledSend {
    pub payload: SendPayload,
    /// After the connection is made.
    pub delay: Duration,
    pub repeat: Repeat,
    /// From one send to the next (zero when it goes once).
    pub interval: Duration,
}

impl ScheduledSend {
    /// A text payload sent once, at once.
    pub fn text(text: impl Into<String>) -> ScheduledSend {
        ScheduledSend {
            payload: SendPayload::Text(text.into()),
            delay: Duration::ZERO,
            repeat: Repeat::Times(1),
            interval: Duration::ZERO,
        }
    }

    /// Why this send cannot be: a text that is not a template, a repeat
    /// beyond the bound, a repeat without an interval, times out of range.
    /// Library names are checked against a session by [`check_library`].
    pub fn check(&self) -> Result<(), String> {
        match &self.payload {
            SendPayload::Text(text) if text.is_empty() => {
                return Err("text: give the payload (at least one byte)".into());
            }
            SendPayload::Text(text) => {
                super::placeholder::parse_text(text, &Scope::Plain)
                    .map_err(|e| format!("text {e}"))?;
            }
            SendPayload::Library(name) => {
                if name.trim().is_empty() {
                    return Err("library: give the name of a library payload".into());
                }
            }
        }
        if self.delay > MAX_DELAY {
            return Err(format!(
                "delay: a time of at most {} s",
                MAX_DELAY.as_secs()
            ));
        }
        if let Repeat::Times(n) = self.repeat
            && !(1..=MAX_REPEAT).contains(&n)
        {
            return Err(format!(
                "repeat {n}: give 1 to {MAX_REPEAT} times, or \"until stopped\""
            ));
        }
        if !self.repeat.is_once() {
            if self.interval < MIN_INTERVAL {
                return Err(format!(
                    "interval {}: a send that repeats needs an interval of at least 1ms",
                    duration_text(self.interval)
                ));
            }
            if self.interval > MAX_DELAY {
                return Err(format!(
                    "interval: a time of at most {} s",
                    MAX_DELAY.as_secs()
                ));
            }
        }
        Ok(())
    }

    /// The bytes template this send expands, with the library at hand.
    pub fn template(&self, library: &[super::LibraryItem]) -> Result<Template, String> {
        match &self.payload {
            SendPayload::Text(text) => {
                super::placeholder::parse_text(text, &Scope::Plain).map_err(|e| format!("text {e}"))
            }
            SendPayload::Library(name) => library
                .iter()
                .find(|item| item.name == *name)
                .map(|item| Template::literal(item.payload.bytes()))
                .ok_or_else(|| no_such_library(name)),
        }
    }

    /// "\"ping ${counter}\\n\" 3 times every 50ms", for the log and the window.
    pub fn describe(&self) -> String {
        let what = match &self.payload {
            SendPayload::Text(t) => {
                let short: String = t.chars().take(40).collect();
                format!("\"{}\"", super::escape_controls(&short))
            }
            SendPayload::Library(n) => {
                let short: String = n.chars().take(40).collect();
                format!("library \"{}\"", super::escape_controls(&short))
            }
        };
        let mut s = what;
        if !self.delay.is_zero() {
            s.push_str(&format!(" after {}", duration_text(self.delay)));
        }
        match self.repeat {
            Repeat::Times(1) => {}
            Repeat::Times(n) => s.push_str(&format!(
                " {n} times every {}",
                duration_text(self.interval)
            )),
            Repeat::UntilStopped => s.push_str(&format!(
                " every {} until stopped",
                duration_text(self.interval)
            )),
        }
        s
    }
}

fn no_such_library(name: &str) -> String {
    let short: String = name.chars().take(60).collect();
    format!(
        "library \"{}\": the session's library has no payload of that name",
        super::escape_controls(&short)
    )
}

/// Checks every `library` name of `sends` against `library` (one line naming
/// the first that is missing).
pub fn check_library(
    sends: &[ScheduledSend],
    library: &[super::LibraryItem],
) -> Result<(), String> {
    for send in sends {
        if let SendPayload::Library(name) = &send.payload
            && !library.iter().any(|item| item.name == *name)
        {
            return Err(no_such_library(name));
        }
    }
    Ok(())
}

thread_local! {
    /// While a session file is read again to place an error: the names of its
    /// library, so an unknown `library` name is refused where it is written.
    static LIBRARY_NAMES: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `read` with `names` as the library every `library` reference must
/// name: a reference to any other is a deserialization error, placed by the
/// reader at the reference (its line and column).
pub fn with_library_names<R>(names: Vec<String>, read: impl FnOnce() -> R) -> R {
    LIBRARY_NAMES.with(|n| *n.borrow_mut() = Some(names));
    let result = read();
    LIBRARY_NAMES.with(|n| *n.borrow_mut() = None);
    result
}

/// Why a kind of endpoint cannot hold scheduled sends, if it cannot.
pub fn kind_refuses(kind: &super::EndpointKind) -> Option<&'static str> {
    use super::EndpointKind as K;
    match kind {
        K::Relay { .. } => {
            Some("a relay passes on what its clients and upstream send; it has no sends of its own")
        }
        K::Udp { remote: None, .. } => Some(
            "a UDP socket without a remote has nowhere to send: give it a remote to use scheduled sends",
        ),
        K::UnixDatagram { remote: None, .. } => Some(
            "a Unix datagram socket without a remote has nowhere to send: give it a remote to use scheduled sends",
        ),
        _ => None,
    }
}

/// The file shape: `(text: "…", delay: "50ms", repeat: 3, interval: "1s")`
/// (no `Option`s, so it reads alike with and without RON's implicit `Some`).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename = "ScheduledSend", deny_unknown_fields)]
struct SendFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    library: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    delay: String,
    #[serde(default, skip_serializing_if = "RepeatFile::is_once")]
    repeat: RepeatFile,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    interval: String,
}

/// `3` or `"until stopped"`.
#[derive(Clone, Copy)]
struct RepeatFile(Repeat);

impl Default for RepeatFile {
    fn default() -> Self {
        RepeatFile(Repeat::Times(1))
    }
}

impl RepeatFile {
    fn is_once(&self) -> bool {
        self.0.is_once()
    }
}

impl serde::Serialize for RepeatFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Repeat::Times(n) => s.serialize_u32(n),
            Repeat::UntilStopped => s.serialize_str(UNTIL_STOPPED),
        }
    }
}

const UNTIL_STOPPED: &str = "until stopped";

impl<'de> serde::Deserialize<'de> for RepeatFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RepeatFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a number of times (1 to {MAX_REPEAT}) or \"{UNTIL_STOPPED}\""
                )
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RepeatFile, E> {
                if (1..=MAX_REPEAT as u64).contains(&n) {
                    Ok(RepeatFile(Repeat::Times(n as u32)))
                } else {
                    Err(E::custom(format!(
                        "repeat {n}: give 1 to {MAX_REPEAT} times, or \"{UNTIL_STOPPED}\""
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RepeatFile, E> {
                if n < 0 {
                    return Err(E::custom(format!(
                        "repeat {n}: give 1 to {MAX_REPEAT} times, or \"{UNTIL_STOPPED}\""
                    )));
                }
                self.visit_u64(n as u64)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RepeatFile, E> {
                if s.trim() == UNTIL_STOPPED {
                    Ok(RepeatFile(Repeat::UntilStopped))
                } else {
                    let short: String = s.chars().take(32).collect();
                    Err(E::custom(format!(
                        "repeat \"{}\": give a number of times or \"{UNTIL_STOPPED}\"",
                        super::escape_controls(&short)
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<SendFile> for ScheduledSend {
    type Error = String;
    fn try_from(f: SendFile) -> Result<Self, String> {
        let payload = match (f.text.is_empty(), f.library.is_empty()) {
            (false, true) => SendPayload::Text(f.text),
            (true, false) => {
                let name = f.library;
                let known = LIBRARY_NAMES.with(|n| {
                    n.borrow()
                        .as_ref()
                        .is_none_or(|names| names.contains(&name))
                });
                if !known {
                    return Err(no_such_library(&name));
                }
                SendPayload::Library(name)
            }
            (false, false) => {
                return Err(
                    "a scheduled send has `text` or `library`, not both: keep one of them".into(),
                );
            }
            (true, true) => {
                return Err(
                    "a scheduled send needs its payload: `text: \"…\"` or `library: \"name\"`"
                        .into(),
                );
            }
        };
        let time = |what: &str, t: String| -> Result<Duration, String> {
            if t.is_empty() {
                return Ok(Duration::ZERO);
            }
            parse_duration(&t).map_err(|e| format!("{what}: {e}"))
        };
        let send = ScheduledSend {
            payload,
            delay: time("delay", f.delay)?,
            repeat: f.repeat.0,
            interval: time("interval", f.interval)?,
        };
        send.check()?;
        Ok(send)
    }
}

impl From<ScheduledSend> for SendFile {
    fn from(s: ScheduledSend) -> SendFile {
        let (text, library) = match s.payload {
            SendPayload::Text(t) => (t, String::new()),
            SendPayload::Library(n) => (String::new(), n),
        };
        SendFile {
            text,
            library,
            delay: if s.delay.is_zero() {
                String::new()
            } else {
                duration_text(s.delay)
            },
            repeat: RepeatFile(s.repeat),
            interval: if s.repeat.is_once() && s.interval.is_zero() {
                String::new()
            } else {
                duration_text(s.interval)
            },
        }
    }
}

/// The `sends` list of a file: each checked, at most [`MAX_SENDS`].
pub fn read_sends<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ScheduledSend>, D::Error> {
    let sends = <Vec<ScheduledSend> as serde::Deserialize>::deserialize(d)?;
    if sends.len() > MAX_SENDS {
        return Err(serde::de::Error::custom(format!(
            "{} scheduled sends: an endpoint holds at most {MAX_SENDS}",
            sends.len()
        )));
    }
    Ok(sends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ScheduledSend, String> {
        ron::from_str::<ScheduledSend>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_form_is_short_and_round_trips() {
        let cases = [
            (ScheduledSend::text("hello\\n"), "(text:\"hello\\\\n\")"),
            (
                ScheduledSend {
                    payload: SendPayload::Text("ping ${counter}\n".into()),
                    delay: Duration::from_millis(100),
                    repeat: Repeat::Times(3),
                    interval: Duration::from_millis(50),
                },
                "(text:\"ping ${counter}\\n\",delay:\"100ms\",repeat:3,interval:\"50ms\")",
            ),
            (
                ScheduledSend {
                    payload: SendPayload::Library("status".into()),
                    delay: Duration::ZERO,
                    repeat: Repeat::UntilStopped,
                    interval: Duration::from_millis(1500),
                },
                "(library:\"status\",repeat:\"until stopped\",interval:\"1500ms\")",
            ),
        ];
        for (send, text) in cases {
            assert_eq!(ron::to_string(&send).unwrap(), text);
            assert_eq!(read(text).unwrap(), send);
        }
        let s = read("(text: \"x\", interval: \"1.5s\", repeat: 2)").unwrap();
        assert_eq!(s.interval, Duration::from_millis(1500));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (text, want) in [
            (
                "(text: \"x\", repeat: 3)",
                "needs an interval of at least 1ms",
            ),
            (
                "(text: \"x\", repeat: 3, interval: \"0ms\")",
                "needs an interval",
            ),
            ("(text: \"x\", repeat: 0)", "give 1 to 1000000 times"),
            (
                "(text: \"x\", repeat: 1000001, interval: \"1ms\")",
                "give 1 to 1000000",
            ),
            ("(text: \"x\", repeat: -2)", "give 1 to 1000000"),
            ("(text: \"x\", repeat: \"forever\")", "\"until stopped\""),
            ("(text: \"x\", delay: \"5\")", "delay: give the time a unit"),
            ("(text: \"x\", delay: \"2h\")", "not a time unit"),
            ("(text: \"x\", delay: \"3601s\")", "at most 3600 s"),
            ("(text: \"${nope}\")", "text at position 1"),
            ("(text: \"\\\\q\")", "not a known escape"),
            ("(text: \"x\", library: \"y\")", "not both"),
            ("()", "needs its payload"),
            ("(text: \"x\", every: \"1s\")", "every"),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn library_names_are_checked_against_the_library() {
        use crate::model::{LibraryItem, Payload};
        let library = vec![LibraryItem {
            name: "hello".into(),
            payload: Payload::from(b"hi $1".to_vec()),
        }];
        let good = ScheduledSend {
            payload: SendPayload::Library("hello".into()),
            ..ScheduledSend::text("")
        };
        let bad = ScheduledSend {
            payload: SendPayload::Library("nope".into()),
            ..ScheduledSend::text("")
        };
        assert!(check_library(std::slice::from_ref(&good), &library).is_ok());
        let e = check_library(&[good.clone(), bad.clone()], &library).unwrap_err();
        assert!(
            e.contains("\"nope\"") && e.contains("no payload of that name"),
            "{e}"
        );
        // A library payload is sent as it is: a `$` is a `$`.
        let t = good.template(&library).unwrap();
        assert_eq!(t.as_literal().unwrap(), b"hi $1");
        assert!(bad.template(&library).is_err());
        // While a file is read again to place the error, the reference itself fails.
        let e =
            with_library_names(vec!["hello".into()], || read("(library: \"nope\")")).unwrap_err();
        assert!(e.contains("no payload of that name"), "{e}");
        assert!(
            read("(library: \"nope\")").is_ok(),
            "outside, names are not known"
        );
    }

    #[test]
    fn kinds_without_a_destination_refuse_sends() {
        use crate::model::EndpointKind;
        assert!(
            kind_refuses(&EndpointKind::Udp {
                bind: None,
                remote: None
            })
            .is_some()
        );
        assert!(
            kind_refuses(&EndpointKind::Udp {
                bind: None,
                remote: Some("127.0.0.1:9".parse().unwrap())
            })
            .is_none()
        );
        assert!(
            kind_refuses(&EndpointKind::TcpServer {
                listen: "127.0.0.1:0".parse().unwrap()
            })
            .is_none()
        );
    }
}
