//! Signatures (`SIG-00x`): a signed directory checked with
//! [`crate::signing::manifest::verify_dir`], its findings located at the manifest line that
//! lists each file.

use crate::signing::keys::VerifyingKey;
use crate::signing::manifest::{FindingId, MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, verify_dir};

use super::catalog;
use super::{Category, Ctx, Location, ObjectRef, SignatureInput, VerifyError};

pub(crate) fn check(ctx: &mut Ctx, input: &SignatureInput) -> Result<(), VerifyError> {
    ctx.evaluated_family(Category::Signature);
    let key = VerifyingKey::load(&input.key)
        .map_err(|e| VerifyError::could_not(input.key.display().to_string(), e))?;
    let findings = verify_dir(&input.manifest, &key)
        .map_err(|e| VerifyError::could_not(input.manifest.display().to_string(), e))?;
    let manifest_path = input.manifest.join(MANIFEST_FILE);
    let manifest_text = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    let listed_at = |rel: &str| {
        manifest_text
            .lines()
            .position(|l| l.split_once("  ").is_some_and(|(_, p)| p == rel))
            .map(|i| i + 1)
    };
    for finding in findings {
        let check = match finding.id {
            FindingId::BadManifestSignature => catalog::SIG_001,
            FindingId::FileChanged => catalog::SIG_002,
            FindingId::FileMissing => catalog::SIG_003,
            FindingId::FileNotListed => catalog::SIG_004,
        };
        let location = match finding.id {
            FindingId::FileChanged | FindingId::FileMissing => match listed_at(&finding.path) {
                Some(line) => Location::at(&manifest_path.display().to_string(), line),
                None => Location::file(&manifest_path.display().to_string()),
            },
            FindingId::BadManifestSignature if finding.path == MANIFEST_SIGNATURE_FILE => {
                Location::file(
                    &input
                        .manifest
                        .join(MANIFEST_SIGNATURE_FILE)
                        .display()
                        .to_string(),
                )
            }
            _ => Location::file(&input.manifest.join(&finding.path).display().to_string()),
        };
        ctx.report(
            check,
            ObjectRef::new("File", &finding.path),
            Some(location),
            format!("{}: {}", finding.path, finding.message),
        );
    }
    Ok(())
}
