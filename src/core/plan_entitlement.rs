//! The planner's part for entitlement management (R16): each tenant's external-user lifecycle settings,
//! connected organizations, then access packages (which name connected organizations, so they come
//! after), and the deletion of those no longer in the manifests (packages before organizations, via
//! `prune_op`). A child of `plan`, so it shares its helpers.
//!
//! Records are keyed by the manifest object (`namespace/name`), with the directory id as external id,
//! so renaming (a new display name) updates the same object. An existing object is found by the
//! record's id, else by the display name last applied, else by the desired display name (adopted).

use serde_json::{Value, json};

use super::super::entitlement::*;
use super::*;

/// The ownership record key of a tenant's entitlement settings (kind `Tenant`).
pub(super) const SETTINGS_KEY: &str = "entitlementManagement";

fn object_key(o: &ObjectRef) -> String {
    format!("{}/{}", o.namespace, o.name)
}

/// The record keys the manifests still want in this tenant.
pub(super) fn desired_keys(desired: &DesiredState, tenant_id: &str) -> Vec<(Kind, String)> {
    let Some(e) = desired.entitlement.get(tenant_id) else { return vec![] };
    e.connected_organizations
        .iter()
        .map(|o| (Kind::ConnectedOrganization, object_key(&o.object)))
        .chain(e.access_packages.iter().map(|p| (Kind::AccessPackage, object_key(&p.object))))
        .collect()
}

/// The objects of a tenant that cannot be planned when the tenant cannot be read.
pub(super) fn objects<'a>(desired: &'a DesiredState, tenant_id: &str) -> Vec<&'a ObjectRef> {
    let Some(e) = desired.entitlement.get(tenant_id) else { return vec![] };
    e.connected_organizations.iter().map(|o| &o.object).chain(e.access_packages.iter().map(|p| &p.object)).collect()
}

fn organization_view(o: &ConnectedOrganization, dp: Option<DeletionPolicy>) -> Value {
    let mut v = json!({
        "displayName": o.display_name,
        "description": o.description,
        "identitySources": o.identity_sources,
        "state": o.state.as_str(),
    });
    if let Some(dp) = dp {
        v["deletionPolicy"] = json!(dp);
    }
    v
}

fn package_view(p: &AccessPackage, dp: Option<DeletionPolicy>) -> Value {
    let policies: Vec<Value> = p
        .policies
        .iter()
        .map(|a| {
            json!({
                "displayName": a.display_name,
                "allowedTargetScope": a.allowed_target_scope.as_str(),
                "connectedOrganizations": a.connected_organizations,
                "approvalRequired": a.approval_required,
                "approvers": a.approvers,
                "expiration": a.expiration_seconds.map(render_duration).unwrap_or_else(|| "never".into()),
            })
        })
        .collect();
    let mut v = json!({
        "displayName": p.display_name,
        "description": p.description,
        "resources": { "groups": p.groups, "applications": p.applications },
        "assignmentPolicies": policies,
    });
    if let Some(dp) = dp {
        v["deletionPolicy"] = json!(dp);
    }
    v
}

fn settings_view(s: &EntitlementSettings) -> Value {
    json!({
        "externalUserLifecycleAction": s.external_user_lifecycle_action.as_str(),
        "durationUntilExternalUserDeletedAfterBlocked": render_duration(s.delete_after_blocked_seconds),
    })
}

/// The display name a record last applied, if any.
fn applied_name(record: Option<&ManagedRecord>) -> Option<String> {
    let v: Value = serde_json::from_str(&record?.applied).ok()?;
    v.get("displayName")?.as_str().map(str::to_string)
}

fn find<'a, T>(
    items: &'a [Identified<T>],
    record: Option<&ManagedRecord>,
    desired_name: &str,
    name: impl Fn(&T) -> &str,
) -> Option<&'a Identified<T>> {
    let by_name = |n: &str| items.iter().find(|i| name(&i.value).eq_ignore_ascii_case(n));
    record
        .and_then(|r| r.external_id.as_deref())
        .and_then(|id| items.iter().find(|i| i.id == id))
        .or_else(|| applied_name(record).and_then(|n| by_name(&n)))
        .or_else(|| by_name(desired_name))
}

