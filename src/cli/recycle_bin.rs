//! `entente directory deleted T` and `entente directory restore T EMAIL`: the local directory's recycle bin,
//! as an admin sees it in the portal's deleted users (30 days, then gone for good).

use std::io::Write;

use super::directory::resolve_tenant;
use crate::directory::local::LocalDirectory;

/// Lists the tenant's deleted users, newest first: when, mail, id, type, redemption state, groups.
pub(super) fn list(dir: &LocalDirectory, tenant: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = resolve_tenant(dir, tenant)?;
    let deleted = dir.deleted_users(&t.tenant_id)?;
    if deleted.is_empty() {
        writeln!(out, "the recycle bin of {} is empty", t.initial_domain)?;
        return Ok(());
    }
    let groups: std::collections::HashMap<String, String> =
        dir.groups(&t.tenant_id)?.into_iter().map(|g| (g.id, g.display_name)).collect();
    writeln!(out, "deleted users of {} (restorable for 30 days after deletion):", t.initial_domain)?;
    for d in &deleted {
        let g = &d.guest;
        let names: Vec<&str> = g.group_ids.iter().map(|id| groups.get(id).map_or(id.as_str(), String::as_str)).collect();
        let state = g.external_user_state.map_or("-", |s| s.as_str());
        writeln!(
            out,
            "  {}  {}  {}  {} {}  groups: {}",
            d.deleted_date_time,
            g.mail,
            g.id,
            g.user_type.as_str(),
            state,
            if names.is_empty() { "-".to_string() } else { names.join(", ") }
        )?;
    }
    Ok(())
}

/// Restores the most recently deleted user with this mail (or this id) as the same user.
pub(super) fn restore(dir: &LocalDirectory, tenant: &str, email: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = resolve_tenant(dir, tenant)?;
    let deleted = dir.deleted_users(&t.tenant_id)?;
    let Some(d) =
        deleted.iter().find(|d| crate::core::validate::same_address(&d.guest.mail, email.trim()) || d.guest.id == email.trim())
    else {
        anyhow::bail!(
            "the recycle bin of {} holds no user {email} (`entente directory deleted {tenant}` lists it)",
            t.initial_domain
        );
    };
    dir.restore_user(&t.tenant_id, &d.guest.id)?;
    writeln!(
        out,
        "restored {} ({}) in {}: same account, groups and redemption state, no invitation sent",
        d.guest.mail, d.guest.id, t.initial_domain
    )?;
    Ok(())
}
