//! Bad input: each case fails with an error naming the file, the object and the field, and nothing at
//! all is applied when any document is invalid.

mod common;

use common::Workspace;

const TENANT: &str = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: { name: contoso }
spec:
  tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01
  initialDomain: contoso.onmicrosoft.com
";

fn invitation(spec_lines: &str) -> String {
    format!(
        "apiVersion: entente.dev/v1alpha1
kind: GuestInvitation
metadata: {{ name: alice }}
spec:
{spec_lines}"
    )
}

/// Applies `tenant.yaml` (valid) and `bad.yaml`; returns stderr after checking nothing was applied.
fn rejected(bad: &str) -> String {
    let ws = Workspace::new();
    ws.write("m/tenant.yaml", TENANT);
    ws.write("m/bad.yaml", bad);
    let dir = ws.path("m").display().to_string();
    let (code, out, err) = ws.run(&["apply", "-f", &dir]);
    assert_eq!(code, 2, "bad input exits 2\nstdout: {out}\nstderr: {err}");
    assert!(err.contains("nothing was applied"), "{err}");
    // Nothing applied: not even the valid Tenant in the other file.
    let (_, tenants, _) = ws.run(&["directory", "tenants"]);
    assert!(!tenants.contains("contoso"), "the valid tenant must not be applied: {tenants}");
    err
}

fn assert_names(err: &str, file: &str, object: &str, field: &str) {
    let line = err.lines().find(|l| l.contains(file) && l.contains(object) && l.contains(field));
    assert!(line.is_some(), "no error line naming {file}, {object} and {field}:\n{err}");
}

#[test]
fn malformed_yaml_names_the_file_and_line() {
    let err = rejected("apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: { name: x\n  spec: [\n");
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(err.contains("malformed YAML"), "{err}");
}

#[test]
fn unknown_kind() {
    let err = rejected("apiVersion: entente.dev/v1alpha1\nkind: Tenent\nmetadata: { name: x }\nspec: {}\n");
    assert_names(&err, "bad.yaml", "Tenent/default/x", "kind");
    assert!(err.contains("expected one of Tenant, CrossTenantAccessPolicy, GuestInvitation"), "{err}");
}

#[test]
fn wrong_api_version() {
    let err = rejected("apiVersion: entente.dev/v1\nkind: Tenant\nmetadata: { name: x }\nspec: {}\n");
    assert_names(&err, "bad.yaml", "Tenant/default/x", "apiVersion");
}

#[test]
fn unknown_field() {
    let err = rejected(&invitation(
        "  tenantRef: { name: contoso }\n  invitedUserEmailAddress: alice@fabrikam.com\n  invitedUserEmail: typo@fabrikam.com\n",
    ));
    assert_names(&err, "bad.yaml:7", "GuestInvitation/default/alice", "spec.invitedUserEmail");
    assert!(err.contains("unknown field `invitedUserEmail`"), "{err}");
}

#[test]
fn unknown_nested_field_and_bad_enum_name_their_path() {
    let bad = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: { name: fabrikam }
spec:
  tenantId: 9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02
  initialDomain: fabrikam.onmicrosoft.com
  externalCollaboration:
    allowInvitesFrom: nobody
";
    let err = rejected(bad);
    assert_names(&err, "bad.yaml:8", "Tenant/default/fabrikam", "spec.externalCollaboration.allowInvitesFrom");
    assert!(err.contains("unknown variant `nobody`"), "{err}");
}

#[test]
fn missing_tenant_ref() {
    let err = rejected(&invitation("  invitedUserEmailAddress: alice@fabrikam.com\n"));
    assert_names(&err, "bad.yaml", "GuestInvitation/default/alice", "spec");
    assert!(err.contains("missing field `tenantRef`"), "{err}");
}

