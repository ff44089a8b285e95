//! The tenant profile (`crate::core::tenant_profile`): tenant type, Microsoft cloud settings (R14), and
//! an external tenant's branding and self-service account settings. One row per tenant; a tenant
//! without one is a workforce tenant with no cloud settings. A branding image is kept as the value
//! written: a reference, a resolved reference with its digest (`logo.png (sha256:…)`), or a digest alone
//! (`sha256:…`, what the emulator writes for an uploaded image); the bytes are not the directory's.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed};
use crate::core::model::Cloud;
use crate::core::tenant_profile::{
    CompanyBranding, SelfServiceAccount, TenantProfile, TenantType, validate_color, validate_image_value,
};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

pub(super) fn get(c: &Connection, id: &str) -> Result<TenantProfile> {
    let row = c
        .prepare_cached("SELECT tenant_type, allowed_clouds, branding, self_service FROM tenant_profiles WHERE tenant_id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()
        })
        .ctx("reading a tenant's profile")?;
    let Some((tenant_type, clouds, branding, self_service)) = row else { return Ok(TenantProfile::default()) };
    Ok(TenantProfile {
        tenant_type: TenantType::parse(&tenant_type)
            .ok_or_else(|| DirectoryError::Storage(format!("unknown tenant type {tenant_type:?}")))?,
        allowed_clouds: serde_json::from_str(&clouds).ctx("reading a tenant's cloud settings")?,
        branding: branding.map(|b| serde_json::from_str(&b)).transpose().ctx("reading a tenant's branding")?,
        self_service_account: self_service
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .ctx("reading a tenant's self-service settings")?,
    })
}

/// R14: the other clouds the tenant allows B2B collaboration with.
pub(super) fn allowed_clouds(c: &Connection, id: &str) -> Result<BTreeSet<Cloud>> {
    Ok(get(c, id)?.allowed_clouds)
}

fn put(c: &Connection, id: &str, p: &TenantProfile) -> Result<()> {
    let clouds = serde_json::to_string(&p.allowed_clouds).ctx("encoding cloud settings")?;
    let branding = p.branding.as_ref().map(serde_json::to_string).transpose().ctx("encoding branding")?;
    let self_service =
        p.self_service_account.as_ref().map(serde_json::to_string).transpose().ctx("encoding self-service settings")?;
    c.execute(
        "INSERT INTO tenant_profiles (tenant_id, tenant_type, allowed_clouds, branding, self_service)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id) DO UPDATE SET tenant_type = excluded.tenant_type,
           allowed_clouds = excluded.allowed_clouds, branding = excluded.branding, self_service = excluded.self_service",
        params![id, p.tenant_type.as_str(), clouds, branding, self_service],
    )
    .ctx("writing a tenant's profile")?;
    Ok(())
}

/// Sets the Microsoft cloud settings (R14). Idempotent.
pub(super) fn set_clouds(c: &Connection, id: &str, clouds: &BTreeSet<Cloud>) -> Result<()> {
    let mut p = get(c, id)?;
    if p.allowed_clouds == *clouds {
        return Ok(());
    }
    p.allowed_clouds = clouds.clone();
    put(c, id, &p)?;
    feed::append(c, id, "tenant", id, "cloudSettings")
}

/// Sets the tenant type (only for a tenant created in the same change: it is immutable) and an external
/// tenant's branding and self-service settings. Idempotent.
pub(super) fn configure_experience(
    c: &Connection,
    id: &str,
    tenant_type: TenantType,
    branding: Option<&CompanyBranding>,
    self_service: Option<&SelfServiceAccount>,
    created_here: bool,
) -> Result<()> {
    let mut p = get(c, id)?;
    if p.tenant_type != tenant_type && !created_here {
        return Err(DirectoryError::Invalid(format!(
            "tenantType is immutable: tenant {id} is a {} tenant and cannot become {}",
            p.tenant_type.as_str(),
            tenant_type.as_str()
        )));
    }
    if tenant_type != TenantType::External && (branding.is_some() || self_service.is_some()) {
        return Err(DirectoryError::Invalid(format!(
            "tenant {id} is a {} tenant: company branding and self-service account settings are for external tenants only",
            tenant_type.as_str()
        )));
    }
    if let Some(b) = branding {
        let mut problems = Vec::new();
        if let Some(color) = &b.background_color {
            problems.extend(validate_color(color).err().map(|e| format!("backgroundColor: {e}")));
        }
        for (field, value) in b.images() {
            problems.extend(value.and_then(|v| validate_image_value(v).err()).map(|e| format!("{field}: {e}")));
        }
        if !problems.is_empty() {
            return Err(DirectoryError::Invalid(format!("branding of tenant {id}: {}", problems.join("; "))));
        }
    }
    let next = TenantProfile {
        tenant_type,
        allowed_clouds: p.allowed_clouds.clone(),
        branding: branding.cloned(),
        self_service_account: self_service.cloned(),
    };
    if next == p {
        return Ok(());
    }
    p = next;
    put(c, id, &p)?;
    feed::append(c, id, "tenant", id, "experience")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 4 moves the emulator's `allowedCloudEndpoints` (an extra of the policy root until then)
    /// into the directory's cloud settings, where the rules (R14) see it.
    #[test]
    fn migration_4_moves_the_emulators_allowed_cloud_endpoints_into_the_directory() {
        let c = Connection::open_in_memory().unwrap();
        for sql in &super::super::schema::MIGRATIONS[..3] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            r#"INSERT INTO tenants (id, initial_domain, display_name, cloud) VALUES ('t1', 'a.onmicrosoft.com', 'a', 'global');
               INSERT INTO tenants (id, initial_domain, display_name, cloud) VALUES ('t2', 'b.onmicrosoft.com', 'b', 'global');
               INSERT INTO emulator_extras (tenant_id, kind, key, json) VALUES ('t1', 'crossTenantAccessPolicy', 'policy',
                 '{"displayName":"x","allowedCloudEndpoints":["microsoftonline.us","Partner.MicrosoftOnline.cn","unknown.example"]}');"#,
        )
        .unwrap();
        c.execute_batch(super::super::schema::MIGRATIONS[3]).unwrap();
        assert_eq!(get(&c, "t1").unwrap().allowed_clouds, BTreeSet::from([Cloud::UsGovernment, Cloud::China]));
        assert_eq!(get(&c, "t2").unwrap(), TenantProfile::default());
        let extras: String = c.query_row("SELECT json FROM emulator_extras WHERE tenant_id = 't1'", [], |r| r.get(0)).unwrap();
        assert_eq!(extras, r#"{"displayName":"x"}"#);
    }
}
