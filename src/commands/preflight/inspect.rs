//! What one changed file says, for one app that owns it: the image
//! references the PR introduces (present at the head, not in the same file
//! at the merge base) and whether each can be pinned, template expressions
//! and split Helm values it introduces, and whether the file can be read as
//! manifests at all. Pure: contents in, facts out.

use std::collections::HashSet;
use std::path::Path;

use crate::commands::drill::readiness::{self, HelmCandidate};
use crate::domain::ImageRef;
use crate::manifest::{self, ManifestError, PinRules, TemplatedSite};

use super::gather::Blob;

/// One image reference the PR introduces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFacts {
    pub line: usize,
    pub reference: ImageRef,
    /// The pinner refuses this site: where, and its message.
    pub unpinnable: Option<(usize, String)>,
}

/// Why a file could not be read as manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An image reference the grammar rejects: the scan, and any revert of
    /// the app, stops at it.
    InvalidReference { line: usize, message: String },
    /// Too large, an alias bomb, not UTF-8.
    Unreadable {
        line: Option<usize>,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileScan {
    pub path: String,
    pub app: String,
    pub sites: Vec<SiteFacts>,
    pub templated: Vec<TemplatedSite>,
    pub split: Vec<HelmCandidate>,
    pub problem: Option<Problem>,
}

impl FileScan {
    fn empty(path: &str, app: &str) -> Self {
        Self {
            path: path.to_owned(),
            app: app.to_owned(),
            sites: Vec::new(),
            templated: Vec::new(),
            split: Vec::new(),
            problem: None,
        }
    }
}

/// Whether revertbot reads `path` as YAML (the manifest scanner's rule: a
/// `.yaml`/`.yml`/`.json` name, `Kustomization`, or a Helm rule's file).
/// Other files are not read at all.
pub fn yaml_like(path: &str, rules: &PinRules) -> bool {
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
        .to_ascii_lowercase();
    [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
        || name == "kustomization"
        || rules.helm.iter().any(|r| r.files.is_match(path))
}

/// A file whose head content could not be read.
pub fn unreadable(path: &str, app: &str, blob: &Blob) -> FileScan {
    let message = match blob {
        Blob::NotUtf8 => "not UTF-8 text: revertbot cannot read its image references, nor pin them — save it as UTF-8".to_owned(),
        Blob::TooLarge(size) => format!(
            "{size} bytes, more than the {} MiB revertbot reads of a manifest: its images are not checked, and a revert cannot pin them — split the file",
            manifest::MAX_FILE_BYTES / (1024 * 1024)
        ),
        Blob::Missing | Blob::Text(_) | Blob::OverBudget(_) => {
            return FileScan::empty(path, app);
        }
    };
    FileScan {
        problem: Some(Problem::Unreadable {
            line: None,
            message,
        }),
        ..FileScan::empty(path, app)
    }
}

/// The facts of one changed file for `app`: what `head` introduces over
/// `base` (the same path at the merge base, when it existed there).
pub fn inspect_change(
    path: &str,
    app: &str,
    base: Option<&str>,
    head: &str,
    rules: &PinRules,
) -> FileScan {
    let mut scan = FileScan::empty(path, app);
    let sites = match manifest::scan(path, head, rules) {
        Ok(found) if found.skipped.is_some() => return scan,
        Ok(found) => found,
        Err(e) => {
            scan.problem = Some(problem(&e));
            return scan;
        }
    };
    let before = base.map(|b| Known::of(path, b, rules)).unwrap_or_default();
    let probe =
        crate::registry::sha256_digest(b"revertbot preflight: can this site be pinned").ok();
    for site in sites.sites {
        if before.references.contains(site.reference.original()) {
            continue;
        }
        let unpinnable = probe.as_ref().and_then(|digest| {
            let target = site.reference.with_digest(digest);
            match manifest::pin(path, head, rules, &[target]) {
                Ok(_) => None,
                Err(ManifestError::CannotEdit {
                    line, what, hint, ..
                }) => Some((line, format!("{what} — {hint}"))),
                Err(e) => Some((site.line, e.to_string())),
            }
        });
        scan.sites.push(SiteFacts {
            line: site.line,
            reference: site.reference,
            unpinnable,
        });
    }
    scan.templated = sites
        .templated
        .into_iter()
        .filter(|t| !before.templated.contains(&t.text))
        .collect();
    scan.split = readiness::inspect(path, head, rules)
        .helm_candidates
        .into_iter()
        .filter(|c| !before.split.contains(&(c.prefix.clone(), c.image.clone())))
        .collect();
    scan
}

/// What the file held at the merge base, to tell what the PR introduces.
#[derive(Default)]
struct Known {
    references: HashSet<String>,
    templated: HashSet<String>,
    split: HashSet<(String, String)>,
}

impl Known {
    /// A base version that does not scan counts as empty: everything at the
    /// head is then new.
    fn of(path: &str, content: &str, rules: &PinRules) -> Self {
        let Ok(found) = manifest::scan(path, content, rules) else {
            return Self::default();
        };
        Self {
            references: found
                .sites
                .iter()
                .map(|s| s.reference.original().to_owned())
                .collect(),
            templated: found.templated.into_iter().map(|t| t.text).collect(),
            split: readiness::inspect(path, content, rules)
                .helm_candidates
                .into_iter()
                .map(|c| (c.prefix, c.image))
                .collect(),
        }
    }
}

fn problem(e: &ManifestError) -> Problem {
    match e {
        ManifestError::BadReference { line, .. } => Problem::InvalidReference {
            line: *line,
            message: e.to_string(),
        },
        ManifestError::Refused { line, .. } | ManifestError::CannotEdit { line, .. } => {
            Problem::Unreadable {
                line: Some(*line),
                message: e.to_string(),
            }
        }
        _ => Problem::Unreadable {
            line: None,
            message: e.to_string(),
        },
    }
}
