//! `revertbot preflight`: the check on an infra pull request, before it
//! merges. For the changes between the merge base of base and head and the
//! head, and for every app whose paths they touch, it reports what would
//! make a later revert weaker or impossible:
//!
//! - image references the PR introduces with a mutable tag whose digest the
//!   ledger has not recorded (with the digest the registry resolves it to
//!   and the pinned form to write), or that cannot be resolved at all;
//! - a digest an earlier incident quarantined coming back (re-promotion),
//!   pinned directly or resolved from a tag;
//! - changed files no app owns, and files several apps own;
//! - image references revertbot cannot pin (template expressions, Helm
//!   values split into repository and tag that no `images.helm` rule
//!   describes, references the grammar rejects, sites the pinner refuses);
//! - commits of the PR whose changes span several apps' paths (or an app and
//!   files no app owns), which a later revert can undo only in part.
//!
//! The shell (this file, [`gather`], [`resolve`]) reads git, the ledger and
//! the registry; [`assess`] decides every finding and its severity as pure
//! functions over what was read; [`render`] turns the report into text,
//! JSON, GitHub annotations and a Markdown job summary. Nothing here prints.

mod assess;
mod gather;
mod images;
mod inspect;
mod render;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{FailOn, RevertScope};
use crate::domain::ledger::RecordedImage;
use crate::domain::{CommitSha, ImageRef};
use crate::git::AppPaths;
use crate::policy::Quarantined;

use super::{Globals, Result, Workspace};

pub use assess::{Check, Finding, Severity};
pub use resolve::Resolution;

use assess::{AppFacts, ChangedFile, CommitFacts, Input, LimitFacts};
use inspect::FileScan;

/// Exit code when a finding at or above the fail-on severity was found
/// (README "Exit codes", docs/DECISIONS.md): distinct from 1 (preflight
/// itself failed) so a required status check tells "fix the PR" from "the
/// check broke".
pub const EXIT_FINDINGS: u8 = 5;

/// The JSON document's `version`.
pub const REPORT_VERSION: u32 = 1;

/// Changed files examined; a PR changing more gets a `limit` finding.
pub const MAX_CHANGED_FILES: usize = 2_000;
/// Non-merge commits of the PR examined for the revert check.
pub const MAX_COMMITS: usize = 500;
/// Bytes of manifests read from git in one run (base and head versions).
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;
/// Distinct tags resolved in the registry in one run.
pub const MAX_TAGS: usize = 200;
/// Time for all registry calls together (each call also has its own
/// connect and read timeouts).
pub const REGISTRY_BUDGET: Duration = Duration::from_secs(60);

/// Paths no app needs to own: revertbot's own files and CI.
const EXEMPT_PREFIXES: &[&str] = &[".revertbot/", ".github/"];
const EXEMPT_FILES: &[&str] = &[crate::config::DEFAULT_FILE, super::check::FREEZE_FILE];

/// What `main` asks for.
#[derive(Debug, Clone, Default)]
pub struct PreflightArgs {
    /// Default: `repo.branch` on the remote, fetched.
    pub base: Option<String>,
    pub head: String,
    /// Default: the config's `preflight.fail_on`.
    pub fail_on: Option<FailOn>,
}

/// The preflight document (`--output json`). Fields are only ever added.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub base: String,
    pub head: String,
    pub merge_base: String,
    pub fail_on: FailOn,
    /// No finding at or above `fail_on`.
    pub passed: bool,
    /// Apps whose paths the changed files touch, in config order.
    pub apps: Vec<String>,
    pub files_changed: usize,
    pub commits_checked: usize,
    pub counts: Counts,
    /// Errors first, then by file and line.
    pub findings: Vec<Finding>,
    /// The config's warnings.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
}

impl Report {
    /// 0 when passed, [`EXIT_FINDINGS`] otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.passed {
            super::exit::OK
        } else {
            EXIT_FINDINGS
        }
    }

    pub fn to_text(&self) -> String {
        render::text(self)
    }

    pub fn to_json(&self) -> String {
        render::json(self)
    }

    /// One GitHub workflow command per finding (`::error file=…,line=…::…`),
    /// escaped so no finding can end its line or start another command.
    pub fn annotations(&self) -> Vec<String> {
        render::annotations(self)
    }

    /// The Markdown job summary (`$GITHUB_STEP_SUMMARY`).
    pub fn summary_markdown(&self) -> String {
        render::markdown(self)
    }
}

