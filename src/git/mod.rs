//! The git adapter: one narrow wrapper over git2 for everything revertbot
//! does to the infra repo (fetch, culprit search, revert commit, notes ledger,
//! push). git2 types stay in here; callers see `CommitSha` and plain data.
//!
//! git2 is blocking and `!Sync`: each task opens its own `InfraRepo`.

mod auth;
pub mod culprits;
pub mod ledger;
mod paths;
mod pin;
pub mod remote;
pub mod revert;
mod revert_dirs;
pub mod sandbox;
pub mod sweep;
mod tree_diff;
pub mod verify;

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

pub use auth::{Credentials, redact_url};
pub use paths::{AppPaths, app_glob};
pub use remote::{FetchStats, Remote};
pub use verify::{AppScope, ForgedRevert, Verification};

use crate::domain::CommitSha;

/// Everything that can go wrong talking to the infra repo. Each variant says
/// which ref, commit or remote was involved and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "cannot open the infra repository at {path}: {source} — run revertbot inside a git checkout or pass --repo"
    )]
    Open { path: PathBuf, source: git2::Error },

    #[error("revision `{rev}` is not in the repository — {hint}")]
    RevisionNotFound { rev: String, hint: String },

    #[error(
        "last-known-good {lkg} is not an ancestor of the deployed revision {deployed} — \
         the branch history was rewritten or the wrong revision was given; pass --lkg with a commit the deployed revision contains"
    )]
    NotAncestor { lkg: CommitSha, deployed: CommitSha },

    #[error(
        "last-known-good {lkg} was not found within the newest {depth} commits of the shallow clone — \
         fetch more history first (git fetch --deepen=N, or actions/checkout with fetch-depth: 0), or pass --lkg with a newer known-good commit"
    )]
    ShallowLimit { lkg: CommitSha, depth: u32 },

    #[error("reverting {commit} conflicts with later changes in: {} — nothing was written; revert by hand or use `revert: {{ scope: paths }}`", files.join(", "))]
    Conflict {
        commit: CommitSha,
        files: Vec<String>,
    },

    #[error("the revert would change files outside the app's paths: {} — use `revert: {{ scope: paths }}` or list those paths in the app", files.join(", "))]
    OutsidePaths { files: Vec<String> },

    #[error("{0}")]
    Manifest(#[from] crate::manifest::ManifestError),

    #[error(
        "the remote rejected the push of {refname}: {reason} — the branch may be protected or a server hook refused it; open a pull request instead (--mode pr) or allow revertbot to push"
    )]
    PushRejected { refname: String, reason: String },

    #[error(
        "{refname} moved on the remote {attempts} times while revertbot was pushing — another writer is busy; run again"
    )]
    RemoteKeptMoving { refname: String, attempts: u32 },

    #[error("remote `{remote}` refused the credentials — {hint}")]
    Auth { remote: String, hint: String },

    #[error(
        "the SSH host key of remote `{remote}` is unknown or has changed — add it to ~/.ssh/known_hosts (ssh-keyscan -p PORT HOST) after checking its fingerprint"
    )]
    HostKey { remote: String },

    #[error(
        "cannot reach remote `{remote}` while {doing}: {message} — check the URL and network; it was retried {attempts} times"
    )]
    Network {
        remote: String,
        doing: &'static str,
        message: String,
        attempts: u32,
    },

    #[error(
        "the ledger note on {commit} is not valid revertbot JSON: {message} — fix or remove it with `git notes --ref revertbot edit {commit}`"
    )]
    BadNote { commit: CommitSha, message: String },

    #[error("{doing}: {source}")]
    Git { doing: String, source: git2::Error },
}

