//! Builders shared by the policy tests (`#[path]`-included by
//! `policy_table.rs` and `policy_props.rs`; as a target of its own it has no
//! tests).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use jiff::Timestamp;
use revertbot::domain::health::{
    Deployed, Health, LiveImage, Observation, Operation, OperationPhase, PodState, SyncStatus,
    Waiting,
};
use revertbot::domain::ledger::RecordedImage;
use revertbot::domain::{AppName, CommitSha, Digest};
use revertbot::policy::{
    Approval, CulpritFact, DecideInput, Decision, Facts, HealthRules, JudgeInput, LastKnownGood,
    PolicyRules, Quarantined, SignalResult, Unavailable, Verdict, decide, judge,
};

/// A fixed "now": 2025-06-15T15:06:40Z.
pub const NOW: i64 = 1_750_000_000;

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

pub fn at(offset_secs: i64) -> Timestamp {
    ts(NOW + offset_secs)
}

pub fn sha(c: char) -> CommitSha {
    c.to_string().repeat(40).parse().unwrap()
}

pub fn digest(c: char) -> Digest {
    format!("sha256:{}", c.to_string().repeat(64))
        .parse()
        .unwrap()
}

pub fn app() -> AppName {
    AppName("web".into())
}

pub const MIN: Duration = Duration::from_secs(60);

/// A Ready pod of the current revision running `ghcr.io/acme/web:2` at
/// digest `a…`.
pub fn pod(name: &str) -> PodState {
    PodState {
        name: name.into(),
        namespace: "web".into(),
        created_at: Some(at(-3000)),
        ready: true,
        ready_since: Some(at(-2990)),
        waiting: Vec::new(),
        restart_count: 0,
        images: vec![LiveImage {
            container: "web".into(),
            image: "ghcr.io/acme/web:2".into(),
            digest: Some(digest('a')),
        }],
        current: true,
    }
}

pub fn waiting(reason: &str) -> Waiting {
    Waiting {
        container: "web".into(),
        reason: reason.into(),
    }
}

/// Healthy, Synced, reconciled after the last sync (50 minutes ago) of
/// revision `d…`.
pub fn observation() -> Observation {
    Observation {
        app: app(),
        source: "argocd:web".into(),
        deployed: Some(sha('d')),
        target: Some(sha('d')),
        health: Health::Healthy,
        health_message: None,
        sync: SyncStatus::Synced,
        operation: Some(Operation {
            phase: OperationPhase::Succeeded,
            revision: Some(sha('d')),
            started_at: Some(at(-3010)),
            finished_at: Some(at(-3000)),
            message: "successfully synced (all tasks run)".into(),
            retry_count: 0,
        }),
        reconciled_at: Some(at(-30)),
        history: vec![
            Deployed {
                revision: sha('1'),
                deployed_at: Some(at(-90_000)),
            },
            Deployed {
                revision: sha('d'),
                deployed_at: Some(at(-3000)),
            },
        ],
        pods: vec![pod("web-7f9c-abcde")],
        apply_failure: None,
    }
}

/// LKG `1…` (running `ghcr.io/acme/web:1` at digest `b…`), one culprit
/// `c…`, no past reverts.
pub fn facts() -> Facts {
    Facts {
        last_known_good: Some(LastKnownGood {
            revision: sha('1'),
            images: vec![RecordedImage {
                image: "ghcr.io/acme/web:1".into(),
                digest: digest('b'),
            }],
        }),
        culprits: vec![CulpritFact {
            sha: sha('c'),
            revertbot_revert: None,
        }],
        ..Facts::default()
    }
}

/// One judge + decide run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub obs: Result<Observation, Unavailable>,
    pub now: Timestamp,
    pub health: HealthRules,
    pub quarantine: Vec<Quarantined>,
    pub manifest: Vec<RecordedImage>,
    pub signals: Vec<SignalResult>,
    pub policy: PolicyRules,
    pub facts: Facts,
    pub force: bool,
    pub approval: Option<Approval>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            obs: Ok(observation()),
            now: ts(NOW),
            // The rows are written against a 2m not-Ready limit.
            health: HealthRules {
                not_ready_for: Some(Duration::from_secs(120)),
                ..HealthRules::default()
            },
            quarantine: Vec::new(),
            manifest: Vec::new(),
            signals: Vec::new(),
            policy: PolicyRules::default(),
            facts: facts(),
            force: false,
            approval: None,
        }
    }
}

impl Scenario {
    pub fn obs_mut(&mut self) -> &mut Observation {
        if self.obs.is_err() {
            self.obs = Ok(observation());
        }
        match &mut self.obs {
            Ok(o) => o,
            Err(_) => unreachable!(),
        }
    }

    pub fn verdict(&self) -> Verdict {
        judge(&JudgeInput {
            observed: self.obs.as_ref(),
            now: self.now,
            rules: &self.health,
            quarantine: &self.quarantine,
            manifest_digests: &self.manifest,
            signals: &self.signals,
        })
    }

    pub fn decide_on(&self, verdict: &Verdict) -> Decision {
        decide(&DecideInput {
            app: &app(),
            verdict,
            observation: self.obs.as_ref().ok(),
            now: self.now,
            policy: &self.policy,
            facts: &self.facts,
            force_guards: self.force,
            approval: self.approval.as_ref(),
        })
    }

    pub fn run(&self) -> (Verdict, Decision) {
        let verdict = self.verdict();
        let decision = self.decide_on(&verdict);
        (verdict, decision)
    }
}

/// A short name for a decision, for tables.
pub fn outcome(d: &Decision) -> String {
    match d {
        Decision::RecordLastKnownGood(_) => "record".into(),
        Decision::Revert(intent) => format!("revert:{}", intent.mode),
        Decision::RequestApproval(_) => "approval".into(),
        Decision::Hold { guard, .. } => {
            let kind = serde_json::to_value(guard.kind()).unwrap();
            format!("hold:{}", kind.as_str().unwrap_or("?"))
        }
        Decision::Nothing { .. } => "nothing".into(),
    }
}

pub fn is_revert(d: &Decision) -> bool {
    matches!(d, Decision::Revert(_) | Decision::RequestApproval(_))
}
