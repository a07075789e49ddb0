//! Building the revert: a tree on top of the branch tip that undoes the
//! culprits (or restores the app's paths to last-known-good), with the LKG
//! images pinned by digest, and the commit that records it.
//!
//! Everything happens in memory and in the object database: no ref, index or
//! work tree is touched until the caller pushes the finished commit. A
//! conflict therefore leaves nothing behind.

use std::collections::BTreeSet;
use std::path::Path;

use git2::{Index, Oid, Signature, Tree};
use serde::Serialize;

use super::{AppPaths, GitError, InfraRepo, Result, to_sha};
use crate::domain::{CommitSha, ImageRef};
use crate::manifest::PinRules;

/// How the revert undoes the damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `git revert` each culprit, newest first (merges against mainline 1).
    Commits,
    /// Restore every file under the app's paths to its LKG content.
    Paths,
    /// `git revert` each culprit limited to the app's paths (three-way, so
    /// later edits in the app survive); every other file the culprits
    /// changed is left as it is. The default: a monorepo commit that also
    /// touched other apps is reverted for the broken app only.
    App,
}

pub struct RevertSpec<'a> {
    /// Branch tip the revert is built on.
    pub base: &'a CommitSha,
    /// Newest first.
    pub culprits: &'a [CommitSha],
    pub last_known_good: Option<&'a CommitSha>,
    pub scope: Scope,
    pub paths: &'a AppPaths,
    /// LKG images, each with its digest.
    pub pins: &'a [ImageRef],
    pub pin_rules: &'a PinRules,
    /// Allow the revert to change files outside `paths`.
    pub allow_outside_paths: bool,
}

/// One digest pin applied to a manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedPin {
    pub file: String,
    pub line: usize,
    pub before: String,
    pub after: String,
    pub digest: String,
}

/// An image the LKG record names but that a manifest references with
/// another tag: left alone, reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinMismatch {
    pub file: String,
    pub line: usize,
    pub found: String,
    pub recorded: String,
}

/// A Flux `$imagepolicy` marker on a pinned line, suspended in the revert so
/// image automation cannot push the bad version back over the pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuspendedMarker {
    pub file: String,
    pub line: usize,
    pub marker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub status: char,
}

#[derive(Debug, Clone)]
pub struct BuiltRevert {
    pub tree: Oid,
    pub changes: Vec<FileChange>,
    pub pins: PinWork,
}

/// What pinning did to the app's manifests.
#[derive(Debug, Clone, Default)]
pub struct PinWork {
    /// Image references rewritten to a digest.
    pub applied: Vec<AppliedPin>,
    /// Digests of LKG images a manifest already pinned (nothing to edit).
    pub already_pinned: Vec<String>,
    pub mismatches: Vec<PinMismatch>,
    pub suspended_markers: Vec<SuspendedMarker>,
    /// Manifests that were not scanned for images, with the reason.
    pub unscanned: Vec<(String, String)>,
}

impl PinWork {
    /// Whether `digest` ended up pinned in some manifest of the revert.
    pub fn covers(&self, digest: &str) -> bool {
        self.applied.iter().any(|p| p.digest == digest)
            || self.already_pinned.iter().any(|d| d == digest)
    }
}

impl BuiltRevert {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl InfraRepo {
    pub fn build_revert(&self, spec: &RevertSpec<'_>) -> Result<BuiltRevert> {
        let base = self.find_commit(spec.base)?;
        let base_tree = base
            .tree()
            .map_err(GitError::git(format!("reading the tree of {}", spec.base)))?;
        // The fast way when it applies: merge only the app's directories and
        // splice them into the tip (no full-repository index to hash).
        let dirs = match spec.scope {
            Scope::Commits => self.disjoint_app_dirs(spec)?,
            // Limited to the app anyway: what the culprits did elsewhere
            // does not matter.
            Scope::App => self.app_dirs(spec),
            Scope::Paths => None,
        };
        if let Some(dirs) = dirs {
            let (tree, pins) = self.revert_within_dirs(&base_tree, spec, &dirs)?;
            return self.finish(&base_tree, tree, pins, spec);
        }
        let reverted = match spec.scope {
            Scope::Commits => self.revert_commits(&base_tree, spec.culprits)?,
            Scope::App => self.revert_commits_within(&base_tree, spec.culprits, spec.paths)?,
            Scope::Paths => {
                let lkg = spec.last_known_good.ok_or_else(|| GitError::RevisionNotFound {
                    rev: "last-known-good".to_owned(),
                    hint: "`scope: paths` restores the app's files to the last-known-good revision, so one must be known (record it, or pass --lkg)".to_owned(),
                })?;
                self.restore_paths(&base_tree, lkg, spec.paths)?
            }
        };
        let mut index = Index::new().map_err(GitError::git("creating an in-memory index"))?;
        let reverted_tree = self
            .raw()
            .find_tree(reverted)
            .map_err(GitError::git("reading the reverted tree"))?;
        index
            .read_tree(&reverted_tree)
            .map_err(GitError::git("loading the reverted tree"))?;
        let pins = self.pin_images(&mut index, spec, "")?;
        let tree = index
            .write_tree_to(self.raw())
            .map_err(GitError::git("writing the revert tree"))?;
        self.finish(&base_tree, tree, pins, spec)
    }

