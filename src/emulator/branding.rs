//! An organization's default company branding, `GET`/`PATCH`/`DELETE /organization/{id}/branding`
//! (contract extension `contract/organization.yaml`), and its image streams, `GET`/`PUT`/`DELETE
//! /organization/{id}/branding/localizations/0/{bannerLogo|squareLogo|backgroundImage}` (the default
//! localization only).
//!
//! Graph serves a branding for every tenant; entente models one for external tenants only (a Tenant's
//! `spec.branding`). So an external tenant's branding is the directory's, written through
//! `ConfigureTenantExperience` (its rules hold: colours are `#RRGGBB`, images valid references), and a
//! workforce tenant's is the emulator's own (extras), checked by the same rules, invisible to the directory.
//!
//! A `PUT` image body must be PNG or JPEG bytes (checked by their signature, `Content-Type` agreeing); the
//! bytes are the emulator's own (extras, base64), and the branding holds the image as `sha256:…` of them
//! (in the same transaction), so every backend reading the directory sees the same image. `GET` answers
//! the bytes with their media type, or `{}` when the image is not set (as Graph does).
//!
//! An external tenant's self-service password reset is two Graph settings: the email authentication method
//! enabled for all users (`state`, `includeTargets`, served by `identity.rs` through
//! `email_method_settings`/`update_email_method_settings`) and the branding's
//! `loginPageTextVisibilitySettings` not hiding the password reset links (`hideAccountResetCredentials`).
//! Both are the emulator's own (extras); the directory's `selfServiceAccount.passwordReset` is what they
//! amount to, written through `ConfigureTenantExperience` in the same transaction as they are. The
//! directory wins when another backend changed it: on, the method is served enabled for all users and the
//! links shown; off, the links hidden (a branding then exists to hide them, as in Graph).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::organization::{mine, mine_by_id};
use super::router::ResponseBody;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::store;
use crate::core::operation::Operation;
use crate::core::tenant_profile::{
    CompanyBranding, ImageContent, SelfServiceAccount, TenantProfile, TenantType, image_digest, image_value_digest,
    validate_color, validate_image_value,
};

// ---------------------------------------------------------------------------------------------
// Company branding (organizationalBranding, the default locale)

/// The string properties of `organizationalBranding` the directory models, by Graph name.
const TEXTS: [&str; 3] = ["signInPageText", "usernameHintText", "backgroundColor"];

/// The stream properties the directory models, by Graph name: their relative URLs are the directory's
/// image references (the emulator serves no CDN).
const IMAGES: [&str; 3] = ["bannerLogo", "squareLogo", "backgroundImage"];

/// Only the default branding is served: `Accept-Language` absent, `0` or `default`.
fn check_default_locale(req: &GraphRequest) -> Result<(), GraphError> {
    match req.header("Accept-Language").map(str::trim) {
        None | Some("0" | "default" | "") => Ok(()),
        Some(other) => Err(GraphError::not_found(&format!("organizationalBrandingLocalization '{other}'"))),
    }
}

fn branding_json(tenant_id: &str, b: &CompanyBranding, reset: &PasswordResetSettings) -> Value {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let visibility: Map<String, Value> = VISIBILITY
        .iter()
        .map(|k| (k.to_string(), json!(reset.visibility.get(*k).and_then(Value::as_bool).unwrap_or(false))))
        .collect();
    let mut out = json!({
        "id": "0",
        "backgroundColor": text(&b.background_color),
        "signInPageText": text(&b.sign_in_page_text),
        "usernameHintText": text(&b.username_hint_text),
        "cdnList": [],
        "loginPageTextVisibilitySettings": visibility,
    });
    for (name, value) in b.images() {
        let ts = |v: &str| image_value_digest(v).map_or_else(|| image_digest(v.as_bytes()), str::to_string);
        out[format!("{name}RelativeUrl")] = value.map_or(Value::Null, |v| {
            json!(format!("{tenant_id}/logintenantbranding/0/{}?ts={}", name.to_ascii_lowercase(), ts(v)))
        });
    }
    out
}

