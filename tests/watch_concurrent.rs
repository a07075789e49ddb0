#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `watch` keeps cycling while a revert waits for Healthy: guestbook's
//! revert never heals (its recorded v1 crashes too) and waits out a long
//! timeout; billing breaches only after that wait began, and `watch`
//! reverts and confirms billing while guestbook still waits. Shown by the
//! order of revertbot's own output, not by timing: a watch that waited
//! inside its cycle would give up on guestbook first.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use revertbot::controller::sim::{Sim, SimApp, SimConfig};
use revertbot::domain::Digest;
use serde_json::Value;
use support::argocd_sim::{argocd_client, digest, fast_timing, until_crash_looping};
use support::infra::{BILLING, REMOTE, Sandbox, good_digest};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
    wait: { timeout: 10m }
  - name: billing
    paths: [\"apps/billing/**\"]
    argocd: { app: billing }
    wait: { timeout: 10m }
";

const BILLING_IMAGE: &str = "registry.example.com:5000/acme/billing";

/// Lines of a child's stream, collected by a thread, and each sent on.
fn collect(
    stream: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, mpsc::Receiver<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    (lines, rx)
}

/// The next line that `wanted` accepts (within a generous bound).
fn until(rx: &mpsc::Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what}: {e}"),
        }
    }
}

fn app_in<'a>(report: &'a Value, app: &str) -> Option<&'a Value> {
    report["apps"].as_array()?.iter().find(|a| a["app"] == app)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reverts_a_second_app_while_the_first_revert_still_waits() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sb = Arc::new(
        tokio::task::spawn_blocking(|| Sandbox::with_config(CONFIG))
            .await
            .unwrap(),
    );
    // guestbook: v2 crashes, and so does the recorded v1. billing: 2.3.1
    // (deployed) is good until the 2.3.2 release this test pushes later.
    let guestbook_good: Digest = good_digest().parse().unwrap();
    let guestbook_bad = digest("guestbook v2");
    let billing_good = digest("billing 2.3.1");
    let billing_bad = digest("billing 2.3.2");
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
        (format!("{BILLING_IMAGE}:2.3.0"), digest("billing 2.3.0")),
        (format!("{BILLING_IMAGE}:2.3.1"), billing_good.clone()),
        (format!("{BILLING_IMAGE}:2.3.2"), billing_bad.clone()),
    ]);
    config.bad_digests = HashSet::from([guestbook_bad, guestbook_good, billing_bad]);
    config.timing = fast_timing(Duration::from_millis(300));
    let sim = Sim::start(config).await.unwrap();
    let (url, token) = (sim.url.clone(), sim.token.clone());
    let recorder = Arc::clone(&sb);
    tokio::task::spawn_blocking(move || recorder.record_good())
        .await
        .unwrap();
    let client = argocd_client(&url, &token);
    until_crash_looping(&client, &sim, "guestbook").await;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sb.checkout())
        .env("GITHUB_TOKEN", sb.host.token())
        .env("ARGOCD_SERVER", &url)
        .env("ARGOCD_AUTH_TOKEN", &token)
        .env("RUST_LOG", "revertbot=info")
        .current_dir(sb.checkout())
        .args(["--output", "json", "watch", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, reports) = collect(child.stdout.take().unwrap());
    let (logs, _) = collect(child.stderr.take().unwrap());
    let child = Killed(child);
    let parse = |line: &str| serde_json::from_str::<Value>(line).unwrap();

    // guestbook is reverted; its wait for Healthy begins and cannot end.
    let pushed = parse(&until(&reports, "guestbook push", |l| {
        app_in(&parse(l), "guestbook").is_some_and(|a| a["action"] == "pushed")
    }));
    let guestbook = app_in(&pushed, "guestbook").unwrap();
    assert_eq!(guestbook["healthy_confirmed"], false, "{pushed}");
    let guestbook_revert = guestbook["revert_commit"].as_str().unwrap().to_owned();

    // Later cycles keep running and say guestbook is being confirmed.
    let confirming = parse(&until(&reports, "a confirming cycle", |l| {
        app_in(&parse(l), "guestbook").is_some_and(|a| a["action"] == "confirming")
    }));
    assert_eq!(
        app_in(&confirming, "guestbook").unwrap()["revert_commit"],
        guestbook_revert.as_str(),
        "{confirming}"
    );

    // Now billing's bad release lands, on top of guestbook's revert.
    let dev = Arc::clone(&sb);
    tokio::task::spawn_blocking(move || {
        dev.dev.fetch();
        dev.dev.git(&["reset", "-q", "--hard", "origin/main"]);
        dev.dev.write(
            "apps/billing/deployment.yaml",
            BILLING.replace("2.3.0", "2.3.2"),
        );
        dev.dev.commit("billing: 2.3.2");
        dev.dev.push(&["HEAD:main"]);
    })
    .await
    .unwrap();

    // billing is reverted and confirmed Healthy by its own wait.
    let confirmed = parse(&until(&reports, "billing confirmed", |l| {
        app_in(&parse(l), "billing").is_some_and(|a| a["healthy_confirmed"] == true)
    }));
    let billing = app_in(&confirmed, "billing").unwrap();
    assert_eq!(billing["action"], "pushed", "{confirmed}");
    assert!(
        billing["pinned_images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["digest"] == billing_good.to_string()),
        "{confirmed}"
    );
    // … while guestbook's wait is still running.
    let seen = logs.lock().unwrap().join("\n");
    assert!(
        !seen.contains("did not bring the app back to Healthy"),
        "guestbook's wait ended before billing was handled:\n{seen}"
    );
    assert!(seen.contains("revert wait ended"), "{seen}");

    // SIGTERM drops guestbook's wait and exits 0.
    let mut child = child;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "watch exits 0 after SIGTERM");
    let seen = logs.lock().unwrap().join("\n");
    assert!(
        seen.contains("stopping with reverts not yet confirmed Healthy"),
        "{seen}"
    );
    assert_eq!(sb.remote_reverts().len(), 2, "one revert per app");
}
