//! `/identity/conditionalAccess/policies` (graph-contract 1.9) over the local directory's conditional
//! access table (R18). Served: policies whose `conditions.users` has `includeGuestsOrExternalUsers` (the
//! part entente models); other policies are answered 501, naming what is missing. Writes go through the
//! directory's operations, so its checks hold (at least one external user type; external tenants only with
//! types; at least one application and one built-in control). `guestOrExternalUserTypes` is the flags enum
//! as a comma-separated string; `externalTenants` carries its `@odata.type`.
//!
//! Deviation: a POST whose display name a policy already has is answered 409 (Graph allows duplicates;
//! entente never creates one, and a lost answer would otherwise create a second policy).

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::conditional_access::ObservedConditionalAccessPolicy;
use crate::core::operation::Operation;
use crate::directory::graph::conditional_access::{from_wire, to_wire};
use crate::directory::local::conditional_access as table;

async fn list_all(ctx: &Ctx) -> Result<Vec<ObservedConditionalAccessPolicy>, GraphError> {
    let tenant = ctx.tenant().to_ascii_lowercase();
    ctx.db(move |dir| dir.emulator_read(|c| table::list(c, &tenant))).await
}

fn policy_json(p: &ObservedConditionalAccessPolicy) -> Value {
    let mut v = to_wire(&p.policy, true);
    v["id"] = json!(p.id);
    v
}

fn not_found(id: &str) -> GraphError {
    GraphError::new(
        http::StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("conditionalAccessPolicy '{id}' does not exist."),
    )
}

/// Graph's checks of the guest condition that `from_wire` would otherwise pass over.
fn check_guests(body: &Value) -> Result<(), GraphError> {
    for side in ["includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers"] {
        let g = &body["conditions"]["users"][side];
        if g.is_null() {
            continue;
        }
        let types = g.get("guestOrExternalUserTypes").and_then(Value::as_str).unwrap_or_default();
        let empty = types.split(',').map(str::trim).all(|t| t.is_empty() || t == "none");
        if empty && !g.get("externalTenants").is_none_or(Value::is_null) {
            return Err(GraphError::bad_request(format!(
                "conditions.users.{side}.externalTenants can only be set when guestOrExternalUserTypes is not null or empty."
            )));
        }
    }
    Ok(())
}

fn parse(body: &Value) -> Result<crate::core::conditional_access::ConditionalAccessPolicyConfig, GraphError> {
    check_guests(body)?;
    match from_wire(body).map_err(GraphError::bad_request)? {
        Some(p) => Ok(p.policy),
        None => Err(GraphError::new(
            http::StatusCode::NOT_IMPLEMENTED,
            "notImplemented",
            "emulator: only conditional access policies with conditions.users.includeGuestsOrExternalUsers are served",
        )),
    }
}

/// `base` with `patch` merged in (objects by key, everything else replaced).
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let value: Vec<Value> = list_all(ctx).await?.iter().map(policy_json).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "identity/conditionalAccess/policies"),
        "value": value,
    })))
}

pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let all = list_all(ctx).await?;
    let p = all.iter().find(|p| p.id == id).ok_or_else(|| not_found(id))?;
    let mut body = policy_json(p);
    body["@odata.context"] = json!(ctx.context(req.version, "identity/conditionalAccess/policies/$entity"));
    Ok(GraphResponse::ok(body))
}

pub(crate) async fn create(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = Value::Object(req.object_body()?.clone());
    let policy = parse(&body)?;
    let name = policy.display_name.clone();
    if list_all(ctx).await?.iter().any(|p| p.policy.display_name.eq_ignore_ascii_case(&name)) {
        return Err(GraphError::conflict(format!("A conditional access policy named '{name}' already exists (emulator).")));
    }
    let tenant = ctx.tenant().to_ascii_lowercase();
    let op = Operation::PutConditionalAccessPolicy { id: None, policy };
    let created = ctx
        .db(move |dir| {
            dir.apply_then(&tenant, &[op], |c, _| {
                Ok(table::list(c, &tenant)?.into_iter().find(|p| p.policy.display_name.eq_ignore_ascii_case(&name)))
            })
        })
        .await?
        .ok_or_else(|| GraphError::internal("the policy was not created"))?;
    let mut out = policy_json(&created);
    out["@odata.context"] = json!(ctx.context(req.version, "identity/conditionalAccess/policies/$entity"));
    Ok(GraphResponse::created(out))
}

pub(crate) async fn update(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let patch: Map<String, Value> = req.object_body()?.clone();
    let all = list_all(ctx).await?;
    let existing = all.iter().find(|p| p.id == id).ok_or_else(|| not_found(id))?;
    let mut merged = policy_json(existing);
    merge(&mut merged, &Value::Object(patch));
    let policy = parse(&merged)?;
    let tenant = ctx.tenant().to_ascii_lowercase();
    let op = Operation::PutConditionalAccessPolicy { id: Some(id.to_string()), policy };
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |_, _| Ok(()))).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    if !list_all(ctx).await?.iter().any(|p| p.id == id) {
        return Err(not_found(id));
    }
    let tenant = ctx.tenant().to_ascii_lowercase();
    let op = Operation::DeleteConditionalAccessPolicy { id: id.to_string() };
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |_, _| Ok(()))).await?;
    Ok(GraphResponse::no_content())
}
