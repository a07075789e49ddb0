//! `revertbot revert`: build the revert on the current branch tip and push
//! it fast-forward only; record the incident in the ledger.

mod incident;
mod prepare;

pub(in crate::commands) use incident::{finish_incident, note_incident};
pub(in crate::commands) use prepare::{Prepared, fill_plan, prepare};

use std::time::Instant;

use crate::domain::CommitSha;
use crate::domain::ledger::{RecordedImage, incident_id};
use crate::git::GitError;
use crate::git::remote::PushOutcome;
use crate::report::{Action, AppReport, Report, SignalReport, Verdict};

use super::check::facts::{LedgerIndex, add_located, cheap_facts};
use super::check::{FREEZE_FILE, elapsed_ms, policy_rules};
use super::locate::{Located, Request, locate};
use super::{Globals, Outcome, Result, Session, exit};
use crate::domain::health::Observation;
use crate::policy::{
    Approved, DecideInput, Decision, Evidence, LastKnownGood, Mode as PolicyMode, RevertIntent,
    Severity, Verdict as PolicyVerdict, decide,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Push,
    /// A pull request from `revertbot/<app>/<deployed short>`.
    Pr,
}

#[derive(Debug, Clone)]
pub struct RevertArgs {
    pub app: String,
    pub request: Request,
    pub mode: Mode,
    pub reason: Option<String>,
    /// Override the overridable guards (freeze, cooldown, revert limit,
    /// loop guard); recorded in the report. Never stands in for a missing
    /// last-known-good.
    pub force_guards: bool,
    /// What the failing pods ran (`image as written`, digest), as the
    /// health loop observed it; empty for a manual revert. The incident
    /// quarantines those of them that the culprits introduced.
    pub observed_images: Vec<RecordedImage>,
}

pub fn run(globals: &Globals, args: &RevertArgs) -> Result<Outcome> {
    let started = Instant::now();
    let session = Session::open(globals, &args.app)?;
    Ok(manual(&session, args, started)?.warned(&session.config_warnings))
}

/// A revert asked for by hand goes through the same `decide` as the health
/// loop: freeze, cooldown, the revert limit and the loop guard hold it
/// (exit 4) unless `--force-guards`, which never stands in for a missing
/// last-known-good.
pub fn manual(session: &Session, args: &RevertArgs, started: Instant) -> Result<Outcome> {
    let located = locate(session, &args.request)?;
    match judge(session, args, located)? {
        Judged::Done(outcome) => Ok(outcome),
        Judged::Revert(approved, located) => {
            execute(session, &approved, args, Some(*located), started)
        }
    }
}

/// What `decide` made of a manual request.
pub(super) enum Judged {
    /// Held, or nothing to do: the outcome says why.
    Done(Outcome),
    /// Approved, with the search it was judged on.
    Revert(Approved<RevertIntent>, Box<Located>),
}

/// Runs a manual request through `decide`.
pub(super) fn judge(session: &Session, args: &RevertArgs, located: Located) -> Result<Judged> {
    let mut report = base_report(session, &located);
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| "revert requested by hand".to_owned());
    report.signals.push(SignalReport {
        source: "manual".to_owned(),
        detail: reason.clone(),
    });
    if let Some(outcome) = nothing_to_do(session, &located, &mut report, true)? {
        return Ok(Judged::Done(outcome));
    }
    let ledger = LedgerIndex::load(&session.repo)?;
    let freeze_file = session
        .repo
        .read_file(&located.tip, FREEZE_FILE)?
        .map(|_| FREEZE_FILE.to_owned());
    let (mut facts, _) = cheap_facts(
        session,
        &ledger,
        Some(&located.deployed),
        freeze_file.as_deref(),
    );
    // A manual LKG (`--lkg`) may have no ledger record: it bounds the
    // culprits, with nothing to pin.
    add_located(&mut facts, session, &located, |l| {
        Some(LastKnownGood {
            revision: l.sha().clone(),
            images: l.record().map(|r| r.images.clone()).unwrap_or_default(),
        })
    })?;
    let verdict = PolicyVerdict::Breach {
        severity: Severity::Critical,
        evidence: vec![Evidence::Manual { reason }],
    };
    let observation = Observation::requested(session.app_name.clone(), located.deployed.clone());
    // The command line chose how to publish; the guards still apply.
    let mut policy = policy_rules(&session.app);
    policy.critical = match args.mode {
        Mode::Push => PolicyMode::Push,
        Mode::Pr => PolicyMode::Pr,
    };
    let decision = decide(&DecideInput {
        app: &session.app_name,
        verdict: &verdict,
        observation: Some(&observation),
        now: jiff::Timestamp::now(),
        policy: &policy,
        facts: &facts,
        force_guards: args.force_guards,
        approval: None,
    });
    tracing::info!(app = %session.app_name, decision = %decision, "manual revert judged");
    match decision {
        Decision::Revert(approved) => Ok(Judged::Revert(approved, Box::new(located))),
        Decision::Hold { reason, .. } => {
            report.action = Action::Blocked;
            report.reason = reason;
            Ok(Judged::Done(Outcome {
                report: Report::single(report),
                exit_code: exit::BLOCKED,
            }))
        }
        Decision::Nothing { reason } => {
            report.reason = reason;
            Ok(Judged::Done(Outcome {
                report: Report::single(report),
                exit_code: exit::OK,
            }))
        }
        // A critical breach with `push` never asks for approval and is
        // never healthy; say so rather than act.
        other => {
            report.action = Action::Blocked;
            report.reason = format!("not reverted: policy decided `{other}`");
            Ok(Judged::Done(Outcome {
                report: Report::single(report),
                exit_code: exit::BLOCKED,
            }))
        }
    }
}

