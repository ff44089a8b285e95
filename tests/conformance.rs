//! One set of behaviour tests, written once against `Directory` and the engine, run against two
//! backends: the local directory directly, and the Graph backend talking to the emulator over loopback
//! (which serves a local directory file). Same steps, same assertions, and the two runs must agree
//! step by step: every plan (object, action, drift), every apply result, every state read back.
//!
//! Also here: the fault test (30 % injected 429/5xx/dropped connections still converge to the same
//! state, with no duplicate guest and no invitation sent twice) and the contract test (strict
//! contract validation in the emulator records no violation).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use entente::core::model::{DesiredInvitation, DesiredState, Kind, ObjectRef, TenantSnapshot, UserType};
use entente::core::operation::{InvitationRequest, Operation};
use entente::core::plan::{Action, Plan, PlanOptions, Prune};
use entente::core::policy::RefusalReason;
use entente::directory::Directory;
use entente::directory::graph::{self as graph, Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::emulator::{self, EmulatorConfig, EmulatorHandle, FaultConfig, Limits, Rate};
use entente::engine::{self, ApplyReport, ChangeResult, Routes};
use serde_json::{Value, json};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";

/// Exactly what the Graph backend asks for (docs/permissions.md).
const PERMISSIONS: &[&str] = entente::directory::graph::APPLY_PERMISSIONS;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn desired() -> DesiredState {
    entente::manifest::load(&[examples()]).expect("examples load").desired
}

/// One signing key for every emulator of this test binary (RSA key generation is slow).
fn signing_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| emulator::jwt::SigningKey::generate().unwrap().to_pem().unwrap()).clone()
}

/// A backend under test: the routes the engine uses, and the directory behind them (the outside world:
/// a guest redeeming, an admin changing a setting in the portal).
struct Harness {
    routes: Routes,
    world: Arc<LocalDirectory>,
    emulator: Option<EmulatorHandle>,
    _tmp: tempfile::TempDir,
}

impl Harness {
    /// Both example tenants exist before entente runs (Graph tenants are never created by entente).
    async fn world(tmp: &tempfile::TempDir) -> Arc<LocalDirectory> {
        let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
        for t in desired().tenants {
            let ops = [Operation::CreateTenant { identity: t.identity.clone() }];
            world.apply(&t.identity.tenant_id, &ops).await.unwrap();
        }
        world
    }

    async fn local() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Self::world(&tmp).await;
        let routes = [CONTOSO, FABRIKAM].iter().map(|t| (t.to_string(), Ok(world.clone() as Arc<dyn Directory>))).collect();
        Harness { routes, world, emulator: None, _tmp: tmp }
    }

    async fn graph(config: EmulatorConfig) -> Harness {
        Self::graph_with(config, |_| {}).await
    }

    /// `tweak` adjusts each tenant's client configuration.
    async fn graph_with(config: EmulatorConfig, tweak: impl Fn(&mut GraphConfig)) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = Self::world(&tmp).await;
        let config = EmulatorConfig { signing_key_pem: Some(signing_key()), ..config };
        let handle = emulator::start(world.clone(), config).await.unwrap();
        let inventory = Arc::new(SqliteInventory::open(&tmp.path().join("inventory.db")).unwrap());
        let permissions: Vec<String> = PERMISSIONS.iter().map(|p| p.to_string()).collect();
        let mut routes = Routes::new();
        for tenant in [CONTOSO, FABRIKAM] {
            let app = emulator::apps::create_app(&world, tenant, "entente", &permissions).unwrap();
            let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
            config.authority_host = handle.url();
            config.graph_endpoint = handle.url();
            tweak(&mut config);
            let dir = GraphDirectory::new(config, inventory.clone()).unwrap();
            routes.insert(tenant.to_string(), Ok(Arc::new(dir) as Arc<dyn Directory>));
        }
        Harness { routes, world, emulator: Some(handle), _tmp: tmp }
    }

    async fn snapshot(&self, tenant: &str) -> TenantSnapshot {
        self.routes[tenant].as_ref().unwrap().snapshot(tenant).await.unwrap().expect("tenant exists")
    }

    async fn plan(&self, desired: &DesiredState, prune: Prune) -> Plan {
        engine::plan_against(desired, &self.routes, PlanOptions { prune, ..Default::default() }).await
    }

    async fn apply(&self, plan: &Plan) -> ApplyReport {
        engine::apply(plan, &self.routes).await
    }

    /// Plans and applies until nothing is left to write (at most `rounds` times); the last report.
    async fn converge(&self, desired: &DesiredState, prune: Prune, rounds: usize) -> Vec<(Plan, ApplyReport)> {
        let mut out = Vec::new();
        for _ in 0..rounds {
            let plan = self.plan(desired, prune.clone()).await;
            let settled = !plan.has_writes() && plan.errors.is_empty();
            let report = self.apply(&plan).await;
            out.push((plan, report));
            if settled {
                break;
            }
        }
        out
    }

    /// The outside world does something to the directory.
    async fn outside(&self, tenant: &str, ops: &[Operation]) {
        self.world.apply(tenant, ops).await.unwrap();
    }
}

