//! SyncJobs in the cluster: a second kube-runtime `Controller<SyncJob>` beside the Tenant controller,
//! started and stopped with it (same leader election, same namespace scoping). It watches SyncJobs,
//! and Tenants mapped to the SyncJobs that name them (source `spec.tenantRef`, target
//! `spec.target.tenantRef` or `spec.target.tenantId`), so a Tenant whose partner settings change gets
//! its jobs' prerequisites evaluated again.
//!
//! One reconcile of one SyncJob:
//!
//! 1. Reads the source and target Tenants from the Tenant cache (a missing one: `TenantNotFound`), and
//!    refuses references from a namespace a Tenant does not allow (`CrossNamespaceRefDenied`).
//! 2. Validates through `manifest::convert_live`, the CLI's converter (`InvalidSpec`, naming the field),
//!    with the older SyncJobs of the same pair, so the older one keeps the pair.
//! 3. Routes both tenants through the controller's `Backends` and the Tenants' Secrets.
//! 4. Runs the job through `engine::sync::run_jobs` (the CLI's flow) when it is due: its interval
//!    elapsed, a first run or changed settings, a new `entente.dev/provision-on-demand` value, the retry
//!    time after a failed run (1 min doubling to 5 min; the job's interval once quarantined), or
//!    prerequisites that were missing and are now in place. Otherwise nothing runs.
//! 5. Writes the status by server-side apply from what the job's `SyncStore` remembers (its health and
//!    last report), so the status survives restarts and a reconcile that runs nothing changes nothing;
//!    publishes Events on transitions (quarantine, prerequisites) and on each run that wrote; requeues
//!    at the next run (at most an hour away), sooner after a failure.
//!
//! **Deleting a SyncJob needs no finalizer**: the users it created stay in the target tenant, as with
//! Microsoft's cross-tenant synchronization when a job is deleted. When the controller sees the deletion
//! it forgets the job's state in the `SyncStore` (`forget_job`): cursor, health, per-user rows. (A
//! SyncJob deleted while no replica runs keeps its rows until a SyncJob of the same name runs again,
//! which starts from them.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{self, Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef as StoreRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::context::Context;
use super::error::Error;
use super::metrics::Instrumented;
use super::patch::{self, is_deleting};
use super::scope::{claimed_by_other, namespace_of};
use super::secrets;
use super::status::{self, Cond, kind, reason};
use crate::api::sync_job::SyncJobStatus;
use crate::api::{SyncJob, Tenant, TenantRef};
use crate::core::model::{Kind, ObjectRef};
use crate::core::sync::{DesiredSyncJob, MissingPrerequisite, QUARANTINE_AFTER, SyncCounts, SyncJobState, SyncUserError};
use crate::directory::Directory;
use crate::engine::Routes;
use crate::engine::sync::{JobOutcome, Selection, run_jobs};
use crate::manifest::{Live, Manifests, convert_live};
use crate::sync::store::JobState;
use crate::sync::{self, Due, RunOptions, job_key};

/// A sync run may read a whole tenant: it gets at least this long, whatever `--reconcile-timeout` says.
const MIN_SYNC_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest a SyncJob waits for its next reconcile.
const MAX_REQUEUE: Duration = Duration::from_secs(3600);
/// The first retry after a failed run; doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(60);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// What a SyncJob reconcile shares: the Tenant controller's context (client, Tenant cache, backends,
/// recorder, metrics) and the SyncJob cache.
pub struct SyncContext {
    pub base: Arc<Context>,
    pub jobs: Store<SyncJob>,
}

impl SyncContext {
    pub fn new(base: Arc<Context>, jobs: Store<SyncJob>) -> Self {
        Self { base, jobs }
    }
}

fn key_of(job: &SyncJob) -> String {
    format!("{}/{}", namespace_of(job), job.name_any())
}

/// Runs the SyncJob controller until `stop` turns true.
pub(super) async fn run(ctx: Arc<Context>, namespace: Option<String>, concurrency: u16, stop: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let wc = watcher::Config::default();
    let config = ControllerConfig::default().concurrency(concurrency).debounce(Duration::from_secs(1));
    let controller = Controller::new(super::scoped_api::<SyncJob>(&client, ns), wc.clone()).with_config(config);
    let jobs = controller.store();
    let sctx = Arc::new(SyncContext::new(ctx, jobs.clone()));
    // A second watch of Tenants (the Tenant controller's own stream is not shared): a Tenant that changes
    // re-queues the SyncJobs that name it.
    let tenant_events = watcher(super::scoped_api::<Tenant>(&client, ns), wc).default_backoff().touched_objects();
    let shutdown = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    info!(namespace = ns.unwrap_or("*"), "SyncJob controller started");
    controller
        .watches_stream(tenant_events, tenant_to_jobs(jobs))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_sync_job, sync_error_policy, sctx.clone())
        .for_each(|r| {
            let sctx = sctx.clone();
            async move {
                match r {
                    Ok((obj, _)) => debug!(sync_job = %obj, "reconciled"),
                    // The job was deleted (its watch event asked for a reconcile it no longer exists for).
                    Err(controller::Error::ObjectNotFound(obj)) => {
                        let ns = obj.namespace.clone().unwrap_or_else(|| "default".into());
                        forget_deleted(&sctx, &ns, &obj.name);
                    }
                    Err(e) => debug!(error = %e, "SyncJob controller event"),
                }
            }
        })
        .await;
}

