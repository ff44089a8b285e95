//! `/tenantRelationships/multiTenantOrganization` (graph-contract 1.7): the organization, its `tenants`
//! and the caller's `joinRequest`, over the local directory's tables (R15). Writes go through the
//! directory's operations, so a member is active when both sides agree, as in the local directory.
//! Graph finishes adds and joins asynchronously; the emulator at once (`transitionDetails` succeeded).

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::mto::{MtoMemberState, MtoRole};
use crate::core::operation::Operation;
use crate::directory::local::{JoinRequestRow, MemberRow, MtoView, OrganizationRow};

fn organization_json(org: &OrganizationRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(org.id));
    m.insert("createdDateTime".into(), json!(org.created_at));
    m.insert("displayName".into(), json!(org.display_name));
    m.insert("description".into(), json!(org.description.clone().unwrap_or_default()));
    m.insert("state".into(), json!("active"));
    m
}

fn member_json(owner: &str, m: &MemberRow) -> Map<String, Value> {
    let x = &m.member;
    let mut o = Map::new();
    o.insert("id".into(), json!(x.tenant_id));
    o.insert("tenantId".into(), json!(x.tenant_id));
    o.insert("displayName".into(), json!(x.display_name));
    o.insert("addedDateTime".into(), json!(m.added_at));
    o.insert("joinedDateTime".into(), json!(m.joined_at));
    o.insert("addedByTenantId".into(), json!(owner));
    o.insert("role".into(), json!(x.role.as_str()));
    o.insert("state".into(), json!(x.state.as_str()));
    o.insert(
        "transitionDetails".into(),
        match x.state {
            MtoMemberState::Active => Value::Null,
            _ => json!({
                "desiredRole": x.role.as_str(),
                "desiredState": "active",
                "status": "notStarted",
                "details": "The tenant has not joined yet: it joins from its own side (joinRequest).",
            }),
        },
    );
    o
}

fn join_json(j: &JoinRequestRow) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("id".into(), json!(j.request.added_by_tenant_id));
    o.insert("addedByTenantId".into(), json!(j.request.added_by_tenant_id));
    o.insert("memberState".into(), json!(j.request.member_state.as_str()));
    o.insert("role".into(), json!("member"));
    o.insert(
        "transitionDetails".into(),
        json!({
            "desiredMemberState": "active",
            "status": if j.request.member_state == MtoMemberState::Active { "succeeded" } else { "notStarted" },
            "details": Value::Null,
        }),
    );
    o
}

async fn view(ctx: &Ctx) -> Result<MtoView, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.mto_view(&tenant)).await
}

fn no_organization(ctx: &Ctx) -> GraphError {
    GraphError::new(
        http::StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Tenant {} is not part of a multi-tenant organization.", ctx.tenant()),
    )
}

async fn apply(ctx: &Ctx, op: Operation) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.apply_then(&tenant, &[op], |_, _| Ok(()))).await
}

fn string_field(body: &Map<String, Value>, name: &str, required: bool) -> Result<Option<String>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) if required => Err(GraphError::bad_request(format!("{name} is required."))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be a string."))),
    }
}

pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (org, _) = view(ctx).await?;
    let (org, _) = org.ok_or_else(|| no_organization(ctx))?;
    let mut body = organization_json(&org);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "tenantRelationships/multiTenantOrganization/$entity")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `PUT` creates (or replaces the name of) the caller's organization; `PATCH` changes an existing one.
pub(crate) async fn put(ctx: &Ctx, req: &GraphRequest, create: bool) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    for key in body.keys() {
        if !matches!(key.as_str(), "displayName" | "description" | "@odata.type") {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        }
    }
    let (current, _) = view(ctx).await?;
    let current = current.filter(|(o, _)| o.owner_tenant_id.eq_ignore_ascii_case(ctx.tenant()));
    if !create && current.is_none() {
        return Err(no_organization(ctx));
    }
    let display_name = match string_field(body, "displayName", create && current.is_none())? {
        Some(d) => d,
        None => current.as_ref().map(|(o, _)| o.display_name.clone()).unwrap_or_default(),
    };
    let description = match body.get("description") {
        Some(_) => string_field(body, "description", false)?.filter(|d| !d.is_empty()),
        None => current.as_ref().and_then(|(o, _)| o.description.clone()),
    };
    apply(ctx, Operation::PutMultiTenantOrganization { display_name, description }).await?;
    if !create {
        return Ok(GraphResponse::no_content());
    }
    let (org, _) = view(ctx).await?;
    let (org, _) = org.ok_or_else(|| GraphError::internal("the organization was not created"))?;
    let mut body = organization_json(&org);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "tenantRelationships/multiTenantOrganization/$entity")));
    Ok(GraphResponse::created(Value::Object(body)))
}

