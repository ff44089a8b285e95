//! `/identityGovernance/entitlementManagement` (graph-contract 1.9): connected organizations (with
//! polymorphic `identitySources`), access packages, assignment policies (update is PUT) and settings,
//! served from the local directory's tables (R16), so the rules are the local directory's.
//!
//! Identity sources other than `azureActiveDirectoryTenant` and `domainIdentitySource`, approver subject
//! sets, catalogs and package resources are not modelled: sending them is answered 501 `notImplemented`
//! (never silently dropped).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::entitlement::*;

const BASE: &str = "identityGovernance/entitlementManagement";

fn not_implemented(what: &str) -> GraphError {
    GraphError::new(http::StatusCode::NOT_IMPLEMENTED, "notImplemented", format!("The emulator does not model {what}."))
}

fn check_keys(body: &Map<String, Value>, allowed: &[&str], modelled_elsewhere: &[&str]) -> Result<(), GraphError> {
    for key in body.keys() {
        if key == "@odata.type" || allowed.contains(&key.as_str()) {
            continue;
        }
        if modelled_elsewhere.contains(&key.as_str()) {
            return Err(not_implemented(key));
        }
        return Err(GraphError::bad_request(format!(
            "Property '{key}' does not exist as a declared property or extension property."
        )));
    }
    Ok(())
}

fn string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, GraphError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be a string."))),
    }
}

// ---------------------------------------------------------------------------------------------
// Connected organizations

fn source_json(s: &IdentitySource) -> Value {
    match s {
        IdentitySource::TenantId(id) => {
            json!({ "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": id, "displayName": id })
        }
        IdentitySource::DomainName(d) => {
            json!({ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": d, "displayName": d })
        }
    }
}

fn parse_source(v: &Value) -> Result<IdentitySource, GraphError> {
    let t = v.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| GraphError::bad_request(format!("{t}: {k} is required.")))
    };
    match t.trim_start_matches('#').trim_start_matches("microsoft.graph.") {
        "azureActiveDirectoryTenant" => {
            let id = field("tenantId")?;
            crate::core::validate::guid(&id).map_err(|_| GraphError::bad_request("tenantId must be a GUID."))?;
            Ok(IdentitySource::TenantId(id))
        }
        "domainIdentitySource" => Ok(IdentitySource::DomainName(field("domainName")?)),
        "" => Err(GraphError::bad_request("identitySources items need an @odata.type (identitySource is abstract).")),
        other @ ("crossCloudAzureActiveDirectoryTenant" | "externalDomainFederation" | "socialIdentitySource") => {
            Err(not_implemented(&format!("identity sources of type {other}")))
        }
        other => Err(GraphError::bad_request(format!("'{other}' is not an identitySource type."))),
    }
}

fn org_json(id: &str, o: &ConnectedOrganization) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("displayName".into(), json!(o.display_name));
    m.insert("description".into(), json!(o.description));
    m.insert("state".into(), json!(o.state.as_str()));
    m.insert("identitySources".into(), Value::Array(o.identity_sources.iter().map(source_json).collect()));
    m
}

/// The organization a body describes, starting from `current` (PATCH) or nothing (POST).
fn org_from(body: &Map<String, Value>, current: Option<&ConnectedOrganization>) -> Result<ConnectedOrganization, GraphError> {
    check_keys(body, &["displayName", "description", "state", "identitySources"], &["internalSponsors", "externalSponsors"])?;
    let display_name = match (string(body, "displayName")?, current) {
        (Some(d), _) => d,
        (None, Some(c)) => c.display_name.clone(),
        (None, None) => return Err(GraphError::bad_request("displayName is required.")),
    };
    let description = match body.get("description") {
        Some(_) => string(body, "description")?.filter(|d| !d.trim().is_empty()),
        None => current.and_then(|c| c.description.clone()),
    };
    let state = match string(body, "state")? {
        Some(s) => ConnectedOrganizationState::parse(&s)
            .ok_or_else(|| GraphError::bad_request(format!("'{s}' is not a connectedOrganizationState.")))?,
        None => current.map(|c| c.state).unwrap_or(ConnectedOrganizationState::Configured),
    };
    let identity_sources = match body.get("identitySources") {
        Some(Value::Array(items)) => items.iter().map(parse_source).collect::<Result<BTreeSet<_>, _>>()?,
        Some(_) => return Err(GraphError::bad_request("identitySources must be an array.")),
        None => current.map(|c| c.identity_sources.clone()).unwrap_or_default(),
    };
    if identity_sources.is_empty() {
        return Err(GraphError::bad_request("identitySources needs at least one identity source."));
    }
    Ok(ConnectedOrganization { display_name, description, identity_sources, state })
}

