//! The `entente` command line: argument definitions and the commands' wiring.

mod access_requests;
pub mod directory;
mod explain;
mod recycle_bin;
mod render;
mod sync;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::tenant::GraphBackend;
use crate::core::impact::ImpactLine;
use crate::core::plan::{PlanOptions, Prune, PruneGuard};
use crate::core::policy::TenantPolicy;
use crate::directory::local::LocalDirectory;
use crate::engine::routes::{Backends, SecretSource};
use crate::engine::sync::{JobOutcome, Selection, run_jobs};
use crate::engine::{self, ChangeResult, Routes};
use crate::manifest::{self, Manifests};
use crate::sync::RunOptions;

/// `--version`: the crate's version and the commit it was built from (`build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ENTENTE_COMMIT"), ")");

/// Where the embedded directory lives unless `--directory` says otherwise.
pub const DEFAULT_DIRECTORY: &str = ".entente/directory.db";

#[derive(Parser, Debug)]
#[command(name = "entente", version = VERSION, about = "B2B identity across directory tenants, as code")]
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
    /// Run cross-tenant sync jobs now, or show what they remember.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
    /// Run the Kubernetes controller: keep every entente object in the cluster (all ten kinds) converged
    /// with its directory.
    Controller(crate::controller::ControllerArgs),
    /// Print a shell completion script: `entente completions bash > /etc/bash_completion.d/entente`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `entente man | man -l -`.
    Man,
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
    /// Where sync jobs keep their state (default: `sync.db` next to the directory file).
    #[arg(long, env = "ENTENTE_SYNC_STATE")]
    pub state: Option<PathBuf>,
    /// Also delete managed objects that are no longer in the manifests (honours deletionPolicy).
    #[arg(long)]
    pub prune: bool,
    /// With --prune: the most objects one tenant may lose; more refuses the whole plan (default: 10, or
    /// 10 % of the tenant's managed objects when that is more).
    #[arg(long, value_name = "N")]
    pub max_prune: Option<usize>,
    /// Do not run (apply) or preview (plan) the SyncJobs; `entente sync run` runs them on their own.
    #[arg(long)]
    pub no_sync: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// plan: also list the objects that are already as the manifests say (the summary always counts them).
    #[arg(long)]
    pub show_unchanged: bool,
    /// apply: how long to wait for another writer of the same tenants (`30s`, `5m`) before failing.
    #[arg(long, value_parser = parse_wait, default_value = "5m")]
    pub lock_timeout: std::time::Duration,
}

/// `--lock-timeout`: a duration such as `30s`, `5m` or `0s` (do not wait).
pub(crate) fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    if matches!(s.trim(), "0" | "0s") {
        return Ok(std::time::Duration::ZERO);
    }
    crate::core::validate::duration(s)
}

/// Takes the writer locks of the manifests' tenants (all of them, or only `only`), telling `err` who
/// another writer is while waiting; `None` (after writing why) when the wait ran out.
pub(crate) async fn lock_tenants(
    manifests: &Manifests,
    backends: &Backends,
    only: Option<&std::collections::BTreeSet<String>>,
    command: &str,
    wait: std::time::Duration,
    err: &mut dyn Write,
) -> anyhow::Result<Option<engine::writer_lock::WriterLocks>> {
    let tenants = manifests
        .backends
        .iter()
        .filter(|(id, _)| only.is_none_or(|o| o.contains(&id.to_ascii_lowercase())))
        .map(|(id, b)| (id.as_str(), b));
    // Said at once, not after the wait: the user must know why nothing is happening.
    let locked = backends
        .lock_writers(tenants, command, wait, |tenant, holder| {
            let who = holder.map_or_else(|| "another entente process".to_string(), |h| h.to_string());
            let _ = writeln!(err, "waiting up to {wait:?} for tenant {tenant}: {who} is writing it");
            let _ = err.flush();
        })
        .await;
    match locked {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(None)
        }
    }
}

/// How plan and apply print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
    /// A pull-request comment (plan only): changes, refusals and access impact.
    Markdown,
}

/// How the other commands that report a result (explain, sync) print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Report {
    Text,
    Json,
    Yaml,
}

