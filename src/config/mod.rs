//! TEMPORARY stub of the agreed config API; replaced by the config branch.
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Diagnostic;
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid")]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
}
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}
#[derive(Debug, Clone)]
pub struct Config {
    pub version: u32,
    pub repo: RepoConfig,
    pub apps: Vec<AppConfig>,
}
#[derive(Debug, Clone)]
pub struct RepoConfig {
    pub remote: String,
    pub branch: String,
}
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub name: String,
    pub paths: Vec<String>,
    pub revert: RevertConfig,
    pub images: ImagesConfig,
    pub wait: WaitConfig,
}
#[derive(Debug, Clone)]
pub struct WaitConfig {
    pub timeout: Duration,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Commits,
    Paths,
}
#[derive(Debug, Clone)]
pub struct RevertConfig {
    pub scope: Scope,
}
#[derive(Debug, Clone)]
pub struct ImagesConfig {
    pub pin: bool,
    pub helm: Vec<HelmImages>,
}
#[derive(Debug, Clone)]
pub struct HelmImages {
    pub files: Vec<String>,
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
}
impl Config {
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name == name)
    }
}
impl AppConfig {
    pub fn path_matcher(&self) -> globset::GlobSet {
        let mut b = globset::GlobSetBuilder::new();
        for p in &self.paths {
            if let Ok(g) = globset::Glob::new(p) {
                b.add(g);
            }
        }
        b.build().unwrap_or_else(|_| globset::GlobSet::empty())
    }
}
pub fn load(_path: &Path) -> Result<Loaded, ConfigError> {
    unimplemented!()
}
pub fn json_schema() -> String {
    String::new()
}
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("diag")
    }
}
