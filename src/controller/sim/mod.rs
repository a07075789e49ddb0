//! `sim`: a simulated GitOps controller that serves the Argo CD REST API on
//! loopback, so the real [`crate::controller::argocd::ArgoCd`] client drives
//! it (used by `revertbot drill` and tests).
//!
//! It follows one branch of a bare git repository, polling it every
//! [`SimTiming::poll_interval`] (Argo CD's git polling), and auto-syncs each
//! new tip that changes an app's files: an operation runs for
//! [`SimTiming::sync_duration`], then the revision is applied (history entry,
//! `operationState` Succeeded with `syncResult.revision`). `GET
//! ...?refresh=normal` reads the branch at once (how revertbot avoids
//! waiting for polling); `POST .../sync` and `DELETE .../operation` work as
//! in Argo CD.
//!
//! Pods: each app is one Deployment whose containers are the image
//! references in the app's manifests at the applied revision (found with
//! [`crate::manifest::scan`]). When pods are created each image resolves to
//! a digest through the registry table (`name:tag` → digest; `@digest`
//! references resolve to themselves; unknown tags fail to pull). A digest
//! marked bad crash-loops (`CrashLoopBackOff`, restarts growing every
//! [`SimTiming::crash_interval`]): the app is `Progressing` until
//! [`SimTiming::progress_deadline`], then `Degraded`, and the previous
//! ReplicaSet's pods stay. Good digests are Ready after
//! [`SimTiming::rollout_time`] → `Healthy`. Time comes from a [`SimClock`]
//! (the system clock, or a [`ManualClock`] for deterministic tests).

mod model;
mod render;
mod repo;
mod server;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use jiff::Timestamp;

use self::model::{AppModel, Initiator};
use crate::controller::AppRef;
use crate::domain::{CommitSha, Digest};
use crate::manifest::{HelmImageRule, PinRules};

/// Where the simulated controller's time comes from.
pub trait SimClock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl SimClock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t = model::after(*t, by);
    }
}

impl SimClock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Durations of the simulated world (short, so drills take seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct SimTiming {
    pub poll_interval: Duration,
    pub sync_duration: Duration,
    pub rollout_time: Duration,
    pub progress_deadline: Duration,
    pub crash_interval: Duration,
}

impl Default for SimTiming {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(3),
            sync_duration: Duration::from_millis(200),
            rollout_time: Duration::from_millis(500),
            progress_deadline: Duration::from_secs(5),
            crash_interval: Duration::from_millis(500),
        }
    }
}

/// One simulated Argo CD Application.
#[derive(Debug, Clone, PartialEq)]
pub struct SimApp {
    pub name: String,
    /// Repo-relative globs of its manifests (`apps/guestbook/**`).
    pub paths: Vec<String>,
    /// The Application's namespace; default: the controller's.
    pub namespace: Option<String>,
    /// The namespace its pods run in; default: the app name.
    pub destination: Option<String>,
    /// Helm values files holding images (the app's `images.helm` rules):
    /// their images run in the app's pods, as the chart would render them.
    pub helm: Vec<crate::config::HelmImage>,
}

