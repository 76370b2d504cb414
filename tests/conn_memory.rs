//! Memory held per idle TCP connection, counted by a counting allocator.
//!
//! Its own test binary (one test): the allocator counts every live byte of
//! the process, so nothing else may run beside it. 300 clients connect to an
//! echo server over loopback, each sends a line and reads its echo, then
//! stays open and quiet; the bytes the server holds for them, divided by 300,
//! must stay small: no read buffer kept while a connection is quiet, and a
//! connection's task and queue no larger than they need be. (Before this was
//! measured, a quiet connection held about 23 KiB: a 14 KiB task, a 2.3 KiB
//! queue block and an 8 KiB read buffer.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use sockbench::engine::{Command, EndpointId, Engine, EventKind, no_wake};
use sockbench::model::{AutoReply, Direction, EndpointKind, EndpointSpec};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only the
// live byte count is kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 300;
/// Bytes the server may hold for one quiet connection: a few KiB (its task,
/// its queue, its cancellation token; under 5 KiB in a debug build), far from
/// the 23 KiB held before.
const PER_CONNECTION: isize = 8192;
const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_connection_holds_little_memory() {
    let (engine, mut events) = Engine::start(&tokio::runtime::Handle::current(), no_wake());
    let id = EndpointId(1);
    engine.send(Command::Open {
        id,
        spec: Box::new(
            EndpointSpec::new(
                "echo",
                EndpointKind::TcpServer {
                    listen: "127.0.0.1:0".parse().unwrap(),
                },
            )
            .with_reply(AutoReply::Echo),
        ),
    });
    let deadline = Instant::now() + LIMIT;
    let local = loop {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("the server listens in time")
            .expect("the engine runs");
        if let EventKind::Listening { local } = event.kind {
            break local;
        }
    };
    // Settle the runtime's own first allocations (worker queues and the like).
    let warm = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(local).unwrap();
        s.write_all(b"warm\n").unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).unwrap();
    });
    warm.await.unwrap();
    let mut sent = 0;
    while sent < 1 {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("the warm-up echo is reported")
            .unwrap();
        if let EventKind::Traffic {
            dir: Direction::Sent,
            ..
        } = event.kind
        {
            sent += 1;
        }
    }
    // The warm-up connection closed: wait for its end.
    loop {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("the warm-up connection ends")
            .unwrap();
        if let EventKind::Closed { .. } = event.kind {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = LIVE.load(Ordering::Relaxed);

    let clients = tokio::task::spawn_blocking(move || {
        (0..CLIENTS)
            .map(|i| {
                let mut s = TcpStream::connect(local).unwrap();
                s.set_read_timeout(Some(LIMIT)).unwrap();
                let line = format!("client {i:04}\n");
                s.write_all(line.as_bytes()).unwrap();
                let mut back = vec![0u8; line.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, line.as_bytes());
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Every echo reported: the server is quiet now.
    let mut sent = 0;
    while sent < CLIENTS {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("every echo is reported in time")
            .unwrap();
        if let EventKind::Traffic {
            dir: Direction::Sent,
            ..
        } = event.kind
        {
            sent += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = LIVE.load(Ordering::Relaxed);
    let per_connection = (after - before) / CLIENTS as isize;
    assert!(
        per_connection <= PER_CONNECTION,
        "{per_connection} bytes held per quiet connection ({} in all), at most {PER_CONNECTION}",
        after - before
    );
    drop(clients);
    engine.shutdown().await;
}
