//! `/identityGovernance/entitlementManagement` (graph-contract 1.9): connected organizations (with
//! polymorphic `identitySources`), access packages, assignment policies (update is PUT) and settings,
//! served from the local directory's tables (R16), so the rules are the local directory's.
//!
//! Package resources (graph-contract 1.9 plus `contract/entitlement.yaml`): one built-in catalog per tenant
//! ("General", `serviceDefault`); `resourceRequests` (`adminAdd` of an `AadGroup` or `AadApplication`) put a
//! resource in it (kept in the emulator's extras); a package's `resourceRoleScopes` (a group's Member role, an
//! application's default access role) are the local directory's package groups and applications, written
//! through it so its rules hold (a group must exist). Service principals are the tenant's app registrations
//! (`/servicePrincipals`, read only). Approvers are one approval stage of `singleUser` primary approvers,
//! stored as the users' addresses.
//!
//! Identity sources other than `azureActiveDirectoryTenant` and `domainIdentitySource`, other subject sets
//! (approver groups, managers, sponsors), several approval stages, escalation, other catalogs, SharePoint
//! resources and group Owner roles are not modelled: sending them is answered 501 `notImplemented` (never
//! silently dropped).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::entitlement::*;
use crate::directory::DirectoryError;

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
    &["resourceRoleScopes", "accessPackagesIncompatibleWith", "incompatibleAccessPackages", "incompatibleGroups"];

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
    check_keys(
        body,
        &["displayName", "description", "isHidden", "createdDateTime", "modifiedDateTime", "catalog"],
        PACKAGE_ELSEWHERE,
    )?;
    if body.get("isHidden").and_then(Value::as_bool) == Some(true) {
        return Err(not_implemented("hidden access packages (isHidden: true)"));
    }
    let description = body.contains_key("description").then(|| string(body, "description")).transpose()?;
    Ok((string(body, "displayName")?, description.map(|d| d.filter(|d| !d.trim().is_empty()))))
}

pub(crate) async fn create_package(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let (name, description) = package_fields(body)?;
    let name = name.ok_or_else(|| GraphError::bad_request("displayName is required."))?;
    // As Graph: a package is created in an existing catalog, named by id (required).
    let catalog = body.get("catalog").and_then(|c| c.get("id")).and_then(Value::as_str);
    let catalog = catalog.ok_or_else(|| GraphError::bad_request("catalog is required: the catalog's id."))?;
    check_catalog(ctx.tenant(), catalog)?;
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
    let body = req.object_body()?;
    if body.contains_key("catalog") {
        return Err(GraphError::bad_request("An access package cannot be moved to another catalog."));
    }
    let (name, description) = package_fields(body)?;
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

/// The default `durationBeforeAutomaticDenial` (14 days), the only one modelled.
const AUTOMATIC_DENIAL: &str = "P14D";

/// The approval settings of a policy: one stage of `singleUser` primary approvers when it names approvers.
/// `user_ids` maps an address (mail or UPN, lowercase) to the user's id; approvers no longer in the
/// directory are left out.
fn approval_json(p: &AssignmentPolicy, user_ids: &BTreeMap<String, String>) -> Value {
    let approvers: Vec<Value> = p
        .approvers
        .iter()
        .filter_map(|a| user_ids.get(a))
        .map(|id| json!({ "@odata.type": "#microsoft.graph.singleUser", "userId": id }))
        .collect();
    let stages = if p.approvers.is_empty() {
        vec![]
    } else {
        vec![json!({
            "durationBeforeAutomaticDenial": AUTOMATIC_DENIAL,
            "isApproverJustificationRequired": false,
            "isEscalationEnabled": false,
            "primaryApprovers": approvers,
            "fallbackPrimaryApprovers": [],
            "escalationApprovers": [],
            "fallbackEscalationApprovers": [],
        })]
    };
    json!({ "isApprovalRequiredForAdd": p.approval_required, "isApprovalRequiredForUpdate": false, "stages": stages })
}

/// Every user of the tenant by address (mail and UPN, lowercase) → id.
async fn user_ids(ctx: &Ctx) -> Result<BTreeMap<String, String>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let mut out = BTreeMap::new();
        for u in dir.users(&tenant)? {
            out.insert(u.user_principal_name.to_ascii_lowercase(), u.id.clone());
            if !u.mail.is_empty() {
                out.insert(u.mail.to_ascii_lowercase(), u.id.clone());
            }
        }
        Ok(out)
    })
    .await
}

