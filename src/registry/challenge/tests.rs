#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// The challenge from the distribution token spec (token-auth-flow.http.txt).
const SPEC: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;

fn bearer(header: &str) -> BearerChallenge {
    match auth_challenge(header).unwrap() {
        AuthChallenge::Bearer(b) => b,
        AuthChallenge::Basic => panic!("expected Bearer"),
    }
}

#[test]
fn spec_challenge_keeps_the_comma_in_the_scope() {
    let b = bearer(SPEC);
    assert_eq!(b.realm.as_str(), "https://auth.docker.io/token");
    assert_eq!(b.service.as_deref(), Some("registry.docker.io"));
    assert_eq!(
        b.scope.as_deref(),
        Some("repository:samalba/my-app:pull,push")
    );
}

#[test]
fn ghcr_challenge() {
    let b = bearer(
        r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:stefanprodan/podinfo:pull""#,
    );
    assert_eq!(b.realm.host_str(), Some("ghcr.io"));
    assert_eq!(
        b.scope.as_deref(),
        Some("repository:stefanprodan/podinfo:pull")
    );
}

#[test]
fn scheme_and_names_are_case_insensitive_and_spacing_is_lenient() {
    let b = bearer(r#"BEARER  Realm = "http://127.0.0.1:1/token" ,  Service="svc""#);
    assert_eq!(b.realm.as_str(), "http://127.0.0.1:1/token");
    assert_eq!(b.service.as_deref(), Some("svc"));
    assert_eq!(b.scope, None);
}

#[test]
fn escapes_and_token_values() {
    let c = parse_challenges(r#"Bearer realm="https://a/t",service=plain,x="q\"uote""#).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].param("service"), Some("plain"));
    assert_eq!(c[0].param("x"), Some("q\"uote"));
}

#[test]
fn several_challenges_in_one_header_prefer_bearer() {
    let c = parse_challenges(
        r#"Basic realm="basic-realm", Bearer realm="https://a/t",scope="repository:x:pull,push""#,
    )
    .unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].scheme, "basic");
    assert_eq!(c[1].param("scope"), Some("repository:x:pull,push"));
    assert!(matches!(
        auth_challenge(r#"Basic realm="r", Bearer realm="https://a/t""#).unwrap(),
        AuthChallenge::Bearer(_)
    ));
}

#[test]
fn basic_alone() {
    assert_eq!(
        auth_challenge(r#"Basic realm="basic-realm""#).unwrap(),
        AuthChallenge::Basic
    );
}

#[test]
fn malformed_headers_are_errors() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        (r#"Bearer realm="https://a/t"#, "never closed"),
        (r#"Bearer service="s""#, "no realm"),
        (r#"Bearer realm="/token""#, "absolute URL"),
        (r#"Bearer realm="ftp://a/t""#, "http(s)"),
        (r#"Bearer realm="https://a/t" service="s""#, "expected `,`"),
        (r#"Bearer realm="https://a/t",realm="https://b/t""#, "twice"),
        (r#"Bearer realm="#, "no value"),
        (r#"Negotiate abc"#, "unsupported"),
        (r#"=realm"#, "scheme"),
        (r#"Bearer realm="x\"#, "escape"),
    ];
    for (header, needle) in cases {
        let err = auth_challenge(header).expect_err(header);
        assert!(
            err.contains(needle),
            "{header:?}: error {err:?} should mention {needle:?}"
        );
    }
}

/// Every `Www-Authenticate:` line (or commented `# Www-Authenticate:` line)
/// in the recorded HTTP exchanges parses as a Bearer challenge.
#[test]
fn recorded_challenges_parse() {
    let files = [
        include_str!("../../../tests/fixtures/registry/token-auth-flow.http.txt"),
        include_str!("../../../tests/fixtures/registry/manifest-head-and-ghcr.http.txt"),
    ];
    let mut seen = 0;
    for line in files.iter().flat_map(|f| f.lines()) {
        let line = line.trim_start_matches(['#', ' ']);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case("www-authenticate") {
            continue;
        }
        let b = bearer(value.trim());
        assert!(b.scope.as_deref().unwrap().starts_with("repository:"));
        assert!(b.service.is_some());
        seen += 1;
    }
    assert_eq!(seen, 3);
}