/// Forgets what a deleted SyncJob remembered in the `SyncStore` (its cursor, health and per-user rows).
/// The users it created stay in the target tenant. Nothing happens when a SyncJob of that name exists
/// again (deleted and created anew).
pub fn forget_deleted(ctx: &SyncContext, namespace: &str, name: &str) {
    if ctx.jobs.get(&StoreRef::new(name).within(namespace)).is_some() {
        return;
    }
    let key = format!("{namespace}/{name}");
    let forgotten = ctx.base.backends.sync_store().and_then(|s| s.forget_job(&key).map_err(|e| e.to_string()));
    match forgotten {
        Ok(()) => info!(sync_job = %key, "deleted: its sync state is forgotten; the users it created stay in the target"),
        Err(e) => warn!(sync_job = %key, error = %e, "could not forget a deleted SyncJob's sync state"),
    }
}

/// The SyncJobs that name a Tenant: as source, as target by reference, or as target by tenant id.
pub fn jobs_naming(jobs: &Store<SyncJob>, tenant: &Tenant) -> Vec<StoreRef<SyncJob>> {
    let (tns, tname) = (namespace_of(tenant), tenant.name_any());
    let names = |r: &TenantRef, own: &str| r.name == tname && r.namespace.as_deref().unwrap_or(own) == tns;
    jobs.state()
        .iter()
        .filter(|j| {
            let own = namespace_of(j.as_ref());
            let target = &j.spec.target;
            names(&j.spec.tenant_ref, &own)
                || target.tenant_ref.as_ref().is_some_and(|r| names(r, &own))
                || target.tenant_id.as_deref().is_some_and(|id| id.trim().eq_ignore_ascii_case(tenant.spec.tenant_id.trim()))
        })
        .map(|j| StoreRef::from_obj(j.as_ref()))
        .collect()
}

fn tenant_to_jobs(jobs: Store<SyncJob>) -> impl Fn(Tenant) -> Vec<StoreRef<SyncJob>> {
    move |tenant: Tenant| jobs_naming(&jobs, &tenant)
}

/// Reconciles one SyncJob. Never twice at once for the same job (kube-runtime's scheduler).
pub async fn reconcile_sync_job(job: Arc<SyncJob>, ctx: Arc<SyncContext>) -> Result<Action, Error> {
    let start = Instant::now();
    let timeout = ctx.base.settings.reconcile_timeout.max(MIN_SYNC_TIMEOUT);
    let result = match tokio::time::timeout(timeout, reconcile(&job, &ctx)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    };
    ctx.base.metrics.reconciled(Kind::SyncJob, if result.is_ok() { "success" } else { "error" }, start.elapsed());
    if result.is_ok() {
        ctx.base.reset_failures(&format!("SyncJob/{}", key_of(&job)));
    }
    result
}

/// Retries a failed reconcile (a Kubernetes API error, a timeout) after 1 to 5 minutes, jittered.
pub fn sync_error_policy(job: Arc<SyncJob>, error: &Error, ctx: Arc<SyncContext>) -> Action {
    let key = key_of(&job);
    let backoff = ctx.base.backoff(&format!("SyncJob/{key}"));
    let wait = if backoff < FIRST_RETRY { super::reconcile::jitter(FIRST_RETRY) } else { backoff };
    warn!(sync_job = %key, category = error.category(), error = %error, retry_in = ?wait, "SyncJob reconcile failed");
    Action::requeue(wait)
}

/// Why a job cannot be considered for a run at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Blocked {
    pub(super) reason: &'static str,
    pub(super) message: String,
    /// Only an edit of the SyncJob or of a Tenant can change it (`Stalled`).
    stalled: bool,
}

impl Blocked {
    fn new(reason: &'static str, message: impl Into<String>, stalled: bool) -> Self {
        Self { reason, message: message.into(), stalled }
    }
}

fn tenant_by_ref(tenants: &Store<Tenant>, r: &TenantRef, own_ns: &str, field: &str) -> Result<Arc<Tenant>, Blocked> {
    let ns = r.namespace.clone().unwrap_or_else(|| own_ns.to_string());
    tenants
        .get(&StoreRef::new(&r.name).within(&ns))
        .ok_or_else(|| Blocked::new(reason::TENANT_NOT_FOUND, format!("{field}: Tenant {ns}/{} does not exist", r.name), false))
}

