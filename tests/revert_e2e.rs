//! The real binary against a real remote over smart HTTP with basic auth:
//! record, plan, revert, and everything that can go wrong around a push.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use serde_json::Value;
use support::infra::{REMOTE, Sandbox, good_digest, stderr, stdout};

fn pinned_line() -> String {
    format!(
        "image: ghcr.io/acme/guestbook:v1@{} # revertbot-suspended {{\"$imagepolicy\": \"flux-system:guestbook\"}}",
        good_digest()
    )
}

#[test]
fn plan_shows_culprits_pins_and_diff_and_changes_nothing() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let notes_before = sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let tip_before = sb.remote_tip();
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    let app = &report["apps"][0];
    assert_eq!(report["version"], 1);
    assert_eq!(app["action"], "dry_run");
    assert_eq!(app["culprits"], serde_json::json!([sb.bad]));
    assert_eq!(app["last_known_good"], sb.good.as_str());
    assert_eq!(app["last_known_good_source"], "ledger");
    assert_eq!(app["pinned_images"][0]["digest"], good_digest().as_str());
    let diff = app["diff"].as_str().unwrap();
    assert!(
        diff.contains(&format!("+          {}", pinned_line())),
        "{diff}"
    );
    assert!(diff.contains("+          readinessProbe:"), "{diff}");
    assert_eq!(sb.remote_tip(), tip_before);
    assert_eq!(
        sb.host.rev_parse(REMOTE, "refs/notes/revertbot"),
        notes_before
    );

    let text = sb.run(&["plan", "--app", "guestbook", "--deployed", &sb.bad]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(
        text.contains("guestbook: plan (dry run, nothing changed)"),
        "{text}"
    );
    assert!(text.contains("guestbook: roll out v2"), "{text}");
}

#[test]
fn revert_pushes_one_commit_with_pins_trailers_and_a_ledger_incident() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let before = sb.remote_tip();
    let report = sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &sb.bad,
            "--mode",
            "push",
            "--reason",
            "v2 crash-loops",
        ],
        0,
    );
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed");
    let revert = app["revert_commit"].as_str().unwrap().to_owned();
    assert_eq!(sb.remote_tip(), revert);
    assert_eq!(
        sb.host.git(REMOTE, &["rev-parse", &format!("{revert}^")]),
        before
    );

    let manifest = sb.remote_file(&revert, "apps/guestbook/deployment.yaml");
    assert!(manifest.contains(&pinned_line()), "{manifest}");
    assert!(manifest.contains("readinessProbe"), "{manifest}");
    // billing untouched.
    assert_eq!(
        sb.remote_file(&revert, "apps/billing/deployment.yaml"),
        sb.remote_file(&before, "apps/billing/deployment.yaml")
    );
    let message = sb.host.git(REMOTE, &["log", "-1", "--format=%B", &revert]);
    for trailer in [
        "Revertbot-App: guestbook".to_owned(),
        format!("Revertbot-Reverts: {}", sb.bad),
        format!("Revertbot-Last-Known-Good: {}", sb.good),
        format!(
            "Revertbot-Pinned-Image: ghcr.io/acme/guestbook:v1@{}",
            good_digest()
        ),
        format!("Revertbot-Incident: guestbook-{}", &sb.bad[..12]),
    ] {
        assert!(message.contains(&trailer), "missing {trailer}:\n{message}");
    }
    assert!(message.contains("v2 crash-loops"), "{message}");

    let note = sb
        .remote_note(&revert)
        .expect("incident note on the revert");
    let incident = &note["incidents"][0];
    assert_eq!(incident["app"], "guestbook");
    assert_eq!(incident["culprits"], serde_json::json!([sb.bad]));
    assert_eq!(
        incident["pinned_images"][0]["digest"],
        good_digest().as_str()
    );
    // The LKG record is still there.
    assert_eq!(
        sb.remote_note(&sb.good).unwrap()["lkg"][0]["source"],
        "manual"
    );
}

