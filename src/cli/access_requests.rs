//! `entente directory request-access | approve | assignments | expire`: the outside world of entitlement
//! management (R16) on the local directory. An external user requests a package, an approver approves, the
//! clock moves; the local directory decides as Entra would (policy scope, approval, expiry, the lifecycle).

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;

use super::directory::{Format, resolve_tenant, write_json, write_table};
use crate::directory::local::{ExpiryReport, LocalDirectory, RequestOutcome};

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// The external user at EMAIL requests the access package PACKAGE (display name) of TENANT (R16).
    ///
    /// Delivered at once when a policy admits them without approval; pending when it requires approval;
    /// refused (exit code 1) when no policy of the package admits them.
    RequestAccess {
        /// Tenant id or domain.
        tenant: String,
        package: String,
        email: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Approve EMAIL's pending request for PACKAGE; when the policy names approvers, `--approver` must be one.
    Approve {
        /// Tenant id or domain.
        tenant: String,
        package: String,
        email: String,
        #[arg(long)]
        approver: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// List a tenant's access package assignments and requests.
    Assignments {
        /// Tenant id or domain.
        tenant: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Move the clock: end expired assignments and apply each tenant's external-user lifecycle
    /// (block sign-in, then delete) as of now, or of `--at` (RFC 3339) to see what a date will bring.
    Expire {
        #[arg(long)]
        at: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
}

pub fn run(dir: &LocalDirectory, cmd: AccessCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        AccessCommand::RequestAccess { tenant, package, email, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let outcome = dir
                .request_access_package(&t.tenant_id, &email, &package)
                .with_context(|| format!("{email} cannot request {package:?} of {}", t.initial_domain))?;
            outcome_out(&outcome, &email, &package, &t.initial_domain, output, out)
        }
        AccessCommand::Approve { tenant, package, email, approver, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let outcome = dir
                .approve(&t.tenant_id, &email, &package, approver.as_deref(), chrono::Utc::now())
                .with_context(|| format!("cannot approve {email}'s request for {package:?} of {}", t.initial_domain))?;
            outcome_out(&outcome, &email, &package, &t.initial_domain, output, out)
        }
        AccessCommand::Assignments { tenant, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let state = dir.entitlement(&t.tenant_id)?;
            match output {
                Format::Json => write_json(out, &state.assignments),
                Format::Text if state.assignments.is_empty() => {
                    writeln!(out, "{} has no access package assignments", t.initial_domain)?;
                    Ok(())
                }
                Format::Text => {
                    let rows = state
                        .assignments
                        .iter()
                        .map(|a| {
                            let until = a.expires_at.clone().unwrap_or_else(|| "never".into());
                            vec![a.user_mail.clone(), a.package.clone(), a.policy.clone(), a.state.clone(), until]
                        })
                        .collect();
                    write_table(out, &["USER", "PACKAGE", "POLICY", "STATE", "EXPIRES"], rows)?;
                    Ok(())
                }
            }
        }
        AccessCommand::Expire { at, output } => {
            let now = match at {
                Some(at) => chrono::DateTime::parse_from_rfc3339(&at)
                    .with_context(|| format!("--at {at:?} is not an RFC 3339 time (e.g. 2026-12-31T00:00:00Z)"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let report = dir.expire_assignments(now)?;
            match output {
                Format::Json => write_json(out, &report),
                Format::Text => expiry_text(dir, &report, out),
            }
        }
    }
}

fn outcome_out(
    outcome: &RequestOutcome,
    email: &str,
    package: &str,
    tenant: &str,
    output: Format,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if output == Format::Json {
        write_json(out, outcome)?;
    } else {
        match outcome {
            RequestOutcome::Delivered { policy, user_id, expires_at } => {
                let until = expires_at.as_deref().map_or_else(|| "no expiry".to_string(), |e| format!("until {e}"));
                writeln!(
                    out,
                    "delivered: {email} has {package:?} of {tenant} through policy {policy:?} ({until}; user {user_id})"
                )?
            }
            RequestOutcome::PendingApproval { policy, approvers } => {
                let who = if approvers.is_empty() { "an approver".to_string() } else { approvers.join(", ") };
                writeln!(out, "pending approval: policy {policy:?} of {package:?} requires approval by {who}")?
            }
            RequestOutcome::Denied { .. } => {}
        }
    }
    if let RequestOutcome::Denied { reason } = outcome {
        return Err(Denied(format!("denied: {email} cannot have {package:?} of {tenant}: {reason}")).into());
    }
    Ok(())
}

fn expiry_text(dir: &LocalDirectory, r: &ExpiryReport, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = |id: &str| dir.find_tenant(id).ok().flatten().map_or_else(|| id.to_string(), |t| t.initial_domain);
    for (tenant, mail, package) in &r.expired {
        writeln!(out, "expired: {mail}'s assignment to {package:?} of {}", name(tenant))?;
    }
    for (tenant, user) in &r.blocked {
        writeln!(out, "blocked sign-in: user {user} of {} (their last assignment ended)", name(tenant))?;
    }
    for (tenant, user) in &r.deleted {
        writeln!(out, "deleted: user {user} of {} (blocked for the tenant's lifecycle duration)", name(tenant))?;
    }
    if r.expired.is_empty() && r.blocked.is_empty() && r.deleted.is_empty() {
        writeln!(out, "nothing expired")?;
    }
    Ok(())
}

/// A request no policy admits: an answer, not a failure (exit code 1, as `explain`'s "no").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Denied(String);
