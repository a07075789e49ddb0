//! `revertbot record --app A` without images: the app's live state,
//! recorded as last-known-good when the controller says it is good.

use crate::controller::Controller;
use crate::policy::{JudgeInput, judge};
use crate::report::{Action, AppReport, Report, Verdict as ReportVerdict};

use super::super::controllers::{Controllers, app_ref};
use super::super::{CommandError, Outcome, Result, Workspace, exit};
use super::facts::{self, cheap_facts};
use super::{RunContext, act, evidence_of, health_rules};

/// `revertbot record --app A` without images: record the app's current
/// state as last-known-good now, with digests from the manifests, the
/// running pods and the registry — only if the controller says it is
/// Healthy and Synced (and its health is fresh).
pub async fn record_now(ws: &Workspace, app: &str, controllers: &Controllers) -> Result<Outcome> {
    Ok(record_live(ws, app, controllers)
        .await?
        .warned(&ws.config_warnings))
}

async fn record_live(ws: &Workspace, app: &str, controllers: &Controllers) -> Result<Outcome> {
    let session = ws.session(app)?;
    let app_ref = app_ref(&session.app).ok_or_else(|| {
        CommandError::Usage(format!(
            "app `{app}` has no controller (argocd or flux) to read its state from — record by hand with --revision and --image"
        ))
    })?;
    let ctx = RunContext::prepare(ws, false).await?;
    let controller = controllers.get(&app_ref).map_err(CommandError::Usage)?;
    let mut obs = controller
        .observe(&app_ref, crate::controller::Detail::Summary)
        .await
        .map_err(CommandError::controller(
            "no record without an answer from the controller",
        ))?;
    obs.pods = controller
        .pods(&app_ref)
        .await
        .map_err(CommandError::controller("no record without the app's pods"))?;
    let mut report = AppReport::new(app);
    // A quarantined digest, running or pinned, is a breach: never recorded
    // as last-known-good.
    let (_, quarantine) = cheap_facts(&session, &ctx.ledger, obs.deployed.as_ref(), None);
    let manifest_digests = match &obs.deployed {
        Some(d) if !quarantine.is_empty() => facts::pinned_digests(&session, d),
        _ => Vec::new(),
    };
    let verdict = judge(&JudgeInput {
        observed: Ok(&obs),
        now: jiff::Timestamp::now(),
        rules: &health_rules(&session.app),
        quarantine: &quarantine,
        manifest_digests: &manifest_digests,
        signals: &[],
    });
    report.signals = evidence_of(&verdict);
    let Some(revision) = obs
        .deployed
        .clone()
        .filter(|_| verdict.as_str() == "healthy")
    else {
        report.verdict = if verdict.is_breach() {
            ReportVerdict::Breach
        } else {
            ReportVerdict::Unknown
        };
        report.action = Action::Blocked;
        report.reason = format!("not recorded: {app} is not Healthy and Synced ({verdict})");
        return Ok(Outcome {
            report: Report::single(report),
            exit_code: exit::BLOCKED,
        });
    };
    report.verdict = ReportVerdict::Healthy;
    let record = crate::domain::ledger::LkgRecord {
        app: session.app_name.clone(),
        revision,
        images: Vec::new(),
        source: crate::domain::ledger::RecordSource::Controller,
        recorded_at: jiff::Timestamp::now(),
    };
    let (report, exit_code) = act::record_lkg(&session, &ctx, Some(&obs), record, report).await?;
    Ok(Outcome {
        report: Report::single(report),
        exit_code,
    })
}
