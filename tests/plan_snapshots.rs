//! Rendered plans as a reviewer reads them, kept as snapshots (`tests/snapshots/`): text, JSON and the
//! pull-request comment, for a first plan and for a plan that updates, creates, prunes a guest and carries
//! a standing refusal. Generated ids and times are masked; everything else must match to the character.
//! After a deliberate change in output: `INSTA_UPDATE=always cargo test --test plan_snapshots`, then
//! review the diff of the `.snap` files.

mod common;

use common::Workspace;

/// Runs `entente ARGS` and returns its stdout, after checking the exit code.
fn plan(ws: &Workspace, args: &[&str], code: i32) -> String {
    let (got, out, err) = ws.run(args);
    assert_eq!(got, code, "{out}{err}");
    out
}

fn assert_rendered(name: &str, rendered: &str) {
    insta::with_settings!({
        filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[id]"),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[time]"),
            (r"/tmp/[^ \x22\n]*|/private/var/[^ \x22\n]*", "[path]"),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, rendered);
    });
}

#[test]
fn a_first_plan() {
    let ws = Workspace::new();
    ws.copy_examples();
    assert_rendered("first_plan.txt", &plan(&ws, &["plan", "-f", "examples"], 1));
    assert_rendered("first_plan.json", &plan(&ws, &["plan", "-f", "examples", "-o", "json"], 1));
    assert_rendered("first_plan.md", &plan(&ws, &["plan", "-f", "examples", "-o", "markdown"], 1));
}

#[test]
fn a_plan_that_updates_creates_and_prunes_guests() {
    let ws = Workspace::new();
    let dir = ws.copy_examples();
    assert_eq!(ws.run(&["apply", "-f", "examples"]).0, 0);
    let invitations = std::fs::read_to_string(dir.join("invitations.yaml")).unwrap();
    let edited: Vec<String> = invitations
        .split("\n---\n")
        .filter(|d| !d.contains("name: bob-fabrikam") && !d.contains("name: carol-adatum"))
        .map(|d| d.replace("Alice (Fabrikam)", "Alice Fabrikam"))
        .collect();
    std::fs::write(dir.join("invitations.yaml"), edited.join("\n---\n")).unwrap();
    ws.write(
        "examples/gina.yaml",
        "apiVersion: entente.dev/v1alpha1\nkind: GuestInvitation\nmetadata: {name: gina-fabrikam}\nspec:\n  \
         tenantRef: {name: contoso}\n  invitedUserEmailAddress: gina@fabrikam.com\n  groups: [Contractors]\n",
    );
    let args = ["plan", "-f", "examples", "--prune"];
    assert_rendered("review_plan.txt", &plan(&ws, &args, 1));
    assert_rendered("review_plan.json", &plan(&ws, &[&args[..], &["-o", "json"]].concat(), 1));
    assert_rendered("review_plan.md", &plan(&ws, &[&args[..], &["-o", "markdown"]].concat(), 1));
}
