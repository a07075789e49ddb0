//! Which digest each tag the PR introduces points at now, from the
//! registry. Never fails: a registry that is down, refuses the credentials
//! or does not answer in time gives [`Resolution::Unavailable`] with the
//! reason, which becomes a finding — never a silent pass.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

use crate::domain::{Digest, ImageRef};
use crate::registry::{Registry, RegistryConfig, RegistryError};

/// Registry calls in flight at once.
const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Resolved(Digest),
    /// The registry says the tag (or repository) does not exist.
    NotFound(String),
    /// No answer to rely on: unreachable, refused, malformed, timed out, or
    /// not asked (a bound); the reason says which.
    Unavailable(String),
}

/// Resolves each tag (keyed by the reference as written), at most `max` of
/// them, all within `budget`.
pub async fn resolve_all(
    tags: Vec<ImageRef>,
    max: usize,
    budget: Duration,
) -> HashMap<String, Resolution> {
    let mut out = HashMap::new();
    let registry = match Registry::new(RegistryConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            for tag in tags {
                out.insert(
                    tag.original().to_owned(),
                    Resolution::Unavailable(e.to_string()),
                );
            }
            return out;
        }
    };
    let (asked, skipped) = tags.split_at(tags.len().min(max));
    for tag in skipped {
        out.insert(
            tag.original().to_owned(),
            Resolution::Unavailable(format!(
                "not asked: the pull request introduces more than {max} distinct tags, preflight's bound"
            )),
        );
    }
    let deadline = tokio::time::Instant::now() + budget;
    let mut answers = futures::stream::iter(asked.iter().cloned())
        .map(|tag| {
            let registry = registry.clone();
            async move {
                let answer = registry.resolve(&tag).await;
                (tag, answer)
            }
        })
        .buffer_unordered(CONCURRENCY);
    loop {
        match tokio::time::timeout_at(deadline, answers.next()).await {
            Ok(Some((tag, answer))) => {
                out.insert(tag.original().to_owned(), classify(answer));
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    for tag in asked {
        out.entry(tag.original().to_owned()).or_insert_with(|| {
            Resolution::Unavailable(format!(
                "no answer within preflight's registry budget of {}s",
                budget.as_secs()
            ))
        });
    }
    out
}

fn classify(answer: Result<Digest, RegistryError>) -> Resolution {
    match answer {
        Ok(digest) => Resolution::Resolved(digest),
        Err(e @ RegistryError::NotFound { .. }) => Resolution::NotFound(e.to_string()),
        Err(e) => Resolution::Unavailable(e.to_string()),
    }
}
