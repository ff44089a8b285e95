//! Graph resources over HTTP: invitations (R6 and refusals), users (paging, filter, select, count,
//! PATCH, DELETE), delta with removals and resync, groups and memberships, the organization. Every
//! test runs with strict contract checking and ends with no violation.

mod emulator_support;

use emulator_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn an_invitation_creates_a_guest_and_reinviting_returns_the_same_user() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let first = env.invite(&token, "Alice@Adatum.com").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["status"], "PendingAcceptance");
    assert_eq!(first.body["invitedUserType"], "Guest");
    assert_eq!(first.body["invitedUserEmailAddress"], "Alice@Adatum.com");
    let id = first.body["invitedUser"]["id"].as_str().unwrap().to_string();
    let url1 = first.body["inviteRedeemUrl"].as_str().unwrap().to_string();

    let user = env
        .get(&token, &format!("/v1.0/users/{id}?$select=id,userPrincipalName,userType,creationType,externalUserState,mail"))
        .await;
    assert_eq!(user.body["userPrincipalName"], "Alice_Adatum.com#EXT#@contoso.onmicrosoft.com");
    assert_eq!(user.body["userType"], "Guest");
    assert_eq!(user.body["creationType"], "Invitation");
    assert_eq!(user.body["externalUserState"], "PendingAcceptance");
    // by user principal name too (with # encoded)
    let by_upn = env.get(&token, "/v1.0/users/alice_adatum.com%23EXT%23@contoso.onmicrosoft.com?$select=id").await;
    assert_eq!(by_upn.body["id"], id.as_str());

    let again = env.invite(&token, "alice@adatum.com").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["invitedUser"]["id"], id.as_str(), "same user");
    assert_ne!(again.body["inviteRedeemUrl"], url1.as_str(), "fresh redeem URL");
    let guests = env.get(&token, "/v1.0/users?$filter=mail eq 'alice@adatum.com'&$select=id").await;
    assert_eq!(guests.body["value"].as_array().unwrap().len(), 1, "never a duplicate");

    // The redeem URL is a link into the emulator (Graph's are web links, not a private scheme);
    // opening it is the guest accepting.
    let link = again.body["inviteRedeemUrl"].as_str().unwrap().to_string();
    assert!(link.starts_with(&format!("{}/redeem?tenant=", env.emu.url())), "{link}");
    let forged = link.replace("ticket=", "ticket=x");
    assert_eq!(env.http.get(&forged).send().await.unwrap().status(), StatusCode::BAD_REQUEST, "an unknown ticket");
    let opened = env.http.get(&link).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert!(opened.text().await.unwrap().to_lowercase().contains("invitation accepted: alice@adatum.com"));
    // after redemption a new invitation reports Completed; resetRedemption sends the guest back
    assert_eq!(env.invite(&token, "alice@adatum.com").await.body["status"], "Completed");
    let reset = env
        .post(
            &token,
            "/v1.0/invitations",
            json!({ "invitedUserEmailAddress": "alice@adatum.com", "inviteRedirectUrl": "https://x", "resetRedemption": true, "invitedUser": { "id": id } }),
        )
        .await;
    assert_eq!(reset.status, StatusCode::CREATED);
    assert_eq!(reset.body["status"], "PendingAcceptance");
    assert_eq!(reset.body["invitedUser"]["id"], id.as_str());

    let missing = env.post(&token, "/v1.0/invitations", json!({ "invitedUserEmailAddress": "x@y.com" })).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::BAD_REQUEST, "Request_BadRequest"));
    env.assert_contract_clean();
}

fn refusal(r: &Resp, reason: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.code(), reason);
    assert_eq!(r.body["error"]["details"][0]["code"], reason);
    assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    assert!(r.body["error"]["innerError"]["request-id"].is_string());
    let date = r.body["error"]["innerError"]["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "Graph's date has no offset: {date}");
}

