//! Credentials (docker's `config.json`, credential helpers) and the token
//! service of the distribution token spec, with a per-scope token cache.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::{Duration, Instant};

/// Where credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CredentialSource {
    /// Never send credentials.
    Anonymous,
    /// docker's `config.json` (and the credential helpers it names) in this
    /// directory, or, when `None`, in `$DOCKER_CONFIG` or `~/.docker` — the
    /// same lookup as the docker CLI.
    DockerConfig(Option<PathBuf>),
    #[default]
    /// Same as `DockerConfig(None)`.
    Default,
}

/// One registry's credential. Debug output never shows the secret.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth2 refresh token (`docker login` against some registries,
    /// credential helpers answering username `<token>`).
    IdentityToken(SecretString),
}

impl Credential {
    pub fn describe(&self) -> String {
        match self {
            Credential::Basic { username, .. } => format!("user `{username}`"),
            Credential::IdentityToken(_) => "an identity token".to_owned(),
        }
    }
}

/// The result of a lookup: a credential, or none, and what went wrong
/// trying (a broken helper, an unreadable file), to hint at later.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lookup {
    pub credential: Option<Credential>,
    pub problem: Option<String>,
}

/// Looks `key` (`host[:port]`, or Docker Hub's `https://index.docker.io/v1/`)
/// up. Blocking: helpers are processes. Never returns a secret in `problem`.
pub(crate) fn lookup(source: &CredentialSource, key: &str) -> Lookup {
    let dir = match source {
        CredentialSource::Anonymous => return Lookup::default(),
        CredentialSource::DockerConfig(Some(dir)) => Some(dir.clone()),
        CredentialSource::DockerConfig(None) | CredentialSource::Default => default_dir(),
    };
    let Some(dir) = dir else {
        return Lookup::default();
    };
    lookup_in(&dir.join("config.json"), key)
}

fn default_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
}

fn lookup_in(path: &Path, key: &str) -> Lookup {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::default(),
        Err(e) => {
            return Lookup {
                credential: None,
                problem: Some(format!("cannot read {}: {e}", path.display())),
            };
        }
    };
    match docker_credential::get_credential_from_reader(BufReader::new(file), key) {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            // A registry echoing our Basic header must not print it.
            crate::redact::register_basic(&username, &password);
            Lookup {
                credential: Some(Credential::Basic {
                    username,
                    password: SecretString::from(password),
                }),
                problem: None,
            }
        }
        Ok(DockerCredential::IdentityToken(token)) => {
            crate::redact::register(&token);
            Lookup {
                credential: Some(Credential::IdentityToken(SecretString::from(token))),
                problem: None,
            }
        }
        Err(CredentialRetrievalError::NoCredentialConfigured) => Lookup::default(),
        Err(e) => Lookup {
            credential: None,
            problem: Some(describe_lookup_error(&e, path)),
        },
    }
}

/// The crate's own Display would print a helper's stdout, which could hold
/// a secret: name the failure without it.
fn describe_lookup_error(e: &CredentialRetrievalError, path: &Path) -> String {
    let file = path.display();
    match e {
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            format!("credential helper `{helper}` (named in {file}) failed")
        }
        CredentialRetrievalError::HelperCommunicationError => {
            format!("the credential helper named in {file} could not be run — is it on PATH?")
        }
        CredentialRetrievalError::MalformedHelperResponse => {
            format!("the credential helper named in {file} answered something unreadable")
        }
        CredentialRetrievalError::CredentialDecodingError => {
            format!("an `auth` entry in {file} is not base64 of `user:password`")
        }
        CredentialRetrievalError::CredentialMismatchError => {
            format!("an entry in {file} has `auth` disagreeing with `username`/`password`")
        }
        CredentialRetrievalError::ConfigReadError => format!("{file} is not valid JSON"),
        CredentialRetrievalError::ConfigNotFound
        | CredentialRetrievalError::NoCredentialConfigured => format!("no credentials in {file}"),
    }
}

/// What the token service answers. Both names occur in the wild.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The spec's default lifetime when `expires_in` is absent.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

