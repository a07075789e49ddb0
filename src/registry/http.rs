//! One authenticated registry call: retries with backoff on transient
//! failures, the challenge → token → retry dance, and the token service.

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::auth::{self, AuthHeader, Credential, Hint, Lookup, TokenKey, TokenResponse};
use super::challenge::{AuthChallenge, BearerChallenge, auth_challenge};
use super::endpoint::{Endpoint, is_loopback, plain_http_allowed};
use super::{Ctx, MANIFEST_ACCEPT, Registry, RegistryConfig, RegistryError};

/// Largest manifest or token response we read.
const MAX_BODY: usize = 4 * 1024 * 1024;

impl Registry {
    /// Sends `method url` for a manifest, authenticated as the registry
    /// demands. Returns any answer other than 401 (and other than
    /// 5xx/429, which are retried and end as `Unreachable`).
    pub(super) async fn request(
        &self,
        ctx: &Ctx,
        ep: &Endpoint,
        method: Method,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let mut header = self.upfront_auth(ctx, ep).await?;
        let mut refreshed = false;
        loop {
            if header.is_some() {
                insecure_check(ctx, "registry credentials", url)?;
            }
            let resp = self
                .send(ctx, || {
                    let req = self
                        .inner
                        .http
                        .request(method.clone(), url)
                        .header(ACCEPT, MANIFEST_ACCEPT);
                    match &header {
                        Some(h) => h.apply(req),
                        None => req,
                    }
                })
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if refreshed {
                let why = match &header {
                    Some(AuthHeader::Bearer(_)) => {
                        "the registry refused the token its token service issued"
                    }
                    Some(AuthHeader::Basic { .. }) => "the registry refused the credentials",
                    None => "the registry asks for credentials",
                };
                return Err(ctx.unauthorized(why, &self.login_hint(ep)));
            }
            refreshed = true;
            let Some(value) = resp.headers().get(WWW_AUTHENTICATE) else {
                return Err(ctx.unauthorized(
                    "HTTP 401 without a WWW-Authenticate challenge",
                    &self.login_hint(ep),
                ));
            };
            let value = value
                .to_str()
                .map_err(|_| ctx.malformed("the WWW-Authenticate header is not ASCII"))?;
            let challenge = auth_challenge(value)
                .map_err(|p| ctx.malformed(&format!("bad WWW-Authenticate challenge: {p}")))?;
            header = Some(match challenge {
                AuthChallenge::Bearer(bearer) => {
                    let scope = bearer.scope.clone().unwrap_or_else(|| ep.pull_scope());
                    self.remember(ep, &bearer, &scope);
                    // A cached token the registry just refused (revoked,
                    // clock skew) must not be offered again.
                    self.lock().tokens.remove(&token_key(&bearer, &scope));
                    AuthHeader::Bearer(self.token(ctx, ep, &bearer, &scope).await?)
                }
                AuthChallenge::Basic => {
                    let lookup = self.credentials(ep).await;
                    let Some(Credential::Basic { username, password }) = lookup.credential else {
                        return Err(ctx.unauthorized(
                            "the registry asks for a user name and password",
                            &self.login_hint(ep),
                        ));
                    };
                    self.lock().hints.insert(ep.display.clone(), Hint::Basic);
                    AuthHeader::Basic { username, password }
                }
            });
        }
    }

    /// What to send before being asked: a cached (or freshly fetched)
    /// token, or Basic credentials, for registries that challenged before.
    async fn upfront_auth(
        &self,
        ctx: &Ctx,
        ep: &Endpoint,
    ) -> Result<Option<AuthHeader>, RegistryError> {
        let hint = self.lock().hints.get(&ep.display).cloned();
        match hint {
            None => Ok(None),
            Some(Hint::Basic) => Ok(match self.credentials(ep).await.credential {
                Some(Credential::Basic { username, password }) => {
                    Some(AuthHeader::Basic { username, password })
                }
                _ => None,
            }),
            Some(Hint::Bearer { realm, service }) => {
                let scope = self
                    .lock()
                    .scopes
                    .get(&(ep.display.clone(), ep.repository.clone()))
                    .cloned()
                    .unwrap_or_else(|| ep.pull_scope());
                let bearer = BearerChallenge {
                    realm,
                    service,
                    scope: Some(scope.clone()),
                };
                Ok(Some(AuthHeader::Bearer(
                    self.token(ctx, ep, &bearer, &scope).await?,
                )))
            }
        }
    }

