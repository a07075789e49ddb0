//! `Sshd`: a private SSH git host for tests. Debian's OpenSSH server
//! (`/usr/sbin/sshd`) runs as a non-daemon child on a free 127.0.0.1 port
//! with a temp host key, public-key authentication only (one generated
//! client key) and serves the bare repositories under its temp root by path
//! through the login shell (`git-upload-pack '/abs/path'`), like any SSH git
//! server. An `ssh-agent` holding the client key, a temp `HOME` whose
//! `.ssh/known_hosts` pins the host key, and the server's log come with it.
//! Everything is killed on drop.
//!
//! Panics with an install hint when OpenSSH is absent (the test fails):
//! `apt-get install openssh-server` (which brings `openssh-client`).

use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::repo::{BASE_EPOCH, git_command, run};

pub const SSHD: &str = "/usr/sbin/sshd";
const INSTALL_HINT: &str = "install OpenSSH: `apt-get install -y openssh-server` (it brings openssh-client: ssh, ssh-agent, ssh-add, ssh-keygen)";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs an OpenSSH helper program; panics with the install hint if it is
/// missing and with its stderr if it fails.
fn openssh(program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e} — {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generates an ed25519 key pair without passphrase at `path` (+ `.pub`).
pub fn keygen(path: &Path) -> PathBuf {
    let file = path.to_str().expect("temp paths are UTF-8");
    openssh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "revertbot-test",
            "-f",
            file,
        ],
        &[],
    );
    path.to_owned()
}

