//! The Graph paths the emulator serves, as a plain route table: a request's version and path
//! segments become a `Route`, or a 404 (unknown path) or 405 (known path, other method) in Graph's
//! error shape. `$batch` items go through the same table.

use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use super::errors::GraphError;

/// `v1.0` or `beta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1.0" => Some(ApiVersion::V1),
            "beta" => Some(ApiVersion::Beta),
            _ => None,
        }
    }
}

/// One Graph request, from HTTP or from a `$batch` item.
#[derive(Clone, Debug)]
pub struct GraphRequest {
    pub method: Method,
    pub version: ApiVersion,
    /// Percent-decoded path segments after the version, e.g. `["users", "abc"]`.
    pub segments: Vec<String>,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// The body, when there is one (JSON).
    pub body: Option<Value>,
    /// A body of another media type (e.g. an image stream), as sent, when it was not JSON.
    pub raw: Option<bytes::Bytes>,
    /// Set for a request inside `$batch`.
    pub in_batch: bool,
}

impl GraphRequest {
    /// A query parameter by name; OData system options match with or without `$`, any case.
    pub fn param(&self, name: &str) -> Option<&str> {
        let bare = name.trim_start_matches('$');
        self.query.iter().find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(bare)).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `/users/abc` (decoded), for messages and contract matching.
    pub fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    /// The JSON body as an object, or a 400.
    pub fn object_body(&self) -> Result<&serde_json::Map<String, Value>, GraphError> {
        match &self.body {
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(GraphError::bad_request("The request body must be a JSON object.")),
            None => Err(GraphError::bad_request("A request body is required.")),
        }
    }

    /// Whether `ConsistencyLevel: eventual` is set (advanced queries).
    pub fn eventual(&self) -> bool {
        self.header("ConsistencyLevel").is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
    }
}

/// What a handler answers.
#[derive(Clone, Debug)]
pub struct GraphResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: ResponseBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseBody {
    Empty,
    Json(Value),
    Text(String),
    /// Raw bytes of a media type (an image stream).
    Binary {
        content_type: String,
        bytes: bytes::Bytes,
    },
}

impl GraphResponse {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self { status, headers: Vec::new(), body: ResponseBody::Json(body) }
    }
    pub fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }
    pub fn created(body: Value) -> Self {
        Self::json(StatusCode::CREATED, body)
    }
    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, headers: Vec::new(), body: ResponseBody::Empty }
    }
    pub fn text(status: StatusCode, text: String) -> Self {
        Self { status, headers: vec![("Content-Type".into(), "text/plain".into())], body: ResponseBody::Text(text) }
    }
}