#[test]
fn repeated_revert_does_not_revert_twice() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let revert = sb.revert_bad();
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
    assert_eq!(again["apps"][0]["action"], "none");
    assert_eq!(again["apps"][0]["revert_commit"], revert.as_str());
    assert!(
        again["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already reverted")
    );
    assert_eq!(sb.remote_reverts(), vec![revert]);
}

#[test]
fn a_writer_pushing_first_makes_revertbot_rebuild_on_the_new_tip() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let dev = &sb.dev;
    let host = &sb.host;
    // Between revertbot's fetch and its push, a developer lands a billing change.
    dev.write(
        "apps/billing/deployment.yaml",
        support::infra::BILLING.replace("2.3.0", "2.4.0"),
    );
    let rival = dev.commit("billing: 2.4.0");
    let dev_path = dev.path();
    let helper = host.credential_helper();
    let url = host.url(REMOTE);
    host.before_next_receive_pack(
        REMOTE,
        Box::new(move || {
            let status = std::process::Command::new("git")
                .current_dir(&dev_path)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .args([
                    "-c",
                    &format!("credential.helper={helper}"),
                    "push",
                    "-q",
                    &url,
                    "main",
                ])
                .status()
                .unwrap();
            assert!(status.success());
        }),
    );
    let revert = sb.revert_bad();
    assert_eq!(sb.remote_reverts(), vec![revert.clone()]);
    assert_eq!(
        host.git(REMOTE, &["rev-parse", &format!("{revert}^")]),
        rival
    );
    assert!(
        sb.remote_file(&revert, "apps/billing/deployment.yaml")
            .contains("2.4.0")
    );
}

#[test]
fn a_protected_branch_is_an_error_that_says_so_and_changes_nothing() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let before = sb.remote_tip();
    sb.host.reject_pushes(
        REMOTE,
        "GH006: Protected branch update failed for refs/heads/main.",
    );
    let out = sb.run(&[
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rejected the push"), "{err}");
    assert!(err.contains("protected"), "{err}");
    assert_eq!(sb.remote_tip(), before);
}

#[test]
fn a_crash_between_push_and_note_is_finished_by_the_next_run() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let revert = sb.revert_bad();
    // Roll the remote ledger back to before the incident note: as if the run
    // had died right after pushing the revert.
    sb.host.git(
        REMOTE,
        &[
            "update-ref",
            "refs/notes/revertbot",
            "refs/notes/revertbot^",
        ],
    );
    assert!(sb.remote_note(&revert).is_none());
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
    assert_eq!(again["apps"][0]["action"], "none");
    let note = sb
        .remote_note(&revert)
        .expect("the next run wrote the missing note");
    assert_eq!(
        note["incidents"][0]["id"],
        format!("guestbook-{}", &sb.bad[..12]).as_str()
    );
    assert_eq!(
        note["incidents"][0]["culprits"],
        serde_json::json!([sb.bad])
    );
    assert_eq!(sb.remote_reverts().len(), 1);
}

#[test]
fn a_wrong_token_fails_fast_and_is_never_printed() {
    let sb = Sandbox::new(None);
    let token = "ghs_wrongwrongwrongwrongwrong1234";
    let out = sb.run_with_token(&["-vv", "plan", "--app", "guestbook"], token);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("GITHUB_TOKEN"), "{all}");
    assert!(!all.contains(token), "{all}");
    assert!(!all.contains(sb.host.token()), "{all}");
}

#[test]
fn without_a_last_known_good_nothing_is_reverted() {
    let sb = Sandbox::new(None);
    let before = sb.remote_tip();
    let report = sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &sb.bad,
        ],
        4,
    );
    assert_eq!(report["apps"][0]["action"], "blocked");
    assert!(
        report["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no last-known-good")
    );
    assert_eq!(sb.remote_tip(), before);
}

