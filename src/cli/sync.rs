//! `entente sync run|status`, and how sync jobs appear in `plan` and `apply`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{DEFAULT_DIRECTORY, Report, exit};
use crate::core::model::DesiredState;
use crate::engine::sync::{JobOutcome, Selection, run_jobs};
use crate::sync::{RunOptions, SyncRunReport, SyncStore};

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Run the manifests' sync jobs now: users of each source tenant appear in its target tenant.
    /// Exit 0: every run succeeded; 1 (with --dry-run): writes pending; 2: a run failed.
    Run(SyncRunArgs),
    /// What each job remembers: state, last run and its counts, next run.
    Status(SyncStatusArgs),
}

#[derive(Args, Debug)]
pub struct SyncRunArgs {
    /// Manifest files or directories.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// The local directory file, for tenants whose backend is `local`.
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    /// Where entente keeps ownership records for Graph tenants (default: next to the directory file).
    #[arg(long, env = "ENTENTE_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// Where sync jobs keep their state (default: `sync.db` next to the directory file).
    #[arg(long, env = "ENTENTE_SYNC_STATE")]
    pub state: Option<PathBuf>,
    /// Only this job (`namespace/name` or `name`); repeatable.
    #[arg(long = "job")]
    pub jobs: Vec<String>,
    /// Only the jobs that are due (interval elapsed, first run, changed settings, provision on demand).
    #[arg(long)]
    pub due: bool,
    /// Read the source in full instead of the changes since the last run (a resync).
    #[arg(long)]
    pub full: bool,
    /// Show what the run would write; write nothing and remember nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Provision on demand: only this source user (mail, user principal name or id), now; repeatable.
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Report::Text)]
    pub output: Report,
    /// How long to wait for another writer of the target tenants (`30s`, `5m`) before failing.
    #[arg(long, value_parser = super::parse_wait, default_value = "5m")]
    pub lock_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct SyncStatusArgs {
    /// The local directory file (the state file is next to it unless --state says otherwise).
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    /// Where sync jobs keep their state.
    #[arg(long, env = "ENTENTE_SYNC_STATE")]
    pub state: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Report::Text)]
    pub output: Report,
}

pub async fn run(command: SyncCommand, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    match command {
        SyncCommand::Run(args) => run_now(args, out, err).await,
        SyncCommand::Status(args) => status(args, out, err),
    }
}

