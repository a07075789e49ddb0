//! The facts behind a verdict ([`Evidence`]) and the reasons a verdict is
//! Unknown, each rendered for people.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::health::{Health, OperationPhase, SyncStatus};
use crate::domain::{CommitSha, Digest};

use super::types::{Severity, SignalState, Unavailable, fmt_duration};
/// Where a re-promoted digest was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Seen {
    Pod { pod: String, container: String },
    Manifest,
}

/// One fact behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// The controller reports the deployed revision Healthy and Synced, and
    /// has reconciled since the last sync ended.
    ControllerHealthy { source: String, revision: CommitSha },
    /// The controller reports `Degraded` or `Missing`.
    ControllerUnhealthy {
        source: String,
        health: Health,
        message: Option<String>,
    },
    /// The controller cannot apply a revision git holds (Flux: its build or
    /// apply failed); the cluster still runs the one before. A warning: the
    /// app is not down, but every later commit is stuck behind this one.
    ApplyFailed {
        source: String,
        attempted: CommitSha,
        applied: Option<CommitSha>,
        reason: String,
        message: String,
    },
    CrashLoop {
        pod: String,
        container: String,
        restarts: u32,
    },
    ImagePull {
        pod: String,
        container: String,
        reason: String,
    },
    NotReady {
        pod: String,
        for_: Duration,
        limit: Duration,
    },
    /// A digest an earlier incident quarantined is deployed again.
    Repromoted {
        digest: Digest,
        image: String,
        incident: String,
        seen: Seen,
    },
    Signal {
        name: String,
        severity: Severity,
        state: SignalState,
        detail: String,
    },
    /// A person asked for the revert (`revertbot revert`). The same guards
    /// hold it as an automatic one; only `--force-guards` overrides them.
    Manual { reason: String },
}

/// What kind of fact a piece of evidence is; guards treat kinds
/// differently (the grace period holds only `Controller`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceClass {
    Controller,
    FastFailure,
    Repromotion,
    Signal,
    Manual,
}

impl Evidence {
    pub fn class(&self) -> EvidenceClass {
        match self {
            Evidence::ControllerHealthy { .. }
            | Evidence::ControllerUnhealthy { .. }
            | Evidence::ApplyFailed { .. } => EvidenceClass::Controller,
            Evidence::CrashLoop { .. } | Evidence::ImagePull { .. } | Evidence::NotReady { .. } => {
                EvidenceClass::FastFailure
            }
            Evidence::Repromoted { .. } => EvidenceClass::Repromotion,
            Evidence::Signal { .. } => EvidenceClass::Signal,
            Evidence::Manual { .. } => EvidenceClass::Manual,
        }
    }

    /// The severity of this evidence when it is a breach, `None` when it is
    /// not (healthy facts, signals that are Ok or have no data).
    pub fn breach_severity(&self) -> Option<Severity> {
        match self {
            Evidence::ControllerHealthy { .. } => None,
            Evidence::ControllerUnhealthy { .. }
            | Evidence::CrashLoop { .. }
            | Evidence::ImagePull { .. }
            | Evidence::NotReady { .. }
            | Evidence::Repromoted { .. }
            | Evidence::Manual { .. } => Some(Severity::Critical),
            Evidence::ApplyFailed { .. } => Some(Severity::Warning),
            Evidence::Signal {
                severity, state, ..
            } => (*state == SignalState::Breaching).then_some(*severity),
        }
    }
}

/// One piece of evidence as a row: what was measured, what it was, and
/// the bound it crossed (PR bodies and summaries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measured {
    pub signal: String,
    pub value: String,
    pub threshold: String,
}

