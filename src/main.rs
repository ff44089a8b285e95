//! The `entente` binary: parse arguments, set up logging, run, exit with the command's code.

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[tokio::main]
async fn main() {
    let cli = entente::cli::Cli::parse();
    // The controller logs at info by default, optionally as JSON; the other commands at warn, as text.
    let (level, json) = match &cli.command {
        entente::cli::Command::Controller(args) => ("info", args.log_format == entente::controller::LogFormat::Json),
        _ => ("warn", false),
    };
    // Logs go through `EnvFilter`; the throttling-metrics layer has its own filter (the Graph backend's
    // retry events at debug), so it measures throttling whatever the log level.
    let filter = EnvFilter::try_from_env("ENTENTE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(entente::controller::metrics::throttle_layer());
    if json {
        registry.with(logs.json().with_filter(filter)).init();
    } else {
        registry.with(logs.with_filter(filter)).init();
    }
    let code = match entente::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            entente::cli::exit::ERROR
        }
    };
    std::process::exit(code);
}
