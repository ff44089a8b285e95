//! Through the Graph backend over the emulator (strict contract): a guest that already exists, already in
//! its groups, is adopted with no group change and no member request (the snapshot reads the memberships of
//! the groups the manifests name, not only of those entente applied before); a group name that several
//! groups share (Graph allows it) is refused with both ids named instead of picking one.

mod emulator_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use entente::core::model::{Cloud, DesiredState, TenantIdentity};
use entente::core::operation::Operation;
use entente::core::plan::{Action, Plan, PlanOptions, Prune};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::engine::{self, ChangeResult, Routes};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

const MANIFESTS: &str = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata:
  name: contoso
spec:
  tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01
  initialDomain: contoso.onmicrosoft.com
  displayName: Contoso
  groups:
    - displayName: Fabrikam partners
    - displayName: Contractors
---
apiVersion: entente.dev/v1alpha1
kind: GuestInvitation
metadata:
  name: alice
spec:
  tenantRef: { name: contoso }
  invitedUserEmailAddress: alice@fabrikam.com
  invitedUserDisplayName: Alice (Fabrikam)
  sendInvitationMessage: true
  groups: [Fabrikam partners, Contractors]
";

fn desired() -> DesiredState {
    entente::manifest::load_str(&[("m.yaml", MANIFESTS)]).unwrap().desired
}

async fn world(path: &std::path::Path) -> Arc<LocalDirectory> {
    let dir = Arc::new(LocalDirectory::open(path).unwrap());
    let identity = TenantIdentity {
        tenant_id: CONTOSO.into(),
        initial_domain: "contoso.onmicrosoft.com".into(),
        display_name: "Contoso".into(),
        cloud: Cloud::Global,
        verified_domains: BTreeSet::new(),
    };
    dir.apply(CONTOSO, &[Operation::CreateTenant { identity }]).await.unwrap();
    dir
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

fn alice(plan: &Plan) -> &entente::core::plan::Change {
    plan.changes.iter().find(|c| c.object.name == "alice").expect("alice is planned")
}

#[tokio::test]
async fn a_guest_already_in_its_groups_is_adopted_without_group_changes_or_member_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let world = world(&tmp.path().join("directory.db")).await;
    // Someone set it all up by hand before entente: the groups, alice invited into both.
    let local: Routes = [(CONTOSO.to_string(), Ok(world.clone() as Arc<dyn Directory>))].into_iter().collect();
    let by_hand = engine::plan_against(&desired(), &local, PlanOptions { prune: Prune::Off, ..Default::default() }).await;
    assert!(failures(&engine::apply(&by_hand, &local).await).is_empty());

    let (emulator, graph) = emulator_support::graph_over_emulator(&world, &[CONTOSO], &tmp.path().join("inventory.db")).await;
    let plan = engine::plan_against(&desired(), &graph, PlanOptions { prune: Prune::Off, ..Default::default() }).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let change = alice(&plan);
    assert_eq!(change.action, Action::Adopt, "{change:#?}");
    assert!(change.diff.iter().all(|d| !d.path.starts_with("groups")), "already in both groups: {:#?}", change.diff);

    let before = emulator.stats();
    let report = engine::apply(&plan, &graph).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let after = emulator.stats();
    let bad = after.by_status.get(&400).copied().unwrap_or(0) - before.by_status.get(&400).copied().unwrap_or(0);
    assert_eq!(bad, 0, "no member request answered 400: {:?}", after.by_status);

    let again = engine::plan_against(&desired(), &graph, PlanOptions { prune: Prune::Off, ..Default::default() }).await;
    assert!(again.changes.iter().all(|c| c.action == Action::Unchanged), "{:#?}", again.changes);
    emulator_support::assert_contract_kept(&emulator);
}

#[tokio::test]
async fn a_group_name_two_groups_share_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let world = world(&tmp.path().join("directory.db")).await;
    let (emulator, graph) = emulator_support::graph_over_emulator(&world, &[CONTOSO], &tmp.path().join("inventory.db")).await;
    // Two groups called "Contractors", as Graph allows (an admin made one by hand).
    let admin = entente::emulator::apps::create_app(&world, CONTOSO, "admin", &["Group.ReadWrite.All".to_string()]).unwrap();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/{CONTOSO}/oauth2/v2.0/token", emulator.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_id", admin.client_id.as_str()),
            ("client_secret", admin.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body = serde_json::json!({ "displayName": "Contractors", "mailEnabled": false, "mailNickname": "c", "securityEnabled": true });
        let r = http.post(format!("{}/v1.0/groups", emulator.url())).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        ids.push(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }

    let plan = engine::plan_against(&desired(), &graph, PlanOptions { prune: Prune::Off, ..Default::default() }).await;
    let report = engine::apply(&plan, &graph).await;
    let failed = failures(&report).join("\n");
    assert!(failed.contains("2 groups are named \"Contractors\""), "{failed}");
    assert!(ids.iter().all(|id| failed.contains(id.as_str())), "both ids named: {failed}");
    // Sync scopes read group members by name the same way.
    let err = graph[CONTOSO].as_ref().unwrap().group_member_ids(CONTOSO, "Contractors").await.unwrap_err();
    assert!(err.to_string().contains("2 groups are named"), "{err}");
    emulator_support::assert_contract_kept(&emulator);
}
