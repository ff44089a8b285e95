//! Entitlement management (R16): `ConnectedOrganization` and `AccessPackage` manifests and the Tenant's
//! `entitlementManagement` settings — manifest errors; plan, apply and an unchanged re-plan on the local
//! directory; requests, approvals, expiry and the external-user lifecycle with an injected clock; the same
//! CRUD through the Graph backend over the emulator (strict contract checking), package resources (groups,
//! applications) and approvers included; the emulator's refusals of malformed bodies; and `explain`'s
//! access-package path.

mod common;
mod emulator_support;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use entente::core::entitlement::{EntitlementView, LifecycleAction};
use entente::core::explain::{Person, Verdict, explain_with, render};
use entente::core::model::{DesiredState, Kind};
use entente::core::plan::{Action, Change, Plan, PlanOptions, Prune, desired_policies};
use entente::directory::local::{LocalDirectory, RequestOutcome};
use entente::directory::{Directory, DirectoryError};
use entente::emulator::EmulatorHandle;
use entente::engine::{self, Routes};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const APP: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const TENANTS: [&str; 2] = [CONTOSO, FABRIKAM];

fn tenants(lifecycle: &str, groups: bool) -> String {
    let groups = if groups { "  groups:\n  - displayName: Partners\n  - displayName: Vendors\n" } else { "" };
    format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: contoso}}\nspec:\n  tenantId: {CONTOSO}\n  initialDomain: contoso.onmicrosoft.com\n  verifiedDomains: [contoso.com]\n{groups}{lifecycle}---\n\
         apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: fabrikam}}\nspec:\n  tenantId: {FABRIKAM}\n  initialDomain: fabrikam.onmicrosoft.com\n  verifiedDomains: [fabrikam.com]\n"
    )
}

const LIFECYCLE: &str = "  entitlementManagement:\n    externalUserLifecycleAction: blockSignInAndDelete\n    durationUntilExternalUserDeletedAfterBlocked: 30d\n";

fn organization(state: &str) -> String {
    format!(
        "apiVersion: entente.dev/v1alpha1\nkind: ConnectedOrganization\nmetadata: {{name: fabrikam-org}}\nspec:\n  tenantRef: {{name: contoso}}\n  displayName: Fabrikam\n  description: Our partner\n  state: {state}\n  identitySources:\n  - tenantId: {FABRIKAM}\n"
    )
}

/// The partner portal (Partners group + the app, for fabrikam's users, 30 days) and vendor access
/// (Vendors group, any external user, approval by boss@contoso.com, never expires).
fn packages(resources: bool) -> String {
    packages_for(resources, APP)
}

/// `packages` with the application `app`.
fn packages_for(resources: bool, app: &str) -> String {
    let partner_resources =
        if resources { format!("  resources:\n    groups: [Partners]\n    applications: [{app}]\n") } else { String::new() };
    let vendor_resources = if resources { "  resources:\n    groups: [Vendors]\n" } else { "" };
    format!(
        "apiVersion: entente.dev/v1alpha1\nkind: AccessPackage\nmetadata: {{name: partner-portal}}\nspec:\n  tenantRef: {{name: contoso}}\n  displayName: Partner portal\n{partner_resources}  assignmentPolicies:\n  - displayName: Fabrikam users\n    requestors:\n      specificConnectedOrganizations: [fabrikam-org]\n    expiration: 30d\n---\n\
         apiVersion: entente.dev/v1alpha1\nkind: AccessPackage\nmetadata: {{name: vendor-access}}\nspec:\n  tenantRef: {{name: contoso}}\n  displayName: Vendor access\n{vendor_resources}  assignmentPolicies:\n  - displayName: Anyone external\n    requestors:\n      allExternalUsers: true\n    approvalRequired: true\n    approvers: [boss@contoso.com]\n"
    )
}