#[tokio::test]
async fn refused_invitations_carry_the_reason_in_a_graph_error() {
    let env = env().await;
    let token = env.token(&env.contoso).await;

    // R5: the domain list (beta B2B management policy)
    let def = r#"{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"BlockedDomains":["litware.com"]}}}"#;
    let p = env
        .post(
            &token,
            "/beta/policies/b2bManagementPolicies",
            json!({ "definition": [def], "displayName": "B2B", "isOrganizationDefault": true }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.body);
    let blocked = env.invite(&token, "eve@LITWARE.com").await;
    refusal(&blocked, "DomainBlocked");
    assert!(blocked.body["error"]["message"].as_str().unwrap().contains("litware.com"));

    // R3/R9: cross-tenant access settings of the resource tenant
    let r = env
        .patch(
            &token,
            "/v1.0/policies/crossTenantAccessPolicy/default",
            json!({ "b2bCollaborationInbound": { "usersAndGroups": { "accessType": "blocked", "targets": [{ "target": "AllUsers", "targetType": "user" }] } } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    refusal(&env.invite(&token, "bob@fabrikam.com").await, "CrossTenantAccessBlocked");

    // R4: nobody may invite
    let r = env.patch(&token, "/v1.0/policies/authorizationPolicy", json!({ "allowInvitesFrom": "none" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    refusal(&env.invite(&token, "carol@adatum.com").await, "InvitationsDisabled");

    assert!(env.dir.users(CONTOSO).unwrap().is_empty(), "a refusal writes nothing");
    env.assert_contract_clean();
}

#[tokio::test]
async fn users_page_filter_select_and_count() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    for i in 0..23 {
        env.dir.add_member(CONTOSO, &format!("member{i:02}@contoso.com"), Some(&format!("Member {i}"))).unwrap();
    }
    for who in ["a@adatum.com", "b@adatum.com", "c@fabrikam.com"] {
        assert_eq!(env.invite(&token, who).await.status, StatusCode::CREATED);
    }

    // default properties: no userType unless selected
    let page = env.get(&token, "/v1.0/users").await;
    let first = &page.body["value"][0];
    assert!(first.get("userPrincipalName").is_some() && first.get("id").is_some());
    assert!(first.get("userType").is_none(), "userType needs $select");

    // paging: $top 10 over 26 users → 3 pages, each id once, in order
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some(env.url("/v1.0/users?$top=10&$select=id,displayName"));
    let mut pages = 0;
    while let Some(url) = next {
        let r = env.call(Method::GET, Some(&token), &url, None).await;
        assert_eq!(r.status, StatusCode::OK);
        pages += 1;
        for u in r.body["value"].as_array().unwrap() {
            assert_eq!(u.as_object().unwrap().len(), 2, "only the selected properties: {u}");
            seen.push(u["id"].as_str().unwrap().to_string());
        }
        next = r.body["@odata.nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.contains("$skiptoken="), "{n}");
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 26);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 26, "no user twice");

    let guests = env.get(&token, "/v1.0/users?$filter=userType eq 'Guest'&$select=id,mail,userType").await;
    let mails: Vec<&str> = guests.body["value"].as_array().unwrap().iter().map(|u| u["mail"].as_str().unwrap()).collect();
    assert_eq!(mails.len(), 3);
    assert!(guests.body["value"].as_array().unwrap().iter().all(|u| u["userType"] == "Guest"));
    let one = env.get(&token, "/v1.0/users?$filter=mail eq 'C@FABRIKAM.COM'&$select=mail").await;
    assert_eq!(one.body["value"][0]["mail"], "c@fabrikam.com");

    let counted = env
        .call_with(
            Method::GET,
            Some(&token),
            "/v1.0/users?$count=true&$filter=userType eq 'Member'&$select=id",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(counted.body["@odata.count"], 23);
    let n = env.call_with(Method::GET, Some(&token), "/v1.0/users/$count", None, &[("ConsistencyLevel", "eventual")]).await;
    assert_eq!(n.text, "26");

    for (path, code) in [
        ("/v1.0/users?$top=1000", "Request_BadRequest"),
        ("/v1.0/users?$select=nonsense", "Request_BadRequest"),
        ("/v1.0/users?$count=true", "Request_BadRequest"),
        ("/v1.0/users?$filter=userType ne 'Guest'", "Request_UnsupportedQuery"),
        ("/v1.0/users?$filter=favouriteColour eq 'blue'", "Request_UnsupportedQuery"),
        ("/v1.0/users?$skip=5", "Request_UnsupportedQuery"),
    ] {
        let r = env.get(&token, path).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, code), "{path}: {:?}", r.body);
    }
    env.assert_contract_clean();
}

#[tokio::test]
async fn users_patch_and_delete() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let id = env.invite(&token, "dave@adatum.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1.0/users/{id}");
    let r = env
        .patch(
            &token,
            &path,
            json!({ "displayName": "Dave", "userType": "Member", "accountEnabled": false, "jobTitle": "Auditor" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let u = env.get(&token, &format!("{path}?$select=displayName,userType,accountEnabled,jobTitle")).await;
    assert_eq!(u.body["displayName"], "Dave");
    assert_eq!(u.body["userType"], "Member");
    assert_eq!(u.body["accountEnabled"], false);
    assert_eq!(u.body["jobTitle"], "Auditor");
    for bad in [json!({ "userType": "Visitor" }), json!({ "mail": "not an address" }), json!({ "shoeSize": 42 })] {
        assert_eq!(env.patch(&token, &path, bad).await.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(env.delete(&token, &path).await.status, StatusCode::NO_CONTENT);
    let gone = env.get(&token, &path).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "Request_ResourceNotFound"));
    assert_eq!(env.delete(&token, &path).await.status, StatusCode::NOT_FOUND);
    // the client's one schema violation: a property users do not have
    let report = env.emu.contract_report();
    assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
    assert!(report.violations[0].findings[0].contains("shoeSize"));
}

/// Follows a delta round to its deltaLink; the items and the deltaLink.
async fn round(env: &Env, token: &str, start: &str, page_size: usize) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = start.to_string();
    loop {
        let prefer = format!("odata.maxpagesize={page_size}");
        let r = env.call_with(Method::GET, Some(token), &url, None, &[("Prefer", &prefer)]).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        items.extend(r.body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = r.body["@odata.nextLink"].as_str() {
            url = next.to_string();
            continue;
        }
        return (items, r.body["@odata.deltaLink"].as_str().expect("a round ends with a deltaLink").to_string());
    }
}

#[tokio::test]
async fn delta_rounds_report_changes_and_removals() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let mut ids = Vec::new();
    for who in ["a@adatum.com", "b@adatum.com", "c@adatum.com", "d@adatum.com", "e@adatum.com", "f@adatum.com", "g@adatum.com"] {
        ids.push(env.invite(&token, who).await.body["invitedUser"]["id"].as_str().unwrap().to_string());
    }
    env.dir.add_member(FABRIKAM, "other@fabrikam.com", None).unwrap();

    let (items, delta) = round(&env, &token, &env.url("/v1.0/users/delta()?$select=id,mail,userType,displayName"), 3).await;
    assert_eq!(items.len(), 7, "the first round holds every user of the tenant (and only of it)");
    assert!(items.iter().all(|u| u["userType"] == "Guest" && u.get("businessPhones").is_none()));
    assert!(delta.contains("$deltatoken="));

    let (nothing, delta) = round(&env, &token, &delta, 3).await;
    assert!(nothing.is_empty(), "no change, nothing: {nothing:?}");

    // a change, a deletion, an invitation, and a change in another tenant
    assert_eq!(
        env.patch(&token, &format!("/v1.0/users/{}", ids[0]), json!({ "displayName": "A" })).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.delete(&token, &format!("/v1.0/users/{}", ids[1])).await.status, StatusCode::NO_CONTENT);
    let h = env.invite(&token, "h@adatum.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    env.dir.add_member(FABRIKAM, "another@fabrikam.com", None).unwrap();
    let (changes, delta) = round(&env, &token, &delta, 2).await;
    assert_eq!(changes.len(), 3, "{changes:#?}");
    let by_id = |id: &str| changes.iter().find(|c| c["id"] == id).cloned().unwrap();
    assert_eq!(by_id(&ids[0])["displayName"], "A");
    assert_eq!(by_id(&ids[0])["mail"], "a@adatum.com", "the selected properties, whole");
    assert_eq!(by_id(&ids[1])["@removed"]["reason"], "deleted");
    assert_eq!(by_id(&h)["mail"], "h@adatum.com");

    // the unversioned spelling, and $deltatoken=latest
    let latest = env.get(&token, "/v1.0/users/delta?$deltatoken=latest").await;
    assert!(latest.body["value"].as_array().unwrap().is_empty());
    assert!(latest.body["@odata.deltaLink"].is_string());

    // a reset: 400 syncStateNotFound (an OData error), then a new initial round
    env.emu.invalidate_delta_tokens();
    let gone = env.call(Method::GET, Some(&token), &delta, None).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::BAD_REQUEST, "syncStateNotFound"), "{:?}", gone.body);
    let (again, _) = round(&env, &token, &env.url("/v1.0/users/delta()?$select=id,mail,userType,displayName"), 50).await;
    assert_eq!(again.len(), 7);
    env.assert_contract_clean();
}

#[tokio::test]
async fn groups_and_memberships() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let body = json!({ "displayName": "Fabrikam partners", "mailEnabled": false, "mailNickname": "fabrikampartners", "securityEnabled": true });
    let created = env.post(&token, "/v1.0/groups", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let gid = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["mailNickname"], "fabrikampartners");
    // Graph allows two groups with one display name (the local directory keeps the second under another name).
    let twin = env.post(&token, "/v1.0/groups", body).await;
    assert_eq!(twin.status, StatusCode::CREATED, "{:?}", twin.body);
    assert_eq!(twin.body["displayName"], "Fabrikam partners");
    let twin_id = twin.body["id"].as_str().unwrap().to_string();
    assert_ne!(twin_id, gid);
    let listed = env.get(&token, "/v1.0/groups?$filter=displayName eq 'Fabrikam partners'&$select=id,displayName").await;
    let mut ids: Vec<&str> = listed.body["value"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![gid.as_str(), twin_id.as_str()];
    want.sort();
    assert_eq!(ids, want, "{:?}", listed.body);
    assert_eq!(env.delete(&token, &format!("/v1.0/groups/{twin_id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&token, &format!("/v1.0/groups/{twin_id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.delete(&token, &format!("/v1.0/groups/{twin_id}")).await.status, StatusCode::NOT_FOUND);

    let uid = env.invite(&token, "bob@fabrikam.com").await.body["invitedUser"]["id"].as_str().unwrap().to_string();
    let reference = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}") });
    let add = env.post(&token, &format!("/v1.0/groups/{gid}/members/$ref"), reference.clone()).await;
    assert_eq!(add.status, StatusCode::NO_CONTENT, "{:?}", add.body);
    assert_eq!(env.post(&token, &format!("/v1.0/groups/{gid}/members/$ref"), reference).await.status, StatusCode::BAD_REQUEST);
    let members = env.get(&token, &format!("/v1.0/groups/{gid}/members?$select=id")).await;
    assert_eq!(members.body["value"][0]["id"], uid.as_str());
    assert_eq!(members.body["value"][0]["@odata.type"], "#microsoft.graph.user");
    let of = env.get(&token, &format!("/v1.0/users/{uid}/memberOf")).await;
    assert_eq!(of.body["value"][0]["displayName"], "Fabrikam partners");
    assert_eq!(env.delete(&token, &format!("/v1.0/groups/{gid}/members/{uid}/$ref")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.delete(&token, &format!("/v1.0/groups/{gid}/members/{uid}/$ref")).await.status, StatusCode::NOT_FOUND);
    assert!(env.dir.user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().unwrap().group_ids.is_empty());

    // groups are checked against entente's contract fragment (contract/groups.yaml), found clean
    let report = env.emu.contract_report();
    assert!(!report.outside_subset.iter().any(|o| o.path.starts_with("/v1.0/groups")), "{:?}", report.outside_subset);
    env.assert_contract_clean();
}

#[tokio::test]
async fn organization_unknown_paths_and_methods() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let org = env.get(&token, "/v1.0/organization").await;
    assert_eq!(org.body["value"][0]["id"], CONTOSO);
    let domains: Vec<&str> =
        org.body["value"][0]["verifiedDomains"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(domains, vec!["contoso.onmicrosoft.com", "contoso.com"]);

    let unknown = env.get(&token, "/v1.0/me/drive").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["error"]["code"].is_string() && unknown.body["error"]["innerError"]["request-id"].is_string());
    let wrong_method = env.call(Method::GET, Some(&token), "/v1.0/invitations", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("Allow"), Some("POST"));
    assert!(wrong_method.body["error"]["message"].is_string());
    let bad_json = env
        .http
        .post(env.url("/v1.0/invitations"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    env.assert_contract_clean();
}

#[tokio::test]
async fn a_body_nested_past_any_graph_payload_is_a_400_not_an_abort() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    for depth in [200, 10_000, 100_000] {
        let body = format!("{{\"invitedUserEmailAddress\": {}1{}}}", "[".repeat(depth), "]".repeat(depth));
        let resp = env
            .http
            .post(env.url("/v1.0/invitations"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "depth {depth}");
    }
    // Still serving.
    let ok = env.invite(&token, "after@adatum.com").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
}
