//! The Bearer-token flow against the real registry with `auth: token`
//! (it verifies every token our test token service signs), docker
//! credentials, and what happens when auth goes wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use revertbot::domain::image::ImageRef;
use revertbot::registry::{CredentialSource, Registry, RegistryConfig, RegistryError};
use support::http::base64_encode;
use support::registry_server::front::{Front, Mode};
use support::registry_server::token::{self, TokenServer};
use support::registry_server::{Flavor, Pushed, RegistryServer, install_crypto};

const USER: &str = "bot";
const PASSWORD: &str = "s3cret-pa55";
const IDENTITY_TOKEN: &str = "refresh-7f3a";

/// An open registry for uploads, a token-auth registry on the same
/// storage, its token service and a counting proxy in front of it.
struct Secured {
    _open: RegistryServer,
    _secured: RegistryServer,
    token: TokenServer,
    front: Front,
    public: Pushed,
    private: Pushed,
}

impl Secured {
    async fn start() -> Secured {
        let open = RegistryServer::start().await;
        let public = open
            .push_image("public/app", "v1", Flavor::Oci, "public")
            .await;
        open.push_image("public/other", "v1", Flavor::Docker, "other")
            .await;
        let private = open
            .push_image("private/app", "v1", Flavor::Oci, "private")
            .await;
        let token = TokenServer::start(&[(USER, PASSWORD)], &[("oauth-bot", IDENTITY_TOKEN)]).await;
        let secured = RegistryServer::start_with_token_auth(open.storage(), &token).await;
        let front = Front::start(&secured.base_url(), Mode::Pass).await;
        Secured {
            _open: open,
            _secured: secured,
            token,
            front,
            public,
            private,
        }
    }

    fn image(&self, path: &str) -> ImageRef {
        format!("{}/{path}", self.front.host()).parse().unwrap()
    }

    fn registry_calls(&self) -> Vec<(String, String, bool)> {
        self.front
            .seen()
            .into_iter()
            .map(|s| {
                let bearer = s.authorization.is_some_and(|a| a.starts_with("Bearer "));
                (s.method, s.target, bearer)
            })
            .collect()
    }
}

fn client(credentials: CredentialSource) -> Registry {
    install_crypto();
    Registry::new(RegistryConfig {
        credentials,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RegistryConfig::default()
    })
    .unwrap()
}

/// A docker config dir, as `DOCKER_CONFIG` would name it.
fn docker_config(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

fn login(dir: &Path) -> CredentialSource {
    CredentialSource::DockerConfig(Some(dir.to_owned()))
}

#[tokio::test]
async fn anonymous_bearer_flow_then_cached_token() {
    let s = Secured::start().await;
    let client = client(CredentialSource::Anonymous);

    let got = client.resolve(&s.image("public/app:v1")).await.unwrap();
    assert_eq!(got.as_str(), s.public.digest);
    let manifest = "/v2/public/app/manifests/v1".to_owned();
    assert_eq!(
        s.registry_calls(),
        vec![
            ("HEAD".to_owned(), manifest.clone(), false),
            ("HEAD".to_owned(), manifest.clone(), true),
        ]
    );
    let seen = s.token.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].user, None);
    assert_eq!(
        seen[0].scopes,
        vec!["repository:public/app:pull".to_owned()]
    );

    // Same scope again: the cached token, one call, no token request.
    s.front.clear();
    client.resolve(&s.image("public/app:v1")).await.unwrap();
    assert_eq!(
        s.registry_calls(),
        vec![("HEAD".to_owned(), manifest, true)]
    );
    assert_eq!(s.token.seen().len(), 1);

    // Another repository on a registry known to want tokens: the token is
    // fetched up front, no 401 round trip.
    s.front.clear();
    client.resolve(&s.image("public/other:v1")).await.unwrap();
    assert_eq!(
        s.registry_calls(),
        vec![(
            "HEAD".to_owned(),
            "/v2/public/other/manifests/v1".to_owned(),
            true
        )]
    );
    assert_eq!(s.token.seen().len(), 2);
    assert_eq!(
        s.token.seen()[1].scopes,
        vec!["repository:public/other:pull".to_owned()]
    );
}

