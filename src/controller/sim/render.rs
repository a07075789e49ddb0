//! The simulated controller's state as Argo CD JSON, in the shapes of the
//! API fixtures: Application, resource tree, and live Pods.

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::SimTiming;
use super::model::{AppModel, Initiator, Live, PodPhase, health, pod_phase};
use crate::domain::Digest;
use crate::domain::health::{Health, OperationPhase};

/// What rendering needs besides the app.
pub(crate) struct Ctx<'a> {
    pub now: Timestamp,
    pub timing: &'a SimTiming,
    pub replicas: u32,
    pub bad: &'a HashSet<Digest>,
    pub repo_url: &'a str,
    pub branch: &'a str,
    pub controller_namespace: &'a str,
}

pub(crate) fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn health_name(h: Health) -> &'static str {
    match h {
        Health::Healthy => "Healthy",
        Health::Suspended => "Suspended",
        Health::Progressing => "Progressing",
        Health::Missing => "Missing",
        Health::Degraded => "Degraded",
        Health::Unknown => "Unknown",
    }
}

fn phase_name(p: OperationPhase) -> &'static str {
    match p {
        OperationPhase::Running => "Running",
        OperationPhase::Terminating => "Terminating",
        OperationPhase::Succeeded => "Succeeded",
        OperationPhase::Failed => "Failed",
        OperationPhase::Error => "Error",
    }
}

fn initiated_by(i: &Initiator) -> Value {
    match i {
        Initiator::Automated => json!({"automated": true}),
        Initiator::User(u) => json!({"username": u}),
    }
}

fn uid(parts: &[&str]) -> String {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    let a = h.finish();
    (a, "salt").hash(&mut h);
    let b = h.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn health_json(h: Health, message: Option<String>) -> Value {
    match message {
        Some(m) => json!({"status": health_name(h), "message": m}),
        None => json!({"status": health_name(h)}),
    }
}

fn source(app: &AppModel, ctx: &Ctx) -> Value {
    let path = app.paths.first().map_or("", |p| {
        p.split(['*', '?', '[', '{'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
    });
    json!({"repoURL": ctx.repo_url, "path": path, "targetRevision": ctx.branch})
}

/// The Application object (as `GET /api/v1/applications/{name}` returns it).
pub(crate) fn application(app: &AppModel, ctx: &Ctx) -> Value {
    let (h, message) = health(app, ctx.now, ctx.timing, ctx.replicas, ctx.bad);
    let src = source(app, ctx);
    let destination =
        json!({"server": "https://kubernetes.default.svc", "namespace": app.destination});
    let target = app
        .desired
        .as_ref()
        .map(|d| d.revision.to_string())
        .unwrap_or_default();
    let mut status = json!({
        "health": health_json(h, message),
        "sync": {
            "status": if app.synced() { "Synced" } else { "OutOfSync" },
            "revision": target,
            "comparedTo": {"source": src, "destination": destination},
        },
        "reconciledAt": time(app.reconciled_at),
        "sourceType": "Directory",
        "controllerNamespace": ctx.controller_namespace,
        "summary": {"images": images(app)},
        "resources": [{
            "group": "apps", "version": "v1", "kind": "Deployment",
            "namespace": app.destination, "name": app.name,
            "status": if app.synced() { "Synced" } else { "OutOfSync" },
            "health": health_json(h, None),
        }],
    });
    let history: Vec<Value> = app
        .history
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "revision": r.revision.as_str(),
                "deployStartedAt": time(r.started_at), "deployedAt": time(r.deployed_at),
                "source": src, "initiatedBy": initiated_by(&r.initiated_by),
            })
        })
        .collect();
    if !history.is_empty() {
        status["history"] = json!(history);
    }
    let mut out = json!({
        "metadata": {
            "name": app.name, "namespace": app.namespace,
            "uid": uid(&[&app.namespace, &app.name]),
            "creationTimestamp": time(app.created_at),
            "resourceVersion": app.history.len().to_string(),
        },
        "spec": {
            "project": "default", "source": src, "destination": destination,
            "syncPolicy": {"automated": {"prune": false, "selfHeal": true}},
        },
        "status": status,
    });
    if let Some(op) = &app.operation {
        let revision = op.rendered.revision.as_str();
        let operation = json!({
            "sync": {"revision": revision},
            "initiatedBy": initiated_by(&op.initiated_by),
            "retry": {"limit": 5},
        });
        let mut state = json!({
            "operation": operation, "phase": phase_name(op.phase),
            "message": op.message, "startedAt": time(op.started_at),
        });
        if let Some(f) = op.finished_at {
            state["finishedAt"] = json!(time(f));
        }
        if op.phase == OperationPhase::Succeeded {
            state["syncResult"] = json!({
                "revision": revision, "source": src,
                "resources": [{
                    "group": "apps", "version": "v1", "kind": "Deployment",
                    "namespace": app.destination, "name": app.name, "status": "Synced",
                    "message": format!("deployment.apps/{} configured", app.name),
                    "hookPhase": "Running", "syncPhase": "Sync",
                }],
            });
        }
        if app.running() {
            if app.hold {
                let tries = super::model::since(ctx.now, op.started_at).as_millis()
                    / ctx.timing.sync_duration.as_millis().max(1);
                state["retryCount"] = json!(u64::try_from(tries).unwrap_or(u64::MAX));
                state["message"] = json!(format!(
                    "one or more objects failed to apply (retried {tries} times)."
                ));
            }
            out["operation"] = operation;
        }
        out["status"]["operationState"] = state;
    }
    out
}

