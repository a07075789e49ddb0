//! The game day itself, the same on the embedded sandbox and on a copy of
//! the user's repo: record the good release as last-known-good, push a bad
//! release, re-point the good tags at bad builds (so only the recorded
//! digests heal), and run revertbot's `check` as `watch` would until the
//! revert is pushed and the controller confirms Healthy.

use std::time::{Duration, Instant};

use crate::controller::sim::SimHandle;
use crate::domain::{CommitSha, Digest};
use crate::git::sandbox::Sandbox;
use crate::report::{Action, AppReport, Report};

use super::super::check::{CheckArgs, run as check};
use super::super::controllers::Controllers;
use super::super::{Globals, Result};
use super::{Timeline, ms, short, short_digest, short_digest_str};

/// How long the drill waits for the bad release to be caught and healed.
const DETECTION_LIMIT: Duration = Duration::from_secs(60);
/// How long the good release may take to be recorded.
const RECORD_LIMIT: Duration = Duration::from_secs(20);
/// Between two checks, as a short `watch --interval`.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Where the game day is played.
pub(super) struct Stage<'a> {
    pub globals: &'a Globals,
    pub controllers: &'a Controllers,
    pub sim: &'a SimHandle,
    pub sandbox: &'a Sandbox,
    pub app: &'a str,
    /// What the controller is called in the timeline ("Argo CD").
    pub controller_name: &'a str,
}

/// The synthetic bad deploy.
pub(super) struct BadRelease {
    pub message: String,
    /// Repo-relative path → new content.
    pub files: Vec<(String, String)>,
    /// For the timeline: what the release ships (`guestbook:v2`).
    pub summary: String,
    /// Mutable tags (`name:tag`) re-pointed at a bad build once the good
    /// release is recorded: a plain `git revert` would ship them again.
    pub repoint: Vec<(String, Digest)>,
}

/// How the game day went.
#[derive(Default)]
pub(super) struct Played {
    /// The `check` entry that recorded the last-known-good.
    pub recorded: Option<AppReport>,
    /// The `check` report of the run that reverted (or the last one).
    pub check: Option<Report>,
    pub revert_commit: Option<String>,
    pub healthy: bool,
    /// The controller runs the revert commit at the end.
    pub deployed_revert: bool,
    pub breach_to_healthy_ms: Option<u64>,
    /// Why the game day stopped short, when it did.
    pub failure: Option<String>,
}

impl Played {
    fn failed(mut self, why: &str, check: Option<Report>) -> Self {
        self.failure = Some(why.to_owned());
        if check.is_some() {
            self.check = check;
        }
        self
    }

    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.healthy && self.deployed_revert
    }
}

fn only_app<'r>(report: &'r Report, app: &str) -> Option<&'r AppReport> {
    report.apps.iter().find(|a| a.app == app)
}

pub(super) async fn play(
    stage: &Stage<'_>,
    timeline: &mut Timeline,
    good: &CommitSha,
    bad: BadRelease,
) -> Result<Played> {
    let mut played = Played::default();
    let args = CheckArgs {
        app: Some(stage.app.to_owned()),
        dry_run: false,
    };

    // 1. Healthy: record the last-known-good with the digests the pods run,
    //    checking as `watch` would until the controller's health is fresh.
    let record_deadline = Instant::now() + RECORD_LIMIT;
    let recorded = loop {
        let outcome = check(stage.globals, &args, stage.controllers).await?;
        if let Some(app) =
            only_app(&outcome.report, stage.app).filter(|a| a.action == Action::Recorded)
        {
            break app.clone();
        }
        if Instant::now() > record_deadline {
            return Ok(played.failed(
                "the good release was not recorded as last-known-good",
                Some(outcome.report),
            ));
        }
        tokio::time::sleep(CHECK_INTERVAL).await;
    };
    let pinned = recorded
        .pinned_images
        .iter()
        .map(|p| format!("{} = {}", p.image, short_digest_str(&p.digest)))
        .collect::<Vec<_>>()
        .join(", ");
    timeline.step(
        "last-known-good",
        format!(
            "{} recorded as last-known-good: {}",
            good.short(),
            if pinned.is_empty() {
                "no image digests"
            } else {
                &pinned
            }
        ),
    );
    played.recorded = Some(recorded);

    // 2. The bad release, then the good tags re-pointed at bad builds.
    let files: Vec<(&str, String)> = bad
        .files
        .iter()
        .map(|(path, content)| (path.as_str(), content.clone()))
        .collect();
    let bad_sha = stage.sandbox.release(&bad.message, &files)?;
    timeline.step(
        "bad release",
        format!("{} pushed: {}", bad_sha.short(), bad.summary),
    );
    for (tag, digest) in &bad.repoint {
        stage.sim.set_tag(tag, digest.clone());
    }
    if !bad.repoint.is_empty() {
        let tags = bad
            .repoint
            .iter()
            .map(|(tag, digest)| {
                format!("{tag} now points at a bad build {}", short_digest(digest))
            })
            .collect::<Vec<_>>()
            .join("; ");
        timeline.step("tag re-pointed", tags);
    }

    let deadline = Instant::now() + DETECTION_LIMIT;
    while stage.sim.deployed(stage.app).as_ref() != Some(&bad_sha) {
        if Instant::now() > deadline {
            return Ok(played.failed(
                "the simulated controller never deployed the bad release",
                None,
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let onset = Instant::now();
    timeline.step(
        "breach onset",
        format!("{} deployed; its pods start crash-looping", bad_sha.short()),
    );

    // 3. revertbot's loop, as `watch` runs it.
    let mut last = None;
    while Instant::now() < deadline {
        let check_started = Instant::now();
        let outcome = check(stage.globals, &args, stage.controllers).await?;
        let check_ended = Instant::now();
        let Some(app) = only_app(&outcome.report, stage.app)
            .filter(|a| a.action == Action::Pushed)
            .cloned()
        else {
            last = Some(outcome.report);
            tokio::time::sleep(CHECK_INTERVAL).await;
            continue;
        };
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
            format!(
                "{} reverts {} and pins {}",
                short(&commit),
                bad_sha.short(),
                if pins.is_empty() { "no image" } else { &pins }
            ),
            (revert_started + timing("revert")).min(check_ended),
        );
        played.healthy = app.healthy_confirmed;
        if played.healthy {
            timeline.step_at(
                "healthy",
                format!(
                    "{} reports Synced + Healthy at {}",
                    stage.controller_name,
                    short(&commit)
                ),
                check_ended,
            );
            played.breach_to_healthy_ms = Some(ms(check_ended - onset));
        }
        played.deployed_revert =
            stage.sim.deployed(stage.app).map(|d| d.to_string()) == Some(commit.clone());
        played.revert_commit = Some(commit);
        played.check = Some(outcome.report);
        return Ok(played);
    }
    Ok(played.failed("revertbot did not revert the bad release in time", last))
}