impl SimApp {
    pub fn new(name: impl Into<String>, paths: &[&str]) -> Self {
        Self {
            name: name.into(),
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            namespace: None,
            destination: None,
            helm: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// A (bare) git repository.
    pub repo: PathBuf,
    pub branch: String,
    pub apps: Vec<SimApp>,
    /// `name:tag` → digest.
    pub registry: HashMap<String, Digest>,
    /// Digests whose containers crash.
    pub bad_digests: HashSet<Digest>,
    pub timing: SimTiming,
    /// The bearer token clients must send; `None`: a random one.
    pub token: Option<String>,
    /// The namespace Argo CD "runs" in.
    pub namespace: String,
    /// Pods per app.
    pub replicas: u32,
    pub clock: Arc<dyn SimClock>,
}

impl SimConfig {
    pub fn new(repo: impl Into<PathBuf>, branch: impl Into<String>, apps: Vec<SimApp>) -> Self {
        Self {
            repo: repo.into(),
            branch: branch.into(),
            apps,
            registry: HashMap::new(),
            bad_digests: HashSet::new(),
            timing: SimTiming::default(),
            token: None,
            namespace: "argocd".to_owned(),
            replicas: 1,
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulated controller: {message}")]
    Config { message: String },
    #[error("simulated controller cannot read the git repository {}: {message}", repo.display())]
    Git { repo: PathBuf, message: String },
    #[error("simulated controller cannot read the manifests of app `{app}`: {message}")]
    Manifest { app: String, message: String },
    #[error("simulated controller cannot listen on 127.0.0.1: {message}")]
    Listen { message: String },
}

pub(crate) struct SimState {
    pub apps: Vec<AppModel>,
    pub tip: Option<CommitSha>,
}

/// Everything the server tasks share.
pub(crate) struct Shared {
    pub repo: PathBuf,
    pub branch: String,
    pub repo_url: String,
    pub timing: SimTiming,
    pub token: String,
    pub namespace: String,
    pub replicas: u32,
    pub clock: Arc<dyn SimClock>,
    pub registry: RwLock<HashMap<String, Digest>>,
    pub bad: RwLock<HashSet<Digest>>,
    pub state: Mutex<SimState>,
    /// Serialises tip checks (poller and refreshes).
    pub git_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn registry(&self) -> HashMap<String, Digest> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn bad(&self) -> HashSet<Digest> {
        self.bad.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Moves every app forward to now.
    pub fn advance(&self) {
        let now = self.clock.now();
        let registry = self.registry();
        for app in &mut self.lock().apps {
            app.advance(now, &self.timing, &registry);
        }
    }

    /// Reads the branch tip; when it moved, renders every app at it.
    pub async fn check_tip(self: &Arc<Self>) -> Result<(), SimError> {
        let _one_at_a_time = self.git_lock.lock().await;
        let me = self.clone();
        let tip = blocking(move || repo::tip(&me.repo, &me.branch)).await?;
        if self.lock().tip.as_ref() == Some(&tip) {
            self.advance();
            return Ok(());
        }
        let me = self.clone();
        let at = tip.clone();
        let rendered = blocking(move || {
            let specs: Vec<(String, globset::GlobSet, PinRules)> = me
                .lock()
                .apps
                .iter()
                .map(|a| (a.name.clone(), a.globs.clone(), a.pin_rules.clone()))
                .collect();
            specs
                .iter()
                .map(|(name, globs, rules)| repo::render(&me.repo, &at, name, globs, rules))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        {
            let mut st = self.lock();
            st.tip = Some(tip.clone());
            for (app, r) in st.apps.iter_mut().zip(rendered) {
                app.desired = Some(r);
            }
        }
        tracing::info!(revision = %tip, "sim: new branch tip");
        self.advance();
        Ok(())
    }
}

fn pin_rules(app: &SimApp) -> Result<PinRules, SimError> {
    let mut rules = PinRules::default();
    for helm in &app.helm {
        for files in &helm.files {
            let rule = HelmImageRule::new(files, &helm.repository, &helm.tag, helm.digest.clone())
                .map_err(|e| SimError::Config {
                    message: format!("app `{}`: {e}", app.name),
                })?;
            rules.helm.push(rule);
        }
    }
    Ok(rules)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SimError> + Send + 'static,
) -> Result<T, SimError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SimError::Config {
            message: format!("a git task failed: {e}"),
        })?
}

fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from("sim-");
    for i in 0..2u8 {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(Timestamp::now().as_nanosecond().unsigned_abs());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The simulated controller.
pub struct Sim;

impl Sim {
    /// Reads the branch, deploys its tip as already settled, and serves the
    /// Argo CD API on a free loopback port.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let now = config.clock.now();
        let mut apps = Vec::new();
        for a in &config.apps {
            apps.push(AppModel {
                name: a.name.clone(),
                namespace: a
                    .namespace
                    .clone()
                    .unwrap_or_else(|| config.namespace.clone()),
                destination: a.destination.clone().unwrap_or_else(|| a.name.clone()),
                paths: a.paths.clone(),
                globs: repo::globs(&a.name, &a.paths)?,
                pin_rules: pin_rules(a)?,
                desired: None,
                live: None,
                previous: None,
                operation: None,
                history: Vec::new(),
                last_attempted: None,
                reconciled_at: now,
                hold: false,
                created_at: now,
            });
        }
        let shared = Arc::new(Shared {
            repo_url: format!("file://{}", config.repo.display()),
            repo: config.repo,
            branch: config.branch,
            timing: config.timing,
            token: config.token.unwrap_or_else(random_token),
            namespace: config.namespace,
            replicas: config.replicas.max(1),
            clock: config.clock,
            registry: RwLock::new(config.registry),
            bad: RwLock::new(config.bad_digests),
            state: Mutex::new(SimState { apps, tip: None }),
            git_lock: tokio::sync::Mutex::new(()),
        });
        shared.check_tip().await?;
        // What was at the tip when the controller started is settled.
        {
            let settled = shared.timing.sync_duration
                + shared.timing.progress_deadline
                + shared.timing.rollout_time;
            let start = now
                .checked_sub(jiff::SignedDuration::try_from(settled).unwrap_or_default())
                .unwrap_or(now);
            let registry = shared.registry();
            for app in &mut shared.lock().apps {
                app.operation = None;
                app.last_attempted = None;
                if let Some(d) = app.desired.clone() {
                    app.created_at = start;
                    app.start(d, start, Initiator::Automated);
                    app.advance(now, &shared.timing, &registry);
                }
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| SimError::Listen {
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| SimError::Listen {
            message: e.to_string(),
        })?;
        let router = server::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "sim: server stopped");
            }
        });
        let poll = shared.clone();
        let poller = tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll.timing.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = poll.check_tip().await {
                    tracing::warn!(error = %e, "sim: polling the branch failed");
                }
            }
        });
        Ok(SimHandle {
            url: format!("http://{addr}"),
            token: shared.token.clone(),
            shared,
            tasks: vec![server, poller],
        })
    }
}