impl TokenResponse {
    /// The token and when to stop using it (a tenth of its life early, so
    /// a token does not expire in flight).
    pub fn into_token(self, now: Instant) -> Result<CachedToken, String> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
            .ok_or("the token service answered without `token` or `access_token`")?;
        let lifetime = match self.expires_in {
            Some(0) | None => DEFAULT_TOKEN_LIFETIME,
            Some(s) => s,
        };
        let usable = Duration::from_secs(lifetime) - Duration::from_secs(lifetime) / 10;
        Ok(CachedToken {
            token: SecretString::from(token),
            expires_at: now + usable,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub token: SecretString,
    pub expires_at: Instant,
}

/// Tokens are valid for one token service, service name and scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub realm: String,
    pub service: String,
    pub scope: String,
}

/// What we learned about a registry's auth, so the next call can
/// authenticate up front instead of collecting a 401 first.
#[derive(Debug, Clone)]
pub(crate) enum Hint {
    Bearer {
        realm: url::Url,
        service: Option<String>,
    },
    Basic,
}

#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// By registry display name.
    pub hints: HashMap<String, Hint>,
    /// By (registry, repository): the scope its token service asked for.
    pub scopes: HashMap<(String, String), String>,
    pub tokens: HashMap<TokenKey, CachedToken>,
    /// By credential key.
    pub credentials: HashMap<String, Lookup>,
}

impl AuthState {
    pub fn token(&self, key: &TokenKey, now: Instant) -> Option<SecretString> {
        self.tokens
            .get(key)
            .filter(|t| t.expires_at > now)
            .map(|t| t.token.clone())
    }
}

/// What goes into the `Authorization` header.
#[derive(Debug, Clone)]
pub(crate) enum AuthHeader {
    Bearer(SecretString),
    Basic {
        username: String,
        password: SecretString,
    },
}

impl AuthHeader {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            AuthHeader::Bearer(t) => req.bearer_auth(t.expose_secret()),
            AuthHeader::Basic { username, password } => {
                req.basic_auth(username, Some(password.expose_secret()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn token_response_forms() {
        let now = Instant::now();
        let spec: TokenResponse = serde_json::from_str(include_str!(
            "../../tests/fixtures/registry/token-response.json"
        ))
        .unwrap();
        let t = spec.into_token(now).unwrap();
        assert!(t.token.expose_secret().starts_with("eyJ0eXAi"));
        assert_eq!(t.expires_at - now, Duration::from_secs(3240));

        let oauth: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        let t = oauth.into_token(now).unwrap();
        assert_eq!(t.token.expose_secret(), "a");
        assert_eq!(t.expires_at - now, Duration::from_secs(54));

        let empty: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(empty.into_token(now).is_err());
    }

    #[test]
    fn cached_tokens_expire_per_scope() {
        let now = Instant::now();
        let key = |scope: &str| TokenKey {
            realm: "https://auth.example.com/token".to_owned(),
            service: "registry.example.com".to_owned(),
            scope: scope.to_owned(),
        };
        let mut state = AuthState::default();
        let token: TokenResponse =
            serde_json::from_str(r#"{"token":"t1","expires_in":100}"#).unwrap();
        state
            .tokens
            .insert(key("repository:a:pull"), token.into_token(now).unwrap());
        let t = state.token(&key("repository:a:pull"), now).unwrap();
        assert_eq!(t.expose_secret(), "t1");
        assert!(state.token(&key("repository:b:pull"), now).is_none());
        // Used until 90 % of its life, then fetched again.
        let at = |s| now + Duration::from_secs(s);
        assert!(state.token(&key("repository:a:pull"), at(89)).is_some());
        assert!(state.token(&key("repository:a:pull"), at(90)).is_none());
    }

    #[test]
    fn docker_config_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // "bot:s3cret"
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"Ym90OnMzY3JldA=="},"https://index.docker.io/v1/":{"identitytoken":"refresh-me"}}}"#,
        )
        .unwrap();
        let source = CredentialSource::DockerConfig(Some(dir.path().to_owned()));
        let found = lookup(&source, "127.0.0.1:5000");
        let Some(Credential::Basic { username, password }) = found.credential else {
            panic!("expected Basic credentials");
        };
        assert_eq!(username, "bot");
        assert_eq!(password.expose_secret(), "s3cret");
        assert!(matches!(
            lookup(&source, "https://index.docker.io/v1/").credential,
            Some(Credential::IdentityToken(_))
        ));
        let none = lookup(&source, "ghcr.io");
        assert!(none.credential.is_none() && none.problem.is_none());
        let debug = format!("{:?}", lookup(&source, "127.0.0.1:5000"));
        assert!(!debug.contains("s3cret"), "{debug}");

        std::fs::write(&path, "{not json").unwrap();
        let broken = lookup(&source, "127.0.0.1:5000");
        assert!(broken.problem.unwrap().contains("not valid JSON"));

        let missing = CredentialSource::DockerConfig(Some(dir.path().join("nope")));
        let l = lookup(&missing, "127.0.0.1:5000");
        assert!(l.credential.is_none() && l.problem.is_none());
    }
}
