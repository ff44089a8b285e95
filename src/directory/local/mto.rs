//! Multi-tenant organizations (R15): the owner's organization and member list (`mto`, `mto_members`)
//! and each member's own join request (`mto_join_requests`).
//!
//! A member is active when both sides agree: the owner lists it and its join request names the
//! owner. The state is worked out when read, so it never goes stale when either side changes.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed, now};
use crate::core::mto::{MtoJoinRequest, MtoMember, MtoMemberState, MtoOrganization, MtoRole, MtoState};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// The organization row, with what Graph shows besides the core's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRow {
    pub id: String,
    pub owner_tenant_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// A member as the owner lists it, with its state worked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub member: MtoMember,
    pub added_at: String,
    pub joined_at: Option<String>,
}

/// A tenant's join request, with its state worked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequestRow {
    pub request: MtoJoinRequest,
    pub requested_at: String,
}

fn owned(c: &Connection, tenant_id: &str) -> Result<Option<OrganizationRow>> {
    c.query_row("SELECT id, display_name, description, created_at FROM mto WHERE tenant_id = ?1", [tenant_id], |r| {
        Ok(OrganizationRow {
            id: r.get(0)?,
            owner_tenant_id: tenant_id.to_string(),
            display_name: r.get(1)?,
            description: r.get(2)?,
            created_at: r.get(3)?,
        })
    })
    .optional()
    .ctx("reading the multi-tenant organization")
}

/// When `member` asked to join `owner`'s organization (its join request names the owner).
fn joined_at(c: &Connection, member: &str, owner: &str) -> Result<Option<String>> {
    c.query_row(
        "SELECT requested_at FROM mto_join_requests WHERE tenant_id = ?1 AND added_by_tenant_id = ?2",
        params![member, owner],
        |r| r.get(0),
    )
    .optional()
    .ctx("reading a join request")
}

/// The members `owner` lists, the owner first.
pub(crate) fn members(c: &Connection, owner: &str) -> Result<Vec<MemberRow>> {
    let mut s = c
        .prepare_cached(
            "SELECT member_tenant_id, display_name, role, added_at FROM mto_members WHERE owner_tenant_id = ?1 \
             ORDER BY role = 'member', member_tenant_id",
        )
        .ctx("reading organization members")?;
    let rows = s
        .query_map([owner], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, Option<String>, String, String)>>>())
        .ctx("reading organization members")?;
    let mut out = Vec::with_capacity(rows.len());
    for (tenant_id, display_name, role, added_at) in rows {
        let role = MtoRole::parse(&role).unwrap_or(MtoRole::Member);
        let joined = if role == MtoRole::Owner { Some(added_at.clone()) } else { joined_at(c, &tenant_id, owner)? };
        let state = if joined.is_some() { MtoMemberState::Active } else { MtoMemberState::Pending };
        out.push(MemberRow { member: MtoMember { tenant_id, display_name, role, state }, added_at, joined_at: joined });
    }
    Ok(out)
}

/// The tenant's own join request.
pub(crate) fn join_request(c: &Connection, tenant_id: &str) -> Result<Option<JoinRequestRow>> {
    let row: Option<(String, String)> = c
        .query_row("SELECT added_by_tenant_id, requested_at FROM mto_join_requests WHERE tenant_id = ?1", [tenant_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .ctx("reading the join request")?;
    let Some((owner, requested_at)) = row else { return Ok(None) };
    let listed: bool = c
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM mto_members WHERE owner_tenant_id = ?1 AND member_tenant_id = ?2)",
            params![owner, tenant_id],
            |r| r.get(0),
        )
        .ctx("reading the join request")?;
    let member_state = if listed { MtoMemberState::Active } else { MtoMemberState::Pending };
    Ok(Some(JoinRequestRow { request: MtoJoinRequest { added_by_tenant_id: owner, member_state }, requested_at }))
}

