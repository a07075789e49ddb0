//! Helpers for `revertbot check` against the simulated Argo CD (`sim`):
//! labelled digests, the fast timing these tests run the sim with, and a
//! wait (through the real client) for an app's pods to crash-loop.

use std::time::Duration;

use revertbot::controller::Controller;
use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions};
use revertbot::controller::sim::{SimHandle, SimTiming};
use revertbot::domain::Digest;
use secrecy::SecretString;

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
