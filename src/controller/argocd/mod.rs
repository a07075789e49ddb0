//! Argo CD over its REST API (the grpc-gateway of `argocd-server`).
//!
//! - [`ArgoCd::observe_all`] makes **one** list call with field projection
//!   for all apps. Argo CD honours only a fixed set of `fields` keys, and
//!   neither `status.operationState.syncResult` nor `status.history` nor
//!   `status.reconciledAt` is among them, so a list item cannot tell which
//!   revision was *applied*. A summary therefore takes the compared revision
//!   (`status.sync.revision`) as deployed only when that is sound: the app is
//!   `Synced` (live state equals git at that revision) and no operation is
//!   running. Apps that are OutOfSync, mid-operation, ambiguous by name, or
//!   multi-source (`status.sync.revisions` is not selectable) are fetched in
//!   full with one GET each. Summaries carry no history and no
//!   `reconciled_at`; ask [`ArgoCd::observe`] for those.
//! - [`ArgoCd::observe`] reads the full Application. The deployed revision is
//!   the applied one: `operationState.syncResult.revision(s)` of a succeeded
//!   operation, else the newest `history` entry; never `sync.revision`, which
//!   is only what git was compared against.
//! - Multi-source apps: the git source's slot of every `revisions` list (the
//!   first source that is not a Helm chart, preferring one whose revisions
//!   are commits).

mod client;
mod pods;
mod wire;

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;
use tracing::Instrument;

use self::client::{Http, Request, Subject};
use self::wire::{Application, ApplicationList, Basis};
use super::{AppRef, Controller, ControllerError, Detail};
use crate::config::ArgoCdConfig;
use crate::domain::CommitSha;
use crate::domain::health::{Observation, OperationPhase, PodState, SyncStatus};

pub use client::server_url;
pub use pods::digest_from_image_id;

/// The environment variables the argocd CLI uses.
pub const SERVER_ENV: &str = "ARGOCD_SERVER";
pub const TOKEN_ENV: &str = "ARGOCD_AUTH_TOKEN";

/// The list projection: only keys `argocd-server` honours.
pub const LIST_FIELDS: &str = "items.metadata.name,items.metadata.namespace,\
items.spec.sources,items.status.sync.status,items.status.sync.revision,\
items.status.health,items.status.operationState.phase,\
items.status.operationState.startedAt,items.status.operationState.finishedAt";

/// Timeouts and the retry bound of the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgoCdOptions {
    pub connect_timeout: Duration,
    /// For every call but refresh.
    pub request_timeout: Duration,
    /// `GET ...?refresh=normal` blocks until the controller has reconciled.
    pub refresh_timeout: Duration,
    /// Retries after the first attempt (see the retry policy in `client`).
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ArgoCdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            refresh_timeout: Duration::from_secs(120),
            max_retries: 3,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

/// Why an Argo CD client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ArgoCdSetupError {
    #[error(
        "no Argo CD server configured — set `argocd.server` in the config or the {SERVER_ENV} environment variable"
    )]
    NoServer,
    #[error(
        "no Argo CD token — set {TOKEN_ENV} (create one with `argocd account generate-token --account <account>`)"
    )]
    NoToken,
    #[error(
        "Argo CD server address `{server}` is not usable: {problem} — write it like https://argocd.example.com"
    )]
    BadServer { server: String, problem: String },
    #[error("cannot build the HTTP client for Argo CD: {message}")]
    Client { message: String },
}

/// An Argo CD API server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArgoCd {
    http: Http,
}

fn argo_ref<'a>(
    server: &str,
    app: &'a AppRef,
) -> Result<(&'a str, Option<&'a str>), ControllerError> {
    match app {
        AppRef::ArgoCd {
            name, namespace, ..
        } => Ok((name, namespace.as_deref())),
        AppRef::Flux { .. } => Err(ControllerError::NotFound {
            server: server.to_owned(),
            what: format!(
                "Flux object {} (the app is configured for Flux, not Argo CD)",
                app.describe()
            ),
        }),
    }
}

