//! The decision table: every verdict × every guard, end to end through
//! `judge` and `decide`, with named rows and columns. Each cell is the
//! expected outcome; the rendered reasons are snapshotted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_common.rs"]
mod common;

use std::fmt::Write as _;

use common::*;
use revertbot::domain::health::{Health, OperationPhase};
use revertbot::policy::{
    Approval, CulpritFact, Mode, PastRevert, Quarantined, RevertedFact, Severity, SignalResult,
    SignalState, Unavailable, UnavailableKind,
};

type Setup = fn(&mut Scenario);

/// The columns: how the app looks.
const VERDICTS: [(&str, Setup); 9] = [
    ("healthy", |_| {}),
    ("unreachable", |s| {
        s.obs = Err(Unavailable {
            kind: UnavailableKind::Unreachable,
            detail: "connection refused".into(),
        });
    }),
    ("stale-degraded", |s| {
        let o = s.obs_mut();
        o.health = Health::Degraded;
        let finished = o.operation.as_ref().and_then(|op| op.finished_at).unwrap();
        o.reconciled_at = Some(
            finished
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap(),
        );
    }),
    ("progressing", |s| {
        let o = s.obs_mut();
        o.health = Health::Progressing;
        o.pods[0].ready = false;
        o.pods[0].ready_since = Some(at(-30));
    }),
    ("slo-no-data", |s| {
        s.obs_mut().health = Health::Progressing;
        s.signals
            .push(signal(Severity::Critical, SignalState::NoData));
    }),
    ("degraded", |s| {
        let o = s.obs_mut();
        o.health = Health::Degraded;
        o.health_message = Some("Deployment \"web\" exceeded its progress deadline".into());
    }),
    ("crashloop", |s| {
        let o = s.obs_mut();
        o.health = Health::Progressing;
        o.pods[0].ready = false;
        o.pods[0].restart_count = 4;
        o.pods[0].waiting.push(waiting("CrashLoopBackOff"));
    }),
    ("repromoted", |s| {
        s.quarantine.push(Quarantined {
            digest: digest('a'),
            image: format!("ghcr.io/acme/web:2@{}", digest('a')),
            incident: "web-eeeeeeeeeeee".into(),
        });
    }),
    ("slo-warning", |s| {
        s.signals
            .push(signal(Severity::Warning, SignalState::Breaching));
    }),
];

fn signal(severity: Severity, state: SignalState) -> SignalResult {
    SignalResult {
        name: "p95-latency".into(),
        severity,
        state,
        detail: match state {
            SignalState::NoData => "no series".into(),
            _ => "0.41s > 0.25s for 5m".into(),
        },
    }
}

fn past(incident: &str, offset_secs: i64, culprits: &[char]) -> PastRevert {
    PastRevert {
        incident: incident.into(),
        at: at(offset_secs),
        culprits: culprits.iter().map(|c| sha(*c)).collect(),
    }
}

/// The rows: what the guards know. Applied before the verdict's setup.
const GUARDS: [(&str, Setup); 20] = [
    ("none", |_| {}),
    ("cooldown", |s| {
        s.facts
            .past_reverts
            .push(past("web-999999999999", -600, &['9']))
    }),
    ("cooldown-over", |s| {
        s.facts
            .past_reverts
            .push(past("web-999999999999", -1800, &['9']))
    }),
    ("max-reverts", |s| {
        for (i, h) in [20, 10, 5].into_iter().enumerate() {
            s.facts
                .past_reverts
                .push(past(&format!("web-{i}"), -h * 3600, &['9']));
        }
    }),
    ("loop:deployed-is-revert", |s| {
        s.facts.deployed_is_revert = Some("web-cccccccccccc".into());
    }),
    ("loop:culprit-is-revert", |s| {
        s.facts.culprits[0].revertbot_revert = Some("web-888888888888".into());
    }),
    ("loop:reverted-before", |s| {
        s.facts
            .past_reverts
            .push(past("web-777777777777", -48 * 3600, &['c']))
    }),
    ("freeze:config", |s| s.policy.freeze = true),
    ("freeze:file", |s| {
        s.facts.freeze_file = Some(".revertbot-freeze".into())
    }),
    ("grace", |s| {
        let o = s.obs_mut();
        o.history[1].deployed_at = Some(at(-60));
        if let Some(op) = &mut o.operation {
            op.started_at = Some(at(-65));
            op.finished_at = Some(at(-60));
        }
    }),
    ("no-lkg", |s| s.facts.last_known_good = None),
    ("nothing-to-revert", |s| s.facts.culprits.clear()),
    ("pending-revert", |s| {
        s.facts.culprits.clear();
        s.facts.already_reverted.push(RevertedFact {
            culprit: sha('c'),
            by: sha('e'),
        });
    }),
    ("no-deployed-revision", |s| s.obs_mut().deployed = None),
    ("force+cooldown+freeze", |s| {
        s.force = true;
        s.policy.freeze = true;
        s.facts
            .past_reverts
            .push(past("web-999999999999", -600, &['9']));
    }),
    ("force+no-lkg", |s| {
        s.force = true;
        s.facts.last_known_good = None;
    }),
    ("approved", |s| {
        s.approval = Some(Approval {
            by: "U0123ABCD".into(),
        })
    }),
    ("approved+cooldown", |s| {
        s.approval = Some(Approval {
            by: "U0123ABCD".into(),
        });
        s.facts
            .past_reverts
            .push(past("web-999999999999", -600, &['9']));
    }),
    ("mode:pr", |s| {
        s.policy.critical = Mode::Pr;
        s.policy.warning = Mode::PrAutomerge;
    }),
    ("already-recorded", |s| {
        s.facts.recorded.push(revertbot::domain::ledger::LkgRecord {
            app: app(),
            revision: sha('d'),
            images: vec![revertbot::domain::ledger::RecordedImage {
                image: "ghcr.io/acme/web:2".into(),
                digest: digest('a'),
            }],
            source: revertbot::domain::ledger::RecordSource::Controller,
            recorded_at: at(-600),
        });
    }),
];

