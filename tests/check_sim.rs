#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot check` end to end against the simulated Argo CD (the real
//! Argo CD client talks to it): the binary, a real remote over smart HTTP,
//! the sim following that remote.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::argocd_sim::{Setup, setup_with};
use support::infra::{Sandbox, good_digest};

/// Only paths and the controller (plus a short wait, so the unhealed case
/// ends quickly): the protective defaults (pod fast failure on, the grace
/// period holding only controller health) must catch the crash loop.
const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    wait: { timeout: 6s }
";

async fn setup(heals: bool, rollout_time: Duration) -> Setup {
    setup_with(heals, rollout_time, || Sandbox::with_config(CONFIG)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_is_reverted_once_and_healthy_is_confirmed_through_argo_cd() {
    let s = setup(true, Duration::from_millis(300)).await;
    s.until_crash_looping().await;
    let report = s.check(&[0]).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(
        s.sim
            .as_ref()
            .unwrap()
            .deployed("guestbook")
            .unwrap()
            .as_str(),
        revert
    );
    // Healthy at the revert: no second revert.
    let again = s.check(&[0]).await;
    assert_ne!(again["apps"][0]["action"], "pushed", "{again}");
    assert_eq!(s.sb.remote_reverts(), vec![revert]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_that_does_not_heal_exits_3_and_is_never_repeated() {
    let s = setup(false, Duration::from_millis(300)).await;
    s.until_crash_looping().await;
    let report = s.check(&[3]).await;
    assert_eq!(report["apps"][0]["action"], "pushed", "{report}");
    assert_eq!(report["apps"][0]["healthy_confirmed"], false);
    // Still crashing at revertbot's own revert (loop guard: exit 4) or the
    // revert not deployed yet (exit 0): never a second revert.
    let again = s.check(&[0, 4]).await;
    assert_ne!(again["apps"][0]["action"], "pushed", "{again}");
    assert_eq!(s.sb.remote_reverts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_is_down_means_no_revert_and_exit_1() {
    let mut s = setup(true, Duration::from_millis(300)).await;
    s.until_crash_looping().await;
    drop(s.sim.take()); // the controller goes away
    let before = s.sb.remote_tip();
    let report = s.check(&[1]).await;
    let reason = report["apps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&s.url),
        "the message names the server: {reason}"
    );
    assert_eq!(s.sb.remote_tip(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_still_progressing_within_its_window_is_not_reverted() {
    // A healthy change rolling out slowly: Progressing, pods not Ready yet.
    let s = setup(true, Duration::from_secs(60)).await;
    let sb = Arc::clone(&s.sb);
    let pushed = tokio::task::spawn_blocking(move || {
        let manifest = support::infra::DEPLOY_V1.replace("replicas: 2", "replicas: 3");
        sb.dev.write("apps/guestbook/deployment.yaml", manifest);
        sb.dev.commit("guestbook: back to v1, three replicas");
        sb.dev.push(&["main"]);
        sb.remote_tip()
    })
    .await
    .unwrap();
    let sim = s.sim.as_ref().unwrap();
    for _ in 0..600 {
        if sim.deployed("guestbook").map(|d| d.to_string()) == Some(pushed.clone()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = s.check(&[0]).await;
    assert_ne!(report["apps"][0]["verdict"], "breach", "{report}");
    assert_eq!(report["apps"][0]["action"], "none", "{report}");
    assert!(s.sb.remote_reverts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_on_a_bad_deploy_do_not_trip_the_loop_guard() {
    let s = setup(true, Duration::from_millis(300)).await;
    // The deployed revision claims to be revertbot's revert of the bad
    // release but still runs it (scaled up): the loop guard must not hold.
    let sb = Arc::clone(&s.sb);
    let forger = tokio::task::spawn_blocking(move || {
        let manifest = sb
            .remote_file(&sb.bad, "apps/guestbook/deployment.yaml")
            .replace("replicas: 2", "replicas: 3");
        sb.dev.write("apps/guestbook/deployment.yaml", manifest);
        sb.dev.commit(&format!(
            "revertbot: revert guestbook\n\nRevertbot-App: guestbook\nRevertbot-Incident: guestbook-forged\nRevertbot-Reverts: {}\n",
            sb.bad
        ));
        sb.dev.push(&["main"]);
        sb.remote_tip()
    })
    .await
    .unwrap();
    let sim = s.sim.as_ref().unwrap();
    for _ in 0..600 {
        if sim.deployed("guestbook").map(|d| d.to_string()) == Some(forger.clone()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.until_crash_looping().await;
    let report = s.check(&[0, 3, 4]).await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(
        app["culprits"],
        serde_json::json!([forger, s.sb.bad]),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_revert_waits_until_argo_cd_reports_it_healthy() {
    let s = setup(true, Duration::from_millis(300)).await;
    let bad = s.sb.bad.clone();
    let report = s
        .run(
            &[
                "--output",
                "json",
                "revert",
                "--app",
                "guestbook",
                "--deployed",
                &bad,
                "--reason",
                "v2 is broken",
            ],
            &[0],
        )
        .await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let revert = app["revert_commit"].as_str().unwrap();
    assert_eq!(
        s.sim
            .as_ref()
            .unwrap()
            .deployed("guestbook")
            .unwrap()
            .as_str(),
        revert
    );
}

/// The done-when of the trust issue on Argo CD: a minimal config, a bad
/// commit that also touches another app and a shared chart, reverted for the
/// broken app only, the digest pinned, Healthy confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monorepo_culprit_is_reverted_for_the_broken_app_only_and_healthy_is_confirmed() {
    // Nothing but the paths and the controller reference.
    const MINIMAL: &str = "version: 1\napps:\n  - name: guestbook\n    paths: [\"apps/guestbook/**\"]\n    argocd: { app: guestbook }\n";
    let s = setup_with(true, Duration::from_millis(300), || {
        Sandbox::with_multi_app_culprit(MINIMAL)
    })
    .await;
    s.until_crash_looping().await;
    let report = s.check(&[0]).await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let revert = app["revert_commit"].as_str().unwrap();
    let manifest = s.sb.remote_file(revert, "apps/guestbook/deployment.yaml");
    assert!(
        manifest.contains(&format!("ghcr.io/acme/guestbook:v1@{}", good_digest())),
        "{manifest}"
    );
    assert!(
        s.sb.remote_file(revert, "apps/billing/deployment.yaml")
            .contains("2.4.0"),
        "billing keeps the culprit's change"
    );
    assert_eq!(app["left_alone"].as_array().unwrap().len(), 2, "{report}");
}
