//! The embedded local directory: many tenants in one SQLite file.
//!
//! It imitates what Microsoft Graph does for the objects entente manages (graph-contract 1.1–1.4)
//! and enforces the product rules itself (R3–R6, R9), so plans and applies can be tried, and drift
//! shown, without a real tenant. Besides the `Directory` contract it offers helpers that play the
//! outside world: a guest redeeming an invitation, an admin changing a setting in the portal.
//!
//! Files: `schema` (migrations), `tenants`, `groups`, `partners`, `users`, `managed` (ownership
//! records), `feed` (change feed), `gates` (rule enforcement), `apply` (operations), `setting_path`
//! (out-of-band setting changes).

mod apply;
pub(crate) mod conditional_access;
mod entitlement;
mod feed;
mod gates;
mod groups;
pub(crate) use groups::named as group_named;
mod identity;
mod managed;
mod mto;
mod partners;
mod profile;
mod recycle_bin;
mod schema;
mod setting_path;
mod tenants;
mod users;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;

use crate::core::sync::{DirectoryUser, UserChanges};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{Directory, DirectoryError, state_file};
use crate::core::model::{DeletedGuest, Group, GuestUser, PartnerConfiguration, TenantIdentity, TenantSnapshot};
use crate::core::operation::{GuestPatch, InvitationResult, Operation, Outcome};
use crate::core::policy::TenantPolicy;

pub(crate) use entitlement::PolicyRow;
pub use entitlement::{ExpiryReport, RequestOutcome};
pub use feed::ChangeEntry;
pub(crate) use mto::{JoinRequestRow, MemberRow, MtoView, OrganizationRow};

/// A directory kept in one SQLite file (or in memory, for tests).
pub struct LocalDirectory {
    conn: Mutex<Connection>,
}

impl LocalDirectory {
    /// Opens (creating it and its parent directories if needed) and migrates a directory file.
    pub fn open(path: &Path) -> Result<Self, DirectoryError> {
        Self::init(state_file::open(path, "directory file")?)
    }

    /// A fresh, empty directory that lives as long as the value.
    pub fn open_in_memory() -> Result<Self, DirectoryError> {
        Self::init(state_file::open_in_memory("directory")?)
    }

    fn init(mut conn: Connection) -> Result<Self, DirectoryError> {
        schema::migrate(&mut conn)?;
        let dir = Self { conn: Mutex::new(conn) };
        // The membership log keeps 7 days, like Graph's delta tokens.
        dir.purge_membership_log(chrono::Utc::now())?;
        Ok(dir)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, DirectoryError> {
        self.conn.lock().map_err(|_| DirectoryError::Storage("the directory connection is poisoned".into()))
    }

    /// Runs `f` in a read transaction, so several queries see one consistent state.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, DirectoryError>) -> Result<T, DirectoryError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().ctx("starting a read")?;
        f(&tx)
    }

