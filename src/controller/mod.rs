//! The Kubernetes controller (`entente controller`): keeps every Tenant, CrossTenantAccessPolicy and
//! GuestInvitation in the cluster converged with its directory, through the same observe/plan/apply
//! code as the CLI (`crate::engine`), and says what it does in status conditions, Events and metrics.
//!
//! The unit of work is the Tenant: one reconcile reads the tenant from its directory in bulk and
//! plans every object that names it. The Tenant controller watches the children (mapped to their
//! Tenant through `spec.tenantRef`) and the metadata of Secrets (mapped to the Tenants whose
//! `spec.backend.graph.clientSecretRef` names them). Files: `reconcile` (one Tenant), `scope` (which
//! objects and what to do with each), `status` (verdicts → conditions, pure), `patch` (finalizers and
//! status writes), `secrets`, `orphans` (children whose Tenant is missing), `metrics`, `server`
//! (`/metrics`, `/healthz`, `/readyz`), `context`.
//!
//! SyncJobs have a controller of their own (`sync_jobs`), started beside the Tenant controller under
//! the same leader election and namespace scoping: a job runs on its schedule, not on its Tenant's.
//! MultiTenantOrganizations are children of every Tenant they name (their membership and generated
//! partner configurations are planned per tenant) and have a controller of their own (`mto`) for their
//! status and the sync jobs they generate.

mod conditional_access;
mod context;
mod entitlement;
mod error;
mod identity;
pub mod metrics;
pub mod mto;
mod orphans;
mod patch;
mod reconcile;
pub mod scope;
mod secrets;
pub mod server;
pub mod status;
pub mod sync_jobs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef as StoreRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

pub use context::{Context, Settings, Stores};
pub use error::Error;
pub use mto::{mto_error_policy, reconcile_mto};
pub use orphans::sweep as sweep_orphans;
pub use reconcile::{DEFAULT_INTERVAL, error_policy, reconcile_tenant};
pub use secrets::KubeSecret;
pub use sync_jobs::{SyncContext, reconcile_sync_job, sync_error_policy};

use crate::api::{CrossTenantAccessPolicy, GuestInvitation, MultiTenantOrganization, Tenant};
use metrics::Metrics;
use scope::{Child, namespace_of, tenant_of};
use server::Health;

/// The finalizer entente puts on every object it has written to a directory for.
pub const FINALIZER: &str = "entente.dev/cleanup";
/// How long a reconcile waits for another writer of its tenant (a CLI apply on the same state) before
/// it gives up and is retried with backoff.
pub const WRITER_WAIT: Duration = Duration::from_secs(10);
/// The one field manager of every status entente writes.
pub const FIELD_MANAGER: &str = "entente";

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `entente controller` options.
#[derive(clap::Args, Clone, Debug)]
pub struct ControllerArgs {
    /// The local directory file, for tenants whose backend is `local`.
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = crate::cli::DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "ENTENTE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconcile only while holding a coordination.k8s.io Lease (turn it on when running several replicas).
    #[arg(long, env = "ENTENTE_LEADER_ELECTION", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// The Lease's name.
    #[arg(long, env = "ENTENTE_LEASE_NAME", default_value = "entente-controller")]
    pub lease_name: String,
    /// The Lease's namespace. Default: the pod's namespace (`POD_NAMESPACE`), else the client's default.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease and in Events. Default: `POD_NAME`, else the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Watch one namespace only. Default: every namespace.
    #[arg(long, env = "ENTENTE_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// How many tenants are reconciled at once (one at a time per tenant, always).
    #[arg(long, env = "ENTENTE_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// A reconcile that takes longer is abandoned and retried with backoff, e.g. `5m`.
    #[arg(long, env = "ENTENTE_RECONCILE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub reconcile_timeout: Duration,
    /// Log format on stderr. The level comes from `ENTENTE_LOG` (default `info`).
    #[arg(long, env = "ENTENTE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::core::validate::duration(s)
}

/// Runs the controller until SIGTERM/SIGINT (or, with leader election, until the lease is lost:
/// then it returns `Error::LeaseLost` so the process restarts as a standby).
pub async fn run(args: ControllerArgs) -> Result<(), Error> {
    install_crypto_provider();
    let client = kube::Client::try_default().await?;
    run_with(client, args, shutdown_signal()).await
}

