//! Flux, read and nudged through the Kubernetes API.
//!
//! A Flux app is a `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`) or a
//! `HelmRelease` (`helm.toolkit.fluxcd.io/v2`). Both are read as
//! `DynamicObject`s and converted at this edge ([`status`]): health from the
//! conditions (only those written for the current `metadata.generation`),
//! revisions from what the Kustomization runs ([`live`]: with health checks
//! on, `lastAppliedRevision` lags what the cluster runs) and
//! `lastAttemptedRevision` (a HelmRelease's git revision is its parent
//! Kustomization's), pods from
//! the Kustomization inventory or the HelmRelease's labelled workloads
//! ([`pods`]).
//!
//! The client comes from kube (kubeconfig via `KUBECONFIG`, or in-cluster
//! config) with kube's own retry layer off; [`call`] owns the timeout and
//! retry policy.

mod call;
mod live;
mod objects;
mod pods;
mod refresh;
mod status;

use std::time::Duration;

use kube::Client;

use crate::controller::{AppRef, Controller, ControllerError, Detail, FluxKind};
use crate::domain::CommitSha;
use crate::domain::health::{Observation, PodState};

pub use pods::digest_from_image_id;
pub use status::parse_revision;

/// Timeouts and retry bounds. The defaults report a down API server within
/// about half a minute at worst (3 attempts × 10 s, plus ≤ 1.5 s backoff).
#[derive(Debug, Clone)]
pub struct FluxOptions {
    /// Cut-off for one HTTP attempt (connect + response).
    pub request_timeout: Duration,
    /// Attempts per call, first included (≥ 1). Only 5xx, 429, connection
    /// failures and timeouts are retried.
    pub attempts: u32,
    pub retry_min_delay: Duration,
    pub retry_max_delay: Duration,
    /// How long `refresh` waits for Flux to echo a reconcile request in
    /// `status.lastHandledReconcileAt` (per object: the source first, then
    /// the app).
    pub refresh_timeout: Duration,
    /// How often `refresh` reads the object while it waits.
    pub poll_interval: Duration,
    /// `refresh` also asks the app's source (GitRepository, OCIRepository,
    /// Bucket) to reconcile first, like `flux reconcile --with-source`, so a
    /// new commit is fetched now instead of at the source's next interval.
    pub reconcile_source: bool,
}

impl Default for FluxOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            attempts: 3,
            retry_min_delay: Duration::from_millis(250),
            retry_max_delay: Duration::from_secs(2),
            refresh_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            reconcile_source: true,
        }
    }
}

/// The Kubernetes client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FluxSetupError {
    #[error(
        "cannot load a Kubernetes configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account): {message} — set KUBECONFIG to a kubeconfig file for the cluster Flux runs in"
    )]
    Config { message: String },

    #[error(
        "cannot build a Kubernetes client for {server}: {message} — check the cluster entry of the kubeconfig"
    )]
    Client { server: String, message: String },

    #[error(
        "`{url}` is not a usable Kubernetes API address: {message} — give a URL such as https://127.0.0.1:6443"
    )]
    Url { url: String, message: String },
}

/// The Flux controller adapter. Cheap to clone (the kube client is shared).
#[derive(Clone)]
pub struct Flux {
    client: Client,
    server: String,
    options: FluxOptions,
}

