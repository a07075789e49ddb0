//! The small input types `policy` decides over. The shell converts the
//! config (`HealthConfig`, `PolicyConfig`) and the adapters' results into
//! these, so the decision core never sees a config or an API type.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::ledger::{IncidentRecord, LkgRecord, RecordedImage};
use crate::domain::{CommitSha, Digest, ImageRef};

/// How bad a breach is. Ordered: `Warning < Critical`, so the worst
/// severity of several pieces of evidence is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Follows `policy.warning` (default: ask a human).
    Warning,
    /// Follows `policy.critical` (default: push the revert).
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// What to do about a breach of one severity; mirrors the config's
/// `Action` (`push | pr | pr-automerge | approve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Push,
    Pr,
    PrAutomerge,
    /// Severe breaches roll back automatically; mild ones ask a human
    /// (DESIGN.md, "Why it exists").
    Approve,
}

/// How an approved revert is published. `Approve` is not a way to publish:
/// it turns into `Decision::RequestApproval`, and after the approval into
/// `Push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevertMode {
    Push,
    Pr,
    PrAutomerge,
}

impl fmt::Display for RevertMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevertMode::Push => "push",
            RevertMode::Pr => "pr",
            RevertMode::PrAutomerge => "pr-automerge",
        })
    }
}

/// What counts as a breach (from `apps[].health`; the pod rules are on
/// unless the config turns them off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthRules {
    /// Controller `Degraded` / `Missing` is a critical breach.
    pub controller: bool,
    /// A current-revision pod in `CrashLoopBackOff` is a breach.
    pub crashloop: bool,
    /// A current-revision pod in `ImagePullBackOff` / `ErrImagePull` is a
    /// breach.
    pub image_pull: bool,
    /// A current-revision pod not Ready for longer than this is a breach;
    /// `None`: never.
    pub not_ready_for: Option<Duration>,
}

impl Default for HealthRules {
    /// The config's defaults.
    fn default() -> Self {
        Self {
            controller: true,
            crashloop: true,
            image_pull: true,
            not_ready_for: Some(Duration::from_secs(5 * 60)),
        }
    }
}

/// A revert-rate limit: at most `count` reverts per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RevertLimit {
    pub count: u32,
    pub per: Duration,
}

/// What to do about a breach, and the guards that can hold it (from
/// `apps[].policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRules {
    pub critical: Mode,
    pub warning: Mode,
    /// Minimum time between two reverts of the app.
    pub cooldown: Duration,
    pub max_reverts: RevertLimit,
    /// `policy.freeze` (or a global freeze the caller folds in).
    pub freeze: bool,
    /// Time after a sync before controller health counts.
    pub grace: Duration,
}

impl Default for PolicyRules {
    /// The config's defaults.
    fn default() -> Self {
        Self {
            critical: Mode::Push,
            warning: Mode::Approve,
            cooldown: Duration::from_secs(30 * 60),
            max_reverts: RevertLimit {
                count: 3,
                per: Duration::from_secs(24 * 3600),
            },
            freeze: false,
            grace: Duration::from_secs(120),
        }
    }
}

/// The state of one external signal (an SLO held for its window, a firing
/// alert), computed elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalState {
    Breaching,
    Ok,
    /// No series, or NaN over no traffic. Never a breach: Flagger treats
    /// "no data" as a failure and rolls back healthy apps on low traffic.
    NoData,
}

/// One external signal's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignalResult {
    pub name: String,
    pub severity: Severity,
    pub state: SignalState,
    /// What was measured, for people (`p95 0.41s > 0.25s for 5m`).
    pub detail: String,
}

/// A digest an earlier incident recorded as bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub digest: Digest,
    /// The image as the incident recorded it.
    pub image: String,
    /// The incident that quarantined it.
    pub incident: String,
}

