//! Auto-replies: the endpoint answers what it receives itself. An echo answers
//! each read; rules answer messages, cut from each connection's stream by the
//! endpoint's receive framing, so a request split across reads still matches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::model::framing::{Deframer, Message, ReceiveFraming};
use crate::model::{AutoReply, EndpointSpec, Trigger};

pub(crate) enum Matcher {
    Always,
    Contains(Box<memchr::memmem::Finder<'static>>),
    Exact(Bytes),
    StartsWith(Bytes),
    Regex(regex::bytes::Regex),
}

/// A reply, cut where a regex's captures go.
enum Piece {
    Bytes(Bytes),
    Group(usize),
    Named(String),
}

/// Splits a regex rule's reply at `$1`, `${1}`, `${name}` (`$$` is one `$`;
/// a `$` followed by anything else stays as it is).
fn template(reply: &[u8]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < reply.len() {
        if reply[i] == b'$' && i + 1 < reply.len() {
            let next = reply[i + 1];
            if next == b'$' {
                lit.push(b'$');
                i += 2;
                continue;
            }
            let group = if next.is_ascii_digit() {
                let end = reply[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(reply.len(), |p| i + 1 + p);
                Some((&reply[i + 1..end], end))
            } else if next == b'{' {
                reply[i + 2..]
                    .iter()
                    .position(|&b| b == b'}')
                    .map(|p| (&reply[i + 2..i + 2 + p], i + 3 + p))
                    .filter(|(name, _)| {
                        !name.is_empty()
                            && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    })
            } else {
                None
            };
            if let Some((name, end)) = group {
                if !lit.is_empty() {
                    pieces.push(Piece::Bytes(Bytes::from(std::mem::take(&mut lit))));
                }
                let name = String::from_utf8_lossy(name).into_owned();
                pieces.push(match name.parse::<usize>() {
                    Ok(n) => Piece::Group(n),
                    Err(_) => Piece::Named(name),
                });
                i = end;
                continue;
            }
        }
        lit.push(reply[i]);
        i += 1;
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Bytes(Bytes::from(lit)));
    }
    pieces
}

pub(crate) struct CompiledRule {
    matcher: Matcher,
    /// For a regex with `$` references: the reply's pieces; otherwise one shared reply.
    reply: Vec<Piece>,
    /// Index of the rule that must have matched first on this connection.
    after: Option<usize>,
    /// None when the rule's `after` names no rule: it never matches.
    valid: bool,
    delay: Duration,
    label: String,
    hits: AtomicU64,
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
                        let reply = if matches!(matcher, Matcher::Regex(_)) {
                            template(rule.reply.bytes())
                        } else {
                            vec![Piece::Bytes(bytes(&rule.reply))]
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
            let bytes = match &rule.matcher {
                Matcher::Always => Some(None),
                Matcher::Contains(f) => f.find(message).map(|_| None),
                Matcher::Exact(b) => (message == &b[..]).then_some(None),
                Matcher::StartsWith(b) => message.starts_with(b).then_some(None),
                Matcher::Regex(re) => re.captures(message).map(|caps| {
                    if let [Piece::Bytes(b)] = &rule.reply[..] {
                        return Some(b.clone());
                    }
                    let mut reply = Vec::new();
                    for piece in &rule.reply {
                        match piece {
                            Piece::Bytes(b) => reply.extend_from_slice(b),
                            Piece::Group(n) => {
                                if let Some(m) = caps.get(*n) {
                                    reply.extend_from_slice(m.as_bytes())
                                }
                            }
                            Piece::Named(name) => {
                                if let Some(m) = caps.name(name) {
                                    reply.extend_from_slice(m.as_bytes())
                                }
                            }
                        }
                    }
                    Some(Bytes::from(reply))
                }),
            };
            let Some(bytes) = bytes else { continue };
            let bytes = bytes.unwrap_or_else(|| match &rule.reply[..] {
                [Piece::Bytes(b)] => b.clone(),
                _ => Bytes::new(),
            });
            matched[i] = true;
            let hit = rule.hits.fetch_add(1, Ordering::Relaxed) + 1;
            out.push(Reaction::Matched {
                rule: i as u32,
                text: format!("{} matched (hit {hit})", rule.label),
            });
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
