#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! No secret reaches any output: the real binary against servers that echo
//! the request headers (bearer token included) into their error bodies,
//! with debug logs on, in text and JSON, on stdout and stderr.

mod support;

use std::process::Output;

use support::http::base64_encode;
use support::infra::{Sandbox, stderr, stdout};
use support::scripted_http::ScriptedHttp;

const ARGO_TOKEN: &str = "argo-tok-7d1e0c5b9a2f4e6d";

/// Every form of `secret` a leak could take.
fn forms(secret: &str) -> Vec<String> {
    let mut all = vec![secret.to_owned()];
    for text in [secret.to_owned(), format!("x-access-token:{secret}")] {
        let encoded = base64_encode(text.as_bytes());
        all.push(encoded.trim_end_matches('=').to_owned());
    }
    all
}

fn assert_clean(out: &Output, secrets: &[&str], what: &str) {
    let (stdout, stderr) = (stdout(out), stderr(out));
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !stdout.contains(&form),
                "{what}: stdout shows {form}:\n{stdout}"
            );
            assert!(
                !stderr.contains(&form),
                "{what}: stderr shows {form}:\n{stderr}"
            );
        }
    }
}

fn run(sb: &Sandbox, server: &str, args: &[&str]) -> Output {
    sb.run_with_env(
        args,
        sb.host.token(),
        &[("ARGOCD_SERVER", server), ("ARGOCD_AUTH_TOKEN", ARGO_TOKEN)],
    )
}