#[tokio::test]
async fn a_refused_cached_token_is_replaced_not_reused() {
    let s = Secured::start().await;
    let client = client(CredentialSource::Anonymous);
    client.resolve(&s.image("public/app:v1")).await.unwrap();
    assert_eq!(s.token.seen().len(), 1);

    s.front.set_mode(Mode::ChallengeOnce(format!(
        r#"Bearer realm="{}",service="{}",scope="repository:public/app:pull",error="invalid_token""#,
        s.token.realm(),
        token::SERVICE
    )));
    s.front.clear();
    let got = client.resolve(&s.image("public/app:v1")).await.unwrap();
    assert_eq!(got.as_str(), s.public.digest);
    assert_eq!(s.token.seen().len(), 2, "a fresh token after the 401");
    let calls = s.registry_calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|(_, _, bearer)| *bearer));
    let tokens: Vec<_> = s
        .front
        .seen()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_ne!(tokens[0], tokens[1], "the refused token was offered again");
}

#[tokio::test]
async fn basic_credentials_from_docker_config_get_a_token_for_a_private_repo() {
    let s = Secured::start().await;
    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    let dir = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        s.front.host()
    ));
    let client = client(login(dir.path()));

    let got = client.resolve(&s.image("private/app:v1")).await.unwrap();
    assert_eq!(got.as_str(), s.private.digest);
    let seen = s.token.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].user.as_deref(), Some(USER));
    assert_eq!(seen[0].granted, vec!["private/app:pull".to_owned()]);
    // Credentials go to the token service only, never to the registry.
    assert!(s.front.seen().iter().all(|r| {
        !r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic"))
    }));
    assert!(!format!("{client:?}").contains(PASSWORD));
}

#[tokio::test]
async fn identity_token_uses_the_oauth2_refresh_grant() {
    let s = Secured::start().await;
    let dir = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"identitytoken":"{IDENTITY_TOKEN}"}}}}}}"#,
        s.front.host()
    ));
    let client = client(login(dir.path()));
    let got = client.resolve(&s.image("private/app:v1")).await.unwrap();
    assert_eq!(got.as_str(), s.private.digest);
    let seen = s.token.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].user.as_deref()),
        ("POST", Some("oauth-bot"))
    );
}