fn images(app: &AppModel) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in app.live.iter().flat_map(|l| &l.containers) {
        let s = c.image.original().to_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// A ReplicaSet shown in the tree, with its pods.
struct Set<'a> {
    live: &'a Live,
    name: String,
    phase: PodPhase,
}

fn sets<'a>(app: &'a AppModel, ctx: &Ctx) -> Vec<Set<'a>> {
    let set = |live: &'a Live| Set {
        live,
        name: format!(
            "{}-{:010x}",
            app.name,
            live.rendered.content_hash & 0xff_ffff_ffff
        ),
        phase: pod_phase(live, ctx.now, ctx.timing, ctx.bad),
    };
    let mut out = Vec::new();
    if let Some(live) = &app.live {
        let current = set(live);
        let available = matches!(current.phase, PodPhase::Ready { .. });
        out.push(current);
        // The old ReplicaSet keeps its pods until the new one is available.
        if !available && let Some(prev) = &app.previous {
            out.push(set(prev));
        }
    }
    out
}

fn pod_names(set: &Set, replicas: u32) -> Vec<String> {
    (0..replicas)
        .map(|i| {
            let mut h = DefaultHasher::new();
            (&set.name, i).hash(&mut h);
            format!("{}-{:05x}", set.name, h.finish() & 0xf_ffff)
        })
        .collect()
}

