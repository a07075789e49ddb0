//! GitOps controllers behind one trait: Argo CD (REST), Flux (Kubernetes
//! API) and `sim`, a simulated controller that serves the Argo CD API for
//! drills and tests. Each converts its API objects into
//! [`crate::domain::health`] types at the edge.

pub mod argocd;
pub mod flux;
pub mod sim;

use std::time::Duration;

use crate::domain::CommitSha;
use crate::domain::health::{Observation, PodState};

/// Which controller object an app maps to (from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRef {
    ArgoCd {
        /// The app's name in revertbot's config.
        app: String,
        /// The Argo CD Application name.
        name: String,
        /// The Application's namespace (apps in any namespace), if not the
        /// server's default.
        namespace: Option<String>,
    },
    Flux {
        app: String,
        kind: FluxKind,
        name: String,
        namespace: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluxKind {
    Kustomization,
    HelmRelease,
}

impl AppRef {
    /// revertbot's name for the app.
    pub fn app(&self) -> &str {
        match self {
            AppRef::ArgoCd { app, .. } | AppRef::Flux { app, .. } => app,
        }
    }

    /// For messages: `argocd:guestbook`, `flux:Kustomization/flux-system/guestbook`.
    pub fn describe(&self) -> String {
        match self {
            AppRef::ArgoCd {
                name,
                namespace: None,
                ..
            } => format!("argocd:{name}"),
            AppRef::ArgoCd {
                name,
                namespace: Some(ns),
                ..
            } => format!("argocd:{ns}/{name}"),
            AppRef::Flux {
                kind,
                name,
                namespace,
                ..
            } => format!("flux:{kind:?}/{namespace}/{name}"),
        }
    }
}

/// How much to read about an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Health, sync, revisions, operation, history.
    Summary,
    /// Also the pods of the app with their states and live image digests.
    WithPods,
}

/// Failures talking to a controller. None of them may lead to a revert: the
/// caller reports them and does nothing ("no answer, no revert").
// Each variant says what happened once; callers add the consequence ("no
// revert without an answer …") in front, so none is repeated here.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "cannot reach {server} while {doing}: {message} — check the server address and network"
    )]
    Unreachable {
        server: String,
        doing: String,
        message: String,
    },

    #[error("{server} refused the credentials while {doing} (HTTP {status}) — check {credential}")]
    Auth {
        server: String,
        doing: String,
        status: u16,
        credential: String,
    },

    #[error("{server} has no {what} — check the name in the config")]
    NotFound { server: String, what: String },

    #[error("{server} answered HTTP {status} while {doing}: {message}")]
    Http {
        server: String,
        doing: String,
        status: u16,
        message: String,
    },

    #[error(
        "{server} answered while {doing}, but with nothing revertbot can use: {message} — check that the address points at the API server itself, not a proxy or login page"
    )]
    Malformed {
        server: String,
        doing: String,
        message: String,
    },

    #[error(
        "{server} did not answer within {timeout:?} while {doing} — check that the server is up and not overloaded"
    )]
    Timeout {
        server: String,
        doing: String,
        timeout: Duration,
    },

    #[error("another operation is already running on {app} — wait for it or terminate it first")]
    OperationInProgress { app: String },

    /// The client could not be built (no address, no token, a bad
    /// kubeconfig): nothing was asked yet, so nothing is unreachable.
    #[error("cannot set up {client}: {message}")]
    Setup { client: String, message: String },
}

/// A GitOps controller. Every call has a timeout and a bounded retry policy
/// inside the implementation.
#[allow(async_fn_in_trait)] // used through generics and `AnyController`, never `dyn`
pub trait Controller {
    /// The controller, for messages (`https://argocd.example.com`).
    fn server(&self) -> String;

    /// Observes many apps with as few calls as the API allows (Argo CD: one
    /// list call with field projection). One entry per requested app, in
    /// order; an app missing on the server is an `Err` in its slot.
    async fn observe_all(
        &self,
        apps: &[AppRef],
    ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError>;

    /// Observes one app.
    async fn observe(&self, app: &AppRef, detail: Detail) -> Result<Observation, ControllerError>;

    /// Asks the controller to reconcile now (so a revert is picked up without
    /// waiting for git polling) and returns the state afterwards.
    async fn refresh(&self, app: &AppRef) -> Result<Observation, ControllerError>;

    /// Syncs the app to `revision`.
    async fn sync(&self, app: &AppRef, revision: &CommitSha) -> Result<(), ControllerError>;

    /// Terminates the running operation (one stuck retrying a bad revision).
    async fn terminate_operation(&self, app: &AppRef) -> Result<(), ControllerError>;

    /// The app's pods with their states and live image digests.
    async fn pods(&self, app: &AppRef) -> Result<Vec<PodState>, ControllerError>;
}
