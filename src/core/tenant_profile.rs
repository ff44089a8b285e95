//! Tenant-wide settings beside external collaboration and cross-tenant access: the Microsoft cloud
//! settings (R14: which *other* clouds B2B collaboration is allowed with) and, for external (customer)
//! tenants, company branding of the sign-in and sign-up pages and self-service account settings.
//!
//! The spec types double as canonical forms: `TenantProfile` holds every value present, clouds as a
//! set and colours uppercase, so two profiles compare equal exactly when they mean the same thing.
//!
//! **Branding images** are references in manifests (an https URL or a file path). Before planning, the CLI
//! and the controller resolve each to its bytes (`CompanyBranding::attach`): the field then reads
//! `logo.png (sha256:0123456789abcdef)`, and the bytes ride along, outside every view, plan and record
//! (`ResolvedImages`). Directories that hold the bytes (Graph) show an image as `sha256:…` of what they
//! hold, so images compare by content (`same_image`); the local directory keeps the resolved value as it
//! was written. A reference that could not be resolved is kept with why, and the planner refuses the
//! tenant's change naming the field (`image_errors`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

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
    /// The images' bytes, once resolved (never in manifests, views, plans or records).
    #[serde(skip)]
    #[schemars(skip)]
    pub resolved: ResolvedImages,
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
            resolved: self.resolved.clone(),
        }
    }

    fn image_mut(&mut self, field: &str) -> Option<&mut Option<String>> {
        match field {
            "bannerLogo" => Some(&mut self.banner_logo),
            "squareLogo" => Some(&mut self.square_logo),
            "backgroundImage" => Some(&mut self.background_image),
            _ => None,
        }
    }

    /// Records what the reference of image `field` resolved to: its bytes (the field then reads
    /// `reference (sha256:…)`) or why it could not be read (the planner refuses the tenant's change).
    pub fn attach(&mut self, field: &str, outcome: Result<ImageContent, String>) {
        let Some(slot) = self.image_mut(field) else { return };
        let Some(reference) = slot.as_deref().map(|v| image_reference(v).to_string()) else { return };
        if let Ok(image) = &outcome {
            *slot = Some(format!("{reference} (sha256:{})", image.digest));
        }
        self.resolved.0.insert(field.to_string(), outcome.map(Arc::new));
    }

    /// The bytes image `field` resolved to, when it was resolved.
    pub fn content(&self, field: &str) -> Option<&ImageContent> {
        self.resolved.0.get(field).and_then(|r| r.as_ref().ok()).map(Arc::as_ref)
    }

    /// Why the references that could not be resolved were not, by field.
    pub fn image_errors(&self) -> Vec<(&str, &str)> {
        self.resolved.0.iter().filter_map(|(f, r)| r.as_ref().err().map(|e| (f.as_str(), e.as_str()))).collect()
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

/// Largest image entente uploads (Graph's own limits are smaller: a banner logo is at most 36 × 245
/// pixels, a square logo 10 KB); larger references are refused before planning.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// A branding image's content: PNG or JPEG bytes, their media type and digest.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageContent {
    pub bytes: Arc<[u8]>,
    /// `image/png` or `image/jpeg`, from the bytes themselves.
    pub content_type: &'static str,
    /// The first 16 hex digits of the bytes' SHA-256.
    pub digest: String,
}

impl fmt::Debug for ImageContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} bytes sha256:{}", self.content_type, self.bytes.len(), self.digest)
    }
}

impl ImageContent {
    /// Checks `bytes` are a PNG or JPEG image (by their signature; a declared media type, e.g. an HTTP
    /// `Content-Type`, must agree) of at most `MAX_IMAGE_BYTES`.
    pub fn from_bytes(bytes: Vec<u8>, declared: Option<&str>) -> Result<Self, String> {
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(format!("{} bytes is more than the {} MiB an image may have", bytes.len(), MAX_IMAGE_BYTES >> 20));
        }
        let content_type = image_type(&bytes).ok_or("not a PNG or JPEG image (its first bytes are neither signature)")?;
        if let Some(declared) = declared.map(|d| d.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            && !declared.is_empty()
            && declared != "application/octet-stream"
            && declared != content_type
            && !(content_type == "image/jpeg" && declared == "image/jpg")
        {
            return Err(format!("served as {declared}, but the bytes are {content_type}"));
        }
        Ok(Self { digest: image_digest(&bytes), bytes: bytes.into(), content_type })
    }
}

