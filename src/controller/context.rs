//! What every reconcile shares: the Kubernetes client, the caches, the directory backends, the event
//! recorder, the metrics, and each tenant's failure count for the backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use tracing::warn;

use super::metrics::Metrics;
use crate::api::{CrossTenantAccessPolicy, GuestInvitation, MultiTenantOrganization, Tenant};
use crate::engine::routes::Backends;

/// Settings of the reconcile loop.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A reconcile that takes longer is abandoned (and retried with backoff).
    pub reconcile_timeout: Duration,
    /// First retry after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            reconcile_timeout: Duration::from_secs(300),
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub tenants: Store<Tenant>,
    pub policies: Store<CrossTenantAccessPolicy>,
    pub invitations: Store<GuestInvitation>,
    /// IdentityProviders and SignUpFlows (R17; empty caches unless set: `run_controllers` sets them).
    pub identity_providers: Store<crate::api::IdentityProvider>,
    pub sign_up_flows: Store<crate::api::SignUpFlow>,
    /// ConnectedOrganizations and AccessPackages (R16; empty caches unless set: `run_controllers` sets them).
    pub connected_organizations: Store<crate::api::ConnectedOrganization>,
    pub access_packages: Store<crate::api::AccessPackage>,
    /// ConditionalAccessPolicies (R18; an empty cache unless set: `run_controllers` sets it).
    pub conditional_access_policies: Store<crate::api::ConditionalAccessPolicy>,
    pub backends: Backends,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// MultiTenantOrganizations (an empty cache unless set: `run_controllers` and tests set it).
    pub multi_tenant_organizations: Store<MultiTenantOrganization>,
    /// What Tenant reconciles report to the MultiTenantOrganization controller.
    pub(super) mto: super::mto::Shared,
    failures: Mutex<HashMap<String, u32>>,
    /// Where the key secret markers are made under is kept (beside the directory file), and the key once read.
    marker_key_path: PathBuf,
    marker_key: std::sync::OnceLock<crate::core::identity::MarkerKey>,
}

/// The caches a context reads from.
pub struct Stores {
    pub tenants: Store<Tenant>,
    pub policies: Store<CrossTenantAccessPolicy>,
    pub invitations: Store<GuestInvitation>,
}

impl Context {
    /// `directory` is the local directory file, for tenants whose backend is `local`; `instance` names
    /// this replica in Events.
    pub fn new(
        client: kube::Client,
        stores: Stores,
        directory: impl Into<PathBuf>,
        metrics: Arc<Metrics>,
        settings: Settings,
        instance: Option<String>,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), Reporter { controller: "entente".into(), instance });
        let directory = directory.into();
        let marker_key_path = crate::engine::marker_key::path_beside(&directory);
        Self {
            client,
            tenants: stores.tenants,
            policies: stores.policies,
            invitations: stores.invitations,
            identity_providers: super::identity::empty_store(),
            sign_up_flows: super::identity::empty_store(),
            connected_organizations: super::entitlement::empty_store(),
            access_packages: super::entitlement::empty_store(),
            conditional_access_policies: super::conditional_access::empty_store(),
            backends: Backends::new(directory),
            recorder,
            metrics,
            settings,
            multi_tenant_organizations: super::mto::empty_store(),
            mto: super::mto::Shared::default(),
            failures: Mutex::new(HashMap::new()),
            marker_key_path,
            marker_key: std::sync::OnceLock::new(),
        }
    }

    /// The key secret markers are made under, made on first use and kept beside the directory file.
    pub fn marker_key(&self) -> Result<crate::core::identity::MarkerKey, super::Error> {
        if let Some(k) = self.marker_key.get() {
            return Ok(k.clone());
        }
        let key = crate::engine::marker_key::load(&self.marker_key_path, true).map_err(super::Error::Config)?;
        Ok(self.marker_key.get_or_init(|| key).clone())
    }

    /// Whether every cache has been filled once (a reconcile on a partial cache could miss objects).
    pub fn caches_ready(&self) -> bool {
        let ready = |f: Option<Result<(), _>>| matches!(f, Some(Ok(())));
        ready(self.tenants.wait_until_ready().now_or_never())
            && ready(self.policies.wait_until_ready().now_or_never())
            && ready(self.invitations.wait_until_ready().now_or_never())
            && ready(self.identity_providers.wait_until_ready().now_or_never())
            && ready(self.sign_up_flows.wait_until_ready().now_or_never())
            && ready(self.connected_organizations.wait_until_ready().now_or_never())
            && ready(self.access_packages.wait_until_ready().now_or_never())
            && ready(self.conditional_access_policies.wait_until_ready().now_or_never())
            && ready(self.multi_tenant_organizations.wait_until_ready().now_or_never())
    }

    /// The next retry delay for `key`, counting this failure.
    pub fn backoff(&self, key: &str) -> Duration {
        let n = match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        let wait = self.settings.min_backoff.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)));
        super::reconcile::jitter(wait.min(self.settings.max_backoff))
    }

    pub fn reset_failures(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// Publishes an Event about `obj`; a failure to publish is logged, never fatal. `reason` comes from
    /// a fixed set; `note` never carries a secret.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: EventType, reason: String, note: String) {
        let mut note = note;
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event { type_, reason, note: Some(note), action: "Reconcile".into(), secondary: None };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(error = %e, "could not publish an event");
        }
    }
}
