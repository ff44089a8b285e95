//! One reconcile of one Tenant, with every child object that names it (CrossTenantAccessPolicies,
//! GuestInvitations, IdentityProviders, SignUpFlows, ConnectedOrganizations, AccessPackages and
//! ConditionalAccessPolicies; MultiTenantOrganizations through `mto`):
//! observe is a bulk read per tenant, so the tenant is the unit of work.
//!
//! 1. Read the objects from the caches; refuse cross-namespace references the Tenant does not allow.
//! 2. Validate through the converter the CLI uses (`manifest::convert_live`, through `mto::convert`,
//!    which adds the other Tenants the MultiTenantOrganizations naming this one need); invalid objects
//!    get `InvalidSpec` and are left out.
//! 3. Add the finalizer to the Tenant and to each valid child, before any directory write.
//! 4. Read the credentials Secret (graph backend), route, observe, plan with `Prune::Only(objects being
//!    deleted that carry our finalizer)`, apply.
//! 5. Write each object's status (server-side apply, only when it differs) and an Event on each
//!    transition and each write; then remove the finalizer of deleted objects whose directory object
//!    was deleted or released.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::context::Context;
use super::error::Error;
use super::metrics::Instrumented;
use super::patch::{self, has_finalizer, is_deleting};
use super::scope::{self, Child, Disposition, Scoped, namespace_of};
use super::secrets;
use super::status::{self, GuestKnowledge, Verdict, reason};
use crate::api::access_package::AccessPackageStatus;
use crate::api::common::CommonStatus;
use crate::api::conditional_access_policy::ConditionalAccessPolicyStatus;
use crate::api::connected_organization::ConnectedOrganizationStatus;
use crate::api::cross_tenant_access_policy::CrossTenantAccessPolicyStatus;
use crate::api::identity_provider::IdentityProviderStatus;
use crate::api::sign_up_flow::SignUpFlowStatus;
use crate::api::tenant::{ManagedCounts, TenantStatus};
use crate::api::{
    AccessPackage, ConditionalAccessPolicy, ConnectedOrganization, CrossTenantAccessPolicy, GuestInvitation, IdentityProvider,
    MultiTenantOrganization, SignUpFlow, Tenant,
};
use crate::core::model::{DeletionPolicy, GuestUser, Kind, ObjectRef, TenantSnapshot};
use crate::core::operation::{InvitationResult, Outcome};
use crate::core::plan::{
    Action as PlanAction, Change, MAX_PRUNE_ANNOTATION, Observed, PlanOptions, Prune, PruneGuard, PruneOverride,
    hold_refused_prunes, plan,
};
use crate::core::validate;
use crate::directory::{Directory, SnapshotScope};
use crate::engine::{self, ChangeResult, Routes};
use crate::manifest::Live;

/// How often a tenant is re-read for drift when its `spec.reconcile.interval` says nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// Reconciles one Tenant and its objects. Never runs twice at once for the same Tenant (kube-runtime's
/// scheduler); abandoned after the configured timeout so that a stuck directory holds no worker.
pub async fn reconcile_tenant(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let key = format!("{}/{}", namespace_of(tenant.as_ref()), tenant.name_any());
    let timeout = ctx.settings.reconcile_timeout;
    let result = match tokio::time::timeout(timeout, reconcile(&tenant, &ctx)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    };
    ctx.metrics.reconciled(Kind::Tenant, if result.is_ok() { "success" } else { "error" }, start.elapsed());
    if result.is_ok() {
        ctx.reset_failures(&key);
    }
    result
}

/// Retries a failed reconcile with a per-tenant exponential backoff (5 s doubling to 5 min, jittered).
pub fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", namespace_of(tenant.as_ref()), tenant.name_any());
    let wait = ctx.backoff(&key);
    warn!(tenant = %key, category = error.category(), error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// The tenant's drift interval, with ±10% jitter so that tenants do not all wake at once.
pub fn interval_of(tenant: &Tenant) -> Duration {
    let base = tenant.spec.reconcile.interval.as_deref().and_then(|i| validate::duration(i).ok()).unwrap_or(DEFAULT_INTERVAL);
    jitter(base)
}

pub fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    d.mul_f64(rand::rng().random_range(0.9..1.1))
}

/// What the reconcile concluded for one object, and the facts its status shows.
struct Decided<K> {
    scoped: Scoped<K>,
    verdict: Verdict,
}

