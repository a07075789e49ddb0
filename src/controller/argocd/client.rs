//! The HTTP layer of the Argo CD client: URLs, the bearer token, timeouts,
//! the retry policy, and the mapping of Argo CD's answers onto
//! [`ControllerError`].
//!
//! Retry policy (the one place it is decided): a request that never reached
//! the server (connect error) is retried for every method; GETs are also
//! retried on 5xx answers and on connections dropped mid-request. POST and
//! DELETE are not retried once sent: a sync that may have started must not
//! be started twice. Timeouts are never retried (the caller's wait would
//! multiply). Retries are bounded by [`ArgoCdOptions::max_retries`] with
//! exponential backoff between [`ArgoCdOptions::min_backoff`] and
//! [`ArgoCdOptions::max_backoff`].

use std::time::Duration;

use backon::Retryable;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::wire::{ErrorBody, code};
use super::{ArgoCdOptions, ArgoCdSetupError};
use crate::controller::{AppRef, ControllerError};

/// What a request is about, for error messages and the meaning of 403/404.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// The application list.
    List,
    /// Reading one application (or its tree): 403 is Argo CD's
    /// anti-enumeration answer for a missing app.
    ReadApp { app: AppRef },
    /// Changing one application (sync, terminate): 403 is a missing RBAC
    /// permission.
    WriteApp { app: AppRef },
    /// One live resource of an application.
    Resource { app: AppRef, what: String },
}

pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
    /// Overrides the client's request timeout (refresh blocks for long).
    pub timeout: Option<Duration>,
    pub doing: String,
    pub subject: Subject,
    /// An error answer `(HTTP status, gRPC code)` that means success here
    /// (terminating when nothing runs).
    pub accept: Option<(u16, i64)>,
}

/// A failed attempt and whether another one may help.
struct Failure {
    error: ControllerError,
    retryable: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    token: SecretString,
    server: String,
    options: ArgoCdOptions,
}

