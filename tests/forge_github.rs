#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The GitHub client against the strict fake: exactly one pull request per
//! head branch under reruns, lost answers, races and rate limits; GitHub
//! Enterprise paths; the token never in an error.

mod support;

use std::time::Duration;

use axum::http::Method;
use revertbot::forge::{Endpoints, ForgeError, GitHub, NewPullRequest, Published};
use revertbot::retry::Policy;
use secrecy::SecretString;
use support::fake_github::{FakeGitHub, Fault, OWNER, REPO, TOKEN};

const BRANCH: &str = "revertbot/guestbook/4b825dc642cb";

fn client(fake: &FakeGitHub, token: &str) -> GitHub {
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    GitHub::new(
        endpoints,
        &format!("{OWNER}/{REPO}"),
        SecretString::from(token.to_owned()),
    )
    .unwrap()
    .with_policy(Policy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}

fn new_pr() -> NewPullRequest<'static> {
    NewPullRequest {
        title: "Revert guestbook to 1a2b3c4 (incident guestbook-4b825dc642cb)",
        body: "revertbot body",
        head: BRANCH,
        base: "main",
    }
}

#[tokio::test]
async fn one_pull_request_per_branch_however_often_it_is_asked_for() {
    let fake = FakeGitHub::start().await;
    let gh = client(&fake, TOKEN);
    let first = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(first, Published::Opened(_)), "{first:?}");
    assert_eq!(first.pr().number, 1);
    assert_eq!(first.pr().head.branch, BRANCH);
    assert!(first.pr().html_url.ends_with("/pull/1"));
    let again = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(again, Published::Existing(_)), "{again:?}");
    gh.add_labels(1, &["revertbot".to_owned()]).await.unwrap();
    gh.add_labels(1, &["revertbot".to_owned()]).await.unwrap();
    gh.request_reviewers(1, &["sre-oncall".to_owned()])
        .await
        .unwrap();
    gh.add_assignees(1, &["alice".to_owned()]).await.unwrap();
    gh.update_body(1, "refreshed").await.unwrap();
    let prs = fake.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].labels, ["revertbot"]);
    assert_eq!(prs[0].reviewers, ["sre-oncall"]);
    assert_eq!(prs[0].assignees, ["alice"]);
    assert_eq!(prs[0].body, "refreshed");
    fake.finish();
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
    let fake = FakeGitHub::start().await;
    fake.fault(Method::POST, "/pulls", Fault::BadGatewayAfterWrite);
    let gh = client(&fake, TOKEN);
    let published = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(published, Published::Existing(_)), "{published:?}");
    assert_eq!(fake.pull_requests().len(), 1);
    let posts = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "{:?}", fake.calls());
    fake.finish();
}

#[tokio::test]
async fn a_502_before_the_create_is_retried_after_looking() {
    let fake = FakeGitHub::start().await;
    fake.fault(Method::POST, "/pulls", Fault::BadGateway);
    let gh = client(&fake, TOKEN);
    let published = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(published, Published::Opened(_)), "{published:?}");
    assert_eq!(fake.pull_requests().len(), 1);
    assert_eq!(
        fake.calls(),
        [
            "GET /repos/acme/infra/pulls",
            "POST /repos/acme/infra/pulls",
            "GET /repos/acme/infra/pulls",
            "POST /repos/acme/infra/pulls"
        ]
    );
    fake.finish();
}

#[tokio::test]
async fn a_racing_run_that_opened_it_first_is_recovered_from_the_422() {
    let fake = FakeGitHub::start().await;
    fake.fault(Method::POST, "/pulls", Fault::RacingCreate);
    let gh = client(&fake, TOKEN);
    let published = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(published, Published::Existing(_)), "{published:?}");
    assert_eq!(fake.pull_requests().len(), 1);
    fake.finish();
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out_as_retry_after_says() {
    let fake = FakeGitHub::start().await;
    fake.fault(
        Method::POST,
        "/pulls",
        Fault::SecondaryLimit { retry_after: 1 },
    );
    let gh = client(&fake, TOKEN);
    let published = gh.open_pr(&new_pr()).await.unwrap();
    assert!(matches!(published, Published::Opened(_)), "{published:?}");
    assert_eq!(fake.pull_requests().len(), 1);
    fake.finish();
}

#[tokio::test]
async fn a_server_that_keeps_failing_gives_up_after_the_policy_with_a_clear_error() {
    let fake = FakeGitHub::start().await;
    for _ in 0..4 {
        fake.fault(Method::GET, "/pulls", Fault::BadGateway);
    }
    let gh = client(&fake, TOKEN);
    let err = gh.find_pr(BRANCH).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("HTTP 502 while looking for a pull request"),
        "{err}"
    );
    assert_eq!(fake.calls().len(), 4, "bounded: {:?}", fake.calls());
    fake.finish();
}

#[tokio::test]
async fn github_enterprise_serves_the_api_under_api_v3() {
    let fake = FakeGitHub::start_at("/api/v3").await;
    let endpoints = Endpoints::resolve(Some(&fake.url()), None).unwrap();
    assert!(
        endpoints.graphql.as_str().ends_with("/api/graphql"),
        "{}",
        endpoints.graphql
    );
    let gh = client(&fake, TOKEN);
    let published = gh.open_pr(&new_pr()).await.unwrap();
    assert_eq!(published.pr().number, 1);
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.contains(" /api/v3/repos/acme/infra/")),
        "{:?}",
        fake.calls()
    );
    fake.finish();
}

#[tokio::test]
async fn a_refused_token_is_a_clear_error_that_never_shows_the_token() {
    let fake = FakeGitHub::start().await;
    let wrong = "ghp_wrongTokenValue0123456789abcdefXYZ";
    let gh = client(&fake, wrong);
    let err = gh.open_pr(&new_pr()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ForgeError::Denied { status: 401, .. }),
        "{err:?}"
    );
    assert!(text.contains("check that GITHUB_TOKEN may"), "{text}");
    assert!(
        !text.contains(wrong) && !format!("{err:?}").contains(wrong),
        "{text}"
    );
    assert_eq!(
        fake.take_violations().len(),
        1,
        "the call without the right token"
    );
    fake.finish();
}

#[test]
fn the_token_never_goes_over_plain_http_to_another_host() {
    let endpoints = Endpoints::resolve(Some("http://ghe.acme.io/api/v3"), None).unwrap();
    let err = GitHub::new(
        endpoints,
        "acme/infra",
        SecretString::from(TOKEN.to_owned()),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("refusing to send GITHUB_TOKEN over plain http"),
        "{err}"
    );
    let endpoints = Endpoints::resolve(None, None).unwrap();
    let err = GitHub::new(endpoints, "acme", SecretString::from(TOKEN.to_owned()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("not owner/name"), "{err}");
}
