//! The `entente` binary: parse arguments, set up logging, run, exit with the command's code.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ENTENTE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = entente::cli::Cli::parse();
    let code = match entente::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            entente::cli::exit::ERROR
        }
    };
    std::process::exit(code);
}
