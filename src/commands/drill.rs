//! `revertbot drill`: a game day in a sandbox on this machine — no cluster,
//! no accounts. A temp infra repo and remote, the simulated Argo CD, a good
//! release recorded with its digest, a bad release whose mutable tag is then
//! re-pointed at a bad digest (so only the recorded digest heals it), and
//! revertbot's own `check` detecting, reverting and confirming Healthy.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Serialize;

use crate::controller::argocd::{ArgoCd, ArgoCdOptions};
use crate::controller::sim::{Sim, SimApp, SimConfig, SimTiming};
use crate::domain::Digest;
use crate::git::sandbox::Sandbox;
use crate::report::{Action, Report};

use super::check::{CheckArgs, run as check};
use super::controllers::Controllers;
use super::{CommandError, Globals, Result, exit};

const IMAGE: &str = "registry.drill.local/acme/guestbook";
/// How long the drill waits for the bad release to be caught and healed.
const DETECTION_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct DrillArgs {
    /// Keep the sandbox (in this directory, or a new temp one) for inspection.
    pub keep: bool,
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub detail: String,
    /// Since the drill started.
    pub at_ms: u64,
    /// Since the previous step.
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub version: u32,
    pub passed: bool,
    pub steps: Vec<Step>,
    /// The bad release deployed → Healthy confirmed at the revert.
    pub breach_to_healthy_ms: Option<u64>,
    pub revert_commit: Option<String>,
    pub sandbox: String,
    pub kept: bool,
    /// The `check` report of the run that reverted.
    pub check: Option<Report>,
}

struct Timeline {
    start: Instant,
    last: Instant,
    steps: Vec<Step>,
}

