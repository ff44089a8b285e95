//! Microsoft cloud settings (R14) and external tenants on `Tenant`: the local directory refuses an
//! invitation or a redemption across clouds unless both tenants allow each other's cloud; the plan predicts
//! the refusal, shows a change of `microsoftCloudSettings.allowedClouds` as an update with its field diff,
//! detects drift, and converges — on the local directory and through the Graph backend over the emulator
//! (`allowedCloudEndpoints` on `/policies/crossTenantAccessPolicy`, strict contract checking). External
//! tenants' branding and self-service settings are stored locally. Over Graph, the tenant type is read from
//! `organization.tenantType` (a wrong type is a plan error) and the branding's texts and colour are applied,
//! read back and corrected through `/organization/{id}/branding`; branding images are resolved from files
//! before planning, compared by content and uploaded as streams (`.../branding/localizations/0/{image}`);
//! self-service password reset is the email authentication method enabled for all users plus the branding's
//! password reset link (on, off hiding the link only, drift in either detected), and the other self-service
//! options fail as not implemented, naming only those.

mod emulator_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use entente::core::model::{Cloud, DesiredState, Kind, TenantIdentity, UserType};
use entente::core::operation::{InvitationRequest, Operation};
use entente::core::plan::{Action, Change, Plan, PlanOptions};
use entente::core::policy::RefusalReason;
use entente::core::tenant_profile::TenantType;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use entente::emulator::EmulatorHandle;
use entente::engine::{self, Routes};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const GOV: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const TENANTS: [&str; 2] = [CONTOSO, GOV];

fn identity(id: &str, name: &str, cloud: Cloud) -> TenantIdentity {
    TenantIdentity {
        tenant_id: id.into(),
        initial_domain: format!("{name}.onmicrosoft.com"),
        display_name: name.into(),
        cloud,
        verified_domains: BTreeSet::from([format!("{name}.com")]),
    }
}

fn invite_op(email: &str) -> Operation {
    Operation::Invite {
        invitation: InvitationRequest {
            re_invite: false,
            invited_user_email_address: email.into(),
            invited_user_display_name: None,
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            invited_user_type: UserType::Guest,
            send_invitation_message: false,
            invited_user_message_info: None,
            groups: vec![],
        },
    }
}

fn clouds(c: &[Cloud]) -> Operation {
    Operation::SetCloudSettings { allowed_clouds: c.iter().copied().collect() }
}

