//! Entitlement management (R16) over Graph (graph-contract 1.9): connected organizations (polymorphic
//! `identitySources`), access packages, their assignment policies (update is PUT) and the settings.
//!
//! Also, from entente's contract extension (`emulator/contract/entitlement.yaml`, Graph v1.0):
//! - a package's **resources**: groups (by display name, `/groups?$filter=displayName eq …`) and
//!   applications (by application id, `/servicePrincipals?$filter=appId eq …`). Read from the package's
//!   `resourceRoleScopes` (`$expand=role,scope`: a group's `Member_<groupId>` role, an application's role,
//!   mapped back through `/groups/{id}` and `/servicePrincipals/{id}`); written by adding each missing
//!   resource to the package's catalog (`resourceRequests`, `adminAdd`), then a role scope for it, and
//!   deleting the role scopes of groups and applications no longer wanted (other resources are left alone);
//! - policy **approvers**: one approval stage whose primary approvers are `singleUser` subject sets; the
//!   addresses are resolved to user ids (`mail` or `userPrincipalName`) before anything is written, and read
//!   back as the users' mail (else UPN).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::batch::{self, SubRequest};
use super::http::Call;
use super::limiter::Cost;
use super::reads::odata_string;
use crate::core::entitlement::*;
use crate::core::operation::{Operation, Outcome};
use crate::directory::DirectoryError;

pub(crate) const CONNECTED_ORGANIZATIONS: &str = "/identityGovernance/entitlementManagement/connectedOrganizations";
pub(crate) const ACCESS_PACKAGES: &str = "/identityGovernance/entitlementManagement/accessPackages";
pub(crate) const ASSIGNMENT_POLICIES: &str = "/identityGovernance/entitlementManagement/assignmentPolicies";
pub(crate) const SETTINGS: &str = "/identityGovernance/entitlementManagement/settings";
pub(crate) const CATALOGS: &str = "/identityGovernance/entitlementManagement/catalogs";
pub(crate) const RESOURCE_REQUESTS: &str = "/identityGovernance/entitlementManagement/resourceRequests";

const AAD_GROUP: &str = "AadGroup";
const AAD_APPLICATION: &str = "AadApplication";
/// A group's membership role in a catalog: `Member_<groupId>`.
const MEMBER_PREFIX: &str = "Member_";
/// The approval stage's `durationBeforeAutomaticDenial` entente writes (Graph's default, 14 days).
const AUTOMATIC_DENIAL: &str = "P14D";

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Org {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    identity_sources: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    allowed_target_scope: Option<String>,
    #[serde(default)]
    specific_allowed_targets: Vec<Value>,
    #[serde(default)]
    request_approval_settings: Option<Value>,
    #[serde(default)]
    expiration: Option<Value>,
    #[serde(default)]
    access_package: Option<Value>,
}

/// A role, scope or resource of a package's resource role scope or of a catalog resource.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Origin {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    origin_id: Option<String>,
    #[serde(default)]
    origin_system: Option<String>,
    #[serde(default)]
    is_root_scope: Option<bool>,
}

/// A package's groups (display names) and applications (application ids).
type PackageResources = (BTreeSet<String>, BTreeSet<String>);

#[derive(Debug, Default, Deserialize)]
struct RoleScope {
    id: String,
    #[serde(default)]
    role: Option<Origin>,
    #[serde(default)]
    scope: Option<Origin>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogResource {
    id: String,
    #[serde(default)]
    origin_id: Option<String>,
    #[serde(default)]
    origin_system: Option<String>,
    #[serde(default)]
    roles: Vec<Origin>,
    #[serde(default)]
    scopes: Vec<Origin>,
}

/// A group (by id) or an application (by service principal id), as a package resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Wanted {
    system: &'static str,
    origin_id: String,
}

