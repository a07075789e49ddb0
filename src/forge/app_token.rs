//! GitHub App authentication: a JWT signed with the app's private key
//! (RS256) is exchanged for an installation token, refreshed before it
//! expires. Events caused by `GITHUB_TOKEN` start no workflows, so a revert
//! pull request opened with it never gets its required checks; one opened
//! with an App's installation token does.
//!
//! GitHub's rules (docs "Generating a JSON Web Token (JWT) for a GitHub
//! App", "Authenticating as a GitHub App installation"): `iat` 60 s in the
//! past against clock drift, `exp` at most 10 minutes later, `iss` the app
//! id; `POST /app/installations/{id}/access_tokens` answers 201 with
//! `token` and `expires_at` (one hour); the installation of a repository is
//! `GET /repos/{owner}/{repo}/installation`.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use secrecy::SecretString;
use serde::Deserialize;

use http::Method;

use super::{Endpoints, ForgeError, GitHub, decode};

/// The environment variables of an App's credentials.
pub const APP_ID_ENV: &str = "GITHUB_APP_ID";
pub const PRIVATE_KEY_ENV: &str = "GITHUB_APP_PRIVATE_KEY";
pub const INSTALLATION_ENV: &str = "GITHUB_APP_INSTALLATION_ID";

/// A token this close to expiry is replaced before the next call.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// An App's id and private key (from the environment only).
pub struct AppCredentials {
    pub app_id: String,
    key: RsaKeyPair,
    pub installation_id: Option<u64>,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .field("installation_id", &self.installation_id)
            .finish()
    }
}

fn setup(message: impl Into<String>) -> ForgeError {
    ForgeError::Setup {
        message: message.into(),
    }
}

impl AppCredentials {
    /// From `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` (the PEM text),
    /// with `GITHUB_APP_INSTALLATION_ID` optional. `None` when no app id is
    /// set.
    pub fn from_env() -> Result<Option<Self>, ForgeError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(app_id) = env(APP_ID_ENV) else {
            return Ok(None);
        };
        let pem = env(PRIVATE_KEY_ENV).ok_or_else(|| {
            setup(format!(
                "{APP_ID_ENV} is set but {PRIVATE_KEY_ENV} is not — put the App's private key (the .pem file's text) in {PRIVATE_KEY_ENV}"
            ))
        })?;
        // The whole key, and each of its lines: an error that quotes one
        // line of it must not leak that line either.
        crate::redact::register(&pem);
        for line in pem.replace("\\n", "\n").lines() {
            if !line.starts_with("-----") {
                crate::redact::register(line.trim());
            }
        }
        let installation_id = match env(INSTALLATION_ENV) {
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                setup(format!(
                    "{INSTALLATION_ENV} must be a number (the installation's id), not `{}`",
                    crate::redact::scrub(text.trim())
                ))
            })?),
            None => None,
        };
        Self::new(app_id.trim(), &pem, installation_id).map(Some)
    }

    pub fn new(app_id: &str, pem: &str, installation_id: Option<u64>) -> Result<Self, ForgeError> {
        if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(setup(format!(
                "{APP_ID_ENV} must be the App's id (a number) or client id"
            )));
        }
        let key = parse_key(pem)?;
        Ok(Self {
            app_id: app_id.to_owned(),
            key,
            installation_id,
        })
    }

    /// A JWT for the App, valid ten minutes from `now` minus a minute.
    pub fn jwt(&self, now: Timestamp) -> Result<SecretString, ForgeError> {
        let iat = now.as_second() - 60;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({ "iat": iat, "exp": iat + 600, "iss": self.app_id });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| setup(format!("cannot sign a JWT with {PRIVATE_KEY_ENV}")))?;
        let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        crate::redact::register(&jwt);
        Ok(SecretString::from(jwt))
    }
}