/// The resources served. Parameters are decoded path segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Invitations,
    Users,
    UsersCount,
    UsersDelta,
    User(String),
    UserMemberOf(String),
    Groups,
    GroupsDelta,
    Group(String),
    GroupMembers(String),
    GroupMembersRef(String),
    GroupMemberRef(String, String),
    Organization,
    OrganizationById(String),
    /// `/organization/{id}/branding`: the default company branding (contract extension).
    OrganizationBranding(String),
    /// `/organization/{id}/branding/localizations/{locale}/{bannerLogo|squareLogo|backgroundImage}`: an
    /// image stream of a branding localization (contract extension).
    OrganizationBrandingImage(String, String, &'static str),
    CrossTenantAccessPolicy,
    XtapDefault,
    XtapDefaultReset,
    Partners,
    Partner(String),
    PartnerIdentitySync(String),
    AuthorizationPolicy,
    /// Beta only.
    B2bPolicies,
    /// Beta only.
    B2bPolicy(String),
    /// `/tenantRelationships/multiTenantOrganization` (R15).
    Mto,
    MtoTenants,
    MtoTenant(String),
    MtoJoinRequest,
    /// `/identity/identityProviders` (R17).
    IdentityProviders,
    IdentityProvider(String),
    /// `/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email`: email one-time
    /// passcode for external users (R17, contract extension).
    EmailMethod,
    /// `/directory/federationConfigurations/{graph.|microsoft.graph.}samlOrWsFedExternalDomainFederation`
    /// (R17, contract extension): list and create.
    Federations,
    /// `…/graph.samlOrWsFedExternalDomainFederation/{id}`: update.
    Federation(String),
    /// `/directory/federationConfigurations/{id}`: delete.
    FederationConfiguration(String),
    /// A federation's `domains`, with the id before or after the cast: list and add.
    FederationDomains(String),
    /// `/directory/deletedItems/microsoft.graph.user`: the recycle bin's users (contract extension).
    DeletedUsers,
    /// `/directory/deletedItems/{id}/restore` (contract extension).
    DeletedItemRestore(String),
    /// `/directory/deletedItems/{id}` (contract extension).
    DeletedItem(String),
    /// `/identity/b2xUserFlows` (R17).
    UserFlows,
    UserFlow(String),
    /// A flow's `userFlowIdentityProviders` (list), `…/$ref` (add) and `…/{id}/$ref` (remove).
    UserFlowProviders(String),
    UserFlowProvidersRef(String),
    UserFlowProviderRef(String, String),
    /// A flow's `userAttributeAssignments`, and `/identity/userFlowAttributes`.
    UserFlowAssignments(String),
    UserFlowAssignment(String, String),
    UserFlowAttributes,
    /// `/identity/apiConnectors`.
    ApiConnectors,
    ApiConnector(String),
    /// A flow's `apiConnectorConfiguration/{step}` and `…/{step}/$ref`.
    UserFlowStep(String, crate::core::identity::ConnectorStep),
    UserFlowStepRef(String, crate::core::identity::ConnectorStep),
    /// `/identity/conditionalAccess/policies` (R18).
    ConditionalAccessPolicies,
    ConditionalAccessPolicy(String),
    /// `/identityGovernance/entitlementManagement/…` (R16).
    ConnectedOrganizations,
    ConnectedOrganization(String),
    AccessPackages,
    AccessPackage(String),
    AssignmentPolicies,
    AssignmentPolicy(String),
    EntitlementSettings,
    /// Package resources (R16, contract extension): the tenant's catalogs, a catalog's resources,
    /// resource requests, a package's catalog and its resource role scopes.
    EntitlementCatalogs,
    CatalogResources(String),
    ResourceRequests,
    AccessPackageCatalog(String),
    ResourceRoleScopes(String),
    ResourceRoleScope(String, String),
    /// `/servicePrincipals` (read only): the applications access packages name.
    ServicePrincipals,
    ServicePrincipal(String),
    Batch,
}

