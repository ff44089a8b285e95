//! Microsoft Graph application permissions (app roles): the ones an emulated app may be granted, and
//! which of them allow each operation the emulator serves. Each list starts with the least privileged
//! permission the API reference names and goes on with the higher-privileged alternatives it accepts.

use http::Method;

use super::router::Route;

/// Application permissions the emulator knows. Granting anything else is refused (a typo would
/// otherwise only show up as a 403 much later).
pub const KNOWN: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "User.Invite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Group.Create",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "OrganizationalBranding.Read.All",
    "OrganizationalBranding.ReadWrite.All",
    "Policy.Read.All",
    "Policy.ReadWrite.CrossTenantAccess",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.B2BManagementPolicy",
    "MultiTenantOrganization.Read.All",
    "MultiTenantOrganization.ReadWrite.All",
    "EntitlementManagement.Read.All",
    "EntitlementManagement.ReadWrite.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "IdentityProvider.Read.All",
    "IdentityProvider.ReadWrite.All",
    "IdentityUserFlow.Read.All",
    "IdentityUserFlow.ReadWrite.All",
    "APIConnectors.Read.All",
    "APIConnectors.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.ReadWrite.AuthenticationMethod",
    "Domain.ReadWrite.All",
];

/// The known permission spelled as Microsoft spells it, whatever the case it was given in.
pub fn canonical(name: &str) -> Option<&'static str> {
    KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(name.trim()))
}

