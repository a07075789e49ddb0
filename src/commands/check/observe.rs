//! What to read from the controller for one app this cycle: the list
//! summary, the full app, its pods — each only when it can change the
//! verdict.

use crate::controller::ControllerError;
use crate::domain::health::{Health, Observation, SyncStatus};
use crate::policy::{Unavailable, UnavailableKind};

use super::RunContext;

/// A list summary cannot say when the controller last reconciled (Argo CD
/// does not project `reconciledAt`), so after a sync its health may be
/// stale. Read the full app when that matters; a healthy app whose revision
/// is already recorded needs nothing more.
pub(super) fn needs_full_observation(
    summary: &Observation,
    ctx: &RunContext,
    session: &super::super::Session,
) -> bool {
    let finished_sync = summary
        .operation
        .as_ref()
        .is_some_and(|op| op.finished_at.is_some());
    if summary.reconciled_at.is_some() || !finished_sync {
        return false;
    }
    !is_recorded_healthy(summary, ctx, session)
}

/// Healthy, synced, and its deployed revision already recorded as
/// last-known-good: nothing to learn from its pods this cycle.
pub(super) fn is_recorded_healthy(
    obs: &Observation,
    ctx: &RunContext,
    session: &super::super::Session,
) -> bool {
    obs.health == Health::Healthy
        && obs.sync == SyncStatus::Synced
        && obs.deployed.as_ref().is_some_and(|d| {
            ctx.ledger
                .lkg_records(&session.app_name)
                .iter()
                .any(|r| &r.revision == d)
        })
}

/// Argo CD reconciles every app at least once per reconciliation period
/// (`timeout.reconciliation`, 180 s by default) and its list cannot project
/// `reconciledAt`: once the last sync ended longer ago than that, the
/// listed health was computed after it.
const RECONCILIATION_PERIOD: std::time::Duration = std::time::Duration::from_secs(180);

pub(super) fn assume_reconciled_since_sync(obs: &mut Observation, now: jiff::Timestamp) {
    if obs.reconciled_at.is_some() {
        return;
    }
    let Some(finished) = obs.operation.as_ref().and_then(|op| op.finished_at) else {
        return;
    };
    let Ok(period) = jiff::SignedDuration::try_from(RECONCILIATION_PERIOD) else {
        return;
    };
    if let Ok(reconciled) = finished.checked_add(period)
        && reconciled <= now
    {
        obs.reconciled_at = Some(reconciled);
    }
}

/// Pods are read only when they matter: to catch a failing rollout early,
/// to explain a breach, or to learn the digests of a healthy revision that
/// is not recorded yet.
pub(super) fn needs_pods(obs: &Observation) -> bool {
    matches!(obs.health, Health::Progressing | Health::Degraded)
        || (obs.health == Health::Healthy && obs.sync == SyncStatus::Synced)
}

pub(super) fn unavailable(e: &ControllerError) -> Unavailable {
    Unavailable {
        kind: match e {
            ControllerError::NotFound { .. } => UnavailableKind::NotFound,
            ControllerError::Malformed { .. } => UnavailableKind::Malformed,
            _ => UnavailableKind::Unreachable,
        },
        detail: e.to_string(),
    }
}
