//! `drill --app NAME`: the game day on a sandbox copy of the user's infra
//! repo and config. The sandbox remote gets the branch's history (nothing
//! else: no notes, so no last-known-good, no incidents); a simulated Argo CD
//! follows it and runs the app's real manifests, every tag resolved by a
//! simulated registry; the synthetic bad deploy pins one of the app's
//! images to a build that crashes; and revertbot's `check` runs as `watch`
//! would, with the user's settings for the app except those that would make
//! a rehearsal wait (grace, long timeouts) or not act (freeze, PR modes).
//! The report says whether the app is ready, and what to change if not.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use globset::GlobSet;

use crate::config::{self, Action as PolicyAction, AppArgoCd, AppConfig, ArgoCdConfig, Config};
use crate::controller::sim::{SimApp, SimConfig, SimTiming};
use crate::domain::{CommitSha, Digest, ImageRef};
use crate::git::sandbox::Sandbox;
use crate::manifest::{self, PinRules};

use super::super::check::FREEZE_FILE;
use super::super::{CommandError, Result};
use super::embedded::digest_of;
use super::game_day::{self, BadRelease, Played};
use super::readiness::{self, FileFacts, Finding, Level, LoopFacts, Readiness, RepoFacts};
use super::{OnRepo, Timeline, short_digest, start_sim};

/// The longest the rehearsal waits for Healthy after its revert.
const WAIT_LIMIT: Duration = Duration::from_secs(40);

pub(super) async fn run(
    target: &OnRepo,
    root: &Path,
    timeline: &mut Timeline,
) -> Result<(Played, Readiness)> {
    let loaded = config::load(&target.globals.config)?;
    let user = loaded.config;
    let index = user
        .apps
        .iter()
        .position(|a| a.name == target.app)
        .ok_or_else(|| CommandError::UnknownApp {
            name: target.app.clone(),
            config: target.globals.config.display().to_string(),
            known: user.apps.iter().map(|a| a.name.clone()).collect(),
        })?;
    let app = &user.apps[index];
    if git2::Repository::open(&target.globals.repo).is_err() {
        return Err(CommandError::Usage(format!(
            "{} is not a git checkout — pass the infra repo with --repo PATH",
            target.globals.repo.display()
        )));
    }
    let sandbox = Sandbox::import(root, &target.globals.repo, &user.repo.branch)?;
    let (source, tree) = sandbox.tree()?;
    let rules = super::super::pin_rules(app)?;
    let paths = app.path_matcher();
    let files = inspect_files(&sandbox, &source, &tree, &paths, &rules)?;
    let tree_paths: Vec<String> = tree.iter().map(|(p, _)| p.clone()).collect();
    let others: Vec<(String, GlobSet)> = user
        .apps
        .iter()
        .filter(|a| a.name != app.name)
        .map(|a| (a.name.clone(), a.path_matcher()))
        .collect();
    let freeze_file = tree_paths.iter().any(|p| p == FREEZE_FILE);
    let (mut checks, mut findings) = readiness::assess_repo(&RepoFacts {
        app,
        index,
        files: &files,
        tree: &tree_paths,
        others: &others,
        paths: &paths,
        freeze_file,
    });
    let own = format!("apps[{index}]");
    let file = target.globals.config.display().to_string();
    findings.extend(
        loaded
            .warnings
            .iter()
            .filter(|w| w.path.starts_with(&own) || !w.path.starts_with("apps["))
            .map(|w| Finding {
                level: Level::Warning,
                at: format!("{file}:{}:{}", w.line, w.column),
                problem: w.message.clone(),
                fix: w.hint.clone().unwrap_or_default(),
            }),
    );
    timeline.step(
        "sandbox",
        format!(
            "copied {} of {} at {} ({} files, {} in `{}`) into {}",
            user.repo.branch,
            target.globals.repo.display(),
            source.short(),
            tree.len(),
            files.len(),
            app.name,
            root.display()
        ),
    );

    let (played, loop_facts) = match bad_release(&sandbox, &source, &files, &rules, &others)? {
        None => {
            let why = "the drill found no image of the app it could change".to_owned();
            let played = Played {
                failure: Some(why.clone()),
                ..Played::default()
            };
            (
                played,
                LoopFacts {
                    not_run: Some(why),
                    ..LoopFacts::default()
                },
            )
        }
        Some(bad) => {
            let good = if freeze_file {
                let lifted = sandbox.commit_changes(
                    "drill: lift the freeze for the rehearsal",
                    &[],
                    &[FREEZE_FILE],
                )?;
                timeline.step(
                    "freeze lifted",
                    format!(
                        "{} removes {FREEZE_FILE} in the sandbox only",
                        lifted.short()
                    ),
                );
                lifted
            } else {
                source.clone()
            };
            sandbox.clone_checkout()?;
            rehearse(&sandbox, &user, app, &files, &good, bad, root, timeline).await?
        }
    };
    let (loop_checks, loop_findings) = readiness::assess_loop(&loop_facts, &files);
    checks.extend(loop_checks);
    findings.extend(loop_findings);
    let readiness = Readiness::new(source.to_string(), &files, checks, findings);
    timeline.step(
        "readiness",
        if readiness.ready {
            format!("`{}` is ready for revertbot", app.name)
        } else {
            format!(
                "`{}` is not ready: {} to fix",
                app.name,
                readiness
                    .findings
                    .iter()
                    .filter(|f| f.level == readiness::Level::Blocker)
                    .count()
                    .max(1)
            )
        },
    );
    Ok((played, readiness))
}

