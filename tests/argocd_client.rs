//! The Argo CD client against the strict fake Argo CD (built from the real
//! API fixtures): observations, list projection, pods, refresh, sync,
//! terminate. Failures are in argocd_errors.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::{Duration, Instant};

use revertbot::controller::{AppRef, Controller, ControllerError, Detail};
use revertbot::domain::health::{Health, OperationPhase, SyncStatus};
use serde_json::json;
use support::fake_argocd::{
    DEFAULT_NS, Endpoint, FakeArgoCd, client, deploy, fixture, fixture_pod, set_health, velero,
};

const APPLIED: &str = "ea8759964626a583667a2bfd08f334ec2070040a";
const NEWER: &str = "9f2c6a1b7e3d4c5b8a9f0e1d2c3b4a5968778695";

fn prometheus() -> AppRef {
    AppRef::ArgoCd {
        app: "prometheus".into(),
        name: "prometheus".into(),
        namespace: Some("argocd".into()),
    }
}

/// The values of one list in enums.yaml (`key:` then `  - Value  # …`).
fn enum_values(key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/argocd/enums.yaml"),
    )
    .unwrap();
    text.lines()
        .skip_while(|l| *l != format!("{key}:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| {
            l.trim_start()[2..]
                .split('#')
                .next()
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn observe_reads_the_applied_revision_not_the_compared_one() {
    let fake = FakeArgoCd::start().await;
    // New commit in git, auto-sync off: compared revision moves ahead.
    fake.update(DEFAULT_NS, "velero-test", |a| {
        a["status"]["sync"]["revision"] = json!(NEWER);
        a["status"]["sync"]["status"] = json!("OutOfSync");
    });
    let obs = client(&fake)
        .observe(&velero(), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(obs.deployed.as_ref().unwrap().as_str(), APPLIED);
    assert_eq!(obs.target.as_ref().unwrap().as_str(), NEWER);
    assert_eq!(obs.sync, SyncStatus::OutOfSync);
    assert_eq!(obs.health, Health::Healthy);
    assert_eq!(obs.source, "argocd:velero-test");
    assert_eq!(obs.app.as_str(), "velero");
    assert_eq!(obs.history.len(), 3);
    assert_eq!(
        obs.deployed_at().unwrap().to_string(),
        "2024-03-05T07:33:04Z"
    );
    assert_eq!(
        obs.reconciled_at.unwrap().to_string(),
        "2024-03-05T07:33:04Z"
    );
    let op = obs.operation.unwrap();
    assert_eq!(op.phase, OperationPhase::Succeeded);
    assert_eq!(op.revision.unwrap().as_str(), APPLIED);
    assert!(obs.pods.is_empty());
    // Without a syncResult the newest history entry is the applied one.
    fake.update(DEFAULT_NS, "velero-test", |a| {
        a["status"]["operationState"]["phase"] = json!("Failed");
        a["status"]["operationState"]["syncResult"]["revision"] = json!(NEWER);
    });
    let obs = client(&fake)
        .observe(&velero(), Detail::Summary)
        .await
        .unwrap();
    assert_eq!(obs.deployed.unwrap().as_str(), APPLIED);
    assert_eq!(obs.operation.unwrap().phase, OperationPhase::Failed);
    fake.finish();
}

#[tokio::test]
async fn a_sync_that_succeeded_but_is_still_rolling_out() {
    let fake = FakeArgoCd::start().await;
    let mut progressing = fixture("application-progressing.json");
    progressing["metadata"]["name"] = json!("velero-progressing");
    fake.add_app(progressing);
    let app = AppRef::ArgoCd {
        app: "v".into(),
        name: "velero-progressing".into(),
        namespace: None,
    };
    let obs = client(&fake).observe(&app, Detail::Summary).await.unwrap();
    assert_eq!(obs.deployed.as_ref().unwrap().as_str(), NEWER);
    assert_eq!(obs.health, Health::Progressing);
    assert_eq!(
        obs.health_message.as_deref(),
        Some("Waiting for rollout to finish: 1 of 2 updated replicas are available...")
    );
    assert_eq!(
        obs.operation.as_ref().unwrap().phase,
        OperationPhase::Succeeded
    );
    assert_eq!(
        obs.deployed_at().unwrap().to_string(),
        "2024-03-05T08:02:11Z"
    );
    fake.finish();
}

#[tokio::test]
async fn every_health_sync_and_phase_value_maps() {
    let fake = FakeArgoCd::start().await;
    let argo = client(&fake);
    let healths = enum_values("health_status");
    assert_eq!(healths.len(), 6);
    for h in &healths {
        fake.update(DEFAULT_NS, "velero-test", |a| set_health(a, h, Some("msg")));
        let obs = argo.observe(&velero(), Detail::Summary).await.unwrap();
        assert_eq!(format!("{:?}", obs.health), *h);
        assert_eq!(obs.health_message.as_deref(), Some("msg"));
    }
    for s in enum_values("sync_status") {
        fake.update(DEFAULT_NS, "velero-test", |a| {
            a["status"]["sync"]["status"] = json!(s)
        });
        let obs = argo.observe(&velero(), Detail::Summary).await.unwrap();
        assert_eq!(format!("{:?}", obs.sync), s);
    }
    let phases = enum_values("operation_phase");
    assert_eq!(phases.len(), 5);
    for p in phases {
        fake.update(DEFAULT_NS, "velero-test", |a| {
            a["status"]["operationState"]["phase"] = json!(p);
        });
        let obs = argo.observe(&velero(), Detail::Summary).await.unwrap();
        assert_eq!(format!("{:?}", obs.operation.unwrap().phase), p);
    }
    // A health code from a future Argo CD is Unknown, and says so.
    fake.update(DEFAULT_NS, "velero-test", |a| {
        set_health(a, "Exploded", None)
    });
    let obs = argo.observe(&velero(), Detail::Summary).await.unwrap();
    assert_eq!(obs.health, Health::Unknown);
    assert!(obs.health_message.unwrap().contains("Exploded"));
    fake.finish();
}

#[tokio::test]
async fn multi_source_app_in_another_namespace_uses_the_git_slot() {
    let fake = FakeArgoCd::start().await;
    let obs = client(&fake)
        .observe(&prometheus(), Detail::Summary)
        .await
        .unwrap();
    let git = "7d1f4b5e0c3a9b8e2f6a1c4d5e7f8a9b0c1d2e3f";
    assert_eq!(obs.deployed.unwrap().as_str(), git);
    assert_eq!(obs.target.unwrap().as_str(), git);
    let history: Vec<&str> = obs.history.iter().map(|h| h.revision.as_str()).collect();
    assert_eq!(history, ["38cfa22edf9148caabfecb288bfb47dc4352dfc6", git]);
    assert_eq!(obs.source, "argocd:argocd/prometheus");
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.path, "/api/v1/applications/prometheus");
    assert_eq!(
        call.query,
        [("appNamespace".to_owned(), "argocd".to_owned())]
    );
    fake.finish();
}

#[tokio::test]
async fn an_app_in_another_namespace_without_its_namespace_is_not_found_with_a_hint() {
    let fake = FakeArgoCd::start().await;
    let argo = client(&fake);
    let wrong = AppRef::ArgoCd {
        app: "prometheus".into(),
        name: "prometheus".into(),
        namespace: None,
    };
    let err = argo.observe(&wrong, Detail::Summary).await.unwrap_err();
    assert!(matches!(err, ControllerError::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&fake.url), "{text}");
    assert!(
        text.contains("permission denied") && text.contains("project"),
        "{text}"
    );
    assert_eq!(fake.calls()[0].status, 403);
    fake.finish();
}

#[tokio::test]
async fn observe_all_makes_one_list_call_for_many_apps() {
    let fake = FakeArgoCd::start().await;
    let mut apps = Vec::new();
    for i in 0..50 {
        let mut a = fixture("application.json");
        a["metadata"]["name"] = json!(format!("app-{i}"));
        fake.add_app(a);
        apps.push(AppRef::ArgoCd {
            app: format!("a{i}"),
            name: format!("app-{i}"),
            namespace: Some(DEFAULT_NS.into()),
        });
    }
    let argo = client(&fake);
    let out = argo.observe_all(&apps).await.unwrap();
    assert_eq!(out.len(), 50);
    for (i, r) in out.iter().enumerate() {
        let obs = r.as_ref().unwrap();
        assert_eq!(obs.app.as_str(), format!("a{i}"));
        assert_eq!(obs.deployed.as_ref().unwrap().as_str(), APPLIED);
        assert_eq!(obs.health, Health::Healthy);
        assert_eq!(
            obs.operation.as_ref().unwrap().phase,
            OperationPhase::Succeeded
        );
    }
    assert_eq!(fake.count(Endpoint::List), 1);
    assert_eq!(fake.calls().len(), 1, "{:#?}", fake.calls());
    let fields = &fake.calls()[0].query;
    assert_eq!(fields[0].0, "fields");
    fake.finish(); // also: every requested `fields` key is honoured
}

#[tokio::test]
async fn observe_all_reads_in_full_only_what_a_list_item_cannot_tell() {
    let fake = FakeArgoCd::start().await;
    let mut out_of_sync = fixture("application.json");
    out_of_sync["metadata"]["name"] = json!("drifted");
    out_of_sync["status"]["sync"] = json!({"status": "OutOfSync", "revision": NEWER});
    fake.add_app(out_of_sync);
    let drifted = AppRef::ArgoCd {
        app: "drifted".into(),
        name: "drifted".into(),
        namespace: None,
    };
    let ghost = AppRef::ArgoCd {
        app: "ghost".into(),
        name: "ghost".into(),
        namespace: None,
    };
    let out = client(&fake)
        .observe_all(&[velero(), prometheus(), drifted, ghost])
        .await
        .unwrap();
    assert_eq!(
        out[0].as_ref().unwrap().deployed.as_ref().unwrap().as_str(),
        APPLIED
    );
    assert_eq!(
        out[1].as_ref().unwrap().deployed.as_ref().unwrap().as_str(),
        "7d1f4b5e0c3a9b8e2f6a1c4d5e7f8a9b0c1d2e3f"
    );
    let drifted = out[2].as_ref().unwrap();
    assert_eq!(drifted.deployed.as_ref().unwrap().as_str(), APPLIED);
    assert_eq!(drifted.target.as_ref().unwrap().as_str(), NEWER);
    assert!(matches!(out[3], Err(ControllerError::NotFound { .. })));
    assert_eq!(fake.count(Endpoint::List), 1);
    assert_eq!(fake.count(Endpoint::Get), 2); // multi-source + OutOfSync
    fake.finish();
}

#[tokio::test]
async fn pods_of_a_healthy_app_with_containerd_image_ids() {
    let fake = FakeArgoCd::start().await;
    let obs = client(&fake)
        .observe(&velero(), Detail::WithPods)
        .await
        .unwrap();
    assert_eq!(obs.pods.len(), 1);
    let pod = &obs.pods[0];
    assert_eq!(pod.name, "test-lla-6d4cf56db6-9xk2p");
    assert!(pod.ready && pod.current);
    assert_eq!(pod.ready_since.unwrap().to_string(), "2018-12-02T09:15:19Z");
    assert_eq!(pod.images[0].image, "alpine:3.21");
    assert_eq!(
        pod.images[0].digest.as_ref().unwrap().as_str(),
        "sha256:a8560b36e8b8210634f77d9f7f9efd7ffa463e380b75e2e74aff4511df3ef88c"
    );
    assert_eq!(obs.live_digests().len(), 1);
    let resource = fake
        .calls()
        .into_iter()
        .find(|c| c.endpoint == Endpoint::Resource)
        .unwrap();
    let q: Vec<(&str, &str)> = resource
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        q,
        [
            ("namespace", "test-lla"),
            ("resourceName", "test-lla-6d4cf56db6-9xk2p"),
            ("version", "v1"),
            ("kind", "Pod")
        ]
    );
    fake.finish();
}

#[tokio::test]
async fn pods_of_a_rollout_crash_looping_on_the_new_replica_set() {
    let fake = FakeArgoCd::start().await;
    fake.set_tree(
        DEFAULT_NS,
        "velero-test",
        fixture("resource-tree-rollout-degraded.json"),
    );
    fake.set_pod(fixture_pod(
        "resource-pod-docker-imageid.json",
        "test-lla",
        "test-lla-6d4cf56db6-9xk2p",
    ));
    fake.set_pod(fixture_pod(
        "resource-pod-crashloop.json",
        "test-lla",
        "test-lla-7f9b8c6d5e-q4w8z",
    ));
    let pods = client(&fake).pods(&velero()).await.unwrap();
    assert_eq!(pods.len(), 2);
    let (old, new) = (&pods[0], &pods[1]);
    assert!(!old.current && old.ready);
    assert_eq!(
        old.images[0].digest.as_ref().unwrap().as_str(),
        "sha256:621c2f39f8133acb8e64023a94dbdf0d5ca81896102b9e57c0dc184cadaf5528"
    );
    assert!(new.current && !new.ready);
    assert_eq!(new.waiting[0].reason, "CrashLoopBackOff");
    assert_eq!(new.waiting[0].container, "main");
    assert_eq!(new.restart_count, 3);
    fake.finish();
}

#[tokio::test]
async fn a_bare_image_id_is_not_a_digest_and_a_vanished_pod_is_skipped() {
    let fake = FakeArgoCd::start().await;
    let mut pod = fixture_pod(
        "resource-pod-docker-imageid.json",
        "test-lla",
        "test-lla-6d4cf56db6-9xk2p",
    );
    pod["status"]["containerStatuses"][0]["imageID"] =
        json!("sha256:621c2f39f8133acb8e64023a94dbdf0d5ca81896102b9e57c0dc184cadaf5528");
    fake.set_pod(pod);
    let pods = client(&fake).pods(&velero()).await.unwrap();
    assert_eq!(pods[0].images[0].digest, None);
    fake.remove_pod("test-lla", "test-lla-6d4cf56db6-9xk2p");
    assert!(client(&fake).pods(&velero()).await.unwrap().is_empty());
    fake.finish();
}

#[tokio::test]
async fn refresh_blocks_until_reconciled_with_its_own_long_timeout() {
    let fake = FakeArgoCd::start().await;
    fake.set_refresh_delay(Duration::from_millis(1500)); // longer than request_timeout
    fake.on_refresh("velero-test", |a| deploy(a, NEWER));
    let started = Instant::now();
    let obs = client(&fake).refresh(&velero()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(obs.deployed.unwrap().as_str(), NEWER);
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.endpoint, Endpoint::Refresh);
    assert_eq!(call.query, [("refresh".to_owned(), "normal".to_owned())]);
    fake.finish();
}

#[tokio::test]
async fn sync_posts_the_revision_without_prune_and_conflicts_map() {
    let fake = FakeArgoCd::start().await;
    let argo = client(&fake);
    let sha = NEWER.parse().unwrap();
    argo.sync(&velero(), &sha).await.unwrap();
    let post = fake
        .calls()
        .into_iter()
        .find(|c| c.endpoint == Endpoint::Sync)
        .unwrap();
    let body = post.body.unwrap();
    assert_eq!(body["revision"], NEWER);
    assert_eq!(body["prune"], false);
    assert_eq!(body["name"], "velero-test");
    assert_eq!(
        fake.app(DEFAULT_NS, "velero-test")["status"]["operationState"]["phase"],
        "Running"
    );
    let err = argo.sync(&velero(), &sha).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::OperationInProgress { .. }),
        "{err:?}"
    );
    assert_eq!(fake.count(Endpoint::Sync), 2);
    // Terminate the stuck operation; terminating again is a no-op.
    argo.terminate_operation(&velero()).await.unwrap();
    assert_eq!(
        fake.app(DEFAULT_NS, "velero-test")["status"]["operationState"]["phase"],
        "Terminating"
    );
    fake.update(DEFAULT_NS, "velero-test", |a| {
        a.as_object_mut().unwrap().remove("operation");
        a["status"]["operationState"]["phase"] = json!("Failed");
    });
    argo.terminate_operation(&velero()).await.unwrap();
    let deletes: Vec<u16> = fake
        .calls()
        .iter()
        .filter(|c| c.endpoint == Endpoint::Terminate)
        .map(|c| c.status)
        .collect();
    assert_eq!(deletes, [200, 400]);
    fake.finish();
}

#[tokio::test]
async fn sync_of_a_multi_source_app_pins_the_git_source_by_position() {
    let fake = FakeArgoCd::start().await;
    let sha = NEWER.parse().unwrap();
    client(&fake).sync(&prometheus(), &sha).await.unwrap();
    let post = fake
        .calls()
        .into_iter()
        .find(|c| c.endpoint == Endpoint::Sync)
        .unwrap();
    let body = post.body.unwrap();
    assert_eq!(body["revisions"], json!([NEWER]));
    assert_eq!(body["sourcePositions"], json!([2]));
    assert_eq!(body["appNamespace"], "argocd");
    assert!(body.get("revision").is_none());
    fake.finish();
}