async fn reconcile(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    if !ctx.caches_ready() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if is_deleting(tenant) && !has_finalizer(tenant) {
        return Ok(Action::await_change());
    }
    let tenant_obj = scope::object_ref(Kind::Tenant, tenant);
    let policies = scope::children(&ctx.policies, tenant);
    let invitations = scope::children(&ctx.invitations, tenant);
    let organizations = scope::organizations(&ctx.multi_tenant_organizations, tenant);
    let others = Others {
        providers: scope::children(&ctx.identity_providers, tenant),
        flows: scope::children(&ctx.sign_up_flows, tenant),
        corgs: scope::children(&ctx.connected_organizations, tenant),
        packages: scope::children(&ctx.access_packages, tenant),
        ca: scope::children(&ctx.conditional_access_policies, tenant),
    };
    debug!(tenant = %tenant_obj, policies = policies.len(), invitations = invitations.len(), "reconciling");

    // Validate through the CLI's converter.
    let live_policies: Vec<CrossTenantAccessPolicy> = live(&policies);
    let live_invitations: Vec<GuestInvitation> = live(&invitations);
    let live_organizations: Vec<MultiTenantOrganization> = live(&organizations);
    let live_objects = Live {
        conditional_access_policies: live(&others.ca),
        connected_organizations: live(&others.corgs),
        access_packages: live(&others.packages),
        tenants: vec![tenant.clone()],
        policies: live_policies.clone(),
        invitations: live_invitations.clone(),
        identity_providers: live(&others.providers),
        sign_up_flows: live(&others.flows),
        multi_tenant_organizations: live_organizations,
        ..Live::default()
    };
    let (manifests, errors) = super::mto::convert(tenant, live_objects.clone(), &ctx.tenants);
    let mut invalid: HashMap<String, Vec<String>> = HashMap::new();
    for e in errors {
        let line = match &e.field {
            Some(f) if !f.is_empty() => format!("{f}: {}", e.message),
            _ => e.message.clone(),
        };
        invalid.entry(e.object.unwrap_or_default()).or_default().push(line);
    }
    let mut tenant_problem = invalid
        .remove(&tenant_obj.to_string())
        .map(|lines| Verdict::Invalid { reason: reason::INVALID_SPEC, message: lines.join("; ") });
    if let Some(first) = scope::claimed_by_other(tenant, &ctx.tenants) {
        tenant_problem = Some(Verdict::Invalid {
            reason: reason::DUPLICATE_TENANT_ID,
            message: format!(
                "spec.tenantId: tenant {} is already managed by Tenant {}/{}",
                tenant.spec.tenant_id,
                namespace_of(first.as_ref()),
                first.name_any()
            ),
        });
    }
    let desired_tenant = manifests.desired.tenants.first().filter(|_| tenant_problem.is_none());
    let Some(desired_tenant) = desired_tenant else {
        let verdict = tenant_problem.unwrap_or_else(|| Verdict::Invalid {
            reason: reason::INVALID_SPEC,
            message: "the Tenant could not be validated".into(),
        });
        let blocked = Verdict::TenantNotReady(format!("Tenant {tenant_obj} is not valid: {}", verdict.message()));
        let outcome = Reconciled::default();
        let decided_policies = decide(&policies, tenant, &invalid, &outcome, |_| blocked.clone());
        let decided_invitations = decide(&invitations, tenant, &invalid, &outcome, |_| blocked.clone());
        let decided_others = others.decide(tenant, &invalid, &outcome, &|_: &ObjectRef| blocked.clone());
        write_tenant_status(ctx, tenant, &verdict, None).await?;
        write_statuses(ctx, &decided_policies, &decided_invitations, &outcome).await?;
        decided_others.write_statuses(ctx, &outcome).await?;
        release_tenant_if_done(ctx, tenant, &policies, &invitations, &[], &[], others.holding(&[])).await?;
        return Ok(Action::requeue(interval_of(tenant)));
    };
    let tenant_id = desired_tenant.identity.tenant_id.clone();

    // Finalizers before any directory write.
    if !is_deleting(tenant) && !has_finalizer(tenant) {
        patch::add(&ctx.client, tenant).await?;
    }
    for p in policies.iter().filter(|s| needs_finalizer(s, &invalid)) {
        patch::add(&ctx.client, p.obj.as_ref()).await?;
    }
    for i in invitations.iter().filter(|s| needs_finalizer(s, &invalid)) {
        patch::add(&ctx.client, i.obj.as_ref()).await?;
    }
    for m in organizations.iter().filter(|s| needs_finalizer(s, &invalid)) {
        patch::add(&ctx.client, m.obj.as_ref()).await?;
    }
    others.add_finalizers(ctx, &invalid).await?;

    // Route, observe, plan, apply.
    let backend = manifests.backends.get(&tenant_id).cloned().unwrap_or_default();
    let (route, route_reason) = match secrets::fetch(&ctx.client, tenant).await {
        Ok(source) => {
            let route = ctx
                .backends
                .route(&tenant_id, &backend, &source)
                .map(|inner| Arc::new(Instrumented { inner, metrics: ctx.metrics.clone() }) as Arc<dyn Directory>);
            (route, reason::DIRECTORY_UNAVAILABLE)
        }
        Err(problem) => (Err(problem.message), problem.reason),
    };
    let routes: Routes = [(tenant_id.clone(), route)].into_iter().collect();
    let prune: BTreeSet<ObjectRef> = policies
        .iter()
        .map(|s| (&s.object, s.disposition))
        .chain(invitations.iter().map(|s| (&s.object, s.disposition)))
        .filter(|(_, d)| *d == Disposition::Deleting)
        .map(|(o, _)| o.clone())
        .chain(others.deleting())
        .collect();
    // One writer per tenant (engine::writer_lock), held from the read to the last write: a CLI `apply`
    // against the same state waits for this reconcile, and this one for it (then it is retried).
    let _writer = ctx
        .backends
        .lock_writers([(tenant_id.as_str(), &backend)], "entente controller", super::WRITER_WAIT, |_, _| {})
        .await
        .map_err(|e| Error::Busy(e.to_string()))?;
    let scope = manifests
        .desired
        .tenants
        .iter()
        .find(|t| t.identity.tenant_id.eq_ignore_ascii_case(&tenant_id))
        .map(|t| engine::scope_of(&manifests.desired, t))
        .unwrap_or_default();
    let observed = observe(&tenant_id, &scope, &routes).await;
    // Never orphan what a deleted object owns: when its ownership record is missing (the record store was
    // lost, e.g. a replica started on empty storage) but its directory object exists, adopt it again now
    // and delete it on the next pass.
    let readopt = match observed.get(&tenant_id) {
        Some(Ok(Some(snapshot))) => unrecorded(&policies, &invitations, snapshot),
        _ => BTreeSet::new(),
    };
    let mut prune: BTreeSet<ObjectRef> = prune.difference(&readopt).cloned().collect();
    prune.extend(super::mto::prunable(&ctx.multi_tenant_organizations, tenant, &organizations));
    let manifests = if readopt.is_empty() {
        manifests
    } else {
        let again = |s: &&Scoped<_>| readopt.contains(&s.object);
        let mut p = live_policies.clone();
        p.extend(policies.iter().filter(again).map(|s| (*s.obj).clone()));
        let mut i = live_invitations.clone();
        i.extend(invitations.iter().filter(|s| readopt.contains(&s.object)).map(|s| (*s.obj).clone()));
        super::mto::convert(tenant, Live { policies: p, invitations: i, ..live_objects.clone() }, &ctx.tenants).0
    };
    let mut manifests = manifests;
    super::identity::resolve_secrets(&ctx.client, &mut manifests.desired, &ctx.marker_key()?).await;
    // Branding images by https URL only: file paths mean nothing in the cluster (a plan error names the field).
    crate::manifest::images::resolve_images(&mut manifests.desired, crate::manifest::images::FileBase::Refused).await;
    // Deleting objects in bulk (a namespace, a GitOps prune) is held past the prune guard, as `--prune` is.
    let options = PlanOptions {
        prune: Prune::Only(prune),
        prune_guard: prune_guard_of(tenant),
        prune_override: PruneOverride::TenantAnnotation,
        ..Default::default()
    };
    let mut the_plan = plan(&manifests.desired, &observed, options);
    hold_refused_prunes(&mut the_plan);
    let report = engine::apply(&the_plan, &routes).await;
    super::mto::report(ctx, tenant, &organizations, &invalid, &the_plan, &report.results);
    let before = observed.get(&tenant_id).cloned().unwrap_or_else(|| Err("not read".into()));
    let after = if report.writes > 0 {
        observe(&tenant_id, &scope, &routes).await.remove(&tenant_id).unwrap_or_else(|| Err("not read".into()))
    } else {
        before.clone()
    };
    if let Ok(snapshot) = &after {
        ctx.metrics.managed_in(&tenant_obj.to_string(), snapshot.as_ref());
    }
    for (change, result) in the_plan.changes.iter().zip(&report.results) {
        if let ChangeResult::Applied { writes, .. } = result {
            info!(object = %change.object, action = change.action.as_str(), writes, "applied");
        }
    }

    let outcome = Reconciled {
        changes: the_plan.changes.iter().zip(report.results.iter()).map(|(c, r)| (c.object.clone(), (c, r))).collect(),
        errors: the_plan.errors.iter().map(|e| (e.object.clone(), e.message.clone())).collect(),
        unreadable_reason: route_reason,
        before: before.as_ref().ok().cloned().flatten(),
        after: after.as_ref().ok().map(|s| s.as_ref()),
        readable: after.is_ok(),
        readopted: readopt.clone(),
    };

    // Statuses and events.
    let decided_policies = decide(&policies, tenant, &invalid, &outcome, |o| outcome.verdict(o));
    let decided_invitations = decide(&invitations, tenant, &invalid, &outcome, |o| outcome.verdict(o));
    let decided_others = others.decide(tenant, &invalid, &outcome, &|o: &ObjectRef| outcome.verdict(o));
    let mut tenant_verdict = outcome.verdict(&tenant_obj);
    if is_deleting(tenant) && tenant_verdict.ready() {
        tenant_verdict = Verdict::Deleting(format!(
            "waiting for {} objects that name this Tenant to be deleted",
            remaining(&decided_policies) + remaining(&decided_invitations) + decided_others.remaining()
        ));
    }
    write_tenant_status(ctx, tenant, &tenant_verdict, outcome.after).await?;
    write_statuses(ctx, &decided_policies, &decided_invitations, &outcome).await?;
    decided_others.write_statuses(ctx, &outcome).await?;
    publish_writes(ctx, tenant, &policies, &invitations, &others, &outcome).await;

    // Release what was deleted or retained.
    let released_p = release(ctx, &decided_policies, &outcome).await?;
    let released_i = release(ctx, &decided_invitations, &outcome).await?;
    let released_o = decided_others.release(ctx, &outcome).await?;
    let holding_o = others.holding(&released_o);
    release_tenant_if_done(ctx, tenant, &policies, &invitations, &released_p, &released_i, holding_o).await?;

    let failed = decided_policies.iter().map(|d| &d.verdict).chain(decided_invitations.iter().map(|d| &d.verdict));
    let failed = failed.chain(decided_others.verdicts());
    let failed = failed.chain(std::iter::once(&tenant_verdict)).filter(|v| matches!(v, Verdict::Failed { .. })).count();
    if failed > 0 {
        return Err(Error::Sync { tenant: tenant_obj.to_string(), failed });
    }
    if !outcome.readopted.is_empty() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::requeue(interval_of(tenant)))
}

