//! Where container images live in an infra repo's YAML, and format-preserving
//! digest pinning of them.
//!
//! Pure: every function takes a path (for messages and file-name rules) and
//! the file's content, and returns values. No filesystem, no git.
//!
//! - [`scan`] lists the image references of a file ([`ImageSite`]s):
//!   `image:` fields of pod specs (workloads, CronJobs, Argo Rollouts, KServe
//!   InferenceServices), kustomize `images:` entries (also Flux
//!   `Kustomization.spec.images`), and Helm values keys named by
//!   [`PinRules::helm`].
//! - [`pin`] rewrites the sites that match a last-known-good reference to
//!   carry its digest. Only the bytes of the edited scalars change (plus one
//!   inserted `digest:` line where a kustomize entry or Helm mapping had none);
//!   the result is re-parsed and compared with the original tree before it is
//!   returned, so a file is never silently changed in any other way.
//! - [`suspend_image_policy_markers`] / [`restore_image_policy_markers`]
//!   switch off (and back on) Flux `$imagepolicy` markers on pinned lines, so
//!   image automation cannot move a pin; [`pin`] itself leaves comments
//!   alone and reports the markers it saw ([`Pinned::image_policy_marker`]).

mod edit;
mod helm;
mod image_updater;
mod kustomize;
mod locate;
mod markers;

use std::path::Path;

use crate::domain::{Digest, ImageRef, ImageRefError};
use crate::yaml;

use edit::{Plan, Write};
use locate::{Located, Writable};
pub use markers::{
    MarkerChange, SUSPENDED, restore_image_policy_markers, suspend_image_policy_markers,
};

/// One Helm values rule: in files matching `files`, the image is written as
/// `<repository>:<tag>` (plus `@<digest>` when `digest` is set) at these
/// dotted key paths.
#[derive(Debug, Clone)]
pub struct HelmImageRule {
    pub files: globset::GlobMatcher,
    /// Dotted key path of the repository, e.g. `image.repository`.
    pub repository: String,
    /// Dotted key path of the tag, e.g. `image.tag`.
    pub tag: String,
    /// Dotted key path of the digest, e.g. `image.digest`. `None`: the chart
    /// has no digest value, so the digest is written into the tag
    /// (`1.2.3@sha256:…`), which most charts pass through to `image:`.
    pub digest: Option<String>,
}

impl HelmImageRule {
    /// Builds a rule from a glob (`charts/*/values*.yaml`, matched against
    /// the repo-relative path with `/` separators).
    pub fn new(
        files: &str,
        repository: impl Into<String>,
        tag: impl Into<String>,
        digest: Option<String>,
    ) -> Result<Self, ManifestError> {
        let glob = globset::GlobBuilder::new(files)
            .literal_separator(true)
            .build()
            .map_err(|e| ManifestError::BadGlob {
                glob: files.to_owned(),
                message: e.kind().to_string(),
            })?;
        Ok(Self {
            files: glob.compile_matcher(),
            repository: repository.into(),
            tag: tag.into(),
            digest,
        })
    }
}

/// What to look for besides Kubernetes workloads and kustomizations.
#[derive(Debug, Clone, Default)]
pub struct PinRules {
    pub helm: Vec<HelmImageRule>,
}

/// Where an image reference was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteKind {
    /// `image:` of a container (`containers`, `initContainers`,
    /// `ephemeralContainers`, or a KServe framework spec such as
    /// `predictor.sklearn`).
    Container {
        /// The resource kind (`Deployment`, `CronJob`, `InferenceService`…).
        workload: String,
        /// `metadata.name` of the resource, when present.
        resource: Option<String>,
        /// The container's `name`, or the KServe component path
        /// (`predictor.model`) for framework specs.
        container: String,
    },
    /// An entry of a kustomization's `images:` list (or Flux
    /// `Kustomization.spec.images`).
    KustomizeImage {
        /// The `name:` the entry matches in resources.
        name: String,
        /// False when the entry has no `newTag` (nor `digest`): the tag comes
        /// from the resources and the reference carries none.
        tag_set: bool,
    },
    /// A Helm values file, per a [`HelmImageRule`].
    HelmValues {
        repository_key: String,
        tag_key: String,
        /// False when the tag value is missing or empty (the chart's
        /// `appVersion` applies).
        tag_set: bool,
    },
    /// A pair of Argo CD Image Updater `helm.parameters` in a write-back
    /// file: the image's name and its tag, passed to Helm as `--set`.
    HelmParameter {
        name_param: String,
        tag_param: String,
        /// False when the pair has no tag parameter.
        tag_set: bool,
    },
}

