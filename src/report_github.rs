//! The run report for GitHub Actions: step outputs (`$GITHUB_OUTPUT`), a
//! Markdown job summary (`$GITHUB_STEP_SUMMARY`) and `::error::` /
//! `::warning::` annotations on stderr. stdout stays exactly the report,
//! so `--output json` is still one JSON document.
//!
//! Everything in a report can come from the infra repo (commit subjects,
//! file names, image references, reasons quoting them): workflow-command
//! data goes through [`workflow_commands`], Markdown through [`cell`], and a
//! value is only made a link when it has the exact shape of a link target.
//!
//! `decision` for a run over several apps is the most significant action
//! across them, in [`RANK`] order: what changed the infra repo first, then
//! what needs a person, then what only observed. `incident`, `revert-sha`
//! and `pr-url` come from the first app (in report order) whose action is
//! the decision.

use std::fmt::Write as _;

use crate::report::{Action, AppReport, Report, Verdict};
use crate::workflow_commands::{self, Annotation, Level};

/// Actions from most to least significant; `decision` is the first of
/// these that any app took.
pub const RANK: [Action; 9] = [
    Action::Pushed,
    Action::PrOpened,
    Action::PrUpdated,
    Action::AwaitingApproval,
    Action::Blocked,
    Action::Confirming,
    Action::DryRun,
    Action::Recorded,
    Action::None,
];

/// GitHub caps a step's summary at 1 MiB; past this the summary is cut.
const SUMMARY_LIMIT: usize = 1000 * 1024;
/// Step outputs share a 1 MiB budget per job: a bigger report is left out
/// (it is on stdout anyway).
const REPORT_OUTPUT_LIMIT: usize = 768 * 1024;
/// Apps listed in the overview table before the rest is summed up.
const OVERVIEW_ROWS: usize = 200;

/// Where links in the summary point: `$GITHUB_SERVER_URL` and
/// `$GITHUB_REPOSITORY`, when both look like what GitHub sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    repo_url: Option<String>,
}

impl Links {
    pub fn new(server_url: Option<&str>, repository: Option<&str>) -> Self {
        let repo_url = match (server_url, repository) {
            (Some(server), Some(repo)) if is_link(server) && is_repository(repo) => {
                Some(format!("{}/{repo}", server.trim_end_matches('/')))
            }
            _ => None,
        };
        Self { repo_url }
    }

    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok();
        Self::new(
            var("GITHUB_SERVER_URL").as_deref(),
            var("GITHUB_REPOSITORY").as_deref(),
        )
    }

    fn commit(&self, sha: &str) -> String {
        match &self.repo_url {
            Some(repo) if is_sha(sha) => format!("[`{}`]({repo}/commit/{sha})", short(sha)),
            _ => code(sha),
        }
    }
}

/// The step outputs, in the order they are written.
pub fn outputs(report: &Report, exit_code: u8) -> Vec<(&'static str, String)> {
    let decision = decision(report);
    let decider = report.apps.iter().find(|a| a.action == decision);
    let field =
        |f: fn(&AppReport) -> Option<&String>| decider.and_then(f).cloned().unwrap_or_default();
    let mut out = vec![
        ("decision", action_name(decision).to_owned()),
        ("incident", field(|a| a.incident.as_ref())),
        ("revert-sha", field(|a| a.revert_commit.as_ref())),
        ("pr-url", field(|a| a.pr_url.as_ref())),
        ("healthy", healthy(report).to_owned()),
        ("exit-code", exit_code.to_string()),
    ];
    if let Some(json) = report_json(report) {
        out.push(("report", json));
    }
    out
}

/// The most significant action any app took ([`RANK`]); `none` for no apps.
pub fn decision(report: &Report) -> Action {
    RANK.into_iter()
        .find(|rank| report.apps.iter().any(|a| a.action == *rank))
        .unwrap_or(Action::None)
}

/// `true` when every app ends healthy (judged Healthy, or its revert
/// confirmed Healthy), `false` when any does not (a breach not yet
/// reverted, a revert not confirmed), empty when some app was not judged
/// and none is known to be unhealthy (`plan`, `record --revision`).
pub fn healthy(report: &Report) -> &'static str {
    let mut unknown = report.apps.is_empty();
    for app in &report.apps {
        match app_healthy(app) {
            Some(false) => return "false",
            Some(true) => {}
            None => unknown = true,
        }
    }
    if unknown { "" } else { "true" }
}

fn app_healthy(app: &AppReport) -> Option<bool> {
    if app.healthy_confirmed {
        return Some(true);
    }
    if matches!(app.action, Action::Pushed | Action::Confirming) {
        return Some(false);
    }
    match app.verdict {
        Verdict::Healthy => Some(true),
        Verdict::Breach => Some(false),
        Verdict::Unknown => None,
    }
}

