//! Prometheus metrics (prometheus-client). Every label value comes from a fixed set: kinds, outcomes,
//! operation names, error categories (STYLE 5); never an object name, an email or an error message.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::model::{Kind, TenantSnapshot};
use crate::core::operation::{Operation, Outcome};
use crate::core::sync::{DirectoryUser, SyncCounts, UserChanges};
use crate::directory::{Directory, DirectoryError, SnapshotScope};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindOutcome {
    pub kind: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectoryRequest {
    /// `snapshot` or `apply`.
    pub operation: &'static str,
    /// `ok`, `refused`, or the directory error's category.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

/// The controller's metrics and the registry that exposes them.
pub struct Metrics {
    pub registry: Registry,
    reconciles: Family<KindOutcome, Counter>,
    reconcile_duration: Family<KindOutcome, Histogram>,
    objects: Family<KindOutcome, Counter>,
    directory_requests: Family<DirectoryRequest, Counter>,
    directory_duration: Family<DirectoryRequest, Histogram>,
    throttle_wait: Counter<f64, AtomicU64>,
    managed: Family<KindLabel, Gauge>,
    leader: Gauge,
    sync_runs: Family<OutcomeLabel, Counter>,
    sync_users: Family<ActionLabel, Counter>,
    managed_by_tenant: Mutex<HashMap<String, (i64, i64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let seconds = || Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let mut m = Self {
            registry: Registry::with_prefix("entente"),
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds),
            objects: Family::default(),
            directory_requests: Family::default(),
            directory_duration: Family::new_with_constructor(seconds),
            throttle_wait: Counter::default(),
            managed: Family::default(),
            leader: Gauge::default(),
            sync_runs: Family::default(),
            sync_users: Family::default(),
            managed_by_tenant: Mutex::new(HashMap::new()),
        };
        let r = &mut m.registry;
        r.register("reconciles", "Reconciles, by kind and outcome (success, error)", m.reconciles.clone());
        r.register("reconcile_duration_seconds", "How long reconciles take, by kind and outcome", m.reconcile_duration.clone());
        r.register(
            "object_syncs",
            "Objects synchronized, by kind and outcome (ready, drift, refused, invalid, denied, blocked, failed, deleting, pending)",
            m.objects.clone(),
        );
        r.register(
            "directory_requests",
            "Directory reads (snapshot) and writes (apply), by operation and status (ok, refused or the error category)",
            m.directory_requests.clone(),
        );
        r.register(
            "directory_request_duration_seconds",
            "How long directory reads and writes take",
            m.directory_duration.clone(),
        );
        r.register(
            "directory_throttle_wait_seconds",
            "Time spent waiting because the directory throttled requests (HTTP 429 Retry-After)",
            m.throttle_wait.clone(),
        );
        r.register("managed_objects", "Objects entente manages in the directories, by kind", m.managed.clone());
        r.register("leader", "1 while this replica holds the leader lease (or runs without leader election)", m.leader.clone());
        r.register("sync_runs", "SyncJob runs, by outcome (success, failed, prerequisites_missing, error)", m.sync_runs.clone());
        r.register(
            "sync_users",
            "Users SyncJob runs wrote in target tenants, by action (created, updated, deleted, disabled, failed)",
            m.sync_users.clone(),
        );
        m
    }
}

impl Metrics {
    pub fn reconciled(&self, kind: Kind, outcome: &'static str, took: Duration) {
        let labels = KindOutcome { kind: kind.as_str(), outcome };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn object(&self, kind: Kind, outcome: &'static str) {
        self.objects.get_or_create(&KindOutcome { kind: kind.as_str(), outcome }).inc();
    }

    pub fn directory_request(&self, operation: &'static str, status: &'static str, took: Duration) {
        let labels = DirectoryRequest { operation, status };
        self.directory_requests.get_or_create(&labels).inc();
        self.directory_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// Time a backend waited because it was throttled.
    pub fn throttled(&self, waited: Duration) {
        self.throttle_wait.inc_by(waited.as_secs_f64());
    }

    /// One SyncJob run (or attempt), by outcome: `success`, `failed`, `prerequisites_missing`, `error`.
    pub fn sync_run(&self, outcome: &'static str) {
        self.sync_runs.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The users one SyncJob run wrote (or failed to write), by action.
    pub fn sync_users(&self, counts: &SyncCounts) {
        for (action, n) in [
            ("created", counts.created),
            ("updated", counts.updated),
            ("deleted", counts.deleted),
            ("disabled", counts.disabled),
            ("failed", counts.failed),
        ] {
            if n > 0 {
                self.sync_users.get_or_create(&ActionLabel { action }).inc_by(n);
            }
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Records how many objects entente manages in one tenant (`None`: the tenant is gone).
    pub fn managed_in(&self, tenant: &str, snapshot: Option<&TenantSnapshot>) {
        let Ok(mut by_tenant) = self.managed_by_tenant.lock() else { return };
        match snapshot {
            Some(s) => {
                let count = |k| s.managed.iter().filter(|r| r.kind == k).count() as i64;
                by_tenant.insert(tenant.to_string(), (count(Kind::CrossTenantAccessPolicy), count(Kind::GuestInvitation)));
            }
            None => {
                by_tenant.remove(tenant);
            }
        }
        let (policies, invitations) = by_tenant.values().fold((0, 0), |(p, i), (a, b)| (p + a, i + b));
        self.managed.get_or_create(&KindLabel { kind: Kind::Tenant.as_str() }).set(by_tenant.len() as i64);
        self.managed.get_or_create(&KindLabel { kind: Kind::CrossTenantAccessPolicy.as_str() }).set(policies);
        self.managed.get_or_create(&KindLabel { kind: Kind::GuestInvitation.as_str() }).set(invitations);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The metrics the throttling layer feeds (the controller installs its own at start).
static THROTTLE_SINK: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Makes `metrics` the one the throttling layer feeds. The first call wins.
pub fn install(metrics: Arc<Metrics>) {
    let _ = THROTTLE_SINK.set(metrics);
}

/// A tracing layer that feeds `entente_directory_throttle_wait_seconds` from the Graph backend's retry
/// events (target `entente::directory::graph`, fields `status` 429 or 503 and `wait`), so throttling is
/// measured where it happens without the backend knowing about metrics. Add it to the subscriber with
/// its own filter (`throttle_layer()` does), so debug events reach it whatever the log level.
pub fn throttle_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    let graph = tracing_subscriber::filter::Targets::new().with_target("entente::directory::graph", tracing::Level::DEBUG);
    ThrottleLayer.with_filter(graph)
}

struct ThrottleLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ThrottleLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let Some(metrics) = THROTTLE_SINK.get() else { return };
        let mut fields = RetryFields::default();
        event.record(&mut fields);
        if let (Some(429 | 503), Some(wait)) = (fields.status, fields.wait) {
            metrics.throttled(wait);
        }
    }
}

#[derive(Default)]
struct RetryFields {
    status: Option<u64>,
    wait: Option<Duration>,
}

impl tracing::field::Visit for RetryFields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "status" {
            self.status = u64::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "wait" {
            self.wait = parse_debug_duration(&format!("{value:?}"));
        }
    }
}

/// A `Duration` as `{:?}` prints it: `1.5s`, `250ms`, `12µs`, `7ns`.
fn parse_debug_duration(s: &str) -> Option<Duration> {
    let (number, scale) = [("ns", 1e-9), ("µs", 1e-6), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0)]
        .into_iter()
        .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, scale)))?;
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * scale))
}

