//! The planner: desired state + observed state → a `Plan`. Pure: no IO, so every decision is a value
//! tests can assert on. The CLI's `plan`/`apply` and the controller all run this one function.
//!
//! For each object it compares a *view* (the fields entente manages, in canonical form) of what the
//! manifests ask for with the same view of what the directory holds. The view last applied is kept in
//! the ownership record, which tells an edit of the manifests (apply it) from drift in the directory
//! (correct it, or only report it when the tenant's drift policy says so).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::diff::{FieldChange, diff};
use super::model::*;
use super::operation::{GuestPatch, InvitationRequest, Operation};
use super::policy::{Home, Refusal, TenantPolicy, check_invitation, email_domain};
use super::resolved::{ResolvedAccess, ResolvedCollaboration};
use super::target::Targets;
use super::tenant_profile::TenantProfile;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub prune: Prune,
    pub prune_guard: PruneGuard,
    /// `--target`: only these objects (and the Tenants they rest on) are planned, written and pruned.
    pub targets: Targets,
    /// How the person running entente raises the prune guard, for its refusal message.
    pub prune_override: PruneOverride,
}

/// Where the prune guard's limit is raised: the CLI's flag, or the controller's Tenant annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PruneOverride {
    #[default]
    Flag,
    TenantAnnotation,
}

/// The controller's Tenant annotation that sets its prune guard: a number, or `unlimited`.
pub const MAX_PRUNE_ANNOTATION: &str = "entente.dev/max-prune";

/// How a plan error of the prune guard begins (on the Tenant).
pub const PRUNE_REFUSED: &str = "prune refused:";

impl PruneOverride {
    fn set_to(self, n: usize) -> String {
        match self {
            PruneOverride::Flag => format!("--max-prune {n}"),
            PruneOverride::TenantAnnotation => format!("annotation {MAX_PRUNE_ANNOTATION}: \"{n}\" on the Tenant"),
        }
    }
}

/// How many deletions one prune may make in a tenant before the plan refuses it (a plan error: nothing
/// is applied), so a folder dropped from a repository or a mistyped path does not delete hundreds of
/// guests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PruneGuard {
    /// At most `DEFAULT_PRUNE_ALLOWANCE` objects or `DEFAULT_PRUNE_PERCENT` % of the tenant's managed
    /// objects, whichever is more.
    #[default]
    Default,
    /// At most this many per tenant (the CLI's `--max-prune`).
    AtMost(usize),
    /// No limit.
    Unguarded,
}

pub const DEFAULT_PRUNE_ALLOWANCE: usize = 10;
pub const DEFAULT_PRUNE_PERCENT: usize = 10;

impl PruneGuard {
    /// The deletions allowed in a tenant managing `managed` objects; `None`: no limit.
    pub fn allowance(self, managed: usize) -> Option<usize> {
        match self {
            PruneGuard::Default => Some(DEFAULT_PRUNE_ALLOWANCE.max(managed.div_ceil(100 / DEFAULT_PRUNE_PERCENT))),
            PruneGuard::AtMost(n) => Some(n),
            PruneGuard::Unguarded => None,
        }
    }
}

/// Which managed objects that are absent from the desired state get deleted (honouring `deletionPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Prune {
    /// None: they are listed in a note (the CLI without `--prune`).
    #[default]
    Off,
    /// All of them (the CLI with `--prune`).
    All,
    /// Only these objects (the controller: objects being deleted, never "whatever a cache lacks").
    Only(BTreeSet<ObjectRef>),
}

/// What a directory holds for each desired tenant, by tenant id: `Ok(None)` when the tenant does
/// not exist there yet, `Err` with the reason when it could not be read.
pub type Observed = BTreeMap<String, Result<Option<TenantSnapshot>, String>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
    /// The object already exists in the directory; entente records ownership, nothing else changes.
    Adopt,
    /// A guest entente (or someone else) deleted comes back from the recycle bin: the same account, its
    /// groups and redemption state, no invitation email.
    Restore,
    /// Removed from the manifests with `deletionPolicy: Retain`: left in place, ownership dropped.
    Retain,
    /// A rule refuses it (an invitation the tenant's settings do not allow); nothing is written.
    Refused,
    /// The directory differs from the manifests by a change made outside entente, and the tenant's
    /// drift policy is `report`: shown, not corrected.
    Drift,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
            Action::Adopt => "adopt",
            Action::Restore => "restore",
            Action::Retain => "retain",
            Action::Refused => "refused",
            Action::Drift => "drift",
        }
    }
    /// Whether applying this change writes to the directory.
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete | Action::Adopt | Action::Restore | Action::Retain)
    }
}

/// What the plan does to one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub object: ObjectRef,
    pub tenant_id: String,
    pub action: Action,
    /// The difference was made outside entente (drift), not by editing the manifests.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who the object stands for, for a reviewer: a GuestInvitation's invitee address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The writes, in order. Empty unless `action.writes()`.
    #[serde(skip)]
    pub ops: Vec<Operation>,
}

/// An object that could not be planned, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanError {
    pub object: ObjectRef,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub errors: Vec<PlanError>,
    /// Things worth knowing that are not changes (e.g. pruning skipped).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub adopt: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub restore: usize,
    pub retain: usize,
    pub refused: usize,
    pub drift: usize,
    pub errors: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary { errors: self.errors.len(), ..Default::default() };
        for c in &self.changes {
            *match c.action {
                Action::Create => &mut s.create,
                Action::Update => &mut s.update,
                Action::Delete => &mut s.delete,
                Action::Unchanged => &mut s.unchanged,
                Action::Adopt => &mut s.adopt,
                Action::Restore => &mut s.restore,
                Action::Retain => &mut s.retain,
                Action::Refused => &mut s.refused,
                Action::Drift => &mut s.drift,
            } += 1;
        }
        s
    }
    /// Whether applying the plan would write anything.
    pub fn has_writes(&self) -> bool {
        self.changes.iter().any(|c| c.action.writes())
    }
}

