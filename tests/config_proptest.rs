//! The config decoder must never panic, whatever it is given, and its
//! diagnostics must always be well-formed. (Debug assertions are on in
//! tests, so this also checks that every struct decoder reads all its keys.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use revertbot::config::{self, ConfigError, DiagnosticSeverity};

const EXAMPLE: &str = include_str!("fixtures/config/design-example.yaml");

/// Checks the invariants of one outcome.
fn check(source: &str) -> Result<(), TestCaseError> {
    let lines = source.lines().count().max(1) + 1;
    match config::parse("p.yaml", source) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                prop_assert_eq!(w.severity, DiagnosticSeverity::Warning);
            }
        }
        Err(ConfigError::Invalid { diagnostics, .. }) => {
            prop_assert!(!diagnostics.is_empty());
            prop_assert!(diagnostics.iter().any(|d| d.is_error()));
            for d in &diagnostics {
                prop_assert!(
                    d.line >= 1 && d.line <= lines,
                    "line {} of {}",
                    d.line,
                    lines
                );
                prop_assert!(d.column >= 1);
                prop_assert!(!d.message.is_empty());
                prop_assert!(!d.render("p.yaml").contains('\n'), "{:?}", d);
            }
            let err = ConfigError::Invalid {
                file: "p.yaml".into(),
                diagnostics: diagnostics.clone(),
            };
            prop_assert_eq!(err.to_string().lines().count(), diagnostics.len());
        }
        Err(other) => prop_assert!(false, "unexpected {other}"),
    }
    Ok(())
}

/// A small YAML value, rendered in flow style.
#[derive(Debug, Clone)]
enum Gen {
    Scalar(String),
    Seq(Vec<Gen>),
    Map(Vec<(String, Gen)>),
}

impl Gen {
    fn render(&self) -> String {
        match self {
            Gen::Scalar(s) => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./*%+ ".contains(c))
                    && !s.starts_with(['-', ' ', '*', '%'])
                    && !s.ends_with(' ');
                if plain {
                    s.clone()
                } else {
                    serde_json::to_string(s).unwrap()
                }
            }
            Gen::Seq(items) => {
                let inner: Vec<String> = items.iter().map(Gen::render).collect();
                format!("[{}]", inner.join(", "))
            }
            Gen::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Gen::Scalar(k.clone()).render(), v.render()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
}

const KEYS: &[&str] = &[
    "version",
    "repo",
    "remote",
    "branch",
    "argocd",
    "server",
    "flux",
    "context",
    "prometheus",
    "url",
    "alertmanager",
    "github",
    "repository",
    "slack",
    "channel",
    "approvals",
    "slack_users",
    "github_permission",
    "apps",
    "name",
    "paths",
    "app",
    "namespace",
    "kind",
    "health",
    "controller",
    "pods",
    "crashloop",
    "image_pull",
    "not_ready_for",
    "slos",
    "query",
    "above",
    "below",
    "relative_to_baseline",
    "for",
    "severity",
    "alerts",
    "matchers",
    "policy",
    "critical",
    "warning",
    "cooldown",
    "max_reverts",
    "count",
    "per",
    "freeze",
    "grace",
    "wait",
    "timeout",
    "revert",
    "scope",
    "images",
    "pin",
    "helm",
    "files",
    "tag",
    "digest",
    "pahts",
    "x-anchor",
    "<<",
];

const SCALARS: &[&str] = &[
    "1",
    "0",
    "-1",
    "2.5",
    "true",
    "false",
    "null",
    "~",
    "",
    "5m",
    "1h 30m",
    "0s",
    "-5m",
    "5x",
    "-3%",
    "+30%",
    "3%",
    "guestbook",
    "guestbook/**",
    "../x",
    "/abs",
    "a/[b",
    "push",
    "pr",
    "pr-automerge",
    "approve",
    "critical",
    "warning",
    "Kustomization",
    "HelmRelease",
    "write",
    "commits",
    "paths",
    "app=\"g\"",
    "#deploys",
    "U0123ABCD",
    "http://p:9090",
    "image.tag",
    "acme/infra",
    "main",
    "origin",
];

fn yaml_value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        prop::sample::select(SCALARS).prop_map(|s| Gen::Scalar(s.to_owned())),
        "[ -~]{0,12}".prop_map(Gen::Scalar),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Gen::Seq),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
                        1 => "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(Gen::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(source in "[a-z0-9:\\-\\[\\]{}#'\" \n,*&!|>._/%<~?@`\t]{0,300}") {
        check(&source)?;
    }

    #[test]
    fn generated_documents_never_panic(doc in yaml_value(), wrap in any::<bool>()) {
        // Usually wrap in a plausible top level so decoding goes deep.
        let source = if wrap {
            format!("version: 1\napps: [{}]\n", doc.render())
        } else {
            doc.render()
        };
        check(&source)?;
    }

    #[test]
    fn mutated_design_example_never_panics(
        start in 0usize..EXAMPLE.len(),
        len in 0usize..40,
        insert in prop::sample::select(&["", "x", ": ", "\n", "  ", "- ", "[", "{", "'", "\"", "#", "&a ", "*a", "<<: ", "\t", "é"][..]),
    ) {
        let mut start = start;
        while !EXAMPLE.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(EXAMPLE.len());
        while !EXAMPLE.is_char_boundary(end) {
            end -= 1;
        }
        let source = format!("{}{insert}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        check(&source)?;
    }
}
