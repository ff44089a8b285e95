//! `GET /organization` and `GET /organization/{id}`: the caller's tenant (outside the OpenAPI subset).

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::model::TenantIdentity;

const PROPERTIES: &[&str] = &["id", "displayName", "verifiedDomains", "tenantType", "countryLetterCode", "createdDateTime"];

fn full(t: &TenantIdentity) -> Map<String, Value> {
    let mut domains = vec![json!({
        "capabilities": "Email, OfficeCommunicationsOnline",
        "isDefault": t.verified_domains.is_empty(),
        "isInitial": true,
        "name": t.initial_domain,
        "type": "Managed",
    })];
    for (i, d) in t.verified_domains.iter().enumerate() {
        domains.push(json!({
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": i == 0,
            "isInitial": false,
            "name": d,
            "type": "Managed",
        }));
    }
    json!({
        "id": t.tenant_id,
        "displayName": t.display_name,
        "verifiedDomains": domains,
        "tenantType": "AAD",
        "countryLetterCode": null,
        "createdDateTime": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

async fn mine(ctx: &Ctx) -> Result<TenantIdentity, GraphError> {
    let tenant = ctx.tenant().to_string();
    let t = ctx.db(move |dir| dir.find_tenant(&tenant)).await?;
    t.ok_or_else(|| GraphError::not_found(ctx.tenant()))
}

pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let org = full(&mine(ctx).await?);
    let item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "organization"), "value": [item] })))
}

pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let t = mine(ctx).await?;
    if !t.tenant_id.eq_ignore_ascii_case(id) {
        return Err(GraphError::not_found(id));
    }
    let org = full(&t);
    let mut item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    item.insert("@odata.context".into(), json!(ctx.context(req.version, "organization/$entity")));
    Ok(GraphResponse::ok(Value::Object(item)))
}
