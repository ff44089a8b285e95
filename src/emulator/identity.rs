//! `/identity/identityProviders` (graph-contract 1.8) over the local
//! directory's identity tables (R17). Writes go through the directory's operations, so its rules hold:
//! a flow offering a missing or disabled provider, or deleting a provider a flow offers, is refused
//! (`SignUpProviderUnavailable`). Secrets are answered as `******` and kept only as salted hashes.
//!
//! Served as the contract has them: providers are polymorphic (`socialIdentityProvider`,
//! `builtInIdentityProvider` for email one-time passcode while it is enabled,
//! `samlOrWsFedExternalDomainFederation`, without its `domains` there: that list does not expand relationships).
//!
//! Beyond the reference (entente's `contract/identity.yaml`):
//! - `/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email`: GET and PATCH of
//!   `allowExternalIdToUseEmailOtp` over the email one-time passcode provider: no provider is `default`, an
//!   enabled one `enabled`, a disabled one `disabled`. PATCH `enabled`/`disabled` writes the provider's state
//!   (R17 holds: disabling one a flow offers is refused); `default` (Microsoft: enabled since October 2021)
//!   enables a disabled provider and otherwise changes nothing. The method for the tenant's own users,
//!   `state` (`enabled` or `disabled`) and `includeTargets` (`user`/`group` targets, `all_users` for every
//!   user), is kept by `organization.rs`: with the branding's password reset links it is an external
//!   tenant's self-service password reset (`enabled` with no targets until written; `excludeTargets` must
//!   stay empty, anything else 501).
//! - `/directory/federationConfigurations/…samlOrWsFedExternalDomainFederation`: list (with `domains`, and
//!   `$filter=domains/any(x: x/id eq '…')`), create (domains inline, at least one; a domain another
//!   federation has is 409), update (200 with the federation), delete (by id under
//!   `/directory/federationConfigurations`), and a federation's `domains`: list and add. Both spellings of the
//!   cast (`graph.` and `microsoft.graph.`) are accepted wherever the pages use either.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::identity::*;
use crate::core::operation::Operation;

const SOCIAL: &str = "#microsoft.graph.socialIdentityProvider";
pub(super) const BUILT_IN: &str = "#microsoft.graph.builtInIdentityProvider";
const FEDERATION: &str = "#microsoft.graph.samlOrWsFedExternalDomainFederation";

pub(super) async fn state(ctx: &Ctx) -> Result<IdentityState, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.identity_state(&tenant)).await
}

pub(super) async fn apply(ctx: &Ctx, op: Operation) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |_, _| Ok(()))).await
}

/// What Graph lists: the built-in email one-time passcode only while it is enabled.
fn listed(p: &ObservedIdentityProvider) -> bool {
    p.provider_type != IdentityProviderType::EmailOneTimePasscode || p.state == ProviderState::Enabled
}

pub(super) fn provider_json(p: &ObservedIdentityProvider) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(p.id));
    m.insert("displayName".into(), json!(p.display_name));
    match p.provider_type {
        IdentityProviderType::EmailOneTimePasscode => {
            m.insert("@odata.type".into(), json!(BUILT_IN));
            m.insert("identityProviderType".into(), json!("EmailOTP"));
        }
        IdentityProviderType::SamlWsFed => {
            m.insert("@odata.type".into(), json!(FEDERATION));
            if let Some(s) = &p.saml {
                m.insert("issuerUri".into(), json!(s.issuer_uri));
                m.insert("passiveSignInUri".into(), json!(s.passive_sign_in_uri));
                m.insert("metadataExchangeUri".into(), json!(s.metadata_exchange_uri));
                let protocol = match s.preferred_authentication_protocol {
                    AuthenticationProtocol::Saml => "saml",
                    AuthenticationProtocol::WsFed => "wsFed",
                };
                m.insert("preferredAuthenticationProtocol".into(), json!(protocol));
                m.insert("signingCertificate".into(), json!(s.signing_certificate));
            }
        }
        t => {
            m.insert("@odata.type".into(), json!(SOCIAL));
            m.insert("identityProviderType".into(), json!(t.as_str()));
            m.insert("clientId".into(), json!(p.client_id));
            m.insert("clientSecret".into(), json!("******"));
        }
    }
    Value::Object(m)
}

