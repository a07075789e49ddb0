//! Carrying out a decision: record the last-known-good, or revert, publish
//! and wait for Healthy, or say why nothing happens.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::AppConfig;
use crate::controller::{AppRef, Controller};
use crate::domain::health::Observation;
use crate::domain::ledger::{LkgRecord, NoteDoc, RecordSource, RecordedImage};
use crate::policy::{Decision, RevertMode};
use crate::report::{Action, AppReport, PinnedImage};

use super::super::controllers::Any;
use super::super::lkg::{pick_digests, record_source};
use super::super::locate::Request;
use super::super::progress::Progress;
use super::super::pull_request;
use super::super::revert::{Mode, RevertArgs, execute};
use super::super::wait::{WaitOutcome, WaitTarget, wait_healthy};
use super::super::{Result, Session, exit};
use super::facts::manifest_images;
use super::{RunContext, elapsed_ms};

/// How often the wait polls the controller.
const POLL: Duration = Duration::from_secs(2);

/// A revert `watch` pushed and has still to see confirmed Healthy: what
/// the wait needs, owned, so it outlives the cycle that pushed it.
pub struct PendingConfirm {
    session: Rc<Session>,
    app_ref: AppRef,
    reverted: AppReport,
    started: Instant,
}

impl PendingConfirm {
    pub fn app(&self) -> &str {
        &self.session.app.name
    }

    /// The report of the push, as the cycle printed it.
    pub fn pushed(&self) -> &AppReport {
        &self.reverted
    }

