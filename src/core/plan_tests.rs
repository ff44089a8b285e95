//! Planner tests: pure, no IO. Desired state comes from YAML strings; the observed state is a
//! `TenantSnapshot` built by `simulate`, a minimal in-memory application of the plan's operations.

use std::collections::BTreeSet;

use super::*;
use crate::core::operation::Operation;
use crate::core::policy::RefusalReason;
use crate::core::settings::AllowInvitesFrom;
use crate::manifest::{Manifests, load_str};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";

fn manifests(extra: &str) -> Manifests {
    let base = format!(
        r#"
apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: {{ name: contoso }}
spec:
  tenantId: {CONTOSO}
  initialDomain: contoso.onmicrosoft.com
  externalCollaboration:
    domainList: {{ mode: blockList, domains: [litware.com] }}
  groups: [{{ displayName: Partners }}, {{ displayName: Other }}]
---
apiVersion: entente.dev/v1alpha1
kind: CrossTenantAccessPolicy
metadata: {{ name: fabrikam }}
spec:
  tenantRef: {{ name: contoso }}
  partnerTenantId: {FABRIKAM}
  inboundTrust: {{ isMfaAccepted: true }}
---
apiVersion: entente.dev/v1alpha1
kind: GuestInvitation
metadata: {{ name: alice }}
spec:
  tenantRef: {{ name: contoso }}
  invitedUserEmailAddress: alice@fabrikam.com
  invitedUserDisplayName: Alice
  groups: [Partners]
{extra}"#
    );
    load_str(&[("test.yaml", &base)]).unwrap_or_else(|e| panic!("{e}"))
}

fn observed_with(snapshot: Option<TenantSnapshot>) -> Observed {
    Observed::from([(CONTOSO.to_string(), Ok(snapshot))])
}

