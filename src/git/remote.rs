//! Fetching from and pushing to the infra remote.
//!
//! Every write is a compare-and-swap: pushes are fast-forward only (no `+`
//! in the refspec, ever), so a writer that raced us makes our push fail and we
//! rebuild on the new tip. Network failures are retried a bounded number of
//! times with backoff; refused credentials and server rejections are not.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use git2::{AutotagOption, ErrorClass, FetchOptions, PushOptions};

use super::auth::{Credentials, redact_url, scrub};
use super::{GitError, InfraRepo, Result, to_sha};
use crate::domain::CommitSha;
use crate::domain::ledger::NOTES_REF;

/// The infra remote and branch revertbot works against.
#[derive(Debug, Clone)]
pub struct Remote {
    /// A remote name configured in the repo (`origin`) or a URL.
    pub name_or_url: String,
    pub branch: String,
    pub credentials: Credentials,
    /// Retries of transient network errors (shared policy, `crate::retry`).
    pub retry: crate::retry::Policy,
}

/// What a fetch transferred.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub received_bytes: u64,
    pub received_objects: u64,
}

impl std::ops::AddAssign for FetchStats {
    fn add_assign(&mut self, other: Self) {
        self.received_bytes += other.received_bytes;
        self.received_objects += other.received_objects;
    }
}

/// Where the fetched remote state is kept locally.
const UPSTREAM_NOTES: &str = "refs/revertbot/upstream/notes";

/// Outcome of one push attempt that did not fail outright.
#[derive(Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The remote refused the update; `message` is what it said.
    Refused {
        message: String,
    },
}

impl Remote {
    pub fn new(name_or_url: &str, branch: &str, credentials: Credentials) -> Self {
        Self {
            name_or_url: name_or_url.to_owned(),
            branch: branch.to_owned(),
            credentials,
            retry: crate::retry::GIT_TRANSPORT,
        }
    }

    /// The remote for messages: its name, or its URL without credentials.
    pub fn display(&self) -> String {
        redact_url(&self.name_or_url)
    }

    fn is_url(&self) -> bool {
        self.name_or_url.contains("://")
            || self.name_or_url.contains('@')
            || self.name_or_url.starts_with('/')
    }

    /// An SSH remote (`ssh://…` or `user@host:path`).
    pub fn is_ssh(&self) -> bool {
        let r = &self.name_or_url;
        r.starts_with("ssh://") || (!r.contains("://") && r.contains('@') && r.contains(':'))
    }

    /// Local ref that mirrors the remote branch.
    pub fn tracking_ref(&self) -> String {
        if self.is_url() {
            format!("refs/revertbot/upstream/heads/{}", self.branch)
        } else {
            format!("refs/remotes/{}/{}", self.name_or_url, self.branch)
        }
    }
}