fn load(parts: &[String]) -> DesiredState {
    let text = parts.join("---\n");
    match entente::manifest::load_str(&[("ent.yaml", &text)]) {
        Ok(m) => m.desired,
        Err(e) => panic!("manifests: {e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match entente::manifest::load_str(&[("ent.yaml", text)]) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn manifest_errors_name_file_line_object_and_field() {
    let bad_package =
        "apiVersion: entente.dev/v1alpha1\nkind: AccessPackage\nmetadata: {name: broken}\nspec:\n  tenantRef: {name: contoso}\n  displayName: Broken\n  resources:\n    groups: [Nope]\n    applications: [not-a-guid]\n  assignmentPolicies:\n  - displayName: p1\n    requestors:\n      specificConnectedOrganizations: [ghost-org]\n    expiration: soon\n  - displayName: p2\n    requestors: {allExternalUsers: true, allConfiguredConnectedOrganizations: true}\n".to_string();
    let text = [tenants("", true), organization("configured"), bad_package].join("---\n");
    let e = errors(&text);
    let find = |field: &str| {
        e.iter()
            .find(|m| m.contains(&format!(": AccessPackage/default/broken: {field}: ")))
            .unwrap_or_else(|| panic!("{field} in {e:#?}"))
    };
    let m = find("spec.assignmentPolicies[0].requestors.specificConnectedOrganizations[0]");
    assert!(
        m.starts_with("ent.yaml:")
            && m.contains("unknown connected organization \"ghost-org\"")
            && m.contains("known: fabrikam-org"),
        "{m}"
    );
    assert!(find("spec.resources.groups[0]").contains("group \"Nope\" is not declared in spec.groups of Tenant/default/contoso"));
    find("spec.resources.applications[0]");
    assert!(find("spec.assignmentPolicies[0].expiration").contains("or never"));
    assert!(find("spec.assignmentPolicies[1].requestors").contains("exactly one of"));

    // A Tenant's lifecycle duration needs blockSignInAndDelete; a connected organization needs a source.
    let e = errors(&tenants(
        "  entitlementManagement:\n    externalUserLifecycleAction: blockSignIn\n    durationUntilExternalUserDeletedAfterBlocked: 30d\n",
        false,
    ));
    assert!(
        e.iter().any(|m| m.contains(
            "Tenant/default/contoso: spec.entitlementManagement.durationUntilExternalUserDeletedAfterBlocked: only applies"
        )),
        "{e:#?}"
    );
    let org = organization("configured").replace(
        &format!("  identitySources:\n  - tenantId: {FABRIKAM}\n"),
        "  identitySources:\n  - {tenantId: x, domainName: fabrikam.com}\n",
    );
    let e = errors(&[tenants("", false), org].join("---\n"));
    assert!(
        e.iter().any(|m| m.contains("ConnectedOrganization/default/fabrikam-org: spec.identitySources[0]: give exactly one")),
        "{e:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Harness: the local directory, or the Graph backend over the emulator

struct Harness {
    world: Arc<LocalDirectory>,
    routes: Routes,
    /// The application id the packages give access to (over Graph, an app registered in contoso).
    app: String,
    emulator: Option<EmulatorHandle>,
    _tmp: tempfile::TempDir,
}

impl Harness {
    async fn local() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
        let routes = TENANTS.iter().map(|t| (t.to_string(), Ok(world.clone() as Arc<dyn Directory>))).collect();
        Harness { world, routes, app: APP.into(), emulator: None, _tmp: tmp }
    }

    async fn graph() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
        // The Graph backend never creates tenants: they exist first (a local plan creates them).
        let local: Routes = TENANTS.iter().map(|t| (t.to_string(), Ok(world.clone() as Arc<dyn Directory>))).collect();
        plan_and_apply(&load(&[tenants("", false)]), &local).await;
        // The approver is a user of contoso; the application is registered there (its service principal).
        world.add_member(CONTOSO, "boss@contoso.com", Some("Boss")).unwrap();
        let app = entente::emulator::apps::create_app(&world, CONTOSO, "Partner portal app", &[]).unwrap().client_id;
        let (handle, routes) = emulator_support::graph_over_emulator(&world, &TENANTS, &tmp.path().join("inventory.db")).await;
        Harness { world, routes, app, emulator: Some(handle), _tmp: tmp }
    }

    fn check_contract(&self) {
        if let Some(h) = &self.emulator {
            emulator_support::assert_contract_kept(h);
        }
    }
}

fn change<'a>(plan: &'a Plan, kind: Kind, name: &str) -> &'a Change {
    plan.changes
        .iter()
        .find(|c| c.object.kind == kind && c.object.name == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} change: {:#?}", plan.changes))
}

async fn plan_and_apply(d: &DesiredState, routes: &Routes) -> Plan {
    plan_and_apply_with(d, routes, PlanOptions::default()).await
}

async fn plan_and_apply_with(d: &DesiredState, routes: &Routes, options: PlanOptions) -> Plan {
    let plan = engine::plan_against(d, routes, options).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let report = engine::apply(&plan, routes).await;
    assert_eq!(report.failed(), 0, "{:#?}", report.results);
    plan
}

async fn assert_unchanged(d: &DesiredState, routes: &Routes) {
    let again = engine::plan_against(d, routes, PlanOptions::default()).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(!again.has_writes(), "{:#?}", again.changes.iter().filter(|c| c.action.writes()).collect::<Vec<_>>());
}

/// Plan, apply, unchanged re-plan, an edit, drift, a removed group, and pruning, on either backend.
async fn crud(h: &Harness, resources: bool) {
    let packages = |r: bool| packages_for(r, &h.app);
    let desired = load(&[tenants(LIFECYCLE, resources), organization("configured"), packages(resources)]);
    let plan = plan_and_apply(&desired, &h.routes).await;
    // Connected organizations come before the packages that name them.
    let pos = |kind: Kind| plan.changes.iter().position(|c| c.object.kind == kind).unwrap();
    assert!(pos(Kind::ConnectedOrganization) < pos(Kind::AccessPackage), "{:#?}", plan.changes);
    assert_eq!(change(&plan, Kind::ConnectedOrganization, "fabrikam-org").action, Action::Create);
    let c = change(&plan, Kind::AccessPackage, "partner-portal");
    assert_eq!(c.action, Action::Create);
    assert!(c.diff.iter().any(|d| d.path.starts_with("assignmentPolicies")), "{:#?}", c.diff);
    assert!(!c.note.as_deref().unwrap_or_default().contains("cannot be written"), "{c:#?}");
    let settings = plan.changes.iter().find(|c| c.diff.iter().any(|d| d.path.starts_with("entitlementManagement."))).unwrap();
    assert_eq!(settings.action, Action::Update, "{settings:#?}");

    let state = h.world.entitlement(CONTOSO).unwrap();
    assert_eq!(state.settings.external_user_lifecycle_action, LifecycleAction::BlockSignInAndDelete);
    assert_eq!(state.settings.delete_after_blocked_seconds, 30 * 86_400);
    assert_eq!(state.connected_organizations.len(), 1);
    let portal = state.access_packages.iter().find(|p| p.value.display_name == "Partner portal").unwrap();
    assert_eq!(portal.value.policies[0].connected_organizations.iter().collect::<Vec<_>>(), ["Fabrikam"]);
    assert_eq!(portal.value.policies[0].expiration_seconds, Some(30 * 86_400));
    if resources {
        // The resources and the approver reached the directory (over Graph: through the emulator's
        // resource requests, role scopes and singleUser approval stage).
        assert_eq!(portal.value.groups.iter().collect::<Vec<_>>(), ["Partners"]);
        assert_eq!(portal.value.applications.iter().collect::<Vec<_>>(), [&h.app]);
        let vendor = state.access_packages.iter().find(|p| p.value.display_name == "Vendor access").unwrap();
        assert_eq!(vendor.value.groups.iter().collect::<Vec<_>>(), ["Vendors"]);
        assert_eq!(vendor.value.policies[0].approvers.iter().collect::<Vec<_>>(), ["boss@contoso.com"]);
        assert!(vendor.value.policies[0].approval_required);
    }
    assert_unchanged(&desired, &h.routes).await;

    // An edit: the organization becomes proposed; an update with its field diff.
    let edited = load(&[tenants(LIFECYCLE, resources), organization("proposed"), packages(resources)]);
    let plan = plan_and_apply(&edited, &h.routes).await;
    let c = change(&plan, Kind::ConnectedOrganization, "fabrikam-org");
    assert_eq!((c.action, c.drift), (Action::Update, false));
    assert_eq!(c.diff.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["state"]);
    assert_unchanged(&edited, &h.routes).await;

    // Drift: someone changes the lifecycle outside entente; corrected.
    let id = h.world.entitlement(CONTOSO).unwrap();
    let mut s = id.settings;
    s.external_user_lifecycle_action = LifecycleAction::None;
    h.world.apply(CONTOSO, &[entente::core::operation::Operation::SetEntitlementSettings { settings: s }]).await.unwrap();
    let plan = plan_and_apply(&edited, &h.routes).await;
    let c = plan.changes.iter().find(|c| c.diff.iter().any(|d| d.path.starts_with("entitlementManagement."))).unwrap();
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_unchanged(&edited, &h.routes).await;

    // A group removed from a package: the package no longer gives it (the application stays).
    let fewer_groups = load(&[
        tenants(LIFECYCLE, resources),
        organization("proposed"),
        packages(resources).replacen("    groups: [Partners]\n", "", 1),
    ]);
    let plan = plan_and_apply(&fewer_groups, &h.routes).await;
    let c = change(&plan, Kind::AccessPackage, "partner-portal");
    assert_eq!((c.action, c.drift), (Action::Update, false), "{c:#?}");
    assert!(c.diff.iter().any(|d| d.path.starts_with("resources.groups")), "{:#?}", c.diff);
    let state = h.world.entitlement(CONTOSO).unwrap();
    let portal = state.access_packages.iter().find(|p| p.value.display_name == "Partner portal").unwrap();
    assert!(portal.value.groups.is_empty(), "{portal:#?}");
    assert_eq!(portal.value.applications.iter().collect::<Vec<_>>(), [&h.app]);
    assert_unchanged(&fewer_groups, &h.routes).await;

    // Removed from the manifests: kept without --prune, deleted with it (packages before organizations).
    let fewer = load(&[tenants(LIFECYCLE, resources)]);
    let plan = engine::plan_against(&fewer, &h.routes, PlanOptions::default()).await;
    assert!(plan.notes.iter().any(|n| n.contains("AccessPackage/default/partner-portal")), "{:?}", plan.notes);
    let plan = plan_and_apply_with(&fewer, &h.routes, PlanOptions { prune: Prune::All, ..Default::default() }).await;
    let kinds: Vec<Kind> = plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.kind).collect();
    assert_eq!(kinds, [Kind::AccessPackage, Kind::AccessPackage, Kind::ConnectedOrganization], "{:#?}", plan.changes);
    let state = h.world.entitlement(CONTOSO).unwrap();
    assert!(state.access_packages.is_empty() && state.connected_organizations.is_empty(), "{state:#?}");
    assert_unchanged(&fewer, &h.routes).await;
}

