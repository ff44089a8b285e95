//! App registrations: who may call the emulator. Each app belongs to one tenant of the directory
//! file, has client secrets (stored as salted SHA-256 hashes; the secret itself is shown once, at
//! creation) and/or federated credentials (workload identity federation), and a set of granted
//! application permissions that its tokens carry as `roles`.
//!
//! `entente directory app create|list|federate|delete` and tests use these functions directly.

use rand::Rng;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::EmulatorError;
use super::permissions;
use crate::directory::DirectoryError;
use crate::directory::local::LocalDirectory;

/// What `create_app` hands back, once: the secret is not stored and cannot be shown again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub display_name: String,
    pub permissions: Vec<String>,
}

/// An app registration as stored (no secrets, only their hints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRegistration {
    pub tenant_id: String,
    pub client_id: String,
    pub display_name: String,
    pub created_at: String,
    pub permissions: Vec<String>,
    pub secrets: Vec<SecretInfo>,
    pub federated_credentials: Vec<FederatedCredential>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub key_id: String,
    /// The first three characters, as Entra shows them.
    pub hint: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A `federatedIdentityCredential`: tokens from `issuer` about `subject`, for one of `audiences`,
/// may be exchanged for this app's access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// The audience Entra expects in federated assertions unless a credential says otherwise.
pub const DEFAULT_FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Registers an app in `tenant` (id or domain) with the given application permissions and one
/// client secret.
pub fn create_app(
    dir: &LocalDirectory,
    tenant: &str,
    display_name: &str,
    permissions: &[String],
) -> Result<NewApp, EmulatorError> {
    let tenant_id = resolve_tenant(dir, tenant)?;
    let display_name = display_name.trim();
    if display_name.is_empty() {
        return Err(EmulatorError::Config("an app needs a name".into()));
    }
    let permissions = canonical_permissions(permissions)?;
    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = new_secret();
    dir.emulator_write(|c| {
        c.execute(
            "INSERT INTO emulator_apps (client_id, tenant_id, display_name, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![client_id, tenant_id, display_name, now()],
        )
        .map_err(storage("registering an app"))?;
        for p in &permissions {
            c.execute("INSERT INTO emulator_app_permissions (client_id, permission) VALUES (?1, ?2)", params![client_id, p])
                .map_err(storage("granting a permission"))?;
        }
        insert_secret(c, &client_id, &secret, None)
    })?;
    Ok(NewApp { tenant_id, client_id, client_secret: secret, display_name: display_name.to_string(), permissions })
}

/// Adds a client secret to an app; returns it (shown once). `expires_in_days`: `None` never expires.
pub fn add_secret(dir: &LocalDirectory, client_id: &str, expires_in_days: Option<i64>) -> Result<String, EmulatorError> {
    let secret = new_secret();
    let expires = expires_in_days.map(|d| (chrono::Utc::now() + chrono::Duration::days(d)).to_rfc3339());
    dir.emulator_write(|c| {
        require_app(c, client_id)?;
        insert_secret(c, client_id, &secret, expires.as_deref())
    })?;
    Ok(secret)
}

