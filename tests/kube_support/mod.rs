//! Shared by the controller tests: the pieces of a fake Kubernetes API server and of the controller's
//! caches that every scenario needs the same way.
#![allow(dead_code)]

use http::StatusCode;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};

/// Where the API server keeps an object: `/api/v1/…` for Secrets, `/apis/entente.dev/v1alpha1/…`
/// for entente's kinds (lowercase plural).
pub fn path_of(obj: &Value) -> String {
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    match obj["kind"].as_str().unwrap() {
        "Secret" => format!("/api/v1/namespaces/{ns}/secrets/{name}"),
        kind => format!("/apis/entente.dev/v1alpha1/namespaces/{ns}/{}/{name}", plural(kind)),
    }
}

/// `CrossTenantAccessPolicy` → `crosstenantaccesspolicies`, `SyncJob` → `syncjobs`.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// A JSON merge patch (RFC 7386): `null` removes, objects merge, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The API server's 404.
pub fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// A reflector cache holding these objects, ready (as the controller's caches are once synced).
pub fn store<K>(objects: Vec<Value>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(serde_json::from_value(o).expect("a valid object")));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    // The store stays ready once filled; the writer is not needed any more.
    std::mem::forget(writer);
    store
}

/// `store` of the objects of one kind.
pub fn store_of<K>(objects: &[Value], kind: &str) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    store(objects.iter().filter(|o| o["kind"] == kind).cloned().collect())
}
