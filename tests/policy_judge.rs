//! `judge` row by row: controller health, freshness, fast failure,
//! re-promotion and signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_common.rs"]
mod common;

use std::time::Duration;

use common::*;
use revertbot::domain::health::{Health, LiveImage, SyncStatus};
use revertbot::domain::ledger::{IncidentRecord, RecordedImage};
use revertbot::policy::{
    Quarantined, Severity, SignalResult, SignalState, Verdict, quarantine_from_incidents,
};

/// `healthy`, `unknown:<reason>` or `breach:<severity>:<evidence kinds>`.
fn summary(v: &Verdict) -> String {
    let json = serde_json::to_value(v).unwrap();
    match v {
        Verdict::Healthy { .. } => "healthy".into(),
        Verdict::Unknown { .. } => {
            format!("unknown:{}", json["reason"]["reason"].as_str().unwrap())
        }
        Verdict::Breach { severity, evidence } => {
            let kinds: Vec<String> = evidence
                .iter()
                .map(|e| {
                    serde_json::to_value(e).unwrap()["kind"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            format!("breach:{severity}:{}", kinds.join("+"))
        }
    }
}

fn quarantine(c: char) -> Quarantined {
    Quarantined {
        digest: digest(c),
        image: format!("ghcr.io/acme/web:2@{}", digest(c)),
        incident: "web-eeeeeeeeeeee".into(),
    }
}

fn signal(name: &str, severity: Severity, state: SignalState) -> SignalResult {
    SignalResult {
        name: name.into(),
        severity,
        state,
        detail: String::new(),
    }
}

type Setup = fn(&mut Scenario);

const ROWS: &[(&str, Setup, &str)] = &[
    ("healthy synced fresh", |_| {}, "healthy"),
    (
        "healthy without an operation",
        |s| s.obs_mut().operation = None,
        "healthy",
    ),
    (
        "healthy out of sync",
        |s| s.obs_mut().sync = SyncStatus::OutOfSync,
        "unknown:not_synced",
    ),
    (
        "healthy but sync status unknown",
        |s| s.obs_mut().sync = SyncStatus::Unknown,
        "unknown:not_synced",
    ),
    (
        "healthy but reconciled before the sync ended",
        |s| s.obs_mut().reconciled_at = Some(at(-3001)),
        "unknown:health_stale",
    ),
    (
        "healthy, reconciled exactly when the sync ended",
        |s| s.obs_mut().reconciled_at = Some(at(-3000)),
        "unknown:health_stale",
    ),
    (
        "healthy but never reconciled",
        |s| s.obs_mut().reconciled_at = None,
        "unknown:health_stale",
    ),
    (
        "degraded",
        |s| s.obs_mut().health = Health::Degraded,
        "breach:critical:controller_unhealthy",
    ),
    (
        "missing",
        |s| s.obs_mut().health = Health::Missing,
        "breach:critical:controller_unhealthy",
    ),
    (
        "degraded, controller rule off",
        |s| {
            s.obs_mut().health = Health::Degraded;
            s.health.controller = false;
        },
        "unknown:controller_health_ignored",
    ),
    (
        "degraded but stale",
        |s| {
            s.obs_mut().health = Health::Degraded;
            s.obs_mut().reconciled_at = Some(at(-4000));
        },
        "unknown:health_stale",
    ),
    (
        "progressing",
        |s| s.obs_mut().health = Health::Progressing,
        "unknown:progressing",
    ),
    (
        "suspended",
        |s| s.obs_mut().health = Health::Suspended,
        "unknown:suspended",
    ),
    (
        "health unknown",
        |s| s.obs_mut().health = Health::Unknown,
        "unknown:controller_unknown",
    ),
    (
        "progressing + crash loop",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("CrashLoopBackOff"));
        },
        "breach:critical:crash_loop",
    ),
    (
        "progressing + crash loop, rule off",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("CrashLoopBackOff"));
            s.health.crashloop = false;
        },
        "unknown:progressing",
    ),
    (
        "progressing + crash loop of an old-revision pod",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].current = false;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("CrashLoopBackOff"));
        },
        "unknown:progressing",
    ),
    (
        "healthy + crash loop of a current pod",
        |s| {
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("CrashLoopBackOff"));
        },
        "breach:critical:crash_loop",
    ),
    (
        "progressing + ImagePullBackOff",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("ImagePullBackOff"));
        },
        "breach:critical:image_pull",
    ),
    (
        "progressing + ErrImagePull",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].waiting.push(waiting("ErrImagePull"));
        },
        "breach:critical:image_pull",
    ),
    (
        "progressing + ErrImagePull, rule off",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].waiting.push(waiting("ErrImagePull"));
            s.health.image_pull = false;
        },
        "unknown:progressing",
    ),
    (
        "progressing + ContainerCreating",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("ContainerCreating"));
        },
        "unknown:progressing",
    ),
    (
        "progressing + not ready 3m (limit 2m)",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-180));
        },
        "breach:critical:not_ready",
    ),
    (
        "progressing + not ready 1m (limit 2m)",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-60));
        },
        "unknown:progressing",
    ),
    (
        "progressing + not ready exactly 2m (limit 2m)",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-120));
        },
        "unknown:progressing",
    ),
    (
        "progressing + not ready, measured from creation",
        |s| {
            s.obs_mut().health = Health::Progressing;
            let pod = &mut s.obs_mut().pods[0];
            pod.ready = false;
            pod.ready_since = None;
            pod.created_at = Some(at(-600));
        },
        "breach:critical:not_ready",
    ),
    (
        "progressing + not ready, no timestamps",
        |s| {
            s.obs_mut().health = Health::Progressing;
            let pod = &mut s.obs_mut().pods[0];
            pod.ready = false;
            pod.ready_since = None;
            pod.created_at = None;
        },
        "unknown:progressing",
    ),
    (
        "progressing + not ready since the future (clock skew)",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(600));
        },
        "unknown:progressing",
    ),
    (
        "progressing + not ready, pod rules off",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-3600));
            s.health.not_ready_for = None;
        },
        "unknown:progressing",
    ),
    (
        "healthy + current pod not ready 1m (Flux wait: false): not proven good",
        |s| {
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-60));
        },
        "unknown:pods_not_ready",
    ),
    (
        "healthy + current pod not ready 3m (limit 2m)",
        |s| {
            s.obs_mut().pods[0].ready = false;
            s.obs_mut().pods[0].ready_since = Some(at(-180));
        },
        "breach:critical:not_ready",
    ),
    (
        "healthy + an old-revision pod not ready: healthy",
        |s| {
            let mut old = s.obs_mut().pods[0].clone();
            old.name = "web-old".into();
            old.current = false;
            old.ready = false;
            s.obs_mut().pods.push(old);
        },
        "healthy",
    ),
    (
        "crash loop and not ready: one fact per pod",
        |s| {
            s.obs_mut().health = Health::Progressing;
            let pod = &mut s.obs_mut().pods[0];
            pod.ready = false;
            pod.ready_since = Some(at(-3600));
            pod.waiting.push(waiting("CrashLoopBackOff"));
        },
        "breach:critical:crash_loop",
    ),
    (
        "sync running + crash loop",
        |s| {
            s.obs_mut().health = Health::Progressing;
            s.obs_mut().operation.as_mut().unwrap().phase =
                revertbot::domain::health::OperationPhase::Running;
            s.obs_mut().pods[0]
                .waiting
                .push(waiting("CrashLoopBackOff"));
        },
        "breach:critical:crash_loop",
    ),
    (
        "quarantined digest live",
        |s| s.quarantine.push(quarantine('a')),
        "breach:critical:repromoted",
    ),
    (
        "quarantined digest only in an old pod",
        |s| {
            s.quarantine.push(quarantine('a'));
            s.obs_mut().pods[0].current = false;
        },
        "healthy",
    ),
    (
        "quarantined digest pinned in the manifests",
        |s| {
            s.quarantine.push(quarantine('f'));
            s.manifest.push(RecordedImage {
                image: "ghcr.io/acme/web:3".into(),
                digest: digest('f'),
            });
        },
        "breach:critical:repromoted",
    ),
    (
        "quarantined digest live and in the manifests: one fact",
        |s| {
            s.quarantine.push(quarantine('a'));
            s.manifest.push(RecordedImage {
                image: "ghcr.io/acme/web:2".into(),
                digest: digest('a'),
            });
        },
        "breach:critical:repromoted",
    ),
    (
        "quarantine of other digests",
        |s| s.quarantine.push(quarantine('9')),
        "healthy",
    ),
    (
        "re-promotion while the controller is unknown",
        |s| {
            s.obs_mut().health = Health::Unknown;
            s.quarantine.push(quarantine('a'));
        },
        "breach:critical:repromoted",
    ),
    (
        "critical SLO breaching",
        |s| {
            s.signals
                .push(signal("p95", Severity::Critical, SignalState::Breaching))
        },
        "breach:critical:signal",
    ),
    (
        "warning SLO breaching",
        |s| {
            s.signals.push(signal(
                "accuracy",
                Severity::Warning,
                SignalState::Breaching,
            ))
        },
        "breach:warning:signal",
    ),
    (
        "warning and critical: worst wins",
        |s| {
            s.signals.push(signal(
                "accuracy",
                Severity::Warning,
                SignalState::Breaching,
            ));
            s.signals
                .push(signal("p95", Severity::Critical, SignalState::Breaching));
        },
        "breach:critical:signal+signal",
    ),
    (
        "SLO without data",
        |s| {
            s.signals
                .push(signal("p95", Severity::Critical, SignalState::NoData))
        },
        "healthy",
    ),
    (
        "SLO ok",
        |s| {
            s.signals
                .push(signal("p95", Severity::Critical, SignalState::Ok))
        },
        "healthy",
    ),
    (
        "degraded + warning SLO: controller makes it critical",
        |s| {
            s.obs_mut().health = Health::Degraded;
            s.signals.push(signal(
                "accuracy",
                Severity::Warning,
                SignalState::Breaching,
            ));
        },
        "breach:critical:controller_unhealthy+signal",
    ),
    (
        "no deployed revision, healthy",
        |s| s.obs_mut().deployed = None,
        "unknown:no_deployed_revision",
    ),
];

