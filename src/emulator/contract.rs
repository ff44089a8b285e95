//! Contract validation against the OpenAPI 3.0 subset of Graph v1.0 (graph-contract Part 3).
//!
//! `Contract` finds the operation of a request (method and path against the subset's path
//! templates) and validates request and response bodies against its schemas. The validator is
//! written for this document, so it knows its conventions:
//! - `$ref` is resolved anywhere (siblings of a `$ref` are ignored, as OAS 3.0 says);
//! - `nullable: true` admits `null`; without it `null` is a type error;
//! - `allOf` (inheritance), `oneOf`, and `anyOf`. Microsoft's generator writes a nullable reference
//!   as `anyOf: [{$ref: X}, {type: object, nullable: true}]`; read literally the second branch admits
//!   any object and nothing nested would ever be checked, so it is read as meant: `null`, or an `X`;
//! - `discriminator`: an object whose `@odata.type` the mapping names is also checked against that type;
//! - `enum`, `pattern` (flags enums are patterns here), `required`, `items`, `minItems`/`maxItems`,
//!   `minimum`/`maximum`, `additionalProperties`;
//! - optionally (on by default in the emulator) properties the schema does not define are reported:
//!   the subset's schemas leave objects open, so a misspelled property would otherwise pass. Keys
//!   holding `@` (OData annotations such as `@odata.context`, `manager@delta`) are always allowed.
//!
//! Paths outside the subset (groups, organization, the beta domain-list policy, …) are not
//! violations: `operation` answers `None` and the caller reports them as "outside subset".
//!
//! **Extensions.** The reference subset stops short of some operations entente needs (company branding,
//! the email one-time passcode method, federation domains, user flow attributes and API connectors,
//! access package resources). `contract/*.yaml` are entente's own OpenAPI fragments for them, transcribed
//! from the public Graph v1.0 reference (each names its pages). Every loaded contract is the reference
//! plus these fragments, so the emulator checks those operations as strictly as the rest; a fragment
//! may only add paths, schemas and (under `x-entente-properties`) properties of the reference's
//! schemas, never redefine one of the reference's.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use http::Method;
use regex::Regex;
use serde_json::{Map, Value};

use super::EmulatorError;

/// The copy of `graph-v1.0-openapi-subset.yaml` built into entente (sha256 `4d7e71aa…b524`, as the
/// contract document states), used when no other file is given or found.
pub const EMBEDDED_OPENAPI: &str = include_str!("graph-v1.0-openapi-subset.yaml");

/// entente's additions to the reference (see the module comment): name and text of each fragment.
pub const EXTENSIONS: &[(&str, &str)] = &[
    ("contract/identity.yaml", include_str!("contract/identity.yaml")),
    ("contract/user_flows.yaml", include_str!("contract/user_flows.yaml")),
    ("contract/entitlement.yaml", include_str!("contract/entitlement.yaml")),
    ("contract/organization.yaml", include_str!("contract/organization.yaml")),
    ("contract/directory.yaml", include_str!("contract/directory.yaml")),
    ("contract/groups.yaml", include_str!("contract/groups.yaml")),
];

/// Where the shared reference lives beside the crate, when it does.
pub fn default_openapi_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/graph-v1.0-openapi-subset.yaml")
}

/// One problem found in a body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// JSON pointer into the body (`""` for the body itself).
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() { "(body)" } else { &self.pointer };
        write!(f, "{at}: {}", self.message)
    }
}

/// Validation options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Report object properties the schema does not define.
    pub unknown_properties: bool,
}

/// An operation of the subset.
#[derive(Clone, Debug)]
pub struct Operation<'a> {
    /// The subset's path template, e.g. `/users/{user-id}`.
    pub template: &'a str,
    pub operation_id: String,
    op: &'a Value,
}

/// What the subset documents for one response status.
#[derive(Clone, Debug)]
pub enum ResponseSpec<'a> {
    /// No body documented (e.g. 204).
    NoBody,
    /// A body of this media type and schema.
    Body { media_type: &'a str, schema: &'a Value },
}

