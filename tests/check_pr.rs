//! `revertbot check` with `policy.critical: pr`: a breach seen through the
//! simulated Argo CD opens one revert pull request on the strict fake
//! GitHub (which reads the real remote's branches); reruns update it
//! instead of being held by the incident's cooldown; once people merge it,
//! the controller deploys the revert and nothing more is opened.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use support::argocd_sim::{Setup, setup_with};
use support::fake_github::FakeGitHub;
use support::infra::{REMOTE, Sandbox, good_digest};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
github: { repository: acme/infra }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    policy: { critical: pr, grace: 1s }
    wait: { timeout: 6s }
";

async fn setup(config: &'static str) -> (Setup, FakeGitHub) {
    let s = setup_with(true, Duration::from_millis(300), move || {
        Sandbox::with_config(config)
    })
    .await;
    let github = FakeGitHub::start().await;
    github.expect_token(s.sb.host.token());
    github.serve_git(&s.sb.host.root().join(REMOTE));
    (s, github)
}

async fn check(
    s: &Setup,
    github: &FakeGitHub,
    args: &[&str],
    expected: &[i32],
) -> serde_json::Value {
    let mut all = vec!["--output", "json", "check"];
    all.extend_from_slice(args);
    s.run_with_env(&all, expected, &[("GITHUB_API_URL", &github.url())])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_opens_one_pull_request_that_reruns_update_until_it_is_merged() {
    let (s, github) = setup(CONFIG).await;
    s.until_crash_looping().await;
    let main_before = s.sb.remote_tip();

    let dry = check(&s, &github, &["--dry-run"], &[0]).await;
    assert_eq!(dry["apps"][0]["action"], "dry_run", "{dry}");
    assert!(
        dry["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("would open a revert pull request"),
        "{dry}"
    );
    assert!(github.calls().is_empty(), "{:?}", github.calls());

    let report = check(&s, &github, &[], &[0]).await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "breach", "{report}");
    assert_eq!(app["action"], "pr_opened", "{report}");
    assert_eq!(app["healthy_confirmed"], false, "{report}");
    let head = app["revert_commit"].as_str().unwrap().to_owned();
    // Nothing reached main: the bad release is still what runs.
    assert_eq!(s.sb.remote_tip(), main_before);
    assert_eq!(
        s.sim
            .as_ref()
            .unwrap()
            .deployed("guestbook")
            .unwrap()
            .as_str(),
        main_before
    );
    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].head_sha, head);
    assert_eq!(prs[0].labels, ["revertbot"]);
    assert!(prs[0].body.contains(&good_digest()), "{}", prs[0].body);

    // Still crash-looping: the rerun (a schedule, a repeated alert) updates
    // the same pull request and exits 0 — not held by the cooldown.
    let again = check(&s, &github, &[], &[0]).await;
    assert_eq!(again["apps"][0]["action"], "pr_updated", "{again}");
    assert_eq!(github.pull_requests().len(), 1);

    // People merge it (GitHub's rebase merge keeps the commit); the
    // controller deploys the revert, and the next checks open nothing.
    s.sb.host.git(
        REMOTE,
        &["update-ref", "refs/heads/main", &head, &main_before],
    );
    github.merge(1);
    let sim = s.sim.as_ref().unwrap();
    for _ in 0..100 {
        if sim
            .deployed("guestbook")
            .is_some_and(|d| d.as_str() == head)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.deployed("guestbook").unwrap().as_str(), head);
    // Until the controller reports the revert Healthy, and after: never
    // another pull request or push.
    let mut healthy = false;
    for _ in 0..50 {
        let after = check(&s, &github, &[], &[0]).await;
        let app = &after["apps"][0];
        let action = app["action"].as_str().unwrap();
        assert!(["none", "recorded"].contains(&action), "{after}");
        // Healthy, then recorded once the grace period after the sync is over.
        if action == "recorded" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "the merged revert never became Healthy");
    // The pull request is told once, when the app is first Healthy at it.
    for _ in 0..3 {
        check(&s, &github, &[], &[0]).await;
    }
    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].comments.len(), 1, "{:?}", prs[0].comments);
    assert!(
        prs[0].comments[0].starts_with("✅"),
        "{:?}",
        prs[0].comments
    );
    assert_eq!(s.sb.remote_reverts(), vec![head]);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_github_repository_the_breach_is_held_and_says_what_to_set() {
    let (s, github) = setup(
        "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    policy: { critical: pr }
",
    )
    .await;
    s.until_crash_looping().await;
    let main_before = s.sb.remote_tip();
    let report = check(&s, &github, &[], &[4]).await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "blocked", "{report}");
    let reason = app["reason"].as_str().unwrap();
    assert!(reason.contains("pull request"), "{reason}");
    assert!(reason.contains("set github.repository"), "{reason}");
    assert_eq!(s.sb.remote_tip(), main_before);
    assert!(github.calls().is_empty());
    github.finish();
}

