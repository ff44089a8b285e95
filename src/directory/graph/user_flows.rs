//! B2X user flows (R17) over Graph v1.0 (graph-contract 1.8 and entente's contract extension
//! `emulator/contract/user_flows.yaml`):
//! - `/identity/b2xUserFlows`: list (with `$expand=userFlowIdentityProviders`), create, delete;
//! - a flow's identity providers: `userFlowIdentityProviders` (list), `…/$ref` (POST, add),
//!   `…/{id}/$ref` (DELETE, remove);
//! - the attributes it collects: `userAttributeAssignments` (list, POST, DELETE `{id}`), built-in attributes
//!   only (`/identity/userFlowAttributes`, the ones `SIGN_UP_ATTRIBUTES` names);
//! - the API connectors it calls: `/identity/apiConnectors` (list, create, patch), and the flow's
//!   `apiConnectorConfiguration/{postFederationSignup | postAttributeCollection}` (GET, `$ref` PUT and DELETE).
//!
//! The snapshot reads every flow's attributes and connector steps in `$batch`es, so drift in any of them
//! shows in the plan. `PutSignUpFlow { exists: true }` reconciles the flow: it diffs providers (added before
//! any is removed, so a flow never offers none), attributes and connector steps, and changes only those.
//! Graph never returns a connector's password or certificate, so reconciling a flow that calls connectors
//! re-sends their authentication (one PATCH each): a rotated secret (which the plan sees from its marker)
//! reaches Graph, and an unchanged one is written again unchanged. Connectors are found by display name
//! (the manifests' natural key for them); one a step stops calling is unlinked, not deleted.
//!
//! What Graph v1.0 has no API for fails with `DirectoryError::NotImplemented` naming it, and the snapshot
//! lists it in `unsupported` so the plan says so: the applications that use a flow (beta only).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::batch::{self, SubRequest};
use super::http::Call;
use super::identity::{Provider, checked};
use super::limiter::Cost;
use crate::core::identity::*;
use crate::directory::DirectoryError;

pub(crate) const USER_FLOWS: &str = "/identity/b2xUserFlows";
pub(crate) const API_CONNECTORS: &str = "/identity/apiConnectors";

pub(crate) const APPLICATIONS_NOT_IMPLEMENTED: &str = "associating applications with a B2X user flow is only in \
     Graph beta: POST /beta/identity/authenticationEventListeners (an invokeUserFlowListener naming the flow in \
     userFlow and the apps in conditions.applications.includeApplications); Graph v1.0 has no such API (v1.0's \
     /identity/authenticationEventsFlows/{id}/conditions/applications/includeApplications is for \
     externalUsersSelfServiceSignUpEventsFlow, not b2xIdentityUserFlow)";

/// The connector steps Graph v1.0 has a slot for (`userFlowApiConnectorConfiguration`), in the order a
/// sign-up runs them. Every `ConnectorStep` has one.
const STEPS: [ConnectorStep; 2] = [ConnectorStep::PostFederationSignup, ConnectorStep::PostAttributeCollection];

