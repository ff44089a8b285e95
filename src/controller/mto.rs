//! MultiTenantOrganizations (R15) in the cluster. Two parts:
//!
//! **In the Tenant reconcile** (`reconcile.rs`), an organization is one more child of every Tenant it
//! names (owner, or member by `tenantRef` or `tenantId`; `scope::organizations`, honouring
//! `allowedNamespaces`). `convert` passes the organizations with the *other* member Tenants the
//! expansion needs (their tenant ids, and that they are managed), then keeps only this Tenant's part of
//! the desired state: its membership (the owner's organization and member list, a member's join) and
//! the partner configurations generated in it. `prunable` lets the plan undo, in this tenant, what an
//! organization being deleted (our finalizer) or no longer naming it (a removed member) generated there;
//! what an organization still naming it no longer generates is undone by the planner itself.
//! `report` hands what went wrong for each organization in this tenant to the organization's
//! controller, and wakes it when something was written.
//!
//! **A `Controller<MultiTenantOrganization>`** (`run`, `reconcile_mto`), started beside the others,
//! watches organizations, Tenants (mapped to the organizations naming them) and the Tenant reconciles'
//! reports. One reconcile resolves the named Tenants (`TenantNotFound`, `CrossNamespaceRefDenied`),
//! validates through `convert_live` (`InvalidSpec`), reads every managed member's directory, runs the
//! generated sync jobs that are due (`sync_jobs::run_if_due`, the SyncJob controller's code, on the
//! shared `SyncStore`), and writes the status by server-side apply: members and their state (from the
//! owner's directory), generated partner configurations (present or not) and sync jobs (state, last
//! run, counts), errors, `Ready`/`Synced`. Events mark member transitions ("fabrikam joined: active").
//! It requeues at the earliest next run of a generated job. A deleted organization keeps our finalizer
//! until no named tenant holds an ownership record of it (the Tenant reconciles undo them), then its
//! generated jobs' sync state is forgotten and the finalizer released.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef as StoreRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::context::Context;
use super::error::Error;
use super::patch::{self, has_finalizer, is_deleting};
use super::scope::{self, Disposition, Scoped, claimed_by_other, names_tenant, namespace_of};
use super::status::{self, Cond, kind, reason};
use super::sync_jobs::{self, Attempt};
use crate::api::multi_tenant_organization::{MtoMemberStatus, MtoPartnerStatus, MtoSyncJobStatus, MultiTenantOrganizationStatus};
use crate::api::{MultiTenantOrganization, Tenant, TenantRef};
use crate::core::model::{Kind, ObjectRef, TenantSnapshot};
use crate::core::mto::{MtoMemberState, MtoRole};
use crate::core::plan::Plan;
use crate::engine::{ChangeResult, Routes};
use crate::manifest::{Live, ManifestError, Manifests, convert_live};
use crate::sync::job_key;

/// Event reasons of member transitions (a fixed set, STYLE 5).
pub mod event {
    pub const MEMBER_ACTIVE: &str = "MemberActive";
    pub const MEMBER_PENDING: &str = "MemberPending";
    pub const MEMBER_REMOVED: &str = "MemberRemoved";
}

/// How long an organization waits for its members' Tenant reconciles before it looks again.
const WAIT_FOR_MEMBERS: Duration = Duration::from_secs(30);

/// A filled, empty cache (the default of `Context::multi_tenant_organizations`).
pub fn empty_store<K>() -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

/// What Tenant reconciles tell the organization controller: per organization (`namespace/name`), per
/// Tenant (`namespace/name`), what went wrong there; and the channel that wakes the controller.
#[derive(Default)]
pub struct Shared {
    reports: Mutex<HashMap<String, BTreeMap<String, Vec<String>>>>,
    trigger: Mutex<Option<mpsc::UnboundedSender<StoreRef<MultiTenantOrganization>>>>,
}

impl Shared {
    fn set(&self, mto: &MultiTenantOrganization, tenant: &str, errors: Vec<String>) -> bool {
        let Ok(mut reports) = self.reports.lock() else { return false };
        let entry = reports.entry(key_of(mto)).or_default();
        let changed = entry.get(tenant) != Some(&errors);
        if errors.is_empty() {
            entry.remove(tenant);
        } else {
            entry.insert(tenant.to_string(), errors);
        }
        changed
    }

