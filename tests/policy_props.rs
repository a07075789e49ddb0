//! Properties of `judge` + `decide` over arbitrary inputs:
//! (a) no sequence of observations reverts twice inside the cooldown, or
//!     more than `max_reverts` times per window;
//! (b) no input without data (no observation, Unknown verdicts, NoData
//!     signals) ever reverts;
//! (c) a healthy app is never reverted;
//! (d) `force_guards` never bypasses "no last-known-good";
//! and both functions are total, with every revert consistent with the
//! guards it passed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_common.rs"]
mod common;

use std::time::Duration;

use common::*;
use jiff::Timestamp;
use proptest::prelude::*;
use revertbot::domain::CommitSha;
use revertbot::domain::health::{
    Deployed, Health, LiveImage, Observation, Operation, OperationPhase, PodState, SyncStatus,
    Waiting,
};
use revertbot::domain::ledger::{LkgRecord, RecordSource, RecordedImage};
use revertbot::policy::{
    Approval, CulpritFact, Decision, Facts, HealthRules, LastKnownGood, Mode, PastRevert,
    PolicyRules, Quarantined, RevertLimit, RevertedFact, Severity, SignalResult, SignalState,
    Unavailable, UnavailableKind, Verdict,
};

// ---- strategies ------------------------------------------------------------

fn arb_time() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        20 => (-200_000i64..200_000).prop_map(at),
        1 => Just(Timestamp::MIN),
        1 => Just(Timestamp::MAX),
    ]
}

fn arb_opt_time() -> impl Strategy<Value = Option<Timestamp>> {
    prop::option::weighted(0.85, arb_time())
}

fn arb_sha() -> impl Strategy<Value = CommitSha> {
    prop::sample::select(vec!['1', 'c', 'd', 'e', 'f', '9']).prop_map(sha)
}

fn arb_digest_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec!['a', 'b', 'f'])
}

fn arb_duration(max_secs: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        10 => (0..=max_secs).prop_map(Duration::from_secs),
        1 => Just(Duration::MAX),
    ]
}

fn arb_health() -> impl Strategy<Value = Health> {
    prop::sample::select(vec![
        Health::Healthy,
        Health::Suspended,
        Health::Progressing,
        Health::Missing,
        Health::Degraded,
        Health::Unknown,
    ])
}

fn arb_phase() -> impl Strategy<Value = OperationPhase> {
    prop::sample::select(vec![
        OperationPhase::Running,
        OperationPhase::Terminating,
        OperationPhase::Succeeded,
        OperationPhase::Failed,
        OperationPhase::Error,
    ])
}

fn arb_operation() -> impl Strategy<Value = Option<Operation>> {
    prop::option::of(
        (
            arb_phase(),
            prop::option::of(arb_sha()),
            arb_opt_time(),
            arb_opt_time(),
        )
            .prop_map(|(phase, revision, started_at, finished_at)| Operation {
                phase,
                revision,
                started_at,
                finished_at,
                message: "op".into(),
                retry_count: 0,
            }),
    )
}

const REASONS: [&str; 5] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ContainerCreating",
    "InvalidImageName",
];

fn arb_pod() -> impl Strategy<Value = PodState> {
    (
        any::<bool>(),
        arb_opt_time(),
        arb_opt_time(),
        prop::collection::vec(prop::sample::select(REASONS.to_vec()), 0..2),
        prop::collection::vec(prop::option::of(arb_digest_char()), 0..3),
        any::<bool>(),
        0u32..10,
    )
        .prop_map(
            |(ready, created_at, ready_since, reasons, digests, current, restarts)| PodState {
                name: "web-pod".into(),
                namespace: "web".into(),
                created_at,
                ready,
                ready_since,
                waiting: reasons.into_iter().map(waiting).collect(),
                restart_count: restarts,
                images: digests
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| LiveImage {
                        container: format!("c{i}"),
                        image: format!("ghcr.io/acme/web-{i}:2"),
                        digest: d.map(digest),
                    })
                    .collect(),
                current,
            },
        )
}

