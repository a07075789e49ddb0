//! Pinning the LKG image digests into the manifests of a revert tree.

use git2::{Index, IndexEntry};

use super::revert::{AppliedPin, PinMismatch, PinWork, RevertSpec, SuspendedMarker};
use super::{GitError, InfraRepo, Result};
use crate::manifest;

impl InfraRepo {
    /// Pins the LKG images in the manifests of `index`, whose paths are
    /// relative to `prefix` (`""` for the repository root, or an app
    /// directory).
    pub(super) fn pin_images(
        &self,
        index: &mut Index,
        spec: &RevertSpec<'_>,
        prefix: &str,
    ) -> Result<PinWork> {
        let mut work = PinWork::default();
        if spec.pins.is_empty() {
            return Ok(work);
        }
        let manifests: Vec<IndexEntry> = index
            .iter()
            .filter(|e| {
                let path = full_path(prefix, &e.path);
                is_yaml(&path) && spec.paths.is_match(&path)
            })
            .collect();
        for mut entry in manifests {
            let path = full_path(prefix, &entry.path);
            // Checked before the blob is inflated into memory.
            manifest::check_size(&path, self.blob_size(entry.id, &path)?)?;
            let blob = self
                .raw()
                .find_blob(entry.id)
                .map_err(GitError::git(format!("reading {path}")))?;
            let Ok(content) = std::str::from_utf8(blob.content()) else {
                work.unscanned.push((path, "not UTF-8 text".to_owned()));
                continue;
            };
            let outcome = manifest::pin(&path, content, spec.pin_rules, spec.pins)?;
            work.mismatches
                .extend(outcome.mismatched.into_iter().map(|m| PinMismatch {
                    file: path.clone(),
                    line: m.line,
                    found: m.found,
                    recorded: m.recorded,
                }));
            work.already_pinned
                .extend(outcome.unchanged.iter().map(|p| p.digest.to_string()));
            let marker_lines: Vec<usize> = outcome
                .pinned
                .iter()
                .filter(|p| p.image_policy_marker.is_some())
                .map(|p| p.line)
                .collect();
            let mut new_content = outcome.content;
            if !marker_lines.is_empty() {
                let (suspended, changes) =
                    manifest::suspend_image_policy_markers(&path, &new_content, &marker_lines)?;
                new_content = suspended;
                work.suspended_markers
                    .extend(changes.into_iter().map(|c| SuspendedMarker {
                        file: path.clone(),
                        line: c.line,
                        marker: c.marker,
                    }));
            }
            if new_content == content {
                continue;
            }
            work.applied
                .extend(outcome.pinned.into_iter().map(|p| AppliedPin {
                    file: path.clone(),
                    line: p.line,
                    before: p.before,
                    after: p.after,
                    digest: p.digest.to_string(),
                }));
            entry.id = self
                .raw()
                .blob(new_content.as_bytes())
                .map_err(GitError::git(format!("writing pinned {path}")))?;
            entry.file_size = u32::try_from(new_content.len()).unwrap_or(u32::MAX);
            index
                .add(&entry)
                .map_err(GitError::git(format!("staging pinned {path}")))?;
        }
        Ok(work)
    }
}

fn full_path(prefix: &str, path: &[u8]) -> String {
    let path = String::from_utf8_lossy(path);
    if prefix.is_empty() {
        path.into_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

fn is_yaml(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}
