//! Cross-tenant synchronization jobs (R13) end to end, on both backends: the local directory used
//! directly as source and target, and the same local directory served by the emulator (strict
//! contract checking) with a `GraphDirectory` per tenant. Every scenario runs `entente::sync::run_job`
//! with a fresh `SyncStore` and the prerequisites `missing_in_directory` finds in the two tenants, and
//! asserts exact report counts and what the target tenant holds afterwards. One CLI test at the end.

mod common;
mod emulator_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use emulator_support::{CONTOSO, FABRIKAM, config, directory, signing_key};
use entente::core::model::{GuestUser, Kind, ObjectRef, PartnerConfiguration, TenantSnapshot, UserType};
use entente::core::operation::{InvitationRequest, Operation, Outcome};
use entente::core::settings::{
    AutomaticUserConsentSettings, CrossTenantAccessSettings, IdentitySynchronization, UserSyncInbound,
};
use entente::core::sync::{
    AttributeFilter, AttributeMapping, DesiredSyncJob, DirectoryUser, FilterOperator, LeavingScope, SyncCounts, SyncJobState,
    UserChanges,
};
use entente::directory::graph::{APPLY_PERMISSIONS, Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use entente::emulator::{self, EmulatorConfig, EmulatorHandle, FaultConfig, apps};
use entente::sync::{RunOptions, SyncRunReport, SyncStore, job_key, missing_in_directory, run_job};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// `LocalDirectory` used directly.
    Local,
    /// The same directory behind the emulator, through `GraphDirectory`.
    Graph,
}

/// Which of the three prerequisites (R12, R13) the tenants' partner configurations grant.
#[derive(Clone, Copy, Debug)]
struct Grants {
    /// fabrikam: identitySynchronization.userSyncInbound.isSyncAllowed for contoso.
    sync: bool,
    /// fabrikam: automaticUserConsentSettings.inboundAllowed for contoso.
    inbound: bool,
    /// contoso: automaticUserConsentSettings.outboundAllowed for fabrikam.
    outbound: bool,
}

const ALL_GRANTED: Grants = Grants { sync: true, inbound: true, outbound: true };

/// Contoso (source) and fabrikam (target) in one directory, seen through one backend.
struct World {
    backend: Backend,
    /// The outside world: members are added and edited here, and the target is inspected here.
    dir: Arc<LocalDirectory>,
    emu: Option<EmulatorHandle>,
    source: Arc<dyn Directory>,
    target: Arc<dyn Directory>,
    store: SyncStore,
}

fn graph_directory(dir: &LocalDirectory, emu: &EmulatorHandle, tenant: &str, app: &str, give_up_fast: bool) -> GraphDirectory {
    let perms: Vec<String> = APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = apps::create_app(dir, tenant, app, &perms).unwrap();
    let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    config.authority_host = emu.url();
    config.graph_endpoint = emu.url();
    config.page_size = 999;
    if give_up_fast {
        config.retry.max_attempts = 2;
        config.retry.max_total = Duration::from_secs(2);
    }
    GraphDirectory::new(config, Arc::new(SqliteInventory::open_in_memory().unwrap())).unwrap()
}

fn consent(inbound: bool, outbound: bool) -> CrossTenantAccessSettings {
    CrossTenantAccessSettings {
        automatic_user_consent_settings: (inbound || outbound).then(|| AutomaticUserConsentSettings {
            inbound_allowed: inbound.then_some(true),
            outbound_allowed: outbound.then_some(true),
        }),
        ..CrossTenantAccessSettings::default()
    }
}

impl World {
    async fn new(backend: Backend) -> World {
        Self::granting(backend, ALL_GRANTED).await
    }

    async fn granting(backend: Backend, grants: Grants) -> World {
        let dir = directory().await;
        let (source, target, emu): (Arc<dyn Directory>, Arc<dyn Directory>, _) = match backend {
            Backend::Local => (dir.clone(), dir.clone(), None),
            Backend::Graph => {
                let emu = emulator::start(dir.clone(), config()).await.unwrap();
                let s = graph_directory(&dir, &emu, CONTOSO, "entente-sync", false);
                let t = graph_directory(&dir, &emu, FABRIKAM, "entente-sync", false);
                (Arc::new(s), Arc::new(t), Some(emu))
            }
        };
        let w = World { backend, dir, emu, source, target, store: SyncStore::open_in_memory().unwrap() };
        w.grant(grants).await;
        w
    }

