#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! `revertbot preflight` end to end: the real binary on a real infra repo
//! (remote over smart HTTP, the pull request fetched into the checkout), the
//! real OCI registry (Debian's `docker-registry`), a ledger written with
//! `revertbot record` and an incident from a real `revertbot revert`. The
//! manifests are public ones (`tests/fixtures/preflight/PROVENANCE.md`),
//! their registries pointed at the local one.

mod support;

use serde_json::Value;
use support::preflight::{PrRepo, fixture, fixture_on};
use support::registry_server::{Flavor, RegistryServer, install_crypto};

const CONFIG: &str = "\
version: 1
repo: { remote: origin, branch: main }
apps:
  - name: guestbook
    paths: [\"guestbook/**\"]
    argocd: { app: guestbook }
  - name: helm-guestbook
    paths: [\"helm-guestbook/**\"]
    argocd: { app: helm-guestbook }
  - name: podinfo
    paths: [\"podinfo/**\", \"flux/apps/base/podinfo/**\"]
    flux: { kind: Kustomization, name: podinfo, namespace: flux-system }
";

const GUESTBOOK: &str = "guestbook/guestbook-ui-deployment.yaml";
const PODINFO: &str = "podinfo/kustomize/deployment.yaml";
/// Line of `image:` in argocd-example-apps' guestbook-ui-deployment.yaml.
const GUESTBOOK_IMAGE_LINE: u64 = 17;

fn repo_on(registry: &str) -> PrRepo {
    PrRepo::new(
        CONFIG,
        &[
            (
                GUESTBOOK,
                fixture_on(
                    "argocd-example-apps/guestbook/guestbook-ui-deployment.yaml",
                    registry,
                ),
            ),
            (
                PODINFO,
                fixture_on("podinfo/kustomize/deployment.yaml", registry),
            ),
            (
                "podinfo/kustomize/kustomization.yaml",
                fixture("podinfo/kustomize/kustomization.yaml"),
            ),
        ],
    )
}

fn guestbook_at(registry: &str, tag: &str) -> Option<String> {
    let text = fixture_on(
        "argocd-example-apps/guestbook/guestbook-ui-deployment.yaml",
        registry,
    );
    assert!(text.contains("gb-frontend:v5"), "the fixture changed shape");
    Some(text.replace("gb-frontend:v5", &format!("gb-frontend:{tag}")))
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// Placeholders for what changes from run to run (ports, and so the shas
/// of commits whose content names them).
struct Redact(Vec<(String, String)>);

impl Redact {
    fn new(repo: &PrRepo, registry: &str, head: &str) -> Redact {
        let base = repo.bot.rev_parse("origin/main");
        let mut pairs = vec![(registry.to_owned(), "REGISTRY".to_owned())];
        for (sha, name) in [(head.to_owned(), "HEAD"), (base, "BASE")] {
            pairs.push((sha.clone(), format!("<{name}>")));
            pairs.push((sha[..12].to_owned(), format!("<{name}>")));
            pairs.push((sha[..7].to_owned(), format!("<{name}>")));
        }
        for sha in repo.dev.git(&["rev-list", "origin/main..pr"]).lines() {
            pairs.push((sha[..12].to_owned(), "<COMMIT>".to_owned()));
            pairs.push((sha.to_owned(), "<COMMIT>".to_owned()));
        }
        Redact(pairs)
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.0 {
            out = out.replace(from, to);
        }
        out
    }
}

fn annotations(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_pr_passes_with_exit_0() {
    install_crypto();
    let registry = RegistryServer::start().await;
    let reg = registry.host();
    let v6 = registry
        .push_image(
            "google-samples/gb-frontend",
            "v6",
            Flavor::Oci,
            "gb-frontend v6",
        )
        .await;
    let repo = repo_on(&reg);
    // v6 ran healthy: recorded with its digest.
    let main = repo.bot.rev_parse("origin/main");
    let image = format!("{reg}/google-samples/gb-frontend:v6@{}", v6.digest);
    repo.expect(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &main,
            "--image",
            &image,
        ],
        &[],
        0,
    );
    let bumped = guestbook_at(&reg, "v6").map(|t| t.replace("replicas: 1", "replicas: 2"));
    let head = repo.open_pr(&[(&[(GUESTBOOK, bumped)], "guestbook: v6, two replicas")]);

    let text = repo.expect(&["preflight", "--head", &head], &[], 0);
    insta::assert_snapshot!("clean_text", Redact::new(&repo, &reg, &head).apply(&text));
    let report = json_of(&repo.expect(&["--output", "json", "preflight", "--head", &head], &[], 0));
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    assert_eq!(report["apps"], serde_json::json!(["guestbook"]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_pass_on_error_and_fail_on_warning() {
    install_crypto();
    let registry = RegistryServer::start().await;
    let reg = registry.host();
    let pushed = registry
        .push_image(
            "stefanprodan/podinfo",
            "6.14.2",
            Flavor::Docker,
            "podinfo 6.14.2",
        )
        .await;
    let repo = repo_on(&reg);
    let podinfo = fixture_on("podinfo/kustomize/deployment.yaml", &reg);
    assert!(
        podinfo.contains("podinfo:6.14.1"),
        "the fixture changed shape"
    );
    let head = repo.open_pr(&[
        (
            &[(
                PODINFO,
                Some(podinfo.replace("podinfo:6.14.1", "podinfo:6.14.2")),
            )],
            "podinfo: 6.14.2",
        ),
        (
            &[(
                "flux/apps/base/podinfo/release.yaml",
                Some(fixture_on(
                    "flux2-kustomize-helm-example/apps/base/podinfo/release.yaml",
                    &reg,
                )),
            )],
            "podinfo: the Flux release",
        ),
        (
            &[(
                "helm-guestbook/values.yaml",
                Some(fixture_on(
                    "argocd-example-apps/helm-guestbook/values.yaml",
                    &reg,
                )),
            )],
            "helm-guestbook: values",
        ),
        (
            &[("docs/runbook.md", Some("# Runbook\n".to_owned()))],
            "docs: runbook",
        ),
    ]);
    let summary_dir = tempfile::tempdir().unwrap();
    let summary = summary_dir.path().join("summary.md");
    let summary_path = summary.display().to_string();
    let actions = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary_path.as_str()),
    ];

    let out = repo.run(&["preflight", "--head", &head], &actions);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let redact = Redact::new(&repo, &reg, &head);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("podinfo:6.14.2@{}", pushed.digest)),
        "{text}"
    );
    insta::assert_snapshot!("warnings_text", redact.apply(&text));
    insta::assert_snapshot!(
        "warnings_annotations",
        redact.apply(&annotations(&out.stderr).join("\n"))
    );
    insta::assert_snapshot!(
        "warnings_summary",
        redact.apply(&std::fs::read_to_string(&summary).unwrap())
    );

    let report = json_of(&repo.expect(&["--output", "json", "preflight", "--head", &head], &[], 0));
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "apps",
            "base",
            "commits_checked",
            "counts",
            "fail_on",
            "files_changed",
            "findings",
            "head",
            "merge_base",
            "passed",
            "version",
            "warnings"
        ]
    );
    assert_eq!(report["version"], 1);
    assert_eq!(report["head"], head.as_str());
    assert_eq!(
        report["counts"],
        serde_json::json!({"error": 0, "warning": 4}),
        "{report}"
    );
    let checks: Vec<(&str, &str, Value)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["app", "check", "file", "line", "message", "severity"],
                "{f}"
            );
            (
                f["check"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["line"].clone(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("unowned_file", "docs/runbook.md", Value::Null),
            (
                "split_image",
                "flux/apps/base/podinfo/release.yaml",
                26.into()
            ),
            ("split_image", "helm-guestbook/values.yaml", 8.into()),
            ("mutable_tag", PODINFO, 26.into()),
        ]
    );

    // The threshold, from the flag and from the config.
    repo.expect(
        &["preflight", "--head", &head, "--fail-on", "warning"],
        &[],
        5,
    );
    let strict = summary_dir.path().join("strict.yaml");
    std::fs::write(
        &strict,
        format!("{CONFIG}preflight: {{ fail_on: warning }}\n"),
    )
    .unwrap();
    let strict = strict.display().to_string();
    repo.expect(&["--config", &strict, "preflight", "--head", &head], &[], 5);
    repo.expect(
        &[
            "--config",
            &strict,
            "preflight",
            "--head",
            &head,
            "--fail-on",
            "error",
        ],
        &[],
        0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_digest_coming_back_fails() {
    install_crypto();
    let registry = RegistryServer::start().await;
    let reg = registry.host();
    let good = registry
        .push_image(
            "google-samples/gb-frontend",
            "v5",
            Flavor::Oci,
            "gb-frontend v5",
        )
        .await;
    let bad = registry
        .push_image(
            "google-samples/gb-frontend",
            "v6",
            Flavor::Oci,
            "gb-frontend v6, crashes",
        )
        .await;
    let repo = repo_on(&reg);
    let main = repo.bot.rev_parse("origin/main");
    let image = format!("{reg}/google-samples/gb-frontend:v5@{}", good.digest);
    repo.expect(
        &[
            "record",
            "--app",
            "guestbook",
            "--revision",
            &main,
            "--image",
            &image,
        ],
        &[],
        0,
    );
    // A bad release pinned by digest, then revertbot's revert of it: the
    // incident quarantines the bad digest.
    let deployed = repo.on_main(
        &[(GUESTBOOK, guestbook_at(&reg, &format!("v6@{}", bad.digest)))],
        "guestbook: v6",
    );
    let reverted = repo.expect(
        &[
            "--output",
            "json",
            "revert",
            "--no-wait",
            "--app",
            "guestbook",
            "--deployed",
            &deployed,
        ],
        &[],
        0,
    );
    assert_eq!(
        json_of(&reverted)["apps"][0]["action"],
        "pushed",
        "{reverted}"
    );

    // The pull request brings v6 back by tag.
    let head = repo.open_pr(&[(
        &[(GUESTBOOK, guestbook_at(&reg, "v6"))],
        "guestbook: try v6 again",
    )]);
    let report = json_of(&repo.expect(&["--output", "json", "preflight", "--head", &head], &[], 5));
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    let f = &findings[0];
    assert_eq!(f["check"], "repromotion", "{f}");
    assert_eq!(f["severity"], "error", "{f}");
    assert_eq!(f["file"], GUESTBOOK);
    assert_eq!(f["line"], GUESTBOOK_IMAGE_LINE);
    assert_eq!(f["app"], "guestbook");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("resolves to {}", bad.digest)),
        "{message}"
    );
    assert!(message.contains("incident guestbook-"), "{message}");
    assert!(
        message.contains(&format!("pin the last-known-good `{image}`")),
        "{message}"
    );
    assert_eq!(report["passed"], false);
}

#[test]
fn a_registry_that_is_down_is_reported_not_passed() {
    // Nothing listens on port 1: every call is refused.
    let reg = "127.0.0.1:1";
    let repo = repo_on(reg);
    let head = repo.open_pr(&[(&[(GUESTBOOK, guestbook_at(reg, "v7"))], "guestbook: v7")]);
    let started = std::time::Instant::now();
    let out = repo.run(&["--output", "json", "preflight", "--head", &head], &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&String::from_utf8_lossy(&out.stdout));
    let f = &report["findings"][0];
    assert_eq!(f["check"], "unresolved_tag", "{report}");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["line"], GUESTBOOK_IMAGE_LINE);
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("cannot be resolved"), "{message}");
    assert!(
        message.contains("unreachable"),
        "the reason is given: {message}"
    );
}

