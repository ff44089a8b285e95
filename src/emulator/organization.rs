//! `GET /organization` and `GET /organization/{id}`: the caller's tenant, with its `tenantType` (`AAD` for a
//! workforce tenant, `CIAM` for an external one, from the directory's tenant profile). Its branding is
//! `branding.rs`.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::model::TenantIdentity;
use crate::core::tenant_profile::{TenantProfile, TenantType};

const PROPERTIES: &[&str] = &["id", "displayName", "verifiedDomains", "tenantType", "countryLetterCode", "createdDateTime"];

/// Graph's `tenantType` of a tenant type.
fn graph_tenant_type(t: TenantType) -> &'static str {
    match t {
        TenantType::Workforce => "AAD",
        TenantType::External => "CIAM",
    }
}

fn full(t: &TenantIdentity, profile: &TenantProfile) -> Map<String, Value> {
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
        "tenantType": graph_tenant_type(profile.tenant_type),
        "countryLetterCode": null,
        "createdDateTime": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub(super) async fn mine(ctx: &Ctx) -> Result<(TenantIdentity, TenantProfile), GraphError> {
    let tenant = ctx.tenant().to_string();
    let found = ctx
        .db(move |dir| {
            let Some(t) = dir.find_tenant(&tenant)? else { return Ok(None) };
            let profile = dir.tenant_profile(&t.tenant_id)?;
            Ok(Some((t, profile)))
        })
        .await?;
    found.ok_or_else(|| GraphError::not_found(ctx.tenant()))
}

/// The caller's tenant when `id` names it, else 404.
pub(super) async fn mine_by_id(ctx: &Ctx, id: &str) -> Result<(TenantIdentity, TenantProfile), GraphError> {
    let (t, p) = mine(ctx).await?;
    if !t.tenant_id.eq_ignore_ascii_case(id) {
        return Err(GraphError::not_found(id));
    }
    Ok((t, p))
}

pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let (t, p) = mine(ctx).await?;
    let org = full(&t, &p);
    let item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "organization"), "value": [item] })))
}

pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "organization", PROPERTIES)?;
    let (t, p) = mine_by_id(ctx, id).await?;
    let org = full(&t, &p);
    let mut item = select.as_deref().map_or_else(|| org.clone(), |p| odata::project(&org, p));
    item.insert("@odata.context".into(), json!(ctx.context(req.version, "organization/$entity")));
    Ok(GraphResponse::ok(Value::Object(item)))
}
