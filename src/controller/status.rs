//! What the controller concluded about each object, and the status that says it. Pure: the reconcile
//! decides a `Verdict` per object, these functions turn it into conditions and status values that
//! tests compare, and the reconcile patches a status only when it differs from the one the object has.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::common::CommonStatus;
use crate::api::guest_invitation::GuestInvitationStatus;
use crate::core::model::{GuestUser, RedemptionState};
use crate::core::operation::InvitationResult;

/// Condition reasons: a fixed set, used for conditions, event reasons and metric labels (STYLE 5).
pub mod reason {
    pub const RECONCILED: &str = "Reconciled";
    pub const SYNCED: &str = "Synced";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const CROSS_NAMESPACE_REF_DENIED: &str = "CrossNamespaceRefDenied";
    pub const DUPLICATE_TENANT_ID: &str = "DuplicateTenantId";
    pub const TENANT_NOT_READY: &str = "TenantNotReady";
    pub const TENANT_NOT_FOUND: &str = "TenantNotFound";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const DIRECTORY_UNAVAILABLE: &str = "DirectoryUnavailable";
    pub const DIRECTORY_ERROR: &str = "DirectoryError";
    pub const DEPENDENCY_FAILED: &str = "DependencyFailed";
    pub const DELETING: &str = "Deleting";
    pub const INVITED: &str = "Invited";
    pub const NOT_INVITED: &str = "NotInvited";
    pub const ACCEPTED: &str = "Accepted";
    pub const PENDING_ACCEPTANCE: &str = "PendingAcceptance";
    pub const DOMAIN_BLOCKED: &str = "DomainBlocked";
    pub const INVITATIONS_DISABLED: &str = "InvitationsDisabled";
    pub const CROSS_TENANT_ACCESS_BLOCKED: &str = "CrossTenantAccessBlocked";
    // SyncJobs (conditions and events).
    pub const PREREQUISITES_MISSING: &str = "PrerequisitesMissing";
    pub const PREREQUISITES_RESTORED: &str = "PrerequisitesRestored";
    pub const QUARANTINED: &str = "Quarantined";
    pub const QUARANTINE_LIFTED: &str = "QuarantineLifted";
    pub const RUN_FAILED: &str = "RunFailed";
    pub const PAUSED: &str = "Paused";
    pub const PENDING: &str = "Pending";
}

/// Condition types.
pub mod kind {
    pub const READY: &str = "Ready";
    pub const SYNCED: &str = "Synced";
    /// Present (True) only when nothing changes without an edit of the object: kstatus reads it as Failed.
    pub const STALLED: &str = "Stalled";
    pub const INVITED: &str = "Invited";
    pub const REDEEMED: &str = "Redeemed";
}

/// A directory error category (open-ended strings in `ChangeResult::Failed`) as one of a fixed set.
pub fn failure_reason(category: &str) -> &'static str {
    const KNOWN: [&str; 12] = [
        "TenantNotFound",
        "NotFound",
        "Conflict",
        "Invalid",
        "Storage",
        "NotImplemented",
        "NoDirectory",
        "Graph",
        "Transport",
        "Auth",
        "Throttled",
        "Timeout",
    ];
    KNOWN.into_iter().find(|k| *k == category).unwrap_or(reason::DIRECTORY_ERROR)
}

/// A refusal reason (R3–R5, R9) as a condition reason.
pub fn refusal_reason(r: crate::core::policy::RefusalReason) -> &'static str {
    r.as_str()
}

