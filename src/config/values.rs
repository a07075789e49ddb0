//! Parsers for the config's scalar value types: durations, percentages,
//! dotted key paths, Alertmanager matchers, names (globs: `globs.rs`).
//!
//! Each returns a [`Problem`] (message + hint) that the decoder turns into a
//! positioned diagnostic.

use std::time::Duration;

use jiff::fmt::friendly::SpanParser;
use jiff::{SignedDuration, SpanRelativeTo};

/// What is wrong with a value, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

const DURATION_HINT: &str = "write a number with a unit, like `30s`, `5m`, `1h 30m` or `1d`";

/// Parses a friendly duration (`30s`, `5m`, `1h 30m`, `2 hours`, `1d`).
/// Days count as 24 hours; months and years, whose length varies, and
/// negative durations are refused.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, Problem> {
    static PARSER: SpanParser = SpanParser::new();
    // jiff's own reason mentions units we refuse (years), so the hint
    // carries the grammar instead.
    let span = PARSER
        .parse_span(text)
        .map_err(|_| Problem::new(format!("`{text}` is not a duration"), DURATION_HINT))?;
    if span.is_negative() {
        return Err(Problem::new(
            format!("`{text}` is a negative duration"),
            "durations count forward; drop the `-` or `ago`",
        ));
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(Problem::new(
            format!("`{text}` uses months or years, which have no fixed length"),
            "use days or weeks, like `30d`",
        ));
    }
    let signed = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| Problem::new(format!("`{text}` is too long ({e})"), DURATION_HINT))?;
    Duration::try_from(signed).map_err(|_| {
        Problem::new(
            format!("`{text}` is a negative duration"),
            "durations count forward; drop the `-`",
        )
    })
}

/// Formats a duration the way the config writes it (`1h 30m`).
pub(crate) fn format_duration(d: Duration) -> String {
    match SignedDuration::try_from(d) {
        Ok(s) => format!("{s:#}"),
        // Longer than i64 seconds: not reachable from a parsed config.
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// A signed percentage such as `-3%` or `+30%`, relative to a baseline.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl Percent {
    /// The percentage as a number: `-3%` is `-3.0`.
    pub fn value(self) -> f64 {
        self.0
    }

    /// The factor to multiply a baseline by: `-3%` is `0.97`.
    pub fn factor(self) -> f64 {
        1.0 + self.0 / 100.0
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0.0 {
            write!(f, "+{}%", self.0)
        } else {
            write!(f, "{}%", self.0)
        }
    }
}

/// Parses `-3%`, `+30%`, `2.5%`.
pub(crate) fn parse_percent(text: &str) -> Result<Percent, Problem> {
    let hint = "write a signed percentage like `-3%` or `+30%`";
    let Some(number) = text.trim().strip_suffix('%') else {
        return Err(Problem::new(
            format!("`{text}` is not a percentage (it has no `%`)"),
            hint,
        ));
    };
    let number = number.trim_end();
    let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
    let well_formed = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    match number.parse::<f64>() {
        Ok(v) if well_formed && v.is_finite() => Ok(Percent(v)),
        _ => Err(Problem::new(format!("`{text}` is not a percentage"), hint)),
    }
}

/// Checks a dotted key path into Helm values, like `image.repository`.
pub(crate) fn check_key_path(path: &str) -> Result<(), Problem> {
    let hint = "write the dotted path of the key in the values file, like `image.repository`";
    if path.is_empty() {
        return Err(Problem::new("the key path is empty", hint));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(Problem::new(
            format!("key path `{path}` contains whitespace"),
            hint,
        ));
    }
    if path.split('.').any(str::is_empty) {
        return Err(Problem::new(
            format!("key path `{path}` has an empty segment"),
            hint,
        ));
    }
    Ok(())
}

/// Checks an Alertmanager label matcher: `name="value"`, with `=`, `!=`,
/// `=~` or `!~`.
pub(crate) fn check_matcher(matcher: &str) -> Result<(), Problem> {
    let hint =
        "write one matcher per item, like 'app=\"guestbook\"' (label, one of = != =~ !~, value)";
    let text = matcher.trim();
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !name_ok {
        return Err(Problem::new(
            format!("matcher `{matcher}` does not start with a label name"),
            hint,
        ));
    }
    let rest = text[name_end..].trim_start();
    let Some(value) = ["=~", "!~", "!=", "="]
        .iter()
        .find_map(|op| rest.strip_prefix(op))
    else {
        return Err(Problem::new(
            format!("matcher `{matcher}` has no operator after `{name}`"),
            hint,
        ));
    };
    let value = value.trim();
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    if value.starts_with('"') && !quoted {
        return Err(Problem::new(
            format!("matcher `{matcher}` has an unclosed quote"),
            hint,
        ));
    }
    Ok(())
}

/// Checks an app name: it becomes part of branch names
/// (`revertbot/<app>/<sha>`) and commit trailers.
pub(crate) fn check_app_name(name: &str) -> Result<(), Problem> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.ends_with(".lock")
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            format!("app name `{name}` has characters that cannot go into a branch name"),
            "use letters, digits, `-`, `_` and `.`, starting with a letter or digit; it becomes part of the branch `revertbot/<app>/<sha>`",
        ))
    }
}

