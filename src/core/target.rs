//! `--target Kind/namespace/name`: which objects a run is narrowed to, terraform's `-target`. The plan
//! (`plan::narrow`) keeps the Tenant change a targeted object rests on, and neither writes nor prunes
//! objects outside the targets.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::model::{Kind, ObjectRef};

/// One `--target`: a kind, a namespace and a name, where the name may be `*` (every object of that
/// kind in that namespace).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn matches(&self, o: &ObjectRef) -> bool {
        o.kind == self.kind && o.namespace == self.namespace && (self.name == "*" || o.name == self.name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

impl FromStr for Target {
    type Err = String;

    /// `Kind/namespace/name`, or `Kind/name` in the `default` namespace; the kind in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (kind, namespace, name) = match parts.as_slice() {
            [kind, name] => (*kind, "default", *name),
            [kind, namespace, name] => (*kind, *namespace, *name),
            _ => return Err(format!("{s:?} is not Kind/namespace/name (or Kind/name in the default namespace)")),
        };
        let kind = Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(kind)).ok_or_else(|| {
            let kinds = Kind::ALL.map(Kind::as_str).join(", ");
            format!("{kind:?} in {s:?} is not a kind entente manages ({kinds})")
        })?;
        if namespace.is_empty() || name.is_empty() {
            return Err(format!("{s:?} has an empty namespace or name"));
        }
        Ok(Target { kind, namespace: namespace.to_string(), name: name.to_string() })
    }
}

/// The targets of one run; empty means every object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets(pub BTreeSet<Target>);

impl Targets {
    pub fn is_everything(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, o: &ObjectRef) -> bool {
        self.is_everything() || self.0.iter().any(|t| t.matches(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_namespace_name_in_any_case_and_defaults_the_namespace() {
        let t: Target = "guestinvitation/team-a/alice".parse().unwrap();
        assert_eq!(t.to_string(), "GuestInvitation/team-a/alice");
        let t: Target = "Tenant/contoso".parse().unwrap();
        assert_eq!(t.to_string(), "Tenant/default/contoso");
        assert!("Guest/default/alice".parse::<Target>().unwrap_err().contains("not a kind entente manages"));
        assert!("GuestInvitation".parse::<Target>().is_err());
        assert!("GuestInvitation//x".parse::<Target>().is_err());
    }

    #[test]
    fn a_star_matches_every_name_of_the_kind_in_the_namespace() {
        let t: Target = "GuestInvitation/team-a/*".parse().unwrap();
        assert!(t.matches(&ObjectRef::new(Kind::GuestInvitation, "team-a", "bob")));
        assert!(!t.matches(&ObjectRef::new(Kind::GuestInvitation, "team-b", "bob")));
        assert!(!t.matches(&ObjectRef::new(Kind::Tenant, "team-a", "bob")));
    }
}