/// What this backend cannot write of a flow, for the plan's notes.
pub(super) fn unsupported() -> impl Iterator<Item = (String, String)> {
    [("signUpFlow.applications", APPLICATIONS_NOT_IMPLEMENTED)].into_iter().map(|(k, v)| (k.to_string(), v.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flow {
    id: String,
    #[serde(default)]
    user_flow_identity_providers: Vec<Provider>,
}

#[derive(Debug, Deserialize)]
struct Assignment {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Assignments {
    #[serde(default)]
    value: Vec<Assignment>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connector {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    authentication_configuration: Option<Value>,
}

impl Connector {
    fn observed(&self, step: ConnectorStep) -> ApiConnectorConfig {
        let auth = self.authentication_configuration.as_ref();
        let kind = auth.and_then(|a| a.get("@odata.type")).and_then(Value::as_str).unwrap_or_default();
        let basic = kind.ends_with("basicAuthentication");
        ApiConnectorConfig {
            step,
            display_name: self.display_name.clone().unwrap_or_default(),
            target_url: self.target_url.clone().unwrap_or_default(),
            authentication: if basic { "basic" } else { "certificate" }.into(),
            username: if basic { auth.and_then(|a| a.get("username")).and_then(Value::as_str).map(str::to_string) } else { None },
            // Never readable: the plan compares the marker it last applied.
            secret_hash: String::new(),
            secret: None,
        }
    }
}

/// What Graph holds of one flow beyond its providers.
#[derive(Debug, Default)]
struct FlowDetails {
    attributes: BTreeSet<String>,
    /// Step → the connector it calls.
    steps: BTreeMap<ConnectorStep, Connector>,
}

fn step_path(flow: &str, step: ConnectorStep) -> String {
    format!("{USER_FLOWS}/{flow}/apiConnectorConfiguration/{}", step.as_str())
}

impl GraphDirectory {
    /// `{v1 root}{path}`, as `@odata.id` names an object.
    fn odata_id(&self, path: &str) -> String {
        format!("{}{path}", self.v1.as_str().trim_end_matches('/'))
    }

    /// The tenant's B2X user flows, their providers named by `keys` (provider id → entente key), with the
    /// attributes they collect and the connectors they call.
    pub(super) async fn read_flows(&self, keys: &BTreeMap<String, String>) -> Result<Vec<SignUpFlowConfig>, DirectoryError> {
        let flows: Vec<Flow> = self.pages(USER_FLOWS, &[("$expand", "userFlowIdentityProviders")]).await?;
        let ids: Vec<String> = flows.iter().map(|f| f.id.clone()).collect();
        let mut details = self.flow_details(&ids).await?;
        Ok(flows
            .into_iter()
            .map(|f| {
                let d = details.remove(&f.id).unwrap_or_default();
                SignUpFlowConfig {
                    identity_providers: f
                        .user_flow_identity_providers
                        .iter()
                        .map(|p| match p.id.as_str() {
                            BUILT_IN_EMAIL_ID => BUILT_IN_EMAIL.to_string(),
                            id => keys.get(id).cloned().unwrap_or_else(|| id.to_string()),
                        })
                        .collect(),
                    user_attributes: d.attributes,
                    api_connectors: d.steps.iter().map(|(step, c)| c.observed(*step)).collect(),
                    id: f.id,
                    ..SignUpFlowConfig::default()
                }
            })
            .collect())
    }

    /// Each flow's attribute assignments and connector steps, three GETs per flow in `$batch`es. Only the
    /// built-in attributes entente manages are kept (custom attributes are not entente's).
    async fn flow_details(&self, flows: &[String]) -> Result<BTreeMap<String, FlowDetails>, DirectoryError> {
        let mut reqs = Vec::new();
        for f in flows {
            reqs.push(SubRequest::new(Method::GET, format!("{USER_FLOWS}/{f}/userAttributeAssignments")));
            for step in STEPS {
                reqs.push(SubRequest::new(Method::GET, step_path(f, step)));
            }
        }
        let mut out: BTreeMap<String, FlowDetails> = BTreeMap::new();
        if reqs.is_empty() {
            return Ok(out);
        }
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        let per_flow = 1 + STEPS.len();
        for (i, (req, answer)) in reqs.iter().zip(answers).enumerate() {
            let flow = &flows[i / per_flow];
            let d = out.entry(flow.clone()).or_default();
            let body = answer.body.clone().unwrap_or(Value::Null);
            match (i % per_flow, answer.status) {
                (0, 200) => {
                    let a: Assignments = serde_json::from_value(body)
                        .map_err(|e| DirectoryError::Invalid(format!("attribute assignments of user flow {flow}: {e}")))?;
                    d.attributes = a
                        .value
                        .into_iter()
                        .filter_map(|a| SIGN_UP_ATTRIBUTES.iter().find(|b| b.eq_ignore_ascii_case(&a.id)).map(|b| b.to_string()))
                        .collect();
                }
                (n, 200) => {
                    let c: Connector = serde_json::from_value(body)
                        .map_err(|e| DirectoryError::Invalid(format!("API connector of user flow {flow}: {e}")))?;
                    d.steps.insert(STEPS[n - 1], c);
                }
                // A step calling no connector.
                (n, 404) if n > 0 => {}
                _ => return Err(DirectoryError::Graph(Box::new(answer.failure(req)))),
            }
        }
        Ok(out)
    }

    pub(super) async fn delete_flow(&self, id: &str) -> Result<(), DirectoryError> {
        let url = self.url(&format!("{USER_FLOWS}/{id}"), &[])?;
        let resp = self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?;
        if !(resp.is_success() || resp.status == 404) {
            return Err(resp.error());
        }
        Ok(())
    }

    /// Creates the flow (`exists: false`) or reconciles it (`exists: true`): providers, attributes and
    /// connector steps are diffed against what Graph holds and only what differs is written.
    pub(super) async fn put_flow(&self, f: &SignUpFlowConfig, exists: bool) -> Result<(), DirectoryError> {
        if !f.applications.is_empty() {
            return Err(DirectoryError::NotImplemented(APPLICATIONS_NOT_IMPLEMENTED.into()));
        }
        for c in &f.api_connectors {
            if c.secret.is_none() {
                return Err(DirectoryError::Invalid(format!(
                    "the API connector of step {} of user flow {} is written without its secret",
                    c.step.as_str(),
                    f.id
                )));
            }
        }
        let state = self.read_identity().await?;
        let mut provider_ids = BTreeSet::new();
        for key in &f.identity_providers {
            let id = if key == BUILT_IN_EMAIL {
                BUILT_IN_EMAIL_ID.to_string()
            } else {
                provider_usable(&state, &self.tenant_id, key).map_err(DirectoryError::Refused)?;
                state.providers.iter().find(|p| &p.key == key).map(|p| p.id.clone()).unwrap_or_default()
            };
            provider_ids.insert(id);
        }
        let current = state.flows.iter().find(|o| o.id.eq_ignore_ascii_case(&f.id));
        if !exists && current.is_none() {
            self.create_flow(f, &provider_ids).await?;
        } else {
            self.reconcile_providers(&f.id, &provider_ids).await?;
        }
        let current = current.cloned().unwrap_or_default();
        self.reconcile_attributes(&f.id, &current.user_attributes, &f.user_attributes).await?;
        self.reconcile_connectors(&f.id, &f.api_connectors).await
    }

    async fn create_flow(&self, f: &SignUpFlowConfig, provider_ids: &BTreeSet<String>) -> Result<(), DirectoryError> {
        let name = f.id.strip_prefix("B2X_1_").unwrap_or(&f.id);
        let ids: Vec<Value> = provider_ids.iter().map(|id| json!({ "id": id })).collect();
        let body: Value = json!({
            "id": name,
            "userFlowType": "signUpOrSignIn",
            "userFlowTypeVersion": 1,
            "userFlowIdentityProviders": ids,
        });
        let url = self.url(USER_FLOWS, &[])?;
        let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body)).await?;
        // 409: created by an earlier attempt whose answer was lost (the id is the natural key): reconcile it.
        if resp.status == 409 {
            return self.reconcile_providers(&f.id, provider_ids).await;
        }
        checked(&resp, false)
    }

    /// Adds the providers the flow lacks, then removes those it should not offer.
    async fn reconcile_providers(&self, flow: &str, desired: &BTreeSet<String>) -> Result<(), DirectoryError> {
        let listed: Vec<Provider> = self.pages(&format!("{USER_FLOWS}/{flow}/userFlowIdentityProviders"), &[]).await?;
        let current: BTreeSet<String> = listed.into_iter().map(|p| p.id).collect();
        for id in desired.difference(&current) {
            let url = self.url(&format!("{USER_FLOWS}/{flow}/userFlowIdentityProviders/$ref"), &[])?;
            let body = json!({ "@odata.id": self.odata_id(&format!("/identity/identityProviders/{id}")) });
            let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body).idempotent()).await?;
            // 409: added by an earlier attempt whose answer was lost.
            if resp.status != 409 {
                checked(&resp, false)?;
            }
        }
        for id in current.difference(desired) {
            let url = self.url(&format!("{USER_FLOWS}/{flow}/userFlowIdentityProviders/{id}/$ref"), &[])?;
            checked(&self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?, true)?;
        }
        Ok(())
    }

    async fn reconcile_attributes(
        &self,
        flow: &str,
        current: &BTreeSet<String>,
        desired: &BTreeSet<String>,
    ) -> Result<(), DirectoryError> {
        for a in desired.difference(current) {
            let url = self.url(&format!("{USER_FLOWS}/{flow}/userAttributeAssignments"), &[])?;
            let body = json!({
                "isOptional": false,
                "requiresVerification": false,
                "userInputType": if a == "email" { "emailBox" } else { "textBox" },
                "userAttributeValues": [],
                "userAttribute": { "id": a },
            });
            // The attribute is the assignment's natural key: resending is safe, and 409 means it is there.
            let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body).idempotent()).await?;
            if resp.status != 409 {
                checked(&resp, false)?;
            }
        }
        for a in current.difference(desired) {
            let url = self.url(&format!("{USER_FLOWS}/{flow}/userAttributeAssignments/{a}"), &[])?;
            checked(&self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?, true)?;
        }
        Ok(())
    }

    /// Each step: the desired connector (found by display name, else created) brought in line and linked,
    /// or the step cleared.
    async fn reconcile_connectors(&self, flow: &str, desired: &[ApiConnectorConfig]) -> Result<(), DirectoryError> {
        let details = self.flow_details(&[flow.to_string()]).await?.remove(flow).unwrap_or_default();
        let mut all: Option<Vec<Connector>> = None;
        for step in STEPS {
            let linked = details.steps.get(&step);
            match desired.iter().find(|c| c.step == step) {
                None => {
                    if linked.is_some() {
                        let url = self.url(&format!("{}/$ref", step_path(flow, step)), &[])?;
                        checked(&self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?, true)?;
                    }
                }
                Some(c) => {
                    let body = connector_body(c)?;
                    let found = match linked.filter(|l| l.display_name.as_deref() == Some(c.display_name.as_str())) {
                        Some(l) => Some(l.id.clone()),
                        None => {
                            if all.is_none() {
                                all = Some(self.pages(API_CONNECTORS, &[]).await?);
                            }
                            by_name(all.as_deref().unwrap_or_default(), &c.display_name)
                        }
                    };
                    let id = match found {
                        Some(id) => {
                            let url = self.url(&format!("{API_CONNECTORS}/{id}"), &[])?;
                            self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?.ok()?;
                            id
                        }
                        None => self.create_connector(&c.display_name, body).await?,
                    };
                    if linked.map(|l| l.id.as_str()) != Some(id.as_str()) {
                        let url = self.url(&format!("{}/$ref", step_path(flow, step)), &[])?;
                        let body = json!({ "@odata.id": self.odata_id(&format!("{API_CONNECTORS}/{id}")) });
                        checked(
                            &self.http.send(&Call::new(Method::PUT, url, Cost::Write).json(body).idempotent()).await?,
                            false,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `POST /identity/apiConnectors`; when the answer is lost, the connector is looked up by display name
    /// and adopted rather than created twice.
    async fn create_connector(&self, display_name: &str, body: Value) -> Result<String, DirectoryError> {
        let url = self.url(API_CONNECTORS, &[])?;
        let unknown = match self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body)).await {
            Ok(resp) if resp.is_success() => {
                let c: Connector = resp.json()?;
                return Ok(c.id);
            }
            Ok(resp) if resp.status < 500 => return Err(resp.error()),
            Ok(resp) => resp.error(),
            Err(e @ DirectoryError::Transport(_)) => e,
            Err(e) => return Err(e),
        };
        let all: Vec<Connector> = self.pages(API_CONNECTORS, &[]).await?;
        by_name(&all, display_name).ok_or(unknown)
    }
}

fn by_name(all: &[Connector], display_name: &str) -> Option<String> {
    all.iter().find(|c| c.display_name.as_deref() == Some(display_name)).map(|c| c.id.clone())
}

/// The connector as Graph takes it, with its secret (sent, never logged or kept).
fn connector_body(c: &ApiConnectorConfig) -> Result<Value, DirectoryError> {
    let secret = c.secret.as_ref().map(|s| s.0.expose()).ok_or_else(|| {
        DirectoryError::Invalid(format!("the API connector of step {} is written without its secret", c.step.as_str()))
    })?;
    let auth = match c.authentication.as_str() {
        "basic" => json!({
            "@odata.type": "#microsoft.graph.basicAuthentication",
            "username": c.username.clone().unwrap_or_default(),
            "password": secret,
        }),
        // The manifests hold the PKCS#12 file (base64) only; a file without a password is sent with "".
        _ => json!({ "@odata.type": "#microsoft.graph.pkcs12Certificate", "pkcs12Value": secret, "password": "" }),
    };
    Ok(json!({ "displayName": c.display_name, "targetUrl": c.target_url, "authenticationConfiguration": auth }))
}