/// Builds the plan. Changes come in dependency order across all tenants: tenants, then partner
/// configurations, then invitations (whose rules depend on both), then deletions.
/// Objects of tenants that could not be read become errors; with any error, no deletion is computed
/// (a partial view must never delete).
pub fn plan(desired: &DesiredState, observed: &Observed, options: PlanOptions) -> Plan {
    let mut out = Plan::default();
    let policies = desired_policies(desired, observed);
    let mut prunable = Vec::new();
    let (mut partner_changes, mut invitation_changes) = (Vec::new(), Vec::new());
    let mut mto_changes = Vec::new();
    let mut identity_changes = Vec::new();
    let mut entitlement_changes = Vec::new();
    let mut conditional_access_changes = Vec::new();
    let tenant_domains = mto::tenant_domains(desired);

    for tenant in &desired.tenants {
        let snapshot = match observed.get(&tenant.identity.tenant_id) {
            Some(Ok(Some(s))) => s.clone(),
            Some(Ok(None)) => {
                // A tenant is never created with an image it could not read (its name would be stored instead).
                match profile::image_errors(tenant) {
                    Some(message) => out.errors.push(PlanError { object: tenant.object.clone(), message }),
                    None => out.changes.push(create_tenant(tenant)),
                }
                empty_snapshot(tenant)
            }
            Some(Err(e)) => {
                tenant_unreadable(tenant, e, &mut out);
                entitlement::unreadable(desired, tenant, e, &mut out);
                conditional_access::unreadable(desired, tenant, e, &mut out);
                continue;
            }
            None => {
                tenant_unreadable(tenant, "the directory was not read for this tenant", &mut out);
                entitlement::unreadable(desired, tenant, "the directory was not read for this tenant", &mut out);
                conditional_access::unreadable(desired, tenant, "the directory was not read for this tenant", &mut out);
                continue;
            }
        };
        let ctx = TenantContext::new(tenant, &snapshot);
        if observed.get(&tenant.identity.tenant_id).is_some_and(|o| matches!(o, Ok(Some(_)))) {
            match profile::type_mismatch(tenant, &snapshot) {
                Some(message) => out.errors.push(PlanError { object: tenant.object.clone(), message }),
                None => out.changes.push(ctx.tenant_change()),
            }
        }
        mto_changes.extend(mto::changes(&ctx, desired));
        partner_changes.extend(tenant.partners.iter().map(|p| {
            let mut c = ctx.partner_change(p);
            mto::annotate_partner(&mut c, p, tenant, &tenant_domains);
            c
        }));
        invitation_changes.extend(
            tenant
                .invitations
                .iter()
                .map(|inv| Change { subject: Some(inv.email.clone()), ..ctx.invitation_change(inv, &policies) }),
        );
        identity_changes.extend(identity::changes(&ctx, &mut out.errors));
        entitlement_changes.extend(entitlement::changes(&ctx, desired, &mut out.errors));
        conditional_access_changes.extend(conditional_access::changes(&ctx, desired, &mut out.errors));
        prunable.push((tenant, snapshot));
    }
    mto::order(&mut mto_changes);
    out.changes.extend(mto_changes);
    out.changes.extend(partner_changes);
    out.changes.extend(invitation_changes);
    out.changes.extend(entitlement_changes);
    out.changes.extend(identity_changes);
    out.changes.extend(conditional_access_changes);

    let orphans: Vec<(String, ManagedRecord, &TenantSnapshot)> = prunable
        .iter()
        .flat_map(|(tenant, snapshot)| {
            let wanted = desired_keys(tenant, desired, snapshot);
            snapshot
                .managed
                .iter()
                .filter(move |r| r.kind != Kind::Tenant && !wanted.contains(&(r.kind, r.key.clone())))
                .map(move |r| (tenant.identity.tenant_id.clone(), r.clone(), snapshot))
        })
        .collect();
    // What a multi-tenant organization that is still desired no longer generates (a removed member's
    // partner configurations and join) is undone whatever the prune option.
    let (withdrawn, orphans) = mto::split_withdrawn(desired, orphans);
    let mut orphans: Vec<_> = match &options.prune {
        Prune::Only(set) => orphans.into_iter().filter(|(_, r, _)| set.contains(&r.object)).collect(),
        _ => orphans,
    };
    identity::order_orphans(&mut orphans);
    if !orphans.is_empty() {
        if options.prune == Prune::Off {
            out.notes.push(format!(
                "{} managed object(s) are no longer in the manifests and are kept; `--prune` would delete them: {}",
                orphans.len(),
                orphans.iter().map(|(_, r, _)| r.object.to_string()).collect::<Vec<_>>().join(", ")
            ));
        } else if !out.errors.is_empty() {
            out.notes.push(format!(
                "pruning skipped: {} object(s) failed to plan, and a partial view never deletes",
                out.errors.len()
            ));
        } else {
            let reason = match options.prune {
                Prune::Only(_) => "its object was deleted",
                _ => "pruned: no longer in the manifests",
            };
            let mut deletions: Vec<Change> = orphans.iter().map(|(tid, r, s)| prune_change(tid, r, s, reason)).collect();
            deletions.retain(|c| options.targets.matches(&c.object));
            entitlement::order_deletions(&mut deletions);
            guard_prune(&prunable, &deletions, options.prune_guard, options.prune_override, &mut out);
            out.changes.extend(deletions);
        }
    }
    mto::withdraw(withdrawn, &mut out);
    narrow(&mut out, &options.targets);
    out
}

