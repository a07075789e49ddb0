//! `FakeKube`: a strict fake of the Kubernetes API server for the Flux
//! adapter. axum on a free 127.0.0.1 port, serving from an in-memory model:
//! Flux Kustomizations, HelmReleases and sources, Deployments, ReplicaSets,
//! StatefulSets, DaemonSets and Pods, seeded from the fixtures in
//! `tests/fixtures/flux/`.
//!
//! Strict like the real server: every request needs `Authorization: Bearer
//! <TOKEN>`; unknown paths, versions and query parameters, other methods and
//! patch content types are refused with `metav1.Status` errors (401, 404,
//! 400, 405, 415, 422). PATCH is merge-patch of `metadata.annotations` only
//! (all revertbot may change). It records every request, can play the Flux
//! controller echoing `reconcile.fluxcd.io/requestedAt` into
//! `status.lastHandledReconcileAt` (at once, after a delay, never, or when
//! the test ends the reconcile, as kustomize-controller does after its
//! health checks) and injects faults (status codes, delays, malformed
//! bodies). Status transitions of a Kustomization follow kustomize-controller
//! through [`super::flux_objects::KsState`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use revertbot::controller::flux::{Flux, FluxOptions};
use serde_json::{Value, json};

mod model;

pub use model::{fixture, fixture_objects, matches_selector};

/// The bearer token the fake accepts.
pub const TOKEN: &str = "fake-kube-token-9f3a";

/// `(group, version, plural, kind, flux)`: what the fake serves.
const RESOURCES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        "Kustomization",
        true,
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "helmreleases",
        "HelmRelease",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "gitrepositories",
        "GitRepository",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "ocirepositories",
        "OCIRepository",
        true,
    ),
    ("source.toolkit.fluxcd.io", "v1", "buckets", "Bucket", true),
    ("apps", "v1", "deployments", "Deployment", false),
    ("apps", "v1", "replicasets", "ReplicaSet", false),
    ("apps", "v1", "statefulsets", "StatefulSet", false),
    ("apps", "v1", "daemonsets", "DaemonSet", false),
    ("", "v1", "pods", "Pod", false),
];

/// Small timeouts and fast retries for tests: 3 attempts of at most
/// `request_timeout` each.
pub fn test_options() -> FluxOptions {
    FluxOptions {
        request_timeout: Duration::from_millis(500),
        attempts: 3,
        retry_min_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        refresh_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        reconcile_source: true,
    }
}

/// How the simulated Flux controller answers a reconcile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Immediate,
    After(Duration),
    Never,
}

/// A fault to inject before the request is handled.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status code and a `metav1.Status` body.
    Status(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Answer 200 with this body as `application/json`.
    Body(String),
}

/// One served request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
    pub status: u16,
}

type Hook = Arc<dyn Fn(&mut Value) + Send + Sync>;

struct FaultRule {
    path_contains: String,
    remaining: Option<usize>,
    fault: Fault,
}

#[derive(Default)]
struct State {
    /// `(plural, namespace, name)` → object.
    objects: BTreeMap<(String, String, String), Value>,
    requests: Vec<Recorded>,
    echo: Option<Echo>,
    faults: Vec<FaultRule>,
    forbidden: Vec<String>,
    on_reconcile: Option<Hook>,
    /// Objects the next handled reconcile removes and adds: the workload's
    /// rollout after an apply ([`FakeKube::roll_out_on_reconcile`]).
    rollout: Option<Rollout>,
    /// Plurals whose controller echoes a reconcile request only when the
    /// reconcile ends ([`FakeKube::echo_when_finished`]).
    echo_at_end: Vec<String>,
    /// Requested tokens not echoed yet, by object.
    pending: BTreeMap<(String, String, String), String>,
    resource_version: u64,
}

/// Keys to remove and objects to add.
type Rollout = (Vec<(String, String, String)>, Vec<Value>);

