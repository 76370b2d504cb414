//! Auto-replies: the endpoint answers what it receives itself. An echo answers
//! each read; rules answer messages, cut from each connection's stream by the
//! endpoint's receive framing, so a request split across reads still matches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::model::framing::{Deframer, Message, ReceiveFraming};
use crate::model::placeholder::{CaptureSource, Context, Template};
use crate::model::{AutoReply, EndpointSpec, Trigger};

pub(crate) enum Matcher {
    Always,
    Contains(Box<memchr::memmem::Finder<'static>>),
    Exact(Bytes),
    StartsWith(Bytes),
    Regex(regex::bytes::Regex),
}

pub(crate) struct CompiledRule {
    matcher: Matcher,
    /// The reply as a template (captures for a regex, placeholders), or why
    /// it cannot be one; `Fixed` when it has neither, shared by every answer.
    reply: Reply,
    /// Index of the rule that must have matched first on this connection.
    after: Option<usize>,
    /// None when the rule's `after` names no rule: it never matches.
    valid: bool,
    delay: Duration,
    label: String,
    hits: AtomicU64,
}

/// A rule's reply, compiled once.
enum Reply {
    /// No placeholders or captures: the same bytes every time.
    Fixed(Bytes),
    /// Filled in for each answer.
    Template(Template),
    /// The reply does not read as a template: said when the rule matches.
    Broken(String),
}

/// What the endpoint does about a read.
#[derive(Debug, PartialEq)]
pub(crate) enum Reaction {
    /// Send these bytes, after waiting `delay`.
    Send { bytes: Bytes, delay: Duration },
    /// Say this in the log (a message cut at the maximum).
    Note(String),
    /// Rule `rule` (its index in the endpoint's list) matched a message; `text` says so in the log.
    Matched { rule: u32, text: String },
}

/// An endpoint's [`AutoReply`], compiled once when it starts.
pub(crate) enum Responder {
    Off,
    Echo,
    Rules {
        rules: Vec<CompiledRule>,
        framing: ReceiveFraming,
        max: usize,
    },
}

/// One connection's side of the rules: its unfinished message and which rules matched.
pub(crate) struct Conversation {
    deframer: Deframer,
    matched: Vec<bool>,
    messages: Vec<Message>,
}

impl Responder {
    pub fn new(spec: &AutoReply) -> Self {
        Self::with_framing(
            spec,
            ReceiveFraming::Raw,
            crate::model::framing::DEFAULT_MAX_MESSAGE,
        )
    }

    pub fn for_endpoint(spec: &EndpointSpec) -> Self {
        Self::with_framing(&spec.reply, spec.framing.clone(), spec.max_message_len())
    }

    pub fn with_framing(spec: &AutoReply, framing: ReceiveFraming, max: usize) -> Self {
        match spec {
            AutoReply::Off => Responder::Off,
            AutoReply::Echo => Responder::Echo,
            AutoReply::Rules(rules) => Responder::Rules {
                rules: rules
                    .iter()
                    .enumerate()
                    .map(|(i, rule)| {
                        let bytes = |p: &crate::model::Payload| Bytes::copy_from_slice(p.bytes());
                        let matcher = match &rule.when {
                            Trigger::Always => Matcher::Always,
                            Trigger::Contains(p) => Matcher::Contains(Box::new(
                                memchr::memmem::Finder::new(p.bytes()).into_owned(),
                            )),
                            Trigger::Exact(p) => Matcher::Exact(bytes(p)),
                            Trigger::StartsWith(p) => Matcher::StartsWith(bytes(p)),
                            Trigger::Regex(re) => Matcher::Regex(re.compile()),
                        };
                        let reply = match rule.reply_template() {
                            Ok(t) => match t.as_literal() {
                                Some(fixed) => Reply::Fixed(Bytes::from(fixed)),
                                None => Reply::Template(t),
                            },
                            Err(e) => Reply::Broken(e.to_string()),
                        };
                        let after = rule
                            .after
                            .as_ref()
                            .map(|name| rules.iter().position(|r| r.name == *name));
                        CompiledRule {
                            matcher,
                            reply,
                            after: after.flatten(),
                            valid: !matches!(after, Some(None)),
                            delay: Duration::from_millis(rule.delay_ms.unwrap_or(0).into()),
                            label: if rule.name.is_empty() || rule.name == (i + 1).to_string() {
                                format!("rule {}", i + 1)
                            } else {
                                format!("rule {} \"{}\"", i + 1, rule.name)
                            },
                            hits: AtomicU64::new(0),
                        }
                    })
                    .collect(),
                framing,
                max,
            },
        }
    }

    /// A new connection's state; `None` when this responder keeps none.
    pub fn conversation(&self) -> Option<Conversation> {
        match self {
            Responder::Rules {
                rules,
                framing,
                max,
            } => Some(Conversation {
                deframer: Deframer::new(framing.clone(), *max),
                matched: vec![false; rules.len()],
                messages: Vec::new(),
            }),
            _ => None,
        }
    }

