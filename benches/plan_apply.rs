//! Plan and apply at scale: one tenant with N guest invitations (default 10,000) against the embedded
//! directory. Prints wall-clock figures and, as a baseline measured in the same run, the cost of
//! observing the same invitations one lookup per object instead of one bulk snapshot.
//!
//! Run: `cargo bench --bench plan_apply` (N from `ENTENTE_BENCH_N`).

use std::time::{Duration, Instant};

use entente::core::plan::{PlanOptions, plan};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::engine::{self, Routes};
use entente::manifest::load_str;

const TENANT_ID: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

fn manifests(n: usize) -> String {
    let mut s = format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{ name: contoso }}\nspec:\n  tenantId: {TENANT_ID}\n  initialDomain: contoso.onmicrosoft.com\n  groups: [{{ displayName: Partners }}]\n"
    );
    for i in 0..n {
        s.push_str(&format!(
            "---\napiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {{ name: guest-{i} }}\nspec:\n  tenantRef: {{ name: contoso }}\n  invitedUserEmailAddress: guest{i}@partner{}.example\n  invitedUserDisplayName: Guest {i}\n  groups: [Partners]\n",
            i % 50
        ));
    }
    s
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:>9.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("ENTENTE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = std::sync::Arc::new(LocalDirectory::open(&tmp.path().join("bench.db")).expect("directory"));
    let routes: Routes = Routes::from([(TENANT_ID.to_string(), Ok(dir.clone() as std::sync::Arc<dyn Directory>))]);

    let text = manifests(n);
    let (m, load) = time(|| load_str(&[("bench.yaml", &text)]).expect("valid manifests"));

    let start = Instant::now();
    let first = engine::plan_against(&m.desired, &routes, PlanOptions::default()).await;
    let plan_cold = start.elapsed();
    let start = Instant::now();
    let report = engine::apply(&first, &routes).await;
    let apply_first = start.elapsed();
    assert_eq!(report.failed(), 0, "apply failed");

    let start = Instant::now();
    let observed = engine::observe(&m.desired, &routes).await;
    let observe_bulk = start.elapsed();
    let (second, plan_only) = time(|| plan(&m.desired, &observed, PlanOptions::default()));
    let start = Instant::now();
    let report2 = engine::apply(&second, &routes).await;
    let apply_noop = start.elapsed() + observe_bulk + plan_only;
    assert_eq!(report2.writes, 0, "a second apply makes no writes");

    // Baseline: the same observation as one directory lookup per invitation.
    let (found, observe_per_object) = time(|| {
        m.desired.tenants[0]
            .invitations
            .iter()
            .filter(|i| dir.user_by_mail(TENANT_ID, &i.email).expect("lookup").is_some())
            .count()
    });
    assert_eq!(found, n);

    println!("entente plan/apply benchmark: 1 tenant, {n} guest invitations, embedded directory (SQLite, WAL)");
    println!("  load + validate manifests        {}", ms(load));
    println!("  plan, empty directory            {}", ms(plan_cold));
    println!("  apply, first ({} writes)      {}", report.writes, ms(apply_first));
    println!("  observe (bulk snapshot)          {}", ms(observe_bulk));
    println!("  plan only (pure, in memory)      {}", ms(plan_only));
    println!("  apply again (observe+plan, 0 writes) {}", ms(apply_noop));
    println!("  baseline: observe one lookup per object {}", ms(observe_per_object));
    println!(
        "  bulk snapshot vs per-object lookups: {:.1}x faster",
        observe_per_object.as_secs_f64() / observe_bulk.as_secs_f64().max(1e-9)
    );
}