impl GitError {
    pub(crate) fn git(doing: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let doing = doing.into();
        move |source| GitError::Git { doing, source }
    }
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

/// An open infra repository.
pub struct InfraRepo {
    repo: Repository,
    path: PathBuf,
}

impl InfraRepo {
    pub fn open(path: &Path) -> Result<Self> {
        auth::init_timeouts();
        let repo = Repository::open(path).map_err(|source| GitError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            repo,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn raw(&self) -> &Repository {
        &self.repo
    }

    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// Resolves any revision expression (`main`, `HEAD~2`, a short sha) to a
    /// commit.
    pub fn resolve(&self, rev: &str) -> Result<CommitSha> {
        let object = self
            .repo
            .revparse_single(rev)
            .map_err(|_| GitError::RevisionNotFound {
                rev: rev.to_owned(),
                hint: "give a commit sha or ref that exists here; in a shallow clone it may be outside the fetched history".to_owned(),
            })?;
        let commit = object
            .peel_to_commit()
            .map_err(|_| GitError::RevisionNotFound {
                rev: rev.to_owned(),
                hint: "it does not name a commit".to_owned(),
            })?;
        Ok(to_sha(commit.id()))
    }

    /// True when `sha` is a boundary of a shallow clone: its parents were not
    /// fetched, so it cannot be diffed or reverted yet.
    pub fn is_shallow_boundary(&self, sha: &CommitSha) -> Result<bool> {
        if !self.repo.is_shallow() {
            return Ok(false);
        }
        let file = self.repo.path().join("shallow");
        let text = std::fs::read_to_string(&file).map_err(|e| GitError::Git {
            doing: format!("reading {}", file.display()),
            source: git2::Error::from_str(&e.to_string()),
        })?;
        Ok(text.lines().any(|line| line.trim() == sha.as_str()))
    }

    pub fn has_commit(&self, sha: &CommitSha) -> bool {
        self.repo.find_commit(to_oid(sha)).is_ok()
    }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &CommitSha, descendant: &CommitSha) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(to_oid(descendant), to_oid(ancestor))
            .map_err(GitError::git(format!(
                "checking whether {ancestor} is an ancestor of {descendant}"
            )))
    }

    /// The file at `path` in `rev`, if any. Files revertbot reads from the
    /// repo are manifests or small markers: one over the manifest size
    /// limit is refused before it is inflated.
    pub fn read_file(&self, rev: &CommitSha, path: &str) -> Result<Option<Vec<u8>>> {
        let commit = self.find_commit(rev)?;
        let tree = commit
            .tree()
            .map_err(GitError::git(format!("reading the tree of {rev}")))?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        crate::manifest::check_size(path, self.blob_size(entry.id(), path)?)?;
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(GitError::git(format!("reading {path} at {rev}")))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// The first parent of a commit; `None` for a root commit, or when a
    /// shallow clone does not have it.
    pub fn first_parent(&self, sha: &CommitSha) -> Result<Option<CommitSha>> {
        let commit = self.find_commit(sha)?;
        Ok(commit
            .parent_id(0)
            .ok()
            .filter(|id| self.repo.find_commit(*id).is_ok())
            .map(to_sha))
    }

    /// The size of a blob, read from the object header without inflating
    /// its content.
    pub(crate) fn blob_size(&self, id: git2::Oid, path: &str) -> Result<u64> {
        let odb = self
            .repo
            .odb()
            .map_err(GitError::git("opening the object database".to_owned()))?;
        let (size, _) = odb
            .read_header(id)
            .map_err(GitError::git(format!("reading the size of {path}")))?;
        Ok(size as u64)
    }

    /// Full message of a commit.
    pub fn message(&self, sha: &CommitSha) -> Result<String> {
        let commit = self.find_commit(sha)?;
        Ok(String::from_utf8_lossy(commit.message_bytes()).into_owned())
    }

    pub(crate) fn find_commit(&self, sha: &CommitSha) -> Result<git2::Commit<'_>> {
        self.repo
            .find_commit(to_oid(sha))
            .map_err(|_| GitError::RevisionNotFound {
                rev: sha.to_string(),
                hint: "fetch the branch that contains it, or check the sha".to_owned(),
            })
    }
}

pub(crate) fn to_sha(oid: Oid) -> CommitSha {
    CommitSha::from_git(oid.to_string())
}

pub(crate) fn to_oid(sha: &CommitSha) -> Oid {
    // CommitSha is validated 40-hex, which is always a valid Oid.
    Oid::from_str(sha.as_str()).unwrap_or(Oid::ZERO_SHA1)
}
