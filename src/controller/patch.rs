//! The controller's writes to the Kubernetes API: the finalizer that keeps an object until what it
//! created in the directory is deleted or released, and the status (server-side apply, one field
//! manager). Finalizer patches carry the `resourceVersion` they were computed from, so a concurrent
//! edit makes them fail (409) rather than drop someone else's finalizer.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{FIELD_MANAGER, FINALIZER};

pub fn has_finalizer<K: Resource>(obj: &K) -> bool {
    obj.meta().finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

pub fn is_deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

fn api<K>(client: &kube::Client, obj: &K) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    Api::namespaced(client.clone(), obj.namespace().as_deref().unwrap_or("default"))
}

/// Adds our finalizer (before anything is written to the directory for the object).
pub async fn add<K>(client: &kube::Client, obj: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
    api(client, obj).patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Removes our finalizer; an object that is already gone is fine.
pub async fn remove<K>(client: &kube::Client, obj: &K) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let finalizers: Vec<&String> = obj.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
    match api(client, obj).patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies `status` with server-side apply under the field manager `entente`.
pub async fn apply_status<K, S>(client: &kube::Client, obj: &K, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api(client, obj).patch_status(&obj.name_any(), &params, &Patch::Apply(&patch)).await {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