/// The Tenant's prune guard: `entente.dev/max-prune` (a number, or `unlimited`), else the default.
fn prune_guard_of(tenant: &Tenant) -> PruneGuard {
    let Some(value) = tenant.annotations().get(MAX_PRUNE_ANNOTATION) else { return PruneGuard::Default };
    match value.trim() {
        "unlimited" => PruneGuard::Unguarded,
        n => n.parse().map(PruneGuard::AtMost).unwrap_or_else(|_| {
            warn!(tenant = %tenant.name_any(), value, "{MAX_PRUNE_ANNOTATION} is neither a number nor \"unlimited\": the default prune guard applies");
            PruneGuard::Default
        }),
    }
}

/// Deleted objects (our finalizer, `deletionPolicy: Delete`) with no ownership record in the tenant
/// whose directory object still exists by its natural key, and no other object's record claims it.
fn unrecorded(
    policies: &[Scoped<CrossTenantAccessPolicy>],
    invitations: &[Scoped<GuestInvitation>],
    snapshot: &TenantSnapshot,
) -> BTreeSet<ObjectRef> {
    let recorded = |object: &ObjectRef, kind: Kind, key: &str| {
        snapshot.managed.iter().any(|r| r.object == *object || (r.kind == kind && r.key.eq_ignore_ascii_case(key)))
    };
    let deleting = |d: Disposition, p: DeletionPolicy| d == Disposition::Deleting && p == DeletionPolicy::Delete;
    let partners = policies.iter().filter(|s| deleting(s.disposition, s.obj.spec.deletion_policy)).filter(|s| {
        let key = &s.obj.spec.partner_tenant_id;
        !recorded(&s.object, Kind::CrossTenantAccessPolicy, key)
            && snapshot.partners.iter().any(|p| p.tenant_id.eq_ignore_ascii_case(key))
    });
    let guests = invitations.iter().filter(|s| deleting(s.disposition, s.obj.spec.deletion_policy)).filter(|s| {
        let key = &s.obj.spec.invited_user_email_address;
        !recorded(&s.object, Kind::GuestInvitation, key)
            && snapshot.guests.iter().any(|g| crate::core::validate::same_address(&g.mail, key))
    });
    partners.map(|s| s.object.clone()).chain(guests.map(|s| s.object.clone())).collect()
}