/// One image reference in a file. `line`/`column` are 1-based and point at
/// the reference (for kustomize and Helm: at the name/repository value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSite {
    pub line: usize,
    pub column: usize,
    pub reference: ImageRef,
    pub kind: SiteKind,
}

/// An image field whose value is a template expression (`{{ … }}`,
/// `${VAR}`): it cannot be parsed or pinned here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatedSite {
    pub line: usize,
    pub column: usize,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub sites: Vec<ImageSite>,
    /// Why the file was not scanned at all (not YAML, a Helm template…).
    pub skipped: Option<String>,
    /// Image fields holding template expressions, not references.
    pub templated: Vec<TemplatedSite>,
}

/// One rewritten (or already correct) image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// 1-based line of the edited value in the new content.
    pub line: usize,
    pub before: String,
    pub after: String,
    pub digest: Digest,
    /// A Flux image-automation marker on that line
    /// (`{"$imagepolicy": "flux-system:app"}`), left untouched: the caller
    /// decides whether to suspend it.
    pub image_policy_marker: Option<String>,
}

/// A site with a recorded image's name but another tag: not pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub line: usize,
    /// The reference in the file.
    pub found: String,
    /// The last-known-good reference it was compared with.
    pub recorded: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinOutcome {
    pub content: String,
    /// Sites rewritten, in file order.
    pub pinned: Vec<Pinned>,
    /// Sites that already carried the recorded digest (nothing to do).
    pub unchanged: Vec<Pinned>,
    pub mismatched: Vec<Mismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{path}:{line}:{column}: {source} — fix the image reference (or quote a template expression) and retry"
    )]
    BadReference {
        path: String,
        line: usize,
        column: usize,
        text: String,
        source: ImageRefError,
    },
    #[error("{path}:{line}:{column}: {what} — {hint}")]
    CannotEdit {
        path: String,
        line: usize,
        column: usize,
        what: String,
        hint: String,
    },
    #[error(
        "{path}:{line}:{column}: `{found}` matches two recorded images, `{first}` and `{second}` — record one digest per image and tag"
    )]
    ConflictingTargets {
        path: String,
        line: usize,
        column: usize,
        found: String,
        first: String,
        second: String,
    },
    #[error(
        "{path}: recorded image `{target}` has no digest — pass last-known-good references in `name:tag@sha256:…` form"
    )]
    TargetWithoutDigest { path: String, target: String },
    #[error(
        "{path}: pinning would change more than the image values ({detail}) — the file was left unchanged; edit it by hand and report this"
    )]
    Verification { path: String, detail: String },
    #[error("helm rule glob `{glob}` is invalid: {message} — fix the `files` pattern")]
    BadGlob { glob: String, message: String },
    /// Valid YAML that would expand past the parser's bounds (an alias
    /// bomb, nesting too deep): the message says which bound and what to do.
    #[error("{path}:{line}:{column}: {message}")]
    Refused {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: {size} bytes, more than {} MiB, the limit for a manifest — split the file",
        MAX_FILE_BYTES / (1024 * 1024)
    )]
    TooLarge { path: String, size: u64 },
}

/// The largest manifest read from the infra repo. Generated bundles (CRDs,
/// an Argo CD `install.yaml`) run to a few MiB; a blob is inflated in memory
/// whole, and a small push can carry a huge, well-compressed one.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Refuses a manifest of `size` bytes over [`MAX_FILE_BYTES`] (callers that
/// can see a size before loading the content check it first).
pub fn check_size(path: &str, size: u64) -> Result<(), ManifestError> {
    if size > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    Ok(())
}