/// Builds the approved revert on the current tip and pushes it, rebuilding
/// when the branch moved (compare-and-swap); records the incident. Only an
/// intent `decide` approved can be published. `already_located` is the
/// caller's search on the same tip, reused for the first attempt (the
/// culprit search is the costliest step of a revert on a long history).
pub fn execute(
    session: &Session,
    approved: &Approved<RevertIntent>,
    args: &RevertArgs,
    mut already_located: Option<Located>,
    started: Instant,
) -> Result<Outcome> {
    let intent = approved.get();
    let span = tracing::info_span!("revert", app = %args.app, incident = %intent.incident, revision = %intent.deployed.short());
    let _entered = span.enter();
    let forced: Vec<String> = intent.overridden.iter().map(ToString::to_string).collect();
    // How many times the branch may move under us before we give up.
    let policy = crate::retry::CAS_PUSH;
    let mut delays = policy.delays();
    for attempt in 1..=policy.attempts {
        let Built {
            located,
            prepared,
            commit,
            mut report,
        } = match build_on_tip(session, approved, args, already_located.take(), &forced)? {
            Step::Done(outcome) => return Ok(outcome),
            Step::Built(built) => *built,
        };
        let refname = format!("refs/heads/{}", session.remote.branch);
        match session
            .repo
            .push_commit(&session.remote, commit.as_str(), &refname)?
        {
            PushOutcome::Pushed => {
                tracing::info!(commit = %commit, "revert pushed");
                report
                    .timings_ms
                    .insert("revert".to_owned(), elapsed_ms(started));
                note_incident(session, &located, &prepared, &commit, args, &forced)?;
                report.forced_guards = forced.clone();
                report.action = Action::Pushed;
                report.revert_commit = Some(commit.to_string());
                report.reason = format!(
                    "reverted {} commit(s) and pushed to {}/{}",
                    located.search.culprits.len(),
                    session.remote.display(),
                    session.remote.branch
                );
                report
                    .timings_ms
                    .insert("total".to_owned(), elapsed_ms(started));
                return Ok(Outcome {
                    report: Report::single(report),
                    exit_code: exit::OK,
                });
            }
            PushOutcome::Refused { message } => {
                let (now, _) = session.repo.fetch_branch(&session.remote, None)?;
                if now == located.tip {
                    return Err(GitError::PushRejected {
                        refname,
                        reason: message,
                    }
                    .into());
                }
                tracing::info!(
                    attempt,
                    "the branch moved while pushing; rebuilding the revert on the new tip"
                );
                match delays.next() {
                    Some(delay) => std::thread::sleep(delay),
                    None => break,
                }
            }
        }
    }
    Err(GitError::RemoteKeptMoving {
        refname: format!("refs/heads/{}", session.remote.branch),
        attempts: policy.attempts,
    }
    .into())
}

/// A revert commit built on the current tip, not yet published.
pub(super) struct Built {
    pub located: Located,
    pub prepared: Prepared,
    pub commit: CommitSha,
    pub report: AppReport,
}

pub(super) enum Step {
    /// Nothing to publish; the outcome says why.
    Done(Outcome),
    Built(Box<Built>),
}

