//! The OCI distribution API, as far as revertbot needs it: which digest does
//! a tag point at right now ([`Registry::resolve`]), and does a tag exist
//! ([`Registry::tag_exists`]).
//!
//! A tag is resolved with `HEAD /v2/<name>/manifests/<tag>`, accepting OCI
//! indexes, Docker manifest lists, OCI manifests and Docker v2 manifests (in
//! that order), so a multi-arch tag resolves to its index digest, the one a
//! kubelet pulls. The answer is the `Docker-Content-Digest` header, or, when
//! a registry leaves it out, the sha256 of the manifest bytes from a `GET`.
//!
//! Authentication follows the registry's challenge: a Bearer challenge sends
//! us to its token service (anonymously, or with Basic credentials from
//! docker's `config.json` and credential helpers), and the token is cached
//! per scope until shortly before it expires; a Basic challenge gets the
//! credentials directly. Registries that challenged once are authenticated
//! up front on later calls.
//!
//! Every call has a timeout; connection failures, 5xx and 429 are retried a
//! bounded number of times with exponential backoff. Plain HTTP is used only
//! for loopback registries and those listed in
//! [`RegistryConfig::plain_http`].
//!
//! Built on reqwest rather than oci-client: oci-client learns the challenge
//! from `GET /v2/` instead of the request that was refused, ignores the
//! scope the registry asks for, silently drops to anonymous on a challenge it
//! cannot parse, and has no retry policy; revertbot needs each of those
//! cases to be a distinct, named error. oci-client's `Reference` is the
//! yardstick the endpoint tests compare our name mapping with.

mod auth;
mod challenge;
mod endpoint;
mod error;
mod http;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::domain::image::{Digest, ImageRef, ImageRefError};

pub use auth::CredentialSource;
pub use error::{Missing, RegistryError};

use auth::AuthState;
use endpoint::Endpoint;

/// The manifest media types we accept, most preferred first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Limit for one HTTP call, body included.
    pub timeout: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Attempts per call on connection failures, 5xx and 429 (at least 1).
    pub attempts: u32,
    /// First backoff delay; doubles per retry up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Registries (`host` or `host:port`) reached over plain HTTP. Loopback
    /// registries (`localhost`, `127.0.0.1`, `[::1]`) always are.
    pub plain_http: Vec<String>,
    pub credentials: CredentialSource,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            attempts: 3,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            plain_http: Vec::new(),
            credentials: CredentialSource::Default,
        }
    }
}

