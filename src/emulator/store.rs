//! The emulator's own rows in the directory file: signing keys, and "extras" — the Graph properties
//! of an object that the directory does not model (a partner's `isServiceProvider`, a group's
//! description, the B2B management policy's display name, …), kept as one JSON object per object so
//! that what a client writes it reads back. A user's profile strings (`jobTitle`, …) are not extras:
//! the directory keeps them (`users.attributes`, schema migration 3) so that every backend and
//! cross-tenant sync see them.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::jwt::SigningKey;
use crate::directory::DirectoryError;
use crate::directory::local::LocalDirectory;

/// Kinds of extras. (`user` was one until schema migration 3 moved users' extras to `users.attributes`.)
pub(crate) mod kind {
    pub const GROUP: &str = "group";
    pub const PARTNER: &str = "partner";
    pub const IDENTITY_SYNC: &str = "identitySynchronization";
    pub const DEFAULT: &str = "crossTenantAccessDefault";
    pub const POLICY_ROOT: &str = "crossTenantAccessPolicy";
    pub const AUTHORIZATION: &str = "authorizationPolicy";
    pub const B2B_POLICY: &str = "b2bManagementPolicy";
}

fn storage(doing: &'static str) -> impl Fn(rusqlite::Error) -> DirectoryError {
    move |e| DirectoryError::Storage(format!("{doing}: {e}"))
}

/// The extras of one object (an empty object when there are none).
pub(crate) fn extras(c: &Connection, tenant_id: &str, kind: &str, key: &str) -> Result<Map<String, Value>, DirectoryError> {
    let json: Option<String> = c
        .prepare_cached("SELECT json FROM emulator_extras WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3")
        .and_then(|mut s| s.query_row(params![tenant_id, kind, key.to_ascii_lowercase()], |r| r.get(0)).optional())
        .map_err(storage("reading extras"))?;
    match json {
        Some(j) => match serde_json::from_str(&j) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Ok(Map::new()),
            Err(e) => Err(DirectoryError::Storage(format!("reading extras: {e}"))),
        },
        None => Ok(Map::new()),
    }
}

/// Whether the object has an extras row at all.
pub(crate) fn has_extras(c: &Connection, tenant_id: &str, kind: &str, key: &str) -> Result<bool, DirectoryError> {
    c.prepare_cached("SELECT 1 FROM emulator_extras WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3")
        .and_then(|mut s| s.exists(params![tenant_id, kind, key.to_ascii_lowercase()]))
        .map_err(storage("reading extras"))
}

/// Replaces the extras of one object.
pub(crate) fn put_extras(
    c: &Connection,
    tenant_id: &str,
    kind: &str,
    key: &str,
    value: &Map<String, Value>,
) -> Result<(), DirectoryError> {
    let json = serde_json::to_string(value).map_err(|e| DirectoryError::Storage(format!("encoding extras: {e}")))?;
    c.prepare_cached(
        "INSERT INTO emulator_extras (tenant_id, kind, key, json) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, kind, key) DO UPDATE SET json = excluded.json",
    )
    .and_then(|mut s| s.execute(params![tenant_id, kind, key.to_ascii_lowercase(), json]))
    .map_err(storage("writing extras"))?;
    Ok(())
}

/// Sets some members of an object's extras (`null` values are kept: Graph reads them back as null).
pub(crate) fn merge_extras(
    c: &Connection,
    tenant_id: &str,
    kind: &str,
    key: &str,
    changes: &Map<String, Value>,
) -> Result<(), DirectoryError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut current = extras(c, tenant_id, kind, key)?;
    for (k, v) in changes {
        current.insert(k.clone(), v.clone());
    }
    put_extras(c, tenant_id, kind, key, &current)
}

pub(crate) fn delete_extras(c: &Connection, tenant_id: &str, kind: &str, key: &str) -> Result<(), DirectoryError> {
    c.prepare_cached("DELETE FROM emulator_extras WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3")
        .and_then(|mut s| s.execute(params![tenant_id, kind, key.to_ascii_lowercase()]))
        .map_err(storage("deleting extras"))?;
    Ok(())
}

/// The file's signing keys, oldest first; when it has none, `fallback` (or a generated key) is stored
/// and returned. Kept in the file so that tokens issued before a restart still validate after it.
pub(crate) fn signing_keys(dir: &LocalDirectory, fallback: Option<&str>) -> Result<Vec<SigningKey>, DirectoryError> {
    let load = |dir: &LocalDirectory| -> Result<Vec<String>, DirectoryError> {
        dir.emulator_read(|c| {
            let mut s = c
                .prepare("SELECT private_key_pem FROM emulator_signing_keys ORDER BY created_at, kid")
                .map_err(storage("reading keys"))?;
            s.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(storage("reading keys"))
        })
    };
    let decode = |pems: Vec<String>| -> Result<Vec<SigningKey>, DirectoryError> {
        pems.iter()
            .map(|p| SigningKey::from_pem(p).map_err(|e| DirectoryError::Storage(format!("a stored signing key: {e}"))))
            .collect()
    };
    let pems = load(dir)?;
    if !pems.is_empty() {
        return decode(pems);
    }
    let key = match fallback {
        Some(pem) => {
            SigningKey::from_pem(pem).map_err(|e| DirectoryError::Invalid(format!("the configured signing key: {e}")))?
        }
        None => SigningKey::generate().map_err(|e| DirectoryError::Storage(format!("generating a signing key: {e}")))?,
    };
    let pem = key.to_pem().map_err(|e| DirectoryError::Storage(e.to_string()))?;
    dir.emulator_write(|c| {
        // Another process may have stored one meanwhile: keep the first.
        c.execute(
            "INSERT INTO emulator_signing_keys (kid, private_key_pem, created_at)
             SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM emulator_signing_keys)",
            params![key.kid(), pem, chrono::Utc::now().to_rfc3339()],
        )
        .map_err(storage("storing a signing key"))?;
        Ok(())
    })?;
    decode(load(dir)?)
}

/// The extras of every object of one kind in a tenant, by key.
pub(crate) fn all_extras(
    c: &Connection,
    tenant_id: &str,
    kind: &str,
) -> Result<std::collections::HashMap<String, Map<String, Value>>, DirectoryError> {
    let mut s = c
        .prepare_cached("SELECT key, json FROM emulator_extras WHERE tenant_id = ?1 AND kind = ?2")
        .map_err(storage("reading extras"))?;
    let rows = s
        .query_map(params![tenant_id, kind], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(storage("reading extras"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, j)| match serde_json::from_str(&j) {
            Ok(Value::Object(m)) => Some((k, m)),
            _ => None,
        })
        .collect())
}