#[test]
fn explicit_commits_and_an_explicit_lkg() {
    let sb = Sandbox::new(None);
    let report = sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--commit",
            &sb.bad,
            "--lkg",
            &sb.good,
        ],
        0,
    );
    let app = &report["apps"][0];
    assert_eq!(app["last_known_good_source"], "flag");
    assert_eq!(app["culprits"], serde_json::json!([sb.bad]));
    // No ledger record on that LKG: reverted, but nothing to pin.
    assert_eq!(app["pinned_images"], serde_json::json!([]));
    let manifest = sb.remote_file("main", "apps/guestbook/deployment.yaml");
    assert!(
        manifest.contains("image: ghcr.io/acme/guestbook:v1 #"),
        "{manifest}"
    );
}

#[test]
fn a_shallow_checkout_is_deepened_only_as_far_as_needed() {
    let sb = Sandbox::with_history(Some(1), 60);
    sb.record_good();
    let served_before = sb.host.upload_pack_bytes(REMOTE);
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    let plan_bytes = sb.host.upload_pack_bytes(REMOTE) - served_before;
    let app = &report["apps"][0];
    assert_eq!(app["culprits"], serde_json::json!([sb.bad]));
    assert_eq!(app["last_known_good"], sb.good.as_str());
    let shallow = sb.checkout().join(".git/shallow");
    assert!(shallow.exists(), "the checkout must stay shallow");
    let depth = sb.host.git(REMOTE, &["rev-list", "--count", "main"]);
    let local = std::process::Command::new("git")
        .args([
            "-C",
            sb.checkout().to_str().unwrap(),
            "rev-list",
            "--count",
            "refs/remotes/origin/main",
        ])
        .output()
        .unwrap();
    let local: usize = String::from_utf8_lossy(&local.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(local < 20, "fetched {local} of {depth} commits");
    // What the plan fetched is a small part of a full clone.
    let before_full = sb.host.upload_pack_bytes(REMOTE);
    let full_dir = tempfile::tempdir().unwrap();
    sb.host
        .clone_into(REMOTE, &full_dir.path().join("full"), None);
    let full_bytes = sb.host.upload_pack_bytes(REMOTE) - before_full;
    assert!(
        plan_bytes * 5 < full_bytes,
        "plan fetched {plan_bytes} bytes, a full clone {full_bytes}"
    );
    assert!(app["fetched_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn racing_ledger_writers_both_survive() {
    let sb = Sandbox::new(None);
    // Another writer records billing's LKG just before our note push lands.
    let other = support::WorkRepo::clone_from(&sb.host, REMOTE);
    let good = sb.good.clone();
    let other_path = other.path();
    sb.host.before_next_receive_pack(
        REMOTE,
        Box::new(move || {
            let note = r#"{"version":1,"lkg":[{"app":"billing","revision":"GOOD","images":[],"source":"manual","recorded_at":"2026-11-24T00:00:00Z"}]}"#
                .replace("GOOD", &good);
            let git = |args: &[&str]| {
                let out = std::process::Command::new("git")
                    .current_dir(&other_path)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_COMMITTER_NAME", "other")
                    .env("GIT_COMMITTER_EMAIL", "other@example.com")
                    .args(args)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            };
            git(&["notes", "--ref", "revertbot", "add", "-m", &note, &good]);
            git(&["push", "-q", "origin", "refs/notes/revertbot"]);
        }),
    );
    sb.record_good();
    let note = sb.remote_note(&sb.good).unwrap();
    let apps: Vec<&str> = note["lkg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["app"].as_str().unwrap())
        .collect();
    assert!(
        apps.contains(&"guestbook") && apps.contains(&"billing"),
        "{note}"
    );
}

#[test]
fn record_refuses_an_image_without_digest() {
    let sb = Sandbox::new(None);
    let out = sb.run(&[
        "record",
        "--app",
        "guestbook",
        "--revision",
        &sb.good,
        "--image",
        "ghcr.io/acme/guestbook:v1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no digest"), "{}", stderr(&out));
    let _: Option<Value> = sb
        .remote_note(&sb.good)
        .map(|n| panic!("nothing may be written: {n}"));
}

#[test]
fn transient_server_errors_are_retried() {
    let sb = Sandbox::new(None);
    sb.record_good();
    sb.host.fail_next(1, 502);
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    assert_eq!(report["apps"][0]["culprits"], serde_json::json!([sb.bad]));
    assert!(
        sb.host
            .requests()
            .iter()
            .any(|(_, _, status)| *status == 502)
    );
}

#[test]
fn an_unreachable_remote_is_a_bounded_error_that_names_it() {
    let sb = Sandbox::new(None);
    // A loopback port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://x-access-token:{}@{}/infra.git",
        sb.host.token(),
        closed.local_addr().unwrap()
    );
    drop(closed);
    let config = support::infra::CONFIG.replace("remote: origin", &format!("remote: {url}"));
    std::fs::write(sb.checkout().join("custom.yaml"), config).unwrap();
    let out = sb.run(&["--config", "custom.yaml", "plan", "--app", "guestbook"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot reach remote"), "{err}");
    assert!(err.contains("retried 3 times"), "{err}");
    assert!(err.contains("[redacted]@127.0.0.1"), "{err}");
    assert!(!err.contains(sb.host.token()), "{err}");
}

#[test]
fn the_nearest_recorded_ancestor_is_the_last_known_good() {
    let sb = Sandbox::new(None);
    sb.record_good();
    // A later healthy record on the billing commit (parent of the bad one),
    // and one on a commit the deployed revision does not contain.
    let billing = sb.host.git(REMOTE, &["rev-parse", &format!("{}^", sb.bad)]);
    let image = format!("ghcr.io/acme/guestbook:v1@{}", good_digest());
    sb.json(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &billing,
            "--image",
            &image,
        ],
        0,
    );
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &billing], 0);
    assert_eq!(report["apps"][0]["last_known_good"], billing.as_str());
    assert_eq!(report["apps"][0]["culprits"], serde_json::json!([]));
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    assert_eq!(report["apps"][0]["last_known_good"], billing.as_str());
    assert_eq!(report["apps"][0]["culprits"], serde_json::json!([sb.bad]));
    // Recording the same thing again writes nothing.
    let notes = sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let again = sb.json(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &billing,
            "--image",
            &image,
        ],
        0,
    );
    assert_eq!(again["apps"][0]["action"], "none");
    assert_eq!(sb.host.rev_parse(REMOTE, "refs/notes/revertbot"), notes);
}

#[test]
fn json_logs_go_to_stderr_and_results_to_stdout() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let out = sb.run(&[
        "--output",
        "json",
        "--log-format",
        "json",
        "-v",
        "plan",
        "--app",
        "guestbook",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], 1);
    let log_lines: Vec<Value> = stderr(&out)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert!(!log_lines.is_empty());
    assert!(log_lines.iter().all(|l| l["level"].is_string()));
}

