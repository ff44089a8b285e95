//! The tenant's own profile on Graph v1.0 (`crate::core::tenant_profile`):
//!
//! - **type**: `GET /organization/{id}?$select=id,tenantType` (`AAD` workforce, `CIAM` external). The type is
//!   immutable: the planner compares it, so a manifest of the other type is a plan error. Unreadable (no
//!   `Organization.Read.All`, or `AAD B2C`): listed in the snapshot's `unsupported` and taken from the manifest.
//! - **company branding** of an external tenant: `GET /organization/{id}/branding` (404: none),
//!   `PATCH` the texts and background colour (`Accept-Language: 0`, the default branding; `null` clears),
//!   `DELETE` when the manifest drops the branding (404 tolerated). A workforce tenant's branding is never
//!   read or written: manifests cannot set it, and entente must not remove what an administrator configured.
//! - **branding images** (`bannerLogo`, `squareLogo`, `backgroundImage`) are streams of the default
//!   localization: `GET /organization/{id}/branding/localizations/0/{image}` (one per image the branding's
//!   `{image}RelativeUrl` says exists) is read into `sha256:…` of its bytes, so plans compare content;
//!   `PUT` with the image bytes (`Content-Type: image/png|image/jpeg`, 204) when the digest differs from the
//!   manifest's resolved image, `DELETE` (204; 404 tolerated) when the manifest drops it, and before
//!   deleting the branding (Graph refuses while a stream is set). Both are idempotent, so retries are safe.
//!   The bytes come with the operation (`CompanyBranding::content`, resolved before planning by the CLI or
//!   the controller); an image reference that was not resolved fails before anything is written.
//! - **self-service account settings**: Graph v1.0 has no API for them (`mapping::SELF_SERVICE_NOT_IMPLEMENTED`),
//!   so asking for them fails with `NotImplemented` and the plan says so beforehand.

use reqwest::Method;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use super::mapping;
use crate::core::tenant_profile::{
    CompanyBranding, ImageContent, SelfServiceAccount, TenantProfile, TenantType, Unsupported, image_digest, image_reference,
    image_value_digest,
};
use crate::directory::DirectoryError;
use crate::graph::wire::CrossTenantAccessPolicyRoot;

/// The default branding's locale, as Graph spells it in `Accept-Language`.
const DEFAULT_LOCALE: &str = "0";

impl GraphDirectory {
    fn branding_url(&self) -> Result<reqwest::Url, DirectoryError> {
        self.url(&format!("/organization/{}/branding", self.tenant_id), &[])
    }

    /// The stream of image `name` (`bannerLogo`, …) of the default localization.
    fn image_url(&self, name: &str) -> Result<reqwest::Url, DirectoryError> {
        self.url(&format!("/organization/{}/branding/localizations/{DEFAULT_LOCALE}/{name}", self.tenant_id), &[])
    }