/// The app's files at `source`, each inspected (manifests over the size
/// bound are reported, not read).
fn inspect_files(
    sandbox: &Sandbox,
    source: &CommitSha,
    tree: &[(String, u64)],
    paths: &GlobSet,
    rules: &PinRules,
) -> Result<Vec<FileFacts>> {
    let mut out = Vec::new();
    for (path, size) in tree.iter().filter(|(p, _)| paths.is_match(p)) {
        if let Err(e) = manifest::check_size(path, *size) {
            out.push(FileFacts {
                path: path.clone(),
                error: Some(e.to_string()),
                ..FileFacts::default()
            });
            continue;
        }
        if !is_manifest(path) {
            out.push(FileFacts {
                path: path.clone(),
                skipped: Some("not a YAML file".to_owned()),
                ..FileFacts::default()
            });
            continue;
        }
        let bytes = sandbox.read(source, path)?.unwrap_or_default();
        match String::from_utf8(bytes) {
            Ok(text) => out.push(readiness::inspect(path, &text, rules)),
            Err(_) => out.push(FileFacts {
                path: path.clone(),
                skipped: Some("not UTF-8 text".to_owned()),
                ..FileFacts::default()
            }),
        }
    }
    Ok(out)
}

fn is_manifest(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml") || path.ends_with("/Kustomization")
}

