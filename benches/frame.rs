//! Frame time of the real window in a headless harness (egui_kittest): with a
//! million log rows, and while a UDP flood of about 100,000 datagrams a second
//! pours in. A frame here is `logic` (draining events) plus `ui` (layout).
//!
//! `cargo bench --bench frame`

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use egui_kittest::Harness;
use sockbench::app::{App, AppConfig};
use sockbench::model::{EndpointKind, EndpointSpec, EntryKind, NO_PEER, Session};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn window(runtime: &tokio::runtime::Runtime) -> Harness<'static, App> {
    let config = AppConfig {
        runtime: runtime.handle().clone(),
        sessions_dir: std::env::temp_dir().join("sockbench-bench-empty"),
        recovery_dir: None,
        open: None,
        native_dialogs: false,
        autosave_every: Duration::from_secs(3600),
    };
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |cc| App::new(cc, config))
}

fn million_rows(c: &mut Criterion) {
    let rt = runtime();
    let mut harness = window(&rt);
    {
        let log = &mut harness.state_mut().doc_mut().session.log;
        let ep = log.endpoint_index("bench");
        let now = Utc::now();
        for i in 0..1_000_000u32 {
            let kind = if i % 2 == 0 {
                EntryKind::Sent
            } else {
                EntryKind::Received
            };
            log.push(
                now,
                ep,
                NO_PEER,
                kind,
                format!("payload number {i}\r\n").as_bytes(),
            );
        }
        println!(
            "1,000,000 rows: {} MiB of entries, {} MiB of payload bytes",
            log.len() * std::mem::size_of::<sockbench::model::Entry>() / (1 << 20),
            log.data_bytes() / (1 << 20)
        );
    }
    // Let the view catch up with the log (the filter takes a budget per frame).
    for _ in 0..10 {
        harness.step();
    }
    c.bench_function("frame with 1,000,000 log rows", |b| {
        b.iter(|| harness.step())
    });
}

fn udp_flood(c: &mut Criterion) {
    let rt = runtime();
    let mut harness = window(&rt);
    let mut session = Session::default();
    session.endpoints.push(EndpointSpec::new(
        "flooded",
        EndpointKind::Udp {
            bind: Some("127.0.0.1:0".parse().unwrap()),
            remote: None,
        },
    ));
    {
        let app = harness.state_mut();
        let mut id = 1000;
        *app.doc_mut() = sockbench::app::document::Document::new(session, None, &mut || {
            id += 1;
            sockbench::engine::EndpointId(id)
        });
        app.run_command(sockbench::app::AppCommand::Start(0));
    }
    let started = Instant::now();
    let target = loop {
        harness.step();
        let log = &harness.state().doc().session.log;
        if let Some(i) = (0..log.len()).find(|&i| log.entry(i).unwrap().kind == EntryKind::Bound) {
            let text = log.detail(i);
            break text.parse::<std::net::SocketAddr>().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the socket did not bind"
        );
        std::thread::sleep(Duration::from_millis(5));
    };

    // About 100,000 datagrams a second: 1,000 every 10 ms.
    let running = Arc::new(AtomicBool::new(true));
    let flag = running.clone();
    let sender = std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sent = 0u64;
        let begin = Instant::now();
        while flag.load(Ordering::Relaxed) {
            for _ in 0..1000 {
                let _ = socket.send_to(b"flood datagram", target);
            }
            sent += 1000;
            let due = begin + Duration::from_millis(10 * sent / 1000);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (sent, begin.elapsed())
    });
    c.bench_function("frame during a 100,000/s UDP flood", |b| {
        b.iter(|| harness.step())
    });
    running.store(false, Ordering::Relaxed);
    let (sent, took) = sender.join().unwrap();
    let rows = harness.state().doc().session.log.len();
    println!(
        "flood: sent {sent} datagrams in {:.1} s ({:.0}/s); the window logged {rows} rows",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
}

criterion_group! {
    name = frames;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = million_rows, udp_flood
}
criterion_main!(frames);
