//! Which revision a Kustomization's cluster runs, and whether Flux failed to
//! apply a newer one. Pure; no I/O.
//!
//! kustomize-controller moves its status fields at different points of one
//! reconcile (`internal/controller/kustomization_controller.go`):
//!
//! - `lastAttemptedRevision` once the artifact is fetched and the path found,
//!   before the build;
//! - `status.inventory` as soon as the server-side apply succeeds;
//! - then, with `wait: true` or `healthChecks`, the health checks run:
//!   `Reconciling=True` "Running health checks for revision X with a timeout
//!   of T", `Ready=Unknown`;
//! - `lastAppliedRevision` and `Ready=True` only after they pass. A failed
//!   check leaves `lastAppliedRevision` on the revision before, sets
//!   `Ready=False/HealthCheckFailed` and records the revision in
//!   `status.history` with that status;
//! - a failed fetch (`ArtifactFailed`), build (`BuildFailed`) or apply
//!   (`ReconciliationFailed`) returns before the inventory moves: the cluster
//!   runs what it ran before.
//!
//! So with health checks on, `lastAppliedRevision` names the last revision
//! that *passed*, not the one that runs: judging it would find no culprit
//! for a commit that is live and failing.

use super::status::{FluxObject, Status, parse_revision};
use crate::domain::CommitSha;
use crate::domain::health::ApplyFailure;

/// What a Kustomization runs and what it attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Revisions {
    /// The revision whose objects the cluster runs.
    pub live: Option<CommitSha>,
    /// `lastAttemptedRevision`.
    pub attempted: Option<CommitSha>,
    /// Set when Flux failed to fetch, build or apply a revision.
    pub failure: Option<ApplyFailure>,
}

impl Revisions {
    /// The revision a breach is about: the one Flux cannot apply (a revert
    /// must undo it), else the one that runs.
    pub fn deployed(&self) -> Option<CommitSha> {
        self.failure
            .as_ref()
            .map(|f| f.attempted.clone())
            .or_else(|| self.live.clone())
    }
}

/// `Ready=False` reasons of a reconcile that stopped before the apply
/// succeeded. Flux before v1 said `ValidationFailed` for a rejected apply.
const NOT_APPLIED: &[&str] = &[
    "ArtifactFailed",
    "BuildFailed",
    "ReconciliationFailed",
    "ValidationFailed",
];

/// `Ready=False` reasons of a reconcile that got past the apply: the
/// attempted revision runs.
const APPLIED_NOT_READY: &[&str] = &["HealthCheckFailed", "HealthCheckCanceled", "PruneFailed"];

/// `status.history[].lastReconciledStatus` of a reconcile that got past the
/// apply (a failed apply records `ReconciliationFailed`).
const APPLIED_HISTORY: &[&str] = &[
    "ReconciliationSucceeded",
    "HealthCheckFailed",
    "PruneFailed",
];

const HEALTH_CHECKS: &str = "Running health checks for revision ";
/// Set at the start of a reconcile, before the fetch that can fail with
/// `ArtifactFailed` (before `lastAttemptedRevision` moves).
const FETCHING: &str = "Fetching manifests for revision ";

/// Flux messages can quote manifests from the repo: one line, bounded.
const MESSAGE_LIMIT: usize = 300;

