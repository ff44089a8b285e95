//! The Microsoft Graph backend: the `Directory` contract over Graph v1.0 (beta only for the invitation
//! domain list, `/beta/policies/b2bManagementPolicies`). One `GraphDirectory` serves one tenant with one
//! app registration: its token, its rate limiter, its delta checkpoint.
//!
//! Files: `auth` (client credentials, token cache), `http` (one request with retries and Graph's
//! errors), `limiter` (client-side rate limits), `batch` (`$batch`), `reads` (`snapshot`), `sync` (the
//! reads of cross-tenant sync: `/users/delta` from the caller's cursor, users by id, group members),
//! `writes` (`apply`), `mapping` (Graph payloads → the core's canonical forms).
//!
//! Ownership records live in an `Inventory` beside Graph (see `crate::directory::inventory`): the
//! documented Graph subset has nowhere to keep them.

mod auth;
mod batch;
pub(crate) mod conditional_access;
mod entitlement;
mod http;
mod identity;
mod limiter;
mod mapping;
mod mto;
mod profile;
mod reads;
mod recycle_bin;
mod sync;
mod user_flows;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::core::sync::{DirectoryUser, UserChanges};
use reqwest::Url;

/// The application permissions the Graph backend needs to apply everything it manages, least privilege
/// (docs/permissions.md explains each one). `Organization.Read.All` is optional (tenant identity).
pub const APPLY_PERMISSIONS: &[&str] = &[
    "User.ReadWrite.All",
    "User.Invite.All",
    "GroupMember.ReadWrite.All",
    "Group.Create",
    "Policy.Read.All",
    "Policy.ReadWrite.CrossTenantAccess",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.B2BManagementPolicy",
    "Organization.Read.All",
    "OrganizationalBranding.ReadWrite.All",
    "MultiTenantOrganization.ReadWrite.All",
    "EntitlementManagement.ReadWrite.All",
    "Application.Read.All",
    "IdentityProvider.ReadWrite.All",
    "Policy.ReadWrite.AuthenticationMethod",
    "IdentityUserFlow.ReadWrite.All",
    "APIConnectors.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
];

pub use auth::Credential;
pub use http::{RetryPolicy, parse_retry_after};
pub use limiter::{Limits, TenantSize};

use self::auth::TokenSource;
use self::http::Http;
use self::limiter::RateLimiter;
use super::inventory::Inventory;
use super::{Directory, DirectoryError, SnapshotScope};
use crate::api::tenant::GraphBackend;
use crate::core::model::TenantSnapshot;
use crate::core::operation::{Operation, Outcome};
use crate::graph::wire::{self, DEFAULT_AUTHORITY_HOST, DEFAULT_GRAPH_ENDPOINT};

/// Everything a `GraphDirectory` needs to reach one tenant.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// The tenant (GUID).
    pub tenant_id: String,
    /// Application (client) id of entente's app registration in the tenant.
    pub client_id: String,
    pub credential: Credential,
    /// e.g. `https://login.microsoftonline.com`, `https://login.microsoftonline.us`, or the emulator.
    pub authority_host: String,
    /// e.g. `https://graph.microsoft.com`, `https://graph.microsoft.us`, or the emulator.
    pub graph_endpoint: String,
    /// OAuth scope; default `{graph_endpoint}/.default` for Microsoft's Graph hosts (national clouds have
    /// their own), `https://graph.microsoft.com/.default` for any other endpoint (the emulator).
    pub scope: Option<String>,
    pub retry: RetryPolicy,
    pub limits: Limits,
    /// `$top` of user and member pages (Graph allows up to 999).
    pub page_size: u32,
    /// Follow `/users/delta` between snapshots (keeps a checkpoint in the inventory).
    pub use_delta: bool,
}

impl GraphConfig {
    /// Production defaults for the global cloud.
    pub fn new(tenant_id: &str, client_id: &str, credential: Credential) -> Self {
        Self {
            tenant_id: tenant_id.trim().to_ascii_lowercase(),
            client_id: client_id.trim().to_string(),
            credential,
            authority_host: DEFAULT_AUTHORITY_HOST.into(),
            graph_endpoint: DEFAULT_GRAPH_ENDPOINT.into(),
            scope: None,
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            page_size: 999,
            use_delta: true,
        }
    }

    /// From a Tenant's `spec.backend.graph` and the secret its `SecretSource` gave (none: the federated
    /// token file is used).
    pub fn from_backend(tenant_id: &str, graph: &GraphBackend, client_secret: Option<String>) -> Result<Self, String> {
        if graph.client_id.trim().is_empty() {
            return Err(format!("tenant {tenant_id}: spec.backend.graph.clientId is empty"));
        }
        let credential = match (client_secret, graph.federated_token_file.as_deref()) {
            (Some(secret), _) if !secret.is_empty() => Credential::ClientSecret(secret),
            (_, Some(file)) if !file.trim().is_empty() => Credential::FederatedTokenFile(PathBuf::from(file)),
            _ => {
                return Err(format!(
                    "tenant {tenant_id}: no client secret and no spec.backend.graph.federatedTokenFile to sign in to Graph with"
                ));
            }
        };
        let mut config = Self::new(tenant_id, &graph.client_id, credential);
        if let Some(h) = graph.authority_host.as_deref().filter(|h| !h.trim().is_empty()) {
            config.authority_host = h.trim().to_string();
        }
        if let Some(e) = graph.graph_endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            config.graph_endpoint = e.trim().to_string();
        }
        Ok(config)
    }

    /// Short timeouts and backoffs, no client-side limit: for tests against a local server.
    pub fn for_tests(mut self) -> Self {
        self.retry = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(200),
            max_total: Duration::from_secs(20),
            request_timeout: Duration::from_secs(5),
        };
        self.limits = Limits::unlimited();
        self
    }
}

