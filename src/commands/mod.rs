//! The imperative shell: one file per command, each sequencing the adapters
//! (git, manifest, config) around pure decisions and returning a report and
//! an exit code. Nothing here prints; `main` does.

pub mod check;
pub mod config_cmd;
pub mod controllers;
pub mod drill;
pub mod left_alone;
pub mod lkg;
mod locate;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod pull_request;
pub mod record;
pub mod restore_markers;
pub mod revert;
pub mod wait;
pub mod watch;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::config::{self, AppConfig, Config, ConfigError};
use crate::controller::ControllerError;
use crate::controller::sim::SimError;
use crate::domain::AppName;
use crate::forge::ForgeError;
use crate::git::sandbox::SandboxError;
use crate::git::{AppPaths, AppScope, Credentials, GitError, InfraRepo, Remote};
use crate::manifest::{HelmImageRule, PinRules};
use crate::render::RenderError;
use crate::report::Report;

pub use locate::{LkgChoice, Located, Request};

/// Exit codes (DESIGN.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNCONFIRMED: u8 = 3;
    pub const BLOCKED: u8 = 4;
}

/// What a command produced: a report for stdout and the process exit code.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub exit_code: u8,
}

impl Outcome {
    /// The same outcome, its report carrying the config's warnings.
    pub fn warned(mut self, warnings: &[String]) -> Self {
        self.report.warnings = warnings.to_vec();
        self
    }
}

/// Options every command shares.
#[derive(Debug, Clone)]
pub struct Globals {
    pub config: PathBuf,
    pub repo: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("no app named `{name}` in {config} — known apps: {}", if known.is_empty() { "(none)".to_owned() } else { known.join(", ") })]
    UnknownApp {
        name: String,
        config: String,
        known: Vec<String>,
    },

    #[error("{0}")]
    Usage(String),

    /// The controller could not be set up from the config and environment
    /// (no server address, a token over plain http, an unreadable
    /// kubeconfig): a usage error, exit 2.
    #[error("{0}")]
    ControllerSetup(ControllerError),

    /// The controller failed at run time: exit 1.
    #[error("{doing}: {source}")]
    Controller {
        doing: String,
        #[source]
        source: ControllerError,
    },

    /// The simulated controller of `drill` failed: exit 1.
    #[error(transparent)]
    Sim(#[from] SimError),

    /// The `drill` sandbox (its repositories) failed: exit 1.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),

    /// A file or the process's own resources (threads, signals) failed:
    /// exit 1.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// Any other failure at run time: exit 1, never the usage code.
    #[error("{0}")]
    Runtime(String),

    /// GitHub could not be set up from the config and environment (no
    /// token, no repository, a bad API address): a usage error, exit 2.
    #[error("{0}")]
    ForgeSetup(Box<ForgeError>),

    /// GitHub failed at run time: exit 1.
    #[error("{doing}: {source}")]
    Forge {
        doing: String,
        #[source]
        source: Box<ForgeError>,
    },

    /// The revert pull request's branch exists and is not this incident's
    /// revert: revertbot never overwrites a branch.
    #[error(
        "the branch `{branch}` exists on the remote and is not revertbot's revert of this incident: {reason} — revertbot never overwrites a branch; if it is stale, delete it on the remote (`git push origin :{branch}`) and run again"
    )]
    BranchTaken { branch: String, reason: String },

    #[error(transparent)]
    Git(#[from] GitError),

    #[error(transparent)]
    Render(#[from] RenderError),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Config(e) => e.exit_code(),
            CommandError::UnknownApp { .. }
            | CommandError::Usage(_)
            | CommandError::ControllerSetup(_)
            | CommandError::ForgeSetup(_) => exit::USAGE,
            CommandError::Git(_)
            | CommandError::Render(_)
            | CommandError::Controller { .. }
            | CommandError::Sim(_)
            | CommandError::Sandbox(_)
            | CommandError::Io { .. }
            | CommandError::Forge { .. }
            | CommandError::BranchTaken { .. }
            | CommandError::Runtime(_) => exit::ERROR,
        }
    }

    /// An io failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| CommandError::Io { what, source }
    }

    /// A controller failure while doing `doing`.
    pub fn controller(doing: impl Into<String>) -> impl FnOnce(ControllerError) -> Self {
        let doing = doing.into();
        move |source| CommandError::Controller { doing, source }
    }
}

pub type Result<T, E = CommandError> = std::result::Result<T, E>;

/// The loaded config, the infra repo and its remote: what every app of a
/// run shares (one config load, one repository, one fetch).
pub struct Workspace {
    pub config: Rc<Config>,
    /// The config's warnings, rendered; every report repeats them.
    pub config_warnings: Rc<[String]>,
    pub config_path: PathBuf,
    pub repo: Rc<InfraRepo>,
    pub remote: Remote,
    /// App name → index in `config.apps`.
    app_index: HashMap<String, usize>,
    /// Sessions built so far (globs compiled once per workspace, not per
    /// `watch` cycle).
    sessions: RefCell<HashMap<String, Rc<Session>>>,
}

