//! `/identity/b2xUserFlows` (graph-contract 1.8) over the local directory's identity tables (R17):
//! flows are listed, created (`B2X_1_` prefix, `Location`), read and deleted, with
//! `userFlowIdentityProviders` inline on create (without any, the built-in email sign-up, as Graph's
//! "default values" example creates a flow) and with `$expand`. Writes go through the directory's
//! operations, so a flow offering a missing or disabled provider is refused (`SignUpProviderUnavailable`).
//!
//! Also what entente's contract extension (`contract/user_flows.yaml`) adds from Graph v1.0: a flow's
//! `userFlowIdentityProviders` (list, add by `$ref`, remove by `{id}/$ref`), its `userAttributeAssignments`
//! (list, create, get, delete; the built-in attributes of `/identity/userFlowAttributes`), the tenant's
//! `/identity/apiConnectors` (list, create, get, patch, delete; passwords and certificates answered masked
//! and kept only as salted hashes) and a flow's `apiConnectorConfiguration/{postFederationSignup,
//! postAttributeCollection}` (get, `$ref` put and delete). Each change is a `PutSignUpFlow` of the whole flow,
//! so the directory's rules hold; what the directory does not model (a connector's id, an assignment's
//! display name and input type, which connector a step links) is the emulator's own ("extras"), written in
//! the same transaction.

use serde_json::{Value, json};

use rusqlite::Connection;
use serde_json::Map;

use super::errors::GraphError;
use super::identity::{BUILT_IN, apply, not_found, provider_json, state, string};
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::store;
use crate::core::identity::*;
use crate::core::operation::Operation;
use crate::directory::DirectoryError;

fn flow_json(f: &SignUpFlowConfig, s: &IdentityState, expand: bool) -> Value {
    let mut v = json!({ "id": f.id, "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1 });
    if expand {
        let providers: Vec<Value> = f
            .identity_providers
            .iter()
            .filter_map(|key| {
                if key == BUILT_IN_EMAIL {
                    return Some(json!({ "@odata.type": BUILT_IN, "id": BUILT_IN_EMAIL_ID, "displayName": "Email with password",
                        "identityProviderType": "EmailPassword" }));
                }
                s.providers.iter().find(|p| &p.key == key).map(provider_json)
            })
            .collect();
        v["userFlowIdentityProviders"] = json!(providers);
    }
    v
}

fn expands(req: &GraphRequest) -> bool {
    req.param("expand").is_some_and(|e| e.split(',').any(|x| x.trim() == "userFlowIdentityProviders"))
}

pub(crate) async fn list_flows(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let expand = expands(req);
    let value: Vec<Value> = s.flows.iter().map(|f| flow_json(f, &s, expand)).collect();
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "identity/b2xUserFlows"), "value": value })))
}

pub(crate) async fn get_flow(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let f = s.flows.iter().find(|f| f.id.eq_ignore_ascii_case(id)).ok_or_else(|| not_found("b2xIdentityUserFlow", id))?;
    let mut body = flow_json(f, &s, expands(req));
    body["@odata.context"] = json!(ctx.context(req.version, "identity/b2xUserFlows/$entity"));
    Ok(GraphResponse::ok(body))
}