impl Route {
    /// Resolves a version and path, or answers 404.
    pub fn resolve(version: ApiVersion, segments: &[String]) -> Result<Route, GraphError> {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let route = match (version, s.as_slice()) {
            (_, ["$batch"]) => Route::Batch,
            (ApiVersion::V1, ["invitations"]) => Route::Invitations,
            (_, ["users"]) => Route::Users,
            (_, ["users", "$count"]) => Route::UsersCount,
            (_, ["users", "delta()" | "delta"]) => Route::UsersDelta,
            (_, ["users", id]) => Route::User(id.to_string()),
            (_, ["users", id, "memberOf"]) => Route::UserMemberOf(id.to_string()),
            (_, ["groups"]) => Route::Groups,
            (_, ["groups", "delta()" | "delta"]) => Route::GroupsDelta,
            (_, ["groups", id]) => Route::Group(id.to_string()),
            (_, ["groups", id, "members"]) => Route::GroupMembers(id.to_string()),
            (_, ["groups", id, "members", "$ref"]) => Route::GroupMembersRef(id.to_string()),
            (_, ["groups", id, "members", member, "$ref"]) => Route::GroupMemberRef(id.to_string(), member.to_string()),
            (ApiVersion::V1, ["servicePrincipals"]) => Route::ServicePrincipals,
            (ApiVersion::V1, ["servicePrincipals", id]) => Route::ServicePrincipal(id.to_string()),
            (_, ["organization"]) => Route::Organization,
            (_, ["organization", id]) => Route::OrganizationById(id.to_string()),
            (ApiVersion::V1, ["organization", id, "branding"]) => Route::OrganizationBranding(id.to_string()),
            (ApiVersion::V1, ["organization", id, "branding", "localizations", locale, image])
                if super::branding::branding_image(image).is_some() =>
            {
                let image = super::branding::branding_image(image).expect("checked");
                Route::OrganizationBrandingImage(id.to_string(), locale.to_string(), image)
            }
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy"]) => Route::CrossTenantAccessPolicy,
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy", "default"]) => Route::XtapDefault,
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy", "default", "resetToSystemDefault"]) => {
                Route::XtapDefaultReset
            }
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy", "partners"]) => Route::Partners,
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy", "partners", id]) => Route::Partner(id.to_string()),
            (ApiVersion::V1, ["policies", "crossTenantAccessPolicy", "partners", id, "identitySynchronization"]) => {
                Route::PartnerIdentitySync(id.to_string())
            }
            (ApiVersion::V1, ["policies", "authorizationPolicy"]) => Route::AuthorizationPolicy,
            (ApiVersion::Beta, ["policies", "b2bManagementPolicies"]) => Route::B2bPolicies,
            (ApiVersion::Beta, ["policies", "b2bManagementPolicies", id]) => Route::B2bPolicy(id.to_string()),
            (ApiVersion::V1, ["tenantRelationships", "multiTenantOrganization"]) => Route::Mto,
            (ApiVersion::V1, ["tenantRelationships", "multiTenantOrganization", "tenants"]) => Route::MtoTenants,
            (ApiVersion::V1, ["tenantRelationships", "multiTenantOrganization", "tenants", id]) => {
                Route::MtoTenant(id.to_string())
            }
            (ApiVersion::V1, ["tenantRelationships", "multiTenantOrganization", "joinRequest"]) => Route::MtoJoinRequest,
            (ApiVersion::V1, ["identity", "identityProviders"]) => Route::IdentityProviders,
            (ApiVersion::V1, ["identity", "identityProviders", id]) => Route::IdentityProvider(id.to_string()),
            (ApiVersion::V1, ["policies", "authenticationMethodsPolicy", "authenticationMethodConfigurations", "email"]) => {
                Route::EmailMethod
            }
            (ApiVersion::V1, ["directory", "federationConfigurations", rest @ ..]) => {
                let cast = super::identity::is_federation_cast;
                match rest {
                    [c] if cast(c) => Route::Federations,
                    [id] => Route::FederationConfiguration(id.to_string()),
                    [c, id] if cast(c) => Route::Federation(id.to_string()),
                    [c, id, "domains"] | [id, c, "domains"] if cast(c) => Route::FederationDomains(id.to_string()),
                    _ => return Err(GraphError::not_found(&segments.join("/"))),
                }
            }
            (ApiVersion::V1, ["directory", "deletedItems", "microsoft.graph.user" | "graph.user"]) => Route::DeletedUsers,
            (ApiVersion::V1, ["directory", "deletedItems", id, "restore"]) => Route::DeletedItemRestore(id.to_string()),
            (ApiVersion::V1, ["directory", "deletedItems", id]) => Route::DeletedItem(id.to_string()),
            (ApiVersion::V1, ["identity", "b2xUserFlows"]) => Route::UserFlows,
            (ApiVersion::V1, ["identity", "b2xUserFlows", id]) => Route::UserFlow(id.to_string()),
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "userFlowIdentityProviders"]) => {
                Route::UserFlowProviders(id.to_string())
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "userFlowIdentityProviders", "$ref"]) => {
                Route::UserFlowProvidersRef(id.to_string())
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "userFlowIdentityProviders", p, "$ref"]) => {
                Route::UserFlowProviderRef(id.to_string(), p.to_string())
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "userAttributeAssignments"]) => {
                Route::UserFlowAssignments(id.to_string())
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "userAttributeAssignments", a]) => {
                Route::UserFlowAssignment(id.to_string(), a.to_string())
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "apiConnectorConfiguration", step])
                if super::user_flows::parse_step(step).is_some() =>
            {
                Route::UserFlowStep(id.to_string(), super::user_flows::parse_step(step).expect("checked"))
            }
            (ApiVersion::V1, ["identity", "b2xUserFlows", id, "apiConnectorConfiguration", step, "$ref"])
                if super::user_flows::parse_step(step).is_some() =>
            {
                Route::UserFlowStepRef(id.to_string(), super::user_flows::parse_step(step).expect("checked"))
            }
            (ApiVersion::V1, ["identity", "userFlowAttributes"]) => Route::UserFlowAttributes,
            (ApiVersion::V1, ["identity", "apiConnectors"]) => Route::ApiConnectors,
            (ApiVersion::V1, ["identity", "apiConnectors", id]) => Route::ApiConnector(id.to_string()),
            (ApiVersion::V1, ["identity", "conditionalAccess", "policies"]) => Route::ConditionalAccessPolicies,
            (ApiVersion::V1, ["identity", "conditionalAccess", "policies", id]) => Route::ConditionalAccessPolicy(id.to_string()),
            (ApiVersion::V1, ["identityGovernance", "entitlementManagement", rest @ ..]) => match rest {
                ["connectedOrganizations"] => Route::ConnectedOrganizations,
                ["connectedOrganizations", id] => Route::ConnectedOrganization(id.to_string()),
                ["accessPackages"] => Route::AccessPackages,
                ["accessPackages", id] => Route::AccessPackage(id.to_string()),
                ["assignmentPolicies"] => Route::AssignmentPolicies,
                ["assignmentPolicies", id] => Route::AssignmentPolicy(id.to_string()),
                ["settings"] => Route::EntitlementSettings,
                ["catalogs"] => Route::EntitlementCatalogs,
                ["catalogs", id, "resources"] => Route::CatalogResources(id.to_string()),
                ["resourceRequests"] => Route::ResourceRequests,
                ["accessPackages", id, "catalog"] => Route::AccessPackageCatalog(id.to_string()),
                ["accessPackages", id, "resourceRoleScopes"] => Route::ResourceRoleScopes(id.to_string()),
                ["accessPackages", id, "resourceRoleScopes", rs] => Route::ResourceRoleScope(id.to_string(), rs.to_string()),
                _ => return Err(GraphError::not_found(&segments.join("/"))),
            },
            _ => {
                let last = s.iter().rev().find(|x| !x.is_empty()).copied().unwrap_or_default();
                return Err(GraphError::new(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    format!(
                        "Resource not found for the segment '{last}'. (emulator: {} /{} is not a path it serves)",
                        version.as_str(),
                        s.join("/")
                    ),
                ));
            }
        };
        Ok(route)
    }

    /// The methods the route answers.
    pub fn methods(&self) -> &'static [Method] {
        const GET: &[Method] = &[Method::GET];
        const POST: &[Method] = &[Method::POST];
        const GET_POST: &[Method] = &[Method::GET, Method::POST];
        const GET_PATCH: &[Method] = &[Method::GET, Method::PATCH];
        const GET_PATCH_DELETE: &[Method] = &[Method::GET, Method::PATCH, Method::DELETE];
        const DELETE: &[Method] = &[Method::DELETE];
        const ALL: &[Method] = &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE];
        match self {
            Route::Invitations | Route::XtapDefaultReset | Route::GroupMembersRef(_) | Route::Batch => POST,
            Route::Users | Route::UsersCount | Route::UsersDelta | Route::UserMemberOf(_) => GET,
            Route::GroupsDelta => GET,
            Route::GroupMembers(_) | Route::Organization | Route::OrganizationById(_) | Route::DeletedItem(_) => GET,
            Route::Group(_) => &[Method::GET, Method::DELETE],
            Route::User(_) | Route::Partner(_) | Route::B2bPolicy(_) => GET_PATCH_DELETE,
            Route::Groups | Route::Partners | Route::B2bPolicies => GET_POST,
            Route::GroupMemberRef(..) => DELETE,
            Route::CrossTenantAccessPolicy | Route::XtapDefault | Route::AuthorizationPolicy => GET_PATCH,
            Route::PartnerIdentitySync(_) => ALL,
            Route::Mto => &[Method::GET, Method::PUT, Method::PATCH],
            Route::MtoTenants => GET_POST,
            Route::MtoTenant(_) => GET_PATCH_DELETE,
            Route::MtoJoinRequest => GET_PATCH,
            Route::IdentityProviders | Route::UserFlows => GET_POST,
            Route::IdentityProvider(_) => GET_PATCH_DELETE,
            Route::EmailMethod => GET_PATCH,
            Route::Federations | Route::FederationDomains(_) => GET_POST,
            Route::Federation(_) => &[Method::PATCH],
            Route::FederationConfiguration(_) => DELETE,
            Route::DeletedUsers => GET,
            Route::DeletedItemRestore(_) => POST,
            Route::UserFlow(_) => &[Method::GET, Method::DELETE],
            Route::UserFlowProviders(_) | Route::UserFlowAttributes | Route::UserFlowStep(..) => GET,
            Route::UserFlowProvidersRef(_) => POST,
            Route::UserFlowProviderRef(..) => DELETE,
            Route::UserFlowAssignments(_) | Route::ApiConnectors => GET_POST,
            Route::UserFlowAssignment(..) => &[Method::GET, Method::DELETE],
            Route::ApiConnector(_) => GET_PATCH_DELETE,
            Route::UserFlowStepRef(..) => &[Method::PUT, Method::DELETE],
            Route::ConditionalAccessPolicies => GET_POST,
            Route::ConditionalAccessPolicy(_) => GET_PATCH_DELETE,
            Route::ConnectedOrganizations | Route::AccessPackages | Route::AssignmentPolicies => GET_POST,
            Route::ConnectedOrganization(_) | Route::AccessPackage(_) => GET_PATCH_DELETE,
            Route::AssignmentPolicy(_) => &[Method::GET, Method::PUT, Method::DELETE],
            Route::EntitlementSettings => GET_PATCH,
            Route::EntitlementCatalogs | Route::CatalogResources(_) | Route::AccessPackageCatalog(_) => GET,
            Route::ResourceRequests => POST,
            Route::ResourceRoleScopes(_) => GET_POST,
            Route::ResourceRoleScope(..) => DELETE,
            Route::ServicePrincipals | Route::ServicePrincipal(_) => GET,
            Route::OrganizationBranding(_) => GET_PATCH_DELETE,
            Route::OrganizationBrandingImage(..) => &[Method::GET, Method::PUT, Method::DELETE],
        }
    }

    /// 405 unless the route answers `method`.
    pub fn check_method(&self, method: &Method) -> Result<(), GraphError> {
        let methods = self.methods();
        if methods.contains(method) {
            return Ok(());
        }
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request uri.",
        )
        .with_header("Allow", allow.join(", ")))
    }

    /// The path template, as the contract report names paths outside the OpenAPI subset.
    pub fn template(&self, version: ApiVersion) -> String {
        let t = match self {
            Route::Invitations => "/invitations",
            Route::Users => "/users",
            Route::UsersCount => "/users/$count",
            Route::UsersDelta => "/users/delta()",
            Route::User(_) => "/users/{user-id}",
            Route::UserMemberOf(_) => "/users/{user-id}/memberOf",
            Route::Groups => "/groups",
            Route::GroupsDelta => "/groups/delta()",
            Route::Group(_) => "/groups/{group-id}",
            Route::GroupMembers(_) => "/groups/{group-id}/members",
            Route::GroupMembersRef(_) => "/groups/{group-id}/members/$ref",
            Route::GroupMemberRef(..) => "/groups/{group-id}/members/{directoryObject-id}/$ref",
            Route::Organization => "/organization",
            Route::OrganizationById(_) => "/organization/{organization-id}",
            Route::OrganizationBranding(_) => "/organization/{organization-id}/branding",
            Route::OrganizationBrandingImage(_, _, "bannerLogo") => {
                "/organization/{organization-id}/branding/localizations/{organizationalBrandingLocalization-id}/bannerLogo"
            }
            Route::OrganizationBrandingImage(_, _, "squareLogo") => {
                "/organization/{organization-id}/branding/localizations/{organizationalBrandingLocalization-id}/squareLogo"
            }
            Route::OrganizationBrandingImage(..) => {
                "/organization/{organization-id}/branding/localizations/{organizationalBrandingLocalization-id}/backgroundImage"
            }
            Route::CrossTenantAccessPolicy => "/policies/crossTenantAccessPolicy",
            Route::XtapDefault => "/policies/crossTenantAccessPolicy/default",
            Route::XtapDefaultReset => "/policies/crossTenantAccessPolicy/default/resetToSystemDefault",
            Route::Partners => "/policies/crossTenantAccessPolicy/partners",
            Route::Partner(_) => {
                "/policies/crossTenantAccessPolicy/partners/{crossTenantAccessPolicyConfigurationPartner-tenantId}"
            }
            Route::PartnerIdentitySync(_) => {
                "/policies/crossTenantAccessPolicy/partners/{crossTenantAccessPolicyConfigurationPartner-tenantId}/identitySynchronization"
            }
            Route::AuthorizationPolicy => "/policies/authorizationPolicy",
            Route::B2bPolicies => "/policies/b2bManagementPolicies",
            Route::B2bPolicy(_) => "/policies/b2bManagementPolicies/{b2bManagementPolicy-id}",
            Route::Mto => "/tenantRelationships/multiTenantOrganization",
            Route::MtoTenants => "/tenantRelationships/multiTenantOrganization/tenants",
            Route::MtoTenant(_) => "/tenantRelationships/multiTenantOrganization/tenants/{multiTenantOrganizationMember-id}",
            Route::MtoJoinRequest => "/tenantRelationships/multiTenantOrganization/joinRequest",
            Route::IdentityProviders => "/identity/identityProviders",
            Route::IdentityProvider(_) => "/identity/identityProviders/{identityProviderBase-id}",
            Route::EmailMethod => "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email",
            Route::Federations => "/directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation",
            Route::Federation(_) => {
                "/directory/federationConfigurations/graph.samlOrWsFedExternalDomainFederation/{samlOrWsFedExternalDomainFederation-id}"
            }
            Route::FederationConfiguration(_) => "/directory/federationConfigurations/{identityProviderBase-id}",
            Route::FederationDomains(_) => {
                "/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation/{samlOrWsFedExternalDomainFederation-id}/domains"
            }
            Route::DeletedUsers => "/directory/deletedItems/microsoft.graph.user",
            Route::DeletedItemRestore(_) => "/directory/deletedItems/{directoryObject-id}/restore",
            Route::DeletedItem(_) => "/directory/deletedItems/{directoryObject-id}",
            Route::UserFlows => "/identity/b2xUserFlows",
            Route::UserFlow(_) => "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}",
            Route::UserFlowProviders(_) => "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/userFlowIdentityProviders",
            Route::UserFlowProvidersRef(_) => "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/userFlowIdentityProviders/$ref",
            Route::UserFlowProviderRef(..) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/userFlowIdentityProviders/{identityProviderBase-id}/$ref"
            }
            Route::UserFlowAssignments(_) => "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/userAttributeAssignments",
            Route::UserFlowAssignment(..) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/userAttributeAssignments/{identityUserFlowAttributeAssignment-id}"
            }
            Route::UserFlowAttributes => "/identity/userFlowAttributes",
            Route::ApiConnectors => "/identity/apiConnectors",
            Route::ApiConnector(_) => "/identity/apiConnectors/{identityApiConnector-id}",
            Route::UserFlowStep(_, crate::core::identity::ConnectorStep::PostFederationSignup) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/apiConnectorConfiguration/postFederationSignup"
            }
            Route::UserFlowStep(_, crate::core::identity::ConnectorStep::PostAttributeCollection) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/apiConnectorConfiguration/postAttributeCollection"
            }
            Route::UserFlowStepRef(_, crate::core::identity::ConnectorStep::PostFederationSignup) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/apiConnectorConfiguration/postFederationSignup/$ref"
            }
            Route::UserFlowStepRef(_, crate::core::identity::ConnectorStep::PostAttributeCollection) => {
                "/identity/b2xUserFlows/{b2xIdentityUserFlow-id}/apiConnectorConfiguration/postAttributeCollection/$ref"
            }
            Route::ConditionalAccessPolicies => "/identity/conditionalAccess/policies",
            Route::ConditionalAccessPolicy(_) => "/identity/conditionalAccess/policies/{conditionalAccessPolicy-id}",
            Route::ConnectedOrganizations => "/identityGovernance/entitlementManagement/connectedOrganizations",
            Route::ConnectedOrganization(_) => {
                "/identityGovernance/entitlementManagement/connectedOrganizations/{connectedOrganization-id}"
            }
            Route::AccessPackages => "/identityGovernance/entitlementManagement/accessPackages",
            Route::AccessPackage(_) => "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}",
            Route::AssignmentPolicies => "/identityGovernance/entitlementManagement/assignmentPolicies",
            Route::AssignmentPolicy(_) => {
                "/identityGovernance/entitlementManagement/assignmentPolicies/{accessPackageAssignmentPolicy-id}"
            }
            Route::EntitlementSettings => "/identityGovernance/entitlementManagement/settings",
            Route::EntitlementCatalogs => "/identityGovernance/entitlementManagement/catalogs",
            Route::CatalogResources(_) => {
                "/identityGovernance/entitlementManagement/catalogs/{accessPackageCatalog-id}/resources"
            }
            Route::ResourceRequests => "/identityGovernance/entitlementManagement/resourceRequests",
            Route::AccessPackageCatalog(_) => {
                "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}/catalog"
            }
            Route::ResourceRoleScopes(_) => {
                "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}/resourceRoleScopes"
            }
            Route::ResourceRoleScope(..) => {
                "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}/resourceRoleScopes/{accessPackageResourceRoleScope-id}"
            }
            Route::ServicePrincipals => "/servicePrincipals",
            Route::ServicePrincipal(_) => "/servicePrincipals/{servicePrincipal-id}",
            Route::Batch => "/$batch",
        };
        format!("/{}{t}", version.as_str())
    }

    /// Writes count against Graph's write quotas.
    pub fn is_write(method: &Method) -> bool {
        method != Method::GET && method != Method::HEAD
    }
}

