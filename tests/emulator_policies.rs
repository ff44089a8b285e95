//! Policies over HTTP: cross-tenant access (default, partners with inherit semantics and 409s,
//! identitySynchronization), authorizationPolicy, and the beta b2bManagementPolicies domain list.

mod emulator_support;

use emulator_support::*;
use entente::core::settings::{AccessType, AllowInvitesFrom, DomainListMode, GUEST_ROLE_RESTRICTED};
use reqwest::StatusCode;
use serde_json::json;

const PARTNERS: &str = "/v1.0/policies/crossTenantAccessPolicy/partners";

#[tokio::test]
async fn partners_create_conflict_read_update_and_inherit() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let created = env.post(&token, PARTNERS, json!({ "tenantId": FABRIKAM })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    // every setting reads back null (inherits), consent as an object of nulls, as Graph answers
    for k in ["inboundTrust", "b2bCollaborationInbound", "b2bDirectConnectOutbound", "tenantRestrictions", "isServiceProvider"] {
        assert!(created.body[k].is_null(), "{k}: {}", created.body[k]);
    }
    assert_eq!(created.body["automaticUserConsentSettings"], json!({ "inboundAllowed": null, "outboundAllowed": null }));
    assert_eq!(created.body["isInMultiTenantOrganization"], false);

    let dup = env.post(&token, PARTNERS, json!({ "tenantId": FABRIKAM.to_uppercase() })).await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue"));
    assert_eq!(dup.body["error"]["details"][0]["code"], "ConflictingObjects");

    let path = format!("{PARTNERS}/{FABRIKAM}");
    let patch = json!({
        "inboundTrust": { "isMfaAccepted": true, "isCompliantDeviceAccepted": null, "isHybridAzureADJoinedDeviceAccepted": null },
        "b2bCollaborationInbound": { "usersAndGroups": { "accessType": "allowed", "targets": [{ "target": "AllUsers", "targetType": "user" }] },
                                     "applications": { "accessType": "allowed", "targets": [{ "target": "Office365", "targetType": "application" }] } },
        "automaticUserConsentSettings": { "inboundAllowed": true, "outboundAllowed": null },
        "isServiceProvider": true,
    });
    assert_eq!(env.patch(&token, &path, patch).await.status, StatusCode::NO_CONTENT);
    let read = env.get(&token, &path).await;
    assert_eq!(read.body["inboundTrust"]["isMfaAccepted"], true);
    assert!(read.body["inboundTrust"]["isCompliantDeviceAccepted"].is_null());
    assert_eq!(read.body["b2bCollaborationInbound"]["applications"]["targets"][0]["target"], "Office365");
    assert_eq!(read.body["isServiceProvider"], true);
    assert_eq!(read.body["automaticUserConsentSettings"]["inboundAllowed"], true);

    // R2 in the directory: what the partner sets wins, what it leaves null inherits the default
    let policy = env.dir.tenant_policy(CONTOSO).unwrap();
    let effective = policy.effective_for(FABRIKAM);
    assert!(effective.inbound_trust.is_mfa_accepted);
    assert!(!effective.inbound_trust.is_compliant_device_accepted);
    assert_eq!(effective.b2b_collaboration_inbound.applications.render(), "allowed: Office365");
    assert_eq!(effective.b2b_direct_connect_inbound, policy.default_access.b2b_direct_connect_inbound);

    // a property set to null goes back to inheriting; properties a PATCH leaves out are kept
    assert_eq!(env.patch(&token, &path, json!({ "inboundTrust": null })).await.status, StatusCode::NO_CONTENT);
    let read = env.get(&token, &path).await;
    assert!(read.body["inboundTrust"].is_null());
    assert_eq!(read.body["b2bCollaborationInbound"]["applications"]["accessType"], "allowed");

    let list = env.get(&token, PARTNERS).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    for bad in [
        json!({ "inboundTrust": { "isMfaAcepted": true } }),
        json!({ "b2bCollaborationInbound": { "usersAndGroups": { "accessType": "sometimes", "targets": [] } } }),
        json!({ "isInMultiTenantOrganization": true }),
        json!({ "tenantId": CONTOSO }),
    ] {
        let r = env.patch(&token, &path, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let missing = env.patch(&token, &format!("{PARTNERS}/{CONTOSO}"), json!({ "inboundTrust": null })).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // removing the partner returns it to the defaults
    assert_eq!(env.delete(&token, &path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&token, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.dir.tenant_policy(CONTOSO).unwrap().effective_for(FABRIKAM), policy.default_access);
    assert_eq!(env.delete(&token, &path).await.status, StatusCode::NOT_FOUND);

    // the invalid bodies above are in the contract report (the client sent them); everything else is clean
    let report = env.emu.contract_report();
    assert!(report.violations.iter().all(|v| v.direction == "request" && v.method == "PATCH"), "{:#?}", report.violations);
    assert!(report.violations.iter().any(|v| v.findings.iter().any(|f| f.contains("isMfaAcepted"))));
}

#[tokio::test]
async fn identity_synchronization_put_conflict_patch_and_delete() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let sync = format!("{PARTNERS}/{FABRIKAM}/identitySynchronization");
    let body = json!({ "displayName": "Fabrikam", "userSyncInbound": { "isSyncAllowed": true } });

    let no_partner = env.put(&token, &sync, body.clone()).await;
    assert_eq!(no_partner.status, StatusCode::NOT_FOUND);
    assert_eq!(env.post(&token, PARTNERS, json!({ "tenantId": FABRIKAM })).await.status, StatusCode::CREATED);

    let patch_missing = env.patch(&token, &sync, json!({ "userSyncInbound": { "isSyncAllowed": false } })).await;
    assert_eq!((patch_missing.status, patch_missing.code()), (StatusCode::NOT_FOUND, "Directory_ObjectNotFound"));

    assert_eq!(env.put(&token, &sync, body.clone()).await.status, StatusCode::NO_CONTENT);
    let dup = env.put(&token, &sync, body).await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue"));
    let read = env.get(&token, &sync).await;
    assert_eq!(
        read.body,
        json!({
            "@odata.context": read.body["@odata.context"],
            "tenantId": FABRIKAM, "displayName": "Fabrikam", "userSyncInbound": { "isSyncAllowed": true }
        })
    );
    let stored = env.dir.partners(CONTOSO).unwrap();
    assert!(stored[0].identity_synchronization.as_ref().unwrap().user_sync_inbound.is_sync_allowed);

    assert_eq!(
        env.patch(&token, &sync, json!({ "userSyncInbound": { "isSyncAllowed": false } })).await.status,
        StatusCode::NO_CONTENT
    );
    let read = env.get(&token, &sync).await;
    assert_eq!(read.body["userSyncInbound"]["isSyncAllowed"], false);
    assert_eq!(read.body["displayName"], "Fabrikam", "kept");

    assert_eq!(env.delete(&token, &sync).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&token, &sync).await.status, StatusCode::NOT_FOUND);
    assert!(env.dir.partners(CONTOSO).unwrap()[0].identity_synchronization.is_none());
    env.assert_contract_clean();
}

#[tokio::test]
async fn the_default_configuration_reads_like_graph_and_resets() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let path = "/v1.0/policies/crossTenantAccessPolicy/default";
    let d = env.get(&token, path).await;
    assert_eq!(d.body["isServiceDefault"], true);
    assert_eq!(d.body["b2bCollaborationInbound"]["usersAndGroups"]["accessType"], "allowed");
    assert_eq!(d.body["b2bDirectConnectOutbound"]["applications"]["targets"][0]["target"], "AllApplications");
    assert_eq!(d.body["tenantRestrictions"]["usersAndGroups"]["accessType"], "blocked");
    assert_eq!(d.body["automaticUserConsentSettings"], json!({ "inboundAllowed": false, "outboundAllowed": false }));
    assert_eq!(d.body["invitationRedemptionIdentityProviderConfiguration"]["fallbackIdentityProvider"], "defaultConfiguredIdp");

    let patch = json!({
        "inboundTrust": { "isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false },
        "b2bCollaborationInbound": { "applications": { "accessType": "allowed", "targets": [{ "target": "Office365", "targetType": "application" }] } },
    });
    assert_eq!(env.patch(&token, path, patch).await.status, StatusCode::NO_CONTENT);
    let d = env.get(&token, path).await;
    assert_eq!(d.body["isServiceDefault"], false);
    assert_eq!(d.body["inboundTrust"]["isMfaAccepted"], true);
    // the half not given is the system default again
    assert_eq!(d.body["b2bCollaborationInbound"]["usersAndGroups"]["targets"][0]["target"], "AllUsers");
    let access = env.dir.tenant_policy(CONTOSO).unwrap().default_access;
    assert_eq!(access.b2b_collaboration_inbound.applications.access_type, AccessType::Allowed);
    assert!(access.inbound_trust.is_mfa_accepted);

    let consent = env.patch(&token, path, json!({ "automaticUserConsentSettings": { "inboundAllowed": true } })).await;
    assert_eq!(consent.status, StatusCode::BAD_REQUEST, "read-only on the default");

    let reset = env.post(&token, &format!("{path}/resetToSystemDefault"), json!({})).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&token, path).await.body["isServiceDefault"], true);

    let policy = env.get(&token, "/v1.0/policies/crossTenantAccessPolicy").await;
    assert_eq!(policy.body["allowedCloudEndpoints"], json!([]));
    let r = env
        .patch(&token, "/v1.0/policies/crossTenantAccessPolicy", json!({ "allowedCloudEndpoints": ["microsoftonline.us"] }))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        env.get(&token, "/v1.0/policies/crossTenantAccessPolicy").await.body["allowedCloudEndpoints"][0],
        "microsoftonline.us"
    );
    let report = env.emu.contract_report();
    assert!(report.violations.iter().all(|v| v.direction == "request"), "{:#?}", report.violations);
}