/// The controller's way with a refused prune: the tenants' deletions are taken out of the plan and held
/// (each a plan error saying why, so its object keeps its finalizer), and everything else proceeds.
pub fn hold_refused_prunes(plan: &mut Plan) {
    let refused: Vec<(String, String)> = plan
        .errors
        .iter()
        .filter(|e| e.object.kind == Kind::Tenant && e.message.starts_with(PRUNE_REFUSED))
        .filter_map(|e| {
            let tenant = plan.changes.iter().find(|c| c.object == e.object).map(|c| c.tenant_id.to_ascii_lowercase())?;
            Some((tenant, e.message.clone()))
        })
        .collect();
    if refused.is_empty() {
        return;
    }
    let mut held = Vec::new();
    plan.changes.retain(|c| {
        let guard = refused.iter().find(|(t, _)| c.action == Action::Delete && c.tenant_id.eq_ignore_ascii_case(t));
        if let Some((_, why)) = guard {
            held.push(PlanError {
                object: c.object.clone(),
                message: format!("deletion held by the Tenant's prune guard: {why}"),
            });
        }
        guard.is_none()
    });
    plan.errors.extend(held);
}

/// The targets that name no object of the plan (a typo must not pass as "nothing to do").
pub fn unmatched_targets<'t>(plan: &Plan, targets: &'t Targets) -> Vec<&'t super::target::Target> {
    let objects: Vec<&ObjectRef> = plan.changes.iter().map(|c| &c.object).chain(plan.errors.iter().map(|e| &e.object)).collect();
    targets.0.iter().filter(|t| !objects.iter().any(|o| t.matches(o))).collect()
}

/// Keeps the targeted changes and errors, plus the changes and errors of the Tenants they belong to.
fn narrow(plan: &mut Plan, targets: &Targets) {
    if targets.is_everything() {
        return;
    }
    let targeted_tenants: BTreeSet<String> =
        plan.changes.iter().filter(|c| targets.matches(&c.object)).map(|c| c.tenant_id.to_ascii_lowercase()).collect();
    let tenant_objects: BTreeSet<ObjectRef> = plan
        .changes
        .iter()
        .filter(|c| c.object.kind == Kind::Tenant && targeted_tenants.contains(&c.tenant_id.to_ascii_lowercase()))
        .map(|c| c.object.clone())
        .collect();
    let kept = |o: &ObjectRef| targets.matches(o) || tenant_objects.contains(o);
    let mut dropped = 0usize;
    let mut included = Vec::new();
    plan.changes.retain(|c| {
        let keep = kept(&c.object);
        if keep && !targets.matches(&c.object) && c.action.writes() {
            included.push(format!("{} is included: the targeted objects of its tenant depend on it", c.object));
        }
        dropped += usize::from(!keep && c.action.writes());
        keep
    });
    plan.notes.extend(included);
    let errors_before = plan.errors.len();
    plan.errors.retain(|e| kept(&e.object));
    let errors_dropped = errors_before - plan.errors.len();
    if dropped > 0 || errors_dropped > 0 {
        plan.notes.push(format!(
            "--target leaves out {dropped} change(s) and {errors_dropped} error(s) of other objects; a plan without \
             --target shows them"
        ));
    }
}

/// The diff shown for a new object: what it sets, without bookkeeping fields.
fn creation_diff(from: &Value, to: &Value) -> Vec<FieldChange> {
    diff(from, to).into_iter().filter(|d| d.path != "deletionPolicy").collect()
}

fn tenant_unreadable(tenant: &DesiredTenant, why: &str, out: &mut Plan) {
    let message = format!("cannot read tenant {} from the directory: {why}", tenant.identity.tenant_id);
    let objects = std::iter::once(&tenant.object)
        .chain(tenant.partners.iter().map(|p| &p.object))
        .chain(tenant.invitations.iter().map(|i| &i.object))
        .chain(identity::objects(tenant));
    out.errors.extend(objects.map(|o| PlanError { object: o.clone(), message: message.clone() }));
}

fn desired_keys(tenant: &DesiredTenant, desired: &DesiredState, snapshot: &TenantSnapshot) -> BTreeSet<(Kind, String)> {
    let partners = tenant.partners.iter().map(|p| (Kind::CrossTenantAccessPolicy, p.partner_tenant_id.clone()));
    let invitations = tenant.invitations.iter().map(|i| (Kind::GuestInvitation, i.key()));
    let organizations = mto::desired_keys(desired, &tenant.identity.tenant_id);
    partners
        .chain(invitations)
        .chain(organizations)
        .chain(identity::desired_keys(tenant, snapshot))
        .chain(entitlement::desired_keys(desired, &tenant.identity.tenant_id))
        .chain(conditional_access::desired_keys(desired, &tenant.identity.tenant_id))
        .collect()
}