pub(crate) async fn get_branding(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    check_default_locale(req)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let reset = reset_settings(ctx, &t.tenant_id, &p).await?;
    let Some(b) = branding_of(ctx, &t.tenant_id, &p).await?.or_else(|| reset.has_branding().then(CompanyBranding::default))
    else {
        return Err(GraphError::not_found(&format!("organizationalBranding of organization '{id}'")));
    };
    let mut body = branding_json(&t.tenant_id, &b, &reset);
    body["@odata.context"] = json!(ctx.context(req.version, &format!("organization('{}')/branding/$entity", t.tenant_id)));
    Ok(GraphResponse::ok(body))
}

/// `PATCH`: the texts and colour given (`null` clears one); a stream or a read-only property is refused.
pub(crate) async fn update_branding(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    if req.header("Accept-Language").is_none() {
        return Err(GraphError::bad_request("The Accept-Language header is required: 0 for the default branding."));
    }
    check_default_locale(req)?;
    let body = req.object_body()?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let mut b = branding_of(ctx, &t.tenant_id, &p).await?.unwrap_or_default();
    let mut reset = reset_settings(ctx, &t.tenant_id, &p).await?;
    let mut visibility_given = false;
    for (key, v) in body {
        if key.contains('@') || key == "id" {
            continue;
        }
        if key == "loginPageTextVisibilitySettings" {
            reset.visibility = visibility_settings(v)?;
            visibility_given = true;
            continue;
        }
        let value = match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
            _ => return Err(GraphError::bad_request(format!("{key} must be a string."))),
        };
        match key.as_str() {
            "signInPageText" => b.sign_in_page_text = value,
            "usernameHintText" => b.username_hint_text = value,
            "backgroundColor" => b.background_color = value.map(|c| c.to_ascii_uppercase()),
            k if IMAGES.iter().any(|i| k.starts_with(i)) => {
                return Err(GraphError::bad_request(format!(
                    "{k} cannot be set with PATCH: stream properties are written with PUT on their own path."
                )));
            }
            k if !TEXTS.contains(&k) => {
                return Err(GraphError::bad_request(format!("Property '{k}' cannot be changed by the emulator.")));
            }
            _ => {}
        }
    }
    if let Some(text) = &b.sign_in_page_text
        && text.chars().count() > 1024
    {
        return Err(GraphError::bad_request("signInPageText must not exceed 1024 characters."));
    }
    if let Some(text) = &b.username_hint_text
        && text.chars().count() > 64
    {
        return Err(GraphError::bad_request("usernameHintText must not exceed 64 characters."));
    }
    if p.tenant_type == TenantType::External && b == CompanyBranding::default() && !visibility_given {
        // A branding holding nothing but the text visibility settings exists as long as they are set.
        reset.visibility.entry("hideAccountResetCredentials").or_insert(json!(false));
    }
    save(ctx, &t.tenant_id, p, Some(b), Some(reset), |_, _| Ok(())).await?;
    Ok(GraphResponse::no_content())
}

