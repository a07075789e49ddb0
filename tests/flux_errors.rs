#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flux: failures of the Kubernetes API become the right `ControllerError`
//! after a bounded number of attempts (counted by the fake, never timed).

mod support;

use std::time::Duration;

use revertbot::controller::flux::{Flux, FluxOptions};
use revertbot::controller::{AppRef, Controller, ControllerError, Detail, FluxKind};
use support::fake_kube::{FakeKube, Fault, test_options};

const PATH: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations/podinfo";

fn podinfo() -> AppRef {
    AppRef::Flux {
        app: "podinfo".into(),
        kind: FluxKind::Kustomization,
        name: "podinfo".into(),
        namespace: "default".into(),
    }
}

async fn seeded() -> FakeKube {
    FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await
}

async fn observe(
    fake: &FakeKube,
) -> Result<revertbot::domain::health::Observation, ControllerError> {
    fake.flux(test_options())
        .await
        .observe(&podinfo(), Detail::Summary)
        .await
}

#[tokio::test]
async fn wrong_token_is_an_auth_error_without_retry() {
    let fake = seeded().await;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flux = Flux::from_url(&fake.url(), Some("not-the-token".into()), test_options())
        .await
        .unwrap();
    let err = flux.observe(&podinfo(), Detail::Summary).await.unwrap_err();
    assert!(
        matches!(&err, ControllerError::Auth { status: 401, credential, .. } if credential.contains("KUBECONFIG")),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].status, 401);
}

