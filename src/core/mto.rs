//! Multi-tenant organizations (R15), the pure part: what a `MultiTenantOrganization` asks for, how it
//! expands into partner configurations and sync jobs for every ordered pair of managed members, and
//! the organization as a directory holds it (owner's member list, a member's join request).
//!
//! The planner (`super::plan`, `plan_mto.rs`) plans the organization itself; the generated partner
//! configurations go through the ordinary partner planning and the generated sync jobs to the sync
//! engine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{DeletionPolicy, DesiredPartner, DesiredState, Kind, ObjectRef, UserType};
use super::settings::{AutomaticUserConsentSettings, CrossTenantAccessSettings, IdentitySynchronization, UserSyncInbound};
use super::sync::{AttributeMapping, DEFAULT_INTERVAL, DEFAULT_MAPPED, DesiredSyncJob, LeavingScope, SyncScope};

/// The longest name a generated sync job gets (a DNS label, valid as any Kubernetes name).
pub const MAX_GENERATED_NAME: usize = 63;

// ---------------------------------------------------------------------------------------------
// Observed state

/// A tenant's role in a multi-tenant organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MtoRole {
    Owner,
    Member,
}

impl MtoRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MtoRole::Owner => "owner",
            MtoRole::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(MtoRole::Owner),
            "member" => Some(MtoRole::Member),
            _ => None,
        }
    }
}

/// A member's state: pending until it joins, then active (R15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MtoMemberState {
    Pending,
    Active,
    Removed,
}

impl MtoMemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MtoMemberState::Pending => "pending",
            MtoMemberState::Active => "active",
            MtoMemberState::Removed => "removed",
        }
    }
    /// Unknown values (Graph's `unknownFutureValue`) read as pending.
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => MtoMemberState::Active,
            "removed" => MtoMemberState::Removed,
            _ => MtoMemberState::Pending,
        }
    }
}

/// What a directory holds about the multi-tenant organization of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MtoState {
    /// The organization as this tenant sees it (its owner, or a member that joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<MtoOrganization>,
    /// This tenant's own request to join an organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_request: Option<MtoJoinRequest>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MtoOrganization {
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every member, the owner included (role owner).
    pub members: Vec<MtoMember>,
}

impl MtoOrganization {
    pub fn owner_tenant_id(&self) -> Option<&str> {
        self.members.iter().find(|m| m.role == MtoRole::Owner).map(|m| m.tenant_id.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MtoMember {
    /// Lowercase GUID.
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub role: MtoRole,
    pub state: MtoMemberState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MtoJoinRequest {
    /// The owner whose organization this tenant joins (lowercase GUID).
    pub added_by_tenant_id: String,
    pub member_state: MtoMemberState,
}

// ---------------------------------------------------------------------------------------------
// Desired state

/// One tenant of the organization.
#[derive(Clone, Debug, PartialEq)]
pub struct MtoParticipant {
    /// Lowercase GUID.
    pub tenant_id: String,
    /// The Tenant object when entente manages the tenant; `None` for a tenant that joins by itself.
    pub tenant: Option<ObjectRef>,
    pub display_name: Option<String>,
}

impl MtoParticipant {
    pub fn is_managed(&self) -> bool {
        self.tenant.is_some()
    }
    /// How the participant is named in generated names: its Tenant object's name, else its id.
    fn short_name(&self) -> &str {
        self.tenant.as_ref().map(|t| t.name.as_str()).unwrap_or(&self.tenant_id)
    }
}

/// The SyncJob spec fields a template may set; absent ones take the SyncJob defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncJobTemplate {
    pub scope: Option<SyncScope>,
    pub mappings: Option<Vec<AttributeMapping>>,
    pub user_type: Option<UserType>,
    pub interval: Option<Duration>,
    pub on_leaving_scope: Option<LeavingScope>,
}

impl SyncJobTemplate {
    /// `over`'s fields where set, this template's otherwise.
    pub fn overlay(&self, over: &SyncJobTemplate) -> SyncJobTemplate {
        SyncJobTemplate {
            scope: over.scope.clone().or_else(|| self.scope.clone()),
            mappings: over.mappings.clone().or_else(|| self.mappings.clone()),
            user_type: over.user_type.or(self.user_type),
            interval: over.interval.or(self.interval),
            on_leaving_scope: over.on_leaving_scope.or(self.on_leaving_scope),
        }
    }
}

/// A per-pair exception to the sync job template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncJobOverride {
    /// Source and target tenant ids (lowercase).
    pub from: String,
    pub to: String,
    pub enabled: Option<bool>,
    pub template: SyncJobTemplate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MtoSyncJobs {
    pub enabled: bool,
    pub template: SyncJobTemplate,
    pub overrides: Vec<SyncJobOverride>,
}

impl Default for MtoSyncJobs {
    fn default() -> Self {
        Self { enabled: true, template: SyncJobTemplate::default(), overrides: vec![] }
    }
}

/// A `MultiTenantOrganization` as the manifests ask for it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredMultiTenantOrganization {
    pub object: ObjectRef,
    pub display_name: String,
    pub description: Option<String>,
    /// Always managed.
    pub owner: MtoParticipant,
    /// Besides the owner, in manifest order.
    pub members: Vec<MtoParticipant>,
    /// Extra settings for every generated partner configuration.
    pub partner_settings: CrossTenantAccessSettings,
    pub sync_jobs: MtoSyncJobs,
}

/// What an organization generates besides itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expansion {
    /// (tenant id, partner configuration to put in that tenant).
    pub partners: Vec<(String, DesiredPartner)>,
    pub sync_jobs: Vec<DesiredSyncJob>,
}

impl DesiredMultiTenantOrganization {
    /// The owner, then the members.
    pub fn participants(&self) -> impl Iterator<Item = &MtoParticipant> {
        std::iter::once(&self.owner).chain(self.members.iter())
    }