/// `DELETE`: 404 without a branding; refused while an image is set (Graph: remove the streams first). The
/// text visibility settings go with it, so the password reset links show again.
pub(crate) async fn delete_branding(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let (t, p) = mine_by_id(ctx, id).await?;
    let mut reset = reset_settings(ctx, &t.tenant_id, &p).await?;
    let Some(b) = branding_of(ctx, &t.tenant_id, &p).await?.or_else(|| reset.has_branding().then(CompanyBranding::default))
    else {
        return Err(GraphError::not_found(&format!("organizationalBranding of organization '{id}'")));
    };
    if let Some((name, _)) = b.images().into_iter().find(|(_, v)| v.is_some()) {
        return Err(GraphError::bad_request(format!(
            "The branding still has a {name}: remove every image (stream) before deleting the branding."
        )));
    }
    reset.visibility.clear();
    save(ctx, &t.tenant_id, p, None, Some(reset), |_, _| Ok(())).await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Self-service password reset of an external tenant: the email method's `state` and `includeTargets`,
// and the branding's `loginPageTextVisibilitySettings`

/// Kind of the emulator's extras holding the branding's `loginPageTextVisibilitySettings` (key `0`).
const VISIBILITY_EXTRAS: &str = "brandingTextVisibility";
/// Kind of the emulator's extras holding the email method's `state` and `includeTargets` (key `email`).
const EMAIL_METHOD_EXTRAS: &str = "authenticationMethodConfiguration";

/// `loginPageTextVisibilitySettings`' properties (Graph v1.0).
const VISIBILITY: [&str; 6] = [
    "hideAccountResetCredentials",
    "hideCannotAccessYourAccount",
    "hideForgotMyPassword",
    "hidePrivacyAndCookies",
    "hideResetItNow",
    "hideTermsOfUse",
];

/// The Graph settings an external tenant's password reset follows from, as the emulator serves them.
#[derive(Clone, Debug)]
pub(crate) struct PasswordResetSettings {
    /// The email method's `state`: `enabled` or `disabled`.
    pub(crate) state: String,
    /// The email method's `includeTargets` (`authenticationMethodTarget`s).
    pub(crate) include_targets: Vec<Value>,
    /// The branding's `loginPageTextVisibilitySettings` as written (empty: never written, or deleted).
    visibility: Map<String, Value>,
}

fn is_all_users(target: &Value) -> bool {
    target.get("targetType").and_then(Value::as_str) == Some("group")
        && target.get("id").and_then(Value::as_str) == Some("all_users")
}

impl PasswordResetSettings {
    fn for_all_users(&self) -> bool {
        self.state == "enabled" && self.include_targets.iter().any(is_all_users)
    }

    /// The links show: a branding exists (`branding`: the directory's, or one holding only these
    /// settings) and does not hide them. Without a branding Graph's neutral default applies, which entente
    /// does not take as showing them.
    fn links_shown(&self, branding: bool) -> bool {
        (branding || self.has_branding())
            && !self.visibility.get("hideAccountResetCredentials").and_then(Value::as_bool).unwrap_or(false)
    }

    /// Customers may reset their password: the method is enabled for all users and the links show.
    fn password_reset(&self, branding: bool) -> bool {
        self.for_all_users() && self.links_shown(branding)
    }

    /// A branding exists to hold the text visibility settings.
    fn has_branding(&self) -> bool {
        !self.visibility.is_empty()
    }

    fn load(c: &rusqlite::Connection, tenant: &str) -> Result<Self, crate::directory::DirectoryError> {
        let method = store::extras(c, tenant, EMAIL_METHOD_EXTRAS, "email")?;
        Ok(Self {
            state: method.get("state").and_then(Value::as_str).unwrap_or("enabled").to_string(),
            include_targets: method.get("includeTargets").and_then(Value::as_array).cloned().unwrap_or_default(),
            visibility: store::extras(c, tenant, VISIBILITY_EXTRAS, DEFAULT_LOCALIZATION)?,
        })
    }

    fn store(&self, c: &rusqlite::Connection, tenant: &str) -> Result<(), crate::directory::DirectoryError> {
        let mut method = Map::new();
        method.insert("state".into(), json!(self.state));
        method.insert("includeTargets".into(), json!(self.include_targets));
        store::put_extras(c, tenant, EMAIL_METHOD_EXTRAS, "email", &method)?;
        if self.visibility.is_empty() {
            store::delete_extras(c, tenant, VISIBILITY_EXTRAS, DEFAULT_LOCALIZATION)
        } else {
            store::put_extras(c, tenant, VISIBILITY_EXTRAS, DEFAULT_LOCALIZATION, &self.visibility)
        }
    }

    /// Brought in line with the directory's `passwordReset` (an external tenant's), which wins: another
    /// backend may have written it. On: the method enabled for all users and the links shown; off: the
    /// links hidden (the method is left as it is).
    fn reconciled(mut self, p: &TenantProfile) -> Self {
        if p.tenant_type != TenantType::External {
            return self;
        }
        let wanted = p.self_service_account.as_ref().is_some_and(|s| s.password_reset);
        let branding = p.branding.is_some();
        if wanted && !self.password_reset(branding) {
            self.state = "enabled".into();
            if !self.include_targets.iter().any(is_all_users) {
                self.include_targets.push(json!({"targetType": "group", "id": "all_users", "isRegistrationRequired": false}));
            }
            self.visibility.insert("hideAccountResetCredentials".into(), json!(false));
        } else if !wanted && self.password_reset(branding) {
            self.visibility.insert("hideAccountResetCredentials".into(), json!(true));
        }
        self
    }
}

/// The key of the default localization's extras.
const DEFAULT_LOCALIZATION: &str = "0";

/// `current` with `passwordReset` set (settings that are all off stay none).
fn with_password_reset(current: Option<SelfServiceAccount>, password_reset: bool) -> Option<SelfServiceAccount> {
    if current.as_ref().is_some_and(|s| s.password_reset) == password_reset {
        return current;
    }
    Some(SelfServiceAccount { password_reset, ..current.unwrap_or_default() })
}

async fn reset_settings(ctx: &Ctx, tenant: &str, p: &TenantProfile) -> Result<PasswordResetSettings, GraphError> {
    let tenant = tenant.to_string();
    let settings = ctx.db(move |dir| dir.emulator_read(|c| PasswordResetSettings::load(c, &tenant))).await?;
    Ok(settings.reconciled(p))
}

/// A `loginPageTextVisibilitySettings` value: an object of the six documented booleans (`null`: unset).
fn visibility_settings(v: &Value) -> Result<Map<String, Value>, GraphError> {
    let Some(given) = v.as_object() else {
        return match v {
            Value::Null => Ok(Map::new()),
            _ => Err(GraphError::bad_request("loginPageTextVisibilitySettings must be an object.")),
        };
    };
    let mut out = Map::new();
    for (key, value) in given {
        if key.contains('@') {
            continue;
        }
        if !VISIBILITY.contains(&key.as_str()) {
            return Err(GraphError::bad_request(format!("Property '{key}' does not exist on loginPageTextVisibilitySettings.")));
        }
        match value {
            Value::Bool(_) => {
                out.insert(key.clone(), value.clone());
            }
            Value::Null => {}
            _ => return Err(GraphError::bad_request(format!("loginPageTextVisibilitySettings.{key} must be a boolean."))),
        }
    }
    Ok(out)
}

/// The caller's tenant's email method `state` and `includeTargets` (`identity.rs`'s `GET`).
pub(crate) async fn email_method_settings(ctx: &Ctx) -> Result<PasswordResetSettings, GraphError> {
    let (t, p) = mine(ctx).await?;
    reset_settings(ctx, &t.tenant_id, &p).await
}

/// `PATCH` of the email method's `state` and/or `includeTargets` (`identity.rs` checks the body's shape):
/// kept, and the directory's `passwordReset` of an external tenant follows.
pub(crate) async fn update_email_method_settings(
    ctx: &Ctx,
    state: Option<String>,
    include_targets: Option<Vec<Value>>,
) -> Result<(), GraphError> {
    let (t, p) = mine(ctx).await?;
    let mut reset = reset_settings(ctx, &t.tenant_id, &p).await?;
    if let Some(state) = state {
        reset.state = state;
    }
    if let Some(targets) = include_targets {
        reset.include_targets = targets;
    }
    let branding = branding_of(ctx, &t.tenant_id, &p).await?;
    save(ctx, &t.tenant_id, p, branding, Some(reset), |_, _| Ok(())).await
}

// ---------------------------------------------------------------------------------------------
// Branding image streams (the default localization)

/// Kind of the emulator's extras holding an image's bytes (key: the image's Graph name).
const IMAGE_EXTRAS: &str = "brandingImage";

/// The Graph name of an image stream segment (`bannerLogo`, `squareLogo`, `backgroundImage`), any case.
pub(crate) fn branding_image(segment: &str) -> Option<&'static str> {
    IMAGES.into_iter().find(|i| i.eq_ignore_ascii_case(segment))
}

