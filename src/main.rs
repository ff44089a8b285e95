//! The `entente` binary: parse arguments, set up logging, run, exit with the command's code.

use std::io::{IsTerminal, Write};

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
    // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    let registry = tracing_subscriber::registry().with(entente::controller::metrics::throttle_layer());
    if json {
        registry.with(logs.json().with_filter(filter)).init();
    } else {
        registry.with(logs.with_filter(filter)).init();
    }
    let mut out = ClosedPipeIsQuiet { inner: std::io::stdout(), closed: false };
    let code = match entente::cli::run(cli, &mut out, &mut std::io::stderr()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            entente::cli::exit::ERROR
        }
    };
    std::process::exit(code);
}

/// Standard output that a closed pipe (`entente plan | head`) silences instead of failing: the command
/// runs to its end (an apply is never cut short by its reader going away) and exits with its own code.
struct ClosedPipeIsQuiet<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> Write for ClosedPipeIsQuiet<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.inner.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other if self.closed => other.or(Ok(())),
            other => other,
        }
    }
}
