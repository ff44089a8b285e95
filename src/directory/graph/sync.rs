//! Reads for cross-tenant synchronization (R13): a source tenant's users by `/users/delta`, users by id,
//! and the members of a scope group.
//!
//! - `user_changes(None)`: an initial delta round, `GET /users/delta?$select=…` through every
//!   `@odata.nextLink` to the `@odata.deltaLink`, which is the cursor handed back (`full: true`).
//! - `user_changes(Some(link))`: the stored delta link and its nextLinks; `@removed` items are the
//!   removed ids. Items that came with only their changed properties are read whole by id (`$batch`),
//!   so the cost follows the number of changes. `410 Gone`, `syncStateNotFound`/`resyncRequired`, a
//!   link the service cannot read (400) or a link that is not a `/users/delta` link of the configured
//!   endpoint (never followed: the token stays home) start an initial round instead (`full: true`).
//!
//! The cursor is the caller's: the snapshot's own delta checkpoint (in the inventory) is not touched.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Url;
use serde_json::Value;

use super::GraphDirectory;
use super::mapping;
use super::reads::{DeltaPages, odata_string};
use crate::core::sync::{DirectoryUser, UserChanges};
use crate::directory::{DirectoryError, MemberChanges};
use crate::graph::wire::{self, paths};

/// Initial rounds tried when the service drops the state during the initial round itself.
const INITIAL_TRIES: usize = 3;

/// What one delta item says about a user.
enum Change {
    /// The user as the item carried it (possibly only the changed properties).
    Changed(Value),
    Removed,
}

impl GraphDirectory {
    /// `Directory::user_changes` for Graph.
    pub(super) async fn read_user_changes(&self, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        if let Some(link) = cursor {
            match self.stored_delta_link(link) {
                Some(url) => match self.delta_pages(url, Some(self.page_size), true).await? {
                    DeltaPages::Round { items, delta_link } => return self.changes(items, delta_link, false).await,
                    DeltaPages::Reset => {
                        tracing::info!(tenant = %self.tenant_id, "the sync delta state expired: reading every user again");
                    }
                },
                None => {
                    tracing::warn!(tenant = %self.tenant_id, "a sync cursor that is not a /users/delta link of this endpoint: reading every user again");
                }
            }
        }
        for _ in 0..INITIAL_TRIES {
            let first = self.url(paths::USERS_DELTA, &[("$select", &mapping::sync_user_select())])?;
            match self.delta_pages(first, Some(self.page_size), false).await? {
                DeltaPages::Round { items, delta_link } => return self.changes(items, delta_link, true).await,
                DeltaPages::Reset => {
                    tracing::info!(tenant = %self.tenant_id, "the delta state was reset during an initial round: starting over");
                }
            }
        }
        Err(DirectoryError::Invalid(format!(
            "tenant {}: /users/delta kept dropping its state during {INITIAL_TRIES} initial rounds",
            self.tenant_id
        )))
    }

    /// A stored delta link, if it is one this backend may follow: on the configured endpoint's version
    /// root, at `/users/delta`.
    fn stored_delta_link(&self, link: &str) -> Option<Url> {
        let url = Url::parse(link.trim()).ok()?;
        let delta = self.url(paths::USERS_DELTA, &[]).ok()?;
        let path = url.path().trim_end_matches("()");
        (url.origin() == self.v1.origin() && path.eq_ignore_ascii_case(delta.path())).then_some(url)
    }

    /// A round's items as `UserChanges`: the last item per user wins; partial items are read whole.
    async fn changes(&self, items: Vec<Value>, cursor: String, full: bool) -> Result<UserChanges, DirectoryError> {
        let mut latest: BTreeMap<String, Change> = BTreeMap::new();
        for item in items {
            let Some(id) = item.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_string) else {
                continue;
            };
            let change = if item.get("@removed").is_some() { Change::Removed } else { Change::Changed(item) };
            latest.insert(id, change);
        }
        let mut removed = Vec::new();
        let mut whole = BTreeMap::new();
        let mut partial = Vec::new();
        for (id, change) in latest {
            match change {
                Change::Removed => removed.push(id),
                Change::Changed(v) if mapping::is_whole_sync_user(&v) => {
                    whole.insert(id, v);
                }
                Change::Changed(_) => partial.push(id),
            }
        }
        if !partial.is_empty() {
            let found = self.fetch_users(&partial, &mapping::sync_user_select()).await?;
            let found_ids: BTreeSet<String> =
                found.iter().filter_map(|u| u.get("id").and_then(Value::as_str).map(str::to_string)).collect();
            for u in found {
                if let Some(id) = u.get("id").and_then(Value::as_str) {
                    whole.insert(id.to_string(), u);
                }
            }
            // Changed, then deleted before we could read it.
            removed.extend(partial.into_iter().filter(|id| !found_ids.contains(id)));
            removed.sort();
        }
        let users = whole.values().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(UserChanges { users, removed, cursor, full })
    }

    /// `Directory::users_by_id` for Graph: `$batch` of `GET /users/{id}`, 20 per request.
    pub(super) async fn read_users_by_id(&self, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let mut seen = BTreeSet::new();
        let ids: Vec<String> =
            ids.iter().map(|id| id.trim().to_string()).filter(|id| !id.is_empty() && seen.insert(id.clone())).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = ids.iter().find(|id| !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
            return Err(DirectoryError::Invalid(format!("{bad:?} is not a user id")));
        }
        self.fetch_users(&ids, &mapping::sync_user_select()).await?.iter().map(decode).collect()
    }

    /// `Directory::group_member_ids` for Graph: the group with this display name (`$filter`), then its
    /// members (paged). A name several groups share is an error (`groups_named`).
    pub(super) async fn read_group_member_ids(&self, display_name: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        let groups = self.groups_named(display_name).await?;
        let Some(group) = groups.first() else { return Ok(None) };
        Ok(Some(self.group_members(&group.id).await?))
    }
}

