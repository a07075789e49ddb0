//! The revert branch: pushed only when absent (a compare-and-swap), and
//! reused only when it verifiably holds this incident's revert on the
//! deployed branch's history.

use crate::domain::CommitSha;
use crate::domain::trailers::RevertTrailers;
use crate::git::Verification;
use crate::git::remote::{PushOutcome, Remote};

use super::super::{CommandError, Result, Session};

pub(super) enum BranchState {
    /// We pushed it now.
    Created,
    /// It was there already, verified: this is its tip.
    Reused(CommitSha),
}

/// Puts `commit` on `branch`, created only if absent. An existing branch
/// (an earlier run, a racing run) is used when it verifiably holds this
/// incident's revert.
pub(super) fn push_branch(
    session: &Session,
    remote: &Remote,
    branch: &str,
    commit: &CommitSha,
    incident: &str,
    base_tip: &CommitSha,
) -> Result<BranchState> {
    if let Some(tip) = session.repo.fetch_other_branch(remote, branch)? {
        verify_branch(session, branch, &tip, incident, base_tip)?;
        return Ok(BranchState::Reused(tip));
    }
    let refname = format!("refs/heads/{branch}");
    match session
        .repo
        .push_commit(remote, commit.as_str(), &refname)?
    {
        PushOutcome::Pushed => {
            tracing::info!(commit = %commit, %branch, "revert branch pushed");
            Ok(BranchState::Created)
        }
        // A racing run created it between our look and our push.
        PushOutcome::Refused { message } => {
            match session.repo.fetch_other_branch(remote, branch)? {
                Some(tip) => {
                    verify_branch(session, branch, &tip, incident, base_tip)?;
                    Ok(BranchState::Reused(tip))
                }
                None => Err(crate::git::GitError::PushRejected {
                    refname,
                    reason: message,
                }
                .into()),
            }
        }
    }
}

/// A branch named like ours is used only when its tip is revertbot's
/// revert of this incident, proven by content, and sits on the deployed
/// branch's history (merging it brings in nothing else).
pub(super) fn verify_branch(
    session: &Session,
    branch: &str,
    tip: &CommitSha,
    incident: &str,
    base_tip: &CommitSha,
) -> Result<RevertTrailers> {
    let taken = |reason: String| CommandError::BranchTaken {
        branch: branch.to_owned(),
        reason,
    };
    let trailers = match session.repo.verify_revert(tip, &session.scope()?)? {
        Verification::Verified(verified) => {
            if verified.trailers.incident.as_deref() != Some(incident) {
                return Err(taken(format!(
                    "its tip {} reverts incident {}, not {incident}",
                    tip.short(),
                    verified.trailers.incident.as_deref().unwrap_or("(none)")
                )));
            }
            verified.trailers
        }
        Verification::Forged { reason } => {
            return Err(taken(format!(
                "its tip {} claims to be the revert and is not: {reason}",
                tip.short()
            )));
        }
        Verification::NoClaim => {
            return Err(taken(format!(
                "its tip {} is not a revertbot revert",
                tip.short()
            )));
        }
    };
    let parent = session.repo.first_parent(tip)?;
    let on_history = match &parent {
        Some(parent) => parent == base_tip || session.repo.is_ancestor(parent, base_tip)?,
        None => false,
    };
    if !on_history {
        return Err(taken(format!(
            "its revert is built on {}, which is not on the history of {}",
            parent.as_ref().map_or("nothing", |p| p.short()),
            session.remote.branch
        )));
    }
    Ok(trailers)
}