    /// Writes the partner configurations through the backend (what `apply` of the manifests does).
    async fn grant(&self, g: Grants) {
        if g.sync || g.inbound {
            let partner = PartnerConfiguration {
                tenant_id: CONTOSO.into(),
                settings: consent(g.inbound, false),
                identity_synchronization: g
                    .sync
                    .then_some(IdentitySynchronization { user_sync_inbound: UserSyncInbound { is_sync_allowed: true } }),
                ..PartnerConfiguration::default()
            };
            self.target.apply(FABRIKAM, &[Operation::PutPartner { partner }]).await.unwrap();
        }
        if g.outbound {
            let partner = PartnerConfiguration {
                tenant_id: FABRIKAM.into(),
                settings: consent(false, true),
                ..PartnerConfiguration::default()
            };
            self.source.apply(CONTOSO, &[Operation::PutPartner { partner }]).await.unwrap();
        }
    }

    /// Members of contoso (`name@contoso.com`) with profile attributes, one of them not mapped by the
    /// job (officeLocation). Their ids, in order.
    fn members(&self, people: &[(&str, &str)]) -> Vec<String> {
        let members: Vec<_> = people
            .iter()
            .map(|(name, department)| {
                let attrs = attributes(&[
                    ("givenName", &capitalized(name)),
                    ("surname", "Example"),
                    ("jobTitle", "Engineer"),
                    ("department", department),
                    ("officeLocation", "Building 7"),
                ]);
                (format!("{name}@contoso.com"), Some(format!("{} Example", capitalized(name))), attrs)
            })
            .collect();
        self.dir.add_members(CONTOSO, &members).unwrap()
    }

    /// Users of contoso that are not its own: a guest, and a Member-type invited user.
    async fn invited_users(&self) {
        for (mail, user_type) in [("zoe@adatum.com", UserType::Guest), ("yann@adatum.com", UserType::Member)] {
            let invitation = InvitationRequest {
                re_invite: false,
                invited_user_email_address: mail.into(),
                invited_user_display_name: None,
                invite_redirect_url: "https://myapps.microsoft.com".into(),
                invited_user_type: user_type,
                send_invitation_message: false,
                invited_user_message_info: None,
                groups: vec![],
            };
            self.dir.apply(CONTOSO, &[Operation::Invite { invitation }]).await.unwrap();
        }
    }

    fn set(&self, user_id: &str, name: &str, value: Option<&str>) {
        let change = BTreeMap::from([(name.to_string(), value.map(str::to_string))]);
        self.dir.set_user_attributes(CONTOSO, user_id, &change).unwrap();
    }

    async fn snapshots(&self) -> (TenantSnapshot, TenantSnapshot) {
        let s = self.source.snapshot(CONTOSO).await.unwrap().expect("contoso exists");
        let t = self.target.snapshot(FABRIKAM).await.unwrap().expect("fabrikam exists");
        (s, t)
    }

    async fn run(&self, job: &DesiredSyncJob) -> SyncRunReport {
        self.run_with(job, self.target.as_ref(), RunOptions::default()).await
    }

    /// One run against `target`; prerequisites from what the (healthy) backends read now.
    async fn run_with(&self, job: &DesiredSyncJob, target: &dyn Directory, options: RunOptions) -> SyncRunReport {
        let (s, t) = self.snapshots().await;
        let missing = missing_in_directory(job, &s, &t);
        run_job(job, self.source.as_ref(), target, &self.store, missing, &options).await.unwrap()
    }

    /// The target's users, by mail (lowercase, sorted, duplicates kept).
    fn target_mails(&self) -> Vec<String> {
        let mut mails: Vec<String> = self.dir.users(FABRIKAM).unwrap().iter().map(|u| u.mail.to_ascii_lowercase()).collect();
        mails.sort();
        mails
    }