/// The organization the tenant sees: the one it owns, or the one it is an active member of.
pub(crate) fn organization(c: &Connection, tenant_id: &str) -> Result<Option<(OrganizationRow, Vec<MemberRow>)>> {
    if let Some(org) = owned(c, tenant_id)? {
        let members = members(c, tenant_id)?;
        return Ok(Some((org, members)));
    }
    match join_request(c, tenant_id)? {
        Some(j) if j.request.member_state == MtoMemberState::Active => {
            let owner = j.request.added_by_tenant_id;
            match owned(c, &owner)? {
                Some(org) => {
                    let members = members(c, &owner)?;
                    Ok(Some((org, members)))
                }
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// For the snapshot: `None` when the tenant neither sees an organization nor asked to join one.
pub(super) fn state(c: &Connection, tenant_id: &str) -> Result<Option<MtoState>> {
    let organization = organization(c, tenant_id)?.map(|(org, members)| MtoOrganization {
        id: org.id,
        display_name: org.display_name,
        description: org.description,
        members: members.into_iter().map(|m| m.member).collect(),
    });
    let join_request = join_request(c, tenant_id)?.map(|j| j.request);
    if organization.is_none() && join_request.is_none() {
        return Ok(None);
    }
    Ok(Some(MtoState { organization, join_request }))
}

/// Creates the tenant's organization with the tenant as owner, or renames it.
pub(super) fn put(c: &Connection, tenant_id: &str, display_name: &str, description: Option<&str>) -> Result<()> {
    if let Some(j) = join_request(c, tenant_id)? {
        return Err(DirectoryError::Conflict(format!(
            "tenant {tenant_id} has asked to join the organization of {}; it cannot own one",
            j.request.added_by_tenant_id
        )));
    }
    let at = now();
    c.execute(
        "INSERT INTO mto (tenant_id, id, display_name, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant_id) DO UPDATE SET display_name = excluded.display_name, description = excluded.description",
        params![tenant_id, uuid::Uuid::new_v4().to_string(), display_name, description, at],
    )
    .ctx("writing the multi-tenant organization")?;
    c.execute(
        "INSERT INTO mto_members (owner_tenant_id, member_tenant_id, display_name, role, state, added_at) \
         VALUES (?1, ?1, NULL, 'owner', 'active', ?2) ON CONFLICT DO NOTHING",
        params![tenant_id, at],
    )
    .ctx("listing the owner of the multi-tenant organization")?;
    feed::append(c, tenant_id, "multiTenantOrganization", tenant_id, "updated")
}

/// Lists a member (pending until it joins). Listing one already listed changes nothing.
pub(super) fn add_member(c: &Connection, owner: &str, member: &str, display_name: Option<&str>, role: MtoRole) -> Result<()> {
    if owned(c, owner)?.is_none() {
        return Err(DirectoryError::NotFound(format!("the multi-tenant organization of tenant {owner}")));
    }
    let member = member.trim().to_ascii_lowercase();
    if member == owner {
        return Ok(());
    }
    c.execute(
        "INSERT INTO mto_members (owner_tenant_id, member_tenant_id, display_name, role, state, added_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5) \
         ON CONFLICT (owner_tenant_id, member_tenant_id) DO UPDATE SET display_name = excluded.display_name, role = excluded.role",
        params![owner, member, display_name, role.as_str(), now()],
    )
    .ctx("adding an organization member")?;
    feed::append(c, owner, "multiTenantOrganizationMember", &member, "added")
}

/// Removes a member. Removing one not listed changes nothing; the owner cannot be removed.
pub(super) fn remove_member(c: &Connection, owner: &str, member: &str) -> Result<()> {
    let member = member.trim().to_ascii_lowercase();
    if member == owner {
        return Err(DirectoryError::Invalid("the owner of a multi-tenant organization cannot be removed".into()));
    }
    let n = c
        .execute("DELETE FROM mto_members WHERE owner_tenant_id = ?1 AND member_tenant_id = ?2", params![owner, member])
        .ctx("removing an organization member")?;
    if n > 0 {
        feed::append(c, owner, "multiTenantOrganizationMember", &member, "removed")?;
    }
    Ok(())
}

/// The tenant asks to join `owner`'s organization (replacing any earlier request).
pub(super) fn join(c: &Connection, tenant_id: &str, owner: &str) -> Result<()> {
    let owner = owner.trim().to_ascii_lowercase();
    if owner == tenant_id {
        return Err(DirectoryError::Invalid("a tenant cannot join its own organization".into()));
    }
    if owned(c, tenant_id)?.is_some() {
        return Err(DirectoryError::Conflict(format!(
            "tenant {tenant_id} owns a multi-tenant organization; it cannot join another"
        )));
    }
    c.execute(
        "INSERT INTO mto_join_requests (tenant_id, added_by_tenant_id, requested_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant_id) DO UPDATE SET added_by_tenant_id = excluded.added_by_tenant_id, \
         requested_at = CASE WHEN added_by_tenant_id = excluded.added_by_tenant_id THEN requested_at ELSE excluded.requested_at END",
        params![tenant_id, owner, now()],
    )
    .ctx("writing the join request")?;
    feed::append(c, tenant_id, "multiTenantOrganizationJoinRequest", tenant_id, "updated")
}

/// The tenant withdraws its join request. Without one, nothing changes.
pub(super) fn leave(c: &Connection, tenant_id: &str) -> Result<()> {
    let n = c.execute("DELETE FROM mto_join_requests WHERE tenant_id = ?1", [tenant_id]).ctx("withdrawing the join request")?;
    if n > 0 {
        feed::append(c, tenant_id, "multiTenantOrganizationJoinRequest", tenant_id, "removed")?;
    }
    Ok(())
}

/// The owner of the organization the tenant is an active participant of (itself when it owns one).
fn active_in(c: &Connection, tenant_id: &str) -> Result<Option<String>> {
    if owned(c, tenant_id)?.is_some() {
        return Ok(Some(tenant_id.to_string()));
    }
    Ok(join_request(c, tenant_id)?
        .filter(|j| j.request.member_state == MtoMemberState::Active)
        .map(|j| j.request.added_by_tenant_id))
}

/// Whether both tenants are active in the same organization: their partner configurations for each
/// other are then marked `isInMultiTenantOrganization`, as Graph marks them (R15), whoever wrote them.
pub(super) fn pair_active(c: &Connection, a: &str, b: &str) -> Result<bool> {
    let Some(owner) = active_in(c, a)? else { return Ok(false) };
    Ok(active_in(c, &b.to_ascii_lowercase())?.is_some_and(|o| o == owner))
}

/// What the emulator serves: the organization the tenant sees (with its members) and its join request.
pub(crate) type MtoView = (Option<(OrganizationRow, Vec<MemberRow>)>, Option<JoinRequestRow>);

impl super::LocalDirectory {
    /// The organization a tenant sees and its own join request, read together.
    pub(crate) fn mto_view(&self, tenant_id: &str) -> Result<MtoView> {
        let t = super::norm(tenant_id);
        self.read(|c| Ok((organization(c, &t)?, join_request(c, &t)?)))
    }
}