fn policy_json(row: &crate::directory::local::PolicyRow, user_ids: &BTreeMap<String, String>) -> Map<String, Value> {
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
    m.insert("requestApprovalSettings".into(), approval_json(p, user_ids));
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
    let approvers = match approval.and_then(|a| a.get("stages")).filter(|v| !v.is_null()) {
        None => BTreeSet::new(),
        Some(Value::Array(stages)) => approvers_from(ctx, stages).await?,
        Some(_) => return Err(GraphError::bad_request("requestApprovalSettings.stages must be an array.")),
    };
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
            approvers,
            expiration_seconds,
        },
    ))
}

/// The approvers of `requestApprovalSettings.stages`: at most one stage, whose primary approvers are
/// `singleUser` subject sets naming users of the tenant; their addresses (mail, else UPN), lowercase.
async fn approvers_from(ctx: &Ctx, stages: &[Value]) -> Result<BTreeSet<String>, GraphError> {
    let Some(stage) = stages.first() else { return Ok(BTreeSet::new()) };
    if stages.len() > 1 {
        return Err(not_implemented("more than one approval stage"));
    }
    let stage = stage.as_object().ok_or_else(|| GraphError::bad_request("an approval stage must be an object."))?;
    check_keys(
        stage,
        &[
            "primaryApprovers",
            "durationBeforeAutomaticDenial",
            "isApproverJustificationRequired",
            "isEscalationEnabled",
            "durationBeforeEscalation",
            "fallbackPrimaryApprovers",
            "escalationApprovers",
            "fallbackEscalationApprovers",
        ],
        &["approverInformationVisibility"],
    )?;
    for k in ["fallbackPrimaryApprovers", "escalationApprovers", "fallbackEscalationApprovers"] {
        if stage.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return Err(not_implemented(&format!("approval stages with {k}")));
        }
    }
    for k in ["isApproverJustificationRequired", "isEscalationEnabled"] {
        if stage.get(k).and_then(Value::as_bool) == Some(true) {
            return Err(not_implemented(&format!("approval stages with {k}: true")));
        }
    }
    if let Some(d) = string(stage, "durationBeforeAutomaticDenial")?
        && parse_iso_duration(&d) != parse_iso_duration(AUTOMATIC_DENIAL)
    {
        return Err(not_implemented(&format!("durationBeforeAutomaticDenial {d:?} (only {AUTOMATIC_DENIAL})")));
    }
    let items = match stage.get("primaryApprovers") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Err(GraphError::bad_request("an approval stage needs at least one primary approver.")),
    };
    let mut ids = Vec::new();
    for item in items {
        let kind = item.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
        if kind.trim_start_matches('#').trim_start_matches("microsoft.graph.") != "singleUser" {
            return Err(not_implemented(&format!("primary approvers of type {kind:?} (only singleUser)")));
        }
        let id = item
            .get("userId")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| GraphError::bad_request("singleUser: userId is required."))?;
        ids.push(id.to_string());
    }
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let users = dir.users(&tenant)?;
        let mut out = BTreeSet::new();
        for id in ids {
            let u = users
                .iter()
                .find(|u| u.id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| DirectoryError::Invalid(format!("approver {id}: no such user in tenant {tenant}")))?;
            let address = if u.mail.is_empty() { &u.user_principal_name } else { &u.mail };
            out.insert(address.to_ascii_lowercase());
        }
        Ok(out)
    })
    .await
}

async fn rows(ctx: &Ctx) -> Result<Vec<crate::directory::local::PolicyRow>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| dir.ep_policy_rows(&tenant)).await
}

