//! Is a commit that carries revertbot's trailers really its revert?
//!
//! Anyone who can push to the infra repo can write `Revertbot-App:` and
//! `Revertbot-Reverts:` lines. Taken on trust they would hide a culprit
//! ("already reverted"), exempt the forging commit from the search, get an
//! incident note written for it and trip the loop guard. So a claim counts
//! only when the commit's content proves it: rebuilding the revert the
//! trailers describe, with revertbot's own builder on the commit's parent,
//! gives exactly the commit's tree. Anything else is judged like any other
//! commit, and reported. The rule is documented in docs/DECISIONS.md.

use std::collections::BTreeSet;

use serde::Serialize;

use super::revert::{RevertSpec, Scope};
use super::{AppPaths, GitError, InfraRepo, Result, to_sha};
use crate::domain::trailers::{RevertTrailers, one_line};
use crate::domain::{CommitSha, ImageRef};
use crate::manifest::PinRules;

/// More culprits than any search hands to one revert; a message naming more
/// is not replayed (each one costs a tree merge).
const MAX_CLAIMED_CULPRITS: usize = 1_000;

/// The app a claim is checked against: its name must be the one the trailers
/// name, and its paths and pin rules are what revertbot would revert and pin
/// with.
#[derive(Debug, Clone, Copy)]
pub struct AppScope<'a> {
    pub name: &'a str,
    pub paths: &'a AppPaths,
    pub pin_rules: &'a PinRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The commit claims no revert of this app (no trailers, or another
    /// app's): an ordinary commit.
    NoClaim,
    /// The commit is the revert its trailers describe.
    Verified(VerifiedRevert),
    /// The commit claims to be this app's revert and is not.
    Forged { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRevert {
    pub trailers: RevertTrailers,
    /// The culprits it undid, newest first.
    pub culprits: Vec<CommitSha>,
}

/// A commit that claims to be revertbot's revert of the app and is not; it
/// is judged like any other commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgedRevert {
    pub commit: CommitSha,
    pub reason: String,
}

impl InfraRepo {
    /// Whether `sha` is revertbot's revert for `app`, verified by content.
    pub fn verify_revert(&self, sha: &CommitSha, app: &AppScope<'_>) -> Result<Verification> {
        let commit = self.find_commit(sha)?;
        let trailers = RevertTrailers::parse(&String::from_utf8_lossy(commit.message_bytes()));
        self.verify_commit(&commit, trailers, app)
    }

    pub(super) fn verify_commit(
        &self,
        commit: &git2::Commit<'_>,
        trailers: RevertTrailers,
        app: &AppScope<'_>,
    ) -> Result<Verification> {
        if !trailers.claims_revert_for(app.name) {
            return Ok(Verification::NoClaim);
        }
        Ok(match self.check_claim(commit, &trailers, app)? {
            Ok(culprits) => Verification::Verified(VerifiedRevert { trailers, culprits }),
            Err(reason) => Verification::Forged { reason },
        })
    }

