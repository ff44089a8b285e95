//! Sync jobs in the shared flow: which jobs run, against which directories, after checking their
//! prerequisites (R12, R13). The CLI (`entente sync run`, `apply`, `plan`) and the controller use it.

use std::collections::HashMap;

use chrono::Utc;
use serde::Serialize;

use super::Routes;
use crate::core::model::{DesiredState, ObjectRef, TenantSnapshot};
use crate::core::plan::Observed;
use crate::core::sync::DesiredSyncJob;
use crate::directory::Directory;
use crate::sync::{self, Due, RunOptions, SyncRunReport, SyncStore, job_key};

/// Which jobs to consider.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these jobs (`namespace/name`, or `name` in any namespace); all when empty.
    pub jobs: Vec<String>,
    /// Only jobs that are due (their interval elapsed, first run, changed settings, provision on demand).
    pub only_due: bool,
}

impl Selection {
    fn admits(&self, job: &DesiredSyncJob) -> bool {
        self.jobs.is_empty() || self.jobs.iter().any(|j| *j == job_key(job) || *j == job.object.name)
    }
}

/// What became of one job.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum JobOutcome {
    Ran {
        report: Box<SyncRunReport>,
    },
    /// Not due yet.
    NotDue {
        job: ObjectRef,
        next_run: String,
    },
    /// A preview that can only start once the plan is applied: a tenant of the job does not exist yet and
    /// the same plan creates it.
    AfterApply {
        job: ObjectRef,
        reason: String,
    },
    /// The job could not run at all (no directory for a tenant, the state file failed).
    Error {
        job: ObjectRef,
        message: String,
    },
}

impl JobOutcome {
    /// A run that failed, or a job that could not run.
    pub fn failed(&self) -> bool {
        match self {
            JobOutcome::Ran { report } => report.failed(),
            JobOutcome::NotDue { .. } | JobOutcome::AfterApply { .. } => false,
            JobOutcome::Error { .. } => true,
        }
    }
    /// Whether it wrote (or, in a dry run, would write) anything.
    pub fn writes(&self) -> u64 {
        match self {
            JobOutcome::Ran { report } => report.counts.writes(),
            _ => 0,
        }
    }
}

/// Runs the selected jobs one after another. Prerequisites are checked against what the directories
/// hold now (a fresh read of both tenants), except in a dry run with `planned`, where they are checked
/// against the state the manifests will bring (what `plan` previews).
pub async fn run_jobs(
    desired: &DesiredState,
    routes: &Routes,
    store: &SyncStore,
    selection: &Selection,
    options: &RunOptions,
    planned: Option<&Observed>,
) -> Vec<JobOutcome> {
    let mut outcomes = Vec::new();
    // Each tenant is read once per call, however many jobs name it (a multi-tenant organization's
    // jobs share their tenants). Sync runs never change the settings the prerequisites look at.
    let mut snapshots = Snapshots::new();
    for job in desired.sync_jobs.iter().filter(|j| selection.admits(j)) {
        outcomes.push(run_one(job, desired, routes, store, selection, options, planned, &mut snapshots).await);
    }
    outcomes
}

/// Tenant snapshots read during one `run_jobs` call, by tenant id.
type Snapshots = HashMap<String, Result<Option<TenantSnapshot>, String>>;

/// The tenant's snapshot, read on first use.
async fn snapshot_once(snapshots: &mut Snapshots, dir: &dyn Directory, tenant: &str) -> Result<Option<TenantSnapshot>, String> {
    if let Some(s) = snapshots.get(tenant) {
        return s.clone();
    }
    let s = dir.snapshot_of(tenant, &crate::directory::SnapshotScope::settings()).await.map_err(|e| e.to_string());
    snapshots.insert(tenant.to_string(), s.clone());
    s
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    job: &DesiredSyncJob,
    desired: &DesiredState,
    routes: &Routes,
    store: &SyncStore,
    selection: &Selection,
    options: &RunOptions,
    planned: Option<&Observed>,
    snapshots: &mut Snapshots,
) -> JobOutcome {
    let error = |message: String| JobOutcome::Error { job: job.object.clone(), message };
    let state = match store.job(&job_key(job)) {
        Ok(s) => s,
        Err(e) => return error(e.to_string()),
    };
    let mut options = options.clone();
    if options.only_users.is_empty() {
        options.only_users = sync::pending_on_demand(job, state.as_ref());
    }
    if selection.only_due && options.only_users.is_empty() {
        match sync::due(job, state.as_ref(), Utc::now()) {
            Due::At(t) => return JobOutcome::NotDue { job: job.object.clone(), next_run: t.to_rfc3339() },
            Due::Now(_) | Due::Paused => {}
        }
    }
    let route = |tenant: &str| match routes.get(tenant) {
        Some(Ok(d)) => Ok(d.clone()),
        Some(Err(why)) => Err(format!("tenant {tenant}: {why}")),
        None => Err(format!("tenant {tenant}: no directory is configured")),
    };
    let (source, target) = match (route(&job.source_tenant_id), route(&job.target_tenant_id)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    if let Some(observed) = planned {
        let created = |id: &str| {
            matches!(observed.get(id), Some(Ok(None)))
                && desired.tenants.iter().any(|t| t.identity.tenant_id.eq_ignore_ascii_case(id))
        };
        if let Some(id) = [&job.source_tenant_id, &job.target_tenant_id].into_iter().find(|id| created(id)) {
            let reason =
                format!("tenant {id} does not exist yet: this plan creates it, and the job's first run follows the apply");
            return JobOutcome::AfterApply { job: job.object.clone(), reason };
        }
    }
    let missing = match planned {
        Some(observed) => sync::missing_after_apply(job, desired, observed),
        None if job.suspended => vec![],
        None => {
            let s = snapshot_once(snapshots, source.as_ref(), &job.source_tenant_id).await;
            let t = snapshot_once(snapshots, target.as_ref(), &job.target_tenant_id).await;
            match (s, t) {
                (Ok(Some(s)), Ok(Some(t))) => sync::missing_in_directory(job, &s, &t),
                (Ok(None), _) => {
                    return error(format!("the source tenant {} does not exist in its directory", job.source_tenant_id));
                }
                (_, Ok(None)) => {
                    return error(format!("the target tenant {} does not exist in its directory", job.target_tenant_id));
                }
                (Err(e), _) | (_, Err(e)) => {
                    // The tenants cannot be read: a failed run, so repeated failures quarantine the job.
                    return match sync::run::record_failure(job, store, format!("reading the tenants: {e}")) {
                        Ok(report) => JobOutcome::Ran { report: Box::new(report) },
                        Err(e) => error(e.to_string()),
                    };
                }
            }
        }
    };
    match sync::run_job(job, source.as_ref(), target.as_ref(), store, missing, &options).await {
        Ok(report) => JobOutcome::Ran { report: Box::new(report) },
        Err(e) => error(e.to_string()),
    }
}