pub(crate) async fn create_flow(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let name = string(body, "id")?.ok_or_else(|| GraphError::bad_request("id is required."))?;
    match string(body, "userFlowType")?.as_deref() {
        Some("signUpOrSignIn" | "signUp") => {}
        other => {
            return Err(GraphError::bad_request(format!(
                "userFlowType {:?} is not supported for B2X user flows; use signUpOrSignIn.",
                other.unwrap_or_default()
            )));
        }
    }
    for key in ["apiConnectorConfiguration", "identityProviders", "userAttributeAssignments", "languages"] {
        if body.get(key).is_some_and(|v| !v.is_null()) {
            return Err(GraphError::new(
                http::StatusCode::NOT_IMPLEMENTED,
                "notImplemented",
                format!(
                    "emulator: {key} is not accepted inline on create; set it on the created flow \
                     (userAttributeAssignments, apiConnectorConfiguration/{{step}}/$ref; identityProviders and \
                     languages are not served)"
                ),
            ));
        }
    }
    let s = state(ctx).await?;
    let mut keys = std::collections::BTreeSet::new();
    for (i, p) in body.get("userFlowIdentityProviders").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
        let key = if id == BUILT_IN_EMAIL_ID {
            BUILT_IN_EMAIL.to_string()
        } else {
            s.providers.iter().find(|x| x.id == id).map(|x| x.key.clone()).ok_or_else(|| {
                GraphError::bad_request(format!("userFlowIdentityProviders[{i}]: identity provider '{id}' does not exist."))
            })?
        };
        keys.insert(key);
    }
    if keys.is_empty() {
        // b2xidentityuserflow-post, "Example 1: Create a user flow with the default values" (only id,
        // userFlowType and userFlowTypeVersion): the flow starts with the built-in local account sign-up,
        // and providers are added later through userFlowIdentityProviders/$ref.
        keys.insert(BUILT_IN_EMAIL.to_string());
    }
    let id = flow_id(&name);
    if s.flows.iter().any(|f| f.id.eq_ignore_ascii_case(&id)) {
        return Err(GraphError::conflict(format!("A user flow with id '{id}' already exists.")));
    }
    let flow = SignUpFlowConfig { id: id.clone(), identity_providers: keys, ..SignUpFlowConfig::default() };
    apply(ctx, Operation::PutSignUpFlow { flow, exists: false }).await?;
    let s = state(ctx).await?;
    let f = s.flows.iter().find(|f| f.id == id).ok_or_else(|| GraphError::internal("the user flow was not created"))?;
    let mut out = flow_json(f, &s, false);
    out["@odata.context"] = json!(ctx.context(req.version, "identity/b2xUserFlows/$entity"));
    let location = format!("{}/identity/b2xUserFlows('{id}')", ctx.context(req.version, "").trim_end_matches("/$metadata#"));
    let mut resp = GraphResponse::created(out);
    resp.headers.push(("Location".into(), location));
    Ok(resp)
}

pub(crate) async fn delete_flow(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let f = s.flows.iter().find(|f| f.id.eq_ignore_ascii_case(id)).ok_or_else(|| not_found("b2xIdentityUserFlow", id))?;
    // The flow's own extras go with it.
    let extras: Vec<(&'static str, String)> = STEPS
        .iter()
        .map(|s| (kind::STEP_LINK, step_key(&f.id, *s)))
        .chain(f.user_attributes.iter().map(|a| (kind::ASSIGNMENT, assignment_key(&f.id, a))))
        .collect();
    write(ctx, Operation::DeleteSignUpFlow { id: f.id.clone() }, move |c, tenant| {
        for (k, key) in &extras {
            store::delete_extras(c, tenant, k, key)?;
        }
        Ok(())
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// The emulator's own state for what the directory does not model.

mod kind {
    /// A tenant's API connector (`/identity/apiConnectors/{id}`), by id.
    pub const CONNECTOR: &str = "identityApiConnector";
    /// Which connector a flow's step calls, by `{flow}/{step}`: `{"connectorId": …}`.
    pub const STEP_LINK: &str = "userFlowApiConnectorStep";
    /// An attribute assignment's display name, input type and options, by `{flow}/{attribute}`.
    pub const ASSIGNMENT: &str = "userFlowAttributeAssignment";
}

/// The steps Graph v1.0 has a slot for, in the order a sign-up runs them.
const STEPS: [ConnectorStep; 2] = [ConnectorStep::PostFederationSignup, ConnectorStep::PostAttributeCollection];

const INPUT_TYPES: &[&str] =
    &["textBox", "dateTimeDropdown", "radioSingleSelect", "dropdownSingleSelect", "emailBox", "checkboxMultiSelect"];

fn step_key(flow: &str, step: ConnectorStep) -> String {
    format!("{flow}/{}", step.as_str())
}

fn assignment_key(flow: &str, attribute: &str) -> String {
    format!("{flow}/{attribute}")
}

pub(crate) fn parse_step(s: &str) -> Option<ConnectorStep> {
    STEPS.into_iter().find(|step| step.as_str().eq_ignore_ascii_case(s))
}

/// Applies `op` and then `then` (the emulator's extras) in one transaction.
async fn write(
    ctx: &Ctx,
    op: Operation,
    then: impl FnOnce(&Connection, &str) -> Result<(), DirectoryError> + Send + 'static,
) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |c, _| then(c, &tenant))).await
}

/// Only the emulator's extras, in one write transaction.
async fn write_extras(
    ctx: &Ctx,
    f: impl FnOnce(&Connection, &str) -> Result<(), DirectoryError> + Send + 'static,
) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.emulator_write(|c| f(c, &tenant))).await
}

