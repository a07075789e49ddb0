//! Which commits broke the app: those reachable from the deployed revision
//! and not from the last-known-good one that change a file under the app's
//! paths. Merges count by their first-parent diff (what the merge brought to
//! the deployed branch). A rename counts on both sides, so moving a file into
//! or out of the app makes the commit a culprit.
//!
//! A commit carrying revertbot's trailers for the app is its own revert only
//! when `verify` confirms it; one that does not verify is reported and
//! searched like any other commit.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Diff, DiffOptions, Oid, Sort};
use serde::Serialize;

use super::verify::{AppScope, ForgedRevert, Verification};
use super::{AppPaths, GitError, InfraRepo, Result, to_oid, to_sha};
use crate::domain::CommitSha;
use crate::domain::trailers::RevertTrailers;

/// A commit to revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Culprit {
    pub sha: CommitSha,
    pub subject: String,
    pub author: String,
    /// Files under the app's paths that it changed (old and new names).
    pub files: Vec<String>,
    pub is_merge: bool,
}

/// A culprit an earlier revertbot revert already undid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlreadyReverted {
    pub culprit: CommitSha,
    pub by: CommitSha,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CulpritSearch {
    /// Newest first: the order in which they are reverted.
    pub culprits: Vec<Culprit>,
    /// Culprits that a revertbot revert (between LKG and the branch tip)
    /// already undid; they are not reverted again.
    pub already_reverted: Vec<AlreadyReverted>,
    /// revertbot's own (verified) reverts found in the range; never culprits
    /// themselves.
    pub own_reverts: Vec<CommitSha>,
    /// Commits between LKG and the branch tip that claim to be revertbot's
    /// revert of the app and are not: a warning. Within the range they are
    /// searched like any other commit.
    pub forged_reverts: Vec<ForgedRevert>,
}

/// What the verified reverts in a stretch of history undid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnReverts {
    /// Culprit → the revert that undid it (the newest, when several did).
    pub reverted_by: BTreeMap<CommitSha, CommitSha>,
    /// Claims that did not verify, newest first.
    pub forged: Vec<ForgedRevert>,
}

impl InfraRepo {
    /// Finds the culprits between `lkg` and `deployed` for `app`. `tip` is
    /// the current branch tip (at or after `deployed`): reverts that landed
    /// after the deploy are honoured.
    pub fn find_culprits(
        &self,
        deployed: &CommitSha,
        lkg: &CommitSha,
        tip: &CommitSha,
        app: &AppScope<'_>,
    ) -> Result<CulpritSearch> {
        self.find_commit(deployed)?;
        self.find_commit(lkg)?;
        if !self.is_ancestor(lkg, deployed)? {
            return Err(GitError::NotAncestor {
                lkg: lkg.clone(),
                deployed: deployed.clone(),
            });
        }
        // Commits after the deploy are only searched for revertbot reverts.
        let later = if self.is_ancestor(deployed, tip)? {
            self.own_reverts_in(deployed, tip, app)?
        } else {
            OwnReverts::default()
        };

        let mut search = CulpritSearch {
            forged_reverts: later.forged,
            ..CulpritSearch::default()
        };
        let mut reverted_by: BTreeMap<CommitSha, CommitSha> = later.reverted_by;
        let mut candidates = Vec::new();
        for oid in self.first_parent_range(deployed, lkg)? {
            let (commit, trailers) = self.commit_and_trailers(oid)?;
            let sha = to_sha(oid);
            match self.verify_commit(&commit, trailers, app)? {
                Verification::Verified(revert) => {
                    for reverted in revert.culprits {
                        reverted_by.entry(reverted).or_insert_with(|| sha.clone());
                    }
                    search.own_reverts.push(sha);
                    continue;
                }
                Verification::Forged { reason } => {
                    tracing::warn!(commit = %sha, %reason, "a commit claims to be revertbot's revert and is not; searching it like any other commit");
                    search.forged_reverts.push(ForgedRevert {
                        commit: sha.clone(),
                        reason,
                    });
                }
                Verification::NoClaim => {}
            }
            let files = self.app_files_changed(&commit, app.paths)?;
            if files.is_empty() {
                continue;
            }
            candidates.push(Culprit {
                sha,
                subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                    .into_owned(),
                author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
                files,
                is_merge: commit.parent_count() > 1,
            });
        }
        for culprit in candidates {
            match reverted_by.get(&culprit.sha) {
                Some(by) => search.already_reverted.push(AlreadyReverted {
                    culprit: culprit.sha.clone(),
                    by: by.clone(),
                }),
                None => search.culprits.push(culprit),
            }
        }
        Ok(search)
    }