async fn state(ctx: &Ctx) -> Result<EntitlementState, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.entitlement(&tenant)).await
}

pub(crate) async fn list_organizations(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let value: Vec<Value> = s.connected_organizations.iter().map(|o| Value::Object(org_json(&o.id, &o.value))).collect();
    Ok(GraphResponse::ok(
        json!({ "@odata.context": ctx.context(req.version, &format!("{BASE}/connectedOrganizations")), "value": value }),
    ))
}

pub(crate) async fn get_organization(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let o = s.connected_organizations.iter().find(|o| o.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = org_json(&o.id, &o.value);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/connectedOrganizations/$entity"))));
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn create_organization(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let o = org_from(req.object_body()?, None)?;
    let tenant = ctx.tenant().to_string();
    let org = o.clone();
    let id = ctx.db(move |dir| dir.ep_create_organization(&tenant, &org)).await?;
    let mut body = org_json(&id, &o);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/connectedOrganizations/$entity"))));
    Ok(GraphResponse::created(Value::Object(body)))
}

pub(crate) async fn update_organization(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let current = s.connected_organizations.iter().find(|o| o.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let o = org_from(req.object_body()?, Some(&current.value))?;
    let (tenant, id) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_update_organization(&tenant, &id, &o)).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_organization(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let (tenant, id) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_delete_organization(&tenant, &id)).await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Access packages

fn package_json(id: &str, p: &AccessPackage) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("displayName".into(), json!(p.display_name));
    m.insert("description".into(), json!(p.description));
    m.insert("isHidden".into(), json!(false));
    m
}

const PACKAGE_ELSEWHERE: &[&str] =
    &["catalog", "resourceRoleScopes", "accessPackagesIncompatibleWith", "incompatibleAccessPackages", "incompatibleGroups"];

pub(crate) async fn list_packages(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let value: Vec<Value> = s.access_packages.iter().map(|p| Value::Object(package_json(&p.id, &p.value))).collect();
    Ok(GraphResponse::ok(
        json!({ "@odata.context": ctx.context(req.version, &format!("{BASE}/accessPackages")), "value": value }),
    ))
}

pub(crate) async fn get_package(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let p = s.access_packages.iter().find(|p| p.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = package_json(&p.id, &p.value);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/accessPackages/$entity"))));
    Ok(GraphResponse::ok(Value::Object(body)))
}

fn package_fields(body: &Map<String, Value>) -> Result<(Option<String>, Option<Option<String>>), GraphError> {
    check_keys(body, &["displayName", "description", "isHidden", "createdDateTime", "modifiedDateTime"], PACKAGE_ELSEWHERE)?;
    if body.get("isHidden").and_then(Value::as_bool) == Some(true) {
        return Err(not_implemented("hidden access packages (isHidden: true)"));
    }
    let description = body.contains_key("description").then(|| string(body, "description")).transpose()?;
    Ok((string(body, "displayName")?, description.map(|d| d.filter(|d| !d.trim().is_empty()))))
}

pub(crate) async fn create_package(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (name, description) = package_fields(req.object_body()?)?;
    let name = name.ok_or_else(|| GraphError::bad_request("displayName is required."))?;
    let description = description.flatten();
    let tenant = ctx.tenant().to_string();
    let (n, d) = (name.clone(), description.clone());
    let id = ctx.db(move |dir| dir.ep_put_package(&tenant, None, &n, d.as_deref())).await?;
    let p = AccessPackage {
        display_name: name,
        description,
        groups: BTreeSet::new(),
        applications: BTreeSet::new(),
        policies: vec![],
    };
    let mut body = package_json(&id, &p);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/accessPackages/$entity"))));
    Ok(GraphResponse::created(Value::Object(body)))
}

pub(crate) async fn update_package(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let (name, description) = package_fields(req.object_body()?)?;
    let s = state(ctx).await?;
    let current = s.access_packages.iter().find(|p| p.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let name = name.unwrap_or_else(|| current.value.display_name.clone());
    let description = description.unwrap_or_else(|| current.value.description.clone());
    let (tenant, id) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_put_package(&tenant, Some(&id), &name, description.as_deref())).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_package(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let (tenant, id) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_delete_package(&tenant, &id)).await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Assignment policies

fn policy_json(row: &crate::directory::local::PolicyRow) -> Map<String, Value> {
    let p = &row.policy;
    let mut m = Map::new();
    m.insert("id".into(), json!(row.id));
    m.insert("displayName".into(), json!(p.display_name));
    m.insert("allowedTargetScope".into(), json!(p.allowed_target_scope.as_str()));
    m.insert(
        "specificAllowedTargets".into(),
        Value::Array(
            row.connected_organization_ids
                .iter()
                .map(
                    |id| json!({ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": id }),
                )
                .collect(),
        ),
    );
    m.insert(
        "requestApprovalSettings".into(),
        json!({ "isApprovalRequiredForAdd": p.approval_required, "isApprovalRequiredForUpdate": false, "stages": [] }),
    );
    m.insert(
        "expiration".into(),
        match p.expiration_seconds {
            Some(s) => json!({ "type": "afterDuration", "duration": iso_duration(s) }),
            None => json!({ "type": "noExpiration" }),
        },
    );
    m.insert("accessPackage".into(), json!({ "id": row.package_id }));
    m
}

const POLICY_ELSEWHERE: &[&str] = &[
    "automaticRequestSettings",
    "notificationSettings",
    "requestorSettings",
    "reviewSettings",
    "customExtensionStageSettings",
    "questions",
    "catalog",
];

/// The policy a body describes (PUT replaces, so every field comes from the body), and its package id.
async fn policy_from(ctx: &Ctx, body: &Map<String, Value>) -> Result<(String, AssignmentPolicy), GraphError> {
    check_keys(
        body,
        &[
            "displayName",
            "description",
            "allowedTargetScope",
            "specificAllowedTargets",
            "requestApprovalSettings",
            "expiration",
            "accessPackage",
            "id",
            "createdDateTime",
            "modifiedDateTime",
        ],
        POLICY_ELSEWHERE,
    )?;
    let display_name = string(body, "displayName")?.ok_or_else(|| GraphError::bad_request("displayName is required."))?;
    let package_id = body
        .get("accessPackage")
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| GraphError::bad_request("accessPackage with an id is required."))?;
    let scope = string(body, "allowedTargetScope")?.unwrap_or_else(|| "notSpecified".into());
    let allowed_target_scope = TargetScope::parse(&scope).ok_or_else(|| {
        not_implemented(&format!("allowedTargetScope '{scope}' (only connected-organization and external-user scopes)"))
    })?;
    let s = state(ctx).await?;
    let mut names = BTreeSet::new();
    match body.get("specificAllowedTargets") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for t in items {
                let kind = t.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
                if kind.trim_start_matches('#').trim_start_matches("microsoft.graph.") != "connectedOrganizationMembers" {
                    return Err(not_implemented(&format!("specificAllowedTargets of type {kind:?}")));
                }
                let id = t.get("connectedOrganizationId").and_then(Value::as_str).unwrap_or_default();
                let o = s
                    .connected_organizations
                    .iter()
                    .find(|o| o.id == id)
                    .ok_or_else(|| GraphError::bad_request(format!("connected organization {id:?} does not exist.")))?;
                names.insert(o.value.display_name.clone());
            }
        }
        Some(_) => return Err(GraphError::bad_request("specificAllowedTargets must be an array.")),
    }
    let approval = body.get("requestApprovalSettings").filter(|v| !v.is_null());
    if approval.and_then(|a| a.get("stages")).and_then(Value::as_array).is_some_and(|s| !s.is_empty()) {
        return Err(not_implemented("approval stages (requestApprovalSettings.stages)"));
    }
    let approval_required = approval.and_then(|a| a.get("isApprovalRequiredForAdd")).and_then(Value::as_bool).unwrap_or(false);
    let expiration_seconds = match body.get("expiration").filter(|v| !v.is_null()) {
        None => None,
        Some(e) => match e.get("type").and_then(Value::as_str) {
            None | Some("noExpiration" | "notSpecified") => None,
            Some("afterDuration") => {
                Some(e.get("duration").and_then(Value::as_str).and_then(parse_iso_duration).ok_or_else(|| {
                    GraphError::bad_request(
                        "expiration.duration must be an ISO 8601 duration in days, hours, minutes or seconds.",
                    )
                })?)
            }
            Some(other) => return Err(not_implemented(&format!("expiration of type {other}"))),
        },
    };
    Ok((
        package_id,
        AssignmentPolicy {
            display_name,
            allowed_target_scope,
            connected_organizations: names,
            approval_required,
            approvers: BTreeSet::new(),
            expiration_seconds,
        },
    ))
}

async fn rows(ctx: &Ctx) -> Result<Vec<crate::directory::local::PolicyRow>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.ep_policy_rows(&tenant)).await
}

pub(crate) async fn list_policies(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let value: Vec<Value> = rows(ctx).await?.iter().map(|r| Value::Object(policy_json(r))).collect();
    Ok(GraphResponse::ok(
        json!({ "@odata.context": ctx.context(req.version, &format!("{BASE}/assignmentPolicies")), "value": value }),
    ))
}

async fn one_policy(ctx: &Ctx, req: &GraphRequest, id: &str, created: bool) -> Result<GraphResponse, GraphError> {
    let all = rows(ctx).await?;
    let r = all.iter().find(|r| r.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = policy_json(r);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/assignmentPolicies/$entity"))));
    Ok(if created { GraphResponse::created(Value::Object(body)) } else { GraphResponse::ok(Value::Object(body)) })
}

pub(crate) async fn get_policy(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    one_policy(ctx, req, id, false).await
}

pub(crate) async fn create_policy(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (package_id, policy) = policy_from(ctx, req.object_body()?).await?;
    let tenant = ctx.tenant().to_string();
    let taken = rows(ctx)
        .await?
        .iter()
        .any(|r| r.package_id == package_id && r.policy.display_name.eq_ignore_ascii_case(&policy.display_name));
    if taken {
        return Err(GraphError::conflict(format!(
            "access package {package_id} already has a policy named {:?}",
            policy.display_name
        )));
    }
    let id = ctx.db(move |dir| dir.ep_put_policy(&tenant, &package_id, None, &policy)).await?;
    one_policy(ctx, req, &id, true).await
}

/// `PUT` replaces the whole policy (graph-contract 1.9).
pub(crate) async fn replace_policy(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    if !rows(ctx).await?.iter().any(|r| r.id == id) {
        return Err(GraphError::not_found(id));
    }
    let (package_id, policy) = policy_from(ctx, req.object_body()?).await?;
    let (tenant, pid) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_put_policy(&tenant, &package_id, Some(&pid), &policy)).await?;
    one_policy(ctx, req, id, false).await
}

pub(crate) async fn delete_policy(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let (tenant, id) = (ctx.tenant().to_string(), id.to_string());
    ctx.db(move |dir| dir.ep_delete_policy(&tenant, &id)).await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Settings

fn settings_json(s: &EntitlementSettings) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!("settings"));
    m.insert("externalUserLifecycleAction".into(), json!(s.external_user_lifecycle_action.as_str()));
    m.insert("durationUntilExternalUserDeletedAfterBlocked".into(), json!(iso_duration(s.delete_after_blocked_seconds)));
    m
}

pub(crate) async fn get_settings(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let s = state(ctx).await?;
    let mut body = settings_json(&s.settings);
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/settings/$entity"))));
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn update_settings(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    check_keys(body, &["externalUserLifecycleAction", "durationUntilExternalUserDeletedAfterBlocked", "id"], &[])?;
    let mut s = state(ctx).await?.settings;
    if let Some(a) = string(body, "externalUserLifecycleAction")? {
        s.external_user_lifecycle_action = LifecycleAction::parse(&a)
            .ok_or_else(|| GraphError::bad_request(format!("'{a}' is not an accessPackageExternalUserLifecycleAction.")))?;
    }
    if let Some(d) = string(body, "durationUntilExternalUserDeletedAfterBlocked")? {
        s.delete_after_blocked_seconds =
            parse_iso_duration(&d).ok_or_else(|| GraphError::bad_request(format!("'{d}' is not an ISO 8601 duration.")))?;
    }
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.ep_set_settings(&tenant, &s)).await?;
    Ok(GraphResponse::no_content())
}
