//! The facts of a revert pull request's body, gathered from the run: the
//! evidence, the revisions, the culprits and what the revert did.

use jiff::Timestamp;

use crate::domain::CommitSha;
use crate::git::culprits::Culprit;
use crate::git::revert::{AppliedPin, SuspendedMarker};
use crate::policy::{Evidence, GuardKind, PolicyRules};
use crate::render::pr_body::{
    CulpritRow, Event, GuardRow, LeftAloneRow, PinRow, PrBody, Revision, SignalRow,
};
use crate::report::LeftAlone;

use super::super::Session;

/// What one run knows about the incident it publishes.
pub(super) struct Facts<'a> {
    pub incident: &'a str,
    pub deployed: &'a CommitSha,
    pub lkg: Option<&'a CommitSha>,
    pub evidence: &'a [Evidence],
    pub severity: Option<String>,
    pub reason: String,
    pub culprits: &'a [Culprit],
    pub left_alone: &'a [LeftAlone],
    pub pins: Pins<'a>,
    pub suspended_markers: &'a [SuspendedMarker],
    pub overridden: &'a [String],
    pub approved_by: Option<String>,
    pub timeline: Vec<(Timestamp, String)>,
    pub branch: &'a str,
    pub automerge: bool,
}

/// The pins: as this run applied them (file, line, before and after), or,
/// for a branch an earlier run pushed, as its verified trailers name them.
pub(super) enum Pins<'a> {
    Applied(&'a [AppliedPin]),
    Trailers(&'a [String]),
}

/// Every guard a revert passes before it is built, as the app's policy
/// states it (the revert got here, so each held or was overridden).
fn guards(policy: &PolicyRules, overridden: &[String]) -> Vec<GuardRow> {
    let rows = [
        (
            GuardKind::NoLastKnownGood,
            "a last-known-good is recorded on the branch's history".to_owned(),
        ),
        (
            GuardKind::NothingToRevert,
            "the deployed revision has commits the last-known-good lacks".to_owned(),
        ),
        (
            GuardKind::Loop,
            "the deployed revision is not a revertbot revert, and no culprit was reverted before"
                .to_owned(),
        ),
        (
            GuardKind::Freeze,
            "no freeze (`policy.freeze`, `.revertbot-freeze`)".to_owned(),
        ),
        (
            GuardKind::MaxReverts,
            format!(
                "fewer than {} reverts of this app in the last {}",
                policy.max_reverts.count,
                crate::policy::fmt_duration(policy.max_reverts.per)
            ),
        ),
        (
            GuardKind::Cooldown,
            format!(
                "no revert of this app in the last {}",
                crate::policy::fmt_duration(policy.cooldown)
            ),
        ),
        (
            GuardKind::Grace,
            format!(
                "controller health counted only {} after a sync",
                crate::policy::fmt_duration(policy.grace)
            ),
        ),
    ];
    rows.into_iter()
        .map(|(kind, rule)| GuardRow {
            name: kind.to_string(),
            overridden: overridden.iter().any(|o| *o == kind.to_string()),
            rule,
        })
        .collect()
}

pub(super) fn build(session: &Session, web: Option<&str>, facts: &Facts<'_>) -> PrBody {
    let link = |sha: &str| web.map(|w| format!("{w}/commit/{sha}"));
    let revision = |sha: &CommitSha| Revision {
        sha: sha.to_string(),
        short: sha.short().to_owned(),
        url: link(sha.as_str()),
    };
    let pins = match facts.pins {
        Pins::Applied(pins) => pins
            .iter()
            .map(|p| PinRow {
                file: p.file.clone(),
                line: p.line,
                before: p.before.clone(),
                after: p.after.clone(),
            })
            .collect(),
        Pins::Trailers(images) => images
            .iter()
            .map(|image| PinRow {
                file: "(see the diff)".to_owned(),
                line: 0,
                before: "(as deployed)".to_owned(),
                after: image.clone(),
            })
            .collect(),
    };
    let mut timeline: Vec<Event> = facts
        .timeline
        .iter()
        .map(|(at, event)| Event {
            at: at.round(jiff::Unit::Second).unwrap_or(*at).to_string(),
            event: event.clone(),
        })
        .collect();
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    PrBody {
        app: session.app_name.to_string(),
        incident: facts.incident.to_owned(),
        severity: facts.severity.clone(),
        reason: facts.reason.clone(),
        signals: facts
            .evidence
            .iter()
            .map(|e| {
                let m = e.measure();
                SignalRow {
                    signal: m.signal,
                    value: m.value,
                    threshold: m.threshold,
                }
            })
            .collect(),
        deployed: revision(facts.deployed),
        lkg: facts.lkg.map(revision),
        culprits: facts
            .culprits
            .iter()
            .map(|c| CulpritRow {
                sha: c.sha.to_string(),
                short: c.sha.short().to_owned(),
                subject: c.subject.clone(),
                url: link(c.sha.as_str()),
                files: c.files.clone(),
            })
            .collect(),
        left_alone: facts
            .left_alone
            .iter()
            .map(|l| LeftAloneRow {
                file: l.file.clone(),
                owners: l.owners.clone(),
            })
            .collect(),
        left_alone_more: 0,
        pins,
        suspended_markers: facts
            .suspended_markers
            .iter()
            .map(|m| format!("{}:{} {}", m.file, m.line, m.marker))
            .collect(),
        guards: guards(
            &super::super::check::rules::policy_rules(&session.app),
            facts.overridden,
        ),
        timeline,
        branch: facts.branch.to_owned(),
        base: session.remote.branch.clone(),
        automerge: facts.automerge,
        approved_by: facts.approved_by.clone(),
    }
}
