//! Guards: the reasons a confirmed breach is *not* reverted now. Each has
//! its own variant and a message that says what to do. A guard holds the
//! revert (exit code 4) but never hides the breach.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::CommitSha;
use crate::domain::health::Observation;
use crate::domain::ledger::LkgRecord;

use super::evidence::{Evidence, EvidenceClass};
use super::types::{
    CulpritFact, LastKnownGood, PastRevert, PolicyRules, RevertedFact, after, before, elapsed,
    fmt_duration,
};

/// What the shell found out about the app before deciding. Everything here
/// comes from git (the ledger, the culprit search, trailers) or the infra
/// repo's files; `decide` does no I/O.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// The last-known-good a revert would restore (ledger, or `--lkg`).
    pub last_known_good: Option<LastKnownGood>,
    /// Commits between the LKG and the deployed revision that change the
    /// app and are not reverted yet (newest first, as the search returns).
    pub culprits: Vec<CulpritFact>,
    /// Culprits the search found already reverted on the branch.
    pub already_reverted: Vec<RevertedFact>,
    /// `Some(incident)` when the deployed revision is revertbot's own revert
    /// commit of this app, verified by content (trailers alone are a claim).
    pub deployed_is_revert: Option<String>,
    /// Earlier reverts of this app, from the ledger.
    pub past_reverts: Vec<PastRevert>,
    /// `Some(path)` when a `.revertbot-freeze` file is present.
    pub freeze_file: Option<String>,
    /// The LKG records already on the deployed revision (its note), so a
    /// healthy app is recorded once per set of digests.
    pub recorded: Vec<LkgRecord>,
}

/// Where a freeze comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum FreezeSource {
    /// `policy.freeze: true` in the config.
    Config,
    /// A freeze file in the infra repo.
    File { path: String },
}

/// Why a breach is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Guard {
    /// The controller names no applied revision: nothing to revert from.
    NoDeployedRevision,
    /// Never revert blind: without a recorded known-good there is nothing
    /// to pin and no boundary for the culprit search. `--force-guards` does
    /// not override this.
    NoLastKnownGood {
        deployed: CommitSha,
    },
    /// The breach is not caused by a commit the LKG lacks.
    NothingToRevert {
        deployed: CommitSha,
        lkg: CommitSha,
    },
    /// The deployed revision is revertbot's own revert and the app still
    /// breaches: reverting again would re-apply the bad change
    /// (upgrade→rollback loops have produced thousands of revisions).
    DeployedIsRevert {
        deployed: CommitSha,
        incident: String,
    },
    /// A culprit is itself a revertbot revert.
    CulpritIsRevert {
        culprit: CommitSha,
        incident: String,
    },
    /// A culprit was reverted once already by an earlier incident and is
    /// back: never revert the same commit twice.
    RevertedBefore {
        culprit: CommitSha,
        incident: String,
    },
    Frozen {
        source: FreezeSource,
    },
    MaxReverts {
        count: u32,
        per: Duration,
        in_window: u32,
        next_at: Timestamp,
    },
    Cooldown {
        last: Timestamp,
        cooldown: Duration,
        until: Timestamp,
    },
    /// Controller health right after a sync is noise; only controller
    /// evidence is held (crash loops and re-promotion are not).
    Grace {
        deployed_at: Timestamp,
        grace: Duration,
        until: Timestamp,
    },
}

/// The guard families, for reports and for `RevertIntent::overridden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardKind {
    NoDeployedRevision,
    NoLastKnownGood,
    NothingToRevert,
    Loop,
    Freeze,
    MaxReverts,
    Cooldown,
    Grace,
}

impl Guard {
    pub fn kind(&self) -> GuardKind {
        match self {
            Guard::NoDeployedRevision => GuardKind::NoDeployedRevision,
            Guard::NoLastKnownGood { .. } => GuardKind::NoLastKnownGood,
            Guard::NothingToRevert { .. } => GuardKind::NothingToRevert,
            Guard::DeployedIsRevert { .. }
            | Guard::CulpritIsRevert { .. }
            | Guard::RevertedBefore { .. } => GuardKind::Loop,
            Guard::Frozen { .. } => GuardKind::Freeze,
            Guard::MaxReverts { .. } => GuardKind::MaxReverts,
            Guard::Cooldown { .. } => GuardKind::Cooldown,
            Guard::Grace { .. } => GuardKind::Grace,
        }
    }

