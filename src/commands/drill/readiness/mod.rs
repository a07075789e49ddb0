//! Is an app ready for revertbot? The verdict `drill --app` gives on a copy
//! of the user's repo: every image reference located and pinnable, digests
//! obtainable, paths owned by one app, revert clean, Healthy confirmed —
//! and, where not, what to change. Pure: facts gathered by the shell
//! ([`super::on_repo`]) in, checks and findings out.

mod inspect;
mod rehearsal;
#[cfg(test)]
mod tests;
mod text;

use globset::GlobSet;
use serde::Serialize;

use crate::config::{Action as PolicyAction, AppConfig};

pub use inspect::{FileFacts, HelmCandidate, KustomizeRef, Named, inspect};
pub use rehearsal::{LoopFacts, assess_loop};
pub use text::to_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// revertbot cannot protect the app until this is fixed.
    Blocker,
    /// revertbot works, but less well than it could.
    Warning,
    /// Worth knowing; nothing to fix.
    Note,
}

/// One thing to know or change. `at` is `file:line:col` in the repo or a
/// config key path (`apps[0].paths`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    pub at: String,
    pub problem: String,
    /// What to change; empty for notes that need nothing.
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not reached (an earlier step failed).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// An image reference found in the app's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatedImage {
    pub at: String,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// The commit of the user's repo the drill copied.
    pub source_revision: String,
    pub images: Vec<LocatedImage>,
    pub checks: Vec<CheckResult>,
    /// Blockers first.
    pub findings: Vec<Finding>,
}

impl Readiness {
    pub fn new(
        source_revision: String,
        files: &[FileFacts],
        checks: Vec<CheckResult>,
        mut findings: Vec<Finding>,
    ) -> Self {
        findings.sort_by_key(|f| match f.level {
            Level::Blocker => 0,
            Level::Warning => 1,
            Level::Note => 2,
        });
        let ready = checks.iter().all(|c| c.status == Status::Pass)
            && !findings.iter().any(|f| f.level == Level::Blocker);
        let images = files
            .iter()
            .flat_map(|f| {
                f.sites.iter().map(|s| LocatedImage {
                    at: format!("{}:{}:{}", f.path, s.line, s.column),
                    image: s.reference.to_string(),
                })
            })
            .collect();
        Self {
            ready,
            source_revision,
            images,
            checks,
            findings,
        }
    }
}

/// What the repo and config say, before anything runs.
pub struct RepoFacts<'a> {
    pub app: &'a AppConfig,
    /// Index in the config's `apps`, for key paths in fixes.
    pub index: usize,
    /// The app's files, inspected.
    pub files: &'a [FileFacts],
    /// Every file path of the repo at the copied revision.
    pub tree: &'a [String],
    /// The other apps: name and compiled paths.
    pub others: &'a [(String, GlobSet)],
    /// The app's compiled paths.
    pub paths: &'a GlobSet,
    /// A `.revertbot-freeze` file is in the repo.
    pub freeze_file: bool,
}

/// Checks and findings from the repo and config alone.
pub fn assess_repo(facts: &RepoFacts<'_>) -> (Vec<CheckResult>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut checks = Vec::new();
    let key = |k: &str| format!("apps[{}].{k}", facts.index);
    let name = &facts.app.name;

    checks.push(if facts.files.is_empty() {
        findings.push(Finding {
            level: Level::Blocker,
            at: key("paths"),
            problem: format!(
                "the paths of `{name}` ({}) match no file in the repo",
                facts.app.paths.join(", ")
            ),
            fix: "list the app's directories relative to the repo root, like `apps/guestbook/**`"
                .to_owned(),
        });
        fail("paths_match", "no file matches the app's paths")
    } else {
        pass(
            "paths_match",
            format!(
                "{} the app's paths",
                plural(facts.files.len(), "file matches", "files match")
            ),
        )
    });

    config_findings(facts, &key, &mut findings);
    let bases = kustomize_findings(facts, &key, &mut findings);
    helm_findings(facts, &key, &mut findings);

    let sites: usize = facts.files.iter().map(|f| f.sites.len()).sum();
    for f in facts.files {
        if let Some(e) = &f.error {
            findings.push(Finding {
                level: Level::Blocker,
                at: f.path.clone(),
                problem: format!("revertbot cannot read this manifest: {e}"),
                fix: "fix the file, or leave it out of the app's paths".to_owned(),
            });
        }
        for t in &f.templated {
            findings.push(Finding {
                level: Level::Warning,
                at: format!("{}:{}:{}", f.path, t.line, t.column),
                problem: format!(
                    "the image is a template expression (`{}`): revertbot cannot pin it",
                    t.text
                ),
                fix: format!(
                    "set the image in a values file and describe it with `{}`",
                    key("images.helm")
                ),
            });
        }
        for s in &f.sites {
            if matches!(s.reference.effective_tag(), Some("latest"))
                && s.reference.digest().is_none()
            {
                findings.push(Finding {
                    level: Level::Note,
                    at: format!("{}:{}:{}", f.path, s.line, s.column),
                    problem: format!(
                        "`{}` uses the `latest` tag: every push moves it, so only the recorded digest tells good from bad",
                        s.reference
                    ),
                    fix: "deploy immutable tags (a version or the commit); revertbot pins the digest either way".to_owned(),
                });
            }
        }
    }
    checks.push(if sites == 0 {
        let mut fix = String::from(
            "set the image in a manifest inside the app's paths (a container `image:`, a kustomization `images:` entry)",
        );
        if let Some(base) = bases.first() {
            fix = format!("add `{base}/**` to `{}` (the base sets the images)", key("paths"));
        } else if facts.files.iter().any(|f| !f.helm_candidates.is_empty()) {
            fix = format!("add the `{}` rule of the warning below", key("images.helm"));
        }
        findings.push(Finding {
            level: Level::Blocker,
            at: key("paths"),
            problem: format!("no image reference found in the files of `{name}`: a revert could not pin any digest, and the drill has nothing to break"),
            fix,
        });
        fail("images_located", "no image reference in the app's files")
    } else {
        pass("images_located", plural(sites, "image reference", "image references"))
    });

    let refused: Vec<&String> = facts.files.iter().flat_map(|f| &f.unpinnable).collect();
    for r in &refused {
        findings.push(Finding {
            level: Level::Blocker,
            at: r
                .split(' ')
                .next()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_owned(),
            problem: format!("revertbot cannot pin this image: {r}"),
            fix: "follow the hint in the message, then run the drill again".to_owned(),
        });
    }
    checks.push(if !facts.app.images.pin {
        fail(
            "images_pinnable",
            format!(
                "`{}` is false: reverts do not pin digests",
                key("images.pin")
            ),
        )
    } else if sites == 0 {
        skipped("images_pinnable", "no image to pin")
    } else if refused.is_empty() {
        pass(
            "images_pinnable",
            "every image reference can carry a digest",
        )
    } else {
        fail(
            "images_pinnable",
            format!("{} image references cannot be pinned", refused.len()),
        )
    });

    checks.push(ownership(facts, &key, &mut findings));
    (checks, findings)
}

