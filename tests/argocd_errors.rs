//! The Argo CD client against the strict fake Argo CD when things go wrong:
//! every failure maps to the right `ControllerError` naming the server,
//! retries are bounded, the token never shows; and the fake's own strictness.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions, server_url};
use revertbot::controller::{Controller, ControllerError, Detail};
use secrecy::SecretString;
use serde_json::json;
use support::fake_argocd::{
    DEFAULT_NS, Endpoint, FakeArgoCd, Fault, TOKEN, client, fast, fixture, init, velero,
};

const NEWER: &str = "9f2c6a1b7e3d4c5b8a9f0e1d2c3b4a5968778695";

#[tokio::test]
async fn a_slow_server_is_a_timeout_naming_the_server_and_is_not_retried() {
    let fake = FakeArgoCd::start().await;
    fake.inject(Endpoint::Get, Fault::Delay(Duration::from_secs(3)));
    let err = client(&fake)
        .observe(&velero(), Detail::Summary)
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&fake.url));
    assert_eq!(fake.count(Endpoint::Get), 1);
    fake.finish();
}

#[tokio::test]
async fn gets_retry_5xx_a_bounded_number_of_times() {
    let fake = FakeArgoCd::start().await;
    let argo = client(&fake);
    fake.inject(Endpoint::List, Fault::Status(503));
    fake.inject(Endpoint::List, Fault::Status(502));
    assert!(argo.observe_all(&[velero()]).await.unwrap()[0].is_ok());
    assert_eq!(fake.count(Endpoint::List), 3);
    for _ in 0..5 {
        fake.inject(Endpoint::List, Fault::Status(500));
    }
    let err = argo.observe_all(&[velero()]).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("etcdserver"), "{err}");
    assert_eq!(fake.count(Endpoint::List), 6); // 1 + max_retries
    fake.finish();
}

#[tokio::test]
async fn a_sync_that_failed_with_5xx_is_not_retried() {
    let fake = FakeArgoCd::start().await;
    fake.inject(Endpoint::Sync, Fault::Status(503));
    let err = client(&fake)
        .sync(&velero(), &NEWER.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::Http { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(fake.count(Endpoint::Sync), 1);
    fake.finish();
}

#[tokio::test]
async fn forbidden_writes_are_an_auth_error_about_rbac() {
    let fake = FakeArgoCd::start().await;
    fake.inject(
        Endpoint::Sync,
        Fault::Raw(
            403,
            json!({"error": "permission denied", "code": 7, "message": "permission denied"})
                .to_string(),
        ),
    );
    let err = client(&fake)
        .sync(&velero(), &NEWER.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::Auth { status: 403, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("applications, sync"), "{err}");
    fake.finish();
}

#[tokio::test]
async fn not_found_with_project_is_not_found() {
    let fake = FakeArgoCd::start().await;
    let body = fixture("error-responses.json")["examples"][1]["body"].to_string();
    fake.inject(Endpoint::Get, Fault::Raw(404, body));
    let err = client(&fake)
        .observe(&velero(), Detail::Summary)
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::NotFound { .. }), "{err:?}");
    fake.finish();
}

#[tokio::test]
async fn malformed_answers_are_malformed_and_proxy_pages_are_http_errors() {
    let fake = FakeArgoCd::start().await;
    let argo = client(&fake);
    fake.inject(Endpoint::List, Fault::Malformed);
    let err = argo.observe_all(&[velero()]).await.unwrap_err();
    assert!(matches!(err, ControllerError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains(&fake.url));
    fake.inject(Endpoint::Get, Fault::Raw(200, "<html>login</html>".into()));
    let err = argo.observe(&velero(), Detail::Summary).await.unwrap_err();
    assert!(matches!(err, ControllerError::Malformed { .. }), "{err:?}");
    for _ in 0..3 {
        fake.inject(
            Endpoint::Get,
            Fault::Raw(502, "<html>Bad Gateway</html>".into()),
        );
    }
    let err = argo.observe(&velero(), Detail::Summary).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Bad Gateway"), "{err}");
    // A manifest string that is not a Pod.
    fake.update(DEFAULT_NS, "velero-test", |_| {});
    fake.set_pod(json!({"metadata": {"name": "test-lla-6d4cf56db6-9xk2p", "namespace": "test-lla"}, "status": {"conditions": "nope"}}));
    let err = argo.pods(&velero()).await.unwrap_err();
    assert!(matches!(err, ControllerError::Malformed { .. }), "{err:?}");
    fake.finish();
}

#[tokio::test]
async fn a_bad_token_is_an_auth_error_that_never_shows_the_token() {
    let fake = FakeArgoCd::start().await;
    init();
    let secret = "s3cr3t-token-value-do-not-print";
    let argo = ArgoCd::new(&fake.url, SecretString::from(secret), fast()).unwrap();
    assert!(!format!("{argo:?}").contains(secret));
    let err = argo.observe(&velero(), Detail::Summary).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Auth { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&fake.url) && text.contains("ARGOCD_AUTH_TOKEN"),
        "{text}"
    );
    assert!(!text.contains(secret) && !format!("{err:?}").contains(secret));
    assert_eq!(fake.count(Endpoint::Get), 1, "401 is not retried");
    assert_eq!(
        fake.take_violations(),
        ["GET /api/v1/applications/velero-test: wrong bearer token"]
    );
    fake.finish();
}

#[tokio::test]
async fn an_unreachable_server_is_unreachable_after_bounded_retries() {
    init();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let argo = ArgoCd::new(&url, SecretString::from(TOKEN), fast()).unwrap();
    let err = argo.observe_all(&[velero()]).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::Unreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url));
}

