#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use globset::GlobSet;

use super::*;
use crate::config::AppConfig;
use crate::manifest::{HelmImageRule, PinRules};

fn app(yaml_paths: &[&str]) -> AppConfig {
    let paths = yaml_paths
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "version: 1\nrepo: {{ remote: origin, branch: main }}\napps:\n  - name: web\n    paths: [{paths}]\n    argocd: {{ app: web }}\n"
    );
    crate::config::parse("test.yaml", &text)
        .unwrap()
        .config
        .apps
        .remove(0)
}

fn assess(
    app: &AppConfig,
    files: &[FileFacts],
    tree: &[&str],
    others: &[(String, GlobSet)],
) -> (Vec<CheckResult>, Vec<Finding>) {
    let tree: Vec<String> = tree.iter().map(|s| (*s).to_owned()).collect();
    let paths = app.path_matcher();
    assess_repo(&RepoFacts {
        app,
        index: 0,
        files,
        tree: &tree,
        others,
        paths: &paths,
        freeze_file: false,
    })
}

const VALUES: &str = "replicaCount: 1\nimage:\n  repository: ghcr.io/acme/web\n  tag: \"1.2.3\"\nredis:\n  image:\n    repository: redis\n    tag: 7\n";

#[test]
fn values_files_show_image_shaped_keys_until_a_rule_covers_them() {
    let facts = inspect("chart/values.yaml", VALUES, &PinRules::default());
    let prefixes: Vec<&str> = facts
        .helm_candidates
        .iter()
        .map(|c| c.prefix.as_str())
        .collect();
    assert_eq!(prefixes, ["image", "redis.image"]);
    assert_eq!(facts.helm_candidates[0].image, "ghcr.io/acme/web:1.2.3");

    let mut rules = PinRules::default();
    rules.helm.push(
        HelmImageRule::new("chart/values.yaml", "image.repository", "image.tag", None).unwrap(),
    );
    let covered = inspect("chart/values.yaml", VALUES, &rules);
    assert_eq!(covered.sites.len(), 1);
    let prefixes: Vec<&str> = covered
        .helm_candidates
        .iter()
        .map(|c| c.prefix.as_str())
        .collect();
    assert_eq!(prefixes, ["redis.image"]);
    assert!(covered.unpinnable.is_empty());
}

#[test]
fn a_helm_rule_without_a_tag_to_carry_the_digest_is_unpinnable() {
    let mut rules = PinRules::default();
    rules
        .helm
        .push(HelmImageRule::new("values.yaml", "image.repository", "image.tag", None).unwrap());
    let facts = inspect(
        "values.yaml",
        "image:\n  repository: ghcr.io/acme/web\n",
        &rules,
    );
    assert_eq!(facts.sites.len(), 1);
    assert_eq!(facts.unpinnable.len(), 1, "{facts:?}");
    let app = app(&["**"]);
    let (checks, findings) = assess(&app, &[facts], &["values.yaml"], &[]);
    let pinnable = checks.iter().find(|c| c.name == "images_pinnable").unwrap();
    assert_eq!(pinnable.status, Status::Fail);
    assert!(
        findings
            .iter()
            .any(|f| f.level == Level::Blocker && f.at == "values.yaml:2:15"),
        "{findings:#?}"
    );
}

#[test]
fn kustomize_bases_outside_the_paths_remote_bases_and_escapes_are_told_apart() {
    let kustomization = "resources:\n  - ../base\n  - deployment.yaml\n  - github.com/acme/bases//web?ref=v1\n  - ../../../../outside\n";
    let facts = inspect(
        "overlays/prod/kustomization.yaml",
        kustomization,
        &PinRules::default(),
    );
    assert_eq!(facts.kustomize_refs.len(), 4);
    let app = app(&["overlays/prod/**"]);
    let tree = [
        "overlays/base/deployment.yaml",
        "overlays/prod/kustomization.yaml",
        "overlays/prod/deployment.yaml",
    ];
    let (_, findings) = assess(&app, &[facts], &tree, &[]);
    let fixes: Vec<(&str, Level)> = findings.iter().map(|f| (f.fix.as_str(), f.level)).collect();
    assert!(
        fixes.contains(&("add `overlays/base/**` to `apps[0].paths`", Level::Warning)),
        "{fixes:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.level == Level::Note && f.problem.contains("remote base"))
    );
    assert!(
        findings
            .iter()
            .any(|f| f.problem.contains("points outside the repo"))
    );
    // deployment.yaml is inside the paths: nothing said about it.
    assert!(
        !findings
            .iter()
            .any(|f| f.problem.contains("`deployment.yaml`"))
    );
}

#[test]
fn join_resolves_dot_dot_and_refuses_to_climb_out() {
    assert_eq!(
        join("apps/staging", "../base/podinfo").as_deref(),
        Some("apps/base/podinfo")
    );
    assert_eq!(join("", "./a/./b").as_deref(), Some("a/b"));
    assert_eq!(join("a", "../../b"), None);
}

#[test]
fn an_app_whose_files_another_app_claims_fails_ownership() {
    let app = app(&["web/**"]);
    let other = crate::config::parse(
        "o.yaml",
        "version: 1\nrepo: { remote: origin, branch: main }\napps:\n  - name: shared\n    paths: [\"**/service.yaml\"]\n",
    )
    .unwrap()
    .config
    .apps
    .remove(0);
    let files = [
        inspect(
            "web/deploy.yaml",
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: acme/web:1\n",
            &PinRules::default(),
        ),
        inspect("web/service.yaml", "kind: Service\n", &PinRules::default()),
    ];
    let (checks, findings) = assess(
        &app,
        &files,
        &["web/deploy.yaml", "web/service.yaml"],
        &[("shared".into(), other.path_matcher())],
    );
    assert_eq!(
        checks
            .iter()
            .find(|c| c.name == "paths_owned")
            .unwrap()
            .status,
        Status::Fail
    );
    assert!(findings.iter().any(|f| f.level == Level::Blocker
        && f.at == "web/service.yaml"
        && f.problem.contains("`shared`")));
    assert_eq!(
        checks
            .iter()
            .find(|c| c.name == "images_located")
            .unwrap()
            .status,
        Status::Pass
    );
}

#[test]
fn the_not_ready_text_names_each_check_and_fix() {
    let app = app(&["chart/**"]);
    let files = [inspect("chart/values.yaml", VALUES, &PinRules::default())];
    let (mut checks, mut findings) = assess(&app, &files, &["chart/values.yaml"], &[]);
    let (lc, lf) = assess_loop(
        &LoopFacts {
            not_run: Some("the drill found no image of the app it could change".into()),
            ..LoopFacts::default()
        },
        &files,
    );
    checks.extend(lc);
    findings.extend(lf);
    let r = Readiness::new(
        "0123456789abcdef0123456789abcdef01234567".into(),
        &files,
        checks,
        findings,
    );
    assert!(!r.ready);
    insta::assert_snapshot!(to_text("web", &r));
}