/// A registry client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: RegistryConfig,
    state: Mutex<AuthState>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Names the registry and reference in errors.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub registry: String,
    pub reference: String,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("revertbot/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // A redirect to another host must not carry our Authorization
            // header; blob redirects are not needed for manifests.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RegistryError::Setup {
                reason: "building the HTTP client failed".to_owned(),
                source: Some(e),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                state: Mutex::new(AuthState::default()),
            }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// The digest `image` points at. A reference that carries a digest
    /// resolves to it without asking the registry (its tag is ignored, as a
    /// runtime ignores it).
    pub async fn resolve(&self, image: &ImageRef) -> Result<Digest, RegistryError> {
        if let Some(digest) = image.digest() {
            return Ok(digest.clone());
        }
        let tag = image.effective_tag().unwrap_or("latest");
        let (ep, ctx) = self.endpoint(image);
        let url = ep.manifest_url(tag);
        tracing::debug!(registry = %ctx.registry, reference = %ctx.reference, "resolving tag");
        let resp = self.request(&ctx, &ep, Method::HEAD, &url).await?;
        match resp.status() {
            StatusCode::OK => {}
            status => return Err(self.failure(&ctx, &ep, status).await),
        }
        if let Some(value) = resp.headers().get("docker-content-digest") {
            let text = value.to_str().unwrap_or_default();
            return text
                .parse::<Digest>()
                .map_err(|e| RegistryError::Malformed {
                    registry: ctx.registry.clone(),
                    reference: ctx.reference.clone(),
                    problem: format!("Docker-Content-Digest: {e}"),
                });
        }
        // No header: hash exactly the bytes the registry serves.
        let resp = self.request(&ctx, &ep, Method::GET, &url).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.failure(&ctx, &ep, resp.status()).await);
        }
        let body = http::body(&ctx, &self.inner.config, resp).await?;
        if body.is_empty() {
            return Err(ctx.malformed("the manifest is empty"));
        }
        sha256_digest(&body).map_err(|e| ctx.malformed(&e.to_string()))
    }

    /// Whether the tag (or, for a digest-only reference, the digest) exists.
    /// An unknown repository is `Ok(false)`.
    pub async fn tag_exists(&self, image: &ImageRef) -> Result<bool, RegistryError> {
        let reference = match (image.tag(), image.digest()) {
            (Some(tag), _) => tag.to_owned(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".to_owned(),
        };
        let (ep, ctx) = self.endpoint(image);
        let url = ep.manifest_url(&reference);
        let resp = self.request(&ctx, &ep, Method::HEAD, &url).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(self.failure(&ctx, &ep, status).await),
        }
    }

    fn endpoint(&self, image: &ImageRef) -> (Endpoint, Ctx) {
        let ep = Endpoint::of(image, &self.inner.config.plain_http);
        let ctx = Ctx {
            registry: ep.display.clone(),
            reference: image.original().to_owned(),
        };
        (ep, ctx)
    }

    /// The error for a non-200 manifest answer. On 404 the tag list tells
    /// a missing repository from a missing tag (distribution answers
    /// `MANIFEST_UNKNOWN` for both, and HEAD answers have no body).
    async fn failure(&self, ctx: &Ctx, ep: &Endpoint, status: StatusCode) -> RegistryError {
        match status {
            StatusCode::NOT_FOUND => {
                let url = format!("{}/v2/{}/tags/list?n=1", ep.base, ep.repository);
                let missing = match self.request(ctx, ep, Method::GET, &url).await {
                    Ok(resp) if resp.status() == StatusCode::OK => Missing::Manifest,
                    Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                        match http::body(ctx, &self.inner.config, resp).await {
                            Ok(body)
                                if http::error_codes(&body).iter().any(|c| c == "NAME_UNKNOWN") =>
                            {
                                Missing::Repository
                            }
                            _ => Missing::Unknown,
                        }
                    }
                    _ => Missing::Unknown,
                };
                RegistryError::NotFound {
                    registry: ctx.registry.clone(),
                    reference: ctx.reference.clone(),
                    repository: ep.repository.clone(),
                    missing,
                }
            }
            StatusCode::FORBIDDEN => ctx.unauthorized(
                "HTTP 403 (the credentials do not allow pulling this repository)",
                &self.login_hint(ep),
            ),
            other => ctx.malformed(&format!("unexpected HTTP status {other} for the manifest")),
        }
    }
}

impl Ctx {
    pub fn malformed(&self, problem: &str) -> RegistryError {
        RegistryError::Malformed {
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            problem: problem.to_owned(),
        }
    }

    pub fn unauthorized(&self, reason: &str, hint: &str) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            reason: reason.to_owned(),
            hint: hint.to_owned(),
        }
    }
}

/// `sha256:<hex>` of `bytes`: the digest of exactly these bytes, as the
/// registry computes it for a manifest or blob.
pub fn sha256_digest(bytes: &[u8]) -> Result<Digest, ImageRefError> {
    // SHA-256 from the aws-lc-rs provider rustls already links (the TLS 1.3
    // suite's hash is SHA-256 by definition); `sha2` would do the same.
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let hex = suite
        .tls13()
        .map(|s| to_hex(s.common.hash_provider.hash(bytes).as_ref()))
        .unwrap_or_default();
    format!("sha256:{hex}").parse()
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            super::sha256_digest(b"").unwrap().as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_digest(b"abc").unwrap().as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
