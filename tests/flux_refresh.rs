#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flux: `refresh` requests a reconcile with a merge patch and waits for
//! the controller's echo; `sync` and `terminate_operation` semantics.

mod support;

use std::time::Duration;

use revertbot::controller::flux::FluxOptions;
use revertbot::controller::{AppRef, Controller, ControllerError, FluxKind};
use revertbot::domain::health::Health;
use serde_json::{Value, json};
use support::fake_kube::{Echo, FakeKube, fixture, fixture_objects, test_options};

const KS: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations/podinfo";
const GIT: &str = "/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories/podinfo";
const NEW: &str = "1111111111111111111111111111111111111111";

fn podinfo() -> AppRef {
    AppRef::Flux {
        app: "podinfo".into(),
        kind: FluxKind::Kustomization,
        name: "podinfo".into(),
        namespace: "default".into(),
    }
}

/// The GitRepository of the flux2 trace testdata, renamed.
fn git_repository(namespace: &str, name: &str) -> Value {
    let mut repo = fixture_objects("flux2-testdata-trace-helmrelease.yaml")
        .into_iter()
        .find(|o| o["kind"] == "GitRepository")
        .unwrap();
    repo["metadata"]["namespace"] = json!(namespace);
    repo["metadata"]["name"] = json!(name);
    repo
}

async fn seeded() -> FakeKube {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    fake.insert(git_repository("default", "podinfo"));
    fake
}

fn patches(fake: &FakeKube) -> Vec<(String, Value)> {
    fake.requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.path.clone(), serde_json::from_str(&r.body).unwrap()))
        .collect()
}

/// Same keys as the recorded reconcile request, any string value.
fn assert_reconcile_request(patch: &Value) -> String {
    let recorded: Value =
        serde_json::from_str(&fixture("reconcile-request-merge-patch.json")).unwrap();
    let shape = |v: &Value| {
        let mut v = v.clone();
        v["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] = json!("_");
        v
    };
    assert_eq!(shape(patch), shape(&recorded));
    let token = patch["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .unwrap();
    token.parse::<jiff::Timestamp>().unwrap();
    token.to_owned()
}

#[tokio::test]
async fn refresh_patches_source_then_app_and_waits_for_each_echo() {
    let fake = seeded().await;
    fake.set_echo(Echo::After(Duration::from_millis(100)));
    fake.on_reconcile(|o| {
        if o["kind"] == "Kustomization" {
            o["status"]["lastAppliedRevision"] = json!(format!("main@sha1:{NEW}"));
            o["status"]["lastAttemptedRevision"] = json!(format!("main@sha1:{NEW}"));
        }
    });
    let observation = fake
        .flux(test_options())
        .await
        .refresh(&podinfo())
        .await
        .unwrap();
    // Read after the echo: the controller's new state, not the old one.
    assert_eq!(
        observation.deployed.map(|s| s.to_string()).as_deref(),
        Some(NEW)
    );

    let patches = patches(&fake);
    let paths: Vec<&str> = patches.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, [GIT, KS]);
    let token = assert_reconcile_request(&patches[0].1);
    assert_eq!(
        assert_reconcile_request(&patches[1].1),
        token,
        "one token per refresh"
    );
    for r in fake.requests().iter().filter(|r| r.method == "PATCH") {
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(r.status, 200);
    }
    let object = fake.get("kustomizations", "default", "podinfo");
    assert_eq!(
        object["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"],
        json!(token)
    );
    assert_eq!(object["status"]["lastHandledReconcileAt"], json!(token));
    // It polled (the echo came later than the patch answer) — more than one
    // read of each object after its patch.
    let after_patch = |path: &str| {
        let requests = fake.requests();
        let at = requests
            .iter()
            .position(|r| r.method == "PATCH" && r.path == path)
            .unwrap();
        requests[at..]
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count()
    };
    assert!(after_patch(GIT) >= 2, "{:?}", fake.requests());
    assert!(after_patch(KS) >= 2);
}

#[tokio::test]
async fn refresh_times_out_cleanly_when_flux_never_echoes() {
    let fake = seeded().await;
    fake.set_echo(Echo::Never);
    let options = FluxOptions {
        refresh_timeout: Duration::from_millis(200),
        ..test_options()
    };
    let err = fake
        .flux(options)
        .await
        .refresh(&podinfo())
        .await
        .unwrap_err();
    match err {
        ControllerError::Timeout { doing, timeout, .. } => {
            assert_eq!(timeout, Duration::from_millis(200));
            assert!(doing.contains("GitRepository default/podinfo"), "{doing}");
            assert!(doing.contains("lastHandledReconcileAt"), "{doing}");
        }
        other => panic!("{other:?}"),
    }
    let paths: Vec<String> = patches(&fake).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [GIT],
        "no request for the app once its source timed out"
    );
}