/// A directory that counts and times every read and write.
pub struct Instrumented {
    pub inner: Arc<dyn Directory>,
    pub metrics: Arc<Metrics>,
}

fn status_of<T>(r: &Result<T, DirectoryError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(DirectoryError::Refused(_)) => "refused",
        Err(e) => e.category(),
    }
}

#[async_trait]
impl Directory for Instrumented {
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.snapshot(tenant_id).await;
        self.metrics.directory_request("snapshot", status_of(&r), start.elapsed());
        r
    }

    async fn snapshot_of(&self, tenant_id: &str, scope: &SnapshotScope) -> Result<Option<TenantSnapshot>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.snapshot_of(tenant_id, scope).await;
        self.metrics.directory_request("snapshot", status_of(&r), start.elapsed());
        r
    }

    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.apply(tenant_id, ops).await;
        self.metrics.directory_request("apply", status_of(&r), start.elapsed());
        r
    }

    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.user_changes(tenant_id, cursor).await;
        self.metrics.directory_request("userChanges", status_of(&r), start.elapsed());
        r
    }

    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.users_by_id(tenant_id, ids).await;
        self.metrics.directory_request("usersById", status_of(&r), start.elapsed());
        r
    }

    async fn group_member_ids(&self, tenant_id: &str, group: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.group_member_ids(tenant_id, group).await;
        self.metrics.directory_request("groupMembers", status_of(&r), start.elapsed());
        r
    }

    async fn group_member_changes(
        &self,
        tenant_id: &str,
        group: &str,
        cursor: Option<&str>,
    ) -> Result<Option<crate::directory::MemberChanges>, DirectoryError> {
        let start = Instant::now();
        let r = self.inner.group_member_changes(tenant_id, group, cursor).await;
        self.metrics.directory_request("groupMemberChanges", status_of(&r), start.elapsed());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_waits_are_read_from_the_graph_backends_retry_events() {
        use tracing_subscriber::layer::SubscriberExt;
        assert_eq!(parse_debug_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_debug_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_debug_duration("12µs"), Some(Duration::from_micros(12)));
        assert_eq!(parse_debug_duration("soon"), None);
        let metrics = Arc::new(Metrics::default());
        install(metrics.clone());
        let Some(sink) = THROTTLE_SINK.get() else { unreachable!() };
        let before = sink.throttle_wait.get();
        let subscriber = tracing_subscriber::registry().with(throttle_layer());
        tracing::subscriber::with_default(subscriber, || {
            let wait = Duration::from_millis(1500);
            tracing::debug!(target: "entente::directory::graph::http", status = 429u16, ?wait, "retrying a Graph request");
            tracing::debug!(target: "entente::directory::graph::http", status = 500u16, ?wait, "retrying a Graph request");
            tracing::debug!(target: "somewhere::else", status = 429u16, ?wait, "not the backend");
        });
        assert!((sink.throttle_wait.get() - before - 1.5).abs() < 1e-9, "only the 429 from the backend counts");
    }

    #[test]
    fn metrics_are_exposed_with_fixed_labels() {
        let m = Metrics::default();
        m.reconciled(Kind::Tenant, "success", Duration::from_millis(20));
        m.object(Kind::GuestInvitation, "refused");
        m.directory_request("apply", "ok", Duration::from_millis(3));
        m.set_leader(true);
        m.sync_run("success");
        m.sync_users(&SyncCounts { created: 3, updated: 1, ..SyncCounts::default() });
        let text = m.encode();
        for needle in [
            r#"entente_reconciles_total{kind="Tenant",outcome="success"} 1"#,
            r#"entente_object_syncs_total{kind="GuestInvitation",outcome="refused"} 1"#,
            r#"entente_directory_requests_total{operation="apply",status="ok"} 1"#,
            "entente_reconcile_duration_seconds_bucket",
            "entente_leader 1",
            "entente_directory_throttle_wait_seconds_total",
            r#"entente_sync_runs_total{outcome="success"} 1"#,
            r#"entente_sync_users_total{action="created"} 3"#,
            r#"entente_sync_users_total{action="updated"} 1"#,
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }
}
