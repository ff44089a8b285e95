//! The contract validator against the OpenAPI subset: every documented sample validates, the
//! negative samples do not, and the emulator's strict mode records violations (and only those) at
//! `GET /_emulator/contract-violations`.

mod emulator_support;

use std::path::Path;

use emulator_support::*;
use entente::emulator::Contract;
use entente::emulator::contract::Options;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn samples() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graph-v1.0-samples.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap().as_object().unwrap().clone()
}

fn contract() -> Contract {
    Contract::embedded().unwrap()
}

#[test]
fn the_built_in_document_is_the_shared_reference() {
    let shared = entente::emulator::contract::default_openapi_path();
    if let Ok(text) = std::fs::read_to_string(&shared) {
        assert_eq!(text, entente::emulator::contract::EMBEDDED_OPENAPI, "the built-in copy differs from {}", shared.display());
    }
    let c = Contract::load(None).unwrap();
    assert!(c.operation(&Method::POST, "/invitations").is_some());
}

#[test]
fn every_documented_sample_validates() {
    let c = contract();
    let mut checked = 0;
    for (schema, list) in samples() {
        for (i, sample) in list.as_array().unwrap().iter().enumerate() {
            let findings = c.validate_component(&schema, sample, Options::default()).unwrap();
            assert!(findings.is_empty(), "{schema}[{i}]: {findings:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 14, "the samples file holds 14 payloads");
}

#[test]
fn the_negative_samples_fail() {
    let c = contract();
    let all = samples();
    let first = |name: &str| all[name][0].clone();

    // a bad enum (cross-tenant access type), deep in a nullable reference
    let mut partner = first("microsoft.graph.crossTenantAccessPolicyConfigurationPartner");
    partner["b2bDirectConnectOutbound"]["usersAndGroups"]["accessType"] = json!("sometimes");
    let f = c
        .validate_component("microsoft.graph.crossTenantAccessPolicyConfigurationPartner", &partner, Options::default())
        .unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].pointer, "/b2bDirectConnectOutbound/usersAndGroups/accessType");

    // 21 batch items
    let mut batch = first("BatchRequest");
    let item = batch["requests"][0].clone();
    batch["requests"] = Value::Array(
        (0..21)
            .map(|i| {
                let mut it = item.clone();
                it["id"] = json!(i.to_string());
                it
            })
            .collect(),
    );
    let f = c.validate_component("BatchRequest", &batch, Options::default()).unwrap();
    assert!(f.iter().any(|f| f.pointer == "/requests" && f.message.contains("at most 20")), "{f:?}");

    // a bad allowInvitesFrom
    let mut authz = first("microsoft.graph.authorizationPolicy");
    authz["allowInvitesFrom"] = json!("nobody");
    let f = c.validate_component("microsoft.graph.authorizationPolicy", &authz, Options::default()).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].pointer, "/allowInvitesFrom");

    // a bad member of a flags enum
    let mut ca = first("microsoft.graph.conditionalAccessPolicy");
    ca["conditions"]["users"]["includeGuestsOrExternalUsers"]["guestOrExternalUserTypes"] = json!("internalGuest,visitor");
    let f = c.validate_component("microsoft.graph.conditionalAccessPolicy", &ca, Options::default()).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].pointer.ends_with("/guestOrExternalUserTypes"));

    // and more: a null where null is not allowed, a wrong type, a missing required property
    let mut invitation = first("microsoft.graph.invitation");
    invitation["inviteRedirectUrl"] = Value::Null;
    invitation["sendInvitationMessage"] = json!("yes");
    let f = c.validate_component("microsoft.graph.invitation", &invitation, Options::default()).unwrap();
    assert_eq!(f.len(), 2, "{f:?}");
    let f = c
        .validate_component("microsoft.graph.ODataErrors.ODataError", &json!({ "error": { "code": "x" } }), Options::default())
        .unwrap();
    assert_eq!(f.len(), 1, "message is required: {f:?}");
}