#[test]
fn unknown_tenant_ref_lists_the_known_tenants() {
    let err = rejected(&invitation("  tenantRef: { name: contosoo }\n  invitedUserEmailAddress: alice@fabrikam.com\n"));
    assert_names(&err, "bad.yaml:5", "GuestInvitation/default/alice", "spec.tenantRef.name");
    assert!(err.contains("no Tenant \"contosoo\" in namespace \"default\" (Tenants in the manifests: default/contoso)"), "{err}");
}

#[test]
fn invalid_email() {
    let err = rejected(&invitation("  tenantRef: { name: contoso }\n  invitedUserEmailAddress: alice(at)fabrikam.com\n"));
    assert_names(&err, "bad.yaml:6", "GuestInvitation/default/alice", "spec.invitedUserEmailAddress");
    assert!(err.contains("not a valid email address"), "{err}");
}

#[test]
fn invalid_guid_and_domain_are_all_reported_together() {
    let bad = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata: { name: fabrikam }
spec:
  tenantId: 9a3e5b17-not-a-guid
  initialDomain: fabrikam
  externalCollaboration:
    domainList: { mode: blockList, domains: [ok.com, -bad-.com] }
";
    let err = rejected(bad);
    assert_names(&err, "bad.yaml:5", "Tenant/default/fabrikam", "spec.tenantId");
    assert_names(&err, "bad.yaml:6", "Tenant/default/fabrikam", "spec.initialDomain");
    assert_names(&err, "bad.yaml", "Tenant/default/fabrikam", "spec.externalCollaboration.domainList.domains[1]");
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn invalid_partner_tenant_id_and_targets() {
    let bad = "apiVersion: entente.dev/v1alpha1
kind: CrossTenantAccessPolicy
metadata: { name: p }
spec:
  tenantRef: { name: contoso }
  partnerTenantId: 6F1C7A52-3D4B-4E8A-9F21-0C5D8E7B1A01
  b2bCollaborationInbound:
    usersAndGroups:
      accessType: allowed
      targets: [{ target: Everyone, targetType: user }]
";
    let err = rejected(bad);
    assert!(err.contains("spec.partnerTenantId: is the tenant's own id"), "{err}");
    assert_names(
        &err,
        "bad.yaml",
        "CrossTenantAccessPolicy/default/p",
        "spec.b2bCollaborationInbound.usersAndGroups.targets[0].target",
    );
}

#[test]
fn duplicate_objects_and_duplicate_natural_keys() {
    let one = invitation("  tenantRef: { name: contoso }\n  invitedUserEmailAddress: alice@fabrikam.com\n");
    let err = rejected(&format!("{one}---\n{one}"));
    assert!(err.contains("duplicate object: also defined at"), "{err}");

    let other = one.replace("name: alice", "name: alice-again").replace("alice@", "ALICE@");
    let err = rejected(&format!("{one}---\n{other}"));
    assert_names(&err, "bad.yaml", "GuestInvitation/default/alice-again", "spec.invitedUserEmailAddress");
    assert!(err.contains("already invites"), "{err}");
}

#[test]
fn a_group_the_tenant_does_not_declare() {
    let err =
        rejected(&invitation("  tenantRef: { name: contoso }\n  invitedUserEmailAddress: a@fabrikam.com\n  groups: [Ghosts]\n"));
    assert_names(&err, "bad.yaml", "GuestInvitation/default/alice", "spec.groups[0]");
}

#[test]
fn automatic_consent_on_the_default_is_refused_as_graph_does() {
    let bad = TENANT
        .replace("contoso", "other")
        .replace("6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01", "11111111-2222-3333-4444-555555555555")
        + "  crossTenantAccessDefault:\n    automaticUserConsentSettings: { inboundAllowed: true }\n";
    let err = rejected(&bad);
    assert!(err.contains("read-only on the default configuration"), "{err}");
}

#[test]
fn a_missing_path_is_an_error() {
    let ws = Workspace::new();
    let (code, _, err) = ws.run(&["plan", "-f", "does-not-exist"]);
    assert_eq!(code, 2);
    assert!(err.contains("does-not-exist") && err.contains("cannot read"), "{err}");
}
