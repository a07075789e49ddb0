//! The configuration file `.revertbot.yaml`: typed schema, defaults,
//! validation that reports every problem with `file:line:col`, and the JSON
//! Schema export.
//!
//! The YAML is parsed into a spanned tree ([`crate::yaml`]) and decoded by
//! hand (`decode.rs`, `read.rs`) so that one bad value never hides the
//! next: every problem is collected as a [`Diagnostic`]. The typed structs
//! ([`Config`] and below) also derive `Serialize` and `JsonSchema`, so the
//! schema comes from the same types; a test keeps the decoder's keys and the
//! schema's properties equal.
//!
//! ```
//! let loaded = revertbot::config::parse(
//!     ".revertbot.yaml",
//!     "version: 1\napps:\n  - name: guestbook\n    paths: [\"guestbook/**\"]\n    argocd: { app: guestbook }\n",
//! )
//! .unwrap();
//! let app = loaded.config.app("guestbook").unwrap();
//! assert!(app.path_matcher().is_match("guestbook/deploy.yaml"));
//! assert_eq!(app.policy.cooldown, std::time::Duration::from_secs(30 * 60));
//! ```

mod decode;
mod diagnostic;
mod globs;
mod model;
mod model_app;
mod read;
mod read_app;
mod scalars;
mod schema;
mod unused;
mod validate;
mod values;

use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Severity as DiagnosticSeverity};
pub use model::{
    AlertmanagerConfig, AppArgoCd, AppConfig, AppFlux, ApprovalsConfig, ArgoCdConfig, Config,
    FailOn, FluxConfig, FluxKind, GitHubConfig, GitHubPermission, PreflightConfig,
    PrometheusConfig, RepoConfig, SlackConfig,
};
pub use model_app::{
    Action, AlertsConfig, Baseline, HealthConfig, HelmImage, ImagesConfig, MaxReverts, PodsConfig,
    PolicyConfig, RevertConfig, RevertScope, Severity, Slo, WaitConfig,
};
pub use schema::{SCHEMA_ID, json_schema};
pub use values::Percent;

/// The default config file name, at the root of the infra repo.
pub const DEFAULT_FILE: &str = ".revertbot.yaml";

/// A valid config and the warnings found while checking it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Problems that do not make the config invalid, in source order.
    pub warnings: Vec<Diagnostic>,
}

/// The largest config file read. Real configs are a few KiB; the file
/// comes from the infra repo (or `--config`, which may name a device such as
/// `/dev/zero`), so it is read through a bound, never to its end.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let source = read_bounded(path, MAX_FILE_BYTES).map_err(read_error)?;
    parse(&path.display().to_string(), &source)
}

/// Reads at most `cap` bytes of UTF-8 text; a longer file is an error that
/// gives its size when it has one. Reads through `take` rather than trusting
/// `metadata().len()`: character devices and pipes report 0.
fn read_bounded(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        let size = std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| format!("{} bytes, ", m.len()))
            .unwrap_or_default();
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "{size}more than {} MiB, the limit for a config file",
                cap / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({})", e.utf8_error()),
        )
    })
}

/// Checks config text. `file_name` is used in diagnostics only.
pub fn parse(file_name: &str, source: &str) -> Result<Loaded, ConfigError> {
    let invalid = |diagnostics| ConfigError::Invalid {
        file: file_name.to_owned(),
        diagnostics,
    };
    let root = match crate::yaml::parse_single(source) {
        Ok(root) => root,
        Err(e) if e.kind == crate::yaml::ErrorKind::Limit => {
            // The message says what was refused and what to do.
            return Err(invalid(vec![Diagnostic {
                severity: DiagnosticSeverity::Error,
                line: e.line.max(1),
                column: e.column.max(1),
                path: String::new(),
                message: e.message,
                hint: None,
            }]));
        }
        Err(e) => {
            return Err(invalid(vec![Diagnostic {
                severity: DiagnosticSeverity::Error,
                line: e.line.max(1),
                column: e.column.max(1),
                path: String::new(),
                message: format!("invalid YAML: {}", e.message),
                hint: syntax_hint(source, &e),
            }]));
        }
    };
    let mut decoder = decode::Decoder::new(source);
    let config = read::config(&mut decoder, &root);
    validate::cross_check(&mut decoder, &root);
    let failed = decoder.has_errors();
    let diagnostics = decoder.finish();
    match config {
        Some(config) if !failed => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(invalid(diagnostics)),
    }
}

/// A hint for a YAML syntax error, from its message and the lines near it.
fn syntax_hint(source: &str, e: &crate::yaml::SyntaxError) -> Option<String> {
    let line = |n: usize| source.lines().nth(n.saturating_sub(1)).unwrap_or_default();
    let near = [line(e.line.saturating_sub(1)), line(e.line)];
    let missing_space = near.iter().any(|l| {
        let code = l.split(" #").next().unwrap_or_default();
        code.trim_start()
            .starts_with(|c: char| c.is_ascii_alphabetic())
            && [":[", ":{", ":\"", ":'"].iter().any(|p| code.contains(p))
    });
    let unclosed = near
        .iter()
        .zip([e.line.saturating_sub(1), e.line])
        .find_map(|(l, n)| {
            let code = l.split(" #").next().unwrap_or_default();
            let count = |c: char| code.chars().filter(|&x| x == c).count();
            if count('[') > count(']') {
                Some(("[", "]", "list", n))
            } else if count('{') > count('}') {
                Some(("{", "}", "mapping", n))
            } else {
                None
            }
        });
    if let Some((open, close, what, n)) = unclosed {
        return Some(format!(
            "the `{open}` on line {n} is not closed: end the {what} with `{close}`"
        ));
    }
    let hint = if e.message.contains("several") {
        return None; // the message says what to do
    } else if e.message.contains("tab") || near.iter().any(|l| l.starts_with('\t')) {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else if missing_space {
        "put a space after the `:` of each key (`paths: [\"guestbook/**\"]`)"
    } else if e.message.contains("quoted scalar") {
        "a quote is not closed: end the value with the same quote it starts with"
    } else if e.message.contains("anchor") {
        "define the anchor (`&name`) before the alias that uses it (`*name`)"
    } else {
        "check the indentation, quotes and brackets on this line and the one before"
    };
    Some(hint.to_owned())
}
