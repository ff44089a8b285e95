//! Conditional access for external users (R18): `ConditionalAccessPolicy` manifests (errors naming the
//! field), plan/apply/unchanged re-plan/update/prune on the local directory (which checks each policy as
//! Graph would), the same through the Graph backend against the emulator (strict contract), and what
//! `entente explain` decides from the stored policies (R18 with R11).

mod common;
mod kube_support;
use std::sync::Arc;

use entente::core::conditional_access::add_to_explanation;
use entente::core::explain::{Person, Verdict, explain};
use entente::core::model::{DesiredState, Kind, TenantSnapshot};
use entente::core::operation::Operation;
use entente::core::plan::{Action, Plan, PlanOptions, Prune};
use entente::core::policy::TenantPolicy;
use entente::directory::graph::{Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use entente::emulator::{self, EmulatorConfig};
use entente::engine::{self, ChangeResult, Routes};

const TENANT: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a2b3c4d-1111-4222-8333-444455556666";

const TENANT_YAML: &str = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata:
  name: contoso
spec:
  tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01
  initialDomain: contoso.onmicrosoft.com
";

fn policy(name: &str, display: &str, state: &str, controls: &str, tenants: &str) -> String {
    format!(
        "apiVersion: entente.dev/v1alpha1
kind: ConditionalAccessPolicy
metadata:
  name: {name}
spec:
  tenantRef: {{ name: contoso }}
  displayName: {display}
  state: {state}
  users:
    includeGuestsOrExternalUsers:
      guestOrExternalUserTypes: [b2bCollaborationGuest, b2bDirectConnectUser]
      externalTenants: {tenants}
  applications:
    includeApplications: [All]
  grantControls:
    operator: OR
    builtInControls: [{controls}]
"
    )
}

fn guests_mfa() -> String {
    policy("guests-mfa", "Guests MFA", "enabled", "mfa", "all")
}

fn load(docs: &[&str]) -> Result<DesiredState, String> {
    let text = docs.join("---\n");
    entente::manifest::load_str(&[("ca.yaml", &text)]).map(|m| m.desired).map_err(|e| e.to_string())
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes.iter().filter(|c| c.object.kind != Kind::Tenant).map(|c| (c.object.name.clone(), c.action)).collect()
}

async fn plan(routes: &Routes, d: &DesiredState, prune: Prune) -> Plan {
    engine::plan_against(d, routes, PlanOptions { prune, ..Default::default() }).await
}

fn failures(report: &engine::ApplyReport) -> Vec<String> {
    report
        .results
        .iter()
        .filter_map(|r| match r {
            ChangeResult::Failed { category, message } => Some(format!("{category}: {message}")),
            ChangeResult::Refused { refusal } => Some(refusal.to_string()),
            ChangeResult::Skipped { reason } => Some(format!("skipped: {reason}")),
            _ => None,
        })
        .collect()
}

async fn snapshot(routes: &Routes) -> TenantSnapshot {
    routes[TENANT].as_ref().unwrap().snapshot(TENANT).await.unwrap().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Manifests

#[test]
fn manifest_errors_name_the_field() {
    let no_types = guests_mfa().replace("      guestOrExternalUserTypes: [b2bCollaborationGuest, b2bDirectConnectUser]\n", "");
    let e = load(&[TENANT_YAML, &no_types]).unwrap_err();
    assert!(
        e.contains(
            "ConditionalAccessPolicy/default/guests-mfa: spec.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes: needs at least one external user type"
        ),
        "{e}"
    );
    assert!(
        e.contains("spec.users.includeGuestsOrExternalUsers.externalTenants: only allowed when guestOrExternalUserTypes is set"),
        "{e}"
    );
    let bad_type = guests_mfa().replace("b2bDirectConnectUser]", "partnerUser]");
    let e = load(&[TENANT_YAML, &bad_type]).unwrap_err();
    assert!(e.contains("spec.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes"), "{e}");
    let bad_tenant = policy("p", "P", "enabled", "mfa", "[not-a-guid]");
    let e = load(&[TENANT_YAML, &bad_tenant]).unwrap_err();
    assert!(e.contains("spec.users.includeGuestsOrExternalUsers.externalTenants[0]"), "{e}");
    let bad_tenants = policy("p", "P", "enabled", "mfa", "some");
    let e = load(&[TENANT_YAML, &bad_tenants]).unwrap_err();
    assert!(e.contains("spec.users.includeGuestsOrExternalUsers.externalTenants") && e.contains("\"all\""), "{e}");
    let no_controls = guests_mfa().replace("builtInControls: [mfa]", "builtInControls: []");
    assert!(load(&[TENANT_YAML, &no_controls]).unwrap_err().contains("spec.grantControls.builtInControls: needs at least one"));
    let bad_state = guests_mfa().replace("state: enabled", "state: reportOnly");
    assert!(load(&[TENANT_YAML, &bad_state]).unwrap_err().contains("spec.state"));
    let twice = guests_mfa().replace("name: guests-mfa", "name: other");
    assert!(load(&[TENANT_YAML, &guests_mfa(), &twice]).unwrap_err().contains("already declares a policy \"Guests MFA\""));
    let bad_app = guests_mfa().replace("[All]", "[Office365]");
    assert!(load(&[TENANT_YAML, &bad_app]).unwrap_err().contains("spec.applications.includeApplications[0]"));
    // Valid: enumerated tenants are normalized.
    let ok = policy("p", "P", "enabledForReportingButNotEnforced", "block", &format!("[{}]", FABRIKAM.to_uppercase()));
    let d = load(&[TENANT_YAML, &ok]).unwrap();
    assert_eq!(d.conditional_access[TENANT].len(), 1);
}

// ------------------------------------------------------------------------------------------------
// Local directory

fn local() -> (Arc<LocalDirectory>, Routes) {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes = [(TENANT.to_string(), Ok(dir.clone() as Arc<dyn Directory>))].into_iter().collect();
    (dir, routes)
}

/// Create, unchanged re-plan, update (with a field diff), drift corrected, prune, against any backend.
async fn lifecycle(routes: &Routes) {
    let block =
        policy("block-fabrikam", "Block Fabrikam", "enabledForReportingButNotEnforced", "block", &format!("[{FABRIKAM}]"));
    let d = load(&[TENANT_YAML, &guests_mfa(), &block]).unwrap();
    let p = plan(routes, &d, Prune::Off).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(actions(&p), [("guests-mfa".to_string(), Action::Create), ("block-fabrikam".to_string(), Action::Create)]);
    let report = engine::apply(&p, routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));

    let again = plan(routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));
    assert!(actions(&again).iter().all(|(_, a)| *a == Action::Unchanged), "{:?}", actions(&again));
    let s = snapshot(routes).await;
    let stored = s.conditional_access.as_ref().unwrap();
    assert_eq!(stored.len(), 2);
    let records: Vec<_> = s.managed.iter().filter(|r| r.kind == Kind::ConditionalAccessPolicy).collect();
    assert_eq!(records.len(), 2);

    // Report-only → enabled: an update naming the field.
    let enforced = block.replace("state: enabledForReportingButNotEnforced", "state: enabled");
    let d2 = load(&[TENANT_YAML, &guests_mfa(), &enforced]).unwrap();
    let p = plan(routes, &d2, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "block-fabrikam").unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["state"]);
    assert!(!c.drift);
    assert!(failures(&engine::apply(&p, routes).await).is_empty());
    assert!(!plan(routes, &d2, Prune::Off).await.has_writes());

    // Drift: the policy is switched off outside entente; the plan corrects it.
    let s = snapshot(routes).await;
    let mfa = s.conditional_access.unwrap().into_iter().find(|p| p.policy.display_name == "Guests MFA").unwrap();
    let mut off = mfa.policy.clone();
    off.state = entente::core::conditional_access::PolicyState::Disabled;
    routes[TENANT]
        .as_ref()
        .unwrap()
        .apply(TENANT, &[Operation::PutConditionalAccessPolicy { id: Some(mfa.id.clone()), policy: off }])
        .await
        .unwrap();
    let p = plan(routes, &d2, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "guests-mfa").unwrap();
    assert_eq!((c.action, c.drift), (Action::Update, true), "{c:?}");
    assert!(failures(&engine::apply(&p, routes).await).is_empty());

    // Removed from the manifests: kept without --prune, deleted with it.
    let d3 = load(&[TENANT_YAML, &guests_mfa()]).unwrap();
    let p = plan(routes, &d3, Prune::Off).await;
    assert!(!p.has_writes());
    assert!(p.notes.iter().any(|n| n.contains("ConditionalAccessPolicy/default/block-fabrikam")), "{:?}", p.notes);
    let p = plan(routes, &d3, Prune::All).await;
    assert_eq!(actions(&p).iter().filter(|(_, a)| *a == Action::Delete).count(), 1, "{:?}", actions(&p));
    assert!(failures(&engine::apply(&p, routes).await).is_empty());
    let s = snapshot(routes).await;
    assert_eq!(s.conditional_access.unwrap().iter().map(|p| p.policy.display_name.as_str()).collect::<Vec<_>>(), ["Guests MFA"]);

    // deletionPolicy: Retain → the policy stays, the record goes.
    let retained = format!("{}  deletionPolicy: Retain\n", guests_mfa());
    let d4 = load(&[TENANT_YAML, &retained]).unwrap();
    assert!(failures(&engine::apply(&plan(routes, &d4, Prune::Off).await, routes).await).is_empty());
    let p = plan(routes, &load(&[TENANT_YAML]).unwrap(), Prune::All).await;
    assert_eq!(actions(&p), [("guests-mfa".to_string(), Action::Retain)]);
    assert!(failures(&engine::apply(&p, routes).await).is_empty());
    let s = snapshot(routes).await;
    assert_eq!(s.conditional_access.unwrap().len(), 1);
    assert!(s.managed.iter().all(|r| r.kind != Kind::ConditionalAccessPolicy));
}