impl std::fmt::Debug for Flux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flux")
            .field("server", &self.server)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Flux {
    /// From the environment, the way kubectl does it: `KUBECONFIG` (or
    /// `~/.kube/config`) and its current context, else the in-cluster
    /// service account.
    pub async fn from_env(options: FluxOptions) -> Result<Self, FluxSetupError> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| FluxSetupError::Config {
                message: call::error_chain(&e),
            })?;
        Self::from_config(config, options)
    }

    /// From an explicit kubeconfig file and its current context.
    pub async fn from_kubeconfig_file(
        path: &std::path::Path,
        options: FluxOptions,
    ) -> Result<Self, FluxSetupError> {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|e| FluxSetupError::Config {
                message: format!("{}: {}", path.display(), call::error_chain(&e)),
            })?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| FluxSetupError::Config {
                message: format!("{}: {}", path.display(), call::error_chain(&e)),
            })?;
        Self::from_config(config, options)
    }

    /// From a plain API address and bearer token (tests, `kubectl proxy`),
    /// through the same kubeconfig loading kube does for a file.
    pub async fn from_url(
        url: &str,
        token: Option<secrecy::SecretString>,
        options: FluxOptions,
    ) -> Result<Self, FluxSetupError> {
        use kube::config::{
            AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
        };
        let name = "revertbot".to_owned();
        let kubeconfig = Kubeconfig {
            clusters: vec![NamedCluster {
                name: name.clone(),
                cluster: Some(Cluster {
                    server: Some(url.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: name.clone(),
                auth_info: Some(AuthInfo {
                    token,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            contexts: vec![NamedContext {
                name: name.clone(),
                context: Some(Context {
                    cluster: name.clone(),
                    user: Some(name.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            current_context: Some(name),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| FluxSetupError::Url {
                url: url.to_owned(),
                message: call::error_chain(&e),
            })?;
        Self::from_config(config, options)
    }

    /// From a kube `Config`. kube's built-in retry layer is switched off and
    /// the per-attempt read timeout set: the policy in [`FluxOptions`] is
    /// the only one.
    pub fn from_config(
        mut config: kube::Config,
        options: FluxOptions,
    ) -> Result<Self, FluxSetupError> {
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        config.default_retry = false;
        // Backstops only: each attempt is cut off at `request_timeout` by
        // `call`, which starts its clock first.
        let backstop = options.request_timeout.saturating_mul(2);
        config.connect_timeout = Some(options.request_timeout);
        config.read_timeout = Some(backstop);
        config.write_timeout = Some(backstop);
        config.reset_reader_on_write = true;
        let client = Client::try_from(config).map_err(|e| FluxSetupError::Client {
            server: server.clone(),
            message: call::error_chain(&e),
        })?;
        Ok(Self {
            client,
            server,
            options,
        })
    }

    pub fn options(&self) -> &FluxOptions {
        &self.options
    }
}

/// The Flux identity of an app, or an error for an Argo CD app.
pub(crate) struct FluxApp<'a> {
    pub app: &'a AppRef,
    pub kind: FluxKind,
    pub name: &'a str,
    pub namespace: &'a str,
}

impl<'a> FluxApp<'a> {
    fn of(app: &'a AppRef, server: &str) -> Result<Self, ControllerError> {
        match app {
            AppRef::Flux {
                kind,
                name,
                namespace,
                ..
            } => Ok(Self {
                app,
                kind: *kind,
                name,
                namespace,
            }),
            AppRef::ArgoCd { .. } => Err(ControllerError::NotFound {
                server: server.to_owned(),
                what: format!(
                    "{} (an Argo CD app was given to the Flux controller; configure it under `flux:`)",
                    app.describe()
                ),
            }),
        }
    }
}

impl Controller for Flux {
    fn server(&self) -> String {
        self.server.clone()
    }

    async fn observe_all(
        &self,
        apps: &[AppRef],
    ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError> {
        self.observe_many(apps).await
    }

    async fn observe(&self, app: &AppRef, detail: Detail) -> Result<Observation, ControllerError> {
        let app = FluxApp::of(app, &self.server)?;
        let object = self.get_flux(app.kind, app.namespace, app.name).await?;
        let parent = self.parent_of(&app, &object).await?;
        let mut observation = self.observation(&app, &object, parent.as_ref());
        if detail == Detail::WithPods {
            observation.pods = self.pods_of(&app, &object).await?;
        }
        Ok(observation)
    }

    /// Requests a reconcile of the app (and first of its source, see
    /// [`FluxOptions::reconcile_source`]) and waits until Flux echoes each
    /// request in `status.lastHandledReconcileAt`; then observes the app.
    /// No echo within `refresh_timeout` → [`ControllerError::Timeout`].
    async fn refresh(&self, app: &AppRef) -> Result<Observation, ControllerError> {
        let flux_app = FluxApp::of(app, &self.server)?;
        self.reconcile_now(&flux_app).await?;
        self.observe(app, Detail::Summary).await
    }

    /// Flux cannot be told to apply a particular revision: it always applies
    /// the tip of the branch its source follows. So `sync` is a reconcile
    /// request (as [`Controller::refresh`]) followed by a check: `Ok` when
    /// the cluster runs `revision` (applied, health checks passed or not —
    /// the wait for Healthy judges those); when it runs something else it
    /// returns [`ControllerError::Http`] with status 409 saying which — the
    /// caller's wait loop may still see it arrive later, since the source
    /// may not have fetched the commit yet.
    async fn sync(&self, app: &AppRef, revision: &CommitSha) -> Result<(), ControllerError> {
        let observation = self.refresh(app).await?;
        if observation.deployed.as_ref() == Some(revision) {
            return Ok(());
        }
        let applied = observation
            .deployed
            .map_or_else(|| "nothing".to_owned(), |sha| sha.to_string());
        Err(ControllerError::Http {
            server: self.server.clone(),
            doing: format!("syncing {} to {revision}", app.describe()),
            status: 409,
            message: format!(
                "Flux applies the tip of its source branch and cannot sync to a chosen revision; after a reconcile the cluster runs {applied} — push {revision} to the branch Flux follows and wait"
            ),
        })
    }

    /// Flux has no operations to terminate: each reconcile is a bounded run
    /// that ends by itself (the next one starts at the next interval or
    /// reconcile request), and a revert is picked up by the next run. So
    /// this does nothing.
    async fn terminate_operation(&self, app: &AppRef) -> Result<(), ControllerError> {
        tracing::debug!(app = %app.describe(), "Flux has no operation to terminate; nothing to do");
        Ok(())
    }

    async fn pods(&self, app: &AppRef) -> Result<Vec<PodState>, ControllerError> {
        let app = FluxApp::of(app, &self.server)?;
        let object = self.get_flux(app.kind, app.namespace, app.name).await?;
        self.pods_of(&app, &object).await
    }
}
