//! Impairments of a relay, as Toxiproxy's toxics: what the relay does to the
//! bytes it passes on, per direction. `up` is client → upstream, `down` is
//! upstream → client.
//!
//! One notation, the same on the command line and in session files:
//!
//! | impairment    | notation              | meaning                                                  |
//! |---------------|-----------------------|----------------------------------------------------------|
//! | `latency`     | `50ms`, `50ms±10ms`   | each read is passed on this much later (± up to jitter)  |
//! | `bandwidth`   | `100KiB/s`, `1MB/s`   | at most this many bytes a second                         |
//! | `slice`       | `16`, `16/5ms`        | writes of at most 16 bytes, 5 ms apart (default 1 ms)    |
//! | `close_after` | `1000`, `4KiB`, `2s`  | after so many bytes (or so long), close both legs        |
//! | `reset_after` | `1000`, `4KiB`, `2s`  | after so many bytes (or so long), reset both legs        |
//! | `loss`        | `10%`                 | UDP: drop this share of datagrams                        |
//! | `duplicate`   | `5%`                  | UDP: send this share of datagrams twice                  |
//! | `reorder`     | `5%`                  | UDP: hold this share back, behind the next datagram      |
//!
//! `±` may be written `+-`. A byte limit counts the bytes of one direction;
//! a time limit runs from the moment the client connected. Chance comes from
//! [`Dice`], seeded, so a run with the same seed drops the same datagrams.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::budget::{parse_size, size_text};

/// A direction of a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Way {
    /// Client → upstream.
    Up,
    /// Upstream → client.
    Down,
}

impl Way {
    pub fn arrow(self) -> &'static str {
        match self {
            Way::Up => "client → upstream",
            Way::Down => "upstream → client",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Way::Up => "up",
            Way::Down => "down",
        }
    }
}

/// Every impairment of a relay.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Impairments {
    /// Client → upstream.
    #[serde(skip_serializing_if = "Toxics::is_none")]
    pub up: Toxics,
    /// Upstream → client.
    #[serde(skip_serializing_if = "Toxics::is_none")]
    pub down: Toxics,
    /// Seeds the chance of loss, duplication, reordering and jitter; without
    /// it a seed is drawn when the relay starts and said in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Impairments {
    pub fn is_none(&self) -> bool {
        self.up.is_none() && self.down.is_none() && self.seed.is_none()
    }

    pub fn way(&self, way: Way) -> &Toxics {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
    }

    pub fn way_mut(&mut self, way: Way) -> &mut Toxics {
        match way {
            Way::Up => &mut self.up,
            Way::Down => &mut self.down,
        }
    }

    /// Impairments that only a stream relay can do (slice, close, reset), or
    /// only a datagram relay (loss, duplicate, reorder), named for an error.
    pub fn misfit(&self, udp: bool) -> Option<&'static str> {
        for t in [&self.up, &self.down] {
            if udp {
                if t.slice.is_some() {
                    return Some("slice");
                }
                if t.close_after.is_some() {
                    return Some("close-after");
                }
                if t.reset_after.is_some() {
                    return Some("reset-after");
                }
            } else {
                if t.loss.is_some() {
                    return Some("loss");
                }
                if t.duplicate.is_some() {
                    return Some("dup");
                }
                if t.reorder.is_some() {
                    return Some("reorder");
                }
            }
        }
        None
    }
}

/// The impairments of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toxics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice: Option<Slice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_after: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_after: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Percent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Percent>,
}

impl Toxics {
    pub fn is_none(&self) -> bool {
        *self == Toxics::default()
    }

    /// `latency 50ms±10ms, bandwidth 100 KiB/s`, for the log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.latency {
            parts.push(format!("latency {v}"));
        }
        if let Some(v) = &self.bandwidth {
            parts.push(format!("bandwidth {v}"));
        }
        if let Some(v) = &self.slice {
            parts.push(format!("slice {v}"));
        }
        if let Some(v) = &self.close_after {
            parts.push(format!("close after {v}"));
        }
        if let Some(v) = &self.reset_after {
            parts.push(format!("reset after {v}"));
        }
        if let Some(v) = &self.loss {
            parts.push(format!("loss {v}"));
        }
        if let Some(v) = &self.duplicate {
            parts.push(format!("duplicate {v}"));
        }
        if let Some(v) = &self.reorder {
            parts.push(format!("reorder {v}"));
        }
        parts.join(", ")
    }
}