/// What every desired tenant's settings will be once the plan is applied: used to predict refusals.
pub fn desired_policies(desired: &DesiredState, observed: &Observed) -> Vec<TenantPolicy> {
    desired
        .tenants
        .iter()
        .map(|t| {
            let mut partners: BTreeMap<String, _> = match observed.get(&t.identity.tenant_id) {
                Some(Ok(Some(s))) => s.partners.iter().map(|p| (p.tenant_id.clone(), p.settings.clone())).collect(),
                _ => BTreeMap::new(),
            };
            partners.extend(t.partners.iter().map(|p| (p.partner_tenant_id.clone(), p.settings.clone())));
            TenantPolicy {
                identity: t.identity.clone(),
                collaboration: t.external_collaboration.clone(),
                default_access: t.default_access.clone(),
                partners,
                allowed_clouds: t.profile.allowed_clouds.clone(),
            }
        })
        .collect()
}

fn empty_snapshot(tenant: &DesiredTenant) -> TenantSnapshot {
    TenantSnapshot {
        identity: tenant.identity.clone(),
        external_collaboration: ResolvedCollaboration::default(),
        default_access: ResolvedAccess::system_default(),
        groups: vec![],
        partners: vec![],
        guests: vec![],
        deleted_guests: vec![],
        managed: vec![],
        tombstones: vec![],
        multi_tenant_organization: None,
        profile: Default::default(),
        unsupported: Default::default(),
        identity_config: Default::default(),
        entitlement: Some(Default::default()),
        conditional_access: Some(vec![]),
    }
}

fn create_tenant(tenant: &DesiredTenant) -> Change {
    let view = tenant_view(
        &tenant.external_collaboration,
        &tenant.default_access,
        tenant.groups.iter().cloned().collect(),
        &tenant.profile,
    );
    let mut ops = vec![
        Operation::CreateTenant { identity: tenant.identity.clone() },
        Operation::ConfigureTenant {
            external_collaboration: tenant.external_collaboration.clone(),
            default_access: tenant.default_access.clone(),
        },
    ];
    ops.extend(profile::creation_ops(&tenant.profile));
    if !tenant.groups.is_empty() {
        ops.push(Operation::EnsureGroups { display_names: tenant.groups.iter().cloned().collect() });
    }
    ops.push(record_op(Kind::Tenant, &tenant.identity.tenant_id, &tenant.object, None, DeletionPolicy::Retain, &view));
    let defaults = tenant_view(&ResolvedCollaboration::default(), &ResolvedAccess::system_default(), vec![], &Default::default());
    Change {
        object: tenant.object.clone(),
        tenant_id: tenant.identity.tenant_id.clone(),
        action: Action::Create,
        drift: false,
        diff: diff(&defaults, &view),
        refusal: None,
        note: None,
        subject: None,
        ops,
    }
}

fn record_op(
    kind: Kind,
    key: &str,
    object: &ObjectRef,
    external_id: Option<String>,
    deletion_policy: DeletionPolicy,
    view: &Value,
) -> Operation {
    Operation::Record {
        record: ManagedRecord {
            kind,
            key: key.to_string(),
            object: object.clone(),
            external_id,
            deletion_policy,
            applied: view.to_string(),
            redeem_url: None,
        },
    }
}

fn tenant_view(collab: &ResolvedCollaboration, access: &ResolvedAccess, groups: Vec<String>, p: &TenantProfile) -> Value {
    let mut view = json!({ "externalCollaboration": collab, "crossTenantAccessDefault": access, "groups": groups });
    profile::add_to_view(&mut view, p);
    view
}

fn partner_view(default: &ResolvedAccess, p: &PartnerConfiguration, deletion_policy: Option<DeletionPolicy>) -> Value {
    let effective = default.overlay(&p.settings);
    let mut view: Map<String, Value> = match serde_json::to_value(&effective) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let sync = p.identity_synchronization.as_ref().is_some_and(|s| s.user_sync_inbound.is_sync_allowed);
    view.insert("identitySynchronization".into(), json!({ "userSyncInbound": { "isSyncAllowed": sync } }));
    view.insert("isInMultiTenantOrganization".into(), json!(p.is_in_multi_tenant_organization));
    if let Some(dp) = deletion_policy {
        view.insert("deletionPolicy".into(), json!(dp));
    }
    Value::Object(view)
}

