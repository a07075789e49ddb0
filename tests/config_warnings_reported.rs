//! A config key that this version parses but does not act on is never
//! silent: every run's report carries the warning with its position.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::infra::{Sandbox, stdout};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
prometheus: { url: \"http://prometheus.monitoring:9090\" }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    policy: { critical: approve }
";

#[test]
fn every_report_carries_the_not_acted_on_warnings() {
    let sb = Sandbox::with_config(CONFIG);
    sb.record_good();
    let report = sb.json(&["plan", "--app", "guestbook", "--deployed", &sb.bad], 0);
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{report}");
    assert!(
        warnings[0].ends_with(".revertbot.yaml:3:13: warning: `prometheus` is not acted on yet: SLO rules are not evaluated in this version, so Prometheus is never queried — nothing reads it yet; keep it for when the feature lands, or remove it"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains(":8:25: warning: apps[0].policy.critical: `approve` is not acted on yet: approvals are not in this version"),
        "{}",
        warnings[1]
    );
    // The text report shows them too.
    let text = stdout(&sb.run(&["plan", "--app", "guestbook", "--deployed", &sb.bad]));
    assert!(
        text.contains("warning: `prometheus` is not acted on yet"),
        "{text}"
    );
}