/// Written and read as their notation (`"50ms±10ms"`), in files as on the command line.
macro_rules! as_notation {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The longest delay any impairment may ask for (an hour).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// `250us`, `50ms`, `1.5s`: a unit is required (a bare number could mean either).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if number.is_empty() {
        return Err("not a time: write a number and a unit (50ms, 1.5s, 250us)".into());
    }
    let micros_per: f64 = match unit {
        "us" | "µs" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "" => {
            return Err(format!(
                "give the time a unit (ms, s or us), as in {}ms",
                short(number)
            ));
        }
        other => {
            return Err(format!(
                "\"{}\" is not a time unit: use us, ms or s",
                short(other)
            ));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("\"{}\" is not a number", short(number)))?;
    let micros = n * micros_per;
    if !micros.is_finite() || micros > MAX_DELAY.as_micros() as f64 {
        return Err(format!("a time of at most {} s", MAX_DELAY.as_secs()));
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

/// A duration as the notation writes it: `50ms`, `1.5s`, `250us`.
pub fn duration_text(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0ms".into()
    } else if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

fn short(text: &str) -> String {
    let cut: String = text.chars().take(32).collect();
    super::escape_controls(&cut).into_owned()
}

/// A delay with jitter: each read waits `base`, plus or minus up to `jitter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub base: Duration,
    pub jitter: Duration,
}

impl FromStr for Latency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (base, jitter) = match s.split_once('±').or_else(|| s.split_once("+-")) {
            Some((b, j)) => (parse_duration(b)?, parse_duration(j)?),
            None => (parse_duration(s)?, Duration::ZERO),
        };
        Ok(Latency { base, jitter })
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", duration_text(self.base))?;
        if !self.jitter.is_zero() {
            write!(f, "±{}", duration_text(self.jitter))?;
        }
        Ok(())
    }
}
as_notation!(Latency);

/// At most this many bytes a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bandwidth(pub u64);

impl FromStr for Bandwidth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some(size) = s.trim().strip_suffix("/s") else {
            return Err("not a rate: write bytes a second, as in 100KiB/s or 1MB/s".into());
        };
        let bytes = parse_size(size)?;
        if bytes == 0 {
            return Err("a bandwidth of 0 passes nothing: give at least 1B/s".into());
        }
        Ok(Bandwidth(bytes))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", size_text(self.0).replace(' ', ""))
    }
}
as_notation!(Bandwidth);

/// Writes of at most `size` bytes, `gap` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub size: u32,
    pub gap: Duration,
}

/// The gap between slices when none is given.
pub const DEFAULT_SLICE_GAP: Duration = Duration::from_millis(1);

impl FromStr for Slice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (size, gap) = match s.split_once('/') {
            Some((n, g)) => (n, parse_duration(g)?),
            None => (s, DEFAULT_SLICE_GAP),
        };
        let size = match parse_size(size) {
            Ok(n) if (1..=u32::MAX as u64).contains(&n) => n as u32,
            Ok(_) => return Err("a slice holds at least 1 byte".into()),
            Err(e) => return Err(format!("slice size: {e}")),
        };
        Ok(Slice { size, gap })
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.size, duration_text(self.gap))
    }
}
as_notation!(Slice);

/// After so many bytes of one direction, or so long after the client connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    After(Duration),
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let time = t.ends_with("ms") || t.ends_with("us") || t.ends_with("µs") || t.ends_with('s');
        // "4s" is a time, "4KiB" and "4B" sizes ("s" alone never ends a size unit).
        if time && !t.to_ascii_lowercase().ends_with("bytes") {
            return parse_duration(t).map(Limit::After);
        }
        parse_size(t)
            .map(Limit::Bytes)
            .map_err(|e| format!("{e}; or a time such as 2s"))
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Bytes(n) => write!(f, "{n}B"),
            Limit::After(d) => write!(f, "{}", duration_text(*d)),
        }
    }
}
as_notation!(Limit);

/// A share from 0 to 100 %, kept in millionths so it compares and prints exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percent(pub u32);

impl Percent {
    const WHOLE: u32 = 1_000_000;
}

impl FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let number = t.strip_suffix('%').unwrap_or(t).trim();
        match number.parse::<f64>() {
            Ok(n) if n.is_finite() && (0.0..=100.0).contains(&n) => {
                Ok(Percent((n * 10_000.0).round() as u32))
            }
            _ => Err("not a share: give a percentage from 0% to 100%".into()),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let rest = self.0 % 10_000;
        if rest == 0 {
            write!(f, "{whole}%")
        } else {
            let frac = format!("{rest:04}");
            write!(f, "{whole}.{}%", frac.trim_end_matches('0'))
        }
    }
}
as_notation!(Percent);

/// A seeded source of chance (SplitMix64): the same seed gives the same
/// drops, duplicates, reorderings and jitter, run after run.
#[derive(Clone, Debug)]
pub struct Dice(u64);

impl Dice {
    /// The dice of one client and direction of a relay: the same seed and the
    /// same order of clients give the same throws.
    pub fn new(seed: u64, client: u64, way: Way) -> Dice {
        let lane = client.wrapping_mul(2).wrapping_add(way as u64);
        let mut d = Dice(seed ^ lane.wrapping_mul(0xA076_1D64_78BD_642F));
        d.roll();
        d
    }