/// The source and target Tenant objects of a job.
fn resolve(job: &SyncJob, tenants: &Store<Tenant>) -> Result<(Arc<Tenant>, Arc<Tenant>), Blocked> {
    let ns = namespace_of(job);
    let source = tenant_by_ref(tenants, &job.spec.tenant_ref, &ns, "spec.tenantRef")?;
    let target = match (&job.spec.target.tenant_ref, &job.spec.target.tenant_id) {
        (Some(r), None) => tenant_by_ref(tenants, r, &ns, "spec.target.tenantRef")?,
        (None, Some(id)) => {
            let id = id.trim();
            let mut named: Vec<Arc<Tenant>> =
                tenants.state().into_iter().filter(|t| t.spec.tenant_id.trim().eq_ignore_ascii_case(id)).collect();
            named.sort_by_key(|t| (t.meta().creation_timestamp.clone(), namespace_of(t.as_ref()), t.name_any()));
            let first = named.into_iter().find(|t| claimed_by_other(t, tenants).is_none());
            first.ok_or_else(|| {
                Blocked::new(
                    reason::TENANT_NOT_FOUND,
                    format!(
                        "spec.target.tenantId: no Tenant has tenant id {id}: entente writes to the target, so it must manage it"
                    ),
                    false,
                )
            })?
        }
        _ => return Err(Blocked::new(reason::INVALID_SPEC, "spec.target: give exactly one of tenantRef and tenantId", true)),
    };
    for (field, t) in [("spec.tenantRef", &source), ("spec.target", &target)] {
        if !t.spec.allows_namespace(&namespace_of(t.as_ref()), &ns) {
            return Err(Blocked::new(
                reason::CROSS_NAMESPACE_REF_DENIED,
                format!(
                    "{field}: Tenant {}/{} does not allow objects from namespace {ns:?}: add it to the Tenant's spec.allowedNamespaces",
                    namespace_of(t.as_ref()),
                    t.name_any()
                ),
                true,
            ));
        }
    }
    Ok((source, target))
}

fn same<K: Resource>(a: &K, b: &K) -> bool {
    namespace_of(a) == namespace_of(b) && a.meta().name == b.meta().name
}

/// Validates the job with its Tenants through the CLI's converter. Older SyncJobs of the same pair come
/// along, so a second job for a pair gets the converter's "already synchronizes" error.
fn validate(
    job: &SyncJob,
    source: &Tenant,
    target: &Tenant,
    tenants: &Store<Tenant>,
    jobs: &Store<SyncJob>,
) -> Result<(Manifests, DesiredSyncJob), Blocked> {
    let mut live_tenants = vec![source.clone()];
    if !same(source, target) {
        live_tenants.push(target.clone());
    }
    let age = |j: &SyncJob| (j.meta().creation_timestamp.clone(), namespace_of(j), j.name_any());
    let mut older: Vec<SyncJob> = jobs
        .state()
        .iter()
        .filter(|j| !same(j.as_ref(), job) && !is_deleting(j.as_ref()) && age(j) < age(job))
        .filter(|j| resolve(j, tenants).is_ok_and(|(s, t)| same(s.as_ref(), source) && same(t.as_ref(), target)))
        .map(|j| (**j).clone())
        .collect();
    older.sort_by_key(|j| age(j));
    older.push(job.clone());
    let (manifests, errors) = convert_live(&Live { tenants: live_tenants, sync_jobs: older, ..Live::default() });
    let me = ObjectRef::new(Kind::SyncJob, namespace_of(job), job.name_any()).to_string();
    let line = |e: &crate::manifest::ManifestError| match &e.field {
        Some(f) if !f.is_empty() => format!("{f}: {}", e.message),
        _ => e.message.clone(),
    };
    let mine: Vec<String> = errors.iter().filter(|e| e.object.as_deref() == Some(me.as_str())).map(line).collect();
    if !mine.is_empty() {
        return Err(Blocked::new(reason::INVALID_SPEC, mine.join("; "), true));
    }
    let tenant_errors: Vec<String> = errors
        .iter()
        .filter(|e| e.object.as_deref().is_some_and(|o| o.starts_with("Tenant/")))
        .map(|e| format!("{}: {}", e.object.as_deref().unwrap_or_default(), line(e)))
        .collect();
    if !tenant_errors.is_empty() {
        return Err(Blocked::new(
            reason::TENANT_NOT_READY,
            format!("a Tenant is not valid: {}", tenant_errors.join("; ")),
            false,
        ));
    }
    let desired = manifests.desired.sync_jobs.iter().find(|j| j.object.to_string() == me).cloned();
    match desired {
        Some(d) => Ok((manifests, d)),
        None => Err(Blocked::new(reason::INVALID_SPEC, "the SyncJob could not be validated", true)),
    }
}

/// Both tenants' directories, through the controller's backends and each Tenant's credentials Secret.
pub(super) async fn routes(ctx: &Context, manifests: &Manifests, tenants: &[&Tenant]) -> Result<Routes, Blocked> {
    let mut routes = Routes::new();
    for &t in tenants {
        let id = t.spec.tenant_id.trim().to_ascii_lowercase();
        if routes.contains_key(&id) {
            continue;
        }
        let secret = secrets::fetch(&ctx.client, t).await.map_err(|p| Blocked::new(p.reason, p.message, false))?;
        let backend = manifests.backends.get(&id).cloned().unwrap_or_default();
        let route = ctx
            .backends
            .route(&id, &backend, &secret)
            .map(|inner| Arc::new(Instrumented { inner, metrics: ctx.metrics.clone() }) as Arc<dyn Directory>)
            .map_err(|why| Blocked::new(reason::DIRECTORY_UNAVAILABLE, why, false))?;
        routes.insert(id, Ok(route));
    }
    Ok(routes)
}

