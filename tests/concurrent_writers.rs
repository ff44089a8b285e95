//! Writers at once, as two pipelines or a pipeline and a person would run them: real `entente`
//! processes against the same state, on the local directory and through the Graph backend over the
//! emulator (with and without injected faults), `kill -9` at random points of an apply, prune and put
//! back, a refused apply, and the writer lock's wait and timeout. Invitations are counted from the
//! directory's change feed, which logs one `invitation issued` per redeem URL handed out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entente::core::operation::Operation;
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::emulator::{self, EmulatorConfig, EmulatorHandle, FaultConfig};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const GUESTS: usize = 100;

fn guest(i: usize) -> String {
    format!("guest-{i:03}@fabrikam.com")
}

/// One Tenant (local, or graph at `graph_url` signed in as `client_id`) and `n` GuestInvitations.
fn write_manifests(dir: &Path, n: usize, graph: Option<(&str, &str)>) {
    std::fs::create_dir_all(dir).unwrap();
    let backend = graph.map_or_else(String::new, |(url, client_id)| {
        format!(
            "  backend:\n    type: graph\n    graph:\n      clientId: {client_id}\n      authorityHost: {url}\n      graphEndpoint: {url}\n"
        )
    });
    let tenant = format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: contoso\nspec:\n  tenantId: {CONTOSO}\n  \
         initialDomain: contoso.onmicrosoft.com\n  displayName: Contoso Ltd\n  verifiedDomains: [contoso.com]\n  \
         groups:\n    - displayName: Fabrikam partners\n{backend}"
    );
    std::fs::write(dir.join("tenant.yaml"), tenant).unwrap();
    let guests: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata:\n  name: guest-{i:03}\nspec:\n  \
                 tenantRef: {{ name: contoso }}\n  invitedUserEmailAddress: {}\n  groups: [Fabrikam partners]\n",
                guest(i)
            )
        })
        .collect();
    std::fs::write(dir.join("guests.yaml"), guests.join("---\n")).unwrap();
}

/// Where a run keeps its state, and the environment it runs with.
struct Setup {
    tmp: tempfile::TempDir,
    envs: Vec<(String, String)>,
    /// The Graph world behind the emulator (`None`: local backend; the world is the directory file).
    emulator: Option<(Arc<LocalDirectory>, EmulatorHandle)>,
}

impl Setup {
    fn local() -> Self {
        let s = Setup { tmp: tempfile::tempdir().unwrap(), envs: vec![], emulator: None };
        write_manifests(&s.manifests(), GUESTS, None);
        s
    }

