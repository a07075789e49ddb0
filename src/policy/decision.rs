//! `decide`: a verdict and the guard facts → what to do. Like kube's
//! `reconcile` returning an `Action`, it only says what to do; the shell
//! does it. A revert can only be published with an [`Approved`] intent, and
//! only `decide` makes one.

use std::fmt;
use std::ops::Deref;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::health::Observation;
use crate::domain::ledger::{LkgRecord, RecordSource, RecordedImage, incident_id};
use crate::domain::{AppName, CommitSha};

use super::evidence::Evidence;
use super::guards::{Facts, Guard, GuardKind, deployed_at, holding, in_grace};
use super::judge::Verdict;
use super::types::{
    Approval, LastKnownGood, Mode, PolicyRules, RevertMode, Severity, fmt_duration,
};

/// The exit code of a run whose breach a guard held (DESIGN.md, exit codes).
pub const EXIT_HELD: u8 = 4;
/// The exit code of a run with nothing to do, or every breach handled.
pub const EXIT_OK: u8 = 0;

/// Proof that `decide` approved this value. Its field is private and no
/// constructor is public, so the shell cannot publish a revert that policy
/// did not approve (bors' `ExclusiveLockProof`). There is deliberately no
/// `DerefMut` and no way to take the value out: what was approved is what
/// gets published.
///
/// ```compile_fail
/// use revertbot::policy::{Approved, RevertIntent};
/// fn forge(intent: RevertIntent) -> Approved<RevertIntent> {
///     Approved(intent) // error: the field is private
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    fn new(value: T) -> Self {
        Self(value)
    }

    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<T> Deref for Approved<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A revert policy wants done: what to undo, what to pin, how to publish.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertIntent {
    pub app: AppName,
    /// Deterministic (`<app>-<short deployed>`), so racing runs agree.
    pub incident: String,
    pub deployed: CommitSha,
    pub last_known_good: CommitSha,
    /// The commits to undo, as the culprit search returned them.
    pub culprits: Vec<CommitSha>,
    /// The images to pin: what the LKG ran, by digest.
    pub pin: Vec<RecordedImage>,
    /// Digests running now that the LKG did not run, plus re-promoted ones:
    /// the incident quarantines them.
    pub bad_images: Vec<RecordedImage>,
    pub mode: RevertMode,
    pub severity: Severity,
    pub evidence: Vec<Evidence>,
    /// Guards a human overrode with `--force-guards`.
    pub overridden: Vec<GuardKind>,
    pub approved_by: Option<String>,
}

impl RevertIntent {
    /// One line for commit messages, PR titles and reports.
    pub fn reason(&self) -> String {
        let mut out = format!("{} breach", self.severity);
        for (i, e) in self.evidence.iter().enumerate() {
            out.push_str(if i == 0 { ": " } else { "; " });
            out.push_str(&e.to_string());
        }
        out
    }
}

/// What to do about one app.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The app is healthy at a revision whose digests are not recorded yet.
    RecordLastKnownGood(LkgRecord),
    Revert(Approved<RevertIntent>),
    /// Policy says ask a human first; post this and stop.
    RequestApproval(RevertIntent),
    /// A breach, held by a guard. Exit code 4.
    Hold {
        guard: Guard,
        reason: String,
    },
    Nothing {
        reason: String,
    },
}

impl Decision {
    /// Whether a guard withheld a revert (exit code 4).
    pub fn is_held(&self) -> bool {
        matches!(self, Decision::Hold { .. })
    }