    /// The default branding as the core's, each image Graph holds as `sha256:…` of its bytes (one `GET`
    /// per image set); an image whose stream answers no image bytes stays `graph:{relativeUrl}`.
    async fn read_branding(&self) -> Result<Option<CompanyBranding>, DirectoryError> {
        let Some(raw) = self.branding().await? else { return Ok(None) };
        let mut b = mapping::branding(&raw);
        for (name, slot) in
            [("bannerLogo", &mut b.banner_logo), ("squareLogo", &mut b.square_logo), ("backgroundImage", &mut b.background_image)]
        {
            if slot.is_none() {
                continue;
            }
            let resp = self.http.send(&Call::new(Method::GET, self.image_url(name)?, Cost::Read(1.0))).await?;
            if resp.status == 404 {
                *slot = None;
                continue;
            }
            if !resp.is_success() {
                return Err(resp.error());
            }
            let is_image = resp.header("content-type").is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("image/"));
            if is_image && !resp.body.is_empty() {
                *slot = Some(format!("sha256:{}", image_digest(&resp.body)));
            }
        }
        Ok(Some(b))
    }

    /// The tenant's type from `organization.tenantType`, or why it cannot be known.
    async fn tenant_type(&self) -> Result<TenantType, String> {
        let url =
            self.url(&format!("/organization/{}", self.tenant_id), &[("$select", "id,tenantType")]).map_err(|e| e.to_string())?;
        let org: Value = self.get_json(url).await.map_err(|e| {
            format!(
                "organization.tenantType cannot be read ({e}), so the tenant type is not checked; grant Organization.Read.All"
            )
        })?;
        match org.get("tenantType").and_then(Value::as_str) {
            Some(t) => mapping::tenant_type(t),
            None => Err("organization.tenantType is missing from Graph's answer, so the tenant type is not checked".into()),
        }
    }

    /// The default branding, `None` when the tenant has none (404).
    async fn branding(&self) -> Result<Option<Value>, DirectoryError> {
        let call = Call::new(Method::GET, self.branding_url()?, Cost::Read(1.0)).header("Accept-Language", DEFAULT_LOCALE);
        let resp = self.http.send(&call).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        resp.json().map(Some)
    }

    /// The profile the snapshot shows (clouds from the policy root `root`, type, an external tenant's
    /// branding) and what of it cannot be read.
    pub(super) async fn read_profile(
        &self,
        root: &CrossTenantAccessPolicyRoot,
    ) -> Result<(TenantProfile, Unsupported), DirectoryError> {
        let (tenant_type, type_error) = match self.tenant_type().await {
            Ok(t) => (t, None),
            Err(why) => (TenantType::Workforce, Some(why)),
        };
        let branding = if tenant_type == TenantType::External { self.read_branding().await? } else { None };
        Ok((mapping::profile(root, tenant_type, branding), mapping::unsupported_profile(type_error.as_deref())))
    }

    /// `ConfigureTenantExperience`: the type exists already (entente never creates Graph tenants, and the
    /// planner refuses a different one); the branding's texts, colour and images are written, a
    /// self-service setting then fails as not implemented.
    pub(super) async fn configure_experience(
        &self,
        tenant_type: TenantType,
        branding: Option<&CompanyBranding>,
        self_service: Option<&SelfServiceAccount>,
    ) -> Result<(), DirectoryError> {
        if tenant_type == TenantType::External {
            match branding {
                Some(b) => self.put_branding(b).await?,
                None => self.remove_branding().await?,
            }
        }
        if self_service.is_some() {
            return Err(DirectoryError::NotImplemented(mapping::SELF_SERVICE_NOT_IMPLEMENTED.into()));
        }
        Ok(())
    }

    /// Every image the manifest names must have been resolved to its bytes before anything is written.
    fn wanted_images(b: &CompanyBranding) -> Result<Vec<(&'static str, Option<&ImageContent>)>, DirectoryError> {
        b.images()
            .into_iter()
            .map(|(name, value)| match value {
                None => Ok((name, None)),
                Some(v) => b.content(name).map(|c| (name, Some(c))).ok_or_else(|| {
                    DirectoryError::Invalid(format!(
                        "branding.{name}: {:?} was not resolved to an image before planning (the CLI reads files and \
                         https URLs, the controller https URLs), so there is nothing to upload",
                        image_reference(v)
                    ))
                }),
            })
            .collect()
    }

    /// `PATCH` the texts and colour (every one, `null` for unset: the request states the whole wanted value),
    /// then each image whose content differs from what Graph holds: `PUT` the bytes, or `DELETE` the stream
    /// the manifest no longer wants.
    async fn put_branding(&self, b: &CompanyBranding) -> Result<(), DirectoryError> {
        let b = b.canonical();
        let wanted = Self::wanted_images(&b)?;
        let body = json!({
            "signInPageText": b.sign_in_page_text,
            "usernameHintText": b.username_hint_text,
            "backgroundColor": b.background_color,
        });
        let call =
            Call::new(Method::PATCH, self.branding_url()?, Cost::Write).json(body).header("Accept-Language", DEFAULT_LOCALE);
        self.http.send(&call).await?.ok()?;
        let held = self.read_branding().await?.unwrap_or_default();
        for ((name, want), (_, has)) in wanted.into_iter().zip(held.images()) {
            match want {
                Some(image) => {
                    if has.and_then(image_value_digest).is_some_and(|d| d.eq_ignore_ascii_case(&image.digest)) {
                        continue;
                    }
                    let call =
                        Call::new(Method::PUT, self.image_url(name)?, Cost::Write).bytes(image.bytes.clone(), image.content_type);
                    self.http.send(&call).await?.ok()?;
                }
                None if has.is_some() => self.delete_image(name).await?,
                None => {}
            }
        }
        Ok(())
    }

    /// `DELETE` one image stream (404: gone already).
    async fn delete_image(&self, name: &str) -> Result<(), DirectoryError> {
        let resp = self.http.send(&Call::new(Method::DELETE, self.image_url(name)?, Cost::Write)).await?;
        if resp.is_success() || resp.status == 404 { Ok(()) } else { Err(resp.error()) }
    }

    /// `DELETE` the default branding (404: gone already), its images first: Graph refuses while one is set.
    async fn remove_branding(&self) -> Result<(), DirectoryError> {
        let Some(current) = self.branding().await? else { return Ok(()) };
        for (name, value) in mapping::branding(&current).images() {
            if value.is_some() {
                self.delete_image(name).await?;
            }
        }
        let resp = self.http.send(&Call::new(Method::DELETE, self.branding_url()?, Cost::Write)).await?;
        if resp.is_success() || resp.status == 404 { Ok(()) } else { Err(resp.error()) }
    }
}
