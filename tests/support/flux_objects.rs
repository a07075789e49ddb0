//! Flux and Kubernetes objects in the API's shapes for the `check` tests
//! against the strict fake Kubernetes API: the guestbook Kustomization in
//! each state kustomize-controller puts it in ([`KsState`]), its
//! GitRepository, and a Deployment / ReplicaSet / Pod rollout.

use serde_json::{Value, json};

/// Where kustomize-controller stands with the guestbook Kustomization. Each
/// state is written the way the controller writes it; line numbers are of
/// `internal/controller/kustomization_controller.go` in
/// fluxcd/kustomize-controller at 186fb3b29138 (the fixtures' PROVENANCE.md).
/// The inventory is written right after the apply (L490) and is the same
/// Deployment in every state; which ReplicaSet is newest says which pods run.
#[derive(Debug, Clone, Copy)]
pub enum KsState<'a> {
    /// `wait: false` and no `healthChecks`: `checkHealth` returns at once
    /// (L1018-1021), so `lastAppliedRevision` moves and `Ready=True` right
    /// after the apply (L534-546), whatever the pods do.
    NoWait(&'a str),
    /// `wait: true`, checks passed: `lastAppliedRevision` (L534),
    /// `Ready=True/ReconciliationSucceeded` "Applied revision: X" (L538),
    /// `Healthy=True` (L1081), `Reconciling` removed (`finalizeStatus`,
    /// L1304-1305).
    Ready(&'a str),
    /// `wait: true`, applied and checking: `Reconciling=True/Progressing`
    /// "Running health checks for revision X …" and `Healthy=Unknown`
    /// (L1052-1054), `Ready=Unknown` since the reconcile began (L325);
    /// `lastAppliedRevision` still the one before.
    HealthChecking {
        applied: &'a str,
        attempted: &'a str,
    },
    /// `wait: true`, the checks failed: `Ready=False/HealthCheckFailed`
    /// (L529, message wrapped "health check failed after …"), `Healthy=False`
    /// (L1071), a history entry with that status (L528); `Reconciling` keeps
    /// its message with reason `ProgressingWithRetry` (L1311-1315).
    HealthCheckFailed {
        applied: &'a str,
        attempted: &'a str,
    },
    /// The server-side apply was rejected: `Ready=False/ReconciliationFailed`
    /// (L476) and a history entry (L475); the inventory did not move. The
    /// last progress message was "Detecting drift for revision X" (L466).
    ApplyFailed {
        applied: &'a str,
        attempted: &'a str,
    },
    /// `kustomize build` failed: `Ready=False/BuildFailed` (L439), no history
    /// entry; last progress "Building manifests for revision X" (L385), after
    /// `lastAttemptedRevision` moved (L384).
    BuildFailed {
        applied: &'a str,
        attempted: &'a str,
    },
    /// A periodic reconcile of the applied revision, fetching:
    /// `Ready=Unknown` (L325), "Fetching manifests for revision X" (L324).
    Reconciling(&'a str),
}

const AT: &str = "2026-11-24T00:00:00Z";

fn rev(sha: &str) -> String {
    format!("main@sha1:{sha}")
}

fn condition(kind: &str, status: &str, reason: &str, message: String) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "observedGeneration": 1, "lastTransitionTime": AT})
}

fn history_entry(sha: &str, status: &str) -> Value {
    json!({"digest": format!("sha256:{:0<64}", &sha[..sha.len().min(12)]),
           "firstReconciled": AT, "lastReconciled": AT, "lastReconciledDuration": "2.5s",
           "lastReconciledStatus": status, "metadata": {"revision": rev(sha)},
           "totalReconciliations": 1})
}