async fn read_extras<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&Connection, &str) -> Result<T, DirectoryError> + Send + 'static,
) -> Result<T, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.emulator_read(|c| f(c, &tenant))).await
}

async fn find_flow(ctx: &Ctx, id: &str) -> Result<(IdentityState, SignUpFlowConfig), GraphError> {
    let s = state(ctx).await?;
    let f =
        s.flows.iter().find(|f| f.id.eq_ignore_ascii_case(id)).cloned().ok_or_else(|| not_found("b2xIdentityUserFlow", id))?;
    Ok((s, f))
}

/// `…/identity/identityProviders/{id}` or `…/identity/apiConnectors/{id}` from a `$ref` body: the id.
fn referenced(body: &Map<String, Value>, collection: &str) -> Result<String, GraphError> {
    let url = string(body, "@odata.id")?.ok_or_else(|| GraphError::bad_request("@odata.id is required."))?;
    let marker = format!("/identity/{collection}/");
    let id = url
        .find(&marker)
        .map(|i| &url[i + marker.len()..])
        .map(|rest| rest.trim_start_matches("('").trim_end_matches("')").trim_end_matches('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            GraphError::bad_request(format!("@odata.id {url:?} does not name an object of /identity/{collection}."))
        })?;
    Ok(id.to_string())
}

// ------------------------------------------------------------------------------------------------
// userFlowIdentityProviders

pub(crate) async fn list_flow_providers(ctx: &Ctx, req: &GraphRequest, flow: &str) -> Result<GraphResponse, GraphError> {
    let (s, f) = find_flow(ctx, flow).await?;
    let value = flow_json(&f, &s, true)["userFlowIdentityProviders"].clone();
    let what = format!("identity/b2xUserFlows('{}')/userFlowIdentityProviders", f.id);
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, &what), "value": value })))
}

pub(crate) async fn add_flow_provider(ctx: &Ctx, req: &GraphRequest, flow: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    if let Some(k) = body.keys().find(|k| k.as_str() != "@odata.id") {
        return Err(GraphError::bad_request(format!("{k} is not a property of a reference; send only @odata.id.")));
    }
    let id = referenced(body, "identityProviders")?;
    let (s, mut f) = find_flow(ctx, flow).await?;
    let key = if id.eq_ignore_ascii_case(BUILT_IN_EMAIL_ID) {
        BUILT_IN_EMAIL.to_string()
    } else {
        s.providers
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(&id))
            .map(|p| p.key.clone())
            .ok_or_else(|| GraphError::bad_request(format!("identity provider '{id}' does not exist.")))?
    };
    if !f.identity_providers.insert(key) {
        return Err(GraphError::conflict(format!("user flow {} already offers identity provider '{id}'.", f.id)));
    }
    apply(ctx, Operation::PutSignUpFlow { flow: f, exists: true }).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn remove_flow_provider(ctx: &Ctx, flow: &str, provider: &str) -> Result<GraphResponse, GraphError> {
    let (s, mut f) = find_flow(ctx, flow).await?;
    let key = if provider.eq_ignore_ascii_case(BUILT_IN_EMAIL_ID) {
        Some(BUILT_IN_EMAIL.to_string())
    } else {
        s.providers.iter().find(|p| p.id.eq_ignore_ascii_case(provider)).map(|p| p.key.clone())
    };
    if !key.is_some_and(|k| f.identity_providers.remove(&k)) {
        return Err(not_found("identityProviderBase", provider));
    }
    apply(ctx, Operation::PutSignUpFlow { flow: f, exists: true }).await?;
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// userFlowAttributes and userAttributeAssignments

fn attribute_name(id: &str) -> &'static str {
    match id {
        "city" => "City",
        "country" => "Country/Region",
        "displayName" => "Display Name",
        "givenName" => "Given Name",
        "surname" => "Surname",
        "jobTitle" => "Job Title",
        "postalCode" => "Postal Code",
        "state" => "State/Province",
        "streetAddress" => "Street Address",
        "email" => "Email Address",
        _ => "",
    }
}