pub struct FakeKube {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeKube {
    /// Starts an empty fake that echoes reconcile requests at once.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            echo: Some(Echo::Immediate),
            resource_version: 1000,
            ..State::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// Starts a fake seeded with the objects of these fixture files.
    pub async fn with_fixtures(files: &[&str]) -> Self {
        let fake = Self::start().await;
        for file in files {
            for object in fixture_objects(file) {
                fake.insert(object);
            }
        }
        fake
    }

    /// A Flux client for the fake (bearer token, the rustls provider
    /// installed as `main` does).
    pub async fn flux(&self, options: FluxOptions) -> Flux {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Flux::from_url(&self.url(), Some(TOKEN.into()), options)
            .await
            .unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds or replaces an object; its kind must be one the fake serves.
    pub fn insert(&self, object: Value) {
        let key = key_of(&object);
        lock(&self.state).objects.insert(key, object);
    }

    /// With `wait: false` kustomize-controller applies and is Ready at once
    /// (fluxcd/kustomize-controller `docs/spec/v1/kustomizations.md`, "Wait"
    /// and "Health checks": without them the Ready condition does not wait
    /// for the workloads); the Deployment controller then replaces the pods
    /// (Kubernetes docs, "Deployments" → "Rolling Update Deployment"). The
    /// next reconcile
    /// the fake handles removes the pods in `remove` (plural, namespace,
    /// name) and adds `add`, as that rollout would.
    pub fn roll_out_on_reconcile(&self, remove: Vec<(String, String, String)>, add: Vec<Value>) {
        for object in &add {
            key_of(object);
        }
        lock(&self.state).rollout = Some((remove, add));
    }

    /// Changes an object in place (a controller updating status).
    pub fn update(&self, plural: &str, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut state = lock(&self.state);
        let key = (plural.to_owned(), ns.to_owned(), name.to_owned());
        f(state
            .objects
            .get_mut(&key)
            .unwrap_or_else(|| panic!("no {key:?} in the fake")));
    }

    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Value {
        let key = (plural.to_owned(), ns.to_owned(), name.to_owned());
        lock(&self.state).objects[&key].clone()
    }

    pub fn remove(&self, plural: &str, ns: &str, name: &str) {
        lock(&self.state)
            .objects
            .remove(&(plural.to_owned(), ns.to_owned(), name.to_owned()));
    }

    pub fn set_echo(&self, echo: Echo) {
        lock(&self.state).echo = Some(echo);
    }

    /// Runs on the object when the simulated controller handles a reconcile
    /// request (after the echo is written): e.g. apply a new revision.
    pub fn on_reconcile(&self, hook: impl Fn(&mut Value) + Send + Sync + 'static) {
        lock(&self.state).on_reconcile = Some(Arc::new(hook));
    }

    /// The simulated controller of this kind (plural) writes
    /// `status.lastHandledReconcileAt` only when the reconcile ends, as
    /// kustomize-controller does: its `finalizeStatus` (L1298-1300 of
    /// `internal/controller/kustomization_controller.go` at 186fb3b29138)
    /// runs after the health checks, while the progress patches before it
    /// (L326, L386, L467, L1053) carry no echo. The reconcile hook still
    /// runs at once (the progress); [`FakeKube::finish_reconcile`] ends it.
    pub fn echo_when_finished(&self, plural: &str) {
        lock(&self.state).echo_at_end.push(plural.to_owned());
    }

    /// Ends the reconcile of an object ([`FakeKube::echo_when_finished`]):
    /// applies `f` (the final status) and echoes the pending request, if
    /// there is one.
    pub fn finish_reconcile(&self, plural: &str, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut state = lock(&self.state);
        let key = (plural.to_owned(), ns.to_owned(), name.to_owned());
        let token = state.pending.remove(&key);
        let object = state
            .objects
            .get_mut(&key)
            .unwrap_or_else(|| panic!("no {key:?} in the fake"));
        f(object);
        if let Some(token) = token {
            object["status"]["lastHandledReconcileAt"] = json!(token);
        }
    }

    /// Injects `fault` into requests whose path contains `path_contains`
    /// (`""`: all), the next `times` of them (`None`: all).
    pub fn inject(&self, path_contains: &str, times: Option<usize>, fault: Fault) {
        lock(&self.state).faults.push(FaultRule {
            path_contains: path_contains.to_owned(),
            remaining: times,
            fault,
        });
    }

    /// RBAC: refuse every request for this resource (plural) with 403.
    pub fn forbid(&self, plural: &str) {
        lock(&self.state).forbidden.push(plural.to_owned());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// How many requests had a path containing `part` (and this method).
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    }

    /// Writes a kubeconfig pointing at the fake with the token and returns
    /// its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: revertbot\n    namespace: flux-system\ncurrent-context: fake\nusers:\n- name: revertbot\n  user:\n    token: {TOKEN}\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A `metav1.Status` failure response.
fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    let code = StatusCode::from_u16(code).unwrap();
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    AxumState(state): AxumState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut s = lock(&state);
        s.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
            status: 0,
        });
        s.requests.len() - 1
    };
    let response = respond(&state, &method, &uri, &headers, &body).await;
    lock(&state).requests[index].status = response.status().as_u16();
    response
}

