//! The CLI as a reviewer and a GitOps repository meet it: one true summary line, last; invitees' addresses;
//! unchanged objects counted but not listed; folders read as repositories hold them; standard input;
//! read-only commands that create nothing; a closed pipe that ends quietly; output formats refused where
//! they mean nothing.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{Workspace, examples};

fn ex() -> String {
    examples().display().to_string()
}

fn last_line(out: &str) -> &str {
    out.trim_end().lines().last().unwrap_or_default()
}

#[test]
fn the_summary_is_the_last_line_and_counts_sync_writes_and_failures() {
    let ws = Workspace::new();
    let (code, out, err) = ws.run(&["plan", "-f", &ex()]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        last_line(&out),
        "Plan: 8 to create, 0 to update, 0 to delete, 0 unchanged, 1 refused; sync: 0 user write(s) pending."
    );
    // On a fresh directory the sync job's tenants are created by this same plan: said so, not a failure.
    assert!(out.contains("SyncJob/default/fabrikam-to-contoso: previewed after apply"), "{out}");
    assert!(!out.contains("does not exist in the directory"), "{out}");
    // Marks and addresses.
    assert!(out.contains("+ GuestInvitation/default/alice-fabrikam create <alice@fabrikam.com>"), "{out}");
    assert!(out.contains("! GuestInvitation/default/dave-litware refused <dave@litware.com>"), "{out}");

    let (code, out, err) = ws.run(&["apply", "-f", &ex()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(last_line(&out).starts_with("Apply complete: "), "{out}");
    assert!(last_line(&out).ends_with("; sync: 0 user write(s) made."), "{out}");

    // A new member of the sync scope: one user write pending, in the last line, and plan exits 1.
    let (code, _, err) =
        ws.run(&["directory", "add-member", "fabrikam.onmicrosoft.com", "frank@fabrikam.com", "--display-name", "Frank"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ws.run(&["plan", "-f", &ex()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("1 would be created"), "{out}");
    assert_eq!(
        last_line(&out),
        "Plan: 0 to create, 0 to update, 0 to delete, 8 unchanged, 1 refused; sync: 1 user write(s) pending."
    );
    let (code, out, err) = ws.run(&["apply", "-f", &ex()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(last_line(&out).starts_with("Apply complete: 0 write(s); 0 changed"), "{out}");
    assert!(last_line(&out).ends_with("; sync: 1 user write(s) made."), "{out}");
}

#[test]
fn a_gitops_folder_is_read_as_it_is_and_only_entente_documents_count() {
    let ws = Workspace::new();
    let repo = ws.path("repo");
    std::fs::create_dir_all(repo.join("apps")).unwrap();
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::copy(examples().join("tenants.yaml"), repo.join("TENANTS.YAML")).unwrap();
    std::fs::copy(examples().join("partners.yaml"), repo.join("apps/partners.yml")).unwrap();
    ws.write("repo/kustomization.yaml", "resources: [apps]\n");
    ws.write("repo/apps/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n");
    ws.write("repo/.git/junk.yaml", "this: [is not yaml\n");
    ws.write("repo/.hidden.yaml", "this: [is not yaml\n");
    ws.write("repo/apps/notes.txt", "not a manifest\n");
    let invitation = serde_json::json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "GuestInvitation",
        "metadata": {"name": "alice-fabrikam"},
        "spec": {"tenantRef": {"name": "contoso"}, "invitedUserEmailAddress": "alice@fabrikam.com"}
    });
    ws.write("repo/apps/alice.JSON", &invitation.to_string());
    let (code, out, err) = ws.run(&["plan", "-f", repo.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("Plan: 5 to create"), "two tenants, two partners, one invitation: {out}");
    assert!(out.contains("<alice@fabrikam.com>"), "{out}");
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: skipped")).collect();
    assert_eq!(notes.len(), 1, "one note: {err}");
    assert!(
        notes[0].contains("2 documents") && notes[0].contains("ConfigMap (v1)") && notes[0].contains("kustomization"),
        "{err}"
    );

    // An entente kind under a misspelt apiVersion is an error, never skipped (a pruned guest would follow).
    ws.write("repo/apps/typo.yaml", "apiVersion: entente.dve/v1alpha1\nkind: GuestInvitation\nmetadata: {name: bob}\nspec: {}\n");
    let (code, _, err) = ws.run(&["plan", "-f", repo.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("typo.yaml") && err.contains("unsupported apiVersion \"entente.dve/v1alpha1\""), "{err}");
}

#[test]
fn manifests_are_read_from_standard_input() {
    let ws = Workspace::new();
    let invitations = std::fs::read_to_string(examples().join("invitations.yaml")).unwrap();
    let tenants = examples().join("tenants.yaml");
    let (code, out, err) = ws.run_with_stdin(&["plan", "-f", tenants.to_str().unwrap(), "-f", "-"], &invitations);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("<alice@fabrikam.com>"), "{out}");
    let (code, _, err) = ws.run_with_stdin(&["plan", "-f", "-"], "apiVersion: entente.dev/v1alpha1\nkind: Tenant\n");
    assert_eq!(code, 2);
    assert!(err.contains("<stdin>:"), "errors name standard input: {err}");
}

#[test]
fn read_only_commands_create_no_files() {
    let ws = Workspace::new();
    let db = ws.path(".entente/directory.db");
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("entente")
            .unwrap()
            .current_dir(ws.dir.path())
            .env_remove("ENTENTE_DIRECTORY")
            .args(args)
            .output()
            .unwrap()
    };
    run(&["plan", "-f", &ex()]);
    run(&["directory", "tenants"]);
    run(&["directory", "guests", "contoso.onmicrosoft.com"]);
    run(&["explain", "-f", &ex(), "--to", "contoso", "--user", "alice@fabrikam.com"]);
    assert!(
        !ws.path(".entente").exists(),
        "nothing under .entente: {:?}",
        std::fs::read_dir(ws.dir.path()).unwrap().collect::<Vec<_>>()
    );
    run(&["apply", "-f", &ex()]);
    assert!(db.exists(), "apply creates the directory");
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_own_exit_code() {
    let ws = Workspace::new();
    // More output than a pipe buffers (64 KiB), so writing it meets the closed pipe.
    let file = ws.write("many.yaml", &tenants_and_guests(1500));
    let bin = assert_cmd::cargo::cargo_bin("entente");
    let mut child = std::process::Command::new(bin)
        .current_dir(ws.dir.path())
        .env("ENTENTE_DIRECTORY", ws.db())
        .args(["plan", "-f", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close our end, as `| head -c1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    stdout.read_exact(&mut byte).unwrap();
    drop(stdout);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("Broken pipe"), "{err}");
    assert_eq!(status.code(), Some(1), "changes pending, as without the pipe: {err}");
}

#[test]
fn output_formats_are_refused_where_they_mean_nothing_and_yaml_is_offered() {
    let ws = Workspace::new();
    let (code, out, err) = ws.run(&["apply", "-f", &ex(), "-o", "markdown"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("-o markdown is a plan's pull-request comment"), "{err}");
    assert!(!ws.db().exists(), "nothing applied");
    let (code, _, err) = ws.run(&["sync", "run", "-f", &ex(), "-o", "markdown"]);
    assert_eq!(code, 2, "clap refuses the value: {err}");
    assert!(err.contains("invalid value 'markdown'"), "{err}");

    let (code, out, err) = ws.run(&["plan", "-f", &ex(), "-o", "yaml"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_saphyr::from_str(&out).expect("valid YAML");
    assert_eq!(v["summary"]["create"], 8);
    let (code, out, _) = ws.run(&["apply", "-f", &ex(), "-o", "yaml"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_saphyr::from_str(&out).expect("valid YAML");
    assert!(v["writes"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn version_names_the_commit_and_completions_and_the_manual_are_printed() {
    let ws = Workspace::new();
    let (code, out, _) = ws.run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("entente ") && out.contains("commit"), "{out}");
    let (code, out, _) = ws.run(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("_entente()") && out.contains("--show-unchanged"), "{}", &out[..out.len().min(300)]);
    let (code, out, _) = ws.run(&["man"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH entente 1"), "{}", &out[..out.len().min(300)]);
    let (_, out, _) = ws.run(&["controller", "--help"]);
    assert!(out.contains("all ten kinds"), "{out}");
}

/// `n` invitations to contoso, after the examples' tenants.
fn tenants_and_guests(n: usize) -> String {
    let tenants = std::fs::read_to_string(examples().join("tenants.yaml")).unwrap();
    let guests: String = (0..n)
        .map(|i| {
            format!(
                "---\napiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {{name: guest-{i}}}\n\
                 spec: {{tenantRef: {{name: contoso}}, invitedUserEmailAddress: guest{i}@fabrikam.com}}\n"
            )
        })
        .collect();
    format!("{tenants}\n{guests}")
}

#[test]
fn a_prune_deleting_more_than_the_guard_allows_is_refused_until_overridden() {
    let ws = Workspace::new();
    let all = ws.write("all.yaml", &tenants_and_guests(30));
    let (code, out, err) = ws.run(&["apply", "-f", all.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // A mistake: only the first 5 guests are left in the manifests. 25 of 30 would go; 10 are allowed.
    let few = ws.write("all.yaml", &tenants_and_guests(5));
    let (code, out, err) = ws.run(&["plan", "-f", few.to_str().unwrap(), "--prune"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("prune refused: it would delete 25 of the 30 objects entente manages in tenant contoso.onmicrosoft.com (25 of them guests), more than the 10 allowed"), "{out}");
    assert!(
        out.contains("- GuestInvitation/default/guest-29 delete <guest29@fabrikam.com>"),
        "the refused deletions are shown: {out}"
    );
    let (code, out, _) = ws.run(&["apply", "-f", few.to_str().unwrap(), "--prune"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Nothing applied"), "{out}");
    let (_, guests, _) = ws.run(&["directory", "guests", "contoso"]);
    assert!(guests.contains("guest29@fabrikam.com"), "no guest deleted: {guests}");
    // A lower explicit limit refuses too; one that covers the deletions lets them through.
    let (code, out, _) = ws.run(&["plan", "-f", few.to_str().unwrap(), "--prune", "--max-prune", "3"]);
    assert_eq!(code, 2);
    assert!(out.contains("more than the 3 allowed (--max-prune 3)"), "{out}");
    let (code, out, err) = ws.run(&["apply", "-f", few.to_str().unwrap(), "--prune", "--max-prune", "25"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("- GuestInvitation/default/guest-29 deleted <guest29@fabrikam.com>"), "{out}");
}

#[test]
fn a_pruned_guest_says_which_groups_they_lose() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let (code, out, err) = ws.run(&["apply", "-f", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    ws.drop_documents(&dir.join("invitations.yaml"), &["alice-fabrikam"]);
    let (code, out, err) = ws.run(&["plan", "-f", dir.to_str().unwrap(), "--prune"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("- GuestInvitation/default/alice-fabrikam delete <alice@fabrikam.com>"), "{out}");
    assert!(out.contains("deletes guest alice@fabrikam.com (") && out.contains("; loses group(s) Fabrikam partners"), "{out}");
}

#[test]
fn a_group_dropped_from_a_tenant_is_reported_as_left_behind() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let (code, out, err) = ws.run(&["apply", "-f", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let edit = |file: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.contains(from), "{file} has {from:?}");
        std::fs::write(dir.join(file), text.replacen(from, to, 1)).unwrap();
    };
    edit("tenants.yaml", "    - displayName: Contractors\n", "");
    edit("invitations.yaml", "groups: [Contractors]", "groups: []");
    let (_, out, err) = ws.run(&["plan", "-f", dir.to_str().unwrap()]);
    assert!(
        out.contains("= Tenant/default/contoso unchanged\n    # group \"Contractors\" is no longer in spec.groups: entente stops managing it and leaves it in the directory with its 1 guest member(s)"),
        "{out}{err}"
    );
}

#[test]
fn explain_refuses_a_user_that_is_not_an_email_address() {
    let ws = Workspace::new();
    let (code, out, err) = ws.run(&["explain", "-f", &ex(), "--to", "contoso", "--user", "notanemail"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--user: \"notanemail\" is not a valid email address: it has no @"), "{err}");
}

#[test]
fn a_standing_refusal_is_listed_once_and_a_new_one_in_full() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    let dir = dir.to_str().unwrap();
    // New: this plan creates the tenant whose block list refuses dave, so the refusal is shown in full.
    let (_, out, _) = ws.run(&["plan", "-f", dir]);
    assert!(out.contains("! GuestInvitation/default/dave-litware refused <dave@litware.com>"), "{out}");
    assert!(out.contains("note: rule(s) R5 decided the refusals above: `entente rules R5` explains one"), "{out}");
    assert_eq!(ws.run(&["apply", "-f", dir]).0, 0);
    // Standing: nothing in contoso's settings changes, so it is one grouped line, in plan and apply alike.
    for command in ["plan", "apply"] {
        let (_, out, _) = ws.run(&[command, "-f", dir]);
        assert!(!out.contains("dave-litware refused"), "{command}: {out}");
        assert!(out.contains("! 1 standing refusal(s): refused whatever this plan does, nothing is written for them"), "{out}");
        assert!(
            out.contains("    ! DomainBlocked: domain litware.com is on the block list of tenant contoso.onmicrosoft.com"),
            "{out}"
        );
        assert!(out.contains("        GuestInvitation/default/dave-litware <dave@litware.com>"), "{out}");
        assert!(last_line(&out).contains("1 refused"), "still counted: {out}");
    }
    let (_, md, _) = ws.run(&["plan", "-f", dir, "-o", "markdown"]);
    assert!(md.contains("<details><summary>⛔ 1 standing refusal(s)"), "{md}");
    assert!(!md.contains("| `GuestInvitation/default/dave-litware` |"), "not in the table of changes: {md}");
    // A change to contoso's settings in the same plan: the refusal is shown in full again.
    let tenants = std::fs::read_to_string(ws.path("examples/tenants.yaml")).unwrap();
    ws.write("examples/tenants.yaml", &tenants.replacen("domains: [litware.com]", "domains: [litware.com, example.net]", 1));
    let (_, out, _) = ws.run(&["plan", "-f", dir]);
    assert!(out.contains("! GuestInvitation/default/dave-litware refused"), "{out}");
    // The rule named is at hand.
    let (code, rule, _) = ws.run(&["rules", "R5"]);
    assert_eq!(code, 0);
    assert!(rule.starts_with("R5: Invitation domain list") && rule.contains("DomainBlocked"), "{rule}");
    assert_eq!(ws.run(&["rules", "R19"]).0, 2);
}

#[test]
fn a_comment_that_deletes_guests_warns_first_and_says_what_they_lose() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    assert_eq!(ws.run(&["apply", "-f", dir.to_str().unwrap()]).0, 0);
    ws.drop_documents(&dir.join("invitations.yaml"), &["alice-fabrikam"]);
    let (code, md, err) = ws.run(&["plan", "-f", dir.to_str().unwrap(), "--prune", "-o", "markdown"]);
    assert_eq!(code, 1, "{md}{err}");
    let warning = md.find("> [!WARNING]\n> This plan **deletes 1 object(s)**, **1 of them guests**").expect(&md);
    assert!(warning < md.find("| Object |").unwrap(), "the warning comes before the table: {md}");
    assert!(md.contains("#### Access impact"), "{md}");
    assert!(
        md.contains("- 🔴 removes — **contoso.onmicrosoft.com**: deletes 1 guest(s) of fabrikam.com (alice@fabrikam.com)"),
        "{md}"
    );
    assert!(md.contains("deletes guest alice@fabrikam.com (") && md.contains("; loses group(s) Fabrikam partners"), "{md}");
    let (_, text, _) = ws.run(&["plan", "-f", dir.to_str().unwrap(), "--prune"]);
    assert!(
        text.contains("Access impact:\n  - contoso.onmicrosoft.com: deletes 1 guest(s) of fabrikam.com (alice@fabrikam.com)"),
        "{text}"
    );
}

#[test]
fn explain_answers_no_for_a_user_without_an_account_and_states_its_assumptions_for_unmanaged_partners() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["apply", "-f", &ex()]).0, 0);
    // Not invited to contoso: the settings would allow an invitation, but nobody can get in without one.
    let (code, out, err) = ws.run(&["explain", "-f", &ex(), "--user", "nobody@fabrikam.com", "--to", "contoso"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("b2bCollaboration: not yet: no account in the resource tenant (an invitation would be allowed"),
        "{out}"
    );
    let (code, out, _) = ws.run(&["explain", "-f", &ex(), "--user", "nobody@fabrikam.com", "--to", "contoso", "-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["hasAccount"].as_bool(), v["reachable"].as_bool()), (Some(false), Some(false)), "{out}");
    // adatum.com is no Tenant of the manifests: reasoned about under assumptions it states. Carol is invited.
    let (code, out, err) =
        ws.run(&["explain", "-f", &ex(), "--user", "carol@adatum.com", "--to", "contoso", "--app", "Office365"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  assumed: adatum.com is not a Tenant of the manifests: it is taken as a Microsoft Entra tenant"),
        "{out}"
    );
    assert!(out.contains("b2bCollaboration: yes"), "{out}");
    assert!(!out.contains("not a known directory tenant"), "{out}");
    let (code, out, _) = ws.run(&[
        "explain",
        "-f",
        &ex(),
        "--user",
        "carol@adatum.com",
        "--to",
        "contoso",
        "--app",
        "AllApplications",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "contoso's default admits other organizations only to Office 365: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["assumptions"].as_array().map(Vec::len), Some(3), "{out}");
    assert!(out.contains("b2bCollaborationInbound.applications"), "{out}");
}
