//! Users: guests created by invitation (R6), home-tenant members, group memberships and the redeem
//! tickets behind invitation URLs. No credential is ever stored: guests sign in at home (R7).

use std::collections::{BTreeSet, HashMap};

use rand::Rng;
use rand::distr::Alphanumeric;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::gates::Policies;
use super::{Ctx, feed, groups, now, tenants};
use crate::core::model::{GuestUser, RedemptionState, UserType};
use crate::core::operation::{GuestPatch, InvitationRequest, InvitationResult};
use crate::core::validate;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

const COLUMNS: &str = "id, mail, display_name, user_principal_name, user_type, creation_type, \
                       external_user_state, external_user_state_change, account_enabled";

/// What Graph answers `creationType` for an invited user.
const INVITATION: &str = "Invitation";
/// Where a redeemed invitation lands when no redirect URL is known.
const DEFAULT_REDIRECT: &str = "https://myapps.microsoft.com";

fn read_user(r: &Row<'_>) -> rusqlite::Result<GuestUser> {
    let bad = |i: usize, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("unexpected value {v:?}").into())
    };
    let user_type: String = r.get(4)?;
    let state: Option<String> = r.get(6)?;
    Ok(GuestUser {
        id: r.get(0)?,
        mail: r.get(1)?,
        display_name: r.get(2)?,
        user_principal_name: r.get(3)?,
        user_type: UserType::parse(&user_type).ok_or_else(|| bad(4, &user_type))?,
        creation_type: r.get(5)?,
        external_user_state: match state {
            Some(s) => Some(RedemptionState::parse(&s).ok_or_else(|| bad(6, &s))?),
            None => None,
        },
        external_user_state_change_date_time: r.get(7)?,
        account_enabled: r.get(8)?,
        group_ids: BTreeSet::new(),
    })
}

/// The tenant's users (only guests: created by invitation or of type Guest), each with its groups,
/// in two queries whatever their number.
pub(super) fn list(c: &Connection, tenant_id: &str, guests_only: bool) -> Result<Vec<GuestUser>> {
    let filter = if guests_only { " AND (creation_type = 'Invitation' OR user_type = 'Guest')" } else { "" };
    let mut s = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = ?1{filter} ORDER BY mail_lower, id"))
        .ctx("reading users")?;
    let mut users: Vec<GuestUser> = s.query_map([tenant_id], read_user).and_then(|rows| rows.collect()).ctx("reading users")?;
    let mut s = c
        .prepare_cached(
            "SELECT gm.user_id, gm.group_id FROM group_members gm
             JOIN users u ON u.id = gm.user_id WHERE u.tenant_id = ?1",
        )
        .ctx("reading group memberships")?;
    let mut memberships: HashMap<String, BTreeSet<String>> = HashMap::new();
    let rows =
        s.query_map([tenant_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).ctx("reading group memberships")?;
    for row in rows {
        let (user, group) = row.ctx("reading group memberships")?;
        memberships.entry(user).or_default().insert(group);
    }
    for u in &mut users {
        if let Some(g) = memberships.remove(&u.id) {
            u.group_ids = g;
        }
    }
    Ok(users)
}

fn with_groups(c: &Connection, user: Option<GuestUser>) -> Result<Option<GuestUser>> {
    let Some(mut user) = user else { return Ok(None) };
    user.group_ids = groups::of_user(c, &user.id)?.into_iter().collect();
    Ok(Some(user))
}

pub(super) fn by_id(c: &Connection, tenant_id: &str, user_id: &str) -> Result<Option<GuestUser>> {
    let user = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = ?1 AND id = ?2"))
        .and_then(|mut s| s.query_row(params![tenant_id, user_id], read_user).optional())
        .ctx("reading a user")?;
    with_groups(c, user)
}

/// The user whose id or user principal name is `key` (case-insensitive; an id match wins), in one query.
pub(super) fn by_id_or_upn(c: &Connection, tenant_id: &str, key: &str) -> Result<Option<GuestUser>> {
    let user = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = ?1 AND (lower(id) = lower(?2) OR lower(user_principal_name) = lower(?2))
             ORDER BY lower(id) = lower(?2) DESC LIMIT 1"
        ))
        .and_then(|mut s| s.query_row(params![tenant_id, key], read_user).optional())
        .ctx("reading a user")?;
    with_groups(c, user)
}

