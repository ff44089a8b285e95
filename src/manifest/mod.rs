//! Manifests: files and directories of multi-document YAML → validated desired state.
//! Either everything is valid, or every error is returned and nothing is applied.

mod conditional_access;
mod convert;
mod documents;
mod error;
pub mod identity;
pub mod images;
mod mto;
mod schema_check;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::core::model::{Kind, ObjectRef};

pub use convert::{Live, Manifests, convert_live, convert_objects};
pub use documents::Document;
pub use error::{ManifestError, ManifestErrors};

/// Loads and validates every manifest under `paths` (`-`: standard input).
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestErrors> {
    let expanded = documents::expand(paths).map_err(|e| ManifestErrors(vec![e]))?;
    let mut stdin_read = false;
    let texts = expanded.files.into_iter().map(|file| {
        let (name, text) = if file.as_os_str() == documents::STDIN {
            // Read once: a second `-` is the same stream, already at its end.
            let first = !std::mem::replace(&mut stdin_read, true);
            let mut text = String::new();
            let read = if first {
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text).map_err(|e| e.to_string())
            } else {
                Ok(text)
            };
            (PathBuf::from(STDIN_NAME), read)
        } else {
            (file.clone(), crate::files::read_regular_text(&file, crate::files::MAX_MANIFEST_BYTES))
        };
        let text = text.map_err(|e| ManifestError {
            file: name.clone(),
            line: 0,
            object: None,
            field: None,
            message: format!("cannot read: {e}"),
        });
        (name, text)
    });
    let mut m = load_texts(texts)?;
    m.skipped.extend(expanded.skipped.iter().map(|f| format!("{} (kustomization file)", f.display())));
    Ok(m)
}

/// How standard input is named in errors.
pub const STDIN_NAME: &str = "<stdin>";

/// Loads manifests from in-memory YAML (for tests and tools): `(file name, text)` pairs.
pub fn load_str(files: &[(&str, &str)]) -> Result<Manifests, ManifestErrors> {
    load_texts(files.iter().map(|(name, text)| (PathBuf::from(name), Ok(text.to_string()))))
}

/// Parses every file's documents and converts them; errors from reading, parsing and validating are all
/// reported. Documents for other tools are left out, each named in `skipped`.
fn load_texts(files: impl Iterator<Item = (PathBuf, Result<String, ManifestError>)>) -> Result<Manifests, ManifestErrors> {
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    let mut skipped = Vec::new();
    let is_kind = |k: &str| Kind::ALL.iter().any(|kind| kind.as_str().eq_ignore_ascii_case(k));
    for (file, text) in files {
        match text.and_then(|t| documents::parse_file(&file, &t)) {
            Ok(d) => {
                for doc in d {
                    match documents::foreign(&doc, is_kind) {
                        Some(what) => skipped.push(format!("{what} at {}:{}", doc.file.display(), doc.line)),
                        None => docs.push(doc),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    match convert::convert(&docs) {
        Ok(mut m) if errors.is_empty() => {
            m.skipped = skipped;
            m.tenant_files = tenant_files(&docs);
            Ok(m)
        }
        Ok(_) => Err(ManifestErrors(errors)),
        Err(more) => {
            errors.extend(more);
            Err(ManifestErrors(errors))
        }
    }
}

/// The file each Tenant was read from: its branding image paths are relative to it.
fn tenant_files(docs: &[Document]) -> BTreeMap<ObjectRef, PathBuf> {
    let mut out = BTreeMap::new();
    for doc in docs.iter().filter(|d| d.value.get("kind").and_then(|k| k.as_str()) == Some("Tenant")) {
        let meta = doc.value.get("metadata");
        let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        let Some(name) = text("name") else { continue };
        let ns = text("namespace").unwrap_or_else(|| "default".into());
        out.insert(ObjectRef::new(Kind::Tenant, ns, name), doc.file.clone());
    }
    out
}