/// Lists the image references in one file.
pub fn scan(path: &str, content: &str, rules: &PinRules) -> Result<Scan, ManifestError> {
    Ok(match parse(path, content, rules)? {
        Parsed::Skipped(reason) => Scan {
            skipped: Some(reason),
            ..Scan::default()
        },
        Parsed::Documents(docs) => {
            let found = locate::locate(path, content, &docs, rules)?;
            Scan {
                sites: found.sites.into_iter().map(|l| l.site).collect(),
                skipped: None,
                templated: found.templated,
            }
        }
    })
}

/// Pins every site that matches one of `targets` (last-known-good
/// references, each with a digest) to the target's digest.
pub fn pin(
    path: &str,
    content: &str,
    rules: &PinRules,
    targets: &[ImageRef],
) -> Result<PinOutcome, ManifestError> {
    if let Some(t) = targets.iter().find(|t| t.digest().is_none()) {
        return Err(ManifestError::TargetWithoutDigest {
            path: path.to_owned(),
            target: t.to_string(),
        });
    }
    let mut outcome = PinOutcome {
        content: content.to_owned(),
        pinned: Vec::new(),
        unchanged: Vec::new(),
        mismatched: Vec::new(),
    };
    let docs = match parse(path, content, rules)? {
        Parsed::Skipped(_) => return Ok(outcome),
        Parsed::Documents(docs) => docs,
    };
    let found = locate::locate(path, content, &docs, rules)?;
    let mut plan = Plan::default();
    // (index into plan.writes, before, after, digest) for each edit to report.
    let mut reports = Vec::new();
    for located in &found.sites {
        match decide(path, located, targets)? {
            Decision::Skip => {}
            Decision::Mismatch(recorded) => {
                outcome
                    .mismatched
                    .extend(recorded.into_iter().map(|r| Mismatch {
                        line: located.site.line,
                        found: describe(located),
                        recorded: r.to_string(),
                    }))
            }
            Decision::Pin(digest) => {
                let after = located.site.reference.pinned(digest);
                let write = writable_to_write(path, content, located, digest)?;
                match write {
                    None => outcome.unchanged.push(Pinned {
                        line: located.site.line,
                        before: located.site.reference.to_string(),
                        after,
                        digest: digest.clone(),
                        image_policy_marker: marker_on_line(content, located.site.line),
                    }),
                    Some(write) => {
                        let index = plan.push(write);
                        reports.push((
                            index,
                            located.site.reference.to_string(),
                            after,
                            digest.clone(),
                        ));
                    }
                }
            }
        }
    }
    if plan.is_empty() {
        return Ok(outcome);
    }
    let applied = edit::apply(path, content, &docs, &plan)?;
    for (index, before, after, digest) in reports {
        let line = applied.lines[index];
        outcome.pinned.push(Pinned {
            line,
            before,
            after,
            digest,
            image_policy_marker: marker_on_line(&applied.content, line),
        });
    }
    outcome.content = applied.content;
    Ok(outcome)
}

enum Parsed {
    Skipped(String),
    Documents(Vec<yaml::Node>),
}

/// A file that is not YAML is skipped (with the reason); one that is too
/// large or would expand past the parser's bounds is an error, so the app's
/// plan fails and says why instead of silently leaving the file unpinned.
fn parse(path: &str, content: &str, rules: &PinRules) -> Result<Parsed, ManifestError> {
    let file_name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    let yaml_like = [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| file_name.to_ascii_lowercase().ends_with(ext))
        || file_name == "Kustomization"
        || rules.helm.iter().any(|r| r.files.is_match(path));
    if !yaml_like {
        return Ok(Parsed::Skipped(
            "not a YAML file (by its extension)".to_owned(),
        ));
    }
    check_size(path, content.len() as u64)?;
    let templated = content.contains("{{");
    let in_templates = path.split('/').any(|c| c == "templates");
    Ok(match yaml::parse_documents(content) {
        Err(e) if e.kind == yaml::ErrorKind::Limit => {
            return Err(ManifestError::Refused {
                path: path.to_owned(),
                line: e.line,
                column: e.column,
                message: e.message,
            });
        }
        Err(e) if templated => Parsed::Skipped(format!(
            "a Go/Helm template, not plain YAML ({e}); pin the chart's values file instead"
        )),
        Err(e) => Parsed::Skipped(format!("not valid YAML: {e}")),
        Ok(_) if templated && in_templates => Parsed::Skipped(
            "a Helm chart template (contains `{{`); pin the chart's values file instead".to_owned(),
        ),
        Ok(docs) => Parsed::Documents(docs),
    })
}

