//! Once the incident is over, `restore-markers` gives the app's image
//! automation back: the Flux `$imagepolicy` markers a revert suspended on
//! its pinned lines are restored in one pushed commit; `--dry-run` only
//! lists them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{REMOTE, Sandbox, good_digest};

const FILE: &str = "apps/guestbook/deployment.yaml";

#[test]
fn restore_markers_undoes_the_suspension_and_nothing_else() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let revert = sb.revert_bad();
    let suspended = sb.remote_file(&revert, FILE);
    assert!(
        suspended.contains("# revertbot-suspended {\"$imagepolicy\""),
        "{suspended}"
    );

    let plan = sb.json(&["restore-markers", "--app", "guestbook", "--dry-run"], 0);
    assert_eq!(plan["apps"][0]["action"], "dry_run", "{plan}");
    assert!(
        plan["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "{FILE}:16 {{\"$imagepolicy\": \"flux-system:guestbook\"}}"
            )),
        "{plan}"
    );
    assert_eq!(sb.remote_tip(), revert, "a dry run pushes nothing");

    let done = sb.json(&["restore-markers", "--app", "guestbook"], 0);
    let app = &done["apps"][0];
    assert_eq!(app["action"], "pushed", "{done}");
    let commit = app["revert_commit"].as_str().unwrap();
    assert_eq!(sb.remote_tip(), commit);
    let restored = sb.remote_file(commit, FILE);
    assert_eq!(
        restored,
        suspended.replace("# revertbot-suspended {", "# {"),
        "only the marker bytes change"
    );
    // The pin stays: automation moves it when its policy says so.
    assert!(restored.contains(&good_digest()));
    let message = sb.host.git(REMOTE, &["log", "-1", "--format=%B", commit]);
    assert!(
        message.starts_with("revertbot: restore image automation for guestbook"),
        "{message}"
    );
    // Not a revert claim: a later search still sees revertbot's one revert.
    assert_eq!(sb.remote_reverts(), vec![revert]);

    let again = sb.json(&["restore-markers", "--app", "guestbook"], 0);
    assert_eq!(again["apps"][0]["action"], "none", "{again}");
    assert_eq!(sb.remote_tip(), commit);
}
