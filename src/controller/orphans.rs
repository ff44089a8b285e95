//! CrossTenantAccessPolicies and GuestInvitations whose Tenant does not exist: no Tenant reconcile
//! covers them, so a sweep gives them `Ready=False` (`TenantNotFound`) and lets a deleted one go (with
//! no Tenant there is no directory to clean; a Warning event says what was left).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef as StoreRef;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::warn;

use super::context::Context;
use super::error::Error;
use super::patch::{self, has_finalizer, is_deleting};
use super::scope::{Child, tenant_of};
use super::status::{self, Verdict, reason};
use crate::api::common::CommonStatus;
use crate::api::cross_tenant_access_policy::CrossTenantAccessPolicyStatus;
use crate::api::guest_invitation::GuestInvitationStatus;

/// How often the sweep runs without being woken.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Sweeps on every wake-up (a child event whose Tenant is not cached) and every `SWEEP_INTERVAL`.
pub async fn run(ctx: Arc<Context>, wake: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if let Err(e) = sweep(&ctx).await {
            warn!(category = e.category(), error = %e, "sweeping objects whose Tenant is missing failed");
        }
    }
}

/// One pass over every child whose Tenant is not in the cache.
pub async fn sweep(ctx: &Context) -> Result<(), Error> {
    if !ctx.caches_ready() {
        return Ok(());
    }
    for p in ctx.policies.state() {
        let previous = p.status.as_ref();
        handle(ctx, p.as_ref(), previous.map(|s| &s.common), |common| CrossTenantAccessPolicyStatus { common }).await?;
    }
    for i in ctx.invitations.state() {
        let previous = i.status.as_ref();
        let keep = previous.cloned().unwrap_or_default();
        handle(ctx, i.as_ref(), previous.map(|s| &s.common), move |common| GuestInvitationStatus { common, ..keep.clone() })
            .await?;
    }
    Ok(())
}

async fn handle<K, S>(
    ctx: &Context,
    obj: &K,
    previous: Option<&CommonStatus>,
    status_of: impl Fn(CommonStatus) -> S,
) -> Result<(), Error>
where
    K: Child + kube::Resource<Scope = kube::core::NamespaceResourceScope> + DeserializeOwned + Debug,
    S: Serialize,
{
    let (ns, name) = tenant_of(obj);
    if ctx.tenants.get(&StoreRef::new(&name).within(&ns)).is_some() {
        return Ok(());
    }
    if is_deleting(obj) {
        if has_finalizer(obj) {
            patch::remove(&ctx.client, obj).await?;
            let note =
                format!("Tenant {ns}/{name} no longer exists: what this object created in the directory was left in place");
            ctx.publish(obj, EventType::Warning, reason::TENANT_NOT_FOUND.into(), note).await;
        }
        return Ok(());
    }
    let verdict = Verdict::TenantNotFound(format!("spec.tenantRef: there is no Tenant {name:?} in namespace {ns:?}"));
    let conds = status::verdict_conditions(&verdict, vec![]);
    let now = Time(Timestamp::now());
    let common = status::common(&conds, obj.meta().generation, previous, &now);
    if previous == Some(&common) {
        return Ok(());
    }
    ctx.metrics.object(K::KIND, verdict.outcome());
    patch::apply_status(&ctx.client, obj, &status_of(common.clone())).await?;
    if status::ready_transition(previous.map(|p| &p.conditions[..]).unwrap_or_default(), &common.conditions).is_some() {
        ctx.publish(obj, EventType::Warning, verdict.reason().into(), verdict.message()).await;
    }
    Ok(())
}
