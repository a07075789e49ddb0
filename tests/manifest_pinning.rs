//! Pinning real manifests from public infra repos and hand-written edge
//! cases: snapshots of the rewritten files, plus checks that nothing but the
//! image values changed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use revertbot::domain::ImageRef;
use revertbot::manifest::{self, HelmImageRule, ManifestError, PinOutcome, PinRules, SiteKind};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn fixture(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn targets(list: &[&str]) -> Vec<ImageRef> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// Removes every `sha256:<64 hex>` (with a leading `@`) from `s`.
fn strip_digests(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        let hex = &rest[i + 7..];
        let n = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n == 64 {
            out.push_str(rest[..i].strip_suffix('@').unwrap_or(&rest[..i]));
            rest = &hex[64..];
        } else {
            out.push_str(&rest[..i + 7]);
            rest = hex;
        }
    }
    out.push_str(rest);
    out
}

/// Checks that `new` differs from `old` only on the lines the outcome
/// reports, and on those only by digests (added, replaced, or a whole
/// inserted `digest:` line).
fn assert_only_digests_changed(old: &str, outcome: &PinOutcome) {
    let new = &outcome.content;
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let pinned_lines: Vec<usize> = outcome.pinned.iter().map(|p| p.line).collect();
    let (mut i, mut j) = (0, 0);
    let mut changed = Vec::new();
    while j < new_lines.len() {
        if i < old_lines.len() && old_lines[i] == new_lines[j] {
            i += 1;
            j += 1;
            continue;
        }
        changed.push(j + 1);
        let inserted = new_lines[j].trim_start().starts_with("digest: sha256:")
            && strip_digests(new_lines[j]).trim() == "digest:";
        // A line inserted after the last line of a file without a final
        // newline: the old last line gains the line ending.
        let at_eof = i + 1 == old_lines.len()
            && j + 2 == new_lines.len()
            && !old.ends_with('\n')
            && new_lines[j].trim_end_matches(['\r', '\n']) == old_lines[i];
        if at_eof {
            changed.pop();
            i += 1;
            j += 1;
            continue;
        }
        if inserted {
            j += 1;
            continue;
        }
        assert!(
            i < old_lines.len(),
            "extra line {}: {:?}",
            j + 1,
            new_lines[j]
        );
        assert_eq!(
            strip_digests(old_lines[i]),
            strip_digests(new_lines[j]),
            "line {} changed beyond its digest",
            j + 1
        );
        i += 1;
        j += 1;
    }
    assert_eq!(i, old_lines.len(), "lines lost at the end");
    let mut expected = pinned_lines.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(changed, expected, "changed lines vs reported pins");
    // The same in bytes: the common prefix reaches the first edit.
    let prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if let Some(first) = expected.first() {
        let line_start: usize = new_lines[..first - 1].iter().map(|l| l.len()).sum();
        assert!(prefix >= line_start, "bytes before line {first} changed");
    }
    if let Some(last) = expected.last() {
        let line_end: usize = new_lines[..*last].iter().map(|l| l.len()).sum();
        assert!(
            new.len() - suffix <= line_end,
            "bytes after line {last} changed"
        );
    }
}

/// Makes line endings and a BOM visible in snapshots.
fn visible(s: &str) -> String {
    s.replace('\u{feff}', "<BOM>").replace('\r', "␍")
        + if s.ends_with('\n') {
            ""
        } else {
            "<no newline at end>"
        }
}

/// Pins `rel`, checks the edit is minimal and idempotent, snapshots it.
fn pin_fixture(rel: &str, rules: &PinRules, list: &[&str]) -> PinOutcome {
    let old = fixture(rel);
    let t = targets(list);
    let outcome = manifest::pin(rel, &old, rules, &t).unwrap();
    assert_only_digests_changed(&old, &outcome);
    let again = manifest::pin(rel, &outcome.content, rules, &t).unwrap();
    assert_eq!(
        again.content, outcome.content,
        "pinning twice changes nothing"
    );
    assert!(again.pinned.is_empty());
    assert_eq!(
        again.unchanged.len(),
        outcome.pinned.len() + outcome.unchanged.len()
    );
    let name = rel.replace(['/', '.'], "_");
    insta::assert_snapshot!(name, visible(&outcome.content));
    outcome
}

fn helm(glob: &str, digest: Option<&str>) -> PinRules {
    PinRules {
        helm: vec![
            HelmImageRule::new(
                glob,
                "image.repository",
                "image.tag",
                digest.map(str::to_owned),
            )
            .unwrap(),
        ],
    }
}

