//! Decodes the YAML tree into [`Config`], one function per mapping type,
//! checking every value on the way; `apps[]` is in `read_app.rs`, checks
//! across apps and sections in `validate.rs`. Also the registry of every
//! mapping type ([`SECTIONS`]) that the schema drift tests compare against.

use super::decode::{Decoder, Keyword, MapReader, Path, Section};
use super::model::*;
use super::model_app::{Action, RevertScope, Severity};
use super::read_app::apps;
use super::scalars::Items;
use super::values::{
    Problem, check_branch, check_github_label, check_github_login, check_github_repository,
    check_slack_channel, check_slack_user, check_url,
};
use crate::yaml::Node;

macro_rules! section {
    ($name:ident, $ty:literal, $place:literal, [$($key:literal),* $(,)?], $example:literal) => {
        pub(crate) static $name: Section = Section {
            type_name: $ty,
            place: $place,
            keys: &[$($key),*],
            example: $example,
        };
    };
}

section!(
    CONFIG,
    "Config",
    "",
    [
        "version",
        "repo",
        "argocd",
        "flux",
        "prometheus",
        "alertmanager",
        "github",
        "slack",
        "approvals",
        "preflight",
        "apps"
    ],
    "version: 1"
);
section!(
    REPO,
    "RepoConfig",
    "repo",
    ["remote", "branch"],
    "repo: { remote: origin, branch: main }"
);
section!(
    ARGOCD,
    "ArgoCdConfig",
    "argocd",
    ["server"],
    "argocd: { server: https://argocd.example.com }"
);
section!(
    FLUX,
    "FluxConfig",
    "flux",
    ["context"],
    "flux: { context: prod }"
);
section!(
    PROMETHEUS,
    "PrometheusConfig",
    "prometheus",
    ["url"],
    "prometheus: { url: http://prometheus.monitoring:9090 }"
);
section!(
    ALERTMANAGER,
    "AlertmanagerConfig",
    "alertmanager",
    ["url"],
    "alertmanager: { url: http://alertmanager.monitoring:9093 }"
);
section!(
    GITHUB,
    "GitHubConfig",
    "github",
    [
        "repository",
        "api_url",
        "graphql_url",
        "labels",
        "reviewers",
        "assignees"
    ],
    "github: { repository: acme/infra }"
);
section!(
    SLACK,
    "SlackConfig",
    "slack",
    ["channel"],
    "slack: { channel: \"#deploys\" }"
);
section!(
    APPROVALS,
    "ApprovalsConfig",
    "approvals",
    ["slack_users", "github_permission"],
    "approvals: { slack_users: [U0123ABCD], github_permission: write }"
);
section!(
    PREFLIGHT,
    "PreflightConfig",
    "preflight",
    ["fail_on"],
    "preflight: { fail_on: error }"
);
section!(
    APP,
    "AppConfig",
    "apps[]",
    [
        "name", "paths", "argocd", "flux", "health", "policy", "wait", "revert", "images"
    ],
    "- { name: guestbook, paths: [\"guestbook/**\"] }"
);
section!(
    APP_ARGOCD,
    "AppArgoCd",
    "apps[].argocd",
    ["app", "namespace"],
    "argocd: { app: guestbook }"
);
section!(
    APP_FLUX,
    "AppFlux",
    "apps[].flux",
    ["kind", "name", "namespace"],
    "flux: { kind: Kustomization, name: guestbook }"
);
section!(
    HEALTH,
    "HealthConfig",
    "apps[].health",
    ["controller", "pods", "slos", "alerts"],
    "health: { controller: true }"
);
section!(
    PODS,
    "PodsConfig",
    "apps[].health.pods",
    ["crashloop", "image_pull", "not_ready_for"],
    "pods: { crashloop: true, not_ready_for: 2m }"
);
section!(
    SLO,
    "Slo",
    "apps[].health.slos[]",
    [
        "name",
        "query",
        "above",
        "below",
        "relative_to_baseline",
        "for",
        "severity"
    ],
    "- { name: error-rate, query: …, above: 0.05, for: 5m, severity: critical }"
);
section!(
    BASELINE,
    "Baseline",
    "apps[].health.slos[].relative_to_baseline",
    ["above", "below"],
    "relative_to_baseline: { below: -3% }"
);
section!(
    ALERTS,
    "AlertsConfig",
    "apps[].health.alerts",
    ["matchers"],
    "alerts: { matchers: ['app=\"guestbook\"'] }"
);
section!(
    POLICY,
    "PolicyConfig",
    "apps[].policy",
    [
        "critical",
        "warning",
        "cooldown",
        "max_reverts",
        "freeze",
        "grace"
    ],
    "policy: { critical: push, warning: approve }"
);
section!(
    MAX_REVERTS,
    "MaxReverts",
    "apps[].policy.max_reverts",
    ["count", "per"],
    "max_reverts: { count: 3, per: 24h }"
);
section!(
    WAIT,
    "WaitConfig",
    "apps[].wait",
    ["timeout"],
    "wait: { timeout: 10m }"
);
section!(
    REVERT,
    "RevertConfig",
    "apps[].revert",
    ["scope", "allow_outside"],
    "revert: { scope: app }"
);
section!(
    IMAGES,
    "ImagesConfig",
    "apps[].images",
    ["pin", "helm"],
    "images: { pin: true }"
);
section!(
    HELM,
    "HelmImage",
    "apps[].images.helm[]",
    ["files", "repository", "tag", "digest"],
    "- { files: [\"charts/*/values.yaml\"], repository: image.repository, tag: image.tag }"
);

