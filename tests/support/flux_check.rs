//! `revertbot check` against a Flux app, end to end: the sample infra repo
//! on the smart-HTTP host, the real binary, and the strict fake Kubernetes
//! API playing kustomize-controller (see [`KsState`] for what it writes when).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::fake_kube::FakeKube;
use super::flux_objects::{KsState, git_repository, kustomization_in, set_status, workload};
use super::infra::{REMOTE, Sandbox, good_digest, stderr};

pub const HASH_GOOD: &str = "6d4cf56db6";
pub const HASH_BAD: &str = "7f9c2ba4e8";
/// The ReplicaSet of the rollout back to the pinned last-known-good.
pub const HASH_PINNED: &str = "5b8d9c0a1f";
pub const IMAGE_V1: &str = "ghcr.io/acme/guestbook:v1";
pub const IMAGE_V2: &str = "ghcr.io/acme/guestbook:v2";
pub const BAD_DIGEST: &str =
    "sha256:badbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadb";

/// What the simulated kustomize-controller does on a reconcile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `wait: false`: apply the tip and report it Ready at once.
    No,
    /// `wait: true`: apply the tip and start its health checks; Ready (and
    /// the reconcile echo) only when the test ends them.
    Yes,
}

pub struct Setup {
    pub sb: Arc<Sandbox>,
    pub fake: FakeKube,
    pub kubeconfig: String,
    _dir: tempfile::TempDir,
}

pub async fn setup(config: impl Into<String>) -> Setup {
    let config = config.into();
    setup_with(move || Sandbox::with_config(&config)).await
}

/// Like [`setup`] with another sandbox (e.g. a multi-app culprit).
pub async fn setup_with(sandbox: impl FnOnce() -> Sandbox + Send + 'static) -> Setup {
    let sb = Arc::new(tokio::task::spawn_blocking(sandbox).await.unwrap());
    let fake = FakeKube::start().await;
    fake.insert(git_repository());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path()).display().to_string();
    Setup {
        sb,
        fake,
        kubeconfig,
        _dir: dir,
    }
}

/// The commit of a Flux revision string `main@sha1:<sha>`.
fn sha_of(revision: &Value) -> String {
    let raw = revision.as_str().unwrap_or_default();
    raw.rsplit_once(':').map_or(raw, |(_, sha)| sha).to_owned()
}

impl Setup {
    pub async fn check(&self, expected_exit: i32) -> Value {
        self.check_any(&[expected_exit]).await
    }

    pub async fn check_any(&self, expected: &[i32]) -> Value {
        self.run_any(&["check"], expected).await
    }

    pub async fn run_any(&self, args: &[&str], expected: &[i32]) -> Value {
        let expected = expected.to_vec();
        let args: Vec<String> = ["--output", "json"]
            .iter()
            .chain(args)
            .map(|a| (*a).to_owned())
            .collect();
        let sb = Arc::clone(&self.sb);
        let kubeconfig = self.kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = sb.run_with_env(
                &args,
                sb.host.token(),
                &[("KUBECONFIG", kubeconfig.as_str())],
            );
            assert!(
                out.status.code().is_some_and(|c| expected.contains(&c)),
                "stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
        .await
        .unwrap()
    }

    /// When asked to reconcile, "Flux" applies whatever the remote tip is
    /// now: with [`Wait::No`] it reports it Ready at once; with
    /// [`Wait::Yes`] it starts the tip's health checks, keeping
    /// `lastAppliedRevision` (and the reconcile echo) until the test ends
    /// them with [`Setup::pass_health_checks`].
    pub fn apply_the_tip_on_reconcile(&self, wait: Wait) {
        let bare = self.sb.host.root().join(REMOTE);
        match wait {
            Wait::Yes => self.fake.echo_when_finished("kustomizations"),
            // Ready once applied; the Deployment controller then replaces
            // the crash-looping pod with the pinned last-known-good's.
            Wait::No => {
                let (remove, add) = self.pinned_good_rollout();
                self.fake.roll_out_on_reconcile(remove, add);
            }
        }
        self.fake.on_reconcile(move |object| {
            if object["kind"] != "Kustomization" {
                return;
            }
            let out = std::process::Command::new("git")
                .args([
                    "--git-dir",
                    bare.to_str().unwrap(),
                    "rev-parse",
                    "refs/heads/main",
                ])
                .output()
                .unwrap();
            let tip = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            let applied = sha_of(&object["status"]["lastAppliedRevision"]);
            let state = match wait {
                Wait::No => KsState::NoWait(&tip),
                Wait::Yes => KsState::HealthChecking {
                    applied: &applied,
                    attempted: &tip,
                },
            };
            set_status(object, state);
        });
    }

    /// The guestbook Kustomization's status right now.
    pub fn status(&self) -> Value {
        self.fake.get("kustomizations", "flux-system", "guestbook")["status"].clone()
    }

    /// Waits until Flux runs the health checks of a revision other than
    /// `bad` (the revert), then rolls the pods out to the pinned
    /// last-known-good and ends the checks: Ready at that revision (and the
    /// reconcile echo). Returns the revision, or `None` when no revert came
    /// within ~12 s.
    pub async fn pass_health_checks(&self, bad: &str) -> Option<String> {
        let mut checking = None;
        for _ in 0..600 {
            let status = self.status();
            let attempted = sha_of(&status["lastAttemptedRevision"]);
            let running = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Reconciling" && c["status"] == "True");
            if attempted != bad && running {
                checking = Some(attempted);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let revision = checking?;
        self.roll_out_the_pinned_good();
        self.fake
            .finish_reconcile("kustomizations", "flux-system", "guestbook", |o| {
                set_status(o, KsState::Ready(&revision));
            });
        Some(revision)
    }

    /// The rollout back to the pinned digest replaces the crash-looping pod.
    pub fn roll_out_the_pinned_good(&self) {
        let (remove, add) = self.pinned_good_rollout();
        for (plural, ns, name) in remove {
            self.fake.remove(&plural, &ns, &name);
        }
        for o in add {
            self.fake.insert(o);
        }
    }

    /// What that rollout removes and adds.
    fn pinned_good_rollout(&self) -> (Vec<(String, String, String)>, Vec<Value>) {
        let remove = vec![(
            "pods".to_owned(),
            "default".to_owned(),
            format!("guestbook-ui-{HASH_BAD}-x1"),
        )];
        let add = workload(
            HASH_PINNED,
            3,
            &format!("{IMAGE_V1}@{}", good_digest()),
            &format!("ghcr.io/acme/guestbook@{}", good_digest()),
            false,
        );
        (remove, add)
    }

    /// The good revision, applied and Ready, its pod healthy.
    pub fn deploy_good(&self) {
        self.fake
            .insert(kustomization_in(KsState::Ready(&self.sb.good)));
        self.run_pods(HASH_GOOD, 1, IMAGE_V1, &good_digest(), false);
    }

    /// The bad revision's Kustomization in `state`; its pods crash-loop.
    pub fn deploy_bad_crashlooping(&self, state: KsState<'_>) {
        self.fake.insert(kustomization_in(state));
        self.run_pods(HASH_BAD, 2, IMAGE_V2, BAD_DIGEST, true);
    }

    /// A ReplicaSet `hash` (Deployment revision `revision`) of `image`, its
    /// pod pulled at `digest`.
    pub fn run_pods(&self, hash: &str, revision: u32, image: &str, digest: &str, crashloop: bool) {
        for o in workload(
            hash,
            revision,
            image,
            &format!("ghcr.io/acme/guestbook@{digest}"),
            crashloop,
        ) {
            self.fake.insert(o);
        }
    }
}