    /// The exit code this decision contributes: 4 when held, else 0. A
    /// published revert may still end in 3 (Healthy not confirmed): the
    /// shell knows that after waiting, policy does not.
    pub fn exit_code(&self) -> u8 {
        if self.is_held() { EXIT_HELD } else { EXIT_OK }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::RecordLastKnownGood(r) => {
                write!(
                    f,
                    "record {} as last-known-good of {}",
                    r.revision.short(),
                    r.app
                )?;
                if r.images.is_empty() {
                    f.write_str(" (no image digests observed)")
                } else {
                    let pins: Vec<String> = r.images.iter().map(RecordedImage::pinned).collect();
                    write!(f, " with {}", pins.join(", "))
                }
            }
            Decision::Revert(intent) => {
                write!(
                    f,
                    "revert {} commit(s) by {} back to {} ({})",
                    intent.culprits.len(),
                    intent.mode,
                    intent.last_known_good.short(),
                    intent.reason()
                )?;
                if !intent.overridden.is_empty() {
                    let kinds: Vec<String> =
                        intent.overridden.iter().map(ToString::to_string).collect();
                    write!(
                        f,
                        " [guards overridden by --force-guards: {}]",
                        kinds.join(", ")
                    )?;
                }
                if let Some(by) = &intent.approved_by {
                    write!(f, " [approved by {by}]")?;
                }
                Ok(())
            }
            Decision::RequestApproval(intent) => write!(
                f,
                "ask an approver to revert {} commit(s) back to {} ({})",
                intent.culprits.len(),
                intent.last_known_good.short(),
                intent.reason()
            ),
            Decision::Hold { reason, .. } | Decision::Nothing { reason } => f.write_str(reason),
        }
    }
}

/// Everything `decide` looks at.
#[derive(Debug, Clone, Copy)]
pub struct DecideInput<'a> {
    pub app: &'a AppName,
    pub verdict: &'a Verdict,
    /// The observation the verdict was made from (`None` when there was
    /// none).
    pub observation: Option<&'a Observation>,
    pub now: Timestamp,
    pub policy: &'a PolicyRules,
    pub facts: &'a Facts,
    /// A human asked to override the overridable guards. Never overrides
    /// "no last-known-good": a revert without one is blind.
    pub force_guards: bool,
    /// A human approved this revert (chat button, `/revertbot approve`,
    /// `revertbot approve`). Guards are checked again regardless: the
    /// world may have moved since the request.
    pub approval: Option<&'a Approval>,
}

/// Decides. Total: any input gives a decision.
///
/// - Unknown → `Nothing` (the verdict's reason). No data never reverts.
/// - Healthy → `RecordLastKnownGood` once the grace period after the sync
///   has passed and these digests are not recorded on this revision yet;
///   else `Nothing`. A healthy app is never reverted.
/// - Breach → `Nothing` when the culprits are already reverted and the
///   revert awaits deployment (racing runs make one revert); `Hold` for the
///   first guard that holds (`--force-guards` skips the overridable ones);
///   else the mode for the severity: `Approve` → `RequestApproval` (or
///   `Revert` by `Push` once approved), otherwise `Revert`.
pub fn decide(input: &DecideInput<'_>) -> Decision {
    match input.verdict {
        Verdict::Unknown { reason } => Decision::Nothing {
            reason: format!("nothing to do: {reason}"),
        },
        Verdict::Healthy { .. } => healthy(input),
        Verdict::Breach { severity, evidence } => breach(input, *severity, evidence),
    }
}

fn healthy(input: &DecideInput<'_>) -> Decision {
    let Some(obs) = input.observation else {
        return nothing("healthy, but there is no observation to record");
    };
    let Some(revision) = obs.deployed.clone() else {
        return nothing("healthy, but the controller names no applied revision to record");
    };
    // Not recorded until it has run for the grace period: an SLO breach may
    // not have shown yet, and an LKG is what every later revert trusts.
    if let Some(at) = deployed_at(obs)
        && in_grace(at, input.policy.grace, input.now)
    {
        return nothing(&format!(
            "healthy; {} is recorded as last-known-good once it has run for {} after its sync at {at}",
            revision.short(),
            fmt_duration(input.policy.grace)
        ));
    }
    let mut images: Vec<RecordedImage> = obs
        .live_digests()
        .into_iter()
        .map(|(image, digest)| RecordedImage { image, digest })
        .collect();
    images.sort();
    images.dedup();
    let already = input.facts.recorded.iter().any(|r| {
        &r.app == input.app && r.revision == revision && images.iter().all(|i| r.images.contains(i))
    });
    if already {
        return nothing(&format!(
            "healthy; {} is already recorded as last-known-good with these digests",
            revision.short()
        ));
    }
    Decision::RecordLastKnownGood(LkgRecord {
        app: input.app.clone(),
        revision,
        images,
        source: RecordSource::Controller,
        recorded_at: input.now,
    })
}