#[tokio::test]
async fn plan_apply_unchanged_update_drift_and_prune_on_the_local_directory() {
    let (_dir, routes) = local();
    lifecycle(&routes).await;
}

#[tokio::test]
async fn the_local_directory_checks_policies_as_graph_does() {
    let (dir, routes) = local();
    let d = load(&[TENANT_YAML]).unwrap();
    assert!(failures(&engine::apply(&plan(&routes, &d, Prune::Off).await, &routes).await).is_empty());
    let mut p = load(&[TENANT_YAML, &guests_mfa()]).unwrap().conditional_access[TENANT][0].policy.clone();
    p.users.include_guests_or_external_users.guest_or_external_user_types.clear();
    let e = dir.apply(TENANT, &[Operation::PutConditionalAccessPolicy { id: None, policy: p }]).await.unwrap_err();
    assert!(matches!(&e, DirectoryError::Invalid(m) if m.contains("at least one guestOrExternalUserTypes")), "{e}");
}

// ------------------------------------------------------------------------------------------------
// Explain (R18 with R11) from what the directory holds

#[tokio::test]
async fn explain_uses_the_stored_policies() {
    let (_dir, routes) = local();
    let block =
        policy("block-fabrikam", "Block Fabrikam", "enabledForReportingButNotEnforced", "block", &format!("[{FABRIKAM}]"));
    let d = load(&[TENANT_YAML, &guests_mfa(), &block]).unwrap();
    assert!(failures(&engine::apply(&plan(&routes, &d, Prune::Off).await, &routes).await).is_empty());
    let s = snapshot(&routes).await;
    let resource = TenantPolicy::from_snapshot(&s);
    let mut home = resource.clone();
    home.identity.tenant_id = FABRIKAM.into();
    home.identity.initial_domain = "fabrikam.onmicrosoft.com".into();
    home.identity.verified_domains = ["fabrikam.com".to_string()].into();
    home.partners.clear();
    let policies: Vec<_> = s.conditional_access.unwrap().into_iter().map(|p| p.policy).collect();
    let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: None };
    let mut e = explain(&resource, Some(&home), &person, "AllApplications");
    add_to_explanation(&mut e, &resource, Some(&home), None, Some(&policies));
    let text = entente::core::explain::render(&e);
    let collab = e.paths.iter().find(|p| p.path == "b2bCollaboration").unwrap();
    let r18: Vec<_> = collab.steps.iter().filter(|s| s.rule == "R18").collect();
    assert!(
        r18.iter().any(|s| s.detail.contains("ConditionalAccessPolicy 'Guests MFA' in contoso.onmicrosoft.com requires MFA for b2bCollaborationGuest users of fabrikam.onmicrosoft.com → MFA is done in contoso.onmicrosoft.com")),
        "{text}"
    );
    assert!(r18.iter().any(|s| s.verdict == Verdict::Note && s.detail.contains("report-only")), "{text}");
    assert!(collab.mfa.contains("MFA required, done in the resource tenant"), "{text}");
}

