//! The query and lifecycle surface Microsoft's SDKs use beyond what entente itself needs: users
//! `$orderby` and `$search` (with paging), `/groups/delta` of every group, `DELETE /groups/{id}`,
//! `GET /directory/deletedItems/{id}`, expired delta tokens answered `syncStateNotFound`, and `$filter`
//! errors in OData words. Strict contract checking throughout.

mod emulator_support;

use std::time::Duration;

use emulator_support::*;
use entente::emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const EVENTUAL: &[(&str, &str)] = &[("ConsistencyLevel", "eventual")];

fn names(body: &Value) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|u| u["displayName"].as_str().unwrap_or("").to_string()).collect()
}

async fn seed(env: &Env) {
    for (mail, name) in [
        ("zoe.adams@contoso.com", "Zoe Adams"),
        ("adele.vance@contoso.com", "Adele Vance"),
        ("megan.bowen@contoso.com", "Megan Bowen"),
        ("alex.wilber@contoso.com", "Alex Wilber"),
        ("lidia.holloway@contoso.com", "Lidia Holloway"),
    ] {
        env.dir.add_member(CONTOSO, mail, Some(name)).unwrap();
    }
}

#[tokio::test]
async fn users_are_ordered_and_searched_and_pages_follow_the_order() {
    let env = env().await;
    seed(&env).await;
    let token = env.token(&env.contoso).await;

    let mut seen = Vec::new();
    let mut next = "/v1.0/users?$orderby=displayName&$top=2&$select=id,displayName".to_string();
    loop {
        let page = env.get(&token, &next).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(names(&page.body));
        match page.body["@odata.nextLink"].as_str() {
            Some(link) => next = link.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ["Adele Vance", "Alex Wilber", "Lidia Holloway", "Megan Bowen", "Zoe Adams"]);
    let desc = env.get(&token, "/v1.0/users?$orderby=displayName desc&$select=displayName").await;
    assert_eq!(names(&desc.body)[0], "Zoe Adams");
    let bad = env.get(&token, "/v1.0/users?$orderby=jobTitle").await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "Request_UnsupportedQuery"));
    let filtered = env.get(&token, "/v1.0/users?$orderby=displayName&$filter=startswith(displayName,'A')").await;
    assert_eq!(filtered.status, StatusCode::BAD_REQUEST, "ordering a filtered list needs advanced queries");

    // $search needs ConsistencyLevel: eventual; words match at their start, across fields and case changes.
    let plain = env.get(&token, "/v1.0/users?$search=\"displayName:adele\"").await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    assert!(plain.body["error"]["message"].as_str().unwrap().contains("ConsistencyLevel"), "{:?}", plain.body);
    let search = |q: &str| {
        let path = format!("/v1.0/users?$search={q}&$select=displayName&$orderby=displayName&$count=true");
        let env = &env;
        let token = token.clone();
        async move { env.call_with(Method::GET, Some(&token), &path, None, EVENTUAL).await }
    };
    let hit = search("\"displayName:vance\"").await;
    assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
    assert_eq!((names(&hit.body), hit.body["@odata.count"].clone()), (vec!["Adele Vance".to_string()], json!(1)));
    assert_eq!(names(&search("\"displayName:a\"").await.body), ["Adele Vance", "Alex Wilber", "Zoe Adams"]);
    assert_eq!(names(&search("\"mail:megan\" OR \"displayName:lidia\"").await.body), ["Lidia Holloway", "Megan Bowen"]);
    assert_eq!(names(&search("\"displayName:alex\" AND \"mail:wilber\"").await.body), ["Alex Wilber"]);
    assert!(names(&search("\"displayName:dele\"").await.body).is_empty(), "a word is matched from its start");
    let unknown = search("\"companyName:x\"").await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::BAD_REQUEST, "Request_UnsupportedQuery"));
    let malformed = search("displayName:adele").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    env.assert_contract_clean();
}

#[tokio::test]
async fn filter_errors_name_the_problem_in_odata_terms() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    for (filter, says) in [
        ("mail eq", "expected a value, found the end of the clause"),
        ("mail 'x'", "expected an operator after 'mail'"),
        ("(mail eq 'x'", "expected ')'"),
        ("mail eq *", "the character '*' is not valid"),
    ] {
        let r = env.get(&token, &format!("/v1.0/users?$filter={filter}")).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "Request_BadRequest"), "{filter}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{filter}: {message}");
        assert!(!message.contains("Some(") && !message.contains("Ident(") && !message.contains("None"), "{message}");
    }
    // A hostile clause is refused, and the emulator keeps answering.
    let deep = format!("{}mail eq 'a'{}", "(".repeat(3_000), ")".repeat(3_000));
    assert_eq!(env.get(&token, &format!("/v1.0/users?$filter={deep}")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.get(&token, "/v1.0/users").await.status, StatusCode::OK);
    env.assert_contract_clean();
}