    /// Whether `--force-guards` lets a human override this guard. The
    /// guards that say "there is nothing safe to revert to" never yield.
    pub fn overridable(&self) -> bool {
        !matches!(
            self.kind(),
            GuardKind::NoDeployedRevision | GuardKind::NoLastKnownGood | GuardKind::NothingToRevert
        )
    }
}

impl fmt::Display for GuardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuardKind::NoDeployedRevision => "no deployed revision",
            GuardKind::NoLastKnownGood => "no last-known-good",
            GuardKind::NothingToRevert => "nothing to revert",
            GuardKind::Loop => "loop guard",
            GuardKind::Freeze => "freeze",
            GuardKind::MaxReverts => "max reverts",
            GuardKind::Cooldown => "cooldown",
            GuardKind::Grace => "grace period",
        })
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::NoDeployedRevision => f.write_str(
                "held: the controller reports no applied revision, so there is nothing to revert from — check the app in the controller",
            ),
            Guard::NoLastKnownGood { deployed } => write!(
                f,
                "held: no last-known-good is recorded on the history of {} — never revert blind; record one with `revertbot record` while the app is healthy, or pass --lkg (--force-guards does not override this)",
                deployed.short()
            ),
            Guard::NothingToRevert { deployed, lkg } => write!(
                f,
                "held: no commit between last-known-good {} and deployed {} changes the app — the cause is outside the infra repo; investigate the cluster or its dependencies",
                lkg.short(),
                deployed.short()
            ),
            Guard::DeployedIsRevert { deployed, incident } => write!(
                f,
                "held (loop guard): the deployed revision {} is revertbot's revert for incident {incident} and the app still breaches — the revert did not fix it; a human must look (reverting it would re-apply the bad change)",
                deployed.short()
            ),
            Guard::CulpritIsRevert { culprit, incident } => write!(
                f,
                "held (loop guard): culprit {} is revertbot's revert for incident {incident} — reverting it would re-apply the bad change; fix forward or revert by hand with --commit",
                culprit.short()
            ),
            Guard::RevertedBefore { culprit, incident } => write!(
                f,
                "held (loop guard): culprit {} was already reverted by incident {incident} and is back — it is never reverted twice; find out who re-applied it",
                culprit.short()
            ),
            Guard::Frozen { source } => match source {
                FreezeSource::Config => f.write_str(
                    "held: reverts are frozen by `policy.freeze` in the config — unset it to let revertbot act, or revert by hand with --force-guards",
                ),
                FreezeSource::File { path } => write!(
                    f,
                    "held: reverts are frozen by {path} — delete that file to let revertbot act, or revert by hand with --force-guards"
                ),
            },
            Guard::MaxReverts {
                count,
                per,
                in_window,
                next_at,
            } => write!(
                f,
                "held: {in_window} revert(s) of this app in the last {} reach the limit of {count} (policy.max_reverts) — this looks like a loop; a human must look (next allowed at {next_at}, or --force-guards)",
                fmt_duration(*per)
            ),
            Guard::Cooldown {
                last,
                cooldown,
                until,
            } => write!(
                f,
                "held: the last revert of this app was at {last}, within the {} cooldown — wait until {until} or revert by hand with --force-guards",
                fmt_duration(*cooldown)
            ),
            Guard::Grace {
                deployed_at,
                grace,
                until,
            } => write!(
                f,
                "held: the revision was synced at {deployed_at}, within the {} grace period, and only controller health breaches — judged again after {until}",
                fmt_duration(*grace)
            ),
        }
    }
}

/// When the deployed revision was applied: from the history, else when the
/// last sync ended.
pub(crate) fn deployed_at(obs: &Observation) -> Option<Timestamp> {
    obs.deployed_at()
        .or_else(|| obs.operation.as_ref().and_then(|op| op.finished_at))
}

/// Whether `now` is still within `grace` of `deployed_at` (a deploy time in
/// the future counts as within).
pub(crate) fn in_grace(deployed_at: Timestamp, grace: Duration, now: Timestamp) -> bool {
    elapsed(now, deployed_at).is_none_or(|e| e < grace)
}

