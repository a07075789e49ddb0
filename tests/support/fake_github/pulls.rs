//! The pull request endpoints: list by head, create, update, labels,
//! reviewers, assignees.

use std::sync::Mutex;

use axum::http::Uri;
use axum::response::Response;
use serde_json::{Value, json};

use super::{OWNER, PullRequest, State, error, fixture, json_response, lock, pr_object};

pub(super) fn list(state: &Mutex<State>, uri: &Uri, base_url: &str) -> Response {
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
        .map(|(_, v)| v.clone());
    // GitHub's default is `open`: a client that wants to see a PR a person
    // closed must ask for `all`.
    let wanted = match state_param.as_deref() {
        Some(v @ ("open" | "closed" | "all")) => v.to_owned(),
        other => {
            s.violations.push(format!(
                "pull request list with state {other:?}: revertbot must ask for state=all to see closed ones"
            ));
            "open".to_owned()
        }
    };
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
        .rev()
        .filter(|pr| match wanted.as_str() {
            "open" => !pr.closed,
            "closed" => pr.closed,
            _ => true,
        })
        .filter(|pr| branch.as_ref().is_none_or(|b| &pr.head == b))
        .map(|pr| pr_object(base_url, pr, false))
        .collect();
    json_response(200, &Value::Array(found), &[])
}

pub(super) fn create(state: &Mutex<State>, body: &Value, base_url: &str) -> Response {
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
        merged: false,
        auto_merge: None,
        comments: Vec::new(),
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

pub(super) fn number(n: &str) -> Option<usize> {
    n.parse::<usize>().ok().and_then(|n| n.checked_sub(1))
}

pub(super) fn get(state: &Mutex<State>, n: &str, base_url: &str) -> Response {
    let s = lock(state);
    match number(n).and_then(|i| s.prs.get(i)) {
        Some(pr) => json_response(200, &pr_object(base_url, pr, true), &[]),
        None => error(404, "Not Found"),
    }
}

/// `GET /issues/{n}/comments`, paged as GitHub pages (`per_page` ≤ 100).
pub(super) fn comments(state: &Mutex<State>, n: &str, uri: &Uri) -> Response {
    let s = lock(state);
    let Some(pr) = number(n).and_then(|i| s.prs.get(i)) else {
        return error(404, "Not Found");
    };
    let param = |name: &str| {
        uri.query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let per_page = param("per_page").unwrap_or(30).clamp(1, 100);
    let page = param("page").unwrap_or(1).max(1);
    let items: Vec<Value> = pr
        .comments
        .iter()
        .enumerate()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(i, body)| json!({"id": 1000 + i, "body": body, "user": {"login": "revertbot[bot]"}}))
        .collect();
    json_response(200, &Value::Array(items), &[])
}

/// `POST /issues/{n}/comments`: 201 with the comment (the recorded shape's
/// fields revertbot reads).
pub(super) fn comment(state: &Mutex<State>, n: &str, body: &Value) -> Response {
    let mut s = lock(state);
    let Some(text) = body["body"].as_str().map(str::to_owned) else {
        return json_response(
            422,
            &json!({"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]}),
            &[],
        );
    };
    let extra: Vec<String> = body
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "body").cloned().collect())
        .unwrap_or_default();
    if !extra.is_empty() {
        s.violations
            .push(format!("comment with unknown keys {extra:?}"));
    }
    let Some(pr) = number(n).and_then(|i| s.prs.get_mut(i)) else {
        return error(404, "Not Found");
    };
    pr.comments.push(text.clone());
    let id = 1000 + pr.comments.len() - 1;
    json_response(
        201,
        &json!({"id": id, "body": text, "user": {"login": "revertbot[bot]"}}),
        &[],
    )
}

pub(super) fn update(state: &Mutex<State>, n: &str, body: &Value, base_url: &str) -> Response {
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

pub(super) fn add(
    state: &Mutex<State>,
    n: &str,
    body: &Value,
    field: &str,
    base_url: &str,
) -> Response {
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
