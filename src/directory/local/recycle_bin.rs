//! The recycle bin (schema migration 8): a deleted user moves into `deleted_users` whole (row, group
//! memberships, when) and can be restored as the same user for 30 days, as Graph keeps deleted users in
//! its deleted items. Older items are purged lazily, on the next write that touches the bin, and never
//! shown meanwhile. A restore whose mail or user principal name a live user holds is refused.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Ctx, feed};
use crate::core::model::DeletedGuest;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// How long a deleted user stays restorable (Graph: "up to 30 days").
pub(crate) const RETENTION_DAYS: i64 = 30;

const COLUMNS: &str = "id, mail, display_name, user_principal_name, user_type, creation_type, \
                       external_user_state, external_user_state_change, account_enabled, group_ids, deleted_at";

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Deletions at or before this instant are past the retention.
fn cutoff(now: DateTime<Utc>) -> String {
    stamp(now - Duration::days(RETENTION_DAYS))
}

fn read(r: &Row<'_>) -> rusqlite::Result<DeletedGuest> {
    // The first columns are a user's, as `users::read_user` reads them; then its groups and deletion time.
    let mut guest = super::users::read_user(r)?;
    let groups: String = r.get(9)?;
    guest.group_ids = serde_json::from_str(&groups).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, format!("unexpected groups {groups:?}").into())
    })?;
    Ok(DeletedGuest { guest, deleted_date_time: r.get(10)?, groups_known: true })
}

/// Moves the user into the recycle bin with its group memberships (its redeem tickets go: a restored
/// guest keeps its redemption state, and a new URL comes only from a reset). `false` when there was no
/// such user.
pub(super) fn move_in(c: &Connection, tenant_id: &str, user_id: &str, now: DateTime<Utc>) -> Result<bool> {
    purge_tenant(c, tenant_id, now)?;
    let n = c
        .prepare_cached(
            "INSERT OR REPLACE INTO deleted_users (id, tenant_id, user_principal_name, mail, mail_lower, display_name,
               user_type, creation_type, external_user_state, external_user_state_change, account_enabled, attributes,
               group_ids, deleted_at)
             SELECT u.id, u.tenant_id, u.user_principal_name, u.mail, u.mail_lower, u.display_name, u.user_type,
               u.creation_type, u.external_user_state, u.external_user_state_change, u.account_enabled, u.attributes,
               (SELECT COALESCE(json_group_array(gm.group_id), '[]') FROM group_members gm WHERE gm.user_id = u.id),
               ?3
             FROM users u WHERE u.tenant_id = ?1 AND u.id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenant_id, user_id, stamp(now)]))
        .ctx("moving a user into the recycle bin")?;
    if n == 0 {
        return Ok(false);
    }
    c.execute("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, user_id]).ctx("deleting a user")?;
    Ok(true)
}

/// The tenant's deleted users still restorable at `now`, newest first (only guests: created by
/// invitation or of type Guest, when `guests_only`).
pub(super) fn list(c: &Connection, tenant_id: &str, guests_only: bool, now: DateTime<Utc>) -> Result<Vec<DeletedGuest>> {
    let filter = if guests_only { " AND (creation_type = 'Invitation' OR user_type = 'Guest')" } else { "" };
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deleted_users WHERE tenant_id = ?1 AND deleted_at > ?2{filter}
             ORDER BY deleted_at DESC, mail_lower, id"
        ))
        .ctx("reading the recycle bin")?;
    s.query_map(params![tenant_id, cutoff(now)], read).and_then(|rows| rows.collect()).ctx("reading the recycle bin")
}

/// One deleted user, restorable at `now`.
pub(super) fn get(c: &Connection, tenant_id: &str, user_id: &str, now: DateTime<Utc>) -> Result<Option<DeletedGuest>> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM deleted_users WHERE tenant_id = ?1 AND id = ?2 AND deleted_at > ?3"))
        .and_then(|mut s| s.query_row(params![tenant_id, user_id, cutoff(now)], read).optional())
        .ctx("reading the recycle bin")
}