/// A running simulated controller; stops when dropped.
pub struct SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The bearer token it expects (use as `ARGOCD_AUTH_TOKEN`).
    pub token: String,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// How revertbot's config refers to a simulated app.
    pub fn app_ref(&self, app: &str) -> AppRef {
        let namespace = self
            .shared
            .lock()
            .apps
            .iter()
            .find(|a| a.name == app)
            .map(|a| a.namespace.clone())
            .filter(|ns| *ns != self.shared.namespace);
        AppRef::ArgoCd {
            app: app.to_owned(),
            name: app.to_owned(),
            namespace,
        }
    }

    /// Re-points a tag (`ghcr.io/acme/app:v1`); pods created later pull it.
    pub fn set_tag(&self, reference: &str, digest: Digest) {
        self.shared
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(reference.to_owned(), digest);
    }

    pub fn mark_bad(&self, digest: Digest) {
        self.shared
            .bad
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest);
    }

    pub fn mark_good(&self, digest: &Digest) {
        self.shared
            .bad
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest);
    }

    /// While held, the app's operations keep retrying and never finish
    /// (until terminated).
    pub fn hold_operations(&self, app: &str, hold: bool) {
        if let Some(a) = self.shared.lock().apps.iter_mut().find(|a| a.name == app) {
            a.hold = hold;
        }
    }

    /// The revision last applied to `app`.
    pub fn deployed(&self, app: &str) -> Option<CommitSha> {
        self.shared.advance();
        self.shared
            .lock()
            .apps
            .iter()
            .find(|a| a.name == app)
            .and_then(|a| a.deployed().cloned())
    }

    /// Polls the branch now (as the periodic poll would).
    pub async fn poll_now(&self) -> Result<(), SimError> {
        self.shared.check_tip().await
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
