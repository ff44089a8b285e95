//! The planner's part for conditional access policies for external users (R18). A child of `plan`, so it
//! shares its helpers (`TenantContext::compare`, `record_op`, `creation_diff`).
//!
//! Records are keyed by the manifest object (`namespace/name`), with the directory id as external id, so
//! a new display name updates the same policy. An existing policy is found by the record's id, else by the
//! display name last applied, else by the desired display name (adopted). A backend that does not read
//! conditional access policies (`snapshot.conditional_access == None`) makes each declared policy a plan
//! error: never planned blind.

use serde_json::{Value, json};

use super::super::conditional_access::*;
use super::*;

/// The record keys the manifests still want in this tenant.
pub(super) fn desired_keys(desired: &DesiredState, tenant_id: &str) -> Vec<(Kind, String)> {
    let Some(ps) = desired.conditional_access.get(tenant_id) else { return vec![] };
    ps.iter().map(|p| (Kind::ConditionalAccessPolicy, p.key())).collect()
}

/// A tenant that cannot be read: each of its policies is an error.
pub(super) fn unreadable(desired: &DesiredState, tenant: &DesiredTenant, why: &str, out: &mut Plan) {
    let Some(ps) = desired.conditional_access.get(&tenant.identity.tenant_id) else { return };
    let message = format!("cannot read tenant {} from the directory: {why}", tenant.identity.tenant_id);
    out.errors.extend(ps.iter().map(|p| PlanError { object: p.object.clone(), message: message.clone() }));
}

fn view(p: &ConditionalAccessPolicyConfig, dp: Option<DeletionPolicy>) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(dp) = dp {
        v["deletionPolicy"] = json!(dp);
    }
    v
}

fn applied_name(record: Option<&ManagedRecord>) -> Option<String> {
    let applied: Value = serde_json::from_str(&record?.applied).ok()?;
    applied.get("displayName").and_then(Value::as_str).map(str::to_string)
}

fn find<'a>(
    observed: &'a [ObservedConditionalAccessPolicy],
    record: Option<&ManagedRecord>,
    name: &str,
) -> Option<&'a ObservedConditionalAccessPolicy> {
    let by_id = record.and_then(|r| r.external_id.as_deref()).and_then(|id| observed.iter().find(|o| o.id == id));
    let applied = applied_name(record);
    by_id
        .or_else(|| applied.and_then(|n| observed.iter().find(|o| o.policy.display_name.eq_ignore_ascii_case(&n))))
        .or_else(|| observed.iter().find(|o| o.policy.display_name.eq_ignore_ascii_case(name)))
}

/// The changes of one tenant's policies.
pub(super) fn changes(ctx: &TenantContext<'_>, desired: &DesiredState, errors: &mut Vec<PlanError>) -> Vec<Change> {
    let Some(ps) = desired.conditional_access.get(&ctx.tenant.identity.tenant_id) else { return vec![] };
    let Some(observed) = ctx.snapshot.conditional_access.as_deref() else {
        errors.extend(ps.iter().map(|p| PlanError {
            object: p.object.clone(),
            message: "this tenant's backend does not read conditional access policies, so they cannot be planned".into(),
        }));
        return vec![];
    };
    ps.iter().map(|p| change(ctx, observed, p)).collect()
}

fn change(ctx: &TenantContext<'_>, observed: &[ObservedConditionalAccessPolicy], p: &DesiredConditionalAccessPolicy) -> Change {
    let key = p.key();
    let desired = view(&p.policy, Some(p.deletion_policy));
    let record = ctx.records.get(&(Kind::ConditionalAccessPolicy, key.as_str())).copied();
    let put = |id: Option<String>| Operation::PutConditionalAccessPolicy { id, policy: p.policy.clone() };
    match find(observed, record, &p.policy.display_name) {
        None => {
            let ops =
                vec![put(None), record_op(Kind::ConditionalAccessPolicy, &key, &p.object, None, p.deletion_policy, &desired)];
            let mut c = ctx.change(&p.object, Action::Create, creation_diff(&json!({}), &desired), ops);
            if record.is_some() {
                c.drift = true;
                c.note = Some("the conditional access policy was deleted outside entente; it is created again".into());
            }
            c
        }
        Some(o) => {
            let dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(p.deletion_policy));
            let observed_view = view(&o.policy, dp);
            let id = o.id.clone();
            let record_op =
                record_op(Kind::ConditionalAccessPolicy, &key, &p.object, Some(id.clone()), p.deletion_policy, &desired);
            ctx.compare(&p.object, record, &desired, &observed_view, || vec![put(Some(id))], record_op)
        }
    }
}

/// The deletion of a policy no longer in the manifests.
pub(super) fn prune_op(r: &ManagedRecord, snapshot: &TenantSnapshot) -> Option<(Operation, String)> {
    let Some(observed) = snapshot.conditional_access.as_deref() else {
        // Not read back by this backend: delete by the id last recorded.
        return r.external_id.clone().map(|id| {
            (Operation::DeleteConditionalAccessPolicy { id: id.clone() }, format!("deletes conditional access policy {id}"))
        });
    };
    let name = applied_name(Some(r)).unwrap_or_default();
    find(observed, Some(r), &name).map(|o| {
        (
            Operation::DeleteConditionalAccessPolicy { id: o.id.clone() },
            format!("deletes conditional access policy {:?} ({})", o.policy.display_name, o.id),
        )
    })
}