/// Only the default localization's streams are served (`0` or `default`).
fn check_default_localization(locale: &str) -> Result<(), GraphError> {
    match locale.trim() {
        "0" | "default" => Ok(()),
        other => Err(GraphError::not_found(&format!("organizationalBrandingLocalization '{other}'"))),
    }
}

fn image_slot<'a>(b: &'a mut CompanyBranding, image: &str) -> &'a mut Option<String> {
    match image {
        "bannerLogo" => &mut b.banner_logo,
        "squareLogo" => &mut b.square_logo,
        _ => &mut b.background_image,
    }
}

/// `GET`: the image bytes when the directory's branding holds the image they are (`sha256:…`), else `{}`.
pub(crate) async fn get_image(ctx: &Ctx, id: &str, locale: &str, image: &'static str) -> Result<GraphResponse, GraphError> {
    check_default_localization(locale)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let Some(mut b) = branding_of(ctx, &t.tenant_id, &p).await? else {
        return Err(GraphError::not_found(&format!("organizationalBranding of organization '{id}'")));
    };
    let Some(digest) = image_slot(&mut b, image).as_deref().and_then(image_value_digest).map(str::to_string) else {
        return Ok(GraphResponse::ok(json!({})));
    };
    let tenant = t.tenant_id.clone();
    let stored = ctx.db(move |dir| dir.emulator_read(|c| store::extras(c, &tenant, IMAGE_EXTRAS, image))).await?;
    let bytes = stored
        .get("data")
        .and_then(Value::as_str)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .filter(|bytes| image_digest(bytes).eq_ignore_ascii_case(&digest));
    let content_type = stored.get("contentType").and_then(Value::as_str).unwrap_or("image/png").to_string();
    Ok(match bytes {
        Some(bytes) => GraphResponse {
            status: http::StatusCode::OK,
            headers: Vec::new(),
            body: ResponseBody::Binary { content_type, bytes: bytes.into() },
        },
        None => GraphResponse::ok(json!({})),
    })
}

