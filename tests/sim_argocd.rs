//! The real Argo CD client against `sim`, the simulated controller: it
//! follows a branch of a bare repo, deploys new tips after polling (or at
//! once on refresh), resolves tags through its registry table, crash-loops
//! bad digests and reports Argo CD health like Argo CD would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions};
use revertbot::controller::sim::{ManualClock, Sim, SimApp, SimConfig, SimHandle, SimTiming};
use revertbot::controller::{AppRef, Controller, ControllerError, Detail};
use revertbot::domain::Digest;
use revertbot::domain::health::{Health, Observation, OperationPhase, SyncStatus};
use secrecy::SecretString;
use serde_json::Value;
use support::WorkRepo;
use support::fake_argocd::fixture;
use support::repo::{git_command, run};

const IMAGE: &str = "ghcr.io/acme/guestbook";

fn digest(byte: &str) -> Digest {
    format!("sha256:{}", byte.repeat(32)).parse().unwrap()
}

fn deployment(tag: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: guestbook-ui\nspec:\n  replicas: {replicas}\n  template:\n    spec:\n      containers:\n        - name: ui\n          image: {IMAGE}:{tag}\n"
    )
}

struct World {
    dev: WorkRepo,
    bare: tempfile::TempDir,
    sim: SimHandle,
    argo: ArgoCd,
    app: AppRef,
}

impl World {
    async fn start(timing: SimTiming, clock: Option<Arc<ManualClock>>) -> World {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dev = WorkRepo::init();
        dev.write("apps/guestbook/deployment.yaml", deployment("v1", 2));
        dev.write("apps/billing/deployment.yaml", "kind: ConfigMap\n");
        dev.commit("guestbook v1");
        let bare = tempfile::tempdir().unwrap();
        run(git_command(&dev.home(), 0)
            .args(["init", "--bare", "-q"])
            .arg(bare.path()));
        let world_push = bare.path().to_str().unwrap().to_owned();
        dev.git(&["push", "-q", &world_push, "HEAD:refs/heads/main"]);
        let mut config = SimConfig::new(
            bare.path(),
            "main",
            vec![SimApp::new("guestbook", &["apps/guestbook/**"])],
        );
        config.registry.insert(format!("{IMAGE}:v1"), digest("1a"));
        config.registry.insert(format!("{IMAGE}:v2"), digest("2b"));
        config.bad_digests.insert(digest("2b"));
        config.timing = timing;
        if let Some(c) = clock {
            config.clock = c;
        }
        let sim = Sim::start(config).await.unwrap();
        let options = ArgoCdOptions {
            max_retries: 1,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            ..ArgoCdOptions::default()
        };
        let argo = ArgoCd::new(&sim.url, SecretString::from(sim.token.clone()), options).unwrap();
        let app = sim.app_ref("guestbook");
        World {
            dev,
            bare,
            sim,
            argo,
            app,
        }
    }

    fn push(&self, path: &str, content: &str, message: &str) -> String {
        self.dev.write(path, content);
        let sha = self.dev.commit(message);
        self.dev.git(&[
            "push",
            "-q",
            self.bare_path().as_str(),
            "HEAD:refs/heads/main",
        ]);
        sha
    }

    fn bare_path(&self) -> String {
        self.bare.path().to_str().unwrap().to_owned()
    }

    async fn observe(&self) -> Observation {
        self.argo
            .observe(&self.app, Detail::WithPods)
            .await
            .unwrap()
    }

