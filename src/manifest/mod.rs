//! Manifests: files and directories of multi-document YAML → validated desired state.
//! Either everything is valid, or every error is returned and nothing is applied.

mod conditional_access;
mod convert;
mod documents;
mod error;
pub mod identity;
pub mod images;
mod mto;

use std::path::PathBuf;

pub use convert::{Live, Manifests, convert_live, convert_objects};
pub use documents::Document;
pub use error::{ManifestError, ManifestErrors};

/// Loads and validates every manifest under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestErrors> {
    let files = documents::expand(paths).map_err(|e| ManifestErrors(vec![e]))?;
    let texts = files.into_iter().map(|file| {
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            file: file.clone(),
            line: 0,
            object: None,
            field: None,
            message: format!("cannot read: {e}"),
        });
        (file, text)
    });
    load_texts(texts)
}

/// Loads manifests from in-memory YAML (for tests and tools): `(file name, text)` pairs.
pub fn load_str(files: &[(&str, &str)]) -> Result<Manifests, ManifestErrors> {
    load_texts(files.iter().map(|(name, text)| (PathBuf::from(name), Ok(text.to_string()))))
}

/// Parses every file's documents and converts them; errors from reading, parsing and validating are all reported.
fn load_texts(files: impl Iterator<Item = (PathBuf, Result<String, ManifestError>)>) -> Result<Manifests, ManifestErrors> {
    let mut errors = Vec::new();
    let mut docs = Vec::new();
    for (file, text) in files {
        match text.and_then(|t| documents::parse_file(&file, &t)) {
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