    /// Runs `f` in a write transaction: committed when it returns `Ok`, rolled back otherwise.
    /// IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, DirectoryError>) -> Result<T, DirectoryError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("starting a write")?;
        let value = f(&tx)?;
        tx.commit().ctx("committing")?;
        Ok(value)
    }

    // -----------------------------------------------------------------------------------------
    // Inspection

    /// Every tenant in the file, by initial domain.
    pub fn tenants(&self) -> Result<Vec<TenantIdentity>, DirectoryError> {
        self.read(|c| tenants::all(c))
    }

    /// The tenant whose id, initial domain or verified domain is `id_or_domain` (any case), else the one
    /// whose Tenant object name, initial-domain first label or display name it is.
    pub fn find_tenant(&self, id_or_domain: &str) -> Result<Option<TenantIdentity>, DirectoryError> {
        self.read(|c| tenants::find(c, id_or_domain))
    }

    /// What the tenant's settings say, in the shape the rules need.
    pub fn tenant_policy(&self, tenant_id: &str) -> Result<TenantPolicy, DirectoryError> {
        self.read(|c| tenants::policy(c, &norm(tenant_id)))
    }

    /// The tenant's type, Microsoft cloud settings (R14), branding and self-service settings.
    pub fn tenant_profile(&self, tenant_id: &str) -> Result<crate::core::tenant_profile::TenantProfile, DirectoryError> {
        self.read(|c| profile::get(c, &norm(tenant_id)))
    }

    /// The tenant's identity providers and sign-up flows (R17).
    pub fn identity_state(&self, tenant_id: &str) -> Result<crate::core::identity::IdentityState, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            identity::state(c, &tenant_id)
        })
    }

    /// R17: can a user sign up through flow `flow_id` (`B2X_1_…`) with the provider `provider_key`
    /// (`Google`, `EmailOneTimePasscode`, `SamlWsFed:<domain>`, `EmailPassword`…)? `Err(Refused)` says why not.
    pub fn can_sign_up(&self, tenant_id: &str, flow_id: &str, provider_key: &str) -> Result<(), DirectoryError> {
        let state = self.identity_state(tenant_id)?;
        crate::core::identity::check_sign_up(&state, &norm(tenant_id), flow_id, provider_key).map_err(DirectoryError::Refused)
    }

    /// An admin enables or disables an identity provider outside entente (drift). Refused while a flow offers
    /// it (R17).
    pub fn set_identity_provider_state(
        &self,
        tenant_id: &str,
        key: &str,
        state: crate::core::identity::ProviderState,
    ) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            let current = identity::state(c, &tenant_id)?;
            let p = current
                .providers
                .iter()
                .find(|p| p.key == key)
                .ok_or_else(|| DirectoryError::NotFound(format!("identity provider {key} in tenant {tenant_id}")))?;
            let config = crate::core::identity::IdentityProviderConfig {
                key: p.key.clone(),
                provider_type: p.provider_type,
                display_name: p.display_name.clone(),
                client_id: p.client_id.clone(),
                client_secret: None,
                client_secret_hash: None,
                saml: p.saml.clone(),
                state,
            };
            identity::put_provider(c, &tenant_id, &config, Some(&p.id)).map(|_| ())
        })
    }

    /// The tenant's partner configurations as stored (absent settings inherit, R2).
    pub fn partners(&self, tenant_id: &str) -> Result<Vec<PartnerConfiguration>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            partners::list(c, &tenant_id)
        })
    }

    /// The tenant's groups, by display name.
    pub fn groups(&self, tenant_id: &str) -> Result<Vec<Group>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            groups::list(c, &tenant_id)
        })
    }

    /// Every user of the tenant, members included, by mail.
    pub fn users(&self, tenant_id: &str) -> Result<Vec<GuestUser>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            users::list(c, &tenant_id, false)
        })
    }

    /// The tenant's user with this mail (any case), if there is one.
    pub fn user_by_mail(&self, tenant_id: &str, mail: &str) -> Result<Option<GuestUser>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            users::by_mail(c, &tenant_id, mail)
        })
    }

    /// The sequence number of the latest write (0 for a new file).
    pub fn change_seq(&self) -> Result<i64, DirectoryError> {
        self.read(|c| feed::max_seq(c))
    }

    /// The change feed after `seq`, oldest first.
    pub fn changes_since(&self, seq: i64) -> Result<Vec<ChangeEntry>, DirectoryError> {
        self.read(|c| feed::since(c, seq))
    }

    // -----------------------------------------------------------------------------------------
    // The outside world

    /// A home-tenant member (userType Member, no creationType, UPN = mail). Returns its id; adding
    /// the same address again returns the existing member.
    pub fn add_member(&self, tenant_id: &str, mail: &str, display_name: Option<&str>) -> Result<String, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| users::add_member(c, &tenant_id, mail, display_name, &BTreeMap::new()))
    }

    /// Many home-tenant members at once, in ONE transaction (a 10,000-user source tenant in about a
    /// second): `(mail, display name, profile attributes)` each, as `add_member` adds one (an existing
    /// member keeps its id and gets the given attributes). Returns their ids, in order. All or nothing.
    pub fn add_members(
        &self,
        tenant_id: &str,
        members: &[(String, Option<String>, BTreeMap<String, String>)],
    ) -> Result<Vec<String>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| users::add_members(c, &tenant_id, members))
    }

    /// Someone edits a user's profile attributes (`givenName`, `jobTitle`, … by Graph name): `Some`
    /// sets, `None` clears. A name that is not a profile attribute is invalid.
    pub fn set_user_attributes(
        &self,
        tenant_id: &str,
        user_id: &str,
        attributes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), DirectoryError> {
        self.patch_user(tenant_id, user_id, GuestPatch { attributes: attributes.clone(), ..GuestPatch::default() })
    }

    /// Someone renames a user.
    pub fn set_display_name(&self, tenant_id: &str, user_id: &str, display_name: &str) -> Result<(), DirectoryError> {
        self.patch_user(tenant_id, user_id, GuestPatch { display_name: Some(display_name.to_string()), ..GuestPatch::default() })
    }

    /// Someone blocks (`false`) or allows (`true`) a user's sign-in.
    pub fn set_account_enabled(&self, tenant_id: &str, user_id: &str, enabled: bool) -> Result<(), DirectoryError> {
        self.patch_user(tenant_id, user_id, GuestPatch { account_enabled: Some(enabled), ..GuestPatch::default() })
    }

    /// Someone adds a user to a group (by display name; the group must exist: `EnsureGroups` creates
    /// groups). Already a member: nothing changes.
    pub fn add_group_member(&self, tenant_id: &str, group: &str, user_id: &str) -> Result<(), DirectoryError> {
        self.patch_user(tenant_id, user_id, GuestPatch { add_to_groups: vec![group.to_string()], ..GuestPatch::default() })
    }

    /// Someone removes a user from a group (by display name; the group must exist). Not a member:
    /// nothing changes.
    pub fn remove_group_member(&self, tenant_id: &str, group: &str, user_id: &str) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            groups::ids(c, &tenant_id, &[group.to_string()])?;
            users::update(
                c,
                &tenant_id,
                user_id,
                &GuestPatch { remove_from_groups: vec![group.to_string()], ..GuestPatch::default() },
            )
        })
    }

    fn patch_user(&self, tenant_id: &str, user_id: &str, patch: GuestPatch) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            users::update(c, &tenant_id, user_id, &patch)
        })
    }

    /// The invited person at `email` redeems their invitation (R6), if the tenant's settings still
    /// allow it (R3 second example).
    pub fn redeem(&self, tenant_id: &str, email: &str) -> Result<GuestUser, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            let user = users::by_mail(c, &tenant_id, email)?
                .ok_or_else(|| DirectoryError::NotFound(format!("user with mail {email} in tenant {tenant_id}")))?;
            users::redeem(c, &tenant_id, &user.id)
        })
    }

    /// Redeems the invitation behind a redeem URL (`entente://redeem?tenant=…&ticket=…`).
    pub fn redeem_url(&self, url: &str) -> Result<GuestUser, DirectoryError> {
        let (tenant_id, ticket) = users::parse_redeem_url(url)?;
        self.write(|c| {
            let user_id = users::ticket_user(c, &tenant_id, &ticket)?;
            users::redeem(c, &tenant_id, &user_id)
        })
    }

    /// Sends the guest back to PendingAcceptance with a fresh redeem URL; id and groups stay (R6).
    pub fn reset_redemption(&self, tenant_id: &str, user_id: &str) -> Result<InvitationResult, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| users::reset_redemption(c, &tenant_id, user_id))
    }

    /// An admin changes a setting outside entente (drift). `path` is
    /// `externalCollaboration.<field>`, `crossTenantAccessDefault.<dotted path>` or
    /// `partner.<partnerTenantId>.<dotted path>`; `null` clears a setting.
    pub fn set_setting(&self, tenant_id: &str, path: &str, value: serde_json::Value) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| setting_path::set_setting(c, &tenant_id, path, value))
    }

    /// An external user at `user_mail` requests an access package (by display name) of the tenant, now
    /// (R16): denied unless a policy admits them, pending when it requires approval, else delivered.
    pub fn request_access_package(
        &self,
        tenant_id: &str,
        user_mail: &str,
        package: &str,
    ) -> Result<RequestOutcome, DirectoryError> {
        self.request_access_package_at(tenant_id, user_mail, package, chrono::Utc::now())
    }

    /// `request_access_package` at a given time (tests inject the clock).
    pub fn request_access_package_at(
        &self,
        tenant_id: &str,
        user_mail: &str,
        package: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<RequestOutcome, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| entitlement::request(c, &tenant_id, user_mail, package, now))
    }

    /// An approver approves the pending request of `user_mail` for `package`; when the policy names
    /// approvers, `approver` must be one of them. Delivered at `now`.
    pub fn approve(
        &self,
        tenant_id: &str,
        user_mail: &str,
        package: &str,
        approver: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<RequestOutcome, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| entitlement::approve(c, &tenant_id, user_mail, package, approver, now))
    }

    /// The clock reaches `now`: expired assignments end (groups taken away), the lifecycle blocks
    /// external users who lost their last assignment, and blocked users due for deletion are deleted.
    pub fn expire_assignments(&self, now: chrono::DateTime<chrono::Utc>) -> Result<ExpiryReport, DirectoryError> {
        self.write(|c| entitlement::expire(c, now))
    }

    /// Entitlement management as stored: settings, connected organizations, packages, assignments.
    pub fn entitlement(&self, tenant_id: &str) -> Result<crate::core::entitlement::EntitlementState, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            entitlement::state(c, &tenant_id)
        })
    }

    /// An admin deletes a user outside entente: into the recycle bin, restorable for 30 days.
    pub fn delete_user(&self, tenant_id: &str, user_id: &str) -> Result<(), DirectoryError> {
        self.delete_user_at(tenant_id, user_id, chrono::Utc::now())
    }

    /// `delete_user` at a given time (tests inject the clock).
    pub fn delete_user_at(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            if users::delete_at(c, &tenant_id, user_id, now)? {
                Ok(())
            } else {
                Err(DirectoryError::NotFound(format!("user {user_id} in tenant {tenant_id}")))
            }
        })
    }

    /// The tenant's recycle bin: users (members too) deleted less than 30 days ago, newest first, each
    /// with its groups and when it was deleted.
    pub fn deleted_users(&self, tenant_id: &str) -> Result<Vec<DeletedGuest>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            recycle_bin::list(c, &tenant_id, false, chrono::Utc::now())
        })
    }

    /// An admin restores a deleted user from the recycle bin: the same id, mail, user principal name,
    /// redemption state and groups. Refused (`Conflict`) while a live user holds its mail or user principal
    /// name; `NotFound` when the bin has no such user.
    pub fn restore_user(&self, tenant_id: &str, user_id: &str) -> Result<(), DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            recycle_bin::restore(c, &tenant_id, user_id, chrono::Utc::now())
        })
    }

    /// The clock reaches `now`: users deleted more than 30 days before are erased for good (a write also
    /// purges its tenant's expired items, and reads never show them). How many were erased.
    pub fn purge_recycle_bin(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, DirectoryError> {
        self.write(|c| recycle_bin::purge(c, now))
    }
}