fn attribute_json(id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.identityBuiltInUserFlowAttribute",
        "id": id,
        "displayName": attribute_name(id),
        "description": format!("The user's {}.", attribute_name(id).to_lowercase()),
        "userFlowAttributeType": "builtIn",
        "dataType": "string",
    })
}

pub(crate) async fn list_attributes(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let value: Vec<Value> = SIGN_UP_ATTRIBUTES.iter().map(|a| attribute_json(a)).collect();
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "identity/userFlowAttributes"), "value": value })))
}

fn assignment_json(attribute: &str, extras: &Map<String, Value>) -> Value {
    let default_input = if attribute == "email" { "emailBox" } else { "textBox" };
    json!({
        "id": attribute,
        "displayName": extras.get("displayName").cloned().unwrap_or_else(|| json!(attribute_name(attribute))),
        "isOptional": extras.get("isOptional").cloned().unwrap_or(json!(false)),
        "requiresVerification": extras.get("requiresVerification").cloned().unwrap_or(json!(false)),
        "userInputType": extras.get("userInputType").cloned().unwrap_or_else(|| json!(default_input)),
        "userAttributeValues": extras.get("userAttributeValues").cloned().unwrap_or_else(|| json!([])),
    })
}

pub(crate) async fn list_assignments(ctx: &Ctx, req: &GraphRequest, flow: &str) -> Result<GraphResponse, GraphError> {
    let (_, f) = find_flow(ctx, flow).await?;
    let keys: Vec<(String, String)> = f.user_attributes.iter().map(|a| (a.clone(), assignment_key(&f.id, a))).collect();
    let value = read_extras(ctx, move |c, tenant| {
        keys.iter()
            .map(|(a, key)| Ok(assignment_json(a, &store::extras(c, tenant, kind::ASSIGNMENT, key)?)))
            .collect::<Result<Vec<Value>, DirectoryError>>()
    })
    .await?;
    let what = format!("identity/b2xUserFlows('{}')/userAttributeAssignments", f.id);
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, &what), "value": value })))
}

pub(crate) async fn get_assignment(ctx: &Ctx, req: &GraphRequest, flow: &str, id: &str) -> Result<GraphResponse, GraphError> {
    let (_, f) = find_flow(ctx, flow).await?;
    let a = f.user_attributes.iter().find(|a| a.eq_ignore_ascii_case(id)).cloned();
    let a = a.ok_or_else(|| not_found("identityUserFlowAttributeAssignment", id))?;
    let key = assignment_key(&f.id, &a);
    let extras = read_extras(ctx, move |c, tenant| store::extras(c, tenant, kind::ASSIGNMENT, &key)).await?;
    let mut body = assignment_json(&a, &extras);
    let what = format!("identity/b2xUserFlows('{}')/userAttributeAssignments/$entity", f.id);
    body["@odata.context"] = json!(ctx.context(req.version, &what));
    Ok(GraphResponse::ok(body))
}

