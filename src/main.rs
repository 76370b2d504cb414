//! sockbench's entry point: parse the command line, build the runtime, then run
//! the window or a headless command.

use std::process::ExitCode;
use std::time::Duration;

use sockbench::cli;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOCKBENCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let request = match cli::parse(std::env::args_os()) {
        Ok(r) => r,
        Err(e) => {
            cli::report_usage_error(&e);
            return ExitCode::from(cli::EXIT_BAD_INPUT as u8);
        }
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
    let status = cli::run(request, &runtime);
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(status as u8)
}