#[tokio::test]
async fn local_plan_apply_unchanged_edit_drift_prune() {
    let h = Harness::local().await;
    crud(&h, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_plan_apply_unchanged_edit_drift_prune_over_the_emulator() {
    let h = Harness::graph().await;
    crud(&h, true).await;
    h.check_contract();
    // Every entitlement call was checked against the contract (reference plus extension), none was outside it.
    let report = h.emulator.as_ref().unwrap().contract_report();
    let outside: Vec<_> = report.outside_subset.iter().filter(|o| o.path.contains("entitlementManagement")).collect();
    assert!(outside.is_empty(), "{outside:#?}");
}

fn failures(report: &entente::engine::ApplyReport) -> String {
    format!("{:?}", report.results)
}

/// Over Graph an approver or an application that is not in the tenant fails the package's change with an
/// error naming it, before anything of that package is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_unknown_approver_or_application_fails_naming_it() {
    let h = Harness::graph().await;
    let desired = load(&[
        tenants("", true),
        organization("configured"),
        packages_for(true, &h.app).replace("boss@contoso.com", "nobody@contoso.com"),
    ]);
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let report = engine::apply(&plan, &h.routes).await;
    let failed = failures(&report);
    assert_eq!(report.failed(), 1, "{failed}");
    assert!(
        failed.contains("approver nobody@contoso.com of access package \\\"Vendor access\\\", policy \\\"Anyone external\\\""),
        "{failed}"
    );
    let state = h.world.entitlement(CONTOSO).unwrap();
    assert!(state.access_packages.iter().all(|p| p.value.display_name != "Vendor access"), "{state:#?}");

    // An approver named by userPrincipalName while their mail differs would read back as the mail and
    // drift forever: the change fails and says which address to use.
    let id = h.world.add_member(CONTOSO, "chief@contoso.onmicrosoft.com", Some("Chief")).unwrap();
    let patch = entente::core::operation::GuestPatch { mail: Some("chief@contoso.com".into()), ..Default::default() };
    h.world.apply(CONTOSO, &[entente::core::operation::Operation::UpdateGuest { user_id: id, patch }]).await.unwrap();
    let desired = load(&[
        tenants("", true),
        organization("configured"),
        packages_for(true, &h.app).replace("boss@contoso.com", "chief@contoso.onmicrosoft.com"),
    ]);
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    let failed = failures(&engine::apply(&plan, &h.routes).await);
    assert!(failed.contains("approver chief@contoso.onmicrosoft.com of access package \\\"Vendor access\\\", policy \\\"Anyone external\\\": that user's mail is chief@contoso.com"), "{failed}");

    let unknown = "11111111-2222-4333-8444-555555555555";
    let desired = load(&[tenants("", true), organization("configured"), packages_for(true, unknown)]);
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    let report = engine::apply(&plan, &h.routes).await;
    let failed = failures(&report);
    assert!(failed.contains(&format!("application {unknown} of access package \\\"Partner portal\\\"")), "{failed}");
    h.check_contract();
}

/// The emulator checks package resource and approver bodies against the contract (extension included):
/// wrong types and values are answered 400 and recorded as request violations, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_rejects_malformed_resource_and_approver_bodies() {
    let h = Harness::graph().await;
    let desired = load(&[tenants("", true), organization("configured"), packages_for(true, &h.app)]);
    plan_and_apply(&desired, &h.routes).await;
    h.check_contract();
    let before = h.world.entitlement(CONTOSO).unwrap();
    let pkg = before.access_packages.iter().find(|p| p.value.display_name == "Partner portal").unwrap().id.clone();
    let emu = h.emulator.as_ref().unwrap();
    let probe = entente::emulator::apps::create_app(&h.world, CONTOSO, "probe", &[]).unwrap();
    let token = emu.mint_token(CONTOSO, &probe.client_id, &["EntitlementManagement.ReadWrite.All"], 600);
    let http = reqwest::Client::new();
    let base = format!("{}/v1.0/identityGovernance/entitlementManagement", emu.url());
    let post = |path: String, body: serde_json::Value| {
        let req = http.post(format!("{base}{path}")).bearer_auth(&token).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    };

    // accessPackageResourceRole.originId is a string.
    let role = serde_json::json!({
        "role": { "originSystem": "AadGroup", "originId": 5 },
        "scope": { "originSystem": "AadGroup", "isRootScope": true },
    });
    assert_eq!(post(format!("/accessPackages/{pkg}/resourceRoleScopes"), role).await, 400);
    // requestType is an accessPackageRequestType.
    let request = serde_json::json!({
        "requestType": "adminAddd",
        "resource": { "originId": "x", "originSystem": "AadGroup" },
        "catalog": { "id": "x" },
    });
    assert_eq!(post("/resourceRequests".into(), request).await, 400);
    // A singleUser approver's userId is a string.
    let policy = serde_json::json!({
        "displayName": "Bad approvers",
        "allowedTargetScope": "allExternalUsers",
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": true,
            "stages": [{ "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": 42 }] }],
        },
        "accessPackage": { "id": pkg },
    });
    assert_eq!(post("/assignmentPolicies".into(), policy).await, 400);
    // As Graph: a package is created in a catalog, which the body must name (well-formed, so no violation).
    assert_eq!(post("/accessPackages".into(), serde_json::json!({ "displayName": "No catalog" })).await, 400);
    // catalog.id is a string.
    assert_eq!(post("/accessPackages".into(), serde_json::json!({ "displayName": "Bad", "catalog": { "id": 7 } })).await, 400);

    let report = emu.contract_report();
    let findings: Vec<String> =
        report.violations.iter().filter(|v| v.direction == "request").flat_map(|v| v.findings.clone()).collect();
    for pointer in
        ["/role/originId", "/requestType", "/requestApprovalSettings/stages/0/primaryApprovers/0/userId", "/catalog/id"]
    {
        assert!(findings.iter().any(|f| f.starts_with(&format!("{pointer}:"))), "{pointer} in {findings:#?}");
    }
    assert_eq!(report.violations.len(), 4, "{:#?}", report.violations);
    assert_eq!(h.world.entitlement(CONTOSO).unwrap(), before, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Requests, approvals, expiry and the lifecycle (local directory, injected clock)

#[tokio::test]
async fn requests_approvals_expiry_and_lifecycle_are_enforced() {
    let h = Harness::local().await;
    let desired = load(&[tenants(LIFECYCLE, true), organization("configured"), packages(true)]);
    plan_and_apply(&desired, &h.routes).await;
    let dir = &h.world;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();

    // Fabrikam's user is admitted through the connected organization: delivered at once, for 30 days.
    let alice = dir.request_access_package_at(CONTOSO, "alice@fabrikam.com", "Partner portal", t0).unwrap();
    let RequestOutcome::Delivered { user_id: alice_id, expires_at, .. } = alice else { panic!("{alice:?}") };
    assert_eq!(expires_at.as_deref(), Some("2026-01-31T09:00:00Z"));
    let user = dir.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().unwrap();
    let partners = dir.groups(CONTOSO).unwrap().into_iter().find(|g| g.display_name == "Partners").unwrap();
    assert!(user.group_ids.contains(&partners.id) && user.account_enabled);

    // Someone from outside any connected organization: denied, naming R16 and the policy.
    let mallory = dir.request_access_package_at(CONTOSO, "mallory@gmail.com", "Partner portal", t0).unwrap();
    let RequestOutcome::Denied { reason } = mallory else { panic!("{mallory:?}") };
    assert!(reason.contains("R16") && reason.contains("\"Fabrikam users\" (specificConnectedOrganizationUsers)"), "{reason}");
    assert!(dir.user_by_mail(CONTOSO, "mallory@gmail.com").unwrap().is_none());

    // Approval required: pending until an approver approves; only the named approver may.
    let bob = dir.request_access_package_at(CONTOSO, "bob@fabrikam.com", "Vendor access", t0).unwrap();
    assert!(matches!(&bob, RequestOutcome::PendingApproval { approvers, .. } if approvers == &["boss@contoso.com"]), "{bob:?}");
    assert!(dir.user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().is_none(), "no access while pending");
    let err = dir.approve(CONTOSO, "bob@fabrikam.com", "Vendor access", Some("intern@contoso.com"), t0).unwrap_err();
    assert!(err.to_string().contains("only the approvers"), "{err}");
    let bob = dir.approve(CONTOSO, "bob@fabrikam.com", "Vendor access", Some("BOSS@contoso.com"), t0).unwrap();
    assert!(matches!(bob, RequestOutcome::Delivered { expires_at: None, .. }), "{bob:?}");
    // Alice also takes vendor access, then gives up nothing: her portal assignment alone expires.
    let err = dir.request_access_package_at(CONTOSO, "alice@fabrikam.com", "Partner portal", t0).unwrap_err();
    assert!(matches!(err, DirectoryError::Conflict(_)), "{err}");

    // Day 31: alice's assignment expires; it was her last, so she is blocked (not yet deleted); bob keeps his.
    let report = dir.expire_assignments(t0 + Duration::days(31)).unwrap();
    assert_eq!(report.expired, [(CONTOSO.to_string(), "alice@fabrikam.com".to_string(), "Partner portal".to_string())]);
    assert_eq!(report.blocked, [(CONTOSO.to_string(), alice_id.clone())]);
    assert!(report.deleted.is_empty());
    let user = dir.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().unwrap();
    assert!(!user.account_enabled && !user.group_ids.contains(&partners.id), "{user:?}");
    assert!(dir.user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().unwrap().account_enabled);

    // Requesting again before deletion restores sign-in.
    let again = dir.request_access_package_at(CONTOSO, "alice@fabrikam.com", "Partner portal", t0 + Duration::days(40)).unwrap();
    assert!(matches!(again, RequestOutcome::Delivered { .. }), "{again:?}");
    assert!(dir.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().unwrap().account_enabled);

    // It expires again (day 70); 30 days after the block (day 100) she is deleted.
    let report = dir.expire_assignments(t0 + Duration::days(71)).unwrap();
    assert_eq!(report.blocked.len(), 1);
    assert!(dir.expire_assignments(t0 + Duration::days(100)).unwrap().deleted.is_empty());
    let report = dir.expire_assignments(t0 + Duration::days(102)).unwrap();
    assert_eq!(report.deleted, [(CONTOSO.to_string(), alice_id)]);
    assert!(dir.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().is_none());

    // Assignments show in the plan of the package, which is otherwise unchanged.
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    let c = change(&plan, Kind::AccessPackage, "vendor-access");
    assert_eq!(c.action, Action::Unchanged);
    assert!(c.note.as_deref().unwrap_or_default().contains("1 active assignment(s)"), "{c:#?}");

    // Deleting the package (prune) ends bob's assignment: his last, so the lifecycle blocks him.
    let fewer =
        load(&[tenants(LIFECYCLE, true), organization("configured"), packages(true).split("---\n").next().unwrap().to_string()]);
    plan_and_apply_with(&fewer, &h.routes, PlanOptions { prune: Prune::All, ..Default::default() }).await;
    assert!(!dir.user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().unwrap().account_enabled);
}

// ---------------------------------------------------------------------------------------------
// explain

#[tokio::test]
async fn explain_evaluates_the_access_package_path_from_the_manifests() {
    let h = Harness::local().await;
    let desired = load(&[tenants(LIFECYCLE, true), organization("configured"), packages(true)]);
    let observed = engine::observe(&desired, &h.routes).await;
    let policies = desired_policies(&desired, &observed);
    let contoso = policies.iter().find(|p| p.identity.tenant_id == CONTOSO).unwrap();
    let fabrikam = policies.iter().find(|p| p.identity.tenant_id == FABRIKAM).unwrap();
    let view = EntitlementView::from_desired(&desired.entitlement[CONTOSO]);

    let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: None };
    let e = explain_with(contoso, Some(fabrikam), &person, APP, Some(&view));
    let p = e.paths.iter().find(|p| p.path == "accessPackage").unwrap();
    assert!(p.allowed, "{}", render(&e));
    let text = render(&e);
    assert!(text.contains("Partner portal") && text.contains("through connected organization \"Fabrikam\""), "{text}");
    assert!(
        text.contains(
            "assignments expire after 30d; when the last assignment ends, sign-in is blocked and the user deleted 30d later"
        ),
        "{text}"
    );

    // Vendor access admits anyone external but does not include the app; a gmail user is admitted by
    // no package that includes it.
    let person = Person { email: "mallory@gmail.com", principal_ids: None, guest: None };
    let e = explain_with(contoso, None, &person, APP, Some(&view));
    let p = e.paths.iter().find(|p| p.path == "accessPackage").unwrap();
    assert!(!p.allowed, "{}", render(&e));
    let block = p.steps.iter().find(|s| s.verdict == Verdict::Blocks).unwrap();
    assert!(block.rule == "R16" && block.detail.contains("no assignment policy admits mallory@gmail.com"), "{block:?}");
}