pub(super) fn not_found(what: &str, id: &str) -> GraphError {
    GraphError::new(http::StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("{what} '{id}' does not exist."))
}

pub(super) fn string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be a string."))),
    }
}

pub(crate) async fn list_providers(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let value: Vec<Value> = s.providers.iter().filter(|p| listed(p)).map(provider_json).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "identity/identityProviders"),
        "value": value,
    })))
}

pub(crate) async fn get_provider(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let p = s.providers.iter().find(|p| p.id == id && listed(p)).ok_or_else(|| not_found("identityProviderBase", id))?;
    let mut body = provider_json(p);
    body["@odata.context"] = json!(ctx.context(req.version, "identity/identityProviders/$entity"));
    Ok(GraphResponse::ok(body))
}

fn social_type(t: Option<&str>) -> Result<IdentityProviderType, GraphError> {
    match t.and_then(IdentityProviderType::parse) {
        Some(t) if t.is_social() => Ok(t),
        _ => Err(GraphError::bad_request(format!(
            "identityProviderType {:?} is not supported; use Google, Facebook or MicrosoftAccount.",
            t.unwrap_or_default()
        ))),
    }
}

pub(crate) async fn create_provider(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let odata_type = string(body, "@odata.type")?.unwrap_or_default();
    let tenant = ctx.tenant().to_string();
    let config = match odata_type.as_str() {
        SOCIAL => {
            let t = social_type(string(body, "identityProviderType")?.as_deref())?;
            let client_id = string(body, "clientId")?.ok_or_else(|| GraphError::bad_request("clientId is required."))?;
            let secret = string(body, "clientSecret")?.ok_or_else(|| GraphError::bad_request("clientSecret is required."))?;
            let key = provider_key(t, None);
            let secret = SecretValue::new(secret);
            IdentityProviderConfig {
                client_secret_hash: Some(secret_hash(&format!("{tenant}/{key}"), &secret)),
                key,
                provider_type: t,
                display_name: string(body, "displayName")?.unwrap_or_else(|| t.as_str().to_string()),
                client_id: Some(client_id),
                client_secret: Some(secret),
                saml: None,
                state: ProviderState::Enabled,
            }
        }
        BUILT_IN => return Err(GraphError::bad_request("Built-in identity providers cannot be created.")),
        FEDERATION => {
            return Err(GraphError::bad_request(
                "A SAML/WS-Fed federation is created with its domains under \
                 /directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation.",
            ));
        }
        other => {
            return Err(GraphError::bad_request(format!("@odata.type {other:?} is not a supported identity provider type.")));
        }
    };
    let key = config.key.clone();
    apply(ctx, Operation::PutIdentityProvider { provider: config, existing_id: None }).await?;
    let s = state(ctx).await?;
    let p = s.providers.iter().find(|p| p.key == key).ok_or_else(|| GraphError::internal("the provider was not created"))?;
    let mut out = provider_json(p);
    out["@odata.context"] = json!(ctx.context(req.version, "identity/identityProviders/$entity"));
    Ok(GraphResponse::created(out))
}