/// `PUT`: PNG or JPEG bytes become the image (the branding is created if there is none); 204.
pub(crate) async fn put_image(
    ctx: &Ctx,
    req: &GraphRequest,
    id: &str,
    locale: &str,
    image: &'static str,
) -> Result<GraphResponse, GraphError> {
    check_default_localization(locale)?;
    let Some(raw) = req.raw.as_ref().filter(|b| !b.is_empty()) else {
        return Err(GraphError::bad_request(format!(
            "{image} is a stream: send the image bytes with Content-Type image/png or image/jpeg."
        )));
    };
    let content = ImageContent::from_bytes(raw.to_vec(), req.header("Content-Type"))
        .map_err(|e| GraphError::bad_request(format!("{image}: {e}. The allowed types are PNG or JPEG.")))?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let mut b = branding_of(ctx, &t.tenant_id, &p).await?.unwrap_or_default();
    *image_slot(&mut b, image) = Some(format!("sha256:{}", content.digest));
    let mut stored = Map::new();
    stored.insert("contentType".into(), json!(content.content_type));
    stored.insert("digest".into(), json!(content.digest));
    stored.insert("data".into(), json!(base64::engine::general_purpose::STANDARD.encode(&content.bytes)));
    save(ctx, &t.tenant_id, p, Some(b), None, move |c, tenant| store::put_extras(c, tenant, IMAGE_EXTRAS, image, &stored))
        .await?;
    Ok(GraphResponse::no_content())
}

