//! `judge`: one observation of one app → Healthy, Breach or Unknown.
//!
//! The rule of thumb is "never make things worse": only data that proves a
//! breach makes one, and only data that proves health makes Healthy.
//! Everything else — an unreachable controller, stale health, a rollout in
//! progress, a signal without data — is Unknown, and Unknown never reverts.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::Digest;
use crate::domain::health::{Health, Observation, OperationPhase, PodState, SyncStatus};
use crate::domain::ledger::RecordedImage;

use super::evidence::{Evidence, Seen, UnknownReason};
use super::types::{HealthRules, Quarantined, Severity, SignalResult, Unavailable, elapsed};

/// Everything `judge` looks at.
#[derive(Debug, Clone, Copy)]
pub struct JudgeInput<'a> {
    /// The observation, or why there is none.
    pub observed: Result<&'a Observation, &'a Unavailable>,
    pub now: Timestamp,
    pub rules: &'a HealthRules,
    /// Digests earlier incidents recorded as bad.
    pub quarantine: &'a [Quarantined],
    /// Digests pinned in the manifests at the deployed revision, when the
    /// caller read them (a re-promoted digest can be caught before a pod
    /// pulls it).
    pub manifest_digests: &'a [RecordedImage],
    /// External signals (SLOs, alerts).
    pub signals: &'a [SignalResult],
}

/// The judgement of one app.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Healthy {
        evidence: Vec<Evidence>,
    },
    Breach {
        severity: Severity,
        evidence: Vec<Evidence>,
    },
    Unknown {
        reason: UnknownReason,
    },
}

