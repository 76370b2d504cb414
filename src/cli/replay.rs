//! `sockbench replay FILE`: play a recorded session again, as client or mock
//! server, and with `--check` compare what came back with the recording.

use std::time::Duration;

use tokio::time::Instant;

use super::drive::{Run, interrupted, say, stats_tick, until};
use super::{EXIT_MISMATCH, EXIT_OK, ReplayJob};
use crate::engine::{Command, EndpointId, ReplayOptions};
use crate::model::log::EntryKind;
use crate::model::replay::{EndpointPlan, Role, ignored_text, report};
use crate::run::replay::Check;

pub async fn replay(request: ReplayJob) -> i32 {
    let plans = request.plans;
    if !request.quiet {
        for line in describe(&plans) {
            note!("replaying {line}");
        }
    }
    for warning in &request.warnings {
        note!("{warning}");
    }
    if request.check && !request.quiet {
        let mut said: Vec<String> = Vec::new();
        for plan in &plans {
            for rule in &plan.ignore {
                let line = rule.to_string();
                if !said.contains(&line) {
                    note!("check ignores {line}");
                    said.push(line);
                }
            }
        }
    }
    for plan in &plans {
        let dropped: u64 = plan.conversations.iter().map(|c| c.dropped).sum();
        if dropped > 0 {
            note!(
                "warning: the recording of \"{}\" dropped {dropped} bytes of its payloads (beyond its log budget): the replay has only their first bytes{}",
                crate::model::escape_controls(plan.name()),
                if request.check {
                    ", and --check cannot compare those conversations"
                } else {
                    ""
                }
            );
        }
    }
    let mut run = Run::new(request.quiet, request.budget);
    run.json = request.json;
    // A socket path in use (or any file there) is an address in use, as for
    // `listen unix`: exit 3, said before any socket opens (the bind checks
    // again).
    if let Err(e) = crate::engine::replay::check_bind_paths(&plans) {
        run.fail(format!("{}: {}", request.file.display(), e.message));
        return run.finish(None).await;
    }
    if request.stats {
        let udp = plans.iter().all(|p| p.spec.kind.tag().is_datagram());
        run.enable_stats(udp);
    }
    let ids: Vec<EndpointId> = (1..=plans.len() as u64).map(EndpointId).collect();
    for (plan, id) in plans.iter().zip(&ids) {
        run.name(*id, plan.name());
        run.session.endpoints.push(plan.spec.clone());
    }
    let options = ReplayOptions::new(request.speed, request.timeout, false);
    // Mock servers first; clients once the servers listen.
    let (mut replay, first) = crate::run::Replay::new(
        plans,
        ids,
        options,
        request.check,
        std::time::Instant::now(),
    );
    let send = |run: &Run, commands: Vec<Command>| {
        for command in commands {
            run.send(command);
        }
    };
    // The stop signals are caught from before the first endpoint starts.
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    send(&run, first);

    let mut deadline: Option<Instant> = None;
    while !replay.is_done() {
        tokio::select! {
            event = run.events.recv() => {
                let Some(event) = event else { break };
                let row = run.record(&event);
                let failures = replay.failures().len();
                send(&run, replay.on_event(&event, row));
                for failure in &replay.failures()[failures..] {
                    run.fail(failure.what.clone());
                }
            }
            _ = until(replay.deadline().map(Instant::from_std)) => {
                // The servers never said they listen; the clients go anyway and report what they find.
                send(&run, replay.on_time(std::time::Instant::now()));
            }
            _ = until(deadline) => break,
            _ = stats_tick(&mut run.stats) => run.print_stats(),
            _ = &mut ctrl_c, if !replay.stopped_by_hand() => {
                send(&run, replay.stop(&[]));
                deadline = Some(Instant::now() + Duration::from_secs(4));
            }
        }
    }

    let json = request.json;
    // With --json, stdout carries only JSON objects: the human report goes to stderr.
    let human = |text: &str| {
        if json {
            note!("{text}");
        } else {
            say(text);
        }
    };
    let timestamp = crate::persist::format_timestamp(&crate::engine::now());
    let suite = request.file.display().to_string();
    replay.finish(&run.session.log);
    let plans = replay.plans();
    let (status, message) = match replay.outcome() {
        Some(Check::NotChecked(why)) => {
            let conversations: usize = plans.iter().map(|p| p.conversations.len()).sum();
            if json {
                say(super::json::check_summary(conversations, 0, Some(why)));
            }
            if let Some(path) = &request.junit {
                write_report(
                    &mut run,
                    path,
                    &super::junit::not_checked(&suite, &timestamp, plans, why),
                );
            }
            (EXIT_MISMATCH, Some(why.clone()))
        }
        Some(Check::Done {
            checks,
            mismatches,
            ignored,
        }) => {
            if json {
                for c in checks {
                    say(super::json::check(c));
                }
            }
            if let Some(path) = &request.junit {
                write_report(
                    &mut run,
                    path,
                    &super::junit::report(&suite, &timestamp, checks),
                );
            }
            if json {
                say(super::json::check_summary(
                    checks.len(),
                    mismatches.len(),
                    None,
                ));
            }
            if mismatches.is_empty() {
                let ignored = if ignored.is_empty() {
                    String::new()
                } else {
                    format!("; ignored: {}", ignored_text(ignored))
                };
                human(&format!(
                    "check: every conversation matched the recording ({} conversation{}{ignored})",
                    checks.len(),
                    if checks.len() == 1 { "" } else { "s" }
                ));
                (EXIT_OK, None)
            } else {
                human(report(mismatches).trim_end());
                for m in mismatches {
                    if let Some(row) = m.row {
                        run.session.log.push(
                            crate::engine::now(),
                            run.session.log.entry(row).map_or(0, |e| e.endpoint),
                            crate::model::NO_PEER,
                            EntryKind::Note,
                            format!(
                                "check: {}",
                                m.to_string().lines().next().unwrap_or_default()
                            )
                            .as_bytes(),
                        );
                    }
                }
                let first = mismatches[0].to_string();
                (
                    EXIT_MISMATCH,
                    Some(format!(
                        "the replay differs from the recording in {} conversation{}: {}",
                        mismatches.len(),
                        if mismatches.len() == 1 { "" } else { "s" },
                        first.lines().next().unwrap_or_default()
                    )),
                )
            }
        }
        Some(Check::Off) | None => (EXIT_OK, None),
    };
    run.finish_with(request.save.clone(), status, message).await
}

/// Writes the `--report` file (proved writable before the run); a failure
/// is the run's output error.
fn write_report(run: &mut Run, path: &std::path::Path, text: &str) {
    if let Err(e) = crate::persist::write_atomic(path, text.as_bytes()) {
        run.output_failure.get_or_insert(format!("--report: {e}"));
    }
}

/// The plans, checked, as the command line hands them over.
pub fn describe(plans: &[EndpointPlan]) -> Vec<String> {
    plans
        .iter()
        .map(|p| {
            format!(
                "{} \"{}\": {} conversation{}, {} payload{} to send",
                match p.role {
                    Role::Client => "client",
                    Role::Server => "mock server",
                },
                crate::model::escape_controls(p.name()),
                p.conversations.len(),
                if p.conversations.len() == 1 { "" } else { "s" },
                p.sends(),
                if p.sends() == 1 { "" } else { "s" },
            )
        })
        .collect()
}