/// `engine::observe` for the one tenant of a reconcile. (`engine::observe` itself cannot be used here:
/// its future is not provably `Send` in the controller's generic context, rust-lang/rust#102211, because
/// its per-tenant closure borrows a `&DesiredTenant`; see the report on the engine.)
async fn observe(tenant_id: &str, scope: &SnapshotScope, routes: &Routes) -> Observed {
    let result = match routes.get(tenant_id) {
        Some(Ok(dir)) => dir.snapshot_of(tenant_id, scope).await.map_err(|e| e.to_string()),
        Some(Err(why)) => Err(why.clone()),
        None => Err("no directory is configured for this tenant".to_string()),
    };
    [(tenant_id.to_string(), result)].into_iter().collect()
}

fn live<K: Child>(scoped: &[Scoped<K>]) -> Vec<K> {
    scoped.iter().filter(|s| s.disposition == Disposition::Live).map(|s| (*s.obj).clone()).collect()
}

/// A valid live child without our finalizer yet.
fn needs_finalizer<K: Child>(s: &Scoped<K>, invalid: &HashMap<String, Vec<String>>) -> bool {
    s.disposition == Disposition::Live && !invalid.contains_key(&s.object.to_string()) && !has_finalizer(s.obj.as_ref())
}

fn remaining<K: Child>(decided: &[Decided<K>]) -> usize {
    decided.iter().filter(|d| has_finalizer(d.scoped.obj.as_ref())).count()
}

/// The plan and apply results, by object.
#[derive(Default)]
struct Reconciled<'a> {
    changes: HashMap<ObjectRef, (&'a Change, &'a ChangeResult)>,
    errors: HashMap<ObjectRef, String>,
    unreadable_reason: &'static str,
    /// The tenant as read before applying (`None`: not in the directory, or unreadable).
    before: Option<TenantSnapshot>,
    /// The tenant as read after applying (`Some(None)`: not in the directory; `None`: unreadable).
    after: Option<Option<&'a TenantSnapshot>>,
    readable: bool,
    /// Deleted objects adopted again in this pass (their record was missing): deleted on the next one.
    readopted: BTreeSet<ObjectRef>,
}