/// Grants more application permissions (tokens issued afterwards carry them).
pub fn grant(dir: &LocalDirectory, client_id: &str, permissions: &[String]) -> Result<(), EmulatorError> {
    let permissions = canonical_permissions(permissions)?;
    dir.emulator_write(|c| {
        require_app(c, client_id)?;
        for p in &permissions {
            c.execute(
                "INSERT OR IGNORE INTO emulator_app_permissions (client_id, permission) VALUES (?1, ?2)",
                params![client_id, p],
            )
            .map_err(storage("granting a permission"))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Adds (or replaces, by name) a federated credential.
pub fn add_federated_credential(dir: &LocalDirectory, client_id: &str, cred: &FederatedCredential) -> Result<(), EmulatorError> {
    if cred.name.trim().is_empty() || cred.issuer.trim().is_empty() || cred.subject.trim().is_empty() {
        return Err(EmulatorError::Config("a federated credential needs a name, an issuer and a subject".into()));
    }
    let audiences =
        if cred.audiences.is_empty() { vec![DEFAULT_FEDERATION_AUDIENCE.to_string()] } else { cred.audiences.clone() };
    let audiences = serde_json::to_string(&audiences).map_err(|e| EmulatorError::Config(e.to_string()))?;
    dir.emulator_write(|c| {
        require_app(c, client_id)?;
        c.execute(
            "INSERT INTO emulator_federated_credentials (client_id, name, issuer, subject, audiences)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (client_id, name) DO UPDATE SET issuer = excluded.issuer, subject = excluded.subject,
               audiences = excluded.audiences",
            params![client_id, cred.name.trim(), cred.issuer.trim(), cred.subject.trim(), audiences],
        )
        .map_err(storage("adding a federated credential"))?;
        Ok(())
    })?;
    Ok(())
}

/// Deletes an app with its secrets, permissions and federated credentials. `false` when there was none.
pub fn delete_app(dir: &LocalDirectory, client_id: &str) -> Result<bool, EmulatorError> {
    Ok(dir.emulator_write(|c| {
        c.execute("DELETE FROM emulator_apps WHERE client_id = ?1", [client_id])
            .map_err(storage("deleting an app"))
            .map(|n| n > 0)
    })?)
}

/// The apps of one tenant (id or domain), or of every tenant.
pub fn list_apps(dir: &LocalDirectory, tenant: Option<&str>) -> Result<Vec<AppRegistration>, EmulatorError> {
    let tenant_id = tenant.map(|t| resolve_tenant(dir, t)).transpose()?;
    Ok(dir.emulator_read(|c| {
        let mut s = c
            .prepare(
                "SELECT client_id, tenant_id, display_name, created_at FROM emulator_apps
                 WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY tenant_id, display_name, client_id",
            )
            .map_err(storage("reading apps"))?;
        let apps = s
            .query_map([&tenant_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, String, String, String)>>>())
            .map_err(storage("reading apps"))?;
        apps.into_iter()
            .map(|(client_id, tenant_id, display_name, created_at)| {
                Ok(AppRegistration {
                    permissions: permissions_of(c, &client_id)?,
                    secrets: secrets_of(c, &client_id)?,
                    federated_credentials: federated_credentials_of(c, &client_id)?,
                    tenant_id,
                    client_id,
                    display_name,
                    created_at,
                })
            })
            .collect()
    })?)
}

/// An app as the token endpoint sees it.
#[derive(Clone, Debug)]
pub(crate) struct AppRecord {
    pub client_id: String,
    pub display_name: String,
    pub permissions: Vec<String>,
    pub federated_credentials: Vec<FederatedCredential>,
}

/// What checking a client secret found.
pub(crate) enum SecretCheck {
    Valid,
    Wrong,
    Expired,
    NoSecrets,
}

/// The app `client_id`, if it is registered in `tenant_id`.
pub(crate) fn app_in_tenant(dir: &LocalDirectory, tenant_id: &str, client_id: &str) -> Result<Option<AppRecord>, DirectoryError> {
    dir.emulator_read(|c| {
        let display_name: Option<String> = c
            .query_row(
                "SELECT display_name FROM emulator_apps WHERE client_id = ?1 AND tenant_id = ?2",
                params![client_id.trim().to_ascii_lowercase(), tenant_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage("reading an app"))?;
        let Some(display_name) = display_name else { return Ok(None) };
        let client_id = client_id.trim().to_ascii_lowercase();
        Ok(Some(AppRecord {
            permissions: permissions_of(c, &client_id)?,
            federated_credentials: federated_credentials_of(c, &client_id)?,
            client_id,
            display_name,
        }))
    })
}

/// Checks `secret` against the app's stored secret hashes.
pub(crate) fn check_secret(dir: &LocalDirectory, client_id: &str, secret: &str) -> Result<SecretCheck, DirectoryError> {
    dir.emulator_read(|c| {
        let mut s = c
            .prepare("SELECT salt, sha256, expires_at FROM emulator_app_secrets WHERE client_id = ?1")
            .map_err(storage("reading secrets"))?;
        let rows = s
            .query_map([client_id.trim().to_ascii_lowercase()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(storage("reading secrets"))?;
        if rows.is_empty() {
            return Ok(SecretCheck::NoSecrets);
        }
        for (salt, hash, expires) in rows {
            if constant_time_eq(hash_secret(&salt, secret).as_bytes(), hash.as_bytes()) {
                let expired =
                    expires.and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok()).is_some_and(|e| e < chrono::Utc::now());
                return Ok(if expired { SecretCheck::Expired } else { SecretCheck::Valid });
            }
        }
        Ok(SecretCheck::Wrong)
    })
}

fn resolve_tenant(dir: &LocalDirectory, tenant: &str) -> Result<String, EmulatorError> {
    match dir.find_tenant(tenant)? {
        Some(t) => Ok(t.tenant_id),
        None => Err(EmulatorError::Config(format!(
            "no tenant {tenant:?} in the directory (`entente apply` with a local-backend Tenant creates it)"
        ))),
    }
}

fn canonical_permissions(permissions: &[String]) -> Result<Vec<String>, EmulatorError> {
    let mut out: Vec<String> = Vec::new();
    for p in permissions.iter().flat_map(|p| p.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        let Some(c) = permissions::canonical(p) else {
            return Err(EmulatorError::Config(format!(
                "unknown application permission {p:?}; the emulator knows: {}",
                permissions::KNOWN.join(", ")
            )));
        };
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    Ok(out)
}

fn require_app(c: &rusqlite::Connection, client_id: &str) -> Result<(), DirectoryError> {
    let exists = c
        .query_row("SELECT 1 FROM emulator_apps WHERE client_id = ?1", [client_id], |_| Ok(()))
        .optional()
        .map_err(storage("reading an app"))?;
    exists.ok_or_else(|| DirectoryError::NotFound(format!("app {client_id}")))
}

fn permissions_of(c: &rusqlite::Connection, client_id: &str) -> Result<Vec<String>, DirectoryError> {
    let mut s = c
        .prepare_cached("SELECT permission FROM emulator_app_permissions WHERE client_id = ?1 ORDER BY permission")
        .map_err(storage("reading permissions"))?;
    s.query_map([client_id], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(storage("reading permissions"))
}

fn secrets_of(c: &rusqlite::Connection, client_id: &str) -> Result<Vec<SecretInfo>, DirectoryError> {
    let mut s = c
        .prepare_cached(
            "SELECT key_id, hint, created_at, expires_at FROM emulator_app_secrets WHERE client_id = ?1 ORDER BY created_at",
        )
        .map_err(storage("reading secrets"))?;
    s.query_map([client_id], |r| {
        Ok(SecretInfo { key_id: r.get(0)?, hint: r.get(1)?, created_at: r.get(2)?, expires_at: r.get(3)? })
    })
    .and_then(|rows| rows.collect())
    .map_err(storage("reading secrets"))
}

fn federated_credentials_of(c: &rusqlite::Connection, client_id: &str) -> Result<Vec<FederatedCredential>, DirectoryError> {
    let mut s = c
        .prepare_cached(
            "SELECT name, issuer, subject, audiences FROM emulator_federated_credentials WHERE client_id = ?1 ORDER BY name",
        )
        .map_err(storage("reading federated credentials"))?;
    let rows = s
        .query_map([client_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, String, String, String)>>>())
        .map_err(storage("reading federated credentials"))?;
    rows.into_iter()
        .map(|(name, issuer, subject, audiences)| {
            let audiences = serde_json::from_str(&audiences)
                .map_err(|e| DirectoryError::Storage(format!("reading a federated credential's audiences: {e}")))?;
            Ok(FederatedCredential { name, issuer, subject, audiences })
        })
        .collect()
}

fn insert_secret(
    c: &rusqlite::Connection,
    client_id: &str,
    secret: &str,
    expires_at: Option<&str>,
) -> Result<(), DirectoryError> {
    let salt: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(16).map(char::from).collect();
    c.execute(
        "INSERT INTO emulator_app_secrets (client_id, key_id, hint, salt, sha256, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            client_id,
            uuid::Uuid::new_v4().to_string(),
            secret.chars().take(3).collect::<String>(),
            salt,
            hash_secret(&salt, secret),
            now(),
            expires_at
        ],
    )
    .map_err(storage("storing a secret"))?;
    Ok(())
}

/// A secret shaped like Entra's: 40 characters with `8Q~` after a three-character hint.
fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String { (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect() };
    format!("{}8Q~{}", pick(3), pick(34))
}

fn hash_secret(salt: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn storage(doing: &'static str) -> impl Fn(rusqlite::Error) -> DirectoryError {
    move |e| DirectoryError::Storage(format!("{doing}: {e}"))
}
