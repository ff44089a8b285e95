//! Identity providers (R17) over Graph (graph-contract 1.8): `/identity/identityProviders`
//! (polymorphic over `identityProviderBase`: social, built-in, SAML/WS-Fed federation). User flows are
//! `user_flows.rs`; this file reads both into one `IdentityState`.
//!
//! What entente's Graph contract (the reference OpenAPI subset) has no endpoint or property for fails with
//! `DirectoryError::NotImplemented` naming it, and the snapshot lists it in `unsupported` so the plan says so:
//! a provider's on/off state (the authentication methods policy), enabling email one-time passcode, a
//! federation's `domains`, changing an existing flow (no PATCH, no `userFlowIdentityProviders/$ref`), a flow's
//! `userAttributeAssignments`, its applications and its API connectors (`/identity/apiConnectors`).

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

pub(crate) const STATE_NOT_IMPLEMENTED: &str = "an identity provider's enabled/disabled state (and enabling email one-time \
     passcode) is /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email, which is not in \
     entente's Graph contract";
pub(crate) const DOMAINS_NOT_IMPLEMENTED: &str = "the domains of a SAML/WS-Fed federation \
     (samlOrWsFedExternalDomainFederation/domains) are not in entente's Graph contract";

/// What this backend cannot read or write, for the plan's notes.
pub(super) fn unsupported() -> Unsupported {
    [("identityProvider.state", STATE_NOT_IMPLEMENTED)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
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

/// A Graph provider as entente sees it; `None` for the kinds entente does not manage (Apple, OIDC,
/// internal federation, built-in email with password…).
fn observed(p: &Provider) -> Option<ObservedIdentityProvider> {
    let kind = p.odata_type.as_deref().unwrap_or_default().trim_start_matches("#microsoft.graph.");
    let t = match (kind, p.identity_provider_type.as_deref()) {
        ("builtInIdentityProvider", Some("EmailOTP" | "EmailOneTimePasscode")) => IdentityProviderType::EmailOneTimePasscode,
        ("builtInIdentityProvider" | "socialIdentityProvider", Some("MicrosoftAccount")) => {
            IdentityProviderType::MicrosoftAccount
        }
        ("socialIdentityProvider", Some("Google")) => IdentityProviderType::Google,
        ("socialIdentityProvider", Some("Facebook")) => IdentityProviderType::Facebook,
        ("samlOrWsFedExternalDomainFederation", _) => IdentityProviderType::SamlWsFed,
        _ => return None,
    };
    let saml = (t == IdentityProviderType::SamlWsFed).then(|| SamlSettings {
        // Not readable in the contract: a federation read from Graph never matches one by domains.
        domains: BTreeSet::new(),
        issuer_uri: p.issuer_uri.clone().unwrap_or_default(),
        passive_sign_in_uri: p.passive_sign_in_uri.clone().unwrap_or_default(),
        metadata_exchange_uri: p.metadata_exchange_uri.clone(),
        preferred_authentication_protocol: match p.preferred_authentication_protocol.as_deref() {
            Some("wsFed") => AuthenticationProtocol::WsFed,
            _ => AuthenticationProtocol::Saml,
        },
        signing_certificate: p.signing_certificate.clone().unwrap_or_default(),
    });
    let key = match t {
        IdentityProviderType::SamlWsFed => format!("SamlWsFed:id:{}", p.id),
        _ => t.as_str().to_string(),
    };
    Some(ObservedIdentityProvider {
        id: p.id.clone(),
        key,
        provider_type: t,
        display_name: p.display_name.clone().unwrap_or_default(),
        client_id: p.client_id.clone(),
        client_secret_hash: None,
        saml,
        // Listed means usable: Graph has no disabled state for these in the contract.
        state: ProviderState::Enabled,
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
        let providers: Vec<ObservedIdentityProvider> = raw.iter().filter_map(observed).collect();
        let keys: BTreeMap<String, String> = providers.iter().map(|p| (p.id.clone(), p.key.clone())).collect();
        let flows = self.read_flows(&keys).await?;
        Ok(IdentityState { providers, flows })
    }

    pub(super) async fn apply_identity(&self, op: &Operation) -> Result<Outcome, DirectoryError> {
        match op {
            Operation::PutIdentityProvider { provider, existing_id } => {
                self.put_provider(provider, existing_id.as_deref()).await?
            }
            Operation::DeleteIdentityProvider { id, key } => {
                if BUILT_IN_KEYS.contains(&key.as_str())
                    && id == IdentityProviderType::EmailOneTimePasscode.graph_id().unwrap_or("")
                {
                    return Err(DirectoryError::NotImplemented(STATE_NOT_IMPLEMENTED.into()));
                }
                let url = self.url(&format!("{PROVIDERS}/{id}"), &[])?;
                checked(&self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?, true)?;
            }
            Operation::PutSignUpFlow { flow, exists } => self.put_flow(flow, *exists).await?,
            Operation::DeleteSignUpFlow { id } => self.delete_flow(id).await?,
            _ => return Err(DirectoryError::Invalid(format!("{} is not an identity operation", op.name()))),
        }
        Ok(Outcome::Done)
    }

    async fn put_provider(&self, p: &IdentityProviderConfig, existing_id: Option<&str>) -> Result<(), DirectoryError> {
        if p.state == ProviderState::Disabled {
            return Err(DirectoryError::NotImplemented(STATE_NOT_IMPLEMENTED.into()));
        }
        let mut body = json!({ "displayName": p.display_name });
        match p.provider_type {
            IdentityProviderType::EmailOneTimePasscode => {
                // Built in: it is there (listed) or it is switched off in a policy outside the contract.
                return match existing_id {
                    Some(_) => Ok(()),
                    None => Err(DirectoryError::NotImplemented(STATE_NOT_IMPLEMENTED.into())),
                };
            }
            IdentityProviderType::SamlWsFed => return Err(DirectoryError::NotImplemented(DOMAINS_NOT_IMPLEMENTED.into())),
            t => {
                body["@odata.type"] = json!("#microsoft.graph.socialIdentityProvider");
                body["identityProviderType"] = json!(t.as_str());
                body["clientId"] = json!(p.client_id);
                if let Some(s) = &p.client_secret {
                    body["clientSecret"] = json!(s.expose());
                }
            }
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

const BUILT_IN_KEYS: &[&str] = &["EmailOneTimePasscode"];
