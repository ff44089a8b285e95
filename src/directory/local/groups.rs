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
