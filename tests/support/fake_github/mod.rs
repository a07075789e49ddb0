//! `FakeGitHub`: a strict, stateful GitHub REST API for one repository on
//! 127.0.0.1, its answers built from the recorded shapes in
//! `tests/fixtures/github/` (see PROVENANCE.md there).
//!
//! Strict like api.github.com for what revertbot may call: the pull request
//! list by head, create, update; labels, reviewers, assignees. Every call
//! needs the token (`Authorization: Bearer …` or `token …`) and a
//! `User-Agent` (GitHub answers 403 without one); a second open pull request
//! from the same head is GitHub's 422 "A pull request already exists for
//! owner:branch."; a list whose `head` is not `owner:branch` lists every
//! open PR, as GitHub does, and is a violation. Anything else is 404 and a
//! violation. [`FakeGitHub::finish`] (and `Drop`) fail the test on
//! violations or on faults queued but never served.
//!
//! With [`FakeGitHub::serve_git`] it also reads the branches of a real bare
//! repository, as GitHub does: a pull request whose head branch was not
//! pushed is GitHub's 422 (`field: head, code: invalid`), and `head.sha` is
//! the branch's real tip.
//!
//! GraphQL (`POST /graphql`, on Enterprise `/api/graphql` beside the REST
//! `/api/v3`) answers `enablePullRequestAutoMerge` as GitHub does: HTTP 200
//! with an `errors` array when the repository does not allow auto-merge
//! (the recorded PyGithub answer), when the base branch has no protection
//! (the PR is in "clean status"), or when `expectedHeadOid` is not the
//! head. Comments (`/issues/{n}/comments`) are listed and posted. With
//! [`FakeGitHub::enable_app`] it is a GitHub App's API too (`app.rs`):
//! the installation lookup and the token exchange verify the JWT's RS256
//! signature with the App's public key and its `iat`/`exp`/`iss`.
//!
//! Test controls: queue faults per method and path suffix — a 502, a 502
//! *after* the write happened (the answer lost, not the work), a secondary
//! rate limit with `retry-after`, a slow answer — and serve under a path
//! prefix (`/api/v3`, GitHub Enterprise).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

pub const TOKEN: &str = "ghs_fakeGitHubToken0123456789abcdef";
pub const OWNER: &str = "acme";
pub const REPO: &str = "infra";

#[derive(Debug, Clone)]
pub enum Fault {
    /// 502 before anything happens.
    BadGateway,
    /// The write happens, the answer is a 502.
    BadGatewayAfterWrite,
    /// 403 secondary rate limit with `retry-after: secs`.
    SecondaryLimit { retry_after: u64 },
    /// The answer comes after this delay.
    Slow(Duration),
    /// A racing run opens the same pull request first (create → 422).
    RacingCreate,
}

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub assignees: Vec<String>,
    /// Closed by hand in a test ([`FakeGitHub::close`]).
    pub closed: bool,
    /// Merged in a test ([`FakeGitHub::merge`]).
    pub merged: bool,
    pub head_sha: String,
    /// The merge method auto-merge was turned on with.
    pub auto_merge: Option<String>,
    pub comments: Vec<String>,
}

#[derive(Default)]
struct State {
    prefix: String,
    /// The token calls must carry; [`TOKEN`] unless a test sets another.
    token: Option<String>,
    git_dir: Option<std::path::PathBuf>,
    prs: Vec<PullRequest>,
    faults: VecDeque<(Method, String, Fault)>,
    violations: Vec<String>,
    calls: Vec<String>,
    /// The repository's "Allow auto-merge" setting (`allow_auto_merge`).
    auto_merge_disallowed: bool,
    /// The base branch has no protection rule: a PR is mergeable at once.
    unprotected: bool,
    app: Option<app::AppState>,
}

mod app;
mod graphql;
mod pulls;

pub use app::AppKey;
use pulls::{add, comment, comments, create, get, list, update};

