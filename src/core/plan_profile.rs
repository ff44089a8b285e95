//! Planning of the tenant profile (`crate::core::tenant_profile`): tenant type, Microsoft cloud settings
//! (R14), branding and self-service of external tenants. Part of the Tenant's compared view.

use serde_json::{Value, json};

use super::super::model::{DesiredTenant, TenantSnapshot};
use super::super::operation::Operation;
use super::super::tenant_profile::{TenantProfile, TenantType, cloud_keyword};

/// Adds the profile to a Tenant view. Only what differs from a workforce tenant with no cloud settings
/// is written, so the views (and the ownership records) of tenants that use none of it do not change.
pub(super) fn add_to_view(view: &mut Value, p: &TenantProfile) {
    if p.tenant_type != TenantType::Workforce {
        view["tenantType"] = json!(p.tenant_type.as_str());
    }
    if !p.allowed_clouds.is_empty() {
        let clouds: Vec<&str> = p.allowed_clouds.iter().map(|c| cloud_keyword(*c)).collect();
        view["microsoftCloudSettings"] = json!({ "allowedClouds": clouds });
    }
    if let Some(b) = &p.branding {
        view["branding"] = json!(b);
    }
    if let Some(s) = &p.self_service_account {
        view["selfServiceAccount"] = json!(s);
    }
}

/// The profile the directory holds, where a setting the backend cannot read is taken as desired (it is
/// never compared; `notes` says so).
pub(super) fn observed(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> TenantProfile {
    let mut p = snapshot.profile.clone();
    if snapshot.unsupported.contains_key("tenantType") {
        p.tenant_type = tenant.profile.tenant_type;
    }
    p
}

/// The writes that bring `observed` to `desired`.
pub(super) fn ops(desired: &TenantProfile, observed: &TenantProfile) -> Vec<Operation> {
    let mut ops = Vec::new();
    if desired.allowed_clouds != observed.allowed_clouds {
        ops.push(Operation::SetCloudSettings { allowed_clouds: desired.allowed_clouds.clone() });
    }
    if desired.branding != observed.branding || desired.self_service_account != observed.self_service_account {
        ops.push(experience(desired));
    }
    ops
}

/// The writes that set up the profile of a tenant created in the same change.
pub(super) fn creation_ops(desired: &TenantProfile) -> Vec<Operation> {
    let mut ops = ops(desired, &TenantProfile::default());
    if desired.tenant_type != TenantType::Workforce
        && !ops.iter().any(|o| matches!(o, Operation::ConfigureTenantExperience { .. }))
    {
        ops.push(experience(desired));
    }
    ops
}

fn experience(p: &TenantProfile) -> Operation {
    Operation::ConfigureTenantExperience {
        tenant_type: p.tenant_type,
        branding: p.branding.clone(),
        self_service_account: p.self_service_account.clone(),
    }
}

/// `tenantType` is immutable: an existing tenant of the other type cannot be planned.
pub(super) fn type_mismatch(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> Option<String> {
    let observed = observed(tenant, snapshot).tenant_type;
    (observed != tenant.profile.tenant_type).then(|| {
        format!(
            "spec.tenantType is immutable: tenant {} is a {} tenant in the directory, the manifest says {}",
            tenant.identity.tenant_id,
            observed.as_str(),
            tenant.profile.tenant_type.as_str()
        )
    })
}

/// What the plan should say about settings the backend cannot manage: those the manifest sets are
/// written by no one, so applying fails (`NotImplemented`) rather than skipping them silently.
pub(super) fn notes(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> Vec<String> {
    let sets = |key: &str| match key {
        "branding" => tenant.profile.branding.is_some(),
        "selfServiceAccount" => tenant.profile.self_service_account.is_some(),
        "tenantType" => tenant.profile.tenant_type != TenantType::Workforce,
        _ => false,
    };
    snapshot
        .unsupported
        .iter()
        .filter(|(key, _)| sets(key))
        .map(|(key, why)| match key.as_str() {
            "tenantType" => format!("spec.tenantType cannot be checked: {why}"),
            _ => format!("spec.{key}: {why}; applying this change fails until it is"),
        })
        .collect()
}
