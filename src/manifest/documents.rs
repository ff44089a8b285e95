//! Reading files and directories of multi-document YAML into JSON values, keeping where each came from.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ManifestError;

/// One YAML document of a file.
#[derive(Clone, Debug)]
pub struct Document {
    pub file: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
    pub text: String,
    pub value: Value,
}

impl Document {
    /// Best-effort line of a field: follows the dotted path segment by segment through the document's
    /// text (block or flow style), so `spec.tenantRef.name` finds `tenantRef: { name: x }`.
    pub fn line_of(&self, field: &str) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut at = 0;
        for segment in field.split('.').map(|s| s.split('[').next().unwrap_or(s)).filter(|s| !s.is_empty()) {
            match (at..lines.len()).find(|&i| sets_key(lines[i], segment)) {
                Some(i) => at = i,
                None => break,
            }
        }
        self.line + at
    }

    pub fn error(&self, object: Option<String>, field: Option<&str>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.file.clone(),
            line: field.map_or(self.line, |f| self.line_of(f)),
            object,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

fn sets_key(line: &str, key: &str) -> bool {
    let t = line.trim_start().trim_start_matches("- ");
    let k = format!("{key}:");
    t.starts_with(&k)
        || t.starts_with(&format!("\"{key}\":"))
        || [format!("{{ {k}"), format!("{{{k}"), format!(", {k}")].iter().any(|p| line.contains(p.as_str()))
}

/// The files a set of paths names, as a GitOps repository holds them.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Manifest files, in order: those named, then the `.yaml`, `.yml` and `.json` files (any case) under
    /// the directories named, recursively and sorted.
    pub files: Vec<PathBuf>,
    /// Kustomization files met in the directories: kustomize's, never entente's.
    pub skipped: Vec<PathBuf>,
}

/// The path that means standard input.
pub const STDIN: &str = "-";

/// Expands the given paths: files as they are (`-`: standard input), directories recursively, leaving out
/// hidden entries (`.git/`, `.github/`, editors' files) and kustomization files.
pub fn expand(paths: &[PathBuf]) -> Result<Expanded, ManifestError> {
    let mut out = Expanded::default();
    for p in paths {
        if p.as_os_str() == STDIN {
            out.files.push(p.clone());
        } else {
            collect(p, &mut out, true)?;
        }
    }
    Ok(out)
}

fn is_manifest_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| ["yaml", "yml", "json"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `kustomization.yaml`, `kustomization.yml` or `Kustomization`: kustomize reads them, whatever they hold.
fn is_kustomization(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ["kustomization.yaml", "kustomization.yml", "kustomization"].iter().any(|k| n.eq_ignore_ascii_case(k)))
}

fn collect(path: &Path, out: &mut Expanded, explicit: bool) -> Result<(), ManifestError> {
    let io_err = |e: std::io::Error| ManifestError {
        file: path.to_path_buf(),
        line: 0,
        object: None,
        field: None,
        message: format!("cannot read: {e}"),
    };
    let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
    if hidden && !explicit {
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(io_err)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            collect(&e, out, false)?;
        }
    } else if !explicit && is_kustomization(path) {
        out.skipped.push(path.to_path_buf());
    } else if explicit || is_manifest_file(path) {
        out.files.push(path.to_path_buf());
    }
    Ok(())
}

/// A document for another tool (a ConfigMap, a Kustomization, a HelmRelease…): its `kind (apiVersion)`.
/// Only when neither its apiVersion nor its kind is entente's, so a misspelt apiVersion on an entente
/// kind, or a misspelt kind under entente's apiVersion, is still an error and never silently dropped
/// (with `--prune`, a dropped GuestInvitation would delete its guest).
pub fn foreign(doc: &Document, is_entente_kind: impl Fn(&str) -> bool) -> Option<String> {
    let api_version = doc.value.get("apiVersion")?.as_str()?;
    let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("?");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let entente = group.eq_ignore_ascii_case(crate::api::common::GROUP) || group.to_ascii_lowercase().contains("entente");
    (!entente && !is_entente_kind(kind)).then(|| format!("{kind} ({api_version})"))
}

/// Splits a file into documents at `---` lines and parses each; empty documents are skipped.
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut chunk = String::new();
    let mut flush = |start: usize, chunk: &str| -> Result<(), ManifestError> {
        if chunk.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            return Ok(());
        }
        let value: Value = serde_saphyr::from_str(chunk).map_err(|e| {
            let (line, msg) = match e.location() {
                Some(loc) => (start + loc.line() as usize - 1, first_line(&e.to_string())),
                None => (start, first_line(&e.to_string())),
            };
            ManifestError { file: file.to_path_buf(), line, object: None, field: None, message: format!("malformed YAML: {msg}") }
        })?;
        if !value.is_null() {
            docs.push(Document { file: file.to_path_buf(), line: start, text: chunk.to_string(), value });
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            flush(start, &chunk)?;
            chunk.clear();
            start = i + 2;
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    flush(start, &chunk)?;
    Ok(docs)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}