/// What the controller concluded about one object in one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The directory holds what the object asks for.
    InSync,
    /// The directory differs by a change made outside entente; the tenant's drift policy only reports it.
    Drift(String),
    /// A product rule refuses it (an invitation the tenant's settings do not allow); nothing was written.
    Refused { reason: &'static str, message: String },
    /// The spec is invalid; the message names the field. The object is left out until it is fixed.
    Invalid { reason: &'static str, message: String },
    /// The object refers to a Tenant in another namespace that does not allow this one.
    Denied(String),
    /// The Tenant the object belongs to is invalid or cannot be used yet.
    TenantNotReady(String),
    /// The Tenant the object names does not exist.
    TenantNotFound(String),
    /// Something that may pass on a retry: the directory, a missing Secret, a failed dependency.
    Failed { reason: &'static str, message: String },
    /// Being deleted; what is left to do.
    Deleting(String),
}

impl Verdict {
    pub fn ready(&self) -> bool {
        matches!(self, Verdict::InSync)
    }
    /// Whether the last sync did what the spec and the policies ask (drift that is only reported counts).
    pub fn synced(&self) -> bool {
        matches!(self, Verdict::InSync | Verdict::Drift(_))
    }
    /// Whether only an edit of the object (or of its Tenant) can change the outcome.
    pub fn stalled(&self) -> bool {
        matches!(self, Verdict::Refused { .. } | Verdict::Invalid { .. } | Verdict::Denied(_) | Verdict::TenantNotFound(_))
    }
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::InSync => reason::RECONCILED,
            Verdict::Drift(_) => reason::DRIFT_DETECTED,
            Verdict::Refused { reason, .. } | Verdict::Invalid { reason, .. } | Verdict::Failed { reason, .. } => reason,
            Verdict::Denied(_) => reason::CROSS_NAMESPACE_REF_DENIED,
            Verdict::TenantNotReady(_) => reason::TENANT_NOT_READY,
            Verdict::TenantNotFound(_) => reason::TENANT_NOT_FOUND,
            Verdict::Deleting(_) => reason::DELETING,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Verdict::InSync => "the directory matches the spec".into(),
            Verdict::Drift(m)
            | Verdict::Denied(m)
            | Verdict::TenantNotReady(m)
            | Verdict::TenantNotFound(m)
            | Verdict::Deleting(m)
            | Verdict::Refused { message: m, .. }
            | Verdict::Invalid { message: m, .. }
            | Verdict::Failed { message: m, .. } => m.clone(),
        }
    }
    /// The metric label for this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::InSync => "ready",
            Verdict::Drift(_) => "drift",
            Verdict::Refused { .. } => "refused",
            Verdict::Invalid { .. } => "invalid",
            Verdict::Denied(_) => "denied",
            Verdict::TenantNotReady(_) | Verdict::TenantNotFound(_) => "blocked",
            Verdict::Failed { .. } => "failed",
            Verdict::Deleting(_) => "deleting",
        }
    }
}

/// A condition to set: type, status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Cond {
    pub fn new(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status, reason, message: message.into() }
    }
}

/// `Ready`, `Synced` (and `Stalled` when it holds) for a verdict, then the kind-specific ones.
pub fn verdict_conditions(verdict: &Verdict, extra: Vec<Cond>) -> Vec<Cond> {
    let message = verdict.message();
    let mut out = vec![Cond::new(kind::READY, verdict.ready(), verdict.reason(), message.clone())];
    out.push(if verdict.synced() {
        Cond::new(kind::SYNCED, true, reason::SYNCED, "the last reconcile applied the spec")
    } else {
        Cond::new(kind::SYNCED, false, verdict.reason(), message.clone())
    });
    if verdict.stalled() {
        out.push(Cond::new(kind::STALLED, true, verdict.reason(), message));
    }
    out.extend(extra);
    out
}

/// Kubernetes conditions from `conds`. A condition whose status did not change keeps its
/// `lastTransitionTime`, so an unchanged object gets an identical status (and no patch).
pub fn conditions(conds: &[Cond], generation: Option<i64>, previous: &[Condition], now: &Time) -> Vec<Condition> {
    conds
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                reason: c.reason.to_string(),
                message: c.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

pub fn common(conds: &[Cond], generation: Option<i64>, previous: Option<&CommonStatus>, now: &Time) -> CommonStatus {
    let previous = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    CommonStatus { observed_generation: generation, conditions: conditions(conds, generation, previous, now) }
}

/// The `Ready` condition's (status, reason) before and after, when it changed: an Event is due.
pub fn ready_transition<'a>(previous: &'a [Condition], next: &'a [Condition]) -> Option<&'a Condition> {
    let find = |cs: &'a [Condition]| cs.iter().find(|c| c.type_ == kind::READY);
    let next = find(next)?;
    match find(previous) {
        Some(p) if p.status == next.status && p.reason == next.reason => None,
        _ => Some(next),
    }
}

/// What is known about an invitation's guest user in this reconcile.
#[derive(Clone, Copy, Debug)]
pub enum GuestKnowledge<'a> {
    /// The directory was read: the guest, or none.
    Known(Option<&'a GuestUser>),
    /// The directory could not be read: keep what the status says.
    Unknown,
}

/// The invitation-specific conditions: `Invited` and `Redeemed`.
pub fn invitation_conditions(
    verdict: &Verdict,
    guest: GuestKnowledge<'_>,
    previous: Option<&GuestInvitationStatus>,
) -> Vec<Cond> {
    let (user_id, state) = match guest {
        GuestKnowledge::Known(g) => (g.map(|g| g.id.clone()), g.and_then(|g| g.external_user_state)),
        GuestKnowledge::Unknown => (previous.and_then(|p| p.user_id.clone()), previous.and_then(|p| p.redemption_state)),
    };
    let invited = match (&user_id, verdict) {
        (Some(id), _) => Cond::new(kind::INVITED, true, reason::INVITED, format!("guest user {id}")),
        (None, Verdict::Refused { reason, message }) => Cond::new(kind::INVITED, false, reason, message.clone()),
        (None, v) if !v.ready() => Cond::new(kind::INVITED, false, v.reason(), v.message()),
        (None, _) => Cond::new(kind::INVITED, false, reason::NOT_INVITED, "no guest user yet"),
    };
    let redeemed = match (user_id.is_some(), state) {
        (true, Some(RedemptionState::Accepted)) => {
            Cond::new(kind::REDEEMED, true, reason::ACCEPTED, "the guest redeemed the invitation")
        }
        (true, _) => {
            Cond::new(kind::REDEEMED, false, reason::PENDING_ACCEPTANCE, "the guest has not redeemed the invitation yet")
        }
        (false, _) => Cond::new(kind::REDEEMED, false, reason::NOT_INVITED, "no guest user yet"),
    };
    vec![invited, redeemed]
}

/// A redeem URL kept in an invitation's ownership record, and the guest it was issued to.
#[derive(Clone, Copy, Debug)]
pub struct RecordedUrl<'a> {
    pub user_id: &'a str,
    pub url: &'a str,
}

