//! A token service for the distribution token spec whose tokens the real
//! registry verifies: RS256 JWTs signed (with the `openssl` CLI) by a
//! throw-away certificate that the registry trusts through its
//! `rootcertbundle`, the certificate carried in the `x5c` header.
//!
//! Policy: a known user (Basic auth, or an identity token via the OAuth2
//! refresh-token POST) may pull and push anything; anonymous callers may
//! pull repositories under `public/` only. Like real token services it
//! still issues a token, with no access, for what a caller may not do; the
//! registry then answers 401. Wrong passwords get 401 here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::support::http::{base64_encode, basic_credentials};

pub const SERVICE: &str = "revertbot-test-registry";
pub const ISSUER: &str = "revertbot-test-token-issuer";
/// Token lifetime the service announces.
pub const EXPIRES_IN: u64 = 300;

/// One request the token service saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The authenticated user, if any.
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub granted: Vec<String>,
}

struct Inner {
    users: Vec<(String, String)>,
    identity_tokens: Vec<(String, String)>,
    key: PathBuf,
    x5c: String,
    seen: Mutex<Vec<Seen>>,
    jti: AtomicU64,
}

pub struct TokenServer {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenServer {
    /// `users`: `(name, password)`; `identity_tokens`: `(name, token)`.
    pub async fn start(users: &[(&str, &str)], identity_tokens: &[(&str, &str)]) -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=revertbot-test-token-issuer",
                "-keyout",
                path(&key),
                "-out",
                path(&cert),
            ],
            None,
        );
        let der = openssl(&["x509", "-in", path(&cert), "-outform", "DER"], None);
        let inner = Arc::new(Inner {
            users: pairs(users),
            identity_tokens: pairs(identity_tokens),
            key,
            x5c: base64_encode(&der),
            seen: Mutex::new(Vec::new()),
            jti: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/token", get(token_get).post(token_post))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            addr,
            dir,
            inner,
            task,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs `openssl`, feeding `stdin`, returning stdout; panics with a hint.
fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): the token-auth tests sign tokens with it — install Debian's `openssl` package")
        });
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write to openssl");
    drop(input);
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn b64url(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

type Params = Vec<(String, String)>;

async fn token_get(
    State(s): State<Arc<Inner>>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let user = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(h) => match basic_credentials(h) {
            Some((u, p)) if s.users.iter().any(|(uu, pp)| *uu == u && *pp == p) => Some(u),
            _ => {
                s.record("GET", None, scopes(&q), Vec::new());
                return (
                    StatusCode::UNAUTHORIZED,
                    r#"{"details":"incorrect username or password"}"#,
                )
                    .into_response();
            }
        },
    };
    issue(&s, "GET", &q, user, false).await
}

async fn token_post(State(s): State<Arc<Inner>>, body: String) -> Response {
    let q: Params = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if field("grant_type").as_deref() != Some("refresh_token") {
        return (StatusCode::BAD_REQUEST, "unsupported grant_type").into_response();
    }
    let refresh = field("refresh_token").unwrap_or_default();
    let Some((user, _)) = s.identity_tokens.iter().find(|(_, t)| *t == refresh) else {
        s.record("POST", None, scopes(&q), Vec::new());
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"details":"invalid refresh token"}"#,
        )
            .into_response();
    };
    issue(&s, "POST", &q, Some(user.clone()), true).await
}

fn scopes(q: &Params) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect()
}

impl Inner {
    fn record(
        &self,
        method: &str,
        user: Option<String>,
        scopes: Vec<String>,
        granted: Vec<String>,
    ) {
        self.seen.lock().unwrap().push(Seen {
            method: method.to_owned(),
            user,
            scopes,
            granted,
        });
    }
}

async fn issue(
    s: &Arc<Inner>,
    method: &str,
    q: &Params,
    user: Option<String>,
    oauth: bool,
) -> Response {
    let service = q
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    if service != Some(SERVICE) {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    let mut access = Vec::new();
    let mut granted = Vec::new();
    for scope in scopes(q) {
        // repository:<name>:<actions>; names have no `:` (ports are not part
        // of repository names).
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let allowed: Vec<&str> = actions
            .split(',')
            .filter(|a| user.is_some() || (*a == "pull" && name.starts_with("public/")))
            .collect();
        if !allowed.is_empty() {
            granted.push(format!("{name}:{}", allowed.join(",")));
        }
        access.push(serde_json::json!({"type": "repository", "name": name, "actions": allowed}));
    }
    s.record(method, user.clone(), scopes(q), granted);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [s.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.clone().unwrap_or_default(),
        "aud": SERVICE,
        "exp": now + EXPIRES_IN,
        "nbf": now - 30,
        "iat": now,
        "jti": format!("revertbot-test-{}", s.jti.fetch_add(1, Ordering::Relaxed)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = s.key.clone();
    let input = signing_input.clone();
    let signature = tokio::task::spawn_blocking(move || {
        openssl(
            &["dgst", "-sha256", "-sign", path(&key)],
            Some(input.as_bytes()),
        )
    })
    .await
    .expect("sign");
    let jwt = format!("{signing_input}.{}", b64url(&signature));
    let body = if oauth {
        serde_json::json!({"access_token": jwt, "expires_in": EXPIRES_IN, "scope": scopes(q).join(" ")})
    } else {
        serde_json::json!({"token": jwt, "expires_in": EXPIRES_IN, "issued_at": "2009-11-10T23:00:00Z"})
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}