/// Applies operations to a snapshot the way any directory would, minus the rules.
fn simulate(snapshot: Option<TenantSnapshot>, plan: &Plan) -> TenantSnapshot {
    let mut s = snapshot;
    let mut next_id = 0;
    for change in &plan.changes {
        let mut invited: Option<crate::core::operation::InvitationResult> = None;
        for op in &change.ops {
            let op = crate::core::operation::bind_invited_id(op, invited.as_ref());
            if let Operation::CreateTenant { identity } = &op {
                s = Some(TenantSnapshot {
                    identity: identity.clone(),
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
                    entitlement: None,
                    conditional_access: None,
                });
                continue;
            }
            let t = s.as_mut().expect("tenant exists");
            match op {
                Operation::CreateTenant { .. } => unreachable!(),
                Operation::ConfigureTenant { external_collaboration, default_access } => {
                    t.external_collaboration = external_collaboration;
                    t.default_access = default_access;
                }
                Operation::SetCloudSettings { allowed_clouds } => t.profile.allowed_clouds = allowed_clouds,
                Operation::ConfigureTenantExperience { tenant_type, branding, self_service_account } => {
                    t.profile.tenant_type = tenant_type;
                    t.profile.branding = branding;
                    t.profile.self_service_account = self_service_account;
                }
                Operation::EnsureGroups { display_names } => {
                    for n in display_names {
                        t.groups.push(Group { id: format!("g-{n}"), display_name: n });
                    }
                }
                Operation::PutPartner { partner } => {
                    t.partners.retain(|p| p.tenant_id != partner.tenant_id);
                    t.partners.push(partner);
                }
                Operation::DeletePartner { partner_tenant_id } => t.partners.retain(|p| p.tenant_id != partner_tenant_id),
                Operation::Invite { invitation } => {
                    next_id += 1;
                    let id = format!("u{next_id}");
                    t.guests.push(GuestUser {
                        id: id.clone(),
                        mail: invitation.invited_user_email_address.clone(),
                        display_name: invitation.invited_user_display_name.clone(),
                        user_principal_name: format!("{}#EXT#", invitation.invited_user_email_address.replace('@', "_")),
                        user_type: invitation.invited_user_type,
                        creation_type: Some("Invitation".into()),
                        external_user_state: Some(RedemptionState::PendingAcceptance),
                        external_user_state_change_date_time: None,
                        account_enabled: true,
                        group_ids: invitation.groups.iter().map(|g| format!("g-{g}")).collect(),
                    });
                    invited = Some(crate::core::operation::InvitationResult {
                        user_id: id,
                        user_principal_name: String::new(),
                        invite_redeem_url: format!("https://redeem/{next_id}"),
                        status: "PendingAcceptance".into(),
                    });
                }
                Operation::UpdateGuest { user_id, patch } => {
                    let g = t.guests.iter_mut().find(|g| g.id == user_id).expect("guest exists");
                    if let Some(d) = patch.display_name {
                        g.display_name = Some(d);
                    }
                    if let Some(u) = patch.user_type {
                        g.user_type = u;
                    }
                    g.group_ids.extend(patch.add_to_groups.iter().map(|n| format!("g-{n}")));
                    for n in patch.remove_from_groups {
                        g.group_ids.remove(&format!("g-{n}"));
                    }
                }
                Operation::DeleteGuest { user_id } => {
                    if let Some(i) = t.guests.iter().position(|g| g.id == user_id) {
                        let guest = t.guests.remove(i);
                        t.deleted_guests.push(DeletedGuest {
                            guest,
                            deleted_date_time: "2025-01-01T00:00:00Z".into(),
                            groups_known: true,
                        });
                    }
                }
                Operation::RestoreGuest { user_id } => {
                    if let Some(i) = t.deleted_guests.iter().position(|d| d.guest.id == user_id) {
                        t.guests.push(t.deleted_guests.remove(i).guest);
                    }
                }
                Operation::Record { record } => {
                    t.managed.retain(|r| !(r.kind == record.kind && r.key == record.key));
                    t.tombstones.retain(|b| !(b.record.kind == record.kind && b.record.key == record.key));
                    t.managed.push(record);
                }
                Operation::Forget { kind, key } => t.managed.retain(|r| !(r.kind == kind && r.key == key)),
                Operation::Bury { kind, key, reason } => {
                    if let Some(record) = t.managed.iter().find(|r| r.kind == kind && r.key == key).cloned() {
                        t.tombstones.retain(|b| !(b.record.kind == kind && b.record.key == key));
                        t.tombstones.push(Tombstone { record, deleted_at: "2026-12-01T00:00:00Z".into(), reason });
                    }
                    t.managed.retain(|r| !(r.kind == kind && r.key == key));
                }
                Operation::ProvisionUser { .. } => unreachable!("the planner never provisions: sync jobs do"),
                Operation::PutMultiTenantOrganization { .. }
                | Operation::AddMtoMember { .. }
                | Operation::RemoveMtoMember { .. }
                | Operation::JoinMto { .. }
                | Operation::LeaveMto => {}
                Operation::PutConnectedOrganization { .. }
                | Operation::DeleteConnectedOrganization { .. }
                | Operation::PutAccessPackage { .. }
                | Operation::DeleteAccessPackage { .. }
                | Operation::SetEntitlementSettings { .. } => {}
                Operation::PutIdentityProvider { provider: p, existing_id } => {
                    let id = existing_id.unwrap_or_else(|| p.key.clone());
                    t.identity_config.providers.retain(|o| o.id != id);
                    t.identity_config.providers.push(crate::core::identity::ObservedIdentityProvider {
                        id,
                        key: p.key,
                        provider_type: p.provider_type,
                        display_name: p.display_name,
                        client_id: p.client_id,
                        client_secret_hash: p.client_secret_hash,
                        saml: p.saml,
                        state: p.state,
                    });
                }
                Operation::DeleteIdentityProvider { id, .. } => t.identity_config.providers.retain(|o| o.id != id),
                Operation::PutSignUpFlow { flow, .. } => {
                    t.identity_config.flows.retain(|f| f.id != flow.id);
                    t.identity_config.flows.push(flow);
                }
                Operation::DeleteSignUpFlow { id } => t.identity_config.flows.retain(|f| f.id != id),
                Operation::PutConditionalAccessPolicy { id, policy } => {
                    let list = t.conditional_access.get_or_insert_with(Vec::new);
                    let id = id.unwrap_or_else(|| format!("ca-{}", policy.display_name));
                    list.retain(|o| o.id != id);
                    list.push(crate::core::conditional_access::ObservedConditionalAccessPolicy { id, policy });
                }
                Operation::DeleteConditionalAccessPolicy { id } => {
                    t.conditional_access.get_or_insert_with(Vec::new).retain(|o| o.id != id)
                }
            }
        }
    }
    s.expect("a tenant")
}