impl ArgoCd {
    /// A client for `server` (a URL or a bare `host[:port]`, meaning HTTPS).
    pub fn new(
        server: &str,
        token: SecretString,
        options: ArgoCdOptions,
    ) -> Result<Self, ArgoCdSetupError> {
        Ok(Self {
            http: Http::new(server_url(server)?, token, options)?,
        })
    }

    /// From the config (`argocd.server`) and the environment: `env` looks a
    /// variable up (`$ARGOCD_SERVER` when the config has no server,
    /// `$ARGOCD_AUTH_TOKEN`).
    pub fn from_config(
        config: Option<&ArgoCdConfig>,
        env: impl Fn(&str) -> Option<String>,
        options: ArgoCdOptions,
    ) -> Result<Self, ArgoCdSetupError> {
        let server = config
            .and_then(|c| c.server.clone())
            .or_else(|| env(SERVER_ENV))
            .filter(|s| !s.trim().is_empty())
            .ok_or(ArgoCdSetupError::NoServer)?;
        let token = env(TOKEN_ENV)
            .filter(|t| !t.trim().is_empty())
            .ok_or(ArgoCdSetupError::NoToken)?;
        Self::new(
            &server,
            SecretString::from(token.trim().to_owned()),
            options,
        )
    }

    /// [`ArgoCd::from_config`] with the process environment.
    pub fn from_env(config: Option<&ArgoCdConfig>) -> Result<Self, ArgoCdSetupError> {
        Self::from_config(config, |k| std::env::var(k).ok(), ArgoCdOptions::default())
    }

    pub fn options(&self) -> &ArgoCdOptions {
        self.http.options()
    }

    fn app_query(namespace: Option<&str>) -> Vec<(&'static str, &str)> {
        namespace
            .map(|ns| ("appNamespace", ns))
            .into_iter()
            .collect()
    }

    /// `expected` names what the body must be (`an Application list`): a
    /// server that answers something else answered, it is not unreachable.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        req: Request,
        expected: &str,
    ) -> Result<T, ControllerError> {
        let body = self.http.send(&req).await?;
        serde_json::from_slice(&body).map_err(|e| {
            self.http
                .malformed(&req.doing, format!("the body is not {expected} ({e})"))
        })
    }

    /// `GET /api/v1/applications/{name}` (`refresh`: block until reconciled).
    async fn get_app(&self, app: &AppRef, refresh: bool) -> Result<Application, ControllerError> {
        let (name, namespace) = argo_ref(self.http.server(), app)?;
        let mut query = Self::app_query(namespace);
        if refresh {
            query.push(("refresh", "normal"));
        }
        let doing = if refresh {
            format!("refreshing application {}", app.describe())
        } else {
            format!("reading application {}", app.describe())
        };
        self.get_json(
            Request {
                method: Method::GET,
                url: self.http.url(&["applications", name], &query),
                body: None,
                timeout: refresh.then_some(self.options().refresh_timeout),
                doing,
                subject: Subject::ReadApp { app: app.clone() },
                accept: None,
            },
            "an Application",
        )
        .await
    }

    fn convert(
        &self,
        app: &AppRef,
        a: &Application,
        basis: Basis,
        doing: &str,
    ) -> Result<Observation, ControllerError> {
        wire::observation(app, a, basis).map_err(|m| self.http.malformed(doing, m))
    }

    async fn observe_full(
        &self,
        app: &AppRef,
        refresh: bool,
    ) -> Result<Observation, ControllerError> {
        let a = self.get_app(app, refresh).await?;
        self.convert(
            app,
            &a,
            Basis::Full,
            &format!("reading application {}", app.describe()),
        )
    }

    /// A projected list item → an observation, or `None` when the item
    /// cannot tell the deployed revision (see the module docs).
    fn summary(
        &self,
        app: &AppRef,
        item: &Application,
    ) -> Option<Result<Observation, ControllerError>> {
        if item.is_multi_source() {
            return None;
        }
        let mut obs = match self.convert(app, item, Basis::Projected, "listing applications") {
            Ok(o) => o,
            Err(e) => return Some(Err(e)),
        };
        let busy = obs.operation.as_ref().is_some_and(|o| {
            matches!(
                o.phase,
                OperationPhase::Running | OperationPhase::Terminating
            )
        });
        if obs.sync != SyncStatus::Synced || busy || obs.target.is_none() {
            return None;
        }
        obs.deployed = obs.target.clone();
        Some(Ok(obs))
    }
}

