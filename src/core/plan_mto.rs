//! The planner's part for multi-tenant organizations (R15): the owner's organization and member list,
//! each managed member's join, the notes on generated partner configurations, and undoing what an
//! organization no longer generates (a removed member). A child of `plan`, so it shares its helpers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::mto::{DesiredMultiTenantOrganization, MtoMemberState, MtoRole};
use super::*;

/// The ownership record key of the organization a tenant owns.
pub(super) const ORGANIZATION_KEY: &str = "organization";
/// The ownership record key of a member tenant's join.
pub(super) const JOIN_KEY: &str = "joinRequest";

/// Per desired tenant id: (initial domain, Tenant object name), for notes.
pub(super) fn tenant_domains(desired: &DesiredState) -> BTreeMap<String, (String, String)> {
    desired
        .tenants
        .iter()
        .map(|t| (t.identity.tenant_id.clone(), (t.identity.initial_domain.clone(), t.object.name.clone())))
        .collect()
}

/// The organization keys a tenant's records may carry while the manifests want them.
pub(super) fn desired_keys(desired: &DesiredState, tenant_id: &str) -> Vec<(Kind, String)> {
    desired
        .multi_tenant_organizations
        .iter()
        .filter_map(|m| match m.role_of(tenant_id) {
            Some(MtoRole::Owner) => Some((Kind::MultiTenantOrganization, ORGANIZATION_KEY.to_string())),
            Some(MtoRole::Member) => Some((Kind::MultiTenantOrganization, JOIN_KEY.to_string())),
            None => None,
        })
        .collect()
}

/// The organization changes of one tenant: as owner (the organization and its members) or as a member
/// (its join).
pub(super) fn changes(ctx: &TenantContext<'_>, desired: &DesiredState) -> Vec<Change> {
    let tenant_id = ctx.tenant.identity.tenant_id.as_str();
    desired
        .multi_tenant_organizations
        .iter()
        .filter_map(|m| match m.role_of(tenant_id) {
            Some(MtoRole::Owner) => Some(owner_change(ctx, m)),
            Some(MtoRole::Member) => Some(join_change(ctx, m)),
            None => None,
        })
        .collect()
}

/// Owners' changes first: a member can only join once the owner lists it.
pub(super) fn order(changes: &mut [Change]) {
    changes.sort_by_key(|c| !is_owner_change(c));
}

fn is_owner_change(c: &Change) -> bool {
    c.ops.iter().any(|o| matches!(o, Operation::Record { record } if record.key == ORGANIZATION_KEY))
}

fn normalize(description: Option<&str>) -> Option<String> {
    description.map(str::trim).filter(|d| !d.is_empty()).map(str::to_string)
}

fn organization_view(display_name: &str, description: Option<&str>, members: &BTreeSet<String>) -> Value {
    json!({ "displayName": display_name, "description": normalize(description), "members": members })
}

