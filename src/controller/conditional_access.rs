//! ConditionalAccessPolicies (R18) in the Tenant reconcile: children of a Tenant by `spec.tenantRef`,
//! listed from a reflector cache, validated with the other children through `convert_live`, and planned
//! with them.
//!
//! Like CrossTenantAccessPolicies and GuestInvitations, it gets the controller's finalizer before the
//! first directory write (deleting one deletes or releases its directory object, per `deletionPolicy`,
//! before the finalizer is removed), the Ready/Synced/Stalled status conditions with `observedGeneration`,
//! and Events (`reconcile.rs`, generic over `Child`).

use kube::runtime::reflector::Store;

use super::scope::Child;
use crate::api::{ConditionalAccessPolicy, TenantRef};
use crate::core::model::Kind;

impl Child for ConditionalAccessPolicy {
    const KIND: Kind = Kind::ConditionalAccessPolicy;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

/// A cache that is ready and empty (a context that is not given the real one, as in tests).
pub(super) fn empty_store() -> Store<ConditionalAccessPolicy> {
    let (store, mut writer) = kube::runtime::reflector::store::<ConditionalAccessPolicy>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    store
}
