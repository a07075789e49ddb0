#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot check` judges what a Flux cluster runs, not what last passed
//! its health checks. With `wait: true` (what `flux bootstrap` sets)
//! kustomize-controller applies a commit, then health-checks it, and moves
//! `lastAppliedRevision` only if the checks pass: a bad commit runs while
//! `lastAppliedRevision` still names the good one. A commit Flux cannot
//! build or apply is a warning of its own; a HelmRelease helm-controller
//! rolled back is a breach of the revision that failed.

mod support;

use serde_json::{Value, json};
use support::fake_kube::fixture_objects;
use support::flux_check::{BAD_DIGEST, HASH_GOOD, IMAGE_V1, Setup, Wait, setup, setup_with};
use support::flux_objects::{KsState, kustomization_in, workload};
use support::infra::Sandbox;
use support::infra::good_digest;

/// The guestbook Kustomization `flux-system/guestbook`.
const KUSTOMIZATION: &str = "{ kind: Kustomization, name: guestbook, namespace: flux-system }";

/// The same app deployed as a HelmRelease (`default/guestbook`) that the
/// `flux-system/guestbook` Kustomization applies from git.
const HELMRELEASE: &str = "{ kind: HelmRelease, name: guestbook, namespace: default }";

const POLICY: &str = "{ critical: push, grace: 0s, cooldown: 30m }";

/// [`POLICY`] with `policy.warning: push`.
const WARNING_PUSH_POLICY: &str = "{ critical: push, warning: push, grace: 0s, cooldown: 30m }";

/// The guestbook app watched through the Flux object `flux` under `policy`
/// (both flow mappings); health and wait are the same in every test here.
fn config(flux: &str, policy: &str) -> String {
    format!(
        "\
version: 1
repo: {{ remote: origin, branch: main }}
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    flux: {flux}
    health:
      controller: true
      pods: {{ crashloop: true, not_ready_for: 1m }}
    policy: {policy}
    wait: {{ timeout: 8s }}
"
    )
}

/// The good revision recorded as last-known-good from its live pods.
async fn recorded_good(config: String) -> Setup {
    let s = setup(config).await;
    s.deploy_good();
    let report = s.check(0).await;
    assert_eq!(report["apps"][0]["action"], "recorded", "{report}");
    s
}

