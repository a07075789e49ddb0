//! `revertbot config validate` and `revertbot config schema`.

use std::path::Path;

use crate::config;

use super::Result;

/// Validates the config; on success returns a one-line summary plus any
/// warnings (each `file:line:col: warning: …`).
pub fn validate(path: &Path) -> Result<String> {
    let loaded = config::load(path)?;
    let mut out = String::new();
    for warning in &loaded.warnings {
        out.push_str(&warning.render(&path.display().to_string()));
        out.push('\n');
    }
    out.push_str(&format!(
        "{}: valid — {} app(s): {}\n",
        path.display(),
        loaded.config.apps.len(),
        loaded
            .config
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(out)
}

pub fn schema() -> String {
    config::json_schema()
}