#[test]
fn judge_rows() {
    let mut failures = Vec::new();
    for (name, setup, want) in ROWS {
        let mut s = Scenario::default();
        setup(&mut s);
        let v = s.verdict();
        let got = summary(&v);
        if got != *want {
            failures.push(format!("{name}: want {want}, got {got} ({v})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn evidence_names_the_digest_and_the_incident() {
    let mut s = Scenario::default();
    s.quarantine.push(quarantine('a'));
    let text = s.verdict().to_string();
    assert!(text.contains(digest('a').as_str()), "{text}");
    assert!(text.contains("web-eeeeeeeeeeee"), "{text}");
}

#[test]
fn healthy_evidence_keeps_quiet_signals() {
    let mut s = Scenario::default();
    s.signals
        .push(signal("p95", Severity::Critical, SignalState::NoData));
    let Verdict::Healthy { evidence } = s.verdict() else {
        panic!("expected healthy");
    };
    assert_eq!(evidence.len(), 2);
    assert!(evidence[1].to_string().contains("no data (not a breach)"));
}

#[test]
fn not_ready_evidence_says_how_long() {
    let mut s = Scenario::default();
    s.obs_mut().health = Health::Progressing;
    s.obs_mut().pods[0].ready = false;
    s.obs_mut().pods[0].ready_since = Some(at(-150));
    s.health.not_ready_for = Some(Duration::from_secs(120));
    assert_eq!(
        s.verdict().to_string(),
        "critical breach: pod web-7f9c-abcde not Ready for 2m30s (limit 2m)"
    );
}

#[test]
fn quarantine_reads_digests_from_incident_records() {
    let incident = IncidentRecord {
        id: "web-eeeeeeeeeeee".into(),
        app: app(),
        deployed_revision: sha('e'),
        last_known_good: Some(sha('1')),
        culprits: vec![sha('c')],
        revert_commit: sha('f'),
        bad_images: vec![
            format!("ghcr.io/acme/web:2@{}", digest('a')),
            digest('b').to_string(),
            "ghcr.io/acme/web:3".into(),
            format!("nginx@{}", digest('a')),
            "not an image at all ::".into(),
        ],
        pinned_images: Vec::new(),
        reason: "crash loop".into(),
        opened_at: at(-86_400),
        approved_by: None,
        forced_guards: Vec::new(),
    };
    let q = quarantine_from_incidents([&incident]);
    let digests: Vec<_> = q.iter().map(|q| q.digest.clone()).collect();
    assert_eq!(digests, [digest('a'), digest('b')]);
    assert!(q.iter().all(|q| q.incident == "web-eeeeeeeeeeee"));
}

#[test]
fn live_images_without_a_digest_are_not_matched() {
    let mut s = Scenario::default();
    s.quarantine.push(quarantine('a'));
    s.obs_mut().pods[0].images = vec![LiveImage {
        container: "web".into(),
        image: "ghcr.io/acme/web:2".into(),
        digest: None,
    }];
    assert_eq!(summary(&s.verdict()), "healthy");
}