/// Checks a branch name against git's ref-name rules (short form).
pub(crate) fn check_branch(branch: &str) -> Result<(), Problem> {
    let hint = "write the short branch name the controller deploys from, like `main`";
    if let Some(short) = branch.strip_prefix("refs/heads/") {
        return Err(Problem::new(
            format!("`{branch}` is a full ref name"),
            format!("write the short name `{short}`"),
        ));
    }
    let bad = branch.is_empty()
        || branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(Problem::new(
            format!("`{branch}` is not a valid branch name"),
            hint,
        ));
    }
    Ok(())
}

/// Checks an `http://` or `https://` URL.
pub(crate) fn check_url(url: &str) -> Result<(), Problem> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        Some(_) => Err(Problem::new(
            format!("`{url}` has no host"),
            "write a full URL like `https://argocd.example.com`",
        )),
        None if url.contains("://") => Err(Problem::new(
            format!("`{url}` is not an http:// or https:// URL"),
            "revertbot talks HTTP: use an `http://` or `https://` URL",
        )),
        None => Err(Problem::new(
            format!("`{url}` is not an http:// or https:// URL"),
            format!("add the scheme: `https://{}`", url.trim_start_matches('/')),
        )),
    }
}

/// A GitHub login (user or bot): letters, digits and single hyphens, at
/// most 39 characters, as GitHub allows.
pub(crate) fn check_github_login(login: &str) -> Result<(), Problem> {
    let ok = !login.is_empty()
        && login.len() <= 39
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{login}` is not a GitHub login"),
            "write the user's login as on their profile, like `octocat` (no `@`; teams are not supported here)",
        ))
    }
}

/// A GitHub label name: 1 to 50 characters, no control characters.
pub(crate) fn check_github_label(label: &str) -> Result<(), Problem> {
    let trimmed = label.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 50 || label.chars().any(char::is_control) {
        Err(Problem::new(
            format!("`{label}` is not a GitHub label name"),
            "a label is 1 to 50 characters on one line, like `revertbot`",
        ))
    } else {
        Ok(())
    }
}

/// Checks `owner/name`.
pub(crate) fn check_github_repository(repo: &str) -> Result<(), Problem> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok(()),
        _ => Err(Problem::new(
            format!("`{repo}` is not a GitHub repository"),
            "write `owner/name`, like `acme/infra`",
        )),
    }
}

/// Checks a Slack channel: `#name` or a channel ID like `C0123ABCD`.
pub(crate) fn check_slack_channel(channel: &str) -> Result<(), Problem> {
    let hint = "write \"#deploys\" (quoted: an unquoted `#` starts a YAML comment) or a channel ID like `C0123ABCD`";
    if let Some(name) = channel.strip_prefix('#') {
        let ok = !name.is_empty()
            && name.chars().count() <= 80
            && name
                .chars()
                .all(|c| c.is_lowercase() || c.is_numeric() || "-_".contains(c));
        return if ok {
            Ok(())
        } else {
            Err(Problem::new(
                format!("`{channel}` is not a Slack channel name"),
                "channel names are lowercase letters, digits, `-` and `_`",
            ))
        };
    }
    if is_slack_id(channel, &['C', 'G', 'D']) {
        return Ok(());
    }
    Err(Problem::new(
        format!("`{channel}` is neither a `#channel` name nor a channel ID"),
        hint,
    ))
}

/// Checks a Slack member ID like `U0123ABCD`.
pub(crate) fn check_slack_user(user: &str) -> Result<(), Problem> {
    if is_slack_id(user, &['U', 'W']) {
        Ok(())
    } else {
        Err(Problem::new(
            format!("`{user}` is not a Slack member ID"),
            "use member IDs like `U0123ABCD` (profile → ⋮ → Copy member ID), not names",
        ))
    }
}

fn is_slack_id(text: &str, prefixes: &[char]) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| prefixes.contains(&c))
        && text.len() >= 7
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_jiff_friendly_format() {
        let ok = [
            ("30s", 30),
            ("2m", 120),
            ("5m", 300),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("5 minutes", 300),
            ("2 hours, 15 minutes", 8100),
            ("24h", 86_400),
            ("1d", 86_400),
            ("1w", 604_800),
            ("0s", 0),
        ];
        for (text, secs) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in [
            "5x",
            "5",
            "",
            "-5m",
            "5m ago",
            "PT5M",
            "1 month",
            "1y",
            "five minutes",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.message.contains(&format!("`{bad}`")), "{bad}: {err:?}");
            assert!(err.hint.is_some());
        }
        assert_eq!(
            parse_duration("5x").unwrap_err().message,
            "`5x` is not a duration"
        );
    }

    #[test]
    fn durations_format_back_to_the_friendly_form() {
        for text in ["30s", "2m", "1h 30m", "24h", "10m"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("-3%"), Ok(Percent(-3.0)));
        assert_eq!(parse_percent("+30%"), Ok(Percent(30.0)));
        assert_eq!(parse_percent("2.5%"), Ok(Percent(2.5)));
        assert_eq!(parse_percent("-3 %"), Ok(Percent(-3.0)));
        for bad in [
            "-3", "%", "x%", "--3%", "1e3%", "inf%", "NaN%", "3.%.", "+%", "1.2.3%",
        ] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        assert_eq!(Percent(-3.0).to_string(), "-3%");
        assert_eq!(Percent(30.0).to_string(), "+30%");
        assert!((Percent(-3.0).factor() - 0.97).abs() < 1e-12);
    }

    #[test]
    fn small_checks() {
        assert!(check_key_path("image.repository").is_ok());
        assert!(check_key_path("image..tag").is_err());
        assert!(check_key_path(".tag").is_err());
        assert!(check_matcher("app=\"guestbook\"").is_ok());
        assert!(check_matcher("severity=~\"crit.*\"").is_ok());
        assert!(check_matcher("env != prod").is_ok());
        assert!(check_matcher("=x").is_err());
        assert!(check_matcher("app").is_err());
        assert!(check_matcher("app=\"x").is_err());
        assert!(check_app_name("guestbook").is_ok());
        assert!(check_app_name("shop.v2_a-b").is_ok());
        assert!(check_app_name("-x").is_err());
        assert!(check_app_name("a b").is_err());
        assert!(check_branch("main").is_ok());
        assert!(check_branch("release/2024").is_ok());
        assert!(check_branch("refs/heads/main").is_err());
        assert!(check_branch("a..b").is_err());
        assert!(check_url("https://argocd.example.com").is_ok());
        assert!(check_url("http://prometheus.monitoring:9090").is_ok());
        assert!(check_url("argocd.example.com").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_github_repository("acme/infra").is_ok());
        assert!(check_github_login("octocat").is_ok());
        assert!(check_github_login("dependabot-bot").is_ok());
        assert!(check_github_login("@octocat").is_err());
        assert!(check_github_login("acme/sre").is_err());
        assert!(check_github_login("a--b").is_err());
        assert!(check_github_login(&"x".repeat(40)).is_err());
        assert!(check_github_label("revertbot").is_ok());
        assert!(check_github_label("incident: rollback").is_ok());
        assert!(check_github_label(" ").is_err());
        assert!(check_github_label("two\nlines").is_err());
        assert!(check_github_label(&"x".repeat(51)).is_err());
        assert!(check_github_repository("acme").is_err());
        assert!(check_github_repository("a/b/c").is_err());
        assert!(check_slack_channel("#deploys").is_ok());
        assert!(check_slack_channel("C0123ABCD").is_ok());
        assert!(check_slack_channel("deploys").is_err());
        assert!(check_slack_channel("#Deploys").is_err());
        assert!(check_slack_user("U0123ABCD").is_ok());
        assert!(check_slack_user("@alice").is_err());
    }
}
