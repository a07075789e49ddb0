//! Keeping secrets off every output and every plain-HTTP wire.
//!
//! One process-wide list of the secret values in play (tokens from the
//! environment, registry passwords as they are looked up) and one
//! [`scrub`] that replaces each of them, and the encodings a server may echo
//! back (Basic-auth base64, JSON escapes), with `[redacted]`. Every output
//! goes through it: the log writer, the final `error:` line, stdout reports
//! and anything revertbot writes into git. Typed errors already avoid
//! secrets; this is the net under them, for text a server sent back.
//!
//! Also: userinfo removed from URLs in messages ([`url`], [`url_str`]), error
//! bodies capped to one short line ([`body`]), and the rule for when a
//! credential may be sent at all ([`credential_transport`]).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::RwLock;

use url::Url;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Environment variables whose whole value is a secret.
pub const SECRET_ENV: &[&str] = &[
    "GITHUB_TOKEN",
    "GITHUB_APP_PRIVATE_KEY",
    "ARGOCD_AUTH_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_WEBHOOK_URL",
];

/// Environment variables holding a URL whose userinfo is a secret.
pub const URL_ENV: &[&str] = &["ARGOCD_SERVER"];

/// Shorter values are not scrubbed: replacing every `abc` in a log would
/// wreck it and hide nothing worth hiding (no real token is that short).
const MIN_SECRET_LEN: usize = 6;

/// The longest server error text quoted into an error, in bytes.
pub const MAX_BODY_QUOTE: usize = 512;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value (and its encodings) for [`scrub`].
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![secret.to_owned()];
    // What a server echoing `Authorization: Basic …` back would show:
    // libgit2 sends the token as the password of `x-access-token`.
    for user in ["", "x-access-token:"] {
        forms.extend(base64_forms(format!("{user}{secret}").as_bytes()));
    }
    // JSON logs escape quotes and backslashes.
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_owned());
    }
    add(forms);
}

/// The padded encoding (a whole header value) and the unpadded one (the
/// same bytes inside a longer encoded text).
fn base64_forms(bytes: &[u8]) -> [String; 2] {
    let padded = base64(bytes);
    let bare = padded.trim_end_matches('=').to_owned();
    [padded, bare]
}

fn add(forms: impl IntoIterator<Item = String>) {
    let mut list = match SECRETS.write() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    for form in forms {
        if form.len() >= MIN_SECRET_LEN && !list.contains(&form) {
            list.push(form);
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers a Basic-auth pair: the password, and `user:password` encoded.
pub fn register_basic(username: &str, password: &str) {
    register(password);
    if password.trim().len() >= MIN_SECRET_LEN {
        add(base64_forms(format!("{username}:{password}").as_bytes()));
    }
}

/// Registers every secret the environment holds ([`SECRET_ENV`], the
/// userinfo of [`URL_ENV`] URLs), and the variables `extra` names.
pub fn register_env<'a>(extra: impl IntoIterator<Item = &'a str>) {
    for name in SECRET_ENV.iter().copied().chain(extra) {
        if let Ok(value) = std::env::var(name) {
            register(&value);
        }
    }
    for name in URL_ENV {
        if let Ok(value) = std::env::var(name) {
            register_url_userinfo(&value);
        }
    }
}

/// Registers the password (or a lone user, which is often a token) of a URL.
pub fn register_url_userinfo(raw: &str) {
    if let Ok(url) = Url::parse(raw.trim()) {
        if let Some(password) = url.password() {
            register(password);
            register(&percent_decode(password));
        } else if !url.username().is_empty() {
            register(url.username());
        }
    }
}

/// `text` with every registered secret replaced by `[redacted]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let list = match SECRETS.read() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    scrub_with(text, &list)
}

fn scrub_with<'t>(text: &'t str, secrets: &[String]) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// A URL for messages: userinfo replaced by `[redacted]`, so the reader
/// still sees that the URL carried credentials.
pub fn url(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.as_str().to_owned();
    }
    let mut shown = url.clone();
    // Only fails for URLs that cannot have userinfo, which then have none.
    let _ = shown.set_password(None);
    let _ = shown.set_username("REDACTED");
    // `[` and `]` would be percent-encoded in a username.
    shown
        .as_str()
        .replacen("REDACTED@", &format!("{REDACTED}@"), 1)
}