/// Whether a media type matches a documented one (`image/*` matches `image/png`; parameters ignored).
pub fn media_type_matches(documented: &str, actual: &str) -> bool {
    let bare = |m: &str| m.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (documented, actual) = (bare(documented), bare(actual));
    match documented.strip_suffix("/*") {
        Some(kind) => actual.split('/').next() == Some(kind),
        None => documented == actual,
    }
}

fn path_entry(template: &str, item: Value) -> PathEntry {
    PathEntry {
        template: template.to_string(),
        segments: template
            .trim_start_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') && s.ends_with('}') { None } else { Some(normalize_segment(s)) })
            .collect(),
        item,
    }
}

struct PathEntry {
    template: String,
    segments: Vec<Option<String>>,
    item: Value,
}

/// The loaded OpenAPI document.
pub struct Contract {
    doc: Value,
    paths: Vec<PathEntry>,
    regexes: Mutex<HashMap<String, Option<Regex>>>,
    source: String,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract").field("source", &self.source).field("paths", &self.paths.len()).finish_non_exhaustive()
    }
}

impl Contract {
    /// The copy built into entente.
    pub fn embedded() -> Result<Self, EmulatorError> {
        Self::from_yaml(EMBEDDED_OPENAPI, "built-in graph-v1.0-openapi-subset.yaml")
    }