pub(crate) async fn list_policies(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let ids = user_ids(ctx).await?;
    let value: Vec<Value> = rows(ctx).await?.iter().map(|r| Value::Object(policy_json(r, &ids))).collect();
    Ok(GraphResponse::ok(
        json!({ "@odata.context": ctx.context(req.version, &format!("{BASE}/assignmentPolicies")), "value": value }),
    ))
}

async fn one_policy(ctx: &Ctx, req: &GraphRequest, id: &str, created: bool) -> Result<GraphResponse, GraphError> {
    let all = rows(ctx).await?;
    let r = all.iter().find(|r| r.id == id).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = policy_json(r, &user_ids(ctx).await?);
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

// ---------------------------------------------------------------------------------------------
// Catalog, package resources and service principals

/// The origin systems modelled: Microsoft Entra groups and applications (service principals).
const AAD_GROUP: &str = "AadGroup";
const AAD_APPLICATION: &str = "AadApplication";
/// A group's role an access package gives: membership (`Member_<groupId>`).
const MEMBER_PREFIX: &str = "Member_";
/// An application without app roles: its default access role.
const DEFAULT_ACCESS: &str = "00000000-0000-0000-0000-000000000000";
/// Emulator extras: the resources added to the tenant's catalog, keyed `<originSystem>:<originId>`.
const CATALOG_RESOURCE: &str = "entitlement.catalogResource";

/// A stable id derived from the tenant and a name (catalogs, resources, roles, scopes, service principals).
fn derived_id(tenant: &str, what: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("entente-emulator:{tenant}:{what}").as_bytes()).to_string()
}

fn catalog_id(tenant: &str) -> String {
    derived_id(tenant, "catalog/General")
}

/// The service principal id of application `app_id` in `tenant`.
fn service_principal_id(tenant: &str, app_id: &str) -> String {
    derived_id(tenant, &format!("servicePrincipal/{}", app_id.to_ascii_lowercase()))
}

fn catalog_json(tenant: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(catalog_id(tenant)));
    m.insert("displayName".into(), json!("General"));
    m.insert("description".into(), json!("Built-in catalog."));
    m.insert("catalogType".into(), json!("serviceDefault"));
    m.insert("state".into(), json!("published"));
    m.insert("isExternallyVisible".into(), json!(true));
    m
}

/// A group or an application as an access package resource.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Resource {
    origin_system: &'static str,
    /// The group id, or the service principal id.
    origin_id: String,
    display_name: String,
    /// The group's display name, or the application (client) id: what the local directory stores.
    local_key: String,
}

impl Resource {
    fn id(&self, tenant: &str) -> String {
        derived_id(tenant, &format!("resource/{}/{}", self.origin_system, self.origin_id))
    }
    fn role_origin_id(&self) -> String {
        match self.origin_system {
            AAD_GROUP => format!("{MEMBER_PREFIX}{}", self.origin_id),
            _ => DEFAULT_ACCESS.to_string(),
        }
    }
    fn role_id(&self, tenant: &str) -> String {
        derived_id(tenant, &format!("role/{}/{}", self.origin_system, self.role_origin_id()))
    }
    fn scope_id(&self, tenant: &str) -> String {
        derived_id(tenant, &format!("scope/{}/{}", self.origin_system, self.origin_id))
    }
    fn role_scope_id(&self, tenant: &str) -> String {
        format!("{}_{}", self.role_id(tenant), self.scope_id(tenant))
    }
    fn json(&self, tenant: &str, expand: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id(tenant)));
        m.insert("displayName".into(), json!(self.display_name));
        m.insert("description".into(), Value::Null);
        m.insert("originId".into(), json!(self.origin_id));
        m.insert("originSystem".into(), json!(self.origin_system));
        if expand.contains("roles") {
            m.insert("roles".into(), json!([self.role_json(tenant, false)]));
        }
        if expand.contains("scopes") {
            m.insert("scopes".into(), json!([self.scope_json(tenant)]));
        }
        m
    }
    fn role_json(&self, tenant: &str, with_resource: bool) -> Value {
        let name = if self.origin_system == AAD_GROUP { "Member" } else { "Default Access" };
        let mut m = Map::new();
        m.insert("id".into(), json!(self.role_id(tenant)));
        m.insert("displayName".into(), json!(name));
        m.insert("description".into(), Value::Null);
        m.insert("originId".into(), json!(self.role_origin_id()));
        m.insert("originSystem".into(), json!(self.origin_system));
        if with_resource {
            m.insert("resource".into(), Value::Object(self.json(tenant, "")));
        }
        Value::Object(m)
    }
    fn scope_json(&self, tenant: &str) -> Value {
        json!({
            "id": self.scope_id(tenant),
            "displayName": "Root",
            "description": "Root Scope",
            "originId": self.origin_id,
            "originSystem": self.origin_system,
            "isRootScope": true,
        })
    }
}

