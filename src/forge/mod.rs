//! The forge: GitHub's REST and GraphQL APIs, for revert pull requests.
//!
//! octocrab carries the requests (`RetryConfig::None`, explicit timeouts, no
//! redirects followed); the retry policy is ours ([`rate`]): rate limits
//! and 5xx are retried with backoff, a create is retried only after looking
//! whether it happened, other 4xx are clear errors. Paths are given
//! relative to the REST base, so octocrab sends the token only to that host
//! (it drops the header for any other authority).

pub mod endpoints;
pub mod rate;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::chain as error_chain;
pub use endpoints::Endpoints;
use rate::{Answer, Retry};

/// How long one request may take, in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A rate-limit wait longer than this is not waited out: the run reports it.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// How much of an error body an error quotes.
const QUOTE: usize = 300;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ForgeError {
    #[error("GitHub client: {message}")]
    Setup { message: String },

    #[error(
        "cannot reach GitHub ({server}) while {doing}: {message} — check the API address and network"
    )]
    Unreachable {
        server: String,
        doing: String,
        message: String,
    },

    #[error(
        "GitHub ({server}) refused the token while {doing} (HTTP {status}): {message} — check that GITHUB_TOKEN may {needs}"
    )]
    Denied {
        server: String,
        doing: String,
        status: u16,
        message: String,
        needs: String,
    },

    #[error("GitHub ({server}) answered HTTP {status} while {doing}: {message}")]
    Http {
        server: String,
        doing: String,
        status: u16,
        message: String,
    },

    #[error(
        "GitHub ({server}) rate-limits revertbot while {doing}: it asks to wait {wait:?}, longer than revertbot waits — run again later"
    )]
    RateLimited {
        server: String,
        doing: String,
        wait: Duration,
    },

    #[error(
        "GitHub ({server}) answered while {doing}, but with nothing revertbot can use: {message}"
    )]
    Malformed {
        server: String,
        doing: String,
        message: String,
    },
}

/// An open pull request, as revertbot needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    /// GraphQL needs it (auto-merge).
    pub node_id: String,
    pub html_url: String,
    pub head: Head,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A pull request revertbot asked for: opened now, or found open already
/// (a rerun, a repeated alert, a racing run).
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

/// One repository on one GitHub instance.
pub struct GitHub {
    rest: Octocrab,
    endpoints: Endpoints,
    owner: String,
    repo: String,
    policy: crate::retry::Policy,
}

/// Failed attempts of one call before it gives up.
pub const POLICY: crate::retry::Policy = crate::retry::Policy {
    attempts: 4,
    min_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(8),
};