    /// The target holds exactly one user for each of these source users, and no other.
    fn assert_target(&self, names: &[&str]) {
        let mut expected: Vec<String> = names.iter().map(|n| format!("{n}@contoso.com")).collect();
        expected.sort();
        assert_eq!(self.target_mails(), expected, "{:?}: the target's users", self.backend);
    }

    /// A target user: as the directory stores it, and as the backend reads it by id.
    async fn target_user(&self, name: &str) -> Option<(GuestUser, DirectoryUser)> {
        let stored = self.dir.user_by_mail(FABRIKAM, &format!("{name}@contoso.com")).unwrap()?;
        let mut read = self.target.users_by_id(FABRIKAM, std::slice::from_ref(&stored.id)).await.unwrap();
        assert_eq!(read.len(), 1, "{name}: read back by id");
        Some((stored, read.remove(0)))
    }

    async fn read(&self, name: &str) -> DirectoryUser {
        self.target_user(name).await.unwrap_or_else(|| panic!("{:?}: no target user for {name}", self.backend)).1
    }

    /// Change-feed entries of the target tenant after `seq` (each write of the target is one).
    fn target_writes_since(&self, seq: i64) -> usize {
        self.dir.changes_since(seq).unwrap().iter().filter(|c| c.tenant_id == FABRIKAM).count()
    }

    fn seq(&self) -> i64 {
        self.dir.change_seq().unwrap()
    }

    fn no_violations(&self) {
        if let Some(emu) = &self.emu {
            let report = emu.contract_report();
            assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
        }
    }
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// contoso → fabrikam with the default mappings and a constant company name.
fn job(name: &str) -> DesiredSyncJob {
    let mut job = DesiredSyncJob::new(ObjectRef::new(Kind::SyncJob, "default", name), CONTOSO, FABRIKAM);
    job.mappings.push(AttributeMapping { target: "companyName".into(), source: None, constant: Some("Contoso".into()) });
    job
}

fn sales_only(leaving: LeavingScope) -> DesiredSyncJob {
    let mut j = job("sales");
    j.scope.filter.push(AttributeFilter {
        attribute: "department".into(),
        operator: FilterOperator::In,
        values: vec!["Sales".into()],
    });
    j.on_leaving_scope = leaving;
    j
}

fn counts(f: impl FnOnce(&mut SyncCounts)) -> SyncCounts {
    let mut c = SyncCounts::default();
    f(&mut c);
    c
}

/// The run succeeded with exactly these counts.
fn ok(r: &SyncRunReport, expected: SyncCounts) {
    assert!(!r.failed(), "the run failed: {r:#?}");
    assert_eq!(r.counts, expected, "{r:#?}");
    assert_eq!(r.state, SyncJobState::Active);
    assert!(r.missing_prerequisites.is_empty());
}

/// Each scenario, once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$scenario(super::Backend::Local).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn graph() {
                super::$scenario(super::Backend::Graph).await;
            }
        }
    )*};
}

on_both_backends!(
    initial_then_incremental_then_quiet,
    leaving_scope_by_filter_and_deletion,
    leaving_scope_by_group,
    missing_prerequisites_write_nothing,
    a_failing_target_is_quarantined_then_recovers,
    provision_on_demand_does_not_move_the_cursor,
    a_crash_like_partial_run_creates_no_duplicate,
);

