use proptest::prelude::*;

use super::*;

const D1: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
const D2: &str = "sha256:abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123";

fn r(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn d(s: &str) -> Digest {
    s.parse().unwrap()
}

#[test]
fn parts_keep_the_original_spelling() {
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, Option<&'a str>);
    let cases: &[Case] = &[
        ("nginx", None, "nginx", None),
        ("nginx:1.25", None, "nginx", Some("1.25")),
        ("user/app:v1", None, "user/app", Some("v1")),
        ("localhost:5000/app", Some("localhost:5000"), "app", None),
        ("localhost/app:1", Some("localhost"), "app", Some("1")),
        (
            "registry.example.com:443/team/app:2.0",
            Some("registry.example.com:443"),
            "team/app",
            Some("2.0"),
        ),
        (
            "ghcr.io/org/team/app",
            Some("ghcr.io"),
            "org/team/app",
            None,
        ),
        ("[::1]:5000/app:1", Some("[::1]:5000"), "app", Some("1")),
        (
            "a__b/c-d.e_f:T_1.x-y",
            None,
            "a__b/c-d.e_f",
            Some("T_1.x-y"),
        ),
        ("x---y", None, "x---y", None),
    ];
    for (s, registry, repo, tag) in cases {
        let image = r(s);
        assert_eq!(image.original(), *s);
        assert_eq!(image.to_string(), *s);
        assert_eq!(image.registry(), *registry, "{s}");
        assert_eq!(image.repository(), *repo, "{s}");
        assert_eq!(image.tag(), *tag, "{s}");
        assert_eq!(image.digest(), None);
    }
}

#[test]
fn tag_and_digest_together() {
    let image = r(&format!("nginx:1.25@{D1}"));
    assert_eq!(image.tag(), Some("1.25"));
    assert_eq!(image.digest(), Some(&d(D1)));
    assert_eq!(image.name(), "nginx");
    assert_eq!(image.effective_tag(), Some("1.25"));
    let only_digest = r(&format!("localhost:5000/app@{D1}"));
    assert_eq!(only_digest.tag(), None);
    assert_eq!(only_digest.effective_tag(), None);
    assert_eq!(only_digest.registry(), Some("localhost:5000"));
}

#[test]
fn normalisation_is_for_comparison() {
    for (s, norm) in [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.25", "docker.io/library/nginx"),
        ("library/nginx", "docker.io/library/nginx"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("docker.io/library/nginx:latest", "docker.io/library/nginx"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx"),
        ("index.docker.io/user/app", "docker.io/user/app"),
        ("user/app", "docker.io/user/app"),
        ("ghcr.io/org/app", "ghcr.io/org/app"),
        ("localhost:5000/app", "localhost:5000/app"),
    ] {
        assert_eq!(r(s).normalized_name(), norm, "{s}");
    }
    assert!(r("nginx").same_name(&r("docker.io/library/nginx:latest")));
    assert_eq!(r("nginx").effective_tag(), Some("latest"));
}

#[test]
fn same_name_and_tag_normalises_the_name_and_ignores_digests() {
    assert!(r("nginx").same_name_and_tag(&r("docker.io/library/nginx:latest")));
    assert!(r("nginx:1.25").same_name_and_tag(&r(&format!("nginx:1.25@{D1}"))));
    assert!(r(&format!("nginx:1.25@{D1}")).same_name_and_tag(&r(&format!("nginx:1.25@{D2}"))));
    assert!(!r("nginx:1.25").same_name_and_tag(&r("nginx:1.26")));
    assert!(!r("nginx:1.25").same_name_and_tag(&r("ghcr.io/x/nginx:1.25")));
    // A digest-only reference pulls no tag, unlike a bare name (`latest`).
    assert!(!r("nginx").same_name_and_tag(&r(&format!("nginx@{D1}"))));
}

#[test]
fn pinned_keeps_name_and_tag_as_written() {
    assert_eq!(r("nginx:1.25").pinned(&d(D1)), format!("nginx:1.25@{D1}"));
    assert_eq!(r("nginx").pinned(&d(D1)), format!("nginx@{D1}"));
    assert_eq!(
        r(&format!("localhost:5000/a/b:x@{D1}")).pinned(&d(D2)),
        format!("localhost:5000/a/b:x@{D2}")
    );
    let with = r("index.docker.io/user/app:3").with_digest(&d(D2));
    assert_eq!(with.original(), format!("index.docker.io/user/app:3@{D2}"));
    assert_eq!(with, r(&format!("index.docker.io/user/app:3@{D2}")));
}

#[test]
fn errors_say_what_and_how() {
    let cases = [
        ("", "empty"),
        ("Nginx:1", "lower case (`nginx`)"),
        ("ghcr.io/Org/app", "upper-case"),
        ("nginx:", "tag after `:` is empty"),
        ("nginx:-1", "must start with"),
        ("nginx:1+2", "has `+`"),
        ("nginx@sha256:abc", "64 hex digits"),
        ("nginx@md5:abc", "`md5` is not supported"),
        ("nginx@sha256", "no `algorithm:` prefix"),
        ("a//b", "empty component"),
        ("app/", "empty component"),
        ("-app", "start and end"),
        ("a..b", "has `..`"),
        ("a___b", "has `___`"),
        ("localhost:50a0/app", "port `50a0`"),
        ("reg_istry.io/app", "not a valid host name"),
        (" nginx", "remove whitespace"),
        ("'nginx:1'", "remove the quotes"),
    ];
    for (s, needle) in cases {
        let err = s.parse::<ImageRef>().unwrap_err().to_string();
        assert!(err.contains(needle), "{s:?}: {err}");
        if !s.is_empty() && !s.contains('@') {
            assert!(
                err.contains(&format!("`{s}`")),
                "names the reference: {err}"
            );
        }
    }
    let upper = format!("sha256:{}", "A".repeat(64));
    assert!(
        upper
            .parse::<Digest>()
            .unwrap_err()
            .to_string()
            .contains("lowercase")
    );
    let long_tag = format!("app:{}", "a".repeat(129));
    assert!(long_tag.parse::<ImageRef>().is_err());
    let long_name = "a".repeat(256);
    assert!(long_name.parse::<ImageRef>().is_err());
}

#[test]
fn digest_parts_and_sha512() {
    let d512 = format!("sha512:{}", "ab".repeat(64));
    let digest = d(&d512);
    assert_eq!(digest.algorithm(), "sha512");
    assert_eq!(digest.hex().len(), 128);
    assert!(
        format!("sha512:{}", "ab".repeat(32))
            .parse::<Digest>()
            .is_err()
    );
}

#[test]
fn serde_uses_the_original_string() {
    let image = r(&format!("localhost:5000/app:1@{D1}"));
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(json, format!("\"localhost:5000/app:1@{D1}\""));
    let back: ImageRef = serde_json::from_str(&json).unwrap();
    assert_eq!(back, image);
    assert!(serde_json::from_str::<ImageRef>("\"Bad\"").is_err());
    let digest: Digest = serde_json::from_str(&format!("\"{D2}\"")).unwrap();
    assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"{D2}\""));
    assert!(serde_json::from_str::<Digest>("\"sha256:xyz\"").is_err());
}

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
}

