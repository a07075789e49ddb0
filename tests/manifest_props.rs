//! Property tests: pinning a generated manifest changes only the image
//! values, pins exactly the recorded images, and is idempotent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use proptest::prelude::*;
use revertbot::domain::ImageRef;
use revertbot::manifest::{self, PinRules, SiteKind};

#[derive(Debug, Clone)]
struct Container {
    image: String,
    style: u8,
    comment: Option<String>,
    image_first: bool,
    recorded: bool,
}

fn image() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            "ghcr.io/",
            "localhost:5000/",
            "docker.io/",
            "index.docker.io/library/",
            "registry.example.com:443/",
        ]),
        prop::collection::vec(
            prop::sample::select(vec!["app", "team", "web-ui", "a_b", "x.y"]),
            1..3,
        ),
        prop::option::of(prop::sample::select(vec![
            "1.0",
            "v2",
            "latest",
            "1.25-alpine",
        ])),
    )
        .prop_map(|(registry, path, tag)| {
            let mut s = format!("{registry}{}", path.join("/"));
            if let Some(t) = tag {
                s = format!("{s}:{t}");
            }
            s
        })
}

fn container() -> impl Strategy<Value = Container> {
    (
        image(),
        0u8..3,
        prop::option::of(prop::sample::select(vec![
            "# plain comment",
            "# ünïcödé — ✓",
            "# {\"$imagepolicy\": \"flux-system:app\"}",
            "#",
        ])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(image, style, comment, image_first, recorded)| Container {
            image,
            style,
            comment: comment.map(str::to_owned),
            image_first,
            recorded,
        })
}

fn render(c: &Container) -> String {
    match c.style {
        0 => c.image.clone(),
        1 => format!("'{}'", c.image),
        _ => format!("\"{}\"", c.image),
    }
}

fn manifest(containers: &[Container], eol: &str, final_newline: bool) -> String {
    let mut s = format!(
        "# generated{eol}apiVersion: apps/v1{eol}kind: Deployment{eol}metadata:{eol}  name: gen{eol}spec:{eol}  template:{eol}    spec:{eol}      containers:{eol}"
    );
    for (i, c) in containers.iter().enumerate() {
        let comment = c
            .comment
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let image = format!("image: {}{comment}", render(c));
        let name = format!("name: c{i}");
        let (first, second) = if c.image_first {
            (image, name)
        } else {
            (name, image)
        };
        s.push_str(&format!("        - {first}{eol}          {second}{eol}"));
    }
    if !final_newline {
        s.truncate(s.len() - eol.len());
    }
    s
}

/// One digest per (normalised name, effective tag), so records never
/// conflict.
fn digest_for(key: &str) -> String {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    format!("sha256:{}", format!("{:016x}", h.finish()).repeat(4))
}

fn key(r: &ImageRef) -> String {
    format!(
        "{}:{}",
        r.normalized_name(),
        r.effective_tag().unwrap_or("")
    )
}

proptest! {
    #[test]
    fn pinning_changes_only_image_values(
        containers in prop::collection::vec(container(), 1..6),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let old = manifest(&containers, eol, final_newline);
        let mut recorded: HashMap<String, ImageRef> = HashMap::new();
        for c in containers.iter().filter(|c| c.recorded) {
            let r: ImageRef = c.image.parse().unwrap();
            let k = key(&r);
            let target = format!("{}:{}@{}", r.name(), r.effective_tag().unwrap_or("latest"), digest_for(&k));
            recorded.insert(k, target.parse().unwrap());
        }
        let targets: Vec<ImageRef> = recorded.values().cloned().collect();
        let out = manifest::pin("gen.yaml", &old, &PinRules::default(), &targets).unwrap();

        // Removing the digests gives back the original, byte for byte.
        let mut stripped = out.content.clone();
        for t in &targets {
            stripped = stripped.replace(&format!("@{}", t.digest().unwrap()), "");
        }
        prop_assert_eq!(&stripped, &old);

        // Exactly the recorded images carry their digest now.
        let scan = manifest::scan("gen.yaml", &out.content, &PinRules::default()).unwrap();
        prop_assert_eq!(scan.sites.len(), containers.len());
        let mut expected_pins = 0;
        for site in &scan.sites {
            let SiteKind::Container { container, .. } = &site.kind else { unreachable!() };
            let i: usize = container[1..].parse().unwrap();
            let original: ImageRef = containers[i].image.parse().unwrap();
            match recorded.get(&key(&original)) {
                Some(t) => {
                    expected_pins += 1;
                    prop_assert_eq!(site.reference.digest(), t.digest());
                    prop_assert_eq!(site.reference.to_string(), original.pinned(t.digest().unwrap()));
                }
                None => prop_assert_eq!(site.reference.digest(), None),
            }
        }
        prop_assert_eq!(out.pinned.len(), expected_pins);
        // Same name, other tag: reported once per recorded tag of that name.
        let expected_mismatches: usize = containers
            .iter()
            .map(|c| c.image.parse::<ImageRef>().unwrap())
            .filter(|r| !recorded.contains_key(&key(r)))
            .map(|r| targets.iter().filter(|t| t.same_name(&r)).count())
            .sum();
        prop_assert_eq!(out.mismatched.len(), expected_mismatches);

        // Pinning again is a no-op.
        let again = manifest::pin("gen.yaml", &out.content, &PinRules::default(), &targets).unwrap();
        prop_assert_eq!(again.content, out.content);
        prop_assert!(again.pinned.is_empty());
    }

    #[test]
    fn kustomize_pinning_adds_or_replaces_only_digests(
        entries in prop::collection::vec(
            (image(), any::<bool>(), any::<bool>(), prop::option::of("[0-9a-f]{64}"), any::<bool>()),
            1..5,
        ),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut src = format!("apiVersion: kustomize.config.k8s.io/v1beta1{eol}kind: Kustomization{eol}images:{eol}");
        let mut targets = Vec::new();
        for (i, (image, quoted, comment, digest, recorded)) in entries.iter().enumerate() {
            let r: ImageRef = image.parse().unwrap();
            // Unique names keep the records unambiguous.
            let new_name = format!("{}-{i}", r.name());
            let tag = r.effective_tag().unwrap_or("latest");
            let q = if *quoted { "\"" } else { "'" };
            let c = if *comment { " # note" } else { "" };
            src.push_str(&format!("  - name: n{i}{eol}    newName: {new_name}{eol}    newTag: {q}{tag}{q}{c}{eol}"));
            if let Some(d) = digest {
                src.push_str(&format!("    digest: sha256:{d}{eol}"));
            }
            if *recorded {
                targets.push(format!("{new_name}:{tag}@{}", digest_for(&new_name)).parse::<ImageRef>().unwrap());
            }
        }
        let out = manifest::pin("kustomization.yaml", &src, &PinRules::default(), &targets).unwrap();
        prop_assert_eq!(out.pinned.len() + out.unchanged.len(), targets.len());
        // Drop inserted digest lines, then blank out every digest: the rest
        // is the original.
        let blank = |s: &str| {
            s.split_inclusive('\n')
                .map(|l| match l.find("sha256:") {
                    Some(i) => format!("{}<d>{}", &l[..i], &l[i + 71..]),
                    None => l.to_owned(),
                })
                .collect::<String>()
        };
        let new_lines: Vec<String> = blank(&out.content)
            .split_inclusive('\n')
            .map(str::to_owned)
            .collect();
        let old_blank = blank(&src);
        let old_lines: Vec<&str> = old_blank.split_inclusive('\n').collect();
        let mut j = 0;
        for line in &new_lines {
            if j < old_lines.len() && old_lines[j] == line {
                j += 1;
            } else {
                prop_assert_eq!(line.trim(), "digest: <d>");
                prop_assert!(line.ends_with(eol));
            }
        }
        prop_assert_eq!(j, old_lines.len());
        let scan = manifest::scan("kustomization.yaml", &out.content, &PinRules::default()).unwrap();
        for t in &targets {
            let site = scan.sites.iter().find(|s| s.reference.same_name(t)).unwrap();
            prop_assert_eq!(site.reference.digest(), t.digest());
        }
        let again = manifest::pin("kustomization.yaml", &out.content, &PinRules::default(), &targets).unwrap();
        prop_assert_eq!(again.content, out.content);
    }
}
