//! The simulated controller's HTTP face: the Argo CD API routes revertbot
//! uses, with Argo CD's authentication, error shapes (`{"error", "code",
//! "message"}` with gRPC codes), anti-enumeration 403 and list projection.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::Shared;
use super::model::{AppModel, Initiator};
use super::render::{self, Ctx};
use super::repo;
use crate::domain::{CommitSha, Digest};

type Answer = Result<Response, ApiError>;

/// An Argo CD error answer (grpc-gateway shape).
pub(crate) struct ApiError {
    status: u16,
    code: i64,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": self.message, "code": self.code, "message": self.message});
        (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// `fields` keys argocd-server honours on the list (after `items.`).
const HONOURED: &[&str] = &[
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

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/applications", get(list))
        .route("/api/v1/applications/{name}", get(get_app))
        .route("/api/v1/applications/{name}/sync", post(sync))
        .route("/api/v1/applications/{name}/operation", delete(terminate))
        .route("/api/v1/applications/{name}/resource-tree", get(tree))
        .route("/api/v1/applications/{name}/resource", get(resource))
        .fallback(|| async { error(404, 5, "Not Found") })
        .method_not_allowed_fallback(|| async { error(405, 12, "Method Not Allowed") })
        .with_state(shared)
}

fn error(status: u16, code: i64, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_owned(),
    }
}

fn ok(body: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        None => Err(error(401, 16, "no session information")),
        Some(t) if t == shared.token => Ok(()),
        Some(_) => Err(error(
            401,
            16,
            "invalid session: token signature is invalid",
        )),
    }
}

fn ctx<'a>(shared: &'a Shared, bad: &'a HashSet<Digest>) -> Ctx<'a> {
    Ctx {
        now: shared.clock.now(),
        timing: &shared.timing,
        replicas: shared.replicas,
        bad,
        repo_url: &shared.repo_url,
        branch: &shared.branch,
        controller_namespace: &shared.namespace,
    }
}

/// Runs `f` on the app named by the path and `appNamespace`, or answers as
/// Argo CD does for a missing app (403 without `?project=`, 404 with).
fn with_app<T>(
    shared: &Shared,
    name: &str,
    query: &Query,
    f: impl FnOnce(&mut AppModel, &Ctx) -> T,
) -> Result<T, ApiError> {
    let namespace = query.get("appNamespace").unwrap_or(&shared.namespace);
    let bad = shared.bad();
    let c = ctx(shared, &bad);
    let mut st = shared.lock();
    match st
        .apps
        .iter_mut()
        .find(|a| a.name == name && a.namespace == namespace)
    {
        Some(app) if query.get("project").is_none_or(|p| p == "default") => Ok(f(app, &c)),
        _ if query.get("project").is_some() => Err(error(
            404,
            5,
            &format!("applications.argoproj.io \"{name}\" not found"),
        )),
        _ => Err(error(403, 7, "permission denied")),
    }
}

async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    authorize(&shared, &headers)?;
    shared.advance();
    let query = Query::parse(raw);
    let bad = shared.bad();
    let c = ctx(&shared, &bad);
    let keep: Option<Vec<&str>> = query.get("fields").map(|f| {
        f.split(',')
            .filter_map(|k| k.strip_prefix("items."))
            .filter(|k| HONOURED.contains(k))
            .collect()
    });
    let items: Vec<Value> = shared
        .lock()
        .apps
        .iter()
        .filter(|a| query.get("appNamespace").is_none_or(|ns| a.namespace == ns))
        .filter(|a| query.get("name").is_none_or(|n| a.name == n))
        .map(|a| {
            let full = render::application(a, &c);
            match &keep {
                Some(keys) => project(&full, keys),
                None => full,
            }
        })
        .collect();
    Ok(ok(
        &json!({"metadata": {"resourceVersion": "1"}, "items": items}),
    ))
}

