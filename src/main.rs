//! The `entente` binary: parse arguments, set up logging, run, exit with the command's code.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let cli = entente::cli::Cli::parse();
    // The controller logs at info by default, optionally as JSON; the other commands at warn, as text.
    let (level, json) = match &cli.command {
        entente::cli::Command::Controller(args) => ("info", args.log_format == entente::controller::LogFormat::Json),
        _ => ("warn", false),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ENTENTE_LOG").unwrap_or_else(|_| EnvFilter::new(level)))
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
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