pub(crate) async fn update_provider(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let s = state(ctx).await?;
    let p = s.providers.iter().find(|p| p.id == id && listed(p)).ok_or_else(|| not_found("identityProviderBase", id))?;
    let tenant = ctx.tenant().to_string();
    let secret = string(body, "clientSecret")?.map(SecretValue::new);
    let config = IdentityProviderConfig {
        key: p.key.clone(),
        provider_type: p.provider_type,
        display_name: string(body, "displayName")?.unwrap_or_else(|| p.display_name.clone()),
        client_id: string(body, "clientId")?.or_else(|| p.client_id.clone()),
        client_secret_hash: secret.as_ref().map(|v| secret_hash(&format!("{tenant}/{}", p.key), v)),
        client_secret: secret,
        saml: p.saml.clone(),
        state: p.state,
    };
    apply(ctx, Operation::PutIdentityProvider { provider: config, existing_id: Some(p.id.clone()) }).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_provider(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let p = s.providers.iter().find(|p| p.id == id && listed(p)).ok_or_else(|| not_found("identityProviderBase", id))?;
    if p.provider_type == IdentityProviderType::EmailOneTimePasscode {
        return Err(GraphError::bad_request("Built-in identity providers cannot be deleted."));
    }
    apply(ctx, Operation::DeleteIdentityProvider { key: p.key.clone(), id: p.id.clone() }).await?;
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// Email one-time passcode for external users: the email method of the authentication methods policy.

const EMAIL_METHOD: &str = "#microsoft.graph.emailAuthenticationMethodConfiguration";

/// `allowExternalIdToUseEmailOtp` as the local directory holds it.
fn email_otp_state(s: &IdentityState) -> &'static str {
    match s.providers.iter().find(|p| p.provider_type == IdentityProviderType::EmailOneTimePasscode) {
        None => "default",
        Some(p) if p.state == ProviderState::Enabled => "enabled",
        Some(_) => "disabled",
    }
}

pub(crate) async fn get_email_method(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let method = super::branding::email_method_settings(ctx).await?;
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "authenticationMethodConfigurations/$entity"),
        "@odata.type": EMAIL_METHOD,
        "id": "Email",
        "state": method.state,
        "allowExternalIdToUseEmailOtp": email_otp_state(&s),
        "excludeTargets": [],
        "includeTargets": method.include_targets,
    })))
}

/// `includeTargets`: `authenticationMethodTarget`s, each a `user` or `group` (`all_users`: every user) by
/// `id`, with an optional `isRegistrationRequired`; kept as `{targetType, id, isRegistrationRequired}`.
fn include_targets(value: &Value) -> Result<Vec<Value>, GraphError> {
    let bad = |why: String| GraphError::bad_request(format!("includeTargets: {why}"));
    let items = value.as_array().ok_or_else(|| bad("must be an array of authenticationMethodTarget.".into()))?;
    items
        .iter()
        .map(|t| {
            let t = t.as_object().ok_or_else(|| bad("each target must be an object.".into()))?;
            let target_type = match t.get("targetType").and_then(Value::as_str) {
                Some(k @ ("user" | "group")) => k,
                other => return Err(bad(format!("targetType must be user or group, not {other:?}."))),
            };
            let id = string(t, "id")?.filter(|i| !i.is_empty()).ok_or_else(|| bad("each target needs an id.".into()))?;
            let required = match t.get("isRegistrationRequired") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad("isRegistrationRequired must be a boolean.".into())),
            };
            Ok(json!({ "targetType": target_type, "id": id, "isRegistrationRequired": required }))
        })
        .collect()
}

fn email_not_modelled(what: &str) -> GraphError {
    GraphError::new(
        http::StatusCode::NOT_IMPLEMENTED,
        "notImplemented",
        format!(
            "The emulator does not model {what} of the email method (only allowExternalIdToUseEmailOtp, state and includeTargets)."
        ),
    )
}

