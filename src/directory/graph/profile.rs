//! The tenant's own profile on Graph v1.0 (`crate::core::tenant_profile`):
//!
//! - **type**: `GET /organization/{id}?$select=id,tenantType` (`AAD` workforce, `CIAM` external). The type is
//!   immutable: the planner compares it, so a manifest of the other type is a plan error. Unreadable (no
//!   `Organization.Read.All`, or `AAD B2C`): listed in the snapshot's `unsupported` and taken from the manifest.
//! - **company branding** of an external tenant: `GET /organization/{id}/branding` (404: none),
//!   `PATCH` the texts and background colour (`Accept-Language: 0`, the default branding; `null` clears),
//!   `DELETE` when the manifest drops the branding (404 tolerated). A workforce tenant's branding is never
//!   read or written: manifests cannot set it, and entente must not remove what an administrator configured.
//!   Images (`bannerLogo`, `squareLogo`, `backgroundImage`) are Graph streams entente does not upload yet:
//!   asking for one fails with `NotImplemented` after the texts are written.
//! - **self-service account settings**: Graph v1.0 has no API for them (`mapping::SELF_SERVICE_NOT_IMPLEMENTED`),
//!   so asking for them fails with `NotImplemented` and the plan says so beforehand.

use reqwest::Method;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use super::mapping;
use crate::core::tenant_profile::{CompanyBranding, SelfServiceAccount, TenantProfile, TenantType, Unsupported};
use crate::directory::DirectoryError;
use crate::graph::wire::CrossTenantAccessPolicyRoot;

/// The default branding's locale, as Graph spells it in `Accept-Language`.
const DEFAULT_LOCALE: &str = "0";

impl GraphDirectory {
    fn branding_url(&self) -> Result<reqwest::Url, DirectoryError> {
        self.url(&format!("/organization/{}/branding", self.tenant_id), &[])
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
        let branding =
            if tenant_type == TenantType::External { self.branding().await?.map(|b| mapping::branding(&b)) } else { None };
        Ok((mapping::profile(root, tenant_type, branding), mapping::unsupported_profile(type_error.as_deref())))
    }

    /// `ConfigureTenantExperience`: the type exists already (entente never creates Graph tenants, and the
    /// planner refuses a different one); the branding's texts and colour are written, an image or a
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

    /// `PATCH` the texts and colour (every one, `null` for unset: the request states the whole wanted value),
    /// then compare images with what Graph holds: equal only when neither side has one.
    async fn put_branding(&self, b: &CompanyBranding) -> Result<(), DirectoryError> {
        let b = b.canonical();
        let body = json!({
            "signInPageText": b.sign_in_page_text,
            "usernameHintText": b.username_hint_text,
            "backgroundColor": b.background_color,
        });
        let call =
            Call::new(Method::PATCH, self.branding_url()?, Cost::Write).json(body).header("Accept-Language", DEFAULT_LOCALE);
        self.http.send(&call).await?.ok()?;
        let wants_image = b.images().iter().any(|(_, v)| v.is_some());
        let has_image = || async {
            Ok::<_, DirectoryError>(
                self.branding()
                    .await?
                    .map(|g| mapping::branding(&g))
                    .is_some_and(|g| g.images().iter().any(|(_, v)| v.is_some())),
            )
        };
        if wants_image || has_image().await? {
            return Err(DirectoryError::NotImplemented(mapping::BRANDING_IMAGES_NOT_IMPLEMENTED.into()));
        }
        Ok(())
    }

    /// `DELETE` the default branding (404: gone already). Graph refuses while an image is set.
    async fn remove_branding(&self) -> Result<(), DirectoryError> {
        let Some(current) = self.branding().await? else { return Ok(()) };
        if mapping::branding(&current).images().iter().any(|(_, v)| v.is_some()) {
            return Err(DirectoryError::NotImplemented(mapping::BRANDING_IMAGES_NOT_IMPLEMENTED.into()));
        }
        let resp = self.http.send(&Call::new(Method::DELETE, self.branding_url()?, Cost::Write)).await?;
        if resp.is_success() || resp.status == 404 { Ok(()) } else { Err(resp.error()) }
    }
}
