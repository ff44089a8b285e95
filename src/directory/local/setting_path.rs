//! Out-of-band setting changes ("an admin edited it in the portal"), used to show drift.
//!
//! Generic on purpose: the current settings are loaded as JSON in their Graph shape, the dotted
//! path is set, and the result is deserialized back into the typed settings, which validates both
//! the path (unknown fields are refused) and the value.

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::{Ctx, feed, partners, tenants};
use crate::core::model::PartnerConfiguration;
use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};
use crate::core::settings::{CrossTenantAccessSettings, ExternalCollaborationSettings};
use crate::directory::DirectoryError;

const SYNC: &str = "identitySynchronization";
const MTO: &str = "isInMultiTenantOrganization";

pub(super) fn set_setting(c: &Connection, tenant_id: &str, path: &str, value: Value) -> Result<(), DirectoryError> {
    tenants::require(c, tenant_id)?;
    let unknown = || {
        DirectoryError::Invalid(format!(
            "unknown setting path {path:?}: it starts with externalCollaboration., \
             crossTenantAccessDefault. or partner.<partnerTenantId>."
        ))
    };
    let (area, rest) = path.split_once('.').ok_or_else(unknown)?;
    match area {
        "externalCollaboration" => {
            let current = serde_json::to_value(tenants::collaboration(c, tenant_id)?).ctx("encoding settings")?;
            let settings: ExternalCollaborationSettings = typed(set_path(current, rest, value, path)?, path)?;
            tenants::store_collaboration(c, tenant_id, &ResolvedCollaboration::resolve(&settings))?;
            feed::append(c, tenant_id, "tenant", tenant_id, "externalCollaborationChanged")
        }
        "crossTenantAccessDefault" => {
            let current = tenants::default_access(c, tenant_id)?.to_settings();
            let current = serde_json::to_value(current).ctx("encoding settings")?;
            let settings: CrossTenantAccessSettings = typed(set_path(current, rest, value, path)?, path)?;
            tenants::store_default_access(c, tenant_id, &ResolvedAccess::system_default().overlay(&settings))?;
            feed::append(c, tenant_id, "tenant", tenant_id, "defaultAccessChanged")
        }
        "partner" => {
            let (partner_id, rest) = rest.split_once('.').ok_or_else(unknown)?;
            let partner_id = partner_id.to_ascii_lowercase();
            // An admin may also create a partner configuration this way.
            let current = partners::get(c, tenant_id, &partner_id)?
                .unwrap_or(PartnerConfiguration { tenant_id: partner_id.clone(), ..Default::default() });
            let mut json = serde_json::to_value(&current.settings).ctx("encoding settings")?;
            if let Value::Object(m) = &mut json {
                m.insert(SYNC.into(), serde_json::to_value(&current.identity_synchronization).ctx("encoding settings")?);
                m.insert(MTO.into(), Value::Bool(current.is_in_multi_tenant_organization));
            }
            let mut json = set_path(json, rest, value, path)?;
            let (sync, mto) = match &mut json {
                Value::Object(m) => (m.remove(SYNC).unwrap_or(Value::Null), m.remove(MTO).unwrap_or(Value::Null)),
                _ => (Value::Null, Value::Null),
            };
            let updated = PartnerConfiguration {
                tenant_id: partner_id,
                settings: typed(json, path)?,
                identity_synchronization: typed(sync, path)?,
                is_in_multi_tenant_organization: typed::<Option<bool>>(mto, path)?.unwrap_or(false),
            };
            partners::put(c, tenant_id, &updated)
        }
        _ => Err(unknown()),
    }
}

/// Sets `dotted` (relative to `root`) to `value`, creating the objects on the way.
fn set_path(mut root: Value, dotted: &str, value: Value, full: &str) -> Result<Value, DirectoryError> {
    let segments: Vec<&str> = dotted.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(DirectoryError::Invalid(format!("setting path {full:?} has an empty segment")));
    }
    let (last, parents) = segments.split_last().expect("split yields at least one segment");
    let mut node = &mut root;
    for (i, seg) in parents.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            let at = segments[..i].join(".");
            return Err(DirectoryError::Invalid(format!("{full}: {at} is not an object")));
        };
        node = map.entry(seg.to_string()).or_insert(Value::Null);
    }
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    match node {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        _ => {
            let at = parents.join(".");
            return Err(DirectoryError::Invalid(format!("{full}: {at} is not an object")));
        }
    }
    Ok(root)
}

/// Deserializes the edited JSON back into its type; the error names the path that was set.
fn typed<T: serde::de::DeserializeOwned>(json: Value, path: &str) -> Result<T, DirectoryError> {
    serde_json::from_value(json).map_err(|e| DirectoryError::Invalid(format!("{path}: {e}")))
}
