//! The cross-tenant access policy (graph-contract 1.3): the policy object, the default configuration
//! (with `resetToSystemDefault`), partner configurations and their `identitySynchronization`.
//!
//! Semantics:
//! - PATCH replaces each top-level property it names, whole; properties it does not name are kept.
//!   `null` clears a setting: on a partner it then inherits the default (R2), on the default it is the
//!   system default again (R1). Within a B2B setting an absent half (`usersAndGroups`,
//!   `applications`) is absent too (inherit / system default).
//! - A partner reads back with every setting, `null` where it inherits; `automaticUserConsentSettings`
//!   always reads as an object (`{"inboundAllowed": null, "outboundAllowed": null}` when inherited),
//!   as Graph answers.
//! - `automaticUserConsentSettings` is read-only (always false) on the default; `isInMultiTenantOrganization`
//!   is read-only on partners.
//! - Duplicate partner creation and a second `PUT …/identitySynchronization` answer 409
//!   `Request_MultipleObjectsWithSameKeyValue` (detail `ConflictingObjects`); PATCH of a missing
//!   identitySynchronization answers 404 `Directory_ObjectNotFound`.
//! - Settings the directory does not model (`isServiceProvider`, `m365Collaboration*`,
//!   `appServiceConnectInbound`, `tenantRestrictions.devices`, the default's
//!   `invitationRedemptionIdentityProviderConfiguration`, the identity sync's `displayName`) are kept
//!   as written and read back, but do not take part in the rules.

use std::collections::BTreeSet;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::store::{self, kind};
use crate::core::model::PartnerConfiguration;
use crate::core::operation::Operation;
use crate::core::resolved::ResolvedAccess;
use crate::core::settings::{
    AutomaticUserConsentSettings, B2bSetting, CrossTenantAccessSettings, IdentitySynchronization, InboundTrust, UserSyncInbound,
};
use crate::core::tenant_profile::{cloud_endpoint, cloud_of_endpoint};

const B2B_KEYS: [&str; 4] =
    ["b2bCollaborationInbound", "b2bCollaborationOutbound", "b2bDirectConnectInbound", "b2bDirectConnectOutbound"];
/// Object-valued settings kept as extras.
const EXTRA_OBJECTS: [&str; 3] = ["m365CollaborationInbound", "m365CollaborationOutbound", "appServiceConnectInbound"];
const DEVICES: &str = "tenantRestrictionsDevices";
const PARTNER_PROPERTIES: &[&str] = &[
    "tenantId",
    "appServiceConnectInbound",
    "automaticUserConsentSettings",
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
    "inboundTrust",
    "isInMultiTenantOrganization",
    "isServiceProvider",
    "m365CollaborationInbound",
    "m365CollaborationOutbound",
    "tenantRestrictions",
];

fn policy_not_found_message() -> &'static str {
    "Unable to read the company information from the directory."
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A copy without OData annotations, with `targets: null` read as `[]`.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.contains('@'))
                .map(|(k, v)| if k == "targets" && v.is_null() { (k.clone(), json!([])) } else { (k.clone(), clean(v)) })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn typed<T: DeserializeOwned>(v: &Value, name: &str) -> Result<T, GraphError> {
    serde_json::from_value(clean(v)).map_err(|e| GraphError::bad_request(format!("Invalid value for property '{name}': {e}.")))
}

fn b2b(v: &Value, name: &str) -> Result<Option<B2bSetting>, GraphError> {
    if v.is_null() {
        return Ok(None);
    }
    let s: B2bSetting = typed(v, name)?;
    Ok((s != B2bSetting::default()).then_some(s))
}

fn trust(v: &Value) -> Result<Option<InboundTrust>, GraphError> {
    if v.is_null() {
        return Ok(None);
    }
    let t: InboundTrust = typed(v, "inboundTrust")?;
    Ok((t != InboundTrust::default()).then_some(t))
}

fn consent(v: &Value) -> Result<Option<AutomaticUserConsentSettings>, GraphError> {
    if v.is_null() {
        return Ok(None);
    }
    let c: AutomaticUserConsentSettings = typed(v, "automaticUserConsentSettings")?;
    Ok((c != AutomaticUserConsentSettings::default()).then_some(c))
}

