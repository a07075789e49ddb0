//! Reading Flux objects (one GET, or one LIST per kind and namespace) and
//! turning them into [`Observation`]s.

use std::collections::HashMap;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::call::{self, Doing, duplicate};
use super::status::{self, FluxObject};
use super::{Flux, FluxApp};

/// LIST results by (kind name, namespace).
type Lists = HashMap<(&'static str, String), Result<Vec<FluxObject>, ControllerError>>;
use crate::controller::{AppRef, ControllerError, FluxKind};
use crate::domain::AppName;
use crate::domain::health::Observation;

/// The API resource of a Flux app kind.
pub(crate) fn flux_resource(kind: FluxKind) -> ApiResource {
    match kind {
        FluxKind::Kustomization => resource(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
        FluxKind::HelmRelease => resource(
            "helm.toolkit.fluxcd.io",
            "v2",
            "HelmRelease",
            "helmreleases",
        ),
    }
}

/// The API resource of a Kustomization's `spec.sourceRef.kind`, when it is
/// a source revertbot knows how to ask for a reconcile.
pub(crate) fn source_resource(kind: &str) -> Option<ApiResource> {
    let plural = match kind {
        "GitRepository" => "gitrepositories",
        "OCIRepository" => "ocirepositories",
        "Bucket" => "buckets",
        _ => return None,
    };
    Some(resource("source.toolkit.fluxcd.io", "v1", kind, plural))
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn kind_name(kind: FluxKind) -> &'static str {
    match kind {
        FluxKind::Kustomization => "Kustomization",
        FluxKind::HelmRelease => "HelmRelease",
    }
}

impl Flux {
    pub(crate) fn doing(&self, doing: String, what: String) -> Doing<'_> {
        Doing {
            server: &self.server,
            doing,
            what,
        }
    }

    /// GET one custom object.
    pub(crate) async fn get_dynamic(
        &self,
        ar: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> Result<DynamicObject, ControllerError> {
        let what = format!("{} {namespace}/{name}", ar.kind);
        let doing = self.doing(format!("reading {what}"), what);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, ar);
        call::call(&self.options, &doing, || api.get(name)).await
    }

    /// GET one Flux app object, converted.
    pub(crate) async fn get_flux(
        &self,
        kind: FluxKind,
        namespace: &str,
        name: &str,
    ) -> Result<FluxObject, ControllerError> {
        let object = self
            .get_dynamic(&flux_resource(kind), namespace, name)
            .await?;
        self.convert(kind, &object)
    }

    /// LIST the Flux objects of a kind in a namespace.
    async fn list_flux(
        &self,
        kind: FluxKind,
        namespace: &str,
    ) -> Result<Vec<FluxObject>, ControllerError> {
        let ar = flux_resource(kind);
        let what = format!("{}s in namespace {namespace}", kind_name(kind));
        let doing = self.doing(format!("listing {what}"), what);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        let params = ListParams::default();
        let list = call::call(&self.options, &doing, || api.list(&params)).await?;
        list.items.iter().map(|o| self.convert(kind, o)).collect()
    }

    fn convert(
        &self,
        kind: FluxKind,
        object: &DynamicObject,
    ) -> Result<FluxObject, ControllerError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let malformed = |message: String| ControllerError::Malformed {
            server: self.server.clone(),
            doing: format!("reading {} {namespace}/{name}", kind_name(kind)),
            message,
        };
        let json = serde_json::to_value(object).map_err(|e| malformed(e.to_string()))?;
        FluxObject::from_json(&name, &namespace, &json).map_err(|e| malformed(e.to_string()))
    }

    /// The parent Kustomization of a HelmRelease (from its labels), by GET.
    /// A parent that no longer exists is
    /// logged and treated as unknown.
    pub(crate) async fn parent_of(
        &self,
        app: &FluxApp<'_>,
        object: &FluxObject,
    ) -> Result<Option<FluxObject>, ControllerError> {
        if app.kind != FluxKind::HelmRelease {
            return Ok(None);
        }
        let Some((namespace, name)) = object.parent() else {
            tracing::debug!(app = %app.app.describe(), "HelmRelease has no kustomize.toolkit.fluxcd.io labels; its git revision is unknown");
            return Ok(None);
        };
        match self
            .get_flux(FluxKind::Kustomization, &namespace, &name)
            .await
        {
            Ok(parent) => Ok(Some(parent)),
            Err(ControllerError::NotFound { what, .. }) => {
                tracing::warn!(app = %app.app.describe(), parent = %what, "the parent Kustomization of the HelmRelease is gone; its git revision is unknown");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Converts an object (and a HelmRelease's parent) into an observation.
    pub(crate) fn observation(
        &self,
        app: &FluxApp<'_>,
        object: &FluxObject,
        parent: Option<&FluxObject>,
    ) -> Observation {
        let (health, health_message) = status::health(object);
        let revisions = match app.kind {
            FluxKind::Kustomization => Some(object),
            FluxKind::HelmRelease => parent,
        };
        let live = revisions
            .map(super::live::kustomization_revisions)
            .unwrap_or_default();
        let sync = match (app.kind, parent) {
            (FluxKind::Kustomization, _) => status::kustomization_sync(&object.status),
            (FluxKind::HelmRelease, None) => status::helm_sync(&object.status),
            (FluxKind::HelmRelease, Some(parent)) => status::combine_sync(
                status::helm_sync(&object.status),
                status::kustomization_sync(&parent.status),
            ),
        };
        Observation {
            app: AppName(app.app.app().to_owned()),
            source: app.app.describe(),
            deployed: live.deployed(),
            target: live.attempted.clone(),
            health,
            health_message,
            sync,
            operation: None,
            reconciled_at: status::reconciled_at(object),
            history: revisions
                .map(|o| status::kustomization_history(&o.status))
                .unwrap_or_default(),
            pods: Vec::new(),
            apply_failure: live.failure,
        }
    }

    /// One LIST per (kind, namespace), plus one LIST of Kustomizations per
    /// namespace holding HelmRelease parents not listed already. Failures
    /// that concern every app (unreachable, timeout, bad credentials) fail
    /// the whole call; others (a namespace revertbot may not read) land in
    /// the slots of the apps they concern.
    pub(crate) async fn observe_many(
        &self,
        apps: &[AppRef],
    ) -> Result<Vec<Result<Observation, ControllerError>>, ControllerError> {
        let mut lists: Lists = HashMap::new();
        let flux_apps: Vec<_> = apps.iter().map(|a| FluxApp::of(a, &self.server)).collect();

        async fn ensure(
            flux: &Flux,
            lists: &mut Lists,
            kind: FluxKind,
            namespace: &str,
        ) -> Result<(), ControllerError> {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                lists.entry((kind_name(kind), namespace.to_owned()))
            {
                let listed = flux.list_flux(kind, namespace).await;
                if let Err(e) = &listed
                    && affects_all(e)
                {
                    return Err(duplicate(e));
                }
                slot.insert(listed);
            }
            Ok(())
        }

        for app in flux_apps.iter().flatten() {
            ensure(self, &mut lists, app.kind, app.namespace).await?;
        }
        let mut parents = Vec::new();
        for app in flux_apps.iter().flatten() {
            if let Some(Ok(objects)) = lists.get(&(kind_name(app.kind), app.namespace.to_owned()))
                && let Some(object) = objects.iter().find(|o| o.name == app.name)
                && let (FluxKind::HelmRelease, Some((ns, _))) = (app.kind, object.parent())
            {
                parents.push(ns);
            }
        }
        for namespace in parents {
            ensure(self, &mut lists, FluxKind::Kustomization, &namespace).await?;
        }

        let mut out = Vec::with_capacity(apps.len());
        for app in flux_apps {
            out.push(app.and_then(|app| self.observe_listed(&app, &lists)));
        }
        Ok(out)
    }

    fn observe_listed(
        &self,
        app: &FluxApp<'_>,
        lists: &Lists,
    ) -> Result<Observation, ControllerError> {
        let objects = match lists.get(&(kind_name(app.kind), app.namespace.to_owned())) {
            Some(Ok(objects)) => objects,
            Some(Err(e)) => return Err(duplicate(e)),
            None => return Err(self.not_found(app)),
        };
        let object = objects
            .iter()
            .find(|o| o.name == app.name)
            .ok_or_else(|| self.not_found(app))?;
        let parent = match (app.kind, object.parent()) {
            (FluxKind::HelmRelease, Some((namespace, name))) => {
                match lists.get(&("Kustomization", namespace)) {
                    Some(Ok(listed)) => listed.iter().find(|k| k.name == name),
                    Some(Err(e)) => return Err(duplicate(e)),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(self.observation(app, object, parent))
    }

    fn not_found(&self, app: &FluxApp<'_>) -> ControllerError {
        ControllerError::NotFound {
            server: self.server.clone(),
            what: format!("{} {}/{}", kind_name(app.kind), app.namespace, app.name),
        }
    }
}

/// Errors that say nothing about one namespace in particular.
fn affects_all(error: &ControllerError) -> bool {
    matches!(
        error,
        ControllerError::Unreachable { .. }
            | ControllerError::Timeout { .. }
            | ControllerError::Auth { status: 401, .. }
    )
}
