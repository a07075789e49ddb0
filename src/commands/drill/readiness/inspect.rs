//! What one file of the app says about readiness: its image sites (and
//! whether each can be pinned), image fields revertbot cannot read, Helm
//! values that look like images no rule covers, and the kustomize bases it
//! builds on. Pure: a path and its content in, facts out.

use std::path::Path;

use crate::manifest::{self, ImageSite, PinRules, SiteKind, TemplatedSite};
use crate::yaml::{self, Node};

/// Nesting explored when looking for image-shaped Helm values.
const MAX_VALUES_DEPTH: usize = 8;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileFacts {
    pub path: String,
    pub sites: Vec<ImageSite>,
    /// Sites the pinner refuses, with its message.
    pub unpinnable: Vec<String>,
    pub templated: Vec<TemplatedSite>,
    /// Why the file was not scanned (not YAML, a Helm template…).
    pub skipped: Option<String>,
    /// The file could not be read as manifests.
    pub error: Option<String>,
    pub helm_candidates: Vec<HelmCandidate>,
    pub kustomize_refs: Vec<KustomizeRef>,
    /// `HelmRelease`s (Flux) whose `spec.values` set no image.
    pub bare_helm_releases: Vec<Named>,
}

/// A mapping with `repository` and `tag` keys: an image as most charts
/// split it, which revertbot finds only with an `images.helm` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmCandidate {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the mapping (`image`, `spec.values.redis`).
    pub prefix: String,
    /// `repository[:tag]`, for people.
    pub image: String,
}

impl HelmCandidate {
    pub fn key(&self, leaf: &str) -> String {
        if self.prefix.is_empty() {
            leaf.to_owned()
        } else {
            format!("{}.{leaf}", self.prefix)
        }
    }
}

/// An entry of a kustomization's `resources`, `bases` or `components`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizeRef {
    pub line: usize,
    pub column: usize,
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub line: usize,
    pub column: usize,
    pub name: String,
}

pub fn inspect(path: &str, content: &str, rules: &PinRules) -> FileFacts {
    let mut facts = FileFacts {
        path: path.to_owned(),
        ..FileFacts::default()
    };
    match manifest::scan(path, content, rules) {
        Ok(scan) => {
            facts.sites = scan.sites;
            facts.templated = scan.templated;
            facts.skipped = scan.skipped;
        }
        Err(e) => {
            facts.error = Some(e.to_string());
            return facts;
        }
    }
    if facts.skipped.is_some() {
        return facts;
    }
    facts.unpinnable = unpinnable(path, content, rules, &facts.sites);
    let Ok(docs) = yaml::parse_documents(content) else {
        return facts;
    };
    let file_name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let is_kustomization = matches!(
        file_name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    );
    let is_values = file_name.starts_with("values")
        && (file_name.ends_with(".yaml") || file_name.ends_with(".yml"));
    for doc in &docs {
        if is_kustomization {
            kustomize_refs(doc, &mut facts.kustomize_refs);
        }
        let kind = doc.get("kind").and_then(Node::as_str);
        if kind == Some("HelmRelease") {
            let before = facts.helm_candidates.len();
            if let Some(values) = doc.get_path("spec.values") {
                helm_candidates(values, "spec.values", 0, &mut facts.helm_candidates);
            }
            let sets_images = facts.helm_candidates.len() > before
                || facts
                    .sites
                    .iter()
                    .any(|s| matches!(s.kind, SiteKind::HelmValues { .. }));
            if !sets_images {
                facts.bare_helm_releases.push(Named {
                    line: doc.span.start.line,
                    column: doc.span.start.column,
                    name: doc
                        .get_path("metadata.name")
                        .and_then(Node::as_str)
                        .unwrap_or("(unnamed)")
                        .to_owned(),
                });
            }
        } else if is_values {
            helm_candidates(doc, "", 0, &mut facts.helm_candidates);
        }
    }
    // A candidate a rule already covers is a site, at the same place.
    facts.helm_candidates.retain(|c| {
        !facts
            .sites
            .iter()
            .any(|s| s.line == c.line && s.column == c.column)
    });
    facts
}

/// Each site pinned alone to a made-up digest: what the pinner refuses.
fn unpinnable(path: &str, content: &str, rules: &PinRules, sites: &[ImageSite]) -> Vec<String> {
    let Ok(probe) = crate::registry::sha256_digest(b"revertbot drill: can this site be pinned")
    else {
        return Vec::new();
    };
    let mut refused: Vec<String> = Vec::new();
    for site in sites {
        // An existing digest is replaced, as a revert's pin would.
        let target = site.reference.with_digest(&probe);
        if let Err(e) = manifest::pin(path, content, rules, &[target]) {
            let message = e.to_string();
            if !refused.contains(&message) {
                refused.push(message);
            }
        }
    }
    refused
}

fn kustomize_refs(doc: &Node, out: &mut Vec<KustomizeRef>) {
    for key in ["resources", "bases", "components"] {
        let Some(entries) = doc.get(key).and_then(Node::as_seq) else {
            continue;
        };
        for entry in entries {
            if let Some(text) = entry.as_str() {
                out.push(KustomizeRef {
                    line: entry.span.start.line,
                    column: entry.span.start.column,
                    entry: text.to_owned(),
                });
            }
        }
    }
}

fn helm_candidates(node: &Node, prefix: &str, depth: usize, out: &mut Vec<HelmCandidate>) {
    if depth > MAX_VALUES_DEPTH {
        return;
    }
    let Some(entries) = node.as_map() else {
        return;
    };
    let repository = node.get("repository").filter(|n| n.as_scalar().is_some());
    let tag = node.get("tag").and_then(Node::as_scalar);
    if let (Some(repository), Some(_)) = (repository, tag) {
        let repo_text = repository.as_str().unwrap_or_default();
        let tag_text = node.get("tag").and_then(Node::as_str).unwrap_or_default();
        if !repo_text.is_empty() {
            out.push(HelmCandidate {
                line: repository.span.start.line,
                column: repository.span.start.column,
                prefix: prefix.to_owned(),
                image: if tag_text.is_empty() {
                    repo_text.to_owned()
                } else {
                    format!("{repo_text}:{tag_text}")
                },
            });
        }
    }
    for entry in entries {
        let Some(key) = entry.key.as_str() else {
            continue;
        };
        if key.contains('.') {
            // A dotted key path could not name it.
            continue;
        }
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        helm_candidates(&entry.value, &path, depth + 1, out);
    }
}