/// `/groups/delta`, which the wire paths do not list.
const GROUPS_DELTA: &str = "/groups/delta";

impl GraphDirectory {
    /// `Directory::group_member_changes` for Graph: `GET /groups/delta?$filter=id eq '{id}'&$select=
    /// displayName,members`, whose `members@delta` lists the members added (and, in later rounds, the
    /// removed ones with `@removed`), paged through `@odata.nextLink` (the same group may come back on
    /// several pages, each with a part of the members) to the `@odata.deltaLink`, which is the cursor.
    ///
    /// With a cursor: one request when nothing changed. The group reported deleted (`@removed`) or
    /// under another display name, a 410 / `syncStateNotFound` / `resyncRequired` (the link expired:
    /// Graph's directory delta tokens last 7 days) or a link that is not a `/groups/delta` link of this
    /// endpoint read the membership in full again (`full: true`): the group with this display name
    /// (one `$filter` request; a name several groups share is an error), then an initial delta round.
    pub(super) async fn read_group_member_changes(
        &self,
        display_name: &str,
        cursor: Option<&str>,
    ) -> Result<Option<MemberChanges>, DirectoryError> {
        if let Some(link) = cursor {
            match self.stored_link(link, GROUPS_DELTA) {
                Some(url) => match self.delta_pages(url, Some(self.page_size), true).await? {
                    DeltaPages::Round { items, delta_link } => match member_delta(&items, display_name) {
                        Some((added, removed)) => {
                            return Ok(Some(MemberChanges { added, removed, cursor: Some(delta_link), full: false }));
                        }
                        None => {
                            tracing::info!(tenant = %self.tenant_id, group = display_name, "a scope group was deleted or renamed: reading it by name again");
                        }
                    },
                    DeltaPages::Reset => {
                        tracing::info!(tenant = %self.tenant_id, group = display_name, "the membership delta state expired: reading the group's members again");
                    }
                },
                None => {
                    tracing::warn!(tenant = %self.tenant_id, "a membership cursor that is not a /groups/delta link of this endpoint: reading the group's members again");
                }
            }
        }
        let groups = self.groups_named(display_name).await?;
        let Some(group) = groups.first() else { return Ok(None) };
        let filter = format!("id eq {}", odata_string(&group.id));
        for _ in 0..INITIAL_TRIES {
            let first = self.url(GROUPS_DELTA, &[("$filter", &filter), ("$select", "displayName,members")])?;
            match self.delta_pages(first, Some(self.page_size), false).await? {
                DeltaPages::Round { items, delta_link } => {
                    let (added, _) = member_delta(&items, display_name).unwrap_or_default();
                    return Ok(Some(MemberChanges { added, removed: BTreeSet::new(), cursor: Some(delta_link), full: true }));
                }
                DeltaPages::Reset => {
                    tracing::info!(tenant = %self.tenant_id, "the delta state was reset during an initial round: starting over");
                }
            }
        }
        Err(DirectoryError::Invalid(format!(
            "tenant {}: /groups/delta kept dropping its state during {INITIAL_TRIES} initial rounds",
            self.tenant_id
        )))
    }

    /// The group with this display name (`$filter`; none or one), matched here too: a server that ignored
    /// the filter must not widen the scope. Graph allows several groups with one name; a sync scope that
    /// names one of those is refused rather than read as their union.
    async fn groups_named(&self, display_name: &str) -> Result<Vec<wire::Group>, DirectoryError> {
        let filter = format!("displayName eq {}", odata_string(display_name));
        let top = self.page_size.to_string();
        let url = self.url(paths::GROUPS, &[("$filter", &filter), ("$select", "id,displayName"), ("$top", &top)])?;
        let (groups, _) = self.get_pages::<wire::Group>(url).await?;
        let named: Vec<wire::Group> =
            groups.into_iter().filter(|g| g.display_name.as_deref() == Some(display_name) && !g.id.is_empty()).collect();
        if named.len() > 1 {
            return Err(super::ambiguous_group(&self.tenant_id, display_name, &named.iter().collect::<Vec<_>>()));
        }
        Ok(named)
    }

    /// A stored delta link, if it is one this backend may follow: on the configured endpoint's
    /// version root, at `path`.
    fn stored_link(&self, link: &str, path: &str) -> Option<Url> {
        let url = Url::parse(link.trim()).ok()?;
        let delta = self.url(path, &[]).ok()?;
        let p = url.path().trim_end_matches("()");
        (url.origin() == self.v1.origin() && p.eq_ignore_ascii_case(delta.path())).then_some(url)
    }
}

/// The members a `/groups/delta` round added and removed, items in order (the last word on a member
/// wins; a group may come back on several pages). `None` when a group was deleted (`@removed`) or
/// reported under another display name.
fn member_delta(items: &[Value], display_name: &str) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let mut added = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for item in items {
        if item.get("@removed").is_some() {
            return None;
        }
        if item.get("displayName").and_then(Value::as_str).is_some_and(|n| n != display_name) {
            return None;
        }
        for m in item.get("members@delta").and_then(Value::as_array).into_iter().flatten() {
            let Some(id) = m.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) else { continue };
            if m.get("@removed").is_some() {
                added.remove(id);
                removed.insert(id.to_string());
            } else {
                removed.remove(id);
                added.insert(id.to_string());
            }
        }
    }
    Some((added, removed))
}

fn decode(v: &Value) -> Result<DirectoryUser, DirectoryError> {
    mapping::directory_user(v).ok_or_else(|| DirectoryError::Invalid(format!("a user without an id: {v}")))
}
