//! What the simulated controller reads from git: the branch tip, and an
//! app's manifests at a revision (the containers and image references the
//! app would run). Blocking (git2): call inside `spawn_blocking`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::SimError;
use crate::domain::{CommitSha, ImageRef};
use crate::git::InfraRepo;
use crate::manifest::{PinRules, SiteKind, scan};

/// An app's desired state at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub revision: CommitSha,
    /// Changes whenever any of the app's files changes (the pod template
    /// hash: a new ReplicaSet is rolled out only when it changes).
    pub content_hash: u64,
    /// `(container, image as written)`, kustomize `images:` overrides
    /// applied.
    pub containers: Vec<(String, ImageRef)>,
}

pub(crate) fn globs(app: &str, patterns: &[String]) -> Result<GlobSet, SimError> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| SimError::Config {
                message: format!("app `{app}`: path glob `{p}` is invalid: {e}"),
            })?;
        set.add(glob);
    }
    set.build().map_err(|e| SimError::Config {
        message: format!("app `{app}`: path globs do not compile: {e}"),
    })
}

fn git_error(repo: &Path, doing: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Git {
        repo: repo.to_owned(),
        message: format!("{doing}: {e}"),
    }
}

/// The commit `refs/heads/<branch>` points at.
pub(crate) fn tip(repo: &Path, branch: &str) -> Result<CommitSha, SimError> {
    let infra = InfraRepo::open(repo).map_err(|e| git_error(repo, "opening", e))?;
    infra
        .resolve(&format!("refs/heads/{branch}"))
        .map_err(|e| git_error(repo, &format!("reading branch {branch}"), e))
}

/// The app's manifests at `revision`: every `.yaml`/`.yml` file matching
/// `paths`, scanned for image references (Helm values per `rules`).
///
/// No kustomize build: an `images:` override whose image no container in
/// the app's files names (the workload sits in a base outside the paths)
/// runs as a container of its own, as it would once the base is built.
pub(crate) fn render(
    repo: &Path,
    revision: &CommitSha,
    app: &str,
    paths: &GlobSet,
    rules: &PinRules,
) -> Result<Rendered, SimError> {
    let infra = InfraRepo::open(repo).map_err(|e| git_error(repo, "opening", e))?;
    let raw = infra.raw();
    let oid = git2::Oid::from_str(revision.as_str())
        .map_err(|e| git_error(repo, "parsing a revision", e))?;
    let tree = raw
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|e| git_error(repo, &format!("reading the tree of {revision}"), e))?;
    let mut files: Vec<(String, git2::Oid)> = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = std::str::from_utf8(entry.name_bytes())
        {
            let path = format!("{dir}{name}");
            if paths.is_match(&path) {
                files.push((path, entry.id()));
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| git_error(repo, &format!("walking the tree of {revision}"), e))?;
    files.sort();

    let mut hasher = DefaultHasher::new();
    let mut containers: Vec<(String, ImageRef)> = Vec::new();
    let mut overrides: Vec<ImageRef> = Vec::new();
    // Helm values sites by their repository key, and Image Updater
    // parameters by their name parameter: a parameter is a `--set` over
    // the values.
    let mut helm_values: Vec<(String, ImageRef)> = Vec::new();
    let mut helm_parameters: Vec<(String, ImageRef)> = Vec::new();
    for (path, blob) in &files {
        (path, blob.as_bytes()).hash(&mut hasher);
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let content = raw
            .find_blob(*blob)
            .map_err(|e| git_error(repo, &format!("reading {path} at {revision}"), e))?;
        let Ok(text) = std::str::from_utf8(content.content()) else {
            continue;
        };
        let scanned = scan(path, text, rules).map_err(|e| SimError::Manifest {
            app: app.to_owned(),
            message: format!("{path} at {revision}: {e}"),
        })?;
        for site in scanned.sites {
            match site.kind {
                SiteKind::Container { container, .. } => {
                    containers.push((container, site.reference));
                }
                SiteKind::KustomizeImage { .. } => overrides.push(site.reference),
                SiteKind::HelmValues { repository_key, .. } => {
                    helm_values.push((repository_key, site.reference));
                }
                SiteKind::HelmParameter { name_param, .. } => {
                    helm_parameters.push((name_param, site.reference));
                }
            }
        }
    }
    for (param, image) in helm_parameters {
        let target = helm_values
            .iter()
            .position(|(key, _)| *key == param)
            .or_else(|| helm_values.iter().position(|(_, v)| v.same_name(&image)));
        match target.and_then(|i| helm_values.get_mut(i)) {
            Some((_, value)) => *value = image,
            None => helm_values.push((param, image)),
        }
    }
    containers.extend(
        helm_values
            .into_iter()
            .map(|(_, image)| (app.to_owned(), image)),
    );
    for (_, image) in &mut containers {
        if let Some(o) = overrides.iter().find(|o| o.same_name(image)) {
            *image = o.clone();
        }
    }
    let orphans: Vec<ImageRef> = overrides
        .into_iter()
        .filter(|o| !containers.iter().any(|(_, image)| o.same_name(image)))
        .collect();
    for o in orphans {
        let name = o.repository().rsplit('/').next().unwrap_or(app).to_owned();
        containers.push((name, o));
    }
    Ok(Rendered {
        revision: revision.clone(),
        content_hash: hasher.finish(),
        containers,
    })
}
