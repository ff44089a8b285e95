//! The `SignUpFlow` kind (R17): a self-service sign-up user flow of a tenant: which identity providers it
//! offers (IdentityProvider objects, and the built-in email with password), which attributes it collects,
//! which applications use it, and the API connectors it calls to approve, deny or validate a sign-up.

use k8s_openapi::api::core::v1::SecretKeySelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::identity::ConnectorStep;
use crate::core::model::DeletionPolicy;

/// A sign-up user flow of a tenant.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "SignUpFlow",
    doc = "A self-service sign-up user flow of a tenant: the identity providers it offers, the attributes it collects, its API connectors and applications (R17).",
    namespaced,
    status = "SignUpFlowStatus",
    shortname = "suf",
    category = "entente",
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenantRef.name"}"#,
    printcolumn = r#"{"name":"Flow","type":"string","jsonPath":".spec.id"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUpFlowSpec {
    /// The tenant the flow belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The flow's name; Graph prefixes it with `B2X_1_`. Default: the object's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub id: Option<String>,
    /// The identity providers the flow offers: IdentityProvider objects of the same tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_providers: Vec<ProviderRef>,
    /// Whether the built-in email with password sign-up is offered (default true).
    #[serde(default = "yes")]
    pub email_password: bool,
    /// The user attributes collected at sign-up (`city`, `country`, `displayName`, `givenName`, `surname`,
    /// `jobTitle`, `postalCode`, `state`, `streetAddress`, `email`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_attributes: Vec<String>,
    /// Application (client) ids of the apps that use the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    /// API connectors called during sign-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_connectors: Vec<ApiConnectorSpec>,
    /// `Delete` (default): removing this object deletes the flow. `Retain`: it is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn yes() -> bool {
    true
}

/// An IdentityProvider object, by name, in the flow's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An API connector: when it is called, where, and how entente authenticates to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiConnectorSpec {
    /// `postFederationSignup` (after signing in with a provider: approve or deny) or
    /// `postAttributeCollection` (before the user is created: validate or deny).
    pub step: ConnectorStep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The endpoint (https).
    pub target_url: String,
    pub authentication: ConnectorAuthSpec,
}

/// Basic authentication (a username and a password Secret) or a client certificate Secret (PKCS#12).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorAuthSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuthSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateAuthSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthSpec {
    pub username: String,
    /// The Secret key holding the password. Never put the password itself here.
    pub password_secret_ref: SecretKeySelector,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateAuthSpec {
    /// The Secret key holding the PKCS#12 certificate (base64).
    pub certificate_secret_ref: SecretKeySelector,
}

/// Observed state of a `SignUpFlow`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpFlowStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The flow's id in the directory (`B2X_1_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
}
