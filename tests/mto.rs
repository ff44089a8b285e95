//! Multi-tenant organizations (R15) end to end on the local directory, through the engine: the plan shows
//! the generated partner configurations and the membership; apply makes the members active and the
//! partner configurations marked `isInMultiTenantOrganization`; a second apply writes nothing; removing a
//! member undoes exactly what was generated for it.

mod emulator_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use entente::core::model::{DesiredState, Kind, ObjectRef};
use entente::core::mto::{DesiredMultiTenantOrganization, MtoMemberState, MtoParticipant, MtoRole, MtoSyncJobs, expand_into};
use entente::core::operation::Operation;
use entente::core::plan::{Action, Plan, PlanOptions, Prune};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::emulator::EmulatorHandle;
use entente::engine::{self, Routes};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const WOODGROVE: &str = "3c5d7e9f-1a2b-4c3d-8e4f-5a6b7c8d9e03";
const OUTSIDER: &str = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a04";

fn tenant_yaml(name: &str, id: &str) -> String {
    format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec:\n  tenantId: {id}\n  initialDomain: {name}.onmicrosoft.com\n"
    )
}

fn tenants() -> DesiredState {
    let text = [("contoso", CONTOSO), ("fabrikam", FABRIKAM), ("woodgrove", WOODGROVE)]
        .iter()
        .map(|(n, id)| tenant_yaml(n, id))
        .collect::<Vec<_>>()
        .join("---\n");
    entente::manifest::load_str(&[("tenants.yaml", &text)]).expect("tenants load").desired
}

fn mto_object() -> ObjectRef {
    ObjectRef::new(Kind::MultiTenantOrganization, "default", "contoso-group")
}

fn managed(name: &str, id: &str) -> MtoParticipant {
    MtoParticipant {
        tenant_id: id.into(),
        tenant: Some(ObjectRef::new(Kind::Tenant, "default", name)),
        display_name: Some(name.into()),
    }
}

/// Contoso owns the group; `members` (names) besides it, and an unmanaged tenant.
fn desired(members: &[&str]) -> DesiredState {
    let mut d = tenants();
    let ids = [("fabrikam", FABRIKAM), ("woodgrove", WOODGROVE)];
    let mut list: Vec<MtoParticipant> = ids.iter().filter(|(n, _)| members.contains(n)).map(|(n, id)| managed(n, id)).collect();
    list.push(MtoParticipant { tenant_id: OUTSIDER.into(), tenant: None, display_name: None });
    let mto = DesiredMultiTenantOrganization {
        object: mto_object(),
        display_name: "Contoso group".into(),
        description: None,
        owner: managed("contoso", CONTOSO),
        members: list,
        partner_settings: Default::default(),
        sync_jobs: MtoSyncJobs::default(),
    };
    let errors = expand_into(&mut d, vec![mto]);
    assert!(errors.is_empty(), "{errors:?}");
    d
}

const TENANTS: [&str; 3] = [CONTOSO, FABRIKAM, WOODGROVE];

/// The directory (`world`, read back for the assertions) and the routes entente plans and applies through:
/// the local directory itself, or the Graph backend over the emulator serving it.
struct Harness {
    world: Arc<LocalDirectory>,
    routes: Routes,
    emulator: Option<EmulatorHandle>,
    _tmp: tempfile::TempDir,
}

impl Harness {
    /// The tenants exist before entente runs (Graph tenants are never created by entente).
    async fn world(tmp: &tempfile::TempDir) -> Arc<LocalDirectory> {
        let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
        for t in tenants().tenants {
            world.apply(&t.identity.tenant_id, &[Operation::CreateTenant { identity: t.identity.clone() }]).await.unwrap();
        }
        world
    }

    async fn local() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Self::world(&tmp).await;
        let routes = TENANTS.iter().map(|t| (t.to_string(), Ok(world.clone() as Arc<dyn Directory>))).collect();
        Harness { world, routes, emulator: None, _tmp: tmp }
    }

    /// Through the emulator with strict contract checking.
    async fn graph() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Self::world(&tmp).await;
        let (handle, routes) = emulator_support::graph_over_emulator(&world, &TENANTS, &tmp.path().join("inventory.db")).await;
        Harness { world, routes, emulator: Some(handle), _tmp: tmp }
    }

    fn check_contract(&self) {
        if let Some(h) = &self.emulator {
            emulator_support::assert_contract_kept(h);
        }
    }
}

async fn plan_apply(d: &DesiredState, routes: &Routes) -> Plan {
    let plan = engine::plan_against(d, routes, PlanOptions::default()).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let report = engine::apply(&plan, routes).await;
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    plan
}