#[tokio::test]
async fn strict_mode_records_violations_and_paths_outside_the_subset() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    assert_eq!(env.invite(&token, "ok@adatum.com").await.status, StatusCode::CREATED);
    assert_eq!(env.get(&token, "/v1.0/users?$select=id,userType").await.status, StatusCode::OK);
    // an operation the subset and entente's fragments leave out: served, recorded as outside the subset
    let reader = entente::emulator::apps::create_app(&env.dir, CONTOSO, "reader", &["Application.Read.All".to_string()]).unwrap();
    let reader = env.token(&reader).await;
    assert_eq!(env.get(&reader, "/v1.0/servicePrincipals").await.status, StatusCode::OK);
    env.assert_contract_clean();

    // a client bug: a misspelled property. The emulator refuses it (400) as Graph does, and the
    // contract report names the property.
    let bad = env
        .post(
            &token,
            "/v1.0/invitations",
            json!({ "invitedUserEmailAddress": "x@adatum.com", "inviteRedirectUrl": "https://x", "sendInvitationMesage": true }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let report = env.call(Method::GET, None, "/_emulator/contract-violations", None).await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(report.body["count"], 1);
    let v = &report.body["violations"][0];
    assert_eq!(v["direction"], "request");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["operationId"], "invitations.invitation.CreateInvitation");
    assert!(v["findings"][0].as_str().unwrap().contains("sendInvitationMesage"), "{v}");
    let outside: Vec<&Value> = report.body["outsideSubset"].as_array().unwrap().iter().collect();
    assert!(outside.iter().any(|o| o["path"] == "/v1.0/servicePrincipals" && o["method"] == "GET"), "{outside:?}");
    assert!(report.body["checkedRequests"].as_u64().unwrap() >= 3);

    // cleared on DELETE
    assert_eq!(env.call(Method::DELETE, None, "/_emulator/contract-violations", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.emu.contract_report().count, 0);
    let stats = env.call(Method::GET, None, "/_emulator/stats", None).await;
    assert!(stats.body["requests"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn every_response_the_emulator_sends_validates_with_unknown_properties_checked() {
    // One pass over every operation of the subset the emulator serves, reads and writes, success and
    // error: not one violation, unknown properties included.
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let p = "/v1.0/policies/crossTenantAccessPolicy";
    let steps: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/v1.0/invitations".into(), Some(json!({ "invitedUserEmailAddress": "a@adatum.com", "inviteRedirectUrl": "https://x",
            "invitedUserMessageInfo": { "customizedMessageBody": "hi", "ccRecipients": [{ "emailAddress": { "address": "b@adatum.com" } }] } }))),
        (Method::GET, "/v1.0/users".into(), None),
        (Method::GET, "/v1.0/users?$select=id,displayName,mail,userPrincipalName,userType,creationType,externalUserState,externalUserStateChangeDateTime,accountEnabled,otherMails,identities".into(), None),
        (Method::GET, "/v1.0/users/delta()".into(), None),
        (Method::GET, "/v1.0/users/nobody".into(), None),
        (Method::GET, p.into(), None),
        (Method::GET, format!("{p}/default"), None),
        (Method::PATCH, format!("{p}/default"), Some(json!({ "inboundTrust": { "isMfaAccepted": true } }))),
        (Method::POST, format!("{p}/default/resetToSystemDefault"), None),
        (Method::POST, format!("{p}/partners"), Some(json!({ "tenantId": FABRIKAM, "tenantRestrictions": { "devices": { "mode": "allowed", "rule": "device.isCompliant -eq True" } } }))),
        (Method::POST, format!("{p}/partners"), Some(json!({ "tenantId": FABRIKAM }))),
        (Method::GET, format!("{p}/partners"), None),
        (Method::GET, format!("{p}/partners/{FABRIKAM}"), None),
        (Method::PUT, format!("{p}/partners/{FABRIKAM}/identitySynchronization"), Some(json!({ "userSyncInbound": { "isSyncAllowed": true } }))),
        (Method::GET, format!("{p}/partners/{FABRIKAM}/identitySynchronization"), None),
        (Method::DELETE, format!("{p}/partners/{FABRIKAM}"), None),
        (Method::GET, "/v1.0/policies/authorizationPolicy".into(), None),
        (Method::PATCH, "/v1.0/policies/authorizationPolicy".into(), Some(json!({ "allowInvitesFrom": "none" }))),
        (Method::POST, "/v1.0/invitations".into(), Some(json!({ "invitedUserEmailAddress": "c@adatum.com", "inviteRedirectUrl": "https://x" }))),
        (Method::POST, "/v1.0/$batch".into(), Some(json!({ "requests": [{ "id": "1", "method": "GET", "url": "/users?$select=id" }] }))),
    ];
    for (method, path, body) in steps {
        let needs_body = body.is_some() || method == Method::POST;
        let r =
            env.call(method.clone(), Some(&token), &path, if needs_body { Some(body.unwrap_or(json!({}))) } else { None }).await;
        assert!(r.status.as_u16() < 500, "{method} {path}: {:?}", r.body);
    }
    let report = env.emu.contract_report();
    assert!(report.checked_responses >= 19);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.outside_subset.is_empty(), "{:?}", report.outside_subset);
}
