//! `apply`: every `Operation` as Graph requests, each idempotent — create tolerates "already exists",
//! delete tolerates "not found" — and nothing created twice:
//!
//! - an invitation first looks the guest up by mail and adopts it (R6, STYLE 3); when `POST /invitations`
//!   times out, loses its connection or gets a 5xx, the outcome is unknown, so the guest is looked up by
//!   mail again before any retry;
//! - a partner is `POST`ed when absent and `PATCH`ed (every setting, `null` = inherit) when present;
//!   its identity synchronization is `PUT` (409: `PATCH`);
//! - user `PATCH`/`DELETE` and group membership adds/removes go through `$batch`.
//!
//! Graph has no transactions: a change that fails half-way leaves what was done, and the next plan
//! (which reads the directory again) finishes it.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::batch::{self, SubRequest};
use super::http::{Call, Response};
use super::limiter::Cost;
use super::mapping;
use crate::core::model::{Cloud, PartnerConfiguration, RedemptionState, UserType};
use crate::core::operation::{
    GuestPatch, InvitationRequest, InvitationResult, Operation, Outcome, ProvisionRequest, bind_invited_id,
};
use crate::core::policy::{Refusal, RefusalReason};
use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration, ResolvedDomainList};
use crate::core::settings::DomainList;
use crate::core::sync::is_profile_attribute;
use crate::core::tenant_profile::cloud_endpoint;
use crate::directory::DirectoryError;
use crate::graph::wire::{
    self, CrossTenantAccessPolicyConfigurationDefault, CrossTenantAccessPolicyConfigurationPartner,
    CrossTenantIdentitySyncPolicyPartner, Invitation, InvitationsAllowedAndBlockedDomainsPolicy, ODataReference, User, codes,
    paths,
};

/// Tries of a create whose outcome was unknown (each preceded by a lookup).
const CREATE_TRIES: u32 = 5;

/// Where a provisioned user's invitation points (no invitation email is sent: only the redemption uses it).
const PROVISION_REDIRECT_URL: &str = "https://myapps.microsoft.com";

/// What `POST /invitations` led to.
enum Invited {
    /// The invitation created the user.
    New(InvitationResult),
    /// A user with the address existed already (before, or because an earlier answer was lost).
    Existing(User),
}

impl Invited {
    fn result(&self) -> InvitationResult {
        match self {
            Invited::New(r) => r.clone(),
            Invited::Existing(u) => adopted(u),
        }
    }
}

/// The one request an operation is, when it is a plain user write that can share a `$batch`: a
/// deletion, or a patch of user properties without group changes.
fn batchable(op: &Operation) -> Option<SubRequest> {
    match op {
        Operation::DeleteGuest { user_id } => Some(SubRequest::new(Method::DELETE, paths::user(user_id))),
        Operation::UpdateGuest { user_id, patch } if patch.add_to_groups.is_empty() && patch.remove_from_groups.is_empty() => {
            let body = user_patch_body(patch).ok().filter(|b| !b.is_empty())?;
            Some(SubRequest::new(Method::PATCH, paths::user(user_id)).json(Value::Object(body)))
        }
        _ => None,
    }
}

/// Graph's documented message when cross-tenant access settings block an invitation (Entra
/// troubleshooting). Graph documents no code for it, so this text is the only signal; the emulator
/// sends a code in `error.details[0].code` instead.
const CROSS_TENANT_BLOCKED_MESSAGE: &str = "blocked by cross-tenant access settings";

impl GraphDirectory {
    pub(super) async fn apply_ops(&self, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut last_invited: Option<InvitationResult> = None;
        let mut i = 0;
        while i < ops.len() {
            // A run of plain user patches and deletions (what a sync run mostly writes) goes out in
            // `$batch`, 20 per request, instead of one request each.
            let run: Vec<SubRequest> = ops[i..].iter().map_while(batchable).collect();
            if run.len() > 1 {
                let answers = batch::run(&self.http, &self.v1, &run).await?;
                for (req, answer) in run.iter().zip(&answers) {
                    if !(answer.is_success() || req.method == Method::DELETE && answer.status == 404) {
                        return Err(DirectoryError::Graph(Box::new(answer.failure(req))));
                    }
                    outcomes.push(Outcome::Done);
                }
                i += run.len();
                continue;
            }
            let op = bind_invited_id(&ops[i], last_invited.as_ref());
            let outcome = self.run(&op).await?;
            if let Outcome::Invited(r) = &outcome {
                last_invited = Some(r.clone());
            }
            outcomes.push(outcome);
            i += 1;
        }
        Ok(outcomes)
    }