/// The prerequisites (R12, R13) missing in the two directories now.
async fn missing_now(job: &DesiredSyncJob, routes: &Routes) -> Result<Vec<MissingPrerequisite>, String> {
    let dir = |id: &str| match routes.get(id) {
        Some(Ok(d)) => Ok(d.clone()),
        Some(Err(why)) => Err(why.clone()),
        None => Err(format!("tenant {id}: no directory is configured")),
    };
    let (source, target) = (dir(&job.source_tenant_id)?, dir(&job.target_tenant_id)?);
    let scope = crate::directory::SnapshotScope::settings();
    let (s, t) =
        futures::join!(source.snapshot_of(&job.source_tenant_id, &scope), target.snapshot_of(&job.target_tenant_id, &scope));
    match (s, t) {
        (Ok(Some(s)), Ok(Some(t))) => Ok(sync::missing_in_directory(job, &s, &t)),
        (Ok(None), _) | (_, Ok(None)) => Err("a tenant does not exist in its directory".into()),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    }
}

/// The last run's report, as the store keeps it (JSON of `SyncRunReport`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LastReport {
    pub state: Option<SyncJobState>,
    pub full: bool,
    pub on_demand: Vec<String>,
    pub counts: SyncCounts,
    pub errors: Vec<SyncUserError>,
    pub missing_prerequisites: Vec<Missing>,
    pub failure: Option<String>,
    pub users_in_scope: u64,
    pub finished_at: Option<String>,
}

/// A missing prerequisite as a report holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Missing {
    pub rule: String,
    pub tenant: String,
    pub setting: String,
    pub message: String,
}

impl Missing {
    /// "setting in tenant (rule)".
    pub fn readable(&self) -> String {
        format!("{} in {} ({})", self.setting, self.tenant, self.rule)
    }
}

impl From<&MissingPrerequisite> for Missing {
    fn from(m: &MissingPrerequisite) -> Self {
        Self { rule: m.rule.to_string(), tenant: m.tenant.clone(), setting: m.setting.clone(), message: m.message.clone() }
    }
}

fn last_report(state: Option<&JobState>) -> Option<LastReport> {
    state?.last_report.as_deref().and_then(|r| serde_json::from_str(r).ok())
}

