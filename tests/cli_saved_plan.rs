//! Applying exactly what was reviewed: `plan --out` and `apply --plan`, `--target`, changes reported as
//! they land, and terraform's exit codes on request.

mod common;

use common::Workspace;

fn last_line(out: &str) -> &str {
    out.trim_end().lines().last().unwrap_or_default()
}

fn gina_yaml(display_name: &str) -> String {
    format!(
        "---\napiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {{name: gina-fabrikam}}\n\
         spec: {{tenantRef: {{name: contoso}}, invitedUserEmailAddress: gina@fabrikam.com, invitedUserDisplayName: {display_name}}}\n"
    )
}

/// The examples with one more invitation (`gina`), whose display name the tests edit.
fn with_gina(ws: &Workspace) -> std::path::PathBuf {
    let dir = ws.copy_examples();
    ws.write("examples/gina.yaml", &gina_yaml("Gina"));
    dir
}

fn rename_gina(ws: &Workspace, to: &str) {
    ws.write("examples/gina.yaml", &gina_yaml(to));
}

#[test]
fn a_saved_plan_is_applied_exactly_and_refused_once_what_it_touches_changed() {
    let ws = Workspace::new();
    with_gina(&ws);
    let (code, out, err) = ws.run(&["apply", "-f", "examples"]);
    assert_eq!(code, 0, "{out}{err}");

    // Reviewed: Gina's new display name.
    rename_gina(&ws, "Gina G");
    let (code, out, err) = ws.run(&["plan", "-f", "examples", "--out", "reviewed.plan"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("Saved the plan to reviewed.plan"), "{err}");
    let saved = std::fs::read_to_string(ws.path("reviewed.plan")).unwrap();
    assert!(saved.contains("\"format\": \"entente-plan/1\"") && saved.contains("Gina G"), "{saved}");

    // The manifests move on before the apply: the reviewed change is no longer what would be written.
    rename_gina(&ws, "Ginny");
    let (code, out, err) = ws.run(&["apply", "--plan", "reviewed.plan"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no longer holds") && err.contains("Nothing was applied"), "{err}");
    assert!(
        err.contains(
            "GuestInvitation/default/gina-fabrikam: planned to update; now displayName would be \"Ginny\" (reviewed: \"Gina G\")"
        ),
        "{err}"
    );
    let (_, out, _) = ws.run(&["plan", "-f", "examples"]);
    assert!(out.contains("~ displayName: \"Gina\" → \"Ginny\""), "nothing was written: {out}");

    // Back to what was reviewed, with one more edit elsewhere: the reviewed change is applied, the other left out.
    rename_gina(&ws, "Gina G");
    let invitations = std::fs::read_to_string(ws.path("examples/invitations.yaml")).unwrap();
    ws.write("examples/invitations.yaml", &invitations.replace("Alice (Fabrikam)", "Alice A"));
    let (code, out, err) = ws.run(&["apply", "--plan", "reviewed.plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("~ GuestInvitation/default/gina-fabrikam updated <gina@fabrikam.com>"), "{out}");
    assert!(!out.contains("alice-fabrikam updated"), "{out}");
    assert!(
        out.contains("1 change(s) appeared after the plan was saved and were not applied (nobody reviewed them): GuestInvitation/default/alice-fabrikam"),
        "{out}"
    );
    assert!(last_line(&out).starts_with("Apply complete: "), "{out}");
    assert!(last_line(&out).contains("; 1 changed, "), "{out}");
    let (code, out, _) = ws.run(&["plan", "-f", "examples"]);
    assert_eq!(code, 1);
    assert!(out.contains("~ GuestInvitation/default/alice-fabrikam update"), "still pending: {out}");
    assert!(!out.contains("gina-fabrikam update"), "{out}");
}

#[test]
fn a_saved_plan_is_refused_when_the_directory_changed_under_it() {
    let ws = Workspace::new();
    with_gina(&ws);
    assert_eq!(ws.run(&["apply", "-f", "examples"]).0, 0);
    rename_gina(&ws, "Gina G");
    assert_eq!(ws.run(&["plan", "-f", "examples", "--out", "p.json"]).0, 1);
    // Someone deletes Gina in the portal: the reviewed update would now be a restore from the recycle bin.
    let (code, _, err) = ws.run(&["directory", "delete-guest", "contoso", "gina@fabrikam.com"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ws.run(&["apply", "--plan", "p.json"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("GuestInvitation/default/gina-fabrikam: planned to update; now it would restore"), "{err}");
}

#[test]
fn saved_plans_are_refused_where_they_do_not_fit() {
    let ws = Workspace::new();
    with_gina(&ws);
    let (code, _, err) = ws.run(&["apply", "--plan", "p.json", "-f", "examples"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = ws.run(&["apply", "--plan", "missing.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read plan file missing.json"), "{err}");
    ws.write("other.json", "{\"changes\": []}");
    let (code, _, err) = ws.run(&["apply", "--plan", "other.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a plan written by `entente plan --out`"), "{err}");
    let (code, _, err) = ws.run(&["plan", "--plan", "other.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("--plan applies a saved plan"), "{err}");
    let (code, _, err) = ws.run(&["apply", "-f", "examples", "--out", "p.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("--out saves a plan"), "{err}");
    // A plan that failed is not saved.
    ws.write("examples/broken.yaml", "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {name: x}\nspec: {tenantRef: {name: nowhere}, invitedUserEmailAddress: x@fabrikam.com}\n");
    let (code, _, err) = ws.run(&["plan", "-f", "examples", "--out", "p.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(!ws.path("p.json").exists());
}

#[test]
fn target_narrows_plan_apply_and_prune_to_the_named_objects_and_their_tenant() {
    let ws = Workspace::new();
    with_gina(&ws);
    let (code, out, err) = ws.run(&["plan", "-f", "examples", "--target", "guestinvitation/gina-fabrikam"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("+ Tenant/default/contoso create"), "its tenant comes with it: {out}");
    assert!(out.contains("note: Tenant/default/contoso is included"), "{out}");
    assert!(out.contains("+ GuestInvitation/default/gina-fabrikam create <gina@fabrikam.com>"), "{out}");
    assert!(!out.contains("alice-fabrikam") && !out.contains("Tenant/default/fabrikam "), "{out}");
    assert!(!out.contains("SyncJob/"), "an untargeted sync job is not previewed: {out}");
    assert!(last_line(&out).starts_with("Plan: 2 to create, 0 to update, 0 to delete"), "{out}");

    let (code, out, err) = ws.run(&["apply", "-f", "examples", "--target", "GuestInvitation/default/gina-fabrikam"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, guests, _) = ws.run(&["directory", "guests", "contoso"]);
    assert!(guests.contains("gina@fabrikam.com") && !guests.contains("alice@fabrikam.com"), "{guests}");

    // A target that names nothing is an error, not "no changes".
    let (code, _, err) = ws.run(&["plan", "-f", "examples", "--target", "GuestInvitation/default/ginaa"]);
    assert_eq!(code, 2);
    assert!(err.contains("--target GuestInvitation/default/ginaa names no object"), "{err}");
    let (code, _, err) = ws.run(&["plan", "-f", "examples", "--target", "Guest/gina"]);
    assert_eq!(code, 2);
    assert!(err.contains("\"Guest\" in \"Guest/gina\" is not a kind entente manages"), "{err}");

    // Prune: everything applied, then two guests leave the manifests; only the targeted one is deleted.
    assert_eq!(ws.run(&["apply", "-f", "examples"]).0, 0);
    std::fs::remove_file(ws.path("examples/gina.yaml")).unwrap();
    ws.drop_documents(&ws.path("examples/invitations.yaml"), &["alice-fabrikam"]);
    let (code, out, err) = ws.run(&["apply", "-f", "examples", "--prune", "--target", "GuestInvitation/default/gina-fabrikam"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("- GuestInvitation/default/gina-fabrikam deleted <gina@fabrikam.com>"), "{out}");
    let (_, guests, _) = ws.run(&["directory", "guests", "contoso"]);
    assert!(!guests.contains("gina@fabrikam.com") && guests.contains("alice@fabrikam.com"), "{guests}");
}

#[test]
fn detailed_exitcode_follows_terraform() {
    let ws = Workspace::new();
    with_gina(&ws);
    assert_eq!(ws.run(&["plan", "-f", "examples", "--detailed-exitcode"]).0, 2, "changes pending");
    assert_eq!(ws.run(&["apply", "-f", "examples"]).0, 0);
    assert_eq!(ws.run(&["plan", "-f", "examples", "--detailed-exitcode"]).0, 0, "no changes");
    ws.write("examples/broken.yaml", "kind: GuestInvitation\n");
    assert_eq!(ws.run(&["plan", "-f", "examples", "--detailed-exitcode"]).0, 1, "error");
}

#[test]
fn apply_prints_each_change_as_it_lands_in_plan_order() {
    let ws = Workspace::new();
    with_gina(&ws);
    let (code, out, err) = ws.run(&["apply", "-f", "examples"]);
    assert_eq!(code, 0, "{out}{err}");
    // Not a terminal: no bar, no control characters; the lines are the progress.
    assert!(!err.contains('\r') && !out.contains('\u{1b}'), "{err:?}");
    let tenant = out.find("+ Tenant/default/contoso created").expect("tenant line");
    let gina = out.find("+ GuestInvitation/default/gina-fabrikam created").expect("gina line");
    assert!(tenant < gina, "{out}");
}

#[test]
fn on_a_terminal_apply_draws_a_progress_bar_on_stderr() {
    // `script` (util-linux) gives the command a pseudo-terminal, as an interactive shell would.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to run entente on a pseudo-terminal");
        return;
    }
    let ws = Workspace::new();
    with_gina(&ws);
    let entente = env!("CARGO_BIN_EXE_entente");
    let command = format!("{entente} apply -f examples --directory {}", ws.db().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(ws.path(""))
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("█") && text.contains("/9 "), "a bar counting the 9 changes: {text}");
    assert!(text.contains("+ GuestInvitation/default/gina-fabrikam created"), "{text}");
    assert!(text.contains("Apply complete: "), "{text}");
}
