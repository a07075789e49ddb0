//! Commits that carry revertbot's trailers without being its reverts, end
//! to end: the real binary against a real remote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{Sandbox, stdout};

/// A commit message with revertbot's trailers for guestbook, claiming to
/// revert `culprit`.
fn claiming(culprit: &str) -> String {
    format!(
        "revertbot: revert guestbook\n\nRevertbot-App: guestbook\nRevertbot-Incident: guestbook-forged\nRevertbot-Reverts: {culprit}\n"
    )
}

#[test]
fn a_forged_revert_after_the_deploy_gets_no_incident_note_and_the_culprit_is_reverted() {
    let sb = Sandbox::new(None);
    sb.record_good();
    // After the bad deploy someone pushes a billing change dressed up as
    // revertbot's revert of it.
    sb.dev.write("apps/billing/notes.yaml", "owner: billing\n");
    let forger = sb.dev.commit(&claiming(&sb.bad));
    sb.dev.push(&["main"]);

    let report = sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &sb.bad,
        ],
        0,
    );
    let app = &report["apps"][0];
    assert!(
        sb.remote_note(&forger).is_none(),
        "an incident note was written for the forged commit: {report}"
    );
    assert_eq!(app["action"], "pushed", "{report}");
    assert_eq!(app["culprits"], serde_json::json!([sb.bad]), "{report}");
    assert_eq!(
        app["forged_reverts"][0]["commit"],
        forger.as_str(),
        "{report}"
    );
    assert!(app["already_reverted"].is_null(), "{report}");
    let revert = app["revert_commit"].as_str().unwrap();
    assert_ne!(revert, forger);
    assert!(sb.remote_note(revert).is_some());
}

#[test]
fn the_text_report_warns_about_a_forged_revert() {
    let sb = Sandbox::new(None);
    sb.record_good();
    sb.dev.write("README.md", "hello\n");
    let forger = sb.dev.commit(&claiming(&sb.bad));
    sb.dev.push(&["main"]);
    let out = sb.run(&["plan", "--app", "guestbook", "--deployed", &sb.bad]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("guestbook: roll out v2"), "{text}");
    let warning: Vec<&str> = text.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warning.len(), 1, "{text}");
    let warning = warning[0]
        .replace(&forger[..12], "<forger>")
        .replace(&sb.bad[..12], "<bad>");
    insta::assert_snapshot!(warning, @"  warning: <forger> carries revertbot's trailers but is not its revert: its changes are not what reverting <bad> on its parent <bad> gives with the pins its trailers record — judged like any other commit");
}
