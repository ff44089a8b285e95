//! `entente directory`: look into the embedded local directory, and act on it as the outside world
//! would — a guest redeeming an invitation, an admin changing a setting or deleting a guest in the
//! portal — for example to show drift. Tenant arguments accept a tenant id or any of its domains.

use crate::core::tenant_profile::cloud_keyword;
use std::io::{self, Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
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
        /// A profile attribute, `NAME=VALUE` (e.g. `jobTitle=Engineer`); repeatable.
        #[arg(long = "attr", value_parser = parse_attr)]
        attributes: Vec<(String, String)>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Change a user outside entente, as HR or an admin would: profile attributes, display name, sign-in.
    SetUser {
        /// Tenant id or domain.
        tenant: String,
        email: String,
        /// Set a profile attribute, `NAME=VALUE`; repeatable.
        #[arg(long = "attr", value_parser = parse_attr)]
        attributes: Vec<(String, String)>,
        /// Clear a profile attribute; repeatable.
        #[arg(long = "clear")]
        clear: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Block (`false`) or allow (`true`) sign-in.
        #[arg(long)]
        account_enabled: Option<bool>,
        /// Add the user to a group (by display name); repeatable.
        #[arg(long = "add-to-group")]
        add_to_groups: Vec<String>,
        /// Remove the user from a group (by display name); repeatable.
        #[arg(long = "remove-from-group")]
        remove_from_groups: Vec<String>,
    },
    /// Delete a guest outside entente (into the recycle bin: restorable for 30 days).
    DeleteGuest {
        /// Tenant id or domain.
        tenant: String,
        email: String,
    },
    /// List the recycle bin: users deleted in the last 30 days, newest first.
    Deleted {
        /// Tenant id or domain.
        tenant: String,
    },
    /// Restore a deleted user from the recycle bin as the same user (id, groups, redemption state), as an
    /// admin would; refused while a live user holds its mail.
    Restore {
        /// Tenant id or domain.
        tenant: String,
        /// The deleted user's mail (or id).
        email: String,
    },
    /// Serve the directory file as a Microsoft Graph-compatible API (with a token endpoint), until Ctrl-C.
    ///
    /// Point a Graph client at it by setting both its authority host and its Graph endpoint to the
    /// printed URL; `entente directory app create` registers the app it signs in as.
    Serve(ServeArgs),
    /// App registrations that may call `entente directory serve`.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    #[command(flatten)]
    Access(super::access_requests::AccessCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Only loopback addresses unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// Allow a non-loopback --listen address (unauthenticated /_emulator endpoints).
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve https with a certificate from a local CA kept beside the directory file (created on first
    /// use; its file is printed: trust it with REQUESTS_CA_BUNDLE, SSL_CERT_FILE or NODE_EXTRA_CA_CERTS).
    /// Microsoft's token libraries and SDKs need https.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls: bool,
    /// Serve https with this certificate chain (PEM); with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Host names the --tls certificate is also issued for (beside localhost, 127.0.0.1, ::1 and the
    /// --listen address).
    #[arg(long = "tls-host", value_name = "NAME")]
    pub tls_hosts: Vec<String>,
    /// The URL clients reach the emulator at, for links and token issuers (default: http:// or https://
    /// and the request's Host).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Validate every request and response body against the OpenAPI subset; violations are logged
    /// and listed at GET /_emulator/contract-violations.
    #[arg(long)]
    pub strict_contract: bool,
    /// The OpenAPI document (default: ../shared/reference/graph-v1.0-openapi-subset.yaml beside the
    /// crate if present, else the built-in copy).
    #[arg(long, value_name = "PATH")]
    pub openapi: Option<std::path::PathBuf>,
    /// With --strict-contract, do not report properties the schemas do not define.
    #[arg(long)]
    pub allow_unknown_properties: bool,
    /// Milliseconds added to every request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Up to this many more milliseconds, at random.
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Share (0-1) of requests answered with an injected 500, 503 or 504.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Share (0-1) of requests whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share (0-1) of writes carried out whose answer is then lost (504 or a closed connection).
    #[arg(long, default_value_t = 0.0)]
    pub ambiguous_rate: f64,
    /// Retry-After (seconds) of an injected 503.
    #[arg(long, default_value_t = 1.0)]
    pub fault_retry_after: f64,
    /// Seed of the random sequence behind faults, latency jitter and Retry-After formats.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Turn Graph's throttling limits off.
    #[arg(long)]
    pub no_throttle: bool,
    /// Multiply every throttling limit by this (e.g. 0.01 to see 429s quickly).
    #[arg(long, default_value_t = 1.0)]
    pub throttle_scale: f64,
    /// How Retry-After is written on a 429: whole seconds as Graph does, or also fractional (a client test).
    #[arg(long, value_enum, default_value_t = RetryAfterArg::Integer)]
    pub retry_after: RetryAfterArg,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime: u64,
    /// Trust an external OIDC issuer for workload identity federation: ISSUER=JWKS_FILE (repeatable).
    /// An app's federated credential then says which subject and audience are accepted.
    #[arg(long = "trust-issuer", value_name = "ISSUER=JWKS_FILE")]
    pub trust_issuer: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RetryAfterArg {
    Integer,
    Fractional,
    Mixed,
}

impl ServeArgs {
    /// The TLS identity to serve, and the CA file to trust when entente made it (`None`: plain HTTP).
    pub fn tls(
        &self,
        directory: &std::path::Path,
    ) -> anyhow::Result<Option<(crate::emulator::tls::TlsIdentity, Option<std::path::PathBuf>)>> {
        use crate::emulator::tls;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some((tls::from_files(cert, key)?, None)));
        }
        if !self.tls {
            return Ok(None);
        }
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        hosts.push(self.listen.ip().to_string());
        hosts.extend(self.tls_hosts.iter().cloned());
        hosts.sort();
        hosts.dedup();
        let mut dir = directory.as_os_str().to_owned();
        dir.push(".tls");
        let (identity, ca) = tls::self_signed(std::path::Path::new(&dir), &hosts)?;
        Ok(Some((identity, Some(ca))))
    }

    pub fn config(&self) -> anyhow::Result<crate::emulator::EmulatorConfig> {
        use crate::emulator::{ContractConfig, EmulatorConfig, FaultConfig, JwksSource, Limits, RetryAfterFormat, TrustedIssuer};
        for (name, rate) in
            [("--fault-rate", self.fault_rate), ("--drop-rate", self.drop_rate), ("--ambiguous-rate", self.ambiguous_rate)]
        {
            if !(0.0..=1.0).contains(&rate) {
                bail!("{name} is a share between 0 and 1, not {rate}");
            }
        }
        if self.throttle_scale <= 0.0 {
            bail!("--throttle-scale must be positive");
        }
        let mut limits = if self.no_throttle { Limits::off() } else { Limits::scaled(self.throttle_scale) };
        limits.retry_after = match self.retry_after {
            RetryAfterArg::Integer => RetryAfterFormat::Integer,
            RetryAfterArg::Fractional => RetryAfterFormat::Fractional,
            RetryAfterArg::Mixed => RetryAfterFormat::Mixed,
        };
        let trusted_issuers = self
            .trust_issuer
            .iter()
            .map(|t| {
                // The issuer is a URL (it has '='-free scheme and host); split at the last '='.
                let (issuer, file) =
                    t.rsplit_once('=').with_context(|| format!("--trust-issuer {t:?} is not ISSUER=JWKS_FILE"))?;
                Ok(TrustedIssuer { issuer: issuer.to_string(), jwks: JwksSource::File(file.into()) })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(EmulatorConfig {
            listen: self.listen,
            allow_remote: self.allow_remote,
            public_url: self.public_url.clone(),
            token_lifetime: std::time::Duration::from_secs(self.token_lifetime),
            trusted_issuers,
            contract: ContractConfig {
                strict: self.strict_contract,
                openapi: self.openapi.clone(),
                allow_unknown_properties: self.allow_unknown_properties,
            },
            limits,
            faults: FaultConfig {
                latency: std::time::Duration::from_millis(self.latency_ms),
                latency_jitter: std::time::Duration::from_millis(self.latency_jitter_ms),
                fault_rate: self.fault_rate,
                drop_rate: self.drop_rate,
                ambiguous_rate: self.ambiguous_rate,
                fault_retry_after: self.fault_retry_after,
                seed: self.seed,
                ..FaultConfig::default()
            },
            ..EmulatorConfig::default()
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Register an app in a tenant with application permissions; prints its client id and a client
    /// secret, which is shown only this once.
    Create {
        /// Tenant id or domain.
        #[arg(long)]
        tenant: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Application permission to grant, e.g. User.Invite.All (repeatable, or comma-separated).
        #[arg(long = "permission", short = 'p')]
        permissions: Vec<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// List app registrations (no secrets, only their hints).
    List {
        /// Only this tenant's (id or domain).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Grant more application permissions (tokens issued afterwards carry them).
    Grant {
        client_id: String,
        #[arg(long = "permission", short = 'p', required = true)]
        permissions: Vec<String>,
    },
    /// Add a client secret to an app; prints it once.
    Secret {
        client_id: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// Add a federated credential: tokens from ISSUER about SUBJECT (for AUDIENCE) may be exchanged
    /// for the app's tokens (workload identity federation). Start the emulator with
    /// --trust-issuer ISSUER=JWKS_FILE so it can check their signatures.
    Federate {
        client_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        /// Accepted audience (repeatable; default api://AzureADTokenExchange).
        #[arg(long = "audience")]
        audiences: Vec<String>,
    },
    /// Delete an app registration with its secrets and credentials.
    Delete { client_id: String },
}

impl DirectoryCommand {
    /// Only reads: run against a directory file that does not exist, it creates none (an empty
    /// directory answers instead).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Self::Tenants { .. } | Self::Show { .. } | Self::Guests { .. } | Self::Policies { .. } | Self::Deleted { .. }
        )
    }
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
        DirectoryCommand::AddMember { tenant, email, display_name, attributes, output } => {
            let t = resolve_tenant(dir, &tenant)?;
            let id = dir.add_member(&t.tenant_id, &email, display_name.as_deref())?;
            if !attributes.is_empty() {
                dir.set_user_attributes(&t.tenant_id, &id, &attributes.into_iter().map(|(k, v)| (k, Some(v))).collect())?;
            }
            match output {
                Format::Json => write_json(out, &json!({ "id": id, "mail": email, "tenantId": t.tenant_id })),
                Format::Text => {
                    writeln!(out, "{email} is a member of {} (user {id})", t.initial_domain)?;
                    Ok(())
                }
            }
        }
        DirectoryCommand::SetUser {
            tenant,
            email,
            attributes,
            clear,
            display_name,
            account_enabled,
            add_to_groups,
            remove_from_groups,
        } => {
            let t = resolve_tenant(dir, &tenant)?;
            let user = dir
                .user_by_mail(&t.tenant_id, &email)?
                .ok_or_else(|| anyhow::anyhow!("no user with mail {email} in {}", t.initial_domain))?;
            let mut attrs: std::collections::BTreeMap<String, Option<String>> =
                attributes.into_iter().map(|(k, v)| (k, Some(v))).collect();
            attrs.extend(clear.into_iter().map(|k| (k, None)));
            if !attrs.is_empty() {
                dir.set_user_attributes(&t.tenant_id, &user.id, &attrs)?;
            }
            if let Some(name) = display_name {
                dir.set_display_name(&t.tenant_id, &user.id, &name)?;
            }
            if let Some(enabled) = account_enabled {
                dir.set_account_enabled(&t.tenant_id, &user.id, enabled)?;
            }
            for g in add_to_groups {
                dir.add_group_member(&t.tenant_id, &g, &user.id)?;
            }
            for g in remove_from_groups {
                dir.remove_group_member(&t.tenant_id, &g, &user.id)?;
            }
            writeln!(out, "updated {email} in {} (user {})", t.initial_domain, user.id)?;
            Ok(())
        }
        DirectoryCommand::Serve(args) => serve(dir, &args, out),
        DirectoryCommand::App { command } => app(dir, command, out),
        DirectoryCommand::Access(command) => super::access_requests::run(dir, command, out),
        DirectoryCommand::DeleteGuest { tenant, email } => {
            let t = resolve_tenant(dir, &tenant)?;
            let user = resolve_user(dir, &t, &email)?;
            dir.delete_user(&t.tenant_id, &user.id)?;
            writeln!(out, "deleted {} ({}) from {} outside entente", user.mail, user.id, t.initial_domain)?;
            Ok(())
        }
        DirectoryCommand::Deleted { tenant } => super::recycle_bin::list(dir, &tenant, out),
        DirectoryCommand::Restore { tenant, email } => super::recycle_bin::restore(dir, &tenant, &email, out),
    }
}

/// Runs the emulator on its own runtime thread (this function is called from async code) until Ctrl-C.
fn serve(dir: &LocalDirectory, args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = dir.file_path()?.context("`serve` needs a directory file, not an in-memory directory")?;
    let mut config = args.config()?;
    let tls = args.tls(&path)?;
    let ca_file = tls.as_ref().and_then(|(_, ca)| ca.clone());
    config.tls = tls.map(|(identity, _)| identity);
    let tenants = dir.tenants()?;
    let apps = crate::emulator::apps::list_apps(dir, None)?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
    let file = path.clone();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(async move {
            let emulator = match crate::emulator::serve_file(&file, config).await {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Ok(());
                }
            };
            let _ = tx.send(Ok(emulator.url()));
            tokio::signal::ctrl_c().await?;
            emulator.shutdown().await;
            Ok(())
        })
    });
    let url = match rx.recv() {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => {
            let _ = server.join();
            bail!("cannot start the emulator: {e}");
        }
        Err(_) => match server.join() {
            Ok(Err(e)) => return Err(e),
            _ => bail!("the emulator stopped before it listened"),
        },
    };
    writeln!(out, "Graph emulator listening on {url}, serving {}", path.display())?;
    // Clients use the public URL when one is given (a TLS terminator in front, say).
    let url = args.public_url.as_deref().map_or(url, |u| u.trim_end_matches('/').to_string());
    writeln!(out, "  Graph endpoint:  {url}  (/v1.0, /beta)")?;
    writeln!(out, "  authority host:  {url}  (POST /{{tenant}}/oauth2/v2.0/token)")?;
    if let Some(ca) = &ca_file {
        writeln!(
            out,
            "  CA certificate:  {}  (trust it: REQUESTS_CA_BUNDLE / SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)",
            ca.display()
        )?;
    }
    if tenants.is_empty() {
        writeln!(out, "  tenants: none yet (`entente apply` with local-backend Tenants creates them)")?;
    }
    for t in &tenants {
        let n = apps.iter().filter(|a| a.tenant_id == t.tenant_id).count();
        writeln!(out, "  tenant {} ({}): {n} app(s)", t.initial_domain, t.tenant_id)?;
    }
    if apps.is_empty() {
        writeln!(out, "  no apps yet: `entente directory app create --tenant T --name N --permission P...`")?;
    }
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    match server.join() {
        Ok(r) => r,
        Err(_) => bail!("the emulator thread panicked"),
    }
}

fn app(dir: &LocalDirectory, cmd: AppCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    use crate::emulator::apps;
    match cmd {
        AppCommand::Create { tenant, name, permissions, output } => {
            let app = apps::create_app(dir, &tenant, &name, &permissions)?;
            match output {
                Format::Json => write_json(out, &app),
                Format::Text => {
                    writeln!(out, "app {:?} registered in tenant {}", app.display_name, app.tenant_id)?;
                    writeln!(out, "client id:     {}", app.client_id)?;
                    writeln!(out, "client secret: {}", app.client_secret)?;
                    let granted = if app.permissions.is_empty() { "none".to_string() } else { app.permissions.join(", ") };
                    writeln!(out, "permissions:   {granted}")?;
                    writeln!(out, "The secret is not stored in clear and is not shown again.")?;
                    Ok(())
                }
            }
        }
        AppCommand::List { tenant, output } => {
            let list = apps::list_apps(dir, tenant.as_deref())?;
            if output == Format::Json {
                return write_json(out, &list);
            }
            if list.is_empty() {
                writeln!(out, "no apps")?;
                return Ok(());
            }
            let rows = list
                .into_iter()
                .map(|a| {
                    let secrets: Vec<String> = a.secrets.iter().map(|s| format!("{}…", s.hint)).collect();
                    let federated: Vec<String> = a.federated_credentials.iter().map(|f| f.name.clone()).collect();
                    vec![
                        a.client_id,
                        a.tenant_id,
                        a.display_name,
                        a.permissions.join(","),
                        [secrets.join(","), federated.join(",")]
                            .iter()
                            .filter(|s| !s.is_empty())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect();
            write_table(out, &["CLIENT ID", "TENANT", "NAME", "PERMISSIONS", "CREDENTIALS"], rows)?;
            Ok(())
        }
        AppCommand::Grant { client_id, permissions } => {
            apps::grant(dir, &client_id, &permissions)?;
            writeln!(out, "granted {} to {client_id} (new tokens carry them)", permissions.join(", "))?;
            Ok(())
        }
        AppCommand::Secret { client_id, expires_in_days } => {
            let secret = apps::add_secret(dir, &client_id, expires_in_days)?;
            writeln!(out, "client secret: {secret}")?;
            writeln!(out, "The secret is not stored in clear and is not shown again.")?;
            Ok(())
        }
        AppCommand::Federate { client_id, name, issuer, subject, audiences } => {
            let cred = apps::FederatedCredential { name: name.clone(), issuer, subject, audiences };
            apps::add_federated_credential(dir, &client_id, &cred)?;
            writeln!(out, "federated credential {name:?} added to {client_id}")?;
            Ok(())
        }
        AppCommand::Delete { client_id } => {
            if !apps::delete_app(dir, &client_id)? {
                bail!("no app {client_id}");
            }
            writeln!(out, "deleted app {client_id}")?;
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
    let profile = dir.tenant_profile(&t.tenant_id)?;
    let clouds: Vec<&str> = profile.allowed_clouds.iter().map(|c| cloud_keyword(*c)).collect();
    match output {
        // Graph's shape, as `set` paths name it.
        Format::Json => write_json(
            out,
            &json!({
                "tenant": t,
                "tenantType": profile.tenant_type,
                "microsoftCloudSettings": { "allowedClouds": clouds },
                "branding": profile.branding,
                "selfServiceAccount": profile.self_service_account,
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
                    "tenantType": profile.tenant_type,
                },
                "microsoftCloudSettings": { "allowedClouds": clouds },
                "branding": profile.branding,
                "selfServiceAccount": profile.self_service_account,
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

pub(super) fn resolve_tenant(dir: &LocalDirectory, query: &str) -> anyhow::Result<TenantIdentity> {
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

pub(super) fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Columns padded to their widest cell; the last column is not padded.
pub(super) fn write_table(out: &mut dyn Write, headers: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
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

/// `NAME=VALUE` of `--attr`.
fn parse_attr(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE (e.g. jobTitle=Engineer)")),
    }
}
