//! The one place Flux's calls get their timeout and retry policy, and where
//! `kube::Error` becomes [`ControllerError`].
//!
//! kube's own retry layer (`Config::default_retry`, 15 exponential retries of
//! 429/503/504) is switched off when the client is built, so the policy here
//! is the only one: each attempt is cut off after `request_timeout`; 5xx,
//! 429, connection failures and timeouts are retried up to `attempts` times in
//! all with a short exponential backoff; everything else fails at once. The
//! worst case for one call is therefore `attempts × request_timeout` plus the
//! backoff sleeps.

use std::future::Future;
use std::time::Duration;

use backon::Retryable;

use super::FluxOptions;
use crate::controller::ControllerError;

/// What one attempt ended with, before mapping.
#[derive(Debug)]
pub(crate) enum Failure {
    Kube(kube::Error),
    TimedOut,
}

impl Failure {
    /// Worth another attempt: the server or the network, not the request.
    fn retryable(&self) -> bool {
        match self {
            Failure::TimedOut => true,
            Failure::Kube(kube::Error::Api(status)) => status.code >= 500 || status.code == 429,
            Failure::Kube(kube::Error::HyperError(_) | kube::Error::Service(_)) => true,
            Failure::Kube(_) => false,
        }
    }
}

/// Context for messages: which server, what we were doing, what object.
pub(crate) struct Doing<'a> {
    pub server: &'a str,
    pub doing: String,
    /// The object, for NotFound (`Kustomization default/podinfo`).
    pub what: String,
}

/// Runs `attempt` under the retry policy and maps the final failure.
pub(crate) async fn call<T, F, Fut>(
    options: &FluxOptions,
    doing: &Doing<'_>,
    mut attempt: F,
) -> Result<T, ControllerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let timeout = options.request_timeout;
    let backoff = crate::retry::Policy {
        attempts: options.attempts,
        min_delay: options.retry_min_delay,
        max_delay: options.retry_max_delay,
    }
    .backoff();
    let once = || {
        let fut = attempt();
        async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) if timed_out(&e) => Err(Failure::TimedOut),
                Ok(Err(e)) => Err(Failure::Kube(e)),
                Err(_) => Err(Failure::TimedOut),
            }
        }
    };
    once.retry(backoff)
        .when(Failure::retryable)
        .notify(|failure: &Failure, wait: Duration| {
            tracing::debug!(server = doing.server, doing = %doing.doing, ?failure, ?wait, "retrying a Kubernetes API call");
        })
        .await
        .map_err(|failure| map_failure(failure, doing, timeout))
}

/// kube's own connect/read timeouts (the backstop set in
/// [`super::Flux::from_config`]) surface as an `io::ErrorKind::TimedOut`
/// somewhere in the source chain.
fn timed_out(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// `kube::Error` → `ControllerError`, with a next step in each message.
pub(crate) fn map_failure(
    failure: Failure,
    doing: &Doing<'_>,
    timeout: Duration,
) -> ControllerError {
    let server = doing.server.to_owned();
    let what = doing.doing.clone();
    let error = match failure {
        Failure::TimedOut => {
            return ControllerError::Timeout {
                server,
                doing: what,
                timeout,
            };
        }
        Failure::Kube(e) => e,
    };
    match error {
        kube::Error::Api(status) => match status.code {
            401 | 403 => ControllerError::Auth {
                server,
                doing: what,
                status: status.code,
                credential: if status.code == 401 {
                    "the credentials of KUBECONFIG's current context (or the in-cluster service account token)".to_owned()
                } else {
                    format!(
                        "RBAC: revertbot needs get/list on Flux Kustomizations, HelmReleases and sources, patch on them to request a reconcile, and get/list on pods, deployments, replicasets, statefulsets and daemonsets ({})",
                        crate::redact::body(status.message.as_bytes())
                    )
                },
            },
            404 => ControllerError::NotFound {
                server,
                what: format!(
                    "{} ({}; is Flux installed and the name right?)",
                    doing.what,
                    crate::redact::body(status.message.as_bytes())
                ),
            },
            code => ControllerError::Http {
                server,
                doing: what,
                status: code,
                message: status_message(&status),
            },
        },
        kube::Error::SerdeError(e) => ControllerError::Malformed {
            server,
            doing: what,
            message: e.to_string(),
        },
        kube::Error::FromUtf8(e) => ControllerError::Malformed {
            server,
            doing: what,
            message: e.to_string(),
        },
        other => ControllerError::Unreachable {
            server,
            doing: what,
            message: error_chain(&other),
        },
    }
}

/// The API server's own words, on one capped, scrubbed line (a proxy in
/// front of it may answer with a whole page, or echo our headers).
fn status_message(status: &kube::core::Status) -> String {
    let text = match (status.reason.is_empty(), status.message.is_empty()) {
        (false, false) => format!("{}: {}", status.reason, status.message),
        (true, false) => status.message.clone(),
        (false, true) => status.reason.clone(),
        (true, true) => "no message".to_owned(),
    };
    crate::redact::body(text.as_bytes())
}

pub(crate) use crate::errors::chain as error_chain;

/// A copy of an error, for an error shared by several apps (one failed list
/// call).
pub(crate) fn duplicate(error: &ControllerError) -> ControllerError {
    error.clone()
}