fn report_json(report: &Report) -> Option<String> {
    let json = serde_json::to_string(report).ok()?;
    if json.len() <= REPORT_OUTPUT_LIMIT {
        return Some(json);
    }
    // Diffs are what grows; the rest of a report is small.
    let mut lean = report.clone();
    for app in &mut lean.apps {
        app.diff = None;
    }
    serde_json::to_string(&lean)
        .ok()
        .filter(|j| j.len() <= REPORT_OUTPUT_LIMIT)
}

/// The snake_case name the JSON report uses for an action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::None => "none",
        Action::Recorded => "recorded",
        Action::Pushed => "pushed",
        Action::PrOpened => "pr_opened",
        Action::PrUpdated => "pr_updated",
        Action::AwaitingApproval => "awaiting_approval",
        Action::Blocked => "blocked",
        Action::DryRun => "dry_run",
        Action::Confirming => "confirming",
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Healthy => "healthy",
        Verdict::Breach => "breach",
        Verdict::Unknown => "unknown",
    }
}

/// Annotations for the run: an error per app whose revert was withheld,
/// whose revert was not confirmed Healthy (exit 3), or that could not be
/// judged in a failed run (exit 1); a warning per report warning.
pub fn annotations(report: &Report, exit_code: u8) -> Vec<Annotation> {
    use crate::commands::exit;
    let mut out = Vec::new();
    for warning in &report.warnings {
        out.push(Annotation::new(Level::Warning, warning.clone()).title("revertbot"));
    }
    for app in &report.apps {
        let title = |what: &str| format!("revertbot: {} {what}", app.app);
        let why = |fallback: &str| {
            if app.reason.is_empty() {
                fallback.to_owned()
            } else {
                app.reason.clone()
            }
        };
        if app.action == Action::Blocked {
            out.push(
                Annotation::new(Level::Error, why("a guard withheld the revert"))
                    .title(title("revert withheld")),
            );
        }
        if app.action == Action::Pushed && !app.healthy_confirmed && exit_code == exit::UNCONFIRMED
        {
            let commit = app.revert_commit.as_deref().unwrap_or("the revert");
            out.push(
                Annotation::new(
                    Level::Error,
                    format!("{commit} landed but the controller did not report it Healthy in time"),
                )
                .title(title("not confirmed Healthy")),
            );
        }
        if app.verdict == Verdict::Unknown && app.action == Action::None && exit_code == exit::ERROR
        {
            out.push(
                Annotation::new(Level::Error, why("could not be observed"))
                    .title(title("not judged")),
            );
        }
        for warning in &app.warnings {
            out.push(Annotation::new(Level::Warning, warning.clone()).title(title("warning")));
        }
        for forged in &app.forged_reverts {
            out.push(
                Annotation::new(
                    Level::Warning,
                    format!(
                        "{} carries revertbot's trailers but is not its revert: {}",
                        forged.commit.as_str(),
                        forged.reason
                    ),
                )
                .title(title("forged revert trailers")),
            );
        }
    }
    out
}

/// The Markdown job summary: an overview row per app, then a table per
/// app that did or needs something, then the warnings.
pub fn summary(report: &Report, links: &Links) -> String {
    let mut out = String::new();
    let decision = decision(report);
    let _ = writeln!(out, "## revertbot: {}\n", headline(decision));
    if report.apps.is_empty() {
        out.push_str("No apps in this run.\n");
    } else {
        out.push_str("| app | verdict | action | deployed |\n|---|---|---|---|\n");
        for app in report.apps.iter().take(OVERVIEW_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&app.app),
                verdict_name(app.verdict),
                action_name(app.action),
                app.deployed_revision
                    .as_deref()
                    .map_or_else(String::new, |d| links.commit(d)),
            );
        }
        if report.apps.len() > OVERVIEW_ROWS {
            let _ = writeln!(
                out,
                "\n…and {} more apps (the `report` output has them all).",
                report.apps.len() - OVERVIEW_ROWS
            );
        }
    }
    for app in report.apps.iter().filter(|a| noteworthy(a)) {
        app_table(&mut out, app, links);
    }
    let warnings: Vec<String> = report
        .warnings
        .iter()
        .cloned()
        .chain(
            report
                .apps
                .iter()
                .flat_map(|a| a.warnings.iter().map(move |w| format!("{}: {w}", a.app))),
        )
        .collect();
    if !warnings.is_empty() {
        out.push_str("\n### Warnings\n\n");
        for warning in &warnings {
            let _ = writeln!(out, "- {}", cell(warning));
        }
    }
    // A blank line after, so a second summary in the same step starts a
    // new block.
    out.push('\n');
    if out.len() > SUMMARY_LIMIT {
        let mut cut = SUMMARY_LIMIT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n…cut at GitHub's summary limit; the `report` output has everything.\n");
    }
    out
}