/// [`url`] for text that may or may not parse as a URL (`host:port`, a
/// remote name, an scp-like `git@host:path`): the part between `://` and
/// the first `@` of the authority is replaced.
pub fn url_str(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://{REDACTED}@{}", &raw[..scheme_end], &rest[at + 1..]),
        None => raw.to_owned(),
    }
}

/// Whether a URL string carries userinfo (`user:pass@`).
pub fn has_userinfo(raw: &str) -> bool {
    url_str(raw) != raw
}

/// A server's error body for quoting in an error: valid UTF-8, on one line,
/// at most [`MAX_BODY_QUOTE`] bytes, scrubbed.
pub fn body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let scrubbed = scrub(&one_line).into_owned();
    if scrubbed.len() <= MAX_BODY_QUOTE {
        return scrubbed;
    }
    let mut end = MAX_BODY_QUOTE;
    while !scrubbed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &scrubbed[..end])
}

/// Why a credential may not be sent to a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportRefusal {
    #[error(
        "refusing to send {credential} over plain http to {host} — use an https:// address (plain http is allowed only to loopback)"
    )]
    PlainHttp { credential: String, host: String },
    #[error(
        "refusing to send {credential} to {host}: the request went there from {home} (a redirect to another host) — point the remote at {host} directly if that is intended"
    )]
    OtherHost {
        credential: String,
        host: String,
        home: String,
    },
    #[error("refusing to send {credential} to {url}: only http:// and https:// may carry it")]
    Scheme { credential: String, url: String },
}

