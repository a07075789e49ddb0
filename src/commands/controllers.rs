//! The controllers a run talks to, built from the config and the
//! environment, and dispatch from an app to its controller.

use crate::config::{AppConfig, Config, FluxKind as ConfigFluxKind};
use crate::controller::argocd::ArgoCd;
use crate::controller::flux::{Flux, FluxOptions};
use crate::controller::{AppRef, Controller, ControllerError, Detail, FluxKind};
use crate::domain::CommitSha;
use crate::domain::health::{Observation, PodState};

/// The controllers of one run: at most one Argo CD server and one Kubernetes
/// API (Flux).
#[derive(Default)]
pub struct Controllers {
    pub argocd: Option<ArgoCd>,
    pub flux: Option<Flux>,
}

impl Controllers {
    /// Builds what the config's apps need, from the environment
    /// (`KUBECONFIG`/in-cluster for Flux).
    pub async fn from_env(config: &Config) -> Result<Self, ControllerError> {
        let mut out = Self::default();
        if config.apps.iter().any(|a| a.argocd.is_some()) {
            let argocd =
                ArgoCd::from_env(config.argocd.as_ref()).map_err(|e| ControllerError::Setup {
                    client: "the Argo CD client".into(),
                    message: e.to_string(),
                })?;
            out.argocd = Some(argocd);
        }
        if config.apps.iter().any(|a| a.flux.is_some()) {
            let flux = Flux::from_env(FluxOptions::default()).await.map_err(|e| {
                ControllerError::Setup {
                    client: "the Kubernetes client (Flux)".into(),
                    message: e.to_string(),
                }
            })?;
            out.flux = Some(flux);
        }
        Ok(out)
    }

    /// The controller of `app`, or why there is none.
    pub fn get(&self, app: &AppRef) -> Result<Any<'_>, String> {
        match app {
            AppRef::Flux { .. } => self.flux.as_ref().map(Any::Flux).ok_or_else(|| {
                "no Kubernetes API configured for Flux apps (KUBECONFIG)".to_owned()
            }),
            AppRef::ArgoCd { .. } => self.argocd.as_ref().map(Any::ArgoCd).ok_or_else(|| {
                "no Argo CD server configured: set argocd.server or ARGOCD_SERVER".to_owned()
            }),
        }
    }
}

/// The app's controller reference from its config, if it has one.
pub fn app_ref(app: &AppConfig) -> Option<AppRef> {
    if let Some(argo) = &app.argocd {
        return Some(AppRef::ArgoCd {
            app: app.name.clone(),
            name: argo.app.clone(),
            namespace: argo.namespace.clone(),
        });
    }
    app.flux.as_ref().map(|flux| AppRef::Flux {
        app: app.name.clone(),
        kind: match flux.kind {
            ConfigFluxKind::Kustomization => FluxKind::Kustomization,
            ConfigFluxKind::HelmRelease => FluxKind::HelmRelease,
        },
        name: flux.name.clone(),
        namespace: flux.namespace.clone(),
    })
}

/// One controller, whichever kind: static dispatch over the implementations.
pub enum Any<'a> {
    ArgoCd(&'a ArgoCd),
    Flux(&'a Flux),
}

impl Controller for Any<'_> {
    fn server(&self) -> String {
        match self {
            Any::ArgoCd(c) => c.server(),
            Any::Flux(c) => c.server(),
        }
    }
    async fn observe_all(
        &self,
        apps: &[AppRef],
    ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError> {
        match self {
            Any::ArgoCd(c) => c.observe_all(apps).await,
            Any::Flux(c) => c.observe_all(apps).await,
        }
    }
    async fn observe(&self, app: &AppRef, detail: Detail) -> Result<Observation, ControllerError> {
        match self {
            Any::ArgoCd(c) => c.observe(app, detail).await,
            Any::Flux(c) => c.observe(app, detail).await,
        }
    }
    async fn refresh(&self, app: &AppRef) -> Result<Observation, ControllerError> {
        match self {
            Any::ArgoCd(c) => c.refresh(app).await,
            Any::Flux(c) => c.refresh(app).await,
        }
    }
    async fn sync(&self, app: &AppRef, revision: &CommitSha) -> Result<(), ControllerError> {
        match self {
            Any::ArgoCd(c) => c.sync(app, revision).await,
            Any::Flux(c) => c.sync(app, revision).await,
        }
    }
    async fn terminate_operation(&self, app: &AppRef) -> Result<(), ControllerError> {
        match self {
            Any::ArgoCd(c) => c.terminate_operation(app).await,
            Any::Flux(c) => c.terminate_operation(app).await,
        }
    }
    async fn pods(&self, app: &AppRef) -> Result<Vec<PodState>, ControllerError> {
        match self {
            Any::ArgoCd(c) => c.pods(app).await,
            Any::Flux(c) => c.pods(app).await,
        }
    }
}
