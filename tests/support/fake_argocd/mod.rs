//! `FakeArgoCd`: a strict, stateful, in-memory Argo CD API server on
//! 127.0.0.1, seeded from the real API fixtures in `tests/fixtures/argocd/`.
//!
//! Strict like `argocd-server`: only the routes and methods revertbot may use
//! exist (anything else is 404/405 in grpc-gateway's error shape); every call
//! needs `Authorization: Bearer <TOKEN>` (401 `no session information`
//! otherwise); a missing app is 403 `permission denied` unless `?project=`
//! names its project (then 404); the list honours only the `fields` keys the
//! real server honours. Beyond the real server it also *records a
//! violation* for anything a correct client must not do (unknown or repeated
//! query parameters, non-honoured `fields` keys, unknown sync body keys,
//! unauthenticated calls); [`FakeArgoCd::finish`] (and `Drop`) fail the test
//! if any violation was not taken with [`FakeArgoCd::take_violations`], or if
//! an expectation registered with [`FakeArgoCd::expect`] does not hold.
//!
//! Routing and the endpoint handlers are in `serve.rs`.
//!
//! Test controls: edit app state, trees and pods; queue faults per endpoint
//! (status codes, delays, malformed bodies); make refresh block; count calls.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use revertbot::controller::AppRef;
use revertbot::controller::argocd::{ArgoCd, ArgoCdOptions};
use secrecy::SecretString;
use serde_json::{Value, json};

mod serve;
use serve::handle;

pub const TOKEN: &str = "fake-argocd-token-3f9c2e71";
/// The namespace `argocd-server` runs in (velero-test lives there).
pub const DEFAULT_NS: &str = "argo-cd";

/// `fields` keys argocd-server honours on the list (after `items.`).
pub(crate) const HONOURED_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.annotations",
    "metadata.labels",
    "metadata.creationTimestamp",
    "metadata.deletionTimestamp",
    "spec",
    "spec.destination",
    "spec.project",
    "spec.source",
    "spec.sources",
    "spec.syncPolicy",
    "status.summary",
    "status.sync.status",
    "status.sync.revision",
    "status.health",
    "status.resources",
    "status.operationState.phase",
    "status.operationState.startedAt",
    "status.operationState.finishedAt",
    "operation.sync",
];