/// Puts the deleted user back: same id, mail, user principal name, attributes, redemption state, and its
/// memberships of the groups that still exist. Restoring a live user is a no-op (idempotent). Refused
/// (`Conflict`) while a live user holds its mail or user principal name, as Graph refuses a restore that
/// would duplicate a unique property; `NotFound` when the bin has no such user (never deleted, restored
/// already under another name, or purged after 30 days).
pub(super) fn restore(c: &Connection, tenant_id: &str, user_id: &str, now: DateTime<Utc>) -> Result<()> {
    purge_tenant(c, tenant_id, now)?;
    let live: Option<String> = c
        .prepare_cached("SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![tenant_id, user_id], |r| r.get(0)).optional())
        .ctx("looking up a user")?;
    if live.is_some() {
        return Ok(());
    }
    let deleted = get(c, tenant_id, user_id, now)?.ok_or_else(|| {
        DirectoryError::NotFound(format!(
            "deleted user {user_id} in tenant {tenant_id} (not in the recycle bin: never deleted, or deleted more than \
             {RETENTION_DAYS} days ago)"
        ))
    })?;
    let u = &deleted.guest;
    let taken: Option<(String, String)> = c
        .prepare_cached(
            "SELECT id, CASE WHEN mail_lower = ?2 THEN 'mail' ELSE 'userPrincipalName' END FROM users
             WHERE tenant_id = ?1 AND (mail_lower = ?2 OR lower(user_principal_name) = lower(?3)) LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant_id, crate::core::validate::address_key(&u.mail), u.user_principal_name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .ctx("looking up a user")?;
    if let Some((other, property)) = taken {
        let value = if property == "mail" { &u.mail } else { &u.user_principal_name };
        return Err(DirectoryError::Conflict(format!(
            "cannot restore deleted user {} ({}) of tenant {tenant_id}: its {property} {value} belongs to live user {other}; \
             delete or rename that user first",
            u.mail, u.id
        )));
    }
    c.prepare_cached(
        "INSERT INTO users (id, tenant_id, user_principal_name, mail, mail_lower, display_name, user_type, creation_type,
           external_user_state, external_user_state_change, account_enabled, attributes)
         SELECT id, tenant_id, user_principal_name, mail, mail_lower, display_name, user_type, creation_type,
           external_user_state, external_user_state_change, account_enabled, attributes
         FROM deleted_users WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| s.execute(params![tenant_id, user_id]))
    .ctx("restoring a user")?;
    c.prepare_cached(
        "INSERT OR IGNORE INTO group_members (group_id, user_id)
         SELECT g.id, ?2 FROM groups g
         WHERE g.tenant_id = ?1 AND g.id IN (SELECT value FROM json_each(
           (SELECT group_ids FROM deleted_users WHERE tenant_id = ?1 AND id = ?2)))",
    )
    .and_then(|mut s| s.execute(params![tenant_id, user_id]))
    .ctx("restoring a user's group memberships")?;
    c.execute("DELETE FROM deleted_users WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, user_id])
        .ctx("emptying the recycle bin")?;
    feed::append(c, tenant_id, "user", user_id, "restored")?;
    Ok(())
}

fn purge_tenant(c: &Connection, tenant_id: &str, now: DateTime<Utc>) -> Result<usize> {
    c.prepare_cached("DELETE FROM deleted_users WHERE tenant_id = ?1 AND deleted_at <= ?2")
        .and_then(|mut s| s.execute(params![tenant_id, cutoff(now)]))
        .ctx("purging the recycle bin")
}

/// Erases for good every user deleted more than 30 days before `now`, in every tenant; how many.
pub(super) fn purge(c: &Connection, now: DateTime<Utc>) -> Result<usize> {
    c.prepare_cached("DELETE FROM deleted_users WHERE deleted_at <= ?1")
        .and_then(|mut s| s.execute(params![cutoff(now)]))
        .ctx("purging the recycle bin")
}
