//! Template overrides from the infra repo are untrusted code: the real
//! binary reverts through a looping, a broken and a trailer-less override,
//! and a later run still recognises its revert.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{REMOTE, Sandbox, stderr};

/// Puts `source` at `.revertbot/templates/commit.txt.j2` in the bot's
/// checkout of the infra repo.
fn override_commit_template(sb: &Sandbox, source: &str) {
    let dir = sb.checkout().join(".revertbot/templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("commit.txt.j2"), source).unwrap();
}

fn revert_message(sb: &Sandbox, revert: &str) -> String {
    sb.host.git(REMOTE, &["log", "-1", "--format=%B", revert])
}

/// Reverts the bad deploy (exit 0, pushed) and returns the revert commit
/// and the run's stderr.
fn revert(sb: &Sandbox) -> (String, String) {
    let out = sb.run(&[
        "--output",
        "json",
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["apps"][0]["action"], "pushed", "{report}");
    let commit = report["apps"][0]["revert_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    // A fallback is said in the report too, not only in the log.
    if stderr(&out).contains("template override not used") {
        let warnings = report["apps"][0]["warnings"].to_string();
        assert!(
            warnings.contains("not used:") && warnings.contains("the built-in template was used"),
            "{report}"
        );
    }
    (commit, stderr(&out))
}

fn assert_all_trailers(sb: &Sandbox, message: &str) {
    let last = message.trim_end().rsplit("\n\n").next().unwrap();
    for line in [
        "Revertbot-App: guestbook".to_owned(),
        format!("Revertbot-Incident: guestbook-{}", &sb.bad[..12]),
        format!("Revertbot-Reverts: {}", sb.bad),
        format!("Revertbot-Last-Known-Good: {}", sb.good),
    ] {
        assert!(
            last.lines().any(|l| l == line),
            "no {line:?} in the last paragraph of:\n{message}"
        );
    }
    assert!(
        last.lines()
            .any(|l| l.starts_with("Revertbot-Pinned-Image: ghcr.io/acme/guestbook:v1@sha256:")),
        "{message}"
    );
}

#[test]
fn a_trailerless_override_still_records_the_revert_and_is_not_reverted_twice() {
    let sb = Sandbox::new(None);
    sb.record_good();
    override_commit_template(
        &sb,
        "Roll back {{ app }} (incident {{ incident }})\n\nOur own wording, no trailers.\n",
    );
    let (commit, err) = revert(&sb);
    assert!(!err.contains("template override"), "{err}");
    let message = revert_message(&sb, &commit);
    assert!(
        message.starts_with("Roll back guestbook (incident guestbook-"),
        "{message}"
    );
    assert_all_trailers(&sb, &message);

    // A later run recognises the revert by its trailers.
    let again = sb.json(
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
    assert_eq!(again["apps"][0]["action"], "none", "{again}");
    assert_eq!(again["apps"][0]["revert_commit"], commit.as_str());
    let plan = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    assert_eq!(plan["apps"][0]["culprits"], serde_json::json!([]), "{plan}");
    assert_eq!(sb.remote_reverts(), vec![commit]);
}

#[test]
fn a_looping_override_falls_back_to_the_builtin_with_a_warning() {
    let sb = Sandbox::new(None);
    sb.record_good();
    override_commit_template(
        &sb,
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let (commit, err) = revert(&sb);
    let message = revert_message(&sb, &commit);
    assert!(
        message.starts_with("revertbot: revert guestbook to last-known-good"),
        "{message}"
    );
    assert_all_trailers(&sb, &message);
    assert!(err.contains("template override not used"), "{err}");
    // Relative to `--repo`, here the checkout itself.
    assert!(err.contains(".revertbot/templates/commit.txt.j2"), "{err}");
    assert!(err.contains("fuel"), "{err}");
}

#[test]
fn a_broken_override_falls_back_to_the_builtin_with_a_warning() {
    let sb = Sandbox::new(None);
    sb.record_good();
    override_commit_template(&sb, "revert {{ app }\n");
    let (commit, err) = revert(&sb);
    let message = revert_message(&sb, &commit);
    assert!(
        message.starts_with("revertbot: revert guestbook"),
        "{message}"
    );
    assert_all_trailers(&sb, &message);
    assert!(err.contains("template override not used"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}