    pub fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with the chance `p`.
    pub fn chance(&mut self, p: Percent) -> bool {
        p.0 > 0 && (self.roll() % Percent::WHOLE as u64) < p.0 as u64
    }

    /// `latency`'s delay for one read: the base plus or minus up to the jitter.
    pub fn delay(&mut self, latency: &Latency) -> Duration {
        if latency.jitter.is_zero() {
            return latency.base;
        }
        let span = latency.jitter.as_micros() as u64;
        let offset = self.roll() % (2 * span + 1);
        let base = latency.base.as_micros() as u64;
        Duration::from_micros((base + offset).saturating_sub(span))
    }
}

/// A notation with an optional direction in front: `up:50ms`, `down:10%`,
/// `both:16/5ms`, or `50ms` (then `default` says which way).
pub fn split_way(value: &str, default: &[Way]) -> (Vec<Way>, String) {
    let v = value.trim();
    for (prefix, ways) in [
        ("up:", &[Way::Up][..]),
        ("down:", &[Way::Down][..]),
        ("both:", &[Way::Up, Way::Down][..]),
    ] {
        if let Some(rest) = v.strip_prefix(prefix) {
            return (ways.to_vec(), rest.to_owned());
        }
    }
    (default.to_vec(), v.to_owned())
}

/// What a relay's note says was done to a direction's bytes, for the log's marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteMark {
    /// An impairment delayed, paced, sliced, dropped, doubled, reordered or ended.
    Impaired,
    /// Held by the intercept, waiting for the person.
    Held,
    /// Passed on after a hold, as read.
    Forwarded,
    /// Passed on after a hold, edited (the note holds the bytes passed on).
    Edited,
    /// Dropped by the person from a hold.
    Dropped,
}

impl NoteMark {
    pub fn label(self) -> &'static str {
        match self {
            NoteMark::Impaired => "impaired",
            NoteMark::Held => "held",
            NoteMark::Forwarded => "forwarded",
            NoteMark::Edited => "edited",
            NoteMark::Dropped => "dropped",
        }
    }
}

/// How the intercept's notes begin after the direction (`up: held #3: …`).
pub const HELD: &str = "held #";
pub const FORWARDED: &str = "forwarded #";
pub const EDITED: &str = "edited #";
pub const DROPPED: &str = "dropped #";

/// The words (after `up: ` or `down: `) of the notes a relay writes when an
/// impairment acts, as the relay writes them.
const IMPAIRMENT_WORDS: [&str; 9] = [
    "(latency ",
    "(slice ",
    " paced to ",
    "close after ",
    "reset after ",
    "(loss ",
    "(duplicate ",
    "(reorder ",
    "datagrams, ",
];