/// What a plan decided, without ids: object, action, drift, refusal reason.
fn plan_view(plan: &Plan) -> Value {
    json!({
        "changes": plan.changes.iter().map(|c| json!([c.object.to_string(), c.action.as_str(), c.drift,
            c.refusal.as_ref().map(|r| r.reason.as_str())])).collect::<Vec<_>>(),
        "errors": plan.errors.iter().map(|e| e.object.to_string()).collect::<Vec<_>>(),
    })
}

/// What an apply did: per change, its status and (for refusals and failures) the reason or category.
fn report_view(report: &ApplyReport) -> Value {
    json!(
        report
            .results
            .iter()
            .map(|r| match r {
                ChangeResult::Nothing => json!("nothing"),
                ChangeResult::Applied { writes, .. } => json!(["applied", writes]),
                ChangeResult::Refused { refusal } => json!(["refused", refusal.reason.as_str()]),
                ChangeResult::Failed { category, message } => json!(["failed", category, message]),
                ChangeResult::Skipped { reason } => json!(["skipped", reason]),
            })
            .collect::<Vec<_>>()
    )
}

/// A tenant as read back through the backend, without directory-made ids: settings, groups by name,
/// partners, guests by mail with their groups by name, ownership records.
fn state_view(s: &TenantSnapshot) -> Value {
    let group_name = |id: &str| s.groups.iter().find(|g| g.id == id).map(|g| g.display_name.clone()).unwrap_or(id.to_string());
    let mut groups: Vec<&str> = s.groups.iter().map(|g| g.display_name.as_str()).collect();
    groups.sort();
    let mut guests: Vec<Value> = s
        .guests
        .iter()
        .map(|g| {
            let mut gs: Vec<String> = g.group_ids.iter().map(|id| group_name(id)).collect();
            gs.sort();
            json!({"mail": g.mail.to_ascii_lowercase(), "displayName": g.display_name, "userType": g.user_type,
                   "creationType": g.creation_type, "state": g.external_user_state, "accountEnabled": g.account_enabled, "groups": gs})
        })
        .collect();
    guests.sort_by_key(|g| g["mail"].as_str().unwrap_or_default().to_string());
    let mut partners: Vec<Value> = s
        .partners
        .iter()
        .map(|p| {
            json!({"tenantId": p.tenant_id, "settings": p.settings, "identitySynchronization": p.identity_synchronization,
                        "effective": s.default_access.overlay(&p.settings)})
        })
        .collect();
    partners.sort_by_key(|p| p["tenantId"].as_str().unwrap_or_default().to_string());
    let managed: Vec<Value> = s
        .managed
        .iter()
        .map(|r| {
            json!({"kind": r.kind, "key": r.key, "object": r.object.to_string(), "deletionPolicy": r.deletion_policy,
                        "applied": r.applied, "hasExternalId": r.external_id.is_some()})
        })
        .collect();
    json!({"identity": s.identity, "collaboration": s.external_collaboration, "defaultAccess": s.default_access, "groups": groups,
           "partners": partners, "guests": guests, "managed": managed})
}

async fn state(h: &Harness) -> Value {
    json!({"contoso": state_view(&h.snapshot(CONTOSO).await), "fabrikam": state_view(&h.snapshot(FABRIKAM).await)})
}

fn guest<'a>(s: &'a TenantSnapshot, mail: &str) -> Option<&'a entente::core::model::GuestUser> {
    s.guests.iter().find(|g| g.mail.eq_ignore_ascii_case(mail))
}

