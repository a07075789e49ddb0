//! The preflight report as text, JSON, GitHub annotations and a Markdown
//! job summary. Pure. File names, commit subjects and image references come
//! from the pull request: text and Markdown neutralise control characters
//! and Markdown syntax, annotations are escaped by
//! [`crate::workflow_commands`].

use std::fmt::Write as _;

use crate::config::FailOn;
use crate::workflow_commands::{Annotation, Level};

use super::{Finding, Report, Severity};

pub fn json(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(text) => format!("{text}\n"),
        // Plain data (strings, numbers, enums): encoding cannot fail.
        Err(_) => String::new(),
    }
}

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "revertbot preflight: head {} against base {} (merge base {})",
        short(&report.head),
        short(&report.base),
        short(&report.merge_base)
    );
    let _ = writeln!(
        out,
        "  {} changed, {} checked, apps touched: {}",
        plural(report.files_changed, "file"),
        plural(report.commits_checked, "commit"),
        if report.apps.is_empty() {
            "none".to_owned()
        } else {
            one_line(&report.apps.join(", "))
        }
    );
    for warning in &report.warnings {
        let _ = writeln!(out, "  config: {}", one_line(warning));
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{:<8}{} [{}] {}: {}",
            severity(f.severity),
            one_line(&place(f)),
            one_line(f.app.as_deref().unwrap_or("no app")),
            f.check.as_str(),
            one_line(&f.message)
        );
    }
    out.push('\n');
    out.push_str(&verdict(report));
    out.push('\n');
    out
}

/// `PASSED` / `FAILED` with the counts and the threshold.
fn verdict(report: &Report) -> String {
    let counts = format!(
        "{}, {}",
        plural(report.counts.error, "error"),
        plural(report.counts.warning, "warning")
    );
    if report.passed {
        format!(
            "PASSED: {counts}; fails on {} and above",
            fail_on(report.fail_on)
        )
    } else {
        format!(
            "FAILED: {counts}; fails on {} and above (exit {})",
            fail_on(report.fail_on),
            super::EXIT_FINDINGS
        )
    }
}

pub fn annotations(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| {
            let level = match f.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
            };
            let title = match &f.app {
                Some(app) => format!("revertbot preflight: {} ({app})", f.check.as_str()),
                None => format!("revertbot preflight: {}", f.check.as_str()),
            };
            let annotation = Annotation::new(level, f.message.clone()).title(title);
            match &f.file {
                Some(file) => annotation.at(file.clone(), f.line),
                None => annotation,
            }
            .render()
        })
        .collect()
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::from("## revertbot preflight\n\n");
    let _ = writeln!(
        out,
        "**{}** {} error{}, {} warning{} (the check fails on `{}` and above).\n",
        if report.passed { "Passed:" } else { "Failed:" },
        report.counts.error,
        if report.counts.error == 1 { "" } else { "s" },
        report.counts.warning,
        if report.counts.warning == 1 { "" } else { "s" },
        fail_on(report.fail_on)
    );
    let _ = writeln!(
        out,
        "Head `{}`, merge base `{}`; {} changed, {} checked; apps touched: {}.\n",
        short(&report.head),
        short(&report.merge_base),
        plural(report.files_changed, "file"),
        plural(report.commits_checked, "commit"),
        if report.apps.is_empty() {
            "none".to_owned()
        } else {
            report
                .apps
                .iter()
                .map(|a| md(a))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if report.findings.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    out.push_str("| severity | check | where | app | finding |\n|---|---|---|---|---|\n");
    for f in &report.findings {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            severity(f.severity),
            f.check.as_str(),
            md(&place(f)),
            md(f.app.as_deref().unwrap_or("—")),
            md(&f.message)
        );
    }
    out
}

/// `file:line`, the file alone, or `commit <sha>` / `—`.
fn place(f: &Finding) -> String {
    match (&f.file, f.line) {
        (Some(file), Some(line)) if !file.is_empty() => format!("{file}:{line}"),
        (Some(file), None) if !file.is_empty() => file.clone(),
        _ => match &f.commit {
            Some(sha) => format!("commit {}", short(sha)),
            None => "—".to_owned(),
        },
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn fail_on(f: FailOn) -> &'static str {
    match f {
        FailOn::Error => "error",
        FailOn::Warning => "warning",
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Control characters written as escapes, so a crafted name cannot start a
/// new line of output (or move the cursor) in a log.
pub(super) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for a Markdown table cell: on one line, with the characters
/// Markdown and GitHub's HTML give meaning to escaped (so a file name
/// cannot add rows, links, images or markup).
pub(super) fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '#' | '!' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}
