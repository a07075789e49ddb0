#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot check` end to end against a Flux app: the real binary, a real
//! remote over smart HTTP, and the strict fake Kubernetes API.

mod support;

use serde_json::json;
use support::fake_kube::{Echo, Fault};
use support::flux_check::{
    BAD_DIGEST, HASH_BAD, IMAGE_V1, IMAGE_V2, Setup, Wait, setup as setup_with,
};
use support::flux_objects::{KsState, kustomization, kustomization_in, workload};
use support::infra::{REMOTE, good_digest};

/// Flux runs the guestbook Kustomization without `wait` or `healthChecks`
/// (Ready as soon as the apply succeeds); only the pods tell a bad rollout.
const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    flux: { kind: Kustomization, name: guestbook, namespace: flux-system }
    health:
      controller: true
      pods: { crashloop: true, not_ready_for: 1m }
    policy: { critical: push, grace: 0s, cooldown: 30m }
    wait: { timeout: 8s }
";

async fn setup() -> Setup {
    setup_with(CONFIG).await
}

/// `wait: false`: the bad revision applied and Ready at once, its pods
/// crash-looping.
fn deploy_bad_crashlooping(s: &Setup) {
    s.deploy_bad_crashlooping(KsState::NoWait(&s.sb.bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_app_is_recorded_as_last_known_good_with_its_live_digest() {
    let s = setup().await;
    s.deploy_good();
    let report = s.check(0).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "healthy", "{report}");
    assert_eq!(app["action"], "recorded", "{report}");
    assert_eq!(app["pinned_images"][0]["digest"], good_digest().as_str());
    let note =
        s.sb.remote_note(&s.sb.good)
            .expect("LKG note on the good revision");
    assert_eq!(note["lkg"][0]["source"], "controller");
    assert_eq!(note["lkg"][0]["images"][0]["image"], IMAGE_V1);
    // Once recorded, a second check writes nothing.
    let notes = s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let again = s.check(0).await;
    assert_eq!(again["apps"][0]["action"], "none", "{again}");
    assert_eq!(s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot"), notes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_reverted_once_and_healthy_is_confirmed() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await; // records the LKG from the live pods
    deploy_bad_crashlooping(&s);
    s.apply_the_tip_on_reconcile(Wait::No);
    let report = s.check(0).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    assert_eq!(app["culprits"], json!([s.sb.bad]));
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(s.sb.remote_tip(), revert);
    let manifest = s.sb.remote_file(&revert, "apps/guestbook/deployment.yaml");
    assert!(
        manifest.contains(&format!("{IMAGE_V1}@{}", good_digest())),
        "{manifest}"
    );
    // The incident quarantines the crash-looping digest.
    let note = s.sb.remote_note(&revert).unwrap();
    let bad: Vec<&str> = note["incidents"][0]["bad_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // Exactly what the culprit brought in and the pods ran, by digest:
    // never the last-known-good's tag or digest.
    assert_eq!(bad.len(), 1, "{note}");
    assert!(bad[0].ends_with(BAD_DIGEST), "{note}");
    assert!(!bad.iter().any(|b| b.contains(&good_digest())), "{note}");
    s.roll_out_the_pinned_good();
    // Healthy at the revert: recorded as the new last-known-good, no revert.
    let again = s.check(0).await;
    assert_eq!(again["apps"][0]["verdict"], "healthy", "{again}");
    assert_ne!(again["apps"][0]["action"], "pushed", "{again}");
    assert_eq!(s.sb.remote_reverts(), vec![revert]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_that_does_not_heal_exits_3_and_is_not_repeated() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await;
    deploy_bad_crashlooping(&s);
    s.fake.set_echo(Echo::Immediate); // reconciles, but keeps reporting the bad revision
    let report = s.check(3).await;
    assert_eq!(report["apps"][0]["action"], "pushed", "{report}");
    assert_eq!(report["apps"][0]["healthy_confirmed"], false);
    // The controller still runs the bad revision: the revert is pending,
    // nothing new is pushed (the first run already escalated with exit 3).
    let again = s.check(0).await;
    assert_eq!(again["apps"][0]["action"], "none", "{again}");
    assert!(
        again["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already reverted"),
        "{again}"
    );
    assert_eq!(s.sb.remote_reverts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_answering_5xx_means_no_revert_and_exit_1() {
    let s = setup().await;
    deploy_bad_crashlooping(&s);
    s.sb.record_good();
    let before = s.sb.remote_tip();
    s.fake.inject("kustomizations", None, Fault::Status(503));
    let report = s.check(1).await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "none", "{report}");
    let reason = app["reason"].as_str().unwrap();
    assert!(
        reason.contains("127.0.0.1"),
        "the message names the server: {reason}"
    );
    assert_eq!(s.sb.remote_tip(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checks_racing_make_one_revert() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await;
    deploy_bad_crashlooping(&s);
    s.apply_the_tip_on_reconcile(Wait::No);
    // The loser sees the culprit already reverted (pending: exit 0) or, if
    // the controller already runs the revert while the fake's pods still
    // crash, holds on the loop guard (exit 4). Never a second revert.
    let (a, b) = tokio::join!(s.check_any(&[0, 4]), s.check_any(&[0, 4]));
    let actions = [
        a["apps"][0]["action"].clone(),
        b["apps"][0]["action"].clone(),
    ];
    assert!(actions.contains(&json!("pushed")), "{a}\n{b}");
    assert_eq!(
        s.sb.remote_reverts().len(),
        1,
        "exactly one revert: {a}\n{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_still_within_its_not_ready_window_is_left_alone() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await;
    // v2 is rolling out: Flux runs its health checks, the new pod was just
    // created and is not Ready yet (well inside `not_ready_for: 1m`).
    s.fake.insert(kustomization_in(KsState::HealthChecking {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    }));
    let now = jiff::Timestamp::now().to_string();
    for mut o in workload(
        HASH_BAD,
        2,
        IMAGE_V2,
        &format!("ghcr.io/acme/guestbook@{BAD_DIGEST}"),
        false,
    ) {
        if o["kind"] == "Pod" {
            o["metadata"]["creationTimestamp"] = json!(now);
            o["status"]["conditions"][0]["status"] = json!("False");
            o["status"]["conditions"][0]["lastTransitionTime"] = json!(now);
            o["status"]["containerStatuses"][0]["ready"] = json!(false);
        }
        s.fake.insert(o);
    }
    let before = s.sb.remote_tip();
    let report = s.check(0).await;
    assert_ne!(report["apps"][0]["verdict"], "breach", "{report}");
    assert_eq!(report["apps"][0]["action"], "none", "{report}");
    assert_eq!(s.sb.remote_tip(), before);
}

/// `wait: false`: Flux is Ready as soon as v2 is applied, while v2's pod has
/// just started and is not Ready. That is not proof v2 is good: it is not
/// recorded as last-known-good (else a rollout that never gets Ready could
/// become the revert target), and nothing is reverted while inside
/// `not_ready_for`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_without_wait_is_not_recorded_while_the_new_pods_are_not_ready() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await;
    s.fake.insert(kustomization_in(KsState::NoWait(&s.sb.bad)));
    let now = jiff::Timestamp::now().to_string();
    for mut o in workload(
        HASH_BAD,
        2,
        IMAGE_V2,
        &format!("ghcr.io/acme/guestbook@{BAD_DIGEST}"),
        false,
    ) {
        if o["kind"] == "Pod" {
            o["metadata"]["creationTimestamp"] = json!(now);
            o["status"]["conditions"][0]["status"] = json!("False");
            o["status"]["conditions"][0]["lastTransitionTime"] = json!(now);
            o["status"]["containerStatuses"][0]["ready"] = json!(false);
        }
        s.fake.insert(o);
    }
    let notes = s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let before = s.sb.remote_tip();
    let report = s.check(0).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "unknown", "{report}");
    assert_eq!(app["action"], "none", "{report}");
    assert!(
        app["reason"].as_str().unwrap().contains("not Ready yet"),
        "{report}"
    );
    assert_eq!(s.sb.remote_tip(), before);
    assert_eq!(s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot"), notes);
    assert!(s.sb.remote_note(&s.sb.bad).is_none(), "v2 recorded as good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_on_demand_reads_the_controller_and_refuses_an_unhealthy_app() {
    let s = setup().await;
    s.deploy_good();
    let report = s.run_any(&["record", "--app", "guestbook"], &[0]).await;
    assert_eq!(report["apps"][0]["action"], "recorded", "{report}");
    assert_eq!(
        report["apps"][0]["pinned_images"][0]["digest"],
        good_digest().as_str()
    );
    assert_eq!(
        s.sb.remote_note(&s.sb.good).unwrap()["lkg"][0]["revision"],
        s.sb.good.as_str()
    );
    // Again: nothing new to write.
    let notes = s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let again = s.run_any(&["record", "--app", "guestbook"], &[0]).await;
    assert_eq!(again["apps"][0]["action"], "none", "{again}");
    assert_eq!(s.sb.host.rev_parse(REMOTE, "refs/notes/revertbot"), notes);
    // A crash-looping deploy is never recorded as good.
    deploy_bad_crashlooping(&s);
    let refused = s.run_any(&["record", "--app", "guestbook"], &[4]).await;
    assert_eq!(refused["apps"][0]["action"], "blocked", "{refused}");
    assert!(s.sb.remote_note(&s.sb.bad).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_digest_pinned_back_is_a_breach_before_any_pod_runs_it() {
    let s = setup().await;
    s.deploy_good();
    s.check(0).await;
    deploy_bad_crashlooping(&s);
    s.apply_the_tip_on_reconcile(Wait::No);
    let report = s.check(0).await;
    assert_eq!(report["apps"][0]["healthy_confirmed"], true, "{report}");
    s.roll_out_the_pinned_good();
    // Healthy at the revert, pinned to the LKG digest: the re-promotion
    // check must not trip on the good digest.
    let healed = s.check(0).await;
    assert_eq!(healed["apps"][0]["verdict"], "healthy", "{healed}");
    // An image updater writes the quarantined digest back, pinned; Flux
    // applies it, and no pod has pulled it yet.
    s.sb.dev.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    let manifest = s.sb.remote_file("main", "apps/guestbook/deployment.yaml");
    let promoted = manifest.replace(
        &format!("{IMAGE_V1}@{}", good_digest()),
        &format!("{IMAGE_V2}@{BAD_DIGEST}"),
    );
    assert_ne!(promoted, manifest);
    s.sb.dev.write("apps/guestbook/deployment.yaml", promoted);
    let repromoted = s.sb.dev.commit("chore(deps): update guestbook");
    s.sb.dev.push(&["main"]);
    s.fake.insert(kustomization(&repromoted, true));
    // A breach at once; the 30m cooldown since the first revert holds it
    // (exit 4) rather than reverting in a loop.
    let report = s.check(4).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["culprits"], json!([repromoted]), "{report}");
    assert_eq!(app["signals"][0]["source"], "repromotion", "{report}");
    assert!(
        app["signals"].to_string().contains("(in the manifests)"),
        "{report}"
    );
    assert_eq!(app["action"], "blocked", "{report}");
}