fn record<'a>(s: &'a TenantSnapshot, kind: Kind, key: &str) -> Option<&'a entente::core::model::ManagedRecord> {
    s.managed.iter().find(|r| r.kind == kind && r.key == key)
}

fn change<'a>(plan: &'a Plan, name: &str) -> &'a entente::core::plan::Change {
    plan.changes
        .iter()
        .find(|c| c.object.name == name)
        .unwrap_or_else(|| panic!("no change for {name} in {:#?}", plan_view(plan)))
}

fn no_failures(report: &ApplyReport) {
    assert_eq!(report.failed(), 0, "{:#}", report_view(report));
}

/// The scenario. Returns what each step saw, for comparing backends.
async fn scenario(h: &Harness) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut desired = desired();

    // An admin already invited Alice by hand, into no group: entente adopts her, never invites again.
    let alice_invite = Operation::Invite {
        invitation: InvitationRequest {
            re_invite: false,
            invited_user_email_address: "Alice@Fabrikam.com".into(),
            invited_user_display_name: Some("Alice".into()),
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            invited_user_type: UserType::Guest,
            send_invitation_message: false,
            invited_user_message_info: None,
            groups: vec![],
        },
    };
    h.outside(CONTOSO, &[alice_invite]).await;
    let alice_id = guest(&h.snapshot(CONTOSO).await, "alice@fabrikam.com").expect("alice invited by hand").id.clone();

    // 1. First apply of examples/.
    let plan = h.plan(&desired, Prune::Off).await;
    assert!(plan.errors.is_empty(), "{:#}", plan_view(&plan));
    assert_eq!(change(&plan, "dave-litware").action, Action::Refused, "litware.com is on the block list (R5)");
    assert_eq!(change(&plan, "dave-litware").refusal.as_ref().unwrap().reason, RefusalReason::DomainBlocked);
    assert_eq!(change(&plan, "alice-fabrikam").action, Action::Update, "adopted, and added to her group");
    assert_eq!(change(&plan, "bob-fabrikam").action, Action::Create);
    let report = h.apply(&plan).await;
    no_failures(&report);
    seen.push(("first plan".into(), plan_view(&plan)));
    seen.push(("first apply".into(), report_view(&report)));

    let contoso = h.snapshot(CONTOSO).await;
    let alice = guest(&contoso, "alice@fabrikam.com").unwrap();
    assert_eq!(alice.id, alice_id, "adopted, not invited again");
    assert_eq!(
        record(&contoso, Kind::GuestInvitation, "alice@fabrikam.com").unwrap().external_id.as_deref(),
        Some(alice_id.as_str())
    );
    assert_eq!(alice.display_name.as_deref(), Some("Alice (Fabrikam)"));
    for (mail, group) in [
        ("alice@fabrikam.com", "Fabrikam partners"),
        ("bob@fabrikam.com", "Fabrikam partners"),
        ("carol@adatum.com", "Contractors"),
    ] {
        let g = guest(&contoso, mail).unwrap_or_else(|| panic!("{mail} invited"));
        let gid = &contoso.groups.iter().find(|x| x.display_name == group).unwrap().id;
        assert!(g.group_ids.contains(gid), "{mail} in {group}");
        assert_eq!(
            record(&contoso, Kind::GuestInvitation, mail).unwrap().external_id.as_deref(),
            Some(g.id.as_str()),
            "the id is recorded"
        );
    }
    assert!(guest(&contoso, "dave@litware.com").is_none());
    let fabrikam = h.snapshot(FABRIKAM).await;
    let erin = guest(&fabrikam, "erin@contoso.com").expect("erin invited into fabrikam");
    assert_eq!(erin.user_type, UserType::Member, "Member-type invited users are read back");
    // Partner inherit semantics (R2): only what the manifest sets is set; the rest is null and inherits.
    let to_contoso = fabrikam.partners.iter().find(|p| p.tenant_id == CONTOSO).unwrap();
    assert_eq!(to_contoso.settings.automatic_user_consent_settings.as_ref().unwrap().outbound_allowed, Some(true));
    assert!(to_contoso.settings.b2b_collaboration_inbound.is_none() && to_contoso.settings.inbound_trust.is_none());
    assert_eq!(
        fabrikam.default_access.overlay(&to_contoso.settings).b2b_collaboration_inbound,
        fabrikam.default_access.b2b_collaboration_inbound
    );
    let to_fabrikam = contoso.partners.iter().find(|p| p.tenant_id == FABRIKAM).unwrap();
    assert!(to_fabrikam.identity_synchronization.as_ref().unwrap().user_sync_inbound.is_sync_allowed);
    assert_eq!(to_fabrikam.settings.inbound_trust.as_ref().unwrap().is_mfa_accepted, Some(true));
    assert!(
        to_fabrikam.settings.b2b_collaboration_inbound.as_ref().unwrap().users_and_groups.is_none(),
        "half a block inherits the other half"
    );
    seen.push(("after first apply".into(), state(h).await));

    // 2. A second apply makes zero writes; a redemption changes nothing entente manages.
    h.world.redeem(CONTOSO, "bob@fabrikam.com").unwrap();
    let plan = h.plan(&desired, Prune::Off).await;
    assert!(!plan.has_writes(), "{:#}", plan_view(&plan));
    let report = h.apply(&plan).await;
    assert_eq!(report.writes, 0);
    seen.push(("second plan".into(), plan_view(&plan)));

    // 3. Drift: an admin turns off MFA trust for Fabrikam and deletes Carol. Detected, then corrected.
    h.world.set_setting(CONTOSO, &format!("partner.{FABRIKAM}.inboundTrust.isMfaAccepted"), json!(false)).unwrap();
    let carol = guest(&h.snapshot(CONTOSO).await, "carol@adatum.com").unwrap().id.clone();
    h.world.delete_user(CONTOSO, &carol).unwrap();
    let plan = h.plan(&desired, Prune::Off).await;
    let partner = change(&plan, "contoso-trusts-fabrikam");
    assert_eq!((partner.action, partner.drift), (Action::Update, true), "{:#}", plan_view(&plan));
    let carol_change = change(&plan, "carol-adatum");
    // Carol is still in the recycle bin: restored as the same user, not invited again.
    assert_eq!((carol_change.action, carol_change.drift), (Action::Restore, true));
    assert!(carol_change.ops.contains(&Operation::RestoreGuest { user_id: carol.clone() }), "{:#}", plan_view(&plan));
    let report = h.apply(&plan).await;
    no_failures(&report);
    seen.push(("drift plan".into(), plan_view(&plan)));
    seen.push(("drift apply".into(), report_view(&report)));
    let plan = h.plan(&desired, Prune::Off).await;
    assert!(!plan.has_writes(), "drift corrected: {:#}", plan_view(&plan));
    let contoso = h.snapshot(CONTOSO).await;
    assert_eq!(guest(&contoso, "carol@adatum.com").unwrap().id, carol, "carol restored as the same user");

    // 4. Refused by the directory at apply time: the domain list changed after the plan (R3, R5).
    let grace = DesiredInvitation {
        object: ObjectRef::new(Kind::GuestInvitation, "default", "grace-adatum"),
        email: "grace@adatum.com".into(),
        display_name: None,
        redirect_url: "https://myapps.microsoft.com".into(),
        user_type: UserType::Guest,
        send_invitation_message: false,
        message_info: None,
        groups: Default::default(),
        deletion_policy: Default::default(),
    };
    desired.tenants.iter_mut().find(|t| t.identity.tenant_id == CONTOSO).unwrap().invitations.push(grace);
    let plan = h.plan(&desired, Prune::Off).await;
    assert_eq!(change(&plan, "grace-adatum").action, Action::Create);
    h.world
        .set_setting(
            CONTOSO,
            "externalCollaboration.domainList",
            json!({"mode": "blockList", "domains": ["litware.com", "adatum.com"]}),
        )
        .unwrap();
    let report = h.apply(&plan).await;
    let i = plan.changes.iter().position(|c| c.object.name == "grace-adatum").unwrap();
    match &report.results[i] {
        ChangeResult::Refused { refusal } => assert_eq!(refusal.reason, RefusalReason::DomainBlocked),
        other => panic!("expected a refusal, got {other:?}"),
    }
    seen.push(("refused apply".into(), report_view(&report)));
    // The next round corrects the domain list (drift) and invites Grace.
    let rounds = h.converge(&desired, Prune::Off, 3).await;
    assert_eq!(rounds.len(), 2, "one round corrects, the next has nothing to do");
    no_failures(&rounds[0].1);
    assert!(guest(&h.snapshot(CONTOSO).await, "grace@adatum.com").is_some());
    seen.push(("after refusal".into(), state(h).await));

    // 5. Prune: Alice (Delete) and Bob (Retain) and the Contoso→Fabrikam partner (Delete) leave the manifests.
    let contoso_desired = desired.tenants.iter_mut().find(|t| t.identity.tenant_id == CONTOSO).unwrap();
    contoso_desired.invitations.retain(|i| i.object.name != "alice-fabrikam" && i.object.name != "bob-fabrikam");
    contoso_desired.partners.clear();
    let plan = h.plan(&desired, Prune::All).await;
    assert_eq!(change(&plan, "alice-fabrikam").action, Action::Delete);
    assert_eq!(change(&plan, "bob-fabrikam").action, Action::Retain);
    assert_eq!(change(&plan, "contoso-trusts-fabrikam").action, Action::Delete);
    let report = h.apply(&plan).await;
    no_failures(&report);
    seen.push(("prune plan".into(), plan_view(&plan)));
    let contoso = h.snapshot(CONTOSO).await;
    assert!(guest(&contoso, "alice@fabrikam.com").is_none(), "deleted");
    assert!(guest(&contoso, "bob@fabrikam.com").is_some(), "retained");
    assert!(record(&contoso, Kind::GuestInvitation, "bob@fabrikam.com").is_none(), "no longer managed");
    assert!(contoso.partners.iter().all(|p| p.tenant_id != FABRIKAM), "partner deleted: Fabrikam is back on the defaults");
    let plan = h.plan(&desired, Prune::All).await;
    assert!(!plan.has_writes(), "{:#}", plan_view(&plan));
    seen.push(("final".into(), state(h).await));
    seen
}

