//! An app's paths: the exact glob matcher, plus the literal directories the
//! globs start with, which let the culprit search skip commits that did not
//! touch those directories without diffing them.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Debug, Clone)]
pub struct AppPaths {
    matcher: GlobSet,
    /// Literal directory prefixes (`apps/web`) covering every glob; `None`
    /// when some glob starts with a wildcard (then every commit is diffed).
    dirs: Option<Vec<String>>,
}

impl AppPaths {
    /// Compiles repo-relative globs (`*` stays within a directory, `**`
    /// crosses them, as in the config).
    pub fn compile<S: AsRef<str>>(patterns: &[S]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        let mut dirs = Some(Vec::new());
        for pattern in patterns {
            let pattern = pattern.as_ref();
            builder.add(app_glob(pattern)?);
            match literal_dir(pattern) {
                Some(dir) => {
                    if let Some(dirs) = dirs.as_mut() {
                        dirs.push(dir.to_owned());
                    }
                }
                None => dirs = None,
            }
        }
        Ok(Self {
            matcher: builder.build()?,
            dirs,
        })
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }

    /// The literal directories every match lies under, if known.
    pub fn dirs(&self) -> Option<&[String]> {
        self.dirs.as_deref()
    }
}

/// One of an app's globs, as the config means it: `*` stays within a
/// directory, `**` crosses them.
pub fn app_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// `apps/web` for `apps/web/**` or `apps/web/*.yaml`; `None` when the glob
/// has no literal directory before its first wildcard (`**/x.yaml`, `*`).
fn literal_dir(pattern: &str) -> Option<&str> {
    let wildcard = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    let literal = &pattern[..wildcard];
    let dir = &literal[..literal.rfind('/')?];
    (!dir.is_empty()).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_dirs() {
        assert_eq!(literal_dir("apps/web/**"), Some("apps/web"));
        assert_eq!(literal_dir("apps/web/deploy.yaml"), Some("apps/web"));
        assert_eq!(literal_dir("apps/*/x.yaml"), Some("apps"));
        assert_eq!(literal_dir("apps/gäst book/**"), Some("apps/gäst book"));
        assert_eq!(literal_dir("**/x.yaml"), None);
        assert_eq!(literal_dir("top.yaml"), None);
        let paths = AppPaths::compile(&["apps/web/**", "**/shared.yaml"]).unwrap();
        assert!(paths.dirs().is_none());
        assert!(paths.is_match("x/y/shared.yaml"));
        let paths = AppPaths::compile(&["apps/web/**", "apps/api/*.yaml"]).unwrap();
        assert_eq!(paths.dirs().unwrap(), ["apps/web", "apps/api"]);
        assert!(!paths.is_match("apps/api/deep/x.yaml"));
    }
}
