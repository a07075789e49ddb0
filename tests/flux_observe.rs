#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flux: every fixture maps to the right observation, through a strict
//! fake Kubernetes API.

mod support;

use revertbot::controller::flux::Flux;
use revertbot::controller::{AppRef, Controller, ControllerError, Detail, FluxKind};
use revertbot::domain::health::{Health, SyncStatus};
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, TOKEN, fixture, fixture_objects, test_options};

const GOOD: &str = "450796ddb2ab6724ee1cc32a4be56da032d1cca0";
const BAD: &str = "7c500d302e38e7e4a3f327343a8a5c21acaaeb87";

async fn flux(fake: &FakeKube) -> Flux {
    fake.flux(test_options()).await
}

fn app(kind: FluxKind, namespace: &str, name: &str) -> AppRef {
    AppRef::Flux {
        app: format!("app-{name}"),
        kind,
        name: name.to_owned(),
        namespace: namespace.to_owned(),
    }
}

fn ks(namespace: &str, name: &str) -> AppRef {
    app(FluxKind::Kustomization, namespace, name)
}

fn sha(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// kustomization-ready.yaml renamed, as the parent of a HelmRelease.
fn parent(namespace: &str, name: &str) -> Value {
    let mut parent = fixture_objects("kustomization-ready.yaml").remove(0);
    parent["metadata"]["namespace"] = json!(namespace);
    parent["metadata"]["name"] = json!(name);
    parent
}

#[tokio::test]
async fn ready_kustomization_is_healthy_and_synced() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(&ks("default", "podinfo"), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.app.as_str(), "app-podinfo");
    assert_eq!(o.source, "flux:Kustomization/default/podinfo");
    assert_eq!(o.health, Health::Healthy);
    assert_eq!(
        o.health_message.as_deref(),
        Some(
            "ReconciliationSucceeded: Applied revision: main@sha1:450796ddb2ab6724ee1cc32a4be56da032d1cca0"
        )
    );
    assert_eq!(o.sync, SyncStatus::Synced);
    assert_eq!(o.deployed.map(|s| s.to_string()), sha(GOOD));
    assert_eq!(o.target.map(|s| s.to_string()), sha(GOOD));
    assert_eq!(o.operation, None);
    assert_eq!(
        o.reconciled_at,
        Some("2025-08-15T11:12:00Z".parse().unwrap())
    );
    let history: Vec<(String, String)> = o
        .history
        .iter()
        .map(|h| (h.revision.to_string(), h.deployed_at.unwrap().to_string()))
        .collect();
    assert_eq!(
        history,
        [
            (
                "67e2c98a60dc92283531412a9e604dd4bae005a9".to_owned(),
                "2025-07-14T13:10:00Z".to_owned()
            ),
            (GOOD.to_owned(), "2025-08-15T10:11:00Z".to_owned()),
        ]
    );
    assert!(o.pods.is_empty());
    assert_eq!(
        fake.count(
            "GET",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations/podinfo"
        ),
        1
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn reconciling_kustomization_is_progressing_and_out_of_sync() {
    let fake = FakeKube::with_fixtures(&["kustomization-reconciling.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(&ks("default", "backend"), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.health, Health::Progressing);
    assert_eq!(
        o.health_message.as_deref(),
        Some(
            "Progressing: Detecting drift for revision main@sha1:a1afe267b54f38b46b487f6e938a6fd508278c07 with a timeout of 50s"
        )
    );
    assert_eq!(o.sync, SyncStatus::OutOfSync);
    assert_eq!(
        o.deployed.map(|s| s.to_string()),
        sha("0d2bbd8fa0b1d57e4b4a3dd45d25a7b3a1f1bd0e")
    );
    assert_eq!(
        o.target.map(|s| s.to_string()),
        sha("a1afe267b54f38b46b487f6e938a6fd508278c07")
    );
    assert_eq!(
        o.reconciled_at,
        Some("2022-10-17T13:40:21Z".parse().unwrap())
    );
}

#[tokio::test]
async fn failed_health_check_is_degraded_with_the_message() {
    let fake = FakeKube::with_fixtures(&["kustomization-healthcheck-failed.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(&ks("default", "podinfo"), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.health, Health::Degraded);
    assert_eq!(
        o.health_message.as_deref(),
        Some(
            "HealthCheckFailed: health check failed after 1m0.011292s: timeout waiting for: [Deployment/default/podinfo status: 'InProgress']"
        )
    );
    assert_eq!(o.sync, SyncStatus::OutOfSync);
    // lastAppliedRevision only moves once the checks pass, but the cluster
    // runs the revision that failed them: that is what is deployed.
    assert_eq!(o.deployed.map(|s| s.to_string()), sha(BAD));
    assert_eq!(o.target.map(|s| s.to_string()), sha(BAD));
    assert_eq!(o.apply_failure, None);
    assert_eq!(o.history.last().map(|h| h.revision.to_string()), sha(BAD));
}

#[tokio::test]
async fn legacy_revision_format_is_parsed() {
    let fake = FakeKube::with_fixtures(&["kustomization-legacy-revision-format.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(&ks("default", "backend"), Detail::Summary)
        .await
        .unwrap();
    // ValidationFailed: that controller's apply rejected the attempted
    // revision; the cluster still runs the applied one.
    let failure = o.apply_failure.clone().unwrap();
    assert_eq!(
        failure.applied.map(|s| s.to_string()),
        sha("a1afe267b54f38b46b487f6e938a6fd508278c07")
    );
    assert_eq!(failure.attempted.to_string(), BAD);
    assert_eq!(failure.reason, "ValidationFailed");
    assert_eq!(o.deployed.map(|s| s.to_string()), sha(BAD));
    assert_eq!(o.target.map(|s| s.to_string()), sha(BAD));
    assert_eq!(o.sync, SyncStatus::OutOfSync);
    // No generations recorded by that old controller: the condition is trusted.
    assert_eq!(o.health, Health::Degraded);
    assert!(
        o.health_message
            .unwrap()
            .starts_with("ValidationFailed: The Service 'backend' is invalid")
    );
}

#[tokio::test]
async fn stale_conditions_are_not_trusted() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        o["metadata"]["generation"] = json!(3)
    });
    let o = flux(&fake)
        .await
        .observe(&ks("default", "podinfo"), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.health, Health::Unknown);
    let message = o.health_message.unwrap();
    assert!(
        message.contains("generation 3") && message.contains("generation 2"),
        "{message}"
    );
}

#[tokio::test]
async fn suspended_is_suspended() {
    let fake = FakeKube::with_fixtures(&["kustomization-healthcheck-failed.yaml"]).await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        o["spec"]["suspend"] = json!(true)
    });
    let o = flux(&fake)
        .await
        .observe(&ks("default", "podinfo"), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.health, Health::Suspended);
}

#[tokio::test]
async fn helmrelease_revision_comes_from_the_parent_kustomization() {
    let fake = FakeKube::with_fixtures(&["helmrelease-ready.yaml"]).await;
    let mut apps = parent("flux-system", "apps");
    apps["status"]["lastAttemptedRevision"] = json!(format!("main@sha1:{GOOD}"));
    fake.insert(apps);
    let o = flux(&fake)
        .await
        .observe(
            &app(FluxKind::HelmRelease, "podinfo", "podinfo"),
            Detail::Summary,
        )
        .await
        .unwrap();
    assert_eq!(o.source, "flux:HelmRelease/podinfo/podinfo");
    assert_eq!(o.health, Health::Healthy);
    assert!(
        o.health_message
            .unwrap()
            .starts_with("TestSucceeded: Helm test succeeded for release podinfo/podinfo.v2")
    );
    assert_eq!(o.sync, SyncStatus::Synced);
    assert_eq!(o.deployed.map(|s| s.to_string()), sha(GOOD));
    assert_eq!(o.history.len(), 2);
    assert_eq!(
        o.reconciled_at,
        Some("2024-05-07T04:54:55Z".parse().unwrap())
    );
    assert_eq!(
        fake.count(
            "GET",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps"
        ),
        1
    );
}

#[tokio::test]
async fn rolled_back_helmrelease_is_degraded_and_out_of_sync() {
    let fake = FakeKube::with_fixtures(&["helmrelease-upgrade-failed-rolled-back.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(
            &app(FluxKind::HelmRelease, "podinfo", "podinfo"),
            Detail::Summary,
        )
        .await
        .unwrap();
    assert_eq!(o.health, Health::Degraded);
    assert_eq!(
        o.health_message.as_deref(),
        Some(
            "RollbackSucceeded: Helm rollback to previous release podinfo/podinfo.v2 with chart podinfo@6.6.1+0cc9a8446c95 succeeded"
        )
    );
    assert_eq!(
        o.sync,
        SyncStatus::OutOfSync,
        "attempted chart 6.6.2, running 6.6.1"
    );
    assert_eq!(
        o.deployed, None,
        "no kustomize.toolkit.fluxcd.io labels: git revision unknown"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn flux2_trace_testdata_helmrelease_and_its_parent() {
    let fake = FakeKube::with_fixtures(&["flux2-testdata-trace-helmrelease.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(
            &app(FluxKind::HelmRelease, "trace", "podinfo"),
            Detail::Summary,
        )
        .await
        .unwrap();
    assert_eq!(o.health, Health::Healthy);
    assert_eq!(
        o.deployed.map(|s| s.to_string()),
        sha("696f056df216eea4f9401adbee0ff744d4df390f")
    );
}

#[tokio::test]
async fn a_missing_parent_leaves_the_revision_unknown() {
    let fake = FakeKube::with_fixtures(&["helmrelease-ready.yaml"]).await;
    let o = flux(&fake)
        .await
        .observe(
            &app(FluxKind::HelmRelease, "podinfo", "podinfo"),
            Detail::Summary,
        )
        .await
        .unwrap();
    assert_eq!(o.deployed, None);
    assert_eq!(o.health, Health::Healthy);
}

#[tokio::test]
async fn observe_all_lists_once_per_kind_and_namespace() {
    let fake =
        FakeKube::with_fixtures(&["kustomization-list.json", "helmrelease-ready.yaml"]).await;
    fake.insert(parent("flux-system", "apps"));
    let apps = [
        ks("default", "podinfo"),
        ks("default", "podinfo-canary"),
        ks("default", "absent"),
        app(FluxKind::HelmRelease, "podinfo", "podinfo"),
        AppRef::ArgoCd {
            app: "guestbook".into(),
            name: "guestbook".into(),
            namespace: None,
        },
    ];
    let results = flux(&fake).await.observe_all(&apps).await.unwrap();
    assert_eq!(results.len(), 5);
    let podinfo = results[0].as_ref().unwrap();
    assert_eq!(
        (podinfo.health, podinfo.sync),
        (Health::Healthy, SyncStatus::Synced)
    );
    let canary = results[1].as_ref().unwrap();
    assert_eq!(
        (canary.health, canary.sync),
        (Health::Degraded, SyncStatus::OutOfSync)
    );
    assert_eq!(canary.target.as_ref().map(|s| s.to_string()), sha(BAD));
    assert!(
        matches!(&results[2], Err(ControllerError::NotFound { what, .. }) if what.contains("default/absent"))
    );
    let helm = results[3].as_ref().unwrap();
    assert_eq!(helm.deployed.as_ref().map(|s| s.to_string()), sha(GOOD));
    assert!(matches!(&results[4], Err(ControllerError::NotFound { .. })));

    let requests: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        requests,
        [
            "GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations",
            "GET /apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases",
            "GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations",
        ]
    );
}

#[tokio::test]
async fn missing_object_is_not_found_and_the_fake_answers_like_the_api_server() {
    let fake = FakeKube::start().await;
    let err = flux(&fake)
        .await
        .observe(&ks("default", "podinfo"), Detail::Summary)
        .await
        .unwrap_err();
    match &err {
        ControllerError::NotFound { what, .. } => {
            assert!(what.contains("Kustomization default/podinfo"), "{what}");
            assert!(
                what.contains("kustomizations.kustomize.toolkit.fluxcd.io \"podinfo\" not found"),
                "{what}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests().len(), 1, "404 is not retried");

    // The fake's 404 body is the recorded metav1.Status.
    let client = reqwest::Client::new();
    let body: Value = client
        .get(format!(
            "{}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations/podinfo",
            fake.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want: Value = serde_json::from_str(&fixture("kubernetes-status-not-found.json")).unwrap();
    assert_eq!(body, want);
}