    fn remember(&self, ep: &Endpoint, bearer: &BearerChallenge, scope: &str) {
        let mut state = self.lock();
        state.hints.insert(
            ep.display.clone(),
            Hint::Bearer {
                realm: bearer.realm.clone(),
                service: bearer.service.clone(),
            },
        );
        state.scopes.insert(
            (ep.display.clone(), ep.repository.clone()),
            scope.to_owned(),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, auth::AuthState> {
        // A panic while holding the lock leaves only a cache behind: use it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A token for `scope`, from the cache or the token service.
    async fn token(
        &self,
        ctx: &Ctx,
        ep: &Endpoint,
        bearer: &BearerChallenge,
        scope: &str,
    ) -> Result<secrecy::SecretString, RegistryError> {
        let key = token_key(bearer, scope);
        if let Some(token) = self.lock().token(&key, Instant::now()) {
            return Ok(token);
        }
        let realm = &bearer.realm;
        let realm_host = match realm.port() {
            Some(port) => format!("{}:{port}", realm.host_str().unwrap_or_default()),
            None => realm.host_str().unwrap_or_default().to_owned(),
        };
        let plain_ok = is_loopback(&realm_host)
            || plain_http_allowed(&realm_host, &self.inner.config.plain_http);
        if realm.scheme() == "http" && !plain_ok {
            return Err(ctx.malformed(&format!(
                "the token service {realm_host} is plain HTTP; refusing to send credentials there (list it in plain_http if that is intended)"
            )));
        }
        let lookup = self.credentials(ep).await;
        if lookup.credential.is_some() {
            insecure_check(ctx, "registry credentials", realm.as_str())?;
        }
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = &bearer.service {
                q.append_pair("service", service);
            }
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
            if let Some(Credential::Basic { username, .. }) = &lookup.credential {
                q.append_pair("account", username);
            }
        }
        let resp = self
            .send(ctx, || match &lookup.credential {
                None => self.inner.http.get(url.clone()),
                Some(Credential::Basic { username, password }) => self
                    .inner
                    .http
                    .get(url.clone())
                    .basic_auth(username, Some(password.expose_secret())),
                Some(Credential::IdentityToken(refresh)) => {
                    let form = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "refresh_token")
                        .append_pair("client_id", "revertbot")
                        .append_pair("service", bearer.service.as_deref().unwrap_or_default())
                        .append_pair("scope", scope)
                        .append_pair("refresh_token", refresh.expose_secret())
                        .finish();
                    self.inner
                        .http
                        .post(realm.clone())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(form)
                }
            })
            .await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let reason = match &lookup.credential {
                    Some(c) => format!(
                        "the token service refused {} (HTTP {})",
                        c.describe(),
                        resp.status().as_u16()
                    ),
                    None => format!(
                        "the token service refused anonymous access (HTTP {})",
                        resp.status().as_u16()
                    ),
                };
                return Err(ctx.unauthorized(&reason, &self.login_hint_with(ep, &lookup)));
            }
            other => {
                return Err(ctx.malformed(&format!("the token service answered HTTP {other}")));
            }
        }
        let body = body(ctx, &self.inner.config, resp).await?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ctx.malformed(&format!("the token response is not JSON ({e})")))?;
        let cached = parsed
            .into_token(Instant::now())
            .map_err(|p| ctx.malformed(&p))?;
        let token = cached.token.clone();
        self.lock().tokens.insert(key, cached);
        Ok(token)
    }

    /// This registry's credentials, looked up once (helpers are processes).
    pub(super) async fn credentials(&self, ep: &Endpoint) -> Lookup {
        if let Some(found) = self.lock().credentials.get(&ep.credential_key) {
            return found.clone();
        }
        let source = self.inner.config.credentials.clone();
        let key = ep.credential_key.clone();
        let found = tokio::task::spawn_blocking(move || auth::lookup(&source, &key))
            .await
            .unwrap_or_else(|_| Lookup {
                credential: None,
                problem: Some("the credential lookup panicked".to_owned()),
            });
        if let Some(problem) = &found.problem {
            tracing::warn!(registry = %ep.display, %problem, "no usable registry credentials; trying anonymously");
        }
        self.lock()
            .credentials
            .insert(ep.credential_key.clone(), found.clone());
        found
    }

    pub(super) fn login_hint(&self, ep: &Endpoint) -> String {
        let lookup = self.lock().credentials.get(&ep.credential_key).cloned();
        self.login_hint_with(ep, &lookup.unwrap_or_default())
    }

    fn login_hint_with(&self, ep: &Endpoint, lookup: &Lookup) -> String {
        let login = match ep.display.as_str() {
            "docker.io" => "docker login".to_owned(),
            host => format!("docker login {host}"),
        };
        let place = match &self.inner.config.credentials {
            auth::CredentialSource::Anonymous => {
                return format!(
                    "revertbot is configured for anonymous access; enable docker credentials and run `{login}`"
                );
            }
            auth::CredentialSource::DockerConfig(Some(dir)) => {
                format!("{}/config.json", dir.display())
            }
            _ => "$DOCKER_CONFIG/config.json (default ~/.docker/config.json)".to_owned(),
        };
        match (&lookup.credential, &lookup.problem) {
            (_, Some(problem)) => format!("{problem}; fix it, or run `{login}`"),
            (None, None) => format!(
                "no credentials for {} in {place}: run `{login}` (or set DOCKER_CONFIG) with an account that can pull `{}`",
                ep.credential_key, ep.repository
            ),
            (Some(c), None) => format!(
                "the credentials in {place} ({}) cannot pull `{}`: run `{login}` again or grant pull access",
                c.describe(),
                ep.repository
            ),
        }
    }

    /// Sends with bounded retries on connection failures, 5xx and 429.
    pub(super) async fn send(
        &self,
        ctx: &Ctx,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let config = &self.inner.config;
        let mut delays = backoff(config).build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (reason, source) = match build().send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                        return Ok(resp);
                    }
                    (format!("HTTP {status}"), None)
                }
                Err(e) if e.is_connect() => ("connection failed".to_owned(), Some(e)),
                Err(e) if e.is_timeout() => {
                    return Err(RegistryError::Timeout {
                        registry: ctx.registry.clone(),
                        reference: ctx.reference.clone(),
                        timeout: config.timeout,
                    });
                }
                Err(e) => ("the request failed".to_owned(), Some(e)),
            };
            match delays.next() {
                Some(delay) if attempts < config.attempts.max(1) => {
                    tracing::debug!(registry = %ctx.registry, attempts, %reason, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    return Err(RegistryError::Unreachable {
                        registry: ctx.registry.clone(),
                        reference: ctx.reference.clone(),
                        attempts,
                        reason,
                        source,
                    });
                }
            }
        }
    }
}

