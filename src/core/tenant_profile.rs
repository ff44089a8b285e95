//! Tenant-wide settings beside external collaboration and cross-tenant access: the Microsoft cloud
//! settings (R14: which *other* clouds B2B collaboration is allowed with) and, for external (customer)
//! tenants, company branding of the sign-in and sign-up pages and self-service account settings.
//!
//! The spec types double as canonical forms: `TenantProfile` holds every value present, clouds as a
//! set and colours uppercase, so two profiles compare equal exactly when they mean the same thing.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::Cloud;

/// A workforce tenant (employees, B2B guests) or an external tenant (customers, sign-up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TenantType {
    #[default]
    Workforce,
    External,
}

impl TenantType {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantType::Workforce => "workforce",
            TenantType::External => "external",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [TenantType::Workforce, TenantType::External].into_iter().find(|t| t.as_str() == s)
    }
}

/// Microsoft cloud settings (R14) as a manifest writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MicrosoftCloudSettings {
    /// The other Microsoft clouds B2B collaboration is allowed with: `usGovernment`, `china`, `global`.
    /// Default none. Collaboration across clouds needs both tenants to allow each other's cloud.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub allowed_clouds: Vec<Cloud>,
}

/// Company branding of an external tenant's sign-in and sign-up pages (Graph's organizationalBranding).
/// Images are references (an https URL or a file path), never inlined.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyBranding {
    /// Text at the bottom of the sign-in box (at most 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub sign_in_page_text: Option<String>,
    /// Hint shown in the username box (at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub username_hint_text: Option<String>,
    /// Background colour behind the background image, `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub background_color: Option<String>,
    /// Banner logo: an https URL or a path to a PNG or JPEG image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub banner_logo: Option<String>,
    /// Square logo: an https URL or a path to a PNG or JPEG image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub square_logo: Option<String>,
    /// Background image: an https URL or a path to a PNG or JPEG image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub background_image: Option<String>,
}

impl CompanyBranding {
    /// Canonical form: texts as written, the colour uppercase, image references trimmed; empty values absent.
    pub fn canonical(&self) -> Self {
        let keep = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        Self {
            sign_in_page_text: self.sign_in_page_text.clone().filter(|s| !s.is_empty()),
            username_hint_text: self.username_hint_text.clone().filter(|s| !s.is_empty()),
            background_color: keep(&self.background_color).map(|c| c.to_ascii_uppercase()),
            banner_logo: keep(&self.banner_logo),
            square_logo: keep(&self.square_logo),
            background_image: keep(&self.background_image),
        }
    }

    /// The image references, by field name.
    pub fn images(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("bannerLogo", self.banner_logo.as_deref()),
            ("squareLogo", self.square_logo.as_deref()),
            ("backgroundImage", self.background_image.as_deref()),
        ]
    }
}

/// What customers of an external tenant may do with their own account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelfServiceAccount {
    /// Edit their profile.
    #[serde(default)]
    pub profile_edit: bool,
    /// Delete their account.
    #[serde(default)]
    pub account_deletion: bool,
    /// Register MFA methods themselves.
    #[serde(default)]
    pub mfa_enrollment: bool,
    /// Reset their password (self-service password reset).
    #[serde(default)]
    pub password_reset: bool,
}

/// The tenant-wide settings of this module in canonical form: what the planner compares and backends store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantProfile {
    pub tenant_type: TenantType,
    /// R14: the other clouds B2B collaboration is allowed with.
    #[serde(default)]
    pub allowed_clouds: BTreeSet<Cloud>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<CompanyBranding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_service_account: Option<SelfServiceAccount>,
}

/// Settings of the profile a backend cannot read or write, with why (e.g. not in its Graph contract).
/// Keys: `tenantType`, `branding`, `selfServiceAccount`.
pub type Unsupported = std::collections::BTreeMap<String, String>;

/// Graph's spelling of a cloud in `crossTenantAccessPolicy.allowedCloudEndpoints`.
pub fn cloud_endpoint(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global => "microsoftonline.com",
        Cloud::UsGovernment => "microsoftonline.us",
        Cloud::China => "partner.microsoftonline.cn",
    }
}

/// The cloud of an `allowedCloudEndpoints` entry, case-insensitively; `None` for an unknown endpoint.
pub fn cloud_of_endpoint(endpoint: &str) -> Option<Cloud> {
    [Cloud::Global, Cloud::UsGovernment, Cloud::China]
        .into_iter()
        .find(|c| cloud_endpoint(*c).eq_ignore_ascii_case(endpoint.trim()))
}

/// The manifest keyword of a cloud (`global`, `usGovernment`, `china`).
pub fn cloud_keyword(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global => "global",
        Cloud::UsGovernment => "usGovernment",
        Cloud::China => "china",
    }
}

/// A readable name of a cloud.
pub fn cloud_name(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global => "global",
        Cloud::UsGovernment => "US Government",
        Cloud::China => "China",
    }
}

/// A `#RRGGBB` colour.
pub fn validate_color(value: &str) -> Result<(), String> {
    let ok = value.len() == 7 && value.starts_with('#') && value[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok { Ok(()) } else { Err(format!("{value:?} is not a colour like #0072C6 (#RRGGBB)")) }
}

/// An image reference: an https URL or a file path, naming a PNG or JPEG image. Inline data is refused.
pub fn validate_image_ref(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.len() > 2048 || v.chars().any(char::is_control) {
        return Err(format!("{v:?} is not an image reference"));
    }
    let lower = v.to_ascii_lowercase();
    if lower.starts_with("data:") {
        return Err("images are referenced by URL or path, never inlined (data: URI)".into());
    }
    if lower.contains("://") {
        if !lower.starts_with("https://") {
            return Err(format!("{v:?}: an image URL must be https"));
        }
        super::validate::http_url(v)?;
    }
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    if [".png", ".jpg", ".jpeg"].iter().any(|ext| path.ends_with(ext)) {
        Ok(())
    } else {
        Err(format!("{v:?} does not name a PNG or JPEG image (.png, .jpg, .jpeg)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_both_ways() {
        for c in [Cloud::Global, Cloud::UsGovernment, Cloud::China] {
            assert_eq!(cloud_of_endpoint(cloud_endpoint(c)), Some(c));
        }
        assert_eq!(cloud_of_endpoint(" MicrosoftOnline.US "), Some(Cloud::UsGovernment));
        assert_eq!(cloud_of_endpoint("example.com"), None);
    }

    #[test]
    fn colours_and_images_are_validated() {
        assert!(validate_color("#0072c6").is_ok());
        assert!(validate_color("0072C6").is_err());
        assert!(validate_color("#0072C").is_err());
        assert!(validate_image_ref("https://cdn.contoso.com/banner.png?v=2").is_ok());
        assert!(validate_image_ref("branding/square.JPG").is_ok());
        assert!(validate_image_ref("http://cdn.contoso.com/banner.png").is_err());
        assert!(validate_image_ref("data:image/png;base64,AAAA").unwrap_err().contains("never inlined"));
        assert!(validate_image_ref("logo.gif").is_err());
    }

    #[test]
    fn branding_canonical_form() {
        let b = CompanyBranding {
            background_color: Some("#00ff00".into()),
            banner_logo: Some(" a.png ".into()),
            sign_in_page_text: Some(String::new()),
            ..Default::default()
        };
        let c = b.canonical();
        assert_eq!(c.background_color.as_deref(), Some("#00FF00"));
        assert_eq!(c.banner_logo.as_deref(), Some("a.png"));
        assert_eq!(c.sign_in_page_text, None);
    }
}
