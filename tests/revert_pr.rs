//! `revert --mode pr` with the real binary: the revert goes to its own
//! branch on a real smart-HTTP remote, and one pull request is opened on the
//! strict fake GitHub, which reads the branches of that same remote. Reruns,
//! a run that stopped after its push, a branch someone else took, and a
//! missing setup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::process::Output;

use axum::http::Method;
use serde_json::Value;
use support::fake_github::{FakeGitHub, Fault};
use support::infra::{REMOTE, Sandbox, good_digest, stderr, stdout};

const CONFIG: &str = "\
version: 1
repo:
  remote: origin
  branch: main
github:
  repository: acme/infra
  reviewers: [octocat]
  assignees: [hubot]
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
  - name: billing
    paths: [\"apps/billing/**\"]
    argocd: { app: billing }
";

/// A sandbox whose good release is recorded, and a fake GitHub serving its
/// remote's branches with the git host's token.
async fn setup() -> (Sandbox, FakeGitHub) {
    let sb = Sandbox::with_config(CONFIG);
    sb.record_good();
    let github = FakeGitHub::start().await;
    github.expect_token(sb.host.token());
    github.serve_git(&sb.host.root().join(REMOTE));
    (sb, github)
}

fn revert_pr(sb: &Sandbox, github: &FakeGitHub) -> Output {
    revert_pr_with(sb, &[("GITHUB_API_URL", &github.url())])
}

fn revert_pr_with(sb: &Sandbox, env: &[(&str, &str)]) -> Output {
    sb.run_with_env(
        &[
            "--output",
            "json",
            "revert",
            "--app",
            "guestbook",
            "--deployed",
            &sb.bad,
            "--mode",
            "pr",
            "--reason",
            "v2 crash-loops",
        ],
        sb.host.token(),
        env,
    )
}

fn report(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn branch(sb: &Sandbox) -> String {
    format!("revertbot/guestbook/{}", &sb.bad[..12])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_one_pull_request_from_its_own_branch_and_leaves_main_alone() {
    let (sb, github) = setup().await;
    let main_before = sb.remote_tip();
    let out = revert_pr(&sb, &github);
    let report = report(&out, 0);
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pr_opened", "{report}");
    assert_eq!(app["pr_url"], "https://github.com/acme/infra/pull/1");
    assert_eq!(app["healthy_confirmed"], false);
    assert!(
        app["reason"]
            .as_str()
            .unwrap()
            .contains("merge it into main"),
        "{report}"
    );

    // main is untouched; the branch holds one revert commit on main's tip.
    assert_eq!(sb.remote_tip(), main_before);
    let head = sb
        .host
        .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
        .expect("the revert branch was pushed");
    assert_eq!(app["revert_commit"], head.as_str());
    assert_eq!(
        sb.host.git(REMOTE, &["rev-parse", &format!("{head}^")]),
        main_before
    );
    let pinned = sb.remote_file(&head, "apps/guestbook/deployment.yaml");
    assert!(pinned.contains(&good_digest()), "{pinned}");
    let note = sb
        .remote_note(&head)
        .expect("the incident is in the ledger");
    assert_eq!(
        note["incidents"][0]["id"],
        format!("guestbook-{}", &sb.bad[..12])
    );

    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1, "{prs:?}");
    let pr = &prs[0];
    assert_eq!(pr.head, branch(&sb));
    assert_eq!(pr.base, "main");
    assert_eq!(pr.head_sha, head);
    assert_eq!(pr.labels, ["revertbot"]);
    assert_eq!(pr.reviewers, ["octocat"]);
    assert_eq!(pr.assignees, ["hubot"]);
    assert!(pr.title.starts_with("revert"), "{}", pr.title);
    assert!(
        pr.body.contains(&format!(
            "<!-- revertbot:incident=guestbook-{} -->",
            &sb.bad[..12]
        )),
        "{}",
        pr.body
    );
    assert!(pr.body.contains(&good_digest()), "{}", pr.body);
    assert!(
        pr.body.contains(&sb.bad[..12]),
        "the culprit is listed: {}",
        pr.body
    );
    assert!(pr.body.contains("### Guards checked"), "{}", pr.body);
    // The token reached GitHub and git, and nothing printed it.
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(sb.host.token()), "{text}");
    }
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_updates_the_same_pull_request_and_pushes_nothing() {
    let (sb, github) = setup().await;
    let first = report(&revert_pr(&sb, &github), 0);
    let head = first["apps"][0]["revert_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let notes = sb.host.rev_parse(REMOTE, "refs/notes/revertbot");

    let again = report(&revert_pr(&sb, &github), 0);
    let app = &again["apps"][0];
    assert_eq!(app["action"], "pr_updated", "{again}");
    assert_eq!(app["pr_url"], "https://github.com/acme/infra/pull/1");
    assert_eq!(app["revert_commit"], head.as_str());
    assert_eq!(github.pull_requests().len(), 1);
    assert_eq!(
        sb.host
            .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
            .unwrap(),
        head
    );
    // No second incident note either.
    assert_eq!(sb.host.rev_parse(REMOTE, "refs/notes/revertbot"), notes);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_could_not_open_its_pull_request_is_finished_by_the_next() {
    let (sb, github) = setup().await;
    // GitHub is down for the whole first run: every create attempt fails.
    for _ in 0..4 {
        github.fault(Method::POST, "/pulls", Fault::BadGateway);
    }
    let out = revert_pr(&sb, &github);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("opening the revert pull request"),
        "{}",
        stderr(&out)
    );
    assert!(github.pull_requests().is_empty());
    let head = sb
        .host
        .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
        .expect("the branch was pushed before GitHub was asked");

    // The next run finds the branch and opens its pull request, although
    // the incident's cooldown would hold a new revert.
    let again = report(&revert_pr(&sb, &github), 0);
    let app = &again["apps"][0];
    assert_eq!(app["action"], "pr_opened", "{again}");
    assert_eq!(app["revert_commit"], head.as_str());
    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].head_sha, head);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_someone_else_pushed_under_our_name_is_never_overwritten() {
    let (sb, github) = setup().await;
    // Someone pushes an unrelated change to the name revertbot would use.
    sb.dev.write(
        "apps/guestbook/deployment.yaml",
        "kind: Deployment\n# mine\n",
    );
    sb.dev.commit("not a revert");
    let theirs = sb.dev.rev_parse("HEAD");
    sb.dev.push(&[&format!("HEAD:refs/heads/{}", branch(&sb))]);

    let out = revert_pr(&sb, &github);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&branch(&sb)), "{err}");
    assert!(err.contains("never overwrites a branch"), "{err}");
    assert!(err.contains("is not a revertbot revert"), "{err}");
    assert_eq!(
        sb.host
            .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
            .unwrap(),
        theirs
    );
    assert!(github.pull_requests().is_empty());
    assert!(github.calls().is_empty(), "{:?}", github.calls());
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_or_a_repository_it_says_what_to_set_and_changes_nothing() {
    let sb = Sandbox::with_config(&CONFIG.replace("  repository: acme/infra\n", ""));
    sb.record_good();
    let github = FakeGitHub::start().await;
    let args = [
        "revert",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
        "--mode",
        "pr",
    ];
    let before = sb.remote_tip();

    let out = sb.run_with_env(&args, "", &[("GITHUB_API_URL", &github.url())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("GITHUB_TOKEN"), "{}", stderr(&out));

    let out = sb.run_with_env(&args, sb.host.token(), &[("GITHUB_API_URL", &github.url())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("set github.repository"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.remote_tip(), before);
    assert!(
        sb.host
            .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
            .is_none()
    );
    assert!(github.calls().is_empty());
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_a_person_closed_is_never_opened_again() {
    let (sb, github) = setup().await;
    let first = report(&revert_pr(&sb, &github), 0);
    assert_eq!(first["apps"][0]["action"], "pr_opened");
    // A reviewer rejects the revert: closed, not merged.
    github.close(1);
    let again = report(&revert_pr(&sb, &github), 4);
    let app = &again["apps"][0];
    assert_eq!(app["action"], "blocked", "{again}");
    let reason = app["reason"].as_str().unwrap();
    assert!(reason.contains("closed without merging"), "{reason}");
    assert!(
        reason.contains(&branch(&sb)),
        "says how to let it try again: {reason}"
    );
    assert_eq!(github.pull_requests().len(), 1);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_github_app_the_pull_request_and_the_push_use_its_installation_token() {
    // The fetch still authenticates with GITHUB_TOKEN (see the README's
    // "Tokens"); the fake GitHub refuses that token once the App is on, so
    // every API call below carried an installation token.
    let sb = Sandbox::with_config(CONFIG);
    sb.record_good();
    let github = FakeGitHub::start().await;
    github.serve_git(&sb.host.root().join(REMOTE));
    let dir = tempfile::tempdir().unwrap();
    let key = support::fake_github::AppKey::generate(dir.path());
    github.enable_app(&key, std::time::Duration::from_secs(3600));
    // GitHub takes the installation token for git over HTTPS too.
    sb.host
        .accept_token("ghs_installation0001fakeToken0123456789");
    let out = revert_pr_with(
        &sb,
        &[
            ("GITHUB_API_URL", &github.url()),
            ("GITHUB_APP_ID", "424242"),
            ("GITHUB_APP_PRIVATE_KEY", &key.private_pem),
        ],
    );
    let report = report(&out, 0);
    assert_eq!(report["apps"][0]["action"], "pr_opened", "{report}");
    assert_eq!(github.tokens_issued(), 1);
    assert!(
        sb.host
            .rev_parse(REMOTE, &format!("refs/heads/{}", branch(&sb)))
            .is_some()
    );
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains("ghs_installation0001"), "{text}");
        for line in key.private_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "{text}");
        }
    }
    github.finish();
}
