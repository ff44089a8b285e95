//! The `entente` command line: argument definitions and the commands' wiring.

pub mod directory;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::tenant::BackendKind;
use crate::core::plan::PlanOptions;
use crate::directory::Directory;
use crate::directory::local::LocalDirectory;
use crate::engine::{self, ChangeResult, Routes};
use crate::manifest::{self, Manifests};

/// Where the embedded directory lives unless `--directory` says otherwise.
pub const DEFAULT_DIRECTORY: &str = ".entente/directory.db";

#[derive(Parser, Debug)]
#[command(name = "entente", version, about = "B2B identity across directory tenants, as code")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what apply would change. Exit 0: no changes; 1: changes pending; 2: error.
    Plan(RunArgs),
    /// Make the directory match the manifests. Exit 0: applied; 2: error or failed changes.
    Apply(RunArgs),
    /// Print every CustomResourceDefinition as YAML.
    Crds,
    /// Inspect the embedded local directory, or act on it as the outside world would.
    Directory {
        /// The local directory file.
        #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY, global = true)]
        directory: PathBuf,
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Manifest files or directories (multi-document YAML; directories are read recursively).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// The local directory file, for tenants whose backend is `local`.
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    /// Also delete managed objects that are no longer in the manifests (honours deletionPolicy).
    #[arg(long)]
    pub prune: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Exit codes shared by plan and apply.
pub mod exit {
    pub const OK: i32 = 0;
    pub const CHANGES_PENDING: i32 = 1;
    pub const ERROR: i32 = 2;
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    match cli.command {
        Command::Crds => {
            write!(out, "{}", crate::api::crds_yaml())?;
            Ok(exit::OK)
        }
        Command::Directory { directory, command } => {
            let dir = LocalDirectory::open(&directory).with_context(|| format!("opening directory {}", directory.display()))?;
            directory::run(&dir, command, out)?;
            Ok(exit::OK)
        }
        Command::Plan(args) => plan_or_apply(args, false, out, err).await,
        Command::Apply(args) => plan_or_apply(args, true, out, err).await,
    }
}

async fn plan_or_apply(args: RunArgs, apply: bool, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let manifests = match manifest::load(&args.paths) {
        Ok(m) => m,
        Err(e) => {
            write!(err, "{e}")?;
            return Ok(exit::ERROR);
        }
    };
    let routes = routes(&manifests, &args.directory)?;
    let options = PlanOptions { prune: args.prune };
    let plan = engine::plan_against(&manifests.desired, &routes, options).await;
    if !apply {
        match args.output {
            Output::Text => render::write_plan(out, &plan)?,
            Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&render::plan_json(&plan))?)?,
        }
        return Ok(if !plan.errors.is_empty() {
            exit::ERROR
        } else if plan.has_writes() {
            exit::CHANGES_PENDING
        } else {
            exit::OK
        });
    }
    let report = engine::apply(&plan, &routes).await;
    match args.output {
        Output::Text => render::write_apply(out, &plan, &report)?,
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&render::apply_json(&plan, &report))?)?,
    }
    let failed = report.results.iter().any(|r| matches!(r, ChangeResult::Failed { .. } | ChangeResult::Skipped { .. }));
    Ok(if failed || !plan.errors.is_empty() { exit::ERROR } else { exit::OK })
}

/// Picks each tenant's directory. The local directory is opened once, lazily, only if a tenant uses it.
fn routes(manifests: &Manifests, local_path: &Path) -> anyhow::Result<Routes> {
    let mut local: Option<Arc<dyn Directory>> = None;
    let mut routes = Routes::new();
    for (tenant_id, backend) in &manifests.backends {
        let route = match backend.kind {
            BackendKind::Local => {
                if local.is_none() {
                    let dir = LocalDirectory::open(local_path)
                        .with_context(|| format!("opening directory {}", local_path.display()))?;
                    local = Some(Arc::new(dir));
                }
                Ok(local.clone().expect("opened above"))
            }
            BackendKind::Graph => Err("the graph backend is not implemented yet: use spec.backend.type local".to_string()),
        };
        routes.insert(tenant_id.clone(), route);
    }
    Ok(routes)
}