impl RoleScope {
    /// The group or application this role scope gives (a group's Member role, any application role).
    fn resource(&self) -> Option<Wanted> {
        let role = self.role.as_ref()?;
        let scope_origin = self.scope.as_ref().and_then(|s| s.origin_id.clone());
        match role.origin_system.as_deref()? {
            AAD_GROUP => {
                let gid = role.origin_id.as_deref()?.strip_prefix(MEMBER_PREFIX)?.to_string();
                Some(Wanted { system: AAD_GROUP, origin_id: gid })
            }
            AAD_APPLICATION => Some(Wanted { system: AAD_APPLICATION, origin_id: scope_origin? }),
            _ => None,
        }
    }
}

/// The `singleUser` user ids of a policy's approval stages.
fn approver_ids(settings: Option<&Value>) -> Vec<String> {
    let stages = settings.and_then(|s| s.get("stages")).and_then(Value::as_array).cloned().unwrap_or_default();
    stages
        .iter()
        .flat_map(|st| st.get("primaryApprovers").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter(|a| {
            a.get("@odata.type").and_then(Value::as_str).is_none_or(|t| t.trim_start_matches('#') == "microsoft.graph.singleUser")
        })
        .filter_map(|a| a.get("userId").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    #[serde(default)]
    external_user_lifecycle_action: Option<String>,
    #[serde(default)]
    duration_until_external_user_deleted_after_blocked: Option<String>,
}

fn source(v: &Value) -> Option<IdentitySource> {
    let t = v.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_ascii_lowercase);
    match t.trim_start_matches("#microsoft.graph.") {
        "azureActiveDirectoryTenant" => s("tenantId").map(IdentitySource::TenantId),
        "domainIdentitySource" => s("domainName").map(IdentitySource::DomainName),
        _ => None,
    }
}

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

fn org_body(o: &ConnectedOrganization) -> Value {
    json!({
        "displayName": o.display_name,
        "description": o.description,
        "state": o.state.as_str(),
        "identitySources": o.identity_sources.iter().map(source_json).collect::<Vec<_>>(),
    })
}

impl GraphDirectory {
    async fn all_pages<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<Vec<T>>, DirectoryError> {
        let mut url = self.url(path, &[])?;
        let mut out = Vec::new();
        loop {
            let resp = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
            if resp.status == 403 || resp.status == 404 {
                // Without EntitlementManagement.ReadWrite.All (or no entitlement management at all): not
                // read; a plan that needs it then fails at apply, naming the permission.
                tracing::warn!(tenant = %self.tenant_id, "cannot read {path}: {}", resp.error());
                return Ok(None);
            }
            let page: Page<T> = resp.json()?;
            out.extend(page.value);
            match page.next {
                Some(n) => {
                    url = reqwest::Url::parse(&n).map_err(|e| DirectoryError::Invalid(format!("bad nextLink {n}: {e}")))?
                }
                None => return Ok(Some(out)),
            }
        }
    }

    /// Settings, connected organizations, access packages and their policies; `None` when not readable.
    pub(super) async fn read_entitlement(&self) -> Result<Option<EntitlementState>, DirectoryError> {
        let Some(orgs) = self.all_pages::<Org>(CONNECTED_ORGANIZATIONS).await? else { return Ok(None) };
        let Some(packages) = self.all_pages::<Package>(ACCESS_PACKAGES).await? else { return Ok(None) };
        let Some(policies) = self.all_pages::<Policy>(ASSIGNMENT_POLICIES).await? else { return Ok(None) };
        let ids: BTreeSet<String> = policies.iter().flat_map(|p| approver_ids(p.request_approval_settings.as_ref())).collect();
        let addresses = self.addresses(&ids.into_iter().collect::<Vec<_>>()).await?;
        let url = self.url(SETTINGS, &[])?;
        let settings: Settings = self.get_json(url).await?;
        let names: BTreeMap<String, String> =
            orgs.iter().map(|o| (o.id.clone(), o.display_name.clone().unwrap_or_default())).collect();
        let connected_organizations = orgs
            .into_iter()
            .map(|o| Identified {
                id: o.id,
                value: ConnectedOrganization {
                    display_name: o.display_name.unwrap_or_default(),
                    description: o.description.filter(|d| !d.trim().is_empty()),
                    identity_sources: o.identity_sources.iter().filter_map(source).collect(),
                    state: o.state.as_deref().and_then(ConnectedOrganizationState::parse).unwrap_or_default(),
                },
            })
            .collect();
        let mut by_package: BTreeMap<String, Vec<AssignmentPolicy>> = BTreeMap::new();
        for p in policies {
            let Some(pkg) = p.access_package.as_ref().and_then(|a| a.get("id")).and_then(Value::as_str) else { continue };
            let expiration_seconds = p.expiration.as_ref().and_then(|e| {
                (e.get("type").and_then(Value::as_str) == Some("afterDuration"))
                    .then(|| e.get("duration").and_then(Value::as_str).and_then(parse_iso_duration))
                    .flatten()
            });
            by_package.entry(pkg.to_string()).or_default().push(AssignmentPolicy {
                display_name: p.display_name.unwrap_or_default(),
                allowed_target_scope: p
                    .allowed_target_scope
                    .as_deref()
                    .and_then(TargetScope::parse)
                    .unwrap_or(TargetScope::SpecificConnectedOrganizationUsers),
                connected_organizations: p
                    .specific_allowed_targets
                    .iter()
                    .filter_map(|t| t.get("connectedOrganizationId").and_then(Value::as_str))
                    .filter_map(|id| names.get(id).cloned())
                    .collect(),
                approval_required: p
                    .request_approval_settings
                    .as_ref()
                    .and_then(|s| s.get("isApprovalRequiredForAdd"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                approvers: approver_ids(p.request_approval_settings.as_ref())
                    .iter()
                    .filter_map(|id| addresses.get(id).cloned())
                    .collect(),
                expiration_seconds,
            });
        }
        let mut resources = self.read_resources(&packages.iter().map(|p| p.id.clone()).collect::<Vec<_>>()).await?;
        let mut access_packages = Vec::new();
        for p in packages {
            let mut policies = by_package.remove(&p.id).unwrap_or_default();
            policies.sort_by(|a, b| a.display_name.cmp(&b.display_name));
            let (groups, applications) = resources.remove(&p.id).unwrap_or_default();
            access_packages.push(Identified {
                id: p.id,
                value: AccessPackage {
                    display_name: p.display_name.unwrap_or_default(),
                    description: p.description.filter(|d| !d.trim().is_empty()),
                    groups,
                    applications,
                    policies,
                },
            });
        }
        Ok(Some(EntitlementState {
            settings: EntitlementSettings {
                external_user_lifecycle_action: settings
                    .external_user_lifecycle_action
                    .as_deref()
                    .and_then(LifecycleAction::parse)
                    .unwrap_or_default(),
                delete_after_blocked_seconds: settings
                    .duration_until_external_user_deleted_after_blocked
                    .as_deref()
                    .and_then(parse_iso_duration)
                    .unwrap_or(DEFAULT_DELETE_AFTER_SECONDS),
            },
            connected_organizations,
            access_packages,
            assignments: vec![],
        }))
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Option<Value>, DirectoryError> {
        let url = self.url(path, &[])?;
        let mut call = Call::new(method.clone(), url, Cost::Write);
        if let Some(b) = body {
            call = call.json(b);
        }
        if method != Method::POST {
            call = call.idempotent();
        }
        let resp = self.http.send(&call).await?;
        if method == Method::DELETE && resp.status == 404 {
            return Ok(None);
        }
        resp.ok()?;
        if resp.status == 204 { Ok(None) } else { resp.json().map(Some) }
    }

    pub(super) async fn apply_entitlement(&self, op: &Operation) -> Result<Outcome, DirectoryError> {
        match op {
            Operation::SetEntitlementSettings { settings } => {
                let body = json!({
                    "externalUserLifecycleAction": settings.external_user_lifecycle_action.as_str(),
                    "durationUntilExternalUserDeletedAfterBlocked": iso_duration(settings.delete_after_blocked_seconds),
                });
                self.send(Method::PATCH, SETTINGS, Some(body)).await?;
            }
            Operation::PutConnectedOrganization { id, organization } => {
                let existing = match id {
                    Some(id) => Some(id.clone()),
                    None => {
                        self.find_by_name::<Org>(CONNECTED_ORGANIZATIONS, &organization.display_name, |o| {
                            (o.id.clone(), o.display_name.clone())
                        })
                        .await?
                    }
                };
                match existing {
                    Some(id) => {
                        self.send(Method::PATCH, &format!("{CONNECTED_ORGANIZATIONS}/{id}"), Some(org_body(organization)))
                            .await?;
                    }
                    None => {
                        self.send(Method::POST, CONNECTED_ORGANIZATIONS, Some(org_body(organization))).await?;
                    }
                }
            }
            Operation::DeleteConnectedOrganization { id } => {
                self.send(Method::DELETE, &format!("{CONNECTED_ORGANIZATIONS}/{id}"), None).await?;
            }
            Operation::PutAccessPackage { id, package } => self.put_package(id.as_deref(), package).await?,
            Operation::DeleteAccessPackage { id } => {
                // Graph refuses to delete a package with policies: delete them first.
                let policies = self.all_pages::<Policy>(ASSIGNMENT_POLICIES).await?.unwrap_or_default();
                for p in policies.iter().filter(|p| package_id(p) == Some(id.as_str())) {
                    self.send(Method::DELETE, &format!("{ASSIGNMENT_POLICIES}/{}", p.id), None).await?;
                }
                self.send(Method::DELETE, &format!("{ACCESS_PACKAGES}/{id}"), None).await?;
            }
            other => {
                return Err(DirectoryError::Invalid(format!("{} is not an entitlement management operation", other.name())));
            }
        }
        Ok(Outcome::Done)
    }

    async fn find_by_name<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        name: &str,
        key: impl Fn(&T) -> (String, Option<String>),
    ) -> Result<Option<String>, DirectoryError> {
        let all = self.all_pages::<T>(path).await?.unwrap_or_default();
        Ok(all.iter().map(key).find(|(_, n)| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))).map(|(id, _)| id))
    }

    async fn put_package(&self, id: Option<&str>, package: &AccessPackage) -> Result<(), DirectoryError> {
        // Everything a name stands for is resolved before anything is written: a missing group,
        // application or approver fails the change without a half-made package.
        let wanted = self.resolve_resources(package).await?;
        let mut approvers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &package.policies {
            let mut ids = Vec::new();
            for a in &p.approvers {
                ids.push(self.approver_id(a, &package.display_name, &p.display_name).await?);
            }
            approvers.insert(p.display_name.clone(), ids);
        }
        let orgs = self.all_pages::<Org>(CONNECTED_ORGANIZATIONS).await?.unwrap_or_default();
        let org_ids: BTreeMap<String, String> =
            orgs.iter().filter_map(|o| Some((o.display_name.as_deref()?.to_ascii_lowercase(), o.id.clone()))).collect();
        let body = json!({ "displayName": package.display_name, "description": package.description, "isHidden": false });
        let existing = match id {
            Some(id) => Some(id.to_string()),
            None => {
                self.find_by_name::<Package>(ACCESS_PACKAGES, &package.display_name, |p| (p.id.clone(), p.display_name.clone()))
                    .await?
            }
        };
        let package_id =
            match existing {
                Some(id) => {
                    self.send(Method::PATCH, &format!("{ACCESS_PACKAGES}/{id}"), Some(body)).await?;
                    id
                }
                None => {
                    let mut body = body;
                    body["catalog"] = json!({ "id": self.built_in_catalog().await? });
                    let created = self.send(Method::POST, ACCESS_PACKAGES, Some(body)).await?;
                    created.as_ref().and_then(|c| c.get("id")).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                        DirectoryError::Invalid("Graph created an access package without returning its id".into())
                    })?
                }
            };
        self.put_resources(&package_id, &package.display_name, &wanted).await?;
        let current: Vec<Policy> = self
            .all_pages::<Policy>(ASSIGNMENT_POLICIES)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|p| package_id_of(p) == Some(package_id.as_str()))
            .collect();
        for p in &package.policies {
            let mut targets = Vec::new();
            for name in &p.connected_organizations {
                let Some(oid) = org_ids.get(&name.to_ascii_lowercase()) else {
                    return Err(DirectoryError::NotFound(format!("connected organization {name:?}")));
                };
                targets.push(
                    json!({ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": oid }),
                );
            }
            let expiration = match p.expiration_seconds {
                Some(s) => json!({ "type": "afterDuration", "duration": iso_duration(s) }),
                None => json!({ "type": "noExpiration" }),
            };
            let body = json!({
                "displayName": p.display_name,
                "allowedTargetScope": p.allowed_target_scope.as_str(),
                "specificAllowedTargets": targets,
                "requestApprovalSettings": approval_body(p, approvers.get(&p.display_name).map(Vec::as_slice).unwrap_or_default()),
                "expiration": expiration,
                "accessPackage": { "id": package_id },
            });
            match current.iter().find(|c| c.display_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&p.display_name))) {
                Some(c) => {
                    self.send(Method::PUT, &format!("{ASSIGNMENT_POLICIES}/{}", c.id), Some(body)).await?;
                }
                None => {
                    self.send(Method::POST, ASSIGNMENT_POLICIES, Some(body)).await?;
                }
            }
        }
        for c in &current {
            let keep = package
                .policies
                .iter()
                .any(|p| c.display_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&p.display_name)));
            if !keep {
                self.send(Method::DELETE, &format!("{ASSIGNMENT_POLICIES}/{}", c.id), None).await?;
            }
        }
        Ok(())
    }
}

