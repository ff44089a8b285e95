//! Identity providers (R17) over Graph (graph-contract 1.8): `/identity/identityProviders`
//! (polymorphic over `identityProviderBase`: social, built-in), plus what the reference subset lacks and
//! entente's contract extension (`emulator/contract/identity.yaml`) transcribes from the v1.0 reference:
//! - email one-time passcode for external users: `allowExternalIdToUseEmailOtp` of
//!   `/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email`. Read into the
//!   provider's state (`disabled` is disabled; `enabled` and `default` are enabled: Microsoft turned email
//!   OTP on for tenants in the default state from October 2021); written `enabled`/`disabled` on put, and
//!   `disabled` on delete (a built-in provider cannot be removed, only switched off);
//! - SAML/WS-Fed federations with their domains: `/directory/federationConfigurations/…
//!   samlOrWsFedExternalDomainFederation` (listed, each federation's `domains` read, created with its
//!   domains inline, updated, domains added, deleted). A federation is keyed by its first domain, as the
//!   planner keys desired ones (`provider_key`), so adoption and drift detection work; the planner also
//!   matches a federation by any domain it shares with a desired one, so a domain added before the first
//!   updates it in place (`existing_id`, its id kept) instead of creating a second one.
//!
//! User flows are `user_flows.rs`; this file reads both into one `IdentityState`.
//!
//! What Graph v1.0 itself has no API for fails with `DirectoryError::NotImplemented` naming it, and the
//! snapshot lists it in `unsupported` so the plan says so: disabling a social or SAML/WS-Fed provider
//! (no state property on those types) and removing a domain from a federation (`externalDomainName` has
//! no methods).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use crate::core::identity::*;
use crate::core::operation::{Operation, Outcome};
use crate::core::policy::{Refusal, RefusalReason};
use crate::core::tenant_profile::Unsupported;
use crate::directory::DirectoryError;

pub(crate) const PROVIDERS: &str = "/identity/identityProviders";
/// The email method of the authentication methods policy (email one-time passcode).
pub(crate) const EMAIL_METHOD: &str = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email";
const EMAIL_METHOD_TYPE: &str = "#microsoft.graph.emailAuthenticationMethodConfiguration";
/// List and update (samlorwsfedexternaldomainfederation-list, -update).
pub(crate) const FEDERATIONS: &str = "/directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation";
/// Create (samlorwsfedexternaldomainfederation-post).
const FEDERATIONS_CREATE: &str = "/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation";
const FEDERATION_TYPE: &str = "#microsoft.graph.samlOrWsFedExternalDomainFederation";

/// Disabling a provider other than email one-time passcode: Graph v1.0 has no such state.
pub(crate) const STATE_NOT_IMPLEMENTED: &str = "Graph v1.0 has no enabled/disabled state for a social or SAML/WS-Fed \
     identity provider (socialIdentityProvider and samlOrWsFedExternalDomainFederation carry none; only email \
     one-time passcode has one, in the authentication methods policy): delete the IdentityProvider, or take it \
     off the sign-up flows that offer it, instead of disabling it";
/// Removing a domain from an existing federation.
pub(crate) const DOMAIN_REMOVAL_NOT_IMPLEMENTED: &str = "Graph v1.0 cannot remove a domain from a SAML/WS-Fed \
     federation (samlOrWsFedExternalDomainFederation/domains can be listed and added to; externalDomainName has no \
     delete): delete the federation and create it again with the domains wanted";