async fn run_now(args: SyncRunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let Some(manifests) = super::load_manifests(&args.paths, err)? else { return Ok(exit::ERROR) };
    if manifests.desired.sync_jobs.is_empty() {
        writeln!(err, "the manifests declare no SyncJob")?;
        return Ok(exit::ERROR);
    }
    let known: Vec<String> = manifests.desired.sync_jobs.iter().map(crate::sync::job_key).collect();
    for j in &args.jobs {
        if !manifests.desired.sync_jobs.iter().any(|d| crate::sync::job_key(d) == *j || d.object.name == *j) {
            writeln!(err, "no SyncJob {j:?} in the manifests (SyncJobs: {})", known.join(", "))?;
            return Ok(exit::ERROR);
        }
    }
    let backends = super::backends(&args.directory, args.inventory.as_deref(), args.state.as_deref());
    let backends = if args.dry_run { backends.preview() } else { backends };
    // The tenants the selected jobs write are locked for the run (a dry run writes nothing).
    let targets: std::collections::BTreeSet<String> = manifests
        .desired
        .sync_jobs
        .iter()
        .filter(|d| args.jobs.is_empty() || args.jobs.iter().any(|j| crate::sync::job_key(d) == *j || d.object.name == *j))
        .map(|d| d.target_tenant_id.to_ascii_lowercase())
        .collect();
    let _locks = if args.dry_run {
        None
    } else {
        match super::lock_tenants(&manifests, &backends, Some(&targets), "entente sync run", args.lock_timeout, err).await? {
            Some(l) => Some(l),
            None => return Ok(exit::ERROR),
        }
    };
    let routes = super::routes_from(&manifests, &backends);
    let store = match backends.sync_store() {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "{e}")?;
            return Ok(exit::ERROR);
        }
    };
    let selection = Selection { jobs: args.jobs.clone(), only_due: args.due };
    let options = RunOptions { full: args.full, dry_run: args.dry_run, only_users: args.users.clone(), full_membership: false };
    let outcomes = run_jobs(&manifests.desired, &routes, &store, &selection, &options, None).await;
    match args.output {
        Report::Json | Report::Yaml => super::write_data(out, args.output == Report::Yaml, &outcomes_json(&outcomes))?,
        Report::Text => write_outcomes(out, &outcomes, &tenant_names(&manifests.desired))?,
    }
    Ok(if outcomes.iter().any(JobOutcome::failed) {
        exit::ERROR
    } else if args.dry_run && outcomes.iter().any(|o| o.writes() > 0) {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

fn status(args: SyncStatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let path = args.state.unwrap_or_else(|| args.directory.with_file_name(crate::sync::DEFAULT_SYNC_STATE_FILE));
    if !path.exists() {
        writeln!(err, "no sync state at {}: no job has run yet", path.display())?;
        return Ok(exit::ERROR);
    }
    let store = SyncStore::open(&path)?;
    let mut rows = Vec::new();
    for (name, state) in store.jobs()? {
        let last: Value = state.last_report.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
        rows.push(json!({
            "job": name,
            "state": format!("{:?}", state.health.state(false)),
            "quarantineReason": state.health.quarantine_reason(),
            "lastRun": last,
        }));
    }
    if args.output != Report::Text {
        super::write_data(out, args.output == Report::Yaml, &Value::Array(rows))?;
        return Ok(exit::OK);
    }
    for row in &rows {
        let (name, state, last) = (row["job"].as_str().unwrap_or("?"), row["state"].as_str().unwrap_or("?"), &row["lastRun"]);
        if last.is_null() {
            writeln!(out, "{name}: {state}, no completed run")?;
            continue;
        }
        let c = &last["counts"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        writeln!(
            out,
            "{name}: {state}, last run {} ({} created, {} updated, {} deleted, {} disabled, {} unchanged, {} skipped, {} failed), \
             {} user(s) in scope, next run {}",
            last["finishedAt"].as_str().unwrap_or("-"),
            n("created"),
            n("updated"),
            n("deleted"),
            n("disabled"),
            n("unchanged"),
            n("skipped"),
            n("failed"),
            last["usersInScope"].as_u64().unwrap_or(0),
            last["nextRun"].as_str().unwrap_or("-"),
        )?;
        if let Some(q) = row["quarantineReason"].as_str() {
            writeln!(out, "    ! quarantined: {q}")?;
        }
        if let Some(f) = last["failure"].as_str() {
            writeln!(out, "    ! last run failed: {f}")?;
        }
    }
    Ok(exit::OK)
}

/// Tenant id → initial domain, for readable lines.
pub(crate) fn tenant_names(desired: &DesiredState) -> BTreeMap<String, String> {
    desired.tenants.iter().map(|t| (t.identity.tenant_id.clone(), t.identity.initial_domain.clone())).collect()
}

fn counts_line(r: &SyncRunReport) -> String {
    let c = &r.counts;
    let verb = if r.dry_run { "would be " } else { "" };
    format!(
        "{} {verb}created, {} {verb}updated, {} {verb}deleted, {} {verb}disabled, {} unchanged, {} skipped, {} failed",
        c.created, c.updated, c.deleted, c.disabled, c.unchanged, c.skipped, c.failed
    )
}

/// One paragraph per job.
pub(crate) fn write_outcomes(out: &mut dyn Write, outcomes: &[JobOutcome], names: &BTreeMap<String, String>) -> io::Result<()> {
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    for o in outcomes {
        match o {
            JobOutcome::NotDue { job, next_run } => writeln!(out, "{job}: not due until {next_run}")?,
            JobOutcome::AfterApply { job, reason } => writeln!(out, "{job}: previewed after apply\n    # {reason}")?,
            JobOutcome::Error { job, message } => writeln!(out, "{job}: cannot run\n    ! {message}")?,
            JobOutcome::Ran { report: r } => {
                let how = match (r.dry_run, r.full, r.on_demand.is_empty()) {
                    (_, _, false) => format!("provision on demand of {}", r.on_demand.join(", ")),
                    (true, true, _) => "dry run, full read".to_string(),
                    (true, false, _) => "dry run, changes since the last run".to_string(),
                    (false, true, _) => "full read".to_string(),
                    (false, false, _) => "changes since the last run".to_string(),
                };
                let mut arrow = format!("{} → {}", name(&r.source_tenant_id), name(&r.target_tenant_id));
                if let Some(g) = &r.generated_by {
                    arrow.push_str(&format!(" (generated by {g})"));
                }
                if r.state == crate::core::sync::SyncJobState::Paused {
                    writeln!(out, "{}: {arrow}: paused (spec.suspend), nothing read or written", r.job)?;
                    continue;
                }
                writeln!(out, "{}: {arrow} ({how}): {}", r.job, counts_line(r))?;
                for p in &r.planned {
                    writeln!(out, "    + {p}")?;
                }
                for m in &r.missing_prerequisites {
                    writeln!(out, "    ! missing prerequisite in {}: {} ({}): {}", m.tenant, m.setting, m.rule, m.message)?;
                }
                if let Some(f) = &r.failure
                    && r.missing_prerequisites.is_empty()
                {
                    writeln!(out, "    ! run failed: {f}")?;
                }
                for e in &r.errors {
                    writeln!(out, "    ! {} {}: {}", e.user, e.reason, e.message)?;
                }
                let mut tail = format!("    {} user(s) in scope; state {:?}", r.users_in_scope, r.state);
                if let Some(q) = &r.quarantine_reason {
                    tail.push_str(&format!(" ({q})"));
                }
                if let Some(n) = &r.next_run {
                    tail.push_str(&format!("; next run {n}"));
                }
                writeln!(out, "{tail}")?;
            }
        }
    }
    Ok(())
}

pub(crate) fn outcomes_json(outcomes: &[JobOutcome]) -> Value {
    serde_json::to_value(outcomes).unwrap_or(Value::Null)
}

/// Markdown lines for a plan comment.
pub(crate) fn outcomes_markdown(outcomes: &[JobOutcome], names: &BTreeMap<String, String>) -> String {
    if outcomes.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n### Sync jobs\n\n| Job | From → to | Preview |\n|---|---|---|\n");
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    for o in outcomes {
        match o {
            JobOutcome::Ran { report: r } => {
                let mut preview = counts_line(r);
                for m in &r.missing_prerequisites {
                    preview.push_str(&format!("<br>⚠ missing {} in {} ({})", m.setting, m.tenant, m.rule));
                }
                if let Some(f) = r.failure.as_ref().filter(|_| r.missing_prerequisites.is_empty()) {
                    preview.push_str(&format!("<br>⚠ {f}"));
                }
                s.push_str(&format!(
                    "| `{}` | {} → {} | {} |\n",
                    r.job,
                    name(&r.source_tenant_id),
                    name(&r.target_tenant_id),
                    preview.replace('|', "\\|")
                ));
            }
            JobOutcome::NotDue { job, next_run } => s.push_str(&format!("| `{job}` | | not due until {next_run} |\n")),
            JobOutcome::AfterApply { job, reason } => s.push_str(&format!("| `{job}` | | after apply: {reason} |\n")),
            JobOutcome::Error { job, message } => s.push_str(&format!("| `{job}` | | ⚠ {} |\n", message.replace('|', "\\|"))),
        }
    }
    s
}