/// An optional property of a given JSON type, or a 400 naming it.
fn typed<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    ok: fn(&Value) -> bool,
    what: &str,
) -> Result<Option<&'a Value>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) if ok(v) => Ok(Some(v)),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be {what}."))),
    }
}

pub(crate) async fn create_assignment(ctx: &Ctx, req: &GraphRequest, flow: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let attribute = body
        .get("userAttribute")
        .and_then(Value::as_object)
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| GraphError::bad_request("userAttribute with its id is required."))?;
    let Some(attribute) = SIGN_UP_ATTRIBUTES.iter().find(|a| a.eq_ignore_ascii_case(&attribute)).map(|a| a.to_string()) else {
        return Err(GraphError::bad_request(format!(
            "The user flow attribute '{attribute}' does not exist (emulator: the built-in attributes of \
             /identity/userFlowAttributes are served, custom ones are not)."
        )));
    };
    let mut extras = Map::new();
    if let Some(v) = typed(body, "displayName", Value::is_string, "a string")? {
        extras.insert("displayName".into(), v.clone());
    }
    for name in ["isOptional", "requiresVerification"] {
        if let Some(v) = typed(body, name, Value::is_boolean, "a boolean")? {
            extras.insert(name.into(), v.clone());
        }
    }
    if let Some(v) = typed(body, "userInputType", Value::is_string, "a string")? {
        let t = v.as_str().unwrap_or_default();
        if !INPUT_TYPES.contains(&t) {
            return Err(GraphError::bad_request(format!(
                "userInputType {t:?} is not an identityUserFlowAttributeInputType ({}).",
                INPUT_TYPES.join(", ")
            )));
        }
        extras.insert("userInputType".into(), v.clone());
    }
    if let Some(v) = typed(body, "userAttributeValues", Value::is_array, "an array")? {
        extras.insert("userAttributeValues".into(), v.clone());
    }
    let (_, mut f) = find_flow(ctx, flow).await?;
    if !f.user_attributes.insert(attribute.clone()) {
        return Err(GraphError::conflict(format!("user flow {} already collects '{attribute}'.", f.id)));
    }
    let flow_id = f.id.clone();
    let key = assignment_key(&flow_id, &attribute);
    let stored = extras.clone();
    write(ctx, Operation::PutSignUpFlow { flow: f, exists: true }, move |c, tenant| {
        store::put_extras(c, tenant, kind::ASSIGNMENT, &key, &stored)
    })
    .await?;
    let mut out = assignment_json(&attribute, &extras);
    let what = format!("identity/b2xUserFlows('{flow_id}')/userAttributeAssignments/$entity");
    out["@odata.context"] = json!(ctx.context(req.version, &what));
    let mut resp = GraphResponse::created(out);
    resp.headers.push((
        "Location".into(),
        ctx.url(req.version, &format!("/identity/b2xUserFlows/{flow_id}/userAttributeAssignments/{attribute}")),
    ));
    Ok(resp)
}

