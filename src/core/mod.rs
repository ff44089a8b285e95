//! The Kubernetes-free, HTTP-free core: the desired-state model, the product rules, and the planner.
//! Nothing here performs IO; everything is a value that tests can build and compare.

pub mod conditional_access;
pub mod diff;
pub mod entitlement;
pub mod explain;
pub mod identity;
pub mod impact;
pub mod model;
pub mod mto;
pub mod operation;
pub mod plan;
pub mod policy;
pub mod resolved;
pub mod settings;
pub mod sync;
pub mod target;
pub mod tenant_profile;
pub mod validate;
