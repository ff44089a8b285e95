//! Group-scoped sync jobs read membership *changes* (`Directory::group_member_changes`: the local
//! directory's membership log, Graph's `/groups/delta` with `members@delta` served by the emulator
//! under strict contract checking), not every scope group's full membership on every run.
//!
//! The source is wrapped so that its user delta never reports a user whose only change is a
//! membership, as Graph's `/users/delta` does not (the local change feed would): users who enter a
//! scope group must be found through the membership delta, and those who leave it too.

mod emulator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use emulator_support::{CONTOSO, FABRIKAM, config, directory};
use entente::core::model::{Kind, ObjectRef, PartnerConfiguration, TenantSnapshot};
use entente::core::operation::{Operation, Outcome};
use entente::core::settings::{
    AutomaticUserConsentSettings, CrossTenantAccessSettings, IdentitySynchronization, UserSyncInbound,
};
use entente::core::sync::{AttributeMapping, DesiredSyncJob, DirectoryUser, LeavingScope, SyncCounts, UserChanges};
use entente::directory::graph::{APPLY_PERMISSIONS, Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError, MemberChanges};
use entente::emulator::{self, EmulatorHandle, apps};
use entente::sync::{RunOptions, SyncRunReport, SyncStore, missing_in_directory, run_job};

const SCOPE_A: &str = "Sync Scope A";
const SCOPE_B: &str = "Sync Scope B";

/// The source as Graph behaves: an incremental user delta carries attribute changes only, so the
/// users it reports are dropped unless `report_users` is on.
struct GraphLikeSource {
    inner: Arc<dyn Directory>,
    report_users: AtomicBool,
}

#[async_trait]
impl Directory for GraphLikeSource {
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError> {
        self.inner.snapshot(tenant_id).await
    }
    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        self.inner.apply(tenant_id, ops).await
    }
    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        let mut changes = self.inner.user_changes(tenant_id, cursor).await?;
        if !changes.full && !self.report_users.load(Ordering::SeqCst) {
            changes.users.clear();
        }
        Ok(changes)
    }
    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.inner.users_by_id(tenant_id, ids).await
    }
    async fn group_member_ids(&self, tenant_id: &str, group: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        self.inner.group_member_ids(tenant_id, group).await
    }
    async fn group_member_changes(
        &self,
        tenant_id: &str,
        group: &str,
        cursor: Option<&str>,
    ) -> Result<Option<MemberChanges>, DirectoryError> {
        self.inner.group_member_changes(tenant_id, group, cursor).await
    }
}

struct World {
    dir: Arc<LocalDirectory>,
    emu: Option<EmulatorHandle>,
    source: GraphLikeSource,
    target: Arc<dyn Directory>,
    store: SyncStore,
    ids: BTreeMap<String, String>,
}

fn graph(dir: &LocalDirectory, emu: &EmulatorHandle, tenant: &str) -> GraphDirectory {
    let perms: Vec<String> = APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = apps::create_app(dir, tenant, "entente-sync", &perms).unwrap();
    let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    config.authority_host = emu.url();
    config.graph_endpoint = emu.url();
    // Small pages: a group's members span several pages of a delta round.
    config.page_size = 2;
    GraphDirectory::new(config, Arc::new(SqliteInventory::open_in_memory().unwrap())).unwrap()
}

