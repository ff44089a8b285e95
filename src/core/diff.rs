//! Field-level differences between two views of an object, for plan output.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One field that differs: its dotted path and the values before (directory) and after (manifests).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// Flattens objects into dotted paths; arrays and scalars are leaves; empty objects, empty arrays and nulls vanish.
pub fn flatten(value: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, child, out);
                }
            }
            Value::Null => {}
            Value::Array(a) if a.is_empty() => {}
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// The fields whose values differ between `from` and `to`, in path order.
pub fn diff(from: &Value, to: &Value) -> Vec<FieldChange> {
    let a = flatten(from);
    let b = flatten(to);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| FieldChange { path: p.clone(), from: a.get(p).cloned(), to: b.get(p).cloned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_changed_added_and_removed_leaves() {
        let a = json!({"x": {"y": 1, "z": [1, 2]}, "gone": true});
        let b = json!({"x": {"y": 2, "z": [1, 2]}, "new": "v"});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["gone", "new", "x.y"]);
        assert_eq!(d[2].from, Some(json!(1)));
        assert_eq!(d[2].to, Some(json!(2)));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn null_is_absent() {
        assert!(diff(&json!({"a": null}), &json!({})).is_empty());
    }
}
