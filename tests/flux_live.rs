#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Flux: the observation names what the cluster runs, through the strict
//! fake Kubernetes API, and `judge` / the wait for Healthy read it right.
//! With health checks on, kustomize-controller applies a revision (the
//! inventory moves) before it checks it, and moves `lastAppliedRevision`
//! only when the checks pass.

mod support;

use revertbot::commands::wait::recovered;
use revertbot::controller::{AppRef, Controller, Detail, FluxKind};
use revertbot::domain::CommitSha;
use revertbot::domain::health::{Health, Observation, SyncStatus};
use revertbot::policy::{Evidence, HealthRules, JudgeInput, Severity, Verdict, judge};
use serde_json::json;
use support::fake_kube::{FakeKube, test_options};
use support::flux_objects::{KsState, kustomization_in, workload};

const GOOD: &str = "450796ddb2ab6724ee1cc32a4be56da032d1cca0";
const BAD: &str = "7c500d302e38e7e4a3f327343a8a5c21acaaeb87";
const REVERT: &str = "1111111111111111111111111111111111111111";
const GOOD_DIGEST: &str = "sha256:0cc9a8446c95009ef382f5eade883a67c257f77d50f84e78ecef2aac9428d1e5";
const BAD_DIGEST: &str = "sha256:cdd538a0167e4b51152b71a477e51eb6737553510ce8797dbcc537e1342311bb";

fn guestbook() -> AppRef {
    AppRef::Flux {
        app: "guestbook".into(),
        kind: FluxKind::Kustomization,
        name: "guestbook".into(),
        namespace: "flux-system".into(),
    }
}

fn sha(s: &str) -> CommitSha {
    s.parse().unwrap()
}

fn verdict(obs: &Observation, rules: &HealthRules) -> Verdict {
    judge(&JudgeInput {
        observed: Ok(obs),
        now: jiff::Timestamp::now(),
        rules,
        quarantine: &[],
        manifest_digests: &[],
        signals: &[],
    })
}

/// The guestbook Kustomization in `state`, the good ReplicaSet's pod
/// healthy, and (when `rolled_out`) a newer ReplicaSet whose pod crashes.
async fn cluster(state: KsState<'_>, rolled_out: bool) -> FakeKube {
    let fake = FakeKube::start().await;
    fake.insert(kustomization_in(state));
    let image_id = |digest: &str| format!("ghcr.io/acme/guestbook@{digest}");
    let mut objects = workload(
        "6d4cf56db6",
        1,
        "ghcr.io/acme/guestbook:v1",
        &image_id(GOOD_DIGEST),
        false,
    );
    if rolled_out {
        objects.extend(workload(
            "7f9c2ba4e8",
            2,
            "ghcr.io/acme/guestbook:v2",
            &image_id(BAD_DIGEST),
            true,
        ));
    }
    for o in objects {
        fake.insert(o);
    }
    fake
}