    /// `path` if given; else the shared reference beside the crate if present; else the built-in copy.
    pub fn load(path: Option<&Path>) -> Result<Self, EmulatorError> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(default_openapi_path()).filter(|p| p.is_file()),
        };
        match path {
            Some(p) => {
                let text = crate::files::read_regular_text(&p, crate::files::MAX_MANIFEST_BYTES)
                    .map_err(|e| EmulatorError::Config(format!("reading the OpenAPI document {}: {e}", p.display())))?;
                Self::from_yaml(&text, &p.display().to_string())
            }
            None => Self::embedded(),
        }
    }

    pub fn from_yaml(text: &str, source: &str) -> Result<Self, EmulatorError> {
        // The document reuses responses through YAML anchors far more than the default alias budget allows.
        let options = serde_saphyr::options! { budget: serde_saphyr::budget! { enforce_alias_anchor_ratio: false } };
        let doc: Value = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| EmulatorError::Config(format!("parsing the OpenAPI document {source}: {e}")))?;
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Err(EmulatorError::Config(format!("{source} has no paths: not an OpenAPI document")));
        };
        let paths = paths.iter().map(|(template, item)| path_entry(template, item.clone())).collect();
        let mut contract = Self { doc, paths, regexes: Mutex::new(HashMap::new()), source: source.to_string() };
        for (name, text) in EXTENSIONS {
            contract.extend(text, name)?;
        }
        Ok(contract)
    }

    /// Adds a fragment's paths and schemas. A fragment that redefines a path or schema the document
    /// already has is refused: the reference always wins, and a fragment never silently shadows it.
    fn extend(&mut self, text: &str, name: &str) -> Result<(), EmulatorError> {
        let fragment: Value = serde_saphyr::from_str(text)
            .map_err(|e| EmulatorError::Config(format!("parsing the contract extension {name}: {e}")))?;
        let new_paths = fragment.get("paths").and_then(Value::as_object).cloned().unwrap_or_default();
        let new_schemas = fragment.pointer("/components/schemas").and_then(Value::as_object).cloned().unwrap_or_default();
        let schemas = self
            .doc
            .as_object_mut()
            .and_then(|d| d.entry("components").or_insert_with(|| Value::Object(Map::new())).as_object_mut())
            .and_then(|c| c.entry("schemas").or_insert_with(|| Value::Object(Map::new())).as_object_mut())
            .ok_or_else(|| EmulatorError::Config(format!("{}: components.schemas is not an object", self.source)))?;
        for (schema, body) in new_schemas {
            if schemas.contains_key(&schema) {
                return Err(EmulatorError::Config(format!("contract extension {name} redefines the schema {schema}")));
            }
            schemas.insert(schema, body);
        }
        // `x-entente-properties`: properties the reference's own schemas lack (e.g. `accessPackage.catalog`,
        // which creating a package requires). Added beside the schema's own, never replacing one.
        let additions = fragment.get("x-entente-properties").and_then(Value::as_object).cloned().unwrap_or_default();
        for (schema, props) in additions {
            let props = props.as_object().cloned().unwrap_or_default();
            let target = schemas.get_mut(&schema).ok_or_else(|| {
                EmulatorError::Config(format!("contract extension {name} adds properties to {schema}, which does not exist"))
            })?;
            // An `allOf` schema's own properties are in its last member (the first is the base type).
            let own = match target.get_mut("allOf").and_then(Value::as_array_mut) {
                Some(all) => all.last_mut().ok_or_else(|| EmulatorError::Config(format!("{schema} has an empty allOf")))?,
                None => target,
            };
            let existing = own
                .as_object_mut()
                .map(|o| o.entry("properties").or_insert_with(|| Value::Object(Map::new())))
                .and_then(Value::as_object_mut)
                .ok_or_else(|| EmulatorError::Config(format!("{schema} is not an object schema")))?;
            for (prop, body) in props {
                if existing.contains_key(&prop) {
                    return Err(EmulatorError::Config(format!(
                        "contract extension {name} redefines the property {prop} of {schema}"
                    )));
                }
                existing.insert(prop, body);
            }
        }
        for (template, item) in new_paths {
            if self.paths.iter().any(|p| p.template == template) {
                return Err(EmulatorError::Config(format!("contract extension {name} redefines the path {template}")));
            }
            self.paths.push(path_entry(&template, item));
        }
        if !self.source.contains(" + entente extensions") {
            self.source.push_str(" + entente extensions");
        }
        Ok(())
    }

    /// Where the document came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The operation `method path` (a path relative to the version root, e.g. `/users/abc`, or the token
    /// endpoint's `/{tenant}/oauth2/v2.0/token`), or `None` when the subset does not have it.
    pub fn operation(&self, method: &Method, path: &str) -> Option<Operation<'_>> {
        let segments: Vec<String> = path.trim_start_matches('/').split('/').map(normalize_segment).collect();
        let best = self
            .paths
            .iter()
            .filter(|p| {
                p.segments.len() == segments.len()
                    && p.segments.iter().zip(&segments).all(|(t, s)| t.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(s)))
            })
            .max_by_key(|p| p.segments.iter().filter(|s| s.is_some()).count())?;
        let op = best.item.get(method.as_str().to_ascii_lowercase())?;
        let operation_id = op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_string();
        Some(Operation { template: &best.template, operation_id, op })
    }

    /// The schema of the operation's request body (JSON or form), if it has one.
    pub fn request_schema<'a>(&'a self, op: &Operation<'a>) -> Option<(&'a str, &'a Value)> {
        let body = self.deref(op.op.get("requestBody")?);
        let content = body.get("content")?.as_object()?;
        content.iter().find_map(|(media, c)| c.get("schema").map(|s| (media.as_str(), s)))
    }

    /// Every media type the operation's request body documents (e.g. `image/png` for an image stream).
    pub fn request_media_types<'a>(&'a self, op: &Operation<'a>) -> Vec<&'a str> {
        let Some(body) = op.op.get("requestBody").map(|b| self.deref(b)) else { return vec![] };
        body.get("content").and_then(Value::as_object).map(|c| c.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// Every media type the operation documents for `status` (resolved as `response_spec` does).
    pub fn response_media_types<'a>(&'a self, op: &Operation<'a>, status: u16) -> Vec<&'a str> {
        let Some(responses) = op.op.get("responses").and_then(Value::as_object) else { return vec![] };
        let (exact, range) = (status.to_string(), format!("{}XX", status / 100));
        let Some(response) = [exact.as_str(), range.as_str(), "default"].iter().find_map(|k| responses.get(*k)) else {
            return vec![];
        };
        let content = self.deref(response).get("content").and_then(Value::as_object);
        content.map(|c| c.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// What the operation documents for `status`: an exact code, else `4XX`/`5XX`, else `default`.
    /// `Err` when the status is not documented at all.
    pub fn response_spec<'a>(&'a self, op: &Operation<'a>, status: u16) -> Result<ResponseSpec<'a>, String> {
        let responses = op.op.get("responses").and_then(Value::as_object).ok_or("the operation documents no responses")?;
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = [exact.as_str(), range.as_str(), "default"].iter().find_map(|k| responses.get(*k)).ok_or_else(|| {
            let documented: Vec<&str> = responses.keys().map(String::as_str).collect();
            format!("status {status} is not documented for this operation (documented: {})", documented.join(", "))
        })?;
        let response = self.deref(response);
        match response.get("content").and_then(Value::as_object) {
            Some(content) if !content.is_empty() => {
                let (media, c) = content.iter().next().expect("not empty");
                Ok(c.get("schema").map_or(ResponseSpec::NoBody, |schema| ResponseSpec::Body { media_type: media, schema }))
            }
            _ => Ok(ResponseSpec::NoBody),
        }
    }

    /// A component schema by name (`microsoft.graph.invitation`, `BatchRequest`, …).
    pub fn component(&self, name: &str) -> Option<&Value> {
        self.doc.get("components")?.get("schemas")?.get(name)
    }

    /// Validates `value` against the component schema `name`.
    pub fn validate_component(&self, name: &str, value: &Value, options: Options) -> Result<Vec<Finding>, EmulatorError> {
        let schema =
            self.component(name).ok_or_else(|| EmulatorError::Config(format!("the OpenAPI document has no schema {name:?}")))?;
        Ok(self.validate(schema, value, options))
    }

    /// Validates `value` against `schema` (a schema of this document).
    pub fn validate(&self, schema: &Value, value: &Value, options: Options) -> Vec<Finding> {
        let mut out = Vec::new();
        self.instance(schema, value, "", options, &mut out, 0);
        // A derived type is checked with its base: the same finding can come twice.
        let mut seen = std::collections::HashSet::new();
        out.retain(|f| seen.insert((f.pointer.clone(), f.message.clone())));
        out
    }

    fn deref<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix('#').and_then(|p| self.doc.pointer(p)) {
                    Some(target) => v = target,
                    None => return v,
                },
                None => return v,
            }
        }
        v
    }

    /// Validates one instance (the body, a property value, an array item): the schema, the type its
    /// `@odata.type` names, and unknown properties.
    fn instance(&self, schema: &Value, v: &Value, at: &str, o: Options, out: &mut Vec<Finding>, depth: usize) {
        if depth > 64 {
            return;
        }
        self.node(schema, v, at, o, out, depth);
        let mapped = v.get("@odata.type").and_then(Value::as_str).and_then(|t| self.discriminated(schema, t, 0));
        if let Some(m) = mapped {
            self.node(m, v, at, o, out, depth);
        }
        if o.unknown_properties
            && let Value::Object(map) = v
        {
            let mut known = Vec::new();
            let mut open = false;
            self.known_properties(schema, &mut known, &mut open, 0);
            if let Some(m) = mapped {
                self.known_properties(m, &mut known, &mut open, 0);
            }
            if !open && !known.is_empty() {
                for key in map.keys().filter(|k| !k.contains('@') && !known.contains(&k.as_str())) {
                    out.push(Finding {
                        pointer: format!("{at}/{}", escape(key)),
                        message: format!("property {key:?} is not defined by the schema"),
                    });
                }
            }
        }
    }

    /// The schema the discriminator of `schema` (or of its `allOf`/`anyOf` parts) maps `odata_type` to.
    fn discriminated<'a>(&'a self, schema: &'a Value, odata_type: &str, depth: usize) -> Option<&'a Value> {
        if depth > 16 {
            return None;
        }
        let s = self.deref(schema);
        if let Some(target) = s.get("discriminator").and_then(|d| d.get("mapping")).and_then(|m| m.get(odata_type)) {
            let target = target.as_str()?;
            return target.strip_prefix('#').and_then(|p| self.doc.pointer(p));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for sub in s.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(t) = self.discriminated(sub, odata_type, depth + 1) {
                    return Some(t);
                }
            }
        }
        None
    }

    fn known_properties<'a>(&'a self, schema: &'a Value, known: &mut Vec<&'a str>, open: &mut bool, depth: usize) {
        if depth > 32 {
            return;
        }
        if schema.get("$ref").and_then(Value::as_str).is_some_and(|r| OPEN_SCHEMAS.iter().any(|o| r.ends_with(o))) {
            *open = true;
            return;
        }
        let s = self.deref(schema);
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            known.extend(props.keys().map(String::as_str));
        }
        match s.get("additionalProperties") {
            Some(Value::Bool(false)) | None => {}
            Some(_) => *open = true,
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for sub in s.get(key).and_then(Value::as_array).into_iter().flatten() {
                self.known_properties(sub, known, open, depth + 1);
            }
        }
    }

    /// Validates `v` against one schema node (no discriminator, no unknown-property check).
    fn node(&self, schema: &Value, v: &Value, at: &str, o: Options, out: &mut Vec<Finding>, depth: usize) {
        if depth > 64 {
            return;
        }
        let s = self.deref(schema);
        let Some(s) = s.as_object() else { return };
        let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
        if v.is_null() && nullable {
            return;
        }
        let mut push = |message: String| out.push(Finding { pointer: at.to_string(), message });

        if let Some(t) = s.get("type").and_then(Value::as_str)
            && !type_matches(t, v)
        {
            push(format!("expected {t}{}, found {}", if nullable { " or null" } else { "" }, describe(v)));
            return;
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array)
            && !values.contains(v)
        {
            let allowed: Vec<String> = values.iter().map(Value::to_string).collect();
            push(format!("{} is not one of {}", describe(v), allowed.join(", ")));
        }
        match v {
            Value::String(text) => {
                if let Some(p) = s.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.regex(p)
                    && !re.is_match(text)
                {
                    push(format!("{text:?} does not match the pattern {p}"));
                }
                let len = text.chars().count() as u64;
                if let Some(min) = s.get("minLength").and_then(Value::as_u64).filter(|m| len < *m) {
                    push(format!("shorter than {min} characters"));
                }
                if let Some(max) = s.get("maxLength").and_then(Value::as_u64).filter(|m| len > *m) {
                    push(format!("longer than {max} characters"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or_default();
                if let Some(min) = s.get("minimum").and_then(Value::as_f64).filter(|m| x < *m) {
                    push(format!("{x} is less than the minimum {min}"));
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64).filter(|m| x > *m) {
                    push(format!("{x} is more than the maximum {max}"));
                }
            }
            Value::Array(items) => {
                if let Some(min) = s.get("minItems").and_then(Value::as_u64).filter(|m| (items.len() as u64) < *m) {
                    push(format!("{} items, at least {min} required", items.len()));
                }
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64).filter(|m| (items.len() as u64) > *m) {
                    push(format!("{} items, at most {max} allowed", items.len()));
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.instance(item_schema, item, &format!("{at}/{i}"), o, out, depth + 1);
                    }
                }
            }
            Value::Object(map) => self.object(s, map, at, o, out, depth),
            _ => {}
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.node(sub, v, at, o, out, depth + 1);
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            self.any_of(any, v, at, o, out, depth);
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let passing = one.iter().filter(|sub| self.branch_findings(sub, v, at, o, depth).is_empty()).count();
            if passing != 1 {
                out.push(Finding {
                    pointer: at.to_string(),
                    message: format!("matches {passing} of the oneOf schemas, not exactly one"),
                });
            }
        }
    }

    fn object(
        &self,
        s: &Map<String, Value>,
        map: &Map<String, Value>,
        at: &str,
        o: Options,
        out: &mut Vec<Finding>,
        depth: usize,
    ) {
        for req in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(req) {
                out.push(Finding { pointer: at.to_string(), message: format!("required property {req:?} is missing") });
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (key, value) in map {
            let child = format!("{at}/{}", escape(key));
            match props.and_then(|p| p.get(key)) {
                Some(prop_schema) => self.instance(prop_schema, value, &child, o, out, depth + 1),
                None => {
                    if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
                        self.instance(extra, value, &child, o, out, depth + 1);
                    } else if s.get("additionalProperties") == Some(&Value::Bool(false)) && !key.contains('@') {
                        out.push(Finding { pointer: child, message: format!("property {key:?} is not allowed") });
                    }
                }
            }
        }
    }

    fn any_of(&self, branches: &[Value], v: &Value, at: &str, o: Options, out: &mut Vec<Finding>, depth: usize) {
        // Microsoft's nullable reference: `null`, or one of the other branches.
        let placeholder = |b: &Value| {
            b.as_object().is_some_and(|m| {
                m.get("type").and_then(Value::as_str) == Some("object")
                    && m.get("nullable").and_then(Value::as_bool) == Some(true)
                    && !m.contains_key("properties")
                    && !m.contains_key("$ref")
            })
        };
        let real: Vec<&Value> = branches.iter().filter(|b| !placeholder(b)).collect();
        let has_placeholder = real.len() < branches.len();
        if has_placeholder && v.is_null() {
            return;
        }
        if real.is_empty() {
            return;
        }
        let mut first: Option<Vec<Finding>> = None;
        for b in &real {
            let f = self.branch_findings(b, v, at, o, depth);
            if f.is_empty() {
                return;
            }
            first.get_or_insert(f);
        }
        let findings = first.unwrap_or_default();
        if real.len() == 1 {
            out.extend(findings);
        } else {
            out.push(Finding {
                pointer: at.to_string(),
                message: format!(
                    "matches none of the anyOf schemas (first: {})",
                    findings.first().map_or_else(String::new, |f| f.to_string())
                ),
            });
        }
    }

    fn branch_findings(&self, schema: &Value, v: &Value, at: &str, o: Options, depth: usize) -> Vec<Finding> {
        let mut f = Vec::new();
        self.node(schema, v, at, o, &mut f, depth + 1);
        f
    }

    fn regex(&self, pattern: &str) -> Option<Regex> {
        let mut cache = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(pattern.to_string()).or_insert_with(|| Regex::new(pattern).ok()).clone()
    }
}