/// 1–3: the first run creates every member (and no invited user), one attribute change is one
/// update, and a run with nothing changed writes nothing.
async fn initial_then_incremental_then_quiet(backend: Backend) {
    let w = World::new(backend).await;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let ids = w.members(&names.map(|n| (n, "Sales")));
    w.invited_users().await;
    let j = job("contoso-to-fabrikam");

    // 1. Initial sync: everything is read, five users are created, the two invited users are skipped.
    let r = w.run(&j).await;
    ok(&r, counts(|c| (c.created, c.skipped) = (5, 2)));
    assert!(r.full);
    assert_eq!(r.users_in_scope, 5);
    assert_eq!(r.directory_calls, 2, "one read of the source, one apply of the target");
    w.assert_target(&names);
    for name in names {
        let (stored, read) = w.target_user(name).await.unwrap();
        assert_eq!(stored.user_type, UserType::Member, "{name}: userType Member by default");
        assert_eq!(stored.creation_type.as_deref(), Some("Invitation"), "{name}: a B2B collaboration user");
        assert!(stored.user_principal_name.contains("#EXT#"), "{}", stored.user_principal_name);
        assert!(stored.account_enabled && read.account_enabled);
        assert_eq!(read.user_type, UserType::Member);
        assert_eq!(read.display_name, Some(format!("{} Example", capitalized(name))));
        assert_eq!(read.mail, Some(format!("{name}@contoso.com")));
        assert_eq!(
            read.attributes,
            attributes(&[
                ("companyName", "Contoso"),
                ("department", "Sales"),
                ("givenName", &capitalized(name)),
                ("jobTitle", "Engineer"),
                ("surname", "Example"),
            ]),
            "{name}: the mapped attributes, not officeLocation"
        );
        assert!(!read.is_internal_member());
    }

    // 2. One attribute of one user: one update, nothing created; the target shows the new value.
    w.set(&ids[1], "jobTitle", Some("Lead engineer"));
    let before = w.seq();
    let r = w.run(&j).await;
    ok(&r, counts(|c| c.updated = 1));
    assert!(!r.full);
    assert_eq!(r.counts.writes(), 1);
    assert_eq!(r.directory_calls, 2);
    assert_eq!(w.target_writes_since(before), 1, "one write in the target");
    assert_eq!(w.read("bob").await.get("jobTitle"), Some("Lead engineer"));
    assert_eq!(w.read("alice").await.get("jobTitle"), Some("Engineer"));
    // A value that disappears is cleared in the target.
    w.set(&ids[2], "surname", None);
    let r = w.run(&j).await;
    ok(&r, counts(|c| c.updated = 1));
    assert_eq!(w.read("carol").await.get("surname"), None);
    assert_eq!(r.users_in_scope, 5);

    // 3. Nothing changed: no write, the target's change feed does not move, one read.
    let before = w.seq();
    let r = w.run(&j).await;
    ok(&r, SyncCounts::default());
    assert_eq!(r.directory_calls, 1, "one read of the source, no apply");
    assert_eq!(w.seq(), before, "the directory's change feed did not move");

    // A full resync of the unchanged tenant: everything compared, nothing written.
    let r = w.run_with(&j, w.target.as_ref(), RunOptions { full: true, ..RunOptions::default() }).await;
    ok(&r, counts(|c| (c.unchanged, c.skipped) = (5, 2)));
    assert!(r.full);
    assert_eq!(w.seq(), before);
    w.assert_target(&names);
    w.no_violations();
}