    /// How many times each rule answered, over every connection.
    #[cfg(test)]
    pub fn hits(&self) -> Vec<u64> {
        match self {
            Responder::Rules { rules, .. } => rules
                .iter()
                .map(|r| r.hits.load(Ordering::Relaxed))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What to do about one read (`conversation` from [`Responder::conversation`]).
    /// A datagram socket passes `whole`: the read is one message, whatever the framing.
    pub fn react(
        &self,
        conversation: Option<&mut Conversation>,
        data: &Bytes,
        whole: bool,
        out: &mut Vec<Reaction>,
    ) {
        match self {
            Responder::Off => {}
            Responder::Echo => {
                out.push(Reaction::Send {
                    bytes: data.clone(),
                    delay: Duration::ZERO,
                });
            }
            Responder::Rules { rules, max, .. } => {
                let Some(c) = conversation else { return };
                if whole {
                    c.messages.push(Message {
                        bytes: data[..data.len().min(*max)].to_vec(),
                        cut_from: (data.len() > *max).then_some(data.len() as u64),
                    });
                } else {
                    c.deframer.push(data, &mut c.messages);
                }
                for message in std::mem::take(&mut c.messages) {
                    if let Some(len) = message.cut_from {
                        out.push(Reaction::Note(format!(
                            "a message of {len} bytes is longer than the {max}-byte maximum: its first {max} bytes go to the rules, the rest is skipped"
                        )));
                    }
                    Self::answer_message(rules, &mut c.matched, &message.bytes, out);
                }
            }
        }
    }

    fn answer_message(
        rules: &[CompiledRule],
        matched: &mut [bool],
        message: &[u8],
        out: &mut Vec<Reaction>,
    ) {
        for (i, rule) in rules.iter().enumerate() {
            if !rule.valid || rule.after.is_some_and(|a| !matched[a]) {
                continue;
            }
            let caps;
            let captures: Option<&dyn CaptureSource> = match &rule.matcher {
                Matcher::Always => None,
                Matcher::Contains(f) if f.find(message).is_some() => None,
                Matcher::Exact(b) if message == &b[..] => None,
                Matcher::StartsWith(b) if message.starts_with(b) => None,
                Matcher::Regex(re) => match re.captures(message) {
                    Some(c) => {
                        caps = c;
                        Some(&caps)
                    }
                    None => continue,
                },
                _ => continue,
            };
            matched[i] = true;
            let hit = rule.hits.fetch_add(1, Ordering::Relaxed) + 1;
            out.push(Reaction::Matched {
                rule: i as u32,
                text: format!("{} matched (hit {hit})", rule.label),
            });
            let bytes = match &rule.reply {
                Reply::Fixed(b) => b.clone(),
                Reply::Template(t) => {
                    // The counter counts this rule's answers: its hits.
                    let ctx = Context {
                        captures,
                        ..Context::now(hit - 1)
                    };
                    match t.expand(&ctx) {
                        Ok(b) => Bytes::from(b),
                        Err(e) => {
                            out.push(Reaction::Note(format!(
                                "{}: its reply is not sent: {e}",
                                rule.label
                            )));
                            return;
                        }
                    }
                }
                Reply::Broken(why) => {
                    out.push(Reaction::Note(format!(
                        "{}: its reply is not sent: {why}",
                        rule.label
                    )));
                    return;
                }
            };
            if !bytes.is_empty() {
                out.push(Reaction::Send {
                    bytes,
                    delay: rule.delay,
                });
            }
            return;
        }
    }

    /// The answer to `data` as one message, if any (no connection state): an
    /// echo shares the received bytes, a plain rule's reply is shared by every
    /// answer it gives.
    #[cfg(test)]
    pub fn answer(&self, data: &Bytes) -> Option<Bytes> {
        let mut c = self.conversation();
        let mut out = Vec::new();
        self.react(c.as_mut(), data, true, &mut out);
        out.into_iter().find_map(|r| match r {
            Reaction::Send { bytes, .. } => Some(bytes),
            Reaction::Note(_) | Reaction::Matched { .. } => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::{RegexText, Rule};

    #[test]
    fn first_matching_rule_answers() {
        let spec = AutoReply::Rules(vec![
            Rule::new(
                Trigger::Regex(RegexText::new("^GET ").unwrap()),
                "HTTP/1.0 200 OK\r\n\r\n",
            ),
            Rule::new(Trigger::Contains("ping".into()), "pong"),
        ]);
        let r = Responder::new(&spec);
        let b = |s: &'static [u8]| Bytes::from_static(s);
        assert_eq!(
            r.answer(&b(b"GET / HTTP/1.1\r\n")).unwrap(),
            b"HTTP/1.0 200 OK\r\n\r\n"[..]
        );
        assert_eq!(r.answer(&b(b"a ping b")).unwrap(), b"pong"[..]);
        assert_eq!(r.answer(&b(b"other")), None);
        let received = Bytes::from(vec![b'x'; 100]);
        let echo = Responder::new(&AutoReply::Echo).answer(&received).unwrap();
        assert_eq!(echo, received);
        assert_eq!(echo.as_ptr(), received.as_ptr(), "an echo shares the bytes");
        assert_eq!(Responder::new(&AutoReply::Off).answer(&b(b"x")), None);
    }

    fn rules(list: Vec<Rule>, framing: &str) -> Responder {
        Responder::with_framing(
            &AutoReply::Rules(list),
            ReceiveFraming::parse(framing).unwrap(),
            1000,
        )
    }

    fn sends(r: &Responder, c: &mut Conversation, data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        r.react(Some(c), &Bytes::copy_from_slice(data), false, &mut out);
        out.into_iter()
            .filter_map(|r| match r {
                Reaction::Send { bytes, .. } => Some(bytes.to_vec()),
                Reaction::Note(_) | Reaction::Matched { .. } => None,
            })
            .collect()
    }

    #[test]
    fn captures_fill_the_reply() {
        let r = rules(
            vec![Rule::new(
                Trigger::Regex(RegexText::new(r"^GET (\S+) (?P<v>\S+)").unwrap()),
                "got $1 by ${v}, $$1 ${1}x $9 $ $x",
            )],
            "crlf",
        );
        let mut c = r.conversation().unwrap();
        assert!(sends(&r, &mut c, b"GET /a").is_empty());
        assert_eq!(
            sends(&r, &mut c, b" HTTP/1.0\r\n"),
            [b"got /a by HTTP/1.0, $1 /ax  $ $x".to_vec()]
        );
    }

    #[test]
    fn replies_fill_in_placeholders_and_count_their_rule_hits() {
        let r = rules(
            vec![
                Rule::new(
                    Trigger::Regex(RegexText::new(r"^READ (\d+)").unwrap()),
                    "\x01$1#${counter}${crc16_modbus}",
                ),
                Rule::new(Trigger::Exact("len".into()), "${len:u8}abc"),
                Rule::new(Trigger::Exact("bad".into()), "x${sum8:0..9}"),
            ],
            "line",
        );
        let mut c = r.conversation().unwrap();
        let crc = |b: &[u8]| {
            let mut v = b.to_vec();
            let crc = crate::model::placeholder::Checksum::Crc16Modbus.compute(b) as u16;
            v.extend_from_slice(&crc.to_le_bytes());
            v
        };
        assert_eq!(
            sends(&r, &mut c, b"READ 7\nREAD 12\nlen\n"),
            [crc(b"\x017#1"), crc(b"\x0112#2"), b"\x04abc".to_vec()]
        );
        // A range past the reply's end is said, never sent.
        let mut out = Vec::new();
        r.react(Some(&mut c), &Bytes::from_static(b"bad\n"), false, &mut out);
        assert!(
            matches!(&out[..], [Reaction::Matched { .. }, Reaction::Note(why)] if why.contains("goes past the payload's end")),
            "{out:?}"
        );
        assert!(
            AutoReply::Rules(vec![Rule::new(Trigger::Always, "${nope}")])
                .check()
                .unwrap_err()
                .contains("\"nope\" is not a placeholder")
        );
    }

    #[test]
    fn a_rule_after_another_waits_for_it_on_its_connection() {
        let mut login = Rule::new(Trigger::StartsWith("LOGIN ".into()), "welcome\n");
        login.name = "login".into();
        let mut cmd = Rule::new(Trigger::Exact("LIST".into()), "a b c\n");
        cmd.after = Some("login".into());
        let denied = Rule::new(Trigger::Always, "login first\n");
        let r = rules(vec![login, cmd, denied], "line");
        let mut c = r.conversation().unwrap();
        assert_eq!(sends(&r, &mut c, b"LIST\n"), [b"login first\n".to_vec()]);
        assert_eq!(
            sends(&r, &mut c, b"LOGIN bob\nLIST\n"),
            [b"welcome\n".to_vec(), b"a b c\n".to_vec()]
        );
        // Another connection starts logged out.
        let mut other = r.conversation().unwrap();
        assert_eq!(
            sends(&r, &mut other, b"LIST\n"),
            [b"login first\n".to_vec()]
        );
        assert_eq!(r.hits(), [1, 1, 2]);
    }

    #[test]
    fn a_rule_after_a_missing_name_never_matches() {
        let mut lost = Rule::new(Trigger::Always, "x");
        lost.after = Some("nobody".into());
        let spec = AutoReply::Rules(vec![lost]);
        assert!(spec.check().unwrap_err().contains("nobody"));
        let r = Responder::new(&spec);
        assert_eq!(r.answer(&Bytes::from_static(b"a")), None);
    }
}
