//! Multi-tenant organizations (R15) over Graph (graph-contract 1.7): the owner's organization
//! (`PUT`/`PATCH /tenantRelationships/multiTenantOrganization`), its members (`POST`/`DELETE …/tenants`),
//! and a member's own join (`PATCH …/joinRequest`). A tenant with no organization answers 404 or an
//! empty one: read as none.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use crate::core::mto::{MtoJoinRequest, MtoMember, MtoMemberState, MtoOrganization, MtoRole, MtoState};
use crate::core::operation::{Operation, Outcome};
use crate::directory::DirectoryError;

pub(crate) const MTO: &str = "/tenantRelationships/multiTenantOrganization";
pub(crate) const MTO_TENANTS: &str = "/tenantRelationships/multiTenantOrganization/tenants";
pub(crate) const MTO_JOIN_REQUEST: &str = "/tenantRelationships/multiTenantOrganization/joinRequest";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Organization {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    tenant_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinRequest {
    #[serde(default)]
    added_by_tenant_id: Option<String>,
    #[serde(default)]
    member_state: Option<String>,
}

impl GraphDirectory {
    /// The organization the tenant sees and its own join request; `None` for neither.
    pub(super) async fn read_mto(&self) -> Result<Option<MtoState>, DirectoryError> {
        let url = self.url(MTO, &[])?;
        let resp = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
        if resp.status == 403 {
            // Without MultiTenantOrganization.ReadWrite.All: as if there were none (a plan that needs
            // one then fails at apply, naming the permission).
            tracing::warn!(tenant = %self.tenant_id, "cannot read the multi-tenant organization: {}", resp.error());
            return Ok(None);
        }
        let org: Option<Organization> = match resp.status {
            404 => None,
            _ => Some(resp.json()?).filter(|o: &Organization| o.id.as_deref().is_some_and(|i| !i.is_empty())),
        };
        let organization = match org {
            None => None,
            Some(o) => {
                // An organization holds at most 100 tenants: one page.
                let members = self.get_json::<Page<Member>>(self.url(MTO_TENANTS, &[])?).await?.value;
                let members: Vec<MtoMember> = members
                    .into_iter()
                    .map(|m| MtoMember {
                        tenant_id: m.tenant_id.to_ascii_lowercase(),
                        display_name: m.display_name,
                        role: m.role.as_deref().and_then(MtoRole::parse).unwrap_or(MtoRole::Member),
                        state: MtoMemberState::parse(m.state.as_deref().unwrap_or("pending")),
                    })
                    .filter(|m| m.state != MtoMemberState::Removed)
                    .collect();
                (!members.is_empty()).then(|| MtoOrganization {
                    id: o.id.unwrap_or_default(),
                    display_name: o.display_name.unwrap_or_default(),
                    description: o.description.filter(|d| !d.is_empty()),
                    members,
                })
            }
        };
        let url = self.url(MTO_JOIN_REQUEST, &[])?;
        let resp = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
        let join_request = match resp.status {
            404 => None,
            _ => {
                let j: JoinRequest = resp.json()?;
                let own = self.tenant_id.to_ascii_lowercase();
                j.added_by_tenant_id
                    .map(|t| t.to_ascii_lowercase())
                    .filter(|t| !t.is_empty() && *t != own)
                    .map(|added_by_tenant_id| MtoJoinRequest {
                        added_by_tenant_id,
                        member_state: MtoMemberState::parse(j.member_state.as_deref().unwrap_or("pending")),
                    })
                    .filter(|j| j.member_state != MtoMemberState::Removed)
            }
        };
        if organization.is_none() && join_request.is_none() {
            return Ok(None);
        }
        Ok(Some(MtoState { organization, join_request }))
    }

    pub(super) async fn apply_mto(&self, op: &Operation) -> Result<Outcome, DirectoryError> {
        match op {
            Operation::PutMultiTenantOrganization { display_name, description } => {
                let url = self.url(MTO, &[])?;
                let body = json!({ "displayName": display_name, "description": description });
                let resp = self.http.send(&Call::new(Method::PUT, url, Cost::Write).json(body).idempotent()).await?;
                resp.ok()?;
            }
            Operation::AddMtoMember { tenant_id, display_name, role } => {
                let url = self.url(MTO_TENANTS, &[])?;
                let mut body = json!({ "tenantId": tenant_id, "role": role.as_str() });
                if let Some(d) = display_name {
                    body["displayName"] = json!(d);
                }
                let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).json(body).idempotent()).await?;
                // Already pending or active: 400 "Tenant is already being added" (graph-contract 1.7), or 409.
                if !(resp.is_success() || resp.status == 400 && resp.code() == "Request_BadRequest" || resp.status == 409) {
                    return Err(resp.error());
                }
            }
            Operation::RemoveMtoMember { tenant_id } => {
                let url = self.url(&format!("{MTO_TENANTS}/{}", tenant_id.trim()), &[])?;
                let resp = self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?;
                if !(resp.is_success() || resp.status == 404) {
                    return Err(resp.error());
                }
            }
            Operation::JoinMto { owner_tenant_id } => {
                let url = self.url(MTO_JOIN_REQUEST, &[])?;
                let body = json!({ "addedByTenantId": owner_tenant_id });
                self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body).idempotent()).await?.ok()?;
            }
            Operation::LeaveMto => {
                // Graph documents no DELETE of a join request: the member leaves by removing itself.
                let own = self.tenant_id.to_ascii_lowercase();
                let url = self.url(&format!("{MTO_TENANTS}/{own}"), &[])?;
                let resp = self.http.send(&Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?;
                if !(resp.is_success() || resp.status == 404) {
                    return Err(resp.error());
                }
            }
            other => {
                return Err(DirectoryError::Invalid(format!("{} is not a multi-tenant organization operation", other.name())));
            }
        }
        Ok(Outcome::Done)
    }
}