async fn respond(
    state: &Arc<Mutex<State>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let fault = {
        let mut s = lock(state);
        let path = uri.path();
        let rule = s
            .faults
            .iter_mut()
            .find(|r| path.contains(&r.path_contains) && r.remaining != Some(0));
        rule.map(|r| {
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            r.fault.clone()
        })
    };
    match fault {
        Some(Fault::Status(code)) => {
            return status(
                code,
                "InternalError",
                "injected failure from the fake",
                None,
            );
        }
        Some(Fault::Body(text)) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                text,
            )
                .into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    let bearer = format!("Bearer {TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(bearer.as_str())
    {
        return status(401, "Unauthorized", "Unauthorized", None);
    }
    let Some(route) = model::route(uri.path()) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    };
    let (group, _, plural, kind, flux) = *route.resource;
    if lock(state).forbidden.iter().any(|p| p == plural) {
        let verb = match (method.as_str(), &route.name) {
            ("PATCH", _) => "patch",
            (_, Some(_)) => "get",
            _ => "list",
        };
        let message = format!(
            "{plural}.{group} is forbidden: User \"system:serviceaccount:flux-system:revertbot\" cannot {verb} resource \"{plural}\" in API group \"{group}\" in the namespace \"{}\"",
            route.namespace
        );
        return status(403, "Forbidden", &message, None);
    }
    let query: Vec<(String, String)> = model::form_urlencoded(uri.query().unwrap_or(""));
    let allowed: &[&str] = match (method.as_str(), &route.name) {
        ("GET", None) => &[
            "labelSelector",
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
        ],
        ("GET", Some(_)) => &["resourceVersion"],
        ("PATCH", Some(_)) => &["fieldManager", "fieldValidation"],
        _ => {
            let message = format!(
                "the server does not allow this method on the requested resource ({method} {})",
                uri.path()
            );
            return status(405, "MethodNotAllowed", &message, None);
        }
    };
    if let Some((key, _)) = query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return status(
            400,
            "BadRequest",
            &format!("the fake does not support the query parameter {key:?}"),
            None,
        );
    }
    let not_found = |name: &str| {
        let resource = if group.is_empty() {
            plural.to_owned()
        } else {
            format!("{plural}.{group}")
        };
        let details = json!({"name": name, "group": group, "kind": plural});
        status(
            404,
            "NotFound",
            &format!("{resource} \"{name}\" not found"),
            Some(details),
        )
    };
    let api_version = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/{}", route.resource.1)
    };

    match (method.as_str(), route.name) {
        ("GET", None) => {
            let selector = query
                .iter()
                .find(|(k, _)| k == "labelSelector")
                .map(|(_, v)| v.clone());
            let s = lock(state);
            let mut items = Vec::new();
            for ((p, ns, _), object) in &s.objects {
                if p != plural || *ns != route.namespace {
                    continue;
                }
                let labels = object["metadata"]["labels"].clone();
                match selector
                    .as_deref()
                    .map(|sel| matches_selector(sel, &labels))
                {
                    Some(Err(e)) => {
                        return status(
                            400,
                            "BadRequest",
                            &format!("unable to parse requirement: {e}"),
                            None,
                        );
                    }
                    Some(Ok(false)) => continue,
                    _ => {}
                }
                let mut item = object.clone();
                if flux {
                    item["apiVersion"] = json!(api_version);
                } else if let Some(map) = item.as_object_mut() {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                items.push(item);
            }
            ok(json!({
                "apiVersion": api_version,
                "kind": format!("{kind}List"),
                "metadata": {"resourceVersion": s.resource_version.to_string(), "continue": ""},
                "items": items,
            }))
        }
        ("GET", Some(name)) => {
            let key = (plural.to_owned(), route.namespace.clone(), name.clone());
            match lock(state).objects.get(&key) {
                Some(object) => {
                    let mut object = object.clone();
                    object["apiVersion"] = json!(api_version);
                    object["kind"] = json!(kind);
                    ok(object)
                }
                None => not_found(&name),
            }
        }
        (_, Some(name)) => {
            if !flux {
                return status(
                    405,
                    "MethodNotAllowed",
                    "the fake only patches Flux objects",
                    None,
                );
            }
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if content_type != Some("application/merge-patch+json") {
                let message = format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got {content_type:?}; the fake takes merge patches only)"
                );
                return status(415, "UnsupportedMediaType", &message, None);
            }
            let key = (plural.to_owned(), route.namespace.clone(), name.clone());
            if !lock(state).objects.contains_key(&key) {
                return not_found(&name);
            }
            let patch: Value = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return status(
                        400,
                        "BadRequest",
                        &format!("error decoding patch: {e}"),
                        None,
                    );
                }
            };
            let annotations = match model::annotations_only(&patch) {
                Ok(a) => a,
                Err(message) => return status(422, "Invalid", &message, None),
            };
            let (object, requested) = {
                let mut s = lock(state);
                s.resource_version += 1;
                let rv = s.resource_version.to_string();
                let Some(object) = s.objects.get_mut(&key) else {
                    return not_found(&name);
                };
                let requested = model::merge_annotations(object, annotations);
                object["metadata"]["resourceVersion"] = json!(rv);
                let mut out = object.clone();
                out["apiVersion"] = json!(api_version);
                (out, requested)
            };
            if let Some(token) = requested {
                echo(state.clone(), key, token);
            }
            ok(object)
        }
        _ => status(405, "MethodNotAllowed", "method not allowed", None),
    }
}