impl Reconciled<'_> {
    fn verdict(&self, object: &ObjectRef) -> Verdict {
        if let Some(message) = self.errors.get(object) {
            return Verdict::Failed { reason: self.unreadable_reason, message: message.clone() };
        }
        let Some((change, result)) = self.changes.get(object) else {
            return Verdict::Failed { reason: reason::DIRECTORY_ERROR, message: "the object was not planned".into() };
        };
        match result {
            ChangeResult::Refused { refusal } => {
                Verdict::Refused { reason: status::refusal_reason(refusal.reason), message: refusal.message.clone() }
            }
            ChangeResult::Failed { category, message } => {
                Verdict::Failed { reason: status::failure_reason(category), message: message.clone() }
            }
            ChangeResult::Skipped { reason: why } => Verdict::Failed { reason: reason::DEPENDENCY_FAILED, message: why.clone() },
            ChangeResult::Nothing | ChangeResult::Applied { .. } => match (change.action, &change.refusal) {
                (PlanAction::Refused, Some(refusal)) => {
                    Verdict::Refused { reason: status::refusal_reason(refusal.reason), message: refusal.message.clone() }
                }
                (PlanAction::Drift, _) => Verdict::Drift(format!(
                    "changed outside entente ({}); the Tenant's driftPolicy is report",
                    change.diff.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
                )),
                _ => Verdict::InSync,
            },
        }
    }

    /// Whether a deleted object may let go: nothing in the directory refers to it any more.
    fn released(&self, object: &ObjectRef) -> bool {
        if !self.readable || self.errors.contains_key(object) || self.readopted.contains(object) {
            return false;
        }
        if let Some((_, result)) = self.changes.get(object) {
            return matches!(result, ChangeResult::Applied { .. } | ChangeResult::Nothing);
        }
        !self.before.as_ref().is_some_and(|s| s.managed.iter().any(|r| r.object == *object))
    }

    /// The invitation's guest user in the directory after applying.
    fn guest(&self, object: &ObjectRef, email: &str) -> GuestKnowledge<'_> {
        let Some(after) = self.after else { return GuestKnowledge::Unknown };
        let Some(snapshot) = after else { return GuestKnowledge::Known(None) };
        let key = crate::core::validate::address_key(email);
        let by_record = snapshot
            .managed
            .iter()
            .find(|r| r.kind == Kind::GuestInvitation && r.key == key && r.object == *object)
            .and_then(|r| r.external_id.as_deref())
            .and_then(|id| snapshot.guests.iter().find(|g| g.id == id));
        let by_mail = || snapshot.guests.iter().find(|g: &&GuestUser| crate::core::validate::same_address(&g.mail, email));
        GuestKnowledge::Known(by_record.or_else(by_mail))
    }

    /// The redeem URL in the ownership record of this invitation, with the guest it was issued to: kept
    /// there in the write's own transaction, so a restart between the write and the status loses nothing.
    fn recorded_redeem_url(&self, object: &ObjectRef, email: &str) -> Option<status::RecordedUrl<'_>> {
        let snapshot = self.after.flatten()?;
        let key = crate::core::validate::address_key(email);
        let record = snapshot.managed.iter().find(|r| r.kind == Kind::GuestInvitation && r.key == key && r.object == *object)?;
        Some(status::RecordedUrl { user_id: record.external_id.as_deref()?, url: record.redeem_url.as_deref()? })
    }

    fn invited(&self, object: &ObjectRef) -> Option<&InvitationResult> {
        let (_, result) = self.changes.get(object)?;
        let ChangeResult::Applied { outcomes, .. } = result else { return None };
        outcomes.iter().find_map(|o| match o {
            Outcome::Invited(r) => Some(r),
            Outcome::Done => None,
        })
    }
}

fn decide<K: Child>(
    scoped: &[Scoped<K>],
    tenant: &Tenant,
    invalid: &HashMap<String, Vec<String>>,
    outcome: &Reconciled<'_>,
    planned: impl Fn(&ObjectRef) -> Verdict,
) -> Vec<Decided<K>> {
    scoped
        .iter()
        .filter(|s| s.disposition != Disposition::Ignored)
        .map(|s| {
            let verdict = match s.disposition {
                Disposition::Denied => Verdict::Denied(scope::denied_message(s.obj.as_ref(), tenant)),
                Disposition::Live => match invalid.get(&s.object.to_string()) {
                    Some(lines) => Verdict::Invalid { reason: reason::INVALID_SPEC, message: lines.join("; ") },
                    None => planned(&s.object),
                },
                Disposition::Deleting | Disposition::Ignored => {
                    let attempted = outcome.errors.contains_key(&s.object) || outcome.changes.contains_key(&s.object);
                    match planned(&s.object) {
                        _ if outcome.released(&s.object) => Verdict::Deleting("released".into()),
                        _ if outcome.readopted.contains(&s.object) => Verdict::Deleting(
                            "its ownership record was missing: the directory object was adopted again and is deleted next".into(),
                        ),
                        v @ Verdict::Failed { .. } if attempted => v,
                        _ => Verdict::Deleting("waiting for the directory object to be deleted or released".into()),
                    }
                }
            };
            Decided { scoped: s.clone(), verdict }
        })
        .collect()
}

async fn write_tenant_status(
    ctx: &Context,
    tenant: &Tenant,
    verdict: &Verdict,
    after: Option<Option<&TenantSnapshot>>,
) -> Result<(), Error> {
    ctx.metrics.object(Kind::Tenant, verdict.outcome());
    let previous = tenant.status.as_ref();
    let now = Time(Timestamp::now());
    let conds = status::verdict_conditions(verdict, vec![]);
    let common = status::common(&conds, tenant.meta().generation, previous.map(|p| &p.common), &now);
    let managed_objects = match after {
        Some(Some(s)) => {
            let count = |k| s.managed.iter().filter(|r| r.kind == k).count() as u32;
            Some(ManagedCounts {
                cross_tenant_access_policies: count(Kind::CrossTenantAccessPolicy),
                guest_invitations: count(Kind::GuestInvitation),
            })
        }
        Some(None) => Some(ManagedCounts::default()),
        None => previous.and_then(|p| p.managed_objects.clone()),
    };
    let next = TenantStatus { common, managed_objects };
    finish(ctx, tenant, previous.map(|p| &p.common.conditions[..]), &next.common.conditions, previous == Some(&next), &next).await
}

