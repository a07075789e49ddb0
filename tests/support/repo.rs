//! Temp git repositories driven by the real `git` CLI in an isolated,
//! deterministic environment (fixed identity, fixed clock, no user or system
//! config), so commit SHAs are the same on every run.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI64, Ordering};

use tempfile::TempDir;

use super::githost::GitHost;

pub const AUTHOR_NAME: &str = "Revertbot Test";
pub const AUTHOR_EMAIL: &str = "test@revertbot.invalid";
/// 2023-11-14T22:13:20Z. Each commit made through [`WorkRepo`] moves the
/// clock [`CLOCK_STEP`] seconds on.
pub const BASE_EPOCH: i64 = 1_700_000_000;
pub const CLOCK_STEP: i64 = 60;

/// A `git` command with nothing inherited from the user's environment:
/// `HOME` is `home`, no system or global config, fixed author/committer and
/// dates at `epoch`, `init.defaultBranch=main`, never prompts.
pub fn git_command(home: &Path, epoch: i64) -> Command {
    let mut cmd = Command::new("git");
    let date = format!("@{epoch} +0000");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_COUNT", "3")
        .env("GIT_CONFIG_KEY_0", "init.defaultBranch")
        .env("GIT_CONFIG_VALUE_0", "main")
        .env("GIT_CONFIG_KEY_1", "core.quotePath")
        .env("GIT_CONFIG_VALUE_1", "false")
        .env("GIT_CONFIG_KEY_2", "advice.detachedHead")
        .env("GIT_CONFIG_VALUE_2", "false");
    cmd
}

/// Runs `cmd`, returning its output whatever the exit status.
pub fn output_of(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is git on PATH?)"))
}

/// Runs `cmd`; panics with git's stderr unless it succeeds. Returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = output_of(cmd);
    if !out.status.success() {
        panic!(
            "{} failed ({}):\nstderr: {}\nstdout: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            String::from_utf8_lossy(&out.stdout).trim_end(),
        );
    }
    out.stdout
}

fn describe(cmd: &Command) -> String {
    let args: Vec<_> = cmd.get_args().map(OsStr::to_string_lossy).collect();
    let dir = cmd
        .get_current_dir()
        .map(|d| format!(" in {}", d.display()))
        .unwrap_or_default();
    format!("`git {}`{dir}", args.join(" "))
}

fn text(stdout: Vec<u8>) -> String {
    let mut s = String::from_utf8(stdout).expect("git printed non-UTF-8 text");
    while s.ends_with('\n') {
        s.pop();
    }
    s
}

/// A non-bare repository with a work tree in its own temp dir.
/// `HOME` for its git commands is a sibling directory, outside the work tree.
pub struct WorkRepo {
    dir: TempDir,
    clock: AtomicI64,
}

impl WorkRepo {
    /// `git init` on branch `main`, no commits.
    pub fn init() -> WorkRepo {
        let repo = WorkRepo::empty();
        repo.git(&["init", "-q"]);
        repo
    }

    /// Full clone of `name` from `host` over smart HTTP, with `origin` set up
    /// (credentials through a repo-local helper) so `fetch`/`push` work.
    pub fn clone_from(host: &GitHost, name: &str) -> WorkRepo {
        let repo = WorkRepo::empty();
        host.clone_into(name, &repo.path(), None);
        let last = repo
            .try_git(&["log", "-1", "--format=%ct"])
            .ok()
            .and_then(|t| t.parse::<i64>().ok());
        if let Some(last) = last {
            repo.clock.store(last.max(BASE_EPOCH), Ordering::Relaxed);
        }
        repo
    }

    fn empty() -> WorkRepo {
        let dir = tempfile::Builder::new()
            .prefix("workrepo")
            .tempdir()
            .expect("create temp dir for WorkRepo");
        fs::create_dir(dir.path().join("repo")).expect("create work tree dir");
        fs::create_dir(dir.path().join("home")).expect("create HOME dir");
        WorkRepo {
            dir,
            clock: AtomicI64::new(BASE_EPOCH),
        }
    }

    /// The work tree (the directory containing `.git`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A `git` command for this repo at the current clock, not yet run.
    pub fn command(&self) -> Command {
        let mut cmd = git_command(&self.home(), self.clock.load(Ordering::Relaxed));
        cmd.current_dir(self.path());
        cmd
    }