/// Runs the controller with `client` until `shutdown` resolves (tests and embedders).
pub async fn run_with(
    client: kube::Client,
    args: ControllerArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::default());
    metrics::install(metrics.clone());
    let health = Arc::new(Health::default());
    let mut server = tokio::spawn(server::serve(args.metrics_addr, metrics.clone(), health.clone()));
    let identity = args.identity.clone().or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "entente".into());

    // `stop` turns true on a signal or when the lease is lost; every long-running part watches it.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        info!("shutting down");
        let _ = signal_tx.send(true);
    });

    let lost = Arc::new(AtomicBool::new(false));
    let mut lease_task = None;
    if args.leader_election {
        let ns = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        // The API server may be briefly unreachable at start: retry (1 s doubling to 30 s) until stopped.
        let mut wait = Duration::from_secs(1);
        let manager = loop {
            let built = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&ns)
                .with_identity(&identity)
                .with_duration(15)
                .with_grace(5)
                .build()
                .await;
            match built {
                Ok(m) => break m,
                Err(e) => warn!(error = %e, retry_in = ?wait, "cannot set up the leader lease"),
            }
            let mut stop = stop_rx.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        };
        let (mut leading, task) = manager.watch().await;
        lease_task = Some(task);
        health.set_ready(true);
        info!(lease = %args.lease_name, namespace = %ns, identity = %identity, "waiting for the leader lease");
        let mut stop = stop_rx.clone();
        while !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() {
                    return Err(Error::Lease("the lease manager stopped".into()));
                },
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        info!("holding the leader lease");
        let (lost_flag, lease_stop) = (lost.clone(), stop_tx.clone());
        tokio::spawn(async move {
            while leading.changed().await.is_ok() && *leading.borrow() {}
            lost_flag.store(true, Ordering::Release);
            warn!("lost the leader lease: stopping");
            let _ = lease_stop.send(true);
            // Dropping `leading` releases the lease (kube-lease-manager).
        });
    }
    metrics.set_leader(true);

    let result = tokio::select! {
        r = run_controllers(client, &args, metrics.clone(), health, identity, stop_rx) => r,
        r = &mut server => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(Error::Server(std::io::Error::other(e))),
        },
    };
    metrics.set_leader(false);
    server.abort();
    if let Some(task) = lease_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    if lost.load(Ordering::Acquire) {
        return Err(Error::LeaseLost);
    }
    result
}

/// rustls has two crypto providers in this build (ring through kube, aws-lc-rs through reqwest), so it
/// cannot pick one itself: the Kubernetes client would panic on its first TLS connection. Pick ring.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Maps a child to its Tenant; wakes the orphan sweep when that Tenant is not cached.
fn to_tenant<K: Child>(tenants: Store<Tenant>, wake: Arc<Notify>) -> impl Fn(K) -> Option<StoreRef<Tenant>> {
    move |child: K| {
        let (ns, name) = tenant_of(&child);
        let key = StoreRef::new(&name).within(&ns);
        if tenants.get(&key).is_none() {
            wake.notify_one();
        }
        Some(key)
    }
}

/// The Tenants whose credentials are in this Secret.
fn secret_to_tenants(tenants: Store<Tenant>) -> impl Fn(PartialObjectMeta<Secret>) -> Vec<StoreRef<Tenant>> {
    move |secret: PartialObjectMeta<Secret>| {
        let (ns, name) = (namespace_of(&secret), secret.name_any());
        tenants
            .state()
            .iter()
            .filter(|t| namespace_of(t.as_ref()) == ns)
            .filter(|t| {
                let graph = t.spec.backend.graph.as_ref();
                graph.and_then(|g| g.client_secret_ref.as_ref()).is_some_and(|r| r.name == name)
            })
            .map(|t| StoreRef::from_obj(t.as_ref()))
            .collect()
    }
}

