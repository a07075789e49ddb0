#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot drill --app NAME`: the game day on a copy of the user's own
//! repo, on the layouts of public example repos (tests/fixtures/repos, see
//! its PROVENANCE.md), through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repos")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Infra Dev",
            "-c",
            "user.email=dev@example.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A git repo holding the layout `name` and `config`, committed on `branch`.
fn infra_repo(name: &str, branch: &str, config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("infra");
    copy_dir(&fixtures().join(name), &repo);
    std::fs::write(repo.join(".revertbot.yaml"), config).unwrap();
    git(&repo, &["init", "-q", "-b", branch]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "the example layout"]);
    (dir, repo)
}

fn drill(repo: &Path, app: &str) -> (Option<i32>, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_revertbot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .args(["--output", "json", "--repo"])
        .arg(repo)
        .args(["drill", "--app", app])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

fn check_status(report: &Value, name: &str) -> String {
    report["readiness"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["readiness"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_owned(),
                f["at"].as_str().unwrap().to_owned(),
                f["fix"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const ARGOCD_APPS: &str = r#"version: 1
repo: { remote: origin, branch: master }
argocd: { server: "https://argocd.example.com" }
apps:
  - name: guestbook
    paths: ["guestbook/**"]
    argocd: { app: guestbook }
  - name: kustomize-guestbook
    paths: ["kustomize-guestbook/**"]
    argocd: { app: kustomize-guestbook }
  - name: helm-guestbook
    paths: ["helm-guestbook/**"]
    argocd: { app: helm-guestbook }
    images:
      helm:
        - { files: ["helm-guestbook/values.yaml"], repository: image.repository, tag: image.tag }
"#;

#[test]
fn plain_kustomize_and_helm_apps_of_argocd_example_apps_are_ready() {
    let (_dir, repo) = infra_repo("argocd-example-apps", "master", ARGOCD_APPS);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    for app in ["guestbook", "kustomize-guestbook", "helm-guestbook"] {
        let (code, report, stderr) = drill(&repo, app);
        assert_eq!(code, Some(0), "{app}: {report:#}\n{stderr}");
        assert_eq!(report["passed"], true, "{app}");
        assert_eq!(report["readiness"]["ready"], true, "{app}: {report:#}");
        for check in [
            "paths_match",
            "images_located",
            "images_pinnable",
            "paths_owned",
            "digests_recorded",
            "revert_clean",
            "healthy_confirmed",
        ] {
            assert_eq!(check_status(&report, check), "pass", "{app}: {check}");
        }
        assert_eq!(
            report["readiness"]["images"][0]["image"], "gcr.io/google-samples/gb-frontend:v5",
            "{app}"
        );
        // The revert pinned the recorded good build, not the re-pointed tag.
        let pinned = report["check"]["apps"][0]["pinned_images"][0]["image"]
            .as_str()
            .unwrap();
        assert_eq!(pinned, "gcr.io/google-samples/gb-frontend:v5", "{app}");
    }
    // The user's repo is only read: same tip, no notes, no new refs.
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git(&repo, &["for-each-ref", "--format=%(refname)"]),
        "refs/heads/master\n"
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

#[test]
fn a_helm_chart_without_a_rule_is_not_ready_and_the_fix_is_the_rule() {
    let config = ARGOCD_APPS.replace(
        "    images:\n      helm:\n        - { files: [\"helm-guestbook/values.yaml\"], repository: image.repository, tag: image.tag }\n",
        "",
    );
    let (_dir, repo) = infra_repo("argocd-example-apps", "master", &config);
    let (code, report, stderr) = drill(&repo, "helm-guestbook");
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["readiness"]["ready"], false);
    assert_eq!(check_status(&report, "images_located"), "fail");
    assert_eq!(check_status(&report, "revert_clean"), "skipped");
    let found = findings(&report);
    assert!(
        found.contains(&(
            "warning".into(),
            "helm-guestbook/values.yaml:8:15".into(),
            "add to `apps[2].images.helm`: { files: [\"helm-guestbook/values.yaml\"], repository: image.repository, tag: image.tag }".into()
        )),
        "{found:#?}"
    );
    assert_eq!(found[0].0, "blocker", "{found:#?}");
}

const FLUX_STAGING: &str = r#"version: 1
repo: { remote: origin, branch: main }
apps:
  - name: podinfo-staging
    paths: ["apps/staging/**"]
    flux: { kind: Kustomization, name: apps, namespace: flux-system }
"#;

#[test]
fn a_flux_overlay_whose_base_is_outside_its_paths_gets_the_paths_to_add() {
    let (_dir, repo) = infra_repo("flux2-kustomize-helm-example", "main", FLUX_STAGING);
    let (code, report, stderr) = drill(&repo, "podinfo-staging");
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["readiness"]["ready"], false);
    let found = findings(&report);
    assert!(
        found.contains(&(
            "warning".into(),
            "apps/staging/kustomization.yaml:4:5".into(),
            "add `apps/base/podinfo/**` to `apps[0].paths`".into()
        )),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.0 == "blocker" && f.2.contains("apps/base/podinfo/**")),
        "{found:#?}"
    );
}

#[test]
fn the_flux_example_with_the_fixes_applied_is_ready() {
    let config = FLUX_STAGING.replace(
        r#"    paths: ["apps/staging/**"]
"#,
        r#"    paths: ["apps/staging/**", "apps/base/podinfo/**"]
    images:
      helm:
        - files: ["apps/base/podinfo/release.yaml"]
          repository: spec.values.redis.repository
          tag: spec.values.redis.tag
"#,
    );
    let (_dir, repo) = infra_repo("flux2-kustomize-helm-example", "main", &config);
    let (code, report, stderr) = drill(&repo, "podinfo-staging");
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["readiness"]["ready"], true);
    assert_eq!(
        report["readiness"]["images"][0]["image"],
        "public.ecr.aws/docker/library/redis:8.6.2"
    );
    // Flux is named as what the drill did not rehearse.
    assert!(
        findings(&report)
            .iter()
            .any(|f| f.0 == "note" && f.1 == "apps[0].flux"),
        "{report:#}"
    );
}

#[test]
fn files_claimed_by_two_apps_block_readiness_and_a_freeze_is_lifted_only_in_the_sandbox() {
    let config = ARGOCD_APPS.replace(
        "  - name: kustomize-guestbook\n    paths: [\"kustomize-guestbook/**\"]",
        "  - name: kustomize-guestbook\n    paths: [\"kustomize-guestbook/**\", \"guestbook/guestbook-ui-svc.yaml\"]",
    );
    let (_dir, repo) = infra_repo("argocd-example-apps", "master", &config);
    std::fs::write(repo.join(".revertbot-freeze"), "change window\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "freeze"]);
    let (code, report, stderr) = drill(&repo, "guestbook");
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(check_status(&report, "paths_owned"), "fail");
    // The loop itself ran to Healthy: the deployment is guestbook's alone.
    assert_eq!(check_status(&report, "healthy_confirmed"), "pass");
    let found = findings(&report);
    assert!(
        found.contains(&(
            "blocker".into(),
            "guestbook/guestbook-ui-svc.yaml".into(),
            "narrow `apps[0].paths` or the other app's paths so each file belongs to one app"
                .into()
        )),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.0 == "warning" && f.1 == ".revertbot-freeze")
    );
    assert!(repo.join(".revertbot-freeze").exists());
}

#[test]
fn an_unknown_app_or_a_directory_that_is_no_repo_is_a_usage_error() {
    let (_dir, repo) = infra_repo("argocd-example-apps", "master", ARGOCD_APPS);
    let (code, _, stderr) = drill(&repo, "billing");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("known apps: guestbook, kustomize-guestbook, helm-guestbook"),
        "{stderr}"
    );

    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join(".revertbot.yaml"), ARGOCD_APPS).unwrap();
    let (code, _, stderr) = drill(plain.path(), "guestbook");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a git checkout — pass the infra repo with --repo PATH"),
        "{stderr}"
    );
}