/// Schemas whose instances may carry more than they define, whatever the options: Graph's `innerError`
/// is an open bag (the documented 429 body puts `code`, `message` and `status` in it).
const OPEN_SCHEMAS: [&str; 1] = ["/microsoft.graph.ODataErrors.InnerError"];

/// `delta()` and `delta` name the same function; `$batch` may arrive percent-encoded.
fn normalize_segment(s: &str) -> String {
    let s = s.strip_suffix("()").unwrap_or(s);
    s.replace("%24", "$")
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;

    use super::*;

    fn contract() -> &'static Contract {
        static C: OnceLock<Contract> = OnceLock::new();
        C.get_or_init(|| Contract::embedded().unwrap())
    }

    const STRICT: Options = Options { unknown_properties: true };

    #[test]
    fn extensions_add_paths_and_never_shadow_the_reference() {
        let mut c = Contract::embedded().unwrap();
        assert!(c.source().ends_with(" + entente extensions"), "{}", c.source());
        let fragment = "paths:\n  /things/{thing-id}:\n    get:\n      operationId: things.get\n      responses:\n        '204':\n          description: ok\n";
        assert!(c.operation(&Method::GET, "/things/abc").is_none());
        c.extend(fragment, "things.yaml").unwrap();
        assert_eq!(c.operation(&Method::GET, "/things/abc").unwrap().operation_id, "things.get");
        let shadow = "paths:\n  /invitations:\n    post:\n      operationId: mine\n";
        let err = c.extend(shadow, "shadow.yaml").unwrap_err().to_string();
        assert!(err.contains("shadow.yaml redefines the path /invitations"), "{err}");
        let added = "x-entente-properties:\n  microsoft.graph.invitation:\n    mine:\n      type: string\n";
        c.extend(added, "added.yaml").unwrap();
        let invitation = json!({ "invitedUserEmailAddress": "a@b.c", "inviteRedirectUrl": "https://x", "mine": 1 });
        let findings = c.validate_component("microsoft.graph.invitation", &invitation, STRICT).unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].pointer == "/mine" && findings[0].message.contains("string"), "{findings:?}");
        let again = "x-entente-properties:\n  microsoft.graph.invitation:\n    invitedUserEmailAddress:\n      type: string\n";
        let err = c.extend(again, "again.yaml").unwrap_err().to_string();
        assert!(err.contains("redefines the property invitedUserEmailAddress"), "{err}");
        let schema = "components:\n  schemas:\n    microsoft.graph.invitation:\n      type: object\n";
        let err = c.extend(schema, "schema.yaml").unwrap_err().to_string();
        assert!(err.contains("redefines the schema microsoft.graph.invitation"), "{err}");
    }

    #[test]
    fn operations_are_found_by_template() {
        let c = contract();
        assert_eq!(c.operation(&Method::GET, "/users/delta").unwrap().template, "/users/delta()");
        assert_eq!(c.operation(&Method::GET, "/users/$count").unwrap().template, "/users/$count");
        assert_eq!(c.operation(&Method::GET, "/users/abc").unwrap().template, "/users/{user-id}");
        assert!(c.operation(&Method::GET, "/invitations").is_none(), "only POST is documented");
        assert!(c.operation(&Method::GET, "/servicePrincipals").is_none());
        let token = c.operation(&Method::POST, "/contoso.onmicrosoft.com/oauth2/v2.0/token").unwrap();
        assert_eq!(token.template, "/{tenant}/oauth2/v2.0/token");
        let patch = c.operation(&Method::PATCH, "/policies/crossTenantAccessPolicy/partners/x").unwrap();
        assert!(matches!(c.response_spec(&patch, 204), Ok(ResponseSpec::NoBody)));
        assert!(c.response_spec(&patch, 200).is_err(), "PATCH answers 204, not 200");
        assert!(matches!(c.response_spec(&patch, 404), Ok(ResponseSpec::Body { .. })));
    }

    #[test]
    fn nullable_refs_enums_and_unknown_properties() {
        let c = contract();
        let ok = json!({"tenantId": "t", "b2bCollaborationInbound": null,
            "inboundTrust": {"isMfaAccepted": true, "isCompliantDeviceAccepted": null}});
        assert_eq!(
            c.validate_component("microsoft.graph.crossTenantAccessPolicyConfigurationPartner", &ok, STRICT).unwrap(),
            vec![]
        );
        let bad = json!({"tenantId": "t", "b2bCollaborationInbound": {"usersAndGroups": {"accessType": "maybe", "targets": []}}});
        let f = c.validate_component("microsoft.graph.crossTenantAccessPolicyConfigurationPartner", &bad, STRICT).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].pointer, "/b2bCollaborationInbound/usersAndGroups/accessType");
        let typo = json!({"tenantId": "t", "inboundTrust": {"isMfaAcepted": true}});
        let f = c.validate_component("microsoft.graph.crossTenantAccessPolicyConfigurationPartner", &typo, STRICT).unwrap();
        assert_eq!(f[0].pointer, "/inboundTrust/isMfaAcepted");
        assert!(
            c.validate_component("microsoft.graph.crossTenantAccessPolicyConfigurationPartner", &typo, Options::default())
                .unwrap()
                .is_empty()
        );
        let null_required = json!({"invitedUserEmailAddress": null, "inviteRedirectUrl": "https://x"});
        assert_eq!(c.validate_component("microsoft.graph.invitation", &null_required, STRICT).unwrap().len(), 1);
    }

    #[test]
    fn discriminators_select_the_derived_type() {
        let c = contract();
        let providers = json!({"value": [
            {"@odata.type": "#microsoft.graph.socialIdentityProvider", "id": "x", "clientId": 5}
        ]});
        let f = c.validate_component("microsoft.graph.identityProviderBaseCollectionResponse", &providers, STRICT).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].pointer, "/value/0/clientId");
    }
}