/// Installs the process-wide rustls crypto provider (two are linked in).
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Client options with short timeouts and quick, bounded retries.
pub fn fast() -> ArgoCdOptions {
    ArgoCdOptions {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(800),
        refresh_timeout: Duration::from_secs(5),
        max_retries: 2,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

/// The real Argo CD client pointed at `fake`.
pub fn client(fake: &FakeArgoCd) -> ArgoCd {
    init();
    ArgoCd::new(&fake.url, SecretString::from(TOKEN), fast()).unwrap()
}

/// The app of the `application.json` fixture.
pub fn velero() -> AppRef {
    AppRef::ArgoCd {
        app: "velero".into(),
        name: "velero-test".into(),
        namespace: None,
    }
}

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/argocd")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A fixture Pod (the `manifest` string decoded), renamed to `ns/name`.
pub fn fixture_pod(file: &str, namespace: &str, name: &str) -> Value {
    let wrapped = fixture(file);
    let mut pod: Value = serde_json::from_str(wrapped["manifest"].as_str().unwrap()).unwrap();
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["namespace"] = json!(namespace);
    pod
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    List,
    Get,
    Refresh,
    Tree,
    Resource,
    Sync,
    Terminate,
    Unknown,
}

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with an Argo error body (gRPC code Internal for
    /// 5xx, Unknown otherwise).
    Status(u16),
    /// Answer this status with this raw body (a proxy's HTML page...).
    Raw(u16, String),
    /// Wait, then answer normally.
    Delay(Duration),
    /// 200 with a truncated JSON body.
    Malformed,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub endpoint: Endpoint,
    pub body: Option<Value>,
    pub status: u16,
}

pub(crate) type Hook = Box<dyn FnOnce(&mut Value) + Send>;
type Check = Box<dyn Fn(&State) -> bool + Send>;

#[derive(Default)]
pub struct State {
    /// Applications as the API returns them, keyed by (namespace, name).
    pub apps: Vec<Value>,
    /// Resource trees by (namespace, app name).
    pub trees: HashMap<(String, String), Value>,
    /// Live Pods by (namespace, pod name).
    pub pods: HashMap<(String, String), Value>,
    pub calls: Vec<Call>,
    pub(crate) violations: Vec<String>,
    pub(crate) faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub(crate) refresh_delay: Duration,
    pub(crate) on_refresh: Vec<(String, Hook)>,
    pub(crate) expectations: Vec<(String, Check)>,
}

impl State {
    pub fn app(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.apps.iter().find(|a| is(a, namespace, name))
    }
    pub(crate) fn app_mut(&mut self, namespace: &str, name: &str) -> Option<&mut Value> {
        self.apps.iter_mut().find(|a| is(a, namespace, name))
    }
}

fn is(app: &Value, namespace: &str, name: &str) -> bool {
    app["metadata"]["name"] == name && app["metadata"]["namespace"] == namespace
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub struct FakeArgoCd {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
    finished: bool,
}

impl FakeArgoCd {
    /// Seeded with velero-test (`argo-cd`, the default namespace; tree
    /// `resource-tree.json`, its pod the containerd-imageID fixture pod) and
    /// the multi-source prometheus app (namespace `argocd`).
    pub async fn start() -> FakeArgoCd {
        let mut state = State::default();
        state.apps.push(fixture("application.json"));
        state.apps.push(fixture("application-multisource.json"));
        state.trees.insert(
            (DEFAULT_NS.into(), "velero-test".into()),
            fixture("resource-tree.json"),
        );
        state.pods.insert(
            ("test-lla".into(), "test-lla-6d4cf56db6-9xk2p".into()),
            fixture_pod(
                "resource-pod-containerd-imageid.json",
                "test-lla",
                "test-lla-6d4cf56db6-9xk2p",
            ),
        );
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(state, method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeArgoCd {
            url: format!("http://{addr}"),
            state,
            task,
            finished: false,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Edits an application in place.
    pub fn update(&self, namespace: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.state();
        let app = st
            .app_mut(namespace, name)
            .unwrap_or_else(|| panic!("fake has no app {namespace}/{name}"));
        f(app);
    }

    pub fn app(&self, namespace: &str, name: &str) -> Value {
        self.state().app(namespace, name).cloned().unwrap()
    }

    pub fn add_app(&self, app: Value) {
        self.state().apps.push(app);
    }

    pub fn set_tree(&self, namespace: &str, app: &str, tree: Value) {
        self.state()
            .trees
            .insert((namespace.into(), app.into()), tree);
    }

    pub fn set_pod(&self, pod: Value) {
        let key = (
            pod["metadata"]["namespace"].as_str().unwrap().to_owned(),
            pod["metadata"]["name"].as_str().unwrap().to_owned(),
        );
        self.state().pods.insert(key, pod);
    }

    pub fn remove_pod(&self, namespace: &str, name: &str) {
        self.state().pods.remove(&(namespace.into(), name.into()));
    }

    /// Queues a fault for the next call(s) to `endpoint` (one per call).
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.state()
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// `?refresh=` blocks this long, then runs the queued refresh hooks.
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.state().refresh_delay = delay;
    }

    /// What the controller finds when the app `name` is next refreshed.
    pub fn on_refresh(&self, name: &str, f: impl FnOnce(&mut Value) + Send + 'static) {
        self.state().on_refresh.push((name.to_owned(), Box::new(f)));
    }

    /// Checked at [`FakeArgoCd::finish`].
    pub fn expect(&self, what: &str, check: impl Fn(&State) -> bool + Send + 'static) {
        self.state()
            .expectations
            .push((what.to_owned(), Box::new(check)));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }

    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state().violations)
    }

    /// Fails the test on unacknowledged violations or unmet expectations.
    pub fn finish(mut self) {
        self.finished = true;
        self.check();
    }

    fn check(&self) {
        let st = self.state();
        let unmet: Vec<&str> = st
            .expectations
            .iter()
            .filter(|(_, c)| !c(&st))
            .map(|(w, _)| w.as_str())
            .collect();
        assert!(
            st.violations.is_empty() && unmet.is_empty(),
            "fake Argo CD: unexpected calls {:#?}; expectations not met {:#?}",
            st.violations,
            unmet
        );
    }
}

impl Drop for FakeArgoCd {
    fn drop(&mut self) {
        self.task.abort();
        if !self.finished && !std::thread::panicking() {
            self.check();
        }
    }
}

// ---------------------------------------------------------------- helpers

/// Sets health (and message) of an app.
pub fn set_health(app: &mut Value, status: &str, message: Option<&str>) {
    app["status"]["health"] = match message {
        Some(m) => json!({"status": status, "message": m}),
        None => json!({"status": status}),
    };
}

/// A completed sync to `revision` (what the controller does after a
/// successful sync): operationState Succeeded with syncResult, a new history
/// entry, sync Synced at that revision.
pub fn deploy(app: &mut Value, revision: &str) {
    let ts = now();
    let st = &mut app["status"];
    let source = app_source(st);
    let next_id = st["history"]
        .as_array()
        .and_then(|h| h.last())
        .and_then(|h| h["id"].as_i64())
        .unwrap_or(0)
        + 1;
    if !st["history"].is_array() {
        st["history"] = json!([]);
    }
    st["history"].as_array_mut().unwrap().push(json!({
        "deployStartedAt": ts, "deployedAt": ts, "id": next_id,
        "revision": revision, "source": source,
        "initiatedBy": {"username": "revertbot"},
    }));
    st["operationState"] = json!({
        "operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": true}},
        "phase": "Succeeded",
        "message": "successfully synced (all tasks run)",
        "startedAt": ts, "finishedAt": ts,
        "syncResult": {"revision": revision, "source": source, "resources": []},
    });
    st["sync"]["revision"] = json!(revision);
    st["sync"]["status"] = json!("Synced");
    st["reconciledAt"] = json!(ts);
}

fn app_source(status: &Value) -> Value {
    status["sync"]["comparedTo"]["source"].clone()
}