fn registry() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("docker.io".to_owned())),
        Just(Some("index.docker.io".to_owned())),
        Just(Some("localhost".to_owned())),
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.(io|com|example)(:[0-9]{1,5})?".prop_map(Some),
        "localhost:[0-9]{2,5}".prop_map(Some),
    ]
}

fn digest() -> impl Strategy<Value = Digest> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
    .prop_map(|s| s.parse().unwrap())
}

pub(crate) fn reference() -> impl Strategy<Value = String> {
    (
        registry(),
        proptest::collection::vec(component(), 1..4),
        "[a-z0-9]{1,6}((_|__|-{1,3})[a-z0-9]{1,6}){0,2}",
        proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        proptest::option::of(digest()),
    )
        .prop_map(|(registry, path, first, tag, digest)| {
            // Without a registry the first component must not look like one.
            let mut s = match registry {
                Some(r) => format!("{r}/{}", path.join("/")),
                None => std::iter::once(first)
                    .chain(path.into_iter().skip(1))
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(d.as_str());
            }
            s
        })
}

proptest! {
    #[test]
    fn parse_then_format_round_trips(s in reference()) {
        let image: ImageRef = s.parse().unwrap();
        prop_assert_eq!(image.to_string(), s.clone());
        let reparsed: ImageRef = image.to_string().parse().unwrap();
        prop_assert_eq!(&reparsed, &image);
        // The parts reassemble into the original.
        let mut again = image.name().to_owned();
        if let Some(t) = image.tag() { again = format!("{again}:{t}"); }
        if let Some(d) = image.digest() { again = format!("{again}@{d}"); }
        prop_assert_eq!(again, s);
    }

    #[test]
    fn pinning_is_idempotent(s in reference(), a in digest(), b in digest()) {
        let image: ImageRef = s.parse().unwrap();
        let once: ImageRef = image.pinned(&a).parse().unwrap();
        prop_assert_eq!(once.pinned(&a), once.to_string());
        prop_assert_eq!(once.digest(), Some(&a));
        prop_assert_eq!(once.tag(), image.tag());
        prop_assert_eq!(once.name(), image.name());
        // Re-pinning replaces, never appends.
        let twice: ImageRef = once.pinned(&b).parse().unwrap();
        prop_assert_eq!(twice.to_string(), image.pinned(&b));
    }

    #[test]
    fn normalisation_is_stable(s in reference(), a in digest()) {
        let image: ImageRef = s.parse().unwrap();
        let norm = image.normalized_name();
        let renorm: ImageRef = norm.parse().unwrap();
        prop_assert_eq!(renorm.normalized_name(), norm.clone());
        let pinned: ImageRef = image.pinned(&a).parse().unwrap();
        prop_assert_eq!(pinned.normalized_name(), norm);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<ImageRef>();
    }
}
