//! The `IdentityProvider` kind (R17): an identity provider a tenant's sign-up flows may offer: email
//! one-time passcode, Google, Facebook, Microsoft account, or a SAML/WS-Fed federation. Secrets are never
//! in the manifest: a social provider's client secret is named by `clientSecretRef` (a key of a Secret in
//! the object's namespace; the CLI reads `ENTENTE_IDP_SECRET_<NAMESPACE>_<NAME>` from the environment).

use k8s_openapi::api::core::v1::SecretKeySelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::identity::{AuthenticationProtocol, IdentityProviderType, ProviderState};
use crate::core::model::DeletionPolicy;

/// An identity provider of a tenant.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "IdentityProvider",
    doc = "An identity provider of a tenant for self-service sign-up: email one-time passcode, Google, Facebook, Microsoft account, or a SAML/WS-Fed federation. Secrets are named by reference (clientSecretRef), never written in the object (R17).",
    namespaced,
    status = "IdentityProviderStatus",
    shortname = "idp",
    category = "entente",
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenantRef.name"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityProviderSpec {
    /// The tenant the provider belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// `EmailOneTimePasscode`, `Google`, `Facebook`, `MicrosoftAccount` or `SamlWsFed`. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create another"))]
    pub provider_type: IdentityProviderType,
    /// The name users see on the sign-in button. Default: the type (the first domain for a federation).
    /// Not for `EmailOneTimePasscode`: the built-in provider's name is fixed (Graph always reports its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// Social providers: the OAuth client (app) id at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub client_id: Option<String>,
    /// Social providers: the Secret key holding the OAuth client secret. Never put the secret itself here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeySelector>,
    /// SAML/WS-Fed: the external domains whose users sign in through the federation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub domains: Vec<String>,
    /// SAML/WS-Fed: the issuer URI of the federation server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_uri: Option<String>,
    /// SAML/WS-Fed: the URL users are sent to to sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_sign_in_uri: Option<String>,
    /// SAML/WS-Fed: the metadata exchange URL (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_exchange_uri: Option<String>,
    /// SAML/WS-Fed: `saml` (default) or `wsFed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_authentication_protocol: Option<AuthenticationProtocol>,
    /// SAML/WS-Fed: the token-signing certificate (base64, public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_certificate: Option<String>,
    /// `enabled` (default) or `disabled`. A disabled provider cannot be offered by a SignUpFlow.
    #[serde(default)]
    pub state: ProviderState,
    /// `Delete` (default): removing this object deletes the provider. `Retain`: it is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Observed state of an `IdentityProvider`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The directory's id of the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}