impl InfraRepo {
    fn git_remote(&self, remote: &Remote) -> Result<git2::Remote<'_>> {
        let found = if remote.is_url() {
            self.raw().remote_anonymous(&remote.name_or_url)
        } else {
            self.raw().find_remote(&remote.name_or_url)
        };
        found.map_err(|source| GitError::Git {
            doing: format!(
                "opening remote `{}` (configure it with `git remote add` or give a URL in repo.remote)",
                remote.display()
            ),
            source,
        })
    }

    /// Fetches the branch into its tracking ref and returns the remote tip.
    /// `depth` limits history (a shallow fetch, or deepening a shallow clone).
    pub fn fetch_branch(
        &self,
        remote: &Remote,
        depth: Option<u32>,
    ) -> Result<(CommitSha, FetchStats)> {
        let refspec = format!("+refs/heads/{}:{}", remote.branch, remote.tracking_ref());
        let stats = self.fetch_refspecs(remote, &[refspec], depth, "fetching the branch")?;
        let tip = self.branch_tip_after_fetch(remote)?;
        Ok((tip, stats))
    }

    /// Fetches the branch and the ledger notes in one round trip (full
    /// clones; a shallow clone fetches the branch with a depth instead).
    pub fn fetch_branch_and_notes(&self, remote: &Remote) -> Result<(CommitSha, FetchStats)> {
        if let Ok(mut stale) = self.raw().find_reference(UPSTREAM_NOTES) {
            let _ = stale.delete();
        }
        let refspecs = [
            format!("+refs/heads/{}:{}", remote.branch, remote.tracking_ref()),
            format!("+{NOTES_REF}:{UPSTREAM_NOTES}"),
        ];
        let stats = self.fetch_refspecs(
            remote,
            &refspecs,
            None,
            "fetching the branch and the ledger",
        )?;
        let tip = self.branch_tip_after_fetch(remote)?;
        Ok((tip, stats))
    }

    /// Fetches another branch of the remote (a revert PR's head) and returns
    /// its tip, or `None` when the remote has no such branch.
    pub fn fetch_other_branch(&self, remote: &Remote, branch: &str) -> Result<Option<CommitSha>> {
        let tracking = format!("refs/revertbot/upstream/other/{branch}");
        // A branch missing on the remote is fetched as nothing, and the
        // tracking ref is left alone: drop a stale one first.
        if let Ok(mut stale) = self.raw().find_reference(&tracking) {
            let _ = stale.delete();
        }
        let refspec = format!("+refs/heads/{branch}:{tracking}");
        self.fetch_refspecs(remote, &[refspec], None, "fetching the pull request branch")?;
        match self.raw().find_reference(&tracking) {
            Ok(found) => found
                .peel_to_commit()
                .map(|c| Some(to_sha(c.id())))
                .map_err(GitError::git(format!("reading {tracking}"))),
            Err(_) => Ok(None),
        }
    }

    fn branch_tip_after_fetch(&self, remote: &Remote) -> Result<CommitSha> {
        self.resolve(&remote.tracking_ref()).map_err(|_| GitError::RevisionNotFound {
            rev: format!("{}/{}", remote.display(), remote.branch),
            hint: format!(
                "the branch `{}` does not exist on the remote; set repo.branch to the branch the controller deploys",
                remote.branch
            ),
        })
    }

    /// Fetches the remote's ledger notes (if it has any) and returns their tip.
    pub fn fetch_notes(&self, remote: &Remote) -> Result<Option<git2::Oid>> {
        let refspec = format!("+{NOTES_REF}:{UPSTREAM_NOTES}");
        // A missing notes ref on the remote is normal (nothing recorded yet):
        // libgit2 then fetches nothing and leaves the tracking ref alone, so
        // drop any stale one first.
        if let Ok(mut stale) = self.raw().find_reference(UPSTREAM_NOTES) {
            let _ = stale.delete();
        }
        self.fetch_refspecs(remote, &[refspec], None, "fetching the ledger notes")?;
        Ok(self
            .raw()
            .find_reference(UPSTREAM_NOTES)
            .ok()
            .and_then(|r| r.target()))
    }

    fn fetch_refspecs(
        &self,
        remote: &Remote,
        refspecs: &[String],
        depth: Option<u32>,
        doing: &'static str,
    ) -> Result<FetchStats> {
        with_retry(remote, doing, || {
            let mut git_remote = self.git_remote(remote)?;
            let attempts = Cell::new(0);
            // The remote's stats are reset when fetch() disconnects; keep
            // the last progress report instead.
            let transferred = Cell::new(FetchStats::default());
            let home = git_remote.url().ok().map(str::to_owned);
            let mut callbacks = remote.credentials.callbacks(&attempts, home);
            callbacks.transfer_progress(|progress| {
                transferred.set(FetchStats {
                    received_bytes: progress.received_bytes() as u64,
                    received_objects: progress.received_objects() as u64,
                });
                true
            });
            let mut options = FetchOptions::new();
            options
                .remote_callbacks(callbacks)
                .download_tags(AutotagOption::None)
                .update_fetchhead(false);
            if let Some(depth) = depth {
                options.depth(i32::try_from(depth).unwrap_or(i32::MAX));
            }
            let result = git_remote.fetch(refspecs, Some(&mut options), None);
            drop(options);
            match result {
                Ok(()) => Ok(transferred.get()),
                Err(e) => Err(classify(remote, e, attempts.get(), "read")),
            }
        })
    }

    /// Pushes `commit` to `refname` on the remote, fast-forward only.
    /// Returns `Refused` when the server (or libgit2's own fast-forward
    /// check) turned the update down; the caller decides whether the remote
    /// moved (retry) or the branch is protected (give up).
    pub fn push_commit(&self, remote: &Remote, commit: &str, refname: &str) -> Result<PushOutcome> {
        // libgit2 pushes refs, not bare commits: stage the commit under a
        // local ref of our own first.
        let oid =
            git2::Oid::from_str(commit).map_err(GitError::git(format!("pushing {commit}")))?;
        // Per process: two runs in one checkout (a schedule and a manual
        // run) must not fight over the same local ref.
        let staging = format!(
            "refs/revertbot/push/{}/{}",
            std::process::id(),
            refname.trim_start_matches("refs/")
        );
        self.raw()
            .reference(&staging, oid, true, "revertbot: stage push")
            .map_err(GitError::git(format!("staging {commit} for the push")))?;
        let _cleanup = DeleteRefOnDrop {
            repo: self.raw(),
            name: staging.clone(),
        };
        // Never a leading `+`: this is the compare-and-swap.
        let refspec = format!("{staging}:{refname}");
        with_retry(remote, "pushing", || {
            let mut git_remote = self.git_remote(remote)?;
            let attempts = Cell::new(0);
            let refused: RefCell<Option<String>> = RefCell::new(None);
            let server_text: RefCell<String> = RefCell::new(String::new());
            let home = git_remote.url().ok().map(str::to_owned);
            let mut callbacks = remote.credentials.callbacks(&attempts, home);
            callbacks.push_update_reference(|_name, status| {
                if let Some(status) = status {
                    *refused.borrow_mut() = Some(status.to_owned());
                }
                Ok(())
            });
            callbacks.sideband_progress(|bytes| {
                let mut text = server_text.borrow_mut();
                if text.len() < 4096 {
                    text.push_str(&String::from_utf8_lossy(bytes));
                }
                true
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let result = git_remote.push(&[refspec.as_str()], Some(&mut options));
            drop(options);
            match result {
                Ok(()) => match refused.into_inner() {
                    None => Ok(PushOutcome::Pushed),
                    Some(status) => {
                        let said = server_text.into_inner();
                        let message = if said.trim().is_empty() {
                            status
                        } else {
                            format!("{status}: {}", said.trim())
                        };
                        Ok(PushOutcome::Refused {
                            message: scrub(&message, &remote.credentials),
                        })
                    }
                },
                // libgit2 refuses a non-fast-forward itself when it can tell.
                Err(e) if e.code() == git2::ErrorCode::NotFastForward => Ok(PushOutcome::Refused {
                    message: "non-fast-forward".to_owned(),
                }),
                Err(e) => Err(classify(remote, e, attempts.get(), "write to")),
            }
        })
    }

    /// The notes tip last fetched from the remote.
    pub(crate) fn upstream_notes_ref() -> &'static str {
        UPSTREAM_NOTES
    }

    /// The remote tip as last fetched.
    pub fn tracking_tip(&self, remote: &Remote) -> Result<CommitSha> {
        let reference = self
            .raw()
            .find_reference(&remote.tracking_ref())
            .map_err(GitError::git(format!("reading {}", remote.tracking_ref())))?;
        reference
            .peel_to_commit()
            .map(|c| to_sha(c.id()))
            .map_err(GitError::git(format!("reading {}", remote.tracking_ref())))
    }
}