#[test]
fn an_unknown_app_and_a_bad_config_are_usage_errors() {
    let sb = Sandbox::new(None);
    let out = sb.run(&["plan", "--app", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("known apps: guestbook, billing"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        sb.checkout().join("bad.yaml"),
        "version: 1\napps:\n  - name: x\n    pahts: [a/**]\n",
    )
    .unwrap();
    let out = sb.run(&["--config", "bad.yaml", "config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:4:5"), "{err}");
    assert!(err.contains("did you mean `paths`"), "{err}");
    let ok = sb.run(&["config", "validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("valid"), "{}", stdout(&ok));
    let schema = sb.run(&["config", "schema"]);
    let schema: Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn watch_checks_in_a_loop_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let config = support::infra::CONFIG.replace("    argocd: { app: billing }\n", "");
    let sb = Sandbox::with_config(&config.replace("    argocd: { app: guestbook }\n", ""));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sb.checkout())
        .env("GITHUB_TOKEN", sb.host.token())
        .current_dir(sb.checkout())
        .args(["--output", "json", "watch", "--interval", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Two cycles, one JSON document per line each.
    for _ in 0..2 {
        let line = lines.next().expect("a cycle's report").unwrap();
        let report: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(report["apps"].as_array().unwrap().len(), 2, "{report}");
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "watch exits 0 after SIGTERM");
}