    /// Lists what the revert changes and refuses changes outside the app.
    fn finish(
        &self,
        base_tree: &Tree<'_>,
        tree: Oid,
        pins: PinWork,
        spec: &RevertSpec<'_>,
    ) -> Result<BuiltRevert> {
        let changes = self.tree_changes(base_tree, tree)?;
        if !spec.allow_outside_paths {
            let outside: Vec<String> = changes
                .iter()
                .filter(|c| !spec.paths.is_match(&c.path))
                .map(|c| c.path.clone())
                .collect();
            if !outside.is_empty() {
                return Err(GitError::OutsidePaths { files: outside });
            }
        }
        Ok(BuiltRevert {
            tree,
            changes,
            pins,
        })
    }

    /// git revert semantics, applied to trees: for each culprit C (newest
    /// first) merge (ancestor C, ours current, theirs C's first parent).
    pub(super) fn revert_commits(
        &self,
        base_tree: &Tree<'_>,
        culprits: &[CommitSha],
    ) -> Result<Oid> {
        self.revert_each(base_tree, culprits, None)
    }

    /// git revert semantics limited to `paths`: each culprit's change to the
    /// app's files is undone three-way on the current app files; nothing
    /// outside `paths` takes part, so changes (and conflicts) there cannot
    /// stop the revert.
    fn revert_commits_within(
        &self,
        base_tree: &Tree<'_>,
        culprits: &[CommitSha],
        paths: &AppPaths,
    ) -> Result<Oid> {
        self.revert_each(base_tree, culprits, Some(paths))
    }

    fn revert_each(
        &self,
        base_tree: &Tree<'_>,
        culprits: &[CommitSha],
        within: Option<&AppPaths>,
    ) -> Result<Oid> {
        let mut current = base_tree.id();
        for sha in culprits {
            let commit = self.find_commit(sha)?;
            let doing = || format!("reverting {sha}");
            let culprit_tree = commit.tree().map_err(GitError::git(doing()))?;
            let mainline_tree = match commit.parent(0) {
                Ok(parent) => parent.tree().map_err(GitError::git(doing()))?,
                Err(_) => self.empty_tree()?,
            };
            let ours = self
                .raw()
                .find_tree(current)
                .map_err(GitError::git(doing()))?;
            // Limited to the app: every tree of the merge holds only its
            // files, and the result is spliced back into the whole tree.
            let only_app = |tree: &Tree<'_>| -> Result<Option<Tree<'_>>> {
                let Some(paths) = within else {
                    return Ok(None);
                };
                let id = self.filtered_tree(tree, paths, &doing())?;
                self.raw()
                    .find_tree(id)
                    .map(Some)
                    .map_err(GitError::git(doing()))
            };
            let (a, o, t) = (
                only_app(&culprit_tree)?,
                only_app(&ours)?,
                only_app(&mainline_tree)?,
            );
            let mut merged = self
                .raw()
                .merge_trees(
                    a.as_ref().unwrap_or(&culprit_tree),
                    o.as_ref().unwrap_or(&ours),
                    t.as_ref().unwrap_or(&mainline_tree),
                    None,
                )
                .map_err(GitError::git(doing()))?;
            if merged.has_conflicts() {
                return Err(conflict(&merged, sha, &doing())?);
            }
            let merged_tree = merged
                .write_tree_to(self.raw())
                .map_err(GitError::git(doing()))?;
            current = match within {
                None => merged_tree,
                Some(paths) => {
                    let app_tree = self
                        .raw()
                        .find_tree(merged_tree)
                        .map_err(GitError::git(doing()))?;
                    self.splice_paths(&ours, &app_tree, paths, &doing())?
                }
            };
        }
        Ok(current)
    }

