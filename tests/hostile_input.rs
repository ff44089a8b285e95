//! Hostile and careless input, as the CLI meets it: a secret pasted where a reference belongs, look-alike
//! addresses, fields the API server would refuse, files that are not files. Each is refused with exit 2,
//! naming the file, the object and the field; nothing is echoed that should not be, and the directory
//! is never touched (its file is not even created).

mod common;

use common::Workspace;

const TENANT: &str = "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {name: contoso}\nspec:\n  \
                      tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01\n  initialDomain: contoso.onmicrosoft.com\n";

fn invitation(name: &str, email: &str) -> String {
    format!(
        "---\napiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {{name: {name}}}\nspec:\n  \
         tenantRef: {{name: contoso}}\n  invitedUserEmailAddress: \"{email}\"\n"
    )
}

/// `apply` of `yaml` (as `bad.yaml`) is refused: exit 2, the file, the object and every field named,
/// `hidden` nowhere in the output, and no directory file created.
fn refused(yaml: &str, object: &str, fields: &[&str], hidden: Option<&str>) -> String {
    let ws = Workspace::new();
    ws.write("bad.yaml", yaml);
    let (code, out, err) = ws.run(&["apply", "-f", "bad.yaml"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("bad.yaml:"), "names the file: {all}");
    assert!(all.contains(object), "names {object}: {all}");
    for f in fields {
        assert!(all.contains(&format!(": {f}: ")), "names the field {f}: {all}");
    }
    if let Some(secret) = hidden {
        assert!(!all.contains(secret), "the secret is echoed: {all}");
    }
    assert!(!ws.db().exists(), "the directory file was created");
    all
}

#[test]
fn a_secret_pasted_where_a_reference_belongs_is_refused_without_being_repeated() {
    let secret = "GOCSPX-4kLq9ZtQ2vN8xR7wY1mB3cD5";
    let graph = |reference: &str| {
        format!(
            "{TENANT}  backend:\n    type: graph\n    graph:\n      clientId: 3f6c7a52-3d4b-4e8a-9f21-0c5d8e7b1a09\n      \
             clientSecretRef: {reference}\n"
        )
    };
    let err = refused(&graph(secret), "Tenant/default/contoso", &["spec.backend.graph.clientSecretRef"], Some(secret));
    assert!(err.contains("value hidden"), "{err}");
    // Beside a real reference, as an extra field: Kubernetes-typed objects refuse unknown fields too.
    let err = refused(
        &graph(&format!("{{name: graph, key: secret, value: {secret}}}")),
        "Tenant/default/contoso",
        &["spec.backend.graph.clientSecretRef.value"],
        Some(secret),
    );
    assert!(err.contains("unknown field `value`"), "{err}");
}

#[test]
fn look_alike_addresses_are_refused_naming_the_code_point() {
    for (email, named) in [
        ("ali\u{200B}ce@fabrikam.com", "U+200B"),
        ("ali\u{200D}ce@fabrikam.com", "U+200D"),
        ("alice\u{00A0}@fabrikam.com", "U+00A0"),
        ("\u{202E}ecila@fabrikam.com", "U+202E"),
        ("alic\u{0435}@fabrikam.com", "U+0435"),
        ("e\u{0301}lodie@fabrikam.com", "normal form C"),
    ] {
        let err = refused(
            &format!("{TENANT}{}", invitation("alice", email)),
            "GuestInvitation/default/alice",
            &["spec.invitedUserEmailAddress"],
            None,
        );
        assert!(err.contains(named), "{email:?}: {err}");
    }
}

#[test]
fn the_same_address_in_another_case_is_the_same_person() {
    let yaml = format!("{TENANT}{}{}", invitation("elodie", "élodie@fabrikam.com"), invitation("elodie2", "ÉLODIE@fabrikam.com"));
    let err = refused(&yaml, "GuestInvitation/default/elodie2", &["spec.invitedUserEmailAddress"], None);
    assert!(err.contains("already invites"), "{err}");
    // Plus-addressing is an address like any other.
    let ws = Workspace::new();
    ws.write("ok.yaml", &format!("{TENANT}{}", invitation("tagged", "first+tag@fabrikam.com")));
    let (code, out, err) = ws.run(&["plan", "-f", "ok.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
}

#[test]
fn what_the_api_server_refuses_the_cli_refuses() {
    // Unknown fields in metadata, a namespace that is not a DNS label.
    let yaml = TENANT.replace("metadata: {name: contoso}", "metadata: {name: contoso, labelz: {team: a}, namespace: Team_A}");
    refused(&yaml, "Tenant/Team_A/contoso", &["metadata.labelz", "metadata.namespace"], None);
    // More items than the CRD allows.
    let domains: Vec<String> = (0..1001).map(|i| format!("d{i}.example.com")).collect();
    let yaml = format!(
        "{TENANT}  externalCollaboration:\n    domainList:\n      mode: blockList\n      domains: [{}]\n",
        domains.join(", ")
    );
    let err = refused(&yaml, "Tenant/default/contoso", &["spec.externalCollaboration.domainList.domains"], None);
    assert!(err.contains("1001 items, more than the 1000 allowed"), "{err}");
    // A kind or a name of the wrong type is named as such, not as missing.
    let err = refused("apiVersion: entente.dev/v1alpha1\nkind: 7\nmetadata: {name: x}\nspec: {}\n", "x", &["kind"], None);
    assert!(err.contains("must be a string") && err.contains("found 7"), "{err}");
    let err = refused(&TENANT.replace("name: contoso", "name: 123"), "Tenant", &["metadata.name"], None);
    assert!(err.contains("must be a string, not 123"), "{err}");
}

#[test]
fn a_reference_from_a_namespace_the_tenant_does_not_admit_is_refused() {
    let invite = "---\napiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {name: alice, namespace: team-b}\nspec:\n  \
                  tenantRef: {name: contoso, namespace: default}\n  invitedUserEmailAddress: alice@fabrikam.com\n";
    let err = refused(&format!("{TENANT}{invite}"), "GuestInvitation/team-b/alice", &["spec.tenantRef.namespace"], None);
    assert!(err.contains("does not admit objects of namespace \"team-b\""), "{err}");
    refused(&format!("{TENANT}  allowedNamespaces: [Team_B]\n"), "Tenant/default/contoso", &["spec.allowedNamespaces[0]"], None);
    let ws = Workspace::new();
    ws.write("ok.yaml", &format!("{TENANT}  allowedNamespaces: [team-b]\n{invite}"));
    let (code, out, err) = ws.run(&["plan", "-f", "ok.yaml"]);
    assert_eq!(code, 1, "admitted: {out}{err}");
}

#[test]
fn an_access_package_that_needs_approval_needs_an_approver() {
    let package = "---\napiVersion: entente.dev/v1alpha1\nkind: AccessPackage\nmetadata: {name: portal}\nspec:\n  \
                   tenantRef: {name: contoso}\n  displayName: Portal\n  assignmentPolicies:\n  - displayName: Anyone\n    \
                   requestors: {allExternalUsers: true}\n    approvalRequired: true\n";
    let err =
        refused(&format!("{TENANT}{package}"), "AccessPackage/default/portal", &["spec.assignmentPolicies[0].approvers"], None);
    assert!(err.contains("needs at least one approver"), "{err}");
}

#[cfg(unix)]
#[test]
fn an_image_that_is_not_a_regular_file_is_refused_without_reading_it() {
    let ws = Workspace::new();
    let tenant = "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop}\nspec:\n  \
                  tenantId: 7b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a05\n  initialDomain: shop.onmicrosoft.com\n  tenantType: external\n  \
                  branding:\n    bannerLogo: logo.png\n";
    ws.write("m/shop.yaml", tenant);
    // An endless device behind an innocent name: read, it would exhaust memory.
    std::os::unix::fs::symlink("/dev/zero", ws.path("m/logo.png")).unwrap();
    let (code, out, err) = ws.run(&["apply", "-f", "m"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("not a regular file (a device)") && out.contains("spec.branding.bannerLogo"), "{out}{err}");
    // A named pipe: opened, it would hang plan and apply forever.
    std::fs::remove_file(ws.path("m/logo.png")).unwrap();
    if std::process::Command::new("mkfifo").arg(ws.path("m/logo.png")).status().is_ok_and(|s| s.success()) {
        let (code, out, err) = ws.run(&["plan", "-f", "m"]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(out.contains("not a regular file (a named pipe)"), "{out}{err}");
    }
    let (_, tenants, _) = ws.run(&["directory", "tenants"]);
    assert!(!tenants.contains("shop"), "nothing applied: {tenants}");
}

#[test]
fn a_secret_marker_is_keyed_with_ententes_own_key_so_it_is_no_oracle() {
    let google = "---\napiVersion: entente.dev/v1alpha1\nkind: IdentityProvider\nmetadata: {name: google}\nspec:\n  \
                  tenantRef: {name: contoso}\n  type: Google\n  clientId: google-app-id\n  \
                  clientSecretRef: {name: google-oauth, key: clientSecret}\n";
    let ws = Workspace::new();
    ws.write("m.yaml", &format!("{TENANT}{google}"));
    let run = |args: &[&str], secret: &str| {
        let (code, out, err) = ws.run_with(args, "", &[("ENTENTE_IDP_SECRET_DEFAULT_GOOGLE", secret)]);
        (code, format!("{out}{err}"))
    };
    let key_file = ws.path("secret-marker.key");
    let (code, out) = run(&["plan", "-f", "m.yaml"], "Summer2024!");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("hmac-sha256 ") && !out.contains("Summer2024!"), "{out}");
    assert!(!key_file.exists(), "a plan creates no key");
    // The old marker was SHA-256 over a public salt: a dictionary found the password from a PR comment.
    let unkeyed = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(b"6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01/Google\0Summer2024!");
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(!out.contains(&unkeyed), "{out}");

    let (code, out) = run(&["apply", "-f", "m.yaml"], "Summer2024!");
    assert_eq!(code, 0, "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Another process, the same key: the same secret is unchanged, a rotated one is a change.
    let (code, out) = run(&["plan", "-f", "m.yaml"], "Summer2024!");
    assert_eq!(code, 0, "unchanged across processes: {out}");
    let (code, out) = run(&["plan", "-f", "m.yaml"], "Winter2025!");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("~ IdentityProvider/default/google update") && !out.contains("Winter2025!"), "{out}");
}