fn owner_change(ctx: &TenantContext<'_>, m: &DesiredMultiTenantOrganization) -> Change {
    let tenant_id = ctx.tenant.identity.tenant_id.as_str();
    let wanted: BTreeSet<String> = m.members.iter().map(|p| p.tenant_id.clone()).collect();
    let desired = organization_view(&m.display_name, m.description.as_deref(), &wanted);
    let record_op = record_op(Kind::MultiTenantOrganization, ORGANIZATION_KEY, &m.object, None, DeletionPolicy::Delete, &desired);
    let put = Operation::PutMultiTenantOrganization {
        display_name: m.display_name.clone(),
        description: normalize(m.description.as_deref()),
    };
    let add = |id: &str| {
        let p = m.members.iter().find(|p| p.tenant_id == id);
        Operation::AddMtoMember {
            tenant_id: id.to_string(),
            display_name: p.and_then(|p| p.display_name.clone()),
            role: MtoRole::Member,
        }
    };
    let observed = ctx
        .snapshot
        .multi_tenant_organization
        .as_ref()
        .and_then(|s| s.organization.as_ref())
        .filter(|o| o.owner_tenant_id().is_none_or(|owner| owner == tenant_id));
    let mut change = match observed {
        None => {
            let mut ops = vec![put];
            ops.extend(wanted.iter().map(|id| add(id)));
            ops.push(record_op);
            let diff = creation_diff(&json!({}), &desired);
            ctx.change(&m.object, Action::Create, diff, ops)
        }
        Some(org) => {
            let listed: BTreeSet<String> =
                org.members.iter().filter(|x| x.role != MtoRole::Owner).map(|x| x.tenant_id.clone()).collect();
            let observed = organization_view(&org.display_name, org.description.as_deref(), &listed);
            let renamed = org.display_name != m.display_name
                || normalize(org.description.as_deref()) != normalize(m.description.as_deref());
            let record = ctx.records.get(&(Kind::MultiTenantOrganization, ORGANIZATION_KEY)).copied();
            ctx.compare(
                &m.object,
                record,
                &desired,
                &observed,
                || {
                    let mut ops = Vec::new();
                    if renamed {
                        ops.push(put.clone());
                    }
                    ops.extend(wanted.difference(&listed).map(|id| add(id)));
                    ops.extend(listed.difference(&wanted).map(|id| Operation::RemoveMtoMember { tenant_id: id.clone() }));
                    ops
                },
                record_op,
            )
        }
    };
    let states: BTreeMap<&str, MtoMemberState> =
        observed.map(|o| o.members.iter().map(|x| (x.tenant_id.as_str(), x.state)).collect()).unwrap_or_default();
    let mut parts: Vec<String> = m
        .members
        .iter()
        .map(|p| {
            let state = states.get(p.tenant_id.as_str()).copied().unwrap_or(MtoMemberState::Pending);
            let name = match &p.display_name {
                Some(d) => format!("{d} ({})", p.tenant_id),
                None => p.tenant_id.clone(),
            };
            if p.is_managed() {
                format!("{name}: {}", state.as_str())
            } else {
                format!(
                    "{name}: {}, not managed by entente: it stays pending until it joins by itself, and no \
                     partner configuration or sync job is generated for it",
                    state.as_str()
                )
            }
        })
        .collect();
    if parts.is_empty() {
        parts.push("no members besides the owner".into());
    }
    let members = format!("{} owns the organization; members: {}", ctx.tenant.object.name, parts.join("; "));
    change.note = Some(match change.note.take() {
        Some(n) => format!("{n}; {members}"),
        None => members,
    });
    change
}

fn join_change(ctx: &TenantContext<'_>, m: &DesiredMultiTenantOrganization) -> Change {
    let owner = m.owner.tenant_id.as_str();
    let desired = json!({ "ownerTenantId": owner });
    let record_op = record_op(Kind::MultiTenantOrganization, JOIN_KEY, &m.object, None, DeletionPolicy::Delete, &desired);
    let join = || vec![Operation::JoinMto { owner_tenant_id: owner.to_string() }];
    let request = ctx.snapshot.multi_tenant_organization.as_ref().and_then(|s| s.join_request.as_ref());
    let owner_name = m.owner.display_name.clone().unwrap_or_else(|| owner.to_string());
    let mut change = match request {
        None => {
            let mut ops = join();
            ops.push(record_op);
            ctx.change(&m.object, Action::Create, creation_diff(&json!({}), &desired), ops)
        }
        Some(r) => {
            let observed = json!({ "ownerTenantId": r.added_by_tenant_id });
            let record = ctx.records.get(&(Kind::MultiTenantOrganization, JOIN_KEY)).copied();
            ctx.compare(&m.object, record, &desired, &observed, join, record_op)
        }
    };
    let state = request.filter(|r| r.added_by_tenant_id == owner).map(|r| r.member_state).unwrap_or(MtoMemberState::Pending);
    let joins = format!("{} joins the organization of {owner_name} ({owner}): {}", ctx.tenant.object.name, state.as_str());
    change.note = Some(match change.note.take() {
        Some(n) => format!("{n}; {joins}"),
        None => joins,
    });
    change
}