/// Every mapping type of the config.
pub(crate) static SECTIONS: &[&Section] = &[
    &CONFIG,
    &REPO,
    &ARGOCD,
    &FLUX,
    &PROMETHEUS,
    &ALERTMANAGER,
    &GITHUB,
    &SLACK,
    &APPROVALS,
    &PREFLIGHT,
    &APP,
    &APP_ARGOCD,
    &APP_FLUX,
    &HEALTH,
    &PODS,
    &SLO,
    &BASELINE,
    &ALERTS,
    &POLICY,
    &MAX_REVERTS,
    &WAIT,
    &REVERT,
    &IMAGES,
    &HELM,
];

impl Keyword for GitHubPermission {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("read", Self::Read),
        ("triage", Self::Triage),
        ("write", Self::Write),
        ("maintain", Self::Maintain),
        ("admin", Self::Admin),
    ];
}

impl Keyword for FailOn {
    const NAMES: &'static [(&'static str, Self)] =
        &[("error", Self::Error), ("warning", Self::Warning)];
}

impl Keyword for FluxKind {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("Kustomization", Self::Kustomization),
        ("HelmRelease", Self::HelmRelease),
    ];
}

impl Keyword for Severity {
    const NAMES: &'static [(&'static str, Self)] =
        &[("critical", Self::Critical), ("warning", Self::Warning)];
}

impl Keyword for Action {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("push", Self::Push),
        ("pr", Self::Pr),
        ("pr-automerge", Self::PrAutomerge),
        ("approve", Self::Approve),
    ];
}

impl Keyword for RevertScope {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("app", Self::App),
        ("commits", Self::Commits),
        ("paths", Self::Paths),
    ];
}

pub(crate) fn open<'n>(
    d: &mut Decoder<'_>,
    node: &'n Node,
    at: &Path,
    section: &'static Section,
) -> Option<MapReader<'n>> {
    MapReader::open(d, node, at, section, SECTIONS)
}

/// Decodes the whole document. `None` when any error was recorded.
pub(crate) fn config(d: &mut Decoder<'_>, root: &Node) -> Option<Config> {
    let at = Path::root();
    if root.is_null() {
        d.error(
            root.span,
            &at,
            "the config file is empty",
            "start with `version: 1` and an `apps:` list",
        );
        return None;
    }
    let mut r = open(d, root, &at, &CONFIG)?;
    let version = r.required(d, "version", "version: 1", version);
    let repo = r.or_default(d, "repo", RepoConfig::default, repo);
    let argocd = r.optional(d, "argocd", argocd);
    let flux = r.optional(d, "flux", flux);
    let prometheus = r.optional(d, "prometheus", prometheus);
    let alertmanager = r.optional(d, "alertmanager", alertmanager);
    let github = r.optional(d, "github", github);
    let slack = r.optional(d, "slack", slack);
    let approvals = r.optional(d, "approvals", approvals);
    let preflight = r.or_default(d, "preflight", PreflightConfig::default, preflight);
    let apps = r.required(
        d,
        "apps",
        "apps: [{ name: guestbook, paths: [\"guestbook/**\"], argocd: { app: guestbook } }]",
        apps,
    );
    r.finish();
    Some(Config {
        version: version?,
        repo: repo?,
        argocd: argocd?,
        flux: flux?,
        prometheus: prometheus?,
        alertmanager: alertmanager?,
        github: github?,
        slack: slack?,
        approvals: approvals?,
        preflight: preflight?,
        apps: apps?,
    })
}