impl GitHub {
    /// A client for `repository` (`owner/name`) with a plain token. The token
    /// is refused for plain http to a host that is not loopback.
    pub fn new(
        endpoints: Endpoints,
        repository: &str,
        token: SecretString,
    ) -> Result<Self, ForgeError> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| ForgeError::Setup {
                message: format!(
                    "`{repository}` is not owner/name — set github.repository or GITHUB_REPOSITORY"
                ),
            })?;
        crate::redact::credential_transport("GITHUB_TOKEN", &endpoints.rest, None).map_err(
            |e| ForgeError::Setup {
                message: e.to_string(),
            },
        )?;
        crate::redact::register(token.expose_secret());
        let rest = Octocrab::builder()
            .base_uri(endpoints.rest.as_str())
            .map_err(|e| ForgeError::Setup {
                message: format!("the API address {}: {e}", endpoints.rest),
            })?
            .personal_token(token)
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .set_write_timeout(Some(READ_TIMEOUT))
            .build()
            .map_err(|e| ForgeError::Setup {
                message: crate::redact::scrub(&e.to_string()).into_owned(),
            })?;
        Ok(Self {
            rest,
            endpoints,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            policy: POLICY,
        })
    }

    /// A client with a shorter retry policy (tests).
    pub fn with_policy(mut self, policy: crate::retry::Policy) -> Self {
        self.policy = policy;
        self
    }

    fn server(&self) -> String {
        self.endpoints
            .rest
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.repo)
    }

    /// The open pull request whose head is `branch` of this repository.
    pub async fn find_open_pr(&self, branch: &str) -> Result<Option<PullRequest>, ForgeError> {
        let doing = format!("looking for an open pull request from {branch}");
        let path = self.repo_path(&format!(
            "/pulls?state=open&head={}",
            query_escape(&format!("{}:{branch}", self.owner))
        ));
        let answer = self
            .with_retries(&doing, || self.call(Method::GET, &path, None, &doing))
            .await?;
        let prs: Vec<PullRequest> = decode(&self.server(), &doing, answer)?;
        Ok(prs.into_iter().find(|pr| pr.head.branch == branch))
    }

    /// Opens the pull request, unless one from the same branch is open
    /// already: looked up first, looked up again after a failed attempt
    /// before trying again (a 502 may hide a success), and after GitHub's
    /// 422 "already exists" (a racing run won). Never two pull requests.
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
            if let Some(pr) = self.find_open_pr(new.head).await? {
                return Ok(Published::Existing(pr));
            }
            let (error, wait) = match self.call(Method::POST, &path, Some(&body), &doing).await {
                Ok(answer) => {
                    return decode(&self.server(), &doing, answer).map(Published::Opened);
                }
                // A racing run opened it: the next lookup finds it.
                Err(Attempt::Failed(e)) if already_exists(&e) => (e, Some(Duration::ZERO)),
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

    /// Adds labels (idempotent: GitHub keeps each label once).
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), ForgeError> {
        if labels.is_empty() {
            return Ok(());
        }
        let doing = format!("labelling pull request #{number}");
        let path = self.repo_path(&format!("/issues/{number}/labels"));
        let body = json!({ "labels": labels });
        self.with_retries(&doing, || {
            self.call(Method::POST, &path, Some(&body), &doing)
        })
        .await
        .map(drop)
    }

    /// Requests reviews (idempotent).
    pub async fn request_reviewers(&self, number: u64, users: &[String]) -> Result<(), ForgeError> {
        if users.is_empty() {
            return Ok(());
        }
        let doing = format!("requesting reviewers on pull request #{number}");
        let path = self.repo_path(&format!("/pulls/{number}/requested_reviewers"));
        let body = json!({ "reviewers": users });
        self.with_retries(&doing, || {
            self.call(Method::POST, &path, Some(&body), &doing)
        })
        .await
        .map(drop)
    }

    /// Adds assignees (idempotent).
    pub async fn add_assignees(&self, number: u64, users: &[String]) -> Result<(), ForgeError> {
        if users.is_empty() {
            return Ok(());
        }
        let doing = format!("assigning pull request #{number}");
        let path = self.repo_path(&format!("/issues/{number}/assignees"));
        let body = json!({ "assignees": users });
        self.with_retries(&doing, || {
            self.call(Method::POST, &path, Some(&body), &doing)
        })
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

    /// Retries an idempotent call per the policy and GitHub's headers.
    async fn with_retries<F, Fut>(&self, doing: &str, call: F) -> Result<Value, ForgeError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Value, Attempt>>,
    {
        let mut delays = self.policy.delays();
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Retry { error, wait }) => match next_wait(&mut delays, wait) {
                    Some(wait) => {
                        tracing::warn!(error = %error, retry_in = ?wait, "{doing} failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    /// One request: the JSON answer, or why not and whether to try again.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        doing: &str,
    ) -> Result<Value, Attempt> {
        let server = self.server();
        let unreachable = |message: String| Attempt::Retry {
            error: ForgeError::Unreachable {
                server: server.clone(),
                doing: doing.to_owned(),
                message: crate::redact::scrub(&message).into_owned(),
            },
            wait: None,
        };
        let request = async {
            let response = match method {
                Method::GET => self.rest._get(path).await,
                Method::PATCH => self.rest._patch(path, body).await,
                _ => self.rest._post(path, body).await,
            }
            .map_err(|e| unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (retry_after, remaining, reset) = (
                header("retry-after"),
                header("x-ratelimit-remaining"),
                header("x-ratelimit-reset"),
            );
            let text = self
                .rest
                .body_to_string(response)
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            Ok::<_, Attempt>((status, retry_after, remaining, reset, text))
        };
        let (status, retry_after, remaining, reset, text) =
            match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
                Ok(done) => done?,
                Err(_) => {
                    return Err(unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")));
                }
            };
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| {
                Attempt::Failed(ForgeError::Malformed {
                    server: server.clone(),
                    doing: doing.to_owned(),
                    message: format!("not JSON ({e})"),
                })
            });
        }
        let message = error_message(&text);
        let answer = Answer {
            status,
            retry_after: retry_after.as_deref(),
            ratelimit_remaining: remaining.as_deref(),
            ratelimit_reset: reset.as_deref(),
            message: &message,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let error = match status {
            401 | 403 => ForgeError::Denied {
                server: server.clone(),
                doing: doing.to_owned(),
                status,
                message: message.clone(),
                needs: "write contents and pull requests of the repository".to_owned(),
            },
            _ => ForgeError::Http {
                server: server.clone(),
                doing: doing.to_owned(),
                status,
                message: message.clone(),
            },
        };
        match rate::decide(&answer, now) {
            Retry::Never => Err(Attempt::Failed(error)),
            Retry::Backoff => Err(Attempt::Retry { error, wait: None }),
            Retry::After(wait) if wait > MAX_WAIT => {
                Err(Attempt::Failed(ForgeError::RateLimited {
                    server,
                    doing: doing.to_owned(),
                    wait,
                }))
            }
            Retry::After(wait) => {
                let error = match status {
                    403 | 429 => ForgeError::Http {
                        server,
                        doing: doing.to_owned(),
                        status,
                        message,
                    },
                    _ => error,
                };
                Err(Attempt::Retry {
                    error,
                    wait: Some(wait),
                })
            }
        }
    }
}

/// GitHub's 422 for a second pull request from the same head.
fn already_exists(e: &ForgeError) -> bool {
    matches!(e, ForgeError::Http { status: 422, message, .. }
        if message.to_ascii_lowercase().contains("already exists"))
}

/// The outcome of one failed attempt.
enum Attempt {
    Failed(ForgeError),
    /// Worth another attempt, after `wait` (GitHub's) or the policy's delay.
    Retry {
        error: ForgeError,
        wait: Option<Duration>,
    },
}

/// The wait before the next attempt: GitHub's, at least the policy's
/// backoff; `None` when the attempts are spent.
fn next_wait(
    delays: &mut impl Iterator<Item = Duration>,
    asked: Option<Duration>,
) -> Option<Duration> {
    let backoff = delays.next()?;
    Some(asked.map_or(backoff, |a| a.max(backoff)))
}

/// GitHub's error text: `message`, and the first of `errors[].message`.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let text = match &parsed {
        Some(v) => {
            let message = v["message"].as_str().unwrap_or_default();
            let detail = v["errors"]
                .as_array()
                .and_then(|errors| errors.iter().find_map(|e| e["message"].as_str()));
            match detail {
                Some(d) if !message.is_empty() => format!("{message}: {d}"),
                Some(d) => d.to_owned(),
                None if !message.is_empty() => message.to_owned(),
                None => body.trim().to_owned(),
            }
        }
        None => body.trim().to_owned(),
    };
    let text = crate::redact::scrub(&text).into_owned();
    if text.len() <= QUOTE {
        return text;
    }
    let mut end = QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn decode<T: serde::de::DeserializeOwned>(
    server: &str,
    doing: &str,
    value: Value,
) -> Result<T, ForgeError> {
    serde_json::from_value(value).map_err(|e| ForgeError::Malformed {
        server: server.to_owned(),
        doing: doing.to_owned(),
        message: e.to_string(),
    })
}

/// Escapes a query value (`owner:branch` with `/` in the branch).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_quote_github_once_and_briefly() {
        let exists = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:revertbot/web/abc."}],"documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(
            error_message(exists),
            "Validation Failed: A pull request already exists for acme:revertbot/web/abc."
        );
        assert_eq!(
            error_message("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert!(error_message(&"x".repeat(1000)).ends_with('…'));
        assert_eq!(
            query_escape("acme:revertbot/web/abc"),
            "acme:revertbot%2Fweb%2Fabc"
        );
    }
}
