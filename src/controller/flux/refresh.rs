//! Asking Flux to reconcile now.
//!
//! Flux's documented trigger is a merge patch
//! (`application/merge-patch+json`) setting the annotation
//! `reconcile.fluxcd.io/requestedAt` to a new value; the controller copies
//! that value to `status.lastHandledReconcileAt` once it has acted on it.
//! revertbot writes the current time (RFC 3339, nanoseconds, as the flux CLI
//! does) and polls until the echo, so what it reads afterwards is the result
//! of that reconcile and not of an earlier one.
//!
//! The chain, each waited for in turn within one `refresh_timeout`:
//! the source (so a new commit is fetched now, not at the next interval),
//! then for a HelmRelease its parent Kustomization (which applies the
//! HelmRelease from git), then the app object itself. Suspended objects are
//! skipped: Flux ignores requests for them and the echo would never come.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use super::objects::{flux_resource, source_resource};
use super::{Flux, FluxApp, call};
use crate::controller::{ControllerError, FluxKind};

pub(crate) const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// One object to reconcile.
struct Target {
    resource: ApiResource,
    namespace: String,
    name: String,
}

impl Flux {
    pub(crate) async fn reconcile_now(&self, app: &FluxApp<'_>) -> Result<(), ControllerError> {
        let deadline = Instant::now() + self.options.refresh_timeout;
        let requested_at = jiff::Timestamp::now().to_string();
        for target in self.chain(app).await? {
            self.reconcile_one(&target, &requested_at, deadline).await?;
        }
        Ok(())
    }

    /// Source, parent Kustomization (HelmRelease only), the app.
    async fn chain(&self, app: &FluxApp<'_>) -> Result<Vec<Target>, ControllerError> {
        let object = self.get_flux(app.kind, app.namespace, app.name).await?;
        let mut chain = Vec::new();
        let parent = self.parent_of(app, &object).await?;
        let applier = match app.kind {
            FluxKind::Kustomization => Some(&object),
            FluxKind::HelmRelease => parent.as_ref(),
        };
        if self.options.reconcile_source
            && let Some(applier) = applier
            && let Some(source) = &applier.spec.source_ref
        {
            match source_resource(&source.kind) {
                Some(resource) => chain.push(Target {
                    resource,
                    namespace: source
                        .namespace
                        .clone()
                        .unwrap_or_else(|| applier.namespace.clone()),
                    name: source.name.clone(),
                }),
                None => {
                    tracing::debug!(kind = %source.kind, "not a source kind revertbot reconciles; skipped")
                }
            }
        }
        if let Some(parent) = &parent {
            chain.push(Target {
                resource: flux_resource(FluxKind::Kustomization),
                namespace: parent.namespace.clone(),
                name: parent.name.clone(),
            });
        }
        chain.push(Target {
            resource: flux_resource(app.kind),
            namespace: app.namespace.to_owned(),
            name: app.name.to_owned(),
        });
        Ok(chain)
    }

    async fn reconcile_one(
        &self,
        target: &Target,
        requested_at: &str,
        deadline: Instant,
    ) -> Result<(), ControllerError> {
        let what = format!(
            "{} {}/{}",
            target.resource.kind, target.namespace, target.name
        );
        let current = self
            .get_dynamic(&target.resource, &target.namespace, &target.name)
            .await?;
        if current
            .data
            .pointer("/spec/suspend")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            tracing::info!(object = %what, "suspended: Flux ignores reconcile requests for it; not asking");
            return Ok(());
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &target.namespace, &target.resource);
        let patch = json!({"metadata": {"annotations": {REQUESTED_AT: requested_at}}});
        let patch = Patch::Merge(&patch);
        let params = PatchParams::default();
        let doing = self.doing(format!("requesting a reconcile of {what}"), what.clone());
        call::call(&self.options, &doing, || {
            api.patch(&target.name, &params, &patch)
        })
        .await?;
        tracing::debug!(object = %what, requested_at, "reconcile requested; waiting for Flux to handle it");
        loop {
            let object = self
                .get_dynamic(&target.resource, &target.namespace, &target.name)
                .await?;
            let handled = object
                .data
                .pointer("/status/lastHandledReconcileAt")
                .and_then(serde_json::Value::as_str);
            if handled == Some(requested_at) {
                return Ok(());
            }
            if Instant::now() + self.options.poll_interval > deadline {
                // kustomize-controller echoes the request only when the
                // whole reconcile ends, health checks (`wait: true`) included.
                let hint = match reconciling(&object.data) {
                    Some(message) => format!(
                        "Flux is still reconciling it ({message}) and echoes the request only when that ends"
                    ),
                    None => "is the Flux controller running?".to_owned(),
                };
                return Err(ControllerError::Timeout {
                    server: self.server.clone(),
                    doing: format!(
                        "waiting for Flux to handle the reconcile request for {what} (status.lastHandledReconcileAt is {}, requested {requested_at}); {hint}",
                        handled.unwrap_or("unset")
                    ),
                    timeout: self.options.refresh_timeout,
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }
}

/// The message of a `Reconciling=True` condition, bounded.
fn reconciling(object: &serde_json::Value) -> Option<String> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let condition = conditions
        .iter()
        .find(|c| c["type"] == "Reconciling" && c["status"] == "True")?;
    let message = condition["message"].as_str()?.lines().next()?.trim();
    Some(message.chars().take(200).collect())
}
