//! The decisions: which finding, with which severity, from what the shell
//! read. Pure functions over data; every rule is documented in the README
//! ("Preflight on infra pull requests") and unit-tested in `tests.rs`.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::{FailOn, RevertScope};
use crate::domain::CommitSha;
use crate::domain::ledger::RecordedImage;
use crate::policy::Quarantined;

use super::gather::Change;
use super::inspect::{FileScan, Problem};
use super::resolve::Resolution;
use super::{is_exempt, scope_name};

pub use super::images::image_finding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// What a finding is about; its JSON name is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A quarantined digest comes back.
    Repromotion,
    /// A mutable tag whose current digest the ledger has not recorded.
    MutableTag,
    /// A tag the ledger recorded at another digest than it resolves to now.
    TagMoved,
    /// The registry says the tag does not exist.
    MissingTag,
    /// The registry could not be asked or did not answer.
    UnresolvedTag,
    /// An image reference the grammar rejects.
    InvalidImage,
    /// A manifest revertbot cannot read.
    UnreadableManifest,
    /// A site the pinner refuses.
    UnpinnableImage,
    /// An image field holding a template expression.
    TemplatedImage,
    /// Helm values with `repository`/`tag` no `images.helm` rule covers.
    SplitImage,
    /// A changed file no app owns.
    UnownedFile,
    /// A changed file several apps own.
    SharedFile,
    /// A commit spanning several apps (or an app and unowned files).
    CrossAppCommit,
    /// A bound was hit: something was not checked.
    Limit,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Repromotion => "repromotion",
            Check::MutableTag => "mutable_tag",
            Check::TagMoved => "tag_moved",
            Check::MissingTag => "missing_tag",
            Check::UnresolvedTag => "unresolved_tag",
            Check::InvalidImage => "invalid_image",
            Check::UnreadableManifest => "unreadable_manifest",
            Check::UnpinnableImage => "unpinnable_image",
            Check::TemplatedImage => "templated_image",
            Check::SplitImage => "split_image",
            Check::UnownedFile => "unowned_file",
            Check::SharedFile => "shared_file",
            Check::CrossAppCommit => "cross_app_commit",
            Check::Limit => "limit",
        }
    }
}

/// One problem: where (repo-relative file, 1-based line), which app, what
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: Check,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub app: Option<String>,
    /// The commit, for findings about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub message: String,
}

impl Finding {
    pub(super) fn new(severity: Severity, check: Check, message: String) -> Self {
        Self {
            severity,
            check,
            file: None,
            line: None,
            app: None,
            commit: None,
            message,
        }
    }

    fn at(mut self, file: &str, line: Option<usize>) -> Self {
        self.file = Some(file.to_owned());
        self.line = line.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
        self
    }

    fn app(mut self, app: &str) -> Self {
        self.app = Some(app.to_owned());
        self
    }
}

/// A changed file and the apps whose paths match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: String,
    pub change: Change,
    pub owners: Vec<String>,
}

/// One of the PR's commits, each file with its owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFacts {
    pub sha: CommitSha,
    pub subject: String,
    pub files: Vec<(String, Vec<String>)>,
}

/// What an app's config says about its reverts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFacts {
    pub name: String,
    pub scope: RevertScope,
    pub allow_outside: bool,
}

/// How far the reads got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitFacts {
    pub changed_total: usize,
    pub changed_checked: usize,
    pub commits_total: usize,
    pub commits_checked: usize,
    /// Files not read because the byte budget ran out.
    pub over_budget: Vec<String>,
    pub budget_bytes: u64,
}

pub struct Input<'a> {
    pub changed: &'a [ChangedFile],
    pub scans: &'a [FileScan],
    pub commits: &'a [CommitFacts],
    pub apps: &'a [AppFacts],
    /// App → last-known-good images, newest first.
    pub recorded: &'a HashMap<String, Vec<RecordedImage>>,
    /// (app of the incident, quarantined digest).
    pub quarantine: &'a [(String, Quarantined)],
    /// Tag (as written) → what the registry said.
    pub resolutions: &'a HashMap<String, Resolution>,
    pub exempt: &'a [String],
    pub limits: &'a LimitFacts,
}

