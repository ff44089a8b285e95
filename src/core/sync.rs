//! Cross-tenant synchronization (R13), the pure part: what a `SyncJob` asks for, which source users are
//! in scope, what their user in the target tenant should look like, whether both tenants allow it
//! (R12, R13), and the job's health (Active, Paused, Quarantine).
//!
//! The engine that reads changes and writes users is `crate::sync`; it decides with these functions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{ObjectRef, UserType};
use super::operation::GuestPatch;
use super::policy::TenantPolicy;
use super::settings::IdentitySynchronization;

/// Microsoft's cross-tenant synchronization runs every 40 minutes; so does a job by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(40 * 60);
/// Consecutive failed runs after which a job is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;
/// How many per-user errors a run report keeps (the counts stay exact).
pub const MAX_REPORTED_ERRORS: usize = 10;

/// User properties a mapping may read or write, by their Graph names. `displayName` and `mail` are
/// first-class user properties; the others are profile attributes (`DirectoryUser::attributes`).
pub const SYNCABLE_ATTRIBUTES: &[&str] = &[
    "displayName",
    "mail",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "mobilePhone",
    "usageLocation",
    "preferredLanguage",
];

/// Properties a mapping may read but never write (they identify the source user).
pub const SOURCE_ONLY_ATTRIBUTES: &[&str] = &["userPrincipalName", "id"];

/// What flows when a job names no mappings: display name, given name, surname, mail, job title, department.
pub const DEFAULT_MAPPED: &[&str] = &["displayName", "givenName", "surname", "mail", "jobTitle", "department"];

/// The profile attributes (everything in `SYNCABLE_ATTRIBUTES` except displayName and mail).
pub fn is_profile_attribute(name: &str) -> bool {
    SYNCABLE_ATTRIBUTES.contains(&name) && name != "displayName" && name != "mail"
}

/// One target property and where its value comes from: a source property or a constant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeMapping {
    /// The target user's property, e.g. `jobTitle`.
    pub target: String,
    /// The source user's property it is copied from (default: the same name as `target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A fixed value instead of a source property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
}

impl AttributeMapping {
    pub fn copy(name: &str) -> Self {
        Self { target: name.to_string(), source: None, constant: None }
    }
}

/// How a filter compares a source property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FilterOperator {
    /// The value is one of `values` (case-insensitive).
    In,
    /// The value is absent or none of `values`.
    NotIn,
    /// The property has a value.
    IsPresent,
    /// The property has no value.
    IsAbsent,
}

/// One condition on a source user's property; a user is in scope when all conditions hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeFilter {
    pub attribute: String,
    pub operator: FilterOperator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl AttributeFilter {
    pub fn admits(&self, user: &DirectoryUser) -> bool {
        let value = user.get(&self.attribute).filter(|v| !v.is_empty());
        let listed = || value.is_some_and(|v| self.values.iter().any(|x| x.eq_ignore_ascii_case(v)));
        match self.operator {
            FilterOperator::In => listed(),
            FilterOperator::NotIn => !listed(),
            FilterOperator::IsPresent => value.is_some(),
            FilterOperator::IsAbsent => value.is_none(),
        }
    }
}

/// Which source users a job synchronizes. Only the source tenant's own members are ever in scope:
/// guests and other external users are not passed on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncScope {
    /// Display names of source groups: members of any of them are in scope. Empty: all members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Conditions on source properties, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<AttributeFilter>,
}

/// What happens to the target user of a source user who leaves scope (or is deleted at the source).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LeavingScope {
    /// Delete the target user. Graph keeps deleted users restorable for 30 days (soft delete).
    #[default]
    Delete,
    /// Block the target user's sign-in (`accountEnabled: false`); it is enabled again if the user comes back.
    Disable,
    /// Leave the target user as it is and stop updating it.
    Ignore,
}