/// The user with this mail, case-insensitively (one per tenant, R6).
pub(super) fn by_mail(c: &Connection, tenant_id: &str, mail: &str) -> Result<Option<GuestUser>> {
    let user = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = ?1 AND mail_lower = ?2"))
        .and_then(|mut s| s.query_row(params![tenant_id, mail.trim().to_ascii_lowercase()], read_user).optional())
        .ctx("reading a user")?;
    with_groups(c, user)
}

pub(super) fn id_by_mail(c: &Connection, tenant_id: &str, mail: &str) -> Result<Option<String>> {
    c.prepare_cached("SELECT id FROM users WHERE tenant_id = ?1 AND mail_lower = ?2")
        .and_then(|mut s| s.query_row(params![tenant_id, mail.trim().to_ascii_lowercase()], |r| r.get(0)).optional())
        .ctx("looking up a user")
}

fn require(c: &Connection, tenant_id: &str, user_id: &str) -> Result<GuestUser> {
    by_id(c, tenant_id, user_id)?.ok_or_else(|| DirectoryError::NotFound(format!("user {user_id} in tenant {tenant_id}")))
}

/// R6: invites `req.invited_user_email_address`, or re-invites the user who already has that
/// address (same id, fresh redeem URL). Refused invitations write nothing (R3–R5, R9).
pub(super) fn invite(
    c: &Connection,
    tenant_id: &str,
    req: &InvitationRequest,
    policies: &mut Policies,
) -> Result<InvitationResult> {
    let email = req.invited_user_email_address.trim();
    validate::email(email).map_err(DirectoryError::Invalid)?;
    policies.check_invitation(c, tenant_id, email)?;
    let group_ids = groups::ids(c, tenant_id, &req.groups)?;

    let existing = c
        .prepare_cached(
            "SELECT id, user_principal_name, external_user_state FROM users
             WHERE tenant_id = ?1 AND mail_lower = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant_id, email.to_ascii_lowercase()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .optional()
        })
        .ctx("looking up an invited user")?;
    let (user_id, upn, state, created) = match existing {
        Some((id, upn, state)) => (id, upn, state, false),
        None => {
            let (id, upn) = create_guest(c, tenant_id, email, req)?;
            (id, upn, Some(RedemptionState::PendingAcceptance.as_str().to_string()), true)
        }
    };
    let mut joined = false;
    for g in &group_ids {
        joined |= groups::add(c, g, &user_id)?;
    }
    if joined && !created {
        feed::append(c, tenant_id, "user", &user_id, "updated")?;
    }
    let invite_redeem_url = issue_ticket(c, tenant_id, &user_id, &req.invite_redirect_url)?;
    // Graph reports an invitation of someone who already redeemed as completed.
    let status = match state.as_deref() {
        Some("Accepted") => "Completed",
        _ => "PendingAcceptance",
    };
    Ok(InvitationResult { user_id, user_principal_name: upn, invite_redeem_url, status: status.to_string() })
}

fn create_guest(c: &Connection, tenant_id: &str, email: &str, req: &InvitationRequest) -> Result<(String, String)> {
    let initial_domain: String = c
        .prepare_cached("SELECT initial_domain FROM tenants WHERE id = ?1")
        .and_then(|mut s| s.query_row([tenant_id], |r| r.get(0)).optional())
        .ctx("reading a tenant")?
        .ok_or_else(|| DirectoryError::TenantNotFound(tenant_id.to_string()))?;
    let id = uuid::Uuid::new_v4().to_string();
    // graph-contract 1.2: `alice@fabrikam.com` becomes `alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`.
    let upn = format!("{}#EXT#@{initial_domain}", email.replace('@', "_"));
    c.prepare_cached(
        "INSERT INTO users (id, tenant_id, user_principal_name, mail, mail_lower, display_name,
           user_type, creation_type, external_user_state, external_user_state_change, account_enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            tenant_id,
            upn,
            email,
            email.to_ascii_lowercase(),
            req.invited_user_display_name,
            req.invited_user_type.as_str(),
            INVITATION,
            RedemptionState::PendingAcceptance.as_str(),
            now(),
        ])
    })
    .ctx("creating a guest")?;
    feed::append(c, tenant_id, "user", &id, "created")?;
    Ok((id, upn))
}

