//! `GET /organization` and `GET /organization/{id}`: the caller's tenant, with its `tenantType` (`AAD` for a
//! workforce tenant, `CIAM` for an external one, from the directory's tenant profile); and the default company
//! branding of an external tenant, `GET`/`PATCH`/`DELETE /organization/{id}/branding` (contract extension
//! `contract/organization.yaml`). Branding writes go through the directory's `ConfigureTenantExperience`, so
//! its rules hold: a workforce tenant has no branding, colours are `#RRGGBB`, the type never changes.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::model::TenantIdentity;
use crate::core::operation::Operation;
use crate::core::tenant_profile::{CompanyBranding, TenantProfile, TenantType};

const PROPERTIES: &[&str] = &["id", "displayName", "verifiedDomains", "tenantType", "countryLetterCode", "createdDateTime"];

/// Graph's `tenantType` of a tenant type.
fn graph_tenant_type(t: TenantType) -> &'static str {
    match t {
        TenantType::Workforce => "AAD",
        TenantType::External => "CIAM",
    }
}

fn full(t: &TenantIdentity, profile: &TenantProfile) -> Map<String, Value> {
    let mut domains = vec![json!({
        "capabilities": "Email, OfficeCommunicationsOnline",
        "isDefault": t.verified_domains.is_empty(),
        "isInitial": true,
        "name": t.initial_domain,
        "type": "Managed",
    })];
    for (i, d) in t.verified_domains.iter().enumerate() {
        domains.push(json!({
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": i == 0,
            "isInitial": false,
            "name": d,
            "type": "Managed",
        }));
    }
    json!({
        "id": t.tenant_id,
        "displayName": t.display_name,
        "verifiedDomains": domains,
        "tenantType": graph_tenant_type(profile.tenant_type),
        "countryLetterCode": null,
        "createdDateTime": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

async fn mine(ctx: &Ctx) -> Result<(TenantIdentity, TenantProfile), GraphError> {
    let tenant = ctx.tenant().to_string();
    let found = ctx
        .db(move |dir| {
            let Some(t) = dir.find_tenant(&tenant)? else { return Ok(None) };
            let profile = dir.tenant_profile(&t.tenant_id)?;
            Ok(Some((t, profile)))
        })
        .await?;
    found.ok_or_else(|| GraphError::not_found(ctx.tenant()))
}

/// The caller's tenant when `id` names it, else 404.
async fn mine_by_id(ctx: &Ctx, id: &str) -> Result<(TenantIdentity, TenantProfile), GraphError> {
    let (t, p) = mine(ctx).await?;
    if !t.tenant_id.eq_ignore_ascii_case(id) {
        return Err(GraphError::not_found(id));
    }
    Ok((t, p))
}

pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let (t, p) = mine(ctx).await?;
    let org = full(&t, &p);
    let item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "organization"), "value": [item] })))
}

pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let org = full(&t, &p);
    let mut item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    item.insert("@odata.context".into(), json!(ctx.context(req.version, "organization/$entity")));
    Ok(GraphResponse::ok(Value::Object(item)))
}

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

fn branding_json(tenant_id: &str, b: &CompanyBranding) -> Value {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let mut out = json!({
        "id": "0",
        "backgroundColor": text(&b.background_color),
        "signInPageText": text(&b.sign_in_page_text),
        "usernameHintText": text(&b.username_hint_text),
        "cdnList": [],
    });
    for (name, value) in b.images() {
        out[format!("{name}RelativeUrl")] =
            value.map_or(Value::Null, |v| json!(format!("{tenant_id}/logintenantbranding/0/{v}")));
    }
    out
}

pub(crate) async fn get_branding(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    check_default_locale(req)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let Some(b) = p.branding else {
        return Err(GraphError::not_found(&format!("organizationalBranding of organization '{id}'")));
    };
    let mut body = branding_json(&t.tenant_id, &b);
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
    let mut b = p.branding.clone().unwrap_or_default();
    for (key, v) in body {
        if key.contains('@') || key == "id" {
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
    configure(ctx, &t.tenant_id, p, Some(b)).await?;
    Ok(GraphResponse::no_content())
}

/// `DELETE`: 404 without a branding; refused while an image is set (Graph: remove the streams first).
pub(crate) async fn delete_branding(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let (t, p) = mine_by_id(ctx, id).await?;
    let Some(b) = &p.branding else {
        return Err(GraphError::not_found(&format!("organizationalBranding of organization '{id}'")));
    };
    if let Some((name, _)) = b.images().into_iter().find(|(_, v)| v.is_some()) {
        return Err(GraphError::bad_request(format!(
            "The branding still has a {name}: remove every image (stream) before deleting the branding."
        )));
    }
    configure(ctx, &t.tenant_id, p, None).await?;
    Ok(GraphResponse::no_content())
}

/// Writes the branding through the directory (its rules: external tenants only, a valid colour).
async fn configure(ctx: &Ctx, tenant: &str, p: TenantProfile, branding: Option<CompanyBranding>) -> Result<(), GraphError> {
    let op = Operation::ConfigureTenantExperience {
        tenant_type: p.tenant_type,
        branding: branding.filter(|b| *b != CompanyBranding::default()),
        self_service_account: p.self_service_account,
    };
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = tenant.to_string();
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |_, _| Ok(()))).await
}