#[test]
fn an_argo_cd_echoing_the_bearer_token_into_errors_leaks_it_nowhere() {
    let echo = ScriptedHttp::echoing(500);
    let sb = Sandbox::new(None);
    let secrets = [ARGO_TOKEN, sb.host.token()];
    for args in [
        &["-vvv", "check"][..],
        &["-vvv", "--log-format", "json", "check"],
        &["-vvv", "--output", "json", "check"],
        &["-vvv", "record", "--app", "guestbook"],
        &[
            "-vvv",
            "--log-format",
            "json",
            "record",
            "--app",
            "guestbook",
        ],
    ] {
        let out = run(&sb, &echo.url, args);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_clean(&out, &secrets, &format!("{args:?}"));
        // The server's text still shows, minus the secret.
        assert!(
            stdout(&out).contains("[redacted]") || stderr(&out).contains("[redacted]"),
            "{args:?}: the echo is quoted with the token redacted:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // The echo server did receive the token: the test can fail.
    assert!(
        echo.seen()
            .iter()
            .any(|s| s.header("authorization") == Some(&format!("Bearer {ARGO_TOKEN}")))
    );
}

#[test]
fn a_400_echo_is_capped_to_one_short_line() {
    let echo = support::scripted_http::ScriptedHttp::start(|req| {
        let mut body = String::new();
        for (name, value) in &req.headers {
            body.push_str(&format!("{name}: {value}\n"));
        }
        body.push_str(&"padding ".repeat(400));
        support::http::Response::text(400, &body)
    });
    let sb = Sandbox::new(None);
    let out = run(&sb, &echo.url, &["record", "--app", "guestbook"]);
    let err = stderr(&out);
    assert_clean(&out, &[ARGO_TOKEN], "400 echo");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(line.contains("[redacted]"), "{line}");
    assert!(
        line.len() < 1200,
        "the body is capped: {} bytes",
        line.len()
    );
    assert!(
        err.matches("padding").count() < 100,
        "the body is capped:\n{err}"
    );
}

#[test]
fn credentials_in_argocd_server_are_never_printed() {
    let echo = ScriptedHttp::echoing(500);
    let sb = Sandbox::new(None);
    let server = echo.url.replace("http://", "http://admin:url-pass-5be1c9@");
    let out = run(&sb, &server, &["-vvv", "record", "--app", "guestbook"]);
    assert_clean(&out, &[ARGO_TOKEN, "url-pass-5be1c9"], "userinfo");
    assert!(
        stderr(&out).contains("[redacted]@127.0.0.1"),
        "{}",
        stderr(&out)
    );
    // Not sent either: the token is the only credential.
    for seen in echo.seen() {
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {ARGO_TOKEN}").as_str())
        );
    }
}

#[test]
fn a_revert_commit_message_never_carries_a_registered_secret() {
    let work = support::WorkRepo::init();
    work.write("apps/a.yaml", "a: 1\n");
    let base = work.commit("first");
    let secret = "commit-msg-secret-0c4e2a";
    revertbot::redact::register(secret);
    let repo = revertbot::git::InfraRepo::open(&work.path()).unwrap();
    let raw = git2::Repository::open(work.path()).unwrap();
    let tree = raw
        .find_commit(git2::Oid::from_str(&base).unwrap())
        .unwrap()
        .tree_id();
    let sha = repo
        .commit_revert(
            &base.parse().unwrap(),
            tree,
            &format!("Revert: the controller said `Bearer {secret}`\n"),
        )
        .unwrap();
    let message = raw
        .find_commit(git2::Oid::from_str(sha.as_str()).unwrap())
        .unwrap()
        .message()
        .unwrap()
        .to_owned();
    assert_eq!(message, "Revert: the controller said `Bearer [redacted]`\n");
}

#[test]
fn github_token_does_not_follow_a_redirect_to_another_host() {
    use revertbot::git::{Credentials, InfraRepo, Remote};
    let sb = Sandbox::new(None);
    let target = sb.host.base_url();
    // Sends every request on to the git host (another port: another origin).
    let redirector = ScriptedHttp::start(move |req| {
        support::http::Response::text(302, "moved\n")
            .with_header("Location", &format!("{target}{}", req.target))
    });
    let repo = InfraRepo::open(&sb.checkout()).unwrap();
    // The sandbox's own set-up (push, clone) was authenticated.
    let (served_before, refused_before) = (
        sb.host.request_details().len(),
        sb.host.unauthorized_count(),
    );
    let via = Remote::new(
        &format!("{}/{}", redirector.url, support::infra::REMOTE),
        "main",
        Credentials::with_token(sb.host.token()),
    );
    let err = repo.fetch_branch(&via, None).unwrap_err().to_string();
    assert!(
        err.contains("refusing to send GITHUB_TOKEN") && err.contains(&redirector.url[7..]),
        "{err}"
    );
    assert!(!err.contains(sb.host.token()), "{err}");
    assert!(
        sb.host.unauthorized_count() > refused_before,
        "the redirect was followed: the git host asked for credentials"
    );
    assert!(
        sb.host.request_details()[served_before..]
            .iter()
            .all(|r| r.user.is_none()),
        "the git host never received the token"
    );
    assert!(
        redirector
            .seen()
            .iter()
            .all(|s| s.header("authorization").is_none())
    );
    // The same remote addressed directly gets the token.
    let direct = Remote::new(
        &sb.host.url(support::infra::REMOTE),
        "main",
        Credentials::with_token(sb.host.token()),
    );
    repo.fetch_branch(&direct, None).unwrap();
}

#[test]
fn config_validate_warns_about_credentials_in_urls_without_printing_them() {
    let file = ".revertbot.yaml";
    let source = "\
version: 1
repo: { remote: \"https://x-access-token:ghp_cfgsecret1234@github.com/acme/infra.git\", branch: main }
argocd:
  server: http://admin:argo-cfg-pass-77@argocd.example.com
prometheus: { url: \"http://prom:prom-cfg-pass-88@prometheus.monitoring:9090\" }
alertmanager: { url: http://alertmanager.monitoring:9093 }
apps:
  - name: web
    paths: [\"apps/web/**\"]
    argocd: { app: web }
";
    let loaded = revertbot::config::parse(file, source).unwrap();
    let text = loaded
        .warnings
        .iter()
        .map(|w| w.render(file))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [
        "ghp_cfgsecret1234",
        "argo-cfg-pass-77",
        "prom-cfg-pass-88",
        "admin",
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    insta::assert_snapshot!("config_url_credentials", text);
}

#[test]
fn argocd_auth_token_is_refused_over_plain_http_to_a_host_that_is_not_loopback() {
    use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions};
    use secrecy::SecretString;
    let token = || SecretString::from(ARGO_TOKEN.to_owned());
    let err = ArgoCd::new(
        "http://argocd.example.com",
        token(),
        ArgoCdOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "Argo CD server address `http://argocd.example.com/` is not usable: refusing to send ARGOCD_AUTH_TOKEN over plain http to argocd.example.com — use an https:// address (plain http is allowed only to loopback) — write it like https://argocd.example.com"
    );
    for fine in [
        "https://argocd.example.com",
        "argocd.example.com:8443",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ] {
        assert!(
            ArgoCd::new(fine, token(), ArgoCdOptions::default()).is_ok(),
            "{fine}"
        );
    }
}
