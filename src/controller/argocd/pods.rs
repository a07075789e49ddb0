//! Pods of an app: Pod nodes of the resource tree (with whether each belongs
//! to the newest ReplicaSet of its workload), and live Pod objects fetched
//! through `GET .../resource`, converted into [`PodState`]s.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::Digest;
use crate::domain::health::{LiveImage, PodState, Waiting};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Node {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub parent_refs: Vec<NodeRef>,
    pub info: Vec<InfoItem>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NodeRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InfoItem {
    pub name: String,
    pub value: String,
}

/// A pod found in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodNode {
    pub namespace: String,
    pub name: String,
    /// Belongs to the newest ReplicaSet of its owner (true when that cannot
    /// be told: StatefulSet/DaemonSet/Job pods, no revision info).
    pub current: bool,
}

fn key(uid: &str, namespace: &str, name: &str) -> String {
    if uid.is_empty() {
        format!("{namespace}/{name}")
    } else {
        uid.to_owned()
    }
}

/// `Rev:3` → 3 (info item "Revision" on Deployments, ReplicaSets and
/// Rollouts' ReplicaSets).
fn revision(node: &Node) -> Option<u64> {
    node.info
        .iter()
        .find(|i| i.name == "Revision")
        .and_then(|i| i.value.strip_prefix("Rev:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The Pod nodes of a tree, in tree order.
pub(crate) fn pod_nodes(tree: &Tree) -> Vec<PodNode> {
    // ReplicaSet key → (owner key, revision)
    let mut sets: HashMap<String, (Option<String>, Option<u64>)> = HashMap::new();
    let mut newest: HashMap<String, u64> = HashMap::new();
    for n in tree.nodes.iter().filter(|n| n.kind == "ReplicaSet") {
        let owner = n
            .parent_refs
            .first()
            .map(|p| key(&p.uid, &p.namespace, &p.name));
        let rev = revision(n);
        if let (Some(o), Some(r)) = (&owner, rev) {
            let e = newest.entry(o.clone()).or_insert(r);
            *e = (*e).max(r);
        }
        sets.insert(key(&n.uid, &n.namespace, &n.name), (owner, rev));
    }
    tree.nodes
        .iter()
        .filter(|n| n.kind == "Pod" && n.group.is_empty())
        .map(|n| {
            let current = n
                .parent_refs
                .iter()
                .find(|p| p.kind == "ReplicaSet")
                .and_then(|p| {
                    let (owner, rev) = sets.get(&key(&p.uid, &p.namespace, &p.name))?;
                    let newest = newest.get(owner.as_ref()?)?;
                    Some(rev.as_ref()? == newest)
                })
                .unwrap_or(true);
            PodNode {
                namespace: n.namespace.clone(),
                name: n.name.clone(),
                current,
            }
        })
        .collect()
}

/// `{"manifest": "<the live object as a JSON string>"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResourceResponse {
    pub manifest: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Pod {
    pub metadata: PodMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PodMeta {
    pub name: String,
    pub namespace: String,
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PodSpec {
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PodStatus {
    pub conditions: Vec<Condition>,
    pub container_statuses: Vec<ContainerStatus>,
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ContainerStatus {
    pub name: String,
    pub image: String,
    #[serde(rename = "imageID")]
    pub image_id: String,
    pub restart_count: i64,
    pub state: ContainerState,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContainerState {
    pub waiting: Option<WaitingState>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WaitingState {
    pub reason: String,
}

/// The repo digest in a container status' `imageID`:
/// `docker-pullable://alpine@sha256:…` (dockershim) or
/// `docker.io/library/alpine@sha256:…` (containerd, CRI-O). A bare
/// `sha256:…` (or `docker://sha256:…`) is a local image id, not a digest a
/// registry serves, so it gives `None`.
pub fn digest_from_image_id(image_id: &str) -> Option<Digest> {
    let id = image_id
        .strip_prefix("docker-pullable://")
        .unwrap_or(image_id);
    let (name, digest) = id.rsplit_once('@')?;
    if name.is_empty() || name.contains("://") {
        return None;
    }
    digest.parse().ok()
}

fn time(field: &str, raw: Option<&str>) -> Result<Option<jiff::Timestamp>, String> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| format!("pod `{field}` is not an RFC 3339 time ({s:?}): {e}")),
    }
}

/// Converts a live Pod into a [`PodState`].
pub(crate) fn pod_state(pod: &Pod, current: bool) -> Result<PodState, String> {
    let ready_condition = pod.status.conditions.iter().find(|c| c.kind == "Ready");
    let statuses = pod
        .status
        .init_container_statuses
        .iter()
        .chain(&pod.status.container_statuses);
    let mut waiting = Vec::new();
    let mut restart_count: u32 = 0;
    let mut images = Vec::new();
    for cs in statuses {
        if let Some(w) = cs.state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
            waiting.push(Waiting {
                container: cs.name.clone(),
                reason: w.reason.clone(),
            });
        }
        restart_count = restart_count
            .saturating_add(u32::try_from(cs.restart_count.max(0)).unwrap_or(u32::MAX));
        // The image as written in the pod spec; the status may hold a
        // normalised spelling (`docker.io/library/nginx:1.25`).
        let image = pod
            .spec
            .containers
            .iter()
            .chain(&pod.spec.init_containers)
            .find(|c| c.name == cs.name)
            .map_or_else(|| cs.image.clone(), |c| c.image.clone());
        images.push(LiveImage {
            container: cs.name.clone(),
            image,
            digest: digest_from_image_id(&cs.image_id),
        });
    }
    Ok(PodState {
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        created_at: time(
            "metadata.creationTimestamp",
            pod.metadata.creation_timestamp.as_deref(),
        )?,
        ready: ready_condition.is_some_and(|c| c.status == "True"),
        ready_since: time(
            "status.conditions[Ready].lastTransitionTime",
            ready_condition.and_then(|c| c.last_transition_time.as_deref()),
        )?,
        waiting,
        restart_count,
        images,
        current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_forms() {
        let hex = "621c2f39f8133acb8e64023a94dbdf0d5ca81896102b9e57c0dc184cadaf5528";
        let want: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(
            digest_from_image_id(&format!("docker-pullable://alpine@sha256:{hex}")),
            Some(want.clone())
        );
        assert_eq!(
            digest_from_image_id(&format!("docker.io/library/alpine@sha256:{hex}")),
            Some(want)
        );
        assert_eq!(digest_from_image_id(&format!("sha256:{hex}")), None);
        assert_eq!(
            digest_from_image_id(&format!("docker://sha256:{hex}")),
            None
        );
        assert_eq!(digest_from_image_id(""), None);
        assert_eq!(digest_from_image_id("alpine@sha256:short"), None);
    }
}