/// A structured answer as JSON or, with `yaml`, YAML: the same document either way.
pub(crate) fn write_data(out: &mut dyn Write, yaml: bool, v: &serde_json::Value) -> anyhow::Result<()> {
    if yaml {
        write!(out, "{}", serde_saphyr::to_string(v)?)?;
    } else {
        writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    }
    Ok(())
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "entente", out);
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(out)?;
            Ok(exit::OK)
        }
        Command::Directory { directory, command } => {
            let dir = if command.is_read_only() && !directory.exists() {
                LocalDirectory::open_in_memory()
            } else {
                LocalDirectory::open(&directory)
            }
            .with_context(|| format!("opening directory {}", directory.display()))?;
            match directory::run(&dir, command, out) {
                Ok(()) => Ok(exit::OK),
                Err(e) if e.downcast_ref::<access_requests::Denied>().is_some() => {
                    writeln!(err, "{e}")?;
                    Ok(exit::CHANGES_PENDING)
                }
                Err(e) => Err(e),
            }
        }
        Command::Controller(args) => {
            crate::controller::run(args).await?;
            Ok(exit::OK)
        }
        Command::Explain(args) => explain::run(args, out, err).await,
        Command::Sync { command } => sync::run(command, out, err).await,
        Command::Plan(args) => plan_or_apply(args, false, out, err).await,
        Command::Apply(args) => plan_or_apply(args, true, out, err).await,
    }
}

async fn plan_or_apply(args: RunArgs, apply: bool, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if apply && args.output == Output::Markdown {
        writeln!(err, "error: -o markdown is a plan's pull-request comment; apply prints -o text, json or yaml")?;
        return Ok(exit::ERROR);
    }
    let Some(mut manifests) = load_manifests(&args.paths, err)? else { return Ok(exit::ERROR) };
    // Identity provider and API connector secrets (R17) come from the environment, never the manifests.
    manifest::identity::resolve_secrets_from_env(&mut manifests.desired);
    // Branding images are compared and uploaded by content: files relative to each Tenant's manifest, https URLs fetched.
    let files = std::mem::take(&mut manifests.tenant_files);
    manifest::images::resolve_images(&mut manifests.desired, manifest::images::FileBase::ManifestFiles(&files)).await;
    let backends = backends(&args.directory, args.inventory.as_deref(), args.state.as_deref());
    let backends = if apply { backends } else { backends.preview() };
    // One writer per tenant: held from before the directory is read until the last write, so a
    // concurrent apply plans against what this one wrote. `plan` writes nothing and takes none.
    let _locks = if apply {
        match lock_tenants(&manifests, &backends, None, "entente apply", args.lock_timeout, err).await? {
            Some(l) => Some(l),
            None => return Ok(exit::ERROR),
        }
    } else {
        None
    };
    let routes = routes_from(&manifests, &backends);
    let prune_guard = args.max_prune.map_or(PruneGuard::Default, PruneGuard::AtMost);
    let options = PlanOptions { prune: if args.prune { Prune::All } else { Prune::Off }, prune_guard };
    let observed = engine::observe(&manifests.desired, &routes).await;
    let plan = crate::core::plan::plan(&manifests.desired, &observed, options);
    let names = sync::tenant_names(&manifests.desired);
    let with_sync = !args.no_sync && !manifests.desired.sync_jobs.is_empty();
    if !apply {
        let impact = access_impact(&manifests.desired, &observed, &plan);
        // Sync jobs are previewed against the settings the plan brings (a dry run: nothing is remembered).
        let jobs = if with_sync {
            let dry = RunOptions { dry_run: true, ..RunOptions::default() };
            sync_jobs(&manifests, &routes, &backends, &dry, Some(&observed)).await
        } else {
            vec![]
        };
        match args.output {
            Output::Text => {
                render::write_plan(out, &plan, &impact, args.show_unchanged)?;
                sync::write_outcomes(out, &jobs, &names)?;
                writeln!(out, "\n{}", render::plan_footer(&plan, sync_totals(&jobs)))?;
            }
            Output::Json | Output::Yaml => {
                let mut v = render::plan_json(&plan, &impact);
                v["syncJobs"] = sync::outcomes_json(&jobs);
                write_data(out, args.output == Output::Yaml, &v)?
            }
            Output::Markdown => {
                write!(out, "{}{}", render::plan_markdown(&plan, &impact), sync::outcomes_markdown(&jobs, &names))?
            }
        }
        return Ok(if !plan.errors.is_empty() || jobs.iter().any(|j| matches!(j, JobOutcome::Error { .. })) {
            exit::ERROR
        } else if plan.has_writes() || jobs.iter().any(|j| j.writes() > 0) {
            exit::CHANGES_PENDING
        } else {
            exit::OK
        });
    }
    // All or nothing: one object that cannot be planned means nothing is written.
    if !plan.errors.is_empty() {
        match args.output {
            Output::Text => render::write_refused_apply(out, &plan)?,
            Output::Json | Output::Yaml | Output::Markdown => {
                let mut v = render::apply_json(&plan, &engine::ApplyReport::default());
                v["applied"] = serde_json::json!(false);
                write_data(out, args.output == Output::Yaml, &v)?
            }
        }
        return Ok(exit::ERROR);
    }
    let report = engine::apply(&plan, &routes).await;
    let failed = report.results.iter().any(|r| matches!(r, ChangeResult::Failed { .. } | ChangeResult::Skipped { .. }));
    // Sync jobs run once their tenants' settings are in place, against what the directories now hold.
    let jobs =
        if with_sync && !failed { sync_jobs(&manifests, &routes, &backends, &RunOptions::default(), None).await } else { vec![] };
    match args.output {
        Output::Text => {
            let counts = render::write_apply(out, &plan, &report)?;
            sync::write_outcomes(out, &jobs, &names)?;
            if with_sync && failed {
                writeln!(out, "Sync jobs not run: a change above failed.")?;
            }
            writeln!(out, "\n{}", render::apply_footer(&plan, &report, counts, sync_totals(&jobs)))?;
        }
        Output::Json | Output::Yaml | Output::Markdown => {
            let mut v = render::apply_json(&plan, &report);
            v["syncJobs"] = sync::outcomes_json(&jobs);
            write_data(out, args.output == Output::Yaml, &v)?
        }
    }
    let sync_failed = jobs.iter().any(JobOutcome::failed);
    Ok(if failed || sync_failed || !plan.errors.is_empty() { exit::ERROR } else { exit::OK })
}