/// A `SyncJob` as the manifests ask for it, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredSyncJob {
    pub object: ObjectRef,
    /// Lowercase GUIDs.
    pub source_tenant_id: String,
    pub target_tenant_id: String,
    pub scope: SyncScope,
    /// Never empty: `DEFAULT_MAPPED` when the manifest names none.
    pub mappings: Vec<AttributeMapping>,
    /// The `userType` of users created in the target (Member by default, R13).
    pub user_type: UserType,
    pub interval: Duration,
    pub on_leaving_scope: LeavingScope,
    /// Paused: no run writes anything.
    pub suspended: bool,
    /// Source users (mail, user principal name or id) to provision now, whatever the schedule.
    pub provision_on_demand: Vec<String>,
    /// The MultiTenantOrganization that generated this job; `None` for a SyncJob of the manifests.
    pub generated_by: Option<ObjectRef>,
}

impl DesiredSyncJob {
    /// A job from `source` into `target` with every default a manifest gets: all members in scope, the
    /// default mappings, Member users, every 40 minutes, deleted when they leave scope.
    pub fn new(object: ObjectRef, source_tenant_id: impl Into<String>, target_tenant_id: impl Into<String>) -> Self {
        Self {
            object,
            source_tenant_id: source_tenant_id.into(),
            target_tenant_id: target_tenant_id.into(),
            scope: SyncScope::default(),
            mappings: DEFAULT_MAPPED.iter().map(|n| AttributeMapping::copy(n)).collect(),
            user_type: UserType::Member,
            interval: DEFAULT_INTERVAL,
            on_leaving_scope: LeavingScope::default(),
            suspended: false,
            provision_on_demand: vec![],
            generated_by: None,
        }
    }

    /// Everything that decides the target users' values. When it changes, the next run reads the
    /// source in full (a resync), because users the old settings skipped may now be in scope.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "source": self.source_tenant_id,
            "target": self.target_tenant_id,
            "scope": self.scope,
            "mappings": self.mappings,
            "userType": self.user_type,
            "onLeavingScope": self.on_leaving_scope,
        })
        .to_string()
    }

    /// Whether a source user is in scope. `group_members` holds the ids of the members of the
    /// scope's groups (`None` when the scope names no groups).
    pub fn in_scope(&self, user: &DirectoryUser, group_members: Option<&BTreeSet<String>>) -> bool {
        user.is_internal_member()
            && group_members.is_none_or(|m| m.contains(&user.id))
            && self.scope.filter.iter().all(|f| f.admits(user))
    }

    /// What the user's target user should look like, or why the user cannot be synchronized.
    pub fn map_user(&self, user: &DirectoryUser) -> Result<TargetUser, String> {
        let mut target = TargetUser {
            mail: String::new(),
            display_name: None,
            user_type: self.user_type,
            account_enabled: user.account_enabled,
            attributes: BTreeMap::new(),
        };
        for m in &self.mappings {
            let value = match (&m.constant, &m.source) {
                (Some(c), _) => Some(c.clone()),
                (None, source) => user.get(source.as_deref().unwrap_or(&m.target)).map(str::to_string),
            }
            .filter(|v| !v.trim().is_empty());
            match m.target.as_str() {
                "mail" => target.mail = value.unwrap_or_default(),
                "displayName" => target.display_name = value,
                name => {
                    if let Some(v) = value {
                        target.attributes.insert(name.to_string(), v);
                    }
                }
            }
        }
        if target.mail.is_empty() {
            // The target user is created for an address; without a mapped mail, use the source's.
            target.mail = user.address().unwrap_or_default().to_string();
        }
        if crate::core::validate::email(&target.mail).is_err() {
            return Err(format!("has no usable mail address ({:?}): the target user is created for an address", target.mail));
        }
        Ok(target)
    }
}