fn config_findings(facts: &RepoFacts<'_>, key: &dyn Fn(&str) -> String, out: &mut Vec<Finding>) {
    let app = facts.app;
    if app.argocd.is_none() && app.flux.is_none() {
        out.push(Finding {
            level: Level::Blocker,
            at: key("argocd"),
            problem: format!("`{}` names no controller: revertbot cannot see its health, nor confirm Healthy after a revert", app.name),
            fix: format!(
                "add `{}: {{ app: <Application name> }}` or `{}: {{ kind: Kustomization, name: …, namespace: … }}`",
                key("argocd"),
                key("flux")
            ),
        });
    }
    if let Some(flux) = &app.flux {
        out.push(Finding {
            level: Level::Note,
            at: key("flux"),
            problem: format!(
                "the app is deployed by the Flux {:?} `{}`; the drill's controller is a simulated Argo CD: it rehearses revertbot's locate, revert, pin and confirm, not Flux itself",
                flux.kind, flux.name
            ),
            fix: String::new(),
        });
    }
    if !app.images.pin {
        out.push(Finding {
            level: Level::Blocker,
            at: key("images.pin"),
            problem: "digest pinning is off: a revert restores tags, and a tag re-pointed at a bad build ships it again (the drill re-points the good tags)".to_owned(),
            fix: format!("remove `{}` (pinning is on by default)", key("images.pin")),
        });
    }
    if app.policy.freeze || facts.freeze_file {
        let at = if app.policy.freeze {
            key("policy.freeze")
        } else {
            super::super::check::FREEZE_FILE.to_owned()
        };
        out.push(Finding {
            level: Level::Warning,
            at,
            problem: "reverts are frozen: `check` would hold every revert (the drill rehearsed as if unfrozen)".to_owned(),
            fix: "lift the freeze once the change window is over".to_owned(),
        });
    }
    if app.policy.critical != PolicyAction::Push {
        out.push(Finding {
            level: Level::Note,
            at: key("policy.critical"),
            problem: format!(
                "the drill pushed its revert; with this config a critical breach would `{}`",
                policy_action(app.policy.critical)
            ),
            fix: String::new(),
        });
    }
    if !app.health.slos.is_empty() || app.health.alerts.is_some() {
        out.push(Finding {
            level: Level::Note,
            at: key("health"),
            problem: "SLOs and alerts are not rehearsed: the drill's bad build crash-loops, which the controller and pods show".to_owned(),
            fix: String::new(),
        });
    }
    if !app.health.controller && !app.health.pods.crashloop && !app.health.pods.image_pull {
        out.push(Finding {
            level: Level::Blocker,
            at: key("health"),
            problem: "neither the controller's health nor pod failures count as a breach: nothing would trigger a revert".to_owned(),
            fix: format!("remove `{}` and `{}` (both are on by default)", key("health.controller"), key("health.pods")),
        });
    }
}

fn policy_action(a: PolicyAction) -> &'static str {
    match a {
        PolicyAction::Push => "push",
        PolicyAction::Pr => "pr",
        PolicyAction::PrAutomerge => "pr-automerge",
        PolicyAction::Approve => "approve",
    }
}

