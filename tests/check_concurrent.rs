#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Apps do not wait for each other: while one app's revert waits for
//! Healthy (and never gets there), a second app breaching in the same pass
//! is reverted and confirmed. Shown by the order of revertbot's own log
//! lines, not by timing.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use revertbot::controller::sim::{Sim, SimApp, SimConfig};
use revertbot::domain::Digest;
use serde_json::Value;
use support::argocd_sim::{argocd_client, digest, fast_timing, until_crash_looping};
use support::infra::{REMOTE, Sandbox, good_digest, stderr};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    wait: { timeout: 8s }
  - name: billing
    paths: [\"apps/billing/**\"]
    argocd: { app: billing }
    wait: { timeout: 8s }
";

const BILLING: &str = "registry.example.com:5000/acme/billing";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_app_is_reverted_while_the_first_still_waits_for_healthy() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sb = Arc::new(
        tokio::task::spawn_blocking(|| Sandbox::with_config(CONFIG))
            .await
            .unwrap(),
    );
    // guestbook: v2 crashes, and so does the recorded v1 (its revert never
    // heals). billing: 2.3.1 (a culprit after the good release) crashes,
    // the recorded 2.3.0 is good.
    let guestbook_good: Digest = good_digest().parse().unwrap();
    let guestbook_bad = digest("guestbook v2");
    let billing_good = digest("billing 2.3.0");
    let billing_bad = digest("billing 2.3.1");
    let mut config = SimConfig::new(
        sb.host.root().join(REMOTE),
        "main",
        vec![
            SimApp::new("guestbook", &["apps/guestbook/**"]),
            SimApp::new("billing", &["apps/billing/**"]),
        ],
    );
    config.registry = HashMap::from([
        (
            "ghcr.io/acme/guestbook:v1".to_owned(),
            guestbook_good.clone(),
        ),
        (
            "ghcr.io/acme/guestbook:v2".to_owned(),
            guestbook_bad.clone(),
        ),
        (format!("{BILLING}:2.3.0"), billing_good.clone()),
        (format!("{BILLING}:2.3.1"), billing_bad.clone()),
    ]);
    config.bad_digests = HashSet::from([guestbook_bad, guestbook_good, billing_bad]);
    config.timing = fast_timing(Duration::from_millis(300));
    let sim = Sim::start(config).await.unwrap();
    let (url, token) = (sim.url.clone(), sim.token.clone());
    let recorder = Arc::clone(&sb);
    let billing_pin = format!("{BILLING}:2.3.0@{billing_good}");
    tokio::task::spawn_blocking(move || {
        recorder.record_good();
        recorder.json(
            &[
                "record",
                "--app",
                "billing",
                "--revision",
                &recorder.good,
                "--image",
                &billing_pin,
            ],
            0,
        );
    })
    .await
    .unwrap();
    let client = argocd_client(&url, &token);
    until_crash_looping(&client, &sim, "guestbook").await;
    until_crash_looping(&client, &sim, "billing").await;

    let run = Arc::clone(&sb);
    let out = tokio::task::spawn_blocking(move || {
        run.run_with_env(
            &["--output", "json", "check"],
            run.host.token(),
            &[
                ("ARGOCD_SERVER", url.as_str()),
                ("ARGOCD_AUTH_TOKEN", token.as_str()),
            ],
        )
    })
    .await
    .unwrap();
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{logs}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let apps = report["apps"].as_array().unwrap();
    assert_eq!(apps[0]["app"], "guestbook");
    assert_eq!(apps[0]["action"], "pushed", "{report}");
    assert_eq!(apps[0]["healthy_confirmed"], false, "{report}");
    assert_eq!(apps[1]["app"], "billing");
    assert_eq!(apps[1]["action"], "pushed", "{report}");
    assert_eq!(apps[1]["healthy_confirmed"], true, "{report}");
    let lines: Vec<&str> = logs.lines().collect();
    let position = |what: &dyn Fn(&str) -> bool| lines.iter().position(|l| what(l));
    let billing_pushed = position(&|l| l.contains("app=billing") && l.contains("revert pushed"))
        .unwrap_or_else(|| panic!("no push logged for billing:\n{logs}"));
    let guestbook_gave_up = position(&|l| {
        l.contains("guestbook") && l.contains("did not bring the app back to Healthy")
    })
    .unwrap_or_else(|| panic!("no timeout logged for guestbook:\n{logs}"));
    assert!(
        billing_pushed < guestbook_gave_up,
        "billing waited for guestbook's wait to end:\n{logs}"
    );
}