/// An RSA private key from PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what
/// GitHub hands out) or PKCS#8 (`BEGIN PRIVATE KEY`).
fn parse_key(pem: &str) -> Result<RsaKeyPair, ForgeError> {
    // Secrets pasted into CI settings often arrive with literal `\n`.
    let pem = pem.replace("\\n", "\n");
    let invalid = |why: &str| {
        setup(format!(
            "{PRIVATE_KEY_ENV} is not a usable RSA private key ({why}) — paste the whole .pem file GitHub gave for the App"
        ))
    };
    let (label, body) = pem_body(&pem).ok_or_else(|| invalid("no PEM block"))?;
    let der = STANDARD
        .decode(body)
        .map_err(|_| invalid("its base64 does not decode"))?;
    match label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map_err(|_| invalid("bad PKCS#1 key")),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).map_err(|_| invalid("bad PKCS#8 key")),
        _ => Err(invalid("not a private key block")),
    }
}

fn pem_body(pem: &str) -> Option<(String, String)> {
    let mut lines = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            return Some((label, body));
        }
        body.push_str(line);
    }
    None
}

/// An installation token and when it stops working.
pub struct InstallationToken {
    pub token: SecretString,
    pub expires_at: Timestamp,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: Timestamp,
}

#[derive(Deserialize)]
struct InstallationAnswer {
    id: u64,
}

/// Exchanges the App's JWT for an installation token for `owner/repo`
/// (finding the installation first when its id is not given).
pub async fn exchange(
    endpoints: &Endpoints,
    app: &AppCredentials,
    owner: &str,
    repo: &str,
) -> Result<InstallationToken, ForgeError> {
    // The App's own calls go through the same client, timeouts and retry
    // policy as every other GitHub call, authenticated by the JWT.
    let as_app = GitHub::new(
        endpoints.clone(),
        &format!("{owner}/{repo}"),
        app.jwt(Timestamp::now())?,
    )?;
    let server = as_app.server();
    let installation = match app.installation_id {
        Some(id) => id,
        None => {
            let doing = format!("finding the GitHub App's installation on {owner}/{repo}");
            let path = as_app.repo_path("/installation");
            let answer = as_app
                .with_retries(&doing, || as_app.call(Method::GET, &path, None, &doing))
                .await
                .map_err(|e| as_the_app(e, app))?;
            decode::<InstallationAnswer>(&server, &doing, answer)?.id
        }
    };
    let doing = format!(
        "getting an installation token for GitHub App {}",
        app.app_id
    );
    let path = format!("/app/installations/{installation}/access_tokens");
    let answer = as_app
        .with_retries(&doing, || as_app.call(Method::POST, &path, None, &doing))
        .await
        .map_err(|e| as_the_app(e, app))?;
    let answer: TokenAnswer = decode(&server, &doing, answer)?;
    crate::redact::register(&answer.token);
    tracing::info!(app_id = %app.app_id, installation, expires_at = %answer.expires_at, "GitHub App installation token obtained");
    Ok(InstallationToken {
        token: SecretString::from(answer.token),
        expires_at: answer.expires_at,
    })
}

/// A refusal of the App's own calls names what to check about the App (a
/// 404 there means the App is not installed, or the key is another App's).
fn as_the_app(error: ForgeError, app: &AppCredentials) -> ForgeError {
    let needs = format!(
        "act as GitHub App {} — check {APP_ID_ENV}, that {PRIVATE_KEY_ENV} is that App's key, and that the App is installed on the repository",
        app.app_id
    );
    match error {
        ForgeError::Denied {
            server,
            doing,
            status,
            message,
            ..
        }
        | ForgeError::Http {
            server,
            doing,
            status: status @ 404,
            message,
        } => ForgeError::Denied {
            server,
            doing,
            status,
            message,
            needs,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_body_is_found_between_its_lines() {
        let (label, body) = pem_body(
            "junk\n-----BEGIN RSA PRIVATE KEY-----\nQUJD\nREVG\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_eq!(label, "RSA PRIVATE KEY");
        assert_eq!(body, "QUJDREVG");
        assert!(pem_body("-----BEGIN RSA PRIVATE KEY-----\nQUJD\n").is_none());
    }

    #[test]
    fn a_bad_key_says_what_to_paste_and_never_quotes_it() {
        let err = AppCredentials::new("123", "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END RSA PRIVATE KEY-----", None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("GITHUB_APP_PRIVATE_KEY"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(AppCredentials::new("12 3", "x", None).is_err());
    }
}
