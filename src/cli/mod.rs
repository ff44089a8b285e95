//! The `entente` command line: argument definitions and the commands' wiring.

mod access_requests;
pub mod directory;
mod explain;
mod plan_apply;
mod recycle_bin;
mod render;
mod rules;
mod saved_plan;
mod sync;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::tenant::GraphBackend;
use crate::core::target::Target;
use crate::directory::local::LocalDirectory;
use crate::engine::routes::{Backends, SecretSource};
use crate::engine::{self, Routes};
use crate::manifest::{self, Manifests};

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
    /// Explain the rules R1–R18 that refusals and explanations name: `entente rules R5`, or all headings.
    Rules {
        /// R1 … R18; leave out to list them all.
        rule: Option<String>,
    },
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
    /// Manifest files or directories (multi-document YAML; directories are read recursively; `-` is stdin).
    #[arg(short = 'f', long = "filename", required_unless_present = "plan_file", num_args = 1..)]
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
    /// Only this object (`Kind/namespace/name`, `Kind/name` in the default namespace, `*` for every name),
    /// with the Tenant change it depends on; repeatable. With --prune, only targeted objects are deleted.
    #[arg(long = "target", value_name = "KIND/NS/NAME", value_parser = parse_target)]
    pub targets: Vec<Target>,
    /// plan: save the plan to FILE, for `entente apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// apply: apply exactly the plan `entente plan --out FILE` saved, planned the same way (its manifests,
    /// prune and targets); nothing is applied if the directory or the manifests changed anything it holds.
    #[arg(long = "plan", value_name = "FILE", conflicts_with_all = ["paths", "prune", "max_prune", "targets", "no_sync"])]
    pub plan_file: Option<PathBuf>,
    /// plan: terraform's exit codes instead: 0 no changes, 1 error, 2 changes pending.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

impl RunArgs {
    /// What `plan --out` saves of how this plan was made.
    fn saved_run(&self) -> saved_plan::SavedRun {
        saved_plan::SavedRun {
            paths: self.paths.clone(),
            prune: self.prune,
            max_prune: self.max_prune,
            targets: self.targets.iter().map(ToString::to_string).collect(),
            no_sync: self.no_sync,
        }
    }

    /// Plans the way a saved plan was made (`apply --plan`).
    fn follow(&mut self, run: &saved_plan::SavedRun) -> Result<(), String> {
        self.paths.clone_from(&run.paths);
        self.prune = run.prune;
        self.max_prune = run.max_prune;
        self.no_sync = run.no_sync;
        self.targets = run.targets.iter().map(|t| parse_target(t)).collect::<Result<_, _>>()?;
        if self.paths.iter().any(|p| p.as_os_str() == "-") {
            return Err("this plan was made from stdin (-f -), which cannot be read again: save the manifests to files".into());
        }
        Ok(())
    }
}

/// `--target`: `Kind/namespace/name`.
fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
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

    /// `plan --detailed-exitcode`: terraform's convention.
    pub mod detailed {
        pub const ERROR: i32 = 1;
        pub const CHANGES_PENDING: i32 = 2;
    }
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
        Command::Rules { rule } => {
            if rules::run(rule.as_deref(), out)? {
                Ok(exit::OK)
            } else {
                writeln!(
                    err,
                    "error: no rule {:?}: the rules are R1 to R18 (`entente rules` lists them)",
                    rule.unwrap_or_default()
                )?;
                Ok(exit::ERROR)
            }
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
        Command::Plan(args) => plan_apply::run(args, false, out, err).await,
        Command::Apply(args) => plan_apply::run(args, true, out, err).await,
    }
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
            return crate::files::read_regular_text(std::path::Path::new(&file), crate::files::MAX_SECRET_BYTES)
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
