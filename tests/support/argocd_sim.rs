//! Helpers for `revertbot check` against the simulated Argo CD (`sim`):
//! labelled digests, the fast timing these tests run the sim with, a wait
//! (through the real client) for an app's pods to crash-loop, and
//! [`Setup`]: guestbook on the sim, following a sandbox's remote.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use revertbot::controller::Controller;
use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions};
use revertbot::controller::sim::{Sim, SimApp, SimConfig, SimHandle, SimTiming};
use revertbot::domain::Digest;
use secrecy::SecretString;
use serde_json::Value;

use super::infra::{REMOTE, Sandbox, good_digest, stderr};

/// A distinct, valid digest per label ("guestbook v2").
pub fn digest(label: &str) -> Digest {
    revertbot::registry::sha256_digest(label.as_bytes()).unwrap()
}

/// Short enough for a test, long enough for the sim's poll, sync and crash
/// loop to happen in order; `rollout_time` is what a test varies.
pub fn fast_timing(rollout_time: Duration) -> SimTiming {
    SimTiming {
        poll_interval: Duration::from_millis(500),
        sync_duration: Duration::from_millis(200),
        rollout_time,
        progress_deadline: Duration::from_secs(120),
        crash_interval: Duration::from_millis(200),
    }
}

/// The real Argo CD client pointed at the sim.
pub fn argocd_client(url: &str, token: &str) -> ArgoCd {
    ArgoCd::new(
        url,
        SecretString::from(token.to_owned()),
        ArgoCdOptions::default(),
    )
    .unwrap()
}

/// Waits until `app`'s current pods crash-loop, so a check that follows
/// sees the breach rather than a rollout still in progress.
pub async fn until_crash_looping(client: &ArgoCd, sim: &SimHandle, app: &str) {
    let app = sim.app_ref(app);
    for _ in 0..600 {
        let pods = client.pods(&app).await.unwrap();
        if pods
            .iter()
            .any(|p| p.current && p.waiting.iter().any(|w| w.reason == "CrashLoopBackOff"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sim never reported CrashLoopBackOff for {app:?}");
}

/// One app (guestbook) on the simulated Argo CD following a sandbox's
/// remote, with its good release recorded; runs the binary against it.
pub struct Setup {
    pub sb: Arc<Sandbox>,
    pub sim: Option<SimHandle>,
    pub url: String,
    pub token: String,
}

/// The sim follows the sandbox's remote; its tip (the bad release, v2) is
/// deployed when it starts. `heals`: whether the recorded v1 digest is good.
pub async fn setup_with(
    heals: bool,
    rollout_time: Duration,
    sandbox: impl FnOnce() -> Sandbox + Send + 'static,
) -> Setup {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sb = Arc::new(tokio::task::spawn_blocking(sandbox).await.unwrap());
    let good: Digest = good_digest().parse().unwrap();
    let bad = digest("guestbook v2");
    let mut config = SimConfig::new(
        sb.host.root().join(REMOTE),
        "main",
        vec![SimApp::new("guestbook", &["apps/guestbook/**"])],
    );
    config.registry = HashMap::from([
        ("ghcr.io/acme/guestbook:v1".to_owned(), good.clone()),
        ("ghcr.io/acme/guestbook:v2".to_owned(), bad.clone()),
    ]);
    config.bad_digests = if heals {
        HashSet::from([bad])
    } else {
        HashSet::from([bad, good])
    };
    config.timing = fast_timing(rollout_time);
    let sim = Sim::start(config).await.unwrap();
    let (url, token) = (sim.url.clone(), sim.token.clone());
    let record = Arc::clone(&sb);
    tokio::task::spawn_blocking(move || record.record_good())
        .await
        .unwrap();
    Setup {
        sb,
        sim: Some(sim),
        url,
        token,
    }
}

impl Setup {
    pub async fn check(&self, expected: &[i32]) -> Value {
        self.run(&["--output", "json", "check"], expected).await
    }

    pub async fn run(&self, args: &[&str], expected: &[i32]) -> Value {
        self.run_with_env(args, expected, &[]).await
    }

    /// `run` with more environment variables (`GITHUB_API_URL`).
    pub async fn run_with_env(
        &self,
        args: &[&str],
        expected: &[i32],
        env: &[(&str, &str)],
    ) -> Value {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let extra: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let sb = Arc::clone(&self.sb);
        let (url, token) = (self.url.clone(), self.token.clone());
        let expected = expected.to_vec();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut env = vec![
                ("ARGOCD_SERVER", url.as_str()),
                ("ARGOCD_AUTH_TOKEN", token.as_str()),
            ];
            env.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let out = sb.run_with_env(&args, sb.host.token(), &env);
            assert!(
                out.status.code().is_some_and(|c| expected.contains(&c)),
                "exit {:?}\nstdout:\n{}\nstderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
        .await
        .unwrap()
    }

    /// Waits (through the real client) until the deployed pods crash-loop.
    pub async fn until_crash_looping(&self) {
        let client = argocd_client(&self.url, &self.token);
        until_crash_looping(&client, self.sim.as_ref().unwrap(), "guestbook").await;
    }
}