    /// Culprits a verified revertbot revert of `app` in `(from, to]` (first
    /// parent) undid, with the revert that did it; and the claims that did
    /// not verify.
    pub fn own_reverts_between(
        &self,
        from: &CommitSha,
        to: &CommitSha,
        app: &AppScope<'_>,
    ) -> Result<OwnReverts> {
        self.own_reverts_in(from, to, app)
    }

    /// `wanted` commits in first-parent order from `head` (newest first);
    /// commits not on that chain are left out.
    pub fn first_parent_order(
        &self,
        head: &CommitSha,
        wanted: &[CommitSha],
    ) -> Result<Vec<CommitSha>> {
        let mut found = Vec::new();
        let mut current = Some(self.find_commit(head)?);
        while let Some(commit) = current {
            if found.len() == wanted.len() {
                break;
            }
            let sha = to_sha(commit.id());
            if wanted.contains(&sha) {
                found.push(sha);
            }
            current = commit.parent(0).ok();
        }
        Ok(found)
    }

    /// Every file a commit changed against its first parent (both names of
    /// a rename).
    pub fn files_changed(&self, sha: &CommitSha) -> Result<Vec<String>> {
        let commit = self.find_commit(sha)?;
        if let Ok(parent) = commit.parent(0) {
            let doing = || format!("diffing commit {sha}");
            let before = parent.tree().map_err(GitError::git(doing()))?;
            let after = commit.tree().map_err(GitError::git(doing()))?;
            // Skips unchanged subtrees, which libgit2's diff opens anyway.
            let changes = super::tree_diff::changed_files(self.raw(), &before, &after)?;
            return Ok(changes.into_iter().map(|c| c.path).collect());
        }
        let diff = self.first_parent_diff(&commit, None)?;
        let mut files = BTreeSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path_bytes() {
                    files.insert(String::from_utf8_lossy(path).into_owned());
                }
            }
        }
        Ok(files.into_iter().collect())
    }

    /// A commit as a culprit of an app (`--commit`).
    pub fn describe_culprit(&self, sha: &CommitSha, paths: &AppPaths) -> Result<Culprit> {
        let commit = self.find_commit(sha)?;
        Ok(Culprit {
            sha: sha.clone(),
            subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
            author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
            files: self.app_files_changed(&commit, paths)?,
            is_merge: commit.parent_count() > 1,
        })
    }

    fn own_reverts_in(
        &self,
        from: &CommitSha,
        to: &CommitSha,
        app: &AppScope<'_>,
    ) -> Result<OwnReverts> {
        let mut out = OwnReverts::default();
        for oid in self.first_parent_range(to, from)? {
            let (commit, trailers) = self.commit_and_trailers(oid)?;
            match self.verify_commit(&commit, trailers, app)? {
                Verification::Verified(revert) => {
                    for reverted in revert.culprits {
                        out.reverted_by
                            .entry(reverted)
                            .or_insert_with(|| to_sha(oid));
                    }
                }
                Verification::Forged { reason } => {
                    tracing::warn!(commit = %oid, %reason, "a commit claims to be revertbot's revert and is not; it undoes nothing");
                    out.forged.push(ForgedRevert {
                        commit: to_sha(oid),
                        reason,
                    });
                }
                Verification::NoClaim => {}
            }
        }
        Ok(out)
    }

    fn commit_and_trailers(&self, oid: Oid) -> Result<(git2::Commit<'_>, RevertTrailers)> {
        let commit = self
            .raw()
            .find_commit(oid)
            .map_err(GitError::git(format!("reading commit {oid}")))?;
        let trailers = RevertTrailers::parse(&String::from_utf8_lossy(commit.message_bytes()));
        Ok((commit, trailers))
    }

    /// Commits on the first-parent chain from `head` back to (excluding)
    /// `stop` and its ancestors, newest first.
    pub(crate) fn first_parent_range(
        &self,
        head: &CommitSha,
        stop: &CommitSha,
    ) -> Result<Vec<Oid>> {
        let doing = || format!("walking history from {head} back to {stop}");
        let mut walk = self.raw().revwalk().map_err(GitError::git(doing()))?;
        walk.set_sorting(Sort::TOPOLOGICAL)
            .map_err(GitError::git(doing()))?;
        walk.simplify_first_parent()
            .map_err(GitError::git(doing()))?;
        walk.push(to_oid(head)).map_err(GitError::git(doing()))?;
        walk.hide(to_oid(stop)).map_err(GitError::git(doing()))?;
        walk.collect::<Result<Vec<_>, _>>()
            .map_err(GitError::git(doing()))
    }

    /// The app files a commit changed relative to its first parent (or to
    /// nothing, for a root commit), with both names of a rename.
    pub(super) fn app_files_changed(
        &self,
        commit: &git2::Commit<'_>,
        paths: &AppPaths,
    ) -> Result<Vec<String>> {
        // Most commits in a big infra repo touch other apps: when the app's
        // directories are the same trees as in the parent, nothing under them
        // changed and no diff is needed.
        if let Some(dirs) = paths.dirs()
            && self.dirs_unchanged(commit, dirs)?
        {
            return Ok(Vec::new());
        }
        let diff = self.first_parent_diff(commit, paths.dirs())?;
        let mut files = BTreeSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path_bytes() {
                    let path = String::from_utf8_lossy(path);
                    if paths.is_match(path.as_ref()) {
                        files.insert(path.into_owned());
                    }
                }
            }
        }
        Ok(files.into_iter().collect())
    }

    /// True when every directory in `dirs` is the same tree (or equally
    /// absent) in `commit` and its first parent.
    fn dirs_unchanged(&self, commit: &git2::Commit<'_>, dirs: &[String]) -> Result<bool> {
        let doing = || format!("reading the tree of {}", commit.id());
        let Ok(parent) = commit.parent(0) else {
            return Ok(false);
        };
        let tree = commit.tree().map_err(GitError::git(doing()))?;
        let parent_tree = parent.tree().map_err(GitError::git(doing()))?;
        Ok(dirs.iter().all(|dir| {
            let path = std::path::Path::new(dir);
            let here = tree.get_path(path).ok().map(|e| e.id());
            let before = parent_tree.get_path(path).ok().map(|e| e.id());
            here == before
        }))
    }

    /// The diff of a commit against its first parent, limited to `dirs`
    /// when given.
    pub(crate) fn first_parent_diff(
        &self,
        commit: &git2::Commit<'_>,
        dirs: Option<&[String]>,
    ) -> Result<Diff<'_>> {
        let doing = || format!("diffing commit {}", commit.id());
        let tree = commit.tree().map_err(GitError::git(doing()))?;
        let parent_tree = match commit.parent(0) {
            Ok(parent) => Some(parent.tree().map_err(GitError::git(doing()))?),
            Err(_) => None,
        };
        let mut options = DiffOptions::new();
        // Renames need no detection: a rename is a delete plus an add, and
        // both names are checked against the app's paths.
        options.ignore_submodules(true);
        for dir in dirs.unwrap_or_default() {
            // A directory pathspec; matching is literal (no fnmatch).
            options.pathspec(format!("{dir}/"));
        }
        if dirs.is_some() {
            options.disable_pathspec_match(true);
        }
        self.raw()
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut options))
            .map_err(GitError::git(doing()))
    }
}