impl World {
    async fn new(over_emulator: bool) -> World {
        let dir = directory().await;
        let consent = |inbound: bool, outbound: bool| CrossTenantAccessSettings {
            automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                inbound_allowed: Some(inbound),
                outbound_allowed: Some(outbound),
            }),
            ..CrossTenantAccessSettings::default()
        };
        let into_fabrikam = PartnerConfiguration {
            tenant_id: CONTOSO.into(),
            settings: consent(true, false),
            identity_synchronization: Some(IdentitySynchronization {
                user_sync_inbound: UserSyncInbound { is_sync_allowed: true },
            }),
            ..PartnerConfiguration::default()
        };
        dir.apply(FABRIKAM, &[Operation::PutPartner { partner: into_fabrikam }]).await.unwrap();
        let out = PartnerConfiguration {
            tenant_id: FABRIKAM.into(),
            settings: consent(false, true),
            ..PartnerConfiguration::default()
        };
        dir.apply(CONTOSO, &[Operation::PutPartner { partner: out }]).await.unwrap();
        let names = ["alice", "bob", "carol", "dave", "erin"];
        let people: Vec<_> = names
            .iter()
            .map(|n| {
                (
                    format!("{n}@contoso.com"),
                    Some(format!("{n} Example")),
                    BTreeMap::from([("jobTitle".into(), "Engineer".into())]),
                )
            })
            .collect();
        let ids: BTreeMap<String, String> =
            names.iter().map(|n| n.to_string()).zip(dir.add_members(CONTOSO, &people).unwrap()).collect();
        dir.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec![SCOPE_A.into(), SCOPE_B.into()] }]).await.unwrap();
        for (group, name) in [(SCOPE_A, "alice"), (SCOPE_A, "bob"), (SCOPE_A, "carol"), (SCOPE_B, "carol")] {
            dir.add_group_member(CONTOSO, group, &ids[name]).unwrap();
        }
        let (source, target, emu): (Arc<dyn Directory>, Arc<dyn Directory>, _) = if over_emulator {
            let emu = emulator::start(dir.clone(), config()).await.unwrap();
            (Arc::new(graph(&dir, &emu, CONTOSO)), Arc::new(graph(&dir, &emu, FABRIKAM)), Some(emu))
        } else {
            (dir.clone(), dir.clone(), None)
        };
        let source = GraphLikeSource { inner: source, report_users: AtomicBool::new(false) };
        World { dir, emu, source, target, store: SyncStore::open_in_memory().unwrap(), ids }
    }

    fn job(&self, leaving: LeavingScope) -> DesiredSyncJob {
        let mut job = DesiredSyncJob::new(ObjectRef::new(Kind::SyncJob, "default", "groups"), CONTOSO, FABRIKAM);
        job.mappings.push(AttributeMapping { target: "companyName".into(), source: None, constant: Some("Contoso".into()) });
        job.scope.groups = vec![SCOPE_A.into(), SCOPE_B.into()];
        job.on_leaving_scope = leaving;
        job
    }

    /// One run, with the HTTP requests the emulator served for it (token requests excluded).
    async fn run(&self, job: &DesiredSyncJob, options: RunOptions) -> (SyncRunReport, Option<u64>) {
        let s = self.source.snapshot(CONTOSO).await.unwrap().unwrap();
        let t = self.target.snapshot(FABRIKAM).await.unwrap().unwrap();
        let missing = missing_in_directory(job, &s, &t);
        assert!(missing.is_empty(), "{missing:?}");
        let before = self.emu.as_ref().map(|e| e.stats().graph_requests);
        let r = run_job(job, &self.source, self.target.as_ref(), &self.store, missing, &options).await.unwrap();
        assert!(!r.failed(), "{r:#?}");
        let requests = self.emu.as_ref().zip(before).map(|(e, b)| e.stats().graph_requests - b);
        (r, requests)
    }

    fn target(&self) -> Vec<String> {
        let mut mails: Vec<String> = self.dir.users(FABRIKAM).unwrap().into_iter().map(|u| u.mail.to_ascii_lowercase()).collect();
        mails.sort();
        mails
    }

    fn expect_target(&self, names: &[&str]) {
        let expected: Vec<String> = names.iter().map(|n| format!("{n}@contoso.com")).collect();
        assert_eq!(self.target(), expected);
    }

    fn no_violations(&self) {
        if let Some(emu) = &self.emu {
            let report = emu.contract_report();
            assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
        }
    }
}

fn counts(f: impl FnOnce(&mut SyncCounts)) -> SyncCounts {
    let mut c = SyncCounts::default();
    f(&mut c);
    c
}