/// What the Kustomization's status says runs, in this order: `Ready=True`
/// → `lastAppliedRevision`; a failed fetch/build/apply → what ran before
/// (the newest history entry that got past the apply, else
/// `lastAppliedRevision`) plus the failure; health checks running → their
/// revision; a failed health check or prune → `lastAttemptedRevision`;
/// anything else (fetching, building, waiting for dependencies) → what ran
/// before. A `Ready` condition written for an older generation is not
/// trusted: then only `lastAppliedRevision`.
pub(crate) fn kustomization_revisions(object: &FluxObject) -> Revisions {
    let status = &object.status;
    let applied = revision(status.last_applied_revision.as_deref());
    let attempted = revision(status.last_attempted_revision.as_deref());
    let mut out = Revisions {
        live: applied.clone(),
        attempted: attempted.clone(),
        failure: None,
    };
    let Some(ready) = object.fresh_condition("Ready") else {
        return out;
    };
    if ready.status == "True" {
        return out;
    }
    let before = newest_applied(status).or(applied);
    let reason = ready.reason.as_deref().unwrap_or("");
    if NOT_APPLIED.contains(&reason) {
        let tried = match reason {
            "ArtifactFailed" => reconciling(object, FETCHING).or(attempted),
            _ => attempted,
        };
        out.live = before.clone();
        out.failure = tried.map(|attempted| ApplyFailure {
            attempted,
            applied: before,
            reason: reason.to_owned(),
            message: bounded(ready.message.as_deref().unwrap_or("")),
        });
    } else if let Some(checking) = reconciling(object, HEALTH_CHECKS) {
        out.live = Some(checking);
    } else if APPLIED_NOT_READY.contains(&reason) {
        out.live = attempted.or(before);
    } else {
        out.live = before;
    }
    out
}

fn revision(raw: Option<&str>) -> Option<CommitSha> {
    raw.and_then(parse_revision)
}

/// The revision named by a fresh `Reconciling=True` message with `prefix`.
fn reconciling(object: &FluxObject, prefix: &str) -> Option<CommitSha> {
    let condition = object
        .fresh_condition("Reconciling")
        .filter(|c| c.status == "True")?;
    let rest = condition.message.as_deref()?.strip_prefix(prefix)?;
    // Revision strings hold no spaces; the message goes on " with a timeout…".
    parse_revision(rest.split(' ').next()?)
}

/// The revision of the newest history entry (newest first) whose reconcile
/// got past the apply.
fn newest_applied(status: &Status) -> Option<CommitSha> {
    let entry = status.history.iter().find(|entry| {
        entry
            .get("lastReconciledStatus")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| APPLIED_HISTORY.contains(&s))
    })?;
    revision(entry.pointer("/metadata/revision")?.as_str())
}