#[tokio::test]
async fn while_the_health_checks_run_the_attempted_revision_and_its_pods_are_deployed() {
    let fake = cluster(
        KsState::HealthChecking {
            applied: GOOD,
            attempted: BAD,
        },
        true,
    )
    .await;
    let flux = fake.flux(test_options()).await;
    let o = flux.observe(&guestbook(), Detail::WithPods).await.unwrap();
    assert_eq!(o.deployed, Some(sha(BAD)));
    assert_eq!(o.target, Some(sha(BAD)));
    assert_eq!(
        (o.health, o.sync),
        (Health::Progressing, SyncStatus::OutOfSync)
    );
    // The newest ReplicaSet's pods are the current ones: the bad rollout's.
    let current: Vec<&str> = o
        .pods
        .iter()
        .filter(|p| p.current)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(current, ["guestbook-ui-7f9c2ba4e8-x1"]);
    match verdict(&o, &HealthRules::default()) {
        Verdict::Breach {
            severity: Severity::Critical,
            evidence,
        } => assert!(
            matches!(&evidence[..], [Evidence::CrashLoop { pod, .. }] if pod == "guestbook-ui-7f9c2ba4e8-x1"),
            "{evidence:?}"
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_retry_of_a_failed_revision_still_runs_it() {
    // kustomization-healthcheck-failed.yaml as the controller starts its
    // retry: Ready=Unknown, fetching again; the history says the failed
    // revision got past the apply.
    let fake = FakeKube::with_fixtures(&["kustomization-healthcheck-failed.yaml"]).await;
    fake.update("kustomizations", "default", "podinfo", |o| {
        let conditions = json!([
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "observedGeneration": 2,
             "message": format!("Fetching manifests for revision main@sha1:{BAD} with a timeout of 1m0s")},
            {"type": "Ready", "status": "Unknown", "reason": "Progressing", "observedGeneration": 2,
             "message": "Reconciliation in progress"},
        ]);
        o["status"]["conditions"] = conditions;
    });
    let app = AppRef::Flux {
        app: "podinfo".into(),
        kind: FluxKind::Kustomization,
        name: "podinfo".into(),
        namespace: "default".into(),
    };
    let o = fake
        .flux(test_options())
        .await
        .observe(&app, Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.deployed, Some(sha(BAD)));
    assert_eq!(o.health, Health::Progressing);
}

#[tokio::test]
async fn a_failed_apply_is_a_warning_about_the_attempted_revision_even_with_controller_health_off()
{
    for state in [
        KsState::ApplyFailed {
            applied: GOOD,
            attempted: BAD,
        },
        KsState::BuildFailed {
            applied: GOOD,
            attempted: BAD,
        },
    ] {
        let fake = cluster(state, false).await;
        let flux = fake.flux(test_options()).await;
        let o = flux.observe(&guestbook(), Detail::WithPods).await.unwrap();
        assert_eq!(o.deployed, Some(sha(BAD)), "{state:?}");
        let failure = o.apply_failure.clone().unwrap();
        assert_eq!(failure.applied, Some(sha(GOOD)));
        assert!(o.pods.iter().all(|p| p.ready), "the good pod still runs");
        for controller in [true, false] {
            let rules = HealthRules {
                controller,
                ..HealthRules::default()
            };
            match verdict(&o, &rules) {
                Verdict::Breach {
                    severity: Severity::Warning,
                    evidence,
                } => {
                    assert!(
                        matches!(&evidence[..], [Evidence::ApplyFailed { attempted, applied: Some(applied), .. }]
                            if attempted.as_str() == BAD && applied.as_str() == GOOD),
                        "{evidence:?}"
                    );
                }
                other => panic!("{state:?} controller={controller}: {other}"),
            }
        }
    }
}

#[tokio::test]
async fn a_failed_apply_on_top_of_crashing_pods_is_critical() {
    // The bad revision failed its checks and runs; the next commit cannot
    // even be applied.
    let fake = cluster(
        KsState::HealthCheckFailed {
            applied: GOOD,
            attempted: BAD,
        },
        true,
    )
    .await;
    fake.update("kustomizations", "flux-system", "guestbook", |o| {
        support::flux_objects::set_status(
            o,
            KsState::ApplyFailed {
                applied: GOOD,
                attempted: REVERT,
            },
        );
    });
    let o = fake
        .flux(test_options())
        .await
        .observe(&guestbook(), Detail::WithPods)
        .await
        .unwrap();
    // The history says the bad revision got past its apply: it runs.
    assert_eq!(
        o.apply_failure.as_ref().and_then(|f| f.applied.clone()),
        Some(sha(BAD))
    );
    assert_eq!(o.deployed, Some(sha(REVERT)));
    match verdict(&o, &HealthRules::default()) {
        Verdict::Breach { severity, evidence } => {
            assert_eq!(severity, Severity::Critical, "{evidence:?}");
            assert_eq!(evidence.len(), 2, "{evidence:?}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_rolled_back_helmrelease_is_a_breach_of_the_revision_its_parent_applied() {
    let fake = FakeKube::with_fixtures(&["helmrelease-upgrade-failed-rolled-back.yaml"]).await;
    fake.update("helmreleases", "podinfo", "podinfo", |o| {
        o["metadata"]["labels"] = json!({
            "kustomize.toolkit.fluxcd.io/name": "guestbook",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        });
    });
    // The parent health-checks the HelmRelease, which never gets Ready.
    fake.insert(kustomization_in(KsState::HealthCheckFailed {
        applied: GOOD,
        attempted: BAD,
    }));
    let app = AppRef::Flux {
        app: "podinfo".into(),
        kind: FluxKind::HelmRelease,
        name: "podinfo".into(),
        namespace: "podinfo".into(),
    };
    let o = fake
        .flux(test_options())
        .await
        .observe(&app, Detail::Summary)
        .await
        .unwrap();
    assert_eq!(o.deployed, Some(sha(BAD)));
    assert_eq!(
        (o.health, o.sync),
        (Health::Degraded, SyncStatus::OutOfSync)
    );
    match verdict(&o, &HealthRules::default()) {
        Verdict::Breach {
            severity: Severity::Critical,
            evidence,
        } => assert!(
            matches!(&evidence[..], [Evidence::ControllerUnhealthy { message: Some(m), .. }] if m.starts_with("RollbackSucceeded")),
            "{evidence:?}"
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn with_wait_the_revert_is_healthy_only_once_flux_applied_it_and_is_ready() {
    let contains = |d: &CommitSha| d.as_str() == REVERT;
    let fake = cluster(KsState::Ready(GOOD), false).await;
    let flux = fake.flux(test_options()).await;
    let observe = || async { flux.observe(&guestbook(), Detail::Summary).await.unwrap() };
    for (state, healthy) in [
        (
            KsState::HealthChecking {
                applied: BAD,
                attempted: REVERT,
            },
            false,
        ),
        (
            KsState::HealthCheckFailed {
                applied: BAD,
                attempted: REVERT,
            },
            false,
        ),
        (KsState::Ready(REVERT), true),
    ] {
        fake.update("kustomizations", "flux-system", "guestbook", |o| {
            support::flux_objects::set_status(o, state);
        });
        let o = observe().await;
        assert_eq!(o.deployed, Some(sha(REVERT)), "{state:?}");
        assert_eq!(
            recovered(&o, &contains).is_ok(),
            healthy,
            "{state:?}: {o:?}"
        );
    }
    // Ready, but at something else: not recovered.
    fake.update("kustomizations", "flux-system", "guestbook", |o| {
        support::flux_objects::set_status(o, KsState::Ready(GOOD));
    });
    assert!(recovered(&observe().await, &contains).is_err());
}