    fn wake(&self, mto: &MultiTenantOrganization) {
        if let Ok(t) = self.trigger.lock()
            && let Some(tx) = t.as_ref()
        {
            let _ = tx.send(StoreRef::from_obj(mto));
        }
    }

    /// "namespace/tenant: message" for every report about the organization.
    pub fn errors(&self, mto: &MultiTenantOrganization) -> Vec<String> {
        let Ok(reports) = self.reports.lock() else { return vec![] };
        reports
            .get(&key_of(mto))
            .map(|by_tenant| by_tenant.iter().flat_map(|(t, es)| es.iter().map(move |e| format!("{t}: {e}"))).collect())
            .unwrap_or_default()
    }

    fn forget(&self, mto: &MultiTenantOrganization) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.remove(&key_of(mto));
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> String {
    format!("{}/{}", namespace_of(obj), obj.meta().name.clone().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// The Tenant reconcile's part

/// The Tenant with the given tenant id that is reconciled (the oldest claiming it).
fn tenant_by_id(tenants: &Store<Tenant>, id: &str) -> Option<Arc<Tenant>> {
    let id = id.trim();
    let mut named: Vec<Arc<Tenant>> =
        tenants.state().into_iter().filter(|t| t.spec.tenant_id.trim().eq_ignore_ascii_case(id)).collect();
    named.sort_by_key(|t| (t.meta().creation_timestamp.clone(), namespace_of(t.as_ref()), t.name_any()));
    named.into_iter().find(|t| claimed_by_other(t, tenants).is_none())
}

fn tenant_by_ref(tenants: &Store<Tenant>, r: &TenantRef, own_ns: &str) -> Option<Arc<Tenant>> {
    let ns = r.namespace.clone().unwrap_or_else(|| own_ns.to_string());
    tenants.get(&StoreRef::new(&r.name).within(&ns))
}

/// Every Tenant the organization names that the cache holds: owner first, then the members.
pub fn named_tenants(mto: &MultiTenantOrganization, tenants: &Store<Tenant>) -> Vec<Arc<Tenant>> {
    let ns = namespace_of(mto);
    let mut out: Vec<Arc<Tenant>> = Vec::new();
    let mut push = |t: Option<Arc<Tenant>>| {
        if let Some(t) = t
            && !out.iter().any(|o| key_of(o.as_ref()) == key_of(t.as_ref()))
        {
            out.push(t);
        }
    };
    push(tenant_by_ref(tenants, &mto.spec.owner.tenant_ref, &ns));
    for m in &mto.spec.members {
        match (&m.tenant_ref, &m.tenant_id) {
            (Some(r), _) => push(tenant_by_ref(tenants, r, &ns)),
            (None, Some(id)) => push(tenant_by_id(tenants, id)),
            (None, None) => {}
        }
    }
    out
}

/// The converter for one Tenant's reconcile: `live` holds the Tenant and its objects, the live
/// organizations naming it among them; the other Tenants those name are added, and only this Tenant's
/// part of the desired state is kept (the planner reads only this tenant).
pub(super) fn convert(tenant: &Tenant, mut live: Live, tenants: &Store<Tenant>) -> (Manifests, Vec<ManifestError>) {
    if live.tenants.is_empty() {
        live.tenants.push(tenant.clone());
    }
    let mine = live.tenants.len();
    for m in &live.multi_tenant_organizations {
        for t in named_tenants(m, tenants) {
            if !live.tenants.iter().any(|o| key_of(o) == key_of(t.as_ref())) {
                live.tenants.push((*t).clone());
            }
        }
    }
    let others: BTreeSet<String> = live.tenants.iter().skip(mine).map(|t| format!("Tenant/{}", key_of(t))).collect();
    let (mut manifests, errors) = convert_live(&live);
    let me = scope::object_ref(Kind::Tenant, tenant);
    manifests.desired.tenants.retain(|t| t.object == me);
    // The other Tenants are validated by their own reconciles.
    let errors = errors.into_iter().filter(|e| !e.object.as_ref().is_some_and(|o| others.contains(o))).collect();
    (manifests, errors)
}

/// The organizations whose records the plan may undo in this tenant: those being deleted with our
/// finalizer, and those that no longer name this tenant (a removed member).
pub(super) fn prunable(
    store: &Store<MultiTenantOrganization>,
    tenant: &Tenant,
    organizations: &[Scoped<MultiTenantOrganization>],
) -> BTreeSet<ObjectRef> {
    let deleting = organizations.iter().filter(|s| s.disposition == Disposition::Deleting).map(|s| s.object.clone());
    let elsewhere = store
        .state()
        .into_iter()
        .filter(|m| !names_tenant(m, tenant))
        .map(|m| scope::object_ref(Kind::MultiTenantOrganization, m.as_ref()));
    deleting.chain(elsewhere).collect()
}

/// Hands what went wrong for each organization in this tenant to the organization controller, and
/// wakes it when something changed or was written for the organization.
pub(super) fn report(
    ctx: &Context,
    tenant: &Tenant,
    organizations: &[Scoped<MultiTenantOrganization>],
    invalid: &HashMap<String, Vec<String>>,
    plan: &Plan,
    results: &[ChangeResult],
) {
    let tenant_key = key_of(tenant);
    for s in organizations.iter().filter(|s| s.disposition != Disposition::Ignored) {
        let mut errors = Vec::new();
        let mut wrote = false;
        match s.disposition {
            Disposition::Denied => errors.push(scope::denied_message(s.obj.as_ref(), tenant)),
            _ => {
                if let Some(lines) = invalid.get(&s.object.to_string()) {
                    errors.extend(lines.iter().cloned());
                }
                errors.extend(plan.errors.iter().filter(|e| e.object == s.object).map(|e| e.message.clone()));
                for (change, result) in plan.changes.iter().zip(results) {
                    if change.object != s.object {
                        continue;
                    }
                    match result {
                        ChangeResult::Applied { writes, .. } => wrote |= *writes > 0,
                        ChangeResult::Refused { refusal } => errors.push(format!("refused: {refusal}")),
                        ChangeResult::Failed { category, message } => errors.push(format!("{category}: {message}")),
                        ChangeResult::Skipped { reason } => errors.push(format!("skipped: {reason}")),
                        ChangeResult::Nothing => {
                            if let Some(r) = &change.refusal {
                                errors.push(format!("refused: {r}"));
                            }
                        }
                    }
                }
            }
        }
        let changed = ctx.mto.set(s.obj.as_ref(), &tenant_key, errors);
        if changed || wrote {
            ctx.mto.wake(s.obj.as_ref());
        }
    }
}

/// The Tenants an organization event re-queues: those it names now, and those its status still lists
/// (a member just removed from the spec must undo what was generated for it).
pub(super) fn to_tenants(tenants: Store<Tenant>) -> impl Fn(MultiTenantOrganization) -> Vec<StoreRef<Tenant>> {
    move |mto: MultiTenantOrganization| {
        let ns = namespace_of(&mto);
        let mut out: Vec<StoreRef<Tenant>> = Vec::new();
        let mut push = |r: StoreRef<Tenant>| {
            if !out.contains(&r) {
                out.push(r);
            }
        };
        let by_ref = |r: &TenantRef| StoreRef::new(&r.name).within(r.namespace.as_deref().unwrap_or(&ns));
        push(by_ref(&mto.spec.owner.tenant_ref));
        for m in &mto.spec.members {
            if let Some(r) = &m.tenant_ref {
                push(by_ref(r));
            }
        }
        let ids = mto.spec.members.iter().filter_map(|m| m.tenant_id.clone());
        let listed = mto.status.iter().flat_map(|s| s.members.iter().map(|m| m.tenant_id.clone()));
        for id in ids.chain(listed) {
            if let Some(t) = tenant_by_id(&tenants, &id) {
                push(StoreRef::from_obj(t.as_ref()));
            }
        }
        out
    }
}

/// The Tenants that share an organization with this one (its expansion depends on their objects).
pub(super) fn co_members(
    tenants: Store<Tenant>,
    organizations: Store<MultiTenantOrganization>,
) -> impl Fn(Tenant) -> Vec<StoreRef<Tenant>> {
    move |tenant: Tenant| {
        let me = key_of(&tenant);
        let mut out: Vec<StoreRef<Tenant>> = Vec::new();
        for m in organizations.state().iter().filter(|m| names_tenant(m, &tenant)) {
            for t in named_tenants(m, &tenants).iter().filter(|t| key_of(t.as_ref()) != me) {
                let r = StoreRef::from_obj(t.as_ref());
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}

/// What of an organization matters to the Tenant reconciles: its spec, and its deletion.
pub(super) fn spec_or_deletion(mto: &MultiTenantOrganization) -> Option<u64> {
    let generation = mto.meta().generation.unwrap_or_default() as u64;
    Some(generation.wrapping_mul(2) + u64::from(is_deleting(mto)))
}

// ---------------------------------------------------------------------------------------------
// The organization controller

/// Runs the MultiTenantOrganization controller until `stop` turns true.
pub(super) async fn run(ctx: Arc<Context>, namespace: Option<String>, concurrency: u16, stop: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let wc = watcher::Config::default();
    let config = ControllerConfig::default().concurrency(concurrency).debounce(Duration::from_secs(1));
    let controller = Controller::new(super::scoped_api::<MultiTenantOrganization>(&client, ns), wc.clone()).with_config(config);
    let organizations = controller.store();
    let (tx, rx) = mpsc::unbounded_channel();
    if let Ok(mut t) = ctx.mto.trigger.lock() {
        *t = Some(tx);
    }
    let tenant_events = watcher(super::scoped_api::<Tenant>(&client, ns), wc)
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::generation, Default::default());
    let shutdown = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    info!(namespace = ns.unwrap_or("*"), "MultiTenantOrganization controller started");
    controller
        .watches_stream(tenant_events, move |t: Tenant| {
            organizations
                .state()
                .iter()
                .filter(|m| names_tenant(m, &t))
                .map(|m| StoreRef::from_obj(m.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(tokio_stream_of(rx))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_mto, mto_error_policy, ctx)
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => debug!(organization = %obj, "reconciled"),
                Err(e) => debug!(error = %e, "MultiTenantOrganization controller event"),
            }
        })
        .await;
}

fn tokio_stream_of<T: Send + 'static>(mut rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reconciles one MultiTenantOrganization. Never twice at once for the same one (kube-runtime).
pub async fn reconcile_mto(mto: Arc<MultiTenantOrganization>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let timeout = ctx.settings.reconcile_timeout.max(Duration::from_secs(30 * 60));
    let result = match tokio::time::timeout(timeout, reconcile(&mto, &ctx)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    };
    ctx.metrics.reconciled(Kind::MultiTenantOrganization, if result.is_ok() { "success" } else { "error" }, start.elapsed());
    if result.is_ok() {
        ctx.reset_failures(&format!("MultiTenantOrganization/{}", key_of(mto.as_ref())));
    }
    result
}

/// Retries a failed reconcile with the per-object backoff (5 s doubling to 5 min, jittered).
pub fn mto_error_policy(mto: Arc<MultiTenantOrganization>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(mto.as_ref());
    let wait = ctx.backoff(&format!("MultiTenantOrganization/{key}"));
    warn!(organization = %key, category = error.category(), error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// Why the organization cannot be considered at all.
struct Blocked {
    reason: &'static str,
    message: String,
}

/// The named Tenants (owner first), each allowing the organization's namespace.
fn resolve(mto: &MultiTenantOrganization, tenants: &Store<Tenant>) -> Result<Vec<Arc<Tenant>>, Blocked> {
    let ns = namespace_of(mto);
    let missing = |field: String, r: &TenantRef| Blocked {
        reason: reason::TENANT_NOT_FOUND,
        message: format!("{field}: Tenant {}/{} does not exist", r.namespace.as_deref().unwrap_or(&ns), r.name),
    };
    let owner = &mto.spec.owner.tenant_ref;
    tenant_by_ref(tenants, owner, &ns).ok_or_else(|| missing("spec.owner.tenantRef".into(), owner))?;
    for (i, m) in mto.spec.members.iter().enumerate() {
        if let Some(r) = &m.tenant_ref {
            tenant_by_ref(tenants, r, &ns).ok_or_else(|| missing(format!("spec.members[{i}].tenantRef"), r))?;
        }
    }
    let named = named_tenants(mto, tenants);
    if let Some(t) = named.iter().find(|t| !t.spec.allows_namespace(&namespace_of(t.as_ref()), &ns)) {
        return Err(Blocked { reason: reason::CROSS_NAMESPACE_REF_DENIED, message: scope::denied_message(mto, t) });
    }
    Ok(named)
}

fn conditions(ready: Option<&str>, problem: Option<(&'static str, String)>, pending: Option<String>) -> Vec<Cond> {
    match (problem, pending) {
        (Some((reason, message)), _) => {
            vec![Cond::new(kind::READY, false, reason, message.clone()), Cond::new(kind::SYNCED, false, reason, message)]
        }
        (None, Some(waiting)) => vec![
            Cond::new(kind::READY, false, reason::PENDING, waiting),
            Cond::new(kind::SYNCED, true, reason::SYNCED, "the member tenants did what the organization asks"),
        ],
        (None, None) => vec![
            Cond::new(kind::READY, true, reason::RECONCILED, ready.unwrap_or("every managed member is active").to_string()),
            Cond::new(kind::SYNCED, true, reason::SYNCED, "the member tenants did what the organization asks"),
        ],
    }
}

async fn reconcile(mto: &MultiTenantOrganization, ctx: &Context) -> Result<Action, Error> {
    if !ctx.caches_ready() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let key = key_of(mto);
    let object = scope::object_ref(Kind::MultiTenantOrganization, mto);
    let previous = mto.status.as_ref();
    let generation = mto.meta().generation;
    if is_deleting(mto) {
        if !has_finalizer(mto) {
            return Ok(Action::await_change());
        }
        return finish_deletion(mto, &object, ctx).await;
    }

    // Tenants, namespaces, validation.
    let named = match resolve(mto, &ctx.tenants) {
        Ok(n) => n,
        Err(b) => return blocked(ctx, mto, b).await,
    };
    let (manifests, errors) = convert_live(&Live {
        tenants: named.iter().map(|t| (**t).clone()).collect(),
        multi_tenant_organizations: vec![mto.clone()],
        ..Live::default()
    });
    let line = |e: &ManifestError| match &e.field {
        Some(f) if !f.is_empty() => format!("{f}: {}", e.message),
        _ => e.message.clone(),
    };
    let mine: Vec<String> = errors.iter().filter(|e| e.object.as_deref() == Some(&object.to_string())).map(line).collect();
    if !mine.is_empty() {
        return blocked(ctx, mto, Blocked { reason: reason::INVALID_SPEC, message: mine.join("; ") }).await;
    }
    let tenant_errors: Vec<String> = errors
        .iter()
        .filter(|e| e.object.as_deref().is_some_and(|o| o.starts_with("Tenant/")))
        .map(|e| format!("{}: {}", e.object.as_deref().unwrap_or_default(), line(e)))
        .collect();
    if !tenant_errors.is_empty() {
        let message = format!("a Tenant is not valid: {}", tenant_errors.join("; "));
        return blocked(ctx, mto, Blocked { reason: reason::TENANT_NOT_READY, message }).await;
    }
    let Some(desired) = manifests.desired.multi_tenant_organizations.iter().find(|m| m.object == object).cloned() else {
        let message = "the organization could not be validated".to_string();
        return blocked(ctx, mto, Blocked { reason: reason::INVALID_SPEC, message }).await;
    };
    let expansion = desired.expand();
    let jobs: Vec<_> = manifests.desired.sync_jobs.iter().filter(|j| j.generated_by.as_ref() == Some(&object)).cloned().collect();

    // Every managed member's directory.
    let mut problems: Vec<String> = ctx.mto.errors(mto);
    let by_id: BTreeMap<String, Arc<Tenant>> =
        named.iter().map(|t| (t.spec.tenant_id.trim().to_ascii_lowercase(), t.clone())).collect();
    let managed: Vec<&Tenant> = desired.managed().filter_map(|p| by_id.get(&p.tenant_id)).map(|t| t.as_ref()).collect();
    let routes = match sync_jobs::routes(ctx, &manifests, &managed).await {
        Ok(r) => r,
        Err(b) => return blocked(ctx, mto, Blocked { reason: b.reason, message: b.message }).await,
    };
    let snapshots = observe(&routes, &desired.managed().map(|p| p.tenant_id.clone()).collect::<Vec<_>>()).await;
    for (id, s) in &snapshots {
        if let Err(e) = s {
            problems.push(format!("tenant {id} could not be read: {e}"));
        }
    }
    let snapshot = |id: &str| snapshots.get(id).and_then(|s| s.as_ref().ok()).and_then(|s| s.as_ref());

    // Members, from the owner's directory.
    let organization = snapshot(&desired.owner.tenant_id)
        .and_then(|s| s.multi_tenant_organization.as_ref())
        .and_then(|m| m.organization.as_ref());
    let members: Vec<MtoMemberStatus> = desired
        .participants()
        .map(|p| {
            let role = desired.role_of(&p.tenant_id).unwrap_or(MtoRole::Member);
            let listed = organization.and_then(|o| o.members.iter().find(|m| m.tenant_id == p.tenant_id));
            let state = match (role, organization, listed) {
                (MtoRole::Owner, Some(_), _) => MtoMemberState::Active,
                (_, _, Some(m)) => m.state,
                _ => MtoMemberState::Pending,
            };
            MtoMemberStatus {
                tenant_id: p.tenant_id.clone(),
                display_name: p.display_name.clone(),
                role,
                state,
                managed: p.is_managed(),
            }
        })
        .collect();

    // Generated partner configurations.
    let partners: Vec<MtoPartnerStatus> = expansion
        .partners
        .iter()
        .map(|(tenant_id, p)| MtoPartnerStatus {
            tenant: by_id.get(tenant_id).map(|t| key_of(t.as_ref())).unwrap_or_else(|| tenant_id.clone()),
            partner_tenant_id: p.partner_tenant_id.clone(),
            present: snapshot(tenant_id).is_some_and(|s| {
                s.partners.iter().any(|x| x.tenant_id == p.partner_tenant_id && x.is_in_multi_tenant_organization)
            }),
        })
        .collect();

    // Generated sync jobs: run those that are due.
    let mut job_statuses = Vec::new();
    let mut requeue = super::reconcile::interval_of(by_id.get(&desired.owner.tenant_id).map(|t| t.as_ref()).unwrap_or(&named[0]));
    if !jobs.is_empty() {
        match ctx.backends.sync_store() {
            Err(e) => problems.push(format!("the sync state cannot be opened: {e}")),
            Ok(store) => {
                for job in &jobs {
                    let sync_key = job_key(job);
                    let state = store.job(&sync_key).ok().flatten();
                    let Attempt { ran, could_not_run, checked_missing } =
                        sync_jobs::run_if_due(ctx, &sync_key, &manifests, &routes, &store, job, state.as_ref()).await;
                    let state = store.job(&sync_key).ok().flatten();
                    let failing = could_not_run.is_some();
                    let problem = could_not_run.map(|m| (reason::RUN_FAILED, m));
                    let s = sync_jobs::status_from_store(
                        job,
                        state.as_ref(),
                        checked_missing.as_deref(),
                        problem,
                        None,
                        None,
                        Utc::now(),
                    );
                    requeue = requeue.min(sync_jobs::requeue_after(job, state.as_ref(), &s, failing, Utc::now()));
                    if let Some(report) = ran.filter(|r| r.counts.writes() > 0) {
                        let note = format!("{}: {}", job.object.name, sync_jobs::counts_note(&report.counts));
                        ctx.publish(mto, EventType::Normal, reason::SYNCED.into(), note).await;
                    }
                    let ready = s.common.conditions.iter().find(|c| c.type_ == kind::READY);
                    let message = ready.filter(|c| c.status != "True").map(|c| c.message.clone());
                    job_statuses.push(MtoSyncJobStatus {
                        name: job.object.name.clone(),
                        source_tenant_id: job.source_tenant_id.clone(),
                        target_tenant_id: job.target_tenant_id.clone(),
                        state: s.state,
                        last_run: s.last_run.clone(),
                        next_run: s.next_run.clone(),
                        last_run_counts: s.last_run_counts,
                        users_in_scope: s.users_in_scope,
                        message,
                    });
                }
            }
        }
    }

    // Conditions.
    let waiting: Vec<String> = members
        .iter()
        .filter(|m| m.managed && m.state != MtoMemberState::Active)
        .map(|m| format!("{} to join", m.display_name.as_deref().unwrap_or(&m.tenant_id)))
        .chain(
            partners
                .iter()
                .filter(|p| !p.present)
                .map(|p| format!("the partner configuration for {} in {}", p.partner_tenant_id, p.tenant)),
        )
        .collect();
    let problem = (!problems.is_empty()).then(|| (reason::DIRECTORY_ERROR, problems.join("; ")));
    let pending = (!waiting.is_empty()).then(|| format!("waiting for {}", waiting.join("; ")));
    let active = members.iter().filter(|m| m.state == MtoMemberState::Active).count();
    let ready = format!(
        "{active} of {} members active; {} generated partner configurations; {} generated sync jobs",
        members.len(),
        partners.len(),
        job_statuses.len()
    );
    let failing = problem.is_some();
    let waiting_for_members = pending.is_some();
    let conds = conditions(Some(&ready), problem, pending);
    let now = Time(Timestamp::now());
    let next = MultiTenantOrganizationStatus {
        common: status::common(&conds, generation, previous.map(|p| &p.common), &now),
        members,
        partner_configurations: partners,
        sync_jobs: job_statuses,
        errors: problems,
    };
    write_status(ctx, mto, previous, &next).await?;
    if failing || waiting_for_members {
        requeue = requeue.min(super::reconcile::jitter(WAIT_FOR_MEMBERS));
    }
    debug!(organization = %key, requeue = ?requeue, "reconciled");
    Ok(Action::requeue(requeue))
}

/// Reads the given tenants (lowercase ids), concurrently.
async fn observe(routes: &Routes, ids: &[String]) -> BTreeMap<String, Result<Option<TenantSnapshot>, String>> {
    let reads = ids.iter().map(|id| async move {
        let result = match routes.get(id) {
            Some(Ok(dir)) => dir.snapshot(id).await.map_err(|e| e.to_string()),
            Some(Err(why)) => Err(why.clone()),
            None => Err("no directory is configured for this tenant".to_string()),
        };
        (id.clone(), result)
    });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// The status of an organization that cannot be considered: new conditions, the rest as it was.
async fn blocked(ctx: &Context, mto: &MultiTenantOrganization, b: Blocked) -> Result<Action, Error> {
    debug!(organization = %key_of(mto), reason = b.reason, message = %b.message, "blocked");
    let previous = mto.status.as_ref();
    let stalled = matches!(b.reason, reason::INVALID_SPEC | reason::CROSS_NAMESPACE_REF_DENIED);
    let mut conds = conditions(None, Some((b.reason, b.message.clone())), None);
    if stalled {
        conds.push(Cond::new(kind::STALLED, true, b.reason, b.message));
    }
    let mut next = previous.cloned().unwrap_or_default();
    next.common = status::common(&conds, mto.meta().generation, previous.map(|p| &p.common), &Time(Timestamp::now()));
    write_status(ctx, mto, previous, &next).await?;
    Ok(Action::requeue(if stalled { Duration::from_secs(3600) } else { super::reconcile::jitter(Duration::from_secs(120)) }))
}

/// A deleted organization lets go once no named tenant holds a record of it; its generated jobs' sync
/// state is forgotten (the users they created stay, as with a deleted SyncJob).
async fn finish_deletion(mto: &MultiTenantOrganization, object: &ObjectRef, ctx: &Context) -> Result<Action, Error> {
    let named = named_tenants(mto, &ctx.tenants);
    let (manifests, _) = convert_live(&Live {
        tenants: named.iter().map(|t| (**t).clone()).collect(),
        multi_tenant_organizations: vec![mto.clone()],
        ..Live::default()
    });
    let refs: Vec<&Tenant> = named.iter().map(|t| t.as_ref()).collect();
    let waiting = match sync_jobs::routes(ctx, &manifests, &refs).await {
        Err(b) => vec![format!("{}: {}", b.reason, b.message)],
        Ok(routes) => {
            let ids: Vec<String> = named.iter().map(|t| t.spec.tenant_id.trim().to_ascii_lowercase()).collect();
            observe(&routes, &ids)
                .await
                .into_iter()
                .filter_map(|(id, s)| match s {
                    Ok(Some(s)) if s.managed.iter().any(|r| r.object == *object) => {
                        Some(format!("tenant {id} still holds what the organization generated"))
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!("tenant {id} could not be read: {e}")),
                })
                .collect()
        }
    };
    if !waiting.is_empty() {
        let previous = mto.status.as_ref();
        let message = waiting.join("; ");
        let conds = vec![
            Cond::new(kind::READY, false, reason::DELETING, message.clone()),
            Cond::new(kind::SYNCED, false, reason::DELETING, message),
        ];
        let mut next = previous.cloned().unwrap_or_default();
        next.common = status::common(&conds, mto.meta().generation, previous.map(|p| &p.common), &Time(Timestamp::now()));
        write_status(ctx, mto, previous, &next).await?;
        return Ok(Action::requeue(Duration::from_secs(10)));
    }
    if let Ok(store) = ctx.backends.sync_store() {
        for job in manifests.desired.sync_jobs.iter().filter(|j| j.generated_by.as_ref() == Some(object)) {
            if let Err(e) = store.forget_job(&job_key(job)) {
                warn!(sync_job = %job.object, error = %e, "could not forget a generated job's sync state");
            }
        }
    }
    ctx.mto.forget(mto);
    patch::remove(&ctx.client, mto).await?;
    info!(organization = %object, "finalizer removed");
    Ok(Action::await_change())
}

/// Patches the status when it changed; Events on member transitions and on `Ready` transitions.
async fn write_status(
    ctx: &Context,
    mto: &MultiTenantOrganization,
    previous: Option<&MultiTenantOrganizationStatus>,
    next: &MultiTenantOrganizationStatus,
) -> Result<(), Error> {
    let ready = next.common.conditions.iter().find(|c| c.type_ == kind::READY);
    ctx.metrics.object(Kind::MultiTenantOrganization, if ready.is_some_and(|c| c.status == "True") { "ready" } else { "failed" });
    if previous == Some(next) {
        return Ok(());
    }
    patch::apply_status(&ctx.client, mto, next).await?;
    for (type_, reason, note) in member_transitions(previous, next) {
        ctx.publish(mto, type_, reason.into(), note).await;
    }
    let before = previous.map(|p| &p.common.conditions[..]).unwrap_or_default();
    if let Some(ready) = status::ready_transition(before, &next.common.conditions) {
        let type_ = if ready.status == "True" { EventType::Normal } else { EventType::Warning };
        ctx.publish(mto, type_, ready.reason.clone(), ready.message.clone()).await;
    }
    Ok(())
}

/// The Events member changes call for: "fabrikam joined: active", a new pending member, a member gone.
pub fn member_transitions(
    previous: Option<&MultiTenantOrganizationStatus>,
    next: &MultiTenantOrganizationStatus,
) -> Vec<(EventType, &'static str, String)> {
    let before: Vec<MtoMemberStatus> = previous.map(|p| p.members.clone()).unwrap_or_default();
    let name = |m: &MtoMemberStatus| m.display_name.clone().unwrap_or_else(|| m.tenant_id.clone());
    let mut out = Vec::new();
    for m in next.members.iter().filter(|m| m.role == MtoRole::Member) {
        let was = before.iter().find(|b| b.tenant_id == m.tenant_id).map(|b| b.state);
        if was == Some(m.state) {
            continue;
        }
        match m.state {
            MtoMemberState::Active => out.push((EventType::Normal, event::MEMBER_ACTIVE, format!("{} joined: active", name(m)))),
            MtoMemberState::Pending => {
                out.push((EventType::Normal, event::MEMBER_PENDING, format!("{}: pending until it joins", name(m))))
            }
            MtoMemberState::Removed => out.push((EventType::Normal, event::MEMBER_REMOVED, format!("{}: removed", name(m)))),
        }
    }
    for b in before.iter().filter(|b| b.role == MtoRole::Member && !next.members.iter().any(|m| m.tenant_id == b.tenant_id)) {
        out.push((EventType::Normal, event::MEMBER_REMOVED, format!("{} left the organization", name(b))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, state: MtoMemberState) -> MtoMemberStatus {
        MtoMemberStatus { tenant_id: id.into(), display_name: Some(id.into()), role: MtoRole::Member, state, managed: true }
    }

    #[test]
    fn member_transitions_name_the_member() {
        let pending =
            MultiTenantOrganizationStatus { members: vec![member("fabrikam", MtoMemberState::Pending)], ..Default::default() };
        let active =
            MultiTenantOrganizationStatus { members: vec![member("fabrikam", MtoMemberState::Active)], ..Default::default() };
        let e = member_transitions(Some(&pending), &active);
        assert_eq!(
            e.iter().map(|e| (e.1, e.2.as_str())).collect::<Vec<_>>(),
            vec![(event::MEMBER_ACTIVE, "fabrikam joined: active")]
        );
        assert!(member_transitions(Some(&active), &active).is_empty());
        let gone = member_transitions(Some(&active), &MultiTenantOrganizationStatus::default());
        assert_eq!(gone.iter().map(|e| e.1).collect::<Vec<_>>(), vec![event::MEMBER_REMOVED]);
    }
}