    /// Waits for Healthy, as `check` does inline: the final report of this
    /// revert and its exit code.
    pub async fn confirm(
        self,
        controllers: &super::super::controllers::Controllers,
    ) -> (AppReport, u8) {
        let controller = match controllers.get(&self.app_ref) {
            Ok(c) => c,
            Err(e) => {
                let mut report = self.reverted;
                report.reason = format!("{}; cannot confirm Healthy: {e}", report.reason);
                return (report, exit::ERROR);
            }
        };
        let span = tracing::info_span!("confirm", app = %self.session.app.name, incident = self.reverted.incident.as_deref().unwrap_or(""));
        tracing::Instrument::instrument(
            confirm_healthy(
                &self.session,
                &self.session.app,
                &self.app_ref,
                &controller,
                self.reverted,
                self.started,
            ),
            span,
        )
        .await
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn act(
    session: &Rc<Session>,
    ctx: &RunContext,
    app: &AppConfig,
    app_ref: &AppRef,
    controller: &Any<'_>,
    observation: Option<&Observation>,
    decision: Decision,
    mut report: AppReport,
) -> Result<(AppReport, u8)> {
    match decision {
        Decision::Nothing { reason } => {
            report.reason = reason;
            Ok((report, exit::OK))
        }
        Decision::Hold { reason, .. } => {
            report.action = Action::Blocked;
            report.reason = reason;
            Ok((report, exit::BLOCKED))
        }
        Decision::RequestApproval(intent) => {
            report.action = Action::Blocked;
            report.incident = Some(intent.incident.clone());
            report.reason = format!(
                "{} — policy asks for approval first, and approvals (Slack, PR comments) are not set up in this version: revert by hand with `revertbot revert --app {}` if you agree",
                intent.reason(),
                app.name
            );
            Ok((report, exit::BLOCKED))
        }
        Decision::RecordLastKnownGood(record) => {
            let revision = record.revision.clone();
            let (mut report, code) = record_lkg(session, ctx, observation, record, report).await?;
            if report.action == Action::Recorded {
                super::automerge::announce_recovery(session, ctx, &revision, &mut report).await;
            }
            Ok((report, code))
        }
        Decision::Revert(approved) => {
            let intent = approved.get();
            report.incident = Some(intent.incident.clone());
            let by_pr = intent.mode != RevertMode::Push;
            if ctx.dry_run {
                report.action = Action::DryRun;
                report.reason = if by_pr {
                    format!("would open a revert pull request: {}", intent.reason())
                } else {
                    format!("would revert: {}", intent.reason())
                };
                return Ok((report, exit::OK));
            }
            let started = Instant::now();
            let args = RevertArgs {
                app: app.name.clone(),
                request: Request {
                    deployed: Some(intent.deployed.to_string()),
                    lkg: Some(intent.last_known_good.to_string()),
                    commits: Vec::new(),
                },
                mode: if by_pr { Mode::Pr } else { Mode::Push },
                reason: Some(intent.reason()),
                observed_images: intent.bad_images.clone(),
                force_guards: false,
            };
            if by_pr {
                let forge = match ctx.forge(&session.config).await {
                    Ok(forge) => forge,
                    Err(why) => {
                        report.action = Action::Blocked;
                        report.reason = format!(
                            "{} — policy says publish by pull request, and {why}",
                            intent.reason()
                        );
                        return Ok((report, exit::BLOCKED));
                    }
                };
                let outcome =
                    pull_request::execute(session, &forge, &approved, &args, None, started).await?;
                let Some(mut opened) = outcome.report.apps.into_iter().next() else {
                    return Ok((report, exit::ERROR));
                };
                opened.verdict = report.verdict;
                opened.signals = report.signals;
                let follow = super::automerge::should_follow(
                    ctx,
                    intent.mode == RevertMode::PrAutomerge,
                    outcome.exit_code,
                    opened.action,
                );
                if follow {
                    return Ok(super::automerge::follow(
                        session, &forge, app, app_ref, controller, opened, started,
                    )
                    .await);
                }
                return Ok((opened, outcome.exit_code));
            }
            let outcome = execute(session, &approved, &args, None, started)?;
            let Some(mut reverted) = outcome.report.apps.into_iter().next() else {
                return Ok((report, exit::ERROR));
            };
            reverted.verdict = report.verdict;
            reverted.signals = report.signals;
            if reverted.action != Action::Pushed {
                return Ok((reverted, outcome.exit_code));
            }
            // `watch` confirms outside the cycle: the next cycles (other
            // apps' breaches) do not wait for this one.
            if let Some(deferred) = &ctx.deferred {
                deferred.push(PendingConfirm {
                    session: Rc::clone(session),
                    app_ref: app_ref.clone(),
                    reverted: reverted.clone(),
                    started,
                });
                reverted.reason = format!("{}; waiting for Healthy", reverted.reason);
                return Ok((reverted, exit::OK));
            }
            Ok(confirm_healthy(session, app, app_ref, controller, reverted, started).await)
        }
    }
}

/// After a pushed revert: asks the controller to refresh and waits until it
/// reports the app Healthy at the revert (or a descendant), or the app's
/// wait timeout passes (exit 3, escalated once; never reverted again).
pub(crate) async fn confirm_healthy(
    session: &Session,
    app: &AppConfig,
    app_ref: &AppRef,
    controller: &Any<'_>,
    mut reverted: AppReport,
    started: Instant,
) -> (AppReport, u8) {
    let Some(revert) = reverted
        .revert_commit
        .as_ref()
        .and_then(|c| c.parse::<crate::domain::CommitSha>().ok())
    else {
        return (reverted, exit::ERROR);
    };
    let repo = &session.repo;
    let contains =
        |deployed: &crate::domain::CommitSha| repo.is_ancestor(&revert, deployed).unwrap_or(false);
    let mut progress = Progress::detect();
    let (waited, steps) = wait_healthy(
        controller,
        app_ref,
        &WaitTarget {
            revert: revert.clone(),
            timeout: app.wait.timeout,
            poll: POLL,
        },
        contains,
        &mut progress,
    )
    .await;
    reverted
        .timings_ms
        .insert("revert_to_healthy".to_owned(), elapsed_ms(started));
    match waited {
        WaitOutcome::Healthy { .. } => {
            reverted.healthy_confirmed = true;
            reverted.reason = format!(
                "{}; {} is Healthy at {}",
                reverted.reason,
                controller.server(),
                revert.short()
            );
            (reverted, exit::OK)
        }
        WaitOutcome::TimedOut { missing, .. } => {
            // Escalate once; never revert again from here.
            tracing::error!(
                app = %app.name,
                revert = %revert.short(),
                refreshed = steps.refreshed,
                "the revert did not bring the app back to Healthy within {:?}: {missing}",
                app.wait.timeout
            );
            reverted.reason = format!(
                "{}; not Healthy within {:?}: {missing} — look at the app; revertbot will not revert again",
                reverted.reason, app.wait.timeout
            );
            (reverted, exit::UNCONFIRMED)
        }
    }
}

/// Records the healthy revision with digests from (in order) the manifests,
/// the running pods, and the registry. Nothing is written unless every image
/// has a digest.
pub(crate) async fn record_lkg(
    session: &Session,
    ctx: &RunContext,
    observation: Option<&Observation>,
    record: LkgRecord,
    mut report: AppReport,
) -> Result<(AppReport, u8)> {
    let images = manifest_images(session, &record.revision)?;
    let live = observation
        .map(Observation::live_digests)
        .unwrap_or_default();
    let pick = pick_digests(&images, &live);
    let mut resolved = pick.resolved;
    let mut missing = Vec::new();
    for image in pick.unresolved {
        let name = image
            .original()
            .split('@')
            .next()
            .unwrap_or(image.original())
            .to_owned();
        match &ctx.registry {
            Some(registry) => match registry.resolve(&image).await {
                Ok(digest) => resolved.push((
                    RecordedImage {
                        image: name,
                        digest,
                    },
                    RecordSource::Registry,
                )),
                Err(e) => missing.push(format!("{name} ({e})")),
            },
            None => missing.push(format!("{name} (no registry client)")),
        }
    }
    report.deployed_revision = Some(record.revision.to_string());
    if !missing.is_empty() {
        report.reason = format!(
            "healthy, but not recorded as last-known-good: no digest for {}",
            missing.join(", ")
        );
        return Ok((report, exit::OK));
    }
    let source = record_source(resolved.iter().map(|(_, s)| *s));
    let mut images: Vec<RecordedImage> = resolved.into_iter().map(|(i, _)| i).collect();
    images.sort_by(|a, b| a.image.cmp(&b.image));
    report.pinned_images = images
        .iter()
        .map(|i| PinnedImage {
            image: i.image.clone(),
            digest: i.digest.to_string(),
        })
        .collect();
    report.last_known_good = Some(record.revision.to_string());
    let already = ctx.ledger.lkg_records(&record.app).iter().any(|r| {
        r.revision == record.revision && {
            let mut recorded = r.images.clone();
            recorded.sort_by(|a, b| a.image.cmp(&b.image));
            recorded == images
        }
    });
    if already {
        report.reason = format!(
            "healthy; {} is already recorded as last-known-good with these digests",
            record.revision.short()
        );
        return Ok((report, exit::OK));
    }
    if ctx.dry_run {
        report.action = Action::DryRun;
        report.reason = format!(
            "would record {} as last-known-good",
            record.revision.short()
        );
        return Ok((report, exit::OK));
    }
    let mut doc = NoteDoc::new();
    doc.lkg.push(LkgRecord {
        images,
        source,
        ..record
    });
    let revision = doc.lkg[0].revision.clone();
    session.repo.write_note(&session.remote, &revision, &doc)?;
    report.action = Action::Recorded;
    report.reason = format!("healthy; recorded {} as last-known-good", revision.short());
    Ok((report, exit::OK))
}

/// `revertbot revert` for an app with a controller: the manual revert
/// (through `decide`), then the same wait for Healthy as the health loop.
pub async fn revert_and_confirm(
    ws: &super::super::Workspace,
    args: &RevertArgs,
    controllers: &super::super::controllers::Controllers,
) -> Result<super::super::Outcome> {
    let started = Instant::now();
    let session = ws.session(&args.app)?;
    let outcome = super::super::revert::manual(&session, args, started)?;
    let app_ref = super::super::controllers::app_ref(&session.app);
    let (Some(app_ref), Some(pushed)) = (
        app_ref,
        outcome
            .report
            .apps
            .first()
            .filter(|a| a.action == Action::Pushed)
            .cloned(),
    ) else {
        return Ok(outcome.warned(&ws.config_warnings));
    };
    let controller = controllers
        .get(&app_ref)
        .map_err(super::super::CommandError::Usage)?;
    let (report, code) = confirm_healthy(
        &session,
        &session.app,
        &app_ref,
        &controller,
        pushed,
        started,
    )
    .await;
    Ok(super::super::Outcome {
        report: crate::report::Report::single(report),
        exit_code: code,
    }
    .warned(&ws.config_warnings))
}