impl KsState<'_> {
    /// `(lastAppliedRevision, lastAttemptedRevision)`.
    fn revisions(&self) -> (&str, &str) {
        match *self {
            KsState::NoWait(r) | KsState::Ready(r) | KsState::Reconciling(r) => (r, r),
            KsState::HealthChecking { applied, attempted }
            | KsState::HealthCheckFailed { applied, attempted }
            | KsState::ApplyFailed { applied, attempted }
            | KsState::BuildFailed { applied, attempted } => (applied, attempted),
        }
    }

    fn wait(&self) -> bool {
        !matches!(self, KsState::NoWait(_))
    }

    fn conditions(&self) -> Value {
        let (_, attempted) = self.revisions();
        let progress = |what: &str| {
            format!(
                "{what} for revision {} with a timeout of 1m0s",
                rev(attempted)
            )
        };
        let checking = progress("Running health checks");
        let timeout = "timeout waiting for: [Deployment/default/guestbook-ui status: 'InProgress']";
        match self {
            KsState::NoWait(r) => json!([condition("Ready", "True", "ReconciliationSucceeded", format!("Applied revision: {}", rev(r)))]),
            KsState::Ready(r) => json!([
                condition("Ready", "True", "ReconciliationSucceeded", format!("Applied revision: {}", rev(r))),
                condition("Healthy", "True", "Succeeded", "Health check passed in 2.5s".to_owned()),
            ]),
            KsState::HealthChecking { .. } => json!([
                condition("Reconciling", "True", "Progressing", checking.clone()),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress".to_owned()),
                condition("Healthy", "Unknown", "Progressing", checking),
            ]),
            KsState::HealthCheckFailed { .. } => json!([
                condition("Reconciling", "True", "ProgressingWithRetry", checking),
                condition("Ready", "False", "HealthCheckFailed", format!("health check failed after 1m0.01s: {timeout}")),
                condition("Healthy", "False", "HealthCheckFailed", timeout.to_owned()),
            ]),
            KsState::ApplyFailed { .. } => json!([
                condition("Reconciling", "True", "ProgressingWithRetry", progress("Detecting drift")),
                condition("Ready", "False", "ReconciliationFailed",
                          "Deployment/default/guestbook-ui dry-run failed (Invalid): Deployment.apps \"guestbook-ui\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_owned()),
            ]),
            KsState::BuildFailed { .. } => json!([
                condition("Reconciling", "True", "ProgressingWithRetry", progress("Building manifests")),
                condition("Ready", "False", "BuildFailed",
                          "kustomize build failed: accumulating resources: accumulation err='accumulating resources from 'service.yaml': open /tmp/kustomization-1/apps/guestbook/service.yaml: no such file or directory'".to_owned()),
            ]),
            KsState::Reconciling(_) => json!([
                condition("Reconciling", "True", "Progressing", progress("Fetching manifests")),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress".to_owned()),
            ]),
        }
    }

    /// The history entry this state upserts (L475, L528, L542); the build
    /// failure and the steps before the apply record none.
    fn upserted(&self) -> Option<Value> {
        let (_, attempted) = self.revisions();
        match self {
            KsState::NoWait(_) | KsState::Ready(_) => {
                Some(history_entry(attempted, "ReconciliationSucceeded"))
            }
            KsState::HealthCheckFailed { .. } => {
                Some(history_entry(attempted, "HealthCheckFailed"))
            }
            KsState::ApplyFailed { .. } => Some(history_entry(attempted, "ReconciliationFailed")),
            KsState::HealthChecking { .. }
            | KsState::BuildFailed { .. }
            | KsState::Reconciling(_) => None,
        }
    }
}

/// The guestbook Kustomization in `state`.
pub fn kustomization_in(state: KsState<'_>) -> Value {
    let mut object = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "guestbook", "namespace": "flux-system", "generation": 1},
        "spec": {"interval": "5m", "path": "./apps/guestbook", "prune": true, "timeout": "1m",
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {
            "observedGeneration": 1,
            "inventory": {"entries": [{"id": "default_guestbook-ui_apps_Deployment", "v": "v1"}]}
        }
    });
    if state.wait() {
        object["spec"]["wait"] = json!(true);
    }
    set_status(&mut object, state);
    object
}

/// Moves a Kustomization's status to `state` as the controller would: the
/// revisions and conditions are replaced, the history is upserted (one
/// entry per revision here, newest first, at most 5), the rest (reconcile
/// echo, inventory) stays.
pub fn set_status(object: &mut Value, state: KsState<'_>) {
    let (applied, attempted) = state.revisions();
    let status = &mut object["status"];
    status["lastAppliedRevision"] = json!(rev(applied));
    status["lastAttemptedRevision"] = json!(rev(attempted));
    status["conditions"] = state.conditions();
    let mut history = status["history"].as_array().cloned().unwrap_or_default();
    if let Some(entry) = state.upserted() {
        history.retain(|h| h["metadata"]["revision"] != entry["metadata"]["revision"]);
        history.insert(0, entry);
    }
    // The applied revision got through a whole reconcile at some point.
    if !history
        .iter()
        .any(|h| h["metadata"]["revision"] == json!(rev(applied)))
    {
        history.push(history_entry(applied, "ReconciliationSucceeded"));
    }
    history.truncate(5);
    status["history"] = json!(history);
}

/// Shorthand for the tests that only care about "applied and Ready" or
/// "re-reconciling what is applied": [`KsState::Ready`] or
/// [`KsState::Reconciling`].
pub fn kustomization(revision: &str, ready: bool) -> Value {
    kustomization_in(if ready {
        KsState::Ready(revision)
    } else {
        KsState::Reconciling(revision)
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