    async fn graph(faults: FaultConfig) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let world = Arc::new(LocalDirectory::open(&tmp.path().join("world.db")).unwrap());
        let identity = entente::manifest::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")])
            .unwrap()
            .desired
            .tenants
            .into_iter()
            .find(|t| t.identity.tenant_id == CONTOSO)
            .unwrap()
            .identity;
        world.apply(CONTOSO, &[Operation::CreateTenant { identity }]).await.unwrap();
        let key = entente::emulator::jwt::SigningKey::generate().unwrap();
        let config = EmulatorConfig { signing_key_pem: Some(key.to_pem().unwrap()), faults, ..EmulatorConfig::default() };
        let handle = emulator::start(world.clone(), config).await.unwrap();
        let permissions: Vec<String> = entente::directory::graph::APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
        let app = entente::emulator::apps::create_app(&world, CONTOSO, "entente", &permissions).unwrap();
        let envs =
            vec![(format!("ENTENTE_GRAPH_CLIENT_SECRET_{}", CONTOSO.replace('-', "_").to_ascii_uppercase()), app.client_secret)];
        let s = Setup { tmp, envs, emulator: None };
        write_manifests(&s.manifests(), GUESTS, Some((&handle.url(), &app.client_id)));
        Setup { emulator: Some((world, handle)), ..s }
    }

    fn manifests(&self) -> PathBuf {
        self.tmp.path().join("manifests")
    }
    fn db(&self) -> PathBuf {
        self.tmp.path().join("state/directory.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_entente"));
        cmd.current_dir(self.tmp.path())
            .env_remove("ENTENTE_DIRECTORY")
            .env_remove("ENTENTE_GRAPH_CLIENT_SECRET")
            .env_remove("ENTENTE_GRAPH_CLIENT_SECRET_FILE")
            .envs(self.envs.iter().cloned())
            .args(args)
            .arg("--directory")
            .arg(self.db());
        cmd
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("entente runs")
    }

    fn apply(&self, extra: &[&str]) -> Output {
        let m = self.manifests();
        let mut args = vec!["apply", "-f", m.to_str().unwrap()];
        args.extend(extra);
        self.command(&args).output().unwrap()
    }

    fn plan(&self) -> Output {
        let m = self.manifests();
        self.command(&["plan", "-f", m.to_str().unwrap()]).output().unwrap()
    }

    /// The directory the guests live in.
    fn world(&self) -> Arc<LocalDirectory> {
        match &self.emulator {
            Some((world, _)) => world.clone(),
            None => Arc::new(LocalDirectory::open(&self.db()).unwrap()),
        }
    }

    /// Invitations the directory issued, per guest address.
    fn invitations(&self) -> BTreeMap<String, usize> {
        let world = self.world();
        let mail: BTreeMap<String, String> = world.users(CONTOSO).unwrap().into_iter().map(|u| (u.id, u.mail)).collect();
        let mut out = BTreeMap::new();
        for c in world.changes_since(0).unwrap() {
            if c.entity == "invitation" && c.change == "issued" {
                let who = mail.get(&c.entity_id).cloned().unwrap_or_else(|| format!("deleted user {}", c.entity_id));
                *out.entry(who.to_ascii_lowercase()).or_default() += 1;
            }
        }
        out
    }

    /// Every guest is in the directory once, was invited exactly once, and a plan finds nothing to do.
    fn assert_converged_with_one_invitation_each(&self, context: &str) {
        let sent = self.invitations();
        let twice: Vec<_> = sent.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "{context}: invited more than once: {twice:?}");
        let users = self.world().users(CONTOSO).unwrap();
        assert_eq!(users.len(), GUESTS, "{context}: one account per guest");
        for i in 0..GUESTS {
            assert_eq!(sent.get(&guest(i)), Some(&1), "{context}: {} invited once", guest(i));
        }
        let plan = self.plan();
        assert_eq!(plan.status.code(), Some(0), "{context}: converged:\n{}", text(&plan));
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `k` applies of the same manifests started at once; all succeed.
fn concurrent_applies(s: &Setup, k: usize) -> Vec<Output> {
    let m = s.manifests();
    let children: Vec<Child> = (0..k).map(|_| s.spawn(&["apply", "-f", m.to_str().unwrap()])).collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn assert_all_succeeded(outputs: &[Output]) {
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "apply {i} failed:\n{}", text(o));
    }
}

/// How many of the runs waited for another one's lock (reported, not required: the first one may
/// finish before the next one starts).
fn waited(outputs: &[Output]) -> usize {
    outputs.iter().filter(|o| String::from_utf8_lossy(&o.stderr).contains("waiting up to")).count()
}