enum Decision<'a> {
    Skip,
    Mismatch(Vec<&'a ImageRef>),
    Pin(&'a Digest),
}

/// Which recorded image, if any, a site should be pinned to.
fn decide<'a>(
    path: &str,
    located: &Located,
    targets: &'a [ImageRef],
) -> Result<Decision<'a>, ManifestError> {
    let site = &located.site.reference;
    let name = site.normalized_name();
    let candidates: Vec<&ImageRef> = targets
        .iter()
        .filter(|t| t.normalized_name() == name)
        .collect();
    if candidates.is_empty() {
        return Ok(Decision::Skip);
    }
    let tag_unknown = !located.tag_set;
    let matching: Vec<&ImageRef> = candidates
        .iter()
        .copied()
        .filter(|t| match (site.tag(), t.tag()) {
            (_, None) => true,
            (Some(s), Some(t)) => s == t,
            (None, Some(t)) => site.digest().is_some() || tag_unknown || t == "latest",
        })
        .collect();
    let mut digests: Vec<&Digest> = matching.iter().filter_map(|t| t.digest()).collect();
    digests.sort();
    digests.dedup();
    match digests.as_slice() {
        [] => Ok(Decision::Mismatch(candidates)),
        [one] => Ok(Decision::Pin(one)),
        several => {
            // Already pinned to one of the recorded digests: leave it.
            if let Some(current) = site.digest()
                && let Some(d) = several.iter().find(|d| **d == current)
            {
                return Ok(Decision::Pin(d));
            }
            if site.tag().is_none() {
                // Which tag the site runs is unknown: let a human decide.
                return Ok(Decision::Mismatch(matching));
            }
            let by_digest = |d: &Digest| {
                matching
                    .iter()
                    .find(|t| t.digest() == Some(d))
                    .map_or_else(String::new, |t| t.to_string())
            };
            Err(ManifestError::ConflictingTargets {
                path: path.to_owned(),
                line: located.site.line,
                column: located.site.column,
                found: site.to_string(),
                first: by_digest(several[0]),
                second: by_digest(several[1]),
            })
        }
    }
}

/// The site as a user would recognise it in a mismatch report.
fn describe(located: &Located) -> String {
    if located.tag_set {
        located.site.reference.to_string()
    } else {
        format!("{} (tag set elsewhere)", located.site.reference)
    }
}

/// The edit that pins `located` to `digest`, or `None` when it already is.
fn writable_to_write(
    path: &str,
    content: &str,
    located: &Located,
    digest: &Digest,
) -> Result<Option<Write>, ManifestError> {
    if located.site.reference.digest() == Some(digest) {
        return Ok(None);
    }
    Ok(Some(match &located.writable {
        Writable::Refuse { what, hint } => {
            return Err(ManifestError::CannotEdit {
                path: path.to_owned(),
                line: located.site.line,
                column: located.site.column,
                what: what.clone(),
                hint: hint.clone(),
            });
        }
        Writable::Reference(scalar) => {
            Write::replace(scalar, located.site.reference.pinned(digest))
        }
        Writable::PrefixedReference { scalar, prefix } => Write::replace(
            scalar,
            format!("{prefix}{}", located.site.reference.pinned(digest)),
        ),
        Writable::TagWithDigest(scalar) => {
            let tag = scalar
                .text
                .split_once('@')
                .map_or(scalar.text.as_str(), |(t, _)| t);
            Write::replace(scalar, format!("{tag}@{digest}"))
        }
        Writable::DigestKey { existing, map, key } => match existing {
            Some(scalar) => Write::replace(scalar, digest.to_string()),
            None => edit::insertion(path, content, map, key, digest.as_str())?,
        },
    }))
}

/// A Flux `$imagepolicy` marker in the comment of `line`, if any.
fn marker_on_line(content: &str, line: usize) -> Option<String> {
    let text = content.lines().nth(line.checked_sub(1)?)?;
    let comment = text.find(" #").map(|i| text[i + 2..].trim())?;
    comment
        .contains("\"$imagepolicy\"")
        .then(|| comment.to_owned())
}

#[cfg(test)]
mod tests;
