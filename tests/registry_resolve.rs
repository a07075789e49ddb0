//! Tag → digest against Debian's real `docker-registry` on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use revertbot::domain::image::{Digest, ImageRef};
use revertbot::registry::{CredentialSource, Missing, Registry, RegistryConfig, RegistryError};
use support::registry_server::front::{Front, Mode};
use support::registry_server::{Flavor, RegistryServer, install_crypto};

fn client() -> Registry {
    install_crypto();
    Registry::new(RegistryConfig {
        credentials: CredentialSource::Anonymous,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn image(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_tag_resolves_to_the_digest_the_registry_reports() {
    let registry = RegistryServer::start().await;
    let oci = registry
        .push_image("team/app", "v1", Flavor::Oci, "oci v1")
        .await;
    let docker = registry
        .push_image("team/legacy", "1.0", Flavor::Docker, "docker 1.0")
        .await;
    let client = client();

    let host = registry.host();
    let got = client
        .resolve(&image(&format!("{host}/team/app:v1")))
        .await
        .unwrap();
    assert_eq!(got, digest(&oci.digest));
    let got = client
        .resolve(&image(&format!("{host}/team/legacy:1.0")))
        .await
        .unwrap();
    assert_eq!(got, digest(&docker.digest));
}

#[tokio::test]
async fn an_index_resolves_to_the_index_digest_not_a_platform_manifest() {
    let registry = RegistryServer::start().await;
    let amd64 = registry
        .push_image("multi/app", "amd64", Flavor::Oci, "amd64")
        .await;
    let arm64 = registry
        .push_image("multi/app", "arm64", Flavor::Oci, "arm64")
        .await;
    let index = registry
        .push_index(
            "multi/app",
            "v2",
            Flavor::Oci,
            &[(&amd64, "linux", "amd64"), (&arm64, "linux", "arm64")],
        )
        .await;
    let d_amd64 = registry
        .push_image("multi/legacy", "amd64", Flavor::Docker, "d-amd64")
        .await;
    let d_ppc = registry
        .push_image("multi/legacy", "ppc", Flavor::Docker, "d-ppc")
        .await;
    let list = registry
        .push_index(
            "multi/legacy",
            "v2",
            Flavor::Docker,
            &[(&d_amd64, "linux", "amd64"), (&d_ppc, "linux", "ppc64le")],
        )
        .await;
    let client = client();
    let host = registry.host();

    let got = client
        .resolve(&image(&format!("{host}/multi/app:v2")))
        .await
        .unwrap();
    assert_eq!(got, digest(&index.digest));
    assert_ne!(got, digest(&amd64.digest));
    assert_ne!(got, digest(&arm64.digest));

    let got = client
        .resolve(&image(&format!("{host}/multi/legacy:v2")))
        .await
        .unwrap();
    assert_eq!(got, digest(&list.digest));
    assert_ne!(got, digest(&d_amd64.digest));
}

#[tokio::test]
async fn repointing_a_tag_changes_the_result() {
    let registry = RegistryServer::start().await;
    let good = registry
        .push_image("team/app", "v1", Flavor::Oci, "good build")
        .await;
    let bad = registry
        .push_image("team/app", "v1-rebuild", Flavor::Oci, "bad build")
        .await;
    let client = client();
    let v1 = image(&format!("{}/team/app:v1", registry.host()));

    assert_eq!(client.resolve(&v1).await.unwrap(), digest(&good.digest));
    registry.retag("team/app", "v1", &bad).await;
    assert_eq!(client.resolve(&v1).await.unwrap(), digest(&bad.digest));
    registry.retag("team/app", "v1", &good).await;
    assert_eq!(client.resolve(&v1).await.unwrap(), digest(&good.digest));
}

#[tokio::test]
async fn digest_pinned_references_resolve_without_a_call() {
    let registry = RegistryServer::start().await;
    let front = Front::start(&registry.base_url(), Mode::Pass).await;
    let client = client();
    let pinned = format!("sha256:{}", "ab".repeat(32));
    for s in [
        format!("{}/team/app@{pinned}", front.host()),
        format!("{}/team/app:v1@{pinned}", front.host()),
    ] {
        assert_eq!(client.resolve(&image(&s)).await.unwrap(), digest(&pinned));
    }
    assert_eq!(front.calls(), Vec::<(String, String)>::new());
}

#[tokio::test]
async fn one_head_request_per_resolve_on_an_open_registry() {
    let registry = RegistryServer::start().await;
    let pushed = registry
        .push_image("team/app", "v1", Flavor::Oci, "counted")
        .await;
    let front = Front::start(&registry.base_url(), Mode::Pass).await;
    let client = client();
    let got = client
        .resolve(&image(&format!("{}/team/app:v1", front.host())))
        .await
        .unwrap();
    assert_eq!(got, digest(&pushed.digest));
    assert_eq!(
        front.calls(),
        vec![("HEAD".to_owned(), "/v2/team/app/manifests/v1".to_owned())]
    );
    let accept = front.seen();
    assert!(accept[0].authorization.is_none());
}

#[tokio::test]
async fn the_accept_header_lists_indexes_first() {
    // The registry down-converts or picks a platform without the index
    // types: prove the header we send is the full list, in order.
    let registry = RegistryServer::start().await;
    let a = registry.push_image("m/app", "a", Flavor::Oci, "a").await;
    let index = registry
        .push_index("m/app", "v1", Flavor::Oci, &[(&a, "linux", "amd64")])
        .await;
    let client = client();
    let got = client
        .resolve(&image(&format!("{}/m/app:v1", registry.host())))
        .await
        .unwrap();
    assert_eq!(got, digest(&index.digest));
    assert!(revertbot::registry::MANIFEST_ACCEPT.starts_with(
        "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    ));
}

#[tokio::test]
async fn without_a_digest_header_the_manifest_bytes_are_hashed() {
    let registry = RegistryServer::start().await;
    let a = registry.push_image("team/app", "a", Flavor::Oci, "a").await;
    let b = registry.push_image("team/app", "b", Flavor::Oci, "b").await;
    let index = registry
        .push_index(
            "team/app",
            "v3",
            Flavor::Oci,
            &[(&a, "linux", "amd64"), (&b, "linux", "arm64")],
        )
        .await;
    let front = Front::start(&registry.base_url(), Mode::StripDigest).await;
    let client = client();
    let got = client
        .resolve(&image(&format!("{}/team/app:v3", front.host())))
        .await
        .unwrap();
    assert_eq!(got, digest(&index.digest));
    assert_eq!(
        front.calls(),
        vec![
            ("HEAD".to_owned(), "/v2/team/app/manifests/v3".to_owned()),
            ("GET".to_owned(), "/v2/team/app/manifests/v3".to_owned()),
        ]
    );
}

#[tokio::test]
async fn unknown_tag_and_unknown_repository_are_not_found_and_named() {
    let registry = RegistryServer::start().await;
    registry
        .push_image("team/app", "v1", Flavor::Oci, "v1")
        .await;
    let client = client();
    let host = registry.host();

    let missing_tag = format!("{host}/team/app:v404");
    let err = client.resolve(&image(&missing_tag)).await.unwrap_err();
    let RegistryError::NotFound {
        registry: r,
        reference,
        missing,
        ..
    } = &err
    else {
        panic!("expected NotFound, got {err:?}");
    };
    assert_eq!(
        (r.as_str(), reference.as_str(), *missing),
        (host.as_str(), missing_tag.as_str(), Missing::Manifest)
    );
    let text = err.to_string();
    assert!(
        text.contains(&host) && text.contains(&missing_tag) && text.contains("team/app"),
        "{text}"
    );

    let missing_repo = format!("{host}/team/nothing:v1");
    let err = client.resolve(&image(&missing_repo)).await.unwrap_err();
    let RegistryError::NotFound { missing, .. } = &err else {
        panic!("expected NotFound, got {err:?}");
    };
    assert_eq!(*missing, Missing::Repository);
    assert!(
        err.to_string()
            .contains("repository `team/nothing` not found"),
        "{err}"
    );
}

#[tokio::test]
async fn a_deleted_manifest_is_not_found() {
    let registry = RegistryServer::start().await;
    let pushed = registry
        .push_image("team/app", "v1", Flavor::Oci, "gone")
        .await;
    let client = client();
    let v1 = image(&format!("{}/team/app:v1", registry.host()));
    assert_eq!(client.resolve(&v1).await.unwrap(), digest(&pushed.digest));
    registry.delete_manifest("team/app", &pushed.digest).await;
    assert!(matches!(
        client.resolve(&v1).await,
        Err(RegistryError::NotFound { .. })
    ));
}

#[tokio::test]
async fn tag_exists_for_evidence_tags() {
    let registry = RegistryServer::start().await;
    let pushed = registry
        .push_image("team/app", "v1", Flavor::Oci, "e")
        .await;
    let client = client();
    let host = registry.host();
    assert!(
        client
            .tag_exists(&image(&format!("{host}/team/app:v1")))
            .await
            .unwrap()
    );
    assert!(
        !client
            .tag_exists(&image(&format!("{host}/team/app:v2")))
            .await
            .unwrap()
    );
    assert!(
        !client
            .tag_exists(&image(&format!("{host}/team/none:v1")))
            .await
            .unwrap()
    );
    assert!(
        client
            .tag_exists(&image(&format!("{host}/team/app@{}", pushed.digest)))
            .await
            .unwrap()
    );
}
