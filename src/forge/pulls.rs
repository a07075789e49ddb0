//! Pull requests, labels, reviewers, assignees and comments over REST.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Attempt, ForgeError, GitHub, already_exists, decode, next_wait, query_escape};

/// A pull request, as revertbot needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    /// GraphQL needs it (auto-merge).
    pub node_id: String,
    pub html_url: String,
    pub head: Head,
    /// `open` or `closed`.
    #[serde(default = "open")]
    pub state: String,
    /// Set when it was merged (a closed pull request without it was
    /// closed unmerged: rejected).
    #[serde(default)]
    pub merged_at: Option<String>,
}

fn open() -> String {
    "open".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged,
    /// Closed without merging: a person rejected it.
    Rejected,
}

impl PullRequest {
    pub fn state(&self) -> PrState {
        match (self.state.as_str(), &self.merged_at) {
            (_, Some(_)) => PrState::Merged,
            ("open", None) => PrState::Open,
            _ => PrState::Rejected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A pull request revertbot asked for: opened now, or found already (a
/// rerun, a repeated alert, a racing run) — open, merged, or closed by a
/// person, which the caller must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Opened(PullRequest),
    Existing(PullRequest),
}

impl Published {
    pub fn pr(&self) -> &PullRequest {
        match self {
            Published::Opened(pr) | Published::Existing(pr) => pr,
        }
    }
}

/// What a new pull request says.
#[derive(Debug, Clone)]
pub struct NewPullRequest<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// The branch with the revert, in the same repository.
    pub head: &'a str,
    pub base: &'a str,
}

/// A comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
}

/// At most this many comments are read when looking for our own.
const COMMENT_PAGES: u32 = 5;

impl GitHub {
    /// The pull request whose head is `branch` of this repository: the
    /// open one when there is one, else the newest closed one (merged, or
    /// closed by a person). `None` when there never was one.
    pub async fn find_pr(&self, branch: &str) -> Result<Option<PullRequest>, ForgeError> {
        let doing = format!("looking for a pull request from {branch}");
        let path = self.repo_path(&format!(
            "/pulls?state=all&sort=created&direction=desc&head={}",
            query_escape(&format!("{}:{branch}", self.owner))
        ));
        let answer = self
            .with_retries(&doing, || self.call(Method::GET, &path, None, &doing))
            .await?;
        let prs: Vec<PullRequest> = decode(&self.server(), &doing, answer)?;
        let mut ours: Vec<PullRequest> = prs
            .into_iter()
            .filter(|pr| pr.head.branch == branch)
            .collect();
        if let Some(i) = ours.iter().position(|pr| pr.state() == PrState::Open) {
            return Ok(Some(ours.swap_remove(i)));
        }
        Ok(ours.into_iter().max_by_key(|pr| pr.number))
    }

    /// Opens the pull request, unless one from the same branch exists
    /// already (open, merged or closed): looked up first, looked up again
    /// after a failed attempt before trying again (a 502 may hide a
    /// success), and after GitHub's 422 "already exists" (a racing run
    /// won). Never two pull requests, and never a second one after a
    /// person closed the first.
    pub async fn open_pr(&self, new: &NewPullRequest<'_>) -> Result<Published, ForgeError> {
        let doing = format!("opening a pull request from {}", new.head);
        let path = self.repo_path("/pulls");
        let body = json!({
            "title": new.title,
            "body": new.body,
            "head": new.head,
            "base": new.base,
            "maintainer_can_modify": false,
        });
        let mut delays = self.policy.delays();
        loop {
            if let Some(pr) = self.find_pr(new.head).await? {
                return Ok(Published::Existing(pr));
            }
            let (error, wait) = match self.call(Method::POST, &path, Some(&body), &doing).await {
                Ok(answer) => {
                    return decode(&self.server(), &doing, answer).map(Published::Opened);
                }
                // A racing run opened it: the next lookup finds it.
                Err(Attempt::Failed(e)) if already_exists(&e) => {
                    (e, Some(std::time::Duration::ZERO))
                }
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Retry { error, wait }) => (error, wait),
            };
            match next_wait(&mut delays, wait) {
                Some(wait) => {
                    tracing::warn!(error = %error, retry_in = ?wait, "{doing} failed; looking again before retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error),
            }
        }
    }

    /// One pull request by number (its state now).
    pub async fn get_pr(&self, number: u64) -> Result<PullRequest, ForgeError> {
        let doing = format!("reading pull request #{number}");
        let path = self.repo_path(&format!("/pulls/{number}"));
        let answer = self
            .with_retries(&doing, || self.call(Method::GET, &path, None, &doing))
            .await?;
        decode(&self.server(), &doing, answer)
    }

    /// Adds labels (idempotent: GitHub keeps each label once).
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), ForgeError> {
        let path = format!("/issues/{number}/labels");
        self.post_names(
            &format!("labelling pull request #{number}"),
            &path,
            "labels",
            labels,
        )
        .await
    }