pub(crate) async fn delete_assignment(ctx: &Ctx, flow: &str, id: &str) -> Result<GraphResponse, GraphError> {
    let (_, mut f) = find_flow(ctx, flow).await?;
    let a = f.user_attributes.iter().find(|a| a.eq_ignore_ascii_case(id)).cloned();
    let a = a.ok_or_else(|| not_found("identityUserFlowAttributeAssignment", id))?;
    f.user_attributes.remove(&a);
    let key = assignment_key(&f.id, &a);
    write(ctx, Operation::PutSignUpFlow { flow: f, exists: true }, move |c, tenant| {
        store::delete_extras(c, tenant, kind::ASSIGNMENT, &key)
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// API connectors

/// A connector as the emulator keeps it (extras): never the secret, only its salted hash.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connector {
    id: String,
    display_name: String,
    target_url: String,
    /// `basic` or `certificate`, as `ApiConnectorConfig::authentication`.
    authentication: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    secret_hash: String,
}

impl Connector {
    fn json(&self) -> Value {
        let auth = match self.authentication.as_str() {
            "certificate" => json!({
                "@odata.type": "#microsoft.graph.clientCertificateAuthentication",
                "certificateList": [{
                    "thumbprint": self.secret_hash.to_uppercase(),
                    "notBefore": 1_700_000_000i64,
                    "notAfter": 1_900_000_000i64,
                    "isActive": true,
                }],
            }),
            _ => json!({
                "@odata.type": "#microsoft.graph.basicAuthentication",
                "username": self.username,
                "password": "******",
            }),
        };
        json!({ "id": self.id, "displayName": self.display_name, "targetUrl": self.target_url, "authenticationConfiguration": auth })
    }

    fn in_flow(&self, step: ConnectorStep) -> ApiConnectorConfig {
        ApiConnectorConfig {
            step,
            display_name: self.display_name.clone(),
            target_url: self.target_url.clone(),
            authentication: self.authentication.clone(),
            username: self.username.clone(),
            secret_hash: self.secret_hash.clone(),
            secret: None,
        }
    }

    fn from_extras(m: Map<String, Value>) -> Option<Self> {
        serde_json::from_value(Value::Object(m)).ok()
    }

    fn to_extras(&self) -> Result<Map<String, Value>, DirectoryError> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(DirectoryError::Storage("encoding an API connector".into())),
        }
    }
}

/// The authentication of a create or update body: kind, username, and the salted hash of the secret.
fn authentication(body: &Map<String, Value>, salt: &str) -> Result<Option<(String, Option<String>, String)>, GraphError> {
    let Some(a) = body.get("authenticationConfiguration").filter(|v| !v.is_null()) else { return Ok(None) };
    let a = a.as_object().ok_or_else(|| GraphError::bad_request("authenticationConfiguration must be an object."))?;
    let field = |name: &str| -> Result<String, GraphError> {
        string(a, name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| GraphError::bad_request(format!("authenticationConfiguration.{name} is required.")))
    };
    match string(a, "@odata.type")?.as_deref().map(|t| t.trim_start_matches('#')) {
        Some("microsoft.graph.basicAuthentication") => {
            let username = field("username")?;
            let password = SecretValue::new(field("password")?);
            Ok(Some(("basic".into(), Some(username), secret_hash(salt, &password))))
        }
        Some("microsoft.graph.pkcs12Certificate") => {
            let value = field("pkcs12Value")?;
            let password = string(a, "password")?.unwrap_or_default();
            let secret = SecretValue::new(format!("{value}\u{0}{password}"));
            Ok(Some(("certificate".into(), None, secret_hash(salt, &secret))))
        }
        other => Err(GraphError::bad_request(format!(
            "authenticationConfiguration @odata.type {:?} is not supported: use #microsoft.graph.basicAuthentication or \
             #microsoft.graph.pkcs12Certificate.",
            other.unwrap_or_default()
        ))),
    }
}

fn target_url(body: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    let Some(u) = string(body, "targetUrl")? else { return Ok(None) };
    match reqwest::Url::parse(&u) {
        Ok(p) if p.scheme() == "https" => Ok(Some(u)),
        _ => Err(GraphError::bad_request(format!("targetUrl {u:?} must be an absolute https URL."))),
    }
}

async fn connectors(ctx: &Ctx) -> Result<Vec<Connector>, GraphError> {
    let all = read_extras(ctx, |c, tenant| store::all_extras(c, tenant, kind::CONNECTOR)).await?;
    let mut out: Vec<Connector> = all.into_values().filter_map(Connector::from_extras).collect();
    out.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
    Ok(out)
}

async fn connector(ctx: &Ctx, id: &str) -> Result<Connector, GraphError> {
    let key = id.to_string();
    let m = read_extras(ctx, move |c, tenant| store::extras(c, tenant, kind::CONNECTOR, &key)).await?;
    Connector::from_extras(m).ok_or_else(|| not_found("identityApiConnector", id))
}

pub(crate) async fn list_connectors(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let value: Vec<Value> = connectors(ctx).await?.iter().map(Connector::json).collect();
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "identity/apiConnectors"), "value": value })))
}