    /// Participants entente manages (the owner first).
    pub fn managed(&self) -> impl Iterator<Item = &MtoParticipant> {
        self.participants().filter(|p| p.is_managed())
    }

    /// Members entente does not manage: they stay pending until they join by themselves.
    pub fn unmanaged(&self) -> impl Iterator<Item = &MtoParticipant> {
        self.members.iter().filter(|p| !p.is_managed())
    }

    /// The role a tenant has in this organization, if any.
    pub fn role_of(&self, tenant_id: &str) -> Option<MtoRole> {
        if self.owner.tenant_id == tenant_id {
            Some(MtoRole::Owner)
        } else {
            self.members.iter().any(|m| m.tenant_id == tenant_id).then_some(MtoRole::Member)
        }
    }

    /// The partner configuration tenant `a` gets for tenant `b`: automatic redemption both ways and
    /// inbound user sync (R12, R13), marked as in the organization, with `partner_settings` merged in.
    pub fn partner(&self, b: &MtoParticipant) -> DesiredPartner {
        let mut settings = self.partner_settings.clone();
        settings.automatic_user_consent_settings =
            Some(AutomaticUserConsentSettings { inbound_allowed: Some(true), outbound_allowed: Some(true) });
        DesiredPartner {
            object: self.object.clone(),
            partner_tenant_id: b.tenant_id.clone(),
            settings,
            identity_synchronization: Some(IdentitySynchronization {
                user_sync_inbound: UserSyncInbound { is_sync_allowed: true },
            }),
            deletion_policy: DeletionPolicy::Delete,
            is_in_multi_tenant_organization: true,
        }
    }

    /// The sync job from `a` to `b`, or `None` when the template or an override disables it.
    pub fn sync_job(&self, a: &MtoParticipant, b: &MtoParticipant) -> Option<DesiredSyncJob> {
        let over = self.sync_jobs.overrides.iter().find(|o| o.from == a.tenant_id && o.to == b.tenant_id);
        if !over.and_then(|o| o.enabled).unwrap_or(self.sync_jobs.enabled) {
            return None;
        }
        let t = match over {
            Some(o) => self.sync_jobs.template.overlay(&o.template),
            None => self.sync_jobs.template.clone(),
        };
        let mappings = t
            .mappings
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MAPPED.iter().map(|n| AttributeMapping::copy(n)).collect());
        Some(DesiredSyncJob {
            object: ObjectRef::new(
                Kind::SyncJob,
                &self.object.namespace,
                sync_job_name(&self.object.name, a.short_name(), b.short_name()),
            ),
            source_tenant_id: a.tenant_id.clone(),
            target_tenant_id: b.tenant_id.clone(),
            scope: t.scope.unwrap_or_default(),
            mappings,
            user_type: t.user_type.unwrap_or(UserType::Member),
            interval: t.interval.unwrap_or(DEFAULT_INTERVAL),
            on_leaving_scope: t.on_leaving_scope.unwrap_or_default(),
            suspended: false,
            provision_on_demand: vec![],
            generated_by: Some(self.object.clone()),
        })
    }

