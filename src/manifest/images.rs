//! Branding images (`spec.branding.bannerLogo`, `squareLogo`, `backgroundImage`) resolved to their bytes
//! before planning, the way secrets are (`identity::resolve_secrets_from_env`): a manifest references an
//! image, never inlines it, and what is compared and uploaded is the image's content
//! (`CompanyBranding::attach`; the plan shows `logo.png (sha256:…)`, never bytes).
//!
//! - **CLI**: a file path is relative to the directory of the manifest file holding the Tenant
//!   (`Manifests::tenant_files`); an https URL is fetched.
//! - **Controller**: file paths mean nothing inside the cluster and are refused; https URLs are fetched.
//!
//! Either way the image must be a PNG or JPEG (by its signature; a served `Content-Type` must agree) of at
//! most `MAX_IMAGE_BYTES`. A reference that cannot be resolved is kept with why, and the planner refuses
//! the tenant's change naming the field, so nothing of its profile is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::model::{DesiredState, ObjectRef};
use crate::core::tenant_profile::{ImageContent, MAX_IMAGE_BYTES, image_reference};

/// Where image file paths are read from.
#[derive(Clone, Copy, Debug)]
pub enum FileBase<'a> {
    /// Relative to the manifest file of each Tenant (the CLI).
    ManifestFiles(&'a BTreeMap<ObjectRef, PathBuf>),
    /// Nowhere: file paths are refused (the controller).
    Refused,
}

/// Resolves every branding image reference of `desired` (see the module comment).
pub async fn resolve_images(desired: &mut DesiredState, files: FileBase<'_>) {
    let client = reqwest::Client::builder()
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build();
    for tenant in &mut desired.tenants {
        let object = tenant.object.clone();
        let Some(branding) = tenant.profile.branding.as_mut() else { continue };
        let wanted: Vec<(&'static str, String)> =
            branding.images().iter().filter_map(|(f, v)| v.map(|v| (*f, image_reference(v).to_string()))).collect();
        for (field, reference) in wanted {
            let outcome = if reference.to_ascii_lowercase().starts_with("https://") {
                match &client {
                    Ok(c) => fetch(c, &reference).await,
                    Err(e) => Err(format!("cannot fetch {reference}: {e}")),
                }
            } else {
                match files {
                    FileBase::Refused => Err(format!(
                        "{reference:?} is a file path, which the controller cannot read: reference the image by an https URL"
                    )),
                    FileBase::ManifestFiles(map) => match map.get(&object) {
                        Some(manifest) => read_file(manifest, &reference),
                        None => read_file(Path::new("."), &reference),
                    },
                }
            };
            branding.attach(field, outcome);
        }
    }
}

/// Reads `reference` relative to the directory of `manifest`.
fn read_file(manifest: &Path, reference: &str) -> Result<ImageContent, String> {
    let base = manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let path = base.join(reference);
    let shown = format!("{} (relative to {})", path.display(), manifest.display());
    let bytes = crate::files::read_regular(&path, MAX_IMAGE_BYTES as u64).map_err(|e| format!("cannot read {shown}: {e}"))?;
    ImageContent::from_bytes(bytes, None).map_err(|e| format!("{shown}: {e}"))
}

/// Fetches an https image, reading at most `MAX_IMAGE_BYTES` (+1, to tell a larger one).
async fn fetch(client: &reqwest::Client, url: &str) -> Result<ImageContent, String> {
    let mut resp = client.get(url).send().await.map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("cannot fetch {url}: the server answered {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_IMAGE_BYTES as u64) {
        return Err(format!("{url}: more than the {} MiB an image may have", MAX_IMAGE_BYTES >> 20));
    }
    let declared = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("cannot fetch {url}: {e}"))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(format!("{url}: more than the {} MiB an image may have", MAX_IMAGE_BYTES >> 20));
        }
    }
    ImageContent::from_bytes(bytes, declared.as_deref()).map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_resolve_relative_to_their_manifest_and_bad_ones_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        std::fs::create_dir(tmp.path().join("img")).unwrap();
        std::fs::write(tmp.path().join("img/logo.png"), &png).unwrap();
        std::fs::write(tmp.path().join("img/fake.png"), b"GIF89a").unwrap();
        let yaml = "apiVersion: entente.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop}\nspec:\n  tenantId: 7b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a05\n  initialDomain: shop.onmicrosoft.com\n  tenantType: external\n  branding:\n    bannerLogo: img/logo.png\n    squareLogo: img/fake.png\n    backgroundImage: img/missing.jpg\n";
        let file = tmp.path().join("shop.yaml");
        std::fs::write(&file, yaml).unwrap();
        let mut m = crate::manifest::load(std::slice::from_ref(&file)).unwrap();
        let files = m.tenant_files.clone();
        assert_eq!(files.values().collect::<Vec<_>>(), [&file]);
        resolve_images(&mut m.desired, FileBase::ManifestFiles(&files)).await;
        let b = m.desired.tenants[0].profile.branding.clone().unwrap();
        assert!(b.banner_logo.as_deref().unwrap().starts_with("img/logo.png (sha256:"), "{b:?}");
        assert_eq!(b.content("bannerLogo").unwrap().bytes.as_ref(), png.as_slice());
        let errors = b.image_errors();
        assert!(errors.iter().any(|(f, e)| *f == "squareLogo" && e.contains("not a PNG or JPEG")), "{errors:?}");
        assert!(errors.iter().any(|(f, e)| *f == "backgroundImage" && e.contains("missing.jpg") && e.contains("shop.yaml")));

        let mut m = crate::manifest::load(std::slice::from_ref(&file)).unwrap();
        resolve_images(&mut m.desired, FileBase::Refused).await;
        let b = m.desired.tenants[0].profile.branding.clone().unwrap();
        assert!(b.image_errors().iter().all(|(_, e)| e.contains("https URL")), "{b:?}");
    }
}
