//! `POST /graphql`: `enablePullRequestAutoMerge` only, answered in
//! GitHub's GraphQL shape — failures are HTTP 200 with `errors` and a null
//! field (`tests/fixtures/github/graphql-enable-auto-merge.recorded.json`,
//! real PyGithub recordings). The "not allowed" text is recorded there;
//! "clean status" is GitHub's answer for a pull request that could be
//! merged at once (no protection rule requires anything), as the gh CLI
//! shows it (`GraphQL: Pull request Pull request is in clean status`); the
//! head-mismatch text is ours (not recorded), shaped like GitHub's.

use std::sync::Mutex;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::{State, fixture, json_response, lock};

fn graphql_error(message: &str) -> Response {
    json_response(
        200,
        &json!({
            "data": {"enablePullRequestAutoMerge": null},
            "errors": [{
                "type": "UNPROCESSABLE",
                "path": ["enablePullRequestAutoMerge"],
                "locations": [{"line": 1, "column": 81}],
                "message": message,
            }],
        }),
        &[],
    )
}

pub(super) fn answer(state: &Mutex<State>, body: &Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return json_response(400, &json!({"message": "Problems parsing JSON"}), &[]);
    };
    let mut s = lock(state);
    let query = request["query"].as_str().unwrap_or_default();
    if !query.contains("enablePullRequestAutoMerge")
        || !query.contains("EnablePullRequestAutoMergeInput!")
    {
        s.violations
            .push(format!("a GraphQL query revertbot does not send: {query}"));
        return json_response(
            200,
            &json!({"errors": [{"message": "Field is not supported by this fake"}]}),
            &[],
        );
    }
    let input = &request["variables"]["input"];
    let known = [
        "pullRequestId",
        "mergeMethod",
        "expectedHeadOid",
        "commitHeadline",
        "commitBody",
        "authorEmail",
        "clientMutationId",
    ];
    if let Some(obj) = input.as_object() {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            s.violations.push(format!(
                "EnablePullRequestAutoMergeInput has no field `{key}`"
            ));
        }
    }
    let method = input["mergeMethod"].as_str().unwrap_or("MERGE").to_owned();
    if !["MERGE", "SQUASH", "REBASE"].contains(&method.as_str()) {
        s.violations.push(format!(
            "mergeMethod `{method}` is not a PullRequestMergeMethod"
        ));
    }
    let Some(expected) = input["expectedHeadOid"].as_str().map(str::to_owned) else {
        s.violations.push(
            "auto-merge without expectedHeadOid: GitHub would merge whatever the head is then"
                .to_owned(),
        );
        return graphql_error("expectedHeadOid is required by revertbot's fake");
    };
    let id = input["pullRequestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let disallowed = s.auto_merge_disallowed;
    let unprotected = s.unprotected;
    let Some(pr) = s
        .prs
        .iter_mut()
        .find(|pr| format!("PR_kwDOfake{:04}", pr.number) == id)
    else {
        return json_response(
            200,
            &json!({"data": {"enablePullRequestAutoMerge": null}, "errors": [{"type": "NOT_FOUND", "path": ["enablePullRequestAutoMerge"], "message": format!("Could not resolve to a node with the global id of '{id}'")}]}),
            &[],
        );
    };
    if disallowed {
        let recorded = fixture("graphql-enable-auto-merge.recorded.json");
        return json_response(200, &recorded["interactions"][1]["response"]["body"], &[]);
    }
    if unprotected {
        return graphql_error("Pull request Pull request is in clean status");
    }
    if pr.closed {
        return graphql_error("Pull request is closed");
    }
    if pr.head_sha != expected {
        return graphql_error("Head sha didn't match expected head oid");
    }
    pr.auto_merge = Some(method.clone());
    json_response(
        200,
        &json!({"data": {"enablePullRequestAutoMerge": {"pullRequest": {
            "number": pr.number,
            "autoMergeRequest": {"enabledAt": "2026-12-03T10:00:00Z", "mergeMethod": method},
        }}}}),
        &[],
    )
}
