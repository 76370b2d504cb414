//! sockbench's entry point: parse the command line, build the runtime, then
//! launch the window or run a headless command.

use std::process::ExitCode;
use std::time::Duration;

use sockbench::{app, cli};

/// The name of the runtime's worker threads (the engine's tasks run there).
const ENGINE_THREAD: &str = "sockbench-engine";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOCKBENCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_ansi(false)
        .with_writer(|| EscapedStderr)
        .init();

    // A panic is a bug; it must never print a screenful or a second error
    // line. The engine catches its tasks' panics and reports each as its
    // endpoint's failure (one line, exit 3), so on its threads the hook is
    // silent; anywhere else it says one escaped line.
    std::panic::set_hook(Box::new(|info| {
        if std::thread::current().name() == Some(ENGINE_THREAD) {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error{place}: {} (please report it)",
            cli::escape(&message)
        );
    }));

    sockbench::engine::keep_freed_memory();
    // Before any socket: one descriptor per peer, thousands of peers.
    if let Some((soft, hard)) = sockbench::engine::raise_open_files_limit() {
        tracing::debug!("open files limit: {soft} (hard {hard})");
    }
    let job = match cli::parse_and_prepare(std::env::args_os()) {
        Ok(job) => job,
        Err(status) => return ExitCode::from(status as u8),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(ENGINE_THREAD)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the network runtime: {e}");
            return ExitCode::from(cli::EXIT_NETWORK as u8);
        }
    };
    let status = match job {
        Ok(job) => cli::run(job, &runtime),
        Err(file) => match app::launch(runtime.handle().clone(), file) {
            Ok(()) => cli::EXIT_OK,
            Err(e) => {
                eprintln!("error: {}", cli::escape(&e.to_string()));
                cli::EXIT_BAD_INPUT
            }
        },
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(status as u8)
}

/// Diagnostics from libraries (rustls warnings, say) can carry text a peer
/// chose: each goes to stderr as one line, control characters escaped.
struct EscapedStderr;

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = format!("{}{newline}", cli::escape(body));
        // Never fail the program over a diagnostic: a closed stderr drops it.
        let _ = std::io::stderr().write_all(line.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
