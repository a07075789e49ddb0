//! A run killed with SIGKILL mid-push leaves its per-process work refs and,
//! if it died inside a ref update, a lock file. The next run must sweep them
//! and work, not fail on the lock.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::fs::File;
use std::time::{Duration, SystemTime};

use support::infra::{Sandbox, stderr};

/// A pid no process has: Linux pids stay below 2^22.
const DEAD_PID: u32 = 4_194_999;

fn set_old_mtime(path: &std::path::Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

#[test]
fn the_next_run_sweeps_a_killed_runs_work_refs_and_stale_locks() {
    let sb = Sandbox::new(None);
    sb.record_good();
    let checkout = sb.checkout();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&checkout)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let head = git(&["rev-parse", "HEAD"]);
    // What the killed run left: its staging refs…
    let push_ref = format!("refs/revertbot/push/{DEAD_PID}/heads/main");
    let notes_ref = format!("refs/revertbot/notes-work/{DEAD_PID}");
    git(&["update-ref", &push_ref, &head]);
    git(&["update-ref", &notes_ref, &head]);
    // …a live process's staging ref (this test's own pid), kept…
    let live_ref = format!("refs/revertbot/push/{}/heads/main", std::process::id());
    git(&["update-ref", &live_ref, &head]);
    // …and the lock of the tracking-ref update it died in.
    let tracking = checkout.join(".git/refs/remotes/origin/main.lock");
    std::fs::create_dir_all(tracking.parent().unwrap()).unwrap();
    std::fs::write(&tracking, format!("{head}\n")).unwrap();
    set_old_mtime(&tracking);
    let notes_lock = checkout.join(".git/refs/revertbot/upstream/notes.lock");
    std::fs::create_dir_all(notes_lock.parent().unwrap()).unwrap();
    std::fs::write(&notes_lock, format!("{head}\n")).unwrap();
    set_old_mtime(&notes_lock);

    let out = sb.run(&[
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
        "--reason",
        "after a killed run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(sb.remote_reverts().len(), 1);

    let refs = git(&["for-each-ref", "--format=%(refname)", "refs/revertbot/"]);
    assert!(!refs.contains(&push_ref), "{refs}");
    assert!(!refs.contains(&notes_ref), "{refs}");
    assert!(refs.contains(&live_ref), "a live run's ref is kept: {refs}");
    assert!(!tracking.exists());
    assert!(!notes_lock.exists());
}

#[test]
fn a_fresh_lock_is_left_to_its_owner() {
    let sb = Sandbox::new(None);
    let checkout = sb.checkout();
    // A lock taken a moment ago may belong to a run in progress.
    let lock = checkout.join(".git/refs/revertbot/upstream/fresh.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "0000000000000000000000000000000000000000\n").unwrap();
    let out = sb.run(&["plan", "--app", "guestbook", "--deployed", &sb.bad]);
    assert!(lock.exists(), "{}", stderr(&out));
}
