//! `snapshot`: a tenant read in a few bulk requests, selecting only what is compared.
//!
//! - external collaboration: `GET /policies/authorizationPolicy` and the beta domain list;
//! - cross-tenant access: `GET …/default`, `GET …/partners` (paged) and each partner's
//!   `identitySynchronization` (one `$batch` per 20 partners);
//! - groups: `GET /groups?$select=id,displayName`, then the members of the groups entente manages
//!   (named in its ownership records), one paged read per group — never one read per user;
//! - users: the first time, `GET /users?$filter=userType eq 'Guest'` (paged, `$top=999`) plus the
//!   managed users that are not of type Guest (invited as `Member`) by id in `$batch`; then
//!   `/users/delta` rounds from the stored delta link. Delta sees every user, so it also finds
//!   Member-type invited users (`creationType eq 'Invitation'`) without advanced queries. A `410 Gone`
//!   or `syncStateNotFound`/`resyncRequired` drops the checkpoint and reads in full again.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::GraphDirectory;
use super::batch::{self, SubRequest};
use super::http::Call;
use super::limiter::Cost;
use super::mapping;
use crate::core::model::{Cloud, Group, Kind, ManagedRecord, TenantIdentity, TenantSnapshot};
use crate::directory::inventory::DeltaCheckpoint;
use crate::directory::{DirectoryError, SnapshotScope};
use crate::graph::wire::{
    self, AuthorizationPolicy, B2bManagementPolicy, CrossTenantAccessPolicyConfigurationDefault,
    CrossTenantAccessPolicyConfigurationPartner, CrossTenantIdentitySyncPolicyPartner, DirectoryObject, Organization, Page,
    USER_SELECT, User, codes, paths,
};

/// Pages followed at most for one collection (a loop guard: 999 × 10,000 users).
const MAX_PAGES: usize = 10_000;

/// Characters left as they are in a query value; everything else is percent-encoded (spaces as `%20`).
fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$,'():@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An OData string literal: single quotes doubled.
pub(super) fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One `/users/delta` round as `delta_pages` followed it.
pub(super) enum DeltaPages {
    Round {
        items: Vec<Value>,
        delta_link: String,
    },
    /// The service dropped the state: read in full.
    Reset,
}

/// Why a delta round could not continue.
enum DeltaRound {
    Users(Vec<User>, DeltaCheckpoint),
    /// The service dropped the state: read in full.
    Reset,
}

impl GraphDirectory {
    /// `root` + `path` + query parameters (encoded).
    pub(super) fn url_at(&self, root: &Url, path: &str, query: &[(&str, &str)]) -> Result<Url, DirectoryError> {
        let mut s = format!("{}{}", root.as_str().trim_end_matches('/'), path);
        for (i, (k, v)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(k);
            s.push('=');
            s.push_str(&encode_query_value(v));
        }
        Url::parse(&s).map_err(|e| DirectoryError::Invalid(format!("bad Graph URL {s}: {e}")))
    }

    pub(super) fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, DirectoryError> {
        self.url_at(&self.v1, path, query)
    }

    /// A GET, charged its documented resource-unit cost.
    pub(super) async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, DirectoryError> {
        let cost = Cost::read(&url);
        self.http.send(&Call::new(Method::GET, url, cost)).await?.json()
    }

