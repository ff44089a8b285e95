//! The emulator keeps a user's profile strings where the directory does (`users.attributes`), so a
//! change over HTTP is what cross-tenant sync reads through the `Directory` contract, and the other
//! way round. `PATCH /users/{id}` may change `mail` (the user principal name stays).

mod emulator_support;

use std::collections::BTreeMap;

use emulator_support::*;
use entente::directory::Directory;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Follows a delta round to its deltaLink; the items and the deltaLink.
async fn delta_round(env: &Env, token: &str, start: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = start.to_string();
    loop {
        let page = env.get(token, &url).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        items.extend(page.body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            return (items, page.body["@odata.deltaLink"].as_str().unwrap().to_string());
        }
    }
}

#[tokio::test]
async fn a_patched_job_title_is_what_the_directory_reads() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let id = env.invite(&token, "dave@adatum.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    let cursor = env.dir.user_changes(CONTOSO, None).await.unwrap().cursor;
    let (_, delta_link) = delta_round(&env, &token, "/v1.0/users/delta?$select=id,jobTitle,department").await;

    let path = format!("/v1.0/users/{id}");
    let r = env.patch(&token, &path, json!({ "jobTitle": "Auditor", "department": "Finance" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    let user = env.dir.users_by_id(CONTOSO, std::slice::from_ref(&id)).await.unwrap().remove(0);
    assert_eq!(user.get("jobTitle"), Some("Auditor"));
    assert_eq!(user.get("department"), Some("Finance"));
    let changes = env.dir.user_changes(CONTOSO, Some(&cursor)).await.unwrap();
    assert!(!changes.full);
    assert_eq!(changes.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec![id.as_str()]);

    // /users/delta sees it too.
    let (items, delta_link) = delta_round(&env, &token, &delta_link).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["jobTitle"], "Auditor");

    // null clears; the directory no longer has it.
    let r = env.patch(&token, &path, json!({ "jobTitle": null })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let user = env.dir.users_by_id(CONTOSO, std::slice::from_ref(&id)).await.unwrap().remove(0);
    assert_eq!(user.get("jobTitle"), None);
    let u = env.get(&token, &format!("{path}?$select=jobTitle,department")).await;
    assert_eq!(u.body["jobTitle"], Value::Null);
    assert_eq!(u.body["department"], "Finance");

    // The same values again change nothing: delta stays empty.
    let r = env.patch(&token, &path, json!({ "jobTitle": null, "department": "Finance" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (_, delta_link) = delta_round(&env, &token, &delta_link).await;
    let (items, _) = delta_round(&env, &token, &delta_link).await;
    assert!(items.is_empty(), "{items:?}");
    env.assert_contract_clean();
}

#[tokio::test]
async fn attributes_set_in_the_directory_show_over_http() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let id = env.dir.add_member(CONTOSO, "erin@contoso.com", Some("Erin")).unwrap();
    let attributes =
        BTreeMap::from([("givenName".to_string(), Some("Erin".to_string())), ("surname".into(), Some("Hale".into()))]);
    env.dir.set_user_attributes(CONTOSO, &id, &attributes).unwrap();
    let u = env.get(&token, &format!("/v1.0/users/{id}")).await;
    assert_eq!(u.status, StatusCode::OK);
    assert_eq!(u.body["givenName"], "Erin");
    assert_eq!(u.body["surname"], "Hale");
    assert_eq!(u.body["jobTitle"], Value::Null);
    let list = env.get(&token, "/v1.0/users?$filter=surname eq 'Hale'").await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1, "{:?}", list.body);
    env.assert_contract_clean();
}

#[tokio::test]
async fn a_patch_may_change_mail_but_not_the_user_principal_name() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let id = env.invite(&token, "dave@adatum.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    env.invite(&token, "frank@adatum.com").await;
    let path = format!("/v1.0/users/{id}");
    let r = env.patch(&token, &path, json!({ "mail": "david@adatum.com" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let u = env.get(&token, &format!("{path}?$select=mail,userPrincipalName")).await;
    assert_eq!(u.body["mail"], "david@adatum.com");
    assert_eq!(u.body["userPrincipalName"], "dave_adatum.com#EXT#@contoso.onmicrosoft.com");
    assert!(env.dir.user_by_mail(CONTOSO, "david@adatum.com").unwrap().is_some());

    let taken = env.patch(&token, &path, json!({ "mail": "frank@adatum.com" })).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    for bad in [json!({ "mail": "david" }), json!({ "mail": null }), json!({ "userPrincipalName": "x@contoso.com" })] {
        assert_eq!(env.patch(&token, &path, bad).await.status, StatusCode::BAD_REQUEST);
    }
    env.assert_contract_clean();
}