impl Workspace {
    pub fn open(globals: &Globals) -> Result<Self> {
        let loaded = config::load(&globals.config)?;
        let file = globals.config.display().to_string();
        for warning in &loaded.warnings {
            tracing::warn!("{}", warning.render(&file));
        }
        let config_warnings: Rc<[String]> =
            loaded.warnings.iter().map(|w| w.render(&file)).collect();
        let config = loaded.config;
        // `config validate` warns about these; until they are moved out,
        // keep them off every output.
        let urls = [
            Some(&config.repo.remote),
            config.argocd.as_ref().and_then(|a| a.server.as_ref()),
            config.prometheus.as_ref().map(|p| &p.url),
            config.alertmanager.as_ref().map(|a| &a.url),
        ];
        for url in urls.into_iter().flatten() {
            crate::redact::register_url_userinfo(url);
        }
        let repo = InfraRepo::open(&globals.repo)?;
        // A run killed mid-push leaves work refs and ref locks behind; a
        // stale lock would fail every later fetch.
        repo.sweep_abandoned_work()?;
        let remote = Remote::new(
            &config.repo.remote,
            &config.repo.branch,
            Credentials::from_env(),
        );
        let app_index = config
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        Ok(Self {
            config: Rc::new(config),
            config_warnings,
            config_path: globals.config.clone(),
            repo: Rc::new(repo),
            remote,
            app_index,
            sessions: RefCell::new(HashMap::new()),
        })
    }

    /// The session for one configured app (built once per workspace).
    pub fn session(&self, app: &str) -> Result<Rc<Session>> {
        if let Some(session) = self.sessions.borrow().get(app) {
            return Ok(Rc::clone(session));
        }
        let app_config = self
            .app_index
            .get(app)
            .and_then(|i| self.config.apps.get(*i))
            .cloned()
            .ok_or_else(|| CommandError::UnknownApp {
                name: app.to_owned(),
                config: self.config_path.display().to_string(),
                known: self.config.apps.iter().map(|a| a.name.clone()).collect(),
            })?;
        let session = Rc::new(Session {
            paths: OnceCell::new(),
            pin_rules: OnceCell::new(),
            app_name: AppName(app_config.name.clone()),
            app: app_config,
            config: Rc::clone(&self.config),
            config_warnings: Rc::clone(&self.config_warnings),
            repo: Rc::clone(&self.repo),
            remote: self.remote.clone(),
        });
        self.sessions
            .borrow_mut()
            .insert(app.to_owned(), Rc::clone(&session));
        Ok(session)
    }
}

/// Whether the app has a controller (`argocd` or `flux`) to wait on; reads
/// only the config.
pub fn has_controller(globals: &Globals, app: &str) -> Result<bool> {
    let loaded = config::load(&globals.config)?;
    match loaded.config.app(app) {
        Some(a) => Ok(controllers::app_ref(a).is_some()),
        // The command itself reports the unknown app, with the known ones.
        None => Ok(false),
    }
}

/// The infra repo, its remote, and one configured app.
pub struct Session {
    pub config: Rc<Config>,
    pub config_warnings: Rc<[String]>,
    pub app: AppConfig,
    pub app_name: AppName,
    /// Compiled on first use: a steady `watch` cycle over thousands of
    /// healthy apps never needs them.
    paths: OnceCell<AppPaths>,
    pin_rules: OnceCell<PinRules>,
    pub repo: Rc<InfraRepo>,
    pub remote: Remote,
}

impl Session {
    pub fn open(globals: &Globals, app: &str) -> Result<Rc<Self>> {
        Workspace::open(globals)?.session(app)
    }

    pub fn repo_root(&self) -> &Path {
        self.repo.path()
    }

    /// The app's path globs, compiled.
    pub fn paths(&self) -> Result<&AppPaths> {
        if let Some(paths) = self.paths.get() {
            return Ok(paths);
        }
        let compiled = AppPaths::compile(&self.app.paths)
            .map_err(|e| CommandError::Usage(format!("apps[].paths of {}: {e}", self.app_name)))?;
        Ok(self.paths.get_or_init(|| compiled))
    }

    /// The app's Helm image rules, compiled.
    pub fn pin_rules(&self) -> Result<&PinRules> {
        if let Some(rules) = self.pin_rules.get() {
            return Ok(rules);
        }
        let compiled = pin_rules(&self.app)?;
        Ok(self.pin_rules.get_or_init(|| compiled))
    }

    /// What a revert claim of this app is verified against.
    pub fn scope(&self) -> Result<AppScope<'_>> {
        Ok(AppScope {
            name: self.app_name.as_str(),
            paths: self.paths()?,
            pin_rules: self.pin_rules()?,
        })
    }
}

/// The app's Helm image rules as the manifest editor takes them. Globs were
/// validated with the config, so a failure here is a bug worth reporting.
pub(crate) fn pin_rules(app: &AppConfig) -> Result<PinRules> {
    let mut rules = PinRules::default();
    for helm in &app.images.helm {
        for files in &helm.files {
            let rule = HelmImageRule::new(files, &helm.repository, &helm.tag, helm.digest.clone())
                .map_err(|e| CommandError::Usage(e.to_string()))?;
            rules.helm.push(rule);
        }
    }
    Ok(rules)
}
