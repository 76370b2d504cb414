//! The session document: what a person saves and opens.

use super::endpoint::EndpointSpec;
use super::log::TrafficLog;
use super::payload::Payload;

/// A session: its endpoints, payload library, notes and recorded log.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// Free text for the person (what this session is for, how to use it).
    pub notes: String,
    /// The endpoints, in the order they are shown. Names are unique.
    pub endpoints: Vec<EndpointSpec>,
    /// Named payloads to send again and again.
    pub library: Vec<LibraryItem>,
    /// Everything that happened while the session ran.
    pub log: TrafficLog,
    /// Steps for a learner, when the session is a lesson.
    pub lesson: Option<super::lesson::Lesson>,
    /// The session's own log budget, when it has one (else the program's
    /// setting applies): `log_budget: (memory: "64 MiB", overflow: Drop)`.
    pub log_budget: Option<super::budget::LogBudget>,
    /// What replay checks do not compare (times, counters, session ids):
    /// `ignore: [(regex: "Date: [^\r\n]*"), (bytes: "4..8", name: "seq", endpoint: "device")]`.
    pub ignore: Vec<super::ignore::IgnoreRule>,
}

/// A named payload of the library.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryItem {
    pub name: String,
    pub payload: Payload,
}

impl Session {
    pub fn endpoint(&self, name: &str) -> Option<&EndpointSpec> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// A name not used by any endpoint yet: `base`, `base 2`, `base 3`, …
    pub fn unique_endpoint_name(&self, base: &str) -> String {
        if self.endpoint(base).is_none() {
            return base.to_owned();
        }
        (2..)
            .map(|n| format!("{base} {n}"))
            .find(|candidate| self.endpoint(candidate).is_none())
            .unwrap_or_else(|| base.to_owned())
    }

    /// Why the session is not consistent, if it is not: every endpoint needs a
    /// name, and no two may share one.
    /// Linear in the number of endpoints (a file may hold 100,000 of them).
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::with_capacity(self.endpoints.len());
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.name.trim().is_empty() {
                return Err(format!("endpoint {} has an empty name", i + 1));
            }
            if !seen.insert(e.name.as_str()) {
                return Err(format!("two endpoints are named \"{}\"", e.name));
            }
        }
        self.validate_sends().map_err(|(_, why)| why)
    }

    /// Why some endpoint's scheduled sends cannot run, with the index of
    /// that endpoint: a kind with nowhere to send, a library name the
    /// library does not hold, a send that fails its own check.
    pub fn validate_sends(&self) -> Result<(), (usize, String)> {
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.sends.is_empty() {
                continue;
            }
            let named = |why: String| {
                (
                    i,
                    format!(
                        "endpoint \"{}\": scheduled sends: {why}",
                        super::escape_controls(&e.name)
                    ),
                )
            };
            if let Some(why) = super::schedule::kind_refuses(&e.kind) {
                return Err(named(why.to_owned()));
            }
            for (n, send) in e.sends.iter().enumerate() {
                send.check()
                    .map_err(|why| named(format!("send {}: {why}", n + 1)))?;
            }
            super::schedule::check_library(&e.sends, &self.library).map_err(named)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::EndpointKind;

    #[test]
    fn unique_names() {
        let mut s = Session::default();
        let kind = EndpointKind::TcpClient {
            remote: "127.0.0.1:1".parse().unwrap(),
        };
        s.endpoints.push(EndpointSpec::new("client", kind.clone()));
        assert_eq!(s.unique_endpoint_name("server"), "server");
        assert_eq!(s.unique_endpoint_name("client"), "client 2");
        s.endpoints
            .push(EndpointSpec::new("client 2", kind.clone()));
        assert_eq!(s.unique_endpoint_name("client"), "client 3");
        assert!(s.validate().is_ok());
        s.endpoints.push(EndpointSpec::new("client", kind));
        assert_eq!(
            s.validate().unwrap_err(),
            "two endpoints are named \"client\""
        );
    }
}