impl Verdict {
    /// The report's `verdict` field: `healthy`, `breach` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Healthy { .. } => "healthy",
            Verdict::Breach { .. } => "breach",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    pub fn is_breach(&self) -> bool {
        matches!(self, Verdict::Breach { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Healthy { evidence } => {
                f.write_str("healthy")?;
                write_evidence(f, evidence)
            }
            Verdict::Breach { severity, evidence } => {
                write!(f, "{severity} breach")?;
                write_evidence(f, evidence)
            }
            Verdict::Unknown { reason } => write!(f, "unknown: {reason}"),
        }
    }
}

fn write_evidence(f: &mut fmt::Formatter<'_>, evidence: &[Evidence]) -> fmt::Result {
    for (i, e) in evidence.iter().enumerate() {
        f.write_str(if i == 0 { ": " } else { "; " })?;
        write!(f, "{e}")?;
    }
    Ok(())
}

/// Waiting reasons that mean "this image will never start".
const IMAGE_PULL_REASONS: [&str; 3] = ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"];
const CRASH_LOOP: &str = "CrashLoopBackOff";

/// Judges one app. Total: any input gives a verdict.
///
/// - No observation (controller unreachable, malformed, not found) →
///   Unknown, never Breach: the bot must not act on what it cannot see.
/// - Breach evidence, any of which makes a breach (severity = the worst):
///   - a quarantined digest running in a current pod or pinned in the
///     manifests (re-promotion: image-update bots push bad versions back);
///   - fast failure of a current-revision pod (crash loop, image pull, not
///     Ready too long): Argo CD marks a crash-looping Deployment Degraded
///     only after its 600 s progress deadline, so we do not wait for it.
///     Pods are their own proof, so this counts whatever the controller
///     says; old-revision pods never count;
///   - controller `Degraded` / `Missing` (with `health.controller`), only
///     when the health is fresh: reconciled after the last sync ended;
///   - instead of that, a revision the controller cannot apply (Flux build
///     or apply failed): a *warning*, whatever `health.controller` says —
///     the app still runs the revision before, but git holds one it cannot
///     deploy;
///   - a breaching external signal (its window was held elsewhere; NoData
///     is never a breach, unlike Flagger).
/// - Otherwise Healthy only when the controller says Healthy + Synced, the
///   health is fresh, the last sync did not fail and a revision is applied;
///   anything else is Unknown with the reason.
pub fn judge(input: &JudgeInput<'_>) -> Verdict {
    let obs = match input.observed {
        Ok(obs) => obs,
        Err(unavailable) => {
            return Verdict::Unknown {
                reason: UnknownReason::ControllerUnavailable(unavailable.clone()),
            };
        }
    };
    let freshness = freshness(obs);
    let mut evidence = repromotion(obs, input.quarantine, input.manifest_digests);
    evidence.extend(fast_failure(obs, input.rules, input.now));
    // A failed apply explains the controller's Degraded: the cluster is not
    // down, git is ahead of what it can run. Its own, milder fact.
    if let Some(failure) = &obs.apply_failure
        && freshness.is_none()
    {
        evidence.push(Evidence::ApplyFailed {
            source: obs.source.clone(),
            attempted: failure.attempted.clone(),
            applied: failure.applied.clone(),
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        });
    } else if input.rules.controller
        && matches!(obs.health, Health::Degraded | Health::Missing)
        && freshness.is_none()
    {
        evidence.push(Evidence::ControllerUnhealthy {
            source: obs.source.clone(),
            health: obs.health,
            message: obs.health_message.clone(),
        });
    }
    let signals = input.signals.iter().map(|s| Evidence::Signal {
        name: s.name.clone(),
        severity: s.severity,
        state: s.state,
        detail: s.detail.clone(),
    });
    let (breaching, quiet): (Vec<Evidence>, Vec<Evidence>) =
        signals.partition(|e| e.breach_severity().is_some());
    evidence.extend(breaching);

    if let Some(severity) = evidence.iter().filter_map(Evidence::breach_severity).max() {
        return Verdict::Breach { severity, evidence };
    }
    match not_healthy_reason(obs, freshness) {
        Some(reason) => Verdict::Unknown { reason },
        None => {
            let Some(revision) = obs.deployed.clone() else {
                return Verdict::Unknown {
                    reason: UnknownReason::NoDeployedRevision,
                };
            };
            let mut evidence = vec![Evidence::ControllerHealthy {
                source: obs.source.clone(),
                revision,
            }];
            evidence.extend(quiet);
            Verdict::Healthy { evidence }
        }
    }
}

/// `None` when the controller's health describes the outcome of the last
/// sync; otherwise why it may not. Argo CD ends the operation as soon as
/// manifests are applied and reports health from its next reconcile, so
/// health reconciled before `finishedAt` may be the previous revision's.
fn freshness(obs: &Observation) -> Option<UnknownReason> {
    let op = obs.operation.as_ref()?;
    match op.phase {
        OperationPhase::Running | OperationPhase::Terminating => {
            Some(UnknownReason::SyncRunning { phase: op.phase })
        }
        OperationPhase::Succeeded | OperationPhase::Failed | OperationPhase::Error => {
            let finished_at = op.finished_at?;
            match obs.reconciled_at {
                Some(r) if r > finished_at => None,
                reconciled_at => Some(UnknownReason::HealthStale {
                    reconciled_at,
                    finished_at,
                }),
            }
        }
    }
}

/// Why an observation without breach evidence is not Healthy, or `None`
/// when it is.
fn not_healthy_reason(
    obs: &Observation,
    freshness: Option<UnknownReason>,
) -> Option<UnknownReason> {
    match obs.health {
        Health::Suspended => return Some(UnknownReason::Suspended),
        Health::Unknown => {
            return Some(UnknownReason::ControllerUnknown {
                message: obs.health_message.clone(),
            });
        }
        Health::Progressing => {
            return Some(freshness.unwrap_or(UnknownReason::Progressing {
                message: obs.health_message.clone(),
            }));
        }
        Health::Degraded | Health::Missing => {
            // With `controller: true` and fresh health this was a breach.
            return Some(
                freshness.unwrap_or(UnknownReason::ControllerHealthIgnored { health: obs.health }),
            );
        }
        Health::Healthy => {}
    }
    if let Some(reason) = freshness {
        return Some(reason);
    }
    if let Some(op) = &obs.operation
        && matches!(op.phase, OperationPhase::Failed | OperationPhase::Error)
    {
        return Some(UnknownReason::SyncFailed {
            phase: op.phase,
            message: op.message.clone(),
        });
    }
    if obs.sync != SyncStatus::Synced {
        return Some(UnknownReason::NotSynced { sync: obs.sync });
    }
    // The controller's Healthy is not the pods' (Flux `wait: false` is Ready
    // once applied): a current pod not Ready yet has not proven the
    // revision good, so it is not recorded as last-known-good meanwhile.
    let not_ready: Vec<String> = obs
        .pods
        .iter()
        .filter(|p| p.current && !p.ready)
        .map(|p| p.name.clone())
        .collect();
    if !not_ready.is_empty() {
        return Some(UnknownReason::PodsNotReady { pods: not_ready });
    }
    None
}

/// Quarantined digests deployed again: in a current pod, or pinned in the
/// manifests of the deployed revision.
fn repromotion(
    obs: &Observation,
    quarantine: &[Quarantined],
    manifest: &[RecordedImage],
) -> Vec<Evidence> {
    let mut out = Vec::new();
    if quarantine.is_empty() {
        return out;
    }
    let mut seen_digests: Vec<&Digest> = Vec::new();
    for pod in obs.pods.iter().filter(|p| p.current) {
        for image in &pod.images {
            let Some(digest) = &image.digest else {
                continue;
            };
            if seen_digests.contains(&digest) {
                continue;
            }
            if let Some(q) = quarantine.iter().find(|q| &q.digest == digest) {
                seen_digests.push(digest);
                out.push(Evidence::Repromoted {
                    digest: digest.clone(),
                    image: q.image.clone(),
                    incident: q.incident.clone(),
                    seen: Seen::Pod {
                        pod: pod.name.clone(),
                        container: image.container.clone(),
                    },
                });
            }
        }
    }
    for image in manifest {
        if seen_digests.contains(&&image.digest) {
            continue;
        }
        if let Some(q) = quarantine.iter().find(|q| q.digest == image.digest) {
            seen_digests.push(&image.digest);
            out.push(Evidence::Repromoted {
                digest: image.digest.clone(),
                image: q.image.clone(),
                incident: q.incident.clone(),
                seen: Seen::Manifest,
            });
        }
    }
    out
}

/// Fast failure of the current revision's pods.
fn fast_failure(obs: &Observation, rules: &HealthRules, now: Timestamp) -> Vec<Evidence> {
    let mut out = Vec::new();
    for pod in obs.pods.iter().filter(|p| p.current) {
        let before = out.len();
        for waiting in &pod.waiting {
            if rules.crashloop && waiting.reason == CRASH_LOOP {
                out.push(Evidence::CrashLoop {
                    pod: pod.name.clone(),
                    container: waiting.container.clone(),
                    restarts: pod.restart_count,
                });
            } else if rules.image_pull && IMAGE_PULL_REASONS.contains(&waiting.reason.as_str()) {
                out.push(Evidence::ImagePull {
                    pod: pod.name.clone(),
                    container: waiting.container.clone(),
                    reason: waiting.reason.clone(),
                });
            }
        }
        // A pod that already failed fast needs no second, vaguer fact.
        if out.len() == before
            && let Some(limit) = rules.not_ready_for
            && let Some(for_) = not_ready_for(pod, now)
            && for_ > limit
        {
            out.push(Evidence::NotReady {
                pod: pod.name.clone(),
                for_,
                limit,
            });
        }
    }
    out
}

/// How long a pod has been not Ready: since its Ready condition last
/// changed, or since it was created. `None` when it is Ready or that cannot
/// be measured (no timestamps, or timestamps in the future).
fn not_ready_for(pod: &PodState, now: Timestamp) -> Option<Duration> {
    if pod.ready {
        return None;
    }
    let since = pod.ready_since.or(pod.created_at)?;
    elapsed(now, since)
}
