#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot drill`: the whole loop in a sandbox, through the real binary.

use serde_json::Value;

fn drill(args: &[&str]) -> (std::process::Output, Value) {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .args(["--output", "json", "drill"])
        .args(args)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

#[test]
fn the_drill_detects_reverts_with_the_recorded_digest_and_confirms_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("drill");
    let (out, report) = drill(&["--dir", sandbox.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["passed"], true);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "sandbox",
            "controller",
            "last-known-good",
            "bad release",
            "tag re-pointed",
            "breach onset",
            "breach detected",
            "revert pushed",
            "healthy"
        ]
    );
    assert!(report["breach_to_healthy_ms"].as_u64().is_some());
    assert_eq!(report["kept"], true);

    // The kept sandbox shows what happened, in git.
    let remote = sandbox.join("remote.git");
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&remote)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let revert = report["revert_commit"].as_str().unwrap();
    assert_eq!(git(&["rev-parse", "main"]).trim(), revert);
    let message = git(&["log", "-1", "--format=%B", revert]);
    assert!(message.contains("Revertbot-Reverts: "), "{message}");
    // The tag v1 was re-pointed at a bad build: only the recorded digest heals.
    let lkg_digest = report["check"]["apps"][0]["pinned_images"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = git(&["show", &format!("{revert}:apps/guestbook/deployment.yaml")]);
    assert!(
        manifest.contains(&format!("guestbook:v1@{lkg_digest}")),
        "{manifest}"
    );
    assert!(
        message.contains(&format!(
            "Revertbot-Pinned-Image: registry.drill.local/acme/guestbook:v1@{lkg_digest}"
        )),
        "{message}"
    );
    let notes = git(&["notes", "--ref", "revertbot", "list"]);
    assert_eq!(
        notes.lines().count(),
        2,
        "an LKG note and an incident note: {notes}"
    );
}

#[test]
fn the_drill_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"))
        .args(["drill", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
}