/// A new redeem ticket for the user, as the URL the invitation answer carries (R6).
fn issue_ticket(c: &Connection, tenant_id: &str, user_id: &str, redirect_url: &str) -> Result<String> {
    let ticket: String = rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    c.prepare_cached(
        "INSERT INTO invitations (ticket, tenant_id, user_id, redirect_url, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![ticket, tenant_id, user_id, redirect_url, now()]))
    .ctx("issuing a redeem ticket")?;
    feed::append(c, tenant_id, "invitation", user_id, "issued")?;
    Ok(format!("entente://redeem?tenant={tenant_id}&ticket={ticket}"))
}

/// `entente://redeem?tenant=<id>&ticket=<ticket>` → (tenant id, ticket).
pub(super) fn parse_redeem_url(url: &str) -> Result<(String, String)> {
    let invalid = || {
        DirectoryError::Invalid(format!("{url:?} is not a redeem URL (expected entente://redeem?tenant=<id>&ticket=<ticket>)"))
    };
    let query = url.trim().strip_prefix("entente://redeem?").ok_or_else(invalid)?;
    let (mut tenant, mut ticket) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("tenant", v)) if !v.is_empty() => tenant = Some(v.to_ascii_lowercase()),
            Some(("ticket", v)) if !v.is_empty() => ticket = Some(v.to_string()),
            _ => {}
        }
    }
    Ok((tenant.ok_or_else(invalid)?, ticket.ok_or_else(invalid)?))
}

/// The user a redeem ticket was issued for.
pub(super) fn ticket_user(c: &Connection, tenant_id: &str, ticket: &str) -> Result<String> {
    c.query_row("SELECT user_id FROM invitations WHERE tenant_id = ?1 AND ticket = ?2", params![tenant_id, ticket], |r| r.get(0))
        .optional()
        .ctx("reading a redeem ticket")?
        .ok_or_else(|| {
            DirectoryError::NotFound(format!(
                "redeem ticket in tenant {tenant_id} (it was replaced by a redemption reset, or the guest was deleted)"
            ))
        })
}

/// The invited person redeems (R6): Accepted, with the time. A pending invitation is redeemed only
/// while the settings still allow it (R3 second example); an accepted guest stays accepted.
pub(super) fn redeem(c: &Connection, tenant_id: &str, user_id: &str) -> Result<GuestUser> {
    let user = require(c, tenant_id, user_id)?;
    match user.external_user_state {
        None => {
            return Err(DirectoryError::Invalid(format!(
                "{} ({}) was not invited to tenant {tenant_id}: there is no invitation to redeem",
                user.mail, user.id
            )));
        }
        Some(RedemptionState::Accepted) => return Ok(user),
        Some(RedemptionState::PendingAcceptance) => {}
    }
    Policies::default().check_redemption(c, tenant_id, &user.mail)?;
    c.execute(
        "UPDATE users SET external_user_state = ?1, external_user_state_change = ?2 WHERE id = ?3",
        params![RedemptionState::Accepted.as_str(), now(), user.id],
    )
    .ctx("redeeming an invitation")?;
    feed::append(c, tenant_id, "user", &user.id, "redeemed")?;
    require(c, tenant_id, user_id)
}

