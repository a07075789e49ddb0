//! The typed config. Built only by the decoder (`read.rs`), which validates
//! every value; `Serialize` and `JsonSchema` give the effective config and the
//! JSON Schema from the same types.
//!
//! Doc comments here become the schema's descriptions, which editors show.

use globset::{GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::Serialize;

use super::globs::compile_glob;
use super::model_app::{HealthConfig, ImagesConfig, PolicyConfig, RevertConfig, WaitConfig};
use super::schema::GlobSchema;
use crate::domain::AppName;

/// revertbot's configuration, read from `.revertbot.yaml` at the root of the
/// infra repository.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Config {
    /// Format version of this file. Always `1`.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// The infra repository revertbot reverts in.
    #[serde(default)]
    pub repo: RepoConfig,
    /// Argo CD connection. The token comes from `$ARGOCD_AUTH_TOKEN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCdConfig>,
    /// Flux connection, through the Kubernetes API (`$KUBECONFIG` or
    /// in-cluster config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux: Option<FluxConfig>,
    /// Prometheus to evaluate SLO queries against. Required when any app has
    /// `health.slos`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
    /// Alertmanager whose firing alerts count as breaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// GitHub, for pull requests, comments and approvals. The token comes from
    /// `$GITHUB_TOKEN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubConfig>,
    /// Slack, for incident updates and approval requests. The token comes from
    /// `$SLACK_BOT_TOKEN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackConfig>,
    /// Who may approve a revert that policy holds for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalsConfig>,
    /// `revertbot preflight`, the check on infra pull requests.
    #[serde(default)]
    pub preflight: PreflightConfig,
    /// The apps revertbot watches, each owning a set of paths in the repo.
    pub apps: Vec<AppConfig>,
}

impl Config {
    /// The app with this name.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name == name)
    }
}

/// The infra repository.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RepoConfig {
    /// Remote name or URL of the infra repo.
    #[serde(default = "default_remote")]
    pub remote: String,
    /// The branch the controller deploys from.
    #[serde(default = "default_branch")]
    pub branch: String,
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self {
            remote: default_remote(),
            branch: default_branch(),
        }
    }
}

pub(crate) fn default_remote() -> String {
    "origin".to_owned()
}

pub(crate) fn default_branch() -> String {
    "main".to_owned()
}

/// Argo CD connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ArgoCdConfig {
    /// Argo CD server URL. Default: `$ARGOCD_SERVER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// Flux connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FluxConfig {
    /// kubeconfig context to use. Default: the current context (or the
    /// in-cluster config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Prometheus connection.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, like `http://prometheus.monitoring:9090`.
    pub url: String,
}

/// Alertmanager connection.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, like `http://alertmanager.monitoring:9093`.
    pub url: String,
}

/// GitHub.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GitHubConfig {
    /// `owner/name` of the infra repo on GitHub. Default: `$GITHUB_REPOSITORY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// REST API base. Default: `$GITHUB_API_URL`, else
    /// `https://api.github.com`; on GitHub Enterprise Server
    /// `https://HOST/api/v3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// GraphQL endpoint. Default: `$GITHUB_GRAPHQL_URL`, else derived from
    /// the REST base (`https://HOST/api/graphql` on Enterprise Server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphql_url: Option<String>,
    /// Labels put on every revert pull request.
    #[serde(default = "default_pr_labels")]
    pub labels: Vec<String>,
    /// GitHub users asked to review every revert pull request.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// GitHub users assigned to every revert pull request.
    #[serde(default)]
    pub assignees: Vec<String>,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            repository: None,
            api_url: None,
            graphql_url: None,
            labels: default_pr_labels(),
            reviewers: Vec::new(),
            assignees: Vec::new(),
        }
    }
}

/// `revertbot`: the label DESIGN gives revert pull requests.
pub fn default_pr_labels() -> Vec<String> {
    vec!["revertbot".to_owned()]
}

/// Slack.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SlackConfig {
    /// Channel for incident updates and approval requests: `"#name"` (quote
    /// it: `#` starts a YAML comment) or a channel ID like `C0123ABCD`.
    pub channel: String,
}

/// Who may approve a held revert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Slack member IDs (like `U0123ABCD`) allowed to press Approve.
    #[serde(default)]
    pub slack_users: Vec<String>,
    /// Minimum GitHub permission on the infra repo to approve with a
    /// `/revertbot approve` PR comment.
    #[serde(default)]
    pub github_permission: GitHubPermission,
}

/// `revertbot preflight`, the check on infra pull requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PreflightConfig {
    /// The lowest finding severity that fails the check (exit 5): `error`
    /// (default) or `warning`. `--fail-on` overrides it.
    #[serde(default)]
    pub fail_on: FailOn,
}

/// The lowest severity of a preflight finding that fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Only errors fail the check; warnings are reported.
    #[default]
    Error,
    /// Warnings fail the check too.
    Warning,
}

/// A GitHub repository permission level, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GitHubPermission {
    Read,
    Triage,
    #[default]
    Write,
    Maintain,
    Admin,
}

/// One app: a set of paths in the repo, the controller object that deploys
/// them, and how to judge and act on its health.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppConfig {
    /// Unique name; used in branch names (`revertbot/<app>/<sha>`), commit
    /// trailers and reports.
    pub name: String,
    /// Globs, relative to the repo root, of the files this app deploys. `*`
    /// stays within a directory, `**` matches any depth. A commit touching
    /// any of them is a culprit candidate.
    #[schemars(length(min = 1), with = "Vec<GlobSchema>")]
    pub paths: Vec<String>,
    /// The Argo CD Application that deploys this app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<AppArgoCd>,
    /// The Flux object that deploys this app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux: Option<AppFlux>,
    /// What counts as a breach.
    #[serde(default)]
    pub health: HealthConfig,
    /// What to do about a breach.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// How long to wait for recovery after a revert.
    #[serde(default)]
    pub wait: WaitConfig,
    /// What a revert undoes.
    #[serde(default)]
    pub revert: RevertConfig,
    /// How images are pinned to last-known-good digests.
    #[serde(default)]
    pub images: ImagesConfig,
}

impl AppConfig {
    /// The app's name as a domain type.
    pub fn app_name(&self) -> AppName {
        AppName(self.name.clone())
    }

    /// The app's `paths` compiled into one matcher for repo-relative paths
    /// (`guestbook/deploy.yaml`, `/` separators). Build it once and reuse it.
    pub fn path_matcher(&self) -> GlobSet {
        glob_set(&self.paths)
    }
}

/// Compiles validated globs. Validation compiled each one already with the
/// same options, so no glob is skipped and the set builds; should that ever
/// fail, the empty set matches nothing, which is the safe side for blame.
pub(crate) fn glob_set(globs: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        if let Ok(g) = compile_glob(glob) {
            builder.add(g);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// An Argo CD Application.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppArgoCd {
    /// Application name.
    pub app: String,
    /// Application namespace, for apps in any namespace. Default: Argo CD's
    /// own namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A Flux object.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppFlux {
    /// Kind of the Flux object.
    pub kind: FluxKind,
    /// Name of the Flux object.
    pub name: String,
    /// Namespace of the Flux object.
    #[serde(default = "default_flux_namespace")]
    pub namespace: String,
}

pub(crate) fn default_flux_namespace() -> String {
    "flux-system".to_owned()
}

/// Kind of a Flux object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub enum FluxKind {
    /// `kustomize.toolkit.fluxcd.io` Kustomization.
    Kustomization,
    /// `helm.toolkit.fluxcd.io` HelmRelease.
    HelmRelease,
}
