//! Registry down, failing or slow: bounded retries, named errors, no hang.
//! Counts calls, never measures time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use revertbot::domain::image::ImageRef;
use revertbot::registry::{CredentialSource, Registry, RegistryConfig, RegistryError};
use support::registry_server::front::{Front, Mode};
use support::registry_server::{Flavor, RegistryServer, free_port, install_crypto};

fn client(attempts: u32) -> Registry {
    install_crypto();
    Registry::new(RegistryConfig {
        credentials: CredentialSource::Anonymous,
        attempts,
        timeout: Duration::from_millis(500),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RegistryConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn registry_down_is_unreachable_after_the_configured_attempts() {
    let host = format!("127.0.0.1:{}", free_port());
    let reference: ImageRef = format!("{host}/team/app:v1").parse().unwrap();
    for attempts in [1, 3] {
        let err = client(attempts).resolve(&reference).await.unwrap_err();
        let RegistryError::Unreachable {
            registry,
            reference: r,
            attempts: made,
            ..
        } = &err
        else {
            panic!("expected Unreachable, got {err:?}");
        };
        assert_eq!(
            (registry.as_str(), r.as_str(), *made),
            (host.as_str(), reference.original(), attempts)
        );
        let text = err.to_string();
        assert!(
            text.contains(&host) && text.contains("team/app:v1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let registry = RegistryServer::start().await;
    let pushed = registry
        .push_image("team/app", "v1", Flavor::Oci, "retry")
        .await;
    let front = Front::start(&registry.base_url(), Mode::Status(503)).await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();

    let err = client(3).resolve(&reference).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unreachable { attempts: 3, reason, .. } if reason.contains("503")),
        "{err:?}"
    );
    assert_eq!(front.seen().len(), 3);

    // 429 is transient too.
    front.clear();
    front.set_mode(Mode::Status(429));
    assert!(matches!(
        client(2).resolve(&reference).await,
        Err(RegistryError::Unreachable { attempts: 2, .. })
    ));
    assert_eq!(front.seen().len(), 2);

    // Once the registry recovers, the same client resolves.
    front.set_mode(Mode::Pass);
    assert_eq!(
        client(2).resolve(&reference).await.unwrap().as_str(),
        pushed.digest
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let registry = RegistryServer::start().await;
    let front = Front::start(&registry.base_url(), Mode::Status(400)).await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();
    let err = client(3).resolve(&reference).await.unwrap_err();
    assert!(matches!(err, RegistryError::Malformed { .. }), "{err:?}");
    assert_eq!(front.seen().len(), 1);

    front.clear();
    front.set_mode(Mode::Status(403));
    let err = client(3).resolve(&reference).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert_eq!(front.seen().len(), 1);

    // 401 without any challenge: nothing to retry with.
    front.clear();
    front.set_mode(Mode::Status(401));
    let err = client(3).resolve(&reference).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unauthorized { reason, .. } if reason.contains("without a WWW-Authenticate")),
        "{err:?}"
    );
    assert_eq!(front.seen().len(), 1);
}

#[tokio::test]
async fn a_stalled_registry_is_a_timeout_naming_it() {
    let registry = RegistryServer::start().await;
    let front = Front::start(&registry.base_url(), Mode::Stall).await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();
    let err = client(3).resolve(&reference).await.unwrap_err();
    let RegistryError::Timeout {
        registry: r,
        reference: got,
        ..
    } = &err
    else {
        panic!("expected Timeout, got {err:?}");
    };
    assert_eq!(
        (r.as_str(), got.as_str()),
        (front.host().as_str(), reference.original())
    );
    // Timeouts are not retried: the budget is one timeout per call.
    assert_eq!(front.seen().len(), 1);
}

#[tokio::test]
async fn a_garbage_digest_header_is_malformed() {
    let registry = RegistryServer::start().await;
    registry
        .push_image("team/app", "v1", Flavor::Oci, "garbage")
        .await;
    let front = Front::start(&registry.base_url(), Mode::Pass).await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();
    for bad in ["sha256:NOTHEX", "md5:abc", "sha256:abc"] {
        front.set_mode(Mode::RewriteDigest(bad.to_owned()));
        let err = client(1).resolve(&reference).await.unwrap_err();
        let RegistryError::Malformed { problem, .. } = &err else {
            panic!("{bad}: expected Malformed, got {err:?}");
        };
        assert!(problem.contains("Docker-Content-Digest"), "{problem}");
    }
}

#[tokio::test]
async fn a_missing_tag_costs_one_head_and_one_tag_list_probe() {
    let registry = RegistryServer::start().await;
    let front = Front::start(&registry.base_url(), Mode::Pass).await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();
    let err = client(3).resolve(&reference).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert_eq!(
        front.calls(),
        vec![
            ("HEAD".to_owned(), "/v2/team/app/manifests/v1".to_owned()),
            ("GET".to_owned(), "/v2/team/app/tags/list".to_owned()),
        ]
    );
}
