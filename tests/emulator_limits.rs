//! Throttling (429 with `Retry-After` and the `x-ms-throttle-*` headers), injected 5xx, dropped
//! connections, lost answers to writes and latency, at the configured rates and deterministic with a
//! seed. No test waits more than about a second.

mod emulator_support;

use std::time::{Duration, Instant};

use emulator_support::*;
use entente::emulator::{FaultConfig, Limits, Rate, RetryAfterFormat};
use reqwest::StatusCode;

#[tokio::test]
async fn invitations_past_the_tenant_limit_get_429_with_retry_after() {
    let mut config = config();
    config.limits = Limits { invitations_tenant: Rate::new(3.0, Duration::from_millis(1500)), ..Limits::default() };
    config.limits.retry_after = RetryAfterFormat::Fractional;
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    for i in 0..3 {
        assert_eq!(env.invite(&token, &format!("g{i}@adatum.com")).await.status, StatusCode::CREATED);
    }
    let r = env.invite(&token, "g3@adatum.com").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TooManyRequests");
    assert_eq!(r.body["error"]["innerError"]["status"], "429");
    let retry: f64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(retry > 0.0 && retry <= 0.51, "one invitation refills in 0.5 s: {retry}");
    assert!(env.dir.user_by_mail(CONTOSO, "g3@adatum.com").unwrap().is_none(), "a throttled request does nothing");
    // the limit is per tenant: fabrikam still invites
    let other = env.token(&env.fabrikam).await;
    assert_eq!(env.invite(&other, "g3@adatum.com").await.status, StatusCode::CREATED);
    // honouring Retry-After works
    tokio::time::sleep(Duration::from_secs_f64(retry + 0.05)).await;
    assert_eq!(env.invite(&token, "g3@adatum.com").await.status, StatusCode::CREATED);
    env.assert_contract_clean();
}

#[tokio::test]
async fn resource_units_by_tenant_size_with_throttle_headers() {
    let mut config = config();
    config.limits = Limits { ru_small: Rate::new(10.0, Duration::from_secs(60)), ..Limits::default() };
    config.limits.retry_after = RetryAfterFormat::Integer;
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    // GET /users costs 2 RU, 1 with $select: five list reads fill the 10 RU bucket
    let mut last = None;
    for _ in 0..5 {
        let r = env.get(&token, "/v1.0/users").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ms-resource-unit"), Some("2"));
        last = Some(r);
    }
    let last = last.unwrap();
    assert_eq!(last.header("x-ms-throttle-limit-percentage"), Some("1.0"));
    let r = env.get(&token, "/v1.0/users?$select=id").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry = r.header("Retry-After").unwrap();
    assert!(retry.parse::<u64>().is_ok(), "whole seconds: {retry}");
    assert_eq!(r.header("x-ms-throttle-information"), Some("ResourceUnitLimitExceeded"));
    assert_eq!(
        r.header("x-ms-throttle-scope").unwrap(),
        format!("Tenant_Application/ReadWrite/{}/{CONTOSO}", env.contoso.client_id)
    );
    // per app and tenant: another app in the same tenant has its own budget
    let other = entente::emulator::apps::create_app(&env.dir, CONTOSO, "other", &["User.Read.All".to_string()]).unwrap();
    let other = env.token(&other).await;
    assert_eq!(env.get(&other, "/v1.0/users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn writes_past_the_write_quota_get_429() {
    let mut config = config();
    config.limits = Limits { writes_app_tenant: Rate::new(2.0, Duration::from_secs(60)), ..Limits::default() };
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    let path = "/v1.0/policies/authorizationPolicy";
    let body = serde_json::json!({ "allowEmailVerifiedUsersToJoinOrganization": false });
    assert_eq!(env.patch(&token, path, body.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.patch(&token, path, body.clone()).await.status, StatusCode::NO_CONTENT);
    let r = env.patch(&token, path, body).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("x-ms-throttle-information"), Some("WriteLimitExceeded"));
    assert_eq!(env.get(&token, path).await.status, StatusCode::OK, "reads are not writes");
}

/// Statuses of `n` reads; `None` for a connection closed without an answer.
async fn statuses(env: &Env, token: &str, n: usize) -> Vec<Option<u16>> {
    let mut out = Vec::new();
    for _ in 0..n {
        // a fresh connection each time, so a dropped one does not poison the next request
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let r = client.get(env.url("/v1.0/organization")).bearer_auth(token).send().await;
        out.push(r.ok().map(|r| r.status().as_u16()));
    }
    out
}

#[tokio::test]
async fn injected_faults_and_drops_at_the_configured_rates_and_deterministic() {
    let faults = FaultConfig { fault_rate: 0.3, drop_rate: 0.1, seed: Some(42), token_endpoint: false, ..FaultConfig::default() };
    let mut config = config();
    config.faults = faults.clone();
    let env = env_with(config.clone()).await;
    let token = env.token(&env.contoso).await;
    let seen = statuses(&env, &token, 200).await;
    let dropped = seen.iter().filter(|s| s.is_none()).count();
    let injected = seen.iter().filter(|s| matches!(s, Some(500 | 503 | 504))).count();
    let ok = seen.iter().filter(|s| **s == Some(200)).count();
    assert_eq!(dropped + injected + ok, 200, "{seen:?}");
    assert!((8..=35).contains(&dropped), "about 10% dropped: {dropped}");
    assert!((35..=85).contains(&injected), "about 30% of the rest injected: {injected}");
    let stats = env.emu.stats();
    assert_eq!(stats.dropped_connections as usize, dropped);
    assert_eq!(stats.injected_faults as usize, injected);

    // an injected 503 says when to come back; the body is Graph's
    let env2 = env_with(config).await;
    let token2 = env2.token(&env2.contoso).await;
    assert_eq!(statuses(&env2, &token2, 200).await, seen, "same seed, same faults");
    let r = loop {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let Ok(r) = client.get(env2.url("/v1.0/organization")).bearer_auth(&token2).send().await else { continue };
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break read(r).await;
        }
    };
    assert_eq!(r.code(), "serviceNotAvailable");
    assert_eq!(r.header("Retry-After"), Some("1"));
}

#[tokio::test]
async fn lost_answers_to_writes_happen_after_the_write() {
    let mut config = config();
    config.faults = FaultConfig { ambiguous_rate: 1.0, seed: Some(1), token_endpoint: false, ..FaultConfig::default() };
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let r = client
        .post(env.url("/v1.0/invitations"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "invitedUserEmailAddress": "lost@adatum.com", "inviteRedirectUrl": "https://x" }))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT),
        Err(e) => assert!(!e.is_timeout(), "closed without an answer: {e}"),
    }
    assert!(env.dir.user_by_mail(CONTOSO, "lost@adatum.com").unwrap().is_some(), "the write happened");
    assert_eq!(env.emu.stats().ambiguous_writes, 1);
    // reads are never ambiguous
    assert_eq!(env.get(&token, "/v1.0/users?$select=id").await.status, StatusCode::OK);
}

#[tokio::test]
async fn added_latency() {
    let mut config = config();
    config.faults = FaultConfig { latency: Duration::from_millis(150), ..FaultConfig::default() };
    let env = env_with(config).await;
    let token = env.token(&env.contoso).await;
    let start = Instant::now();
    assert_eq!(env.get(&token, "/v1.0/organization").await.status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(150));
}
