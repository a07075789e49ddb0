//! Outputs, annotations and the job summary of `report_github`.

use super::*;
use crate::git::culprits::Culprit;
use crate::report::PinnedImage;

const BAD: &str = "b0c4a37f00d1e5ac5b6a70b0f3c1b4d3e2a1f0c9";
const GOOD: &str = "25288f7aa1b2c3d4e5f60718293a4b5c6d7e8f90";
const REVERT: &str = "9f3e2d1c0b1a29384756afbecd0123456789abcd";

fn pushed() -> AppReport {
    AppReport {
        verdict: Verdict::Breach,
        action: Action::Pushed,
        deployed_revision: Some(BAD.into()),
        last_known_good: Some(GOOD.into()),
        culprits: vec![BAD.into()],
        culprit_details: vec![Culprit {
            sha: BAD.parse().unwrap(),
            subject: "guestbook: roll out v2".into(),
            author: "dev".into(),
            files: vec!["apps/guestbook/deployment.yaml".into()],
            is_merge: false,
        }],
        revert_commit: Some(REVERT.into()),
        pinned_images: vec![PinnedImage {
            image: "ghcr.io/acme/guestbook:v1".into(),
            digest: format!("sha256:{}", "1a".repeat(32)),
        }],
        healthy_confirmed: true,
        incident: Some("guestbook-20260801-0001".into()),
        reason: "pods CrashLoopBackOff".into(),
        ..AppReport::new("guestbook")
    }
}

fn healthy_app(name: &str) -> AppReport {
    AppReport {
        verdict: Verdict::Healthy,
        action: Action::Recorded,
        deployed_revision: Some(GOOD.into()),
        ..AppReport::new(name)
    }
}

fn report(apps: Vec<AppReport>) -> Report {
    Report {
        version: 1,
        warnings: Vec::new(),
        apps,
    }
}

fn links() -> Links {
    Links::new(Some("https://github.com"), Some("acme/infra"))
}

fn output<'a>(outputs: &'a [(&str, String)], name: &str) -> &'a str {
    &outputs.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn a_pushed_revert_sets_every_output() {
    let r = report(vec![healthy_app("billing"), pushed()]);
    let out = outputs(&r, 0);
    assert_eq!(output(&out, "decision"), "pushed");
    assert_eq!(output(&out, "revert-sha"), REVERT);
    assert_eq!(output(&out, "incident"), "guestbook-20260801-0001");
    assert_eq!(output(&out, "pr-url"), "");
    assert_eq!(output(&out, "healthy"), "true");
    assert_eq!(output(&out, "exit-code"), "0");
    let json: serde_json::Value = serde_json::from_str(output(&out, "report")).unwrap();
    assert_eq!(json["apps"][1]["revert_commit"], REVERT);
}

#[test]
fn the_decision_is_the_most_significant_action_across_apps() {
    let blocked = AppReport {
        verdict: Verdict::Breach,
        action: Action::Blocked,
        ..AppReport::new("cart")
    };
    let pr = AppReport {
        verdict: Verdict::Breach,
        action: Action::PrOpened,
        pr_url: Some("https://github.com/acme/infra/pull/7".into()),
        incident: Some("checkout-1".into()),
        ..AppReport::new("checkout")
    };
    let r = report(vec![healthy_app("a"), blocked.clone(), pr.clone()]);
    let out = outputs(&r, 4);
    assert_eq!(output(&out, "decision"), "pr_opened");
    assert_eq!(
        output(&out, "pr-url"),
        "https://github.com/acme/infra/pull/7"
    );
    assert_eq!(output(&out, "incident"), "checkout-1");
    assert_eq!(output(&out, "revert-sha"), "");
    assert_eq!(output(&out, "healthy"), "false");
    assert_eq!(
        decision(&report(vec![healthy_app("a"), blocked])),
        Action::Blocked
    );
    assert_eq!(decision(&report(vec![healthy_app("a")])), Action::Recorded);
    assert_eq!(decision(&report(vec![])), Action::None);
    // Every action has a rank, and the names match the JSON report's.
    for action in RANK {
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json, action_name(action));
    }
}

#[test]
fn healthy_is_false_for_an_unconfirmed_revert_and_empty_when_nothing_was_judged() {
    let unconfirmed = AppReport {
        healthy_confirmed: false,
        ..pushed()
    };
    assert_eq!(healthy(&report(vec![unconfirmed])), "false");
    assert_eq!(healthy(&report(vec![AppReport::new("plan")])), "");
    assert_eq!(healthy(&report(vec![])), "");
    assert_eq!(
        healthy(&report(vec![healthy_app("a"), AppReport::new("b")])),
        ""
    );
}