    /// Requests reviews (idempotent).
    pub async fn request_reviewers(&self, number: u64, users: &[String]) -> Result<(), ForgeError> {
        let path = format!("/pulls/{number}/requested_reviewers");
        let doing = format!("requesting reviewers on pull request #{number}");
        self.post_names(&doing, &path, "reviewers", users).await
    }

    /// Adds assignees (idempotent).
    pub async fn add_assignees(&self, number: u64, users: &[String]) -> Result<(), ForgeError> {
        let path = format!("/issues/{number}/assignees");
        self.post_names(
            &format!("assigning pull request #{number}"),
            &path,
            "assignees",
            users,
        )
        .await
    }

    /// `POST {key: names}` to an idempotent endpoint of the repository;
    /// nothing when there are no names.
    async fn post_names(
        &self,
        doing: &str,
        path: &str,
        key: &str,
        names: &[String],
    ) -> Result<(), ForgeError> {
        if names.is_empty() {
            return Ok(());
        }
        let path = self.repo_path(path);
        let body = json!({ key: names });
        self.with_retries(doing, || self.call(Method::POST, &path, Some(&body), doing))
            .await
            .map(drop)
    }

    /// Replaces the body of an open pull request (a rerun refreshes it).
    pub async fn update_body(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        let doing = format!("updating pull request #{number}");
        let path = self.repo_path(&format!("/pulls/{number}"));
        let body = json!({ "body": body });
        self.with_retries(&doing, || {
            self.call(Method::PATCH, &path, Some(&body), &doing)
        })
        .await
        .map(drop)
    }

    /// Comments once: a comment whose body contains `marker` (a hidden
    /// HTML comment naming the incident and the event) is not posted
    /// again, and a failed post is retried only after looking whether it
    /// landed (a 502 may hide a success).
    pub async fn comment_once(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        let doing = format!("commenting on pull request #{number}");
        let path = self.repo_path(&format!("/issues/{number}/comments"));
        let payload = json!({ "body": body });
        let mut delays = self.policy.delays();
        loop {
            if let Some(existing) = self.find_comment(number, marker).await? {
                return Ok(existing);
            }
            let (error, wait) = match self.call(Method::POST, &path, Some(&payload), &doing).await {
                Ok(answer) => return decode(&self.server(), &doing, answer),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Retry { error, wait }) => (error, wait),
            };
            match next_wait(&mut delays, wait) {
                Some(wait) => {
                    tracing::warn!(error = %error, retry_in = ?wait, "{doing} failed; looking again before retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error),
            }
        }
    }

    async fn find_comment(&self, number: u64, marker: &str) -> Result<Option<Comment>, ForgeError> {
        let doing = format!("reading the comments of pull request #{number}");
        for page in 1..=COMMENT_PAGES {
            let path = self.repo_path(&format!(
                "/issues/{number}/comments?per_page=100&page={page}"
            ));
            let answer = self
                .with_retries(&doing, || self.call(Method::GET, &path, None, &doing))
                .await?;
            let comments: Vec<Comment> = decode(&self.server(), &doing, answer)?;
            let last_page = comments.len() < 100;
            if let Some(found) = comments.into_iter().find(|c| c.body.contains(marker)) {
                return Ok(Some(found));
            }
            if last_page {
                break;
            }
        }
        Ok(None)
    }
}
