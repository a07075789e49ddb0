//! The per-app health, policy, wait, revert and images settings.

use std::time::Duration;

use globset::GlobSet;
use schemars::JsonSchema;
use serde::Serialize;

use super::model::glob_set;
use super::schema::{DurationSchema, GlobSchema, PercentSchema};
use super::values::{Percent, format_duration};

/// What counts as a breach.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthConfig {
    /// The controller reporting the app Degraded, Missing or not Ready is a
    /// (critical) breach.
    #[serde(default = "yes")]
    pub controller: bool,
    /// Pod-level fast failure, before the controller's progress deadline.
    /// On by default (crash loop, image pull, not Ready for 5m), also when
    /// `health.pods` is absent; the grace period never delays it.
    #[serde(default)]
    pub pods: PodsConfig,
    /// Service-level objectives: PromQL queries held beyond a threshold for
    /// a duration.
    #[serde(default)]
    pub slos: Vec<Slo>,
    /// Firing Alertmanager alerts that count as a breach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            controller: true,
            pods: PodsConfig::default(),
            slos: Vec::new(),
            alerts: None,
        }
    }
}

pub(crate) fn yes() -> bool {
    true
}

/// Pod-level fast failure for pods of the new revision.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PodsConfig {
    /// A pod in `CrashLoopBackOff` is a breach (default true).
    #[serde(default = "yes")]
    pub crashloop: bool,
    /// A pod in `ImagePullBackOff` or `ErrImagePull` is a breach (default
    /// true).
    #[serde(default = "yes")]
    pub image_pull: bool,
    /// A pod of the new revision not Ready for this long is a breach
    /// (default 5m).
    #[serde(
        default = "default_not_ready_for",
        serialize_with = "serialize_duration"
    )]
    #[schemars(with = "DurationSchema")]
    pub not_ready_for: Duration,
}

impl Default for PodsConfig {
    fn default() -> Self {
        Self {
            crashloop: true,
            image_pull: true,
            not_ready_for: default_not_ready_for(),
        }
    }
}

pub(crate) fn default_not_ready_for() -> Duration {
    Duration::from_secs(5 * 60)
}

/// A service-level objective: breached when the query's value stays beyond
/// the threshold for the whole `for` window. Set `above` and/or `below`, or
/// `relative_to_baseline`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Slo {
    /// Name, unique within the app; shown in reports and messages.
    pub name: String,
    /// PromQL query returning one value.
    pub query: String,
    /// Breach when the value is above this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Breach when the value is below this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Breach when the value moves this far from its value at the
    /// last-known-good revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_to_baseline: Option<Baseline>,
    /// How long the breach must hold (`5m`).
    #[serde(rename = "for", serialize_with = "serialize_duration")]
    #[schemars(with = "DurationSchema")]
    pub r#for: Duration,
    /// `critical` breaches follow `policy.critical`, `warning` ones
    /// `policy.warning`.
    pub severity: Severity,
}

/// A threshold relative to the baseline, as a signed percentage.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Baseline {
    /// Breach when the value exceeds the baseline by this much (`+30%`).
    #[serde(
        serialize_with = "serialize_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<PercentSchema>")]
    pub above: Option<Percent>,
    /// Breach when the value falls below the baseline by this much (`-3%`).
    #[serde(
        serialize_with = "serialize_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<PercentSchema>")]
    pub below: Option<Percent>,
}

/// Severity of an SLO breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Follows `policy.critical` (default: push the revert).
    Critical,
    /// Follows `policy.warning` (default: ask for approval).
    Warning,
}

/// Firing alerts that count as a breach.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alertmanager matchers, all of which an alert must match, like
    /// `app="guestbook"`.
    #[schemars(length(min = 1))]
    pub matchers: Vec<String>,
}

/// What to do about a breach, and the guards that can hold it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Action for critical breaches (controller, pods, critical SLOs,
    /// alerts).
    #[serde(default = "default_critical")]
    pub critical: Action,
    /// Action for warning breaches.
    #[serde(default = "default_warning")]
    pub warning: Action,
    /// Minimum time between two reverts of this app.
    #[serde(default = "default_cooldown", serialize_with = "serialize_duration")]
    #[schemars(with = "DurationSchema")]
    pub cooldown: Duration,
    /// At most this many reverts of this app per window; more is a loop and
    /// is held.
    #[serde(default)]
    pub max_reverts: MaxReverts,
    /// Hold every revert of this app (breaches are still reported).
    #[serde(default)]
    pub freeze: bool,
    /// Time after a sync before controller health counts. Pod fast failure
    /// (crash loop, image pull, not Ready) is never delayed by it.
    #[serde(default = "default_grace", serialize_with = "serialize_duration")]
    #[schemars(with = "DurationSchema")]
    pub grace: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            critical: default_critical(),
            warning: default_warning(),
            cooldown: default_cooldown(),
            max_reverts: MaxReverts::default(),
            freeze: false,
            grace: default_grace(),
        }
    }
}