/// A crafted job (Flux post-build substitution) at a path with non-ASCII
/// characters, and a file no app owns.
#[test]
fn templated_images_unowned_files_and_unicode_paths() {
    let repo = repo_on("127.0.0.1:1");
    let job = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: report\n              image: \"${REPORT_IMAGE}\"\n";
    let head = repo.open_pr(&[(
        &[
            (
                "guestbook/jobs/ünïcødé-nächtlich.yaml",
                Some(job.to_owned()),
            ),
            ("shared/überall.yaml", Some("kind: ConfigMap\n".to_owned())),
        ],
        "guestbook: nightly report",
    )]);
    let out = repo.run(
        &["--output", "json", "preflight", "--head", &head],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&String::from_utf8_lossy(&out.stdout));
    let got: Vec<(&str, &str, Value)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["line"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "cross_app_commit",
                "guestbook/jobs/ünïcødé-nächtlich.yaml",
                Value::Null
            ),
            (
                "templated_image",
                "guestbook/jobs/ünïcødé-nächtlich.yaml",
                13.into()
            ),
            ("unowned_file", "shared/überall.yaml", Value::Null),
        ],
        "{report}"
    );
    let lines = annotations(&out.stderr);
    assert!(
        lines.iter().any(|l| l.starts_with(
            "::warning file=guestbook/jobs/ünïcødé-nächtlich.yaml,line=13,title=revertbot preflight%3A templated_image (guestbook)::"
        )),
        "{lines:?}"
    );
    // Fail on warnings: the same findings fail the check.
    repo.expect(
        &["preflight", "--head", &head, "--fail-on", "warning"],
        &[],
        5,
    );
}