impl Controller for ArgoCd {
    fn server(&self) -> String {
        self.http.server().to_owned()
    }

    async fn observe_all(
        &self,
        apps: &[AppRef],
    ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError> {
        let span = tracing::info_span!("argocd.observe_all", server = %self.http.server(), apps = apps.len());
        async move {
            let list: ApplicationList = self
                .get_json(Request {
                    method: Method::GET,
                    url: self.http.url(&["applications"], &[("fields", LIST_FIELDS)]),
                    body: None,
                    timeout: None,
                    doing: "listing applications".to_owned(),
                    subject: Subject::List,
                    accept: None,
                }, "an Application list")
                .await?;
            let mut out = Vec::with_capacity(apps.len());
            // One pass over the list: 5,000 apps × 5,000 items was 25 M
            // name comparisons per cycle.
            let mut by_name: std::collections::HashMap<&str, Vec<&Application>> =
                std::collections::HashMap::with_capacity(list.items.len());
            for item in &list.items {
                by_name.entry(item.metadata.name.as_str()).or_default().push(item);
            }
            for app in apps {
                let (name, namespace) = match argo_ref(self.http.server(), app) {
                    Ok(r) => r,
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                let matches: Vec<&Application> = by_name
                    .get(name)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|i| namespace.is_none_or(|ns| i.namespace() == Some(ns)))
                    .collect();
                let summary = match matches.as_slice() {
                    [] => Some(Err(ControllerError::NotFound {
                        server: self.http.server().to_owned(),
                        what: format!(
                            "application {} in its list of applications (check the name and namespace, and that the token's RBAC allows `applications, get` on its project)",
                            app.describe()
                        ),
                    })),
                    [one] => self.summary(app, one),
                    // The same name in several namespaces: let the server pick
                    // its default namespace with a direct GET.
                    _ => None,
                };
                let result = match summary {
                    Some(r) => r,
                    None => {
                        tracing::debug!(app = app.app(), "list item insufficient; reading in full");
                        self.observe_full(app, false).await
                    }
                };
                out.push(result);
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    async fn observe(&self, app: &AppRef, detail: Detail) -> Result<Observation, ControllerError> {
        let span = tracing::info_span!(
            "argocd.observe",
            app = app.app(),
            revision = tracing::field::Empty
        );
        async {
            let mut obs = self.observe_full(app, false).await?;
            if let Some(rev) = &obs.deployed {
                tracing::Span::current().record("revision", rev.as_str());
            }
            if detail == Detail::WithPods {
                obs.pods = self.pods(app).await?;
            }
            Ok(obs)
        }
        .instrument(span)
        .await
    }

    async fn refresh(&self, app: &AppRef) -> Result<Observation, ControllerError> {
        let span = tracing::info_span!(
            "argocd.refresh",
            app = app.app(),
            revision = tracing::field::Empty
        );
        async {
            let obs = self.observe_full(app, true).await?;
            if let Some(rev) = &obs.deployed {
                tracing::Span::current().record("revision", rev.as_str());
            }
            Ok(obs)
        }
        .instrument(span)
        .await
    }

    async fn sync(&self, app: &AppRef, revision: &CommitSha) -> Result<(), ControllerError> {
        let span = tracing::info_span!("argocd.sync", app = app.app(), revision = %revision);
        async {
            let (name, namespace) = argo_ref(self.http.server(), app)?;
            // Multi-source apps take per-source revisions; find the git slot.
            let current = self.get_app(app, false).await?;
            let mut body = json!({
                "name": name,
                "prune": false,
                "dryRun": false,
                "strategy": { "hook": {} },
            });
            match current.git_slot() {
                None => body["revision"] = json!(revision.as_str()),
                Some(slot) => {
                    body["revisions"] = json!([revision.as_str()]);
                    body["sourcePositions"] = json!([slot + 1]);
                }
            }
            if let Some(ns) = namespace {
                body["appNamespace"] = json!(ns);
            }
            self.http
                .send(&Request {
                    method: Method::POST,
                    url: self.http.url(&["applications", name, "sync"], &[]),
                    body: Some(body),
                    timeout: None,
                    doing: format!("syncing {} to {}", app.describe(), revision.short()),
                    subject: Subject::WriteApp { app: app.clone() },
                    accept: None,
                })
                .await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn terminate_operation(&self, app: &AppRef) -> Result<(), ControllerError> {
        let span = tracing::info_span!("argocd.terminate", app = app.app());
        async {
            let (name, namespace) = argo_ref(self.http.server(), app)?;
            // "Unable to terminate operation. No operation is in progress"
            // (400, InvalidArgument): nothing to terminate is success.
            self.http
                .send(&Request {
                    method: Method::DELETE,
                    url: self.http.url(
                        &["applications", name, "operation"],
                        &Self::app_query(namespace),
                    ),
                    body: None,
                    timeout: None,
                    doing: format!("terminating the operation of {}", app.describe()),
                    subject: Subject::WriteApp { app: app.clone() },
                    accept: Some((400, wire::code::INVALID_ARGUMENT)),
                })
                .await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn pods(&self, app: &AppRef) -> Result<Vec<PodState>, ControllerError> {
        let span = tracing::info_span!("argocd.pods", app = app.app());
        async {
            let (name, namespace) = argo_ref(self.http.server(), app)?;
            let tree = self.resource_tree(app, name, namespace).await?;
            let mut out = Vec::new();
            for node in pods::pod_nodes(&tree) {
                match self.pod(app, name, namespace, &node).await {
                    Ok(p) => out.push(p),
                    // Deleted between the tree and now (a rollout moved on).
                    Err(ControllerError::NotFound { .. }) => {
                        tracing::debug!(pod = %node.name, "pod vanished; skipped");
                    }
                    // Argo CD answers 400 (InvalidArgument, "not found as
                    // part of application") for a resource that left the
                    // app's tree since we read it. Tell that from a real
                    // error by the tree itself, not by the message text.
                    Err(e @ ControllerError::Http { status: 400, .. }) => {
                        let fresh = self.resource_tree(app, name, namespace).await?;
                        if pods::pod_nodes(&fresh)
                            .iter()
                            .any(|n| n.namespace == node.namespace && n.name == node.name)
                        {
                            return Err(e);
                        }
                        tracing::debug!(pod = %node.name, "pod left the resource tree; skipped");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }
}

impl ArgoCd {
    async fn resource_tree(
        &self,
        app: &AppRef,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<pods::Tree, ControllerError> {
        self.get_json(
            Request {
                method: Method::GET,
                url: self.http.url(
                    &["applications", name, "resource-tree"],
                    &Self::app_query(namespace),
                ),
                body: None,
                timeout: None,
                doing: format!("reading the resource tree of {}", app.describe()),
                subject: Subject::ReadApp { app: app.clone() },
                accept: None,
            },
            "a resource tree",
        )
        .await
    }

    async fn pod(
        &self,
        app: &AppRef,
        name: &str,
        namespace: Option<&str>,
        node: &pods::PodNode,
    ) -> Result<PodState, ControllerError> {
        let mut query = vec![
            ("namespace", node.namespace.as_str()),
            ("resourceName", node.name.as_str()),
            ("version", "v1"),
            ("kind", "Pod"),
        ];
        query.extend(Self::app_query(namespace));
        let doing = format!(
            "reading pod {}/{} of {}",
            node.namespace,
            node.name,
            app.describe()
        );
        let response: pods::ResourceResponse = self
            .get_json(
                Request {
                    method: Method::GET,
                    url: self.http.url(&["applications", name, "resource"], &query),
                    body: None,
                    timeout: None,
                    doing: doing.clone(),
                    subject: Subject::Resource {
                        app: app.clone(),
                        what: format!("pod {}/{}", node.namespace, node.name),
                    },
                    accept: None,
                },
                "a live resource",
            )
            .await?;
        let pod: pods::Pod = serde_json::from_str(&response.manifest).map_err(|e| {
            self.http.malformed(
                &doing,
                format!("the pod manifest string is not a Pod object: {e}"),
            )
        })?;
        pods::pod_state(&pod, node.current).map_err(|m| self.http.malformed(&doing, m))
    }
}
