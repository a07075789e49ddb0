//! When to try a GitHub call again: pure, over the status, the headers
//! that matter and the error message.
//!
//! GitHub's rules (docs "Rate limits for the REST API", and
//! `../shared/fixtures/NOTES.md`): a primary limit is a 403 or 429 with
//! `x-ratelimit-remaining: 0` — wait until `x-ratelimit-reset` (epoch
//! seconds). A secondary limit is a 403 or 429 whose message says so
//! ("secondary rate limit", older "abuse detection") — wait `retry-after`
//! seconds when given, else at least a minute. 5xx is transient. Anything
//! else is the caller's error and is not retried.

use std::time::Duration;

/// The facts of one answer that decide a retry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub ratelimit_remaining: Option<&'a str>,
    pub ratelimit_reset: Option<&'a str>,
    pub message: &'a str,
}

/// What to do after an answer that was not a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this long (at least; the caller may add backoff).
    After(Duration),
    /// Try again after the caller's own backoff (5xx, transport).
    Backoff,
    /// Do not: the request itself is wrong, or not allowed.
    Never,
}

/// The shortest wait for a secondary limit without `retry-after`.
pub const SECONDARY_DEFAULT: Duration = Duration::from_secs(60);

/// Decides a retry; `now` is the epoch second (for `x-ratelimit-reset`).
pub fn decide(answer: &Answer<'_>, now: u64) -> Retry {
    let limited_status = matches!(answer.status, 403 | 429);
    let retry_after = answer
        .retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let message = answer.message.to_ascii_lowercase();
    let secondary = message.contains("secondary rate limit") || message.contains("abuse detection");
    if limited_status && secondary {
        return Retry::After(retry_after.unwrap_or(SECONDARY_DEFAULT));
    }
    if limited_status && answer.ratelimit_remaining.map(str::trim) == Some("0") {
        let reset = answer
            .ratelimit_reset
            .and_then(|v| v.trim().parse::<u64>().ok());
        return Retry::After(match (retry_after, reset) {
            (Some(after), _) => after,
            (None, Some(reset)) => Duration::from_secs(reset.saturating_sub(now).max(1)),
            (None, None) => SECONDARY_DEFAULT,
        });
    }
    if answer.status == 429 {
        return Retry::After(retry_after.unwrap_or(SECONDARY_DEFAULT));
    }
    if (500..600).contains(&answer.status) {
        return match retry_after {
            Some(after) => Retry::After(after),
            None => Retry::Backoff,
        };
    }
    Retry::Never
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer<'static> {
        Answer {
            status,
            ..Answer::default()
        }
    }

    #[test]
    fn the_documented_cases() {
        // The recorded secondary limit (fixtures/github/secondary-rate-limit-403.json).
        let secondary = Answer {
            status: 403,
            retry_after: Some("30"),
            message: "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
            ..Answer::default()
        };
        assert_eq!(decide(&secondary, 0), Retry::After(Duration::from_secs(30)));
        let no_header = Answer {
            retry_after: None,
            ..secondary.clone()
        };
        assert_eq!(decide(&no_header, 0), Retry::After(SECONDARY_DEFAULT));
        let abuse = Answer {
            status: 403,
            message: "You have triggered an abuse detection mechanism.",
            ..Answer::default()
        };
        assert_eq!(decide(&abuse, 0), Retry::After(SECONDARY_DEFAULT));
        let primary = Answer {
            status: 403,
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("1000"),
            message: "API rate limit exceeded",
            ..Answer::default()
        };
        assert_eq!(decide(&primary, 990), Retry::After(Duration::from_secs(10)));
        // A reset already passed still waits a moment.
        assert_eq!(decide(&primary, 2000), Retry::After(Duration::from_secs(1)));
        assert_eq!(decide(&answer(502), 0), Retry::Backoff);
        assert_eq!(decide(&answer(429), 0), Retry::After(SECONDARY_DEFAULT));
        // A plain 403 is a permission problem, never retried.
        let forbidden = Answer {
            status: 403,
            ratelimit_remaining: Some("4999"),
            message: "Resource not accessible by integration",
            ..Answer::default()
        };
        assert_eq!(decide(&forbidden, 0), Retry::Never);
        for status in [400, 401, 404, 409, 422] {
            assert_eq!(decide(&answer(status), 0), Retry::Never, "{status}");
        }
    }
}
