//! Identity providers and sign-up user flows (R17), with the rules that affect access:
//! - a flow may only offer providers that exist and are enabled (the built-in email always is);
//! - a provider a flow offers cannot be disabled or deleted: the flow must stop offering it first (the
//!   planner orders such changes so, see `core::plan_identity`).
//!
//! No secret is stored: only the salted hash a plan compares (`client_secret_hash`, connectors'
//! `secretHash`), like the rest of this file (guests authenticate at home, R7).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Ctx, feed};
use crate::core::identity::*;
use crate::core::policy::{Refusal, RefusalReason};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

fn refused(message: String) -> DirectoryError {
    DirectoryError::Refused(Refusal { reason: RefusalReason::SignUpProviderUnavailable, message })
}

/// The tenant's providers and flows.
pub(super) fn state(c: &Connection, tenant_id: &str) -> Result<IdentityState> {
    Ok(IdentityState { providers: providers(c, tenant_id)?, flows: flows(c, tenant_id)? })
}

fn providers(c: &Connection, tenant_id: &str) -> Result<Vec<ObservedIdentityProvider>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, key, provider_type, display_name, client_id, client_secret_hash, saml_json, state
             FROM identity_providers WHERE tenant_id = ?1 ORDER BY key",
        )
        .ctx("reading identity providers")?;
    type Raw = (String, String, String, String, Option<String>, Option<String>, Option<String>, String);
    let rows: Vec<Raw> = s
        .query_map([tenant_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
        .and_then(|rows| rows.collect())
        .ctx("reading identity providers")?;
    rows.into_iter()
        .map(|(id, key, t, display_name, client_id, client_secret_hash, saml, state)| {
            Ok(ObservedIdentityProvider {
                id,
                key,
                provider_type: IdentityProviderType::parse(&t)
                    .ok_or_else(|| DirectoryError::Storage(format!("unknown identity provider type {t:?}")))?,
                display_name,
                client_id,
                client_secret_hash,
                saml: saml.map(|s| serde_json::from_str(&s)).transpose().ctx("reading a federation")?,
                state: ProviderState::parse(&state).unwrap_or_default(),
            })
        })
        .collect()
}

fn flows(c: &Connection, tenant_id: &str) -> Result<Vec<SignUpFlowConfig>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, user_attributes, applications, api_connectors FROM sign_up_flows WHERE tenant_id = ?1 ORDER BY id",
        )
        .ctx("reading sign-up flows")?;
    let rows: Vec<(String, String, String, String)> = s
        .query_map([tenant_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect())
        .ctx("reading sign-up flows")?;
    rows.into_iter()
        .map(|(id, attributes, apps, connectors)| {
            Ok(SignUpFlowConfig {
                identity_providers: flow_providers(c, tenant_id, &id)?,
                user_attributes: serde_json::from_str(&attributes).ctx("reading a flow's attributes")?,
                applications: serde_json::from_str(&apps).ctx("reading a flow's applications")?,
                api_connectors: serde_json::from_str(&connectors).ctx("reading a flow's API connectors")?,
                id,
            })
        })
        .collect()
}

fn flow_providers(c: &Connection, tenant_id: &str, flow_id: &str) -> Result<BTreeSet<String>> {
    let mut s = c
        .prepare_cached("SELECT provider_key FROM sign_up_flow_providers WHERE tenant_id = ?1 AND flow_id = ?2")
        .ctx("reading a flow's providers")?;
    s.query_map(params![tenant_id, flow_id], |r| r.get(0)).and_then(|rows| rows.collect()).ctx("reading a flow's providers")
}

/// The flows that offer `key`.
fn offered_by(c: &Connection, tenant_id: &str, key: &str) -> Result<Vec<String>> {
    let mut s = c
        .prepare_cached("SELECT flow_id FROM sign_up_flow_providers WHERE tenant_id = ?1 AND provider_key = ?2 ORDER BY flow_id")
        .ctx("reading which flows offer a provider")?;
    s.query_map(params![tenant_id, key], |r| r.get(0)).and_then(|rows| rows.collect()).ctx("reading which flows offer a provider")
}