/// Every finding of the run.
pub fn assess(input: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(ownership(input.changed, input.exempt));
    for commit in input.commits {
        out.extend(cross_app(commit, input.apps, input.exempt));
    }
    let none = Vec::new();
    for scan in input.scans {
        let recorded = input.recorded.get(&scan.app).unwrap_or(&none);
        out.extend(file_findings(
            scan,
            recorded,
            input.quarantine,
            input.resolutions,
        ));
    }
    out.extend(limits(input.limits));
    out
}

/// Whether the check passes: no finding at or above `fail_on`.
pub fn passes(findings: &[Finding], fail_on: FailOn) -> bool {
    let threshold = match fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    findings.iter().all(|f| f.severity < threshold)
}

/// Unowned and shared files.
pub fn ownership(changed: &[ChangedFile], exempt: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in changed {
        match file.owners.as_slice() {
            [] if is_exempt(&file.path, exempt) => {}
            [] => out.push(
                Finding::new(
                    Severity::Warning,
                    Check::UnownedFile,
                    format!(
                        "no app's `paths` match this {} file: revertbot never finds a change here as a culprit, and no revert undoes it — if the file is deployed, add it to its app's `paths` in .revertbot.yaml",
                        change_word(file.change)
                    ),
                )
                .at(&file.path, None),
            ),
            [_] => {}
            several => out.push(
                Finding::new(
                    Severity::Warning,
                    Check::SharedFile,
                    format!(
                        "in the `paths` of {}: a revert of one of them changes what the others deploy — narrow the apps' `paths` so each file belongs to one app",
                        quoted_list(several)
                    ),
                )
                .at(&file.path, None),
            ),
        }
    }
    out
}

