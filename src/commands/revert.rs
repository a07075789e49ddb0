//! `revertbot revert`: build the revert on the current branch tip and push
//! it fast-forward only; record the incident in the ledger.

use std::time::Instant;

use crate::domain::ledger::{IncidentRecord, NoteDoc, RecordedImage, incident_id};
use crate::domain::{CommitSha, ImageRef};
use crate::git::remote::PushOutcome;
use crate::git::revert::{BuiltRevert, RevertSpec, Scope};
use crate::git::{GitError, Verification};
use crate::render::{CommitMessage, CulpritLine, Renderer};
use crate::report::{Action, AppReport, PinnedImage, Report, SignalReport, Verdict};

use super::check::facts::manifest_images;
use super::check::facts::{LedgerIndex, add_located, cheap_facts};
use super::check::{FREEZE_FILE, policy_rules};
use super::left_alone::{LeftAlone, MESSAGE_LIMIT, left_alone};
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

/// A revert ready to commit.
pub(super) struct Prepared {
    pub built: BuiltRevert,
    pub message: String,
    pub incident: String,
    pub pinned: Vec<RecordedImage>,
    /// What the culprits changed outside the app's paths, left as it is.
    pub left_alone: Vec<LeftAlone>,
    /// A repo template override that failed (the built-in was used).
    pub template_warnings: Vec<String>,
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
        return Ok(outcome);
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
    policy.critical = PolicyMode::Push;
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
        Decision::Revert(approved) => execute(session, &approved, args, Some(located), started),
        Decision::Hold { reason, .. } => {
            report.action = Action::Blocked;
            report.reason = reason;
            Ok(Outcome {
                report: Report::single(report),
                exit_code: exit::BLOCKED,
            })
        }
        Decision::Nothing { reason } => {
            report.reason = reason;
            Ok(Outcome {
                report: Report::single(report),
                exit_code: exit::OK,
            })
        }
        // A critical breach with `push` never asks for approval and is
        // never healthy; say so rather than act.
        other => {
            report.action = Action::Blocked;
            report.reason = format!("not reverted: policy decided `{other}`");
            Ok(Outcome {
                report: Report::single(report),
                exit_code: exit::BLOCKED,
            })
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
    // What was approved is what gets reverted: the deployed revision and
    // the last-known-good `decide` judged, whatever the branch does now.
    let request = Request {
        deployed: Some(intent.deployed.to_string()),
        lkg: Some(intent.last_known_good.to_string()),
        commits: args.request.commits.clone(),
    };
    let forced: Vec<String> = intent.overridden.iter().map(ToString::to_string).collect();
    // How many times the branch may move under us before we give up.
    let policy = crate::retry::CAS_PUSH;
    let mut delays = policy.delays();
    for attempt in 1..=policy.attempts {
        // The caller's own request, when it still names what was approved
        // (so the report says where the LKG came from); else exactly that.
        let mut located = match already_located.take() {
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
            return Ok(outcome);
        }
        let prepared = prepare(session, &located, args.reason.as_deref(), &forced)?;
        fill_plan(&mut report, &prepared);
        if prepared.built.is_empty() {
            report.reason =
                "the revert changes nothing: the app's files already match last-known-good"
                    .to_owned();
            return Ok(Outcome {
                report: Report::single(report),
                exit_code: exit::OK,
            });
        }
        let commit =
            session
                .repo
                .commit_revert(&located.tip, prepared.built.tree, &prepared.message)?;
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
                let mut incident = incident_record(
                    session,
                    &located,
                    &prepared,
                    &commit,
                    args.reason.as_deref(),
                );
                incident.bad_images = quarantined_images(session, &located, &args.observed_images)?;
                incident.forced_guards = forced.clone();
                report.forced_guards = forced.clone();
                record_incident(session, &commit, incident)?;
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

/// Builds the revert tree and its message.
pub(super) fn prepare(
    session: &Session,
    located: &Located,
    reason: Option<&str>,
    forced_guards: &[String],
) -> Result<Prepared> {
    let pinned: Vec<RecordedImage> = if session.app.images.pin {
        located
            .lkg
            .as_ref()
            .and_then(|l| l.record())
            .map(|r| r.images.clone())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let targets: Vec<ImageRef> = pinned
        .iter()
        .filter_map(|img| match img.pinned().parse() {
            Ok(reference) => Some(reference),
            Err(e) => {
                tracing::warn!(image = %img.image, error = %e, "skipping an unparseable image in the ledger");
                None
            }
        })
        .collect();
    let culprit_shas: Vec<CommitSha> = located
        .search
        .culprits
        .iter()
        .map(|c| c.sha.clone())
        .collect();
    let scope = match session.app.revert.scope {
        crate::config::RevertScope::App => Scope::App,
        crate::config::RevertScope::Commits => Scope::Commits,
        crate::config::RevertScope::Paths => Scope::Paths,
    };
    let allow_outside_paths = scope == Scope::Commits && session.app.revert.allow_outside;
    let built = session.repo.build_revert(&RevertSpec {
        base: &located.tip,
        culprits: &culprit_shas,
        last_known_good: located.lkg.as_ref().map(|l| l.sha()),
        scope,
        paths: session.paths()?,
        pins: &targets,
        pin_rules: session.pin_rules()?,
        allow_outside_paths,
    })?;
    let left_alone = if allow_outside_paths {
        Vec::new()
    } else {
        left_alone(session, &culprit_shas)?
    };
    // Only images actually pinned in a manifest go into the trailers.
    let applied: Vec<RecordedImage> = pinned
        .into_iter()
        .filter(|img| built.pins.covers(img.digest.as_str()))
        .collect();
    let incident = incident_id(&session.app_name, &located.deployed);
    let renderer = Renderer::new(Some(session.repo_root()))?;
    let message = CommitMessage {
        app: session.app_name.to_string(),
        incident: incident.clone(),
        lkg: located.lkg.as_ref().map(|l| l.sha().to_string()),
        lkg_short: located.lkg.as_ref().map(|l| l.sha().short().to_owned()),
        culprits: located
            .search
            .culprits
            .iter()
            .map(|c| CulpritLine::new(&c.sha, &c.subject))
            .collect(),
        pins: applied.iter().map(RecordedImage::pinned).collect(),
        suspended_markers: built
            .pins
            .suspended_markers
            .iter()
            .map(|m| format!("{}:{} {}", m.file, m.line, m.marker))
            .collect(),
        reason: reason.map(str::to_owned),
        scope: match scope {
            Scope::App => "app".to_owned(),
            Scope::Commits => "commits".to_owned(),
            Scope::Paths => "paths".to_owned(),
        },
        left_alone: left_alone
            .iter()
            .take(MESSAGE_LIMIT)
            .map(LeftAlone::line)
            .collect(),
        left_alone_more: left_alone.len().saturating_sub(MESSAGE_LIMIT),
        approved_by: None,
        forced_guards: forced_guards.to_vec(),
    }
    .render(&renderer)?;
    let template_warnings = renderer.warnings();
    Ok(Prepared {
        built,
        message,
        incident,
        pinned: applied,
        left_alone,
        template_warnings,
    })
}

pub(super) fn fill_plan(report: &mut AppReport, prepared: &Prepared) {
    report.pinned_images = prepared
        .pinned
        .iter()
        .map(|img| PinnedImage {
            image: img.image.split('@').next().unwrap_or(&img.image).to_owned(),
            digest: img.digest.to_string(),
        })
        .collect();
    report.pins = prepared.built.pins.applied.clone();
    report.pin_mismatches = prepared.built.pins.mismatches.clone();
    report.suspended_markers = prepared.built.pins.suspended_markers.clone();
    report.files_changed = prepared.built.changes.clone();
    report.left_alone = prepared.left_alone.clone();
    report
        .warnings
        .extend(prepared.template_warnings.iter().cloned());
    report.incident = Some(prepared.incident.clone());
}

fn incident_record(
    session: &Session,
    located: &Located,
    prepared: &Prepared,
    commit: &CommitSha,
    reason: Option<&str>,
) -> IncidentRecord {
    IncidentRecord {
        id: prepared.incident.clone(),
        app: session.app_name.clone(),
        deployed_revision: located.deployed.clone(),
        last_known_good: located.lkg.as_ref().map(|l| l.sha().clone()),
        culprits: located
            .search
            .culprits
            .iter()
            .map(|c| c.sha.clone())
            .collect(),
        revert_commit: commit.clone(),
        bad_images: Vec::new(),
        pinned_images: prepared.pinned.clone(),
        reason: reason.unwrap_or("manual revert").to_owned(),
        opened_at: jiff::Timestamp::now(),
        approved_by: None,
        forced_guards: Vec::new(),
    }
}

/// What the incident quarantines: the images the culprits introduced
/// (between the revision before them and the deployed one) that carry a
/// digest or that the failing pods ran, never a last-known-good digest.
fn quarantined_images(
    session: &Session,
    located: &Located,
    observed: &[RecordedImage],
) -> Result<Vec<String>> {
    let before = match (&located.lkg, located.search.culprits.last()) {
        (Some(lkg), _) => Some(lkg.sha().clone()),
        (None, Some(oldest)) => session.repo.first_parent(&oldest.sha)?,
        (None, None) => None,
    };
    let before_images = match &before {
        Some(rev) => manifest_images(session, rev)?,
        None => Vec::new(),
    };
    let deployed_images = manifest_images(session, &located.deployed)?;
    let live: Vec<(String, crate::domain::Digest)> = observed
        .iter()
        .map(|i| (i.image.clone(), i.digest.clone()))
        .collect();
    let good: Vec<crate::domain::Digest> = located
        .lkg
        .as_ref()
        .and_then(|l| l.record())
        .map(|r| r.images.iter().map(|i| i.digest.clone()).collect())
        .unwrap_or_default();
    Ok(
        crate::policy::bad_images(&before_images, &deployed_images, &live, &good)
            .into_iter()
            .map(|b| b.image)
            .collect(),
    )
}

fn record_incident(session: &Session, commit: &CommitSha, incident: IncidentRecord) -> Result<()> {
    let mut doc = NoteDoc::new();
    doc.incidents.push(incident);
    session.repo.write_note(&session.remote, commit, &doc)?;
    Ok(())
}

/// An earlier run pushed `revert` but may have died before writing its
/// ledger note: rebuild the incident from the commit's trailers and write it
/// — only when the commit verifiably is that revert, never on the word of
/// its trailers.
fn finish_incident(session: &Session, revert: &CommitSha) -> Result<()> {
    let trailers = match session.repo.verify_revert(revert, &session.scope()?)? {
        Verification::Verified(verified) => verified.trailers,
        Verification::Forged { reason } => {
            tracing::warn!(commit = %revert, %reason, "not writing an incident note: the commit is not revertbot's revert");
            return Ok(());
        }
        Verification::NoClaim => return Ok(()),
    };
    let Some(id) = trailers.incident.clone() else {
        return Ok(());
    };
    let existing = session
        .repo
        .read_note(session.repo.upstream_notes(), revert)?;
    if existing
        .as_ref()
        .is_some_and(|doc| doc.incident(&id).is_some())
    {
        return Ok(());
    }
    tracing::info!(commit = %revert, incident = %id, "finishing the ledger record of an earlier revert");
    // The trailers do not name the deployed revision; its newest culprit is
    // the last app change it contained, which is what matters later.
    let deployed = trailers
        .reverts
        .first()
        .cloned()
        .unwrap_or_else(|| revert.clone());
    let pinned_images = trailers
        .pinned_images
        .iter()
        .filter_map(|p| {
            let (image, digest) = p.rsplit_once('@')?;
            Some(RecordedImage {
                image: image.to_owned(),
                digest: digest.parse().ok()?,
            })
        })
        .collect();
    let incident = IncidentRecord {
        id,
        app: session.app_name.clone(),
        deployed_revision: deployed,
        last_known_good: trailers.last_known_good.clone(),
        culprits: trailers.reverts.clone(),
        revert_commit: revert.clone(),
        bad_images: Vec::new(),
        pinned_images,
        reason: "recorded from the revert commit's trailers (the run that pushed it stopped before writing the ledger)".to_owned(),
        opened_at: jiff::Timestamp::now(),
        approved_by: trailers.approved_by.first().cloned(),
        forced_guards: trailers.forced_guards.clone(),
    };
    record_incident(session, revert, incident)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
