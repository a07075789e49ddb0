//! What an incident quarantines, and what `record` does with it: only the
//! digests the culprits introduced (never the last-known-good's), a
//! quarantined digest is never recorded as last-known-good, and a digest
//! pinned in the manifest wins over a contradicting `--image`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{DEPLOY_V1, REMOTE, Sandbox, good_digest, stderr};

fn bad_digest() -> String {
    format!("sha256:{}", "bd".repeat(32))
}

/// A bad release that pins its digest (what Renovate or an image updater
/// writes), pushed on top of the sandbox history; returns its commit.
fn push_pinned_bad_release(sb: &Sandbox) -> String {
    let manifest = DEPLOY_V1.replace(
        "ghcr.io/acme/guestbook:v1",
        &format!("ghcr.io/acme/guestbook:v3@{}", bad_digest()),
    );
    sb.dev.write("apps/guestbook/deployment.yaml", manifest);
    let bad = sb.dev.commit("guestbook: v3, pinned");
    sb.dev.push(&["main"]);
    bad
}

#[test]
fn a_manual_revert_quarantines_only_what_the_culprits_pinned() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let bad = push_pinned_bad_release(&sb);
    let report = sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &bad,
        ],
        0,
    );
    let revert = report["apps"][0]["revert_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = sb.remote_note(&revert).expect("incident note");
    let bad_images = &note["incidents"][0]["bad_images"];
    assert_eq!(
        bad_images,
        &serde_json::json!([format!("ghcr.io/acme/guestbook:v3@{}", bad_digest())]),
        "{note}"
    );
    // The LKG's tag and digest are what the revert restores: never bad.
    let text = bad_images.to_string();
    assert!(!text.contains(":v1"), "{note}");
    assert!(!text.contains(&good_digest()), "{note}");
}

#[test]
fn record_refuses_a_quarantined_digest() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let bad = push_pinned_bad_release(&sb);
    sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &bad,
        ],
        0,
    );
    let notes_before = sb.host.rev_parse(REMOTE, "refs/notes/revertbot");
    let image = format!("ghcr.io/acme/guestbook:v3@{}", bad_digest());
    let out = sb.run(&[
        "record",
        "--app",
        "guestbook",
        "--revision",
        &bad,
        "--image",
        &image,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("quarantined by incident guestbook-"), "{err}");
    assert_eq!(
        sb.host.rev_parse(REMOTE, "refs/notes/revertbot"),
        notes_before
    );
}

#[test]
fn record_prefers_the_digest_pinned_in_the_manifest_and_says_so() {
    let sb = Sandbox::new(None);
    let pinned = DEPLOY_V1.replace(
        "ghcr.io/acme/guestbook:v1",
        &format!("ghcr.io/acme/guestbook:v1@{}", good_digest()),
    );
    sb.dev.write("apps/guestbook/deployment.yaml", pinned);
    let rev = sb.dev.commit("guestbook: pin v1");
    sb.dev.push(&["main"]);
    let other = format!("sha256:{}", "0c".repeat(32));
    let image = format!("ghcr.io/acme/guestbook:v1@{other}");
    let mut args = vec!["--output", "json"];
    args.extend([
        "record",
        "--app",
        "guestbook",
        "--revision",
        &rev,
        "--image",
        &image,
    ]);
    let out = sb.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the manifests pin another digest"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("was recorded instead of --image's"),
        "{report}"
    );
    let note = sb.remote_note(&rev).expect("LKG note");
    assert_eq!(
        note["lkg"][0]["images"][0]["digest"],
        good_digest().as_str()
    );
}