/// A commit whose files span several apps, or an app and files no app owns
/// (revertbot's own files aside): a later revert of one app can undo it
/// only in part. With the default `revert.scope: app` (or `paths`) the
/// revert leaves the other files as they are (a warning); with
/// `scope: commits` and no `allow_outside` it is refused (an error).
pub fn cross_app(commit: &CommitFacts, apps: &[AppFacts], exempt: &[String]) -> Vec<Finding> {
    let mut touched: Vec<&str> = Vec::new();
    let mut unowned: Vec<&str> = Vec::new();
    for (path, owners) in &commit.files {
        if owners.is_empty() {
            if !is_exempt(path, exempt) {
                unowned.push(path);
            }
            continue;
        }
        for owner in owners {
            if !touched.contains(&owner.as_str()) {
                touched.push(owner);
            }
        }
    }
    if touched.is_empty() || (touched.len() == 1 && unowned.is_empty()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for app in apps.iter().filter(|a| touched.contains(&a.name.as_str())) {
        let mine: Vec<&str> = commit
            .files
            .iter()
            .filter(|(_, owners)| owners.contains(&app.name))
            .map(|(p, _)| p.as_str())
            .collect();
        let others: Vec<&str> = commit
            .files
            .iter()
            .filter(|(path, owners)| {
                !(owners.contains(&app.name) || (owners.is_empty() && is_exempt(path, exempt)))
            })
            .map(|(p, _)| p.as_str())
            .collect();
        let mut outside = Vec::new();
        let other_apps: Vec<String> = touched
            .iter()
            .filter(|t| **t != app.name)
            .map(|t| (*t).to_owned())
            .collect();
        if !other_apps.is_empty() {
            outside.push(format!("files of {}", quoted_list(&other_apps)));
        }
        if !unowned.is_empty() {
            outside.push("files no app owns".to_owned());
        }
        let what = format!(
            "commit {} ({}) changes `{}` and also {} ({})",
            commit.sha.short(),
            commit.subject,
            app.name,
            outside.join(" and "),
            preview(&others)
        );
        let (severity, message) = if app.scope == RevertScope::Commits && !app.allow_outside {
            (
                Severity::Error,
                format!(
                    "{what}: with `revert.scope: commits` a later revert of `{}` would be refused — split the commit per app, or set the app's `revert.scope: app`",
                    app.name
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "{what}: a later revert of `{}` (`revert.scope: {}`) undoes its own files and leaves those as they are — split the commit per app so one revert undoes all of it",
                    app.name,
                    scope_name(app.scope)
                ),
            )
        };
        let mut finding = Finding::new(severity, Check::CrossAppCommit, message)
            .at(mine.first().copied().unwrap_or_default(), None)
            .app(&app.name);
        finding.commit = Some(commit.sha.to_string());
        out.push(finding);
    }
    out
}

/// The findings of one scanned file.
pub fn file_findings(
    scan: &FileScan,
    recorded: &[RecordedImage],
    quarantine: &[(String, Quarantined)],
    resolutions: &HashMap<String, Resolution>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |f: Finding, line: Option<usize>| f.at(&scan.path, line).app(&scan.app);
    match &scan.problem {
        Some(Problem::InvalidReference { line, message }) => out.push(at(
            Finding::new(
                Severity::Error,
                Check::InvalidImage,
                format!(
                    "revertbot cannot parse this image reference, so it cannot read this file's images and a revert of `{}` fails on it: {message}",
                    scan.app
                ),
            ),
            Some(*line),
        )),
        Some(Problem::Unreadable { line, message }) => out.push(at(
            Finding::new(Severity::Error, Check::UnreadableManifest, message.clone()),
            *line,
        )),
        None => {}
    }
    for site in &scan.sites {
        let resolution = site
            .reference
            .digest()
            .is_none()
            .then(|| resolutions.get(site.reference.original()))
            .flatten();
        if let Some(f) = image_finding(site, &scan.app, resolution, recorded, quarantine) {
            out.push(at(f, Some(site.line)));
        }
        if let Some((line, why)) = &site.unpinnable {
            out.push(at(
                Finding::new(
                    Severity::Error,
                    Check::UnpinnableImage,
                    format!(
                        "revertbot cannot pin `{}` here, so a revert of `{}` cannot restore its last-known-good digest: {why}",
                        site.reference, scan.app
                    ),
                ),
                Some(*line),
            ));
        }
    }
    for t in &scan.templated {
        out.push(at(
            Finding::new(
                Severity::Warning,
                Check::TemplatedImage,
                format!(
                    "the image is a template expression (`{}`): revertbot cannot tell which image runs, nor pin it — write the reference in the manifest, or set it in a values file described by the app's `images.helm`",
                    t.text
                ),
            ),
            Some(t.line),
        ));
    }
    for c in &scan.split {
        out.push(at(
            Finding::new(
                Severity::Warning,
                Check::SplitImage,
                format!(
                    "`{}` / `{}` look like an image ({}) split into repository and tag that no `images.helm` rule describes: revertbot does not see it, nor pin it — add to the app's `images.helm`: {{ files: [\"{}\"], repository: {}, tag: {} }}",
                    c.key("repository"),
                    c.key("tag"),
                    c.image,
                    scan.path,
                    c.key("repository"),
                    c.key("tag")
                ),
            ),
            Some(c.line),
        ));
    }
    out
}

/// A finding for each bound that was hit.
pub fn limits(l: &LimitFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if l.changed_total > l.changed_checked {
        out.push(Finding::new(
            Severity::Error,
            Check::Limit,
            format!(
                "the pull request changes {} files; preflight checked the first {} (by path) and not the rest — split the pull request",
                l.changed_total, l.changed_checked
            ),
        ));
    }
    if l.commits_total > l.commits_checked {
        out.push(Finding::new(
            Severity::Error,
            Check::Limit,
            format!(
                "the pull request has {} commits; preflight checked the newest {} for changes spanning apps and not the rest — split the pull request or squash it",
                l.commits_total, l.commits_checked
            ),
        ));
    }
    for path in &l.over_budget {
        out.push(
            Finding::new(
                Severity::Error,
                Check::Limit,
                format!(
                    "not checked: preflight reads at most {} MiB of manifests per run, and this file would pass that — split the pull request",
                    l.budget_bytes / (1024 * 1024)
                ),
            )
            .at(path, None),
        );
    }
    out
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Modified => "changed",
        Change::Deleted => "deleted",
    }
}

fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to three paths, then how many more.
fn preview(paths: &[&str]) -> String {
    let shown: Vec<&str> = paths.iter().take(3).copied().collect();
    match paths.len().saturating_sub(3) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}
