//! Tenants: identity and domains, external collaboration settings, the default cross-tenant access
//! configuration, and the `TenantPolicy` the rules read.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed, partners};
use crate::core::model::{Cloud, TenantIdentity};
use crate::core::policy::TenantPolicy;
use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};
use crate::core::settings::{CrossTenantAccessSettings, GUEST_ROLE_IDS};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

pub(super) fn get(c: &Connection, id: &str) -> Result<Option<TenantIdentity>> {
    let row = c
        .prepare_cached("SELECT id, initial_domain, display_name, cloud FROM tenants WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))).optional()
        })
        .ctx("reading a tenant")?;
    let Some((tenant_id, initial_domain, display_name, cloud)) = row else { return Ok(None) };
    let verified_domains = domains(c, &tenant_id)?;
    Ok(Some(TenantIdentity { tenant_id, initial_domain, display_name, cloud: parse_cloud(&cloud)?, verified_domains }))
}

/// The tenant, or `TenantNotFound`.
pub(super) fn require(c: &Connection, id: &str) -> Result<TenantIdentity> {
    get(c, id)?.ok_or_else(|| DirectoryError::TenantNotFound(id.to_string()))
}

pub(super) fn exists(c: &Connection, id: &str) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM tenants WHERE id = ?1").and_then(|mut s| s.exists([id])).ctx("looking up a tenant")
}

fn domains(c: &Connection, id: &str) -> Result<BTreeSet<String>> {
    let mut s = c.prepare_cached("SELECT domain FROM tenant_domains WHERE tenant_id = ?1").ctx("reading tenant domains")?;
    s.query_map([id], |r| r.get(0)).and_then(|rows| rows.collect()).ctx("reading tenant domains")
}

/// Every tenant, by initial domain (two queries, whatever the number of tenants).
pub(super) fn all(c: &Connection) -> Result<Vec<TenantIdentity>> {
    let mut by_tenant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut s = c.prepare("SELECT tenant_id, domain FROM tenant_domains").ctx("reading domains")?;
    let rows = s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading domains")?;
    for (tenant, domain) in rows {
        by_tenant.entry(tenant).or_default().insert(domain);
    }
    let mut s = c
        .prepare("SELECT id, initial_domain, display_name, cloud FROM tenants ORDER BY initial_domain")
        .ctx("reading tenants")?;
    let rows = s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading tenants")?;
    rows.into_iter()
        .map(|(tenant_id, initial_domain, display_name, cloud)| {
            Ok(TenantIdentity {
                verified_domains: by_tenant.remove(&tenant_id).unwrap_or_default(),
                tenant_id,
                initial_domain,
                display_name,
                cloud: parse_cloud(&cloud)?,
            })
        })
        .collect()
}

/// The tenant whose id, initial domain or verified domain is `id_or_domain`, case-insensitively.
pub(super) fn find(c: &Connection, id_or_domain: &str) -> Result<Option<TenantIdentity>> {
    let q = id_or_domain.trim().to_ascii_lowercase();
    let id: Option<String> = c
        .query_row(
            // Exact id or domain first; then the short names people type: the Tenant object's name,
            // the first label of the initial domain (`contoso`), the display name.
            "SELECT id FROM tenants WHERE id = ?1 OR initial_domain = ?1
             UNION ALL SELECT tenant_id FROM tenant_domains WHERE domain = ?1
             UNION ALL SELECT tenant_id FROM managed WHERE kind = 'Tenant' AND name = ?1
             UNION ALL SELECT id FROM tenants WHERE initial_domain LIKE ?1 || '.%' OR lower(display_name) = ?1
             LIMIT 1",
            [&q],
            |r| r.get(0),
        )
        .optional()
        .ctx("finding a tenant")?;
    match id {
        Some(id) => get(c, &id),
        None => Ok(None),
    }
}

/// The tenant other than `except` that owns `domain` (initial or verified), if any.
pub(super) fn owner_of_domain(c: &Connection, domain: &str, except: &str) -> Result<Option<String>> {
    c.prepare_cached(
        "SELECT id FROM tenants WHERE initial_domain = ?1 AND id <> ?2
         UNION ALL SELECT tenant_id FROM tenant_domains WHERE domain = ?1 AND tenant_id <> ?2 LIMIT 1",
    )
    .and_then(|mut s| s.query_row(params![domain.to_ascii_lowercase(), except], |r| r.get(0)).optional())
    .ctx("looking up a domain's tenant")
}