fn converge(m: &Manifests) -> TenantSnapshot {
    let first = plan(&m.desired, &observed_with(None), PlanOptions::default());
    simulate(None, &first)
}

fn change<'a>(p: &'a Plan, name: &str) -> &'a Change {
    p.changes.iter().find(|c| c.object.name == name).unwrap_or_else(|| panic!("no change for {name}: {p:#?}"))
}

#[test]
fn a_new_tenant_is_created_with_its_objects_in_dependency_order() {
    let m = manifests("");
    let p = plan(&m.desired, &observed_with(None), PlanOptions::default());
    let kinds: Vec<(Kind, Action)> = p.changes.iter().map(|c| (c.object.kind, c.action)).collect();
    assert_eq!(
        kinds,
        [
            (Kind::Tenant, Action::Create),
            (Kind::CrossTenantAccessPolicy, Action::Create),
            (Kind::GuestInvitation, Action::Create)
        ]
    );
    assert!(p.changes[1].diff.iter().all(|d| d.path != "deletionPolicy"), "bookkeeping is not shown on creates");
    let ops: Vec<&str> = p.changes[0].ops.iter().map(Operation::name).collect();
    assert_eq!(ops, ["createTenant", "configureTenant", "ensureGroups", "record"]);
    assert!(matches!(&p.changes[2].ops[0], Operation::Invite { invitation } if invitation.groups == ["Partners"]));
    // The tenant diff shows only what differs from the system defaults.
    let paths: Vec<&str> = p.changes[0].diff.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["externalCollaboration.domainList.domains", "externalCollaboration.domainList.mode", "groups"]);
    assert!(p.has_writes());
}

#[test]
fn a_converged_directory_plans_no_writes() {
    let m = manifests("");
    let snapshot = converge(&m);
    let p = plan(&m.desired, &observed_with(Some(snapshot)), PlanOptions::default());
    assert!(p.changes.iter().all(|c| c.action == Action::Unchanged && c.ops.is_empty()), "{p:#?}");
    assert!(!p.has_writes());
}

#[test]
fn graph_normalization_is_not_a_change() {
    let m = manifests("");
    let mut snapshot = converge(&m);
    // Graph spells out every setting the partner left null, with the default's values, and reorders lists.
    let partner = &mut snapshot.partners[0];
    let mut full = snapshot.default_access.overlay(&partner.settings).to_settings();
    if let Some(b) = full.b2b_collaboration_inbound.as_mut() {
        b.users_and_groups.as_mut().unwrap().targets.reverse();
    }
    partner.settings = full;
    let p = plan(&m.desired, &observed_with(Some(snapshot)), PlanOptions::default());
    assert_eq!(change(&p, "fabrikam").action, Action::Unchanged, "{p:#?}");
}

#[test]
fn an_edit_of_the_manifests_is_an_update_not_drift() {
    let before = manifests("");
    let snapshot = converge(&before);
    let after = manifests("").desired;
    let mut after = after.clone();
    after.tenants[0].external_collaboration.allow_invites_from = AllowInvitesFrom::AdminsAndGuestInviters;
    let p = plan(&after, &observed_with(Some(snapshot)), PlanOptions::default());
    let c = change(&p, "contoso");
    assert_eq!(c.action, Action::Update);
    assert!(!c.drift);
    assert_eq!(c.diff.len(), 1);
    assert_eq!(c.diff[0].path, "externalCollaboration.allowInvitesFrom");
    assert_eq!(c.diff[0].from, Some(serde_json::json!("everyone")));
    assert!(matches!(c.ops[0], Operation::ConfigureTenant { .. }));
}

#[test]
fn drift_is_corrected_or_only_reported_per_the_tenants_policy() {
    let m = manifests("");
    let mut snapshot = converge(&m);
    snapshot.external_collaboration.allow_invites_from = AllowInvitesFrom::None; // changed in the portal
    let p = plan(&m.desired, &observed_with(Some(snapshot.clone())), PlanOptions::default());
    let c = change(&p, "contoso");
    assert_eq!((c.action, c.drift), (Action::Update, true));

    let mut report = m.desired.clone();
    report.tenants[0].drift_policy = DriftPolicy::Report;
    let p = plan(&report, &observed_with(Some(snapshot)), PlanOptions::default());
    let c = change(&p, "contoso");
    assert_eq!(c.action, Action::Drift);
    assert!(c.ops.is_empty());
    assert!(!p.has_writes());
}

