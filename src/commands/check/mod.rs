//! `revertbot check`: one pass over all (or one) apps — observe, judge,
//! act per policy. One app's failure never stops the others.

mod act;
mod automerge;
mod observe;
mod record;
pub(crate) mod rules;

pub use act::{PendingConfirm, revert_and_confirm};
pub use record::record_now;
pub(crate) use rules::{
    automerge_policy, by_pull_request, health_rules, policy_rules, verdict_evidence,
};
pub mod facts;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use tracing::Instrument;

use crate::config::AppConfig;
use crate::controller::{AppRef, Controller, ControllerError};
use crate::domain::health::Observation;
use crate::policy::{DecideInput, JudgeInput, LastKnownGood, Unavailable, decide, judge};
use crate::registry::{Registry, RegistryConfig};
use crate::report::{Action, AppReport, Report, SignalReport, Verdict as ReportVerdict};

use super::controllers::{Controllers, app_ref};
use super::locate::{Request, locate};
use super::pull_request::{self, Forge};
use super::{CommandError, Globals, Outcome, Result, Workspace, exit};
use crate::config::Config;
use facts::{LedgerIndex, cheap_facts};
use observe::{
    assume_reconciled_since_sync, is_recorded_healthy, needs_full_observation, needs_pods,
    unavailable,
};

/// The file that freezes every automatic revert of the repo while present.
pub const FREEZE_FILE: &str = ".revertbot-freeze";

/// Apps handled at once in one pass (each may be waiting for Healthy).
const MAX_CONCURRENT_APPS: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct CheckArgs {
    pub app: Option<String>,
    pub dry_run: bool,
}

/// What the whole run shares.
pub(crate) struct RunContext {
    pub ledger: LedgerIndex,
    pub freeze_file: Option<String>,
    pub dry_run: bool,
    pub registry: Option<Registry>,
    /// `watch`: pushed reverts are confirmed outside the pass, so the next
    /// cycles run while they wait. `None`: the pass waits (`check`).
    pub deferred: Option<Deferred>,
    /// GitHub, set up on first use (only a `pr` policy needs it); the error
    /// says what is missing.
    forge: tokio::sync::OnceCell<std::result::Result<std::rc::Rc<Forge>, String>>,
}

/// The waits `watch` carries across cycles.
pub(crate) struct Deferred {
    /// App → the report of its pushed revert, still waiting for Healthy.
    confirming: HashMap<String, AppReport>,
    /// Reverts this pass pushed, handed to `watch` to confirm.
    pushed: RefCell<Vec<PendingConfirm>>,
}

impl RunContext {
    /// Fetches the branch and the ledger once for the run (a shallow clone:
    /// the tip only; `locate` deepens where a breach needs it) and reads
    /// what every app shares.
    async fn prepare(ws: &Workspace, dry_run: bool) -> Result<Self> {
        let tip = fetch_off_the_loop(ws).await?;
        Ok(Self {
            ledger: LedgerIndex::load(&ws.repo)?,
            freeze_file: ws
                .repo
                .read_file(&tip, FREEZE_FILE)?
                .map(|_| FREEZE_FILE.to_owned()),
            dry_run,
            registry: Registry::new(RegistryConfig::default()).ok(),
            deferred: None,
            forge: tokio::sync::OnceCell::new(),
        })
    }