    /// Polls until `done` holds; the 30 s limit is a hang guard, not a
    /// timing claim.
    async fn until(&self, what: &str, done: impl Fn(&Observation) -> bool) -> Observation {
        let started = Instant::now();
        loop {
            let obs = self.observe().await;
            if done(&obs) {
                return obs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never {what}: {obs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn quick() -> SimTiming {
    SimTiming {
        poll_interval: Duration::from_millis(400),
        sync_duration: Duration::from_millis(100),
        rollout_time: Duration::from_millis(200),
        progress_deadline: Duration::from_millis(1500),
        crash_interval: Duration::from_millis(200),
    }
}

fn no_polling() -> SimTiming {
    SimTiming {
        poll_interval: Duration::from_secs(3600),
        ..quick()
    }
}

fn is(obs: &Observation, sha: &str) -> bool {
    obs.deployed.as_ref().is_some_and(|d| d.as_str() == sha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tip_at_start_is_deployed_and_healthy() {
    let w = World::start(quick(), None).await;
    let tip = w.dev.rev_parse("HEAD");
    let obs = w.observe().await;
    assert!(is(&obs, &tip), "{obs:#?}");
    assert_eq!(obs.target.as_ref().unwrap().as_str(), tip);
    assert_eq!(
        (obs.health, obs.sync),
        (Health::Healthy, SyncStatus::Synced)
    );
    assert_eq!(obs.history.len(), 1);
    assert_eq!(obs.source, "argocd:guestbook");
    assert_eq!(obs.pods.len(), 1);
    assert!(obs.pods[0].ready && obs.pods[0].current);
    assert_eq!(obs.live_digests(), [(format!("{IMAGE}:v1"), digest("1a"))]);
    // The summary of the one list call agrees.
    let all = w
        .argo
        .observe_all(std::slice::from_ref(&w.app))
        .await
        .unwrap();
    let summary = all[0].as_ref().unwrap();
    assert!(is(summary, &tip) && summary.health == Health::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tip_is_deployed_after_the_poll_delay() {
    let w = World::start(quick(), None).await;
    // No refresh is asked for: only the sim's own polling can deploy it.
    // (Whether a poll already happened right after the push depends on the
    // machine's load, so nothing is claimed about "not yet".)
    let new = w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v1", 3),
        "three replicas",
    );
    let obs = w.until("deployed", |o| is(o, &new)).await;
    assert_eq!(obs.history.len(), 2);
    assert_eq!(
        obs.operation.as_ref().unwrap().phase,
        OperationPhase::Succeeded
    );
    let obs = w.until("healthy", |o| o.health == Health::Healthy).await;
    assert!(obs.pods.iter().all(|p| p.current && p.ready));
    // A commit elsewhere in the repo moves the compared revision only.
    let other = w.push("apps/billing/deployment.yaml", "kind: Secret\n", "billing");
    let obs = w.argo.refresh(&w.app).await.unwrap();
    assert_eq!(obs.target.as_ref().unwrap().as_str(), other);
    assert!(is(&obs, &new) && obs.sync == SyncStatus::Synced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_picks_up_a_new_tip_at_once() {
    let w = World::start(no_polling(), None).await;
    let new = w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v1", 3),
        "three replicas",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!is(&w.observe().await, &new), "no polling for an hour");
    let obs = w.argo.refresh(&w.app).await.unwrap();
    assert_eq!(obs.target.as_ref().unwrap().as_str(), new);
    assert_eq!(obs.sync, SyncStatus::OutOfSync);
    let op = obs.operation.unwrap();
    assert_eq!(
        (op.phase, op.revision.unwrap().as_str()),
        (OperationPhase::Running, new.as_str())
    );
    let obs = w
        .until("deployed", |o| is(o, &new) && o.health == Health::Healthy)
        .await;
    assert_eq!(obs.sync, SyncStatus::Synced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_digest_crash_loops_progressing_then_degraded_and_a_revert_heals() {
    let start = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let w = World::start(no_polling(), Some(clock.clone())).await;
    let good = w.dev.rev_parse("HEAD");
    let bad = w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v2", 2),
        "guestbook v2",
    );
    w.argo.refresh(&w.app).await.unwrap();
    clock.advance(Duration::from_millis(150)); // sync done
    clock.advance(Duration::from_millis(400)); // two crashes
    let obs = w.observe().await;
    assert!(is(&obs, &bad));
    assert_eq!(obs.health, Health::Progressing);
    assert!(
        obs.health_message
            .as_ref()
            .unwrap()
            .contains("Waiting for rollout")
    );
    let (new, old): (Vec<_>, Vec<_>) = obs.pods.iter().partition(|p| p.current);
    assert_eq!(new[0].waiting[0].reason, "CrashLoopBackOff");
    assert!(new[0].restart_count >= 2 && !new[0].ready);
    assert_eq!(new[0].images[0].digest, Some(digest("2b")));
    assert!(old[0].ready, "the old ReplicaSet keeps serving");
    assert_eq!(old[0].images[0].digest, Some(digest("1a")));

    clock.advance(Duration::from_millis(1500)); // past the progress deadline
    let obs = w.observe().await;
    assert_eq!(obs.health, Health::Degraded);
    assert!(
        obs.health_message
            .unwrap()
            .contains("exceeded its progress deadline")
    );

    w.dev.git(&["revert", "--no-edit", &bad]);
    let revert = w.dev.rev_parse("HEAD");
    w.dev
        .git(&["push", "-q", w.bare_path().as_str(), "HEAD:refs/heads/main"]);
    let obs = w.argo.refresh(&w.app).await.unwrap();
    assert_eq!(obs.operation.unwrap().phase, OperationPhase::Running);
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        w.observe().await.health,
        Health::Progressing,
        "new pods starting"
    );
    clock.advance(Duration::from_millis(200));
    let obs = w.observe().await;
    assert!(is(&obs, &revert), "{obs:#?}");
    assert_eq!(
        (obs.health, obs.sync),
        (Health::Healthy, SyncStatus::Synced)
    );
    assert_eq!(obs.live_digests(), [(format!("{IMAGE}:v1"), digest("1a"))]);
    let revisions: Vec<&str> = obs.history.iter().map(|h| h.revision.as_str()).collect();
    assert_eq!(revisions, [good.as_str(), bad.as_str(), revert.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_pointed_tag_ships_whatever_it_points_at_now() {
    let w = World::start(no_polling(), None).await;
    w.sim.set_tag(&format!("{IMAGE}:v1"), digest("3c"));
    w.sim.mark_bad(digest("3c"));
    // Pods already running keep the bits they pulled.
    assert_eq!(w.observe().await.health, Health::Healthy);
    let new = w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v1", 4),
        "scale",
    );
    w.argo.refresh(&w.app).await.unwrap();
    let obs = w.until("rolled out", |o| is(o, &new)).await;
    let current = obs.pods.iter().find(|p| p.current).unwrap();
    assert_eq!(current.images[0].digest, Some(digest("3c")));
    assert_eq!(current.images[0].image, format!("{IMAGE}:v1"));
    w.until("crash looping", |o| {
        o.pods
            .iter()
            .any(|p| p.current && p.waiting.iter().any(|x| x.reason == "CrashLoopBackOff"))
    })
    .await;
    // An unknown tag does not pull.
    let unknown = w.push("apps/guestbook/deployment.yaml", &deployment("v9", 4), "v9");
    w.argo.refresh(&w.app).await.unwrap();
    let obs = w.until("pull failing", |o| is(o, &unknown)).await;
    let current = obs.pods.iter().find(|p| p.current).unwrap();
    assert!(matches!(
        current.waiting[0].reason.as_str(),
        "ErrImagePull" | "ImagePullBackOff"
    ));
    assert_eq!(current.images[0].digest, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_conflicts_and_terminate_a_stuck_operation() {
    let w = World::start(no_polling(), None).await;
    let good = w.dev.rev_parse("HEAD");
    w.sim.hold_operations("guestbook", true);
    let bad = w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v2", 2),
        "guestbook v2",
    );
    w.argo.refresh(&w.app).await.unwrap();
    let obs = w
        .until("retrying the held sync", |o| {
            o.operation.as_ref().is_some_and(|op| op.retry_count >= 1)
        })
        .await;
    let op = obs.operation.as_ref().unwrap();
    assert_eq!(op.phase, OperationPhase::Running);
    assert!(is(&obs, &good));
    let err = w
        .argo
        .sync(&w.app, &good.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::OperationInProgress { .. }),
        "{err:?}"
    );
    w.argo.terminate_operation(&w.app).await.unwrap();
    let obs = w.observe().await;
    assert_eq!(
        obs.operation.as_ref().unwrap().phase,
        OperationPhase::Failed
    );
    assert_eq!(
        obs.operation
            .as_ref()
            .unwrap()
            .revision
            .as_ref()
            .unwrap()
            .as_str(),
        bad
    );
    w.argo.terminate_operation(&w.app).await.unwrap(); // nothing running: fine
    w.sim.hold_operations("guestbook", false);
    // Auto-sync does not retry the terminated revision.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is(&w.observe().await, &good));
    assert_eq!(w.sim.deployed("guestbook").unwrap().as_str(), good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_missing_apps_answer_like_argocd() {
    let w = World::start(quick(), None).await;
    let wrong = ArgoCd::new(
        &w.sim.url,
        SecretString::from("nope"),
        ArgoCdOptions::default(),
    )
    .unwrap();
    let err = wrong.observe(&w.app, Detail::Summary).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Auth { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&w.sim.token));
    let ghost = AppRef::ArgoCd {
        app: "ghost".into(),
        name: "ghost".into(),
        namespace: None,
    };
    let err = w.argo.observe(&ghost, Detail::Summary).await.unwrap_err();
    assert!(matches!(err, ControllerError::NotFound { .. }), "{err:?}");
    let all = w.argo.observe_all(&[w.app.clone(), ghost]).await.unwrap();
    assert!(all[0].is_ok() && matches!(all[1], Err(ControllerError::NotFound { .. })));
}

/// Every field the sim emits exists in the real fixtures' shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_json_has_the_shapes_of_the_fixtures() {
    let w = World::start(no_polling(), None).await;
    w.push(
        "apps/guestbook/deployment.yaml",
        &deployment("v2", 2),
        "guestbook v2",
    );
    w.argo.refresh(&w.app).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http
            .get(format!("{}{path}", w.sim.url))
            .bearer_auth(&w.sim.token);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let app = get("/api/v1/applications/guestbook".into()).await;
    let tree = get("/api/v1/applications/guestbook/resource-tree".into()).await;
    let known = |files: &[&str]| {
        let mut set = BTreeSet::new();
        for f in files {
            paths(&fixture(f), "", &mut set);
        }
        set
    };
    check(
        &app,
        &known(&[
            "application.json",
            "application-progressing.json",
            "application-multisource.json",
        ]),
    );
    check(
        &tree,
        &known(&["resource-tree.json", "resource-tree-rollout-degraded.json"]),
    );
    let pod_files = [
        "resource-pod-docker-imageid.json",
        "resource-pod-containerd-imageid.json",
        "resource-pod-crashloop.json",
    ];
    let mut pod_known = BTreeSet::new();
    for f in pod_files {
        let pod: Value = serde_json::from_str(fixture(f)["manifest"].as_str().unwrap()).unwrap();
        paths(&pod, "", &mut pod_known);
    }
    for node in tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "Pod")
    {
        let r = get(format!(
            "/api/v1/applications/guestbook/resource?namespace={}&resourceName={}&version=v1&kind=Pod",
            node["namespace"].as_str().unwrap(),
            node["name"].as_str().unwrap()
        ))
        .await;
        let pod: Value = serde_json::from_str(r["manifest"].as_str().unwrap()).unwrap();
        check(&pod, &pod_known);
    }
}

fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn check(v: &Value, known: &BTreeSet<String>) {
    let mut mine = BTreeSet::new();
    paths(v, "", &mut mine);
    let extra: Vec<&String> = mine.difference(known).collect();
    assert!(extra.is_empty(), "fields not in the fixtures: {extra:#?}");
}
