//! The schema of the local directory file, as an ordered list of migrations.
//!
//! `PRAGMA user_version` holds how many migrations a file has seen; opening a file applies the rest,
//! each in its own transaction. Never edit a released migration: append a new one.
//! No table has a password or credential column: guests authenticate at their home tenant (R7).

use rusqlite::Connection;

use crate::directory::DirectoryError;

/// Migration `i` brings a file from `user_version = i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        initial_domain TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        cloud TEXT NOT NULL
    );
    CREATE TABLE tenant_domains (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        domain TEXT NOT NULL,
        PRIMARY KEY (tenant_id, domain)
    );
    CREATE INDEX tenant_domains_by_domain ON tenant_domains(domain);

    -- ResolvedCollaboration as JSON.
    CREATE TABLE collaboration (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        json TEXT NOT NULL
    );
    -- The default cross-tenant access configuration, fully spelled out (ResolvedAccess::to_settings).
    CREATE TABLE default_access (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        json TEXT NOT NULL
    );
    -- Partner configurations as written: absent settings inherit the default (R2).
    CREATE TABLE partners (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        partner_tenant_id TEXT NOT NULL,
        settings_json TEXT NOT NULL,
        identity_sync_json TEXT,
        is_in_mto INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, partner_tenant_id)
    );

    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_principal_name TEXT NOT NULL,
        mail TEXT NOT NULL,
        mail_lower TEXT NOT NULL,
        display_name TEXT,
        user_type TEXT NOT NULL,
        creation_type TEXT,
        external_user_state TEXT,
        external_user_state_change TEXT,
        account_enabled INTEGER NOT NULL DEFAULT 1,
        UNIQUE (tenant_id, user_principal_name)
    );
    -- One user per address and tenant: re-inviting returns the same user (R6).
    CREATE UNIQUE INDEX users_by_mail ON users(tenant_id, mail_lower);

    CREATE TABLE groups (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        UNIQUE (tenant_id, display_name)
    );
    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members(user_id);

    -- Redeem tickets: the secret part of an invitation's redeem URL.
    CREATE TABLE invitations (
        ticket TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        redirect_url TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX invitations_by_user ON invitations(user_id);

    -- entente's ownership records.
    CREATE TABLE managed (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        object_kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        external_id TEXT,
        deletion_policy TEXT NOT NULL,
        applied TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, key)
    );

    -- The change feed: one row per write, in order. No foreign key: it outlives what it mentions.
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        change TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX changes_by_tenant ON changes(tenant_id, seq);
    "#,
    // 2: the Graph emulator (`entente directory serve`): app registrations that may call it, their
    // credentials and granted application permissions, the key its tokens are signed with, and the
    // properties of Graph objects the directory itself does not model. Client secrets are stored as
    // salted SHA-256 hashes, never in clear; guests still have no credential of any kind (R7).
    r#"
    CREATE TABLE emulator_apps (
        client_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX emulator_apps_by_tenant ON emulator_apps(tenant_id);
    CREATE TABLE emulator_app_secrets (
        client_id TEXT NOT NULL REFERENCES emulator_apps(client_id) ON DELETE CASCADE,
        key_id TEXT NOT NULL,
        hint TEXT NOT NULL,
        salt TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        PRIMARY KEY (client_id, key_id)
    );
    CREATE TABLE emulator_app_permissions (
        client_id TEXT NOT NULL REFERENCES emulator_apps(client_id) ON DELETE CASCADE,
        permission TEXT NOT NULL,
        PRIMARY KEY (client_id, permission)
    );
    -- Workload identity federation: tokens of `issuer` with this subject and one of the audiences
    -- (a JSON array) may be exchanged for the app's tokens.
    CREATE TABLE emulator_federated_credentials (
        client_id TEXT NOT NULL REFERENCES emulator_apps(client_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        audiences TEXT NOT NULL,
        PRIMARY KEY (client_id, name)
    );
    -- RS256 signing keys (PKCS#8 PEM). Kept in the file so tokens outlive a restart of the emulator.
    CREATE TABLE emulator_signing_keys (
        kid TEXT PRIMARY KEY,
        private_key_pem TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    -- Graph properties the directory does not model (a partner's isServiceProvider, the default's
    -- invitationRedemptionIdentityProviderConfiguration, …), as JSON objects keyed by object.
    CREATE TABLE emulator_extras (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, key)
    );
    "#,
    // 3: cross-tenant sync and multi-tenant organizations (R13, R15).
    // Users get their profile attributes (givenName, jobTitle, … as one JSON object): a sync job reads
    // them in the source and writes them in the target. Until now only the emulator kept them, as
    // extras; they move here so every backend sees the same user.
    // A tenant owns or belongs to at most one multi-tenant organization; its owner lists the members,
    // each pending until it joins from its own side.
    r#"
    ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    UPDATE users SET attributes = COALESCE(
        (SELECT e.json FROM emulator_extras e WHERE e.tenant_id = users.tenant_id AND e.kind = 'user' AND e.key = lower(users.id)),
        '{}');
    DELETE FROM emulator_extras WHERE kind = 'user';

    CREATE TABLE mto (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        description TEXT,
        created_at TEXT NOT NULL
    );
    -- Members as the owner lists them (role owner|member); state pending|active|removed. A member
    -- becomes active when it joins (its own joinRequest names the owner).
    CREATE TABLE mto_members (
        owner_tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        member_tenant_id TEXT NOT NULL,
        display_name TEXT,
        role TEXT NOT NULL,
        state TEXT NOT NULL,
        added_at TEXT NOT NULL,
        joined_at TEXT,
        PRIMARY KEY (owner_tenant_id, member_tenant_id)
    );
    -- The member side: which owner's organization this tenant asked to join.
    CREATE TABLE mto_join_requests (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        added_by_tenant_id TEXT NOT NULL,
        requested_at TEXT NOT NULL
    );
    "#,
    // 4: the tenant profile: type (workforce|external), Microsoft cloud settings (R14: the other clouds B2B
    // collaboration is allowed with, a JSON array of cloud keywords), and an external tenant's branding and
    // self-service account settings (JSON). No row: a workforce tenant with no cloud settings.
    // The emulator kept `allowedCloudEndpoints` as an extra of the policy root until now; it moves here, so
    // the rules (R14) and every backend see the same setting.
    r#"
    CREATE TABLE tenant_profiles (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        tenant_type TEXT NOT NULL DEFAULT 'workforce',
        allowed_clouds TEXT NOT NULL DEFAULT '[]',
        branding TEXT,
        self_service TEXT
    );
    INSERT INTO tenant_profiles (tenant_id, allowed_clouds)
    SELECT e.tenant_id, COALESCE((
        SELECT json_group_array(cloud) FROM (
            SELECT DISTINCT CASE lower(trim(j.value))
                WHEN 'microsoftonline.com' THEN 'global'
                WHEN 'microsoftonline.us' THEN 'usGovernment'
                WHEN 'partner.microsoftonline.cn' THEN 'china' END AS cloud
            FROM json_each(e.json, '$.allowedCloudEndpoints') j)
        WHERE cloud IS NOT NULL), '[]')
    FROM emulator_extras e
    WHERE e.kind = 'crossTenantAccessPolicy' AND e.key = 'policy' AND json_type(e.json, '$.allowedCloudEndpoints') = 'array';
    UPDATE emulator_extras SET json = json_remove(json, '$.allowedCloudEndpoints')
    WHERE kind = 'crossTenantAccessPolicy' AND key = 'policy';
    "#,
    // 5: entitlement management (R16): connected organizations (identity sources as JSON), access packages
    // (groups and applications as JSON arrays), their assignment policies (connected organizations by id,
    // approvers as JSON), assignments (who holds which package, until when), the tenant's external-user
    // lifecycle settings, and external users blocked by that lifecycle (when they are due for deletion).
    r#"
    CREATE TABLE ep_connected_organizations (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        name_lower TEXT NOT NULL,
        description TEXT,
        state TEXT NOT NULL,
        identity_sources TEXT NOT NULL,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        UNIQUE (tenant_id, name_lower)
    );
    CREATE TABLE ep_access_packages (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        name_lower TEXT NOT NULL,
        description TEXT,
        is_hidden INTEGER NOT NULL DEFAULT 0,
        groups_json TEXT NOT NULL DEFAULT '[]',
        applications_json TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        UNIQUE (tenant_id, name_lower)
    );
    CREATE TABLE ep_policies (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        package_id TEXT NOT NULL REFERENCES ep_access_packages(id) ON DELETE CASCADE,
        display_name TEXT NOT NULL,
        allowed_target_scope TEXT NOT NULL,
        connected_organization_ids TEXT NOT NULL DEFAULT '[]',
        approval_required INTEGER NOT NULL DEFAULT 0,
        approvers_json TEXT NOT NULL DEFAULT '[]',
        expiration_seconds INTEGER,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL
    );
    CREATE INDEX ep_policies_by_package ON ep_policies(package_id);
    CREATE TABLE ep_assignments (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        package_id TEXT NOT NULL,
        package_name TEXT NOT NULL,
        policy_name TEXT NOT NULL,
        user_mail_lower TEXT NOT NULL,
        user_id TEXT,
        state TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        delivered_at TEXT,
        expires_at TEXT,
        ended_at TEXT
    );
    CREATE INDEX ep_assignments_by_tenant ON ep_assignments(tenant_id, state);
    CREATE TABLE ep_settings (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        lifecycle_action TEXT NOT NULL DEFAULT 'none',
        delete_after_seconds INTEGER NOT NULL DEFAULT 2592000
    );
    CREATE TABLE ep_blocked_users (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        blocked_at TEXT NOT NULL,
        delete_at TEXT,
        PRIMARY KEY (tenant_id, user_id)
    );
    "#,
    // 6: identity providers and sign-up user flows (R17): no secret, only salted hashes of them; a flow's
    // providers by key (the built-in email with password has no provider row).
    r#"
    CREATE TABLE identity_providers (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        key TEXT NOT NULL,
        provider_type TEXT NOT NULL,
        display_name TEXT NOT NULL,
        client_id TEXT,
        -- A salted, truncated SHA-256 of the client secret (never the secret).
        client_secret_hash TEXT,
        saml_json TEXT,
        state TEXT NOT NULL DEFAULT 'enabled',
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, key)
    );
    CREATE TABLE sign_up_flows (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        user_attributes TEXT NOT NULL DEFAULT '[]',
        applications TEXT NOT NULL DEFAULT '[]',
        -- ApiConnectorConfig as JSON: secret hashes only.
        api_connectors TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (tenant_id, id)
    );
    CREATE TABLE sign_up_flow_providers (
        tenant_id TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        provider_key TEXT NOT NULL,
        PRIMARY KEY (tenant_id, flow_id, provider_key),
        FOREIGN KEY (tenant_id, flow_id) REFERENCES sign_up_flows(tenant_id, id) ON DELETE CASCADE
    );
    "#,
    // 7: conditional access policies for external users (R18): the policy as canonical JSON
    // (`core::conditional_access::ConditionalAccessPolicyConfig`), its state and lowercase name for lookups.
    r#"
    CREATE TABLE conditional_access_policies (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        name_lower TEXT NOT NULL,
        state TEXT NOT NULL,
        policy_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    );
    CREATE INDEX conditional_access_policies_name ON conditional_access_policies (tenant_id, name_lower);
    "#,
    // 8: the recycle bin. A deleted user moves here whole (its row, its group memberships as a JSON array of
    // group ids) instead of being erased, restorable as the same user for 30 days, as Graph's deleted items.
    // A separate table rather than a flag, so no query of `users` can see a deleted user by mistake.
    r#"
    CREATE TABLE deleted_users (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_principal_name TEXT NOT NULL,
        mail TEXT NOT NULL,
        mail_lower TEXT NOT NULL,
        display_name TEXT,
        user_type TEXT NOT NULL,
        creation_type TEXT,
        external_user_state TEXT,
        external_user_state_change TEXT,
        account_enabled INTEGER NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        group_ids TEXT NOT NULL DEFAULT '[]',
        deleted_at TEXT NOT NULL
    );
    CREATE INDEX deleted_users_by_tenant ON deleted_users(tenant_id, deleted_at);
    "#,
    // 9: the membership change log, so group membership can be read as deltas (Graph's `/groups/delta`
    // with `members@delta`). Triggers write it in the transaction of every membership change, whatever
    // made it (an operation, a cascade of a deleted user or group, a restore). `horizon` is the last
    // sequence number purged (entries older than 7 days, like Graph's delta tokens): a cursor before it
    // can no longer be answered.
    r#"
    CREATE TABLE group_member_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        added INTEGER NOT NULL,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE INDEX group_member_log_by_group ON group_member_log(group_id, seq);
    CREATE INDEX group_member_log_by_time ON group_member_log(at);
    CREATE TABLE group_member_log_horizon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL
    );
    INSERT INTO group_member_log_horizon (id, seq) VALUES (1, 0);
    CREATE TRIGGER group_member_added AFTER INSERT ON group_members BEGIN
        INSERT INTO group_member_log (group_id, user_id, added) VALUES (NEW.group_id, NEW.user_id, 1);
    END;
    CREATE TRIGGER group_member_removed AFTER DELETE ON group_members BEGIN
        INSERT INTO group_member_log (group_id, user_id, added) VALUES (OLD.group_id, OLD.user_id, 0);
    END;
    "#,
    // 10: what must never be lost. The redeem URL an invitation returns only once, kept with the
    // ownership record written in the same transaction; and tombstones, the records of objects entente
    // deleted (prune, deletionPolicy: Delete), kept for the recycle-bin period so a guest that comes back
    // into the manifests is restored rather than invited again.
    r#"
    ALTER TABLE managed ADD COLUMN redeem_url TEXT;
    CREATE TABLE tombstones (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        record_json TEXT NOT NULL,
        deleted_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, key)
    );
    "#,
];

/// Applies the migrations the file has not seen yet (one exclusive transaction: see `state_file`).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), DirectoryError> {
    crate::directory::state_file::migrate(conn, "directory file", MIGRATIONS)
}
