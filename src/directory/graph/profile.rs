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
//! - **self-service password reset** of an external tenant (`selfServiceAccount.passwordReset`), as Microsoft
//!   documents it for external tenants (learn.microsoft.com/entra/external-id/customers/
//!   how-to-enable-password-reset-customers; woodgrovedemo.com/help/SSPR): on when the email one-time
//!   passcode authentication method is enabled for all users (`GET /policies/authenticationMethodsPolicy/
//!   authenticationMethodConfigurations/email`: `state` `enabled`, the group `all_users` among
//!   `includeTargets`) and the branding does not hide the sign-in form's password reset links
//!   (`loginPageTextVisibilitySettings.hideAccountResetCredentials` not `true`; without a branding the
//!   links are not known to show, so it reads as off). `true` PATCHes the method (`@odata.type`, `state`,
//!   `includeTargets`, never `allowExternalIdToUseEmailOtp`, which is the B2B email one-time passcode
//!   provider's) when it is not yet enabled for all users, and states the links shown in the branding's PATCH
//!   (an empty branding when the manifest has none). `false` only hides the links (in the branding's PATCH,
//!   an empty branding when the manifest has none), when the method would let customers reset: the method
//!   is never disabled, because customers of an external tenant may sign in with email
//!   one-time passcodes and switching it off would lock them out (the plan says so,
//!   `mapping::PASSWORD_RESET_FALSE`). Both PATCHes state whole values, so retries are safe.
//! - **the other self-service options** (profile edit, account deletion, MFA enrollment) have no Graph v1.0
//!   API (`mapping::SELF_SERVICE_NOT_IMPLEMENTED`): they read as off, turning one on fails with
//!   `NotImplemented` naming only those, and the plan says so beforehand.

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

/// The email one-time passcode method of the authentication methods policy.
const EMAIL_METHOD: &str = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email";
const EMAIL_METHOD_TYPE: &str = "#microsoft.graph.emailAuthenticationMethodConfiguration";

impl GraphDirectory {
    fn branding_url(&self) -> Result<reqwest::Url, DirectoryError> {
        self.url(&format!("/organization/{}/branding", self.tenant_id), &[])
    }

    /// The stream of image `name` (`bannerLogo`, …) of the default localization.
    fn image_url(&self, name: &str) -> Result<reqwest::Url, DirectoryError> {
        self.url(&format!("/organization/{}/branding/localizations/{DEFAULT_LOCALE}/{name}", self.tenant_id), &[])
    }

