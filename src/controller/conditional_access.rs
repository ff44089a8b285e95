//! ConditionalAccessPolicies (R18) in the Tenant reconcile: children of a Tenant by `spec.tenantRef`,
//! listed from a reflector cache, validated with the other children through `convert_live`, and planned
//! with them.
//!
//! Not done yet (said in the README): this kind carries no finalizer and gets no status conditions, so
//! deleting one in the cluster does not delete it in the directory (its ownership record stays; the CLI's
//! `--prune` deletes it), and its errors show only in the controller's log and the Tenant's plan.

use kube::runtime::reflector::Store;

use super::scope::{Child, Scoped};
use crate::api::{ConditionalAccessPolicy, Tenant, TenantRef};
use crate::core::model::Kind;

impl Child for ConditionalAccessPolicy {
    const KIND: Kind = Kind::ConditionalAccessPolicy;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

/// The Tenant's ConditionalAccessPolicies from the cache, as live objects for `convert_live`.
pub(super) fn live(policies: &Store<ConditionalAccessPolicy>, tenant: &Tenant) -> Vec<ConditionalAccessPolicy> {
    let p: Vec<Scoped<ConditionalAccessPolicy>> = super::scope::children(policies, tenant);
    p.iter().map(|s| (*s.obj).clone()).collect()
}

/// A cache that is ready and empty (a context that is not given the real one, as in tests).
pub(super) fn empty_store() -> Store<ConditionalAccessPolicy> {
    let (store, mut writer) = kube::runtime::reflector::store::<ConditionalAccessPolicy>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    store
}