/// Says which organization generated a partner configuration.
pub(super) fn annotate_partner(
    change: &mut Change,
    p: &DesiredPartner,
    tenant: &DesiredTenant,
    domains: &BTreeMap<String, (String, String)>,
) {
    if !p.is_in_multi_tenant_organization {
        return;
    }
    let partner = domains.get(&p.partner_tenant_id).map(|(d, _)| d.as_str()).unwrap_or(&p.partner_tenant_id);
    let note = format!("partner {partner} in {}: generated by {}", tenant.object.name, p.object);
    change.note = Some(match change.note.take() {
        Some(n) => format!("{note}; {n}"),
        None => note,
    });
}

type Orphan<'a> = (String, ManagedRecord, &'a TenantSnapshot);

/// Splits the records no longer desired into those of organizations still desired (withdrawn: undone
/// without `--prune`) and the others.
pub(super) fn split_withdrawn<'a>(desired: &DesiredState, orphans: Vec<Orphan<'a>>) -> (Vec<Orphan<'a>>, Vec<Orphan<'a>>) {
    let live: BTreeSet<&ObjectRef> = desired.multi_tenant_organizations.iter().map(|m| &m.object).collect();
    orphans.into_iter().partition(|(_, r, _)| live.contains(&r.object))
}

/// Deletes what an organization no longer generates, unless some object failed to plan.
pub(super) fn withdraw(withdrawn: Vec<Orphan<'_>>, out: &mut Plan) {
    if withdrawn.is_empty() {
        return;
    }
    if !out.errors.is_empty() {
        out.notes.push(format!(
            "{} object(s) no longer generated by a multi-tenant organization are kept for now: {} object(s) failed \
             to plan, and a partial view never deletes",
            withdrawn.len(),
            out.errors.len()
        ));
        return;
    }
    for (tenant_id, r, snapshot) in withdrawn {
        let mut c = prune_change(&tenant_id, &r, snapshot, "no longer generated by its multi-tenant organization");
        let why = format!("no longer generated by {}", r.object);
        c.note = Some(match c.note.take() {
            Some(n) => format!("{why}: {n}"),
            None => why,
        });
        out.changes.push(c);
    }
}

/// Undoing an organization record: the owner removes every member (Graph cannot delete the organization
/// itself, so it is left with its owner alone); a member withdraws its join.
pub(super) fn prune_ops(r: &ManagedRecord, snapshot: &TenantSnapshot) -> (Vec<Operation>, String) {
    let forget = Operation::Forget { kind: r.kind, key: r.key.clone() };
    let state = snapshot.multi_tenant_organization.as_ref();
    if r.key == ORGANIZATION_KEY {
        let members: Vec<String> = state
            .and_then(|s| s.organization.as_ref())
            .map(|o| o.members.iter().filter(|m| m.role != MtoRole::Owner).map(|m| m.tenant_id.clone()).collect())
            .unwrap_or_default();
        let note =
            format!("removes the {} member(s) of the multi-tenant organization; it stays with its owner alone", members.len());
        let mut ops: Vec<Operation> = members.into_iter().map(|tenant_id| Operation::RemoveMtoMember { tenant_id }).collect();
        ops.push(forget);
        return (ops, note);
    }
    match state.and_then(|s| s.join_request.as_ref()) {
        Some(j) => (
            vec![Operation::LeaveMto, forget],
            format!("leaves the multi-tenant organization of {} (withdraws its join request)", j.added_by_tenant_id),
        ),
        None => (vec![forget], "already left the multi-tenant organization; drops the ownership record".into()),
    }
}