async fn run_controllers(
    client: kube::Client,
    args: &ControllerArgs,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    identity: String,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let ns = args.namespace.as_deref();
    let wc = watcher::Config::default();
    let (policies, policy_writer) = reflector::store::<CrossTenantAccessPolicy>();
    let (invitations, invitation_writer) = reflector::store::<GuestInvitation>();
    let policy_events =
        reflector::reflector(policy_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    let invitation_events =
        reflector::reflector(invitation_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    // Only the Secrets' metadata is watched: their values are read when a reconcile needs them.
    let secret_events =
        watcher(scoped_api::<PartialObjectMeta<Secret>>(&client, ns), wc.clone()).default_backoff().touched_objects();
    // MultiTenantOrganizations: a change of spec or a deletion re-queues the Tenants they name (and those
    // their status still lists); a Tenant's spec change re-queues the Tenants sharing an organization with it.
    let (organizations, organization_writer) = reflector::store::<MultiTenantOrganization>();
    let organization_events = reflector::reflector(organization_writer, watcher(scoped_api(&client, ns), wc.clone()))
        .default_backoff()
        .touched_objects()
        .predicate_filter(mto::spec_or_deletion, Default::default());
    let member_events = watcher(scoped_api::<Tenant>(&client, ns), wc.clone())
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::generation, Default::default());

    // IdentityProviders and SignUpFlows (R17): children of a Tenant by `spec.tenantRef`.
    let (identity_providers, idp_writer) = reflector::store::<crate::api::IdentityProvider>();
    let idp_events =
        reflector::reflector(idp_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    let (sign_up_flows, flow_writer) = reflector::store::<crate::api::SignUpFlow>();
    let flow_events =
        reflector::reflector(flow_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    // ConnectedOrganizations and AccessPackages (R16): children of a Tenant by `spec.tenantRef`.
    let (connected_organizations, corg_writer) = reflector::store::<crate::api::ConnectedOrganization>();
    let corg_events =
        reflector::reflector(corg_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    let (access_packages, apkg_writer) = reflector::store::<crate::api::AccessPackage>();
    let apkg_events =
        reflector::reflector(apkg_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    // ConditionalAccessPolicies (R18): children of a Tenant by `spec.tenantRef`.
    let (ca_policies, ca_writer) = reflector::store::<crate::api::ConditionalAccessPolicy>();
    let ca_events =
        reflector::reflector(ca_writer, watcher(scoped_api(&client, ns), wc.clone())).default_backoff().touched_objects();
    let config = ControllerConfig::default().concurrency(args.concurrency).debounce(Duration::from_secs(1));
    let controller = Controller::new(scoped_api::<Tenant>(&client, ns), wc).with_config(config);
    let tenants = controller.store();
    let settings = Settings { reconcile_timeout: args.reconcile_timeout, ..Settings::default() };
    let stores = Stores { tenants: tenants.clone(), policies: policies.clone(), invitations: invitations.clone() };
    let mut ctx = Context::new(client, stores, &args.directory, metrics, settings, Some(identity));
    ctx.identity_providers = identity_providers;
    ctx.sign_up_flows = sign_up_flows;
    ctx.connected_organizations = connected_organizations;
    ctx.access_packages = access_packages;
    ctx.conditional_access_policies = ca_policies;
    ctx.multi_tenant_organizations = organizations.clone();
    let ctx = Arc::new(ctx);

    let wake = Arc::new(Notify::new());
    let sweeper = tokio::spawn(orphans::run(ctx.clone(), wake.clone()));
    let ready = {
        let (t, p, i, health) = (tenants.clone(), policies, invitations, health);
        tokio::spawn(async move {
            if t.wait_until_ready().await.is_ok() && p.wait_until_ready().await.is_ok() && i.wait_until_ready().await.is_ok() {
                info!("caches filled: ready");
                health.set_ready(true);
            }
        })
    };
    let shutdown = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    info!(concurrency = args.concurrency, namespace = ns.unwrap_or("*"), "controller started");
    let sync_jobs = sync_jobs::run(ctx.clone(), args.namespace.clone(), args.concurrency, stop.clone());
    let organizations_loop = mto::run(ctx.clone(), args.namespace.clone(), args.concurrency, stop.clone());
    let tenants_loop = controller
        .watches_stream(policy_events, to_tenant::<CrossTenantAccessPolicy>(tenants.clone(), wake.clone()))
        .watches_stream(invitation_events, to_tenant::<GuestInvitation>(tenants.clone(), wake.clone()))
        .watches_stream(idp_events, to_tenant::<crate::api::IdentityProvider>(tenants.clone(), wake.clone()))
        .watches_stream(flow_events, to_tenant::<crate::api::SignUpFlow>(tenants.clone(), wake.clone()))
        .watches_stream(corg_events, to_tenant::<crate::api::ConnectedOrganization>(tenants.clone(), wake.clone()))
        .watches_stream(apkg_events, to_tenant::<crate::api::AccessPackage>(tenants.clone(), wake.clone()))
        .watches_stream(ca_events, to_tenant::<crate::api::ConditionalAccessPolicy>(tenants.clone(), wake))
        .watches_stream(secret_events, secret_to_tenants(tenants.clone()))
        .watches_stream(organization_events, mto::to_tenants(tenants.clone()))
        .watches_stream(member_events, mto::co_members(tenants, organizations))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_tenant, error_policy, ctx)
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => debug!(tenant = %obj, "reconciled"),
                Err(e) => debug!(error = %e, "controller event"),
            }
        });
    futures::join!(tenants_loop, sync_jobs, organizations_loop);
    sweeper.abort();
    ready.abort();
    Ok(())
}
