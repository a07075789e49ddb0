//! The app's config, as the pure policy's rules.

use crate::config::{Action as ConfigAction, AppConfig};
use crate::policy::{HealthRules, Mode, PolicyRules, RevertLimit};

pub(crate) fn health_rules(app: &AppConfig) -> HealthRules {
    let pods = &app.health.pods;
    HealthRules {
        controller: app.health.controller,
        crashloop: pods.crashloop,
        image_pull: pods.image_pull,
        not_ready_for: Some(pods.not_ready_for),
    }
}

pub(crate) fn policy_rules(app: &AppConfig) -> PolicyRules {
    let mode = |a: ConfigAction| match a {
        ConfigAction::Push => Mode::Push,
        ConfigAction::Pr => Mode::Pr,
        ConfigAction::PrAutomerge => Mode::PrAutomerge,
        ConfigAction::Approve => Mode::Approve,
    };
    PolicyRules {
        critical: mode(app.policy.critical),
        warning: mode(app.policy.warning),
        cooldown: app.policy.cooldown,
        max_reverts: RevertLimit {
            count: app.policy.max_reverts.count,
            per: app.policy.max_reverts.per,
        },
        freeze: app.policy.freeze,
        grace: app.policy.grace,
    }
}

/// Whether the app's policy publishes this breach by pull request.
pub(crate) fn by_pull_request(app: &AppConfig, verdict: &crate::policy::Verdict) -> bool {
    matches!(
        breach_mode(app, verdict),
        Some(crate::policy::Mode::Pr | crate::policy::Mode::PrAutomerge)
    )
}

/// Whether that pull request is to be auto-merged.
pub(crate) fn automerge_policy(app: &AppConfig, verdict: &crate::policy::Verdict) -> bool {
    breach_mode(app, verdict) == Some(crate::policy::Mode::PrAutomerge)
}

/// What the policy does with this breach; `None` when it is none.
pub(crate) fn breach_mode(
    app: &AppConfig,
    verdict: &crate::policy::Verdict,
) -> Option<crate::policy::Mode> {
    let crate::policy::Verdict::Breach { severity, .. } = verdict else {
        return None;
    };
    let rules = policy_rules(app);
    Some(match severity {
        crate::policy::Severity::Critical => rules.critical,
        crate::policy::Severity::Warning => rules.warning,
    })
}

/// The evidence a verdict rests on (none when it is unknown).
pub(crate) fn verdict_evidence(verdict: &crate::policy::Verdict) -> &[crate::policy::Evidence] {
    match verdict {
        crate::policy::Verdict::Healthy { evidence }
        | crate::policy::Verdict::Breach { evidence, .. } => evidence,
        crate::policy::Verdict::Unknown { .. } => &[],
    }
}
