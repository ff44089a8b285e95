//! Planning of the tenant profile (`crate::core::tenant_profile`): tenant type, Microsoft cloud settings
//! (R14), branding and self-service of external tenants. Part of the Tenant's compared view.
//!
//! Branding images compare by content: a directory showing `sha256:d` holds the image a manifest's
//! `logo.png (sha256:d)` resolved to, so the observed value is taken as the desired one and no change
//! shows; a different digest shows as `branding.bannerLogo: sha256:ab… → logo.png (sha256:cd…)`.

use serde_json::{Value, json};

use super::super::model::{DesiredTenant, TenantSnapshot};
use super::super::operation::Operation;
use super::super::tenant_profile::{SelfServiceAccount, TenantProfile, TenantType, cloud_keyword, same_image};

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
/// never compared; `notes` says so). Self-service settings that are all off mean the same as none (a
/// backend that reads them from other settings, Graph, cannot tell the two apart), so a change shows only
/// the options that differ.
pub(super) fn observed(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> TenantProfile {
    let mut p = snapshot.profile.clone();
    if snapshot.unsupported.contains_key("tenantType") {
        p.tenant_type = tenant.profile.tenant_type;
    }
    let off = SelfServiceAccount::default();
    match (&p.self_service_account, &tenant.profile.self_service_account) {
        (None, Some(_)) => p.self_service_account = Some(off),
        (Some(held), None) if *held == off => p.self_service_account = None,
        _ => {}
    }
    if let (Some(held), Some(wanted)) = (p.branding.as_mut(), tenant.profile.branding.as_ref()) {
        let wanted = wanted.canonical();
        for (slot, want) in [
            (&mut held.banner_logo, &wanted.banner_logo),
            (&mut held.square_logo, &wanted.square_logo),
            (&mut held.background_image, &wanted.background_image),
        ] {
            if slot.is_some() && same_image(slot.as_deref(), want.as_deref()) {
                slot.clone_from(want);
            }
        }
    }
    p
}

/// The branding images whose references could not be resolved to an image, as one plan error: the
/// tenant's change is not planned, so nothing of its profile is written with a wrong or missing image.
pub(super) fn image_errors(tenant: &DesiredTenant) -> Option<String> {
    let b = tenant.profile.branding.as_ref()?;
    let errors = b.image_errors();
    (!errors.is_empty())
        .then(|| errors.iter().map(|(field, why)| format!("spec.branding.{field}: {why}")).collect::<Vec<_>>().join("; "))
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

/// `tenantType` is immutable: an existing tenant of the other type cannot be planned; nor can a tenant
/// whose branding names an image that could not be read (`image_errors`).
pub(super) fn type_mismatch(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> Option<String> {
    if let Some(e) = image_errors(tenant) {
        return Some(e);
    }
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
/// written by no one, so applying fails (`NotImplemented`) rather than skipping them silently. A
/// self-service option is keyed `selfServiceAccount.{option}` and counts as set when it is on, except
/// `selfServiceAccount.passwordReset`, what turning password reset off does on this backend (Graph: the
/// link is hidden, the email method stays), said when the plan turns it off.
pub(super) fn notes(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> Vec<String> {
    let wanted = tenant.profile.self_service_account.clone().unwrap_or_default();
    let held = observed(tenant, snapshot).self_service_account.unwrap_or_default();
    let sets = |key: &str| match key {
        "branding" => tenant.profile.branding.is_some(),
        "selfServiceAccount" => tenant.profile.self_service_account.is_some(),
        "selfServiceAccount.profileEdit" => wanted.profile_edit,
        "selfServiceAccount.accountDeletion" => wanted.account_deletion,
        "selfServiceAccount.mfaEnrollment" => wanted.mfa_enrollment,
        "selfServiceAccount.passwordReset" => held.password_reset && !wanted.password_reset,
        "tenantType" => tenant.profile.tenant_type != TenantType::Workforce,
        _ => false,
    };
    snapshot
        .unsupported
        .iter()
        .filter(|(key, _)| sets(key))
        .map(|(key, why)| match key.as_str() {
            "tenantType" => format!("spec.tenantType cannot be checked: {why}"),
            "selfServiceAccount.passwordReset" => format!("spec.selfServiceAccount.passwordReset: {why}"),
            _ => format!("spec.{key}: {why}; applying this change fails until it is"),
        })
        .collect()
}