pub(crate) async fn update_email_method(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    if string(body, "@odata.type")?.as_deref() != Some(EMAIL_METHOD) {
        return Err(GraphError::bad_request(format!("The request body must include \"@odata.type\": \"{EMAIL_METHOD}\".")));
    }
    let mut wanted = None;
    let (mut method_state, mut targets) = (None, None);
    for (key, value) in body {
        match key.as_str() {
            "@odata.type" | "id" => {}
            "allowExternalIdToUseEmailOtp" => match value.as_str() {
                Some(v @ ("default" | "enabled" | "disabled")) => wanted = Some(v),
                _ => {
                    return Err(GraphError::bad_request(format!(
                        "allowExternalIdToUseEmailOtp must be default, enabled or disabled, not {value}."
                    )));
                }
            },
            "state" => match value.as_str() {
                Some(v @ ("enabled" | "disabled")) => method_state = Some(v.to_string()),
                _ => return Err(GraphError::bad_request(format!("state must be enabled or disabled, not {value}."))),
            },
            "includeTargets" => targets = Some(include_targets(value)?),
            "excludeTargets" if value.as_array().is_some_and(Vec::is_empty) => {}
            "excludeTargets" => return Err(email_not_modelled(key)),
            other => return Err(GraphError::bad_request(format!("Property '{other}' does not exist on the email method."))),
        }
    }
    let s = state(ctx).await?;
    let current = s.providers.iter().find(|p| p.provider_type == IdentityProviderType::EmailOneTimePasscode);
    let target = match (wanted, current) {
        (Some("enabled"), _) => Some(ProviderState::Enabled),
        (Some("disabled"), _) => Some(ProviderState::Disabled),
        // `default` is enabled (Microsoft: since October 2021): a disabled provider is enabled again.
        (Some(_), Some(p)) if p.state == ProviderState::Disabled => Some(ProviderState::Enabled),
        _ => None,
    };
    if let Some(target) = target
        && current.is_none_or(|p| p.state != target)
    {
        let t = IdentityProviderType::EmailOneTimePasscode;
        let config = IdentityProviderConfig {
            key: provider_key(t, None),
            provider_type: t,
            display_name: current.map_or_else(|| t.as_str().to_string(), |p| p.display_name.clone()),
            client_id: None,
            client_secret: None,
            client_secret_hash: None,
            saml: None,
            state: target,
        };
        apply(ctx, Operation::PutIdentityProvider { provider: config, existing_id: current.map(|p| p.id.clone()) }).await?;
    }
    if method_state.is_some() || targets.is_some() {
        super::branding::update_email_method_settings(ctx, method_state, targets).await?;
    }
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// SAML/WS-Fed federations with their domains: /directory/federationConfigurations.

/// `graph.samlOrWsFedExternalDomainFederation` or `microsoft.graph.…` (the OData alias and the namespace).
pub(crate) fn is_federation_cast(segment: &str) -> bool {
    let bare = segment.strip_prefix("microsoft.").unwrap_or(segment);
    bare.eq_ignore_ascii_case("graph.samlOrWsFedExternalDomainFederation")
}

fn federation_json(p: &ObservedIdentityProvider) -> Value {
    let mut v = provider_json(p);
    let domains: Vec<Value> = p.saml.iter().flat_map(|s| s.domains.iter()).map(|d| json!({ "id": d })).collect();
    v["domains"] = json!(domains);
    v
}

fn federation<'a>(s: &'a IdentityState, id: &str) -> Result<&'a ObservedIdentityProvider, GraphError> {
    s.providers
        .iter()
        .find(|p| p.provider_type == IdentityProviderType::SamlWsFed && p.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found("samlOrWsFedExternalDomainFederation", id))
}

/// `domains/any(x: x/id eq 'fabrikam.com')`: the domain.
fn domain_filter(filter: &str) -> Result<String, GraphError> {
    let re = regex::Regex::new(r"^\s*domains/any\(\s*(\w+)\s*:\s*(\w+)/id\s+eq\s+'([^']+)'\s*\)\s*$").expect("valid regex");
    match re.captures(filter) {
        Some(c) if c[1] == c[2] => Ok(c[3].to_ascii_lowercase()),
        _ => Err(GraphError::bad_request(format!(
            "Unsupported $filter {filter:?} (emulator: only domains/any(x: x/id eq 'domain') is served)."
        ))),
    }
}

pub(crate) async fn list_federations(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let domain = req.param("filter").map(domain_filter).transpose()?;
    let s = state(ctx).await?;
    let value: Vec<Value> = s
        .providers
        .iter()
        .filter(|p| p.provider_type == IdentityProviderType::SamlWsFed)
        .filter(|p| domain.as_ref().is_none_or(|d| p.saml.as_ref().is_some_and(|s| s.domains.contains(d))))
        .map(federation_json)
        .collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation"),
        "value": value,
    })))
}