fn package_id(p: &Policy) -> Option<&str> {
    package_id_of(p)
}

fn package_id_of(p: &Policy) -> Option<&str> {
    p.access_package.as_ref().and_then(|a| a.get("id")).and_then(Value::as_str)
}

/// `requestApprovalSettings` of a policy: one stage of `singleUser` primary approvers when it names any.
fn approval_body(p: &AssignmentPolicy, approver_ids: &[String]) -> Value {
    let mut body = json!({ "isApprovalRequiredForAdd": p.approval_required, "isApprovalRequiredForUpdate": false });
    if !approver_ids.is_empty() {
        let primary: Vec<Value> =
            approver_ids.iter().map(|id| json!({ "@odata.type": "#microsoft.graph.singleUser", "userId": id })).collect();
        body["stages"] = json!([{
            "durationBeforeAutomaticDenial": AUTOMATIC_DENIAL,
            "isApproverJustificationRequired": false,
            "isEscalationEnabled": false,
            "primaryApprovers": primary,
        }]);
    }
    body
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
}

impl GraphDirectory {
    /// A GET that answers `None` on 404.
    async fn get_optional<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, DirectoryError> {
        let url = self.url(path, query)?;
        let resp = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        resp.ok()?;
        resp.json().map(Some)
    }

    /// A collection read with a query (`$filter`, `$expand`), every page.
    async fn list<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, DirectoryError> {
        let url = self.url(path, query)?;
        Ok(self.get_pages::<T>(url).await?.0)
    }