/// Creates a tenant with the R1 defaults. `false` when it already exists (nothing is changed).
pub(super) fn create(c: &Connection, identity: &TenantIdentity) -> Result<bool> {
    let id = identity.tenant_id.to_ascii_lowercase();
    if exists(c, &id)? {
        return Ok(false);
    }
    let initial = identity.initial_domain.trim().to_ascii_lowercase();
    let verified: BTreeSet<String> =
        identity.verified_domains.iter().map(|d| d.trim().to_ascii_lowercase()).filter(|d| *d != initial).collect();
    // A domain names one tenant: that is how an invited address finds its home tenant (R9).
    for domain in std::iter::once(&initial).chain(&verified) {
        if let Some(owner) = owner_of_domain(c, domain, &id)? {
            return Err(DirectoryError::Conflict(format!("domain {domain} already belongs to tenant {owner}")));
        }
    }
    c.execute(
        "INSERT INTO tenants (id, initial_domain, display_name, cloud) VALUES (?1, ?2, ?3, ?4)",
        params![id, initial, identity.display_name, cloud_str(identity.cloud)?],
    )
    .ctx("creating a tenant")?;
    for domain in &verified {
        c.execute("INSERT INTO tenant_domains (tenant_id, domain) VALUES (?1, ?2)", params![id, domain])
            .ctx("adding a tenant domain")?;
    }
    store_collaboration(c, &id, &ResolvedCollaboration::default())?;
    store_default_access(c, &id, &ResolvedAccess::system_default())?;
    feed::append(c, &id, "tenant", &id, "created")?;
    Ok(true)
}

pub(super) fn collaboration(c: &Connection, id: &str) -> Result<ResolvedCollaboration> {
    match read_json(c, "SELECT json FROM collaboration WHERE tenant_id = ?1", id)? {
        Some(json) => serde_json::from_str(&json).ctx("reading external collaboration settings"),
        None => Ok(ResolvedCollaboration::default()),
    }
}

pub(super) fn default_access(c: &Connection, id: &str) -> Result<ResolvedAccess> {
    let system = ResolvedAccess::system_default();
    match read_json(c, "SELECT json FROM default_access WHERE tenant_id = ?1", id)? {
        Some(json) => {
            let settings: CrossTenantAccessSettings =
                serde_json::from_str(&json).ctx("reading the default cross-tenant access")?;
            Ok(system.overlay(&settings))
        }
        None => Ok(system),
    }
}

fn read_json(c: &Connection, sql: &str, id: &str) -> Result<Option<String>> {
    c.prepare_cached(sql).and_then(|mut s| s.query_row([id], |r| r.get(0)).optional()).ctx("reading tenant settings")
}

/// Graph accepts only the three guest role ids as `guestUserRoleId` (R8).
pub(super) fn store_collaboration(c: &Connection, id: &str, value: &ResolvedCollaboration) -> Result<()> {
    let role = value.guest_user_role_id.to_ascii_lowercase();
    if !GUEST_ROLE_IDS.contains(&role.as_str()) {
        return Err(DirectoryError::Invalid(format!(
            "guestUserRoleId {:?} is not one of the guest role ids {} (R8)",
            value.guest_user_role_id,
            GUEST_ROLE_IDS.join(", ")
        )));
    }
    let json = serde_json::to_string(value).ctx("encoding external collaboration settings")?;
    c.execute(
        "INSERT INTO collaboration (tenant_id, json) VALUES (?1, ?2)
         ON CONFLICT (tenant_id) DO UPDATE SET json = excluded.json",
        params![id, json],
    )
    .ctx("writing external collaboration settings")?;
    Ok(())
}

/// Stored fully spelled out (`to_settings`): `ResolvedAccess` itself only serializes for display.
pub(super) fn store_default_access(c: &Connection, id: &str, value: &ResolvedAccess) -> Result<()> {
    let json = serde_json::to_string(&value.to_settings()).ctx("encoding the default access")?;
    c.execute(
        "INSERT INTO default_access (tenant_id, json) VALUES (?1, ?2)
         ON CONFLICT (tenant_id) DO UPDATE SET json = excluded.json",
        params![id, json],
    )
    .ctx("writing the default cross-tenant access")?;
    Ok(())
}

/// What the tenant's stored settings say, for the rules (R3–R5, R9).
pub(super) fn policy(c: &Connection, id: &str) -> Result<TenantPolicy> {
    let identity = require(c, id)?;
    Ok(TenantPolicy {
        collaboration: collaboration(c, id)?,
        default_access: default_access(c, id)?,
        partners: partners::list(c, id)?.into_iter().map(|p| (p.tenant_id.to_ascii_lowercase(), p.settings)).collect(),
        allowed_clouds: super::profile::allowed_clouds(c, id)?,
        identity,
    })
}

fn cloud_str(cloud: Cloud) -> Result<String> {
    match serde_json::to_value(cloud).ctx("encoding a cloud")? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(DirectoryError::Storage(format!("cloud encoded as {other}"))),
    }
}

fn parse_cloud(s: &str) -> Result<Cloud> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ctx("reading a tenant's cloud")
}
