//! Credentials for the infra remote, network timeouts, and keeping secrets
//! out of every message.

use std::sync::Once;

use git2::{Cred, CredentialType, RemoteCallbacks};
use secrecy::{ExposeSecret, SecretString};

/// How libgit2 may authenticate. The token is only ever handed to libgit2;
/// it never reaches a log line, error or report.
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<SecretString>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// libgit2 calls the credentials callback again after each refusal; stop
/// after this many so a wrong token fails fast instead of looping.
const MAX_CREDENTIAL_ATTEMPTS: u32 = 3;

impl Credentials {
    /// From the environment: `GITHUB_TOKEN` (as GitHub Actions provides it)
    /// for HTTPS, the SSH agent for SSH remotes.
    pub fn from_env() -> Self {
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| SecretString::from(t.trim().to_owned()));
        Self { token }
    }

    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: Some(SecretString::from(token.into())),
        }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Callbacks with a bounded credentials callback. `attempts` lets the
    /// caller tell "refused credentials" from other failures. `home` is the
    /// remote's configured URL: the token goes to its host only (see
    /// [`token_allowed`]).
    pub(crate) fn callbacks<'a>(
        &'a self,
        attempts: &'a std::cell::Cell<u32>,
        home: Option<String>,
    ) -> RemoteCallbacks<'a> {
        // A remote URL from git config may carry a password of its own.
        if let Some(home) = &home {
            crate::redact::register_url_userinfo(home);
        }
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |url, username, allowed| {
            let n = attempts.get() + 1;
            attempts.set(n);
            if n > MAX_CREDENTIAL_ATTEMPTS {
                return Err(git2::Error::from_str("credentials refused"));
            }
            // The agent first: an SSH server that also offers `password`
            // (OpenSSH's stock config) makes libgit2 allow both, and the
            // token is for HTTPS, which never allows SSH_KEY.
            if allowed.contains(CredentialType::SSH_KEY) {
                return Cred::ssh_key_from_agent(username.unwrap_or("git"));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(token) = &self.token {
                    token_allowed(url, home.as_deref())
                        .map_err(|why| git2::Error::from_str(&why))?;
                    return Cred::userpass_plaintext("x-access-token", token.expose_secret());
                }
                return Err(git2::Error::from_str(
                    "the remote asked for credentials and GITHUB_TOKEN is not set",
                ));
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(username.unwrap_or("git"));
            }
            Cred::default()
        });
        callbacks
    }
}

/// Connect and I/O timeouts for every libgit2 transport, so an unreachable
/// remote fails in seconds instead of hanging a scheduled run.
pub(crate) fn init_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these set process-global libgit2 options. `Once` makes the
        // call happen exactly once, before this process starts any git
        // network operation (every InfraRepo is opened through here first).
        #[allow(unsafe_code)]
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(10_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
        }
        // Like the git CLI, trust objects already in the repository instead
        // of re-hashing every one read: the culprit walk reads the big
        // `apps/` tree of every commit, and hashing was 30% of a plan.
        // Objects received from the network are still verified by the pack
        // indexer.
        git2::opts::strict_hash_verification(false);
    });
}

/// Whether `GITHUB_TOKEN` may answer a credentials request for `url`
/// (what libgit2 is talking to, after any redirect): only over https or
/// plain http to loopback, and only to the host and port of `home` (the
/// configured remote URL). The refusal says why, for the error.
pub(crate) fn token_allowed(url: &str, home: Option<&str>) -> Result<(), String> {
    let target = url::Url::parse(url).map_err(|e| {
        format!(
            "refusing to send GITHUB_TOKEN to `{}`: not a URL ({e})",
            redact_url(url)
        )
    })?;
    // A remote name resolves to a URL in the caller; an unparsable one
    // (scp-like SSH) never asks for a password.
    let home = home.and_then(|h| url::Url::parse(h).ok());
    crate::redact::credential_transport("GITHUB_TOKEN", &target, home.as_ref())
        .map_err(|e| e.to_string())
}

/// A URL with any userinfo (`https://user:token@host`) removed, for messages.
pub fn redact_url(url: &str) -> String {
    crate::redact::url_str(url)
}

/// Replaces every occurrence of the token in a message from libgit2 or a
/// server, in case one echoed it back.
pub(crate) fn scrub(message: &str, credentials: &Credentials) -> String {
    let mut out = message.to_owned();
    if let Some(token) = &credentials.token {
        let secret = token.expose_secret();
        if !secret.is_empty() {
            out = out.replace(secret, "[redacted]");
        }
    }
    // Also any URL with userinfo, and every other secret in play.
    let out = out.split(' ').map(redact_url).collect::<Vec<_>>().join(" ");
    crate::redact::scrub(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            redact_url("https://x-access-token:ghs_abc@github.com/acme/infra.git"),
            "https://[redacted]@github.com/acme/infra.git"
        );
        assert_eq!(
            redact_url("https://github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }

    #[test]
    fn the_token_goes_over_https_or_loopback_and_only_to_the_remote_host() {
        let home = Some("https://github.com/acme/infra.git");
        assert_eq!(
            token_allowed("https://github.com/acme/infra.git/info/refs", home),
            Ok(())
        );
        assert_eq!(
            token_allowed(
                "http://127.0.0.1:4567/infra.git",
                Some("http://127.0.0.1:4567/infra.git")
            ),
            Ok(())
        );
        assert_eq!(
            token_allowed("http://example.com/infra.git", Some("http://example.com/infra.git")),
            Err("refusing to send GITHUB_TOKEN over plain http to example.com — use an https:// address (plain http is allowed only to loopback)".to_owned())
        );
        let redirected = token_allowed("https://elsewhere.example/infra.git", home).unwrap_err();
        assert!(
            redirected.contains("elsewhere.example") && redirected.contains("github.com"),
            "{redirected}"
        );
        assert!(token_allowed("not a url", home).is_err());
    }

    #[test]
    fn tokens_are_scrubbed_and_never_debug_printed() {
        let c = Credentials::with_token("s3cr3t-token");
        assert_eq!(scrub("bad s3cr3t-token here", &c), "bad [redacted] here");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
