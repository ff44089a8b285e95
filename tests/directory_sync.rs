//! The local directory as a source and a target of cross-tenant synchronization (R13): the change
//! feed read as user changes, reads by id and by group, `ProvisionUser`, and the sync fields of
//! `GuestPatch`, through the public API only.

use std::collections::{BTreeMap, BTreeSet};

use entente::core::model::{Cloud, PartnerConfiguration, RedemptionState, TenantIdentity, UserType};
use entente::core::operation::{GuestPatch, InvitationResult, Operation, Outcome, ProvisionRequest};
use entente::core::policy::RefusalReason;
use entente::core::settings::{IdentitySynchronization, UserSyncInbound};
use entente::core::sync::UserChanges;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use serde_json::json;

/// The source tenant of the sync.
const CONTOSO: &str = "11111111-1111-1111-1111-111111111111";
/// The target tenant.
const FABRIKAM: &str = "22222222-2222-2222-2222-222222222222";

fn identity(id: &str, name: &str) -> TenantIdentity {
    TenantIdentity {
        tenant_id: id.into(),
        initial_domain: format!("{name}.onmicrosoft.com"),
        display_name: name.into(),
        cloud: Cloud::Global,
        verified_domains: BTreeSet::from([format!("{name}.com")]),
    }
}

async fn two_tenants() -> LocalDirectory {
    let dir = LocalDirectory::open_in_memory().unwrap();
    for (id, name) in [(CONTOSO, "contoso"), (FABRIKAM, "fabrikam")] {
        dir.apply(id, &[Operation::CreateTenant { identity: identity(id, name) }]).await.unwrap();
    }
    dir
}