/// The synthetic bad deploy: the first image of the app (in a file no other
/// app claims) pinned to a build that crashes.
fn bad_release(
    sandbox: &Sandbox,
    source: &CommitSha,
    files: &[FileFacts],
    rules: &PinRules,
    others: &[(String, GlobSet)],
) -> Result<Option<BadRelease>> {
    let registry = registry_table(files)?;
    for f in files {
        if others.iter().any(|(_, g)| g.is_match(&f.path)) {
            continue;
        }
        if f.sites.is_empty() {
            continue;
        }
        let bytes = sandbox.read(source, &f.path)?.unwrap_or_default();
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        for site in &f.sites {
            let bad = digest_of(&format!(
                "revertbot drill: {} crashes on start",
                site.reference
            ))?;
            let Ok(outcome) =
                manifest::pin(&f.path, &text, rules, &[site.reference.with_digest(&bad)])
            else {
                continue;
            };
            if outcome.pinned.is_empty() {
                continue;
            }
            let repoint = registry
                .keys()
                .map(|tag| {
                    digest_of(&format!("revertbot drill: {tag} rebuilt with a bug"))
                        .map(|d| (tag.clone(), d))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Some(BadRelease {
                message: format!(
                    "drill: deploy a build of {} that crashes on start",
                    site.reference
                ),
                files: vec![(f.path.clone(), outcome.content)],
                summary: format!(
                    "{}:{} {} → @{} (a build that crashes)",
                    f.path,
                    site.line,
                    site.reference,
                    short_digest(&bad)
                ),
                repoint,
            }));
        }
    }
    Ok(None)
}

/// `name:tag` → a good build's digest, for every tagged image of the app.
fn registry_table(files: &[FileFacts]) -> Result<HashMap<String, Digest>> {
    let mut table = HashMap::new();
    for site in files.iter().flat_map(|f| &f.sites) {
        if site.reference.digest().is_some() {
            continue;
        }
        let Some(tag) = site.reference.effective_tag() else {
            continue;
        };
        let key = format!("{}:{tag}", site.reference.name());
        if let std::collections::hash_map::Entry::Vacant(slot) = table.entry(key) {
            let digest = digest_of(&format!(
                "revertbot drill: the good build of {}",
                slot.key()
            ))?;
            slot.insert(digest);
        }
    }
    Ok(table)
}

#[allow(clippy::too_many_arguments)]
async fn rehearse(
    sandbox: &Sandbox,
    user: &Config,
    app: &AppConfig,
    files: &[FileFacts],
    good: &CommitSha,
    bad: BadRelease,
    root: &Path,
    timeline: &mut Timeline,
) -> Result<(Played, LoopFacts)> {
    let mut sim_app = SimApp::new(&app.name, &[]);
    sim_app.paths = app.paths.clone();
    sim_app.helm = app.images.helm.clone();
    let mut sim_config = SimConfig::new(&sandbox.remote, &sandbox.branch, vec![sim_app]);
    sim_config.registry = registry_table(files)?;
    let bad_digests: HashSet<Digest> = bad
        .repoint
        .iter()
        .map(|(_, d)| d.clone())
        .chain(
            bad.files
                .iter()
                .flat_map(|(path, content)| introduced_digests(path, content, app)),
        )
        .collect();
    sim_config.bad_digests = bad_digests;
    sim_config.timing = SimTiming {
        poll_interval: Duration::from_secs(1),
        sync_duration: Duration::from_millis(300),
        rollout_time: Duration::from_millis(800),
        // Short enough that an app judged by the controller alone (pod
        // checks off) is Degraded within the drill's detection limit.
        progress_deadline: Duration::from_secs(15),
        crash_interval: Duration::from_millis(400),
    };
    let drill_config = rehearsal_config(user, &app.name);
    // JSON is YAML: the config loader reads it like the user's file.
    let setup = start_sim(sim_config, root, sandbox, |url| {
        serde_json::to_string_pretty(&drill_config(url.to_owned()))
            .map_err(|e| CommandError::Runtime(format!("encoding the drill config: {e}")))
    })
    .await?;
    // The written config must load as the user's would.
    config::load(&setup.globals.config).map_err(|e| {
        CommandError::Runtime(format!("the drill's own config does not load (a bug): {e}"))
    })?;
    timeline.step(
        "controller",
        format!(
            "simulated Argo CD on {} follows the sandbox remote and runs `{}` at {}",
            setup.sim.url,
            app.name,
            good.short()
        ),
    );
    let stage = setup.stage(sandbox, &app.name, "the simulated Argo CD");
    let played = game_day::play(&stage, timeline, good, bad).await?;
    let recorded_images = played
        .recorded
        .iter()
        .flat_map(|r| &r.pinned_images)
        .filter_map(|p| p.image.parse::<ImageRef>().ok())
        .map(|r| r.normalized_name())
        .collect();
    let reverted = played
        .check
        .as_ref()
        .and_then(|c| c.apps.iter().find(|a| a.app == app.name));
    let loop_facts = LoopFacts {
        not_run: None,
        failure: played.failure.clone(),
        recorded_images,
        revert_commit: played.revert_commit.clone(),
        healthy: played.healthy && played.deployed_revert,
        pinned: reverted.is_some_and(|a| !a.pinned_images.is_empty()),
    };
    Ok((played, loop_facts))
}

/// The digests a bad release's file pins (the builds that crash).
fn introduced_digests(path: &str, content: &str, app: &AppConfig) -> Vec<Digest> {
    let Ok(rules) = super::super::pin_rules(app) else {
        return Vec::new();
    };
    manifest::scan(path, content, &rules)
        .map(|s| {
            s.sites
                .into_iter()
                .filter_map(|site| site.reference.digest().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// The user's config, rehearsal-ready for `app`: the simulated Argo CD as
/// its controller; the user's paths, pods checks, revert scope and image
/// rules kept; grace 0, the wait capped, the critical action `push`, no
/// freeze. Other apps stay as they are (ownership, and the files a revert
/// leaves alone); `check --app` never observes them. SLOs, alerts, GitHub
/// and Slack are not rehearsed.
fn rehearsal_config(user: &Config, app: &str) -> impl Fn(String) -> Config {
    let mut base = user.clone();
    base.repo.remote = "origin".to_owned();
    base.flux = None;
    base.prometheus = None;
    base.alertmanager = None;
    base.github = None;
    base.slack = None;
    base.approvals = None;
    for a in &mut base.apps {
        a.health.slos.clear();
        a.health.alerts = None;
        // Only critical breaches are rehearsed; a `warning: approve` would
        // only warn that approvals are not in this version yet.
        a.policy.warning = PolicyAction::Push;
        if a.name == app {
            a.flux = None;
            a.argocd = Some(AppArgoCd {
                app: app.to_owned(),
                namespace: None,
            });
            a.health.controller = true;
            a.policy.critical = PolicyAction::Push;
            a.policy.freeze = false;
            a.policy.grace = Duration::ZERO;
            a.wait.timeout = a.wait.timeout.min(WAIT_LIMIT);
        }
    }
    move |url: String| {
        let mut c = base.clone();
        c.argocd = Some(ArgoCdConfig { server: Some(url) });
        c
    }
}