/// What the resources handlers need from the directory: groups, service principals (the tenant's app
/// registrations), the catalog's resources, and the packages with their groups and applications.
struct ResourceView {
    tenant: String,
    groups: Vec<crate::core::model::Group>,
    /// (service principal id, application id, display name).
    service_principals: Vec<(String, String, String)>,
    catalog: Vec<Resource>,
    packages: Vec<Identified<AccessPackage>>,
}

impl ResourceView {
    fn group(&self, id_or_name: &str, by_name: bool) -> Option<Resource> {
        self.groups
            .iter()
            .find(
                |g| if by_name { g.display_name.eq_ignore_ascii_case(id_or_name) } else { g.id.eq_ignore_ascii_case(id_or_name) },
            )
            .map(|g| Resource {
                origin_system: AAD_GROUP,
                origin_id: g.id.clone(),
                display_name: g.display_name.clone(),
                local_key: g.display_name.clone(),
            })
    }
    /// By service principal id, or (`by_app`) by application id.
    fn application(&self, id: &str, by_app: bool) -> Option<Resource> {
        self.service_principals.iter().find(|(sp, app, _)| if by_app { app.eq_ignore_ascii_case(id) } else { sp == id }).map(
            |(sp, app, name)| Resource {
                origin_system: AAD_APPLICATION,
                origin_id: sp.clone(),
                display_name: name.clone(),
                local_key: app.clone(),
            },
        )
    }
    fn resource(&self, origin_system: &str, origin_id: &str) -> Result<Option<Resource>, GraphError> {
        match origin_system {
            AAD_GROUP => Ok(self.group(origin_id, false)),
            AAD_APPLICATION => Ok(self.application(origin_id, false)),
            other => Err(not_implemented(&format!("access package resources of origin system {other:?}"))),
        }
    }
    /// A package's resources: its groups and applications.
    fn package_resources(&self, p: &AccessPackage) -> Vec<Resource> {
        let groups = p.groups.iter().filter_map(|g| self.group(g, true));
        let apps = p.applications.iter().map(|a| {
            self.application(a, true).unwrap_or_else(|| Resource {
                origin_system: AAD_APPLICATION,
                origin_id: service_principal_id(&self.tenant, a),
                display_name: a.clone(),
                local_key: a.clone(),
            })
        });
        groups.chain(apps).collect()
    }
    /// The catalog: what resource requests added, and whatever a package uses.
    fn catalog_resources(&self) -> Vec<Resource> {
        let mut out = self.catalog.clone();
        for p in &self.packages {
            for r in self.package_resources(&p.value) {
                if !out.iter().any(|o| o.origin_system == r.origin_system && o.origin_id == r.origin_id) {
                    out.push(r);
                }
            }
        }
        out
    }
    fn package(&self, id: &str) -> Result<&Identified<AccessPackage>, GraphError> {
        self.packages.iter().find(|p| p.id == id).ok_or_else(|| GraphError::not_found(id))
    }
}

