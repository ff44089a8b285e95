//! Graph credentials from a Kubernetes Secret in the Tenant's namespace. The value is read right
//! before routing, handed to the backend, and never logged, put in a status or in an event: messages
//! name the Secret and the key, never the value.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::status::reason;
use crate::api::Tenant;
use crate::api::tenant::{BackendKind, GraphBackend};
use crate::engine::routes::SecretSource;

/// A client secret read from the cluster for one tenant, or why there is none.
pub struct KubeSecret {
    value: Result<Option<String>, String>,
}

impl SecretSource for KubeSecret {
    fn client_secret(&self, _tenant_id: &str, _graph: &GraphBackend) -> Result<Option<String>, String> {
        self.value.clone()
    }
}

impl std::fmt::Debug for KubeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if matches!(self.value, Ok(Some(_))) { "KubeSecret(<redacted>)" } else { "KubeSecret(none)" })
    }
}

/// Why the credentials could not be read: a condition reason and a message naming the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretProblem {
    pub reason: &'static str,
    pub message: String,
}

/// Reads the client secret a Tenant's Graph backend refers to. `Ok` with a `KubeSecret` holding `None`
/// when the backend needs none (local backend, or a federated token file).
pub async fn fetch(client: &kube::Client, tenant: &Tenant) -> Result<KubeSecret, SecretProblem> {
    let none = KubeSecret { value: Ok(None) };
    let backend = &tenant.spec.backend;
    let (BackendKind::Graph, Some(graph)) = (backend.kind, backend.graph.as_ref()) else { return Ok(none) };
    let Some(selector) = graph.client_secret_ref.as_ref() else {
        if graph.federated_token_file.is_some() {
            return Ok(none);
        }
        return Err(SecretProblem {
            reason: reason::SECRET_NOT_FOUND,
            message: "spec.backend.graph needs clientSecretRef (a Secret in the Tenant's namespace) or federatedTokenFile".into(),
        });
    };
    let ns = tenant.metadata.namespace.as_deref().unwrap_or("default");
    let name = &selector.name;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let missing = |what: String| SecretProblem { reason: reason::SECRET_NOT_FOUND, message: what };
    let secret = match api.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) if selector.optional == Some(true) => return Ok(none),
        Ok(None) => {
            return Err(missing(format!("Secret {ns}/{name} named by spec.backend.graph.clientSecretRef does not exist")));
        }
        Err(e) => {
            return Err(SecretProblem {
                reason: reason::SECRET_NOT_FOUND,
                message: format!("cannot read Secret {ns}/{name} (spec.backend.graph.clientSecretRef): {}", kube_reason(&e)),
            });
        }
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&selector.key))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(&selector.key)).map(|s| s.trim().to_string()));
    match value {
        Some(v) if !v.is_empty() => Ok(KubeSecret { value: Ok(Some(v)) }),
        _ => Err(missing(format!(
            "Secret {ns}/{name} has no non-empty key {:?} (spec.backend.graph.clientSecretRef.key)",
            selector.key
        ))),
    }
}

/// A Kubernetes error without anything the response body might echo back.
fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
        _ => "the API server could not be reached".to_string(),
    }
}