/// Runs the preflight. Git and the ledger are read on this thread (the
/// workspace is single-threaded); only the registry calls are awaited.
pub async fn run(globals: &Globals, args: &PreflightArgs) -> Result<Report> {
    let ws = Workspace::open(globals)?;
    let fail_on = args.fail_on.unwrap_or(ws.config.preflight.fail_on);
    // The ledger always; the base branch only when no base is given.
    ws.repo.fetch_notes(&ws.remote)?;
    let base = match &args.base {
        Some(rev) => ws.repo.resolve(rev)?,
        None => ws.repo.fetch_branch(&ws.remote, None)?.0,
    };
    let head = ws.repo.resolve(&args.head)?;
    let merge_base = gather::merge_base(&ws.repo, &base, &head)?;

    let mut apps = Vec::new();
    for app in &ws.config.apps {
        let session = ws.session(&app.name)?;
        apps.push(AppCtx {
            facts: AppFacts {
                name: app.name.clone(),
                scope: app.revert.scope,
                allow_outside: app.revert.allow_outside,
            },
            paths: session.paths()?.clone(),
            rules: session.pin_rules()?.clone(),
        });
    }
    let owners_of = |path: &str| -> Vec<String> {
        apps.iter()
            .filter(|a| a.paths.is_match(path))
            .map(|a| a.facts.name.clone())
            .collect()
    };

    let diff = gather::changed_files(&ws.repo, &merge_base, &head, MAX_CHANGED_FILES)?;
    let changed: Vec<ChangedFile> = diff
        .files
        .iter()
        .map(|c| ChangedFile {
            path: c.path.clone(),
            change: c.change,
            owners: owners_of(&c.path),
        })
        .collect();

    let history = gather::commits(&ws.repo, &merge_base, &head, MAX_COMMITS)?;
    let commits: Vec<CommitFacts> = history
        .commits
        .iter()
        .map(|c| CommitFacts {
            sha: c.sha.clone(),
            subject: c.subject.clone(),
            files: c.files.iter().map(|f| (f.clone(), owners_of(f))).collect(),
        })
        .collect();

    let mut budget = MAX_READ_BYTES;
    let mut over_budget = Vec::new();
    let mut scans: Vec<FileScan> = Vec::new();
    for file in &changed {
        if file.change == gather::Change::Deleted {
            continue;
        }
        for owner in &file.owners {
            let Some(app) = apps.iter().find(|a| &a.facts.name == owner) else {
                continue;
            };
            if !inspect::yaml_like(&file.path, &app.rules) {
                continue;
            }
            let head_blob = gather::read_blob(&ws.repo, &head, &file.path, &mut budget)?;
            let base_blob = gather::read_blob(&ws.repo, &merge_base, &file.path, &mut budget)?;
            let scan = match (&head_blob, &base_blob) {
                (gather::Blob::OverBudget(_), _) | (_, gather::Blob::OverBudget(_)) => {
                    over_budget.push(file.path.clone());
                    continue;
                }
                (gather::Blob::Text(head_text), base) => {
                    let base_text = match base {
                        gather::Blob::Text(t) => Some(t.as_str()),
                        _ => None,
                    };
                    inspect::inspect_change(&file.path, owner, base_text, head_text, &app.rules)
                }
                (other, _) => inspect::unreadable(&file.path, owner, other),
            };
            scans.push(scan);
        }
    }

    // Tags the PR introduces, resolved once each.
    let mut tags: Vec<ImageRef> = Vec::new();
    for site in scans.iter().flat_map(|s| &s.sites) {
        if site.reference.digest().is_none()
            && !tags
                .iter()
                .any(|t| t.original() == site.reference.original())
        {
            tags.push(site.reference.clone());
        }
    }
    let resolutions = resolve::resolve_all(tags, MAX_TAGS, REGISTRY_BUDGET).await;

    let (recorded, quarantine) = ledger(&ws)?;
    let exempt = exempt_paths(globals);
    let limits = LimitFacts {
        changed_total: diff.total,
        changed_checked: diff.files.len(),
        commits_total: history.total,
        commits_checked: history.commits.len(),
        over_budget,
        budget_bytes: MAX_READ_BYTES,
    };
    let app_facts: Vec<AppFacts> = apps.iter().map(|a| a.facts.clone()).collect();
    let findings = assess::assess(&Input {
        changed: &changed,
        scans: &scans,
        commits: &commits,
        apps: &app_facts,
        recorded: &recorded,
        quarantine: &quarantine,
        resolutions: &resolutions,
        exempt: &exempt,
        limits: &limits,
    });
    let touched: Vec<String> = apps
        .iter()
        .map(|a| a.facts.name.clone())
        .filter(|name| changed.iter().any(|c| c.owners.contains(name)))
        .collect();
    Ok(report(
        ReportHead {
            base,
            head,
            merge_base,
            fail_on,
            apps: touched,
            files_changed: diff.total,
            commits_checked: history.commits.len(),
            warnings: ws.config_warnings.to_vec(),
        },
        findings,
    ))
}