/// A file name and a commit subject written to end an annotation early and
/// inject commands: each finding stays one escaped annotation.
#[test]
fn crafted_names_cannot_inject_workflow_commands() {
    let repo = repo_on("127.0.0.1:1");
    let podinfo = fixture_on("podinfo/kustomize/deployment.yaml", "127.0.0.1:1");
    let crafted = "notes\n::error::pwned,line=1.yaml";
    let head = repo.open_pr(&[(
        &[
            (
                GUESTBOOK,
                guestbook_at("127.0.0.1:1", "v5").map(|t| t.replace("replicas: 1", "replicas: 3")),
            ),
            (
                PODINFO,
                Some(podinfo.replace("imagePullPolicy: IfNotPresent", "imagePullPolicy: Always")),
            ),
            (crafted, Some("x: 1\n".to_owned())),
        ],
        "scale ::error::owned %0A::add-mask::x",
    )]);
    let out = repo.run(
        &["preflight", "--head", &head],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = annotations(&out.stderr);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert!(line.starts_with("::warning "), "{line}");
        // `::` inside the message is data: the runner reads commands only
        // at the start of a line, and the line breaks are escaped.
        assert!(line.contains("%0A"), "{line}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("::error") || l.starts_with("::add-mask")),
        "{stderr}"
    );
    let redact = Redact::new(&repo, "127.0.0.1:1", &head);
    insta::assert_snapshot!("crafted_annotations", redact.apply(&lines.join("\n")));
    // Text output: one line per finding, the newline shown as `\n`.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("notes\\n::error::pwned,line=1.yaml"),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("::")), "{text}");
}

#[test]
fn a_bad_fail_on_in_the_config_is_a_usage_error_with_its_position() {
    let repo = repo_on("127.0.0.1:1");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        format!("{CONFIG}preflight:\n  fail_on: sometimes\n"),
    )
    .unwrap();
    let config = config.display().to_string();
    let out = repo.run(&["--config", &config, "preflight"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":14:12:"), "{stderr}");
    assert!(stderr.contains("`error`, `warning`"), "{stderr}");
}