    /// Every item of a paged collection, and the delta link when the collection is a delta round.
    pub(super) async fn get_pages<T: DeserializeOwned>(&self, first: Url) -> Result<(Vec<T>, Option<String>), DirectoryError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let page: Page<T> = self.get_json(url).await?;
            items.extend(page.value);
            if let Some(link) = page.next_link {
                next = Some(Url::parse(&link).map_err(|e| DirectoryError::Invalid(format!("bad @odata.nextLink {link}: {e}")))?);
            } else {
                return Ok((items, page.delta_link));
            }
        }
        Err(DirectoryError::Invalid(format!("more than {MAX_PAGES} pages: stopped following @odata.nextLink")))
    }

    /// One `/users/delta` round from `first` (an initial delta URL or a stored delta link): every item
    /// of every page, in order, and the link for the next round. `Reset` when the service dropped the
    /// state (`410 Gone`, `syncStateNotFound`, `resyncRequired`), and, with `bad_link_resets`, when it
    /// refused `first` itself as a bad request (a token it cannot read). `page_size` asks for larger
    /// pages (`Prefer: odata.maxpagesize`; `$top` is not allowed on delta).
    pub(super) async fn delta_pages(
        &self,
        first: Url,
        page_size: Option<u32>,
        bad_link_resets: bool,
    ) -> Result<DeltaPages, DirectoryError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        for page_no in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let cost = Cost::read(&url);
            let mut call = Call::new(Method::GET, url, cost);
            if let Some(n) = page_size {
                call = call.header("Prefer", format!("odata.maxpagesize={n}"));
            }
            let resp = self.http.send(&call).await?;
            if resp.status == 410
                || (resp.status >= 400 && [codes::SYNC_STATE_NOT_FOUND, codes::RESYNC_REQUIRED].contains(&resp.code().as_str()))
                || (bad_link_resets && page_no == 0 && resp.status == 400)
            {
                return Ok(DeltaPages::Reset);
            }
            let page: Page<Value> = resp.json()?;
            items.extend(page.value);
            match (page.next_link, page.delta_link) {
                (Some(link), _) => {
                    next =
                        Some(Url::parse(&link).map_err(|e| DirectoryError::Invalid(format!("bad @odata.nextLink {link}: {e}")))?)
                }
                (None, Some(delta_link)) => return Ok(DeltaPages::Round { items, delta_link }),
                (None, None) => {
                    return Err(DirectoryError::Invalid("a /users/delta round ended without @odata.deltaLink".into()));
                }
            }
        }
        Err(DirectoryError::Invalid(format!("more than {MAX_PAGES} pages: stopped following @odata.nextLink")))
    }

    pub(super) async fn authorization_policy(&self) -> Result<AuthorizationPolicy, DirectoryError> {
        self.get_json(self.url(paths::AUTHORIZATION_POLICY, &[])?).await
    }

    /// The policy root: the Microsoft cloud settings (R14).
    pub(super) async fn cross_tenant_access_policy(&self) -> Result<wire::CrossTenantAccessPolicyRoot, DirectoryError> {
        self.get_json(self.url(paths::CROSS_TENANT_ACCESS_POLICY, &[])?).await
    }

    pub(super) async fn default_configuration(&self) -> Result<CrossTenantAccessPolicyConfigurationDefault, DirectoryError> {
        self.get_json(self.url(paths::CROSS_TENANT_DEFAULT, &[])?).await
    }

    /// The organization's B2B management policy (beta), if it has one.
    pub(super) async fn b2b_management_policy(&self) -> Result<Option<B2bManagementPolicy>, DirectoryError> {
        let url = self.url_at(&self.beta, paths::B2B_MANAGEMENT_POLICIES, &[])?;
        let (policies, _) = self.get_pages::<B2bManagementPolicy>(url).await?;
        let default = policies.iter().position(|p| p.is_organization_default == Some(true)).unwrap_or(0);
        Ok(policies.into_iter().nth(default))
    }

    pub(super) async fn partners(&self) -> Result<Vec<CrossTenantAccessPolicyConfigurationPartner>, DirectoryError> {
        Ok(self.get_pages(self.url(paths::CROSS_TENANT_PARTNERS, &[])?).await?.0)
    }

    /// Identity synchronization of each partner (absent: `None`), in `$batch`es.
    async fn identity_syncs(
        &self,
        partner_ids: &[String],
    ) -> Result<BTreeMap<String, CrossTenantIdentitySyncPolicyPartner>, DirectoryError> {
        let reqs: Vec<SubRequest> =
            partner_ids.iter().map(|id| SubRequest::new(Method::GET, paths::identity_synchronization(id))).collect();
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        let mut out = BTreeMap::new();
        for ((id, req), answer) in partner_ids.iter().zip(&reqs).zip(answers) {
            match answer.status {
                200 => {
                    let sync: CrossTenantIdentitySyncPolicyPartner =
                        serde_json::from_value(answer.body.clone().unwrap_or(Value::Null))
                            .map_err(|e| DirectoryError::Invalid(format!("identity synchronization of partner {id}: {e}")))?;
                    out.insert(id.clone(), sync);
                }
                404 => {}
                _ => return Err(DirectoryError::Graph(Box::new(answer.failure(req)))),
            }
        }
        Ok(out)
    }

    /// The tenant's groups (id and display name), remembered for group operations.
    pub(super) async fn list_groups(&self) -> Result<Vec<wire::Group>, DirectoryError> {
        let top = self.page_size.to_string();
        let url = self.url(paths::GROUPS, &[("$select", "id,displayName"), ("$top", &top)])?;
        let (groups, _) = self.get_pages::<wire::Group>(url).await?;
        *self.groups.lock().unwrap_or_else(|p| p.into_inner()) = Some(groups.clone());
        Ok(groups)
    }

    /// Groups as last read, reading them when they never were.
    pub(super) async fn known_groups(&self) -> Result<Vec<wire::Group>, DirectoryError> {
        let cached = self.groups.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match cached {
            Some(g) => Ok(g),
            None => self.list_groups().await,
        }
    }

    /// The member ids of one group.
    pub(super) async fn group_members(&self, group_id: &str) -> Result<BTreeSet<String>, DirectoryError> {
        let top = self.page_size.to_string();
        let url = self.url(&paths::group_members(group_id), &[("$select", "id"), ("$top", &top)])?;
        let (members, _) = self.get_pages::<DirectoryObject>(url).await?;
        Ok(members.into_iter().map(|m| m.id).collect())
    }

    /// Users whose mail is `mail` (any case): the natural key of a guest (R6).
    pub(super) async fn users_by_mail(&self, mail: &str) -> Result<Vec<User>, DirectoryError> {
        let filter = format!("mail eq {}", odata_string(mail.trim()));
        let url = self.url(paths::USERS, &[("$filter", &filter), ("$select", USER_SELECT)])?;
        let (users, _) = self.get_pages::<User>(url).await?;
        // Match here too: a server that ignored the filter must not make us adopt someone else.
        Ok(users.into_iter().filter(|u| mapping::guest_mail(u).is_some_and(|m| m.eq_ignore_ascii_case(mail.trim()))).collect())
    }

    /// Users by id with these properties (`$batch`, 20 per request); ids that no longer exist are left out.
    pub(super) async fn fetch_users(&self, ids: &[String], select: &str) -> Result<Vec<Value>, DirectoryError> {
        let reqs: Vec<SubRequest> =
            ids.iter().map(|id| SubRequest::new(Method::GET, format!("{}?$select={select}", paths::user(id)))).collect();
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        let mut out = Vec::new();
        for (req, answer) in reqs.iter().zip(answers) {
            match answer.status {
                200 => out.extend(answer.body.filter(Value::is_object)),
                404 => {}
                _ => return Err(DirectoryError::Graph(Box::new(answer.failure(req)))),
            }
        }
        Ok(out)
    }

    /// Sizes the resource-unit limit from the tenant's user count, once (best effort).
    async fn size_tenant(&self) {
        if self.sized.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(url) = self.url("/users/$count", &[]) else { return };
        let cost = Cost::read(&url);
        let call = Call::new(Method::GET, url, cost).header("ConsistencyLevel", "eventual");
        if let Ok(resp) = self.http.send(&call).await
            && resp.is_success()
            && let Some(n) = std::str::from_utf8(&resp.body).ok().and_then(|s| s.trim().parse::<u64>().ok())
        {
            self.http.limiter.set_user_count(n);
        }
    }

    /// Users the snapshot lists: external users, plus the managed ones whatever their type.
    async fn external_users(&self, managed_ids: &BTreeSet<String>) -> Result<Vec<User>, DirectoryError> {
        if self.use_delta
            && let Some(checkpoint) = self.inventory.delta(&self.directory_key, &self.tenant_id)?
        {
            match self.delta_round(&checkpoint, managed_ids).await? {
                DeltaRound::Users(users, next) => {
                    self.inventory.set_delta(&self.directory_key, &self.tenant_id, Some(&next))?;
                    return Ok(users);
                }
                DeltaRound::Reset => {
                    tracing::info!(tenant = %self.tenant_id, "the delta state expired: reading every guest again");
                    self.inventory.set_delta(&self.directory_key, &self.tenant_id, None)?;
                }
            }
        }
        self.full_user_read(managed_ids).await
    }

    /// Guests in full, and (with delta on) a delta link taken *before* the read, so nothing that
    /// changes during it is missed (a change seen twice is harmless).
    async fn full_user_read(&self, managed_ids: &BTreeSet<String>) -> Result<Vec<User>, DirectoryError> {
        let delta_link = if self.use_delta { self.latest_delta_link().await } else { None };
        let top = self.page_size.to_string();
        let url = self.url(paths::USERS, &[("$filter", "userType eq 'Guest'"), ("$select", USER_SELECT), ("$top", &top)])?;
        let (guests, _) = self.get_pages::<Value>(url).await?;
        let mut state: BTreeMap<String, Value> = BTreeMap::new();
        for g in guests {
            if let Some(id) = g.get("id").and_then(Value::as_str) {
                state.insert(id.to_string(), g);
            }
        }
        let missing: Vec<String> = managed_ids.iter().filter(|id| !state.contains_key(*id)).cloned().collect();
        for u in self.fetch_users(&missing, USER_SELECT).await? {
            if let Some(id) = u.get("id").and_then(Value::as_str) {
                state.insert(id.to_string(), u);
            }
        }
        let users = decode_users(&state)?;
        if let Some(link) = delta_link {
            let checkpoint = DeltaCheckpoint { delta_link: link, state: encode_state(&state)? };
            self.inventory.set_delta(&self.directory_key, &self.tenant_id, Some(&checkpoint))?;
        }
        Ok(users)
    }

    /// `GET /users/delta?$select=…&$deltatoken=latest`: a delta link for "from now on". `None` when the
    /// service does not offer one (then every snapshot reads in full).
    async fn latest_delta_link(&self) -> Option<String> {
        let url = self.url(paths::USERS_DELTA, &[("$select", USER_SELECT), ("$deltatoken", "latest")]).ok()?;
        match self.get_pages::<Value>(url).await {
            Ok((_, link)) => link,
            Err(e) => {
                tracing::info!(tenant = %self.tenant_id, error = %e, "no delta link: snapshots read every guest");
                None
            }
        }
    }

    /// Follows the stored delta link and merges what changed into the stored state.
    async fn delta_round(
        &self,
        checkpoint: &DeltaCheckpoint,
        managed_ids: &BTreeSet<String>,
    ) -> Result<DeltaRound, DirectoryError> {
        let Ok(mut state) = serde_json::from_str::<BTreeMap<String, Value>>(&checkpoint.state) else {
            return Ok(DeltaRound::Reset);
        };
        let url = Url::parse(&checkpoint.delta_link)
            .map_err(|e| DirectoryError::Invalid(format!("bad stored delta link {}: {e}", checkpoint.delta_link)))?;
        let (items, delta_link) = match self.delta_pages(url, None, false).await? {
            DeltaPages::Round { items, delta_link } => (items, delta_link),
            DeltaPages::Reset => return Ok(DeltaRound::Reset),
        };
        for item in items {
            let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string) else { continue };
            if item.get("@removed").is_some() {
                state.remove(&id);
                continue;
            }
            merge(state.entry(id).or_insert_with(|| Value::Object(Map::new())), item);
        }
        // Keep only the users the snapshot lists; fetch whole any that a change made relevant but that
        // came with only the changed properties.
        state.retain(|id, v| {
            managed_ids.contains(id) || serde_json::from_value::<User>(v.clone()).is_ok_and(|u| mapping::is_external(&u))
        });
        let partial: Vec<String> = state
            .iter()
            .filter(|(_, v)| v.get("userPrincipalName").is_none() || v.get("userType").is_none())
            .map(|(id, _)| id.clone())
            .collect();
        if !partial.is_empty() {
            for id in &partial {
                state.remove(id);
            }
            for u in self.fetch_users(&partial, USER_SELECT).await? {
                if let Some(id) = u.get("id").and_then(Value::as_str) {
                    state.insert(id.to_string(), u);
                }
            }
        }
        let users = decode_users(&state)?;
        Ok(DeltaRound::Users(users, DeltaCheckpoint { delta_link, state: encode_state(&state)? }))
    }

    /// Who the tenant is (`GET /organization`: display name, initial and verified domains), read once.
    /// Best effort: without `Organization.Read.All` the identity holds only the tenant id and cloud.
    async fn identity(&self) -> TenantIdentity {
        let bare = TenantIdentity {
            tenant_id: self.tenant_id.clone(),
            initial_domain: String::new(),
            display_name: String::new(),
            cloud: cloud_of(&self.directory_key),
            verified_domains: BTreeSet::new(),
        };
        if let Some(known) = self.identity.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return known;
        }
        let Ok(url) = self.url(paths::ORGANIZATION, &[("$select", "id,displayName,verifiedDomains")]) else { return bare };
        let orgs: Page<Organization> = match self.get_json(url).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(tenant = %self.tenant_id, error = %e, "cannot read the organization: the snapshot's identity stays bare");
                return bare;
            }
        };
        let Some(org) = orgs.value.into_iter().find(|o| o.id.eq_ignore_ascii_case(&self.tenant_id)) else { return bare };
        let domain = |d: &wire::VerifiedDomain| d.name.trim().to_ascii_lowercase();
        let initial = org.verified_domains.iter().find(|d| d.is_initial == Some(true)).map(domain).unwrap_or_default();
        let identity = TenantIdentity {
            display_name: org.display_name.unwrap_or_default(),
            verified_domains: org.verified_domains.iter().map(domain).filter(|d| *d != initial).collect(),
            initial_domain: initial,
            ..bare
        };
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.clone());
        identity
    }

    /// The whole snapshot; the members of the groups entente manages or `scope` names.
    pub(super) async fn read_snapshot(&self, scope: &SnapshotScope) -> Result<TenantSnapshot, DirectoryError> {
        self.size_tenant().await;
        let managed = self.inventory.records(&self.directory_key, &self.tenant_id)?;
        let tombstones = self.inventory.tombstones(&self.directory_key, &self.tenant_id)?;
        let managed_ids: BTreeSet<String> =
            managed.iter().filter(|r| r.kind == Kind::GuestInvitation).filter_map(|r| r.external_id.clone()).collect();
        let (authz, (root, default), partners, domain_policy, groups, (users, deleted_guests)) = futures::try_join!(
            self.authorization_policy(),
            async { futures::try_join!(self.cross_tenant_access_policy(), self.default_configuration()) },
            self.partners(),
            self.b2b_management_policy(),
            self.list_groups(),
            async { futures::try_join!(self.external_users(&managed_ids), self.read_deleted_guests()) },
        )?;
        let partner_ids: Vec<String> = partners.iter().map(|p| p.tenant_id.clone()).collect();
        let syncs = self.identity_syncs(&partner_ids).await?;
        let domain_list = match &domain_policy {
            Some(p) => p.domain_list().map_err(|e| {
                DirectoryError::Invalid(format!("the B2B management policy's definition is not the JSON entente expects: {e}"))
            })?,
            None => None,
        };

        // Members of the groups entente manages or the manifests name, one paged read per group.
        let mut managed_names = managed_group_names(&managed);
        managed_names.extend(scope.groups.iter().cloned());
        let mut members = BTreeMap::new();
        for g in groups.iter().filter(|g| g.display_name.as_deref().is_some_and(|n| managed_names.contains(n))) {
            members.insert(g.id.clone(), self.group_members(&g.id).await?);
        }

        let (profile, profile_unsupported) = self.read_profile(&root).await?;
        // Kinds the manifests do not manage and entente holds nothing of are not read at all.
        let reads = |kinds: &[Kind]| kinds.iter().any(|k| scope.reads(*k) || managed.iter().any(|r| r.kind == *k));
        let conditional_access =
            if reads(&[Kind::ConditionalAccessPolicy]) { self.read_conditional_access(&managed).await? } else { None };
        let multi_tenant_organization = if reads(&[Kind::MultiTenantOrganization]) { self.read_mto().await? } else { None };
        let identity_config =
            if reads(&[Kind::IdentityProvider, Kind::SignUpFlow]) { self.read_identity().await? } else { Default::default() };
        let entitlement =
            if reads(&[Kind::ConnectedOrganization, Kind::AccessPackage]) { self.read_entitlement().await? } else { None };
        Ok(TenantSnapshot {
            identity: self.identity().await,
            external_collaboration: mapping::collaboration(&authz, domain_list.as_ref()),
            default_access: mapping::default_access(&default),
            groups: groups
                .iter()
                .filter_map(|g| Some(Group { id: g.id.clone(), display_name: g.display_name.clone()? }))
                .collect(),
            partners: partners.iter().map(|p| mapping::partner(p, syncs.get(&p.tenant_id))).collect(),
            guests: mapping::guests(&users, &members),
            deleted_guests,
            managed,
            tombstones,
            multi_tenant_organization,
            profile,
            unsupported: profile_unsupported.into_iter().chain(super::identity::unsupported()).collect(),
            identity_config,
            entitlement,
            conditional_access,
        })
    }
}

