//! The recycle bin: a managed guest deleted outside entente comes back as the same person. On the local
//! directory and through the Graph backend over the emulator (strict contract): the plan restores it from
//! the recycle bin (same id, groups kept, no second invitation) instead of inviting someone new, and the
//! next plan is empty. A restore is refused while a live user holds the mail; after 30 days (an injected
//! clock) the bin is purged and the plan invites again; deletions by operations (sync, prune) land in the bin.

mod common;
mod emulator_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use entente::core::model::{Cloud, DesiredState, Kind, TenantIdentity};
use entente::core::operation::Operation;
use entente::core::plan::{Action, Change, Plan, PlanOptions, Prune};
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use entente::emulator::EmulatorHandle;
use entente::engine::{self, ChangeResult, Routes};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const ALICE: &str = "alice@fabrikam.com";

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

struct Harness {
    world: Arc<LocalDirectory>,
    routes: Routes,
    emulator: Option<EmulatorHandle>,
    _tmp: tempfile::TempDir,
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

impl Harness {
    async fn local() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = world(&tmp.path().join("directory.db")).await;
        let routes = [(CONTOSO.to_string(), Ok(world.clone() as Arc<dyn Directory>))].into_iter().collect();
        Harness { world, routes, emulator: None, _tmp: tmp }
    }

    async fn graph() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = world(&tmp.path().join("directory.db")).await;
        let (handle, routes) = emulator_support::graph_over_emulator(&world, &[CONTOSO], &tmp.path().join("inventory.db")).await;
        Harness { world, routes, emulator: Some(handle), _tmp: tmp }
    }

    fn directory(&self) -> &Arc<dyn Directory> {
        self.routes[CONTOSO].as_ref().unwrap()
    }

    async fn plan(&self) -> Plan {
        let p = engine::plan_against(&desired(), &self.routes, PlanOptions { prune: Prune::Off, ..Default::default() }).await;
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p
    }

    async fn apply(&self, p: &Plan) {
        let report = engine::apply(p, &self.routes).await;
        let failures: Vec<String> = report
            .results
            .iter()
            .filter_map(|r| match r {
                ChangeResult::Failed { category, message } => Some(format!("{category}: {message}")),
                ChangeResult::Refused { refusal } => Some(refusal.to_string()),
                ChangeResult::Skipped { reason } => Some(format!("skipped: {reason}")),
                _ => None,
            })
            .collect();
        assert!(failures.is_empty(), "{failures:?}");
    }

    /// Deletes alice outside entente: an admin in the portal (local), `DELETE /users/{id}` (Graph).
    async fn delete_alice(&self) -> String {
        let id = self.world.user_by_mail(CONTOSO, ALICE).unwrap().expect("alice exists").id;
        match &self.emulator {
            None => self.world.delete_user(CONTOSO, &id).unwrap(),
            Some(_) => {
                self.directory().apply(CONTOSO, &[Operation::DeleteGuest { user_id: id.clone() }]).await.unwrap();
            }
        }
        assert!(self.world.user_by_mail(CONTOSO, ALICE).unwrap().is_none());
        id
    }

    fn check_contract(&self) {
        if let Some(h) = &self.emulator {
            emulator_support::assert_contract_kept(h);
        }
    }
}

fn alice_change(p: &Plan) -> &Change {
    p.changes.iter().find(|c| c.object.kind == Kind::GuestInvitation).expect("alice's change")
}

/// Invitations the directory sent to alice: the change feed logs one `invitation issued` per redeem URL.
fn invitations_sent(world: &LocalDirectory, user_id: &str) -> usize {
    world
        .changes_since(0)
        .unwrap()
        .iter()
        .filter(|c| c.entity == "invitation" && c.change == "issued" && c.entity_id == user_id)
        .count()
}

fn group_names(world: &LocalDirectory, ids: &BTreeSet<String>) -> BTreeSet<String> {
    world.groups(CONTOSO).unwrap().into_iter().filter(|g| ids.contains(&g.id)).map(|g| g.display_name).collect()
}