/// fabrikam allows inbound user sync from contoso (R13).
async fn allow_sync(dir: &LocalDirectory, allowed: bool) {
    let partner = PartnerConfiguration {
        tenant_id: CONTOSO.into(),
        identity_synchronization: Some(IdentitySynchronization {
            user_sync_inbound: UserSyncInbound { is_sync_allowed: allowed },
        }),
        ..PartnerConfiguration::default()
    };
    dir.apply(FABRIKAM, &[Operation::PutPartner { partner }]).await.unwrap();
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn set(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

fn provision_request(mail: &str) -> ProvisionRequest {
    ProvisionRequest {
        mail: mail.into(),
        display_name: Some("Alice Liddell".into()),
        user_type: UserType::Member,
        account_enabled: true,
        attributes: attrs(&[("jobTitle", "Engineer"), ("department", "R&D")]),
        source_tenant_id: CONTOSO.into(),
    }
}

async fn provision(dir: &LocalDirectory, user: ProvisionRequest) -> Result<InvitationResult, DirectoryError> {
    match dir.apply(FABRIKAM, &[Operation::ProvisionUser { user }]).await?.as_slice() {
        [Outcome::Invited(r)] => Ok(r.clone()),
        other => panic!("expected one invitation outcome, got {other:?}"),
    }
}

async fn changes(dir: &LocalDirectory, tenant: &str, cursor: Option<&str>) -> UserChanges {
    dir.user_changes(tenant, cursor).await.unwrap()
}

fn ids(c: &UserChanges) -> Vec<&str> {
    c.users.iter().map(|u| u.id.as_str()).collect()
}

async fn one(dir: &LocalDirectory, tenant: &str, id: &str) -> entente::core::sync::DirectoryUser {
    dir.users_by_id(tenant, &[id.to_string()]).await.unwrap().remove(0)
}

async fn update(dir: &LocalDirectory, tenant: &str, user_id: &str, patch: GuestPatch) -> Result<Vec<Outcome>, DirectoryError> {
    dir.apply(tenant, &[Operation::UpdateGuest { user_id: user_id.into(), patch }]).await
}

#[tokio::test]
async fn a_full_read_returns_every_user_of_the_tenant_with_attributes() {
    let dir = two_tenants().await;
    let members = dir
        .add_members(
            CONTOSO,
            &[
                ("alice@contoso.com".into(), Some("Alice".into()), attrs(&[("jobTitle", "Engineer")])),
                ("bob@contoso.com".into(), None, BTreeMap::new()),
            ],
        )
        .unwrap();
    dir.add_member(FABRIKAM, "carol@fabrikam.com", None).unwrap();
    let full = changes(&dir, CONTOSO, None).await;
    assert!(full.full);
    assert!(full.removed.is_empty());
    assert_eq!(full.cursor, dir.change_seq().unwrap().to_string());
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(ids(&full), expected.iter().map(String::as_str).collect::<Vec<_>>(), "only contoso's users");
    let alice = full.users.iter().find(|u| u.id == members[0]).unwrap();
    assert_eq!(alice.mail.as_deref(), Some("alice@contoso.com"));
    assert_eq!(alice.user_principal_name, "alice@contoso.com");
    assert_eq!(alice.display_name.as_deref(), Some("Alice"));
    assert_eq!(alice.get("jobTitle"), Some("Engineer"));
    assert!(alice.account_enabled && alice.is_internal_member());
    // Unparsable cursors read everything again.
    for bad in ["", "soon", "-3"] {
        assert!(changes(&dir, CONTOSO, Some(bad)).await.full, "{bad:?}");
    }
}

#[tokio::test]
async fn an_incremental_read_returns_only_what_changed() {
    let dir = two_tenants().await;
    let ids_ = dir
        .add_members(
            CONTOSO,
            &[
                ("alice@contoso.com".into(), None, BTreeMap::new()),
                ("bob@contoso.com".into(), None, BTreeMap::new()),
                ("carol@contoso.com".into(), None, BTreeMap::new()),
            ],
        )
        .unwrap();
    let (alice, bob, carol) = (&ids_[0], &ids_[1], &ids_[2]);
    let start = changes(&dir, CONTOSO, None).await.cursor;

    // Nothing changed: nothing returned, the cursor stays.
    let none = changes(&dir, CONTOSO, Some(&start)).await;
    assert!(!none.full && none.users.is_empty() && none.removed.is_empty());
    assert_eq!(none.cursor, start);

    // An attribute change yields exactly that user, once, even when changed twice.
    dir.set_user_attributes(CONTOSO, alice, &set(&[("jobTitle", Some("Engineer"))])).unwrap();
    dir.set_user_attributes(CONTOSO, alice, &set(&[("department", Some("R&D"))])).unwrap();
    // Another tenant's change is not contoso's.
    dir.add_member(FABRIKAM, "dave@fabrikam.com", None).unwrap();
    let c1 = changes(&dir, CONTOSO, Some(&start)).await;
    assert!(!c1.full);
    assert_eq!(ids(&c1), vec![alice.as_str()]);
    assert_eq!(c1.users[0].attributes, attrs(&[("department", "R&D"), ("jobTitle", "Engineer")]));
    assert!(c1.removed.is_empty());

    // A deletion yields `removed`; display name and accountEnabled changes are seen.
    dir.delete_user(CONTOSO, bob).unwrap();
    dir.set_display_name(CONTOSO, carol, "Carol").unwrap();
    dir.set_account_enabled(CONTOSO, alice, false).unwrap();
    let c2 = changes(&dir, CONTOSO, Some(&c1.cursor)).await;
    let mut expected = vec![alice.as_str(), carol.as_str()];
    expected.sort();
    assert_eq!(ids(&c2), expected);
    assert_eq!(c2.removed, vec![bob.clone()]);
    assert!(!c2.users.iter().find(|u| u.id == *alice).unwrap().account_enabled);
    assert_eq!(c2.users.iter().find(|u| u.id == *carol).unwrap().display_name.as_deref(), Some("Carol"));

    // Writing the same values again changes nothing, so nothing is returned.
    dir.set_user_attributes(CONTOSO, alice, &set(&[("jobTitle", Some("Engineer"))])).unwrap();
    dir.set_account_enabled(CONTOSO, alice, false).unwrap();
    dir.set_display_name(CONTOSO, carol, "Carol").unwrap();
    let c3 = changes(&dir, CONTOSO, Some(&c2.cursor)).await;
    assert!(c3.users.is_empty() && c3.removed.is_empty(), "{c3:?}");
}

#[tokio::test]
async fn group_membership_changes_are_seen_and_group_members_are_read() {
    let dir = two_tenants().await;
    let alice = dir.add_member(CONTOSO, "alice@contoso.com", None).unwrap();
    let bob = dir.add_member(CONTOSO, "bob@contoso.com", None).unwrap();
    dir.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec!["Sync Scope".into()] }]).await.unwrap();
    assert_eq!(dir.group_member_ids(CONTOSO, "Sync Scope").await.unwrap(), Some(BTreeSet::new()));
    assert_eq!(dir.group_member_ids(CONTOSO, "No Such Group").await.unwrap(), None);

    let cursor = changes(&dir, CONTOSO, None).await.cursor;
    dir.add_group_member(CONTOSO, "Sync Scope", &alice).unwrap();
    dir.add_group_member(CONTOSO, "Sync Scope", &bob).unwrap();
    assert_eq!(dir.group_member_ids(CONTOSO, "Sync Scope").await.unwrap(), Some(BTreeSet::from([alice.clone(), bob.clone()])));
    let added = changes(&dir, CONTOSO, Some(&cursor)).await;
    assert_eq!(added.users.len(), 2);

    dir.remove_group_member(CONTOSO, "Sync Scope", &bob).unwrap();
    let removed = changes(&dir, CONTOSO, Some(&added.cursor)).await;
    assert_eq!(ids(&removed), vec![bob.as_str()], "leaving a group is a change of the user");
    assert_eq!(dir.group_member_ids(CONTOSO, "Sync Scope").await.unwrap(), Some(BTreeSet::from([alice.clone()])));

    // The group must exist.
    let err = dir.add_group_member(CONTOSO, "No Such Group", &alice).unwrap_err();
    assert!(matches!(err, DirectoryError::Invalid(_)), "{err:?}");
    let err = dir.remove_group_member(CONTOSO, "No Such Group", &alice).unwrap_err();
    assert!(matches!(err, DirectoryError::Invalid(_)), "{err:?}");
    // A membership change through UpdateGuest is seen too.
    update(&dir, CONTOSO, &bob, GuestPatch { add_to_groups: vec!["Sync Scope".into()], ..Default::default() }).await.unwrap();
    assert_eq!(ids(&changes(&dir, CONTOSO, Some(&removed.cursor)).await), vec![bob.as_str()]);
}