/// `tenantRestrictions`: the B2B part, and the `devices` filter kept apart.
fn restrictions(v: &Value) -> Result<(Option<B2bSetting>, Value), GraphError> {
    if v.is_null() {
        return Ok((None, Value::Null));
    }
    let Value::Object(m) = v else { return Err(GraphError::bad_request("tenantRestrictions must be an object.")) };
    let devices = m.get("devices").cloned().unwrap_or(Value::Null);
    if !devices.is_null() && !devices.is_object() {
        return Err(GraphError::bad_request("tenantRestrictions.devices must be an object."));
    }
    let rest: Map<String, Value> =
        m.iter().filter(|(k, _)| k.as_str() != "devices").map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok((b2b(&Value::Object(rest), "tenantRestrictions")?, devices))
}

fn set_b2b(s: &mut CrossTenantAccessSettings, key: &str, value: Option<B2bSetting>) {
    match key {
        "b2bCollaborationInbound" => s.b2b_collaboration_inbound = value,
        "b2bCollaborationOutbound" => s.b2b_collaboration_outbound = value,
        "b2bDirectConnectInbound" => s.b2b_direct_connect_inbound = value,
        _ => s.b2b_direct_connect_outbound = value,
    }
}

fn get_b2b<'a>(s: &'a CrossTenantAccessSettings, key: &str) -> Option<&'a B2bSetting> {
    match key {
        "b2bCollaborationInbound" => s.b2b_collaboration_inbound.as_ref(),
        "b2bCollaborationOutbound" => s.b2b_collaboration_outbound.as_ref(),
        "b2bDirectConnectInbound" => s.b2b_direct_connect_inbound.as_ref(),
        _ => s.b2b_direct_connect_outbound.as_ref(),
    }
}

/// Applies a partner body (POST or PATCH) to a partner configuration and its extras.
fn apply_partner_body(
    body: &Map<String, Value>,
    partner: &mut PartnerConfiguration,
    extras: &mut Map<String, Value>,
) -> Result<(), GraphError> {
    for (key, v) in body {
        if key.contains('@') {
            continue;
        }
        match key.as_str() {
            "tenantId" => {
                if v.as_str().is_none_or(|t| !t.trim().eq_ignore_ascii_case(&partner.tenant_id)) {
                    return Err(GraphError::bad_request("The property 'tenantId' cannot be changed."));
                }
            }
            k if B2B_KEYS.contains(&k) => set_b2b(&mut partner.settings, k, b2b(v, k)?),
            "inboundTrust" => partner.settings.inbound_trust = trust(v)?,
            "automaticUserConsentSettings" => partner.settings.automatic_user_consent_settings = consent(v)?,
            "tenantRestrictions" => {
                let (setting, devices) = restrictions(v)?;
                partner.settings.tenant_restrictions = setting;
                extras.insert(DEVICES.into(), devices);
            }
            "isServiceProvider" => {
                if !(v.is_null() || v.is_boolean()) {
                    return Err(GraphError::bad_request("isServiceProvider must be a boolean or null."));
                }
                extras.insert(key.clone(), v.clone());
            }
            k if EXTRA_OBJECTS.contains(&k) => {
                if !(v.is_null() || v.is_object()) {
                    return Err(GraphError::bad_request(format!("{k} must be an object or null.")));
                }
                extras.insert(key.clone(), clean(v));
            }
            "isInMultiTenantOrganization" => {
                if !v.is_null() && v.as_bool() != Some(partner.is_in_multi_tenant_organization) {
                    return Err(GraphError::bad_request(
                        "The property 'isInMultiTenantOrganization' is read-only: the multi-tenant organization sets it.",
                    ));
                }
            }
            "identitySynchronization" => {
                return Err(GraphError::bad_request(
                    "identitySynchronization is a navigation property: PUT …/partners/{tenantId}/identitySynchronization.",
                ));
            }
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Property '{key}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn b2b_json(s: Option<&B2bSetting>) -> Value {
    s.map_or(Value::Null, |s| serde_json::to_value(s).unwrap_or(Value::Null))
}

fn trust_json(t: Option<&InboundTrust>) -> Value {
    t.map_or(Value::Null, |t| {
        json!({
            "isMfaAccepted": t.is_mfa_accepted,
            "isCompliantDeviceAccepted": t.is_compliant_device_accepted,
            "isHybridAzureADJoinedDeviceAccepted": t.is_hybrid_azure_ad_joined_device_accepted,
        })
    })
}

fn partner_json(p: &PartnerConfiguration, extras: &Map<String, Value>) -> Map<String, Value> {
    let s = &p.settings;
    let consent = s.automatic_user_consent_settings.clone().unwrap_or_default();
    let devices = extras.get(DEVICES).cloned().unwrap_or(Value::Null);
    let restrictions = match (&s.tenant_restrictions, &devices) {
        (None, Value::Null) => Value::Null,
        (setting, _) => {
            let mut m = b2b_json(setting.as_ref()).as_object().cloned().unwrap_or_default();
            m.insert("devices".into(), devices.clone());
            Value::Object(m)
        }
    };
    let mut m = Map::new();
    m.insert("tenantId".into(), json!(p.tenant_id));
    m.insert("isServiceProvider".into(), extras.get("isServiceProvider").cloned().unwrap_or(Value::Null));
    m.insert("isInMultiTenantOrganization".into(), json!(p.is_in_multi_tenant_organization));
    m.insert("inboundTrust".into(), trust_json(s.inbound_trust.as_ref()));
    m.insert(
        "automaticUserConsentSettings".into(),
        json!({ "inboundAllowed": consent.inbound_allowed, "outboundAllowed": consent.outbound_allowed }),
    );
    for k in B2B_KEYS {
        m.insert(k.into(), b2b_json(get_b2b(s, k)));
    }
    m.insert("tenantRestrictions".into(), restrictions);
    for k in EXTRA_OBJECTS {
        m.insert(k.into(), extras.get(k).cloned().unwrap_or(Value::Null));
    }
    m
}

/// The tenant's partners with their extras.
async fn load_partners(ctx: &Ctx) -> Result<Vec<(PartnerConfiguration, Map<String, Value>)>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let extras = dir.emulator_read(|c| store::all_extras(c, &tenant, kind::PARTNER))?;
        Ok(dir
            .partners(&tenant)?
            .into_iter()
            .map(|p| {
                let e = extras.get(&p.tenant_id.to_ascii_lowercase()).cloned().unwrap_or_default();
                (p, e)
            })
            .collect())
    })
    .await
}

