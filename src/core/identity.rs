//! Self-service sign-up (R17), pure: the identity providers of a tenant (email one-time passcode, Google,
//! Facebook, Microsoft account, SAML/WS-Fed federation) and its sign-up user flows (which providers they
//! offer, which attributes they collect, which applications use them, which API connectors they call).
//!
//! Secrets (a social provider's client secret, an API connector's password or certificate) are never part
//! of a view, a plan or a record: only where they come from and a salted, truncated SHA-256 of the value
//! (`secret_marker`), so a rotated secret shows as a change without showing the secret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::model::{DeletionPolicy, ObjectRef};
use super::policy::{Refusal, RefusalReason};

/// The kinds of identity provider a sign-up flow can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum IdentityProviderType {
    EmailOneTimePasscode,
    Google,
    Facebook,
    MicrosoftAccount,
    SamlWsFed,
}

impl IdentityProviderType {
    pub const ALL: [IdentityProviderType; 5] =
        [Self::EmailOneTimePasscode, Self::Google, Self::Facebook, Self::MicrosoftAccount, Self::SamlWsFed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailOneTimePasscode => "EmailOneTimePasscode",
            Self::Google => "Google",
            Self::Facebook => "Facebook",
            Self::MicrosoftAccount => "MicrosoftAccount",
            Self::SamlWsFed => "SamlWsFed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// Social providers sign in with an OAuth app: a client id and a client secret.
    pub fn is_social(self) -> bool {
        matches!(self, Self::Google | Self::Facebook | Self::MicrosoftAccount)
    }
    /// Graph's id of the provider (one per tenant), for the types that have a fixed one.
    pub fn graph_id(self) -> Option<&'static str> {
        match self {
            Self::EmailOneTimePasscode => Some("EmailOtpSignup-OAUTH"),
            Self::Google => Some("Google-OAUTH"),
            Self::Facebook => Some("Facebook-OAUTH"),
            Self::MicrosoftAccount => Some("MSASignup-OAUTH"),
            Self::SamlWsFed => None,
        }
    }
}

/// The built-in "email with password" local account: always present, no IdentityProvider object.
pub const BUILT_IN_EMAIL: &str = "EmailPassword";
/// Graph's id of the built-in email with password provider.
pub const BUILT_IN_EMAIL_ID: &str = "EmailPassword-OAUTH";

/// `enabled` or `disabled`. A disabled provider cannot be offered by a sign-up flow (R17).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProviderState {
    #[default]
    Enabled,
    Disabled,
}

impl ProviderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// `saml` or `wsFed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticationProtocol {
    #[default]
    Saml,
    WsFed,
}

/// A SAML/WS-Fed federation with the identity provider of some external domains.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamlSettings {
    /// Lowercase.
    pub domains: BTreeSet<String>,
    pub issuer_uri: String,
    pub passive_sign_in_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_exchange_uri: Option<String>,
    pub preferred_authentication_protocol: AuthenticationProtocol,
    /// The token-signing certificate (base64 DER, public: not a secret).
    pub signing_certificate: String,
}

/// Where a secret comes from and, once resolved, its value. The value never serializes and never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    /// The Kubernetes Secret (in the object's namespace) and key the controller reads.
    pub namespace: String,
    pub secret_name: String,
    pub key: String,
    /// The environment variable the CLI reads instead.
    pub env_var: String,
    /// The CLI reads it from the environment, the controller from the Secret; `None` until then.
    pub value: Option<SecretValue>,
}

impl DesiredSecret {
    /// `Secret ns/name key k`, as plans name it.
    pub fn source(&self) -> String {
        format!("Secret {}/{} key {}", self.namespace, self.secret_name, self.key)
    }
}

impl fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DesiredSecret({}, {})", self.source(), if self.value.is_some() { "resolved" } else { "unresolved" })
    }
}

/// The key secret markers are made under: random, kept with entente's state (`engine::marker_key`), so a
/// marker in a plan, a record or a pull-request comment tells that a secret changed without letting
/// anyone test guesses against it offline.
#[derive(Clone, PartialEq, Eq)]
pub struct MarkerKey(std::sync::Arc<[u8; 32]>);

impl MarkerKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(std::sync::Arc::new(bytes))
    }

    /// A key for this process only (markers made under it match nothing stored): for secrets resolved
    /// where no state is kept, such as the emulator's and tests'.
    pub fn ephemeral() -> Self {
        static KEY: std::sync::OnceLock<MarkerKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| MarkerKey::from_bytes(rand::random())).clone()
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarkerKey(***)")
    }
}

/// A secret value and the key its markers are made under: `Debug` and `Serialize` show `***`, never
/// the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue {
    value: String,
    key: MarkerKey,
}

