//! The parts of Argo CD's JSON that revertbot reads, and their conversion
//! into [`crate::domain::health`] types. Every field is optional on the
//! wire (Go's `omitempty`, field projection on lists), so everything here
//! defaults; what is required is checked in the conversion, which says
//! what was missing.

use serde::{Deserialize, Deserializer};

use crate::controller::AppRef;
use crate::domain::health::{Deployed, Health, Observation, Operation, OperationPhase, SyncStatus};
use crate::domain::{AppName, CommitSha};

/// `null` and absent both become the default (Go encodes nil slices and
/// maps as `null` in some places).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ApplicationList {
    #[serde(deserialize_with = "nullable")]
    pub items: Vec<Application>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Application {
    #[serde(deserialize_with = "nullable")]
    pub metadata: Metadata,
    #[serde(deserialize_with = "nullable")]
    pub spec: Spec,
    #[serde(deserialize_with = "nullable")]
    pub status: Status,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Metadata {
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Spec {
    pub source: Option<Source>,
    #[serde(deserialize_with = "nullable")]
    pub sources: Vec<Source>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Source {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub chart: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Status {
    #[serde(deserialize_with = "nullable")]
    pub health: HealthState,
    #[serde(deserialize_with = "nullable")]
    pub sync: SyncState,
    pub operation_state: Option<OperationState>,
    pub reconciled_at: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HealthState {
    pub status: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SyncState {
    pub status: Option<String>,
    pub revision: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub revisions: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OperationState {
    pub operation: Option<OperationSpec>,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub retry_count: Option<i64>,
    pub sync_result: Option<SyncResult>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct OperationSpec {
    pub sync: Option<Revisions>,
}

/// `operation.sync` and `syncResult`: a revision or per-source revisions.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Revisions {
    pub revision: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub revisions: Vec<String>,
}

pub(crate) type SyncResult = Revisions;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct HistoryEntry {
    pub revision: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub revisions: Vec<String>,
    pub deployed_at: Option<String>,
}

/// Argo CD's error body (grpc-gateway runtime error).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub error: Option<String>,
    pub code: Option<i64>,
    pub message: Option<String>,
}

impl ErrorBody {
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or(self.error.as_deref())
            .filter(|m| !m.is_empty())
    }
}

/// gRPC status codes that Argo CD's errors carry.
pub(crate) mod code {
    pub const INVALID_ARGUMENT: i64 = 3;
    pub const NOT_FOUND: i64 = 5;
    pub const FAILED_PRECONDITION: i64 = 9;
}

impl Application {
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    /// Multi-source apps have `spec.sources` and empty singular fields.
    pub fn is_multi_source(&self) -> bool {
        !self.spec.sources.is_empty()
    }

    /// Index of the git source in `spec.sources` (whose slot of every
    /// `revisions` list holds a commit): the first source that is not a Helm
    /// chart and, preferably, whose known revisions are commit ids.
    /// `None` for single-source apps.
    pub fn git_slot(&self) -> Option<usize> {
        if !self.is_multi_source() {
            return None;
        }
        let non_chart: Vec<usize> = (0..self.spec.sources.len())
            .filter(|&i| self.spec.sources[i].chart.is_none())
            .collect();
        let holds_sha = |i: usize| {
            let lists = [
                Some(&self.status.sync.revisions),
                self.status.history.last().map(|h| &h.revisions),
                self.status
                    .operation_state
                    .as_ref()
                    .and_then(|o| o.sync_result.as_ref())
                    .map(|r| &r.revisions),
            ];
            lists
                .into_iter()
                .flatten()
                .any(|l| l.get(i).is_some_and(|r| r.parse::<CommitSha>().is_ok()))
        };
        non_chart
            .iter()
            .copied()
            .find(|&i| holds_sha(i))
            .or(non_chart.first().copied())
    }
}

/// The commit of a singular/plural revision pair, for the git slot.
fn pick(single: Option<&str>, plural: &[String], slot: Option<usize>) -> Option<CommitSha> {
    let raw = match slot {
        None => single?,
        Some(i) => plural.get(i)?.as_str(),
    };
    raw.parse().ok()
}

fn timestamp(field: &str, raw: Option<&str>) -> Result<Option<jiff::Timestamp>, String> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| format!("`{field}` is not an RFC 3339 time ({s:?}): {e}")),
    }
}

/// Argo CD health codes (gitops-engine `health.HealthStatusCode`).
pub(crate) fn health(code: &str) -> Option<Health> {
    Some(match code {
        "Healthy" => Health::Healthy,
        "Progressing" => Health::Progressing,
        "Degraded" => Health::Degraded,
        "Suspended" => Health::Suspended,
        "Missing" => Health::Missing,
        "Unknown" => Health::Unknown,
        _ => return None,
    })
}

/// Argo CD sync codes (`SyncStatusCode`).
pub(crate) fn sync_status(code: &str) -> Option<SyncStatus> {
    Some(match code {
        "Synced" => SyncStatus::Synced,
        "OutOfSync" => SyncStatus::OutOfSync,
        "Unknown" => SyncStatus::Unknown,
        _ => return None,
    })
}

/// gitops-engine `OperationPhase`.
pub(crate) fn operation_phase(code: &str) -> Option<OperationPhase> {
    Some(match code {
        "Running" => OperationPhase::Running,
        "Terminating" => OperationPhase::Terminating,
        "Succeeded" => OperationPhase::Succeeded,
        "Failed" => OperationPhase::Failed,
        "Error" => OperationPhase::Error,
        _ => return None,
    })
}

/// How the deployed revision of an [`Observation`] was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// A full Application: the applied revision from `syncResult`/`history`.
    Full,
    /// A projected list item: neither is selectable, so `deployed` is left
    /// empty (callers fill it in or fetch the app in full).
    Projected,
}

/// Converts an Application into an [`Observation`]. `Err` says what is
/// wrong with the object (the caller wraps it as `Malformed`).
pub(crate) fn observation(
    app: &AppRef,
    a: &Application,
    basis: Basis,
) -> Result<Observation, String> {
    let slot = a.git_slot();
    if a.is_multi_source() && slot.is_none() {
        return Err(
            "the multi-source Application has no git source (every source is a Helm chart)"
                .to_owned(),
        );
    }
    let st = &a.status;

    let (health, health_message) = match st.health.status.as_deref() {
        None | Some("") => (
            Health::Unknown,
            Some("Argo CD reported no health for the app".to_owned()),
        ),
        Some(code) => match health(code) {
            Some(h) => (h, st.health.message.clone().filter(|m| !m.is_empty())),
            None => (
                Health::Unknown,
                Some(format!("unrecognised Argo CD health status `{code}`")),
            ),
        },
    };
    let sync = match st.sync.status.as_deref() {
        None | Some("") => SyncStatus::Unknown,
        Some(code) => sync_status(code)
            .ok_or_else(|| format!("unrecognised sync status `{code}` in status.sync.status"))?,
    };
    let target = pick(st.sync.revision.as_deref(), &st.sync.revisions, slot);

    let operation = match &st.operation_state {
        None => None,
        Some(op) => Some(operation(op, slot)?),
    };

    let mut history = Vec::with_capacity(st.history.len());
    for h in &st.history {
        // Entries of other kinds of sources (a chart version) are not commits.
        if let Some(revision) = pick(h.revision.as_deref(), &h.revisions, slot) {
            history.push(Deployed {
                revision,
                deployed_at: timestamp("status.history[].deployedAt", h.deployed_at.as_deref())?,
            });
        }
    }

    let deployed = match basis {
        Basis::Projected => None,
        Basis::Full => applied_revision(st, slot),
    };

    Ok(Observation {
        app: AppName(app.app().to_owned()),
        source: app.describe(),
        deployed,
        target,
        health,
        health_message,
        sync,
        operation,
        reconciled_at: timestamp("status.reconciledAt", st.reconciled_at.as_deref())?,
        history,
        pods: Vec::new(),
        apply_failure: None,
    })
}

/// The revision Argo CD last applied: the result of a succeeded sync, else
/// the newest history entry (history only grows on successful syncs). A
/// running or failed operation's revision is the operation's, not deployed.
fn applied_revision(st: &Status, slot: Option<usize>) -> Option<CommitSha> {
    let from_result = st
        .operation_state
        .as_ref()
        .filter(|op| op.phase.as_deref() == Some("Succeeded"))
        .and_then(|op| op.sync_result.as_ref())
        .and_then(|r| pick(r.revision.as_deref(), &r.revisions, slot));
    from_result.or_else(|| {
        st.history
            .last()
            .and_then(|h| pick(h.revision.as_deref(), &h.revisions, slot))
    })
}

fn operation(op: &OperationState, slot: Option<usize>) -> Result<Operation, String> {
    let phase = match op.phase.as_deref() {
        None | Some("") => {
            return Err("status.operationState has no phase".to_owned());
        }
        Some(code) => operation_phase(code).ok_or_else(|| {
            format!("unrecognised operation phase `{code}` in status.operationState.phase")
        })?,
    };
    let revision = op
        .operation
        .as_ref()
        .and_then(|o| o.sync.as_ref())
        .and_then(|s| pick(s.revision.as_deref(), &s.revisions, slot))
        .or_else(|| {
            op.sync_result
                .as_ref()
                .and_then(|r| pick(r.revision.as_deref(), &r.revisions, slot))
        });
    Ok(Operation {
        phase,
        revision,
        started_at: timestamp("status.operationState.startedAt", op.started_at.as_deref())?,
        finished_at: timestamp(
            "status.operationState.finishedAt",
            op.finished_at.as_deref(),
        )?,
        message: op.message.clone().unwrap_or_default(),
        retry_count: op
            .retry_count
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
    })
}
