//! What revertbot observes about a deployed app, in controller-neutral terms.
//! Argo CD, Flux and the simulated controller all convert their API objects
//! into these types at their edge; `policy` judges only these.

use serde::{Deserialize, Serialize};

use crate::domain::{AppName, CommitSha, Digest};

/// Controller-reported health, in Argo CD's vocabulary (Flux maps onto it).
/// Ordered from best to worst, as Argo CD aggregates child health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Suspended,
    Progressing,
    Missing,
    Degraded,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationPhase {
    Running,
    Terminating,
    Succeeded,
    Failed,
    Error,
}

/// The controller's current or last sync operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub phase: OperationPhase,
    /// The revision the operation syncs (or synced) to.
    pub revision: Option<CommitSha>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    pub message: String,
    /// How many times the controller retried it.
    pub retry_count: u32,
}

/// A running container's image: as written in the pod spec, and the
/// immutable digest the node actually pulled, when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveImage {
    pub container: String,
    /// The image string of the pod spec (`ghcr.io/acme/app:v1`).
    pub image: String,
    /// From `containerStatuses[].imageID`, when it is a repo digest.
    pub digest: Option<Digest>,
}

/// Why a container is not running, as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub container: String,
    /// `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, …
    pub reason: String,
}

/// One pod of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodState {
    pub name: String,
    pub namespace: String,
    pub created_at: Option<jiff::Timestamp>,
    pub ready: bool,
    /// When the `Ready` condition last changed (to its current value).
    pub ready_since: Option<jiff::Timestamp>,
    pub waiting: Vec<Waiting>,
    pub restart_count: u32,
    pub images: Vec<LiveImage>,
    /// True when the pod belongs to the newest revision of its workload (the
    /// newest ReplicaSet / controller revision): old pods of a rollout in
    /// progress are not held against the new revision.
    pub current: bool,
}

/// One entry of the controller's deploy history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub revision: CommitSha,
    pub deployed_at: Option<jiff::Timestamp>,
}

/// The controller cannot apply a revision git holds (Flux: the build or the
/// apply of `attempted` failed) and keeps running what it applied before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyFailure {
    /// The revision the controller tried and failed to apply.
    pub attempted: CommitSha,
    /// What the cluster still runs, when known.
    pub applied: Option<CommitSha>,
    /// The controller's reason (`ReconciliationFailed`, `BuildFailed`, …).
    pub reason: String,
    /// The controller's message, first line, bounded.
    pub message: String,
}

/// Everything revertbot knows about one app at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub app: AppName,
    /// Which controller object this is, for messages (`argocd:guestbook`,
    /// `flux:Kustomization/flux-system/guestbook`).
    pub source: String,
    /// The revision the cluster runs: the controller applied it (not merely
    /// compared it), even if its health checks have not passed yet (Flux
    /// `wait: true`). The culprit search ends here.
    pub deployed: Option<CommitSha>,
    /// The revision the controller compared git against (may be ahead of
    /// `deployed` while OutOfSync).
    pub target: Option<CommitSha>,
    pub health: Health,
    pub health_message: Option<String>,
    pub sync: SyncStatus,
    pub operation: Option<Operation>,
    /// When the controller last reconciled the app; health older than the
    /// last operation's end is stale.
    pub reconciled_at: Option<jiff::Timestamp>,
    pub history: Vec<Deployed>,
    /// Pods of the app, when fetched (empty when not asked for).
    pub pods: Vec<PodState>,
    /// Set when the controller reports it cannot apply `target`; then
    /// `deployed` names that revision (what a revert must undo), and the
    /// cluster still runs `apply_failure.applied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_failure: Option<ApplyFailure>,
}

impl Observation {
    /// What a manual revert knows without asking a controller: the
    /// revision someone says is deployed, nothing about its health.
    pub fn requested(app: AppName, deployed: CommitSha) -> Self {
        Self {
            app,
            source: "manual".to_owned(),
            deployed: Some(deployed.clone()),
            target: Some(deployed),
            health: Health::Unknown,
            health_message: None,
            sync: SyncStatus::Unknown,
            operation: None,
            reconciled_at: None,
            history: Vec::new(),
            pods: Vec::new(),
            apply_failure: None,
        }
    }

    /// When the deployed revision was applied, from the history.
    pub fn deployed_at(&self) -> Option<jiff::Timestamp> {
        let deployed = self.deployed.as_ref()?;
        self.history
            .iter()
            .rev()
            .find(|h| &h.revision == deployed)
            .and_then(|h| h.deployed_at)
    }

    /// Live image digests of the current pods, deduplicated by image string.
    pub fn live_digests(&self) -> Vec<(String, Digest)> {
        let mut out: Vec<(String, Digest)> = Vec::new();
        for pod in self.pods.iter().filter(|p| p.current) {
            for image in &pod.images {
                if let Some(digest) = &image.digest
                    && !out.iter().any(|(i, _)| i == &image.image)
                {
                    out.push((image.image.clone(), digest.clone()));
                }
            }
        }
        out
    }
}