#[test]
fn errors_for_withheld_unconfirmed_and_unjudged_apps_warnings_for_warnings() {
    let mut r = report(vec![
        AppReport {
            verdict: Verdict::Breach,
            action: Action::Blocked,
            reason: "cooldown: last revert 4m ago".into(),
            ..AppReport::new("cart")
        },
        AppReport {
            healthy_confirmed: false,
            warnings: vec!["template override failed".into()],
            ..pushed()
        },
        AppReport {
            reason: "argocd.example.com: connection refused".into(),
            ..AppReport::new("billing")
        },
    ]);
    r.warnings = vec![".revertbot.yaml:3:1: warning: slack is not acted on yet".into()];
    let lines: Vec<String> = annotations(&r, 3).iter().map(Annotation::render).collect();
    assert_eq!(
        lines,
        [
            "::warning title=revertbot::.revertbot.yaml:3:1: warning: slack is not acted on yet",
            "::error title=revertbot%3A cart revert withheld::cooldown: last revert 4m ago",
            &format!(
                "::error title=revertbot%3A guestbook not confirmed Healthy::{REVERT} landed but the controller did not report it Healthy in time"
            ),
            "::warning title=revertbot%3A guestbook warning::template override failed",
        ]
    );
    // Exit 1: the app that could not be observed is an error too.
    let failed = annotations(&r, 1);
    assert!(
        failed
            .iter()
            .any(|a| a.level == Level::Error
                && a.message == "argocd.example.com: connection refused")
    );
    // --no-wait (exit 0): an unconfirmed push is not an error.
    assert!(
        !annotations(&r, 0)
            .iter()
            .any(|a| a.message.contains("did not report it Healthy"))
    );
}

#[test]
fn a_crafted_reason_cannot_inject_workflow_commands_or_outputs() {
    let evil = "x\n::set-output name=decision::none\n::add-mask::y";
    let app = AppReport {
        action: Action::Blocked,
        reason: evil.into(),
        incident: Some("i\ndecision<<EOF\nnone\nEOF".into()),
        ..AppReport::new("cart")
    };
    let r = report(vec![app]);
    for a in annotations(&r, 4) {
        assert_eq!(a.render().lines().count(), 1, "{}", a.render());
    }
    let text: String = outputs(&r, 4)
        .iter()
        .map(|(n, v)| workflow_commands::output_entry(n, v))
        .collect();
    // Each entry is `name<<D`, its value, `D`: no line of a value is a
    // delimiter, so the runner reads exactly the outputs written.
    let mut names = Vec::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let (name, delimiter) = head.split_once("<<").unwrap();
        names.push(name.to_owned());
        for line in lines.by_ref() {
            if line == delimiter {
                break;
            }
        }
    }
    assert_eq!(
        names,
        [
            "decision",
            "incident",
            "revert-sha",
            "pr-url",
            "healthy",
            "exit-code",
            "report"
        ]
    );
}

#[test]
fn table_cells_escape_pipes_newlines_backticks_html_and_links() {
    assert_eq!(
        cell("a | b\n`c` <img src=x onerror=alert(1)> [x](https://evil) & *y*"),
        "a \\| b<br>\\`c\\` &lt;img src=x onerror=alert\\(1\\)&gt; \\[x\\]\\(https://evil\\) &amp; \\*y\\*"
    );
    assert_eq!(
        code("ghcr.io/acme/app:v1@sha256:ab"),
        "`ghcr.io/acme/app:v1@sha256:ab`"
    );
    assert_eq!(code("a`b|c"), "a\\`b\\|c");
    assert_eq!(
        pr_link("https://github.com/acme/infra/pull/7"),
        "[#7](https://github.com/acme/infra/pull/7)"
    );
    assert_eq!(pr_link("javascript:alert(1)"), "javascript:alert\\(1\\)");
    assert_eq!(
        pr_link("https://x/y) [z](https://evil"),
        "https://x/y\\) \\[z\\]\\(https://evil"
    );
    assert_eq!(
        Links::new(Some("https://github.com"), Some("a/b) [x](y")),
        Links::default()
    );
    assert_eq!(links().commit("not-a-sha"), "`not-a-sha`");
}

#[test]
fn summary_of_a_pushed_revert() {
    let r = report(vec![healthy_app("billing"), pushed()]);
    insta::assert_snapshot!(summary(&r, &links()));
}

#[test]
fn summary_of_a_hostile_repo() {
    let mut app = AppReport {
        verdict: Verdict::Breach,
        action: Action::Blocked,
        deployed_revision: Some(BAD.into()),
        reason: "freeze: `.revertbot-freeze` says | deploys\n## frozen <script>alert(1)</script>"
            .into(),
        warnings: vec!["pin | skipped\n- [phish](https://evil.example)".into()],
        ..AppReport::new("cart|<b>x</b>")
    };
    app.culprit_details = pushed().culprit_details;
    app.culprit_details[0].subject =
        "bump ![img](https://evil.example/x.png) `rm -rf` | col".into();
    app.pinned_images = vec![PinnedImage {
        image: "ghcr.io/acme/cart:v1`|".into(),
        digest: "sha256:00".into(),
    }];
    let r = report(vec![app]);
    insta::assert_snapshot!(summary(&r, &Links::default()));
}

#[test]
fn a_summary_over_githubs_limit_is_cut_on_a_char_boundary() {
    let apps: Vec<AppReport> = (0..3000)
        .map(|i| AppReport {
            reason: "é".repeat(400),
            ..AppReport::new(&format!("app-{i}"))
        })
        .collect();
    let text = summary(&report(apps), &links());
    assert!(text.len() <= SUMMARY_LIMIT + 200, "{}", text.len());
    assert!(text.ends_with("the `report` output has everything.\n"));
    assert!(text.contains("…and 2800 more apps"));
}