fn assert_same(local: &[(String, Value)], graph: &[(String, Value)]) {
    assert_eq!(local.len(), graph.len());
    for ((step, l), (_, g)) in local.iter().zip(graph) {
        assert_eq!(l, g, "the backends disagree at step {step:?}:\nlocal: {l:#}\ngraph: {g:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local() {
    let seen = scenario(&Harness::local().await).await;
    assert!(!seen.is_empty());
}

/// The same scenario through the Graph backend and the emulator, with the emulator's strict contract
/// validation on: the same results step by step, and not one contract violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_graph_over_emulator_with_strict_contract() {
    let local = scenario(&Harness::local().await).await;
    let mut config = EmulatorConfig::default();
    config.contract.strict = true;
    config.contract.allow_unknown_properties = false;
    let h = Harness::graph(config).await;
    let graph = scenario(&h).await;
    assert_same(&local, &graph);
    let report = h.emulator.as_ref().unwrap().contract_report();
    assert!(report.enabled);
    assert!(report.checked_requests > 0 && report.checked_responses > 0);
    assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
    // Paths entente uses that the OpenAPI subset does not describe (groups, organization, the beta
    // domain-list policy):
    // listed, not violations.
    for o in &report.outside_subset {
        assert!(
            o.path.contains("/groups") || o.path.starts_with("/beta/") || o.path.starts_with("/v1.0/organization"),
            "unexpected path outside the subset: {o:?}"
        );
    }
}

/// Invitations the directory sent, per (tenant, user): the change feed logs one `invitation issued`
/// per redeem URL handed out.
fn invitations_sent(world: &LocalDirectory) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in world.changes_since(0).unwrap() {
        if c.entity == "invitation" && c.change == "issued" {
            *out.entry(format!("{}/{}", c.tenant_id, c.entity_id)).or_default() += 1;
        }
    }
    out
}

