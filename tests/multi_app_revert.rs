//! Monorepo commits that change several apps at once (an image swapped
//! across apps, a release merge, a Renovate batch): by default the revert
//! undoes the culprits' changes inside the broken app's paths only, three-way
//! (later edits in the app survive), and says which files it left alone and
//! which apps own them. `scope: commits` stays whole-commit and opt-in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use serde_json::json;
use support::infra::{BILLING, CONFIG, DEPLOY_V1, REMOTE, Sandbox, good_digest, stderr};

fn revert(sb: &Sandbox, deployed: &str, expected: i32) -> serde_json::Value {
    sb.json(
        &[
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            deployed,
        ],
        expected,
    )
}

fn pinned_v1() -> String {
    format!("ghcr.io/acme/guestbook:v1@{}", good_digest())
}

#[test]
fn a_culprit_spanning_apps_is_reverted_for_the_broken_app_only() {
    let sb = Sandbox::with_multi_app_culprit(CONFIG);
    sb.record_good();
    // A later edit in the app, after the culprit: a three-way revert keeps it.
    sb.dev.write(
        "apps/guestbook/service.yaml",
        "kind: Service\nmetadata: {name: ui}\n",
    );
    sb.dev.commit("guestbook: add the service");
    sb.dev.push(&["main"]);
    let before = sb.remote_tip();
    let report = revert(&sb, &sb.bad, 0);
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    let commit = app["revert_commit"].as_str().unwrap();
    let manifest = sb.remote_file(commit, "apps/guestbook/deployment.yaml");
    assert!(manifest.contains(&pinned_v1()), "{manifest}");
    assert!(manifest.contains("readinessProbe"), "{manifest}");
    assert!(
        sb.remote_file(commit, "apps/guestbook/service.yaml")
            .contains("kind: Service")
    );
    // Other apps' and shared files stay as the culprit left them.
    for path in ["apps/billing/deployment.yaml", "charts/common/values.yaml"] {
        assert_eq!(
            sb.remote_file(commit, path),
            sb.remote_file(&before, path),
            "{path}"
        );
    }
    assert_eq!(
        app["left_alone"],
        json!([
            {"culprit": sb.bad, "file": "apps/billing/deployment.yaml", "owners": ["billing"]},
            {"culprit": sb.bad, "file": "charts/common/values.yaml", "owners": []},
        ]),
        "{report}"
    );
    let message = sb.host.git(REMOTE, &["log", "-1", "--format=%B", commit]);
    assert!(
        message.contains("Reverted within guestbook's paths only, newest first:"),
        "{message}"
    );
    assert!(
        message.contains(
            "- apps/billing/deployment.yaml (billing)\n- charts/common/values.yaml (no app)"
        ),
        "{message}"
    );
    // revertbot recognises its own path-limited revert: no second one.
    let again = revert(&sb, &sb.bad, 0);
    assert!(
        again["apps"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already reverted"),
        "{again}"
    );
    assert!(again["apps"][0]["forged_reverts"].is_null(), "{again}");
    assert_eq!(sb.remote_reverts().len(), 1);
}

#[test]
fn file_globs_that_are_not_directories_take_the_same_path_limited_revert() {
    let config = CONFIG.replace("apps/guestbook/**", "apps/guestbook/*.yaml");
    let sb = Sandbox::with_multi_app_culprit(&config);
    sb.record_good();
    let report = revert(&sb, &sb.bad, 0);
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    let commit = app["revert_commit"].as_str().unwrap();
    assert!(
        sb.remote_file(commit, "apps/guestbook/deployment.yaml")
            .contains(&pinned_v1())
    );
    assert!(
        sb.remote_file(commit, "apps/billing/deployment.yaml")
            .contains("2.4.0")
    );
}

#[test]
fn a_release_merge_touching_the_app_other_apps_and_a_chart_is_reverted_for_the_app() {
    let sb = Sandbox::new(None);
    sb.record_good();
    sb.dev.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    sb.dev.checkout_new("release");
    sb.dev.write(
        "apps/guestbook/deployment.yaml",
        DEPLOY_V1.replace("guestbook:v1", "guestbook:v3"),
    );
    sb.dev.commit("guestbook v3");
    sb.dev.write(
        "apps/billing/deployment.yaml",
        BILLING.replace("2.3.0", "3.0.0"),
    );
    sb.dev.write("charts/common/Chart.yaml", "version: 2.0.0\n");
    sb.dev.commit("billing 3 and the chart");
    sb.dev.checkout("main");
    sb.dev.write("apps/billing/README.md", "billing\n");
    sb.dev.commit("billing docs on main meanwhile");
    let merge = sb.dev.merge_no_ff("release", "Merge release 2026.12");
    sb.dev.push(&["main"]);
    let report = revert(&sb, &merge, 0);
    let app = &report["apps"][0];
    assert_eq!(app["action"], "pushed", "{report}");
    // The merge (and the sandbox's own bad v2 before it).
    assert_eq!(app["culprits"][0], merge.as_str(), "{report}");
    let commit = app["revert_commit"].as_str().unwrap();
    let manifest = sb.remote_file(commit, "apps/guestbook/deployment.yaml");
    assert!(manifest.contains(&pinned_v1()), "{manifest}");
    assert!(
        sb.remote_file(commit, "apps/billing/deployment.yaml")
            .contains("3.0.0")
    );
    assert_eq!(
        sb.remote_file(commit, "charts/common/Chart.yaml"),
        "version: 2.0.0"
    );
    let left: Vec<&str> = app["left_alone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        ["apps/billing/deployment.yaml", "charts/common/Chart.yaml"],
        "{report}"
    );
}

#[test]
fn scope_commits_is_whole_commit_and_refused_across_apps_unless_allowed() {
    let config = CONFIG.replace(
        "    argocd: { app: guestbook }\n",
        "    argocd: { app: guestbook }\n    revert: { scope: commits }\n",
    );
    let sb = Sandbox::with_multi_app_culprit(&config);
    sb.record_good();
    let before = sb.remote_tip();
    let out = sb.run(&[
        "revert",
        "--no-wait",
        "--app",
        "guestbook",
        "--deployed",
        &sb.bad,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "outside the app's paths: apps/billing/deployment.yaml, charts/common/values.yaml"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.remote_tip(), before);

    let allowed = config.replace("scope: commits }", "scope: commits, allow_outside: true }");
    let sb = Sandbox::with_multi_app_culprit(&allowed);
    sb.record_good();
    let report = revert(&sb, &sb.bad, 0);
    let commit = report["apps"][0]["revert_commit"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sb.remote_file(&commit, "apps/billing/deployment.yaml")
            .contains("2.3.1"),
        "the whole commit is reverted"
    );
}

#[test]
fn an_image_updater_write_back_is_reverted_and_pinned_like_any_manifest() {
    let sb = Sandbox::new(None);
    sb.dev.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    let file = "apps/guestbook/.argocd-source-guestbook.yaml";
    sb.dev.write(
        file,
        "kustomize:\n  images:\n  - ghcr.io/acme/guestbook:v1\n",
    );
    let good = sb.dev.commit("build: automatic update of guestbook (v1)");
    sb.dev.write(
        file,
        "kustomize:\n  images:\n  - ghcr.io/acme/guestbook:v2\n",
    );
    let bad = sb.dev.commit("build: automatic update of guestbook (v2)");
    sb.dev.push(&["main"]);
    let image = pinned_v1();
    sb.json(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &good,
            "--image",
            &image,
        ],
        0,
    );
    let report = revert(&sb, &bad, 0);
    let app = &report["apps"][0];
    assert_eq!(app["culprits"], json!([bad]), "{report}");
    let commit = app["revert_commit"].as_str().unwrap();
    assert_eq!(
        sb.remote_file(commit, file),
        format!("kustomize:\n  images:\n  - {}", pinned_v1())
    );
}

#[test]
fn an_image_updater_helm_write_back_is_pinned_through_its_tag_parameter() {
    // What argocd-image-updater writes for a Helm app (pkg/argocd/update.go):
    // `image.name` and `image.tag` as string parameters.
    let write_back = |tag: &str| {
        format!(
            "helm:\n  parameters:\n  - name: image.name\n    value: ghcr.io/acme/guestbook\n    forcestring: true\n  - name: image.tag\n    value: {tag}\n    forcestring: true\n"
        )
    };
    let sb = Sandbox::new(None);
    sb.dev.git(&["pull", "-q", "--ff-only", "origin", "main"]);
    let file = "apps/guestbook/.argocd-source-guestbook.yaml";
    sb.dev.write(file, write_back("v1"));
    let good = sb.dev.commit("build: automatic update of guestbook (v1)");
    sb.dev.write(file, write_back("v2"));
    let bad = sb.dev.commit("build: automatic update of guestbook (v2)");
    sb.dev.push(&["main"]);
    let image = pinned_v1();
    sb.json(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &good,
            "--image",
            &image,
        ],
        0,
    );
    let report = revert(&sb, &bad, 0);
    let app = &report["apps"][0];
    assert_eq!(app["culprits"], json!([bad]), "{report}");
    let commit = app["revert_commit"].as_str().unwrap();
    // The updater cannot write the bad tag back unnoticed: the tag that
    // runs is pinned to the recorded digest.
    assert_eq!(
        sb.remote_file(commit, file),
        write_back(&format!("v1@{}", good_digest())).trim_end()
    );
}
