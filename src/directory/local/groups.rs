//! Security groups and their memberships. Operations name groups by display name; the directory
//! gives them ids (which cross-tenant settings target, R9).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed};
use crate::core::model::Group;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// The tenant's groups, by display name.
pub(super) fn list(c: &Connection, tenant_id: &str) -> Result<Vec<Group>> {
    let mut s = c
        .prepare_cached("SELECT id, display_name FROM groups WHERE tenant_id = ?1 ORDER BY display_name")
        .ctx("reading groups")?;
    s.query_map([tenant_id], |r| Ok(Group { id: r.get(0)?, display_name: r.get(1)? }))
        .and_then(|rows| rows.collect())
        .ctx("reading groups")
}

fn id_of(c: &Connection, tenant_id: &str, display_name: &str) -> Result<Option<String>> {
    c.prepare_cached("SELECT id FROM groups WHERE tenant_id = ?1 AND display_name = ?2")
        .and_then(|mut s| s.query_row(params![tenant_id, display_name], |r| r.get(0)).optional())
        .ctx("looking up a group")
}

/// The tenant's group with this display name, inside a transaction of the emulator (which creates a group,
/// then keeps what Graph clients see of it beside it).
pub(crate) fn named(c: &Connection, tenant_id: &str, display_name: &str) -> Result<Group> {
    let tenant_id = tenant_id.trim().to_ascii_lowercase();
    let id = id_of(c, &tenant_id, display_name)?
        .ok_or_else(|| DirectoryError::Invalid(format!("group {display_name:?} does not exist in tenant {tenant_id}")))?;
    Ok(Group { id, display_name: display_name.to_string() })
}

/// The ids of the members of the group with this display name; `None` when there is no such group.
pub(super) fn member_ids(c: &Connection, tenant_id: &str, display_name: &str) -> Result<Option<BTreeSet<String>>> {
    let Some(group_id) = id_of(c, tenant_id, display_name)? else { return Ok(None) };
    let mut s = c.prepare_cached("SELECT user_id FROM group_members WHERE group_id = ?1").ctx("reading group members")?;
    s.query_map([group_id], |r| r.get(0)).and_then(|rows| rows.collect()).map(Some).ctx("reading group members")
}

/// Creates the groups that do not exist yet.
pub(super) fn ensure(c: &Connection, tenant_id: &str, display_names: &[String]) -> Result<()> {
    for name in display_names {
        if id_of(c, tenant_id, name)?.is_some() {
            continue;
        }
        let id = uuid::Uuid::new_v4().to_string();
        c.execute("INSERT INTO groups (id, tenant_id, display_name) VALUES (?1, ?2, ?3)", params![id, tenant_id, name])
            .ctx("creating a group")?;
        feed::append(c, tenant_id, "group", &id, "created")?;
    }
    Ok(())
}

/// The ids of groups named by display name; an unknown name is an invalid request.
pub(super) fn ids(c: &Connection, tenant_id: &str, display_names: &[String]) -> Result<Vec<String>> {
    display_names
        .iter()
        .map(|name| {
            id_of(c, tenant_id, name)?.ok_or_else(|| {
                DirectoryError::Invalid(format!("group {name:?} does not exist in tenant {tenant_id} (declare it on the tenant)"))
            })
        })
        .collect()
}

/// Adds a membership; `false` when it was already there.
pub(super) fn add(c: &Connection, group_id: &str, user_id: &str) -> Result<bool> {
    let n = c
        .prepare_cached("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![group_id, user_id]))
        .ctx("adding a group member")?;
    Ok(n > 0)
}

/// Removes a membership; `false` when it was not there.
pub(super) fn remove(c: &Connection, group_id: &str, user_id: &str) -> Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")
        .and_then(|mut s| s.execute(params![group_id, user_id]))
        .ctx("removing a group member")?;
    Ok(n > 0)
}

/// The ids of the groups a user belongs to.
pub(super) fn of_user(c: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut s = c
        .prepare_cached("SELECT group_id FROM group_members WHERE user_id = ?1 ORDER BY group_id")
        .ctx("reading group memberships")?;
    s.query_map([user_id], |r| r.get(0)).and_then(|rows| rows.collect()).ctx("reading group memberships")
}

// ---------------------------------------------------------------------------------------------
// The membership change log (migration 9): written by triggers on `group_members`, read as deltas.

/// The log's last sequence number (the horizon when everything was purged).
pub(super) fn log_end(c: &Connection) -> Result<i64> {
    c.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM group_member_log), 0), (SELECT seq FROM group_member_log_horizon WHERE id = 1))",
        [],
        |r| r.get(0),
    )
    .ctx("reading the membership log")
}

/// The last sequence number purged: a cursor before it cannot be answered.
pub(super) fn log_horizon(c: &Connection) -> Result<i64> {
    c.query_row("SELECT seq FROM group_member_log_horizon WHERE id = 1", [], |r| r.get(0)).ctx("reading the membership log")
}