fn signals(app: &Value) -> String {
    app["signals"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_a_commit_failing_its_health_checks_is_reverted_and_healthy_only_once_ready() {
    let s = recorded_good(config(KUSTOMIZATION, POLICY)).await;
    // Applied and crash-looping; the checks timed out: lastAppliedRevision
    // still names the good commit.
    s.deploy_bad_crashlooping(KsState::HealthCheckFailed {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    });
    s.apply_the_tip_on_reconcile(Wait::Yes);
    let (report, healed) = tokio::join!(s.check(0), s.pass_health_checks(&s.sb.bad));
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["deployed_revision"], s.sb.bad.as_str(), "{report}");
    assert_eq!(app["culprits"], json!([s.sb.bad]), "{report}");
    assert!(signals(app).contains("CrashLoopBackOff"), "{report}");
    assert_eq!(app["action"], "pushed", "{report}");
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(s.sb.remote_tip(), revert);
    let manifest = s.sb.remote_file(&revert, "apps/guestbook/deployment.yaml");
    assert!(
        manifest.contains(&format!("{IMAGE_V1}@{}", good_digest())),
        "{manifest}"
    );
    // The wait confirmed Healthy only after Flux had health-checked the
    // revert and moved lastAppliedRevision to it (flux_live.rs checks that
    // health checks running or failed at the revert are not Healthy).
    assert_eq!(healed.as_deref(), Some(revert.as_str()), "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    assert_eq!(
        s.status()["lastAppliedRevision"],
        json!(format!("main@sha1:{revert}"))
    );
    // The next check: healthy at the revert, nothing more to revert.
    let again = s.check(0).await;
    assert_eq!(again["apps"][0]["verdict"], "healthy", "{again}");
    assert_eq!(s.sb.remote_reverts(), vec![revert]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_flux_runs_the_health_checks_a_crash_loop_is_a_fast_failure_breach() {
    let s = recorded_good(config(KUSTOMIZATION, POLICY)).await;
    s.deploy_bad_crashlooping(KsState::HealthChecking {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    });
    let report = s.run_any(&["check", "--dry-run"], &[0]).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["signals"][0]["source"], "fastfailure", "{report}");
    assert_eq!(app["deployed_revision"], s.sb.bad.as_str(), "{report}");
    assert_eq!(app["culprits"], json!([s.sb.bad]), "{report}");
    assert_eq!(app["action"], "dry_run", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_flux_cannot_apply_or_build_is_a_warning_naming_it() {
    let s = recorded_good(config(KUSTOMIZATION, POLICY)).await;
    for (state, reason) in [
        (
            KsState::ApplyFailed {
                applied: &s.sb.good,
                attempted: &s.sb.bad,
            },
            "ReconciliationFailed",
        ),
        (
            KsState::BuildFailed {
                applied: &s.sb.good,
                attempted: &s.sb.bad,
            },
            "BuildFailed",
        ),
    ] {
        // The cluster still runs the good revision's healthy pod.
        s.fake.insert(kustomization_in(state));
        let before = s.sb.remote_tip();
        let report = s.check(4).await;
        let app = &report["apps"][0];
        assert_eq!(app["verdict"], "breach", "{report}");
        assert_eq!(app["deployed_revision"], s.sb.bad.as_str(), "{report}");
        assert_eq!(app["culprits"], json!([s.sb.bad]), "{report}");
        let detail = app["signals"][0]["detail"].as_str().unwrap();
        let want = format!(
            "flux:Kustomization/flux-system/guestbook cannot apply {} ({reason}: ",
            &s.sb.bad[..12]
        );
        assert!(detail.starts_with(&want), "{detail}");
        assert!(
            detail.ends_with(&format!("the cluster still runs {}", &s.sb.good[..12])),
            "{detail}"
        );
        // policy.warning defaults to approve: asked, not pushed.
        assert_eq!(app["action"], "blocked", "{report}");
        let why = app["reason"].as_str().unwrap();
        assert!(why.starts_with("warning breach: "), "{why}");
        assert!(why.contains("policy asks for approval first"), "{why}");
        assert_eq!(s.sb.remote_tip(), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_warning_push_the_commit_flux_cannot_apply_is_reverted() {
    let s = recorded_good(config(KUSTOMIZATION, WARNING_PUSH_POLICY)).await;
    s.fake.insert(kustomization_in(KsState::ApplyFailed {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    }));
    s.apply_the_tip_on_reconcile(Wait::No);
    let report = s.check(0).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["culprits"], json!([s.sb.bad]), "{report}");
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let revert = app["revert_commit"].as_str().unwrap();
    assert_eq!(s.sb.remote_tip(), revert);
    assert_eq!(
        s.status()["lastAppliedRevision"],
        json!(format!("main@sha1:{revert}"))
    );
    // Nothing ran the commit Flux could not apply: nothing to quarantine.
    let note = s.sb.remote_note(revert).unwrap();
    assert_eq!(note["incidents"][0]["bad_images"], json!([]), "{note}");
}

/// The HelmRelease `default/guestbook` from a fixture, applied by the
/// `flux-system/guestbook` Kustomization.
fn helmrelease(fixture: &str) -> Value {
    let mut hr = fixture_objects(fixture).remove(0);
    hr["metadata"]["name"] = json!("guestbook");
    hr["metadata"]["namespace"] = json!("default");
    hr["metadata"]["labels"] = json!({
        "kustomize.toolkit.fluxcd.io/name": "guestbook",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    });
    for release in hr["status"]["history"].as_array_mut().unwrap() {
        release["name"] = json!("guestbook");
        release["namespace"] = json!("default");
    }
    hr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helmrelease_helm_controller_rolled_back_is_a_breach_of_the_revision_that_failed() {
    let s = setup(config(HELMRELEASE, POLICY)).await;
    s.fake.insert(kustomization_in(KsState::Ready(&s.sb.good)));
    s.fake.insert(helmrelease("helmrelease-ready.yaml"));
    for mut o in workload(
        HASH_GOOD,
        1,
        IMAGE_V1,
        &format!("ghcr.io/acme/guestbook@{}", good_digest()),
        false,
    ) {
        if o["kind"] == "Deployment" {
            o["metadata"]["labels"] = json!({
                "helm.toolkit.fluxcd.io/name": "guestbook",
                "helm.toolkit.fluxcd.io/namespace": "default",
            });
        }
        s.fake.insert(o);
    }
    let report = s.check(0).await;
    assert_eq!(report["apps"][0]["action"], "recorded", "{report}");
    // The bad commit upgraded the release; the upgrade failed and
    // helm-controller rolled back, so the pods are the good ones again. The
    // parent health-checks the HelmRelease, which is not Ready: its
    // lastAppliedRevision stays on the good commit.
    s.fake.insert(kustomization_in(KsState::HealthCheckFailed {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    }));
    s.fake
        .insert(helmrelease("helmrelease-upgrade-failed-rolled-back.yaml"));
    let report = s.run_any(&["check", "--dry-run"], &[0]).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert!(signals(app).contains("RollbackSucceeded"), "{report}");
    assert_eq!(app["deployed_revision"], s.sb.bad.as_str(), "{report}");
    assert_eq!(app["culprits"], json!([s.sb.bad]), "{report}");
    assert_eq!(app["action"], "dry_run", "{report}");
    // Nothing quarantined from the rolled-back pods: they run the good digest.
    assert!(!report.to_string().contains(BAD_DIGEST), "{report}");
}

/// The done-when of the trust issue on Flux with `wait: true`: a minimal
/// config (paths and the Flux object, nothing else), a bad commit that also
/// touches another app and a shared chart; reverted for the broken app only,
/// the digest pinned, Healthy confirmed once Flux health-checked the revert.
const MINIMAL: &str = "\
version: 1
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    flux: { kind: Kustomization, name: guestbook }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_minimal_config_a_monorepo_culprit_is_reverted_for_its_app_and_healthy_confirmed() {
    let s = setup_with(|| Sandbox::with_multi_app_culprit(MINIMAL)).await;
    s.deploy_good();
    let report = s.check(0).await;
    assert_eq!(report["apps"][0]["action"], "recorded", "{report}");
    s.deploy_bad_crashlooping(KsState::HealthCheckFailed {
        applied: &s.sb.good,
        attempted: &s.sb.bad,
    });
    s.apply_the_tip_on_reconcile(Wait::Yes);
    let (report, healed) = tokio::join!(s.check(0), s.pass_health_checks(&s.sb.bad));
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(healed.as_deref(), Some(revert.as_str()));
    let manifest = s.sb.remote_file(&revert, "apps/guestbook/deployment.yaml");
    assert!(
        manifest.contains(&format!("{IMAGE_V1}@{}", good_digest())),
        "{manifest}"
    );
    assert!(
        s.sb.remote_file(&revert, "apps/billing/deployment.yaml")
            .contains("2.4.0"),
        "billing keeps the culprit's change"
    );
    assert_eq!(app["left_alone"].as_array().unwrap().len(), 2, "{report}");
}