/// Splits a raw path (`/v1.0/users/a%40b`) into its version and decoded segments.
pub fn split_path(raw: &str) -> Option<(ApiVersion, Vec<String>)> {
    let mut parts = raw.trim_start_matches('/').split('/');
    let version = ApiVersion::parse(parts.next()?)?;
    let segments: Vec<String> = parts
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    Some((version, segments))
}

/// Decodes a query string (`$filter=userType%20eq%20'Guest'&$top=5`).
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Result<Route, GraphError> {
        let (v, s) = split_path(path).unwrap();
        Route::resolve(v, &s)
    }

    #[test]
    fn paths_resolve() {
        assert_eq!(route("/v1.0/users/delta()").unwrap(), Route::UsersDelta);
        assert_eq!(route("/v1.0/users/delta").unwrap(), Route::UsersDelta);
        assert_eq!(route("/v1.0/groups/delta").unwrap(), Route::GroupsDelta);
        assert_eq!(route("/v1.0/groups/delta()").unwrap(), Route::GroupsDelta);
        assert_eq!(route("/v1.0/users/a_b.com%23EXT%23@c").unwrap(), Route::User("a_b.com#EXT#@c".into()));
        assert_eq!(route("/v1.0/%24batch").unwrap(), Route::Batch);
        assert_eq!(route("/beta/policies/b2bManagementPolicies").unwrap(), Route::B2bPolicies);
        assert_eq!(route("/v1.0/policies/b2bManagementPolicies").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(route("/v1.0/nothing").unwrap_err().status, StatusCode::NOT_FOUND);
        assert!(split_path("/v2.0/users").is_none());
        let e = Route::Invitations.check_method(&Method::GET).unwrap_err();
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
