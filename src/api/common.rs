//! Types shared by the CRDs: references, status conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "entente.dev";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "entente.dev/v1alpha1";

/// CEL: a GUID in the 8-4-4-4-12 form (tenant and object ids).
pub(crate) const CEL_GUID: &str = "self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')";
/// CEL: a DNS domain of at least two labels, like `fabrikam.com`. (The regular expressions use `[.]` and
/// `[:space:]`, never a backslash: CEL string literals accept only a few escapes.)
pub(crate) const CEL_DOMAIN: &str =
    "self.matches('^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?[.])+[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$')";

/// Names the `Tenant` an object belongs to. Immutable: moving an object to another tenant would leave
/// what it created behind; delete it and create a new one instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantRef {
    /// Name of the `Tenant` object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the `Tenant` object. Defaults to the referring object's namespace. A `Tenant` in another
    /// namespace must list this object's namespace in its `spec.allowedNamespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// Status fields every kind carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced` and kind-specific conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
