//! Cross-tenant synchronization at scale: a source tenant with N members (default 10,000) synced into
//! a target tenant, then runs after 100 changes, on the embedded directory used directly and through
//! the Graph backend over the emulator (which serves the same kind of directory file over loopback).
//!
//! For each run: wall-clock time, the run's `Directory` calls (`report.directory_calls`), on the
//! emulator the HTTP requests it served for the run (token requests excluded; `$batch` items
//! separately), the run's writes, and the target tenant's change-feed entries (each write of the
//! target directory is one). The baseline, measured in the same run: a full resync
//! (`RunOptions { full: true }`) making the same 100 updates, and one with nothing to do.
//!
//! Run: `cargo bench --bench sync` (N from `ENTENTE_BENCH_N`; the emulator's from
//! `ENTENTE_BENCH_GRAPH_N`, default 2,000, see `main`; `ENTENTE_BENCH_GRAPH_N=0` skips the emulator).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entente::core::model::{Cloud, Kind, ObjectRef, PartnerConfiguration, TenantIdentity};
use entente::core::operation::Operation;
use entente::core::settings::{
    AutomaticUserConsentSettings, CrossTenantAccessSettings, IdentitySynchronization, UserSyncInbound,
};
use entente::core::sync::{AttributeMapping, DesiredSyncJob};
use entente::directory::Directory;
use entente::directory::graph::{APPLY_PERMISSIONS, Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::emulator::{self, EmulatorConfig, EmulatorHandle, Limits, apps};
use entente::sync::{RunOptions, SyncRunReport, SyncStore, missing_in_directory, run_job};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
/// Source users changed between runs.
const CHANGES: usize = 100;

struct Setup {
    dir: Arc<LocalDirectory>,
    source: Arc<dyn Directory>,
    target: Arc<dyn Directory>,
    store: SyncStore,
    emu: Option<EmulatorHandle>,
    members: Vec<String>,
}

fn identity(id: &str, name: &str) -> TenantIdentity {
    TenantIdentity {
        tenant_id: id.into(),
        initial_domain: format!("{name}.onmicrosoft.com"),
        display_name: name.into(),
        cloud: Cloud::Global,
        verified_domains: [format!("{name}.com")].into(),
    }
}

fn graph(dir: &LocalDirectory, emu: &EmulatorHandle, tenant: &str) -> GraphDirectory {
    let perms: Vec<String> = APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = apps::create_app(dir, tenant, "entente-bench", &perms).expect("app");
    let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    config.authority_host = emu.url();
    config.graph_endpoint = emu.url();
    config.page_size = 999;
    GraphDirectory::new(config, Arc::new(SqliteInventory::open_in_memory().expect("inventory"))).expect("graph directory")
}

/// Two tenants in a directory file, fabrikam allowing inbound sync and automatic redemption both ways,
/// and `n` members of contoso with profile attributes.
async fn setup(tmp: &Path, n: usize, over_emulator: bool) -> Setup {
    let dir = Arc::new(LocalDirectory::open(&tmp.join("directory.db")).expect("directory"));
    for (id, name) in [(CONTOSO, "contoso"), (FABRIKAM, "fabrikam")] {
        dir.apply(id, &[Operation::CreateTenant { identity: identity(id, name) }]).await.expect("tenant");
    }
    let consent = |inbound: bool, outbound: bool| CrossTenantAccessSettings {
        automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
            inbound_allowed: Some(inbound),
            outbound_allowed: Some(outbound),
        }),
        ..CrossTenantAccessSettings::default()
    };
    let into_fabrikam = PartnerConfiguration {
        tenant_id: CONTOSO.into(),
        settings: consent(true, false),
        identity_synchronization: Some(IdentitySynchronization { user_sync_inbound: UserSyncInbound { is_sync_allowed: true } }),
        ..PartnerConfiguration::default()
    };
    dir.apply(FABRIKAM, &[Operation::PutPartner { partner: into_fabrikam }]).await.expect("partner");
    let out_of_contoso =
        PartnerConfiguration { tenant_id: FABRIKAM.into(), settings: consent(false, true), ..PartnerConfiguration::default() };
    dir.apply(CONTOSO, &[Operation::PutPartner { partner: out_of_contoso }]).await.expect("partner");
    let people: Vec<(String, Option<String>, BTreeMap<String, String>)> = (0..n)
        .map(|i| {
            let attrs: BTreeMap<String, String> = [
                ("givenName", format!("User{i}")),
                ("surname", "Example".to_string()),
                ("jobTitle", "Engineer".to_string()),
                ("department", format!("Dept {}", i % 20)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            (format!("user{i}@contoso.com"), Some(format!("User {i}")), attrs)
        })
        .collect();
    let members = dir.add_members(CONTOSO, &people).expect("members");
    let store = SyncStore::open(&tmp.join("sync.db")).expect("sync state");
    if !over_emulator {
        return Setup { source: dir.clone(), target: dir.clone(), dir, store, emu: None, members };
    }
    // Throttling off: the figures are requests and their cost, not Graph's waiting times.
    let config = EmulatorConfig { limits: Limits::off(), ..EmulatorConfig::default() };
    let emu = emulator::start(dir.clone(), config).await.expect("emulator");
    let source = Arc::new(graph(&dir, &emu, CONTOSO));
    let target = Arc::new(graph(&dir, &emu, FABRIKAM));
    Setup { dir, source, target, store, emu: Some(emu), members }
}

fn job() -> DesiredSyncJob {
    let mut job = DesiredSyncJob::new(ObjectRef::new(Kind::SyncJob, "default", "bench"), CONTOSO, FABRIKAM);
    job.mappings.push(AttributeMapping { target: "companyName".into(), source: None, constant: Some("Contoso".into()) });
    job
}

/// `CHANGES` members, spread over the tenant, get a new job title.
fn change(s: &Setup, round: usize) {
    let step = (s.members.len() / CHANGES).max(1);
    for k in 0..CHANGES {
        let id = &s.members[(round + k * step) % s.members.len()];
        let title = BTreeMap::from([("jobTitle".to_string(), Some(format!("Title {round}")))]);
        s.dir.set_user_attributes(CONTOSO, id, &title).expect("change");
    }
}

struct Row {
    step: &'static str,
    time: Duration,
    calls: u64,
    /// HTTP requests the emulator served for the run (token requests excluded) and `$batch` items.
    http: Option<(u64, u64)>,
    writes: u64,
    feed: usize,
    report: SyncRunReport,
}

/// One run, measured. The prerequisites are read before (as `run_jobs` does) and not counted.
async fn measure(s: &Setup, step: &'static str, options: RunOptions) -> Row {
    let j = job();
    let source = s.source.snapshot(CONTOSO).await.expect("snapshot").expect("contoso");
    let target = s.target.snapshot(FABRIKAM).await.expect("snapshot").expect("fabrikam");
    let missing = missing_in_directory(&j, &source, &target);
    assert!(missing.is_empty(), "{missing:?}");
    let seq = s.dir.change_seq().expect("seq");
    let before = s.emu.as_ref().map(|e| e.stats());
    let start = Instant::now();
    let report = run_job(&j, s.source.as_ref(), s.target.as_ref(), &s.store, missing, &options).await.expect("run");
    let time = start.elapsed();
    assert!(!report.failed(), "{step}: {report:#?}");
    let http = s.emu.as_ref().zip(before).map(|(e, b)| {
        let a = e.stats();
        (a.graph_requests - b.graph_requests, a.batch_items - b.batch_items)
    });
    let feed = s.dir.changes_since(seq).expect("feed").iter().filter(|c| c.tenant_id == FABRIKAM).count();
    Row { step, time, calls: report.directory_calls, http, writes: report.counts.writes(), feed, report }
}

/// The five runs: initial, incremental after 100 changes, full resync after 100 more, and both with
/// nothing changed.
async fn runs(s: &Setup, n: usize) -> Vec<Row> {
    let full = || RunOptions { full: true, ..RunOptions::default() };
    let mut rows = Vec::new();
    let first = measure(s, "initial sync", RunOptions::default()).await;
    assert_eq!(first.report.counts.created, n as u64);
    rows.push(first);
    change(s, 1);
    let incremental = measure(s, "incremental, 100 changed", RunOptions::default()).await;
    assert_eq!((incremental.report.counts.updated, incremental.report.full), (CHANGES as u64, false));
    rows.push(incremental);
    change(s, 2);
    let resync = measure(s, "full resync, 100 changed", full()).await;
    assert_eq!((resync.report.counts.updated, resync.report.counts.unchanged), (CHANGES as u64, (n - CHANGES) as u64));
    rows.push(resync);
    let quiet = measure(s, "incremental, 0 changed", RunOptions::default()).await;
    assert_eq!(quiet.writes, 0);
    rows.push(quiet);
    let quiet_full = measure(s, "full resync, 0 changed", full()).await;
    assert_eq!((quiet_full.writes, quiet_full.report.counts.unchanged), (0, n as u64));
    rows.push(quiet_full);
    rows
}

fn print(title: &str, rows: &[Row]) {
    println!("{title}");
    println!("  {:<26} {:>11} {:>10} {:>15} {:>8} {:>12}", "run", "time", "dir calls", "HTTP (batch)", "writes", "target feed");
    for r in rows {
        let http = r.http.map_or("-".to_string(), |(req, items)| format!("{req} ({items})"));
        println!(
            "  {:<26} {:>8.1} ms {:>10} {:>15} {:>8} {:>12}",
            r.step,
            r.time.as_secs_f64() * 1000.0,
            r.calls,
            http,
            r.writes,
            r.feed
        );
    }
    let (inc, full) = (&rows[1], &rows[2]);
    print!(
        "  incremental vs full resync (same 100 updates): {:.1}x less time",
        full.time.as_secs_f64() / inc.time.as_secs_f64().max(1e-9)
    );
    if let (Some((a, _)), Some((b, _))) = (inc.http, full.http) {
        print!(", {:.1}x fewer HTTP requests ({a} vs {b})", b as f64 / a.max(1) as f64);
    }
    println!();
    let (quiet, quiet_full) = (&rows[3], &rows[4]);
    println!(
        "  nothing changed: incremental {:.1} ms vs full resync {:.1} ms ({:.0}x)",
        quiet.time.as_secs_f64() * 1000.0,
        quiet_full.time.as_secs_f64() * 1000.0,
        quiet_full.time.as_secs_f64() / quiet.time.as_secs_f64().max(1e-9)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let n = env("ENTENTE_BENCH_N", 10_000);
    // The emulator answers a `$filter` on mail by scanning the tenant's users, so an initial sync
    // through it grows with the square of the tenant (10,000 users: about 10 minutes on 2 cores).
    let graph_n = env("ENTENTE_BENCH_GRAPH_N", n.min(2_000));
    assert!(n >= CHANGES && (graph_n == 0 || graph_n >= CHANGES), "at least {CHANGES} users");

    let tmp = tempfile::tempdir().expect("temp dir");
    let local = setup(tmp.path(), n, false).await;
    let rows = runs(&local, n).await;
    print(
        &format!("entente sync benchmark: {n} source members → target, embedded directory (SQLite, WAL), {CHANGES} changes"),
        &rows,
    );

    if graph_n > 0 {
        let tmp = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let over = setup(tmp.path(), graph_n, true).await;
        let rows = runs(&over, graph_n).await;
        println!();
        print(
            &format!(
                "through the Graph backend over the emulator (loopback HTTP, throttling off): {graph_n} source members, {CHANGES} changes"
            ),
            &rows,
        );
        println!("  (emulator part: {:.1} s in all)", started.elapsed().as_secs_f64());
    }

    let group_n = env("ENTENTE_BENCH_GROUP_N", 10_000);
    if group_n > 0 {
        let tmp = tempfile::tempdir().expect("temp dir");
        group_scoped(tmp.path(), group_n).await;
    }
}

const SCOPE: &str = "Sync Scope";

/// One run of `j`, with its time and the HTTP requests the emulator served for it.
async fn group_run(s: &Setup, j: &DesiredSyncJob, options: RunOptions) -> (SyncRunReport, Duration, u64) {
    let source = s.source.snapshot(CONTOSO).await.expect("snapshot").expect("contoso");
    let target = s.target.snapshot(FABRIKAM).await.expect("snapshot").expect("fabrikam");
    let missing = missing_in_directory(j, &source, &target);
    let before = s.emu.as_ref().map(|e| e.stats());
    let start = Instant::now();
    let report = run_job(j, s.source.as_ref(), s.target.as_ref(), &s.store, missing, &options).await.expect("run");
    let time = start.elapsed();
    assert!(!report.failed(), "{report:#?}");
    let http = s.emu.as_ref().zip(before).map(|(e, b)| e.stats().graph_requests - b.graph_requests).unwrap_or(0);
    (report, time, http)
}

/// A group-scoped job over the emulator: `n` members in the scope group (and `CHANGES` more users
/// outside it), then runs after `CHANGES` membership changes (half leave the group, half join it, no
/// attribute change): reading the membership delta (`/groups/delta` from the stored link) against
/// reading the whole membership (`RunOptions::full_membership`, the baseline, making the same number
/// of writes), and both with nothing changed. The initial sync is made on the embedded directory
/// (the same file, much faster than 10,000 creations over HTTP), then a first run through Graph takes
/// its delta links.
async fn group_scoped(tmp: &Path, n: usize) {
    let local = setup(tmp, n + CHANGES, false).await;
    local.dir.apply(CONTOSO, &[Operation::EnsureGroups { display_names: vec![SCOPE.into()] }]).await.expect("group");
    for id in &local.members[..n] {
        local.dir.add_group_member(CONTOSO, SCOPE, id).expect("member");
    }
    let mut j = job();
    j.scope.groups = vec![SCOPE.into()];
    let (first, _, _) = group_run(&local, &j, RunOptions::default()).await;
    assert_eq!(first.counts.created, n as u64);
    let Setup { dir, store, members, .. } = local;
    let config = EmulatorConfig { limits: Limits::off(), ..EmulatorConfig::default() };
    let emu = emulator::start(dir.clone(), config).await.expect("emulator");
    let over = Setup {
        source: Arc::new(graph(&dir, &emu, CONTOSO)),
        target: Arc::new(graph(&dir, &emu, FABRIKAM)),
        dir,
        store,
        emu: Some(emu),
        members,
    };
    let (takeover, _, _) = group_run(&over, &j, RunOptions { full: true, ..RunOptions::default() }).await;
    assert_eq!(takeover.counts.writes(), 0, "{takeover:#?}");

    // `CHANGES` membership changes: members leave, outsiders (then the leavers) join.
    let churn = |round: usize| {
        let half = CHANGES / 2;
        let (inside, outside): (Vec<&String>, Vec<&String>) = if round % 2 == 1 {
            (over.members[..half].iter().collect(), over.members[n..n + half].iter().collect())
        } else {
            (over.members[n..n + half].iter().collect(), over.members[..half].iter().collect())
        };
        for id in inside {
            over.dir.remove_group_member(CONTOSO, SCOPE, id).expect("leave");
        }
        for id in outside {
            over.dir.add_group_member(CONTOSO, SCOPE, id).expect("join");
        }
    };
    let membership = || RunOptions { full_membership: true, ..RunOptions::default() };
    let mut rows = Vec::new();
    churn(1);
    rows.push(("membership delta, 100 changed", group_run(&over, &j, RunOptions::default()).await));
    churn(2);
    rows.push(("full membership, 100 changed", group_run(&over, &j, membership()).await));
    rows.push(("membership delta, 0 changed", group_run(&over, &j, RunOptions::default()).await));
    rows.push(("full membership, 0 changed", group_run(&over, &j, membership()).await));
    println!();
    println!(
        "group-scoped job through the Graph backend over the emulator: {n} members in the scope group, {CHANGES} membership changes"
    );
    println!("  {:<30} {:>11} {:>10} {:>14} {:>8}", "run", "time", "dir calls", "HTTP requests", "writes");
    for (step, (r, time, http)) in &rows {
        println!(
            "  {:<30} {:>8.1} ms {:>10} {:>14} {:>8}",
            step,
            time.as_secs_f64() * 1000.0,
            r.directory_calls,
            http,
            r.counts.writes()
        );
    }
    let (d, f) = (&rows[0].1, &rows[1].1);
    assert_eq!(d.0.counts.writes(), f.0.counts.writes(), "the same writes");
    assert_eq!((rows[2].1.0.counts.writes(), rows[3].1.0.counts.writes()), (0, 0));
    println!(
        "  100 changed: {:.1}x fewer HTTP requests ({} vs {}), {:.1}x less time; nothing changed: {} vs {} requests, {:.1}x less time",
        f.2 as f64 / d.2.max(1) as f64,
        d.2,
        f.2,
        f.1.as_secs_f64() / d.1.as_secs_f64().max(1e-9),
        rows[2].1.2,
        rows[3].1.2,
        rows[3].1.1.as_secs_f64() / rows[2].1.1.as_secs_f64().max(1e-9)
    );
}
