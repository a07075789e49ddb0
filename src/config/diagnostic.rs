//! Problems found in a config file, with their position and what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// How bad a problem is. Errors make the file invalid; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a config file.
///
/// Renders as `<file>:<line>:<col>: <message> — <hint>`; warnings read
/// `<file>:<line>:<col>: warning: <message> — <hint>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// 1-based line of the offending node (for a missing key: of the mapping
    /// that should hold it).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Where in the config, e.g. `apps[0].health.slos[1].for`; empty for the
    /// document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// The one-line form, prefixed with the file name.
    pub fn render(&self, file: &str) -> String {
        let mut out = format!("{file}:{}:{}: ", self.line, self.column);
        if self.severity == Severity::Warning {
            out.push_str("warning: ");
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str(" — ");
            out.push_str(hint);
        }
        out
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source} — {}", path.display(), read_hint(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file was read but is not a valid config. `diagnostics` holds every
    /// problem found (errors and warnings), in source order.
    #[error("{}", DisplayDiagnostics { file, diagnostics })]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// The process exit code for this failure: 2, "invalid config or usage".
    pub fn exit_code(&self) -> u8 {
        2
    }

    /// The problems found, empty for a read error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

fn read_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::NotFound => "create it or pass --config",
        io::ErrorKind::PermissionDenied => "check its permissions or pass --config",
        _ => "check the file or pass --config",
    }
}

struct DisplayDiagnostics<'a> {
    file: &'a str,
    diagnostics: &'a [Diagnostic],
}

impl fmt::Display for DisplayDiagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&d.render(self.file))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(severity: Severity, hint: Option<&str>) -> Diagnostic {
        Diagnostic {
            severity,
            line: 3,
            column: 7,
            path: "apps[0].paths".into(),
            message: "apps[0].paths is empty".into(),
            hint: hint.map(str::to_owned),
        }
    }

    #[test]
    fn renders_position_message_and_hint() {
        assert_eq!(
            diag(Severity::Error, Some("add a glob")).render("f.yaml"),
            "f.yaml:3:7: apps[0].paths is empty — add a glob"
        );
        assert_eq!(
            diag(Severity::Warning, None).render("f.yaml"),
            "f.yaml:3:7: warning: apps[0].paths is empty"
        );
    }

    #[test]
    fn read_errors_say_what_to_do() {
        let err = ConfigError::Read {
            path: ".revertbot.yaml".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
        };
        assert_eq!(
            err.to_string(),
            "cannot read .revertbot.yaml: No such file or directory — create it or pass --config"
        );
        assert_eq!(err.exit_code(), 2);
    }
}