/// Creates or updates a provider (found by `existing_id`, else by key). Returns its id.
pub(super) fn put_provider(
    c: &Connection,
    tenant_id: &str,
    p: &IdentityProviderConfig,
    existing_id: Option<&str>,
) -> Result<String> {
    let current = providers(c, tenant_id)?;
    let existing =
        existing_id.and_then(|id| current.iter().find(|o| o.id == id)).or_else(|| current.iter().find(|o| o.key == p.key));
    if p.provider_type.is_social() && p.client_id.as_deref().is_none_or(str::is_empty) {
        return Err(DirectoryError::Invalid(format!("identity provider {} needs a client id", p.key)));
    }
    if p.provider_type.is_social() && p.client_secret_hash.is_none() && existing.is_none_or(|e| e.client_secret_hash.is_none()) {
        return Err(DirectoryError::Invalid(format!("identity provider {} needs a client secret", p.key)));
    }
    if let Some(s) = &p.saml {
        if s.domains.is_empty() {
            return Err(DirectoryError::Invalid(format!("federation {} needs at least one domain", p.key)));
        }
        for o in current.iter().filter(|o| Some(&o.id) != existing.map(|e| &e.id)) {
            if let Some(os) = &o.saml
                && let Some(d) = os.domains.intersection(&s.domains).next()
            {
                return Err(DirectoryError::Conflict(format!("domain {d} is already federated by identity provider {}", o.key)));
            }
        }
    }
    if p.state == ProviderState::Disabled
        && let Some(e) = existing
    {
        let flows = offered_by(c, tenant_id, &e.key)?;
        if !flows.is_empty() {
            return Err(refused(format!(
                "identity provider {} of tenant {tenant_id} cannot be disabled: sign-up flow(s) {} offer it; remove it \
                 from them first (R17)",
                e.key,
                flows.join(", ")
            )));
        }
    }
    let saml = p.saml.as_ref().map(serde_json::to_string).transpose().ctx("encoding a federation")?;
    let id = match existing {
        Some(e) => {
            if e.key != p.key {
                c.execute(
                    "UPDATE sign_up_flow_providers SET provider_key = ?3 WHERE tenant_id = ?1 AND provider_key = ?2",
                    params![tenant_id, e.key, p.key],
                )
                .ctx("renaming a provider in flows")?;
            }
            c.execute(
                "UPDATE identity_providers SET key = ?3, display_name = ?4, client_id = ?5,
                   client_secret_hash = COALESCE(?6, client_secret_hash), saml_json = ?7, state = ?8
                 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, e.id, p.key, p.display_name, p.client_id, p.client_secret_hash, saml, p.state.as_str()],
            )
            .ctx("updating an identity provider")?;
            feed::append(c, tenant_id, "identityProvider", &e.id, "updated")?;
            e.id.clone()
        }
        None => {
            let id = p.provider_type.graph_id().map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            c.execute(
                "INSERT INTO identity_providers
                   (tenant_id, id, key, provider_type, display_name, client_id, client_secret_hash, saml_json, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    tenant_id,
                    id,
                    p.key,
                    p.provider_type.as_str(),
                    p.display_name,
                    p.client_id,
                    p.client_secret_hash,
                    saml,
                    p.state.as_str()
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    DirectoryError::Conflict(format!("tenant {tenant_id} already has identity provider {}", p.key))
                }
                e => DirectoryError::Storage(format!("creating an identity provider: {e}")),
            })?;
            feed::append(c, tenant_id, "identityProvider", &id, "created")?;
            id
        }
    };
    Ok(id)
}