    /// A create whose answer may have been lost: Graph's 409 (it exists already) counts as done.
    async fn post_tolerating_conflict(&self, path: &str, body: Value) -> Result<(), DirectoryError> {
        let url = self.url(path, &[])?;
        let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body)).await?;
        if resp.status == 409 {
            tracing::debug!(tenant = %self.tenant_id, "{path}: already there (409)");
            return Ok(());
        }
        resp.ok()
    }

    /// The tenant's built-in catalog ("General", `catalogType: serviceDefault`), where entente creates packages:
    /// Graph requires a catalog to create one in.
    async fn built_in_catalog(&self) -> Result<String, DirectoryError> {
        let catalogs: Vec<Value> = self.list(CATALOGS, &[]).await?;
        let kind = |c: &Value, k: &str, v: &str| c.get(k).and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(v));
        catalogs
            .iter()
            .find(|c| kind(c, "catalogType", "serviceDefault"))
            .or_else(|| catalogs.iter().find(|c| kind(c, "displayName", "General")))
            .and_then(|c| c.get("id").and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| {
                DirectoryError::NotFound(format!(
                    "tenant {} has no built-in access package catalog (catalogType serviceDefault, \"General\")",
                    self.tenant_id
                ))
            })
    }

    /// User id → address (mail, else userPrincipalName; lowercase), for approvers read back.
    async fn addresses(&self, ids: &[String]) -> Result<BTreeMap<String, String>, DirectoryError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let users = self.fetch_users(ids, "id,mail,userPrincipalName").await?;
        Ok(users
            .iter()
            .filter_map(|u| {
                let id = u.get("id")?.as_str()?.to_string();
                let mail = u.get("mail").and_then(Value::as_str).filter(|m| !m.is_empty());
                let address = mail.or_else(|| u.get("userPrincipalName").and_then(Value::as_str))?;
                Some((id, address.to_ascii_lowercase()))
            })
            .collect())
    }

    /// The user id of an approver given by address (`mail` or `userPrincipalName`).
    async fn approver_id(&self, address: &str, package: &str, policy: &str) -> Result<String, DirectoryError> {
        let a = odata_string(address.trim());
        let filter = format!("mail eq {a} or userPrincipalName eq {a}");
        let users: Vec<Value> = self
            .list(crate::graph::wire::paths::USERS, &[("$filter", &filter), ("$select", "id,mail,userPrincipalName")])
            .await?;
        let matches =
            |k: &str, u: &Value| u.get(k).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(address.trim()));
        let user = users.iter().find(|u| matches("mail", u) || matches("userPrincipalName", u));
        // Approvers read back as their mail: naming one by another address would show as drift on every plan.
        if let Some(u) = user
            && let Some(mail) = u.get("mail").and_then(Value::as_str).filter(|m| !m.is_empty())
            && !mail.eq_ignore_ascii_case(address.trim())
        {
            return Err(DirectoryError::Invalid(format!(
                "approver {address} of access package {package:?}, policy {policy:?}: that user's mail is {mail}; name \
                 approvers by their mail (the address Graph reports them by)"
            )));
        }
        user.and_then(|u| u.get("id").and_then(Value::as_str)).map(str::to_string).ok_or_else(|| {
            DirectoryError::NotFound(format!(
                "approver {address} of access package {package:?}, policy {policy:?}: no user with that mail or \
                     userPrincipalName in tenant {}",
                self.tenant_id
            ))
        })
    }

    /// The package's groups (ids) and applications (service principal ids), resolved from their names.
    async fn resolve_resources(&self, package: &AccessPackage) -> Result<BTreeSet<Wanted>, DirectoryError> {
        let mut out = BTreeSet::new();
        for name in &package.groups {
            let filter = format!("displayName eq {}", odata_string(name));
            let groups: Vec<Named> =
                self.list(crate::graph::wire::paths::GROUPS, &[("$filter", &filter), ("$select", "id,displayName")]).await?;
            let g = groups.into_iter().find(|g| g.display_name.as_deref() == Some(name.as_str())).ok_or_else(|| {
                DirectoryError::NotFound(format!(
                    "group {name:?} of access package {:?}: no group with that display name in tenant {}",
                    package.display_name, self.tenant_id
                ))
            })?;
            out.insert(Wanted { system: AAD_GROUP, origin_id: g.id });
        }
        for app in &package.applications {
            let filter = format!("appId eq {}", odata_string(app));
            let sps: Vec<Named> = self.list("/servicePrincipals", &[("$filter", &filter), ("$select", "id,appId")]).await?;
            let sp =
                sps.into_iter().find(|s| s.app_id.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(app))).ok_or_else(|| {
                    DirectoryError::NotFound(format!(
                        "application {app} of access package {:?}: no service principal with that appId in tenant {}",
                        package.display_name, self.tenant_id
                    ))
                })?;
            out.insert(Wanted { system: AAD_APPLICATION, origin_id: sp.id });
        }
        Ok(out)
    }

    async fn role_scopes(&self, package_id: &str) -> Result<Vec<RoleScope>, DirectoryError> {
        self.list(&format!("{ACCESS_PACKAGES}/{package_id}/resourceRoleScopes"), &[("$expand", "role,scope")]).await
    }

    /// Each package's groups (display names) and applications (application ids, lowercase), by package id.
    /// Read in `$batch`: the packages' role scopes, then each group and service principal they name once,
    /// so a tenant with many packages costs a few requests rather than one per package and resource.
    async fn read_resources(&self, package_ids: &[String]) -> Result<BTreeMap<String, PackageResources>, DirectoryError> {
        let reqs: Vec<SubRequest> = package_ids
            .iter()
            .map(|id| SubRequest::new(Method::GET, format!("{ACCESS_PACKAGES}/{id}/resourceRoleScopes?$expand=role,scope")))
            .collect();
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        let mut scopes: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
        for ((id, req), answer) in package_ids.iter().zip(&reqs).zip(answers) {
            let page: Page<RoleScope> = match answer.status {
                200 => serde_json::from_value(answer.body.clone().unwrap_or_default())
                    .map_err(|e| DirectoryError::Invalid(format!("role scopes of access package {id}: {e}")))?,
                404 => continue,
                _ => return Err(DirectoryError::Graph(Box::new(answer.failure(req)))),
            };
            // A package with more role scopes than a page holds is read on its own, following the pages.
            let all = match page.next {
                Some(_) => self.role_scopes(id).await?,
                None => page.value,
            };
            scopes.insert(id.clone(), all.iter().filter_map(RoleScope::resource).collect());
        }
        let wanted: BTreeSet<&Wanted> = scopes.values().flatten().collect();
        let lookups: Vec<(&Wanted, SubRequest)> = wanted
            .iter()
            .map(|w| {
                let url = if w.system == AAD_GROUP {
                    format!("/groups/{}?$select=id,displayName", w.origin_id)
                } else {
                    format!("/servicePrincipals/{}?$select=id,appId", w.origin_id)
                };
                (*w, SubRequest::new(Method::GET, url))
            })
            .collect();
        let reqs: Vec<SubRequest> = lookups.iter().map(|(_, r)| r.clone()).collect();
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        let mut names: BTreeMap<&Wanted, String> = BTreeMap::new();
        for ((w, req), answer) in lookups.iter().zip(answers) {
            match answer.status {
                200 => {
                    let named: Named = serde_json::from_value(answer.body.clone().unwrap_or_default()).unwrap_or_default();
                    let name =
                        if w.system == AAD_GROUP { named.display_name } else { named.app_id.map(|a| a.to_ascii_lowercase()) };
                    names.extend(name.map(|n| (*w, n)));
                }
                // Deleted since it was given: the package no longer gives it.
                404 => {}
                _ => return Err(DirectoryError::Graph(Box::new(answer.failure(req)))),
            }
        }
        Ok(scopes
            .iter()
            .map(|(id, ws)| {
                let mut r = PackageResources::default();
                for w in ws {
                    let Some(name) = names.get(w) else { continue };
                    if w.system == AAD_GROUP {
                        r.0.insert(name.clone())
                    } else {
                        r.1.insert(name.clone())
                    };
                }
                (id.clone(), r)
            })
            .collect())
    }

    /// Makes the package's group and application role scopes exactly `wanted`: missing resources are added
    /// to the package's catalog first; role scopes of groups and applications not wanted are deleted.
    async fn put_resources(&self, package_id: &str, package: &str, wanted: &BTreeSet<Wanted>) -> Result<(), DirectoryError> {
        let current = self.role_scopes(package_id).await?;
        let have: BTreeSet<Wanted> = current.iter().filter_map(RoleScope::resource).collect();
        for rs in current.iter().filter(|rs| rs.resource().is_some_and(|w| !wanted.contains(&w))) {
            self.send(Method::DELETE, &format!("{ACCESS_PACKAGES}/{package_id}/resourceRoleScopes/{}", rs.id), None).await?;
        }
        let missing: Vec<&Wanted> = wanted.iter().filter(|w| !have.contains(w)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let catalog: Named =
            self.get_optional(&format!("{ACCESS_PACKAGES}/{package_id}/catalog"), &[("$select", "id")])
                .await?
                .ok_or_else(|| DirectoryError::NotFound(format!("the catalog of access package {package:?} ({package_id})")))?;
        let resources_path = format!("{CATALOGS}/{}/resources", catalog.id);
        let in_catalog = |rs: &[CatalogResource], w: &Wanted| {
            rs.iter()
                .find(|r| r.origin_system.as_deref() == Some(w.system) && r.origin_id.as_deref() == Some(w.origin_id.as_str()))
                .map(|r| r.id.clone())
        };
        let mut resources: Vec<CatalogResource> = self.list(&resources_path, &[("$expand", "roles,scopes")]).await?;
        let mut requested = false;
        for w in &missing {
            if in_catalog(&resources, w).is_none() {
                let body = json!({
                    "requestType": "adminAdd",
                    "resource": { "originId": w.origin_id, "originSystem": w.system },
                    "catalog": { "id": catalog.id },
                });
                self.post_tolerating_conflict(RESOURCE_REQUESTS, body).await?;
                requested = true;
            }
        }
        if requested {
            resources = self.list(&resources_path, &[("$expand", "roles,scopes")]).await?;
        }
        for w in missing {
            let r = in_catalog(&resources, w).and_then(|id| resources.iter().find(|r| r.id == id)).ok_or_else(|| {
                DirectoryError::Invalid(format!(
                    "access package {package:?}: {} {} is not in catalog {} after it was added",
                    w.system, w.origin_id, catalog.id
                ))
            })?;
            let role = match w.system {
                AAD_GROUP => {
                    let member = format!("{MEMBER_PREFIX}{}", w.origin_id);
                    r.roles.iter().find(|x| x.origin_id.as_deref() == Some(member.as_str()))
                }
                _ => r.roles.first(),
            }
            .ok_or_else(|| {
                DirectoryError::Invalid(format!("access package {package:?}: catalog resource {} has no role to give", r.id))
            })?;
            let scope = r.scopes.iter().find(|s| s.is_root_scope == Some(true)).or(r.scopes.first());
            let body = json!({
                "role": {
                    "id": role.id,
                    "originId": role.origin_id,
                    "originSystem": w.system,
                    "resource": { "id": r.id, "originId": w.origin_id, "originSystem": w.system },
                },
                "scope": {
                    "id": scope.and_then(|s| s.id.clone()),
                    "originId": w.origin_id,
                    "originSystem": w.system,
                    "isRootScope": true,
                },
            });
            self.post_tolerating_conflict(&format!("{ACCESS_PACKAGES}/{package_id}/resourceRoleScopes"), body).await?;
        }
        Ok(())
    }
}
