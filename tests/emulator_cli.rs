//! `entente directory app …` and `entente directory serve` as a user runs them.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Workspace;
use serde_json::Value;

/// A workspace whose directory holds the example tenants.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    let (code, _, err) = ws.run(&["apply", "-f", common::examples().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    ws
}

#[test]
fn app_create_prints_the_secret_once_and_list_never_does() {
    let ws = workspace();
    let (code, out, err) = ws.run(&[
        "directory",
        "app",
        "create",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--name",
        "entente",
        "--permission",
        "User.Invite.All",
        "-p",
        "policy.read.all,User.Read.All",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("client id:") && out.contains("client secret:"), "{out}");
    assert!(out.contains("Policy.Read.All"), "permissions are spelled as Microsoft does: {out}");
    let secret = out.lines().find_map(|l| l.strip_prefix("client secret: ")).unwrap().trim().to_string();
    assert_eq!(secret.len(), 40);

    let (code, out, _) = ws.run(&["directory", "app", "list", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(!out.contains(&secret), "the secret is never shown again");
    let apps: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(apps[0]["displayName"], "entente");
    assert_eq!(apps[0]["secrets"][0]["hint"], &secret[..3]);

    let (code, _, err) = ws.run(&["directory", "app", "create", "--tenant", "contoso", "--name", "x", "-p", "User.Invite"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown application permission"), "{err}");
    let (code, _, err) = ws.run(&["directory", "app", "create", "--tenant", "nowhere.example", "--name", "x"]);
    assert_ne!(code, 0);
    assert!(err.contains("no tenant"), "{err}");
}

#[test]
fn serve_listens_issues_tokens_and_refuses_remote_addresses() {
    let ws = workspace();
    let (code, out, err) = ws.run(&[
        "directory",
        "app",
        "create",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--name",
        "entente",
        "-p",
        "Organization.Read.All",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();

    let (code, _, err) = ws.run(&["directory", "serve", "--listen", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("--allow-remote"), "{err}");

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("entente"))
        .current_dir(ws.dir.path())
        .env("ENTENTE_DIRECTORY", ws.db())
        .args(["directory", "serve", "--listen", "127.0.0.1:0", "--strict-contract"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let url = loop {
        let line = lines.next().expect("the banner").unwrap();
        if let Some(rest) = line.strip_prefix("Graph emulator listening on ") {
            break rest.split(',').next().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    };
    let banner: Vec<String> =
        lines.by_ref().take_while(|l| l.as_ref().is_ok_and(|l| !l.starts_with("Press Ctrl-C"))).map(Result::unwrap).collect();
    assert!(banner.iter().any(|l| l.contains("contoso.onmicrosoft.com") && l.contains("1 app")), "{banner:?}");

    let result = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let http = reqwest::Client::new();
        let health: Value = http.get(format!("{url}/_emulator/health")).send().await?.json().await?;
        let token: Value = http
            .post(format!("{url}/contoso.onmicrosoft.com/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_id", app["clientId"].as_str().unwrap()),
                ("client_secret", app["clientSecret"].as_str().unwrap()),
            ])
            .send()
            .await?
            .json()
            .await?;
        let org: Value = http
            .get(format!("{url}/v1.0/organization"))
            .bearer_auth(token["access_token"].as_str().unwrap_or_default())
            .send()
            .await?
            .json()
            .await?;
        let report: Value = http.get(format!("{url}/_emulator/contract-violations")).send().await?.json().await?;
        Ok::<_, reqwest::Error>((health, org, report))
    });
    child.kill().unwrap();
    let _ = child.wait();
    let (health, org, report) = result.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(org["value"][0]["displayName"], "Contoso Ltd");
    assert_eq!(report["enabled"], true);
    assert_eq!(report["count"], 0);
}
