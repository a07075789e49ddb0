//! After a revert pull request: with `pr-automerge`, wait (within the
//! app's `wait.timeout`) for GitHub to merge it once its checks pass, then
//! for the controller to report Healthy at it; with `pr`, people merge it
//! and a later check sees the app Healthy. Either way the pull request is
//! told, once, how it ended.

use std::time::{Duration, Instant};

use crate::commands::controllers::Any;
use crate::config::AppConfig;
use crate::controller::{AppRef, Controller};
use crate::forge::PrState;
use crate::report::AppReport;

use super::super::progress::Progress;
use super::super::pull_request::{Forge, branch_name};
use super::super::{Session, exit};
use super::act::confirm_healthy;

/// How often GitHub is asked whether the pull request merged.
const MERGE_POLL: Duration = Duration::from_secs(2);

/// The hidden line that makes the outcome comment findable, so a rerun
/// never posts it twice.
fn marker(incident: &str) -> String {
    format!("<!-- revertbot:outcome:{incident} -->")
}

/// Whether `check` follows this published pull request to Healthy: an
/// auto-merge that was turned on, outside `watch` (whose cycle must not
/// wait for a merge; the next cycle sees it).
pub(crate) fn should_follow(
    ctx: &super::RunContext,
    automerge: bool,
    code: u8,
    action: crate::report::Action,
) -> bool {
    use crate::report::Action;
    automerge
        && code == exit::OK
        && ctx.deferred.is_none()
        && matches!(action, Action::PrOpened | Action::PrUpdated)
}

pub(crate) async fn follow(
    session: &Session,
    forge: &Forge,
    app: &AppConfig,
    app_ref: &AppRef,
    controller: &Any<'_>,
    mut opened: AppReport,
    started: Instant,
) -> (AppReport, u8) {
    let Some(incident) = opened.incident.clone() else {
        return (opened, exit::OK);
    };
    let Some(deployed) = opened
        .deployed_revision
        .as_ref()
        .and_then(|d| d.parse().ok())
    else {
        return (opened, exit::OK);
    };
    let branch = branch_name(&session.app_name, &deployed);
    let github = forge.github();
    let pr = match github.find_pr(&branch).await {
        Ok(Some(pr)) => pr,
        Ok(None) => return (opened, exit::OK),
        Err(e) => {
            opened
                .warnings
                .push(format!("cannot follow the revert pull request: {e}"));
            return (opened, exit::ERROR);
        }
    };
    let deadline = Instant::now() + app.wait.timeout;
    let mut state = pr.state();
    let mut progress = Progress::detect();
    progress.start(&format!(
        "waiting for GitHub to merge revert pull request #{} (auto-merge, after its required checks)",
        pr.number
    ));
    while state == PrState::Open && Instant::now() < deadline {
        tokio::time::sleep(MERGE_POLL).await;
        state = match github.get_pr(pr.number).await {
            Ok(now) => now.state(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the revert pull request; asking again");
                PrState::Open
            }
        };
    }
    progress.finish(match state {
        PrState::Open => "not merged yet",
        PrState::Merged => "merged",
        PrState::Rejected => "closed without merging",
    });
    let (opened, code, comment) = match state {
        PrState::Open => {
            let timeout = crate::policy::fmt_duration(app.wait.timeout);
            opened.reason = format!(
                "{}; not merged within {timeout} (its required checks are still running or failing) — the controller deploys the revert once GitHub merges it",
                opened.reason
            );
            let comment = format!(
                "⏳ revertbot waited {timeout} for this revert to be merged; it is still open (required checks still running or failing?). Auto-merge stays on: once GitHub merges it, the controller deploys the revert."
            );
            (opened, exit::UNCONFIRMED, comment)
        }
        PrState::Rejected => {
            opened.reason = format!(
                "{}; the pull request was closed without merging — a person rejected this revert",
                opened.reason
            );
            return (opened, exit::OK);
        }
        PrState::Merged => {
            // The merge is on the remote branch now: fetch it so the wait
            // can tell the deployed revision contains the revert.
            if let Err(e) = session.repo.fetch_branch_and_notes(&session.remote) {
                tracing::warn!(error = %e, "cannot fetch the merged revert");
            }
            let (report, code) =
                confirm_healthy(session, app, app_ref, controller, opened, started).await;
            let head = report
                .revert_commit
                .as_deref()
                .and_then(|c| c.get(..12))
                .unwrap_or("")
                .to_owned();
            let comment = if report.healthy_confirmed {
                format!(
                    "✅ revertbot: after this revert was merged, {} reports `{}` Healthy at a revision containing `{head}`.",
                    controller.server(),
                    app.name
                )
            } else {
                format!(
                    "⚠️ revertbot: this revert was merged, but `{}` was not confirmed Healthy within {}. revertbot will not revert again; a person must look.",
                    app.name,
                    crate::policy::fmt_duration(app.wait.timeout)
                )
            };
            (report, code, comment)
        }
    };
    let body = format!("{comment}\n\n{}", marker(&incident));
    let mut opened = opened;
    if let Err(e) = github
        .comment_once(pr.number, &marker(&incident), &body)
        .await
    {
        opened
            .warnings
            .push(format!("cannot comment on the revert pull request: {e}"));
    }
    (opened, code)
}