fn breach(input: &DecideInput<'_>, severity: Severity, evidence: &[Evidence]) -> Decision {
    let facts = input.facts;
    let Some(obs) = input.observation else {
        return hold(Guard::NoDeployedRevision);
    };
    let Some(deployed) = obs.deployed.clone() else {
        return hold(Guard::NoDeployedRevision);
    };
    if let Some(pending) = pending_revert(&deployed, facts) {
        return nothing(&format!(
            "breach, but {} is already reverted by {} — waiting for the controller to deploy it",
            pending.0.short(),
            pending.1.short()
        ));
    }
    let Some(lkg) = &facts.last_known_good else {
        return hold(Guard::NoLastKnownGood { deployed });
    };
    let guards = holding(
        &deployed,
        lkg,
        evidence,
        obs,
        facts,
        input.policy,
        input.now,
    );
    let mut overridden: Vec<GuardKind> = Vec::new();
    for guard in guards {
        if input.force_guards && guard.overridable() {
            if !overridden.contains(&guard.kind()) {
                overridden.push(guard.kind());
            }
        } else {
            return hold(guard);
        }
    }
    let mode = match severity {
        Severity::Critical => input.policy.critical,
        Severity::Warning => input.policy.warning,
    };
    let mut intent = intent(input, &deployed, lkg, severity, evidence, obs);
    intent.overridden = overridden;
    intent.approved_by = input.approval.map(|a| a.by.clone());
    match (mode, input.approval) {
        (Mode::Approve, None) => Decision::RequestApproval(intent),
        (Mode::Approve, Some(_)) | (Mode::Push, _) => {
            intent.mode = RevertMode::Push;
            Decision::Revert(Approved::new(intent))
        }
        (Mode::Pr, _) => {
            intent.mode = RevertMode::Pr;
            Decision::Revert(Approved::new(intent))
        }
        (Mode::PrAutomerge, _) => {
            intent.mode = RevertMode::PrAutomerge;
            Decision::Revert(Approved::new(intent))
        }
    }
}

/// A culprit already reverted by a commit the controller has not deployed
/// yet: the breach is being handled. Not when the deployed revision is a
/// revert (then the revert did not help) or the search still finds
/// unreverted culprits.
fn pending_revert<'f>(
    deployed: &CommitSha,
    facts: &'f Facts,
) -> Option<(&'f CommitSha, &'f CommitSha)> {
    if facts.deployed_is_revert.is_some() || !facts.culprits.is_empty() {
        return None;
    }
    if facts.already_reverted.iter().any(|r| &r.by == deployed) {
        return None;
    }
    facts.already_reverted.first().map(|r| (&r.culprit, &r.by))
}

fn intent(
    input: &DecideInput<'_>,
    deployed: &CommitSha,
    lkg: &LastKnownGood,
    severity: Severity,
    evidence: &[Evidence],
    obs: &Observation,
) -> RevertIntent {
    let mut bad: Vec<RecordedImage> = Vec::new();
    for (image, digest) in obs.live_digests() {
        if !lkg.images.iter().any(|i| i.digest == digest) {
            bad.push(RecordedImage { image, digest });
        }
    }
    for e in evidence {
        if let Evidence::Repromoted { digest, image, .. } = e
            && !bad.iter().any(|b| &b.digest == digest)
        {
            bad.push(RecordedImage {
                image: image.clone(),
                digest: digest.clone(),
            });
        }
    }
    RevertIntent {
        app: input.app.clone(),
        incident: incident_id(input.app, deployed),
        deployed: deployed.clone(),
        last_known_good: lkg.revision.clone(),
        culprits: input.facts.culprits.iter().map(|c| c.sha.clone()).collect(),
        pin: lkg.images.clone(),
        bad_images: bad,
        mode: RevertMode::Push,
        severity,
        evidence: evidence.to_vec(),
        overridden: Vec::new(),
        approved_by: None,
    }
}

fn hold(guard: Guard) -> Decision {
    let reason = guard.to_string();
    Decision::Hold { guard, reason }
}

fn nothing(reason: &str) -> Decision {
    Decision::Nothing {
        reason: reason.to_owned(),
    }
}