pub(crate) async fn get_connector(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let mut body = connector(ctx, id).await?.json();
    body["@odata.context"] = json!(ctx.context(req.version, "identity/apiConnectors/$entity"));
    Ok(GraphResponse::ok(body))
}

pub(crate) async fn create_connector(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let id = uuid::Uuid::new_v4().to_string();
    let display_name = string(body, "displayName")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| GraphError::bad_request("displayName is required."))?;
    let target_url = target_url(body)?.ok_or_else(|| GraphError::bad_request("targetUrl is required."))?;
    let (authentication, username, secret_hash) = authentication(body, &format!("{}/{id}", ctx.tenant()))?
        .ok_or_else(|| GraphError::bad_request("authenticationConfiguration is required."))?;
    let c = Connector { id: id.clone(), display_name, target_url, authentication, username, secret_hash };
    let stored = c.clone();
    write_extras(ctx, move |conn, tenant| store::put_extras(conn, tenant, kind::CONNECTOR, &stored.id, &stored.to_extras()?))
        .await?;
    let mut out = c.json();
    out["@odata.context"] = json!(ctx.context(req.version, "identity/apiConnectors/$entity"));
    let mut resp = GraphResponse::created(out);
    resp.headers.push(("Location".into(), ctx.url(req.version, &format!("/identity/apiConnectors/{id}"))));
    Ok(resp)
}

/// The flows and steps that call connector `id`.
async fn linked_steps(ctx: &Ctx, s: &IdentityState, id: &str) -> Result<Vec<(SignUpFlowConfig, ConnectorStep)>, GraphError> {
    let keys: Vec<(SignUpFlowConfig, ConnectorStep, String)> =
        s.flows.iter().flat_map(|f| STEPS.iter().map(move |st| (f.clone(), *st, step_key(&f.id, *st)))).collect();
    let id = id.to_string();
    read_extras(ctx, move |c, tenant| {
        let mut out = Vec::new();
        for (f, step, key) in keys {
            let link = store::extras(c, tenant, kind::STEP_LINK, &key)?;
            if link.get("connectorId").and_then(Value::as_str).is_some_and(|l| l.eq_ignore_ascii_case(&id)) {
                out.push((f, step));
            }
        }
        Ok(out)
    })
    .await
}