/// The display names of the groups entente manages: those in the views it last applied (the Tenant's
/// declared groups and each invitation's).
fn managed_group_names(records: &[ManagedRecord]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.applied).ok())
        .filter_map(|v| v.get("groups").and_then(Value::as_array).cloned())
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_string))
        .collect()
}

/// Which cloud an endpoint belongs to (national clouds have their own Graph hosts).
fn cloud_of(endpoint: &str) -> Cloud {
    if endpoint.contains("graph.microsoft.us") || endpoint.contains("dod-graph.microsoft.us") {
        Cloud::UsGovernment
    } else if endpoint.contains("microsoftgraph.chinacloudapi.cn") {
        Cloud::China
    } else {
        Cloud::Global
    }
}

/// Merges a delta item into the stored object: properties present in the item replace the stored ones.
fn merge(stored: &mut Value, item: Value) {
    if let (Value::Object(s), Value::Object(i)) = (stored, item) {
        for (k, v) in i {
            s.insert(k, v);
        }
    }
}

fn decode_users(state: &BTreeMap<String, Value>) -> Result<Vec<User>, DirectoryError> {
    state
        .values()
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|e| DirectoryError::Invalid(format!("a user entente cannot read: {e}")))
        })
        .collect()
}

fn encode_state(state: &BTreeMap<String, Value>) -> Result<String, DirectoryError> {
    serde_json::to_string(state).map_err(|e| DirectoryError::Storage(format!("encoding the delta state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_but_odata_stays_readable() {
        assert_eq!(encode_query_value("userType eq 'Guest'"), "userType%20eq%20'Guest'");
        assert_eq!(encode_query_value("a+b@c.com"), "a%2Bb@c.com");
        assert_eq!(encode_query_value("x#y&z"), "x%23y%26z");
        assert_eq!(odata_string("o'brien@x.com"), "'o''brien@x.com'");
    }

    #[test]
    fn managed_groups_come_from_the_applied_views() {
        let rec = |kind, applied: &str| ManagedRecord {
            kind,
            key: "k".into(),
            object: crate::core::model::ObjectRef::new(kind, "ns", "n"),
            external_id: None,
            deletion_policy: crate::core::model::DeletionPolicy::Delete,
            applied: applied.into(),
            redeem_url: None,
        };
        let names = managed_group_names(&[
            rec(Kind::Tenant, r#"{"groups":["A","B"],"externalCollaboration":{}}"#),
            rec(Kind::GuestInvitation, r#"{"groups":["C"],"userType":"Guest"}"#),
            rec(Kind::CrossTenantAccessPolicy, "not json"),
        ]);
        assert_eq!(names, BTreeSet::from(["A".to_string(), "B".to_string(), "C".to_string()]));
    }

    #[test]
    fn delta_items_merge_property_by_property() {
        let mut stored = serde_json::json!({"id": "u", "displayName": "A", "userType": "Guest"});
        merge(&mut stored, serde_json::json!({"id": "u", "displayName": "B"}));
        assert_eq!(stored, serde_json::json!({"id": "u", "displayName": "B", "userType": "Guest"}));
    }
}