/// One round of `/groups/delta` from `link`: the items of every page and the delta link.
async fn group_round(env: &Env, token: &str, link: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut next = link.to_string();
    loop {
        let page = env.get(token, &next).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        items.extend(page.body["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = page.body["@odata.nextLink"].as_str() {
            next = n.to_string();
        } else {
            return (items, page.body["@odata.deltaLink"].as_str().unwrap().to_string());
        }
    }
}

async fn create_group(env: &Env, token: &str, name: &str) -> String {
    let body = json!({ "displayName": name, "mailEnabled": false, "mailNickname": "g", "securityEnabled": true });
    let r = env.post(token, "/v1.0/groups", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn group_delta_without_a_filter_follows_every_group_created_changed_and_deleted() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let alice = env.dir.add_member(CONTOSO, "alice@contoso.com", Some("Alice")).unwrap();
    let sales = create_group(&env, &token, "Sales").await;
    let legal = create_group(&env, &token, "Legal").await;
    let reference = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{alice}") });
    assert_eq!(
        env.post(&token, &format!("/v1.0/groups/{sales}/members/$ref"), reference.clone()).await.status,
        StatusCode::NO_CONTENT
    );

    let (first, link) = group_round(&env, &token, "/v1.0/groups/delta?$select=displayName,members").await;
    let ids: Vec<&str> = first.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&sales.as_str()) && ids.contains(&legal.as_str()), "{first:#?}");
    let sales_item = first.iter().find(|g| g["id"] == sales.as_str()).unwrap();
    assert_eq!(sales_item["displayName"], "Sales");
    assert_eq!(sales_item["members@delta"][0]["id"], alice.as_str());

    let (quiet, link) = group_round(&env, &token, &link).await;
    assert!(quiet.is_empty(), "nothing changed: {quiet:#?}");

    // A group created (empty), a membership added, a group deleted: each comes in the next round.
    let hr = create_group(&env, &token, "HR").await;
    assert_eq!(env.post(&token, &format!("/v1.0/groups/{legal}/members/$ref"), reference).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.delete(&token, &format!("/v1.0/groups/{sales}")).await.status, StatusCode::NO_CONTENT);
    let (changes, _) = group_round(&env, &token, &link).await;
    let by_id = |id: &str| changes.iter().find(|g| g["id"] == id).cloned().unwrap_or_else(|| panic!("{id} in {changes:#?}"));
    assert_eq!(by_id(&hr)["displayName"], "HR");
    assert_eq!(by_id(&legal)["members@delta"][0]["id"], alice.as_str());
    assert_eq!(by_id(&sales)["@removed"]["reason"], "deleted");
    assert_eq!(changes.len(), 3, "{changes:#?}");
    env.assert_contract_clean();
}

#[tokio::test]
async fn a_deleted_user_is_read_by_id_from_deleted_items() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let id = env.invite(&token, "gone@adatum.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1.0/directory/deletedItems/{id}");
    assert_eq!(env.get(&token, &path).await.status, StatusCode::NOT_FOUND, "not deleted yet");
    assert_eq!(env.delete(&token, &format!("/v1.0/users/{id}")).await.status, StatusCode::NO_CONTENT);
    let item = env.get(&token, &path).await;
    assert_eq!(item.status, StatusCode::OK, "{:?}", item.body);
    assert_eq!((item.body["id"].as_str(), item.body["@odata.type"].as_str()), (Some(id.as_str()), Some("#microsoft.graph.user")));
    assert!(item.body["deletedDateTime"].is_string(), "{:?}", item.body);
    let selected = env.get(&token, &format!("{path}?$select=mail,deletedDateTime")).await;
    assert_eq!(selected.body["mail"], "gone@adatum.com");
    assert!(selected.body.get("displayName").is_none());
    env.assert_contract_clean();
}

#[tokio::test]
async fn an_expired_or_reset_delta_token_is_refused_with_sync_state_not_found() {
    let env = env_with(EmulatorConfig { delta_token_ttl: Duration::from_secs(1), ..config() }).await;
    let token = env.token(&env.contoso).await;
    let latest = env.get(&token, "/v1.0/users/delta?$deltatoken=latest").await;
    let users_link = latest.body["@odata.deltaLink"].as_str().unwrap().to_string();
    let groups = env.get(&token, "/v1.0/groups/delta").await;
    let groups_link = groups.body["@odata.deltaLink"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    for link in [&users_link, &groups_link] {
        let expired = env.get(&token, link).await;
        assert_eq!((expired.status, expired.code()), (StatusCode::BAD_REQUEST, "syncStateNotFound"), "{link}");
        assert!(expired.body["error"]["message"].as_str().unwrap().contains("expired"), "{:?}", expired.body);
    }
    // A reset (the service dropped its state) is answered the same way.
    let fresh = env.get(&token, "/v1.0/users/delta?$deltatoken=latest").await;
    env.emu.invalidate_delta_tokens();
    let reset = env.get(&token, fresh.body["@odata.deltaLink"].as_str().unwrap()).await;
    assert_eq!((reset.status, reset.code()), (StatusCode::BAD_REQUEST, "syncStateNotFound"));
    assert!(reset.body["error"]["message"].as_str().unwrap().contains("dropped its delta state"));
    env.assert_contract_clean();
}