fn generated(plan: &Plan) -> Vec<&entente::core::plan::Change> {
    plan.changes
        .iter()
        .filter(|c| c.object == mto_object() && c.ops.iter().any(|o| matches!(o, Operation::PutPartner { .. })))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_apply_activates_members_marks_partners_and_converges() {
    apply_activates_members_marks_partners_and_converges(&Harness::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_apply_activates_members_marks_partners_and_converges() {
    let h = Harness::graph().await;
    apply_activates_members_marks_partners_and_converges(&h).await;
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_removing_a_member_deletes_exactly_what_was_generated_for_it() {
    removing_a_member_deletes_exactly_what_was_generated_for_it(&Harness::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_removing_a_member_deletes_exactly_what_was_generated_for_it() {
    let h = Harness::graph().await;
    removing_a_member_deletes_exactly_what_was_generated_for_it(&h).await;
    h.check_contract();
}

async fn apply_activates_members_marks_partners_and_converges(h: &Harness) {
    let (dir, routes) = (&h.world, &h.routes);
    let d = desired(&["fabrikam", "woodgrove"]);
    assert_eq!(d.sync_jobs.len(), 6, "one job per ordered pair of managed tenants");

    let plan = plan_apply(&d, routes).await;
    // Every ordered pair of the three managed tenants gets a partner configuration.
    let partners = generated(&plan);
    assert_eq!(partners.len(), 6, "{:#?}", plan.changes);
    assert!(partners.iter().all(|c| c.action == Action::Create));
    let note = partners
        .iter()
        .find(|c| c.tenant_id == CONTOSO && c.note.as_deref().is_some_and(|n| n.contains("fabrikam.onmicrosoft.com")))
        .and_then(|c| c.note.clone())
        .expect("a note for contoso's partner fabrikam");
    assert_eq!(note, "partner fabrikam.onmicrosoft.com in contoso: generated by MultiTenantOrganization/default/contoso-group");
    // The owner creates the organization and lists every member, the outsider included.
    let owner = plan
        .changes
        .iter()
        .find(|c| c.tenant_id == CONTOSO && c.ops.iter().any(|o| matches!(o, Operation::PutMultiTenantOrganization { .. })))
        .expect("the owner's change");
    let added: BTreeSet<&str> = owner
        .ops
        .iter()
        .filter_map(|o| match o {
            Operation::AddMtoMember { tenant_id, .. } => Some(tenant_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(added, BTreeSet::from([FABRIKAM, WOODGROVE, OUTSIDER]));
    assert!(owner.note.as_deref().unwrap().contains("not managed by entente"), "{:?}", owner.note);
    // Managed members join; the owner's change comes before them.
    let owner_at = plan.changes.iter().position(|c| std::ptr::eq(c, owner)).unwrap();
    for member in [FABRIKAM, WOODGROVE] {
        let at = plan
            .changes
            .iter()
            .position(|c| c.tenant_id == member && c.ops.iter().any(|o| matches!(o, Operation::JoinMto { .. })))
            .expect("a join");
        assert!(at > owner_at);
    }

    // In the directory: members active (the outsider pending), partners marked.
    let contoso = dir.snapshot(CONTOSO).await.unwrap().unwrap();
    let org = contoso.multi_tenant_organization.as_ref().unwrap().organization.as_ref().unwrap();
    assert_eq!(org.display_name, "Contoso group");
    let state = |id: &str| org.members.iter().find(|m| m.tenant_id == id).map(|m| (m.role, m.state));
    assert_eq!(state(CONTOSO), Some((MtoRole::Owner, MtoMemberState::Active)));
    assert_eq!(state(FABRIKAM), Some((MtoRole::Member, MtoMemberState::Active)));
    assert_eq!(state(WOODGROVE), Some((MtoRole::Member, MtoMemberState::Active)));
    assert_eq!(state(OUTSIDER), Some((MtoRole::Member, MtoMemberState::Pending)));
    for t in [CONTOSO, FABRIKAM, WOODGROVE] {
        let s = dir.snapshot(t).await.unwrap().unwrap();
        assert_eq!(s.partners.len(), 2, "{t}");
        for p in &s.partners {
            assert!(p.is_in_multi_tenant_organization, "{t} -> {}", p.tenant_id);
            assert!(p.identity_synchronization.as_ref().unwrap().user_sync_inbound.is_sync_allowed);
            let consent = p.settings.automatic_user_consent_settings.as_ref().unwrap();
            assert_eq!((consent.inbound_allowed, consent.outbound_allowed), (Some(true), Some(true)));
        }
        if t != CONTOSO {
            let j = s.multi_tenant_organization.as_ref().unwrap().join_request.as_ref().unwrap();
            assert_eq!((j.added_by_tenant_id.as_str(), j.member_state), (CONTOSO, MtoMemberState::Active));
        }
    }

    // A second apply writes nothing.
    let again = engine::plan_against(&d, routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes.iter().filter(|c| c.action.writes()).collect::<Vec<_>>());
}

async fn removing_a_member_deletes_exactly_what_was_generated_for_it(h: &Harness) {
    let (dir, routes) = (&h.world, &h.routes);
    plan_apply(&desired(&["fabrikam", "woodgrove"]), routes).await;

    // Woodgrove leaves the spec (no --prune).
    let d = desired(&["fabrikam"]);
    let plan = engine::plan_against(&d, routes, PlanOptions::default()).await;
    let deletions: BTreeSet<(String, String)> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .flat_map(|c| {
            c.ops.iter().filter_map(move |o| match o {
                Operation::DeletePartner { partner_tenant_id } => Some((c.tenant_id.clone(), partner_tenant_id.clone())),
                Operation::LeaveMto => Some((c.tenant_id.clone(), "leave".into())),
                _ => None,
            })
        })
        .collect();
    let expected: BTreeSet<(String, String)> =
        [(CONTOSO, WOODGROVE), (FABRIKAM, WOODGROVE), (WOODGROVE, CONTOSO), (WOODGROVE, FABRIKAM), (WOODGROVE, "leave")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(deletions, expected, "{:#?}", plan.changes);
    assert!(plan.changes.iter().filter(|c| c.action == Action::Delete).all(|c| {
        c.note.as_deref().is_some_and(|n| n.contains("no longer generated by MultiTenantOrganization/default/contoso-group"))
    }));
    let removed = plan.changes.iter().any(|c| {
        c.tenant_id == CONTOSO
            && c.ops.iter().any(|o| matches!(o, Operation::RemoveMtoMember { tenant_id } if tenant_id == WOODGROVE))
    });
    assert!(removed, "the owner removes woodgrove from its member list");
    let report = engine::apply(&plan, routes).await;
    assert_eq!(report.failed(), 0, "{:?}", report.results);

    let contoso = dir.snapshot(CONTOSO).await.unwrap().unwrap();
    let ids: BTreeSet<&str> = contoso.partners.iter().map(|p| p.tenant_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([FABRIKAM]));
    let woodgrove = dir.snapshot(WOODGROVE).await.unwrap().unwrap();
    assert!(woodgrove.partners.is_empty());
    assert!(woodgrove.multi_tenant_organization.is_none());
    let records = routes[WOODGROVE].as_ref().unwrap().snapshot(WOODGROVE).await.unwrap().unwrap().managed;
    assert!(records.iter().all(|r| r.kind == Kind::Tenant), "{records:?}");
    let again = engine::plan_against(&d, routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes.iter().filter(|c| c.action.writes()).collect::<Vec<_>>());

    // Deleting the whole organization is a prune: every member removed, every generated partner deleted.
    let mut gone = tenants();
    gone.multi_tenant_organizations.clear();
    let plan = engine::plan_against(&gone, routes, PlanOptions::default()).await;
    assert!(!plan.has_writes(), "nothing without --prune");
    let plan = engine::plan_against(&gone, routes, PlanOptions { prune: Prune::All, ..Default::default() }).await;
    let report = engine::apply(&plan, routes).await;
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    for t in [CONTOSO, FABRIKAM] {
        let s = dir.snapshot(t).await.unwrap().unwrap();
        assert!(s.partners.is_empty(), "{t}");
    }
    let fabrikam = dir.snapshot(FABRIKAM).await.unwrap().unwrap();
    assert!(fabrikam.multi_tenant_organization.is_none());
    let contoso = dir.snapshot(CONTOSO).await.unwrap().unwrap();
    let org = contoso.multi_tenant_organization.unwrap().organization.unwrap();
    assert_eq!(org.members.len(), 1, "the owner alone");
}

// ---------------------------------------------------------------------------------------------
// Through the manifests and the CLI

mod common;

const TENANTS_YAML: &str = "\
apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: {name: contoso}
spec: {tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01, initialDomain: contoso.onmicrosoft.com, displayName: Contoso}
---
apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: {name: fabrikam}
spec: {tenantId: 9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02, initialDomain: fabrikam.onmicrosoft.com, displayName: Fabrikam}
---
apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: {name: woodgrove}
spec: {tenantId: 3c5d7e9f-1a2b-4c3d-8e4f-5a6b7c8d9e03, initialDomain: woodgrove.onmicrosoft.com}
";

fn mto_yaml(members: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: entente.dev/v1alpha1\nkind: MultiTenantOrganization\nmetadata: {name: contoso-group, namespace: default}\n\
         spec:\n  displayName: Contoso group\n  owner: {tenantRef: {name: contoso}}\n  members:\n",
    );
    for m in members {
        s.push_str(&format!("  - tenantRef: {{name: {m}}}\n"));
    }
    s.push_str("  - tenantId: 1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a04\n");
    s.push_str("  partnerConfiguration:\n    inboundTrust: {isMfaAccepted: true}\n");
    s
}

#[test]
fn cli_plan_shows_the_expansion_apply_converges_and_a_removed_member_is_undone() {
    let ws = common::Workspace::new();
    ws.write("m/tenants.yaml", TENANTS_YAML);
    ws.write("m/mto.yaml", &mto_yaml(&["fabrikam", "woodgrove"]));
    let dir = ws.path("m").display().to_string();

    let (code, out, err) = ws.run(&["plan", "-f", &dir]);
    assert_eq!(code, 1, "changes pending: {out}{err}");
    assert!(
        out.contains("# partner fabrikam.onmicrosoft.com in contoso: generated by MultiTenantOrganization/default/contoso-group"),
        "{out}"
    );
    assert_eq!(out.matches(": generated by MultiTenantOrganization/default/contoso-group").count(), 6, "{out}");
    assert!(out.contains("~ isInMultiTenantOrganization: false → true"), "{out}");
    assert!(out.contains("contoso owns the organization"), "{out}");
    assert!(out.contains("fabrikam joins the organization of Contoso"), "{out}");
    assert!(out.contains("not managed by entente: it stays pending until it joins by itself"), "{out}");

    let (code, out, err) = ws.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ws.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("No changes: 0 write(s)"), "{out}");

    // Woodgrove leaves the organization: its four partner configurations and its join are undone, without --prune.
    ws.write("m/mto.yaml", &mto_yaml(&["fabrikam"]));
    let (code, out, err) = ws.run(&["plan", "-f", &dir]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.matches("no longer generated by MultiTenantOrganization/default/contoso-group").count(), 5, "{out}");
    assert!(out.contains("0 to create, 1 to update, 5 to delete"), "{out}");
    let (code, out, err) = ws.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ws.run(&["apply", "-f", &dir]);
    assert_eq!(code, 0);
    assert!(out.contains("No changes: 0 write(s)"), "{out}");
}

#[test]
fn a_policy_for_a_generated_pair_is_a_manifest_error_naming_both() {
    let ws = common::Workspace::new();
    ws.write("m/tenants.yaml", TENANTS_YAML);
    ws.write("m/mto.yaml", &mto_yaml(&["fabrikam"]));
    ws.write(
        "m/policy.yaml",
        "apiVersion: entente.dev/v1alpha1\nkind: CrossTenantAccessPolicy\nmetadata: {name: contoso-fabrikam}\n\
         spec: {tenantRef: {name: contoso}, partnerTenantId: 9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02}\n",
    );
    let (code, out, err) = ws.run(&["plan", "-f", &ws.path("m").display().to_string()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("mto.yaml:7: MultiTenantOrganization/default/contoso-group: spec.members: MultiTenantOrganization/default/contoso-group generates the partner configuration for 9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02 in Tenant/default/contoso, which CrossTenantAccessPolicy/default/contoso-fabrikam also configures"),
        "{err}"
    );
}

#[test]
fn manifest_checks() {
    let load = |mto: &str| match entente::manifest::load_str(&[("tenants.yaml", TENANTS_YAML), ("mto.yaml", mto)]) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    let base = mto_yaml(&["fabrikam"]);
    let err = load(&base.replace("{name: fabrikam}", "{name: nowhere}"));
    assert!(
        err.contains(
            "mto.yaml:8: MultiTenantOrganization/default/contoso-group: spec.members[0].tenantRef.name: no Tenant \"nowhere\""
        ),
        "{err}"
    );
    let err = load(&base.replace("{name: fabrikam}", "{name: contoso}"));
    assert!(err.contains("spec.members[0]: Tenant/default/contoso is the owner"), "{err}");
    let err = load(&format!("{base}  syncJobs:\n    template: {{interval: 10s}}\n"));
    assert!(err.contains("spec.syncJobs.template.interval: \"10s\" is too short"), "{err}");
    let err = load(&format!(
        "{base}  syncJobs:\n    overrides:\n    - {{from: {{name: contoso}}, to: {{name: woodgrove}}, enabled: false}}\n"
    ));
    assert!(err.contains("spec.syncJobs.overrides[0].to: Tenant/default/woodgrove is not in this organization"), "{err}");
    let err = load(&base.replace(
        "  partnerConfiguration:\n",
        "  partnerConfiguration:\n    automaticUserConsentSettings: {inboundAllowed: false}\n",
    ));
    assert!(err.contains("spec.partnerConfiguration.automaticUserConsentSettings"), "{err}");
    let err = load(&base.replace("displayName: Contoso group", "displayName: Contoso group\n  colour: blue"));
    assert!(err.contains("spec.colour: unknown field `colour`"), "{err}");
    assert_eq!(load(&base), "");
}
