//! The CRDs' own schema applied to each document before it is converted, so `entente plan` refuses what
//! `kubectl apply` refuses: unknown fields at every depth (inside Kubernetes-typed sub-objects such as
//! secret references too), enums, lengths, item counts and bounds, plus `metadata` as the API
//! server checks it. The schemas are the generated ones (`crate::api::crds`), so the two cannot drift;
//! CEL rules (`x-kubernetes-validations`) are checked by the conversion's own validation.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::core::model::Kind;

/// Each kind's `openAPIV3Schema`, from the generated CRDs.
static SCHEMAS: LazyLock<BTreeMap<String, Value>> = LazyLock::new(|| {
    crate::api::crds()
        .into_iter()
        .filter_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?.clone();
            Some((kind, serde_json::to_value(schema).ok()?))
        })
        .collect()
});

/// The fields of `metadata` the API server knows.
const METADATA: [&str; 15] = [
    "name",
    "namespace",
    "labels",
    "annotations",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "ownerReferences",
    "managedFields",
    "selfLink",
];

/// Every way `doc` breaks its kind's schema, as (field path, message); empty when it fits.
pub fn check(kind: Kind, doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(meta) = doc.get("metadata") {
        check_metadata(meta, &mut out);
    }
    let Some(schema) = SCHEMAS.get(kind.as_str()) else { return out };
    if let (Some(spec), Some(spec_schema)) = (doc.get("spec"), schema.pointer("/properties/spec")) {
        walk(spec, spec_schema, "spec", &mut out);
    }
    out
}

fn check_metadata(meta: &Value, out: &mut Vec<(String, String)>) {
    let Value::Object(m) = meta else {
        out.push(("metadata".into(), "must be a mapping (name, namespace, labels, annotations)".into()));
        return;
    };
    for (key, value) in m {
        let path = format!("metadata.{key}");
        if !METADATA.contains(&key.as_str()) {
            let known = METADATA[..4].iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            out.push((path, format!("unknown field `{key}`, expected one of {known} (or another field of ObjectMeta)")));
            continue;
        }
        match key.as_str() {
            "name" | "namespace" if !value.is_string() => out.push((path, format!("must be a string, not {}", type_name(value)))),
            "namespace" => {
                if let Some(Err(why)) = value.as_str().map(dns_label) {
                    out.push((path, why));
                }
            }
            "labels" | "annotations" => match value {
                Value::Object(entries) => {
                    for (k, v) in entries.iter().filter(|(_, v)| !v.is_string()) {
                        out.push((format!("{path}.{k}"), format!("must be a string, not {}", type_name(v))));
                    }
                }
                Value::Null => {}
                other => out.push((path, format!("must be a mapping of strings, not {}", type_name(other)))),
            },
            _ => {}
        }
    }
}

/// A Kubernetes namespace name: a DNS label (RFC 1123).
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid namespace: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

fn walk(v: &Value, s: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if v.is_null() {
        return;
    }
    let secret = holds_secret(path);
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        // serde's wording, which the conversion would have used.
        let list = allowed.iter().map(|a| format!("`{}`", a.as_str().map_or_else(|| a.to_string(), str::to_string)));
        let shown = match v.as_str() {
            _ if secret => "(value hidden: this field holds a secret)".to_string(),
            Some(text) => format!("`{text}`"),
            None => v.to_string(),
        };
        out.push((path.into(), format!("unknown variant {shown}, expected one of {}", list.collect::<Vec<_>>().join(", "))));
        return;
    }
    match v {
        Value::Object(m) => walk_object(m, s, path, out),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64).filter(|max| n > *max) {
                out.push((path.into(), format!("{n} items, more than the {max} allowed")));
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64).filter(|min| n < *min) {
                out.push((path.into(), format!("{n} item(s), fewer than the {min} required")));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64).filter(|max| n > *max) {
                out.push((path.into(), format!("{n} characters, more than the {max} allowed")));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64).filter(|min| n < *min) {
                out.push((path.into(), format!("{n} character(s), fewer than the {min} required")));
            }
            // `pattern`s are left to the conversion's validators, which say what the pattern means
            // (`#RRGGBB`); a test holds each pattern to one.
        }
        Value::Number(number) => {
            if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), number.as_f64())
                && x < min
            {
                out.push((path.into(), format!("{number} is less than the minimum {min}")));
            }
        }
        _ => {}
    }
}

fn walk_object(m: &Map<String, Value>, s: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let preserve = s.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    match s.get("properties").and_then(Value::as_object) {
        Some(properties) => {
            for (key, value) in m {
                let child = format!("{path}.{key}");
                match properties.get(key) {
                    Some(child_schema) => walk(value, child_schema, &child, out),
                    None if !preserve && s.get("additionalProperties").is_none() => {
                        let known = properties.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                        out.push((child, format!("unknown field `{key}`, expected one of {known}")));
                    }
                    None => {}
                }
            }
        }
        None => {
            if let Some(values) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (key, value) in m {
                    walk(value, values, &format!("{path}.{key}"), out);
                }
            }
        }
    }
}

/// Whether the field holds or names a secret, so its value is never repeated.
pub fn holds_secret(path: &str) -> bool {
    const WORDS: [&str; 5] = ["secret", "password", "token", "credential", "privatekey"];
    let lower = path.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Where the CRDs carry a `pattern` (checked by the conversion, not here).
    fn patterns(s: &Value, path: &str, out: &mut Vec<String>) {
        if s.get("pattern").is_some() {
            out.push(path.to_string());
        }
        for (k, child) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
            patterns(child, &format!("{path}.{k}"), out);
        }
        if let Some(items) = s.get("items") {
            patterns(items, &format!("{path}[]"), out);
        }
    }

    #[test]
    fn every_crd_pattern_has_a_conversion_validator() {
        let mut found = Vec::new();
        for (kind, schema) in SCHEMAS.iter() {
            patterns(schema, kind, &mut found);
        }
        // A new pattern needs a validator in the conversion that says what it means; then list it here.
        assert_eq!(found, ["Tenant.spec.branding.backgroundColor"]);
        let doc = json!({"metadata": {"name": "x"}, "spec": {"tenantId": "t", "initialDomain": "d", "branding": {"backgroundColor": "blue"}}});
        let refused = crate::manifest::load_str(&[("t.yaml", &serde_json::to_string(&json!({"apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": doc["metadata"], "spec": doc["spec"]})).unwrap())]);
        assert!(format!("{:?}", refused.err()).contains("spec.branding.backgroundColor"));
    }

    #[test]
    fn the_crd_schema_refuses_unknown_fields_at_every_depth_and_its_bounds() {
        let doc = json!({
            "metadata": {"name": "x", "labelz": {"a": "b"}, "namespace": "Team_A"},
            "spec": {
                "tenantId": "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01",
                "initialDomain": "contoso.onmicrosoft.com",
                "backend": {"type": "graph", "graph": {"clientId": "c", "clientSecretRef": {"name": "s", "key": "k", "value": "GOCSPX-hunter2"}}}
            }
        });
        let found = check(Kind::Tenant, &doc);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"metadata.labelz"), "{found:?}");
        assert!(paths.contains(&"metadata.namespace"), "{found:?}");
        assert!(paths.contains(&"spec.backend.graph.clientSecretRef.value"), "{found:?}");
        assert!(!format!("{found:?}").contains("hunter2"), "{found:?}");
        let fine = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"tenantId": "t", "initialDomain": "d"}});
        assert_eq!(check(Kind::Tenant, &fine), vec![]);
    }
}