/// Shared lookups for the objects of one tenant.
struct TenantContext<'a> {
    tenant: &'a DesiredTenant,
    snapshot: &'a TenantSnapshot,
    records: HashMap<(Kind, &'a str), &'a ManagedRecord>,
    tombstones: HashMap<(Kind, &'a str), &'a Tombstone>,
    group_names: HashMap<&'a str, &'a str>,
    guests_by_id: HashMap<&'a str, &'a GuestUser>,
    guests_by_mail: HashMap<String, &'a GuestUser>,
}

impl<'a> TenantContext<'a> {
    fn new(tenant: &'a DesiredTenant, snapshot: &'a TenantSnapshot) -> Self {
        Self {
            tenant,
            snapshot,
            records: snapshot.managed.iter().map(|r| ((r.kind, r.key.as_str()), r)).collect(),
            tombstones: snapshot.tombstones.iter().map(|t| ((t.record.kind, t.record.key.as_str()), t)).collect(),
            group_names: snapshot.groups.iter().map(|g| (g.id.as_str(), g.display_name.as_str())).collect(),
            guests_by_id: snapshot.guests.iter().map(|g| (g.id.as_str(), g)).collect(),
            guests_by_mail: snapshot.guests.iter().map(|g| (super::validate::address_key(&g.mail), g)).collect(),
        }
    }

    fn change(&self, object: &ObjectRef, action: Action, diff: Vec<FieldChange>, ops: Vec<Operation>) -> Change {
        Change {
            object: object.clone(),
            tenant_id: self.tenant.identity.tenant_id.clone(),
            action,
            drift: false,
            diff,
            refusal: None,
            note: None,
            subject: None,
            ops,
        }
    }

    /// Update, drift or unchanged for an object that exists, given its views and ownership record.
    fn compare(
        &self,
        object: &ObjectRef,
        record: Option<&ManagedRecord>,
        desired: &Value,
        observed: &Value,
        write_ops: impl FnOnce() -> Vec<Operation>,
        record_op: Operation,
    ) -> Change {
        let mut diff_out = diff(observed, desired);
        let Some(record) = record else {
            // Exists, not ours yet: adopt it (and bring it in line when it differs).
            let action = if diff_out.is_empty() { Action::Adopt } else { Action::Update };
            let mut ops = if diff_out.is_empty() { vec![] } else { write_ops() };
            ops.push(record_op);
            let mut c = self.change(object, action, diff_out, ops);
            c.note = Some("exists in the directory and is not managed yet: entente adopts it".into());
            return c;
        };
        if record.object != *object {
            diff_out.push(FieldChange {
                path: "managedBy".into(),
                from: Some(json!(record.object.to_string())),
                to: Some(json!(object.to_string())),
            });
        }
        if diff_out.is_empty() {
            return self.change(object, Action::Unchanged, vec![], vec![]);
        }
        let manifest_unchanged = serde_json::from_str::<Value>(&record.applied).is_ok_and(|applied| applied == *desired);
        let drift = manifest_unchanged && record.object == *object;
        if drift && self.tenant.drift_policy == DriftPolicy::Report {
            let mut c = self.change(object, Action::Drift, diff_out, vec![]);
            c.drift = true;
            c.note = Some("changed outside entente; the tenant's driftPolicy is report, so it is not corrected".into());
            return c;
        }
        let content_differs = observed != desired;
        let mut ops = if content_differs { write_ops() } else { vec![] };
        ops.push(record_op);
        let mut c = self.change(object, Action::Update, diff_out, ops);
        c.drift = drift;
        c
    }

    fn tenant_change(&self) -> Change {
        let t = self.tenant;
        let present: BTreeSet<&str> = self.snapshot.groups.iter().map(|g| g.display_name.as_str()).collect();
        let missing: Vec<String> = t.groups.iter().filter(|g| !present.contains(g.as_str())).cloned().collect();
        let observed_profile = profile::observed(t, self.snapshot);
        let desired = tenant_view(&t.external_collaboration, &t.default_access, t.groups.iter().cloned().collect(), &t.profile);
        let observed = tenant_view(
            &self.snapshot.external_collaboration,
            &self.snapshot.default_access,
            t.groups.iter().filter(|g| present.contains(g.as_str())).cloned().collect(),
            &observed_profile,
        );
        let settings_differ =
            self.snapshot.external_collaboration != t.external_collaboration || self.snapshot.default_access != t.default_access;
        let record_op = record_op(Kind::Tenant, &t.identity.tenant_id, &t.object, None, DeletionPolicy::Retain, &desired);
        let mut change = self.compare(
            &t.object,
            self.records.get(&(Kind::Tenant, t.identity.tenant_id.as_str())).copied(),
            &desired,
            &observed,
            || {
                let mut ops = Vec::new();
                if settings_differ {
                    ops.push(Operation::ConfigureTenant {
                        external_collaboration: t.external_collaboration.clone(),
                        default_access: t.default_access.clone(),
                    });
                }
                if !missing.is_empty() {
                    ops.push(Operation::EnsureGroups { display_names: missing.clone() });
                }
                ops.extend(profile::ops(&t.profile, &observed_profile));
                ops
            },
            record_op,
        );
        let mut notes = profile::notes(t, self.snapshot);
        let named = &self.snapshot.identity.display_name;
        if !named.is_empty() && *named != t.identity.display_name {
            // Said, not silently ignored: the name is the directory's, set where the tenant was created.
            notes.push(format!(
                "spec.displayName {:?} differs from the directory's name for the tenant, {named:?}; entente does not \
                 rename tenants (rename it in the admin center, or write the name the directory has)",
                t.identity.display_name
            ));
        }
        notes.extend(self.released_groups());
        if !notes.is_empty() {
            let all: Vec<String> = change.note.take().into_iter().chain(notes).collect();
            change.note = Some(all.join("; "));
        }
        change
    }

    /// Groups the Tenant declared when last applied and no longer does, still in the directory: entente
    /// never deletes a group, so each is said to be left behind, with the guests in it.
    fn released_groups(&self) -> Vec<String> {
        let t = self.tenant;
        let Some(record) = self.records.get(&(Kind::Tenant, t.identity.tenant_id.as_str())) else { return vec![] };
        let applied: Value = serde_json::from_str(&record.applied).unwrap_or(Value::Null);
        let before = applied.get("groups").and_then(Value::as_array).cloned().unwrap_or_default();
        before
            .iter()
            .filter_map(Value::as_str)
            .filter(|name| !t.groups.contains(*name))
            .filter_map(|name| self.snapshot.groups.iter().find(|g| g.display_name == name))
            .map(|g| {
                let guests = self.snapshot.guests.iter().filter(|u| u.group_ids.contains(&g.id)).count();
                format!(
                    "group {:?} is no longer in spec.groups: entente stops managing it and leaves it in the directory \
                     with its {guests} guest member(s) (delete it there if it should go)",
                    g.display_name
                )
            })
            .collect()
    }

    fn partner_change(&self, p: &DesiredPartner) -> Change {
        let desired_config = PartnerConfiguration {
            tenant_id: p.partner_tenant_id.clone(),
            settings: p.settings.clone(),
            identity_synchronization: p.identity_synchronization.clone(),
            is_in_multi_tenant_organization: p.is_in_multi_tenant_organization,
        };
        let default = &self.tenant.default_access;
        let desired = partner_view(default, &desired_config, Some(p.deletion_policy));
        let record_op =
            record_op(Kind::CrossTenantAccessPolicy, &p.partner_tenant_id, &p.object, None, p.deletion_policy, &desired);
        let put = || vec![Operation::PutPartner { partner: desired_config.clone() }];
        let existing = self.snapshot.partners.iter().find(|o| o.tenant_id.eq_ignore_ascii_case(&p.partner_tenant_id));
        let Some(existing) = existing else {
            let diff = creation_diff(&partner_view(default, &PartnerConfiguration::default(), None), &desired);
            let mut ops = put();
            ops.push(record_op);
            let mut c = self.change(&p.object, Action::Create, diff, ops);
            // Graph lets an application delete a partner configuration but not restore it (the restore
            // API is for signed-in administrators only), so one entente pruned is written anew.
            if let Some(tomb) = self.tombstones.get(&(Kind::CrossTenantAccessPolicy, p.partner_tenant_id.as_str())) {
                c.note = Some(format!("{}; written again from its manifest", buried(tomb)));
            }
            return c;
        };
        let record = self.records.get(&(Kind::CrossTenantAccessPolicy, p.partner_tenant_id.as_str())).copied();
        let observed =
            partner_view(default, existing, record.map(|r| r.deletion_policy).or(record.is_none().then_some(p.deletion_policy)));
        self.compare(&p.object, record, &desired, &observed, put, record_op)
    }

    fn group_name(&self, id: &str) -> Option<&str> {
        self.group_names.get(id).copied()
    }

    fn invitation_view(
        &self,
        inv: &DesiredInvitation,
        display_name: Option<&str>,
        user_type: UserType,
        groups: Vec<&str>,
        dp: Option<DeletionPolicy>,
    ) -> Value {
        let mut v = json!({ "userType": user_type.as_str(), "groups": groups });
        if inv.display_name.is_some() {
            v["displayName"] = json!(display_name);
        }
        if let Some(dp) = dp {
            v["deletionPolicy"] = json!(dp);
        }
        v
    }

    fn invitation_change(&self, inv: &DesiredInvitation, policies: &[TenantPolicy]) -> Change {
        let key = inv.key();
        let record = self.records.get(&(Kind::GuestInvitation, key.as_str())).copied();
        let existing = record
            .and_then(|r| r.external_id.as_deref())
            .and_then(|id| self.guests_by_id.get(id).copied())
            .or_else(|| self.guests_by_mail.get(&key).copied());
        let desired_groups: Vec<&str> = inv.groups.iter().map(String::as_str).collect();
        let desired =
            self.invitation_view(inv, inv.display_name.as_deref(), inv.user_type, desired_groups, Some(inv.deletion_policy));

        let Some(guest) = existing else {
            // A guest entente managed that was deleted outside entente: restore it from the recycle bin
            // (same user, groups, no new invitation email) rather than invite someone new.
            if let Some(record) = record
                && let Some(deleted) = self.deleted_guest(record, &key)
            {
                let note = format!("the guest was deleted outside entente at {}", deleted.deleted_date_time);
                return self.restore_change(inv, &key, deleted, &desired, note);
            }
            // A guest entente itself deleted (prune, deletionPolicy: Delete) is back in the manifests.
            if record.is_none()
                && let Some(tomb) = self.tombstones.get(&(Kind::GuestInvitation, key.as_str()))
                && let Some(deleted) = self.deleted_guest(&tomb.record, &key)
            {
                let mut c = self.restore_change(inv, &key, deleted, &desired, buried(tomb));
                c.drift = false;
                return c;
            }
            let mut c = self.change(&inv.object, Action::Create, vec![], vec![]);
            if record.is_none()
                && let Some(tomb) = self.tombstones.get(&(Kind::GuestInvitation, key.as_str()))
            {
                c.note = Some(format!("{}; no longer in the recycle bin, so a new account is invited", buried(tomb)));
            }
            if let Some(refusal) = predict_refusal(self.tenant, &inv.email, policies) {
                c.action = Action::Refused;
                c.refusal = Some(refusal);
                return c;
            }
            c.diff = creation_diff(&json!({}), &desired);
            c.ops = vec![
                Operation::Invite {
                    invitation: InvitationRequest {
                        re_invite: false,
                        invited_user_email_address: inv.email.clone(),
                        invited_user_display_name: inv.display_name.clone(),
                        invite_redirect_url: inv.redirect_url.clone(),
                        invited_user_type: inv.user_type,
                        send_invitation_message: inv.send_invitation_message,
                        invited_user_message_info: inv.message_info.clone(),
                        groups: inv.groups.iter().cloned().collect(),
                    },
                },
                record_op(Kind::GuestInvitation, &key, &inv.object, None, inv.deletion_policy, &desired),
            ];
            if record.is_some() {
                c.drift = true;
                c.note = Some("the guest was deleted outside entente; it is invited again".into());
            }
            return c;
        };

        let observed_dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(inv.deletion_policy));
        let (observed, patch) = self.guest_view_and_patch(inv, guest, observed_dp);
        let record_op =
            record_op(Kind::GuestInvitation, &key, &inv.object, Some(guest.id.clone()), inv.deletion_policy, &desired);
        let user_id = guest.id.clone();
        let mut change = self.compare(
            &inv.object,
            record,
            &desired,
            &observed,
            || if patch.is_empty() { vec![] } else { vec![Operation::UpdateGuest { user_id, patch }] },
            record_op,
        );
        if change.action == Action::Adopt {
            change.note = Some(format!("{} already has user {} in this tenant: adopted, not invited again", inv.email, guest.id));
        }
        change
    }
}

