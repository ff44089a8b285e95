//! `$batch` over HTTP: the 20-request limit, unique ids, `dependsOn` with 424, per-request results
//! (including a 429 inside a 200 batch), answers mapped by id whatever their order.

mod emulator_support;

use std::time::Duration;

use emulator_support::*;
use entente::emulator::Rate;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn invite(id: &str, email: &str) -> Value {
    json!({
        "id": id, "method": "POST", "url": "/invitations",
        "headers": { "Content-Type": "application/json" },
        "body": { "invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com" },
    })
}

fn by_id(resp: &Resp) -> std::collections::HashMap<String, Value> {
    resp.body["responses"].as_array().unwrap().iter().map(|r| (r["id"].as_str().unwrap().to_string(), r.clone())).collect()
}

#[tokio::test]
async fn batches_are_limited_to_twenty_unique_requests() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let many: Vec<Value> = (0..21).map(|i| json!({ "id": i.to_string(), "method": "GET", "url": "/users?$select=id" })).collect();
    let r = env.post(&token, "/v1.0/$batch", json!({ "requests": many })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["code"].is_string());

    let dup = json!({ "requests": [
        { "id": "a", "method": "GET", "url": "/users" },
        { "id": "A", "method": "GET", "url": "/organization" },
    ]});
    assert_eq!(env.post(&token, "/v1.0/$batch", dup).await.status, StatusCode::BAD_REQUEST, "ids are unique case-insensitively");
    let no_content_type = json!({ "requests": [
        { "id": "1", "method": "POST", "url": "/invitations", "body": { "invitedUserEmailAddress": "a@b.com", "inviteRedirectUrl": "https://x" } },
    ]});
    assert_eq!(env.post(&token, "/v1.0/$batch", no_content_type).await.status, StatusCode::BAD_REQUEST);
    let unknown_dependency = json!({ "requests": [{ "id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"] }]});
    assert_eq!(env.post(&token, "/v1.0/$batch", unknown_dependency).await.status, StatusCode::BAD_REQUEST);

    let twenty: Vec<Value> = (0..20).map(|i| invite(&format!("r{i}"), &format!("guest{i}@adatum.com"))).collect();
    let r = env.post(&token, "/v1.0/$batch", json!({ "requests": twenty })).await;
    assert_eq!(r.status, StatusCode::OK);
    let answers = by_id(&r);
    assert_eq!(answers.len(), 20);
    for i in 0..20 {
        let a = &answers[&format!("r{i}")];
        assert_eq!(a["status"], 201);
        let uid = a["body"]["invitedUser"]["id"].as_str().unwrap();
        let user = env.dir.user_by_mail(CONTOSO, &format!("guest{i}@adatum.com")).unwrap().unwrap();
        assert_eq!(user.id, uid, "each answer maps back to its request by id");
    }
    // The 21-request batch is the one request that broke the contract (maxItems 20).
    let report = env.emu.contract_report();
    assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
    assert!(report.violations[0].findings[0].contains("at most 20"), "{:?}", report.violations[0]);
}

#[tokio::test]
async fn depends_on_orders_requests_and_fails_dependents_with_424() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let r = env
        .post(
            &token,
            "/v1.0/$batch",
            json!({ "requests": [
                { "id": "4", "method": "GET", "url": "/users?$select=mail", "dependsOn": ["3"] },
                { "id": "3", "method": "PATCH", "url": "/users/00000000-0000-0000-0000-000000000000",
                  "headers": { "Content-Type": "application/json" }, "body": { "displayName": "x" }, "dependsOn": ["1"] },
                invite("1", "first@adatum.com"),
                { "id": "2", "method": "GET", "url": "/users?$filter=mail eq 'first@adatum.com'&$select=id,mail", "dependsOn": ["1"] },
                { "id": "5", "method": "DELETE", "url": "/nowhere" },
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let a = by_id(&r);
    assert_eq!(a["1"]["status"], 201);
    assert_eq!(a["2"]["status"], 200);
    assert_eq!(a["2"]["body"]["value"][0]["mail"], "first@adatum.com", "ran after its dependency");
    assert_eq!(a["3"]["status"], 404);
    assert_eq!(a["4"]["status"], 424, "its dependency failed");
    assert_eq!(a["4"]["body"]["error"]["code"], "FailedDependency");
    assert_eq!(a["5"]["status"], 404);
    assert_eq!(a["1"]["headers"]["Content-Type"], "application/json");
}

#[tokio::test]
async fn each_request_of_a_batch_is_throttled_and_authorized_on_its_own() {
    let mut config = config();
    config.limits.invitations_tenant = Rate::new(3.0, Duration::from_secs(30));
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    let requests: Vec<Value> = (0..5).map(|i| invite(&i.to_string(), &format!("g{i}@adatum.com"))).collect();
    let r = env.post(&token, "/v1.0/$batch", json!({ "requests": requests })).await;
    assert_eq!(r.status, StatusCode::OK);
    let statuses: Vec<u64> = by_id(&r).values().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3);
    let throttled: Vec<Value> = by_id(&r).into_values().filter(|a| a["status"] == 429).collect();
    assert_eq!(throttled.len(), 2);
    let retry: f64 = throttled[0]["headers"]["Retry-After"].as_str().unwrap().parse().unwrap();
    assert!(retry > 0.0);
    assert_eq!(throttled[0]["body"]["error"]["code"], "TooManyRequests");

    let reader = entente::emulator::apps::create_app(&env.dir, CONTOSO, "reader", &["User.Read.All".to_string()]).unwrap();
    let reader = env.token(&reader).await;
    let r = env
        .post(
            &reader,
            "/v1.0/$batch",
            json!({ "requests": [invite("x", "h@adatum.com"), { "id": "y", "method": "GET", "url": "/users" }] }),
        )
        .await;
    let a = by_id(&r);
    assert_eq!(a["x"]["status"], 403);
    assert_eq!(a["y"]["status"], 200);
}
