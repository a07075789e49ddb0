//! TEMPORARY stub of the agreed manifest API; replaced by the manifest branch.
use crate::domain::{Digest, ImageRef};
#[derive(Debug, Clone, Default)]
pub struct PinRules {
    pub helm: Vec<()>,
}
pub struct Pinned {
    pub line: usize,
    pub before: String,
    pub after: String,
    pub digest: Digest,
}
pub struct Mismatch {
    pub line: usize,
    pub found: String,
    pub recorded: String,
}
pub struct PinOutcome {
    pub content: String,
    pub pinned: Vec<Pinned>,
    pub mismatched: Vec<Mismatch>,
}
#[derive(Debug, thiserror::Error)]
#[error("manifest error")]
pub struct ManifestError;
pub fn pin(
    _path: &str,
    content: &str,
    _rules: &PinRules,
    _targets: &[ImageRef],
) -> Result<PinOutcome, ManifestError> {
    Ok(PinOutcome {
        content: content.to_owned(),
        pinned: vec![],
        mismatched: vec![],
    })
}