/// `DELETE`: the image is removed (404 when it is not set); 204.
pub(crate) async fn delete_image(ctx: &Ctx, id: &str, locale: &str, image: &'static str) -> Result<GraphResponse, GraphError> {
    check_default_localization(locale)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let mut b = branding_of(ctx, &t.tenant_id, &p).await?.unwrap_or_default();
    if image_slot(&mut b, image).take().is_none() {
        return Err(GraphError::not_found(&format!("{image} of the branding of organization '{id}'")));
    }
    save(ctx, &t.tenant_id, p, Some(b), None, move |c, tenant| store::delete_extras(c, tenant, IMAGE_EXTRAS, image)).await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Where a branding is kept: the directory's for an external tenant, the emulator's for a workforce one

/// Kind of the emulator's extras holding a workforce tenant's branding (key `0`): Graph serves one for
/// every tenant, the directory models one for external tenants only.
const WORKFORCE_BRANDING_EXTRAS: &str = "workforceBranding";

/// The tenant's branding (texts, colour, image references), `None` when it has none.
async fn branding_of(ctx: &Ctx, tenant: &str, p: &TenantProfile) -> Result<Option<CompanyBranding>, GraphError> {
    if p.tenant_type == TenantType::External {
        return Ok(p.branding.clone());
    }
    let key = tenant.to_string();
    let stored =
        ctx.db(move |dir| dir.emulator_read(|c| store::extras(c, &key, WORKFORCE_BRANDING_EXTRAS, DEFAULT_LOCALIZATION))).await?;
    if stored.is_empty() {
        return Ok(None);
    }
    let b = serde_json::from_value(Value::Object(stored))
        .map_err(|e| GraphError::internal(format!("the stored branding of tenant {tenant} is unreadable: {e}")))?;
    Ok(Some(b))
}

/// Writes the branding (`None` or an empty one: none), with `reset` the password reset settings, and
/// `then` (an image's bytes) in one transaction. An external tenant's goes through the directory's
/// `ConfigureTenantExperience` (with the `passwordReset` the settings amount to); a workforce tenant's
/// into the emulator's extras after the same checks.
async fn save(
    ctx: &Ctx,
    tenant: &str,
    p: TenantProfile,
    branding: Option<CompanyBranding>,
    reset: Option<PasswordResetSettings>,
    then: impl FnOnce(&rusqlite::Connection, &str) -> Result<(), crate::directory::DirectoryError> + Send + 'static,
) -> Result<(), GraphError> {
    let branding = branding.filter(|b| *b != CompanyBranding::default());
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = tenant.to_string();
    let self_service_account = match &reset {
        Some(r) if p.tenant_type == TenantType::External => {
            with_password_reset(p.self_service_account.clone(), r.password_reset(branding.is_some()))
        }
        _ => p.self_service_account.clone(),
    };
    let extras = move |c: &rusqlite::Connection, tenant: &str| {
        if let Some(r) = &reset {
            r.store(c, tenant)?;
        }
        then(c, tenant)
    };
    if p.tenant_type != TenantType::External {
        if let Some(b) = &branding {
            check_workforce_branding(b)?;
        }
        let value = branding.map(|b| serde_json::to_value(b).unwrap_or_default());
        return ctx
            .db(move |dir| {
                dir.emulator_write(|c| {
                    match value.as_ref().and_then(Value::as_object) {
                        Some(b) => store::put_extras(c, &tenant, WORKFORCE_BRANDING_EXTRAS, DEFAULT_LOCALIZATION, b)?,
                        None => store::delete_extras(c, &tenant, WORKFORCE_BRANDING_EXTRAS, DEFAULT_LOCALIZATION)?,
                    }
                    extras(c, &tenant)
                })
            })
            .await;
    }
    let op = Operation::ConfigureTenantExperience { tenant_type: p.tenant_type, branding, self_service_account };
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |c, _| extras(c, &tenant))).await
}

/// The directory's branding rules, for a branding the directory does not keep: colours `#RRGGBB`,
/// images valid references.
fn check_workforce_branding(b: &CompanyBranding) -> Result<(), GraphError> {
    let mut problems = Vec::new();
    if let Some(color) = &b.background_color {
        problems.extend(validate_color(color).err().map(|e| format!("backgroundColor: {e}")));
    }
    for (field, value) in b.images() {
        problems.extend(value.and_then(|v| validate_image_value(v).err()).map(|e| format!("{field}: {e}")));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(GraphError::bad_request(problems.join("; "))),
    }
}
