//! The GitHub client's App authentication, auto-merge and comments against
//! the strict fake: the JWT is verified by the App's public key, tokens are
//! refreshed before they expire, auto-merge asks for exactly the head it
//! built (GraphQL on github.com and Enterprise), refusals say what to fix,
//! and a comment is posted once however the answers get lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use axum::http::Method;
use revertbot::forge::app_token::AppCredentials;
use revertbot::forge::auto_merge::Refusal;
use revertbot::forge::{Endpoints, ForgeError, GitHub, NewPullRequest, PrState, Published};
use revertbot::retry::Policy;
use secrecy::SecretString;
use support::fake_github::{AppKey, FakeGitHub, Fault, OWNER, REPO, TOKEN};

const BRANCH: &str = "revertbot/guestbook/4b825dc642cb";
const APP_ID: &str = "424242";

fn fast(gh: GitHub) -> GitHub {
    gh.with_policy(Policy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}

fn client(fake: &FakeGitHub) -> GitHub {
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    fast(
        GitHub::new(
            endpoints,
            &format!("{OWNER}/{REPO}"),
            SecretString::from(TOKEN.to_owned()),
        )
        .unwrap(),
    )
}

fn new_pr() -> NewPullRequest<'static> {
    NewPullRequest {
        title: "revertbot: revert guestbook",
        body: "body",
        head: BRANCH,
        base: "main",
    }
}

async fn opened(gh: &GitHub) -> revertbot::forge::PullRequest {
    match gh.open_pr(&new_pr()).await.unwrap() {
        Published::Opened(pr) => pr,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn auto_merge_is_asked_for_the_head_revertbot_built() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    gh.enable_auto_merge(&pr, &pr.head.sha).await.unwrap();
    // Asking again (a rerun) is fine.
    gh.enable_auto_merge(&pr, &pr.head.sha).await.unwrap();
    assert_eq!(fake.pull_requests()[0].auto_merge.as_deref(), Some("MERGE"));
    fake.finish();
}

#[tokio::test]
async fn each_refusal_says_what_to_fix() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    let refusal = |e: ForgeError| match e {
        ForgeError::AutoMergeRefused { refusal, .. } => refusal,
        other => panic!("{other:?}"),
    };
    let moved = gh
        .enable_auto_merge(&pr, &"0".repeat(40))
        .await
        .unwrap_err();
    assert!(moved.to_string().contains("branch moved"), "{moved}");
    assert_eq!(refusal(moved), Refusal::HeadMoved);

    fake.unprotect();
    let open = gh.enable_auto_merge(&pr, &pr.head.sha).await.unwrap_err();
    assert!(open.to_string().contains("protection rule"), "{open}");
    assert_eq!(refusal(open), Refusal::NoProtection);

    fake.disallow_auto_merge();
    let off = gh.enable_auto_merge(&pr, &pr.head.sha).await.unwrap_err();
    assert!(off.to_string().contains("Allow auto-merge"), "{off}");
    assert!(
        off.to_string()
            .contains("Pull request Auto merge is not allowed for this repository"),
        "GitHub's own words are quoted: {off}"
    );
    assert_eq!(refusal(off), Refusal::NotAllowed);
    assert_eq!(fake.pull_requests()[0].auto_merge, None);
    fake.finish();
}

#[tokio::test]
async fn on_enterprise_graphql_is_at_api_graphql_not_under_api_v3() {
    let fake = FakeGitHub::start_at("/api/v3").await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    let result = gh.enable_auto_merge(&pr, &pr.head.sha).await;
    assert!(result.is_ok(), "{result:?} {:?}", fake.calls());
    assert!(
        fake.calls().contains(&"POST /api/graphql".to_owned()),
        "{:?}",
        fake.calls()
    );
    fake.finish();
}

#[tokio::test]
async fn a_502_on_auto_merge_is_retried() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    fake.fault(Method::POST, "/graphql", Fault::BadGatewayAfterWrite);
    gh.enable_auto_merge(&pr, &pr.head.sha).await.unwrap();
    assert_eq!(fake.pull_requests()[0].auto_merge.as_deref(), Some("MERGE"));
    fake.finish();
}