pub(crate) async fn list_tenants(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (org, _) = view(ctx).await?;
    let (org, members) = org.ok_or_else(|| no_organization(ctx))?;
    let value: Vec<Value> = members.iter().map(|m| Value::Object(member_json(&org.owner_tenant_id, m))).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "tenantRelationships/multiTenantOrganization/tenants"),
        "value": value,
    })))
}

pub(crate) async fn get_tenant(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let (org, _) = view(ctx).await?;
    let (org, members) = org.ok_or_else(|| no_organization(ctx))?;
    let m = members.iter().find(|m| m.member.tenant_id.eq_ignore_ascii_case(id)).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = member_json(&org.owner_tenant_id, m);
    body.insert(
        "@odata.context".into(),
        json!(ctx.context(req.version, "tenantRelationships/multiTenantOrganization/tenants/$entity")),
    );
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn add_tenant(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let tenant_id = string_field(body, "tenantId", true)?.unwrap_or_default().to_ascii_lowercase();
    if crate::core::validate::guid(&tenant_id).is_err() {
        return Err(GraphError::bad_request("tenantId must be a GUID."));
    }
    let display_name = string_field(body, "displayName", false)?;
    let role = match string_field(body, "role", false)?.as_deref() {
        None | Some("member") => MtoRole::Member,
        Some("owner") => MtoRole::Owner,
        Some(other) => return Err(GraphError::bad_request(format!("'{other}' is not a multiTenantOrganizationMemberRole."))),
    };
    let (org, _) = view(ctx).await?;
    let (org, members) =
        org.filter(|(o, _)| o.owner_tenant_id.eq_ignore_ascii_case(ctx.tenant())).ok_or_else(|| no_organization(ctx))?;
    if members.iter().any(|m| m.member.tenant_id == tenant_id) {
        return Err(GraphError::bad_request("Tenant is already being added in Multi-Tenant Organization."));
    }
    apply(ctx, Operation::AddMtoMember { tenant_id: tenant_id.clone(), display_name, role }).await?;
    let (after, _) = view(ctx).await?;
    let members = after.map(|(_, m)| m).unwrap_or_default();
    let m = members
        .iter()
        .find(|m| m.member.tenant_id == tenant_id)
        .ok_or_else(|| GraphError::internal("the member was not added"))?;
    let mut body = member_json(&org.owner_tenant_id, m);
    body.insert(
        "@odata.context".into(),
        json!(ctx.context(req.version, "tenantRelationships/multiTenantOrganization/tenants/$entity")),
    );
    Ok(GraphResponse::created(Value::Object(body)))
}

/// The owner removes a member; a member removes itself (it leaves).
pub(crate) async fn remove_tenant(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let id = id.trim().to_ascii_lowercase();
    let (org, join) = view(ctx).await?;
    let own = ctx.tenant().to_ascii_lowercase();
    let owner = org.as_ref().is_some_and(|(o, _)| o.owner_tenant_id == own);
    if owner {
        if id == own {
            return Err(GraphError::bad_request("The owner tenant of a multi-tenant organization cannot be removed."));
        }
        let listed = org.as_ref().is_some_and(|(_, m)| m.iter().any(|m| m.member.tenant_id == id));
        if !listed {
            return Err(GraphError::not_found(&id));
        }
        apply(ctx, Operation::RemoveMtoMember { tenant_id: id }).await?;
    } else if id == own && join.is_some() {
        apply(ctx, Operation::LeaveMto).await?;
    } else {
        return Err(GraphError::not_found(&id));
    }
    Ok(GraphResponse::no_content())
}

pub(crate) async fn get_join_request(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (_, join) = view(ctx).await?;
    let join = join.ok_or_else(|| no_organization(ctx))?;
    let mut body = join_json(&join);
    body.insert(
        "@odata.context".into(),
        json!(ctx.context(req.version, "tenantRelationships/multiTenantOrganization/joinRequest/$entity")),
    );
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn update_join_request(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    for key in body.keys() {
        if !matches!(key.as_str(), "addedByTenantId" | "@odata.type") {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        }
    }
    let owner = string_field(body, "addedByTenantId", true)?.unwrap_or_default().to_ascii_lowercase();
    if crate::core::validate::guid(&owner).is_err() {
        return Err(GraphError::bad_request("addedByTenantId must be a GUID."));
    }
    apply(ctx, Operation::JoinMto { owner_tenant_id: owner }).await?;
    Ok(GraphResponse::no_content())
}
