//! What preflight reads from git: the merge base, the files changed between
//! it and the head, the PR's commits and the files each changed, and file
//! contents — each bounded, with what was left out counted so the report
//! can say so.

use std::path::Path;

use serde::Serialize;

use crate::domain::CommitSha;
use crate::git::{GitError, InfraRepo, to_oid, to_sha};

use super::super::{CommandError, Result};

/// How a file changed between the merge base and the head. A rename is a
/// deletion plus an addition (no rename detection: both names count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub path: String,
    pub change: Change,
}

/// The changed files, at most the bound, and how many there were.
#[derive(Debug, Default)]
pub struct Diff {
    pub files: Vec<Changed>,
    pub total: usize,
}

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub sha: CommitSha,
    pub subject: String,
    /// Files changed against the first parent.
    pub files: Vec<String>,
}

/// The PR's non-merge commits, newest first, at most the bound, and how
/// many non-merge commits there were.
#[derive(Debug, Default)]
pub struct History {
    pub commits: Vec<CommitInfo>,
    pub total: usize,
}

/// A file's content at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    Text(String),
    /// Not at this revision (or not a regular file: a submodule, a tree).
    Missing,
    NotUtf8,
    /// Over the manifest size limit: never inflated.
    TooLarge(u64),
    /// Reading it would pass the run's byte budget: not read.
    OverBudget(u64),
}

/// The merge base of `base` and `head` (`git merge-base`).
pub fn merge_base(repo: &InfraRepo, base: &CommitSha, head: &CommitSha) -> Result<CommitSha> {
    match repo.raw().merge_base(to_oid(base), to_oid(head)) {
        Ok(oid) => Ok(to_sha(oid)),
        Err(e) => {
            let hint = if repo.is_shallow() {
                "the clone is shallow and does not reach it — check out with full history (actions/checkout `fetch-depth: 0`)"
            } else {
                "the two revisions share no history — pass the pull request's base with --base"
            };
            Err(CommandError::Runtime(format!(
                "cannot find the merge base of base {} and head {}: {} — {hint}",
                base.short(),
                head.short(),
                e.message()
            )))
        }
    }
}

/// Files changed from `from` to `to`, sorted by path, at most `max`.
pub fn changed_files(
    repo: &InfraRepo,
    from: &CommitSha,
    to: &CommitSha,
    max: usize,
) -> Result<Diff> {
    let doing = || format!("diffing {} against {}", to.short(), from.short());
    let tree = |sha: &CommitSha| {
        repo.raw()
            .find_commit(to_oid(sha))
            .and_then(|c| c.tree())
            .map_err(GitError::git(doing()))
    };
    let (old, new) = (tree(from)?, tree(to)?);
    let mut options = git2::DiffOptions::new();
    options.ignore_submodules(true);
    let diff = repo
        .raw()
        .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut options))
        .map_err(GitError::git(doing()))?;
    let mut files: Vec<Changed> = Vec::new();
    for delta in diff.deltas() {
        let (file, change) = match delta.status() {
            git2::Delta::Added => (delta.new_file(), Change::Added),
            git2::Delta::Deleted => (delta.old_file(), Change::Deleted),
            _ => (delta.new_file(), Change::Modified),
        };
        let Some(path) = file.path_bytes() else {
            continue;
        };
        files.push(Changed {
            path: String::from_utf8_lossy(path).into_owned(),
            change,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let total = files.len();
    files.truncate(max);
    Ok(Diff { files, total })
}

/// Commits reachable from `head` and not from `merge_base`, newest first,
/// merges left out (a merge's first-parent diff is the branch it brings in,
/// and on `pull_request` runs the checkout itself is a merge commit).
pub fn commits(
    repo: &InfraRepo,
    merge_base: &CommitSha,
    head: &CommitSha,
    max: usize,
) -> Result<History> {
    let doing = || {
        format!(
            "listing the commits from {} to {}",
            merge_base.short(),
            head.short()
        )
    };
    let mut walk = repo.raw().revwalk().map_err(GitError::git(doing()))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL)
        .map_err(GitError::git(doing()))?;
    walk.push(to_oid(head)).map_err(GitError::git(doing()))?;
    walk.hide(to_oid(merge_base))
        .map_err(GitError::git(doing()))?;
    let mut history = History::default();
    for oid in walk {
        let oid = oid.map_err(GitError::git(doing()))?;
        let commit = repo
            .raw()
            .find_commit(oid)
            .map_err(GitError::git(doing()))?;
        if commit.parent_count() > 1 {
            continue;
        }
        history.total += 1;
        if history.commits.len() >= max {
            continue;
        }
        let sha = to_sha(oid);
        let files = repo.files_changed(&sha)?;
        history.commits.push(CommitInfo {
            subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
            sha,
            files,
        });
    }
    Ok(history)
}

/// The file at `path` in `rev`. Its size is read from the object header
/// first: a file over the manifest limit, or one that would take the run
/// past `budget` bytes, is not inflated. `budget` shrinks by what is read.
pub fn read_blob(repo: &InfraRepo, rev: &CommitSha, path: &str, budget: &mut u64) -> Result<Blob> {
    let doing = || format!("reading {path} at {}", rev.short());
    let tree = repo
        .raw()
        .find_commit(to_oid(rev))
        .and_then(|c| c.tree())
        .map_err(GitError::git(doing()))?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(Blob::Missing);
    };
    if entry.kind() != Some(git2::ObjectType::Blob) {
        return Ok(Blob::Missing);
    }
    let size = repo.blob_size(entry.id(), path)?;
    if crate::manifest::check_size(path, size).is_err() {
        return Ok(Blob::TooLarge(size));
    }
    if size > *budget {
        return Ok(Blob::OverBudget(size));
    }
    *budget -= size;
    let blob = repo
        .raw()
        .find_blob(entry.id())
        .map_err(GitError::git(doing()))?;
    Ok(match std::str::from_utf8(blob.content()) {
        Ok(text) => Blob::Text(text.to_owned()),
        Err(_) => Blob::NotUtf8,
    })
}