/// Removes a local scratch ref when the push is done, whatever happened.
pub(super) struct DeleteRefOnDrop<'a> {
    pub(super) repo: &'a git2::Repository,
    pub(super) name: String,
}

impl Drop for DeleteRefOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.repo.find_reference(&self.name) {
            let _ = r.delete();
        }
    }
}

/// Turns a libgit2 failure into a typed error. `Network` errors are the only
/// ones `with_retry` retries.
fn classify(
    remote: &Remote,
    e: git2::Error,
    credential_attempts: u32,
    access: &'static str,
) -> GitError {
    if credential_attempts > 0
        && (e.code() == git2::ErrorCode::Auth
            || e.class() == ErrorClass::Http && e.message().contains("401"))
        || e.message().contains("credentials refused")
        || e.message().contains("GITHUB_TOKEN is not set")
    {
        let hint = if remote.is_ssh() {
            "check that the SSH agent (SSH_AUTH_SOCK) holds a key the server accepts and that the URL names the user (ssh://git@host/...)".to_owned()
        } else {
            format!("set GITHUB_TOKEN to a token that can {access} this repository")
        };
        return GitError::Auth {
            remote: remote.display(),
            hint,
        };
    }
    // A host key check is a trust decision, not a network hiccup: no retry.
    if e.class() == ErrorClass::Ssh && e.code() == git2::ErrorCode::Certificate {
        return GitError::HostKey {
            remote: remote.display(),
        };
    }
    match e.class() {
        ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Ssh | ErrorClass::Os => {
            GitError::Network {
                remote: remote.display(),
                doing: if access == "read" {
                    "fetching"
                } else {
                    "pushing"
                },
                message: scrub(e.message(), &remote.credentials),
                attempts: 0,
            }
        }
        _ => GitError::Git {
            doing: format!("talking to remote `{}`", remote.display()),
            source: git2::Error::from_str(&scrub(e.message(), &remote.credentials)),
        },
    }
}

fn with_retry<T>(
    remote: &Remote,
    doing: &'static str,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    use backon::BlockingRetryable;
    let attempts = std::cell::Cell::new(0_u32);
    let once = || {
        attempts.set(attempts.get() + 1);
        op()
    };
    let result = once
        .retry(remote.retry.backoff())
        .when(|e: &GitError| matches!(e, GitError::Network { .. }))
        .notify(|e: &GitError, wait: Duration| {
            // Not `message`: the JSON log flattens the event text into that key.
            tracing::warn!(remote = %remote.display(), attempt = attempts.get(), error = %e, retry_in = ?wait, "{doing} failed; retrying");
        })
        .call();
    match result {
        Err(GitError::Network {
            remote: r, message, ..
        }) => Err(GitError::Network {
            remote: r,
            doing,
            message,
            attempts: attempts.get(),
        }),
        other => other,
    }
}