fn version(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<u32> {
    let scalar = node
        .as_scalar()
        .filter(|s| s.style == crate::yaml::Style::Plain);
    match scalar.and_then(|s| s.as_i64()) {
        Some(1) => Some(1),
        Some(v) => {
            let hint = if v > 1 {
                "this revertbot reads version 1: upgrade revertbot, or write `version: 1`"
            } else {
                "write `version: 1`"
            };
            d.error(node.span, at, format!("version {v} is not supported"), hint);
            None
        }
        None => {
            let found = node.as_str().map_or_else(
                || node.kind().to_owned(),
                |t| format!("{} `{t}`", node.kind()),
            );
            d.error(
                node.span,
                at,
                format!("version must be the number 1, found {found}"),
                "write `version: 1` (no quotes)",
            );
            None
        }
    }
}

fn check_word(text: &str) -> Result<(), Problem> {
    if text.trim().is_empty() || text.contains(char::is_whitespace) {
        Err(Problem::new(
            format!("`{text}` must be one word without spaces"),
            "write a name or URL",
        ))
    } else {
        Ok(())
    }
}

fn check_not_blank(text: &str) -> Result<(), Problem> {
    if text.trim().is_empty() {
        Err(Problem::new("it is blank", "write a value"))
    } else {
        Ok(())
    }
}

pub(crate) fn word(d: &mut Decoder<'_>, n: &Node, at: &Path) -> Option<String> {
    d.checked(n, at, check_word)
}

pub(crate) fn text(d: &mut Decoder<'_>, n: &Node, at: &Path) -> Option<String> {
    d.checked(n, at, check_not_blank)
}

pub(crate) fn url(d: &mut Decoder<'_>, n: &Node, at: &Path) -> Option<String> {
    d.checked(n, at, check_url)
}

fn repo(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<RepoConfig> {
    let mut r = open(d, node, at, &REPO)?;
    let remote = r.or_default(d, "remote", default_remote, word);
    let branch = r.or_default(d, "branch", default_branch, |d, n, p| {
        d.checked(n, p, check_branch)
    });
    r.finish();
    Some(RepoConfig {
        remote: remote?,
        branch: branch?,
    })
}

fn argocd(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<ArgoCdConfig> {
    let mut r = open(d, node, at, &ARGOCD)?;
    let server = r.optional(d, "server", url);
    r.finish();
    Some(ArgoCdConfig { server: server? })
}

fn flux(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<FluxConfig> {
    let mut r = open(d, node, at, &FLUX)?;
    let context = r.optional(d, "context", word);
    r.finish();
    Some(FluxConfig { context: context? })
}

fn prometheus(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<PrometheusConfig> {
    let mut r = open(d, node, at, &PROMETHEUS)?;
    let url = r.required(d, "url", "url: http://prometheus.monitoring:9090", url);
    r.finish();
    Some(PrometheusConfig { url: url? })
}

fn alertmanager(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<AlertmanagerConfig> {
    let mut r = open(d, node, at, &ALERTMANAGER)?;
    let url = r.required(d, "url", "url: http://alertmanager.monitoring:9093", url);
    r.finish();
    Some(AlertmanagerConfig { url: url? })
}

fn github(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<GitHubConfig> {
    let mut r = open(d, node, at, &GITHUB)?;
    let repository = r.optional(d, "repository", |d, n, p| {
        d.checked(n, p, check_github_repository)
    });
    let api_url = r.optional(d, "api_url", url);
    let graphql_url = r.optional(d, "graphql_url", url);
    let labels = r.or_default(d, "labels", default_pr_labels, |d, n, p| {
        d.list(n, p, "a list of label names", Items::Scalars, |d, n, p| {
            d.checked(n, p, check_github_label)
        })
    });
    let mut logins = |key: &'static str| {
        r.or_default(d, key, Vec::new, |d, n, p| {
            d.list(
                n,
                p,
                "a list of GitHub logins",
                Items::Scalars,
                |d, n, p| d.checked(n, p, check_github_login),
            )
        })
    };
    let reviewers = logins("reviewers");
    let assignees = logins("assignees");
    r.finish();
    Some(GitHubConfig {
        repository: repository?,
        api_url: api_url?,
        graphql_url: graphql_url?,
        labels: labels?,
        reviewers: reviewers?,
        assignees: assignees?,
    })
}

fn preflight(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<PreflightConfig> {
    let mut r = open(d, node, at, &PREFLIGHT)?;
    let fail_on = r.or_default(d, "fail_on", FailOn::default, Decoder::keyword);
    r.finish();
    Some(PreflightConfig { fail_on: fail_on? })
}

fn slack(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<SlackConfig> {
    let mut r = open(d, node, at, &SLACK)?;
    let channel = r.required(d, "channel", "channel: \"#deploys\"", |d, n, p| {
        d.checked(n, p, check_slack_channel)
    });
    r.finish();
    Some(SlackConfig { channel: channel? })
}

fn approvals(d: &mut Decoder<'_>, node: &Node, at: &Path) -> Option<ApprovalsConfig> {
    let mut r = open(d, node, at, &APPROVALS)?;
    let slack_users = r.or_default(d, "slack_users", Vec::new, |d, n, p| {
        d.list(
            n,
            p,
            "a list of Slack member IDs",
            Items::Scalars,
            |d, n, p| d.checked(n, p, check_slack_user),
        )
    });
    let github_permission = r.or_default(
        d,
        "github_permission",
        GitHubPermission::default,
        Decoder::keyword,
    );
    r.finish();
    Some(ApprovalsConfig {
        slack_users: slack_users?,
        github_permission: github_permission?,
    })
}
