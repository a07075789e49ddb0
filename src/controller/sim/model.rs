//! The simulated controller's state and rules, as functions of time.
//!
//! Each app has the desired state at the branch tip, the live state (the
//! ReplicaSet currently rolled out, and the previous one while the new one
//! is not available), the current or last operation and the deploy history.
//! Everything time-dependent (sync finished? pods ready? deadline passed?)
//! is computed from timestamps when asked, so the outcome does not depend
//! on when requests arrive.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use globset::GlobSet;
use jiff::{SignedDuration, Timestamp};

use super::SimTiming;
use super::repo::Rendered;
use crate::domain::health::{Health, OperationPhase};
use crate::domain::{CommitSha, Digest, ImageRef};

/// Argo CD keeps this many history entries by default.
const HISTORY_LIMIT: usize = 10;

pub(crate) fn after(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

pub(crate) fn since(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

#[derive(Debug, Clone)]
pub(crate) struct LiveContainer {
    pub container: String,
    pub image: ImageRef,
    /// What the tag resolved to when the pods were created; `None` when the
    /// registry does not know it (the pull fails).
    pub digest: Option<Digest>,
}

/// One rolled-out ReplicaSet.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub rendered: Rendered,
    pub applied_at: Timestamp,
    pub containers: Vec<LiveContainer>,
    /// The Deployment revision (`Rev:N`).
    pub rs_revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Initiator {
    Automated,
    User(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub rendered: Rendered,
    pub started_at: Timestamp,
    pub phase: OperationPhase,
    pub finished_at: Option<Timestamp>,
    pub message: String,
    pub initiated_by: Initiator,
}

#[derive(Debug, Clone)]
pub(crate) struct HistoryRow {
    pub id: u64,
    pub revision: CommitSha,
    pub started_at: Timestamp,
    pub deployed_at: Timestamp,
    pub initiated_by: Initiator,
}

#[derive(Debug)]
pub(crate) struct AppModel {
    pub name: String,
    /// The Application's namespace.
    pub namespace: String,
    /// Where its pods run.
    pub destination: String,
    pub paths: Vec<String>,
    pub globs: GlobSet,
    pub pin_rules: crate::manifest::PinRules,
    pub desired: Option<Rendered>,
    pub live: Option<Live>,
    pub previous: Option<Live>,
    pub operation: Option<Op>,
    pub history: Vec<HistoryRow>,
    /// Auto-sync tries each revision once (as Argo CD does).
    pub last_attempted: Option<CommitSha>,
    pub reconciled_at: Timestamp,
    /// Operations never finish (a sync stuck retrying) until terminated.
    pub hold: bool,
    pub created_at: Timestamp,
}

/// The state of the pods of one ReplicaSet at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PodPhase {
    /// Containers starting (good images, rollout time not over).
    Starting,
    Ready {
        since: Timestamp,
    },
    CrashLoop {
        restarts: u32,
    },
    /// `ErrImagePull` / `ImagePullBackOff`.
    PullError {
        reason: &'static str,
    },
}

pub(crate) fn resolve(image: &ImageRef, registry: &HashMap<String, Digest>) -> Option<Digest> {
    if let Some(d) = image.digest() {
        return Some(d.clone());
    }
    let tag = image.effective_tag()?;
    registry
        .get(&format!("{}:{tag}", image.name()))
        .or_else(|| registry.get(&format!("{}:{tag}", image.normalized_name())))
        .cloned()
}

pub(crate) fn pod_phase(
    live: &Live,
    now: Timestamp,
    timing: &SimTiming,
    bad: &HashSet<Digest>,
) -> PodPhase {
    let elapsed = since(now, live.applied_at);
    let ticks = u32::try_from(elapsed.as_millis() / timing.crash_interval.as_millis().max(1))
        .unwrap_or(u32::MAX);
    if live.containers.iter().any(|c| c.digest.is_none()) {
        let reason = if ticks % 2 == 0 {
            "ErrImagePull"
        } else {
            "ImagePullBackOff"
        };
        return PodPhase::PullError { reason };
    }
    if live
        .containers
        .iter()
        .any(|c| c.digest.as_ref().is_some_and(|d| bad.contains(d)))
    {
        return PodPhase::CrashLoop {
            restarts: ticks.saturating_add(1),
        };
    }
    if elapsed < timing.rollout_time {
        PodPhase::Starting
    } else {
        PodPhase::Ready {
            since: after(live.applied_at, timing.rollout_time),
        }
    }
}

/// App health and its message, from the live ReplicaSet (gitops-engine's
/// Deployment health texts).
pub(crate) fn health(
    app: &AppModel,
    now: Timestamp,
    timing: &SimTiming,
    replicas: u32,
    bad: &HashSet<Digest>,
) -> (Health, Option<String>) {
    let Some(live) = &app.live else {
        return (Health::Missing, None);
    };
    match pod_phase(live, now, timing, bad) {
        PodPhase::Ready { .. } => (Health::Healthy, None),
        _ if since(now, live.applied_at) < timing.progress_deadline => (
            Health::Progressing,
            Some(format!(
                "Waiting for rollout to finish: 0 of {replicas} updated replicas are available..."
            )),
        ),
        _ => (
            Health::Degraded,
            Some(format!(
                "Deployment \"{}\" exceeded its progress deadline",
                app.name
            )),
        ),
    }
}

impl AppModel {
    pub fn deployed(&self) -> Option<&CommitSha> {
        self.history.last().map(|h| &h.revision)
    }

    pub fn synced(&self) -> bool {
        match (&self.desired, &self.live) {
            (None, _) => true,
            (Some(d), Some(l)) => d.content_hash == l.rendered.content_hash,
            (Some(_), None) => false,
        }
    }

    pub fn running(&self) -> bool {
        self.operation.as_ref().is_some_and(|o| {
            matches!(
                o.phase,
                OperationPhase::Running | OperationPhase::Terminating
            )
        })
    }

    pub fn start(&mut self, rendered: Rendered, now: Timestamp, by: Initiator) {
        self.last_attempted = Some(rendered.revision.clone());
        self.operation = Some(Op {
            rendered,
            started_at: now,
            phase: OperationPhase::Running,
            finished_at: None,
            message: "waiting for completion of hook and sync".to_owned(),
            initiated_by: by,
        });
    }

    pub fn terminate(&mut self, now: Timestamp) -> bool {
        match &mut self.operation {
            Some(op) if op.phase == OperationPhase::Running => {
                op.phase = OperationPhase::Failed;
                op.finished_at = Some(now);
                op.message = "Operation terminated".to_owned();
                true
            }
            _ => false,
        }
    }

    /// Moves the app forward to `now`: finishes a due operation, then
    /// auto-syncs a new desired revision.
    pub fn advance(
        &mut self,
        now: Timestamp,
        timing: &SimTiming,
        registry: &HashMap<String, Digest>,
    ) {
        let due = self.operation.as_ref().and_then(|op| {
            let done = after(op.started_at, timing.sync_duration);
            (op.phase == OperationPhase::Running && !self.hold && done <= now).then_some(done)
        });
        if let (Some(done), Some(op)) = (due, self.operation.clone()) {
            self.apply(&op, done, registry);
            if let Some(op) = &mut self.operation {
                op.phase = OperationPhase::Succeeded;
                op.finished_at = Some(done);
                op.message = "successfully synced (all tasks run)".to_owned();
            }
        }
        if self.running() {
            return;
        }
        // The controller reconciles every app periodically (Argo CD: the
        // resync period); that is what makes health after a sync fresh.
        if since(now, self.reconciled_at) >= timing.poll_interval {
            self.reconciled_at = now;
        }
        if let Some(d) = &self.desired
            && !self.synced()
            && self.last_attempted.as_ref() != Some(&d.revision)
        {
            let d = d.clone();
            self.start(d, now, Initiator::Automated);
        }
    }

    fn apply(&mut self, op: &Op, at: Timestamp, registry: &HashMap<String, Digest>) {
        let same = self
            .live
            .as_ref()
            .is_some_and(|l| l.rendered.content_hash == op.rendered.content_hash);
        if same {
            if let Some(l) = &mut self.live {
                l.rendered = op.rendered.clone();
            }
        } else {
            let rs_revision = self.live.as_ref().map_or(1, |l| l.rs_revision + 1);
            let containers = op
                .rendered
                .containers
                .iter()
                .map(|(container, image)| LiveContainer {
                    container: container.clone(),
                    image: image.clone(),
                    digest: resolve(image, registry),
                })
                .collect();
            self.previous = self.live.take();
            self.live = Some(Live {
                rendered: op.rendered.clone(),
                applied_at: at,
                containers,
                rs_revision,
            });
        }
        let id = self.history.last().map_or(1, |h| h.id + 1);
        self.history.push(HistoryRow {
            id,
            revision: op.rendered.revision.clone(),
            started_at: op.started_at,
            deployed_at: at,
            initiated_by: op.initiated_by.clone(),
        });
        if self.history.len() > HISTORY_LIMIT {
            self.history.remove(0);
        }
        // Argo CD reconciles the app right after an operation ends; health
        // read before that is stale, and clients check for it.
        self.reconciled_at = after(at, Duration::from_millis(1));
    }
}