/// A required, non-empty string property.
fn required(body: &Map<String, Value>, name: &str) -> Result<String, GraphError> {
    string(body, name)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| GraphError::bad_request(format!("{name} is required.")))
}

fn protocol(body: &Map<String, Value>) -> Result<Option<AuthenticationProtocol>, GraphError> {
    match string(body, "preferredAuthenticationProtocol")?.as_deref() {
        None => Ok(None),
        Some("saml") => Ok(Some(AuthenticationProtocol::Saml)),
        Some("wsFed") => Ok(Some(AuthenticationProtocol::WsFed)),
        Some(other) => {
            Err(GraphError::bad_request(format!("preferredAuthenticationProtocol must be saml or wsFed, not {other:?}.")))
        }
    }
}

/// One `externalDomainName` (`{"id": "fabrikam.com"}`), lowercase.
fn domain_name(v: &Value, at: &str) -> Result<String, GraphError> {
    let bad = || GraphError::bad_request(format!("{at} must be an externalDomainName object: {{\"id\": \"<domain>\"}}."));
    let o = v.as_object().ok_or_else(bad)?;
    if o.keys().any(|k| k != "id" && k != "@odata.type") {
        return Err(bad());
    }
    let id = o.get("id").and_then(Value::as_str).map(|d| d.trim().to_ascii_lowercase()).ok_or_else(bad)?;
    if crate::core::validate::domain(&id).is_err() {
        return Err(GraphError::bad_request(format!("{at}: {id:?} is not a domain name.")));
    }
    Ok(id)
}

const FEDERATION_PROPERTIES: &[&str] = &[
    "displayName",
    "issuerUri",
    "passiveSignInUri",
    "metadataExchangeUri",
    "preferredAuthenticationProtocol",
    "signingCertificate",
];

fn unknown_property(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), GraphError> {
    match body.keys().find(|k| !k.contains('@') && !allowed.contains(&k.as_str())) {
        Some(k) => Err(GraphError::bad_request(format!("Property '{k}' does not exist on samlOrWsFedExternalDomainFederation."))),
        None => Ok(()),
    }
}

fn check_federation_type(body: &Map<String, Value>) -> Result<(), GraphError> {
    match string(body, "@odata.type")? {
        None => Ok(()),
        Some(t) if t.trim_start_matches('#') == FEDERATION.trim_start_matches('#') => Ok(()),
        Some(t) => Err(GraphError::bad_request(format!("@odata.type {t:?} is not samlOrWsFedExternalDomainFederation."))),
    }
}

async fn write_federation(ctx: &Ctx, config: IdentityProviderConfig, existing_id: Option<String>) -> Result<Value, GraphError> {
    let domain = config.saml.as_ref().and_then(|s| s.domains.iter().next().cloned()).unwrap_or_default();
    apply(ctx, Operation::PutIdentityProvider { provider: config, existing_id }).await?;
    let s = state(ctx).await?;
    let p = s
        .providers
        .iter()
        .find(|p| p.saml.as_ref().is_some_and(|s| s.domains.contains(&domain)))
        .ok_or_else(|| GraphError::internal("the federation was not written"))?;
    Ok(federation_json(p))
}

