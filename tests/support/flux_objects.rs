//! Flux and Kubernetes objects in the API's shapes for the `check` tests
//! against the strict fake Kubernetes API: the guestbook Kustomization, its
//! GitRepository, and a Deployment / ReplicaSet / Pod rollout.

use serde_json::{Value, json};

/// The guestbook Kustomization, applied at `revision`; Ready or still
/// reconciling.
pub fn kustomization(revision: &str, ready: bool) -> Value {
    let (status, reason) = if ready {
        ("True", "ReconciliationSucceeded")
    } else {
        ("Unknown", "Progressing")
    };
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "guestbook", "namespace": "flux-system", "generation": 1},
        "spec": {"interval": "5m", "path": "./apps/guestbook", "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {
            "observedGeneration": 1,
            "lastAppliedRevision": format!("main@sha1:{revision}"),
            "lastAttemptedRevision": format!("main@sha1:{revision}"),
            "conditions": [{"type": "Ready", "status": status, "reason": reason,
                            "message": format!("Applied revision: main@sha1:{revision}"),
                            "observedGeneration": 1, "lastTransitionTime": "2026-11-24T00:00:00Z"}],
            "inventory": {"entries": [{"id": "default_guestbook-ui_apps_Deployment", "v": "v1"}]}
        }
    })
}

/// The GitRepository the Kustomization reads from.
pub fn git_repository() -> Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
        "spec": {"interval": "1m", "url": "https://example.invalid/infra.git", "ref": {"branch": "main"}},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True",
                   "reason": "Succeeded", "observedGeneration": 1, "lastTransitionTime": "2026-11-24T00:00:00Z"}]}
    })
}

/// A Deployment rollout: ReplicaSet `hash` (Deployment revision `revision`)
/// with one pod running `image` (`image_id` as the kubelet reports it),
/// ready or crash-looping.
pub fn workload(
    hash: &str,
    revision: u32,
    image: &str,
    image_id: &str,
    crashloop: bool,
) -> Vec<Value> {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guestbook-ui", "namespace": "default", "uid": "guestbook-ui-uid", "generation": 2},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "guestbook"}},
                 "template": {"metadata": {"labels": {"app": "guestbook"}},
                              "spec": {"containers": [{"name": "ui", "image": image}]}}},
        "status": {"observedGeneration": 2}
    });
    let replicaset = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("guestbook-ui-{hash}"), "namespace": "default", "uid": format!("rs-{hash}"),
                     "labels": {"app": "guestbook", "pod-template-hash": hash},
                     "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "guestbook-ui",
                                          "uid": "guestbook-ui-uid", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "guestbook", "pod-template-hash": hash}}}
    });
    let state = if crashloop {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}})
    } else {
        json!({"running": {"startedAt": "2026-11-24T00:00:05Z"}})
    };
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("guestbook-ui-{hash}-x1"), "namespace": "default",
                     "creationTimestamp": "2026-11-24T00:00:00Z",
                     "labels": {"app": "guestbook", "pod-template-hash": hash},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("guestbook-ui-{hash}"),
                                          "uid": format!("rs-{hash}"), "controller": true}]},
        "spec": {"containers": [{"name": "ui", "image": image}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if crashloop { "False" } else { "True" },
                                   "lastTransitionTime": "2026-11-24T00:00:09Z"}],
                   "containerStatuses": [{"name": "ui", "image": image, "imageID": image_id,
                                          "ready": !crashloop, "restartCount": if crashloop { 7 } else { 0 },
                                          "started": !crashloop, "state": state}]}
    });
    vec![deployment, replicaset, pod]
}