    /// `tree` with only the entries matching `paths`.
    fn filtered_tree(&self, tree: &Tree<'_>, paths: &AppPaths, doing: &str) -> Result<Oid> {
        let mut index = Index::new().map_err(GitError::git(doing.to_owned()))?;
        index
            .read_tree(tree)
            .map_err(GitError::git(doing.to_owned()))?;
        index
            .remove_all(
                ["*"],
                Some(&mut |path: &Path, _: &[u8]| {
                    // 0: remove, 1: keep (libgit2's matched-path callback).
                    i32::from(paths.is_match(&path.to_string_lossy()))
                }),
            )
            .map_err(GitError::git(doing.to_owned()))?;
        index
            .write_tree_to(self.raw())
            .map_err(GitError::git(doing.to_owned()))
    }

    /// The base tree with every path matching `paths` replaced by its LKG
    /// version (files the LKG did not have are removed).
    fn restore_paths(
        &self,
        base_tree: &Tree<'_>,
        lkg: &CommitSha,
        paths: &AppPaths,
    ) -> Result<Oid> {
        let doing = format!("restoring the app's paths to {lkg}");
        let lkg_tree = self
            .find_commit(lkg)?
            .tree()
            .map_err(GitError::git(doing.clone()))?;
        self.splice_paths(base_tree, &lkg_tree, paths, &doing)
    }

    /// `base_tree` with every path matching `paths` replaced by the version
    /// in `source` (files `source` does not have are removed).
    fn splice_paths(
        &self,
        base_tree: &Tree<'_>,
        source: &Tree<'_>,
        paths: &AppPaths,
        doing: &str,
    ) -> Result<Oid> {
        let doing = || doing.to_owned();
        let lkg_tree = source;
        let mut index = Index::new().map_err(GitError::git(doing()))?;
        index.read_tree(base_tree).map_err(GitError::git(doing()))?;
        let app_entries: Vec<Vec<u8>> = index
            .iter()
            .filter(|e| paths.is_match(String::from_utf8_lossy(&e.path).as_ref()))
            .map(|e| e.path)
            .collect();
        for path in app_entries {
            let path = String::from_utf8_lossy(&path).into_owned();
            index
                .remove_path(Path::new(&path))
                .map_err(GitError::git(doing()))?;
        }
        let mut lkg_index = Index::new().map_err(GitError::git(doing()))?;
        lkg_index
            .read_tree(lkg_tree)
            .map_err(GitError::git(doing()))?;
        for entry in lkg_index.iter() {
            if paths.is_match(String::from_utf8_lossy(&entry.path).as_ref()) {
                index.add(&entry).map_err(GitError::git(doing()))?;
            }
        }
        index
            .write_tree_to(self.raw())
            .map_err(GitError::git(doing()))
    }

    fn tree_changes(&self, from: &Tree<'_>, to: Oid) -> Result<Vec<FileChange>> {
        let to = self
            .raw()
            .find_tree(to)
            .map_err(GitError::git("reading the revert tree"))?;
        super::tree_diff::changed_files(self.raw(), from, &to)
    }

    /// Unified diff of `tree` against `base`'s tree, for `plan`.
    pub fn patch_text(&self, base: &CommitSha, tree: Oid) -> Result<String> {
        let doing = "rendering the revert diff";
        let from = self
            .find_commit(base)?
            .tree()
            .map_err(GitError::git(doing))?;
        let to = self.raw().find_tree(tree).map_err(GitError::git(doing))?;
        let diff = self
            .raw()
            .diff_tree_to_tree(Some(&from), Some(&to), None)
            .map_err(GitError::git(doing))?;
        let mut text = String::new();
        diff.print(git2::DiffFormat::Patch, |_delta, _hunk, line| {
            match line.origin() {
                '+' | '-' | ' ' => text.push(line.origin()),
                _ => {}
            }
            text.push_str(&String::from_utf8_lossy(line.content()));
            true
        })
        .map_err(GitError::git(doing))?;
        Ok(text)
    }