#[tokio::test]
async fn a_cursor_from_another_file_reads_everything() {
    let busy = two_tenants().await;
    for i in 0..20 {
        busy.add_member(CONTOSO, &format!("user{i}@contoso.com"), None).unwrap();
    }
    let foreign = changes(&busy, CONTOSO, None).await.cursor;

    let dir = two_tenants().await;
    dir.add_member(CONTOSO, "alice@contoso.com", None).unwrap();
    let c = changes(&dir, CONTOSO, Some(&foreign)).await;
    assert!(c.full, "a cursor beyond this file's feed is not this file's");
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.cursor, dir.change_seq().unwrap().to_string());
}

#[tokio::test]
async fn unknown_tenants_are_not_found() {
    let dir = two_tenants().await;
    let other = "33333333-3333-3333-3333-333333333333";
    assert!(matches!(dir.user_changes(other, None).await, Err(DirectoryError::TenantNotFound(_))));
    assert!(matches!(dir.users_by_id(other, &[]).await, Err(DirectoryError::TenantNotFound(_))));
    assert!(matches!(dir.group_member_ids(other, "g").await, Err(DirectoryError::TenantNotFound(_))));
}

#[tokio::test]
async fn users_by_id_returns_the_users_that_exist() {
    let dir = two_tenants().await;
    let alice = dir.add_member(CONTOSO, "alice@contoso.com", Some("Alice")).unwrap();
    let bob = dir.add_member(CONTOSO, "bob@contoso.com", None).unwrap();
    let carol = dir.add_member(FABRIKAM, "carol@fabrikam.com", None).unwrap();
    let found = dir.users_by_id(CONTOSO, &[bob.clone(), "missing".into(), alice.clone(), carol.clone()]).await.unwrap();
    let mut expected = vec![alice.clone(), bob.clone()];
    expected.sort();
    assert_eq!(found.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), expected, "another tenant's user is left out");
    assert!(dir.users_by_id(CONTOSO, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn provisioning_is_refused_without_inbound_sync_and_writes_nothing() {
    let dir = two_tenants().await;
    for allowed in [None, Some(false)] {
        if let Some(a) = allowed {
            allow_sync(&dir, a).await;
        }
        let before = dir.change_seq().unwrap();
        let Err(DirectoryError::Refused(r)) = provision(&dir, provision_request("alice@contoso.com")).await else {
            panic!("expected a refusal")
        };
        assert_eq!(r.reason, RefusalReason::SyncNotAllowed);
        assert!(r.message.contains("identitySynchronization.userSyncInbound.isSyncAllowed"), "{}", r.message);
        assert!(r.message.contains(CONTOSO) && r.message.contains("fabrikam"), "{}", r.message);
        assert_eq!(dir.change_seq().unwrap(), before, "nothing written");
        assert!(dir.user_by_mail(FABRIKAM, "alice@contoso.com").unwrap().is_none());
    }
}

#[tokio::test]
async fn provisioning_applies_the_inbound_gates_of_an_invitation() {
    let dir = two_tenants().await;
    allow_sync(&dir, true).await;
    dir.set_setting(FABRIKAM, "externalCollaboration.domainList", json!({ "mode": "blockList", "domains": ["contoso.com"] }))
        .unwrap();
    let before = dir.change_seq().unwrap();
    let Err(DirectoryError::Refused(r)) = provision(&dir, provision_request("alice@contoso.com")).await else {
        panic!("expected a refusal")
    };
    assert_eq!(r.reason, RefusalReason::DomainBlocked);
    assert_eq!(dir.change_seq().unwrap(), before);
}

#[tokio::test]
async fn provisioning_creates_a_b2b_collaboration_user_with_attributes() {
    let dir = two_tenants().await;
    allow_sync(&dir, true).await;
    let result = provision(&dir, provision_request("Alice@Contoso.com")).await.unwrap();
    assert_eq!(result.user_principal_name, "Alice_Contoso.com#EXT#@fabrikam.onmicrosoft.com");
    assert_eq!(result.status, "PendingAcceptance");
    let guest = dir.user_by_mail(FABRIKAM, "alice@contoso.com").unwrap().unwrap();
    assert_eq!(guest.id, result.user_id);
    assert_eq!(guest.user_type, UserType::Member);
    assert_eq!(guest.creation_type.as_deref(), Some("Invitation"));
    assert_eq!(guest.external_user_state, Some(RedemptionState::PendingAcceptance));
    assert_eq!(guest.display_name.as_deref(), Some("Alice Liddell"));
    let user = dir.users_by_id(FABRIKAM, std::slice::from_ref(&result.user_id)).await.unwrap().remove(0);
    assert_eq!(user.attributes, attrs(&[("department", "R&D"), ("jobTitle", "Engineer")]));
    assert!(user.account_enabled);
    assert!(!user.is_internal_member(), "a B2B collaboration user, not one of fabrikam's own");

    // A disabled one, as a job that disables users leaving scope would create it.
    let mut disabled = provision_request("bob@contoso.com");
    disabled.account_enabled = false;
    disabled.user_type = UserType::Guest;
    let bob = provision(&dir, disabled).await.unwrap();
    let bob = dir.users_by_id(FABRIKAM, &[bob.user_id]).await.unwrap().remove(0);
    assert!(!bob.account_enabled);
    assert_eq!(bob.user_type, UserType::Guest);
}

#[tokio::test]
async fn provisioning_takes_over_the_user_with_that_mail() {
    let dir = two_tenants().await;
    allow_sync(&dir, true).await;
    // Invited earlier, by hand.
    let invited = dir
        .apply(
            FABRIKAM,
            &[Operation::Invite {
                invitation: entente::core::operation::InvitationRequest {
                    re_invite: false,
                    invited_user_email_address: "alice@contoso.com".into(),
                    invited_user_display_name: Some("alice".into()),
                    invite_redirect_url: "https://myapps.microsoft.com".into(),
                    invited_user_type: UserType::Guest,
                    send_invitation_message: false,
                    invited_user_message_info: None,
                    groups: vec![],
                },
            }],
        )
        .await
        .unwrap();
    let Outcome::Invited(invited) = &invited[0] else { panic!() };
    dir.set_user_attributes(FABRIKAM, &invited.user_id, &set(&[("usageLocation", Some("NL"))])).unwrap();

    let result = provision(&dir, provision_request("ALICE@contoso.com")).await.unwrap();
    assert_eq!(result.user_id, invited.user_id, "never a second user");
    assert_eq!(result.user_principal_name, invited.user_principal_name);
    assert_eq!(dir.users(FABRIKAM).unwrap().len(), 1);
    let user = dir.users_by_id(FABRIKAM, std::slice::from_ref(&result.user_id)).await.unwrap().remove(0);
    assert_eq!(user.user_type, UserType::Member);
    assert_eq!(user.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(user.attributes, attrs(&[("department", "R&D"), ("jobTitle", "Engineer"), ("usageLocation", "NL")]));

    // The same provisioning again changes nothing.
    let before = dir.change_seq().unwrap();
    provision(&dir, provision_request("alice@contoso.com")).await.unwrap();
    assert_eq!(dir.change_seq().unwrap(), before, "an idempotent provisioning writes nothing");
}

#[tokio::test]
async fn provisioning_refuses_bad_mail_and_bad_attribute_names() {
    let dir = two_tenants().await;
    allow_sync(&dir, true).await;
    let mut bad_mail = provision_request("not-an-address");
    bad_mail.mail = "not-an-address".into();
    assert!(matches!(provision(&dir, bad_mail).await, Err(DirectoryError::Invalid(_))));
    let mut bad_attr = provision_request("alice@contoso.com");
    bad_attr.attributes.insert("shoeSize".into(), "42".into());
    assert!(matches!(provision(&dir, bad_attr).await, Err(DirectoryError::Invalid(_))));
    assert!(dir.users(FABRIKAM).unwrap().is_empty());
}

#[tokio::test]
async fn a_patch_sets_and_clears_attributes_account_enabled_and_mail() {
    let dir = two_tenants().await;
    allow_sync(&dir, true).await;
    let id = provision(&dir, provision_request("alice@contoso.com")).await.unwrap().user_id;
    let patch = GuestPatch {
        attributes: set(&[("jobTitle", Some("Architect")), ("department", None), ("surname", Some("Liddell"))]),
        account_enabled: Some(false),
        mail: Some("alice.liddell@contoso.com".into()),
        ..Default::default()
    };
    let cursor = dir.change_seq().unwrap();
    update(&dir, FABRIKAM, &id, patch.clone()).await.unwrap();
    let user = one(&dir, FABRIKAM, &id).await;
    assert_eq!(user.attributes, attrs(&[("jobTitle", "Architect"), ("surname", "Liddell")]));
    assert!(!user.account_enabled);
    assert_eq!(user.mail.as_deref(), Some("alice.liddell@contoso.com"));
    assert_eq!(user.user_principal_name, "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com", "the UPN stays");
    assert!(dir.user_by_mail(FABRIKAM, "ALICE.LIDDELL@contoso.com").unwrap().is_some());
    assert!(dir.user_by_mail(FABRIKAM, "alice@contoso.com").unwrap().is_none());
    let feed = dir.changes_since(cursor).unwrap();
    assert_eq!(feed.len(), 1, "one feed entry for one patch: {feed:?}");
    assert_eq!((feed[0].entity.as_str(), feed[0].change.as_str()), ("user", "updated"));

    // The same patch again: nothing changes, nothing is written.
    let cursor = dir.change_seq().unwrap();
    update(&dir, FABRIKAM, &id, patch).await.unwrap();
    assert_eq!(dir.change_seq().unwrap(), cursor);

    // Old fields keep working alongside.
    update(
        &dir,
        FABRIKAM,
        &id,
        GuestPatch { display_name: Some("A. Liddell".into()), account_enabled: Some(true), ..Default::default() },
    )
    .await
    .unwrap();
    let user = one(&dir, FABRIKAM, &id).await;
    assert_eq!(user.display_name.as_deref(), Some("A. Liddell"));
    assert!(user.account_enabled);
}

#[tokio::test]
async fn a_patch_refuses_a_taken_mail_and_unknown_attributes() {
    let dir = two_tenants().await;
    let alice = dir.add_member(FABRIKAM, "alice@fabrikam.com", None).unwrap();
    dir.add_member(FABRIKAM, "bob@fabrikam.com", None).unwrap();
    let before = dir.change_seq().unwrap();
    let taken = update(&dir, FABRIKAM, &alice, GuestPatch { mail: Some("BOB@fabrikam.com".into()), ..Default::default() }).await;
    assert!(matches!(taken, Err(DirectoryError::Conflict(_))), "{taken:?}");
    let bad = update(&dir, FABRIKAM, &alice, GuestPatch { mail: Some("bob".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(DirectoryError::Invalid(_))), "{bad:?}");
    for name in ["shoeSize", "displayName", "mail"] {
        let patch = GuestPatch { attributes: set(&[("jobTitle", Some("x")), (name, Some("y"))]), ..Default::default() };
        let r = update(&dir, FABRIKAM, &alice, patch).await;
        assert!(matches!(r, Err(DirectoryError::Invalid(_))), "{name}: {r:?}");
        assert!(matches!(dir.set_user_attributes(FABRIKAM, &alice, &set(&[(name, Some("y"))])), Err(DirectoryError::Invalid(_))));
    }
    assert_eq!(dir.change_seq().unwrap(), before, "refused patches write nothing");
    assert!(dir.users_by_id(FABRIKAM, &[alice]).await.unwrap()[0].attributes.is_empty());
}

#[tokio::test]
async fn a_bulk_add_is_one_transaction() {
    let dir = two_tenants().await;
    let members: Vec<_> = (0..500)
        .map(|i| (format!("user{i}@contoso.com"), None, attrs(&[("department", if i % 2 == 0 { "A" } else { "B" })])))
        .collect();
    let ids = dir.add_members(CONTOSO, &members).unwrap();
    assert_eq!(ids.len(), 500);
    assert_eq!(changes(&dir, CONTOSO, None).await.users.len(), 500);
    // A bad one anywhere: none of them.
    let mut bad = vec![("new@contoso.com".to_string(), None, BTreeMap::new())];
    bad.push(("nope".into(), None, BTreeMap::new()));
    assert!(dir.add_members(CONTOSO, &bad).is_err());
    assert!(dir.user_by_mail(CONTOSO, "new@contoso.com").unwrap().is_none());
    // Again: the same ids.
    assert_eq!(dir.add_members(CONTOSO, &members).unwrap(), ids);
}
