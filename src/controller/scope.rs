//! Which objects one Tenant's reconcile covers, and what it may do with each. Pure functions over
//! the cached objects.

use std::sync::Arc;

use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use super::patch::{has_finalizer, is_deleting};
use crate::api::{CrossTenantAccessPolicy, GuestInvitation, MultiTenantOrganization, Tenant, TenantRef};
use crate::core::model::{Kind, ObjectRef};

/// What the reconcile does with a child object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Validated, planned and applied.
    Live,
    /// It names a Tenant in another namespace that does not list its namespace in `spec.allowedNamespaces`.
    Denied,
    /// Being deleted and carries our finalizer: its directory object is deleted or released
    /// (`deletionPolicy`), then the finalizer is removed.
    Deleting,
    /// Not ours to act on: being deleted without our finalizer, or new while its Tenant is being deleted.
    Ignored,
}

/// A child of a Tenant (by `spec.tenantRef`): the parts the reconcile needs.
pub trait Child: kube::Resource<DynamicType = ()> + Clone {
    const KIND: Kind;
    fn tenant_ref(&self) -> &TenantRef;
}

impl Child for CrossTenantAccessPolicy {
    const KIND: Kind = Kind::CrossTenantAccessPolicy;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

impl Child for GuestInvitation {
    const KIND: Kind = Kind::GuestInvitation;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.tenant_ref
    }
}

/// A MultiTenantOrganization names several Tenants; as a `Child` it answers its owner (the Tenant
/// reconcile lists organizations with `organizations`, which looks at every Tenant they name).
impl Child for MultiTenantOrganization {
    const KIND: Kind = Kind::MultiTenantOrganization;
    fn tenant_ref(&self) -> &TenantRef {
        &self.spec.owner.tenant_ref
    }
}

/// Whether the organization names `tenant`: as owner, or as a member by `tenantRef` or by `tenantId`.
pub fn names_tenant(mto: &MultiTenantOrganization, tenant: &Tenant) -> bool {
    let own = namespace_of(mto);
    let key = (namespace_of(tenant), tenant.name_any());
    let by_ref = |r: &TenantRef| (r.namespace.clone().unwrap_or_else(|| own.clone()), r.name.clone()) == key;
    by_ref(&mto.spec.owner.tenant_ref)
        || mto.spec.members.iter().any(|m| {
            m.tenant_ref.as_ref().is_some_and(by_ref)
                || m.tenant_id.as_deref().is_some_and(|id| id.trim().eq_ignore_ascii_case(tenant.spec.tenant_id.trim()))
        })
}

/// Every MultiTenantOrganization that names `tenant`, oldest first, with what the reconcile does with each.
pub fn organizations(store: &Store<MultiTenantOrganization>, tenant: &Tenant) -> Vec<Scoped<MultiTenantOrganization>> {
    let mut out: Vec<Scoped<MultiTenantOrganization>> = store
        .state()
        .into_iter()
        .filter(|m| names_tenant(m, tenant))
        .map(|obj| Scoped {
            object: object_ref(Kind::MultiTenantOrganization, obj.as_ref()),
            disposition: disposition(obj.as_ref(), tenant),
            obj,
        })
        .collect();
    out.sort_by(|a, b| {
        let created = |s: &Scoped<MultiTenantOrganization>| s.obj.meta().creation_timestamp.clone();
        created(a).cmp(&created(b)).then_with(|| a.object.cmp(&b.object))
    });
    out
}

pub fn namespace_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().namespace.clone().unwrap_or_else(|| "default".into())
}

/// The (namespace, name) of the Tenant a child names; the namespace defaults to the child's own.
pub fn tenant_of<K: Child>(child: &K) -> (String, String) {
    let r = child.tenant_ref();
    (r.namespace.clone().unwrap_or_else(|| namespace_of(child)), r.name.clone())
}

pub fn object_ref<K: kube::Resource>(kind: Kind, obj: &K) -> ObjectRef {
    ObjectRef::new(kind, namespace_of(obj), obj.name_any())
}

/// One child of the Tenant being reconciled.
#[derive(Clone, Debug)]
pub struct Scoped<K> {
    pub obj: Arc<K>,
    pub object: ObjectRef,
    pub disposition: Disposition,
}

/// Every object of kind `K` that names `tenant`, oldest first (so that when two ask for the same thing,
/// the older one keeps it), with what the reconcile does with each.
pub fn children<K: Child + 'static>(store: &Store<K>, tenant: &Tenant) -> Vec<Scoped<K>> {
    let key = (namespace_of(tenant), tenant.name_any());
    let mut out: Vec<Scoped<K>> = store
        .state()
        .into_iter()
        .filter(|c| tenant_of(c.as_ref()) == key)
        .map(|obj| Scoped { object: object_ref(K::KIND, obj.as_ref()), disposition: disposition(obj.as_ref(), tenant), obj })
        .collect();
    out.sort_by(|a, b| {
        let created = |s: &Scoped<K>| s.obj.meta().creation_timestamp.clone();
        created(a).cmp(&created(b)).then_with(|| a.object.cmp(&b.object))
    });
    out
}

pub fn disposition<K: kube::Resource>(child: &K, tenant: &Tenant) -> Disposition {
    if is_deleting(child) {
        return if has_finalizer(child) { Disposition::Deleting } else { Disposition::Ignored };
    }
    if is_deleting(tenant) && !has_finalizer(child) {
        return Disposition::Ignored;
    }
    if !tenant.spec.allows_namespace(&namespace_of(tenant), &namespace_of(child)) {
        return Disposition::Denied;
    }
    Disposition::Live
}

/// The message of a denied cross-namespace reference.
pub fn denied_message<K: kube::Resource>(child: &K, tenant: &Tenant) -> String {
    format!(
        "spec.tenantRef: Tenant {}/{} does not allow objects from namespace {:?}: add it to the Tenant's spec.allowedNamespaces",
        namespace_of(tenant),
        tenant.name_any(),
        namespace_of(child)
    )
}

/// Another Tenant object that claims the same directory tenant id and came first (older, or same age
/// and a smaller namespace/name): only that one is reconciled.
pub fn claimed_by_other(tenant: &Tenant, tenants: &Store<Tenant>) -> Option<Arc<Tenant>> {
    let id = tenant.spec.tenant_id.to_ascii_lowercase();
    let me = (tenant.meta().creation_timestamp.clone(), namespace_of(tenant), tenant.name_any());
    tenants
        .state()
        .into_iter()
        .filter(|t| t.spec.tenant_id.to_ascii_lowercase() == id)
        .filter(|t| (t.meta().creation_timestamp.clone(), namespace_of(t.as_ref()), t.name_any()) < me)
        .min_by_key(|t| (t.meta().creation_timestamp.clone(), namespace_of(t.as_ref()), t.name_any()))
}
