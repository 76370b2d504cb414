//! sockbench's entry point: parse the command line, build the runtime, then
//! launch the window or run a headless command.

use std::process::ExitCode;
use std::time::Duration;

use sockbench::{app, cli};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOCKBENCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let job = match cli::parse_and_prepare(std::env::args_os()) {
        Ok(job) => job,
        Err(status) => return ExitCode::from(status as u8),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sockbench-engine")
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