impl TenantContext<'_> {
    /// The guest's view (memberships only in groups the tenant declares: only those are entente's to
    /// change) and the patch that brings it to the invitation's.
    fn guest_view_and_patch(
        &self,
        inv: &DesiredInvitation,
        guest: &GuestUser,
        observed_dp: Option<DeletionPolicy>,
    ) -> (Value, GuestPatch) {
        let managed_groups = &self.tenant.groups;
        // By name, as the desired groups are (ids order them at random).
        let observed_groups: Vec<&str> = guest
            .group_ids
            .iter()
            .filter_map(|id| self.group_name(id))
            .filter(|n| managed_groups.contains(*n))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let observed =
            self.invitation_view(inv, guest.display_name.as_deref(), guest.user_type, observed_groups.clone(), observed_dp);
        let patch = GuestPatch {
            display_name: inv.display_name.clone().filter(|d| guest.display_name.as_deref() != Some(d)),
            user_type: (guest.user_type != inv.user_type).then_some(inv.user_type),
            add_to_groups: inv.groups.iter().filter(|g| !observed_groups.contains(&g.as_str())).cloned().collect(),
            remove_from_groups: observed_groups.iter().filter(|g| !inv.groups.contains(**g)).map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        (observed, patch)
    }

    /// The recycle bin's copy of the guest an ownership record names: by the recorded id first, then by
    /// the record's key (the lowercase mail); the most recently deleted when several share the mail.
    fn deleted_guest(&self, record: &ManagedRecord, key: &str) -> Option<&DeletedGuest> {
        let bin = &self.snapshot.deleted_guests;
        record.external_id.as_deref().and_then(|id| bin.iter().find(|d| d.guest.id == id)).or_else(|| {
            bin.iter()
                .filter(|d| super::validate::same_address(&d.guest.mail, key))
                .max_by(|a, b| a.deleted_date_time.cmp(&b.deleted_date_time))
        })
    }

    /// A managed guest deleted outside entente and still in the recycle bin: restored (same id, mail,
    /// redemption state and groups; no invitation email), then brought in line with the invitation in the
    /// same change, so the next plan has nothing left to do.
    fn restore_change(&self, inv: &DesiredInvitation, key: &str, deleted: &DeletedGuest, desired: &Value, why: String) -> Change {
        let guest = &deleted.guest;
        let (mut observed, mut patch) = self.guest_view_and_patch(inv, guest, Some(inv.deletion_policy));
        if !deleted.groups_known {
            // A restore brings the memberships back; which they are, only the next snapshot tells.
            observed["groups"] = desired["groups"].clone();
            patch.add_to_groups.clear();
            patch.remove_from_groups.clear();
        }
        let mut diff_out =
            vec![FieldChange { path: "deletedDateTime".into(), from: Some(json!(deleted.deleted_date_time)), to: None }];
        diff_out.extend(diff(&observed, desired));
        let mut ops = vec![Operation::RestoreGuest { user_id: guest.id.clone() }];
        if !patch.is_empty() {
            ops.push(Operation::UpdateGuest { user_id: guest.id.clone(), patch });
        }
        ops.push(record_op(Kind::GuestInvitation, key, &inv.object, Some(guest.id.clone()), inv.deletion_policy, desired));
        let mut c = self.change(&inv.object, Action::Restore, diff_out, ops);
        c.drift = true;
        c.note = Some(format!(
            "{why}; it is restored from the recycle bin: same account ({}), groups kept, no new invitation email",
            guest.id
        ));
        c
    }
}

