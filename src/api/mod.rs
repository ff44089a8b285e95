//! The Kubernetes API of entente: group `entente.dev`, version `v1alpha1`, namespaced kinds.
//! The spec types reuse the core's Graph-shaped settings, so manifests read like Graph's documentation.

pub mod access_package;
pub mod common;
pub mod conditional_access_policy;
pub mod connected_organization;
pub mod cross_tenant_access_policy;
pub mod guest_invitation;
pub mod identity_provider;
pub mod multi_tenant_organization;
pub mod sign_up_flow;
pub mod sync_job;
pub mod tenant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use access_package::{AccessPackage, AccessPackageSpec};
pub use common::{API_VERSION, TenantRef};
pub use conditional_access_policy::{ConditionalAccessPolicy, ConditionalAccessPolicySpec};
pub use connected_organization::{ConnectedOrganization, ConnectedOrganizationSpec};
pub use cross_tenant_access_policy::{CrossTenantAccessPolicy, CrossTenantAccessPolicySpec};
pub use guest_invitation::{GuestInvitation, GuestInvitationSpec};
pub use identity_provider::{IdentityProvider, IdentityProviderSpec};
pub use multi_tenant_organization::{MultiTenantOrganization, MultiTenantOrganizationSpec};
pub use sign_up_flow::{SignUpFlow, SignUpFlowSpec};
pub use sync_job::{SyncJob, SyncJobSpec};
pub use tenant::{Tenant, TenantSpec};

/// Every CRD entente defines.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        Tenant::crd(),
        CrossTenantAccessPolicy::crd(),
        GuestInvitation::crd(),
        SyncJob::crd(),
        MultiTenantOrganization::crd(),
        IdentityProvider::crd(),
        SignUpFlow::crd(),
        ConnectedOrganization::crd(),
        AccessPackage::crd(),
        ConditionalAccessPolicy::crd(),
    ]
    .into_iter()
    .map(kubernetes_formats)
    .collect()
}

/// schemars names Rust's unsigned integers `uint32`/`uint64`, formats the API server does not know (it
/// warns on every apply); they are `int32`/`int64` with `minimum: 0`, which schemars already sets.
fn kubernetes_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(f)) = m.get_mut("format") {
                    match f.as_str() {
                        "uint8" | "uint16" | "uint32" | "int8" | "int16" => *f = "int32".into(),
                        "uint64" | "uint" => *f = "int64".into(),
                        _ => {}
                    }
                }
                m.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(&crd).expect("a CRD always serializes");
    walk(&mut v);
    serde_json::from_value(v).unwrap_or(crd)
}

/// All CRDs as one multi-document YAML stream, as committed under `crds/`.
pub fn crds_yaml() -> String {
    crds().iter().map(|crd| serde_saphyr::to_string(crd).expect("a CRD always serializes")).collect::<Vec<_>>().join("---\n")
}