/// What this backend cannot write, for the plan's notes: a disabled state for the provider types Graph
/// has none for (`identityProvider.state.<type>`), and removing a federation's domain
/// (`identityProvider.saml.domains.remove`).
pub(super) fn unsupported() -> Unsupported {
    [
        IdentityProviderType::Google,
        IdentityProviderType::Facebook,
        IdentityProviderType::MicrosoftAccount,
        IdentityProviderType::SamlWsFed,
    ]
    .into_iter()
    .map(|t| (format!("identityProvider.state.{}", t.as_str()), STATE_NOT_IMPLEMENTED.to_string()))
    .chain([("identityProvider.saml.domains.remove".to_string(), DOMAIN_REMOVAL_NOT_IMPLEMENTED.to_string())])
    .chain(super::user_flows::unsupported())
    .collect()
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Provider {
    pub(super) id: String,
    #[serde(default, rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    identity_provider_type: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    issuer_uri: Option<String>,
    #[serde(default)]
    passive_sign_in_uri: Option<String>,
    #[serde(default)]
    metadata_exchange_uri: Option<String>,
    #[serde(default)]
    preferred_authentication_protocol: Option<String>,
    #[serde(default)]
    signing_certificate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailMethod {
    #[serde(default)]
    allow_external_id_to_use_email_otp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DomainName {
    id: String,
}

/// The type of a Graph provider as entente sees it; `None` for the kinds entente does not manage (Apple,
/// OIDC, internal federation, built-in email with password…).
fn kind(p: &Provider) -> Option<IdentityProviderType> {
    let kind = p.odata_type.as_deref().unwrap_or_default().trim_start_matches("#microsoft.graph.");
    Some(match (kind, p.identity_provider_type.as_deref()) {
        ("builtInIdentityProvider", Some("EmailOTP" | "EmailOneTimePasscode")) => IdentityProviderType::EmailOneTimePasscode,
        ("builtInIdentityProvider" | "socialIdentityProvider", Some("MicrosoftAccount")) => {
            IdentityProviderType::MicrosoftAccount
        }
        ("socialIdentityProvider", Some("Google")) => IdentityProviderType::Google,
        ("socialIdentityProvider", Some("Facebook")) => IdentityProviderType::Facebook,
        ("samlOrWsFedExternalDomainFederation", _) => IdentityProviderType::SamlWsFed,
        _ => return None,
    })
}

/// A provider as entente sees it: `t` its type, `domains` a federation's, `state` what Graph says of it.
fn observed(p: &Provider, t: IdentityProviderType, domains: BTreeSet<String>, state: ProviderState) -> ObservedIdentityProvider {
    let saml = (t == IdentityProviderType::SamlWsFed).then(|| SamlSettings {
        domains,
        issuer_uri: p.issuer_uri.clone().unwrap_or_default(),
        passive_sign_in_uri: p.passive_sign_in_uri.clone().unwrap_or_default(),
        metadata_exchange_uri: p.metadata_exchange_uri.clone(),
        preferred_authentication_protocol: match p.preferred_authentication_protocol.as_deref() {
            Some("wsFed") => AuthenticationProtocol::WsFed,
            _ => AuthenticationProtocol::Saml,
        },
        signing_certificate: p.signing_certificate.clone().unwrap_or_default(),
    });
    let key = match &saml {
        // Keyed by its first domain, as desired federations are; one without domains only by its id.
        Some(s) if s.domains.is_empty() => format!("SamlWsFed:id:{}", p.id),
        s => provider_key(t, s.as_ref()),
    };
    ObservedIdentityProvider {
        id: p.id.clone(),
        key,
        provider_type: t,
        display_name: p.display_name.clone().unwrap_or_default(),
        client_id: p.client_id.clone(),
        client_secret_hash: None,
        saml,
        state,
    }
}

/// `allowExternalIdToUseEmailOtp` as a state: `default` is enabled (email OTP is on for tenants in the
/// default state since October 2021, per the emailAuthenticationMethodConfiguration reference).
fn email_otp_state(value: &str) -> ProviderState {
    if value == "disabled" { ProviderState::Disabled } else { ProviderState::Enabled }
}

fn federation_body(p: &IdentityProviderConfig, s: &SamlSettings) -> serde_json::Value {
    json!({
        "displayName": p.display_name,
        "issuerUri": s.issuer_uri,
        "passiveSignInUri": s.passive_sign_in_uri,
        "metadataExchangeUri": s.metadata_exchange_uri,
        "preferredAuthenticationProtocol": match s.preferred_authentication_protocol {
            AuthenticationProtocol::Saml => "saml",
            AuthenticationProtocol::WsFed => "wsFed",
        },
        "signingCertificate": s.signing_certificate,
    })
}

impl GraphDirectory {
    pub(super) async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, DirectoryError> {
        let mut out = Vec::new();
        let mut url = self.url(path, query)?;
        loop {
            let page: Page<T> = self.get_json(url).await?;
            out.extend(page.value);
            match page.next {
                Some(n) => url = n.parse().map_err(|e| DirectoryError::Invalid(format!("bad @odata.nextLink {n:?}: {e}")))?,
                None => return Ok(out),
            }
        }
    }

    /// The tenant's providers and user flows (graph-contract 1.8). Without `IdentityProvider.*` or
    /// `IdentityUserFlow.*` (403) the tenant reads as having none (a warning is logged): a plan that needs them
    /// then fails at apply with Graph's 403, naming the permission.
    pub(super) async fn read_identity(&self) -> Result<IdentityState, DirectoryError> {
        match self.read_identity_inner().await {
            Err(DirectoryError::Graph(g)) if g.status == 403 => {
                tracing::warn!(tenant = %self.tenant_id, "cannot read identity providers or user flows: {g}");
                Ok(IdentityState::default())
            }
            other => other,
        }
    }

    async fn read_identity_inner(&self) -> Result<IdentityState, DirectoryError> {
        let raw: Vec<Provider> = self.pages(PROVIDERS, &[]).await?;
        let otp = self.read_email_otp().await?;
        let otp_state = otp.as_deref().map_or(ProviderState::Enabled, email_otp_state);
        let mut providers: Vec<ObservedIdentityProvider> = raw
            .iter()
            .filter_map(|p| kind(p).map(|t| (p, t)))
            // Federations are read with their domains below.
            .filter(|(_, t)| *t != IdentityProviderType::SamlWsFed)
            .map(|(p, t)| {
                let state = if t == IdentityProviderType::EmailOneTimePasscode { otp_state } else { ProviderState::Enabled };
                observed(p, t, BTreeSet::new(), state)
            })
            .collect();
        // Email OTP set explicitly but not listed (Graph may list the built-in only while it is on): it is there,
        // in that state, under its fixed id and the type's name.
        let t = IdentityProviderType::EmailOneTimePasscode;
        if !providers.iter().any(|p| p.provider_type == t)
            && let Some(value @ ("enabled" | "disabled")) = otp.as_deref()
        {
            let builtin = Provider {
                id: t.graph_id().unwrap_or_default().to_string(),
                odata_type: None,
                display_name: Some(t.as_str().to_string()),
                identity_provider_type: None,
                client_id: None,
                issuer_uri: None,
                passive_sign_in_uri: None,
                metadata_exchange_uri: None,
                preferred_authentication_protocol: None,
                signing_certificate: None,
            };
            providers.push(observed(&builtin, t, BTreeSet::new(), email_otp_state(value)));
        }
        let federations: Vec<Provider> = self.pages(FEDERATIONS, &[]).await?;
        for f in &federations {
            let domains = self.federation_domains(&f.id).await?;
            providers.push(observed(f, IdentityProviderType::SamlWsFed, domains, ProviderState::Enabled));
        }
        let keys: BTreeMap<String, String> = providers.iter().map(|p| (p.id.clone(), p.key.clone())).collect();
        let flows = self.read_flows(&keys).await?;
        Ok(IdentityState { providers, flows })
    }

    /// `allowExternalIdToUseEmailOtp`; `None` without `Policy.Read.All` (403, a warning is logged: the built-in
    /// provider then reads as enabled when Graph lists it).
    async fn read_email_otp(&self) -> Result<Option<String>, DirectoryError> {
        let url = self.url(EMAIL_METHOD, &[])?;
        match self.get_json::<EmailMethod>(url).await {
            Ok(m) => Ok(m.allow_external_id_to_use_email_otp),
            Err(DirectoryError::Graph(g)) if g.status == 403 => {
                tracing::warn!(tenant = %self.tenant_id, "cannot read the email one-time passcode method: {g}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A federation's domains, lowercase.
    async fn federation_domains(&self, id: &str) -> Result<BTreeSet<String>, DirectoryError> {
        let path =
            format!("/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation/{id}/domains");
        let domains: Vec<DomainName> = self.pages(&path, &[]).await?;
        Ok(domains.into_iter().map(|d| d.id.to_ascii_lowercase()).collect())
    }

    pub(super) async fn apply_identity(&self, op: &Operation) -> Result<Outcome, DirectoryError> {
        match op {
            Operation::PutIdentityProvider { provider, existing_id } => {
                self.put_provider(provider, existing_id.as_deref()).await?
            }
            Operation::DeleteIdentityProvider { id, key } => self.delete_provider(id, key).await?,
            Operation::PutSignUpFlow { flow, exists } => self.put_flow(flow, *exists).await?,
            Operation::DeleteSignUpFlow { id } => self.delete_flow(id).await?,
            _ => return Err(DirectoryError::Invalid(format!("{} is not an identity operation", op.name()))),
        }
        Ok(Outcome::Done)
    }

    async fn delete_provider(&self, id: &str, key: &str) -> Result<(), DirectoryError> {
        let t = IdentityProviderType::EmailOneTimePasscode;
        if key == t.as_str() {
            // Built in: it cannot be removed, only switched off for external users.
            return self.set_email_otp(ProviderState::Disabled).await;
        }
        let path = if key.starts_with("SamlWsFed") {
            format!("/directory/federationConfigurations/{id}")
        } else {
            format!("{PROVIDERS}/{id}")
        };
        let url = self.url(&path, &[])?;
        checked(&self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?, true)
    }

    /// Email one-time passcode for external users, on or off (R17: off is refused while a flow offers it).
    async fn set_email_otp(&self, state: ProviderState) -> Result<(), DirectoryError> {
        let body = json!({ "@odata.type": EMAIL_METHOD_TYPE, "allowExternalIdToUseEmailOtp": state.as_str() });
        let url = self.url(EMAIL_METHOD, &[])?;
        checked(&self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?, false)
    }

    async fn put_provider(&self, p: &IdentityProviderConfig, existing_id: Option<&str>) -> Result<(), DirectoryError> {
        match p.provider_type {
            IdentityProviderType::EmailOneTimePasscode => return self.set_email_otp(p.state).await,
            _ if p.state == ProviderState::Disabled => return Err(DirectoryError::NotImplemented(STATE_NOT_IMPLEMENTED.into())),
            IdentityProviderType::SamlWsFed => return self.put_federation(p, existing_id).await,
            _ => {}
        }
        let mut body = json!({ "displayName": p.display_name });
        body["@odata.type"] = json!("#microsoft.graph.socialIdentityProvider");
        body["identityProviderType"] = json!(p.provider_type.as_str());
        body["clientId"] = json!(p.client_id);
        if let Some(s) = &p.client_secret {
            body["clientSecret"] = json!(s.expose());
        }
        if let Some(id) = existing_id {
            let url = self.url(&format!("{PROVIDERS}/{id}"), &[])?;
            return checked(&self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?, false);
        }
        if p.client_secret.is_none() {
            return Err(DirectoryError::Invalid(format!("identity provider {} is created without its client secret", p.key)));
        }
        let url = self.url(PROVIDERS, &[])?;
        let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body.clone())).await?;
        if resp.status == 409 {
            // Created by an earlier attempt whose answer was lost: find it by type and bring it in line.
            let state = self.read_identity().await?;
            if let Some(found) = state.providers.iter().find(|o| o.key == p.key) {
                let url = self.url(&format!("{PROVIDERS}/{}", found.id), &[])?;
                return self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?.ok();
            }
        }
        resp.ok()
    }

    /// Creates a federation with its domains inline, or brings an existing one in line (properties, then
    /// the domains it lacks). A create whose outcome is unknown (lost answer, 5xx) or that conflicts (409) is
    /// not resent: the federation holding the first domain is looked up and adopted.
    async fn put_federation(&self, p: &IdentityProviderConfig, existing_id: Option<&str>) -> Result<(), DirectoryError> {
        let saml = p.saml.as_ref().ok_or_else(|| DirectoryError::Invalid(format!("federation {} has no settings", p.key)))?;
        if let Some(id) = existing_id {
            return self.update_federation(id, p, saml).await;
        }
        let mut body = federation_body(p, saml);
        body["@odata.type"] = json!(FEDERATION_TYPE);
        body["domains"] = saml.domains.iter().map(|d| json!({ "id": d })).collect();
        let url = self.url(FEDERATIONS_CREATE, &[])?;
        let failed = match self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body)).await {
            Ok(resp) if resp.is_success() => return Ok(()),
            Ok(resp) if resp.status == 409 || resp.status >= 500 => resp.error(),
            Ok(resp) => return checked(&resp, false),
            Err(e @ DirectoryError::Transport(_)) => e,
            Err(e) => return Err(e),
        };
        let first = saml.domains.iter().next().cloned().unwrap_or_default();
        let filter = format!("domains/any(x: x/id eq '{first}')");
        let found: Vec<Provider> = self.pages(FEDERATIONS, &[("$filter", &filter)]).await?;
        match found.first() {
            Some(f) => self.update_federation(&f.id, p, saml).await,
            None => Err(failed),
        }
    }

    async fn update_federation(&self, id: &str, p: &IdentityProviderConfig, saml: &SamlSettings) -> Result<(), DirectoryError> {
        let current = self.federation_domains(id).await?;
        let extra: Vec<&str> = current.difference(&saml.domains).map(String::as_str).collect();
        if !extra.is_empty() {
            return Err(DirectoryError::NotImplemented(format!(
                "{DOMAIN_REMOVAL_NOT_IMPLEMENTED} (federation {} also has {})",
                p.key,
                extra.join(", ")
            )));
        }
        let url = self.url(&format!("{FEDERATIONS}/{id}"), &[])?;
        let body = federation_body(p, saml);
        checked(&self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?, false)?;
        for d in saml.domains.difference(&current) {
            let path =
                format!("/directory/federationConfigurations/{id}/microsoft.graph.samlOrWsFedExternalDomainFederation/domains");
            let url = self.url(&path, &[])?;
            // Adding a domain twice is a 409, so resending after a lost answer is safe.
            let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(json!({ "id": d })).idempotent()).await?;
            if resp.status != 409 {
                checked(&resp, false)?;
            }
        }
        Ok(())
    }
}

/// Success, or the directory's R17 refusal as `Refused`, or the error.
pub(super) fn checked(resp: &super::http::Response, tolerate_404: bool) -> Result<(), DirectoryError> {
    if resp.is_success() || (tolerate_404 && resp.status == 404) {
        return Ok(());
    }
    if let Some(e) = resp.odata_error()
        && let Some(reason) = std::iter::once(e.error.code.as_str())
            .chain(e.error.details.iter().map(|d| d.code.as_str()))
            .find_map(RefusalReason::parse)
            .filter(|r| *r == RefusalReason::SignUpProviderUnavailable)
    {
        return Err(DirectoryError::Refused(Refusal { reason, message: e.error.message.clone() }));
    }
    Err(resp.error())
}
