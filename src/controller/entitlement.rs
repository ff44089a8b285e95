//! ConnectedOrganizations and AccessPackages (R16) in the Tenant reconcile: children of a Tenant by
//! `spec.tenantRef`, listed from reflector caches, validated with the other children through `convert_live`
//! (a package's `specificConnectedOrganizations` name ConnectedOrganizations of the same Tenant), and
//! planned with them.
//!
//! Like CrossTenantAccessPolicies and GuestInvitations, they get the controller's finalizer before the
//! first directory write (deleting one deletes or releases its directory object, per `deletionPolicy`,
//! before the finalizer is removed), the Ready/Synced/Stalled status conditions with `observedGeneration`,
//! and Events (`reconcile.rs`, generic over `Child`).

use kube::runtime::reflector::Store;

use super::scope::Child;
use crate::api::{AccessPackage, ConnectedOrganization, TenantRef};
use crate::core::model::Kind;

impl Child for ConnectedOrganization {
    const KIND: Kind = Kind::ConnectedOrganization;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

impl Child for AccessPackage {
    const KIND: Kind = Kind::AccessPackage;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

/// A cache that is ready and empty (a context that is not given the real ones, as in tests).
pub(super) fn empty_store<K>() -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = kube::runtime::reflector::store::<K>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    store
}