/// The entitlement changes of one tenant: settings, organizations, packages.
pub(super) fn changes(ctx: &TenantContext<'_>, desired: &DesiredState, errors: &mut Vec<PlanError>) -> Vec<Change> {
    let tenant = ctx.tenant;
    let Some(want) = desired.entitlement.get(&tenant.identity.tenant_id) else { return vec![] };
    let empty = EntitlementState::default();
    let state = match &ctx.snapshot.entitlement {
        Some(s) => s,
        None if ctx.snapshot.managed.is_empty() && ctx.snapshot.partners.is_empty() && ctx.snapshot.guests.is_empty() => &empty,
        None => {
            let message = format!(
                "the directory backend of tenant {} did not read entitlement management (R16); on Graph the app needs \
                 EntitlementManagement.ReadWrite.All",
                tenant.identity.tenant_id
            );
            let objects = std::iter::once(&tenant.object)
                .filter(|_| want.settings.is_some())
                .chain(objects(desired, &tenant.identity.tenant_id));
            errors.extend(objects.map(|o| PlanError { object: o.clone(), message: message.clone() }));
            return vec![];
        }
    };
    let mut out = Vec::new();
    if let Some(s) = &want.settings {
        let desired_view = settings_view(s);
        let observed_view = settings_view(&state.settings);
        let record = ctx.records.get(&(Kind::Tenant, SETTINGS_KEY)).copied();
        let record_op = record_op(Kind::Tenant, SETTINGS_KEY, &tenant.object, None, DeletionPolicy::Retain, &desired_view);
        let mut c = ctx.compare(
            &tenant.object,
            record,
            &desired_view,
            &observed_view,
            || vec![Operation::SetEntitlementSettings { settings: *s }],
            record_op,
        );
        c.diff.iter_mut().for_each(|d| d.path = format!("entitlementManagement.{}", d.path));
        if c.action == Action::Adopt {
            c.note = Some("entitlement management settings already as declared: entente records them".into());
        }
        out.push(c);
    }
    for o in &want.connected_organizations {
        let key = object_key(&o.object);
        let record = ctx.records.get(&(Kind::ConnectedOrganization, key.as_str())).copied();
        let desired_view = organization_view(&o.organization, Some(o.deletion_policy));
        let existing = find(&state.connected_organizations, record, &o.organization.display_name, |x| &x.display_name);
        let id = existing.map(|e| e.id.clone());
        let record_op = record_op(Kind::ConnectedOrganization, &key, &o.object, id.clone(), o.deletion_policy, &desired_view);
        let put = || vec![Operation::PutConnectedOrganization { id: id.clone(), organization: o.organization.clone() }];
        let Some(existing) = existing else {
            let mut ops = put();
            ops.push(record_op);
            let mut c = ctx.change(&o.object, Action::Create, creation_diff(&json!({}), &desired_view), ops);
            if record.is_some() {
                c.drift = true;
                c.note = Some("the connected organization was deleted outside entente; it is created again".into());
            }
            out.push(c);
            continue;
        };
        let dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(o.deletion_policy));
        let observed_view = organization_view(&existing.value, dp);
        out.push(ctx.compare(&o.object, record, &desired_view, &observed_view, put, record_op));
    }
    for p in &want.access_packages {
        let key = object_key(&p.object);
        let record = ctx.records.get(&(Kind::AccessPackage, key.as_str())).copied();
        let desired_view = package_view(&p.package, Some(p.deletion_policy));
        let existing = find(&state.access_packages, record, &p.package.display_name, |x| &x.display_name);
        let id = existing.map(|e| e.id.clone());
        let record_op = record_op(Kind::AccessPackage, &key, &p.object, id.clone(), p.deletion_policy, &desired_view);
        let put = || vec![Operation::PutAccessPackage { id: id.clone(), package: p.package.clone() }];
        let mut c = match existing {
            None => {
                let mut ops = put();
                ops.push(record_op);
                let mut c = ctx.change(&p.object, Action::Create, creation_diff(&json!({}), &desired_view), ops);
                if record.is_some() {
                    c.drift = true;
                    c.note = Some("the access package was deleted outside entente; it is created again".into());
                }
                c
            }
            Some(existing) => {
                let dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(p.deletion_policy));
                let observed_view = package_view(&existing.value, dp);
                ctx.compare(&p.object, record, &desired_view, &observed_view, put, record_op)
            }
        };
        let holders = state.assignments.iter().filter(|a| a.package.eq_ignore_ascii_case(&p.package.display_name));
        let (active, pending) = holders.fold((0, 0), |(a, q), x| match x.state.as_str() {
            "delivered" => (a + 1, q),
            "pendingApproval" => (a, q + 1),
            _ => (a, q),
        });
        if active + pending > 0 {
            let note = format!("{active} active assignment(s), {pending} pending approval");
            c.note = Some(match c.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
        out.push(c);
    }
    out
}

/// Deleting what a record names, when it still exists.
pub(super) fn prune_op(r: &ManagedRecord, snapshot: &TenantSnapshot) -> Option<(Operation, String)> {
    let state = snapshot.entitlement.as_ref()?;
    let name = applied_name(Some(r)).unwrap_or_default();
    match r.kind {
        Kind::ConnectedOrganization => find(&state.connected_organizations, Some(r), &name, |x| &x.display_name).map(|o| {
            (
                Operation::DeleteConnectedOrganization { id: o.id.clone() },
                format!("deletes connected organization {:?} ({})", o.value.display_name, o.id),
            )
        }),
        Kind::AccessPackage => find(&state.access_packages, Some(r), &name, |x| &x.display_name).map(|p| {
            let holders = state
                .assignments
                .iter()
                .filter(|a| a.package.eq_ignore_ascii_case(&p.value.display_name) && a.state == "delivered")
                .count();
            (
                Operation::DeleteAccessPackage { id: p.id.clone() },
                format!(
                    "deletes access package {:?} ({}); its {holders} active assignment(s) end and the external-user lifecycle applies",
                    p.value.display_name, p.id
                ),
            )
        }),
        _ => None,
    }
}

/// Packages are deleted before the connected organizations their policies name.
pub(super) fn order_deletions(changes: &mut [Change]) {
    changes.sort_by_key(|c| match c.object.kind {
        Kind::AccessPackage => 0,
        Kind::ConnectedOrganization => 1,
        _ => 2,
    });
}

/// A tenant that cannot be read: its entitlement objects cannot be planned either.
pub(super) fn unreadable(desired: &DesiredState, tenant: &DesiredTenant, why: &str, out: &mut Plan) {
    let message = format!("cannot read tenant {} from the directory: {why}", tenant.identity.tenant_id);
    out.errors.extend(
        objects(desired, &tenant.identity.tenant_id)
            .into_iter()
            .map(|o| PlanError { object: o.clone(), message: message.clone() }),
    );
}
