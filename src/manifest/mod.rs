//! Manifests: files and directories of multi-document YAML → validated desired state.
//! Either everything is valid, or every error is returned and nothing is applied.

mod convert;
mod documents;
mod error;

use std::path::PathBuf;

pub use convert::{Manifests, convert_objects};
pub use documents::Document;
pub use error::{ManifestError, ManifestErrors};

/// Loads and validates every manifest under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestErrors> {
    let files = documents::expand(paths).map_err(|e| ManifestErrors(vec![e]))?;
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match documents::parse_file(&file, &text) {
                Ok(d) => docs.extend(d),
                Err(e) => errors.push(e),
            },
            Err(e) => {
                errors.push(ManifestError { file, line: 0, object: None, field: None, message: format!("cannot read: {e}") })
            }
        }
    }
    match convert::convert(&docs) {
        Ok(m) if errors.is_empty() => Ok(m),
        Ok(_) => Err(ManifestErrors(errors)),
        Err(more) => {
            errors.extend(more);
            Err(ManifestErrors(errors))
        }
    }
}

/// Loads manifests from in-memory YAML (for tests and tools): `(file name, text)` pairs.
pub fn load_str(files: &[(&str, &str)]) -> Result<Manifests, ManifestErrors> {
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    for (name, text) in files {
        match documents::parse_file(std::path::Path::new(name), text) {
            Ok(d) => docs.extend(d),
            Err(e) => errors.push(e),
        }
    }
    match convert::convert(&docs) {
        Ok(m) if errors.is_empty() => Ok(m),
        Ok(_) => Err(ManifestErrors(errors)),
        Err(more) => {
            errors.extend(more);
            Err(ManifestErrors(errors))
        }
    }
}
