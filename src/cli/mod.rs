//! The `entente` command line: argument definitions and the commands' wiring.

pub mod directory;
mod explain;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::tenant::GraphBackend;
use crate::core::impact::ImpactLine;
use crate::core::plan::{PlanOptions, Prune};
use crate::core::policy::TenantPolicy;
use crate::directory::local::LocalDirectory;
use crate::engine::routes::{Backends, SecretSource};
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
    /// Can a user reach an application in a tenant? By which path, with MFA or consent prompts, decided by
    /// which setting of which tenant. Exit 0: yes; 1: no; 2: error.
    Explain(explain::ExplainArgs),
    /// Inspect the embedded local directory, or act on it as the outside world would.
    Directory {
        /// The local directory file.
        #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY, global = true)]
        directory: PathBuf,
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
    /// Run the Kubernetes controller: keep every Tenant, CrossTenantAccessPolicy and GuestInvitation in
    /// the cluster converged with its directory.
    Controller(crate::controller::ControllerArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Manifest files or directories (multi-document YAML; directories are read recursively).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// The local directory file, for tenants whose backend is `local`.
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    /// Where entente keeps ownership records for Graph tenants (default: `inventory.db` next to the directory file).
    /// Keep it: without it, entente adopts its objects again and never deletes what it holds no record for.
    #[arg(long, env = "ENTENTE_INVENTORY")]
    pub inventory: Option<PathBuf>,
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
    /// A pull-request comment (plan): changes, refusals and access impact.
    Markdown,
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
        Command::Controller(args) => {
            crate::controller::run(args).await?;
            Ok(exit::OK)
        }
        Command::Explain(args) => explain::run(args, out, err).await,
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
    let routes = routes(&manifests, &args.directory, args.inventory.as_deref());
    let options = PlanOptions { prune: if args.prune { Prune::All } else { Prune::Off } };
    let observed = engine::observe(&manifests.desired, &routes).await;
    let plan = crate::core::plan::plan(&manifests.desired, &observed, options);
    if !apply {
        let impact = access_impact(&manifests.desired, &observed);
        match args.output {
            Output::Text => render::write_plan(out, &plan, &impact)?,
            Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&render::plan_json(&plan, &impact))?)?,
            Output::Markdown => write!(out, "{}", render::plan_markdown(&plan, &impact))?,
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
        Output::Json | Output::Markdown => {
            writeln!(out, "{}", serde_json::to_string_pretty(&render::apply_json(&plan, &report))?)?
        }
    }
    let failed = report.results.iter().any(|r| matches!(r, ChangeResult::Failed { .. } | ChangeResult::Skipped { .. }));
    Ok(if failed || !plan.errors.is_empty() { exit::ERROR } else { exit::OK })
}

/// Who gains or loses access if the plan is applied: settings in force now versus after the plan.
fn access_impact(desired: &crate::core::model::DesiredState, observed: &crate::core::plan::Observed) -> Vec<ImpactLine> {
    let snapshots: Vec<_> = observed.values().filter_map(|o| o.as_ref().ok().and_then(Option::as_ref)).collect();
    let before: Vec<TenantPolicy> = snapshots.iter().map(|s| TenantPolicy::from_snapshot(s)).collect();
    let after = crate::core::plan::desired_policies(desired, observed);
    let guests = snapshots.iter().map(|s| (s.identity.tenant_id.clone(), s.guests.clone())).collect();
    crate::core::impact::access_impact(&before, &after, &guests)
}

/// CLI secrets: `ENTENTE_GRAPH_CLIENT_SECRET_<TENANT ID>` (dashes as underscores), else
/// `ENTENTE_GRAPH_CLIENT_SECRET`, else the file named by `ENTENTE_GRAPH_CLIENT_SECRET_FILE`.
pub(crate) struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn client_secret(&self, tenant_id: &str, graph: &GraphBackend) -> Result<Option<String>, String> {
        let per_tenant = format!("ENTENTE_GRAPH_CLIENT_SECRET_{}", tenant_id.replace('-', "_").to_ascii_uppercase());
        if let Some(v) = [per_tenant.as_str(), "ENTENTE_GRAPH_CLIENT_SECRET"].iter().find_map(|k| std::env::var(k).ok()) {
            return Ok(Some(v));
        }
        if let Ok(file) = std::env::var("ENTENTE_GRAPH_CLIENT_SECRET_FILE") {
            return std::fs::read_to_string(&file)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| format!("cannot read {file}: {e}"));
        }
        if graph.federated_token_file.is_some() {
            return Ok(None);
        }
        Err(format!("no client secret for tenant {tenant_id}: set {per_tenant} or ENTENTE_GRAPH_CLIENT_SECRET(_FILE)"))
    }
}

/// Picks each tenant's directory.
fn routes(manifests: &Manifests, local_path: &Path, inventory: Option<&Path>) -> Routes {
    let mut backends = Backends::new(local_path);
    if let Some(path) = inventory {
        backends = backends.with_inventory_path(path);
    }
    manifests.backends.iter().map(|(id, backend)| (id.clone(), backends.route(id, backend, &EnvSecrets))).collect()
}
