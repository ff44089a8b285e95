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

/// One request the controller sent: method, path, body (`null` when it had none).
pub type Sent = (String, String, Value);

/// Reconciles the `contoso` Tenant among `objects` (every cache filled from them) against a fake API server
/// that serves the objects by path (a `/status` subresource is its object's), echoes creations and answers
/// anything else 404. Returns the reconcile's result and every request the controller sent.
pub async fn reconcile_contoso(
    objects: &[Value],
    directory: &std::path::Path,
) -> (Result<kube::runtime::controller::Action, entente::controller::Error>, Vec<Sent>) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use entente::api::*;
    use entente::controller::metrics::Metrics;
    use entente::controller::{Context, Settings, Stores, reconcile_tenant};
    use http::{Method, Request, Response};
    use kube::client::Body;

    let by_path: HashMap<String, Value> = objects.iter().map(|o| (path_of(o), o.clone())).collect();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log = sent.clone();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            log.lock().unwrap().push((parts.method.to_string(), parts.uri.path().to_string(), body.clone()));
            let path = parts.uri.path().trim_end_matches("/status");
            let (status, answer) = match (&parts.method, by_path.get(path).cloned()) {
                (&Method::POST, _) => (StatusCode::CREATED, body),
                (_, Some(o)) => (StatusCode::OK, o),
                (_, None) => not_found(),
            };
            send.send_response(
                Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let tenants: Store<Tenant> = store_of(objects, "Tenant");
    let stores = Stores {
        tenants: tenants.clone(),
        policies: store_of::<CrossTenantAccessPolicy>(objects, "CrossTenantAccessPolicy"),
        invitations: store_of::<GuestInvitation>(objects, "GuestInvitation"),
    };
    let mut ctx = Context::new(client, stores, directory, Arc::new(Metrics::default()), Settings::default(), None);
    ctx.identity_providers = store_of::<IdentityProvider>(objects, "IdentityProvider");
    ctx.sign_up_flows = store_of::<SignUpFlow>(objects, "SignUpFlow");
    ctx.connected_organizations = store_of::<ConnectedOrganization>(objects, "ConnectedOrganization");
    ctx.access_packages = store_of::<AccessPackage>(objects, "AccessPackage");
    ctx.conditional_access_policies = store_of::<ConditionalAccessPolicy>(objects, "ConditionalAccessPolicy");
    let tenant = tenants.get(&reflector::ObjectRef::new("contoso").within("default")).unwrap();
    let result = reconcile_tenant(tenant, Arc::new(ctx)).await;
    server.abort();
    let sent = sent.lock().unwrap().clone();
    (result, sent)
}