impl Timeline {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            steps: Vec::new(),
        }
    }

    fn step(&mut self, name: &str, detail: impl Into<String>) {
        self.step_at(name, detail, Instant::now());
    }

    /// A step that happened at `now` (inside a `check` call, placed with
    /// the report's own timings).
    fn step_at(&mut self, name: &str, detail: impl Into<String>, now: Instant) {
        let step = Step {
            name: name.to_owned(),
            detail: detail.into(),
            at_ms: ms(now - self.start),
            took_ms: ms(now - self.last),
        };
        tracing::info!(step = %step.name, detail = %step.detail, "drill");
        self.steps.push(step);
        self.last = now;
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn digest_of(label: &str) -> Result<Digest> {
    crate::registry::sha256_digest(label.as_bytes())
        .map_err(|e| CommandError::Usage(format!("drill digest: {e}")))
}

fn manifest(tag: &str) -> String {
    let template = r#"# The guestbook frontend (a drill sandbox).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  selector:
    matchLabels: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      containers:
        - name: ui
          image: IMAGE:TAG # {"$imagepolicy": "flux-system:guestbook"}
          ports:
            - containerPort: 80
"#;
    template.replace("IMAGE", IMAGE).replace("TAG", tag)
}

fn config(server: &str) -> String {
    let template = r#"version: 1
repo: { remote: origin, branch: main }
argocd: { server: "SERVER" }
apps:
  - name: guestbook
    paths: ["apps/guestbook/**"]
    argocd: { app: guestbook }
    health:
      controller: true
      pods: { crashloop: true, not_ready_for: 30s }
    policy: { critical: push, grace: 0s, cooldown: 10m }
    wait: { timeout: 40s }
"#;
    template.replace("SERVER", server)
}

pub async fn run(args: &DrillArgs) -> Result<(DrillReport, u8)> {
    let mut timeline = Timeline::new();
    let (root, _temp) = sandbox_dir(args)?;
    let sandbox = Sandbox::create(&root).map_err(|e| CommandError::Usage(e.to_string()))?;
    let good = sandbox
        .release(
            "guestbook: first release, v1",
            &[
                ("apps/guestbook/deployment.yaml", manifest("v1")),
                (
                    "apps/billing/deployment.yaml",
                    "image: registry.drill.local/acme/billing:2.3.0\n".to_owned(),
                ),
            ],
        )
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    sandbox
        .clone_checkout()
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    timeline.step(
        "sandbox",
        format!(
            "infra repo, remote and revertbot's checkout in {}",
            root.display()
        ),
    );

    let good_digest = digest_of("guestbook v1, the good build")?;
    let bad_digest = digest_of("guestbook v2, crashes on start")?;
    let repointed = digest_of("guestbook v1, rebuilt with the same bug")?;
    let mut sim_config = SimConfig::new(
        &sandbox.remote,
        "main",
        vec![SimApp::new("guestbook", &["apps/guestbook/**"])],
    );
    sim_config.registry = HashMap::from([
        (format!("{IMAGE}:v1"), good_digest.clone()),
        (format!("{IMAGE}:v2"), bad_digest.clone()),
    ]);
    sim_config.bad_digests = HashSet::from([bad_digest.clone(), repointed.clone()]);
    sim_config.timing = SimTiming {
        poll_interval: Duration::from_secs(1),
        sync_duration: Duration::from_millis(300),
        rollout_time: Duration::from_millis(800),
        // Longer than detection: the crash loop is caught first (fast failure).
        progress_deadline: Duration::from_secs(120),
        crash_interval: Duration::from_millis(400),
    };
    let sim = Sim::start(sim_config)
        .await
        .map_err(|e| CommandError::Usage(format!("starting the simulated controller: {e}")))?;
    let config_path = root.join("revertbot.yaml");
    std::fs::write(&config_path, config(&sim.url))
        .map_err(|e| CommandError::Usage(format!("writing {}: {e}", config_path.display())))?;
    let globals = Globals {
        config: config_path,
        repo: sandbox.checkout.clone(),
    };
    let argocd = ArgoCd::new(
        &sim.url,
        SecretString::from(sim.token.clone()),
        ArgoCdOptions::default(),
    )
    .map_err(|e| CommandError::Usage(e.to_string()))?;
    let controllers = Controllers {
        argocd: Some(argocd),
        flux: None,
    };
    timeline.step(
        "controller",
        format!(
            "simulated Argo CD on {} follows the remote; v1 is deployed",
            sim.url
        ),
    );

    // 1. Healthy: record the last-known-good with the digest the pods run,
    //    checking as `watch` would until the controller's health is fresh.
    let args_check = CheckArgs::default();
    let record_deadline = Instant::now() + Duration::from_secs(20);
    let lkg = loop {
        let outcome = check(&globals, &args_check, &controllers).await?;
        if let Some(app) = outcome
            .report
            .apps
            .first()
            .filter(|a| a.action == Action::Recorded)
        {
            break app.clone();
        }
        if Instant::now() > record_deadline {
            return failed(
                timeline,
                &root,
                args.keep,
                "the good release was not recorded as last-known-good",
                Some(outcome.report),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let pinned = lkg
        .pinned_images
        .first()
        .map(|p| format!("{} = {}", p.image, p.digest))
        .unwrap_or_default();
    timeline.step(
        "last-known-good",
        format!("{} recorded as last-known-good: {pinned}", good.short()),
    );

    // 2. The bad release, then the mutable tag v1 re-pointed at a bad build:
    //    a plain `git revert` to `:v1` would ship the bug again.
    let bad = sandbox
        .release(
            "guestbook: roll out v2",
            &[("apps/guestbook/deployment.yaml", manifest("v2"))],
        )
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    timeline.step(
        "bad release",
        format!("{} pushed: guestbook:v2", bad.short()),
    );
    sim.set_tag(&format!("{IMAGE}:v1"), repointed.clone());
    timeline.step(
        "tag re-pointed",
        format!(
            "{IMAGE}:v1 now points at a bad build {}",
            short_digest(&repointed)
        ),
    );

    let deadline = Instant::now() + DETECTION_LIMIT;
    while sim.deployed("guestbook").as_ref() != Some(&bad) {
        if Instant::now() > deadline {
            return failed(
                timeline,
                &root,
                args.keep,
                "the simulated controller never deployed the bad release",
                None,
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let onset = Instant::now();
    timeline.step(
        "breach onset",
        format!("{} deployed; its pods start crash-looping", bad.short()),
    );

    // 3. revertbot's loop, as `watch` runs it.
    let mut last = None;
    while Instant::now() < deadline {
        let check_started = Instant::now();
        let outcome = check(&globals, &args_check, &controllers).await?;
        let check_ended = Instant::now();
        let app = outcome.report.apps.first().cloned();
        if let Some(app) = &app
            && app.action == Action::Pushed
        {
            let commit = app.revert_commit.clone().unwrap_or_default();
            let detected = app
                .signals
                .first()
                .map(|s| s.detail.clone())
                .unwrap_or_default();
            // Inside that check: the decision came right before the revert
            // started; the push after `revert` ms; Healthy at the end.
            let timing =
                |key: &str| Duration::from_millis(app.timings_ms.get(key).copied().unwrap_or(0));
            let revert_started = check_ended
                .checked_sub(timing("revert_to_healthy"))
                .unwrap_or(check_started)
                .max(check_started);
            timeline.step_at("breach detected", detected, revert_started);
            let pins = app
                .pinned_images
                .iter()
                .map(|p| format!("{}@{}", p.image, short_digest_str(&p.digest)))
                .collect::<Vec<_>>()
                .join(", ");
            timeline.step_at(
                "revert pushed",
                format!("{} reverts {} and pins {pins}", short(&commit), bad.short()),
                (revert_started + timing("revert")).min(check_ended),
            );
            let healthy = app.healthy_confirmed;
            let breach_to_healthy = ms(check_ended - onset);
            if healthy {
                timeline.step_at(
                    "healthy",
                    format!("Argo CD reports Synced + Healthy at {}", short(&commit)),
                    check_ended,
                );
            }
            let deployed_ok =
                sim.deployed("guestbook").map(|d| d.to_string()) == Some(commit.clone());
            let report = DrillReport {
                version: 1,
                passed: healthy && deployed_ok,
                steps: timeline.steps,
                breach_to_healthy_ms: healthy.then_some(breach_to_healthy),
                revert_commit: Some(commit),
                sandbox: root.display().to_string(),
                kept: args.keep,
                check: Some(outcome.report),
            };
            let code = if report.passed {
                exit::OK
            } else {
                exit::UNCONFIRMED
            };
            keep_or_note(args.keep, &root);
            return Ok((report, code));
        }
        last = Some(outcome.report);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    failed(
        timeline,
        &root,
        args.keep,
        "revertbot did not revert the bad release in time",
        last,
    )
}

fn failed(
    timeline: Timeline,
    root: &std::path::Path,
    keep: bool,
    why: &str,
    check: Option<Report>,
) -> Result<(DrillReport, u8)> {
    tracing::error!("drill failed: {why}");
    keep_or_note(keep, root);
    let mut steps = timeline.steps;
    steps.push(Step {
        name: "failed".to_owned(),
        detail: why.to_owned(),
        at_ms: ms(timeline.start.elapsed()),
        took_ms: ms(timeline.last.elapsed()),
    });
    Ok((
        DrillReport {
            version: 1,
            passed: false,
            steps,
            breach_to_healthy_ms: None,
            revert_commit: None,
            sandbox: root.display().to_string(),
            kept: keep,
            check,
        },
        exit::ERROR,
    ))
}

fn keep_or_note(keep: bool, root: &std::path::Path) {
    if keep {
        tracing::info!(sandbox = %root.display(), "sandbox kept for inspection");
    }
}

/// The sandbox directory: the given one, a kept temp dir, or a temp dir that
/// is removed when the returned guard drops.
fn sandbox_dir(args: &DrillArgs) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let io =
        |e: std::io::Error| CommandError::Usage(format!("cannot create the drill sandbox: {e}"));
    if let Some(dir) = &args.dir {
        if dir.exists() && std::fs::read_dir(dir).map_err(io)?.next().is_some() {
            return Err(CommandError::Usage(format!(
                "{} is not empty — give a new or empty directory for the drill sandbox",
                dir.display()
            )));
        }
        return Ok((dir.clone(), None));
    }
    let temp = tempfile::Builder::new()
        .prefix("revertbot-drill-")
        .tempdir()
        .map_err(io)?;
    if args.keep {
        let path = temp.keep();
        return Ok((path, None));
    }
    Ok((temp.path().to_owned(), Some(temp)))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn short_digest(d: &Digest) -> String {
    short_digest_str(&d.to_string())
}

fn short_digest_str(d: &str) -> String {
    d.get(..19)
        .map(|s| format!("{s}…"))
        .unwrap_or_else(|| d.to_owned())
}

/// The timeline for people.
pub fn to_text(report: &DrillReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "revertbot drill — a game day in a sandbox (no cluster, no accounts)\n"
    );
    let _ = writeln!(
        out,
        "  {:>8}  {:>8}  {:<16} what happened",
        "at", "took", "step"
    );
    for s in &report.steps {
        let _ = writeln!(
            out,
            "  {:>7.2}s  {:>7.2}s  {:<16} {}",
            s.at_ms as f64 / 1000.0,
            s.took_ms as f64 / 1000.0,
            s.name,
            s.detail
        );
    }
    let _ = writeln!(out);
    match report.breach_to_healthy_ms {
        Some(ms) => {
            let _ = writeln!(
                out,
                "breach onset → Healthy confirmed: {:.2}s",
                ms as f64 / 1000.0
            );
        }
        None => {
            let _ = writeln!(out, "the drill did not reach Healthy");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if report.passed {
            "drill passed"
        } else {
            "drill FAILED"
        }
    );
    if report.kept {
        let _ = writeln!(
            out,
            "sandbox kept in {} (remote.git, infra/, dev/, revertbot.yaml)",
            report.sandbox
        );
    } else {
        let _ = writeln!(out, "sandbox removed (use --keep to inspect it)");
    }
    out
}
