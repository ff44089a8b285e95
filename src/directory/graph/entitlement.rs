//! Entitlement management (R16) over Graph (graph-contract 1.9): connected organizations (polymorphic
//! `identitySources`), access packages, their assignment policies (update is PUT) and the settings.
//!
//! Not in the reference subset, so refused with `NotImplemented` rather than skipped: a package's
//! resources (catalog resource role scopes: groups and applications) and policy approvers (which need
//! the approvers' user ids as `singleUser` subject sets).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use crate::core::entitlement::*;
use crate::core::operation::{Operation, Outcome};
use crate::directory::DirectoryError;

pub(crate) const CONNECTED_ORGANIZATIONS: &str = "/identityGovernance/entitlementManagement/connectedOrganizations";
pub(crate) const ACCESS_PACKAGES: &str = "/identityGovernance/entitlementManagement/accessPackages";
pub(crate) const ASSIGNMENT_POLICIES: &str = "/identityGovernance/entitlementManagement/assignmentPolicies";
pub(crate) const SETTINGS: &str = "/identityGovernance/entitlementManagement/settings";

/// Why the Graph backend neither reads nor writes a package's groups and applications.
pub const RESOURCES_NOT_IMPLEMENTED: &str = "access package resources (groups and applications: catalog resources and \
    accessPackage resourceRoleScopes) are outside entente's Graph reference subset (graph-contract 1.9)";
/// Why the Graph backend does not write approvers.
pub const APPROVERS_NOT_IMPLEMENTED: &str = "assignment policy approvers (requestApprovalSettings.stages[].primaryApprovers \
    as singleUser subject sets, which need the approvers' user ids) are not implemented for Graph";

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
                approvers: BTreeSet::new(),
                expiration_seconds,
            });
        }
        let access_packages = packages
            .into_iter()
            .map(|p| {
                let mut policies = by_package.remove(&p.id).unwrap_or_default();
                policies.sort_by(|a, b| a.display_name.cmp(&b.display_name));
                Identified {
                    id: p.id,
                    value: AccessPackage {
                        display_name: p.display_name.unwrap_or_default(),
                        description: p.description.filter(|d| !d.trim().is_empty()),
                        groups: BTreeSet::new(),
                        applications: BTreeSet::new(),
                        policies,
                    },
                }
            })
            .collect();
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
            resources_unsupported: Some(RESOURCES_NOT_IMPLEMENTED.into()),
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
        if package.has_resources() {
            return Err(DirectoryError::NotImplemented(format!(
                "access package {:?}: {RESOURCES_NOT_IMPLEMENTED}",
                package.display_name
            )));
        }
        if let Some(p) = package.policies.iter().find(|p| !p.approvers.is_empty()) {
            return Err(DirectoryError::NotImplemented(format!(
                "access package {:?}, policy {:?}: {APPROVERS_NOT_IMPLEMENTED}",
                package.display_name, p.display_name
            )));
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
                    let created = self.send(Method::POST, ACCESS_PACKAGES, Some(body)).await?;
                    created.as_ref().and_then(|c| c.get("id")).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                        DirectoryError::Invalid("Graph created an access package without returning its id".into())
                    })?
                }
            };
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
                "requestApprovalSettings": { "isApprovalRequiredForAdd": p.approval_required, "isApprovalRequiredForUpdate": false },
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