#[tokio::test]
async fn the_authorization_policy() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let path = "/v1.0/policies/authorizationPolicy";
    let p = env.get(&token, path).await;
    assert_eq!(p.body["id"], "authorizationPolicy");
    assert_eq!(p.body["allowInvitesFrom"], "everyone");
    assert_eq!(p.body["guestUserRoleId"], "10dae51f-b6af-4016-8d66-8c2a99b929b3");
    assert_eq!(p.body["allowEmailVerifiedUsersToJoinOrganization"], true);
    assert!(p.body["defaultUserRolePermissions"].is_object());

    let r = env
        .patch(
            &token,
            path,
            json!({ "allowInvitesFrom": "adminsAndGuestInviters", "guestUserRoleId": GUEST_ROLE_RESTRICTED,
                    "allowEmailVerifiedUsersToJoinOrganization": false, "blockMsolPowerShell": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let collab = env.dir.tenant_policy(CONTOSO).unwrap().collaboration;
    assert_eq!(collab.allow_invites_from, AllowInvitesFrom::AdminsAndGuestInviters);
    assert_eq!(collab.guest_user_role_id, GUEST_ROLE_RESTRICTED);
    assert!(!collab.allow_email_verified_users_to_join_organization);
    assert_eq!(env.get(&token, path).await.body["blockMsolPowerShell"], true);

    for bad in [json!({ "allowInvitesFrom": "nobody" }), json!({ "guestUserRoleId": "62e90394-69f5-4237-9190-012177145e10" })] {
        assert_eq!(env.patch(&token, path, bad).await.status, StatusCode::BAD_REQUEST);
    }
    let report = env.emu.contract_report();
    assert_eq!(report.violations.len(), 1, "the bad enum is a request violation: {:#?}", report.violations);
}

#[tokio::test]
async fn the_b2b_management_policy_holds_the_domain_list() {
    let env = env().await;
    let token = env.token(&env.contoso).await;
    let path = "/beta/policies/b2bManagementPolicies";
    assert_eq!(env.get(&token, path).await.body["value"], json!([]));

    let def =
        |inner: &str| format!(r#"{{"B2BManagementPolicy":{{"Version":1,"InvitationsAllowedAndBlockedDomainsPolicy":{inner}}}}}"#);
    let created = env
        .post(&token, path, json!({ "definition": [def(r#"{"AllowedDomains":["fabrikam.com","Adatum.com"]}"#)], "displayName": "B2B", "isOrganizationDefault": true }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let list = env.dir.tenant_policy(CONTOSO).unwrap().collaboration.domain_list.unwrap();
    assert_eq!(list.mode, DomainListMode::AllowList);
    assert_eq!(list.domains.into_iter().collect::<Vec<_>>(), vec!["adatum.com", "fabrikam.com"]);
    assert_eq!(env.invite(&token, "x@litware.com").await.code(), "DomainBlocked");
    assert_eq!(env.invite(&token, "x@adatum.com").await.status, StatusCode::CREATED);

    let again = env.post(&token, path, json!({ "definition": [def(r#"{"BlockedDomains":["a.com"]}"#)] })).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "one policy per organization");
    let both = env
        .patch(
            &token,
            &format!("{path}/{id}"),
            json!({ "definition": [def(r#"{"AllowedDomains":["a.com"],"BlockedDomains":["b.com"]}"#)] }),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "allow list or block list, never both (R5)");

    let r = env
        .patch(
            &token,
            &format!("{path}/{id}"),
            json!({ "definition": [def(r#"{"AllowedDomains":[],"BlockedDomains":["litware.com"]}"#)] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let read = env.get(&token, &format!("{path}/{id}")).await;
    let doc: serde_json::Value = serde_json::from_str(read.body["definition"][0].as_str().unwrap()).unwrap();
    assert_eq!(doc["B2BManagementPolicy"]["Version"], 1, "other keys are kept");
    assert_eq!(doc["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"]["BlockedDomains"], json!(["litware.com"]));
    assert_eq!(read.body["displayName"], "B2B");

    // a change made outside the API shows in the definition
    env.dir
        .set_setting(CONTOSO, "externalCollaboration.domainList", json!({ "mode": "blockList", "domains": ["tailspin.com"] }))
        .unwrap();
    let read = env.get(&token, path).await;
    assert!(read.body["value"][0]["definition"][0].as_str().unwrap().contains("tailspin.com"));

    assert_eq!(env.delete(&token, &format!("{path}/{id}")).await.status, StatusCode::NO_CONTENT);
    assert!(env.dir.tenant_policy(CONTOSO).unwrap().collaboration.domain_list.is_none());
    assert_eq!(env.get(&token, path).await.body["value"], json!([]));

    let report = env.emu.contract_report();
    assert!(report.outside_subset.iter().any(|o| o.path == "/beta/policies/b2bManagementPolicies"));
    env.assert_contract_clean();
}
