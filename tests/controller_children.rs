//! The Tenant reconcile (a fake Kubernetes API server, `tower_test::mock::pair`) gives IdentityProviders,
//! SignUpFlows, ConnectedOrganizations, AccessPackages and ConditionalAccessPolicies the finalizer before
//! writing to the directory, a status with `Ready=True` and `observedGeneration`, and on deletion deletes
//! the directory object, then removes the finalizer.

mod kube_support;
use kube_support::{Sent, reconcile_contoso};

use entente::controller::{Error, FINALIZER};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use serde_json::{Value, json};

const TENANT: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";

fn meta(name: &str) -> Value {
    json!({ "namespace": "default", "name": name, "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z" })
}

/// Reconciles the Tenant with these objects; returns the result and every request the controller sent.
async fn reconcile(objects: &[Value], directory: &std::path::Path) -> (Result<(), Error>, Vec<Sent>) {
    let (result, sent) = reconcile_contoso(objects, directory).await;
    (result.map(|_| ()), sent)
}

fn objects() -> Vec<Value> {
    vec![
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta("contoso"),
                "spec": { "tenantId": TENANT, "initialDomain": "contoso.onmicrosoft.com" } }),
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "IdentityProvider", "metadata": meta("google"),
                "spec": { "tenantRef": { "name": "contoso" }, "type": "Google", "clientId": "google-app-id",
                          "clientSecretRef": { "name": "google-oauth", "key": "clientSecret" } } }),
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta("google-oauth"),
                "data": { "clientSecret": "czNjcmV0LXZhbHVl" } }),
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "SignUpFlow", "metadata": meta("partners"),
                "spec": { "tenantRef": { "name": "contoso" }, "identityProviders": [{ "name": "google" }] } }),
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "ConnectedOrganization", "metadata": meta("fabrikam-org"),
                "spec": { "tenantRef": { "name": "contoso" }, "displayName": "Fabrikam",
                          "identitySources": [{ "tenantId": FABRIKAM }] } }),
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "AccessPackage", "metadata": meta("partner-portal"),
                "spec": { "tenantRef": { "name": "contoso" }, "displayName": "Partner portal",
                          "assignmentPolicies": [{ "displayName": "Fabrikam users",
                                                   "requestors": { "specificConnectedOrganizations": ["fabrikam-org"] },
                                                   "expiration": "30d" }] } }),
        json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "ConditionalAccessPolicy", "metadata": meta("guests-mfa"),
                "spec": { "tenantRef": { "name": "contoso" }, "displayName": "Guests MFA",
                          "users": { "includeGuestsOrExternalUsers": { "guestOrExternalUserTypes": ["b2bCollaborationGuest"],
                                                                       "externalTenants": "all" } },
                          "applications": { "includeApplications": ["All"] },
                          "grantControls": { "builtInControls": ["mfa"] } } }),
    ]
}

const CHILDREN: [(&str, &str); 5] = [
    ("identityproviders", "google"),
    ("signupflows", "partners"),
    ("connectedorganizations", "fabrikam-org"),
    ("accesspackages", "partner-portal"),
    ("conditionalaccesspolicies", "guests-mfa"),
];

fn path(plural: &str, name: &str) -> String {
    format!("/apis/entente.dev/v1alpha1/namespaces/default/{plural}/{name}")
}

fn finalizers_patched(sent: &[Sent], plural: &str, name: &str) -> Vec<Vec<String>> {
    sent.iter()
        .filter(|(m, p, _)| m == "PATCH" && *p == path(plural, name))
        .map(|(_, _, b)| {
            b["metadata"]["finalizers"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
        })
        .collect()
}

#[tokio::test]
async fn the_five_newer_kinds_get_the_finalizer_and_ready_status() {
    let tmp = tempfile::tempdir().unwrap();
    let directory = tmp.path().join("directory.db");
    let (result, sent) = reconcile(&objects(), &directory).await;
    result.expect("reconciles");

    for (plural, name) in CHILDREN {
        assert_eq!(finalizers_patched(&sent, plural, name), vec![vec![FINALIZER.to_string()]], "{plural}/{name}");
        let status_path = format!("{}/status", path(plural, name));
        let statuses: Vec<&Value> =
            sent.iter().filter(|(m, p, _)| m == "PATCH" && *p == status_path).map(|(_, _, b)| &b["status"]).collect();
        assert_eq!(statuses.len(), 1, "{plural}/{name}: {sent:#?}");
        let status = statuses[0];
        assert_eq!(status["observedGeneration"], 1, "{plural}/{name}: {status}");
        let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True", "{plural}/{name}: {status}");
        // The finalizer comes before the status (and before any directory write).
        let first_finalizer = sent.iter().position(|(m, p, _)| m == "PATCH" && *p == path(plural, name)).unwrap();
        let first_status = sent.iter().position(|(m, p, _)| m == "PATCH" && *p == status_path).unwrap();
        assert!(first_finalizer < first_status, "{plural}/{name}");
    }
    // The Ready transition is an Event on each object.
    for (_, name) in CHILDREN {
        assert!(
            sent.iter().any(|(m, p, b)| m == "POST" && p.ends_with("/events") && b["regarding"]["name"] == name),
            "no event for {name}"
        );
    }
    let s = LocalDirectory::open(&directory).unwrap().snapshot(TENANT).await.unwrap().unwrap();
    assert_eq!(s.conditional_access.unwrap().len(), 1);
}

#[tokio::test]
async fn a_deleted_conditional_access_policy_is_deleted_in_the_directory_then_released() {
    let tmp = tempfile::tempdir().unwrap();
    let directory = tmp.path().join("directory.db");
    let (result, _) = reconcile(&objects(), &directory).await;
    result.expect("reconciles");

    let mut objects = objects();
    for o in objects.iter_mut().filter(|o| o["kind"] != "Tenant" && o["kind"] != "Secret") {
        o["metadata"]["finalizers"] = json!([FINALIZER]);
    }
    let ca = objects.iter_mut().find(|o| o["kind"] == "ConditionalAccessPolicy").unwrap();
    ca["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    let (result, sent) = reconcile(&objects, &directory).await;
    result.expect("reconciles");

    let s = LocalDirectory::open(&directory).unwrap().snapshot(TENANT).await.unwrap().unwrap();
    assert!(s.conditional_access.unwrap_or_default().is_empty(), "the policy is still in the directory");
    assert_eq!(finalizers_patched(&sent, "conditionalaccesspolicies", "guests-mfa"), vec![Vec::<String>::new()]);
    // The others are left alone: they keep their finalizer.
    for (plural, name) in &CHILDREN[..4] {
        assert!(finalizers_patched(&sent, plural, name).is_empty(), "{plural}/{name}");
    }
}