const USER_READ: &[&str] = &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
const INVITE: &[&str] = &["User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"];
const GROUP_READ: &[&str] = &[
    "Group.Read.All",
    "GroupMember.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_CREATE: &[&str] = &["Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"];
const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
const GROUP_MEMBER_WRITE: &[&str] = &["GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"];
const MEMBER_OF: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ORG_READ: &[&str] =
    &["Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
/// organizationalbranding-get / -update / -delete (v1.0): least privileged first.
const BRANDING_READ: &[&str] = &[
    "OrganizationalBranding.Read.All",
    "OrganizationalBranding.ReadWrite.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
];
const BRANDING_WRITE: &[&str] = &["OrganizationalBranding.ReadWrite.All", "Organization.ReadWrite.All"];
const XTAP_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"];
const XTAP_WRITE: &[&str] = &["Policy.ReadWrite.CrossTenantAccess"];
const AUTHZ_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.Authorization"];
const AUTHZ_WRITE: &[&str] = &["Policy.ReadWrite.Authorization"];
const B2B_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.B2BManagementPolicy"];
const B2B_WRITE: &[&str] = &["Policy.ReadWrite.B2BManagementPolicy"];
const MTO_READ: &[&str] = &["MultiTenantOrganization.Read.All", "MultiTenantOrganization.ReadWrite.All"];
const MTO_WRITE: &[&str] = &["MultiTenantOrganization.ReadWrite.All"];
const EM_READ: &[&str] = &["EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All"];
const EM_WRITE: &[&str] = &["EntitlementManagement.ReadWrite.All"];
/// serviceprincipal-list / -get (v1.0): least privileged first.
const SP_READ: &[&str] = &["Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const IDP_READ: &[&str] = &["IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"];
const IDP_WRITE: &[&str] = &["IdentityProvider.ReadWrite.All"];
/// emailauthenticationmethodconfiguration-get / -update (v1.0).
const EMAIL_METHOD_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"];
const EMAIL_METHOD_WRITE: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];
/// samlorwsfedexternaldomainfederation-delete (v1.0) names Domain.ReadWrite.All as least privileged.
const FEDERATION_DELETE: &[&str] = &["Domain.ReadWrite.All", "IdentityProvider.ReadWrite.All"];
const FLOW_READ: &[&str] = &["IdentityUserFlow.Read.All", "IdentityUserFlow.ReadWrite.All"];
const FLOW_WRITE: &[&str] = &["IdentityUserFlow.ReadWrite.All"];
const CONNECTORS_READ: &[&str] = &["APIConnectors.Read.All", "APIConnectors.ReadWrite.All"];
const CONNECTORS_WRITE: &[&str] = &["APIConnectors.ReadWrite.All"];
const CA_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"];
const CA_WRITE: &[&str] = &["Policy.ReadWrite.ConditionalAccess"];
/// `$batch` itself needs a valid token only; each request inside is checked on its own.
const ANY: &[&str] = &[];

/// The permissions of which one allows `method` on `route`; empty when a valid token is enough.
pub fn required(route: &Route, method: &Method) -> &'static [&'static str] {
    let read = method == Method::GET;
    match route {
        Route::Invitations => INVITE,
        Route::Users | Route::UsersCount | Route::UsersDelta => USER_READ,
        Route::User(_) if read => USER_READ,
        Route::User(_) => USER_WRITE,
        Route::UserMemberOf(_) => MEMBER_OF,
        Route::Groups | Route::Group(_) | Route::GroupMembers(_) if read => GROUP_READ,
        Route::GroupsDelta => GROUP_READ,
        Route::Group(_) => GROUP_WRITE,
        Route::Groups | Route::GroupMembers(_) => GROUP_CREATE,
        Route::GroupMembersRef(_) | Route::GroupMemberRef(..) => GROUP_MEMBER_WRITE,
        Route::Organization | Route::OrganizationById(_) => ORG_READ,
        Route::OrganizationBranding(_) if read => BRANDING_READ,
        Route::OrganizationBranding(_) => BRANDING_WRITE,
        Route::OrganizationBrandingImage(..) if read => BRANDING_READ,
        Route::OrganizationBrandingImage(..) => BRANDING_WRITE,
        Route::CrossTenantAccessPolicy
        | Route::XtapDefault
        | Route::XtapDefaultReset
        | Route::Partners
        | Route::Partner(_)
        | Route::PartnerIdentitySync(_) => {
            if read {
                XTAP_READ
            } else {
                XTAP_WRITE
            }
        }
        Route::AuthorizationPolicy if read => AUTHZ_READ,
        Route::AuthorizationPolicy => AUTHZ_WRITE,
        Route::B2bPolicies | Route::B2bPolicy(_) if read => B2B_READ,
        Route::B2bPolicies | Route::B2bPolicy(_) => B2B_WRITE,
        Route::Mto | Route::MtoTenants | Route::MtoTenant(_) | Route::MtoJoinRequest if read => MTO_READ,
        Route::Mto | Route::MtoTenants | Route::MtoTenant(_) | Route::MtoJoinRequest => MTO_WRITE,
        Route::IdentityProviders | Route::IdentityProvider(_) if read => IDP_READ,
        Route::IdentityProviders | Route::IdentityProvider(_) => IDP_WRITE,
        Route::EmailMethod if read => EMAIL_METHOD_READ,
        Route::EmailMethod => EMAIL_METHOD_WRITE,
        Route::FederationConfiguration(_) => FEDERATION_DELETE,
        // directory-deleteditems-list / -restore (v1.0), for users: User.Read.All / User.ReadWrite.All.
        Route::DeletedUsers | Route::DeletedItem(_) => USER_READ,
        Route::DeletedItemRestore(_) => USER_WRITE,
        Route::Federations | Route::Federation(_) | Route::FederationDomains(_) if read => IDP_READ,
        Route::Federations | Route::Federation(_) | Route::FederationDomains(_) => IDP_WRITE,
        Route::UserFlows | Route::UserFlow(_) if read => FLOW_READ,
        Route::UserFlows | Route::UserFlow(_) => FLOW_WRITE,
        Route::UserFlowProviders(_)
        | Route::UserFlowProvidersRef(_)
        | Route::UserFlowProviderRef(..)
        | Route::UserFlowAssignments(_)
        | Route::UserFlowAssignment(..)
        | Route::UserFlowAttributes
        | Route::UserFlowStep(..)
        | Route::UserFlowStepRef(..) => {
            if read {
                FLOW_READ
            } else {
                FLOW_WRITE
            }
        }
        Route::ApiConnectors | Route::ApiConnector(_) if read => CONNECTORS_READ,
        Route::ApiConnectors | Route::ApiConnector(_) => CONNECTORS_WRITE,
        Route::ConditionalAccessPolicies | Route::ConditionalAccessPolicy(_) if read => CA_READ,
        Route::ConditionalAccessPolicies | Route::ConditionalAccessPolicy(_) => CA_WRITE,
        Route::ConnectedOrganizations
        | Route::ConnectedOrganization(_)
        | Route::AccessPackages
        | Route::AccessPackage(_)
        | Route::AssignmentPolicies
        | Route::AssignmentPolicy(_)
        | Route::EntitlementSettings
        | Route::EntitlementCatalogs
        | Route::CatalogResources(_)
        | Route::ResourceRequests
        | Route::AccessPackageCatalog(_)
        | Route::ResourceRoleScopes(_)
        | Route::ResourceRoleScope(..) => {
            if read {
                EM_READ
            } else {
                EM_WRITE
            }
        }
        Route::ServicePrincipals | Route::ServicePrincipal(_) => SP_READ,
        Route::Batch => ANY,
    }
}

/// Whether `roles` (a token's `roles` claim) holds one of `needed`.
pub fn allows(needed: &[&str], roles: &[String]) -> bool {
    needed.is_empty() || roles.iter().any(|r| needed.iter().any(|n| n.eq_ignore_ascii_case(r)))
}
