//! The deployment a platform team gets: least-privilege RBAC, a restricted Deployment, and CRDs that are
//! exactly what the code generates (in the kustomize base through `crds/`, and in the Helm chart).

use std::path::PathBuf;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents(relative: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
    text.split("\n---\n")
        .filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map(|d| serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("{relative}: {e}")))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// (apiGroups, resources, verbs) of every rule.
fn rules(doc: &Value) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (strings(&r["apiGroups"]), strings(&r["resources"]), strings(&r["verbs"])))
        .collect()
}

fn own(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rbac_grants_only_the_verbs_the_controller_uses() {
    let docs = documents("deploy/rbac.yaml");
    let cluster_role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let kinds = [
        "tenants",
        "crosstenantaccesspolicies",
        "guestinvitations",
        "syncjobs",
        "multitenantorganizations",
        "identityproviders",
        "signupflows",
        "connectedorganizations",
        "accesspackages",
        "conditionalaccesspolicies",
    ];
    let sub = |s: &str, kinds: &[&str]| kinds.iter().map(|k| format!("{k}/{s}")).collect::<Vec<_>>();
    // Only the kinds with a finalizer need `finalizers`: SyncJobs have none (their users stay in the target).
    let finalized = [
        "tenants",
        "crosstenantaccesspolicies",
        "guestinvitations",
        "multitenantorganizations",
        "identityproviders",
        "signupflows",
        "connectedorganizations",
        "accesspackages",
        "conditionalaccesspolicies",
    ];
    assert_eq!(
        rules(cluster_role),
        vec![
            (own(&["entente.dev"]), own(&kinds), own(&["get", "list", "watch", "patch"])),
            (own(&["entente.dev"]), sub("status", &kinds), own(&["patch"])),
            (own(&["entente.dev"]), sub("finalizers", &finalized), own(&["patch"])),
            (own(&[""]), own(&["secrets"]), own(&["get", "list", "watch"])),
            (own(&["events.k8s.io"]), own(&["events"]), own(&["create", "patch"])),
        ]
    );
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(rules(role), vec![(own(&["coordination.k8s.io"]), own(&["leases"]), own(&["get", "create", "patch"]))]);
    assert!(
        docs.iter()
            .all(|d| d["rules"].as_array().is_none_or(|rs| rs.iter().all(|r| !strings(&r["verbs"]).contains(&"*".into()))))
    );

    // The chart's rules are the same lines.
    let chart = std::fs::read_to_string(root().join("charts/entente/templates/rbac.yaml")).unwrap();
    let deploy = std::fs::read_to_string(root().join("deploy/rbac.yaml")).unwrap();
    let rule_lines = |t: &str| {
        t.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("- apiGroups") || l.starts_with("resources:") || l.starts_with("verbs:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(rule_lines(&chart), rule_lines(&deploy));
}

#[test]
fn the_deployment_runs_restricted_with_probes_and_limits() {
    let docs = documents("deploy/deployment.yaml");
    let pod = &docs[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    let args = strings(&c["args"]);
    assert_eq!(args[0], "controller");
    assert!(args.contains(&"--leader-election=true".to_string()));
    // The directory file lives on a writable volume.
    let directory = args.iter().find_map(|a| a.strip_prefix("--directory=")).unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| directory.starts_with(m["mountPath"].as_str().unwrap())));
}

#[test]
fn the_chart_ships_the_generated_crds() {
    let chart = std::fs::read_to_string(root().join("charts/entente/crds/crds.yaml")).unwrap();
    assert!(
        chart == entente::api::crds_yaml(),
        "charts/entente/crds/crds.yaml is out of date: run `cargo run -- crds > charts/entente/crds/crds.yaml`"
    );
    let base = std::fs::read_to_string(root().join("crds/kustomization.yaml")).unwrap();
    assert!(base.contains("crds.yaml"));
    let kustomization = std::fs::read_to_string(root().join("deploy/kustomization.yaml")).unwrap();
    assert!(kustomization.contains("../crds"), "the kustomize base installs the CRDs");
}

#[test]
fn the_crds_carry_cel_rules_for_cross_field_checks() {
    let crds = serde_json::to_value(entente::api::crds()).unwrap();
    let text = crds.to_string();
    for needle in [
        "must be a GUID",
        "backend.graph is required when backend.type is graph",
        "every domainList entry must be a domain",
        "must be an email address",
        "is immutable",
        "x-kubernetes-list-map-keys",
    ] {
        assert!(text.contains(needle), "the CRDs contain {needle:?}");
    }
    // CEL string literals accept only a few escapes: a backslash in a rule is almost always a broken regex.
    fn rules_of(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(rs)) = m.get("x-kubernetes-validations") {
                    out.extend(rs.iter().filter_map(|r| r["rule"].as_str().map(str::to_string)));
                }
                m.values().for_each(|c| rules_of(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| rules_of(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    rules_of(&crds, &mut all);
    assert!(all.len() >= 10, "{all:?}");
    assert!(all.iter().all(|r| !r.contains('\\')), "no backslash in a CEL rule: {all:?}");
    // Every string a rule scans is bounded, so the API server can budget the rule's cost.
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(rules) = v.get("x-kubernetes-validations").and_then(Value::as_array) {
            let scans = rules.iter().any(|r| r["rule"].as_str().is_some_and(|r| r.contains("matches(")));
            let bounded = v.get("maxLength").is_some() || v["items"].get("maxLength").is_some() || v.get("properties").is_some();
            if scans && !bounded {
                out.push(path.to_string());
            }
        }
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| walk(c, &format!("{path}.{k}"), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| walk(c, &format!("{path}[{i}]"), out)),
            _ => {}
        }
    }
    let mut unbounded = Vec::new();
    walk(&crds, "", &mut unbounded);
    assert!(unbounded.is_empty(), "rules on unbounded strings: {unbounded:?}");
}