async fn resource_view(ctx: &Ctx) -> Result<ResourceView, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let groups = dir.groups(&tenant)?;
        let service_principals = super::apps::list_apps(dir, Some(&tenant))
            .map_err(|e| DirectoryError::Storage(e.to_string()))?
            .into_iter()
            .map(|a| (service_principal_id(&tenant, &a.client_id), a.client_id.to_ascii_lowercase(), a.display_name))
            .collect();
        let stored = dir.emulator_read(|c| super::store::all_extras(c, &tenant, CATALOG_RESOURCE))?;
        let packages = dir.entitlement(&tenant)?.access_packages;
        let mut view = ResourceView { tenant: tenant.clone(), groups, service_principals, catalog: vec![], packages };
        let mut catalog = Vec::new();
        for m in stored.values() {
            let system = m.get("originSystem").and_then(Value::as_str).unwrap_or_default();
            let origin = m.get("originId").and_then(Value::as_str).unwrap_or_default();
            // A group or app deleted since it was added is no longer in the catalog.
            if let Ok(Some(r)) = view.resource(system, origin) {
                catalog.push(r);
            }
        }
        catalog.sort_by(|a, b| (a.origin_system, &a.display_name).cmp(&(b.origin_system, &b.display_name)));
        view.catalog = catalog;
        Ok(view)
    })
    .await
}

fn check_catalog(tenant: &str, id: &str) -> Result<(), GraphError> {
    if id.eq_ignore_ascii_case(&catalog_id(tenant)) { Ok(()) } else { Err(GraphError::not_found(id)) }
}

pub(crate) async fn list_catalogs(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, &format!("{BASE}/catalogs")),
        "value": [Value::Object(catalog_json(ctx.tenant()))],
    })))
}

pub(crate) async fn package_catalog(ctx: &Ctx, req: &GraphRequest, package_id: &str) -> Result<GraphResponse, GraphError> {
    let view = resource_view(ctx).await?;
    view.package(package_id)?;
    let mut body = catalog_json(ctx.tenant());
    body.insert("@odata.context".into(), json!(ctx.context(req.version, &format!("{BASE}/catalogs/$entity"))));
    Ok(GraphResponse::ok(Value::Object(body)))
}

pub(crate) async fn list_catalog_resources(ctx: &Ctx, req: &GraphRequest, catalog: &str) -> Result<GraphResponse, GraphError> {
    check_catalog(ctx.tenant(), catalog)?;
    let view = resource_view(ctx).await?;
    let expand = req.param("expand").unwrap_or_default().to_string();
    let value: Vec<Value> = view.catalog_resources().iter().map(|r| Value::Object(r.json(ctx.tenant(), &expand))).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, &format!("{BASE}/catalogs('{catalog}')/resources")),
        "value": value,
    })))
}

