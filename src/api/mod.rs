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
}

/// All CRDs as one multi-document YAML stream, as committed under `crds/`.
pub fn crds_yaml() -> String {
    crds().iter().map(|crd| serde_saphyr::to_string(crd).expect("a CRD always serializes")).collect::<Vec<_>>().join("---\n")
}