/// Locates what was approved on the current tip and writes its revert
/// commit (not yet on any branch).
pub(super) fn build_on_tip(
    session: &Session,
    approved: &Approved<RevertIntent>,
    args: &RevertArgs,
    already_located: Option<Located>,
    forced: &[String],
) -> Result<Step> {
    let intent = approved.get();
    // What was approved is what gets reverted: the deployed revision and
    // the last-known-good `decide` judged, whatever the branch does now.
    let request = Request {
        deployed: Some(intent.deployed.to_string()),
        lkg: Some(intent.last_known_good.to_string()),
        commits: args.request.commits.clone(),
    };
    // The caller's own request, when it still names what was approved
    // (so the report says where the LKG came from); else exactly that.
    let mut located = match already_located {
        Some(located) => located,
        None => locate(session, &args.request)?,
    };
    if located.deployed != intent.deployed
        || located.lkg.as_ref().map(|l| l.sha()) != Some(&intent.last_known_good)
    {
        located = locate(session, &request)?;
    }
    let mut report = base_report(session, &located);
    report.signals.push(SignalReport {
        source: "manual".to_owned(),
        detail: args
            .reason
            .clone()
            .unwrap_or_else(|| "revert requested by hand".to_owned()),
    });
    if let Some(outcome) = nothing_to_do(session, &located, &mut report, true)? {
        return Ok(Step::Done(outcome));
    }
    let prepared = prepare(session, &located, args.reason.as_deref(), forced)?;
    fill_plan(&mut report, &prepared);
    if prepared.built.is_empty() {
        report.reason =
            "the revert changes nothing: the app's files already match last-known-good".to_owned();
        return Ok(Step::Done(Outcome {
            report: Report::single(report),
            exit_code: exit::OK,
        }));
    }
    let commit =
        session
            .repo
            .commit_revert(&located.tip, prepared.built.tree, &prepared.message)?;
    Ok(Step::Built(Box::new(Built {
        located,
        prepared,
        commit,
        report,
    })))
}

/// The report fields every revert-shaped command shares.
pub(super) fn base_report(session: &Session, located: &Located) -> AppReport {
    let mut report = AppReport::new(session.app_name.as_str());
    report.verdict = Verdict::Breach;
    report.deployed_revision = Some(located.deployed.to_string());
    report.last_known_good = located.lkg.as_ref().map(|l| l.sha().to_string());
    report.last_known_good_source = located.lkg.as_ref().map(|l| l.source().to_owned());
    report.culprits = located
        .search
        .culprits
        .iter()
        .map(|c| c.sha.to_string())
        .collect();
    report.culprit_details = located.search.culprits.clone();
    report.already_reverted = located.search.already_reverted.clone();
    report.forged_reverts = located.search.forged_reverts.clone();
    report.fetched_bytes = Some(located.fetched.received_bytes);
    report.incident = Some(incident_id(&session.app_name, &located.deployed));
    report
}

/// When there is nothing to revert, the outcome saying why. With
/// `finish_records`, a revert that an earlier run pushed but did not record
/// gets its ledger note (a plan passes false: it never writes).
pub(super) fn nothing_to_do(
    session: &Session,
    located: &Located,
    report: &mut AppReport,
    finish_records: bool,
) -> Result<Option<Outcome>> {
    if !located.search.culprits.is_empty() {
        return Ok(None);
    }
    if let Some(done) = located.search.already_reverted.first() {
        if finish_records {
            finish_incident(session, &done.by)?;
        }
        report.revert_commit = Some(done.by.to_string());
        report.reason = format!(
            "already reverted by {} — nothing to do (a repeated trigger or an earlier run did it)",
            done.by.short()
        );
        return Ok(Some(Outcome {
            report: Report::single(report.clone()),
            exit_code: exit::OK,
        }));
    }
    if located.lkg.is_none() {
        report.action = Action::Blocked;
        report.reason = format!(
            "no last-known-good is recorded for {} on the history of {} — record one with `revertbot record`, pass --lkg, or name the commits with --commit",
            session.app_name,
            located.deployed.short()
        );
        return Ok(Some(Outcome {
            report: Report::single(report.clone()),
            exit_code: exit::BLOCKED,
        }));
    }
    report.reason = "nothing to revert: no commit between last-known-good and the deployed revision changes the app's paths".to_owned();
    Ok(Some(Outcome {
        report: Report::single(report.clone()),
        exit_code: exit::OK,
    }))
}
