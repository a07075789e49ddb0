//! The revert tree and its commit message, and what a plan shows of them.

use crate::domain::ledger::{RecordedImage, incident_id};
use crate::domain::{CommitSha, ImageRef};
use crate::git::revert::{BuiltRevert, RevertSpec, Scope};
use crate::render::{CommitMessage, CulpritLine, Renderer};
use crate::report::{AppReport, PinnedImage};

use super::super::left_alone::{LeftAlone, MESSAGE_LIMIT, left_alone};
use super::super::locate::Located;
use super::super::{Result, Session};

/// A revert ready to commit.
pub(in crate::commands) struct Prepared {
    pub built: BuiltRevert,
    pub message: String,
    pub incident: String,
    pub pinned: Vec<RecordedImage>,
    /// What the culprits changed outside the app's paths, left as it is.
    pub left_alone: Vec<LeftAlone>,
    /// A repo template override that failed (the built-in was used).
    pub template_warnings: Vec<String>,
}

/// Builds the revert tree and its message.
pub(in crate::commands) fn prepare(
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

pub(in crate::commands) fn fill_plan(report: &mut AppReport, prepared: &Prepared) {
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