    /// For every ordered pair (A, B) of managed participants: A's partner configuration for B, and the
    /// sync job from A to B. Unmanaged members get nothing.
    pub fn expand(&self) -> Expansion {
        let managed: Vec<&MtoParticipant> = self.managed().collect();
        let mut out = Expansion::default();
        for a in &managed {
            for b in managed.iter().filter(|b| b.tenant_id != a.tenant_id) {
                out.partners.push((a.tenant_id.clone(), self.partner(b)));
                out.sync_jobs.extend(self.sync_job(a, b));
            }
        }
        out
    }
}

/// `<mto>-<a>-to-<b>`, a valid object name; when longer than `MAX_GENERATED_NAME`, cut and suffixed
/// with a hash of the full name, so it stays unique and the same from run to run.
pub fn sync_job_name(mto: &str, a: &str, b: &str) -> String {
    let full = format!("{mto}-{a}-to-{b}");
    if full.len() <= MAX_GENERATED_NAME {
        return full;
    }
    let hash = Sha256::digest(full.as_bytes());
    let suffix: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep = MAX_GENERATED_NAME - suffix.len() - 1;
    let prefix = full[..keep].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{prefix}-{suffix}")
}

/// A problem found while expanding organizations into the desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtoError {
    pub object: ObjectRef,
    /// Dotted field path within the organization, e.g. `spec.members[1]`.
    pub field: String,
    pub message: String,
}