/// `POST resourceRequests`: `adminAdd` of a group or an application to the tenant's catalog.
pub(crate) async fn create_resource_request(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    check_keys(body, &["requestType", "resource", "catalog"], &["justification"])?;
    let kind = string(body, "requestType")?.ok_or_else(|| GraphError::bad_request("requestType is required."))?;
    const REQUEST_TYPES: &[&str] = &[
        "notSpecified",
        "userAdd",
        "userUpdate",
        "userRemove",
        "adminAdd",
        "adminUpdate",
        "adminRemove",
        "systemAdd",
        "systemUpdate",
        "systemRemove",
        "onBehalfAdd",
    ];
    if !REQUEST_TYPES.contains(&kind.as_str()) {
        return Err(GraphError::bad_request(format!("'{kind}' is not an accessPackageRequestType.")));
    }
    if kind != "adminAdd" {
        return Err(not_implemented(&format!("resource requests of type {kind:?} (only adminAdd)")));
    }
    let catalog = body
        .get("catalog")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("catalog with an id is required."))?;
    check_catalog(ctx.tenant(), catalog)?;
    let resource =
        body.get("resource").and_then(Value::as_object).ok_or_else(|| GraphError::bad_request("resource is required."))?;
    check_keys(resource, &["originId", "originSystem", "displayName", "description", "id"], &["environment", "attributes"])?;
    let system =
        string(resource, "originSystem")?.ok_or_else(|| GraphError::bad_request("resource.originSystem is required."))?;
    let origin = string(resource, "originId")?.ok_or_else(|| GraphError::bad_request("resource.originId is required."))?;
    let view = resource_view(ctx).await?;
    let r = view.resource(&system, &origin)?.ok_or_else(|| {
        GraphError::bad_request(format!("resource {origin:?} of origin system {system} does not exist in the tenant."))
    })?;
    if view.catalog_resources().contains(&r) {
        return Err(GraphError::conflict(format!("resource {origin:?} is already in catalog {catalog}.")));
    }
    let tenant = ctx.tenant().to_string();
    let key = format!("{}:{}", r.origin_system, r.origin_id);
    let stored = json!({ "originSystem": r.origin_system, "originId": r.origin_id });
    let Value::Object(stored) = stored else { unreachable!("an object literal") };
    ctx.db(move |dir| dir.emulator_write(|c| super::store::put_extras(c, &tenant, CATALOG_RESOURCE, &key, &stored))).await?;
    Ok(GraphResponse::created(json!({
        "@odata.context": ctx.context(req.version, &format!("{BASE}/resourceRequests/$entity")),
        "id": uuid::Uuid::new_v4().to_string(),
        "requestType": "adminAdd",
        "state": "delivered",
        "createdDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })))
}

fn role_scope_json(r: &Resource, tenant: &str, expand: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.role_scope_id(tenant)));
    m.insert("createdDateTime".into(), Value::Null);
    if expand.contains("role") {
        m.insert("role".into(), r.role_json(tenant, expand.contains("resource")));
    }
    if expand.contains("scope") {
        m.insert("scope".into(), r.scope_json(tenant));
    }
    Value::Object(m)
}

pub(crate) async fn list_role_scopes(ctx: &Ctx, req: &GraphRequest, package_id: &str) -> Result<GraphResponse, GraphError> {
    let view = resource_view(ctx).await?;
    let p = view.package(package_id)?;
    let expand = req.param("expand").unwrap_or_default().to_string();
    let value: Vec<Value> = view.package_resources(&p.value).iter().map(|r| role_scope_json(r, ctx.tenant(), &expand)).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, &format!("{BASE}/accessPackages('{package_id}')/resourceRoleScopes")),
        "value": value,
    })))
}

/// `POST resourceRoleScopes`: the package gives a catalog resource's role (a group's membership, an
/// application's default access).
pub(crate) async fn create_role_scope(ctx: &Ctx, req: &GraphRequest, package_id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    check_keys(body, &["role", "scope"], &[])?;
    let role = body.get("role").and_then(Value::as_object).ok_or_else(|| GraphError::bad_request("role is required."))?;
    check_keys(role, &["id", "displayName", "description", "originId", "originSystem", "resource"], &[])?;
    let system = string(role, "originSystem")?.ok_or_else(|| GraphError::bad_request("role.originSystem is required."))?;
    let role_origin = string(role, "originId")?.ok_or_else(|| GraphError::bad_request("role.originId is required."))?;
    let scope = body.get("scope").and_then(Value::as_object);
    if let Some(scope) = scope {
        check_keys(scope, &["id", "displayName", "description", "originId", "originSystem", "isRootScope"], &[])?;
        if scope.get("isRootScope").and_then(Value::as_bool) == Some(false) {
            return Err(not_implemented("resource scopes other than the root scope"));
        }
    }
    let view = resource_view(ctx).await?;
    let p = view.package(package_id)?;
    let resource = match system.as_str() {
        AAD_GROUP => {
            let Some(gid) = role_origin.strip_prefix(MEMBER_PREFIX) else {
                return Err(not_implemented(&format!("group role {role_origin:?} (only {MEMBER_PREFIX}<groupId>)")));
            };
            view.group(gid, false)
        }
        AAD_APPLICATION => {
            let sp = role
                .get("resource")
                .and_then(|r| r.get("originId"))
                .or_else(|| scope.and_then(|s| s.get("originId")))
                .and_then(Value::as_str)
                .ok_or_else(|| GraphError::bad_request("role.resource.originId or scope.originId is required."))?;
            view.application(sp, false)
        }
        other => return Err(not_implemented(&format!("access package resources of origin system {other:?}"))),
    };
    let resource = resource.filter(|r| view.catalog_resources().contains(r)).ok_or_else(|| {
        GraphError::bad_request(format!("role {role_origin:?} is not a role of a resource in the package's catalog."))
    })?;
    if resource.role_origin_id() != role_origin {
        return Err(GraphError::bad_request(format!("{role_origin:?} is not a role of resource {}.", resource.origin_id)));
    }
    let (mut groups, mut apps) = (p.value.groups.clone(), p.value.applications.clone());
    let added = match resource.origin_system {
        AAD_GROUP => groups.insert(resource.local_key.clone()),
        _ => apps.insert(resource.local_key.to_ascii_lowercase()),
    };
    if !added {
        return Err(GraphError::conflict(format!("access package {package_id} already has role {role_origin:?}.")));
    }
    let (tenant, pid) = (ctx.tenant().to_string(), package_id.to_string());
    ctx.db(move |dir| dir.ep_set_package_resources(&tenant, &pid, &groups, &apps)).await?;
    let mut created = role_scope_json(&resource, ctx.tenant(), "");
    if let Value::Object(m) = &mut created {
        m.insert(
            "@odata.context".into(),
            json!(ctx.context(req.version, &format!("{BASE}/accessPackages('{package_id}')/resourceRoleScopes/$entity"))),
        );
    }
    Ok(GraphResponse::created(created))
}