/// A later check found the app Healthy at `revision` and recorded it: when
/// that revision contains the revert of the app's latest incident, and the
/// incident's revert pull request was merged, say so on it (once). Costs
/// GitHub calls only on the first last-known-good recorded after an
/// incident.
pub(crate) async fn announce_recovery(
    session: &Session,
    ctx: &super::RunContext,
    revision: &crate::domain::CommitSha,
    report: &mut AppReport,
) {
    let rules = super::policy_rules(&session.app);
    let by_pr = |m: crate::policy::Mode| {
        matches!(
            m,
            crate::policy::Mode::Pr | crate::policy::Mode::PrAutomerge
        )
    };
    if !by_pr(rules.critical) && !by_pr(rules.warning) {
        return;
    }
    let Some(incident) = incident_to_announce(
        ctx.ledger.incidents(&session.app_name),
        ctx.ledger.lkg_records(&session.app_name),
        revision,
        |revert| session.repo.is_ancestor(revert, revision).unwrap_or(false),
    ) else {
        return;
    };
    let Ok(forge) = ctx.forge(&session.config).await else {
        return;
    };
    let branch = branch_name(&session.app_name, &incident.deployed_revision);
    let github = forge.github();
    let pr = match github.find_pr(&branch).await {
        Ok(Some(pr)) if pr.state() == PrState::Merged => pr,
        Ok(_) => return,
        Err(e) => {
            report
                .warnings
                .push(format!("cannot look up the revert pull request: {e}"));
            return;
        }
    };
    let body = format!(
        "✅ revertbot: after this revert was merged, the controller reports `{}` Healthy at `{}` (recorded as last-known-good).\n\n{}",
        session.app_name,
        revision.short(),
        marker(&incident.id)
    );
    if let Err(e) = github
        .comment_once(pr.number, &marker(&incident.id), &body)
        .await
    {
        report
            .warnings
            .push(format!("cannot comment on the revert pull request: {e}"));
    }
}

/// The incident whose revert `revision` contains (the newest one), when
/// nothing was recorded healthy since it opened: only the first record after
/// an incident announces it, so later deploys that still contain the revert
/// cost GitHub nothing.
fn incident_to_announce<'a>(
    incidents: &'a [crate::domain::ledger::IncidentRecord],
    records: &[crate::domain::ledger::LkgRecord],
    revision: &crate::domain::CommitSha,
    contains: impl Fn(&crate::domain::CommitSha) -> bool,
) -> Option<&'a crate::domain::ledger::IncidentRecord> {
    let incident = incidents
        .iter()
        .filter(|i| &i.revert_commit == revision || contains(&i.revert_commit))
        .max_by_key(|i| i.opened_at)?;
    let recorded_since = records.iter().any(|r| r.recorded_at > incident.opened_at);
    (!recorded_since).then_some(incident)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{IncidentRecord, LkgRecord, RecordSource};
    use crate::domain::{AppName, CommitSha};

    fn sha(c: char) -> CommitSha {
        c.to_string().repeat(40).parse().unwrap()
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn incident(revert: char, opened: &str) -> IncidentRecord {
        IncidentRecord {
            id: format!("web-{}", sha('b').short()),
            app: AppName("web".into()),
            deployed_revision: sha('b'),
            last_known_good: Some(sha('a')),
            culprits: vec![sha('b')],
            revert_commit: sha(revert),
            bad_images: vec![],
            pinned_images: vec![],
            reason: "r".into(),
            opened_at: at(opened),
            approved_by: None,
            forced_guards: vec![],
        }
    }

    fn record(recorded: &str) -> LkgRecord {
        LkgRecord {
            app: AppName("web".into()),
            revision: sha('a'),
            images: vec![],
            source: RecordSource::Controller,
            recorded_at: at(recorded),
        }
    }

    #[test]
    fn only_the_first_record_after_the_incident_announces_it() {
        let incidents = [incident('c', "2026-12-03T10:00:00Z")];
        let before = [record("2026-12-03T09:00:00Z")];
        // The revert itself is deployed and recorded for the first time.
        assert!(incident_to_announce(&incidents, &before, &sha('c'), |_| false).is_some());
        // A later deploy containing the revert, after a record since.
        let since = [
            record("2026-12-03T09:00:00Z"),
            record("2026-12-03T10:30:00Z"),
        ];
        assert!(incident_to_announce(&incidents, &since, &sha('d'), |_| true).is_none());
        // A revision that does not contain the revert announces nothing.
        assert!(incident_to_announce(&incidents, &before, &sha('d'), |_| false).is_none());
    }
}