/// Keeps only the dotted paths `keys` of `item`.
fn project(item: &Value, keys: &[&str]) -> Value {
    let mut out = json!({});
    for key in keys {
        let parts: Vec<&str> = key.split('.').collect();
        let Some(value) = parts.iter().try_fold(item, |v, p| v.get(p)) else {
            continue;
        };
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let mut dst = &mut out;
        for p in parents {
            if dst.get(*p).is_none() {
                dst[*p] = json!({});
            }
            dst = &mut dst[*p];
        }
        dst[*last] = value.clone();
    }
    out
}

async fn get_app(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    authorize(&shared, &headers)?;
    let query = Query::parse(raw);
    if query.get("refresh").is_some() {
        // Reconcile now: read the branch (and sync a new tip) before answering.
        with_app(&shared, &name, &query, |_, _| ())?;
        shared
            .check_tip()
            .await
            .map_err(|e| error(500, 13, &e.to_string()))?;
        let now = shared.clock.now();
        with_app(&shared, &name, &query, |a, _| a.reconciled_at = now)?;
    } else {
        shared.advance();
    }
    with_app(&shared, &name, &query, |a, c| {
        ok(&render::application(a, c))
    })
}

async fn tree(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    authorize(&shared, &headers)?;
    shared.advance();
    let query = Query::parse(raw);
    with_app(&shared, &name, &query, |a, c| ok(&render::tree(a, c)))
}

async fn resource(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    authorize(&shared, &headers)?;
    shared.advance();
    let query = Query::parse(raw);
    let ns = query.get("namespace").unwrap_or("").to_owned();
    let pod = query.get("resourceName").unwrap_or("").to_owned();
    let kind = query.get("kind").unwrap_or("").to_owned();
    let is_pod = kind == "Pod"
        && query.get("version") == Some("v1")
        && query.get("group").unwrap_or("").is_empty();
    let found = with_app(&shared, &name, &query, |a, c| {
        is_pod.then(|| render::pod(a, c, &ns, &pod)).flatten()
    })?;
    match found {
        Some(p) => Ok(ok(&json!({"manifest": p.to_string()}))),
        None => Err(error(
            400,
            3,
            &format!("{kind} {ns}/{pod} not found as part of application {name}"),
        )),
    }
}

async fn sync(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    authorize(&shared, &headers)?;
    shared.advance();
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| error(400, 3, &format!("invalid request body: {e}")))?;
    let mut query = Query(Vec::new());
    if let Some(ns) = request["appNamespace"].as_str() {
        query.0.push(("appNamespace".to_owned(), ns.to_owned()));
    }
    let raw = request["revision"]
        .as_str()
        .or_else(|| request["revisions"][0].as_str())
        .unwrap_or("");
    let revision: CommitSha = raw.parse().map_err(|_| {
        error(
            400,
            3,
            &format!("revision `{raw}` must be a full commit sha in the simulated controller"),
        )
    })?;
    let (running, globs, rules) = with_app(&shared, &name, &query, |a, _| {
        (a.running(), a.globs.clone(), a.pin_rules.clone())
    })?;
    if running {
        return Err(error(400, 9, "another operation is already in progress"));
    }
    let me = shared.clone();
    let app = name.clone();
    let rendered = super::blocking(move || repo::render(&me.repo, &revision, &app, &globs, &rules))
        .await
        .map_err(|e| error(400, 3, &e.to_string()))?;
    let now = shared.clock.now();
    with_app(&shared, &name, &query, |a, c| {
        if a.running() {
            return Err(error(400, 9, "another operation is already in progress"));
        }
        a.start(rendered, now, Initiator::User("admin".to_owned()));
        Ok(ok(&render::application(a, c)))
    })?
}

async fn terminate(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    authorize(&shared, &headers)?;
    shared.advance();
    let query = Query::parse(raw);
    let now = shared.clock.now();
    if with_app(&shared, &name, &query, |a, _| a.terminate(now))? {
        Ok(ok(&json!({})))
    } else {
        Err(error(
            400,
            3,
            "Unable to terminate operation. No operation is in progress",
        ))
    }
}