/// Which way a relay's note concerns and what it says was done, when it
/// tells of an impairment or of the intercept (`up: 4 bytes held 300ms
/// (latency 300ms)`, `down: dropped #2: …`); None for other notes.
pub fn note_mark(text: &str) -> Option<(Way, NoteMark)> {
    let (way, rest) = if let Some(rest) = text.strip_prefix("up: ") {
        (Way::Up, rest)
    } else if let Some(rest) = text.strip_prefix("down: ") {
        (Way::Down, rest)
    } else {
        return None;
    };
    for (prefix, mark) in [
        (HELD, NoteMark::Held),
        (FORWARDED, NoteMark::Forwarded),
        (EDITED, NoteMark::Edited),
        (DROPPED, NoteMark::Dropped),
    ] {
        if rest.starts_with(prefix) {
            return Some((way, mark));
        }
    }
    IMPAIRMENT_WORDS
        .iter()
        .any(|w| rest.contains(w))
        .then_some((way, NoteMark::Impaired))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_of_impairments_and_holds_are_told_from_others() {
        for (text, mark) in [
            (
                "up: 4 bytes held 300ms (latency 300ms)",
                Some((Way::Up, NoteMark::Impaired)),
            ),
            (
                "down: 9 bytes written in 3 slices of at most 4 bytes, 1ms apart (slice 4)",
                Some((Way::Down, NoteMark::Impaired)),
            ),
            (
                "up: reset after 10 bytes reached: both connections are reset",
                Some((Way::Up, NoteMark::Impaired)),
            ),
            (
                "up: datagram 3 dropped (loss 30%)",
                Some((Way::Up, NoteMark::Impaired)),
            ),
            (
                "down: held #2: 5 bytes wait for you",
                Some((Way::Down, NoteMark::Held)),
            ),
            (
                "up: edited #2: passed on as \"x\"",
                Some((Way::Up, NoteMark::Edited)),
            ),
            ("up: dropped #7", Some((Way::Up, NoteMark::Dropped))),
            (
                "down: the client is reset too (the other side's connection was reset)",
                None,
            ),
            ("upstream: connected to 127.0.0.1:1", None),
        ] {
            assert_eq!(note_mark(text), mark, "{text}");
        }
    }

    #[test]
    fn notations_read_and_write_back() {
        for (text, shown) in [
            ("50ms", "50ms"),
            ("50ms±10ms", "50ms±10ms"),
            ("0.5s+-250us", "500ms±250us"),
            ("2s", "2s"),
        ] {
            let l: Latency = text.parse().unwrap();
            assert_eq!(l.to_string(), shown);
            assert_eq!(l.to_string().parse::<Latency>().unwrap(), l);
        }
        assert_eq!("100KiB/s".parse::<Bandwidth>().unwrap(), Bandwidth(102_400));
        assert_eq!(Bandwidth(102_400).to_string(), "100KiB/s");
        assert_eq!(
            "16/5ms".parse::<Slice>().unwrap(),
            Slice {
                size: 16,
                gap: Duration::from_millis(5)
            }
        );
        assert_eq!("16".parse::<Slice>().unwrap().gap, DEFAULT_SLICE_GAP);
        assert_eq!("1000".parse::<Limit>().unwrap(), Limit::Bytes(1000));
        assert_eq!("4KiB".parse::<Limit>().unwrap(), Limit::Bytes(4096));
        assert_eq!(
            "2s".parse::<Limit>().unwrap(),
            Limit::After(Duration::from_secs(2))
        );
        assert_eq!("10%".parse::<Percent>().unwrap(), Percent(100_000));
        assert_eq!("12.5%".parse::<Percent>().unwrap().to_string(), "12.5%");
        assert_eq!("0.01".parse::<Percent>().unwrap().to_string(), "0.01%");
    }

    #[test]
    fn bad_notation_is_one_line_that_says_what_to_write() {
        for (bad, says) in [
            ("50", "unit"),
            ("ms", "not a time"),
            ("5h", "not a time unit"),
            ("9999s", "at most"),
        ] {
            let e = bad.parse::<Latency>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
        assert!("100KiB".parse::<Bandwidth>().unwrap_err().contains("/s"));
        assert!("0/s".parse::<Bandwidth>().is_err());
        assert!("0".parse::<Slice>().is_err());
        assert!("101%".parse::<Percent>().is_err());
        assert!("-1%".parse::<Percent>().is_err());
        assert!("NaN".parse::<Percent>().is_err());
        assert!("4 parsecs".parse::<Limit>().is_err());
    }

    #[test]
    fn a_file_holds_the_notation_and_old_files_read_without_it() {
        let mut i = Impairments::default();
        i.up.latency = Some("50ms±5ms".parse().unwrap());
        i.down.loss = Some("10%".parse().unwrap());
        i.seed = Some(7);
        let text = ron::to_string(&i).unwrap();
        assert_eq!(
            text,
            "(up:(latency:Some(\"50ms±5ms\")),down:(loss:Some(\"10%\")),seed:Some(7))"
        );
        assert_eq!(ron::from_str::<Impairments>(&text).unwrap(), i);
        assert_eq!(
            ron::from_str::<Impairments>("()").unwrap(),
            Impairments::default()
        );
        let e = ron::from_str::<Impairments>("(up:(latency:Some(\"fast\")))").unwrap_err();
        assert!(e.to_string().contains("not a time"), "{e}");
    }

    #[test]
    fn the_same_seed_throws_the_same_dice() {
        let throws = |seed| {
            let mut d = Dice::new(seed, 1, Way::Up);
            (0..1000)
                .map(|_| d.chance(Percent(250_000)))
                .collect::<Vec<_>>()
        };
        assert_eq!(throws(42), throws(42));
        assert_ne!(throws(42), throws(43));
        let hits = throws(42).iter().filter(|h| **h).count();
        assert!((180..320).contains(&hits), "{hits}");
        let mut d = Dice::new(1, 1, Way::Down);
        let l = Latency {
            base: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        };
        for _ in 0..100 {
            let t = d.delay(&l);
            assert!(t >= Duration::from_millis(40) && t <= Duration::from_millis(60));
        }
        assert!(!Dice::new(1, 1, Way::Up).chance(Percent(0)));
        assert!(Dice::new(1, 1, Way::Up).chance(Percent(1_000_000)));
    }

    #[test]
    fn directions_are_prefixed_or_defaulted() {
        assert_eq!(
            split_way("up:50ms", &[Way::Up, Way::Down]),
            (vec![Way::Up], "50ms".to_owned())
        );
        assert_eq!(
            split_way("10%", &[Way::Down]),
            (vec![Way::Down], "10%".to_owned())
        );
        assert_eq!(split_way("both:1", &[]).0, vec![Way::Up, Way::Down]);
    }
}