/// Kustomize bases outside the app's paths; returns them (repo-relative).
fn kustomize_findings(
    facts: &RepoFacts<'_>,
    key: &dyn Fn(&str) -> String,
    out: &mut Vec<Finding>,
) -> Vec<String> {
    let mut bases = Vec::new();
    for f in facts.files {
        let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
        for r in &f.kustomize_refs {
            let at = format!("{}:{}:{}", f.path, r.line, r.column);
            if r.entry.contains("://")
                || r.entry.starts_with("github.com/")
                || r.entry.starts_with("git@")
            {
                out.push(Finding {
                    level: Level::Note,
                    at,
                    problem: format!("`{}` is a remote base: its changes are not in this repo, so they are never culprits", r.entry),
                    fix: "pin the remote base to a tag or commit (`?ref=`)".to_owned(),
                });
                continue;
            }
            let Some(target) = join(dir, &r.entry) else {
                out.push(Finding {
                    level: Level::Warning,
                    at,
                    problem: format!("`{}` points outside the repo", r.entry),
                    fix: "keep kustomize resources inside the infra repo".to_owned(),
                });
                continue;
            };
            let under: Vec<&String> = facts
                .tree
                .iter()
                .filter(|p| **p == target || p.starts_with(&format!("{target}/")))
                .collect();
            if under.is_empty() {
                out.push(Finding {
                    level: Level::Warning,
                    at,
                    problem: format!("`{}` ({target}) is not in the repo", r.entry),
                    fix: "fix the kustomization's resource path".to_owned(),
                });
                continue;
            }
            if under.iter().any(|p| !facts.paths.is_match(p.as_str())) {
                let glob = if under.len() == 1 && *under[0] == target {
                    target.clone()
                } else {
                    format!("{target}/**")
                };
                out.push(Finding {
                    level: Level::Warning,
                    at,
                    problem: format!(
                        "the app builds on `{}` ({target}), outside its paths: a bad commit there breaks the app but is never found as the culprit, and images set there are not pinned",
                        r.entry
                    ),
                    fix: format!("add `{glob}` to `{}`", key("paths")),
                });
                if !bases.contains(&target) {
                    bases.push(target);
                }
            }
        }
    }
    bases
}

fn helm_findings(facts: &RepoFacts<'_>, key: &dyn Fn(&str) -> String, out: &mut Vec<Finding>) {
    for f in facts.files {
        for c in &f.helm_candidates {
            out.push(Finding {
                level: Level::Warning,
                at: format!("{}:{}:{}", f.path, c.line, c.column),
                problem: format!(
                    "`{}` / `{}` look like an image ({}) that no Helm rule covers: revertbot does not see it, nor pin it",
                    c.key("repository"),
                    c.key("tag"),
                    c.image
                ),
                fix: format!(
                    "add to `{}`: {{ files: [\"{}\"], repository: {}, tag: {} }}",
                    key("images.helm"),
                    f.path,
                    c.key("repository"),
                    c.key("tag")
                ),
            });
        }
        for r in &f.bare_helm_releases {
            out.push(Finding {
                level: Level::Note,
                at: format!("{}:{}:{}", f.path, r.line, r.column),
                problem: format!(
                    "HelmRelease `{}` sets no image in `spec.values`: the chart's default image runs, and revertbot can pin only images the repo sets",
                    r.name
                ),
                fix: format!(
                    "set the chart's image values (often `spec.values.image.repository` and `spec.values.image.tag`) and describe them in `{}`",
                    key("images.helm")
                ),
            });
        }
    }
}

fn ownership(
    facts: &RepoFacts<'_>,
    key: &dyn Fn(&str) -> String,
    out: &mut Vec<Finding>,
) -> CheckResult {
    let mut shared = 0;
    for f in facts.files {
        let owners: Vec<&str> = facts
            .others
            .iter()
            .filter(|(_, globs)| globs.is_match(&f.path))
            .map(|(n, _)| n.as_str())
            .collect();
        if owners.is_empty() {
            continue;
        }
        shared += 1;
        out.push(Finding {
            level: Level::Blocker,
            at: f.path.clone(),
            problem: format!(
                "also in the paths of {}: a revert of `{}` would change what they deploy",
                owners
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                facts.app.name
            ),
            fix: format!(
                "narrow `{}` or the other app's paths so each file belongs to one app",
                key("paths")
            ),
        });
    }
    if shared == 0 {
        pass("paths_owned", "no other app claims the app's files")
    } else {
        fail(
            "paths_owned",
            format!("{shared} files are claimed by other apps too"),
        )
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `dir` joined with a relative `entry`, `..` resolved; `None` when it
/// climbs out of the repo.
fn join(dir: &str, entry: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in entry.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn pass(name: &str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status: Status::Pass,
        detail: detail.into(),
    }
}

fn fail(name: &str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status: Status::Fail,
        detail: detail.into(),
    }
}

fn skipped(name: &str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        status: Status::Skipped,
        detail: detail.into(),
    }
}