async fn write_statuses(
    ctx: &Context,
    policies: &[Decided<CrossTenantAccessPolicy>],
    invitations: &[Decided<GuestInvitation>],
    outcome: &Reconciled<'_>,
) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    for d in policies.iter() {
        ctx.metrics.object(Kind::CrossTenantAccessPolicy, d.verdict.outcome());
        if outcome.released(&d.scoped.object) && d.scoped.disposition == Disposition::Deleting {
            continue;
        }
        let obj = d.scoped.obj.as_ref();
        let previous = obj.status.as_ref();
        let conds = status::verdict_conditions(&d.verdict, vec![]);
        let next = CrossTenantAccessPolicyStatus {
            common: status::common(&conds, obj.meta().generation, previous.map(|p| &p.common), &now),
        };
        finish(ctx, obj, previous.map(|p| &p.common.conditions[..]), &next.common.conditions, previous == Some(&next), &next)
            .await?;
    }
    for d in invitations.iter() {
        ctx.metrics.object(Kind::GuestInvitation, d.verdict.outcome());
        if outcome.released(&d.scoped.object) && d.scoped.disposition == Disposition::Deleting {
            continue;
        }
        let obj = d.scoped.obj.as_ref();
        let previous = obj.status.as_ref();
        let in_directory = matches!(d.scoped.disposition, Disposition::Live | Disposition::Deleting)
            && !matches!(d.verdict, Verdict::Invalid { .. });
        let email = &obj.spec.invited_user_email_address;
        let guest = match (in_directory, &d.verdict) {
            (true, _) => outcome.guest(&d.scoped.object, email),
            // Invalid (its Tenant, say): the directory was not read, so what the status says stays.
            (false, Verdict::Invalid { .. }) => GuestKnowledge::Unknown,
            (false, _) => GuestKnowledge::Known(None),
        };
        let guest = match (&d.verdict, guest) {
            // A failure: the directory may hold more than this reconcile could tell.
            (Verdict::Failed { .. }, GuestKnowledge::Known(None)) => GuestKnowledge::Unknown,
            (_, g) => g,
        };
        let conds = status::verdict_conditions(&d.verdict, status::invitation_conditions(&d.verdict, guest, previous));
        let common = status::common(&conds, obj.meta().generation, previous.map(|p| &p.common), &now);
        let answers = status::Issued {
            invited: outcome.invited(&d.scoped.object),
            recorded: if in_directory { outcome.recorded_redeem_url(&d.scoped.object, email) } else { None },
        };
        let next = status::invitation_status(common, guest, answers, previous, &now);
        finish(ctx, obj, previous.map(|p| &p.common.conditions[..]), &next.common.conditions, previous == Some(&next), &next)
            .await?;
    }
    Ok(())
}

