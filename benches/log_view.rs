//! The traffic log view alone (`src/app/log_view.rs`) in a headless harness
//! (egui_kittest): one frame with 1,000 and with 1,000,000 rows, and filtering
//! 1,000,000 rows by a substring from scratch.
//!
//! `cargo bench --bench log_view` (ids `log_view/1000`, `log_view/1000000`,
//! `log_view/filter/1000000`)

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use egui_kittest::Harness;
use sockbench::app::Prefs;
use sockbench::app::log_view::LogView;
use sockbench::model::{EntryKind, NO_PEER, TrafficLog};

/// What the harness draws: the view over its log.
struct Shown {
    view: LogView,
    log: TrafficLog,
    prefs: Prefs,
    marks: HashMap<usize, usize>,
}

/// A log of `rows` entries as a server sees them: a connection event every
/// 1,000 rows, then requests and answers of its peer.
fn log_of(rows: u32) -> TrafficLog {
    let mut log = TrafficLog::new();
    let ep = log.endpoint_index("server");
    let now = Utc::now();
    let mut peer = NO_PEER;
    for i in 0..rows {
        if i % 1000 == 0 {
            let number = i / 1000 + 1;
            let remote = format!("127.0.0.1:{}", 40000 + number % 20000);
            peer = log.peer_index(ep, number, &remote);
            log.push(now, ep, peer, EntryKind::Accepted, remote.as_bytes());
            continue;
        }
        let kind = if i % 2 == 0 {
            EntryKind::Sent
        } else {
            EntryKind::Received
        };
        log.push(
            now,
            ep,
            peer,
            kind,
            format!("payload number {i}\r\n").as_bytes(),
        );
    }
    log
}

/// The window's fonts (as `App::new` sets them, in src/app/mod.rs): the
/// monospace font is the proportional family's last fallback, for → ← ●.
fn fonts() -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        family.push("Hack".to_owned());
    }
    fonts
}

fn harness(rows: u32) -> Harness<'static, Shown> {
    let shown = Shown {
        view: LogView::default(),
        log: log_of(rows),
        prefs: Prefs::default(),
        marks: HashMap::new(),
    };
    let mut harness = Harness::builder()
        .with_size([1400.0, 900.0])
        .with_context_setup(|ctx| ctx.set_fonts(fonts()))
        .build_ui_state(
            |ui, s: &mut Shown| {
                s.view.ui(ui, &s.log, &mut s.prefs, &s.marks);
            },
            shown,
        );
    // The view filters a budget of rows per frame: let it catch up first.
    for _ in 0..100 {
        harness.step();
        let s = harness.state();
        if s.view.rows().len() == s.log.len() {
            break;
        }
    }
    let s = harness.state();
    assert_eq!(
        s.view.rows().len(),
        s.log.len(),
        "the view did not catch up"
    );
    harness
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_view");
    for rows in [1_000u32, 1_000_000] {
        let mut harness = harness(rows);
        group.bench_function(BenchmarkId::from_parameter(rows), |b| {
            b.iter(|| harness.step())
        });
    }
    group.finish();
}

fn filter(c: &mut Criterion) {
    let rows = 1_000_000u32;
    let log = log_of(rows);
    let mut group = c.benchmark_group("log_view");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(20);
    // Matches 11 rows ("payload number 99999" and "…99999x"): every row is searched.
    group.bench_function(BenchmarkId::new("filter", rows), |b| {
        b.iter(|| {
            let mut view = LogView::default();
            view.search = "number 99999".into();
            let mut passes = 0;
            while !view.refresh(&log) {
                passes += 1;
                assert!(passes < 1000, "the filter never caught up");
            }
            view.rows().len()
        })
    });
    group.finish();
}

criterion_group! {
    name = log_view;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = frames, filter
}
criterion_main!(log_view);