#[test]
fn an_existing_guest_is_adopted_never_invited_twice() {
    let m = manifests("");
    let mut snapshot = converge(&m);
    snapshot.managed.retain(|r| r.kind != Kind::GuestInvitation); // invited by hand, not by entente
    snapshot.guests[0].mail = "ALICE@fabrikam.com".into();
    let p = plan(&m.desired, &observed_with(Some(snapshot.clone())), PlanOptions::default());
    let c = change(&p, "alice");
    assert_eq!(c.action, Action::Adopt);
    assert!(!c.ops.iter().any(|o| matches!(o, Operation::Invite { .. })));
    assert!(
        matches!(&c.ops[..], [Operation::Record { record }] if record.external_id.as_deref() == Some(snapshot.guests[0].id.as_str()))
    );
}

#[test]
fn an_invitation_the_rules_refuse_is_planned_as_refused_with_the_reason() {
    let m = manifests(
        "---
apiVersion: entente.dev/v1alpha1
kind: GuestInvitation
metadata: { name: dave }
spec:
  tenantRef: { name: contoso }
  invitedUserEmailAddress: dave@LITWARE.com
",
    );
    let p = plan(&m.desired, &observed_with(None), PlanOptions::default());
    let c = change(&p, "dave");
    assert_eq!(c.action, Action::Refused);
    assert!(c.ops.is_empty());
    let r = c.refusal.as_ref().unwrap();
    assert_eq!(r.reason, RefusalReason::DomainBlocked);
    assert!(r.message.contains("contoso.onmicrosoft.com") && r.message.contains("domainList"), "{}", r.message);
}

#[test]
fn an_existing_guest_of_a_domain_blocked_later_is_kept() {
    let m = manifests("");
    let snapshot = converge(&m);
    let mut later = m.desired.clone();
    later.tenants[0].external_collaboration.domain_list.as_mut().unwrap().domains.insert("fabrikam.com".into());
    let p = plan(&later, &observed_with(Some(snapshot)), PlanOptions::default());
    assert_eq!(change(&p, "alice").action, Action::Unchanged);
}