/// `requests` when over the emulator.
fn requests(r: Option<u64>, expected: u64, what: &str) {
    if let Some(n) = r {
        assert_eq!(n, expected, "{what}");
    }
}

async fn membership_deltas(over_emulator: bool) {
    let w = World::new(over_emulator).await;
    let j = w.job(LeavingScope::Delete);

    // Initial: both groups read in full (carol is in both).
    let (r, _) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, counts(|c| (c.created, c.skipped) = (3, 2)), "{r:#?}");
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    w.expect_target(&["alice", "bob", "carol"]);

    // Nothing changed: one user delta and one membership delta per group, nothing written.
    let (r, http) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, SyncCounts::default(), "{r:#?}");
    assert_eq!(r.directory_calls, 3, "the user delta and one membership delta per scope group");
    requests(http, 3, "an unchanged run: /users/delta and one /groups/delta per scope group");

    // dave joins a scope group, with no other change: created, found through the membership delta alone.
    w.dir.add_group_member(CONTOSO, SCOPE_B, &w.ids["dave"]).unwrap();
    let (r, http) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, counts(|c| c.created = 1), "{r:#?}");
    assert!(!r.full);
    w.expect_target(&["alice", "bob", "carol", "dave"]);
    // /users/delta, two /groups/delta, dave read by id ($batch), then the creation (lookup by mail,
    // invitation, attributes).
    requests(http, 3 + 1 + 3, "a joiner costs the deltas, one read by id and its creation");

    // carol leaves one of her two groups: still in scope, nothing written.
    w.dir.remove_group_member(CONTOSO, SCOPE_A, &w.ids["carol"]).unwrap();
    let (r, _) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts.writes(), 0, "{r:#?}");
    // bob leaves his only scope group: he leaves scope (deleted, onLeavingScope: Delete).
    w.dir.remove_group_member(CONTOSO, SCOPE_A, &w.ids["bob"]).unwrap();
    let (r, _) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, counts(|c| c.deleted = 1), "{r:#?}");
    assert_eq!(r.users_in_scope, 3);
    w.expect_target(&["alice", "carol", "dave"]);

    // A member's attribute change still comes through the user delta.
    w.source.report_users.store(true, Ordering::SeqCst);
    w.dir.set_user_attributes(CONTOSO, &w.ids["alice"], &BTreeMap::from([("jobTitle".into(), Some("Manager".into()))])).unwrap();
    let (r, _) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, counts(|c| c.updated = 1), "{r:#?}");
    w.source.report_users.store(false, Ordering::SeqCst);

    // --full reads everything again and finds nothing to write.
    let (r, _) = w.run(&j, RunOptions { full: true, ..RunOptions::default() }).await;
    assert_eq!((r.full, r.counts.writes(), r.counts.unchanged), (true, 0, 3), "{r:#?}");
    // Back to deltas.
    let (r, http) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts, SyncCounts::default());
    requests(http, 3, "deltas again after a resync");
    w.no_violations();
}

#[tokio::test]
async fn membership_deltas_over_the_emulator() {
    membership_deltas(true).await;
}

#[tokio::test]
async fn membership_deltas_on_the_local_directory() {
    membership_deltas(false).await;
}