fn arb_observation() -> impl Strategy<Value = Observation> {
    (
        prop::option::weighted(0.9, arb_sha()),
        arb_health(),
        prop::sample::select(vec![
            SyncStatus::Synced,
            SyncStatus::OutOfSync,
            SyncStatus::Unknown,
        ]),
        arb_operation(),
        arb_opt_time(),
        prop::collection::vec((arb_sha(), arb_opt_time()), 0..3),
        prop::collection::vec(arb_pod(), 0..3),
    )
        .prop_map(
            |(deployed, health, sync, operation, reconciled_at, history, pods)| Observation {
                app: app(),
                source: "argocd:web".into(),
                target: deployed.clone(),
                deployed,
                health,
                health_message: None,
                sync,
                operation,
                reconciled_at,
                history: history
                    .into_iter()
                    .map(|(revision, deployed_at)| Deployed {
                        revision,
                        deployed_at,
                    })
                    .collect(),
                pods,
                apply_failure: None,
            },
        )
}

fn arb_unavailable() -> impl Strategy<Value = Unavailable> {
    prop::sample::select(vec![
        UnavailableKind::Unreachable,
        UnavailableKind::Malformed,
        UnavailableKind::NotFound,
    ])
    .prop_map(|kind| Unavailable {
        kind,
        detail: "boom".into(),
    })
}

fn arb_signal_state() -> impl Strategy<Value = SignalState> {
    prop::sample::select(vec![
        SignalState::Breaching,
        SignalState::Ok,
        SignalState::NoData,
    ])
}

fn arb_severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(vec![Severity::Warning, Severity::Critical])
}

fn arb_signals() -> impl Strategy<Value = Vec<SignalResult>> {
    prop::collection::vec(
        (arb_severity(), arb_signal_state()).prop_map(|(severity, state)| SignalResult {
            name: "slo".into(),
            severity,
            state,
            detail: String::new(),
        }),
        0..3,
    )
}

fn arb_mode() -> impl Strategy<Value = Mode> {
    prop::sample::select(vec![Mode::Push, Mode::Pr, Mode::PrAutomerge, Mode::Approve])
}

fn arb_policy() -> impl Strategy<Value = PolicyRules> {
    (
        arb_mode(),
        arb_mode(),
        arb_duration(4 * 3600),
        0u32..5,
        arb_duration(48 * 3600),
        any::<bool>(),
        arb_duration(600),
    )
        .prop_map(
            |(critical, warning, cooldown, count, per, freeze, grace)| PolicyRules {
                critical,
                warning,
                cooldown,
                max_reverts: RevertLimit { count, per },
                freeze,
                grace,
            },
        )
}

fn arb_health_rules() -> impl Strategy<Value = HealthRules> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(arb_duration(900)),
    )
        .prop_map(
            |(controller, crashloop, image_pull, not_ready_for)| HealthRules {
                controller,
                crashloop,
                image_pull,
                not_ready_for,
            },
        )
}

fn arb_past_revert() -> impl Strategy<Value = PastRevert> {
    (arb_time(), prop::collection::vec(arb_sha(), 0..2)).prop_map(|(at, culprits)| PastRevert {
        incident: "web-past".into(),
        at,
        culprits,
    })
}

fn arb_facts() -> impl Strategy<Value = Facts> {
    (
        prop::option::of((arb_sha(), prop::collection::vec(arb_digest_char(), 0..2))),
        prop::collection::vec((arb_sha(), any::<bool>()), 0..3),
        prop::collection::vec((arb_sha(), arb_sha()), 0..2),
        any::<bool>(),
        prop::collection::vec(arb_past_revert(), 0..4),
        any::<bool>(),
        prop::collection::vec(
            (arb_sha(), prop::collection::vec(arb_digest_char(), 0..2)),
            0..2,
        ),
    )
        .prop_map(
            |(lkg, culprits, reverted, deployed_is_revert, past_reverts, freeze, recorded)| {
                let images = |ds: Vec<char>| -> Vec<RecordedImage> {
                    ds.into_iter()
                        .enumerate()
                        .map(|(i, d)| RecordedImage {
                            image: format!("ghcr.io/acme/web-{i}:2"),
                            digest: digest(d),
                        })
                        .collect()
                };
                Facts {
                    last_known_good: lkg.map(|(revision, ds)| LastKnownGood {
                        revision,
                        images: images(ds),
                    }),
                    culprits: culprits
                        .into_iter()
                        .map(|(sha, is_revert)| CulpritFact {
                            sha,
                            revertbot_revert: is_revert.then(|| "web-old".into()),
                        })
                        .collect(),
                    already_reverted: reverted
                        .into_iter()
                        .map(|(culprit, by)| RevertedFact { culprit, by })
                        .collect(),
                    deployed_is_revert: deployed_is_revert.then(|| "web-old".into()),
                    past_reverts,
                    freeze_file: freeze.then(|| ".revertbot-freeze".into()),
                    recorded: recorded
                        .into_iter()
                        .map(|(revision, ds)| LkgRecord {
                            app: app(),
                            revision,
                            images: images(ds),
                            source: RecordSource::Controller,
                            recorded_at: at(-100),
                        })
                        .collect(),
                }
            },
        )
}

