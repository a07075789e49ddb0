//! A manual `revert` goes through the same policy as `check`: a freeze
//! (config or `.revertbot-freeze`), the cooldown and the loop guard hold it
//! with exit 4 and a clear reason; `--force-guards` overrides them and is
//! recorded in the commit and the incident, and never stands in for a
//! missing last-known-good.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{CONFIG, REMOTE, Sandbox, stderr};

fn revert(sb: &Sandbox, extra: &[&str], expected: i32) -> serde_json::Value {
    let mut args = vec![
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
    ];
    args.extend_from_slice(extra);
    sb.json(&args, expected)
}

#[test]
fn a_freeze_file_holds_a_manual_revert_and_force_guards_overrides_it_on_record() {
    let sb = Sandbox::new(None);
    sb.record_good();
    sb.dev
        .write(".revertbot-freeze", "deploy freeze: quarter end\n");
    sb.dev.commit("freeze");
    sb.dev.push(&["main"]);
    let before = sb.remote_tip();
    let held = revert(&sb, &[], 4);
    let app = &held["apps"][0];
    assert_eq!(app["action"], "blocked", "{held}");
    let reason = app["reason"].as_str().unwrap();
    assert!(reason.contains(".revertbot-freeze"), "{reason}");
    assert!(reason.contains("--force-guards"), "{reason}");
    assert_eq!(sb.remote_tip(), before, "nothing pushed");

    let forced = revert(
        &sb,
        &[
            "--force-guards",
            "--reason",
            "the freeze must not block a fix",
        ],
        0,
    );
    let app = &forced["apps"][0];
    assert_eq!(app["action"], "pushed", "{forced}");
    assert_eq!(app["forced_guards"], serde_json::json!(["freeze"]));
    let commit = app["revert_commit"].as_str().unwrap();
    let message = sb.host.git(REMOTE, &["log", "-1", "--format=%B", commit]);
    assert!(
        message
            .lines()
            .any(|l| l == "Revertbot-Forced-Guards: freeze"),
        "{message}"
    );
    let note = sb.remote_note(commit).unwrap();
    assert_eq!(
        note["incidents"][0]["forced_guards"],
        serde_json::json!(["freeze"])
    );
}

#[test]
fn a_config_freeze_holds_a_manual_revert() {
    let config = CONFIG.replace(
        "    argocd: { app: guestbook }\n",
        "    argocd: { app: guestbook }\n    policy: { freeze: true }\n",
    );
    let sb = Sandbox::with_config(&config);
    sb.record_good();
    let held = revert(&sb, &[], 4);
    assert!(
        held["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("policy.freeze"),
        "{held}"
    );
}

#[test]
fn the_cooldown_holds_a_second_manual_revert_of_the_app() {
    let sb = Sandbox::new(None);
    sb.record_good();
    revert(&sb, &[], 0);
    // A new bad release right after: within the 30m cooldown.
    sb.dev.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    sb.dev
        .write("apps/guestbook/extra.yaml", "kind: ConfigMap\n");
    let again = sb.dev.commit("guestbook: another change");
    sb.dev.push(&["main"]);
    let out = sb.run(&[
        "--output",
        "json",
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &again,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("cooldown"),
        "{report}"
    );
}

#[test]
fn force_guards_never_stands_in_for_a_missing_last_known_good() {
    let sb = Sandbox::new(None);
    let before = sb.remote_tip();
    let held = revert(&sb, &["--force-guards"], 4);
    assert!(
        held["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no last-known-good"),
        "{held}"
    );
    assert_eq!(sb.remote_tip(), before);
}

#[test]
fn revert_waits_for_healthy_unless_told_not_to() {
    // An Argo CD app with no server configured: the revert refuses before
    // pushing, and names the flag that skips the wait.
    let sb = Sandbox::new(None);
    sb.record_good();
    let before = sb.remote_tip();
    let out = sb.run(&["revert", "--app", "guestbook", "--deployed", &sb.bad]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --no-wait"), "{}", stderr(&out));
    assert_eq!(sb.remote_tip(), before);
}
