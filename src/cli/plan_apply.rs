//! `entente plan` and `entente apply`: read the manifests, observe, plan, then print the plan (and save
//! it with `--out`) or apply it, each change reported as it lands.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

use super::render::{self, ApplyCounts};
use super::saved_plan::SavedPlan;
use super::{Output, RunArgs, backends, exit, lock_tenants, routes_from, write_data};
use crate::core::impact::ImpactLine;
use crate::core::plan::{PlanOptions, Prune, PruneGuard, unmatched_targets};
use crate::core::policy::TenantPolicy;
use crate::core::target::Targets;
use crate::engine::routes::Backends;
use crate::engine::sync::{JobOutcome, Selection, run_jobs};
use crate::engine::{self, ChangeResult, Routes};
use crate::manifest::{self, Manifests};
use crate::sync::RunOptions;

/// Why these arguments do not fit this command, if they do not.
fn misplaced(args: &RunArgs, apply: bool) -> Option<&'static str> {
    match () {
        _ if apply && args.output == Output::Markdown => {
            Some("-o markdown is a plan's pull-request comment; apply prints -o text, json or yaml")
        }
        _ if apply && args.out.is_some() => {
            Some("--out saves a plan: use it with `entente plan`, then `entente apply --plan FILE`")
        }
        _ if apply && args.detailed_exitcode => Some("--detailed-exitcode is for `entente plan`"),
        _ if !apply && args.plan_file.is_some() => Some("--plan applies a saved plan: use it with `entente apply`"),
        _ => None,
    }
}

pub(super) async fn run(args: RunArgs, apply: bool, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let detailed = args.detailed_exitcode && !apply;
    let code = plan_or_apply(args, apply, out, err).await?;
    Ok(match code {
        exit::ERROR if detailed => exit::detailed::ERROR,
        exit::CHANGES_PENDING if detailed => exit::detailed::CHANGES_PENDING,
        code => code,
    })
}

