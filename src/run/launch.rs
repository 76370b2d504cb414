//! Servers before clients: the order "Start all", a replay and `sockbench run`
//! start a session's endpoints in. Pure bookkeeping: the caller opens what
//! this says to open and feeds it the events and the time.

use std::time::Instant;

use crate::engine::{EndpointId, EventKind, Operation, SERVERS_GRACE};

/// One start of several endpoints: the servers it waits for, the clients
/// still to start, and when the clients go anyway.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Servers started and not yet listening (nor failed, nor stopped).
    pending_servers: Vec<EndpointId>,
    /// Clients not started yet, in the order given.
    waiting_clients: Vec<EndpointId>,
    /// When the clients start even though a server has not said it listens.
    deadline: Instant,
}

impl Launch {
    /// Plans the start of `endpoints` (each with whether it is a client that
    /// needs a server up first) at `now`. Returns the launch and the ids to
    /// open at once: every server, and the clients too when there is no server.
    pub fn new(
        endpoints: impl IntoIterator<Item = (EndpointId, bool)>,
        now: Instant,
    ) -> (Launch, Vec<EndpointId>) {
        let mut launch = Launch {
            pending_servers: Vec::new(),
            waiting_clients: Vec::new(),
            deadline: now.checked_add(SERVERS_GRACE).unwrap_or(now),
        };
        for (id, client) in endpoints {
            if client {
                launch.waiting_clients.push(id);
            } else {
                launch.pending_servers.push(id);
            }
        }
        let mut now_open = launch.pending_servers.clone();
        now_open.extend(launch.due());
        (launch, now_open)
    }

    /// Takes an event of endpoint `id`; returns the clients to open now.
    pub fn on_event(&mut self, id: EndpointId, kind: &EventKind) -> Vec<EndpointId> {
        let settled = match kind {
            EventKind::Listening { .. }
            | EventKind::Bound { .. }
            | EventKind::UnixListening { .. }
            | EventKind::UnixBound { .. }
            | EventKind::Stopped => true,
            // A server that cannot start will not listen: its clients go now
            // and report what they find.
            EventKind::Failed { peer: None, error } => matches!(
                error.operation,
                Operation::Resolve | Operation::Bind | Operation::Listen | Operation::Configure
            ),
            _ => false,
        };
        if settled {
            self.pending_servers.retain(|s| *s != id);
        }
        self.due()
    }

    /// The clients to open at `now` (all of them once the grace time passed).
    pub fn on_time(&mut self, now: Instant) -> Vec<EndpointId> {
        if now >= self.deadline {
            self.pending_servers.clear();
        }
        self.due()
    }

    /// When [`Launch::on_time`] next has something to do, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.waiting_clients.is_empty()).then_some(self.deadline)
    }

    /// Forgets endpoint `id` (stopped or removed before its turn); returns
    /// the clients that no longer wait for anything.
    pub fn forget(&mut self, id: EndpointId) -> Vec<EndpointId> {
        self.pending_servers.retain(|s| *s != id);
        self.waiting_clients.retain(|c| *c != id);
        self.due()
    }

    /// Gives up the clients not started yet, and returns them.
    pub fn cancel(&mut self) -> Vec<EndpointId> {
        self.pending_servers.clear();
        std::mem::take(&mut self.waiting_clients)
    }

    /// Nothing is left to start.
    pub fn is_done(&self) -> bool {
        self.waiting_clients.is_empty()
    }

    fn due(&mut self) -> Vec<EndpointId> {
        if self.pending_servers.is_empty() {
            std::mem::take(&mut self.waiting_clients)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NetError;
    use crate::model::ErrorKind;
    use std::time::Duration;

    const S1: EndpointId = EndpointId(1);
    const S2: EndpointId = EndpointId(2);
    const C1: EndpointId = EndpointId(3);
    const C2: EndpointId = EndpointId(4);

    fn listening() -> EventKind {
        EventKind::Listening {
            local: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn clients_start_once_every_server_listens() {
        let now = Instant::now();
        let (mut launch, first) =
            Launch::new([(C1, true), (S1, false), (S2, false), (C2, true)], now);
        assert_eq!(first, vec![S1, S2]);
        assert_eq!(launch.deadline(), Some(now + SERVERS_GRACE));
        assert!(launch.on_event(S1, &listening()).is_empty());
        // Another endpoint's events, or a server's other events, start nothing.
        assert!(launch.on_event(C1, &listening()).is_empty());
        assert!(
            launch
                .on_event(
                    S2,
                    &EventKind::Note {
                        peer: None,
                        text: "x".into()
                    }
                )
                .is_empty()
        );
        assert_eq!(launch.on_event(S2, &listening()), vec![C1, C2]);
        assert!(launch.is_done());
        assert_eq!(launch.deadline(), None);
        assert!(
            launch.on_event(S2, &EventKind::Stopped).is_empty(),
            "each client once"
        );
    }

    #[test]
    fn without_servers_clients_start_at_once() {
        let (launch, first) = Launch::new([(C1, true), (C2, true)], Instant::now());
        assert_eq!(first, vec![C1, C2]);
        assert!(launch.is_done());
        let (launch, first) = Launch::new([(S1, false)], Instant::now());
        assert_eq!(first, vec![S1]);
        assert!(launch.is_done());
    }

    #[test]
    fn a_server_that_fails_or_stops_or_is_late_lets_the_clients_go() {
        let now = Instant::now();
        let (mut launch, _) = Launch::new([(S1, false), (C1, true)], now);
        // A peer's failure is not the server's.
        let peer_failed = EventKind::Failed {
            peer: Some(1),
            error: NetError::new(ErrorKind::Reset, Operation::Receive, "reset"),
        };
        assert!(launch.on_event(S1, &peer_failed).is_empty());
        let failed = EventKind::Failed {
            peer: None,
            error: NetError::new(ErrorKind::AddressInUse, Operation::Bind, "in use"),
        };
        assert_eq!(launch.on_event(S1, &failed), vec![C1]);

        let (mut launch, _) = Launch::new([(S1, false), (C1, true)], now);
        assert_eq!(launch.on_event(S1, &EventKind::Stopped), vec![C1]);

        let (mut launch, _) = Launch::new([(S1, false), (C1, true)], now);
        assert!(launch.on_time(now + Duration::from_secs(1)).is_empty());
        assert_eq!(launch.on_time(now + SERVERS_GRACE), vec![C1]);
    }

    #[test]
    fn forgotten_and_cancelled_clients_never_start() {
        let (mut launch, _) = Launch::new([(S1, false), (C1, true), (C2, true)], Instant::now());
        assert!(launch.forget(C1).is_empty());
        assert_eq!(launch.cancel(), vec![C2]);
        assert!(launch.on_event(S1, &listening()).is_empty());
        let (mut launch, _) = Launch::new([(S1, false), (C1, true)], Instant::now());
        // Forgetting the server it waited for frees the client.
        assert_eq!(launch.forget(S1), vec![C1]);
    }
}
