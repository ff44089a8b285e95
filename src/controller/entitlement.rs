//! ConnectedOrganizations and AccessPackages (R16) in the Tenant reconcile: children of a Tenant by
//! `spec.tenantRef`, listed from reflector caches, validated with the other children through `convert_live`
//! (a package's `specificConnectedOrganizations` name ConnectedOrganizations of the same Tenant), and
//! planned with them.
//!
//! Not done yet (said in the README): these kinds carry no finalizer and get no status conditions, so
//! deleting one in the cluster does not delete it in the directory (its ownership record stays; the CLI's
//! `--prune` deletes it), and their errors show only in the controller's log and the Tenant's plan.

use kube::runtime::reflector::Store;

use super::scope::{Child, Scoped};
use crate::api::{AccessPackage, ConnectedOrganization, Tenant, TenantRef};
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

/// The Tenant's ConnectedOrganizations and AccessPackages from the caches, as live objects for `convert_live`.
pub(super) fn live(
    organizations: &Store<ConnectedOrganization>,
    packages: &Store<AccessPackage>,
    tenant: &Tenant,
) -> (Vec<ConnectedOrganization>, Vec<AccessPackage>) {
    let o: Vec<Scoped<ConnectedOrganization>> = super::scope::children(organizations, tenant);
    let p: Vec<Scoped<AccessPackage>> = super::scope::children(packages, tenant);
    (o.iter().map(|s| (*s.obj).clone()).collect(), p.iter().map(|s| (*s.obj).clone()).collect())
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