#[test]
fn two_and_four_concurrent_applies_on_the_local_directory_invite_each_guest_once() {
    for k in [2, 4] {
        let s = Setup::local();
        let outputs = concurrent_applies(&s, k);
        assert_all_succeeded(&outputs);
        eprintln!("local, {k} concurrent applies: {} waited for the lock", waited(&outputs));
        s.assert_converged_with_one_invitation_each(&format!("local, {k} applies"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_four_concurrent_applies_through_graph_invite_each_guest_once() {
    for k in [2, 4] {
        let s = Setup::graph(FaultConfig::default()).await;
        let outputs = tokio::task::block_in_place(|| concurrent_applies(&s, k));
        assert_all_succeeded(&outputs);
        eprintln!("graph, {k} concurrent applies: {} waited for the lock", waited(&outputs));
        tokio::task::block_in_place(|| s.assert_converged_with_one_invitation_each(&format!("graph, {k} applies")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_through_a_faulty_graph_invite_each_guest_once() {
    for (k, seed) in [(2, 11), (4, 12)] {
        let faults = FaultConfig {
            fault_rate: 0.08,
            drop_rate: 0.04,
            ambiguous_rate: 0.04,
            fault_retry_after: 0.05,
            token_endpoint: false,
            seed: Some(seed),
            ..FaultConfig::default()
        };
        let s = Setup::graph(faults).await;
        // Faults may outlast a run's retries: what failed is finished by a later apply, never duplicated.
        let outputs = tokio::task::block_in_place(|| concurrent_applies(&s, k));
        let failed = outputs.iter().filter(|o| o.status.code() != Some(0)).count();
        let mut finishing = 0;
        while tokio::task::block_in_place(|| s.apply(&[])).status.code() != Some(0) {
            finishing += 1;
            assert!(finishing < 5, "never converged through the faults");
        }
        eprintln!("faulty graph, {k} concurrent applies: {failed} failed, {finishing} extra apply(s) to finish");
        tokio::task::block_in_place(|| s.assert_converged_with_one_invitation_each(&format!("faulty graph, {k} applies")));
    }
}

/// A small deterministic sequence (no dependency for one random number per trial).
fn delays(seed: u64, count: usize, max: Duration) -> Vec<Duration> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            max.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// An apply killed with SIGKILL at a random point, then run again: every guest invited once.
fn killed_mid_apply(s: &Setup, after: Duration) -> bool {
    let m = s.manifests();
    let mut child = s.spawn(&["apply", "-f", m.to_str().unwrap()]);
    std::thread::sleep(after);
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    let again = s.apply(&[]);
    assert_eq!(again.status.code(), Some(0), "the apply after a kill at {after:?} failed:\n{}", text(&again));
    s.assert_converged_with_one_invitation_each(&format!("killed after {after:?}"));
    killed
}

/// How long one uncontended apply of the manifests takes here (to spread kills over its whole run).
fn full_apply_time(s: &Setup) -> Duration {
    let started = Instant::now();
    let o = s.apply(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    started.elapsed()
}

#[test]
fn an_apply_killed_at_random_points_on_the_local_directory_loses_and_repeats_nothing() {
    let span = full_apply_time(&Setup::local());
    let trials = delays(7, 24, span);
    let killed = trials.iter().filter(|d| killed_mid_apply(&Setup::local(), **d)).count();
    eprintln!("local: {} kill -9 trials over {span:?}, {killed} killed mid-run", trials.len());
    assert!(killed >= trials.len() / 2, "most kills must land inside the run ({killed} of {})", trials.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_at_random_points_through_graph_loses_and_repeats_nothing() {
    let first = Setup::graph(FaultConfig::default()).await;
    let span = tokio::task::block_in_place(|| full_apply_time(&first));
    let trials = delays(9, 12, span);
    let mut killed = 0;
    for d in &trials {
        let s = Setup::graph(FaultConfig::default()).await;
        killed += usize::from(tokio::task::block_in_place(|| killed_mid_apply(&s, *d)));
    }
    eprintln!("graph: {} kill -9 trials over {span:?}, {killed} killed mid-run", trials.len());
    assert!(killed >= trials.len() / 2, "most kills must land inside the run ({killed} of {})", trials.len());
}

/// Prune the guests by leaving their file out, put it back: the same accounts come back from the
/// recycle bin, redeemed ones still redeemed, no email sent.
fn prune_and_put_back(s: &Setup) {
    assert_eq!(s.apply(&[]).status.code(), Some(0));
    let world = s.world();
    world.redeem(CONTOSO, &guest(0)).unwrap();
    let before: BTreeMap<String, String> =
        world.users(CONTOSO).unwrap().into_iter().map(|u| (u.mail.to_ascii_lowercase(), u.id)).collect();
    assert_eq!(before.len(), GUESTS);

    let file = s.manifests().join("guests.yaml");
    let aside = s.tmp.path().join("guests.yaml.aside");
    std::fs::rename(&file, &aside).unwrap();
    let m = s.manifests();
    // Every guest goes, on purpose: past the prune guard's default, so the limit is given.
    let limit = GUESTS.to_string();
    let preview = text(&s.command(&["plan", "-f", m.to_str().unwrap(), "--prune", "--max-prune", &limit]).output().unwrap());
    assert_eq!(preview.matches("restorable for 30 days").count(), GUESTS, "{preview}");
    let pruned = s.apply(&["--prune", "--max-prune", &limit]);
    assert_eq!(pruned.status.code(), Some(0), "{}", text(&pruned));
    assert!(world.users(CONTOSO).unwrap().is_empty(), "pruned");

    std::fs::rename(&aside, &file).unwrap();
    let plan = s.plan();
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{shown}");
    assert_eq!(shown.matches("deleted by entente on").count(), GUESTS, "{shown}");
    assert!(shown.contains(&format!("{GUESTS} to restore")), "{shown}");
    assert!(shown.contains("Plan: 0 to create"), "nothing is invited again: {shown}");
    let applied = s.apply(&[]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));

    let after: BTreeMap<String, String> =
        world.users(CONTOSO).unwrap().into_iter().map(|u| (u.mail.to_ascii_lowercase(), u.id)).collect();
    assert_eq!(after, before, "the same accounts");
    let alice = world.user_by_mail(CONTOSO, &guest(0)).unwrap().unwrap();
    assert_eq!(alice.external_user_state, Some(entente::core::model::RedemptionState::Accepted), "redemption kept");
    assert_eq!(alice.group_ids.len(), 1, "back in Fabrikam partners");
    s.assert_converged_with_one_invitation_each("pruned and put back");
}

#[test]
fn local_prune_then_put_back_restores_the_same_guests_without_an_email() {
    prune_and_put_back(&Setup::local());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_prune_then_put_back_restores_the_same_guests_without_an_email() {
    let s = Setup::graph(FaultConfig::default()).await;
    tokio::task::block_in_place(|| prune_and_put_back(&s));
}

/// The directory file and its write-ahead log, byte for byte.
fn file_bytes(db: &Path) -> Vec<Vec<u8>> {
    ["", "-wal"].iter().map(|suffix| std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default()).collect()
}

#[test]
fn an_apply_with_one_object_that_cannot_be_planned_writes_nothing() {
    let s = Setup::local();
    assert_eq!(s.apply(&[]).status.code(), Some(0));
    // One more guest that would be invited, and a provider whose secret variable is not set.
    let more = "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata:\n  name: late\nspec:\n  tenantRef: { name: contoso }\n  \
                invitedUserEmailAddress: late@fabrikam.com\n---\napiVersion: entente.dev/v1alpha1\nkind: IdentityProvider\nmetadata:\n  \
                name: google\nspec:\n  tenantRef: { name: contoso }\n  type: Google\n  clientId: google-app-id\n  \
                clientSecretRef: { name: google-oauth, key: clientSecret }\n";
    std::fs::write(s.manifests().join("more.yaml"), more).unwrap();
    let before = file_bytes(&s.db());
    let o = s.apply(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Nothing applied"), "{out}");
    assert!(out.contains("ENTENTE_IDP_SECRET"), "the error names what to set: {out}");
    assert_eq!(file_bytes(&s.db()), before, "the directory file is unchanged");
    assert!(s.world().user_by_mail(CONTOSO, "late@fabrikam.com").unwrap().is_none());
}

#[test]
fn plan_leaves_no_file_behind() {
    let s = Setup::local();
    let o = s.plan();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!s.tmp.path().join("state").exists(), "plan created {:?}", std::fs::read_dir(s.tmp.path().join("state")).ok());
}

/// Holds the writer lock of Contoso as another process would, with its note.
fn hold_lock(s: &Setup) -> std::fs::File {
    let path = entente::engine::writer_lock::lock_path(&s.db(), CONTOSO);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.try_lock().unwrap();
    std::fs::write(&path, r#"{"command":"entente apply","pid":4242,"host":"ci-runner-7","since":"2026-12-07T05:00:00Z"}"#)
        .unwrap();
    file
}

#[test]
fn a_second_writer_says_who_holds_the_lock_and_gives_up_after_the_timeout() {
    let s = Setup::local();
    let held = hold_lock(&s);
    let started = Instant::now();
    let o = s.apply(&["--lock-timeout", "1s"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    assert!(
        err.contains(&format!(
            "waiting up to 1s for tenant {CONTOSO}: entente apply (pid 4242 on ci-runner-7) since 2026-12-07T05:00:00Z"
        )),
        "{err}"
    );
    assert!(err.contains("gave up after waiting") && err.contains("--lock-timeout"), "{err}");
    assert!(!s.db().exists(), "nothing written without the lock");
    drop(held);
}

#[test]
fn a_second_writer_waits_for_the_first_and_then_plans_against_what_it_wrote() {
    let s = Setup::local();
    let held = hold_lock(&s);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let o = s.apply(&["--lock-timeout", "30s"]);
    release.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("waiting up to 30s for tenant"), "{}", text(&o));
    s.assert_converged_with_one_invitation_each("after waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_slow_link_apply_prints_each_change_as_it_lands() {
    let faults = FaultConfig { latency: Duration::from_millis(20), seed: Some(5), ..FaultConfig::default() };
    let s = Setup::graph(faults).await;
    tokio::task::block_in_place(|| {
        use std::io::BufRead;
        let m = s.manifests();
        let mut child = s.spawn(&["apply", "-f", m.to_str().unwrap()]);
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let started = Instant::now();
        let mut lines = stdout.lines().map_while(Result::ok);
        let first = lines.by_ref().find(|l| l.contains("GuestInvitation/default/guest-000 created")).expect("first guest line");
        let first_at = started.elapsed();
        // The first guest's line is out while the other 99 are still being invited.
        assert!(matches!(child.try_wait(), Ok(None)), "the first line came only at the end: {first}");
        let rest: Vec<String> = lines.collect();
        let status = child.wait().unwrap();
        assert!(status.success(), "{rest:?}");
        assert!(rest.last().is_some_and(|l| l.starts_with("Apply complete: ")), "{rest:?}");
        eprintln!("first change printed after {first_at:?}, apply took {:?}", started.elapsed());
    });
}
