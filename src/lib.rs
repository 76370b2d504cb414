//! sockbench: a desktop workbench for sockets.
//!
//! # Layout
//!
//! - [`model`]: pure data: the payload notation, addresses, endpoint settings,
//!   the traffic log store and the session document, replay plans and their
//!   check (with ignore rules, [`model::ignore`]). No tokio, no egui.
//! - [`persist`]: session files (RON, format 1), loaded with errors that name the
//!   line and column, saved atomically.
//! - [`engine`]: real sockets on tokio. Callers send [`engine::Command`]s and read
//!   [`engine::Event`]s; the engine never waits on its callers and never imports egui.
//! - [`export`]: a session as a Python program, a Mermaid sequence diagram, CSV,
//!   a pcapng capture for Wireshark, an `xxd`-style hex dump.
//! - [`capture`]: pcap and pcapng captures turned into sessions (`sockbench import`):
//!   packets sliced, TCP reassembled, conversations listed.
//! - [`run`]: between the engine and the front ends: a [`run::Recorder`] turns
//!   events into log rows, a [`run::Launch`] starts servers before clients.
//! - [`app`]: the workbench window (eframe/egui) on the same engine.
//! - [`cli`]: the headless face: `connect`, `listen`, `check`, on the same engine.
//!
//! `main.rs` only parses the command line and picks one of these.

pub mod app;
pub mod capture;
pub mod cli;
pub mod engine;
pub mod export;
pub mod model;
pub mod persist;
pub mod run;
