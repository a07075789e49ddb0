use super::*;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn targets(list: &[&str]) -> Vec<ImageRef> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn pin_ok(path: &str, src: &str, list: &[&str]) -> PinOutcome {
    pin(path, src, &PinRules::default(), &targets(list)).unwrap()
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image} # keep\n"
    )
}

#[test]
fn pins_a_deployment_image_in_its_quote_style() {
    for (written, pinned) in [
        ("nginx:1.25".to_owned(), format!("nginx:1.25@{A}")),
        ("'nginx:1.25'".to_owned(), format!("'nginx:1.25@{A}'")),
        ("\"nginx:1.25\"".to_owned(), format!("\"nginx:1.25@{A}\"")),
    ] {
        let src = deployment(&written);
        let out = pin_ok(
            "app/deploy.yaml",
            &src,
            &[&format!("docker.io/library/nginx:1.25@{A}")],
        );
        assert_eq!(out.content, deployment(&pinned));
        assert_eq!(out.pinned.len(), 1);
        assert_eq!(out.pinned[0].line, 10);
        assert_eq!(out.pinned[0].before, "nginx:1.25");
        assert_eq!(out.pinned[0].after, format!("nginx:1.25@{A}"));
        // Idempotent.
        let again = pin_ok(
            "app/deploy.yaml",
            &out.content,
            &[&format!("nginx:1.25@{A}")],
        );
        assert_eq!(again.content, out.content);
        assert!(again.pinned.is_empty());
        assert_eq!(again.unchanged.len(), 1);
    }
}

#[test]
fn other_tag_is_a_mismatch_and_other_names_are_ignored() {
    let src = deployment("nginx:1.24");
    let out = pin_ok(
        "d.yaml",
        &src,
        &[&format!("nginx:1.25@{A}"), &format!("redis:7@{B}")],
    );
    assert_eq!(out.content, src);
    assert_eq!(
        out.mismatched,
        vec![Mismatch {
            line: 10,
            found: "nginx:1.24".into(),
            recorded: format!("nginx:1.25@{A}"),
        }]
    );
}

#[test]
fn implicit_latest_matches_latest_and_digest_is_replaced() {
    let out = pin_ok(
        "d.yaml",
        &deployment("nginx"),
        &[&format!("docker.io/library/nginx:latest@{A}")],
    );
    assert_eq!(out.content, deployment(&format!("nginx@{A}")));
    let out = pin_ok(
        "d.yaml",
        &deployment(&format!("nginx:1.25@{A}")),
        &[&format!("nginx:1.25@{B}")],
    );
    assert_eq!(out.content, deployment(&format!("nginx:1.25@{B}")));
    // A digest-only site matches by name.
    let out = pin_ok(
        "d.yaml",
        &deployment(&format!("nginx@{A}")),
        &[&format!("nginx:1.25@{B}")],
    );
    assert_eq!(out.content, deployment(&format!("nginx@{B}")));
}

