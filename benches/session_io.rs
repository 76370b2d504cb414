//! Saving and loading a session of 100,000 log entries (text and binary
//! payloads, connection events): `persist::save` / `persist::load` with the
//! file, and `persist::to_string` / `persist::from_str` in memory. Throughput
//! is the size of the session file.
//!
//! `cargo bench --bench session_io`

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sockbench::model::{EndpointKind, EndpointSpec, EntryKind, Session};
use sockbench::persist;

const ENTRIES: u32 = 100_000;

/// A recorded server and client: a connection every 100 entries, then
/// requests (text), answers (binary, 16 to 512 bytes) and a close.
fn session() -> Session {
    let mut session = Session::default();
    session.endpoints.push(EndpointSpec::new(
        "server",
        EndpointKind::TcpServer {
            listen: "127.0.0.1:7000".parse().unwrap(),
        },
    ));
    session.endpoints.push(EndpointSpec::new(
        "client",
        EndpointKind::TcpClient {
            remote: "127.0.0.1:7000".parse().unwrap(),
        },
    ));
    let log = &mut session.log;
    let server = log.endpoint_index("server");
    let client = log.endpoint_index("client");
    let start = Utc::now();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut peer = 0;
    let mut client_peer = 0;
    for i in 0..ENTRIES {
        let at = start + TimeDelta::microseconds(i as i64 * 37);
        if i % 100 == 0 {
            let number = i / 100 + 1;
            let remote = format!("127.0.0.1:{}", 40000 + number % 20000);
            peer = log.peer_index(server, number, &remote);
            client_peer = log.peer_index(client, 0, "127.0.0.1:7000");
            log.push(at, server, peer, EntryKind::Accepted, remote.as_bytes());
            continue;
        }
        if i % 100 == 99 {
            log.push(at, server, peer, EntryKind::PeerClosed, b"");
            continue;
        }
        if i % 2 == 1 {
            let request = format!("GET /item/{i} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            log.push(at, client, client_peer, EntryKind::Sent, request.as_bytes());
        } else {
            let len = 16 + (random() % 497) as usize;
            let answer: Vec<u8> = (0..len).map(|_| random() as u8).collect();
            log.push(at, server, peer, EntryKind::Sent, &answer);
        }
    }
    session
}

fn save_and_load(c: &mut Criterion) {
    let session = session();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.ron");
    persist::save(&path, &session).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let bytes = text.len() as u64;
    println!(
        "{ENTRIES} entries, {} MiB of payload bytes, a {:.1} MiB session file",
        session.log.data_bytes() / (1 << 20),
        bytes as f64 / (1 << 20) as f64
    );
    assert_eq!(
        persist::from_str(&text, Path::new("bench.ron"))
            .unwrap()
            .log
            .len(),
        session.log.len()
    );

    let mut group = c.benchmark_group("session_io");
    group.throughput(Throughput::Bytes(bytes));
    // Each iteration takes a good part of a second: few samples, flat sampling.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("save", |b| {
        b.iter(|| persist::save(&path, &session).unwrap())
    });
    group.bench_function("to_string", |b| {
        b.iter(|| persist::to_string(&session).unwrap().len())
    });
    group.bench_function("load", |b| {
        b.iter(|| persist::load(&path).unwrap().log.len())
    });
    group.bench_function("from_str", |b| {
        b.iter(|| {
            persist::from_str(&text, Path::new("bench.ron"))
                .unwrap()
                .log
                .len()
        })
    });
    group.finish();
}

criterion_group!(session_io, save_and_load);
criterion_main!(session_io);