fn bounded(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const GOOD: &str = "450796ddb2ab6724ee1cc32a4be56da032d1cca0";
    const BAD: &str = "7c500d302e38e7e4a3f327343a8a5c21acaaeb87";

    fn rev(sha: &str) -> String {
        format!("main@sha1:{sha}")
    }

    fn sha(s: &str) -> Option<CommitSha> {
        s.parse().ok()
    }

    fn object(status: Value) -> FluxObject {
        let json = json!({"metadata": {"generation": 2}, "status": status});
        FluxObject::from_json("podinfo", "default", &json).unwrap()
    }

    fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason, "message": message, "observedGeneration": 2})
    }

    fn history(sha: &str, status: &str) -> Value {
        json!({"digest": format!("sha256:{sha}"), "lastReconciledStatus": status,
               "metadata": {"revision": rev(sha)}})
    }

    #[test]
    fn ready_runs_the_applied_revision() {
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(GOOD),
            "conditions": [condition("Ready", "True", "ReconciliationSucceeded", "Applied revision")],
        }));
        let r = kustomization_revisions(&o);
        assert_eq!(r.deployed(), sha(GOOD));
        assert_eq!((r.live, r.failure), (sha(GOOD), None));
    }

    #[test]
    fn health_checks_running_run_the_attempted_revision() {
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(BAD),
            "conditions": [
                condition("Reconciling", "True", "Progressing",
                          &format!("Running health checks for revision {} with a timeout of 1m0s", rev(BAD))),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
            ],
        }));
        let r = kustomization_revisions(&o);
        assert_eq!((r.live, r.attempted, r.failure), (sha(BAD), sha(BAD), None));
    }

    #[test]
    fn legacy_revisions_work_the_same() {
        let legacy = |sha: &str| format!("master/{sha}");
        let o = object(json!({
            "lastAppliedRevision": legacy(GOOD), "lastAttemptedRevision": legacy(BAD),
            "conditions": [
                condition("Reconciling", "True", "Progressing",
                          &format!("Running health checks for revision {} with a timeout of 1m0s", legacy(BAD))),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
            ],
        }));
        assert_eq!(kustomization_revisions(&o).live, sha(BAD));
        let o = object(json!({
            "lastAppliedRevision": legacy(GOOD), "lastAttemptedRevision": legacy(BAD),
            "conditions": [condition("Ready", "False", "HealthCheckFailed", "health check failed")],
            "history": [{"lastReconciledStatus": "HealthCheckFailed", "metadata": {"revision": legacy(BAD)}}],
        }));
        assert_eq!(kustomization_revisions(&o).live, sha(BAD));
    }

    #[test]
    fn a_failed_health_check_runs_the_attempted_revision() {
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(BAD),
            "conditions": [condition("Ready", "False", "HealthCheckFailed", "health check failed after 1m")],
        }));
        assert_eq!(kustomization_revisions(&o).live, sha(BAD));
    }

    #[test]
    fn a_retry_before_its_health_checks_runs_what_the_history_says_was_applied() {
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(BAD),
            "conditions": [
                condition("Reconciling", "True", "Progressing",
                          &format!("Fetching manifests for revision {} with a timeout of 1m0s", rev(BAD))),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
            ],
            "history": [history(BAD, "HealthCheckFailed"), history(GOOD, "ReconciliationSucceeded")],
        }));
        assert_eq!(kustomization_revisions(&o).live, sha(BAD));
        // A new revision being fetched after a good one: the good one runs.
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(GOOD),
            "conditions": [condition("Ready", "Unknown", "Progressing", "Reconciliation in progress")],
            "history": [history(GOOD, "ReconciliationSucceeded")],
        }));
        assert_eq!(kustomization_revisions(&o).live, sha(GOOD));
    }

    #[test]
    fn a_failed_apply_keeps_the_cluster_on_what_ran_before() {
        for reason in ["ReconciliationFailed", "BuildFailed", "ValidationFailed"] {
            let o = object(json!({
                "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(BAD),
                "conditions": [condition("Ready", "False", reason,
                                         "Deployment/default/podinfo dry-run failed:\nspec.replicas: Invalid value")],
                "history": [history(BAD, "ReconciliationFailed"), history(GOOD, "ReconciliationSucceeded")],
            }));
            let r = kustomization_revisions(&o);
            assert_eq!(r.live, sha(GOOD), "{reason}");
            let failure = r.failure.clone().unwrap();
            assert_eq!(failure.attempted, sha(BAD).unwrap(), "{reason}");
            assert_eq!(failure.applied, sha(GOOD), "{reason}");
            assert_eq!(failure.reason, reason);
            assert_eq!(
                failure.message,
                "Deployment/default/podinfo dry-run failed:"
            );
            assert_eq!(r.deployed(), sha(BAD), "{reason}");
        }
    }

    #[test]
    fn a_failed_fetch_names_the_revision_being_fetched() {
        let o = object(json!({
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(GOOD),
            "conditions": [
                condition("Reconciling", "True", "ProgressingWithRetry",
                          &format!("Fetching manifests for revision {} with a timeout of 1m0s", rev(BAD))),
                condition("Ready", "False", "ArtifactFailed", "kustomization path not found: stat ./apps: no such file"),
            ],
        }));
        let r = kustomization_revisions(&o);
        assert_eq!(r.live, sha(GOOD));
        assert_eq!(r.failure.map(|f| f.attempted), sha(BAD));
    }

    #[test]
    fn a_stale_ready_trusts_only_the_applied_revision() {
        let json = json!({"metadata": {"generation": 3}, "status": {
            "lastAppliedRevision": rev(GOOD), "lastAttemptedRevision": rev(BAD),
            "conditions": [condition("Ready", "False", "BuildFailed", "x")],
        }});
        let o = FluxObject::from_json("podinfo", "default", &json).unwrap();
        let r = kustomization_revisions(&o);
        assert_eq!((r.live, r.failure), (sha(GOOD), None));
    }

    #[test]
    fn messages_are_bounded() {
        let long = "é".repeat(400);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MESSAGE_LIMIT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("  one\ntwo"), "one");
    }
}