/// What the directory said when it invited: this pass's answer, and the one its ownership record kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct Issued<'a> {
    pub invited: Option<&'a InvitationResult>,
    pub recorded: Option<RecordedUrl<'a>>,
}

/// The invitation's status fields: user id and name, redeem URL, redemption state and when it changed.
/// Redemption comes from the directory's guest, so redeeming shows up with no change to the object. The
/// redeem URL exists only in the invitation's answer: this pass's, else the ownership record's, else
/// the status's own, always for the same user.
pub fn invitation_status(
    common: CommonStatus,
    guest: GuestKnowledge<'_>,
    issued: Issued<'_>,
    previous: Option<&GuestInvitationStatus>,
    now: &Time,
) -> GuestInvitationStatus {
    let invited = issued.invited;
    let GuestKnowledge::Known(guest) = guest else {
        let mut kept = previous.cloned().unwrap_or_default();
        kept.common = common;
        return kept;
    };
    let user_id = guest.map(|g| g.id.clone()).or_else(|| invited.map(|i| i.user_id.clone()));
    let same_user = |p: &&GuestInvitationStatus| p.user_id.is_some() && p.user_id == user_id;
    let invite_redeem_url = invited
        .filter(|i| Some(&i.user_id) == user_id.as_ref())
        .map(|i| i.invite_redeem_url.clone())
        .or_else(|| {
            let r = issued.recorded.filter(|r| Some(r.user_id) == user_id.as_deref())?;
            Some(r.url.to_string())
        })
        .or_else(|| previous.filter(same_user).and_then(|p| p.invite_redeem_url.clone()));
    let redemption_state = guest.and_then(|g| g.external_user_state).or_else(|| {
        invited.filter(|_| user_id.is_some()).map(|i| {
            if i.status.eq_ignore_ascii_case("Completed") || i.status.eq_ignore_ascii_case("Accepted") {
                RedemptionState::Accepted
            } else {
                RedemptionState::PendingAcceptance
            }
        })
    });
    let redemption_state_changed_at = guest.and_then(|g| g.external_user_state_change_date_time.clone()).or_else(|| {
        redemption_state?;
        match previous.filter(same_user) {
            Some(p) if p.redemption_state == redemption_state => p.redemption_state_changed_at.clone(),
            _ => Some(now.0.to_string()),
        }
    });
    GuestInvitationStatus {
        common,
        user_id,
        user_principal_name: guest
            .map(|g| g.user_principal_name.clone())
            .or_else(|| invited.map(|i| i.user_principal_name.clone())),
        invite_redeem_url,
        redemption_state,
        redemption_state_changed_at,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::core::model::UserType;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn guest(state: RedemptionState) -> GuestUser {
        GuestUser {
            id: "u1".into(),
            mail: "alice@fabrikam.com".into(),
            display_name: None,
            user_principal_name: "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
            user_type: UserType::Guest,
            creation_type: Some("Invitation".into()),
            external_user_state: Some(state),
            external_user_state_change_date_time: Some("2026-01-02T03:04:05Z".into()),
            account_enabled: true,
            group_ids: BTreeSet::new(),
        }
    }

    #[test]
    fn an_unchanged_condition_keeps_its_transition_time() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-02-01T00:00:00Z");
        let conds = verdict_conditions(&Verdict::InSync, vec![]);
        let first = conditions(&conds, Some(1), &[], &t0);
        let again = conditions(&conds, Some(1), &first, &t1);
        assert_eq!(first, again);
        let failed = verdict_conditions(&Verdict::Failed { reason: reason::DIRECTORY_ERROR, message: "x".into() }, vec![]);
        let changed = conditions(&failed, Some(1), &first, &t1);
        assert_eq!(changed[0].last_transition_time, t1);
        assert!(ready_transition(&first, &changed).is_some());
        assert!(ready_transition(&first, &again).is_none());
    }

    #[test]
    fn refusals_and_invalid_specs_are_stalled_transient_failures_are_not() {
        let refused = Verdict::Refused { reason: reason::DOMAIN_BLOCKED, message: "litware.com is blocked".into() };
        let types: Vec<_> = verdict_conditions(&refused, vec![]).iter().map(|c| (c.type_, c.status, c.reason)).collect();
        assert_eq!(
            types,
            [
                (kind::READY, false, reason::DOMAIN_BLOCKED),
                (kind::SYNCED, false, reason::DOMAIN_BLOCKED),
                (kind::STALLED, true, reason::DOMAIN_BLOCKED)
            ]
        );
        let failed = Verdict::Failed { reason: "Transport", message: "timeout".into() };
        assert!(verdict_conditions(&failed, vec![]).iter().all(|c| c.type_ != kind::STALLED));
        assert_eq!(failure_reason("Transport"), "Transport");
        assert_eq!(failure_reason("something new"), reason::DIRECTORY_ERROR);
    }

    #[test]
    fn redemption_comes_from_the_directory_and_the_redeem_url_is_kept() {
        let now = time("2026-03-01T00:00:00Z");
        let invited = InvitationResult {
            user_id: "u1".into(),
            user_principal_name: "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
            invite_redeem_url: "https://redeem/1".into(),
            status: "PendingAcceptance".into(),
        };
        let pending = guest(RedemptionState::PendingAcceptance);
        let first = invitation_status(
            CommonStatus::default(),
            GuestKnowledge::Known(Some(&pending)),
            Issued { invited: Some(&invited), recorded: None },
            None,
            &now,
        );
        assert_eq!(first.invite_redeem_url.as_deref(), Some("https://redeem/1"));
        assert_eq!(first.redemption_state, Some(RedemptionState::PendingAcceptance));
        let accepted = guest(RedemptionState::Accepted);
        let later = invitation_status(
            CommonStatus::default(),
            GuestKnowledge::Known(Some(&accepted)),
            Issued::default(),
            Some(&first),
            &now,
        );
        assert_eq!(later.invite_redeem_url.as_deref(), Some("https://redeem/1"), "kept from the status");
        assert_eq!(later.redemption_state, Some(RedemptionState::Accepted));
        let conds = invitation_conditions(&Verdict::InSync, GuestKnowledge::Known(Some(&accepted)), Some(&first));
        assert_eq!(conds[1], Cond::new(kind::REDEEMED, true, reason::ACCEPTED, "the guest redeemed the invitation"));
        let unknown = invitation_status(CommonStatus::default(), GuestKnowledge::Unknown, Issued::default(), Some(&later), &now);
        assert_eq!(unknown.user_id.as_deref(), Some("u1"), "an unreadable directory keeps what the status said");
    }

    #[test]
    fn a_status_lost_after_the_write_is_rebuilt_from_the_ownership_record() {
        let now = time("2026-03-01T00:00:00Z");
        let pending = guest(RedemptionState::PendingAcceptance);
        let recorded = Issued { invited: None, recorded: Some(RecordedUrl { user_id: "u1", url: "https://redeem/1" }) };
        let rebuilt = invitation_status(CommonStatus::default(), GuestKnowledge::Known(Some(&pending)), recorded, None, &now);
        assert_eq!(rebuilt.invite_redeem_url.as_deref(), Some("https://redeem/1"));
        let other = Issued { invited: None, recorded: Some(RecordedUrl { user_id: "u2", url: "https://redeem/2" }) };
        let for_another = invitation_status(CommonStatus::default(), GuestKnowledge::Known(Some(&pending)), other, None, &now);
        assert_eq!(for_another.invite_redeem_url, None, "a URL issued to another account is not this guest's");
    }
}