    /// The default branding `raw` (Graph's answer, `None`: none) as the core's, each image Graph holds as
    /// `sha256:…` of its bytes (one `GET` per image set); an image whose stream answers no image bytes stays
    /// `graph:{relativeUrl}`.
    async fn read_branding(&self, raw: Option<&Value>) -> Result<Option<CompanyBranding>, DirectoryError> {
        let Some(raw) = raw else { return Ok(None) };
        let mut b = mapping::branding(raw);
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

    /// The email authentication method (`emailAuthenticationMethodConfiguration`) as Graph answers it.
    async fn email_method(&self) -> Result<Value, DirectoryError> {
        self.get_json(self.url(EMAIL_METHOD, &[])?).await
    }

    /// The profile the snapshot shows (clouds from the policy root `root`, type, an external tenant's
    /// branding and password reset) and what of it cannot be read.
    pub(super) async fn read_profile(
        &self,
        root: &CrossTenantAccessPolicyRoot,
    ) -> Result<(TenantProfile, Unsupported), DirectoryError> {
        let (tenant_type, type_error) = match self.tenant_type().await {
            Ok(t) => (t, None),
            Err(why) => (TenantType::Workforce, Some(why)),
        };
        let external = tenant_type == TenantType::External;
        let (branding, password_reset) = if external {
            let raw = self.branding().await?;
            let reset = mapping::password_reset(&self.email_method().await?, raw.as_ref());
            (self.read_branding(raw.as_ref()).await?, reset)
        } else {
            (None, false)
        };
        Ok((
            mapping::profile(root, tenant_type, branding, password_reset),
            mapping::unsupported_profile(type_error.as_deref(), external),
        ))
    }

    /// `ConfigureTenantExperience`: the type exists already (entente never creates Graph tenants, and the
    /// planner refuses a different one); the branding's texts, colour and images and the password reset
    /// are written, then an option with no Graph v1.0 API that is on fails as not implemented, naming it.
    pub(super) async fn configure_experience(
        &self,
        tenant_type: TenantType,
        branding: Option<&CompanyBranding>,
        self_service: Option<&SelfServiceAccount>,
    ) -> Result<(), DirectoryError> {
        if tenant_type == TenantType::External {
            let reset = self_service.is_some_and(|s| s.password_reset);
            // Whether the branding must hide (Some(true)) or show (Some(false)) the password reset links.
            let hide = if reset {
                self.enable_email_method_for_all_users().await?;
                Some(false)
            } else if mapping::email_method_for_all_users(&self.email_method().await?) {
                // Off: hide the links only. The method stays enabled: customers of an external tenant may
                // sign in with email one-time passcodes, and switching it off would lock them out.
                Some(true)
            } else {
                None // customers cannot reset without the method: the links do not matter
            };
            match branding {
                Some(b) => self.put_branding(b, hide).await?,
                // No branding wanted, but one must state whether the links show (without one, Graph's
                // neutral default decides): an empty one, no texts and no images.
                None if hide.is_some() => self.put_branding(&CompanyBranding::default(), hide).await?,
                None => self.remove_branding().await?,
            }
        }
        if let Some(why) = self_service.and_then(mapping::self_service_not_implemented) {
            return Err(DirectoryError::NotImplemented(why));
        }
        Ok(())
    }

    /// `PATCH` the email authentication method so that it is enabled for all users (the group `all_users`
    /// added to its `includeTargets`, the others kept), unless it is already. `allowExternalIdToUseEmailOtp`
    /// (email one-time passcode for B2B guests, an identity provider of its own) is left as it is.
    async fn enable_email_method_for_all_users(&self) -> Result<(), DirectoryError> {
        let method = self.email_method().await?;
        if mapping::email_method_for_all_users(&method) {
            return Ok(());
        }
        let mut targets: Vec<Value> = method
            .get("includeTargets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| !mapping::is_all_users(t))
            .map(|t| {
                json!({
                    "targetType": t.get("targetType").cloned().unwrap_or(Value::Null),
                    "id": t.get("id").cloned().unwrap_or(Value::Null),
                    "isRegistrationRequired": t.get("isRegistrationRequired").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect();
        targets.push(json!({ "targetType": "group", "id": mapping::ALL_USERS, "isRegistrationRequired": false }));
        let body = json!({ "@odata.type": EMAIL_METHOD_TYPE, "state": "enabled", "includeTargets": targets });
        self.http.send(&Call::new(Method::PATCH, self.url(EMAIL_METHOD, &[])?, Cost::Write).json(body)).await?.ok()?;
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

    /// `PATCH` the texts and colour (every one, `null` for unset: the request states the whole wanted value)
    /// and, when `hide_reset_links` says, whether the password reset links are hidden (the other text
    /// visibility settings kept as they are), then each image whose content differs from what Graph holds:
    /// `PUT` the bytes, or `DELETE` the stream the manifest no longer wants.
    async fn put_branding(&self, b: &CompanyBranding, hide_reset_links: Option<bool>) -> Result<(), DirectoryError> {
        let b = b.canonical();
        let wanted = Self::wanted_images(&b)?;
        let current = self.branding().await?;
        let mut body = json!({
            "signInPageText": b.sign_in_page_text,
            "usernameHintText": b.username_hint_text,
            "backgroundColor": b.background_color,
        });
        if let Some(hide) = hide_reset_links {
            // "Show self-service password reset" of the admin center's company branding (Sign-in form tab) is
            // hideAccountResetCredentials: the v1.0 loginPageTextVisibilitySettings reference describes it as
            // hiding every SSPR link ("Can't access your account?", "Forgot my password", "Reset it now"),
            // hideForgotMyPassword as hiding one of them; and tools mapping the portal's switch to Graph
            // (CIPP's branding standard, "Hide self-service password reset") write hideAccountResetCredentials.
            let mut visibility = current
                .as_ref()
                .and_then(|c| c.get("loginPageTextVisibilitySettings"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            visibility.retain(|k, v| !k.starts_with('@') && v.is_boolean());
            visibility.insert("hideAccountResetCredentials".into(), json!(hide));
            body["loginPageTextVisibilitySettings"] = Value::Object(visibility);
        }
        let call =
            Call::new(Method::PATCH, self.branding_url()?, Cost::Write).json(body).header("Accept-Language", DEFAULT_LOCALE);
        self.http.send(&call).await?.ok()?;
        let held = self.read_branding(current.as_ref()).await?.unwrap_or_default();
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