/// The same outside world from the command line: `entente directory request-access | approve | assignments | expire`.
#[test]
fn requests_approvals_and_expiry_from_the_command_line() {
    let ws = common::Workspace::new();
    ws.write("m/ent.yaml", &[tenants(LIFECYCLE, true), organization("configured"), packages(true)].join("---\n"));
    let (code, out, err) = ws.run(&["apply", "-f", "m"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ws.run(&["directory", "add-member", "contoso", "boss@contoso.com"]).0, 0);
    let run = |args: &[&str]| ws.run(&[&["directory"], args].concat());

    let (code, out, err) = run(&["request-access", "contoso", "Partner portal", "alice@fabrikam.com"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("delivered: alice@fabrikam.com has \"Partner portal\" of contoso.onmicrosoft.com through policy \"Fabrikam users\" (until "), "{out}");

    let (code, out, err) = run(&["request-access", "contoso", "Partner portal", "mallory@gmail.com"]);
    assert_eq!(code, 1, "denied is an answer (1), not an error (2): {out}{err}");
    assert!(
        err.contains("denied: mallory@gmail.com cannot have \"Partner portal\" of contoso.onmicrosoft.com")
            && err.contains("R16"),
        "{err}"
    );

    let (code, out, _) = run(&["request-access", "contoso", "Vendor access", "bob@fabrikam.com"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "pending approval: policy \"Anyone external\" of \"Vendor access\" requires approval by boss@contoso.com"
    );
    let (code, _, err) = run(&["approve", "contoso", "Vendor access", "bob@fabrikam.com", "--approver", "intern@contoso.com"]);
    assert!(code != 0 && err.contains("only the approvers"), "{err}");
    let (code, out, err) = run(&["approve", "contoso", "Vendor access", "bob@fabrikam.com", "--approver", "boss@contoso.com"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("delivered: bob@fabrikam.com"), "{out}");

    let (_, out, _) = run(&["assignments", "contoso", "-o", "json"]);
    let assignments: serde_json::Value = serde_json::from_str(&out).unwrap();
    let states: Vec<(&str, &str)> =
        assignments.as_array().unwrap().iter().map(|a| (a["userMail"].as_str().unwrap(), a["state"].as_str().unwrap())).collect();
    assert_eq!(states.len(), 2, "{out}");
    assert!(
        states.contains(&("alice@fabrikam.com", "delivered")) && states.contains(&("bob@fabrikam.com", "delivered")),
        "{out}"
    );

    // A month on: alice's 30-day assignment ends and, as it was her last, the lifecycle blocks her sign-in.
    let later = (Utc::now() + Duration::days(31)).to_rfc3339();
    let (code, out, err) = run(&["expire", "--at", &later]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("expired: alice@fabrikam.com's assignment to \"Partner portal\" of contoso.onmicrosoft.com"), "{out}");
    assert!(out.contains("blocked sign-in: user ") && !out.contains("bob"), "{out}");
    let (code, _, err) = run(&["expire", "--at", "tomorrow"]);
    assert!(code != 0 && err.contains("is not an RFC 3339 time"), "{err}");
}
