//! `GitHost`: a private "GitHub" for tests. A std-only threaded HTTP/1.1
//! server on a free 127.0.0.1 port that serves every bare repository under
//! its temp root through the real `git http-backend` (smart HTTP, CGI),
//! requires Basic auth on every request, records what it served and can
//! inject faults (races, protected branches, 5xx, delays).

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http::{Request, Response, basic_credentials, parse_cgi_output, percent_decode};
use super::repo::{BASE_EPOCH, git_command, run};

/// The username GitHub expects with an installation token.
pub const USERNAME: &str = "x-access-token";

/// Idle keep-alive connections are dropped after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `Drop` waits for connection threads before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type Hook = Box<dyn FnOnce() + Send>;

/// One served request: `(method, target including query, status)`.
pub type RequestRecord = (String, String, u16);

/// More about one served request, for tests of the transport itself.
#[derive(Clone, Debug)]
pub struct RequestDetail {
    pub method: String,
    pub target: String,
    pub status: u16,
    /// The request body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Request body bytes after de-chunking (still gzip if it was).
    pub body_len: usize,
    /// `Content-Encoding` of the request body, if any.
    pub content_encoding: Option<String>,
    /// `Git-Protocol` header, e.g. `version=2` from the git CLI.
    pub git_protocol: Option<String>,
    /// Username of valid credentials, if the request was authenticated.
    pub user: Option<String>,
}

pub struct GitHost {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Disconnects once the accept thread and every connection thread ended.
    /// (In a mutex only so that `GitHost` is `Sync`.)
    threads_done: Mutex<Receiver<()>>,
    /// Holds `repos/` (the project root) and `home/`; removed last.
    _dir: TempDir,
}

struct Shared {
    repos: PathBuf,
    home: PathBuf,
    backend: PathBuf,
    token: String,
    path_env: OsString,
    stopping: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    log: Vec<RequestDetail>,
    unauthorized: usize,
    upload_pack_bytes: HashMap<String, u64>,
    receive_pack_hooks: HashMap<String, Hook>,
    /// `(remaining, status)` for `fail_next`.
    failures: Option<(usize, u16)>,
    delay: Option<Duration>,
    /// Open connections, so `Drop` can shut them down.
    connections: HashMap<u64, TcpStream>,
    next_connection: u64,
    /// Problems to report when the host is dropped (hook panics).
    problems: Vec<String>,
    /// Tokens accepted besides the host's own (a GitHub App's installation
    /// tokens, handed out by the fake GitHub).
    extra_tokens: Vec<String>,
}