/// The `Directory` of one Graph tenant.
pub struct GraphDirectory {
    tenant_id: String,
    http: Http,
    /// `{endpoint}/v1.0` and `{endpoint}/beta`.
    v1: Url,
    beta: Url,
    /// How the inventory names this directory: the Graph endpoint.
    directory_key: String,
    inventory: Arc<dyn Inventory>,
    page_size: u32,
    use_delta: bool,
    /// The tenant's groups as last read (display names → ids for group operations).
    groups: Mutex<Option<Vec<wire::Group>>>,
    /// The tenant's identity, once read.
    identity: Mutex<Option<crate::core::model::TenantIdentity>>,
    /// Whether the tenant's size was looked up (it sizes the resource-unit limit).
    sized: std::sync::atomic::AtomicBool,
    /// One change at a time per tenant.
    apply_lock: tokio::sync::Mutex<()>,
}

impl GraphDirectory {
    pub fn new(config: GraphConfig, inventory: Arc<dyn Inventory>) -> Result<Self, DirectoryError> {
        let endpoint = config.graph_endpoint.trim_end_matches('/').to_string();
        let parse = |s: String| Url::parse(&s).map_err(|e| DirectoryError::Invalid(format!("bad URL {s}: {e}")));
        let v1 = parse(format!("{endpoint}/v1.0"))?;
        let beta = parse(format!("{endpoint}/beta"))?;
        let token_url =
            parse(format!("{}{}", config.authority_host.trim_end_matches('/'), wire::paths::token(&config.tenant_id)))?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(config.retry.request_timeout))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("entente/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DirectoryError::Invalid(format!("building the HTTP client: {e}")))?;
        let scope = config.scope.clone().unwrap_or_else(|| default_scope(&endpoint));
        let auth = TokenSource::new(
            client.clone(),
            token_url,
            &config.tenant_id,
            &config.client_id,
            &scope,
            config.credential.clone(),
            config.retry.clone(),
        );
        let origin = v1.origin().ascii_serialization();
        Ok(Self {
            tenant_id: config.tenant_id.clone(),
            http: Http {
                client,
                auth: Arc::new(auth),
                limiter: Arc::new(RateLimiter::new(config.limits.clone())),
                retry: config.retry.clone(),
                origin,
            },
            v1,
            beta,
            directory_key: endpoint,
            inventory,
            page_size: config.page_size.clamp(1, 999),
            use_delta: config.use_delta,
            groups: Mutex::new(None),
            identity: Mutex::new(None),
            sized: std::sync::atomic::AtomicBool::new(false),
            apply_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The tenant this directory serves.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    fn check_tenant(&self, tenant_id: &str) -> Result<(), DirectoryError> {
        if tenant_id.trim().eq_ignore_ascii_case(&self.tenant_id) {
            Ok(())
        } else {
            Err(DirectoryError::Invalid(format!("this Graph backend serves tenant {}, not {tenant_id}", self.tenant_id)))
        }
    }
}

/// Graph hosts of Microsoft's clouds: the token's resource is the host itself.
const MICROSOFT_GRAPH_HOSTS: [&str; 4] =
    ["graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"];

/// The `.default` scope for an endpoint: its own for Microsoft's clouds, global Graph's for anything
/// else (an emulator stands in for Graph, so tokens are asked for Graph).
/// The refusal of a group name several groups of a tenant share: Graph allows it, entente names groups by
/// display name (on Tenants, GuestInvitations and sync scopes), so the name must pick one.
pub(super) fn ambiguous_group(tenant_id: &str, name: &str, groups: &[&wire::Group]) -> DirectoryError {
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    DirectoryError::Invalid(format!(
        "tenant {tenant_id}: {} groups are named {name:?} ({}); entente names groups by display name, so the name \
         must belong to one group: rename or delete the others",
        ids.len(),
        ids.join(", ")
    ))
}

fn default_scope(endpoint: &str) -> String {
    let host = Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host {
        Some(h) if MICROSOFT_GRAPH_HOSTS.contains(&h.as_str()) => format!("https://{h}/.default"),
        _ => format!("{DEFAULT_GRAPH_ENDPOINT}/.default"),
    }
}

#[async_trait]
impl Directory for GraphDirectory {
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError> {
        self.snapshot_of(tenant_id, &SnapshotScope::default()).await
    }

    async fn snapshot_of(&self, tenant_id: &str, scope: &SnapshotScope) -> Result<Option<TenantSnapshot>, DirectoryError> {
        self.check_tenant(tenant_id)?;
        self.read_snapshot(scope).await.map(Some)
    }

    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        self.check_tenant(tenant_id)?;
        let _one_at_a_time = self.apply_lock.lock().await;
        self.apply_ops(ops).await
    }

    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        self.check_tenant(tenant_id)?;
        self.read_user_changes(cursor).await
    }

    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        self.check_tenant(tenant_id)?;
        self.read_users_by_id(ids).await
    }

    async fn group_member_ids(&self, tenant_id: &str, group: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        self.check_tenant(tenant_id)?;
        self.read_group_member_ids(group).await
    }

    async fn group_member_changes(
        &self,
        tenant_id: &str,
        group: &str,
        cursor: Option<&str>,
    ) -> Result<Option<crate::directory::MemberChanges>, DirectoryError> {
        self.check_tenant(tenant_id)?;
        self.read_group_member_changes(group, cursor).await
    }
}

#[cfg(test)]
mod tests;
