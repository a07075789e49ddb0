//! The forge: GitHub's REST and GraphQL APIs, for revert pull requests.
//!
//! octocrab carries the requests (`RetryConfig::None`, explicit timeouts, no
//! redirects followed); the retry policy is ours ([`rate`]): rate limits
//! and 5xx are retried with backoff, a create is retried only after looking
//! whether it happened, other 4xx are clear errors. Paths are given
//! relative to the REST base, so octocrab sends the token only to that host
//! (it drops the header for any other authority).

pub mod app_token;
pub mod auto_merge;
pub mod endpoints;
pub mod pulls;
pub mod rate;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::errors::chain as error_chain;
pub use endpoints::Endpoints;
pub use pulls::{Comment, Head, NewPullRequest, PrState, Published, PullRequest};
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

    #[error("GitHub did not turn on auto-merge for pull request #{number}: {message} — {fix}")]
    AutoMergeRefused {
        number: u64,
        refusal: auto_merge::Refusal,
        message: String,
        fix: &'static str,
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

/// One repository on one GitHub instance.
pub struct GitHub {
    /// Replaced when an App's installation token is refreshed.
    clients: std::sync::RwLock<Clients>,
    /// Set when authenticated as a GitHub App: what refreshes the token.
    app: Option<AppAuth>,
    endpoints: Endpoints,
    owner: String,
    repo: String,
    policy: crate::retry::Policy,
}

struct AppAuth {
    credentials: app_token::AppCredentials,
    expires_at: std::sync::Mutex<jiff::Timestamp>,
    /// The installation token now (git pushes need it too).
    token: std::sync::Mutex<SecretString>,
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
        let (owner, repo) = split_repository(repository)?;
        crate::redact::credential_transport("GITHUB_TOKEN", &endpoints.rest, None).map_err(
            |e| ForgeError::Setup {
                message: e.to_string(),
            },
        )?;
        crate::redact::credential_transport("GITHUB_TOKEN", &endpoints.graphql, None).map_err(
            |e| ForgeError::Setup {
                message: e.to_string(),
            },
        )?;
        let clients = Clients::new(&endpoints, token)?;
        Ok(Self {
            clients: std::sync::RwLock::new(clients),
            app: None,
            endpoints,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            policy: POLICY,
        })
    }

    /// A client authenticated as a GitHub App's installation on
    /// `repository`: the installation token is fetched now and refreshed
    /// before it expires.
    pub async fn with_app(
        endpoints: Endpoints,
        repository: &str,
        credentials: app_token::AppCredentials,
    ) -> Result<Self, ForgeError> {
        // The repository and the transport are checked before the key is used.
        let (owner, repo) = split_repository(repository)?;
        crate::redact::credential_transport("GITHUB_APP_PRIVATE_KEY", &endpoints.rest, None)
            .map_err(|e| ForgeError::Setup {
                message: e.to_string(),
            })?;
        let token = app_token::exchange(&endpoints, &credentials, owner, repo).await?;
        let mut github = Self::new(endpoints, repository, token.token.clone())?;
        github.app = Some(AppAuth {
            credentials,
            expires_at: std::sync::Mutex::new(token.expires_at),
            token: std::sync::Mutex::new(token.token),
        });
        Ok(github)
    }

    /// The GitHub App's installation token for git over HTTPS, refreshed
    /// first when it is about to expire. `None` without an App.
    pub async fn app_token(&self) -> Result<Option<SecretString>, ForgeError> {
        let Some(app) = &self.app else {
            return Ok(None);
        };
        self.refresh_if_expiring().await?;
        Ok(Some(
            app.token.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ))
    }

    /// The client to send with (cheap: octocrab clients share one pool).
    fn clients(&self) -> Clients {
        match self.clients.read() {
            Ok(clients) => clients.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces an App's installation token that expires within
    /// [`app_token::REFRESH_BEFORE`].
    async fn refresh_if_expiring(&self) -> Result<(), ForgeError> {
        let Some(app) = &self.app else {
            return Ok(());
        };
        let expires_at = *app.expires_at.lock().unwrap_or_else(|e| e.into_inner());
        let refresh_at = expires_at
            .checked_sub(
                jiff::SignedDuration::try_from(app_token::REFRESH_BEFORE).unwrap_or_default(),
            )
            .unwrap_or(expires_at);
        if jiff::Timestamp::now() < refresh_at {
            return Ok(());
        }
        // Boxed: the exchange itself goes through `call`, which comes here.
        let token = Box::pin(app_token::exchange(
            &self.endpoints,
            &app.credentials,
            &self.owner,
            &self.repo,
        ))
        .await?;
        let clients = Clients::new(&self.endpoints, token.token.clone())?;
        *app.token.lock().unwrap_or_else(|e| e.into_inner()) = token.token;
        match self.clients.write() {
            Ok(mut current) => *current = clients,
            Err(poisoned) => *poisoned.into_inner() = clients,
        }
        *app.expires_at.lock().unwrap_or_else(|e| e.into_inner()) = token.expires_at;
        Ok(())
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
        self.refresh_if_expiring().await.map_err(Attempt::Failed)?;
        let clients = self.clients();
        // octocrab puts every path under its base URI's path, absolute URLs
        // included (`/api/v3` + `/api/graphql`): GraphQL gets its own client
        // whose base is the bare origin.
        let (rest, path) = match path.strip_prefix(self.endpoints.graphql.as_str()) {
            Some("") => (clients.graphql, self.endpoints.graphql.path()),
            _ => (clients.rest, path),
        };
        let request = async {
            let response = match method {
                Method::GET => rest._get(path).await,
                Method::PATCH => rest._patch(path, body).await,
                _ => rest._post(path, body).await,
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
            let text = rest
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

fn split_repository(repository: &str) -> Result<(&str, &str), ForgeError> {
    repository
        .split_once('/')
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        .ok_or_else(|| ForgeError::Setup {
            message: format!(
                "`{repository}` is not owner/name — set github.repository or GITHUB_REPOSITORY"
            ),
        })
}

/// The clients for one token: REST under its base, GraphQL at its origin.
#[derive(Clone)]
struct Clients {
    rest: Octocrab,
    graphql: Octocrab,
}

impl Clients {
    fn new(endpoints: &Endpoints, token: SecretString) -> Result<Self, ForgeError> {
        let origin = endpoints.graphql.origin().ascii_serialization();
        Ok(Self {
            rest: build_client(endpoints.rest.as_str(), token.clone())?,
            graphql: build_client(&origin, token)?,
        })
    }
}

/// An octocrab client for the REST base with `token`: octocrab's own
/// retries off (they repeat POSTs at once), explicit timeouts.
fn build_client(base: &str, token: SecretString) -> Result<Octocrab, ForgeError> {
    crate::redact::register(token.expose_secret());
    Octocrab::builder()
        .base_uri(base)
        .map_err(|e| ForgeError::Setup {
            message: format!("the API address {base}: {e}"),
        })?
        .personal_token(token)
        .add_retry_config(RetryConfig::None)
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(READ_TIMEOUT))
        .set_write_timeout(Some(READ_TIMEOUT))
        .build()
        .map_err(|e| ForgeError::Setup {
            message: crate::redact::scrub(&e.to_string()).into_owned(),
        })
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
