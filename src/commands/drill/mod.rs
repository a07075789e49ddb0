//! `revertbot drill`: a game day in a sandbox on this machine — no cluster,
//! no accounts. A sandbox infra repo and remote, the simulated Argo CD, a
//! good release recorded with its digests, a bad release, the good tags then
//! re-pointed at bad builds (so only the recorded digests heal), and
//! revertbot's own `check` detecting, reverting and confirming Healthy.
//!
//! Two stages: the embedded guestbook ([`embedded`]), and a copy of the
//! user's own infra repo and config ([`on_repo`]), whose report also says
//! whether the app is ready for revertbot ([`readiness`]).

mod embedded;
mod game_day;
mod on_repo;
pub mod readiness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Serialize;

use crate::controller::argocd::{ArgoCd, ArgoCdOptions};
use crate::controller::sim::{Sim, SimConfig, SimHandle};
use crate::domain::Digest;
use crate::git::sandbox::Sandbox;
use crate::report::Report;

use super::controllers::Controllers;
use super::{CommandError, Globals, Result, exit};

pub use readiness::Readiness;

#[derive(Debug, Clone, Default)]
pub struct DrillArgs {
    /// Keep the sandbox (in this directory, or a new temp one) for inspection.
    pub keep: bool,
    pub dir: Option<PathBuf>,
    /// Rehearse on a copy of the user's repo and config instead of the
    /// embedded guestbook.
    pub on_repo: Option<OnRepo>,
}

/// `drill --app NAME [--repo PATH] [--config FILE]`.
#[derive(Debug, Clone)]
pub struct OnRepo {
    pub app: String,
    pub globals: Globals,
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
    /// The app rehearsed.
    pub app: String,
    /// The loop ran to Healthy (and, on a repo, the app is ready).
    pub passed: bool,
    pub steps: Vec<Step>,
    /// The bad release deployed → Healthy confirmed at the revert.
    pub breach_to_healthy_ms: Option<u64>,
    pub revert_commit: Option<String>,
    pub sandbox: String,
    pub kept: bool,
    /// Only for `--app`: is the app ready for revertbot, and if not, what
    /// to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// The `check` report of the run that reverted (or the last one).
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

/// The simulated controller, the sandbox config written for it, and the
/// client revertbot's `check` uses.
struct SimSetup {
    sim: SimHandle,
    globals: Globals,
    controllers: Controllers,
}

impl SimSetup {
    fn stage<'a>(
        &'a self,
        sandbox: &'a Sandbox,
        app: &'a str,
        controller_name: &'a str,
    ) -> game_day::Stage<'a> {
        game_day::Stage {
            globals: &self.globals,
            controllers: &self.controllers,
            sim: &self.sim,
            sandbox,
            app,
            controller_name,
        }
    }
}

/// Starts the simulated Argo CD, writes `config(url)` as the sandbox's
/// `revertbot.yaml`, and builds the client.
async fn start_sim(
    sim_config: SimConfig,
    root: &Path,
    sandbox: &Sandbox,
    config: impl FnOnce(&str) -> Result<String>,
) -> Result<SimSetup> {
    let sim = Sim::start(sim_config).await?;
    let config_path = root.join("revertbot.yaml");
    std::fs::write(&config_path, config(&sim.url)?).map_err(CommandError::io(format!(
        "writing {}",
        config_path.display()
    )))?;
    let argocd = ArgoCd::new(
        &sim.url,
        SecretString::from(sim.token.clone()),
        ArgoCdOptions::default(),
    )
    .map_err(|e| CommandError::Runtime(e.to_string()))?;
    Ok(SimSetup {
        sim,
        globals: Globals {
            config: config_path,
            repo: sandbox.checkout.clone(),
        },
        controllers: Controllers {
            argocd: Some(argocd),
            flux: None,
        },
    })
}

pub async fn run(args: &DrillArgs) -> Result<(DrillReport, u8)> {
    let mut timeline = Timeline::new();
    let (root, _temp) = sandbox_dir(args)?;
    let (app, played, readiness) = match &args.on_repo {
        None => (
            "guestbook".to_owned(),
            embedded::run(&root, &mut timeline).await?,
            None,
        ),
        Some(target) => {
            let (played, readiness) = on_repo::run(target, &root, &mut timeline).await?;
            (target.app.clone(), played, Some(readiness))
        }
    };
    if let Some(why) = &played.failure {
        tracing::error!("drill failed: {why}");
        timeline.step("failed", why.clone());
    }
    if args.keep {
        tracing::info!(sandbox = %root.display(), "sandbox kept for inspection");
    }
    let ready = readiness.as_ref().is_none_or(|r| r.ready);
    let passed = played.passed() && ready;
    let code = if passed {
        exit::OK
    } else if played.failure.is_none() && played.revert_commit.is_some() && !played.passed() {
        exit::UNCONFIRMED
    } else {
        exit::ERROR
    };
    let report = DrillReport {
        version: 1,
        app,
        passed,
        steps: timeline.steps,
        breach_to_healthy_ms: played.breach_to_healthy_ms,
        revert_commit: played.revert_commit,
        sandbox: root.display().to_string(),
        kept: args.keep,
        readiness,
        check: played.check,
    };
    Ok((report, code))
}

/// The sandbox directory: the given one, a kept temp dir, or a temp dir that
/// is removed when the returned guard drops.
fn sandbox_dir(args: &DrillArgs) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let io = |e: std::io::Error| CommandError::Io {
        what: "cannot create the drill sandbox".to_owned(),
        source: e,
    };
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
    if let Some(readiness) = &report.readiness {
        out.push('\n');
        out.push_str(&readiness::to_text(&report.app, readiness));
        out.push('\n');
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
