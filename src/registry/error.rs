//! What can go wrong when asking a registry for a digest, and what to do
//! about it. Every variant names the registry and the image reference; none
//! carries a token, a password or an `Authorization` header.

use std::time::Duration;

/// What a 404 was about, when the registry said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The repository does not exist (`NAME_UNKNOWN`).
    Repository,
    /// The repository exists, the tag or digest does not (`MANIFEST_UNKNOWN`).
    Manifest,
    /// The registry answered 404 without saying which.
    Unknown,
}

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The tag (or digest) or the whole repository is not in the registry.
    #[error("{registry}: {} for `{reference}` — {}", missing_text(*.missing, repository), missing_hint(*.missing))]
    NotFound {
        registry: String,
        reference: String,
        repository: String,
        missing: Missing,
    },
    /// The registry (or its token service) refused us.
    #[error("{registry} refused access to `{reference}`: {reason} — {hint}")]
    Unauthorized {
        registry: String,
        reference: String,
        reason: String,
        hint: String,
    },
    /// Connection failures or server errors (5xx, 429) that outlived the
    /// retries.
    #[error(
        "{registry} is unreachable for `{reference}` after {attempts} attempt(s): {reason} — check the registry address and that it is up"
    )]
    Unreachable {
        registry: String,
        reference: String,
        attempts: u32,
        reason: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The registry or token service answered something we cannot use: a bad
    /// challenge header, a bad digest, a token response without a token, an
    /// unexpected status.
    #[error("{registry} sent an unusable answer for `{reference}`: {problem}")]
    Malformed {
        registry: String,
        reference: String,
        problem: String,
    },
    /// Credentials would travel over plain HTTP to a host that is not
    /// loopback (a registry listed in `plain_http`): refused, not sent.
    #[error("{registry}: {reason} (for `{reference}`)")]
    Insecure {
        registry: String,
        reference: String,
        reason: String,
    },
    /// One call took longer than the configured timeout.
    #[error(
        "{registry} did not answer within {timeout:?} for `{reference}` — the registry is slow or the network drops packets"
    )]
    Timeout {
        registry: String,
        reference: String,
        timeout: Duration,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the registry HTTP client: {reason}")]
    Setup {
        reason: String,
        #[source]
        source: Option<reqwest::Error>,
    },
}

impl RegistryError {
    /// The registry the error is about (`None` for [`RegistryError::Setup`]).
    pub fn registry(&self) -> Option<&str> {
        match self {
            Self::NotFound { registry, .. }
            | Self::Unauthorized { registry, .. }
            | Self::Unreachable { registry, .. }
            | Self::Malformed { registry, .. }
            | Self::Insecure { registry, .. }
            | Self::Timeout { registry, .. } => Some(registry),
            Self::Setup { .. } => None,
        }
    }
}

fn missing_text(missing: Missing, repository: &str) -> String {
    match missing {
        Missing::Repository => format!("repository `{repository}` not found"),
        Missing::Manifest => format!("no such tag or digest in `{repository}`"),
        Missing::Unknown => format!("tag or repository `{repository}` not found"),
    }
}

fn missing_hint(missing: Missing) -> &'static str {
    match missing {
        Missing::Repository => {
            "check the image name (private repositories can also answer this without credentials)"
        }
        Missing::Manifest => "check the tag; it may have been deleted or never pushed",
        Missing::Unknown => "check the image name and tag",
    }
}