/// A membership cursor the source no longer honours (Graph: 410 Gone; the local log purged past it) is
/// read in full once, noted in the report, with the same outcome as the deltas would have given.
async fn expired_cursor_falls_back_to_a_full_read(over_emulator: bool) {
    let w = World::new(over_emulator).await;
    let j = w.job(LeavingScope::Delete);
    let (r, _) = w.run(&j, RunOptions::default()).await;
    assert_eq!(r.counts.created, 3);

    // Changes while the cursor is lost: erin joins, alice leaves.
    w.dir.add_group_member(CONTOSO, SCOPE_A, &w.ids["erin"]).unwrap();
    w.dir.remove_group_member(CONTOSO, SCOPE_A, &w.ids["alice"]).unwrap();
    match &w.emu {
        // Every delta token issued so far answers 410 (users and groups alike).
        Some(emu) => emu.invalidate_delta_tokens(),
        // The log forgets everything older than 7 days before "now + 8 days": all of it.
        None => {
            w.dir.purge_membership_log(chrono::Utc::now() + chrono::Duration::days(8)).unwrap();
        }
    }
    let (r, http) = w.run(&j, RunOptions::default()).await;
    assert_eq!((r.counts.created, r.counts.deleted, r.counts.writes()), (1, 1, 2), "{r:#?}");
    assert_eq!(r.notes.len(), 2, "one note per scope group: {:?}", r.notes);
    assert!(r.notes[0].contains(SCOPE_A) && r.notes[0].contains("read its members in full"), "{:?}", r.notes);
    w.expect_target(&["bob", "carol", "erin"]);
    // The fallback happens once: the next run is back to one delta per group.
    let (r, http_after) = w.run(&j, RunOptions::default()).await;
    assert_eq!((r.counts, r.notes.len()), (SyncCounts::default(), 0), "{r:#?}");
    requests(http_after, 3, "deltas again after the fallback");
    if let Some(n) = http {
        assert!(n > 3 + 3, "the fallback read the groups again: {n} requests");
    }
    w.no_violations();
}

#[tokio::test]
async fn expired_cursor_falls_back_over_the_emulator() {
    expired_cursor_falls_back_to_a_full_read(true).await;
}

#[tokio::test]
async fn expired_cursor_falls_back_on_the_local_directory() {
    expired_cursor_falls_back_to_a_full_read(false).await;
}

/// The emulator's `/groups/delta` itself: a first round across pages, then only the changes, with
/// `@removed` for a member who left; without a `$filter` on ids it answers 501.
#[tokio::test]
async fn the_emulator_serves_group_membership_deltas() {
    let w = World::new(true).await;
    let emu = w.emu.as_ref().unwrap();
    let source = graph(&w.dir, emu, CONTOSO);
    let first = source.group_member_changes(CONTOSO, SCOPE_A, None).await.unwrap().unwrap();
    let set = |names: &[&str]| names.iter().map(|n| w.ids[*n].clone()).collect::<BTreeSet<String>>();
    assert!(first.full);
    assert_eq!(first.added, set(&["alice", "bob", "carol"]), "three members over pages of two");
    let cursor = first.cursor.clone().unwrap();
    assert!(cursor.contains("/groups/delta"), "{cursor}");

    w.dir.add_group_member(CONTOSO, SCOPE_A, &w.ids["dave"]).unwrap();
    w.dir.remove_group_member(CONTOSO, SCOPE_A, &w.ids["bob"]).unwrap();
    // A change in another group is not this group's.
    w.dir.add_group_member(CONTOSO, SCOPE_B, &w.ids["erin"]).unwrap();
    let next = source.group_member_changes(CONTOSO, SCOPE_A, Some(&cursor)).await.unwrap().unwrap();
    assert!(!next.full);
    assert_eq!((next.added, next.removed), (set(&["dave"]), set(&["bob"])));
    let quiet = source.group_member_changes(CONTOSO, SCOPE_A, next.cursor.as_deref()).await.unwrap().unwrap();
    assert!(!quiet.full && quiet.added.is_empty() && quiet.removed.is_empty(), "{quiet:?}");
    assert_eq!(source.group_member_changes(CONTOSO, "No such group", None).await.unwrap(), None);

    let app = apps::create_app(&w.dir, CONTOSO, "reader", &["GroupMember.Read.All".to_string()]).unwrap();
    let token = emu.mint_token(CONTOSO, &app.client_id, &["GroupMember.Read.All"], 600);
    let resp = reqwest::Client::new()
        .get(format!("{}/v1.0/groups/delta?$select=members", emu.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "every group without a filter, as Graph serves it");
    let resp = reqwest::Client::new()
        .get(format!("{}/v1.0/groups/delta?$filter=id eq '{}'&$select=members", emu.url(), w.dir.groups(CONTOSO).unwrap()[0].id))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GroupMember.Read.All is enough");
    w.no_violations();
}
