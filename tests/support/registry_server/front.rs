//! A proxy in front of a real registry that counts what the client sends
//! and, on demand, misbehaves the ways real registries and networks do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the proxy answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward unchanged.
    Pass,
    /// Forward, but drop `Docker-Content-Digest` from manifest answers
    /// (some registries and caches do).
    StripDigest,
    /// Forward, but replace `Docker-Content-Digest` with this value.
    RewriteDigest(String),
    /// Answer every request with this status and no body.
    Status(u16),
    /// Answer every request 401 with this `WWW-Authenticate` value.
    Challenge(String),
    /// Answer the next request 401 with this `WWW-Authenticate` value,
    /// then pass (a token the registry stopped accepting).
    ChallengeOnce(String),
    /// Demand HTTP Basic auth (`Basic realm=...` challenge), as registries
    /// with htpasswd auth do, then pass.
    Basic { user: String, password: String },
    /// Hold every request for a minute without answering.
    Stall,
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub authorization: Option<String>,
}

struct Inner {
    upstream: String,
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
    client: reqwest::Client,
}

pub struct Front {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Proxies to `upstream` (`http://127.0.0.1:port`).
    pub async fn start(upstream: &str, mode: Mode) -> Front {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            mode: Mutex::new(mode),
            seen: Mutex::new(Vec::new()),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Front { addr, inner, task }
    }

    /// `127.0.0.1:<port>`: use as the registry of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// `(method, path without query)` of every request, for compact asserts.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.seen()
            .into_iter()
            .map(|s| {
                let path = s.target.split('?').next().unwrap_or_default().to_owned();
                (s.method, path)
            })
            .collect()
    }

    pub fn clear(&self) {
        self.inner.seen.lock().unwrap().clear();
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(s): State<Arc<Inner>>, req: Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        target: target.clone(),
        authorization,
    });
    let mode = s.mode.lock().unwrap().clone();
    match mode {
        Mode::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Challenge(value) => {
            return (StatusCode::UNAUTHORIZED, [("www-authenticate", value)]).into_response();
        }
        Mode::ChallengeOnce(value) => {
            *s.mode.lock().unwrap() = Mode::Pass;
            return (StatusCode::UNAUTHORIZED, [("www-authenticate", value)]).into_response();
        }
        Mode::Stall => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Mode::Basic {
            ref user,
            ref password,
        } => {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::support::http::basic_credentials);
            if given != Some((user.clone(), password.clone())) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", r#"Basic realm="basic-realm""#)],
                )
                    .into_response();
            }
        }
        Mode::Pass | Mode::StripDigest | Mode::RewriteDigest(_) => {}
    }
    let mut upstream = s.client.request(method, format!("{}{target}", s.upstream));
    for (name, value) in req.headers() {
        if name != "host" {
            upstream = upstream.header(name, value);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let resp = match upstream.body(body).send().await {
        Ok(r) => r,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = resp.status();
    let mut headers = resp.headers().clone();
    match &mode {
        Mode::StripDigest => {
            headers.remove("docker-content-digest");
        }
        Mode::RewriteDigest(value) if headers.contains_key("docker-content-digest") => {
            headers.insert("docker-content-digest", value.parse().unwrap());
        }
        _ => {}
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap();
    for (name, value) in &headers {
        if name == "transfer-encoding" || name == "connection" {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}