/// "3 created, 1 updated" (only what is not zero), or "nothing to write".
pub fn counts_note(c: &SyncCounts) -> String {
    let parts: Vec<String> =
        [("created", c.created), ("updated", c.updated), ("deleted", c.deleted), ("disabled", c.disabled), ("failed", c.failed)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
    if parts.is_empty() { "nothing to write".into() } else { parts.join(", ") }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// When a job whose last run failed may run again: 1 min doubling to 5 min, its interval (at most an
/// hour) once quarantined. `None` when the last run succeeded.
pub fn retry_at(job: &DesiredSyncJob, state: Option<&JobState>) -> Option<DateTime<Utc>> {
    let state = state?;
    let n = state.health.consecutive_failures;
    if n == 0 {
        return None;
    }
    let delay = if n >= QUARANTINE_AFTER {
        job.interval.min(MAX_REQUEUE)
    } else {
        FIRST_RETRY.saturating_mul(2u32.saturating_pow(n - 1)).min(MAX_RETRY)
    };
    let last = state.last_run.as_deref().and_then(parse_time)?;
    Some(last + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::minutes(5)))
}

/// When the job runs next, from what the store remembers: deterministic, so a reconcile that runs
/// nothing writes the same status.
fn next_run(job: &DesiredSyncJob, state: Option<&JobState>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if job.suspended {
        return None;
    }
    if let Some(at) = retry_at(job, state) {
        return Some(at);
    }
    match sync::due(job, state, now) {
        Due::At(t) => Some(t),
        Due::Now(_) | Due::Paused => None,
    }
}

/// The status of a job that could be validated: its fields from the store (the last report, the
/// health), its conditions from those and from `problem` (what kept this reconcile from running).
/// `checked` is the list of missing prerequisites found now, when they were checked without a run.
pub fn status_from_store(
    job: &DesiredSyncJob,
    state: Option<&JobState>,
    checked: Option<&[MissingPrerequisite]>,
    problem: Option<(&'static str, String)>,
    previous: Option<&SyncJobStatus>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> SyncJobStatus {
    let report = last_report(state);
    let mut next = match (&report, previous) {
        (Some(r), _) => SyncJobStatus {
            last_run: state.and_then(|s| s.last_run.clone()).or_else(|| r.finished_at.clone()),
            last_run_full: Some(r.full),
            last_run_counts: Some(r.counts),
            users_in_scope: Some(r.users_in_scope),
            errors: r.errors.clone(),
            missing_prerequisites: r.missing_prerequisites.iter().map(Missing::readable).collect(),
            ..SyncJobStatus::default()
        },
        // Nothing in the store (a new replica on empty storage that could not run yet): keep what was shown.
        (None, Some(p)) => SyncJobStatus { common: Default::default(), state: None, quarantine_reason: None, ..p.clone() },
        (None, None) => SyncJobStatus::default(),
    };
    if let Some(m) = checked {
        next.missing_prerequisites = m.iter().map(|m| Missing::from(m).readable()).collect();
    }
    let health = state.map(|s| s.health.clone()).unwrap_or_default();
    let job_state = match state {
        Some(_) => health.state(job.suspended),
        None if job.suspended => SyncJobState::Paused,
        None => previous.and_then(|p| p.state).unwrap_or_default(),
    };
    next.state = Some(job_state);
    next.quarantine_reason = (job_state == SyncJobState::Quarantine).then(|| health.quarantine_reason()).flatten();
    next.next_run = next_run(job, state, now).map(rfc3339);

    let failed = |reason: &'static str, message: String| {
        vec![Cond::new(kind::READY, false, reason, message.clone()), Cond::new(kind::SYNCED, false, reason, message)]
    };
    let conds = if let Some((reason, message)) = problem {
        failed(reason, message)
    } else if job.suspended {
        failed(reason::PAUSED, "spec.suspend is true: nothing is read or written".into())
    } else if !next.missing_prerequisites.is_empty() {
        failed(
            reason::PREREQUISITES_MISSING,
            format!("prerequisites missing (R12, R13): {}", next.missing_prerequisites.join("; ")),
        )
    } else if job_state == SyncJobState::Quarantine {
        failed(reason::QUARANTINED, next.quarantine_reason.clone().unwrap_or_else(|| "quarantined".into()))
    } else if let Some(why) = report.as_ref().and_then(|r| r.failure.clone()) {
        failed(reason::RUN_FAILED, format!("the last run failed: {why}"))
    } else if let Some(r) = &report {
        let what = if r.on_demand.is_empty() { "last run" } else { "last run (provision on demand)" };
        let message = format!(
            "{what} at {}: {}; {} users in scope",
            next.last_run.as_deref().unwrap_or("?"),
            counts_note(&r.counts),
            r.users_in_scope
        );
        vec![
            Cond::new(kind::READY, true, reason::RECONCILED, message),
            Cond::new(kind::SYNCED, true, reason::SYNCED, "the last run succeeded"),
        ]
    } else {
        failed(reason::PENDING, "the job has not run yet".into())
    };
    let t = Time(Timestamp::from_second(now.timestamp()).unwrap_or_else(|_| Timestamp::now()));
    next.common = status::common(&conds, generation, previous.map(|p| &p.common), &t);
    next
}

/// The status of a job that cannot be considered at all (a Tenant missing or not allowed, an invalid
/// spec): new conditions, every other field as it was.
fn status_blocked(blocked: &Blocked, previous: Option<&SyncJobStatus>, generation: Option<i64>) -> SyncJobStatus {
    let mut conds = vec![
        Cond::new(kind::READY, false, blocked.reason, blocked.message.clone()),
        Cond::new(kind::SYNCED, false, blocked.reason, blocked.message.clone()),
    ];
    if blocked.stalled {
        conds.push(Cond::new(kind::STALLED, true, blocked.reason, blocked.message.clone()));
    }
    let mut next = previous.cloned().unwrap_or_default();
    next.common = status::common(&conds, generation, previous.map(|p| &p.common), &Time(Timestamp::now()));
    next
}

/// What this reconcile does about running the job.
enum Step {
    /// Leave it: not due, paused, waiting to retry, or prerequisites still missing.
    Wait,
    /// `run_jobs` with `only_due` (it may still find the job not due).
    Run { only_due: bool },
}

/// What one reconcile did about a job.
pub(super) struct Attempt {
    /// The run, when the job ran.
    pub(super) ran: Option<Box<sync::SyncRunReport>>,
    /// Why it could not run at all.
    pub(super) could_not_run: Option<String>,
    /// The prerequisites found missing without a run (they were missing last time and still are).
    pub(super) checked_missing: Option<Vec<MissingPrerequisite>>,
}

/// Runs the job through `engine::sync::run_jobs` when it is due: first run or changed settings, interval
/// elapsed, provision on demand, prerequisites back in place, or the retry time after a failed run.
/// `key` names it in logs. Shared by the SyncJob controller and the jobs multi-tenant organizations
/// generate (`super::mto`).
pub(super) async fn run_if_due(
    base: &Context,
    key: &str,
    manifests: &Manifests,
    routes: &Routes,
    store: &sync::SyncStore,
    desired: &DesiredSyncJob,
    state: Option<&JobState>,
) -> Attempt {
    let desired_state = &manifests.desired;
    let sync_key = job_key(desired);
    let now = Utc::now();
    let before = last_report(state);
    let mut checked_missing: Option<Vec<MissingPrerequisite>> = None;
    let step = if desired.suspended {
        Step::Wait
    } else if before.as_ref().is_some_and(|r| !r.missing_prerequisites.is_empty()) {
        // Missing last time: run as soon as they are in place (a Tenant's change re-queues this job).
        match missing_now(desired, routes).await {
            Ok(m) if !m.is_empty() => {
                checked_missing = Some(m);
                Step::Wait
            }
            _ => Step::Run { only_due: false },
        }
    } else if !sync::pending_on_demand(desired, state).is_empty() {
        Step::Run { only_due: true }
    } else if let Some(at) = retry_at(desired, state) {
        if now >= at { Step::Run { only_due: false } } else { Step::Wait }
    } else {
        Step::Run { only_due: true }
    };

    let mut ran = None;
    let mut could_not_run = None;
    if let Step::Run { only_due } = step {
        // The target tenant has one writer at a time (engine::writer_lock): a CLI `sync run` or `apply` of it waits.
        let target = desired.target_tenant_id.trim().to_ascii_lowercase();
        let backend = manifests.backends.get(&target).cloned().unwrap_or_default();
        let locked =
            base.backends.lock_writers([(target.as_str(), &backend)], "entente controller", super::WRITER_WAIT, |_, _| {}).await;
        let outcome = match &locked {
            Ok(_) => {
                let selection = Selection { jobs: vec![sync_key.clone()], only_due };
                run_jobs(desired_state, routes, store, &selection, &RunOptions::default(), None).await
            }
            Err(busy) => vec![JobOutcome::Error { job: desired.object.clone(), message: busy.to_string() }],
        };
        drop(locked);
        match outcome.into_iter().next() {
            Some(JobOutcome::Ran { report }) => {
                let outcome = if !report.missing_prerequisites.is_empty() {
                    "prerequisites_missing"
                } else if report.failed() {
                    "failed"
                } else {
                    "success"
                };
                base.metrics.sync_run(outcome);
                base.metrics.sync_users(&report.counts);
                info!(sync_job = %key, outcome, counts = %counts_note(&report.counts), full = report.full, "ran");
                ran = Some(report);
            }
            Some(JobOutcome::NotDue { next_run, .. }) => debug!(sync_job = %key, next_run = %next_run, "not due"),
            Some(JobOutcome::AfterApply { reason, .. }) => debug!(sync_job = %key, reason = %reason, "after apply"),
            Some(JobOutcome::Error { message, .. }) => {
                base.metrics.sync_run("error");
                warn!(sync_job = %key, error = %message, "could not run");
                could_not_run = Some(message);
            }
            None => could_not_run = Some("the job was not selected".into()),
        }
    }

    Attempt { ran, could_not_run, checked_missing }
}

async fn reconcile(job: &SyncJob, ctx: &SyncContext) -> Result<Action, Error> {
    let base = ctx.base.as_ref();
    let jobs_ready = matches!(futures::FutureExt::now_or_never(ctx.jobs.wait_until_ready()), Some(Ok(())));
    if !base.caches_ready() || !jobs_ready {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if is_deleting(job) {
        return Ok(Action::await_change());
    }
    let key = key_of(job);
    let previous = job.status.as_ref();
    let generation = job.meta().generation;

    // Tenants, namespaces, validation.
    let checked = resolve(job, &base.tenants).and_then(|(source, target)| {
        let (manifests, desired) = validate(job, &source, &target, &base.tenants, &ctx.jobs)?;
        Ok((source, target, manifests, desired))
    });
    let (source, target, manifests, desired) = match checked {
        Ok(c) => c,
        Err(blocked) => {
            debug!(sync_job = %key, reason = blocked.reason, message = %blocked.message, "not run");
            let next = status_blocked(&blocked, previous, generation);
            write_status(base, job, previous, &next).await?;
            let wait = if blocked.stalled { MAX_REQUEUE } else { super::reconcile::jitter(Duration::from_secs(120)) };
            return Ok(Action::requeue(wait));
        }
    };

    // What the job remembers.
    let store = match base.backends.sync_store() {
        Ok(s) => s,
        Err(e) => return problem(base, job, &desired, None, reason::RUN_FAILED, e).await,
    };
    let sync_key = job_key(&desired);
    let state = match store.job(&sync_key) {
        Ok(s) => s,
        Err(e) => return problem(base, job, &desired, None, reason::RUN_FAILED, e.to_string()).await,
    };
    let routes = match routes(base, &manifests, &[source.as_ref(), target.as_ref()]).await {
        Ok(r) => r,
        Err(b) => return problem(base, job, &desired, state.as_ref(), b.reason, b.message).await,
    };

    // Whether to run, and the run.
    let Attempt { ran, could_not_run, checked_missing } =
        run_if_due(base, &key, &manifests, &routes, &store, &desired, state.as_ref()).await;

    // Status from what the store remembers now.
    let state = match store.job(&sync_key) {
        Ok(s) => s,
        Err(e) => return problem(base, job, &desired, None, reason::RUN_FAILED, e.to_string()).await,
    };
    let problem_now = could_not_run.map(|m| (reason::RUN_FAILED, m));
    let failing = problem_now.is_some();
    let next =
        status_from_store(&desired, state.as_ref(), checked_missing.as_deref(), problem_now, previous, generation, Utc::now());
    write_status(base, job, previous, &next).await?;
    if let Some(report) = &ran
        && report.counts.writes() > 0
    {
        let note = if report.on_demand.is_empty() {
            counts_note(&report.counts)
        } else {
            format!("provision on demand ({}): {}", report.on_demand.join(", "), counts_note(&report.counts))
        };
        base.publish(job, EventType::Normal, reason::SYNCED.into(), note).await;
    }
    Ok(Action::requeue(requeue_after(&desired, state.as_ref(), &next, failing, Utc::now())))
}

/// Writes the status of a job that could not run for `reason` (keeping what the store remembers).
async fn problem(
    base: &Context,
    job: &SyncJob,
    desired: &DesiredSyncJob,
    state: Option<&JobState>,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    warn!(sync_job = %key_of(job), reason, message = %message, "cannot run");
    let next =
        status_from_store(desired, state, None, Some((reason, message)), job.status.as_ref(), job.meta().generation, Utc::now());
    write_status(base, job, job.status.as_ref(), &next).await?;
    Ok(Action::requeue(requeue_after(desired, state, &next, true, Utc::now())))
}

/// When to look at the job again: its next run (at most an hour, at most its interval, a few seconds
/// late so it is due), 1 to 5 minutes (jittered) while it fails or its prerequisites are missing.
pub(super) fn requeue_after(
    job: &DesiredSyncJob,
    state: Option<&JobState>,
    status: &SyncJobStatus,
    failing: bool,
    now: DateTime<Utc>,
) -> Duration {
    use rand::Rng;
    if job.suspended {
        return MAX_REQUEUE;
    }
    let failures = state.map_or(0, |s| s.health.consecutive_failures);
    let retry = FIRST_RETRY.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(8))).min(MAX_RETRY);
    let next = status.next_run.as_deref().and_then(parse_time);
    let until = next.map(|t| (t - now).to_std().unwrap_or(Duration::ZERO));
    let late = Duration::from_millis(rand::rng().random_range(1000..5000));
    let bound = job.interval.min(MAX_REQUEUE);
    if failing || !status.missing_prerequisites.is_empty() {
        // Prerequisites are checked again at least every few minutes; a failed run retries at its time.
        let retry = super::reconcile::jitter(retry);
        return match until {
            Some(u) if failures > 0 && u < retry => u + late,
            _ => retry,
        };
    }
    match until {
        Some(u) => u.min(bound) + late,
        None => super::reconcile::jitter(FIRST_RETRY),
    }
}

/// Patches the status when it changed; Events on transitions.
async fn write_status(
    base: &Context,
    job: &SyncJob,
    previous: Option<&SyncJobStatus>,
    next: &SyncJobStatus,
) -> Result<(), Error> {
    base.metrics.object(Kind::SyncJob, outcome_label(next));
    if previous == Some(next) {
        return Ok(());
    }
    patch::apply_status(&base.client, job, next).await?;
    for (type_, reason, note) in transitions(previous, next) {
        base.publish(job, type_, reason.into(), note).await;
    }
    Ok(())
}

fn ready_of(s: &SyncJobStatus) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.common.conditions.iter().find(|c| c.type_ == kind::READY)
}