/// R6 `resetRedemption`: back to PendingAcceptance with a fresh redeem URL (older URLs stop
/// working); the id and group memberships stay.
pub(super) fn reset_redemption(c: &Connection, tenant_id: &str, user_id: &str) -> Result<InvitationResult> {
    tenants::require(c, tenant_id)?;
    let user = require(c, tenant_id, user_id)?;
    if user.external_user_state.is_none() && user.creation_type.as_deref() != Some(INVITATION) {
        return Err(DirectoryError::Invalid(format!(
            "{} ({}) is not an external user of tenant {tenant_id}: there is no redemption to reset",
            user.mail, user.id
        )));
    }
    let redirect: String = c
        .query_row(
            "SELECT redirect_url FROM invitations WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
            [&user.id],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading a redeem ticket")?
        .unwrap_or_else(|| DEFAULT_REDIRECT.to_string());
    c.execute("DELETE FROM invitations WHERE user_id = ?1", [&user.id]).ctx("revoking redeem tickets")?;
    c.execute(
        "UPDATE users SET external_user_state = ?1, external_user_state_change = ?2 WHERE id = ?3",
        params![RedemptionState::PendingAcceptance.as_str(), now(), user.id],
    )
    .ctx("resetting a redemption")?;
    feed::append(c, tenant_id, "user", &user.id, "redemptionReset")?;
    let invite_redeem_url = issue_ticket(c, tenant_id, &user.id, &redirect)?;
    Ok(InvitationResult {
        user_id: user.id,
        user_principal_name: user.user_principal_name,
        invite_redeem_url,
        status: RedemptionState::PendingAcceptance.as_str().to_string(),
    })
}

/// A member of the tenant itself (userType Member, no creationType, UPN = mail): someone a partner
/// tenant can invite. Adding an existing member again returns its id.
pub(super) fn add_member(c: &Connection, tenant_id: &str, mail: &str, display_name: Option<&str>) -> Result<String> {
    let mail = mail.trim();
    validate::email(mail).map_err(DirectoryError::Invalid)?;
    tenants::require(c, tenant_id)?;
    if let Some(u) = by_mail(c, tenant_id, mail)? {
        if u.user_type == UserType::Member && u.creation_type.is_none() {
            return Ok(u.id);
        }
        return Err(DirectoryError::Conflict(format!("{mail} is already an invited user of tenant {tenant_id} ({})", u.id)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    c.execute(
        "INSERT INTO users (id, tenant_id, user_principal_name, mail, mail_lower, display_name,
           user_type, account_enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
        params![id, tenant_id, mail, mail, mail.to_ascii_lowercase(), display_name, UserType::Member.as_str()],
    )
    .ctx("creating a member")?;
    feed::append(c, tenant_id, "user", &id, "created")?;
    Ok(id)
}

/// Applies a `GuestPatch`. Removing a membership of a group that does not exist is a no-op.
pub(super) fn update(c: &Connection, tenant_id: &str, user_id: &str, patch: &GuestPatch) -> Result<()> {
    let user = require(c, tenant_id, user_id)?;
    let mut changed = false;
    if let Some(name) = patch.display_name.as_deref().filter(|n| user.display_name.as_deref() != Some(*n)) {
        c.execute("UPDATE users SET display_name = ?1 WHERE id = ?2", params![name, user.id]).ctx("renaming a guest")?;
        changed = true;
    }
    if let Some(t) = patch.user_type.filter(|t| *t != user.user_type) {
        c.execute("UPDATE users SET user_type = ?1 WHERE id = ?2", params![t.as_str(), user.id])
            .ctx("changing a guest's user type")?;
        changed = true;
    }
    for g in groups::ids(c, tenant_id, &patch.add_to_groups)? {
        changed |= groups::add(c, &g, &user.id)?;
    }
    if !patch.remove_from_groups.is_empty() {
        let existing: HashMap<String, String> = groups::list(c, tenant_id)?.into_iter().map(|g| (g.display_name, g.id)).collect();
        for name in &patch.remove_from_groups {
            if let Some(g) = existing.get(name) {
                changed |= groups::remove(c, g, &user.id)?;
            }
        }
    }
    if changed {
        feed::append(c, tenant_id, "user", &user.id, "updated")?;
    }
    Ok(())
}

/// Deletes the user; memberships and redeem tickets go with it (foreign keys cascade).
/// `false` when there was no such user.
pub(super) fn delete(c: &Connection, tenant_id: &str, user_id: &str) -> Result<bool> {
    let n =
        c.execute("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, user_id]).ctx("deleting a user")?;
    if n > 0 {
        feed::append(c, tenant_id, "user", user_id, "deleted")?;
    }
    Ok(n > 0)
}
