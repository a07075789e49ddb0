//! The run report: one JSON document on stdout (`--output json`, a frozen,
//! versioned shape: fields may be added, never renamed) or a text summary for
//! people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::git::culprits::{AlreadyReverted, Culprit};
use crate::git::revert::{AppliedPin, FileChange, PinMismatch, SuspendedMarker};
use crate::git::verify::ForgedRevert;

pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    /// Problems with the run's setup that did not stop it, such as config
    /// keys that are parsed but not acted on yet (`file:line:col: warning:
    /// …`). Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub apps: Vec<AppReport>,
}

impl Report {
    pub fn single(app: AppReport) -> Self {
        Self {
            version: REPORT_VERSION,
            warnings: Vec::new(),
            apps: vec![app],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Breach,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    None,
    Recorded,
    Pushed,
    PrOpened,
    PrUpdated,
    AwaitingApproval,
    Blocked,
    DryRun,
    /// `watch` only: a revert this process pushed is still waiting for the
    /// controller to report Healthy; the app is judged again once the wait
    /// ends (its outcome is its own report).
    Confirming,
}

/// Evidence that led to the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalReport {
    pub source: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedImage {
    pub image: String,
    pub digest: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AppReport {
    pub app: String,
    pub verdict: Verdict,
    pub signals: Vec<SignalReport>,
    pub deployed_revision: Option<String>,
    pub last_known_good: Option<String>,
    pub culprits: Vec<String>,
    pub action: Action,
    pub revert_commit: Option<String>,
    pub pr_url: Option<String>,
    pub pinned_images: Vec<PinnedImage>,
    pub healthy_confirmed: bool,
    pub incident: Option<String>,
    pub reason: String,
    pub timings_ms: BTreeMap<String, u64>,
    // Added beyond DESIGN.md's minimum; documented in the README.
    /// Where the LKG came from: `ledger`, `flag`, or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_known_good_source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub culprit_details: Vec<Culprit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_reverted: Vec<AlreadyReverted>,
    /// Commits that carry revertbot's trailers for the app but are not its
    /// reverts (their content is not the revert they claim): a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forged_reverts: Vec<ForgedRevert>,
    /// Guards a person overrode with `--force-guards` for this revert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forced_guards: Vec<String>,
    /// Problems with this app's run that did not stop it, such as a
    /// template override from the repo that failed and was replaced by the
    /// built-in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Files the culprits changed outside the app's paths, which the revert
    /// leaves as they are, with the apps that own them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<LeftAlone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<AppliedPin>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pin_mismatches: Vec<PinMismatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suspended_markers: Vec<SuspendedMarker>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_changed: Vec<FileChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_bytes: Option<u64>,
}

impl AppReport {
    pub fn new(app: &str) -> Self {
        Self {
            app: app.to_owned(),
            ..Self::default()
        }
    }
}

/// The text summary for a terminal.
pub fn to_text(report: &Report) -> String {
    let mut out = String::new();
    for warning in &report.warnings {
        let _ = writeln!(out, "{warning}");
    }
    for app in &report.apps {
        app_text(&mut out, app);
    }
    out
}

fn app_text(out: &mut String, app: &AppReport) {
    let headline = match app.action {
        Action::DryRun => "plan (dry run, nothing changed)",
        Action::Pushed => "revert pushed",
        Action::Recorded => "last-known-good recorded",
        Action::Blocked => "revert withheld",
        Action::PrOpened => "revert pull request opened",
        Action::PrUpdated => "revert pull request updated",
        Action::AwaitingApproval => "awaiting approval",
        Action::None => "nothing to do",
        Action::Confirming => "waiting for the revert to be confirmed Healthy",
    };
    let _ = writeln!(out, "{}: {headline}", app.app);
    for warning in &app.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    if !app.reason.is_empty() {
        let _ = writeln!(out, "  {}", app.reason);
    }
    let short = |s: &str| s.get(..12).unwrap_or(s).to_owned();
    if let Some(d) = &app.deployed_revision {
        let _ = writeln!(out, "  deployed         {}", short(d));
    }
    match (&app.last_known_good, &app.last_known_good_source) {
        (Some(l), Some(src)) => {
            let _ = writeln!(out, "  last-known-good  {} (from {src})", short(l));
        }
        (Some(l), None) => {
            let _ = writeln!(out, "  last-known-good  {}", short(l));
        }
        (None, _) => {}
    }
    if !app.culprit_details.is_empty() {
        let _ = writeln!(out, "  culprits, newest first:");
        for c in &app.culprit_details {
            let merge = if c.is_merge { " (merge)" } else { "" };
            let _ = writeln!(out, "    {}  {}{merge}", c.sha.short(), c.subject);
            for f in &c.files {
                let _ = writeln!(out, "                  {f}");
            }
        }
    }
    for a in &app.already_reverted {
        let _ = writeln!(
            out,
            "  already reverted: {} by {}",
            a.culprit.short(),
            a.by.short()
        );
    }
    for f in &app.forged_reverts {
        let _ = writeln!(
            out,
            "  warning: {} carries revertbot's trailers but is not its revert: {} — judged like any other commit",
            f.commit.short(),
            f.reason
        );
    }
    if !app.pins.is_empty() {
        let _ = writeln!(out, "  pins:");
        for p in &app.pins {
            let _ = writeln!(
                out,
                "    {}:{}  {} -> {}",
                p.file, p.line, p.before, p.after
            );
        }
    }
    for m in &app.suspended_markers {
        let _ = writeln!(
            out,
            "  suspended image automation: {}:{} {}",
            m.file, m.line, m.marker
        );
    }
    for m in &app.pin_mismatches {
        let _ = writeln!(
            out,
            "  not pinned: {}:{} uses {} but last-known-good ran {}",
            m.file, m.line, m.found, m.recorded
        );
    }
    if !app.files_changed.is_empty() {
        let _ = writeln!(out, "  files:");
        for f in &app.files_changed {
            let _ = writeln!(out, "    {} {}", f.status, f.path);
        }
    }
    if !app.left_alone.is_empty() {
        let _ = writeln!(
            out,
            "  left as they are (the culprits changed them outside this app's paths):"
        );
        for f in &app.left_alone {
            let _ = writeln!(out, "    {} (in {})", f.line(), f.culprit.short());
        }
    }
    if let Some(commit) = &app.revert_commit {
        let _ = writeln!(out, "  revert commit    {commit}");
    }
    if let Some(incident) = &app.incident {
        let _ = writeln!(out, "  incident         {incident}");
    }
    if let Some(diff) = &app.diff {
        let _ = writeln!(out, "\n{diff}");
    }
}

/// A file a culprit changed that the revert does not touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftAlone {
    pub culprit: crate::domain::CommitSha,
    pub file: String,
    /// Configured apps whose paths match the file (empty: no app owns it).
    pub owners: Vec<String>,
}

impl LeftAlone {
    /// `path (billing)` / `path (no app)`, for the commit message.
    pub fn line(&self) -> String {
        if self.owners.is_empty() {
            format!("{} (no app)", self.file)
        } else {
            format!("{} ({})", self.file, self.owners.join(", "))
        }
    }
}