fn arb_quarantine() -> impl Strategy<Value = Vec<Quarantined>> {
    prop::collection::vec(
        arb_digest_char().prop_map(|d| Quarantined {
            digest: digest(d),
            image: format!("ghcr.io/acme/web:x@{}", digest(d)),
            incident: "web-q".into(),
        }),
        0..2,
    )
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![
            9 => arb_observation().prop_map(Ok),
            1 => arb_unavailable().prop_map(Err),
        ],
        arb_time(),
        arb_health_rules(),
        arb_quarantine(),
        prop::collection::vec(
            (arb_digest_char()).prop_map(|d| RecordedImage {
                image: "ghcr.io/acme/web:m".into(),
                digest: digest(d),
            }),
            0..2,
        ),
        arb_signals(),
        arb_policy(),
        arb_facts(),
        any::<bool>(),
        prop::option::of(Just(Approval { by: "U1".into() })),
    )
        .prop_map(
            |(obs, now, health, quarantine, manifest, signals, policy, facts, force, approval)| {
                Scenario {
                    obs,
                    now,
                    health,
                    quarantine,
                    manifest,
                    signals,
                    policy,
                    facts,
                    force,
                    approval,
                }
            },
        )
}

/// A pod that proves nothing bad: Ready, nothing waiting.
fn clean(pod: &mut PodState) {
    pod.ready = true;
    pod.waiting.clear();
}