#[tokio::test]
async fn no_token_is_refused_too() {
    let fake = seeded().await;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flux = Flux::from_url(&fake.url(), None, test_options())
        .await
        .unwrap();
    let err = flux.observe(&podinfo(), Detail::Summary).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Auth { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn rbac_denial_is_an_auth_error_naming_the_permissions() {
    let fake = seeded().await;
    fake.forbid("kustomizations");
    let err = observe(&fake).await.unwrap_err();
    match &err {
        ControllerError::Auth {
            status: 403,
            credential,
            ..
        } => {
            assert!(
                credential.contains("RBAC") && credential.contains("cannot get resource"),
                "{credential}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn persistent_503_gives_up_after_the_configured_attempts() {
    let fake = seeded().await;
    fake.inject("", None, Fault::Status(503));
    let err = observe(&fake).await.unwrap_err();
    assert!(
        matches!(&err, ControllerError::Http { status: 503, doing, .. } if doing.contains("Kustomization default/podinfo")),
        "{err:?}"
    );
    assert_eq!(
        fake.count("GET", PATH),
        3,
        "3 attempts in all: kube's own retry layer is off"
    );
}

#[tokio::test]
async fn one_attempt_means_no_retry() {
    let fake = seeded().await;
    fake.inject("", None, Fault::Status(503));
    let options = FluxOptions {
        attempts: 1,
        ..test_options()
    };
    let err = fake
        .flux(options)
        .await
        .observe(&podinfo(), Detail::Summary)
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Http { status: 503, .. }));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn transient_5xx_and_429_are_retried_to_success() {
    let fake = seeded().await;
    fake.inject("", Some(1), Fault::Status(502));
    fake.inject("", Some(1), Fault::Status(429));
    let o = observe(&fake).await.unwrap();
    assert_eq!(
        o.deployed.map(|s| s.to_string()).as_deref(),
        Some("450796ddb2ab6724ee1cc32a4be56da032d1cca0")
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 429, 200]);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = seeded().await;
    fake.inject("", None, Fault::Status(400));
    let err = observe(&fake).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Http { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_hanging_server_times_out_per_attempt() {
    let fake = seeded().await;
    fake.inject("", None, Fault::Delay(Duration::from_secs(30)));
    let options = FluxOptions {
        request_timeout: Duration::from_millis(150),
        ..test_options()
    };
    let err = fake
        .flux(options)
        .await
        .observe(&podinfo(), Detail::Summary)
        .await
        .unwrap_err();
    match err {
        ControllerError::Timeout { timeout, doing, .. } => {
            assert_eq!(timeout, Duration::from_millis(150));
            assert!(
                doing.contains("reading Kustomization default/podinfo"),
                "{doing}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.count("GET", PATH), 3);
}

#[tokio::test]
async fn a_slow_first_answer_is_retried() {
    let fake = seeded().await;
    fake.inject("", Some(1), Fault::Delay(Duration::from_secs(30)));
    let options = FluxOptions {
        request_timeout: Duration::from_millis(150),
        ..test_options()
    };
    let o = fake
        .flux(options)
        .await
        .observe(&podinfo(), Detail::Summary)
        .await
        .unwrap();
    assert!(o.deployed.is_some());
    assert_eq!(fake.count("GET", PATH), 2);
}

#[tokio::test]
async fn malformed_json_is_malformed_without_retry() {
    let fake = seeded().await;
    fake.inject(
        "",
        None,
        Fault::Body("{\"kind\": \"Kustomization\", ".into()),
    );
    let err = observe(&fake).await.unwrap_err();
    assert!(matches!(err, ControllerError::Malformed { .. }), "{err:?}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_wrongly_shaped_status_is_malformed() {
    let fake = seeded().await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        o["status"]["conditions"] = serde_json::json!("Ready")
    });
    let err = observe(&fake).await.unwrap_err();
    match err {
        ControllerError::Malformed { message, .. } => {
            assert!(message.contains("status"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nobody_listening_is_unreachable_after_the_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flux = Flux::from_url(&url, None, test_options()).await.unwrap();
    let err = flux.observe(&podinfo(), Detail::Summary).await.unwrap_err();
    assert!(
        matches!(&err, ControllerError::Unreachable { server, .. } if server == &url),
        "{err:?}"
    );
}

#[tokio::test]
async fn observe_all_fails_as_a_whole_when_the_server_is_down() {
    let fake = seeded().await;
    fake.inject("", None, Fault::Status(503));
    let flux = fake
        .flux(FluxOptions {
            attempts: 2,
            ..test_options()
        })
        .await;
    // 503 concerns this list only; it lands in the app's slot.
    let results = flux.observe_all(&[podinfo()]).await.unwrap();
    assert!(matches!(
        results[0],
        Err(ControllerError::Http { status: 503, .. })
    ));
    assert_eq!(fake.requests().len(), 2);

    let fake = seeded().await;
    fake.inject("", None, Fault::Delay(Duration::from_secs(30)));
    let options = FluxOptions {
        attempts: 2,
        request_timeout: Duration::from_millis(100),
        ..test_options()
    };
    let err = fake
        .flux(options)
        .await
        .observe_all(&[podinfo()])
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn forbidden_namespace_fails_only_its_apps() {
    let fake = FakeKube::with_fixtures(&[
        "kustomization-ready.yaml",
        "helmrelease-upgrade-failed-rolled-back.yaml",
    ])
    .await;
    fake.forbid("helmreleases");
    let helm = AppRef::Flux {
        app: "chart".into(),
        kind: FluxKind::HelmRelease,
        name: "podinfo".into(),
        namespace: "podinfo".into(),
    };
    let results = fake
        .flux(test_options())
        .await
        .observe_all(&[podinfo(), helm])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(ControllerError::Auth { status: 403, .. })
    ));
}

#[tokio::test]
async fn kubeconfig_file_is_loaded_the_kubectl_way() {
    let fake = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path());
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flux = Flux::from_kubeconfig_file(&path, test_options())
        .await
        .unwrap();
    assert_eq!(flux.server(), fake.url());
    assert!(flux.observe(&podinfo(), Detail::Summary).await.is_ok());
}

#[tokio::test]
async fn unknown_paths_methods_and_content_types_are_refused_by_the_fake() {
    let fake = seeded().await;
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", fake.url());
    let token = support::fake_kube::TOKEN;
    let status = |r: reqwest::Response| r.status().as_u16();
    let get = |p: &str| client.get(url(p)).bearer_auth(token).send();
    assert_eq!(
        status(
            get("/apis/kustomize.toolkit.fluxcd.io/v1beta2/namespaces/default/kustomizations")
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(get("/api/v1/namespaces/default/secrets").await.unwrap()),
        404
    );
    assert_eq!(
        status(get(&format!("{PATH}?watch=true")).await.unwrap()),
        400
    );
    let delete = client
        .delete(url(PATH))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(delete), 405);
    let json_patch = client
        .patch(url(PATH))
        .bearer_auth(token)
        .header("content-type", "application/json-patch+json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(status(json_patch), 415);
    let spec_patch = client
        .patch(url(PATH))
        .bearer_auth(token)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"suspend":true}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status(spec_patch), 422);
    let body: serde_json::Value = get("/apis/nope").await.unwrap().json().await.unwrap();
    assert_eq!(body["kind"], "Status");
}