pub(crate) async fn delete_role_scope(ctx: &Ctx, package_id: &str, id: &str) -> Result<GraphResponse, GraphError> {
    let view = resource_view(ctx).await?;
    let p = view.package(package_id)?;
    let r = view
        .package_resources(&p.value)
        .into_iter()
        .find(|r| r.role_scope_id(ctx.tenant()) == id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let (mut groups, mut apps) = (p.value.groups.clone(), p.value.applications.clone());
    match r.origin_system {
        AAD_GROUP => groups.retain(|g| !g.eq_ignore_ascii_case(&r.local_key)),
        _ => apps.retain(|a| !a.eq_ignore_ascii_case(&r.local_key)),
    }
    let (tenant, pid) = (ctx.tenant().to_string(), package_id.to_string());
    ctx.db(move |dir| dir.ep_set_package_resources(&tenant, &pid, &groups, &apps)).await?;
    Ok(GraphResponse::no_content())
}

fn service_principal_json(sp: &(String, String, String)) -> Value {
    json!({ "id": sp.0, "appId": sp.1, "displayName": sp.2, "servicePrincipalType": "Application" })
}

/// `GET /servicePrincipals` with `$filter=appId eq '…'` (the only filter modelled), read only.
pub(crate) async fn list_service_principals(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let filter = req.param("filter").unwrap_or_default().trim();
    let app = match filter {
        "" => None,
        f => Some(
            f.strip_prefix("appId eq '")
                .and_then(|r| r.strip_suffix('\''))
                .filter(|a| !a.contains('\''))
                .ok_or_else(|| {
                    GraphError::unsupported_query(format!("the emulator filters service principals by appId eq only, not {f:?}"))
                })?
                .to_string(),
        ),
    };
    let view = resource_view(ctx).await?;
    let value: Vec<Value> = view
        .service_principals
        .iter()
        .filter(|sp| app.as_deref().is_none_or(|a| sp.1.eq_ignore_ascii_case(a)))
        .map(service_principal_json)
        .collect();
    Ok(GraphResponse::ok(json!({ "@odata.context": ctx.context(req.version, "servicePrincipals"), "value": value })))
}

pub(crate) async fn get_service_principal(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let view = resource_view(ctx).await?;
    let sp = view.service_principals.iter().find(|sp| sp.0.eq_ignore_ascii_case(id)).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = service_principal_json(sp);
    if let Value::Object(m) = &mut body {
        m.insert("@odata.context".into(), json!(ctx.context(req.version, "servicePrincipals/$entity")));
    }
    Ok(GraphResponse::ok(body))
}
