//! Progress for long waits: a spinner on a terminal, `::group::` lines in
//! GitHub Actions, plain log lines otherwise. Always on stderr: stdout
//! carries only results.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub enum Progress {
    Terminal(ProgressBar),
    Actions { open: bool },
    Quiet,
}

impl Progress {
    /// Picks the display for this process: Actions when `GITHUB_ACTIONS` is
    /// `true`, a spinner when stderr is a terminal, nothing otherwise.
    pub fn detect() -> Self {
        if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
            Progress::Actions { open: false }
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            Progress::Terminal(bar)
        } else {
            Progress::Quiet
        }
    }

    pub fn start(&mut self, what: &str) {
        match self {
            Progress::Terminal(bar) => bar.set_message(scrubbed(what)),
            Progress::Actions { open } => {
                eprintln!("::group::{}", one_line(what));
                *open = true;
            }
            Progress::Quiet => tracing::info!("{what}"),
        }
    }

    pub fn update(&mut self, status: &str) {
        match self {
            Progress::Terminal(bar) => bar.set_message(scrubbed(status)),
            Progress::Actions { .. } | Progress::Quiet => tracing::debug!("{status}"),
        }
    }

    pub fn finish(&mut self, outcome: &str) {
        match self {
            Progress::Terminal(bar) => bar.finish_with_message(scrubbed(outcome)),
            Progress::Actions { open } => {
                eprintln!("{}", one_line(outcome));
                if *open {
                    eprintln!("::endgroup::");
                    *open = false;
                }
            }
            Progress::Quiet => tracing::info!("{outcome}"),
        }
    }
}

/// Workflow commands end at a line break: keep messages on one line.
fn one_line(text: &str) -> String {
    scrubbed(text).replace(['\r', '\n'], " ")
}

/// The spinner and workflow lines bypass the log writer: scrub them here.
fn scrubbed(text: &str) -> String {
    crate::redact::scrub(text).into_owned()
}
