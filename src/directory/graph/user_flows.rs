//! B2X user flows (R17) over Graph (graph-contract 1.8): `/identity/b2xUserFlows` (list, create, get,
//! delete; identity providers inline as `userFlowIdentityProviders`).
//!
//! What entente's Graph contract has no endpoint for fails with `DirectoryError::NotImplemented` naming it:
//! changing an existing flow, a flow's `userAttributeAssignments`, its applications and its API connectors.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::http::Call;
use super::identity::{Provider, checked};
use super::limiter::Cost;
use crate::core::identity::*;
use crate::directory::DirectoryError;

pub(crate) const USER_FLOWS: &str = "/identity/b2xUserFlows";

pub(crate) const FLOW_UPDATE_NOT_IMPLEMENTED: &str = "changing an existing user flow \
     (/identity/b2xUserFlows/{id}/userFlowIdentityProviders/$ref; there is no PATCH) is not in entente's Graph contract";
pub(crate) const ATTRIBUTES_NOT_IMPLEMENTED: &str =
    "a user flow's attributes (/identity/b2xUserFlows/{id}/userAttributeAssignments) are not in entente's Graph contract";
pub(crate) const APPLICATIONS_NOT_IMPLEMENTED: &str = "the applications of a user flow \
     (/identity/authenticationEventsFlows/{id}/conditions/applications) are not in entente's Graph contract";
pub(crate) const CONNECTORS_NOT_IMPLEMENTED: &str = "API connectors (/identity/apiConnectors and a flow's \
     apiConnectorConfiguration/postFederationSignup, postAttributeCollection) are not in entente's Graph contract";

/// What this backend cannot write of a flow, for the plan's notes.
pub(super) fn unsupported() -> impl Iterator<Item = (String, String)> {
    [
        ("signUpFlow.userAttributes", ATTRIBUTES_NOT_IMPLEMENTED),
        ("signUpFlow.applications", APPLICATIONS_NOT_IMPLEMENTED),
        ("signUpFlow.apiConnectors", CONNECTORS_NOT_IMPLEMENTED),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flow {
    id: String,
    #[serde(default)]
    user_flow_identity_providers: Vec<Provider>,
}

impl GraphDirectory {
    /// The tenant's B2X user flows, their providers named by `keys` (provider id → entente key).
    pub(super) async fn read_flows(&self, keys: &BTreeMap<String, String>) -> Result<Vec<SignUpFlowConfig>, DirectoryError> {
        let flows: Vec<Flow> = self.pages(USER_FLOWS, &[("$expand", "userFlowIdentityProviders")]).await?;
        Ok(flows
            .into_iter()
            .map(|f| SignUpFlowConfig {
                identity_providers: f
                    .user_flow_identity_providers
                    .iter()
                    .map(|p| match p.id.as_str() {
                        BUILT_IN_EMAIL_ID => BUILT_IN_EMAIL.to_string(),
                        id => keys.get(id).cloned().unwrap_or_else(|| id.to_string()),
                    })
                    .collect(),
                id: f.id,
                ..SignUpFlowConfig::default()
            })
            .collect())
    }

    pub(super) async fn delete_flow(&self, id: &str) -> Result<(), DirectoryError> {
        let url = self.url(&format!("{USER_FLOWS}/{id}"), &[])?;
        let resp = self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?;
        if !(resp.is_success() || resp.status == 404) {
            return Err(resp.error());
        }
        Ok(())
    }

    pub(super) async fn put_flow(&self, f: &SignUpFlowConfig, exists: bool) -> Result<(), DirectoryError> {
        if !f.user_attributes.is_empty() {
            return Err(DirectoryError::NotImplemented(ATTRIBUTES_NOT_IMPLEMENTED.into()));
        }
        if !f.applications.is_empty() {
            return Err(DirectoryError::NotImplemented(APPLICATIONS_NOT_IMPLEMENTED.into()));
        }
        if !f.api_connectors.is_empty() {
            return Err(DirectoryError::NotImplemented(CONNECTORS_NOT_IMPLEMENTED.into()));
        }
        if exists {
            return Err(DirectoryError::NotImplemented(FLOW_UPDATE_NOT_IMPLEMENTED.into()));
        }
        let state = self.read_identity().await?;
        let mut ids = Vec::new();
        for key in &f.identity_providers {
            let id = if key == BUILT_IN_EMAIL {
                BUILT_IN_EMAIL_ID.to_string()
            } else {
                provider_usable(&state, &self.tenant_id, key).map_err(DirectoryError::Refused)?;
                state.providers.iter().find(|p| &p.key == key).map(|p| p.id.clone()).unwrap_or_default()
            };
            ids.push(json!({ "id": id }));
        }
        let name = f.id.strip_prefix("B2X_1_").unwrap_or(&f.id);
        let body: Value = json!({
            "id": name,
            "userFlowType": "signUpOrSignIn",
            "userFlowTypeVersion": 1,
            "userFlowIdentityProviders": ids,
        });
        let url = self.url(USER_FLOWS, &[])?;
        let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body)).await?;
        // 409: created by an earlier attempt whose answer was lost (the id is the natural key).
        if resp.status == 409 {
            return Ok(());
        }
        checked(&resp, false)
    }
}
