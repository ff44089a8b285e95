//! Executes the operations of one change (`Directory::apply`). The caller runs this inside one
//! transaction, so the first failing operation undoes the whole change.

use rusqlite::Connection;

use super::gates::Policies;
use super::{conditional_access, entitlement, groups, identity, managed, mto, partners, profile, tenants, users};
use crate::core::operation::{InvitationResult, Operation, Outcome, bind_invited_id};
use crate::directory::DirectoryError;

pub(super) fn apply(c: &Connection, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError> {
    let mut policies = Policies::default();
    let mut created_here = false;
    let mut last_invited: Option<InvitationResult> = None;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        // A Record after an Invite stores the invited user's id, in the same transaction.
        let op = bind_invited_id(op, last_invited.as_ref());
        let outcome = run(c, tenant_id, &op, &mut policies, &mut created_here)?;
        if let Outcome::Invited(result) = &outcome {
            last_invited = Some(result.clone());
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// `created_here`: whether a `CreateTenant` of this change created the tenant (its type may be set then only).
fn run(
    c: &Connection,
    tenant_id: &str,
    op: &Operation,
    policies: &mut Policies,
    created_here: &mut bool,
) -> Result<Outcome, DirectoryError> {
    if let Operation::CreateTenant { identity } = op {
        if !identity.tenant_id.eq_ignore_ascii_case(tenant_id) {
            return Err(DirectoryError::Invalid(format!(
                "createTenant for tenant {} sent to tenant {tenant_id}",
                identity.tenant_id
            )));
        }
        *created_here |= tenants::create(c, identity)?;
        policies.forget(tenant_id);
        return Ok(Outcome::Done);
    }
    if !tenants::exists(c, tenant_id)? {
        return Err(DirectoryError::TenantNotFound(tenant_id.to_string()));
    }
    match op {
        Operation::CreateTenant { .. } => unreachable!("handled above"),
        Operation::ConfigureTenant { external_collaboration, default_access } => {
            tenants::store_collaboration(c, tenant_id, external_collaboration)?;
            tenants::store_default_access(c, tenant_id, default_access)?;
            super::feed::append(c, tenant_id, "tenant", tenant_id, "configured")?;
            policies.forget(tenant_id);
        }
        Operation::SetCloudSettings { allowed_clouds } => {
            profile::set_clouds(c, tenant_id, allowed_clouds)?;
            policies.forget(tenant_id);
        }
        Operation::ConfigureTenantExperience { tenant_type, branding, self_service_account } => profile::configure_experience(
            c,
            tenant_id,
            *tenant_type,
            branding.as_ref(),
            self_service_account.as_ref(),
            *created_here,
        )?,
        Operation::EnsureGroups { display_names } => groups::ensure(c, tenant_id, display_names)?,
        Operation::PutPartner { partner } => {
            partners::put(c, tenant_id, partner)?;
            policies.forget(tenant_id);
        }
        Operation::DeletePartner { partner_tenant_id } => {
            partners::delete(c, tenant_id, partner_tenant_id)?;
            policies.forget(tenant_id);
        }
        Operation::Invite { invitation } => {
            return Ok(Outcome::Invited(users::invite(c, tenant_id, invitation, policies)?));
        }
        Operation::ProvisionUser { user } => {
            return Ok(Outcome::Invited(users::provision(c, tenant_id, user, policies)?));
        }
        Operation::UpdateGuest { user_id, patch } => users::update(c, tenant_id, user_id, patch)?,
        Operation::DeleteGuest { user_id } => {
            users::delete(c, tenant_id, user_id)?;
        }
        Operation::RestoreGuest { user_id } => super::recycle_bin::restore(c, tenant_id, user_id, chrono::Utc::now())?,
        Operation::PutMultiTenantOrganization { display_name, description } => {
            mto::put(c, tenant_id, display_name, description.as_deref())?
        }
        Operation::AddMtoMember { tenant_id: member, display_name, role } => {
            mto::add_member(c, tenant_id, member, display_name.as_deref(), *role)?
        }
        Operation::RemoveMtoMember { tenant_id: member } => mto::remove_member(c, tenant_id, member)?,
        Operation::JoinMto { owner_tenant_id } => mto::join(c, tenant_id, owner_tenant_id)?,
        Operation::LeaveMto => mto::leave(c, tenant_id)?,
        Operation::SetEntitlementSettings { settings } => entitlement::set_settings(c, tenant_id, settings)?,
        Operation::PutConnectedOrganization { id, organization } => {
            entitlement::put_organization(c, tenant_id, id.as_deref(), organization)?;
        }
        Operation::DeleteConnectedOrganization { id } => entitlement::delete_organization(c, tenant_id, id)?,
        Operation::PutAccessPackage { id, package } => {
            entitlement::put_package(c, tenant_id, id.as_deref(), package)?;
        }
        Operation::DeleteAccessPackage { id } => entitlement::delete_package(c, tenant_id, id, chrono::Utc::now())?,
        Operation::PutIdentityProvider { provider, existing_id } => {
            identity::put_provider(c, tenant_id, provider, existing_id.as_deref())?;
        }
        Operation::DeleteIdentityProvider { key, id } => identity::delete_provider(c, tenant_id, id, key)?,
        Operation::PutSignUpFlow { flow, .. } => identity::put_flow(c, tenant_id, flow)?,
        Operation::DeleteSignUpFlow { id } => identity::delete_flow(c, tenant_id, id)?,
        Operation::PutConditionalAccessPolicy { id, policy } => {
            conditional_access::put(c, tenant_id, id.as_deref(), policy)?;
        }
        Operation::DeleteConditionalAccessPolicy { id } => {
            conditional_access::delete(c, tenant_id, id)?;
        }
        Operation::Record { record } => managed::upsert(c, tenant_id, record)?,
        Operation::Forget { kind, key } => managed::forget(c, tenant_id, *kind, key)?,
        Operation::Bury { kind, key, reason } => managed::bury(c, tenant_id, *kind, key, reason, chrono::Utc::now())?,
    }
    Ok(Outcome::Done)
}