pub(crate) fn default_critical() -> Action {
    Action::Push
}
pub(crate) fn default_warning() -> Action {
    Action::Approve
}
pub(crate) fn default_cooldown() -> Duration {
    Duration::from_secs(30 * 60)
}
pub(crate) fn default_grace() -> Duration {
    Duration::from_secs(120)
}

/// What to do about a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Push the revert to the branch (fast-forward only).
    Push,
    /// Open a revert pull request.
    Pr,
    /// Open a revert pull request with auto-merge enabled.
    PrAutomerge,
    /// Ask an approver first (Slack button or `/revertbot approve`).
    Approve,
}

/// A revert-rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct MaxReverts {
    /// Reverts allowed per window (at least 1).
    #[serde(default = "default_max_count")]
    #[schemars(range(min = 1))]
    pub count: u32,
    /// Length of the window.
    #[serde(default = "default_max_per", serialize_with = "serialize_duration")]
    #[schemars(with = "DurationSchema")]
    pub per: Duration,
}

impl Default for MaxReverts {
    fn default() -> Self {
        Self {
            count: default_max_count(),
            per: default_max_per(),
        }
    }
}

pub(crate) fn default_max_count() -> u32 {
    3
}
pub(crate) fn default_max_per() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// Waiting for recovery after a revert.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WaitConfig {
    /// Give up (and escalate once) if the app is not Healthy at the revert
    /// revision after this long.
    #[serde(default = "default_timeout", serialize_with = "serialize_duration")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
}

impl Default for WaitConfig {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
        }
    }
}

pub(crate) fn default_timeout() -> Duration {
    Duration::from_secs(600)
}

/// What a revert undoes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RevertConfig {
    /// `app` (default): undo the culprits' changes inside the app's paths
    /// (three-way, so later edits survive) and leave every other file they
    /// changed as it is. `commits`: revert the culprit commits whole
    /// (refused when that touches another app's files, unless
    /// `allow_outside`). `paths`: restore the app's files to their
    /// last-known-good content.
    #[serde(default)]
    pub scope: RevertScope,
    /// With `scope: commits`, let the revert change files outside the app's
    /// paths (other apps' and shared files). Default false.
    #[serde(default)]
    pub allow_outside: bool,
}

/// What a revert undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevertScope {
    /// Undo the culprits' changes inside the app's paths only; files of
    /// other apps that the culprits changed are left as they are.
    #[default]
    App,
    /// Revert the culprit commits whole.
    Commits,
    /// Restore the app's files to their last-known-good content.
    Paths,
}

/// Pinning images to last-known-good digests.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ImagesConfig {
    /// Rewrite the app's image references to their last-known-good digests
    /// in the revert commit.
    #[serde(default = "yes")]
    pub pin: bool,
    /// Image references split over Helm values keys (repository / tag /
    /// digest), beyond plain `image:` fields.
    #[serde(default)]
    pub helm: Vec<HelmImage>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            pin: true,
            helm: Vec::new(),
        }
    }
}

/// Where a Helm values file keeps an image reference.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HelmImage {
    /// Globs of the values files, relative to the repo root.
    #[schemars(length(min = 1), with = "Vec<GlobSchema>")]
    pub files: Vec<String>,
    /// Dotted key path of the image repository, like `image.repository`.
    pub repository: String,
    /// Dotted key path of the tag, like `image.tag`.
    pub tag: String,
    /// Dotted key path for the digest, like `image.digest`. Default: the
    /// digest is appended to the tag (`v1@sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl HelmImage {
    /// `files` compiled into one matcher for repo-relative paths.
    pub fn file_matcher(&self) -> GlobSet {
        glob_set(&self.files)
    }
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn serialize_opt_percent<S: serde::Serializer>(
    p: &Option<Percent>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.to_string()),
        None => s.serialize_none(),
    }
}