async fn restored_as_the_same_person(h: Harness) {
    h.apply(&h.plan().await).await;
    let alice = h.world.user_by_mail(CONTOSO, ALICE).unwrap().unwrap();
    assert_eq!(group_names(&h.world, &alice.group_ids), ["Contractors", "Fabrikam partners"].map(String::from).into());
    assert_eq!(invitations_sent(&h.world, &alice.id), 1);
    h.world.redeem(CONTOSO, ALICE).unwrap();

    let id = h.delete_alice().await;
    let snapshot = h.directory().snapshot(CONTOSO).await.unwrap().unwrap();
    assert_eq!(snapshot.deleted_guests.iter().map(|d| d.guest.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert!(snapshot.guests.iter().all(|g| g.id != id));

    let p = h.plan().await;
    let c = alice_change(&p);
    assert_eq!((c.action, c.drift), (Action::Restore, true), "{c:#?}");
    assert!(c.ops.contains(&Operation::RestoreGuest { user_id: id.clone() }), "{:#?}", c.ops);
    assert!(!c.ops.iter().any(|o| matches!(o, Operation::Invite { .. })), "{:#?}", c.ops);
    let note = c.note.as_deref().unwrap_or_default();
    assert!(note.contains("the guest was deleted outside entente at"), "{note}");
    assert!(note.contains("restored from the recycle bin: same account"), "{note}");
    assert!(note.contains("no new invitation email"), "{note}");
    assert_eq!(c.diff[0].path, "deletedDateTime");
    h.apply(&p).await;

    let back = h.world.user_by_mail(CONTOSO, ALICE).unwrap().expect("alice is back");
    assert_eq!(back.id, id, "the same account");
    assert_eq!(group_names(&h.world, &back.group_ids), ["Contractors", "Fabrikam partners"].map(String::from).into());
    assert_eq!(back.external_user_state, Some(entente::core::model::RedemptionState::Accepted), "redemption kept");
    assert_eq!(invitations_sent(&h.world, &id), 1, "no second invitation");
    assert!(h.world.deleted_users(CONTOSO).unwrap().is_empty());

    let again = h.plan().await;
    assert!(!again.has_writes(), "{:#?}", again.changes);
    h.check_contract();
}

#[tokio::test]
async fn local_a_deleted_guest_is_restored_not_invited_again() {
    restored_as_the_same_person(Harness::local().await).await;
}

#[tokio::test]
async fn graph_a_deleted_guest_is_restored_not_invited_again() {
    restored_as_the_same_person(Harness::graph().await).await;
}

async fn restore_refused_while_the_mail_is_taken(h: Harness) {
    h.apply(&h.plan().await).await;
    let id = h.delete_alice().await;
    // Someone else now has the address.
    h.world.add_member(CONTOSO, ALICE, Some("Another Alice")).unwrap();
    let err = h.directory().apply(CONTOSO, &[Operation::RestoreGuest { user_id: id.clone() }]).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DirectoryError::Conflict(_)), "{err:?}");
    assert!(text.contains(&id) && text.contains("live user"), "{text}");
    assert_eq!(h.world.deleted_users(CONTOSO).unwrap().len(), 1, "still in the bin");
    h.check_contract();
}

#[tokio::test]
async fn local_restore_refused_while_the_mail_is_taken() {
    let h = Harness::local().await;
    restore_refused_while_the_mail_is_taken(h).await;
    // The direct restore says which property and which user.
    let h = Harness::local().await;
    h.apply(&h.plan().await).await;
    let id = h.delete_alice().await;
    let other = h.world.add_member(CONTOSO, ALICE, None).unwrap();
    let e = h.world.restore_user(CONTOSO, &id).unwrap_err().to_string();
    assert!(e.contains(&format!("its mail {ALICE} belongs to live user {other}")), "{e}");
}

#[tokio::test]
async fn graph_restore_refused_while_the_mail_is_taken() {
    restore_refused_while_the_mail_is_taken(Harness::graph().await).await;
}