/// Parses `ARGOCD_SERVER`-style addresses: a URL, or a bare `host[:port]`
/// (what the argocd CLI takes), which means HTTPS.
pub fn server_url(raw: &str) -> Result<Url, ArgoCdSetupError> {
    let trimmed = raw.trim();
    let bad = |problem: &str| ArgoCdSetupError::BadServer {
        server: crate::redact::url_str(trimmed),
        problem: problem.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// addresses are supported"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never sent (the token is the credential) and never printed.
        tracing::warn!(
            server = %crate::redact::url(&url),
            "the Argo CD server address carries credentials (user:password@); they are ignored — put the token in ARGOCD_AUTH_TOKEN and remove them from the address"
        );
        let _ = url.set_password(None);
        let _ = url.set_username("");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

use crate::errors::chain;

impl Http {
    pub fn new(
        base: Url,
        token: SecretString,
        options: ArgoCdOptions,
    ) -> Result<Self, ArgoCdSetupError> {
        // A bearer token over plain HTTP is readable on every hop. reqwest
        // drops the Authorization header itself on a redirect to another
        // host, port or scheme.
        crate::redact::credential_transport("ARGOCD_AUTH_TOKEN", &base, None).map_err(|e| {
            ArgoCdSetupError::BadServer {
                server: crate::redact::url(&base),
                problem: e.to_string(),
            }
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("revertbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ArgoCdSetupError::Client { message: chain(&e) })?;
        let server = base.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            base,
            token,
            server,
            options,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn options(&self) -> &ArgoCdOptions {
        &self.options
    }

    /// `base/api/v1/<segments...>?<query>`; segments are percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends `req` under the retry policy; the body of a 2xx answer.
    pub async fn send(&self, req: &Request) -> Result<Vec<u8>, ControllerError> {
        let backoff = crate::retry::Policy {
            attempts: u32::try_from(self.options.max_retries)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
            min_delay: self.options.min_backoff,
            max_delay: self.options.max_backoff,
        }
        .backoff();
        let attempt = || self.attempt(req);
        attempt
            .retry(backoff)
            .when(|f: &Failure| f.retryable)
            .notify(|f: &Failure, wait: Duration| {
                tracing::warn!(
                    server = %self.server,
                    doing = %req.doing,
                    error = %f.error,
                    retry_in = ?wait,
                    "Argo CD request failed; retrying"
                );
            })
            .await
            .map_err(|f| f.error)
    }

    pub fn malformed(&self, doing: &str, message: impl Into<String>) -> ControllerError {
        ControllerError::Malformed {
            server: self.server.clone(),
            doing: doing.to_owned(),
            message: message.into(),
        }
    }

    async fn attempt(&self, req: &Request) -> Result<Vec<u8>, Failure> {
        let idempotent = req.method == Method::GET;
        let timeout = req.timeout.unwrap_or(self.options.request_timeout);
        let mut builder = self
            .client
            .request(req.method.clone(), req.url.clone())
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let transport = |e: reqwest::Error| -> Failure {
            if e.is_timeout() {
                Failure {
                    error: ControllerError::Timeout {
                        server: self.server.clone(),
                        doing: req.doing.clone(),
                        timeout,
                    },
                    retryable: false,
                }
            } else {
                Failure {
                    retryable: e.is_connect() || idempotent,
                    error: ControllerError::Unreachable {
                        server: self.server.clone(),
                        doing: req.doing.clone(),
                        // The URL (with its long `fields` query) is in the
                        // error's subject already.
                        message: chain(&e.without_url()),
                    },
                }
            }
        };
        let response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok(body);
        }
        if let Some((http, grpc)) = req.accept
            && status.as_u16() == http
            && serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.code)
                == Some(grpc)
        {
            return Ok(body);
        }
        Err(Failure {
            retryable: idempotent && status.is_server_error(),
            error: self.status_error(status, &body, req),
        })
    }

    fn status_error(&self, status: StatusCode, body: &[u8], req: &Request) -> ControllerError {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let grpc = parsed.as_ref().and_then(|b| b.code);
        let message = parsed
            .as_ref()
            .and_then(|b| b.text().map(|t| crate::redact::body(t.as_bytes())))
            .unwrap_or_else(|| {
                let s = crate::redact::body(body);
                if s.is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    s
                }
            });
        let server = self.server.clone();
        let doing = req.doing.clone();
        let http = |message: String| ControllerError::Http {
            server: self.server.clone(),
            doing: req.doing.clone(),
            status: status.as_u16(),
            message,
        };
        match (status.as_u16(), &req.subject) {
            (401, _) => ControllerError::Auth {
                server,
                doing,
                status: 401,
                credential: format!(
                    "ARGOCD_AUTH_TOKEN (Argo CD said: {message}; a revoked or expired token needs `argocd account generate-token`)"
                ),
            },
            (403, Subject::ReadApp { app }) => ControllerError::NotFound {
                server,
                what: format!(
                    "application {} that this token may read (Argo CD answers \"permission denied\" both for a missing app and for one outside the token's RBAC; check the app name, its namespace and project, and the account's `applications, get` policy)",
                    app.describe()
                ),
            },
            (403, Subject::WriteApp { app }) => ControllerError::Auth {
                server,
                doing,
                status: 403,
                credential: format!(
                    "the RBAC of the ARGOCD_AUTH_TOKEN account: it needs `applications, sync` on {}'s project",
                    app.describe()
                ),
            },
            (403, _) => ControllerError::Auth {
                server,
                doing,
                status: 403,
                credential: "the RBAC of the ARGOCD_AUTH_TOKEN account (`applications, get`)"
                    .to_owned(),
            },
            (404, Subject::ReadApp { app } | Subject::WriteApp { app })
                if grpc == Some(code::NOT_FOUND) =>
            {
                ControllerError::NotFound {
                    server,
                    what: format!("application {}", app.describe()),
                }
            }
            (404, Subject::Resource { app, what }) if grpc == Some(code::NOT_FOUND) => {
                ControllerError::NotFound {
                    server,
                    what: format!("{what} in application {}", app.describe()),
                }
            }
            (400, Subject::WriteApp { app }) if grpc == Some(code::FAILED_PRECONDITION) => {
                ControllerError::OperationInProgress {
                    app: app.describe(),
                }
            }
            (404, _) => http(format!(
                "{message} — is this the Argo CD API server (and its root path)?"
            )),
            _ => http(message),
        }
    }
}
