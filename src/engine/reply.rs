//! Auto-replies: the endpoint answers received payloads itself, at once.

use bytes::Bytes;

use crate::model::{AutoReply, Trigger};

pub(crate) enum Matcher {
    Always,
    Contains(Box<memchr::memmem::Finder<'static>>),
    Regex(regex::bytes::Regex),
}

impl Matcher {
    fn matches(&self, data: &[u8]) -> bool {
        match self {
            Matcher::Always => true,
            Matcher::Contains(finder) => finder.find(data).is_some(),
            Matcher::Regex(re) => re.is_match(data),
        }
    }
}

/// An endpoint's [`AutoReply`], compiled once when it starts.
pub(crate) enum Responder {
    Off,
    Echo,
    Rules(Vec<(Matcher, Bytes)>),
}

impl Responder {
    pub fn new(spec: &AutoReply) -> Self {
        match spec {
            AutoReply::Off => Responder::Off,
            AutoReply::Echo => Responder::Echo,
            AutoReply::Rules(rules) => Responder::Rules(
                rules
                    .iter()
                    .map(|rule| {
                        let matcher = match &rule.when {
                            Trigger::Always => Matcher::Always,
                            Trigger::Contains(p) => Matcher::Contains(Box::new(
                                memchr::memmem::Finder::new(p.bytes()).into_owned(),
                            )),
                            Trigger::Regex(re) => Matcher::Regex(re.compile()),
                        };
                        (matcher, Bytes::copy_from_slice(rule.reply.bytes()))
                    })
                    .collect(),
            ),
        }
    }

    /// The answer to `data`, if any: an echo shares the received bytes, a
    /// rule's reply is shared by every answer it gives (no copy either way).
    pub fn answer(&self, data: &Bytes) -> Option<Bytes> {
        match self {
            Responder::Off => None,
            Responder::Echo => Some(data.clone()),
            Responder::Rules(rules) => rules
                .iter()
                .find(|(m, _)| m.matches(data))
                .map(|(_, reply)| reply.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::{RegexText, Rule};

    #[test]
    fn first_matching_rule_answers() {
        let spec = AutoReply::Rules(vec![
            Rule {
                when: Trigger::Regex(RegexText::new("^GET ").unwrap()),
                reply: "HTTP/1.0 200 OK\r\n\r\n".into(),
            },
            Rule {
                when: Trigger::Contains("ping".into()),
                reply: "pong".into(),
            },
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
}