    async fn run(&self, op: &Operation) -> Result<Outcome, DirectoryError> {
        match op {
            Operation::CreateTenant { identity } => Err(DirectoryError::Invalid(format!(
                "entente never creates Graph tenants: tenant {} must exist in Microsoft Entra, with entente's app \
                 registered and granted its permissions",
                identity.tenant_id
            ))),
            Operation::ConfigureTenant { external_collaboration, default_access } => {
                self.configure(external_collaboration, default_access).await?;
                Ok(Outcome::Done)
            }
            Operation::SetCloudSettings { allowed_clouds } => {
                self.set_cloud_settings(allowed_clouds).await?;
                Ok(Outcome::Done)
            }
            // The tenant exists already, with its type; the branding is written (`profile.rs`), what Graph
            // has no API for fails rather than being skipped.
            Operation::ConfigureTenantExperience { tenant_type, branding, self_service_account } => {
                self.configure_experience(*tenant_type, branding.as_ref(), self_service_account.as_ref()).await?;
                Ok(Outcome::Done)
            }
            Operation::ProvisionUser { user } => Ok(Outcome::Invited(self.provision(user).await?)),
            Operation::EnsureGroups { display_names } => {
                self.ensure_groups(display_names).await?;
                Ok(Outcome::Done)
            }
            Operation::PutPartner { partner } => {
                self.put_partner(partner).await?;
                Ok(Outcome::Done)
            }
            Operation::DeletePartner { partner_tenant_id } => {
                let url = self.url(&paths::partner(partner_tenant_id.trim()), &[])?;
                tolerate_not_found(self.http.send(&Call::new(Method::DELETE, url, Cost::Write)).await?)?;
                Ok(Outcome::Done)
            }
            Operation::Invite { invitation } => Ok(Outcome::Invited(self.invite(invitation).await?)),
            Operation::UpdateGuest { user_id, patch } => {
                self.update_guest(user_id, patch).await?;
                Ok(Outcome::Done)
            }
            Operation::DeleteGuest { user_id } => {
                let answers = batch::run(&self.http, &self.v1, &[SubRequest::new(Method::DELETE, paths::user(user_id))]).await?;
                let a = &answers[0];
                if !a.is_success() && a.status != 404 {
                    return Err(DirectoryError::Graph(Box::new(
                        a.failure(&SubRequest::new(Method::DELETE, paths::user(user_id))),
                    )));
                }
                Ok(Outcome::Done)
            }
            Operation::RestoreGuest { user_id } => {
                self.restore_guest(user_id).await?;
                Ok(Outcome::Done)
            }
            Operation::PutMultiTenantOrganization { .. }
            | Operation::AddMtoMember { .. }
            | Operation::RemoveMtoMember { .. }
            | Operation::JoinMto { .. }
            | Operation::LeaveMto => self.apply_mto(op).await,
            Operation::PutConnectedOrganization { .. }
            | Operation::DeleteConnectedOrganization { .. }
            | Operation::PutAccessPackage { .. }
            | Operation::DeleteAccessPackage { .. }
            | Operation::SetEntitlementSettings { .. } => self.apply_entitlement(op).await,
            Operation::PutIdentityProvider { .. }
            | Operation::DeleteIdentityProvider { .. }
            | Operation::PutSignUpFlow { .. }
            | Operation::DeleteSignUpFlow { .. } => self.apply_identity(op).await,
            Operation::PutConditionalAccessPolicy { .. } | Operation::DeleteConditionalAccessPolicy { .. } => {
                self.apply_conditional_access(op).await?;
                Ok(Outcome::Done)
            }
            Operation::Record { record } => {
                self.inventory.upsert(&self.directory_key, &self.tenant_id, record)?;
                Ok(Outcome::Done)
            }
            Operation::Bury { kind, key, reason } => {
                self.inventory.bury(&self.directory_key, &self.tenant_id, *kind, key, reason)?;
                Ok(Outcome::Done)
            }
            Operation::Forget { kind, key } => {
                self.inventory.forget(&self.directory_key, &self.tenant_id, *kind, key)?;
                Ok(Outcome::Done)
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Tenant settings

    /// Writes only what differs: the authorization policy, the default configuration, the domain list.
    async fn configure(&self, collab: &ResolvedCollaboration, access: &ResolvedAccess) -> Result<(), DirectoryError> {
        let authz = self.authorization_policy().await?;
        let current = mapping::collaboration(&authz, None);
        let mut patch = wire::AuthorizationPolicy::default();
        if current.allow_invites_from != collab.allow_invites_from {
            patch.allow_invites_from = Some(collab.allow_invites_from);
        }
        if current.guest_user_role_id != collab.guest_user_role_id {
            patch.guest_user_role_id = Some(collab.guest_user_role_id.clone());
        }
        if current.allow_email_verified_users_to_join_organization != collab.allow_email_verified_users_to_join_organization {
            patch.allow_email_verified_users_to_join_organization = Some(collab.allow_email_verified_users_to_join_organization);
        }
        if patch != wire::AuthorizationPolicy::default() {
            self.patch(paths::AUTHORIZATION_POLICY, to_json(&patch)?).await?;
        }

        let default = self.default_configuration().await?;
        if mapping::default_access(&default) != *access {
            let body = CrossTenantAccessPolicyConfigurationDefault::patch_from_settings(&access.to_settings());
            self.patch(paths::CROSS_TENANT_DEFAULT, to_json(&body)?).await?;
        }

        self.configure_domain_list(collab.domain_list.as_ref()).await
    }

    /// R14: `allowedCloudEndpoints` of the policy root, written only when it differs.
    async fn set_cloud_settings(&self, clouds: &BTreeSet<Cloud>) -> Result<(), DirectoryError> {
        let current = mapping::allowed_clouds(&self.cross_tenant_access_policy().await?);
        if current == *clouds {
            return Ok(());
        }
        let endpoints: Vec<&str> = clouds.iter().map(|c| cloud_endpoint(*c)).collect();
        self.patch(paths::CROSS_TENANT_ACCESS_POLICY, json!({ "allowedCloudEndpoints": endpoints })).await
    }

    async fn configure_domain_list(&self, desired: Option<&ResolvedDomainList>) -> Result<(), DirectoryError> {
        let desired_list = desired.map(|d| DomainList { mode: d.mode, domains: d.domains.iter().cloned().collect() });
        let policy = self.b2b_management_policy().await?;
        let current = match &policy {
            Some(p) => p.domain_list().map_err(|e| DirectoryError::Invalid(format!("the B2B management policy: {e}")))?,
            None => None,
        };
        let resolve = |l: Option<&DomainList>| l.and_then(crate::core::resolved::resolve_domain_list);
        if resolve(current.as_ref()) == resolve(desired_list.as_ref()) {
            return Ok(());
        }
        let domains = InvitationsAllowedAndBlockedDomainsPolicy::from_domain_list(desired_list.as_ref());
        for _ in 0..CREATE_TRIES {
            let existing = match &policy {
                Some(p) => Some(p.clone()),
                None => self.b2b_management_policy().await?,
            };
            if let Some(mut p) = existing {
                let id = p.id.clone().ok_or_else(|| DirectoryError::Invalid("a B2B management policy without an id".into()))?;
                p.set_domains_policy(&domains).map_err(|e| DirectoryError::Invalid(format!("the B2B management policy: {e}")))?;
                let url = self.url_at(&self.beta, &format!("{}/{id}", paths::B2B_MANAGEMENT_POLICIES), &[])?;
                let body = json!({ "definition": p.definition });
                return self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body)).await?.ok();
            }
            // None yet: create one. Unknown outcome → look again before trying again.
            let body = wire::B2bManagementPolicy::with_domain_list(desired_list.as_ref());
            let url = self.url_at(&self.beta, paths::B2B_MANAGEMENT_POLICIES, &[])?;
            match self.http.send(&Call::new(Method::POST, url, Cost::Write).json(to_json(&body)?)).await {
                Ok(r) if r.is_success() => return Ok(()),
                Ok(r) if r.status < 500 => return Err(r.error()),
                Ok(_) | Err(DirectoryError::Transport(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DirectoryError::Transport("creating the B2B management policy: outcome unknown after retries".into()))
    }

    async fn patch(&self, path: &str, body: Value) -> Result<(), DirectoryError> {
        let url = self.url(path, &[])?;
        self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body)).await?.ok()
    }

    // ------------------------------------------------------------------------------------------
    // Groups

    /// Group display name → id, reading the groups again when a name is unknown. A name several groups
    /// share (Graph allows it) is an error: entente names groups by display name, so it must name one.
    async fn group_ids(&self, names: &[String]) -> Result<BTreeMap<String, Option<String>>, DirectoryError> {
        let mut groups = self.known_groups().await?;
        if names.iter().any(|n| !groups.iter().any(|g| g.display_name.as_deref() == Some(n))) {
            groups = self.list_groups().await?;
        }
        let mut out = BTreeMap::new();
        for n in names {
            let named: Vec<&wire::Group> = groups.iter().filter(|g| g.display_name.as_deref() == Some(n)).collect();
            if named.len() > 1 {
                return Err(super::ambiguous_group(&self.tenant_id, n, &named));
            }
            out.insert(n.clone(), named.first().map(|g| g.id.clone()));
        }
        Ok(out)
    }

    async fn ensure_groups(&self, names: &[String]) -> Result<(), DirectoryError> {
        let mut groups = self.list_groups().await?;
        for name in names {
            let mut tries = 0;
            while !groups.iter().any(|g| g.display_name.as_deref() == Some(name)) {
                tries += 1;
                if tries > CREATE_TRIES {
                    return Err(DirectoryError::Transport(format!("creating group {name:?}: outcome unknown after retries")));
                }
                let body = wire::Group {
                    display_name: Some(name.clone()),
                    mail_enabled: Some(false),
                    mail_nickname: Some(mail_nickname(name)),
                    security_enabled: Some(true),
                    ..Default::default()
                };
                let url = self.url(paths::GROUPS, &[])?;
                match self.http.send(&Call::new(Method::POST, url, Cost::Write).json(to_json(&body)?)).await {
                    Ok(r) if r.is_success() => {
                        let created: wire::Group = r.json()?;
                        groups.push(created);
                    }
                    Ok(r) if r.status < 500 => return Err(r.error()),
                    // Unknown outcome: read the groups again, and create only if it is still missing.
                    Ok(_) | Err(DirectoryError::Transport(_)) => groups = self.list_groups().await?,
                    Err(e) => return Err(e),
                }
            }
        }
        *self.groups.lock().unwrap_or_else(|p| p.into_inner()) = Some(groups);
        Ok(())
    }

    /// Membership changes of one user in `$batch`: adds tolerate "already a member", removes "not found".
    async fn change_memberships(
        &self,
        user_id: &str,
        add: &[String],
        remove: &[String],
        extra: Vec<SubRequest>,
    ) -> Result<(), DirectoryError> {
        let ids = self.group_ids(&[add, remove].concat()).await?;
        let mut reqs = extra;
        let mut adds = Vec::new();
        for name in add {
            let gid = ids.get(name).cloned().flatten().ok_or_else(|| {
                DirectoryError::Invalid(format!(
                    "group {name:?} does not exist in tenant {} (declare it on the tenant)",
                    self.tenant_id
                ))
            })?;
            let body = to_json(&ODataReference::directory_object(self.v1.as_str(), user_id))?;
            adds.push((reqs.len(), gid.clone()));
            reqs.push(SubRequest::new(Method::POST, paths::group_members_ref(&gid)).json(body));
        }
        for name in remove {
            if let Some(gid) = ids.get(name).cloned().flatten() {
                reqs.push(SubRequest::new(Method::DELETE, paths::group_member_ref(&gid, user_id)));
            }
        }
        if reqs.is_empty() {
            return Ok(());
        }
        let answers = batch::run(&self.http, &self.v1, &reqs).await?;
        for (i, (req, answer)) in reqs.iter().zip(&answers).enumerate() {
            if answer.is_success() || (req.method == Method::DELETE && answer.status == 404) {
                continue;
            }
            // Adding an existing member is a 400; make sure that is what it was.
            if let Some((_, gid)) = adds.iter().find(|(j, _)| *j == i)
                && answer.status == 400
                && self.group_members(gid).await?.contains(user_id)
            {
                continue;
            }
            return Err(DirectoryError::Graph(Box::new(answer.failure(req))));
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Partners

    async fn put_partner(&self, partner: &PartnerConfiguration) -> Result<(), DirectoryError> {
        let tid = partner.tenant_id.trim().to_ascii_lowercase();
        let url = self.url(&paths::partner(&tid), &[])?;
        let body = CrossTenantAccessPolicyConfigurationPartner::from_settings(&tid, &partner.settings);
        let current = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
        let exists = match current.status {
            404 => false,
            _ => {
                let existing: CrossTenantAccessPolicyConfigurationPartner = current.json()?;
                if mapping::partner(&existing, None).settings != partner.settings {
                    self.patch_partner(&tid, &body).await?;
                }
                true
            }
        };
        if !exists {
            // A duplicate create fails with 409 and changes nothing, so resending is safe; 409 → PATCH.
            let create = Call::new(Method::POST, self.url(paths::CROSS_TENANT_PARTNERS, &[])?, Cost::Write)
                .json(to_json(&body)?)
                .idempotent();
            let resp = self.http.send(&create).await?;
            match resp.status {
                200..=299 => {}
                409 => self.patch_partner(&tid, &body).await?,
                _ => return Err(resp.error()),
            }
        }
        self.put_identity_sync(&tid, partner).await
    }

    async fn patch_partner(&self, tid: &str, body: &CrossTenantAccessPolicyConfigurationPartner) -> Result<(), DirectoryError> {
        let mut v = to_json(body)?;
        if let Value::Object(m) = &mut v {
            m.remove("tenantId");
        }
        self.patch(&paths::partner(tid), v).await
    }

    async fn put_identity_sync(&self, tid: &str, partner: &PartnerConfiguration) -> Result<(), DirectoryError> {
        let url = self.url(&paths::identity_synchronization(tid), &[])?;
        let current = self.http.send(&Call::new(Method::GET, url.clone(), Cost::read(&url))).await?;
        let current: Option<CrossTenantIdentitySyncPolicyPartner> = match current.status {
            404 => None,
            _ => Some(current.json()?),
        };
        match &partner.identity_synchronization {
            Some(desired) => {
                if current.as_ref().map(CrossTenantIdentitySyncPolicyPartner::to_core).as_ref() == Some(desired) {
                    return Ok(());
                }
                let body = to_json(&CrossTenantIdentitySyncPolicyPartner::from_core(tid, desired))?;
                let resp = self.http.send(&Call::new(Method::PUT, url.clone(), Cost::Write).json(body.clone())).await?;
                match resp.status {
                    200..=299 => Ok(()),
                    409 => self.http.send(&Call::new(Method::PATCH, url, Cost::Write).json(body)).await?.ok(),
                    _ => Err(resp.error()),
                }
            }
            None if current.is_some() => tolerate_not_found(self.http.send(&Call::new(Method::DELETE, url, Cost::Write)).await?),
            None => Ok(()),
        }
    }

    // ------------------------------------------------------------------------------------------
    // Guests

    async fn invite(&self, req: &InvitationRequest) -> Result<InvitationResult, DirectoryError> {
        let result = self.invite_once(req).await?.result();
        if !req.groups.is_empty() {
            // A user just created may not have replicated yet: a 404 on the membership is retried.
            let mut attempt = 0;
            loop {
                match self.change_memberships(&result.user_id, &req.groups, &[], vec![]).await {
                    Err(DirectoryError::Graph(f)) if f.status == 404 && attempt < 3 => {
                        tokio::time::sleep(self.http.retry.backoff(attempt)).await;
                        attempt += 1;
                    }
                    other => break other?,
                }
            }
        }
        Ok(result)
    }

    /// The user with the invited address: the existing one (R6, never invited twice), else a new one.
    async fn invite_once(&self, req: &InvitationRequest) -> Result<Invited, DirectoryError> {
        if req.re_invite {
            return self.send_invitation(req).await;
        }
        match self.user_by_mail(req.invited_user_email_address.trim()).await? {
            Some(u) => Ok(Invited::Existing(u)),
            None => self.send_invitation(req).await,
        }
    }

    /// The existing user with this mail (the lowest id when there are several).
    async fn user_by_mail(&self, mail: &str) -> Result<Option<User>, DirectoryError> {
        let mut users = self.users_by_mail(mail).await?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users.into_iter().next())
    }

    async fn send_invitation(&self, req: &InvitationRequest) -> Result<Invited, DirectoryError> {
        let body = Invitation {
            invited_user_email_address: req.invited_user_email_address.trim().to_string(),
            invite_redirect_url: req.invite_redirect_url.clone(),
            invited_user_display_name: req.invited_user_display_name.clone(),
            invited_user_type: Some(req.invited_user_type.as_str().to_string()),
            send_invitation_message: Some(req.send_invitation_message),
            invited_user_message_info: req.invited_user_message_info.as_ref().map(Into::into),
            ..Default::default()
        };
        let body = to_json(&body)?;
        let mut last_error = None;
        for attempt in 0..CREATE_TRIES {
            if attempt > 0 {
                // The last POST may have created the guest: adopt it rather than invite twice.
                if let Some(u) = self.user_by_mail(req.invited_user_email_address.trim()).await? {
                    return Ok(Invited::Existing(u));
                }
                tokio::time::sleep(self.http.retry.backoff(attempt - 1)).await;
            }
            let call = Call::new(Method::POST, self.url(paths::INVITATIONS, &[])?, Cost::Invitation).json(body.clone());
            match self.http.send(&call).await {
                Ok(resp) if resp.is_success() => {
                    let inv: Invitation = resp.json()?;
                    return invitation_result(inv, &resp).map(Invited::New);
                }
                Ok(resp) if resp.status >= 500 => last_error = Some(resp.error()),
                Ok(resp) => return Err(refusal_or_error(&resp)),
                Err(e @ DirectoryError::Transport(_)) => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| DirectoryError::Transport("POST /invitations: no answer".into())))
    }

    async fn update_guest(&self, user_id: &str, patch: &GuestPatch) -> Result<(), DirectoryError> {
        let body = user_patch_body(patch)?;
        let mut extra = Vec::new();
        if !body.is_empty() {
            extra.push(SubRequest::new(Method::PATCH, paths::user(user_id)).json(Value::Object(body)));
        }
        self.change_memberships(user_id, &patch.add_to_groups, &patch.remove_from_groups, extra).await
    }

    /// The user a cross-tenant sync keeps for a source user (R13): invited without an email (adopting
    /// the user with the address if there is one, as every invitation does), then one `PATCH` with what
    /// the invitation did not set.
    async fn provision(&self, req: &ProvisionRequest) -> Result<InvitationResult, DirectoryError> {
        let mail = req.mail.trim();
        if mail.is_empty() {
            return Err(DirectoryError::Invalid("provisioning a user needs a mail address".into()));
        }
        let invitation = InvitationRequest {
            re_invite: false,
            invited_user_email_address: mail.to_string(),
            invited_user_display_name: req.display_name.clone(),
            invite_redirect_url: PROVISION_REDIRECT_URL.into(),
            invited_user_type: req.user_type,
            send_invitation_message: false,
            invited_user_message_info: None,
            groups: vec![],
        };
        let invited = self.invite_once(&invitation).await?;
        let result = invited.result();
        let patch = provision_patch(req, &invited);
        let body = user_patch_body(&patch)?;
        if !body.is_empty() {
            // A user just created may not have replicated yet: a 404 is tried again.
            let url = self.url(&paths::user(&result.user_id), &[])?;
            let mut attempt = 0;
            loop {
                let resp =
                    self.http.send(&Call::new(Method::PATCH, url.clone(), Cost::Write).json(Value::Object(body.clone()))).await?;
                if resp.status == 404 && attempt < 3 {
                    tokio::time::sleep(self.http.retry.backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                resp.ok()?;
                break;
            }
        }
        Ok(result)
    }
}

/// What a provisioned user still needs after its invitation: the profile attributes, and sign-in,
/// type and display name where the user that came back differs (an existing user is adopted as it is).
fn provision_patch(req: &ProvisionRequest, invited: &Invited) -> GuestPatch {
    let (display_name, user_type, enabled) = match invited {
        // The invitation set the display name and type; a new user can sign in.
        Invited::New(_) => (req.display_name.clone(), Some(req.user_type), true),
        Invited::Existing(u) => {
            (u.display_name.clone(), u.user_type.as_deref().and_then(UserType::parse), u.account_enabled.unwrap_or(true))
        }
    };
    GuestPatch {
        display_name: req.display_name.clone().filter(|d| display_name.as_deref() != Some(d.as_str())),
        user_type: (user_type != Some(req.user_type)).then_some(req.user_type),
        account_enabled: (enabled != req.account_enabled).then_some(req.account_enabled),
        attributes: req.attributes.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        ..GuestPatch::default()
    }
}

/// The `PATCH /users/{id}` body of a guest patch: only what it changes; a cleared attribute is `null`
/// (which clears it in Graph). Group changes are not part of it.
fn user_patch_body(patch: &GuestPatch) -> Result<serde_json::Map<String, Value>, DirectoryError> {
    let mut body = serde_json::Map::new();
    if let Some(d) = &patch.display_name {
        body.insert("displayName".into(), json!(d));
    }
    if let Some(t) = patch.user_type {
        body.insert("userType".into(), json!(t.as_str()));
    }
    if let Some(m) = &patch.mail {
        body.insert("mail".into(), json!(m.trim()));
    }
    if let Some(e) = patch.account_enabled {
        body.insert("accountEnabled".into(), json!(e));
    }
    for (name, value) in &patch.attributes {
        if !is_profile_attribute(name) {
            return Err(DirectoryError::Invalid(format!("{name:?} is not a profile attribute entente writes")));
        }
        body.insert(name.clone(), json!(value));
    }
    Ok(body)
}

/// An invitation answer as the core's result; the user id is required.
fn invitation_result(inv: Invitation, resp: &Response) -> Result<InvitationResult, DirectoryError> {
    let user_id =
        inv.invited_user.map(|u| u.id).filter(|id| !id.is_empty()).ok_or_else(|| {
            DirectoryError::Invalid(format!("POST /invitations answered {} without invitedUser.id", resp.status))
        })?;
    Ok(InvitationResult {
        user_id,
        // Graph's invitation answer has no UPN; it is the guest UPN form (graph-contract 1.2), read back by the next snapshot.
        user_principal_name: String::new(),
        invite_redeem_url: inv.invite_redeem_url.unwrap_or_default(),
        status: inv.status.unwrap_or_else(|| "PendingAcceptance".into()),
    })
}

fn adopted(u: &User) -> InvitationResult {
    let accepted = u.external_user_state.as_deref().and_then(RedemptionState::parse) == Some(RedemptionState::Accepted);
    InvitationResult {
        user_id: u.id.clone(),
        user_principal_name: u.user_principal_name.clone().unwrap_or_default(),
        invite_redeem_url: String::new(),
        status: if accepted { "Completed" } else { "PendingAcceptance" }.to_string(),
    }
}

/// A refused invitation as `DirectoryError::Refused` (the emulator's codes in `error.details[].code` or
/// `error.code`, or Graph's documented cross-tenant message); any other failure as it is.
pub(super) fn refusal_or_error(resp: &Response) -> DirectoryError {
    let Some(e) = resp.odata_error() else { return resp.error() };
    let reason = std::iter::once(e.error.code.as_str())
        .chain(e.error.details.iter().map(|d| d.code.as_str()))
        .find_map(|c| match c {
            codes::DOMAIN_BLOCKED => Some(RefusalReason::DomainBlocked),
            codes::INVITATIONS_DISABLED => Some(RefusalReason::InvitationsDisabled),
            codes::CROSS_TENANT_ACCESS_BLOCKED => Some(RefusalReason::CrossTenantAccessBlocked),
            codes::CLOUD_NOT_ALLOWED => Some(RefusalReason::CloudNotAllowed),
            _ => None,
        })
        .or_else(|| {
            e.error
                .message
                .to_ascii_lowercase()
                .contains(CROSS_TENANT_BLOCKED_MESSAGE)
                .then_some(RefusalReason::CrossTenantAccessBlocked)
        });
    match reason {
        Some(reason) => {
            let detail =
                e.error.details.iter().find(|d| RefusalReason::parse(&d.code) == Some(reason)).map(|d| d.message.clone());
            let mut message = detail.filter(|m| !m.is_empty()).unwrap_or_else(|| e.error.message.clone());
            if let Some(id) = e.request_id() {
                message.push_str(&format!(" [request-id {id}]"));
            }
            DirectoryError::Refused(Refusal { reason, message })
        }
        None => resp.error(),
    }
}

fn tolerate_not_found(resp: Response) -> Result<(), DirectoryError> {
    if resp.is_success() || resp.status == 404 { Ok(()) } else { Err(resp.error()) }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, DirectoryError> {
    serde_json::to_value(v).map_err(|e| DirectoryError::Invalid(format!("encoding a Graph request: {e}")))
}

/// A `mailNickname` for a security group: ASCII letters and digits of the name, at most 64.
fn mail_nickname(name: &str) -> String {
    let n: String = name.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
    if n.is_empty() { "entente-group".into() } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            method: Method::POST,
            path: "/v1.0/invitations".into(),
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn refusals_map_to_the_condition_reasons() {
        let r = refusal_or_error(&resp(
            403,
            r#"{"error":{"code":"Authorization_RequestDenied","message":"refused","details":[{"code":"DomainBlocked","message":"litware.com is blocked"}],"innerError":{"request-id":"r1"}}}"#,
        ));
        match r {
            DirectoryError::Refused(Refusal { reason, message }) => {
                assert_eq!(reason, RefusalReason::DomainBlocked);
                assert_eq!(message, "litware.com is blocked [request-id r1]");
            }
            other => panic!("{other:?}"),
        }
        let r = refusal_or_error(&resp(400, r#"{"error":{"code":"InvitationsDisabled","message":"no"}}"#));
        assert!(matches!(r, DirectoryError::Refused(Refusal { reason: RefusalReason::InvitationsDisabled, .. })));
        let r = refusal_or_error(&resp(403, r#"{"error":{"code":"CloudNotAllowed","message":"R14"}}"#));
        assert!(matches!(r, DirectoryError::Refused(Refusal { reason: RefusalReason::CloudNotAllowed, .. })));
        let documented = r#"{"error":{"code":"Request_BadRequest","message":"This invitation is blocked by cross-tenant access settings. Admins in both your organization and the invited user's organization must configure cross-tenant access settings to allow the invitation."}}"#;
        assert!(matches!(
            refusal_or_error(&resp(400, documented)),
            DirectoryError::Refused(Refusal { reason: RefusalReason::CrossTenantAccessBlocked, .. })
        ));
        let other = refusal_or_error(&resp(
            400,
            r#"{"error":{"code":"Request_BadRequest","message":"bad address","innerError":{"request-id":"r2"}}}"#,
        ));
        match other {
            DirectoryError::Graph(f) => {
                assert_eq!((f.status, f.code.as_str(), f.request_id.as_deref()), (400, "Request_BadRequest", Some("r2")));
                assert_eq!(DirectoryError::Graph(f).category(), "GraphBadRequest");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nicknames_are_plain() {
        assert_eq!(mail_nickname("Fabrikam partners"), "Fabrikampartners");
        assert_eq!(mail_nickname("!!"), "entente-group");
    }

    #[test]
    fn patch_bodies_hold_only_changes_and_null_clears() {
        let patch = GuestPatch {
            display_name: Some("Ann".into()),
            mail: Some(" ann@contoso.com ".into()),
            account_enabled: Some(false),
            attributes: BTreeMap::from([
                ("jobTitle".to_string(), Some("Engineer".to_string())),
                ("department".to_string(), None),
            ]),
            add_to_groups: vec!["G".into()],
            ..GuestPatch::default()
        };
        assert_eq!(
            Value::Object(user_patch_body(&patch).unwrap()),
            json!({"displayName": "Ann", "mail": "ann@contoso.com", "accountEnabled": false, "jobTitle": "Engineer", "department": null})
        );
        assert!(user_patch_body(&GuestPatch { add_to_groups: vec!["G".into()], ..GuestPatch::default() }).unwrap().is_empty());
        let bad = GuestPatch { attributes: BTreeMap::from([("mail".to_string(), None)]), ..GuestPatch::default() };
        assert!(matches!(user_patch_body(&bad), Err(DirectoryError::Invalid(_))));
    }

    #[test]
    fn provisioning_patches_what_the_invitation_did_not_set() {
        let req = ProvisionRequest {
            mail: "ann@contoso.com".into(),
            display_name: Some("Ann".into()),
            user_type: UserType::Member,
            account_enabled: true,
            attributes: BTreeMap::from([("jobTitle".to_string(), "Engineer".to_string())]),
            source_tenant_id: "s".into(),
        };
        let new = Invited::New(InvitationResult {
            user_id: "u".into(),
            user_principal_name: String::new(),
            invite_redeem_url: String::new(),
            status: "PendingAcceptance".into(),
        });
        let p = provision_patch(&req, &new);
        assert_eq!((p.display_name, p.user_type, p.account_enabled), (None, None, None));
        assert_eq!(p.attributes.len(), 1);
        let disabled = ProvisionRequest { account_enabled: false, attributes: BTreeMap::new(), ..req.clone() };
        assert_eq!(provision_patch(&disabled, &new).account_enabled, Some(false));
        let existing = Invited::Existing(User {
            id: "u".into(),
            display_name: Some("Old".into()),
            user_type: Some("Guest".into()),
            account_enabled: Some(false),
            ..User::default()
        });
        let p = provision_patch(&req, &existing);
        assert_eq!(
            (p.display_name.as_deref(), p.user_type, p.account_enabled),
            (Some("Ann"), Some(UserType::Member), Some(true))
        );
    }
}