pub struct FakeGitHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
    finished: bool,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeGitHub {
    /// Serves the REST API at the root (github.com's `api.github.com`).
    pub async fn start() -> Self {
        Self::start_at("").await
    }

    /// Serves under `prefix` (`/api/v3` for GitHub Enterprise).
    pub async fn start_at(prefix: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            prefix: prefix.to_owned(),
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::clone(&state);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&shared);
                async move { handle(&state, method, uri, headers, body).await }
            },
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            server,
            finished: false,
        }
    }

    /// The REST base URL (with the prefix).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, lock(&self.state).prefix)
    }

    pub fn fault(&self, method: Method, path_suffix: &str, fault: Fault) {
        lock(&self.state)
            .faults
            .push_back((method, path_suffix.to_owned(), fault));
    }

    /// Calls must carry `token` instead of [`TOKEN`] (the same token as the
    /// git host's, as `GITHUB_TOKEN` is in Actions).
    pub fn expect_token(&self, token: &str) {
        lock(&self.state).token = Some(token.to_owned());
    }

    /// Branches (PR heads and bases) are those of this bare repository.
    pub fn serve_git(&self, git_dir: &std::path::Path) {
        lock(&self.state).git_dir = Some(git_dir.to_owned());
    }

    /// Closes a pull request without merging, as a reviewer would.
    pub fn close(&self, number: u64) {
        self.change_pr(number, |pr| pr.closed = true);
    }

    /// Merges a pull request, as GitHub would once its checks pass.
    pub fn merge(&self, number: u64) {
        self.change_pr(number, |pr| {
            pr.merged = true;
            pr.closed = true;
        });
    }

    fn change_pr(&self, number: u64, change: impl FnOnce(&mut PullRequest)) {
        let mut s = lock(&self.state);
        let pr = s
            .prs
            .iter_mut()
            .find(|pr| pr.number == number)
            .expect("no such pull request");
        change(pr);
    }

    /// The repository does not allow auto-merge (its settings).
    pub fn disallow_auto_merge(&self) {
        lock(&self.state).auto_merge_disallowed = true;
    }

    /// The base branch has no protection rule.
    pub fn unprotect(&self) {
        lock(&self.state).unprotected = true;
    }

    /// Answers as GitHub does for this App: tokens from the exchange are
    /// accepted (until they expire after `ttl`), the plain token is not.
    pub fn enable_app(&self, key: &AppKey, ttl: Duration) {
        lock(&self.state).app = Some(app::AppState::new(key, ttl));
    }

    /// How many installation tokens were handed out.
    pub fn tokens_issued(&self) -> usize {
        lock(&self.state).app.as_ref().map_or(0, |a| a.issued.len())
    }

    pub fn pull_requests(&self) -> Vec<PullRequest> {
        lock(&self.state).prs.clone()
    }

    /// `METHOD path` of every call, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.state).violations)
    }

    /// Fails on violations and faults left unserved.
    pub fn finish(mut self) {
        self.finished = true;
        self.check();
    }

    fn check(&self) {
        let state = lock(&self.state);
        assert!(
            state.violations.is_empty(),
            "the fake GitHub saw calls a correct client does not make: {:#?}",
            state.violations
        );
        assert!(
            state.faults.is_empty(),
            "faults queued but never served: {:?}",
            state.faults
        );
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
        if !self.finished && !std::thread::panicking() {
            self.check();
        }
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn json_response(status: u16, value: &Value, extra: &[(&str, String)]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json; charset=utf-8")
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "4999");
    for (k, v) in extra {
        builder = builder.header(*k, v);
    }
    builder.body(Body::from(value.to_string())).unwrap()
}

fn error(status: u16, message: &str) -> Response {
    json_response(
        status,
        &json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        &[],
    )
}

/// The full pull request object (create / update answer), from the recorded
/// shape with this PR's fields.
fn pr_object(base_url: &str, pr: &PullRequest, full: bool) -> Value {
    let mut o = fixture(if full {
        "pull-request-object.json"
    } else {
        "list-pulls-by-head-one.json"
    });
    if o.is_array() {
        o = o[0].clone();
    }
    o["number"] = json!(pr.number);
    o["node_id"] = json!(format!("PR_kwDOfake{:04}", pr.number));
    o["url"] = json!(format!(
        "{base_url}/repos/{OWNER}/{REPO}/pulls/{}",
        pr.number
    ));
    o["html_url"] = json!(format!(
        "https://github.com/{OWNER}/{REPO}/pull/{}",
        pr.number
    ));
    o["title"] = json!(pr.title);
    o["body"] = json!(pr.body);
    o["state"] = json!(if pr.closed { "closed" } else { "open" });
    o["merged_at"] = if pr.merged {
        json!("2026-12-03T10:05:00Z")
    } else {
        Value::Null
    };
    o["auto_merge"] = match &pr.auto_merge {
        Some(method) => {
            json!({"merge_method": method.to_ascii_lowercase(), "enabled_by": {"login": "revertbot[bot]"}})
        }
        None => Value::Null,
    };
    o["head"]["ref"] = json!(pr.head);
    o["head"]["label"] = json!(format!("{OWNER}:{}", pr.head));
    o["head"]["sha"] = json!(pr.head_sha);
    o["base"]["ref"] = json!(pr.base);
    o["labels"] = json!(
        pr.labels
            .iter()
            .map(|l| json!({"name": l, "color": "ededed"}))
            .collect::<Vec<_>>()
    );
    o
}

async fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (prefix, fault, token) = {
        let mut s = lock(state);
        s.calls.push(format!("{method} {}", uri.path()));
        let position = s
            .faults
            .iter()
            .position(|(m, suffix, _)| *m == method && uri.path().ends_with(suffix.as_str()));
        let fault = position.and_then(|i| s.faults.remove(i)).map(|(_, _, f)| f);
        let token = s.token.clone().unwrap_or_else(|| TOKEN.to_owned());
        (s.prefix.clone(), fault, token)
    };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    // The App's own endpoints take its JWT; everything else the token.
    let app_endpoint = uri.path().strip_prefix(&prefix).is_some_and(|p| {
        p.starts_with("/app/") || p == format!("/repos/{OWNER}/{REPO}/installation")
    });
    if app_endpoint {
        let checked = app::check_jwt(state, &presented);
        if let Err(why) = checked {
            lock(state)
                .violations
                .push(format!("{method} {}: {why}", uri.path()));
            return error(401, "A JSON web token could not be decoded");
        }
    } else {
        let authorized = {
            let s = lock(state);
            match &s.app {
                Some(app) => app.accepts(&presented),
                None => presented == token,
            }
        };
        if !authorized {
            lock(state)
                .violations
                .push(format!("{method} {} without a valid token", uri.path()));
            return error(401, "Bad credentials");
        }
    }
    if headers.get("user-agent").is_none() {
        lock(state)
            .violations
            .push(format!("{method} {} without a User-Agent", uri.path()));
        return error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    match &fault {
        Some(Fault::BadGateway) => return error(502, "Server Error"),
        Some(Fault::SecondaryLimit { retry_after }) => {
            return json_response(
                403,
                &fixture("secondary-rate-limit-403.json")[0]["response"],
                &[("retry-after", retry_after.to_string())],
            );
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Fault::RacingCreate) => {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let base = format!(
                    "http://{}{prefix}",
                    headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                );
                let _ = create(state, &v, &base);
            }
        }
        _ => {}
    }
    let graphql_path = match prefix.strip_suffix("/api/v3") {
        Some(host_prefix) => format!("{host_prefix}/api/graphql"),
        None => format!("{prefix}/graphql"),
    };
    if uri.path() == graphql_path {
        if method != Method::POST {
            lock(state)
                .violations
                .push(format!("{method} {}: GraphQL takes POST", uri.path()));
            return error(404, "Not Found");
        }
        let response = graphql::answer(state, &body);
        if matches!(fault, Some(Fault::BadGatewayAfterWrite)) {
            return error(502, "Server Error");
        }
        return response;
    }
    let Some(path) = uri.path().strip_prefix(&prefix) else {
        lock(state)
            .violations
            .push(format!("{method} {} outside {prefix}", uri.path()));
        return error(404, "Not Found");
    };
    let base_url = format!(
        "http://{}{prefix}",
        headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    );
    if let Some(installation) = path
        .strip_prefix("/app/installations/")
        .and_then(|p| p.strip_suffix("/access_tokens"))
    {
        if method != Method::POST {
            lock(state)
                .violations
                .push(format!("{method} {path}: the token exchange is a POST"));
            return error(404, "Not Found");
        }
        return app::issue_token(state, installation);
    }
    let repo = format!("/repos/{OWNER}/{REPO}");
    let Some(rest) = path.strip_prefix(&repo) else {
        lock(state)
            .violations
            .push(format!("{method} {path}: not this repository"));
        return error(404, "Not Found");
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(400, "Problems parsing JSON"),
        }
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["installation"]) => app::installation(state),
        (&Method::GET, ["pulls"]) => list(state, &uri, &base_url),
        (&Method::GET, ["pulls", n]) => get(state, n, &base_url),
        (&Method::GET, ["issues", n, "comments"]) => comments(state, n, &uri),
        (&Method::POST, ["issues", n, "comments"]) => comment(state, n, &body),
        (&Method::POST, ["pulls"]) => create(state, &body, &base_url),
        (&Method::PATCH, ["pulls", n]) => update(state, n, &body, &base_url),
        (&Method::POST, ["issues", n, "labels"]) => add(state, n, &body, "labels", &base_url),
        (&Method::POST, ["issues", n, "assignees"]) => add(state, n, &body, "assignees", &base_url),
        (&Method::POST, ["pulls", n, "requested_reviewers"]) => {
            add(state, n, &body, "reviewers", &base_url)
        }
        _ => {
            lock(state)
                .violations
                .push(format!("{method} {path}: not an endpoint revertbot uses"));
            error(404, "Not Found")
        }
    };
    if matches!(fault, Some(Fault::BadGatewayAfterWrite)) {
        return error(502, "Server Error");
    }
    response
}