    /// The GitHub repository for revert pull requests, or why there is none.
    pub async fn forge(&self, config: &Config) -> std::result::Result<std::rc::Rc<Forge>, String> {
        self.forge
            .get_or_init(|| async {
                Forge::from_env(config)
                    .await
                    .map(std::rc::Rc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .clone()
    }
}

/// The pass's fetch of the branch and the ledger (a shallow clone: the tip
/// only; `locate` deepens where a breach needs it), on a blocking thread
/// with a handle of its own: git2 blocks for the whole network exchange,
/// and `watch`'s waits for Healthy must keep polling meanwhile. The
/// workspace's handle sees the fetched refs and objects on its next read.
async fn fetch_off_the_loop(ws: &Workspace) -> Result<crate::domain::CommitSha> {
    let path = ws.repo.path().to_owned();
    let remote = ws.remote.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        let repo = crate::git::InfraRepo::open(&path)?;
        let (tip, _) = if repo.is_shallow() {
            repo.fetch_notes(&remote)?;
            repo.fetch_branch(&remote, Some(1))?
        } else {
            repo.fetch_branch_and_notes(&remote)?
        };
        Ok::<_, CommandError>(tip)
    })
    .await;
    match fetched {
        Ok(result) => result,
        Err(e) => Err(CommandError::Runtime(format!(
            "the fetch of the infra repo did not finish: {e}"
        ))),
    }
}

impl Deferred {
    /// Hands a pushed revert to `watch` to confirm.
    pub(crate) fn push(&self, pending: PendingConfirm) {
        self.pushed.borrow_mut().push(pending);
    }
}

pub async fn run(
    globals: &Globals,
    args: &CheckArgs,
    controllers: &Controllers,
) -> Result<Outcome> {
    run_in(&Workspace::open(globals)?, args, controllers).await
}

/// One pass in an open workspace that waits for every revert it pushes to
/// be confirmed Healthy.
pub async fn run_in(
    ws: &Workspace,
    args: &CheckArgs,
    controllers: &Controllers,
) -> Result<Outcome> {
    let ctx = RunContext::prepare(ws, args.dry_run).await?;
    pass(ws, args, controllers, &ctx).await
}

/// One `watch` cycle: like [`run_in`], but a pushed revert is returned to
/// be confirmed outside the cycle, and the apps in `confirming` (app →
/// its pushed revert's report) are not judged again until their wait ends.
pub async fn cycle(
    ws: &Workspace,
    args: &CheckArgs,
    controllers: &Controllers,
    confirming: HashMap<String, AppReport>,
) -> Result<(Outcome, Vec<PendingConfirm>)> {
    let mut ctx = RunContext::prepare(ws, args.dry_run).await?;
    ctx.deferred = Some(Deferred {
        confirming,
        pushed: RefCell::new(Vec::new()),
    });
    let outcome = pass(ws, args, controllers, &ctx).await?;
    let pushed = ctx
        .deferred
        .map(|d| d.pushed.into_inner())
        .unwrap_or_default();
    Ok((outcome, pushed))
}

async fn pass(
    ws: &Workspace,
    args: &CheckArgs,
    controllers: &Controllers,
    ctx: &RunContext,
) -> Result<Outcome> {
    let selected: Vec<AppConfig> = match &args.app {
        Some(name) => vec![ws.session(name)?.app.clone()],
        None => ws.config.apps.clone(),
    };

    // One list call per controller for every app it serves.
    let refs: Vec<(AppConfig, Option<AppRef>)> = selected
        .into_iter()
        .map(|a| {
            let r = app_ref(&a);
            (a, r)
        })
        .collect();
    let mut observed: Vec<Option<std::result::Result<Observation, ControllerError>>> =
        std::iter::repeat_with(|| None).take(refs.len()).collect();
    for kind in [Kind::ArgoCd, Kind::Flux] {
        let batch: Vec<(usize, AppRef)> = refs
            .iter()
            .enumerate()
            .filter_map(|(i, (_, r))| r.clone().filter(|r| Kind::of(r) == kind).map(|r| (i, r)))
            .collect();
        let Some((_, first)) = batch.first() else {
            continue;
        };
        let Ok(controller) = controllers.get(first) else {
            continue;
        };
        let apps: Vec<AppRef> = batch.iter().map(|(_, r)| r.clone()).collect();
        match controller.observe_all(&apps).await {
            Ok(results) => {
                for ((i, _), result) in batch.iter().zip(results) {
                    observed[*i] = Some(result);
                }
            }
            Err(e) => {
                tracing::error!(server = %controller.server(), error = %e, "listing apps failed");
                // The list error as it is: re-wrapping it as "cannot reach"
                // said the cause twice, and wrongly for a garbled answer.
                for (i, _) in &batch {
                    observed[*i] = Some(Err(e.clone()));
                }
            }
        }
    }

    // Apps do not wait for each other: one app's wait for Healthy (minutes)
    // must not delay observing and reverting the others. The futures run
    // interleaved on this task (sessions and the repository are not
    // thread-safe); waits yield, git work is short. Reports keep the
    // config's order.
    let per_app = refs
        .into_iter()
        .zip(observed)
        .map(|((app, app_ref), observation)| {
            async move {
                let started = Instant::now();
                let confirming = ctx
                    .deferred
                    .as_ref()
                    .and_then(|d| d.confirming.get(&app.name));
                let (mut report, code) = match (app_ref, observation) {
                    _ if confirming.is_some() => (still_confirming(&app.name, confirming), exit::OK),
                    (None, _) => {
                        let mut r = AppReport::new(&app.name);
                        r.reason = "no controller configured (argocd or flux): nothing to observe"
                            .to_owned();
                        (r, exit::OK)
                    }
                    (Some(app_ref), observation) => {
                        let observation = observation.unwrap_or_else(|| {
                            Err(ControllerError::Unreachable {
                                server: "no controller".into(),
                                doing: "observing".into(),
                                message: controllers.get(&app_ref).err().unwrap_or_default(),
                            })
                        });
                        match check_app(ws, ctx, &app, &app_ref, controllers, observation).await {
                            Ok(done) => done,
                            Err(e) => {
                                tracing::error!(app = %app.name, error = %e, "check failed for this app");
                                let mut r = AppReport::new(&app.name);
                                r.reason = e.to_string();
                                (r, e.exit_code())
                            }
                        }
                    }
                };
                report
                    .timings_ms
                    .insert("check".to_owned(), elapsed_ms(started));
                (report, code)
            }
        });
    let done: Vec<(AppReport, u8)> = futures::stream::iter(per_app)
        .buffered(MAX_CONCURRENT_APPS)
        .collect()
        .await;
    let mut apps = Vec::with_capacity(done.len());
    let mut exit_code = exit::OK;
    for (report, code) in done {
        exit_code = worst(exit_code, code);
        apps.push(report);
    }
    Ok(Outcome {
        report: Report {
            version: crate::report::REPORT_VERSION,
            warnings: ws.config_warnings.to_vec(),
            apps,
        },
        exit_code,
    })
}

/// The report of an app whose revert is still waiting for Healthy.
fn still_confirming(app: &str, pushed: Option<&AppReport>) -> AppReport {
    let mut report = AppReport::new(app);
    report.action = Action::Confirming;
    if let Some(pushed) = pushed {
        report.verdict = pushed.verdict;
        report.incident = pushed.incident.clone();
        report.revert_commit = pushed.revert_commit.clone();
        report.deployed_revision = pushed.deployed_revision.clone();
        report.last_known_good = pushed.last_known_good.clone();
    }
    let revert = report
        .revert_commit
        .as_deref()
        .map_or("its revert", |c| c.get(..12).unwrap_or(c));
    report.reason =
        format!("waiting for {revert} to be confirmed Healthy; judged again when that wait ends");
    report
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ArgoCd,
    Flux,
}

impl Kind {
    fn of(r: &AppRef) -> Kind {
        match r {
            AppRef::ArgoCd { .. } => Kind::ArgoCd,
            AppRef::Flux { .. } => Kind::Flux,
        }
    }
}

async fn check_app(
    ws: &Workspace,
    ctx: &RunContext,
    app: &AppConfig,
    app_ref: &AppRef,
    controllers: &Controllers,
    observation: Result<Observation, ControllerError>,
) -> Result<(AppReport, u8)> {
    // The span is attached to the future, never held entered across an
    // await (it would leak into whatever the executor runs meanwhile).
    let span = tracing::info_span!("check", app = %app.name, revision = tracing::field::Empty, incident = tracing::field::Empty);
    check_app_in_span(ws, ctx, app, app_ref, controllers, observation)
        .instrument(span)
        .await
}

async fn check_app_in_span(
    ws: &Workspace,
    ctx: &RunContext,
    app: &AppConfig,
    app_ref: &AppRef,
    controllers: &Controllers,
    observation: Result<Observation, ControllerError>,
) -> Result<(AppReport, u8)> {
    let session = ws.session(&app.name)?;
    let span = tracing::Span::current();
    // No answer, no revert: a controller that is down or errs is a runtime
    // error for this app, reported with the server's name.
    if let Err(e) = &observation {
        let mut report = AppReport::new(&app.name);
        report.signals = vec![SignalReport {
            source: "controller".to_owned(),
            detail: e.to_string(),
        }];
        report.reason = format!("no revert without an answer from the controller: {e}");
        return Ok((report, exit::ERROR));
    }
    let controller = controllers.get(app_ref).map_err(CommandError::Usage)?;
    let observation = match observation {
        Ok(summary) if needs_full_observation(&summary, ctx, &session) => {
            controller
                .observe(app_ref, crate::controller::Detail::Summary)
                .await
        }
        other => other,
    };
    if let Err(e) = &observation {
        let mut report = AppReport::new(&app.name);
        report.signals = vec![SignalReport {
            source: "controller".to_owned(),
            detail: e.to_string(),
        }];
        report.reason = format!("no revert without an answer from the controller: {e}");
        return Ok((report, exit::ERROR));
    }
    let now = jiff::Timestamp::now();
    let observed: std::result::Result<Observation, Unavailable> = match observation {
        Ok(mut obs) => {
            // Steady state: healthy, synced and already recorded. Its pods
            // are not read every cycle (5,000 apps: 15,000 calls).
            let steady = is_recorded_healthy(&obs, ctx, &session);
            if steady {
                assume_reconciled_since_sync(&mut obs, now);
            }
            if needs_pods(&obs) && !steady {
                match controller.pods(app_ref).await {
                    Ok(pods) => {
                        obs.pods = pods;
                        Ok(obs)
                    }
                    Err(e) => Err(unavailable(&e)),
                }
            } else {
                Ok(obs)
            }
        }
        Err(e) => Err(unavailable(&e)),
    };
    let deployed = observed.as_ref().ok().and_then(|o| o.deployed.clone());
    if let Some(d) = &deployed {
        span.record("revision", d.short());
    }
    let (mut facts, quarantine) = cheap_facts(
        &session,
        &ctx.ledger,
        deployed.as_ref(),
        ctx.freeze_file.as_deref(),
    );
    let rules = health_rules(app);
    // Only apps with quarantined digests pay for reading their manifests.
    let manifest_digests = match &deployed {
        Some(d) if !quarantine.is_empty() => facts::pinned_digests(&session, d),
        _ => Vec::new(),
    };
    let verdict = judge(&JudgeInput {
        observed: observed.as_ref(),
        now,
        rules: &rules,
        quarantine: &quarantine,
        manifest_digests: &manifest_digests,
        signals: &[],
    });
    let mut report = AppReport::new(&app.name);
    report.verdict = match verdict.as_str() {
        "healthy" => ReportVerdict::Healthy,
        "breach" => ReportVerdict::Breach,
        _ => ReportVerdict::Unknown,
    };
    report.deployed_revision = deployed.as_ref().map(ToString::to_string);
    report.signals = evidence_of(&verdict);

    // A breach needs the culprits (and, in a shallow clone, the history to
    // find them): `locate` fetches and deepens as far as needed.
    if verdict.is_breach()
        && let Some(deployed) = &deployed
    {
        let located = locate(
            &session,
            &Request {
                deployed: Some(deployed.to_string()),
                lkg: None,
                commits: Vec::new(),
            },
        )?;
        facts::add_located(&mut facts, &session, &located, |l| {
            l.record().map(LastKnownGood::from)
        })?;
        report.last_known_good = located.lkg.as_ref().map(|l| l.sha().to_string());
        report.forged_reverts = located.search.forged_reverts.clone();
        report.culprits = located
            .search
            .culprits
            .iter()
            .map(|c| c.sha.to_string())
            .collect();
        // An earlier run's revert branch for this incident: finish its pull
        // request before the guards are asked (its own cooldown would hold
        // it back).
        if by_pull_request(app, &verdict)
            && !ctx.dry_run
            && let Ok(forge) = ctx.forge(&session.config).await
            && let Some(done) = pull_request::resume(
                &session,
                &forge,
                &located,
                verdict_evidence(&verdict),
                automerge_policy(app, &verdict),
                report.clone(),
            )
            .await?
        {
            let (report, code) = done;
            let follow =
                automerge::should_follow(ctx, automerge_policy(app, &verdict), code, report.action);
            if follow {
                let started = std::time::Instant::now();
                return Ok(automerge::follow(
                    &session,
                    &forge,
                    app,
                    app_ref,
                    &controller,
                    report,
                    started,
                )
                .await);
            }
            return Ok((report, code));
        }
    }
    let policy = policy_rules(app);
    let decision = decide(&DecideInput {
        app: &session.app_name,
        verdict: &verdict,
        observation: observed.as_ref().ok(),
        now,
        policy: &policy,
        facts: &facts,
        force_guards: false,
        approval: None,
    });
    tracing::info!(verdict = verdict.as_str(), decision = %decision, "judged");
    act::act(
        &session,
        ctx,
        app,
        app_ref,
        &controller,
        observed.as_ref().ok(),
        decision,
        report,
    )
    .await
}

fn evidence_of(verdict: &crate::policy::Verdict) -> Vec<SignalReport> {
    match verdict {
        crate::policy::Verdict::Healthy { evidence }
        | crate::policy::Verdict::Breach { evidence, .. } => evidence
            .iter()
            .map(|e| SignalReport {
                source: format!("{:?}", e.class()).to_ascii_lowercase(),
                detail: e.to_string(),
            })
            .collect(),
        crate::policy::Verdict::Unknown { reason } => vec![SignalReport {
            source: "unknown".to_owned(),
            detail: reason.to_string(),
        }],
    }
}

/// The exit code of several apps: runtime error over unconfirmed recovery
/// over a withheld revert over success.
pub(crate) fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::ERROR => 4,
        exit::USAGE => 3,
        exit::UNCONFIRMED => 2,
        exit::BLOCKED => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

pub(crate) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