/// Refuses to attach credentials to a plain-HTTP URL that is not loopback
/// (`plain_http` lets revertbot *read* such a registry, anonymously).
/// reqwest itself drops `Authorization` on redirects to another origin.
fn insecure_check(ctx: &Ctx, credential: &str, url: &str) -> Result<(), RegistryError> {
    let refusal = match url::Url::parse(url) {
        Ok(target) => crate::redact::credential_transport(credential, &target, None)
            .err()
            .map(|e| e.to_string()),
        Err(e) => Some(format!("refusing to send {credential} to a bad URL ({e})")),
    };
    match refusal {
        None => Ok(()),
        Some(reason) => Err(RegistryError::Insecure {
            registry: ctx.registry.clone(),
            reference: ctx.reference.clone(),
            reason,
        }),
    }
}

fn token_key(bearer: &BearerChallenge, scope: &str) -> TokenKey {
    TokenKey {
        realm: bearer.realm.to_string(),
        service: bearer.service.clone().unwrap_or_default(),
        scope: scope.to_owned(),
    }
}

fn backoff(config: &RegistryConfig) -> ExponentialBuilder {
    crate::retry::Policy {
        attempts: config.attempts,
        min_delay: config.min_backoff,
        max_delay: config.max_backoff,
    }
    .backoff()
}

/// Reads a body, bounded, mapping a timeout to `Timeout`.
pub(super) async fn body(
    ctx: &Ctx,
    config: &RegistryConfig,
    resp: Response,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ctx.malformed("the response is larger than 4 MiB"));
    }
    let bytes = resp.bytes().await.map_err(|e| {
        if e.is_timeout() {
            RegistryError::Timeout {
                registry: ctx.registry.clone(),
                reference: ctx.reference.clone(),
                timeout: config.timeout,
            }
        } else {
            RegistryError::Unreachable {
                registry: ctx.registry.clone(),
                reference: ctx.reference.clone(),
                attempts: 1,
                reason: "the connection broke while reading the answer".to_owned(),
                source: Some(e),
            }
        }
    })?;
    if bytes.len() > MAX_BODY {
        return Err(ctx.malformed("the response is larger than 4 MiB"));
    }
    Ok(bytes.to_vec())
}

/// The `errors[].code` values of a distribution error body.
pub(super) fn error_codes(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.into_iter().map(|e| e.code).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refused_over_plain_http_to_a_host_that_is_not_loopback() {
        let ctx = Ctx {
            registry: "registry.internal:5000".to_owned(),
            reference: "registry.internal:5000/app:1".to_owned(),
        };
        let check = |url: &str| insecure_check(&ctx, "registry credentials", url);
        assert!(check("https://registry.internal:5000/v2/app/manifests/1").is_ok());
        assert!(check("http://127.0.0.1:5000/v2/app/manifests/1").is_ok());
        let err = check("http://registry.internal:5000/v2/app/manifests/1").unwrap_err();
        assert!(matches!(err, RegistryError::Insecure { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "registry.internal:5000: refusing to send registry credentials over plain http to registry.internal:5000 — use an https:// address (plain http is allowed only to loopback) (for `registry.internal:5000/app:1`)"
        );
    }
}