#[tokio::test]
async fn after_30_days_the_bin_is_purged_and_the_plan_invites_again() {
    let h = Harness::local().await;
    h.apply(&h.plan().await).await;
    let id = h.delete_alice().await;
    // 29 days later it is still there.
    let now = chrono::Utc::now();
    assert_eq!(h.world.purge_recycle_bin(now + chrono::Duration::days(29)).unwrap(), 0);
    assert_eq!(h.world.deleted_users(CONTOSO).unwrap().len(), 1);
    // 31 days later it is gone for good.
    assert_eq!(h.world.purge_recycle_bin(now + chrono::Duration::days(31)).unwrap(), 1);
    assert!(h.world.deleted_users(CONTOSO).unwrap().is_empty());
    assert!(matches!(h.world.restore_user(CONTOSO, &id), Err(DirectoryError::NotFound(_))));

    let p = h.plan().await;
    let c = alice_change(&p);
    assert_eq!(c.action, Action::Create);
    assert!(c.ops.iter().any(|o| matches!(o, Operation::Invite { .. })), "{:#?}", c.ops);
    assert_eq!(c.note.as_deref(), Some("the guest was deleted outside entente; it is invited again"));
    h.apply(&p).await;
    let new = h.world.user_by_mail(CONTOSO, ALICE).unwrap().unwrap();
    assert_ne!(new.id, id, "a new account: nothing was restorable");
}

#[tokio::test]
async fn a_deletion_older_than_30_days_is_never_shown_even_before_the_purge() {
    let h = Harness::local().await;
    h.apply(&h.plan().await).await;
    let id = h.world.user_by_mail(CONTOSO, ALICE).unwrap().unwrap().id;
    h.world.delete_user_at(CONTOSO, &id, chrono::Utc::now() - chrono::Duration::days(31)).unwrap();
    assert!(h.world.deleted_users(CONTOSO).unwrap().is_empty());
    let snapshot = h.directory().snapshot(CONTOSO).await.unwrap().unwrap();
    assert!(snapshot.deleted_guests.is_empty());
    assert_eq!(alice_change(&h.plan().await).action, Action::Create);
}

/// What a SyncJob with `onLeavingScope: Delete` (and a prune) writes, `DeleteGuest`, lands in the bin
/// with the user's groups, and restores from there.
#[tokio::test]
async fn operation_deletions_land_in_the_recycle_bin() {
    let h = Harness::local().await;
    h.apply(&h.plan().await).await;
    let alice = h.world.user_by_mail(CONTOSO, ALICE).unwrap().unwrap();
    h.directory().apply(CONTOSO, &[Operation::DeleteGuest { user_id: alice.id.clone() }]).await.unwrap();
    let bin = h.world.deleted_users(CONTOSO).unwrap();
    assert_eq!(bin.len(), 1);
    assert_eq!(bin[0].guest.id, alice.id);
    assert_eq!(bin[0].guest.group_ids, alice.group_ids);
    // Deleting again is a no-op (idempotent), and so is restoring twice.
    h.directory().apply(CONTOSO, &[Operation::DeleteGuest { user_id: alice.id.clone() }]).await.unwrap();
    let restore = Operation::RestoreGuest { user_id: alice.id.clone() };
    h.directory().apply(CONTOSO, std::slice::from_ref(&restore)).await.unwrap();
    h.directory().apply(CONTOSO, &[restore]).await.unwrap();
    assert_eq!(h.world.user_by_mail(CONTOSO, ALICE).unwrap().unwrap().group_ids, alice.group_ids);
}

#[test]
fn cli_lists_and_restores_the_recycle_bin() {
    let ws = common::Workspace::new();
    ws.write("m.yaml", MANIFESTS);
    let (code, _, err) = ws.run(&["apply", "-f", "m.yaml"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ws.run(&["directory", "delete-guest", "contoso.onmicrosoft.com", ALICE]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted alice@fabrikam.com"), "{out}");
    let (code, out, _) = ws.run(&["directory", "deleted", "contoso.onmicrosoft.com"]);
    assert_eq!(code, 0);
    assert!(out.contains(ALICE) && out.contains("Fabrikam partners") && out.contains("Contractors"), "{out}");
    let (code, out, _) = ws.run(&["plan", "-f", "m.yaml"]);
    assert!(out.contains("restored from the recycle bin"), "{code} {out}");
    let (code, out, err) = ws.run(&["directory", "restore", "contoso.onmicrosoft.com", ALICE]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored alice@fabrikam.com"), "{out}");
    let (_, out, _) = ws.run(&["directory", "deleted", "contoso.onmicrosoft.com"]);
    assert!(out.contains("is empty"), "{out}");
    let (code, out, err) = ws.run(&["directory", "restore", "contoso.onmicrosoft.com", ALICE]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("holds no user"), "{err}");
}