#[tokio::test]
async fn private_repo_without_credentials_is_unauthorized_with_a_login_hint() {
    let s = Secured::start().await;
    let dir = docker_config(r#"{"auths":{}}"#);
    let client = client(login(dir.path()));

    let reference = s.image("private/app:v1");
    let err = client.resolve(&reference).await.unwrap_err();
    let RegistryError::Unauthorized {
        registry,
        reference: r,
        hint,
        ..
    } = &err
    else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert_eq!(registry, &s.front.host());
    assert_eq!(r, reference.original());
    assert!(
        hint.contains(&format!("docker login {}", s.front.host())),
        "{hint}"
    );
    assert!(hint.contains("config.json"), "{hint}");
    // 401 → anonymous token (no access) → 401 again: then give up.
    assert_eq!(s.front.seen().len(), 2);
    assert_eq!(s.token.seen().len(), 1);
    assert!(s.token.seen()[0].granted.is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_never_echoed() {
    let s = Secured::start().await;
    let wrong = "not-the-password-42";
    let auth = base64_encode(format!("{USER}:{wrong}").as_bytes());
    let dir = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        s.front.host()
    ));
    let client = client(login(dir.path()));
    let err = client
        .resolve(&s.image("private/app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("user `bot`"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(&auth), "{text}");
}

#[tokio::test]
async fn a_broken_credential_helper_is_named_in_the_hint() {
    let s = Secured::start().await;
    let dir = docker_config(&format!(
        r#"{{"credHelpers":{{"{}":"revertbot-test-absent"}}}}"#,
        s.front.host()
    ));
    let client = client(login(dir.path()));
    // Public images still resolve anonymously...
    client.resolve(&s.image("public/app:v1")).await.unwrap();
    // ...private ones fail with the helper problem in the hint.
    let err = client
        .resolve(&s.image("private/app:v1"))
        .await
        .unwrap_err();
    let RegistryError::Unauthorized { hint, .. } = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert!(hint.contains("credential helper"), "{hint}");
}

#[tokio::test]
async fn malformed_challenges_are_malformed_errors() {
    let open = RegistryServer::start().await;
    let front = Front::start(&open.base_url(), Mode::Pass).await;
    let client = client(CredentialSource::Anonymous);
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();
    let cases = [
        r#"Bearer realm="http://127.0.0.1:1/token"#,
        r#"Bearer service="registry",scope="repository:team/app:pull""#,
        r#"Bearer realm="/token",service="registry""#,
        r#"Bearer realm="http://127.0.0.1:1/token" service="x""#,
        r#"Negotiate abc"#,
        "",
    ];
    for header in cases {
        front.set_mode(Mode::Challenge(header.to_owned()));
        front.clear();
        let err = client.resolve(&reference).await.unwrap_err();
        let RegistryError::Malformed {
            registry,
            reference: r,
            problem,
        } = &err
        else {
            panic!("{header:?}: expected Malformed, got {err:?}");
        };
        assert_eq!(
            (registry.as_str(), r.as_str()),
            (front.host().as_str(), reference.original())
        );
        assert!(
            problem.contains("challenge") || problem.contains("WWW-Authenticate"),
            "{problem}"
        );
        // One request: a challenge we cannot read is not retried.
        assert_eq!(front.seen().len(), 1, "{header:?}");
    }
}

#[tokio::test]
async fn a_plain_http_token_service_off_loopback_gets_no_credentials() {
    let open = RegistryServer::start().await;
    let front = Front::start(&open.base_url(), Mode::Pass).await;
    front.set_mode(Mode::Challenge(
        r#"Bearer realm="http://auth.example.com/token",service="registry""#.to_owned(),
    ));
    let client = client(CredentialSource::Anonymous);
    let err = client
        .resolve(&format!("{}/team/app:v1", front.host()).parse().unwrap())
        .await
        .unwrap_err();
    let RegistryError::Malformed { problem, .. } = &err else {
        panic!("expected Malformed, got {err:?}");
    };
    assert!(problem.contains("plain HTTP"), "{problem}");
}

#[tokio::test]
async fn the_token_service_issues_tokens_the_registry_accepts() {
    // Self-test of the support code: without our client, a token from the
    // service opens the private repository on the token-auth registry.
    let s = Secured::start().await;
    let http = reqwest::Client::new();
    let body: serde_json::Value = http
        .get(s.token.realm())
        .query(&[
            ("service", token::SERVICE),
            ("scope", "repository:private/app:pull"),
        ])
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = body["token"].as_str().unwrap();
    let url = format!("http://{}/v2/private/app/manifests/v1", s.front.host());
    let accept = revertbot::registry::MANIFEST_ACCEPT;
    let denied = http
        .head(&url)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let ok = http
        .head(&url)
        .header("accept", accept)
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn basic_auth_registries_get_the_docker_credentials_directly() {
    let open = RegistryServer::start().await;
    let pushed = open
        .push_image("team/app", "v1", Flavor::Oci, "basic")
        .await;
    let front = Front::start(
        &open.base_url(),
        Mode::Basic {
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
        },
    )
    .await;
    let reference: ImageRef = format!("{}/team/app:v1", front.host()).parse().unwrap();

    let anonymous = client(CredentialSource::Anonymous);
    let err = anonymous.resolve(&reference).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unauthorized { hint, .. } if hint.contains("anonymous")),
        "{err:?}"
    );

    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    let dir = docker_config(&format!(
        r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
        front.host()
    ));
    let client = client(login(dir.path()));
    front.clear();
    assert_eq!(
        client.resolve(&reference).await.unwrap().as_str(),
        pushed.digest
    );
    assert_eq!(front.seen().len(), 2, "401, then with Basic");
    // Known to want Basic: sent up front next time.
    front.clear();
    client.resolve(&reference).await.unwrap();
    assert_eq!(front.seen().len(), 1);
    assert!(
        front.seen()[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Basic ")
    );
}
