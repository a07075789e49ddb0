#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot check` falls back to the registry for the last-known-good
//! digest, end to end: the real binary, a real remote over smart HTTP, the
//! strict fake Kubernetes API and Debian's real `docker-registry`.
//!
//! The manifest names the image by tag only, and the healthy pod's
//! `imageID` is a bare `sha256:…` (a local image id, not a repo digest), so
//! only the registry can say which digest `:v1` is.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::fake_kube::FakeKube;
use support::flux_objects::{git_repository, kustomization, workload};
use support::infra::{DEPLOY_V1, REMOTE, Sandbox, stderr};
use support::registry_server::{Flavor, RegistryServer, install_crypto};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    flux: { kind: Kustomization, name: guestbook, namespace: flux-system }
    health:
      controller: true
      pods: { crashloop: true, not_ready_for: 1m }
    policy: { critical: push, grace: 0s, cooldown: 30m }
    wait: { timeout: 8s }
";

const REPO: &str = "acme/guestbook";
const HASH: &str = "6d4cf56db6";
/// What containerd reports as `imageID` for an image it did not pull by a
/// repo digest: the local image (config) id. Never a registry digest.
const BARE_IMAGE_ID: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Setup {
    sb: Arc<Sandbox>,
    /// The commit the fake Flux reports as applied (Healthy, Ready).
    deployed: String,
    /// `127.0.0.1:<port>/acme/guestbook:v1`, as the manifest writes it.
    image: String,
    registry: RegistryServer,
    _fake: FakeKube,
    kubeconfig: String,
    _dir: tempfile::TempDir,
}

/// A sandbox whose guestbook manifest, at the deployed tip, names the image
/// on the local registry by tag; the fake Flux reports that tip Healthy with
/// a pod whose `imageID` is bare.
async fn setup() -> Setup {
    install_crypto();
    let registry = RegistryServer::start().await;
    let image = format!("{}/{REPO}:v1", registry.host());
    let manifest = DEPLOY_V1.replace("ghcr.io/acme/guestbook:v1", &image);
    assert_ne!(manifest, DEPLOY_V1, "the sample manifest changed shape");
    let (sb, deployed) = tokio::task::spawn_blocking(move || {
        let sb = Sandbox::with_config(CONFIG);
        sb.dev.write("apps/guestbook/deployment.yaml", manifest);
        let deployed = sb.dev.commit("guestbook: v1 from the local registry");
        sb.dev.push(&["main"]);
        (sb, deployed)
    })
    .await
    .unwrap();
    assert_eq!(sb.remote_tip(), deployed);
    let fake = FakeKube::start().await;
    fake.insert(git_repository());
    fake.insert(kustomization(&deployed, true));
    for o in workload(HASH, 1, &image, BARE_IMAGE_ID, false) {
        fake.insert(o);
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path()).display().to_string();
    Setup {
        sb: Arc::new(sb),
        deployed,
        image,
        registry,
        _fake: fake,
        kubeconfig,
        _dir: dir,
    }
}

impl Setup {
    /// `revertbot --output json check` with `KUBECONFIG` at the fake (and,
    /// from the sandbox, a temp `HOME`: no docker config is read).
    async fn check(&self) -> Value {
        let sb = Arc::clone(&self.sb);
        let kubeconfig = self.kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let out = sb.run_with_env(
                &["--output", "json", "check"],
                sb.host.token(),
                &[("KUBECONFIG", kubeconfig.as_str())],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
        .await
        .unwrap()
    }

    fn notes_ref(&self) -> Option<String> {
        self.sb.host.rev_parse(REMOTE, "refs/notes/revertbot")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_only_image_with_a_bare_image_id_is_recorded_with_the_registry_digest() {
    let s = setup().await;
    let pushed = s
        .registry
        .push_image(REPO, "v1", Flavor::Oci, "guestbook v1")
        .await;
    assert_ne!(pushed.digest, BARE_IMAGE_ID);

    let report = s.check().await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "healthy", "{report}");
    assert_eq!(app["action"], "recorded", "{report}");
    assert_eq!(app["last_known_good"], s.deployed.as_str(), "{report}");
    assert_eq!(
        app["pinned_images"],
        json!([{"image": s.image, "digest": pushed.digest}]),
        "{report}"
    );

    let note =
        s.sb.remote_note(&s.deployed)
            .expect("LKG note on the deployed revision");
    let lkg = &note["lkg"][0];
    assert_eq!(lkg["revision"], s.deployed.as_str(), "{note}");
    assert_eq!(lkg["source"], "registry", "{note}");
    let images = lkg["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{note}");
    assert_eq!(images[0]["image"], s.image.as_str(), "{note}");
    assert_eq!(images[0]["digest"], pushed.digest.as_str(), "{note}");
    assert!(!note.to_string().contains(BARE_IMAGE_ID), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_the_registry_does_not_know_means_nothing_is_recorded() {
    let s = setup().await;
    // The repository exists, but not the deployed tag.
    s.registry
        .push_image(REPO, "v2", Flavor::Oci, "guestbook v2")
        .await;
    let notes_before = s.notes_ref();

    let report = s.check().await;
    let app = &report["apps"][0];
    assert_eq!(app["verdict"], "healthy", "{report}");
    assert_eq!(app["action"], "none", "{report}");
    let reason = app["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("no digest for {}", s.image)),
        "{reason}"
    );
    assert!(s.sb.remote_note(&s.deployed).is_none());
    assert_eq!(s.notes_ref(), notes_before, "nothing written to the ledger");
}
