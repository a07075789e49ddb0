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
mod validate;
mod values;

use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Severity as DiagnosticSeverity};
pub use model::{
    AlertmanagerConfig, AppArgoCd, AppConfig, AppFlux, ApprovalsConfig, ArgoCdConfig, Config,
    FluxConfig, FluxKind, GitHubConfig, GitHubPermission, PrometheusConfig, RepoConfig,
    SlackConfig,
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

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&path.display().to_string(), &source)
}

/// Checks config text. `file_name` is used in diagnostics only.
pub fn parse(file_name: &str, source: &str) -> Result<Loaded, ConfigError> {
    let invalid = |diagnostics| ConfigError::Invalid {
        file: file_name.to_owned(),
        diagnostics,
    };
    let root = match crate::yaml::parse_single(source) {
        Ok(root) => root,
        Err(e) => {
            return Err(invalid(vec![Diagnostic {
                severity: DiagnosticSeverity::Error,
                line: e.line.max(1),
                column: e.column.max(1),
                path: String::new(),
                message: format!("invalid YAML: {}", e.message),
                hint: Some(
                    "check the indentation, quotes and brackets on this line and the one before"
                        .to_owned(),
                ),
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