/// 4: users leave scope (a filter stops matching, or they are deleted at the source) under each
/// `onLeavingScope`, and come back.
async fn leaving_scope_by_filter_and_deletion(backend: Backend) {
    for leaving in [LeavingScope::Delete, LeavingScope::Disable, LeavingScope::Ignore] {
        let w = World::new(backend).await;
        let ids = w.members(&[("alice", "Sales"), ("bob", "Sales"), ("carol", "Marketing")]);
        let j = sales_only(leaving);
        let r = w.run(&j).await;
        ok(&r, counts(|c| (c.created, c.skipped) = (2, 1)));
        w.assert_target(&["alice", "bob"]);

        // Bob moves to Marketing: he leaves scope.
        w.set(&ids[1], "department", Some("Marketing"));
        let before = w.seq();
        let r = w.run(&j).await;
        match leaving {
            LeavingScope::Delete => {
                ok(&r, counts(|c| c.deleted = 1));
                w.assert_target(&["alice"]);
            }
            LeavingScope::Disable => {
                ok(&r, counts(|c| c.disabled = 1));
                w.assert_target(&["alice", "bob"]);
                assert!(!w.read("bob").await.account_enabled, "sign-in blocked");
            }
            LeavingScope::Ignore => {
                ok(&r, counts(|c| c.skipped = 1));
                assert_eq!(w.seq(), before, "{leaving:?}: the target is untouched");
                let bob = w.read("bob").await;
                assert!(bob.account_enabled);
                assert_eq!(bob.get("department"), Some("Sales"), "no longer updated");
            }
        }
        assert_eq!(r.users_in_scope, 1, "{leaving:?}");

        // Bob comes back to Sales.
        w.set(&ids[1], "department", Some("Sales"));
        let r = w.run(&j).await;
        match leaving {
            LeavingScope::Delete | LeavingScope::Ignore => ok(&r, counts(|c| c.created = 1)),
            LeavingScope::Disable => ok(&r, counts(|c| c.updated = 1)),
        }
        let bob = w.read("bob").await;
        assert!(bob.account_enabled, "{leaving:?}: enabled again");
        assert_eq!(bob.get("department"), Some("Sales"));
        w.assert_target(&["alice", "bob"]);
        assert_eq!(r.users_in_scope, 2);

        // Alice is deleted at the source.
        w.dir.delete_user(CONTOSO, &ids[0]).unwrap();
        let before = w.seq();
        let r = w.run(&j).await;
        match leaving {
            LeavingScope::Delete => {
                ok(&r, counts(|c| c.deleted = 1));
                w.assert_target(&["bob"]);
            }
            LeavingScope::Disable => {
                ok(&r, counts(|c| c.disabled = 1));
                w.assert_target(&["alice", "bob"]);
                assert!(!w.read("alice").await.account_enabled);
            }
            LeavingScope::Ignore => {
                ok(&r, counts(|c| c.skipped = 1));
                assert_eq!(w.target_writes_since(before), 0);
                w.assert_target(&["alice", "bob"]);
                assert!(w.read("alice").await.account_enabled);
            }
        }
        assert_eq!(r.users_in_scope, 1, "{leaving:?}");
        // Carol joins Sales: she enters scope.
        w.set(&ids[2], "department", Some("Sales"));
        ok(&w.run(&j).await, counts(|c| c.created = 1));
        // Quiet again.
        ok(&w.run(&j).await, SyncCounts::default());
        w.no_violations();
    }
}

/// 4: a group-scoped job follows the group's membership.
async fn leaving_scope_by_group(backend: Backend) {
    let w = World::new(backend).await;
    let ids = w.members(&[("alice", "Sales"), ("bob", "Sales"), ("carol", "Sales")]);
    w.dir.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec!["Sync Scope".into()] }]).await.unwrap();
    w.dir.add_group_member(CONTOSO, "Sync Scope", &ids[0]).unwrap();
    let mut j = job("group");
    j.scope.groups = vec!["Sync Scope".into()];

    let r = w.run(&j).await;
    ok(&r, counts(|c| (c.created, c.skipped) = (1, 2)));
    assert_eq!(r.directory_calls, 3, "the source's users, the group's members, one apply");
    w.assert_target(&["alice"]);

    w.dir.add_group_member(CONTOSO, "Sync Scope", &ids[1]).unwrap();
    ok(&w.run(&j).await, counts(|c| c.created = 1));
    w.assert_target(&["alice", "bob"]);

    w.dir.remove_group_member(CONTOSO, "Sync Scope", &ids[0]).unwrap();
    let r = w.run(&j).await;
    ok(&r, counts(|c| c.deleted = 1));
    assert_eq!(r.users_in_scope, 1);
    w.assert_target(&["bob"]);

    // A change of a user outside the group writes nothing.
    w.set(&ids[2], "jobTitle", Some("Manager"));
    ok(&w.run(&j).await, counts(|c| c.skipped = 1));
    w.assert_target(&["bob"]);
    w.no_violations();
}

