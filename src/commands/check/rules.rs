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