/// The members of a group by id; `None` when there is no such group in the tenant.
pub(super) fn member_ids_of(c: &Connection, tenant_id: &str, group_id: &str) -> Result<Option<BTreeSet<String>>> {
    let exists: Option<String> = c
        .prepare_cached("SELECT id FROM groups WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![tenant_id, group_id], |r| r.get(0)).optional())
        .ctx("looking up a group")?;
    if exists.is_none() {
        return Ok(None);
    }
    let mut s = c.prepare_cached("SELECT user_id FROM group_members WHERE group_id = ?1").ctx("reading group members")?;
    s.query_map([group_id], |r| r.get(0)).and_then(|rows| rows.collect()).map(Some).ctx("reading group members")
}

/// The net membership changes of a group after `from` up to `to`: for each user whose membership
/// changed, whether it ended added (`true`) or removed (`false`), by user id.
pub(super) fn log_changes(c: &Connection, group_id: &str, from: i64, to: i64) -> Result<Vec<(String, bool)>> {
    let mut s = c
        .prepare_cached(
            "SELECT user_id, added FROM group_member_log
             WHERE group_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )
        .ctx("reading the membership log")?;
    let rows: Vec<(String, bool)> = s
        .query_map(params![group_id, from, to], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .ctx("reading the membership log")?;
    let net: std::collections::BTreeMap<String, bool> = rows.into_iter().collect();
    Ok(net.into_iter().collect())
}

/// Drops log entries written before `cutoff` (RFC 3339, UTC), moving the horizon past them.
pub(super) fn purge_log(c: &Connection, cutoff: &str) -> Result<usize> {
    let last: Option<i64> = c
        .query_row("SELECT MAX(seq) FROM group_member_log WHERE at < ?1", [cutoff], |r| r.get(0))
        .ctx("reading the membership log")?;
    let Some(last) = last else { return Ok(0) };
    let n = c.execute("DELETE FROM group_member_log WHERE seq <= ?1", [last]).ctx("purging the membership log")?;
    c.execute("UPDATE group_member_log_horizon SET seq = MAX(seq, ?1) WHERE id = 1", [last])
        .ctx("moving the membership log horizon")?;
    Ok(n)
}

/// `Directory::group_member_changes` for the local directory. The cursor is `{group id}:{log
/// sequence}`; one for another group (the name now belongs to a recreated group), one that does not
/// parse, is beyond the log's end (another file) or before its horizon (purged) reads in full.
pub(super) fn member_changes(
    c: &Connection,
    tenant_id: &str,
    display_name: &str,
    cursor: Option<&str>,
) -> Result<Option<crate::directory::MemberChanges>> {
    let Some(group_id) = id_of(c, tenant_id, display_name)? else { return Ok(None) };
    let end = log_end(c)?;
    let horizon = log_horizon(c)?;
    let from = cursor
        .and_then(|cur| cur.trim().rsplit_once(':'))
        .filter(|(gid, _)| *gid == group_id)
        .and_then(|(_, seq)| seq.parse::<i64>().ok())
        .filter(|seq| (horizon..=end).contains(seq));
    let next = Some(format!("{group_id}:{end}"));
    let Some(from) = from else {
        let added = member_ids_of(c, tenant_id, &group_id)?.unwrap_or_default();
        return Ok(Some(crate::directory::MemberChanges { added, removed: BTreeSet::new(), cursor: next, full: true }));
    };
    let mut changes = crate::directory::MemberChanges { cursor: next, ..Default::default() };
    for (user, added) in log_changes(c, &group_id, from, end)? {
        if added {
            changes.added.insert(user);
        } else {
            changes.removed.insert(user);
        }
    }
    Ok(Some(changes))
}

/// What the emulator's `/groups` and `/groups/delta` read and write.
impl super::LocalDirectory {
    /// Deletes a group by id with its memberships (each removal goes to the membership log), then runs
    /// `then` in the same transaction; `None` when the tenant has no such group. Security groups do not
    /// go to the recycle bin, in Graph either.
    pub(crate) fn delete_group_then<T>(
        &self,
        tenant_id: &str,
        group_id: &str,
        then: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let tenant_id = tenant_id.trim().to_ascii_lowercase();
        self.write(|c| {
            let n = c
                .execute("DELETE FROM groups WHERE tenant_id = ?1 AND id = ?2 COLLATE NOCASE", params![tenant_id, group_id])
                .ctx("deleting a group")?;
            if n == 0 {
                return Ok(None);
            }
            feed::append(c, &tenant_id, "group", &group_id.to_ascii_lowercase(), "deleted")?;
            then(c).map(Some)
        })
    }

    /// The membership log's last sequence number and its horizon (the last one purged).
    pub(crate) fn membership_log_bounds(&self) -> Result<(i64, i64)> {
        self.read(|c| Ok((log_end(c)?, log_horizon(c)?)))
    }

    /// The members of a group by id; `None` when the tenant has no such group.
    pub(crate) fn group_members_by_id(&self, tenant_id: &str, group_id: &str) -> Result<Option<BTreeSet<String>>> {
        let tenant_id = tenant_id.trim().to_ascii_lowercase();
        self.read(|c| member_ids_of(c, &tenant_id, group_id))
    }

    /// The net membership changes of a group by id after `from` up to `to` (user id, added).
    pub(crate) fn group_member_log(&self, group_id: &str, from: i64, to: i64) -> Result<Vec<(String, bool)>> {
        self.read(|c| log_changes(c, group_id, from, to))
    }

    /// Forgets membership changes older than 7 days before `now` (Graph's delta tokens live 7 days):
    /// cursors older than that read in full again (the emulator answers 410 Gone). Returns how many
    /// entries went.
    pub fn purge_membership_log(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize> {
        let cutoff = (now - chrono::Duration::days(7)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        self.write(|c| purge_log(c, &cutoff))
    }
}