// ---- properties ------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Total, and every decision is consistent with its inputs.
    #[test]
    fn total_and_consistent(s in arb_scenario()) {
        let (verdict, decision) = s.run();
        let _ = (verdict.to_string(), decision.to_string());
        serde_json::to_string(&decision).unwrap();
        prop_assert_eq!(decision.exit_code(), if decision.is_held() { 4 } else { 0 });
        if let Decision::Hold { guard, reason } = &decision {
            prop_assert!(verdict.is_breach());
            prop_assert_eq!(reason, &guard.to_string());
        }
        if matches!(decision, Decision::RecordLastKnownGood(_)) {
            prop_assert!(matches!(verdict, Verdict::Healthy { .. }), "{}", verdict);
        }
        let intent = match &decision {
            Decision::Revert(a) => Some(a.get()),
            Decision::RequestApproval(i) => Some(i),
            _ => None,
        };
        if let Some(intent) = intent {
            prop_assert!(verdict.is_breach());
            let obs = s.obs.as_ref().unwrap();
            let lkg = s.facts.last_known_good.as_ref().unwrap();
            prop_assert_eq!(&intent.last_known_good, &lkg.revision);
            prop_assert_eq!(Some(&intent.deployed), obs.deployed.as_ref());
            prop_assert_ne!(&intent.deployed, &intent.last_known_good);
            prop_assert!(!intent.culprits.is_empty());
            prop_assert_eq!(&intent.pin, &lkg.images);
            if !s.force {
                prop_assert!(intent.overridden.is_empty());
                prop_assert!(s.facts.deployed_is_revert.is_none());
                prop_assert!(!s.policy.freeze && s.facts.freeze_file.is_none());
                for c in &s.facts.culprits {
                    prop_assert!(c.revertbot_revert.is_none());
                    prop_assert!(s.facts.past_reverts.iter().all(|p| !p.culprits.contains(&c.sha)));
                }
                for p in &s.facts.past_reverts {
                    let since = Duration::try_from(s.now.duration_since(p.at)).ok();
                    prop_assert!(since.is_some_and(|d| d >= s.policy.cooldown));
                }
            }
        }
        if let Decision::Revert(intent) = &decision {
            let mode = match intent.severity {
                Severity::Critical => s.policy.critical,
                Severity::Warning => s.policy.warning,
            };
            // Approve mode publishes only with an approval.
            prop_assert!(mode != Mode::Approve || s.approval.is_some());
            prop_assert_eq!(intent.approved_by.is_some(), s.approval.is_some());
        }
    }

    /// (b) No observation: Unknown, and nothing is done, whatever else is
    /// known or forced.
    #[test]
    fn no_observation_never_reverts(
        u in arb_unavailable(),
        s in arb_scenario(),
    ) {
        let s = Scenario { obs: Err(u), ..s };
        let (verdict, decision) = s.run();
        prop_assert!(matches!(verdict, Verdict::Unknown { .. }), "{}", verdict);
        prop_assert!(matches!(decision, Decision::Nothing { .. }), "{}", decision);
    }

    /// (b) An Unknown verdict never reverts, whatever the guard facts.
    #[test]
    fn unknown_never_reverts(s in arb_scenario()) {
        let verdict = s.verdict();
        if let Verdict::Unknown { .. } = verdict {
            let d = s.decide_on(&verdict);
            prop_assert!(matches!(d, Decision::Nothing { .. }), "{}", d);
        }
    }

    /// (b) Signals without data (or Ok) never change a decision: adding
    /// them to any input gives the same outcome as leaving them out.
    #[test]
    fn no_data_signals_change_nothing(
        s in arb_scenario(),
        quiet in prop::collection::vec((arb_severity(), prop::bool::ANY), 1..4),
    ) {
        let mut without = s.clone();
        without.signals.retain(|x| x.state == SignalState::Breaching);
        let mut with = without.clone();
        with.signals.extend(quiet.into_iter().map(|(severity, no_data)| SignalResult {
            name: "quiet".into(),
            severity,
            state: if no_data { SignalState::NoData } else { SignalState::Ok },
            detail: String::new(),
        }));
        let (_, a) = without.run();
        let (_, b) = with.run();
        prop_assert_eq!(outcome(&a), outcome(&b));
    }

    /// (b) A controller that cannot tell (Unknown, Suspended, Progressing,
    /// or stale health), with clean pods, no quarantined digest and no
    /// breaching signal, never reverts.
    #[test]
    fn controller_without_an_answer_never_reverts(
        mut s in arb_scenario(),
        mut obs in arb_observation(),
        health in prop::sample::select(vec![Health::Unknown, Health::Suspended, Health::Progressing]),
    ) {
        obs.health = health;
        obs.pods.iter_mut().for_each(clean);
        s.obs = Ok(obs);
        s.quarantine.clear();
        s.signals.retain(|x| x.state != SignalState::Breaching);
        let (verdict, decision) = s.run();
        prop_assert!(matches!(verdict, Verdict::Unknown { .. }), "{}", verdict);
        prop_assert!(!is_revert(&decision), "{}", decision);
    }

    /// (b) Degraded health that is stale never reverts on its own.
    #[test]
    fn stale_degraded_never_reverts(mut s in arb_scenario(), mut obs in arb_observation()) {
        obs.health = Health::Degraded;
        obs.pods.iter_mut().for_each(clean);
        obs.operation = Some(Operation {
            phase: OperationPhase::Succeeded,
            revision: obs.deployed.clone(),
            started_at: Some(at(-70)),
            finished_at: Some(at(-60)),
            message: String::new(),
            retry_count: 0,
        });
        obs.reconciled_at = Some(at(-61));
        s.obs = Ok(obs);
        s.quarantine.clear();
        s.signals.clear();
        let (verdict, decision) = s.run();
        prop_assert!(matches!(verdict, Verdict::Unknown { .. }), "{}", verdict);
        prop_assert!(!is_revert(&decision), "{}", decision);
    }

    /// (c) Whatever the facts, a Healthy verdict is recorded or left alone,
    /// never reverted.
    #[test]
    fn healthy_is_never_reverted(s in arb_scenario()) {
        let (verdict, decision) = s.run();
        if let Verdict::Healthy { .. } = verdict {
            prop_assert!(
                matches!(decision, Decision::RecordLastKnownGood(_) | Decision::Nothing { .. }),
                "{}", decision
            );
        }
    }

    /// (c) An app the controller reports Healthy, Synced and fresh, with
    /// Ready pods, no quarantined digest and no breaching signal, is
    /// Healthy, and never reverted.
    #[test]
    fn a_healthy_app_is_healthy(mut s in arb_scenario(), mut obs in arb_observation()) {
        obs.health = Health::Healthy;
        obs.sync = SyncStatus::Synced;
        obs.deployed = Some(sha('d'));
        obs.operation = None;
        obs.pods.iter_mut().for_each(clean);
        s.obs = Ok(obs);
        s.quarantine.clear();
        s.signals.retain(|x| x.state != SignalState::Breaching);
        let (verdict, decision) = s.run();
        prop_assert!(matches!(verdict, Verdict::Healthy { .. }), "{}", verdict);
        prop_assert!(!is_revert(&decision), "{}", decision);
    }

    /// (d) `force_guards` never reverts without a last-known-good.
    #[test]
    fn force_never_bypasses_no_lkg(mut s in arb_scenario()) {
        s.force = true;
        s.facts.last_known_good = None;
        let (_, decision) = s.run();
        prop_assert!(!is_revert(&decision), "{}", decision);
    }

    /// (a) Over any sequence of observations, with each revert fed back as
    /// history, no two reverts fall inside the cooldown and no window of
    /// `per` holds more than `count` reverts.
    #[test]
    fn reverts_respect_cooldown_and_rate(
        policy in arb_policy(),
        steps in prop::collection::vec(
            (0i64..3_600, 0usize..4, arb_observation(), any::<bool>(), any::<bool>()),
            1..60,
        ),
    ) {
        let mut now = NOW;
        let mut reverts: Vec<PastRevert> = Vec::new();
        for (i, (step, kind, random_obs, fresh_culprit, approved)) in steps.into_iter().enumerate() {
            now += step;
            let mut obs = observation();
            match kind {
                0 => {}
                1 => obs.health = Health::Degraded,
                2 => {
                    obs.health = Health::Progressing;
                    obs.pods[0].waiting.push(Waiting { container: "web".into(), reason: "CrashLoopBackOff".into() });
                }
                _ => obs = random_obs,
            }
            let culprit = if fresh_culprit {
                format!("{:040x}", i + 1).parse().unwrap()
            } else {
                sha('c')
            };
            let mut facts = facts();
            facts.culprits = vec![CulpritFact { sha: culprit, revertbot_revert: None }];
            facts.past_reverts = reverts.clone();
            let s = Scenario {
                obs: Ok(obs),
                now: ts(now),
                policy: policy.clone(),
                facts,
                approval: approved.then(|| Approval { by: "U1".into() }),
                ..Scenario::default()
            };
            let (_, decision) = s.run();
            if let Decision::Revert(intent) = decision {
                reverts.push(PastRevert {
                    incident: intent.incident.clone(),
                    at: ts(now),
                    culprits: intent.culprits.clone(),
                });
            }
        }
        for pair in reverts.windows(2) {
            let gap = Duration::try_from(pair[1].at.duration_since(pair[0].at)).unwrap();
            prop_assert!(gap >= policy.cooldown, "reverts {gap:?} apart, cooldown {:?}", policy.cooldown);
        }
        for (i, r) in reverts.iter().enumerate() {
            let in_window = reverts[..=i]
                .iter()
                .filter(|p| Duration::try_from(r.at.duration_since(p.at)).unwrap() < policy.max_reverts.per)
                .count();
            prop_assert!(in_window as u64 <= u64::from(policy.max_reverts.count));
        }
    }
}