fn outcome_label(s: &SyncJobStatus) -> &'static str {
    match ready_of(s).map(|c| (c.status.as_str(), c.reason.as_str())) {
        Some(("True", _)) => "ready",
        Some((_, r)) if r == reason::INVALID_SPEC => "invalid",
        Some((_, r)) if r == reason::CROSS_NAMESPACE_REF_DENIED => "denied",
        Some((_, r)) if r == reason::TENANT_NOT_FOUND || r == reason::TENANT_NOT_READY || r == reason::PREREQUISITES_MISSING => {
            "blocked"
        }
        Some((_, r)) if r == reason::PAUSED || r == reason::PENDING => "pending",
        _ => "failed",
    }
}

/// The Events a status change calls for: quarantine entered or lifted, prerequisites missing or
/// restored, and `Ready` turning False for any other reason.
pub fn transitions(previous: Option<&SyncJobStatus>, next: &SyncJobStatus) -> Vec<(EventType, &'static str, String)> {
    let mut out = Vec::new();
    let was_quarantined = previous.is_some_and(|p| p.state == Some(SyncJobState::Quarantine));
    let quarantined = next.state == Some(SyncJobState::Quarantine);
    if quarantined && !was_quarantined {
        out.push((EventType::Warning, reason::QUARANTINED, next.quarantine_reason.clone().unwrap_or_default()));
    }
    if was_quarantined && !quarantined {
        out.push((EventType::Normal, reason::QUARANTINE_LIFTED, "a run succeeded: the job left quarantine".into()));
    }
    let was_missing = previous.is_some_and(|p| !p.missing_prerequisites.is_empty());
    let missing = !next.missing_prerequisites.is_empty();
    if missing && (!was_missing || previous.is_some_and(|p| p.missing_prerequisites != next.missing_prerequisites)) {
        out.push((
            EventType::Warning,
            reason::PREREQUISITES_MISSING,
            format!("prerequisites missing (R12, R13): {}", next.missing_prerequisites.join("; ")),
        ));
    }
    if was_missing && !missing {
        out.push((EventType::Normal, reason::PREREQUISITES_RESTORED, "the prerequisites (R12, R13) are in place".into()));
    }
    let covered = [reason::QUARANTINED, reason::PREREQUISITES_MISSING, reason::PENDING];
    if let Some(ready) = ready_of(next).filter(|c| c.status == "False" && !covered.contains(&c.reason.as_str())) {
        let before = previous.and_then(ready_of);
        if before.is_none_or(|b| b.status != ready.status || b.reason != ready.reason) {
            let type_ = if ready.reason == reason::PAUSED { EventType::Normal } else { EventType::Warning };
            let reason = [
                reason::PAUSED,
                reason::RUN_FAILED,
                reason::TENANT_NOT_FOUND,
                reason::TENANT_NOT_READY,
                reason::INVALID_SPEC,
                reason::CROSS_NAMESPACE_REF_DENIED,
                reason::SECRET_NOT_FOUND,
                reason::DIRECTORY_UNAVAILABLE,
            ]
            .into_iter()
            .find(|r| *r == ready.reason)
            .unwrap_or(reason::RUN_FAILED);
            out.push((type_, reason, ready.message.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sync::JobHealth;

    fn job() -> DesiredSyncJob {
        DesiredSyncJob { mappings: vec![], ..DesiredSyncJob::new(ObjectRef::new(Kind::SyncJob, "default", "j"), "s", "t") }
    }

    fn ran(failures: u32, report: serde_json::Value) -> JobState {
        JobState {
            fingerprint: job().fingerprint(),
            cursor: Some("1".into()),
            last_run: Some("2026-01-01T00:00:00Z".into()),
            health: JobHealth { consecutive_failures: failures, last_failure: (failures > 0).then(|| "down".into()) },
            last_report: Some(report.to_string()),
            ..JobState::default()
        }
    }

    fn counts(created: u64, updated: u64) -> serde_json::Value {
        serde_json::to_value(SyncCounts { created, updated, ..SyncCounts::default() }).unwrap()
    }

    fn now() -> DateTime<Utc> {
        parse_time("2026-01-01T00:10:00Z").unwrap()
    }

    #[test]
    fn a_good_run_shows_counts_and_the_next_run_and_the_same_state_gives_the_same_status() {
        let state = ran(0, serde_json::json!({"full": true, "counts": counts(3, 1), "usersInScope": 4}));
        let s = status_from_store(&job(), Some(&state), None, None, None, Some(2), now());
        assert_eq!(s.state, Some(SyncJobState::Active));
        assert_eq!(s.last_run_counts.map(|c| c.created), Some(3));
        assert_eq!(s.users_in_scope, Some(4));
        assert_eq!(s.next_run.as_deref(), Some("2026-01-01T00:40:00Z"));
        assert_eq!(s.common.observed_generation, Some(2));
        assert_eq!(ready_of(&s).map(|c| c.status.as_str()), Some("True"));
        let again = status_from_store(&job(), Some(&state), None, None, Some(&s), Some(2), now() + chrono::Duration::minutes(5));
        assert_eq!(again, s, "nothing ran: nothing changes");
        let wait = requeue_after(&job(), Some(&state), &s, false, now());
        assert!(wait >= Duration::from_secs(30 * 60) && wait <= Duration::from_secs(30 * 60 + 5), "{wait:?}");
        assert_eq!(counts_note(&SyncCounts { created: 3, updated: 1, ..SyncCounts::default() }), "3 created, 1 updated");
    }

    #[test]
    fn failures_retry_within_minutes_and_quarantine_shows_with_events() {
        let state = ran(1, serde_json::json!({"failure": "target unreachable"}));
        assert_eq!(retry_at(&job(), Some(&state)), parse_time("2026-01-01T00:01:00Z"));
        let s = status_from_store(&job(), Some(&state), None, None, None, Some(1), now());
        assert_eq!(ready_of(&s).map(|c| c.reason.as_str()), Some(reason::RUN_FAILED));
        let q = ran(QUARANTINE_AFTER, serde_json::json!({"failure": "target unreachable"}));
        let sq = status_from_store(&job(), Some(&q), None, None, Some(&s), Some(1), now());
        assert_eq!(sq.state, Some(SyncJobState::Quarantine));
        assert!(sq.quarantine_reason.as_deref().is_some_and(|r| r.contains("down")));
        let events = transitions(Some(&s), &sq);
        assert_eq!(events.iter().map(|e| e.1).collect::<Vec<_>>(), vec![reason::QUARANTINED]);
        let good = ran(0, serde_json::json!({"counts": counts(0, 1)}));
        let sg = status_from_store(&job(), Some(&good), None, None, Some(&sq), Some(1), now());
        assert_eq!(ready_of(&sg).map(|c| c.status.as_str()), Some("True"));
        assert_eq!(transitions(Some(&sq), &sg).iter().map(|e| e.1).collect::<Vec<_>>(), vec![reason::QUARANTINE_LIFTED]);
    }
}