/// A user as a directory holds it, with the properties synchronization reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub user_type: UserType,
    /// `Invitation` for invited (external) users; `None` for the tenant's own accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_type: Option<String>,
    pub account_enabled: bool,
    /// Profile attributes by Graph name (`givenName`, `jobTitle`, …); absent means null.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl DirectoryUser {
    /// A property by Graph name.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "id" => Some(&self.id),
            "userPrincipalName" => Some(&self.user_principal_name),
            "mail" => self.mail.as_deref(),
            "displayName" => self.display_name.as_deref(),
            "userType" => Some(self.user_type.as_str()),
            _ => self.attributes.get(name).map(String::as_str),
        }
    }

    /// The tenant's own account: a Member that was not invited from elsewhere.
    pub fn is_internal_member(&self) -> bool {
        self.user_type == UserType::Member
            && self.creation_type.as_deref() != Some("Invitation")
            && !self.user_principal_name.contains("#EXT#")
    }

    /// The address the user is known by: mail, else the user principal name.
    pub fn address(&self) -> Option<&str> {
        self.mail.as_deref().filter(|m| !m.is_empty()).or(Some(self.user_principal_name.as_str())).filter(|a| !a.is_empty())
    }

    /// Whether `key` names this user: its id, mail or user principal name (any case).
    pub fn is_named(&self, key: &str) -> bool {
        let key = key.trim();
        self.id.eq_ignore_ascii_case(key)
            || self.user_principal_name.eq_ignore_ascii_case(key)
            || self.mail.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(key))
    }
}

/// What changed among a tenant's users since a cursor (`Directory::user_changes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// Users created or changed, with their current properties (every user when `full`).
    pub users: Vec<DirectoryUser>,
    /// Ids of users deleted since the cursor.
    pub removed: Vec<String>,
    /// Where the next call continues from (a delta link, a change-feed position).
    pub cursor: String,
    /// Whether this is a full read (no cursor, or the directory dropped it).
    pub full: bool,
}

/// What a source user's target user should look like.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetUser {
    pub mail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl TargetUser {
    /// The patch that turns `applied` (what the last run wrote) into `self`; empty when nothing changed.
    /// An attribute that lost its value is cleared (`None`).
    pub fn patch_from(&self, applied: &TargetUser) -> GuestPatch {
        let mut patch = GuestPatch::default();
        if self.display_name != applied.display_name {
            patch.display_name = self.display_name.clone();
        }
        if self.user_type != applied.user_type {
            patch.user_type = Some(self.user_type);
        }
        if self.account_enabled != applied.account_enabled {
            patch.account_enabled = Some(self.account_enabled);
        }
        if !self.mail.eq_ignore_ascii_case(&applied.mail) {
            patch.mail = Some(self.mail.clone());
        }
        let names: BTreeSet<&String> = self.attributes.keys().chain(applied.attributes.keys()).collect();
        for name in names {
            let (now, before) = (self.attributes.get(name), applied.attributes.get(name));
            if now != before {
                patch.attributes.insert(name.clone(), now.cloned());
            }
        }
        patch
    }
}

/// A setting that must change before a job may write (R12, R13).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingPrerequisite {
    pub rule: &'static str,
    /// The tenant whose setting is missing (its name).
    pub tenant: String,
    /// The setting, as a path in that tenant's manifests.
    pub setting: String,
    pub message: String,
}

impl std::fmt::Display for MissingPrerequisite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.setting, self.rule, self.message)
    }
}