async fn load_partner(ctx: &Ctx, id: &str) -> Result<Option<(PartnerConfiguration, Map<String, Value>)>, GraphError> {
    Ok(load_partners(ctx).await?.into_iter().find(|(p, _)| p.tenant_id.eq_ignore_ascii_case(id.trim())))
}

/// Writes a partner and its extras in one transaction.
async fn store_partner(
    ctx: &Ctx,
    partner: PartnerConfiguration,
    extras: Map<String, Value>,
    sync_extras: Option<Map<String, Value>>,
) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let key = partner.tenant_id.to_ascii_lowercase();
        dir.apply_then(&tenant, &[Operation::PutPartner { partner }], |c, _| {
            store::put_extras(c, &tenant, kind::PARTNER, &key, &extras)?;
            match &sync_extras {
                Some(e) => store::put_extras(c, &tenant, kind::IDENTITY_SYNC, &key, e),
                None => Ok(()),
            }
        })
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The policy object

/// `allowedCloudEndpoints` is the directory's Microsoft cloud settings (R14), so the local directory's
/// rules see what Graph clients write; the name and description stay emulator extras.
pub(crate) async fn get_policy(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let (extras, profile) = ctx
        .db(move |dir| {
            let extras = dir.emulator_read(|c| store::extras(c, &tenant, kind::POLICY_ROOT, "policy"))?;
            Ok((extras, dir.tenant_profile(&tenant)?))
        })
        .await?;
    let endpoints: Vec<&str> = profile.allowed_clouds.iter().map(|c| cloud_endpoint(*c)).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "policies/crossTenantAccessPolicy/$entity"),
        "id": "crossTenantAccessPolicy",
        "deletedDateTime": null,
        "displayName": extras.get("displayName").cloned().unwrap_or(json!("CrossTenantAccessPolicy")),
        "description": extras.get("description").cloned().unwrap_or(Value::Null),
        "allowedCloudEndpoints": endpoints,
    })))
}

