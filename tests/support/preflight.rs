//! An infra repo for `revertbot preflight`: a remote on the smart-HTTP host,
//! a developers' working copy that pushes `main` and opens pull requests
//! (branch `pr`), and a checkout for revertbot that fetches the pull request
//! head, as `actions/checkout` would give it. Files come from the public
//! manifests in `tests/fixtures/preflight/` (see its PROVENANCE.md).

use std::path::{Path, PathBuf};
use std::process::Output;

use super::{GitHost, WorkRepo};

pub const REMOTE: &str = "infra.git";

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/preflight");

/// A fixture file, byte for byte.
pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(path))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fixture with its public registries (`gcr.io`, `ghcr.io`,
/// `public.ecr.aws`) replaced by `registry` (`127.0.0.1:PORT`), so no test
/// reaches the internet: the repository paths and tags stay as upstream
/// wrote them.
pub fn fixture_on(path: &str, registry: &str) -> String {
    fixture(path)
        .replace("gcr.io/", &format!("{registry}/"))
        .replace("ghcr.io/", &format!("{registry}/"))
        .replace("public.ecr.aws/", &format!("{registry}/"))
}

/// Files of one commit: written, or deleted for `None`.
pub type Files<'a> = &'a [(&'a str, Option<String>)];

pub struct PrRepo {
    pub host: GitHost,
    pub dev: WorkRepo,
    /// revertbot's checkout.
    pub bot: WorkRepo,
    home: tempfile::TempDir,
}

impl PrRepo {
    /// `main` with `.revertbot.yaml` = `config` and `files`, pushed.
    pub fn new(config: &str, files: &[(&str, String)]) -> PrRepo {
        let host = GitHost::start();
        host.create_bare(REMOTE);
        let dev = WorkRepo::init();
        dev.write(".revertbot.yaml", config);
        for (path, content) in files {
            dev.write(path, content);
        }
        dev.commit("infra: first release");
        dev.push_to(&host, REMOTE);
        let bot = WorkRepo::clone_from(&host, REMOTE);
        PrRepo {
            host,
            dev,
            bot,
            home: tempfile::tempdir().expect("temp HOME"),
        }
    }

    /// One commit on `main` (written, or deleted for `None`), pushed;
    /// returns its sha.
    pub fn on_main(&self, files: Files<'_>, message: &str) -> String {
        self.dev.fetch();
        self.dev
            .git(&["checkout", "-q", "-B", "main", "origin/main"]);
        let sha = self.commit(files, message);
        self.dev.push(&["main"]);
        self.bot.fetch();
        sha
    }

    /// A pull request: branch `pr` from the remote `main`, one commit per
    /// entry, pushed and fetched into revertbot's checkout; returns the head.
    pub fn open_pr(&self, commits: &[(Files<'_>, &str)]) -> String {
        self.dev.fetch();
        self.dev.git(&["checkout", "-q", "-B", "pr", "origin/main"]);
        let mut head = String::new();
        for (files, message) in commits {
            head = self.commit(files, message);
        }
        self.dev.git(&["push", "-q", "-f", "origin", "pr"]);
        self.bot.git(&["fetch", "-q", "origin", "pr"]);
        assert_eq!(self.bot.rev_parse("FETCH_HEAD"), head);
        head
    }

    fn commit(&self, files: Files<'_>, message: &str) -> String {
        for (path, content) in files {
            match content {
                Some(c) => self.dev.write(path, c),
                None => self.dev.remove(path),
            }
        }
        self.dev.commit(message)
    }

    pub fn checkout(&self) -> PathBuf {
        self.bot.path()
    }

    /// The real binary in the checkout with a clean environment
    /// (`GITHUB_TOKEN` for the host, a temp `HOME`: no docker config).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_revertbot"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GITHUB_TOKEN", self.host.token())
            .current_dir(self.checkout())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run revertbot")
    }

    /// `run` that must exit with `code`; returns stdout.
    pub fn expect(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
        let out = self.run(args, env);
        assert_eq!(
            out.status.code(),
            Some(code),
            "revertbot {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
