//! The pods of a Flux app, through the Kubernetes API.
//!
//! A Kustomization lists what it applied in `status.inventory.entries[]`
//! (`<ns>_<name>_apps_Deployment`); a HelmRelease's workloads carry
//! helm-controller's `helm.toolkit.fluxcd.io/name|namespace` labels (or, in
//! charts that follow the convention, `app.kubernetes.io/instance=<release>`).
//! Each workload's pods are listed by its label selector and filtered by
//! owner, then converted into [`PodState`].
//!
//! Which pods are *current* (of the newest revision of their workload):
//! for a Deployment, pods whose `pod-template-hash` is that of the newest
//! ReplicaSet (highest `deployment.kubernetes.io/revision`) the Deployment
//! owns; for a StatefulSet, pods whose `controller-revision-hash` equals
//! `status.updateRevision`. A DaemonSet's newest revision is only in its
//! ControllerRevisions, which revertbot does not read, and a Deployment or
//! StatefulSet that does not say may be mid-creation: then every pod counts
//! as current, which errs toward holding old pods against the new revision
//! rather than missing a broken one.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::status::FluxObject;
use super::{Flux, FluxApp, call};
use crate::controller::{ControllerError, FluxKind};
use crate::domain::Digest;
use crate::domain::health::{LiveImage, PodState, Waiting};

/// A workload and how to tell its current pods.
struct Workload {
    namespace: String,
    selector: String,
    /// Pods must be controlled by one of these UIDs (ReplicaSets of a
    /// Deployment; the StatefulSet or DaemonSet itself).
    owners: Vec<String>,
    /// `(label, value)` of current pods; `None`: all pods count as current.
    current: Option<(&'static str, String)>,
}

const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

impl Flux {
    pub(crate) async fn pods_of(
        &self,
        app: &FluxApp<'_>,
        object: &FluxObject,
    ) -> Result<Vec<PodState>, ControllerError> {
        let workloads = match app.kind {
            FluxKind::Kustomization => self.inventory_workloads(object).await?,
            FluxKind::HelmRelease => self.helm_workloads(object).await?,
        };
        let mut pods = Vec::new();
        for workload in workloads {
            pods.extend(self.workload_pods(&workload).await?);
        }
        Ok(pods)
    }

    async fn inventory_workloads(
        &self,
        object: &FluxObject,
    ) -> Result<Vec<Workload>, ControllerError> {
        let entries = object
            .status
            .inventory
            .as_ref()
            .map(|i| i.entries.as_slice())
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in entries.iter().filter_map(|e| e.parse()) {
            if id.group != "apps" || !WORKLOAD_KINDS.contains(&id.kind.as_str()) {
                continue;
            }
            let workload = match id.kind.as_str() {
                "Deployment" => match self
                    .get_typed::<Deployment>(&id.namespace, &id.name)
                    .await?
                {
                    Some(d) => self.deployment(&d).await?,
                    None => None,
                },
                "StatefulSet" => self
                    .get_typed::<StatefulSet>(&id.namespace, &id.name)
                    .await?
                    .and_then(|s| statefulset(&s)),
                _ => self
                    .get_typed::<DaemonSet>(&id.namespace, &id.name)
                    .await?
                    .and_then(|d| daemonset(&d)),
            };
            out.extend(workload);
        }
        Ok(out)
    }

    async fn helm_workloads(&self, object: &FluxObject) -> Result<Vec<Workload>, ControllerError> {
        let (namespace, release) = super::status::helm_release(object);
        let selectors = [
            format!(
                "helm.toolkit.fluxcd.io/name={},helm.toolkit.fluxcd.io/namespace={}",
                object.name, object.namespace
            ),
            format!("app.kubernetes.io/instance={release}"),
        ];
        for selector in selectors {
            let mut out = Vec::new();
            for d in self.list_typed::<Deployment>(&namespace, &selector).await? {
                out.extend(self.deployment(&d).await?);
            }
            out.extend(
                self.list_typed::<StatefulSet>(&namespace, &selector)
                    .await?
                    .iter()
                    .filter_map(statefulset),
            );
            out.extend(
                self.list_typed::<DaemonSet>(&namespace, &selector)
                    .await?
                    .iter()
                    .filter_map(daemonset),
            );
            if !out.is_empty() {
                return Ok(out);
            }
        }
        Ok(Vec::new())
    }

    async fn deployment(&self, d: &Deployment) -> Result<Option<Workload>, ControllerError> {
        let Some(selector) = selector_string(&d.spec.selector) else {
            return Ok(None);
        };
        let namespace = d.metadata.namespace.clone().unwrap_or_default();
        let uid = d.metadata.uid.as_deref();
        let sets: Vec<ReplicaSet> = self
            .list_typed::<ReplicaSet>(&namespace, &selector)
            .await?
            .into_iter()
            .filter(|rs| uid.is_none() || controller_uid(&rs.metadata) == uid)
            .collect();
        let revision = |rs: &ReplicaSet| {
            annotation(&rs.metadata, "deployment.kubernetes.io/revision")
                .and_then(|r| r.parse::<u64>().ok())
        };
        let newest = sets.iter().max_by_key(|rs| revision(rs));
        let current = newest
            .and_then(|rs| label(&rs.metadata, "pod-template-hash"))
            .map(|hash| ("pod-template-hash", hash.to_owned()));
        Ok(Some(Workload {
            namespace,
            selector,
            owners: sets
                .iter()
                .filter_map(|rs| rs.metadata.uid.clone())
                .collect(),
            current,
        }))
    }