/// Patches the status when it changed, and publishes an Event when `Ready` changed.
async fn finish<K, S>(
    ctx: &Context,
    obj: &K,
    previous: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
    next: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    unchanged: bool,
    status: &S,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: serde::Serialize,
{
    if unchanged {
        return Ok(());
    }
    patch::apply_status(&ctx.client, obj, status).await?;
    if let Some(ready) = status::ready_transition(previous.unwrap_or_default(), next) {
        let type_ = if ready.status == "True" { EventType::Normal } else { EventType::Warning };
        ctx.publish(obj, type_, ready.reason.clone(), ready.message.clone()).await;
    }
    Ok(())
}

/// A Normal event on each object the apply wrote for.
async fn publish_writes(
    ctx: &Context,
    tenant: &Tenant,
    policies: &[Scoped<CrossTenantAccessPolicy>],
    invitations: &[Scoped<GuestInvitation>],
    others: &Others,
    outcome: &Reconciled<'_>,
) {
    for (object, (change, result)) in &outcome.changes {
        let ChangeResult::Applied { .. } = result else { continue };
        let reason = match change.action {
            PlanAction::Create => "Created",
            PlanAction::Update if change.drift => "DriftCorrected",
            PlanAction::Update => "Updated",
            PlanAction::Delete => "Deleted",
            PlanAction::Adopt => "Adopted",
            PlanAction::Restore => "Restored",
            PlanAction::Retain => "Retained",
            PlanAction::Unchanged | PlanAction::Refused | PlanAction::Drift => continue,
        };
        let note = change.note.clone().unwrap_or_else(|| {
            let fields: Vec<&str> = change.diff.iter().map(|d| d.path.as_str()).collect();
            if fields.is_empty() { format!("{} {object}", change.action.as_str()) } else { format!("set {}", fields.join(", ")) }
        });
        match object.kind {
            Kind::Tenant => ctx.publish(tenant, EventType::Normal, reason.into(), note).await,
            Kind::CrossTenantAccessPolicy => {
                if let Some(p) = policies.iter().find(|p| p.object == *object) {
                    ctx.publish(p.obj.as_ref(), EventType::Normal, reason.into(), note).await;
                }
            }
            Kind::GuestInvitation => {
                if let Some(i) = invitations.iter().find(|i| i.object == *object) {
                    ctx.publish(i.obj.as_ref(), EventType::Normal, reason.into(), note).await;
                }
            }
            Kind::SyncJob | Kind::MultiTenantOrganization => {}
            Kind::IdentityProvider => publish_to(ctx, &others.providers, object, reason, note).await,
            Kind::SignUpFlow => publish_to(ctx, &others.flows, object, reason, note).await,
            Kind::ConnectedOrganization => publish_to(ctx, &others.corgs, object, reason, note).await,
            Kind::AccessPackage => publish_to(ctx, &others.packages, object, reason, note).await,
            Kind::ConditionalAccessPolicy => publish_to(ctx, &others.ca, object, reason, note).await,
        }
    }
}

/// Removes the finalizer of deleted objects that nothing in the directory refers to any more.
async fn release<K>(ctx: &Context, decided: &[Decided<K>], outcome: &Reconciled<'_>) -> Result<Vec<ObjectRef>, Error>
where
    K: Child + kube::Resource<Scope = kube::core::NamespaceResourceScope> + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut released = Vec::new();
    for d in decided.iter().filter(|d| d.scoped.disposition == Disposition::Deleting) {
        if outcome.released(&d.scoped.object) {
            patch::remove(&ctx.client, d.scoped.obj.as_ref()).await?;
            info!(object = %d.scoped.object, "finalizer removed");
            released.push(d.scoped.object.clone());
        }
    }
    Ok(released)
}

/// A Tenant being deleted lets go once no object that names it carries our finalizer.
async fn release_tenant_if_done(
    ctx: &Context,
    tenant: &Tenant,
    policies: &[Scoped<CrossTenantAccessPolicy>],
    invitations: &[Scoped<GuestInvitation>],
    released_p: &[ObjectRef],
    released_i: &[ObjectRef],
    holding_others: usize,
) -> Result<(), Error> {
    if !is_deleting(tenant) || !has_finalizer(tenant) {
        return Ok(());
    }
    let holding_p = holding(policies, released_p);
    let holding_i = holding(invitations, released_i);
    if holding_p + holding_i + holding_others == 0 {
        patch::remove(&ctx.client, tenant).await?;
        ctx.metrics.managed_in(&scope::object_ref(Kind::Tenant, tenant).to_string(), None);
        info!(tenant = %scope::object_ref(Kind::Tenant, tenant), "finalizer removed");
    }
    Ok(())
}

/// How many of `scoped` still carry our finalizer (those in `released` just let go).
fn holding<K: Child>(scoped: &[Scoped<K>], released: &[ObjectRef]) -> usize {
    scoped.iter().filter(|s| has_finalizer(s.obj.as_ref()) && !released.contains(&s.object)).count()
}

/// A Normal event on the object of `scoped` that `object` names.
async fn publish_to<K>(ctx: &Context, scoped: &[Scoped<K>], object: &ObjectRef, reason: &str, note: String)
where
    K: Child + Resource<Scope = kube::core::NamespaceResourceScope>,
{
    if let Some(s) = scoped.iter().find(|s| s.object == *object) {
        ctx.publish(s.obj.as_ref(), EventType::Normal, reason.into(), note).await;
    }
}

/// A child kind whose status is the common conditions and `observedGeneration` (other status fields,
/// such as a directory id, are kept as they were).
trait Conditioned:
    Child + Resource<Scope = kube::core::NamespaceResourceScope> + serde::de::DeserializeOwned + std::fmt::Debug
{
    type Status: serde::Serialize + Clone + Default + PartialEq;
    fn status_of(&self) -> Option<&Self::Status>;
    fn common_of(status: &Self::Status) -> &CommonStatus;
    fn common_mut(status: &mut Self::Status) -> &mut CommonStatus;
}

macro_rules! conditioned {
    ($($kind:ty => $status:ty),* $(,)?) => {$(
        impl Conditioned for $kind {
            type Status = $status;
            fn status_of(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn common_of(status: &$status) -> &CommonStatus {
                &status.common
            }
            fn common_mut(status: &mut $status) -> &mut CommonStatus {
                &mut status.common
            }
        }
    )*};
}

conditioned! {
    IdentityProvider => IdentityProviderStatus,
    SignUpFlow => SignUpFlowStatus,
    ConnectedOrganization => ConnectedOrganizationStatus,
    AccessPackage => AccessPackageStatus,
    ConditionalAccessPolicy => ConditionalAccessPolicyStatus,
}

/// Writes the Ready/Synced/Stalled conditions of each decided object (and an Event on each `Ready` transition).
async fn write_conditions<K: Conditioned>(ctx: &Context, decided: &[Decided<K>], outcome: &Reconciled<'_>) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    for d in decided.iter() {
        ctx.metrics.object(K::KIND, d.verdict.outcome());
        if outcome.released(&d.scoped.object) && d.scoped.disposition == Disposition::Deleting {
            continue;
        }
        let obj = d.scoped.obj.as_ref();
        let previous = obj.status_of();
        let conds = status::verdict_conditions(&d.verdict, vec![]);
        let mut next = previous.cloned().unwrap_or_default();
        *K::common_mut(&mut next) = status::common(&conds, obj.meta().generation, previous.map(K::common_of), &now);
        let previous_conditions = previous.map(|p| &K::common_of(p).conditions[..]);
        let unchanged = previous == Some(&next);
        finish(ctx, obj, previous_conditions, &K::common_of(&next).conditions, unchanged, &next).await?;
    }
    Ok(())
}

/// Adds our finalizer to each valid live object of `scoped` that lacks it.
async fn add_finalizers<K: Conditioned>(
    ctx: &Context,
    scoped: &[Scoped<K>],
    invalid: &HashMap<String, Vec<String>>,
) -> Result<(), Error> {
    for s in scoped.iter().filter(|s| needs_finalizer(s, invalid)) {
        patch::add(&ctx.client, s.obj.as_ref()).await?;
    }
    Ok(())
}

fn deleting_of<K: Child>(scoped: &[Scoped<K>]) -> impl Iterator<Item = ObjectRef> + '_ {
    scoped.iter().filter(|s| s.disposition == Disposition::Deleting).map(|s| s.object.clone())
}