const AUTOMERGE: &str = "\
version: 1
repo: { remote: origin, branch: main }
github: { repository: acme/infra }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    policy: { critical: pr-automerge }
    wait: { timeout: 6s }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pr_automerge_follows_the_merge_to_healthy_and_says_so_once() {
    let (s, github) = setup(AUTOMERGE).await;
    s.until_crash_looping().await;
    let main_before = s.sb.remote_tip();
    // GitHub merges once auto-merge is on and the checks pass (here: at
    // once); the merge fast-forwards main to the revert.
    let merge = async {
        for _ in 0..200 {
            let prs = github.pull_requests();
            if let Some(pr) = prs.first().filter(|pr| pr.auto_merge.is_some()) {
                s.sb.host.git(
                    REMOTE,
                    &["update-ref", "refs/heads/main", &pr.head_sha, &main_before],
                );
                github.merge(pr.number);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("auto-merge was never turned on");
    };
    let (report, ()) = tokio::join!(check(&s, &github, &[], &[0]), merge);
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pr_opened", "{report}");
    assert_eq!(app["healthy_confirmed"], true, "{report}");
    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].auto_merge.as_deref(), Some("MERGE"));
    assert_eq!(prs[0].head_sha, app["revert_commit"].as_str().unwrap());
    assert!(
        prs[0].body.contains("Auto-merge is requested"),
        "{}",
        prs[0].body
    );
    assert_eq!(prs[0].comments.len(), 1, "{:?}", prs[0].comments);
    assert!(
        prs[0].comments[0].starts_with("✅"),
        "{:?}",
        prs[0].comments
    );
    // The next run: healthy at the revert, nothing more on GitHub.
    let after = check(&s, &github, &[], &[0]).await;
    assert!(
        ["none", "recorded"].contains(&after["apps"][0]["action"].as_str().unwrap()),
        "{after}"
    );
    assert_eq!(github.pull_requests()[0].comments.len(), 1);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_whose_checks_never_pass_is_left_open_with_one_comment() {
    let (s, github) = setup(AUTOMERGE).await;
    s.until_crash_looping().await;
    let first = check(&s, &github, &[], &[3]).await;
    let app = &first["apps"][0];
    assert_eq!(app["action"], "pr_opened", "{first}");
    assert!(
        app["reason"]
            .as_str()
            .unwrap()
            .contains("not merged within 6s"),
        "{first}"
    );
    // A repeated alert: the same pull request, auto-merge asked again, and
    // still one comment.
    let again = check(&s, &github, &[], &[3]).await;
    assert_eq!(again["apps"][0]["action"], "pr_updated", "{again}");
    let prs = github.pull_requests();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].comments.len(), 1, "{:?}", prs[0].comments);
    assert!(
        prs[0].comments[0].starts_with("⏳"),
        "{:?}",
        prs[0].comments
    );
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_without_auto_merge_gets_the_pull_request_and_a_red_run_saying_why() {
    let (s, github) = setup(AUTOMERGE).await;
    github.disallow_auto_merge();
    s.until_crash_looping().await;
    let main_before = s.sb.remote_tip();
    let report = check(&s, &github, &[], &[1]).await;
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pr_opened", "{report}");
    let reason = app["reason"].as_str().unwrap();
    assert!(reason.contains("auto-merge is off"), "{reason}");
    assert!(reason.contains("Allow auto-merge"), "{reason}");
    assert!(
        app["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not allowed for this repository"),
        "{report}"
    );
    assert_eq!(github.pull_requests().len(), 1);
    assert_eq!(github.pull_requests()[0].auto_merge, None);
    assert_eq!(s.sb.remote_tip(), main_before);
    github.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_branch_without_protection_is_named_as_the_reason() {
    let (s, github) = setup(AUTOMERGE).await;
    github.unprotect();
    s.until_crash_looping().await;
    let report = check(&s, &github, &[], &[1]).await;
    let reason = report["apps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("protection rule"), "{reason}");
    assert_eq!(github.pull_requests().len(), 1);
    github.finish();
}
