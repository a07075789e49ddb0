//! A simulated GitHub Actions runner for the action's scripts
//! (`action/install.sh`, `action/run.sh`): the environment files a runner
//! gives a step (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `GITHUB_PATH`), an
//! event payload at `GITHUB_EVENT_PATH`, `RUNNER_*`, and a parser for the
//! output file in both its `name=value` and heredoc forms — the way the
//! runner reads it, so a value that closes its heredoc early shows up as
//! an extra output here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Runner {
    pub dir: tempfile::TempDir,
    event: Option<(String, PathBuf)>,
    env: Vec<(String, String)>,
}

/// The repository root: what `GITHUB_ACTION_PATH` is for `uses: ./`.
pub fn action_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `RUNNER_ARCH` for this machine, as GitHub names it.
pub fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        other => panic!("no GitHub runner architecture for {other}"),
    }
}

/// The release target triple install.sh picks on this machine.
pub fn target_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

impl Runner {
    pub fn new() -> Runner {
        let dir = tempfile::tempdir().expect("runner temp dir");
        for sub in ["temp", "home", "work"] {
            std::fs::create_dir(dir.path().join(sub)).expect("runner dirs");
        }
        for file in ["output", "summary", "path"] {
            std::fs::write(dir.path().join(file), "").expect("runner files");
        }
        Runner {
            dir,
            event: None,
            env: Vec::new(),
        }
    }

    /// The event that started the workflow, from a payload in
    /// `tests/fixtures/github/`.
    pub fn event(mut self, name: &str, fixture: &str) -> Runner {
        let source = action_path().join("tests/fixtures/github").join(fixture);
        let path = self.dir.path().join("event.json");
        std::fs::copy(&source, &path).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        self.event = Some((name.to_owned(), path));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Runner {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn temp(&self) -> PathBuf {
        self.dir.path().join("temp")
    }

    /// The step's working directory (`GITHUB_WORKSPACE`) unless a test
    /// runs the script elsewhere.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `bash action/<script>` with only a runner's environment (plus
    /// `extra_path` in front of `PATH`), in `cwd`.
    pub fn command(&self, script: &str, cwd: &Path, extra_path: &[&Path]) -> Command {
        let mut path: Vec<PathBuf> = extra_path.iter().map(|p| p.to_path_buf()).collect();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = Command::new("bash");
        cmd.arg(action_path().join("action").join(script))
            .env_clear()
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env("HOME", self.dir.path().join("home"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("RUST_LOG", "revertbot=info")
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", action_path())
            .env("GITHUB_WORKSPACE", self.work())
            .env("GITHUB_OUTPUT", self.dir.path().join("output"))
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("summary"))
            .env("GITHUB_PATH", self.dir.path().join("path"))
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", "acme/infra")
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", runner_arch())
            .env("RUNNER_TEMP", self.temp())
            .current_dir(cwd);
        if let Some((name, path)) = &self.event {
            cmd.env("GITHUB_EVENT_NAME", name)
                .env("GITHUB_EVENT_PATH", path);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, script: &str, cwd: &Path, extra_path: &[&Path]) -> Output {
        self.command(script, cwd, extra_path)
            .output()
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary")).expect("summary file")
    }

    /// Lines the step appended to `GITHUB_PATH`.
    pub fn path_entries(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("path"))
            .expect("path file")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `GITHUB_OUTPUT` as the runner reads it; panics on a malformed file
    /// (an unterminated heredoc), as the runner fails the step.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        parse_outputs(
            &std::fs::read_to_string(self.dir.path().join("output")).expect("output file"),
        )
    }
}

/// Parses the `GITHUB_OUTPUT` file format (actions/runner
/// `SetOutputFileCommand`): `name=value` lines and `name<<DELIM` heredocs.
/// A name written twice keeps its last value, as on GitHub.
pub fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        match (line.find("<<"), line.find('=')) {
            (Some(h), e) if e.is_none_or(|e| h < e) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    let next = lines
                        .next()
                        .unwrap_or_else(|| panic!("heredoc {name}<<{delimiter} is not closed"));
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                out.insert(name.to_owned(), value.join("\n"));
            }
            (_, Some(e)) => {
                out.insert(line[..e].to_owned(), line[e + 1..].to_owned());
            }
            _ => panic!("malformed GITHUB_OUTPUT line {line:?}"),
        }
    }
    out
}

/// A release tarball as `.github/workflows/release.yml` packs it:
/// `revertbot-<tag>-<target>/revertbot`, gzipped.
pub fn release_tarball(tag: &str, target: &str, binary: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tarball dir");
    let name = format!("revertbot-{tag}-{target}");
    std::fs::create_dir(dir.path().join(&name)).expect("tarball root");
    std::fs::copy(binary, dir.path().join(&name).join("revertbot")).expect("copy binary");
    let tarball = dir.path().join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-czf")
        .arg(&tarball)
        .arg(&name)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    std::fs::read(tarball).expect("read tarball")
}

/// The `.sha256` file `sha256sum` writes for `name`.
pub fn sha256_file(bytes: &[u8], name: &str) -> String {
    let digest = revertbot::registry::sha256_digest(bytes).expect("sha256");
    let hex = digest.to_string();
    let hex = hex.strip_prefix("sha256:").expect("sha256: prefix");
    format!("{hex}  {name}\n")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
