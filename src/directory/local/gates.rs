//! Enforcement of the invitation rules (R3–R5, R9) with the settings stored in this file: the
//! resource tenant's, and the home tenant's when the invited address's domain belongs to another
//! tenant here. The rules themselves are the core's (`crate::core::policy`); this only gathers
//! their inputs.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{groups, tenants, users};
use crate::core::policy::{self, Home, Refusal, TenantPolicy, email_domain};
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
