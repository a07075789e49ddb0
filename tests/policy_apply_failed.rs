//! A revision the controller cannot apply (Flux: fetch, build or apply
//! failed) through `judge` and `decide`: a warning of its own, whatever
//! `health.controller` says, that follows `policy.warning`, is held by the
//! grace period like other controller facts, and is outranked by pods that
//! fail. The rendered reasons are snapshotted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_common.rs"]
mod common;

use std::fmt::Write as _;

use common::*;
use revertbot::domain::health::{ApplyFailure, Health};
use revertbot::policy::{Decision, Evidence, Mode, Severity, Verdict};

/// web at `d…` cannot be applied; the cluster still runs `1…` (the LKG).
fn apply_failed() -> Scenario {
    let mut s = Scenario::default();
    let o = s.obs_mut();
    o.source = "flux:Kustomization/flux-system/web".into();
    o.operation = None;
    o.health = Health::Degraded;
    o.health_message = Some("ReconciliationFailed: Deployment/web/web dry-run failed".into());
    o.apply_failure = Some(ApplyFailure {
        attempted: sha('d'),
        applied: Some(sha('1')),
        reason: "ReconciliationFailed".into(),
        message: "Deployment/web/web dry-run failed (Invalid): spec.replicas: Invalid value: -1"
            .into(),
    });
    s
}

type Setup = fn(&mut Scenario);

fn outcome(d: &Decision) -> String {
    match d {
        Decision::RequestApproval(_) => "approval".into(),
        Decision::Revert(a) => format!("revert:{}", a.get().mode),
        Decision::Hold { guard, .. } => format!("hold:{:?}", guard.kind()),
        Decision::RecordLastKnownGood(_) => "record".into(),
        Decision::Nothing { .. } => "nothing".into(),
    }
}

#[test]
fn an_apply_failure_is_a_warning_that_replaces_controller_degraded() {
    for controller in [true, false] {
        let mut s = apply_failed();
        s.health.controller = controller;
        let (v, d) = s.run();
        match &v {
            Verdict::Breach {
                severity: Severity::Warning,
                evidence,
            } => assert!(
                matches!(&evidence[..], [Evidence::ApplyFailed { attempted, .. }] if attempted == &sha('d')),
                "{v}"
            ),
            other => panic!("controller={controller}: {other}"),
        }
        assert_eq!(outcome(&d), "approval", "{d}");
    }
}

#[test]
fn an_apply_failure_follows_policy_warning_and_the_guards() {
    let cases: [(&str, Setup, &str); 5] = [
        ("default", |_| {}, "approval"),
        (
            "warning: push",
            |s| s.policy.warning = Mode::Push,
            "revert:push",
        ),
        (
            "within grace",
            |s| s.obs_mut().history[1].deployed_at = Some(at(-60)),
            "hold:Grace",
        ),
        (
            "cooldown",
            |s| s.facts.past_reverts.push(past("web-999999999999", -600)),
            "hold:Cooldown",
        ),
        (
            "pods crash too",
            |s| {
                let o = s.obs_mut();
                o.pods[0].ready = false;
                o.pods[0].waiting.push(waiting("CrashLoopBackOff"));
            },
            "revert:push",
        ),
    ];
    for (name, setup, want) in cases {
        let mut s = apply_failed();
        setup(&mut s);
        let (v, d) = s.run();
        assert_eq!(outcome(&d), want, "{name}: {v} / {d}");
    }
}

#[test]
fn an_apply_failure_reads_like_this() {
    let mut out = String::new();
    let mut push = apply_failed();
    push.policy.warning = Mode::Push;
    let mut bare = apply_failed();
    if let Ok(o) = &mut bare.obs {
        let failure = o.apply_failure.as_mut().unwrap();
        failure.applied = None;
        failure.message.clear();
    }
    for (name, s) in [
        ("approve", apply_failed()),
        ("push", push),
        ("no message, nothing applied", bare),
    ] {
        let (v, d) = s.run();
        writeln!(out, "## {name}\nverdict: {v}\ndecision: {d}\n").unwrap();
    }
    insta::assert_snapshot!(out);
}

fn past(incident: &str, offset_secs: i64) -> revertbot::policy::PastRevert {
    revertbot::policy::PastRevert {
        incident: incident.into(),
        at: at(offset_secs),
        culprits: vec![sha('9')],
    }
}