    /// Runs `git args...`; panics with stderr on failure; returns stdout
    /// without trailing newlines.
    pub fn git<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        text(self.git_bytes(args))
    }

    /// Like [`WorkRepo::git`] but returns raw stdout.
    pub fn git_bytes<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<u8> {
        run(self.command().args(args))
    }

    /// Runs `git args...`; `Ok(stdout)` or `Err(stderr)`.
    pub fn try_git<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, String> {
        let out = output_of(self.command().args(args));
        if out.status.success() {
            Ok(text(out.stdout))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Writes `content` to `path` (relative to the work tree), creating
    /// parent directories. Not staged until [`WorkRepo::commit`].
    pub fn write(&self, path: impl AsRef<Path>, content: impl AsRef<[u8]>) {
        let full = self.path().join(path.as_ref());
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        fs::write(&full, content).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
    }

    /// `git rm -r` (file or directory).
    pub fn remove(&self, path: impl AsRef<Path>) {
        let path = path.as_ref().as_os_str();
        self.git(&[OsStr::new("rm"), OsStr::new("-rq"), OsStr::new("--"), path]);
    }

    /// `git mv`, creating the destination's parent directories.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) {
        if let Some(parent) = self.path().join(to.as_ref()).parent() {
            fs::create_dir_all(parent).expect("create rename destination dir");
        }
        let (from, to) = (from.as_ref().as_os_str(), to.as_ref().as_os_str());
        self.git(&[OsStr::new("mv"), OsStr::new("--"), from, to]);
    }

    /// Stages everything (`git add -A`) and commits; returns the full SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.tick();
        self.git(&["commit", "-q", "-m", message]);
        self.rev_parse("HEAD")
    }

    /// Like [`WorkRepo::commit`] but succeeds with nothing to commit.
    pub fn commit_allow_empty(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.tick();
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.rev_parse("HEAD")
    }

    /// Creates `name` at HEAD without switching to it.
    pub fn branch(&self, name: &str) {
        self.git(&["branch", name]);
    }

    pub fn checkout(&self, name: &str) {
        self.git(&["checkout", "-q", name]);
    }

    /// `git checkout -b name`.
    pub fn checkout_new(&self, name: &str) {
        self.git(&["checkout", "-q", "-b", name]);
    }

    /// Merges `branch` into the current branch with a merge commit.
    pub fn merge_no_ff(&self, branch: &str, message: &str) -> String {
        self.tick();
        self.git(&["merge", "-q", "--no-ff", "-m", message, branch]);
        self.rev_parse("HEAD")
    }

    /// Advances the commit clock; useful before a commit made via [`WorkRepo::git`].
    pub fn tick(&self) {
        self.clock.fetch_add(CLOCK_STEP, Ordering::Relaxed);
    }

    /// Full SHA of `rev`; panics if it does not resolve.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", "--end-of-options", rev])
    }

    /// Blob content at `rev:path`, `None` if the path does not exist there.
    pub fn show_file(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let object = format!("{rev}:{path}");
        let exists = output_of(self.command().args(["cat-file", "-e", &object]));
        exists
            .status
            .success()
            .then(|| self.git_bytes(&["cat-file", "blob", &object]))
    }

    /// Subjects of `git log range`, newest first.
    pub fn log_subjects(&self, range: &str) -> Vec<String> {
        let out = self.git(&["log", "--format=%s", range]);
        out.lines().map(str::to_owned).collect()
    }

    /// Points `origin` at `host`'s `name` and configures the credential
    /// helper for that host in this repo's config.
    pub fn set_origin(&self, host: &GitHost, name: &str) {
        let url = host.url(name);
        if self.try_git(&["remote", "get-url", "origin"]).is_ok() {
            self.git(&["remote", "set-url", "origin", &url]);
        } else {
            self.git(&["remote", "add", "origin", &url]);
        }
        let key = format!("credential.{}.helper", host.base_url());
        self.git(&["config", &key, &host.credential_helper()]);
    }

    /// Sets `origin` to `host`/`name` and pushes all branches (`-u`).
    pub fn push_to(&self, host: &GitHost, name: &str) {
        self.set_origin(host, name);
        self.git(&["push", "-q", "-u", "origin", "--all"]);
    }

    /// `git push origin refspec...`; panics on failure.
    pub fn push(&self, refspecs: &[&str]) {
        self.git(&[&["push", "-q", "origin"], refspecs].concat());
    }

    /// `git push origin refspec...`; `Err(stderr)` if rejected.
    pub fn try_push(&self, refspecs: &[&str]) -> Result<String, String> {
        self.try_git(&[&["push", "origin"], refspecs].concat())
    }

    /// `git fetch origin`.
    pub fn fetch(&self) {
        self.git(&["fetch", "-q", "origin"]);
    }
}