pub(crate) async fn update_connector(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let mut c = connector(ctx, id).await?;
    if let Some(d) = string(body, "displayName")? {
        if d.trim().is_empty() {
            return Err(GraphError::bad_request("displayName must not be empty."));
        }
        c.display_name = d;
    }
    if let Some(u) = target_url(body)? {
        c.target_url = u;
    }
    if let Some((kind, username, hash)) = authentication(body, &format!("{}/{}", ctx.tenant(), c.id))? {
        c.authentication = kind;
        c.username = username;
        c.secret_hash = hash;
    }
    // The flows calling it hold a copy (the directory's model): each is rewritten with it.
    let s = state(ctx).await?;
    let linked = linked_steps(ctx, &s, &c.id).await?;
    let mut ops = Vec::new();
    for (mut f, step) in linked {
        f.api_connectors.retain(|x| x.step != step);
        f.api_connectors.push(c.in_flow(step));
        f.api_connectors.sort_by_key(|x| x.step);
        ops.push(Operation::PutSignUpFlow { flow: f, exists: true });
    }
    let tenant = ctx.tenant().to_string();
    let stored = c.clone();
    ctx.db(move |dir| {
        dir.apply_then(&tenant, &ops, |conn, _| {
            store::put_extras(conn, &tenant, kind::CONNECTOR, &stored.id, &stored.to_extras()?)
        })
    })
    .await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_connector(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let c = connector(ctx, id).await?;
    let s = state(ctx).await?;
    let linked = linked_steps(ctx, &s, &c.id).await?;
    if !linked.is_empty() {
        let used: Vec<String> = linked.iter().map(|(f, st)| format!("{} ({})", f.id, st.as_str())).collect();
        return Err(GraphError::bad_request(format!(
            "API connector '{id}' is used by user flow step(s) {}; remove it from them first.",
            used.join(", ")
        )));
    }
    write_extras(ctx, move |conn, tenant| store::delete_extras(conn, tenant, kind::CONNECTOR, &c.id)).await?;
    Ok(GraphResponse::no_content())
}

// ------------------------------------------------------------------------------------------------
// A flow's apiConnectorConfiguration steps

pub(crate) async fn get_step(
    ctx: &Ctx,
    req: &GraphRequest,
    flow: &str,
    step: ConnectorStep,
) -> Result<GraphResponse, GraphError> {
    let (_, f) = find_flow(ctx, flow).await?;
    let Some(inline) = f.api_connectors.iter().find(|c| c.step == step).cloned() else {
        return Err(not_found("identityApiConnector", &format!("{} {}", f.id, step.as_str())));
    };
    let key = step_key(&f.id, step);
    let link = read_extras(ctx, move |c, tenant| store::extras(c, tenant, kind::STEP_LINK, &key)).await?;
    let linked = match link.get("connectorId").and_then(Value::as_str) {
        Some(id) => connector(ctx, id).await.ok(),
        None => None,
    };
    // A flow written straight to the directory (not through Graph) has no connector object: its step is
    // answered from the flow, under an id derived from the flow and step.
    let c = linked.unwrap_or_else(|| Connector {
        id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{}/{}", ctx.tenant(), step_key(&f.id, step)).as_bytes())
            .to_string(),
        display_name: inline.display_name.clone(),
        target_url: inline.target_url.clone(),
        authentication: inline.authentication.clone(),
        username: inline.username.clone(),
        secret_hash: inline.secret_hash.clone(),
    });
    let mut body = c.json();
    let what = format!("identity/b2xUserFlows('{}')/apiConnectorConfiguration/{}/$entity", f.id, step.as_str());
    body["@odata.context"] = json!(ctx.context(req.version, &what));
    Ok(GraphResponse::ok(body))
}

/// `PUT …/{step}/$ref` with `@odata.id` sets the step's connector; with `{}` it clears the step.
pub(crate) async fn put_step(
    ctx: &Ctx,
    req: &GraphRequest,
    flow: &str,
    step: ConnectorStep,
) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    if let Some(k) = body.keys().find(|k| !matches!(k.as_str(), "@odata.id" | "@odata.type")) {
        return Err(GraphError::bad_request(format!(
            "{k} is not a property of a reference; send @odata.id, or {{}} to clear the step."
        )));
    }
    if body.get("@odata.id").is_none() {
        return clear_step(ctx, flow, step).await;
    }
    let id = referenced(body, "apiConnectors")?;
    let c = connector(ctx, &id).await.map_err(|_| GraphError::bad_request(format!("API connector '{id}' does not exist.")))?;
    let (_, mut f) = find_flow(ctx, flow).await?;
    f.api_connectors.retain(|x| x.step != step);
    f.api_connectors.push(c.in_flow(step));
    f.api_connectors.sort_by_key(|x| x.step);
    let key = step_key(&f.id, step);
    write(ctx, Operation::PutSignUpFlow { flow: f, exists: true }, move |conn, tenant| {
        let mut link = Map::new();
        link.insert("connectorId".into(), json!(c.id));
        store::put_extras(conn, tenant, kind::STEP_LINK, &key, &link)
    })
    .await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn clear_step(ctx: &Ctx, flow: &str, step: ConnectorStep) -> Result<GraphResponse, GraphError> {
    let (_, mut f) = find_flow(ctx, flow).await?;
    f.api_connectors.retain(|x| x.step != step);
    let key = step_key(&f.id, step);
    write(ctx, Operation::PutSignUpFlow { flow: f, exists: true }, move |conn, tenant| {
        store::delete_extras(conn, tenant, kind::STEP_LINK, &key)
    })
    .await?;
    Ok(GraphResponse::no_content())
}
