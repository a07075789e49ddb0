//! The embedded game day: a guestbook app (and a billing app beside it) in a
//! new sandbox repo, deployed by the simulated Argo CD, its mutable tag `v1`
//! re-pointed at a bad build once the good release is recorded.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::controller::sim::{SimApp, SimConfig, SimTiming};
use crate::domain::Digest;
use crate::git::sandbox::Sandbox;

use super::super::{CommandError, Result};
use super::game_day::{self, BadRelease, Played};
use super::{Timeline, start_sim};

const APP: &str = "guestbook";
const IMAGE: &str = "registry.drill.local/acme/guestbook";

pub(super) fn digest_of(label: &str) -> Result<Digest> {
    crate::registry::sha256_digest(label.as_bytes())
        .map_err(|e| CommandError::Runtime(format!("drill digest: {e}")))
}

fn manifest(tag: &str) -> String {
    let template = r#"# The guestbook frontend (a drill sandbox).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  selector:
    matchLabels: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      containers:
        - name: ui
          image: IMAGE:TAG # {"$imagepolicy": "flux-system:guestbook"}
          ports:
            - containerPort: 80
"#;
    template.replace("IMAGE", IMAGE).replace("TAG", tag)
}

fn config(server: &str) -> String {
    let template = r#"version: 1
repo: { remote: origin, branch: main }
argocd: { server: "SERVER" }
apps:
  - name: guestbook
    paths: ["apps/guestbook/**"]
    argocd: { app: guestbook }
    health:
      controller: true
      pods: { crashloop: true, not_ready_for: 30s }
    policy: { critical: push, grace: 0s, cooldown: 10m }
    wait: { timeout: 40s }
"#;
    template.replace("SERVER", server)
}

pub(super) async fn run(root: &Path, timeline: &mut Timeline) -> Result<Played> {
    let sandbox = Sandbox::create(root)?;
    let good = sandbox.release(
        "guestbook: first release, v1",
        &[
            ("apps/guestbook/deployment.yaml", manifest("v1")),
            (
                "apps/billing/deployment.yaml",
                "image: registry.drill.local/acme/billing:2.3.0\n".to_owned(),
            ),
        ],
    )?;
    sandbox.clone_checkout()?;
    timeline.step(
        "sandbox",
        format!(
            "infra repo, remote and revertbot's checkout in {}",
            root.display()
        ),
    );

    let good_digest = digest_of("guestbook v1, the good build")?;
    let bad_digest = digest_of("guestbook v2, crashes on start")?;
    let repointed = digest_of("guestbook v1, rebuilt with the same bug")?;
    let mut sim_config = SimConfig::new(
        &sandbox.remote,
        &sandbox.branch,
        vec![SimApp::new(APP, &["apps/guestbook/**"])],
    );
    sim_config.registry = HashMap::from([
        (format!("{IMAGE}:v1"), good_digest),
        (format!("{IMAGE}:v2"), bad_digest.clone()),
    ]);
    sim_config.bad_digests = HashSet::from([bad_digest, repointed.clone()]);
    sim_config.timing = SimTiming {
        poll_interval: Duration::from_secs(1),
        sync_duration: Duration::from_millis(300),
        rollout_time: Duration::from_millis(800),
        // Longer than detection: the crash loop is caught first (fast failure).
        progress_deadline: Duration::from_secs(120),
        crash_interval: Duration::from_millis(400),
    };
    let setup = start_sim(sim_config, root, &sandbox, |url| Ok(config(url))).await?;
    timeline.step(
        "controller",
        format!(
            "simulated Argo CD on {} follows the remote; v1 is deployed",
            setup.sim.url
        ),
    );
    let stage = setup.stage(&sandbox, APP, "Argo CD");
    let bad = BadRelease {
        message: "guestbook: roll out v2".to_owned(),
        files: vec![("apps/guestbook/deployment.yaml".to_owned(), manifest("v2"))],
        summary: "guestbook:v2".to_owned(),
        repoint: vec![(format!("{IMAGE}:v1"), repointed)],
    };
    game_day::play(&stage, timeline, &good, bad).await
}