/// Which refusal, if any, the tenant's desired settings give an invitation (R3–R5, R9). The home tenant
/// is known when the address's domain belongs to one of the desired tenants.
fn predict_refusal(tenant: &DesiredTenant, email: &str, policies: &[TenantPolicy]) -> Option<Refusal> {
    let resource = policies.iter().find(|p| p.identity.tenant_id == tenant.identity.tenant_id)?;
    let domain = email_domain(email);
    let home_policy =
        policies.iter().find(|p| p.identity.tenant_id != tenant.identity.tenant_id && p.identity.owns_domain(domain));
    let home = home_policy.map(|policy| Home { policy, principal_ids: None });
    check_invitation(resource, email, home.as_ref()).err()
}

/// "deleted by entente on DATE (why)", for an object that comes back within the recycle-bin period.
fn buried(tomb: &Tombstone) -> String {
    let day = tomb.deleted_at.get(..10).unwrap_or(&tomb.deleted_at);
    format!("deleted by entente on {day} ({})", tomb.reason)
}

/// What a deleted guest loses, for the reviewer: `; loses group(s) A, B; loses access package(s) P`
/// (names where the snapshot has them), or nothing when the guest holds neither.
fn loses(g: &GuestUser, snapshot: &TenantSnapshot) -> String {
    let mut s = String::new();
    if !g.group_ids.is_empty() {
        let names: Vec<&str> = g
            .group_ids
            .iter()
            .map(|id| snapshot.groups.iter().find(|gr| gr.id == *id).map_or(id.as_str(), |gr| gr.display_name.as_str()))
            .collect();
        s.push_str(&format!("; loses group(s) {}", names.join(", ")));
    }
    let packages: BTreeSet<&str> = snapshot
        .entitlement
        .iter()
        .flat_map(|e| &e.assignments)
        .filter(|a| {
            super::validate::same_address(&a.user_mail, &g.mail) && matches!(a.state.as_str(), "delivered" | "pendingApproval")
        })
        .map(|a| a.package.as_str())
        .collect();
    if !packages.is_empty() {
        s.push_str(&format!("; loses access package(s) {}", packages.into_iter().collect::<Vec<_>>().join(", ")));
    }
    s
}