/// 5: a missing prerequisite is named (which setting of which tenant), the run fails, and nothing is
/// read or written; once granted, the next run syncs.
async fn missing_prerequisites_write_nothing(backend: Backend) {
    let sync_setting = "identitySynchronization.userSyncInbound.isSyncAllowed";
    let inbound_setting = "automaticUserConsentSettings.inboundAllowed";
    let outbound_setting = "automaticUserConsentSettings.outboundAllowed";
    let (fabrikam, contoso) = ("fabrikam.onmicrosoft.com", "contoso.onmicrosoft.com");
    let cases: [(Grants, Vec<(&str, &str)>); 4] = [
        (Grants { sync: false, ..ALL_GRANTED }, vec![(fabrikam, sync_setting)]),
        (Grants { inbound: false, ..ALL_GRANTED }, vec![(fabrikam, inbound_setting)]),
        (Grants { outbound: false, ..ALL_GRANTED }, vec![(contoso, outbound_setting)]),
        (
            Grants { sync: false, inbound: false, outbound: false },
            vec![(fabrikam, sync_setting), (fabrikam, inbound_setting), (contoso, outbound_setting)],
        ),
    ];
    for (grants, expected) in cases {
        let w = World::granting(backend, grants).await;
        w.members(&[("alice", "Sales"), ("bob", "Sales")]);
        let j = job("gated");
        let before = w.seq();
        let r = w.run(&j).await;
        assert!(r.failed(), "{grants:?}: the run counts as failed");
        let missing: Vec<(&str, &str)> =
            r.missing_prerequisites.iter().map(|m| (m.tenant.as_str(), m.setting.as_str())).collect();
        assert_eq!(missing.len(), expected.len(), "{grants:?}: {missing:?}");
        for ((tenant, setting), (want_tenant, want_setting)) in missing.iter().zip(&expected) {
            assert_eq!(tenant, want_tenant, "{grants:?}");
            assert!(setting.ends_with(want_setting), "{grants:?}: {setting}");
            let partner = if *want_tenant == fabrikam { CONTOSO } else { FABRIKAM };
            assert!(setting.contains(partner), "{grants:?}: names the partner: {setting}");
        }
        let failure = r.failure.as_deref().unwrap();
        assert!(expected.iter().all(|(_, s)| failure.contains(s)), "{failure}");
        assert_eq!(r.counts, SyncCounts::default());
        assert_eq!(r.directory_calls, 0, "nothing read or written");
        assert_eq!(r.users_in_scope, 0);
        assert_eq!(w.seq(), before, "{grants:?}: nothing written anywhere");
        w.assert_target(&[]);
        let state = w.store.job(&job_key(&j)).unwrap().unwrap();
        assert_eq!((state.health.consecutive_failures, state.cursor), (1, None));

        // Granted: the next run syncs.
        w.grant(ALL_GRANTED).await;
        let r = w.run(&j).await;
        ok(&r, counts(|c| c.created = 2));
        w.assert_target(&["alice", "bob"]);
        w.no_violations();
    }
}

/// A target wrapper: lets `budget` operations through, then fails like a dropped connection. The
/// operations of the failing call before the budget ran out were carried out (their answer is lost).
struct Flaky {
    inner: Arc<dyn Directory>,
    budget: AtomicUsize,
}

impl Flaky {
    fn new(inner: Arc<dyn Directory>, budget: usize) -> Self {
        Self { inner, budget: AtomicUsize::new(budget) }
    }
}

#[async_trait]
impl Directory for Flaky {
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError> {
        self.inner.snapshot(tenant_id).await
    }
    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        let through = self.budget.load(Ordering::SeqCst).min(ops.len());
        self.budget.fetch_sub(through, Ordering::SeqCst);
        if through == ops.len() {
            return self.inner.apply(tenant_id, ops).await;
        }
        if through > 0 {
            self.inner.apply(tenant_id, &ops[..through]).await?;
        }
        Err(DirectoryError::Transport("connection reset by peer (injected)".into()))
    }
    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        self.inner.user_changes(tenant_id, cursor).await
    }
    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.inner.users_by_id(tenant_id, ids).await
    }
    async fn group_member_ids(
        &self,
        tenant_id: &str,
        group: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, DirectoryError> {
        self.inner.group_member_ids(tenant_id, group).await
    }
}