/// Deletes a provider (by id, else key). Refused while a flow offers it; absent is fine.
pub(super) fn delete_provider(c: &Connection, tenant_id: &str, id: &str, key: &str) -> Result<()> {
    let found: Option<(String, String)> = c
        .query_row(
            "SELECT id, key FROM identity_providers WHERE tenant_id = ?1 AND (id = ?2 OR key = ?3) ORDER BY id = ?2 DESC LIMIT 1",
            params![tenant_id, id, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ctx("reading an identity provider")?;
    let Some((id, key)) = found else { return Ok(()) };
    let flows = offered_by(c, tenant_id, &key)?;
    if !flows.is_empty() {
        return Err(refused(format!(
            "identity provider {key} of tenant {tenant_id} cannot be deleted: sign-up flow(s) {} offer it; remove it \
             from them first (R17)",
            flows.join(", ")
        )));
    }
    c.execute("DELETE FROM identity_providers WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id])
        .ctx("deleting an identity provider")?;
    feed::append(c, tenant_id, "identityProvider", &id, "deleted")
}

/// Creates or replaces a flow. Refused when it offers a provider that does not exist or is disabled.
pub(super) fn put_flow(c: &Connection, tenant_id: &str, f: &SignUpFlowConfig) -> Result<()> {
    if !f.id.starts_with("B2X_1_") || f.id.len() <= "B2X_1_".len() {
        return Err(DirectoryError::Invalid(format!("a user flow id starts with B2X_1_ and names the flow, not {:?}", f.id)));
    }
    if f.identity_providers.is_empty() {
        return Err(DirectoryError::Invalid(format!("sign-up flow {} offers no identity provider", f.id)));
    }
    let current = IdentityState { providers: providers(c, tenant_id)?, flows: vec![] };
    for key in &f.identity_providers {
        provider_usable(&current, tenant_id, key)
            .map_err(|r| refused(format!("sign-up flow {} cannot offer it: {}", f.id, r.message)))?;
    }
    for a in &f.user_attributes {
        if !SIGN_UP_ATTRIBUTES.contains(&a.as_str()) {
            return Err(DirectoryError::Invalid(format!("{a:?} is not a built-in user attribute")));
        }
    }
    let json = |v: &dyn erased::Ser| v.to_json();
    let existed: bool = c
        .query_row("SELECT 1 FROM sign_up_flows WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, f.id], |_| Ok(()))
        .optional()
        .ctx("reading a sign-up flow")?
        .is_some();
    c.execute(
        "INSERT INTO sign_up_flows (tenant_id, id, user_attributes, applications, api_connectors) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, id) DO UPDATE SET user_attributes = excluded.user_attributes,
           applications = excluded.applications, api_connectors = excluded.api_connectors",
        params![tenant_id, f.id, json(&f.user_attributes)?, json(&f.applications)?, json(&f.api_connectors)?],
    )
    .ctx("writing a sign-up flow")?;
    c.execute("DELETE FROM sign_up_flow_providers WHERE tenant_id = ?1 AND flow_id = ?2", params![tenant_id, f.id])
        .ctx("writing a flow's providers")?;
    for key in &f.identity_providers {
        c.execute(
            "INSERT INTO sign_up_flow_providers (tenant_id, flow_id, provider_key) VALUES (?1, ?2, ?3)",
            params![tenant_id, f.id, key],
        )
        .ctx("writing a flow's providers")?;
    }
    feed::append(c, tenant_id, "signUpFlow", &f.id, if existed { "updated" } else { "created" })
}

/// Deletes a flow; absent is fine.
pub(super) fn delete_flow(c: &Connection, tenant_id: &str, id: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM sign_up_flows WHERE tenant_id = ?1 AND id = ?2", params![tenant_id, id])
        .ctx("deleting a sign-up flow")?;
    if n > 0 {
        feed::append(c, tenant_id, "signUpFlow", id, "deleted")?;
    }
    Ok(())
}

mod erased {
    use super::{Ctx, DirectoryError};
    /// Anything serializable, as a JSON string.
    pub trait Ser {
        fn to_json(&self) -> Result<String, DirectoryError>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> Result<String, DirectoryError> {
            serde_json::to_string(self).ctx("encoding a sign-up flow")
        }
    }
}