/// Refuses (a plan error on the Tenant) a prune deleting more of a tenant's managed objects than the guard
/// allows; the deletions stay in the plan, so the reviewer sees what was refused.
fn guard_prune(
    prunable: &[(&DesiredTenant, TenantSnapshot)],
    deletions: &[Change],
    guard: PruneGuard,
    how: PruneOverride,
    out: &mut Plan,
) {
    for (tenant, snapshot) in prunable {
        let id = &tenant.identity.tenant_id;
        let deleting = deletions.iter().filter(|c| c.action == Action::Delete && c.tenant_id.eq_ignore_ascii_case(id)).count();
        let managed = snapshot.managed.iter().filter(|r| r.kind != Kind::Tenant).count();
        let Some(allowed) = guard.allowance(managed) else { continue };
        if deleting <= allowed {
            continue;
        }
        let guests = deletions
            .iter()
            .filter(|c| {
                c.action == Action::Delete && c.tenant_id.eq_ignore_ascii_case(id) && c.object.kind == Kind::GuestInvitation
            })
            .count();
        let limit = match guard {
            PruneGuard::AtMost(n) => how.set_to(n),
            _ => format!("{DEFAULT_PRUNE_ALLOWANCE} objects or {DEFAULT_PRUNE_PERCENT} % of those managed, whichever is more"),
        };
        out.errors.push(PlanError {
            object: tenant.object.clone(),
            message: format!(
                "{PRUNE_REFUSED} it would delete {deleting} of the {managed} objects entente manages in tenant {} \
                 ({guests} of them guests), more than the {allowed} allowed ({limit}). If this is meant, set {}",
                tenant.identity.initial_domain,
                how.set_to(deleting)
            ),
        });
    }
}

/// `reason` says why, in the tombstone a deleted guest leaves (so it can be restored if it comes back).
fn prune_change(tenant_id: &str, r: &ManagedRecord, snapshot: &TenantSnapshot, reason: &str) -> Change {
    let forget = Operation::Forget { kind: r.kind, key: r.key.clone() };
    let base = |action, ops, note: String| Change {
        object: r.object.clone(),
        tenant_id: tenant_id.to_string(),
        action,
        drift: false,
        diff: vec![],
        refusal: None,
        note: Some(note),
        subject: (r.kind == Kind::GuestInvitation).then(|| r.key.clone()),
        ops,
    };
    if r.deletion_policy == DeletionPolicy::Retain {
        return base(Action::Retain, vec![forget], "deletionPolicy is Retain: left in the directory, no longer managed".into());
    }
    if r.kind == Kind::MultiTenantOrganization {
        let (ops, note) = mto::prune_ops(r, snapshot);
        return base(Action::Delete, ops, note);
    }
    let delete = match r.kind {
        Kind::GuestInvitation => r
            .external_id
            .as_deref()
            .and_then(|id| snapshot.guests.iter().find(|g| g.id == id))
            .or_else(|| snapshot.guests.iter().find(|g| super::validate::same_address(&g.mail, &r.key)))
            .map(|g| {
                (
                    Operation::DeleteGuest { user_id: g.id.clone() },
                    format!("deletes guest {} ({}){}", g.mail, g.id, loses(g, snapshot)),
                )
            }),
        Kind::CrossTenantAccessPolicy => snapshot.partners.iter().find(|p| p.tenant_id.eq_ignore_ascii_case(&r.key)).map(|p| {
            (
                Operation::DeletePartner { partner_tenant_id: p.tenant_id.clone() },
                format!("deletes the partner configuration for {}", p.tenant_id),
            )
        }),
        Kind::IdentityProvider | Kind::SignUpFlow => identity::prune_op(r, snapshot),
        Kind::ConnectedOrganization | Kind::AccessPackage => entitlement::prune_op(r, snapshot),
        Kind::ConditionalAccessPolicy => conditional_access::prune_op(r, snapshot),
        Kind::Tenant | Kind::SyncJob | Kind::MultiTenantOrganization => None,
    };
    match delete {
        // A deleted guest's record becomes a tombstone: back in the manifests within 30 days, it is
        // restored from the recycle bin (same account, groups, redemption) instead of invited again.
        // A partner's tombstone only tells the plan, if it comes back, when and why entente deleted it.
        Some((op @ (Operation::DeleteGuest { .. } | Operation::DeletePartner { .. }), note)) => {
            let bury = Operation::Bury { kind: r.kind, key: r.key.clone(), reason: reason.to_string() };
            let note =
                if r.kind == Kind::GuestInvitation { format!("{note}; restorable for {TOMBSTONE_DAYS} days") } else { note };
            base(Action::Delete, vec![op, bury], note)
        }
        Some((op, note)) => base(Action::Delete, vec![op, forget], note),
        None => base(Action::Delete, vec![forget], "already gone from the directory; drops the ownership record".into()),
    }
}

#[path = "plan_mto.rs"]
mod mto;

#[path = "plan_profile.rs"]
mod profile;

#[path = "plan_identity.rs"]
mod identity;

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[path = "plan_entitlement.rs"]
mod entitlement;

#[path = "plan_conditional_access.rs"]
mod conditional_access;