async fn plan_or_apply(mut args: RunArgs, apply: bool, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if let Some(why) = misplaced(&args, apply) {
        writeln!(err, "error: {why}")?;
        return Ok(exit::ERROR);
    }
    // `apply --plan FILE` plans the way the saved plan was made, then holds the result to it.
    let saved = match &args.plan_file {
        Some(path) => match SavedPlan::read(path).and_then(|s| args.follow(&s.run).map(|()| s)) {
            Ok(s) => Some(s),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(exit::ERROR);
            }
        },
        None => None,
    };
    let Some(mut manifests) = super::load_manifests(&args.paths, err)? else { return Ok(exit::ERROR) };
    // Identity provider and API connector secrets (R17) come from the environment, never the manifests;
    // their markers are made under the state's own key (apply makes it the first time).
    let key_path = engine::marker_key::path_beside(&args.directory);
    let key = match engine::marker_key::load(&key_path, apply) {
        Ok(k) => k,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(exit::ERROR);
        }
    };
    manifest::identity::resolve_secrets_from_env(&mut manifests.desired, &key);
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
    let targets = Targets(args.targets.iter().cloned().collect());
    let prune_guard = args.max_prune.map_or(PruneGuard::Default, PruneGuard::AtMost);
    let prune = if args.prune { Prune::All } else { Prune::Off };
    let options = PlanOptions { prune, prune_guard, targets: targets.clone(), ..Default::default() };
    let observed = engine::observe(&manifests.desired, &routes).await;
    let mut plan = crate::core::plan::plan(&manifests.desired, &observed, options);
    let unmatched = unmatched_targets(&plan, &targets);
    if !unmatched.is_empty() {
        for t in unmatched {
            writeln!(err, "error: --target {t} names no object of the manifests or the directory")?;
        }
        return Ok(exit::ERROR);
    }
    let names = super::sync::tenant_names(&manifests.desired);
    // With --target, only the targeted SyncJobs run or are previewed.
    let selection = Selection {
        jobs: manifests
            .desired
            .sync_jobs
            .iter()
            .filter(|j| !targets.is_everything() && targets.matches(&j.object))
            .map(crate::sync::job_key)
            .collect(),
        only_due: false,
    };
    let with_sync =
        !args.no_sync && !manifests.desired.sync_jobs.is_empty() && (targets.is_everything() || !selection.jobs.is_empty());
    if !apply {
        let impact = access_impact(&manifests.desired, &observed, &plan);
        // Sync jobs are previewed against the settings the plan brings (a dry run: nothing is remembered).
        let jobs = if with_sync {
            let dry = RunOptions { dry_run: true, ..RunOptions::default() };
            sync_jobs(&manifests, &routes, &backends, &selection, &dry, Some(&observed)).await
        } else {
            vec![]
        };
        let footer = render::plan_footer(&plan, sync_totals(&jobs));
        match args.output {
            Output::Text => {
                render::write_plan(out, &plan, &impact, args.show_unchanged)?;
                super::sync::write_outcomes(out, &jobs, &names)?;
                writeln!(out, "\n{footer}")?;
            }
            Output::Json | Output::Yaml => {
                let mut v = render::plan_json(&plan, &impact);
                v["syncJobs"] = super::sync::outcomes_json(&jobs);
                write_data(out, args.output == Output::Yaml, &v)?
            }
            Output::Markdown => write!(
                out,
                "{}{}",
                render::plan_markdown(&plan, &impact, sync_totals(&jobs)),
                super::sync::outcomes_markdown(&jobs, &names)
            )?,
        }
        let failed = !plan.errors.is_empty() || jobs.iter().any(|j| matches!(j, JobOutcome::Error { .. }));
        if let Some(path) = &args.out {
            if failed {
                writeln!(err, "error: no plan saved to {}: a plan that failed cannot be applied", path.display())?;
            } else {
                SavedPlan::new(&plan, args.saved_run(), footer).write(path)?;
                writeln!(err, "Saved the plan to {0}; `entente apply --plan {0}` applies exactly it.", path.display())?;
            }
        }
        let pending = plan.has_writes() || jobs.iter().any(|j| j.writes() > 0);
        return Ok(if failed {
            exit::ERROR
        } else if pending {
            exit::CHANGES_PENDING
        } else {
            exit::OK
        });
    }
    if let (Some(saved), Some(path)) = (&saved, &args.plan_file) {
        match saved.hold_to(&mut plan) {
            Ok(left_out) if !left_out.is_empty() => {
                let list = left_out.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                plan.notes.push(format!(
                    "{} change(s) appeared after the plan was saved and were not applied (nobody reviewed them): \
                     {list}; plan again to see them",
                    left_out.len()
                ));
            }
            Ok(_) => {}
            Err(stale) => {
                writeln!(
                    err,
                    "error: the plan in {} no longer holds: the directory or the manifests changed since it was made. \
                     Nothing was applied.",
                    path.display()
                )?;
                for s in stale {
                    writeln!(err, "    {s}")?;
                }
                writeln!(err, "Plan again (`entente plan --out {}`), review, and apply that.", path.display())?;
                return Ok(exit::ERROR);
            }
        }
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
    let text = args.output == Output::Text;
    let standing = render::standing_refusals(&plan);
    let (report, counts) = apply_with_progress(&plan, &routes, &standing, text.then_some(&mut *out))
        .await
        .map_err(|e| anyhow::anyhow!("writing the apply's progress: {e}"))?;
    let failed = report.results.iter().any(|r| matches!(r, ChangeResult::Failed { .. } | ChangeResult::Skipped { .. }));
    // Sync jobs run once their tenants' settings are in place, against what the directories now hold.
    let jobs = if with_sync && !failed {
        sync_jobs(&manifests, &routes, &backends, &selection, &RunOptions::default(), None).await
    } else {
        vec![]
    };
    match args.output {
        Output::Text => {
            render::write_apply_tail(out, &plan, &standing)?;
            super::sync::write_outcomes(out, &jobs, &names)?;
            if with_sync && failed {
                writeln!(out, "Sync jobs not run: a change above failed.")?;
            }
            writeln!(out, "\n{}", render::apply_footer(&plan, &report, counts, sync_totals(&jobs)))?;
        }
        Output::Json | Output::Yaml | Output::Markdown => {
            let mut v = render::apply_json(&plan, &report);
            v["syncJobs"] = super::sync::outcomes_json(&jobs);
            write_data(out, args.output == Output::Yaml, &v)?
        }
    }
    let sync_failed = jobs.iter().any(JobOutcome::failed);
    Ok(if failed || sync_failed || !plan.errors.is_empty() { exit::ERROR } else { exit::OK })
}

/// Applies the plan, printing each change to `out` (text output) as it lands, and a progress bar on
/// stderr when stderr is a terminal; elsewhere the lines themselves are the progress.
async fn apply_with_progress(
    plan: &crate::core::plan::Plan,
    routes: &Routes,
    standing: &std::collections::BTreeSet<crate::core::model::ObjectRef>,
    mut out: Option<&mut dyn Write>,
) -> std::io::Result<(engine::ApplyReport, ApplyCounts)> {
    let total = plan.changes.iter().filter(|c| c.action.writes()).count() as u64;
    let bar = (total > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}") {
            bar.set_style(style);
        }
        bar
    });
    let mut counts = ApplyCounts::default();
    let mut written: std::io::Result<()> = Ok(());
    let report = engine::apply_reporting(plan, routes, |change, result| {
        if let Some(out) = out.as_deref_mut()
            && written.is_ok()
        {
            let quiet = standing.contains(&change.object);
            let mut line = || render::write_result(out, change, result, quiet, &mut counts);
            written = match &bar {
                Some(bar) => bar.suspend(line),
                None => line(),
            };
        }
        if let Some(bar) = &bar
            && change.action.writes()
        {
            bar.inc(1);
            bar.set_message(change.object.to_string());
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    written.map(|()| (report, counts))
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
    selection: &Selection,
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
    run_jobs(&manifests.desired, routes, &store, selection, options, planned).await
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
    let names =
        desired.tenants.iter().map(|t| (t.identity.tenant_id.to_ascii_lowercase(), t.identity.initial_domain.clone())).collect();
    let mut lines = crate::core::impact::deletion_impact(plan, &names);
    lines.extend(crate::core::impact::access_impact(&before, &after, &guests));
    lines.extend(crate::core::impact::conditional_access_impact(plan, &policies, &before, &after, &guests));
    lines
}
