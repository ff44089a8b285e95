//! Entitlement management (R16) in the local directory: connected organizations, access packages and
//! their assignment policies, the tenant's external-user lifecycle settings, and assignments.
//!
//! The rules that affect access are enforced here: a request is admitted only by a policy whose scope
//! includes the requester (`core::entitlement::admits`); a policy that requires approval keeps the request
//! pending until approved; delivering an assignment invites the user (R3–R9 apply, R6: the same user is
//! reused) and adds them to the package's groups; an expired or removed assignment takes the groups away,
//! and when an external user's last assignment ends the tenant's lifecycle applies (block sign-in, then
//! delete after the set duration). Time is a parameter, so tests never sleep.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::gates::Policies;
use super::{Ctx, feed, groups, tenants, users};
use crate::core::entitlement::*;
use crate::core::model::TenantIdentity;
use crate::core::operation::{GuestPatch, InvitationRequest};
use crate::core::policy::email_domain;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).ctx("encoding entitlement data")
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).ctx("decoding entitlement data")
}

// ---------------------------------------------------------------------------------------------
// Reads

pub(super) fn settings(c: &Connection, tenant_id: &str) -> Result<EntitlementSettings> {
    let row: Option<(String, i64)> = c
        .prepare_cached("SELECT lifecycle_action, delete_after_seconds FROM ep_settings WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row([tenant_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("reading entitlement settings")?;
    Ok(match row {
        Some((a, d)) => EntitlementSettings {
            external_user_lifecycle_action: LifecycleAction::parse(&a).unwrap_or_default(),
            delete_after_blocked_seconds: d.max(0) as u64,
        },
        None => EntitlementSettings::default(),
    })
}

pub(crate) fn organizations(c: &Connection, tenant_id: &str) -> Result<Vec<Identified<ConnectedOrganization>>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, display_name, description, state, identity_sources FROM ep_connected_organizations \
             WHERE tenant_id = ?1 ORDER BY name_lower",
        )
        .ctx("reading connected organizations")?;
    let rows = s
        .query_map([tenant_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading connected organizations")?;
    rows.into_iter()
        .map(|(id, display_name, description, state, sources)| {
            Ok(Identified {
                id,
                value: ConnectedOrganization {
                    display_name,
                    description,
                    identity_sources: parse(&sources)?,
                    state: ConnectedOrganizationState::parse(&state).unwrap_or_default(),
                },
            })
        })
        .collect()
}

/// The policies of one package, with their ids, sorted by display name.
pub(crate) fn policies(c: &Connection, package_id: &str) -> Result<Vec<Identified<AssignmentPolicy>>> {
    let mut s = c
        .prepare_cached(
            "SELECT p.id, p.display_name, p.allowed_target_scope, p.connected_organization_ids, p.approval_required, \
             p.approvers_json, p.expiration_seconds FROM ep_policies p WHERE p.package_id = ?1 ORDER BY p.display_name",
        )
        .ctx("reading assignment policies")?;
    type Raw = (String, String, String, String, bool, String, Option<i64>);
    let rows = s
        .query_map([package_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Raw>>>())
        .ctx("reading assignment policies")?;
    let mut out = Vec::new();
    for (id, display_name, scope, org_ids, approval, approvers, expiration) in rows {
        let org_ids: Vec<String> = parse(&org_ids)?;
        let mut names = BTreeSet::new();
        for oid in org_ids {
            let name: Option<String> = c
                .prepare_cached("SELECT display_name FROM ep_connected_organizations WHERE id = ?1")
                .and_then(|mut s| s.query_row([&oid], |r| r.get(0)).optional())
                .ctx("reading a connected organization")?;
            names.extend(name);
        }
        out.push(Identified {
            id,
            value: AssignmentPolicy {
                display_name,
                allowed_target_scope: TargetScope::parse(&scope).unwrap_or(TargetScope::SpecificConnectedOrganizationUsers),
                connected_organizations: names,
                approval_required: approval,
                approvers: parse(&approvers)?,
                expiration_seconds: expiration.map(|e| e.max(0) as u64),
            },
        });
    }
    Ok(out)
}

pub(crate) fn packages(c: &Connection, tenant_id: &str) -> Result<Vec<Identified<AccessPackage>>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, display_name, description, groups_json, applications_json FROM ep_access_packages \
             WHERE tenant_id = ?1 ORDER BY name_lower",
        )
        .ctx("reading access packages")?;
    let rows = s
        .query_map([tenant_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading access packages")?;
    let mut out = Vec::new();
    for (id, display_name, description, groups, apps) in rows {
        let policies = policies(c, &id)?.into_iter().map(|p| p.value).collect();
        out.push(Identified {
            id,
            value: AccessPackage { display_name, description, groups: parse(&groups)?, applications: parse(&apps)?, policies },
        });
    }
    Ok(out)
}

pub(super) fn assignments(c: &Connection, tenant_id: &str) -> Result<Vec<Assignment>> {
    let mut s = c
        .prepare_cached(
            "SELECT package_name, policy_name, user_mail_lower, state, expires_at FROM ep_assignments \
             WHERE tenant_id = ?1 ORDER BY requested_at, id",
        )
        .ctx("reading assignments")?;
    s.query_map([tenant_id], |r| {
        Ok(Assignment { package: r.get(0)?, policy: r.get(1)?, user_mail: r.get(2)?, state: r.get(3)?, expires_at: r.get(4)? })
    })
    .and_then(|rows| rows.collect())
    .ctx("reading assignments")
}

pub(super) fn state(c: &Connection, tenant_id: &str) -> Result<EntitlementState> {
    Ok(EntitlementState {
        settings: settings(c, tenant_id)?,
        connected_organizations: organizations(c, tenant_id)?,
        access_packages: packages(c, tenant_id)?,
        assignments: assignments(c, tenant_id)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Writes (operations)

pub(super) fn set_settings(c: &Connection, tenant_id: &str, s: &EntitlementSettings) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO ep_settings (tenant_id, lifecycle_action, delete_after_seconds) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id) DO UPDATE SET lifecycle_action = excluded.lifecycle_action,
           delete_after_seconds = excluded.delete_after_seconds",
    )
    .and_then(|mut st| {
        st.execute(params![tenant_id, s.external_user_lifecycle_action.as_str(), s.delete_after_blocked_seconds as i64])
    })
    .ctx("writing entitlement settings")?;
    feed::append(c, tenant_id, "entitlement", "settings", "configured")?;
    Ok(())
}

fn id_by_name(c: &Connection, table: &str, tenant_id: &str, name: &str) -> Result<Option<String>> {
    c.prepare_cached(&format!("SELECT id FROM {table} WHERE tenant_id = ?1 AND name_lower = ?2"))
        .and_then(|mut s| s.query_row(params![tenant_id, name.trim().to_ascii_lowercase()], |r| r.get(0)).optional())
        .ctx("looking up by display name")
}

fn exists(c: &Connection, table: &str, tenant_id: &str, id: &str) -> Result<bool> {
    c.prepare_cached(&format!("SELECT 1 FROM {table} WHERE tenant_id = ?1 AND id = ?2"))
        .and_then(|mut s| s.query_row(params![tenant_id, id], |_| Ok(())).optional())
        .map(|o| o.is_some())
        .ctx("looking up by id")
}

/// Creates or updates a connected organization; returns its id. Without an id, one with the same display
/// name is updated (create tolerates existing).
pub(crate) fn put_organization(c: &Connection, tenant_id: &str, id: Option<&str>, o: &ConnectedOrganization) -> Result<String> {
    if o.display_name.trim().is_empty() {
        return Err(DirectoryError::Invalid("a connected organization needs a displayName".into()));
    }
    if o.identity_sources.is_empty() {
        return Err(DirectoryError::Invalid(format!(
            "connected organization {:?} needs at least one identity source",
            o.display_name
        )));
    }
    let at = super::now();
    let existing = match id {
        Some(id) if exists(c, "ep_connected_organizations", tenant_id, id)? => Some(id.to_string()),
        Some(id) => return Err(DirectoryError::NotFound(format!("connected organization {id} in tenant {tenant_id}"))),
        None => id_by_name(c, "ep_connected_organizations", tenant_id, &o.display_name)?,
    };
    if let Some(other) = id_by_name(c, "ep_connected_organizations", tenant_id, &o.display_name)?
        && existing.as_deref() != Some(other.as_str())
    {
        return Err(DirectoryError::Conflict(format!("connected organization {:?} already exists ({other})", o.display_name)));
    }
    let sources = json(&o.identity_sources)?;
    let id = match existing {
        Some(id) => {
            c.execute(
                "UPDATE ep_connected_organizations SET display_name = ?2, name_lower = ?3, description = ?4, state = ?5, \
                 identity_sources = ?6, modified_at = ?7 WHERE id = ?1",
                params![
                    id,
                    o.display_name.trim(),
                    o.display_name.trim().to_ascii_lowercase(),
                    o.description,
                    o.state.as_str(),
                    sources,
                    at
                ],
            )
            .ctx("updating a connected organization")?;
            id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            c.execute(
                "INSERT INTO ep_connected_organizations (id, tenant_id, display_name, name_lower, description, state, \
                 identity_sources, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![
                    id,
                    tenant_id,
                    o.display_name.trim(),
                    o.display_name.trim().to_ascii_lowercase(),
                    o.description,
                    o.state.as_str(),
                    sources,
                    at
                ],
            )
            .ctx("creating a connected organization")?;
            id
        }
    };
    feed::append(c, tenant_id, "connectedOrganization", &id, "put")?;
    Ok(id)
}

/// Deletes a connected organization (missing: nothing to do). A policy that names it blocks the deletion.
pub(crate) fn delete_organization(c: &Connection, tenant_id: &str, id: &str) -> Result<()> {
    let users: Vec<String> = c
        .prepare_cached(
            "SELECT p.display_name FROM ep_policies p, json_each(p.connected_organization_ids) j \
             WHERE p.tenant_id = ?1 AND j.value = ?2",
        )
        .and_then(|mut s| s.query_map(params![tenant_id, id], |r| r.get(0)).and_then(|r| r.collect()))
        .ctx("looking up policies of a connected organization")?;
    if !users.is_empty() {
        return Err(DirectoryError::Conflict(format!(
            "connected organization {id} is named by assignment policies {}; change them first",
            users.join(", ")
        )));
    }
    let n = c
        .execute("DELETE FROM ep_connected_organizations WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id])
        .ctx("deleting a connected organization")?;
    if n > 0 {
        feed::append(c, tenant_id, "connectedOrganization", id, "deleted")?;
    }
    Ok(())
}

/// Creates or updates an access package (without touching its policies); returns its id.
pub(crate) fn put_package_only(
    c: &Connection,
    tenant_id: &str,
    id: Option<&str>,
    display_name: &str,
    description: Option<&str>,
    resources: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
) -> Result<String> {
    if display_name.trim().is_empty() {
        return Err(DirectoryError::Invalid("an access package needs a displayName".into()));
    }
    if let Some((g, _)) = resources {
        // Every group must exist (declared on the tenant).
        groups::ids(c, tenant_id, &g.iter().cloned().collect::<Vec<_>>())?;
    }
    let at = super::now();
    let existing = match id {
        Some(id) if exists(c, "ep_access_packages", tenant_id, id)? => Some(id.to_string()),
        Some(id) => return Err(DirectoryError::NotFound(format!("access package {id} in tenant {tenant_id}"))),
        None => id_by_name(c, "ep_access_packages", tenant_id, display_name)?,
    };
    if let Some(other) = id_by_name(c, "ep_access_packages", tenant_id, display_name)?
        && existing.as_deref() != Some(other.as_str())
    {
        return Err(DirectoryError::Conflict(format!("access package {display_name:?} already exists ({other})")));
    }
    let name = display_name.trim();
    let id = match existing {
        Some(id) => {
            c.execute(
                "UPDATE ep_access_packages SET display_name = ?2, name_lower = ?3, description = ?4, modified_at = ?5 WHERE id = ?1",
                params![id, name, name.to_ascii_lowercase(), description, at],
            )
            .ctx("updating an access package")?;
            id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            c.execute(
                "INSERT INTO ep_access_packages (id, tenant_id, display_name, name_lower, description, created_at, modified_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![id, tenant_id, name, name.to_ascii_lowercase(), description, at],
            )
            .ctx("creating an access package")?;
            id
        }
    };
    if let Some((g, a)) = resources {
        c.execute(
            "UPDATE ep_access_packages SET groups_json = ?2, applications_json = ?3 WHERE id = ?1",
            params![id, json(g)?, json(a)?],
        )
        .ctx("writing access package resources")?;
    }
    feed::append(c, tenant_id, "accessPackage", &id, "put")?;
    Ok(id)
}

/// Creates or replaces one policy of a package (matched by id, else by display name); returns its id.
pub(crate) fn put_policy(
    c: &Connection,
    tenant_id: &str,
    package_id: &str,
    id: Option<&str>,
    p: &AssignmentPolicy,
) -> Result<String> {
    if !exists(c, "ep_access_packages", tenant_id, package_id)? {
        return Err(DirectoryError::NotFound(format!("access package {package_id} in tenant {tenant_id}")));
    }
    let mut org_ids = Vec::new();
    for name in &p.connected_organizations {
        let oid = id_by_name(c, "ep_connected_organizations", tenant_id, name)?
            .ok_or_else(|| DirectoryError::NotFound(format!("connected organization {name:?} in tenant {tenant_id}")))?;
        org_ids.push(oid);
    }
    if p.allowed_target_scope == TargetScope::SpecificConnectedOrganizationUsers && org_ids.is_empty() {
        return Err(DirectoryError::Invalid(format!(
            "policy {:?}: specificConnectedOrganizationUsers needs at least one connected organization",
            p.display_name
        )));
    }
    let existing: Option<String> = match id {
        Some(id) => Some(id.to_string()),
        None => c
            .prepare_cached("SELECT id FROM ep_policies WHERE package_id = ?1 AND lower(display_name) = lower(?2)")
            .and_then(|mut s| s.query_row(params![package_id, p.display_name], |r| r.get(0)).optional())
            .ctx("looking up a policy")?,
    };
    let at = super::now();
    let values = (json(&org_ids)?, json(&p.approvers)?, p.expiration_seconds.map(|s| s as i64));
    let id = match existing {
        Some(id) => {
            let n = c
                .execute(
                    "UPDATE ep_policies SET package_id = ?2, display_name = ?3, allowed_target_scope = ?4, connected_organization_ids = ?5, \
                     approval_required = ?6, approvers_json = ?7, expiration_seconds = ?8, modified_at = ?9 WHERE id = ?1 AND tenant_id = ?10",
                    params![id, package_id, p.display_name, p.allowed_target_scope.as_str(), values.0, p.approval_required, values.1, values.2, at, tenant_id],
                )
                .ctx("replacing a policy")?;
            if n == 0 {
                return Err(DirectoryError::NotFound(format!("assignment policy {id} in tenant {tenant_id}")));
            }
            id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            c.execute(
                "INSERT INTO ep_policies (id, tenant_id, package_id, display_name, allowed_target_scope, connected_organization_ids, \
                 approval_required, approvers_json, expiration_seconds, created_at, modified_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![id, tenant_id, package_id, p.display_name, p.allowed_target_scope.as_str(), values.0, p.approval_required, values.1, values.2, at],
            )
            .ctx("creating a policy")?;
            id
        }
    };
    feed::append(c, tenant_id, "assignmentPolicy", &id, "put")?;
    Ok(id)
}

pub(crate) fn delete_policy(c: &Connection, tenant_id: &str, id: &str) -> Result<bool> {
    let n =
        c.execute("DELETE FROM ep_policies WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id]).ctx("deleting a policy")?;
    if n > 0 {
        feed::append(c, tenant_id, "assignmentPolicy", id, "deleted")?;
    }
    Ok(n > 0)
}

/// `PutAccessPackage`: the package, its resources, and its policies by display name (created, replaced, deleted).
pub(super) fn put_package(c: &Connection, tenant_id: &str, id: Option<&str>, p: &AccessPackage) -> Result<String> {
    let id = put_package_only(c, tenant_id, id, &p.display_name, p.description.as_deref(), Some((&p.groups, &p.applications)))?;
    let current = policies(c, &id)?;
    for want in &p.policies {
        let found = current.iter().find(|c| c.value.display_name.eq_ignore_ascii_case(&want.display_name)).map(|c| c.id.as_str());
        put_policy(c, tenant_id, &id, found, want)?;
    }
    for old in current.iter().filter(|c| !p.policies.iter().any(|w| w.display_name.eq_ignore_ascii_case(&c.value.display_name))) {
        delete_policy(c, tenant_id, &old.id)?;
    }
    Ok(id)
}

/// Deletes a package: its current assignments end first (groups taken away, lifecycle applied).
pub(crate) fn delete_package(c: &Connection, tenant_id: &str, id: &str, now: DateTime<Utc>) -> Result<()> {
    let open: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT id, user_mail_lower FROM ep_assignments WHERE tenant_id = ?1 AND package_id = ?2 \
             AND state IN ('delivered', 'pendingApproval')",
        )
        .and_then(|mut s| s.query_map(params![tenant_id, id], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()))
        .ctx("reading a package's assignments")?;
    for (aid, mail) in &open {
        end_assignment(c, tenant_id, aid, mail, "removed", now)?;
    }
    let n = c
        .execute("DELETE FROM ep_access_packages WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id])
        .ctx("deleting an access package")?;
    if n > 0 {
        feed::append(c, tenant_id, "accessPackage", id, "deleted")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The outside world: requests, approvals, expiry

/// What became of a request for an access package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum RequestOutcome {
    /// Assigned: the user (invited if needed) is in the package's groups until `expires_at` (never: `None`).
    Delivered { policy: String, user_id: String, expires_at: Option<String> },
    /// The policy requires approval: the request waits.
    PendingApproval { policy: String, approvers: Vec<String> },
    /// No policy of the package admits the user (R16).
    Denied { reason: String },
}

/// What `expire` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryReport {
    /// (tenant id, user mail, package) of assignments that expired.
    pub expired: Vec<(String, String, String)>,
    /// (tenant id, user id) of external users blocked from sign-in by the lifecycle.
    pub blocked: Vec<(String, String)>,
    /// (tenant id, user id) of external users deleted by the lifecycle.
    pub deleted: Vec<(String, String)>,
}

fn package_by_name(c: &Connection, tenant_id: &str, name: &str) -> Result<Identified<AccessPackage>> {
    packages(c, tenant_id)?
        .into_iter()
        .find(|p| p.value.display_name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| DirectoryError::NotFound(format!("access package {name:?} in tenant {tenant_id}")))
}

fn home_of(c: &Connection, resource: &str, mail: &str) -> Result<Option<TenantIdentity>> {
    match tenants::owner_of_domain(c, email_domain(mail), resource)? {
        Some(id) => tenants::get(c, &id),
        None => Ok(None),
    }
}

pub(super) fn request(c: &Connection, tenant_id: &str, mail: &str, package: &str, now: DateTime<Utc>) -> Result<RequestOutcome> {
    let resource = tenants::require(c, tenant_id)?;
    let mail = mail.trim().to_ascii_lowercase();
    crate::core::validate::email(&mail).map_err(DirectoryError::Invalid)?;
    let pkg = package_by_name(c, tenant_id, package)?;
    let orgs: Vec<ConnectedOrganization> = organizations(c, tenant_id)?.into_iter().map(|o| o.value).collect();
    let home = home_of(c, tenant_id, &mail)?;
    let Some((policy, admission)) = admitting_policy(&pkg.value, &orgs, &resource, home.as_ref(), email_domain(&mail)) else {
        let scopes: Vec<String> =
            pkg.value.policies.iter().map(|p| format!("{:?} ({})", p.display_name, p.allowed_target_scope.as_str())).collect();
        return Ok(RequestOutcome::Denied {
            reason: format!(
                "R16: no assignment policy of access package {:?} in {} admits {mail} (home {}): policies {}",
                pkg.value.display_name,
                resource.initial_domain,
                home.as_ref().map(|h| h.initial_domain.as_str()).unwrap_or("not a known tenant"),
                if scopes.is_empty() { "none".into() } else { scopes.join(", ") }
            ),
        });
    };
    let open: Option<(String, String)> = c
        .prepare_cached(
            "SELECT id, state FROM ep_assignments WHERE tenant_id = ?1 AND package_id = ?2 AND user_mail_lower = ?3 \
             AND state IN ('delivered', 'pendingApproval')",
        )
        .and_then(|mut s| s.query_row(params![tenant_id, pkg.id, mail], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("looking up an assignment")?;
    if let Some((_, state)) = open {
        return Err(DirectoryError::Conflict(format!(
            "{mail} already has a {state} assignment of access package {:?}",
            pkg.value.display_name
        )));
    }
    let aid = uuid::Uuid::new_v4().to_string();
    c.execute(
        "INSERT INTO ep_assignments (id, tenant_id, package_id, package_name, policy_name, user_mail_lower, state, requested_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pendingApproval', ?7)",
        params![aid, tenant_id, pkg.id, pkg.value.display_name, policy.display_name, mail, stamp(now)],
    )
    .ctx("recording a request")?;
    tracing::debug!(tenant = tenant_id, %mail, admission = %admission.describe(), "access package request admitted");
    if policy.approval_required {
        return Ok(RequestOutcome::PendingApproval {
            policy: policy.display_name.clone(),
            approvers: policy.approvers.iter().cloned().collect(),
        });
    }
    deliver(c, tenant_id, &aid, &pkg.value, policy, &mail, now)
}

pub(super) fn approve(
    c: &Connection,
    tenant_id: &str,
    mail: &str,
    package: &str,
    approver: Option<&str>,
    now: DateTime<Utc>,
) -> Result<RequestOutcome> {
    let mail = mail.trim().to_ascii_lowercase();
    let pkg = package_by_name(c, tenant_id, package)?;
    let pending: (String, String) = c
        .prepare_cached(
            "SELECT id, policy_name FROM ep_assignments WHERE tenant_id = ?1 AND package_id = ?2 AND user_mail_lower = ?3 \
             AND state = 'pendingApproval'",
        )
        .and_then(|mut s| s.query_row(params![tenant_id, pkg.id, mail], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("looking up a pending request")?
        .ok_or_else(|| DirectoryError::NotFound(format!("pending request of {mail} for access package {package:?}")))?;
    let policy = pkg
        .value
        .policies
        .iter()
        .find(|p| p.display_name == pending.1)
        .ok_or_else(|| DirectoryError::Conflict(format!("policy {:?} of the pending request no longer exists", pending.1)))?;
    if !policy.approvers.is_empty() {
        let ok = approver.is_some_and(|a| policy.approvers.contains(&a.trim().to_ascii_lowercase()));
        if !ok {
            return Err(DirectoryError::Invalid(format!(
                "R16: only the approvers of policy {:?} ({}) may approve, not {}",
                policy.display_name,
                policy.approvers.iter().cloned().collect::<Vec<_>>().join(", "),
                approver.unwrap_or("an unnamed approver")
            )));
        }
    }
    deliver(c, tenant_id, &pending.0, &pkg.value, policy, &mail, now)
}

fn deliver(
    c: &Connection,
    tenant_id: &str,
    assignment_id: &str,
    pkg: &AccessPackage,
    policy: &AssignmentPolicy,
    mail: &str,
    now: DateTime<Utc>,
) -> Result<RequestOutcome> {
    // The requester gets a B2B account (R3–R9 apply; R6: an existing user is reused) in the package's groups.
    let mut gates = Policies::default();
    let invited = users::invite(
        c,
        tenant_id,
        &InvitationRequest {
            re_invite: false,
            invited_user_email_address: mail.to_string(),
            invited_user_display_name: None,
            invite_redirect_url: crate::api::guest_invitation::DEFAULT_REDIRECT_URL.into(),
            invited_user_type: Default::default(),
            send_invitation_message: false,
            invited_user_message_info: None,
            groups: pkg.groups.iter().cloned().collect(),
        },
        &mut gates,
    )?;
    // A user blocked by the lifecycle gets sign-in back.
    let was_blocked = c
        .execute("DELETE FROM ep_blocked_users WHERE tenant_id = ?1 AND user_id = ?2", params![tenant_id, invited.user_id])
        .ctx("unblocking a user")?;
    if was_blocked > 0 {
        users::update(c, tenant_id, &invited.user_id, &GuestPatch { account_enabled: Some(true), ..Default::default() })?;
    }
    let expires_at = policy.expiration_seconds.map(|s| stamp(now + Duration::seconds(s as i64)));
    c.execute(
        "UPDATE ep_assignments SET state = 'delivered', user_id = ?2, delivered_at = ?3, expires_at = ?4 WHERE id = ?1",
        params![assignment_id, invited.user_id, stamp(now), expires_at],
    )
    .ctx("delivering an assignment")?;
    feed::append(c, tenant_id, "assignment", assignment_id, "delivered")?;
    Ok(RequestOutcome::Delivered { policy: policy.display_name.clone(), user_id: invited.user_id, expires_at })
}

/// Ends one assignment (`expired` or `removed`): takes away the groups no other assignment still gives,
/// and applies the lifecycle when it was the user's last. Returns whether the user got blocked.
fn end_assignment(
    c: &Connection,
    tenant_id: &str,
    aid: &str,
    mail: &str,
    how: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let (package_id, user_id, state): (String, Option<String>, String) = c
        .query_row("SELECT package_id, user_id, state FROM ep_assignments WHERE id = ?1", [aid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .ctx("reading an assignment")?;
    c.execute("UPDATE ep_assignments SET state = ?2, ended_at = ?3 WHERE id = ?1", params![aid, how, stamp(now)])
        .ctx("ending an assignment")?;
    feed::append(c, tenant_id, "assignment", aid, how)?;
    let Some(user_id) = user_id.filter(|_| state == "delivered") else { return Ok(None) };
    if users::by_id(c, tenant_id, &user_id)?.is_none() {
        return Ok(None);
    }
    let groups_of = |pid: &str| -> Result<BTreeSet<String>> {
        let g: Option<String> = c
            .prepare_cached("SELECT groups_json FROM ep_access_packages WHERE id = ?1")
            .and_then(|mut s| s.query_row([pid], |r| r.get(0)).optional())
            .ctx("reading package groups")?;
        g.map(|g| parse(&g)).transpose().map(Option::unwrap_or_default)
    };
    let others: Vec<String> = c
        .prepare_cached(
            "SELECT package_id FROM ep_assignments WHERE tenant_id = ?1 AND user_mail_lower = ?2 AND state = 'delivered'",
        )
        .and_then(|mut s| s.query_map(params![tenant_id, mail], |r| r.get(0)).and_then(|r| r.collect()))
        .ctx("reading a user's assignments")?;
    let mut kept = BTreeSet::new();
    for pid in &others {
        kept.extend(groups_of(pid)?);
    }
    let lose: Vec<String> = groups_of(&package_id)?.difference(&kept).cloned().collect();
    let existing: BTreeMap<String, ()> = groups::list(c, tenant_id)?.into_iter().map(|g| (g.display_name, ())).collect();
    let lose: Vec<String> = lose.into_iter().filter(|g| existing.contains_key(g)).collect();
    if !lose.is_empty() {
        users::update(c, tenant_id, &user_id, &GuestPatch { remove_from_groups: lose, ..Default::default() })?;
    }
    if !others.is_empty() {
        return Ok(None);
    }
    // The user's last assignment ended: the tenant's lifecycle applies (R16).
    let s = settings(c, tenant_id)?;
    let delete_at = match s.external_user_lifecycle_action {
        LifecycleAction::None => return Ok(None),
        LifecycleAction::BlockSignIn => None,
        LifecycleAction::BlockSignInAndDelete => Some(stamp(now + Duration::seconds(s.delete_after_blocked_seconds as i64))),
    };
    users::update(c, tenant_id, &user_id, &GuestPatch { account_enabled: Some(false), ..Default::default() })?;
    c.execute(
        "INSERT INTO ep_blocked_users (tenant_id, user_id, blocked_at, delete_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET blocked_at = excluded.blocked_at, delete_at = excluded.delete_at",
        params![tenant_id, user_id, stamp(now), delete_at],
    )
    .ctx("recording a blocked user")?;
    Ok(Some(user_id))
}

/// At `now`: ends every delivered assignment past its expiry (all tenants), applies the lifecycle, and
/// deletes blocked users whose deletion is due.
pub(super) fn expire(c: &Connection, now: DateTime<Utc>) -> Result<ExpiryReport> {
    let mut report = ExpiryReport::default();
    let due: Vec<(String, String, String, String)> = c
        .prepare_cached(
            "SELECT id, tenant_id, user_mail_lower, package_name FROM ep_assignments \
             WHERE state = 'delivered' AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at, id",
        )
        .and_then(|mut s| {
            s.query_map([stamp(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).and_then(|r| r.collect())
        })
        .ctx("reading expired assignments")?;
    for (aid, tenant_id, mail, package) in due {
        if let Some(user) = end_assignment(c, &tenant_id, &aid, &mail, "expired", now)? {
            report.blocked.push((tenant_id.clone(), user));
        }
        report.expired.push((tenant_id, mail, package));
    }
    let deletions: Vec<(String, String)> = c
        .prepare_cached("SELECT tenant_id, user_id FROM ep_blocked_users WHERE delete_at IS NOT NULL AND delete_at <= ?1")
        .and_then(|mut s| s.query_map([stamp(now)], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()))
        .ctx("reading users due for deletion")?;
    for (tenant_id, user_id) in deletions {
        users::delete_at(c, &tenant_id, &user_id, now)?;
        c.execute("DELETE FROM ep_blocked_users WHERE tenant_id = ?1 AND user_id = ?2", params![tenant_id, user_id])
            .ctx("forgetting a deleted user")?;
        report.deleted.push((tenant_id, user_id));
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// For the Graph emulator: one Graph resource at a time.

/// An assignment policy row: its id and its package's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyRow {
    pub id: String,
    pub package_id: String,
    pub policy: AssignmentPolicy,
    /// The ids of the connected organizations it names.
    pub connected_organization_ids: Vec<String>,
}

fn policy_rows(c: &Connection, tenant_id: &str) -> Result<Vec<PolicyRow>> {
    let ids: Vec<(String, String)> = c
        .prepare_cached("SELECT id, package_id FROM ep_policies WHERE tenant_id = ?1 ORDER BY display_name, id")
        .and_then(|mut s| s.query_map([tenant_id], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()))
        .ctx("reading assignment policies")?;
    let mut by_package: BTreeMap<String, Vec<Identified<AssignmentPolicy>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (id, package_id) in ids {
        if !by_package.contains_key(&package_id) {
            by_package.insert(package_id.clone(), policies(c, &package_id)?);
        }
        let Some(p) = by_package[&package_id].iter().find(|p| p.id == id) else { continue };
        let org_ids: String = c
            .query_row("SELECT connected_organization_ids FROM ep_policies WHERE id = ?1", [&id], |r| r.get(0))
            .ctx("reading a policy")?;
        out.push(PolicyRow { id, package_id, policy: p.value.clone(), connected_organization_ids: parse(&org_ids)? });
    }
    Ok(out)
}

impl super::LocalDirectory {
    pub(crate) fn ep_policy_rows(&self, tenant_id: &str) -> Result<Vec<PolicyRow>> {
        let tenant_id = super::norm(tenant_id);
        self.read(|c| {
            tenants::require(c, &tenant_id)?;
            policy_rows(c, &tenant_id)
        })
    }

    /// A new connected organization (409 when the display name is taken); returns its id.
    pub(crate) fn ep_create_organization(&self, tenant_id: &str, o: &ConnectedOrganization) -> Result<String> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            if let Some(other) = id_by_name(c, "ep_connected_organizations", &tenant_id, &o.display_name)? {
                return Err(DirectoryError::Conflict(format!(
                    "connected organization {:?} already exists ({other})",
                    o.display_name
                )));
            }
            put_organization(c, &tenant_id, None, o)
        })
    }

    pub(crate) fn ep_update_organization(&self, tenant_id: &str, id: &str, o: &ConnectedOrganization) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| put_organization(c, &tenant_id, Some(id), o).map(|_| ()))
    }

    pub(crate) fn ep_delete_organization(&self, tenant_id: &str, id: &str) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            if !exists(c, "ep_connected_organizations", &tenant_id, id)? {
                return Err(DirectoryError::NotFound(format!("connected organization {id}")));
            }
            delete_organization(c, &tenant_id, id)
        })
    }

    /// A new access package, or (with an id) a changed name and description; returns its id.
    pub(crate) fn ep_put_package(
        &self,
        tenant_id: &str,
        id: Option<&str>,
        display_name: &str,
        description: Option<&str>,
    ) -> Result<String> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            if id.is_none()
                && let Some(other) = id_by_name(c, "ep_access_packages", &tenant_id, display_name)?
            {
                return Err(DirectoryError::Conflict(format!("access package {display_name:?} already exists ({other})")));
            }
            put_package_only(c, &tenant_id, id, display_name, description, None)
        })
    }

    /// Replaces a package's resources (group display names, application ids); every group must exist.
    pub(crate) fn ep_set_package_resources(
        &self,
        tenant_id: &str,
        id: &str,
        groups: &BTreeSet<String>,
        applications: &BTreeSet<String>,
    ) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            let pkg = packages(c, &tenant_id)?
                .into_iter()
                .find(|p| p.id == id)
                .ok_or_else(|| DirectoryError::NotFound(format!("access package {id}")))?;
            let p = pkg.value;
            put_package_only(c, &tenant_id, Some(id), &p.display_name, p.description.as_deref(), Some((groups, applications)))
                .map(|_| ())
        })
    }

    /// Deletes a package; refused while it has assignment policies (delete them first, as Graph asks).
    pub(crate) fn ep_delete_package(&self, tenant_id: &str, id: &str) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            if !exists(c, "ep_access_packages", &tenant_id, id)? {
                return Err(DirectoryError::NotFound(format!("access package {id}")));
            }
            if !policies(c, id)?.is_empty() {
                return Err(DirectoryError::Invalid(format!(
                    "access package {id} still has assignment policies; delete them first"
                )));
            }
            delete_package(c, &tenant_id, id, Utc::now())
        })
    }

    pub(crate) fn ep_put_policy(
        &self,
        tenant_id: &str,
        package_id: &str,
        id: Option<&str>,
        p: &AssignmentPolicy,
    ) -> Result<String> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| put_policy(c, &tenant_id, package_id, id, p))
    }

    pub(crate) fn ep_delete_policy(&self, tenant_id: &str, id: &str) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            if delete_policy(c, &tenant_id, id)? {
                Ok(())
            } else {
                Err(DirectoryError::NotFound(format!("assignment policy {id}")))
            }
        })
    }

    pub(crate) fn ep_set_settings(&self, tenant_id: &str, s: &EntitlementSettings) -> Result<()> {
        let tenant_id = super::norm(tenant_id);
        self.write(|c| {
            tenants::require(c, &tenant_id)?;
            set_settings(c, &tenant_id, s)
        })
    }
}
