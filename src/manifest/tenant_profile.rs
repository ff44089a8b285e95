//! `Tenant` fields of the tenant profile: `tenantType`, `microsoftCloudSettings` (R14), and the branding
//! and self-service account settings only an external tenant may carry.

use super::Ctx;
use crate::api::tenant::TenantSpec;
use crate::core::tenant_profile::{TenantProfile, TenantType, cloud_keyword, validate_color, validate_image_ref};

/// Validates the profile fields of a Tenant (errors into `ctx`) and returns them in canonical form.
pub(super) fn profile(ctx: &mut Ctx<'_>, s: &TenantSpec) -> TenantProfile {
    for (i, c) in s.microsoft_cloud_settings.allowed_clouds.iter().enumerate() {
        if *c == s.cloud {
            ctx.err(
                &format!("spec.microsoftCloudSettings.allowedClouds[{i}]"),
                format!(
                    "{} is the tenant's own cloud: list only the other clouds B2B collaboration is allowed with (R14)",
                    cloud_keyword(*c)
                ),
            );
        }
    }
    let external = s.tenant_type == TenantType::External;
    if !external {
        for (field, set) in
            [("spec.branding", s.branding.is_some()), ("spec.selfServiceAccount", s.self_service_account.is_some())]
        {
            if set {
                ctx.err(
                    field,
                    format!(
                        "only an external tenant (spec.tenantType: external) has {}; this tenant is {}",
                        if field == "spec.branding" { "company branding" } else { "self-service account settings" },
                        s.tenant_type.as_str()
                    ),
                );
            }
        }
    }
    if let Some(b) = &s.branding {
        if let Some(c) = &b.background_color {
            ctx.check("spec.branding.backgroundColor", validate_color(c.trim()));
        }
        for (field, value, max) in
            [("signInPageText", &b.sign_in_page_text, 1024), ("usernameHintText", &b.username_hint_text, 64)]
        {
            if let Some(v) = value
                && v.chars().count() > max
            {
                ctx.err(&format!("spec.branding.{field}"), format!("at most {max} characters"));
            }
        }
        for (field, value) in b.images() {
            if let Some(v) = value {
                ctx.check(&format!("spec.branding.{field}"), validate_image_ref(v));
            }
        }
    }
    TenantProfile {
        tenant_type: s.tenant_type,
        allowed_clouds: s.microsoft_cloud_settings.allowed_clouds.iter().copied().collect(),
        branding: s.branding.as_ref().map(|b| b.canonical()).filter(|b| *b != Default::default()),
        self_service_account: s.self_service_account.clone(),
    }
}
