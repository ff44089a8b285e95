//! The documented example payloads (`tests/data/graph-v1.0-samples.json`, a copy of the shared
//! reference) parse into entente's wire types and serialize back without loss: every property of a
//! sample comes back with the same value (a `null` may come back absent, which Graph treats alike),
//! except the few properties entente deliberately does not model, listed here by name.
//! Samples of resources entente does not use (synchronization jobs, multi-tenant organizations,
//! conditional access, identity providers) are the emulator's business (`tests/emulator_contract.rs`).

use std::path::Path;

use entente::graph::wire::{
    AuthorizationPolicy, BatchRequest, CrossTenantAccessPolicyConfigurationDefault, CrossTenantAccessPolicyConfigurationPartner,
    Invitation, ODataError, Page, User,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn samples(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graph-v1.0-samples.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[name].as_array().unwrap_or_else(|| panic!("no samples for {name}")).clone()
}

/// Every property of `sample` is in `back` with the same value, but for `ignored` property names.
fn lost(sample: &Value, back: &Value, ignored: &[&str], path: &str, out: &mut Vec<String>) {
    match (sample, back) {
        (Value::Object(s), Value::Object(b)) => {
            for (k, v) in s {
                if ignored.contains(&k.as_str()) {
                    continue;
                }
                match b.get(k) {
                    Some(bv) => lost(v, bv, ignored, &format!("{path}.{k}"), out),
                    None if v.is_null() => {}
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(s), Value::Array(b)) if s.len() == b.len() => {
            for (i, (sv, bv)) in s.iter().zip(b).enumerate() {
                lost(sv, bv, ignored, &format!("{path}[{i}]"), out);
            }
        }
        (s, b) if s == b => {}
        _ => out.push(format!("{path}: {sample} became {back}")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(name: &str, ignored: &[&str]) -> usize {
    let list = samples(name);
    for (i, sample) in list.iter().enumerate() {
        let typed: T = serde_json::from_value(sample.clone()).unwrap_or_else(|e| panic!("{name}[{i}] does not parse: {e}"));
        let back = serde_json::to_value(&typed).unwrap();
        let mut missing = Vec::new();
        lost(sample, &back, ignored, name, &mut missing);
        assert!(missing.is_empty(), "{name}[{i}] lost: {missing:#?}");
        let again: T = serde_json::from_value(back.clone()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), back, "{name}[{i}]: a second round trip changes nothing");
    }
    list.len()
}

#[test]
fn the_samples_entente_reads_and_writes_round_trip_without_loss() {
    let mut n = 0;
    n += round_trip::<CrossTenantAccessPolicyConfigurationDefault>(
        "microsoft.graph.crossTenantAccessPolicyConfigurationDefault",
        &[],
    );
    // `crossCloudMeetingConfiguration` (Teams meetings across clouds) is not a setting entente manages.
    n += round_trip::<CrossTenantAccessPolicyConfigurationPartner>(
        "microsoft.graph.crossTenantAccessPolicyConfigurationPartner",
        &["crossCloudMeetingConfiguration"],
    );
    n += round_trip::<Invitation>("microsoft.graph.invitation", &["@odata.context"]);
    // `businessPhones` is not a property entente selects.
    n += round_trip::<Page<User>>("microsoft.graph.userCollectionResponse", &["businessPhones"]);
    n += round_trip::<ODataError>("microsoft.graph.ODataErrors.ODataError", &[]);
    n += round_trip::<BatchRequest>("BatchRequest", &[]);
    n += round_trip::<AuthorizationPolicy>("microsoft.graph.authorizationPolicy", &[]);
    assert_eq!(n, 8);
}
