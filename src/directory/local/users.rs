//! Users: guests created by invitation (R6), home-tenant members, group memberships and the redeem
//! tickets behind invitation URLs. No credential is ever stored: guests sign in at home (R7).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::Rng;
use rand::distr::Alphanumeric;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::gates::Policies;
use super::{Ctx, feed, groups, now, tenants};
use crate::core::model::{GuestUser, RedemptionState, UserType};
use crate::core::operation::{GuestPatch, InvitationRequest, InvitationResult, ProvisionRequest};
use crate::core::sync::{DirectoryUser, is_profile_attribute};
use crate::core::validate;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

const COLUMNS: &str = "id, mail, display_name, user_principal_name, user_type, creation_type, \
                       external_user_state, external_user_state_change, account_enabled";

/// What Graph answers `creationType` for an invited user.
const INVITATION: &str = "Invitation";
/// Where a redeemed invitation lands when no redirect URL is known.
const DEFAULT_REDIRECT: &str = "https://myapps.microsoft.com";

pub(super) fn read_user(r: &Row<'_>) -> rusqlite::Result<GuestUser> {
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

/// R6: invites `req.invited_user_email_address`. The user who already has that address is the one
/// returned (never a duplicate): re-invited (same id, fresh redeem URL) with `re_invite`, otherwise
/// adopted as it is (no redeem URL, no email). Refused invitations write nothing (R3–R5, R9).
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
            s.query_row(params![tenant_id, crate::core::validate::address_key(email)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .optional()
        })
        .ctx("looking up an invited user")?;
    let (user_id, upn, state, created) = match existing {
        Some((id, upn, state)) => (id, upn, state, false),
        None => {
            let new = NewGuest {
                display_name: req.invited_user_display_name.as_deref(),
                user_type: req.invited_user_type,
                account_enabled: true,
                attributes: &BTreeMap::new(),
            };
            let (id, upn) = create_guest(c, tenant_id, email, new)?;
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
    // Create-if-absent unless a re-invitation is asked for: an existing user gets no new ticket (no email).
    let invite_redeem_url =
        if created || req.re_invite { issue_ticket(c, tenant_id, &user_id, &req.invite_redirect_url)? } else { String::new() };
    // Graph reports an invitation of someone who already redeemed as completed.
    let status = match state.as_deref() {
        Some("Accepted") => "Completed",
        _ => "PendingAcceptance",
    };
    Ok(InvitationResult { user_id, user_principal_name: upn, invite_redeem_url, status: status.to_string() })
}

/// What a new B2B collaboration user (invited or provisioned) starts with.
struct NewGuest<'a> {
    display_name: Option<&'a str>,
    user_type: UserType,
    account_enabled: bool,
    attributes: &'a BTreeMap<String, String>,
}

fn create_guest(c: &Connection, tenant_id: &str, email: &str, new: NewGuest<'_>) -> Result<(String, String)> {
    let initial_domain: String = c
        .prepare_cached("SELECT initial_domain FROM tenants WHERE id = ?1")
        .and_then(|mut s| s.query_row([tenant_id], |r| r.get(0)).optional())
        .ctx("reading a tenant")?
        .ok_or_else(|| DirectoryError::TenantNotFound(tenant_id.to_string()))?;
    let id = uuid::Uuid::new_v4().to_string();
    // graph-contract 1.2: `alice@fabrikam.com` becomes `alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`.
    let upn = format!("{}#EXT#@{initial_domain}", email.replace('@', "_"));
    let taken = c
        .prepare_cached("SELECT id FROM users WHERE tenant_id = ?1 AND user_principal_name = ?2")
        .and_then(|mut s| s.query_row(params![tenant_id, upn], |r| r.get::<_, String>(0)).optional())
        .ctx("looking up a user principal name")?;
    if let Some(other) = taken {
        return Err(DirectoryError::Conflict(format!(
            "user principal name {upn} already belongs to user {other} of tenant {tenant_id} (its mail was changed)"
        )));
    }
    let attributes = encode_attributes(new.attributes)?;
    c.prepare_cached(
        "INSERT INTO users (id, tenant_id, user_principal_name, mail, mail_lower, display_name,
           user_type, creation_type, external_user_state, external_user_state_change, account_enabled, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            tenant_id,
            upn,
            email,
            crate::core::validate::address_key(email),
            new.display_name,
            new.user_type.as_str(),
            INVITATION,
            RedemptionState::PendingAcceptance.as_str(),
            now(),
            new.account_enabled,
            attributes,
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

/// `entente://redeem?tenant=<id>&ticket=<ticket>` → (tenant id, ticket). The emulator hands the same
/// ticket out as `https://{host}/redeem?tenant=…&ticket=…` (Graph's redeem URLs are https): that form is
/// read too.
pub(super) fn parse_redeem_url(url: &str) -> Result<(String, String)> {
    let invalid = || {
        DirectoryError::Invalid(format!(
            "{url:?} is not a redeem URL (expected entente://redeem?tenant=<id>&ticket=<ticket>, or the emulator's \
             https://…/redeem?tenant=<id>&ticket=<ticket>)"
        ))
    };
    let url = url.trim();
    let query = match url.strip_prefix("entente://redeem?") {
        Some(q) => q,
        None => {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(invalid)?;
            let (_, path_and_query) = rest.split_once('/').ok_or_else(invalid)?;
            path_and_query.strip_prefix("redeem?").ok_or_else(invalid)?
        }
    };
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
/// tenant can invite, or a source user of cross-tenant sync. Adding an existing member again returns
/// its id (and sets the given attributes).
pub(super) fn add_member(
    c: &Connection,
    tenant_id: &str,
    mail: &str,
    display_name: Option<&str>,
    attributes: &BTreeMap<String, String>,
) -> Result<String> {
    let mail = mail.trim();
    validate::email(mail).map_err(DirectoryError::Invalid)?;
    check_attribute_names(attributes.keys())?;
    tenants::require(c, tenant_id)?;
    if let Some(u) = by_mail(c, tenant_id, mail)? {
        if u.user_type == UserType::Member && u.creation_type.is_none() {
            if !attributes.is_empty() {
                let patch = GuestPatch {
                    attributes: attributes.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
                    ..GuestPatch::default()
                };
                update(c, tenant_id, &u.id, &patch)?;
            }
            return Ok(u.id);
        }
        return Err(DirectoryError::Conflict(format!("{mail} is already an invited user of tenant {tenant_id} ({})", u.id)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let attributes_json = encode_attributes(attributes)?;
    c.prepare_cached(
        "INSERT INTO users (id, tenant_id, user_principal_name, mail, mail_lower, display_name,
           user_type, account_enabled, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            tenant_id,
            mail,
            mail,
            crate::core::validate::address_key(mail),
            display_name,
            UserType::Member.as_str(),
            attributes_json,
        ])
    })
    .ctx("creating a member")?;
    feed::append(c, tenant_id, "user", &id, "created")?;
    Ok(id)
}

/// Applies a `GuestPatch`. Removing a membership of a group that does not exist is a no-op. One
/// `user`/`updated` feed entry when anything changed, none otherwise.
pub(super) fn update(c: &Connection, tenant_id: &str, user_id: &str, patch: &GuestPatch) -> Result<()> {
    check_attribute_names(patch.attributes.keys())?;
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
    if let Some(mail) = patch.mail.as_deref().map(str::trim).filter(|m| *m != user.mail) {
        validate::email(mail).map_err(DirectoryError::Invalid)?;
        if let Some(other) = id_by_mail(c, tenant_id, mail)?.filter(|id| *id != user.id) {
            return Err(DirectoryError::Conflict(format!("{mail} is already the mail of user {other} in tenant {tenant_id}")));
        }
        c.execute(
            "UPDATE users SET mail = ?1, mail_lower = ?2 WHERE id = ?3",
            params![mail, crate::core::validate::address_key(mail), user.id],
        )
        .ctx("changing a user's mail")?;
        changed = true;
    }
    if let Some(enabled) = patch.account_enabled.filter(|e| *e != user.account_enabled) {
        c.execute("UPDATE users SET account_enabled = ?1 WHERE id = ?2", params![enabled, user.id])
            .ctx("changing a user's accountEnabled")?;
        changed = true;
    }
    if !patch.attributes.is_empty() {
        let before = attributes_of(c, &user.id)?;
        let mut after = before.clone();
        for (name, value) in &patch.attributes {
            match value {
                Some(v) => after.insert(name.clone(), v.clone()),
                None => after.remove(name),
            };
        }
        if after != before {
            c.execute("UPDATE users SET attributes = ?1 WHERE id = ?2", params![encode_attributes(&after)?, user.id])
                .ctx("changing a user's attributes")?;
            changed = true;
        }
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

/// R13: creates the target user of a synchronized source user, a B2B collaboration user like an
/// invited one (`alice_contoso.com#EXT#@…`, creationType `Invitation`, PendingAcceptance) but with no
/// invitation email and with the mapped properties. A user who already has the address is taken
/// over instead (user type, display name, accountEnabled and the given attributes are set; other
/// attributes stay): never a second user. Refused (nothing written) unless the tenant allows inbound
/// user sync from the source (`SyncNotAllowed`) and the gates of an invitation from the source
/// tenant pass (R3–R5, R9). A redeem URL is issued only for a new user (`""` for a taken-over one).
pub(super) fn provision(
    c: &Connection,
    tenant_id: &str,
    req: &ProvisionRequest,
    policies: &mut Policies,
) -> Result<InvitationResult> {
    let email = req.mail.trim();
    validate::email(email).map_err(DirectoryError::Invalid)?;
    check_attribute_names(req.attributes.keys())?;
    let source = req.source_tenant_id.trim().to_ascii_lowercase();
    policies.check_sync_inbound(c, tenant_id, &source)?;
    policies.check_invitation_from(c, tenant_id, email, &source)?;

    if let Some(user) = by_mail(c, tenant_id, email)? {
        let patch = GuestPatch {
            display_name: req.display_name.clone(),
            user_type: Some(req.user_type),
            account_enabled: Some(req.account_enabled),
            attributes: req.attributes.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            ..GuestPatch::default()
        };
        update(c, tenant_id, &user.id, &patch)?;
        let status = match user.external_user_state {
            Some(RedemptionState::Accepted) => "Completed",
            _ => "PendingAcceptance",
        };
        return Ok(InvitationResult {
            user_id: user.id,
            user_principal_name: user.user_principal_name,
            invite_redeem_url: String::new(),
            status: status.to_string(),
        });
    }
    let new = NewGuest {
        display_name: req.display_name.as_deref(),
        user_type: req.user_type,
        account_enabled: req.account_enabled,
        attributes: &req.attributes,
    };
    let (user_id, upn) = create_guest(c, tenant_id, email, new)?;
    let invite_redeem_url = issue_ticket(c, tenant_id, &user_id, DEFAULT_REDIRECT)?;
    Ok(InvitationResult {
        user_id,
        user_principal_name: upn,
        invite_redeem_url,
        status: RedemptionState::PendingAcceptance.as_str().to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Profile attributes and the users cross-tenant sync reads

/// Refuses names that are not profile attributes (`core::sync::is_profile_attribute`).
fn check_attribute_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<()> {
    match names.into_iter().find(|n| !is_profile_attribute(n)) {
        None => Ok(()),
        Some(n) => Err(DirectoryError::Invalid(format!(
            "{n:?} is not a profile attribute of a user (expected one of givenName, surname, jobTitle, department, \
             companyName, officeLocation, mobilePhone, usageLocation, preferredLanguage)"
        ))),
    }
}

fn encode_attributes(attributes: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(attributes).ctx("encoding a user's attributes")
}

/// The stored JSON object; values that are not strings (a `null` the emulator kept before schema
/// migration 3) read as absent.
fn decode_attributes(json: &str) -> serde_json::Result<BTreeMap<String, String>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
    Ok(map.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect())
}

fn attributes_of(c: &Connection, user_id: &str) -> Result<BTreeMap<String, String>> {
    let json: String = c
        .prepare_cached("SELECT attributes FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row([user_id], |r| r.get(0)))
        .ctx("reading a user's attributes")?;
    decode_attributes(&json).ctx("reading a user's attributes")
}

/// The profile attributes of the tenant's users (of one user when `user_id` is given), by user id;
/// users without attributes are left out.
pub(super) fn attributes_by_user(
    c: &Connection,
    tenant_id: &str,
    user_id: Option<&str>,
) -> Result<HashMap<String, BTreeMap<String, String>>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, attributes FROM users WHERE tenant_id = ?1 AND (?2 IS NULL OR id = ?2) AND attributes <> '{}'",
        )
        .ctx("reading users' attributes")?;
    let rows = s
        .query_map(params![tenant_id, user_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading users' attributes")?;
    rows.into_iter()
        .map(|(id, json)| Ok((id, decode_attributes(&json).ctx("reading users' attributes")?)))
        .filter(|r| r.as_ref().map_or(true, |(_, a)| !a.is_empty()))
        .collect()
}

const SYNC_COLUMNS: &str = "id, user_principal_name, mail, display_name, user_type, creation_type, account_enabled, attributes";

fn read_directory_user(r: &Row<'_>) -> rusqlite::Result<DirectoryUser> {
    let bad = |i: usize, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
    let mail: String = r.get(2)?;
    let user_type: String = r.get(4)?;
    let attributes: String = r.get(7)?;
    Ok(DirectoryUser {
        id: r.get(0)?,
        user_principal_name: r.get(1)?,
        mail: Some(mail).filter(|m| !m.is_empty()),
        display_name: r.get(3)?,
        user_type: UserType::parse(&user_type).ok_or_else(|| bad(4, format!("unexpected value {user_type:?}")))?,
        creation_type: r.get(5)?,
        account_enabled: r.get(6)?,
        attributes: decode_attributes(&attributes).map_err(|e| bad(7, e.to_string()))?,
    })
}

/// Every user of the tenant (members and guests) with the properties sync reads, by id.
pub(super) fn directory_users(c: &Connection, tenant_id: &str) -> Result<Vec<DirectoryUser>> {
    let mut s =
        c.prepare_cached(&format!("SELECT {SYNC_COLUMNS} FROM users WHERE tenant_id = ?1 ORDER BY id")).ctx("reading users")?;
    s.query_map([tenant_id], read_directory_user).and_then(|rows| rows.collect()).ctx("reading users")
}

/// The tenant's users with these ids, by id, in one query (primary-key lookups); absent ids are left out.
pub(super) fn directory_users_by_id(c: &Connection, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let ids = serde_json::to_string(ids).ctx("encoding user ids")?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {SYNC_COLUMNS} FROM users WHERE id IN (SELECT value FROM json_each(?2)) AND tenant_id = ?1 ORDER BY id"
        ))
        .ctx("reading users")?;
    s.query_map(params![tenant_id, ids], read_directory_user).and_then(|rows| rows.collect()).ctx("reading users")
}

/// Ids of the tenant's users with a change-feed entry in `(after, upto]`, through the feed's
/// `(tenant_id, seq)` index: the cost follows the number of changes.
pub(super) fn changed_ids(c: &Connection, tenant_id: &str, after: i64, upto: i64) -> Result<Vec<String>> {
    let mut s = c
        .prepare_cached(
            "SELECT DISTINCT entity_id FROM changes
             WHERE tenant_id = ?1 AND seq > ?2 AND seq <= ?3 AND entity = 'user' ORDER BY entity_id",
        )
        .ctx("reading the change feed")?;
    s.query_map(params![tenant_id, after, upto], |r| r.get(0)).and_then(|rows| rows.collect()).ctx("reading the change feed")
}

/// Many home-tenant members in one transaction (see `add_member`); their ids, in order.
pub(super) fn add_members(
    c: &Connection,
    tenant_id: &str,
    members: &[(String, Option<String>, BTreeMap<String, String>)],
) -> Result<Vec<String>> {
    members.iter().map(|(mail, name, attributes)| add_member(c, tenant_id, mail, name.as_deref(), attributes)).collect()
}

/// Deletes the user into the recycle bin (`recycle_bin`: restorable as the same user for 30 days); its
/// memberships go with it there, its redeem tickets are dropped. `false` when there was no such user.
pub(super) fn delete(c: &Connection, tenant_id: &str, user_id: &str) -> Result<bool> {
    delete_at(c, tenant_id, user_id, chrono::Utc::now())
}

/// `delete` with the clock given (tests backdate a deletion).
pub(super) fn delete_at(c: &Connection, tenant_id: &str, user_id: &str, now: chrono::DateTime<chrono::Utc>) -> Result<bool> {
    let moved = super::recycle_bin::move_in(c, tenant_id, user_id, now)?;
    if moved {
        feed::append(c, tenant_id, "user", user_id, "deleted")?;
    }
    Ok(moved)
}
