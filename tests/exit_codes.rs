#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Exit codes (DESIGN.md): a system revertbot talks to failing at run time
//! (the controller, git transport, the file system) is 1, never 2; 2 is for
//! what the user must fix in the config, flags or environment.

mod support;

use support::infra::{Sandbox, stderr};

/// An address where nothing listens: a port the OS just handed out and
/// took back.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn run(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = sb.run_with_env(args, sb.host.token(), env);
    (out.status.code(), stderr(&out))
}

#[test]
fn a_controller_that_does_not_answer_is_a_runtime_error() {
    let sb = Sandbox::new(None);
    let server = closed_port_url();
    let env = [
        ("ARGOCD_SERVER", server.as_str()),
        ("ARGOCD_AUTH_TOKEN", "t0ken"),
    ];
    let (code, err) = run(&sb, &["record", "--app", "guestbook"], &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no record without an answer from the controller: cannot reach"),
        "{err}"
    );
    let (code, err) = run(&sb, &["check"], &env);
    assert_eq!(code, Some(1), "{err}");
    let (code, err) = run(&sb, &["check", "--app", "guestbook"], &env);
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_controller_that_is_not_configured_is_a_usage_error_naming_the_fix() {
    let sb = Sandbox::new(None);
    let (code, err) = run(&sb, &["record", "--app", "guestbook"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ARGOCD_SERVER"), "{err}");
    // A revert waits for Healthy, so it needs the controller too — or
    // --no-wait, which the message names.
    let (code, err) = run(&sb, &["revert", "--app", "guestbook"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pass --no-wait"), "{err}");
}

#[test]
fn a_git_remote_that_refuses_the_push_credentials_is_a_runtime_error() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let out = sb.run_with_token(
        &["revert", "--no-wait", "--app", "guestbook"],
        "not-the-token",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");
    assert_eq!(sb.remote_reverts().len(), 0, "nothing was pushed");
}

#[test]
fn a_drill_sandbox_that_cannot_be_created_is_a_runtime_error() {
    let sb = Sandbox::new(None);
    let file = sb.checkout().join(".revertbot.yaml");
    // A directory below a regular file cannot be created.
    let dir = file.join("drill");
    let (code, err) = run(&sb, &["drill", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("drill sandbox"), "{err}");
}