impl GitHost {
    /// Binds a free port on 127.0.0.1 and starts serving. Panics (never
    /// skips) if git-http-backend cannot be found or the port cannot be bound.
    pub fn start() -> GitHost {
        let dir = tempfile::Builder::new()
            .prefix("githost")
            .tempdir()
            .expect("GitHost: cannot create temp root");
        let (repos, home) = (dir.path().join("repos"), dir.path().join("home"));
        std::fs::create_dir(&repos).expect("GitHost: create repos dir");
        std::fs::create_dir(&home).expect("GitHost: create home dir");

        let exec_path = run(git_command(&home, BASE_EPOCH).arg("--exec-path"));
        let exec_path = String::from_utf8(exec_path).expect("git --exec-path is UTF-8");
        let backend = Path::new(exec_path.trim()).join("git-http-backend");
        assert!(
            backend.is_file(),
            "GitHost: git-http-backend not found at {} (from `git --exec-path`)",
            backend.display()
        );

        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("GitHost: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("GitHost: local_addr");

        let shared = Arc::new(Shared {
            repos,
            home,
            backend,
            token: random_token(),
            path_env: std::env::var_os("PATH").unwrap_or_default(),
            stopping: AtomicBool::new(false),
            state: Mutex::default(),
        });
        let (done_tx, threads_done) = mpsc::channel();
        let accept_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name(format!("githost-accept-{}", addr.port()))
            .spawn(move || accept_loop(&accept_shared, &listener, &done_tx))
            .expect("GitHost: spawn accept thread");
        GitHost {
            shared,
            addr,
            threads_done: Mutex::new(threads_done),
            _dir: dir,
        }
    }

    /// Directory holding the bare repositories (`GIT_PROJECT_ROOT`).
    pub fn root(&self) -> &Path {
        &self.shared.repos
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/<name>`, e.g. `name = "infra.git"`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{}", self.base_url(), name.trim_start_matches('/'))
    }

    /// The password every request must carry (any non-empty username).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Accepts `token` as a password too, as GitHub accepts an App's
    /// installation token for git over HTTPS.
    pub fn accept_token(&self, token: &str) {
        self.state().extra_tokens.push(token.to_owned());
    }

    /// The `credential.helper` value that answers with [`USERNAME`] and
    /// [`GitHost::token`] for the git CLI.
    pub fn credential_helper(&self) -> String {
        format!(
            "!f() {{ test \"$1\" = get && echo username={USERNAME} && echo password={}; }}; f",
            self.token()
        )
    }

    /// `git init --bare` a repository at `root()/name` (default branch main).
    pub fn create_bare(&self, name: &str) -> PathBuf {
        let path = self.repo_path(name);
        run(git_command(&self.shared.home, BASE_EPOCH)
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path));
        path
    }

    /// `git clone` of `name` into `dir` (which must not exist or be empty)
    /// over HTTP with the git CLI; `depth` gives a shallow clone. The clone
    /// keeps a credential helper for this host in its local config.
    pub fn clone_into(&self, name: &str, dir: &Path, depth: Option<u32>) {
        let helper = self.credential_helper();
        let mut cmd = git_command(&self.shared.home, BASE_EPOCH);
        cmd.arg("-c")
            .arg(format!("credential.helper={helper}"))
            .args(["clone", "-q", "--config"])
            .arg(format!("credential.{}.helper={helper}", self.base_url()));
        if let Some(depth) = depth {
            cmd.arg(format!("--depth={depth}"));
        }
        run(cmd.arg(self.url(name)).arg(dir));
    }

    /// Runs git in the bare repository `name` (server side, no HTTP).
    pub fn git(&self, name: &str, args: &[&str]) -> String {
        let mut cmd = git_command(&self.shared.home, BASE_EPOCH);
        cmd.arg("--git-dir").arg(self.repo_path(name)).args(args);
        let out = String::from_utf8(run(&mut cmd)).expect("git output is UTF-8");
        out.trim_end_matches('\n').to_owned()
    }

    /// Full SHA `rev` resolves to in the bare repository, if any.
    pub fn rev_parse(&self, name: &str, rev: &str) -> Option<String> {
        let out = git_command(&self.shared.home, BASE_EPOCH)
            .arg("--git-dir")
            .arg(self.repo_path(name))
            .args(["rev-parse", "--verify", "-q", "--end-of-options", rev])
            .output()
            .expect("run git rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Response-body bytes served for `git-upload-pack` POSTs to `name`
    /// (the negotiation and the packfile), since the host started.
    pub fn upload_pack_bytes(&self, name: &str) -> u64 {
        let key = name.trim_start_matches('/');
        *self.state().upload_pack_bytes.get(key).unwrap_or(&0)
    }

    /// Every request answered so far: `(method, target, status)`.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let state = self.state();
        let records = state
            .log
            .iter()
            .map(|r| (r.method.clone(), r.target.clone(), r.status));
        records.collect()
    }

    /// Every request answered so far, with transport details.
    pub fn request_details(&self) -> Vec<RequestDetail> {
        self.state().log.clone()
    }

    /// How many requests were answered 401.
    pub fn unauthorized_count(&self) -> usize {
        self.state().unauthorized
    }

    /// Runs `hook` on the server just before the next `git-receive-pack`
    /// POST to `name` is handed to http-backend, i.e. after the pusher saw
    /// the ref advertisement. Push a competing commit from it for a real
    /// race. The host panics on drop if the hook never ran or panicked.
    pub fn before_next_receive_pack(&self, name: &str, hook: Hook) {
        let key = name.trim_start_matches('/').to_owned();
        let previous = self.state().receive_pack_hooks.insert(key, hook);
        assert!(
            previous.is_none(),
            "a receive-pack hook for {name} is already pending"
        );
    }

    /// Installs a `pre-receive` hook in `name` that prints `message` and
    /// refuses every push (a protected branch).
    pub fn reject_pushes(&self, name: &str, message: &str) {
        let hooks = self.repo_path(name).join("hooks");
        std::fs::create_dir_all(&hooks).expect("create hooks dir");
        let quoted = message.replace('\'', r"'\''");
        let script = format!("#!/bin/sh\nprintf '%s\\n' '{quoted}' >&2\nexit 1\n");
        let path = hooks.join("pre-receive");
        std::fs::write(&path, script).expect("write pre-receive hook");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod pre-receive hook");
    }

    /// Removes the hook installed by [`GitHost::reject_pushes`].
    pub fn allow_pushes(&self, name: &str) {
        let path = self.repo_path(name).join("hooks/pre-receive");
        if path.exists() {
            std::fs::remove_file(path).expect("remove pre-receive hook");
        }
    }

    /// Answers the next `n` requests (any repo, before auth) with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state().failures = (n > 0).then_some((n, status));
    }

    /// Delays the answer to the next request by `delay`.
    pub fn delay_next(&self, delay: Duration) {
        self.state().delay = Some(delay);
    }

    fn repo_path(&self, name: &str) -> PathBuf {
        self.shared.repos.join(name.trim_start_matches('/'))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }
}

impl Drop for GitHost {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees `stopping` and exits.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for stream in self.state().connections.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let threads_done = self.threads_done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match threads_done.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!("GitHost: connection threads still busy after {SHUTDOWN_GRACE:?}");
                    break;
                }
            }
        }
        if thread::panicking() {
            return;
        }
        let (pending_hooks, problems) = {
            let mut state = self.state();
            let hooks: Vec<String> = state.receive_pack_hooks.keys().cloned().collect();
            (hooks, std::mem::take(&mut state.problems))
        };
        assert!(problems.is_empty(), "GitHost: {}", problems.join("; "));
        assert!(
            pending_hooks.is_empty(),
            "GitHost: before_next_receive_pack hook never ran for {pending_hooks:?}"
        );
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking hook must not poison the host for everyone else.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn random_token() -> String {
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(Instant::now());
    format!("ghs_{a:016x}{b:016x}")
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, done: &Sender<()>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            if shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            continue;
        };
        let mut state = shared.state();
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let id = state.next_connection;
        state.next_connection += 1;
        if let Ok(clone) = stream.try_clone() {
            state.connections.insert(id, clone);
        }
        drop(state);
        let (conn_shared, done) = (Arc::clone(shared), done.clone());
        let spawned = thread::Builder::new()
            .name(format!("githost-conn-{id}"))
            .spawn(move || {
                let _done = done;
                serve_connection(&conn_shared, stream);
                conn_shared.state().connections.remove(&id);
            });
        if let Err(e) = spawned {
            eprintln!("GitHost: cannot spawn connection thread: {e}");
            shared.state().connections.remove(&id);
        }
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let request = match super::http::read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) if is_disconnect(&e) => return,
            Err(e) => {
                let _ = Response::text(400, &format!("bad request: {e}\n"))
                    .write_to(&mut writer, false);
                return;
            }
        };
        let (response, user) = handle(shared, &request);
        let keep_alive = request.keep_alive && !shared.stopping.load(Ordering::SeqCst);
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        shared.state().log.push(RequestDetail {
            method: request.method.clone(),
            target: request.target.clone(),
            status: response.status,
            chunked,
            body_len: request.body.len(),
            content_encoding: request.header("content-encoding").map(str::to_owned),
            git_protocol: request.header("git-protocol").map(str::to_owned),
            user,
        });
        if response.write_to(&mut writer, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Answers one request; also returns the authenticated username, if any.
fn handle(shared: &Shared, request: &Request) -> (Response, Option<String>) {
    let (failure, delay) = {
        let mut state = shared.state();
        let failure = match &mut state.failures {
            Some((remaining, status)) => {
                let status = *status;
                *remaining -= 1;
                if *remaining == 0 {
                    state.failures = None;
                }
                Some(status)
            }
            None => None,
        };
        (failure, state.delay.take())
    };
    if let Some(delay) = delay {
        thread::sleep(delay);
    }
    if let Some(status) = failure {
        return (Response::text(status, "githost: injected failure\n"), None);
    }

    let user = request
        .header("authorization")
        .and_then(basic_credentials)
        .filter(|(user, password)| {
            !user.is_empty()
                && (*password == shared.token
                    || shared.state().extra_tokens.iter().any(|t| t == password))
        })
        .map(|(user, _)| user);
    let Some(user) = user else {
        shared.state().unauthorized += 1;
        let response = Response::text(401, "githost: authentication required\n")
            .with_header("WWW-Authenticate", "Basic realm=\"git\"");
        return (response, None);
    };
    let response = serve_authenticated(shared, request, &user);
    (response, Some(user))
}

fn serve_authenticated(shared: &Shared, request: &Request, user: &str) -> Response {
    let Some(path) = percent_decode(request.path()) else {
        return Response::text(400, "githost: bad percent-encoding in path\n");
    };
    let upload_pack_repo = (request.method == "POST")
        .then(|| path.strip_suffix("/git-upload-pack"))
        .flatten()
        .map(|repo| repo.trim_start_matches('/').to_owned());
    let receive_pack_repo = (request.method == "POST")
        .then(|| path.strip_suffix("/git-receive-pack"))
        .flatten()
        .map(|repo| repo.trim_start_matches('/'));

    if let Some(repo) = receive_pack_repo {
        // Take the hook in its own statement: the state lock must be
        // released before the hook runs (it usually pushes to this host).
        let hook = shared.state().receive_pack_hooks.remove(repo);
        if let Some(hook) = hook
            && let Err(panic) = catch_unwind(AssertUnwindSafe(hook))
        {
            let message = panic_message(&*panic);
            let problem = format!("before_next_receive_pack hook for {repo} panicked: {message}");
            eprintln!("GitHost: {problem}");
            shared.state().problems.push(problem);
            return Response::text(500, "githost: receive-pack hook panicked\n");
        }
    }

    let response = run_backend(shared, request, &path, user);
    if let Some(repo) = upload_pack_repo
        && response.status == 200
    {
        *shared.state().upload_pack_bytes.entry(repo).or_default() += response.body.len() as u64;
    }
    response
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_owned()
    }
}

/// Runs `git http-backend` as a CGI script for one request.
fn run_backend(shared: &Shared, request: &Request, path: &str, user: &str) -> Response {
    let mut cmd = Command::new(&shared.backend);
    cmd.env_clear()
        .env("PATH", &shared.path_env)
        .env("HOME", &shared.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GIT_PROJECT_ROOT", &shared.repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_SOFTWARE", "githost")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", user)
        .env("AUTH_TYPE", "Basic")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", request.query())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if request.method == "POST" || !request.body.is_empty() {
        cmd.env("CONTENT_LENGTH", request.body.len().to_string());
    }
    for (header, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
        ("user-agent", "HTTP_USER_AGENT"),
    ] {
        if let Some(value) = request.header(header) {
            cmd.env(var, value);
        }
    }

    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Response::text(500, &format!("githost: cannot run http-backend: {e}\n"));
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let output = thread::scope(|scope| {
        scope.spawn(move || {
            // http-backend may exit without reading everything (errors); a
            // broken pipe here is reported through its status instead.
            let _ = stdin.write_all(&request.body);
        });
        child.wait_with_output()
    });
    let output = match output {
        Ok(output) => output,
        Err(e) => return Response::text(500, &format!("githost: http-backend I/O: {e}\n")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        eprintln!(
            "GitHost: http-backend stderr for {} {}: {}",
            request.method,
            request.target,
            stderr.trim_end()
        );
    }
    match parse_cgi_output(&output.stdout) {
        Ok(response) => response,
        Err(e) => Response::text(
            502,
            &format!(
                "githost: bad CGI response ({e}); exit {}; stderr: {stderr}\n",
                output.status
            ),
        ),
    }
}