#[test]
fn helm_values_tag_and_digest_key() {
    let rel = "real/podinfo-chart/values.yaml";
    let t = [format!("ghcr.io/stefanprodan/podinfo:6.14.1@{D1}")];
    let t: Vec<&str> = t.iter().map(String::as_str).collect();
    let out = pin_fixture(rel, &helm("**/podinfo-chart/values.yaml", None), &t);
    assert_eq!(
        out.pinned[0].after,
        format!("ghcr.io/stefanprodan/podinfo:6.14.1@{D1}")
    );
    assert!(out.content.contains(&format!("  tag: 6.14.1@{D1}\n")));
    let old = fixture(rel);
    let with_key = manifest::pin(
        rel,
        &old,
        &helm("**/values.yaml", Some("image.digest")),
        &targets(&t),
    )
    .unwrap();
    assert_only_digests_changed(&old, &with_key);
    insta::assert_snapshot!("helm_podinfo_digest_key", with_key.content);
    // Without a rule the values file has no sites.
    let scan = manifest::scan(rel, &old, &PinRules::default()).unwrap();
    assert!(scan.sites.is_empty());
}

#[test]
fn argo_rollout_canary() {
    let out = pin_fixture(
        "real/argo-rollouts-rollout-canary.yaml",
        &PinRules::default(),
        &[&format!("docker.io/argoproj/rollouts-demo:blue@{D1}")],
    );
    assert_eq!(out.pinned[0].before, "argoproj/rollouts-demo:blue");
}

#[test]
fn podinfo_deployment_cronjob_and_chart() {
    let t = format!("ghcr.io/stefanprodan/podinfo:6.14.1@{D1}");
    pin_fixture(
        "real/podinfo-kustomize-deployment.yaml",
        &PinRules::default(),
        &[&t],
    );
    let out = pin_fixture(
        "real/podinfo-cronjob-backup-daily.yaml",
        &PinRules::default(),
        &[&t],
    );
    assert!(matches!(
        &manifest::scan("x.yaml", &fixture("real/podinfo-cronjob-backup-daily.yaml"), &PinRules::default())
            .unwrap()
            .sites[0]
            .kind,
        SiteKind::Container { workload, container, .. } if workload == "CronJob" && container == "backup"
    ));
    assert_eq!(out.pinned.len(), 1);
    let chart = pin_fixture(
        "real/podinfo-chart/values.yaml",
        &helm("real/podinfo-chart/values.yaml", None),
        &[&t],
    );
    assert_eq!(chart.pinned[0].line, 12);
    // Another tag of the same image is reported, not pinned.
    let old = fixture("real/podinfo-chart/values.yaml");
    let other = manifest::pin(
        "real/podinfo-chart/values.yaml",
        &old,
        &helm("real/podinfo-chart/values.yaml", None),
        &targets(&[&format!("ghcr.io/stefanprodan/podinfo:6.13.0@{D1}")]),
    )
    .unwrap();
    assert_eq!(other.content, old);
    assert_eq!(
        other.mismatched[0].found,
        "ghcr.io/stefanprodan/podinfo:6.14.1"
    );
}

#[test]
fn flux_setter_markers_are_kept_and_reported() {
    let out = pin_fixture(
        "real/flux-setters-marked-cronjob.yaml",
        &PinRules::default(),
        &[&format!("image:v1.0.0@{D1}")],
    );
    assert_eq!(out.pinned.len(), 2);
    assert_eq!(
        out.pinned[0].image_policy_marker.as_deref(),
        Some(r#"{"$imagepolicy": "automation-ns:policy"}"#)
    );
    // The caller can suspend the markers of pinned lines, and restore them.
    let lines: Vec<usize> = out.pinned.iter().map(|p| p.line).collect();
    let (suspended, changes) =
        manifest::suspend_image_policy_markers("m.yaml", &out.content, &lines).unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        suspended
            .matches("# revertbot-suspended {\"$imagepolicy\"")
            .count(),
        2
    );
    let (restored, _) = manifest::restore_image_policy_markers("m.yaml", &suspended).unwrap();
    assert_eq!(restored, out.content);
    let kust = pin_fixture(
        "real/flux-setters/Kustomization",
        &PinRules::default(),
        &[&format!("replaced:v1@{D1}")],
    );
    assert_eq!(kust.pinned[0].line, 11);
    assert!(matches!(
        &manifest::scan("real/flux-setters/Kustomization", &fixture("real/flux-setters/Kustomization"), &PinRules::default())
            .unwrap()
            .sites[0]
            .kind,
        SiteKind::KustomizeImage { name, tag_set: true } if name == "container"
    ));
}

#[test]
fn kserve_inference_services() {
    let out = pin_fixture(
        "real/kserve-collocation.yaml",
        &PinRules::default(),
        &[
            &format!("pytorch/torchserve:0.9.0-cpu@{D1}"),
            &format!("kserve/image-transformer:latest@{D2}"),
        ],
    );
    assert_eq!(out.pinned.len(), 2);
    pin_fixture(
        "real/kserve-driver-transformer.yaml",
        &PinRules::default(),
        &[&format!("kserve/driver-transformer:latest@{D2}")],
    );
}