/// Apps the summary details: anything but a quiet, healthy pass.
fn noteworthy(app: &AppReport) -> bool {
    !(matches!(app.action, Action::None | Action::Recorded) && app.verdict == Verdict::Healthy)
}

fn headline(decision: Action) -> &'static str {
    match decision {
        Action::Pushed => "revert pushed",
        Action::PrOpened => "revert pull request opened",
        Action::PrUpdated => "revert pull request updated",
        Action::AwaitingApproval => "awaiting approval",
        Action::Blocked => "revert withheld",
        Action::Confirming => "waiting for a revert to be confirmed Healthy",
        Action::DryRun => "dry run, nothing changed",
        Action::Recorded => "last-known-good recorded",
        Action::None => "nothing to do",
    }
}

fn app_table(out: &mut String, app: &AppReport, links: &Links) {
    let _ = writeln!(out, "\n### {}\n", cell(&app.app));
    out.push_str("| | |\n|---|---|\n");
    let mut row = |key: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(out, "| {key} | {value} |");
        }
    };
    row("verdict", verdict_name(app.verdict).to_owned());
    row("action", action_name(app.action).to_owned());
    let revision = |r: &Option<String>| r.as_deref().map_or_else(String::new, |r| links.commit(r));
    row("deployed", revision(&app.deployed_revision));
    row("last-known-good", revision(&app.last_known_good));
    let culprits: Vec<String> = if app.culprit_details.is_empty() {
        app.culprits.iter().map(|c| links.commit(c)).collect()
    } else {
        app.culprit_details
            .iter()
            .map(|c| format!("{} {}", links.commit(c.sha.as_str()), cell(&c.subject)))
            .collect()
    };
    row("culprits", culprits.join("<br>"));
    row(
        "revert commit",
        app.revert_commit
            .as_deref()
            .map_or_else(String::new, |c| links.commit(c)),
    );
    row(
        "pull request",
        app.pr_url.as_deref().map_or_else(String::new, pr_link),
    );
    if matches!(app.action, Action::Pushed | Action::Confirming) || app.healthy_confirmed {
        row(
            "Healthy confirmed",
            if app.healthy_confirmed { "yes" } else { "no" }.to_owned(),
        );
    }
    row(
        "incident",
        app.incident.as_deref().map_or_else(String::new, code),
    );
    let pins: Vec<String> = app
        .pinned_images
        .iter()
        .map(|p| code(&format!("{}@{}", p.image, p.digest)))
        .collect();
    row("pinned images", pins.join("<br>"));
    row("reason", cell(&app.reason));
}

fn pr_link(url: &str) -> String {
    if is_link(url) {
        let number = url
            .rsplit('/')
            .next()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()));
        match number {
            Some(n) if !n.is_empty() => format!("[#{n}]({url})"),
            _ => format!("[pull request]({url})"),
        }
    } else {
        cell(url)
    }
}

/// Text for a Markdown table cell (or list item): table pipes, line
/// breaks, backticks, HTML and inline Markdown made literal, so text from
/// the infra repo cannot add columns, rows, links, images or markup.
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            // CommonMark lets any ASCII punctuation be backslash-escaped;
            // these are the ones that start markup in a cell.
            '\\' | '`' | '|' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '~' | '#' | '$' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span for a value that is safe in one (a SHA, an image
/// reference), else the escaped text: a code span cannot escape a pipe.
fn code(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/@+-_=".contains(&b));
    if safe {
        format!("`{text}`")
    } else {
        cell(text)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn is_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `owner/name` as GitHub spells them.
fn is_repository(text: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    matches!(text.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// An https URL with nothing that could end a Markdown link early.
fn is_link(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/:?#@%=&+,;".contains(&b))
    })
}

/// Writes outputs and the summary, and prints the annotations on stderr.
/// Called only in Actions; a file that cannot be written is a warning, not
/// a failed run: the report on stdout and the exit code still stand.
pub fn publish(report: &Report, exit_code: u8) {
    for annotation in annotations(report, exit_code) {
        eprintln!("{}", annotation.render());
    }
    let entries: String = outputs(report, exit_code)
        .iter()
        .map(|(name, value)| workflow_commands::output_entry(name, value))
        .collect();
    let summary = summary(report, &Links::from_env());
    for (var, text) in [("GITHUB_OUTPUT", entries), ("GITHUB_STEP_SUMMARY", summary)] {
        if let Err(e) = workflow_commands::append_to_env_file(var, &text) {
            let warning = Annotation::new(
                Level::Warning,
                format!("cannot write ${var}: {e} — the report on stdout is complete"),
            )
            .title("revertbot");
            eprintln!("{}", warning.render());
        }
    }
}

#[cfg(test)]
mod tests;
