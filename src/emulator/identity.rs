//! `/identity/identityProviders` (graph-contract 1.8) over the local
//! directory's identity tables (R17). Writes go through the directory's operations, so its rules hold:
//! a flow offering a missing or disabled provider, or deleting a provider a flow offers, is refused
//! (`SignUpProviderUnavailable`). Secrets are answered as `******` and kept only as salted hashes.
//!
//! Served as the contract has them: providers are polymorphic (`socialIdentityProvider`,
//! `builtInIdentityProvider` for email one-time passcode while it is enabled,
//! `samlOrWsFedExternalDomainFederation`); flows are listed, created (`B2X_1_` prefix, `Location`), read
//! and deleted, with `userFlowIdentityProviders` inline on create and with `$expand`.

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
                "A SAML/WS-Fed federation needs its domains (emulator: the domains relationship is not served).",
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