#[test]
fn conflicting_records_are_an_error() {
    let err = pin(
        "d.yaml",
        &deployment("nginx:1"),
        &PinRules::default(),
        &targets(&[&format!("nginx:1@{A}"), &format!("docker.io/nginx:1@{B}")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("d.yaml:10:18: `nginx:1` matches two"),
        "{err}"
    );
    let err = pin(
        "d.yaml",
        &deployment("nginx:1"),
        &PinRules::default(),
        &targets(&["nginx:1"]),
    )
    .unwrap_err();
    assert!(
        matches!(err, ManifestError::TargetWithoutDigest { .. }),
        "{err}"
    );
}

#[test]
fn bad_reference_names_file_line_and_column() {
    let err = scan("d.yaml", &deployment("Nginx:1"), &PinRules::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "d.yaml:10:18: `Nginx:1` is not a valid image reference: repository path component `Nginx` has upper-case letters — repository names are lower case (`nginx`) — fix the image reference (or quote a template expression) and retry"
    );
}

#[test]
fn templates_and_non_yaml_are_skipped() {
    let tpl = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: {{ .Values.image }}\n";
    let s = scan("chart/templates/d.yaml", tpl, &PinRules::default()).unwrap();
    assert!(s.skipped.unwrap().contains("template"));
    let out = pin_ok("chart/templates/d.yaml", tpl, &[&format!("nginx:1@{A}")]);
    assert_eq!(out.content, tpl);
    let s = scan("a.yaml", "a: [1, 2\n", &PinRules::default()).unwrap();
    assert!(s.skipped.unwrap().starts_with("not valid YAML"));
    let s = scan("README.md", "# hi", &PinRules::default()).unwrap();
    assert!(s.skipped.is_some());
    // Substitution variables are listed, not parsed.
    let s = scan(
        "d.yaml",
        &deployment("ghcr.io/x/app:${TAG}"),
        &PinRules::default(),
    )
    .unwrap();
    assert!(s.sites.is_empty());
    assert_eq!(s.templated[0].text, "ghcr.io/x/app:${TAG}");
}

#[test]
fn kustomize_digest_is_set_or_inserted() {
    let src = "images:\n- name: nginx\n  newTag: \"1.25\" # pinned by hand\n  # trailing comment\n- name: redis\n  newName: ghcr.io/acme/redis\n  newTag: '7'\n  digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n";
    let out = pin_ok(
        "base/kustomization.yaml",
        src,
        &[
            &format!("nginx:1.25@{A}"),
            &format!("ghcr.io/acme/redis:7@{B}"),
        ],
    );
    let expected = src
        .replace(
            "  newTag: \"1.25\" # pinned by hand\n",
            &format!("  newTag: \"1.25\" # pinned by hand\n  digest: {A}\n"),
        )
        .replace(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            B,
        );
    assert_eq!(out.content, expected);
    assert_eq!(out.pinned.len(), 2);
    assert_eq!(out.pinned[0].line, 4);
    assert_eq!(out.pinned[1].line, 9);
    assert_eq!(
        out.pinned[1].before,
        "ghcr.io/acme/redis:7@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    let again = pin_ok(
        "base/kustomization.yaml",
        &out.content,
        &[&format!("nginx:1.25@{A}")],
    );
    assert_eq!(again.content, out.content);
}

#[test]
fn kustomize_flow_entry_without_digest_is_refused() {
    let src = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: nginx, newTag: \"1.25\"}]\n";
    let err = pin(
        "k.yaml",
        src,
        &PinRules::default(),
        &targets(&[&format!("nginx:1.25@{A}")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("k.yaml:3:10: cannot add `digest:` to a flow-style mapping"),
        "{err}"
    );
}

#[test]
fn kustomize_entry_without_new_tag_matches_by_name() {
    let src = "images:\n- name: app\n  newName: ghcr.io/acme/app\n";
    let out = pin_ok(
        "kustomization.yaml",
        src,
        &[&format!("ghcr.io/acme/app:2.0@{A}")],
    );
    assert_eq!(out.content, format!("{src}  digest: {A}\n"));
    // Two recorded tags of the same image: the tag is unknown here.
    let out = pin_ok(
        "kustomization.yaml",
        src,
        &[
            &format!("ghcr.io/acme/app:2.0@{A}"),
            &format!("ghcr.io/acme/app:3.0@{B}"),
        ],
    );
    assert_eq!(out.content, src);
    assert_eq!(out.mismatched.len(), 2);
    assert_eq!(
        out.mismatched[0].found,
        "ghcr.io/acme/app (tag set elsewhere)"
    );
}

#[test]
fn flux_kustomization_spec_images() {
    let src = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\nspec:\n  images:\n    - name: podinfo\n      newTag: 6.5.0\n";
    let out = pin_ok("clusters/apps.yaml", src, &[&format!("podinfo:6.5.0@{A}")]);
    assert_eq!(out.content, format!("{src}      digest: {A}\n"));
}

fn helm_rules(digest: Option<&str>) -> PinRules {
    PinRules {
        helm: vec![
            HelmImageRule::new(
                "charts/*/values*.yaml",
                "image.repository",
                "image.tag",
                digest.map(str::to_owned),
            )
            .unwrap(),
        ],
    }
}

#[test]
fn helm_values_tag_or_digest_key() {
    let src = "replicaCount: 1\nimage:\n  repository: ghcr.io/acme/api\n  tag: \"1.4.2\"\n  pullPolicy: IfNotPresent\nservice:\n  port: 80\n";
    let t = targets(&[&format!("ghcr.io/acme/api:1.4.2@{A}")]);
    let out = pin("charts/api/values.yaml", src, &helm_rules(None), &t).unwrap();
    assert_eq!(
        out.content,
        src.replace("\"1.4.2\"", &format!("\"1.4.2@{A}\""))
    );
    let out = pin(
        "charts/api/values.yaml",
        src,
        &helm_rules(Some("image.digest")),
        &t,
    )
    .unwrap();
    assert_eq!(
        out.content,
        src.replace("IfNotPresent\n", &format!("IfNotPresent\n  digest: {A}\n"))
    );
    assert_eq!(out.pinned[0].line, 6);
    // Not matched by the glob: nothing.
    let out = pin("other/values.yaml", src, &helm_rules(None), &t).unwrap();
    assert_eq!(out.content, src);
    // An existing empty digest value is filled in, in its style.
    let with_empty = src.replace("IfNotPresent\n", "IfNotPresent\n  digest: \"\"\n");
    let out = pin(
        "charts/api/values.yaml",
        &with_empty,
        &helm_rules(Some("image.digest")),
        &t,
    )
    .unwrap();
    assert_eq!(out.content, with_empty.replace("\"\"", &format!("\"{A}\"")));
    let with_null = src.replace("IfNotPresent\n", "IfNotPresent\n  digest:\n");
    let out = pin(
        "charts/api/values.yaml",
        &with_null,
        &helm_rules(Some("image.digest")),
        &t,
    )
    .unwrap();
    assert_eq!(
        out.content,
        with_null.replace("digest:\n", &format!("digest: {A}\n"))
    );
}

#[test]
fn helm_without_tag_cannot_take_a_tag_digest() {
    let src = "image:\n  repository: ghcr.io/acme/api\n";
    let t = targets(&[&format!("ghcr.io/acme/api:1.4.2@{A}")]);
    let err = pin("charts/api/values.yaml", src, &helm_rules(None), &t).unwrap_err();
    assert!(err.to_string().contains("has no tag"), "{err}");
    assert!(HelmImageRule::new("a/[", "r", "t", None).is_err());
}

#[test]
fn kserve_cronjob_rollout_and_lists() {
    let src = format!(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: m\nspec:\n  predictor:\n    model:\n      modelFormat: {{name: sklearn}}\n      image: kserve/sklearnserver:v0.14.0\n    workerSpec:\n      containers:\n        - name: w\n          image: kserve/worker:1\n  transformer:\n    containers:\n      - name: t\n        image: acme/transformer:2\n  explainer:\n    art:\n      image: kserve/art-explainer:0.9\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers: [{{name: i, image: busybox}}]\n          containers:\n            - name: c\n              image: acme/job:1\n---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  template:\n    spec:\n      containers:\n        - name: r\n          image: argoproj/rollouts-demo:blue\n---\napiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    spec:\n      ephemeralContainers:\n        - name: debug\n          image: busybox:1.36@{A}\n"
    );
    let s = scan("all.yaml", &src, &PinRules::default()).unwrap();
    let refs: Vec<String> = s.sites.iter().map(|x| x.reference.to_string()).collect();
    assert_eq!(
        refs,
        [
            "kserve/sklearnserver:v0.14.0",
            "kserve/worker:1",
            "acme/transformer:2",
            "kserve/art-explainer:0.9",
            "busybox",
            "acme/job:1",
            "argoproj/rollouts-demo:blue",
            &format!("busybox:1.36@{A}"),
        ]
        .map(str::to_owned)
    );
    assert!(matches!(
        &s.sites.iter().find(|x| x.reference.to_string() == "kserve/sklearnserver:v0.14.0").unwrap().kind,
        SiteKind::Container { container, workload, .. } if container == "predictor.model" && workload == "InferenceService"
    ));
    let out = pin_ok(
        "all.yaml",
        &src,
        &[
            &format!("busybox:latest@{B}"),
            &format!("docker.io/kserve/sklearnserver:v0.14.0@{B}"),
        ],
    );
    assert!(out.content.contains(&format!("image: busybox@{B}}}]")));
    assert!(
        out.content
            .contains(&format!("image: kserve/sklearnserver:v0.14.0@{B}\n"))
    );
    assert_eq!(out.pinned.len(), 2);
    assert_eq!(out.mismatched.len(), 1, "busybox:1.36 is another tag");
}

#[test]
fn anchors_are_edited_once() {
    let src = "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: &img nginx:1.25\n    - name: b\n      image: *img\n";
    let s = scan("p.yaml", src, &PinRules::default()).unwrap();
    assert_eq!(s.sites.len(), 2);
    let out = pin_ok("p.yaml", src, &[&format!("nginx:1.25@{A}")]);
    assert_eq!(
        out.content,
        src.replace("&img nginx:1.25", &format!("&img nginx:1.25@{A}"))
    );
    assert_eq!(out.pinned.len(), 2);
}

#[test]
fn block_scalar_images_are_refused() {
    let src =
        "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: >-\n        nginx:1.25\n";
    let err = pin(
        "p.yaml",
        src,
        &PinRules::default(),
        &targets(&[&format!("nginx:1.25@{A}")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("block scalar"), "{err}");
}

#[test]
fn flux_markers_are_reported() {
    let src = "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: ghcr.io/x/app:1.0 # {\"$imagepolicy\": \"flux-system:app\"}\n";
    let out = pin_ok("p.yaml", src, &[&format!("ghcr.io/x/app:1.0@{A}")]);
    assert_eq!(
        out.pinned[0].image_policy_marker.as_deref(),
        Some("{\"$imagepolicy\": \"flux-system:app\"}")
    );
    assert!(out.content.ends_with(&format!(
        "app:1.0@{A} # {{\"$imagepolicy\": \"flux-system:app\"}}\n"
    )));
}

#[test]
fn kustomization_without_api_version() {
    let src = "kind: Kustomization\nimages:\n  - name: app\n    newTag: v1\n";
    let s = scan("overlays/prod/kustomize.yaml", src, &PinRules::default()).unwrap();
    assert_eq!(s.sites.len(), 1);
    let src = "resources: [a.yaml]\nimages:\n  - name: app\n    newTag: v1\n";
    assert_eq!(
        scan("x/kustomization.yml", src, &PinRules::default())
            .unwrap()
            .sites
            .len(),
        1
    );
    assert!(
        scan("x/other.yml", src, &PinRules::default())
            .unwrap()
            .sites
            .is_empty()
    );
}

#[test]
fn an_alias_bomb_is_an_error_naming_the_file_not_a_skip() {
    let mut src = format!(
        "{}x: &l0 [{}]\n",
        deployment("nginx:1.25"),
        ["lol"; 9].join(", ")
    );
    for i in 1..7 {
        src.push_str(&format!(
            "l{i}: &l{i} [{}]\n",
            vec![format!("*l{}", i - 1); 9].join(", ")
        ));
    }
    for err in [
        scan("app/bomb.yaml", &src, &PinRules::default()).unwrap_err(),
        pin(
            "app/bomb.yaml",
            &src,
            &PinRules::default(),
            &targets(&[&format!("nginx:1.25@{A}")]),
        )
        .unwrap_err(),
    ] {
        assert!(matches!(err, ManifestError::Refused { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("app/bomb.yaml:"), "{text}");
        assert!(
            text.contains("alias expansion exceeds 250000 nodes — YAML alias bombs are refused"),
            "{text}"
        );
    }
    // Plain invalid YAML is still skipped with the reason.
    let skipped = scan("app/bad.yaml", "a: [1,\n", &PinRules::default()).unwrap();
    assert!(skipped.skipped.unwrap().starts_with("not valid YAML"));
}

#[test]
fn an_oversized_manifest_is_refused_with_its_size() {
    let big = format!(
        "{}# {}\n",
        deployment("nginx:1.25"),
        "x".repeat(MAX_FILE_BYTES as usize)
    );
    let err = scan("app/big.yaml", &big, &PinRules::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "app/big.yaml: {} bytes, more than 8 MiB, the limit for a manifest — split the file",
            big.len()
        )
    );
    let at_limit = format!("{}#", deployment("nginx:1.25"));
    assert!(check_size("app/ok.yaml", MAX_FILE_BYTES).is_ok());
    assert!(scan("app/ok.yaml", &at_limit, &PinRules::default()).is_ok());
}

#[test]
fn pins_argocd_image_updater_write_back_entries() {
    let src = "kustomize:\n  images:\n  - ghcr.io/acme/guestbook:v1\n  - 'nginx=registry.example.com/nginx:1.25'\nhelm:\n  parameters:\n  - name: image.tag\n    value: v1\n";
    let out = pin_ok(
        "apps/guestbook/.argocd-source-guestbook.yaml",
        src,
        &[
            &format!("ghcr.io/acme/guestbook:v1@{A}"),
            &format!("registry.example.com/nginx:1.25@{B}"),
        ],
    );
    assert_eq!(
        out.content,
        format!(
            "kustomize:\n  images:\n  - ghcr.io/acme/guestbook:v1@{A}\n  - 'nginx=registry.example.com/nginx:1.25@{B}'\nhelm:\n  parameters:\n  - name: image.tag\n    value: v1\n"
        )
    );
    assert_eq!(out.pinned.len(), 2);
    // The same content under another name is not a write-back file.
    let plain = pin_ok(
        "apps/guestbook/values.yaml",
        src,
        &[&format!("ghcr.io/acme/guestbook:v1@{A}")],
    );
    assert!(plain.pinned.is_empty());
}

#[test]
fn scans_write_back_entries_as_kustomize_images() {
    let src = "kustomize:\n  images:\n  - old=ghcr.io/acme/guestbook:v2\n";
    let scan = scan(".argocd-source-guestbook.yml", src, &PinRules::default()).unwrap();
    assert_eq!(scan.sites.len(), 1);
    assert_eq!(
        scan.sites[0].reference.original(),
        "ghcr.io/acme/guestbook:v2"
    );
    assert!(matches!(
        &scan.sites[0].kind,
        SiteKind::KustomizeImage { name, tag_set: true } if name == "old"
    ));
}

/// What argocd-image-updater writes for a Helm app (`pkg/argocd/update.go`,
/// helm write-back: one name and one tag parameter per image, as strings).
const HELM_WRITE_BACK: &str = "helm:\n  parameters:\n  - name: replicaCount\n    value: \"2\"\n  - name: image.name\n    value: ghcr.io/acme/guestbook\n    forcestring: true\n  - name: image.tag\n    value: v1\n    forcestring: true\n";

#[test]
fn pins_image_updater_helm_parameters_through_the_tag() {
    let path = "apps/guestbook/.argocd-source-guestbook.yaml";
    let scanned = scan(path, HELM_WRITE_BACK, &PinRules::default()).unwrap();
    assert_eq!(scanned.sites.len(), 1, "{:?}", scanned.sites);
    assert_eq!(
        scanned.sites[0].reference.original(),
        "ghcr.io/acme/guestbook:v1"
    );
    assert_eq!((scanned.sites[0].line, scanned.sites[0].column), (6, 12));
    assert!(matches!(
        &scanned.sites[0].kind,
        SiteKind::HelmParameter { name_param, tag_param, tag_set: true }
            if name_param == "image.name" && tag_param == "image.tag"
    ));
    let out = pin_ok(
        path,
        HELM_WRITE_BACK,
        &[&format!("ghcr.io/acme/guestbook:v1@{A}")],
    );
    assert_eq!(
        out.content,
        HELM_WRITE_BACK.replace("value: v1\n", &format!("value: v1@{A}\n"))
    );
    assert_eq!(out.pinned.len(), 1);
    // Pinning again changes nothing; another tag is a mismatch, not a pin.
    let again = pin_ok(
        path,
        &out.content,
        &[&format!("ghcr.io/acme/guestbook:v1@{A}")],
    );
    assert_eq!(again.content, out.content);
    let other = pin_ok(
        path,
        HELM_WRITE_BACK,
        &[&format!("ghcr.io/acme/guestbook:v0@{A}")],
    );
    assert_eq!(other.content, HELM_WRITE_BACK);
    assert_eq!(other.mismatched.len(), 1);
}

#[test]
fn helm_parameters_named_by_the_apps_helm_rule_are_images_too() {
    let src = "helm:\n  parameters:\n  - name: image.repository\n    value: ghcr.io/acme/api\n  - name: image.tag\n    value: 1.4.2\n  - name: redis.port\n    value: \"6379\"\n";
    let path = "charts/api/.argocd-source-api.yaml";
    // Without the rule, `image.repository` is not a name Image Updater uses.
    assert!(
        scan(path, src, &PinRules::default())
            .unwrap()
            .sites
            .is_empty()
    );
    let t = targets(&[&format!("ghcr.io/acme/api:1.4.2@{A}")]);
    let out = pin(path, src, &helm_rules(None), &t).unwrap();
    assert_eq!(
        out.content,
        src.replace("value: 1.4.2", &format!("value: 1.4.2@{A}"))
    );
}

#[test]
fn a_helm_name_parameter_without_its_tag_cannot_be_pinned() {
    let src = "helm:\n  parameters:\n  - name: image.name\n    value: ghcr.io/acme/guestbook\n";
    let path = ".argocd-source-guestbook.yaml";
    let scanned = scan(path, src, &PinRules::default()).unwrap();
    assert_eq!(scanned.sites.len(), 1);
    let err = pin(
        path,
        src,
        &PinRules::default(),
        &targets(&[&format!("ghcr.io/acme/guestbook@{A}")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`image.name` is set without `image.tag`"),
        "{err}"
    );
    assert!(err.contains("add the `image.tag` parameter"), "{err}");
}
