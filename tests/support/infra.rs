//! A sample infra repo on the smart-HTTP host, a checkout for revertbot to
//! work in, and a runner for the real `revertbot` binary with a clean
//! environment.

use std::path::PathBuf;
use std::process::Output;

use super::{GitHost, WorkRepo};

pub const REMOTE: &str = "infra.git";

pub const CONFIG: &str = "\
version: 1
repo:
  remote: origin
  branch: main
apps:
  - name: guestbook
    paths: [\"apps/guestbook/**\"]
    argocd: { app: guestbook }
  - name: billing
    paths: [\"apps/billing/**\"]
    argocd: { app: billing }
";

pub const DEPLOY_V1: &str = "\
# guestbook frontend
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 2
  selector:
    matchLabels: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      containers:
        - name: ui
          image: ghcr.io/acme/guestbook:v1 # {\"$imagepolicy\": \"flux-system:guestbook\"}
          readinessProbe:
            httpGet: {path: /healthz, port: 80}
";

pub const BILLING: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: billing
spec:
  template:
    spec:
      containers:
        - name: billing
          image: \"registry.example.com:5000/acme/billing:2.3.0\"
";

/// The digest guestbook:v1 ran at while healthy.
pub fn good_digest() -> String {
    format!("sha256:{}", "1a".repeat(32))
}

pub struct Sandbox {
    pub host: GitHost,
    /// The developers' working copy (pushes history to the remote).
    pub dev: WorkRepo,
    /// revertbot's checkout, as actions/checkout would make it.
    pub bot_dir: tempfile::TempDir,
    pub good: String,
    pub bad: String,
    home: tempfile::TempDir,
}

impl Sandbox {
    /// History: good (guestbook v1) → billing change → bad (guestbook v2
    /// without readiness probe, deployed). `depth` makes revertbot's
    /// checkout shallow.
    pub fn new(depth: Option<u32>) -> Sandbox {
        Sandbox::with_history(depth, 0)
    }

    /// Like `new`, with `older` unrelated commits before the good release
    /// (history a shallow checkout does not need).
    pub fn with_history(depth: Option<u32>, older: usize) -> Sandbox {
        Sandbox::build(depth, older, CONFIG)
    }

    /// Like `new`, with another `.revertbot.yaml`.
    pub fn with_config(config: &str) -> Sandbox {
        Sandbox::build(None, 0, config)
    }

    /// Like `with_config`, but the bad release is a monorepo commit: it also
    /// bumps billing and a shared chart (`charts/common/values.yaml`, owned
    /// by no app).
    pub fn with_multi_app_culprit(config: &str) -> Sandbox {
        Sandbox::build_with(None, 0, config, true)
    }

    fn build(depth: Option<u32>, older: usize, config: &str) -> Sandbox {
        Sandbox::build_with(depth, older, config, false)
    }

    fn build_with(depth: Option<u32>, older: usize, config: &str, multi_app: bool) -> Sandbox {
        let host = GitHost::start();
        host.create_bare(REMOTE);
        let dev = WorkRepo::init();
        for i in 0..older {
            dev.write(
                "apps/billing/history.yaml",
                format!("release: {i}\nnotes: {}\n", "x".repeat(2000 + i)),
            );
            dev.commit(&format!("billing: release {i}"));
        }
        dev.write(".revertbot.yaml", config);
        dev.write("apps/guestbook/deployment.yaml", DEPLOY_V1);
        dev.write("apps/billing/deployment.yaml", BILLING);
        let good = dev.commit("guestbook: first release, v1");
        dev.write(
            "apps/billing/deployment.yaml",
            BILLING.replace("2.3.0", "2.3.1"),
        );
        dev.commit("billing: 2.3.1");
        let bad_manifest = DEPLOY_V1.replace("guestbook:v1", "guestbook:v2").replace(
            "          readinessProbe:\n            httpGet: {path: /healthz, port: 80}\n",
            "",
        );
        dev.write("apps/guestbook/deployment.yaml", bad_manifest);
        if multi_app {
            dev.write(
                "apps/billing/deployment.yaml",
                BILLING.replace("2.3.0", "2.4.0"),
            );
            dev.write("charts/common/values.yaml", "replicas: 3\n");
        }
        let bad = dev.commit("guestbook: roll out v2");
        dev.push_to(&host, REMOTE);
        let bot_dir = tempfile::tempdir().expect("temp dir for the bot checkout");
        let checkout = bot_dir.path().join("infra");
        host.clone_into(REMOTE, &checkout, depth);
        Sandbox {
            host,
            dev,
            bot_dir,
            good,
            bad,
            home: tempfile::tempdir().expect("temp HOME"),
        }
    }

    pub fn checkout(&self) -> PathBuf {
        self.bot_dir.path().join("infra")
    }

    /// Runs `revertbot` in the checkout with only the environment it needs
    /// (and `GITHUB_TOKEN` set to the host's token).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_token(args, self.host.token())
    }

    pub fn run_with_token(&self, args: &[&str], token: &str) -> Output {
        self.run_with_env(args, token, &[])
    }

    /// Runs with extra environment variables (e.g. `KUBECONFIG`).
    pub fn run_with_env(&self, args: &[&str], token: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(std::process::Command::new(env!("CARGO_BIN_EXE_revertbot")));
        cmd.env("GITHUB_TOKEN", token).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run revertbot")
    }

    /// Runs with at most `kib` KiB of address space (`ulimit -v`; the tests
    /// may not use `unsafe` for `setrlimit`), so a run that allocates
    /// without bound dies instead of passing.
    pub fn run_limited(&self, args: &[&str], kib: u64) -> Output {
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_revertbot"));
        let mut cmd = self.command(sh);
        // glibc reserves 64 MiB of address space per malloc arena.
        cmd.env("MALLOC_ARENA_MAX", "2")
            .env("GITHUB_TOKEN", self.host.token())
            .args(args);
        cmd.output().expect("run revertbot under sh")
    }

    /// `cmd` with only the environment revertbot needs, in the checkout.
    fn command(&self, mut cmd: std::process::Command) -> std::process::Command {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("RUST_LOG", "revertbot=info")
            .current_dir(self.checkout());
        cmd
    }

    /// Runs and parses `--output json`, asserting the exit code.
    pub fn json(&self, args: &[&str], expected_exit: i32) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(expected_exit),
            "revertbot {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn record_good(&self) {
        let image = format!("ghcr.io/acme/guestbook:v1@{}", good_digest());
        self.json(
            &[
                "record",
                "--app",
                "guestbook",
                "--revision",
                &self.good,
                "--image",
                &image,
            ],
            0,
        );
    }

    /// `revert` of the bad deploy, which must push; returns the revert commit.
    pub fn revert_bad(&self) -> String {
        let report = self.json(
            &[
                "revert",
                "--no-wait",
                "--app",
                "guestbook",
                "--deployed",
                &self.bad,
            ],
            0,
        );
        assert_eq!(report["apps"][0]["action"], "pushed", "{report}");
        report["apps"][0]["revert_commit"]
            .as_str()
            .expect("a pushed revert names its commit")
            .to_owned()
    }

    /// The remote branch tip.
    pub fn remote_tip(&self) -> String {
        self.host
            .rev_parse(REMOTE, "refs/heads/main")
            .expect("remote has main")
    }

    pub fn remote_file(&self, rev: &str, path: &str) -> String {
        self.host.git(REMOTE, &["show", &format!("{rev}:{path}")])
    }

    /// Commits on the remote branch whose message carries revertbot trailers.
    pub fn remote_reverts(&self) -> Vec<String> {
        let out = self.host.git(
            REMOTE,
            &["log", "--format=%H", "--grep=^Revertbot-Reverts:", "main"],
        );
        out.lines().map(str::to_owned).collect()
    }

    /// The ledger note on `commit` on the remote, parsed.
    pub fn remote_note(&self, commit: &str) -> Option<serde_json::Value> {
        let has_notes = self
            .host
            .rev_parse(REMOTE, "refs/notes/revertbot")
            .is_some();
        if !has_notes {
            return None;
        }
        let listing = self
            .host
            .git(REMOTE, &["notes", "--ref", "revertbot", "list"]);
        if !listing.lines().any(|l| l.ends_with(commit)) {
            return None;
        }
        let text = self
            .host
            .git(REMOTE, &["notes", "--ref", "revertbot", "show", commit]);
        Some(serde_json::from_str(&text).expect("notes are JSON"))
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