#[tokio::test]
async fn a_comment_is_posted_once_even_when_its_answer_is_lost() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    let marker = "<!-- revertbot:healthy:guestbook-4b825dc642cb -->";
    let body = format!("Healthy at the revert.\n\n{marker}");
    fake.fault(Method::POST, "/comments", Fault::BadGatewayAfterWrite);
    gh.comment_once(pr.number, marker, &body).await.unwrap();
    gh.comment_once(pr.number, marker, &body).await.unwrap();
    assert_eq!(fake.pull_requests()[0].comments, vec![body]);
    fake.finish();
}

#[tokio::test]
async fn a_closed_or_merged_pull_request_is_found_and_never_opened_again() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    fake.close(pr.number);
    let again = gh.open_pr(&new_pr()).await.unwrap();
    let Published::Existing(found) = again else {
        panic!("{again:?}")
    };
    assert_eq!(found.state(), PrState::Rejected);
    assert_eq!(fake.pull_requests().len(), 1);

    let fake = FakeGitHub::start().await;
    let gh = client(&fake);
    let pr = opened(&gh).await;
    fake.merge(pr.number);
    let found = gh.find_pr(BRANCH).await.unwrap().unwrap();
    assert_eq!(found.state(), PrState::Merged);
    fake.finish();
}

fn app_client_setup(fake: &FakeGitHub, ttl: Duration) -> (AppKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = AppKey::generate(dir.path());
    fake.enable_app(&key, ttl);
    (key, dir)
}

#[tokio::test]
async fn a_github_app_exchanges_its_jwt_for_an_installation_token() {
    let fake = FakeGitHub::start().await;
    let (key, _dir) = app_client_setup(&fake, Duration::from_secs(3600));
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    let app = AppCredentials::new(APP_ID, &key.private_pem, None).unwrap();
    let gh = fast(
        GitHub::with_app(endpoints, &format!("{OWNER}/{REPO}"), app)
            .await
            .unwrap(),
    );
    let pr = opened(&gh).await;
    gh.add_labels(pr.number, &["revertbot".to_owned()])
        .await
        .unwrap();
    // One exchange, found through the repository's installation; the
    // plain token was never used.
    assert_eq!(fake.tokens_issued(), 1);
    let calls = fake.calls();
    assert_eq!(calls[0], format!("GET /repos/{OWNER}/{REPO}/installation"));
    assert!(
        calls[1].starts_with("POST /app/installations/"),
        "{calls:?}"
    );
    fake.finish();
}

#[tokio::test]
async fn an_installation_token_about_to_expire_is_replaced_before_the_call() {
    let fake = FakeGitHub::start().await;
    // Tokens that live four minutes: inside the five-minute refresh margin.
    let (key, _dir) = app_client_setup(&fake, Duration::from_secs(240));
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    let app = AppCredentials::new(APP_ID, &key.private_pem, Some(7_654_321)).unwrap();
    let gh = fast(
        GitHub::with_app(endpoints, &format!("{OWNER}/{REPO}"), app)
            .await
            .unwrap(),
    );
    assert_eq!(fake.tokens_issued(), 1);
    let _ = gh.find_pr(BRANCH).await.unwrap();
    let _ = gh.find_pr(BRANCH).await.unwrap();
    assert_eq!(fake.tokens_issued(), 3, "{:?}", fake.calls());
    fake.finish();
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_no_secret_is_quoted() {
    let fake = FakeGitHub::start().await;
    let (_key, dir) = app_client_setup(&fake, Duration::from_secs(3600));
    // Another App's key: GitHub cannot verify the JWT.
    let other = AppKey::generate(
        &dir.path()
            .join("..")
            .canonicalize()
            .unwrap()
            .join(dir.path().file_name().unwrap()),
    );
    let _ = other;
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = AppKey::generate(stranger_dir.path());
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    let app = AppCredentials::new(APP_ID, &stranger.private_pem, None).unwrap();
    let err = GitHub::with_app(endpoints, &format!("{OWNER}/{REPO}"), app)
        .await
        .err()
        .expect("a JWT signed by another key is refused");
    let text = err.to_string();
    assert!(text.contains("GITHUB_APP_ID"), "{text}");
    assert!(text.contains("GITHUB_APP_PRIVATE_KEY"), "{text}");
    for line in stranger
        .private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!text.contains(line), "{text}");
    }
    assert!(
        !format!("{err:?}").contains("PRIVATE KEY-----\n"),
        "{err:?}"
    );
    // The fake saw an unverifiable JWT: that is the point of this test.
    assert_eq!(fake.take_violations().len(), 1);
    fake.finish();
}