#[test]
fn server_addresses_like_the_argocd_cli() {
    assert_eq!(
        server_url("argocd.example.com").unwrap().as_str(),
        "https://argocd.example.com/"
    );
    assert_eq!(
        server_url("argocd.example.com:8443").unwrap().as_str(),
        "https://argocd.example.com:8443/"
    );
    assert_eq!(
        server_url("http://127.0.0.1:8080/argocd").unwrap().as_str(),
        "http://127.0.0.1:8080/argocd/"
    );
    assert!(server_url("").is_err());
    assert!(server_url("ftp://x").is_err());
}

#[test]
fn from_config_reads_the_environment_and_prefers_the_config() {
    init();
    let env = |k: &str| match k {
        "ARGOCD_SERVER" => Some("argocd.internal:443".to_owned()),
        "ARGOCD_AUTH_TOKEN" => Some("tok".to_owned()),
        _ => None,
    };
    let argo = ArgoCd::from_config(None, env, ArgoCdOptions::default()).unwrap();
    assert_eq!(argo.server(), "https://argocd.internal");
    let config = revertbot::config::ArgoCdConfig {
        server: Some("https://argocd.example.com".into()),
    };
    let argo = ArgoCd::from_config(Some(&config), env, ArgoCdOptions::default()).unwrap();
    assert_eq!(argo.server(), "https://argocd.example.com");
    let err = ArgoCd::from_config(Some(&config), |_| None, ArgoCdOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ARGOCD_AUTH_TOKEN"));
    let err = ArgoCd::from_config(None, |_| None, ArgoCdOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ARGOCD_SERVER"));
}

#[tokio::test]
async fn the_fake_refuses_and_records_what_argocd_would_not_serve() {
    init();
    let fake = FakeArgoCd::start().await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", fake.url))
            .bearer_auth(TOKEN)
            .send()
    };
    assert_eq!(get("/api/v1/applicationz").await.unwrap().status(), 404);
    assert_eq!(
        get("/api/v1/applications/velero-test/sync")
            .await
            .unwrap()
            .status(),
        405
    );
    let r = get("/api/v1/applications?fields=items.status.history")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.unwrap();
    assert_eq!(list["items"][0], json!({}), "non-honoured keys are dropped");
    let r = http
        .get(format!("{}/api/v1/applications", fake.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 16);
    assert_eq!(fake.take_violations().len(), 4);
    fake.expect("velero-test is syncing", |st| {
        st.app(DEFAULT_NS, "velero-test").unwrap()["status"]["operationState"]["phase"] == "Running"
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.finish()));
    assert!(outcome.is_err(), "an unmet expectation fails the test");
}