/// R13: the target allows inbound user sync from the source, and automatic redemption (R12) holds both
/// ways: the target's inbound and the source's outbound automatic user consent for each other.
/// `target_sync` is the target's identity synchronization setting for the source partner.
pub fn prerequisites(
    source: &TenantPolicy,
    target: &TenantPolicy,
    target_sync: Option<&IdentitySynchronization>,
) -> Vec<MissingPrerequisite> {
    let (s_id, t_id) = (&source.identity.tenant_id, &target.identity.tenant_id);
    let mut missing = Vec::new();
    if !target_sync.is_some_and(|s| s.user_sync_inbound.is_sync_allowed) {
        missing.push(MissingPrerequisite {
            rule: "R13",
            tenant: target.name().to_string(),
            setting: format!("CrossTenantAccessPolicy for partner {s_id}: identitySynchronization.userSyncInbound.isSyncAllowed"),
            message: format!("tenant {} does not allow inbound user sync from {}", target.name(), source.name()),
        });
    }
    if !target.effective_for(s_id).automatic_user_consent_settings.inbound_allowed {
        missing.push(MissingPrerequisite {
            rule: "R12",
            tenant: target.name().to_string(),
            setting: format!("CrossTenantAccessPolicy for partner {s_id}: automaticUserConsentSettings.inboundAllowed"),
            message: format!("tenant {} does not redeem users of {} automatically", target.name(), source.name()),
        });
    }
    if !source.effective_for(t_id).automatic_user_consent_settings.outbound_allowed {
        missing.push(MissingPrerequisite {
            rule: "R12",
            tenant: source.name().to_string(),
            setting: format!("CrossTenantAccessPolicy for partner {t_id}: automaticUserConsentSettings.outboundAllowed"),
            message: format!("tenant {} does not let its users be redeemed automatically in {}", source.name(), target.name()),
        });
    }
    missing
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SyncJobState {
    #[default]
    Active,
    /// `suspend: true`: nothing runs.
    Paused,
    /// Runs kept failing; it still retries each interval and leaves quarantine on the first good run.
    Quarantine,
}

/// A job's memory of its recent runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHealth {
    pub consecutive_failures: u32,
    /// Why the last run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

impl JobHealth {
    /// After a run: `failure` is why it failed, `None` when it succeeded.
    pub fn after_run(&self, failure: Option<String>) -> JobHealth {
        match failure {
            Some(why) => JobHealth { consecutive_failures: self.consecutive_failures + 1, last_failure: Some(why) },
            None => JobHealth::default(),
        }
    }

    pub fn state(&self, suspended: bool) -> SyncJobState {
        if suspended {
            SyncJobState::Paused
        } else if self.consecutive_failures >= QUARANTINE_AFTER {
            SyncJobState::Quarantine
        } else {
            SyncJobState::Active
        }
    }

    /// The quarantine reason, when quarantined.
    pub fn quarantine_reason(&self) -> Option<String> {
        (self.consecutive_failures >= QUARANTINE_AFTER).then(|| {
            format!(
                "{} consecutive runs failed; last: {}",
                self.consecutive_failures,
                self.last_failure.as_deref().unwrap_or("unknown")
            )
        })
    }
}

/// How many users a run created, updated, … (what `status` shows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncCounts {
    pub created: u64,
    pub updated: u64,
    /// Deleted in the target (left scope with `Delete`, or deleted at the source).
    pub deleted: u64,
    /// Disabled in the target (left scope with `Disable`).
    pub disabled: u64,
    /// In scope and already up to date: nothing to write.
    pub unchanged: u64,
    /// Out of scope, or not synchronizable (no address): nothing to write.
    pub skipped: u64,
    pub failed: u64,
}

impl SyncCounts {
    pub fn writes(&self) -> u64 {
        self.created + self.updated + self.deleted + self.disabled
    }
}

