//! The CLI end to end, as a user runs it: plan, apply, drift, prune, exit codes, JSON.

mod common;

use common::{Workspace, examples};

fn ex() -> String {
    examples().display().to_string()
}

#[test]
fn applying_the_examples_twice_changes_then_makes_zero_writes() {
    let ws = Workspace::new();
    let (code, out, err) = ws.run(&["plan", "-f", &ex()]);
    assert_eq!(code, 1, "changes pending: {out}{err}");
    assert!(out.contains("Tenant/default/contoso create"), "{out}");
    assert!(out.contains("Plan: 8 to create"), "{out}");

    let (code, out, err) = ws.run(&["apply", "-f", &ex()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("GuestInvitation/default/alice-fabrikam created"), "{out}");
    assert!(out.contains("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"), "{out}");
    assert!(out.contains("redeem URL: entente://redeem?"), "{out}");
    // The refusal names the rule, the setting and the tenant.
    assert!(out.contains("GuestInvitation/default/dave-litware refused"), "{out}");
    assert!(
        out.contains("DomainBlocked: domain litware.com is on the block list of tenant contoso.onmicrosoft.com (externalCollaboration.domainList, R5)"),
        "{out}"
    );

    let (code, out, _) = ws.run(&["apply", "-f", &ex()]);
    assert_eq!(code, 0);
    assert!(out.contains("No changes: 0 write(s)"), "{out}");
    let (code, out, _) = ws.run(&["plan", "-f", &ex()]);
    assert_eq!(code, 0, "no changes after apply: {out}");
    // Unchanged objects are counted, listed only on request.
    assert!(!out.contains("alice-fabrikam"), "{out}");
    assert!(
        out.trim_end().lines().last().unwrap().starts_with("No changes: 0 to create, 0 to update, 0 to delete, 8 unchanged"),
        "{out}"
    );
    let (_, out, _) = ws.run(&["plan", "-f", &ex(), "--show-unchanged"]);
    assert!(out.contains("= GuestInvitation/default/alice-fabrikam unchanged <alice@fabrikam.com>"), "{out}");
}

#[test]
fn json_output_is_machine_readable() {
    let ws = Workspace::new();
    let (code, out, _) = ws.run(&["plan", "-f", &ex(), "-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["summary"]["create"], 8);
    assert_eq!(v["summary"]["refused"], 1);
    assert_eq!(v["hasChanges"], true);
    let refused = v["changes"].as_array().unwrap().iter().find(|c| c["action"] == "refused").unwrap();
    assert_eq!(refused["refusal"]["reason"], "DomainBlocked");

    let (code, out, _) = ws.run(&["apply", "-f", &ex(), "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert!(v["writes"].as_u64().unwrap() > 0);
    let invited = v["results"].as_array().unwrap().iter().find(|r| r["object"]["name"] == "alice-fabrikam").unwrap();
    assert_eq!(invited["result"]["status"], "applied");
    assert!(invited["result"]["outcomes"][0]["inviteRedeemUrl"].as_str().unwrap().starts_with("entente://redeem"));
}

#[test]
fn drift_is_shown_by_plan_and_reverted_by_apply() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["apply", "-f", &ex()]).0, 0);
    let (code, _, err) =
        ws.run(&["directory", "set", "contoso.onmicrosoft.com", "externalCollaboration.allowInvitesFrom", "everyone"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = ws.run(&["plan", "-f", &ex()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Tenant/default/contoso update (drift)"), "{out}");
    assert!(out.contains("~ externalCollaboration.allowInvitesFrom: \"everyone\" → \"adminsAndGuestInviters\""), "{out}");
    let (code, out, _) = ws.run(&["apply", "-f", &ex()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Tenant/default/contoso updated"), "{out}");
    assert_eq!(ws.run(&["plan", "-f", &ex()]).0, 0);
}

#[test]
fn drift_policy_report_shows_drift_without_correcting_it() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let tenants = dir.join("tenants.yaml");
    let text = std::fs::read_to_string(&tenants).unwrap().replace("driftPolicy: correct", "driftPolicy: report");
    std::fs::write(&tenants, text).unwrap();
    let d = dir.display().to_string();
    assert_eq!(ws.run(&["apply", "-f", &d]).0, 0);
    ws.run(&["directory", "set", "contoso.onmicrosoft.com", "crossTenantAccessDefault.inboundTrust.isMfaAccepted", "true"]);
    let (code, out, _) = ws.run(&["plan", "-f", &d]);
    assert_eq!(code, 0, "reported drift is not a pending change: {out}");
    assert!(out.contains("Tenant/default/contoso drift"), "{out}");
    assert!(out.contains("crossTenantAccessDefault.inboundTrust.isMfaAccepted: true → false"), "{out}");
    let (_, out, _) = ws.run(&["apply", "-f", &d]);
    assert!(out.contains("No changes: 0 write(s)"), "{out}");
    let (_, out, _) = ws.run(&["plan", "-f", &d]);
    assert!(out.contains("drift"), "still reported: {out}");
}

#[test]
fn prune_is_opt_in_and_honours_retain() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let d = dir.display().to_string();
    assert_eq!(ws.run(&["apply", "-f", &d]).0, 0);
    std::fs::remove_file(dir.join("invitations.yaml")).unwrap();

    let (code, out, _) = ws.run(&["plan", "-f", &d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--prune"), "removed objects are kept without --prune: {out}");

    let (code, out, _) = ws.run(&["plan", "-f", &d, "--prune"]);
    assert_eq!(code, 1);
    assert!(out.contains("GuestInvitation/default/alice-fabrikam delete"), "{out}");
    assert!(out.contains("GuestInvitation/default/bob-fabrikam retain"), "{out}");

    let (code, out, _) = ws.run(&["apply", "-f", &d, "--prune"]);
    assert_eq!(code, 0, "{out}");
    let (_, guests, _) = ws.run(&["directory", "guests", "contoso.onmicrosoft.com"]);
    assert!(!guests.contains("alice@fabrikam.com"), "alice deleted: {guests}");
    assert!(guests.contains("bob@fabrikam.com"), "bob retained: {guests}");
    let (code, out, _) = ws.run(&["plan", "-f", &d, "--prune"]);
    assert_eq!(code, 0, "bob is no longer managed, so nothing more to prune: {out}");
}

#[test]
fn a_guest_invited_by_hand_is_adopted_not_invited_again() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let d = dir.display().to_string();
    let invitations = std::fs::read_to_string(dir.join("invitations.yaml")).unwrap();
    std::fs::remove_file(dir.join("invitations.yaml")).unwrap();
    assert_eq!(ws.run(&["apply", "-f", &d]).0, 0);
    let (_, before, _) = ws.run(&["directory", "guests", "contoso.onmicrosoft.com", "-o", "json"]);
    // Alice gets invited by another tool, then the manifests declare her.
    std::fs::write(dir.join("alice.yaml"), invitations.split("---").next().unwrap()).unwrap();
    let (code, out, _) = ws.run(&[
        "apply",
        "-f",
        &dir.join("tenants.yaml").display().to_string(),
        "-f",
        &dir.join("alice.yaml").display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}");
    let _ = before;
    let (_, out, _) = ws.run(&["apply", "-f", &d]);
    assert!(out.contains("No changes"), "{out}");
}

#[test]
fn crds_command_prints_the_committed_crds() {
    let ws = Workspace::new();
    let (code, out, _) = ws.run(&["crds"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).unwrap();
    assert_eq!(out, committed);
}

#[test]
fn the_default_directory_lives_under_dot_entente() {
    let ws = Workspace::new();
    let out = assert_cmd::Command::cargo_bin("entente")
        .unwrap()
        .current_dir(ws.dir.path())
        .env_remove("ENTENTE_DIRECTORY")
        .args(["apply", "-f", &ex()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(ws.path(".entente/directory.db").exists());
}

#[test]
fn explain_answers_with_the_chain_of_reasons() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["apply", "-f", &ex()]).0, 0);
    let (code, out, err) = ws.run(&["explain", "-f", &ex(), "--user", "alice@fabrikam.com", "--to", "contoso"]);
    assert_eq!(code, 0, "alice can reach Office 365 in Contoso: {out}{err}");
    assert!(out.contains("b2bCollaboration: yes"), "{out}");
    assert!(out.contains("b2bDirectConnect: no"), "{out}");
    assert!(out.contains("MFA done at fabrikam.onmicrosoft.com is accepted"), "{out}");
    assert!(out.contains("no consent prompt: automatic redemption is allowed both ways (R12)"), "{out}");

    let (code, out, _) = ws.run(&["explain", "-f", &ex(), "--user", "dave@litware.com", "--to", "contoso", "-o", "json"]);
    assert_eq!(code, 1, "dave cannot get in: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v["paths"][0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["decidedBy"], "DomainBlocked");
    assert_eq!(steps[0]["verdict"], "blocks");
}

#[test]
fn plan_reports_who_gains_or_loses_access_as_markdown() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let d = dir.display().to_string();
    assert_eq!(ws.run(&["apply", "-f", &d]).0, 0);
    let partners = dir.join("partners.yaml");
    let text = std::fs::read_to_string(&partners).unwrap().replace("    isMfaAccepted: true\n", "    isMfaAccepted: false\n");
    std::fs::write(&partners, text).unwrap();
    let (code, out, _) = ws.run(&["plan", "-f", &d, "-o", "markdown"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("### entente plan"), "{out}");
    assert!(out.contains("| `CrossTenantAccessPolicy/default/contoso-trusts-fabrikam` | update |"), "{out}");
    assert!(
        out.contains(
            "stops trusting fabrikam.onmicrosoft.com's MFA: 2 existing guest(s) of fabrikam.com will be prompted for MFA"
        ),
        "{out}"
    );
}
