//! The pure part of sockbench, for the fuzz targets, plus the checks they share.
//!
//! `model`, `persist` and `export` are compiled here from the main crate's own
//! source files: they import nothing else of sockbench, and the fuzz build then
//! instruments a dozen crates instead of the window's five hundred. If one of
//! them starts to import `engine`, `app` or `cli`, this build says so at once.

#[path = "../../src/capture/mod.rs"]
pub mod capture;
#[path = "../../src/export/mod.rs"]
pub mod export;
#[path = "../../src/model/mod.rs"]
pub mod model;
#[path = "../../src/persist/mod.rs"]
pub mod persist;

pub mod check;