/// One user a run could not synchronize, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncUserError {
    /// The source user's address (or id).
    pub user: String,
    /// A fixed label (`DomainBlocked`, `GraphUnavailable`, `Unmappable`, …).
    pub reason: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::TenantIdentity;
    use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};
    use crate::core::settings::{AutomaticUserConsentSettings, CrossTenantAccessSettings, UserSyncInbound};

    fn member(id: &str, mail: &str) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            user_principal_name: mail.into(),
            mail: Some(mail.into()),
            display_name: Some("Alice".into()),
            user_type: UserType::Member,
            creation_type: None,
            account_enabled: true,
            attributes: [("department".to_string(), "Sales".to_string()), ("jobTitle".to_string(), "Rep".to_string())]
                .into_iter()
                .collect(),
        }
    }

    fn job() -> DesiredSyncJob {
        DesiredSyncJob::new(ObjectRef::new(super::super::model::Kind::SyncJob, "default", "job"), "s", "t")
    }

    #[test]
    fn only_internal_members_matching_every_filter_are_in_scope() {
        let mut j = job();
        let alice = member("1", "alice@contoso.com");
        assert!(j.in_scope(&alice, None));
        let guest = DirectoryUser { creation_type: Some("Invitation".into()), ..member("2", "bob@fabrikam.com") };
        assert!(!j.in_scope(&guest, None), "invited users are never passed on");
        let groups: BTreeSet<String> = ["3".to_string()].into();
        assert!(!j.in_scope(&alice, Some(&groups)), "not in a scope group");
        j.scope.filter.push(AttributeFilter {
            attribute: "department".into(),
            operator: FilterOperator::In,
            values: vec!["sales".into()],
        });
        assert!(j.in_scope(&alice, None), "filter values compare case-insensitively");
        j.scope.filter.push(AttributeFilter {
            attribute: "jobTitle".into(),
            operator: FilterOperator::NotIn,
            values: vec!["Rep".into()],
        });
        assert!(!j.in_scope(&alice, None));
    }

    #[test]
    fn mapping_copies_defaults_and_constants_and_needs_an_address() {
        let mut j = job();
        j.mappings.push(AttributeMapping { target: "companyName".into(), source: None, constant: Some("Contoso".into()) });
        let t = j.map_user(&member("1", "alice@contoso.com")).unwrap();
        assert_eq!(t.mail, "alice@contoso.com");
        assert_eq!(t.display_name.as_deref(), Some("Alice"));
        assert_eq!(t.attributes.get("department").map(String::as_str), Some("Sales"));
        assert_eq!(t.attributes.get("companyName").map(String::as_str), Some("Contoso"));
        assert_eq!(t.user_type, UserType::Member);
        let no_address = DirectoryUser { mail: None, user_principal_name: "not-an-address".into(), ..member("2", "x@y.com") };
        assert!(j.map_user(&no_address).is_err());
    }

    #[test]
    fn a_patch_holds_only_what_changed_and_clears_lost_values() {
        let j = job();
        let before = j.map_user(&member("1", "alice@contoso.com")).unwrap();
        assert!(before.patch_from(&before).is_empty());
        let mut changed = member("1", "alice@contoso.com");
        changed.attributes.insert("jobTitle".into(), "Manager".into());
        changed.attributes.remove("department");
        let patch = j.map_user(&changed).unwrap().patch_from(&before);
        assert_eq!(patch.attributes.get("jobTitle"), Some(&Some("Manager".to_string())));
        assert_eq!(patch.attributes.get("department"), Some(&None));
        assert_eq!(patch.display_name, None);
    }

    fn policy(id: &str, name: &str) -> TenantPolicy {
        TenantPolicy {
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{name}.onmicrosoft.com"),
                display_name: name.into(),
                cloud: Default::default(),
                verified_domains: Default::default(),
            },
            collaboration: ResolvedCollaboration::default(),
            default_access: ResolvedAccess::system_default(),
            partners: Default::default(),
            allowed_clouds: Default::default(),
        }
    }

    #[test]
    fn prerequisites_name_each_missing_setting_and_clear_when_set() {
        let (mut s, mut t) = (policy("s", "contoso"), policy("t", "fabrikam"));
        let missing = prerequisites(&s, &t, None);
        let settings: Vec<&str> = missing.iter().map(|m| m.setting.as_str()).collect();
        assert_eq!(missing.len(), 3, "{settings:?}");
        assert!(settings[0].ends_with("identitySynchronization.userSyncInbound.isSyncAllowed"));
        assert_eq!(missing[0].tenant, "fabrikam.onmicrosoft.com");
        assert_eq!(missing[2].tenant, "contoso.onmicrosoft.com");

        let consent = |inbound, outbound| CrossTenantAccessSettings {
            automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                inbound_allowed: Some(inbound),
                outbound_allowed: Some(outbound),
            }),
            ..Default::default()
        };
        t.partners.insert("s".into(), consent(true, false));
        s.partners.insert("t".into(), consent(false, true));
        let sync = IdentitySynchronization { user_sync_inbound: UserSyncInbound { is_sync_allowed: true } };
        assert_eq!(prerequisites(&s, &t, Some(&sync)), vec![]);
    }

    #[test]
    fn three_failed_runs_quarantine_and_one_good_run_releases() {
        let mut h = JobHealth::default();
        for _ in 0..QUARANTINE_AFTER {
            assert_eq!(h.state(false), SyncJobState::Active);
            h = h.after_run(Some("target unavailable".into()));
        }
        assert_eq!(h.state(false), SyncJobState::Quarantine);
        assert!(h.quarantine_reason().unwrap().contains("target unavailable"));
        assert_eq!(h.state(true), SyncJobState::Paused);
        h = h.after_run(None);
        assert_eq!(h.state(false), SyncJobState::Active);
    }
}
