//! Enforcement of the invitation rules (R3–R5, R9) with the settings stored in this file: the
//! resource tenant's, and the home tenant's when the invited address's domain belongs to another
//! tenant here. The rules themselves are the core's (`crate::core::policy`); this only gathers
//! their inputs.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{groups, partners, tenants, users};
use crate::core::policy::{self, Home, Refusal, RefusalReason, TenantPolicy, email_domain};
use crate::directory::DirectoryError;

type Rule = fn(&TenantPolicy, &str, Option<&Home<'_>>) -> Result<(), Refusal>;

/// Tenant policies read once per change: a change of 10,000 invitations reads each policy once.
#[derive(Default)]
pub(super) struct Policies {
    cache: HashMap<String, TenantPolicy>,
}

impl Policies {
    /// Forgets a tenant's policy after one of its settings changed.
    pub(super) fn forget(&mut self, tenant_id: &str) {
        self.cache.remove(tenant_id);
    }

    /// R3, R4, R5, R9: may `tenant_id` invite `email` now?
    pub(super) fn check_invitation(&mut self, c: &Connection, tenant_id: &str, email: &str) -> Result<(), DirectoryError> {
        self.check(c, tenant_id, email, policy::check_invitation)
    }

    /// R3 (second example), R9: may the pending invitation of `email` be redeemed now?
    pub(super) fn check_redemption(&mut self, c: &Connection, tenant_id: &str, email: &str) -> Result<(), DirectoryError> {
        self.check(c, tenant_id, email, policy::check_redemption)
    }

    /// R13: does `tenant_id` allow inbound user sync from `source` (its partner configuration's
    /// `identitySynchronization.userSyncInbound.isSyncAllowed`)?
    pub(super) fn check_sync_inbound(&mut self, c: &Connection, tenant_id: &str, source: &str) -> Result<(), DirectoryError> {
        let setting = partners::get(c, tenant_id, source)?.map(|p| p.identity_synchronization.map(|s| s.user_sync_inbound));
        let why = match setting {
            Some(Some(inbound)) if inbound.is_sync_allowed => return Ok(()),
            Some(Some(_)) => "is false".to_string(),
            Some(None) => "is not set".to_string(),
            None => format!("is not set: the tenant has no partner configuration for {source}"),
        };
        self.load(c, tenant_id)?;
        let source_name = match tenants::get(c, source)? {
            Some(identity) => format!("{} ({source})", identity.display_name),
            None => source.to_string(),
        };
        Err(DirectoryError::Refused(Refusal {
            reason: RefusalReason::SyncNotAllowed,
            message: format!(
                "tenant {} does not allow inbound user sync from {source_name}: \
                 identitySynchronization.userSyncInbound.isSyncAllowed of its partner configuration for {source} {why} (R13)",
                self.cache[tenant_id].name()
            ),
        }))
    }

    /// R3, R4, R5, R9 for a user whose home tenant is known (`home_id`, the source of a sync job)
    /// rather than found from the address's domain. The person is identified in the home tenant by
    /// `email`; when no user there has it, who they are is unknown (settings naming users or groups
    /// are not held against them).
    pub(super) fn check_invitation_from(
        &mut self,
        c: &Connection,
        tenant_id: &str,
        email: &str,
        home_id: &str,
    ) -> Result<(), DirectoryError> {
        self.load(c, tenant_id)?;
        let home = if home_id != tenant_id && tenants::exists(c, home_id)? {
            self.load(c, home_id)?;
            let ids = match users::id_by_mail(c, home_id, email)? {
                Some(user_id) => {
                    let mut ids = groups::of_user(c, &user_id)?;
                    ids.insert(0, user_id);
                    Some(ids)
                }
                None => None,
            };
            Some(Home { policy: &self.cache[home_id], principal_ids: ids })
        } else {
            None
        };
        policy::check_invitation(&self.cache[tenant_id], email, home.as_ref()).map_err(DirectoryError::Refused)
    }

    fn check(&mut self, c: &Connection, tenant_id: &str, email: &str, rule: Rule) -> Result<(), DirectoryError> {
        self.load(c, tenant_id)?;
        let home = home_of(c, tenant_id, email)?;
        if let Some((home_id, _)) = &home {
            self.load(c, home_id)?;
        }
        let resource = &self.cache[tenant_id];
        let home = home.map(|(id, ids)| Home { policy: &self.cache[&id], principal_ids: Some(ids) });
        rule(resource, email, home.as_ref()).map_err(DirectoryError::Refused)
    }

    fn load(&mut self, c: &Connection, tenant_id: &str) -> Result<(), DirectoryError> {
        if !self.cache.contains_key(tenant_id) {
            self.cache.insert(tenant_id.to_string(), tenants::policy(c, tenant_id)?);
        }
        Ok(())
    }
}

/// The home tenant of `email` (another tenant of this file owning its domain) and who the person is
/// there: their user id and group ids, or nobody known (`[]`) when the home tenant has no such user.
fn home_of(c: &Connection, resource: &str, email: &str) -> Result<Option<(String, Vec<String>)>, DirectoryError> {
    let Some(home) = tenants::owner_of_domain(c, email_domain(email), resource)? else { return Ok(None) };
    let ids = match users::id_by_mail(c, &home, email)? {
        Some(user_id) => {
            let mut ids = groups::of_user(c, &user_id)?;
            ids.insert(0, user_id);
            ids
        }
        None => vec![],
    };
    Ok(Some((home, ids)))
}