// ------------------------------------------------------------------------------------------------
// Access impact: what a policy change does to existing guests, before it is applied

#[test]
fn plan_reports_which_existing_guests_a_policy_change_blocks_or_prompts() {
    let ws = common::Workspace::new();
    let invite = |name: &str, mail: &str| {
        format!(
            "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata:\n  name: {name}\nspec:\n  tenantRef: {{ name: contoso }}\n  invitedUserEmailAddress: {mail}\n"
        )
    };
    ws.write("m/tenant.yaml", TENANT_YAML);
    ws.write("m/guests.yaml", &format!("{}---\n{}", invite("alice", "alice@fabrikam.com"), invite("bob", "bob@fabrikam.com")));
    let (code, out, err) = ws.run(&["apply", "-f", "m"]);
    assert_eq!(code, 0, "{out}{err}");

    // Enforced block for every guest: both guests of fabrikam.com lose sign-in, named in the plan.
    ws.write("m/block.yaml", &policy("block", "Block guests", "enabled", "block", "all"));
    let (code, out, err) = ws.run(&["plan", "-f", "m", "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lines = plan["accessImpact"].as_array().unwrap();
    let block = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("blocks sign-in to every application"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        block["message"],
        "blocks sign-in to every application by conditional access policy \"Block guests\" for 2 existing guest(s) of fabrikam.com (R18)"
    );
    assert_eq!(block["effect"], "removes");
    assert_eq!(block["guests"], serde_json::json!(["alice@fabrikam.com", "bob@fabrikam.com"]));

    // Report-only decides nothing, so it changes no one's access; the text plan has no impact section.
    ws.write("m/block.yaml", &policy("block", "Block guests", "enabledForReportingButNotEnforced", "block", "all"));
    let (_, out, _) = ws.run(&["plan", "-f", "m"]);
    assert!(!out.contains("Access impact"), "{out}");

    // Applied, then removed from the manifests and pruned: the plan says sign-in comes back.
    ws.write("m/block.yaml", &policy("block", "Block guests", "enabled", "block", "all"));
    assert_eq!(ws.run(&["apply", "-f", "m"]).0, 0);
    std::fs::remove_file(ws.path("m/block.yaml")).unwrap();
    let (_, out, _) = ws.run(&["plan", "-f", "m", "--prune"]);
    assert!(out.contains("+ contoso.onmicrosoft.com: no longer blocks sign-in to every application (policy \"Block guests\") for 2 existing guest(s) of fabrikam.com (R18)"), "{out}");
}

// ------------------------------------------------------------------------------------------------
// Graph backend against the emulator

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_through_the_graph_backend_and_the_emulator() {
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
    let d = load(&[TENANT_YAML]).unwrap();
    world.apply(TENANT, &[Operation::CreateTenant { identity: d.tenants[0].identity.clone() }]).await.unwrap();
    let mut config = EmulatorConfig::default();
    config.contract.strict = true;
    config.contract.allow_unknown_properties = false;
    let handle = emulator::start(world.clone(), config).await.unwrap();
    let inventory = Arc::new(SqliteInventory::open(&tmp.path().join("inventory.db")).unwrap());
    let permissions: Vec<String> = entente::directory::graph::APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    assert!(permissions.iter().any(|p| p == "Policy.ReadWrite.ConditionalAccess"));
    let app = emulator::apps::create_app(&world, TENANT, "entente", &permissions).unwrap();
    let mut gc = GraphConfig::new(TENANT, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    gc.authority_host = handle.url();
    gc.graph_endpoint = handle.url();
    let dir = GraphDirectory::new(gc, inventory).unwrap();
    let routes: Routes = [(TENANT.to_string(), Ok(Arc::new(dir) as Arc<dyn Directory>))].into_iter().collect();

    let started = std::time::Instant::now();
    lifecycle(&routes).await;
    // The emulator wrote its local directory: the policy is there as entente declared it.
    let s = world.snapshot(TENANT).await.unwrap().unwrap();
    assert_eq!(s.conditional_access.unwrap()[0].policy.display_name, "Guests MFA");
    let contract = handle.contract_report();
    assert!(contract.violations.is_empty(), "contract violations: {:#?}", contract.violations);
    // Conditional access requests are paced at one per 1.1 s per tenant (Graph: 1/s, no Retry-After).
    assert!(started.elapsed() >= std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

// ------------------------------------------------------------------------------------------------
// The controller (a fake Kubernetes API server, `tower_test::mock::pair`)

mod controller {

    use entente::directory::Directory;
    use entente::directory::local::LocalDirectory;

    use serde_json::{Value, json};

    use super::TENANT;
    use crate::kube_support::reconcile_contoso;

    fn meta(name: &str) -> Value {
        json!({ "namespace": "default", "name": name, "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z" })
    }

    async fn reconcile(objects: &[Value], directory: &std::path::Path) {
        reconcile_contoso(objects, directory).await.0.expect("reconciles");
    }

    #[tokio::test]
    async fn the_tenant_reconcile_applies_its_conditional_access_policies() {
        let tmp = tempfile::tempdir().unwrap();
        let directory = tmp.path().join("directory.db");
        let objects = vec![
            json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta("contoso"),
                    "spec": { "tenantId": TENANT, "initialDomain": "contoso.onmicrosoft.com" } }),
            json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "ConditionalAccessPolicy", "metadata": meta("guests-mfa"),
                    "spec": { "tenantRef": { "name": "contoso" }, "displayName": "Guests MFA",
                              "users": { "includeGuestsOrExternalUsers": { "guestOrExternalUserTypes": ["b2bCollaborationGuest"],
                                                                           "externalTenants": "all" } },
                              "applications": { "includeApplications": ["All"] },
                              "grantControls": { "builtInControls": ["mfa"] } } }),
        ];
        reconcile(&objects, &directory).await;
        let s = LocalDirectory::open(&directory).unwrap().snapshot(TENANT).await.unwrap().unwrap();
        let names: Vec<String> = s.conditional_access.unwrap().into_iter().map(|p| p.policy.display_name).collect();
        assert_eq!(names, ["Guests MFA"]);
    }
}