#[test]
fn crlf_files_keep_their_line_endings() {
    let t = [
        format!("registry.example.com:443/team/web:2.1@{D1}"),
        format!("registry.example.com:443/team/worker:2.1@{D2}"),
    ];
    let t: Vec<&str> = t.iter().map(String::as_str).collect();
    let out = pin_fixture("edge/crlf.yaml", &PinRules::default(), &t);
    assert_eq!(
        out.content.matches("\r\n").count(),
        out.content.matches('\n').count()
    );
    let kust = pin_fixture("edge/crlf-kustomization.yaml", &PinRules::default(), &t);
    assert_eq!(
        kust.content.matches("\r\n").count(),
        kust.content.matches('\n').count()
    );
    assert!(!kust.content.ends_with('\n'), "still no newline at end");
    assert!(kust.content.ends_with(&format!("\r\n    digest: {D2}")));
    assert_eq!(
        kust.pinned.iter().map(|p| p.line).collect::<Vec<_>>(),
        vec![7, 11]
    );
}

#[test]
fn anchors_aliases_and_tags() {
    let out = pin_fixture(
        "edge/anchors.yaml",
        &PinRules::default(),
        &[
            &format!("ghcr.io/acme/platform/api:3.2.0@{D1}"),
            &format!("ghcr.io/acme/platform/sidecar:1.0@{D2}"),
        ],
    );
    // Two sites share the anchored scalar: one edit, reported per site.
    assert_eq!(out.content.matches(D1).count(), 1);
    assert_eq!(
        out.pinned
            .iter()
            .filter(|p| p.digest.as_str() == D1)
            .count(),
        2
    );
}

#[test]
fn quotes_flow_style_and_docker_hub_normalisation() {
    let out = pin_fixture(
        "edge/quotes-and-flow.yaml",
        &PinRules::default(),
        &[&format!("nginx:1.25@{D1}")],
    );
    let befores: Vec<&str> = out.pinned.iter().map(|p| p.before.as_str()).collect();
    assert_eq!(
        befores,
        vec![
            "nginx:1.25",
            "nginx:1.25",
            "docker.io/library/nginx:1.25",
            "index.docker.io/library/nginx:1.25@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ]
    );
    let found: Vec<&str> = out.mismatched.iter().map(|m| m.found.as_str()).collect();
    assert_eq!(found, vec!["nginx", "nginx:1.24"]);
    assert!(
        out.content
            .contains(&format!("{{name: single, image: 'nginx:1.25@{D1}'}}"))
    );
}

#[test]
fn multi_document_bom_unicode_and_no_final_newline() {
    let old = fixture("edge/multi-doc-unicode.yaml");
    let scan = manifest::scan("edge/multi-doc-unicode.yaml", &old, &PinRules::default()).unwrap();
    assert_eq!(
        scan.sites.len(),
        3,
        "Job, StatefulSet x2; ConfigMap data is not an image"
    );
    let out = pin_fixture(
        "edge/multi-doc-unicode.yaml",
        &PinRules::default(),
        &[&format!("localhost:5000/tools/migrate:v7@{D1}")],
    );
    assert_eq!(out.pinned.len(), 2);
    assert!(out.content.starts_with('\u{feff}'));
    assert!(out.pinned[0].image_policy_marker.is_some());
    assert_eq!(out.pinned[1].line, 35);
}

#[test]
fn list_items_and_same_image_twice() {
    let out = pin_fixture(
        "edge/list-and-daemonset.yaml",
        &PinRules::default(),
        &[&format!("quay.io/prometheus/node-exporter:v1.8.2@{D1}")],
    );
    assert_eq!(out.pinned.len(), 3);
}

#[test]
fn errors_name_file_line_and_what_to_do() {
    let flow = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - {name: web, newTag: \"2.1\"}\n";
    let err = manifest::pin(
        "apps/web/kustomization.yaml",
        flow,
        &PinRules::default(),
        &targets(&[&format!("web:2.1@{D1}")]),
    )
    .unwrap_err();
    assert!(matches!(err, ManifestError::CannotEdit { line: 4, .. }));
    insta::assert_snapshot!("error_flow_kustomize", err.to_string());
    let bad = fixture("edge/crlf.yaml").replace("team/worker", "Team/Worker");
    let err = manifest::scan("edge/crlf.yaml", &bad, &PinRules::default()).unwrap_err();
    insta::assert_snapshot!("error_bad_reference", err.to_string());
}

#[test]
fn helm_templates_are_skipped_not_errors() {
    let tpl = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n";
    let scan = manifest::scan(
        "charts/app/templates/deployment.yaml",
        tpl,
        &PinRules::default(),
    )
    .unwrap();
    assert!(scan.skipped.is_some());
    // Outside `templates/` the file parses; the template value is listed.
    let scan = manifest::scan("deploy.yaml", tpl, &PinRules::default()).unwrap();
    assert!(scan.sites.is_empty());
    assert_eq!(scan.templated.len(), 1);
    let unparsable = "image: {{ .Values.image }}\nfoo: [\n";
    let out = manifest::pin(
        "t.yaml",
        unparsable,
        &PinRules::default(),
        &targets(&[&format!("a:1@{D1}")]),
    )
    .unwrap();
    assert_eq!(out.content, unparsable);
}
