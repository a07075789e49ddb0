//! The GitHub App side of the fake: the JWT an App signs (RS256, `iss` the
//! app id, `iat`/`exp` at most ten minutes apart) is verified against the
//! App's public key, and the exchange hands out installation tokens that
//! expire (GitHub docs: "Generating a JSON Web Token (JWT) for a GitHub
//! App", "Generating an installation access token for a GitHub App";
//! answer shapes from the REST reference: `{"token", "expires_at"}` and an
//! installation object with `id`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{State, error, json_response, lock};

pub const APP_ID: &str = "424242";
pub const INSTALLATION_ID: u64 = 7_654_321;

/// An App's key pair, made by `openssl` for the test.
pub struct AppKey {
    /// The private key as GitHub hands it out (PKCS#1 PEM).
    pub private_pem: String,
    /// The public key, PKCS#1 `RSAPublicKey` DER.
    pub public_der: Vec<u8>,
}

impl AppKey {
    pub fn generate(dir: &std::path::Path) -> Self {
        let key = dir.join("app.pem");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl must be installed (the test command installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let key_path = key.to_str().unwrap();
        run(&["genrsa", "-traditional", "-out", key_path, "2048"]);
        let public_der = run(&[
            "rsa",
            "-in",
            key_path,
            "-RSAPublicKey_out",
            "-outform",
            "DER",
        ]);
        Self {
            private_pem: std::fs::read_to_string(&key).unwrap(),
            public_der,
        }
    }
}

pub(super) struct AppState {
    public_der: Vec<u8>,
    ttl: Duration,
    /// Tokens handed out and when each expires (epoch seconds).
    pub issued: Vec<(String, u64)>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl AppState {
    pub fn new(key: &AppKey, ttl: Duration) -> Self {
        Self {
            public_der: key.public_der.clone(),
            ttl,
            issued: Vec::new(),
        }
    }

    /// An installation token that has not expired.
    pub fn accepts(&self, token: &str) -> bool {
        let now = now();
        self.issued.iter().any(|(t, exp)| t == token && *exp > now)
    }
}

/// Checks an App JWT: three parts, RS256, a valid signature, `iss` the app
/// id, `iat` not in the future (GitHub allows 60 s of drift), `exp` after
/// now and at most ten minutes after `iat`.
pub(super) fn check_jwt(state: &Mutex<State>, jwt: &str) -> Result<(), String> {
    let s = lock(state);
    let Some(app) = &s.app else {
        return Err("an App endpoint, and the fake has no App".to_owned());
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("the bearer is not a JWT".to_owned());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("JWT base64: {e}"))
    };
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("JWT alg {} (GitHub takes RS256)", header["alg"]));
    }
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &app.public_der)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "JWT signature does not verify with the App's public key".to_owned())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err(format!("JWT claims without iat/exp: {claims}"));
    };
    let now = now() as i64;
    if claims["iss"].as_str() != Some(APP_ID)
        && claims["iss"].as_i64().map(|i| i.to_string()).as_deref() != Some(APP_ID)
    {
        return Err(format!("JWT iss {} is not the App {APP_ID}", claims["iss"]));
    }
    if iat > now + 60 {
        return Err("JWT iat is in the future".to_owned());
    }
    if exp <= now || exp - iat > 600 {
        return Err(format!(
            "JWT exp {exp} (iat {iat}, now {now}): expired or more than 10 minutes"
        ));
    }
    Ok(())
}

/// `POST /app/installations/{id}/access_tokens` → 201.
pub(super) fn issue_token(state: &Mutex<State>, installation: &str) -> Response {
    let mut s = lock(state);
    if installation != INSTALLATION_ID.to_string() {
        s.violations.push(format!(
            "token exchange for installation {installation}, not {INSTALLATION_ID}"
        ));
        return error(404, "Not Found");
    }
    let Some(app) = s.app.as_mut() else {
        return error(404, "Not Found");
    };
    let token = format!(
        "ghs_installation{:04}fakeToken0123456789",
        app.issued.len() + 1
    );
    let expires = now() + app.ttl.as_secs();
    app.issued.push((token.clone(), expires));
    let expires_at = jiff::Timestamp::from_second(expires as i64)
        .unwrap()
        .to_string();
    json_response(
        201,
        &json!({"token": token, "expires_at": expires_at, "permissions": {"contents": "write", "pull_requests": "write"}, "repository_selection": "selected"}),
        &[],
    )
}

/// `GET /repos/{owner}/{repo}/installation` → the installation.
pub(super) fn installation(state: &Mutex<State>) -> Response {
    let _ = state;
    json_response(
        200,
        &json!({"id": INSTALLATION_ID, "app_id": APP_ID.parse::<u64>().unwrap(), "target_type": "Organization", "account": {"login": super::OWNER}}),
        &[],
    )
}