impl SecretValue {
    /// A value whose markers are made under this process's key (`MarkerKey::ephemeral`).
    pub fn new(value: impl Into<String>) -> Self {
        Self::under(value, MarkerKey::ephemeral())
    }
    /// A value whose markers are made under `key`, the one kept with entente's state.
    pub fn under(value: impl Into<String>, key: MarkerKey) -> Self {
        Self { value: value.into(), key }
    }
    /// The value, for the backend that sends it.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// `from <source>, hmac-sha256 <first 12 hex digits of HMAC-SHA256(key, salt NUL value)>`: the salt is
/// the tenant and the object's key, so the same secret in two places gives two markers; the key is
/// entente's own, so the marker is no oracle. What views and records hold.
pub fn secret_marker(source: &str, salt: &str, value: &SecretValue) -> String {
    format!("from {source}, hmac-sha256 {}", secret_hash(salt, value))
}

/// The keyed hash alone (what the local directory stores instead of the secret).
pub fn secret_hash(salt: &str, value: &SecretValue) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(value.key.bytes()).expect("HMAC takes a key of any length");
    mac.update(salt.as_bytes());
    mac.update(&[0u8]);
    mac.update(value.value.as_bytes());
    mac.finalize().into_bytes().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// One identity provider, as the manifests ask for it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredIdentityProvider {
    pub object: ObjectRef,
    pub provider_type: IdentityProviderType,
    pub display_name: String,
    pub client_id: Option<String>,
    pub client_secret: Option<DesiredSecret>,
    pub saml: Option<SamlSettings>,
    pub state: ProviderState,
    pub deletion_policy: DeletionPolicy,
}

impl DesiredIdentityProvider {
    /// The natural key within the tenant (`provider_key`).
    pub fn key(&self) -> String {
        provider_key(self.provider_type, self.saml.as_ref())
    }
}

/// The natural key of a provider within its tenant: the type for the providers a tenant has one of,
/// `SamlWsFed:<first domain>` for a federation.
pub fn provider_key(t: IdentityProviderType, saml: Option<&SamlSettings>) -> String {
    match (t, saml.and_then(|s| s.domains.iter().next())) {
        (IdentityProviderType::SamlWsFed, Some(d)) => format!("SamlWsFed:{d}"),
        _ => t.as_str().to_string(),
    }
}

/// What a provider is written with: the desired provider with its secret resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderConfig {
    pub key: String,
    pub provider_type: IdentityProviderType,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretValue>,
    /// The salted hash of `client_secret`, for backends that keep only that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSettings>,
    pub state: ProviderState,
}

/// One identity provider as a directory holds it. Secrets are never readable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedIdentityProvider {
    /// The directory's id (`Google-OAUTH`, a GUID for a federation).
    pub id: String,
    pub key: String,
    pub provider_type: IdentityProviderType,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The salted hash of the secret, when the backend keeps one (the local directory); Graph never says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSettings>,
    pub state: ProviderState,
}

/// When an API connector is called during sign-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConnectorStep {
    /// After the user signs in with an identity provider, before the attribute page (approve or deny).
    PostFederationSignup,
    /// After the attribute page, before the user is created (validate or deny).
    PostAttributeCollection,
}

impl ConnectorStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostFederationSignup => "postFederationSignup",
            Self::PostAttributeCollection => "postAttributeCollection",
        }
    }
}

/// How entente authenticates to an API connector's endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectorAuth {
    Basic { username: String, password: DesiredSecret },
    Certificate { pkcs12: DesiredSecret },
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredApiConnector {
    pub step: ConnectorStep,
    pub display_name: String,
    pub target_url: String,
    pub auth: ConnectorAuth,
}

/// The user attributes a sign-up flow may collect (built-in attributes, Graph names).
pub const SIGN_UP_ATTRIBUTES: &[&str] =
    &["city", "country", "displayName", "givenName", "surname", "jobTitle", "postalCode", "state", "streetAddress", "email"];

/// A sign-up user flow, as the manifests ask for it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredSignUpFlow {
    pub object: ObjectRef,
    /// With Graph's `B2X_1_` prefix.
    pub id: String,
    /// Provider keys (`provider_key`, or `BUILT_IN_EMAIL`).
    pub identity_providers: BTreeSet<String>,
    /// Provider key → the IdentityProvider object it came from (for messages).
    pub provider_objects: BTreeMap<String, ObjectRef>,
    pub user_attributes: BTreeSet<String>,
    /// Application (client) ids, lowercase.
    pub applications: BTreeSet<String>,
    pub api_connectors: Vec<DesiredApiConnector>,
    pub deletion_policy: DeletionPolicy,
}

/// The Graph id of a flow named `name`: `B2X_1_<name>` (a name that already has the prefix keeps it).
pub fn flow_id(name: &str) -> String {
    if name.starts_with("B2X_1_") { name.to_string() } else { format!("B2X_1_{name}") }
}

/// An API connector as written: secrets as salted hashes only, plus the value for the backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiConnectorConfig {
    pub step: ConnectorStep,
    pub display_name: String,
    pub target_url: String,
    /// `basic` or `certificate`.
    pub authentication: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Salted hash of the password or certificate.
    pub secret_hash: String,
    #[serde(skip)]
    pub secret: Option<SecretValueHolder>,
}