pub(crate) async fn create_federation(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    check_federation_type(body)?;
    let mut allowed = FEDERATION_PROPERTIES.to_vec();
    allowed.push("domains");
    unknown_property(body, &allowed)?;
    let domains = match body.get("domains") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().enumerate().map(|(i, d)| domain_name(d, &format!("domains[{i}]"))).collect::<Result<_, _>>()?
        }
        _ => return Err(GraphError::bad_request("domains is required: at least one externalDomainName.")),
    };
    let saml = SamlSettings {
        domains,
        issuer_uri: required(body, "issuerUri")?,
        passive_sign_in_uri: required(body, "passiveSignInUri")?,
        metadata_exchange_uri: string(body, "metadataExchangeUri")?,
        preferred_authentication_protocol: protocol(body)?.unwrap_or_default(),
        signing_certificate: required(body, "signingCertificate")?,
    };
    let key = provider_key(IdentityProviderType::SamlWsFed, Some(&saml));
    let config = IdentityProviderConfig {
        display_name: string(body, "displayName")?.unwrap_or_else(|| key.trim_start_matches("SamlWsFed:").to_string()),
        key,
        provider_type: IdentityProviderType::SamlWsFed,
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: Some(saml),
        state: ProviderState::Enabled,
    };
    let mut out = write_federation(ctx, config, None).await?;
    out["@odata.context"] =
        json!(ctx.context(req.version, "directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation/$entity"));
    Ok(GraphResponse::created(out))
}

pub(crate) async fn update_federation(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    check_federation_type(body)?;
    if body.contains_key("domains") {
        return Err(GraphError::bad_request(
            "domains is a relationship: add a domain with POST …/samlOrWsFedExternalDomainFederation/domains.",
        ));
    }
    unknown_property(body, FEDERATION_PROPERTIES)?;
    let s = state(ctx).await?;
    let p = federation(&s, id)?;
    let mut saml = p.saml.clone().unwrap_or_default();
    for (name, field) in [
        ("issuerUri", &mut saml.issuer_uri),
        ("passiveSignInUri", &mut saml.passive_sign_in_uri),
        ("signingCertificate", &mut saml.signing_certificate),
    ] {
        if body.contains_key(name) {
            *field = required(body, name)?;
        }
    }
    if body.contains_key("metadataExchangeUri") {
        saml.metadata_exchange_uri = string(body, "metadataExchangeUri")?;
    }
    if let Some(protocol) = protocol(body)? {
        saml.preferred_authentication_protocol = protocol;
    }
    let config = IdentityProviderConfig {
        key: p.key.clone(),
        provider_type: IdentityProviderType::SamlWsFed,
        display_name: string(body, "displayName")?.unwrap_or_else(|| p.display_name.clone()),
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: Some(saml),
        state: p.state,
    };
    let mut out = write_federation(ctx, config, Some(p.id.clone())).await?;
    out["@odata.context"] =
        json!(ctx.context(req.version, "directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation/$entity"));
    Ok(GraphResponse::ok(out))
}

pub(crate) async fn delete_federation(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let p = federation(&s, id)?;
    apply(ctx, Operation::DeleteIdentityProvider { key: p.key.clone(), id: p.id.clone() }).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn list_federation_domains(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let p = federation(&s, id)?;
    let value: Vec<Value> = p.saml.iter().flat_map(|s| s.domains.iter()).map(|d| json!({ "id": d })).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(
            req.version,
            &format!("directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation('{}')/domains", p.id)
        ),
        "value": value,
    })))
}

pub(crate) async fn add_federation_domain(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.body.as_ref().ok_or_else(|| GraphError::bad_request("A request body is required."))?;
    let domain = domain_name(body, "the body")?;
    let s = state(ctx).await?;
    let p = federation(&s, id)?;
    let mut saml = p.saml.clone().unwrap_or_default();
    if !saml.domains.insert(domain.clone()) {
        return Err(GraphError::conflict(format!("{domain} is already a domain of federation {}.", p.id)));
    }
    let config = IdentityProviderConfig {
        key: provider_key(IdentityProviderType::SamlWsFed, Some(&saml)),
        provider_type: IdentityProviderType::SamlWsFed,
        display_name: p.display_name.clone(),
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: Some(saml),
        state: p.state,
    };
    apply(ctx, Operation::PutIdentityProvider { provider: config, existing_id: Some(p.id.clone()) }).await?;
    Ok(GraphResponse::created(json!({
        "@odata.context": ctx.context(req.version, "directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation/domains/$entity"),
        "id": domain,
    })))
}