// ---------------------------------------------------------------------------------------------
// For the Graph emulator (`crate::emulator`), which serves this file over HTTP and keeps its own
// tables in it (schema migration 2).
impl LocalDirectory {
    /// The file this directory lives in; `None` in memory.
    pub(crate) fn file_path(&self) -> Result<Option<std::path::PathBuf>, DirectoryError> {
        let conn = self.lock()?;
        Ok(conn.path().filter(|p| !p.is_empty()).map(std::path::PathBuf::from))
    }

    /// Runs `f` in a read transaction (the emulator's own tables).
    pub(crate) fn emulator_read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        self.read(f)
    }

    /// Runs `f` in a write transaction (the emulator's own tables).
    pub(crate) fn emulator_write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        self.write(f)
    }

    /// `Directory::apply`, then `then` in the same transaction: one Graph request that changes both
    /// the directory and the emulator's own tables commits or fails as a whole.
    pub(crate) fn apply_then<T>(
        &self,
        tenant_id: &str,
        ops: &[Operation],
        then: impl FnOnce(&Transaction<'_>, Vec<Outcome>) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| {
            let outcomes = apply::apply(c, &tenant_id, ops)?;
            then(c, outcomes)
        })
    }

    /// The tenant's user with this id, with its groups.
    /// One user by id or user principal name, as Graph addresses `/users/{id | userPrincipalName}`.
    pub(crate) fn user_by_id_or_upn(&self, tenant_id: &str, key: &str) -> Result<Option<GuestUser>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| users::by_id_or_upn(c, &tenant_id, key))
    }

    pub(crate) fn user(&self, tenant_id: &str, user_id: &str) -> Result<Option<GuestUser>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| users::by_id(c, &tenant_id, user_id))
    }

    /// The profile attributes (`users.attributes`) of the tenant's users, or of one user, by user id,
    /// inside a read or write of the emulator. Users without attributes are left out.
    pub(crate) fn user_attributes_in(
        c: &Connection,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<HashMap<String, BTreeMap<String, String>>, DirectoryError> {
        users::attributes_by_user(c, &norm(tenant_id), user_id)
    }
}