/// The manifests under `paths`, or `None` after writing every error to `err`. What was left out as
/// another tool's is said in one note, so a GitOps folder can be pointed at as it is.
pub(crate) fn load_manifests(paths: &[PathBuf], err: &mut dyn Write) -> anyhow::Result<Option<Manifests>> {
    match manifest::load(paths) {
        Ok(m) => {
            if !m.skipped.is_empty() {
                const SHOWN: usize = 3;
                let mut list = m.skipped.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
                if m.skipped.len() > SHOWN {
                    list.push_str(&format!(" and {} more", m.skipped.len() - SHOWN));
                }
                writeln!(err, "note: skipped {} that entente does not manage: {list}", plural(m.skipped.len(), "document"))?;
            }
            Ok(Some(m))
        }
        Err(e) => {
            write!(err, "{e}")?;
            Ok(None)
        }
    }
}

/// `1 document`, `3 documents`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn sync_totals(jobs: &[JobOutcome]) -> render::SyncTotals {
    render::SyncTotals {
        jobs: jobs.len(),
        writes: jobs.iter().map(JobOutcome::writes).sum(),
        failed: jobs.iter().filter(|j| j.failed()).count(),
    }
}

/// Runs (or previews) every SyncJob of the manifests.
async fn sync_jobs(
    manifests: &Manifests,
    routes: &Routes,
    backends: &Backends,
    options: &RunOptions,
    planned: Option<&crate::core::plan::Observed>,
) -> Vec<JobOutcome> {
    let store = match backends.sync_store() {
        Ok(s) => s,
        Err(e) => {
            return manifests
                .desired
                .sync_jobs
                .iter()
                .map(|j| JobOutcome::Error { job: j.object.clone(), message: e.clone() })
                .collect();
        }
    };
    run_jobs(&manifests.desired, routes, &store, &Selection::default(), options, planned).await
}

/// Who gains or loses access if the plan is applied: settings in force now versus after the plan.
fn access_impact(
    desired: &crate::core::model::DesiredState,
    observed: &crate::core::plan::Observed,
    plan: &crate::core::plan::Plan,
) -> Vec<ImpactLine> {
    let snapshots: Vec<_> = observed.values().filter_map(|o| o.as_ref().ok().and_then(Option::as_ref)).collect();
    let before: Vec<TenantPolicy> = snapshots.iter().map(|s| TenantPolicy::from_snapshot(s)).collect();
    let after = crate::core::plan::desired_policies(desired, observed);
    let guests = snapshots.iter().map(|s| (s.identity.tenant_id.clone(), s.guests.clone())).collect();
    // Conditional access (R18) is judged on the directory's policies with the plan's operations applied.
    let policies: crate::core::impact::PoliciesByTenant = snapshots
        .iter()
        .map(|s| {
            let held = s.conditional_access.as_ref().map(|ps| ps.iter().map(|p| (p.id.clone(), p.policy.clone())).collect());
            (s.identity.tenant_id.clone(), held)
        })
        .collect();
    let mut lines = crate::core::impact::access_impact(&before, &after, &guests);
    lines.extend(crate::core::impact::conditional_access_impact(plan, &policies, &before, &after, &guests));
    lines
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

/// The backends of a CLI run: the local directory file, and where entente keeps its own records.
fn backends(local_path: &Path, inventory: Option<&Path>, sync_state: Option<&Path>) -> Backends {
    let mut backends = Backends::new(local_path);
    if let Some(path) = inventory {
        backends = backends.with_inventory_path(path);
    }
    if let Some(path) = sync_state {
        backends = backends.with_sync_state_path(path);
    }
    backends
}

/// Picks each tenant's directory.
fn routes_from(manifests: &Manifests, backends: &Backends) -> Routes {
    manifests.backends.iter().map(|(id, backend)| (id.clone(), backends.route(id, backend, &EnvSecrets))).collect()
}
