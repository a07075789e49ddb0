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
    pub head_sha: String,
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
}

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
        let mut s = lock(&self.state);
        let pr = s
            .prs
            .iter_mut()
            .find(|pr| pr.number == number)
            .expect("no such pull request");
        pr.closed = true;
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
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}") || v == format!("token {token}"));
    if !authorized {
        lock(state)
            .violations
            .push(format!("{method} {} without the token", uri.path()));
        return error(401, "Requires authentication");
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
        (&Method::GET, ["pulls"]) => list(state, &uri, &base_url),
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

fn list(state: &Mutex<State>, uri: &Uri, base_url: &str) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":"))
        })
        .collect();
    let mut s = lock(state);
    let head = query
        .iter()
        .find(|(k, _)| k == "head")
        .map(|(_, v)| v.clone());
    let state_param = query
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.as_str());
    if state_param != Some("open") {
        s.violations
            .push(format!("pull request list without state=open: {query:?}"));
    }
    let branch = match head.as_deref().and_then(|h| h.split_once(':')) {
        Some((owner, branch)) if owner == OWNER => Some(branch.to_owned()),
        _ => {
            s.violations.push(format!("pull request list with head {head:?}, not `{OWNER}:branch`: GitHub then lists every open pull request"));
            None
        }
    };
    let found: Vec<Value> = s
        .prs
        .iter()
        .filter(|pr| !pr.closed && branch.as_ref().is_none_or(|b| &pr.head == b))
        .map(|pr| pr_object(base_url, pr, false))
        .collect();
    json_response(200, &Value::Array(found), &[])
}

fn create(state: &Mutex<State>, body: &Value, base_url: &str) -> Response {
    let mut s = lock(state);
    let allowed = [
        "title",
        "body",
        "head",
        "base",
        "draft",
        "maintainer_can_modify",
    ];
    if let Some(obj) = body.as_object() {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                s.violations
                    .push(format!("create pull request with unknown key `{key}`"));
            }
        }
    }
    let (Some(title), Some(head), Some(base)) = (
        body["title"].as_str(),
        body["head"].as_str(),
        body["base"].as_str(),
    ) else {
        return json_response(
            422,
            &json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "missing_field"}]}),
            &[],
        );
    };
    let head = head
        .strip_prefix(&format!("{OWNER}:"))
        .unwrap_or(head)
        .to_owned();
    if s.prs.iter().any(|pr| pr.head == head && !pr.closed) {
        let mut answer = fixture("error-422-pull-request-exists.json")[0]["response"].clone();
        answer["errors"][0]["message"] =
            json!(format!("A pull request already exists for {OWNER}:{head}."));
        return json_response(422, &answer, &[]);
    }
    let head_sha = match &s.git_dir {
        None => format!("{:040x}", s.prs.len() + 1),
        Some(dir) => {
            let tip = |branch: &str| {
                std::process::Command::new("git")
                    .arg("--git-dir")
                    .arg(dir)
                    .args(["rev-parse", "--verify", "--quiet"])
                    .arg(format!("refs/heads/{branch}^{{commit}}"))
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            };
            if tip(base).is_none() {
                return json_response(
                    422,
                    &json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}], "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "422"}),
                    &[],
                );
            }
            match tip(&head) {
                Some(sha) => sha,
                None => {
                    s.violations.push(format!(
                        "create pull request from `{head}`, a branch the repository does not have"
                    ));
                    return json_response(
                        422,
                        &json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}], "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request", "status": "422"}),
                        &[],
                    );
                }
            }
        }
    };
    let pr = PullRequest {
        number: s.prs.len() as u64 + 1,
        closed: false,
        head_sha,
        head,
        base: base.to_owned(),
        title: title.to_owned(),
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        labels: Vec::new(),
        reviewers: Vec::new(),
        assignees: Vec::new(),
    };
    let answer = pr_object(base_url, &pr, true);
    s.prs.push(pr);
    json_response(201, &answer, &[])
}

fn number(n: &str) -> Option<usize> {
    n.parse::<usize>().ok().and_then(|n| n.checked_sub(1))
}

fn update(state: &Mutex<State>, n: &str, body: &Value, base_url: &str) -> Response {
    let mut s = lock(state);
    let Some(pr) = number(n).and_then(|i| s.prs.get_mut(i)) else {
        return error(404, "Not Found");
    };
    if let Some(text) = body["body"].as_str() {
        pr.body = text.to_owned();
    }
    if let Some(title) = body["title"].as_str() {
        pr.title = title.to_owned();
    }
    let answer = pr_object(base_url, pr, true);
    json_response(200, &answer, &[])
}

fn add(state: &Mutex<State>, n: &str, body: &Value, field: &str, base_url: &str) -> Response {
    let mut s = lock(state);
    let Some(pr) = number(n).and_then(|i| s.prs.get_mut(i)) else {
        return error(404, "Not Found");
    };
    let Some(items) = body[field].as_array() else {
        return json_response(422, &json!({"message": "Validation Failed"}), &[]);
    };
    let list = match field {
        "labels" => &mut pr.labels,
        "assignees" => &mut pr.assignees,
        _ => &mut pr.reviewers,
    };
    for item in items.iter().filter_map(Value::as_str) {
        if !list.iter().any(|l| l == item) {
            list.push(item.to_owned());
        }
    }
    let answer = if field == "labels" {
        json!(
            pr.labels
                .iter()
                .map(|l| json!({"name": l, "color": "ededed"}))
                .collect::<Vec<_>>()
        )
    } else {
        pr_object(base_url, pr, true)
    };
    json_response(if field == "labels" { 200 } else { 201 }, &answer, &[])
}