/// 6: a target that keeps failing quarantines the job after three runs, with the reason; once it
/// works again the next run is Active and syncs every user, once.
async fn a_failing_target_is_quarantined_then_recovers(backend: Backend) {
    let w = World::new(backend).await;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    w.members(&names.map(|n| (n, "Sales")));
    let j = job("flaky");

    // Local: every apply fails in transport. Graph: a second emulator over the same directory answers
    // every request with a 5xx or drops the connection.
    let (failing, _faulty_emulator): (Arc<dyn Directory>, Option<EmulatorHandle>) = match backend {
        Backend::Local => (Arc::new(Flaky::new(w.target.clone(), 0)), None),
        Backend::Graph => {
            let faults = FaultConfig { fault_rate: 1.0, drop_rate: 0.5, seed: Some(7), ..FaultConfig::default() };
            let config = EmulatorConfig { faults, signing_key_pem: Some(signing_key()), ..EmulatorConfig::default() };
            let emu = emulator::start(w.dir.clone(), config).await.unwrap();
            let target = graph_directory(&w.dir, &emu, FABRIKAM, "entente-sync-faulty", true);
            (Arc::new(target), Some(emu))
        }
    };
    let expected_states = [SyncJobState::Active, SyncJobState::Active, SyncJobState::Quarantine];
    for (run, expected) in expected_states.into_iter().enumerate() {
        let r = w.run_with(&j, failing.as_ref(), RunOptions::default()).await;
        assert!(r.failed(), "run {run}: {r:#?}");
        let failure = r.failure.as_deref().unwrap();
        assert!(failure.contains(&format!("the target tenant {FABRIKAM} failed")), "{failure}");
        assert_eq!(r.state, expected, "run {run}");
        assert_eq!(r.counts.writes(), 0);
        assert!(r.counts.failed >= 1, "{:?}", r.counts);
        assert!(!r.errors.is_empty());
        w.assert_target(&[]);
        if expected == SyncJobState::Quarantine {
            let reason = r.quarantine_reason.as_deref().expect("a quarantine reason");
            assert!(reason.contains("3 consecutive runs failed") && reason.contains(failure), "{reason}");
        } else {
            assert_eq!(r.quarantine_reason, None);
        }
    }
    let state = w.store.job(&job_key(&j)).unwrap().unwrap();
    assert_eq!(state.health.consecutive_failures, 3);

    // The target works again: the next run leaves quarantine and syncs everyone, once.
    let r = w.run(&j).await;
    ok(&r, counts(|c| c.created = 5));
    assert_eq!(r.quarantine_reason, None);
    assert_eq!(r.users_in_scope, 5);
    w.assert_target(&names);
    ok(&w.run(&j).await, SyncCounts::default());
    w.no_violations();
}

/// 7: provision on demand writes just the named user, now, and leaves the cursor where it was: the
/// next scheduled run still sees every change since the last one.
async fn provision_on_demand_does_not_move_the_cursor(backend: Backend) {
    let w = World::new(backend).await;
    let ids = w.members(&[("alice", "Sales"), ("bob", "Sales")]);
    let j = job("on-demand");
    ok(&w.run(&j).await, counts(|c| c.created = 2));
    let cursor = w.store.job(&job_key(&j)).unwrap().unwrap().cursor;
    assert!(cursor.is_some());

    let dave = w.members(&[("dave", "Sales"), ("erin", "Sales")]);
    w.set(&ids[0], "jobTitle", Some("Manager"));
    for key in [dave[0].clone(), "dave@contoso.com".to_string(), "DAVE@contoso.com".to_string()] {
        let r = w.run_with(&j, w.target.as_ref(), RunOptions { only_users: vec![key.clone()], ..RunOptions::default() }).await;
        assert!(!r.failed(), "{key}: {r:#?}");
        assert_eq!(r.on_demand, vec![key.clone()]);
        // The first request creates Dave; the same request again finds him up to date.
        let expected = if key == dave[0] { counts(|c| c.created = 1) } else { counts(|c| c.unchanged = 1) };
        assert_eq!(r.counts, expected, "{key}: {r:#?}");
        w.assert_target(&["alice", "bob", "dave"]);
        assert_eq!(w.read("alice").await.get("jobTitle"), Some("Engineer"), "only the named user");
        assert_eq!(w.store.job(&job_key(&j)).unwrap().unwrap().cursor, cursor, "{key}: the cursor did not move");
    }
    // An unknown user is reported, not a failure of the run.
    let r = w
        .run_with(&j, w.target.as_ref(), RunOptions { only_users: vec!["nobody@contoso.com".into()], ..RunOptions::default() })
        .await;
    assert_eq!(r.counts, counts(|c| c.failed = 1), "{r:#?}");
    assert_eq!(r.errors[0].reason, "NotFound");

    // The next scheduled run picks up what changed since the last one: Alice's title, Erin; Dave is
    // already there.
    let r = w.run(&j).await;
    ok(&r, counts(|c| (c.created, c.updated, c.unchanged) = (1, 1, 1)));
    assert_eq!(w.read("alice").await.get("jobTitle"), Some("Manager"));
    w.assert_target(&["alice", "bob", "dave", "erin"]);
    assert_eq!(r.users_in_scope, 4);
    w.no_violations();
}

