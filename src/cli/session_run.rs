//! `sockbench run FILE`: a session's endpoints on the engine without the
//! window, as its "Start all" starts them — servers (with their reply rules),
//! UDP sockets and relays at once, clients once the servers listen — every
//! event printed as `connect` and `listen` print it, until `--for` passes,
//! Ctrl+C, or every endpoint has stopped. Endpoints with scheduled sends send
//! them on each connection (see [`crate::run::Scheduler`]); a payload that
//! cannot be made is an error line and fails the run. The run's log is saved
//! with the whole session on `--save`.

use std::collections::HashSet;

use super::RunJob;
use super::drive::{Run, STOP_GRACE, interrupted, later, stats_tick, until, wildcard_warning};
use crate::engine::{CLOSE_GRACE, Command, EndpointId, EventKind};
use crate::model::{EndpointKind, EndpointSpec, KindTag, escape_controls};
use crate::run::schedule::Action;
use crate::run::{Launch, Scheduler, Schedules};

pub async fn run(job: RunJob) -> i32 {
    let RunJob {
        session,
        selected,
        run_for,
        save,
        quiet,
        json,
        stats,
        budget,
    } = job;
    let mut run = Run::new(quiet, budget);
    run.json = json;
    run.session = *session;
    // Engine ids 1, 2, … for the chosen endpoints, in the session's order.
    let specs: Vec<(EndpointId, EndpointSpec)> = selected
        .iter()
        .enumerate()
        .filter_map(|(n, &i)| {
            let spec = run.session.endpoints.get(i)?.clone();
            Some((EndpointId(n as u64 + 1), spec))
        })
        .collect();
    for (id, spec) in &specs {
        if spec.kind.tag() == KindTag::Relay {
            run.name_relay(*id, &spec.name);
        } else {
            run.name(*id, &spec.name);
        }
    }
    if stats {
        let udp = specs.iter().all(|(_, s)| s.kind.tag().is_datagram());
        run.enable_stats(udp);
    }
    // The scheduled sends of every endpoint (the file was checked when read:
    // library names are found).
    let mut schedules = Schedules::new();
    for (id, spec) in &specs {
        match Scheduler::new(*id, &spec.sends, &run.session.library) {
            Ok(Some(scheduler)) => schedules.start(scheduler),
            Ok(None) => {}
            Err(why) => {
                note!(
                    "error: \"{}\": {}",
                    escape_controls(&spec.name),
                    escape_controls(&why)
                );
                return super::EXIT_BAD_INPUT;
            }
        }
    }
    let spec_of = |id: EndpointId| specs.iter().find(|(i, _)| *i == id).map(|(_, s)| s);
    let name_of = |id: EndpointId| {
        spec_of(id)
            .map(|s| escape_controls(&s.name).into_owned())
            .unwrap_or_default()
    };
    let open = |run: &Run, ids: Vec<EndpointId>| {
        let batch: Vec<Command> = ids
            .into_iter()
            .filter_map(|id| {
                Some(Command::Open {
                    id,
                    spec: Box::new(spec_of(id)?.clone()),
                })
            })
            .collect();
        if !batch.is_empty() {
            run.send(Command::Batch(batch));
        }
    };

    let (mut launch, first) = Launch::new(
        specs.iter().map(|(id, s)| (*id, s.kind.tag().is_client())),
        std::time::Instant::now(),
    );
    // Every endpoint, started or waiting its turn, until it stops.
    let mut running: HashSet<EndpointId> = specs.iter().map(|(id, _)| *id).collect();
    open(&run, first);

    let mut deadline = run_for.map(later);
    let mut closing = false;
    // On stop, clients close first and servers once their clients are gone
    // (or CLOSE_GRACE has passed): a server closing first would end its
    // clients' connections under them, and the log would tell it backwards.
    let mut servers_close: Option<tokio::time::Instant> = None;
    let is_client = |id: &EndpointId| spec_of(*id).is_some_and(|s| s.kind.tag().is_client());
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    while !running.is_empty() {
        let mut close = false;
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                run.record(&event);
                if !closing {
                    schedules.on_event(&event, std::time::Instant::now());
                }
                if !closing {
                    let due = launch.on_event(event.id, &event.kind);
                    open(&run, due);
                }
                match &event.kind {
                    EventKind::Listening { local } | EventKind::Bound { local } => {
                        // Port 0 picks a port: stderr always says which, and
                        // of which endpoint, even with --quiet or --json.
                        note!("listening on {local} ({})", name_of(event.id));
                        let generated_certificate = matches!(
                            spec_of(event.id).map(|s| &s.kind),
                            Some(EndpointKind::TlsServer { tls, .. }) if tls.cert.is_none()
                        ) || matches!(
                            spec_of(event.id).map(|s| &s.kind),
                            Some(EndpointKind::Relay { tls_server, .. }) if tls_server.cert.is_none()
                        );
                        if let Some(warning) = wildcard_warning(*local, generated_certificate) {
                            note!("{warning}");
                        }
                    }
                    // An endpoint's own failure (it could not resolve, bind,
                    // listen or connect) fails the run; a peer that misbehaves
                    // is a server's everyday business.
                    EventKind::Failed { peer: None, error } => {
                        run.fail(format!("\"{}\": {error}", name_of(event.id)));
                    }
                    EventKind::Reset { .. }
                        if spec_of(event.id).is_some_and(|s| s.kind.tag().is_client()) =>
                    {
                        run.fail(format!(
                            "\"{}\": connection reset: the peer reset the connection",
                            name_of(event.id)
                        ));
                    }
                    EventKind::Stopped => {
                        running.remove(&event.id);
                    }
                    _ => {}
                }
            }
            _ = until(launch.deadline().map(tokio::time::Instant::from_std)), if !closing => {
                // A server never said it listens: its clients go anyway and
                // report what they find.
                let due = launch.on_time(std::time::Instant::now());
                open(&run, due);
            }
            _ = until(schedules.next_wake().map(tokio::time::Instant::from_std)), if !closing => {}
            _ = until(deadline) => {
                if closing {
                    break;
                }
                close = true;
            }
            _ = until(servers_close), if servers_close.is_some() => {}
            _ = stats_tick(&mut run.stats) => run.print_stats(),
            _ = &mut ctrl_c, if !closing => close = true,
        }
        if !closing {
            for action in schedules.due(std::time::Instant::now()) {
                match action {
                    Action::Send(command) => run.send(command),
                    Action::NotSent(event) => {
                        run.record(&event);
                        if let EventKind::Failed { error, .. } = &event.kind {
                            run.fail(format!("\"{}\": {}", name_of(event.id), error.message));
                        }
                    }
                }
            }
        }
        if close && !closing {
            closing = true;
            // Clients not started yet never will be.
            for id in launch.cancel() {
                running.remove(&id);
            }
            let clients: Vec<Command> = running
                .iter()
                .filter(|id| is_client(id))
                .map(|id| Command::Close {
                    id: *id,
                    abort: false,
                })
                .collect();
            run.send(Command::Batch(clients));
            servers_close = Some(later(CLOSE_GRACE));
            deadline = Some(later(STOP_GRACE + CLOSE_GRACE + CLOSE_GRACE));
        }
        if let Some(at) = servers_close
            && (tokio::time::Instant::now() >= at || !running.iter().any(is_client))
        {
            servers_close = None;
            let servers: Vec<Command> = running
                .iter()
                .filter(|id| !is_client(id))
                .map(|id| Command::Close {
                    id: *id,
                    abort: false,
                })
                .collect();
            run.send(Command::Batch(servers));
        }
    }
    run.finish(save).await
}
