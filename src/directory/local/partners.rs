//! Partner configurations of the cross-tenant access policy, stored as written: a setting left
//! absent inherits the tenant's default configuration (R2), so it is kept absent here.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Ctx, feed};
use crate::core::model::PartnerConfiguration;
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

const COLUMNS: &str = "partner_tenant_id, settings_json, identity_sync_json, is_in_mto";

type RawPartner = (String, String, Option<String>, bool);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawPartner> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode((tenant_id, settings, sync, mto): RawPartner) -> Result<PartnerConfiguration> {
    Ok(PartnerConfiguration {
        settings: serde_json::from_str(&settings).ctx("reading a partner configuration")?,
        identity_synchronization: sync
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .ctx("reading a partner's identity synchronization")?,
        is_in_multi_tenant_organization: mto,
        tenant_id,
    })
}

/// The tenant's partner configurations, by partner tenant id.
pub(super) fn list(c: &Connection, tenant_id: &str) -> Result<Vec<PartnerConfiguration>> {
    let mut s = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM partners WHERE tenant_id = ?1 ORDER BY partner_tenant_id"))
        .ctx("reading partner configurations")?;
    let rows = s
        .query_map([tenant_id], raw)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx("reading partner configurations")?;
    rows.into_iter().map(|r| decode(r).and_then(|p| marked(c, tenant_id, p))).collect()
}

/// A partner of a tenant in the same multi-tenant organization reads as marked (R15).
fn marked(c: &Connection, tenant_id: &str, mut p: PartnerConfiguration) -> Result<PartnerConfiguration> {
    if !p.is_in_multi_tenant_organization {
        p.is_in_multi_tenant_organization = super::mto::pair_active(c, tenant_id, &p.tenant_id)?;
    }
    Ok(p)
}

pub(super) fn get(c: &Connection, tenant_id: &str, partner: &str) -> Result<Option<PartnerConfiguration>> {
    let row = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM partners WHERE tenant_id = ?1 AND partner_tenant_id = ?2"))
        .and_then(|mut s| s.query_row(params![tenant_id, partner], raw).optional())
        .ctx("reading a partner configuration")?;
    row.map(|r| decode(r).and_then(|p| marked(c, tenant_id, p))).transpose()
}

/// Creates or replaces the partner configuration (identity synchronization included, replaced whole).
pub(super) fn put(c: &Connection, tenant_id: &str, partner: &PartnerConfiguration) -> Result<()> {
    let partner_id = partner.tenant_id.trim().to_ascii_lowercase();
    if partner_id.is_empty() {
        return Err(DirectoryError::Invalid("a partner configuration needs a tenant id".into()));
    }
    if partner_id == tenant_id {
        return Err(DirectoryError::Invalid(format!("tenant {tenant_id} cannot have a partner configuration for itself")));
    }
    let existed = get(c, tenant_id, &partner_id)?.is_some();
    let settings = serde_json::to_string(&partner.settings).ctx("encoding a partner configuration")?;
    let sync = partner
        .identity_synchronization
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .ctx("encoding identity synchronization")?;
    c.execute(
        "INSERT INTO partners (tenant_id, partner_tenant_id, settings_json, identity_sync_json, is_in_mto)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, partner_tenant_id) DO UPDATE SET
           settings_json = excluded.settings_json,
           identity_sync_json = excluded.identity_sync_json,
           is_in_mto = excluded.is_in_mto",
        params![tenant_id, partner_id, settings, sync, partner.is_in_multi_tenant_organization],
    )
    .ctx("writing a partner configuration")?;
    let change = if existed { "updated" } else { "created" };
    feed::append(c, tenant_id, "partner", &partner_id, change)
}

/// Deletes the partner configuration; the partner falls back to the defaults (R2). Absent is fine.
pub(super) fn delete(c: &Connection, tenant_id: &str, partner: &str) -> Result<()> {
    let partner_id = partner.trim().to_ascii_lowercase();
    let n = c
        .execute("DELETE FROM partners WHERE tenant_id = ?1 AND partner_tenant_id = ?2", params![tenant_id, partner_id])
        .ctx("deleting a partner configuration")?;
    if n > 0 {
        feed::append(c, tenant_id, "partner", &partner_id, "deleted")?;
    }
    Ok(())
}