/// Plays the Flux controller: copies the requested token to
/// `status.lastHandledReconcileAt` (or parks it until the reconcile ends,
/// see [`FakeKube::echo_when_finished`]) and runs the reconcile hook.
/// The (plural, namespace, name) of an object of a kind the fake serves.
fn key_of(object: &Value) -> (String, String, String) {
    let kind = object["kind"].as_str().unwrap_or_default();
    let (_, _, plural, _, _) = RESOURCES
        .iter()
        .find(|r| r.3 == kind)
        .unwrap_or_else(|| panic!("the fake does not serve kind {kind:?}"));
    let ns = object["metadata"]["namespace"].as_str().unwrap().to_owned();
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    ((*plural).to_owned(), ns, name)
}

fn echo(state: Arc<Mutex<State>>, key: (String, String, String), token: String) {
    let apply = move |state: &Mutex<State>| {
        let mut s = lock(state);
        let hook = s.on_reconcile.clone();
        let at_end = s.echo_at_end.contains(&key.0);
        if let Some(object) = s.objects.get_mut(&key) {
            if !at_end {
                object["status"]["lastHandledReconcileAt"] = json!(token);
            }
            if let Some(hook) = hook {
                hook(object);
            }
        }
        if let Some((remove, add)) = s.rollout.take() {
            for key in remove {
                s.objects.remove(&key);
            }
            for object in add {
                s.objects.insert(key_of(&object), object);
            }
        }
        if at_end {
            s.pending.insert(key, token);
        }
    };
    let echo = lock(&state).echo.unwrap_or(Echo::Never);
    match echo {
        Echo::Immediate => apply(&state),
        Echo::After(delay) => {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                apply(&state);
            });
        }
        Echo::Never => {}
    }
}
