#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flux: pods and live image digests, from the Kustomization inventory or
//! the HelmRelease's labelled workloads. The workloads here are built in
//! the Kubernetes API shapes (no upstream recording of them exists in the
//! fixture set).

mod support;

use revertbot::controller::{AppRef, Controller, Detail, FluxKind};
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, test_options};

const NEW_DIGEST: &str = "sha256:0cc9a8446c95009ef382f5eade883a67c257f77d50f84e78ecef2aac9428d1e5";
const OLD_DIGEST: &str = "sha256:cdd538a0167e4b51152b71a477e51eb6737553510ce8797dbcc537e1342311bb";
const IMAGE: &str = "ghcr.io/stefanprodan/podinfo:6.6.1";

fn deployment(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("{name}-uid"), "generation": 2, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {"containers": [{"name": "podinfod", "image": IMAGE}]}
            }
        },
        "status": {"observedGeneration": 2, "replicas": 2}
    })
}

fn replicaset(ns: &str, deployment: &str, hash: &str, revision: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{deployment}-{hash}"), "namespace": ns, "uid": format!("rs-{hash}"),
            "labels": {"app.kubernetes.io/name": deployment, "pod-template-hash": hash},
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                 "uid": format!("{deployment}-uid"), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": deployment, "pod-template-hash": hash}}}
    })
}

struct PodSpec<'a> {
    name: &'a str,
    hash: &'a str,
    image_id: &'a str,
    ready: bool,
    waiting: Option<&'a str>,
    restarts: i32,
}

fn pod(ns: &str, deployment: &str, p: PodSpec<'_>) -> Value {
    let state = match p.waiting {
        Some(reason) => {
            json!({"waiting": {"reason": reason, "message": "back-off 5m0s restarting failed container"}})
        }
        None => json!({"running": {"startedAt": "2025-08-15T11:30:05Z"}}),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": p.name, "namespace": ns, "creationTimestamp": "2025-08-15T11:30:00Z",
            "labels": {"app.kubernetes.io/name": deployment, "pod-template-hash": p.hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{deployment}-{}", p.hash),
                                 "uid": format!("rs-{}", p.hash), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"containers": [{"name": "podinfod", "image": IMAGE}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if p.ready { "True" } else { "False" }, "lastTransitionTime": "2025-08-15T11:30:09Z"}],
            "containerStatuses": [{
                "name": "podinfod", "image": IMAGE, "imageID": p.image_id,
                "ready": p.ready, "restartCount": p.restarts, "started": p.ready, "state": state
            }]
        }
    })
}

/// The `podinfo` Deployment of the inventory: a rollout from hash `old`
/// (revision 1) to `new` (revision 2), one new pod crash-looping, and a
/// stray pod matching the selector but owned by someone else.
fn seed_podinfo(fake: &FakeKube, ns: &str, labels: Value) {
    fake.insert(deployment(ns, "podinfo", labels));
    fake.insert(replicaset(ns, "podinfo", "old", 1));
    fake.insert(replicaset(ns, "podinfo", "new", 2));
    let pods = [
        PodSpec {
            name: "podinfo-new-a",
            hash: "new",
            image_id: &format!("docker-pullable://ghcr.io/stefanprodan/podinfo@{NEW_DIGEST}"),
            ready: true,
            waiting: None,
            restarts: 0,
        },
        PodSpec {
            name: "podinfo-new-b",
            hash: "new",
            image_id: NEW_DIGEST,
            ready: false,
            waiting: Some("CrashLoopBackOff"),
            restarts: 5,
        },
        PodSpec {
            name: "podinfo-old-a",
            hash: "old",
            image_id: &format!("docker.io/stefanprodan/podinfo@{OLD_DIGEST}"),
            ready: true,
            waiting: None,
            restarts: 1,
        },
    ];
    for p in pods {
        fake.insert(pod(ns, "podinfo", p));
    }
    let mut stray = pod(
        ns,
        "podinfo",
        PodSpec {
            name: "stray",
            hash: "x",
            image_id: "",
            ready: true,
            waiting: None,
            restarts: 0,
        },
    );
    stray["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    fake.insert(stray);
}

fn podinfo_ks() -> AppRef {
    AppRef::Flux {
        app: "podinfo".into(),
        kind: FluxKind::Kustomization,
        name: "podinfo".into(),
        namespace: "default".into(),
    }
}

#[tokio::test]
async fn inventory_deployment_pods_with_live_digests() {
    let fake = FakeKube::with_fixtures(&["kustomization-healthcheck-failed.yaml"]).await;
    seed_podinfo(&fake, "default", json!({}));
    let o = fake
        .flux(test_options())
        .await
        .observe(&podinfo_ks(), Detail::WithPods)
        .await
        .unwrap();

    let names: Vec<(&str, bool)> = o
        .pods
        .iter()
        .map(|p| (p.name.as_str(), p.current))
        .collect();
    assert_eq!(
        names,
        [
            ("podinfo-new-a", true),
            ("podinfo-new-b", true),
            ("podinfo-old-a", false)
        ]
    );

    let a = &o.pods[0];
    assert!(a.ready);
    assert_eq!(a.ready_since, Some("2025-08-15T11:30:09Z".parse().unwrap()));
    assert_eq!(a.created_at, Some("2025-08-15T11:30:00Z".parse().unwrap()));
    assert_eq!(a.namespace, "default");
    assert_eq!(a.images[0].container, "podinfod");
    assert_eq!(a.images[0].image, IMAGE);
    assert_eq!(
        a.images[0]
            .digest
            .as_ref()
            .map(|d| d.to_string())
            .as_deref(),
        Some(NEW_DIGEST)
    );

    let b = &o.pods[1];
    assert!(!b.ready);
    assert_eq!(b.restart_count, 5);
    assert_eq!(
        (
            b.waiting[0].container.as_str(),
            b.waiting[0].reason.as_str()
        ),
        ("podinfod", "CrashLoopBackOff")
    );
    assert_eq!(
        b.images[0].digest, None,
        "a bare sha256: image id is not a repo digest"
    );

    assert_eq!(
        o.pods[2].images[0]
            .digest
            .as_ref()
            .map(|d| d.to_string())
            .as_deref(),
        Some(OLD_DIGEST)
    );
    // Only current pods count for live digests.
    let live: Vec<(String, String)> = o
        .live_digests()
        .into_iter()
        .map(|(i, d)| (i, d.to_string()))
        .collect();
    assert_eq!(live, [(IMAGE.to_owned(), NEW_DIGEST.to_owned())]);

    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/default/kustomizations/podinfo?",
            "GET /apis/apps/v1/namespaces/default/deployments/podinfo?",
            "GET /apis/apps/v1/namespaces/default/replicasets?&labelSelector=app.kubernetes.io%2Fname%3Dpodinfo",
            "GET /api/v1/namespaces/default/pods?&labelSelector=app.kubernetes.io%2Fname%3Dpodinfo",
        ]
    );
}