/// The name of the user this process runs as.
fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("run `id -un`");
    assert!(out.status.success(), "`id -un` failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// An `ssh-agent -D` on a socket in its own temp dir.
pub struct SshAgent {
    child: Child,
    sock: PathBuf,
    _dir: TempDir,
}

impl SshAgent {
    /// Starts an agent with no keys loaded.
    pub fn start() -> SshAgent {
        let dir = tempfile::Builder::new()
            .prefix("agent")
            .tempdir()
            .expect("SshAgent: temp dir");
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ssh-agent: {e} — {INSTALL_HINT}"));
        let mut agent = SshAgent {
            child,
            sock,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !agent.sock.exists() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("ssh-agent exited at start ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create {} within {START_TIMEOUT:?}",
                agent.sock.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// `ssh-add` a private key.
    pub fn add(&self, key: &Path) {
        let key = key.to_str().expect("temp paths are UTF-8");
        openssh("ssh-add", &["-q", key], &[("SSH_AUTH_SOCK", &self.sock)]);
    }

    /// Fingerprints of the loaded keys (`ssh-add -l`; empty if none).
    pub fn list(&self) -> Vec<String> {
        let out = Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh-add: {e} — {INSTALL_HINT}"));
        // Exit 1: "The agent has no identities."
        if !out.status.success() {
            return Vec::new();
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The value for `SSH_AUTH_SOCK`.
    pub fn auth_sock(&self) -> &Path {
        &self.sock
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Sshd {
    child: Child,
    port: u16,
    user: String,
    agent: SshAgent,
    /// Holds keys, config, log, `repos/` and `home/`.
    dir: TempDir,
}

impl Sshd {
    /// Public-key authentication only.
    pub fn start() -> Sshd {
        Sshd::start_with(&[])
    }

    /// Like `start`, with extra `sshd_config` lines (e.g.
    /// `PasswordAuthentication yes`, to advertise more methods).
    pub fn start_with(extra_config: &[&str]) -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "Sshd: {SSHD} not found — {INSTALL_HINT}"
        );
        let dir = tempfile::Builder::new()
            .prefix("sshd")
            .tempdir()
            .expect("Sshd: temp dir");
        let root = dir.path();
        for sub in ["repos", "home", "home/.ssh", "keys"] {
            fs::create_dir(root.join(sub)).expect("Sshd: create dir");
        }
        keygen(&root.join("keys/host_ed25519"));
        let client_key = keygen(&root.join("keys/client_ed25519"));
        fs::copy(
            client_key.with_extension("pub"),
            root.join("keys/authorized_keys"),
        )
        .expect("Sshd: write authorized_keys");
        if is_root() {
            // sshd running as root chroots its pre-auth child here.
            let privsep = Path::new("/run/sshd");
            if !privsep.is_dir() {
                fs::create_dir_all(privsep).expect("Sshd: create /run/sshd");
                fs::set_permissions(privsep, fs::Permissions::from_mode(0o755))
                    .expect("Sshd: chmod /run/sshd");
            }
        }
        let user = current_user();
        let agent = SshAgent::start();
        agent.add(&client_key);

        // A free port can be taken between our probe and sshd's bind: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_sshd(root, port, &user, extra_config) {
                Ok(child) => {
                    let sshd = Sshd {
                        child,
                        port,
                        user,
                        agent,
                        dir,
                    };
                    sshd.write_known_hosts();
                    return sshd;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("Sshd: {SSHD} did not start:\n{last_log}");
    }

    fn write_known_hosts(&self) {
        let public = fs::read_to_string(self.dir.path().join("keys/host_ed25519.pub"))
            .expect("Sshd: read host key");
        let mut fields = public.split_whitespace();
        let (kind, blob) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        fs::write(
            self.known_hosts(),
            format!("[127.0.0.1]:{} {kind} {blob}\n", self.port),
        )
        .expect("Sshd: write known_hosts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `ssh://<user>@127.0.0.1:<port>/<abs path>`.
    pub fn url(&self, repo: &Path) -> String {
        assert!(repo.is_absolute(), "Sshd::url needs an absolute path");
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.display()
        )
    }

    /// `SSH_AUTH_SOCK` of the agent holding the client key.
    pub fn auth_sock(&self) -> &Path {
        self.agent.auth_sock()
    }

    pub fn agent(&self) -> &SshAgent {
        &self.agent
    }

    /// A temp `HOME` whose `.ssh/known_hosts` trusts this server.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `home()/.ssh/known_hosts`, with the `[127.0.0.1]:<port>` entry.
    pub fn known_hosts(&self) -> PathBuf {
        self.home().join(".ssh/known_hosts")
    }

    /// The private key the server accepts (also loaded in the agent).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("keys/client_ed25519")
    }

    /// A `GIT_SSH_COMMAND` for the git CLI that uses only the client key
    /// file and the pinned host key (no agent, no user config).
    pub fn git_ssh_command(&self) -> String {
        format!(
            "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -i {}",
            self.known_hosts().display(),
            self.client_key().display()
        )
    }

    /// What sshd logged so far (`-e`: to its stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Where the bare repositories live.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.root().join(name.trim_start_matches('/'))
    }

    /// `git init --bare -b main` at `root()/name`; returns its path.
    pub fn create_bare(&self, name: &str) -> PathBuf {
        let path = self.repo_path(name);
        run(git_command(&self.home(), BASE_EPOCH)
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path));
        path
    }

    /// `git clone` of `name` into `dir` over SSH with the git CLI.
    pub fn clone_into(&self, name: &str, dir: &Path) {
        let mut cmd = git_command(&self.home(), BASE_EPOCH);
        cmd.env("GIT_SSH_COMMAND", self.git_ssh_command())
            .args(["clone", "-q"])
            .arg(self.url(&self.repo_path(name)))
            .arg(dir);
        run(&mut cmd);
    }

    /// Runs git in the bare repository `name` (server side, no SSH).
    pub fn git(&self, name: &str, args: &[&str]) -> String {
        let mut cmd = git_command(&self.home(), BASE_EPOCH);
        cmd.arg("--git-dir").arg(self.repo_path(name)).args(args);
        let out = String::from_utf8(run(&mut cmd)).expect("git output is UTF-8");
        out.trim_end_matches('\n').to_owned()
    }

    /// Full SHA `rev` resolves to in the bare repository, if any.
    pub fn rev_parse(&self, name: &str, rev: &str) -> Option<String> {
        let out = git_command(&self.home(), BASE_EPOCH)
            .arg("--git-dir")
            .arg(self.repo_path(name))
            .args(["rev-parse", "--verify", "-q", "--end-of-options", rev])
            .output()
            .expect("run git rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts sshd on `port` and waits until it accepts connections; `Err`
/// with its log if it exited (e.g. the port was taken meanwhile).
fn spawn_sshd(root: &Path, port: u16, user: &str, extra: &[&str]) -> Result<Child, String> {
    let config = root.join("sshd_config");
    fs::write(&config, sshd_config(root, port, user, extra)).expect("Sshd: write sshd_config");
    let log_path = root.join("sshd.log");
    let log = File::create(&log_path).expect("Sshd: create log");
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e} — {INSTALL_HINT}"));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("sshd exited ({status}):\n{log}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            panic!("Sshd: not listening on port {port} after {START_TIMEOUT:?}:\n{log}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("Sshd: cannot bind 127.0.0.1:0: {e}"))
}

fn sshd_config(root: &Path, port: u16, user: &str, extra: &[&str]) -> String {
    let mut config = format!(
        "\
ListenAddress 127.0.0.1:{port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized}
PubkeyAuthentication yes
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {user}
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY no
LogLevel VERBOSE
",
        host_key = root.join("keys/host_ed25519").display(),
        authorized = root.join("keys/authorized_keys").display(),
    );
    let overridden = |key: &str| extra.iter().any(|l| l.starts_with(key));
    for default in [
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
    ] {
        let key = default.split(' ').next().unwrap_or(default);
        if !overridden(key) {
            config.push_str(default);
            config.push('\n');
        }
    }
    for line in extra {
        config.push_str(line);
        config.push('\n');
    }
    config
}
