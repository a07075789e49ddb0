//! Routing and handlers of [`super::FakeArgoCd`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Call, DEFAULT_NS, Endpoint, Fault, HONOURED_FIELDS, Hook, State, TOKEN, fixture, now};

fn error(status: u16, code: i64, message: &str) -> Response {
    let body = json!({"error": message, "code": code, "message": message});
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

struct Req {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Bytes,
}

impl Req {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn classify(req: &Req) -> (Endpoint, Option<Method>) {
    let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["api", "v1", "applications"] => (Endpoint::List, Some(Method::GET)),
        ["api", "v1", "applications", _] if req.param("refresh").is_some() => {
            (Endpoint::Refresh, Some(Method::GET))
        }
        ["api", "v1", "applications", _] => (Endpoint::Get, Some(Method::GET)),
        ["api", "v1", "applications", _, "resource-tree"] => (Endpoint::Tree, Some(Method::GET)),
        ["api", "v1", "applications", _, "resource"] => (Endpoint::Resource, Some(Method::GET)),
        ["api", "v1", "applications", _, "sync"] => (Endpoint::Sync, Some(Method::POST)),
        ["api", "v1", "applications", _, "operation"] => {
            (Endpoint::Terminate, Some(Method::DELETE))
        }
        _ => (Endpoint::Unknown, None),
    }
}

/// Query parameters of each endpoint, from swagger-excerpt.json (the
/// terminate endpoint is not in the excerpt: appNamespace and project).
fn allowed_params(endpoint: Endpoint) -> Vec<String> {
    let swagger = fixture("swagger-excerpt.json");
    let (path, method) = match endpoint {
        Endpoint::List => ("/api/v1/applications", "get"),
        Endpoint::Get | Endpoint::Refresh => ("/api/v1/applications/{name}", "get"),
        Endpoint::Tree => (
            "/api/v1/applications/{applicationName}/resource-tree",
            "get",
        ),
        Endpoint::Resource => ("/api/v1/applications/{name}/resource", "get"),
        Endpoint::Sync => ("/api/v1/applications/{name}/sync", "post"),
        Endpoint::Terminate => return vec!["appNamespace".into(), "project".into()],
        Endpoint::Unknown => return vec![],
    };
    let mut out: Vec<String> = swagger["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    if endpoint == Endpoint::List {
        out.push("fields".into()); // not in the swagger; honoured by the gateway
    }
    out
}

pub(super) async fn handle(
    state: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let segments = uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let req = Req {
        method,
        segments,
        query,
        body,
    };
    let (endpoint, want_method) = classify(&req);
    let index = {
        let mut st = lock();
        st.calls.push(Call {
            method: req.method.to_string(),
            path: uri.path().to_owned(),
            query: req.query.clone(),
            endpoint,
            body: serde_json::from_slice(&req.body).ok(),
            status: 0,
        });
        st.calls.len() - 1
    };
    // Violations are collected apart from the state lock, which handlers
    // hold while they find them.
    let found = Mutex::new(Vec::new());
    let violation = |v: String| found.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    let response = respond(&state, &req, &headers, endpoint, want_method, &violation).await;
    let mut st = lock();
    st.calls[index].status = response.status().as_u16();
    st.violations
        .extend(found.into_inner().unwrap_or_else(|p| p.into_inner()));
    response
}

async fn respond(
    state: &Arc<Mutex<State>>,
    req: &Req,
    headers: &HeaderMap,
    endpoint: Endpoint,
    want_method: Option<Method>,
    violation: &(dyn Fn(String) + Sync),
) -> Response {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let what = format!("{} /{}", req.method, req.segments.join("/"));

    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    match auth {
        None => {
            violation(format!("{what}: no Authorization header"));
            return error(401, 16, "no session information");
        }
        Some(a) if a != format!("Bearer {TOKEN}") => {
            violation(format!("{what}: wrong bearer token"));
            return error(401, 16, "invalid session: token signature is invalid");
        }
        Some(_) => {}
    }
    let Some(want_method) = want_method else {
        violation(format!("{what}: no such route"));
        return error(404, 5, "Not Found");
    };
    if req.method != want_method {
        violation(format!("{what}: wrong method (route takes {want_method})"));
        return error(405, 12, "Method Not Allowed");
    }
    let allowed = allowed_params(endpoint);
    let mut seen = Vec::new();
    for (k, _) in &req.query {
        if !allowed.contains(k) {
            violation(format!("{what}: query parameter `{k}` is not in the API"));
        }
        if seen.contains(k) {
            violation(format!("{what}: query parameter `{k}` repeated"));
        }
        seen.push(k.clone());
    }

    let fault = lock()
        .faults
        .get_mut(&endpoint)
        .and_then(VecDeque::pop_front);
    match fault {
        Some(Fault::Status(s)) => {
            let code = if s >= 500 { 13 } else { 2 };
            return error(s, code, "injected failure: etcdserver: request timed out");
        }
        Some(Fault::Raw(s, body)) => {
            return (StatusCode::from_u16(s).unwrap(), body).into_response();
        }
        Some(Fault::Malformed) => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"items\": [{\"metadata\": ",
            )
                .into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    let name = req.segments.get(3).cloned().unwrap_or_default();
    let namespace = req.param("appNamespace").unwrap_or(DEFAULT_NS).to_owned();
    match endpoint {
        Endpoint::List => list(&lock(), req, violation),
        Endpoint::Refresh => {
            if !matches!(req.param("refresh"), Some("normal" | "hard")) {
                violation(format!("{what}: refresh must be normal or hard"));
            }
            let delay = lock().refresh_delay;
            tokio::time::sleep(delay).await;
            let mut st = lock();
            let hooks: Vec<Hook> = {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    st.on_refresh.drain(..).partition(|(n, _)| *n == name);
                st.on_refresh = rest;
                mine.into_iter().map(|(_, h)| h).collect()
            };
            match st.app_mut(&namespace, &name) {
                Some(app) => {
                    for h in hooks {
                        h(app);
                    }
                    app["status"]["reconciledAt"] = json!(now());
                    ok(app)
                }
                None => missing(req, &name),
            }
        }
        Endpoint::Get => match lock().app(&namespace, &name) {
            Some(app) if project_ok(req, app) => ok(app),
            _ => missing(req, &name),
        },
        Endpoint::Tree => {
            let st = lock();
            match st.app(&namespace, &name) {
                Some(_) => ok(st
                    .trees
                    .get(&(namespace, name))
                    .unwrap_or(&json!({"nodes": []}))),
                None => missing(req, &name),
            }
        }
        Endpoint::Resource => resource(&lock(), req, &namespace, &name, violation),
        Endpoint::Sync => sync(&mut lock(), &req.body, &namespace, &name, violation),
        Endpoint::Terminate => terminate(&mut lock(), req, &namespace, &name),
        Endpoint::Unknown => error(404, 5, "Not Found"),
    }
}

fn project_ok(req: &Req, app: &Value) -> bool {
    req.param("project")
        .is_none_or(|p| app["spec"]["project"] == p)
}

/// Anti-enumeration: 403 unless the caller named a project.
fn missing(req: &Req, name: &str) -> Response {
    if req.param("project").is_some() {
        error(
            404,
            5,
            &format!("applications.argoproj.io \"{name}\" not found"),
        )
    } else {
        error(403, 7, "permission denied")
    }
}

fn list(st: &State, req: &Req, violation: &dyn Fn(String)) -> Response {
    let mut items: Vec<Value> = st
        .apps
        .iter()
        .filter(|a| {
            req.param("appNamespace")
                .is_none_or(|ns| a["metadata"]["namespace"] == ns)
        })
        .filter(|a| req.param("name").is_none_or(|n| a["metadata"]["name"] == n))
        .cloned()
        .collect();
    if let Some(fields) = req.param("fields") {
        let mut keep = Vec::new();
        for f in fields.split(',') {
            match f.strip_prefix("items.") {
                Some(k) if HONOURED_FIELDS.contains(&k) => keep.push(k),
                _ => violation(format!(
                    "list: `fields` key `{f}` is not honoured by argocd-server"
                )),
            }
        }
        items = items.iter().map(|i| project(i, &keep)).collect();
    }
    ok(&json!({"metadata": {"resourceVersion": "722900120"}, "items": items}))
}

fn project(item: &Value, keep: &[&str]) -> Value {
    let mut out = json!({});
    for path in keep {
        let parts: Vec<&str> = path.split('.').collect();
        let mut src = item;
        let mut found = true;
        for p in &parts {
            match src.get(p) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found {
            let mut dst = &mut out;
            for p in &parts[..parts.len() - 1] {
                if dst.get(*p).is_none() {
                    dst[*p] = json!({});
                }
                dst = &mut dst[*p];
            }
            dst[parts[parts.len() - 1]] = src.clone();
        }
    }
    out
}

fn resource(
    st: &State,
    req: &Req,
    namespace: &str,
    app: &str,
    violation: &dyn Fn(String),
) -> Response {
    if st.app(namespace, app).is_none() {
        return missing(req, app);
    }
    let (Some(ns), Some(rname), Some(version), Some(kind)) = (
        req.param("namespace"),
        req.param("resourceName"),
        req.param("version"),
        req.param("kind"),
    ) else {
        violation(format!(
            "resource of {app}: namespace, resourceName, version and kind are required"
        ));
        return error(400, 3, "invalid request: missing resource coordinates");
    };
    let group = req.param("group").unwrap_or("");
    let in_tree = st
        .trees
        .get(&(namespace.to_owned(), app.to_owned()))
        .is_some_and(|t| {
            t["nodes"].as_array().into_iter().flatten().any(|n| {
                n["kind"] == kind
                    && n["name"] == rname
                    && n["namespace"] == ns
                    && n["version"] == version
                    && n["group"].as_str().unwrap_or("") == group
            })
        });
    if !in_tree {
        return error(
            400,
            3,
            &format!("{kind} {ns}/{rname} not found as part of application {app}"),
        );
    }
    match st.pods.get(&(ns.to_owned(), rname.to_owned())) {
        Some(pod) if kind == "Pod" => ok(&json!({"manifest": pod.to_string()})),
        _ => error(404, 5, &format!("pods \"{rname}\" not found")),
    }
}

/// `POST .../sync`: starts an operation (the top-level `operation`, and
/// `status.operationState` Running) unless one is running already. Tests
/// finish it with [`deploy`] or by editing the app.
fn sync(
    st: &mut State,
    body: &[u8],
    namespace: &str,
    name: &str,
    violation: &dyn Fn(String),
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        violation(format!("sync {name}: body is not JSON"));
        return error(400, 3, "invalid character in request body");
    };
    let swagger = fixture("swagger-excerpt.json");
    let known = &swagger["definitions"]["applicationApplicationSyncRequest"]["properties"];
    for key in request
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if known.get(&key).is_none() {
            violation(format!("sync {name}: body key `{key}` is not in the API"));
        }
    }
    let namespace = request["appNamespace"]
        .as_str()
        .unwrap_or(namespace)
        .to_owned();
    if request["name"].as_str().is_some_and(|n| n != name) {
        violation(format!("sync {name}: body names another app"));
    }
    let Some(app) = st.app_mut(&namespace, name) else {
        return error(403, 7, "permission denied");
    };
    let sources = app["spec"]["sources"].as_array().map_or(0, Vec::len);
    let mut sync_op = json!({"syncStrategy": {"hook": {}}});
    if let Some(positions) = request["sourcePositions"].as_array() {
        let revisions = request["revisions"].as_array().cloned().unwrap_or_default();
        let valid = positions.len() == revisions.len()
            && positions
                .iter()
                .all(|p| p.as_i64().is_some_and(|p| p >= 1 && p as usize <= sources));
        if !valid {
            return error(
                400,
                3,
                "the number of revisions and source positions must match, and positions must name sources",
            );
        }
        sync_op["revisions"] = json!(revisions);
        sync_op["sourcePositions"] = json!(positions);
    } else if sources > 0 && request.get("revision").is_some() {
        return error(
            400,
            3,
            "multi-source applications take `revisions` with `sourcePositions`",
        );
    } else {
        sync_op["revision"] = request["revision"].clone();
    }
    let running = app.get("operation").is_some_and(|o| !o.is_null())
        || matches!(
            app["status"]["operationState"]["phase"].as_str(),
            Some("Running" | "Terminating")
        );
    if running {
        return error(400, 9, "another operation is already in progress");
    }
    let operation = json!({"sync": sync_op, "initiatedBy": {"username": "revertbot"}});
    app["operation"] = operation.clone();
    app["status"]["operationState"] = json!({
        "operation": operation, "phase": "Running", "startedAt": now(), "message": "",
    });
    ok(app)
}

/// `DELETE .../operation` (argo-cd server/application/application.go
/// TerminateOperation): 400 InvalidArgument when nothing runs.
fn terminate(st: &mut State, req: &Req, namespace: &str, name: &str) -> Response {
    let Some(app) = st.app_mut(namespace, name) else {
        return missing(req, name);
    };
    let has_op = app.get("operation").is_some_and(|o| !o.is_null());
    if !has_op || app["status"]["operationState"].is_null() {
        return error(
            400,
            3,
            "Unable to terminate operation. No operation is in progress",
        );
    }
    app["status"]["operationState"]["phase"] = json!("Terminating");
    ok(&json!({}))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