    /// `Ok(Ok(culprits))` when the claim holds, `Ok(Err(why not))` when it
    /// does not; `Err` only when git itself fails.
    fn check_claim(
        &self,
        commit: &git2::Commit<'_>,
        trailers: &RevertTrailers,
        app: &AppScope<'_>,
    ) -> Result<Result<Vec<CommitSha>, String>> {
        let doing = || format!("verifying the revert claim of {}", commit.id());
        // revertbot writes its revert with the branch tip as the only parent.
        if commit.parent_count() != 1 {
            return Ok(Err(format!(
                "it has {} parents; revertbot's reverts have exactly one",
                commit.parent_count()
            )));
        }
        let parent = commit.parent(0).map_err(GitError::git(doing()))?;
        let parent_sha = to_sha(parent.id());
        if commit.tree_id() == parent.tree_id() {
            return Ok(Err("it changes no file".to_owned()));
        }
        let mut named: Vec<CommitSha> = Vec::new();
        for sha in &trailers.reverts {
            if !named.contains(sha) {
                named.push(sha.clone());
            }
        }
        if named.len() > MAX_CLAIMED_CULPRITS {
            return Ok(Err(format!(
                "it names {} culprits, more than the {MAX_CLAIMED_CULPRITS} revertbot ever reverts at once",
                named.len()
            )));
        }
        for sha in &named {
            if let Some(why) = self.unusable_culprit(sha, &parent_sha, app.paths)? {
                return Ok(Err(why));
            }
        }
        let culprits = self.first_parent_order(&parent_sha, &named)?;
        if let Some(off) = named.iter().find(|sha| !culprits.contains(sha)) {
            return Ok(Err(format!(
                "it names {}, which is not on the first-parent history it was built on",
                off.short()
            )));
        }
        let mut pins = Vec::new();
        for text in &trailers.pinned_images {
            match text.parse::<ImageRef>() {
                Ok(image) if image.digest().is_some() => pins.push(image),
                _ => {
                    return Ok(Err(format!(
                        "its pinned image `{}` is not NAME:TAG@sha256:<hex>",
                        shorten(&one_line(text))
                    )));
                }
            }
        }
        let mut scopes = vec![(Scope::App, None), (Scope::Commits, None)];
        if let Some(lkg) = &trailers.last_known_good
            && self.is_usable_lkg(lkg, &parent_sha, &culprits)?
        {
            scopes.push((Scope::Paths, Some(lkg)));
        }
        for (scope, lkg) in scopes {
            let spec = RevertSpec {
                base: &parent_sha,
                culprits: &culprits,
                last_known_good: lkg,
                scope,
                paths: app.paths,
                pins: &pins,
                pin_rules: app.pin_rules,
                allow_outside_paths: false,
            };
            let built = match self.build_revert(&spec) {
                Ok(built) => built,
                // Revertbot could not have built this revert on that parent.
                Err(
                    GitError::Conflict { .. }
                    | GitError::OutsidePaths { .. }
                    | GitError::Manifest(_),
                ) => continue,
                Err(e) => return Err(e),
            };
            let pins_applied = pins.iter().all(|p| {
                p.digest()
                    .is_some_and(|d| built.pins.covers(&d.to_string()))
            });
            if built.tree == commit.tree_id() && pins_applied {
                return Ok(Ok(culprits));
            }
        }
        let list: Vec<&str> = culprits.iter().map(CommitSha::short).collect();
        Ok(Err(format!(
            "its changes are not what reverting {} on its parent {} gives with the pins its trailers record",
            list.join(", "),
            parent_sha.short()
        )))
    }

    /// Why a named culprit cannot be one this commit reverted, if so.
    fn unusable_culprit(
        &self,
        sha: &CommitSha,
        parent: &CommitSha,
        paths: &AppPaths,
    ) -> Result<Option<String>> {
        let short = sha.short();
        if !self.has_commit(sha) {
            return Ok(Some(format!(
                "it names {short}, which is not in the fetched history"
            )));
        }
        if !self.is_ancestor(sha, parent)? {
            return Ok(Some(format!(
                "it names {short}, which is not an ancestor of it"
            )));
        }
        if self.is_shallow_boundary(sha)? {
            return Ok(Some(format!(
                "it names {short}, whose parent was not fetched, so the claim cannot be checked"
            )));
        }
        let commit = self.find_commit(sha)?;
        if self.app_files_changed(&commit, paths)?.is_empty() {
            return Ok(Some(format!(
                "it names {short}, which changes none of the app's files"
            )));
        }
        Ok(None)
    }

    /// A `scope: paths` replay restores the LKG: it stands for the named
    /// culprits only when they all came after it.
    fn is_usable_lkg(
        &self,
        lkg: &CommitSha,
        parent: &CommitSha,
        culprits: &[CommitSha],
    ) -> Result<bool> {
        if !self.has_commit(lkg) || !self.is_ancestor(lkg, parent)? {
            return Ok(false);
        }
        let distinct: BTreeSet<&CommitSha> = culprits.iter().collect();
        for culprit in distinct {
            if culprit == lkg || !self.is_ancestor(lkg, culprit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Trailer text quoted in a reason is the committer's: keep it short.
fn shorten(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX - 1).collect();
    out.push('…');
    out
}
