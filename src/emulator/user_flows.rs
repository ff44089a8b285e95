//! `/identity/b2xUserFlows` (graph-contract 1.8) over the local directory's identity tables (R17):
//! flows are listed, created (`B2X_1_` prefix, `Location`), read and deleted, with
//! `userFlowIdentityProviders` inline on create and with `$expand`. Writes go through the directory's
//! operations, so a flow offering a missing or disabled provider is refused (`SignUpProviderUnavailable`).

use serde_json::{Value, json};

use super::errors::GraphError;
use super::identity::{BUILT_IN, apply, not_found, provider_json, state, string};
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::identity::*;
use crate::core::operation::Operation;

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
                format!("emulator: {key} is not served (it is not in entente's Graph contract)"),
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
    apply(ctx, Operation::DeleteSignUpFlow { id: f.id.clone() }).await?;
    Ok(GraphResponse::no_content())
}