/// `SecretValue` inside a deserializable struct (never deserialized: always `None` when read).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretValueHolder(pub SecretValue);

/// A sign-up flow as written to, and read from, a directory. Providers by key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUpFlowConfig {
    pub id: String,
    pub identity_providers: BTreeSet<String>,
    pub user_attributes: BTreeSet<String>,
    pub applications: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_connectors: Vec<ApiConnectorConfig>,
}

/// The identity providers and sign-up flows of a tenant, as a directory holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityState {
    pub providers: Vec<ObservedIdentityProvider>,
    pub flows: Vec<SignUpFlowConfig>,
}

/// R17: may a user sign up through `flow` with the provider `provider_key`? The flow must offer it and the
/// provider must exist and be enabled (the built-in email always is).
pub fn check_sign_up(state: &IdentityState, tenant: &str, flow_id: &str, provider_key: &str) -> Result<(), Refusal> {
    let refuse = |message: String| Err(Refusal { reason: RefusalReason::SignUpProviderUnavailable, message });
    let Some(flow) = state.flows.iter().find(|f| f.id.eq_ignore_ascii_case(flow_id)) else {
        return refuse(format!("tenant {tenant} has no sign-up flow {flow_id} (R17)"));
    };
    if !flow.identity_providers.contains(provider_key) {
        let offered: Vec<&str> = flow.identity_providers.iter().map(String::as_str).collect();
        return refuse(format!(
            "sign-up flow {} of tenant {tenant} does not offer identity provider {provider_key} (it offers: {}) (R17)",
            flow.id,
            if offered.is_empty() { "none".into() } else { offered.join(", ") }
        ));
    }
    provider_usable(state, tenant, provider_key)
}

/// R17: whether a provider can be offered: it exists and is enabled (the built-in email always is).
pub fn provider_usable(state: &IdentityState, tenant: &str, provider_key: &str) -> Result<(), Refusal> {
    if provider_key == BUILT_IN_EMAIL {
        return Ok(());
    }
    let refuse = |message: String| Err(Refusal { reason: RefusalReason::SignUpProviderUnavailable, message });
    match state.providers.iter().find(|p| p.key == provider_key) {
        None => refuse(format!("identity provider {provider_key} does not exist in tenant {tenant} (R17)")),
        Some(p) if p.state == ProviderState::Disabled => {
            refuse(format!("identity provider {provider_key} of tenant {tenant} is disabled (R17)"))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_hide_the_secret_and_change_with_it() {
        let a = secret_marker("env X", "t/Google", &SecretValue::new("s3cret"));
        let b = secret_marker("env X", "t/Google", &SecretValue::new("s3cret2"));
        assert!(!a.contains("s3cret"));
        assert_ne!(a, b);
        assert_eq!(format!("{:?}", SecretValue::new("s3cret")), "***");
        // Under another key, the same secret has another marker: nobody without entente's key can test a guess.
        let k1 = MarkerKey::from_bytes([1; 32]);
        let k2 = MarkerKey::from_bytes([2; 32]);
        let m1 = secret_marker("env X", "t/Google", &SecretValue::under("Summer2024!", k1.clone()));
        assert_eq!(m1, secret_marker("env X", "t/Google", &SecretValue::under("Summer2024!", k1)));
        assert_ne!(m1, secret_marker("env X", "t/Google", &SecretValue::under("Summer2024!", k2)));
        let public = {
            use sha2::Digest;
            let mut h = Sha256::new();
            h.update(b"t/Google\0Summer2024!");
            h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert!(!m1.contains(&public), "not the old unkeyed digest");
        assert_eq!(serde_json::to_string(&SecretValue::new("s3cret")).unwrap(), "\"***\"");
    }

    #[test]
    fn sign_up_needs_an_offered_enabled_provider() {
        let provider = |key: &str, state| ObservedIdentityProvider {
            id: key.into(),
            key: key.into(),
            provider_type: IdentityProviderType::Google,
            display_name: key.into(),
            client_id: None,
            client_secret_hash: None,
            saml: None,
            state,
        };
        let flow = SignUpFlowConfig {
            id: "B2X_1_p".into(),
            identity_providers: ["Google".to_string(), BUILT_IN_EMAIL.to_string()].into(),
            ..Default::default()
        };
        let mut s = IdentityState { providers: vec![provider("Google", ProviderState::Enabled)], flows: vec![flow] };
        assert!(check_sign_up(&s, "t", "B2X_1_p", "Google").is_ok());
        assert!(check_sign_up(&s, "t", "B2X_1_p", BUILT_IN_EMAIL).is_ok());
        assert!(check_sign_up(&s, "t", "B2X_1_p", "Facebook").unwrap_err().message.contains("does not offer"));
        s.providers[0].state = ProviderState::Disabled;
        assert!(check_sign_up(&s, "t", "B2X_1_p", "Google").unwrap_err().message.contains("disabled"));
    }
}
