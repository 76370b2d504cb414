//! The layer between the engine and the front ends: what the window and the
//! command line both need to run endpoints, without I/O of its own.
//!
//! # Layout
//!
//! - [`Recorder`]: engine events become log rows. It keeps the one map from
//!   the engine's endpoint ids to the log's endpoints (peers are numbered by
//!   the log as rows arrive) and the totals a summary or a status bar shows,
//!   counting only payloads written whole.
//! - [`Launch`]: servers before clients. Servers (and UDP sockets, relays)
//!   start at once; clients once every server listens, or when
//!   [`crate::engine::SERVERS_GRACE`] has passed and they go anyway.
//! - [`Scheduler`]: an endpoint's scheduled sends. Fed the endpoint's
//!   connection events and the time, it returns the sends due and when it
//!   next needs waking ([`Schedules`]: one per running endpoint).
//! - [`Replay`]: a replay run without I/O, driven by the window's replay bar
//!   and `sockbench replay` alike: the plans and their ids, the launch, what
//!   came back, the failures that count, stop by hand, and at the end the
//!   check (or why there is none).
//!
//! `run` imports `engine` and `model`, never `app` or `cli`: both of those sit
//! on top of it.

pub mod launch;
pub mod recorder;
pub mod replay;
pub mod schedule;

pub use launch::Launch;
pub use recorder::Recorder;
pub use replay::Replay;
pub use schedule::{Scheduler, Schedules};