/// Expected outcome per row, columns in `VERDICTS` order:
/// healthy, unreachable, stale-degraded, progressing, slo-no-data,
/// degraded, crashloop, repromoted, slo-warning.
const EXPECTED: [(&str, [&str; 9]); 20] = [
    (
        "none",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:push",
            "revert:push",
            "revert:push",
            "approval",
        ],
    ),
    (
        "cooldown",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:cooldown",
            "hold:cooldown",
            "hold:cooldown",
            "hold:cooldown",
        ],
    ),
    (
        "cooldown-over",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:push",
            "revert:push",
            "revert:push",
            "approval",
        ],
    ),
    (
        "max-reverts",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:max_reverts",
            "hold:max_reverts",
            "hold:max_reverts",
            "hold:max_reverts",
        ],
    ),
    (
        "loop:deployed-is-revert",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:loop",
            "hold:loop",
            "hold:loop",
            "hold:loop",
        ],
    ),
    (
        "loop:culprit-is-revert",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:loop",
            "hold:loop",
            "hold:loop",
            "hold:loop",
        ],
    ),
    (
        "loop:reverted-before",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:loop",
            "hold:loop",
            "hold:loop",
            "hold:loop",
        ],
    ),
    (
        "freeze:config",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:freeze",
            "hold:freeze",
            "hold:freeze",
            "hold:freeze",
        ],
    ),
    (
        "freeze:file",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:freeze",
            "hold:freeze",
            "hold:freeze",
            "hold:freeze",
        ],
    ),
    (
        "grace",
        [
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:grace",
            "revert:push",
            "revert:push",
            "approval",
        ],
    ),
    (
        "no-lkg",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
        ],
    ),
    (
        "nothing-to-revert",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:nothing_to_revert",
            "hold:nothing_to_revert",
            "hold:nothing_to_revert",
            "hold:nothing_to_revert",
        ],
    ),
    (
        "pending-revert",
        [
            "record", "nothing", "nothing", "nothing", "nothing", "nothing", "nothing", "nothing",
            "nothing",
        ],
    ),
    (
        "no-deployed-revision",
        [
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:no_deployed_revision",
            "hold:no_deployed_revision",
            "hold:no_deployed_revision",
            "hold:no_deployed_revision",
        ],
    ),
    (
        "force+cooldown+freeze",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:push",
            "revert:push",
            "revert:push",
            "approval",
        ],
    ),
    (
        "force+no-lkg",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
            "hold:no_last_known_good",
        ],
    ),
    (
        "approved",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:push",
            "revert:push",
            "revert:push",
            "revert:push",
        ],
    ),
    (
        "approved+cooldown",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "hold:cooldown",
            "hold:cooldown",
            "hold:cooldown",
            "hold:cooldown",
        ],
    ),
    (
        "mode:pr",
        [
            "record",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:pr",
            "revert:pr",
            "revert:pr",
            "revert:pr-automerge",
        ],
    ),
    (
        "already-recorded",
        [
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "nothing",
            "revert:push",
            "revert:push",
            "revert:push",
            "approval",
        ],
    ),
];

