//! IdentityProviders and SignUpFlows (R17) in the Tenant reconcile: they are children of a Tenant by
//! `spec.tenantRef`, listed from reflector caches, validated with the other children through `convert_live`,
//! and planned with them. Their secrets (a social provider's `clientSecretRef`, an API connector's
//! password or certificate) are read from Kubernetes Secrets in the object's namespace when the reconcile
//! needs them; a missing Secret or key leaves the secret unresolved, and the planner reports that object as
//! an error naming the Secret (nothing is written for it).
//!
//! Like CrossTenantAccessPolicies and GuestInvitations, they get the controller's finalizer before the
//! first directory write (deleting one deletes or releases its directory object, per `deletionPolicy`,
//! before the finalizer is removed), the Ready/Synced/Stalled status conditions with `observedGeneration`,
//! and Events (`reconcile.rs`, generic over `Child`).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::Store;

use super::scope::Child;
use crate::api::{IdentityProvider, SignUpFlow, TenantRef};
use crate::core::model::{DesiredState, Kind};

impl Child for IdentityProvider {
    const KIND: Kind = Kind::IdentityProvider;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

impl Child for SignUpFlow {
    const KIND: Kind = Kind::SignUpFlow;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

/// A cache that is ready and empty (a context built without watching these kinds, as in tests).
pub fn empty_store<K>() -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = kube::runtime::reflector::store::<K>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    store
}

/// Reads every secret the desired state names from its Kubernetes Secret. A missing Secret or key, or a
/// value that is not UTF-8, leaves it unresolved (the planner reports it); the value is never logged.
pub(super) async fn resolve_secrets(client: &kube::Client, desired: &mut DesiredState, key: &crate::core::identity::MarkerKey) {
    for s in crate::manifest::identity::secrets_mut(desired) {
        let api: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
        let value = match api.get_opt(&s.secret_name).await {
            Ok(Some(secret)) => secret
                .data
                .as_ref()
                .and_then(|d| d.get(&s.key))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(&s.key).cloned())),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(secret = %s.source(), "cannot read the secret: {e}");
                None
            }
        };
        if value.is_none() {
            tracing::warn!(secret = %s.source(), "secret not available; the object that names it is not planned");
        }
        s.value = value.map(|v| crate::core::identity::SecretValue::under(v, key.clone()));
    }
}