/// Adds the organizations to the desired state: their generated partner configurations go to the
/// tenants' partners and their sync jobs to `sync_jobs`. A pair some other object already configures
/// (a CrossTenantAccessPolicy, or another organization) is an error naming both, as is a tenant in
/// two organizations; an organization with errors adds nothing.
pub fn expand_into(desired: &mut DesiredState, mtos: Vec<DesiredMultiTenantOrganization>) -> Vec<MtoError> {
    let mut errors = Vec::new();
    let mut membership: BTreeMap<String, ObjectRef> = desired
        .multi_tenant_organizations
        .iter()
        .flat_map(|m| m.participants().map(|p| (p.tenant_id.clone(), m.object.clone())))
        .collect();
    for mto in mtos {
        let mut mine = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in mto.participants().enumerate() {
            let field = if i == 0 { "spec.owner".to_string() } else { format!("spec.members[{}]", i - 1) };
            if !seen.insert(p.tenant_id.clone()) {
                mine.push(MtoError {
                    object: mto.object.clone(),
                    field,
                    message: format!("tenant {} is listed twice in this organization", p.tenant_id),
                });
                continue;
            }
            if let Some(other) = membership.get(&p.tenant_id) {
                mine.push(MtoError {
                    object: mto.object.clone(),
                    field,
                    message: format!(
                        "tenant {} already belongs to {other}; a tenant belongs to at most one multi-tenant organization",
                        p.tenant_id
                    ),
                });
            }
        }
        let expansion = mto.expand();
        for (tenant_id, partner) in &expansion.partners {
            let Some(tenant) = desired.tenants.iter().find(|t| &t.identity.tenant_id == tenant_id) else {
                mine.push(MtoError {
                    object: mto.object.clone(),
                    field: "spec".into(),
                    message: format!("tenant {tenant_id} is not among the Tenants of the manifests"),
                });
                continue;
            };
            if let Some(other) = tenant.partners.iter().find(|p| p.partner_tenant_id == partner.partner_tenant_id) {
                mine.push(MtoError {
                    object: mto.object.clone(),
                    field: "spec.members".into(),
                    message: format!(
                        "{} generates the partner configuration for {} in {}, which {} also configures; \
                         remove one of them",
                        mto.object, partner.partner_tenant_id, tenant.object, other.object
                    ),
                });
            }
        }
        for job in &expansion.sync_jobs {
            let same =
                |j: &&DesiredSyncJob| j.source_tenant_id == job.source_tenant_id && j.target_tenant_id == job.target_tenant_id;
            if let Some(other) = desired.sync_jobs.iter().find(same) {
                mine.push(MtoError {
                    object: mto.object.clone(),
                    field: "spec.syncJobs".into(),
                    message: format!(
                        "{} generates {} from {} to {}, which {} also synchronizes; disable the pair in \
                         spec.syncJobs.overrides or remove the SyncJob",
                        mto.object, job.object, job.source_tenant_id, job.target_tenant_id, other.object
                    ),
                });
            }
        }
        if !mine.is_empty() {
            errors.extend(mine);
            continue;
        }
        for p in mto.participants() {
            membership.insert(p.tenant_id.clone(), mto.object.clone());
        }
        for (tenant_id, partner) in expansion.partners {
            if let Some(t) = desired.tenants.iter_mut().find(|t| t.identity.tenant_id == tenant_id) {
                t.partners.push(partner);
            }
        }
        desired.sync_jobs.extend(expansion.sync_jobs);
        desired.multi_tenant_organizations.push(mto);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{DesiredTenant, DriftPolicy, TenantIdentity};
    use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};
    use crate::core::settings::InboundTrust;

    const A: &str = "00000000-0000-0000-0000-00000000000a";
    const B: &str = "00000000-0000-0000-0000-00000000000b";
    const C: &str = "00000000-0000-0000-0000-00000000000c";
    const X: &str = "00000000-0000-0000-0000-0000000000ff";

    fn managed(id: &str, name: &str) -> MtoParticipant {
        MtoParticipant {
            tenant_id: id.into(),
            tenant: Some(ObjectRef::new(Kind::Tenant, "default", name)),
            display_name: Some(name.into()),
        }
    }

    fn mto(members: Vec<MtoParticipant>) -> DesiredMultiTenantOrganization {
        DesiredMultiTenantOrganization {
            object: ObjectRef::new(Kind::MultiTenantOrganization, "default", "group"),
            display_name: "Group".into(),
            description: None,
            owner: managed(A, "contoso"),
            members,
            partner_settings: CrossTenantAccessSettings::default(),
            sync_jobs: MtoSyncJobs::default(),
        }
    }

    fn tenant(id: &str, name: &str) -> DesiredTenant {
        DesiredTenant {
            object: ObjectRef::new(Kind::Tenant, "default", name),
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{name}.onmicrosoft.com"),
                display_name: name.into(),
                cloud: Default::default(),
                verified_domains: Default::default(),
            },
            drift_policy: DriftPolicy::Correct,
            external_collaboration: ResolvedCollaboration::default(),
            default_access: ResolvedAccess::system_default(),
            groups: Default::default(),
            partners: vec![],
            invitations: vec![],
            profile: Default::default(),
            identity_providers: vec![],
            sign_up_flows: vec![],
        }
    }

    fn unmanaged(id: &str) -> MtoParticipant {
        MtoParticipant { tenant_id: id.into(), tenant: None, display_name: None }
    }

    #[test]
    fn every_ordered_pair_of_managed_members_gets_a_partner_and_a_job() {
        let m = mto(vec![managed(B, "fabrikam"), managed(C, "woodgrove"), unmanaged(X)]);
        let e = m.expand();
        let pairs: BTreeSet<(String, String)> =
            e.partners.iter().map(|(t, p)| (t.clone(), p.partner_tenant_id.clone())).collect();
        assert_eq!(pairs.len(), 6);
        for (a, b) in [(A, B), (A, C), (B, A), (B, C), (C, A), (C, B)] {
            assert!(pairs.contains(&(a.into(), b.into())), "{a} -> {b}");
        }
        assert!(!pairs.iter().any(|(a, b)| a == X || b == X), "nothing for the unmanaged member");
        let (_, p) = &e.partners[0];
        assert!(p.is_in_multi_tenant_organization);
        assert_eq!(p.object, m.object);
        let consent = p.settings.automatic_user_consent_settings.as_ref().unwrap();
        assert_eq!((consent.inbound_allowed, consent.outbound_allowed), (Some(true), Some(true)));
        assert!(p.identity_synchronization.as_ref().unwrap().user_sync_inbound.is_sync_allowed);

        assert_eq!(e.sync_jobs.len(), 6);
        let job = e.sync_jobs.iter().find(|j| j.source_tenant_id == A && j.target_tenant_id == B).unwrap();
        assert_eq!(job.object.to_string(), "SyncJob/default/group-contoso-to-fabrikam");
        assert_eq!(job.generated_by, Some(m.object.clone()));
        assert_eq!(job.user_type, UserType::Member);
        assert_eq!(job.interval, DEFAULT_INTERVAL);
        assert_eq!(job.mappings.len(), DEFAULT_MAPPED.len());
    }

    #[test]
    fn partner_settings_merge_in() {
        let mut m = mto(vec![managed(B, "fabrikam")]);
        m.partner_settings.inbound_trust = Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() });
        let p = m.partner(&m.members[0]);
        assert_eq!(p.settings.inbound_trust.as_ref().unwrap().is_mfa_accepted, Some(true));
        assert!(p.settings.automatic_user_consent_settings.is_some());
    }

    #[test]
    fn template_and_overrides() {
        let mut m = mto(vec![managed(B, "fabrikam"), managed(C, "woodgrove")]);
        m.sync_jobs.template =
            SyncJobTemplate { user_type: Some(UserType::Guest), interval: Some(Duration::from_secs(600)), ..Default::default() };
        m.sync_jobs.overrides = vec![
            SyncJobOverride { from: A.into(), to: B.into(), enabled: Some(false), ..Default::default() },
            SyncJobOverride {
                from: B.into(),
                to: C.into(),
                enabled: None,
                template: SyncJobTemplate { interval: Some(Duration::from_secs(60)), ..Default::default() },
            },
        ];
        let jobs = m.expand().sync_jobs;
        assert_eq!(jobs.len(), 5, "A -> B is disabled");
        assert!(!jobs.iter().any(|j| j.source_tenant_id == A && j.target_tenant_id == B));
        let bc = jobs.iter().find(|j| j.source_tenant_id == B && j.target_tenant_id == C).unwrap();
        assert_eq!(bc.interval, Duration::from_secs(60));
        assert_eq!(bc.user_type, UserType::Guest, "the template's value where the override says nothing");
        let ca = jobs.iter().find(|j| j.source_tenant_id == C && j.target_tenant_id == A).unwrap();
        assert_eq!(ca.interval, Duration::from_secs(600));

        m.sync_jobs.enabled = false;
        m.sync_jobs.overrides = vec![SyncJobOverride { from: C.into(), to: A.into(), enabled: Some(true), ..Default::default() }];
        let jobs = m.expand().sync_jobs;
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].source_tenant_id.as_str(), jobs[0].target_tenant_id.as_str()), (C, A));
    }

    #[test]
    fn unmanaged_members_only() {
        let m = mto(vec![unmanaged(X)]);
        let e = m.expand();
        assert!(e.partners.is_empty() && e.sync_jobs.is_empty());
        assert_eq!(m.unmanaged().count(), 1);
        assert_eq!(m.role_of(X), Some(MtoRole::Member));
        assert_eq!(m.role_of(A), Some(MtoRole::Owner));
        assert_eq!(m.role_of(B), None);
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let long = "a".repeat(40);
        let n1 = sync_job_name(&long, "contoso-holdings-worldwide", "fabrikam");
        let n2 = sync_job_name(&long, "contoso-holdings-worldwide", "fabrikam");
        let n3 = sync_job_name(&long, "contoso-holdings-worldwide", "fabrikam2");
        assert_eq!(n1, n2);
        assert_ne!(n1, n3);
        assert!(n1.len() <= MAX_GENERATED_NAME);
        crate::core::validate::object_name(&n1).unwrap();
        assert_eq!(sync_job_name("g", "a", "b"), "g-a-to-b");
    }

    #[test]
    fn expand_into_adds_partners_and_jobs_and_detects_conflicts() {
        let mut desired = DesiredState { tenants: vec![tenant(A, "contoso"), tenant(B, "fabrikam")], ..Default::default() };
        let errors = expand_into(&mut desired, vec![mto(vec![managed(B, "fabrikam"), unmanaged(X)])]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(desired.tenants[0].partners.len(), 1);
        assert_eq!(desired.tenants[1].partners.len(), 1);
        assert_eq!(desired.sync_jobs.len(), 2);
        assert_eq!(desired.multi_tenant_organizations.len(), 1);

        // A CrossTenantAccessPolicy for the same pair.
        let mut desired = DesiredState { tenants: vec![tenant(A, "contoso"), tenant(B, "fabrikam")], ..Default::default() };
        let policy = ObjectRef::new(Kind::CrossTenantAccessPolicy, "default", "contoso-fabrikam");
        desired.tenants[0].partners.push(DesiredPartner {
            object: policy.clone(),
            partner_tenant_id: B.into(),
            settings: Default::default(),
            identity_synchronization: None,
            deletion_policy: DeletionPolicy::Delete,
            is_in_multi_tenant_organization: false,
        });
        let errors = expand_into(&mut desired, vec![mto(vec![managed(B, "fabrikam")])]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains(&policy.to_string()), "{}", errors[0].message);
        assert!(errors[0].message.contains("MultiTenantOrganization/default/group"), "{}", errors[0].message);
        assert!(desired.sync_jobs.is_empty() && desired.multi_tenant_organizations.is_empty());
        assert_eq!(desired.tenants[1].partners.len(), 0, "nothing is added for an organization with errors");

        // A tenant in two organizations.
        let mut desired = DesiredState {
            tenants: vec![tenant(A, "contoso"), tenant(B, "fabrikam"), tenant(C, "woodgrove")],
            ..Default::default()
        };
        let mut second = mto(vec![managed(B, "fabrikam")]);
        second.object.name = "second".into();
        second.owner = managed(C, "woodgrove");
        let errors = expand_into(&mut desired, vec![mto(vec![managed(B, "fabrikam")]), second]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.members[0]");
        assert!(errors[0].message.contains("already belongs to MultiTenantOrganization/default/group"));
    }
}