fn refusal(r: Result<impl std::fmt::Debug, DirectoryError>) -> (RefusalReason, String) {
    match r {
        Err(DirectoryError::Refused(r)) => (r.reason, r.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Contoso in the global cloud, fabrikamgov in the US Government cloud, in one file.
async fn world(path: &std::path::Path) -> Arc<LocalDirectory> {
    let dir = Arc::new(LocalDirectory::open(path).unwrap());
    for (id, name, cloud) in [(CONTOSO, "contoso", Cloud::Global), (GOV, "fabrikamgov", Cloud::UsGovernment)] {
        dir.apply(id, &[Operation::CreateTenant { identity: identity(id, name, cloud) }]).await.unwrap();
    }
    dir
}

#[tokio::test]
async fn the_local_directory_refuses_cross_cloud_invitations_and_redemptions_unless_both_allow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = world(&tmp.path().join("d.db")).await;

    let (reason, message) = refusal(dir.apply(CONTOSO, &[invite_op("alice@fabrikamgov.com")]).await);
    assert_eq!(reason, RefusalReason::CloudNotAllowed);
    assert!(message.contains("microsoftCloudSettings.allowedClouds of tenant contoso.onmicrosoft.com"), "{message}");
    assert!(message.contains("fabrikamgov.onmicrosoft.com does not include global"), "{message}");

    // Only the resource tenant allows the other cloud: the home tenant is named.
    dir.apply(CONTOSO, &[clouds(&[Cloud::UsGovernment])]).await.unwrap();
    let (reason, message) = refusal(dir.apply(CONTOSO, &[invite_op("alice@fabrikamgov.com")]).await);
    assert_eq!(reason, RefusalReason::CloudNotAllowed);
    assert!(!message.contains("of tenant contoso.onmicrosoft.com"), "{message}");
    assert!(message.contains("microsoftCloudSettings.allowedClouds of tenant fabrikamgov.onmicrosoft.com"), "{message}");

    // Both: allowed. Idempotent: setting the same clouds again changes nothing.
    dir.apply(GOV, &[clouds(&[Cloud::Global]), clouds(&[Cloud::Global])]).await.unwrap();
    dir.apply(CONTOSO, &[invite_op("alice@fabrikamgov.com"), invite_op("bob@fabrikamgov.com")]).await.unwrap();
    assert_eq!(dir.tenant_policy(GOV).unwrap().allowed_clouds, BTreeSet::from([Cloud::Global]));

    // Withdrawn later: a pending invitation fails at redemption (R3 example 2 applied to R14).
    dir.apply(GOV, &[clouds(&[])]).await.unwrap();
    let (reason, message) = refusal(dir.redeem(CONTOSO, "bob@fabrikamgov.com"));
    assert_eq!(reason, RefusalReason::CloudNotAllowed);
    assert!(message.contains("fabrikamgov.onmicrosoft.com does not include global"), "{message}");

    // A tenant of the same cloud needs no cloud settings.
    let other = identity("11111111-1111-1111-1111-111111111111", "woodgrove", Cloud::Global);
    dir.apply(&other.tenant_id.clone(), &[Operation::CreateTenant { identity: other }]).await.unwrap();
    dir.apply(GOV, &[clouds(&[Cloud::China])]).await.unwrap();
    dir.apply(CONTOSO, &[invite_op("carol@woodgrove.com")]).await.unwrap();
}

#[tokio::test]
async fn tenant_type_is_set_at_creation_only_and_branding_needs_an_external_tenant() {
    let dir = LocalDirectory::open_in_memory().unwrap();
    let shop = identity("44444444-4444-4444-4444-444444444444", "shop", Cloud::Global);
    let id = shop.tenant_id.clone();
    let experience = |tenant_type, branding: bool| Operation::ConfigureTenantExperience {
        tenant_type,
        branding: branding.then(|| entente::core::tenant_profile::CompanyBranding {
            background_color: Some("#0072C6".into()),
            banner_logo: Some("https://cdn.shop.com/banner.png".into()),
            ..Default::default()
        }),
        self_service_account: None,
    };
    dir.apply(&id, &[Operation::CreateTenant { identity: shop.clone() }, experience(TenantType::External, true)]).await.unwrap();
    let p = dir.tenant_profile(&id).unwrap();
    assert_eq!(p.tenant_type, TenantType::External);
    assert_eq!(p.branding.unwrap().background_color.as_deref(), Some("#0072C6"));
    // Creating it again (it exists) does not make the type changeable.
    let err = dir
        .apply(&id, &[Operation::CreateTenant { identity: shop }, experience(TenantType::Workforce, false)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tenantType is immutable"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Plan and apply, on the local directory and over Graph

fn manifests(contoso_clouds: &str, gov_clouds: &str) -> DesiredState {
    let tenant = |name: &str, id: &str, cloud: &str, allowed: &str| {
        let settings = if allowed.is_empty() {
            String::new()
        } else {
            format!("  microsoftCloudSettings:\n    allowedClouds: [{allowed}]\n")
        };
        format!(
            "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec:\n  tenantId: {id}\n  initialDomain: {name}.onmicrosoft.com\n  verifiedDomains: [{name}.com]\n  cloud: {cloud}\n{settings}"
        )
    };
    let text = [
        tenant("contoso", CONTOSO, "global", contoso_clouds),
        tenant("fabrikamgov", GOV, "usGovernment", gov_clouds),
        "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {name: alice}\nspec:\n  tenantRef: {name: contoso}\n  invitedUserEmailAddress: alice@fabrikamgov.com\n".to_string(),
    ]
    .join("---\n");
    match entente::manifest::load_str(&[("cloud.yaml", &text)]) {
        Ok(loaded) => loaded.desired,
        Err(e) => panic!("manifests: {e:?}"),
    }
}

struct Harness {
    world: Arc<LocalDirectory>,
    routes: Routes,
    emulator: Option<EmulatorHandle>,
    _tmp: tempfile::TempDir,
}

impl Harness {
    async fn local() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = world(&tmp.path().join("directory.db")).await;
        let routes = TENANTS.iter().map(|t| (t.to_string(), Ok(world.clone() as Arc<dyn Directory>))).collect();
        Harness { world, routes, emulator: None, _tmp: tmp }
    }

    /// The Graph backend over the emulator serving the same kind of file, with strict contract checking.
    async fn graph() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let world = world(&tmp.path().join("directory.db")).await;
        let (handle, routes) = emulator_support::graph_over_emulator(&world, &TENANTS, &tmp.path().join("inventory.db")).await;
        Harness { world, routes, emulator: Some(handle), _tmp: tmp }
    }

    fn check_contract(&self) {
        if let Some(h) = &self.emulator {
            emulator_support::assert_contract_kept(h);
        }
    }
}

fn change<'a>(plan: &'a Plan, kind: Kind, tenant: &str) -> &'a Change {
    plan.changes
        .iter()
        .find(|c| c.object.kind == kind && c.tenant_id == tenant)
        .unwrap_or_else(|| panic!("no {kind} change for {tenant}: {:#?}", plan.changes))
}

async fn plan_and_apply(d: &DesiredState, routes: &Routes) -> Plan {
    let plan = engine::plan_against(d, routes, PlanOptions::default()).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let report = engine::apply(&plan, routes).await;
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    plan
}

async fn cloud_settings_plan_apply_converge_and_drift(h: &Harness) {
    let routes = &h.routes;
    // No cloud settings: the invitation across clouds is refused in the plan, naming the setting.
    let plan = plan_and_apply(&manifests("", ""), routes).await;
    let inv = change(&plan, Kind::GuestInvitation, CONTOSO);
    assert_eq!(inv.action, Action::Refused, "{inv:#?}");
    let refusal = inv.refusal.as_ref().unwrap();
    assert_eq!(refusal.reason, RefusalReason::CloudNotAllowed);
    assert!(refusal.message.contains("microsoftCloudSettings.allowedClouds of tenant contoso.onmicrosoft.com"));

    // Both tenants allow each other's cloud: each Tenant is an update with the field in its diff, the
    // invitation is created.
    let desired = manifests("usGovernment", "global");
    let plan = plan_and_apply(&desired, routes).await;
    for (tenant, cloud) in [(CONTOSO, "usGovernment"), (GOV, "global")] {
        let c = change(&plan, Kind::Tenant, tenant);
        assert_eq!(c.action, Action::Update, "{c:#?}");
        let d = c.diff.iter().find(|d| d.path == "microsoftCloudSettings.allowedClouds").expect("the field in the diff");
        assert_eq!((d.from.clone(), d.to.clone()), (None, Some(serde_json::json!([cloud]))));
        assert!(c.ops.iter().any(|o| matches!(o, Operation::SetCloudSettings { .. })), "{:?}", c.ops);
    }
    assert_eq!(change(&plan, Kind::GuestInvitation, CONTOSO).action, Action::Create);
    assert_eq!(h.world.tenant_profile(CONTOSO).unwrap().allowed_clouds, BTreeSet::from([Cloud::UsGovernment]));
    assert_eq!(h.world.tenant_profile(GOV).unwrap().allowed_clouds, BTreeSet::from([Cloud::Global]));

    // Applied: the next plan is unchanged.
    let again = engine::plan_against(&desired, routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes.iter().filter(|c| c.action.writes()).collect::<Vec<_>>());
    assert_eq!(change(&again, Kind::Tenant, CONTOSO).action, Action::Unchanged);

    // Changed outside entente: drift, corrected.
    h.world.apply(CONTOSO, &[clouds(&[Cloud::UsGovernment, Cloud::China])]).await.unwrap();
    let plan = plan_and_apply(&desired, routes).await;
    let c = change(&plan, Kind::Tenant, CONTOSO);
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_eq!(c.diff[0].path, "microsoftCloudSettings.allowedClouds");
    assert_eq!(h.world.tenant_profile(CONTOSO).unwrap().allowed_clouds, BTreeSet::from([Cloud::UsGovernment]));
}

/// When the home tenant is not in the manifests, the plan cannot predict R14: the directory refuses
/// (over Graph, the emulator's refusal comes back as the same reason).
async fn an_unpredicted_cross_cloud_invitation_is_refused_by_the_directory(h: &Harness) {
    let mut desired = manifests("usGovernment", "");
    desired.tenants.retain(|t| t.identity.tenant_id == CONTOSO);
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    assert_eq!(change(&plan, Kind::GuestInvitation, CONTOSO).action, Action::Create);
    let report = engine::apply(&plan, &h.routes).await;
    let refused = report.results.iter().find_map(|r| match r {
        engine::ChangeResult::Refused { refusal } => Some(refusal.clone()),
        _ => None,
    });
    let refusal = refused.unwrap_or_else(|| panic!("a refusal: {:?}", report.results));
    assert_eq!(refusal.reason, RefusalReason::CloudNotAllowed);
    assert!(
        refusal.message.contains("microsoftCloudSettings.allowedClouds of tenant fabrikamgov.onmicrosoft.com"),
        "{refusal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_unpredicted_cross_cloud_invitation_is_refused() {
    an_unpredicted_cross_cloud_invitation_is_refused_by_the_directory(&Harness::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_unpredicted_cross_cloud_invitation_is_refused() {
    let h = Harness::graph().await;
    an_unpredicted_cross_cloud_invitation_is_refused_by_the_directory(&h).await;
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cloud_settings_plan_apply_converge_and_drift() {
    cloud_settings_plan_apply_converge_and_drift(&Harness::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_cloud_settings_plan_apply_converge_and_drift() {
    let h = Harness::graph().await;
    cloud_settings_plan_apply_converge_and_drift(&h).await;
    h.check_contract();
}

// ---------------------------------------------------------------------------------------------
// External tenants

const SHOP: &str = "7b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a05";

fn shop_yaml(extra: &str) -> String {
    format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: shop}}\nspec:\n  tenantId: {SHOP}\n  initialDomain: shop.onmicrosoft.com\n{extra}"
    )
}

const EXTERNAL: &str = "  tenantType: external\n  branding:\n    signInPageText: Welcome to Shop\n    backgroundColor: '#0072c6'\n    bannerLogo: https://cdn.shop.com/banner.png\n    squareLogo: branding/square.jpg\n  selfServiceAccount:\n    profileEdit: true\n    passwordReset: true\n";

#[test]
fn branding_and_self_service_are_for_external_tenants_and_are_validated() {
    let err = |extra: &str| match entente::manifest::load_str(&[("shop.yaml", &shop_yaml(extra))]) {
        Ok(_) => panic!("expected errors for {extra}"),
        Err(e) => format!("{e:?}"),
    };
    let e = err("  branding:\n    signInPageText: hi\n");
    assert!(e.contains("spec.branding") && e.contains("only an external tenant"), "{e}");
    let e = err("  selfServiceAccount: {profileEdit: true}\n");
    assert!(e.contains("spec.selfServiceAccount"), "{e}");
    let e = err("  tenantType: external\n  branding:\n    backgroundColor: blue\n    bannerLogo: data:image/png;base64,AAAA\n");
    assert!(e.contains("spec.branding.backgroundColor") && e.contains("#RRGGBB"), "{e}");
    assert!(e.contains("spec.branding.bannerLogo") && e.contains("never inlined"), "{e}");
    let e = err("  microsoftCloudSettings: {allowedClouds: [global]}\n");
    assert!(e.contains("spec.microsoftCloudSettings.allowedClouds[0]") && e.contains("own cloud"), "{e}");
    assert!(entente::manifest::load_str(&[("shop.yaml", &shop_yaml(EXTERNAL))]).is_ok());
}

fn shop(extra: &str) -> DesiredState {
    match entente::manifest::load_str(&[("shop.yaml", &shop_yaml(extra))]) {
        Ok(l) => l.desired,
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn an_external_tenant_is_created_with_its_branding_and_converges_locally() {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes: Routes = [(SHOP.to_string(), Ok(dir.clone() as Arc<dyn Directory>))].into_iter().collect();
    let desired = shop(EXTERNAL);
    let plan = plan_and_apply(&desired, &routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert_eq!(c.action, Action::Create);
    let paths: Vec<&str> = c.diff.iter().map(|d| d.path.as_str()).collect();
    for p in ["tenantType", "branding.backgroundColor", "branding.bannerLogo", "selfServiceAccount.profileEdit"] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    let profile = dir.tenant_profile(SHOP).unwrap();
    assert_eq!(profile.tenant_type, TenantType::External);
    assert_eq!(profile.branding.as_ref().unwrap().background_color.as_deref(), Some("#0072C6"));
    assert!(profile.self_service_account.as_ref().unwrap().password_reset);
    let again = engine::plan_against(&desired, &routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // An edit of the branding is an update naming the field.
    let plan = plan_and_apply(&shop(&EXTERNAL.replace("Welcome to Shop", "Hello")), &routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.diff.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["branding.signInPageText"]);

    // The type is immutable: a workforce manifest for it is a plan error.
    let plan = engine::plan_against(&shop(""), &routes, PlanOptions::default()).await;
    assert!(plan.errors.iter().any(|e| e.message.contains("spec.tenantType is immutable")), "{:?}", plan.errors);
}

// ---------------------------------------------------------------------------------------------
// External tenants over Graph: organization.tenantType and /organization/{id}/branding (emulator, strict
// contract checking, contract extension contract/organization.yaml)

/// shop (external) and contoso (workforce) in one directory, served by the emulator, each with a
/// `GraphDirectory`.
async fn shop_over_graph() -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
    world.apply(SHOP, &external_shop()).await.unwrap();
    world.apply(CONTOSO, &[Operation::CreateTenant { identity: identity(CONTOSO, "contoso", Cloud::Global) }]).await.unwrap();
    let (handle, routes) =
        emulator_support::graph_over_emulator(&world, &[SHOP, CONTOSO], &tmp.path().join("inventory.db")).await;
    Harness { world, routes, emulator: Some(handle), _tmp: tmp }
}

/// Creates the shop tenant as an external (customer) tenant with no branding yet.
fn external_shop() -> [Operation; 2] {
    let external =
        Operation::ConfigureTenantExperience { tenant_type: TenantType::External, branding: None, self_service_account: None };
    [Operation::CreateTenant { identity: identity(SHOP, "shop", Cloud::Global) }, external]
}

const BRANDING: &str = "  tenantType: external\n  branding:\n    signInPageText: Welcome to Shop\n    usernameHintText: you@example.com\n    backgroundColor: '#0072c6'\n";

fn diff_paths(c: &Change) -> Vec<&str> {
    c.diff.iter().map(|d| d.path.as_str()).collect()
}

fn branding_of(h: &Harness) -> entente::core::tenant_profile::CompanyBranding {
    h.world.tenant_profile(SHOP).unwrap().branding.expect("a branding in the directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_an_external_tenants_branding_applies_reads_back_updates_drifts_and_is_removed() {
    let h = shop_over_graph().await;
    let desired = shop(BRANDING);
    let plan = plan_and_apply(&desired, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action.writes(), "{c:#?}");
    let note = c.note.clone().unwrap_or_default();
    assert!(!note.contains("Graph") && !note.contains("spec."), "nothing unsupported is asked for: {c:#?}");
    for p in ["branding.signInPageText", "branding.usernameHintText", "branding.backgroundColor"] {
        assert!(diff_paths(c).contains(&p), "{p} in {:?}", diff_paths(c));
    }
    let b = branding_of(&h);
    assert_eq!(b.sign_in_page_text.as_deref(), Some("Welcome to Shop"));
    assert_eq!(b.username_hint_text.as_deref(), Some("you@example.com"));
    assert_eq!(b.background_color.as_deref(), Some("#0072C6"));

    // Read back through Graph: no drift, nothing to write.
    let again = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(!again.has_writes(), "{:#?}", again.changes);
    assert_eq!(change(&again, Kind::Tenant, SHOP).action, Action::Unchanged);

    // An edit is an update of exactly that field.
    let edited = shop(&BRANDING.replace("Welcome to Shop", "Hello"));
    let plan = plan_and_apply(&edited, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert_eq!(c.action, Action::Update);
    assert_eq!(diff_paths(c), ["branding.signInPageText"]);
    assert_eq!(branding_of(&h).sign_in_page_text.as_deref(), Some("Hello"));
    assert_eq!(branding_of(&h).username_hint_text.as_deref(), Some("you@example.com"));

    // Changed outside entente (in the directory the emulator serves): drift on that field, corrected.
    let mut outside = branding_of(&h);
    outside.username_hint_text = Some("someone else".into());
    let op = Operation::ConfigureTenantExperience {
        tenant_type: TenantType::External,
        branding: Some(outside),
        self_service_account: None,
    };
    h.world.apply(SHOP, &[op]).await.unwrap();
    let plan = plan_and_apply(&edited, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_eq!(diff_paths(c), ["branding.usernameHintText"]);
    assert_eq!(branding_of(&h).username_hint_text.as_deref(), Some("you@example.com"));

    // The manifest drops the branding: it is deleted in Graph.
    let plan = plan_and_apply(&shop("  tenantType: external\n"), &h.routes).await;
    assert_eq!(change(&plan, Kind::Tenant, SHOP).action, Action::Update);
    assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None);
    let again = engine::plan_against(&shop("  tenantType: external\n"), &h.routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_a_wrong_tenant_type_is_a_plan_error_both_ways() {
    let h = shop_over_graph().await;
    // shop is external (CIAM) in Graph: a workforce manifest cannot be planned.
    let plan = engine::plan_against(&shop(""), &h.routes, PlanOptions::default()).await;
    let e = plan.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("\n");
    assert!(e.contains("spec.tenantType is immutable") && e.contains("is a external tenant in the directory"), "{e}");
    // contoso is workforce (AAD): an external manifest for it cannot either.
    let contoso = format!(
        "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: contoso}}\nspec:\n  tenantId: {CONTOSO}\n  initialDomain: contoso.onmicrosoft.com\n  tenantType: external\n"
    );
    let desired = entente::manifest::load_str(&[("contoso.yaml", &contoso)]).unwrap().desired;
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    let e = plan.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("\n");
    assert!(e.contains("spec.tenantType is immutable") && e.contains("is a workforce tenant in the directory"), "{e}");
    // The matching manifests plan without errors and without a tenantType note.
    let plan = engine::plan_against(&shop("  tenantType: external\n"), &h.routes, PlanOptions::default()).await;
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let note = change(&plan, Kind::Tenant, SHOP).note.clone().unwrap_or_default();
    assert!(!note.contains("tenantType"), "{note}");
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_profile_edit_account_deletion_and_mfa_enrollment_are_not_implemented_naming_only_those() {
    let h = shop_over_graph().await;
    let desired = shop("  tenantType: external\n  selfServiceAccount:\n    profileEdit: true\n    passwordReset: true\n");
    let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    let note = c.note.clone().unwrap_or_default();
    assert!(note.contains("spec.selfServiceAccount.profileEdit") && note.contains("no Microsoft Graph v1.0 API"), "{c:#?}");
    assert!(note.contains("applying this change fails until it is"), "{note}");
    for other in ["passwordReset", "accountDeletion", "mfaEnrollment"] {
        assert!(!note.contains(other), "{other} is not refused: {note}");
    }
    let report = engine::apply(&plan, &h.routes).await;
    let failed = format!("{:?}", report.results);
    assert_eq!(report.failed(), 1, "{failed}");
    assert!(failed.contains("selfServiceAccount.profileEdit") && failed.contains("no Microsoft Graph v1.0 API"), "{failed}");
    assert!(!failed.contains("passwordReset") && !failed.contains("password reset"), "{failed}");
    // What Graph has an API for was written before the refusal: password reset is on.
    assert!(h.world.tenant_profile(SHOP).unwrap().self_service_account.is_some_and(|s| s.password_reset));

    // All three: each is named, password reset still is not.
    let all = shop(
        "  tenantType: external\n  selfServiceAccount:\n    profileEdit: true\n    accountDeletion: true\n    mfaEnrollment: true\n    passwordReset: true\n",
    );
    let plan = engine::plan_against(&all, &h.routes, PlanOptions::default()).await;
    let note = change(&plan, Kind::Tenant, SHOP).note.clone().unwrap_or_default();
    for option in ["profileEdit", "accountDeletion", "mfaEnrollment"] {
        assert!(note.contains(&format!("spec.selfServiceAccount.{option}")), "{option}: {note}");
    }
    assert!(!note.contains("passwordReset"), "{note}");
    let report = engine::apply(&plan, &h.routes).await;
    let failed = format!("{:?}", report.results);
    assert!(
        failed.contains("accountDeletion") && failed.contains("mfaEnrollment") && !failed.contains("passwordReset"),
        "{failed}"
    );
    h.check_contract();
}

// ---------------------------------------------------------------------------------------------
// Branding images over Graph: resolved from files before planning, compared by content (sha256), uploaded
// as streams (PUT .../branding/localizations/0/{image}), removed with DELETE

/// A tiny PNG: the signature, then `tag` so that two images differ.
fn png(tag: &[u8]) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(tag);
    b
}

/// `shop.yaml` written in `dir` with `branding` (YAML lines under `branding:`), loaded as the CLI loads it:
/// images resolved relative to the manifest.
async fn shop_from_file(dir: &std::path::Path, branding: &str) -> DesiredState {
    let file = dir.join("shop.yaml");
    std::fs::write(&file, shop_yaml(&format!("  tenantType: external\n  branding:\n    signInPageText: Welcome\n{branding}")))
        .unwrap();
    let mut m = entente::manifest::load(std::slice::from_ref(&file)).unwrap_or_else(|e| panic!("{e:?}"));
    let files = m.tenant_files.clone();
    entente::manifest::images::resolve_images(&mut m.desired, entente::manifest::images::FileBase::ManifestFiles(&files)).await;
    m.desired
}

fn digest(bytes: &[u8]) -> String {
    entente::core::tenant_profile::image_digest(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_a_banner_logo_is_uploaded_read_back_replaced_and_removed() {
    let h = shop_over_graph().await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("img")).unwrap();
    let logo = tmp.path().join("img/logo.png");
    std::fs::write(&logo, png(b"one")).unwrap();
    let with_logo = "    bannerLogo: img/logo.png\n";

    // Uploaded: the plan names the file and the digest, the directory the emulator serves holds the image.
    let desired = shop_from_file(tmp.path(), with_logo).await;
    let plan = plan_and_apply(&desired, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    let d = c.diff.iter().find(|d| d.path == "branding.bannerLogo").unwrap_or_else(|| panic!("{c:#?}"));
    let first = digest(&png(b"one"));
    assert_eq!(d.to, Some(serde_json::json!(format!("img/logo.png (sha256:{first})"))), "{d:?}");
    assert_eq!(branding_of(&h).banner_logo, Some(format!("sha256:{first}")));

    // Read back through Graph (the stream's bytes): nothing to write.
    let again = engine::plan_against(&shop_from_file(tmp.path(), with_logo).await, &h.routes, PlanOptions::default()).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // New bytes in the same file: an update of exactly branding.bannerLogo, from the digest Graph holds.
    std::fs::write(&logo, png(b"two")).unwrap();
    let second = digest(&png(b"two"));
    let plan = plan_and_apply(&shop_from_file(tmp.path(), with_logo).await, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert_eq!(c.action, Action::Update, "{c:#?}");
    assert_eq!(diff_paths(c), ["branding.bannerLogo"]);
    assert_eq!(c.diff[0].from, Some(serde_json::json!(format!("sha256:{first}"))));
    assert_eq!(c.diff[0].to, Some(serde_json::json!(format!("img/logo.png (sha256:{second})"))));
    assert_eq!(branding_of(&h).banner_logo, Some(format!("sha256:{second}")));
    let again = engine::plan_against(&shop_from_file(tmp.path(), with_logo).await, &h.routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // Replaced outside entente (another upload): drift on that field, corrected.
    let mut outside = branding_of(&h);
    outside.banner_logo = Some("sha256:0123456789abcdef".into());
    let op = Operation::ConfigureTenantExperience {
        tenant_type: TenantType::External,
        branding: Some(outside),
        self_service_account: None,
    };
    h.world.apply(SHOP, &[op]).await.unwrap();
    let plan = plan_and_apply(&shop_from_file(tmp.path(), with_logo).await, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_eq!(diff_paths(c), ["branding.bannerLogo"]);
    assert_eq!(branding_of(&h).banner_logo, Some(format!("sha256:{second}")));

    // Dropped from the manifest: the stream is deleted, the texts stay.
    let plan = plan_and_apply(&shop_from_file(tmp.path(), "").await, &h.routes).await;
    assert_eq!(diff_paths(change(&plan, Kind::Tenant, SHOP)), ["branding.bannerLogo"]);
    assert_eq!(branding_of(&h).banner_logo, None);
    assert_eq!(branding_of(&h).sign_in_page_text.as_deref(), Some("Welcome"));
    let again = engine::plan_against(&shop_from_file(tmp.path(), "").await, &h.routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // A branding with images dropped altogether: the images go first (Graph refuses otherwise), then the branding.
    std::fs::write(tmp.path().join("img/square.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).unwrap();
    plan_and_apply(
        &shop_from_file(tmp.path(), "    bannerLogo: img/logo.png\n    squareLogo: img/square.jpg\n").await,
        &h.routes,
    )
    .await;
    assert!(branding_of(&h).square_logo.is_some_and(|v| v.starts_with("sha256:")));
    plan_and_apply(&shop("  tenantType: external\n"), &h.routes).await;
    assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None);
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_an_unreadable_oversized_or_non_image_reference_is_a_plan_error_naming_the_field() {
    let h = shop_over_graph().await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("anim.png"), b"GIF89a...").unwrap();
    let mut big = png(b"");
    big.resize(5 * 1024 * 1024 + 1, 0);
    std::fs::write(tmp.path().join("big.png"), big).unwrap();
    for (reference, why) in
        [("missing.png", "cannot read"), ("anim.png", "not a PNG or JPEG image"), ("big.png", "more than the 5 MiB")]
    {
        let desired = shop_from_file(tmp.path(), &format!("    bannerLogo: {reference}\n")).await;
        let plan = engine::plan_against(&desired, &h.routes, PlanOptions::default()).await;
        let e = plan.errors.iter().map(|e| format!("{}: {}", e.object, e.message)).collect::<Vec<_>>().join("\n");
        assert!(e.contains("spec.branding.bannerLogo") && e.contains(reference) && e.contains(why), "{reference}: {e}");
        assert!(e.contains("Tenant") && e.contains("shop") && e.contains("shop.yaml"), "{e}");
        assert!(
            plan.changes.iter().all(|c| c.object.kind != Kind::Tenant),
            "nothing planned for the tenant: {:#?}",
            plan.changes
        );
        let report = engine::apply(&plan, &h.routes).await;
        assert_eq!(report.writes, 0);
        assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None, "nothing applied");
    }
    // An image reference that was never resolved (a library caller skipping resolution) fails before any write.
    let plan =
        engine::plan_against(&shop(&format!("{BRANDING}    bannerLogo: img/logo.png\n")), &h.routes, PlanOptions::default())
            .await;
    let report = engine::apply(&plan, &h.routes).await;
    let failed = format!("{:?}", report.results);
    assert_eq!(report.failed(), 1, "{failed}");
    assert!(failed.contains("branding.bannerLogo") && failed.contains("was not resolved to an image"), "{failed}");
    assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None, "nothing applied");
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serves_branding_images_and_rejects_a_malformed_stream_per_the_contract() {
    let env = emulator_support::env().await;
    env.dir.apply(SHOP, &external_shop()).await.unwrap();
    let app =
        entente::emulator::apps::create_app(&env.dir, SHOP, "brander", &["OrganizationalBranding.ReadWrite.All".to_string()])
            .unwrap();
    let token = env.token(&app).await;
    let path = format!("/v1.0/organization/{SHOP}/branding/localizations/0/bannerLogo");
    let put = |body: Vec<u8>, content_type: &'static str| {
        let req = env.http.put(env.url(&path)).bearer_auth(&token).header("Content-Type", content_type).body(body);
        async move { emulator_support::read(req.send().await.unwrap()).await }
    };
    // A PNG: stored, served back with its media type, and the branding's relative URL set.
    let r = put(png(b"emu"), "image/png").await;
    assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "{}", r.text);
    let got = env.http.get(env.url(&path)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), png(b"emu").as_slice());
    let b = env
        .call_with(
            reqwest::Method::GET,
            Some(&token),
            &format!("/v1.0/organization/{SHOP}/branding"),
            None,
            &[("Accept-Language", "0")],
        )
        .await;
    assert!(
        b.body["bannerLogoRelativeUrl"].as_str().is_some_and(|u| u.contains("/logintenantbranding/0/bannerlogo?ts=")),
        "{:?}",
        b.body
    );
    assert_eq!(b.body["squareLogoRelativeUrl"], serde_json::Value::Null);
    // Not set: 200 with {}, as Graph answers.
    let r = env.get(&token, &path.replace("bannerLogo", "squareLogo")).await;
    assert_eq!((r.status, r.body.clone()), (reqwest::StatusCode::OK, serde_json::json!({})));
    // The branding cannot be deleted while a stream is set; the stream can.
    let r = env.delete(&token, &format!("/v1.0/organization/{SHOP}/branding")).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(env.delete(&token, &path).await.status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(env.delete(&token, &path).await.status, reqwest::StatusCode::NOT_FOUND);
    env.assert_contract_clean();

    // A GIF: 400, and the contract report names the media type the operation does not take.
    let r = put(b"GIF89a....".to_vec(), "image/gif").await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("PNG or JPEG"), "{}", r.text);
    let report = env.emu.contract_report();
    let v = report.violations.iter().find(|v| v.direction == "request").unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert_eq!(v.path, path);
    assert!(v.findings.iter().any(|f| f.contains("image/gif") && f.contains("image/png")), "{:?}", v.findings);
    // JSON where the stream's bytes belong: 400 too.
    let r = env.put(&token, &path, serde_json::json!({"bannerLogo": "logo.png"})).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(env.emu.contract_report().violations.iter().filter(|v| v.direction == "request").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serves_tenant_type_and_rejects_a_malformed_branding_per_the_contract() {
    let env = emulator_support::env().await;
    // contoso is a workforce tenant: AAD, and no branding.
    let token = env.token(&env.contoso).await;
    let org = env.get(&token, &format!("/v1.0/organization/{CONTOSO}?$select=id,tenantType")).await;
    assert_eq!(org.body["tenantType"], "AAD", "{:?}", org.body);
    env.assert_contract_clean();

    // Branding needs OrganizationalBranding.ReadWrite.All (Organization.Read.All only reads it).
    let path = format!("/v1.0/organization/{CONTOSO}/branding");
    let r = env
        .call_with(
            reqwest::Method::PATCH,
            Some(&token),
            &path,
            Some(serde_json::json!({"signInPageText": "hi"})),
            &[("Accept-Language", "0")],
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = env.get(&token, &path).await;
    assert_eq!(r.status, reqwest::StatusCode::NOT_FOUND, "no branding yet: {:?}", r.body);

    let app =
        entente::emulator::apps::create_app(&env.dir, CONTOSO, "brander", &["OrganizationalBranding.ReadWrite.All".to_string()])
            .unwrap();
    let token = env.token(&app).await;
    // A workforce tenant has a branding too, as in Graph: kept by the emulator, not in the directory
    // (which models branding for external tenants only), read back, checked by the same rules, removed.
    let patch = |body: serde_json::Value| {
        env.call_with(reqwest::Method::PATCH, Some(&token), &path, Some(body), &[("Accept-Language", "0")])
    };
    let r = patch(serde_json::json!({"signInPageText": "hi", "backgroundColor": "#00aa00"})).await;
    assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "{}", r.text);
    let r = env.call_with(reqwest::Method::GET, Some(&token), &path, None, &[("Accept-Language", "0")]).await;
    assert_eq!(
        (r.body["signInPageText"].as_str(), r.body["backgroundColor"].as_str()),
        (Some("hi"), Some("#00AA00")),
        "{:?}",
        r.body
    );
    assert_eq!(env.dir.tenant_profile(CONTOSO).unwrap().branding, None, "the directory's profile is untouched");
    let r = patch(serde_json::json!({"backgroundColor": "green"})).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("backgroundColor"), "{}", r.text);
    let logo = format!("{path}/localizations/0/bannerLogo");
    let r = env
        .http
        .put(env.url(&logo))
        .bearer_auth(&token)
        .header("Content-Type", "image/png")
        .body(png(b"wf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    let got = env.http.get(env.url(&logo)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), png(b"wf").as_slice());
    assert_eq!(env.delete(&token, &path).await.status, reqwest::StatusCode::BAD_REQUEST, "an image is still set");
    assert_eq!(env.delete(&token, &logo).await.status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(env.delete(&token, &path).await.status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(env.get(&token, &path).await.status, reqwest::StatusCode::NOT_FOUND);
    env.assert_contract_clean();

    // A number where the contract says string: 400, and the contract report names the request's field.
    let r = env
        .call_with(
            reqwest::Method::PATCH,
            Some(&token),
            &path,
            Some(serde_json::json!({"signInPageText": 42})),
            &[("Accept-Language", "0")],
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{:?}", r.body);
    let report = env.emu.contract_report();
    let v = report.violations.iter().find(|v| v.direction == "request").unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert_eq!(v.path, path);
    assert!(v.findings.iter().any(|f| f.contains("/signInPageText")), "{:?}", v.findings);
}

// ---------------------------------------------------------------------------------------------
// Self-service password reset of an external tenant over Graph: the email authentication method enabled
// for all users (/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email) and the
// branding's loginPageTextVisibilitySettings.hideAccountResetCredentials (emulator, strict contract)

const EMAIL_METHOD: &str = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email";

/// A token of an administrator's app in shop (not entente's), for what changes outside entente.
fn admin_token(h: &Harness) -> String {
    static TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let emu = h.emulator.as_ref().unwrap();
    let mut tokens = TOKENS.lock().unwrap();
    if let Some((_, t)) = tokens.iter().find(|(url, _)| *url == emu.url()) {
        return t.clone();
    }
    let roles = ["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod", "OrganizationalBranding.ReadWrite.All"];
    let app = entente::emulator::apps::create_app(&h.world, SHOP, "admin", &roles.map(String::from)).unwrap();
    let token = emu.mint_token(SHOP, &app.client_id, &roles, 3600);
    tokens.push((emu.url(), token.clone()));
    token
}

/// A request to the emulator as shop's administrator.
async fn as_admin(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let emu = h.emulator.as_ref().unwrap();
    let token = admin_token(h);
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", emu.url())).bearer_auth(token);
    req = req.header("Accept-Language", "0");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = emulator_support::read(req.send().await.unwrap()).await;
    (r.status, r.body)
}

async fn email_method(h: &Harness) -> serde_json::Value {
    let (status, body) = as_admin(h, reqwest::Method::GET, EMAIL_METHOD, None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}

/// The branding's hideAccountResetCredentials, `None` without a branding.
async fn links_hidden(h: &Harness) -> Option<bool> {
    let (status, body) = as_admin(h, reqwest::Method::GET, &format!("/v1.0/organization/{SHOP}/branding"), None).await;
    if status == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    Some(body["loginPageTextVisibilitySettings"]["hideAccountResetCredentials"].as_bool().expect("a boolean"))
}

fn for_all_users(method: &serde_json::Value) -> bool {
    method["state"] == "enabled"
        && method["includeTargets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["targetType"] == "group" && t["id"] == "all_users"))
}

fn password_reset_in(h: &Harness) -> bool {
    h.world.tenant_profile(SHOP).unwrap().self_service_account.is_some_and(|s| s.password_reset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_password_reset_enables_the_method_shows_the_link_reads_back_drifts_and_off_hides_the_link_only() {
    let h = shop_over_graph().await;
    // Before: the method for no one in particular, no branding; password reset is off.
    assert!(!for_all_users(&email_method(&h).await));
    assert_eq!(links_hidden(&h).await, None);
    let on = shop("  tenantType: external\n  selfServiceAccount:\n    passwordReset: true\n");

    // On: both settings are written (the method for all users, the link shown in a branding).
    let plan = plan_and_apply(&on, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action.writes(), "{c:#?}");
    assert_eq!(diff_paths(c), ["selfServiceAccount.passwordReset"]);
    let note = c.note.clone().unwrap_or_default();
    assert!(!note.contains("selfServiceAccount") && !note.contains("fails"), "nothing refused or noted: {note}");
    let method = email_method(&h).await;
    assert!(for_all_users(&method), "{method}");
    assert_eq!(method["allowExternalIdToUseEmailOtp"], "default", "the B2B provider's setting is untouched: {method}");
    assert_eq!(links_hidden(&h).await, Some(false));
    assert!(password_reset_in(&h));
    // The manifest has no branding: the one holding the link has no texts and reads as none.
    assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None);

    // Read back through Graph: no drift, nothing to write.
    let again = engine::plan_against(&on, &h.routes, PlanOptions::default()).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert!(!again.has_writes(), "{:#?}", again.changes);
    assert_eq!(change(&again, Kind::Tenant, SHOP).action, Action::Unchanged);

    // Drift in the branding (the link hidden in Graph): detected and corrected.
    let path = format!("/v1.0/organization/{SHOP}/branding");
    let hide = serde_json::json!({"loginPageTextVisibilitySettings": {"hideAccountResetCredentials": true}});
    assert_eq!(as_admin(&h, reqwest::Method::PATCH, &path, Some(hide)).await.0, reqwest::StatusCode::NO_CONTENT);
    assert!(!password_reset_in(&h), "the directory follows Graph's settings");
    let plan = plan_and_apply(&on, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_eq!(diff_paths(c), ["selfServiceAccount.passwordReset"]);
    assert_eq!(links_hidden(&h).await, Some(false));

    // Drift in the method (disabled in Graph): detected and corrected.
    let off = serde_json::json!({"@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "state": "disabled"});
    assert_eq!(as_admin(&h, reqwest::Method::PATCH, EMAIL_METHOD, Some(off)).await.0, reqwest::StatusCode::NO_CONTENT);
    let plan = plan_and_apply(&on, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert!(c.action == Action::Update && c.drift, "{c:#?}");
    assert_eq!(diff_paths(c), ["selfServiceAccount.passwordReset"]);
    assert!(for_all_users(&email_method(&h).await));

    // Drift in the directory the emulator serves (another backend turned it off): Graph shows it, corrected.
    let op = Operation::ConfigureTenantExperience {
        tenant_type: TenantType::External,
        branding: None,
        self_service_account: Some(entente::core::tenant_profile::SelfServiceAccount::default()),
    };
    h.world.apply(SHOP, &[op]).await.unwrap();
    let plan = plan_and_apply(&on, &h.routes).await;
    assert!(change(&plan, Kind::Tenant, SHOP).drift);
    assert!(password_reset_in(&h));

    // Off: the link is hidden, the method stays enabled for all users (customers may sign in with it), and
    // the plan says so.
    let off = shop("  tenantType: external\n  selfServiceAccount:\n    passwordReset: false\n");
    let plan = plan_and_apply(&off, &h.routes).await;
    let c = change(&plan, Kind::Tenant, SHOP);
    assert_eq!(diff_paths(c), ["selfServiceAccount.passwordReset"]);
    let note = c.note.clone().unwrap_or_default();
    assert!(note.contains("spec.selfServiceAccount.passwordReset") && note.contains("only hides"), "{note}");
    assert!(note.contains("stays enabled") && !note.contains("fails"), "{note}");
    assert_eq!(links_hidden(&h).await, Some(true));
    assert!(for_all_users(&email_method(&h).await), "the method is not disabled");
    assert!(!password_reset_in(&h));
    let again = engine::plan_against(&off, &h.routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);
    let note = change(&again, Kind::Tenant, SHOP).note.clone().unwrap_or_default();
    assert!(!note.contains("passwordReset"), "said only when the plan turns it off: {note}");
    // A manifest without selfServiceAccount means the same (all off): nothing to write.
    let none = engine::plan_against(&shop("  tenantType: external\n"), &h.routes, PlanOptions::default()).await;
    assert!(!none.has_writes(), "{:#?}", none.changes);
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_graph_password_reset_with_a_branding_is_one_branding_patch_and_survives_a_text_edit() {
    let h = shop_over_graph().await;
    let with = format!("{BRANDING}  selfServiceAccount:\n    passwordReset: true\n");
    plan_and_apply(&shop(&with), &h.routes).await;
    assert_eq!(links_hidden(&h).await, Some(false));
    assert_eq!(branding_of(&h).sign_in_page_text.as_deref(), Some("Welcome to Shop"));
    assert!(password_reset_in(&h));
    let edited = with.replace("Welcome to Shop", "Hello");
    let plan = plan_and_apply(&shop(&edited), &h.routes).await;
    assert_eq!(diff_paths(change(&plan, Kind::Tenant, SHOP)), ["branding.signInPageText"]);
    assert_eq!(links_hidden(&h).await, Some(false));
    let again = engine::plan_against(&shop(&edited), &h.routes, PlanOptions::default()).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);
    // The manifest drops the branding but keeps password reset: the texts go, the link stays shown.
    let bare = shop("  tenantType: external\n  selfServiceAccount:\n    passwordReset: true\n");
    let plan = plan_and_apply(&bare, &h.routes).await;
    let paths = diff_paths(change(&plan, Kind::Tenant, SHOP));
    assert!(!paths.is_empty() && paths.iter().all(|p| p.starts_with("branding.")), "{paths:?}");
    assert_eq!(h.world.tenant_profile(SHOP).unwrap().branding, None);
    assert_eq!(links_hidden(&h).await, Some(false));
    assert!(password_reset_in(&h));
    assert!(!engine::plan_against(&bare, &h.routes, PlanOptions::default()).await.has_writes());
    h.check_contract();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serves_password_reset_settings_and_rejects_malformed_ones_per_the_contract() {
    let env = emulator_support::env().await;
    env.dir.apply(SHOP, &external_shop()).await.unwrap();
    let perms = ["Policy.ReadWrite.AuthenticationMethod", "OrganizationalBranding.ReadWrite.All"].map(String::from);
    let app = entente::emulator::apps::create_app(&env.dir, SHOP, "admin", &perms).unwrap();
    let token = env.token(&app).await;
    let branding = format!("/v1.0/organization/{SHOP}/branding");
    let patch_branding = |body: serde_json::Value| {
        env.call_with(reqwest::Method::PATCH, Some(&token), &branding, Some(body), &[("Accept-Language", "0")])
    };
    let reset = || env.dir.tenant_profile(SHOP).unwrap().self_service_account.is_some_and(|s| s.password_reset);

    // The method for all users, then the link shown: the directory's passwordReset follows.
    let method = serde_json::json!({
        "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
        "state": "enabled",
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
    });
    assert_eq!(env.patch(&token, EMAIL_METHOD, method).await.status, reqwest::StatusCode::NO_CONTENT);
    let got = env.get(&token, EMAIL_METHOD).await;
    assert_eq!(got.body["includeTargets"][0]["id"], "all_users", "{:?}", got.body);
    assert!(!reset(), "no branding shows the link yet");
    let show =
        serde_json::json!({"loginPageTextVisibilitySettings": {"hideAccountResetCredentials": false, "hideTermsOfUse": true}});
    assert_eq!(patch_branding(show).await.status, reqwest::StatusCode::NO_CONTENT);
    assert!(reset());
    let got = env.call_with(reqwest::Method::GET, Some(&token), &branding, None, &[("Accept-Language", "0")]).await;
    assert_eq!(got.body["loginPageTextVisibilitySettings"]["hideTermsOfUse"], true, "{:?}", got.body);
    assert_eq!(got.body["loginPageTextVisibilitySettings"]["hideAccountResetCredentials"], false);
    // The method disabled: off.
    let disabled =
        serde_json::json!({"@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "state": "disabled"});
    assert_eq!(env.patch(&token, EMAIL_METHOD, disabled).await.status, reqwest::StatusCode::NO_CONTENT);
    assert!(!reset());
    assert_eq!(env.get(&token, EMAIL_METHOD).await.body["state"], "disabled");
    env.assert_contract_clean();

    // A string where the contract says boolean: 400, and the report names the request's field.
    let r = patch_branding(serde_json::json!({"loginPageTextVisibilitySettings": {"hideAccountResetCredentials": "no"}})).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    let report = env.emu.contract_report();
    let v = report.violations.iter().find(|v| v.direction == "request").unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert_eq!(v.path, branding);
    assert!(v.findings.iter().any(|f| f.contains("hideAccountResetCredentials")), "{:?}", v.findings);
    // A target type outside the contract's enum: 400 too, naming includeTargets.
    let bad = serde_json::json!({
        "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
        "includeTargets": [{"targetType": "everyone", "id": "all_users"}],
    });
    let r = env.patch(&token, EMAIL_METHOD, bad).await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.text);
    let report = env.emu.contract_report();
    let requests: Vec<_> = report.violations.iter().filter(|v| v.direction == "request").collect();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        requests[1].findings.iter().any(|f| f.contains("includeTargets") && f.contains("targetType")),
        "{:?}",
        requests[1].findings
    );
    assert_eq!(env.get(&token, EMAIL_METHOD).await.body["includeTargets"][0]["targetType"], "group", "nothing written");
}