struct AppCtx {
    facts: AppFacts,
    paths: AppPaths,
    rules: crate::manifest::PinRules,
}

pub(crate) struct ReportHead {
    pub base: CommitSha,
    pub head: CommitSha,
    pub merge_base: CommitSha,
    pub fail_on: FailOn,
    pub apps: Vec<String>,
    pub files_changed: usize,
    pub commits_checked: usize,
    pub warnings: Vec<String>,
}

/// The report: findings sorted, counted, and judged against `fail_on`.
pub(crate) fn report(head: ReportHead, mut findings: Vec<Finding>) -> Report {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.line.cmp(&b.line))
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.message.cmp(&b.message))
    });
    findings.dedup();
    let counts = Counts {
        error: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        warning: findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
    };
    Report {
        version: REPORT_VERSION,
        base: head.base.to_string(),
        head: head.head.to_string(),
        merge_base: head.merge_base.to_string(),
        fail_on: head.fail_on,
        passed: assess::passes(&findings, head.fail_on),
        apps: head.apps,
        files_changed: head.files_changed,
        commits_checked: head.commits_checked,
        counts,
        findings,
        warnings: head.warnings,
    }
}

/// Every app's last-known-good images (newest record first) and every
/// incident's quarantined digests, with the app they belong to.
type Ledger = (
    HashMap<String, Vec<RecordedImage>>,
    Vec<(String, Quarantined)>,
);

fn ledger(ws: &Workspace) -> Result<Ledger> {
    let notes = ws.repo.all_notes(ws.repo.upstream_notes())?;
    let mut lkg: Vec<_> = notes.iter().flat_map(|(_, doc)| doc.lkg.iter()).collect();
    lkg.sort_by_key(|r| std::cmp::Reverse(r.recorded_at));
    let mut recorded: HashMap<String, Vec<RecordedImage>> = HashMap::new();
    for record in lkg {
        recorded
            .entry(record.app.as_str().to_owned())
            .or_default()
            .extend(record.images.iter().cloned());
    }
    let mut quarantine = Vec::new();
    for (_, doc) in &notes {
        for incident in &doc.incidents {
            for q in crate::policy::quarantine_from_incidents([incident]) {
                quarantine.push((incident.app.as_str().to_owned(), q));
            }
        }
    }
    Ok((recorded, quarantine))
}

/// Paths that need no owner: the config file (where `--config` puts it
/// inside the repo), `.revertbot.yaml`, `.revertbot-freeze`, and everything
/// under `.revertbot/` and `.github/`.
fn exempt_paths(globals: &Globals) -> Vec<String> {
    let mut exempt: Vec<String> = EXEMPT_FILES.iter().map(|s| (*s).to_owned()).collect();
    exempt.extend(EXEMPT_PREFIXES.iter().map(|s| (*s).to_owned()));
    if let Some(relative) = relative_to(&globals.config, &globals.repo) {
        exempt.push(relative);
    }
    exempt
}

fn relative_to(path: &Path, root: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => p.to_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether `path` needs no owner (`exempt` as built by [`exempt_paths`]:
/// entries ending in `/` are directories).
pub(crate) fn is_exempt(path: &str, exempt: &[String]) -> bool {
    exempt.iter().any(|e| {
        if e.ends_with('/') {
            path.starts_with(e.as_str())
        } else {
            path == e
        }
    })
}

/// `RevertScope` for messages.
pub(crate) fn scope_name(scope: RevertScope) -> &'static str {
    match scope {
        RevertScope::App => "app",
        RevertScope::Commits => "commits",
        RevertScope::Paths => "paths",
    }
}