/// The guards that hold a revert of `deployed` to `lkg`, in the order they
/// are reported. `NoDeployedRevision` and `NoLastKnownGood` are checked by
/// the caller before there is a `deployed` and an `lkg` to pass.
pub(crate) fn holding(
    deployed: &CommitSha,
    lkg: &LastKnownGood,
    evidence: &[Evidence],
    obs: &Observation,
    facts: &Facts,
    policy: &PolicyRules,
    now: Timestamp,
) -> Vec<Guard> {
    let mut out = Vec::new();
    if let Some(incident) = &facts.deployed_is_revert {
        out.push(Guard::DeployedIsRevert {
            deployed: deployed.clone(),
            incident: incident.clone(),
        });
    }
    if &lkg.revision == deployed || facts.culprits.is_empty() {
        out.push(Guard::NothingToRevert {
            deployed: deployed.clone(),
            lkg: lkg.revision.clone(),
        });
    }
    out.extend(loop_guards(facts));
    if policy.freeze {
        out.push(Guard::Frozen {
            source: FreezeSource::Config,
        });
    } else if let Some(path) = &facts.freeze_file {
        out.push(Guard::Frozen {
            source: FreezeSource::File { path: path.clone() },
        });
    }
    out.extend(max_reverts(facts, policy, now));
    out.extend(cooldown(facts, policy, now));
    out.extend(grace(evidence, obs, policy, now));
    out
}

/// Culprits that are reverts, or were reverted before.
fn loop_guards(facts: &Facts) -> Vec<Guard> {
    let mut out = Vec::new();
    for culprit in &facts.culprits {
        if let Some(incident) = &culprit.revertbot_revert {
            out.push(Guard::CulpritIsRevert {
                culprit: culprit.sha.clone(),
                incident: incident.clone(),
            });
        }
        if let Some(past) = facts
            .past_reverts
            .iter()
            .find(|p| p.culprits.contains(&culprit.sha))
        {
            out.push(Guard::RevertedBefore {
                culprit: culprit.sha.clone(),
                incident: past.incident.clone(),
            });
        }
    }
    out
}

/// At most `count` reverts per window. Reverts stamped in the future (clock
/// skew) count as inside the window.
fn max_reverts(facts: &Facts, policy: &PolicyRules, now: Timestamp) -> Option<Guard> {
    let limit = policy.max_reverts;
    let window_start = before(now, limit.per);
    let in_window: Vec<Timestamp> = facts
        .past_reverts
        .iter()
        .map(|p| p.at)
        .filter(|at| *at > window_start)
        .collect();
    let n = u32::try_from(in_window.len()).unwrap_or(u32::MAX);
    if n < limit.count {
        return None;
    }
    // A slot frees when the oldest revert inside the window leaves it; with
    // a zero limit, never.
    let next_at = match (limit.count, in_window.iter().min()) {
        (0, _) | (_, None) => Timestamp::MAX,
        (_, Some(oldest)) => after(*oldest, limit.per),
    };
    Some(Guard::MaxReverts {
        count: limit.count,
        per: limit.per,
        in_window: n,
        next_at,
    })
}

/// No revert within `cooldown` of the last one.
fn cooldown(facts: &Facts, policy: &PolicyRules, now: Timestamp) -> Option<Guard> {
    let last = facts.past_reverts.iter().map(|p| p.at).max()?;
    let cooling = elapsed(now, last).is_none_or(|e| e < policy.cooldown);
    cooling.then(|| Guard::Cooldown {
        last,
        cooldown: policy.cooldown,
        until: after(last, policy.cooldown),
    })
}

/// Hold controller-only breaches within `grace` of the sync.
fn grace(
    evidence: &[Evidence],
    obs: &Observation,
    policy: &PolicyRules,
    now: Timestamp,
) -> Option<Guard> {
    let only_controller = evidence
        .iter()
        .filter(|e| e.breach_severity().is_some())
        .all(|e| e.class() == EvidenceClass::Controller);
    if !only_controller {
        return None;
    }
    let at = deployed_at(obs)?;
    in_grace(at, policy.grace, now).then(|| Guard::Grace {
        deployed_at: at,
        grace: policy.grace,
        until: after(at, policy.grace),
    })
}