/// 8: a run that stops half-way (writes carried out but not acknowledged), and a run whose state was
/// lost altogether: the next runs adopt the users already written, and never create one twice.
async fn a_crash_like_partial_run_creates_no_duplicate(backend: Backend) {
    let w = World::new(backend).await;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    w.members(&names.map(|n| (n, "Sales")));
    let j = job("crash");

    // Three users are written, then the connection drops.
    let flaky = Flaky::new(w.target.clone(), 3);
    let r = w.run_with(&j, &flaky, RunOptions::default()).await;
    assert!(r.failed(), "{r:#?}");
    assert_eq!(w.target_mails().len(), 3, "three were written before the failure");
    let r = w.run(&j).await;
    ok(&r, counts(|c| c.created = 5));
    assert_eq!(r.users_in_scope, 5);
    w.assert_target(&names);

    // The job's state is lost (a crash before it was saved, a deleted state file): everything is
    // provisioned again and adopted, nothing duplicated.
    let fresh = World { store: SyncStore::open_in_memory().unwrap(), ..w };
    let r = fresh.run(&j).await;
    ok(&r, counts(|c| c.created = 5));
    fresh.assert_target(&names);
    for name in names {
        assert!(fresh.read(name).await.account_enabled);
    }
    ok(&fresh.run(&j).await, SyncCounts::default());
    fresh.no_violations();
}

/// The CLI: apply the examples, add a member to fabrikam, `plan` previews the sync, `apply` runs it,
/// `sync run` then writes nothing and `sync status` shows the job.
#[test]
fn cli_plan_apply_sync_run_and_status() {
    let ws = common::Workspace::new();
    let ex = common::examples().display().to_string();
    let (code, out, err) = ws.run(&["apply", "-f", &ex]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = ws.run(&[
        "directory",
        "add-member",
        "fabrikam.onmicrosoft.com",
        "frank@fabrikam.com",
        "--display-name",
        "Frank",
        "--attr",
        "jobTitle=Buyer",
        "--attr",
        "department=Purchasing",
    ]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = ws.run(&["plan", "-f", &ex]);
    assert_eq!(code, 1, "a sync write is pending: {out}{err}");
    assert!(out.contains("fabrikam-to-contoso"), "{out}");
    assert!(out.contains("1 would be created"), "{out}");
    assert!(out.contains("create frank@fabrikam.com"), "{out}");
    let dir = LocalDirectory::open(&ws.db()).unwrap();
    assert!(dir.user_by_mail(CONTOSO, "frank@fabrikam.com").unwrap().is_none(), "plan writes nothing");
    drop(dir);

    let (code, out, err) = ws.run(&["apply", "-f", &ex]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 created"), "{out}");
    let dir = LocalDirectory::open(&ws.db()).unwrap();
    let frank = dir.user_by_mail(CONTOSO, "frank@fabrikam.com").unwrap().expect("frank synced into contoso");
    assert_eq!(frank.creation_type.as_deref(), Some("Invitation"));
    assert_eq!(frank.user_type, UserType::Member);
    drop(dir);

    let (code, out, err) = ws.run(&["sync", "run", "-f", &ex]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 created, 0 updated, 0 deleted, 0 disabled"), "{out}");
    let (code, out, err) = ws.run(&["sync", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("default/fabrikam-to-contoso: Active"), "{out}");
    assert!(out.contains("1 user(s) in scope"), "{out}");
}
