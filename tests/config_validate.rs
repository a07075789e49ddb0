//! `.revertbot.yaml` validation: the DESIGN example, defaults, and a table
//! of bad files under `tests/fixtures/config/bad/`, each with the messages
//! it must produce and an insta snapshot of the full rendered text.
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test --test config_validate`
//! and read every changed `.snap` before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use revertbot::config::{
    self, Action, ConfigError, DiagnosticSeverity, FluxKind, GitHubPermission, Percent,
    RevertScope, Severity,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rendered outcome of checking `bad/<name>.yaml`.
fn check_bad(name: &str) -> Result<String, String> {
    let file = format!("bad/{name}.yaml");
    match config::parse(&file, &fixture(&file)) {
        Ok(loaded) => Ok(loaded
            .warnings
            .iter()
            .map(|w| w.render(&file))
            .collect::<Vec<_>>()
            .join("\n")),
        Err(e) => Err(e.to_string()),
    }
}

/// `bad!(test_name, "file", ["expected text", …])`: the file is invalid,
/// its rendered errors contain each text, and match the snapshot.
macro_rules! bad {
    ($test:ident, $file:literal, [$($expect:literal),* $(,)?]) => {
        #[test]
        fn $test() {
            let text = match check_bad($file) {
                Err(text) => text,
                Ok(warnings) => panic!("{} should be invalid; warnings:\n{warnings}", $file),
            };
            $(assert!(text.contains($expect), "expected {:?} in:\n{text}", $expect);)*
            insta::assert_snapshot!($file, text);
        }
    };
}

/// Like `bad!`, for files that are valid but warn.
macro_rules! warns {
    ($test:ident, $file:literal, [$($expect:literal),* $(,)?]) => {
        #[test]
        fn $test() {
            let text = match check_bad($file) {
                Ok(text) => text,
                Err(errors) => panic!("{} should be valid; errors:\n{errors}", $file),
            };
            $(assert!(text.contains($expect), "expected {:?} in:\n{text}", $expect);)*
            insta::assert_snapshot!($file, text);
        }
    };
}

bad!(syntax_error, "syntax", ["bad/syntax.yaml:", "invalid YAML"]);
bad!(
    syntax_missing_space,
    "syntax-missing-space",
    ["invalid YAML", "put a space after the `:` of each key"]
);
bad!(
    syntax_tabs,
    "syntax-tabs",
    [
        "bad/syntax-tabs.yaml:3:",
        "indent with spaces: YAML does not allow tabs"
    ]
);
bad!(
    empty_file,
    "empty",
    ["bad/empty.yaml:1:1: the config file is empty"]
);
bad!(
    top_level_list,
    "not-a-mapping",
    ["the config must be a mapping, found a list"]
);
bad!(
    wrong_types,
    "wrong-types",
    [
        "apps[0].paths must be a list of globs, found a string `guestbook/**` — write `paths: [\"guestbook/**\"]`",
        "repo must be a mapping, found a string `main`",
        "apps[0].argocd must be a mapping",
        "apps[0].health.controller must be true or false, found a string `yes`",
        "apps[0].health.slos must be a list of SLOs, found a mapping",
        "apps[0].health.alerts.matchers must be a list of matchers",
        "apps[1].health.slos[0].above must be a number, found a string `0.05`",
        "relative_to_baseline",
        "apps[1].images.pin must be true or false",
    ]
);
bad!(
    missing_keys,
    "missing-keys",
    [
        "bad/missing-keys.yaml:1:1: the config is missing `version` — add `version: 1`",
        "apps[0] is missing `paths`",
        "apps[0].argocd is missing `app`",
        "apps[0].health.slos[0] is missing `query`",
        "apps[0].health.slos[0] is missing `for`",
        "apps[0].health.slos[0] is missing `severity`",
        "apps[1] is missing `name`",
        "apps[1].flux is missing `kind`",
        "prometheus is missing `url`",
    ]
);
bad!(
    unknown_keys,
    "unknown-keys",
    [
        "unknown key `verison` at the top level — did you mean `version`?",
        "unknown key `policy` at the top level — `policy` belongs in `apps[]`; move it there",
        "unknown key `pahts` in apps[0] — did you mean `paths`?",
        "unknown key `project` in apps[0].argocd — allowed keys here: app, namespace",
        "unknown key `helth` in apps[0] — did you mean `health`?",
        "unknown key `notReadyFor` in apps[0].health.pods — did you mean `not_ready_for`?",
        "unknown key `timeout` in apps[0].policy",
    ]
);
bad!(
    bad_globs,
    "bad-globs",
    [
        "apps[0].paths[0]: `guestbook/[a` is not a valid glob: unclosed character class",
        "apps[0].paths[1]: `guestbook/{base,overlays` is not a valid glob",
    ]
);
bad!(
    paths_escaping_the_repo,
    "path-escape",
    [
        "apps[0].paths[0]: `../shared/**` leaves the repository with `..`",
        "apps[0].paths[1]: `/etc/guestbook/**` is an absolute path — paths are relative to the repo root: write `etc/guestbook/**`",
        "apps[0].paths[2]: `C:\\infra\\guestbook` is a Windows path",
        "apps[0].paths[3]: `./guestbook/**` contains a `.` segment",
        "apps[0].paths[4]: `guestbook/` ends with `/`, so it matches no file — to match everything below it write `guestbook/**`",
        "apps[0].paths[5]: `guestbook\\base\\deploy.yaml` uses `\\`",
        "apps[0].paths[6]: `guestbook/../../x` leaves the repository",
    ]
);
bad!(
    empty_paths,
    "empty-paths",
    [
        "apps[0].paths is empty — list the files it covers, like `paths: [\"guestbook/**\"]`",
        "apps[1].paths is empty",
    ]
);
bad!(
    bad_durations,
    "bad-durations",
    [
        "apps[0].health.pods.not_ready_for: `-5m` is a negative duration",
        "apps[0].health.slos[0].for: `5x` is not a duration",
        "apps[0].policy.cooldown must be a duration, found the number 5 — add a unit: `5s`, `5m` or `5h`",
        "apps[0].policy.max_reverts.per: `1 month` uses months or years",
        "apps[0].wait.timeout must be longer than zero",
    ]
);
bad!(
    duplicate_app_names,
    "duplicate-names",
    ["bad/duplicate-names.yaml:9:11: duplicate app name `guestbook`: apps[0] on line 3 has it too",]
);
warns!(
    overlapping_paths,
    "overlap",
    [
        "warning: apps `guestbook` and `guestbook-canary` overlap: `guestbook/canary/**` here and `guestbook/**` on line 4",
        "warning: apps `guestbook` and `shop` overlap: `shared/*.yaml` here and `shared/config.yaml` on line 4",
        "warning: apps[3] (`docs`) has neither `argocd` nor `flux`",
    ]
);
bad!(
    unsupported_version,
    "version",
    ["version 2 is not supported — this revertbot reads version 1"]
);
bad!(
    quoted_version,
    "version-quoted",
    ["version must be the number 1, found a string `1`"]
);
bad!(
    both_controllers,
    "both-controllers",
    ["apps[0] sets both `argocd` and `flux`"]
);
bad!(
    enum_values,
    "enums",
    [
        "approvals.github_permission must be one of `read`, `triage`, `write`, `maintain`, `admin`, found `owner`",
        "apps[0].flux.kind must be one of `Kustomization`, `HelmRelease`, found `kustomization` — did you mean `Kustomization`?",
        "apps[0].health.slos[0].severity must be one of `critical`, `warning`, found `high`",
        "apps[0].policy.critical must be one of `push`, `pr`, `pr-automerge`, `approve`, found `revert`",
        "found `PR` — did you mean `pr`?",
        "apps[0].revert.scope must be one of `app`, `commits`, `paths`, found `files`",
    ]
);
bad!(
    counts,
    "counts",
    [
        "apps[0].policy.max_reverts.count must be at least 1, found 0 — write a number of 1 or more",
        "apps[1].policy.max_reverts.count must be at least 1, found -1",
        "apps[2].policy.max_reverts.count must be a whole number, found a number `2.5`",
    ]
);
bad!(
    slo_thresholds,
    "slo-thresholds",
    [
        "apps[0].health.slos[0] has no threshold: set `above`, `below` or `relative_to_baseline`",
        "apps[0].health.slos[1] always breaches: `below: 0.9` is not less than `above: 0.5`",
        "apps[0].health.slos[2].relative_to_baseline has neither `above` nor `below`",
        "apps[0].health.slos[3].relative_to_baseline.below: `-3` is not a percentage",
        "warning: apps[0].health.slos[4].relative_to_baseline.below is +3%",
        "duplicate SLO name `no-threshold` in apps[0].health.slos (first on line 9)",
    ]
);
bad!(
    duplicate_keys,
    "duplicate-keys",
    [
        "duplicate key `paths` in apps[0] (first on line 4)",
        "duplicate key `version` at the top level (first on line 1)",
    ]
);
bad!(
    slack_comment_and_ids,
    "slack",
    [
        "slack.channel is empty — an unquoted `#` starts a YAML comment; quote the value: `channel: \"#deploys\"`",
        "approvals.slack_users[0]: `@alice` is not a Slack member ID",
        "approvals.slack_users needs `slack.channel`",
    ]
);
bad!(
    approvals_without_slack,
    "approvals-without-slack",
    ["approvals.slack_users needs `slack.channel` to post approval requests to",]
);
bad!(
    slos_without_prometheus,
    "slos-without-prometheus",
    ["apps[0].health.slos needs Prometheus to query, but `prometheus` is not set",]
);
bad!(
    connections,
    "connections",
    [
        "repo.remote: `my remote` must be one word",
        "repo.branch: `refs/heads/main` is a full ref name — write the short name `main`",
        "argocd.server: `argocd.example.com` is not an http:// or https:// URL — add the scheme: `https://argocd.example.com`",
        "prometheus.url: `ftp://prometheus` is not an http:// or https:// URL",
        "github.repository: `acme` is not a GitHub repository — write `owner/name`",
        "apps[0].name: app name `guest book` has characters that cannot go into a branch name",
    ]
);
bad!(
    alerts_and_helm,
    "alerts-and-helm",
    [
        "apps[0].health.alerts.matchers[1]: matcher `severity` has no operator",
        "apps[0].health.alerts.matchers[2]: matcher `env=~\"prod` has an unclosed quote",
        "apps[0].images.helm[0].repository: key path `image..repository` has an empty segment",
        "apps[0].images.helm[0] is missing `tag`",
        "apps[0].images.helm[1].files is empty",
        "apps[0].images.helm[1].digest: key path `image digest` contains whitespace",
        "apps[1].health.alerts.matchers is empty, so every alert would match",
    ]
);
bad!(
    many_problems_at_once,
    "many-problems",
    [
        "version 3 is not supported",
        "unknown key `remtoe` in repo — did you mean `remote`?",
        "slack.channel: `deploys` is neither a `#channel` name nor a channel ID",
        "unknown key `pahts` in apps[0] — did you mean `paths`?",
        "apps[0] is missing `paths`",
        "apps[0] sets both `argocd` and `flux`",
        "found `Kustomisation` — did you mean `Kustomization`?",
        "apps[0].health.controller must be true or false, found a string `maybe`",
        "apps[0].health.slos[0].for: `5 parsecs` is not a duration",
        "apps[0].health.slos[0].severity must be one of `critical`, `warning`, found `urgent`",
        "apps[0].health.slos[0] has no threshold",
        "apps[0].health.slos needs Prometheus",
        "found `revert`",
        "apps[0].policy.cooldown must be a duration, found the number 30",
        "apps[0].policy.max_reverts.count must be at least 1",
        "duplicate app name `guestbook`",
        "apps[1].paths[0]: `../guestbook/**` leaves the repository",
        "apps[1].paths[1]: `/abs/**` is an absolute path",
        "apps[1].paths[2]: `shop/[x` is not a valid glob",
        "apps[2].paths must be a list of globs, found a string `shop/**`",
        "apps[2].wait.timeout: `soon` is not a duration",
    ]
);

#[test]
fn every_bad_fixture_has_a_test() {
    let this = include_str!("config_validate.rs");
    for entry in std::fs::read_dir(format!("{FIXTURES}/bad")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.strip_suffix(".yaml").expect("fixtures end in .yaml");
        assert!(
            this.contains(&format!("\"{stem}\"")),
            "bad/{name} has no bad!/warns! line in this file"
        );
    }
}

#[test]
fn many_problems_are_all_reported_in_source_order() {
    let err = config::parse("many.yaml", &fixture("bad/many-problems.yaml")).unwrap_err();
    let ConfigError::Invalid { file, diagnostics } = &err else {
        panic!("{err}");
    };
    assert_eq!(file, "many.yaml");
    assert!(diagnostics.len() >= 20, "{err}");
    let positions: Vec<(usize, usize)> = diagnostics.iter().map(|d| (d.line, d.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    assert_eq!(err.to_string().lines().count(), diagnostics.len());
    assert!(err.to_string().lines().all(|l| l.starts_with("many.yaml:")));
    assert_eq!(err.diagnostics().len(), diagnostics.len());
    assert_eq!(err.exit_code(), 2);
    // Paths point into the file's structure.
    assert!(
        diagnostics
            .iter()
            .any(|d| d.path == "apps[0].health.slos[0].for")
    );
    assert!(diagnostics.iter().any(|d| d.path == "apps[1].paths[2]"));
}

#[test]
fn the_design_example_is_valid_and_every_key_is_read() {
    let loaded = config::parse("design-example.yaml", &fixture("design-example.yaml")).unwrap();
    // Valid; every key this version does not act on yet says so.
    insta::assert_snapshot!(
        "design-example-not-acted-on",
        loaded
            .warnings
            .iter()
            .map(|w| w.render("design-example.yaml"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let c = loaded.config;
    assert_eq!(c.version, 1);
    assert_eq!(
        (c.repo.remote.as_str(), c.repo.branch.as_str()),
        ("origin", "main")
    );
    assert_eq!(
        c.argocd.unwrap().server.as_deref(),
        Some("https://argocd.example.com")
    );
    assert_eq!(
        c.prometheus.unwrap().url,
        "http://prometheus.monitoring:9090"
    );
    assert_eq!(
        c.alertmanager.unwrap().url,
        "http://alertmanager.monitoring:9093"
    );
    assert_eq!(c.github.unwrap().repository.as_deref(), Some("acme/infra"));
    assert_eq!(c.slack.unwrap().channel, "#deploys");
    let approvals = c.approvals.unwrap();
    assert_eq!(approvals.slack_users, ["U0123ABCD"]);
    assert_eq!(approvals.github_permission, GitHubPermission::Write);

    let [app] = c.apps.as_slice() else {
        panic!("one app")
    };
    assert_eq!(app.name, "guestbook");
    assert_eq!(app.paths, ["guestbook/**"]);
    assert_eq!(app.argocd.as_ref().unwrap().app, "guestbook");
    assert!(app.flux.is_none());
    let h = &app.health;
    assert!(h.controller);
    let pods = &h.pods;
    assert!(pods.crashloop);
    assert_eq!(pods.not_ready_for, Duration::from_secs(120));
    let [p95, accuracy] = h.slos.as_slice() else {
        panic!("two SLOs")
    };
    assert_eq!(p95.name, "p95-latency");
    assert!(
        p95.query
            .starts_with("histogram_quantile(0.95, sum by (le)")
    );
    assert_eq!(p95.above, Some(0.25));
    assert_eq!(p95.r#for, Duration::from_secs(300));
    assert_eq!(p95.severity, Severity::Critical);
    assert_eq!(accuracy.name, "accuracy-drop");
    let baseline = accuracy.relative_to_baseline.as_ref().unwrap();
    assert_eq!(baseline.below, Some(Percent(-3.0)));
    assert_eq!(baseline.above, None);
    assert_eq!(accuracy.r#for, Duration::from_secs(900));
    assert_eq!(accuracy.severity, Severity::Warning);
    assert_eq!(
        h.alerts.as_ref().unwrap().matchers,
        ["app=\"guestbook\"", "severity=\"critical\""]
    );
    let p = &app.policy;
    assert_eq!((p.critical, p.warning), (Action::Push, Action::Approve));
    assert_eq!(p.cooldown, Duration::from_secs(1800));
    assert_eq!(p.max_reverts.count, 3);
    assert_eq!(p.max_reverts.per, Duration::from_secs(86_400));
    assert_eq!(app.wait.timeout, Duration::from_secs(600));
}

#[test]
fn defaults_fill_a_minimal_config() {
    let loaded = config::parse(
        "min.yaml",
        "version: 1\napps:\n  - name: guestbook\n    paths: [\"guestbook/**\"]\n    flux: { kind: HelmRelease, name: guestbook }\n",
    )
    .unwrap();
    assert_eq!(loaded.warnings, vec![]);
    let app = loaded.config.app("guestbook").unwrap();
    assert_eq!(app.flux.as_ref().unwrap().kind, FluxKind::HelmRelease);
    assert_eq!(app.revert.scope, RevertScope::App);
    assert!(!app.revert.allow_outside);
    // Fast failure protects without being configured.
    assert!(app.health.pods.crashloop && app.health.pods.image_pull);
    assert_eq!(app.health.pods.not_ready_for, Duration::from_secs(300));
    assert!(loaded.config.app("nope").is_none());
    insta::assert_yaml_snapshot!("minimal-config-with-defaults", loaded.config);
}

#[test]
fn path_matcher_matches_repo_relative_paths() {
    let loaded = config::parse(
        "m.yaml",
        "version: 1\napps:\n  - name: g\n    paths: [\"guestbook/**\", \"shared/*.yaml\"]\n    argocd: { app: g }\n",
    )
    .unwrap();
    let m = loaded.config.apps[0].path_matcher();
    assert!(m.is_match("guestbook/deploy.yaml"));
    assert!(m.is_match("guestbook/overlays/prod/kustomization.yaml"));
    assert!(m.is_match("shared/config.yaml"));
    assert!(
        !m.is_match("shared/deep/config.yaml"),
        "`*` stays in one directory"
    );
    assert!(!m.is_match("guestbook-v2/deploy.yaml"));
    assert!(!m.is_match("other/guestbook/deploy.yaml"));
}

#[test]
fn anchors_merge_keys_and_x_keys() {
    let source = r#"
version: 1
x-policy: &policy
  critical: pr
  cooldown: 1h
apps:
  - name: guestbook
    paths: ["guestbook/**"]
    argocd: { app: guestbook }
    policy:
      <<: *policy
      cooldown: 2h
  - name: shop
    paths: ["shop/**"]
    argocd: { app: shop }
    policy: *policy
"#;
    let c = config::parse("a.yaml", source).unwrap().config;
    assert_eq!(c.apps[0].policy.critical, Action::Pr);
    assert_eq!(
        c.apps[0].policy.cooldown,
        Duration::from_secs(7200),
        "explicit keys win"
    );
    assert_eq!(c.apps[1].policy.cooldown, Duration::from_secs(3600));
    assert_eq!(c.apps[1].policy.warning, Action::Approve);
}

#[test]
fn errors_inside_merged_mappings_point_at_the_anchor() {
    let source = "version: 1\nx-d: &d\n  cooldown: 5\napps:\n  - name: g\n    paths: [\"g/**\"]\n    argocd: { app: g }\n    policy: { <<: *d }\n";
    let err = config::parse("m.yaml", source).unwrap_err().to_string();
    assert!(
        err.starts_with("m.yaml:3:13: apps[0].policy.cooldown must be a duration"),
        "{err}"
    );
}

#[test]
fn warnings_do_not_fail_the_config() {
    let loaded = config::parse(
        "w.yaml",
        "version: 1\napps:\n  - name: g\n    paths: [\"g/**\"]\n",
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].severity, DiagnosticSeverity::Warning);
    assert_eq!(loaded.warnings[0].path, "apps[0]");
    assert_eq!(
        loaded.warnings[0].render("w.yaml"),
        "w.yaml:3:5: warning: apps[0] (`g`) has neither `argocd` nor `flux`, so `check` and `watch` cannot observe it; `plan` and `revert` still work — add `argocd: { app: g }` or `flux: { kind: Kustomization, name: g }`"
    );
}

#[test]
fn load_reads_the_file_or_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(".revertbot.yaml");
    let err = config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot read {}: ", missing.display())),
        "{text}"
    );
    assert!(text.ends_with(" — create it or pass --config"), "{text}");

    std::fs::write(&missing, fixture("design-example.yaml")).unwrap();
    let loaded = config::load(&missing).unwrap();
    assert_eq!(loaded.config.apps.len(), 1);

    std::fs::write(&missing, "version: 1\napps: 3\n").unwrap();
    let err = config::load(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}:2:7: apps must be a list of apps",
            missing.display()
        )),
        "{err}"
    );
}