    /// Writes the revert commit object with `base` as its only parent. No
    /// ref moves: publishing is the push.
    pub fn commit_revert(&self, base: &CommitSha, tree: Oid, message: &str) -> Result<CommitSha> {
        let doing = "creating the revert commit";
        let parent = self.find_commit(base)?;
        let tree = self.raw().find_tree(tree).map_err(GitError::git(doing))?;
        let signature = self.signature()?;
        // The message quotes the reason (controller text): pushed, public.
        let message = crate::redact::scrub(message);
        let oid = self
            .raw()
            .commit(None, &signature, &signature, &message, &tree, &[&parent])
            .map_err(GitError::git(doing))?;
        Ok(to_sha(oid))
    }

    /// The tree of `base` with `files` (repo-relative path, new content)
    /// written over it; nothing else changes.
    pub fn tree_with_files(&self, base: &CommitSha, files: &[(String, Vec<u8>)]) -> Result<Oid> {
        let doing = "writing the changed files";
        let tree = self
            .find_commit(base)?
            .tree()
            .map_err(GitError::git(doing))?;
        let mut index = Index::new().map_err(GitError::git(doing))?;
        index.read_tree(&tree).map_err(GitError::git(doing))?;
        for (path, content) in files {
            let Some(mut entry) = index.get_path(Path::new(path), 0) else {
                return Err(GitError::RevisionNotFound {
                    rev: format!("{base}:{path}"),
                    hint: "the file is not in the branch tip any more; run again".to_owned(),
                });
            };
            entry.id = self.raw().blob(content).map_err(GitError::git(doing))?;
            entry.file_size = u32::try_from(content.len()).unwrap_or(u32::MAX);
            index.add(&entry).map_err(GitError::git(doing))?;
        }
        index
            .write_tree_to(self.raw())
            .map_err(GitError::git(doing))
    }

    /// revertbot's identity: the repo's configured user if any, otherwise a
    /// fixed bot identity.
    pub(crate) fn signature(&self) -> Result<Signature<'static>> {
        if let Ok(sig) = self.raw().signature() {
            return Ok(sig.to_owned());
        }
        Signature::now("revertbot", "revertbot@users.noreply.github.com")
            .map_err(GitError::git("creating the commit signature"))
    }

    pub(super) fn empty_tree(&self) -> Result<Tree<'_>> {
        let oid = self
            .raw()
            .treebuilder(None)
            .and_then(|b| b.write())
            .map_err(GitError::git("writing the empty tree"))?;
        self.raw()
            .find_tree(oid)
            .map_err(GitError::git("reading the empty tree"))
    }

    /// Files (under `paths`) of a commit's tree, for `record` and `plan`.
    pub fn app_files(&self, rev: &CommitSha, paths: &AppPaths) -> Result<Vec<String>> {
        let tree = self
            .find_commit(rev)?
            .tree()
            .map_err(GitError::git(format!("reading the tree of {rev}")))?;
        let mut index = Index::new().map_err(GitError::git("creating an in-memory index"))?;
        index
            .read_tree(&tree)
            .map_err(GitError::git(format!("reading the tree of {rev}")))?;
        Ok(index
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .filter(|p| paths.is_match(p))
            .collect())
    }

    /// The first-parent commit of a revert, i.e. what it was built on.
    pub fn parent_of(&self, sha: &CommitSha) -> Result<Option<CommitSha>> {
        let commit = self.find_commit(sha)?;
        Ok(commit.parent_id(0).ok().map(to_sha))
    }
}

/// The conflict error for a merge that did not apply cleanly, naming every
/// file involved.
fn conflict(merged: &Index, sha: &CommitSha, doing: &str) -> Result<GitError> {
    let mut files = BTreeSet::new();
    let conflicts = merged
        .conflicts()
        .map_err(GitError::git(doing.to_owned()))?;
    for c in conflicts.flatten() {
        for entry in [c.ancestor, c.our, c.their].into_iter().flatten() {
            files.insert(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    Ok(GitError::Conflict {
        commit: sha.clone(),
        files: files.into_iter().collect(),
    })
}