#[tokio::test]
async fn a_refresh_timing_out_during_health_checks_says_flux_is_still_at_it() {
    let fake = seeded().await;
    // kustomize-controller echoes the request once the reconcile ends, after
    // the health checks; meanwhile it reports them running.
    fake.echo_when_finished("kustomizations");
    fake.on_reconcile(|o| {
        if o["kind"] == "Kustomization" {
            o["status"]["conditions"] = json!([{
                "type": "Reconciling", "status": "True", "reason": "Progressing", "observedGeneration": 2,
                "message": format!("Running health checks for revision main@sha1:{NEW} with a timeout of 1m0s"),
            }, {
                "type": "Ready", "status": "Unknown", "reason": "Progressing", "observedGeneration": 2,
                "message": "Reconciliation in progress",
            }]);
        }
    });
    let options = FluxOptions {
        refresh_timeout: Duration::from_millis(300),
        ..test_options()
    };
    let err = fake
        .flux(options)
        .await
        .refresh(&podinfo())
        .await
        .unwrap_err();
    match err {
        ControllerError::Timeout { doing, .. } => {
            assert!(doing.contains("Kustomization default/podinfo"), "{doing}");
            assert!(
                doing.contains("Flux is still reconciling it (Running health checks for revision"),
                "{doing}"
            );
            assert!(!doing.contains("is the Flux controller running"), "{doing}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refresh_without_source() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    let options = FluxOptions {
        reconcile_source: false,
        ..test_options()
    };
    fake.flux(options).await.refresh(&podinfo()).await.unwrap();
    let paths: Vec<String> = patches(&fake).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, [KS]);
}

#[tokio::test]
async fn a_missing_source_is_reported() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    let err = fake
        .flux(test_options())
        .await
        .refresh(&podinfo())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ControllerError::NotFound { what, .. } if what.contains("GitRepository default/podinfo")),
        "{err:?}"
    );
    assert!(patches(&fake).is_empty());
}

#[tokio::test]
async fn suspended_objects_are_not_asked() {
    let fake = seeded().await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        o["spec"]["suspend"] = json!(true)
    });
    let observation = fake
        .flux(test_options())
        .await
        .refresh(&podinfo())
        .await
        .unwrap();
    assert_eq!(observation.health, Health::Suspended);
    let paths: Vec<String> = patches(&fake).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, [GIT]);
}

#[tokio::test]
async fn helmrelease_refresh_goes_through_its_parent() {
    let fake = FakeKube::with_fixtures(&["helmrelease-ready.yaml"]).await;
    let mut parent = fixture_objects("kustomization-ready.yaml").remove(0);
    parent["metadata"]["namespace"] = json!("flux-system");
    parent["metadata"]["name"] = json!("apps");
    fake.insert(parent);
    fake.insert(git_repository("flux-system", "podinfo"));
    let app = AppRef::Flux {
        app: "chart".into(),
        kind: FluxKind::HelmRelease,
        name: "podinfo".into(),
        namespace: "podinfo".into(),
    };
    fake.flux(test_options()).await.refresh(&app).await.unwrap();
    let paths: Vec<String> = patches(&fake).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/podinfo",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps",
            "/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/podinfo",
        ]
    );
}

#[tokio::test]
async fn sync_is_a_reconcile_plus_a_check_of_the_applied_revision() {
    let fake = seeded().await;
    fake.on_reconcile(|o| {
        if o["kind"] == "Kustomization" {
            o["status"]["lastAppliedRevision"] = json!(format!("main@sha1:{NEW}"));
        }
    });
    let flux = fake.flux(test_options()).await;
    flux.sync(&podinfo(), &NEW.parse().unwrap()).await.unwrap();
    assert_eq!(patches(&fake).len(), 2);

    let other = "2222222222222222222222222222222222222222".parse().unwrap();
    let err = flux.sync(&podinfo(), &other).await.unwrap_err();
    match err {
        ControllerError::Http {
            status: 409,
            message,
            ..
        } => {
            assert!(
                message.contains(NEW) && message.contains("cannot sync to a chosen revision"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn terminate_operation_is_a_no_op() {
    let fake = seeded().await;
    fake.flux(test_options())
        .await
        .terminate_operation(&podinfo())
        .await
        .unwrap();
    assert!(fake.requests().is_empty());
}