/// The quarantined digests of `incidents`: every `bad_images` entry that
/// carries a digest (`name@sha256:…`, `name:tag@sha256:…` or a bare
/// `sha256:…`). Entries without one (a bad *tag*) cannot be recognised
/// again by content and are skipped. The caller chooses the incidents
/// (usually the app's own).
pub fn quarantine_from_incidents<'a>(
    incidents: impl IntoIterator<Item = &'a IncidentRecord>,
) -> Vec<Quarantined> {
    let mut out: Vec<Quarantined> = Vec::new();
    for incident in incidents {
        for bad in &incident.bad_images {
            let digest = match bad.parse::<Digest>() {
                Ok(d) => Some(d),
                Err(_) => bad
                    .parse::<ImageRef>()
                    .ok()
                    .and_then(|r| r.digest().cloned()),
            };
            if let Some(digest) = digest
                && !out.iter().any(|q| q.digest == digest)
            {
                out.push(Quarantined {
                    digest,
                    image: bad.clone(),
                    incident: incident.id.clone(),
                });
            }
        }
    }
    out
}

/// Why there is no observation to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub kind: UnavailableKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableKind {
    /// Network error, timeout, 5xx.
    Unreachable,
    /// The answer did not parse into an observation.
    Malformed,
    /// The controller does not know the app (or we may not see it).
    NotFound,
}

impl fmt::Display for UnavailableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnavailableKind::Unreachable => "is unreachable",
            UnavailableKind::Malformed => "answered with something revertbot cannot read",
            UnavailableKind::NotFound => "does not know the app",
        })
    }
}

/// The revision a revert would restore and the images it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastKnownGood {
    pub revision: CommitSha,
    pub images: Vec<RecordedImage>,
}

impl From<&LkgRecord> for LastKnownGood {
    fn from(r: &LkgRecord) -> Self {
        Self {
            revision: r.revision.clone(),
            images: r.images.clone(),
        }
    }
}

/// An earlier revert of this app (from the ledger's incidents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PastRevert {
    pub incident: String,
    pub at: Timestamp,
    pub culprits: Vec<CommitSha>,
}

impl From<&IncidentRecord> for PastRevert {
    fn from(i: &IncidentRecord) -> Self {
        Self {
            incident: i.id.clone(),
            at: i.opened_at,
            culprits: i.culprits.clone(),
        }
    }
}

/// A commit the culprit search found between the LKG and the deployed
/// revision (not yet reverted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CulpritFact {
    pub sha: CommitSha,
    /// `Some(incident)` when this commit is itself a verified revertbot
    /// revert (trailers alone are a claim): reverting it would re-apply the
    /// bad change.
    pub revertbot_revert: Option<String>,
}

/// A culprit the search found already reverted on the branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevertedFact {
    pub culprit: CommitSha,
    pub by: CommitSha,
}

/// A human's approval of a pending revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Who approved (Slack user id, GitHub login, `cli:<user>`).
    pub by: String,
}

/// `now - then`, or `None` when `then` is in the future (clock skew):
/// callers treat "not measurable" as the safe side.
pub(crate) fn elapsed(now: Timestamp, then: Timestamp) -> Option<Duration> {
    Duration::try_from(now.duration_since(then)).ok()
}

/// `t + d`, saturating at the end of time.
pub(crate) fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// `t - d`, saturating at the start of time.
pub(crate) fn before(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_sub(d).unwrap_or(Timestamp::MIN)
}

/// Compact human duration: `2m`, `1h30m`, `45s`, `1d2h`.
pub fn fmt_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0s".to_owned()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        assert_eq!(fmt_duration(Duration::from_secs(0)), "0s");
        assert_eq!(fmt_duration(Duration::from_millis(5)), "5ms");
        assert_eq!(fmt_duration(Duration::from_secs(120)), "2m");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(93_784)), "1d2h3m4s");
    }

    #[test]
    fn time_helpers_saturate() {
        assert_eq!(after(Timestamp::MAX, Duration::MAX), Timestamp::MAX);
        assert_eq!(before(Timestamp::MIN, Duration::MAX), Timestamp::MIN);
        assert_eq!(elapsed(Timestamp::MIN, Timestamp::MAX), None);
        assert!(elapsed(Timestamp::MAX, Timestamp::MIN).is_some());
    }
}
