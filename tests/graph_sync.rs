//! Cross-tenant synchronization reads and writes of the Graph backend (`GraphDirectory`) against the
//! emulator (strict contract checking): `/users/delta` from a caller's cursor (full, incremental,
//! removals, resets), users by id, group members, `ProvisionUser` and `UpdateGuest` with profile
//! attributes.

mod emulator_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use emulator_support::*;
use entente::core::model::UserType;
use entente::core::operation::{GuestPatch, Operation, Outcome, ProvisionRequest};
use entente::core::sync::{DirectoryUser, UserChanges};
use entente::directory::Directory;
use entente::directory::graph::{APPLY_PERMISSIONS, Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::emulator::{EmulatorConfig, apps};

/// The Graph backend of one tenant of the emulator, with entente's documented permissions only.
fn graph(env: &Env, tenant: &str, page_size: u32) -> GraphDirectory {
    let perms: Vec<String> = APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = apps::create_app(&env.dir, tenant, "entente-sync", &perms).unwrap();
    let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    config.authority_host = env.emu.url();
    config.graph_endpoint = env.emu.url();
    config.page_size = page_size;
    GraphDirectory::new(config, Arc::new(SqliteInventory::open_in_memory().unwrap())).unwrap()
}

fn attrs(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

fn set_attributes(user_id: &str, pairs: &[(&str, Option<&str>)]) -> Operation {
    Operation::UpdateGuest {
        user_id: user_id.to_string(),
        patch: GuestPatch { attributes: attrs(pairs), ..GuestPatch::default() },
    }
}

/// `count` members of contoso (`user00@contoso.com`, …), each with a job title; even ones also with a
/// department. Their ids, in order.
async fn seed_members(env: &Env, src: &GraphDirectory, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut ops = Vec::new();
    for i in 0..count {
        let id = env.dir.add_member(CONTOSO, &format!("user{i:02}@contoso.com"), Some(&format!("User {i:02}"))).unwrap();
        let title = format!("Engineer {i:02}");
        let dept = (i % 2 == 0).then_some("Research");
        ops.push(set_attributes(&id, &[("jobTitle", Some(&title)), ("department", dept)]));
        ids.push(id);
    }
    src.apply(CONTOSO, &ops).await.unwrap();
    ids
}

fn by_id(changes: &UserChanges) -> BTreeMap<String, DirectoryUser> {
    changes.users.iter().map(|u| (u.id.clone(), u.clone())).collect()
}

fn no_violations(env: &Env) {
    let report = env.emu.contract_report();
    assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_reads_everything_then_only_what_changed() {
    let env = env().await;
    // Pages of 5: the initial round follows nextLinks.
    let src = graph(&env, CONTOSO, 5);
    let ids = seed_members(&env, &src, 12).await;

    let first = src.user_changes(CONTOSO, None).await.unwrap();
    assert!(first.full && first.removed.is_empty() && !first.cursor.is_empty());
    let users = by_id(&first);
    assert_eq!(users.len(), 12, "{:?}", first.users);
    for (i, id) in ids.iter().enumerate() {
        let u = &users[id];
        assert!(u.is_internal_member(), "{u:?}");
        assert_eq!(u.mail.as_deref(), Some(format!("user{i:02}@contoso.com").as_str()));
        assert_eq!(u.display_name.as_deref(), Some(format!("User {i:02}").as_str()));
        assert!(u.account_enabled);
        assert_eq!(u.get("jobTitle"), Some(format!("Engineer {i:02}").as_str()));
        assert_eq!(u.get("department"), (i % 2 == 0).then_some("Research"), "null is absent");
        assert!(!u.attributes.contains_key("surname"));
    }

    // Nothing changed: nothing comes back.
    let quiet = src.user_changes(CONTOSO, Some(&first.cursor)).await.unwrap();
    assert_eq!((quiet.full, quiet.users.len(), quiet.removed.len()), (false, 0, 0), "{quiet:?}");

    // One attribute of one user: that user, whole, in O(1) requests.
    src.apply(CONTOSO, &[set_attributes(&ids[3], &[("jobTitle", Some("Architect"))])]).await.unwrap();
    let before = env.emu.stats().graph_requests;
    let one = src.user_changes(CONTOSO, Some(&quiet.cursor)).await.unwrap();
    let requests = env.emu.stats().graph_requests - before;
    assert!(!one.full && one.removed.is_empty());
    assert_eq!(one.users.len(), 1, "{one:?}");
    assert_eq!(one.users[0].id, ids[3]);
    assert_eq!(one.users[0].get("jobTitle"), Some("Architect"));
    assert_eq!(one.users[0].user_principal_name, "user03@contoso.com");
    assert!(requests <= 2, "an incremental round after one change took {requests} requests");

    // A deleted user is removed.
    env.dir.delete_user(CONTOSO, &ids[5]).unwrap();
    let gone = src.user_changes(CONTOSO, Some(&one.cursor)).await.unwrap();
    assert_eq!((gone.full, gone.users.len()), (false, 0), "{gone:?}");
    assert_eq!(gone.removed, vec![ids[5].clone()]);

    // The service dropped the state (410 Gone): a full read. (One page: the emulator's initial-round
    // tokens issued after a reset still carry the old reset epoch, so their nextLinks would be refused;
    // expiry is covered end to end below.)
    env.emu.invalidate_delta_tokens();
    let one_page = graph(&env, CONTOSO, 999);
    let again = one_page.user_changes(CONTOSO, Some(&gone.cursor)).await.unwrap();
    assert!(again.full && again.removed.is_empty());
    assert_eq!(again.users.len(), 11);
    assert!(!by_id(&again).contains_key(&ids[5]));
    no_violations(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cursor_means_a_full_read_then_incremental_again() {
    let env = env_with(EmulatorConfig { delta_token_ttl: Duration::from_secs(1), ..config() }).await;
    let src = graph(&env, CONTOSO, 2);
    let ids = seed_members(&env, &src, 5).await;
    let first = src.user_changes(CONTOSO, None).await.unwrap();
    assert_eq!(first.users.len(), 5);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    src.apply(CONTOSO, &[set_attributes(&ids[0], &[("surname", Some("Zed"))])]).await.unwrap();
    let expired = src.user_changes(CONTOSO, Some(&first.cursor)).await.unwrap();
    assert!(expired.full, "410 Gone: read in full");
    assert_eq!(expired.users.len(), 5);
    assert_eq!(by_id(&expired)[&ids[0]].get("surname"), Some("Zed"));
    let next = src.user_changes(CONTOSO, Some(&expired.cursor)).await.unwrap();
    assert!(!next.full && next.users.is_empty() && next.removed.is_empty(), "{next:?}");
    no_violations(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_cursors_mean_a_full_read() {
    let env = env().await;
    let src = graph(&env, CONTOSO, 999);
    seed_members(&env, &src, 3).await;
    let bogus = [
        format!("{}/v1.0/users/delta?$deltatoken=not-a-token", env.emu.url()),
        // Another host never gets the token: not followed at all.
        "https://graph.example.net/v1.0/users/delta?$deltatoken=abc".to_string(),
        // Not a delta link.
        format!("{}/v1.0/users", env.emu.url()),
        "not a url".to_string(),
    ];
    for cursor in &bogus {
        let changes = src.user_changes(CONTOSO, Some(cursor)).await.unwrap_or_else(|e| panic!("{cursor}: {e}"));
        assert!(changes.full, "{cursor}");
        assert_eq!(changes.users.len(), 3, "{cursor}");
        assert!(changes.cursor.starts_with(&env.emu.url()), "{}", changes.cursor);
    }
    // Another tenant's backend refuses.
    assert!(src.user_changes(FABRIKAM, None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_by_id_and_group_members() {
    let env = env().await;
    let src = graph(&env, CONTOSO, 999);
    let ids = seed_members(&env, &src, 25).await;

    // More than one $batch (20 per request); a missing id is left out; duplicates count once.
    let missing = "00000000-0000-4000-8000-000000000000".to_string();
    let mut ask = ids.clone();
    ask.push(missing.clone());
    ask.push(ids[0].clone());
    let before = env.emu.stats().graph_requests;
    let users = src.users_by_id(CONTOSO, &ask).await.unwrap();
    assert!(env.emu.stats().graph_requests - before <= 3, "two batches (and nothing per user)");
    let found: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(found, ids.iter().cloned().collect::<BTreeSet<_>>());
    let u7 = users.iter().find(|u| u.id == ids[7]).unwrap();
    assert_eq!(u7.get("jobTitle"), Some("Engineer 07"));
    assert_eq!(u7.user_type, UserType::Member);
    assert!(src.users_by_id(CONTOSO, &[missing]).await.unwrap().is_empty());
    assert!(src.users_by_id(CONTOSO, &[]).await.unwrap().is_empty());

    // Groups by display name (quotes included), members paged.
    let scope = "O'Brien's team".to_string();
    src.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec![scope.clone(), "Other".into()] }]).await.unwrap();
    let join = |id: &String, group: &str| Operation::UpdateGuest {
        user_id: id.clone(),
        patch: GuestPatch { add_to_groups: vec![group.to_string()], ..GuestPatch::default() },
    };
    let ops = vec![join(&ids[1], &scope), join(&ids[2], &scope), join(&ids[3], "Other")];
    src.apply(CONTOSO, &ops).await.unwrap();
    let small_pages = graph(&env, CONTOSO, 1);
    let members = small_pages.group_member_ids(CONTOSO, &scope).await.unwrap();
    assert_eq!(members, Some(BTreeSet::from([ids[1].clone(), ids[2].clone()])));
    assert_eq!(src.group_member_ids(CONTOSO, "Other").await.unwrap(), Some(BTreeSet::from([ids[3].clone()])));
    assert_eq!(src.group_member_ids(CONTOSO, "Nobody's group").await.unwrap(), None);
    src.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec!["Empty".into()] }]).await.unwrap();
    assert_eq!(src.group_member_ids(CONTOSO, "Empty").await.unwrap(), Some(BTreeSet::new()));
    no_violations(&env);
}

fn provision(mail: &str, enabled: bool, pairs: &[(&str, &str)]) -> Operation {
    Operation::ProvisionUser {
        user: ProvisionRequest {
            mail: mail.into(),
            display_name: Some("Ann Lee".into()),
            user_type: UserType::Member,
            account_enabled: enabled,
            attributes: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            source_tenant_id: CONTOSO.into(),
        },
    }
}

fn invited_id(outcomes: &[Outcome]) -> String {
    match &outcomes[0] {
        Outcome::Invited(r) => r.user_id.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_creates_one_user_with_its_attributes_and_updates_clear_them() {
    let env = env().await;
    let target = graph(&env, FABRIKAM, 999);
    let mail = "ann.lee@contoso.com";

    let op = provision(mail, true, &[("jobTitle", "Engineer"), ("department", "Research"), ("givenName", "Ann")]);
    let id = invited_id(&target.apply(FABRIKAM, &[op]).await.unwrap());
    let users: Vec<_> = env.dir.users(FABRIKAM).unwrap().into_iter().filter(|u| u.mail.eq_ignore_ascii_case(mail)).collect();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].id, id);
    assert_eq!(users[0].user_type, UserType::Member);
    assert_eq!(users[0].creation_type.as_deref(), Some("Invitation"));
    assert_eq!(users[0].display_name.as_deref(), Some("Ann Lee"));
    assert!(users[0].account_enabled);
    let read = target.users_by_id(FABRIKAM, std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(
        read[0].attributes,
        BTreeMap::from([
            ("department".to_string(), "Research".to_string()),
            ("givenName".to_string(), "Ann".to_string()),
            ("jobTitle".to_string(), "Engineer".to_string()),
        ])
    );

    // The same address again: the same user (never invited twice), brought to what is asked.
    let op = provision(&mail.to_uppercase(), false, &[("jobTitle", "Architect")]);
    assert_eq!(invited_id(&target.apply(FABRIKAM, &[op]).await.unwrap()), id);
    assert_eq!(env.dir.users(FABRIKAM).unwrap().iter().filter(|u| u.mail.eq_ignore_ascii_case(mail)).count(), 1);
    let u = env.dir.user_by_mail(FABRIKAM, mail).unwrap().unwrap();
    assert!(!u.account_enabled, "the adopted user's sign-in follows the request");
    let read = &target.users_by_id(FABRIKAM, std::slice::from_ref(&id)).await.unwrap()[0];
    assert_eq!(read.get("jobTitle"), Some("Architect"));
    assert_eq!(read.get("department"), Some("Research"), "provisioning sets, it does not clear");

    // An update clears an attribute (null), sets another and enables sign-in again.
    let patch = GuestPatch {
        account_enabled: Some(true),
        attributes: attrs(&[("department", None), ("officeLocation", Some("Building 7"))]),
        ..GuestPatch::default()
    };
    target.apply(FABRIKAM, &[Operation::UpdateGuest { user_id: id.clone(), patch }]).await.unwrap();
    let read = &target.users_by_id(FABRIKAM, std::slice::from_ref(&id)).await.unwrap()[0];
    assert_eq!(read.get("department"), None);
    assert_eq!(read.get("officeLocation"), Some("Building 7"));
    assert_eq!(read.get("jobTitle"), Some("Architect"));
    assert!(read.account_enabled);

    // The source user's address changed: the mail follows.
    let patch = GuestPatch { mail: Some("ann.lee@contoso.net".into()), ..GuestPatch::default() };
    target.apply(FABRIKAM, &[Operation::UpdateGuest { user_id: id.clone(), patch }]).await.unwrap();
    assert_eq!(env.dir.user_by_mail(FABRIKAM, "ann.lee@contoso.net").unwrap().map(|u| u.id), Some(id.clone()));
    assert_eq!(
        target.users_by_id(FABRIKAM, std::slice::from_ref(&id)).await.unwrap()[0].mail.as_deref(),
        Some("ann.lee@contoso.net")
    );

    // A property that is not a profile attribute is refused before anything is sent.
    let patch = GuestPatch { attributes: attrs(&[("userPrincipalName", Some("x@y.z"))]), ..GuestPatch::default() };
    assert!(target.apply(FABRIKAM, &[Operation::UpdateGuest { user_id: id, patch }]).await.is_err());
    no_violations(&env);
}