    async fn workload_pods(&self, workload: &Workload) -> Result<Vec<PodState>, ControllerError> {
        let pods = self
            .list_typed::<Pod>(&workload.namespace, &workload.selector)
            .await?;
        Ok(pods
            .iter()
            .filter(|p| {
                // With no known owner (no ReplicaSet yet) the selector alone decides.
                workload.owners.is_empty()
                    || controller_uid(&p.metadata)
                        .is_none_or(|uid| workload.owners.iter().any(|o| o == uid))
            })
            .map(|p| {
                let current = match &workload.current {
                    Some((key, value)) => label(&p.metadata, key) == Some(value.as_str()),
                    None => true,
                };
                pod_state(p, current)
            })
            .collect())
    }

    /// GET a namespaced object; `None` when it does not exist (a workload
    /// the inventory still lists but that was deleted).
    async fn get_typed<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, ControllerError>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let what = format!("{} {namespace}/{name}", K::kind(&()));
        let doing = self.doing(format!("reading {what}"), what);
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        match call::call(&self.options, &doing, || api.get(name)).await {
            Ok(object) => Ok(Some(object)),
            Err(ControllerError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_typed<K>(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<K>, ControllerError>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let what = format!("{}s in {namespace} matching {selector}", K::kind(&()));
        let doing = self.doing(format!("listing {what}"), what);
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(selector);
        Ok(call::call(&self.options, &doing, || api.list(&params))
            .await?
            .items)
    }
}

fn statefulset(s: &StatefulSet) -> Option<Workload> {
    let selector = selector_string(&s.spec.selector)?;
    let revision = s.status.as_ref().and_then(|st| st.update_revision.clone());
    Some(Workload {
        namespace: s.metadata.namespace.clone().unwrap_or_default(),
        selector,
        owners: s.metadata.uid.iter().cloned().collect(),
        current: revision.map(|r| ("controller-revision-hash", r)),
    })
}

fn daemonset(d: &DaemonSet) -> Option<Workload> {
    let selector = selector_string(&d.spec.selector)?;
    Some(Workload {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        selector,
        owners: d.metadata.uid.iter().cloned().collect(),
        current: None,
    })
}

fn label<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// A `LabelSelector` in the query syntax; `None` for an empty selector,
/// which would select every pod of the namespace.
pub(crate) fn selector_string(selector: &LabelSelector) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        parts.push(format!("{key}={value}"));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            _ => return None,
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

fn time(t: &Time) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.0.as_second(), t.0.subsec_nanosecond()).ok()
}

/// The repo digest in a `containerStatuses[].imageID`:
/// `docker-pullable://ghcr.io/x@sha256:…`, `docker.io/library/x@sha256:…`.
/// A bare `sha256:…` (or `docker://sha256:…`) is the local image id, not a
/// registry digest → `None`.
pub fn digest_from_image_id(image_id: &str) -> Option<Digest> {
    let rest = image_id.split_once("://").map_or(image_id, |(_, r)| r);
    let (_, digest) = rest.rsplit_once('@')?;
    digest.parse().ok()
}

/// A Pod as revertbot sees it.
pub(crate) fn pod_state(pod: &Pod, current: bool) -> PodState {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let statuses: Vec<&ContainerStatus> = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect();
    let spec_image = |name: &str| {
        let spec = pod.spec.as_ref()?;
        spec.init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
    };
    PodState {
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        created_at: pod.metadata.creation_timestamp.as_ref().and_then(time),
        ready: ready.is_some_and(|c| c.status == "True"),
        ready_since: ready
            .and_then(|c| c.last_transition_time.as_ref())
            .and_then(time),
        waiting: statuses
            .iter()
            .filter_map(|cs| {
                let reason = cs.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
                Some(Waiting {
                    container: cs.name.clone(),
                    reason,
                })
            })
            .collect(),
        restart_count: statuses
            .iter()
            .map(|cs| u32::try_from(cs.restart_count).unwrap_or(0))
            .sum(),
        images: statuses
            .iter()
            .map(|cs| LiveImage {
                container: cs.name.clone(),
                image: spec_image(&cs.name).unwrap_or_else(|| cs.image.clone()),
                digest: digest_from_image_id(&cs.image_id),
            })
            .collect(),
        current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0cc9a8446c95009ef382f5eade883a67c257f77d50f84e78ecef2aac9428d1e5";

    #[test]
    fn image_ids() {
        let want = Some(format!("sha256:{HEX}"));
        for id in [
            format!("docker-pullable://ghcr.io/stefanprodan/podinfo@sha256:{HEX}"),
            format!("docker.io/library/nginx@sha256:{HEX}"),
            format!("ghcr.io/a/b:v1@sha256:{HEX}"),
        ] {
            assert_eq!(
                digest_from_image_id(&id).map(|d| d.to_string()),
                want,
                "{id}"
            );
        }
        for id in [
            format!("sha256:{HEX}"),
            format!("docker://sha256:{HEX}"),
            String::new(),
            "x@sha256:short".to_owned(),
        ] {
            assert_eq!(digest_from_image_id(&id), None, "{id}");
        }
    }

    #[test]
    fn selectors() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "podinfo"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        assert_eq!(
            selector_string(&selector).as_deref(),
            Some("app=podinfo,tier in (web,api),!canary")
        );
        assert_eq!(selector_string(&LabelSelector::default()), None);
    }
}