/// The Tenant's IdentityProviders, SignUpFlows, ConnectedOrganizations, AccessPackages and
/// ConditionalAccessPolicies: children with a finalizer and the common status conditions.
struct Others {
    providers: Vec<Scoped<IdentityProvider>>,
    flows: Vec<Scoped<SignUpFlow>>,
    corgs: Vec<Scoped<ConnectedOrganization>>,
    packages: Vec<Scoped<AccessPackage>>,
    ca: Vec<Scoped<ConditionalAccessPolicy>>,
}

/// What the reconcile concluded for each of `Others`.
struct DecidedOthers {
    providers: Vec<Decided<IdentityProvider>>,
    flows: Vec<Decided<SignUpFlow>>,
    corgs: Vec<Decided<ConnectedOrganization>>,
    packages: Vec<Decided<AccessPackage>>,
    ca: Vec<Decided<ConditionalAccessPolicy>>,
}

impl Others {
    async fn add_finalizers(&self, ctx: &Context, invalid: &HashMap<String, Vec<String>>) -> Result<(), Error> {
        add_finalizers(ctx, &self.providers, invalid).await?;
        add_finalizers(ctx, &self.flows, invalid).await?;
        add_finalizers(ctx, &self.corgs, invalid).await?;
        add_finalizers(ctx, &self.packages, invalid).await?;
        add_finalizers(ctx, &self.ca, invalid).await
    }

    /// The objects being deleted that carry our finalizer (pruned in the directory).
    fn deleting(&self) -> Vec<ObjectRef> {
        deleting_of(&self.providers)
            .chain(deleting_of(&self.flows))
            .chain(deleting_of(&self.corgs))
            .chain(deleting_of(&self.packages))
            .chain(deleting_of(&self.ca))
            .collect()
    }

    fn decide(
        &self,
        tenant: &Tenant,
        invalid: &HashMap<String, Vec<String>>,
        outcome: &Reconciled<'_>,
        planned: &dyn Fn(&ObjectRef) -> Verdict,
    ) -> DecidedOthers {
        DecidedOthers {
            providers: decide(&self.providers, tenant, invalid, outcome, planned),
            flows: decide(&self.flows, tenant, invalid, outcome, planned),
            corgs: decide(&self.corgs, tenant, invalid, outcome, planned),
            packages: decide(&self.packages, tenant, invalid, outcome, planned),
            ca: decide(&self.ca, tenant, invalid, outcome, planned),
        }
    }

    fn holding(&self, released: &[ObjectRef]) -> usize {
        holding(&self.providers, released)
            + holding(&self.flows, released)
            + holding(&self.corgs, released)
            + holding(&self.packages, released)
            + holding(&self.ca, released)
    }
}

impl DecidedOthers {
    async fn write_statuses(&self, ctx: &Context, outcome: &Reconciled<'_>) -> Result<(), Error> {
        write_conditions(ctx, &self.providers, outcome).await?;
        write_conditions(ctx, &self.flows, outcome).await?;
        write_conditions(ctx, &self.corgs, outcome).await?;
        write_conditions(ctx, &self.packages, outcome).await?;
        write_conditions(ctx, &self.ca, outcome).await
    }

    async fn release(&self, ctx: &Context, outcome: &Reconciled<'_>) -> Result<Vec<ObjectRef>, Error> {
        let mut released = release(ctx, &self.providers, outcome).await?;
        released.extend(release(ctx, &self.flows, outcome).await?);
        released.extend(release(ctx, &self.corgs, outcome).await?);
        released.extend(release(ctx, &self.packages, outcome).await?);
        released.extend(release(ctx, &self.ca, outcome).await?);
        Ok(released)
    }

    fn remaining(&self) -> usize {
        remaining(&self.providers)
            + remaining(&self.flows)
            + remaining(&self.corgs)
            + remaining(&self.packages)
            + remaining(&self.ca)
    }

    fn verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.providers
            .iter()
            .map(|d| &d.verdict)
            .chain(self.flows.iter().map(|d| &d.verdict))
            .chain(self.corgs.iter().map(|d| &d.verdict))
            .chain(self.packages.iter().map(|d| &d.verdict))
            .chain(self.ca.iter().map(|d| &d.verdict))
    }
}