/// Whether `credential` (named in the refusal, e.g. `GITHUB_TOKEN`) may be
/// sent to `target`: only over https (or plain http to a loopback host), and
/// when `home` (the configured address) is given, only to home's host and
/// port. A redirect to another host never receives it.
pub fn credential_transport(
    credential: &str,
    target: &Url,
    home: Option<&Url>,
) -> Result<(), TransportRefusal> {
    let host = host_port(target);
    match target.scheme() {
        "https" => {}
        "http" if is_loopback(target) => {}
        "http" => {
            return Err(TransportRefusal::PlainHttp {
                credential: credential.to_owned(),
                host,
            });
        }
        _ => {
            return Err(TransportRefusal::Scheme {
                credential: credential.to_owned(),
                url: url(target),
            });
        }
    }
    if let Some(home) = home {
        let same = home.host_str().map(str::to_ascii_lowercase)
            == target.host_str().map(str::to_ascii_lowercase)
            && home.port_or_known_default() == target.port_or_known_default();
        if !same {
            return Err(TransportRefusal::OtherHost {
                credential: credential.to_owned(),
                host,
                home: host_port(home),
            });
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.0/8`, `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// Standard base64 with padding (what Basic auth uses).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn secrets_and_their_basic_auth_forms_are_scrubbed() {
        register("ghs_unit_test_token_1234");
        let basic = base64(b"x-access-token:ghs_unit_test_token_1234");
        let text = format!(
            "token ghs_unit_test_token_1234 and Authorization: Basic {basic} and raw {}",
            base64(b"ghs_unit_test_token_1234")
        );
        let out = scrub(&text);
        assert!(!out.contains("ghs_unit"), "{out}");
        assert!(!out.contains(basic.trim_end_matches('=')), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 3, "{out}");
    }

    #[test]
    fn basic_pairs_are_scrubbed() {
        register_basic("robot", "registry-pass-98765");
        let header = base64(b"robot:registry-pass-98765");
        let out = scrub(&format!("echo: Basic {header}")).into_owned();
        assert_eq!(out, format!("echo: Basic {REDACTED}"));
    }

    #[test]
    fn short_values_are_not_scrubbed() {
        register("abc");
        assert_eq!(scrub("abcdef abc"), "abcdef abc");
    }

    #[test]
    fn url_userinfo_is_hidden_but_visible_as_present() {
        assert_eq!(
            url(&u("http://user:pass@argocd.example.com/")),
            "http://[redacted]@argocd.example.com/"
        );
        assert_eq!(
            url(&u("https://argocd.example.com/x")),
            "https://argocd.example.com/x"
        );
        assert_eq!(
            url_str("https://x-access-token:ghs_abc@github.com/acme/infra.git"),
            "https://[redacted]@github.com/acme/infra.git"
        );
        assert_eq!(url_str("git@github.com:a/b.git"), "git@github.com:a/b.git");
        assert_eq!(url_str("origin"), "origin");
        assert_eq!(url_str("https://h/p?x=a@b"), "https://h/p?x=a@b");
        assert!(has_userinfo("http://tok@h/"));
        assert!(!has_userinfo("http://h/a@b"));
    }

    #[test]
    fn url_userinfo_is_registered() {
        register_url_userinfo("http://admin:p%40ss-word-42@argocd.example.com");
        assert_eq!(
            scrub("p@ss-word-42 p%40ss-word-42"),
            format!("{REDACTED} {REDACTED}")
        );
    }

    #[test]
    fn bodies_are_one_short_line() {
        let long = format!("first\nsecond\r\n{}", "é".repeat(600));
        let quoted = body(long.as_bytes());
        assert!(quoted.starts_with("first second é"));
        assert!(!quoted.contains('\n'));
        assert!(quoted.len() <= MAX_BODY_QUOTE + '…'.len_utf8());
        assert!(quoted.ends_with('…'));
    }

    #[test]
    fn credentials_travel_over_https_or_to_loopback_only() {
        let ok = |t: &str| credential_transport("GITHUB_TOKEN", &u(t), None);
        assert_eq!(ok("https://github.com/a/b"), Ok(()));
        assert_eq!(ok("http://127.0.0.1:8080/a"), Ok(()));
        assert_eq!(ok("http://127.0.0.2:8080/a"), Ok(()));
        assert_eq!(ok("http://localhost/a"), Ok(()));
        assert_eq!(ok("http://[::1]:9/a"), Ok(()));
        let refused = ok("http://example.com/a").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "refusing to send GITHUB_TOKEN over plain http to example.com — use an https:// address (plain http is allowed only to loopback)"
        );
        assert!(matches!(
            ok("http://10.0.0.1:80/a"),
            Err(TransportRefusal::PlainHttp { .. })
        ));
        assert!(matches!(
            ok("http://localhost.example.com/a"),
            Err(TransportRefusal::PlainHttp { .. })
        ));
        assert!(matches!(
            ok("ftp://example.com/a"),
            Err(TransportRefusal::Scheme { .. })
        ));
    }

    #[test]
    fn credentials_go_only_to_the_configured_host() {
        let home = u("https://github.com/acme/infra.git");
        let to = |t: &str| credential_transport("GITHUB_TOKEN", &u(t), Some(&home));
        assert_eq!(to("https://github.com/acme/infra.git/info/refs"), Ok(()));
        assert_eq!(to("https://GitHub.com:443/acme/infra.git"), Ok(()));
        let other = to("https://evil.example.com/x").unwrap_err();
        assert!(matches!(other, TransportRefusal::OtherHost { .. }));
        assert!(other.to_string().contains("evil.example.com"), "{other}");
        assert!(matches!(
            to("https://github.com:8443/x"),
            Err(TransportRefusal::OtherHost { .. })
        ));
        let loopback = u("http://127.0.0.1:4000/infra.git");
        assert_eq!(
            credential_transport("T", &u("http://127.0.0.1:4000/x"), Some(&loopback)),
            Ok(())
        );
        assert!(matches!(
            credential_transport("T", &u("http://127.0.0.1:4001/x"), Some(&loopback)),
            Err(TransportRefusal::OtherHost { .. })
        ));
    }
}
