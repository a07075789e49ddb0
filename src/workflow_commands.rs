//! GitHub Actions workflow commands and environment files: annotations
//! (`::error file=…,line=…::…`), step outputs (`$GITHUB_OUTPUT`) and the job
//! summary (`$GITHUB_STEP_SUMMARY`).
//!
//! Everything written here comes, in part, from the infra repo (paths,
//! commit subjects, image references): data and properties are escaped the
//! way the runner unescapes them (actions/toolkit `packages/core/src/command.ts`,
//! `escapeData` / `escapeProperty`), so a crafted commit subject cannot end
//! an annotation early or inject a second command, and every text is
//! scrubbed of registered secrets first.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::Path;

/// True when this process runs as a GitHub Actions step.
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// A workflow command's message: `%`, CR and LF escaped.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as data, plus `:` and `,`, which
/// separate properties.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// One annotation; GitHub shows it on the file and line when both are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub title: Option<String>,
    /// Relative to the repository root, `/`-separated.
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl Annotation {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            title: None,
            file: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn at(mut self, file: impl Into<String>, line: Option<u32>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }

    /// The workflow command line, without its line break.
    pub fn render(&self) -> String {
        let mut properties = Vec::new();
        let mut property = |name: &str, value: &str| {
            properties.push(format!("{name}={}", escape_property(&scrub(value))));
        };
        if let Some(file) = &self.file {
            property("file", file);
        }
        if let Some(line) = self.line {
            property("line", &line.to_string());
        }
        if let Some(column) = self.column {
            property("col", &column.to_string());
        }
        if let Some(title) = &self.title {
            property("title", title);
        }
        let mut line = format!("::{}", self.level.command());
        if !properties.is_empty() {
            let _ = write!(line, " {}", properties.join(","));
        }
        let _ = write!(line, "::{}", escape_data(&scrub(&self.message)));
        line
    }
}

/// A delimiter for a multi-line output value that the value cannot
/// contain: random, so a value from the infra repo cannot guess it and
/// close the heredoc early to set other outputs.
pub fn delimiter_for(value: &str) -> String {
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        let first = hasher.finish();
        hasher.write_u64(first);
        let candidate = format!("ghadelimiter_{first:016x}{:016x}", hasher.finish());
        if !value.contains(&candidate) {
            return candidate;
        }
    }
}

/// One `name=value` entry for `$GITHUB_OUTPUT`, in the heredoc form that
/// also carries line breaks.
pub fn output_entry(name: &str, value: &str) -> String {
    let value = scrub(value);
    let delimiter = delimiter_for(&value);
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Appends `text` to the file named by the environment variable `var`
/// (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`). `Ok(false)` when it is unset.
pub fn append_to_env_file(var: &str, text: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    append(Path::new(&path), text)?;
    Ok(true)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn scrub(text: &str) -> String {
    crate::redact::scrub(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_properties_are_escaped_like_the_toolkit() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn an_annotation_names_file_line_and_title() {
        let line = Annotation::new(Level::Error, "tag :latest has no digest")
            .title("preflight: mutable tag")
            .at("apps/guestbook/deploy.yaml", Some(14))
            .render();
        assert_eq!(
            line,
            "::error file=apps/guestbook/deploy.yaml,line=14,title=preflight%3A mutable tag::tag :latest has no digest"
        );
    }

    #[test]
    fn a_crafted_message_cannot_start_a_second_command() {
        let line = Annotation::new(Level::Warning, "bump\n::add-mask::x\n::error::owned").render();
        assert_eq!(line.lines().count(), 1);
        assert!(line.starts_with("::warning::bump%0A::add-mask::x"));
    }

    #[test]
    fn a_file_name_cannot_add_properties() {
        let line = Annotation::new(Level::Notice, "m")
            .at("a,line=1::x", None)
            .render();
        assert_eq!(line, "::notice file=a%2Cline=1%3A%3Ax::m");
    }

    #[test]
    fn an_output_value_cannot_close_its_heredoc() {
        let value = "line one\nghadelimiter_x\nEOF\nhealthy=true";
        let entry = output_entry("reason", value);
        let (head, rest) = entry.split_once('\n').unwrap();
        let delimiter = head.strip_prefix("reason<<").unwrap();
        assert!(delimiter.len() > 20);
        assert_eq!(rest, format!("{value}\n{delimiter}\n"));
        assert_ne!(delimiter_for(value), delimiter_for(value));
    }
}