pub(crate) async fn update_policy(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let mut changes = Map::new();
    let mut clouds = None;
    for (key, v) in body {
        if key.contains('@') {
            continue;
        }
        match key.as_str() {
            "allowedCloudEndpoints" => {
                let Some(items) = v.as_array().filter(|a| a.iter().all(Value::is_string)) else {
                    return Err(GraphError::bad_request("allowedCloudEndpoints must be an array of strings."));
                };
                let mut set = BTreeSet::new();
                for e in items.iter().filter_map(Value::as_str) {
                    let cloud = cloud_of_endpoint(e).ok_or_else(|| {
                        GraphError::bad_request(format!(
                            "'{e}' is not a supported cloud endpoint: use microsoftonline.com, microsoftonline.us or partner.microsoftonline.cn."
                        ))
                    })?;
                    set.insert(cloud);
                }
                clouds = Some(set);
                continue;
            }
            "displayName" | "description" => {
                if !(v.is_string() || v.is_null()) {
                    return Err(GraphError::bad_request(format!("{key} must be a string.")));
                }
            }
            _ => return Err(GraphError::bad_request(format!("Property '{key}' cannot be changed."))),
        }
        changes.insert(key.clone(), v.clone());
    }
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| match clouds {
        Some(allowed_clouds) => dir.apply_then(&tenant, &[Operation::SetCloudSettings { allowed_clouds }], |c, _| {
            store::merge_extras(c, &tenant, kind::POLICY_ROOT, "policy", &changes)
        }),
        None => dir.emulator_write(|c| store::merge_extras(c, &tenant, kind::POLICY_ROOT, "policy", &changes)),
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// The default configuration

fn default_redemption() -> Value {
    json!({
        "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "externalFederation", "socialIdentityProviders"],
        "fallbackIdentityProvider": "defaultConfiguredIdp",
    })
}

pub(crate) async fn get_default(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let (access, extras) = ctx
        .db(move |dir| {
            let policy = dir.tenant_policy(&tenant)?;
            let extras = dir.emulator_read(|c| store::extras(c, &tenant, kind::DEFAULT, "default"))?;
            Ok((policy.default_access, extras))
        })
        .await?;
    let s = access.to_settings();
    let service_default = access == ResolvedAccess::system_default() && extras.values().all(Value::is_null);
    let mut m = Map::new();
    m.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/crossTenantAccessPolicy/default/$entity")));
    m.insert("isServiceDefault".into(), json!(service_default));
    m.insert("inboundTrust".into(), trust_json(s.inbound_trust.as_ref()));
    m.insert("automaticUserConsentSettings".into(), json!({ "inboundAllowed": false, "outboundAllowed": false }));
    for k in B2B_KEYS {
        m.insert(k.into(), b2b_json(get_b2b(&s, k)));
    }
    let mut restrictions = b2b_json(s.tenant_restrictions.as_ref()).as_object().cloned().unwrap_or_default();
    restrictions.insert("devices".into(), extras.get(DEVICES).cloned().unwrap_or(Value::Null));
    m.insert("tenantRestrictions".into(), Value::Object(restrictions));
    m.insert(
        "invitationRedemptionIdentityProviderConfiguration".into(),
        extras
            .get("invitationRedemptionIdentityProviderConfiguration")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(default_redemption),
    );
    for k in EXTRA_OBJECTS {
        if let Some(v) = extras.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    Ok(GraphResponse::ok(Value::Object(m)))
}

pub(crate) async fn update_default(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?.clone();
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let policy = dir.tenant_policy(&tenant)?;
        let mut settings = policy.default_access.to_settings();
        let mut extras = Map::new();
        let invalid = |m: String| crate::directory::DirectoryError::Invalid(m);
        for (key, v) in &body {
            if key.contains('@') {
                continue;
            }
            let map_err = |e: GraphError| invalid(e.message.clone());
            match key.as_str() {
                k if B2B_KEYS.contains(&k) => set_b2b(&mut settings, k, b2b(v, k).map_err(map_err)?),
                "inboundTrust" => settings.inbound_trust = trust(v).map_err(map_err)?,
                "tenantRestrictions" => {
                    let (setting, devices) = restrictions(v).map_err(map_err)?;
                    settings.tenant_restrictions = setting;
                    extras.insert(DEVICES.into(), devices);
                }
                "automaticUserConsentSettings" => {
                    let c = consent(v).map_err(map_err)?.unwrap_or_default();
                    if c.inbound_allowed == Some(true) || c.outbound_allowed == Some(true) {
                        return Err(invalid(
                            "automaticUserConsentSettings is read-only on the default configuration: it is always false.".into(),
                        ));
                    }
                }
                "isServiceDefault" => {
                    if !v.is_boolean() && !v.is_null() {
                        return Err(invalid("isServiceDefault must be a boolean.".into()));
                    }
                }
                "invitationRedemptionIdentityProviderConfiguration" => {
                    let ok = v.is_null()
                        || v.get("primaryIdentityProviderPrecedenceOrder")
                            .is_none_or(|o| o.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
                    if !ok {
                        return Err(invalid(format!("Invalid value for property '{key}'.")));
                    }
                    extras.insert(key.clone(), clean(v));
                }
                k if EXTRA_OBJECTS.contains(&k) => {
                    if !(v.is_null() || v.is_object()) {
                        return Err(invalid(format!("{k} must be an object or null.")));
                    }
                    extras.insert(key.clone(), clean(v));
                }
                _ => {
                    return Err(invalid(format!(
                        "Property '{key}' does not exist as a declared property or extension property."
                    )));
                }
            }
        }
        let default_access = ResolvedAccess::system_default().overlay(&settings);
        let op = Operation::ConfigureTenant { external_collaboration: policy.collaboration, default_access };
        dir.apply_then(&tenant, &[op], |c, _| store::merge_extras(c, &tenant, kind::DEFAULT, "default", &extras))
    })
    .await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn reset_default(ctx: &Ctx) -> Result<GraphResponse, GraphError> {
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let policy = dir.tenant_policy(&tenant)?;
        let op = Operation::ConfigureTenant {
            external_collaboration: policy.collaboration,
            default_access: ResolvedAccess::system_default(),
        };
        dir.apply_then(&tenant, &[op], |c, _| store::delete_extras(c, &tenant, kind::DEFAULT, "default"))
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Partners

pub(crate) async fn list_partners(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "search", "expand", "orderby"])?;
    let select = odata::select(req, "crossTenantAccessPolicyConfigurationPartner", PARTNER_PROPERTIES)?;
    let filter = odata::filter(
        req,
        "crossTenantAccessPolicyConfigurationPartner",
        &["tenantId", "isServiceProvider", "isInMultiTenantOrganization"],
    )?;
    let count = odata::count(req)?;
    let top = odata::top(req, 999, 999)?;
    let items: Vec<Map<String, Value>> = load_partners(ctx)
        .await?
        .iter()
        .map(|(p, e)| partner_json(p, e))
        .filter(|p| filter.as_ref().is_none_or(|f| odata::matches(f, p)))
        .collect();
    let total = items.len();
    let value: Vec<Value> = items
        .iter()
        .take(top)
        .map(|p| Value::Object(select.as_deref().map_or_else(|| p.clone(), |s| odata::project(p, s))))
        .collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/crossTenantAccessPolicy/partners")));
    if count {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn get_partner(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "crossTenantAccessPolicyConfigurationPartner", PARTNER_PROPERTIES)?;
    let (p, e) = load_partner(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    let full = partner_json(&p, &e);
    let mut body = select.as_deref().map_or_else(|| full.clone(), |s| odata::project(&full, s));
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/crossTenantAccessPolicy/partners/$entity")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn create_partner(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let tenant_id = match body.get("tenantId").and_then(Value::as_str).map(str::trim) {
        Some(t) if uuid::Uuid::parse_str(t).is_ok() => t.to_ascii_lowercase(),
        _ => return Err(GraphError::bad_request("The property 'tenantId' is required and must be a tenant id (a GUID).")),
    };
    let _guard = ctx.state.settings_lock.lock().await;
    if load_partner(ctx, &tenant_id).await?.is_some() {
        return Err(GraphError::conflict("Another object with the same value for property tenantId already exists."));
    }
    let mut partner = PartnerConfiguration { tenant_id: tenant_id.clone(), ..Default::default() };
    let mut extras = Map::new();
    apply_partner_body(body, &mut partner, &mut extras)?;
    store_partner(ctx, partner.clone(), extras.clone(), None).await?;
    let mut out = partner_json(&partner, &extras);
    out.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/crossTenantAccessPolicy/partners/$entity")));
    Ok(GraphResponse::created(Value::Object(out)))
}

pub(crate) async fn update_partner(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let _guard = ctx.state.settings_lock.lock().await;
    let (mut partner, mut extras) = load_partner(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    apply_partner_body(body, &mut partner, &mut extras)?;
    store_partner(ctx, partner, extras, None).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_partner(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let _guard = ctx.state.settings_lock.lock().await;
    let (partner, _) = load_partner(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let key = partner.tenant_id.to_ascii_lowercase();
        dir.apply_then(&tenant, &[Operation::DeletePartner { partner_tenant_id: partner.tenant_id }], |c, _| {
            store::delete_extras(c, &tenant, kind::PARTNER, &key)?;
            store::delete_extras(c, &tenant, kind::IDENTITY_SYNC, &key)
        })
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// identitySynchronization

fn sync_json(partner: &PartnerConfiguration, sync: &IdentitySynchronization, extras: &Map<String, Value>) -> Map<String, Value> {
    json!({
        "tenantId": partner.tenant_id,
        "displayName": extras.get("displayName").cloned().unwrap_or(Value::Null),
        "userSyncInbound": { "isSyncAllowed": sync.user_sync_inbound.is_sync_allowed },
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

async fn load_sync_extras(ctx: &Ctx, partner: &str) -> Result<Map<String, Value>, GraphError> {
    let tenant = ctx.tenant().to_string();
    let key = partner.to_string();
    ctx.db(move |dir| dir.emulator_read(|c| store::extras(c, &tenant, kind::IDENTITY_SYNC, &key))).await
}

/// Applies a `crossTenantIdentitySyncPolicyPartner` body.
fn apply_sync_body(
    body: &Map<String, Value>,
    partner: &str,
    sync: &mut IdentitySynchronization,
    extras: &mut Map<String, Value>,
) -> Result<(), GraphError> {
    for (key, v) in body {
        if key.contains('@') {
            continue;
        }
        match key.as_str() {
            "tenantId" => {
                if v.as_str().is_none_or(|t| !t.trim().eq_ignore_ascii_case(partner)) {
                    return Err(GraphError::bad_request("The property 'tenantId' must be the partner's tenant id."));
                }
            }
            "displayName" => {
                if !(v.is_string() || v.is_null()) {
                    return Err(GraphError::bad_request("displayName must be a string."));
                }
                extras.insert(key.clone(), v.clone());
            }
            "userSyncInbound" => {
                sync.user_sync_inbound = if v.is_null() {
                    UserSyncInbound::default()
                } else {
                    let w: crate::graph::wire::CrossTenantUserSyncInbound = typed(v, "userSyncInbound")?;
                    if let Some(obj) = v.as_object()
                        && let Some(bad) = obj.keys().find(|k| !k.contains('@') && k.as_str() != "isSyncAllowed")
                    {
                        return Err(GraphError::bad_request(format!("Invalid property 'userSyncInbound.{bad}'.")));
                    }
                    UserSyncInbound { is_sync_allowed: w.is_sync_allowed.unwrap_or(false) }
                };
            }
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Property '{key}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    Ok(())
}

pub(crate) async fn get_identity_sync(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let (partner, _) = load_partner(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    let Some(sync) = &partner.identity_synchronization else { return Err(GraphError::not_found(id)) };
    let extras = load_sync_extras(ctx, &partner.tenant_id).await?;
    let mut body = sync_json(&partner, sync, &extras);
    body.insert(
        "@odata.context".into(),
        json!(ctx.context(
            req.version,
            &format!("policies/crossTenantAccessPolicy/partners('{}')/identitySynchronization/$entity", partner.tenant_id)
        )),
    );
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn put_identity_sync(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let _guard = ctx.state.settings_lock.lock().await;
    let Some((mut partner, extras)) = load_partner(ctx, id).await? else {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "No partner configuration for tenant '{id}': create it first (POST /policies/crossTenantAccessPolicy/partners)."
            ),
        ));
    };
    if partner.identity_synchronization.is_some() {
        return Err(GraphError::conflict(
            "A conflicting object with one or more of the specified property values is present in the directory.",
        ));
    }
    let mut sync = IdentitySynchronization::default();
    let mut sync_extras = Map::new();
    apply_sync_body(body, &partner.tenant_id, &mut sync, &mut sync_extras)?;
    partner.identity_synchronization = Some(sync);
    store_partner(ctx, partner, extras, Some(sync_extras)).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn update_identity_sync(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let _guard = ctx.state.settings_lock.lock().await;
    let missing = || GraphError::new(StatusCode::NOT_FOUND, "Directory_ObjectNotFound", policy_not_found_message());
    let (mut partner, extras) = load_partner(ctx, id).await?.ok_or_else(missing)?;
    let mut sync = partner.identity_synchronization.clone().ok_or_else(missing)?;
    let mut sync_extras = load_sync_extras(ctx, &partner.tenant_id).await?;
    apply_sync_body(body, &partner.tenant_id, &mut sync, &mut sync_extras)?;
    partner.identity_synchronization = Some(sync);
    store_partner(ctx, partner, extras, Some(sync_extras)).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_identity_sync(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let _guard = ctx.state.settings_lock.lock().await;
    let (mut partner, extras) = load_partner(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    if partner.identity_synchronization.take().is_none() {
        return Err(GraphError::not_found(id));
    }
    store_partner(ctx, partner, extras, Some(Map::new())).await?;
    Ok(GraphResponse::no_content())
}