#[async_trait]
impl Directory for LocalDirectory {
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            let Some(identity) = tenants::get(c, &tenant_id)? else { return Ok(None) };
            Ok(Some(TenantSnapshot {
                external_collaboration: tenants::collaboration(c, &tenant_id)?,
                default_access: tenants::default_access(c, &tenant_id)?,
                groups: groups::list(c, &tenant_id)?,
                partners: partners::list(c, &tenant_id)?,
                guests: users::list(c, &tenant_id, true)?,
                deleted_guests: recycle_bin::list(c, &tenant_id, true, chrono::Utc::now())?,
                managed: managed::list(c, &tenant_id)?,
                tombstones: managed::tombstones(c, &tenant_id, chrono::Utc::now())?,
                multi_tenant_organization: mto::state(c, &tenant_id)?,
                profile: profile::get(c, &tenant_id)?,
                unsupported: Default::default(),
                identity_config: identity::state(c, &tenant_id)?,
                entitlement: Some(entitlement::state(c, &tenant_id)?),
                conditional_access: Some(conditional_access::list(c, &tenant_id)?),
                identity,
            }))
        })
    }

    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.write(|c| apply::apply(c, &tenant_id, ops))
    }

    /// The cursor is the change feed's sequence number. No cursor, one that does not parse, or one
    /// beyond the feed's end (another file): every user of the tenant. Otherwise the users with a
    /// `user` feed entry since, each read once, and the ids of those that no longer exist.
    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            let end = feed::max_seq(c)?;
            let from = cursor.and_then(|s| s.trim().parse::<i64>().ok()).filter(|s| (0..=end).contains(s));
            let Some(from) = from else {
                return Ok(UserChanges {
                    users: users::directory_users(c, &tenant_id)?,
                    removed: vec![],
                    cursor: end.to_string(),
                    full: true,
                });
            };
            let ids = users::changed_ids(c, &tenant_id, from, end)?;
            let found = users::directory_users_by_id(c, &tenant_id, &ids)?;
            let present: HashSet<&str> = found.iter().map(|u| u.id.as_str()).collect();
            let removed = ids.iter().filter(|id| !present.contains(id.as_str())).cloned().collect();
            Ok(UserChanges { users: found, removed, cursor: end.to_string(), full: false })
        })
    }

    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            users::directory_users_by_id(c, &tenant_id, ids)
        })
    }

    async fn group_member_ids(&self, tenant_id: &str, group: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            groups::member_ids(c, &tenant_id, group)
        })
    }

    async fn group_member_changes(
        &self,
        tenant_id: &str,
        group: &str,
        cursor: Option<&str>,
    ) -> Result<Option<crate::directory::MemberChanges>, DirectoryError> {
        let tenant_id = norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            groups::member_changes(c, &tenant_id, group, cursor)
        })
    }
}

/// Tenant ids are stored lowercase (TenantIdentity).
fn norm(tenant_id: &str) -> String {
    tenant_id.trim().to_ascii_lowercase()
}

/// Now, as Graph writes timestamps (RFC 3339, UTC).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Maps storage errors to `DirectoryError::Storage`, saying what was being done.
trait Ctx<T> {
    fn ctx(self, doing: &str) -> Result<T, DirectoryError>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, doing: &str) -> Result<T, DirectoryError> {
        self.map_err(|e| DirectoryError::Storage(format!("{doing}: {e}")))
    }
}

impl<T> Ctx<T> for serde_json::Result<T> {
    fn ctx(self, doing: &str) -> Result<T, DirectoryError> {
        self.map_err(|e| DirectoryError::Storage(format!("{doing}: JSON: {e}")))
    }
}