#[test]
fn group_membership_changes_touch_only_declared_groups() {
    let m = manifests("");
    let mut snapshot = converge(&m);
    snapshot.guests[0].group_ids = BTreeSet::from(["g-Other".to_string(), "unmanaged-group".to_string()]);
    let p = plan(&m.desired, &observed_with(Some(snapshot)), PlanOptions::default());
    let c = change(&p, "alice");
    assert_eq!((c.action, c.drift), (Action::Update, true));
    match &c.ops[0] {
        Operation::UpdateGuest { patch, .. } => {
            assert_eq!(patch.add_to_groups, ["Partners"]);
            assert_eq!(patch.remove_from_groups, ["Other"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pruning_is_opt_in_honours_retain_and_never_runs_with_errors() {
    let m = manifests(
        "---
apiVersion: entente.dev/v1alpha1
kind: GuestInvitation
metadata: { name: bob }
spec:
  tenantRef: { name: contoso }
  invitedUserEmailAddress: bob@fabrikam.com
  deletionPolicy: Retain
",
    );
    let snapshot = converge(&m);
    let mut fewer = m.desired.clone();
    fewer.tenants[0].invitations.clear();
    fewer.tenants[0].partners.clear();

    let p = plan(&fewer, &observed_with(Some(snapshot.clone())), PlanOptions::default());
    assert!(!p.changes.iter().any(|c| c.action == Action::Delete));
    assert!(p.notes.iter().any(|n| n.contains("--prune")), "{:?}", p.notes);

    let p = plan(&fewer, &observed_with(Some(snapshot.clone())), PlanOptions { prune: Prune::All, ..Default::default() });
    assert_eq!(change(&p, "alice").action, Action::Delete);
    assert!(matches!(change(&p, "alice").ops[0], Operation::DeleteGuest { .. }));
    assert!(matches!(change(&p, "fabrikam").ops[0], Operation::DeletePartner { .. }));
    let bob = change(&p, "bob");
    assert_eq!(bob.action, Action::Retain);
    assert!(matches!(&bob.ops[..], [Operation::Forget { .. }]));

    // The controller deletes only the objects being deleted.
    let only_alice = Prune::Only(BTreeSet::from([change(&p, "alice").object.clone()]));
    let p = plan(&fewer, &observed_with(Some(snapshot.clone())), PlanOptions { prune: only_alice, ..Default::default() });
    let deleted: Vec<&str> = p.changes.iter().filter(|c| c.action.writes()).map(|c| c.object.name.as_str()).collect();
    assert_eq!(deleted, ["alice"]);
    assert!(p.notes.is_empty(), "{:?}", p.notes);

    // Another tenant failed to read: nothing is deleted anywhere.
    let mut two = fewer.clone();
    let mut other = manifests("").desired.tenants[0].clone();
    other.identity.tenant_id = FABRIKAM.into();
    other.object.name = "other".into();
    two.tenants.push(other);
    let mut observed = observed_with(Some(snapshot));
    observed.insert(FABRIKAM.into(), Err("throttled".into()));
    let p = plan(&two, &observed, PlanOptions { prune: Prune::All, ..Default::default() });
    assert!(!p.errors.is_empty());
    assert!(!p.changes.iter().any(|c| matches!(c.action, Action::Delete | Action::Retain)));
    assert!(p.notes.iter().any(|n| n.contains("pruning skipped")), "{:?}", p.notes);
}

#[test]
fn a_partner_entente_pruned_is_written_again_with_when_and_why_it_was_deleted() {
    let m = manifests("");
    let snapshot = converge(&m);
    let mut fewer = m.desired.clone();
    fewer.tenants[0].partners.clear();
    let p = plan(&fewer, &observed_with(Some(snapshot.clone())), PlanOptions { prune: Prune::All, ..Default::default() });
    let deleted = change(&p, "fabrikam");
    assert!(matches!(&deleted.ops[..], [Operation::DeletePartner { .. }, Operation::Bury { .. }]), "{:?}", deleted.ops);
    let pruned = simulate(Some(snapshot), &p);
    assert_eq!(pruned.tombstones.len(), 1);

    let back = plan(&m.desired, &observed_with(Some(pruned)), PlanOptions::default());
    let c = change(&back, "fabrikam");
    assert_eq!(c.action, Action::Create);
    assert_eq!(
        c.note.as_deref(),
        Some("deleted by entente on 2026-12-01 (pruned: no longer in the manifests); written again from its manifest")
    );
}

#[test]
fn an_unreadable_tenant_makes_every_object_of_it_an_error() {
    let m = manifests("");
    let observed = Observed::from([(CONTOSO.to_string(), Err("connection refused".to_string()))]);
    let p = plan(&m.desired, &observed, PlanOptions::default());
    assert!(p.changes.is_empty());
    assert_eq!(p.errors.len(), 3);
    assert!(p.errors[0].message.contains("connection refused"));
}

#[test]
fn a_guest_deleted_outside_entente_is_invited_again_and_flagged() {
    let m = manifests("");
    let mut snapshot = converge(&m);
    snapshot.guests.clear();
    let p = plan(&m.desired, &observed_with(Some(snapshot)), PlanOptions::default());
    let c = change(&p, "alice");
    assert_eq!((c.action, c.drift), (Action::Create, true));
}

#[test]
fn a_pruned_guest_names_the_access_packages_they_lose() {
    use crate::core::entitlement::{Assignment, EntitlementState};
    let m = manifests("");
    let mut snapshot = converge(&m);
    let assignment = |package: &str, state: &str| Assignment {
        package: package.into(),
        policy: "Fabrikam users".into(),
        user_mail: "ALICE@fabrikam.com".into(),
        state: state.into(),
        expires_at: None,
    };
    snapshot.entitlement = Some(EntitlementState {
        assignments: vec![assignment("Partner portal", "delivered"), assignment("Old project", "expired")],
        ..Default::default()
    });
    let mut fewer = m.desired.clone();
    fewer.tenants[0].invitations.clear();
    let p = plan(&fewer, &observed_with(Some(snapshot)), PlanOptions { prune: Prune::All, ..Default::default() });
    let note = change(&p, "alice").note.clone().unwrap_or_default();
    assert!(note.contains("; loses access package(s) Partner portal;"), "only a delivered assignment is lost: {note}");
}