impl Evidence {
    pub fn measure(&self) -> Measured {
        let row = |signal: String, value: String, threshold: &str| Measured {
            signal,
            value,
            threshold: threshold.to_owned(),
        };
        match self {
            Evidence::ControllerHealthy { source, revision } => row(
                source.clone(),
                format!("Healthy at {}", revision.short()),
                "Healthy",
            ),
            Evidence::ControllerUnhealthy {
                source,
                health,
                message,
            } => row(
                source.clone(),
                match message {
                    Some(m) if !m.is_empty() => format!("{health:?} ({m})"),
                    _ => format!("{health:?}"),
                },
                "Healthy",
            ),
            Evidence::ApplyFailed {
                source,
                attempted,
                reason,
                ..
            } => row(
                source.clone(),
                format!("cannot apply {} ({reason})", attempted.short()),
                "applied",
            ),
            Evidence::CrashLoop {
                pod,
                container,
                restarts,
            } => row(
                format!("pod {pod} / {container}"),
                format!("CrashLoopBackOff, {restarts} restarts"),
                "not crash-looping",
            ),
            Evidence::ImagePull {
                pod,
                container,
                reason,
            } => row(
                format!("pod {pod} / {container}"),
                reason.clone(),
                "image pulled",
            ),
            Evidence::NotReady { pod, for_, limit } => Measured {
                signal: format!("pod {pod}"),
                value: format!("not Ready for {}", fmt_duration(*for_)),
                threshold: format!("Ready within {}", fmt_duration(*limit)),
            },
            Evidence::Repromoted {
                digest, incident, ..
            } => Measured {
                signal: "re-promotion".to_owned(),
                value: digest.to_string(),
                threshold: format!("quarantined by incident {incident}"),
            },
            Evidence::Signal {
                name,
                state,
                detail,
                ..
            } => row(
                name.clone(),
                if detail.is_empty() {
                    format!("{state:?}")
                } else {
                    detail.clone()
                },
                "within bounds",
            ),
            Evidence::Manual { reason } => row(
                "manual request".to_owned(),
                reason.clone(),
                "a person asked",
            ),
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::ControllerHealthy { source, revision } => {
                write!(f, "{source} is Healthy and Synced at {}", revision.short())
            }
            Evidence::ControllerUnhealthy {
                source,
                health,
                message,
            } => {
                write!(f, "{source} reports {health:?}")?;
                match message {
                    Some(m) if !m.is_empty() => write!(f, " ({m})"),
                    _ => Ok(()),
                }
            }
            Evidence::ApplyFailed {
                source,
                attempted,
                applied,
                reason,
                message,
            } => {
                write!(f, "{source} cannot apply {} ({reason}", attempted.short())?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                f.write_str(")")?;
                match applied {
                    Some(applied) if applied != attempted => {
                        write!(f, "; the cluster still runs {}", applied.short())
                    }
                    _ => Ok(()),
                }
            }
            Evidence::CrashLoop {
                pod,
                container,
                restarts,
            } => write!(
                f,
                "pod {pod} container {container} is in CrashLoopBackOff ({restarts} restarts)"
            ),
            Evidence::ImagePull {
                pod,
                container,
                reason,
            } => write!(
                f,
                "pod {pod} container {container} cannot pull its image ({reason})"
            ),
            Evidence::NotReady { pod, for_, limit } => write!(
                f,
                "pod {pod} not Ready for {} (limit {})",
                fmt_duration(*for_),
                fmt_duration(*limit)
            ),
            Evidence::Repromoted {
                digest,
                image,
                incident,
                seen,
            } => {
                if image.contains(digest.as_str()) {
                    write!(f, "re-promoted: {image}")?;
                } else {
                    write!(f, "re-promoted: {digest} ({image})")?;
                }
                write!(
                    f,
                    " was quarantined by incident {incident} and is deployed again"
                )?;
                match seen {
                    Seen::Pod { pod, container } => {
                        write!(f, " (pod {pod}, container {container})")
                    }
                    Seen::Manifest => f.write_str(" (in the manifests)"),
                }
            }
            Evidence::Signal {
                name,
                severity,
                state,
                detail,
            } => {
                let state = match state {
                    SignalState::Breaching => "breaching",
                    SignalState::Ok => "ok",
                    SignalState::NoData => "no data (not a breach)",
                };
                write!(f, "signal {name} ({severity}) {state}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Evidence::Manual { reason } => write!(f, "requested by hand: {reason}"),
        }
    }
}

/// Why a verdict is Unknown: what to wait for or fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum UnknownReason {
    ControllerUnavailable(Unavailable),
    /// A sync is running; health mid-sync says nothing about the result.
    SyncRunning {
        phase: OperationPhase,
    },
    /// The controller has not reconciled since the last sync ended, so its
    /// health may describe the previous revision.
    HealthStale {
        reconciled_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
    /// The last sync failed or errored; the app is not known good.
    SyncFailed {
        phase: OperationPhase,
        message: String,
    },
    /// A rollout is in progress and no pod has failed fast.
    Progressing {
        message: Option<String>,
    },
    Suspended,
    /// The controller could not assess health.
    ControllerUnknown {
        message: Option<String>,
    },
    /// Healthy, but live does not match git yet.
    NotSynced {
        sync: SyncStatus,
    },
    /// The controller says Healthy, but pods of the current revision are not
    /// Ready yet (Flux with `wait: false` is Ready as soon as it applied):
    /// the rollout has not proven itself, so it is not recorded as good.
    PodsNotReady {
        pods: Vec<String>,
    },
    /// The controller applied nothing we can name.
    NoDeployedRevision,
    /// The controller reports Degraded / Missing, but `health.controller`
    /// is off and nothing else breaches.
    ControllerHealthIgnored {
        health: Health,
    },
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownReason::ControllerUnavailable(u) => write!(
                f,
                "the controller {}: {} — nothing is judged without an observation; check the controller's address and credentials",
                u.kind, u.detail
            ),
            UnknownReason::SyncRunning { phase } => write!(
                f,
                "a sync operation is {phase:?}; health is judged once it ends"
            ),
            UnknownReason::HealthStale {
                reconciled_at,
                finished_at,
            } => {
                write!(f, "health is stale: last reconciled ")?;
                match reconciled_at {
                    Some(t) => write!(f, "at {t}")?,
                    None => f.write_str("at an unknown time")?,
                }
                write!(
                    f,
                    ", before the last sync ended at {finished_at}; waiting for the controller to reconcile (ask it to refresh)"
                )
            }
            UnknownReason::SyncFailed { phase, message } => write!(
                f,
                "the last sync {phase:?}: {message} — the app is not known good; fix the sync"
            ),
            UnknownReason::PodsNotReady { pods } => {
                let shown: Vec<&str> = pods.iter().take(3).map(String::as_str).collect();
                write!(
                    f,
                    "the controller says Healthy, but {} pod(s) of the current revision are not Ready yet ({}{}); judged again once they are",
                    pods.len(),
                    shown.join(", "),
                    if pods.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                )
            }
            UnknownReason::Progressing { message } => {
                f.write_str("the rollout is Progressing and no pod of the new revision fails")?;
                if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            UnknownReason::Suspended => {
                f.write_str("the app is Suspended (paused); resume it to have it judged")
            }
            UnknownReason::ControllerUnknown { message } => {
                f.write_str("the controller cannot assess the app's health")?;
                if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            UnknownReason::NotSynced { sync } => write!(
                f,
                "healthy but {sync:?}: live state does not match git yet, so it is not recorded as known good"
            ),
            UnknownReason::NoDeployedRevision => f.write_str(
                "the controller reports no applied revision; nothing can be recorded or reverted",
            ),
            UnknownReason::ControllerHealthIgnored { health } => write!(
                f,
                "the controller reports {health:?} but health.controller is off and no other signal breaches"
            ),
        }
    }
}