/// With about 30 % of requests failing (429 from tight limits, injected 5xx, dropped connections and
/// lost answers to writes), applying examples/ converges to the same state as without faults: no
/// duplicate guest, no invitation sent twice. Three seeded fault sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_the_outcome() {
    let desired = desired();
    let clean = Harness::graph(EmulatorConfig::default()).await;
    let rounds = clean.converge(&desired, Prune::Off, 3).await;
    no_failures(&rounds[0].1);
    let expected = state(&clean).await;

    let started = std::time::Instant::now();
    let mut ambiguous = 0;
    for seed in [1, 2, 4] {
        let tight = Rate::new(4.0, Duration::from_millis(400));
        let config = EmulatorConfig {
            faults: FaultConfig {
                fault_rate: 0.12,
                drop_rate: 0.08,
                ambiguous_rate: 0.25,
                fault_retry_after: 0.02,
                token_endpoint: true,
                seed: Some(seed),
                ..FaultConfig::default()
            },
            limits: Limits {
                writes_app_tenant: tight,
                invitations_tenant: tight,
                ru_small: Rate::new(12.0, Duration::from_millis(400)),
                ..Limits::default()
            },
            ..EmulatorConfig::default()
        };
        let h = Harness::graph(config).await;
        let rounds = h.converge(&desired, Prune::Off, 8).await;
        let (last_plan, _) = rounds.last().unwrap();
        assert!(
            !last_plan.has_writes() && last_plan.errors.is_empty(),
            "seed {seed}: did not converge in {} rounds: {:#}",
            rounds.len(),
            plan_view(last_plan)
        );
        assert_eq!(state(&h).await, expected, "seed {seed}: same state as without faults");
        let stats = h.emulator.as_ref().unwrap().stats();
        let failed = stats.injected_faults + stats.dropped_connections + stats.ambiguous_writes + stats.throttled;
        assert!(failed * 100 >= stats.requests * 20, "seed {seed}: too few faults injected: {stats:?}");
        ambiguous += stats.ambiguous_writes;

        for tenant in [CONTOSO, FABRIKAM] {
            let mut mails: Vec<String> = h.world.users(tenant).unwrap().iter().map(|u| u.mail.to_ascii_lowercase()).collect();
            let all = mails.len();
            mails.sort();
            mails.dedup();
            assert_eq!(all, mails.len(), "seed {seed}: a duplicate guest in {tenant}");
        }
        let sent = invitations_sent(&h.world);
        assert_eq!(sent.len(), 4, "seed {seed}: alice, bob, carol, erin: {sent:?}");
        assert!(sent.values().all(|n| *n == 1), "seed {seed}: an invitation was sent twice: {sent:?}");
    }
    assert!(ambiguous > 0, "some writes were carried out with their answer lost");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// The client-side rate limiter keeps entente under the server's limits instead of bouncing off them:
/// with the emulator enforcing tight limits (and the client told the same numbers), applying examples/
/// gets no 429 at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiter_stays_under_the_limits() {
    let second = Duration::from_secs(1);
    let server = Limits {
        invitations_tenant: Rate::new(4.0, second),
        writes_app_tenant: Rate::new(10.0, second),
        ru_small: Rate::new(40.0, second),
        ru_medium: Rate::new(40.0, second),
        ru_large: Rate::new(40.0, second),
        ..Limits::default()
    };
    let h = Harness::graph_with(EmulatorConfig { limits: server, ..EmulatorConfig::default() }, |c| {
        c.limits = graph::Limits {
            invitations: (4.0, second),
            writes: (10.0, second),
            resource_units: ([40.0; 3], second),
            ..graph::Limits::default()
        };
    })
    .await;
    let rounds = h.converge(&desired(), Prune::Off, 3).await;
    no_failures(&rounds[0].1);
    assert_eq!(rounds.len(), 2, "converged");
    let stats = h.emulator.as_ref().unwrap().stats();
    assert_eq!(stats.throttled, 0, "bounced off the limits: {stats:?}");
    assert!(stats.graph_requests > 50);
}

/// Delta: after the first snapshot the Graph backend follows `/users/delta`; a forced resync (410 Gone)
/// falls back to a full read and still sees the same guests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_rounds_and_resync_see_the_same_guests() {
    let h = Harness::graph(EmulatorConfig::default()).await;
    let desired = desired();
    h.converge(&desired, Prune::Off, 3).await;
    let before = state(&h).await;
    let requests = h.emulator.as_ref().unwrap().stats().requests;
    assert_eq!(state(&h).await, before, "a delta round with no change");
    h.emulator.as_ref().unwrap().invalidate_delta_tokens();
    assert_eq!(state(&h).await, before, "after 410 Gone, a full read");
    let carol = guest(&h.snapshot(CONTOSO).await, "carol@adatum.com").unwrap().id.clone();
    h.world.delete_user(CONTOSO, &carol).unwrap();
    assert!(guest(&h.snapshot(CONTOSO).await, "carol@adatum.com").is_none(), "a deletion arrives by delta");
    assert!(h.emulator.as_ref().unwrap().stats().requests > requests);
}
