//! Conditional access policies for external users (R18): stored whole (the guest conditions, applications
//! and grant controls as JSON), checked on write as Graph checks them (at least one external user type when
//! the guest condition is set; external tenants only with types; at least one application and one grant
//! control). What a policy decides for a sign-in is `core::conditional_access::decide`, used by
//! `LocalDirectory::conditional_access_decision` and `entente explain`.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed};
use crate::core::conditional_access::*;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// The tenant's policies, by display name.
pub(crate) fn list(c: &Connection, tenant_id: &str) -> Result<Vec<ObservedConditionalAccessPolicy>> {
    let mut s = c
        .prepare_cached("SELECT id, policy_json FROM conditional_access_policies WHERE tenant_id = ?1 ORDER BY name_lower, id")
        .ctx("reading conditional access policies")?;
    let rows: Vec<(String, String)> = s
        .query_map([tenant_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .ctx("reading conditional access policies")?;
    rows.into_iter()
        .map(|(id, json)| {
            Ok(ObservedConditionalAccessPolicy { id, policy: serde_json::from_str(&json).ctx("reading a policy")? })
        })
        .collect()
}

pub(crate) fn get(c: &Connection, tenant_id: &str, id: &str) -> Result<Option<ObservedConditionalAccessPolicy>> {
    let json: Option<String> = c
        .query_row(
            "SELECT policy_json FROM conditional_access_policies WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading a conditional access policy")?;
    json.map(|j| {
        Ok(ObservedConditionalAccessPolicy { id: id.to_string(), policy: serde_json::from_str(&j).ctx("reading a policy")? })
    })
    .transpose()
}

/// What Graph refuses with 400.
pub(crate) fn check(p: &ConditionalAccessPolicyConfig) -> Result<()> {
    let invalid = |m: String| Err(DirectoryError::Invalid(m));
    if p.display_name.trim().is_empty() {
        return invalid("a conditional access policy needs a displayName".into());
    }
    let users = &p.users;
    for (name, g) in
        [("include", Some(&users.include_guests_or_external_users)), ("exclude", users.exclude_guests_or_external_users.as_ref())]
    {
        let Some(g) = g else { continue };
        let tenants_set = g.external_tenants.as_ref().is_some_and(|e| *e != ExternalTenants::All);
        if g.guest_or_external_user_types.is_empty() && (name == "include" || tenants_set) {
            return invalid(format!(
                "policy {:?}: {name}GuestsOrExternalUsers needs at least one guestOrExternalUserTypes member (external \
                 tenants can only be set with types)",
                p.display_name
            ));
        }
        if let Some(ExternalTenants::Enumerated(ids)) = &g.external_tenants
            && ids.is_empty()
        {
            return invalid(format!("policy {:?}: {name}GuestsOrExternalUsers.externalTenants lists no tenant", p.display_name));
        }
    }
    if p.applications.include_applications.is_empty() {
        return invalid(format!("policy {:?}: applications.includeApplications is empty", p.display_name));
    }
    if p.grant_controls.built_in_controls.is_empty() {
        return invalid(format!("policy {:?}: grantControls.builtInControls is empty", p.display_name));
    }
    Ok(())
}

fn id_by_name(c: &Connection, tenant_id: &str, name: &str) -> Result<Option<String>> {
    c.query_row(
        "SELECT id FROM conditional_access_policies WHERE tenant_id = ?1 AND name_lower = ?2 ORDER BY id LIMIT 1",
        params![tenant_id, name.trim().to_ascii_lowercase()],
        |r| r.get(0),
    )
    .optional()
    .ctx("finding a conditional access policy")
}

/// Creates the policy, or replaces the one with `id` (without an id: the one with this display name).
pub(crate) fn put(c: &Connection, tenant_id: &str, id: Option<&str>, p: &ConditionalAccessPolicyConfig) -> Result<String> {
    check(p)?;
    let p = p.clone().canonical();
    let existing = match id {
        Some(id) if get(c, tenant_id, id)?.is_some() => Some(id.to_string()),
        Some(id) => return Err(DirectoryError::NotFound(format!("conditional access policy {id} in tenant {tenant_id}"))),
        None => id_by_name(c, tenant_id, &p.display_name)?,
    };
    let json = serde_json::to_string(&p).ctx("writing a policy")?;
    let name_lower = p.display_name.trim().to_ascii_lowercase();
    let id = match existing {
        Some(id) => {
            c.execute(
                "UPDATE conditional_access_policies SET name_lower = ?3, state = ?4, policy_json = ?5, modified_at = ?6
                 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, id, name_lower, p.state.as_str(), json, super::now()],
            )
            .ctx("updating a conditional access policy")?;
            id
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            c.execute(
                "INSERT INTO conditional_access_policies (tenant_id, id, name_lower, state, policy_json, created_at, modified_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![tenant_id, id, name_lower, p.state.as_str(), json, super::now()],
            )
            .ctx("creating a conditional access policy")?;
            id
        }
    };
    feed::append(c, tenant_id, "conditionalAccessPolicy", &id, "put")?;
    Ok(id)
}

/// Deletes the policy; absent is fine.
pub(crate) fn delete(c: &Connection, tenant_id: &str, id: &str) -> Result<bool> {
    let n = c
        .execute("DELETE FROM conditional_access_policies WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id])
        .ctx("deleting a conditional access policy")?;
    if n > 0 {
        feed::append(c, tenant_id, "conditionalAccessPolicy", id, "deleted")?;
    }
    Ok(n > 0)
}