#[tokio::test]
async fn pods_call_and_deleted_workloads() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    seed_podinfo(&fake, "default", json!({}));
    let flux = fake.flux(test_options()).await;
    assert_eq!(flux.pods(&podinfo_ks()).await.unwrap().len(), 3);

    // The inventory still lists a Deployment that is gone: no pods, no error.
    fake.remove("deployments", "default", "podinfo");
    assert!(flux.pods(&podinfo_ks()).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_replicasets_every_pod_counts_as_current() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    seed_podinfo(&fake, "default", json!({}));
    fake.remove("replicasets", "default", "podinfo-old");
    fake.remove("replicasets", "default", "podinfo-new");
    // No ReplicaSet is known, so no pod's owner can be checked either: the
    // selector alone decides (stray included), all current.
    let pods = fake
        .flux(test_options())
        .await
        .pods(&podinfo_ks())
        .await
        .unwrap();
    assert_eq!(pods.len(), 4);
    assert!(pods.iter().all(|p| p.current));
}

#[tokio::test]
async fn helmrelease_pods_by_helm_controller_labels() {
    let fake = FakeKube::with_fixtures(&["helmrelease-ready.yaml"]).await;
    seed_podinfo(
        &fake,
        "podinfo",
        json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"}),
    );
    let app = AppRef::Flux {
        app: "chart".into(),
        kind: FluxKind::HelmRelease,
        name: "podinfo".into(),
        namespace: "podinfo".into(),
    };
    let pods = fake.flux(test_options()).await.pods(&app).await.unwrap();
    assert_eq!(pods.iter().filter(|p| p.current).count(), 2);
    assert_eq!(pods.len(), 3);
    let first_list = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/deployments"))
        .unwrap();
    assert_eq!(
        first_list.query,
        "&labelSelector=helm.toolkit.fluxcd.io%2Fname%3Dpodinfo%2Chelm.toolkit.fluxcd.io%2Fnamespace%3Dpodinfo"
    );
}

#[tokio::test]
async fn helmrelease_pods_by_instance_label_when_not_labelled_by_flux() {
    let fake = FakeKube::with_fixtures(&["helmrelease-ready.yaml"]).await;
    seed_podinfo(
        &fake,
        "podinfo",
        json!({"app.kubernetes.io/instance": "podinfo"}),
    );
    let app = AppRef::Flux {
        app: "chart".into(),
        kind: FluxKind::HelmRelease,
        name: "podinfo".into(),
        namespace: "podinfo".into(),
    };
    let pods = fake.flux(test_options()).await.pods(&app).await.unwrap();
    assert_eq!(pods.len(), 3);
    assert_eq!(fake.count("GET", "/namespaces/podinfo/deployments"), 2);
}

#[tokio::test]
async fn statefulset_pods_by_update_revision() {
    let fake = FakeKube::with_fixtures(&["kustomization-ready.yaml"]).await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        o["status"]["inventory"]["entries"] =
            json!([{"id": "default_cache_apps_StatefulSet", "v": "v1"}]);
    });
    fake.insert(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "cache", "namespace": "default", "uid": "sts-uid"},
        "spec": {"selector": {"matchLabels": {"app": "cache"}}, "serviceName": "cache",
                 "template": {"metadata": {"labels": {"app": "cache"}}, "spec": {"containers": [{"name": "redis", "image": "redis:7"}]}}},
        "status": {"replicas": 2, "currentRevision": "cache-1", "updateRevision": "cache-2"}
    }));
    for (name, revision) in [("cache-0", "cache-1"), ("cache-1", "cache-2")] {
        fake.insert(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": "cache", "controller-revision-hash": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "cache", "uid": "sts-uid", "controller": true}]},
            "spec": {"containers": [{"name": "redis", "image": "redis:7"}]},
            "status": {"containerStatuses": [{"name": "redis", "image": "docker.io/library/redis:7",
                "imageID": format!("docker.io/library/redis@{OLD_DIGEST}"), "ready": true, "restartCount": 0}]}
        }));
    }
    let pods = fake
        .flux(test_options())
        .await
        .pods(&podinfo_ks())
        .await
        .unwrap();
    let current: Vec<(&str, bool)> = pods.iter().map(|p| (p.name.as_str(), p.current)).collect();
    assert_eq!(current, [("cache-0", false), ("cache-1", true)]);
    assert_eq!(
        pods[1].images[0].image, "redis:7",
        "the pod spec's image string, not the runtime's"
    );
}
