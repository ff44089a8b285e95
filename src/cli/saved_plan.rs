//! `plan --out FILE` and `apply --plan FILE`: apply exactly what was reviewed.
//!
//! The file holds what the reviewer saw of each change that writes (object, action, field diff, notes,
//! refusal, invitee; never an operation's values, so no secret), and how the plan was made (manifest
//! paths, prune, targets). `apply --plan` reads the manifests and the directory again and plans anew:
//! every saved change must come out exactly as saved, or nothing is applied (exit 2); changes that
//! appeared since are left for the next plan, not applied unreviewed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::model::ObjectRef;
use crate::core::plan::{Change, Plan};

const FORMAT: &str = "entente-plan/1";
/// A plan file larger than this is not one entente wrote.
const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// How the plan was made, so that `apply --plan` plans the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRun {
    /// The `-f` paths as given (relative paths are read from the working directory of the apply).
    pub paths: Vec<PathBuf>,
    pub prune: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prune: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default)]
    pub no_sync: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    pub format: String,
    /// The entente that wrote it (`--version`).
    pub entente: String,
    pub created: String,
    pub run: SavedRun,
    /// The plan's last line, for a reader of the file.
    pub summary: String,
    /// Every change that writes, as the plan showed it.
    pub changes: Vec<Value>,
}

impl SavedPlan {
    pub fn new(plan: &Plan, run: SavedRun, summary: String) -> Self {
        SavedPlan {
            format: FORMAT.to_string(),
            entente: super::VERSION.to_string(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run,
            summary,
            changes: plan.changes.iter().filter(|c| c.action.writes()).map(shown).collect(),
        }
    }

    /// Written whole or not at all: a file beside the target, then renamed over it.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().map_or_else(|| "plan".into(), |n| n.to_string_lossy().into_owned())
        ));
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        std::fs::write(&tmp, bytes).map_err(|e| anyhow::anyhow!("cannot write plan file {}: {e}", path.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("cannot write plan file {}: {e}", path.display()))
    }

    pub fn read(path: &Path) -> Result<SavedPlan, String> {
        let name = path.display();
        let bytes = crate::files::read_regular(path, MAX_BYTES).map_err(|e| format!("cannot read plan file {name}: {e}"))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("plan file {name} is not a plan written by `entente plan --out`: {e}"))?;
        match v.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("plan file {name} has format {other:?}; this entente reads {FORMAT:?}")),
            None => return Err(format!("plan file {name} is not a plan written by `entente plan --out` (no format)")),
        }
        serde_json::from_value(v).map_err(|e| format!("plan file {name}: {e}"))
    }

    /// Narrows `fresh` (planned now) to the saved changes. `Err` lists every saved change that does not
    /// come out the same any more; `Ok` lists the changes that appeared since and were left out.
    pub fn hold_to(&self, fresh: &mut Plan) -> Result<Vec<ObjectRef>, Vec<String>> {
        let saved: BTreeMap<String, &Value> = self.changes.iter().map(|c| (key_of(c), c)).collect();
        let now: BTreeMap<String, Value> = fresh.changes.iter().map(|c| (key(c), shown(c))).collect();
        let mut stale = Vec::new();
        for (k, was) in &saved {
            let object = was.get("object").map_or_else(|| k.clone(), object_name);
            let action = was.get("action").and_then(Value::as_str).unwrap_or("?");
            match now.get(k) {
                None => stale.push(format!("{object}: planned to {action}; now it is not in the plan")),
                Some(is) if is != *was => {
                    let now_action = is.get("action").and_then(Value::as_str).unwrap_or("?");
                    if now_action != action {
                        stale.push(format!("{object}: planned to {action}; now it would {now_action}"));
                    } else {
                        stale.push(format!("{object}: planned to {action}; now {}", what_differs(was, is)));
                    }
                }
                Some(_) => {}
            }
        }
        if !stale.is_empty() {
            return Err(stale);
        }
        let mut left_out = Vec::new();
        fresh.changes.retain(|c| {
            let reviewed = !c.action.writes() || saved.contains_key(&key(c));
            if !reviewed {
                left_out.push(c.object.clone());
            }
            reviewed
        });
        Ok(left_out)
    }
}

/// A change as plans show it (the JSON of `plan -o json`).
fn shown(c: &Change) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// The first thing a reviewer would notice between a saved change and the same change planned now.
fn what_differs(was: &Value, is: &Value) -> String {
    let fields = |v: &Value| -> BTreeMap<String, Value> {
        v.get("diff")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| (d.get("path").and_then(Value::as_str).unwrap_or_default().to_string(), d.clone()))
            .collect()
    };
    let (before, after) = (fields(was), fields(is));
    let to = |d: Option<&Value>| d.and_then(|d| d.get("to")).map_or_else(|| "nothing".to_string(), Value::to_string);
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| format!("{p} would be {} (reviewed: {})", to(after.get(p)), to(before.get(p))))
        .collect();
    if !changed.is_empty() {
        return changed.join("; ");
    }
    for (field, what) in
        [("refusal", "its refusal"), ("note", "its note"), ("subject", "its invitee"), ("drift", "whether it is drift")]
    {
        if was.get(field) != is.get(field) {
            let now = is.get(field).map_or_else(|| "none".to_string(), Value::to_string);
            return format!("{what} is different: {now}");
        }
    }
    "it is different".to_string()
}

fn key(c: &Change) -> String {
    format!("{}\u{0}{}", c.tenant_id.to_ascii_lowercase(), c.object)
}

fn key_of(v: &Value) -> String {
    let tenant = v.get("tenantId").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    format!("{tenant}\u{0}{}", v.get("object").map_or_else(String::new, object_name))
}

fn object_name(v: &Value) -> String {
    serde_json::from_value::<ObjectRef>(v.clone()).map_or_else(|_| v.to_string(), |o| o.to_string())
}
