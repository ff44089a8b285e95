//! `entente directory`: look into the embedded local directory, and act on it as the outside world
//! would — a guest redeeming an invitation, an admin changing a setting or deleting a guest in the
//! portal — for example to show drift. Tenant arguments accept a tenant id or any of its domains.

use std::io::{self, Write};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use crate::core::model::{GuestUser, TenantIdentity, UserType};
use crate::directory::local::LocalDirectory;

/// How a subcommand prints its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// List the tenants in the directory file.
    Tenants {
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Show a tenant's external collaboration settings and default cross-tenant access.
    Show {
        /// Tenant id or domain.
        tenant: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// List a tenant's guests.
    Guests {
        /// Tenant id or domain.
        tenant: String,
        /// Include the tenant's own members.
        #[arg(long)]
        all: bool,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Print a tenant's partner configurations as stored (JSON; null settings inherit the default).
    Policies {
        /// Tenant id or domain.
        tenant: String,
        /// Print the settings in force for each partner instead (partner over default, R2).
        #[arg(long)]
        effective: bool,
    },
    /// The invited person at EMAIL redeems their invitation to TENANT.
    Redeem {
        /// Tenant id or domain.
        tenant: String,
        email: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Redeem the invitation behind a redeem URL (entente://redeem?tenant=…&ticket=…).
    RedeemUrl {
        url: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Send a guest back to PendingAcceptance with a fresh redeem URL (id and groups are kept).
    ResetRedemption {
        /// Tenant id or domain.
        tenant: String,
        email: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Change a setting outside entente, as an admin would in the portal (the next plan shows drift).
    ///
    /// PATH is externalCollaboration.<field>, crossTenantAccessDefault.<path> or
    /// partner.<partnerTenantId>.<path>, e.g. externalCollaboration.allowInvitesFrom or
    /// crossTenantAccessDefault.inboundTrust.isMfaAccepted. VALUE is JSON, or else a plain string.
    Set {
        /// Tenant id or domain.
        tenant: String,
        path: String,
        value: String,
    },
    /// Add a member to a tenant: someone another tenant can invite.
    AddMember {
        /// Tenant id or domain.
        tenant: String,
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Delete a guest outside entente.
    DeleteGuest {
        /// Tenant id or domain.
        tenant: String,
        email: String,
    },
}

pub fn run(dir: &LocalDirectory, cmd: DirectoryCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        DirectoryCommand::Tenants { output } => tenants(dir, output, out),
        DirectoryCommand::Show { tenant, output } => show(dir, &tenant, output, out),
        DirectoryCommand::Guests { tenant, all, output } => guests(dir, &tenant, all, output, out),
        DirectoryCommand::Policies { tenant, effective } => {
            let t = resolve_tenant(dir, &tenant)?;
            if effective {
                let policy = dir.tenant_policy(&t.tenant_id)?;
                let effective: serde_json::Map<String, Value> = policy
                    .partners
                    .keys()
                    .map(|id| Ok((id.clone(), serde_json::to_value(policy.effective_for(id))?)))
                    .collect::<anyhow::Result<_>>()?;
                write_json(out, &effective)
            } else {
                write_json(out, &dir.partners(&t.tenant_id)?)
            }
        }
        DirectoryCommand::Redeem { tenant, email, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let user = dir
                .redeem(&t.tenant_id, &email)
                .with_context(|| format!("{email} cannot redeem the invitation to {}", t.initial_domain))?;
            redeemed(&t.initial_domain, &user, output, out)
        }
        DirectoryCommand::RedeemUrl { url, output } => {
            let user = dir.redeem_url(&url).context("cannot redeem")?;
            // The URL names the tenant by id; say its domain.
            let tenant = url.split(['?', '&']).find_map(|p| p.strip_prefix("tenant=")).unwrap_or_default();
            let name = dir.find_tenant(tenant)?.map_or_else(|| tenant.to_string(), |t| t.initial_domain);
            redeemed(&name, &user, output, out)
        }
        DirectoryCommand::ResetRedemption { tenant, email, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let user = resolve_user(dir, &t, &email)?;
            let result = dir.reset_redemption(&t.tenant_id, &user.id)?;
            match output {
                Format::Json => write_json(out, &result),
                Format::Text => {
                    writeln!(out, "{} ({}) is PendingAcceptance again in {}", user.mail, user.id, t.initial_domain)?;
                    writeln!(out, "redeem URL: {}", result.invite_redeem_url)?;
                    Ok(())
                }
            }
        }
        DirectoryCommand::Set { tenant, path, value } => {
            let t = resolve_tenant(dir, &tenant)?;
            let value: Value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            dir.set_setting(&t.tenant_id, &path, value.clone())
                .with_context(|| format!("cannot set {path} in {}", t.initial_domain))?;
            writeln!(out, "{}: {path} = {value} (changed outside entente: the next plan shows it as drift)", t.initial_domain)?;
            Ok(())
        }
        DirectoryCommand::AddMember { tenant, email, display_name, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let id = dir.add_member(&t.tenant_id, &email, display_name.as_deref())?;
            match output {
                Format::Json => write_json(out, &json!({ "id": id, "mail": email, "tenantId": t.tenant_id })),
                Format::Text => {
                    writeln!(out, "{email} is a member of {} (user {id})", t.initial_domain)?;
                    Ok(())
                }
            }
        }
        DirectoryCommand::DeleteGuest { tenant, email } => {
            let t = resolve_tenant(dir, &tenant)?;
            let user = resolve_user(dir, &t, &email)?;
            dir.delete_user(&t.tenant_id, &user.id)?;
            writeln!(out, "deleted {} ({}) from {} outside entente", user.mail, user.id, t.initial_domain)?;
            Ok(())
        }
    }
}

fn tenants(dir: &LocalDirectory, output: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for t in dir.tenants()? {
        let guests = dir.users(&t.tenant_id)?.iter().filter(|u| is_guest(u)).count();
        rows.push((t, guests));
    }
    if output == Format::Json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(t, guests)| {
                let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
                v["guests"] = json!(guests);
                v
            })
            .collect();
        return write_json(out, &list);
    }
    if rows.is_empty() {
        writeln!(out, "no tenants yet: `entente apply` creates the tenants of local-backend manifests")?;
        return Ok(());
    }
    let table_rows =
        rows.into_iter().map(|(t, guests)| vec![t.tenant_id, t.initial_domain, t.display_name, guests.to_string()]).collect();
    write_table(out, &["ID", "INITIAL DOMAIN", "DISPLAY NAME", "GUESTS"], table_rows)?;
    Ok(())
}

fn show(dir: &LocalDirectory, tenant: &str, output: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = resolve_tenant(dir, tenant)?;
    let policy = dir.tenant_policy(&t.tenant_id)?;
    match output {
        // Graph's shape, as `set` paths name it.
        Format::Json => write_json(
            out,
            &json!({
                "tenant": t,
                "externalCollaboration": policy.collaboration,
                "crossTenantAccessDefault": policy.default_access.to_settings(),
            }),
        ),
        // The canonical form, one line per setting.
        Format::Text => {
            let doc = json!({
                "tenant": {
                    "id": t.tenant_id,
                    "initialDomain": t.initial_domain,
                    "displayName": t.display_name,
                    "cloud": t.cloud,
                    "verifiedDomains": t.verified_domains,
                },
                "externalCollaboration": policy.collaboration,
                "crossTenantAccessDefault": policy.default_access,
                "partners": policy.partners.keys().collect::<Vec<_>>(),
            });
            write_yaml(out, &doc, 0)?;
            Ok(())
        }
    }
}

fn guests(dir: &LocalDirectory, tenant: &str, all: bool, output: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = resolve_tenant(dir, tenant)?;
    let users: Vec<GuestUser> = dir.users(&t.tenant_id)?.into_iter().filter(|u| all || is_guest(u)).collect();
    if output == Format::Json {
        return write_json(out, &users);
    }
    if users.is_empty() {
        writeln!(out, "no {} in {}", if all { "users" } else { "guests" }, t.initial_domain)?;
        return Ok(());
    }
    let rows = users
        .into_iter()
        .map(|u| {
            let state = u.external_user_state.map_or("-", |s| s.as_str());
            vec![u.mail, u.id, u.user_type.as_str().to_string(), state.to_string(), u.user_principal_name]
        })
        .collect();
    write_table(out, &["MAIL", "USER ID", "USER TYPE", "EXTERNAL USER STATE", "USER PRINCIPAL NAME"], rows)?;
    Ok(())
}

fn redeemed(tenant: &str, user: &GuestUser, output: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    match output {
        Format::Json => write_json(out, user),
        Format::Text => {
            let at = user.external_user_state_change_date_time.as_deref().unwrap_or("-");
            writeln!(out, "{} ({}) redeemed the invitation to {tenant}: Accepted at {at}", user.mail, user.id)?;
            Ok(())
        }
    }
}

/// Guests as the snapshot counts them: created by invitation, or of type Guest.
fn is_guest(u: &GuestUser) -> bool {
    u.creation_type.as_deref() == Some("Invitation") || u.user_type == UserType::Guest
}

fn resolve_tenant(dir: &LocalDirectory, query: &str) -> anyhow::Result<TenantIdentity> {
    if let Some(t) = dir.find_tenant(query)? {
        return Ok(t);
    }
    let known: Vec<String> = dir.tenants()?.into_iter().map(|t| t.initial_domain).collect();
    if known.is_empty() {
        bail!("no tenant matches {query:?}: the directory has no tenants yet (`entente apply` creates them)");
    }
    bail!("no tenant matches {query:?}; known: {}", known.join(", "))
}

fn resolve_user(dir: &LocalDirectory, t: &TenantIdentity, email: &str) -> anyhow::Result<GuestUser> {
    match dir.user_by_mail(&t.tenant_id, email)? {
        Some(u) => Ok(u),
        None => bail!(
            "no user with mail {email:?} in {} (`entente directory guests {}` lists them)",
            t.initial_domain,
            t.initial_domain
        ),
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Columns padded to their widest cell; the last column is not padded.
fn write_table(out: &mut dyn Write, headers: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A small YAML rendering of a JSON value, for reading (not a general YAML writer).
fn write_yaml(out: &mut dyn Write, value: &Value, indent: usize) -> io::Result<()> {
    let pad = " ".repeat(indent);
    let nested = |v: &Value| matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if nested(v) {
                    writeln!(out, "{pad}{k}:")?;
                    write_yaml(out, v, indent + 2)?;
                } else {
                    writeln!(out, "{pad}{k}: {}", yaml_scalar(v))?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if nested(item) {
                    writeln!(out, "{pad}-")?;
                    write_yaml(out, item, indent + 2)?;
                } else {
                    writeln!(out, "{pad}- {}", yaml_scalar(item))?;
                }
            }
        }
        other => writeln!(out, "{pad}{}", yaml_scalar(other))?,
    }
    Ok(())
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::String(s) if is_plain(s) => s.clone(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// Whether a string reads back as the same string without quotes.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "null" | "~" | "yes" | "no")
        && s.parse::<f64>().is_err()
}
