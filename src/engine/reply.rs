//! Auto-replies: the endpoint answers received payloads itself, at once.

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
    Rules(Vec<(Matcher, Vec<u8>)>),
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
                        (matcher, rule.reply.bytes().to_vec())
                    })
                    .collect(),
            ),
        }
    }

    /// The answer to `data`, if any.
    pub fn answer(&self, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Responder::Off => None,
            Responder::Echo => Some(data.to_vec()),
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
        assert_eq!(
            r.answer(b"GET / HTTP/1.1\r\n").unwrap(),
            b"HTTP/1.0 200 OK\r\n\r\n"
        );
        assert_eq!(r.answer(b"a ping b").unwrap(), b"pong");
        assert_eq!(r.answer(b"other"), None);
        assert_eq!(Responder::new(&AutoReply::Echo).answer(b"x").unwrap(), b"x");
        assert_eq!(Responder::new(&AutoReply::Off).answer(b"x"), None);
    }
}