/// `GET .../resource-tree`.
pub(crate) fn tree(app: &AppModel, ctx: &Ctx) -> Value {
    let (h, message) = health(app, ctx.now, ctx.timing, ctx.replicas, ctx.bad);
    let ns = &app.destination;
    let deploy_uid = uid(&[ns, &app.name, "Deployment"]);
    let mut nodes = Vec::new();
    let sets = sets(app, ctx);
    if let Some(first) = sets.first() {
        nodes.push(json!({
            "group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns,
            "name": app.name, "uid": deploy_uid,
            "info": [{"name": "Revision", "value": format!("Rev:{}", first.live.rs_revision)}],
            "health": health_json(h, message),
            "createdAt": time(app.created_at),
        }));
    }
    for set in &sets {
        let rs_uid = uid(&[ns, &set.name, "ReplicaSet"]);
        let ready = matches!(set.phase, PodPhase::Ready { .. });
        nodes.push(json!({
            "group": "apps", "version": "v1", "kind": "ReplicaSet", "namespace": ns,
            "name": set.name, "uid": rs_uid,
            "parentRefs": [{"group": "apps", "kind": "Deployment", "namespace": ns, "name": app.name, "uid": deploy_uid}],
            "info": [{"name": "Revision", "value": format!("Rev:{}", set.live.rs_revision)}],
            "health": if ready { json!({"status": "Healthy"}) } else { json!({"status": "Progressing", "message": format!("Waiting for rollout to finish: 0 out of {} new replicas are available...", ctx.replicas)}) },
            "createdAt": time(set.live.applied_at),
        }));
        for name in pod_names(set, ctx.replicas) {
            let (reason, pod_health) = match &set.phase {
                PodPhase::Ready { .. } => ("Running".to_owned(), json!({"status": "Healthy"})),
                PodPhase::Starting => (
                    "ContainerCreating".to_owned(),
                    json!({"status": "Progressing"}),
                ),
                PodPhase::CrashLoop { .. } => (
                    "CrashLoopBackOff".to_owned(),
                    json!({"status": "Degraded", "message": format!("back-off 5m0s restarting failed container pod={name}")}),
                ),
                PodPhase::PullError { reason } => {
                    ((*reason).to_owned(), json!({"status": "Degraded"}))
                }
            };
            let total = set.live.containers.len();
            let mut info = vec![
                json!({"name": "Status Reason", "value": reason}),
                json!({"name": "Node", "value": "sim-node-1"}),
                json!({"name": "Containers", "value": format!("{}/{total}", if ready { total } else { 0 })}),
            ];
            if let PodPhase::CrashLoop { restarts } = set.phase {
                info.push(json!({"name": "Restart Count", "value": restarts.to_string()}));
            }
            nodes.push(json!({
                "version": "v1", "kind": "Pod", "namespace": ns, "name": name,
                "uid": uid(&[ns, &name, "Pod"]),
                "parentRefs": [{"group": "apps", "kind": "ReplicaSet", "namespace": ns, "name": set.name, "uid": rs_uid}],
                "info": info,
                "images": set.live.containers.iter().map(|c| c.image.original()).collect::<Vec<_>>(),
                "health": pod_health,
                "createdAt": time(set.live.applied_at),
            }));
        }
    }
    json!({"nodes": nodes, "hosts": [{"name": "sim-node-1"}]})
}

/// The live Pod `ns/name`, if the tree has it.
pub(crate) fn pod(app: &AppModel, ctx: &Ctx, namespace: &str, name: &str) -> Option<Value> {
    if namespace != app.destination {
        return None;
    }
    let sets = sets(app, ctx);
    let set = sets
        .iter()
        .find(|s| pod_names(s, ctx.replicas).iter().any(|n| n == name))?;
    let created = time(set.live.applied_at);
    let (ready, since) = match set.phase {
        PodPhase::Ready { since } => (true, since),
        _ => (false, set.live.applied_at),
    };
    let statuses: Vec<Value> = set
        .live
        .containers
        .iter()
        .map(|c| {
            let image_id = c
                .digest
                .as_ref()
                .map(|d| format!("{}@{d}", c.image.normalized_name()))
                .unwrap_or_default();
            let (state, restarts) = match &set.phase {
                PodPhase::Ready { since } => (json!({"running": {"startedAt": time(*since)}}), 0),
                PodPhase::Starting => (json!({"waiting": {"reason": "ContainerCreating"}}), 0),
                PodPhase::CrashLoop { restarts } => (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container={} pod={name}", c.container)}}),
                    *restarts,
                ),
                PodPhase::PullError { reason } => (
                    json!({"waiting": {"reason": reason, "message": format!("Back-off pulling image \"{}\"", c.image.original())}}),
                    0,
                ),
            };
            json!({
                "name": c.container, "image": c.image.original(), "imageID": image_id,
                "ready": ready, "restartCount": restarts, "state": state,
            })
        })
        .collect();
    let condition = |kind: &str, ok: bool, at: Timestamp| json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": time(at)});
    Some(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid(&[namespace, name, "Pod"]),
            "creationTimestamp": created,
        },
        "spec": {
            "containers": set.live.containers.iter().map(|c| json!({"name": c.container, "image": c.image.original()})).collect::<Vec<_>>(),
            "restartPolicy": "Always", "nodeName": "sim-node-1",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                condition("Initialized", true, set.live.applied_at),
                condition("Ready", ready, since),
                condition("ContainersReady", ready, since),
                condition("PodScheduled", true, set.live.applied_at),
            ],
            "containerStatuses": statuses,
            "startTime": created,
            "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "qosClass": "BestEffort",
        },
    }))
}