/// `image/png` or `image/jpeg` from the bytes' signature.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// The first 16 hex digits of the SHA-256 of `bytes`: how images are compared.
pub fn image_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The resolved images of a branding, by field. Compared as always equal: the fields themselves carry
/// each image's digest (`reference (sha256:…)`), so the content is compared through them.
#[derive(Clone, Default)]
pub struct ResolvedImages(pub BTreeMap<String, Result<Arc<ImageContent>, String>>);

impl PartialEq for ResolvedImages {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ResolvedImages {}

impl fmt::Debug for ResolvedImages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// The reference part of an image value (`logo.png (sha256:…)` → `logo.png`).
pub fn image_reference(value: &str) -> &str {
    match value.rsplit_once(" (sha256:") {
        Some((reference, rest)) if rest.ends_with(')') => reference,
        _ => value,
    }
}

/// The digest an image value names: `reference (sha256:d)` (resolved) or `sha256:d` (what a directory
/// holding the bytes shows); `None` for a bare reference.
pub fn image_value_digest(value: &str) -> Option<&str> {
    let d = match value.rsplit_once(" (sha256:") {
        Some((_, rest)) => rest.strip_suffix(')')?,
        None => value.strip_prefix("sha256:")?,
    };
    (!d.is_empty() && d.chars().all(|c| c.is_ascii_hexdigit())).then_some(d)
}

/// Whether two image values show the same image: the same digest, or (unresolved) the same text.
pub fn same_image(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => match (image_value_digest(a), image_value_digest(b)) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => a == b,
        },
        (a, b) => a == b,
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
/// Keys: `tenantType`, `branding`, `selfServiceAccount`, or one self-service option
/// (`selfServiceAccount.profileEdit`, …). `selfServiceAccount.passwordReset` is read and written, and says
/// what turning it off does on the backend (on Graph: only the sign-in page's link is hidden).
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

/// An image value a directory stores: a reference (`validate_image_ref`), a resolved reference
/// `reference (sha256:…)`, or the digest alone `sha256:…` (an image whose reference is unknown).
pub fn validate_image_value(value: &str) -> Result<(), String> {
    match image_value_digest(value) {
        Some(_) if value.starts_with("sha256:") => Ok(()),
        Some(_) => validate_image_ref(image_reference(value)),
        None => validate_image_ref(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn images_are_checked_resolved_and_compared_by_content() {
        let png = ImageContent::from_bytes(PNG.to_vec(), Some("image/png")).unwrap();
        assert_eq!(png.content_type, "image/png");
        assert_eq!(png.digest.len(), 16);
        assert!(ImageContent::from_bytes(b"GIF89a".to_vec(), None).unwrap_err().contains("not a PNG or JPEG"));
        assert!(ImageContent::from_bytes(PNG.to_vec(), Some("image/jpeg")).unwrap_err().contains("served as image/jpeg"));
        assert!(ImageContent::from_bytes(vec![0xFF; MAX_IMAGE_BYTES + 1], None).unwrap_err().contains("5 MiB"));
        assert!(ImageContent::from_bytes(vec![0xFF, 0xD8, 0xFF, 0xE0], Some("image/jpg")).is_ok());

        let mut b =
            CompanyBranding { banner_logo: Some("logo.png".into()), square_logo: Some("sq.png".into()), ..Default::default() };
        b.attach("bannerLogo", Ok(png.clone()));
        b.attach("squareLogo", Err("cannot read sq.png: gone".into()));
        let banner = b.banner_logo.clone().unwrap();
        assert_eq!(banner, format!("logo.png (sha256:{})", png.digest));
        assert_eq!(b.square_logo.as_deref(), Some("sq.png"));
        assert_eq!(b.content("bannerLogo").unwrap().digest, png.digest);
        assert_eq!(b.image_errors(), [("squareLogo", "cannot read sq.png: gone")]);
        assert_eq!(image_reference(&banner), "logo.png");
        assert!(same_image(Some(&banner), Some(&format!("sha256:{}", png.digest))));
        assert!(!same_image(Some(&banner), Some("sha256:0000000000000000")));
        assert!(!same_image(Some(&banner), None));
        assert!(same_image(Some("a.png"), Some("a.png")));
        assert!(validate_image_value(&banner).is_ok());
        assert!(validate_image_value("sha256:0123abcd").is_ok());
        assert!(validate_image_value("sha256:xyz").is_err());
    }

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