fn scenario(guard: Setup, verdict: Setup) -> Scenario {
    let mut s = Scenario::default();
    guard(&mut s);
    verdict(&mut s);
    s
}

#[test]
fn every_verdict_times_every_guard() {
    let mut failures = Vec::new();
    for ((guard_name, guard), (row_name, expected)) in GUARDS.iter().zip(EXPECTED.iter()) {
        assert_eq!(
            guard_name, row_name,
            "GUARDS and EXPECTED rows are out of step"
        );
        for ((verdict_name, verdict), want) in VERDICTS.iter().zip(expected.iter()) {
            let (v, d) = scenario(*guard, *verdict).run();
            let got = outcome(&d);
            if got != *want {
                failures.push(format!(
                    "{guard_name} × {verdict_name}: want {want}, got {got}\n    verdict: {v}\n    decision: {d}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Holds map to exit code 4, everything else to 0.
#[test]
fn exit_codes_follow_holds() {
    for (_, guard) in GUARDS {
        for (_, verdict) in VERDICTS {
            let (_, d) = scenario(guard, verdict).run();
            let want = if outcome(&d).starts_with("hold:") {
                4
            } else {
                0
            };
            assert_eq!(d.exit_code(), want, "{d}");
            assert_eq!(d.is_held(), want == 4);
        }
    }
}

/// Every distinct reason the table produces, as people read them.
#[test]
fn rendered_reasons() {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for (guard_name, guard) in GUARDS {
        for (verdict_name, verdict) in VERDICTS {
            let (v, d) = scenario(guard, verdict).run();
            let text = format!("verdict: {v}\ndecision: {d}");
            if seen.insert(text.clone()) {
                writeln!(out, "## {guard_name} × {verdict_name}\n{text}\n").unwrap();
            }
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn forced_reverts_name_the_overridden_guards() {
    let (_, d) = scenario(GUARDS[14].1, VERDICTS[5].1).run();
    let revertbot::policy::Decision::Revert(intent) = d else {
        panic!("expected a revert, got {d}");
    };
    let kinds: Vec<String> = intent
        .overridden
        .iter()
        .map(|k| {
            serde_json::to_value(k)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["freeze", "cooldown"]);
}

#[test]
fn the_intent_pins_lkg_and_quarantines_what_runs_now() {
    let (_, d) = Scenario::default()
        .clone()
        .tap(|s| s.obs_mut().health = Health::Degraded)
        .run();
    let revertbot::policy::Decision::Revert(intent) = d else {
        panic!("expected a revert, got {d}");
    };
    assert_eq!(intent.incident, "web-dddddddddddd");
    assert_eq!(intent.last_known_good, sha('1'));
    assert_eq!(intent.deployed, sha('d'));
    assert_eq!(intent.culprits, [sha('c')]);
    assert_eq!(intent.pin[0].digest, digest('b'));
    assert_eq!(intent.bad_images.len(), 1);
    assert_eq!(intent.bad_images[0].digest, digest('a'));
    assert_eq!(intent.get().severity, Severity::Critical);
}

#[test]
fn a_revert_decision_serializes_for_the_report() {
    let (_, d) = scenario(GUARDS[0].1, VERDICTS[6].1).run();
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["decision"], "revert");
    assert_eq!(json["mode"], "push");
    assert_eq!(json["evidence"][0]["kind"], "crash_loop");
}

#[test]
fn sync_in_progress_and_failed_syncs_are_not_healthy() {
    for phase in [
        OperationPhase::Running,
        OperationPhase::Terminating,
        OperationPhase::Failed,
        OperationPhase::Error,
    ] {
        let mut s = Scenario::default();
        s.obs_mut().operation.as_mut().unwrap().phase = phase;
        let (v, d) = s.run();
        assert!(
            matches!(v, revertbot::policy::Verdict::Unknown { .. }),
            "{phase:?}: {v}"
        );
        assert_eq!(outcome(&d), "nothing");
    }
}

#[test]
fn culprits_found_by_later_search_are_listed_in_order() {
    let mut s = scenario(GUARDS[0].1, VERDICTS[5].1);
    s.facts.culprits.insert(
        0,
        CulpritFact {
            sha: sha('f'),
            revertbot_revert: None,
        },
    );
    let (_, d) = s.run();
    let revertbot::policy::Decision::Revert(intent) = d else {
        panic!("expected a revert, got {d}");
    };
    assert_eq!(intent.culprits, [sha('f'), sha('c')]);
}

trait Tap: Sized {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
impl Tap for Scenario {}