/// The sequence property is not vacuous: a breach that persists for hours
/// is reverted once per cooldown until the rate limit holds it.
#[test]
fn a_persistent_breach_reverts_once_per_cooldown_until_the_limit() {
    let policy = PolicyRules::default();
    let mut reverts: Vec<PastRevert> = Vec::new();
    let mut held = Vec::new();
    for minute in (0..=240).step_by(5) {
        let mut s = Scenario::default();
        s.obs_mut().health = Health::Degraded;
        s.now = at(minute * 60);
        s.policy = policy.clone();
        s.facts.culprits = vec![CulpritFact {
            sha: format!("{:040x}", minute + 1).parse().unwrap(),
            revertbot_revert: None,
        }];
        s.facts.past_reverts = reverts.clone();
        match s.run().1 {
            Decision::Revert(intent) => reverts.push(PastRevert {
                incident: intent.incident.clone(),
                at: s.now,
                culprits: intent.culprits.clone(),
            }),
            Decision::Hold { guard, .. } => held.push((minute, guard.kind())),
            other => panic!("unexpected {other}"),
        }
    }
    let minutes: Vec<i64> = reverts
        .iter()
        .map(|r| (r.at.as_second() - NOW) / 60)
        .collect();
    assert_eq!(minutes, [0, 30, 60]);
    assert!(
        held.iter()
            .any(|(_, k)| *k == revertbot::policy::GuardKind::MaxReverts)
    );
}
